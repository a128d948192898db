"""Check content files: every problem of the playbook, the banks and the blueprint, none raised.

:func:`check_paths` is what ``sopcoach check`` runs; the trainer app and ``sopcoach release`` run it
too before they use the content.
"""
from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence

from ..errors import ContentError, Problem
from .playbook import load_playbook
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
        bank = attempt(load_bank, content / "quizzes" / "bank", playbook) if playbook else None
        if playbook is None:  # still report bank syntax/schema problems
            attempt(load_bank, content / "quizzes" / "bank", None)
        attempt(load_blueprint, content / "quizzes" / "blueprint.yaml", bank)
        practice = content / "quizzes" / "practice"  # what every lesson page loads
        if playbook is not None and practice.is_dir() and any(practice.glob("*.yaml")):
            attempt(load_bank, practice, playbook)
        return problems
    files: list[Path] = []
    for p in paths:
        if p.is_dir() and (p.name == "playbook" or any(p.glob("sop.yaml"))):
            playbook = attempt(load_playbook, p)
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
