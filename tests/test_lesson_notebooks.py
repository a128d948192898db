"""Lesson notebooks: reading them without running them, rendering the learner's language, the
checks of `sopcoach check`, the Voila preview's preprocessor, an edited lesson shown without a
restart, and a trainer adding an eleventh lesson."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest

from sopcoach.config import Installation, Settings
from sopcoach.content.check import check_paths
from sopcoach.content.playbook import load_playbook
from sopcoach.errors import ContentError
from sopcoach.lessons.check import lesson_problems, old_fact_values
from sopcoach.lessons.notebook import Prose, lesson_notebook, prose_html, read_lesson
from sopcoach.lessons.preview import LessonPreview
from sopcoach.ui.home_app import HomeApp
from sopcoach.ui.lesson_app import LessonApp
from support import ROOT

pytestmark = pytest.mark.databases("sqlite")


def md(lang: str, text: str):
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = [lang]
    return cell


def code(text: str, *tags: str):
    cell = nbformat.v4.new_code_cell(text)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def write(path: Path, *cells) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=list(cells)), path)
    return path


def lesson_cells(zh: str = "# 标题\n\n正文", en: str = "# Title\n\nText"):
    return [code("from sopcoach.lessons.cells import *", "setup"), md("zh-CN", zh), md("en", en),
            code('clauses("quote-limits")'), code('tool("approval")'), code("practice()")]


@pytest.fixture
def content(tmp_path) -> Path:
    """A copy of the shipped playbook, quizzes and lessons (a trainer's content folder)."""
    for part in ("playbook", "quizzes", "lessons"):
        shutil.copytree(ROOT / part, tmp_path / "content" / part)
    return tmp_path / "content"


def edit_cell(path: Path, lang: str, change) -> None:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and lang in c.metadata.get("tags", []))
    cell.source = change(cell.source)
    nbformat.write(nb, path)


# ------------------------------------------------------------------------------------ reading


def test_a_lesson_reads_into_prose_and_calls(tmp_path):
    nb = read_lesson(write(tmp_path / "l.ipynb", *lesson_cells()))
    assert (nb.title("zh-CN"), nb.title("en"), nb.clauses, nb.tool) == ("标题", "Title", ("quote-limits",), "approval")
    assert [p.lang for p in nb.prose()] == ["zh-CN", "en"] and [c.name for c in nb.calls()] == ["clauses", "tool", "practice"]


@pytest.mark.parametrize("cell, message", [
    (code("import os"), "holds only calls"),
    (code("x = 1"), "holds only calls"),
    (code("quiz()"), "unknown call quiz(); use one of clauses, tool, practice, facts"),
    (code("clauses(name)"), "takes only quoted names"),
    (code('tool("approval", "sla")'), "tool() takes 1 argument(s), got 2"),
    (code('tool("pricing")'), "unknown tool 'pricing'"),
    (code("clauses("), "not Python"),
    (code("import sys", "setup"), "the setup cell must be exactly"),
    (nbformat.v4.new_markdown_cell("no tag"), "tag each markdown cell with its language"),
])
def test_a_cell_that_is_not_a_known_call_is_an_error_naming_cell_and_line(tmp_path, cell, message):
    path = write(tmp_path / "bad.ipynb", *lesson_cells(), cell)
    with pytest.raises(ContentError) as exc:
        read_lesson(path)
    [p] = exc.value.problems
    assert p.field == "cell 7" and p.line >= 1 and p.path.endswith("bad.ipynb") and message in p.message


def test_a_missing_or_untitled_notebook_says_what_to_do(tmp_path):
    with pytest.raises(ContentError, match="no such lesson notebook; copy a notebook"):
        read_lesson(tmp_path / "missing.ipynb")
    with pytest.raises(ContentError, match="no title in en"):
        read_lesson(write(tmp_path / "t.ipynb", *lesson_cells(en="Text without heading")))


def test_a_lesson_is_read_again_only_after_it_changed(tmp_path):
    path = write(tmp_path / "l.ipynb", *lesson_cells())
    first = lesson_notebook(path)
    assert lesson_notebook(path) is first
    edit_cell(path, "en", lambda s: s.replace("# Title", "# New title"))
    assert lesson_notebook(path).title("en") == "New title"


