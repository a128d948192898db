"""SOP compliance on the real exports in ../shared/data/crm: which checks each built-in mapping runs, with
how many cases, and why the others cannot run (issue 16.1).

Expected counts are computed here from the CSV files with pandas, independently of the reader."""
from __future__ import annotations

import shutil
from datetime import timezone

import pandas as pd
import pytest

from sopcoach.analytics.compliance import check_compliance
from sopcoach.analytics.funnel import find_bottleneck, funnel
from sopcoach.cli.main import main
from sopcoach.content.businesstime import Duration, DurationUnit
from sopcoach.content.playbook import load_playbook
from sopcoach.crm.mapping import builtin_mapping_path, load_mapping
from sopcoach.errors import ContentError
from sopcoach.crm.reading import read_export
from support import ROOT, SHARED

CRM = SHARED / "data" / "crm"
SALESFORCE = CRM / "salesforce_devorg_export_earthfink"
ZOHO = CRM / "zoho_crm_export_sample"
MAVEN = CRM / "maven_crm_sales_opportunities"
SLAS = ("sla:email_reply", "sla:tech_first_solution", "sla:satisfaction_call", "sla:first_proposal",
        "sla:delivery", "sla:quotation_cycle", "sla:first_contact")

#: Salesforce stage names the built-in mapping maps onto solution_demo and quotation
SF_DEMO = {"Value Proposition", "Id. Decision Makers", "Perception Analysis"}
SF_QUOTE = {"Proposal/Price Quote"}


@pytest.fixture(scope="module")
def pbm():
    return load_playbook(ROOT / "playbook")


@pytest.fixture(scope="module")
def pb_2018(pbm):
    """The playbook with its mainland-China calendar extended back to the Zoho sample's years."""
    return pbm.model_copy(update={"calendar": pbm.calendar.model_copy(update={"years": [2018, 2026]})})


@pytest.fixture(scope="module")
def salesforce(pbm):
    return read_export(SALESFORCE, "salesforce", playbook=pbm)


@pytest.fixture(scope="module")
def zoho(pbm):
    return read_export(ZOHO, "zoho", playbook=pbm)


@pytest.fixture(scope="module")
def maven(pbm):
    return read_export(MAVEN, "maven", playbook=pbm)


def status(comp) -> dict[str, str]:
    return comp.checks["status"].to_dict()


def reason(comp, check: str) -> str:
    return str(comp.checks.loc[check, "reason"])


# ------------------------------------------------------------------------------------ Salesforce


def test_salesforce_first_proposal_runs_on_opportunity_history(salesforce, pbm):
    """The 3-working-day first proposal (seed:1.2.2) runs from OpportunityHistory: each opportunity that
    entered a solution-demo stage is a case; the proposal counts as sent when it first entered Proposal/Price
    Quote (the mapping's derive), and the check says those events were inferred from stage changes."""
    hist = pd.read_csv(SALESFORCE / "OpportunityHistory.csv", dtype=str)
    opps = set(pd.read_csv(SALESFORCE / "Opportunity.csv", dtype=str)["Id"])
    hist = hist[hist["OpportunityId"].isin(opps)]
    hist["t"] = pd.to_datetime(hist["CreatedDate"], format="%m/%d/%y %I:%M %p").dt.tz_localize("UTC")
    start = hist[hist["StageName"].isin(SF_DEMO)].groupby("OpportunityId")["t"].min()
    quotes = hist[hist["StageName"].isin(SF_QUOTE)]
    cal = pbm.business_calendar()
    limit = Duration(3, DurationUnit.WORKING_DAYS)
    comp = check_compliance(salesforce, pbm, lang="en")
    breaches = 0
    for opp, t0 in start.items():
        after = quotes.loc[(quotes["OpportunityId"] == opp) & (quotes["t"] >= t0), "t"]
        due = cal.add(t0.to_pydatetime(), limit)
        end = after.min() if len(after) else comp.as_of  # none recorded: measured at the export's date
        breaches += end.to_pydatetime().astimezone(timezone.utc) > due
    row = comp.checks.loc["sla:first_proposal"]
    assert len(start) == 7
    assert (row["status"], row["instances"], row["breaches"]) == ("checked", len(start), breaches)
    assert "'proposal sent' = entering Quotation (set in the import mapping)" in row["inferred"]
    assert "'needs confirmed' = entering Solution demo (the stage's entry criterion)" in row["inferred"]
    assert "_" not in row["inferred"] and "derive" not in row["inferred"]  # in words, no mapping key
    assert set(comp.findings.loc[comp.findings["check"] == "sla:first_proposal", "deal_id"]) <= set(start.index)


