"""GIFT import (as Moodle's importer reads it), shared case 13, real teachers' files, and the round trip."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from pydantic import TypeAdapter

from sopcoach.certification.scoring import credit
from sopcoach.content.quizbank import Question
from sopcoach.interchange.gift import export_gift, import_gift, parse_gift
from support import CASES, SHARED

QUIZ = SHARED / "data" / "quiz"
MOODLE_GIFT = QUIZ / "moodle_fixtures" / "moodle_fixture_questions.gift.txt"
ADAPTER = TypeAdapter(Question)


def _q(result, qid):
    return ADAPTER.validate_python(next(q for q in result.questions if q["id"] == qid))


@pytest.fixture(scope="module")
def moodle():
    return import_gift(MOODLE_GIFT)


# -- Moodle's own fixture -------------------------------------------------------------------------

def test_moodle_fixture_has_the_nine_questions_moodle_imports(moodle):
    """Moodle imports 9 questions from its fixture; sopcoach accounts for the same 9 items."""
    assert len(moodle.items) == 9 and moodle.imported + len(moodle.skipped) == 9


def test_moodle_fixture_types_follow_moodles_rules():
    """Each item gets the type Moodle's importer gives it, in file order."""
    assert [q.qtype for q in parse_gift(MOODLE_GIFT.read_text(encoding="utf-8"))] == [
        "essay", "match", "multichoice", "multichoice", "numerical", "shortanswer", "truefalse", "truefalse",
        "truefalse"]


def test_moodle_fixture_essay_is_reported_with_its_line(moodle):
    """The essay ('How are you? {}') cannot be scored and is reported at line 2."""
    assert [(i.line, i.kind) for i in moodle.skipped] == [(2, "essay")]


def test_moodle_fixture_matching_pairs_and_extra_answer(moodle):
    """'Moodle activities' pairs four descriptions with Forum, Choice, Database, Wiki; 'Chat' is an extra answer."""
    q = _q(moodle, "Moodle-activities")
    assert [p.answer.en for p in q.pairs] == ["Forum", "Choice", "Database", "Wiki"]
    assert [p.prompt.en for p in q.pairs][0] == "An activity supporting asynchronous discussions."
    assert [o.text.en for o in q.distractors] == ["Chat"]


def test_moodle_fixture_html_question_text_becomes_plain(moodle):
    """'[html]Match the <b>activity</b>...' keeps its words without the markup."""
    assert _q(moodle, "Moodle-activities").text.en == "Match the activity to the description."


def test_moodle_fixture_single_choice_key_and_feedback(moodle):
    """Q2: 'yellow' is the key; every answer keeps its feedback (the [html]/[plain] prefixes removed)."""
    q = _q(moodle, "Q2")
    assert [(o.text.en, o.correct) for o in q.options] == [("yellow", True), ("red", False), ("blue", False)]
    assert [o.feedback.en for o in q.options] == ["right; good!", "wrong, it's yellow", "wrong, it's yellow"]


def test_moodle_fixture_multiple_response_weights(moodle):
    """colours: yellow and off-beige weigh 50%, red and blue -100%, as Moodle's fractions."""
    q = _q(moodle, "colours")
    assert [(o.text.en, o.weight) for o in q.options] == [
        ("yellow", Fraction(1, 2)), ("red", Fraction(-1)), ("off-beige", Fraction(1, 2)), ("blue", Fraction(-1))]


def test_moodle_fixture_multiple_response_scores_like_moodle(moodle):
    """colours: yellow + off-beige is 100%, yellow + red is 0 (50% - 100%, floored)."""
    q = _q(moodle, "colours")
    ids = {o.text.en: o.id for o in q.options}
    assert credit(q, [ids["yellow"], ids["off-beige"]]) == 1 and credit(q, [ids["yellow"], ids["red"]]) == 0


