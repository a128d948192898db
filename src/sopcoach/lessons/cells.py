"""The calls of a lesson notebook, for the trainer who runs it in JupyterLab or its Voila preview.

A lesson notebook's setup cell is ``from sopcoach.lessons.cells import *``; its code cells then call
:func:`clauses`, :func:`tool`, :func:`practice` and :func:`facts`. Run in a kernel they show the
learner's widgets in a preview: nobody is signed in, nothing is saved, links go nowhere. The learner
app does not run the notebook: it reads the same calls (:mod:`sopcoach.lessons.notebook`).

Which notebook runs is taken from the kernel's environment: ``JPY_SESSION_NAME`` (JupyterLab and the
nbval run of ``make test``, see :mod:`sopcoach.lessons.nbval_plugin`) or Voila's ``SCRIPT_NAME``.
The content is the one :func:`sopcoach.config.load_content` resolves (``SOPCOACH_CONTENT``, which
``sopcoach lab`` sets); the language is ``SOPCOACH_LANG`` (``sopcoach lab --lang``).
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from IPython.display import HTML, display

from ..config import load_content
from ..errors import ContentError, Problem
from ..i18n import LANGS, current_lang, shown, t, zh_html
from ..ui._common import esc
from ..ui.exam_app import CSS
from ..ui.home_app import LESSON_CSS
from ..ui.lesson_app import clauses_html, practice_head_html
from ..ui.lesson_tools import TOOLS
from .notebook import lesson_notebook
from .tools import fact_text

__all__ = ["clauses", "facts", "practice", "tool"]


def notebook_path() -> Path | None:
    """Return the path of the notebook this kernel runs, when the kernel's environment says it."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb"):
        return Path(session)
    script = os.environ.get("SCRIPT_NAME", "")
    if script.endswith(".ipynb"):
        return Path(script)
    return None


def _lesson(content: Any) -> Any:
    """Return the lesson (of ``lessons.yaml``) whose notebook runs, or a stand-in for an unlisted one."""
    path = notebook_path()
    for lesson in content.playbook.lessons:
        if path is not None and lesson.notebook == path.name:
            return lesson
    return SimpleNamespace(id="", number=0, notebook=path.name if path else "", seeds=[], goals=[],
                           tool=None, title=None)


def _show(html: str) -> None:
    """Display learner HTML as the learner's page shows it: full-width punctuation on a Chinese page."""
    display(HTML(html if current_lang() == "en" else zh_html(html)))


def clauses(*clause_ids: str) -> None:
    """Show the cards of the playbook clauses ``clause_ids`` (as the learner sees them)."""
    _show(CSS + LESSON_CSS + clauses_html(load_content().playbook, clause_ids, current_lang()))


def tool(name: str) -> Any:
    """Show the lesson tool ``name`` (one of :data:`~sopcoach.lessons.notebook.TOOLS`) in preview mode.

    Returns the tool's widget (the notebook displays it).
    """
    content = load_content()
    lesson = _lesson(content)
    spec = SimpleNamespace(id=lesson.id, number=lesson.number, notebook=lesson.notebook, seeds=lesson.seeds,
                           goals=lesson.goals, tool=name)
    inst = SimpleNamespace(playbook=content.playbook, bank=content.bank, blueprint=content.blueprint,
                           practice=lambda: content.practice)
    return TOOLS[name](inst, spec, current_lang(), lambda _notebook, label: esc(label)).root


def practice() -> None:
    """Show the lesson's practice questions (``quizzes/practice/``, section = the lesson id) as the learner
    sees them: scenario, question, options or the number box with its unit, a template with one fresh
    draw of its numbers. Read only: answers are not checked or saved in the preview."""
    import random  # noqa: PLC0415 - only the preview draws templates

    from ..certification.exam import option_order, question_view  # noqa: PLC0415 - heavy: the exam module
    from ..certification.variants import instantiate  # noqa: PLC0415 - heavy: the exam module

    content = load_content()
    lesson = _lesson(content)
    lang = current_lang()
    pool = content.practice
    questions = pool.in_section(lesson.id) if pool is not None and lesson.id else []
    rng = random.Random()
    items = []
    for i, q in enumerate(questions, 1):
        if getattr(q, "variant", None) is not None:
            q, _params = instantiate(q, content.playbook, rng)
        view = question_view(q, option_order(q, rng) or [], lang, i, len(questions))
        scenario = f"<div class='sopcoach-scenario'>{esc(shown(view.scenario, lang))}</div>" if view.scenario else ""
        kind = "checkbox" if view.type == "multiple_choice" else "radio"
        if view.options:
            control = "".join(f"<label style='display:block'><input type='{kind}' disabled> {esc(shown(label, lang))}</label>"
                              for _oid, label in view.options)
        else:
            control = (f"<input type='text' disabled placeholder='{esc(t('输入数字', 'Type a number', lang))}'> "
                       f"{esc(view.unit or '')}")
        items.append(f"<div class='sopcoach-card sopcoach-practice'>{scenario}<p><b>{i}. {esc(shown(view.text, lang))}</b></p>"
                     f"{control}</div>")
    note = t("预览：学员在这里作答、检查答案并获得反馈；含数字的题目每次显示一组新的数字。预览中不检查也不保存答案。",
             "Preview: learners answer here, check their answers and get feedback; questions with numbers show "
             "fresh numbers each time. The preview neither checks nor saves answers.", lang)
    if not lesson.id:
        note = t("本笔记本尚未列入 playbook/lessons.yaml，因此没有练习题。",
                 "This notebook is not listed in playbook/lessons.yaml yet, so it has no practice questions.", lang)
    _show(practice_head_html(lang) + f"<p><i>{esc(note)}</i></p>" + "".join(items))


def facts() -> None:
    """Print the playbook facts this notebook's prose quotes, with their current values, one per line.

    The cell that calls it is marked ``# NBVAL_CHECK_OUTPUT``: the notebook tests fail when the
    playbook changed and the stored table was not refreshed (run the cell again and save). Shows
    nothing in the Voila preview (the learner does not see it).

    Raises
    ------
    ContentError
        When the kernel cannot tell which notebook runs, or the notebook does not read.
    """
    if os.environ.get("VOILA_BASE_URL") is not None:
        return
    path = notebook_path()
    if path is None:
        raise ContentError([Problem("", 0, 0, "", "cannot tell which lesson notebook runs: open it in JupyterLab "
                                    "(`sopcoach lab`) or run the notebook tests (`make test`)")])
    playbook = load_content().playbook
    nb = lesson_notebook(path if path.is_absolute() else Path.cwd() / path.name)
    names = sorted({name for p in nb.prose() for _line, name in p.facts()})
    if not names:
        print("(no facts)")
        return
    width = max(len(n) for n in names)
    for name in names:
        try:
            values = " | ".join(fact_text(playbook, name, lang) for lang in LANGS)
        except KeyError:
            values = "UNKNOWN FACT (see `sopcoach check`)"
        print(f"{name.ljust(width)}  {values}")
