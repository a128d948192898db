"""Check content files: every problem of the playbook, the banks and the blueprint, none raised.

:func:`check_paths` is what ``sopcoach check`` runs; the trainer app and ``sopcoach release`` run it
too before they use the content.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import statistics
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from ..certification.scoring import key_text, normalise_text
from ..certification.variants import check_draws
from ..errors import ContentError, Problem
from ..lessons.check import lesson_problems, lessons_problems, old_fact_values
from .playbook import COMPANY, Playbook, load_playbook
from .quizbank import UNMAPPED_CLAUSE, load_bank, load_blueprint, pinned_last
from .yaml_loader import load_yaml


def check_paths(paths: Sequence[Path], content: Path, home: Path | None = None) -> list[Problem]:
    """Validate content files and return every problem (empty when clean).

    With no ``paths``, checks every content file under ``content``: ``playbook/``, ``lessons/``, the exam bank
    ``quizzes/bank/``, the lessons' practice pool ``quizzes/practice/``, the trainers' drafts
    ``quizzes/drafts/`` (all checked against the playbook) and ``quizzes/blueprint.yaml``. A given folder
    named ``playbook`` is loaded as a playbook; a
    lesson notebook (``.ipynb``) is checked as a lesson of the content's playbook; any other YAML
    file is read as a bank (``questions:``) or a blueprint (``exam:``). Warnings (an
    option such as "All of the above" without ``pin: last``) come back as problems with
    ``severity="warning"``, and so do the course's coverage and quality findings
    (:func:`quality_warnings`: an examined clause no lesson teaches, a practice twin of an exam
    question, an option much longer or shorter than its siblings). The lesson notebooks are checked
    too (:mod:`sopcoach.lessons.check`); ``home`` is the data home whose playbook history gives the
    old values of facts (none when ``None``).
    """
    problems: list[Problem] = []
    playbook = None

    def attempt(fn, *args):
        try:
            loaded = fn(*args)
        except ContentError as exc:
            problems.extend(exc.problems)
            return None
        problems.extend(getattr(loaded, "warnings", []))  # a bank's warnings (severity "warning")
        return loaded

    if not paths:
        playbook = attempt(load_playbook, content / "playbook")
        problems.extend(provenance_problems(playbook, content / "playbook") if playbook else [])
        bank = attempt(load_bank, content / "quizzes" / "bank", playbook) if playbook else None
        if playbook is None:  # still report bank syntax/schema problems
            attempt(load_bank, content / "quizzes" / "bank", None)
        blueprint = attempt(load_blueprint, content / "quizzes" / "blueprint.yaml", bank)
        practice = content / "quizzes" / "practice"  # what every lesson page loads
        pool = None
        if playbook is not None and practice.is_dir() and any(practice.glob("*.yaml")):
            pool = attempt(load_bank, practice, playbook)
        drafts = content / "quizzes" / "drafts"  # the trainers' drafts: checked, read by no exam or lesson
        if playbook is not None and drafts.is_dir() and any(drafts.glob("*.yaml")):
            attempt(load_bank, drafts, playbook)
        for loaded in (bank, pool):
            if loaded is not None:
                problems.extend(template_draw_problems(loaded))
        if bank is not None:
            problems.extend(quality_warnings(playbook, bank, pool, blueprint))
        if playbook is not None:
            problems.extend(lessons_problems(playbook, pool, home))
        return fold_follow_ons(problems, playbook_failed=playbook is None)
    files: list[Path] = []
    notebooks: list[Path] = []
    for p in paths:
        if p.is_dir() and (p.name == "playbook" or any(p.glob("sop.yaml"))):
            playbook = attempt(load_playbook, p)
            problems.extend(provenance_problems(playbook, p) if playbook else [])
        elif p.is_dir():
            files.extend(sorted(p.rglob("*.yaml")))
        elif not p.exists():
            problems.append(Problem(str(p), 0, 0, "", "no such file"))
        elif p.suffix == ".ipynb":
            notebooks.append(p)
        else:
            files.append(p)
    if playbook is None and (content / "playbook").is_dir():
        try:
            playbook = load_playbook(content / "playbook")
        except ContentError:
            playbook = None
    for f in files:
        doc = load_yaml(f)
        if doc.problems or not isinstance(doc.data, dict):
            problems.extend(doc.problems or [doc.problem((), "expected a mapping with 'questions' or 'exam'")])
        elif "exam" in doc.data:
            attempt(load_blueprint, f, None)
        else:
            loaded = attempt(load_bank, [f], playbook)
            if loaded is not None:  # a bank file on its own: its options can still be judged
                problems.extend(odd_length_options(loaded))
                problems.extend(template_draw_problems(loaded))
    for nb in notebooks:  # a lesson notebook: checked against the playbook that lists it
        listed = [x for x in playbook.lessons if x.path.resolve() == nb.resolve()] if playbook is not None else []
        if listed:
            problems.extend(lesson_problems(playbook, listed[0], None, old_fact_values(home)))
        else:
            problems.append(Problem(str(nb), 0, 0, "", "not a lesson of playbook/lessons.yaml; list it there "
                                    "(id, number, notebook, seeds) to check it"))
    return problems


#: Messages of a question that names playbook values: while the playbook itself fails to load, these
#: follow from the playbook's problem, not from the question file.
FOLLOW_ON = re.compile(r"unknown playbook fact|names unknown playbook fact|unknown clause id")


def fold_follow_ons(problems: list[Problem], playbook_failed: bool) -> list[Problem]:
    """Report a failing playbook once: fold the questions' reference problems under its first problem.

    When ``playbook_failed``, every problem whose message matches :data:`FOLLOW_ON` (a question that
    names a playbook fact or clause, none of which are known then) is dropped and the first playbook
    problem gains a line "N follow-on problems in other files". Otherwise ``problems`` is returned as is.
    """
    follow = [p for p in problems if FOLLOW_ON.search(p.message)] if playbook_failed else []
    roots = [p for p in problems if p not in follow]
    first = next((i for i, p in enumerate(roots) if p.path.replace("\\", "/").split("/")[-2:-1] == ["playbook"]), None)
    if not follow or first is None:
        return problems
    files = len({p.path for p in follow})
    note = (f"\n    {len(follow)} follow-on problem(s) in {files} other file(s) (questions that use playbook "
            "values); they go away or are reported again once the playbook loads")
    roots[first] = dataclasses.replace(roots[first], message=roots[first].message + note)
    return roots


# --------------------------------------------------------------------------- coverage and quality
# Warnings about what the course teaches and how its questions are written (issue 15, item 4).
# Each takes the banks and playbook ``check_paths`` already loaded and locates its finding on the
# question (or option) in its file, with the fix.

#: Two stems (scenario + question text) at least this similar are "too close" when they also
#: share their key: :class:`difflib.SequenceMatcher` ratio on normalised text (see :func:`practice_twins`).
TWIN_SIMILARITY = 0.5
#: An option is much longer than its siblings above this multiple of their median length ...
LONG_OPTION_RATIO = 2.5
#: ... or much shorter below this fraction of it (see :func:`odd_length_options`) ...
SHORT_OPTION_RATIO = 0.4
#: ... and only when it differs from the median by at least this many characters (two short
#: Chinese words of 2 and 5 characters are not a give-away).
OPTION_LENGTH_GAP = 6


class _Locator:
    """Find a question's file and line from ``Bank.sources`` (each file read once)."""

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}

    def problem(self, bank: Any, qid: str, sub: tuple, message: str) -> Problem:
        path, index = bank.sources.get(qid, ("", -1))
        if index < 0:
            return Problem(path, 0, 0, "", message, severity="warning")
        doc = self.docs.get(path) or self.docs.setdefault(path, load_yaml(path))
        return dataclasses.replace(doc.problem(("questions", index, *sub), message), severity="warning")

    def where(self, bank: Any, qid: str) -> str:
        p = self.problem(bank, qid, (), "")
        return f"{p.path}:{p.line}" if p.line else p.path or qid


