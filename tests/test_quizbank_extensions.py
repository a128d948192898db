"""Backwards-compatible bank extensions: weights, numeric ranges and answers, short answer, matching."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from pydantic import ValidationError

from sopcoach.certification.scoring import credit, score_attempt
from sopcoach.content.quizbank import (ALL_TYPES, EXAM_TYPES, QUESTION_TYPES, UNMAPPED_CLAUSE, Matching, MultipleChoice,
                               Numeric, ShortAnswer, SingleChoice, TrueFalse, load_bank)

T = {"zh-CN": "题", "en": "Q"}
BASE = {"id": "q", "section": "s", "clauses": ["c"], "text": T}


def _opt(oid: str, **kw) -> dict:
    return {"id": oid, "text": {"zh-CN": oid, "en": oid}, **kw}


def _mc(*weights) -> MultipleChoice:
    return MultipleChoice.model_validate({**BASE, "type": "multiple_choice",
                                          "options": [_opt(chr(97 + i), weight=w) for i, w in enumerate(weights)]})


def test_exam_types_are_the_five_original_types():
    """EXAM_TYPES lists the five types the exam app renders; the new types are accepted by the bank only."""
    assert EXAM_TYPES == ("single_choice", "multiple_choice", "true_false", "numeric", "ordering")
    assert QUESTION_TYPES == EXAM_TYPES and set(ALL_TYPES) - set(EXAM_TYPES) == {"short_answer", "matching"}


def test_weighted_multiple_choice_sums_the_picked_weights():
    """A weighted multiple-choice question scores the sum of the picked weights."""
    q = _mc("0.5", "-1", "0.5", "-1")
    assert credit(q, ["a"]) == Fraction(1, 2) and credit(q, ["a", "c"]) == 1


def test_weighted_multiple_choice_is_floored_at_zero():
    """Picking a negative-weight option with a positive one cannot go below 0."""
    q = _mc("0.5", "-1", "0.5", "-1")
    assert credit(q, ["a", "b"]) == 0


def test_weighted_multiple_choice_is_capped_at_one():
    """Weights adding up above 1 give full credit, not more."""
    q = _mc("0.75", "0.75", "-1")
    assert credit(q, ["a", "b"]) == 1


def test_weights_below_one_leave_full_credit_out_of_reach():
    """Positive weights adding up to 99.9% give at most 999/1000."""
    q = _mc("0.333", "0.333", "0.333", "-1")
    assert credit(q, ["a", "b", "c"]) == Fraction(999, 1000)


def test_weight_one_third_is_exact():
    """A weight written 1/3 is exactly one third, so three of them make full credit."""
    q = _mc("1/3", "1/3", "1/3", "-1")
    assert credit(q, ["a", "b", "c"]) == 1


def test_weighted_option_is_correct_exactly_when_its_weight_is_positive():
    """'correct' follows the weight when it is left out."""
    q = _mc("0.5", "0", "0.5")
    assert [o.correct for o in q.options] == [True, False, True]


def test_weight_contradicting_correct_is_rejected():
    """'correct: true' on an option with a negative weight is an error naming the option."""
    with pytest.raises(ValidationError, match="option 'b' has weight -1 but correct: true"):
        MultipleChoice.model_validate({**BASE, "type": "multiple_choice",
                                       "options": [_opt("a", weight="1"), _opt("b", weight="-1", correct=True)]})


def test_weight_outside_minus_one_to_one_is_rejected():
    """A weight of 1.5 (150%) is refused with the accepted range."""
    with pytest.raises(ValidationError, match=r"in \[-1, 1\] \(got 3/2\)"):
        _mc("1.5", "-1")


def test_two_option_multiple_choice_without_weights_is_still_rejected():
    """The original rule stays: an unweighted multiple-choice question needs three options."""
    with pytest.raises(ValidationError, match="needs at least 3 options"):
        MultipleChoice.model_validate({**BASE, "type": "multiple_choice",
                                       "options": [_opt("a", correct=True), _opt("b")]})


def test_unweighted_multiple_choice_keeps_right_minus_wrong():
    """Without weights, {a, c} with keys a, b of five options still scores 1/2 - 1/3."""
    q = MultipleChoice.model_validate({**BASE, "type": "multiple_choice",
                                       "options": [_opt(i, correct=i in "ab") for i in "abcde"]})
    assert credit(q, ["a", "c"]) == Fraction(1, 6)


def test_single_choice_partial_weight_earns_its_weight():
    """A non-key single-choice option with weight 0.5 earns half credit."""
    q = SingleChoice.model_validate({**BASE, "type": "single_choice",
                                     "options": [_opt("a", correct=True), _opt("b", weight="0.5"), _opt("c")]})
    assert (credit(q, "a"), credit(q, "b"), credit(q, "c")) == (1, Fraction(1, 2), 0)


def test_single_choice_negative_weight_scores_zero():
    """A negative single-choice weight scores 0: credit is never negative."""
    q = SingleChoice.model_validate({**BASE, "type": "single_choice",
                                     "options": [_opt("a", correct=True), _opt("b", weight="-1")]})
    assert credit(q, "b") == 0


def test_single_choice_key_with_partial_weight_is_rejected():
    """The key of a single-choice question cannot carry a weight other than 1."""
    with pytest.raises(ValidationError, match="option 'a' is the key, so its weight is 1"):
        SingleChoice.model_validate({**BASE, "type": "single_choice",
                                     "options": [_opt("a", correct=True, weight="0.5"), _opt("b")]})


def test_true_false_keeps_both_feedbacks():
    """feedback_true and feedback_false are kept on a true/false question."""
    q = TrueFalse.model_validate({**BASE, "type": "true_false", "answer": False,
                                  "feedback_true": T, "feedback_false": {"zh-CN": "对", "en": "Right"}})
    assert q.feedback_false.en == "Right" and q.feedback_true.en == "Q"


def _num(**kw) -> Numeric:
    return Numeric.model_validate({**BASE, "type": "numeric", **kw})


@pytest.mark.parametrize("typed, expected", [("1", 1), ("5", 1), ("3", 1), ("5.0001", 0), ("0.9999", 0)])
def test_numeric_range_is_inclusive(typed, expected):
    """min 1, max 5 accepts both ends and nothing outside."""
    assert credit(_num(min="1", max="5"), typed) == expected


def test_numeric_range_fills_answer_and_tolerance():
    """A range gets its midpoint and half width as answer and tolerance (for displays of the key)."""
    q = _num(min="1", max="5")
    assert (q.answer, q.tolerance) == (Decimal(3), Decimal(2))


def test_numeric_range_contradicting_answer_is_rejected():
    """answer 3 with range [1, 4] is an error saying which to keep."""
    with pytest.raises(ValidationError, match=r"contradicts the range \[1, 4\]"):
        _num(answer="3", min="1", max="4")


def test_numeric_range_with_min_above_max_is_rejected():
    """min above max is an error that says to swap them."""
    with pytest.raises(ValidationError, match="min 5 is above max 1; swap them"):
        _num(min="5", max="1", answer="3", tolerance="2")


def test_numeric_answers_give_partial_credit():
    """Several accepted numbers: 3 earns 100%, 4 earns 50%, 5 earns nothing."""
    q = _num(answers=[{"answer": "3"}, {"answer": "4", "weight": "0.5"}])
    assert (credit(q, "3"), credit(q, "4"), credit(q, "5")) == (1, Fraction(1, 2), 0)


def test_numeric_answers_first_match_counts():
    """As in Moodle, the first accepted number that matches decides, even if a later one pays more."""
    q = _num(answers=[{"min": "0", "max": "10", "weight": "0.5"}, {"answer": "3"}])
    assert credit(q, "3") == Fraction(1, 2)


def test_numeric_answers_need_a_full_credit_entry():
    """answers without any weight-1 entry are refused."""
    with pytest.raises(ValidationError, match="no accepted number gives full credit"):
        _num(answers=[{"answer": "4", "weight": "0.5"}])


def test_numeric_answers_set_the_displayed_key():
    """answer/tolerance of a multi-answer question are those of its first full-credit entry."""
    q = _num(answers=[{"answer": "4", "weight": "0.5"}, {"answer": "3", "tolerance": "0.1"}])
    assert (q.answer, q.tolerance) == (Decimal(3), Decimal("0.1"))


def test_numeric_dump_validates_again():
    """A range question dumped and validated again is the same question."""
    q = _num(min="1", max="5")
    assert Numeric.model_validate(q.model_dump(by_alias=True)) == q


def _sa(*answers) -> ShortAnswer:
    return ShortAnswer.model_validate({**BASE, "type": "short_answer", "answers": list(answers)})


def test_short_answer_ignores_case_and_blanks():
    """'  frog ' matches the accepted answer 'Frog'."""
    assert credit(_sa({"text": "Frog"}), "  frog ") == 1


def test_short_answer_case_sensitive_answer():
    """A case-sensitive answer does not match another case."""
    assert credit(_sa({"text": "NaCl", "case_sensitive": True}), "nacl") == 0


def test_short_answer_full_width_letters_match():
    """Full-width letters typed by a Chinese keyboard match ASCII answers (NFKC)."""
    assert credit(_sa({"text": "CRM"}), "ＣＲＭ") == 1


def test_short_answer_first_match_gives_its_weight():
    """Frog 100%, Cat 50%, anything else 0% (Moodle's fixture 'Shortanswer')."""
    q = _sa({"text": "Frog"}, {"text": "Cat", "weight": "0.5"}, {"text": "*", "weight": "0"})
    assert (credit(q, "cat"), credit(q, "dog"), credit(q, "Frog")) == (Fraction(1, 2), 0, 1)


def test_short_answer_escaped_star_is_literal():
    r"""'5\*' accepts '5*' only, not '5 stars'."""
    q = _sa({"text": "5\\*"})
    assert (credit(q, "5*"), credit(q, "5 stars")) == (1, 0)


def test_short_answer_needs_a_full_credit_answer():
    """Accepted answers without a weight-1 one are refused."""
    with pytest.raises(ValidationError, match="no accepted answer gives full credit"):
        _sa({"text": "Cat", "weight": "0.5"})


def _match() -> Matching:
    return Matching.model_validate({**BASE, "type": "matching", "pairs": [
        {"id": "p1", "prompt": T, "answer": {"zh-CN": "论坛", "en": "Forum"}},
        {"id": "p2", "prompt": T, "answer": {"zh-CN": "维基", "en": "Wiki"}},
        {"id": "p3", "prompt": T, "answer": {"zh-CN": "论坛", "en": "Forum"}}],
        "distractors": [{"id": "d1", "text": {"zh-CN": "聊天", "en": "Chat"}}]})


def test_matching_scores_right_pairs_over_all_pairs():
    """Two of three prompts matched right earn 2/3."""
    assert credit(_match(), {"p1": "p1", "p2": "d1", "p3": "p3"}) == Fraction(2, 3)


def test_matching_counts_equal_answers_as_right():
    """Two prompts sharing the answer 'Forum' may both pick either pair's 'Forum'."""
    assert credit(_match(), {"p1": "p3", "p2": "p2", "p3": "p1"}) == 1


def test_matching_rejects_an_unknown_choice():
    """A choice id that is no pair and no distractor is an invalid response."""
    from sopcoach.errors import InvalidResponse
    with pytest.raises(InvalidResponse, match="unknown choice 'zz'"):
        credit(_match(), {"p1": "zz"})


def test_score_attempt_handles_new_types():
    """An attempt mixing short answer and matching is scored exactly."""
    qs = [_sa({"text": "Frog"}).model_copy(update={"id": "s1"}), _match().model_copy(update={"id": "m1"})]
    r = score_attempt(qs, {"s1": "frog", "m1": {"p1": "p1"}}, Fraction(9, 10))
    assert r.earned == Fraction(4, 3) and r.possible == 2


def test_unmapped_clause_is_accepted_with_a_playbook(tmp_path, playbook):
    """A bank question with clause 'unmapped' loads against the shipped playbook."""
    f = tmp_path / "imported.yaml"
    f.write_text("questions:\n- id: q1\n  type: true_false\n  section: s\n  clauses: [unmapped]\n"
                 "  text: {zh-CN: 题, en: Q}\n  answer: true\n", encoding="utf-8")
    assert load_bank([f], playbook)["q1"].clauses == [UNMAPPED_CLAUSE]


def test_other_unknown_clauses_are_still_reported(tmp_path, playbook):
    """A clause id that is neither in the playbook nor 'unmapped' is still an error."""
    from sopcoach.errors import ContentError
    f = tmp_path / "imported.yaml"
    f.write_text("questions:\n- id: q1\n  type: true_false\n  section: s\n  clauses: [nope]\n"
                 "  text: {zh-CN: 题, en: Q}\n  answer: true\n", encoding="utf-8")
    with pytest.raises(ContentError, match="unknown clause id"):
        load_bank([f], playbook)


def test_blueprint_refuses_types_the_exam_cannot_render(tmp_path, playbook):
    """A certification bank holding a short-answer question is reported by load_blueprint."""
    from sopcoach.content.quizbank import load_blueprint
    from sopcoach.errors import ContentError
    from support import ROOT
    f = tmp_path / "extra.yaml"
    f.write_text("questions:\n- id: s1\n  type: short_answer\n  section: crm_use\n  clauses: [crm-tracking]\n"
                 "  text: {zh-CN: 题, en: Q}\n  answers: [{text: CRM}]\n", encoding="utf-8")
    bank = load_bank(sorted((ROOT / "quizzes" / "bank").glob("*.yaml")) + [f], playbook)
    with pytest.raises(ContentError, match="question 's1' has type short_answer, which the exam app does not"):
        load_blueprint(ROOT / "quizzes" / "blueprint.yaml", bank)


def test_blueprint_refuses_unmapped_questions(tmp_path, playbook):
    """A certification bank holding an 'unmapped' question is reported by load_blueprint."""
    from sopcoach.content.quizbank import load_blueprint
    from sopcoach.errors import ContentError
    from support import ROOT
    f = tmp_path / "extra.yaml"
    f.write_text("questions:\n- id: u1\n  type: true_false\n  section: crm_use\n  clauses: [unmapped]\n"
                 "  text: {zh-CN: 题, en: Q}\n  answer: true\n", encoding="utf-8")
    bank = load_bank(sorted((ROOT / "quizzes" / "bank").glob("*.yaml")) + [f], playbook)
    with pytest.raises(ContentError, match="question 'u1' has clause 'unmapped'"):
        load_blueprint(ROOT / "quizzes" / "blueprint.yaml", bank)
