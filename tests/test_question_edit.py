"""The question editing session on a copy of the shipped content: add, edit, retire, check, review, save."""
from __future__ import annotations

import difflib
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sopcoach.authoring.question_edit import STORE, QuestionEdit
from sopcoach.certification.exam import draw
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank, load_blueprint
from sopcoach.errors import EditError, InvalidPlaybook
from support import ROOT, copy_content


@pytest.fixture
def content(tmp_path) -> Path:
    return copy_content(tmp_path)


@pytest.fixture
def ed(content, tmp_path) -> QuestionEdit:
    return QuestionEdit(content, tmp_path / "home")


def _changed_lines(ed: QuestionEdit, name: str) -> list[str]:
    old, new = ed.files[name].text.splitlines(), ed.texts()[name].splitlines()
    return [x for x in difflib.unified_diff(old, new, lineterm="", n=0)
            if x[:1] in "+-" and not x.startswith(("+++", "---"))]


NEW_PRACTICE = {
    "id": "pr-auth-amount-new", "type": "numeric", "section": "authority", "clauses": ["quote-limits"],
    "answer_from": "authority.sales_rep.max_quote_amount", "unit": {"zh-CN": "元", "en": "CNY"},
    "text": {"zh-CN": "销售代表可独立报价的最高金额是多少元?", "en": "What is the highest quote total a sales representative may send alone?"},
    "explanation": {"zh-CN": "见报价权限。", "en": "See the quote limits."},
}


def test_an_added_question_is_saved_and_reads_back_equal_from_disk(ed, content, tmp_path):
    file = ed.add_question("practice", NEW_PRACTICE)
    assert file == "practice/3_authority.yaml"
    assert ed.validate() == []
    written = ed.save(note="new practice item", by="trainer-1")
    assert written == ("quizzes/practice/3_authority.yaml",)

    again = QuestionEdit(content, tmp_path / "home")
    assert again.question("practice", "pr-auth-amount-new") == NEW_PRACTICE
    playbook = load_playbook(content / "playbook")
    pool = load_bank(content / "quizzes" / "practice", playbook)
    limit = playbook.facts()["authority.sales_rep.max_quote_amount"]
    assert pool["pr-auth-amount-new"].answer == Decimal(str(limit))  # resolved from the playbook
    assert [q.id for q in pool.in_section("authority")][-1] == "pr-auth-amount-new"
    # the version before is kept, apart from the playbook's history
    (backup,) = again.history()
    assert backup.changed == ("quizzes/practice/3_authority.yaml",) and backup.note == "new practice item"
    assert (tmp_path / "home" / STORE / backup.id / "practice" / "3_authority.yaml").read_bytes() == \
        (ROOT / "quizzes" / "practice" / "3_authority.yaml").read_bytes()
    assert not (tmp_path / "home" / "playbook-history").joinpath(backup.id).exists()


def test_an_id_in_use_and_an_incomplete_question_are_refused(ed):
    with pytest.raises(EditError, match="already used"):
        ed.add_question("practice", {**NEW_PRACTICE, "id": "cm-b-cadence"})  # a bank id: never reused
    with pytest.raises(EditError, match=r"incomplete: clauses: List should have at least 1 item"):
        ed.add_question("practice", {**NEW_PRACTICE, "clauses": []})
    assert not ed.dirty


def test_editing_a_stem_changes_one_line_and_keeps_comments(ed, content):
    ed.set_text("bank", "sp-stage-order", "text", "en", "Put the stages of the sales process in order.")
    assert _changed_lines(ed, "bank/sales_process.yaml") == [
        "-      en: Put the six stages of the sales process in order.",
        "+      en: Put the stages of the sales process in order."]
    ed.save()
    text = (content / "quizzes" / "bank" / "sales_process.yaml").read_text(encoding="utf-8")
    assert "# authored in the correct order (= the order of stages in playbook/process.yaml)" in text
    assert "# How a question is written (all sections):" in text
    before = (ROOT / "quizzes" / "bank" / "sales_process.yaml").read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(before.splitlines())


