"""KPIs, funnel, bottleneck, SOP compliance in working time, case studies and the CLI (the HTML: test_report.py)."""
from __future__ import annotations

import csv
import json
import math
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from sopcoach.analytics.case_study import case_study
from sopcoach.analytics.compliance import check_compliance
from sopcoach.analytics.funnel import find_bottleneck, funnel, wilson_interval
from sopcoach.analytics.kpis import breakdown, cycle_times, kpis, monthly_trend
from sopcoach.analytics.period import Period
from sopcoach.analytics.review import review, review_json
from sopcoach.cli.main import main
from sopcoach.content.businesstime import DurationUnit
from sopcoach.content.playbook import CalendarSpec, DurationSpec, load_playbook
from sopcoach.crm.mapping import builtin_mapping_path
from sopcoach.crm.reading import read_export
from support import ROOT, SHARED, day_first_close_dates

CRM = SHARED / "data" / "crm"
MAVEN = CRM / "maven_crm_sales_opportunities"
ZOHO = CRM / "zoho_crm_export_sample"

DEAL_HEADER = ["商机编号", "客户编号", "客户等级", "产品", "负责人", "阶段", "金额", "创建时间", "关闭时间"]
EVENT_HEADER = ["记录编号", "商机编号", "客户编号", "类型", "方向", "时间", "执行人", "阶段", "事项", "主题",
                "报价金额", "折扣", "审批人"]
STAFF = [{"姓名": "张伟", "角色": "销售代表", "团队": "华东一组", "区域": "华东"},
         {"姓名": "李娜", "角色": "客户经理", "团队": "华东一组", "区域": "华东"}]


def write_export(folder: Path, deals: list[dict], events: list[dict], timezone: str | None = None,
                 currency: str | None = None) -> Path:
    """Write a small export in the simulated CRM's format; return the mapping to read it with."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, header, rows in (("商机.csv", DEAL_HEADER, deals), ("跟进记录.csv", EVENT_HEADER, events),
                               ("销售人员.csv", list(STAFF[0]), STAFF)):
        with open(folder / name, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header, restval="")
            writer.writeheader()
            writer.writerows(rows)
    text = builtin_mapping_path("simulated").read_text(encoding="utf-8")
    if timezone:
        text = text.replace("timezone: Asia/Shanghai", f"timezone: {timezone}")
    if currency:
        text = text.replace("currency: CNY", f"currency: {currency}")
    mapping = folder.parent / f"{folder.name}-mapping.yaml"
    mapping.write_text(text, encoding="utf-8")
    return mapping


def deal(i: str, created: str, stage: str = "需求分析", closed: str = "", tier: str = "A类",
         owner: str = "张伟") -> dict:
    return {"商机编号": i, "客户编号": f"C{i}", "客户等级": tier, "产品": "crm-standard", "负责人": owner,
            "阶段": stage, "金额": "100,000.00", "创建时间": created, "关闭时间": closed}


_seq = iter(range(1, 10 ** 6))


def event(deal_id: str, kind: str, when: str, owner: str = "张伟", **fields: str) -> dict:
    row = {"记录编号": f"E{next(_seq):06d}", "商机编号": deal_id, "客户编号": f"C{deal_id}", "类型": kind,
           "时间": when, "执行人": owner}
    row.update(fields)
    return row


def read(folder: Path, mapping: Path, playbook) -> object:
    return read_export(folder, mapping, playbook=playbook)


def variant(playbook, timezone: str, years: list[int], holidays: list[str] = (), day_end: str = "18:00",
            limits: dict[str, tuple[int, str]] | None = None, deadlines: tuple[str, ...] = ()):
    """The playbook with a declared calendar in another zone, some SLA limits changed and the SLAs
    ``deadlines`` made plain deadlines (no scheduled day, no tolerance)."""
    cal = CalendarSpec(timezone=timezone, weekend=["Sat", "Sun"], day_start="09:00", day_end=day_end,
                       holidays_source="declared", years=years,
                       holidays=[pd.Timestamp(h).date() for h in holidays], clause="business-calendar")
    slas = [s.model_copy(update={"limit": DurationSpec(value=Decimal(limits[s.id][0]), unit=DurationUnit(limits[s.id][1]))})
            if limits and s.id in limits else s for s in playbook.slas]
    slas = [s.model_copy(update={"kind": "deadline", "tolerance": None}) if s.id in deadlines else s for s in slas]
    return playbook.model_copy(update={"calendar": cal, "slas": slas})


def findings(comp, check: str) -> list[str]:
    return comp.findings.loc[comp.findings["check"] == check, "deal_id"].tolist()


@pytest.fixture(scope="module")
def pbm():
    from sopcoach.content.playbook import load_playbook
    return load_playbook(ROOT / "playbook")


@pytest.fixture(scope="module")
def maven(pbm):
    return read_export([MAVEN], "maven", playbook=pbm)


@pytest.fixture(scope="module")
def maven_review(maven, pbm):
    return review(maven, pbm, lang="en")


# ------------------------------------------------------------------------------ KPIs on Maven


def test_maven_win_rate(maven_review):
    """The Maven win rate is won / (won + lost) = 4238 / 6711 = 0.632."""
    k = maven_review.kpis.loc["win_rate"]
    assert (k["numerator"], k["denominator"]) == (4238, 6711)
    assert round(k["value"], 3) == 0.632


def test_maven_median_won_cycle(maven_review):
    """The median won-deal cycle (engage -> close) of the Maven pipeline is 57 calendar days."""
    assert maven_review.kpis.loc["median_sales_cycle", "value"] == 57.0
    assert len(maven_review.cycle_days) == 4238


def test_kpi_the_export_cannot_support_is_not_zero(maven_review):
    """Maven never records a solution-demo stage, so lead conversion is not computable (NaN), not 0."""
    k = maven_review.kpis.loc["lead_conversion_rate"]
    assert k["status"] == "not_computable" and math.isnan(k["value"])
    assert "never records the 'Solution demo' stage" in k["reason"]


def test_maven_bottleneck_is_not_judged_on_a_lossless_stage(maven_review):
    """Maven books every loss at Engaging (needs analysis): Prospecting (first contact) converts 100%
    by construction, so no stage is called the bottleneck, and the reason says why."""
    b = maven_review.bottleneck
    assert b.stage is None and not b.judged and b.css_class == "neutral"  # not a green "all fine"
    assert "records no loss at all at: Customer contact" in find_bottleneck(maven_review.funnel, lang="en").reason


def test_maven_funnel_counts(maven_review):
    """The funnel reaches 8,800 / 8,300 / 4,238 deals and marks unrecorded stages as not observed."""
    f = maven_review.funnel
    assert f["reached"].tolist()[:3] == [8800, 8300, 4238]
    assert f["observed"].tolist() == [True, True, False, False, False, False]
    assert f.loc["needs_analysis", "open_here"] == 1589


def test_maven_per_month_win_rate(maven, pbm):
    """The monthly win rate counts the deals closed in that month (playbook time zone)."""
    deals = maven.deals
    local = deals["closed"].dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m")
    sel = deals[local == "2017-06"]
    expected = (sel["outcome"] == "won").sum() / len(sel)
    assert kpis(maven, pbm, "2017-06").loc["win_rate", "value"] == pytest.approx(expected)


def test_trend_has_one_row_per_month(maven, pbm):
    """The month-over-month trend covers every month and its change is the difference of win rates."""
    tr = monthly_trend(maven, pbm)
    assert tr.index[0] == "2016-10" and tr.index[-1] == "2017-12"
    assert tr["win_rate_change"].iloc[-1] == pytest.approx(tr["win_rate"].iloc[-1] - tr["win_rate"].iloc[-2])


def test_breakdown_per_rep_adds_up(maven, pbm):
    """Per-rep won and lost counts add up to the whole export's."""
    by = breakdown(maven, pbm, "owner")
    assert (by["won"].sum(), by["lost"].sum()) == (4238, 2473)
    assert len(by) == 30


