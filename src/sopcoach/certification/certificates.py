"""Certificates: issued when an attempt passes, verified by code, printed as a PDF.

A certificate is issued in the same transaction that scores a passing attempt
(:meth:`sopcoach.certification.exam.ExamService.submit`; seed:3.3.1: new hires are certified at a 90% pass
mark). It records the person, the attempt, the playbook version (release label) the attempt was
taken on, the exact score, the clauses the attempt examined with their content hashes, and a
verification code. It expires ``certificate_valid_days`` calendar days after issue (set in
``quizzes/blueprint.yaml``).

A certificate is *current* when it is genuine, not expired, not revoked, not superseded, and none
of the clauses it covered has changed since (see :mod:`sopcoach.authoring.versions`). Passing a
recertification exam issues a new certificate on the current release that replaces the old one
and keeps its expiry date (a recertification brings the certificate up to date; it does not
extend it).

Verification codes look like ``SC-7K3M-9QXD-P2HB``: 11 random Crockford base-32 characters (55
bits) plus a check character, so a mistyped code is told apart from a code that was never issued.
Reading is forgiving: case, spaces, hyphens and the look-alikes ``O``/``I``/``L`` do not matter.

The PDF (:func:`certificate_pdf`) is drawn with reportlab. Chinese text uses reportlab's built-in
CID font ``STSong-Light`` (Adobe-GB1), which needs no font file on the server: PDF viewers
substitute a system CJK font (every Chinese desktop has one; Debian's poppler uses fontconfig,
e.g. ``fonts-noto-cjk``). To embed a font instead, set ``SOPCOACH_PDF_FONT`` to a TrueType file
(``.ttf``/``.ttc`` with TrueType outlines, e.g. WenQuanYi Zen Hei).
"""
from __future__ import annotations

import logging
import os
import secrets
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..errors import CertificateError
from ..i18n import local_day, t
from ..records.models import Attempt, Certificate, Release, from_db, to_db, utcnow
from ..records.store import Records, Transaction

log = logging.getLogger(__name__)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32: no I, L, O, U
_LOOKALIKE = str.maketrans({"O": "0", "I": "1", "L": "1"})
PREFIX = "SC"


def _check_char(data: str) -> str:
    return ALPHABET[sum((i + 1) * ALPHABET.index(ch) for i, ch in enumerate(data)) % 32]


def new_code() -> str:
    """Return a fresh verification code, ``SC-XXXX-XXXX-XXXX`` (the last character a check).

    >>> code = new_code()
    >>> len(code), code[:3], normalise_code(code.lower()) == code
    (17, 'SC-', True)
    """
    data = "".join(secrets.choice(ALPHABET) for _ in range(11))
    body = data + _check_char(data)
    return f"{PREFIX}-{body[:4]}-{body[4:8]}-{body[8:]}"


def normalise_code(text: str) -> str | None:
    """Return the code in its printed form, or ``None`` when its check character is wrong.

    >>> normalise_code(" sc 0000 0000 0000 ")  # check char of eleven zeros is 0
    'SC-0000-0000-0000'
    >>> normalise_code("SC-0000-0000-0001") is None
    True
    """
    s = "".join(ch for ch in str(text).upper() if ch.isalnum()).translate(_LOOKALIKE)
    if s.startswith(PREFIX):
        s = s[len(PREFIX):]
    if len(s) != 12 or any(ch not in ALPHABET for ch in s) or _check_char(s[:11]) != s[11]:
        return None
    return f"{PREFIX}-{s[:4]}-{s[4:8]}-{s[8:]}"


#: Exam ids of recertification exams are ``<blueprint id>.recert-r<release id>``.
RECERT_INFIX = ".recert-r"


def is_recertification(exam_id: str) -> bool:
    """Return whether ``exam_id`` names a recertification exam (see
    :func:`sopcoach.certification.exam.recertification_exam`)."""
    return RECERT_INFIX in exam_id


