"""Sign-in slips: one paper slip per new learner with their employee id, access code and the server address.

Eight slips on an A4 page (two columns, four rows, dashed cut lines), drawn with reportlab in the
fonts of the certificate PDF (:func:`sopcoach.certification.certificates.pdf_fonts`: the built-in CJK
font ``STSong-Light``, or ``SOPCOACH_PDF_FONT``). Each slip says, in Chinese and English, who it is
for, the access code, where to sign in and how to keep the code.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from ..certification.certificates import pdf_fonts

__all__ = ["SLIPS_PER_PAGE", "Slip", "slips_pdf"]

#: Slips on one A4 page (2 columns x 4 rows).
SLIPS_PER_PAGE = 8
INSTRUCTIONS_ZH = ("用浏览器打开上面的网址，输入员工编号和访问码登录。",
                   "访问码仅供本人使用，请妥善保管；遗失请找培训师重新发放。")
INSTRUCTIONS_EN = ("Open the address above in a browser and sign in with your employee id and access code. "
                   "The code is yours alone: keep it safe; if you lose it, ask your trainer for a new one.")


@dataclass(frozen=True)
class Slip:
    """One learner's slip: employee id, name and the access code (as issued, shown once)."""

    learner_id: str
    name: str
    code: str


def slips_pdf(slips: Sequence[Slip], url: str, title: str = "销售规程学习与认证 Sales SOP training") -> bytes:
    """Draw sign-in slips, eight per A4 page, and return the PDF's bytes.

    Parameters
    ----------
    slips : sequence of Slip
        In the order to print (e.g. by team); an empty sequence gives one empty page.
    url : str
        The learner server's address as learners type it (``sopcoach enroll --url``).
    title : str
        The heading of each slip.

    Examples
    --------
    >>> slips_pdf([Slip("E1001", "王伟", "3fa2-9c01-7be4")], "http://learn.example.com/")[:5]
    b'%PDF-'
    """
    from reportlab.lib import colors  # noqa: PLC0415 - heavy: reportlab, only for the PDF
    from reportlab.lib.pagesizes import A4  # noqa: PLC0415 - heavy: reportlab, only for the PDF
    from reportlab.lib.utils import simpleSplit  # noqa: PLC0415 - heavy: reportlab, only for the PDF
    from reportlab.pdfbase.pdfmetrics import stringWidth  # noqa: PLC0415 - heavy: reportlab, only for the PDF
    from reportlab.pdfgen import canvas  # noqa: PLC0415 - heavy: reportlab, only for the PDF

    cjk, latin = pdf_fonts()
    mono = "Courier-Bold" if latin == "Helvetica" else latin
    width, height = A4
    cols, rows = 2, SLIPS_PER_PAGE // 2
    w, h = width / cols, height / rows
    buf = BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, initialFontName=latin)  # no unused Helvetica in the page
    c.setTitle("Sign-in slips")
    c.setAuthor("sopcoach")

    def fit(text: str, font: str, size: float, room: float) -> float:
        while size > 6 and stringWidth(text, font, size) > room:
            size -= 0.5
        return size

    def cut_lines() -> None:
        c.setStrokeColor(colors.HexColor("#999999"))
        c.setDash(3, 3)
        c.setLineWidth(0.5)
        for i in range(1, cols):
            c.line(i * w, 0, i * w, height)
        for j in range(1, rows):
            c.line(0, j * h, width, j * h)
        c.setDash()

    for n, slip in enumerate(slips):
        if n and n % SLIPS_PER_PAGE == 0:
            cut_lines()
            c.showPage()
        i = n % SLIPS_PER_PAGE
        x, top = (i % cols) * w + 22, height - (i // cols) * h - 22
        room = w - 44
        c.setFillColor(colors.HexColor("#23406b"))
        c.setFont(cjk, 10)
        c.drawString(x, top, title)
        c.setFillColor(colors.HexColor("#1a1a1a"))
        c.setFont(cjk, fit(slip.name, cjk, 16, room - 60))
        c.drawString(x, top - 22, slip.name)
        c.setFont(cjk, 10)
        c.drawString(x, top - 38, f"员工编号 Employee id: {slip.learner_id}")
        c.drawString(x, top - 54, "访问码 Access code:")
        c.setFont(mono, 16)
        c.drawString(x, top - 72, slip.code)
        c.setFont(cjk, 10)
        c.drawString(x, top - 88, "网址 Address:")
        c.setFont(latin, fit(url, latin, 10, room))
        c.drawString(x, top - 100, url)
        c.setFillColor(colors.HexColor("#444444"))
        c.setFont(cjk, 7.5)
        y = top - 116
        for line in INSTRUCTIONS_ZH:
            c.drawString(x, y, line)
            y -= 10
        c.setFont(latin, 7)
        for line in simpleSplit(INSTRUCTIONS_EN, latin, 7, room):
            c.drawString(x, y, line)
            y -= 9
    cut_lines()
    c.showPage()
    c.save()
    return buf.getvalue()
