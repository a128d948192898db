"""Exact scoring of responses and attempts (seed:3.3.1: certified at a 90% pass mark).

All arithmetic is exact: per-question credit is a :class:`fractions.Fraction` in [0, 1], points are
integers, the attempt score is a ``Fraction`` and pass/fail compares it with the pass mark exactly
(inclusive). Displayed percentages are rounded *down* to one decimal, so the number shown never
contradicts the status (shared cases 06, 07).

Rules per type
--------------
single_choice, true_false
    1 when the chosen option is the key, else 0. A single-choice option with a ``weight`` earns
    that weight instead of 0 (floored at 0: credit is never negative).
multiple_choice
    Right minus wrong, floored at 0: ``picked_correct / n_correct - picked_wrong / n_wrong``.
    Ticking every option scores 0 (shared case 09). A *weighted* question (an option has a
    ``weight``) scores the sum of the picked options' weights clamped to [0, 1], as Moodle does for
    GIFT's ``~%50%``/``~%-100%`` answers; weights whose positive part sums below 1 leave full credit
    out of reach, and weights without negatives let "tick everything" earn full credit.
numeric
    1 when ``|answer - key| <= tolerance``, compared as decimals built from the typed text, so
    ``3.13`` is within ``3.14 ± 0.01`` (shared case 13). A ``min``/``max`` range is inclusive at
    both ends. With ``answers``, the first accepted number (in the listed order) that matches gives
    its weight, floored at 0; none matching gives 0.
ordering
    Longest common subsequence of the submitted block ids and the key, divided by the longer of the
    two lengths: an extra distractor block keeps the score below 1 (shared case 12). An ordering the
    learner never touched is stored as unanswered and scores 0.
short_answer
    The typed text and each accepted answer are normalised (Unicode NFKC, so full-width letters
    equal ASCII ones; outer blanks stripped; inner runs of blanks made one space) and compared,
    ignoring case unless the answer is ``case_sensitive``; ``*`` in an answer matches any run of
    characters. The first accepted answer that matches gives its weight, floored at 0.
matching
    Right picks divided by the number of pairs; a pick is right when the chosen answer's text is
    the pair's answer. Unpicked prompts are wrong.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from ..content.quizbank import (Matching, MultipleChoice, Numeric, Ordering, ShortAnswer, SingleChoice, TrueFalse,
                                exact_decimal)
from ..errors import ExamError, InvalidResponse
from ..i18n import t

ZERO = Fraction(0)
ONE = Fraction(1)


def parse_number(text: Any) -> Decimal:
    """Parse a typed number exactly (``"3,5"`` and full-width digits accepted).

    Raises
    ------
    InvalidResponse
        When ``text`` is not a finite number.

    Examples
    --------
    >>> parse_number(" 3.13 ")
    Decimal('3.13')
    >>> parse_number("３,５")
    Decimal('3.5')
    """
    s = str(text).strip()
    s = s.translate({0xFF10 + i: ord("0") + i for i in range(10)}).replace("．", ".")
    if s.count(",") == 1 and "." not in s:
        s = s.replace(",", ".")
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise InvalidResponse(f"not a number: {text!r}") from None
    if not d.is_finite():
        raise InvalidResponse(f"not a finite number: {text!r}")
    return d


def lcs_length(a: list[str], b: list[str]) -> int:
    """Return the length of the longest common subsequence of two id lists.

    >>> lcs_length(["L", "Q", "P", "W", "C"], ["L", "Q", "P", "W"])
    4
    """
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def check_response(question: Any, response: Any) -> Any:
    """Validate a response against its question; return it normalised, or ``None`` when empty.

    Shapes: single_choice -> option id (str); multiple_choice -> list of option ids (sorted, unique);
    true_false -> bool; numeric -> the typed text (str); ordering -> list of block ids;
    short_answer -> the typed text (str, stripped); matching -> dict of pair id to choice id (a pair
    id or a distractor id; pairs left out are unanswered).

    Raises
    ------
    InvalidResponse
        On an unknown option id, a repeated block, a non-number or a wrong shape.
    """
    if response is None or response == "" or response == []:
        return None
    if isinstance(question, SingleChoice):
        if response not in {o.id for o in question.options}:
            raise InvalidResponse(f"unknown option {response!r}")
        return response
    if isinstance(question, MultipleChoice):
        ids = {o.id for o in question.options}
        if not isinstance(response, (list, tuple)) or not set(response) <= ids:
            raise InvalidResponse(f"unknown options in {response!r}")
        return sorted(set(response))
    if isinstance(question, TrueFalse):
        if not isinstance(response, bool):
            raise InvalidResponse(f"expected true or false, got {response!r}")
        return response
    if isinstance(question, Numeric):
        parse_number(response)
        return str(response).strip()
    if isinstance(question, Ordering):
        ids = {o.id for o in question.blocks}
        if (not isinstance(response, (list, tuple)) or not set(response) <= ids
                or len(set(response)) != len(response)):
            raise InvalidResponse(f"invalid ordering {response!r}")
        return list(response)
    if isinstance(question, ShortAnswer):
        if not isinstance(response, str):
            raise InvalidResponse(f"expected typed text, got {response!r}")
        return response.strip() or None
    if isinstance(question, Matching):
        if not isinstance(response, dict):
            raise InvalidResponse(f"expected a mapping of pair id to choice id, got {response!r}")
        pairs = {p.id for p in question.pairs}
        picked = {k: v for k, v in response.items() if v is not None}
        for k, v in picked.items():
            if k not in pairs:
                raise InvalidResponse(f"unknown pair {k!r}")
            if not isinstance(v, str) or question.choice_text(v) is None:
                raise InvalidResponse(f"unknown choice {v!r} for pair {k!r}")
        return dict(sorted(picked.items())) or None
    raise InvalidResponse(f"unknown question type {type(question).__name__}")


def normalise_text(text: str, case_sensitive: bool = False) -> str:
    """Normalise typed text for comparison: NFKC, stripped, inner blanks made one space, casefolded.

    >>> normalise_text("  Ｆｒｏｇ   Prince ")
    'frog prince'
    """
    s = " ".join(unicodedata.normalize("NFKC", text).split())
    return s if case_sensitive else s.casefold()


def text_matches(pattern: str, text: str, case_sensitive: bool = False) -> bool:
    """Return whether ``text`` matches an accepted answer (``*`` any run, ``\\*`` a literal star).

    >>> text_matches("have * by", "have been taken over by")
    True
    >>> text_matches("Frog", "frog"), text_matches("Frog", "frog", case_sensitive=True)
    (True, False)
    """
    pat = normalise_text(pattern, case_sensitive)
    parts = re.split(r"(?<!\\)\*+", pat)
    regex = ".*".join(re.escape(p.replace("\\*", "*")) for p in parts)
    return re.fullmatch(regex, normalise_text(text, case_sensitive), flags=re.DOTALL) is not None


def credit(question: Any, response: Any) -> Fraction:
    """Return the credit in [0, 1] (a Fraction) that ``response`` earns on ``question``.

    ``None`` (unanswered) earns 0. See the module docstring for the rule of each type.

    Examples
    --------
    The select-all loophole is closed (shared case 09):

    >>> from sopcoach.content.quizbank import MultipleChoice
    >>> q = MultipleChoice.model_validate({"id": "q", "section": "s", "clauses": ["c"],
    ...     "type": "multiple_choice", "text": {"zh-CN": "题", "en": "Q"},
    ...     "options": [{"id": i, "text": {"zh-CN": i, "en": i}, "correct": i in "ab"} for i in "abcde"]})
    >>> credit(q, ["a", "b", "c", "d", "e"]), credit(q, ["a"]), credit(q, ["a", "c"])
    (Fraction(0, 1), Fraction(1, 2), Fraction(1, 6))
    """
    response = check_response(question, response)
    if response is None:
        return ZERO
    if isinstance(question, SingleChoice):
        chosen = next(o for o in question.options if o.id == response)
        if chosen.correct:
            return ONE
        return max(ZERO, Fraction(chosen.weight)) if chosen.weight is not None else ZERO
    if isinstance(question, TrueFalse):
        return ONE if response is question.answer else ZERO
    if isinstance(question, MultipleChoice) and question.weighted:
        total = sum((Fraction(o.weight) for o in question.options if o.id in response and o.weight), ZERO)
        return min(ONE, max(ZERO, total))
    if isinstance(question, MultipleChoice):
        right = {o.id for o in question.options if o.correct}
        wrong = {o.id for o in question.options if not o.correct}
        picked = set(response)
        value = Fraction(len(picked & right), len(right)) - Fraction(len(picked & wrong), len(wrong))
        return max(ZERO, value)
    if isinstance(question, Numeric):
        x = parse_number(response)
        hit = next((a for a in question.accepted() if a.matches(x)), None)
        return max(ZERO, Fraction(hit.weight)) if hit is not None else ZERO
    if isinstance(question, ShortAnswer):
        matched = next((a for a in question.answers if text_matches(a.text, response, a.case_sensitive)), None)
        return max(ZERO, Fraction(matched.weight)) if matched is not None else ZERO
    if isinstance(question, Matching):
        paired = sum(1 for p in question.pairs
                     if p.id in response and question.choice_text(response[p.id]) == p.answer)
        return Fraction(paired, len(question.pairs))
    if isinstance(question, Ordering):
        key = [o.id for o in question.items]
        return Fraction(lcs_length(list(response), key), max(len(response), len(key)))
    return ZERO  # pragma: no cover - check_response rejects other types


def floor_percent(value: Fraction, decimals: int = 1) -> Decimal:
    """Return ``value`` (a fraction 0-1) as a percent rounded *down* to ``decimals`` places.

    >>> floor_percent(Fraction(26, 29))
    Decimal('89.6')
    >>> floor_percent(Fraction(9, 10))
    Decimal('90.0')
    """
    exact = Decimal(value.numerator * 100) / Decimal(value.denominator)
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_FLOOR)


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome: ``earned`` points out of ``points`` (both exact Fractions)."""

    question_id: str
    section: str
    clauses: tuple[str, ...]
    points: Fraction
    earned: Fraction
    answered: bool

    @property
    def full_marks(self) -> bool:
        return self.earned == self.points