def certificate_changes(tx: Transaction, cert: Certificate, current: Release | None = None) -> list[str]:
    """Return the covered clauses of ``cert`` whose content changed since it was issued.

    The baseline is the hash recorded on the certificate; a certificate issued before the first
    release is compared with the first release. Compared with ``current`` (default: the latest
    release); empty when no release exists.
    """
    current = current if current is not None else tx.latest_release()
    if current is None:
        return []
    base = dict(cert.clause_hashes or {})
    if not base:
        first = tx.first_release()
        base = {c: first.clause_hashes.get(c) for c in cert.clauses} if first is not None else {}
    return [c for c in cert.clauses if base.get(c) != current.clause_hashes.get(c)]


# -- issuing ------------------------------------------------------------------------------------------
def issue_for_attempt(tx: Transaction, attempt: Attempt, blueprint: Any, now: datetime) -> Certificate:
    """Issue the certificate of a passed attempt inside the scoring transaction ``tx`` (idempotent).

    The certificate covers the clauses the attempt examined, hashed as in the release of the
    attempt's playbook content (or the release in force when the content was not released). A
    recertification attempt (:func:`is_recertification`) renews the learner's
    certificate in force instead: same clauses (now hashed as in the current release), same
    expiry. Any earlier certificate of the learner is marked superseded.
    """
    done = tx.certificate_of_attempt(attempt.id)
    if done is not None:
        return done
    examined = sorted({c for r in (attempt.report or {}).get("results", []) for c in r["clauses"]})
    base = tx.release_of_content(attempt.playbook_hash) or tx.latest_release()
    earlier = tx.certificates_in_force(attempt.learner_id)
    clauses, expires, replaces = examined, now + timedelta(days=int(blueprint.certificate_valid_days)), None
    if is_recertification(attempt.exam_id) and earlier:
        old = earlier[0]
        clauses = sorted(set(old.clauses) | set(examined))
        expires, replaces = from_db(old.expires_at), old.code
    code = new_code()
    while tx.certificate(code) is not None:  # pragma: no cover - 55 random bits
        code = new_code()
    cert = Certificate(
        code=code, learner_id=attempt.learner_id, attempt_id=attempt.id, exam_id=attempt.exam_id,
        release_id=base.id if base else None, playbook_version=attempt.playbook_version,
        issued_at=to_db(now), expires_at=to_db(expires), score_num=attempt.score_num,
        score_den=attempt.score_den, percent=attempt.percent or "", clauses=clauses,
        clause_hashes={c: base.clause_hashes.get(c) for c in clauses} if base else {},
        replaces=replaces, revoked_reason="")
    tx.add(cert)
    for old in earlier:
        old.superseded_by = code
    tx.flush()
    return cert


