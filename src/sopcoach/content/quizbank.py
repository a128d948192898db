"""Question banks and the certification blueprint, loaded from ``quizzes/``.

A bank file has a top-level ``questions:`` list. Question types: ``single_choice``,
``multiple_choice``, ``true_false``, ``numeric``, ``ordering``; any of them becomes a scenario item
with a ``scenario:`` text (a short deal situation shown before the question).

Extensions for question interchange (GIFT, Aiken, jupyterquiz; see :mod:`sopcoach.interchange`),
all optional and backwards compatible; :mod:`sopcoach.certification.scoring` states the rule of each:

- ``weight`` on a choice option: a fraction of the question's credit in [-1, 1], written as a
  decimal (``0.5``) or a ratio (``1/3``). A multiple-choice question with weights scores the sum of
  the picked weights (clamped to [0, 1]) instead of right-minus-wrong; a single-choice question may
  give a non-key option partial credit.
- ``feedback`` on options, ``feedback_true``/``feedback_false`` on true/false questions and
  ``feedback_other`` on numeric questions: texts shown after the attempt is scored.
- numeric ``min``/``max`` (an inclusive range) and ``answers`` (several accepted numbers or ranges,
  each with a weight, the first match counting).
- two types the exam app does not render yet (:data:`EXAM_TYPES` lists those it does):
  ``short_answer`` (typed text matched against accepted answers) and ``matching`` (pair prompts
  with answers).
- the clause id ``unmapped`` (:data:`UNMAPPED_CLAUSE`): an imported question that is not mapped to
  an SOP clause yet. ``load_bank`` accepts it with any playbook; map the question to real clauses
  before it enters the certification bank.

A question is never deleted once attempts may name it: ``retired: true`` keeps it (old attempts
are still scored and shown, item statistics still find it) but :meth:`Bank.in_section`, and so the
exam draw, the blueprint counts and lesson practice, leave it out.

Keys that follow from playbook values are derived, never copied: a numeric question names its key
with ``answer_from: <fact>``; a single-choice question with ``key_from: <fact>`` gives each option a
``value`` and the correct option is the one whose value equals the fact (no such option is a
content error). Texts may quote facts as ``{{fact}}``. Facts are listed by
:meth:`sopcoach.content.playbook.Playbook.facts`.

A question with a ``variant:`` block (:class:`Variant`) is a *template*: its numbers are drawn per
attempt and its key is computed by a playbook rule (:mod:`sopcoach.certification.variants`); its
texts may also quote its params and its rule's values as ``{{name}}``. :func:`load_bank` checks the
rule and params and draws it once; the template itself has no key (only its instances do).
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator,
                      model_validator)

from ..errors import Problem
from ..i18n import Text
from .businesstime import Duration
from .yaml_loader import load_yaml, raise_problems, validate

ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
FACT = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")

#: The clause id of a question not mapped to an SOP clause yet (imported questions); accepted by
#: :func:`load_bank` whatever the playbook holds.
UNMAPPED_CLAUSE = "unmapped"


def exact_decimal(x: Fraction) -> Decimal | None:
    """Return ``x`` as a Decimal when it has a finite decimal form (its denominator has no prime
    factor but 2 and 5), else ``None``.

    >>> exact_decimal(Fraction(53, 2)), exact_decimal(Fraction(1, 3))
    (Decimal('26.5'), None)
    """
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    return (Decimal(x.numerator) / Decimal(x.denominator)).normalize() if d == 1 else None


def _weight(v: Any) -> Any:
    """Read a weight exactly: a float goes through its shortest text (0.1 is one tenth)."""
    if isinstance(v, float):
        return str(v)
    if isinstance(v, str) and "/" in v:
        num, _, den = v.partition("/")
        try:
            return Fraction(int(num.strip()), int(den.strip()))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"a weight is a number in [-1, 1] such as 0.5 or 1/3 (got {v!r})") from None
    return v


def _weight_range(v: Fraction) -> Fraction:
    if not -1 <= v <= 1:
        raise ValueError(f"a weight is a fraction of the question's credit in [-1, 1] (got {v}); "
                         "write 0.5 for 50%")
    return v


#: A fraction of a question's credit in [-1, 1], exact (``1/3`` stays one third).
Weight = Annotated[Fraction, BeforeValidator(_weight), AfterValidator(_weight_range),
                   PlainSerializer(lambda f: str(f), return_type=str)]


#: Option texts that refer to the other options ("All of the above", "以上都是"): such an option only
#: makes sense in last place, so the exam and the lessons never shuffle it (see :func:`refers_to_others`).
REFERS_TO_OTHERS = re.compile(
    r"^\W*(?:(?:all|none|both|neither|any)\s+(?:of\s+)?(?:the\s+)?(?:above|foregoing|preceding|previous)"
    r"(?:\s+(?:options|answers|choices|statements))?"
    r"|(?:all|none|both|neither)\s+of\s+(?:these|them|those)|all\s+(?:are\s+)?(?:correct|true|right)"
    r"|(?:以上|上述|上面|前述)(?:选项|答案|说法|各项|几项|所有|全部)?(?:都|皆|均|全|全部|所有)?"
    r"(?:是|非|不是|对|不对|正确|不正确|错误|错|可以|不可以|没有|无)?"
    r"|(?:都|皆|均|全)(?:对|错|是|非|不对|不是|正确|不正确))\W*$",
    re.IGNORECASE)


def refers_to_others(text: Any) -> bool:
    """Return whether an option text (a :class:`~sopcoach.i18n.Text` or a string) refers to the others.

    >>> refers_to_others("All of the above"), refers_to_others("以上皆非"), refers_to_others("都对")
    (True, True, True)
    >>> refers_to_others("50人以上"), refers_to_others("Above the limit")
    (False, False)
    """
    texts = [text.zh_CN, text.en] if hasattr(text, "zh_CN") else [str(text)]
    return any(REFERS_TO_OTHERS.match(x.strip()) for x in texts if x and x.strip())


def display_order(options: list[Any], rng: Any) -> list[Any]:
    """Return ``options`` shuffled by ``rng`` (a :class:`random.Random`), pinned ones kept last.

    An option with ``pin: last`` or whose text :func:`refers_to_others` keeps its authored place
    among the pinned ones, after every shuffled option. ``options`` are :class:`Option` objects.
    """
    free = [o for o in options if not pinned_last(o)]
    rng.shuffle(free)
    return free + [o for o in options if pinned_last(o)]


def pinned_last(option: Any) -> bool:
    """Return whether an :class:`Option` stays last when options are shuffled (``pin: last`` or its text
    :func:`refers_to_others`)."""
    return getattr(option, "pin", None) == "last" or refers_to_others(option.text)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Option(_Model):
    """A choice option, identified by ``id`` (answers are stored by id, never by position).

    ``weight`` (optional) is the option's share of the question's credit in [-1, 1] (see
    :mod:`sopcoach.certification.scoring`); ``feedback`` (optional) is shown to a learner who picked it.
    ``pin: last`` keeps the option last when options are shuffled (see :func:`display_order`).
    """

    id: str = Field(pattern=ID)
    text: Text
    correct: bool = False
    value: Decimal | None = None
    weight: Weight | None = None
    feedback: Text | None = None
    #: ``last``: never shuffled, shown after the other options (for "all of the above" and the like).
    pin: Literal["last"] | None = None


class ParamSpec(_Model):
    """How one param of a template is drawn (exactly one kind; see :mod:`sopcoach.certification.variants`).

    ``min``/``max``/``step``: a number in the range; ``choices``: one of the values; ``dates:
    near_days_off``: a local date-time near the calendar's days off; ``weeks``/``per_week``: a weekly
    follow-up log; ``funnel``: one month's funnel counts, leads in ``[low, high]``. ``format``:
    how a number is shown (``number``, ``money``, ``percent``, ``tier``).
    """

    min: Decimal | None = None
    max: Decimal | None = None
    step: Decimal | None = Field(default=None, gt=0)
    choices: list[str | int | Decimal] | None = Field(default=None, min_length=1)
    dates: Literal["near_days_off"] | None = None
    within_days: int = Field(default=3, ge=0, le=14)
    hours: tuple[int, int] = (9, 17)
    weeks: int | None = Field(default=None, ge=1, le=8)
    per_week: tuple[int, int] = (0, 4)
    funnel: tuple[int, int] | None = None
    format: Literal["number", "money", "percent", "tier"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ParamSpec:
        kinds = [k for k, on in (("min/max", self.min is not None or self.max is not None),
                                 ("choices", self.choices is not None), ("dates", self.dates is not None),
                                 ("weeks", self.weeks is not None), ("funnel", self.funnel is not None)) if on]
        if len(kinds) != 1:
            raise ValueError(f"a param is drawn one way: give exactly one of min/max, choices, dates, weeks or "
                             f"funnel (got {', '.join(kinds) or 'none'})")
        if kinds == ["min/max"] and (self.min is None or self.max is None or self.min > self.max):
            raise ValueError("a range param needs 'min' and 'max' with min <= max")
        lo, hi = self.hours
        if not 0 <= lo < hi <= 24:
            raise ValueError(f"hours is [first, last) of the day, 0-24 (got {list(self.hours)})")
        if not 0 <= self.per_week[0] <= self.per_week[1]:
            raise ValueError(f"per_week is [fewest, most] follow-ups a week (got {list(self.per_week)})")
        if self.funnel is not None and not 10 <= self.funnel[0] <= self.funnel[1]:
            raise ValueError(f"funnel is [fewest, most] leads, at least 10 (got {list(self.funnel)})")
        return self


class Variant(_Model):
    """A template's draw: ``rule`` (a name of :data:`sopcoach.certification.variants.RULES`) and ``params``."""

    rule: str = Field(pattern=ID)
    params: dict[str, ParamSpec] = Field(min_length=1)