def mapping(comp, need: str) -> str:
    return str(comp.missing.loc[need, "mapping"])


def test_salesforce_checks_that_cannot_run_name_what_they_need(salesforce, pbm):
    """Only the first proposal runs; every other check names, in a few words, the CRM field it waits for, and
    each missing field is said once, with how to supply it and what the import mapping needs."""
    comp = check_compliance(salesforce, pbm, lang="en")
    assert [c for c, s in status(comp).items() if s == "checked"] == ["sla:first_proposal"]
    # the quote and the proposal's acceptance both come from entering Proposal/Price Quote: no limit to measure
    assert "both inferred from entering Quotation" in reason(comp, "sla:quotation_cycle")
    assert reason(comp, "authority") == ("quotes are in USD, the authority limits in CNY. Waits for who approved "
                                         "a quote.")
    assert reason(comp, "cadence") == "Waits for the customer class (A/B/C); calls, e-mails and meetings."
    assert reason(comp, "sla:email_reply") == "Waits for which e-mails were received and which sent."
    assert comp.checks.loc["cadence", "needs"] == "tier, contacts"
    # no mapping syntax in a rule's reason: it is in the missing-field notes, once per field
    assert not comp.checks["reason"].str.contains("`|events\\.|deals\\.", regex=True).any()
    assert "events.approved_by" in mapping(comp, "approved_by")
    assert "deals.tier" in mapping(comp, "tier") and "`tiers:" in mapping(comp, "tier")
    assert "calls, e-mails or meetings" in mapping(comp, "contacts")
    assert "events.direction" in mapping(comp, "email_direction")
    assert "`milestone_dates: {delivered:" in mapping(comp, "delivered")
    assert "first outbound one is the first contact" in mapping(comp, "first_contact_made")
    assert comp.missing.loc["tier", "rules"] == comp.missing.loc["contacts", "rules"] == \
        "Weekly follow-ups per customer tier"
    assert comp.missing.loc["tier", "how"].startswith("fill in the customer class")
    assert comp.missing.index.is_unique and len(comp.missing) == 9
    assert (comp.checks.loc[comp.checks["status"] != "checked", "inferred"] == "").all()


def test_two_checks_waiting_for_the_stage_history_name_it_once(maven, pbm):
    """Maven has no stage history: the first proposal and the quotation cycle both wait for it, and the note
    on the missing field is one, listing both rules (zh-CN, full-width punctuation)."""
    comp = check_compliance(maven, pbm, lang="zh-CN")
    assert reason(comp, "sla:first_proposal") == reason(comp, "sla:quotation_cycle") == "缺少阶段变更历史。"
    row = comp.missing.loc["stage_changes"]
    assert row["field"] == "阶段变更历史" and row["rules"] == "初步方案、报价周期"
    assert "OpportunityHistory" in row["how"] and "`" not in row["how"]
    assert "solution_demo" in row["mapping"] and "quotation" in row["mapping"]
    assert list(comp.missing.index).count("stage_changes") == 1


def test_a_check_covering_no_case_is_not_checkable(salesforce, pbm):
    """In a month in which no opportunity entered a solution-demo stage, the first-proposal check covered
    0 cases: not checkable with why, never 'checked' with 0 breaches."""
    comp = check_compliance(salesforce, pbm, month="2026-01", lang="en")
    row = comp.checks.loc["sla:first_proposal"]
    assert row["status"] == "not_checkable" and pd.isna(row["instances"])
    assert "0 cases: no deal has a 'needs_confirmed' event in 2026-01" in row["reason"]
    assert comp.checked == 0


