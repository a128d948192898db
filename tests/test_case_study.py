"""The case study of one deal (seed:3.3.2): stages against the SOP in working time, the deviations and
their clause, and a deviation turned into a practice question draft that no exam draws."""
from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pandas as pd
import pytest

from sopcoach.analytics.case_study import VERDICTS, case_study, draft_question
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
    """On Salesforce the delivery limit (no delivery events) is "not checkable" for every deal, naming what is missing."""
    data, comp = salesforce
    cs = case_study(data, playbook, data.deals["deal_id"].iloc[0], comp, lang="en")
    delivery = cs.sop[cs.sop["sla"] == "delivery"].iloc[0]
    assert delivery["verdict"] == "not_checkable" and "delivered" in delivery["reason"]


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
