"""The pipeline report of a month (sopcoach.analytics.pipeline), checked against the real exports with plain pandas."""
from __future__ import annotations

import json
import math
from decimal import Decimal

import pandas as pd
import pytest

from sopcoach.analytics.inputs import gap_of
from sopcoach.analytics.pipeline import pipeline_json, pipeline_lines, pipeline_report
from sopcoach.cli.main import main
from sopcoach.crm.reading import read_export
from support import SHARED

CRM = SHARED / "data" / "crm"
MAVEN = CRM / "maven_crm_sales_opportunities"
SALESFORCE = CRM / "salesforce_devorg_export_earthfink"
ZOHO = CRM / "zoho_crm_export_sample"


@pytest.fixture(scope="module")
def maven(playbook):
    return read_export([MAVEN], "maven", playbook=playbook, progress=False)


@pytest.fixture(scope="module")
def maven_raw():
    raw = pd.read_csv(MAVEN / "sales_pipeline.csv", dtype={"opportunity_id": str})
    for c in ("engage_date", "close_date"):
        raw[c] = pd.to_datetime(raw[c])
    return raw


def test_maven_open_pipeline_deal_size_and_rep_win_rate_match_the_csv(maven, maven_raw, playbook):
    """Open at the end of June 2017 = engaged by then and not closed by then; the average won deal and each
    rep's win rate are over the deals closed in June; all recomputed here from the CSV alone."""
    pr = pipeline_report(maven, playbook, "2017-06", "en")
    raw, end = maven_raw, pd.Timestamp("2017-07-01")
    is_open = (raw["engage_date"] < end) & (raw["close_date"].isna() | (raw["close_date"] >= end))
    is_open &= ~(raw["deal_stage"].isin(["Won", "Lost"]) & raw["close_date"].isna())
    assert pr.figures.at["open_deals", "value"] == is_open.sum() == pr.by_stage["deals"].sum()
    assert pr.figures.at["pipeline_value", "value"] == pytest.approx(raw.loc[is_open, "close_value"].sum())
    assert pr.by_stage["amount"].sum() == pytest.approx(raw.loc[is_open, "close_value"].sum())
    assert pr.stage_basis == "history" and pr.currency == "USD"
    june = raw[(raw["close_date"] >= "2017-06-01") & (raw["close_date"] < end)]
    won = june[june["deal_stage"] == "Won"]
    assert pr.figures.at["average_deal_size", "value"] == pytest.approx(won["close_value"].mean())
    decided = june.groupby("sales_agent")["deal_stage"].agg(lambda s: (s == "Won").sum() / len(s))
    assert pr.reps["win_rate"].dropna().sort_index().to_dict() == pytest.approx(decided.sort_index().to_dict())
    assert (pr.reps["win_rate_target"] == 0.35).all() and (pr.reps["cycle_target"] == 60).all()
    assert pr.reps["win_rate_vs_target"].to_numpy() == pytest.approx((pr.reps["win_rate"] - 0.35).to_numpy(),
                                                                     nan_ok=True)
    # change since May, from May's own figures
    may = raw[(raw["close_date"] >= "2017-05-01") & (raw["close_date"] < "2017-06-01")]
    may_size = may.loc[may["deal_stage"] == "Won", "close_value"].mean()
    assert pr.previous_month == "2017-05"
    assert pr.figures.at["average_deal_size", "change"] == pytest.approx(won["close_value"].mean() - may_size)
    # velocity from its shown inputs
    f = pr.figures["value"]
    per_day = f["open_deals"] * f["win_rate"] * f["average_deal_size"] / f["average_sales_cycle"]
    assert f["sales_velocity_per_day"] == pytest.approx(per_day)
    assert f["sales_velocity_per_month"] == pytest.approx(per_day * 30)
    assert f"{int(f['open_deals']):,} × " in pr.figures.at["sales_velocity_per_day", "inputs"]


def test_maven_has_no_probability_nor_lost_reason_and_says_how_to_supply_them(maven, playbook):
    pr = pipeline_report(maven, playbook, "2017-06", "en")
    assert math.isnan(pr.figures.at["weighted_forecast", "value"])
    why = pr.figures.at["weighted_forecast", "reason"]
    assert "no deal probability column" in why and "percent: true" in why and "process.yaml" in why
    assert pr.by_stage["weighted"].isna().all()
    assert "lost_reason: <column>" in pr.lost_reasons_gap and pr.lost_reasons.empty
    zh = pipeline_report(maven, playbook, "2017-06", "zh-CN")
    assert "丢单原因" in zh.lost_reasons_gap and zh.figures.at["win_rate", "name"] == "赢单率"