class _Question(_Model):
    id: str = Field(pattern=ID)
    section: str = Field(pattern=ID)
    clauses: list[str] = Field(min_length=1)
    points: Decimal = Field(default=Decimal(1), gt=0)  # exact; 0.1 is one tenth
    scenario: Text | None = None
    text: Text
    explanation: Text | None = None
    #: ``retired: true``: kept so that attempts and item statistics that name the id still resolve,
    #: but never drawn into an exam or shown as practice (see :meth:`Bank.in_section`).
    retired: bool = False
    derived: bool = False  # set by resolve(): the key was derived from the playbook
    #: A template: its numbers are drawn per attempt and its key computed by a playbook rule
    #: (see :mod:`sopcoach.certification.variants`); ``None`` for an ordinary question.
    variant: Variant | None = None

    @property
    def is_scenario(self) -> bool:
        return self.scenario is not None

    @property
    def is_template(self) -> bool:
        """True when the question is a template (its key differs per drawn variant)."""
        return self.variant is not None


class SingleChoice(_Question):
    """One correct option; ``key_from`` derives it from a playbook fact.

    A non-key option may carry a ``weight`` (partial credit, in [-1, 1]; a negative weight scores 0,
    credit is never negative); the key option's weight, if written, must be 1.
    """

    type: Literal["single_choice"]
    options: list[Option] = Field(min_length=2)
    key_from: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> SingleChoice:
        _unique_ids(self.options)
        n = sum(o.correct for o in self.options)
        if self.variant is not None:
            if n or self.key_from is not None:
                raise ValueError("a template's key follows from its rule; drop 'correct' and 'key_from'")
        elif self.key_from is None and n != 1:
            raise ValueError(f"a single-choice question needs exactly one correct option (found {n})")
        if self.key_from is not None and n:
            raise ValueError("with key_from the correct option follows the playbook; drop 'correct'")
        for o in self.options:
            if o.correct and o.weight is not None and o.weight != 1:
                raise ValueError(f"option '{o.id}' is the key, so its weight is 1 (got {o.weight}); "
                                 "drop the weight or the 'correct: true'")
        return self


