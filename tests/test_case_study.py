"""The case study of one deal (seed:3.3.2): stages against the SOP in working time, the deviations and
their clause, and a deviation turned into a practice question draft that no exam draws."""
from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pandas as pd
import pytest

from sopcoach.analytics.case_study import (VERDICTS, all_months_compliance, case_study, deal_words, draft_question,
                                            missing_data_note, stage_words)
from sopcoach.analytics.compliance import check_compliance
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank, load_blueprint
from sopcoach.crm.reading import read_export
from sopcoach.crm.simulate import simulate
from support import ROOT, SHARED

SALESFORCE = SHARED / "data" / "crm" / "salesforce_devorg_export_earthfink"


@pytest.fixture(scope="module")
def playbook():
    return load_playbook(ROOT / "playbook")


@pytest.fixture(scope="module")
def demo(tmp_path_factory, playbook):
    sim = simulate(playbook, tmp_path_factory.mktemp("crm") / "demo", seed=7, deals=160, weeks=17)
    data = read_export([sim.folder], "simulated", playbook=playbook)
    return sim, data, check_compliance(data, playbook, lang="en")


@pytest.fixture(scope="module")
def salesforce(playbook):
    data = read_export([SALESFORCE], None, playbook=playbook)
    return data, check_compliance(data, playbook, lang="en")


def plain_working_days(start: pd.Timestamp, end: pd.Timestamp, tz: str = "Asia/Shanghai") -> float:
    """Working days from start to end, counted by hand: whole working days reached at the start's wall time,
    then the share of the real time to the next one (the SOP's measure, seed:1.2.2)."""
    zone = ZoneInfo(tz)
    s, e = start.tz_convert(zone).to_pydatetime(), end.tz_convert(zone).to_pydatetime()
    day = s.date()
    if not chinese_calendar.is_workday(day):  # counting starts at the next working day's opening (09:00)
        while not chinese_calendar.is_workday(day):
            day += timedelta(days=1)
        s = datetime(day.year, day.month, day.day, 9, tzinfo=zone)
        if e <= s:
            return 0.0
    wall, count, previous = s.time(), 0, s

    def next_working(d: date) -> date:
        d += timedelta(days=1)
        while not chinese_calendar.is_workday(d):
            d += timedelta(days=1)
        return d

    d = s.date()
    while True:
        d = next_working(d)
        due = datetime.combine(d, wall, tzinfo=zone)
        if due > e:
            return count + (e - previous) / (due - previous)
        count, previous = count + 1, due


def test_stage_times_on_the_demo_export_are_working_days(demo, playbook):
    """Every measured stage of a demo deal takes the working days a plain count gives, between its entry and the next."""
    _sim, data, comp = demo
    measured = 0
    for deal_id in comp.findings["deal_id"].unique()[:8]:
        cs = case_study(data, playbook, deal_id, comp, lang="en")
        stages = cs.sop.drop_duplicates("phase").dropna(subset=["working_days"])
        for r in stages.itertuples():
            assert r.working_days == pytest.approx(plain_working_days(r.entered, r.left), abs=1e-6), (deal_id, r.phase)
            measured += 1
    assert measured > 20


def test_stage_times_on_the_salesforce_export_follow_its_stage_history(salesforce, playbook):
    """On the Salesforce sample each dated stage runs from its OpportunityHistory entry (or the creation), in
    working days by a plain count, and the first proposal's limit sits in the solution-demo stage."""
    data, comp = salesforce
    hist = pd.read_csv(SALESFORCE / "OpportunityHistory.csv")
    measured = 0
    for deal_id in hist["OpportunityId"].unique():
        cs = case_study(data, playbook, deal_id, comp, lang="en")
        timed = cs.sop.drop_duplicates("phase").dropna(subset=["working_days"])
        for r in timed.itertuples():
            assert r.working_days == pytest.approx(plain_working_days(r.entered, r.left), abs=1e-6), (deal_id, r.phase)
            measured += 1
        assert set(cs.sop.loc[cs.sop["sla"] != "", "verdict"]) <= set(VERDICTS)
    assert measured >= 10
    first_proposal = cs.sop[cs.sop["sla"] == "first_proposal"].iloc[0]
    assert first_proposal["phase"] == "solution_demo" and first_proposal["limit"] == "3 working days"