def untaught_exam_clauses(playbook: Any, bank: Any, blueprint: Any = None,
                          locate: _Locator | None = None) -> list[Problem]:
    """Warn about every clause the exam examines that no lesson teaches.

    A clause is *examined* when a question of the certification ``bank`` in a section the
    ``blueprint`` draws from (every section when ``blueprint`` is None) links it in ``clauses``;
    it is *taught* when a lesson of ``playbook.lessons`` shows it (a ``clauses(...)`` call of the
    lesson notebook, with the lesson's prose and practice). A learner who did every lesson meets
    an untaught clause first in the exam (seed:3.3.1: new hires are trained, then assessed).

    Parameters
    ----------
    playbook : Playbook
        Its ``lessons`` say what is taught.
    bank : Bank
        The certification bank, as :func:`~sopcoach.content.quizbank.load_bank` returns it (its
        ``sources`` locate each question).
    blueprint : Blueprint, optional
        Limits the exam to the sections it draws from.

    Returns
    -------
    list of Problem
        One warning per untaught clause, located at the ``clauses`` of its first exam question,
        naming how many exam questions (and which sections) examine it and the fix. Empty when the
        playbook has no lessons (then there is no course to check).
    """
    if not playbook.lessons:
        return []
    locate = locate or _Locator()
    taught = {c for lesson in playbook.lessons for c in lesson.clauses}
    drawn = {s.id for s in blueprint.sections} if blueprint is not None else None
    examined: dict[str, list[Any]] = {}
    for q in bank.active():  # a retired question is examined no more
        if drawn is None or q.section in drawn:
            for c in q.clauses:
                if c not in taught and c != UNMAPPED_CLAUSE:
                    examined.setdefault(c, []).append(q)
    out = []
    for clause, qs in examined.items():
        sections = ", ".join(sorted({q.section for q in qs}))
        out.append(locate.problem(bank, qs[0].id, ("clauses",),
                                  f"clause '{clause}' is examined by {len(qs)} exam question(s) (section {sections}) "
                                  "but no lesson teaches it; add it to a clauses(...) call of a lesson notebook in "
                                  "lessons/ (with practice questions), or drop it from the exam"))
    return out


