"""Enrolling a cohort from an HR roster (:mod:`sopcoach.cohort.roster`, ``sopcoach enroll --roster``).

Rosters are written here as HR coordinators' tools write them: CSV in UTF-8, UTF-8 with BOM (Excel's
"CSV UTF-8") and GBK (Chinese Excel's "CSV"), semicolon-separated with English headers, and XLSX
(openpyxl) with numbers for ids and real dates. Every records test runs on SQLite and PostgreSQL.
"""
from __future__ import annotations

import io
from datetime import date, datetime, timezone

import pytest

from support import complete_lessons, correct_response

from sopcoach.certification.certificates import verify
from sopcoach.certification.results import person_table
from sopcoach.cli.main import main
from sopcoach.cohort.roster import apply_roster, read_roster
from sopcoach.cohort.slips import Slip, slips_pdf
from sopcoach.errors import AuthError, ContentError

pytestmark = pytest.mark.databases("sqlite", "postgresql")

TODAY = date(2026, 12, 7)
HEADER = "员工编号,姓名,团队,批次,邮箱,状态\n"
ROWS = ("E1001,王伟,华东一组,2026春,wang.wei@example.com,在职\n"
        "E1002,李娜,华南二组,2026春,,在职\n"
        "E1003,张敏,华北三组,2026春,zhang.min@example.com,\n")


def write(tmp_path, text: str, encoding: str = "utf-8", name: str = "roster.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def enroll(db_url, *args):
    return main(["enroll", "--db-url", db_url, *map(str, args)])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_a_roster_in_each_excel_encoding_reads_the_same(tmp_path, encoding):
    """UTF-8, UTF-8 with BOM and GBK rosters give the same people, Chinese names intact."""
    roster = read_roster(write(tmp_path, HEADER + ROWS, encoding), TODAY)
    assert [(r.line, r.learner_id, r.name, r.team, r.cohort, r.email, r.leaver) for r in roster.rows] == [
        (2, "E1001", "王伟", "华东一组", "2026春", "wang.wei@example.com", False),
        (3, "E1002", "李娜", "华南二组", "2026春", None, False),
        (4, "E1003", "张敏", "华北三组", "2026春", "zhang.min@example.com", False)]


def test_english_headers_semicolons_and_end_dates(tmp_path):
    """English headers in any case, `;` between fields; a past end date makes a leaver, a future one not."""
    text = ("Employee ID;Full Name;TEAM;End date;Notes\n"
            "E1;Ann;East;2026/11/30;left in November\nE2;Bob;East;2027-01-31;\n")
    roster = read_roster(write(tmp_path, text), TODAY)
    assert [(r.learner_id, r.leaver, r.end_date) for r in roster.rows] == [
        ("E1", True, date(2026, 11, 30)), ("E2", False, date(2027, 1, 31))]
    assert roster.ignored == ("Notes",)


def test_xlsx_roster_with_numeric_ids_and_date_cells(tmp_path):
    """An XLSX roster: an id Excel stored as the number 1001 reads as '1001'; a date cell is a date."""
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["工号", "姓名", "批次", "离职日期"])
    ws.append([1001, "王伟", "2026春", None])
    ws.append([1002.0, "李娜", "2026春", datetime(2026, 12, 1)])
    wb.save(tmp_path / "roster.xlsx")
    roster = read_roster(tmp_path / "roster.xlsx", TODAY)
    assert [(r.line, r.learner_id, r.leaver) for r in roster.rows] == [(2, "1001", False), (3, "1002", True)]


def test_every_bad_row_is_named_and_nothing_is_written(tmp_path, db_url, records, capsys):
    """Each bad row is one line `file:line:column: header: message` with the fix; exit 1; nothing enrolled."""
    text = (HEADER + "E1001,王伟,华东一组,2026春,not-an-address,在职\n"
            ",刘洋,,,,\n"
            "E1002,,,,,\n"
            "E1003,赵六,,,,休假\n"
            "E1001,王伟,,,,\n")
    path = write(tmp_path, text)
    assert enroll(db_url, "--roster", path) == 1
    err = capsys.readouterr().err.splitlines()[1:]
    assert err == [
        f"{path}:2:5: 邮箱: not an e-mail address: 'not-an-address'; write it as name@company.com or leave it blank",
        f"{path}:3:1: 员工编号: the employee id is blank; fill it in or delete the row",
        f"{path}:4:2: 姓名: the name is blank; fill it in (only a leaver's row may leave it blank)",
        f"{path}:5:6: 状态: unknown status '休假': write 在职 or active for people who work here, 离职 or leaver "
        "for leavers (or leave it blank)",
        f"{path}:6:1: 员工编号: employee id 'E1001' is also on line 2; list each person once"]
    assert records.learners() == []


