"""Playbook versions (:mod:`sopcoach.authoring.versions`): clause hashes, releases, diff, impact, needs-review,
attempts' versions, recertification."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import ROOT, FakeClock, correct_response, edit_file
from support import raise_supervisor_limit as raise_limit

from sopcoach.authoring.versions import (HASHED_WHEN_SET, clause_contents, clause_hashes, confirm, diff_playbook, impact, latest_release,
                                         needs_review, needs_review_ids, playbook_files, recertification_due,
                                         recertification_list, release, releases, set_sop_version, stale_quotes)
from sopcoach.certification.exam import ExamService, recertification_exam
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank
from sopcoach.errors import ExamError, QuestionsNeedReview, StaleQuotes, VersionError
from sopcoach.records.models import Learner, to_db

QUOTE_QUESTIONS = {"pk-rep-discount", "pk-am-quote-limit", "pk-supervisor-discount", "sp-rep-quote-limit",
                   "sp-rep-discount-limit", "sp-rep-approver", "sp-am-approver", "sp-supervisor-approver",
                   "sp-apply-quote-approver", "pk-apply-quote-within-authority", "sp-var-approval-chain"}


@dataclass
class Content:
    root: Path

    @property
    def folder(self) -> Path:
        return self.root / "playbook"

    def load(self) -> tuple[Any, Any]:
        pb = load_playbook(self.folder)
        return pb, load_bank(self.root / "quizzes" / "bank", pb)

    def edit(self, name: str, old: str, new: str) -> None:
        edit_file(self.folder / name, old, new)


@pytest.fixture
def content(tmp_path: Path) -> Content:
    shutil.copytree(ROOT / "playbook", tmp_path / "playbook")
    shutil.copytree(ROOT / "quizzes", tmp_path / "quizzes")
    return Content(tmp_path)


def raise_supervisor_limit(content: Content, texts: bool = True) -> None:
    raise_limit(content.folder, texts)


# -- hashes -----------------------------------------------------------------------------------------
def test_every_clause_has_a_hash(playbook):
    """Each clause id gets a 64-hex SHA-256."""
    hashes = clause_hashes(playbook)
    assert set(hashes) == {c.id for c in playbook.clauses}
    assert all(len(h) == 64 for h in hashes.values())


def test_a_structured_value_changes_only_its_clause(content):
    """Raising an authority limit changes the hash of quote-limits and of nothing else."""
    before = clause_hashes(content.load()[0])
    raise_supervisor_limit(content)
    after = clause_hashes(content.load()[0])
    assert {c for c in before if before[c] != after[c]} == {"quote-limits"}


def test_tier_fields_belong_to_their_clauses(content):
    """A tier's weekly minimum is its cadence clause; its size threshold is tier-thresholds."""
    before = clause_hashes(content.load()[0])
    content.edit("customers.yaml", "min_weekly_follow_ups: 2", "min_weekly_follow_ups: 3")
    mid = clause_hashes(content.load()[0])
    content.edit("customers.yaml", "min_employees: 500", "min_employees: 600")
    after = clause_hashes(content.load()[0])
    assert {c for c in before if before[c] != mid[c]} == {"follow-up-cadence-b-c"}
    assert {c for c in mid if mid[c] != after[c]} == {"tier-thresholds"}


def test_comments_do_not_change_clause_hashes(content):
    """Editing a comment leaves every clause hash as it was."""
    before = clause_hashes(content.load()[0])
    content.edit("authority.yaml", "# CNY", "# CNY (yuan)")
    assert clause_hashes(content.load()[0]) == before


# -- releases and needs-review --------------------------------------------------------------------------
def test_first_release_records_hashes_and_flags_nothing(content, records, clock):
    """The first release stores every clause hash and the YAML files; no question is flagged."""
    pb, bank = content.load()
    out = release(records, pb, bank, content.folder, by="王老师", now=clock())
    rel = latest_release(records)
    assert (out.label, out.previous, out.changed, out.flagged) == ("1.0", None, (), ())
    assert rel.clause_hashes == clause_hashes(pb) and rel.created_by == "王老师"
    assert "# CNY" in rel.snapshot["files"]["authority.yaml"]


