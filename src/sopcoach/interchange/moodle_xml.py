"""Moodle XML: export a bank as ``<quiz>`` with one category per section, and import such files.

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
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from ..content.quizbank import (Matching, MultipleChoice, Numeric, Ordering, ShortAnswer, SingleChoice, TrueFalse,
                                pinned_last)
from ..errors import ContentError, Problem, relpath
from ..i18n import Text
from ._common import ImportOptions, ImportResult, exportable, number, number_text, snap_percent
from .gift import GiftAnswer, GiftQuestion, _letter, add_questions

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
    for q in exportable(questions, notes):  # templates are left out, with a note
        if q.section != section:
            section = q.section
            cat = ET.SubElement(quiz, "question", {"type": "category"})
            c = ET.SubElement(cat, "category")
            ET.SubElement(c, "text").text = f"$course$/top/{section}"
        if isinstance(q, (SingleChoice, MultipleChoice)):
            el = _question(quiz, q, "multichoice", lang)
            single = isinstance(q, SingleChoice)
            ET.SubElement(el, "single").text = "true" if single else "false"
            pinned = [o for o in q.options if pinned_last(o)]
            ET.SubElement(el, "shuffleanswers").text = "false" if pinned else "true"
            ET.SubElement(el, "answernumbering").text = "abc"
            if pinned:
                notes.append(f"{q.id}: option {', '.join(o.id for o in pinned)} is pinned last and Moodle cannot "
                             "pin one option, so the answers are written in display order with shuffling off")
            if isinstance(q, SingleChoice):
                weights = [Fraction(1) if o.correct else Fraction(o.weight or 0) for o in q.options]
            elif q.weighted:
                weights = [Fraction(o.weight or 0) for o in q.options]
            else:
                nc = sum(o.correct for o in q.options)
                weights = [Fraction(1, nc) if o.correct else Fraction(-1, len(q.options) - nc) for o in q.options]
            graded = sorted(zip(q.options, weights), key=lambda ow: pinned_last(ow[0]))  # stable: display order
            for o, w in graded:
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


# -- Moodle XML -> bank ------------------------------------------------------------------------

#: Moodle text formats (the ``format`` attribute) as the importers' text formats.
_FORMATS = {"html": "html", "moodle_auto_format": "moodle", "plain_text": "plain", "markdown": "markdown"}

#: Question types sopcoach cannot score: reported as skipped with these reasons.
XML_SKIP_REASONS = {
    "description": "description (text without answers): sopcoach cannot score it and does not import it; "
                   "put its text into the 'scenario' of the questions that need it",
    "essay": "essay (free text graded by hand): sopcoach cannot score it",
    "cloze": "embedded answers (Cloze): sopcoach cannot score several gaps in one question; split it into "
             "one question per gap",
    "multianswer": "embedded answers (Cloze): sopcoach cannot score several gaps in one question; split it "
                   "into one question per gap",
}


class _LineBuilder(ET.TreeBuilder):
    """A tree builder that remembers the line each ``<question>`` starts on."""

    def __init__(self) -> None:
        super().__init__()
        self.parser: Any = None
        self.lines: dict[ET.Element, int] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> ET.Element:
        el = super().start(tag, attrs)
        if tag == "question" and self.parser is not None:
            self.lines[el] = self.parser.parser.CurrentLineNumber
        return el


def _child_text(el: ET.Element | None, tag: str = "text") -> str:
    """The text of ``el``'s ``<tag>`` child (CDATA included), empty when missing."""
    if el is None:
        return ""
    child = el.find(tag)
    return (child.text or "") if child is not None else ""


def _rich(el: ET.Element | None, default: str = "html") -> tuple[str, str]:
    """A Moodle text element (``<questiontext format="html"><text>...``) as (text, importer format)."""
    if el is None:
        return "", default
    return _child_text(el), _FORMATS.get(el.get("format", ""), default)