def test_each_breach_the_sop_check_found_is_a_breached_limit_of_its_stage(demo, playbook):
    """A limit the compliance check found broken for the deal reads "breached" in the stage table, with its clause."""
    _sim, data, comp = demo
    slas = comp.findings[comp.findings["check"].str.startswith("sla:")]
    for deal_id, group in list(slas.groupby("deal_id"))[:10]:
        cs = case_study(data, playbook, deal_id, comp, lang="en")
        rows = cs.sop.set_index("sla")
        for check in set(group["check"]):
            row = rows.loc[check.removeprefix("sla:")]
            assert row["verdict"] == "breached" and row["source"].startswith(("seed:", "company-setting"))
            assert row["clause_title"]


def test_salesforce_limits_without_their_events_are_not_checkable_with_the_reason(salesforce, playbook):
    """On Salesforce the delivery limit (no delivery events) is "not checkable" for every deal, naming what is
    missing in words; how a mapping supplies it is kept out of the table's reason (one note under it)."""
    data, comp = salesforce
    cs = case_study(data, playbook, data.deals["deal_id"].iloc[0], comp, lang="en")
    delivery = cs.sop[cs.sop["sla"] == "delivery"].iloc[0]
    assert delivery["verdict"] == "not_checkable" and delivery["help"] == "delivered"
    assert delivery["reason"] == "Waits for the date of 'delivered'."  # the compliance check's words
    lacking = cs.sop[cs.sop["verdict"] == "not_checkable"]
    assert len(lacking) >= 3 and (lacking["help"] != "").all()
    for lang in ("en", "zh-CN"):
        reasons = case_study(data, playbook, cs.deal_id, lang=lang).sop["reason"]
        assert not reasons.str.contains(r"`|events table|stage_dates|mapping|映射|_", regex=True).any(), list(reasons)
    note = missing_data_note(cs.sop, "en")
    assert note.startswith(f"{lacking['sla'].nunique()} limits could not be checked") and "'delivered'" in note
    assert "`" not in note and "_" not in note
    assert note.count("on each deal in the CRM") == 1  # one sentence for every step's date, not one per step
    zh = missing_data_note(case_study(data, playbook, cs.deal_id, lang="zh-CN").sop, "zh-CN")
    assert "“交付”" in zh and zh.endswith("。") and ":" not in zh and ";" not in zh


@pytest.fixture
def content(tmp_path):
    """A writable content folder (playbook, quizzes, lessons) and a data home."""
    for part in ("playbook", "quizzes", "lessons"):
        shutil.copytree(ROOT / part, tmp_path / "content" / part)
    (tmp_path / "home").mkdir()
    return tmp_path / "content", tmp_path / "home"


def test_a_deviation_becomes_a_draft_the_bank_loader_reads_and_no_exam_draws(demo, playbook, content):
    """A breached limit becomes a numeric draft citing its clause with the deal's numbers, saved under
    quizzes/drafts/; the bank loader reads it, its key is the playbook's limit, and the exam's bank has no draft."""
    from sopcoach.authoring.question_edit import QuestionEdit, save_draft
    folder, home = content
    _sim, data, comp = demo
    row = comp.findings[comp.findings["check"] == "sla:first_proposal"].iloc[0]
    cs = case_study(data, playbook, row["deal_id"], comp, lang="zh-CN")
    other = case_study(data, playbook, row["deal_id"], check_compliance(data, playbook, lang="en"), lang="en")
    index = list(cs.deviations["check"]).index("sla:first_proposal")
    bank = load_bank(folder / "quizzes" / "bank", playbook)
    q = draft_question(cs, index, playbook, bank, other=other)
    qid = save_draft(q, folder, home, by="test")
    drafts = load_bank(folder / "quizzes" / "drafts", playbook)
    draft = drafts[qid]
    assert draft.clauses == ["sales-cycle-timeliness"] and draft.type == "numeric"
    assert row["deal_id"] in draft.scenario.get("en") and row["deal_id"] in draft.scenario.get("zh-CN")
    assert "Shorter sales cycle" in draft.explanation.get("en")
    assert playbook.slas[[s.id for s in playbook.slas].index("first_proposal")].duration.value == draft.answer
    live = load_bank(folder / "quizzes" / "bank", playbook)
    assert qid not in live.questions
    blueprint = load_blueprint(folder / "quizzes" / "blueprint.yaml", live)
    assert all(qid not in [q.id for q in live.in_section(s.id)] for s in blueprint.sections)
    assert qid in [r.id for r in QuestionEdit(folder, home).questions("drafts")]