def test_stage_conversion_per_team_names_the_weak_stage(maven, pbm, tmp_path):
    """Per team, Maven's needs analysis converts like the whole pipeline but no weak stage is called
    (losses are booked at one stage only); in a simulated export whose quotation stage loses most
    deals, every team's weak stage is quotation."""
    from sopcoach.analytics.kpis import stage_conversion_by
    from sopcoach.crm.simulate import simulate
    conv = stage_conversion_by(maven, pbm, "team", lang="en")
    assert len(conv) == 6 and conv["weak_stage"].isna().all()
    assert conv["needs_analysis"].between(0.55, 0.72).all()
    sim = simulate(pbm, tmp_path, seed=5, deals=400, weeks=26)
    data = read_export(sim.folder, "simulated", playbook=pbm)
    whole = find_bottleneck(funnel(data, pbm, lang="en"), lang="en")
    conv = stage_conversion_by(data, pbm, "team", lang="en")
    assert whole.stage == "quotation" and set(conv["weak_stage"]) == {"Quotation"}
    assert conv["deals"].sum() == len(data.deals)


def test_breakdown_rejects_an_unknown_group(maven, pbm):
    """Grouping by an unknown column is refused with the allowed ones."""
    from sopcoach.errors import AnalysisError
    with pytest.raises(AnalysisError, match="by must be one of owner, team, region, product"):
        breakdown(maven, pbm, "city")


def test_month_must_be_year_dash_month(maven, pbm):
    """A malformed month is refused with the expected form."""
    from sopcoach.errors import AnalysisError
    with pytest.raises(AnalysisError, match="YYYY-MM"):
        kpis(maven, pbm, "2017-6")


def test_month_boundaries_are_local(pbm):
    """A month starts at local midnight of the playbook's zone (UTC 16:00 the day before in Shanghai)."""
    p = Period.of("2025-03", pbm.calendar.timezone)
    assert (p.start, p.end) == (pd.Timestamp("2025-02-28 16:00", tz="UTC"), pd.Timestamp("2025-03-31 16:00", tz="UTC"))


def test_zoho_kpis_per_month_need_stage_history(pbm):
    """Zoho has no stage history: quote acceptance is computed overall but not per month."""
    data = read_export([ZOHO], "zoho", playbook=pbm)
    assert kpis(data, pbm).loc["quote_acceptance_rate", "status"] == "ok"
    assert kpis(data, pbm, "2021-03").loc["quote_acceptance_rate", "status"] == "not_computable"


# ------------------------------------------------------------------------------ bottleneck


def _funnel(advanced: list[int], lost: list[int]) -> pd.DataFrame:
    ids = [f"s{i}" for i in range(len(advanced))]
    return pd.DataFrame({"name": ids, "advanced": advanced, "lost_here": lost, "observed": True},
                        index=pd.Index(ids, name="stage"))


def test_small_sample_is_not_flagged():
    """A low conversion on a few deals (1 of 4, 2 of 5, 0 of 6) is not called a bottleneck."""
    for advanced, lost in ((1, 3), (2, 3), (0, 6)):
        assert find_bottleneck(_funnel([90, advanced, 80], [10, lost, 20])).stage is None


def test_moderately_lower_stage_on_a_medium_sample_is_not_flagged():
    """70% on 40 deals against 85% elsewhere is within the intervals: no bottleneck is claimed."""
    assert find_bottleneck(_funnel([90, 28, 80], [10, 12, 20])).stage is None


def test_markedly_lower_stage_is_flagged():
    """A stage converting 30% on 100 deals against 85% elsewhere is the bottleneck."""
    b = find_bottleneck(_funnel([90, 30, 80], [10, 70, 20]))
    assert b.stage == "s1" and b.ci[1] < b.rest_ci[0]
    assert b.confidence == pytest.approx(1 - 0.05 / 3)


def test_wilson_interval():
    """The Wilson interval of 1/4 at 95% is about [0.046, 0.699]; no trials give NaN."""
    lo, hi = wilson_interval(1, 4)
    assert (round(lo, 3), round(hi, 3)) == (0.046, 0.699)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


# ------------------------------------------------------------------------------ compliance


def test_maven_checks_are_not_checkable_rather_than_clean(maven_review):
    """Maven has no activities, tiers or quotes: every SOP check is not checkable and none claims 0 breaches."""
    checks = maven_review.compliance.checks
    assert set(checks["status"]) == {"not_checkable"}
    assert checks["reason"].str.len().gt(0).all()
    assert maven_review.compliance.findings.empty
    assert checks[["instances", "breaches", "pending"]].isna().all().all()  # no count, not 0
    assert maven_review.by["owner"]["breaches"].isna().all()
    assert maven_review.trend["breaches"].isna().all()
    assert review_json(maven_review)["compliance"]["checks"][0]["breaches"] is None


def test_working_days_skip_national_day_and_count_the_makeup_saturday(tmp_path, pbm):
    """3 working days after Tue 2025-09-30 10:00 end Sat 2025-10-11 10:00 (holiday week off, make-up day on)."""
    deals = [deal("001", "2025-09-29 10:00"), deal("002", "2025-09-29 10:00")]
    events = [event("001", "阶段变更", "2025-09-30 10:00", 阶段="方案演示"),
              event("001", "任务", "2025-10-11 09:59", 事项="发送初步方案"),
              event("002", "阶段变更", "2025-09-30 10:00", 阶段="方案演示"),
              event("002", "任务", "2025-10-13 09:00", 事项="发送初步方案")]
    m = write_export(tmp_path / "x", deals, events)
    comp = check_compliance(read(tmp_path / "x", m, pbm), pbm, lang="en")
    assert findings(comp, "sla:first_proposal") == ["002"]
    f = comp.findings[comp.findings["check"] == "sla:first_proposal"].iloc[0]
    assert "by 2025-10-11 10:00" in f["expected"] and f["clause"] == "sales-cycle-timeliness"
    assert f["source"] == "seed:1.2.2" and f["value"] > f["limit"]