def _fraction(el: ET.Element, line: int) -> Fraction:
    try:
        return snap_percent(el.get("fraction", "0").strip() or "0")
    except ArithmeticError:
        raise ValueError(f"line {line}: fraction '{el.get('fraction')}' is not a number") from None


def parse_moodle_xml(root: ET.Element, lines: dict[ET.Element, int]) -> list[GiftQuestion]:
    """Read a Moodle XML ``<quiz>`` into items as the GIFT reader gives them; categories applied.

    Category pseudo-questions are not items; every other ``<question>`` is one (types sopcoach
    cannot score, and malformed ones, with ``qtype`` ``invalid`` and ``error``, are kept to be
    reported).
    """
    out: list[GiftQuestion] = []
    category: str | None = None
    for el in root.iter("question"):
        line = lines.get(el, 0)
        qtype = el.get("type", "")
        if qtype == "category":
            category = _child_text(el.find("category")).strip() or None
            continue
        q = GiftQuestion(line=line, qtype=qtype, category=category)
        q.name = (el.findtext("idnumber") or "").strip() or _child_text(el.find("name")).strip() or None
        q.text, q.fmt = _rich(el.find("questiontext"))
        q.general_feedback, q.general_feedback_fmt = _rich(el.find("generalfeedback"))
        grade = (el.findtext("defaultgrade") or "").strip()
        q.meta = {"id": q.name} if q.name else {}
        if grade and number(grade) is not None and number(grade) != 1:
            q.meta["points"] = number_text(number(grade))  # type: ignore[arg-type]
        try:
            _read_answers(q, el, qtype)
        except ValueError as exc:
            q.qtype, q.error = "invalid", str(exc)
        out.append(q)
    return out


def _answer_of(a: ET.Element, q: GiftQuestion, default_fmt: str = "plain") -> GiftAnswer:
    text, fmt = _child_text(a), _FORMATS.get(a.get("format", ""), default_fmt)
    fb, fb_fmt = _rich(a.find("feedback"))
    return GiftAnswer(text=text, fmt=fmt, fraction=_fraction(a, q.line), feedback=fb, feedback_fmt=fb_fmt,
                      line=q.line)


def _read_answers(q: GiftQuestion, el: ET.Element, qtype: str) -> None:
    """Fill ``q``'s answers from the ``<answer>`` / ``<subquestion>`` children; ValueError when malformed."""
    answers = el.findall("answer")
    if qtype in XML_SKIP_REASONS:
        return
    if qtype == "multichoice":
        q.answers = [_answer_of(a, q, "html") for a in answers]
        if len(q.answers) < 2:
            raise ValueError("a multiple-choice question needs at least 2 answers")
        single = (el.findtext("single") or "").strip().lower()
        full = [a for a in q.answers if a.fraction == 1]
        q.single = single in ("true", "1") if single else (len(full) == 1 and all(
            a.fraction <= 0 for a in q.answers if a is not full[0]))
        if q.single and not full:
            raise ValueError("a single-answer multiple-choice question with no answer worth 100%: no answer is "
                             "fully right (set one answer's grade to 100% or make it multiple-answer)")
    elif qtype == "truefalse":
        truth = [a for a in answers if _child_text(a).strip().lower() == "true"]
        falsity = [a for a in answers if _child_text(a).strip().lower() == "false"]
        if len(truth) != 1 or len(falsity) != 1:
            raise ValueError("a true/false question needs one 'true' and one 'false' answer")
        q.truth = _fraction(truth[0], q.line) == 1
        q.feedback_true = _rich(truth[0].find("feedback"))
        q.feedback_false = _rich(falsity[0].find("feedback"))
    elif qtype == "shortanswer":
        q.answers = [_answer_of(a, q) for a in answers if _child_text(a).strip()]
        if not q.answers:
            raise ValueError("a short-answer question needs at least one answer")
        if (el.findtext("usecase") or "0").strip() == "1":
            q.meta = {**(q.meta or {}), "case_sensitive": [True] * len(q.answers)}
    elif qtype == "numerical":
        for a in answers:
            ga = _answer_of(a, q)
            if ga.text.strip() == "*":
                q.wrong_feedback = (ga.feedback, ga.feedback_fmt)
                continue
            value, tol = number(ga.text), number(a.findtext("tolerance") or "0")
            if value is None or tol is None:
                raise ValueError(f"numerical answer '{ga.text.strip()}' or its tolerance is not a number")
            ga.value, ga.tolerance = value, abs(tol)
            q.answers.append(ga)
        if not q.answers:
            raise ValueError("a numerical question needs at least one numeric answer")
        unit = (el.findtext("units/unit/unit_name") or "").strip()
        if unit:
            q.meta = {**(q.meta or {}), "unit": {"zh-CN": unit, "en": unit}}
    elif qtype == "matching":
        q.qtype = "match"
        for sub in el.findall("subquestion"):
            q.subquestions.append((_child_text(sub), _FORMATS.get(sub.get("format", ""), "html"),
                                   _child_text(sub.find("answer")), q.line))
        if sum(1 for t, *_ in q.subquestions if t.strip()) < 2:
            raise ValueError("a matching question needs at least 2 pairs")
    elif qtype == "ordering":
        q.qtype = "match"
        q.meta = {**(q.meta or {}), "type": "ordering", "ids": [_letter(i) for i in range(len(answers))]}
        for i, a in enumerate(answers, 1):
            q.subquestions.append((_child_text(a), _FORMATS.get(a.get("format", ""), "html"), str(i), q.line))
    else:
        raise ValueError(f"question type '{qtype}' is not one sopcoach can import (multichoice, truefalse, "
                         "shortanswer, numerical, matching, ordering)")