class MultipleChoice(_Question):
    """Several correct options; scored right-minus-wrong (see :mod:`sopcoach.certification.scoring`).

    With a ``weight`` on any option the question is *weighted*: it scores the sum of the picked
    options' weights, clamped to [0, 1] (Moodle's rule for GIFT ``~%50%`` answers). An option without
    a weight then weighs 0, ``correct`` follows the weight (true exactly when it is positive) and may
    be left out, two options are enough and no wrong option is required.
    """

    type: Literal["multiple_choice"]
    options: list[Option] = Field(min_length=2)

    @model_validator(mode="before")
    @classmethod
    def _correct_from_weight(cls, data: Any) -> Any:
        opts = data.get("options") if isinstance(data, dict) else None
        if not isinstance(opts, list) or not any(isinstance(o, dict) and o.get("weight") is not None
                                                 for o in opts):
            return data
        filled = []
        for o in opts:
            if isinstance(o, dict) and "correct" not in o:
                try:
                    w = Fraction(_weight(o.get("weight") if o.get("weight") is not None else 0))
                except (TypeError, ValueError):
                    w = Fraction(0)  # the field validator reports the bad weight
                o = {**o, "correct": w > 0}
            filled.append(o)
        return {**data, "options": filled}

    @property
    def weighted(self) -> bool:
        """True when any option carries a weight (sum-of-weights scoring)."""
        return any(o.weight is not None for o in self.options)

    @model_validator(mode="after")
    def _keys(self) -> MultipleChoice:
        _unique_ids(self.options)
        if self.weighted:
            for o in self.options:
                positive = (o.weight or 0) > 0
                if o.correct != positive:
                    raise ValueError(f"option '{o.id}' has weight {o.weight or 0} but correct: "
                                     f"{str(o.correct).lower()}; an option is correct exactly when its "
                                     "weight is positive, so drop 'correct' or fix the weight")
            if not any(o.correct for o in self.options):
                raise ValueError("a weighted multiple-choice question needs an option with a positive weight")
            return self
        if len(self.options) < 3:
            raise ValueError(f"a multiple-choice question needs at least 3 options (found {len(self.options)}); "
                             "give options weights for a two-option question")
        n = sum(o.correct for o in self.options)
        if n < 1 or n == len(self.options):
            raise ValueError("a multiple-choice question needs at least one correct and one wrong option")
        return self