def test_moodle_fixture_numeric_tolerance_and_wrong_feedback(moodle):
    """Q5 '{#3:2~#Completely wrong}': 3 ± 2, and the wrong-answer feedback is kept."""
    q = _q(moodle, "Q5")
    assert (q.answer, q.tolerance, q.feedback_other.en) == (Decimal(3), Decimal(2), "Completely wrong")


def test_moodle_fixture_numeric_text_after_braces_is_a_gap(moodle):
    """Text after the answer braces makes a missing-word question, as in Moodle ('_____')."""
    assert _q(moodle, "Q5").text.en == 'What is a number from 1 to 5? _____";'


def test_moodle_fixture_short_answer_weights_and_catch_all(moodle):
    """Shortanswer: Frog 100%, Cat 50%, '*' 0% with its feedback."""
    q = _q(moodle, "Shortanswer")
    assert [(a.text, a.weight, a.feedback.en) for a in q.answers] == [
        ("Frog", 1, "Good!"), ("Cat", Fraction(1, 2), "What is it with Moodlers and cats?"),
        ("*", 0, "Completely wrong")]


def test_moodle_fixture_true_false_feedbacks(moodle):
    """Q1 {FALSE#wrong#right}: answering true shows the first feedback, false the second."""
    q = _q(moodle, "Q1")
    assert q.answer is False
    assert q.feedback_true.en == "42 is the Ultimate Answer."
    assert q.feedback_false.en == "You gave the right answer."


def test_moodle_fixture_general_feedback_is_the_explanation(moodle):
    """Q1's '####' general feedback becomes its explanation."""
    assert _q(moodle, "Q1").explanation.en == "This is, of course, a Hitchiker's Guide to the Galaxy reference."


def test_moodle_fixture_t_and_true_are_true(moodle):
    """{T} and {TRUE} both give a true statement; the repeated title gets a distinct id."""
    assert [_q(moodle, i).answer for i in ("2-08-TSL", "2-08-TSL-2")] == [True, True]


# -- shared case 13 -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def case13():
    return import_gift(CASES / "13_gift_numeric_tolerance.gift")


@pytest.mark.parametrize("qid, typed, expected", [
    ("Q-num-01", "3.13", 1), ("Q-num-01", "3.15", 1), ("Q-num-01", "3.12", 0), ("Q-num-01", "3.16", 0),
    ("Q-num-02", "1", 1), ("Q-num-02", "5", 1), ("Q-num-02", "5.0001", 0), ("Q-num-02", "0.9999", 0),
    ("Q-num-03", "3", 1), ("Q-num-03", "4", Fraction(1, 2)),
])
def test_case13_numeric_boundaries(case13, qid, typed, expected):
    """Case 13: tolerance ends and range ends are inclusive and exact; 4 earns 50% on Q-num-03."""
    assert credit(_q(case13, qid), typed) == expected


def test_case13_integer_range_is_kept_as_a_range(case13):
    """Case 13: '{#1..5}' with integers parses as min 1, max 5."""
    q = _q(case13, "Q-num-02")
    assert (q.min, q.max) == (Decimal(1), Decimal(5))


def test_case13_general_feedback_is_attached(case13):
    """Case 13: Q-num-03's '####' general feedback is its explanation."""
    assert _q(case13, "Q-num-03").explanation.en == "The playbook says 3 working days."


# -- teachers' files --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, items, imported", [
    ("EM-U4-p32_33-Review.gift", 10, 6), ("U1-p8_9-Reading-Coachella.gift", 2, 2),
    ("U4-p42_43-Listening.gift", 14, 12), ("U5-p52-Reading-The_death_of_cooking.gift", 15, 12),
    ("U6-p68_69-ProgressTest2.gift", 7, 6)])
def test_teacher_file_every_item_accounted_for(name, items, imported):
    """Each real teachers' file: every item is imported or skipped with a line and a reason."""
    r = import_gift(QUIZ / "gift" / name)
    assert (len(r.items), r.imported) == (items, imported)
    assert all(i.line > 0 and i.reason for i in r.skipped) and not r.problems