def test_easter_holidays_move_the_delivery_due_date(tmp_path, pbm):
    """Case 25: 5 working days from Mon 2023-04-03 09:00 with Good Friday and Easter Monday end Wed 04-12 09:00."""
    pb = variant(pbm, "Europe/London", [2023], ["2023-04-07", "2023-04-10"])
    deals = [deal("001", "2023-03-01 09:00", "赢单", "2023-04-03 09:00"),
             deal("002", "2023-03-01 09:00", "赢单", "2023-04-03 09:00")]
    events = [event("001", "任务", "2023-04-11 12:00", 事项="完成交付"),
              event("002", "任务", "2023-04-12 09:30", 事项="完成交付")]
    m = write_export(tmp_path / "x", deals, events, timezone="Europe/London")
    comp = check_compliance(read(tmp_path / "x", m, pb), pb, lang="en")
    assert findings(comp, "sla:delivery") == ["002"]
    assert "by 2023-04-12 09:00" in comp.findings.iloc[0]["expected"]


def test_business_hours_across_the_autumn_dst_change(tmp_path, pbm):
    """Case 28: 4 business hours (09-17) from Fri 2024-10-25 15:00 Berlin end Mon 10-28 11:00+01:00."""
    pb = variant(pbm, "Europe/Berlin", [2024], day_end="17:00", limits={"first_contact": (4, "business_hours")})
    deals = [deal("001", "2024-10-25 15:00"), deal("002", "2024-10-25 15:00")]
    events = [event("001", "电话", "2024-10-28 10:30", 方向="呼出", 事项="首次接触"),
              event("002", "电话", "2024-10-28 11:01", 方向="呼出", 事项="首次接触")]
    m = write_export(tmp_path / "x", deals, events, timezone="Europe/Berlin")
    comp = check_compliance(read(tmp_path / "x", m, pb), pb, lang="en")
    assert findings(comp, "sla:first_contact") == ["002"]
    f = comp.findings.iloc[0]
    assert f["due"] == pd.Timestamp("2024-10-28 10:00", tz="UTC")
    assert "by 2024-10-28 11:00" in f["expected"]


def test_one_calendar_day_is_not_24_hours_across_spring_dst(tmp_path, pbm):
    """Case 28: from Sat 2024-03-30 10:00 Berlin, 1 calendar day ends 03-31 10:00 but 24 hours end 11:00."""
    pb = variant(pbm, "Europe/Berlin", [2024], limits={"satisfaction_call": (1, "calendar_days")},
                 deadlines=("satisfaction_call",))
    deals = [deal("001", "2024-03-20 10:00", "赢单", "2024-03-30 10:00")]
    events = [event("001", "邮件", "2024-03-30 10:00", 方向="收到"),
              event("001", "邮件", "2024-03-31 10:30", 方向="发出"),
              event("001", "电话", "2024-03-31 10:30", 方向="呼出", 事项="满意度回访")]
    m = write_export(tmp_path / "x", deals, events, timezone="Europe/Berlin")
    comp = check_compliance(read(tmp_path / "x", m, pb), pb, lang="en")
    assert findings(comp, "sla:satisfaction_call") == ["001"]
    assert findings(comp, "sla:email_reply") == []
    assert comp.checks.loc["sla:email_reply", "instances"] == 1


def test_satisfaction_call_is_due_on_day_30_with_the_company_tolerance(tmp_path, pbm):
    """seed:1.2.1: the call is due on the 30th calendar day after the deal, not "within 30 days".

    Deals won Mon 2025-03-03: due Wed 04-02; 3 working days either side (company setting) is Fri
    03-28 to Tue 04-08 (Qingming, 04-04 to 04-06, is no working day). Day 5 is too early, day 30 on
    the day, day 31 within tolerance, day 40 late; no call by as_of after 04-08 is missing. An early
    call followed by the scheduled one does not count: day 5 then day 30 is on the day, day 5 then
    day 45 is late.
    """
    days = {"001": 5, "002": 30, "003": 31, "004": 40}
    again = {"007": 30, "008": 45}
    deals = [deal(i, "2025-02-17 10:00", "赢单", "2025-03-03 10:00") for i in [*days, "005", "006", *again]]
    base = pd.Timestamp("2025-03-03 15:00")
    calls = [(i, n) for i, n in days.items()] + [(i, m) for i, n in again.items() for m in (5, n)]
    events = [event(i, "电话", f"{base + pd.Timedelta(days=n):%Y-%m-%d %H:%M}", 方向="呼出", 事项="满意度回访")
              for i, n in calls]
    m = write_export(tmp_path / "x", deals, events)
    data = read(tmp_path / "x", m, pbm)
    comp = check_compliance(data, pbm, as_of="2025-04-20", lang="en")
    fu = comp.follow_ups.set_index("deal_id")
    assert fu["verdict"].to_dict() == {"001": "too_early", "002": "on_time", "003": "within_tolerance",
                                       "004": "late", "005": "missing", "006": "missing", "007": "on_time",
                                       "008": "late"}
    assert (str(fu.loc["001", "first_day"]), str(fu.loc["001", "last_day"])) == ("2025-03-28", "2025-04-08")
    assert fu["day"].fillna(-1).tolist() == [5, 30, 31, 40, -1, -1, 30, 45]
    f = comp.findings[comp.findings["check"] == "sla:satisfaction_call"].set_index("deal_id")
    assert f["verdict"].to_dict() == {"001": "too_early", "004": "late", "005": "missing", "006": "missing",
                                      "008": "late"}
    assert f.loc["001", "actual"].startswith("too early: day 5 after the deal (2025-03-08 15:00)")
    assert f.loc["008", "actual"].startswith("late: day 45 after the deal")
    assert "2025-03-28 to 2025-04-08" in f.loc["001", "expected"]
    row = comp.checks.loc["sla:satisfaction_call"]
    assert (row["instances"], row["breaches"], row["pending"]) == (8, 5, 0)
    assert "on the day 2" in row["reason"] and "within tolerance 1" in row["reason"]
    timeline = case_study(data, pbm, "001", comp, lang="en").timeline
    assert timeline["deviation"].str.contains("too early: day 5").any()
    early = check_compliance(data, pbm, as_of="2025-04-05", lang="zh-CN")
    assert early.follow_ups.set_index("deal_id")["verdict"]["005"] == "pending"
    zh = early.findings[early.findings["check"] == "sla:satisfaction_call"].set_index("deal_id")
    assert zh.loc["001", "actual"] == "过早：成交后第 5 天（2025-03-08 15:00）"