def test_release_marks_questions_on_changed_clauses(content, records, clock):
    """A release that changes quote-limits marks the 11 questions examining it needs-review."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content)
    pb, bank = content.load()
    out = release(records, pb, bank, content.folder, label="1.1", now=clock())
    assert out.changed == ("quote-limits",) and out.previous == "1.0"
    assert set(out.flagged) == QUOTE_QUESTIONS == needs_review_ids(records)
    assert needs_review(records).loc["sp-rep-approver", "clauses"] == ["quote-limits"]


def test_release_label_in_use_is_refused(content, records, clock):
    """Releasing changed content under a used label says how to fix it."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content)
    pb, bank = content.load()
    with pytest.raises(VersionError, match=r"release label '1.0' is already used .*sopcoach release --label NEW"):
        release(records, pb, bank, content.folder, now=clock())


def test_release_without_change_is_refused(content, records, clock):
    """Releasing the same content twice is refused."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    with pytest.raises(VersionError, match="nothing changed since release '1.0'"):
        release(records, pb, bank, content.folder, label="1.1", now=clock())


def test_exam_draw_leaves_needs_review_questions_out(content, records, blueprint, clock):
    """No attempt drawn after the release contains a question waiting for review."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content)
    pb, bank = content.load()
    release(records, pb, bank, content.folder, label="1.1", now=clock())
    service = ExamService(records, bank, blueprint, pb.content_hash(), pb.sop.version, clock)
    drawn = set()
    for i in range(12):
        records.enroll(f"E{i}", "x")
        drawn |= set(records.attempt(service.start_or_resume(f"E{i}", seed=i)).question_ids)
    assert not drawn & QUOTE_QUESTIONS
    assert len(drawn) > 60  # the rest of the bank is still drawn


def test_section_without_enough_confirmed_questions_refuses_with_names(records, bank, blueprint, clock):
    """A section left short names itself and the questions to confirm."""
    from sopcoach.records.models import QuestionReview, Release, to_db
    crm = [q.id for q in bank.in_section("crm_use")]
    records.run(lambda s: s.add(Release(id=1, label="1.0", created_at=to_db(clock()), playbook_hash="x",
                                        clause_hashes={}, snapshot={}, changed=[])))
    waiting = crm[:len(crm) - 4]  # 4 left confirmed, one short of the 5 drawn
    for qid in waiting:
        records.run(lambda s, q=qid: s.add(QuestionReview(question_id=q, release_id=1, clauses=["c"],
                                                          status="needs_review", flagged_at=to_db(clock()))))
    records.enroll("E1", "x")
    service = ExamService(records, bank, blueprint, "h", "1.0", clock)
    with pytest.raises(QuestionsNeedReview) as err:
        service.start_or_resume("E1", seed=1)
    assert err.value.section == "crm_use" and (err.value.needed, err.value.available) == (5, 4)
    assert "section 'crm_use' draws 5 questions but only 4 are confirmed" in str(err.value)
    assert err.value.waiting == sorted(waiting) and ", ".join(sorted(waiting)) in str(err.value)


def test_confirm_returns_questions_to_the_draw(content, records, clock):
    """Confirmed questions are no longer waiting; an id not waiting is refused with the list."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content)
    pb, bank = content.load()
    release(records, pb, bank, content.folder, label="1.1", now=clock())
    assert confirm(records, ["sp-rep-approver", "sp-am-approver"], by="王老师") == ["sp-rep-approver",
                                                                                   "sp-am-approver"]
    assert needs_review_ids(records) == QUOTE_QUESTIONS - {"sp-rep-approver", "sp-am-approver"}
    with pytest.raises(VersionError, match=r"^not waiting for review: sp-rep-approver \(waiting: pk-am"):
        confirm(records, ["sp-rep-approver"])


def test_attempts_record_the_release_label(content, records, blueprint, clock):
    """An attempt records the release of its content, or '<version>+unreleased' after an edit."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    records.enroll("E1", "x")
    records.enroll("E2", "y")
    first = ExamService(records, bank, blueprint, pb.content_hash(), pb.sop.version, clock)
    assert records.attempt(first.start_or_resume("E1", seed=1)).playbook_version == "1.0"
    raise_supervisor_limit(content)
    pb2, bank2 = content.load()
    edited = ExamService(records, bank2, blueprint, pb2.content_hash(), pb2.sop.version, clock)
    assert records.attempt(edited.start_or_resume("E2", seed=1)).playbook_version == "1.0+unreleased"