def test_a_draft_never_reuses_an_id(demo, playbook, content):
    """Saving the same deviation twice keeps both drafts, the second under a new id."""
    from sopcoach.authoring.question_edit import save_draft
    folder, home = content
    _sim, data, comp = demo
    cs = case_study(data, playbook, comp.findings["deal_id"].iloc[0], comp, lang="en")
    q = draft_question(cs, 0, playbook)
    first, second = save_draft(q, folder, home), save_draft(q, folder, home)
    assert second == f"{first}-2"
    assert set(load_bank(folder / "quizzes" / "drafts", playbook).questions) == {first, second}


ZOHO = SHARED / "data" / "crm" / "zoho_crm_export_sample"


def test_deals_are_named_by_their_crm_name_and_customer_ids_only_as_a_note(playbook):
    """Salesforce deals read Opportunity.Name and Account.Name, Zoho potentials their Potential Name and the
    company of the lead they came from; the ids stay as a small note, never the title."""
    sf = read_export([SALESFORCE], None, playbook=playbook)
    opp = pd.read_csv(SALESFORCE / "Opportunity.csv").set_index("Id")
    accounts = pd.read_csv(SALESFORCE / "Account.csv").set_index("Id")["Name"]
    deal = sf.deals.set_index("deal_id").loc["006bm00000LKJNNAA5"]
    words = deal_words(deal, "006bm00000LKJNNAA5", "en")
    assert words["title"] == opp.at["006bm00000LKJNNAA5", "Name"] == "Dickenson Mobile Generators"
    assert words["customer"] == accounts[opp.at["006bm00000LKJNNAA5", "AccountId"]]
    assert words["ids"] == f"deal id 006bm00000LKJNNAA5; customer id {opp.at['006bm00000LKJNNAA5', 'AccountId']}"
    assert deal_words(deal, "006bm00000LKJNNAA5", "zh-CN")["ids"].startswith("商机编号 006bm00000LKJNNAA5；客户编号 ")
    assert sf.deals["name"].notna().all() and sf.deals["account_name"].notna().all()
    zoho = read_export([ZOHO], None, playbook=playbook)
    leads = pd.read_csv(ZOHO / "Leads.csv", dtype=str).set_index("LEADID")["Company"]
    potentials = pd.read_csv(ZOHO / "Potentials.csv", dtype=str)
    row = potentials.iloc[0]
    w = deal_words(zoho.deals.set_index("deal_id").loc[row["LEADID"]], row["LEADID"], "en")
    assert (w["title"], w["customer"], w["ids"]) == (row["Potential Name"], leads[row["LEADID"]], f"deal id {row['LEADID']}")
    # without a name the id is the title and nothing is repeated as a note; no owner is None, not "?"
    bare = deal_words(pd.Series({"account": "Cancity", "owner": float("nan")}), "1C1I7A6R", "en")
    assert bare == {"title": "1C1I7A6R", "customer": "Cancity", "owner": None, "ids": ""}


