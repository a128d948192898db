"""The playbook editing engine: round trip, typed setters, check messages, review, save, restore."""
from __future__ import annotations

import difflib
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from sopcoach.authoring.playbook_edit import PlaybookEdit, history, question_key, restore, validate_texts
from sopcoach.cli.main import main as cli_main
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank
from sopcoach.errors import EditError, InvalidPlaybook, Problem, SaveConflict
from support import ROOT, FakeClock

SHIPPED = {p.name: p.read_bytes() for p in sorted((ROOT / "playbook").glob("*.yaml"))}


@pytest.fixture
def content(tmp_path) -> Path:
    """A copy of the shipped playbook and quizzes (the editor writes to it)."""
    root = tmp_path / "content"
    shutil.copytree(ROOT / "playbook", root / "playbook")
    shutil.copytree(ROOT / "quizzes", root / "quizzes")
    return root


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def ed(content, home) -> PlaybookEdit:
    return PlaybookEdit(content, home, clock=FakeClock())


def _disk(content: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((content / "playbook").glob("*.yaml"))}


def _changed_lines(ed: PlaybookEdit, name: str) -> list[str]:
    """Return the ``-``/``+`` lines between the file as opened and as it would be saved."""
    old, new = ed.files[name].text.splitlines(), ed.texts()[name].splitlines()
    return [x for x in difflib.unified_diff(old, new, lineterm="", n=0)
            if x[:1] in "+-" and not x.startswith(("+++", "---"))]


# -- round trip ------------------------------------------------------------------------------------------
def test_every_shipped_file_round_trips_and_is_editable(ed):
    """ruamel.yaml reproduces every shipped playbook file byte for byte, so none is read-only."""
    assert ed.read_only() == []
    assert sorted(ed.files) == sorted(SHIPPED)


def test_saving_without_a_change_leaves_the_files_byte_identical(ed, content, home):
    """Saving with no change writes nothing, keeps no backup and leaves every file byte-identical."""
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (content / "playbook").glob("*.yaml")}
    ed.set_tier("A", min_weekly_follow_ups=3)  # the value already there
    ed.set_sla_limit("email_reply", value=Decimal("24"), unit="elapsed_hours")
    ed.set_authority("sales_rep", max_discount=Decimal("0.1"))  # 0.10 in the file
    result = ed.save()
    assert result.written == () and result.backup is None
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before} == before
    assert history(home) == []


def test_a_changed_value_rewrites_only_its_line_and_keeps_the_comment(ed, content):
    """Raising the A-tier cadence changes one line; its trailing comment and all other bytes stay."""
    ed.set_tier("A", min_weekly_follow_ups=4)
    assert ed.changed_files() == ["customers.yaml"]
    assert _changed_lines(ed, "customers.yaml") == [
        '-    min_weekly_follow_ups: 3           # seed:3.1.2 "A类客户每周至少3次"',
        '+    min_weekly_follow_ups: 4           # seed:3.1.2 "A类客户每周至少3次"']
    ed.save()
    disk = _disk(content)
    assert {n for n in disk if disk[n] != SHIPPED[n]} == {"customers.yaml"}


def test_bom_and_crlf_line_ends_are_kept(content, home):
    """A file saved with a BOM and CRLF line ends keeps both when a value in it changes."""
    path = content / "playbook" / "customers.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    ed = PlaybookEdit(content, home)
    ed.set_tier("B", min_weekly_follow_ups=3)
    ed.save()
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == raw.count(b"\n")
    assert b"min_weekly_follow_ups: 3           # company setting" in raw


def test_a_file_that_does_not_round_trip_is_read_only(content, home):
    """A file ruamel.yaml would reformat cannot be edited; the message says why and what to do."""
    path = content / "playbook" / "kpis.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("target: 0.25 ", "target:   0.25 "), encoding="utf-8")
    ed = PlaybookEdit(content, home)
    assert ed.read_only() == ["kpis.yaml"]
    with pytest.raises(EditError, match="playbook/kpis.yaml cannot be edited here without reformatting it"):
        ed.set_kpi_target("win_rate", Decimal("0.4"))


# -- typed setters -----------------------------------------------------------------------------------------
def test_sla_limit_value_and_unit_keep_the_flow_mapping(ed):
    """An SLA limit is written back as ``{value: .., unit: ..}`` on its line, comment kept."""
    ed.set_sla_limit("email_reply", value=48, unit="business_hours")
    assert _changed_lines(ed, "slas.yaml") == [
        '-    limit: {value: 24, unit: elapsed_hours}      # "24小时内回复邮件": real hours, nights included',
        '+    limit: {value: 48, unit: business_hours}     # "24小时内回复邮件": real hours, nights included']


