"""Lesson notebooks: the prose a trainer writes, read without running it (seed:3.3.1).

A lesson is a notebook in ``lessons/`` of the content folder (listed in ``playbook/lessons.yaml``):

* markdown cells tagged ``zh-CN`` or ``en`` (cell tags; JupyterLab's property inspector edits them)
  hold the prose. The first ``# heading`` of the first zh-CN (en) cell is the lesson's title.
  Playbook values appear as named facts, ``{{ sla.email_reply }}`` (the names of
  :meth:`~sopcoach.content.playbook.Playbook.facts`), filled in when the lesson is shown;
* code cells are one-line calls from :data:`CALLS` with literal arguments, e.g.
  ``clauses("role-authority", "quote-limits")``, ``tool("approval")``, ``practice()``, ``facts()``;
  the first code cell (tagged ``setup``) is ``from sopcoach.lessons.cells import *`` so the
  notebook also runs in JupyterLab and Voila (:mod:`sopcoach.lessons.cells`).

The learner app never executes a lesson notebook: :func:`read_lesson` reads it with nbformat and
parses each code cell with :mod:`ast`, and :func:`prose_html` renders a markdown cell for one
language (facts filled, raw HTML escaped). :func:`lesson_notebook` caches a read per path and
modification time, so an edited lesson is shown at its next opening, without a restart.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mistune
import nbformat

from ..content.quizbank import FACT
from ..errors import ContentError, Problem, relpath
from ..i18n import LANGS
from .tools import fact_text

#: The calls a lesson's code cells may make, with the number of arguments each takes
#: (``None``: any number, at least one). Every argument is a string literal.
CALLS: dict[str, int | None] = {"clauses": None, "tool": 1, "practice": 0, "facts": 0}
#: The lesson tools ``tool(...)`` may name (the classes of :mod:`sopcoach.ui.lesson_tools`).
TOOLS = ("goals", "process", "approval", "sla", "tiers", "confidentiality", "templates", "crm_kpis",
         "improvement", "catalogue")
#: The setup cell's source (tag ``setup``): makes the calls available when the notebook runs.
SETUP = "from sopcoach.lessons.cells import *"
_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


def lessons_folder(content: Path | str) -> Path:
    """Return the lesson notebooks' folder of a content folder: its ``lessons/``, else the project's.

    A content folder that holds only ``playbook/`` and ``quizzes/`` (a copy for editing) uses the
    lessons installed with sopcoach, as the apps' ``notebooks/`` do. A symbolic link is resolved, so
    the path stays valid when a temporary folder that links to the lessons is gone.
    """
    own = Path(content) / "lessons"
    return own.resolve() if own.is_dir() else Path(__file__).resolve().parents[3] / "lessons"


@dataclass(frozen=True)
class Prose:
    """A markdown cell: ``cell`` is its 1-based position in the notebook, ``lang`` its language tag."""

    cell: int
    lang: str
    source: str

    def facts(self) -> list[tuple[int, str]]:
        """Return ``(line, fact name)`` of every placeholder, lines 1-based within the cell."""
        return [(self.source.count("\n", 0, m.start()) + 1, m.group(1)) for m in FACT.finditer(self.source)]


@dataclass(frozen=True)
class Call:
    """A code cell's call: ``name`` from :data:`CALLS` with its string ``args``."""

    cell: int
    line: int
    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class LessonNotebook:
    """A read lesson notebook: its prose and calls in notebook order (``parts``)."""

    path: Path
    parts: tuple[Prose | Call, ...]

    def prose(self, lang: str | None = None) -> list[Prose]:
        """Return the markdown cells (of ``lang`` when given) in order."""
        return [p for p in self.parts if isinstance(p, Prose) and (lang is None or p.lang == lang)]

    def calls(self, name: str | None = None) -> list[Call]:
        """Return the calls (named ``name`` when given) in order."""
        return [c for c in self.parts if isinstance(c, Call) and (name is None or c.name == name)]

    def title(self, lang: str) -> str:
        """Return the first ``# heading`` of the first markdown cell in ``lang`` (facts not filled)."""
        first = self.prose(lang)
        m = _TITLE.search(first[0].source) if first else None
        return m.group(1) if m else ""

    def text(self, playbook: Any, lang: str) -> str:
        """Return the prose in ``lang`` as markdown, facts filled, cells joined by a blank line.

        Raises
        ------
        KeyError
            When a placeholder names no playbook fact.
        """
        return "\n\n".join(fill_facts(playbook, p.source, lang) for p in self.prose(lang))

    @property
    def clauses(self) -> tuple[str, ...]:
        """The clause ids the lesson shows (every ``clauses(...)`` call), in reading order."""
        return tuple(a for c in self.calls("clauses") for a in c.args)

    @property
    def tool(self) -> str | None:
        """The lesson's tool (its first ``tool(...)`` call), or ``None``."""
        calls = self.calls("tool")
        return calls[0].args[0] if calls else None


def _cell_problem(path: Path, cell: int, line: int, message: str, severity: str = "error") -> Problem:
    return Problem(relpath(path), line, 0, f"cell {cell}", message, severity=severity)