class TrueFalse(_Question):
    """A statement that is true or false.

    ``feedback_true`` and ``feedback_false`` (optional) are shown to a learner who answered true,
    respectively false (GIFT's ``{FALSE#wrong#right}`` feedbacks).
    """

    type: Literal["true_false"]
    answer: bool
    feedback_true: Text | None = None
    feedback_false: Text | None = None


def _half(x: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        return x / 2


def _fill_range(data: Any) -> Any:
    """Give a ``min``/``max`` range its equivalent ``answer``/``tolerance`` (midpoint, half width)."""
    if not isinstance(data, dict) or data.get("min") is None or data.get("max") is None:
        return data
    if data.get("answer") is not None or data.get("answer_from") is not None:
        return data  # checked for consistency after validation
    try:
        lo, hi = Decimal(str(data["min"]).strip()), Decimal(str(data["max"]).strip())
    except InvalidOperation:
        return data  # the field validators report the bad number
    return {**data, "answer": _half(lo + hi), "tolerance": _half(hi - lo)}


def _check_range(x: Any) -> None:
    if (x.min is None) != (x.max is None):
        raise ValueError("give both 'min' and 'max' for a range (or 'answer' with 'tolerance')")
    if x.min is None:
        return
    if x.min > x.max:
        raise ValueError(f"min {x.min} is above max {x.max}; swap them")
    if x.answer != _half(x.min + x.max) or x.tolerance != _half(x.max - x.min):
        raise ValueError(f"answer {x.answer} ± {x.tolerance} contradicts the range [{x.min}, {x.max}]; "
                         "give either 'min'/'max' or 'answer'/'tolerance'")


class NumericAnswer(_Model):
    """One accepted number of a numeric question: ``answer`` ± ``tolerance`` or ``[min, max]``.

    ``weight`` is the credit it earns, in [-1, 1] (default 1; below 0 scores 0); ``feedback`` is
    shown to a learner whose number it matches.
    """

    answer: Decimal | None = None
    tolerance: Decimal = Field(default=Decimal(0), ge=0)
    min: Decimal | None = None
    max: Decimal | None = None
    weight: Weight = Fraction(1)
    feedback: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, data: Any) -> Any:
        return _fill_range(data)

    @model_validator(mode="after")
    def _source(self) -> NumericAnswer:
        if self.answer is None and self.min is None:
            raise ValueError("an accepted number needs 'answer' (with 'tolerance') or 'min' and 'max'")
        _check_range(self)
        return self

    def matches(self, x: Decimal) -> bool:
        """Return whether ``x`` is within the answer's tolerance or range (both ends inclusive)."""
        if self.min is not None:
            return self.min <= x <= self.max  # type: ignore[operator]
        return abs(x - self.answer) <= self.tolerance  # type: ignore[operator]


