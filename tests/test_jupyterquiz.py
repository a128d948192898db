"""jupyterquiz JSON import: the example file, its numeric rules, and contradictions with their location."""
from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from pydantic import TypeAdapter

from sopcoach.certification.scoring import credit
from sopcoach.content.quizbank import Question
from sopcoach.interchange.jupyterquiz import import_jupyterquiz, load_json_with_marks
from support import SHARED

EXAMPLE = SHARED / "data" / "quiz" / "jupyterquiz" / "jupyterquiz_examples_questions.json"
ADAPTER = TypeAdapter(Question)


@pytest.fixture(scope="module")
def example():
    return import_jupyterquiz(EXAMPLE)


def _one(items: list) -> object:
    r = import_jupyterquiz("q.json", json.dumps(items, ensure_ascii=False, indent=1))
    return r


def test_example_imports_every_question(example):
    """All 8 questions of the example file import."""
    assert (len(example.items), example.imported) == (8, 8)


def test_example_types(example):
    """many_choice -> multiple_choice, multiple_choice -> single_choice, numeric -> numeric."""
    assert [q["type"] for q in example.questions] == [
        "multiple_choice", "multiple_choice", "single_choice", "numeric", "numeric", "single_choice",
        "single_choice", "single_choice"]


def test_example_many_choice_keys(example):
    """The first question's four correct answers are the key; 'Live snakes' is wrong."""
    q = ADAPTER.validate_python(example.questions[0])
    assert [o.correct for o in q.options] == [True, True, True, True, False]


def test_example_numeric_value_and_range(example):
    """3.14 and 22/7's range earn full credit; a negative number earns none."""
    q = ADAPTER.validate_python(example.questions[3])
    assert (credit(q, "3.14"), credit(q, "3.1428575"), credit(q, "-1")) == (1, 1, 0)


def test_example_numeric_default_feedback(example):
    """The 'default' answer's feedback becomes feedback_other."""
    assert example.questions[3]["feedback_other"]["en"] == "$\\pi$ is the area of a circle of radius 1. Try again."


def test_example_precision_accepts_numbers_rounding_to_the_value(example):
    """With precision 3, 3.14159 rounds to 3.14 and is right; 3.15 is not."""
    q = ADAPTER.validate_python(example.questions[4])
    assert (credit(q, "3.14159"), credit(q, "3.15")) == (1, 0)


def test_example_code_is_appended_to_the_text(example):
    """A question's 'code' follows its text."""
    assert example.questions[5]["text"]["en"].endswith('print(a+b)')


def test_example_code_answers(example):
    """Answers given as 'code' use the code as option text."""
    assert [o["text"]["en"] for o in example.questions[6]["options"]] == ["mylist+=3", "mylist+=[3]", "mylist+={3}"]


def test_single_choice_with_two_correct_answers_is_reported():
    """A multiple_choice (radio) item with two correct answers is skipped with both locations."""
    r = _one([{"question": "Q?", "type": "multiple_choice", "answers": [
        {"answer": "a", "correct": True}, {"answer": "b", "correct": True}, {"answer": "c", "correct": False}]}])
    assert r.skipped[0].reason == (
        "contradictory: type multiple_choice has one correct answer, but 2 are marked correct "
        "([0].answers[0] (line 6, column 4), [0].answers[1] (line 10, column 4)); mark one, or make it many_choice")


def test_answer_both_correct_and_incorrect_is_reported():
    """The same answer text marked correct and incorrect is skipped with both locations."""
    r = _one([{"question": "Q?", "type": "many_choice", "answers": [
        {"answer": "Yes", "correct": True}, {"answer": "No", "correct": False}, {"answer": "yes", "correct": False}]}])
    assert r.skipped[0].reason == ("contradictory: answer 'yes' is correct at [0].answers[0] (line 6, column 4) "
                                   "and incorrect at [0].answers[2] (line 14, column 4); keep one of them")


def test_skipped_item_has_its_line_and_column():
    """A skipped item is reported at the line and column of its object."""
    r = _one([{"question": "Q?", "type": "essay", "answers": [{"answer": "x", "correct": True}]}])
    assert (r.skipped[0].line, r.skipped[0].column) == (2, 2)


def test_unknown_type_is_reported():
    """An unknown type is skipped, naming the expected types."""
    r = _one([{"question": "Q?", "type": "essay", "answers": [{"answer": "x", "correct": True}]}])
    assert "unknown question type 'essay'" in r.skipped[0].reason


def test_string_question_becomes_short_answer():
    """A 'string' question keeps match_case and wrong answers with weight 0."""
    r = _one([{"question": "Capital of France?", "type": "string", "answers": [
        {"answer": "Paris", "correct": True, "match_case": True}, {"answer": "Lyon", "correct": False}]}])
    q = ADAPTER.validate_python(r.questions[0])
    assert [(a.text, a.weight, a.case_sensitive) for a in q.answers] == [("Paris", 1, True), ("Lyon", 0, False)]


def test_invalid_json_is_a_located_problem():
    """Invalid JSON gives one problem with its line and column."""
    r = import_jupyterquiz("q.json", '[\n {"question": "x",\n  oops}]')
    assert (r.problems[0].line, r.problems[0].column) == (3, 3) and not r.items


def test_marks_locate_nested_values():
    """load_json_with_marks gives the line and column of nested values."""
    _, marks = load_json_with_marks('[\n {"answers": [\n   {"value": 1}]}]')
    assert marks[(0, "answers", 0, "value")] == (3, 14)


def test_numeric_ranges_keep_their_bounds():
    """A numeric range becomes min/max exactly (1e-8 resolution kept)."""
    r = _one([{"question": "x?", "type": "numeric", "answers": [
        {"type": "range", "range": [3.142857, 3.142858], "correct": True}]}])
    q = r.questions[0]
    assert (q["min"], q["max"]) == (Decimal("3.142857"), Decimal("3.142858"))


def test_numeric_incorrect_answer_weighs_zero():
    """An answer marked incorrect is kept with weight 0 so its feedback still shows."""
    r = _one([{"question": "x?", "type": "numeric", "answers": [
        {"type": "value", "value": 0, "correct": False, "feedback": "Not zero."},
        {"type": "value", "value": 2, "correct": True}]}])
    assert r.questions[0]["answers"][0]["weight"] == Fraction(0)
