"""Moodle GIFT: read it as Moodle's importer does, turn it into bank questions, and write it back.

Reading follows Moodle's ``qformat_gift::readquestion`` (question/format/gift/format.php) step by
step, so a file gives the questions and keys Moodle would give it:

- questions are separated by blank lines; where a blank line is missing but a line ends a question
  with its closing ``}`` and a later line opens another answer section, the next question starts
  on the following line (with a note; Moodle itself would read one item); a line starting with
  ``//`` is a comment; CRLF, CR and LF
  line ends and a UTF-8 byte-order mark are accepted;
- ``$CATEGORY: a/b`` switches the category (it becomes the section, see
  :meth:`~sopcoach.interchange._common.Builder.section`);
- ``::title::`` names the question; ``\\:``, ``\\#``, ``\\=``, ``\\{``, ``\\}``, ``\\~``, ``\\\\``
  and ``\\n`` are escapes; ``[html]``, ``[moodle]``, ``[plain]``, ``[markdown]`` set a text's format;
- the first ``{...}`` holds the answers; text after it makes a missing-word question (the gap is
  shown as ``_____``); ``####`` starts the general feedback (the explanation);
- the type follows from the answers, in Moodle's order: none (description), empty (essay), ``#``
  first (numerical), any ``~`` (multiple choice: single answer when an ``=`` is present, else
  several answers with ``%weight%``), ``=`` with ``->`` (matching), ``T``/``TRUE``/``F``/``FALSE``
  (true/false with ``#wrong feedback#right feedback``), otherwise short answer.

Weights are exact fractions: ``%33.33333%`` (Moodle's way of writing one third) reads as 1/3.
Descriptions, essays and embedded answers (Cloze, ``{1:MC:...}``) cannot be scored by sopcoach;
they are reported with their line, as is every other item that does not make a valid question.

Writing (:func:`export_gift`) produces GIFT that Moodle imports, plus one ``// sopcoach: {...}``
comment per question carrying what GIFT has no place for (id, section, clauses, points, scenario,
unit, option ids): reading the file back gives the same questions, options, keys and weights.
Texts in two languages are written as Moodle multilang spans (``<span lang="en"
class="multilang">``), which Moodle's multi-language filter shows in the learner's language.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping

from ..content.quizbank import (Matching, MultipleChoice, Numeric, NumericAnswer, Ordering, ShortAnswer, SingleChoice,
                                TrueFalse, refers_to_others)
from ..errors import ContentError, Problem, relpath
from ..i18n import Text
from ._common import (Builder, ImportOptions, ImportResult, ItemResult, exportable, number, number_text, percent_text,
                      snap_percent)

PHP_WS = " \t\n\r\0\x0b"
FORMATS = ("moodle", "html", "plain", "markdown")
_ESC = {":": "\ue000", "#": "\ue001", "=": "\ue002", "{": "\ue003", "}": "\ue004", "~": "\ue005", "n": "\ue006"}
_UNESC = {v: ("\n" if k == "n" else k) for k, v in _ESC.items()}
_BACKSLASH = "\ue007"
WEIGHT = re.compile(r"^%(-*[0-9]{1,2}\.?[0-9]*)%")
CLOZE = re.compile(r"^\s*\d*\s*:\s*[A-Za-z_]+\s*:")
META = "sopcoach:"
DISTRACTOR_SLOT = "—"


def _pre(s: str) -> str:
    """Replace escaped control characters with placeholders (Moodle's ``escapedchar_pre``)."""
    s = s.replace("\\\\", _BACKSLASH)
    for ch, ph in _ESC.items():
        s = s.replace("\\" + ch, ph)
    return s.replace(_BACKSLASH, "\\")


def _post(s: str) -> str:
    """Turn placeholders back into their characters (Moodle's ``escapedchar_post``)."""
    for ph, ch in _UNESC.items():
        s = s.replace(ph, ch)
    return s


def _with_format(text: str, default: str = "moodle") -> tuple[str, str]:
    """Split a ``[format]`` prefix off ``text`` (Moodle's ``parse_text_with_format``)."""
    fmt = default
    if text.startswith("["):
        end = text.find("]")
        name = text[1:end] if end > 0 else None
        if name in FORMATS:
            fmt, text = name, text[end + 1:]
    return _post(text).strip(PHP_WS), fmt


def _comment(answer: str, default: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """Split ``answer#feedback`` (Moodle's ``commentparser``); each part with its format."""
    bits = answer.split("#", 1)
    ans = _with_format(bits[0].strip(PHP_WS), default)
    fb = _with_format(bits[1].strip(PHP_WS), default) if len(bits) > 1 else ("", default)
    return ans, fb


@dataclass
class GiftAnswer:
    """One answer of a choice, short-answer or numerical question, as Moodle reads it.

    ``fraction`` is the weight as an exact fraction of the mark (``=`` is 1, ``~`` without weight 0).
    For numerical answers ``low``/``high`` (range) or ``value``/``tolerance`` are set.
    """

    text: str
    fmt: str
    fraction: Fraction
    feedback: str = ""
    feedback_fmt: str = "moodle"
    line: int = 0
    value: Decimal | None = None
    tolerance: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None


@dataclass
class GiftQuestion:
    """One GIFT item as Moodle's importer reads it (before it becomes a sopcoach question).

    ``qtype`` is Moodle's: ``description``, ``essay``, ``numerical``, ``multichoice``, ``match``,
    ``truefalse``, ``shortanswer``; or ``cloze`` (embedded answers) or ``invalid`` (``error`` says
    why, in Moodle's terms).
    """

    line: int
    qtype: str
    name: str | None = None
    category: str | None = None
    text: str = ""
    fmt: str = "moodle"
    general_feedback: str = ""
    general_feedback_fmt: str = "moodle"
    single: bool = True
    answers: list[GiftAnswer] = field(default_factory=list)
    wrong_feedback: tuple[str, str] | None = None
    subquestions: list[tuple[str, str, str, int]] = field(default_factory=list)
    truth: bool | None = None
    feedback_true: tuple[str, str] = ("", "moodle")
    feedback_false: tuple[str, str] = ("", "moodle")
    missing_word: bool = False
    meta: dict[str, Any] | None = None
    meta_from_comment: bool = False  # meta came from a '// sopcoach:' comment (texts are bilingual already)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Split a file into blank-line separated blocks of (line number, trimmed line)."""
    blocks: list[list[tuple[int, str]]] = []
    cur: list[tuple[int, str]] = []
    for no, raw in enumerate(re.split(r"\r\n|\r|\n", text.lstrip("\ufeff")), 1):
        line = raw.strip(PHP_WS)
        if line:
            cur.append((no, line))
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def _split_block(block: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Split a block where a closing ``}`` ends a question and the next question follows without a blank line.

    A line that closes the answer section (braces balanced, the line ends with ``}``) ends the
    question when a later line of the block opens an answer section of its own: the text between
    belongs to the next question. Otherwise (e.g. a missing-word question's text continuing after
    the ``}``) the block stays one item. Escaped braces and comment lines are ignored.
    """
    code = [(i, re.sub(r"\\.", "", ln)) for i, (_, ln) in enumerate(block) if not ln.startswith("//")]
    if any(CLOZE.match(g) for _, ln in code for g in re.findall(r"\{([^{}]*)\}", ln)):
        return [block]  # embedded answers: several {...} make one item
    cuts: list[int] = []
    depth, has_answer = 0, False
    for k, (i, ln) in enumerate(code):
        depth += ln.count("{") - ln.count("}")
        has_answer = has_answer or "{" in ln
        if depth == 0 and has_answer and ln.rstrip(PHP_WS).endswith("}") and any("{" in rest for _, rest in code[k + 1:]):
            cuts.append(i + 1)
            has_answer = False
    parts, start = [], 0
    for cut in cuts:
        parts.append(block[start:cut])
        start = cut
    parts.append(block[start:])
    return [p for p in parts if p]


def parse_gift(text: str) -> list[GiftQuestion]:
    """Read GIFT text into items the way Moodle's importer does; categories are applied.

    Comment-only blocks and ``$CATEGORY`` blocks are not items; every other block is one item,
    including those Moodle would reject (``qtype == "invalid"``).

    Examples
    --------
    >>> [q.answers[0].fraction for q in parse_gift("::Q::Pick {~%50%a ~%50%b ~%-100%c}")]
    [Fraction(1, 2)]
    """
    out: list[GiftQuestion] = []
    category: str | None = None
    blocks = [(part, n > 0) for whole in _blocks(text) for n, part in enumerate(_split_block(whole))]
    for block, glued in blocks:
        meta_text = None
        lines: list[tuple[int, str]] = []
        for no, ln in block:
            if ln.startswith("//"):
                body = ln[2:].strip()
                if body.startswith(META):
                    meta_text = (no, body[len(META):].strip())
                lines.append((no, " "))
            else:
                lines.append((no, ln))
        joined = _pre("\n".join(ln for _, ln in lines))
        lead = len(joined) - len(joined.lstrip(PHP_WS))
        body = joined.strip(PHP_WS)
        if not body:
            continue

        def line_at(offset: int, _joined: str = joined, _lead: int = lead, _lines=lines) -> int:
            return _lines[min(_joined[:_lead + offset].count("\n"), len(_lines) - 1)][0]

        base = 0
        if body.startswith("$CATEGORY:"):
            first, _, rest = body.partition("\n")
            category = _post(first[10:]).strip() or None
            if not rest.strip(PHP_WS):
                continue
            base = len(body) - len(rest.lstrip(PHP_WS))
            body = rest.strip(PHP_WS)
            q = _parse_question(body, lambda off, b=base: line_at(b + off))
            q.notes.append("the $CATEGORY line is not followed by a blank line; Moodle would read this "
                           "question as part of the category name (add a blank line after it)")
        else:
            q = _parse_question(body, line_at)
        q.category = category
        if glued:
            q.notes.append("no blank line before this question: read as a new question because the one above "
                           "ends with '}' (Moodle needs a blank line between questions; add one)")
        if meta_text is not None:
            try:
                meta = json.loads(meta_text[1])
                q.meta = meta if isinstance(meta, dict) else None
                q.meta_from_comment = q.meta is not None
            except ValueError:
                q.notes.append(f"line {meta_text[0]}: the '// sopcoach:' comment is not valid JSON; ignored")
        out.append(q)
    return out


def _split(s: str, offset: int, sep: str, keep: str = "") -> list[tuple[int, str]]:
    """Split ``s`` at ``sep`` (dropped) and before ``keep`` (kept); pieces with their offsets."""
    pieces: list[tuple[int, str]] = []
    start = 0
    for i, ch in enumerate(s):
        if ch == sep or (keep and ch == keep):
            pieces.append((start, s[start:i]))
            start = i + 1 if ch == sep else i
    pieces.append((start, s[start:]))
    out = [(offset + o + len(p) - len(p.lstrip(PHP_WS)), p.strip(PHP_WS)) for o, p in pieces]
    if out and not out[0][1]:
        out = out[1:]
    return out


def _weight(answer: str) -> tuple[Fraction | None, str, str | None]:
    """Read a leading ``%weight%``; return (fraction or None, rest of the answer, error)."""
    m = WEIGHT.match(answer)
    if not m:
        return None, answer, None
    raw = m.group(1)
    rest = answer[m.end():]
    if raw.count("-") > 1:
        return Fraction(0), rest, f"weight %{raw}% is not a number; write e.g. %-50%"
    return snap_percent(raw), rest, None


def _parse_question(text: str, line_at) -> GiftQuestion:
    q = GiftQuestion(line=line_at(0), qtype="invalid")
    if text.startswith("::"):
        text = text[2:]
        end = text.find("::")
        shift = 2
        if end >= 0:
            q.name = _post(text[:end]).strip(PHP_WS)
            rest = text[end + 2:]
            shift += end + 2 + len(rest) - len(rest.lstrip(PHP_WS))
            text = rest.strip(PHP_WS)
        base_line_at = line_at
        line_at = lambda off, s=shift: base_line_at(off + s)  # noqa: E731
    start, finish = text.find("{"), text.find("}")
    if start < 0 and finish < 0:
        q.qtype = "description"
        q.text, q.fmt = _with_format(text)
        return q
    if start < 0 or finish < 0 or finish < start:
        q.error = "unbalanced braces: the answers go between one '{' and one '}' (write \\{ or \\} for a literal brace)"
        return q
    groups = re.findall(r"\{([^{}]*)\}", text)
    if any(CLOZE.match(g) for g in groups):
        q.qtype = "cloze"
        return q
    if len(groups) > 1:
        q.error = (f"{len(groups)} answer sections {{...}} in one item: a GIFT question has one (Moodle would "
                   "keep only the first and show the others as text); if these are separate questions, end each "
                   "at its '}' and start the next on a new line after a blank line; for several gaps in one "
                   "text, write one question per gap")
        return q
    inner = text[start + 1:finish]
    answer_text = inner.strip(PHP_WS)
    ans_off = start + 1 + len(inner) - len(inner.lstrip(PHP_WS))
    if text.endswith("}"):
        question_text = text[:start] + text[finish + 1:]
    else:
        question_text = text[:start] + "_____" + text[finish + 1:]
        q.missing_word = True
    gf = answer_text.rfind("####")
    if gf >= 0:
        general = answer_text[gf + 4:]
        answer_text = answer_text[:gf].strip(PHP_WS)
    else:
        general = ""
    q.text, q.fmt = _with_format(question_text)
    q.general_feedback, q.general_feedback_fmt = _with_format(general.strip(PHP_WS), q.fmt)

    if answer_text == "":
        q.qtype = "essay"
    elif answer_text[0] == "#":
        q.qtype = "numerical"
        _numerical(q, answer_text, ans_off, line_at)
    elif "~" in answer_text:
        q.qtype = "multichoice"
        _multichoice(q, answer_text, ans_off, line_at)
    elif "=" in answer_text and "->" in answer_text:
        q.qtype = "match"
        _match(q, answer_text, ans_off, line_at)
    else:
        check = answer_text
        if answer_text.find("#") > 0:
            check = answer_text[:answer_text.find("#")].strip(PHP_WS)
        if check in ("T", "TRUE", "F", "FALSE"):
            q.qtype = "truefalse"
            bits = answer_text.split("#", 2)
            wrong = _with_format(bits[1].strip(PHP_WS), q.fmt) if len(bits) > 1 else ("", q.fmt)
            right = _with_format(bits[2].strip(PHP_WS), q.fmt) if len(bits) > 2 else ("", q.fmt)
            q.truth = check in ("T", "TRUE")
            q.feedback_true, q.feedback_false = (right, wrong) if q.truth else (wrong, right)
        else:
            q.qtype = "shortanswer"
            if check.upper() in ("T", "TRUE", "F", "FALSE"):
                q.notes.append(f"'{check}' is read as a short answer, as Moodle does (only T, TRUE, F and "
                               "FALSE in capitals make a true/false question)")
            _shortanswer(q, answer_text, ans_off, line_at)
    if q.error:
        q.qtype = "invalid"
    return q


def _multichoice(q: GiftQuestion, answer_text: str, off: int, line_at) -> None:
    q.single = "=" in answer_text
    pieces = _split(answer_text, off, "~", keep="=")
    if len(pieces) < 2:
        q.error = "a multiple-choice question needs at least 2 answers"
        return
    for o, piece in pieces:
        if piece.startswith("="):
            fraction, piece = Fraction(1), piece[1:]
            if WEIGHT.match(piece):
                q.notes.append(f"line {line_at(o)}: '={piece[:12]}': Moodle reads '=' as full credit and keeps "
                               "the %weight% in the answer text; write '~%weight%' for a partial answer")
        else:
            weight, piece, err = _weight(piece)
            fraction = weight if weight is not None else Fraction(0)
            if err:
                q.error = f"line {line_at(o)}: {err}"
                return
        (text, fmt), (fb, fb_fmt) = _comment(piece, q.fmt)
        if not text and not fraction and not fb:
            continue  # the empty piece of '~=': Moodle drops it when it saves the question
        q.answers.append(GiftAnswer(text, fmt, fraction, fb, fb_fmt, line_at(o)))


def _match(q: GiftQuestion, answer_text: str, off: int, line_at) -> None:
    pieces = _split(answer_text, off, "=")
    if len(pieces) < 2:
        q.error = "a matching question needs at least 2 pairs"
        return
    for o, piece in pieces:
        if "->" not in piece:
            q.error = f"line {line_at(o)}: matching answer '{_post(piece)[:40]}' has no '->'; write 'prompt -> answer'"
            return
        left, _, right = piece.partition("->")
        text, fmt = _with_format(left.strip(PHP_WS), q.fmt)
        q.subquestions.append((text, fmt, _post(right).strip(PHP_WS), line_at(o)))


def _shortanswer(q: GiftQuestion, answer_text: str, off: int, line_at) -> None:
    pieces = _split(answer_text, off, "=")
    if not pieces:
        q.error = "a short-answer question needs at least 1 answer"
        return
    for o, piece in pieces:
        fraction, piece, err = _weight(piece)
        if err:
            q.error = f"line {line_at(o)}: {err}"
            return
        (text, fmt), (fb, fb_fmt) = _comment(piece, q.fmt)
        if not text and not fb:
            continue  # Moodle drops blank answers when it saves the question
        q.answers.append(GiftAnswer(text, fmt, fraction if fraction is not None else Fraction(1), fb, fb_fmt,
                                    line_at(o)))


def _numerical(q: GiftQuestion, answer_text: str, off: int, line_at) -> None:
    body = answer_text[1:]
    off += 1
    tilde = body.find("~")
    if tilde >= 0:
        (_, _), q.wrong_feedback = _comment(body[tilde:], q.fmt)
        body = body[:tilde]
    pieces = _split(body, off, "=")
    if not pieces:
        q.error = "a numerical question needs at least one answer, e.g. {#3.14:0.01}"
        return
    for o, piece in pieces:
        fraction, piece, err = _weight(piece)
        if err:
            q.error = f"line {line_at(o)}: {err}"
            return
        (text, _fmt), (fb, fb_fmt) = _comment(piece, q.fmt)
        a = GiftAnswer(text, "plain", fraction if fraction is not None else Fraction(1), fb, fb_fmt, line_at(o))
        if text.find("..") > 0:
            lo, hi = number(text[:text.find("..")]), number(text[text.find("..") + 2:])
            if lo is None or hi is None:
                q.error = f"line {line_at(o)}: '{text}' is not a range of numbers; write min..max, e.g. 1..5"
                return
            a.low, a.high = lo, hi
        elif text.find(":") > 0:
            value, tol = number(text[:text.find(":")]), number(text[text.find(":") + 1:])
            if value is None or tol is None:
                q.error = f"line {line_at(o)}: '{text}' is not number:tolerance; write e.g. 3.14:0.01"
                return
            a.value, a.tolerance = value, abs(tol)
        else:
            value = number(text)
            if value is None:
                q.error = f"line {line_at(o)}: '{text}' is not a number"
                return
            a.value, a.tolerance = value, Decimal(0)
        q.answers.append(a)


# -- GIFT item -> bank question ----------------------------------------------------------------

SKIP_REASONS = {
    "description": "description (text without answers): sopcoach cannot score it and does not import it; "
                   "put its text into the 'scenario' of the questions that need it",
    "essay": "essay (free text graded by hand): sopcoach cannot score it",
    "cloze": "embedded answers (Cloze, e.g. {1:MC:...}): sopcoach cannot score several gaps in one "
             "question; split it into one GIFT question per gap",
}


def _ids(meta: dict | None, n: int, prefix: str = "") -> list[str]:
    got = (meta or {}).get("ids")
    if isinstance(got, list) and len(got) == n and all(isinstance(i, str) for i in got) and len(set(got)) == n:
        return got
    if prefix:
        return [f"{prefix}{i + 1}" for i in range(n)]
    return [_letter(i) for i in range(n)]


def _letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(97 + r) + s
    return s


def _pct(f: Fraction) -> str:
    return f"{percent_text(f)}%"


def to_entry(q: GiftQuestion, b: Builder, number_: int) -> tuple[ItemResult, dict[str, Any] | None]:
    """Turn one parsed GIFT item into a bank entry (or the reason it cannot be one)."""
    item = ItemResult(q.line, q.qtype, notes=list(q.notes))
    if q.qtype in SKIP_REASONS:
        item.reason = SKIP_REASONS[q.qtype]
        return item, None
    if q.qtype == "invalid":
        item.kind = "item"
        item.reason = q.error
        return item, None
    b.start()
    meta = q.meta or {}
    text = b.text(q.text, q.fmt)
    if text is None:
        item.reason = "the question has no text"
        return item, None
    if q.missing_word:
        item.notes.append("missing-word question: the gap is shown as _____ in the text")
    entry: dict[str, Any] = {"id": b.new_id(meta.get("id") or q.name, number_),
                             "section": meta.get("section") if isinstance(meta.get("section"), str)
                             else b.section(q.category)}
    clauses = meta.get("clauses")
    ok = isinstance(clauses, list) and clauses and all(isinstance(c, str) for c in clauses)
    entry["clauses"] = clauses if ok else [b.options.clause]
    if meta.get("points") is not None:
        entry["points"] = str(meta["points"])
    scenario = meta.get("scenario")
    if isinstance(scenario, dict) and set(scenario) == {"zh-CN", "en"}:
        entry["scenario"] = scenario
        text = {lang: v[len(scenario[lang]) + 2:] if v.startswith(scenario[lang] + "\n\n") else v
                for lang, v in text.items()}
    entry["text"] = text
    explanation = b.text(q.general_feedback, q.general_feedback_fmt)
    if q.qtype == "multichoice":
        entry.update(_choice(q, b, meta, item))
    elif q.qtype == "truefalse":
        entry["type"] = "true_false"
        entry["answer"] = q.truth
        for key, (fb, fmt) in (("feedback_true", q.feedback_true), ("feedback_false", q.feedback_false)):
            t = b.text(fb, fmt)
            if t:
                entry[key] = t
    elif q.qtype == "shortanswer":
        entry["type"] = "short_answer"
        cs = meta.get("case_sensitive") if isinstance(meta.get("case_sensitive"), list) else None
        answers = []
        for i, a in enumerate(q.answers):
            acc: dict[str, Any] = {"text": a.text}
            if a.fraction != 1:
                acc["weight"] = a.fraction
            if cs and len(cs) == len(q.answers) and cs[i] is True:
                acc["case_sensitive"] = True
            feedback = b.text(a.feedback, a.feedback_fmt)
            if feedback:
                acc["feedback"] = feedback
            if a.fraction < 0:
                item.notes.append(f"line {a.line}: answer '{a.text}' has a negative weight; it scores 0 in "
                                  "sopcoach (credit is never negative)")
            answers.append(acc)
        entry["answers"] = answers
    elif q.qtype == "numerical":
        entry.update(_numeric(q, b, item))
    elif q.qtype == "match":
        entry.update(_matching(q, b, meta, item))
    if meta.get("unit") and isinstance(meta["unit"], dict) and entry.get("type") == "numeric":
        entry["unit"] = meta["unit"]
    if explanation:
        entry["explanation"] = explanation
    if q.meta and q.meta_from_comment:
        b.bilingual_source()  # written by sopcoach: a text equal in both languages was so already
    return item, _order(entry)


_KEY_ORDER = ["id", "type", "section", "clauses", "points", "scenario", "text", "options", "answer", "tolerance",
              "min", "max", "answers", "unit", "items", "pairs", "distractors", "feedback_true", "feedback_false",
              "feedback_other", "explanation"]


def _order(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in sorted(entry, key=lambda k: _KEY_ORDER.index(k) if k in _KEY_ORDER else 99)}


def _choice(q: GiftQuestion, b: Builder, meta: dict, item: ItemResult) -> dict[str, Any]:
    ids = _ids(meta, len(q.answers))
    values: dict = meta["values"] if isinstance(meta.get("values"), dict) else {}
    options: list[dict[str, Any]] = []
    for oid, a in zip(ids, q.answers):
        options.append({"id": oid, "text": b.text(a.text, a.fmt) or {"zh-CN": "", "en": ""}})
    fractions = [a.fraction for a in q.answers]
    for a in q.answers:
        if not -1 <= a.fraction <= 1:
            item.notes.append(f"line {a.line}: weight {_pct(a.fraction)} is outside -100%..100%")
    if q.single:
        full = [i for i, f in enumerate(fractions) if f == 1]
        key = full[0]
        for i, (opt, f) in enumerate(zip(options, fractions)):
            if i == key:
                opt["correct"] = True
            elif f != 0:
                opt["weight"] = f
        if len(full) > 1:
            others = ", ".join(options[i]["id"] for i in full[1:])
            item.notes.append(f"{len(full)} options give full credit; '{options[key]['id']}' is shown as the key "
                              f"and {others} keep(s) full credit as weight 1")
        negative = [options[i]["id"] for i, f in enumerate(fractions) if f < 0]
        if negative:
            item.notes.append(f"option(s) {', '.join(negative)} have a negative weight: picking one scores 0 in "
                              "sopcoach (Moodle would deduct marks)")
        return {"type": "single_choice", "options": _finish_options(options, q, b, values)}
    pos = [f for f in fractions if f > 0]
    neg = [f for f in fractions if f < 0]
    plain = (len(fractions) >= 3 and pos and neg and len(pos) + len(neg) == len(fractions)
             and all(f == Fraction(1, len(pos)) for f in pos) and all(f == Fraction(-1, len(neg)) for f in neg))
    if plain:
        for opt, f in zip(options, fractions):
            opt["correct"] = f > 0
        return {"type": "multiple_choice", "options": _finish_options(options, q, b, values)}
    for opt, f in zip(options, fractions):
        if f != 0:
            opt["weight"] = f
    total_pos, total = sum(pos, Fraction(0)), sum(fractions, Fraction(0))
    if pos and total_pos < 1:
        item.notes.append(f"the positive weights add up to {_pct(total_pos)}: no answer reaches full credit "
                          "(as in Moodle)")
    if pos and total >= 1 and any(f <= 0 for f in fractions):
        item.notes.append("ticking every option earns full credit (the wrong options have no negative weight, "
                          "shared case 09); give them negative weights such as ~%-100%")
    return {"type": "multiple_choice", "options": _finish_options(options, q, b, values)}


def _number_key(q: Numeric, a: Numeric | NumericAnswer) -> str:
    """Return an accepted number in GIFT: ``min..max`` for a range, else ``answer:tolerance``."""
    if a.min is not None and a.max is not None:
        return f"{number_text(a.min)}..{number_text(a.max)}"
    if a.answer is None:  # the bank's validation gives every accepted number an answer or a range
        raise ContentError([Problem("", 0, 0, f"questions.{q.id}", "a numeric answer has neither answer nor range")])
    return f"{number_text(a.answer)}:{number_text(a.tolerance)}"


def _finish_options(options: list[dict], q: GiftQuestion, b: Builder, values: dict) -> list[dict]:
    """Add values, feedback and ``pin: last``, in the key order of a hand-written bank.

    A last option that refers to the others ("all of the above", "以上都是") gets ``pin: last``:
    GIFT and Moodle XML cannot pin one option, and the bank keeps such an option last when shuffling.
    """
    for opt, a in zip(options, q.answers):
        if opt["id"] in values:
            opt["value"] = str(values[opt["id"]])
        fb = b.text(a.feedback, a.feedback_fmt)
        if fb:
            opt["feedback"] = fb
    if options and any(refers_to_others(str(v)) for v in options[-1]["text"].values()):
        options[-1]["pin"] = "last"
    return options


def _numeric(q: GiftQuestion, b: Builder, item: ItemResult) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "numeric"}
    other = b.text(*q.wrong_feedback) if q.wrong_feedback else None
    simple = (len(q.answers) == 1 and q.answers[0].fraction == 1 and not q.answers[0].feedback)
    if simple:
        a = q.answers[0]
        if a.low is not None:
            out["min"], out["max"] = a.low, a.high
        else:
            out["answer"], out["tolerance"] = a.value, a.tolerance
    else:
        answers = []
        for a in q.answers:
            acc: dict[str, Any] = ({"min": a.low, "max": a.high} if a.low is not None
                                   else {"answer": a.value, "tolerance": a.tolerance})
            if a.fraction != 1:
                acc["weight"] = a.fraction
            feedback = b.text(a.feedback, a.feedback_fmt)
            if feedback:
                acc["feedback"] = feedback
            answers.append(acc)
        out["answers"] = answers
    for a in q.answers:
        if a.low is not None and a.high is not None and a.low > a.high:
            item.notes.append(f"line {a.line}: range {a.text} has min above max")
    if other:
        out["feedback_other"] = other
    return out


def _matching(q: GiftQuestion, b: Builder, meta: dict, item: ItemResult) -> dict[str, Any]:
    pairs_src = [(t, f, a, ln) for t, f, a, ln in q.subquestions if t.strip()]
    extra = [(a, ln) for t, f, a, ln in q.subquestions if not t.strip() and a.strip()]
    if meta.get("type") == "ordering":
        got = _as_ordering(q, b, meta)
        if got is not None:
            return got
        item.notes.append("the '// sopcoach:' comment says ordering, but the pairs are not positions 1..n; "
                          "imported as matching")
    ids = _ids(meta if meta.get("type") == "matching" else None, len(pairs_src) + len(extra), "p")
    pairs = []
    for pid, (t, f, a, _ln) in zip(ids, pairs_src):
        pairs.append({"id": pid, "prompt": b.text(t, f) or {"zh-CN": "", "en": ""},
                      "answer": b.text(a, "moodle") or {"zh-CN": "", "en": ""}})
    out: dict[str, Any] = {"type": "matching", "pairs": pairs}
    if extra:
        dids = ids[len(pairs_src):] if meta.get("type") == "matching" else [f"d{i + 1}" for i in range(len(extra))]
        out["distractors"] = [{"id": did, "text": b.text(a, "moodle")} for did, (a, _ln) in zip(dids, extra)]
    return out


def _as_ordering(q: GiftQuestion, b: Builder, meta: dict) -> dict[str, Any] | None:
    ids = meta.get("ids")
    subs = q.subquestions
    if not isinstance(ids, list) or len(ids) != len(subs):
        return None
    items, distractors = [], []
    for oid, (t, f, a, _ln) in zip(ids, subs):
        opt = {"id": oid, "text": b.text(t, f)}
        if a == DISTRACTOR_SLOT:
            distractors.append(opt)
        elif a.isdigit():
            items.append((int(a), opt))
        else:
            return None
    if sorted(p for p, _ in items) != list(range(1, len(items) + 1)):
        return None
    out: dict[str, Any] = {"type": "ordering", "items": [o for _, o in sorted(items, key=lambda x: x[0])]}
    if distractors:
        out["distractors"] = distractors
    return out


def import_gift(path: Path | str, text: str | None = None, options: ImportOptions | None = None,
                taken_ids: set[str] | None = None) -> ImportResult:
    """Import a GIFT file: one :class:`ItemResult` per item, valid ones as bank entries.

    Parameters
    ----------
    path : path-like
        The file (UTF-8, optional BOM); also the name used in the report.
    text : str, optional
        The content, when already read.
    options : ImportOptions, optional
        Default section, clause and id prefix.
    taken_ids : set of str, optional
        Question ids already used (several files imported into one bank); updated.

    Returns
    -------
    ImportResult
        ``imported + len(skipped) == len(items)``: every item of the file is accounted for.

    Examples
    --------
    >>> r = import_gift("x.gift", "::Q1::2+2? {#4}\\n\\n::E::Why? {}\\n")
    >>> r.imported, [(i.line, i.kind) for i in r.skipped]
    (1, [(3, 'essay')])
    """
    result = ImportResult(relpath(path), "gift")
    if text is None:
        try:
            text = Path(path).read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            result.problems.append(Problem(result.path, 0, 0, "", f"the file is not UTF-8 ({exc.reason} at byte "
                                           f"{exc.start}); save it as UTF-8 and import again"))
            return result
        except OSError as exc:
            result.problems.append(Problem(result.path, 0, 0, "", f"cannot read the file: {exc}"))
            return result
    return add_questions(result, parse_gift(text), options, taken_ids)


def add_questions(result: ImportResult, questions: Iterable[GiftQuestion], options: ImportOptions | None,
                  taken_ids: set[str] | None, skip_reasons: Mapping[str, str] | None = None) -> ImportResult:
    """Turn parsed questions (GIFT's, or Moodle XML's read into the same shape) into ``result``'s entries.

    A question is counted once: imported (:func:`to_entry`), or skipped with its line and reason (a
    type in ``skip_reasons``, e.g. Moodle's ``essay``, is skipped with that reason). Returns ``result``.
    """
    skip_reasons = skip_reasons or {}
    b = Builder(result, options or ImportOptions(), taken_ids)
    for n, q in enumerate(questions, 1):
        if q.qtype in skip_reasons:
            b.skip(ItemResult(q.line, q.qtype), skip_reasons[q.qtype])
            continue
        item, entry = to_entry(q, b, n)
        if entry is None:
            b.skip(item, item.reason or "not importable")
        else:
            b.finish(item, entry)
    return result


# -- bank -> GIFT ------------------------------------------------------------------------------

def escape(text: str) -> str:
    """Escape GIFT's reserved characters as Moodle's exporter does (``repchar``).

    >>> escape("a:b {c} = ~d #e\\nf")
    'a\\\\:b \\\\{c\\\\} \\\\= \\\\~d \\\\#e\\\\nf'
    """
    for ch, rep in (("\\", "\\\\"), ("#", "\\#"), ("=", "\\="), ("~", "\\~"), ("{", "\\{"), ("}", "\\}"),
                    (":", "\\:"), ("\r", ""), ("\n", "\\n")):
        text = text.replace(ch, rep)
    return text


def _html(s: str) -> str:
    return html.escape(s, quote=False).replace("\n", "<br>")


class _Writer:
    """Render one question's texts in one format (``plain`` or ``html`` with multilang spans)."""

    def __init__(self, lang: str, fmt: str):
        self.lang, self.fmt = lang, fmt

    def raw(self, t: Text) -> str:
        if self.fmt == "html":
            if t.zh_CN != t.en:
                return (f'<span lang="zh_cn" class="multilang">{_html(t.zh_CN)}</span>'
                        f'<span lang="en" class="multilang">{_html(t.en)}</span>')
            return _html(t.en)
        return t.en if self.lang == "en" else t.zh_CN

    def text(self, t: Text, lead: bool = False) -> str:
        """The text escaped; ``lead`` writes the format (question text), else only when needed."""
        raw = self.raw(t)
        prefix = f"[{self.fmt}]" if lead or raw.startswith("[") or WEIGHT.match(raw) else ""
        return prefix + escape(raw)


def _texts(q: Any) -> list[Text]:
    out = [q.text, q.scenario, q.explanation, getattr(q, "unit", None), getattr(q, "feedback_true", None),
           getattr(q, "feedback_false", None), getattr(q, "feedback_other", None)]
    for o in list(getattr(q, "options", [])) + list(getattr(q, "items", [])) + list(getattr(q, "distractors", [])):
        out += [o.text, o.feedback]
    for p in getattr(q, "pairs", []):
        out += [p.prompt, p.answer]
    for a in getattr(q, "answers", None) or []:
        out.append(a.feedback)
    return [t for t in out if t is not None]


def _question_text(q: Any, w: _Writer) -> str:
    if q.scenario is None:
        return w.text(q.text, lead=True)
    both = Text.model_validate({"zh-CN": q.scenario.zh_CN + "\n\n" + q.text.zh_CN,
                                "en": q.scenario.en + "\n\n" + q.text.en})
    return w.text(both, lead=True)


def _meta(q: Any, ids: list[str] | None = None, **extra: Any) -> str:
    meta: dict[str, Any] = {"id": q.id, "type": q.type, "section": q.section, "clauses": list(q.clauses)}
    if q.points != 1:
        meta["points"] = number_text(q.points)
    if q.scenario is not None:
        meta["scenario"] = q.scenario.model_dump(by_alias=True)
    if ids is not None:
        meta["ids"] = ids
    meta.update({k: v for k, v in extra.items() if v})
    return "// " + META + " " + json.dumps(meta, ensure_ascii=False, separators=(",", ":"))


def export_question(q: Any, lang: str = "both") -> tuple[str | None, list[str]]:
    """Write one question as GIFT (with its ``// sopcoach:`` comment); ``None`` when GIFT cannot hold it.

    Returns the GIFT text and notes on what Moodle will not see (e.g. a unit, case sensitivity).
    """
    fmt = "html" if lang == "both" and any(t.zh_CN != t.en for t in _texts(q)) else "plain"
    w = _Writer(lang, fmt)
    notes: list[str] = []
    head = f"::{escape(q.id)}::{_question_text(q, w)}"
    gf = f"\t####{w.text(q.explanation)}\n" if q.explanation is not None else ""

    def fb(t: Text | None) -> str:
        return f"#{w.text(t)}" if t is not None else ""

    if isinstance(q, SingleChoice):
        lines = []
        for o in q.options:
            mark = "=" if o.correct else (f"~%{percent_text(Fraction(o.weight))}%" if o.weight else "~")
            lines.append(f"\t{mark}{w.text(o.text)}{fb(o.feedback)}")
        values = {o.id: number_text(o.value) for o in q.options if o.value is not None}
        body = "{\n" + "\n".join(lines) + "\n" + gf + "}"
        return f"{_meta(q, [o.id for o in q.options], values=values)}\n{head}{body}\n", notes
    if isinstance(q, MultipleChoice):
        if q.weighted:
            weights = [Fraction(o.weight or 0) for o in q.options]
        else:
            nc = sum(o.correct for o in q.options)
            nw = len(q.options) - nc
            weights = [Fraction(1, nc) if o.correct else Fraction(-1, nw) for o in q.options]
        lines = [f"\t~{'%' + percent_text(wt) + '%' if wt else ''}{w.text(o.text)}{fb(o.feedback)}"
                 for o, wt in zip(q.options, weights)]
        values = {o.id: number_text(o.value) for o in q.options if o.value is not None}
        body = "{\n" + "\n".join(lines) + "\n" + gf + "}"
        return f"{_meta(q, [o.id for o in q.options], values=values)}\n{head}{body}\n", notes
    if isinstance(q, TrueFalse):
        right, wrong = (q.feedback_true, q.feedback_false) if q.answer else (q.feedback_false, q.feedback_true)
        ans = "TRUE" if q.answer else "FALSE"
        if wrong is not None:
            ans += f"#{w.text(wrong)}"
        elif right is not None:
            ans += "#"
        if right is not None:
            ans += f"#{w.text(right)}"
        gf1 = f"####{w.text(q.explanation)}" if q.explanation is not None else ""
        return f"{_meta(q)}\n{head}{{{ans}{gf1}}}\n", notes
    if isinstance(q, Numeric):
        lines = []
        if q.answers is not None:
            for a in q.answers:
                lines.append(f"\t=%{percent_text(Fraction(a.weight))}%{_number_key(q, a)}{fb(a.feedback)}")
        else:
            lines.append(f"\t={_number_key(q, q)}")
        if q.feedback_other is not None:
            lines.append(f"\t~#{w.text(q.feedback_other)}")
        unit = q.unit.model_dump(by_alias=True) if q.unit is not None else None
        if unit and q.unit is not None:
            notes.append(f"{q.id}: the unit ({q.unit.en}) is kept in the sopcoach comment only; GIFT has no unit")
        body = "{#\n" + "\n".join(lines) + "\n" + gf + "}"
        return f"{_meta(q, unit=unit)}\n{head}{body}\n", notes
    if isinstance(q, ShortAnswer):
        lines = []
        for acc in q.answers:
            if "->" in acc.text:
                return None, [f"{q.id}: accepted answer '{acc.text}' holds '->', which GIFT reads as a matching "
                              "pair; not exported"]
            lines.append(f"\t=%{percent_text(Fraction(acc.weight))}%{escape(acc.text)}{fb(acc.feedback)}")
        cs = [a.case_sensitive for a in q.answers]
        if any(cs):
            notes.append(f"{q.id}: Moodle ignores case in GIFT short answers; case sensitivity is kept in the "
                         "sopcoach comment only")
        body = "{\n" + "\n".join(lines) + "\n" + gf + "}"
        return f"{_meta(q, case_sensitive=cs if any(cs) else None)}\n{head}{body}\n", notes
    if isinstance(q, Matching):
        lines = [f"\t={w.text(p.prompt)} -> {escape(w.raw(p.answer))}" for p in q.pairs]
        lines += [f"\t= -> {escape(w.raw(o.text))}" for o in q.distractors]
        ids = [p.id for p in q.pairs] + [o.id for o in q.distractors]
        body = "{\n" + "\n".join(lines) + "\n" + gf + "}"
        return f"{_meta(q, ids)}\n{head}{body}\n", notes
    if isinstance(q, Ordering):
        lines = [f"\t={w.text(o.text)} -> {i}" for i, o in enumerate(q.items, 1)]
        lines += [f"\t={w.text(o.text)} -> {DISTRACTOR_SLOT}" for o in q.distractors]
        ids = [o.id for o in q.blocks]
        notes.append(f"{q.id}: ordering is written as a matching of each block to its position "
                     f"({DISTRACTOR_SLOT} for a block that does not belong); Moodle scores it per pair")
        body = "{\n" + "\n".join(lines) + "\n" + gf + "}"
        return f"{_meta(q, ids)}\n{head}{body}\n", notes
    return None, [f"{q.id}: type {q.type} cannot be written as GIFT"]  # pragma: no cover


def export_gift(questions: Iterable[Any], lang: str = "both") -> tuple[str, list[str]]:
    """Write questions (resolved: keys derived from the playbook are literal) as one GIFT file.

    Parameters
    ----------
    questions : iterable of Question
        In the order to write; a ``$CATEGORY`` line starts each run of one section.
    lang : {"both", "zh-CN", "en"}
        ``both`` writes texts whose languages differ as Moodle multilang spans (``[html]``);
        otherwise only that language, as ``[plain]`` text.

    Returns
    -------
    (str, list of str)
        The GIFT text (UTF-8, LF line ends) and notes on anything Moodle will not see (templates
        are left out, see :func:`~sopcoach.interchange._common.exportable`).
    """
    out = ["// Exported by sopcoach. The '// sopcoach:' comments keep what GIFT cannot hold; Moodle ignores them.\n"]
    notes: list[str] = []
    section = None
    for q in exportable(questions, notes):
        if q.section != section:
            section = q.section
            out.append(f"$CATEGORY: $course$/top/{section}\n")
        text, qnotes = export_question(q, lang)
        notes += qnotes
        if text is not None:
            out.append(text)
    return "\n".join(out), notes
