"""What the course teaches against what the exam asks (issue 15, item 4): `check` warns about an examined
clause no lesson teaches, a practice twin of an exam question and an option far longer or shorter than its
siblings; the shipped course has none of them and every exam section has applied scenario questions."""
from __future__ import annotations

import shutil
from pathlib import Path

from sopcoach.content.check import (OPTION_LENGTH_GAP, TWIN_SIMILARITY, check_paths, odd_length_options,
                                    practice_twins, stem_similarity, untaught_exam_clauses)
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank
from support import ROOT


def _bank(tmp_path: Path, name: str, text: str, playbook) -> object:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return load_bank([f], playbook)


#: An exam question (section product_knowledge) that examines the quote limits.
EXAM_ON_QUOTE_LIMITS = """\
questions:
  - id: q-limits
    type: true_false
    section: product_knowledge
    clauses: [product-catalogue, quote-limits]
    text: {zh-CN: 销售代表可以独立报价12万元。, en: A sales representative may quote 120000 CNY alone.}
    answer: false
"""


def test_an_examined_clause_no_lesson_teaches_is_named_at_its_question(tmp_path, playbook, blueprint):
    """A course whose lessons drop the quote limits gets one warning at the exam question's clauses line."""
    for part in ("playbook", "lessons"):
        shutil.copytree(ROOT / part, tmp_path / part)
    for nb in (tmp_path / "lessons").glob("*.ipynb"):
        text = nb.read_text(encoding="utf-8")
        nb.write_text(text.replace('\\"quote-limits\\", ', "").replace(', \\"quote-limits\\"', ""), encoding="utf-8")
    course = load_playbook(tmp_path / "playbook")
    assert not any("quote-limits" in x.clauses for x in course.lessons)
    bank = _bank(tmp_path, "exam.yaml", EXAM_ON_QUOTE_LIMITS, playbook)
    [w] = untaught_exam_clauses(course, bank, blueprint)
    assert (w.severity, w.path.endswith("exam.yaml"), w.line, w.field) == ("warning", True, 5, "questions[0].clauses")
    assert "clause 'quote-limits' is examined by 1 exam question(s) (section product_knowledge)" in w.message
    assert "add it to a clauses(...) call of a lesson notebook in lessons/" in w.message
    assert untaught_exam_clauses(playbook, bank, blueprint) == []  # the shipped lessons teach both clauses


def test_the_product_catalogue_is_taught_by_a_lesson_with_practice(playbook, bank, inst):
    """The product questions of the exam are taught: a lesson shows the catalogue clause and practises it."""
    examined = {c for q in bank.in_section("product_knowledge") for c in q.clauses}
    [lesson] = [x for x in playbook.lessons if "product-catalogue" in x.clauses]
    assert "product-catalogue" in examined and lesson.tool == "catalogue"
    practice = inst.practice().in_section(lesson.id)
    assert len(practice) >= 3 and all("product-catalogue" in q.clauses for q in practice)
    assert untaught_exam_clauses(playbook, bank) == []


#: A practice question that asks the exam's question `cm-a-cadence` in other words, and one with another key.
PRACTICE_TWIN = """\
questions:
  - id: pr-twin
    type: numeric
    section: customers
    clauses: [follow-up-frequency]
    text: {zh-CN: A类客户每周最少要跟进多少次?, en: At least how many times a week is a class A customer followed up?}
    answer_from: tier.A.min_weekly_follow_ups
  - id: pr-other-key
    type: numeric
    section: customers
    clauses: [follow-up-frequency]
    text: {zh-CN: A类客户每周最少要跟进多少次?再加一次是多少?, en: 'At least how many times a week is a class A customer followed up, plus one?'}
    answer: 4
"""


def test_a_practice_twin_of_an_exam_question_is_named_with_both_places(tmp_path, playbook, bank):
    """Same key and a stem at least TWIN_SIMILARITY alike: one warning at the practice question naming the exam one."""
    practice = _bank(tmp_path, "practice.yaml", PRACTICE_TWIN, playbook)
    assert stem_similarity(practice["pr-twin"], bank["cm-a-cadence"]) >= TWIN_SIMILARITY
    [w] = practice_twins(bank, practice)
    assert (w.severity, w.line, w.field) == ("warning", 2, "questions[0]")
    assert "'pr-twin' is a twin of exam question 'cm-a-cadence' (quizzes/bank/customer_management.yaml:" in w.message
    assert "rewrite it as a different situation with a different answer" in w.message


def test_no_practice_question_shares_stem_and_key_with_an_exam_question(bank, inst):
    """The shipped practice pool is no answer oracle: no twin of any exam question."""
    assert practice_twins(bank, inst.practice()) == []


#: One give-away option (far longer) and one throw-away (far shorter) among four.
ODD_OPTIONS = """\
questions:
  - id: q-odd
    type: single_choice
    section: sales_process
    clauses: [quote-limits]
    text: {zh-CN: 谁审批?, en: Who approves?}
    options:
      - {id: a, text: {zh-CN: 客户经理, en: Account manager}}
      - {id: b, text: {zh-CN: 销售主管, en: Sales supervisor}, correct: true}
      - {id: c, text: {zh-CN: 销售总监, en: Sales director}}
      - {id: d, text: {zh-CN: 财务, en: Finance}}
      - {id: e, text: {zh-CN: 由客户自己决定是否需要审批以及由谁审批, en: The customer decides whether approval is needed and by whom}}
"""


#: One option far shorter than the other three.
SHORT_OPTION = """\
questions:
  - id: q-short
    type: single_choice
    section: sales_process
    clauses: [quote-limits]
    text: {zh-CN: 谁审批?, en: Who approves?}
    options:
      - {id: a, text: {zh-CN: 由客户经理审批这份报价, en: The account manager approves the quote}}
      - {id: b, text: {zh-CN: 由销售主管审批这份报价, en: The sales supervisor approves the quote}, correct: true}
      - {id: c, text: {zh-CN: 由销售总监审批这份报价, en: The sales director approves the quote}}
      - {id: d, text: {zh-CN: 财务, en: Finance}}
"""


def test_an_option_much_longer_than_its_siblings_is_named(tmp_path, playbook):
    """Option e (over 2.5x the median length in both languages) is named at its line; the others are quiet."""
    bank = _bank(tmp_path, "odd.yaml", ODD_OPTIONS, playbook)
    [w] = odd_length_options(bank)
    assert (w.severity, w.line, w.field) == ("warning", 12, "questions[0].options[4]")
    assert "option 'e' is much longer than its siblings (zh-CN 19 vs median 4; en 59 vs median 15" in w.message
    assert [(p.severity, p.line) for p in check_paths([tmp_path / "odd.yaml"], ROOT)] == [("warning", 12)]
    short = _bank(tmp_path, "short.yaml", SHORT_OPTION, playbook)
    [w] = odd_length_options(short)
    assert w.field == "questions[0].options[3]" and "option 'd' is much shorter than its siblings" in w.message
    assert OPTION_LENGTH_GAP == 6


def test_the_shipped_content_checks_clean_with_no_warning():
    """`sopcoach check` on the shipped content: no problem and no coverage or quality warning."""
    assert [str(p) for p in check_paths([], ROOT)] == []


def test_every_exam_section_has_scenario_questions(bank, blueprint):
    """Each section the exam draws from holds at least four scenario questions (a situation to apply the SOP to)."""
    for s in blueprint.sections:
        scenarios = [q.id for q in bank.in_section(s.id) if q.is_scenario]
        assert len(scenarios) >= max(4, s.draw // 2), (s.id, scenarios)