def test_stages_read_as_the_sop_names_them_with_the_crm_value_as_a_note(salesforce, playbook):
    """A Salesforce stage change reads as the SOP's stage in the page's language, "Qualification" only as a note."""
    data, comp = salesforce
    assert stage_words(playbook, "needs_analysis", "Qualification", "zh-CN") == ("需求分析", "Qualification")
    assert stage_words(playbook, "lost", "Closed Lost", "en") == ("lost", "Closed Lost")
    assert stage_words(playbook, None, "Odd Stage", "en") == ("Odd Stage", "")  # unmapped: the CRM's words
    assert stage_words(playbook, "needs_analysis", "needs analysis", "en") == ("Needs analysis", "")
    cs = case_study(data, playbook, "006bm00000LKJNNAA5", lang="zh-CN")
    assert cs.timeline["what"].iloc[0] == "进入阶段：需求分析（CRM：Qualification）"
    cs = case_study(data, playbook, "006bm00000LKJNNAA5", comp, lang="en")
    assert cs.timeline["what"].iloc[0] == "stage: Needs analysis (CRM: Qualification)"


def test_the_timeline_axis_spans_the_deals_events_and_the_legend_names_each_mark(demo, salesforce, playbook):
    """The chart's time axis runs from just before the deal's first event (or due time) to just after its
    last, and its legend has one drawn mark per kind of mark on the chart, no more."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from sopcoach.analytics.report import timeline_figure
    _sim, data, comp = demo
    row = comp.findings[comp.findings["check"] == "sla:first_proposal"].iloc[0]
    cs = case_study(data, playbook, row["deal_id"], comp, lang="en")
    fig = timeline_figure(cs, playbook, "en")
    ax = fig.axes[0]
    tz = playbook.calendar.timezone
    times = list(cs.timeline["timestamp"].dt.tz_convert(tz).dt.tz_localize(None))
    times += [d.tz_convert(tz).tz_localize(None) for d in cs.deviations["due"].dropna()]
    lo, hi = (mdates.num2date(v).replace(tzinfo=None) for v in ax.get_xlim())
    assert lo < min(times) and hi > max(times)
    span = max(times) - min(times)
    assert (min(times) - lo) <= max(span / 10, pd.Timedelta(days=2)) and (hi - max(times)) <= max(span / 10, pd.Timedelta(days=2))
    legend = ax.get_legend()
    labels = [x.get_text() for x in legend.get_texts()]
    assert labels == ["event", "deviation", "limit due"]
    marks = [h.get_marker() for h in legend.legend_handles]
    assert marks[:2] == ["o", "X"] and legend.legend_handles[2].get_linestyle() == "--"
    plt.close(fig)
    data_sf, comp_sf = salesforce  # one stage change, no deviation: the legend has no deviation mark
    cs = case_study(data_sf, playbook, "006bm00000LKJNNAA5", comp_sf, lang="zh-CN")
    fig = timeline_figure(cs, playbook, "zh-CN")
    ax = fig.axes[0]
    lo, hi = (mdates.num2date(v).replace(tzinfo=None) for v in ax.get_xlim())
    event = cs.timeline["timestamp"].dt.tz_convert(tz).dt.tz_localize(None).iloc[0]
    assert hi - lo <= pd.Timedelta(days=3) and lo < event < hi
    assert [x.get_text() for x in ax.get_legend().get_texts()] == ["记录"]
    plt.close(fig)


def test_compliance_over_all_months_is_computed_once_per_loaded_export_and_language(playbook, monkeypatch):
    """Case studies of one loaded export share its compliance per language; reading the export again starts afresh."""
    import sopcoach.analytics.case_study as module
    calls = []
    real = module.check_compliance
    monkeypatch.setattr(module, "check_compliance", lambda *a, **k: calls.append(k.get("lang")) or real(*a, **k))
    data = read_export([SALESFORCE], None, playbook=playbook)
    deals = list(data.deals["deal_id"][:3])
    for deal_id in deals:
        case_study(data, playbook, deal_id, lang="en")
    case_study(data, playbook, deals[0], lang="zh-CN")
    case_study(data, playbook, deals[1], lang="zh-CN")
    assert calls == ["en", "zh-CN"]
    assert all_months_compliance(data, playbook, "en") is all_months_compliance(data, playbook, "en")
    again = read_export([SALESFORCE], None, playbook=playbook)
    case_study(again, playbook, deals[0], lang="en")
    assert calls == ["en", "zh-CN", "en"]