class Numeric(_Question):
    """A number, right within ``tolerance`` (absolute, same unit) or inside ``[min, max]``.

    The key is one of: ``answer`` (± ``tolerance``), ``answer_from`` (a playbook fact), ``min`` and
    ``max`` (inclusive; ``answer``/``tolerance`` are then filled with the midpoint and half width,
    so code that shows ``answer ± tolerance`` keeps working), or ``answers``: several
    :class:`NumericAnswer` in order, the first that matches giving its weight (``answer`` and
    ``tolerance`` are then those of the first full-credit one). ``feedback_other`` is shown for a
    number that matches no accepted answer.
    """

    type: Literal["numeric"]
    answer: Decimal | None = None
    answer_from: str | None = None
    tolerance: Decimal = Field(default=Decimal(0), ge=0)
    unit: Text | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    answers: list[NumericAnswer] | None = None
    feedback_other: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        data = _fill_range(data)
        if not isinstance(data, dict) or not isinstance(data.get("answers"), list):
            return data
        if data.get("answer") is not None or data.get("answer_from") is not None:
            return data
        try:
            parsed = [a if isinstance(a, NumericAnswer) else NumericAnswer.model_validate(a)
                      for a in data["answers"]]
        except ValueError:
            return data  # reported when the field itself is validated
        full = next((a for a in parsed if a.weight == 1), None)
        if full is None:
            return data
        return {**data, "answer": full.answer, "tolerance": full.tolerance}

    @model_validator(mode="after")
    def _one_source(self) -> Numeric:
        if self.answers is not None:
            if self.answer_from is not None or self.min is not None or self.max is not None:
                raise ValueError("with 'answers' give no top-level answer_from, min or max")
            if not self.answers:
                raise ValueError("'answers' needs at least one accepted number")
            full = [a for a in self.answers if a.weight == 1]
            if not full:
                raise ValueError("no accepted number gives full credit; give one of 'answers' weight 1")
            if self.answer != full[0].answer or self.tolerance != full[0].tolerance:
                raise ValueError(f"answer {self.answer} ± {self.tolerance} differs from the first full-credit "
                                 f"entry of 'answers' ({full[0].answer} ± {full[0].tolerance}); drop "
                                 "the top-level answer")
            return self
        if self.variant is not None:
            if self.answer is not None or self.answer_from is not None or self.min is not None:
                raise ValueError("a template's key follows from its rule; drop 'answer', 'answer_from', 'min' and 'max'")
            return self
        if (self.answer is None) == (self.answer_from is None):
            raise ValueError("give exactly one of 'answer' or 'answer_from' (a playbook fact)")
        if self.answer_from is not None and (self.min is not None or self.max is not None):
            raise ValueError("give either 'answer_from' or 'min'/'max', not both")
        _check_range(self)
        return self

    def accepted(self) -> list[NumericAnswer]:
        """Return the accepted numbers in scoring order (one, full credit, unless ``answers`` is set)."""
        if self.answers is not None:
            return list(self.answers)
        if self.min is not None:
            return [NumericAnswer(min=self.min, max=self.max)]
        return [NumericAnswer(answer=self.answer, tolerance=self.tolerance)]


class Ordering(_Question):
    """Blocks to put in order: ``items`` in the correct order, plus optional ``distractors``."""

    type: Literal["ordering"]
    items: list[Option] = Field(min_length=2)
    distractors: list[Option] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids(self) -> Ordering:
        _unique_ids(self.items + self.distractors)
        return self

    @property
    def blocks(self) -> list[Option]:
        return list(self.items) + list(self.distractors)