def test_scenario_explanation_clauses_options_and_key_are_edited(ed):
    qid = "cr-status-update"
    ed.set_text("bank", qid, "scenario", "zh-CN", "客户刚确认了报价。")
    ed.set_text("bank", qid, "scenario", "en", "The customer has just confirmed the quote.")
    ed.set_field("bank", qid, "answer", False)
    ed.set_clauses("bank", qid, "crm-tracking, measurable-steps")
    q, problems = ed.resolved("bank", qid)
    assert problems == [] and q.answer is False and q.scenario.en == "The customer has just confirmed the quote."
    assert q.clauses == ["crm-tracking", "measurable-steps"]
    opts = ed.question("bank", "cr-tracking-purpose")["options"]
    wrong = next(o["id"] for o in opts if not o.get("correct"))
    new = [{**o, "correct": o["id"] == wrong} for o in opts]
    ed.set_choices("bank", "cr-tracking-purpose", new)
    q, _ = ed.resolved("bank", "cr-tracking-purpose")
    assert [o.id for o in q.options if o.correct] == [wrong]
    review = ed.review("en")
    change = next(c for c in review.changes if c.id == "cr-tracking-purpose")
    assert change.kind == "edited" and change.fields == ("options",) and change.old_key != change.new_key
    assert ed.validate() == []


def test_retiring_keeps_the_question_but_leaves_it_out_of_every_draw(ed, content):
    ed.retire("bank", "cr-status-update")
    assert _changed_lines(ed, "bank/crm_use.yaml") == ["+    retired: true"]
    review = ed.review("en")
    assert [(c.id, c.kind) for c in review.changes] == [("cr-status-update", "retired")]
    (row,) = review.sections
    assert (row.section, row.after, row.before - 1, row.short) == ("crm_use", row.before - 1, row.after, False)
    ed.save()
    playbook = load_playbook(content / "playbook")
    bank = load_bank(content / "quizzes" / "bank", playbook)
    blueprint = load_blueprint(content / "quizzes" / "blueprint.yaml", bank)
    assert bank["cr-status-update"].retired  # old attempts still find it
    assert "cr-status-update" not in [q.id for q in bank.in_section("crm_use")]
    assert all("cr-status-update" not in draw(bank, blueprint, seed).question_ids for seed in range(200))


def test_retiring_below_the_draw_is_reported_and_not_saved(content, tmp_path):
    # the trainer's instructions quote the question count (the shipped ones leave numbers to the page's table)
    blueprint = content / "quizzes" / "blueprint.yaml"
    text = blueprint.read_text(encoding="utf-8")
    text = text.replace("    en: |-\n      Questions are drawn", "    en: |-\n      The exam has 30 questions. Questions are drawn", 1)
    assert "The exam has 30 questions." in text
    blueprint.write_text(text, encoding="utf-8")
    ed = QuestionEdit(content, tmp_path / "home")
    section = "crm_use"
    ids = [r.id for r in ed.questions("bank") if r.section == section]
    draws = ed.draws()
    for qid in ids[: len(ids) - draws[section] + 1]:
        ed.retire("bank", qid)
    review = ed.review("en")
    (row,) = review.sections
    assert row.short and row.after == draws[section] - 1
    assert any(f"exam section {section} draws {draws[section]}" in h for h in review.hints)
    problems = ed.validate()
    assert any(p.path == "quizzes/blueprint.yaml" and f"section '{section}' draws" in p.message for p in problems)
    with pytest.raises(InvalidPlaybook):
        ed.save()
    ed.set_draw(section, draws[section] - 1)  # lowering the draw makes it valid again
    assert ed.validate() == []
    total = sum(draws.values())
    assert any(f"the exam now has {total - 1} questions, but the instructions in blueprint.yaml still say {total}" in h
               for h in ed.review("en").hints)


def test_a_key_no_option_matches_is_refused_with_file_line_and_field(ed, content):
    before = (content / "quizzes" / "bank" / "customer_management.yaml").read_bytes()
    ed.set_field("bank", "cm-b-cadence", "key_from", "tier.A.min_weekly_follow_ups")  # 3: option c ...
    opts = ed.question("bank", "cm-b-cadence")["options"]
    ed.set_choices("bank", "cm-b-cadence", [{**o, "value": 9 if o["value"] == 3 else o["value"]} for o in opts])
    problems = ed.validate()
    (p,) = problems
    assert p.path == "quizzes/bank/customer_management.yaml" and p.line == 108 and p.field.startswith("questions[")
    assert "key_from 'tier.A.min_weekly_follow_ups'" in p.message and "0 options match it" in p.message
    _, local = ed.resolved("bank", "cm-b-cadence")
    assert local and "0 options match it" in local[0]
    with pytest.raises(InvalidPlaybook, match="customer_management.yaml:108"):
        ed.save()
    assert (content / "quizzes" / "bank" / "customer_management.yaml").read_bytes() == before


