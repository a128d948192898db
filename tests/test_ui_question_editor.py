"""The question editor app without a browser: controls edit the session, the preview is the learner's
view (no key unless asked), refusals are shown, and review and save land on disk."""
from __future__ import annotations

import json
from pathlib import Path

import ipywidgets as w
import pytest

from sopcoach.authoring.question_edit import QuestionEdit
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank
from sopcoach.ui.question_editor import QuestionEditorApp, build
from support import ROOT, copy_content

NOTEBOOK = ROOT / "notebooks" / "trainer" / "question_editor.ipynb"


@pytest.fixture
def content(tmp_path) -> Path:
    return copy_content(tmp_path)


@pytest.fixture
def app(content, tmp_path) -> QuestionEditorApp:
    return build(content, tmp_path / "home", lang="en", by="trainer-1")


def _texts(widget: w.Widget) -> str:
    """Every text a widget tree shows: HTML values, descriptions and option labels."""
    out = []
    stack = [widget]
    while stack:
        x = stack.pop()
        stack += list(getattr(x, "children", ()))
        if isinstance(x, w.HTML):
            out.append(x.value)
        out.append(getattr(x, "description", "") or "")
        out += [o[0] if isinstance(o, tuple) else str(o) for o in getattr(x, "options", ()) or ()]
    return "\n".join(out)


def _pick(app: QuestionEditorApp, pool: str, qid: str) -> None:
    app.pool.value = pool
    app.picker.value = qid


def test_editing_the_stem_updates_the_preview_and_saves(app, content):
    _pick(app, "bank", "cm-b-cadence")
    assert "how many follow-ups does this customer need" in _texts(app.preview)
    app.controls["text.en"].value = "How many follow-ups does this class B customer need this week?"
    shown = _texts(app.preview)
    assert "How many follow-ups does this class B customer need this week?" in shown
    assert "Once" in shown and "2 times" in shown  # the options, as the exam lists them
    assert app.key_box.value == ""  # no key without "Show key"
    app.show_key.value = True
    assert "Key: <b>2 times</b>" in app.key_box.value  # key_from: the playbook's B-tier value (2)
    app.on_review()
    assert not app.save_button.disabled and "exam question cm-b-cadence [edited] stem" in app.results.value
    app.on_save()
    assert "Saved: quizzes/bank/customer_management.yaml" in app.status.value
    bank = load_bank(content / "quizzes" / "bank", load_playbook(content / "playbook"))
    assert bank["cm-b-cadence"].text.en == "How many follow-ups does this class B customer need this week?"


def test_the_practice_preview_is_the_lesson_card_and_its_check_gives_feedback(app):
    _pick(app, "practice", "pr-auth-at-limit")
    card = app.preview.children[0]
    assert "sopcoach-practice-pr-auth-at-limit" in card._dom_classes
    assert "100000 CNY" in _texts(card)  # facts filled in from the playbook
    control = next(c for c in card.children if isinstance(c, w.RadioButtons))
    control.value = "false"
    next(c for c in card.children if isinstance(c, w.Button)).click()
    assert "Correct" in _texts(card)


def test_a_template_previews_one_drawn_variant_with_its_key(app):
    """A template shows one sample draw (numbers filled in, the rule named) and that draw's key."""
    _pick(app, "bank", "sp-var-proposal-deadline")
    shown = _texts(app.preview)
    assert "A template" in shown and "sla_deadline" in shown and "{{" not in shown
    assert "working days" in shown and " 20" in shown  # a drawn limit and date-time
    app.show_key.value = True
    assert "Key: <b>" in app.key_box.value and "20" in app.key_box.value
    _pick(app, "practice", "pr-prod-var-quote")
    card = app.preview.children[0]
    assert "sopcoach-practice-pr-prod-var-quote" in card._dom_classes and "{{" not in _texts(card)


