"""The monthly review read by people: one label table, percentages, amounts with their currency, units, legends,
KPI cards judged against their targets, and rates that cannot pass 100% (issue 16, item 3; seed:1.3.2, 3.3.2).

On the real exports in ../shared/data/crm/ and a simulated one; the pages are the HTML report and the review
app's widgets, read as HTML.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable

import pandas as pd
import pytest

from sopcoach.analytics import report
from sopcoach.analytics.case_study import case_study
from sopcoach.analytics.compliance import check_compliance
from sopcoach.analytics.downloads import case_study_html
from sopcoach.analytics.pipeline import pipeline_lines, pipeline_report, shown_figures
from sopcoach.analytics.report import kpi_cards, rate_text, render_html
from sopcoach.analytics.review import review
from sopcoach.crm.reading import read_export
from sopcoach.crm.simulate import simulate
from sopcoach.i18n import t
from sopcoach.labels import COLUMNS, duration_text, money_text
from sopcoach.ui.review_app import build
from support import SHARED, copy_export_editing_deals

CRM = SHARED / "data" / "crm"
MAVEN = CRM / "maven_crm_sales_opportunities"
SALESFORCE = CRM / "salesforce_devorg_export_earthfink"
#: raw values that must never reach a page (column names and stored states; a mapping key the reader is told to
#: write, such as ``lost_reason: <column>``, is not one of them)
RAW = re.compile(r"\b(open_here|lost_here|ci_low|ci_high|not_checkable|not_computable|sales_rep|win_rate|cycle_mean|"
                 r"amount_won|weak_stage|with_amount|working_days_median|hours_median)\b")


@pytest.fixture(scope="module")
def salesforce(playbook):
    return read_export([SALESFORCE], "salesforce", playbook=playbook, progress=False)


@pytest.fixture(scope="module")
def maven(playbook):
    return read_export([MAVEN], "maven", playbook=playbook, progress=False)


@pytest.fixture(scope="module")
def sim(playbook, tmp_path_factory):
    return simulate(playbook, tmp_path_factory.mktemp("sim"), seed=7, deals=160, weeks=17)


def headers(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", page)]


def raw_headers(page: str) -> list[str]:
    """Header cells that read like a column name in code (``open_here``, ``deals``-style ids with _)."""
    return [h for h in headers(page) if re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", h)]


def test_the_label_table_covers_every_column_the_review_shows(salesforce, playbook, sim):
    """Every column (and index) a review table shows has a label in sopcoach.labels, in both languages."""
    data = read_export(sim.folder, "simulated", playbook=playbook)
    rv = review(data, playbook, "2025-05", lang="en")
    pr = pipeline_report(salesforce, playbook, "2026-02", "en")
    cs = case_study(data, playbook, sim.truth.iloc[0]["deal_id"], rv.compliance, lang="en")
    shown = {*report.FUNNEL_SHOWN, "stage", *report.CHECKS_SHOWN, *report.FINDINGS_SHOWN, "deal_id",
             *report.QUALITY_SHOWN, *rv.trend.columns, rv.trend.index.name, *report.PIPELINE_REPS_SHOWN,
             *report.TIME_IN_STAGE_SHOWN, *pr.by_stage.columns, *pr.lost_reasons.columns, pr.lost_reasons.index.name,
             *shown_figures(pr).columns, shown_figures(pr).index.name, *report.TIMELINE_SHOWN, "local_time",
             "deals", "weak_stage"}
    for group, df in rv.by.items():
        shown |= {group, *df.columns}
    shown |= set(cs.timeline.columns) & set(report.TIMELINE_SHOWN)
    missing = sorted(c for c in shown - {"name"} if c not in COLUMNS)
    assert missing == []
    assert all(zh and en for zh, en in COLUMNS.values())


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_no_raw_column_name_reaches_the_html_report(salesforce, sim, playbook, lang):
    """The HTML report (with its pipeline and a case study) heads every table with a label in its language."""
    data = read_export(sim.folder, "simulated", playbook=playbook)
    rv = review(data, playbook, "2025-05", lang=lang)
    page = render_html(rv, case=case_study(data, playbook, sim.truth.iloc[0]["deal_id"], rv.compliance, lang=lang),
                       playbook=playbook, pipeline=pipeline_report(data, playbook, "2025-05", lang))
    assert raw_headers(page) == [] and not RAW.search(page)
    sf = render_html(review(salesforce, playbook, "2026-02", lang=lang),
                     pipeline=pipeline_report(salesforce, playbook, "2026-02", lang))
    assert raw_headers(sf) == [] and not RAW.search(sf)
    if lang == "zh-CN":  # no English header on a Chinese page; Chinese text with full-width punctuation
        assert [h for h in headers(page) + headers(sf) if re.fullmatch(r"[A-Za-z _]+", h)] == []
        assert "偏离记录（" in page and "月度销售复盘：2025-05" in page and "偏离记录 (" not in page


def test_the_report_shows_percentages_amounts_with_the_currency_and_units(sim, playbook):
    """Rates are percentages (never 0.632), amounts carry the currency, durations name their unit."""
    data = read_export(sim.folder, "simulated", playbook=playbook)
    rv = review(data, playbook, "2025-05", lang="en")
    page = render_html(rv, pipeline=pipeline_report(data, playbook, "2025-05", "en"))
    trend = page[page.index("<h2>Month-over-month trend</h2>"):page.index("<h2>SOP compliance</h2>")]
    may = re.search(r"<td>2025-05</td>(.*?)</tr>", trend).group(1)
    cells = re.findall(r"<td>(.*?)</td>", may)
    hs = headers(trend)[1:]
    row = dict(zip(hs, cells))
    won, lost = rv.trend.at["2025-05", "won"], rv.trend.at["2025-05", "lost"]
    assert row["win rate"] == f"{won / (won + lost):.1%}"
    assert row["amount won"] == f"{rv.trend.at['2025-05', 'amount_won']:,.0f} CNY"
    assert "mean cycle (calendar days)" in hs and re.fullmatch(r"[+-]\d+\.\d pts", row["win rate, change"])
    assert not re.search(r"<td>0\.\d{3}</td>", page)  # no fraction printed as a fraction


def test_review_app_tables_and_pipeline_tab_read_as_people_read(playbook, tmp_path):
    """The review app on the real Salesforce export: every table labelled, the pipeline tab with its own month
    picker showing the month's figures, open deals by stage in USD and the time in stage."""
    app = build(CRM, lang="en", playbook=playbook)
    app.export.value = str(SALESFORCE)
    app.load_button.click()
    app.month.value = "2026-02"
    app.analyse_button.click()
    assert app.review is not None and app.pipe_month.value == "2026-02"
    assert [v for _, v in app.pipe_month.options] == ["2026-03", "2026-02", "2024-02"]
    pipe = app.pipeline.value
    assert "<h3>Time in stage</h3>" in pipe and "<td>Customer contact</td><td>5</td>" in pipe
    # nothing was created or closed in 2026-01: no change from a month without data, said in words
    assert "Pipeline (2026-02; no data last month, 2026-01" in pipe and "2,115,000 USD" in pipe
    assert "<td>no data last month</td>" in pipe and "<td>+" not in pipe
    app.pipe_month.value = "2026-03"  # another month: only the pipeline is redrawn
    assert "Pipeline (2026-03, change since 2026-02" in app.pipeline.value
    assert app.review.month == "2026-02"
    pages = [x.value for x in (app.cards, app.callout, app.funnel_table, app.compliance_table, app.findings_table,
                               app.group_table, app.group_stages, app.quality_table, app.pipeline)]
    for page in pages:
        assert raw_headers(page) == [] and not RAW.search(page), page[:300]
    assert "<th>deal id</th>" in app.findings_table.value and "<td>checked</td>" in app.compliance_table.value