def test_authority_limits_are_exact_and_no_limit_removes_the_key(ed):
    """Amounts and discounts are written exactly; ``None`` removes a limit, a new limit goes in place."""
    ed.set_authority("sales_rep", max_quote_amount=Decimal("120000"), max_discount=Decimal("0.125"))
    ed.set_authority("account_manager", max_discount=None)
    ed.set_authority("sales_director", max_quote_amount=Decimal("2000000"), approver=None)
    assert _changed_lines(ed, "authority.yaml") == [
        "-    max_quote_amount: 100000     # CNY", "-    max_discount: 0.10           # 10% off list price",
        "+    max_quote_amount: 120000     # CNY", "+    max_discount: 0.125          # 10% off list price",
        "-    max_discount: 0.15           # 15%",
        "+    max_quote_amount: 2000000"]
    text = ed.texts()["authority.yaml"]
    assert "  - role: sales_director\n    max_quote_amount: 2000000\n    clause: quote-limits\n" in text


def test_tier_thresholds_and_cadence(ed):
    """A tier's cadence and size thresholds are set as numbers; ``None`` drops a threshold."""
    ed.set_tier("B", min_weekly_follow_ups=2, min_annual_revenue=Decimal("20000000"), min_employees=None)
    assert _changed_lines(ed, "customers.yaml") == [
        "-    min_annual_revenue: 10000000       # CNY (10 million)", "-    min_employees: 100",
        "+    min_annual_revenue: 20000000       # CNY (10 million)"]


def test_stage_order_moves_whole_stages_and_keeps_the_section_comment(ed):
    """Moving the last stage up keeps the blank lines between stages and the comment after the list."""
    ed.move_stage("payment_collection", -1)
    assert ed.ids("stages")[-2:] == ["payment_collection", "contract_negotiation"]
    text = ed.texts()["process.yaml"]
    assert text.count("\n\n  - id: ") == ed.files["process.yaml"].text.count("\n\n  - id: ")
    assert ("    clause: stage-responsibilities\n\n# ---- steps ---" in text
            and text.index("  - id: contract_negotiation") < text.index("# ---- steps"))
    assert ed.set_stage_order(ed.ids("stages")) is False
    with pytest.raises(EditError, match="the new order must list each stage once"):
        ed.set_stage_order(["first_contact"])


def test_stage_role_is_set(ed):
    """The responsible role of a stage is replaced on its line."""
    ed.set_stage_role("quotation", "account_manager")
    assert _changed_lines(ed, "process.yaml") == ["-    responsible_role: sales_rep",
                                                  "+    responsible_role: account_manager"]


def test_kpi_target_keeps_its_comment(ed):
    """A KPI target is a number in the KPI's unit; the trainer's comment stays."""
    ed.set_kpi_target("win_rate", Decimal("0.4"))
    assert _changed_lines(ed, "kpis.yaml") == ["-    target: 0.35                      # 35%",
                                               "+    target: 0.4                       # 35%"]


def test_calendar_settings_keep_quotes_and_flow_lists(ed):
    """Times stay quoted ("HH:MM") and lists stay on one line."""
    ed.set_calendar(day_start="09:30", weekend=["Sun"], years="2025, 2026, 2027",
                    holidays="2026-01-02 2026-02-20")
    assert _changed_lines(ed, "calendar.yaml") == [
        "-  weekend: [Sat, Sun]", '-  day_start: "09:00"', "+  weekend: [Sun]", '+  day_start: "09:30"',
        "-  years: [2016, 2026]", "-  holidays: []", "+  years: [2025, 2026, 2027]",
        "+  holidays: [2026-01-02, 2026-02-20]"]
    with pytest.raises(EditError, match="unknown calendar field"):
        ed.set_calendar(lunch="12:00")


def test_sop_version_is_written_quoted(ed):
    """The release label is text: 1.10 stays "1.10"."""
    ed.set_sop_version("1.10")
    assert _changed_lines(ed, "sop.yaml") == ['-  version: "1.0"', '+  version: "1.10"']


def test_clause_text_stays_a_literal_block(ed):
    """A clause's text in either language is written as a ``|-`` block; the other language is untouched."""
    ed.set_clause_text("follow-up-frequency", "text", "en", "Set a minimum per class.\nSecond line: with a colon")
    assert _changed_lines(ed, "clauses.yaml") == [
        "-        Follow-up frequency: set the minimum number of follow-ups for each customer grade "
        "(e.g. class A customers at least 3 times a week).",
        "+        Set a minimum per class.", "+        Second line: with a colon"]
    ed.set_clause_text("follow-up-frequency", "title", "zh-CN", "跟进频率(最低)")
    assert "      zh-CN: 跟进频率(最低)\n" in ed.texts()["clauses.yaml"]