def _stem(q: Any, lang: str) -> str:
    """Return the scenario and question text in ``lang``, normalised: NFKC, casefolded, letters and digits only."""
    raw = " ".join(x.get(lang) for x in (q.scenario, q.text) if x is not None)
    return re.sub(r"[\W_]+", "", normalise_text(raw))


def _key(q: Any, lang: str) -> str:
    """Return a question's key as comparable text (a numeric key without its unit)."""
    if q.type == "numeric" and q.answer is not None:
        return f"{q.answer.normalize():f}"
    return normalise_text(key_text(q, lang))


def stem_similarity(a: Any, b: Any) -> float:
    """Return how alike two questions' stems are: the higher :class:`difflib.SequenceMatcher` ratio
    (0-1, junk heuristic off) over the two languages of their normalised scenario + text.

    Normalised: NFKC, casefolded, letters and digits only (so punctuation and spacing play no part).
    """
    return max(difflib.SequenceMatcher(None, _stem(a, lang), _stem(b, lang), autojunk=False).ratio()
               for lang in ("zh-CN", "en"))


def practice_twins(bank: Any, practice: Any, threshold: float = TWIN_SIMILARITY,
                   locate: _Locator | None = None) -> list[Problem]:
    """Warn about every practice question that is too close to an exam question.

    Too close: the same type, the same key (the correct option texts, true/false, the number, the
    order; compared normalised in either language) and stems (scenario + question text) whose
    :func:`stem_similarity` is at least ``threshold`` (:data:`TWIN_SIMILARITY`, 0.5). The lesson
    page shows the practice key after an answer, so such a twin hands the learner the exam answer.

    Parameters
    ----------
    bank, practice : Bank
        The certification bank and the lessons' practice pool.
    threshold : float
        The least :func:`stem_similarity` (0-1) that makes two questions with one key twins.

    Returns
    -------
    list of Problem
        One warning per practice question, located at it, naming the exam question (id, file:line),
        the similarity and the fix.
    """
    locate = locate or _Locator()
    # retired ones leak nothing; a template's key differs per draw (practice draws fresh numbers)
    exam = [(q, {_key(q, "zh-CN"), _key(q, "en")}) for q in bank.active() if q.variant is None]
    out = []
    for p in practice.active():
        if p.variant is not None:
            continue
        keys = {_key(p, "zh-CN"), _key(p, "en")}
        for q, qkeys in exam:
            if p.type != q.type or not keys & qkeys:
                continue
            ratio = stem_similarity(p, q)
            if ratio >= threshold:
                out.append(locate.problem(practice, p.id, (),
                                          f"practice question '{p.id}' is a twin of exam question '{q.id}' "
                                          f"({locate.where(bank, q.id)}): same key and stems {ratio:.0%} alike "
                                          f"(limit {threshold:.0%}); practice shows its key, so rewrite it as a "
                                          "different situation with a different answer, or remove it"))
                break
    return out


def odd_length_options(bank: Any, locate: _Locator | None = None) -> list[Problem]:
    """Warn about options much longer or shorter than their siblings (a give-away or a throw-away).

    For each question with 3 or more options, in each language: an option whose length in
    characters is above :data:`LONG_OPTION_RATIO` (2.5) times the median length of the question's
    options, or below :data:`SHORT_OPTION_RATIO` (0.4) times it, and at least
    :data:`OPTION_LENGTH_GAP` (6) characters away from the median. Options pinned last ("All of
    the above") are left out.

    Returns
    -------
    list of Problem
        One warning per option (the languages it is odd in named once), located at the option.
    """
    locate = locate or _Locator()
    out = []
    for q in bank.active():
        options = [o for o in getattr(q, "options", None) or [] if not pinned_last(o)]
        if len(options) < 3:
            continue
        odd: dict[int, tuple[str, list[str]]] = {}
        for lang in ("zh-CN", "en"):
            lengths = [len(o.text.get(lang).strip()) for o in options]
            median = statistics.median(lengths)
            for j, n in enumerate(lengths):
                if abs(n - median) < OPTION_LENGTH_GAP:
                    continue
                if n > LONG_OPTION_RATIO * median or n < SHORT_OPTION_RATIO * median:
                    way = "longer" if n > median else "shorter"
                    odd.setdefault(j, (way, []))[1].append(f"{lang} {n} vs median {median:g}")
        for j, (way, notes) in odd.items():
            o = options[j]
            out.append(locate.problem(bank, q.id, ("options", q.options.index(o)),
                                      f"option '{o.id}' is much {way} than its siblings ({'; '.join(notes)} "
                                      f"characters; limits {LONG_OPTION_RATIO:g}x and {SHORT_OPTION_RATIO:g}x the median); "
                                      "learners pick or skip it by its length: write options of similar length, "
                                      "wrong ones as mistakes a new salesperson would make"))
    return out