def test_inferred_stages_carry_a_star_and_a_legend(maven, playbook):
    """Maven never records the stages after 'Engaging': their 100% is inferred, marked * with a legend."""
    rv = review(maven, playbook, lang="en")
    legend = report.inferred_legend(rv.funnel, "en")
    assert legend.startswith("* a stage the export never records")
    page = render_html(rv)
    funnel = page[page.index("<h2>Funnel</h2>"):page.index("<h2>Cycle-time distribution</h2>")]
    assert "<td>Solution demo *</td>" in funnel and "<td>Needs analysis</td>" in funnel
    assert html.escape(legend, quote=True) in funnel or legend in html.unescape(funnel)
    assert "<td>inferred *</td>" in funnel
    sf = review(read_export([SALESFORCE], "salesforce", playbook=playbook, progress=False), playbook, lang="en")
    assert report.inferred_legend(sf.funnel, "en") == ""  # every stage recorded: no legend


def test_kpi_cards_are_judged_against_their_targets_in_words_and_colour(maven, playbook):
    """Maven's whole-export win rate (63.2%) meets its 35% target; the card says so and is coloured 'met'; a
    sales cycle above 110% of its target is missed; the verdict is written, not only coloured."""
    rv = review(maven, playbook, lang="en")
    cards = {c.name: c for c in kpi_cards(rv)}
    win = cards["Win rate"]
    assert win.value == "63.2%" and win.verdict == "met" and win.target == "target 35.0% · target met"
    assert win.detail.startswith("4,238 won / 6,711 won or lost · 95% interval [")
    cycle = rv.kpis.loc["average_sales_cycle"]
    want = "met" if cycle["value"] <= 60 else ("near" if cycle["value"] <= 66 else "missed")
    assert cards[cycle["name"]].verdict == want
    assert cards[cycle["name"]].value == f"{cycle['value']:,.1f} calendar days"
    html_cards = report.kpi_cards_html(rv)
    assert "<div class='card met'><div class='k'>Win rate</div>" in html_cards
    assert report.kpi_verdict(0.31, 0.35, "fraction") == "near" and report.kpi_verdict(0.29, 0.35, "fraction") == "missed"
    assert report.kpi_verdict(65, 60, "calendar_days") == "near" and report.kpi_verdict(67, 60, "calendar_days") == "missed"