# ------------------------------------------------------------------------------------ rendering


def test_prose_fills_facts_per_language_and_escapes_html(playbook):
    source = "**Limit** {{authority.sales_rep.max_quote_amount}}, reply in {{sla.first_proposal}} <script>x()</script>"
    en = prose_html(playbook, Prose(1, "en", source), "en")
    zh = prose_html(playbook, Prose(1, "zh-CN", source), "zh-CN")
    assert "<strong>Limit</strong> 100,000, reply in 3 working days" in en
    assert "&lt;script&gt;" in en and "<script>" not in en
    assert "3个工作日" in zh.replace(" ", "") and "{{" not in zh


def test_every_shipped_lesson_renders_both_languages_without_placeholders(playbook):
    for lesson in playbook.lessons:
        nb = lesson.read()
        for lang in ("zh-CN", "en"):
            assert nb.title(lang) and "{{" not in nb.text(playbook, lang), (lesson.id, lang)
        assert nb.tool and nb.clauses and nb.calls("practice"), lesson.id


def test_the_shipped_lessons_check_clean():
    problems = [p for p in check_paths([], ROOT) if "lessons" in p.path]
    assert problems == []


# ------------------------------------------------------------------------------------ check rules


def _check(content: Path, lesson_id: str = "authority", home: Path | None = None):
    pb = load_playbook(content / "playbook")
    lesson = next(x for x in pb.lessons if x.id == lesson_id)
    return lesson_problems(pb, lesson, None, old_fact_values(home))


def test_check_names_an_unknown_fact_with_cell_line_and_the_closest_names(content):
    edit_cell(content / "lessons" / "03_authority.ipynb", "en", lambda s: s + "\n\nAt most {{authority.sales_rep.max_quote}}.")
    [p] = [p for p in _check(content) if p.severity == "error"]
    assert p.field == "cell 3, line 5" and p.line == 0  # a line within the cell, not a file line
    assert "unknown fact {{authority.sales_rep.max_quote}}; closest: authority.sales_rep.max_quote_amount" in p.message


def test_check_names_an_unknown_clause(content):
    path = content / "lessons" / "03_authority.ipynb"
    path.write_text(path.read_text(encoding="utf-8").replace('\\"quote-limits\\"', '\\"quote-limit\\"'), encoding="utf-8")
    [p] = [p for p in _check(content) if p.severity == "error"]
    assert "unknown clause 'quote-limit' in clauses() (did you mean quote-limits" in p.message


def test_check_reports_a_missing_translation_and_differing_facts(content):
    path = content / "lessons" / "03_authority.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(3, md("zh-CN", "只有中文。"))
    nbformat.write(nb, path)
    errors = [p for p in _check(content) if p.severity == "error"]
    assert [(p.field, "missing translation: this zh-CN cell has no en cell" in p.message) for p in errors] == [("cell 4, line 1", True)]
    edit_cell(path, "en", lambda s: s + " Within {{sla.email_reply}}.")
    warnings = [p for p in _check(content) if "quote different facts (sla.email_reply)" in p.message]
    assert len(warnings) == 1 and warnings[0].severity == "warning"


def test_check_warns_of_a_number_that_is_the_current_value_of_a_quoted_fact(content):
    edit_cell(content / "lessons" / "03_authority.ipynb", "en", lambda s: s + "\n\nUp to 100,000 CNY alone.")
    [p] = [p for p in _check(content) if "100,000 is" in p.message]
    assert p.severity == "warning" and p.field == "cell 3, line 5" and p.line == 0
    assert "the current value of authority.sales_rep.max_quote_amount; write {{authority.sales_rep.max_quote_amount}}" in p.message