def template_draw_problems(bank: Any, seeds: int = 25, locate: _Locator | None = None) -> list[Problem]:
    """Return an error per template of ``bank`` that some seed's draw leaves without a usable key.

    Each template is instantiated on ``seeds`` seeds (:func:`sopcoach.certification.variants.check_draws`):
    a draw the rule gives no key for (no role may approve, a zero denominator, a key no option
    has), or a seed whose draws all give two options the same text, is an error located at the
    question, naming the seed and the params.
    """
    if bank.playbook is None:
        return []
    locate = locate or _Locator()
    out = []
    for q in bank.templates():
        bad = check_draws(q, bank.playbook, seeds)
        if bad:
            found = locate.problem(bank, q.id, ("variant",),
                                   f"template '{q.id}': {len(bad)} of {seeds} seeded draws give no usable key "
                                   f"(first: {bad[0]}); narrow the params or fix the options")
            out.append(dataclasses.replace(found, severity="error"))
    return out


def quality_warnings(playbook: Any, bank: Any, practice: Any = None, blueprint: Any = None) -> list[Problem]:
    """Return the coverage and quality warnings of the loaded content (what ``sopcoach check`` adds).

    :func:`untaught_exam_clauses`, then :func:`practice_twins` (with ``practice``), then
    :func:`odd_length_options` over the exam bank and the practice pool.
    """
    locate = _Locator()
    out = untaught_exam_clauses(playbook, bank, blueprint, locate)
    if practice is not None:
        out += practice_twins(bank, practice, locate=locate)
    for pool in (bank, practice):
        if pool is not None:
            out += odd_length_options(pool, locate)
    return out


def provenance_problems(playbook: Playbook, folder: Path) -> list[Problem]:
    """Return a warning, located in ``folder``'s YAML, for every item whose provenance is unknown.

    An item has provenance when it states ``source``/``elaborates`` or names a ``clause`` (see
    :meth:`Playbook.provenance`); one with neither (e.g. a product without ``clause``) cannot tell a
    trainer whether the SOP says it (issue 15, item 5: honest sources).
    """
    missing = [p for p in playbook.provenance() if p.kind == "none"]
    docs = [load_yaml(f) for f in sorted(folder.glob("*.yaml"))] if missing else []
    out = []
    for p in missing:
        doc = next((d for d in docs if isinstance(d.data, dict) and p.part in d.data), None)
        items = doc.data[p.part] if doc else None
        index = next((i for i, x in enumerate(items) if isinstance(x, dict) and p.item in (x.get("id"), x.get("role"))),
                     None) if isinstance(items, list) else None
        loc = (p.part,) if index is None else (p.part, index)
        msg = (f"{p.part} '{p.item}' has no provenance: name the clause it implements (clause: <id>), or write "
               f"'source: seed:N' when the SOP states it, 'elaborates: seed:N' with a rationale saying how it details "
               f"that clause, or 'source: {COMPANY}' with a rationale saying why")
        where = doc.problem(loc, msg) if doc else Problem(str(folder), 0, 0, p.part, msg)
        out.append(dataclasses.replace(where, severity="warning"))
    return out


def provenance_summary(playbook: Playbook) -> str:
    """Return one line counting the playbook's items by provenance, for the trainer.

    ``"provenance: N items from the SOP, M elaborations, K company settings"`` (plus ``", U without
    provenance"`` when some have none); see :meth:`Playbook.provenance`.
    """
    kinds: list[str] = [p.kind for p in playbook.provenance()]
    line = (f"provenance: {kinds.count('seed')} items from the SOP, {kinds.count('elaborates')} elaborations, "
            f"{kinds.count(COMPANY)} company settings")
    return line + (f", {kinds.count('none')} without provenance" if "none" in kinds else "")