# -- diff and impact -------------------------------------------------------------------------------------
# -- stale quotes -----------------------------------------------------------------------------------------
def test_release_is_refused_while_a_clause_text_quotes_the_changed_value(content, records, clock):
    """Raising a quote limit without its clause text is refused, naming clause, language, old and new value."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content, texts=False)
    pb, bank = content.load()
    with pytest.raises(StaleQuotes) as exc:
        release(records, pb, bank, content.folder, label="1.1", by="王老师", now=clock(), lang="en")
    assert [(q.clause_id, q.where, q.lang, q.quoted, q.old, q.new) for q in exc.value.quotes] == [
        ("quote-limits", "text", "zh-CN", "500,000元", "500000", "800000"),
        ("quote-limits", "text", "en", "500,000 CNY", "500000", "800000")]
    message = str(exc.value)
    assert message.startswith("not released: 2 text(s) still quote a value changed since the last release")
    assert ('clause quote-limits (Quote authority and approval levels per role), text (en), still says 500,000 CNY: '
            '"…upervisor: amount up to 500,000 CNY, discount up to 20%; ab…"; '
            "authority[sales_supervisor].max_quote_amount changed from 500000 to 800000") in message
    assert "--confirm-quotes" in message
    assert [r.label for r in releases(records)] == ["1.0"] and needs_review_ids(records) == set()


def test_confirmed_release_records_who_confirmed_which_quotes(content, records, clock):
    """With the trainer's confirmation the release goes through and stores the name and the quotes."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content, texts=False)
    pb, bank = content.load()
    with pytest.raises(VersionError, match="needs the name of who confirms"):
        release(records, pb, bank, content.folder, label="1.1", now=clock(), confirm_quotes=True)
    out = release(records, pb, bank, content.folder, label="1.1", by="王老师", now=clock(), confirm_quotes=True)
    assert out.changed == ("quote-limits",) and len(out.confirmed_quotes) == 2
    kept = latest_release(records).snapshot["quotes_confirmed"]
    assert kept["by"] == "王老师" and [(q["clause"], q["lang"], q["quoted"]) for q in kept["quotes"]] == [
        ("quote-limits", "zh-CN", "500,000元"), ("quote-limits", "en", "500,000 CNY")]


def test_confirming_some_quotes_leaves_the_others_refused(content, records, clock):
    """A confirmation covers the quotes it names: one found since still refuses the release."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content, texts=False)
    pb, bank = content.load()
    zh, en = stale_quotes(latest_release(records), pb)
    with pytest.raises(StaleQuotes) as exc:
        release(records, pb, bank, content.folder, label="1.1", by="王老师", now=clock(), confirm_quotes=[zh])
    assert en in exc.value.quotes and latest_release(records).label == "1.0"


def test_release_goes_through_when_the_text_follows_the_value(content, records, clock):
    """Raising the limit together with both clause texts is released without any question."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content)
    pb, bank = content.load()
    assert stale_quotes(latest_release(records), pb) == []
    out = release(records, pb, bank, content.folder, label="1.1", now=clock())
    assert out.confirmed_quotes == () and "quotes_confirmed" not in latest_release(records).snapshot