class AcceptedAnswer(_Model):
    """One accepted text of a short-answer question.

    ``text`` may hold ``*`` (any run of characters; ``\\*`` is a literal star). ``weight`` is the
    credit it earns (default 1; below 0 scores 0). Matching ignores case unless ``case_sensitive``.
    """

    text: str = Field(min_length=1)
    weight: Weight = Fraction(1)
    case_sensitive: bool = False
    feedback: Text | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("an accepted answer must not be blank")
        return v.strip()


class ShortAnswer(_Question):
    """Typed text compared with ``answers`` in order; the first that matches gives its weight.

    Not rendered by the exam app yet (see :data:`EXAM_TYPES`). Scoring rule in
    :mod:`sopcoach.certification.scoring`.
    """

    type: Literal["short_answer"]
    answers: list[AcceptedAnswer] = Field(min_length=1)

    @model_validator(mode="after")
    def _full_credit(self) -> ShortAnswer:
        if not any(a.weight == 1 for a in self.answers):
            raise ValueError("no accepted answer gives full credit; give one of 'answers' weight 1")
        return self


class MatchPair(_Model):
    """A prompt and the answer it goes with; ``id`` identifies both in a response."""

    id: str = Field(pattern=ID)
    prompt: Text
    answer: Text


class Matching(_Question):
    """Match each prompt of ``pairs`` with its answer; ``distractors`` are extra answers.

    The choices offered are the distinct pair answers plus the distractors. A response maps pair
    ids to choice ids (a pair id stands for its answer); a pick is right when the chosen answer's
    text equals the pair's, so two prompts may share one answer. Not rendered by the exam app yet
    (see :data:`EXAM_TYPES`).
    """

    type: Literal["matching"]
    pairs: list[MatchPair] = Field(min_length=2)
    distractors: list[Option] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids(self) -> Matching:
        ids = [p.id for p in self.pairs] + [o.id for o in self.distractors]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"pair and distractor ids must be unique within a question (repeated: {', '.join(dup)})")
        return self

    def choice_text(self, choice_id: str) -> Text | None:
        """Return the answer text a choice id stands for, or ``None`` for an unknown id."""
        for p in self.pairs:
            if p.id == choice_id:
                return p.answer
        for o in self.distractors:
            if o.id == choice_id:
                return o.text
        return None


Question = Annotated[SingleChoice | MultipleChoice | TrueFalse | Numeric | Ordering | ShortAnswer | Matching,
                     Field(discriminator="type")]