def test_a_fraction_in_a_whole_number_field_is_refused(ed):
    with pytest.raises(EditError, match=r"draw of section 'crm_use' is a whole number of questions \(got 2.5\)"):
        ed.set_draw("crm_use", 2.5)
    with pytest.raises(EditError, match="must be a number"):
        ed.set_field("bank", "cm-b-cadence", "points", "two")
    assert not ed.dirty


def test_check_warnings_show_in_the_review_but_do_not_block_the_save(ed, content):
    opts = ed.question("bank", "cm-b-cadence")["options"]
    long = {"zh-CN": "每周一次,并在每次跟进后立即在CRM中完整记录沟通内容、客户反馈和下一步计划",
            "en": "Once a week, with every contact recorded in full in the CRM right after it, feedback and next steps included"}
    ed.set_choices("bank", "cm-b-cadence", [{**opts[0], "text": long}, *opts[1:]])
    review = ed.review("en")
    assert review.problems == ()
    (warning,) = review.warnings
    assert warning.path == "quizzes/bank/customer_management.yaml" and warning.severity == "warning"
    assert "option 'a' is much longer than its siblings" in warning.message
    assert "Warnings (saving is allowed):" in review.text("en")
    assert ed.save() == ("quizzes/bank/customer_management.yaml",)


def test_a_practice_twin_warns_until_it_is_retired(ed):
    twin = {"id": "pr-twin", "type": "numeric", "section": "customers", "clauses": ["follow-up-frequency"],
            "answer_from": "tier.A.min_weekly_follow_ups",
            "text": {"zh-CN": "A类客户每周最少要跟进多少次?", "en": "At least how many times a week is a class A customer followed up?"}}
    ed.add_question("practice", twin)
    assert any("'pr-twin' is a twin of exam question 'cm-a-cadence'" in w.message for w in ed.warnings())
    ed.retire("practice", "pr-twin")  # a retired practice question is shown to nobody: no oracle
    assert not any("pr-twin" in w.message for w in ed.warnings())
    assert ed.validate() == [] and ed.question("practice", "pr-twin")["retired"] is True


def test_a_draft_goes_to_a_new_drafts_file_that_no_exam_or_lesson_reads(content, tmp_path):
    """save_draft starts quizzes/drafts/case_studies.yaml: the editor lists the draft in its drafts pool, the
    bank and the practice pool are unchanged, and the draft keeps its key derived from the playbook."""
    from sopcoach.authoring.question_edit import DRAFTS_FILE, save_draft
    bank_before = {p: p.read_bytes() for p in (content / "quizzes").rglob("*.yaml")}
    draft = {**NEW_PRACTICE, "id": "case-draft-1", "section": "sales_process"}
    assert save_draft(draft, content, tmp_path / "home", by="trainer-1") == "case-draft-1"
    text = (content / "quizzes" / DRAFTS_FILE).read_text(encoding="utf-8")
    assert text.startswith("# Practice question drafts for the trainers") and "answer_from: authority.sales_rep" in text
    assert {p: p.read_bytes() for p in bank_before} == bank_before  # every other quizzes/ file as it was
    again = QuestionEdit(content, tmp_path / "home")
    assert [r.id for r in again.questions("drafts")] == ["case-draft-1"]
    assert "case-draft-1" not in {r.id for pool in ("bank", "practice") for r in again.questions(pool)}


def test_an_editor_session_opened_before_a_draft_is_saved_is_not_overwritten(ed, content, tmp_path):
    """A session that added a draft file refuses to save when another draft file of that name appeared meanwhile."""
    from sopcoach.authoring.question_edit import DRAFTS_FILE, save_draft
    from sopcoach.errors import SaveConflict
    (content / "quizzes" / "drafts").mkdir()
    ed.add_question("drafts", {**NEW_PRACTICE, "id": "case-draft-a", "section": "sales_process"}, file=DRAFTS_FILE)
    save_draft({**NEW_PRACTICE, "id": "case-draft-b", "section": "sales_process"}, content, tmp_path / "home")
    with pytest.raises(SaveConflict):
        ed.save()
    assert "case-draft-b" in (content / "quizzes" / DRAFTS_FILE).read_text(encoding="utf-8")