@pytest.mark.parametrize("edits, expected", [
    ([("slas.yaml", "limit: {value: 24, unit: elapsed_hours}", "limit: {value: 48, unit: elapsed_hours}")],
     [("service-standards", "zh-CN", "24小时", "24 elapsed_hours", "48 elapsed_hours"),
      ("service-standards", "en", "24 hours", "24 elapsed_hours", "48 elapsed_hours")]),
    # 24 inside 240 is not a quote of 24
    ([("slas.yaml", "limit: {value: 24, unit: elapsed_hours}", "limit: {value: 240, unit: elapsed_hours}"),
      ("clauses.yaml", "如24小时内回复邮件", "如240小时内回复邮件"), ("clauses.yaml", "within 24 hours", "within 240 hours")],
     []),
    # the unit alone changes: "2 working days" is stale, the other SLA of 2 working days is another clause's
    ([("slas.yaml", "limit: {value: 2, unit: working_days}        # \"技术", "limit: {value: 2, unit: calendar_days}       # \"技术")],
     [("service-standards", "zh-CN", "2个工作日", "2 working_days", "2 calendar_days"),
      ("service-standards", "en", "2 working days", "2 working_days", "2 calendar_days")]),
    # the account manager's 15% became 20% and the supervisor's 20% became 25%, texts updated:
    # 20% is still in force (the account manager's), so the text quoting it is right
    ([("authority.yaml", "max_discount: 0.15", "max_discount: 0.20"),
      ("authority.yaml", "max_discount: 0.20           # 20%", "max_discount: 0.25"),
      ("clauses.yaml", "折扣不超过15%", "折扣不超过20%"), ("clauses.yaml", "折扣不超过20%;超出由销售总监", "折扣不超过25%;超出由销售总监"),
      ("clauses.yaml", "discount up to 15%", "discount up to 20%"),
      ("clauses.yaml", "discount up to 20%; above this, the sales director", "discount up to 25%; above this, the sales director")],
     []),
    ([("customers.yaml", "min_weekly_follow_ups: 1 ", "min_weekly_follow_ups: 2 ")],
     [("follow-up-cadence-b-c", "zh-CN", "1次", "1", "2"), ("follow-up-cadence-b-c", "en", "once a week", "1", "2")]),
    ([("calendar.yaml", 'day_end: "18:00"', 'day_end: "17:30"')],
     [("business-hours", "zh-CN", "18:00", "18:00", "17:30"), ("business-hours", "en", "18:00", "18:00", "17:30")]),
    ([("customers.yaml", "min_employees: 500", "min_employees: 600")],
     [("customer-classification", "zh-CN", "500人", "500", "600"), ("customer-classification", "en", "500 employees", "500", "600"),
      ("tier-thresholds", "zh-CN", "500人", "500", "600"), ("tier-thresholds", "en", "500 employees", "500", "600")]),
])
def test_stale_quotes_find_old_values_with_their_units_only(content, records, clock, edits, expected):
    """Old values are found with their unit, in the clauses holding the value; longer numbers and values
    still in force are not quotes."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    for name, old, new in edits:
        content.edit(name, old, new)
    found = stale_quotes(latest_release(records), load_playbook(content.folder), "en")
    assert [(q.clause_id, q.lang, q.quoted, q.old, q.new) for q in found] == expected


def test_diff_lists_changed_fields_with_old_and_new(content, records, clock):
    """The diff names the clause, the field path and both values; the file diff keeps comments."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    raise_supervisor_limit(content, texts=False)
    pb, _ = content.load()
    d = diff_playbook(latest_release(records), pb, playbook_files(content.folder), "en")
    (ch,) = d.changes
    assert (ch.clause_id, ch.kind, ch.source) == ("quote-limits", "changed", "company-setting")
    assert [(f.path, f.old, f.new) for f in ch.fields] == [
        ("authority[sales_supervisor].max_quote_amount", "500000", "800000")]
    assert list(d.file_diffs) == ["authority.yaml"]
    assert "-    max_quote_amount: 500000" in d.file_diffs["authority.yaml"]
    assert "authority[sales_supervisor].max_quote_amount: 500000 -> 800000" in d.text("en")


