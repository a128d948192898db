"""The trainer apps (:mod:`sopcoach.ui.trainer_app`) and the recertification app, driven without a browser."""
from __future__ import annotations

import base64
import io
import re
import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from support import ROOT, correct_response, edit_file, raise_supervisor_limit, wrong_response

from sopcoach.authoring.versions import latest_release, needs_review_ids, release
from sopcoach.certification.exam import ExamService
from sopcoach.config import Settings
from sopcoach.labels import source_label
from sopcoach.records.models import Certificate
from sopcoach.ui._common import esc
from sopcoach.ui.trainer_app import CertificatesApp, ItemAnalysisApp, PlaybookChangesApp, ResultsApp


@pytest.fixture
def site(tmp_path, records):
    """A content copy, its settings and records, with one release."""
    for part in ("playbook", "quizzes"):
        shutil.copytree(ROOT / part, tmp_path / part)
    (tmp_path / "notebooks").mkdir()
    s = Settings(home=tmp_path / "var", db_url=records.url, lang="en", content=tmp_path)
    return s


def load(s):
    from sopcoach.content.playbook import load_playbook
    from sopcoach.content.quizbank import load_bank, load_blueprint
    pb = load_playbook(s.playbook_dir)
    bank = load_bank(s.quizzes_dir / "bank", pb)
    return pb, bank, load_blueprint(s.quizzes_dir / "blueprint.yaml", bank)


def edit(s, name, old, new):
    edit_file(s.playbook_dir / name, old, new)


def sit(service, records, bank, learner, clock, n_right=30, team="east", seed=1):
    records.enroll(learner, f"学员{learner}", team=team, cohort="2026-03")
    aid = service.start_or_resume(learner, seed=seed)
    for i, qid in enumerate(records.attempt(aid).question_ids):
        service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)) if i < n_right else wrong_response(service.attempt_question(aid, qid)))
    clock.advance(minutes=20)
    service.submit(aid)
    return aid


def test_problems_are_shown_with_file_and_line(site, records, clock):
    """A broken playbook file shows its problem as path:line:column, and nothing can be compared."""
    edit(site, "slas.yaml", "unit: working_days", "unit: workdays")
    app = PlaybookChangesApp(site, records, "en", clock)
    assert re.search(r"slas\.yaml:\d+:\d+: slas\[\d+\]\.limit\.unit", app.problems_box.value)
    assert "problem(s): fix them at the file and line shown" in app.problems_box.value
    assert "nothing to compare" in app.diff_box.value


def test_release_and_confirm_through_the_app(site, records, clock):
    """Editing, releasing and ticking two questions confirms exactly those two."""
    pb, bank, _ = load(site)
    release(records, pb, bank, site.playbook_dir, now=clock())
    raise_supervisor_limit(site.playbook_dir)
    app = PlaybookChangesApp(site, records, "en", clock)
    assert "authority[sales_supervisor].max_quote_amount" in app.diff_box.value
    assert "<del>500000</del> → <ins>800000</ins>" in app.diff_box.value
    assert app.quotes_box.value == "" and app.confirm_quotes_box.layout.display == "none"  # the texts follow
    assert "L3 authority" in app.impact_box.value and "sp-rep-approver" in app.impact_box.value
    assert app.label_box.value == "1.1"  # 1.0 is taken: the next label is proposed
    app.note_box.value = "monthly review"
    app.release_button.click()
    assert "Released 1.1: 1 clause(s) changed, 11 question(s) waiting for review." in app.status.value
    assert latest_release(records).label == "1.1" and 'version: "1.1"' in (site.playbook_dir / "sop.yaml").read_text()
    assert set(app.checks) == needs_review_ids(records) and len(app.checks) == 11
    app.checks["sp-rep-approver"].value = True
    app.checks["sp-am-approver"].value = True
    app.confirm_button.click()
    assert "Confirmed 2" in app.status.value
    assert len(needs_review_ids(records)) == 9 and "sp-rep-approver" not in app.checks


