"""Files for the monthly meeting: tables as XLSX people read and spreadsheets still compute, self-contained HTML."""
from __future__ import annotations

import io
import re

import openpyxl
import pandas as pd
import pytest

from sopcoach.analytics.case_study import case_study
from sopcoach.analytics.compliance import check_compliance
from sopcoach.analytics.downloads import case_study_html, file_stem, review_tables, table_xlsx
from sopcoach.analytics.review import review
from sopcoach.content.playbook import load_playbook
from sopcoach.crm.reading import read_export
from support import ROOT, SHARED

SALESFORCE = SHARED / "data" / "crm" / "salesforce_devorg_export_earthfink"


def _sheet(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data)).active


def test_xlsx_has_labels_percent_and_currency_formats():
    """Rates keep their fraction with a 0.0% format, amounts carry the currency, the header is labelled."""
    df = pd.DataFrame({"win_rate": [0.25, None], "amount_won": [12500.0, 0.0]},
                      index=pd.Index(["王伟", "李娜"], name="owner"))
    ws = _sheet(table_xlsx(df, "Per rep", "zh-CN", currency="CNY", title="按销售"))
    assert ws["A1"].value == "按销售"
    assert [c.value for c in ws[3]] == ["销售", "赢单率", "赢单金额"]
    assert ws["B4"].value == 0.25 and ws["B4"].number_format == "0.0%" and ws["B5"].value is None
    assert ws["C4"].value == 12500 and ws["C4"].number_format == '#,##0 "元"'  # as the page writes money
    assert _sheet(table_xlsx(df, "Per rep", "en", currency="CNY"))["C3"].number_format == '#,##0 "CNY"'


def test_xlsx_times_are_local_and_texts_never_run_as_formulas():
    """An aware time is written in the company's zone (named in the header); a text starting with = stays text."""
    df = pd.DataFrame({"entered": pd.to_datetime(["2026-03-02 17:30"], utc=True), "what": ["=1+1"]})
    ws = _sheet(table_xlsx(df, "t", "en", timezone="Asia/Shanghai", index=False))
    assert [c.value for c in ws[1]] == ["entered (Beijing time)", "what happened"]
    assert str(ws["A2"].value) == "2026-03-03 01:30:00" and ws["B2"].data_type == "s" and ws["B2"].value == "=1+1"


def test_case_study_file_is_self_contained_and_hides_seed_refs():
    """The Salesforce case study as a file: its chart inline, no outside reference, the clause without its seed ref."""
    pb = load_playbook(ROOT / "playbook")
    data = read_export([SALESFORCE], None, playbook=pb)
    comp = check_compliance(data, pb, lang="en")
    cs = case_study(data, pb, comp.findings["deal_id"].iloc[0], comp, lang="en")
    page = case_study_html(cs, pb)
    assert "data:image/png;base64," in page and not re.search(r"https?://", page)
    assert "Shorter sales cycle, faster response" in page and "seed:" not in page
    assert "First proposal" in page and "breached" in page


@pytest.mark.parametrize(("parts", "stem"), [(("sopcoach-review", "2025-03"), "sopcoach-review-2025-03"),
                                             (("sopcoach-case", "a/b c"), "sopcoach-case-a-b-c")])
def test_file_stems_are_safe(parts, stem):
    """A download's name keeps letters, digits, dots and dashes only."""
    assert file_stem(*parts) == stem


MAVEN = SHARED / "data" / "crm" / "maven_crm_sales_opportunities"


@pytest.mark.parametrize(("lang", "head", "names", "verdicts"), [
    ("zh-CN", ["指标", "数值", "目标", "单位", "对照目标", "状态"], ["线索转化率", "赢单率", "平均销售周期"],
     {"已达标", "未达标", ""}),
    ("en", ["figure", "value", "target", "unit", "against the target", "status"],
     ["Lead conversion rate", "Win rate", "Average sales cycle"], {"target met", "target missed", ""})])
def test_kpi_xlsx_reads_as_the_meeting_reads_it(lang, head, names, verdicts):
    """The KPI sheet: KPI names in the language under 指标 (not 姓名), no KPI id, verdicts and states in words,
    a rate's value and target as 0.0% and a cycle's in days (the unit per row)."""
    pb = load_playbook(ROOT / "playbook")
    rv = review(read_export([MAVEN], "maven", playbook=pb), pb, "2017-06", lang=lang)
    tb = next(x for x in review_tables(rv) if x.key == "kpis")
    ws = _sheet(table_xlsx(tb.frame, tb.title, lang, timezone="Asia/Shanghai", title=tb.title))
    header = [c.value for c in ws[3]]
    assert header[:6] == head and "姓名" not in header and "name" not in header
    rows = {r[0].value: r for r in ws.iter_rows(min_row=4)}
    assert [n for n in names if n in rows] == names
    cells = [c.value for r in rows.values() for c in r if isinstance(c.value, str)]
    assert not any(v in ("win_rate", "fraction", "ok", "not_computable", "calendar_days", "met") for v in cells)
    assert {rows[n][4].value or "" for n in rows} <= verdicts
    win, cycle = rows[names[1]], rows[names[2]]
    assert win[1].value == pytest.approx(531 / 641) and win[1].number_format == "0.0%"
    assert win[2].value == 0.35 and win[2].number_format == "0.0%"
    assert cycle[1].number_format == "0.0" and cycle[2].value == 60 and cycle[2].number_format == "0.0"
    assert win[4].value == ("已达标" if lang == "zh-CN" else "target met")
    assert cycle[4].value == ("未达标" if lang == "zh-CN" else "target missed")  # 66.4 days against 60


def test_the_funnel_sheet_names_stages_and_says_recorded_or_inferred_in_words(playbook):
    """The funnel's XLSX rows are the stages by name (no stage ids, no second stage column) and the recorded
    column reads 是 / 推断 *, as on the page, never TRUE/FALSE."""
    rv = review(read_export([MAVEN], "maven", playbook=playbook), playbook, "2017-06", lang="zh-CN")
    tb = next(x for x in review_tables(rv) if x.key == "funnel")
    ws = _sheet(table_xlsx(tb.frame, tb.title, rv.lang, timezone="Asia/Shanghai"))
    head = [c.value for c in ws[1]]
    assert head.count("阶段") == 1 and head[0] == "阶段"
    names = [ws.cell(row=i, column=1).value for i in range(2, ws.max_row + 1)]
    assert names == [s.name.get("zh-CN") for s in playbook.stages]
    flags = {ws.cell(row=i, column=head.index("导出有记录") + 1).value for i in range(2, ws.max_row + 1)}
    assert flags and flags <= {"是", "推断 *"}