#: Moodle's text format numbers (``questiontextformat`` in backups) as the importers' formats.
_FORMAT_NUMBERS = {"0": "moodle", "1": "html", "2": "plain", "4": "markdown"}


def _backup_answer(a: ET.Element, q: GiftQuestion) -> GiftAnswer:
    fraction = number(a.findtext("fraction") or "0")
    if fraction is None:
        raise ValueError(f"fraction '{a.findtext('fraction')}' is not a number")
    return GiftAnswer(text=a.findtext("answertext") or "",
                      fmt=_FORMAT_NUMBERS.get((a.findtext("answerformat") or "").strip(), "plain"),
                      fraction=snap_percent(number_text(fraction * 100)), feedback=a.findtext("feedback") or "",
                      feedback_fmt=_FORMAT_NUMBERS.get((a.findtext("feedbackformat") or "").strip(), "html"),
                      line=q.line)


def parse_moodle_backup(root: ET.Element, lines: dict[ET.Element, int]) -> list[GiftQuestion]:
    """Read a Moodle *backup* question file (``<question_categories>``, a course backup's questions.xml).

    Each ``<question_category>``'s name is the category of its questions; ``multichoice``,
    ``truefalse`` and ``shortanswer`` are read (fractions are 0..1 there, formats numbers); other
    types are kept as ``invalid`` items with the reason.
    """
    out: list[GiftQuestion] = []
    for cat in root.iter("question_category"):
        category = (cat.findtext("name") or "").strip() or None
        for el in cat.iterfind("questions/question"):
            qtype = (el.findtext("qtype") or "").strip()
            q = GiftQuestion(line=lines.get(el, 0), qtype=qtype, category=category,
                             name=(el.findtext("idnumber") or "").strip() or (el.findtext("name") or "").strip() or None)
            q.text = el.findtext("questiontext") or ""
            q.fmt = _FORMAT_NUMBERS.get((el.findtext("questiontextformat") or "").strip(), "html")
            q.general_feedback = el.findtext("generalfeedback") or ""
            q.general_feedback_fmt = _FORMAT_NUMBERS.get((el.findtext("generalfeedbackformat") or "").strip(), "html")
            grade = number(el.findtext("defaultmark") or "")
            q.meta = {"points": number_text(grade)} if grade is not None and grade != 1 else {}
            plugin = el.find(f"plugin_qtype_{qtype}_question")
            answers = plugin.findall("answers/answer") if plugin is not None else []
            try:
                if qtype in XML_SKIP_REASONS:
                    pass
                elif qtype == "multichoice" and plugin is not None:
                    q.answers = [_backup_answer(a, q) for a in answers]
                    if len(q.answers) < 2:
                        raise ValueError("a multiple-choice question needs at least 2 answers")
                    q.single = (plugin.findtext("multichoice/single") or "1").strip() == "1"
                    if q.single and not any(a.fraction == 1 for a in q.answers):
                        raise ValueError("a single-answer multiple-choice question with no answer worth 100%")
                elif qtype == "truefalse" and plugin is not None:
                    by_id = {a.get("id"): a for a in answers}
                    t = by_id.get((plugin.findtext("truefalse/trueanswer") or "").strip())
                    f = by_id.get((plugin.findtext("truefalse/falseanswer") or "").strip())
                    if t is None or f is None:
                        raise ValueError("a true/false question needs its true and false answers")
                    q.truth = _backup_answer(t, q).fraction == 1
                    q.feedback_true = (t.findtext("feedback") or "", "html")
                    q.feedback_false = (f.findtext("feedback") or "", "html")
                elif qtype == "shortanswer" and plugin is not None:
                    q.answers = [_backup_answer(a, q) for a in answers if (a.findtext("answertext") or "").strip()]
                    if not q.answers:
                        raise ValueError("a short-answer question needs at least one answer")
                    if (plugin.findtext("shortanswer/usecase") or "0").strip() == "1":
                        q.meta["case_sensitive"] = [True] * len(q.answers)
                else:
                    raise ValueError(f"question type '{qtype}' is not read from Moodle backup files (multichoice, "
                                     "truefalse, shortanswer are); export it from the question bank as Moodle XML")
            except ValueError as exc:
                q.qtype, q.error = "invalid", str(exc)
            out.append(q)
    return out


