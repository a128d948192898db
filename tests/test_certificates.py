"""Certificates (:mod:`sopcoach.certification.certificates`): issued on a pass, verified by code, printed as PDF."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest

from support import ROOT, correct_response, wrong_response

from sopcoach.certification.certificates import certificate_pdf, certificate_table, normalise_code, revoke, verify
from sopcoach.errors import CertificateError
from sopcoach.records.models import Certificate

#: Every test that uses the records database runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")


def take(service, records, bank, learner, clock, right=True, name="张三"):
    records.enroll(learner, name, team="east", cohort="2026-03")
    aid = service.start_or_resume(learner, seed=5)
    for qid in records.attempt(aid).question_ids:
        service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)) if right else wrong_response(service.attempt_question(aid, qid)))
    clock.advance(minutes=20)
    service.submit(aid)
    return aid


def cert_of(records, aid):
    return records.run(lambda s: s.query(Certificate).filter_by(attempt_id=aid).one_or_none())


def test_a_pass_issues_a_certificate(service, records, bank, blueprint, clock):
    """The certificate holds the version, exact score, examined clauses and the blueprint's expiry."""
    aid = take(service, records, bank, "E1", clock)
    cert = cert_of(records, aid)
    attempt = records.attempt(aid)
    assert (cert.learner_id, cert.playbook_version, cert.percent) == ("E1", "1.0", "100.0")
    assert (cert.score_num, cert.score_den) == (1, 1)
    assert cert.expires_at - cert.issued_at == timedelta(days=blueprint.certificate_valid_days)
    assert set(cert.clauses) == {c for r in attempt.report["results"] for c in r["clauses"]}
    assert normalise_code(cert.code) == cert.code


def test_a_fail_issues_no_certificate(service, records, bank, clock):
    """A failed attempt leaves no certificate."""
    aid = take(service, records, bank, "E1", clock, right=False)
    assert cert_of(records, aid) is None


def test_verify_a_current_certificate(service, records, bank, clock):
    """A fresh certificate is genuine and current, and the message names the holder."""
    code = cert_of(records, take(service, records, bank, "E1", clock)).code
    v = verify(records, code.lower().replace("-", " "), clock())
    assert (v.status, v.genuine, v.current) == ("current", True, True)
    assert v.message("en").endswith("CURRENT.") and "张三 (E1)" in v.message("en")


def test_verify_after_expiry(service, records, bank, blueprint, clock):
    """After the blueprint's valid days the certificate is genuine but expired."""
    code = cert_of(records, take(service, records, bank, "E1", clock)).code
    clock.advance(days=blueprint.certificate_valid_days + 1)
    v = verify(records, code, clock())
    assert (v.status, v.genuine, v.current) == ("expired", True, False)
    assert "NOT CURRENT: expired." in v.message("en")


def test_verify_gives_the_days_of_the_company_time_zone(service, records, bank, clock):
    """A certificate issued at 17:50 UTC on 2 March is issued on 3 March in Shanghai, as on its PDF."""
    clock.advance(hours=16, minutes=30)  # starts 01:00 UTC; the exam takes 20 minutes
    code = cert_of(records, take(service, records, bank, "E1", clock)).code
    v = verify(records, code, clock())
    assert v.issued_at is not None and f"{v.issued_at:%Y-%m-%d}" == "2026-03-02"  # stored in UTC
    assert "on 2026-03-03, valid until" in v.message("en", "Asia/Shanghai")
    assert "签发于 2026-03-02" in v.message("zh-CN", "UTC")


def test_verify_unknown_and_mistyped_codes(records):
    """A well-formed code never issued is not genuine; a code with a wrong check character is mistyped."""
    assert verify(records, "SC-0000-0000-0000").status == "unknown"
    assert "NOT GENUINE" in verify(records, "SC-0000-0000-0000").message("en")
    assert verify(records, "SC-0000-0000-0001").status == "mistyped"
    assert verify(records, "hello").status == "mistyped"


def test_code_reading_forgives_case_spaces_and_lookalikes():
    """Lower case, spaces and O/I/L for 0/1 read as the printed code."""
    assert normalise_code("sc-oooo oooo oooo") == "SC-0000-0000-0000"
    assert normalise_code("0000-0000-0000") == "SC-0000-0000-0000"


def test_revoked_certificate_is_not_current(service, records, bank, clock):
    """Revoking makes verify answer 'revoked'; an unknown code cannot be revoked."""
    code = cert_of(records, take(service, records, bank, "E1", clock)).code
    revoke(records, code, "issued in error", clock())
    assert verify(records, code, clock()).status == "revoked"
    with pytest.raises(CertificateError, match="no certificate SC-0000-0000-0000"):
        revoke(records, "SC-0000-0000-0000", "x")


