"""Aiken import: Moodle's fixture, texts kept verbatim, and contradictions reported with their line."""
from __future__ import annotations

from pathlib import Path

from sopcoach.interchange.aiken import import_aiken
from support import SHARED

FIXTURE = SHARED / "data" / "quiz" / "moodle_fixtures" / "moodle_fixture_questions.aiken.txt"


def test_moodle_fixture_imports_both_questions():
    """Moodle's Aiken fixture gives two single-choice questions, nothing skipped."""
    r = import_aiken(FIXTURE)
    assert (len(r.items), r.imported, [q["type"] for q in r.questions]) == (2, 2, ["single_choice"] * 2)


def test_moodle_fixture_keys():
    """The keys are B (Martin Dougiamas) and A (True), as Moodle reads them."""
    r = import_aiken(FIXTURE)
    keys = [[o["text"]["en"] for o in q["options"] if o.get("correct")] for q in r.questions]
    assert keys == [["Martin Dougiamas"], ["True"]]


def test_moodle_fixture_option_ids_are_letters():
    """Option ids are the lowercase letters a-d."""
    r = import_aiken(FIXTURE)
    assert [o["id"] for o in r.questions[0]["options"]] == ["a", "b", "c", "d"]


def test_html_like_text_is_kept_verbatim():
    """'<html class="cool"> & images' stays text, not markup."""
    r = import_aiken(FIXTURE)
    assert r.questions[1]["text"]["en"] == ("Moodle's abilities include handling user input that includes "
                                            '<html class="cool"> & images:')


def test_several_answer_letters_are_reported():
    """'ANSWER: A, C' is a single-choice item with two keys, reported at its line."""
    r = import_aiken("x.txt", "Q?\nA) one\nB) two\nC) three\nANSWER: A, C\n")
    assert r.skipped[0].line == 1 and r.skipped[0].reason.startswith("line 5: several correct answers 'A, C'")


def test_answer_text_both_correct_and_incorrect_is_reported():
    """The key's text repeated as a wrong option is contradictory and reported with both letters."""
    r = import_aiken("x.txt", "Q?\nA) Yes\nB) No\nC) yes\nANSWER: A\n")
    assert r.skipped[0].reason == ("contradictory: the answer text 'Yes' is both correct (A) and incorrect (C, "
                                   "line 4); remove the repeated option")


def test_repeated_letter_is_reported():
    """Two options labelled B are contradictory."""
    r = import_aiken("x.txt", "Q?\nA) one\nB) two\nB) three\nANSWER: B\n")
    assert r.skipped[0].reason.startswith("contradictory: letter B labels two options (lines 3, 4)")


def test_answer_naming_no_option_is_reported():
    """ANSWER: E with options A-C is reported, naming the options."""
    r = import_aiken("x.txt", "Q?\nA) one\nB) two\nC) three\nANSWER: E\n")
    assert r.skipped[0].reason == "line 5: ANSWER: E names no option (options are A, B, C)"


def test_missing_answer_line_is_reported_and_next_question_imported():
    """A question without ANSWER is skipped; the next question still imports; both are counted."""
    r = import_aiken("x.txt", "Q1?\nA) a\nB) b\n\nQ2?\nA) a\nB) b\nANSWER: B\n")
    assert (len(r.items), r.imported, r.skipped[0].line) == (2, 1, 1)
    assert r.skipped[0].reason.startswith("no 'ANSWER:' line after the options (line 3)")


def test_crlf_and_chinese():
    """CRLF line ends and Chinese texts import; 'A.' works like 'A)'."""
    r = import_aiken("x.txt", "客户分几级?\r\nA. 三级\r\nB. 四级\r\nANSWER: A\r\n")
    assert r.questions[0]["options"][0] == {"id": "a", "text": {"zh-CN": "三级", "en": "三级"}, "correct": True}


# Moodle's question/format/aiken/tests/fixtures/aiken_errors.txt (GPL-3.0-or-later), recreated verbatim.
MOODLE_ERRORS = Path(__file__).parent / "fixtures" / "interchange" / "moodle_aiken_errors.txt"


def test_moodle_error_fixture_imports_both_good_questions():
    """Moodle imports 'A good question' and 'A second good question' (options 'A)text' without a blank)."""
    r = import_aiken(MOODLE_ERRORS)
    assert (r.imported, len(r.skipped), len(r.items)) == (2, 4, 6)
    assert [q["text"]["en"] for q in r.questions] == ["A good question", "A second good question"]
    assert [o["text"]["en"] for o in r.questions[1]["options"]] == ["Incorrect (No space)", "Correct (No space)"]
    assert [o.get("correct", False) for o in r.questions[1]["options"]] == [False, True]
    assert [i.line for i in r.skipped] == [1, 5, 7, 14]


HAND_TYPED = ("What is 2+2?\nA) 3\nB) 4\nANSWER: B\n\nFirst stage?\na) Lead\nb) Qualify\nanswer: a\n\n"
              "Last stage?\nA. Won\nB. Lost\nANSWER: A\n")


def test_hand_typed_question_is_accepted_with_notes_not_glued():
    """Lowercase 'a)' markers and 'answer:' make their own question (with notes), not the next one's stem."""
    r = import_aiken("hand.txt", HAND_TYPED)
    assert (r.imported, len(r.skipped)) == (3, 0)
    assert [q["text"]["en"] for q in r.questions] == ["What is 2+2?", "First stage?", "Last stage?"]
    second = r.questions[1]
    assert [(o["id"], o["text"]["en"], o.get("correct", False)) for o in second["options"]] == [
        ("a", "Lead", True), ("b", "Qualify", False)]
    notes = r.items[1].notes
    assert notes == ["line 7: lowercase option letters accepted as capitals (Moodle's Aiken wants 'A)' or 'A.')",
                     "line 9: 'answer:' accepted as 'ANSWER:' (Moodle's Aiken wants capitals)"]


def test_options_without_answer_line_do_not_swallow_the_next_question():
    """A question lacking 'ANSWER:' is skipped at its line; the next question still imports."""
    r = import_aiken("x.txt", "Q one?\nA) x\nB) y\nQ two?\nA) p\nB) q\nANSWER: A\n")
    assert (r.imported, [(i.line, i.reason) for i in r.skipped]) == (
        1, [(1, "no 'ANSWER:' line after the options (line 3); end each question with e.g. ANSWER: B")])
    assert r.questions[0]["text"]["en"] == "Q two?"


def test_glued_lowercase_marker_is_an_option_with_a_note():
    """A hand-typed ``a)Customer contact`` (no blank after ``)``) is an option, with a note saying so."""
    r = import_aiken("x.txt", "Who calls first?\na)Customer contact\nb)Manager\nANSWER: A\n")
    assert (r.imported, len(r.skipped)) == (1, 0)
    assert [(o["id"], o["text"]["en"]) for o in r.questions[0]["options"]] == [("a", "Customer contact"),
                                                                               ("b", "Manager")]
    assert "line 2: 'a)' with no blank before the option text accepted as an option" in r.items[0].notes


def test_glued_lowercase_dot_stays_text_and_the_reason_names_the_missing_blank():
    """``a.one`` may be a sentence (``e.g.``), so it is not an option; the skip reason says the blank is missing."""
    r = import_aiken("x.txt", "Pick one?\n\na.one\nb.two\nANSWER: A\n")
    assert [(i.line, i.reason) for i in r.skipped] == [
        (1, "0 option(s); a question needs at least 2 (lines like 'A) text'); line(s) 3, 4 lack the blank "
            "after the letter (write 'a. text' or 'A.text')")]