def test_salesforce_weighted_forecast_uses_the_exports_probability(playbook):
    data = read_export([SALESFORCE], "salesforce", playbook=playbook, progress=False)
    pr = pipeline_report(data, playbook, "2026-02", "en")
    raw = pd.read_csv(SALESFORCE / "Opportunity.csv")
    created = pd.to_datetime(raw["CreatedDate"], format="%m/%d/%y")
    closed = pd.to_datetime(raw["CloseDate"], format="%m/%d/%y")
    # open at the end of February: created by then and not closed by then (CloseDate of an open deal is expected)
    is_open = (created < "2026-03-01") & (~raw["IsClosed"] | (closed >= "2026-03-01"))
    assert is_open.sum() > 0
    assert pr.probability_source == "mapping"
    assert pr.figures.at["open_deals", "value"] == is_open.sum()
    expected = (raw.loc[is_open, "Amount"] * raw.loc[is_open, "Probability"] / 100).sum()
    assert pr.figures.at["weighted_forecast", "value"] == pytest.approx(expected)
    assert pr.by_stage["weighted"].sum() == pytest.approx(expected)
    assert pr.figures.at["pipeline_value", "value"] == pytest.approx(raw.loc[is_open, "Amount"].sum())


def test_zoho_forecast_from_the_playbooks_stage_probabilities(playbook):
    """Without a probability column, the playbook's stage probabilities weight the open deals by their stage;
    Zoho has no stage history, so a deal closed after the month's end has no known stage at that time."""
    data = read_export([ZOHO], "zoho", playbook=playbook, progress=False)
    plain = pipeline_report(data, playbook, "2021-05", "en")
    assert plain.stage_basis == "current" and plain.probability_source == ""
    assert "no deal probability column" in plain.figures.at["weighted_forecast", "reason"]
    probs = {s.id: Decimal(i + 1) / 10 for i, s in enumerate(playbook.stages)}
    pb = playbook.model_copy(update={"stages": [s.model_copy(update={"probability": probs[s.id]})
                                                for s in playbook.stages]})
    pr = pipeline_report(data, pb, "2021-05", "en")
    assert pr.probability_source == "playbook" and pr.figures.at["weighted_forecast", "reason"] == ""
    raw = pd.read_csv(ZOHO / "Potentials.csv")
    stage_of = {name: st for name, st in data.mapping.spec.stages.items()}
    amount = raw["Amount"].str.replace(r"[$,]", "", regex=True).astype(float)
    prob = raw["Stage"].map(stage_of).map({k: float(v) for k, v in probs.items()})
    assert pr.figures.at["weighted_forecast", "value"] == pytest.approx((amount * prob).sum())
    april = pipeline_report(data, pb, "2021-04", "en")
    unknown = int(april.by_stage.at["(unknown)", "deals"])
    assert unknown > 0 and math.isnan(april.figures.at["weighted_forecast", "value"])
    assert f"of {unknown} open deals is not known" in april.figures.at["weighted_forecast", "reason"]