def test_diff_shows_text_changes_and_added_clauses(content, records, clock):
    """A reworded clause text and a new clause both appear."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    content.edit("clauses.yaml", "Reduce ineffective communication, optimise",
                 "Cut ineffective communication, optimise")
    content.edit("clauses.yaml", "clauses:\n", "clauses:\n  - id: new-rule\n    source: seed:4.2.1\n"
                 "    title: {zh-CN: 新规则, en: New rule}\n    text: {zh-CN: 新规则正文, en: New rule text}\n")
    pb, _ = content.load()
    d = diff_playbook(latest_release(records), pb, playbook_files(content.folder), "en")
    kinds = {c.clause_id: c.kind for c in d.changes}
    assert kinds == {"new-rule": "added", "reduce-ineffective-communication": "changed"}
    (field,) = [c for c in d.changes if c.kind == "changed"][0].fields
    assert field.path == "clause.text.en" and field.new.startswith("Cut ineffective")


def test_diff_warns_when_a_clause_quoting_the_sop_is_reworded(content, records, clock):
    """A clause whose source is the SOP no longer quotes it once its text changes: the diff says so with the fix
    (restore the SOP's words, or make it a company setting); a company-setting clause's text may change freely."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    content.edit("clauses.yaml", "Reduce ineffective communication, optimise", "Cut ineffective communication, optimise")
    pb, _ = content.load()
    d = diff_playbook(latest_release(records), pb, playbook_files(content.folder), "en")
    assert [c.clause_id for c in d.requoted] == ["reduce-ineffective-communication"]
    (note,) = d.requote_notes("en")
    assert note.startswith("clause reduce-ineffective-communication quotes the SOP (seed:")
    assert "restore the SOP's words, or make the clause a company setting" in note
    assert f"! {note}" in d.text("en")
    raise_supervisor_limit(content)  # quote-limits is a company setting: its text follows the value
    pb, _ = content.load()
    d = diff_playbook(latest_release(records), pb, playbook_files(content.folder), "en")
    assert "quote-limits" in d.changed_ids and [c.clause_id for c in d.requoted] == ["reduce-ineffective-communication"]


def test_items_without_provenance_hash_as_before_the_fields_existed(playbook):
    """Provenance fields an item does not state are left out of its clause's hashed content, so upgrading
    sopcoach (which added them) marks no clause changed, flags no question and sends nobody to recertify."""
    items = [item for content in clause_contents(playbook).values() for part, values in content.items()
             if part != "clause" for item in values]
    assert any("clause" in item for item in items)
    assert not [(item.get("id"), k) for item in items for k in HASHED_WHEN_SET if k in item and item[k] is None]
    assert any("rationale" in item for item in items)  # stated ones are hashed


def test_diff_before_any_release_says_so(playbook):
    """Without a release there is nothing to compare, and the text says how to start."""
    d = diff_playbook(None, playbook)
    assert d.changes == () and "sopcoach release" in d.text("en")


def test_impact_lists_questions_lessons_checks_and_kpis(playbook, bank):
    """quote-limits: 11 questions (one a template), lessons 3 and 10, the authority check; kpi-formulas: the KPIs."""
    df = impact(playbook, bank, ["quote-limits", "business-calendar", "kpi-formulas"], "en")
    assert set(df.loc["quote-limits", "questions"]) == QUOTE_QUESTIONS
    assert df.loc["quote-limits", "lessons"] == ["L3 authority", "L10 products"]
    assert df.loc["quote-limits", "checks"] == ["authority"]
    assert "sla:first_proposal" in df.loc["business-calendar", "checks"]
    assert df.loc["kpi-formulas", "kpis"] == [f"kpi:{k.id}" for k in playbook.kpis]


def test_set_sop_version_keeps_comments_and_key_order(content):
    """Writing the version changes that line only: comments, order and quoting stay."""
    path = content.folder / "sop.yaml"
    before = path.read_text(encoding="utf-8").splitlines()
    set_sop_version(content.folder, "1.10")
    after = path.read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after)
    assert changed == [('  version: "1.0"', '  version: "1.10"')]
    assert load_playbook(content.folder).sop.version == "1.10"


# -- recertification ----------------------------------------------------------------------------------
def certify(service: ExamService, records: Any, bank: Any, learner: str, clock: FakeClock, seed: int = 1) -> int:
    records.enroll(learner, f"学员{learner}", team="east", cohort="2026-03")
    aid = service.start_or_resume(learner, seed=seed)
    for qid in records.attempt(aid).question_ids:
        service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
    clock.advance(minutes=15)
    assert service.submit(aid).passed
    return aid


def covered(records: Any, aid: int) -> set[str]:
    return {c for r in records.attempt(aid).report["results"] for c in r["clauses"]}


