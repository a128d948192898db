"""Question-bank interchange: import Moodle GIFT, Moodle XML, Aiken and jupyterquiz JSON; export GIFT and Moodle XML.

The format of an imported file comes from its content, never its name (:func:`detect_format`).

Importing never drops an item silently: every item of a source file is either a bank question or
a skipped item with its line and the reason (:class:`ImportResult`). Imported questions get

- ``section``: the GIFT ``$CATEGORY`` (made an id), else ``--section``, else the file's name;
- ``clauses``: ``--clause``, else ``unmapped`` (:data:`sopcoach.content.quizbank.UNMAPPED_CLAUSE`), which
  ``load_bank`` and ``sopcoach check`` accept with any playbook; map the questions to SOP clauses
  before they enter the certification bank;
- bilingual texts: a source text in one language fills both ``zh-CN`` and ``en`` (counted in the
  summary, to be translated); Moodle multilang spans give both languages.

Modules: :mod:`.gift`, :mod:`.moodle_xml`, :mod:`.aiken`, :mod:`.jupyterquiz` (importers),
:mod:`.gift` and :mod:`.moodle_xml` (exporters).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from ..errors import ConfigError
from ._common import ImportOptions, ImportResult, ItemResult, bank_yaml
from .aiken import import_aiken
from .gift import export_gift, import_gift
from .jupyterquiz import import_jupyterquiz
from .moodle_xml import export_moodle_xml, import_moodle_xml

IMPORT_FORMATS = ("gift", "aiken", "jupyterquiz", "moodle-xml")
EXPORT_FORMATS = ("gift", "moodle-xml")

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "ImportOptions",
    "ImportResult",
    "ItemResult",
    "bank_yaml",
    "detect_format",
    "export_questions",
    "import_file",
]


def detect_format(path: Path | str, text: str) -> str:
    """Tell the import format from the content (the file name is not trusted).

    - XML (``<?xml`` or a first element) whose root is ``<quiz>`` (or ``<question_categories>``, a
      course backup's questions.xml): ``moodle-xml``; other XML is refused;
    - JSON (parses as a list or object): ``jupyterquiz``;
    - Aiken: Aiken's structure, an ``ANSWER: X`` line (any case) right after an option line
      ``A)`` / ``A.`` (blank lines aside), and no GIFT ``::title::`` or ``$CATEGORY:`` line; braces
      in a question text (``{y}``) do not make such a file GIFT;
    - GIFT: a ``{...}`` answer section, a ``::title::`` or a ``$CATEGORY:`` line;
    - Aiken again: an ``ANSWER:`` line and option lines anywhere, without GIFT braces.

    Raises
    ------
    ConfigError
        When the content matches none of them (the message names what was found and asks for
        ``--format``).

    Examples
    --------
    >>> detect_format("q.gift", "Q?\\nA) x\\nB) y\\nANSWER: A\\n")
    'aiken'
    >>> detect_format("q.txt", "Is {y} a variable?\\nA) yes\\nB) no\\nANSWER: A\\n")
    'aiken'
    """
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<"):
        root = re.search(r"<([A-Za-z_][\w.:-]*)", re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", stripped,
                                                          flags=re.DOTALL))
        if root and root.group(1) in ("quiz", "question_categories"):
            return "moodle-xml"
        what = f"XML with root <{root.group(1)}>" if root else "markup"
        raise ConfigError(f"{path}: {what} is not a question format sopcoach imports; Moodle XML has a <quiz> "
                          "root (or <question_categories> in a course backup)")
    if stripped.startswith(("[", "{")):
        try:
            json.loads(stripped)
        except ValueError:
            pass
        else:
            return "jupyterquiz"
    gift_marks = re.search(r"^[ \t]*(::|\$CATEGORY:)", text, re.MULTILINE)
    if _aiken_structure(text) and not gift_marks:
        return "aiken"
    if gift_marks or _gift_braces(text):
        return "gift"
    if _aiken_like(text):
        return "aiken"
    raise ConfigError(f"{path}: cannot tell the format from the content (no <quiz> XML, JSON, Aiken "
                      f"'ANSWER:' line or GIFT {{...}} answers); give --format ({'|'.join(IMPORT_FORMATS)})")


def _aiken_structure(text: str) -> bool:
    """True when an ``ANSWER:`` line (any case) comes right after an option line (blank lines aside)."""
    prev = ""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if re.match(r"answer[ \t]*:", line, re.IGNORECASE) and re.match(r"[A-Za-z][).]", prev):
            return True
        prev = line
    return False


def _aiken_like(text: str) -> bool:
    """True when the text has an ``ANSWER:`` line and an option line ``A)`` / ``A.`` anywhere."""
    return bool(re.search(r"^[ \t]*answer[ \t]*:", text, re.MULTILINE | re.IGNORECASE)
                and re.search(r"^[ \t]*[A-Za-z][).]", text, re.MULTILINE))


def _gift_braces(text: str) -> bool:
    """True when the text has a ``{...}`` section, which GIFT uses for answers."""
    return bool(re.search(r"\{[^{}]*\}", text))


#: Per detected format, the other format a file may be in and the test that makes it plausible.
_OTHER_FORMAT = {"gift": ("aiken", _aiken_like, "option lines and 'ANSWER:' lines"),
                 "aiken": ("gift", _gift_braces, "{...} sections")}


def import_file(path: Path | str, fmt: str | None = None, options: ImportOptions | None = None,
                taken_ids: set[str] | None = None) -> ImportResult:
    """Import one file in ``fmt`` (default: detected); see :class:`ImportResult`.

    Raises
    ------
    ConfigError
        When the format is unknown or cannot be detected.
    """

    content = None
    if fmt is None:
        try:
            content = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the file: {exc}") from None
        fmt = detect_format(path, content)
    importers = {"gift": import_gift, "aiken": import_aiken, "jupyterquiz": import_jupyterquiz,
                 "moodle-xml": import_moodle_xml}
    if fmt not in importers:
        raise ConfigError(f"unknown import format {fmt!r}; expected one of {', '.join(IMPORT_FORMATS)}")
    result = importers[fmt](path, None, options, taken_ids)  # the importer reads (and reports encoding) itself
    if content is not None and result.items and not result.imported and fmt in _OTHER_FORMAT:
        other, plausible, what = _OTHER_FORMAT[fmt]
        if plausible(content):
            result.notes.append(f"nothing imported as {fmt} (detected from the content); the file also has "
                                f"{what}, as {other} does: try --format {other}")
    return result


def export_questions(questions: Iterable[Any], fmt: str, lang: str = "both") -> tuple[str, list[str]]:
    """Write resolved questions as ``gift`` or ``moodle-xml``; return the text and notes.

    Raises
    ------
    ConfigError
        On an unknown format or language.
    """
    if lang not in ("both", "zh-CN", "en"):
        raise ConfigError(f"unknown language {lang!r}; expected both, zh-CN or en")
    if fmt == "gift":
        return export_gift(questions, lang)
    if fmt == "moodle-xml":
        return export_moodle_xml(questions, lang)
    raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
