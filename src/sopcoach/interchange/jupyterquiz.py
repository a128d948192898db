"""jupyterquiz JSON: a list of questions as jupyterquiz (jmshea/jupyterquiz) displays them.

Types and what they become:

``many_choice``
    ``multiple_choice`` (several correct answers; scored right-minus-wrong).
``multiple_choice``
    ``single_choice``: jupyterquiz shows radio buttons, so exactly one answer must be correct.
``numeric``
    ``numeric`` with ``answers`` in order, the first match counting as in jupyterquiz:
    ``{"value": v}`` is exact, or, with the question's ``precision`` (significant digits), the
    interval of numbers that round to ``v``; ``{"range": [a, b]}`` is ``min: a, max: b`` (jupyterquiz
    excludes ``b``, sopcoach includes it: noted); ``correct`` gives weight 1 or 0; the
    ``default`` answer's feedback becomes ``feedback_other``.
``string``
    ``short_answer`` (``match_case`` kept; ``fuzzy_threshold`` cannot be kept: noted).

A question's ``code`` is appended to its text; an answer given as ``code`` uses it as its text.
Reported with their location (``[3].answers[1]``, line and column) and skipped: items that do not
follow the schema, unknown types, contradictions (a single-choice item with several correct
answers, an answer text that is both correct and incorrect), and items with no correct answer.
"""
from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import Problem, relpath
from ._common import Builder, ImportOptions, ImportResult, ItemResult, number

Key = tuple[Any, ...]


def load_json_with_marks(text: str) -> tuple[Any, dict[Key, tuple[int, int]]]:
    """Parse JSON and return it with the 1-based (line, column) of every value, by key path.

    Raises
    ------
    ValueError
        On invalid JSON (``json.JSONDecodeError`` with its position).

    Examples
    --------
    >>> data, marks = load_json_with_marks('[\\n {"a": [1,\\n  2]}]')
    >>> marks[(0, "a", 1)]
    (3, 3)
    """
    dec = json.JSONDecoder()
    marks: dict[Key, tuple[int, int]] = {}

    def pos(i: int) -> tuple[int, int]:
        line = text.count("\n", 0, i) + 1
        return line, i - (text.rfind("\n", 0, i) + 1) + 1

    def ws(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def value(i: int, key: Key) -> tuple[Any, int]:
        i = ws(i)
        marks[key] = pos(i)
        if i < len(text) and text[i] == "[":
            out: list[Any] = []
            i = ws(i + 1)
            if text[i:i + 1] == "]":
                return out, i + 1
            while True:
                v, i = value(i, key + (len(out),))
                out.append(v)
                i = ws(i)
                if text[i:i + 1] == ",":
                    i += 1
                elif text[i:i + 1] == "]":
                    return out, i + 1
                else:
                    raise json.JSONDecodeError("expected ',' or ']'", text, i)
        if i < len(text) and text[i] == "{":
            obj: dict[str, Any] = {}
            i = ws(i + 1)
            if text[i:i + 1] == "}":
                return obj, i + 1
            while True:
                i = ws(i)
                k, i = dec.raw_decode(text, i)
                if not isinstance(k, str):
                    raise json.JSONDecodeError("expected a string key", text, i)
                i = ws(i)
                if text[i:i + 1] != ":":
                    raise json.JSONDecodeError("expected ':'", text, i)
                obj[k], i = value(i + 1, key + (k,))
                i = ws(i)
                if text[i:i + 1] == ",":
                    i += 1
                elif text[i:i + 1] == "}":
                    return obj, i + 1
                else:
                    raise json.JSONDecodeError("expected ',' or '}'", text, i)
        return dec.raw_decode(text, i)

    data, end = value(0, ())
    if ws(end) != len(text):
        raise json.JSONDecodeError("extra data after the JSON value", text, ws(end))
    return data, marks


class _Item:
    """One question of the file with a way to locate its parts."""

    def __init__(self, index: int, data: Any, marks: dict, path: str):
        self.index, self.data, self.marks, self.path = index, data, marks, path

    def where(self, *sub: Any) -> str:
        key = (self.index,) + sub
        line, col = self.marks.get(key, self.marks.get((self.index,), (0, 0)))
        field = f"[{self.index}]" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in sub)
        return f"{field} (line {line}, column {col})"


