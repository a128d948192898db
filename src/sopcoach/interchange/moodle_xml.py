"""Moodle XML export: a bank as ``<quiz>`` with one category per section.

Each type maps onto Moodle's own: ``single_choice`` and ``multiple_choice`` become ``multichoice``
(``single`` true/false; right-minus-wrong becomes the grades ``+100/n_correct`` and
``-100/n_wrong``, which Moodle adds up and clamps to 0..100 %, the same rule; weights are written
as they are), ``true_false`` becomes ``truefalse``, ``numeric`` ``numerical`` (a range as its
midpoint and half width), ``short_answer`` ``shortanswer``, ``matching`` ``matching``, and
``ordering`` the ``ordering`` type with ``LONGEST_ORDERED_SUBSET`` grading (sopcoach's rule up to
the divisor; distractors cannot be written and are reported). Texts whose languages differ are
written as Moodle multilang spans in HTML; ``points`` is the default mark; the question id is the
Moodle ``idnumber``. Grades not in Moodle's list (e.g. 1/11) are reported: Moodle asks to round
them on import.
"""
from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from fractions import Fraction
from typing import Any
from collections.abc import Iterable

from ..content.quizbank import Matching, MultipleChoice, Numeric, Ordering, ShortAnswer, SingleChoice, TrueFalse
from ..errors import ContentError, Problem
from ..i18n import Text
from ._common import number_text

#: Grades (percent) Moodle offers; others are rounded or refused on import.
MOODLE_GRADES = {Fraction(100), Fraction(90), Fraction(250, 3), Fraction(80), Fraction(75), Fraction(70),
                 Fraction(200, 3), Fraction(60), Fraction(50), Fraction(40), Fraction(100, 3), Fraction(30),
                 Fraction(25), Fraction(20), Fraction(50, 3), Fraction(100, 7), Fraction(25, 2),
                 Fraction(100, 9), Fraction(10), Fraction(5), Fraction(0)}


def _grade(w: Fraction) -> str:
    p = Fraction(w) * 100
    if p.denominator == 1:
        return str(p.numerator)
    return f"{p.numerator / p.denominator:.7f}".rstrip("0").rstrip(".")


def _html(s: str) -> str:
    return html.escape(s, quote=False).replace("\n", "<br>")


def _render(t: Text, lang: str) -> str:
    if lang == "both" and t.zh_CN != t.en:
        return (f'<span lang="zh_cn" class="multilang">{_html(t.zh_CN)}</span>'
                f'<span lang="en" class="multilang">{_html(t.en)}</span>')
    return _html(t.en if lang == "en" else t.zh_CN)


def _text(parent: ET.Element, tag: str, t: Text | str | None, lang: str, fmt: bool = True) -> ET.Element:
    el = ET.SubElement(parent, tag, {"format": "html"} if fmt else {})
    body = ET.SubElement(el, "text")
    if isinstance(t, Text):
        body.text = _render(t, lang)
    else:
        body.text = t or ""
    return el


def _answer(parent: ET.Element, fraction: str, t: Text | str, lang: str, feedback: Text | None = None,
            **extra: str) -> ET.Element:
    a = ET.SubElement(parent, "answer", {"fraction": fraction, "format": "html" if isinstance(t, Text) else "plain_text"})
    ET.SubElement(a, "text").text = _render(t, lang) if isinstance(t, Text) else t
    for k, v in extra.items():
        ET.SubElement(a, k).text = v
    _text(a, "feedback", feedback, lang)
    return a


def _question(quiz: ET.Element, q: Any, qtype: str, lang: str) -> ET.Element:
    el = ET.SubElement(quiz, "question", {"type": qtype})
    name = ET.SubElement(el, "name")
    ET.SubElement(name, "text").text = q.id
    body = q.text if q.scenario is None else Text.model_validate(
        {"zh-CN": q.scenario.zh_CN + "\n\n" + q.text.zh_CN, "en": q.scenario.en + "\n\n" + q.text.en})
    _text(el, "questiontext", body, lang)
    _text(el, "generalfeedback", q.explanation, lang)
    ET.SubElement(el, "defaultgrade").text = number_text(q.points)
    ET.SubElement(el, "penalty").text = "0"
    ET.SubElement(el, "hidden").text = "0"
    ET.SubElement(el, "idnumber").text = q.id
    return el