def test_release_refused_while_a_clause_quotes_the_old_value_until_confirmed(site, records, clock):
    """The page lists the texts still quoting the old value and refuses to release; ticking the
    confirmation with a name releases and records who confirmed which quotes."""
    pb, bank, _ = load(site)
    release(records, pb, bank, site.playbook_dir, now=clock())
    raise_supervisor_limit(site.playbook_dir, texts=False)
    app = PlaybookChangesApp(site, records, "en", clock)
    assert "2 text(s) still quote a value changed since the last release" in app.quotes_box.value
    assert "still says 500,000 CNY" in app.quotes_box.value and "still says 500,000元" in app.quotes_box.value
    assert app.confirm_quotes_box.layout.display == "flex" and app.confirm_quotes_box.value is False
    app.release_button.click()
    assert "not released: 2 text(s) still quote" in app.status.value and latest_release(records).label == "1.0"
    assert 'version: "1.0"' in (site.playbook_dir / "sop.yaml").read_text()  # the proposed 1.1 is not written
    app.confirm_quotes_box.value = True
    app.release_button.click()
    assert "needs your name" in app.status.value and latest_release(records).label == "1.0"
    app.by_box.value = "王老师"
    app.release_button.click()
    assert ("Released 1.1: 1 clause(s) changed, 11 question(s) waiting for review; 2 quote(s) of old values "
            "confirmed by 王老师 (recorded with the release).") in app.status.value
    kept = latest_release(records).snapshot["quotes_confirmed"]
    assert kept["by"] == "王老师" and [q["lang"] for q in kept["quotes"]] == ["zh-CN", "en"]
    assert app.quotes_box.value == "" and app.confirm_quotes_box.value is False  # nothing stale since 1.1


def test_a_reworded_sop_clause_is_flagged_on_the_changes_page(site, records, clock):
    """The page warns that a clause quoting the SOP (seed:N) no longer does once its text is reworded."""
    pb, bank, _ = load(site)
    release(records, pb, bank, site.playbook_dir, now=clock())
    edit(site, "clauses.yaml", "Reduce ineffective communication, optimise", "Cut ineffective communication, optimise")
    app = PlaybookChangesApp(site, records, "en", clock)
    assert ("<div class='warn sopcoach-requoted'>clause reduce-ineffective-communication quotes the SOP (seed:1.3.1) "
            "but its text changed") in app.diff_box.value


def test_release_refused_while_content_has_problems(site, records, clock):
    """The release button does nothing but say why while check reports a problem."""
    edit(site, "slas.yaml", "unit: working_days", "unit: workdays")
    app = PlaybookChangesApp(site, records, "en", clock)
    app.release_button.click()
    assert "fix them before releasing" in app.status.value and latest_release(records) is None


@pytest.fixture
def sat(site, records, clock):
    """Four people sat the exam: three passed (two east, one west), one failed."""
    pb, bank, bp = load(site)
    release(records, pb, bank, site.playbook_dir, now=clock())
    service = ExamService(records, bank, bp, pb.content_hash(), pb.sop.version, clock)
    for i, (lid, right, team) in enumerate([("A", 30, "east"), ("B", 28, "east"), ("C", 29, "west"),
                                            ("F", 10, "west")]):
        sit(service, records, bank, lid, clock, right, team, seed=i)
    return site


def test_results_app_filters_and_downloads(sat, records, clock):
    """Per person by team, then per attempt; the XLSX link holds the rows shown."""
    app = ResultsApp(sat, records, "en", clock)
    assert app.table_df["learner_id"].tolist() == ["A", "B", "C", "F"]
    app.team.value = "west"
    assert app.table_df["learner_id"].tolist() == ["C", "F"]
    assert ">2</div>" in app.summary.value  # people
    assert app.charts.value.count("<img alt=") == 2 and "Score distribution and the pass bar" in app.charts.value
    link = re.search(r"href='data:application/vnd.openxmlformats[^;]*;base64,([^']+)'", app.downloads.value)
    rows = list(openpyxl.load_workbook(io.BytesIO(base64.b64decode(link.group(1)))).active.values)
    assert [r[0] for r in rows[1:]] == ["C", "F"]
    assert rows[0][:3] == ("employee id", "name", "team") and "last attempt (Beijing time)" in rows[0]
    assert {r[rows[0].index("passed")] for r in rows[1:]} == {"yes", "no"}
    app.by.value = "attempt"
    assert len(app.table_df) == 2 and "attempt no." in app.table.value and "attempt_id" not in app.table.value


