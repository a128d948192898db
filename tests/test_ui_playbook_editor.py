"""The playbook editor app without a browser: each control edits its value, check runs live, and
review, save, conflicts, discard and restore behave as the trainer expects."""
from __future__ import annotations

import difflib
import json
import re
import shutil
from pathlib import Path

import ipywidgets as w
import pytest

from sopcoach.authoring.playbook_edit import PlaybookEdit, history
from sopcoach.ui.playbook_editor import PlaybookEditorApp, build, playbook_editor
from support import ROOT

NOTEBOOK = ROOT / "notebooks" / "trainer" / "playbook_editor.ipynb"
MODULE = ROOT / "src" / "sopcoach" / "ui" / "playbook_editor.py"


@pytest.fixture
def content(tmp_path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(ROOT / "playbook", root / "playbook")
    shutil.copytree(ROOT / "quizzes", root / "quizzes")
    return root


@pytest.fixture
def app(content, tmp_path) -> PlaybookEditorApp:
    return build(content, tmp_path / "home", lang="en", by="trainer-1")


def _lines(app: PlaybookEditorApp, name: str) -> list[str]:
    ed = app.ed
    old, new = ed.files[name].text.splitlines(), ed.texts()[name].splitlines()
    return [x for x in difflib.unified_diff(old, new, lineterm="", n=0)
            if x[:1] in "+-" and not x.startswith(("+++", "---"))]


# -- one case per control: (control, value, file, changed lines) ----------------------------------------------
CONTROLS = [
    ("sla.first_contact.value", 6.0, "slas.yaml",
     ["-    limit: {value: 8, unit: business_hours}      # company setting: clause first-contact-limit (a business day 09:00-18:00 has 9 h)",
      "+    limit: {value: 6, unit: business_hours}      # company setting: clause first-contact-limit (a business day 09:00-18:00 has 9 h)"]),
    ("sla.satisfaction_call.unit", "working_days", "slas.yaml",
     ['-    limit: {value: 30, unit: calendar_days}      # "成交后30天进行满意度回访": calendar days',
      '+    limit: {value: 30, unit: working_days}       # "成交后30天进行满意度回访": calendar days']),
    ("sla.satisfaction_call.tolerance.after", 5.0, "slas.yaml",
     ["-    tolerance: {before: 3, after: 3, unit: working_days, clause: satisfaction-call-tolerance}  # company setting",
      "+    tolerance: {before: 3, after: 5, unit: working_days, clause: satisfaction-call-tolerance}  # company setting"]),
    ("sla.satisfaction_call.tolerance.unit", "calendar_days", "slas.yaml",
     ["-    tolerance: {before: 3, after: 3, unit: working_days, clause: satisfaction-call-tolerance}  # company setting",
      "+    tolerance: {before: 3, after: 3, unit: calendar_days, clause: satisfaction-call-tolerance} # company setting"]),
    ("authority.account_manager.max_quote_amount", 350000.0, "authority.yaml",
     ["-    max_quote_amount: 300000     # CNY", "+    max_quote_amount: 350000     # CNY"]),
    ("authority.account_manager.max_quote_amount.none", True, "authority.yaml",
     ["-    max_quote_amount: 300000     # CNY"]),
    ("authority.account_manager.max_discount_pct", 17.5, "authority.yaml",
     ["-    max_discount: 0.15           # 15%", "+    max_discount: 0.175          # 15%"]),
    ("authority.account_manager.max_discount_pct.none", True, "authority.yaml",
     ["-    max_discount: 0.15           # 15%"]),
    ("authority.account_manager.approver", "sales_director", "authority.yaml",
     ["-    approver: sales_supervisor", "+    approver: sales_director"]),
    ("tier.B.min_weekly_follow_ups", 3, "customers.yaml",
     ["-    min_weekly_follow_ups: 2           # company setting (clause follow-up-cadence-b-c)",
      "+    min_weekly_follow_ups: 3           # company setting (clause follow-up-cadence-b-c)"]),
    ("tier.B.min_annual_revenue", 15000000.0, "customers.yaml",
     ["-    min_annual_revenue: 10000000       # CNY (10 million)",
      "+    min_annual_revenue: 15000000       # CNY (10 million)"]),
    ("tier.B.min_employees", 150, "customers.yaml", ["-    min_employees: 100", "+    min_employees: 150"]),
    ("tier.B.min_employees.none", True, "customers.yaml", ["-    min_employees: 100"]),
    ("template.case_library.review_value", 60.0, "templates.yaml",
     ["-    review_every: {value: 90, unit: calendar_days}", "+    review_every: {value: 60, unit: calendar_days}"]),
    ("template.case_library.review_unit", "working_days", "templates.yaml",
     ["-    review_every: {value: 90, unit: calendar_days}", "+    review_every: {value: 90, unit: working_days}"]),
    ("template.case_library.review_value.none", True, "templates.yaml",
     ["-    review_every: {value: 90, unit: calendar_days}"]),
    ("template.quote_sheet.review_value.none", False, "templates.yaml",
     ["+    review_every: {value: 0, unit: calendar_days}"]),
    ("stage.quotation.role", "account_manager", "process.yaml",
     ["-    responsible_role: sales_rep", "+    responsible_role: account_manager"]),
    ("kpi.win_rate.target", 40.0, "kpis.yaml",
     ["-    target: 0.35                      # 35%", "+    target: 0.4                       # 35%"]),
    ("kpi.average_sales_cycle.target", 45.0, "kpis.yaml",
     ["-    target: 60                        # at most 60 calendar days on average",
      "+    target: 45                        # at most 60 calendar days on average"]),
    ("kpi.win_rate.target.none", True, "kpis.yaml", ["-    target: 0.35                      # 35%"]),
    ("calendar.timezone", "Asia/Hong_Kong", "calendar.yaml",
     ["-  timezone: Asia/Shanghai", "+  timezone: Asia/Hong_Kong"]),
    ("calendar.weekend.Sat", False, "calendar.yaml", ["-  weekend: [Sat, Sun]", "+  weekend: [Sun]"]),
    ("calendar.day_start", "08:30", "calendar.yaml", ['-  day_start: "09:00"', '+  day_start: "08:30"']),
    ("calendar.day_end", "17:30", "calendar.yaml", ['-  day_end: "18:00"', '+  day_end: "17:30"']),
    ("calendar.holidays_source", "declared", "calendar.yaml",
     ["-  holidays_source: chinese-calendar", "+  holidays_source: declared"]),
    ("calendar.years", "2025, 2026, 2027", "calendar.yaml",
     ["-  years: [2016, 2026]", "+  years: [2025, 2026, 2027]"]),
    ("calendar.holidays", "2026-02-20", "calendar.yaml", ["-  holidays: []", "+  holidays: [2026-02-20]"]),
    ("calendar.workdays", "2026-02-28, 2026-03-07", "calendar.yaml",
     ["-  workdays: []", "+  workdays: [2026-02-28, 2026-03-07]"]),
    ("sop.version", "1.1", "sop.yaml", ['-  version: "1.0"', '+  version: "1.1"']),
]


@pytest.mark.parametrize("name, value, file, lines", CONTROLS, ids=[c[0] for c in CONTROLS])
def test_each_value_control_edits_its_line(app, name, value, file, lines):
    """Setting a control changes exactly the line of its value, and check runs at once."""
    assert "No unsaved changes" in app.check_box.value
    app.controls[name].value = value
    assert app.ed.changed_files() == [file]
    assert _lines(app, file) == lines
    assert f"Unsaved changes: playbook/{file}" in app.check_box.value
    assert app.status.value == ""


def test_unticking_no_limit_writes_the_number_shown(app):
    """A role without a limit gets one when "none" is unticked; the number box is enabled again."""
    amount = app.controls["authority.sales_director.max_quote_amount"]
    none = app.controls["authority.sales_director.max_quote_amount.none"]
    assert none.value is True and amount.disabled
    amount.value = 800000.0  # not written while "none" is ticked
    assert not app.ed.dirty
    none.value = False
    assert not amount.disabled
    assert _lines(app, "authority.yaml") == ["+    max_quote_amount: 800000"]


@pytest.mark.parametrize("field, lang, value, line", [
    ("title", "zh-CN", "跟进频率(最低次数)", "+      zh-CN: 跟进频率(最低次数)"),
    ("title", "en", "Follow-up frequency: minimum", "+      en: 'Follow-up frequency: minimum'"),
    ("text", "zh-CN", "跟进频率:设定最低跟进次数。", "+        跟进频率:设定最低跟进次数。"),
    ("text", "en", "Set the minimum per class.", "+        Set the minimum per class."),
])
def test_clause_texts_side_by_side(app, field, lang, value, line):
    """Each clause shows title and text in zh-CN and en side by side; each box edits its language."""
    app.section.value = "3"
    name = f"clause.follow-up-frequency.{field}.{lang}"
    box = app.controls[name]
    pair = box.layout.width
    assert pair == "49%"
    app.controls[name].value = value
    changed = _lines(app, "clauses.yaml")
    assert line in changed and len([x for x in changed if x.startswith("+")]) == 1


def test_clause_rationale_and_retired_switch(app):
    """A company setting's rationale is editable; retiring marks the clause and keeps its id."""
    app.section.value = "company"
    app.controls["clause.quote-limits.rationale"].value = "Deal sizes grew in 2026."
    app.controls["clause.quote-limits.retired"].value = True
    assert _lines(app, "clauses.yaml") == [
        "-    rationale: The source requires a quote limit per role with supervisor approval above it "
        "(seed:2.3.1) but sets no amounts; these limits follow the size of typical deals.",
        "+    rationale: Deal sizes grew in 2026.", "+    retired: true"]
    head = next(c.children[0] for c in app.clause_box.children
                if "sopcoach-c-clause-quote-limits" in c._dom_classes)
    assert "retired" in head.value and "quote-limits" in head.value
    assert "quote-limits" in app.ed.ids("clauses")


def test_sections_list_the_clauses_by_seed_chapter(app):
    """The section picker offers the four chapters of the SOP and the company settings."""
    assert [v for _, v in app.section.options] == ["1", "2", "3", "4", "company"]
    app.section.value = "4"
    ids = [re.search(r"sopcoach-c-clause-([\w.-]+)$", c._dom_classes[-1]).group(1) for c in app.clause_box.children]
    assert ids == ["pilot-first", "gradual-rollout", "feedback-channel", "data-driven-adjustment"]


def test_stage_buttons_reorder_the_process(app):
    """The up/down buttons move a stage; the numbers and the file follow."""
    down = next(c for c in app.stage_rows["quotation"].children if isinstance(c, w.Button)
                and "sopcoach-c-stage-quotation-down" in c._dom_classes)
    down.click()
    assert app.ed.ids("stages")[3:5] == ["contract_negotiation", "quotation"]
    assert [r.children[0].value for r in app.stages_box.children][3:5] == ["<b>4.</b>", "<b>5.</b>"]
    assert app.stages_box.children[4] is app.stage_rows["quotation"]
    assert "sopcoach check: no problems" in app.check_box.value


def test_adding_a_clause_through_the_form(app):
    """The new-clause form adds the clause after the chosen one and shows it in its section."""
    app.new_id.value = "reply-template"
    app.new_source.value = "company-setting"
    app.new_rationale.value = "Consistent replies."
    app.new_title["zh-CN"].value, app.new_title["en"].value = "回复模板", "Reply template"
    app.new_text["zh-CN"].value, app.new_text["en"].value = "使用统一回复模板。", "Use the reply template."
    app.new_after.value = "tier-thresholds"
    app.add_button.click()
    ids = app.ed.ids("clauses")
    assert ids[ids.index("tier-thresholds") + 1] == "reply-template"
    assert app.section.value == "company" and "clause.reply-template.text.en" in app.controls
    assert app.new_id.value == "" and "Clause reply-template added" in app.status.value


def test_an_incomplete_new_clause_is_refused_with_the_reason(app):
    """A company setting without a rationale is not added; the message says what is missing."""
    app.new_id.value = "x-1"
    app.new_source.value = "company-setting"
    for box in (*app.new_title.values(), *app.new_text.values()):
        box.value = "x"
    app.add_button.click()
    assert "a company-setting clause needs a one-line &#x27;rationale&#x27;" in app.status.value
    assert app.ed.changed_files() == []


# -- live check, review, save --------------------------------------------------------------------------------
def test_an_invalid_value_shows_the_check_message_and_cannot_be_saved(app, content):
    """A cadence no question option matches shows check's message; Save stays off, even when forged."""
    app.controls["tier.A.min_weekly_follow_ups"].value = 5
    assert "sopcoach check reports 1 problem(s)" in app.check_box.value
    assert "quizzes/bank/customer_management.yaml:162:5: questions[6]: key_from" in app.check_box.value
    app.review_button.click()
    assert app.save_button.disabled and "saving is not possible" in app.review_html.value
    app.on_save()  # a forged click
    assert "nothing was saved" in app.status.value
    assert (content / "playbook" / "customers.yaml").read_bytes() == (ROOT / "playbook" / "customers.yaml").read_bytes()


def test_review_warns_while_a_clause_still_quotes_the_old_sla(app):
    """Shortening the first-contact SLA flags the clause text quoting 8 business hours (zh-CN and en),
    which a release would refuse; editing both texts clears the warning."""
    app.controls["sla.first_contact.value"].value = 6.0
    app.review_button.click()
    html = app.review_html.value
    assert ("clause first-contact-limit still says 8个工作小时 (zh-CN; slas[first_contact].limit.value changed from "
            "8 business_hours to 6 business_hours); edit its text, or the release will ask you to confirm it.") in html
    assert "clause first-contact-limit still says 8 business hours (en;" in html
    app.show_clause("first-contact-limit")
    zh, en = (app.controls[f"clause.first-contact-limit.text.{lang}"] for lang in ("zh-CN", "en"))
    zh.value = zh.value.replace("8个工作小时", "6个工作小时")
    en.value = en.value.replace("8 business hours", "6 business hours")
    app.review_button.click()
    assert "still says" not in app.review_html.value


def test_review_then_save_raises_the_a_tier_cadence(app, content, tmp_path):
    """Review shows the diff, impact and the changed key; Save writes the file and keeps a backup."""
    app.controls["tier.A.min_weekly_follow_ups"].value = 4
    assert app.save_button.disabled  # not reviewed yet
    app.review_button.click()
    html = app.review_html.value
    assert app.tabs.selected_index == 3 and not app.save_button.disabled
    assert "tiers.cadence[A].min_weekly_follow_ups: 3 -&gt; 4" in html
    assert "cm-a-cadence" in html and "L5 customers" in html and "cadence" in html
    assert re.search(r"<td>cm-a-cadence</td><td>exam</td><td class='old'>3 per week</td><td class='new'>4 per week</td>", html)
    assert "at least 4 times a week" in html  # the lesson's key point
    app.note.value = "March review: A accounts churn"
    app.save_button.click()
    assert "Saved: playbook/customers.yaml" in app.status.value
    assert "min_weekly_follow_ups: 4 " in (content / "playbook" / "customers.yaml").read_text(encoding="utf-8")
    (backup,) = history(tmp_path / "home")
    assert backup.note == "March review: A accounts churn" and backup.by == "trainer-1"
    assert json.loads((backup.folder / "manifest.json").read_text())["clauses"] == ["follow-up-frequency"]
    assert app.versions.value == backup.id and "No unsaved changes" in app.check_box.value
    assert app.controls["tier.A.min_weekly_follow_ups"].value == 4


def test_an_edit_after_the_review_requires_a_new_review(app, content):
    """Save is disabled again as soon as the edits differ from what the review showed."""
    app.controls["tier.A.min_weekly_follow_ups"].value = 4
    app.review_button.click()
    app.controls["tier.B.min_weekly_follow_ups"].value = 3
    assert app.save_button.disabled and "Refresh the review" in app.review_html.value
    app.on_save()  # forged: the server side re-runs the review instead of saving
    assert "the review is updated" in app.status.value
    assert (content / "playbook" / "customers.yaml").read_bytes() == (ROOT / "playbook" / "customers.yaml").read_bytes()


def test_a_conflicting_save_keeps_the_edits_and_reload_reapplies_them(app, content, tmp_path):
    """When another trainer saved first, nothing is written, the edit stays and survives a reload."""
    app.controls["tier.A.min_weekly_follow_ups"].value = 4
    app.review_button.click()
    other = PlaybookEdit(content, tmp_path / "home")
    other.set_tier("C", min_weekly_follow_ups=2)
    other.save()
    app.save_button.click()
    assert "Nothing was saved: playbook/customers.yaml changed on disk" in app.status.value
    assert "playbook-history/drafts/" in app.status.value
    assert app.controls["tier.A.min_weekly_follow_ups"].value == 4 and app.ed.dirty
    app.reload_button.click()
    assert app.controls["tier.A.min_weekly_follow_ups"].value == 4
    assert app.controls["tier.C.min_weekly_follow_ups"].value == 2  # the other trainer's value
    app.review_button.click()
    app.save_button.click()
    text = (content / "playbook" / "customers.yaml").read_text(encoding="utf-8")
    assert "min_weekly_follow_ups: 4 " in text and "min_weekly_follow_ups: 2           # company setting" in text


def test_discard_puts_every_control_back(app):
    """Discard drops all edits and shows the values on disk again."""
    app.controls["sla.delivery.value"].value = 7.0
    app.on_move_stage("quotation", -1)
    app.discard_button.click()
    assert not app.ed.dirty and app.controls["sla.delivery.value"].value == 5
    assert app.ed.ids("stages")[3] == "quotation" and app.stages_box.children[3] is app.stage_rows["quotation"]


def test_restore_brings_back_a_saved_version(app, content):
    """History lists the version kept before a save; Restore puts it back."""
    app.controls["sla.delivery.value"].value = 7.0
    app.review_button.click()
    app.save_button.click()
    assert app.restore_button.disabled is False
    app.restore_button.click()
    assert "Restored: playbook/slas.yaml" in app.status.value
    assert (content / "playbook" / "slas.yaml").read_bytes() == (ROOT / "playbook" / "slas.yaml").read_bytes()
    assert app.controls["sla.delivery.value"].value == 5
    assert len(app.versions.options) == 2


def test_restore_is_refused_while_edits_are_unsaved(app):
    """Restoring never throws away unsaved edits."""
    app.controls["sla.delivery.value"].value = 7.0
    app.review_button.click()
    app.save_button.click()
    app.controls["sla.delivery.value"].value = 9.0
    app.restore_button.click()
    assert "you have unsaved changes" in app.status.value


def test_an_unexpected_error_in_a_handler_shows_a_message_not_a_traceback(app, monkeypatch):
    """A failing edit is logged on the server; the page shows a short message."""
    def boom(*_a, **_k):
        raise RuntimeError("secret detail")
    monkeypatch.setattr(app.ed, "set_tier", boom)
    app.controls["tier.A.min_weekly_follow_ups"].value = 4
    assert "Something went wrong" in app.status.value and "secret" not in app.status.value


def test_a_folder_without_playbook_shows_a_message(tmp_path):
    """The notebook's call explains a wrong SOPCOACH_CONTENT instead of failing."""
    widget = playbook_editor(tmp_path, tmp_path / "home", lang="en")
    assert isinstance(widget, w.HTML) and "no playbook/ folder" in widget.value


def test_a_file_that_is_not_yaml_is_named_with_the_check_message(content, tmp_path):
    """A playbook file broken by hand stops the editor with check's line for it."""
    (content / "playbook" / "kpis.yaml").write_text("kpis: [unclosed\n", encoding="utf-8")
    widget = playbook_editor(content, tmp_path / "home", lang="en")
    assert "playbook/kpis.yaml cannot be read" in widget.value
    assert "playbook/kpis.yaml:2:1: YAML syntax error" in widget.value


def test_problems_already_on_disk_are_shown_at_open(content, tmp_path):
    """A playbook that fails check on disk opens with the problems listed, so they can be fixed here."""
    path = content / "playbook" / "slas.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("value: 5, unit: working_days", "value: -5, unit: working_days"),
                    encoding="utf-8")
    app = build(content, tmp_path / "home", lang="en")
    assert "The playbook files on disk have" in app.check_box.value
    assert "playbook/slas.yaml:78:20: slas[4].limit.value" in app.check_box.value
    app.controls["sla.delivery.value"].value = 5.0
    assert "sopcoach check: no problems" in app.check_box.value