def test_teacher_file_cloze_and_descriptions_are_reported():
    """EM-U4: three embedded-answer (Cloze) parts and one description, each with its line."""
    r = import_gift(QUIZ / "gift" / "EM-U4-p32_33-Review.gift")
    assert [(i.line, i.kind) for i in r.skipped] == [(2, "cloze"), (8, "cloze"), (14, "cloze"), (20, "description")]


def test_teacher_file_tilde_equals_is_the_key():
    """U4 1.1 '~=desert.': the key is 'desert.', with three options, as in Moodle."""
    r = import_gift(QUIZ / "gift" / "U4-p42_43-Listening.gift")
    q = _q(r, "U4-p42-1.1-Pre-listening-Antartica")
    assert [(o.text.en, o.correct) for o in q.options] == [
        ("volcano.", False), ("desert.", True), ("mountain range.", False)]


def test_teacher_file_partial_and_negative_weights():
    """U5 7.3 '~%100%raised ~%-100%grew' keeps weights 1 and -1; ticking both scores 0."""
    r = import_gift(QUIZ / "gift" / "U5-p52-Reading-The_death_of_cooking.gift")
    q = _q(r, "U5-p52-7.3-Collocations")
    assert [o.weight for o in q.options] == [1, -1] and credit(q, ["a", "b"]) == 0


def test_teacher_file_several_short_answers():
    """U6 4.5 accepts its three wordings."""
    r = import_gift(QUIZ / "gift" / "U6-p68_69-ProgressTest2.gift")
    q = _q(r, "U6-p68-69-ProgressTest2-4.5")
    assert [a.text for a in q.answers] == ["was still doing his homework", "still hadn't finished his homework",
                                           "still had not finished his homework"]


def test_teacher_file_category_becomes_section():
    """U1's '$CATEGORY: $course$/top/Gold B2, Unit 1' becomes section 'Gold-B2-Unit-1'."""
    r = import_gift(QUIZ / "gift" / "U1-p8_9-Reading-Coachella.gift")
    assert {q["section"] for q in r.questions} == {"Gold-B2-Unit-1"}


def test_teacher_file_matching_with_html_sides():
    """U1 Coachella: seven '<p>' paragraphs pair with their headings."""
    r = import_gift(QUIZ / "gift" / "U1-p8_9-Reading-Coachella.gift")
    q = _q(r, "U1-p8-9-Reading-Coachella-2-reading-for-gist")
    assert len(q.pairs) == 7 and q.pairs[0].answer.en == "4. The original inspiration of Coachella"
    assert q.pairs[0].prompt.en.startswith("A. When the American 90s rock band")


# -- syntax -------------------------------------------------------------------------------------------

def test_escapes_are_resolved():
    r"""'\:', '\{', '\}', '\=', '\~', '\#', '\\' and '\n' give their characters."""
    r = import_gift("x.gift", "::e::a\\:b \\{x\\} \\= \\~ \\# c\\\\d\\nz{TRUE}\n")
    assert r.questions[0]["text"]["en"] == "a:b {x} = ~ # c\\d\nz"


def test_crlf_and_cyrillic_and_chinese():
    """CRLF line ends, Cyrillic and Chinese texts import unchanged."""
    r = import_gift("x.gift", "::r::Ответ? {\r\n=да#верно\r\n~нет\r\n}\r\n\r\n::z::客户分级有几级?{#3}\r\n")
    assert [o["text"]["en"] for o in r.questions[0]["options"]] == ["да", "нет"]
    assert r.questions[1]["text"] == {"zh-CN": "客户分级有几级?", "en": "客户分级有几级?"}


def test_markdown_text_is_kept_as_written():
    """A [markdown] text keeps its markdown."""
    r = import_gift("x.gift", "::m::[markdown]Is **this** bold?{T}\n")
    assert r.questions[0]["text"]["en"] == "Is **this** bold?"


def test_comments_and_title_are_not_text():
    """'//' lines are comments and '::title::' becomes the id, not text."""
    r = import_gift("x.gift", "// comment\n::Q-1:: // not a comment here\n{T}\n")
    assert (r.questions[0]["id"], r.questions[0]["text"]["en"]) == ("Q-1", "// not a comment here")