def test_missing_required_column_and_contradicting_status(tmp_path):
    """No id column is refused on the header line; 'in post' with a past end date is a bad row."""
    with pytest.raises(ContentError) as no_id:
        read_roster(write(tmp_path, "姓名,团队\n王伟,A\n"), TODAY)
    assert [str(p) for p in no_id.value.problems] == [
        f"{tmp_path / 'roster.csv'}:1: no learner_id column: the header needs one named 员工编号 / 工号 / "
        "employee id; found '姓名', '团队'"]
    with pytest.raises(ContentError) as both:
        read_roster(write(tmp_path, "员工编号,姓名,状态,离职日期\nE1,王伟,在职,2026-12-01\n"), TODAY)
    assert [p.message for p in both.value.problems] == [
        "the status says '在职' but the end date 2026-12-01 has passed; correct one of them"]


def test_create_update_deactivate_and_absent(tmp_path, db_url, records, capsys):
    """A second roster updates a team, deactivates the leaver, keeps (and lists) the absent learner."""
    assert enroll(db_url, "--roster", write(tmp_path, HEADER + ROWS)) == 0
    out = capsys.readouterr().out
    codes = {line.split("\t")[0]: line.split("\t")[2] for line in out.splitlines() if line.startswith("E100")
             and line.count("\t") == 2}
    assert sorted(codes) == ["E1001", "E1002", "E1003"]
    second = write(tmp_path, HEADER + "E1001,王伟,华东二组,,,在职\nE1002,李娜,,,,离职\n", name="second.csv")
    assert enroll(db_url, "--roster", second) == 0
    out = capsys.readouterr().out
    assert f"更新\tE1001\t王伟\t团队: 华东一组 -> 华东二组\t{second}:2" in out  # one language on the page
    assert f"停用\tE1002\t李娜\t华南二组 / 2026春\t{second}:3" in out
    assert "名单中没有（保留）\tE1003\t张敏\n" in out and "not in the roster" not in out
    assert "合计：1 更新，1 停用，1 名单中没有（保留）" in out
    assert "访问码" not in out  # nobody new: no code printed, none reissued
    by_id = {x.id: x for x in records.learners()}
    assert (by_id["E1001"].team, by_id["E1001"].cohort, by_id["E1001"].email) == ("华东二组", "2026春", "wang.wei@example.com")
    assert [x.id for x in records.learners() if not x.active] == ["E1002"]
    assert records.authenticate("E1001", codes["E1001"]).id == "E1001"  # not reissued
    with pytest.raises(AuthError):
        records.authenticate("E1002", codes["E1002"])
    assert [e.learner_id for e in records.audit_events("sign_in_deactivated")] == ["E1002"]


def test_deactivate_missing_only_when_asked(tmp_path, records):
    """Absent learners are deactivated only with deactivate_missing."""
    apply_roster(records, read_roster(write(tmp_path, HEADER + ROWS), TODAY))
    short = read_roster(write(tmp_path, HEADER + "E1001,王伟,,,,\n", name="short.csv"), TODAY)
    kept = apply_roster(records, short)
    assert [(c.action, c.learner_id) for c in kept.changes] == [
        ("unchanged", "E1001"), ("absent", "E1002"), ("absent", "E1003")]
    assert all(x.active for x in records.learners())
    gone = apply_roster(records, short, deactivate_missing=True)
    assert [(c.action, c.learner_id) for c in gone.changes][1:] == [("deactivate", "E1002"), ("deactivate", "E1003")]
    assert [x.id for x in records.learners() if x.active] == ["E1001"]