def test_retiring_a_clause_keeps_its_id_and_text(ed):
    """Retiring adds ``retired: true`` after the source; the id and texts stay, so history still names it."""
    ed.retire_clause("pilot-first")
    assert _changed_lines(ed, "clauses.yaml") == ["+    retired: true"]
    assert "  - id: pilot-first\n    source: seed:4.1.1\n    retired: true\n    title:" in ed.texts()["clauses.yaml"]
    ed.retire_clause("pilot-first", retired=False)
    assert ed.changed_files() == []


def test_adding_a_clause_after_a_section_end_keeps_the_next_section_heading(ed):
    """A clause added after the last clause of a section comes before the next section's heading."""
    ed.add_clause("demo-reply-template", "company-setting", {"zh-CN": "回复模板", "en": "Reply template"},
                  {"zh-CN": "使用统一的回复模板。", "en": "Use the standard reply template: always."},
                  rationale="Consistent replies.", after="stage-responsibilities")
    text = ed.texts()["clauses.yaml"]
    new = text.index("  - id: demo-reply-template")
    assert text.index("  - id: stage-responsibilities") < new < text.index("  # (二)提升客户满意度")
    assert ("        Use the standard reply template: always.\n\n  # (二)提升客户满意度" in text)
    assert ed.ids("clauses").index("demo-reply-template") == ed.ids("clauses").index("stage-responsibilities") + 1
    assert ed.validate() == []


def test_adding_a_clause_at_the_end(ed):
    """Without ``after`` the clause is appended, separated by one blank line."""
    ed.add_clause("demo-end", "seed:4.2.2", {"zh-CN": "复盘", "en": "Review"}, {"zh-CN": "每月复盘。", "en": "Review monthly."})
    assert ed.texts()["clauses.yaml"].endswith(
        "each role.\n\n  - id: demo-end\n    source: seed:4.2.2\n    title:\n      zh-CN: 复盘\n      en: Review\n"
        "    text:\n      zh-CN: |-\n        每月复盘。\n      en: |-\n        Review monthly.\n")


@pytest.mark.parametrize("kwargs, message", [
    ({"clause_id": "purpose"}, "clause id 'purpose' is already used"),
    ({"clause_id": "bad id"}, "the new clause is incomplete: id: String should match pattern"),
    ({"source": "company-setting"}, "a company-setting clause needs a one-line 'rationale'"),
    ({"source": "seed-3"}, "source must be 'seed:N[.N...]' or 'company-setting'"),
    ({"text": {"zh-CN": "文字", "en": " "}}, "text.en: text must not be blank"),
])
def test_an_incomplete_new_clause_is_refused(ed, kwargs, message):
    """Adding a clause with a used id, a bad id, a bad source or a blank text is refused with the reason."""
    args = {"clause_id": "demo-x", "source": "seed:1", "title": {"zh-CN": "标题", "en": "Title"},
            "text": {"zh-CN": "文字", "en": "Text"}, **kwargs}
    with pytest.raises(EditError, match=re.escape(message)):
        ed.add_clause(**args)
    assert ed.changed_files() == []