def import_moodle_xml(path: Path | str, text: str | None = None, options: ImportOptions | None = None,
                      taken_ids: set[str] | None = None) -> ImportResult:
    """Import a Moodle XML question file (``<quiz>``): one :class:`ItemResult` per question.

    A course backup's question file (``<question_categories>``) is read too, for the types
    :func:`parse_moodle_backup` knows.

    Parsed with defusedxml (no entity expansion bombs, no external entities). Categories become
    sections; ``idnumber`` (else ``name``) the id; ``defaultgrade`` the points; HTML texts (CDATA or
    escaped) are turned into plain text and multilang spans into both languages. Types map back as
    :func:`export_moodle_xml` writes them; descriptions, essays, Cloze and unknown types are
    skipped with their line and reason. Parameters and return value as
    :func:`sopcoach.interchange.gift.import_gift`.
    """
    result = ImportResult(relpath(path), "moodle-xml")
    try:
        data = text.encode("utf-8") if text is not None else Path(path).read_bytes()
    except OSError as exc:
        result.problems.append(Problem(result.path, 0, 0, "", f"cannot read the file: {exc}"))
        return result
    target = _LineBuilder()
    parser = DefusedXMLParser(target=target)
    target.parser = parser
    try:
        parser.feed(data)
        root = parser.close()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else 0
        result.problems.append(Problem(result.path, line, 0, "", f"not well-formed XML: {exc}"))
        return result
    except DefusedXmlException as exc:
        result.problems.append(Problem(result.path, 0, 0, "", f"refused XML: {exc!r} (entity declarations and "
                                       "external references are not read)"))
        return result
    if root.tag == "question_categories":
        items = parse_moodle_backup(root, target.lines)
    elif root.tag == "quiz":
        items = parse_moodle_xml(root, target.lines)
    else:
        result.problems.append(Problem(result.path, 1, 0, "", f"<{root.tag}> is not a Moodle XML question file "
                                       "(<quiz>); export the questions from Moodle's question bank as "
                                       "'Moodle XML format'"))
        return result
    return add_questions(result, items, options, taken_ids, XML_SKIP_REASONS)