# -- verifying --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    """The answer to "is this certificate genuine and current?".

    ``status`` is one of ``current``, ``recertify`` (a covered clause changed), ``expired``,
    ``superseded``, ``revoked``, ``unknown`` (no such certificate) or ``mistyped`` (the check
    character does not match). ``genuine`` is true for the first five.
    """

    code: str
    status: str
    learner_id: str = ""
    name: str = ""
    version: str = ""
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    percent: str = ""
    changed: tuple[str, ...] = ()
    superseded_by: str | None = None

    @property
    def genuine(self) -> bool:
        return self.status not in ("unknown", "mistyped")

    @property
    def current(self) -> bool:
        return self.status == "current"

    def message(self, lang: str | None = None, timezone: str = "Asia/Shanghai") -> str:
        """Return one line saying whether the certificate is genuine and current, and why not.

        Days are those of ``timezone`` (the playbook's, as on the certificate PDF).
        """
        who = f"{self.name} ({self.learner_id})"
        day = lambda d: local_day(d, timezone)  # noqa: E731
        if self.status == "mistyped":
            return t(f"{self.code}：代码有误（校验位不符），请核对后重新输入。",
                     f"{self.code}: mistyped (the check character does not match); check the code.", lang)
        if self.status == "unknown":
            return t(f"{self.code}：不是真实证书（没有签发过此代码）。",
                     f"{self.code}: NOT GENUINE (no certificate was issued with this code).", lang)
        head = t(f"{self.code}：真实证书，持有人 {who}，规程版本 {self.version}，得分 {self.percent}%，"
                 f"签发于 {day(self.issued_at)}，有效期至 {day(self.expires_at)}。",
                 f"{self.code}: genuine, issued to {who} on SOP version {self.version} with {self.percent}% "
                 f"on {day(self.issued_at)}, valid until {day(self.expires_at)}.", lang)
        tail = {
            "current": t("当前有效。", "CURRENT.", lang),
            "expired": t("已过期。", "NOT CURRENT: expired.", lang),
            "revoked": t("已撤销。", "NOT CURRENT: revoked.", lang),
            "superseded": t(f"已被证书 {self.superseded_by} 取代。",
                            f"NOT CURRENT: replaced by certificate {self.superseded_by}.", lang),
            "recertify": t(f"不再是最新：所涵盖的条款已修改（{', '.join(self.changed)}），需要复认证。",
                           f"NOT CURRENT: clauses it covered have changed since ({', '.join(self.changed)}); "
                           "recertification is due.", lang),
        }[self.status]
        return f"{head} {tail}"


def verify(records: Records, code: str, now: datetime | None = None) -> Verification:
    """Say whether ``code`` is a genuine certificate and whether it is current.

    Parameters
    ----------
    code : str
        As printed on the certificate (case, spaces and hyphens do not matter).
    now : datetime, optional
        Aware UTC time to judge expiry at (default: now).
    """
    now = now or utcnow()
    norm = normalise_code(code)
    if norm is None:
        return Verification(str(code).strip(), "mistyped")

    def do(tx: Transaction) -> Verification:
        cert = tx.certificate(norm)
        if cert is None:
            return Verification(norm, "unknown")
        learner = tx.learner(cert.learner_id)
        changed = tuple(certificate_changes(tx, cert))
        if cert.revoked_at is not None:
            status = "revoked"
        elif cert.superseded_by:
            status = "superseded"
        elif from_db(cert.expires_at) <= now:
            status = "expired"
        elif changed:
            status = "recertify"
        else:
            status = "current"
        return Verification(norm, status, cert.learner_id, learner.name if learner else "",
                            cert.playbook_version, from_db(cert.issued_at), from_db(cert.expires_at),
                            cert.percent, changed, cert.superseded_by)
    return records.transaction(do)


def learner_certificate(records: Records, learner_id: str, now: datetime | None = None) -> Verification | None:
    """Return the verification of a learner's latest certificate (None when none was issued).

    The latest is the most recently issued one that no other certificate replaced; its ``status``
    says whether it is current, expired, revoked or due for recertification.
    """
    code = records.latest_certificate_code(learner_id)
    return None if code is None else verify(records, code, now)


def revoke(records: Records, code: str, reason: str, now: datetime | None = None) -> None:
    """Revoke a certificate (e.g. issued in error); ``verify`` then answers "revoked".

    Raises
    ------
    CertificateError
        When no certificate has this code.
    """
    now = now or utcnow()
    norm = normalise_code(code) or code

    def do(tx: Transaction) -> None:
        cert = tx.certificate(norm)
        if cert is None:
            raise CertificateError(f"no certificate {code}")
        cert.revoked_at, cert.revoked_reason = to_db(now), reason
    records.transaction(do)


def certificate_table(records: Records, now: datetime | None = None):
    """Return every certificate with its status.

    Returns
    -------
    pandas.DataFrame
        One row per certificate, newest first; columns ``code``, ``learner_id``, ``name``,
        ``team``, ``cohort``, ``version``, ``percent`` (str), ``issued_at``, ``expires_at``
        (aware UTC datetimes), ``status`` (as :class:`Verification`), ``changed`` (list of str:
        covered clause ids changed since), ``clauses`` (list of str: every clause id it covers).
    """
    import pandas as pd  # noqa: PLC0415 - heavy: pandas, only for the trainer's table
    now = now or utcnow()

    def do(tx: Transaction) -> list[dict[str, Any]]:
        out = []
        for cert, learner in tx.certificates_with_learners():
            changed = certificate_changes(tx, cert)
            status = ("revoked" if cert.revoked_at is not None else "superseded" if cert.superseded_by
                      else "expired" if from_db(cert.expires_at) <= now else "recertify" if changed else "current")
            out.append({"code": cert.code, "learner_id": cert.learner_id, "name": learner.name,
                        "team": learner.team or "", "cohort": learner.cohort or "",
                        "version": cert.playbook_version, "percent": cert.percent,
                        "issued_at": from_db(cert.issued_at), "expires_at": from_db(cert.expires_at),
                        "status": status, "changed": changed, "clauses": list(cert.clauses)})
        return out
    cols = ["code", "learner_id", "name", "team", "cohort", "version", "percent", "issued_at", "expires_at",
            "status", "changed", "clauses"]
    return pd.DataFrame(records.transaction(do), columns=cols)


# -- PDF ------------------------------------------------------------------------------------------------
#: TrueType CJK fonts looked for, in order, when ``SOPCOACH_PDF_FONT`` is not set (Debian's
#: fonts-wqy-microhei, which ``make fonts`` installs, first). reportlab embeds TrueType outlines
#: only: the Noto CJK fonts are OpenType/CFF and cannot be embedded by it.
CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


def cjk_font_file() -> Path | None:
    """Return the TrueType CJK font the certificate PDF embeds, or ``None`` when there is none.

    ``SOPCOACH_PDF_FONT`` (a .ttf/.ttc with TrueType outlines) wins; else the first of
    :data:`CJK_FONT_FILES` that exists; else the first Simplified-Chinese TrueType font fontconfig
    lists (``fc-list :lang=zh-cn:fontformat=TrueType``).
    """
    path = os.environ.get("SOPCOACH_PDF_FONT")
    if path:
        return Path(path)
    for candidate in CJK_FONT_FILES:
        if Path(candidate).is_file():
            return Path(candidate)
    try:
        listed = subprocess.run(["fc-list", ":lang=zh-cn:fontformat=TrueType", "file"], capture_output=True,
                                text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(line.strip().rstrip(":") for line in listed.splitlines() if line.strip())
    return Path(files[0]) if files else None


def pdf_fonts() -> tuple[str, str]:
    """Register and return ``(cjk font, latin font)`` names for reportlab.

    With a TrueType CJK font (:func:`cjk_font_file`) every text is drawn in it and the PDF embeds
    the subset of glyphs it uses, so it renders the same in any viewer. Without one, the PDF falls
    back to the non-embedded STSong-Light (the viewer must have a Chinese font) and the log says so.
    """
    from reportlab.pdfbase import pdfmetrics  # noqa: PLC0415 - heavy: reportlab, only for the PDF
    path = cjk_font_file()
    if path is not None:
        from reportlab.pdfbase.ttfonts import TTFont  # noqa: PLC0415 - heavy: reportlab, only for the PDF
        if "SopcoachCJK" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("SopcoachCJK", str(path), subfontIndex=0))
        return "SopcoachCJK", "SopcoachCJK"
    log.warning("no TrueType Chinese font found (run `make fonts` or set SOPCOACH_PDF_FONT): the certificate PDF "
                "uses STSong-Light, not embedded, and shows Chinese only where the viewer has a Chinese font")
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # noqa: PLC0415 - heavy: reportlab, only for the PDF
    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light", "Helvetica"


def verify_address(public_url: str, code: str) -> str:
    """Return the address of the page that checks ``code`` on the learner server at ``public_url``.

    The page is :class:`sopcoach.web.verify.VerifyHandler`'s ``GET /verify?code=...`` below the server's base.

    >>> verify_address("https://sop.example.com/", "SC-0000-0000-0000")
    'https://sop.example.com/verify?code=SC-0000-0000-0000'
    """
    return f"{public_url.rstrip('/')}/verify?{urlencode({'code': code})}"


def certificate_pdf(records: Records, code: str, exam_title: Any = None, sop_name: Any = None,
                    timezone: str = "Asia/Shanghai", now: datetime | None = None, public_url: str = "") -> bytes:
    """Draw the certificate ``code`` as a one-page A4 landscape PDF and return its bytes.

    The page shows, in Chinese and English: the person's name and employee id, the exam passed,
    the score (rounded down, as on the result page), the issue and expiry dates (in the playbook's
    ``timezone``), the playbook version, the verification code, and how to verify it: the address of
    the learner server's check page when ``public_url`` is given (:func:`verify_address`), else the
    command ``sopcoach verify CODE``.

    Parameters
    ----------
    exam_title, sop_name : Text, optional
        The blueprint's title and the SOP's name (bilingual).
    public_url : str, optional
        The learner server's public address (:attr:`sopcoach.config.Settings.public_url`).

    Raises
    ------
    CertificateError
        When no certificate has this code.
    """

    from reportlab.lib import colors  # noqa: PLC0415 - heavy: reportlab, only for the PDF
    from reportlab.lib.pagesizes import A4, landscape  # noqa: PLC0415 - heavy: reportlab, only for the PDF
    from reportlab.pdfgen import canvas  # noqa: PLC0415 - heavy: reportlab, only for the PDF

    v = verify(records, code, now)
    if not v.genuine:
        raise CertificateError(f"no certificate {code}")
    cjk, latin = pdf_fonts()
    buf = BytesIO()
    width, height = landscape(A4)
    c = canvas.Canvas(buf, pagesize=(width, height), initialFontName=latin)  # no unused Helvetica in the page
    c.setTitle(f"Certificate {v.code}")
    c.setAuthor("sopcoach")
    c.setStrokeColor(colors.HexColor("#4a7bb7"))
    c.setLineWidth(3)
    c.rect(28, 28, width - 56, height - 56)
    c.setLineWidth(0.8)
    c.rect(36, 36, width - 72, height - 72)

    from reportlab.pdfbase.pdfmetrics import stringWidth  # noqa: PLC0415 - heavy: reportlab, only for the PDF

    def runs(text: str, font: str) -> list[tuple[str, str]]:
        """Split ``text`` into runs: Latin in ``latin``, everything else in the CJK font."""
        if font == latin or cjk == latin:
            return [(text, font)]
        out: list[tuple[str, str]] = []
        for ch in text:
            f = latin if ord(ch) < 0x2E80 else cjk
            if out and out[-1][1] == f:
                out[-1] = (out[-1][0] + ch, f)
            else:
                out.append((ch, f))
        return out

    def centre(y: float, text: str, font: str, size: float, color: str = "#1a1a1a") -> None:
        c.setFillColor(colors.HexColor(color))
        parts = runs(text, font)
        x = width / 2 - sum(stringWidth(s, f, size) for s, f in parts) / 2
        for s, f in parts:
            c.setFont(f, size)
            c.drawString(x, y, s)
            x += stringWidth(s, f, size)

    zh_exam = exam_title.zh_CN if exam_title is not None else "销售操作规程上岗认证考试"
    en_exam = exam_title.en if exam_title is not None else "Sales SOP certification exam"
    centre(height - 105, "上岗认证证书", cjk, 34, "#23406b")
    centre(height - 135, "Certificate of Sales SOP Certification", latin, 16, "#23406b")
    centre(height - 190, "兹证明", cjk, 15)
    centre(height - 232, v.name, cjk, 30)
    centre(height - 256, f"员工编号 Employee id: {v.learner_id}", cjk, 12, "#444444")
    centre(height - 292, f"已通过「{zh_exam}」，成绩 {v.percent}%", cjk, 16)
    centre(height - 314, f"has passed the {en_exam} with a score of {v.percent}%", latin, 12, "#333333")
    sop = f"{sop_name.zh_CN} " if sop_name is not None else "规程"
    centre(height - 346, f"{sop}版本 SOP version: {v.version}", cjk, 13)
    d1, d2 = local_day(v.issued_at, timezone), local_day(v.expires_at, timezone)
    centre(height - 372, f"签发日期 Issued: {d1}    有效期至 Valid until: {d2}", cjk, 13)
    c.setFillColor(colors.HexColor("#f3f6fa"))
    c.roundRect(width / 2 - 190, 78, 380, 62, 6, stroke=0, fill=1)
    centre(118, f"验证码 Verification code: {v.code}", cjk, 14, "#23406b")
    how = verify_address(public_url, v.code) if public_url else f"sopcoach verify {v.code}"
    centre(94, f"验证 Verify: {how}", cjk, 10, "#555555")
    c.showPage()
    c.save()
    return buf.getvalue()