#: The five types of the certification bank (kept as it was: the shipped bank uses each of them).
QUESTION_TYPES = ("single_choice", "multiple_choice", "true_false", "numeric", "ordering")
#: The types the exam app renders; a bank meant for the exam holds only these.
EXAM_TYPES = QUESTION_TYPES
#: Types that banks may hold (imported questions) but the exam app does not render yet.
EXTENDED_TYPES = ("short_answer", "matching")
#: Every type :func:`load_bank` accepts.
ALL_TYPES = QUESTION_TYPES + EXTENDED_TYPES


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

    def __init__(self, questions: list[Any], digest: str, warnings: list[Problem] | None = None,
                 sources: dict[str, tuple[str, int]] | None = None, playbook: Any = None):
        self.questions: dict[str, Any] = {q.id: q for q in questions}
        #: The playbook the keys were resolved against; templates compute their keys with it.
        self.playbook = playbook
        self.digest = digest
        #: Located warnings (``severity="warning"``) found while loading; ``sopcoach check`` prints them.
        self.warnings: list[Problem] = list(warnings or [])
        #: Where each question was read: id -> (file path, index in its ``questions:`` list); empty
        #: for a bank built in memory.
        self.sources: dict[str, tuple[str, int]] = dict(sources or {})

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, qid: str) -> Any:
        return self.questions[qid]

    def in_section(self, section: str) -> list[Any]:
        """Return the questions of ``section`` that may be drawn or practised (retired ones left out)."""
        return [q for q in self.questions.values() if q.section == section and not q.retired]

    def active(self) -> list[Any]:
        """Return every question not retired, in authored order."""
        return [q for q in self.questions.values() if not q.retired]

    def clause_ids(self) -> set[str]:
        return {c for q in self.questions.values() for c in q.clauses}

    def templates(self) -> list[Any]:
        """Return the template questions (``variant:``), retired ones included, in authored order."""
        return [q for q in self.questions.values() if q.variant is not None]


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
    unknown = [c for c in q.clauses
               if clause_ids is not None and c not in clause_ids and c != UNMAPPED_CLAUSE]
    if unknown:
        raise ValueError(f"unknown clause id(s) {', '.join(unknown)}; use ids from playbook/clauses.yaml")
    if q.variant is not None:  # a template's own {{names}} are filled per drawn variant
        facts = {**facts, **{n: f"{{{{{n}}}}}" for n in _variants().placeholders(q)}}
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

    if isinstance(paths, (str, Path)):
        p = Path(paths)
        files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    else:
        files = [Path(x) for x in paths]
    facts = playbook.facts() if playbook is not None else {}
    clause_ids = {c.id for c in playbook.clauses} if playbook is not None else None
    problems: list[Problem] = []
    warnings: list[Problem] = []
    questions: list[Any] = []
    first: dict[str, tuple[str, int]] = {}
    sources: dict[str, tuple[str, int]] = {}
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
            sources[q.id] = (doc.path, i)
            for j, o in enumerate(getattr(q, "options", None) or []):
                if o.pin is None and refers_to_others(o.text):
                    found = doc.problem(("questions", i, "options", j),
                                        f"option '{o.id}' refers to the other options, so it stays last when the "
                                        "options are shuffled; add 'pin: last' to the option to say so")
                    warnings.append(dataclasses.replace(found, severity="warning"))
            if q.variant is not None:
                wrong = _variants().template_problems(q, playbook)
                if wrong:
                    problems.extend(doc.problem(("questions", i, *sub), f"question '{q.id}': {msg}") for sub, msg in wrong)
                    continue
            try:
                resolved = _resolve(q, facts, clause_ids)
                if resolved.variant is not None and playbook is not None:
                    _try_template(resolved, playbook)
                questions.append(resolved)
            except ValueError as exc:
                problems.append(doc.problem(("questions", i), str(exc)))
    raise_problems(problems)
    return Bank(questions, digest.hexdigest(), warnings, sources, playbook)


def _variants() -> Any:
    """Return :mod:`sopcoach.certification.variants` (the template rules use the lesson tools, which
    load the installation's config, which loads banks: imported when first needed, never at start)."""
    from ..certification import variants  # noqa: PLC0415 - a cycle at import time otherwise (see the docstring)
    return variants


def _try_template(q: Any, playbook: Any) -> None:
    """Instantiate a template once (a fixed seed); raise ValueError saying what to fix."""
    v = _variants()
    try:
        v.instantiate(q, playbook, random.Random(f"load:{q.id}"))
    except v.TemplateError as exc:
        raise ValueError(f"{exc}; fix the params, the options or the {{{{placeholders}}}} of the template") from None


def load_blueprint(path: Path | str, bank: Bank | None = None) -> Blueprint:
    """Load the exam blueprint; with ``bank``, check each section has enough questions.

    Raises
    ------
    ContentError
        On schema problems, when a section draws more questions than the bank holds, or when the
        bank holds a type outside :data:`EXAM_TYPES` or a question with clause ``unmapped``.
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
        for q in bank.questions.values():
            if q.type not in EXAM_TYPES:
                doc.problems.append(doc.problem(("exam", "sections"),
                                                f"question '{q.id}' has type {q.type}, which the exam app does not "
                                                "render yet; keep it out of the certification bank"))
            if UNMAPPED_CLAUSE in q.clauses:
                doc.problems.append(doc.problem(("exam", "sections"),
                                                f"question '{q.id}' has clause '{UNMAPPED_CLAUSE}'; map it to SOP "
                                                "clauses before it enters the certification bank"))
        known = {s.id for s in bp.exam.sections}
        stray = sorted({q.section for q in bank.questions.values()} - known)
        if stray:
            doc.problems.append(doc.problem(("exam", "sections"),
                                            f"bank sections not in the blueprint: {', '.join(stray)}"))
    raise_problems(doc.problems)
    return bp.exam  # type: ignore[union-attr]
