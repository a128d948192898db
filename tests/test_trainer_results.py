"""Results for trainers (:mod:`sopcoach.certification.results`, ``sopcoach results``): per person, filters, exports."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone

import openpyxl
import pandas as pd
import pytest

from support import command_line_installation, correct_response, wrong_response

from sopcoach.certification.results import ATTEMPT_COLUMNS, attempt_rows, export_bytes, person_table


def sit(service, records, bank, learner, clock, n_right, minutes, seed=1):
    aid = service.start_or_resume(learner, seed=seed)
    for i, qid in enumerate(records.attempt(aid).question_ids):
        q = service.attempt_question(aid, qid)
        service.answer(aid, qid, correct_response(q) if i < n_right else wrong_response(q))
    clock.advance(minutes=minutes)
    service.submit(aid)
    clock.advance(hours=25)
    return aid


@pytest.fixture
def cohort(service, records, bank, clock):
    """Three people: A fails then passes, B passes once, C (other team) fails once; D never sits."""
    records.enroll("A", "甲", team="east", cohort="2026-03")
    records.enroll("B", "乙", team="east", cohort="2026-04")
    records.enroll("C", "丙", team="west", cohort="2026-03")
    records.enroll("D", "丁", team="west", cohort="2026-04")
    sit(service, records, bank, "A", clock, 20, 30)  # 20/30 = 66.6%
    sit(service, records, bank, "A", clock, 28, 25, seed=2)  # 93.3%
    sit(service, records, bank, "B", clock, 30, 12)
    sit(service, records, bank, "C", clock, 10, 40)
    return records


def test_person_table_has_best_last_pass_and_time(cohort, blueprint, clock):
    """A: 2 attempts, best and last 93.3%, passed, 25 minutes; D: no attempt."""
    df = person_table(cohort, blueprint.id, now=clock()).set_index("learner_id")
    a = df.loc["A"]
    assert (a["attempts"], a["best_percent"], a["last_percent"], a["passed"]) == (2, 93.3, 93.3, True)
    assert (a["minutes_best"], a["minutes_last"]) == (25.0, 25.0)
    assert a["certificate_status"] == "current" and a["certificate"].startswith("SC-")
    assert df.loc["C", "passed"] == False and df.loc["C", "best_percent"] == 33.3  # noqa: E712
    assert df.loc["D", "attempts"] == 0 and pd.isna(df.loc["D", "best_percent"])
    assert list(df.reset_index().columns)[:8] == ["learner_id", "name", "team", "cohort", "attempts",
                                                  "best_percent", "last_percent", "passed"]


def test_best_is_not_last(service, records, bank, blueprint, clock):
    """A person who did better before shows both scores."""
    records.enroll("E", "戊")
    sit(service, records, bank, "E", clock, 25, 30)
    sit(service, records, bank, "E", clock, 20, 20, seed=3)
    row = person_table(records, blueprint.id, now=clock()).iloc[0]
    assert (row["best_percent"], row["last_percent"], row["minutes_best"], row["minutes_last"]) == (83.3, 66.6, 30.0, 20.0)


def test_filters_by_team_and_cohort(cohort, blueprint, clock):
    """Team and cohort filters keep only matching people."""
    assert set(person_table(cohort, blueprint.id, team="east", now=clock())["learner_id"]) == {"A", "B"}
    assert set(person_table(cohort, blueprint.id, cohort="2026-03", now=clock())["learner_id"]) == {"A", "C"}
    assert {r["learner_id"] for r in attempt_rows(cohort, team="west")} == {"C"}


def test_filters_by_date_in_the_playbook_time_zone(cohort, blueprint):
    """Dates are local calendar dates; a date range keeps only people with attempts in it."""
    rows = attempt_rows(cohort)
    first_day = datetime.fromisoformat(rows[0]["started_at"]).astimezone(timezone.utc).date()
    assert first_day == date(2026, 3, 2)  # 01:00 UTC is 09:00 in Shanghai, same date
    only_first = attempt_rows(cohort, since="2026-03-02", until="2026-03-02")
    assert [r["attempt_id"] for r in only_first] == [rows[0]["attempt_id"]]
    later = person_table(cohort, blueprint.id, since=date(2026, 3, 3))
    assert set(later["learner_id"]) == {"A", "B", "C"} and later.set_index("learner_id").loc["A", "attempts"] == 1


def test_exports_to_csv_json_and_xlsx(cohort, blueprint, clock):
    """CSV (with BOM for Excel), JSON and XLSX carry the same rows and Chinese names."""
    df = person_table(cohort, blueprint.id, now=clock())
    raw = export_bytes(df, "csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    assert list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))[0]["name"] == "甲"
    assert json.loads(export_bytes(df, "json"))[1]["name"] == "乙"
    sheet = openpyxl.load_workbook(io.BytesIO(export_bytes(df, "xlsx", sheet="person"))).active
    rows = list(sheet.values)
    assert sheet.title == "person" and rows[0][:3] == ("learner_id", "name", "team")
    assert [r[1] for r in rows[1:]] == ["甲", "乙", "丙", "丁"]


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """A content folder and data folder for the command line."""
    inst, clock, service = command_line_installation(tmp_path, monkeypatch)
    inst.records.enroll("A", "甲", team="east", cohort="2026-03")
    inst.records.enroll("B", "乙", team="west", cohort="2026-03")
    sit(service, inst.records, inst.bank, "A", clock, 30, 15)
    sit(service, inst.records, inst.bank, "B", clock, 3, 15)
    return tmp_path


def test_cli_results_default_is_unchanged(cli_env, capsys):
    """``sopcoach results`` still prints one CSV row per attempt with the old columns."""
    from sopcoach.cli.main import main
    assert main(["results"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ATTEMPT_COLUMNS and [r["learner_id"] for r in rows] == ["A", "B"]


def test_cli_results_per_person_filtered_to_xlsx(cli_env, capsys):
    """``--by person --team east --format xlsx -o`` writes one row for A."""
    from sopcoach.cli.main import main
    out = cli_env / "r.xlsx"
    assert main(["results", "--by", "person", "--team", "east", "--format", "xlsx", "-o", str(out)]) == 0
    rows = list(openpyxl.load_workbook(out).active.values)
    assert rows[0][0] == "learner_id" and [r[0] for r in rows[1:]] == ["A"]
    assert rows[1][7] is True  # passed


def test_cli_results_json_by_cohort_and_xlsx_needs_a_file(cli_env, capsys):
    """JSON per person honours --cohort; xlsx without -o is refused as a usage error (exit code 2, one line)."""
    from sopcoach.cli.main import main
    assert main(["results", "--by", "person", "--cohort", "2026-03", "--format", "json"]) == 0
    assert [r["learner_id"] for r in json.loads(capsys.readouterr().out)] == ["A", "B"]
    assert main(["results", "--format", "xlsx"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sopcoach results: --format xlsx writes a file: give it with -o FILE.xlsx")


def test_partial_credit_scores_rank_and_show(service, records, bank, blueprint, clock):
    """A score with partial credit (a multiple-choice question half right: 29.5/30, or ≈29.33/30) ranks
    people by its exact value and shows as points; the table never reads its display text back."""
    records.enroll("F", "己")
    sit(service, records, bank, "F", clock, 20, 30)  # 20/30
    aid = service.start_or_resume("F", seed=5)
    partial = False
    for qid in records.attempt(aid).question_ids:
        q = service.attempt_question(aid, qid)
        right = correct_response(q)
        if q.type == "multiple_choice" and len(right) > 1 and not partial:
            right, partial = right[:1], True
        service.answer(aid, qid, right)
    assert partial, "the draw has a multiple-choice question with two or more correct options"
    service.submit(aid)
    rows = [r for r in attempt_rows(records) if r["learner_id"] == "F"]
    assert rows[-1]["score"] != "30/30" and rows[-1]["score"].endswith("/30") and "." in rows[-1]["score"]
    row = person_table(records, blueprint.id, now=clock()).set_index("learner_id").loc["F"]
    assert row["best_percent"] == float(rows[-1]["percent"]) > float(rows[0]["percent"])


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_results_charts_keep_their_labels_apart_and_name_their_axes(figures, lang):
    """The score histogram keys its pass bar above the plot (never written over a bar); the pass-rate chart of two
    years labels its months without two of them touching and names both axes."""
    import matplotlib.pyplot as plt
    from sopcoach.certification.charts import chart_pass_rate, chart_scores
    percents = [55, 62, 70, 74, 78, 81, 84, 86, 87, 88, 88, 89, 89, 89, 91, 93, 95, 97]
    fig = chart_scores(pd.DataFrame({"percent": percents}), 90.0, lang)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert not ax.texts  # nothing written on the plot itself
    key = ax.get_legend()
    assert [x.get_text() for x in key.get_texts()][-1] == ("及格线 90%" if lang == "zh-CN" else "pass bar 90%")
    assert key.get_window_extent().y0 >= ax.get_window_extent().y1  # above the bars
    assert (ax.get_xlabel(), ax.get_ylabel()) == (("得分率 %", "考试次数") if lang == "zh-CN" else ("score %", "attempts"))
    plt.close(fig)
    months = pd.date_range("2025-01-01", "2026-12-01", freq="MS", tz="UTC")
    people = pd.DataFrame({"cohort": ["A", "A", "B", "B"],
                           "last_attempt_at": [str(months[0]), str(months[3]), str(months[1]), ""],
                           "first_passed_at": [str(months[2]), str(months[23]), str(months[12]), ""]})
    fig = chart_pass_rate(people, "Asia/Shanghai", lang)
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [x for x in ax.get_xticklabels() if x.get_text()]
    boxes = [x.get_window_extent() for x in ticks]
    assert 1 < len(ticks) <= 12 and not any(_overlap(a, b) for a, b in zip(boxes, boxes[1:]))
    assert not _overlap(ax.get_legend().get_window_extent(), ax.get_window_extent())  # beside the lines, not on them
    assert (ax.get_xlabel(), ax.get_ylabel()) == (("月份（截至月末）", "已通过考试的人员 %") if lang == "zh-CN"
                                                  else ("month (by its end)", "people who passed %"))
    plt.close(fig)