def import_jupyterquiz(path: Path | str, text: str | None = None, options: ImportOptions | None = None,
                       taken_ids: set[str] | None = None) -> ImportResult:
    """Import a jupyterquiz JSON file (a list of questions): every question accounted for.

    Parameters and return value as :func:`sopcoach.interchange.gift.import_gift`.

    Examples
    --------
    >>> r = import_jupyterquiz("q.json", '[{"question": "2+2?", "type": "numeric", '
    ...                        '"answers": [{"type": "value", "value": 4, "correct": true}]}]')
    >>> r.questions[0]["answer"], r.imported
    (Decimal('4'), 1)
    """
    result = ImportResult(relpath(path), "jupyterquiz")
    if text is None:
        try:
            text = Path(path).read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            result.problems.append(Problem(result.path, 0, 0, "", f"cannot read the file as UTF-8: {exc}"))
            return result
    try:
        data, marks = load_json_with_marks(text.lstrip("\ufeff"))
    except ValueError as exc:
        line, col = (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else (0, 0)
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        result.problems.append(Problem(result.path, line, col, "", f"not valid JSON: {msg}"))
        return result
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = data["questions"]
        marks = {k[1:]: v for k, v in marks.items() if k[:1] == ("questions",)}
    if not isinstance(data, list):
        result.problems.append(Problem(result.path, 1, 1, "", "expected a JSON list of questions (found "
                                       f"{type(data).__name__}); jupyterquiz files are [{{...}}, ...]"))
        return result
    b = Builder(result, options or ImportOptions(), taken_ids)
    for i, q in enumerate(data):
        it = _Item(i, q, marks, result.path)
        line, col = marks.get((i,), (0, 0))
        item = ItemResult(line, str(q.get("type", "item")) if isinstance(q, dict) else "item", column=col)
        reason = _convert(it, b, item)
        if reason is not None:
            b.skip(item, reason)
    return result


def _text_of(it: _Item, a: dict, j: int) -> str | None:
    t = a.get("answer", a.get("code"))
    return t if isinstance(t, str) and t.strip() else None


def _convert(it: _Item, b: Builder, item: ItemResult) -> str | None:
    q = it.data
    if not isinstance(q, dict):
        return f"{it.where()}: expected a question object, found {type(q).__name__}"
    qtype, question, answers = q.get("type"), q.get("question"), q.get("answers")
    if not isinstance(question, str) or not question.strip():
        return f"{it.where('question')}: 'question' must be a non-empty text"
    if not isinstance(answers, list) or not answers:
        return f"{it.where('answers')}: 'answers' must be a non-empty list"
    for j, a in enumerate(answers):
        if not isinstance(a, dict):
            return f"{it.where('answers', j)}: expected an answer object"
    b.start()
    text = question + (f"\n\n{q['code']}" if isinstance(q.get("code"), str) and q["code"].strip() else "")
    entry: dict[str, Any] = {"id": b.new_id(None, it.index + 1), "section": b.section(None),
                             "clauses": [b.options.clause], "text": b.text(text)}

    def fb(a: dict) -> dict | None:
        return b.text(a["feedback"]) if isinstance(a.get("feedback"), str) else None

    if qtype in ("multiple_choice", "many_choice"):
        opts: list[dict[str, Any]] = []
        seen_at: dict[str, tuple[int, bool]] = {}
        for j, a in enumerate(answers):
            t = _text_of(it, a, j)
            if t is None:
                return _undo(b, entry, f"{it.where('answers', j)}: an answer needs 'answer' (or 'code') text")
            if not isinstance(a.get("correct"), bool):
                return _undo(b, entry, f"{it.where('answers', j)}: 'correct' must be true or false "
                                       f"(found {a.get('correct')!r})")
            norm = " ".join(t.split()).casefold()
            if norm in seen_at and seen_at[norm][1] != a["correct"]:
                return _undo(b, entry, f"contradictory: answer '{t}' is correct at "
                                       f"{it.where('answers', seen_at[norm][0] if a['correct'] is False else j)} "
                                       f"and incorrect at "
                                       f"{it.where('answers', j if a['correct'] is False else seen_at[norm][0])}; "
                                       "keep one of them")
            seen_at.setdefault(norm, (j, a["correct"]))
            opt: dict[str, Any] = {"id": _letter(j), "text": b.text(t)}
            if a["correct"]:
                opt["correct"] = True
            if fb(a):
                opt["feedback"] = fb(a)
            opts.append(opt)
        n = sum(1 for o in opts if o.get("correct"))
        if n == 0:
            return _undo(b, entry, f"{it.where('answers')}: no answer is marked correct")
        if qtype == "multiple_choice" and n > 1:
            where = ", ".join(it.where("answers", j) for j, a in enumerate(answers) if a.get("correct"))
            return _undo(b, entry, f"contradictory: type multiple_choice has one correct answer, but {n} are "
                                   f"marked correct ({where}); mark one, or make it many_choice")
        entry["type"] = "single_choice" if qtype == "multiple_choice" else "multiple_choice"
        entry["options"] = opts
        if qtype == "many_choice" and n == len(opts):
            return _undo(b, entry, f"{it.where('answers')}: every answer is correct, so ticking all of them "
                                   "is the key; add a wrong answer")
    elif qtype == "numeric":
        precision = q.get("precision")
        if precision is not None and (not isinstance(precision, int) or isinstance(precision, bool)
                                      or precision < 1):
            return _undo(b, entry, f"{it.where('precision')}: 'precision' is a number of significant digits "
                                   f"(found {precision!r})")
        accepted: list[dict[str, Any]] = []
        seen_keys: dict[tuple[Any, ...], bool] = {}
        for j, a in enumerate(answers):
            if a.get("type") == "default":
                if fb(a):
                    entry["feedback_other"] = fb(a)
                continue
            if not isinstance(a.get("correct"), bool):
                return _undo(b, entry, f"{it.where('answers', j)}: 'correct' must be true or false")
            acc: dict[str, Any]
            key: tuple[Any, ...]
            if "value" in a:
                v = _num(a["value"])
                if v is None:
                    return _undo(b, entry, f"{it.where('answers', j, 'value')}: not a number ({a['value']!r})")
                if precision:
                    lo, hi = _rounding_interval(v, precision)
                    acc = {"min": lo, "max": hi}
                    item.notes.append(f"{it.where('answers', j)}: value {a['value']} with precision {precision} "
                                      f"accepts {lo}..{hi} (numbers that round to it)")
                else:
                    acc = {"answer": v}
                key = ("v", v)
            elif "range" in a:
                rng = a["range"]
                low, high = (_num(rng[0]), _num(rng[1])) if isinstance(rng, list) and len(rng) == 2 else (None, None)
                if low is None or high is None or low > high:
                    return _undo(b, entry, f"{it.where('answers', j, 'range')}: 'range' must be [min, max] "
                                           f"with min <= max (found {rng!r})")
                acc = {"min": low, "max": high}
                key = ("r", low, high)
                item.notes.append(f"{it.where('answers', j)}: range [{rng[0]}, {rng[1]}) now includes its upper "
                                  "end (jupyterquiz excludes it)")
            else:
                return _undo(b, entry, f"{it.where('answers', j)}: a numeric answer needs 'value' or 'range'")
            if key in seen_keys and seen_keys[key] != a["correct"]:
                return _undo(b, entry, f"contradictory: {it.where('answers', j)} repeats an earlier answer "
                                       "with the opposite 'correct'; keep one")
            seen_keys.setdefault(key, a["correct"])
            if not a["correct"]:
                acc["weight"] = Fraction(0)
            if fb(a):
                acc["feedback"] = fb(a)
            accepted.append(acc)
        if not any(a.get("weight", 1) == 1 for a in accepted):
            return _undo(b, entry, f"{it.where('answers')}: no answer is marked correct")
        entry["type"] = "numeric"
        if len(accepted) == 1 and set(accepted[0]) <= {"answer", "min", "max"}:
            entry.update(accepted[0])  # one plain key: the simple form
        else:
            entry["answers"] = accepted
    elif qtype == "string":
        acc_list: list[dict[str, Any]] = []
        seen: dict[str, bool] = {}
        for j, a in enumerate(answers):
            if a.get("type") == "default":
                if fb(a):
                    acc_list.append({"text": "*", "weight": Fraction(0), "feedback": fb(a)})
                continue
            t = a.get("answer")
            if not isinstance(t, str) or not t.strip() or not isinstance(a.get("correct"), bool):
                return _undo(b, entry, f"{it.where('answers', j)}: a string answer needs 'answer' text and "
                                       "'correct' true or false")
            norm = t.strip() if a.get("match_case") else t.strip().casefold()
            if norm in seen and seen[norm] != a["correct"]:
                return _undo(b, entry, f"contradictory: answer '{t}' is both correct and incorrect "
                                       f"({it.where('answers', j)}); keep one")
            seen.setdefault(norm, a["correct"])
            acc = {"text": t.replace("*", "\\*")}
            if not a["correct"]:
                acc["weight"] = Fraction(0)
            if a.get("match_case"):
                acc["case_sensitive"] = True
            if fb(a):
                acc["feedback"] = fb(a)
            if a.get("fuzzy_threshold"):
                item.notes.append(f"{it.where('answers', j)}: fuzzy_threshold {a['fuzzy_threshold']} is dropped; "
                                  "sopcoach accepts exact matches only (add the variants as answers)")
            acc_list.append(acc)
        # a catch-all must come last: jupyterquiz applies the default only when nothing matched
        acc_list.sort(key=lambda x: x["text"] == "*")
        entry["type"] = "short_answer"
        entry["answers"] = acc_list
    else:
        return _undo(b, entry, f"{it.where('type')}: unknown question type {qtype!r}; expected "
                               "multiple_choice, many_choice, numeric or string")
    if b.finish(item, entry):
        return None
    return item.reason


def _undo(b: Builder, entry: dict, reason: str) -> str:
    b.taken.discard(entry["id"])
    return reason


def _letter(j: int) -> str:
    return chr(97 + j) if j < 26 else f"o{j + 1}"


def _num(v: Any) -> Decimal | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    return number(repr(v) if isinstance(v, float) else str(v))


def _rounding_interval(v: Decimal, digits: int) -> tuple[Decimal, Decimal]:
    """Return the numbers that round to ``v`` at ``digits`` significant digits (both ends).

    >>> _rounding_interval(Decimal("3.14"), 3)
    (Decimal('3.135'), Decimal('3.145'))
    """
    if v == 0:
        return Decimal(0), Decimal(0)
    exp = v.adjusted() - digits + 1
    rounded = v.quantize(Decimal(1).scaleb(exp))
    half = Decimal(5).scaleb(exp - 1)
    return rounded - half, rounded + half
