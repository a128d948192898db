"""Exact scoring: pass bar, display rounding, partial credit, numeric tolerance, ordering."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from sopcoach.certification.scoring import credit, floor_percent, score_attempt
from sopcoach.content.quizbank import MultipleChoice, Numeric, Ordering, TrueFalse
from sopcoach.content.yaml_loader import load_yaml
from sopcoach.errors import InvalidResponse
from support import CASES

TEXT = {"zh-CN": "题", "en": "Q"}


def _tf(qid: str, points: str = "1") -> TrueFalse:
    return TrueFalse.model_validate({"id": qid, "section": "s", "clauses": ["c"], "type": "true_false",
                                     "text": TEXT, "answer": True, "points": points})


def _case06():
    doc = load_yaml(CASES / "06_quiz_float_passbar.yaml")
    qs = [TrueFalse.model_validate({"id": q["id"], "section": "s", "clauses": ["c"], "type": "true_false",
                                    "text": TEXT, "answer": q["answer"], "points": q["weight"]})
          for q in doc.data["questions"]]
    return qs, Fraction(Decimal(doc.data["pass_mark"]))


def test_nine_of_ten_tenths_passes_exactly():
    """Case 06: weights 0.1, nine right, pass mark 0.9 -> PASS at 90.0%."""
    qs, pass_mark = _case06()
    r = score_attempt(qs, {q.id: q.id != "q10" for q in qs}, pass_mark)
    assert r.score == Fraction(9, 10) and r.passed and r.percent_display == Decimal("90.0")


def test_eight_of_ten_fails():
    """Case 06: 8/10 -> FAIL."""
    qs, pass_mark = _case06()
    r = score_attempt(qs, {q.id: q.id not in ("q09", "q10") for q in qs}, pass_mark)
    assert not r.passed


@pytest.mark.parametrize("right, passed", [(18, True), (17, False)])
def test_twenty_twentieths(right, passed):
    """Case 06: weights 0.05: 18/20 passes, 17/20 fails."""
    qs = [_tf(f"q{i}", "0.05") for i in range(20)]
    r = score_attempt(qs, {q.id: i < right for i, q in enumerate(qs)}, Fraction(9, 10))
    assert r.passed is passed


def test_display_never_rounds_up_across_the_bar():
    """Case 07: 26 of 29 is shown as 89.6% and fails."""
    doc = load_yaml(CASES / "07_quiz_display_rounding.yaml").data
    n = int(doc["question_count"])
    qs = [_tf(f"q{i}") for i in range(n)]
    r = score_attempt(qs, {q.id: i < 26 for i, q in enumerate(qs)}, Fraction(Decimal(doc["pass_mark"])))
    assert not r.passed
    assert r.percent_display == Decimal("89.6")
    assert r.percent_display < 90


def test_floor_percent_is_floor():
    """Display rounds down even just below a whole number."""
    assert floor_percent(Fraction(8999, 10000)) == Decimal("89.9")
    assert floor_percent(Fraction(2, 3)) == Decimal("66.6")


def _case09() -> MultipleChoice:
    (raw,) = load_yaml(CASES / "09_quiz_select_all.yaml").data
    return MultipleChoice.model_validate({
        "id": raw["id"], "section": "s", "clauses": ["c"], "type": "multiple_choice",
        "text": {"zh-CN": raw["text"], "en": raw["text"]},
        "options": [{"id": o["id"], "text": {"zh-CN": o["text"], "en": o["text"]}, "correct": o["correct"]}
                    for o in raw["options"]]})


@pytest.mark.parametrize("picked, expected", [
    (["a", "b", "c", "d", "e"], Fraction(0)),
    (["a", "b"], Fraction(1)),
    (["a"], Fraction(1, 2)),
    (["a", "c"], Fraction(1, 2) - Fraction(1, 3)),
    (["c", "d"], Fraction(0)),
])
def test_multiple_choice_right_minus_wrong(picked, expected):
    """Case 09: ticking everything scores 0; reference points of the right-minus-wrong rule."""
    assert credit(_case09(), picked) == expected


def _case12() -> Ordering:
    (raw,) = load_yaml(CASES / "12_quiz_ordering.yaml").data
    opt = lambda s: {"id": s.lower().replace(" ", "_"), "text": {"zh-CN": s, "en": s}}  # noqa: E731
    return Ordering.model_validate({"id": raw["id"], "section": "s", "clauses": ["c"], "type": "ordering",
                                    "text": {"zh-CN": raw["text"], "en": raw["text"]},
                                    "items": [opt(x) for x in raw["items"]],
                                    "distractors": [opt(x) for x in raw["distractors"]]})


def test_ordering_extra_block_is_not_full_credit():
    """Case 12 B: the key plus a distractor scores 4/5, never 1."""
    q = _case12()
    assert credit(q, ["lead", "qualify", "proposal", "closed_won", "churned"]) == Fraction(4, 5)
    assert credit(q, ["lead", "qualify", "proposal", "closed_won"]) == 1


def test_ordering_unanswered_scores_nothing():
    """Case 12 A: an untouched ordering is stored as no response and scores 0."""
    assert credit(_case12(), None) == 0
    assert credit(_case12(), []) == 0


def test_ordering_rejects_repeated_blocks():
    """A block used twice is an invalid response."""
    with pytest.raises(InvalidResponse):
        credit(_case12(), ["lead", "lead"])


def _num(answer: str, tol: str = "0") -> Numeric:
    return Numeric.model_validate({"id": "n", "section": "s", "clauses": ["c"], "type": "numeric",
                                   "text": TEXT, "answer": answer, "tolerance": tol})


@pytest.mark.parametrize("typed, ok", [("3.13", True), ("3.15", True), ("3.12", False), ("3.16", False),
                                       ("3,13", True), ("３.１４", True)])
def test_numeric_tolerance_is_symmetric_and_exact(typed, ok):
    """Case 13 (Q-num-01): 3.14 ± 0.01 accepts both boundaries and nothing beyond."""
    assert (credit(_num("3.14", "0.01"), typed) == 1) is ok


def test_numeric_rejects_text():
    """A response that is not a number is refused, not scored."""
    with pytest.raises(InvalidResponse):
        credit(_num("3"), "three")


def test_weights_sum_exactly_with_fractional_points():
    """Points 0.1 add up exactly: ten of them make exactly 1."""
    qs = [_tf(f"q{i}", "0.1") for i in range(10)]
    assert score_attempt(qs, {}, Fraction(9, 10)).possible == 1