def test_certificate_table_lists_status(service, records, bank, clock):
    """The table has one row per certificate with its status."""
    take(service, records, bank, "E1", clock)
    df = certificate_table(records, clock())
    assert df[["learner_id", "name", "status", "version"]].values.tolist() == [["E1", "张三", "current", "1.0"]]


def test_pdf_has_chinese_name_date_version_score_and_code(service, records, bank, blueprint, playbook, clock):
    """The PDF's text holds the Chinese name, the dates, version, score and code; the CJK font is used."""
    from pypdf import PdfReader
    code = cert_of(records, take(service, records, bank, "E1", clock, name="李小龙")).code
    pdf = certificate_pdf(records, code, blueprint.title, playbook.sop.name, playbook.calendar.timezone, clock())
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    text = page.extract_text()
    for expected in ("李小龙", "上岗认证证书", "销售操作规程上岗认证考试", "100.0%", "SOP version: 1.0",
                     "Issued: 2026-03-02", "Valid until: 2027-03-02", code):
        assert expected in text, expected


def test_pdf_verify_line_is_the_check_page_when_the_public_address_is_set(service, records, bank, blueprint, playbook,
                                                                          clock, monkeypatch, tmp_path):
    """With SOPCOACH_PUBLIC_URL the PDF prints <public_url>/verify?code=CODE (the learner server's check page);
    without it, the command; an address that is not http(s) is refused in one line naming the variable."""
    from pypdf import PdfReader
    from sopcoach.config import settings
    from sopcoach.errors import ConfigError
    code = cert_of(records, take(service, records, bank, "E1", clock)).code

    def verify_line(public_url):
        pdf = certificate_pdf(records, code, blueprint.title, playbook.sop.name, playbook.calendar.timezone, clock(),
                              public_url)
        return next(line for line in PdfReader(io.BytesIO(pdf)).pages[0].extract_text().splitlines() if "Verify:" in line)

    monkeypatch.setenv("SOPCOACH_PUBLIC_URL", "https://sop.example.com/")
    s = settings(home=tmp_path, db_url="sqlite://")
    assert s.public_url == "https://sop.example.com"
    assert verify_line(s.public_url).strip() == f"验证 Verify: https://sop.example.com/verify?code={code}"
    assert verify_line("").strip() == f"验证 Verify: sopcoach verify {code}"
    monkeypatch.setenv("SOPCOACH_PUBLIC_URL", "sop.example.com")
    with pytest.raises(ConfigError, match=r"SOPCOACH_PUBLIC_URL='sop.example.com' is not a web address; .*https://"):
        settings(home=tmp_path, db_url="sqlite://")


def test_pdf_embeds_a_subset_of_its_chinese_font_and_renders_it(service, records, bank, blueprint, playbook, clock):
    """Every font of the page is an embedded TrueType subset; rendered to PNG by PDFium (which then
    needs no font of the machine), the holder's Chinese name has ink where its text is."""
    import pypdfium2 as pdfium
    from pypdf import PdfReader
    from sopcoach.certification.certificates import cjk_font_file
    if cjk_font_file() is None:
        pytest.fail("no TrueType Chinese font on this machine: run `make fonts`")
    code = cert_of(records, take(service, records, bank, "E1", clock, name="李小龙")).code
    pdf = certificate_pdf(records, code, blueprint.title, playbook.sop.name, playbook.calendar.timezone, clock())
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    for font in page["/Resources"]["/Font"].values():
        font = font.get_object()
        descriptor = (font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font)["/FontDescriptor"]
        assert "/FontFile2" in descriptor.get_object(), font["/BaseFont"]  # embedded TrueType outlines
        assert str(font["/BaseFont"])[7:8] == "+", font["/BaseFont"]  # a subset (ABCDEF+Name)
    doc = pdfium.PdfDocument(pdf)
    scale = 2
    rendered = doc[0].render(scale=scale).to_pil()
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    rendered.save(artifacts / "certificate.png")
    image = rendered.convert("L")
    text = doc[0].get_textpage()
    at = text.get_text_range().index("李小龙")
    height = doc[0].get_height()
    boxes = [text.get_charbox(at + i) for i in range(3)]
    for left, bottom, right, top in boxes:
        box = image.crop((int(left * scale), int((height - top) * scale), int(right * scale) + 1,
                          int((height - bottom) * scale) + 1))
        dark = sum(1 for x in range(box.width) for y in range(box.height) if box.getpixel((x, y)) < 128)
        assert dark > 20, f"no ink where a character of the name is ({dark} dark pixels)"


def test_pdf_of_unknown_code_is_refused(records):
    """No PDF for a code that was never issued."""
    with pytest.raises(CertificateError, match="no certificate SC-0000-0000-0000"):
        certificate_pdf(records, "SC-0000-0000-0000")