def test_check_warns_of_a_number_that_is_an_old_value_from_the_playbook_history(content, tmp_path):
    home = tmp_path / "home"
    old = home / "playbook-history" / "20260101-000000-ab"
    shutil.copytree(content / "playbook", old)
    authority = old / "authority.yaml"
    authority.write_text(authority.read_text(encoding="utf-8").replace("max_quote_amount: 100000 ", "max_quote_amount: 80000 ", 1),
                         encoding="utf-8")
    (old / "manifest.json").write_text(json.dumps({"created_at": datetime(2026, 1, 1, tzinfo=timezone.utc).isoformat(),
                                                   "kind": "save", "files": ["authority.yaml"], "changed": ["authority.yaml"]}))
    edit_cell(content / "lessons" / "03_authority.ipynb", "zh-CN", lambda s: s + "\n\n以前是80000元。")
    assert not [p for p in _check(content) if "80000" in p.message]  # without the history, 80000 is just a number
    [p] = [p for p in _check(content, home=home) if "80000" in p.message]
    assert "80000 is an old value of authority.sales_rep.max_quote_amount" in p.message and p.severity == "warning"


def test_check_fails_on_a_broken_or_missing_lesson_notebook(content):
    nb = nbformat.read(content / "lessons" / "04_service_levels.ipynb", as_version=4)
    nb.cells.append(code('tool("pricing")'))
    nbformat.write(nb, content / "lessons" / "04_service_levels.ipynb")
    errors = [p for p in check_paths([], content) if p.severity == "error"]
    assert len(errors) == 1 and "unknown tool 'pricing'" in errors[0].message and errors[0].path.endswith("04_service_levels.ipynb")
    (content / "lessons" / "04_service_levels.ipynb").unlink()
    errors = [p for p in check_paths([], content) if p.severity == "error"]
    assert any("lessons[3].notebook" == p.field and "no notebook" in p.message for p in errors)


# ------------------------------------------------------------------------------------ preview


def test_the_preview_keeps_one_language_fills_facts_and_drops_facts_cells(monkeypatch):
    monkeypatch.setenv("SOPCOACH_CONTENT", str(ROOT))
    nb = nbformat.read(ROOT / "lessons" / "03_authority.ipynb", as_version=4)
    out, _ = LessonPreview(lang="en").preprocess(nb, {})
    text = "\n".join(c.source for c in out.cells if c.cell_type == "markdown")
    assert "100,000 CNY" in text and "{{" not in text and "报价" not in text
    assert not any(c.source.strip().endswith("facts()") for c in out.cells)
    other = nbformat.v4.new_notebook(cells=[md("en", "{{x}}")])
    assert LessonPreview(lang="en").preprocess(other, {})[0].cells[0].source == "{{x}}"  # not a lesson: unchanged


# ------------------------------------------------------------------------------------ learner app


def _inst(content: Path, tmp_path: Path, bank, blueprint, records) -> Installation:
    s = Settings(home=tmp_path, db_url=records.url, lang="zh-CN", content=content)
    return Installation(s, load_playbook(content / "playbook"), bank, blueprint, records)


def _text(app) -> str:
    out, stack = [], [app.root]
    while stack:
        x = stack.pop(0)
        if isinstance(getattr(x, "value", None), str):
            out.append(x.value)
        stack.extend(getattr(x, "children", ()) or ())
    return "\n".join(out)


def test_the_lesson_view_shows_an_edited_notebook_without_a_restart(content, tmp_path, bank, blueprint, records, clock):
    inst = _inst(content, tmp_path, bank, blueprint, records)
    records.enroll("e9001", "学员")
    first = _text(LessonApp(inst, "authority", lang="zh-CN", clock=clock, learner_id="e9001"))
    assert "销售代表可独立报价至100,000元" in first and "客户邮件" not in first
    edit_cell(content / "lessons" / "03_authority.ipynb", "zh-CN",
              lambda s: s.replace("# 报价权限与审批", "# 报价权限") + "\n\n客户邮件须在{{sla.email_reply}}内回复。<b>x</b>")
    again = _text(LessonApp(inst, "authority", lang="zh-CN", clock=clock, learner_id="e9001"))
    assert "客户邮件须在" in again and "{{" not in again and "&lt;b&gt;x&lt;/b&gt;" in again
    assert "第 3 课 · 报价权限</h2>" in again
    en = _text(LessonApp(inst, "authority", lang="en", clock=clock, learner_id="e9001"))
    assert "A sales representative may quote up to 100,000 CNY" in en and "客户邮件" not in en