@dataclass(frozen=True)
class ScoreReport:
    """An attempt's score: exact points, the fraction 0-1, pass/fail and per-section figures.

    ``score`` is ``earned / possible`` (a Fraction); ``passed`` is ``score >= pass_mark``.
    ``percent_display`` is the floor of ``score`` as a percent with one decimal (a Decimal).
    """

    earned: Fraction
    possible: Fraction
    pass_mark: Fraction
    results: tuple[QuestionResult, ...]
    sections: dict[str, tuple[Fraction, Fraction]] = field(default_factory=dict)

    @property
    def score(self) -> Fraction:
        return self.earned / self.possible if self.possible else ZERO

    @property
    def passed(self) -> bool:
        return self.score >= self.pass_mark

    @property
    def percent_display(self) -> Decimal:
        return floor_percent(self.score)

    def missed(self) -> list[QuestionResult]:
        """Questions that did not earn full marks, in exam order."""
        return [r for r in self.results if not r.full_marks]


def score_attempt(questions: list[Any], responses: dict[str, Any], pass_mark: Fraction) -> ScoreReport:
    """Score an attempt exactly.

    Parameters
    ----------
    questions : list of Question
        The drawn questions, in exam order.
    responses : dict
        Question id -> stored response (missing or ``None``: unanswered).
    pass_mark : Fraction
        Fraction 0-1, compared inclusively. Question points may be fractional (``0.1``) and
        are summed exactly.

    Returns
    -------
    ScoreReport

    Examples
    --------
    Nine of ten one-point questions right is exactly 90% and passes (shared case 06):

    >>> from sopcoach.content.quizbank import TrueFalse
    >>> qs = [TrueFalse.model_validate({"id": f"q{i}", "section": "s", "clauses": ["c"],
    ...       "type": "true_false", "text": {"zh-CN": "题", "en": "Q"}, "answer": True}) for i in range(10)]
    >>> r = score_attempt(qs, {f"q{i}": i < 9 for i in range(10)}, Fraction(9, 10))
    >>> r.passed, r.percent_display
    (True, Decimal('90.0'))
    """
    results = []
    sections: dict[str, tuple[Fraction, Fraction]] = {}
    for q in questions:
        response = responses.get(q.id)
        points = Fraction(q.points)
        earned = credit(q, response) * points
        results.append(QuestionResult(q.id, q.section, tuple(q.clauses), points, earned,
                                      response is not None))
        e, p = sections.get(q.section, (ZERO, ZERO))
        sections[q.section] = (e + earned, p + points)
    earned = sum((r.earned for r in results), ZERO)
    possible = sum((r.points for r in results), ZERO)
    return ScoreReport(earned, possible, Fraction(pass_mark), tuple(results), sections)