def test_without_opportunity_history_the_stage_limits_name_the_stage_changes(tmp_path, pbm):
    """An export without OpportunityHistory.csv has no stage changes: the first proposal names them and how
    a mapping supplies them."""
    folder = tmp_path / "sf"
    shutil.copytree(SALESFORCE, folder)
    (folder / "OpportunityHistory.csv").unlink()
    comp = check_compliance(read_export(folder, "salesforce", playbook=pbm), pbm, lang="en")
    assert comp.checks.loc["sla:first_proposal", "status"] == "not_checkable"
    assert reason(comp, "sla:first_proposal") == "Waits for the stage history."
    assert "`kind: {value: stage_change}`" in mapping(comp, "stage_changes")


def test_without_derive_the_proposal_event_is_named_with_the_yaml_to_write(tmp_path, pbm):
    """The derivation is the mapping's, never implicit: without `derive` no proposal_sent exists and the
    reason shows how to declare it."""
    text = builtin_mapping_path("salesforce").read_text(encoding="utf-8")
    text = text.replace("derive:\n  proposal_sent: {entered_stage: quotation}\n  quote_sent: {entered_stage: quotation}\n", "")
    assert "derive:" not in text
    path = tmp_path / "salesforce-no-derive.yaml"
    path.write_text(text, encoding="utf-8")
    comp = check_compliance(read_export(SALESFORCE, path, playbook=pbm), pbm, lang="en")
    assert comp.checks.loc["sla:first_proposal", "status"] == "not_checkable"
    assert "`derive: {proposal_sent: {entered_stage: <stage>}}`" in mapping(comp, "proposal_sent")
    assert reason(comp, "authority") == "Waits for quote amounts."


def test_derive_is_checked_against_the_playbook(tmp_path, pbm):
    """A derive naming an unknown SLA event or stage is refused with its line."""
    text = builtin_mapping_path("salesforce").read_text(encoding="utf-8")
    bad = text.replace("quote_sent: {entered_stage: quotation}", "quote_snt: {entered_stage: quote}")
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ContentError) as exc:
        load_mapping(path, pbm)
    text = str(exc.value)
    assert "'quote_snt' is not an SLA event" in text and "'quote' is not a playbook stage" in text
    line = bad.splitlines().index("  quote_snt: {entered_stage: quote}") + 1
    assert f":{line}:" in text


def test_salesforce_bottleneck_names_the_losses_without_a_stage(salesforce, pbm):
    """No bottleneck is called on 20 decided opportunities; the reason counts the lost ones whose history
    has no stage before the loss (computed here from OpportunityHistory)."""
    hist = pd.read_csv(SALESFORCE / "OpportunityHistory.csv", dtype=str)
    opps = pd.read_csv(SALESFORCE / "Opportunity.csv", dtype=str)
    lost = set(opps.loc[opps["StageName"] == "Closed Lost", "Id"])
    open_stages = hist[~hist["StageName"].str.startswith("Closed")]
    unplaced = len(lost - set(open_stages["OpportunityId"]))
    b = find_bottleneck(funnel(salesforce, pbm, lang="en"), lang="en")
    assert b.stage is None
    assert f"{unplaced} lost deals have no recorded stage before the loss" in b.reason