def test_a_broken_lesson_is_shown_as_an_error_while_the_others_still_open(content, tmp_path, bank, blueprint, records, clock):
    inst = _inst(content, tmp_path, bank, blueprint, records)
    records.enroll("e9002", "学员")
    edit_cell(content / "lessons" / "03_authority.ipynb", "en", lambda s: s + " {{no.such.fact}}")
    app = LessonApp(inst, "authority", lang="en", clock=clock, learner_id="e9002")
    assert "This lesson has an error" in _text(app) and "unknown fact" in _text(app)
    assert "03_authority.ipynb" in _text(app) and str(content) not in _text(app)  # no server path on the page
    assert "sopcoach-lesson-ready" in str(LessonApp(inst, "process", lang="en", clock=clock, learner_id="e9002").body.children[0]._dom_classes)


def test_a_trainer_adds_an_eleventh_lesson_by_copying_a_notebook_and_listing_it(content, tmp_path, bank, blueprint, records, clock):
    shutil.copy(content / "lessons" / "03_authority.ipynb", content / "lessons" / "11_discounts.ipynb")
    edit_cell(content / "lessons" / "11_discounts.ipynb", "zh-CN", lambda s: s.replace("# 报价权限与审批", "# 折扣复习"))
    edit_cell(content / "lessons" / "11_discounts.ipynb", "en", lambda s: s.replace("# Quote authority and approvals", "# Discounts again"))
    with (content / "playbook" / "lessons.yaml").open("a", encoding="utf-8") as f:
        f.write('\n  - id: discounts\n    number: 11\n    notebook: 11_discounts.ipynb\n    seeds: ["seed:2.3.1"]\n')
    found = check_paths([], content)
    assert [p for p in found if p.severity == "error"] == []
    assert any("lesson 'discounts' has no practice questions" in p.message for p in found)  # it would count as done
    inst = _inst(content, tmp_path, bank, blueprint, records)
    assert [x.id for x in inst.playbook.lessons][-1] == "discounts" and inst.playbook.lessons[-1].title.get("en") == "Discounts again"
    records.enroll("e9003", "学员")
    page = _text(LessonApp(inst, "discounts", lang="zh-CN", clock=clock, learner_id="e9003"))
    assert "第 11 课 · 折扣复习" in page and "销售代表可独立报价至100,000元" in page
    home = HomeApp(inst, lang="en", clock=clock, learner_id="e9003")
    assert len(home.bars) == 11 and "Discounts again" in _text(home)


def test_check_takes_one_lesson_notebook(content):
    edit_cell(content / "lessons" / "03_authority.ipynb", "en", lambda s: s + " {{sla.email_replies}}")
    [p] = [p for p in check_paths([content / "lessons" / "03_authority.ipynb"], content) if p.severity == "error"]
    assert "closest: sla.email_reply" in p.message
    shutil.copy(content / "lessons" / "03_authority.ipynb", content / "lessons" / "12_draft.ipynb")
    [p] = check_paths([content / "lessons" / "12_draft.ipynb"], content)
    assert "not a lesson of playbook/lessons.yaml" in p.message


def test_the_preview_shows_practice_as_the_learner_sees_it(monkeypatch):
    """In the preview, lesson 4's practice shows each question's scenario, its options or number box with the
    unit, and a template with concrete numbers (no {{placeholder}}); nothing to click that would save."""
    from sopcoach.lessons import cells
    shown: list[str] = []
    monkeypatch.setattr(cells, "_show", shown.append)
    monkeypatch.setenv("JPY_SESSION_NAME", "lessons/04_service_levels.ipynb")
    cells.practice()
    (page,) = shown
    from sopcoach.config import load_content
    content = load_content()
    questions = content.practice.in_section("service_levels")
    assert page.count("sopcoach-practice") == len(questions) >= 3
    with_scenario = [q for q in questions if q.scenario is not None and q.variant is None]
    assert with_scenario and all(q.scenario.get("zh-CN")[:12] in page for q in with_scenario)
    assert any(q.variant is not None for q in questions) and "{{" not in page
    assert "type='radio' disabled" in page and "<button" not in page