def _fewer_deals_created_in(month: str, keep: int) -> Callable[[list[dict[str, str]]], int]:
    """An edit of a simulated export's deals: all but ``keep`` of those created in ``month`` dated the day before it."""
    def edit(rows: list[dict[str, str]]) -> int:
        created = [r for r in rows if r["创建时间"].startswith(month)]
        before = (pd.Period(month, freq="M") - 1).end_time.strftime("%Y-%m-%d 10:00")
        for row in created[keep:]:
            row["创建时间"] = before
        return len(created[keep:])
    return edit


def test_a_rate_over_100_percent_is_a_data_problem_never_printed(sim, playbook, tmp_path):
    """With most of June's deals dated into May, more deals reach 'needs confirmed' in June than were created
    in it: lead conversion is a data problem with both counts, never printed above 100%."""
    assert copy_export_editing_deals(sim.folder, tmp_path / "export", _fewer_deals_created_in("2025-06", 5)) > 5
    data = read_export(tmp_path / "export", "simulated", playbook=playbook)
    rv = review(data, playbook, "2025-06", lang="en")
    k = rv.kpis.loc["lead_conversion_rate"]
    assert k["numerator"] > k["denominator"] == 5
    assert k["status"] == "not_computable" and k["value"] != k["value"]  # NaN
    assert k["reason"].startswith(f"data problem: the numerator ({k['numerator']:,.0f}) exceeds the denominator (5)")
    page = render_html(rv)
    percents = [float(x.replace(",", "")) for x in re.findall(r"([\d,]+(?:\.\d+)?)%", page)]
    assert percents and max(percents) <= 100  # no percentage above 100
    card = next(c for c in kpi_cards(rv) if c.name == k["name"])
    assert card.value == "not computable" and card.verdict == "" and "data problem" in card.reason
    assert rate_text(1.033, "en") == "data problem (over 100%)" and rate_text(1.033, "zh-CN") == "数据有误（超过100%）"
    assert rate_text(1.0, "en") == "100.0%"


