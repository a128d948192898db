"""Shared parts of the importers: per-item reports, bilingual texts, ids, HTML to text, YAML output.

Every importer turns one source file into an :class:`ImportResult`: one :class:`ItemResult` per
item of the file (imported or skipped, with its line and the reason), the imported questions as
plain bank entries (``questions:`` list items), and counts of what was changed on the way in
(single-language texts filled into both languages, HTML turned into plain text).
"""
from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from ..content.quizbank import ID, UNMAPPED_CLAUSE, Question, exact_decimal
from ..errors import Problem

CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_QUESTION = TypeAdapter(Question)


@dataclass
class ImportOptions:
    """What the source file cannot say: where imported questions go.

    Parameters
    ----------
    section : str, optional
        Section id for items without a category; default: the file name (stem) as an id.
    clause : str
        Clause id given to every imported question; default :data:`~sopcoach.content.quizbank.UNMAPPED_CLAUSE`
        (``unmapped``), which ``load_bank`` accepts with any playbook.
    id_prefix : str, optional
        Prefix of the generated ids of items without a usable title; default: the file name.
    """

    section: str | None = None
    clause: str = UNMAPPED_CLAUSE
    id_prefix: str | None = None


@dataclass
class ItemResult:
    """One item of a source file: imported as ``question_id`` or skipped for ``reason``."""

    line: int
    kind: str
    question_id: str | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    column: int = 1

    @property
    def imported(self) -> bool:
        return self.question_id is not None


@dataclass
class ImportResult:
    """What one file gave: its items (every one accounted for) and the imported bank entries."""

    path: str
    format: str
    items: list[ItemResult] = field(default_factory=list)
    questions: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    single_language: int = 0
    html_converted: int = 0
    sections: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # about the whole file, printed last

    @property
    def imported(self) -> int:
        return sum(1 for i in self.items if i.imported)

    @property
    def skipped(self) -> list[ItemResult]:
        return [i for i in self.items if not i.imported]

    def summary(self) -> list[str]:
        """Return the report printed by ``sopcoach import``: counts, then one line per skip or note."""
        out = [f"{self.path}: imported {self.imported}, skipped {len(self.skipped)} "
               f"({len(self.items)} items, {self.format})"]
        out += [str(p) for p in self.problems]
        for it in self.items:
            where = f"{self.path}:{it.line}:{it.column}"
            if not it.imported:
                out.append(f"{where}: skipped {it.kind}: {it.reason}")
            for note in it.notes:
                who = f" ({it.question_id})" if it.question_id else ""
                out.append(f"{where}: note{who}: {note}")
        for cat, sec in self.sections.items():
            out.append(f"{self.path}: note: category '{cat}' became section '{sec}'")
        if self.single_language:
            out.append(f"{self.path}: note: {self.single_language} question(s) are in one language; the text "
                       "fills both zh-CN and en, so translate the other language before the exam uses them")
        if self.html_converted:
            out.append(f"{self.path}: note: {self.html_converted} question(s) had HTML markup, turned into plain "
                       "text (the exam shows plain text; bold, italics and the like are dropped)")
        out += [f"{self.path}: note: {n}" for n in self.notes]
        return out


def slug(text: str, limit: int = 64) -> str:
    """Turn ``text`` into an id (letters, digits, ``_ . -``); empty when nothing usable is left.

    >>> slug("U4 p42 1.1 Pre-listening: Antarctica")
    'U4-p42-1.1-Pre-listening-Antarctica'
    >>> slug("销售流程")
    ''
    """
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    s = s[:limit].rstrip("-_.")
    return s if re.match(ID, s or "-") else ""


_BLOCK = r"p|div|blockquote|h[1-6]|ul|ol|table|tr|pre|dl|dt|dd|hr|center|section|article"
_INLINE = (r"a|abbr|b|big|cite|code|col|colgroup|del|em|font|i|ins|kbd|mark|q|s|small|span|strike|strong|"
           r"sub|sup|tbody|td|tfoot|th|thead|tt|u|caption|label|nobr")
_TAG = re.compile(rf"</?(?:{_BLOCK}|{_INLINE}|br|img|li)\b[^>]*>", re.IGNORECASE)
_MULTILANG = re.compile(r'<span\s+(?:lang="([^"]+)"\s+class="multilang"|class="multilang"\s+lang="([^"]+)")\s*>'
                        r"(.*?)</span>", re.IGNORECASE | re.DOTALL)
_LANGS = {"zh_cn": "zh-CN", "zh-cn": "zh-CN", "zh": "zh-CN", "zh_hans": "zh-CN", "en": "en", "en_us": "en",
          "en_gb": "en"}