def test_tolerance_must_be_a_company_setting_and_only_on_a_scheduled_sla(pbm):
    """A tolerance on a seed clause, a scheduled SLA without one, or one on a deadline is refused."""
    from sopcoach.content.playbook import SLA, Playbook, Tolerance
    sc = pbm.sla("satisfaction_call")
    data = pbm.model_dump()
    data["slas"] = [x.model_dump() for x in pbm.slas]
    i = [x.id for x in pbm.slas].index("satisfaction_call")
    data["slas"][i]["tolerance"]["clause"] = "service-standards"
    with pytest.raises(ValueError, match="the tolerance is a company setting, not SOP"):
        Playbook.model_validate(data)
    with pytest.raises(ValueError, match="a scheduled SLA needs a tolerance"):
        SLA.model_validate({**sc.model_dump(), "tolerance": None})
    with pytest.raises(ValueError, match="only a scheduled SLA"):
        SLA.model_validate({**sc.model_dump(), "kind": "deadline"})
    assert Tolerance.model_validate({"before": 0, "after": 0, "unit": "calendar_days", "clause": "x"}).after == 0


def test_missing_end_after_the_due_time_is_a_breach(tmp_path, pbm):
    """A proposal never recorded is a breach once the due time has passed by the export's as-of time."""
    deals = [deal("001", "2025-03-03 10:00"), deal("002", "2025-03-03 10:00")]
    events = [event("001", "阶段变更", "2025-03-04 10:00", 阶段="方案演示"),
              event("001", "任务", "2025-03-05 10:00", 事项="发送初步方案"),
              event("002", "阶段变更", "2025-03-04 10:00", 阶段="方案演示")]
    m = write_export(tmp_path / "x", deals, events)
    data = read(tmp_path / "x", m, pbm)
    late = check_compliance(data, pbm, as_of="2025-03-20", lang="en")
    early = check_compliance(data, pbm, as_of="2025-03-06", lang="en")
    assert findings(late, "sla:first_proposal") == ["002"]
    assert "not recorded by" in late.findings.iloc[0]["actual"]
    assert findings(early, "sla:first_proposal") == [] and early.checks.loc["sla:first_proposal", "pending"] == 1


def test_sla_without_any_end_events_is_not_checkable(tmp_path, pbm):
    """When the export never records proposals, the proposal limit is not checkable, not breached."""
    deals = [deal("001", "2025-03-03 10:00")]
    events = [event("001", "阶段变更", "2025-03-04 10:00", 阶段="方案演示")]
    m = write_export(tmp_path / "x", deals, events)
    comp = check_compliance(read(tmp_path / "x", m, pbm), pbm, as_of="2025-04-01", lang="en")
    assert comp.checks.loc["sla:first_proposal", "status"] == "not_checkable"
    assert findings(comp, "sla:first_proposal") == []


def test_weekly_cadence_per_tier_and_iso_week(tmp_path, pbm):
    """A tier-A deal with 2 outbound follow-ups in ISO week 2025-W12 breaches the 3-per-week minimum."""
    deals = [deal("001", "2025-03-03 09:00", tier="A类")]
    calls = [("2025-03-10 10:00", "呼出"), ("2025-03-11 10:00", "呼出"), ("2025-03-12 10:00", "呼出"),
             ("2025-03-17 10:00", "呼出"), ("2025-03-19 10:00", "呼出")]
    events = [event("001", "电话", t, 方向=d, 主题=f"跟进{i}") for i, (t, d) in enumerate(calls)]
    events.append(event("001", "邮件", "2025-03-18 10:00", 方向="收到"))          # the customer's, not ours
    events.append(dict(events[3], 记录编号="E999999"))                           # duplicate of a W12 call
    events.append(event("001", "任务", "2025-03-24 00:00", 主题="导出"))
    m = write_export(tmp_path / "x", deals, events)
    comp = check_compliance(read(tmp_path / "x", m, pbm), pbm, lang="en")
    cad = comp.findings[comp.findings["check"] == "cadence"]
    assert cad[["deal_id", "week", "limit", "value"]].values.tolist() == [["001", "2025-W12", 3.0, 2.0]]
    assert cad.iloc[0]["clause"] == "follow-up-frequency" and cad.iloc[0]["source"] == "seed:3.1.2"
    assert comp.checks.loc["cadence", "instances"] == 2


def test_cadence_without_tiers_is_not_checkable(tmp_path, pbm):
    """Without a customer tier the cadence check is not checkable."""
    deals = [deal("001", "2025-03-03 09:00", tier="")]
    events = [event("001", "电话", "2025-03-10 10:00", 方向="呼出")]
    m = write_export(tmp_path / "x", deals, events)
    comp = check_compliance(read(tmp_path / "x", m, pbm), pbm, lang="en")
    assert comp.checks.loc["cadence", "status"] == "not_checkable"


def test_quotes_above_authority_need_an_approver(tmp_path, pbm):
    """A rep's 150,000 quote or 12% discount without an approver is a finding; approved or in-limit ones are not."""
    deals = [deal(i, "2025-03-03 09:00", owner="李娜" if i == "004" else "张伟") for i in ("001", "002", "003", "004")]
    events = [event("001", "任务", "2025-03-05 10:00", 事项="发送报价单", 报价金额="150,000.00", 折扣="5%"),
              event("002", "任务", "2025-03-05 10:00", 事项="发送报价单", 报价金额="150,000.00", 折扣="5%", 审批人="王主管"),
              event("003", "任务", "2025-03-05 10:00", 事项="发送报价单", 报价金额="50,000.00", 折扣="12%"),
              event("004", "任务", "2025-03-05 10:00", owner="李娜", 事项="发送报价单", 报价金额="150,000.00", 折扣="5%")]
    m = write_export(tmp_path / "x", deals, events)
    comp = check_compliance(read(tmp_path / "x", m, pbm), pbm, lang="en")
    assert findings(comp, "authority") == ["001", "003"]
    f = comp.findings[comp.findings["check"] == "authority"].iloc[0]
    assert "approval by the sales supervisor" in f["expected"] and "sales_" not in f["expected"] and "no approver recorded" in f["actual"]
    assert f["clause"] == "quote-limits"