def points_text(earned: Fraction, possible: Fraction) -> str:
    """Return points earned out of the points possible as a person reads them, e.g. ``27/30``.

    Never the reduced fraction (27 of 30 is ``27/30``, not ``9/10``). A number with a finite
    decimal form is written exactly (``26.5/30``); another is rounded down to two decimals and
    marked ``≈`` (80/3 points: ``≈26.66/30``).

    >>> points_text(Fraction(27), Fraction(30)), points_text(Fraction(53, 2), Fraction(30))
    ('27/30', '26.5/30')
    >>> points_text(Fraction(80, 3), Fraction(30)), points_text(Fraction(0), Fraction(30))
    ('≈26.66/30', '0/30')
    """
    return f"{_number_text(earned)}/{_number_text(possible)}"


def number_text(d: Decimal) -> str:
    """Return a number as people read it: thousands separated, no trailing zeros.

    >>> number_text(Decimal("100000")), number_text(Decimal("12.50")), number_text(Decimal("-1234.5"))
    ('100,000', '12.5', '-1,234.5')
    """
    d = d.normalize()
    return f"{d:,.0f}" if d == d.to_integral_value() else f"{d:,f}"


def _number_text(x: Fraction) -> str:
    dec = exact_decimal(x)
    if dec is None:
        return f"≈{(Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal('0.01'), rounding=ROUND_FLOOR)}"
    return f"{dec:f}"


