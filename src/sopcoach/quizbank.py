"""Question banks and the certification blueprint, loaded from ``quizzes/``.

A bank file has a top-level ``questions:`` list. Question types: ``single_choice``,
``multiple_choice``, ``true_false``, ``numeric``, ``ordering``; any of them becomes a scenario item
with a ``scenario:`` text (a short deal situation shown before the question).

Keys that follow from playbook values are derived, never copied: a numeric question names its key
with ``answer_from: <fact>``; a single-choice question with ``key_from: <fact>`` gives each option a
``value`` and the correct option is the one whose value equals the fact (no such option is a
content error). Texts may quote facts as ``{{fact}}``. Facts are listed by
:meth:`sopcoach.playbook.Playbook.facts`.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._yaml import Loaded, load_yaml, raise_problems, validate
from .businesstime import Duration
from .errors import Problem
from .i18n import Text

ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
FACT = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Option(_Model):
    """A choice option, identified by ``id`` (answers are stored by id, never by position)."""

    id: str = Field(pattern=ID)
    text: Text
    correct: bool = False
    value: Decimal | None = None


class _Question(_Model):
    id: str = Field(pattern=ID)
    section: str = Field(pattern=ID)
    clauses: list[str] = Field(min_length=1)
    points: Decimal = Field(default=Decimal(1), gt=0)  # exact; 0.1 is one tenth
    scenario: Text | None = None
    text: Text
    explanation: Text | None = None
    derived: bool = False  # set by resolve(): the key was derived from the playbook

    @property
    def is_scenario(self) -> bool:
        return self.scenario is not None


class SingleChoice(_Question):
    """One correct option; ``key_from`` derives it from a playbook fact."""

    type: Literal["single_choice"]
    options: list[Option] = Field(min_length=2)
    key_from: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> "SingleChoice":
        _unique_ids(self.options)
        n = sum(o.correct for o in self.options)
        if self.key_from is None and n != 1:
            raise ValueError(f"a single-choice question needs exactly one correct option (found {n})")
        if self.key_from is not None and n:
            raise ValueError("with key_from the correct option follows the playbook; drop 'correct'")
        return self


class MultipleChoice(_Question):
    """Several correct options; scored right-minus-wrong (see :mod:`sopcoach.scoring`)."""

    type: Literal["multiple_choice"]
    options: list[Option] = Field(min_length=3)

    @model_validator(mode="after")
    def _keys(self) -> "MultipleChoice":
        _unique_ids(self.options)
        n = sum(o.correct for o in self.options)
        if n < 1 or n == len(self.options):
            raise ValueError("a multiple-choice question needs at least one correct and one wrong option")
        return self


class TrueFalse(_Question):
    """A statement that is true or false."""

    type: Literal["true_false"]
    answer: bool


class Numeric(_Question):
    """A number, right within ``tolerance`` (absolute, same unit) or inside ``[min, max]``."""

    type: Literal["numeric"]
    answer: Decimal | None = None
    answer_from: str | None = None
    tolerance: Decimal = Field(default=Decimal(0), ge=0)
    unit: Text | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "Numeric":
        if (self.answer is None) == (self.answer_from is None):
            raise ValueError("give exactly one of 'answer' or 'answer_from' (a playbook fact)")
        return self


class Ordering(_Question):
    """Blocks to put in order: ``items`` in the correct order, plus optional ``distractors``."""

    type: Literal["ordering"]
    items: list[Option] = Field(min_length=2)
    distractors: list[Option] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids(self) -> "Ordering":
        _unique_ids(self.items + self.distractors)
        return self

    @property
    def blocks(self) -> list[Option]:
        return list(self.items) + list(self.distractors)


Question = Annotated[Union[SingleChoice, MultipleChoice, TrueFalse, Numeric, Ordering],
                     Field(discriminator="type")]
QUESTION_TYPES = ("single_choice", "multiple_choice", "true_false", "numeric", "ordering")


def _unique_ids(options: list[Option]) -> None:
    ids = [o.id for o in options]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"option ids must be unique within a question (repeated: {', '.join(dup)})")


class BankFile(_Model):
    questions: list[Question] = Field(min_length=1)


class Section(_Model):
    """A blueprint section: how many questions the exam draws from it."""

    id: str = Field(pattern=ID)
    title: Text
    draw: int = Field(ge=1)


class Blueprint(_Model):
    """The certification exam's rules (seed:3.3.1).

    ``pass_mark`` is a fraction in (0, 1], compared inclusively and exactly (0.9 means a score of
    at least 90%). ``time_limit_minutes`` counts elapsed minutes from the server-side start.
    ``wait_between_attempts_hours`` is elapsed hours after the previous attempt closed.
    """

    id: str = Field(pattern=ID)
    title: Text
    instructions: Text
    pass_mark: Decimal = Field(gt=0, le=1)
    time_limit_minutes: int = Field(ge=1)
    max_attempts: int = Field(ge=1)
    wait_between_attempts_hours: Decimal = Field(ge=0)
    show_correct_answers: Literal["after_submit", "never"] = "after_submit"
    require_lessons: bool = True
    certificate_valid_days: int = Field(default=365, ge=1)
    sections: list[Section] = Field(min_length=1)

    @field_validator("pass_mark", mode="before")
    @classmethod
    def _fraction(cls, v: Any) -> Any:
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            return v
        if d > 1:
            raise ValueError(f"pass_mark must be in (0, 1] (got {v}); write 0.9 for 90%")
        return v

    @property
    def pass_fraction(self) -> Fraction:
        """The pass mark as an exact fraction."""
        return Fraction(self.pass_mark)

    @property
    def question_count(self) -> int:
        return sum(s.draw for s in self.sections)


class BlueprintFile(_Model):
    exam: Blueprint


class Bank:
    """An immutable, validated set of questions with keys resolved against a playbook.

    Use :func:`load_bank`. ``questions`` maps id to question in authored order.
    """

    def __init__(self, questions: list[Any], digest: str):
        self.questions: dict[str, Any] = {q.id: q for q in questions}
        self.digest = digest

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, qid: str) -> Any:
        return self.questions[qid]

    def in_section(self, section: str) -> list[Any]:
        return [q for q in self.questions.values() if q.section == section]

    def clause_ids(self) -> set[str]:
        return {c for q in self.questions.values() for c in q.clauses}


def render_facts(text: Text, facts: dict[str, Any]) -> Text:
    """Replace ``{{fact}}`` in both languages with the fact's display value.

    Raises ``KeyError`` naming the first unknown fact.
    """
    def sub(lang: str):
        def repl(m: re.Match) -> str:
            value = facts[m.group(1)]
            if isinstance(value, Duration):
                return value.label(lang)
            if isinstance(value, Decimal):
                return f"{value.normalize():f}"
            return str(value)
        return repl
    return Text.model_validate({"zh-CN": FACT.sub(sub("zh-CN"), text.zh_CN),
                                "en": FACT.sub(sub("en"), text.en)})


def _resolve(q: Any, facts: dict[str, Any], clause_ids: set[str] | None) -> Any:
    """Return ``q`` with ``{{facts}}`` filled and derived keys set; raise ValueError on a problem."""
    updates: dict[str, Any] = {}
    unknown = [c for c in q.clauses if clause_ids is not None and c not in clause_ids]
    if unknown:
        raise ValueError(f"unknown clause id(s) {', '.join(unknown)}; use ids from playbook/clauses.yaml")
    try:
        for field in ("text", "scenario", "explanation"):
            value = getattr(q, field)
            if value is not None:
                updates[field] = render_facts(value, facts)
        if hasattr(q, "options"):
            updates["options"] = [o.model_copy(update={"text": render_facts(o.text, facts)})
                                  for o in q.options]
    except KeyError as exc:
        raise ValueError(f"unknown playbook fact {exc.args[0]!r} in a text") from None
    if isinstance(q, Numeric) and q.answer_from:
        if q.answer_from not in facts:
            raise ValueError(f"answer_from names unknown playbook fact {q.answer_from!r}")
        updates["answer"] = Decimal(str(_number(facts[q.answer_from])))
        updates["derived"] = True
    if isinstance(q, SingleChoice) and q.key_from:
        if q.key_from not in facts:
            raise ValueError(f"key_from names unknown playbook fact {q.key_from!r}")
        target = facts[q.key_from]
        opts = updates.get("options", q.options)
        matches = [o for o in opts if _matches(o, target)]
        if len(matches) != 1:
            raise ValueError(f"key_from {q.key_from!r} is {target} in the playbook, but "
                             f"{len(matches)} options match it; give exactly one option that value")
        updates["options"] = [o.model_copy(update={"correct": o in matches}) for o in opts]
        updates["derived"] = True
    return q.model_copy(update=updates)


def _number(v: Any) -> Any:
    return v.value if isinstance(v, Duration) else v


def _matches(option: Option, target: Any) -> bool:
    if option.value is not None:
        try:
            return option.value == Decimal(str(_number(target)))
        except InvalidOperation:
            return False
    return option.id == str(target)


def load_bank(paths: list[Path] | Path, playbook: Any = None) -> Bank:
    """Load question files (a folder or a list of files), validate them and resolve their keys.

    Parameters
    ----------
    paths : path or list of paths
        Bank files (``*.yaml`` with a top-level ``questions:`` list) or a folder of them.
    playbook : Playbook, optional
        Resolves ``answer_from``/``key_from``/``{{fact}}`` and checks clause ids. Without it,
        questions that need facts are reported.

    Raises
    ------
    ContentError
        Every problem at once: YAML syntax, duplicate keys, schema errors, repeated question ids
        (also across files), unknown clauses or facts, keys that no longer match the playbook.
    """
    import hashlib

    if isinstance(paths, (str, Path)):
        p = Path(paths)
        files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    else:
        files = [Path(x) for x in paths]
    facts = playbook.facts() if playbook is not None else {}
    clause_ids = {c.id for c in playbook.clauses} if playbook is not None else None
    problems: list[Problem] = []
    questions: list[Any] = []
    first: dict[str, tuple[str, int]] = {}
    digest = hashlib.sha256()
    for f in files:
        doc = load_yaml(f)
        problems.extend(doc.problems)
        if doc.data is None:
            continue
        digest.update(f.read_bytes())
        bank = validate(BankFile, doc)
        problems.extend(p for p in doc.problems if p not in problems)
        if bank is None:
            continue
        for i, q in enumerate(bank.questions):
            line = doc.mark(("questions", i))[0]
            if q.id in first:
                path, l0 = first[q.id]
                problems.append(doc.problem(("questions", i, "id"),
                                            f"duplicate question id '{q.id}' (first defined at {path}:{l0}); "
                                            "answers are stored per id, so ids must be unique"))
                continue
            first[q.id] = (doc.path, line)
            try:
                questions.append(_resolve(q, facts, clause_ids))
            except ValueError as exc:
                problems.append(doc.problem(("questions", i), str(exc)))
    raise_problems(problems)
    return Bank(questions, digest.hexdigest())


def load_blueprint(path: Path | str, bank: Bank | None = None) -> Blueprint:
    """Load the exam blueprint; with ``bank``, check each section has enough questions.

    Raises
    ------
    ContentError
        On schema problems, or when a section draws more questions than the bank holds.
    """
    doc = load_yaml(path)
    bp = validate(BlueprintFile, doc) if doc.data is not None else None
    if bp is not None and bank is not None:
        for i, s in enumerate(bp.exam.sections):
            have = len(bank.in_section(s.id))
            if have < s.draw:
                doc.problems.append(doc.problem(("exam", "sections", i, "draw"),
                                                f"section '{s.id}' draws {s.draw} questions but the bank "
                                                f"has {have}; lower draw or add questions"))
        known = {s.id for s in bp.exam.sections}
        stray = sorted({q.section for q in bank.questions.values()} - known)
        if stray:
            doc.problems.append(doc.problem(("exam", "sections"),
                                            f"bank sections not in the blueprint: {', '.join(stray)}"))
    raise_problems(doc.problems)
    return bp.exam  # type: ignore[union-attr]