def test_authority_in_another_currency_is_not_checkable(tmp_path, pbm):
    """Quotes in USD cannot be held against CNY limits: the check says so instead of passing them."""
    deals = [deal("001", "2025-03-03 09:00")]
    events = [event("001", "任务", "2025-03-05 10:00", 事项="发送报价单", 报价金额="150,000.00", 折扣="5%")]
    m = write_export(tmp_path / "x", deals, events, currency="USD")
    comp = check_compliance(read(tmp_path / "x", m, pbm), pbm, lang="en")
    assert comp.checks.loc["authority", "status"] == "not_checkable"
    assert "quotes are in USD" in comp.checks.loc["authority", "reason"]


def test_calendar_years_outside_the_playbook_are_not_checkable(pbm):
    """Zoho's 2018-2021 dates lie outside the playbook calendar's years: the working-time check says so."""
    short = pbm.model_copy(update={"calendar": pbm.calendar.model_copy(update={"years": [2025, 2026]})})
    data = read_export([ZOHO], "zoho", playbook=short)
    comp = check_compliance(data, short, lang="en")
    row = comp.checks.loc["sla:first_contact"]
    assert row["status"] == "not_checkable" and "calendar.years" in row["reason"]


# ------------------------------------------------------------------------------ case study and output


@pytest.fixture(scope="module")
def sim_data(pbm, tmp_path_factory):
    from sopcoach.crm.simulate import simulate
    sim = simulate(pbm, tmp_path_factory.mktemp("sim"), seed=3, deals=80, weeks=12)
    return sim, read_export(sim.folder, "simulated", playbook=pbm)