def export_moodle_xml(questions: Iterable[Any], lang: str = "both") -> tuple[str, list[str]]:
    """Write resolved questions as a Moodle XML question file; return the XML and notes.

    Parameters
    ----------
    questions : iterable of Question
        In order; a category question starts each run of one section (``$course$/top/<section>``).
    lang : {"both", "zh-CN", "en"}
        ``both`` writes texts whose languages differ as multilang spans.
    """
    quiz = ET.Element("quiz")
    notes: list[str] = []
    section = None
    for q in questions:
        if q.section != section:
            section = q.section
            cat = ET.SubElement(quiz, "question", {"type": "category"})
            c = ET.SubElement(cat, "category")
            ET.SubElement(c, "text").text = f"$course$/top/{section}"
        if isinstance(q, (SingleChoice, MultipleChoice)):
            el = _question(quiz, q, "multichoice", lang)
            single = isinstance(q, SingleChoice)
            ET.SubElement(el, "single").text = "true" if single else "false"
            ET.SubElement(el, "shuffleanswers").text = "true"
            ET.SubElement(el, "answernumbering").text = "abc"
            if isinstance(q, SingleChoice):
                weights = [Fraction(1) if o.correct else Fraction(o.weight or 0) for o in q.options]
            elif q.weighted:
                weights = [Fraction(o.weight or 0) for o in q.options]
            else:
                nc = sum(o.correct for o in q.options)
                weights = [Fraction(1, nc) if o.correct else Fraction(-1, len(q.options) - nc) for o in q.options]
            for o, w in zip(q.options, weights):
                if abs(w) * 100 not in MOODLE_GRADES:
                    notes.append(f"{q.id}: option {o.id} has grade {_grade(w)}%, not in Moodle's list; Moodle "
                                 "asks to round it to the nearest listed grade on import")
                _answer(el, _grade(w), o.text, lang, o.feedback)
        elif isinstance(q, TrueFalse):
            el = _question(quiz, q, "truefalse", lang)
            _answer(el, "100" if q.answer else "0", "true", lang, q.feedback_true)
            _answer(el, "0" if q.answer else "100", "false", lang, q.feedback_false)
        elif isinstance(q, Numeric):
            el = _question(quiz, q, "numerical", lang)
            for a in q.accepted():
                if a.min is not None and a.max is not None:
                    value, tol = (a.min + a.max) / 2, (a.max - a.min) / 2
                elif a.answer is not None:
                    value, tol = a.answer, a.tolerance
                else:  # the bank's validation gives every accepted number an answer or a range
                    raise ContentError([Problem("", 0, 0, f"questions.{q.id}",
                                                "a numeric answer has neither answer nor range")])
                _answer(el, _grade(Fraction(a.weight)), number_text(value), lang, a.feedback,
                        tolerance=number_text(tol))
            if q.feedback_other is not None:
                _answer(el, "0", "*", lang, q.feedback_other, tolerance="0")
            if q.unit is not None:
                units = ET.SubElement(el, "units")
                u = ET.SubElement(units, "unit")
                ET.SubElement(u, "multiplier").text = "1"
                ET.SubElement(u, "unit_name").text = q.unit.en if lang == "en" else q.unit.zh_CN
                ET.SubElement(el, "showunits").text = "3"  # units shown, not graded
                ET.SubElement(el, "unitsleft").text = "0"
        elif isinstance(q, ShortAnswer):
            el = _question(quiz, q, "shortanswer", lang)
            ET.SubElement(el, "usecase").text = "1" if any(a.case_sensitive for a in q.answers) else "0"
            if len({a.case_sensitive for a in q.answers}) > 1:
                notes.append(f"{q.id}: Moodle sets case sensitivity per question; written as case-sensitive")
            for accepted in q.answers:
                _answer(el, _grade(Fraction(accepted.weight)), accepted.text, lang, accepted.feedback)
        elif isinstance(q, Matching):
            el = _question(quiz, q, "matching", lang)
            ET.SubElement(el, "shuffleanswers").text = "true"
            for p in q.pairs:
                sub = ET.SubElement(el, "subquestion", {"format": "html"})
                ET.SubElement(sub, "text").text = _render(p.prompt, lang)
                ans = ET.SubElement(sub, "answer")
                ET.SubElement(ans, "text").text = _render(p.answer, lang)
            for o in q.distractors:
                sub = ET.SubElement(el, "subquestion", {"format": "html"})
                ET.SubElement(sub, "text").text = ""
                ans = ET.SubElement(sub, "answer")
                ET.SubElement(ans, "text").text = _render(o.text, lang)
        elif isinstance(q, Ordering):
            el = _question(quiz, q, "ordering", lang)
            for tag, setting in (("layouttype", "VERTICAL"), ("selecttype", "ALL"), ("selectcount", "0"),
                                 ("gradingtype", "LONGEST_ORDERED_SUBSET"), ("showgrading", "SHOW"),
                                 ("numberingstyle", "none")):
                ET.SubElement(el, tag).text = setting
            for i, o in enumerate(q.items, 1):
                _answer(el, f"{i}.0000000", o.text, lang, o.feedback)
            if q.distractors:
                notes.append(f"{q.id}: Moodle's ordering type has no distractors; "
                             f"{', '.join(o.id for o in q.distractors)} not written")
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n", notes