def test_pipeline_lines_in_chinese_use_full_width_punctuation(salesforce, playbook):
    lines = pipeline_lines(pipeline_report(salesforce, playbook, "2026-02", "zh-CN"))
    text = "\n".join(lines)
    assert "赢单率：0.0%（赢单 0 / 赢单与丢单 1）" in text
    assert "客户接触：5 个商机，中位数 0.00个工作日、0.0个自然日（0.0小时）" in text  # each duration at its unit's precision
    assert not re.search(r"[\u4e00-\u9fff][:;,(] ", text) and not re.search(r"[\u4e00-\u9fff]\(", text)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_missing_fields_are_said_once_and_clauses_by_title_in_the_report_and_the_app(salesforce, playbook, lang):
    """Salesforce: the compliance section of the HTML report and of the review app name each check's clause by
    its title with its source in words (never "seed:1.2.2" or "company-setting"), each rule that cannot run in
    a few words, and each missing CRM field once, with the rules waiting for it; the mapping syntax is folded
    away, once per field."""
    rv = review(salesforce, playbook, "2026-02", lang=lang)
    page = render_html(rv)
    app = build(CRM, lang=lang, playbook=playbook)
    app.export.value = str(SALESFORCE)
    app.load_button.click()
    app.month.value = "2026-02"
    app.analyse_button.click()
    heading = "<h2>SOP 合规</h2>" if lang == "zh-CN" else "<h2>SOP compliance</h2>"
    section = page[page.index(heading):]
    for text in (section[:section.index("<h2>", 5)], app.compliance_table.value + app.findings_table.value):
        checks = text[text.index("<table"):text.index("</table>")]
        assert "`" not in checks and "seed:" not in text and "company-setting" not in text
        if lang == "zh-CN":
            assert "<td>规程第 1.2.2 节</td>" in text and "<td>公司设定</td>" in text
            assert "<td>缩短销售周期，提高响应速度</td>" in checks and "<th>SOP 条款</th>" in checks
            assert "<td>缺少客户等级（A/B/C）；电话、邮件和拜访记录。</td>" in checks
            assert text.count("<b>客户等级（A/B/C）</b>") == 1 and "等待它的规则：按客户等级的每周跟进次数" in text
        else:
            assert "<td>SOP section 1.2.2</td>" in text and "<td>company setting</td>" in text
            assert "<td>Waits for who approved a quote.</td>" not in checks  # the currency is said too
            assert text.count("<b>the customer class (A/B/C)</b>") == 1
        assert text.count("`milestone_dates: {delivered: &lt;") == 1  # the mapping's syntax: once, folded
        assert "<details>" in text


@pytest.mark.parametrize("lang, header", [
    ("zh-CN", "数据来源：Salesforce · 合规检查截至 2026-03-31 08:00（北京时间）"),
    ("en", "Source: Salesforce · compliance checked as of 2026-03-31 08:00 (Beijing time)")])
def test_the_report_header_names_the_source_and_the_cut_off_in_the_company_time_zone(salesforce, playbook, lang,
                                                                                     header):
    """The header names the CRM by its display name and the cut-off in the playbook's time zone, in words."""
    rv = review(salesforce, playbook, "2026-02", lang=lang)
    assert str(rv.compliance.as_of) == "2026-03-31 00:00:00+00:00"  # 08:00 in Beijing
    page = render_html(rv)
    assert html.unescape(page).count(header) == 1 and "salesforce" not in page.split("<h2>")[0]


def test_data_quality_shows_date_formats_in_words_with_an_example(salesforce, playbook):
    """Salesforce writes two date formats: the data-quality table says them as words with an example, never as
    strftime patterns."""
    rv = review(salesforce, playbook, "2026-02", lang="zh-CN")
    message = rv.quality.summary.set_index("check").at["date_formats", "message"] \
        if "check" in rv.quality.summary.columns else rv.quality.summary.at["date_formats", "message"]
    assert "月/日/两位年，如 03/07/25" in message and "%" not in message
    assert "月/日/两位年 时:分 AM/PM，如 03/07/25 02:05 PM" in message
    en = review(salesforce, playbook, "2026-02", lang="en").quality.summary
    en_message = en.set_index("check").at["date_formats", "message"] if "check" in en.columns \
        else en.at["date_formats", "message"]
    assert "month/day/two-digit year, e.g. 03/07/25" in en_message and "%" not in en_message


@pytest.mark.parametrize(("lang", "axes", "legend"), [
    ("zh-CN", {"funnel": ("到达该阶段的商机数（→ 转化率 [95% 区间]）", "SOP 阶段"), "cycle": ("销售周期（自然日）", "赢单数"),
               "trend": ("关闭月份（赢单与丢单）", "赢单率（95% 区间）"), "timeline": ("时间（北京时间）", "阶段")},
     ["导出有记录", "导出未记录：由之后的阶段或赢单推断", "瓶颈阶段"]),
    ("en", {"funnel": ("deals that reached the stage (→ conversion [95% interval])", "SOP stage"),
            "cycle": ("sales cycle (calendar days)", "won deals"), "trend": ("month closed (won or lost)", "win rate (95% interval)"),
            "timeline": ("time (Beijing time)", "stage")},
     ["recorded in the export", "not recorded: inferred from a later stage or a win", "bottleneck"])])