def test_compliance_checks_with_unreadable_times_are_not_checkable(sim_data, pbm, tmp_path):
    """A check never runs on the readable rows only: with the deals' close times written day first the
    satisfaction call (due 30 days after the close) is not checkable, naming the column and the count; one
    unreadable call time makes the weekly cadence and the first-contact limit not checkable; a quote with an
    unreadable amount makes quote authority not checkable. Checks whose inputs were all read still run."""
    sim, data = sim_data
    before = check_compliance(data, pbm, lang="en").checks
    assert before.loc["sla:satisfaction_call", "status"] == "checked"
    day_first_close_dates(sim.folder, tmp_path / "day-first")
    won = int((data.unique_deals()["outcome"] == "won").sum())
    checks = check_compliance(read_export(tmp_path / "day-first", "simulated", playbook=pbm), pbm, lang="en").checks
    assert checks.loc["sla:satisfaction_call", "status"] == "not_checkable"
    assert checks.loc["sla:satisfaction_call", "reason"].startswith(
        f"Close dates of won deals could not be read: {won} values (商机.csv, column 关闭时间; e.g. line ")
    assert checks.loc["sla:email_reply", "status"] == before.loc["sla:email_reply", "status"] == "checked"

    folder = tmp_path / "bad-times"
    folder.mkdir()
    for f in sim.folder.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    with open(sim.folder / "跟进记录.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    call = next(i for i, r in enumerate(rows) if (r["类型"], r["方向"]) == ("电话", "呼出"))
    quote = next(i for i, r in enumerate(rows) if r["事项"] == "发送报价单")
    rows[call]["时间"] = "2025-13-01 10:00"
    rows[quote]["报价金额"] = "n/a"
    with open(folder / "跟进记录.csv", "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    bad = read_export(folder, "simulated", playbook=pbm)
    # the unreadable time is one problem (not also "a value is required": that is for empty cells)
    assert [p.message.split(":")[0] for p in bad.problems if p.line == call + 2] == ["timestamp"]
    checks = check_compliance(bad, pbm, lang="en").checks
    assert checks.loc["cadence", "status"] == checks.loc["sla:first_contact", "status"] == "not_checkable"
    assert checks.loc["cadence", "reason"].startswith(
        f"Times of calls, e-mails and meetings could not be read: 1 value (跟进记录.csv, column 时间; e.g. line {call + 2}")
    assert checks.loc["authority", "status"] == "not_checkable"
    assert checks.loc["authority", "reason"].startswith("Quote amounts could not be read: 1 value")
    assert checks.loc["sla:delivery", "status"] == "checked"


def test_case_study_quotes_the_clause_of_each_deviation(sim_data, pbm):
    """A case study lists the deal's deviations with the clause quoted and marks them on the timeline."""
    sim, data = sim_data
    comp = check_compliance(data, pbm, as_of=sim.as_of, lang="en")
    row = sim.truth[sim.truth["check"] == "sla:first_proposal"].iloc[0]
    cs = case_study(data, pbm, row["deal_id"], comp, lang="en")
    dev = cs.deviations[cs.deviations["check"] == "sla:first_proposal"].iloc[0]
    assert dev["clause_text"] == pbm.clause("sales-cycle-timeliness").text.en
    assert (cs.timeline["deviation"] != "").any()
    assert cs.timeline["timestamp"].is_monotonic_increasing
    assert any("First proposal" in p for p in cs.prompts)


def test_case_study_of_an_unknown_deal_is_refused(sim_data, pbm):
    """Asking for a deal that is not in the export is refused with its id."""
    from sopcoach.errors import AnalysisError
    with pytest.raises(AnalysisError, match="'nope' is not in the export"):
        case_study(sim_data[1], pbm, "nope")


def test_review_json_shape(maven_review):
    """The JSON review gives win_rate as a fraction, sales_cycle_days with mean and median, and stage counts."""
    out = review_json(maven_review)
    assert round(out["kpis"]["win_rate"], 3) == 0.632
    assert out["kpis"]["sales_cycle_days"]["median"] == 57.0
    assert out["kpis"]["stage_counts"] == {"first_contact": 500, "needs_analysis": 1589, "won": 4238, "lost": 2473}
    assert out["compliance"]["findings"] == []
    json.dumps(out)


def test_cycle_times_are_calendar_days(sim_data, pbm):
    """Cycle times are the wall-clock calendar days from creation to the won close."""
    sim, data = sim_data
    c = cycle_times(data, pbm)
    d = data.deals.set_index("deal_id").loc[c.index[0]]
    assert c.iloc[0] == pytest.approx((d["closed"] - d["created"]) / pd.Timedelta(days=1))


def test_funnel_of_a_month_is_the_cohort_created_in_it(sim_data, pbm):
    """The funnel of a month counts the deals created in that month."""
    sim, data = sim_data
    f = funnel(data, pbm, "2025-03")
    created = Period.of("2025-03", pbm.calendar.timezone).contains(data.deals["created"]).sum()
    assert f.loc["first_contact", "reached"] == created


def test_cli_analyze_json(capsys):
    """`sopcoach analyze MAVEN --format json` prints the win rate and the median cycle."""
    assert main(["analyze", str(MAVEN), "--format", "json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["kpis"]["win_rate"], 3) == 0.632 and out["kpis"]["sales_cycle_days"]["median"] == 57.0


def test_cli_analyze_report(tmp_path, capsys, sim_data):
    """`sopcoach analyze --source simulated --month --report` writes the HTML report and prints the findings."""
    sim, _ = sim_data
    out = tmp_path / "review.html"
    assert main(["analyze", str(sim.folder), "--source", "simulated", "--month", "2025-04",
                 "--report", str(out), "--no-progress"]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    text = capsys.readouterr().out
    assert "赢单率：" in text and "win_rate" not in text  # the page's language (zh-CN by default), no raw ids


def test_cli_unknown_source_is_a_content_error(capsys):
    """An unknown --source is reported as a problem, with exit code 1."""
    assert main(["analyze", str(MAVEN), "--source", "nosuch.yaml", "--no-progress"]) == 1
    assert "no such mapping file" in capsys.readouterr().err


@pytest.mark.parametrize("duration", [(24, "elapsed_hours"), (3, "working_days"), (30, "calendar_days"),
                                      (8, "business_hours"), (0, "working_days")])
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin"])
def test_bucketed_sla_verdicts_equal_the_exact_due_time(duration, zone):
    """The bucketed verdicts (late, unknown) equal ``target > BusinessCalendar.add(start)`` for every
    start: across the 2025 National Day holiday and its make-up Sunday, DST changes, and targets
    placed exactly at, just before and just after the due time."""
    import numpy as np

    from sopcoach.analytics.compliance import _DueOracle
    from sopcoach.content.businesstime import BusinessCalendar, Duration
    from sopcoach.errors import CalendarRangeError

    cal = BusinessCalendar.china(timezone=zone)
    limit = Duration(duration[0], duration[1])
    rng = np.random.default_rng(7)
    lo, hi = pd.Timestamp("2025-03-20", tz="UTC").value // 1000, pd.Timestamp("2026-12-31", tz="UTC").value // 1000
    start_us = np.sort(rng.integers(lo, hi, 3000) // 60_000_000 * 60_000_000)
    # plus the hours around midnight before a working day, and the last days the calendar covers
    edges = pd.to_datetime(["2025-03-23 15:00", "2025-03-23 16:30", "2025-03-23 17:30", "2025-03-24 00:30",
                            "2025-09-27 16:00", "2025-10-26 00:30", "2025-10-26 01:30", "2026-03-29 01:30",
                            "2026-12-30 10:00", "2026-12-31 10:00"], utc=True)
    starts = pd.Series(pd.DatetimeIndex(pd.to_datetime(start_us, unit="us", utc=True)).append(edges)
                       .sort_values().as_unit("us"))
    exact = []
    for s in starts:
        try:
            exact.append(pd.Timestamp(cal.add(s.to_pydatetime(), limit)).tz_convert("UTC"))
        except CalendarRangeError:
            exact.append(pd.NaT)
    exact = pd.Series(exact, dtype="datetime64[us, UTC]")
    offsets = pd.to_timedelta(rng.choice([-3600, -60, 0, 0, 1, 60, 7200], len(starts)), unit="s")
    targets = exact.fillna(starts + pd.Timedelta(days=400)) + offsets
    late, unknown = _DueOracle(cal, limit).late(starts, targets)
    assert (unknown == exact.isna().to_numpy()).all()
    # 2027's working days are unknown; only a limit that needs a working day there has no verdict
    assert unknown.any() == (duration[1] in ("working_days", "business_hours") and duration[0] > 0)
    want = (targets > exact).to_numpy() & ~unknown
    assert (late == want).all(), np.flatnonzero(late != want)[:5]
    assert 0 < late.sum() < (~unknown).sum()  # both verdicts occur


def test_single_pipeline_file_has_no_product_or_account_list(capsys):
    """Maven's pipeline file alone: products and accounts are not checkable (their lists were not
    given), not 8,800 deals with unknown products."""
    data = read_export(MAVEN / "sales_pipeline.csv", "maven")
    assert data.products is None and data.accounts is None
    q = review(data, load_playbook(ROOT / "playbook"), lang="en").quality
    assert q.summary.loc["unknown_product", "status"] == "not_checkable"
    assert q.summary.loc["unknown_account", "status"] == "not_checkable"
    full = read_export(MAVEN, "maven")  # with products.csv and accounts.csv beside it
    assert "GTXPro" not in full.products and "GTX Pro" in full.products


@pytest.mark.parametrize("args, message", [
    (["--as-of", "yesterday"], "--as-of must be an ISO date"),
    (["--as-of", "2017-13-01"], "--as-of must be an ISO date"),
    (["--month", "2025-13"], "month '2025-13' does not exist"),
    (["--month", "June"], "month must be written YYYY-MM"),
    (["--report", "{tmp}/missing/review.html"], "does not exist; create it"),
    (["--report", "{tmp}"], "that is a folder"),
    (["--report", "{tmp}/review.pdf"], "the report is an HTML file; name it like review.html"),
])
def test_cli_bad_arguments_are_one_line_errors(args, message, tmp_path, capsys):
    """Bad --as-of, --month and --report values end with exit code 1 and a message naming the
    argument and the fix, never a traceback, and before the export is read."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["analyze", str(MAVEN), "--no-progress", *args]) == 1
    cap = capsys.readouterr()
    assert message in cap.err and "Traceback" not in cap.err
    assert cap.out == ""  # refused before the export was read or anything printed


def test_cli_header_only_export_and_month_outside_it(tmp_path, capsys):
    """A pipeline file with only its header is a one-line error (nothing to analyse); a month outside
    the export is analysed with a note naming the export's months; --source is not case-sensitive."""
    (tmp_path / "sales_pipeline.csv").write_text(
        (MAVEN / "sales_pipeline.csv").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    assert main(["analyze", str(tmp_path / "sales_pipeline.csv"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "sales_pipeline.csv: the deals file has a header but no rows" in err and "Traceback" not in err
    assert main(["analyze", str(MAVEN), "--source", "Maven", "--month", "2025-01", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "2025-01" in err and "2016-10" in err and "2017-12" in err


def test_cli_as_of_without_zone_is_playbook_local_time(capsys, sim_data):
    """--as-of 2025-04-30T18:00 is 18:00 in the playbook's zone (Asia/Shanghai), 10:00 UTC."""
    sim, _ = sim_data
    assert main(["analyze", str(sim.folder), "--source", "simulated", "--as-of", "2025-04-30T18:00",
                 "--format", "json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["compliance"]["as_of"].startswith("2025-04-30T10:00")


def test_monthly_groups_count_the_pipeline_at_month_end(maven, pbm):
    """For a month, a rep's ``open`` is the pipeline at its end (engaged before July, not closed
    before July), counted here straight from Maven's CSV; ``deals`` in the stage table is the rep's
    cohort (engaged in June), not a sum over stages."""
    from sopcoach.analytics.kpis import stage_conversion_by
    raw = pd.read_csv(MAVEN / "sales_pipeline.csv", parse_dates=["engage_date", "close_date"])
    july = pd.Timestamp("2017-07-01")
    darcel = raw[raw["sales_agent"] == "Darcel Schlecht"]
    pipeline = ((darcel["engage_date"] < july) & (darcel["close_date"].isna() | (darcel["close_date"] >= july))).sum()
    june = darcel["engage_date"].between("2017-06-01", "2017-06-30").sum()
    by = breakdown(maven, pbm, "owner", "2017-06")
    assert by.loc["Darcel Schlecht", "open"] == pipeline > 0
    assert by.loc["Darcel Schlecht", "created"] == june
    conv = stage_conversion_by(maven, pbm, "owner", "2017-06", lang="en")
    assert conv.loc["Darcel Schlecht", "deals"] == june


def test_bottleneck_names_the_stages_it_compared():
    """Two stages with losses are compared: the call names the other one and the inferred ones left
    out, at the Bonferroni level written exactly (97.5%, not 98%)."""
    f = pd.DataFrame({"name": ["A", "B", "C", "D"], "advanced": [900, 300, 300, 0],
                      "lost_here": [100, 700, 0, 0], "observed": [True, True, False, False]},
                     index=pd.Index(["a", "b", "c", "d"], name="stage"))
    b = find_bottleneck(f, lang="en")
    assert b.stage == "b"
    assert "the other stages the export records (A)" in b.reason
    assert "97.5% interval, Bonferroni-adjusted for 2 stages" in b.reason
    assert "Not compared, as only inferred: C, D" in b.reason


def test_a_month_without_new_deals_has_an_empty_funnel_said_so(pbm):
    """Zoho's 2021-05 closes deals but creates none: the cohort funnel is empty and the call says
    so instead of "fewer than two stages"."""
    data = read_export(ZOHO, "zoho", playbook=pbm)
    fun = funnel(data, pbm, "2021-05", lang="en")
    assert fun["reached"].sum() == 0
    assert find_bottleneck(fun, lang="en").reason.startswith("The funnel is empty")


# ------------------------------------------------------------- inputs absent or unreadable

SALESFORCE = CRM / "salesforce_devorg_export_earthfink"


def maven_mapping(folder: Path, field: str, wrong: str) -> Path:
    """Write the Maven mapping with the date format of ``field`` (created or closed) replaced by ``wrong``."""
    text = builtin_mapping_path("maven").read_text(encoding="utf-8")
    column = {"created": "engage_date", "closed": "close_date"}[field]
    right = f'{field}: {{column: {column}, formats: ["%Y-%m-%d"]}}'
    assert right in text
    path = folder / f"maven-{field}-{wrong.replace('/', '').replace('%', '')}.yaml"
    path.write_text(text.replace(right, f'{field}: {{column: {column}, formats: ["{wrong}"]}}'), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def day_first_close(tmp_path_factory):
    """A mapping of the real Maven export whose close_date format is wrong (day first; the file is ISO)."""
    return maven_mapping(tmp_path_factory.mktemp("mapping"), "closed", "%d/%m/%Y")


@pytest.fixture(scope="module")
def maven_unread_close(day_first_close, pbm):
    return read_export([MAVEN], day_first_close, playbook=pbm)


CLOSE_EXAMPLE = ("(sales_pipeline.csv, column close_date; e.g. line 2: closed: '2017-03-01' does not match the "
                 "declared date format(s) '%d/%m/%Y'); correct the value or declare its format in the mapping "
                 "(sopcoach never guesses dates), then analyse again.")


def test_kpis_on_unreadable_close_dates_are_not_computable(maven_unread_close, pbm):
    """With every close date unreadable, a month's win rate and the cycles are not computable with the column,
    the count and the fix (not "no deal was won or lost" next to 4,238 won deals)."""
    k = kpis(maven_unread_close, pbm, "2017-06", lang="en")
    assert k.loc["win_rate", "reason"] == ("Close dates of won and lost deals could not be read: 6,711 values "
                                           + CLOSE_EXAMPLE)
    for kid in ("average_sales_cycle", "median_sales_cycle"):
        assert k.loc[kid, "reason"] == "Close dates of won deals could not be read: 4,238 values " + CLOSE_EXAMPLE
    for kid in ("win_rate", "average_sales_cycle", "median_sales_cycle"):
        assert k.loc[kid, "status"] == "not_computable" and math.isnan(k.loc[kid, "value"])
    assert not k["reason"].str.contains("no deal was won or lost").any()


def test_whole_export_win_rate_counts_outcomes_without_close_dates(maven_unread_close, pbm):
    """The whole export's win rate needs no close date: every won and lost deal counts by its outcome
    (4,238 / 6,711 = 63.2%, as with readable dates); the cycles still say why they are not computable."""
    k = kpis(maven_unread_close, pbm, lang="en")
    assert (k.loc["win_rate", "numerator"], k.loc["win_rate", "denominator"]) == (4238, 6711)
    assert k.loc["win_rate", "status"] == "ok"
    assert k.loc["median_sales_cycle", "reason"] == ("Close dates of won deals could not be read: 4,238 values "
                                                     + CLOSE_EXAMPLE)


def test_signing_rate_of_a_month_with_unreadable_close_dates_is_not_computable(sim_data, pbm, tmp_path):
    """A simulated export with its close times written day first: April's contract signing rate is not
    computable, naming the column and the count, instead of 0 signed against the quotes accepted; the
    quote acceptance, dated by the stage history, stays as it was."""
    sim, data = sim_data
    before = kpis(data, pbm, "2025-04", lang="en")
    assert before.loc["contract_signing_rate", "numerator"] > 0
    day_first_close_dates(sim.folder, tmp_path / "day-first")
    k = kpis(read_export(tmp_path / "day-first", "simulated", playbook=pbm), pbm, "2025-04", lang="en")
    won = int((data.deals["outcome"] == "won").sum())
    assert k.loc["contract_signing_rate", "status"] == "not_computable"
    assert k.loc["contract_signing_rate", "reason"].startswith(
        f"Close dates of won deals could not be read: {won} values (商机.csv, column 关闭时间; e.g. line ")
    assert k.loc["quote_acceptance_rate", "value"] == before.loc["quote_acceptance_rate", "value"]


def test_one_unreadable_close_date_is_not_left_out_silently(tmp_path, pbm):
    """A single won deal with an unreadable close date makes a month's win rate not computable, naming its
    line; it is never computed without that deal."""
    lines = (MAVEN / "sales_pipeline.csv").read_text(encoding="utf-8").splitlines()
    n = next(i for i, line in enumerate(lines) if ",Won," in line)
    assert lines[n].endswith(",2017-03-01,1054")
    lines[n] = lines[n].replace(",2017-03-01,", ",2017-02-30,")
    folder = tmp_path / "maven"
    folder.mkdir()
    (folder / "sales_pipeline.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    k = kpis(read_export([folder], "maven", playbook=pbm), pbm, "2017-03", lang="en")
    assert k.loc["win_rate", "status"] == "not_computable"
    assert k.loc["win_rate", "reason"].startswith(
        f"Close dates of won and lost deals could not be read: 1 value (sales_pipeline.csv, column close_date; "
        f"e.g. line {n + 1}: closed: '2017-02-30' does not match")


def test_leads_without_their_conversion_column_are_not_computable(tmp_path, pbm):
    """A Salesforce Lead.csv without IsConverted / ConvertedDate: lead conversion is not computable, naming
    the column, instead of 0 / 22 (5 of the 22 leads converted)."""
    whole = kpis(read_export([SALESFORCE], "salesforce", playbook=pbm), pbm, lang="en")
    assert (whole.loc["lead_conversion_rate", "numerator"], whole.loc["lead_conversion_rate", "denominator"]) == (5, 22)
    folder = tmp_path / "salesforce"
    folder.mkdir()
    for f in SALESFORCE.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    with open(SALESFORCE / "Lead.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = [c for c in rows[0] if c not in ("IsConverted", "ConvertedDate")]
    with open(folder / "Lead.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    k = kpis(read_export([folder], "salesforce", playbook=pbm), pbm, lang="en").loc["lead_conversion_rate"]
    assert k["status"] == "not_computable" and math.isnan(k["value"]) and math.isnan(k["denominator"])
    assert k["reason"] == ("Lead.csv has no column 'IsConverted' (leads.converted: lead conversion flags); export "
                           "it with that column, or name the CRM's column in the mapping salesforce.yaml.")


def test_trend_and_groups_blank_what_unreadable_close_dates_break(maven_unread_close, pbm):
    """The monthly trend and the per-rep table show no won or lost count (NA, not 0) when the close dates
    are unreadable, and say why; the creation counts, which need no close date, stay."""
    for table in (monthly_trend(maven_unread_close, pbm, lang="en"),
                  breakdown(maven_unread_close, pbm, "owner", lang="en")):
        assert table["won"].isna().all() and table["win_rate"].isna().all() and table["lost"].isna().all()
        assert table["created"].sum() == 8300  # the 500 prospecting deals have no engage date
        assert table.attrs["not_computable"].startswith(
            "not computable (won, lost, win rate, lower 95% bound, upper 95% bound, ")
        assert "Close dates of won and lost deals could not be read: 6,711 values" in table.attrs["not_computable"]


def test_funnel_of_a_month_with_unreadable_creation_dates_is_not_computable(tmp_path, pbm):
    """A month's funnel follows the deals created in it: with the creation dates unreadable it is blank
    (not a funnel of 0 deals) and the bottleneck verdict gives the reason."""
    data = read_export([MAVEN], maven_mapping(tmp_path, "created", "%m/%d/%Y"), playbook=pbm)
    f = funnel(data, pbm, "2017-06", lang="en")
    reason = f.attrs["not_computable"]
    assert reason.startswith("not computable (deals reached, still open here, lost here, moved on, conversion, "
                             "lower 95% bound, upper 95% bound, lost at an unknown stage): Deal creation dates could not be read: 8,300 values (sales_pipeline.csv, "
                             "column engage_date; e.g. line 2:")
    assert f["reached"].isna().all()
    assert find_bottleneck(f, lang="en").reason == reason
    assert funnel(data, pbm, lang="en").attrs == {}  # the whole export's funnel needs no date


def test_cli_analyze_summarises_unreadable_values_before_any_figure(day_first_close, tmp_path, capsys, monkeypatch):
    """`sopcoach analyze` prints the unreadable values first, per file and column with the count, an example
    line and the fix; the KPIs then say not computable; --problems writes every one; exit 0 without --strict."""
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    listing = tmp_path / "problems.txt"
    assert main(["analyze", str(MAVEN), "--source", str(day_first_close), "--no-progress",
                 "--problems", str(listing)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        "6,711 values could not be read (1 column); the figures that need them are not computable:",
        f"{MAVEN / 'sales_pipeline.csv'}, column close_date: 6,711 values; e.g. line 2: closed: '2017-03-01' does "
        "not match the declared date format(s) '%d/%m/%Y'; fix: correct the value or declare its format in the "
        "mapping (sopcoach never guesses dates)"]
    assert "  Median sales cycle: not computable: Close dates of won deals could not be read: 4,238 values " \
        + CLOSE_EXAMPLE in out
    assert "... 6,691 more; write them all with --problems FILE" in out[-1]
    written = listing.read_text(encoding="utf-8").splitlines()
    assert len(written) == 6711 and written[0].endswith(":2:7: close_date: closed: '2017-03-01' does not match "
                                                         "the declared date format(s) '%d/%m/%Y'; correct the value "
                                                         "or declare its format in the mapping (sopcoach never "
                                                         "guesses dates)")


def test_cli_analyze_strict_exits_1_after_the_summary(day_first_close, capsys, monkeypatch):
    """With --strict, unreadable values end `sopcoach analyze` with exit code 1 after their summary (three
    lines, not one line per value) and before any figure."""
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    assert main(["analyze", str(MAVEN), "--source", str(day_first_close), "--no-progress", "--strict"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert len(err) == 3 and err[0].startswith("6,711 values could not be read (1 column)")
    assert err[2] == ("sopcoach analyze: --strict: 6,711 values could not be read; nothing analysed (see the "
                      "summary above)")
    assert main(["analyze", str(MAVEN), "--no-progress", "--strict"]) == 0  # the export as it is: all read


def test_cli_analyze_json_keeps_unreadable_figures_null(day_first_close, capsys):
    """`--format json` gives a KPI it cannot compute as null, with the problem summary beside it."""
    assert main(["analyze", str(MAVEN), "--source", str(day_first_close), "--no-progress", "--format", "json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert round(out["kpis"]["win_rate"], 3) == 0.632  # by outcome: the whole export needs no close date
    assert out["kpis"]["sales_cycle_days"]["count"] == 0
    (group,) = out["problem_summary"]
    assert (group["column"], group["count"], group["line"]) == ("close_date", 6711, 2)
    assert group["fix"].startswith("correct the value or declare its format in the mapping")
    assert "close_date" in captured.err.splitlines()[1]  # the summary goes to stderr, the JSON stays JSON