# -- validation ---------------------------------------------------------------------------------------------
def _check_output(ed: PlaybookEdit, content: Path, capsys, monkeypatch) -> list[str]:
    """Write the edited files into ``content`` and return what `sopcoach check` prints there."""
    for name, text in ed.texts().items():
        (content / "playbook" / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(content)
    monkeypatch.setenv("SOPCOACH_CONTENT", str(content))
    capsys.readouterr()
    code = cli_main(["check"])
    lines = capsys.readouterr().out.splitlines()
    assert code == (1 if lines else 0)
    return lines


def test_validation_messages_are_those_of_sopcoach_check(ed, content, capsys, monkeypatch):
    """The editor reports exactly the lines `sopcoach check` prints for the same files."""
    ed.set_tier("A", min_weekly_follow_ups=5)  # no option of cm-a-week-minimum has 5
    ed.set_calendar(day_end="18h")
    ed.set_sla_limit("delivery", value=-1)
    problems = [str(p) for p in ed.validate()]
    assert len(problems) == 2  # the questions' unknown facts are folded under the first (issue 14)
    first, note = problems[0].split("\n")
    assert first == "playbook/calendar.yaml:27:12: calendar.day_end: time must be 'HH:MM' in quotes (got '18h')"
    assert re.fullmatch(r"    \d+ follow-on problem\(s\) in \d+ other file\(s\) .*", note)
    assert problems[1] == (
        "playbook/slas.yaml:78:20: slas[4].limit.value: Input should be greater than or equal to 0 (got '-1')")
    assert _check_output(ed, content, capsys, monkeypatch) == "\n".join(problems).splitlines()


def test_a_key_that_no_longer_matches_is_reported_as_check_reports_it(ed, content, capsys, monkeypatch):
    """A derived key_from with no option for the new value is the one problem, worded as by check."""
    ed.set_tier("A", min_weekly_follow_ups=5)
    (problem,) = ed.validate()
    assert str(problem) == ("quizzes/bank/customer_management.yaml:162:5: questions[6]: key_from "
                            "'tier.A.min_weekly_follow_ups' is 5 in the playbook, but 0 options match it; "
                            "give exactly one option that value")
    assert _check_output(ed, content, capsys, monkeypatch) == [str(problem)]


def test_validate_texts_maps_paths_to_the_content_folder(content):
    """Problems in the edited playbook name ``playbook/<file>``, not the temporary folder."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in (content / "playbook").glob("*.yaml")}
    texts["sop.yaml"] = texts["sop.yaml"].replace("currency: CNY", "currency: CNY\n  currency: EUR")
    p = validate_texts(content, texts)[0]
    assert isinstance(p, Problem)
    assert str(p).split("\n")[0] == ("playbook/sop.yaml:17:3: sop.currency: duplicate key 'currency' at line 17 "
                                     "(first defined at line 16); keep one definition")


def test_an_invalid_playbook_cannot_be_saved(ed, content, home):
    """Saving while check reports a problem raises InvalidPlaybook and writes nothing."""
    ed.set_tier("A", min_weekly_follow_ups=5)
    with pytest.raises(InvalidPlaybook, match="nothing was saved: `sopcoach check` reports 1 problem") as exc:
        ed.save()
    assert "customer_management.yaml:162:5" in str(exc.value)
    assert _disk(content) == SHIPPED and history(home) == []


# -- review ----------------------------------------------------------------------------------------------
def test_review_shows_diff_impact_and_key_changes(ed):
    """Raising the A cadence lists the clause change, its questions, lessons and checks, and changed keys."""
    ed.set_tier("A", min_weekly_follow_ups=4)
    r = ed.review("en")
    assert r.problems == () and r.changed_files == ("playbook/customers.yaml",)
    (change,) = r.diff.changes
    assert (change.clause_id, [(f.path, f.old, f.new) for f in change.fields]) == (
        "follow-up-frequency", [("tiers.cadence[A].min_weekly_follow_ups", 3, 4)])
    (row,) = r.impact
    assert "cm-a-cadence" in row.questions and row.lessons == ("L5 customers",) and row.checks == ("cadence",)
    assert row.practice == ("pr-cust-a-unrecorded", "pr-cust-var-cadence")
    keys = {(k.question_id, k.pool): (k.old, k.new) for k in r.key_changes}
    assert keys[("cm-a-cadence", "bank")] == ("3 per week", "4 per week")
    assert keys[("pr-cust-a-unrecorded", "practice")] == ("3 follow-ups", "4 follow-ups")
    assert ("pr-cust-var-cadence", "practice") not in keys  # a template keeps its rule: each draw uses the new value
    assert "cm-cadence-order" in r.text_changes  # its explanation quotes the cadence
    (lesson,) = r.lesson_changes
    assert lesson.lesson == "L5 customers" and "at least 4 times a week" in lesson.new
    assert any("clause follow-up-frequency still says 3" in h for h in r.hints)
    text = r.text("en")
    assert "tiers.cadence[A].min_weekly_follow_ups: 3 -> 4" in text
    assert "key changes cm-a-cadence: 3 per week -> 4 per week" in text


def test_review_warns_when_a_retired_clause_is_still_used(ed):
    """Retiring a clause that a tier, a lesson and questions still name is flagged in the review."""
    ed.retire_clause("follow-up-frequency")
    (hint,) = [h for h in ed.review("en").hints if "retired" in h]
    assert hint.startswith("clause follow-up-frequency is retired but still used by: tiers A, lesson customers, "
                           "question ")


def test_question_key_ignores_texts():
    """Two questions with the same key but different texts have the same key tuple."""
    from sopcoach.content.playbook import load_playbook as lp
    bank = load_bank(ROOT / "quizzes" / "bank", lp(ROOT / "playbook"))
    q = bank["cm-a-cadence"]
    other = q.model_copy(update={"text": q.scenario or q.explanation})
    assert question_key(q) == question_key(other) == ("numeric", "3", "0")


# -- saving, conflicts, history ------------------------------------------------------------------------------
def test_a_saved_change_reaches_the_lesson_and_the_derived_exam_key(ed, content):
    """After saving A = 4, the lesson's key point says 4 and the question on that cadence expects 4."""
    from sopcoach.lessons.tools import check_follow_up_plan
    ed.set_tier("A", min_weekly_follow_ups=4)
    result = ed.save(note="monthly review: A accounts need more contact")
    assert result.written == ("playbook/customers.yaml",) and result.changed_clauses == ("follow-up-frequency",)
    pb = load_playbook(content / "playbook")
    lesson = next(x for x in pb.lessons if x.tool == "tiers")
    assert "A类客户每周至少跟进4次" in lesson.read().text(pb, "zh-CN")
    assert check_follow_up_plan(pb, "A", [1, 1, 1, 0, 0, 0, 0]).shortfall == 1
    bank = load_bank(content / "quizzes" / "bank", pb)
    assert bank["cm-a-cadence"].answer == 4
    assert next(o.value for o in bank["cm-a-week-minimum"].options if o.correct) == 4


def test_a_file_changed_on_disk_refuses_the_save_and_keeps_the_edits(ed, content, home):
    """If someone saved meanwhile, nothing is written, a draft is kept and the edit survives a reload."""
    ed.set_tier("A", min_weekly_follow_ups=4)
    other = PlaybookEdit(content, home)
    other.set_kpi_target("win_rate", Decimal("0.4"))
    other.save()
    kpis = (content / "playbook" / "kpis.yaml").read_bytes()
    with pytest.raises(SaveConflict) as exc:
        ed.set_kpi_target("win_rate", Decimal("0.3"))
        ed.save()
    assert exc.value.files == ["playbook/kpis.yaml"]
    assert "changed on disk since you opened the playbook" in str(exc.value)
    assert (exc.value.draft / "customers.yaml").read_text(encoding="utf-8").count("min_weekly_follow_ups: 4") == 1
    assert (content / "playbook" / "kpis.yaml").read_bytes() == kpis
    assert (content / "playbook" / "customers.yaml").read_bytes() == SHIPPED["customers.yaml"]
    assert ed.changed_files() == ["customers.yaml", "kpis.yaml"]  # still in the session
    assert ed.reload(keep_changes=True) == []
    assert ed.value("tiers", "A", "min_weekly_follow_ups") == 4
    assert ed.value("kpis", "win_rate", "target") == Decimal("0.3")
    ed.save()
    assert b"target: 0.3 " in (content / "playbook" / "kpis.yaml").read_bytes()


def test_each_save_keeps_the_previous_version_which_can_be_restored(ed, content, home):
    """Two saves leave two backups (newest first); restoring the first brings back the shipped bytes."""
    ed.set_tier("A", min_weekly_follow_ups=4)
    first = ed.save(note="A to 4").backup
    ed.set_sla_limit("email_reply", value=12)
    second = ed.save().backup
    assert [b.id for b in history(home)] == [second.id, first.id]
    assert first.changed == ("playbook/customers.yaml",) and first.note == "A to 4"
    assert (first.folder / "customers.yaml").read_bytes() == SHIPPED["customers.yaml"]
    result = ed.restore(first.id)
    assert sorted(result.written) == ["playbook/customers.yaml", "playbook/slas.yaml"]
    assert _disk(content) == SHIPPED
    assert history(home)[0].kind == "restore"  # the restore itself can be undone
    assert ed.value("tiers", "A", "min_weekly_follow_ups") == 3 and not ed.dirty


def test_restore_is_refused_with_unsaved_edits_or_an_unknown_version(ed, content, home):
    """A restore never throws away unsaved edits, and an unknown version id is named."""
    ed.set_tier("A", min_weekly_follow_ups=4)
    with pytest.raises(EditError, match="you have unsaved changes"):
        ed.restore("whatever", lang="en")
    with pytest.raises(EditError, match="有未保存的修改：请先保存或放弃修改"):
        ed.restore("whatever", lang="zh-CN")
    with pytest.raises(EditError, match="no saved version 'nope'"):
        restore(content, home, "nope", lang="en")
    with pytest.raises(EditError, match="没有已保存的版本“nope”"):
        restore(content, home, "nope", lang="zh-CN")
    (home / "playbook-history").mkdir(parents=True)
    (home / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(EditError, match="no saved version '..'"):
        restore(content, home, "..", lang="en")  # never outside the history folder