def test_multilang_spans_give_both_languages():
    """Moodle multilang spans fill zh-CN and en separately, without a single-language note."""
    r = import_gift("x.gift", '::b::[html]<span lang\\="zh_cn" class\\="multilang">阶段?</span>'
                              '<span lang\\="en" class\\="multilang">Stage?</span>{T}\n')
    assert r.questions[0]["text"] == {"zh-CN": "阶段?", "en": "Stage?"} and r.single_language == 0


def test_one_third_weights_are_exact():
    """Moodle's '%33.33333%' reads as exactly 1/3, so three right picks give full credit."""
    r = import_gift("x.gift", "::w::Pick{~%33.33333%a ~%33.33333%b ~%33.33333%c ~%-100%d}\n")
    assert credit(_q(r, "w"), ["a", "b", "c"]) == 1


def test_weights_not_summing_to_100_are_kept_and_noted():
    """Three 33.3% answers keep 0.333 each, and the item notes that full credit is out of reach."""
    r = import_gift("x.gift", "::w::Pick{~%33.3%a ~%33.3%b ~%33.3%c ~%-100%d}\n")
    assert [o.weight for o in _q(r, "w").options][:3] == [Fraction(333, 1000)] * 3
    assert r.items[0].notes == ["the positive weights add up to 99.9%: no answer reaches full credit (as in Moodle)"]


def test_select_all_loophole_is_noted():
    """Weights without negatives (case 09's loophole) import as written, with a note."""
    r = import_gift("x.gift", "::w::Pick{~%50%a ~%50%b ~c}\n")
    assert credit(_q(r, "w"), ["a", "b", "c"]) == 1
    assert "ticking every option earns full credit" in r.items[0].notes[0]


def test_right_minus_wrong_weights_import_as_plain_keys():
    """'+50%/-33.33333%' weights (sopcoach's own rule) import as correct flags without weights."""
    r = import_gift("x.gift", "::w::Pick{~%50%a ~%50%b ~%-33.33333%c ~%-33.33333%d ~%-33.33333%e}\n")
    q = _q(r, "w")
    assert not q.weighted and [o.correct for o in q.options] == [True, True, False, False, False]


def test_single_choice_partial_weight():
    """'{=right ~%50%half ~wrong}' is single choice with half credit for 'half'."""
    r = import_gift("x.gift", "::s::Pick{=right ~%50%half ~wrong}\n")
    assert [credit(_q(r, "s"), i) for i in "abc"] == [1, Fraction(1, 2), 0]


def test_description_and_unbalanced_braces_are_reported():
    """A description and a question with '{' but no '}' are skipped with line and reason."""
    r = import_gift("x.gift", "Just text.\n\n::b::Broken {=a ~b\n")
    assert [(i.line, i.kind) for i in r.skipped] == [(1, "description"), (3, "item")]
    assert r.skipped[1].reason.startswith("unbalanced braces")


def test_embedded_answers_are_reported_not_dropped():
    """A Cloze item '{1:SA:=x}' is skipped with its line."""
    r = import_gift("x.gift", "\n\n::c::Fill {1:SA:=like} it\n")
    assert [(i.line, i.kind) for i in r.skipped] == [(3, "cloze")]


def test_answer_lines_are_located():
    """A bad weight is reported at the line of its answer."""
    r = import_gift("x.gift", "::n::Pick{\n~%--5%a\n~b\n}\n")
    assert r.skipped[0].reason == "line 2: weight %--5% is not a number; write e.g. %-50%"


def test_non_utf8_file_is_a_problem(tmp_path):
    """A file that is not UTF-8 gives one problem saying to save it as UTF-8."""
    f = tmp_path / "gbk.gift"
    f.write_bytes("::q::客户?{T}".encode("gbk"))
    r = import_gift(f)
    assert not r.items and "save it as UTF-8" in r.problems[0].message


# -- round trip ---------------------------------------------------------------------------------------

