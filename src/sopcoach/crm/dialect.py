"""How an export's file is written: its size, text encoding, field delimiter and decimal mark.

Each is either declared in the mapping's ``source`` block or detected from the file and reported
(:class:`~sopcoach.crm.reading.SourceFile`); a detection that cannot tell is refused with the fix,
never guessed:

* **Size** (:func:`check_size`, :func:`check_xlsx`): a file above ``source.max_file_mb`` is refused
  before it is read; an XLSX is refused before openpyxl opens it when its parts unpack to more than
  ``source.max_unpacked_mb`` or any part inflates more than :data:`MAX_INFLATE_RATIO` times (a zip
  bomb), the rule of Apache POI's ``ZipSecureFile``.
* **Encoding** (:func:`detect_encoding`): a BOM (UTF-8, UTF-16) or valid UTF-8 is certain; a
  declared ``source.encoding`` is used as is; otherwise charset-normalizer ranks the candidates on a
  bounded sample of the lines holding non-ASCII bytes. Its confidence is ``1 - chaos`` (as in
  ``charset_normalizer.detect``); a confidence under :data:`MIN_CONFIDENCE`, or two near-best
  candidates that read the sample differently, is refused. One tie is settled by the project's users:
  GB18030, the encoding of Chinese Excel's "CSV" (shared case 19), wins over other East Asian codecs.
* **Delimiter** (:func:`detect_delimiter`): the one of ``,`` ``;`` TAB ``|`` that splits every record
  of a sample (parsed by the ``csv`` module) into the header's number of fields.
* **Decimal mark** (:func:`detect_decimal`): from the numeric columns' values: a value with both
  marks (``1.234,56``), a mark followed by other than three digits (``12,5``), a mark repeated
  (``1.234.567``) or a leading zero group (``0,125``) decides; values such as ``1,234`` alone are
  ambiguous and refused.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

from ..errors import ContentError, Problem
from ..i18n import t

__all__ = ["AUTO", "DELIMITERS", "MAX_INFLATE_RATIO", "MIN_CONFIDENCE", "NUMBER_NOISE", "Decoding", "check_size",
           "check_xlsx", "codec_name", "detect_decimal", "detect_delimiter", "detect_encoding"]

AUTO = "auto"
#: the delimiters detection chooses from (a declared ``source.delimiter`` may be any one character)
DELIMITERS = (",", ";", "\t", "|")
#: a detected encoding below this confidence (``1 - chaos``) is refused
MIN_CONFIDENCE = 0.9
#: candidates whose chaos is within this of the best one's are "near-best"
_NEAR = 0.05
#: a zip part that inflates more than this many times is refused (Apache POI ZipSecureFile: 0.01)
MAX_INFLATE_RATIO = 100
#: bytes of non-ASCII lines given to the encoding detector; bytes of text given to the sniffer
_DETECT_SAMPLE = 64_000
_SNIFF_SAMPLE = 32_000
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_GB = ("gb18030", "gbk", "gb2312", "hz")
_EAST_ASIAN = _GB + ("big5", "big5hkscs", "cp950", "cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213",
                     "euc_jp", "euc_jis_2004", "euc_jisx0213", "cp949", "euc_kr", "johab", "iso2022_jp",
                     "iso2022_kr")
_NAMES = {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "gb18030": "GB18030", "utf-16": "UTF-16",
          "utf-32": "UTF-32", "xlsx": "XLSX"}
_FIX = "save it as 'CSV UTF-8' or set source.encoding: {codec} in the mapping"


def codec_name(codec: str) -> str:
    """Return the name a report shows for a Python codec (``gb18030`` -> ``GB18030``)."""
    return _NAMES.get(codec, codec)


# ---------------------------------------------------------------------------------- sizes


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def check_size(name: str, size: int, max_file_mb: float) -> None:
    """Refuse a file larger than ``max_file_mb`` (decimal megabytes) before it is read.

    Raises
    ------
    ContentError
        Naming the file, its size, the limit and the fix.
    """
    if size > max_file_mb * 1e6:
        raise ContentError([Problem(name, 0, 0, "", (
            f"the file is {_mb(size)}, above the limit of {max_file_mb:,g} MB (source.max_file_mb); "
            "export a shorter period, or raise source.max_file_mb in the mapping if the machine has the "
            "memory for it"))])


def check_xlsx(name: str, source: Any, max_unpacked_mb: float) -> None:
    """Refuse an XLSX whose parts unpack to too much, before openpyxl opens it.

    The sizes are the ones the zip directory declares; Python's ``zipfile`` (which openpyxl uses)
    stops a part at its declared size, so a part cannot inflate beyond what is checked here.

    Parameters
    ----------
    name : str
        The file name used in problems.
    source : path or binary file
        The XLSX.
    max_unpacked_mb : float
        The largest total of the parts' unpacked sizes, in decimal megabytes.

    Raises
    ------
    ContentError
        When the file is not a zip (not an XLSX), when the parts unpack to more than
        ``max_unpacked_mb``, or when a part inflates more than :data:`MAX_INFLATE_RATIO` times.
    """
    try:
        with zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ContentError([Problem(name, 0, 0, "", f"the file is not an XLSX workbook ({exc}); open it in "
                                    "Excel and save it as .xlsx or as 'CSV UTF-8'")]) from None
    total = sum(i.file_size for i in infos)
    for i in infos:
        if i.file_size > MAX_INFLATE_RATIO * max(i.compress_size, 1) and i.file_size > 1_000_000:
            raise ContentError([Problem(name, 0, 0, "", (
                f"the workbook part {i.filename} unpacks from {_mb(i.compress_size)} to {_mb(i.file_size)} "
                f"({i.file_size / max(i.compress_size, 1):,.0f} times; the limit is {MAX_INFLATE_RATIO}): "
                "it is not a sheet of data as Excel writes it; export the data again as 'CSV UTF-8'"))])
    if total > max_unpacked_mb * 1e6:
        raise ContentError([Problem(name, 0, 0, "", (
            f"the workbook unpacks to {_mb(total)}, above the limit of {max_unpacked_mb:,g} MB "
            "(source.max_unpacked_mb); export it as 'CSV UTF-8' (read faster, up to source.max_file_mb), "
            "or raise source.max_unpacked_mb in the mapping"))])


# ------------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class Decoding:
    """How a file's bytes are decoded.

    ``codec`` is a Python codec name (``utf-8-sig``, ``utf-8``, ``gb18030``, ``cp1252``, ...);
    ``how`` is ``declared``, ``BOM``, ``valid UTF-8`` or ``detected``; ``confidence`` (0-1) is given
    for a detected codec only; ``also`` names near-best candidates set aside by the GB18030 rule.
    """

    codec: str
    how: str
    confidence: float | None = None
    also: tuple[str, ...] = ()

    def describe(self, lang: str | None = None) -> str:
        """Return e.g. ``cp1250 (detected, confidence 0.98)``, ``UTF-8`` or ``UTF-8 with BOM``.

        ``lang``: ``zh-CN`` or ``en`` (default: :func:`sopcoach.i18n.current_lang`).
        """
        if self.how in ("valid UTF-8", "BOM"):
            return codec_name(self.codec)
        detail = how_text(self.how, lang)
        if self.confidence is not None:
            detail += t(f"，置信度 {self.confidence:.2f}", f", confidence {self.confidence:.2f}", lang)
        if self.also:
            also = ", ".join(self.also)
            detail += t(f"；也可按 {also} 读，按中文处理", f"; also readable as {also}, Chinese assumed", lang)
        return f"{codec_name(self.codec)} ({detail})"


def how_text(how: str, lang: str | None = None) -> str:
    """Say how an encoding, delimiter or decimal mark was chosen (``declared``, ``detected`` ...)."""
    if how.startswith("detected from "):
        return t(f"由 {how[len('detected from '):]} 检测", how, lang)
    zh = {"declared": "映射中声明", "detected": "检测", "declared by source.thousands": "由 source.thousands 确定",
          "no value needed one": "没有数值用到"}
    return t(zh.get(how, how), how, lang)


def _declared_codec(declared: str) -> str:
    codec = codecs.lookup(declared).name
    return "gb18030" if codec in _GB else codec  # GB18030 reads GBK and GB2312 bytes alike


def _non_ascii_lines(raw: bytes, limit: int = _DETECT_SAMPLE) -> bytes:
    """Return the first line and the lines holding non-ASCII bytes, up to ``limit`` bytes."""
    first_end = raw.find(b"\n")
    parts = [raw[:first_end + 1 if first_end >= 0 else len(raw)]]
    size, pos = len(parts[0]), len(parts[0])
    high = re.compile(rb"[\x80-\xff]")
    while size < limit:
        m = high.search(raw, pos)
        if m is None:
            break
        start = raw.rfind(b"\n", 0, m.start()) + 1
        end = raw.find(b"\n", m.start())
        end = len(raw) if end < 0 else end + 1
        parts.append(raw[start:end])
        size += end - start
        pos = end
    return b"".join(parts)


def _first_difference(a: str, b: str) -> tuple[str, str]:
    """Return the first line on which two readings differ, in each reading."""
    for x, y in zip(a.splitlines(), b.splitlines()):
        if x != y:
            return x.strip()[:60], y.strip()[:60]
    return a[:60], b[:60]


def detect_encoding(raw: bytes, declared: str = AUTO, name: str = "<bytes>", *, utf8: bool = True) -> Decoding:
    """Decide how to decode an export's bytes; refuse a guess that cannot be trusted.

    Parameters
    ----------
    raw : bytes
        The file content (only a bounded sample is examined).
    declared : str
        The mapping's ``source.encoding``: ``auto`` or a Python codec name (``cp1252``, ``gbk`` ...).
    name : str
        The file name used in problems.
    utf8 : bool
        Whether UTF-8 is still possible (False once a strict UTF-8 decoding of the file failed).

    Returns
    -------
    Decoding
        The codec, how it was chosen, and (detected only) the detector's confidence. Valid UTF-8 is
        decided on the sample; the caller's strict decoding of the whole file is the final check.

    Raises
    ------
    ContentError
        When (``auto``) no candidate reaches :data:`MIN_CONFIDENCE`, or near-best candidates read
        the sample differently; the message shows both readings and the fix.

    Examples
    --------
    >>> detect_encoding("客户名称,金额\\n华东贸易,12000\\n".encode("gbk")).codec
    'gb18030'
    >>> detect_encoding(b"id,name\\n1,Ann\\n").how
    'valid UTF-8'
    """
    if declared != AUTO:
        codec = _declared_codec(declared)
        if codec == "utf-8" and raw.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        return Decoding(codec, "declared")
    for bom, codec in _BOMS if utf8 else ():
        if raw.startswith(bom):
            return Decoding(codec, "BOM")
    head = raw[:_DETECT_SAMPLE]
    cut = head.rfind(b"\n") + 1 if len(raw) > len(head) else len(head)
    try:
        if utf8:
            head[:cut or len(head)].decode("utf-8")
            return Decoding("utf-8", "valid UTF-8")
    except UnicodeDecodeError:
        pass
    return _detect(_non_ascii_lines(raw), name)


def _detect(sample: bytes, name: str) -> Decoding:
    from charset_normalizer import from_bytes  # noqa: PLC0415 - only for files that are not UTF-8

    matches = sorted(from_bytes(sample), key=lambda m: (m.chaos, -m.coherence))
    if not matches:
        raise ContentError([Problem(name, 0, 0, "", "the file's text encoding cannot be recognised (no "
                                    "candidate reads it without garbled characters); " + _FIX.format(codec="<codec>"))])
    best = matches[0]
    near = [m for m in matches if m.chaos <= best.chaos + _NEAR]
    gb = [m for m in near if m.encoding in _GB]
    also: tuple[str, ...] = ()
    if gb and len(near) > 1 and all(m.encoding in _EAST_ASIAN for m in near):
        also = tuple(m.encoding for m in near if m is not gb[0])
        best, near = gb[0], [gb[0]]
    codec = _reported(best.encoding, best.could_be_from_charset)
    confidence = round(1.0 - best.chaos, 2)
    if len(near) > 1:
        other = near[1]
        a, b = _first_difference(str(best), str(other))
        names = [_reported(m.encoding, m.could_be_from_charset) for m in near]
        likely = next((c for c in ("cp1252", "gb18030") if c in names), codec)  # Excel's defaults first
        raise ContentError([Problem(name, 0, 0, "", (
            f"the file is not UTF-8 and its encoding cannot be told ({', '.join(names[:6])}"
            f"{' ...' if len(names) > 6 else ''} all read it, differently: e.g. {a!r} as {codec} but {b!r} as "
            f"{names[1]}); " + _FIX.format(codec=f"<the CRM's encoding, e.g. {likely}>")))])
    if confidence < MIN_CONFIDENCE:
        raise ContentError([Problem(name, 0, 0, "", (
            f"the file is not UTF-8 and the best guess, {codec}, has a confidence of only "
            f"{confidence:.2f} (at least {MIN_CONFIDENCE} is needed); " + _FIX.format(codec=codec)))])
    return Decoding(codec, "detected", confidence, also)


def _reported(encoding: str, same: Iterable[str]) -> str:
    """The codec to use for a candidate: GB18030 for the GB family, cp1252 when it reads alike."""
    if encoding in _GB:
        return "gb18030"
    return "cp1252" if "cp1252" in same else encoding


# ------------------------------------------------------------------------------ delimiter


def detect_delimiter(text: str, name: str) -> str:
    """Return the field delimiter of a CSV sample: ``,`` ``;`` TAB or ``|``.

    The one candidate the header holds is taken; of several, the one that splits the header and
    every record of the sample (parsed by the ``csv`` module, quotes respected) into the same
    number of fields, more than one. (``csv.Sniffer`` settles such a tie by a fixed preference for
    ``,``, which splits ``Betrag, EUR;Ort`` over decimal commas wrongly.) A header holding none of
    them is a one-column file (``,``).

    Raises
    ------
    ContentError
        When no candidate, or more than one, splits every record evenly; the fix is to declare
        ``source.delimiter``.

    Examples
    --------
    >>> detect_delimiter("Kunde;Betrag\\nMüller;1.234,56\\n", "x.csv")
    ';'
    """
    sample = text[:_SNIFF_SAMPLE]
    if len(text) > _SNIFF_SAMPLE and "\n" in sample:
        sample = sample[:sample.rfind("\n") + 1]
    header = sample.split("\n", 1)[0]
    present = [d for d in DELIMITERS if d in header]
    if not present:
        return ","
    if len(present) == 1:
        return present[0]  # ragged records are the parser's to report
    even = {}
    for d in present:
        records = [r for r in csv.reader(io.StringIO(sample), delimiter=d) if r]
        if len(text) > len(sample) and len(records) > 2:
            records = records[:-1]  # the sample may end inside a quoted field
        widths = {len(r) for r in records}
        if len(widths) == 1 and len(records[0]) > 1:
            even[d] = len(records[0])
    if len(even) == 1:
        return next(iter(even))
    shown = lambda ds: " and ".join("TAB" if d == "\t" else repr(d) for d in ds)  # noqa: E731
    why = (f"{shown(even)} each split every line evenly" if even else
           f"none of {shown(present)} splits every line into the header's number of fields")
    raise ContentError([Problem(name, 1, 0, "", f"the field delimiter cannot be told ({why}); set "
                                "source.delimiter in the mapping (e.g. source.delimiter: ';')")])


# -------------------------------------------------------------------------------- decimal

#: distinct number texts examined once one of them has told the mark
_DECIMAL_SAMPLE = 20_000
#: what a number text may carry besides digits and marks: blanks (also non-breaking) and currencies
NUMBER_NOISE = r"[\s$¥￥€£]|CNY|RMB|USD|EUR"
_STRIP = re.compile(NUMBER_NOISE + r"|%|^[+-]")


def detect_decimal(values: Iterable[str]) -> tuple[str | None, str]:
    """Tell the decimal mark from number texts: ``"."``, ``","`` or None (no value tells).

    Once a mark is told, the values after the first :data:`_DECIMAL_SAMPLE` are not examined: the
    strict number parse makes any of them written the other way a row problem.

    Returns
    -------
    (str or None, str)
        The mark, and an example value that shows it ("" when no value tells).

    Raises
    ------
    ValueError
        When values show both marks as decimal marks (the message names one of each), or when
        values such as ``1,234`` can be read both ways and none tells (the message names one).

    Examples
    --------
    >>> detect_decimal(["1.234,56", "12,5", "900"])
    (',', '1.234,56')
    >>> detect_decimal(['12,500', '1,200.50'])
    ('.', '1,200.50')
    """
    evidence: dict[str, str] = {}
    ambiguous = None
    for n, v in enumerate(values):
        if evidence and n >= _DECIMAL_SAMPLE:
            break  # told; a later value written the other way is a row problem (the parse is strict)
        t = _STRIP.sub("", v)
        if not t or not re.fullmatch(r"[\d.,]*\d[\d.,]*", t):
            continue
        dots, commas = t.count("."), t.count(",")
        if dots and commas:
            mark = "." if t.rfind(".") > t.rfind(",") else ","
        elif dots or commas:
            sep = "." if dots else ","
            head, _, tail = t.rpartition(sep)
            if t.count(sep) > 1:
                mark = "," if sep == "." else "."  # 1.234.567: a repeated mark groups thousands
            elif len(tail) != 3 or head in ("", "0") or head.startswith("0"):
                mark = sep  # 12,5  0,125  ,5: a decimal mark
            else:
                ambiguous = ambiguous or v
                continue
        else:
            continue
        evidence.setdefault(mark, v)
    if len(evidence) > 1:
        raise ValueError(f"{evidence['.']!r} has '.' and {evidence[',']!r} has ',' as the decimal mark")
    if evidence:
        mark = next(iter(evidence))
        return mark, evidence[mark]
    if ambiguous is not None:
        raise ValueError(f"{ambiguous!r} can be read with ',' or '.' as the decimal mark and no value tells which")
    return None, ""