def _frac(x: Fraction) -> list[int]:
    return [x.numerator, x.denominator]


def report_to_json(report: ScoreReport) -> dict[str, Any]:
    """Serialise a report exactly (fractions as ``[numerator, denominator]``) for the records store."""
    return {
        "earned": _frac(report.earned), "possible": _frac(report.possible),
        "pass_mark": _frac(report.pass_mark),
        "results": [{"question_id": r.question_id, "section": r.section, "clauses": list(r.clauses),
                     "points": _frac(r.points), "earned": _frac(r.earned), "answered": r.answered}
                    for r in report.results],
        "sections": {k: [_frac(e), _frac(p)] for k, (e, p) in report.sections.items()},
    }


def report_from_json(data: dict[str, Any]) -> ScoreReport:
    """Rebuild a :class:`ScoreReport` stored by :func:`report_to_json`."""
    f = lambda pair: Fraction(*pair)  # noqa: E731
    return ScoreReport(
        f(data["earned"]), f(data["possible"]), f(data["pass_mark"]),
        tuple(QuestionResult(r["question_id"], r["section"], tuple(r["clauses"]), f(r["points"]),
                             f(r["earned"]), r["answered"]) for r in data["results"]),
        {k: (f(e), f(p)) for k, (e, p) in data["sections"].items()})


def key_text(q: Any, lang: str | None = None) -> str:
    """Return a question's key as text in ``lang`` (shown after submission or after a practice answer).

    A template (``variant:``) has no key of its own, only each drawn instance has: it is described so.
    """
    if getattr(q, "variant", None) is not None:
        return t("按每次抽到的数字计算", "computed for each drawn variant", lang)
    if isinstance(q, (SingleChoice, MultipleChoice)):
        return "; ".join(o.text.get(lang) for o in q.options if o.correct)
    if isinstance(q, TrueFalse):
        return t("正确", "True", lang) if q.answer else t("错误", "False", lang)
    if isinstance(q, Numeric):
        if q.answer is None:
            raise ExamError(f"question {q.id} has no single answer to show as its key")
        tol = f" ± {number_text(q.tolerance)}" if q.tolerance else ""
        return f"{number_text(q.answer)}{tol}" + (f" {q.unit.get(lang)}" if q.unit else "")
    if isinstance(q, Ordering):
        return " → ".join(o.text.get(lang) for o in q.items)
    return ""
