"""Check content files: every problem of the playbook, the banks and the blueprint, none raised.

:func:`check_paths` is what ``sopcoach check`` runs; the trainer app and ``sopcoach release`` run it
too before they use the content.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from collections.abc import Sequence

from ..errors import ContentError, Problem
from .playbook import COMPANY, Playbook, load_playbook
from .quizbank import load_bank, load_blueprint
from .yaml_loader import load_yaml


def check_paths(paths: Sequence[Path], content: Path) -> list[Problem]:
    """Validate content files and return every problem (empty when clean).

    With no ``paths``, checks every content file under ``content``: ``playbook/``, the exam bank
    ``quizzes/bank/``, the lessons' practice pool ``quizzes/practice/`` (both checked against the
    playbook) and ``quizzes/blueprint.yaml``. A given folder named ``playbook`` is loaded as a playbook; any
    other YAML file is read as a bank (``questions:``) or a blueprint (``exam:``). Warnings (an
    option such as "All of the above" without ``pin: last``) come back as problems with
    ``severity="warning"``.
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
        attempt(load_blueprint, content / "quizzes" / "blueprint.yaml", bank)
        practice = content / "quizzes" / "practice"  # what every lesson page loads
        if playbook is not None and practice.is_dir() and any(practice.glob("*.yaml")):
            attempt(load_bank, practice, playbook)
        return fold_follow_ons(problems, playbook_failed=playbook is None)
    files: list[Path] = []
    for p in paths:
        if p.is_dir() and (p.name == "playbook" or any(p.glob("sop.yaml"))):
            playbook = attempt(load_playbook, p)
            problems.extend(provenance_problems(playbook, p) if playbook else [])
        elif p.is_dir():
            files.extend(sorted(p.rglob("*.yaml")))
        elif not p.exists():
            problems.append(Problem(str(p), 0, 0, "", "no such file"))
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
            attempt(load_bank, [f], playbook)
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