EXCLUDE = {"key_from", "answer_from", "derived"}


def test_certification_bank_survives_the_round_trip(bank):
    """The shipped bank (resolved) exported to GIFT and imported again has the same questions, keys and weights."""
    text, notes = export_gift(bank.questions.values())
    fixed = {qid: q for qid, q in bank.questions.items() if q.variant is None}  # templates have no fixed key
    assert [n.split(":")[0] for n in notes if "a template" in n] == [q.id for q in bank.templates()]
    back = import_gift("cert.gift", text)
    assert back.imported == len(fixed) and not back.skipped
    got = {q["id"]: ADAPTER.validate_python(q).model_dump(exclude=EXCLUDE) for q in back.questions}
    assert got == {qid: q.model_dump(exclude=EXCLUDE) for qid, q in fixed.items()}


def test_extension_types_survive_the_round_trip():
    """Weighted choices, ranges, several numeric answers, short answers and matching round-trip exactly."""
    src = import_gift(MOODLE_GIFT)
    src13 = import_gift(CASES / "13_gift_numeric_tolerance.gift")
    originals = [ADAPTER.validate_python(q) for q in src.questions + src13.questions]
    text, _ = export_gift(originals)
    back = import_gift("again.gift", text)
    assert [ADAPTER.validate_python(q) for q in back.questions] == originals


def test_export_writes_a_category_per_section(bank):
    """Each run of one section starts with a '$CATEGORY:' line."""
    text, _ = export_gift(bank.questions.values())
    assert text.count("$CATEGORY: $course$/top/") == len({q.section for q in bank.questions.values()})


def test_export_single_language_is_plain_text(bank):
    """--lang en writes [plain] English texts without multilang spans."""
    text, _ = export_gift(bank.questions.values(), lang="en")
    assert 'class\\="multilang"' not in text and "::cr-tracking-purpose::[plain]Which indicators" in text


TIGHT = ("// a hand-typed file without blank lines\n"
         "::Q1:: 2+2? {=4 ~5 ~6}\n"
         "::Q2:: Capital of France? {=Paris ~Rome}\n"
         "Leads go back to the pool after 7 days. {T}\n"
         "\n"
         "::Q4:: First stage? {\n=Lead\n~Won\n}\n"
         "::Q5:: Pi? {#3.14:0.01}\n")


def test_questions_without_blank_lines_are_separated_at_the_closing_brace():
    """5 questions, blank lines missing: 5 items, all imported, each glued one with a note at its line."""
    r = import_gift("tight.gift", TIGHT)
    assert (r.imported, len(r.skipped), len(r.items)) == (5, 0, 5)
    assert [(i.line, q["type"]) for i, q in zip(r.items, r.questions)] == [
        (2, "single_choice"), (3, "single_choice"), (4, "true_false"), (6, "single_choice"), (10, "numeric")]
    assert [q["text"]["en"] for q in r.questions[:3]] == ["2+2?", "Capital of France?",
                                                           "Leads go back to the pool after 7 days."]
    glued = [i.line for i in r.items if any(n.startswith("no blank line before this question") for n in i.notes)]
    assert glued == [3, 4, 10]


def test_missing_word_text_after_the_brace_stays_one_question():
    """Text continuing on the next line after '}' (no other answer section) is the same question."""
    r = import_gift("mw.gift", "Moodle costs {~lots of money =nothing}\nto download.\n")
    assert (r.imported, len(r.items)) == (1, 1)
    assert r.questions[0]["text"]["en"] == "Moodle costs _____\nto download."


def test_two_answer_sections_on_one_line_give_the_right_fix():
    """Two {...} on one line cannot be told apart: skipped, and the reason says to put a blank line between."""
    r = import_gift("x.gift", "::A:: One? {=a ~b} ::B:: Two? {=c ~d}\n")
    assert (r.imported, len(r.skipped)) == (0, 1)
    assert "if these are separate questions, end each at its '}' and start the next on a new line after a " \
           "blank line" in r.skipped[0].reason
