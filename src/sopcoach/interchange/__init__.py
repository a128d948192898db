"""Question-bank interchange: import Moodle GIFT, Aiken and jupyterquiz JSON; export GIFT and Moodle XML.

Importing never drops an item silently: every item of a source file is either a bank question or
a skipped item with its line and the reason (:class:`ImportResult`). Imported questions get

- ``section``: the GIFT ``$CATEGORY`` (made an id), else ``--section``, else the file's name;
- ``clauses``: ``--clause``, else ``unmapped`` (:data:`sopcoach.content.quizbank.UNMAPPED_CLAUSE`), which
  ``load_bank`` and ``sopcoach check`` accept with any playbook; map the questions to SOP clauses
  before they enter the certification bank;
- bilingual texts: a source text in one language fills both ``zh-CN`` and ``en`` (counted in the
  summary, to be translated); Moodle multilang spans give both languages.

Modules: :mod:`.gift`, :mod:`.aiken`, :mod:`.jupyterquiz` (importers), :mod:`.gift` and
:mod:`.moodle_xml` (exporters).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from ..errors import ConfigError
from ._common import ImportOptions, ImportResult, ItemResult, bank_yaml
from .aiken import import_aiken
from .gift import export_gift, import_gift
from .jupyterquiz import import_jupyterquiz
from .moodle_xml import export_moodle_xml

IMPORT_FORMATS = ("gift", "aiken", "jupyterquiz")
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
    """Guess the import format from the file name, then from the content.

    Raises
    ------
    ConfigError
        When neither tells (the message asks for ``--format``).

    Examples
    --------
    >>> detect_format("q.txt", "Q?\\nA) x\\nB) y\\nANSWER: A\\n")
    'aiken'
    """
    name = Path(path).name.lower()
    if name.endswith((".gift", ".gift.txt")):
        return "gift"
    if name.endswith(".aiken.txt") or name.endswith(".aiken"):
        return "aiken"
    if name.endswith(".json"):
        return "jupyterquiz"
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("[", "{\"", "{\n")) and stripped.rstrip().endswith(("]", "}")) and "::" not in text:
        return "jupyterquiz"
    if re.search(r"^\s*ANSWER\s*:", text, re.MULTILINE) and re.search(r"^\s*[A-Z][).]\s", text, re.MULTILINE):
        return "aiken"
    if "{" in text and "}" in text:
        return "gift"
    raise ConfigError(f"{path}: cannot tell the format from the name or content; give --format "
                      f"({'|'.join(IMPORT_FORMATS)})")


def import_file(path: Path | str, fmt: str | None = None, options: ImportOptions | None = None,
                taken_ids: set[str] | None = None) -> ImportResult:
    """Import one file in ``fmt`` (default: detected); see :class:`ImportResult`.

    Raises
    ------
    ConfigError
        When the format is unknown or cannot be detected.
    """

    text = None
    if fmt is None:
        try:
            text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the file: {exc}") from None
        fmt = detect_format(path, text)
        text = None  # let the importer read (and report encoding problems) itself
    importers = {"gift": import_gift, "aiken": import_aiken, "jupyterquiz": import_jupyterquiz}
    if fmt not in importers:
        raise ConfigError(f"unknown import format {fmt!r}; expected one of {', '.join(IMPORT_FORMATS)}")
    return importers[fmt](path, text, options, taken_ids)


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