def test_pass_rate_by_month_per_cohort(sat, records, clock):
    """Everyone of the fixture sat in one month; 3 of 4 passed: the cohort's line is 75% for that month."""
    from sopcoach.certification.charts import pass_rate_by_month
    from sopcoach.certification.results import person_table
    people = person_table(records, load(sat)[2].id, now=clock())
    rates = pass_rate_by_month(people, "Asia/Shanghai")
    assert list(rates.index) == ["2026-03"] and rates.iloc[0].tolist() == [0.75]


def test_results_downloads_read_as_people_read_them(sat, records, clock):
    """The per-attempt download: labels in the page's language, the company's local time (labelled),
    states and pass in words, points as 28/30, percent a number."""
    app = ResultsApp(sat, records, "zh-CN", clock)
    app.by.value = "attempt"
    link = re.search(r"href='data:application/vnd.openxmlformats[^;]*;base64,([^']+)'", app.downloads.value)
    rows = list(openpyxl.load_workbook(io.BytesIO(base64.b64decode(link.group(1)))).active.values)
    head = rows[0]
    assert head[:3] == ("考试记录号", "员工编号", "姓名") and "交卷时间（北京时间）" in head
    row = dict(zip(head, rows[1]))
    closed = app.table_df.iloc[0]["closed_at"]  # ISO UTC in the data
    assert row["交卷时间（北京时间）"] == f"{datetime.fromisoformat(closed).astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d %H:%M}"
    assert row["状态"] == "已评分" and row["通过"] in ("是", "否") and row["得分（分）"].endswith("/30")


def test_item_analysis_app_shows_test_cut_and_questions(sat, records, clock):
    """The page shows alpha, the cut consistency and one row per question drawn."""
    app = ItemAnalysisApp(sat, records, "en", clock)
    assert "Cronbach" in app.test_box.value and "4 attempts" in app.test_box.value
    assert "Livingston" in app.cut_box.value and "90%" in app.cut_box.value
    assert app.analysis.attempts == 4 and len(app.analysis.items) == len(app.analysis.items.index.unique())
    app.which.value = "all"
    assert app.analysis.which == "all"


def test_item_analysis_reads_by_question_text_and_flags_nothing_from_four_answers(sat, records, clock):
    """Questions appear by their text (id small beneath, whole text on hover), facility as a percent, discrimination
    with its word; four answers flag nothing but say "too few answers (n=...)"; the chart holds each placed
    question's text; the XLSX has the page's labels and the same words."""
    pb, bank, _ = load(sat)
    app = ItemAnalysisApp(sat, records, "zh-CN", clock)
    items = app.analysis.items
    qid = items.index[0]
    stem = bank[qid].text.get("zh-CN")
    assert f"<span class='muted'>{qid}</span>" in app.items_box.value
    assert f"title='{stem} ({qid})'" in app.items_box.value.replace("&#39;", "'")
    assert re.search(r"<td>\d+\.\d%</td>", app.items_box.value)  # facility as a percent
    assert f"样本不足 (n={items.loc[qid, 'n']})" in app.items_box.value
    assert items["flags"].map(len).sum() == 0 and "没有需要检查的" in app.flag_box.value
    assert f"另有 {len(items)} 道题作答少于 10 次" in app.flag_box.value
    placed = items[items["discrimination"].notna()]
    assert app.chart_box.value.count("class=\"sopcoach-item-point\"") == len(placed) > 0
    assert f"<title>{bank[placed.index[0]].text.get('zh-CN')} ({placed.index[0]})" in app.chart_box.value
    link = re.search(r"href='data:application/vnd.openxmlformats[^;]*;base64,([^']+)'", app.downloads.value)
    rows = list(openpyxl.load_workbook(io.BytesIO(base64.b64decode(link.group(1)))).active.values)
    head = rows[0]
    assert head[:2] == ("题目编号", "题目") and "难度指数（得分率 %）" in head and "区分度（-1 至 1）" in head
    first = dict(zip(head, rows[1]))
    assert first["题目"] == bank[first["题目编号"]].text.get("zh-CN") and first["提示"].startswith("样本不足 (n=")
    assert "销售流程" in set(r[head.index("部分")] for r in rows[1:])  # the section by its title
    hardest, easiest = items["facility"].idxmin(), items["facility"].idxmax()  # nothing judged: hardest first
    assert items.loc[hardest, "facility"] < items.loc[easiest, "facility"]
    assert app.items_box.value.index(f">{hardest}</span>") < app.items_box.value.index(f">{easiest}</span>")