def test_simulated_export_month_and_the_previous_one(playbook, tmp_path):
    from sopcoach.crm.simulate import simulate
    sim = simulate(playbook, tmp_path, seed=3, deals=80, weeks=12)
    data = read_export(sim.folder, "simulated", playbook=playbook)
    pr = pipeline_report(data, playbook, "2025-04", "en")
    assert pr.currency == "CNY" and pr.stage_basis == "history"
    deals = data.unique_deals()
    won = deals[(deals["outcome"] == "won") & (deals["closed"] >= pd.Timestamp("2025-03-31T16:00Z"))
                & (deals["closed"] < pd.Timestamp("2025-04-30T16:00Z"))]
    assert pr.figures.at["average_deal_size", "value"] == pytest.approx(won["amount"].mean())
    march = pipeline_report(data, playbook, "2025-03", "en")
    for f in ("open_deals", "pipeline_value", "win_rate", "lead_conversion_rate", "quote_acceptance_rate"):
        assert pr.figures.at[f, "previous"] == pytest.approx(march.figures.at[f, "value"], nan_ok=True)
    from sopcoach.analytics.kpis import kpis  # every KPI of the SOP, with its change since the previous month
    now, before = kpis(data, playbook, "2025-04", lang="en"), kpis(data, playbook, "2025-03", lang="en")
    for kid in ("lead_conversion_rate", "quote_acceptance_rate", "contract_signing_rate"):
        assert pr.figures.at[kid, "name"] == now.at[kid, "name"]
        assert pr.figures.at[kid, "change"] == pytest.approx(now.at[kid, "value"] - before.at[kid, "value"], nan_ok=True)
    assert not math.isnan(pr.figures.at["lead_conversion_rate", "change"])
    text = "\n".join(pipeline_lines(pr))
    assert "CNY" in text and "%" in text and "not computable" in text  # lost reasons


