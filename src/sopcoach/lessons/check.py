"""``sopcoach check`` of the lesson notebooks (:mod:`sopcoach.lessons.notebook`).

Errors (the lesson cannot be shown as written): a notebook that does not read (missing, not a
notebook, a markdown cell without language tag, a code cell that is not a known call with quoted
arguments, an unknown tool), an unknown clause in ``clauses(...)``, an unknown fact in the prose,
a zh-CN cell without its en counterpart (or the other way round). Warnings: a translation pair
that quotes different facts, a number in the prose that equals the current or an old value of a
fact the lesson quotes (write the fact instead, so the lesson follows the playbook), a lesson with
practice questions but no ``practice()`` call.

Old values come from the playbook's saved previous versions in the data home
(``$SOPCOACH_HOME/playbook-history/``, written by each save, restore and release of the playbook
editor); the release snapshots in the records database are not read, so ``check`` needs no database.
"""
from __future__ import annotations

import difflib
import re
import shutil
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..authoring.yaml_writer import history
from ..content.playbook import load_playbook
from ..errors import ContentError, Problem, relpath
from ..i18n import LANGS
from .notebook import FACT, LessonNotebook, Prose

#: A number as written in prose: ``100000``, ``100,000``, ``10.5`` (Chinese text around it is no word).
NUMBER = re.compile(r"(?<![A-Za-z0-9_.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![A-Za-z0-9_])")


def fact_number(value: Any) -> Decimal | None:
    """Return the number a fact's value is written with in prose (a Duration's count), else ``None``."""
    v = getattr(value, "value", value)
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        return None
    return Decimal(v).normalize()


def old_fact_values(home: Path | str | None) -> dict[str, set[Decimal]]:
    """Return ``{fact: {numbers}}`` of the playbook's saved previous versions in the data home ``home``.

    Each version of ``playbook-history/`` is loaded without its ``lessons.yaml`` (lesson lists of old
    versions may name other notebooks); a version that does not load is skipped.
    """
    out: dict[str, set[Decimal]] = {}
    if home is None or not Path(home).is_dir():
        return out
    for backup in history(home):
        with tempfile.TemporaryDirectory() as tmp:
            for f in backup.folder.glob("*.yaml"):
                if f.name != "lessons.yaml":
                    shutil.copy(f, Path(tmp) / f.name)
            try:
                old = load_playbook(Path(tmp) / ".")
            except (ContentError, OSError):
                continue
        for name, value in old.facts().items():
            n = fact_number(value)
            if n is not None:
                out.setdefault(name, set()).add(n)
    return out


def _at(nb: LessonNotebook, prose: Prose, line: int, message: str, severity: str = "error") -> Problem:
    """A problem in a markdown cell: the place is the cell and the line within it (not a file line)."""
    return Problem(relpath(nb.path), 0, 0, f"cell {prose.cell}, line {line}", message, severity=severity)


def closest_facts(name: str, facts: Any) -> list[str]:
    """Up to three fact names like ``name``: near spellings first, else the facts of its family
    (``sla.nope`` -> ``sla.delivery, sla.email_reply, ...``); ``.value`` forms are left out.

    >>> closest_facts("sla.nope", ["sla.email_reply", "sla.email_reply.value", "sla.delivery", "stage.1"])
    ['sla.delivery', 'sla.email_reply']
    """
    names = sorted(n for n in facts if not n.endswith(".value"))
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return close
    family = name.split(".", 1)[0] + "."
    return [n for n in names if n.startswith(family)][:3]


def _segments(nb: LessonNotebook) -> list[list[Prose]]:
    """Split the prose at the calls: a translation pair lies between the same two calls."""
    out: list[list[Prose]] = [[]]
    for part in nb.parts:
        if isinstance(part, Prose):
            out[-1].append(part)
        elif out[-1]:
            out.append([])
    return [s for s in out if s]