def test_analyze_and_the_report_show_the_case_count_and_the_inferred_legend(tmp_path, capsys, monkeypatch):
    """`analyze` prints the breaches over the cases of a check that ran with its legend, and the HTML
    report's checks table carries the same legend."""
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    report = tmp_path / "review.html"
    assert main(["analyze", str(SALESFORCE), "--no-progress", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("First proposal:"))
    assert "7 deviations / 7 checked" in line and "inferred from stage changes" in line
    assert "&#39;proposal sent&#39; = entering Quotation (set in the import mapping)" in report.read_text(encoding="utf-8")


def test_a_status_outside_done_planned_cancelled_is_refused(tmp_path, pbm):
    text = builtin_mapping_path("zoho").read_text(encoding="utf-8")
    path = tmp_path / "zoho-status.yaml"
    path.write_text(text.replace("Completed: done", "Completed: finished"), encoding="utf-8")
    with pytest.raises(ContentError) as exc:
        load_mapping(path, pbm)
    assert "'finished' (for 'Completed') is not an activity status; use one of done, planned, cancelled" in str(exc.value)


# ------------------------------------------------------------------------------------ Zoho


def _zoho_first_contact(cal) -> tuple[int, int, int]:
    """(cases, late, missing) of the 8-business-hour first contact, from the CSV files: a potential's clock starts
    at its Created Time; the first contact is its first outbound call or meeting (linked by LEADID); one made
    before the potential was created (calls to the lead before its conversion) is in time."""
    pot = pd.read_csv(ZOHO / "Potentials.csv", dtype=str)
    calls = pd.read_csv(ZOHO / "Calls.csv", dtype=str)
    events = pd.read_csv(ZOHO / "Events.csv", dtype=str)
    created = pd.to_datetime(pot["Created Time"], format="%d %b, %Y %H:%M:%S").dt.tz_localize("UTC")
    contacts = pd.concat([
        pd.DataFrame({"lead": calls.loc[calls["Call Type"] == "Outbound", "LEADID"],
                      "t": pd.to_datetime(calls.loc[calls["Call Type"] == "Outbound", "Call Start Time"])}),
        pd.DataFrame({"lead": events["LEADID"], "t": pd.to_datetime(events["Start DateTime"])})]).dropna()
    contacts["t"] = contacts["t"].dt.tz_localize("UTC")
    by_lead = {k: sorted(g) for k, g in contacts.groupby("lead")["t"]}
    limit = Duration(8, DurationUnit.BUSINESS_HOURS)
    late = missing = 0
    for lead, t0 in zip(pot["LEADID"], created):
        times = by_lead.get(lead, [])
        missing += not times
        late += bool(times) and times[0].to_pydatetime() > cal.add(t0.to_pydatetime(), limit)
    return len(pot), late, missing


def test_the_shipped_calendar_covers_the_sample_exports(zoho, pbm):
    """The shipped calendar reaches back to 2016, so first contact on the Zoho sample runs as shipped."""
    assert check_compliance(zoho, pbm, lang="en").checks.loc["sla:first_contact", "status"] == "checked"


def test_zoho_first_contact_runs_from_calls_and_meetings(zoho, pb_2018):
    """With a calendar covering 2018-2021, the first-contact limit runs on every potential, the first
    contact inferred from the first outbound call or meeting linked to it; counts match the CSV files."""
    cases, late, missing = _zoho_first_contact(pb_2018.business_calendar())
    comp = check_compliance(zoho, pb_2018, lang="en")
    row = comp.checks.loc["sla:first_contact"]
    assert (row["status"], row["instances"], row["breaches"]) == ("checked", cases, late + missing)
    verdicts = comp.findings.loc[comp.findings["check"] == "sla:first_contact", "verdict"].value_counts()
    assert (verdicts.get("late", 0), verdicts.get("missing", 0)) == (late, missing) and late > 0
    assert "'first contact made' = the first outbound call, e-mail or meeting" in row["inferred"]
    assert [c for c, s in status(comp).items() if s == "checked"] == ["sla:first_contact"]


def test_zoho_with_the_default_calendar_names_the_years_to_add(zoho, pbm):
    """With a calendar of 2025-2026 only, Zoho's 2018-2021 dates are not checked in a guessed calendar:
    the reason names the years to add."""
    short = pbm.model_copy(update={"calendar": pbm.calendar.model_copy(update={"years": [2025, 2026]})})
    comp = check_compliance(zoho, short, lang="en")
    assert comp.checks.loc["sla:first_contact", "status"] == "not_checkable"
    assert "calendar.years" in reason(comp, "sla:first_contact") and "2018-2021" in reason(comp, "sla:first_contact")


def test_zoho_cadence_needs_a_tier_and_runs_once_a_mapping_supplies_one(zoho, pbm, tmp_path):
    """Zoho has calls and meetings but no customer tier: cadence names `tier` and the `tiers:` map. A mapping
    that supplies one (here every potential class C) makes it run per ISO week; with every call and meeting
    marked planned (`status`), nothing is a held follow-up and the check says so."""
    comp = check_compliance(zoho, pbm, lang="en")
    assert comp.checks.loc["cadence", "status"] == "not_checkable"
    assert reason(comp, "cadence") == "Waits for the customer class (A/B/C)."
    assert "deals.tier" in mapping(comp, "tier") and "contacts" not in comp.missing.index
    text = builtin_mapping_path("zoho").read_text(encoding="utf-8")
    tiered = text.replace("      deal_id: LEADID\n      owner: Potential Owner\n",
                          "      deal_id: LEADID\n      owner: Potential Owner\n      tier: {value: C}\n")
    assert tiered != text
    path = tmp_path / "zoho-tier.yaml"
    path.write_text(tiered, encoding="utf-8")
    data = read_export(ZOHO, path, playbook=pbm)
    row = check_compliance(data, pbm, lang="en").checks.loc["cadence"]
    assert row["status"] == "checked" and 0 < row["breaches"] <= row["instances"]
    planned = tiered.replace("      kind: {value: call}\n", "      kind: {value: call}\n      status: {value: planned}\n")
    planned = planned.replace("      kind: {value: meeting}\n", "      kind: {value: meeting}\n      status: {value: planned}\n")
    path.write_text(planned, encoding="utf-8")
    comp = check_compliance(read_export(ZOHO, path, playbook=pbm), pbm, lang="en")
    assert comp.checks.loc["cadence", "status"] == "not_checkable"
    assert reason(comp, "cadence") == "Waits for calls, e-mails and meetings."


def test_zoho_tasks_keep_their_status(zoho):
    """Tasks map Zoho's Status: Completed is done, Not Started and In Progress are planned (counted from the CSV)."""
    tasks = pd.read_csv(ZOHO / "Tasks.csv", dtype=str)
    got = zoho.events.loc[zoho.events["kind"] == "task", "status"].value_counts().to_dict()
    assert got == {"done": int((tasks["Status"] == "Completed").sum()),
                   "planned": int((tasks["Status"] != "Completed").sum())}


# ------------------------------------------------------------------------------------ Maven


def test_maven_supports_no_check_and_each_reason_names_a_mapping_key(pbm):
    """Maven has one row per deal (no activities, no stage history, no tier, no quotes): nothing runs, each
    reason says which field is missing, and each missing field's note gives the YAML that supplies it."""
    files = {p.name for p in MAVEN.glob("*.csv")}
    assert not any("activit" in f or "event" in f or "history" in f.lower() for f in files)
    comp = check_compliance(read_export(MAVEN, "maven", playbook=pbm), pbm, lang="en")
    assert set(status(comp).values()) == {"not_checkable"}
    for check in (*SLAS, "cadence", "authority"):
        needs = comp.checks.loc[check, "needs"].split(", ")
        assert needs != [""] and reason(comp, check).startswith("Waits for "), check
        assert all("`" in mapping(comp, n) for n in needs), check  # the YAML to write, in the field's note
    assert "deals.tier" in mapping(comp, "tier")


def test_analyze_names_each_missing_field_once_in_a_managers_words(capsys, monkeypatch):
    """On Salesforce, `analyze` (zh-CN) lists each check that cannot run with the field it waits for, and says
    once per missing field how to supply it; no mapping syntax reaches the printout."""
    monkeypatch.setenv("SOPCOACH_LANG", "zh-CN")
    assert main(["analyze", str(SALESFORCE), "--no-progress"]) == 0
    out = capsys.readouterr().out
    out = out[out.index("SOP 合规："):out.index("数据质量：")]
    lines = out.splitlines()
    assert "`" not in out and "events.approved_by" not in out and "milestone_dates" not in out
    assert any(x.strip() == "按客户等级的每周跟进次数：无法检查：缺少客户等级（A/B/C）；电话、邮件和拜访记录。" for x in lines)
    assert sum(x.strip().startswith("客户等级（A/B/C）：") for x in lines) == 1
    note = next(x.strip() for x in lines if x.strip().startswith("报价审批人："))
    assert note == "报价审批人：在报价上记录超出权限时由谁批准，并随导出一起导出。（等待它的规则：超出权限的报价须经审批）"
    # findings name the clause by its title and its source in words, never by id
    finding = next(x for x in lines if x.strip().startswith("商机 006bm"))
    assert "（缩短销售周期,提高响应速度，规程第 1.2.2 节）" in finding and "seed:" not in out
