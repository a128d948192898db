"""Aiken: single-answer multiple choice in plain text, as Moodle's Aiken importer reads it.

A question is its text (one line, or several before the first option), then one option a line
(a capital letter, ``)`` or ``.``, optionally a blank, the text; Moodle reads ``A)text`` too), then ``ANSWER: X``::

    The Moodle project was started by:
    A) Petr Skoda
    B) Martin Dougiamas
    ANSWER: B

Each question becomes a ``single_choice`` question whose option ids are the lowercase letters.
Texts are kept as written (Moodle stores them HTML-escaped, so ``<html>`` and ``&`` are text).
Hand-typed variants are accepted, each with a note on the question (Moodle itself would glue such a
question into the next one's text): lowercase option letters (``a)``, ``b.``), also ``a)text``
without a blank after ``)`` (a lowercase ``a.text`` stays text: ``e.g.`` and ``i.e.`` start
sentences; a question left with fewer than two options names such lines in its reason), and a
lowercase or mixed-case ``answer:`` line. A question never absorbs the next one: text after the
options without an ``ANSWER:`` line closes the question (skipped, with the line to add).
Reported with their line and skipped: a question without options or without an ``ANSWER:`` line,
an answer letter that names no option, several answer letters (Aiken has one correct answer), and
contradictions: one letter used for two options, or the key's text repeated as a wrong option.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import Problem, relpath
from ._common import Builder, ImportOptions, ImportResult, ItemResult

OPTION = re.compile(r"^(?:([A-Z])[).][ \t]*|([a-z])(?:\)[ \t]*|\.[ \t]+))(\S.*)$")
#: A lowercase ``a.text``: an option with the blank after the marker missing, or a sentence (``e.g.``).
GLUED = re.compile(r"^[a-z]\.\S")
ANSWER = re.compile(r"^(answer)\s*:\s*(.*)$", re.IGNORECASE)


def import_aiken(path: Path | str, text: str | None = None, options: ImportOptions | None = None,
                 taken_ids: set[str] | None = None) -> ImportResult:
    """Import an Aiken file: one :class:`ItemResult` per question, valid ones as bank entries.

    Parameters and return value as :func:`sopcoach.interchange.gift.import_gift`.

    Examples
    --------
    >>> r = import_aiken("x.txt", "2+2?\\nA) 3\\nB) 4\\nANSWER: B\\n")
    >>> r.questions[0]["options"][1]["correct"], r.imported
    (True, 1)
    """
    result = ImportResult(relpath(path), "aiken")
    if text is None:
        try:
            text = Path(path).read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            result.problems.append(Problem(result.path, 0, 0, "", f"cannot read the file as UTF-8: {exc}"))
            return result
    b = Builder(result, options or ImportOptions(), taken_ids)
    cur: dict | None = None

    def close(c: dict, reason: str | None = None) -> None:
        item = ItemResult(c["line"], "multichoice")
        if reason is None:
            reason = _convert(c, b, item, len(result.items) + 1)
        if reason is not None:
            b.skip(item, reason)

    for no, raw in enumerate(re.split(r"\r\n|\r|\n", text.lstrip("\ufeff")), 1):
        line = raw.strip()
        if len(line) < 2:  # Moodle skips lines shorter than two characters
            continue
        m_opt, m_ans = OPTION.match(line), ANSWER.match(line)
        if m_opt and cur is not None:
            if m_opt.group(2):
                cur.setdefault("lower", no)
                if line[2] not in " \t":
                    cur.setdefault("glued", no)
            letter = m_opt.group(1) or m_opt.group(2).upper()
            cur["options"].append((letter, m_opt.group(3).strip(), no))
        elif m_ans and cur is not None:
            cur["answer"] = (m_ans.group(2).strip(), no)
            if m_ans.group(1) != "ANSWER":
                cur["answer_case"] = (m_ans.group(1), no)
            close(cur)
            cur = None
        elif m_opt or m_ans:
            result.items.append(ItemResult(no, "line", reason=f"'{line[:40]}' comes before any question text; "
                                           "a question starts with its text"))
        elif cur is not None and cur["options"]:
            close(cur, f"no 'ANSWER:' line after the options (line {cur['options'][-1][2]}); "
                       "end each question with e.g. ANSWER: B")
            cur = {"line": no, "text": [line], "at": [no], "options": []}
        elif cur is not None:
            cur["text"].append(line)
            cur["at"].append(no)
        else:
            cur = {"line": no, "text": [line], "at": [no], "options": []}
    if cur is not None:
        close(cur, "the file ends before this question's 'ANSWER:' line" if cur["options"]
              else "text without options or 'ANSWER:' line")
    return result


def _convert(c: dict, b: Builder, item: ItemResult, number: int) -> str | None:
    """Add the question to the bank; return the reason when it cannot be imported."""
    opts = c["options"]
    letter_text, line = c["answer"]
    if len(opts) < 2:
        glued = [str(at) for t, at in zip(c["text"], c["at"]) if GLUED.match(t)]
        hint = (f"; line(s) {', '.join(glued)} lack the blank after the letter (write 'a. text' or 'A.text')"
                if glued else "")
        return f"{len(opts)} option(s); a question needs at least 2 (lines like 'A) text'){hint}"
    letters = [o[0] for o in opts]
    dup = sorted({x for x in letters if letters.count(x) > 1})
    if dup:
        return (f"contradictory: letter {', '.join(dup)} labels two options (lines "
                f"{', '.join(str(o[2]) for o in opts if o[0] in dup)}); give each option its own letter")
    keys = re.findall(r"[A-Z]", letter_text.upper())
    if len(keys) != 1 or not re.fullmatch(r"[A-Za-z]\W*", letter_text):
        if len(set(keys)) > 1:
            return (f"line {line}: several correct answers '{letter_text}' in a single-answer format; Aiken "
                    "takes one letter (use GIFT with ~%50% weights for several)")
        return f"line {line}: 'ANSWER: {letter_text}' names no option; write one letter, e.g. ANSWER: B"
    key = keys[0]
    if key not in letters:
        return f"line {line}: ANSWER: {key} names no option (options are {', '.join(letters)})"
    key_text = next(o[1] for o in opts if o[0] == key)
    twins = [o for o in opts if o[0] != key and o[1].strip().casefold() == key_text.strip().casefold()]
    if twins:
        return (f"contradictory: the answer text '{key_text}' is both correct ({key}) and incorrect "
                f"({', '.join(o[0] for o in twins)}, line {twins[0][2]}); remove the repeated option")
    if "lower" in c:
        item.notes.append(f"line {c['lower']}: lowercase option letters accepted as capitals (Moodle's Aiken "
                          "wants 'A)' or 'A.')")
    if "glued" in c:
        item.notes.append(f"line {c['glued']}: 'a)' with no blank before the option text accepted as an option")
    if "answer_case" in c:
        word, at = c["answer_case"]
        item.notes.append(f"line {at}: '{word}:' accepted as 'ANSWER:' (Moodle's Aiken wants capitals)")
    b.start()
    entry = {"id": b.new_id(None, number), "type": "single_choice", "section": b.section(None),
             "clauses": [b.options.clause], "text": b.text("\n".join(c["text"])),
             "options": [{"id": o[0].lower(), "text": b.text(o[1]) or {"zh-CN": "", "en": ""},
                          **({"correct": True} if o[0] == key else {})} for o in opts]}
    if b.finish(item, entry):
        return None
    return item.reason