def test_a_new_question_is_added_edited_and_saved(app, content, tmp_path):
    app.pool.value = "practice"
    app.new_id.value = "pr-auth-new"
    app.new_type.value = "true_false"
    app.new_section.value = "authority"
    title = next(c.title.get("en") for c in load_playbook(content / "playbook").clauses if c.id == "quote-limits")
    assert title in app.new_clauses.allowed_tags and "quote-limits" not in app.new_clauses.allowed_tags
    app.new_clauses.value = [title]  # picked by title; the file keeps the id
    app.add_button.click()
    assert app.qid == "pr-auth-new" and "Added pr-auth-new" in app.status.value
    app.controls["text.zh-CN"].value = "销售代表报价超出金额上限时须经销售主管审批。"
    app.controls["text.en"].value = "A sales representative's quote above the amount limit needs the sales supervisor's approval."
    app.on_review()
    app.on_save()
    again = QuestionEdit(content, tmp_path / "home")
    assert again.question("practice", "pr-auth-new") == {
        "id": "pr-auth-new", "type": "true_false", "section": "authority", "clauses": ["quote-limits"],
        "answer": True, "text": {"zh-CN": "销售代表报价超出金额上限时须经销售主管审批。",
                                 "en": "A sales representative's quote above the amount limit needs the sales supervisor's approval."}}


def test_retire_marks_the_question_and_review_shows_the_section_count(app):
    _pick(app, "bank", "cr-status-update")
    next(c for c in app.form.children if "sopcoach-q-retire" in c._dom_classes).click()
    assert app.ed.question("bank", "cr-status-update")["retired"] is True
    assert "[retired]" in dict((v, k) for k, v in app.picker.options)["cr-status-update"]
    app.on_review()
    assert "cr-status-update [retired]" in app.results.value and "bank crm_use: " in app.results.value


def test_a_key_no_option_matches_is_shown_and_not_saved(app, content):
    _pick(app, "bank", "cm-b-cadence")
    app.controls["key_from"].value = "tier.A.min_weekly_follow_ups"
    app.controls["options.2.value"].value = "9"  # the option that was worth 3 follow-ups
    assert "0 options match it" in app.own_problems.value
    app.on_check()
    assert "quizzes/bank/customer_management.yaml:108" in app.results.value
    app.on_review()
    assert app.save_button.disabled
    before = (content / "quizzes" / "bank" / "customer_management.yaml").read_bytes()
    app.on_save()
    assert (content / "quizzes" / "bank" / "customer_management.yaml").read_bytes() == before


def test_a_fraction_in_the_whole_number_draw_is_refused_and_reset(app):
    _pick(app, "bank", "cm-b-cadence")
    draw = app.controls["draw"]
    old = draw.value
    draw.value = "2.5"
    assert "is a whole number of questions (got 2.5)" in app.status.value
    assert draw.value == old and not app.ed.dirty


def test_the_notebook_is_one_call():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert code == ["from sopcoach.ui.question_editor import question_editor", "question_editor()"]


def test_a_draft_from_the_monthly_review_opens_in_the_drafts_pool(content, tmp_path):
    """A saved draft is listed under Drafts and previewed as the exam would show it, its key from the playbook."""
    from sopcoach.authoring.question_edit import save_draft
    draft = {"id": "case-first_proposal-000005", "type": "numeric", "section": "sales_process",
             "clauses": ["sales-cycle-timeliness"], "answer_from": "sla.first_proposal.value",
             "unit": {"zh-CN": "个工作日", "en": "working days"},
             "scenario": {"zh-CN": "商机 000005：方案晚了。", "en": "Deal 000005: the proposal came late."},
             "text": {"zh-CN": "时限是多少工作日？", "en": "What is the limit, in working days?"}}
    save_draft(draft, content, tmp_path / "home")
    app = build(content, tmp_path / "home", lang="en", by="trainer-1")
    assert "Drafts (in no exam or lesson)" in _texts(app.root)
    _pick(app, "drafts", "case-first_proposal-000005")
    assert "Deal 000005: the proposal came late." in _texts(app.preview)
    app.show_key.value = True
    assert "3" in app.key_box.value


# -- history and restore ------------------------------------------------------------------------------------
STEM = "How many follow-ups does this class B customer need this week?"
BANK_FILE = "quizzes/bank/customer_management.yaml"


def _save_stem(app: QuestionEditorApp) -> None:
    _pick(app, "bank", "cm-b-cadence")
    app.controls["text.en"].value = STEM
    app.on_review()
    app.note.value = "shorter stem"
    app.save_button.click()