def test_recertification_lists_people_whose_certificate_covered_a_changed_clause(content, records, blueprint, clock):
    """After first-contact-limit changes, exactly the certificates that examined it are listed."""
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    service = ExamService(records, bank, blueprint, pb.content_hash(), pb.sop.version, clock)
    ids = {f"E{i}": certify(service, records, bank, f"E{i}", clock, seed=i) for i in range(8)}
    content.edit("slas.yaml", "limit: {value: 8, unit: business_hours}", "limit: {value: 4, unit: business_hours}")
    content.edit("clauses.yaml", "须在8个工作小时内", "须在4个工作小时内")
    content.edit("clauses.yaml", "within 8 business hours", "within 4 business hours")
    pb, bank = content.load()
    release(records, pb, bank, content.folder, label="1.1", now=clock())
    listed = recertification_list(records, clock())
    expected = {lid for lid, aid in ids.items() if "first-contact-limit" in covered(records, aid)}
    assert expected and expected != set(ids)  # the draw decides who examined the clause
    assert set(listed["learner_id"]) == expected
    assert all(c == ["first-contact-limit"] for c in listed["changed"])
    leaver = sorted(expected)[0]  # a leaver has nothing to re-take

    def deactivate(session):
        session.get(Learner, leaver).deactivated_at = to_db(clock())
    records.run(deactivate)
    assert set(recertification_list(records, clock())["learner_id"]) == expected - {leaver}


def test_recertification_exam_examines_only_the_changed_clauses(content, records, blueprint, clock):
    """The short exam draws confirmed questions on the changed clauses, one section per clause."""
    pb, bank = content.load()
    bank2, bp2 = recertification_exam(bank, blueprint, ["quote-limits", "business-calendar"], 7, pb,
                                      per_clause=2, exclude={"sp-rep-approver"})
    assert bp2.id == "sales-sop-certification.recert-r7"
    assert [(s.id, s.draw) for s in bp2.sections] == [("quote-limits", 2), ("business-calendar", 2)]
    assert all({"quote-limits", "business-calendar"} & set(q.clauses) for q in bank2.questions.values())
    assert "sp-rep-approver" not in bank2.questions
    assert bp2.time_limit_minutes == 6 and bp2.pass_mark == blueprint.pass_mark  # 45 min * 4/30, pro rata
    assert "各岗位报价权限与审批层级" in bp2.instructions.zh_CN and "4 questions" in bp2.instructions.en


def test_recertification_exam_without_confirmed_questions_is_refused(bank, blueprint):
    """When every question on the clause waits for review there is no exam."""
    with pytest.raises(ExamError, match="no confirmed question examines the changed clauses quote-limits"):
        recertification_exam(bank, blueprint, ["quote-limits"], 2, exclude=QUOTE_QUESTIONS)


def test_passing_recertification_renews_the_certificate(content, records, blueprint, clock):
    """Passing the short exam issues a current certificate that replaces the old one, same expiry."""
    from sopcoach.certification.certificates import verify
    from sopcoach.records.models import Certificate
    pb, bank = content.load()
    release(records, pb, bank, content.folder, now=clock())
    service = ExamService(records, bank, blueprint, pb.content_hash(), pb.sop.version, clock)
    seed = 1
    aid = certify(service, records, bank, "E1", clock, seed=seed)
    while "quote-limits" not in covered(records, aid):  # pick a learner whose draw examined the clause
        seed += 1
        aid = certify(service, records, bank, f"E{seed}", clock, seed=seed)
    learner = records.attempt(aid).learner_id
    old = records.run(lambda s: s.query(Certificate).filter_by(attempt_id=aid).one())
    raise_supervisor_limit(content)
    pb, bank = content.load()
    out = release(records, pb, bank, content.folder, label="1.1", now=clock())
    confirm(records, out.flagged)
    code, clauses, rel = recertification_due(records, learner, clock())
    assert (code, clauses) == (old.code, ["quote-limits"])
    sub_bank, sub_bp = recertification_exam(bank, blueprint, clauses, rel, pb)
    recert = ExamService(records, sub_bank, sub_bp, pb.content_hash(), pb.sop.version, clock)
    clock.advance(days=2)
    rid = recert.start_or_resume(learner, seed=3)
    assert len(records.attempt(rid).question_ids) == 2
    for qid in records.attempt(rid).question_ids:
        recert.answer(rid, qid, correct_response(recert.attempt_question(rid, qid)))
    clock.advance(minutes=3)
    assert recert.submit(rid).passed
    assert verify(records, old.code, clock()).status == "superseded"
    new = records.run(lambda s: s.query(Certificate).filter_by(attempt_id=rid).one())
    assert (new.replaces, new.playbook_version, new.expires_at) == (old.code, "1.1", old.expires_at)
    assert verify(records, new.code, clock()).status == "current"
    assert recertification_due(records, learner, clock()) is None