def html_to_text(text: str, source_newlines: bool = False) -> tuple[str, bool]:
    """Turn HTML into plain text; return it and whether any markup was found.

    Only known HTML tags are removed (``<INSERT TEXT HERE>`` stays); ``<br>`` and block ends become
    line breaks, ``<li>`` a ``- `` item, an image ``[image: alt]``, a link ``text (url)``; entities
    are decoded. ``source_newlines`` keeps the line breaks of the source (Moodle auto-format); in
    HTML proper they are spaces.

    >>> html_to_text("<b>MORE</b><br>\\n Please <i>drive</i> &amp; stop")
    ('MORE\\nPlease drive & stop', True)
    """
    found = bool(_TAG.search(text)) or bool(re.search(r"&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);", text))
    if not found:
        return text.strip(), False
    s = text if source_newlines else re.sub(r"[ \t]*\r?\n[ \t]*", " ", text)

    def img(m: re.Match) -> str:
        alt = re.search(r'alt="([^"]*)"', m.group(0)) or re.search(r'src="([^"]*)"', m.group(0))
        return f"[image: {alt.group(1)}]" if alt and alt.group(1) else "[image]"

    def link(m: re.Match) -> str:
        href, body = m.group(1), m.group(2)
        return body if not href or href in body else f"{body} ({href})"

    s = re.sub(r"<img\b[^>]*>", img, s, flags=re.IGNORECASE)
    s = re.sub(r'<a\b[^>]*?href="([^"]*)"[^>]*>(.*?)</a>', link, s, flags=re.IGNORECASE | re.DOTALL)
    s = re.sub(r"<br\s*/?>", "\n", s, flags=re.IGNORECASE)
    s = re.sub(r"<li\b[^>]*>", "\n- ", s, flags=re.IGNORECASE)
    s = re.sub(rf"</?(?:{_BLOCK})\b[^>]*>", "\n", s, flags=re.IGNORECASE)
    s = re.sub(r"</?(?:td|th)\b[^>]*>", " ", s, flags=re.IGNORECASE)
    s = _TAG.sub("", s)
    s = html.unescape(s).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]{2,}", " ", ln).strip() for ln in s.split("\n")]
    s = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return s.strip(), True


def split_multilang(text: str) -> dict[str, str] | None:
    """Read Moodle multilang spans (``<span lang="en" class="multilang">``) as texts per language.

    Returns ``None`` unless the whole text is such spans. Each span is HTML, turned into text.

    >>> split_multilang('<span lang="zh_cn" class="multilang">阶段</span><span lang="en" class="multilang">Stage</span>')
    {'zh-CN': '阶段', 'en': 'Stage'}
    """
    spans = list(_MULTILANG.finditer(text))
    if not spans or _MULTILANG.sub("", text).strip():
        return None
    out: dict[str, str] = {}
    for m in spans:
        lang = _LANGS.get((m.group(1) or m.group(2)).lower())
        if lang is None:
            return None
        out[lang] = html_to_text(m.group(3))[0]
    return out


class Builder:
    """Turn parsed items of one file into validated bank entries, and keep the file's report.

    Parameters
    ----------
    result : ImportResult
        Receives items, questions and counts.
    options : ImportOptions
    taken_ids : set of str
        Question ids already used (by earlier files of the same import); updated.
    """

    def __init__(self, result: ImportResult, options: ImportOptions, taken_ids: set[str] | None = None):
        self.result = result
        self.options = options
        self.taken = taken_ids if taken_ids is not None else set()
        stem = slug(Path(result.path).name.split(".")[0]) or "imported"
        self.default_section = options.section or stem
        self.prefix = options.id_prefix or stem
        self._mono = False
        self._html = False

    # -- texts ---------------------------------------------------------------------------------
    def text(self, raw: str, fmt: str = "plain") -> dict[str, str] | None:
        """Return a bilingual text from one source text (``None`` when blank).

        ``fmt`` is ``plain`` or ``markdown`` (kept as written), ``html`` or ``moodle`` (HTML turned
        into text; Moodle multilang spans give the two languages). A single-language text fills
        both languages and is counted in the summary.
        """
        if fmt in ("html", "moodle"):
            langs = split_multilang(raw.strip())
            if langs and set(langs) == {"zh-CN", "en"} and all(v.strip() for v in langs.values()):
                return {"zh-CN": langs["zh-CN"], "en": langs["en"]}
            if langs:
                raw = next(iter(langs.values()))
            else:
                raw, changed = html_to_text(raw, source_newlines=fmt == "moodle")
                self._html = self._html or changed
        raw = raw.strip()
        if not raw:
            return None
        self._mono = True
        return {"zh-CN": raw, "en": raw}

    # -- ids -----------------------------------------------------------------------------------
    def new_id(self, wanted: str | None, number: int) -> str:
        """Return a unique question id: ``wanted`` (made an id) or ``<prefix>-<number>``."""
        base = "" if not wanted or not wanted.isascii() else slug(wanted)
        base = base or f"{self.prefix}-{number:03d}"
        qid, n = base, 2
        while qid in self.taken:
            qid, n = f"{base}-{n}", n + 1
        self.taken.add(qid)
        return qid

    def section(self, category: str | None) -> str:
        """Return the section id for a source category (``None``: the default section)."""
        if not category:
            return self.default_section
        parts = [p.strip() for p in re.split(r"(?<!/)/(?!/)", category.strip())
                 if p.strip() and p.strip().lower() not in ("$course$", "$system$", "$module$", "$cat$", "top")]
        name = "/".join(parts)
        if not name:
            return self.default_section
        sec = slug(name.replace("/", "-"))
        if not name.isascii() or not sec:
            sec = f"{sec or 'category'}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:6]}"
        if sec != name:
            self.result.sections.setdefault(name, sec)
        return sec

    # -- items ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Begin a new question (resets the per-question counters)."""
        self._mono = False
        self._html = False

    def bilingual_source(self) -> None:
        """Mark the current question's texts as not single-language (the source had both)."""
        self._mono = False

    def skip(self, item: ItemResult, reason: str) -> None:
        item.reason = reason
        self.result.items.append(item)

    def finish(self, item: ItemResult, entry: dict[str, Any]) -> bool:
        """Validate ``entry`` as a bank question; record it, or skip the item with the reasons."""
        entry.setdefault("clauses", [self.options.clause])
        try:
            _QUESTION.validate_python(entry)
        except ValidationError as exc:
            self.taken.discard(entry.get("id", ""))
            msgs = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"] if p != entry.get("type"))
                msg = err["msg"].removeprefix("Value error, ")
                msgs.append(f"{loc}: {msg}" if loc else msg)
            self.skip(item, "not a valid sopcoach question: " + "; ".join(msgs))
            return False
        item.question_id = entry["id"]
        self.result.items.append(item)
        self.result.questions.append(entry)
        self.result.single_language += self._mono
        self.result.html_converted += self._html
        return True