def test_restore_brings_back_a_saved_version_and_the_page_shows_it(app, content):
    """History lists the version kept before a save (time in the playbook's zone, who, files, note);
    Restore puts it back, the form shows it, and the version replaced is listed to undo the restore."""
    assert app.restore_button.disabled and "Nothing saved yet." in app.history_info.value
    _save_stem(app)
    ((label, _id),) = app.versions.options
    assert "Beijing time · before save · trainer-1 · quizzes/bank/customer_management.yaml — shorter stem" in label
    assert not app.restore_button.disabled
    app.restore_button.click()
    assert f"Restored: {BANK_FILE}. The version replaced is kept" in app.status.value
    assert (content / BANK_FILE).read_bytes() == (ROOT / BANK_FILE).read_bytes()
    assert app.qid == "cm-b-cadence" and app.controls["text.en"].value != STEM  # the form is read again
    assert STEM not in _texts(app.preview)
    assert len(app.versions.options) == 2 and "before restore" in app.versions.options[0][0]
    app.restore_button.click()  # the newest: the version the restore replaced
    assert app.controls["text.en"].value == STEM and STEM in (content / BANK_FILE).read_text(encoding="utf-8")


def test_restore_is_refused_while_edits_are_unsaved(app, content):
    _save_stem(app)
    app.controls["text.en"].value = "Yet another stem?"
    app.restore_button.click()
    assert "you have unsaved changes" in app.status.value
    assert app.controls["text.en"].value == "Yet another stem?" and app.ed.dirty
    assert STEM in (content / BANK_FILE).read_text(encoding="utf-8") and len(app.versions.options) == 1


def test_a_version_that_does_not_load_is_refused_in_the_page_language(content, tmp_path):
    """In zh-CN the history reads in Beijing time; a broken version is refused, nothing is written."""
    app = build(content, tmp_path / "home", lang="zh-CN", by="trainer-1")
    _save_stem(app)
    assert "北京时间 · 保存前 · trainer-1 · " in app.versions.options[0][0]
    assert "已保存：quizzes/bank/customer_management.yaml（之前的版本已备份" in app.status.value
    (backup,) = app.ed.history()
    broken = backup.folder / "bank" / "customer_management.yaml"
    broken.write_bytes(broken.read_bytes().replace(b"tier.B.min_weekly_follow_ups", b"tier.B.no_such_value"))
    app.restore_button.click()
    assert f"未恢复：版本 {backup.id} 的文件无法载入" in app.status.value
    assert "tier.B.no_such_value" in app.status.value
    assert STEM in (content / BANK_FILE).read_text(encoding="utf-8") and len(app.versions.options) == 1
    assert app.controls["text.en"].value == STEM


def test_sections_are_offered_by_their_titles(content, tmp_path):
    """The section dropdowns show the exam section's title (a practice question: its lesson's number and title), the id
    only in brackets; the value stored is still the id."""
    app = build(content, tmp_path / "home", lang="zh-CN", by="trainer-1")
    labels = dict((v, k) for k, v in app.new_section.options)
    assert labels["crm_use"] == "CRM使用（crm_use）"
    app.pool.value = "practice"
    labels = dict((v, k) for k, v in app.new_section.options)
    assert labels["authority"].startswith("3. ") and labels["authority"].endswith("（authority）")


def test_clauses_are_picked_by_title_and_saved_as_ids(app, content, tmp_path):
    """The clause field shows the question's clauses by title, offers the playbook's titles, and writes ids."""
    titles = {c.id: c.title.get("en") for c in load_playbook(content / "playbook").clauses}
    _pick(app, "bank", "cm-b-cadence")
    field = app.controls["clauses"]
    before = QuestionEdit(content, tmp_path / "other").question("bank", "cm-b-cadence")["clauses"]
    assert field.value == [titles[c] for c in before]
    assert set(field.allowed_tags) == set(titles.values())
    field.value = [*field.value, titles["crm-tracking"]]
    app.on_review()
    app.on_save()
    assert QuestionEdit(content, tmp_path / "again").question("bank", "cm-b-cadence")["clauses"] == [*before, "crm-tracking"]