def test_the_notebook_is_thin_and_committed_without_outputs():
    """Title, import, one call; no def/class/loops/branches; no outputs."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds == ["markdown", "code", "code"]
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert code == ["from sopcoach.ui.playbook_editor import playbook_editor", "playbook_editor()"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb["cells"] if c["cell_type"] == "code")
    assert "".join(nb["cells"][0]["source"]).startswith("# ")


def test_widgets_only_forward_and_never_print():
    """The module has no print(), and every observer is registered with names="value"."""
    source = MODULE.read_text(encoding="utf-8")
    assert "print(" not in source
    observers = re.findall(r"\.observe\(([^\n]*)", source)
    assert observers and all('names="value"' in o for o in observers)


@pytest.mark.parametrize("name, old, unit, file", [
    ("tier.A.min_weekly_follow_ups", 3, "follow-ups a week", "customers.yaml"),
    ("tier.A.min_employees", 500, "employees", "customers.yaml"),
    ("sla.satisfaction_call.tolerance.before", 3, "days", "slas.yaml")])
def test_a_fraction_in_a_count_is_refused_never_read_as_25(app, content, name, old, unit, file):
    """Typing 2.5 into a count (issue 14): the widget takes the decimal point (an IntText's browser
    view drops it and sends 25), the editor refuses 2.5 with the reason and shows the old value again."""
    box = app.controls[name]
    assert isinstance(box, w.FloatText)
    assert box.value == old
    box.value = 2.5  # what a FloatText sends when "2.5" is typed
    assert f"is a whole number of {unit} (got 2.5)" in app.status.value
    assert box.value == old
    assert app.ed.changed_files() == []
    box.value = old + 1  # a whole number still goes through
    assert app.ed.changed_files() == [file]
    assert f": {old + 1}" in app.ed.texts()[file]


def test_clause_sections_are_the_source_parts_by_title(content, tmp_path):
    """The clause section picker names each part of the source SOP by its title, not by a seed reference:
    第一部分 · 销售操作规程的重要性及目标（N 条） … 第四部分 · 实施与监控, then the company settings."""
    app = build(content, tmp_path / "home", lang="zh-CN")
    labels = [label for label, _ in app.section.options]
    assert [x.split("（")[0] for x in labels[:4]] == ["第一部分 · 销售操作规程的重要性及目标", "第二部分 · 销售操作规程的完善步骤",
                                                     "第三部分 · 销售操作规程的核心内容", "第四部分 · 实施与监控"]
    assert labels[-1].startswith("公司设定（") and not any("seed:" in x for x in labels)