# -- history and restore ------------------------------------------------------------------------------------
BANK_FILE = "bank/customer_management.yaml"
STEM = "How many follow-ups does this class B customer need this week?"


def _disk(content: Path, name: str = BANK_FILE) -> bytes:
    return (content / "quizzes" / name).read_bytes()


def test_a_restore_brings_back_the_saved_version_and_can_itself_be_undone(ed, content):
    """Restoring the version kept before a save puts its bytes back and reopens the session; the
    version it replaced is kept too, and restoring that one undoes the restore."""
    ed.set_text("bank", "cm-b-cadence", "text", "en", STEM)
    ed.save(note="shorter stem", by="trainer-1")
    edited = _disk(content)
    (before_save,) = ed.history()
    result = ed.restore(before_save.id, by="trainer-2")
    assert result.written == (f"quizzes/{BANK_FILE}",)
    assert _disk(content) == (ROOT / "quizzes" / BANK_FILE).read_bytes()
    assert ed.question("bank", "cm-b-cadence")["text"]["en"] != STEM and not ed.dirty  # the session reads the disk
    undo, older = ed.history()  # newest first: the version the restore replaced
    assert older.id == before_save.id
    assert (undo.kind, undo.by, undo.changed) == ("restore", "trainer-2", (f"quizzes/{BANK_FILE}",))
    when = f"{before_save.created_at.astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d %H:%M:%S}"
    assert undo.note == f"恢复 {when} 北京时间 保存的版本之前"  # the version restored by its time, not its UTC id
    assert (undo.folder / BANK_FILE).read_bytes() == edited
    ed.restore(undo.id)
    assert _disk(content) == edited and ed.question("bank", "cm-b-cadence")["text"]["en"] == STEM
    assert [b.kind for b in ed.history()] == ["restore", "restore", "save"]


def test_a_restore_is_refused_while_the_session_has_unsaved_edits(ed, content):
    ed.retire("bank", "cr-status-update")
    ed.save()
    (backup,) = ed.history()
    ed.set_text("bank", "cm-b-cadence", "text", "en", STEM)
    with pytest.raises(EditError, match="you have unsaved changes; save or discard them"):
        ed.restore(backup.id, lang="en")
    with pytest.raises(EditError, match="有未保存的修改：请先保存或放弃修改，再恢复版本。"):
        ed.restore(backup.id, lang="zh-CN")
    assert ed.dirty and ed.question("bank", "cm-b-cadence")["text"]["en"] == STEM  # the edit is kept
    assert b"retired: true" in _disk(content, "bank/crm_use.yaml") and len(ed.history()) == 1
    with pytest.raises(EditError, match="no saved version 'drafts'"):
        QuestionEdit(content, ed.home).restore("drafts", lang="en")  # the conflict drafts are no version


def test_a_version_whose_questions_do_not_load_is_refused_and_nothing_is_written(ed, content):
    """A saved version that no longer passes ``check`` (here: its key follows a playbook value that
    does not exist) is refused with the problem named in both languages; disk and history stay."""
    ed.set_text("bank", "cm-b-cadence", "text", "en", STEM)
    ed.save()
    (backup,) = ed.history()
    broken = backup.folder / BANK_FILE
    broken.write_bytes(broken.read_bytes().replace(b"key_from: tier.B.min_weekly_follow_ups",
                                                   b"key_from: tier.B.no_such_value"))
    disk = _disk(content)
    with pytest.raises(InvalidPlaybook) as refused:
        ed.restore(backup.id, lang="en")
    assert str(refused.value).startswith(f"nothing was restored: the files of version {backup.id} do not load")
    assert any(p.path == f"quizzes/{BANK_FILE}" and "tier.B.no_such_value" in p.message for p in refused.value.problems)
    with pytest.raises(InvalidPlaybook, match=f"未恢复：版本 {backup.id} 的文件无法载入"):
        ed.restore(backup.id, lang="zh-CN")
    assert _disk(content) == disk and len(ed.history()) == 1 and not ed.dirty