def test_dry_run_writes_nothing(tmp_path, db_url, records, capsys):
    """--dry-run prints what would be created and deactivated and leaves the records as they were."""
    records.enroll("E1003", "张敏")
    path = write(tmp_path, HEADER + "E1001,王伟,华东一组,,,\nE1003,张敏,,,,离职\n")
    assert enroll(db_url, "--roster", path, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == ["演练（--dry-run）：以下为将要进行的更改，未写入任何记录",
                                    f"新建\tE1001\t王伟\t华东一组\t{path}:2", f"停用\tE1003\t张敏\t\t{path}:3"]
    assert [(x.id, x.active) for x in records.learners()] == [("E1003", True)]


def test_a_deactivated_learner_loses_sessions_keeps_a_genuine_certificate_and_can_return(
        tmp_path, inst, service, records, bank, clock):
    """Deactivation ends sessions and refuses the Hub; the certificate still verifies; a roster listing
    them again reactivates them with their old code."""
    code = records.enroll("E1", "王伟")
    complete_lessons(inst, "E1")
    attempt = service.start_or_resume("E1", seed=3)
    for qid in service.view(attempt).question_ids:
        service.answer(attempt, qid, correct_response(service.attempt_question(attempt, qid)))
    service.submit(attempt)
    cert = records.latest_certificate_code("E1")
    token = records.open_session("E1", 3600)
    apply_roster(records, read_roster(write(tmp_path, "员工编号,姓名,状态\nE1,王伟,离职\n"), TODAY))
    assert records.session_learner(token) is None
    with pytest.raises(AuthError, match="deactivated"):
        records.hub_learner("E1")
    v = verify(records, cert, clock())
    assert (v.genuine, v.status) == (True, "current")
    people = person_table(records, inst.blueprint.id, now=clock()).set_index("learner_id")
    assert (people.loc["E1", "active"], people.loc["E1", "certificate"]) == (False, cert)
    back = apply_roster(records, read_roster(write(tmp_path, "员工编号,姓名\nE1,王伟\n", name="back.csv"), TODAY))
    assert [c.action for c in back.changes] == ["reactivate"] and back.codes == {}
    assert records.authenticate("E1", code).active


def test_reissue_gives_listed_learners_new_codes(tmp_path, records):
    """--reissue gives enrolled learners of the roster new codes; the old ones stop working."""
    old = records.enroll("E1001", "王伟")
    out = apply_roster(records, read_roster(write(tmp_path, HEADER + "E1001,王伟,,,,\n"), TODAY), reissue=True)
    assert list(out.codes) == ["E1001"] and out.codes["E1001"] != old
    assert records.authenticate("E1001", out.codes["E1001"]).id == "E1001"
    with pytest.raises(AuthError):
        records.authenticate("E1001", old)


def test_slips_pdf_holds_each_new_learners_code_and_the_address(tmp_path, db_url, capsys):
    """--slips writes one slip per new learner (name, id, code, address, both languages); no code on stdout."""
    from pypdf import PdfReader
    pdf = tmp_path / "slips.pdf"
    assert enroll(db_url, "--roster", write(tmp_path, HEADER + ROWS), "--slips", pdf,
                  "--url", "http://learn.example.com/") == 0
    out = capsys.readouterr().out
    assert f"登录凭条：3 张已写入 {pdf}" in out
    text = PdfReader(pdf).pages[0].extract_text()
    for expected in ("王伟", "员工编号 Employee id: E1001", "李娜", "张敏", "http://learn.example.com/",
                     "用浏览器打开上面的网址", "sign in with your employee id and"):
        assert expected in text, expected
    from sopcoach.records.store import Records
    records = Records(db_url)
    try:
        codes = [line.strip() for line in text.splitlines() if line.count("-") == 2 and len(line.strip()) == 14]
        assert len(codes) == 3
        assert {records.authenticate(lid, c).id for lid, c in zip(["E1001", "E1002", "E1003"], codes)} == \
            {"E1001", "E1002", "E1003"}
    finally:
        records.dispose()
    assert enroll(db_url, "--roster", tmp_path / "roster.csv", "--slips", pdf) == 2


def test_slips_make_a_page_per_eight(tmp_path):
    """Nine slips fill one page and start a second."""
    from pypdf import PdfReader
    pdf = slips_pdf([Slip(f"E{i}", f"学员{i}", "aaaa-bbbb-cccc") for i in range(9)], "http://x/")
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 2
    assert pages[0].extract_text().count("aaaa-bbbb-cccc") == 8 and "学员8" in pages[1].extract_text()


def test_enroll_needs_a_roster_or_an_id_and_name(db_url, capsys):
    """`enroll` without --roster or --id/--name is a usage error (exit 2), in one line."""
    assert main(["enroll", "--db-url", db_url, "--name", "王伟"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sopcoach enroll: enroll needs --id and --name (one learner) or --roster FILE (a cohort)")


def test_now_is_the_enrolment_time(records):
    """Records.enroll records the given enrolment time."""
    records.enroll("E1", "王伟", now=datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc))
    assert records.learner("E1").created_at == datetime(2026, 1, 5, 2, 0)


def test_an_old_excel_file_is_refused_with_the_fix(tmp_path):
    """A .xls (Excel 97) roster is refused before reading, saying how to save it."""
    path = write(tmp_path, "not really a workbook", name="roster.xls")
    with pytest.raises(ContentError) as exc:
        read_roster(path, TODAY)
    assert [str(p) for p in exc.value.problems] == [
        f"{path}: a roster is a .csv or .xlsx file (got .xls); in Excel, save it as 'Excel Workbook (.xlsx)' or 'CSV UTF-8'"]