def test_certificates_app_verifies_and_makes_a_pdf(sat, records, clock):
    """Verify says CURRENT for a real code; the PDF link holds a PDF."""
    app = CertificatesApp(sat, records, "en", clock)
    code = app.pick.value
    assert code and len(app.pick.options) == 3
    app.code_box.value = code
    app.verify_button.click()
    assert "CURRENT." in app.verdict.value
    app.code_box.value = "SC-0000-0000-0000"
    app.verify_button.click()
    assert "NOT GENUINE" in app.verdict.value
    app.pdf_button.click()
    data = base64.b64decode(re.search(r"base64,([^']+)'", app.pdf_link.value).group(1))
    assert data.startswith(b"%PDF") and f"certificate-{code}.pdf" in app.pdf_link.value


def test_certificates_page_names_clauses_by_title(sat, records, clock):
    """The picked certificate's clauses are listed by title and source; after a release that changes one, the
    table's changed clauses are titles too (not ids)."""
    pb = load(sat)[0]
    titles = {c.id: f"{c.title.get('en')} ({source_label(c.source, 'en')})" for c in pb.clauses}
    assert titles["quote-limits"].endswith("(company setting)")
    app = CertificatesApp(sat, records, "en", clock)
    covered = app.table_df.set_index("code").loc[app.pick.value, "clauses"]
    assert f"The {len(covered)} clause(s) this certificate covers" in app.covered.value
    assert all(f"<li>{esc(titles[c])}</li>" in app.covered.value for c in covered)
    raise_supervisor_limit(sat.playbook_dir, texts=True)
    pb, bank, _ = load(sat)
    release(records, pb, bank, sat.playbook_dir, label="1.1", now=clock(), confirm_quotes=True, lang="en")
    app = CertificatesApp(sat, records, "en", clock)
    changed = app.table_df["changed"].iloc[0]
    assert changed == ["quote-limits"] and esc(titles["quote-limits"]) in app.table.value
    assert "quote-limits" not in app.table.value and "company-setting" not in app.table.value + app.covered.value and esc(titles["quote-limits"]) in app.recert_box.value


def test_recertification_app_runs_the_short_exam(site, records, clock):
    """A certificate holder opens recertification, takes a 2-question exam on the changed clause, and is current again."""
    from sopcoach.authoring.versions import confirm
    from sopcoach.certification.certificates import verify
    from sopcoach.config import Installation
    from sopcoach.ui.exam_app import Page
    from sopcoach.ui.recert_app import RecertificationApp
    pb, bank, bp = load(site)
    release(records, pb, bank, site.playbook_dir, now=clock())
    service = ExamService(records, bank, bp, pb.content_hash(), pb.sop.version, clock)
    seed = 0
    while True:  # a certificate whose draw examined quote-limits
        aid = sit(service, records, bank, f"E{seed}", clock, seed=seed)
        if any("quote-limits" in r["clauses"] for r in records.attempt(aid).report["results"]):
            break
        seed += 1
    learner = f"E{seed}"
    code = records.enroll(learner, f"学员{learner}")
    raise_supervisor_limit(site.playbook_dir)
    edit(site, "sop.yaml", 'version: "1.0"', 'version: "1.1"')
    pb, bank, bp = load(site)
    out = release(records, pb, bank, site.playbook_dir, now=clock())
    confirm(records, out.flagged)
    inst = Installation(site, pb, bank, bp, records)
    app = RecertificationApp(inst, lang="en", clock=clock, start_timer=False, learner_id=learner)
    exam = app.exam
    assert exam is not None and exam.bp.question_count == 2 and exam.page is Page.INSTRUCTIONS
    assert "recertification" in exam.title.value
    exam.start_button.click()
    rid = exam.attempt_id
    for qid in records.attempt(rid).question_ids:
        exam.service.answer(rid, qid, correct_response(exam.service.attempt_question(rid, qid)))
    exam.review_button.click()
    exam.submit_button.click()
    exam.confirm_button.click()
    assert exam.page is Page.RESULT
    new = records.run(lambda s: s.query(Certificate).filter_by(attempt_id=rid).one())
    assert verify(records, new.code, clock()).status == "current" and new.playbook_version == "1.1"
    again = RecertificationApp(inst, lang="en", clock=clock, learner_id=learner, start_timer=False)
    assert "no recertification is due" in again.body.children[0].value