def _parse_code(path: Path, cell: int, source: str, tags: list[str]) -> tuple[list[Call], list[Problem]]:
    """Parse one code cell: the setup import, or calls of :data:`CALLS` with string literals."""
    if "setup" in tags or source.strip() == SETUP:
        if source.strip() != SETUP:
            return [], [_cell_problem(path, cell, 1, f"the setup cell must be exactly `{SETUP}`")]
        return [], []
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [], [_cell_problem(path, cell, exc.lineno or 0, f"not Python: {exc.msg}; write one call per "
                                  f"line, e.g. tool(\"approval\") (calls: {', '.join(CALLS)})")]
    calls, problems = [], []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            problems.append(_cell_problem(path, cell, stmt.lineno, "a lesson's code cell holds only calls such as "
                                          f"clauses(\"quote-limits\") or practice() (calls: {', '.join(CALLS)})"))
            continue
        name = call.func.id
        if name not in CALLS:
            problems.append(_cell_problem(path, cell, stmt.lineno, f"unknown call {name}(); use one of "
                                          f"{', '.join(CALLS)}"))
            continue
        if call.keywords or not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args):
            problems.append(_cell_problem(path, cell, stmt.lineno, f"{name}() takes only quoted names, "
                                          "e.g. clauses(\"quote-limits\")"))
            continue
        args = tuple(str(a.value) for a in call.args)  # type: ignore[attr-defined]
        want = CALLS[name]
        if (want is None and not args) or (want is not None and len(args) != want):
            need = "one or more clause ids" if want is None else f"{want} argument(s)"
            problems.append(_cell_problem(path, cell, stmt.lineno, f"{name}() takes {need}, got {len(args)}"))
            continue
        if name == "tool" and args[0] not in TOOLS:
            problems.append(_cell_problem(path, cell, stmt.lineno, f"unknown tool '{args[0]}'; use one of "
                                          f"{', '.join(TOOLS)}"))
            continue
        calls.append(Call(cell, stmt.lineno, name, args))
    return calls, problems


def read_lesson(path: Path | str) -> LessonNotebook:
    """Read a lesson notebook without running it.

    Raises
    ------
    ContentError
        With every problem, each naming the file and the cell (1-based) and line: the file is
        missing or not a notebook, a markdown cell has no language tag (``zh-CN`` or ``en``), a code
        cell is not one of the calls of :data:`CALLS` with string literals, an unknown tool, or the
        notebook has no title (``# heading``) in a language.
    """
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise ContentError([Problem(relpath(path), 0, 0, "", "no such lesson notebook; copy a notebook in "
                                    "lessons/ to this name, or fix the lesson's notebook: in playbook/lessons.yaml")]) from None
    except Exception as exc:  # nbformat raises json, validation and OS errors alike
        raise ContentError([Problem(relpath(path), 0, 0, "", f"not a readable notebook ({exc}); "
                                    "open and save it in JupyterLab (`sopcoach lab`)")]) from None
    parts: list[Prose | Call] = []
    problems: list[Problem] = []
    for i, cell in enumerate(nb.cells, 1):
        tags = list(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type == "markdown":
            langs = [tg for tg in tags if tg in LANGS]
            if len(langs) != 1:
                problems.append(_cell_problem(path, i, 1, "tag each markdown cell with its language, zh-CN or "
                                              "en (JupyterLab: property inspector, cell tags)"))
                continue
            parts.append(Prose(i, langs[0], cell.source))
        elif cell.cell_type == "code":
            calls, found = _parse_code(path, i, cell.source, tags)
            parts.extend(calls)
            problems.extend(found)
    lesson = LessonNotebook(path, tuple(parts))
    for lang in LANGS:
        if not problems and not lesson.title(lang):
            problems.append(Problem(relpath(path), 0, 0, "", f"no title in {lang}: start the first {lang} markdown "
                                    "cell with a `# heading`"))
    if problems:
        raise ContentError(problems)
    return lesson


@lru_cache(maxsize=64)
def _read_cached(path: str, mtime_ns: int, size: int) -> LessonNotebook:
    return read_lesson(path)


def lesson_notebook(path: Path | str) -> LessonNotebook:
    """Return :func:`read_lesson` of ``path``, read again only after the file changed on disk.

    Raises
    ------
    ContentError
        As :func:`read_lesson`.
    """
    try:
        st = os.stat(path)
    except OSError:
        return read_lesson(path)  # raises the missing-file problem
    return _read_cached(str(path), st.st_mtime_ns, st.st_size)


def fill_facts(playbook: Any, source: str, lang: str) -> str:
    """Return ``source`` with each ``{{fact}}`` replaced by the fact's text in ``lang``.

    Raises
    ------
    KeyError
        When a placeholder names no playbook fact (``sopcoach check`` reports it with the closest names).
    """
    return FACT.sub(lambda m: fact_text(playbook, m.group(1), lang), source)


def markdown_html(source: str) -> str:
    """Return the HTML of a markdown text; raw HTML in it is escaped, not passed through.

    >>> markdown_html("**A** <script>x</script>")
    '<p><strong>A</strong> &lt;script&gt;x&lt;/script&gt;</p>\\n'
    """
    return _markdown()(source)


@lru_cache(maxsize=1)
def _markdown() -> Any:
    return mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])


def prose_html(playbook: Any, prose: Prose, lang: str) -> str:
    """Return a markdown cell as learner HTML in ``lang``: facts filled, then markdown converted.

    Raises
    ------
    KeyError
        When a placeholder names no playbook fact.
    """
    return markdown_html(fill_facts(playbook, prose.source, lang))


def strip_title(source: str) -> str:
    """Return a markdown text without its first ``# heading`` (the page shows the title itself).

    >>> strip_title("# Quotes\\n\\nWhy it matters")
    'Why it matters'
    """
    return _TITLE.sub("", source, count=1).lstrip("\n")