def weight_text(w: Fraction) -> str:
    """Write a weight exactly: a decimal when it has one, else ``p/q``.

    >>> weight_text(Fraction(1, 2)), weight_text(Fraction(1, 3)), weight_text(Fraction(-1))
    ('0.5', '1/3', '-1')
    """
    dec = exact_decimal(w)
    return f"{w.numerator}/{w.denominator}" if dec is None else f"{dec:f}"


def snap_percent(text: str) -> Fraction:
    """Read a percent weight as a fraction; a value within 0.000005% of a p/q (q <= 100) becomes p/q.

    Moodle writes one third as ``33.33333``; this reads it back as exactly 1/3.

    >>> snap_percent("33.33333"), snap_percent("-50"), snap_percent("33.3")
    (Fraction(1, 3), Fraction(-1, 2), Fraction(333, 1000))
    """
    f = Fraction(Decimal(text)) / 100
    g = f.limit_denominator(100)
    return g if abs(g - f) <= Fraction(5, 10 ** 8) else f


def percent_text(w: Fraction) -> str:
    """Write a weight as a percent for Moodle: exact when it can be, else 5 decimals (Moodle's style).

    >>> percent_text(Fraction(1, 2)), percent_text(Fraction(-1, 3)), percent_text(Fraction(1))
    ('50', '-33.33333', '100')
    """
    p = w * 100
    exact = weight_text(p)
    if "/" not in exact:
        return exact
    return f"{Decimal(p.numerator) / Decimal(p.denominator):.5f}"


def number_text(d: Decimal) -> str:
    """Write a decimal without exponent or trailing zeros.

    >>> number_text(Decimal("1E+3")), number_text(Decimal("3.140"))
    ('1000', '3.14')
    """
    s = f"{d.normalize():f}"
    return s


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data and not re.search(r"[ \t]\n|\n[ \t]*\n[ \t]*$|^\s", data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str)
def _number_scalar(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    if re.fullmatch(r"-?[0-9]+", text):
        return dumper.represent_scalar("tag:yaml.org,2002:int", text)
    if re.fullmatch(r"-?[0-9]+\.[0-9]+", text):
        return dumper.represent_scalar("tag:yaml.org,2002:float", text)
    return dumper.represent_scalar("tag:yaml.org,2002:str", text)


_Dumper.add_representer(Decimal, lambda d, v: _number_scalar(d, number_text(v)))
_Dumper.add_representer(Fraction, lambda d, v: _number_scalar(d, weight_text(v)))


def bank_yaml(questions: list[dict[str, Any]], header: str = "") -> str:
    """Write bank entries as a bank file (top-level ``questions:``), keys in a readable order."""
    body = yaml.dump({"questions": questions}, Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                     width=100, default_flow_style=False)
    return header + body


def number(text: str) -> Decimal | None:
    """Read a number as PHP's ``is_numeric`` would (blanks around, sign, exponent); ``None`` if not."""
    try:
        d = Decimal(text.strip())
    except ArithmeticError:
        return None
    return d if d.is_finite() and text.strip() else None


def exportable(questions: Any, notes: list[str]) -> list[Any]:
    """Return the questions a GIFT or Moodle XML file can hold: a template (``variant:``, numbers
    drawn per attempt, key computed by a playbook rule) has no fixed key, so it is left out with a
    note appended to ``notes``."""
    out = []
    for q in questions:
        if getattr(q, "variant", None) is not None:
            notes.append(f"{q.id}: a template (numbers drawn per attempt, key computed by a playbook rule); "
                         "not exported")
        else:
            out.append(q)
    return out