def test_analyze_month_prints_and_emits_the_pipeline(capsys, monkeypatch):
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    assert main(["analyze", str(MAVEN), "--month", "2017-06", "--format", "json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    pipe = out["pipeline"]
    assert pipe["month"] == "2017-06" and pipe["currency"] == "USD"
    assert pipe["figures"]["weighted_forecast"]["value"] is None
    assert "probability" in pipe["figures"]["weighted_forecast"]["reason"]
    assert pipe["figures"]["win_rate"]["value"] == pytest.approx(out["kpis"]["win_rate"])
    assert main(["analyze", str(MAVEN), "--month", "2017-06", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Pipeline (2017-06, change since 2017-05" in text and "Win rate: 82.8%" in text
    assert main(["analyze", str(MAVEN), "--format", "json", "--no-progress"]) == 0
    assert "pipeline" not in json.loads(capsys.readouterr().out)


def test_pipeline_json_is_json(maven, playbook):
    json.dumps(pipeline_json(pipeline_report(maven, playbook, "2017-06", "en")), allow_nan=False)


def test_html_report_has_the_pipeline_section(maven, playbook):
    from sopcoach.analytics.report import render_html
    from sopcoach.analytics.review import review
    rv = review(maven, playbook, "2017-06", lang="en")
    pr = pipeline_report(maven, playbook, "2017-06", "en")
    page = render_html(rv, pipeline=pr)
    part = page[page.index("<h2>Pipeline</h2>"):page.index("<h2>Funnel</h2>")]
    assert f"{pr.figures.at['average_deal_size', 'value']:,.0f} USD" in part
    assert "82.8%" in part and "Per rep" in part and "Darcel Schlecht" in part
    assert "lost_reason: &lt;column&gt;" in part  # the lost reasons say how a mapping supplies them
    assert "<h2>Pipeline</h2>" not in render_html(rv)


@pytest.fixture(scope="module")
def salesforce(playbook):
    return read_export([SALESFORCE], "salesforce", playbook=playbook, progress=False)


def _opportunity_history_stays(playbook) -> pd.DataFrame:
    """Every stay in a playbook stage, from OpportunityHistory.csv and the mapping's stage names alone."""
    import yaml
    from support import ROOT
    names = yaml.safe_load((ROOT / "src/sopcoach/crm/mappings/salesforce.yaml").read_text(encoding="utf-8"))["stages"]
    h = pd.read_csv(SALESFORCE / "OpportunityHistory.csv")
    h["stage"] = h["StageName"].map(names)
    h["at"] = pd.to_datetime(h["CreatedDate"], format="%m/%d/%y %I:%M %p").dt.tz_localize("UTC")
    h = h.sort_values(["OpportunityId", "at"], kind="stable")
    h = h[~((h["OpportunityId"] == h["OpportunityId"].shift()) & (h["stage"] == h["stage"].shift()))]
    h["left"] = h.groupby("OpportunityId")["at"].shift(-1)
    stays = h[h["left"].notna() & h["stage"].isin([s.id for s in playbook.stages])]
    return stays.assign(month=stays["left"].dt.tz_convert(playbook.calendar.timezone).dt.strftime("%Y-%m"),
                        hours=(stays["left"] - stays["at"]) / pd.Timedelta(hours=1))


def test_salesforce_time_in_stage_matches_opportunity_history(salesforce, playbook):
    """Time in stage of February 2026: per stage, the deals that left it then and their median and mean stay,
    in hours and calendar days (Asia/Shanghai has no daylight saving), as plain pandas reads OpportunityHistory;
    working days by the playbook's business calendar over the same stays."""
    from sopcoach.content.businesstime import DurationUnit
    pr = pipeline_report(salesforce, playbook, "2026-02", "en")
    tis = pr.time_in_stage
    ref = _opportunity_history_stays(playbook)
    feb = ref[ref["month"] == "2026-02"].groupby(["OpportunityId", "stage"], as_index=False)["hours"].sum()
    assert len(feb) == 5 and set(feb["stage"]) == {"first_contact"}  # Prospecting, left minutes later on 24 Feb
    assert tis["deals"].to_dict() == {s.id: int((feb["stage"] == s.id).sum()) for s in playbook.stages}
    row = tis.loc["first_contact"]
    assert row["hours_median"] == pytest.approx(feb["hours"].median())
    assert row["calendar_days_median"] == pytest.approx(feb["hours"].median() / 24)
    assert row["calendar_days_mean"] == pytest.approx(feb["hours"].mean() / 24)
    cal = playbook.business_calendar()
    stays = ref[ref["month"] == "2026-02"]
    working = [float(cal.elapsed(a.to_pydatetime(), b.to_pydatetime(), DurationUnit.WORKING_DAYS))
               for a, b in zip(stays["at"], stays["left"])]
    assert row["working_days_median"] == pytest.approx(pd.Series(working).median())
    assert 0 < row["working_days_median"] < 0.01  # minutes on a working Tuesday (after the Spring Festival)
    assert tis.loc[["needs_analysis", "quotation"], "hours_median"].isna().all()  # no deal left them in February
    assert gap_of(tis) == ""
    march = pipeline_report(salesforce, playbook, "2026-03", "en").time_in_stage
    assert march["deals"].sum() == 0  # in March the deals only went from won to lost: no playbook stage left


def test_maven_time_in_stage_runs_from_engaging_to_the_close(maven, maven_raw, playbook):
    """Maven's mapping dates the entry into 'Engaging' (needs analysis) by engage_date; a deal leaves it when
    it closes: June 2017's time in stage is close_date − engage_date of the deals closed in June."""
    tis = pipeline_report(maven, playbook, "2017-06", "en").time_in_stage
    raw = maven_raw
    june = raw[(raw["close_date"] >= "2017-06-01") & (raw["close_date"] < "2017-07-01") & raw["engage_date"].notna()]
    days = (june["close_date"] - june["engage_date"]).dt.days
    assert tis.at["needs_analysis", "deals"] == len(june)
    assert tis.at["needs_analysis", "calendar_days_median"] == pytest.approx(days.median())
    assert tis.at["needs_analysis", "calendar_days_mean"] == pytest.approx(days.mean())
    assert tis.at["needs_analysis", "working_days_median"] < tis.at["needs_analysis", "calendar_days_median"]
    may = pipeline_report(maven, playbook, "2017-05", "en").time_in_stage
    assert tis.at["needs_analysis", "working_days_median_change"] == pytest.approx(
        tis.at["needs_analysis", "working_days_median"] - may.at["needs_analysis", "working_days_median"])


def test_time_in_stage_without_stage_history_says_why_and_how_a_mapping_supplies_it(playbook):
    """Zoho's export has no stage history: every duration is blank (never 0) and the reason says which
    mapping entries supply it (an events table of stage changes, or stage_dates)."""
    zoho = read_export([ZOHO], "zoho", playbook=playbook, progress=False)
    tis = pipeline_report(zoho, playbook, "2021-03", "en").time_in_stage
    assert tis["deals"].isna().all() and tis["working_days_median"].isna().all()
    why = gap_of(tis)
    assert "no stage history" in why and "kind: {value: stage_change}" in why and "stage_dates" in why and "`" not in why
    assert "working_days_median" not in why and "median (working days)" in why  # columns named by their labels
    lines = "\n".join(pipeline_lines(pipeline_report(zoho, playbook, "2021-03", "zh-CN")))
    assert "各阶段停留时间" in lines and "阶段变更历史" in lines
    from sopcoach.analytics.report import render_html
    from sopcoach.analytics.review import review
    page = render_html(review(zoho, playbook, "2021-03", lang="en"), pipeline=pipeline_report(zoho, playbook, "2021-03", "en"))
    part = page[page.index("<h3>Time in stage</h3>"):page.index("<h3>Per rep</h3>")]
    assert "no stage history" in part and "<table" not in part  # the reason, not a table of blanks


def test_time_in_stage_reaches_the_json_the_text_and_the_report(salesforce, playbook):
    from sopcoach.analytics.report import render_html
    from sopcoach.analytics.review import review
    pr = pipeline_report(salesforce, playbook, "2026-02", "en")
    out = pipeline_json(pr)
    first = next(r for r in out["time_in_stage"] if r["stage"] == "first_contact")
    assert first["deals"] == 5 and first["hours_median"] == pytest.approx(2 / 60)
    json.dumps(out, allow_nan=False)
    text = "\n".join(pipeline_lines(pr))
    assert "Customer contact: 5 deals, median 0.00 working days, 0.0 calendar days (0.0 hours)" in text
    page = render_html(review(salesforce, playbook, "2026-02", lang="en"), pipeline=pr)
    part = page[page.index("<h3>Time in stage</h3>"):page.index("<h3>Lost reasons</h3>")]
    assert "<th>median (working days)</th>" in part and "<th>median (hours)</th>" in part
    # working days to a hundredth, calendar days and hours to a tenth, as the text and the XLSX show them
    assert "<td>Customer contact</td><td>5</td><td>0.00</td><td>0.00</td><td>0.0</td><td>0.0</td><td>0.0</td>" in part


def test_change_since_last_month_is_never_from_a_month_without_data(salesforce, playbook):
    """Salesforce has data in 2024-02, 2026-02 and 2026-03. February 2026's change compares with January 2026,
    the calendar month before, which has no data: "no data last month", never a change from zero; March
    compares with February. The trend's win-rate change likewise never reaches back to 2024-02."""
    from sopcoach.analytics.kpis import monthly_trend
    from sopcoach.analytics.pipeline import shown_figures
    from sopcoach.analytics.report import trend_people
    from sopcoach.analytics.review import review
    feb = pipeline_report(salesforce, playbook, "2026-02", "en")
    assert feb.previous_month == "2026-01" and not feb.previous_has_data
    assert feb.figures["previous"].isna().all() and feb.figures["change"].isna().all()
    shown = shown_figures(feb)
    assert set(shown.loc[shown["value"] != "not computable", "change"]) == {"no data last month"}
    assert "no data last month" in "\n".join(pipeline_lines(feb))
    assert pipeline_json(feb)["previous_has_data"] is False
    zh = shown_figures(pipeline_report(salesforce, playbook, "2026-02", "zh-CN"))
    assert "上月无数据" in set(zh["change"])
    mar = pipeline_report(salesforce, playbook, "2026-03", "en")
    assert mar.previous_has_data and mar.figures.at["open_deals", "previous"] == feb.figures.at["open_deals", "value"]
    trend = monthly_trend(salesforce, playbook, lang="en")
    assert list(trend.index) == ["2024-02", "2026-02", "2026-03"]
    assert math.isnan(trend.at["2026-02", "win_rate_change"])  # not 2026-02 minus 2024-02
    assert trend.at["2026-03", "win_rate_change"] == pytest.approx(
        trend.at["2026-03", "win_rate"] - trend.at["2026-02", "win_rate"])
    table = trend_people(review(salesforce, playbook, None, lang="en"))
    change = [row[table.header.index("win rate, change")] for row in table.rows]
    assert change == ["no data last month", "no data last month", "+0.0 pts"]


def test_open_deals_without_any_amount_have_no_pipeline_value_not_zero(maven, playbook):
    """Maven's deals open at the end of 2017-12 carry no amount (it records amounts at the close): the pipeline value
    and the weighted forecast are not computable with that reason, never 0 USD with a drop from last month."""
    pr = pipeline_report(maven, playbook, "2017-12", "en")
    assert pr.figures.at["open_deals", "value"] > 0
    for fid in ("pipeline_value", "weighted_forecast"):
        assert math.isnan(pr.figures.at[fid, "value"])
        assert "deals open at the month's end has an amount" in pr.figures.at[fid, "reason"]