def test_every_review_chart_names_both_axes_and_keys_its_colours_in_the_pages_language(sim, playbook, figures, lang,
                                                                                        axes, legend):
    """The funnel, the cycle-time histogram, the trend and the case timeline name what each axis counts, in the
    page's language; the funnel's key names each colour it uses (recorded, inferred, the bottleneck)."""
    import matplotlib.pyplot as plt
    data = read_export(sim.folder, "simulated", playbook=playbook)
    rv = review(data, playbook, None, lang=lang)
    cs = case_study(data, playbook, rv.compliance.findings["deal_id"].iloc[0], rv.compliance, lang=lang)
    drawn = {"funnel": report.chart_funnel(rv), "cycle": report.chart_cycle(rv), "trend": report.chart_trend(rv),
             "timeline": report.timeline_figure(cs, playbook, lang)}
    for name, fig in drawn.items():
        ax = fig.axes[0]
        assert (ax.get_xlabel(), ax.get_ylabel()) == axes[name], name
    assert not rv.funnel["observed"].all() and rv.bottleneck.stage  # the simulated export: both colours are used
    assert [x.get_text() for x in drawn["funnel"].axes[0].get_legend().get_texts()] == legend
    mean = drawn["cycle"].axes[0].get_legend().get_texts()[0].get_text()
    assert mean.endswith(t("个自然日", " calendar days", lang)) and re.search(r"\d\.\d(个| )", mean)
    drawn["may"] = report.chart_trend(review(data, playbook, "2025-05", lang=lang))  # the month reviewed, keyed
    assert [x.get_text() for x in drawn["may"].axes[0].get_legend().get_texts()] == [
        t("复盘月份 2025-05", "month reviewed (2025-05)", lang)]
    for fig in drawn.values():
        plt.close(fig)


def test_money_reads_one_way_in_the_case_study_file_the_findings_the_timeline_and_the_pipeline(sim, playbook):
    """An amount on a Chinese page ends in 元 wherever the review shows it (the case study file, the quote
    findings, an event's amount, the pipeline figures), never the code CNY; in English it ends in CNY."""
    data = read_export(sim.folder, "simulated", playbook=playbook)
    for lang, word, other in (("zh-CN", "元", "CNY"), ("en", "CNY", "元")):
        comp = check_compliance(data, playbook, lang=lang)
        quote = comp.findings[comp.findings["check"] == "authority"].iloc[0]
        cs = case_study(data, playbook, quote["deal_id"], comp, lang=lang)
        page = case_study_html(cs, playbook)
        amount = money_text(cs.deal["amount"], "CNY", lang)
        assert amount.endswith(f" {word}") and t(f"金额：{amount}", f"Amount: {amount}", lang) in page
        assert other not in re.sub(r"<[^>]+>", "", page).replace("人民币元", "")  # a clause may name the currency
        assert quote["actual"].startswith(money_text(quote["value"], "CNY", lang))
        priced = cs.timeline.loc[cs.timeline["event_id"] == quote["event_id"], "what"].iloc[0]
        assert priced.endswith(money_text(quote["value"], "CNY", lang))
        figures = shown_figures(pipeline_report(data, playbook, "2025-05", lang))
        money = [v for v in figures["value"] if re.search(r"\d,\d{3}", v)]
        assert money and all(word in v and other not in v for v in money)


def test_durations_read_at_their_units_precision_in_the_findings_and_the_case_study(sim, playbook):
    """Hours to a tenth (26.4小时, never 26.37小时), working days to a hundredth, in the findings, the case
    study's stages and its file, as the tables and the XLSX show them."""
    data = read_export(sim.folder, "simulated", playbook=playbook)
    comp = check_compliance(data, playbook, lang="zh-CN")
    f = comp.findings
    hours = f[f["unit"].isin(["elapsed_hours", "business_hours"])]
    days = f[f["unit"] == "working_days"]
    assert len(hours) and len(days)
    for rows in (hours, days):
        for r in rows.itertuples():
            assert duration_text(r.value, r.unit, "zh-CN") in r.actual
    assert not re.search(r"\d\.\d\d(个工作)?小时", " ".join(f["actual"]))
    cs = case_study(data, playbook, hours["deal_id"].iloc[0], comp, lang="zh-CN")
    timed = cs.sop[cs.sop["verdict"] == "met"]
    assert len(timed) and all(a == duration_text(v, u, "zh-CN") for a, v, u in zip(timed["actual"], timed["value"],
                                                                                    timed["unit"].fillna("")) if u)
    page = case_study_html(cs, playbook)
    assert not re.search(r"\d\.\d\d(个工作)?小时", page) and re.search(r"\d\.\d(个工作)?小时", page)
    assert duration_text(26.3712, "elapsed_hours", "zh-CN") == "26.4小时"
    assert duration_text(5.1649, "working_days", "en") == "5.16 working days"