def translation_problems(nb: LessonNotebook) -> list[Problem]:
    """Pair the k-th zh-CN cell with the k-th en cell between the same calls; report missing or differing pairs."""
    problems = []
    for seg in _segments(nb):
        by_lang = {lang: [p for p in seg if p.lang == lang] for lang in LANGS}
        zh, en = by_lang["zh-CN"], by_lang["en"]
        for i in range(max(len(zh), len(en))):
            if i >= len(zh) or i >= len(en):
                have, missing = (zh[i], "en") if i < len(zh) else (en[i], "zh-CN")
                problems.append(_at(nb, have, 1, f"missing translation: this {have.lang} cell has no {missing} cell "
                                    f"beside it; add a markdown cell tagged {missing} with the same text"))
                continue
            a, b = {n for _, n in zh[i].facts()}, {n for _, n in en[i].facts()}
            if a != b:
                diff = ", ".join(sorted(a ^ b))
                problems.append(_at(nb, en[i], 1, f"the zh-CN cell {zh[i].cell} and this en cell quote different "
                                    f"facts ({diff}); quote the same facts in both languages", "warning"))
    return problems


def lesson_problems(playbook: Any, lesson: Any, practice: Any = None,
                    old_values: dict[str, set[Decimal]] | None = None) -> list[Problem]:
    """Return every problem of one lesson's notebook (see the module docstring).

    Parameters
    ----------
    playbook : Playbook
    lesson : LessonSpec
        A lesson of ``playbook.lessons`` (its notebook is read from disk).
    practice : Bank, optional
        The practice pool, to warn when the lesson has questions but no ``practice()`` call.
    old_values : dict, optional
        ``{fact: {numbers}}`` of earlier playbook versions (:func:`old_fact_values`).
    """
    try:
        nb = lesson.read()
    except ContentError as exc:
        return list(exc.problems)
    problems = []
    clause_ids = {c.id for c in playbook.clauses}
    for call in nb.calls("clauses"):
        for cid in call.args:
            if cid not in clause_ids:
                close = difflib.get_close_matches(cid, clause_ids, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                problems.append(Problem(relpath(nb.path), call.line, 0, f"cell {call.cell}",
                                        f"unknown clause '{cid}' in clauses(){hint}; use a clause id of playbook/clauses.yaml"))
    facts = playbook.facts()
    used = {name for p in nb.prose() for _, name in p.facts() if name in facts}
    for prose in nb.prose():
        for line, name in prose.facts():
            if name not in facts:
                close = closest_facts(name, facts)
                hint = f"; closest: {', '.join(close)}" if close else ""
                problems.append(_at(nb, prose, line, f"unknown fact {{{{{name}}}}}{hint} (the facts are "
                                    "Playbook.facts(), see the README's \"Writing a lesson\")"))
    problems += translation_problems(nb)
    values = {name: {n} if (n := fact_number(facts[name])) is not None else set() for name in used}
    for name, olds in (old_values or {}).items():
        if name in values:
            values[name] |= olds
    for prose in nb.prose():
        for i, text in enumerate(prose.source.splitlines(), 1):
            for m in NUMBER.finditer(FACT.sub(" ", text)):
                try:
                    number = Decimal(m.group(0).replace(",", "")).normalize()
                except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
                    continue
                for name in sorted(n for n, vs in values.items() if number in vs):
                    now = fact_number(facts[name]) == number
                    which = "the current value" if now else "an old value"
                    problems.append(_at(nb, prose, i, f"{m.group(0)} is {which} of {name}; write {{{{{name}}}}} so "
                                        "the lesson follows the playbook", "warning"))
    if practice is not None and not nb.calls("practice") and practice.in_section(lesson.id):
        problems.append(Problem(relpath(nb.path), 0, 0, "", "the lesson has practice questions but no practice() "
                                "call; add a code cell practice() where they belong (now shown at the end)",
                                severity="warning"))
    if practice is not None and not practice.in_section(lesson.id):
        problems.append(Problem(relpath(nb.path), 0, 0, "", f"lesson {lesson.id!r} has no practice questions, so it "
                                "counts as complete as soon as a learner opens it (and the exam's lesson gate "
                                f"with it); add questions with `section: {lesson.id}` to quizzes/practice/",
                                severity="warning"))
    return problems


def lessons_problems(playbook: Any, practice: Any = None, home: Path | str | None = None) -> list[Problem]:
    """Return the problems of every lesson notebook of ``playbook`` (old values from ``home``'s playbook history)."""
    old = old_fact_values(home)
    return [p for lesson in playbook.lessons for p in lesson_problems(playbook, lesson, practice, old)]
