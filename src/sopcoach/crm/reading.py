"""Read CRM exports (CSV, XLSX) into one canonical model of deals, events and leads.

The SOP asks for follow-up data tracked in the CRM (seed:2.3.2) and for KPIs analysed from it
(seed:1.3.2). Every CRM writes its own columns, date formats and stage names, so each source is
described by a **mapping** (YAML, see ``src/sopcoach/crm/mappings/``): which file is which table, which
column is which field, the declared date formats and time zone, and how stage names map onto the
playbook's stages. Built-in mappings: ``maven``, ``salesforce``, ``zoho``, ``simulated``.

Reading never guesses:

* Size: a file above ``source.max_file_mb`` (2000) is refused before it is read, an XLSX that
  unpacks to more than ``source.max_unpacked_mb`` (500) or inflates like a zip bomb before openpyxl
  opens it, a sheet beyond Excel's 1,048,576 rows or 16,384 columns while it is read.
* Text encoding, field delimiter and decimal mark: declared in the mapping's ``source`` block, or
  detected and reported in :class:`SourceFile` (see :mod:`sopcoach.crm.dialect`). UTF-8 (a BOM is
  dropped, also from header names; shared case 18) is certain; any other encoding is detected by
  charset-normalizer with a confidence, GB18030 for Chinese Excel's files (case 19); a guess with a
  low confidence, or one that near-best candidates read differently (``Zoë``/``Zoė``), is refused
  with the fix, never read as mojibake. The delimiter is one of ``,`` ``;`` TAB ``|``; the decimal
  mark is told by values such as ``1.234,56`` or ``12,5``, and values such as ``1,234`` alone are
  refused as ambiguous.
* Every value is read as text first, so ids keep their leading zeros (case 24).
* Numbers accept the file's thousands separator (or a blank) in groups of three and a currency sign
  (``"12,500"``, ``"$22,700.00"``, ``1.234,56 €``; case 22); anything else is a row problem, never a
  string sum.
* Dates are parsed **only** with the formats the mapping declares (``strptime`` codes, or
  ``excel_serial`` for Excel day numbers from the 1899-12-30 origin, accepted between 20000 and
  80000; case 20), and a format is chosen per **column**, never per row. The declared formats are
  tried on every distinct value of the column: a format that reads all of them (values no format
  reads are row problems and do not count) is used for the whole column, so ``05/04/2024`` beside
  ``13/04/2024`` under ``["%m/%d/%Y", "%d/%m/%Y"]`` is 5 April. Formats needed together (ISO times
  beside Excel serials; Zoho's ``2021-04-15 23:03:00`` beside ``15 Apr, 2021 00:02:00``) each read
  their own values, as long as no value is read by two of them as different instants. Otherwise
  the column is ambiguous and the export is refused, naming the column, the field, values with
  both readings and the fix (keep one format in the mapping, or correct the values); so is a
  column that two formats both read entirely, differently. ``CrmData.date_formats`` lists the
  formats used per column.
* Naive local times are placed in the mapping's time zone; a wall time skipped by a DST change is
  a row problem, never shifted (case 28). A date-only value (a format without a time of day, a
  whole Excel serial, an XLSX date at midnight) means the day: on a day whose midnight a DST change
  skipped (America/Santiago 2024-09-08) it is the day's first instant (01:00 local); a day skipped
  whole is a row problem. A wall time repeated by a DST change takes its first occurrence.
  Timestamps are stored in UTC.

Row problems are collected (not raised) as :class:`~sopcoach.errors.Problem` records naming the file,
the source row (the header is row 1), the column and the fix; a broken mapping, a missing column or
an ambiguous date column raises :class:`~sopcoach.errors.ContentError` with all of them. Besides
unreadable values, these are row problems: a deals row with a blank deal id or a blank stage, a
stage name (of a deal or a stage change) the mapping's ``stages:`` does not list (names match
exactly; one differing only in case is refused with a message saying so), and a deal id on two
deals rows (in one file or across files) whose values differ. Rows identical in every field are
counted once (:meth:`CrmData.unique_deals`; the data-quality check ``duplicate_deal`` names them).

The canonical frames (``CrmData``):

``deals``
    One row per deal. ``deal_id``, ``name`` (the deal's name in the CRM, e.g. Salesforce's Opportunity
    Name), ``owner``, ``account``, ``account_name`` (the customer's name: the deals table's own
    column, else the accounts table's ``name`` of ``account``, else the company of the lead that
    became the deal), ``tier``, ``product``, ``stage`` (a
    playbook stage id, ``won`` or ``lost``; missing when the raw stage is unknown), ``stage_raw``,
    ``outcome`` (``open``/``won``/``lost``), ``team``, ``region``, ``role``, ``lost_reason``,
    ``source_file``: str; ``amount``: float64 (export currency); ``probability``: float64 (the CRM's
    win probability of the deal, fraction 0-1; map it with ``percent: true`` when written 0-100);
    ``created``, ``closed``: ``datetime64[us, UTC]``
    (``closed`` only for won or lost deals: CRMs keep the *expected* close date of open deals in the
    same field); ``source_row``: int64.
``events``
    One row per activity. ``event_id``, ``deal_id``, ``account_id``, ``actor``, ``direction``
    (``inbound``/``outbound``), ``stage``, ``stage_raw``, ``milestone`` (an SLA event name of the
    playbook, e.g. ``proposal_sent``), ``subject``, ``approved_by``, ``duplicate_of``,
    ``source_file``: str; ``kind``: one of :data:`EVENT_KINDS`; ``timestamp``, ``end``,
    ``modified``: ``datetime64[us, UTC]``; ``duration_s``, ``amount``, ``discount`` (fraction
    0-1): float64; ``synthetic``: bool (made from a deal's date column); ``source_row``: int64.
``leads``
    ``lead_id``, ``owner``, ``company``, ``status``, ``deal_id``: str; ``converted``: bool;
    ``created``, ``converted_at``: ``datetime64[us, UTC]``.
"""
from __future__ import annotations

import fnmatch
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..content.businesstime import BusinessCalendar
from ..content.yaml_loader import raise_problems
from ..errors import BusinessTimeError, ContentError, Problem, relpath
from ..i18n import t as say
from ..labels import TABLE_KIND_WORDS
from .dialect import (AUTO, DELIMITERS, NUMBER_NOISE, Decoding, check_size, check_xlsx, codec_name, detect_decimal,
                      detect_delimiter, detect_encoding, how_text)
from .mapping import (_BOOL, _DATE, _NUM, _TEXT, BUILTIN_SOURCES, DEAL_COLUMNS, EVENT_COLUMNS, EVENT_KINDS,
                      EXCEL_SERIAL, EXCEL_SERIAL_RANGE, FIELDS, LEAD_COLUMNS, OUTCOMES, REQUIRED, UTC, FieldSpec,
                      Mapping, SourceSpec, TableSpec, load_mapping)

__all__ = ["CrmData", "SourceFile", "decode_bytes", "detect_source", "read_export", "stage_paths"]

_EXCEL_ORIGIN = pd.Timestamp("1899-12-30")
#: per table kind, the field naming each row (one distinct value per row)
_ID = {"deals": "deal_id", "events": "event_id", "leads": "lead_id", "owners": "owner", "accounts": "account",
       "products": "product"}
_TS = "datetime64[us, UTC]"
#: text columns: pandas' "str" dtype with Python string objects, whatever pandas' default storage (with
#: pyarrow installed it is Arrow, whose per-row take and filter are slower for the reader's and the
#: review's work on distinct values and row subsets)
TEXT = pd.StringDtype("python", na_value=np.nan)
_TRUE = {"true", "yes", "y", "1", "是"}
_FALSE = {"false", "no", "n", "0", "否", ""}


# ----------------------------------------------------------------------------------- decoding


def decode_bytes(raw: bytes, declared: str = AUTO, name: str = "<bytes>") -> tuple[str, str]:
    """Decode an export's bytes with the declared or detected encoding; never a silent guess.

    Parameters
    ----------
    raw : bytes
        The file content.
    declared : str
        The mapping's ``source.encoding``: ``auto`` (see :func:`~sopcoach.crm.dialect.detect_encoding`)
        or a Python codec name (``utf-8``, ``gbk``, ``cp1252`` ...).
    name : str
        The file name used in problems.

    Returns
    -------
    (str, str)
        The text, and the codec used: ``utf-8-sig`` (a BOM was present), ``utf-8``, ``gb18030``,
        ``cp1252`` ...

    Raises
    ------
    ContentError
        When the bytes are not valid in the declared or detected encoding, or (``auto``) the
        encoding cannot be detected with confidence.

    Examples
    --------
    >>> decode_bytes("\\ufeffDeal ID,Stage".encode("utf-8"))
    ('Deal ID,Stage', 'utf-8-sig')
    >>> decode_bytes("客户名称,金额\\n华东贸易,12000\\n".encode("gbk"))
    ('客户名称,金额\\n华东贸易,12000\\n', 'gb18030')
    >>> decode_bytes("客户名称".encode("gbk"))  # 8 bytes: too few to tell  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sopcoach.errors.ContentError: <bytes>: the file is not UTF-8 and its encoding cannot be told (...
    """
    decoding = detect_encoding(raw, declared, name)
    try:
        return raw.decode(decoding.codec), decoding.codec
    except UnicodeDecodeError as exc:
        raise ContentError([_undecodable(name, decoding, exc)]) from None


def _undecodable(name: str, decoding: Decoding, exc: UnicodeDecodeError) -> Problem:
    """The problem of a file that is not valid in the codec chosen for it."""
    codec = codec_name(decoding.codec)
    fix = ("correct source.encoding in the mapping" if decoding.how == "declared"
           else "set source.encoding in the mapping")
    return Problem(name, 0, 0, "", f"the file is not valid {codec} ({exc.reason} at byte {exc.start}"
                   f"{' of a block' if len(exc.object) < 1_000_000 else ''}: "
                   f"{exc.object[exc.start:exc.start + 4]!r}); save it as 'CSV UTF-8' or {fix}")


# ------------------------------------------------------------------------------ raw reading


@dataclass(frozen=True)
class SourceFile:
    """One file read: which table it fed, how its text was written and how many data rows it had.

    ``encoding`` is the Python codec used (``xlsx`` for a workbook); ``decoding`` says how it was
    chosen (declared, BOM, valid UTF-8, or detected with a confidence); ``delimiter`` and
    ``decimal`` are the field delimiter and decimal mark used, each with how it was chosen
    (``declared``, ``detected``, or for the decimal mark ``no value needed one``).
    """

    path: str
    table: str
    kind: str
    encoding: str
    rows: int
    decoding: Decoding | None = None
    delimiter: str | None = None
    delimiter_how: str = ""
    decimal: str | None = None
    decimal_how: str = ""

    @property
    def confidence(self) -> float | None:
        """The detector's confidence (0-1) in a detected encoding; None when it was certain."""
        return self.decoding.confidence if self.decoding else None

    def describe(self, lang: str | None = None, short: bool = False) -> str:
        """Return one line: rows, what they were read as, encoding (and confidence), delimiter and decimal mark.

        ``lang``: ``zh-CN`` or ``en`` (default: :func:`sopcoach.i18n.current_lang`). ``short``: the
        file's name without its folder (an upload's folder is a temporary one).
        """
        enc = self.decoding.describe(lang) if self.decoding else codec_name(self.encoding)
        name = Path(self.path).name if short else self.path
        zh, en = TABLE_KIND_WORDS.get(self.kind, (self.kind, self.kind))
        parts = [say(f"{name}：{self.rows:,} 行{zh}，编码 {enc}", f"{name}: {self.rows:,} rows of {en}, decoded as {enc}", lang)]
        if self.delimiter is not None:
            shown = "TAB" if self.delimiter == "\t" else repr(self.delimiter)
            how = how_text(self.delimiter_how, lang)
            parts.append(say(f"分隔符 {shown}（{how}）", f"delimiter {shown} ({how})", lang))
        if self.decimal is not None:
            how = how_text(self.decimal_how, lang)
            parts.append(say(f"小数点 {self.decimal!r}（{how}）", f"decimal mark {self.decimal!r} ({how})", lang))
        return say("，", ", ", lang).join(parts)


def _name_of(item: Any) -> str:
    return item[0] if isinstance(item, tuple) else relpath(item)


def _basename(item: Any) -> str:
    return Path(item[0]).name if isinstance(item, tuple) else Path(item).name


@dataclass(frozen=True)
class _Raw:
    """A file's cells as read, and how its text was written (see :class:`SourceFile`)."""

    frame: pd.DataFrame
    codec: str
    decoding: Decoding | None = None
    delimiter: str | None = None
    delimiter_how: str = ""
    #: per column, (codes, distinct stripped texts) as :meth:`_Ctx.factorized` returns them, when the
    #: parser had them at hand
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _read_raw(item: Any, table: TableSpec, source: SourceSpec, progress: bool,
              max_file_mb: float | None = None) -> _Raw:
    """Read one file as text cells (CSV) or typed cells (XLSX), within the size limits.

    A CSV's encoding and delimiter are the declared ones or detected (:mod:`sopcoach.crm.dialect`);
    the parser's strict decoding of the whole file is the final check of the encoding.
    """
    name = _basename(item)
    shown = _name_of(item)
    size = len(item[1]) if isinstance(item, tuple) else Path(item).stat().st_size
    check_size(shown, size, max_file_mb or source.max_file_mb)
    if name.lower().endswith((".xlsx", ".xlsm")):
        src = io.BytesIO(item[1]) if isinstance(item, tuple) else str(item)
        check_xlsx(shown, src, source.max_unpacked_mb)
        return _Raw(_read_xlsx(item, table.sheet, shown), "xlsx")
    if not isinstance(item, tuple):
        item = (str(item), Path(item).read_bytes())  # read once: scanned for blanks, then parsed
    decoding = detect_encoding(item[1], source.encoding, shown)
    df = None
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for _ in range(2):
        head = item[1][:64_000].decode(decoding.codec, errors="replace")
        delimiter, how = ((source.delimiter, "declared") if source.delimiter != AUTO
                          else (detect_delimiter(head, shown), "detected"))
        try:  # pandas' C parser drops a UTF-8 BOM itself and decodes UTF-8 fastest as "utf-8"
            df, codes = _read_csv(item, "utf-8" if decoding.codec == "utf-8-sig" else decoding.codec, delimiter,
                           progress, name)
            break
        except UnicodeDecodeError as exc:
            if decoding.how != "valid UTF-8":
                raise ContentError([_undecodable(shown, decoding, exc)]) from None
            # valid UTF-8 at the start only: the lines with non-ASCII bytes decide
            decoding = detect_encoding(item[1], source.encoding, shown, utf8=False)
    assert df is not None
    codes = {str(c).lstrip("\ufeff").strip(): v for c, v in codes.items()}
    df.columns = [str(c).lstrip("\ufeff").strip() for c in df.columns]
    if "blank_edges" not in df.attrs:
        df.attrs["blank_edges"] = _may_have_blank_edges(item, delimiter, decoding.codec)
    return _Raw(df, decoding.codec, decoding, delimiter, how, codes)


def _may_have_blank_edges(item: Any, delimiter: str = ",", codec: str = "utf-8") -> bool:
    """Tell (conservatively) whether any CSV field may start or end with a blank.

    A field with a leading or trailing space or tab has one next to a delimiter, a quote or a line
    end. When no blank in the file has such a neighbour, no value needs stripping; the scan runs at
    memory speed (numpy) and saves a per-value strip on large files. Only for encodings that write
    ASCII as ASCII (not UTF-16 or UTF-32, and a one-byte delimiter).
    """
    if isinstance(item, tuple):
        raw = item[1]
    elif Path(item).name.lower().endswith((".xlsx", ".xlsm")):
        return True
    else:
        raw = Path(item).read_bytes()
    sep = delimiter.encode("utf-8" if codec == "utf-8-sig" else codec)  # (utf-8-sig would add a BOM)
    if codec.startswith("utf-16") or codec.startswith("utf-32") or len(sep) != 1:
        return True
    if b"\t" in raw or raw[:1] == b" " or raw[-1:] == b" ":
        return True
    arr = np.frombuffer(raw, dtype=np.uint8)
    blank = np.flatnonzero(arr == 32)
    if not len(blank):
        return False
    edge = np.zeros(256, dtype=bool)
    edge[list(b'"\r\n' + sep)] = True
    return bool(edge[arr[blank - 1]].any() or edge[arr[blank + 1]].any())


def _read_csv(item: Any, codec: str, delimiter: str, progress: bool, name: str
              ) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Read a CSV's cells as text: polars parses a UTF-8 file, pandas' C parser whatever polars cannot.

    Every cell is text and only an empty cell is missing ("NA", "null" ... stay text); blank lines are
    skipped, quoted fields may hold line breaks. See :func:`_read_csv_polars` for the files pandas
    reads; pandas' rules and errors (a row with more cells than the header, a broken quote, an
    undecodable byte) are the ones the reader's messages are built on. Returns the frame and
    (empty: codes are computed per column when needed) the factorized columns.
    """
    size = len(item[1]) if isinstance(item, tuple) else Path(item).stat().st_size
    bar = name if progress and size > 4_000_000 else None
    if codec == "utf-8" and len(delimiter) == 1 and isinstance(item, tuple):
        with tqdm(total=size, unit="B", unit_scale=True, desc=name, leave=False, disable=bar is None) as shown:
            df = _read_csv_polars(item[1], delimiter)
            shown.update(size)
        if df is not None:
            return df, {}
    # every cell is text (kept as Python str objects: the conversions below run once per distinct
    # value, so a validated string column per raw column would be work thrown away); only an empty
    # cell is missing ("NA", "null" ... stay text)
    opts = dict(dtype=object, keep_default_na=False, na_values=[""], encoding=codec, sep=delimiter)
    handle = io.BytesIO(item[1]) if isinstance(item, tuple) else open(item, "rb")
    try:
        if bar is None:
            return pd.read_csv(handle, **opts), {}
        chunks = []
        with tqdm(total=size, unit="B", unit_scale=True, desc=name, leave=False) as shown:
            for chunk in pd.read_csv(handle, chunksize=250_000, **opts):
                chunks.append(chunk)
                shown.update(min(handle.tell(), size) - shown.n)
        return (pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()), {}
    finally:
        handle.close()


def _read_csv_polars(data: bytes, delimiter: str) -> pd.DataFrame | None:
    """Read a UTF-8 CSV with polars into Arrow-backed text columns; None to let pandas' C parser read it.

    The same cells as pandas' C parser with ``dtype=object, keep_default_na=False, na_values=[""]``
    (an empty cell, quoted or not, is missing). Whatever polars reads differently is left to
    pandas: a file polars refuses (invalid UTF-8, a row with more cells than the header, a quote
    inside a field), a blank, whitespace-only or repeated column name (pandas renames those), a
    line break that is a lone CR, and a row with no value in any cell (pandas skips blank and
    whitespace-only lines, polars keeps them as rows).
    """
    import polars as pl  # noqa: PLC0415 - imported on the first CSV read (the app starts without it)
    if re.search(b"\r(?!\n)", data):
        return None  # old Mac line ends (pandas reads a lone CR as a line end, polars as text)
    try:
        df = pl.read_csv(data, separator=delimiter, has_header=True, infer_schema=False, quote_char='"',
                         truncate_ragged_lines=False, raise_if_empty=True, encoding="utf8")
    except (pl.exceptions.PolarsError, ValueError):
        return None
    names = df.columns
    if (len(set(names)) != len(names) or any(not n.strip() or "_duplicated_" in n for n in names)):
        return None
    if len(names) == 0:
        return None
    rest = df.select(pl.all_horizontal(pl.col(names[1:]).is_null())).to_series() if len(names) > 1 else None
    lone = df[names[0]] if rest is None else df[names[0]].filter(rest)  # first cells of rows with no other value
    if len(lone) and (lone.is_null() | lone.str.contains(r"^[ \t]*$")).any():
        return None  # (a blank line, or a line of delimiters only, which pandas keeps)
    # polars' own string views, not copied into Arrow strings: the reader takes each column's distinct
    # values (:meth:`_Ctx.factorized`), or the few id columns once as text (:meth:`_Ctx.text`)
    table = df.to_arrow(compat_level=pl.CompatLevel.newest())
    frame = pd.DataFrame({n: pd.arrays.ArrowExtensionArray(table.column(i)) for i, n in enumerate(names)},
                         index=pd.RangeIndex(len(df)), copy=False)
    frame.attrs["blank_edges"] = True  # (text is stripped once per distinct value; an empty quoted cell is missing)
    return frame


#: Excel's own sheet limits: a sheet beyond them was not written by Excel or an export of it
EXCEL_MAX_ROWS, EXCEL_MAX_COLUMNS = 1_048_576, 16_384


def _read_xlsx(item: Any, sheet: str | None, name: str) -> pd.DataFrame:
    """Read a sheet's cells as typed values; refuse a sheet beyond Excel's row or column limits."""
    import openpyxl  # noqa: PLC0415 - heavy: openpyxl, only for .xlsx exports
    src = io.BytesIO(item[1]) if isinstance(item, tuple) else str(item)
    wb = openpyxl.load_workbook(src, read_only=True, data_only=True)
    too_big = ContentError([Problem(name, 0, 0, "", (
        f"the sheet has more than Excel's {EXCEL_MAX_ROWS:,} rows or {EXCEL_MAX_COLUMNS:,} columns: it was not "
        "written by Excel; export the data as 'CSV UTF-8'"))])
    try:
        ws = wb[sheet] if sheet else wb.worksheets[0]
        if (ws.max_row or 0) > EXCEL_MAX_ROWS or (ws.max_column or 0) > EXCEL_MAX_COLUMNS:
            raise too_big  # the sheet's declared dimension
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None) or ()
        if len(header) > EXCEL_MAX_COLUMNS:
            raise too_big
        names = [str(h).lstrip("\ufeff").strip() if h is not None else "" for h in header]
        data: list[list[Any]] = []
        for r in rows:
            if len(data) >= EXCEL_MAX_ROWS:
                raise too_big
            data.append(list(r[:len(names)]) + [None] * (len(names) - len(r)))
    finally:
        wb.close()
    df = pd.DataFrame(data, columns=names, dtype=object)
    df = df.where(df.notna(), "")
    df.attrs["typed"] = True  # cells are numbers, dates and text as Excel stored them
    return df


def _cell_text(v: Any) -> str:
    """Text of an XLSX cell: integral floats without '.0', dates in ISO form."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    return "" if v is None else str(v)


# ------------------------------------------------------------------------------ conversions


@dataclass
class _Ctx:
    """What a conversion needs to report row problems, plus the factorized raw columns."""

    file: str
    table: TableSpec
    mapping: Mapping
    header: list[str]
    problems: list[Problem]
    formats_used: list[dict[str, Any]]
    raw: pd.DataFrame
    strip: bool = True
    typed: bool = False  # cells typed by the file (XLSX), not text
    fatal: list[Problem] = field(default_factory=list)  # problems that refuse the export (e.g. an ambiguous date column)
    thousands: str = ","  # the file's separators (see _decimal_mark)
    decimal: str = "."
    _codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def row_problems(self, rows: np.ndarray, column: str, messages: Iterable[str]) -> None:
        col = self.header.index(column) + 1 if column in self.header else 0
        for r, msg in zip(rows, messages):
            self.problems.append(Problem(self.file, int(r), col, column, msg))

    def factorized(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (codes, distinct stripped texts) of a raw column; computed once per column.

        Every per-value conversion runs on the distinct values and is spread back with the codes.
        """
        if column not in self._codes and isinstance(self.raw[column].dtype, pd.ArrowDtype):
            import pyarrow as pa  # noqa: PLC0415 - with polars' frames only (see _read_csv_polars)
            import pyarrow.compute as pc  # noqa: PLC0415
            # polars' string views, in chunks (it parses in parallel): encoded with one dictionary that
            # grows in order of first appearance, the last chunk's holding every value (a blank cell: a null)
            encoded = pc.dictionary_encode(pa.array(self.raw[column].array), null_encoding="encode")
            parts = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
            dictionary = (parts[-1].dictionary if parts else pa.array([], pa.large_string())).cast(pa.large_string())
            stripped, empty = _stripped_texts(dictionary)
            text = np.append(stripped, "")
            # blanks (and empty quoted cells, blank too as pandas reads them) share the final value, ""
            blank = np.flatnonzero(empty)
            text[blank] = ""
            code_of = np.arange(len(text), dtype=np.intp)  # a dictionary index's code (intp, for numpy's takes)
            code_of[blank] = len(stripped)
            codes = (code_of[np.concatenate([p.indices.to_numpy(zero_copy_only=False) for p in parts])] if parts
                     else np.zeros(0, dtype=np.intp))
            self._codes[column] = (codes, text)
        if column not in self._codes:
            values = self.raw[column]
            if self.typed:
                values = values.map(_cell_text)
            codes, uniq = pd.factorize(values.to_numpy(dtype=object))  # a blank cell gets code -1
            text = np.array([u.strip() if isinstance(u, str) else "" for u in uniq] + [""], dtype=object)
            codes[codes < 0] = len(uniq)  # blanks share the final distinct value, ""
            self._codes[column] = (codes.astype(np.intp, copy=False), text)
        return self._codes[column]

    def text(self, column: str, unique: bool = False) -> pd.Series:
        """Return a raw column as stripped text, blanks as missing (str dtype).

        ``unique``: the column holds ids, one per row (converted as they are, not per distinct value).
        """
        values = self.raw[column]
        if self.typed or column in self._codes or (isinstance(values.dtype, pd.ArrowDtype) and not unique):
            codes, uniq = self.factorized(column)
            return _take_text(uniq, codes, values.index)
        if isinstance(values.dtype, pd.ArrowDtype):  # (the ids of a polars frame; see _read_csv_polars)
            texts, empty = _stripped_texts(_arrow_text(values))
            texts[empty | (texts == "")] = None  # (blanks only: blank too)
            return pd.Series(pd.array(texts, dtype=TEXT), index=values.index, copy=False)
        values = values.astype(TEXT)  # blanks are already missing (read with na_values=[""])
        if not self.strip:
            return values
        values = values.str.strip()
        return values.where(values != "")


#: a text starting or ending with a character Python's str.isspace() is true for (str.strip() removes them)
_BLANK_END = ("^[{0}]|[{0}]$".format(r"\t-\r\x1c- \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
                                       r"\x{205f}\x{3000}"))


#: per byte, whether it can start (or end) the UTF-8 bytes of a blank of :data:`_BLANK_END`
_BLANK_FIRST_BYTE, _BLANK_LAST_BYTE = np.zeros(256, dtype=bool), np.zeros(256, dtype=bool)
for _blank in (chr(c).encode("utf-8") for c in range(0x3001) if chr(c).isspace()):  # (none above U+3000)
    _BLANK_FIRST_BYTE[_blank[0]], _BLANK_LAST_BYTE[_blank[-1]] = True, True


def _blank_ends(texts: Any) -> np.ndarray:
    """Mask of the texts (a pyarrow ``large_string`` array) that start or end with a blank (Python's str.isspace).

    Only the texts whose first or last byte can belong to a blank are matched with :data:`_BLANK_END`
    (ids and most texts have none: their bytes are looked at, not matched).
    """
    import pyarrow.compute as pc  # noqa: PLC0415
    n = len(texts)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset:texts.offset + n + 1]
    data = texts.buffers()[2]
    body = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    found = np.zeros(n, dtype=bool)
    if not len(body):
        return found
    start, end = offsets[:-1], offsets[1:]
    last = np.maximum(end - 1, 0)  # (an empty text's bytes do not count)
    maybe = np.flatnonzero((end > start) & (_BLANK_FIRST_BYTE[body[np.minimum(start, last)]] | _BLANK_LAST_BYTE[body[last]]))
    if len(maybe):
        found[maybe] = pc.match_substring_regex(texts.take(maybe), _BLANK_END).fill_null(False).to_numpy(
            zero_copy_only=False)
    return found


def _stripped_texts(cells: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return the texts of a pyarrow ``large_string`` array as Python strings, stripped where a blank ends
    them (:func:`_blank_ends`), and the mask of the cells that were missing or empty as read."""
    import pyarrow.compute as pc  # noqa: PLC0415 - with polars' frames only (see _read_csv_polars)
    texts = cells.to_numpy(zero_copy_only=False)  # (None: a missing cell)
    empty = np.array(pc.equal(cells, "").fill_null(True), dtype=bool)
    for i in np.flatnonzero(_blank_ends(cells)).tolist():
        texts[i] = texts[i].strip()
    return texts, empty


def _arrow_text(values: pd.Series) -> Any:
    """The cells of an Arrow-backed column as one pyarrow ``large_string`` array (polars' string views
    are copied once: pyarrow's string kernels, such as its regular expressions, need Arrow strings)."""
    import pyarrow as pa  # noqa: PLC0415 - with polars' frames only (see _read_csv_polars)
    cells = pa.array(values.array)
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.combine_chunks() if cells.num_chunks else pa.array([], cells.type)
    return cells.cast(pa.large_string())


def _raw_cells(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """The cells of a raw column at ``rows`` (positions), as read (an Arrow column's as Python objects)."""
    if isinstance(values.dtype, pd.ArrowDtype):  # (polars' string views have no per-row take in pandas)
        return pd.Series(_arrow_text(values).take(rows).to_numpy(zero_copy_only=False), dtype=object)
    return values.iloc[rows]


def _take_text(uniq: np.ndarray, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """Spread distinct texts back over the rows as a str Series ("" and None become missing).

    The distinct values are validated once as a string array; ``take`` then copies references.
    """
    if pd.api.types.infer_dtype(uniq, skipna=True) in ("string", "empty"):  # only texts and missing values
        text_u = pd.array(uniq, dtype=TEXT)
        text_u[np.asarray(text_u == "", dtype=bool)] = None
    else:
        text_u = pd.array([u if isinstance(u, str) and u != "" else None for u in uniq], dtype=TEXT)
    return pd.Series(text_u.take(codes), index=index, copy=False)


def _map_values(values: pd.Series, mapping: dict[str, str], keep: bool = False,
                coded: tuple[np.ndarray, np.ndarray] | None = None) -> pd.Series:
    """Map text through ``mapping`` once per distinct value; unmapped become missing (or kept).

    ``coded``: ``pd.factorize`` of the values, when the caller has it already.
    """
    codes, uniq = coded if coded is not None else pd.factorize(values.to_numpy(dtype=object))
    mapped = np.array([mapping.get(u, u if keep else None) for u in uniq] + [None], dtype=object)
    return _take_text(mapped, codes, values.index)  # code -1 (missing) takes the final None


def _resolve(spec: FieldSpec, header: list[str]) -> str | None:
    for c in spec.column or []:
        if c in header:
            return c
    return None


def _parse_numbers(text: pd.Series, thousands: str, decimal: str, percent: bool) -> tuple[pd.Series, pd.Series]:
    """Parse numbers written with the file's separators; return (float64 values, bad mask).

    Blanks (also non-breaking ones, as French and Swiss exports group digits) and a currency sign
    are dropped; ``thousands`` may only stand between groups of three digits.
    """
    t = text.str.replace(NUMBER_NOISE, "", regex=True)
    if percent:
        t = t.str.rstrip("%")
    th, dec = re.escape(thousands), re.escape(decimal)
    ok = t.str.fullmatch(rf"[+-]?(?:\d{{1,3}}(?:{th}\d{{3}})+|\d+)(?:{dec}\d+)?|[+-]?{dec}\d+")
    blank = t == ""
    clean = t.where(ok, "").str.replace(thousands, "", regex=False)
    if decimal != ".":
        clean = clean.str.replace(decimal, ".", regex=False)
    values = pd.to_numeric(clean.where(clean != "", None), errors="coerce").astype("float64")
    if percent:
        values = values / 100
    return values, ~ok & ~blank


def _date_problem(v: str, spec: FieldSpec, label: str) -> str:
    declared = ", ".join(repr(f) for f in spec.formats)
    hint = ""
    if re.fullmatch(r"\d+(?:\.\d+)?", v) and EXCEL_SERIAL not in spec.formats:
        hint = f" (an Excel serial day number? add '{EXCEL_SERIAL}' to formats)"
    elif re.fullmatch(r"\d+(?:\.\d+)?", v):
        hint = (f" (Excel serial numbers are accepted only between {EXCEL_SERIAL_RANGE[0]} "
                f"and {EXCEL_SERIAL_RANGE[1]})")
    return (f"{label}: {v!r} does not match the declared date format(s) {declared}{hint}; "
            "correct the value or declare its format in the mapping (sopcoach never guesses dates)")


#: strptime directives that read a time of day; a format without them reads a day (a date-only value)
_TIME_DIRECTIVES = re.compile(r"%[-#]?[HIMSpXcTRfkl]")


@dataclass(frozen=True)
class _Reading:
    """What one declared format reads from the distinct texts of a column.

    ``naive``: datetime64[us] wall time (UTC when ``utc``), NaT where the format does not read the
    text; ``utc``: the text carried an offset (``%z``); ``day``: a date without time of day.
    """

    naive: np.ndarray
    utc: np.ndarray
    day: np.ndarray

    @property
    def read(self) -> np.ndarray:
        return ~np.isnat(self.naive)


def _read_format(fmt: str, texts: pd.Series) -> _Reading:
    """Read ``texts`` (distinct, non-blank) with one declared format; unread texts give NaT."""
    k = len(texts)
    utc = np.zeros(k, dtype=bool)
    if fmt == EXCEL_SERIAL:
        num = pd.to_numeric(texts.where(texts.str.fullmatch(r"\d+(?:\.\d+)?"), None),
                            errors="coerce").to_numpy(dtype="float64")
        lo, hi = EXCEL_SERIAL_RANGE
        ok = (num >= lo) & (num <= hi)
        naive = np.full(k, np.datetime64("NaT"), dtype="datetime64[us]")
        secs = np.round(num[ok] * 86400).astype("int64")
        naive[ok] = (_EXCEL_ORIGIN.to_datetime64().astype("datetime64[us]")
                     + secs.astype("timedelta64[s]").astype("timedelta64[us]"))
        day = ok & (num == np.floor(num))  # a whole serial is a day
        return _Reading(naive, utc, day)
    if "%z" in fmt:
        parsed = pd.to_datetime(texts, format=fmt, errors="coerce", utc=True)
        naive = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
        utc[:] = True
    else:
        naive = pd.to_datetime(texts, format=fmt, errors="coerce").to_numpy().astype("datetime64[us]")
    day = np.full(k, not _TIME_DIRECTIVES.search(fmt.replace("%%", "")) and "%z" not in fmt) & ~np.isnat(naive)
    return _Reading(naive, utc, day)


def _show_reading(r: _Reading, i: int) -> str:
    stamp = pd.Timestamp(r.naive[i])
    text = f"{stamp:%Y-%m-%d}" if r.day[i] else f"{stamp:%Y-%m-%d %H:%M:%S}"
    return text + (" UTC" if r.utc[i] else "")


def _differ(a: _Reading, b: _Reading) -> np.ndarray:
    """Mask of the texts both formats read, as different instants."""
    return a.read & b.read & ((a.naive != b.naive) | (a.utc != b.utc))


def _choose_formats(column: str, spec: FieldSpec, ctx: _Ctx, label: str, texts: np.ndarray,
                    codes: np.ndarray, idx: np.ndarray) -> list[tuple[str, _Reading]] | None:
    """Choose the declared formats that read a date column: one for the whole column, or several
    that never disagree; return them in declared order, or None (and a fatal problem) when the
    column is ambiguous.

    ``texts`` are the column's distinct non-blank texts (``idx``: their codes). A format that reads
    every text that any declared format reads is used alone (the first such, when several agree).
    Otherwise the formats are used together, which is refused when a text is read by two of them as
    different instants: sopcoach never picks a format per row. Texts no format reads do not count
    (they are row problems).
    """
    sub = pd.Series(texts, dtype=object)
    readings: list[_Reading | None] = []
    whole: _Reading | None = None  # a format that reads every text
    for fmt in spec.formats:
        if whole is not None:  # another format can only tie with it by reading everything: probe
            probe = _read_format(fmt, sub.iloc[:256])
            if not probe.read.all():
                readings.append(None)
                continue
        r = _read_format(fmt, sub)
        readings.append(r)
        if whole is None and r.read.all():
            whole = r
    present = [(f, r) for f, r in zip(spec.formats, readings) if r is not None]
    readable = np.zeros(len(texts), dtype=bool)
    for _, r in present:
        readable |= r.read
    full = [(f, r) for f, r in present if r.read[readable].all()] if readable.any() else []
    pairs = [(a, b) for i, a in enumerate(full or present) for b in (full or present)[i + 1:]]
    for (fa, ra), (fb, rb) in pairs:
        diff = np.flatnonzero(_differ(ra, rb))
        if not len(diff):
            continue
        rows = [int(np.flatnonzero(codes == idx[i])[0]) + 2 for i in diff[:3]]
        examples = "; ".join(f"{texts[i]!r} (row {row}) is {_show_reading(ra, i)} by {fa!r} but "
                             f"{_show_reading(rb, i)} by {fb!r}" for i, row in zip(diff[:3], rows))
        ti = ctx.mapping.table_index(ctx.table.name)
        part, _, key = label.rpartition(".")
        line, _ = ctx.mapping.mark("tables", ti, part or "fields", key, "formats")
        declared = ", ".join(repr(f) for f in spec.formats)
        fix = (f"keep only the format these dates are written in under {label} in {ctx.mapping.path}:{line} "
               f"(formats: [{declared}]), or correct the values in the file")
        if full:
            why = f"{fa!r} and {fb!r} both read every value of the column, differently"
        else:
            unread = []
            for f, r in ((fa, ra), (fb, rb)):
                miss = np.flatnonzero(readable & ~r.read)
                row = int(np.flatnonzero(codes == idx[miss[0]])[0]) + 2
                unread.append(f"{f!r} cannot read {texts[miss[0]]!r} (row {row})")
            why = (f"no declared format reads every value ({' and '.join(unread)}) and the formats "
                   "read some values differently")
        col = ctx.header.index(column) + 1 if column in ctx.header else 0
        ctx.fatal.append(Problem(ctx.file, rows[0], col, column, (
            f"{label}: the date format of column {column!r} is ambiguous: {why}: {examples}; sopcoach "
            f"never picks a format per row; {fix}")))
        return None
    return full[:1] or present


def _parse_dates(column: str, spec: FieldSpec, ctx: _Ctx, label: str) -> pd.Series:
    """Parse a date column with the declared formats only; localise naive values; return UTC.

    The declared formats are judged on the column's distinct values (see :func:`_choose_formats`):
    one format that reads them all is used for all of them; formats that are needed together must
    never read a value as two different instants, else the column is refused (a fatal problem).
    Date-only values mean the day: on a day whose local midnight does not exist (a DST change at
    00:00) they are placed at the day's first instant. Wall times in a DST gap are row problems.
    Parsing runs once per distinct text and format; typed XLSX dates are taken as they are.
    """
    values = ctx.raw[column]
    n = len(values)
    codes, uniq = ctx.factorized(column)
    typed = (values.map(lambda v: isinstance(v, datetime)).to_numpy(dtype=bool) if ctx.typed
             else np.zeros(n, dtype=bool))
    m = len(uniq)
    naive_u = np.full(m, np.datetime64("NaT"), dtype="datetime64[us]")
    utc_u = np.zeros(m, dtype=bool)
    day_u = np.zeros(m, dtype=bool)
    count = np.bincount(codes[~typed], minlength=m) if n else np.zeros(m, dtype=np.int64)
    idx = np.flatnonzero((uniq != "") & (count > 0))
    chosen = _choose_formats(column, spec, ctx, label, uniq[idx], codes, idx) if len(idx) else []
    if chosen is None:  # refused: the column is reported as a whole
        return pd.Series(pd.DatetimeIndex(np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")).tz_localize(UTC),
                         index=values.index)
    todo = np.zeros(m, dtype=bool)
    todo[idx] = True
    for fmt, r in chosen:
        ok = r.read & todo[idx]
        if ok.any():
            at = idx[ok]
            naive_u[at], utc_u[at], day_u[at] = r.naive[ok], r.utc[ok], r.day[ok]
            ctx.formats_used.append({"table": ctx.table.name, "file": ctx.file, "column": column,
                                     "format": fmt, "rows": int(count[at].sum())})
            todo[at] = False
    if todo.any():
        bad = np.flatnonzero(todo[codes] & ~typed)
        ctx.row_problems(bad + 2, column, [_date_problem(uniq[codes[i]], spec, label) for i in bad])
    # place naive local wall times in the source's zone; a skipped wall time is a problem (case 28)
    tz = ctx.mapping.spec.source.timezone
    out_u = naive_u.copy()
    local = ~utc_u & ~np.isnat(naive_u)
    if local.any():
        out_u[local], gap = _place_local(naive_u[local], day_u[local], tz)
        gap_u = np.zeros(m, dtype=bool)
        gap_u[np.flatnonzero(local)[gap]] = True
        if gap_u.any():
            rows = np.flatnonzero(gap_u[codes] & ~typed)
            ctx.row_problems(rows + 2, column, _gap_messages(naive_u[codes[rows]], day_u[codes[rows]], tz, label))
    out = out_u[codes] if n else np.empty(0, dtype="datetime64[us]")
    if typed.any():  # an XLSX date cell at midnight is a day
        naive_t = pd.DatetimeIndex(pd.to_datetime(values[typed].tolist())).to_numpy().astype("datetime64[us]")
        day_t = naive_t == naive_t.astype("datetime64[D]")
        out[typed], gap = _place_local(naive_t, day_t, tz)
        if gap.any():
            rows = np.flatnonzero(typed)[gap]
            ctx.row_problems(rows + 2, column, _gap_messages(naive_t[gap], day_t[gap], tz, label))
    return pd.Series(pd.DatetimeIndex(out).tz_localize(UTC), index=values.index)


def _decimal_mark(ctx: _Ctx) -> tuple[str | None, str]:
    """Set ``ctx.decimal`` and ``ctx.thousands`` from the mapping, or from the file's number texts.

    Returns the decimal mark and how it was chosen (``declared``, ``detected from '1.234,56'``, or
    ``no value needed one``; None when the table has no number column).

    Raises
    ------
    ContentError
        When the numbers show both marks, or only values such as ``1,234`` that read either way.
    """
    src = ctx.mapping.spec.source
    columns = [c for f, spec in ctx.table.fields.items() if FIELDS[ctx.table.kind].get(f) == _NUM
               and spec.column is not None and (c := _resolve(spec, ctx.header)) is not None]
    decimal, how = src.decimal, "declared"
    if decimal == AUTO and src.thousands in (",", "."):
        decimal, how = ("." if src.thousands == "," else ","), "declared by source.thousands"
    if decimal == AUTO:
        texts: list[Any] = []
        for column in columns:
            if ctx.typed:  # only the cells Excel keeps as text
                cells = ctx.raw[column]
                texts.extend(pd.unique(cells[cells.map(lambda v: isinstance(v, str))].to_numpy(dtype=object)))
            else:
                texts.extend(ctx.factorized(column)[1])
        try:
            found, example = detect_decimal(texts)
        except ValueError as exc:
            raise ContentError([Problem(ctx.file, 1, ctx.header.index(columns[0]) + 1, ", ".join(columns), (
                f"the decimal mark cannot be told: {exc}; set source.decimal: ',' (or '.') in the "
                "mapping"))]) from None
        decimal = found or "."
        how = f"detected from {example!r}" if found else "no value needed one"
    thousands = src.thousands if src.thousands != AUTO else ("." if decimal == "," else ",")
    if thousands == decimal:
        col = ctx.header.index(columns[0]) + 1 if columns else 0
        raise ContentError([Problem(ctx.file, 1, col, columns[0] if columns else "", (
            f"the numbers use {decimal!r} as the decimal mark, which the mapping declares as "
            "source.thousands; correct source.thousands or declare source.decimal"))])
    ctx.thousands, ctx.decimal = thousands, decimal
    return (decimal, how) if columns else (None, "")


def _place_local(naive: np.ndarray, day: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Place naive local times in ``tz``; return (UTC as naive datetime64[us], mask of unplaced).

    A repeated wall time takes its first occurrence. A wall time skipped by a DST change is NaT
    (and in the mask); a day (``day``: date-only, at midnight) whose midnight was skipped is placed
    at its first instant, checked to be on that day (a day skipped whole stays unplaced).
    """
    first = np.ones(len(naive), dtype=bool)
    placed = pd.DatetimeIndex(naive).tz_localize(tz, ambiguous=first, nonexistent="NaT")
    out = placed.tz_convert(UTC).tz_localize(None).to_numpy().astype("datetime64[us]")
    gap = np.asarray(placed.isna()) & ~np.isnat(naive)
    days = np.flatnonzero(gap & day)
    if len(days):
        start = pd.DatetimeIndex(naive[days]).tz_localize(tz, ambiguous=first[days], nonexistent="shift_forward")
        before = (start - pd.Timedelta(1, "us")).tz_localize(None).normalize()
        same = (start.tz_localize(None).normalize() == naive[days]) & (before < naive[days])
        out[days[same]] = start[same].tz_convert(UTC).tz_localize(None).to_numpy().astype("datetime64[us]")
        gap[days[same]] = False
    return out, gap


def _gap_messages(naive: np.ndarray, day: np.ndarray, tz: str, label: str) -> list[str]:
    """Row problems for local times (or days) that do not exist in ``tz``."""
    cal = BusinessCalendar(timezone=tz)
    msgs = []
    for stamp, is_day in zip(pd.DatetimeIndex(naive), day):
        if is_day:
            msgs.append(f"{label}: the day {stamp:%Y-%m-%d} does not exist in {tz} (the clocks skipped it); "
                        "correct the value at its source")
            continue
        try:
            cal.check_local(stamp.to_pydatetime())
            msgs.append(f"{label}: {stamp} cannot be placed in {tz}")
        except BusinessTimeError as exc:
            msgs.append(f"{label}: {exc}")
    return msgs


def _convert(df: pd.DataFrame, name: str, kind: str, spec: FieldSpec, ctx: _Ctx, label: str
             ) -> pd.Series | None:
    """Return the canonical series of one field (None when its column is missing)."""
    if spec.value is not None:
        column = ""
        codes = np.zeros(len(df), dtype=np.intp)
        uniq = np.array([spec.value.strip()], dtype=object)
    else:
        resolved = _resolve(spec, ctx.header)
        if resolved is None:
            return None
        column = resolved
        if kind == _DATE:
            return _parse_dates(column, spec, ctx, label)
        if kind == _TEXT and spec.values is None:
            return ctx.text(column, unique=name == _ID[ctx.table.kind])
        codes, uniq = ctx.factorized(column)
    if kind == _DATE:  # a constant date
        raw = pd.DataFrame({"_v": np.repeat(uniq, len(df))})
        sub = _Ctx(ctx.file, ctx.table, ctx.mapping, ["_v"], ctx.problems, ctx.formats_used, raw,
                   fatal=ctx.fatal, thousands=ctx.thousands, decimal=ctx.decimal)
        return _parse_dates("_v", spec, sub, label)
    if kind == _NUM:
        text_u = pd.Series(uniq, dtype=object)
        values_u, bad_u = _parse_numbers(text_u, ctx.thousands, ctx.decimal, spec.percent)
        values, bad_rows = values_u.to_numpy()[codes], bad_u.to_numpy()[codes]
        if ctx.typed and column and ctx.decimal != ".":  # Excel's numbers come as Python floats ('1234.5')
            stored = df[column].map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).to_numpy(bool)
            dot_u, dot_bad_u = _parse_numbers(text_u, ",", ".", spec.percent)
            values = np.where(stored, dot_u.to_numpy()[codes], values)
            bad_rows = np.where(stored, dot_bad_u.to_numpy()[codes], bad_rows)
        bad = np.flatnonzero(bad_rows)
        if len(bad):
            ctx.row_problems(bad + 2, column, [
                f"{label}: {uniq[codes[i]]!r} is not a number (expected digits with '{ctx.decimal}' as the "
                f"decimal mark and optionally '{ctx.thousands}' between groups of three); correct the "
                "value or the mapping's source.decimal and source.thousands" for i in bad])
        return pd.Series(values, index=df.index, dtype="float64")
    if spec.values is not None:
        mapped_u = np.array([spec.values.get(u) for u in uniq], dtype=object)
        if kind == _BOOL:
            flags = np.array([v == "true" for v in mapped_u], dtype=bool)
            return pd.Series(flags[codes], index=df.index, dtype=bool)
        if name in ("kind", "direction"):
            unknown_u = np.array([v is None and u != "" for u, v in zip(uniq, mapped_u)], dtype=bool)
            bad = np.flatnonzero(unknown_u[codes])
            if len(bad):
                known = ", ".join(spec.values)
                ctx.row_problems(bad + 2, column, [
                    f"{label}: {uniq[codes[i]]!r} is not in the mapping's values ({known}); add it there"
                    for i in bad])
        if name == "kind":
            kind_u = np.array([EVENT_KINDS.index(v) if v in EVENT_KINDS else -1 for v in mapped_u], dtype=np.int8)
            return pd.Series(pd.Categorical.from_codes(kind_u[codes], categories=list(EVENT_KINDS)), index=df.index)
        return _take_text(mapped_u, codes, df.index)
    if kind == _BOOL:
        low = np.array([u.lower() for u in uniq], dtype=object)
        bad_u = np.array([v not in (_TRUE | _FALSE) for v in low], dtype=bool)
        bad = np.flatnonzero(bad_u[codes])
        if len(bad):
            ctx.row_problems(bad + 2, column, [f"{label}: {uniq[codes[i]]!r} is not true/false" for i in bad])
        flags = np.array([v in _TRUE for v in low], dtype=bool)
        return pd.Series(flags[codes], index=df.index, dtype=bool)
    return _take_text(uniq, codes, df.index)


def positions_in(index: pd.Index, values: Any) -> np.ndarray:
    """Return, per value, its position in ``index`` (-1: not in it), as ``index.get_indexer(values)`` does.

    ``values`` (a sequence of texts, missing values allowed) are factorized and only their distinct
    values looked up: for many rows with few distinct values (the deal ids of events, stage names)
    that is several times faster than a lookup per row. Returns an intp array of ``len(values)``.
    """
    codes, uniq = pd.factorize(np.asarray(values, dtype=object))  # a missing value gets code -1 ...
    found = index.get_indexer(pd.Index(np.append(uniq, np.nan), dtype=index.dtype))  # ... the final lookup
    return found.astype(np.intp)[codes]


# ------------------------------------------------------------------------------ the export


@dataclass(frozen=True)
class CrmData:
    """A CRM export in canonical form (see the module docstring for every column).

    ``owners`` has ``owner``, ``team``, ``region``, ``role`` (str); ``products`` is the set of
    known product names (None when the export has no product list); ``accounts`` has ``account``
    and ``tier``; ``date_formats`` has ``table``, ``file``, ``column``, ``format`` (str) and
    ``rows`` (int64): the declared formats used per column and how many rows each read. ``skipped`` names the given
    files that no table of the mapping reads (e.g. Zoho's ``Campaigns.csv``).
    """

    deals: pd.DataFrame
    events: pd.DataFrame
    leads: pd.DataFrame
    owners: pd.DataFrame
    accounts: pd.DataFrame | None
    products: frozenset[str] | None
    mapping: Mapping
    files: tuple[SourceFile, ...]
    problems: tuple[Problem, ...]
    date_formats: pd.DataFrame
    fields: frozenset[str] = field(default_factory=frozenset)
    skipped: tuple[str, ...] = ()
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def unique_deals(self) -> pd.DataFrame:
        """Return the deals with one row per ``deal_id`` (the first), RangeIndex (cached).

        No built-in mapping reads more than one row per deal; when an export holds a deal twice
        (the same file exported twice), the copies are identical (counted once) or differ (a row
        problem: the figures needing them are not computable).
        """
        if "unique_deals" not in self._cache:
            self._cache["unique_deals"] = self.deals.drop_duplicates("deal_id").reset_index(drop=True)
        return self._cache["unique_deals"]

    def deal_index(self) -> pd.Index:
        """Return the deal ids of :meth:`unique_deals` as an Index (cached, with its hash table)."""
        if "deal_index" not in self._cache:
            self._cache["deal_index"] = pd.Index(self.unique_deals()["deal_id"])
        return self._cache["deal_index"]

    def event_deal_pos(self) -> np.ndarray:
        """Return, per event, the row of its deal in :meth:`unique_deals` (-1: none or unknown)."""
        if "event_deal_pos" not in self._cache:
            self._cache["event_deal_pos"] = positions_in(self.deal_index(), self.events["deal_id"])
        return self._cache["event_deal_pos"]

    def has(self, table_field: str) -> bool:
        """Tell whether the export provides ``kind.field`` (e.g. ``events.approved_by``)."""
        return table_field in self.fields

    def months(self) -> list[str]:
        """Return the months (``YYYY-MM``) in which deals were created or closed, in order."""
        stamps = pd.concat([self.deals["created"], self.deals["closed"]]).dropna()
        if stamps.empty:
            return []
        return sorted(stamps.dt.strftime("%Y-%m").unique().tolist())

    @property
    def as_of(self) -> pd.Timestamp | None:
        """The latest timestamp in the export (UTC): the moment the export describes."""
        parts = [self.deals["created"], self.deals["closed"], self.events["timestamp"]]
        latest = [m for m in (p.max() for p in parts if len(p)) if not pd.isna(m)]  # (each part's, not one concatenation)
        return max(latest) if latest else None


def _match_files(items: Sequence[Any], mapping: Mapping) -> dict[str, list[Any]]:
    """Assign each input file to the first table whose ``files`` patterns match its name."""
    out: dict[str, list[Any]] = {t.name: [] for t in mapping.spec.tables}
    unmatched = []
    for item in items:
        name = _basename(item)
        for t in mapping.spec.tables:
            if any(fnmatch.fnmatch(name.lower(), p.lower()) for p in t.files):
                out[t.name].append(item)
                break
        else:
            unmatched.append(item)
    if unmatched and not out[_deals_table(mapping).name] and len(unmatched) == 1:
        out[_deals_table(mapping).name].append(unmatched[0])  # a single file is the deals table
        unmatched = []
    return out


def _deals_table(mapping: Mapping) -> TableSpec:
    return next(t for t in mapping.spec.tables if t.kind == "deals")


_EXPORT_SUFFIXES = (".csv", ".xlsx", ".xlsm", ".txt")


def _expand(paths: Sequence[Any]) -> list[Any]:
    """List the files of ``paths`` (folders expanded); a file given twice is read once."""
    items: list[Any] = []
    seen: set[Any] = set()

    def add(item: Any) -> None:
        key = (item[0], hash(item[1])) if isinstance(item, tuple) else str(Path(item).resolve())
        if key not in seen:
            seen.add(key)
            items.append(item)

    for p in paths:
        if isinstance(p, tuple):
            add(p)
            continue
        p = Path(p)
        if p.is_dir():
            found = sorted(x for x in p.iterdir() if x.suffix.lower() in _EXPORT_SUFFIXES)
            if not found:
                subs = sorted(d.name for d in p.iterdir() if d.is_dir()
                              and any(x.suffix.lower() in _EXPORT_SUFFIXES for x in d.iterdir()))
                hint = (f"; its sub-folders {', '.join(subs)} hold exports: give one of them (one export at "
                        "a time)" if subs else "; give the folder that holds the export's files")
                raise ContentError([Problem(str(p), 0, 0, "", f"the folder has no CSV or XLSX files{hint}")])
            for x in found:
                add(x)
        elif p.is_file():
            add(p)
        else:
            raise ContentError([Problem(str(p), 0, 0, "", "no such file or folder")])
    return items


def _refuse_other_exports(skipped: Sequence[Any], mapping: Mapping) -> None:
    """Refuse files the mapping does not read that hold another built-in source's deals."""
    mine = mapping.id
    for name in BUILTIN_SOURCES:
        if name == mine:
            continue
        pats = _deals_table(load_mapping(name)).files
        other = [_basename(f) for f in skipped if any(fnmatch.fnmatch(_basename(f).lower(), p.lower()) for p in pats)]
        if other:
            raise ContentError([Problem(", ".join(other), 0, 0, "", f"these files hold {name} deals, not "
                                        f"{mine} ones: give --source {name} for them (or leave --source "
                                        f"out to detect it), and analyse one export at a time")])


def detect_source(paths: Sequence[Any]) -> Mapping:
    """Pick the built-in mapping whose table patterns match the given files best.

    Raises
    ------
    ContentError
        When no built-in mapping recognises a deals file; name ``--source`` then.
    """
    items = _expand(paths)
    best, best_score = None, 0
    deals_files: dict[str, set[str]] = {}  # per built-in source, the files its deals patterns name
    for name in BUILTIN_SOURCES:
        m = load_mapping(name)
        matched = {t: f for t, f in _match_files(items, m).items() if f}
        deals = _deals_table(m)
        exact = sum(1 for t in m.spec.tables for f in matched.get(t.name, [])
                    if any(fnmatch.fnmatch(_basename(f).lower(), p.lower()) for p in t.files))
        deals_files[name] = {_basename(f) for f in matched.get(deals.name, [])
                             if any(fnmatch.fnmatch(_basename(f).lower(), p.lower()) for p in deals.files)}
        if deals.name in matched and exact > best_score:
            best, best_score = m, exact
    found = {n: f for n, f in deals_files.items() if f}
    if len(found) > 1 and not set.intersection(*found.values()):
        names = "; ".join(f"{n}: {', '.join(sorted(f))}" for n, f in found.items())
        raise ContentError([Problem(", ".join(sorted(set.union(*found.values()))), 0, 0, "",
                                    f"these files come from different exports ({names}); analyse one "
                                    "export at a time")])
    if best is None:
        names = ", ".join(_basename(i) for i in items) or "(no files)"
        raise ContentError([Problem(names, 0, 0, "", "no built-in mapping recognises these files; pass "
                                    f"--source with one of {', '.join(BUILTIN_SOURCES)} or a mapping YAML")])
    return best


def _size_of(item: Any) -> int:
    """The size in bytes of an export file (a path, or an uploaded ``(name, bytes)``); 0 when unknown."""
    if isinstance(item, tuple):
        return len(item[1])
    try:
        return Path(item).stat().st_size
    except (OSError, TypeError):
        return 0


def read_export(paths: Sequence[Any] | Any, source: str | Path | Mapping | None = None, *,
                playbook: Any = None, progress: bool | Callable[[int, int, str, int], Any] = False,
                strict: bool = False,
                max_file_mb: float | None = None) -> CrmData:
    """Read the files of one CRM export into :class:`CrmData`.

    Parameters
    ----------
    paths : path-like, (name, bytes) or a sequence of them
        Files or folders of the export (a folder contributes its CSV/XLSX files); uploaded files as
        ``(file name, bytes)``. Each file goes to the mapping table whose ``files`` pattern matches
        its name; a single unmatched file is taken as the deals table.
    source : str, path-like or Mapping, optional
        A built-in source name, a mapping file or a loaded mapping; default: :func:`detect_source`.
    playbook : Playbook, optional
        Checks the mapping's stage, tier and milestone targets against the playbook.
    progress : bool or callable
        True: show a progress bar (tqdm, on stderr) while reading large files. A callable is called
        before each file is read as ``progress(index, total, name, size)`` (0-based index, number of
        files, the file's name, its size in bytes) and after the last with ``index == total``.
    strict : bool
        Raise on row problems instead of returning them in ``problems``.
    max_file_mb : float, optional
        The largest file read, in decimal megabytes; default: the mapping's ``source.max_file_mb``
        (2000).

    Returns
    -------
    CrmData

    Raises
    ------
    ContentError
        When the mapping is invalid, a file is too large (``max_file_mb``, an XLSX's unpacked
        size), a file's encoding, delimiter or decimal mark cannot be told or is not the declared
        one, a mapped column is missing from a file, a date column is ambiguous (its declared
        formats read a value as different days and no one format reads the whole column, or two
        read all of it differently), no file holds deals, or (``strict``) any row has a problem.

    Examples
    --------
    >>> raw = 'Deal ID,Stage,Amount\\n00123,赢单,"12,500"\\n'.encode("utf-8-sig")
    >>> data = read_export(("deals.csv", raw), source="simulated")
    >>> data.deals.loc[0, ["deal_id", "stage", "outcome"]].tolist(), float(data.deals.loc[0, "amount"])
    (['00123', 'won', 'won'], 12500.0)
    """
    if isinstance(paths, (str, Path, tuple)):
        paths = [paths]
    items = _expand(list(paths))
    mapping = load_mapping(source, playbook) if source is not None else detect_source(items)
    if source is None and playbook is not None:
        mapping = load_mapping(mapping, playbook)
    assigned = _match_files(items, mapping)
    used = {id(x) for v in assigned.values() for x in v}
    skipped = [i for i in items if id(i) not in used]
    _refuse_other_exports(skipped, mapping)
    problems: list[Problem] = []
    fatal: list[Problem] = []
    formats_used: list[dict[str, Any]] = []
    files: list[SourceFile] = []
    frames: dict[str, list[pd.DataFrame]] = {k: [] for k in FIELDS}
    provided: set[str] = set()
    deals_table = _deals_table(mapping)
    if not assigned[deals_table.name]:
        pats = ", ".join(deals_table.files)
        raise ContentError([Problem(", ".join(_basename(i) for i in items) or "(no files)", 0, 0, "",
                                    f"no deals file: {mapping.path} expects a file named like {pats}")])
    step = progress if callable(progress) else None
    total, done = sum(len(v) for v in assigned.values()), 0
    for table in mapping.spec.tables:
        ti = mapping.table_index(table.name)
        for item in assigned[table.name]:
            name = _name_of(item)
            if step is not None:
                step(done, total, name, _size_of(item))
            done += 1
            try:
                read = _read_raw(item, table, mapping.spec.source, progress is True, max_file_mb)
            except ContentError as exc:
                fatal.extend(exc.problems)
                continue
            except (ValueError, OSError, KeyError) as exc:
                fatal.append(Problem(name, 0, 0, "", f"cannot read the file: {exc}"))
                continue
            raw = read.frame
            ctx = _Ctx(name, table, mapping, list(raw.columns), problems, formats_used, raw,
                       raw.attrs.get("blank_edges", True), raw.attrs.get("typed", False), fatal)
            ctx._codes.update(read.codes)
            try:
                decimal, decimal_how = _decimal_mark(ctx)
            except ContentError as exc:
                fatal.extend(exc.problems)
                continue
            files.append(SourceFile(name, table.name, table.kind, read.codec, len(raw), read.decoding,
                                    read.delimiter, read.delimiter_how, decimal, decimal_how))
            canon, missing = _table_frame(raw, table, ctx)
            broken = False
            for fname, spec in missing:
                line, col = mapping.mark("tables", ti, "fields", fname)
                required = fname in REQUIRED[table.kind] or (fname == "deal_id" and table.kind == "deals")
                broken |= required
                sep = next((d for d in DELIMITERS if len(ctx.header) == 1 and d in ctx.header[0]), None)
                fix = (f"the file seems to separate fields with {sep!r}, not {read.delimiter!r}: set "
                       f"source.delimiter: {sep!r} in the mapping" if sep and read.delimiter else
                       f"fix the mapping {mapping.path}:{line}:{col} or the export (or pass the right --source)")
                (fatal if required else problems).append(Problem(
                    name, 1, 0, fname, f"column {' or '.join(repr(c) for c in spec.column or [])} not found "
                    f"in the header (columns: {', '.join(ctx.header)}); {fix}"))
            if broken:
                continue
            provided.update(f"{table.kind}.{c}" for c in canon.columns)
            canon["source_file"] = _take_text(np.array([name], dtype=object), np.zeros(len(canon), dtype=np.intp),
                                              canon.index)
            canon["source_row"] = np.arange(2, len(canon) + 2, dtype="int64")
            if table.kind == "events":
                canon["duplicate_of"] = _duplicates(ctx, table, canon)
                if "stage" in canon:
                    coded = pd.factorize(canon["stage"].to_numpy(dtype=object))  # (once for both)
                    _stage_problems(canon["stage"], table, ctx, blank_ok=True, coded=coded)
                    canon["stage_raw"] = canon["stage"]
                    canon["stage"] = _map_values(canon["stage_raw"], mapping.spec.stages, coded=coded)
            if table.kind == "deals":
                _deal_problems(canon, table, ctx)
                extra = _deal_date_events(raw, table, canon, ctx)
                if len(extra):
                    frames["events"].append(extra)
            frames[table.kind].append(canon)
    if step is not None:
        step(total, total, "", 0)
    if frames["deals"] and not any(len(f) for f in frames["deals"]):
        fatal.append(Problem(", ".join(sorted({f.path for f in files if f.kind == "deals"})), 0, 0, "",
                             "the deals file has a header but no rows: there is nothing to analyse; "
                             "export the deals again, with their rows"))
    problems.extend(_conflicting_deals(frames["deals"], deals_table, mapping))
    raise_problems(fatal)
    if strict:
        raise_problems(problems)
    data = _assemble(frames, mapping, provided)
    fmt = pd.DataFrame(formats_used, columns=["table", "file", "column", "format", "rows"])
    fmt["rows"] = fmt["rows"].astype("int64")
    return CrmData(data["deals"], data["events"], data["leads"], data["owners"], data["accounts"],
                   data["products"], mapping, tuple(files), tuple(sorted(problems)), fmt,
                   frozenset(provided), tuple(_basename(i) for i in skipped))


def _table_frame(raw: pd.DataFrame, table: TableSpec, ctx: _Ctx) -> tuple[pd.DataFrame, list]:
    kinds = FIELDS[table.kind]
    out: dict[str, Any] = {}
    missing = []
    for fname, spec in table.fields.items():
        series = _convert(raw, fname, kinds[fname], spec, ctx, fname)
        if series is None:
            missing.append((fname, spec))
        else:
            out[fname] = series.reset_index(drop=True)
    frame = pd.DataFrame(out, index=pd.RangeIndex(len(raw)), copy=False)
    if table.kind == "deals" and "deal_id" not in frame:
        frame["deal_id"] = [f"{table.name}-{i}" for i in range(2, len(raw) + 2)]
    if table.kind == "events" and "event_id" not in frame:
        frame["event_id"] = [f"{table.name}-{i}" for i in range(2, len(raw) + 2)]
    if table.kind == "leads" and "lead_id" not in frame:
        frame["lead_id"] = [f"{table.name}-{i}" for i in range(2, len(raw) + 2)]
    for req in REQUIRED[table.kind]:
        if req in frame:
            blank = frame[req].isna().to_numpy().copy()
            spec = table.fields[req]
            column = _resolve(spec, ctx.header) or ""
            if column in raw and blank.any():  # a value that failed to parse has its own problem: only an empty cell is missing
                rows = np.flatnonzero(blank)
                cell = _raw_cells(raw[column], rows)
                blank[rows] = (cell.isna() | (cell.map(_cell_text).str.strip() == "")).to_numpy(dtype=bool)
            if blank.any():
                rows = np.flatnonzero(blank)
                ctx.row_problems(rows + 2, column, [f"{req}: a value is required" for _ in rows])
    return frame, missing


def _stage_problems(stage: pd.Series, table: TableSpec, ctx: _Ctx, blank_ok: bool,
                    coded: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Report each stage name the mapping does not map (and, unless ``blank_ok``, each blank stage) as a row problem.

    Stage names are matched exactly, as the CRM writes them (``won`` is not ``Won``): a name that
    differs from a mapped one only in case is refused too, the message saying so, since a CRM
    that writes both may mean two different stages. The fix is to add the name to the mapping's
    ``stages:`` (with its playbook stage id, ``won`` or ``lost``). ``coded``: ``pd.factorize`` of
    the stage names, when the caller has it already.
    """
    column = _resolve(table.fields["stage"], ctx.header) or ""
    stages = ctx.mapping.spec.stages
    folded: dict[str, list[str]] = {}
    for name in stages:
        folded.setdefault(name.casefold(), []).append(name)
    codes, uniq = coded if coded is not None else pd.factorize(stage.to_numpy(dtype=object))
    where = Path(str(ctx.mapping.path)).name
    messages: list[str | None] = []
    for v in uniq:
        if v in stages:
            messages.append(None)
            continue
        same = folded.get(str(v).casefold())
        note = (f" (stage names are matched exactly, as the CRM writes them: {v!r} differs from "
                f"{same[0]!r} only in case)" if same else "")
        messages.append(f"stage: {v!r} is not a stage name of the mapping{note}; add {v!r} to stages: in "
                        f"{where} with its playbook stage id, won or lost")
    messages.append(None if blank_ok else "stage: a value is required; fill in the deal's stage in the export")
    codes = np.where(codes < 0, len(uniq), codes)
    rows = np.flatnonzero(np.array([messages[c] is not None for c in range(len(messages))])[codes])
    ctx.row_problems(rows + 2, column, [messages[codes[r]] or "" for r in rows])


def _deal_problems(canon: pd.DataFrame, table: TableSpec, ctx: _Ctx) -> None:
    """Report the deals rows no figure can count: a blank deal id, a blank or unmapped stage (row problems)."""
    spec = table.fields.get("deal_id")
    column = _resolve(spec, ctx.header) if spec is not None and spec.column else None
    if column:
        rows = np.flatnonzero(canon["deal_id"].isna().to_numpy())
        ctx.row_problems(rows + 2, column, ["deal_id: a value is required; fill in the deal's id (every deal row "
                                            "needs one)" for _ in rows])
    if "stage" in canon:
        _stage_problems(canon["stage"], table, ctx, blank_ok=False)


def _conflicting_deals(frames: Sequence[pd.DataFrame], table: TableSpec, mapping: Mapping) -> list[Problem]:
    """Row problems for a deal id on more than one deals row whose values differ (in one file or across files).

    Rows identical in every mapped field are counted once (:meth:`CrmData.unique_deals`; the
    data-quality check ``duplicate_deal`` names them); rows that differ cannot be told apart, so
    each later one is a row problem naming the first row and the differing fields.
    """
    frames = [f for f in frames if len(f)]
    if not frames:
        return []
    deals = pd.concat(frames, ignore_index=True)
    ids = deals["deal_id"]
    dup = deals[ids.notna() & ids.duplicated(keep=False)]
    if not len(dup):
        return []
    first = dup.drop_duplicates("deal_id").set_index("deal_id").loc[dup["deal_id"]].reset_index()
    dup = dup.reset_index(drop=True)
    fields = [c for c in dup.columns if c not in ("deal_id", "source_file", "source_row")]
    differ = np.zeros((len(dup), len(fields)), dtype=bool)
    for j, c in enumerate(fields):
        a, b = dup[c], first[c]
        differ[:, j] = ~(a.eq(b).fillna(False).to_numpy(dtype=bool) | (a.isna() & b.isna()).to_numpy())
    spec = table.fields.get("deal_id")
    column = spec.column[0] if spec is not None and spec.column else "deal_id"
    out = []
    for i in np.flatnonzero(differ.any(axis=1)):
        what = ", ".join(f"{fields[j]} {first.at[i, fields[j]]!s} vs {dup.at[i, fields[j]]!s}"
                         for j in np.flatnonzero(differ[i]))
        out.append(Problem(str(dup.at[i, "source_file"]), int(dup.at[i, "source_row"]), 0, column,
                           f"deal_id: {dup.at[i, 'deal_id']!r} is also on line {int(first.at[i, 'source_row'])} of "
                           f"{Path(str(first.at[i, 'source_file'])).name} with different values ({what}); keep "
                           "one row per deal: remove or correct the other row"))
    return out


def _duplicates(ctx: _Ctx, table: TableSpec, canon: pd.DataFrame) -> pd.Series:
    """Return, per row, the id of an earlier row identical in every column but the id (or None).

    Candidates share their time and deal cells; only they are compared on every column's cells (as
    written: one code per distinct cell text, see :meth:`_Ctx.factorized`).
    """
    raw = ctx.raw
    header = list(raw.columns)
    id_spec = table.fields.get("event_id")
    id_col = _resolve(id_spec, header) if id_spec and id_spec.column else None
    cols = [c for c in raw.columns if c != id_col]
    n = len(raw)
    dup_rows: np.ndarray = np.zeros(0, dtype=np.intp)
    dup_of: np.ndarray = np.zeros(0, dtype=object)
    keys = [c for c in (_resolve(table.fields[f], header) for f in ("timestamp", "deal_id")
                        if f in table.fields and table.fields[f].column) if c] or cols[:2]
    cand = np.zeros(0, dtype=np.intp)
    if cols:
        cand = _same_cells(ctx, keys, np.arange(n))
    if len(cand):
        key = _same_cells(ctx, cols, cand, key_only=True)
        first = pd.Series(cand).groupby(key).transform("min").to_numpy()
        dup = first != cand
        dup_rows = cand[dup]
        dup_of = canon["event_id"].to_numpy(dtype=object)[first[dup]]
    codes = np.full(n, len(dup_rows), dtype=np.intp)  # the final None: not a duplicate
    codes[dup_rows] = np.arange(len(dup_rows))
    return _take_text(np.append(dup_of, np.array([None], dtype=object)), codes, canon.index)


def _same_cells(ctx: _Ctx, columns: Sequence[str], rows: np.ndarray, key_only: bool = False) -> np.ndarray:
    """Group ``rows`` by their cells in ``columns`` (the raw texts, one code per distinct text).

    Returns the rows that share every cell with another of them (``key_only``: per row, one int64
    code per combination of cells instead).
    """
    key, size = np.zeros(len(rows), dtype=np.int64), 1
    for c in columns:
        codes, uniq = ctx.factorized(c)
        if size * len(uniq) >= 2**62:  # renumber the combinations seen so far to stay inside int64
            key, seen = pd.factorize(key)
            size = len(seen)
        key, size = key * len(uniq) + codes[rows], size * len(uniq)
    if key_only:
        return key
    return rows[pd.Series(key).duplicated(keep=False).to_numpy()]


def _deal_date_events(raw: pd.DataFrame, table: TableSpec, canon: pd.DataFrame, ctx: _Ctx) -> pd.DataFrame:
    """Events implied by a deals table's stage and milestone date columns (``synthetic``)."""
    parts = []
    for kind, specs in (("stage", table.stage_dates), ("milestone", table.milestone_dates)):
        for target, spec in specs.items():
            if spec.value is None and spec.column is not None and len(spec.column) == 1 and spec.column[0] in table.fields:
                if spec.column[0] not in canon:
                    continue  # its column is missing; already reported
                stamps = canon[spec.column[0]]  # refers to a canonical field (e.g. created)
            else:
                stamps = _convert(raw, target, _DATE, spec, ctx, f"{kind}_dates.{target}")
                if stamps is None:
                    ctx.problems.append(Problem(ctx.file, 1, 0, target, f"column {spec.column} for "
                                                f"{kind}_dates.{target} not found in the header"))
                    continue
                stamps = stamps.reset_index(drop=True)
            ok = stamps.notna().to_numpy()
            if not ok.any():
                continue
            ev = pd.DataFrame({
                "event_id": [f"{table.name}-{r}-{target}" for r in np.flatnonzero(ok) + 2],
                "deal_id": canon["deal_id"].to_numpy()[ok],
                "kind": "stage_change" if kind == "stage" else "task",
                "timestamp": stamps[ok].to_numpy(),
                "stage": target if kind == "stage" else None,
                "milestone": target if kind == "milestone" else None,
                "synthetic": True,
                "source_file": ctx.file,
                "source_row": (np.flatnonzero(ok) + 2).astype("int64"),
            })
            if "owner" in canon:
                ev["actor"] = canon["owner"].to_numpy()[ok]
            parts.append(ev)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _empty(kind: str | None, n: int, column: str) -> Any:
    """A column of ``n`` missing values of the canonical type."""
    if kind == _DATE:
        return pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype=_TS)
    if kind == _NUM:
        return np.full(n, np.nan)
    if kind == _BOOL:
        return np.zeros(n, dtype=bool)
    if column == "source_row":
        return np.zeros(n, dtype="int64")
    return pd.Series(np.nan, index=pd.RangeIndex(n), dtype=TEXT)


def _typed(frame: pd.DataFrame, columns: list[str], kinds: dict[str, str]) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    for c in columns:
        if c not in frame:
            frame[c] = _empty(kinds.get(c), len(frame), c)
    frame = frame[columns]  # copy-on-write: columns are copied only when replaced
    for c in columns:
        k = kinds.get(c)
        dtype = frame[c].dtype
        if k == _DATE:
            if dtype != _TS:
                frame[c] = pd.to_datetime(frame[c], utc=True).astype(_TS)
        elif k == _NUM:
            if dtype != "float64":
                frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
        elif k == _BOOL:
            if dtype != bool:
                frame[c] = frame[c].fillna(False).astype(bool)
        elif c == "source_row":
            if dtype != "int64":
                frame[c] = frame[c].fillna(0).astype("int64")
        elif c == "kind" and isinstance(dtype, pd.CategoricalDtype) and list(dtype.categories) == list(EVENT_KINDS):
            continue
        elif dtype != TEXT:
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None).astype(TEXT)
    return frame


def _assemble(frames: dict[str, list[pd.DataFrame]], mapping: Mapping, provided: set[str]) -> dict[str, Any]:
    spec = mapping.spec
    cat = {k: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for k, v in frames.items()}
    # owners: team, region, role per owner
    owners = _typed(cat["owners"], ["owner", "team", "region", "role"], FIELDS["owners"])
    owners = owners.drop_duplicates("owner", keep="first")
    # an account or product list exists only when its file was read (a mapping may declare one that
    # a single-file export leaves out: then nothing is "missing from the list")
    accounts = None
    if frames.get("accounts"):
        accounts = _typed(cat["accounts"], ["account", "name", "tier"], FIELDS["accounts"])
        accounts["tier_raw"] = accounts["tier"]
        accounts["tier"] = _map_values(accounts["tier"], spec.tiers, keep=True)
        accounts = accounts.drop_duplicates("account", keep="first")
    products = None
    if frames.get("products"):
        products = frozenset(_typed(cat["products"], ["product"], {})["product"].dropna())

    kinds = dict(FIELDS["deals"], created=_DATE, closed=_DATE)
    deals = cat["deals"]
    raw_stage = deals["stage"] if "stage" in deals else pd.Series(None, index=deals.index, dtype=object)
    deals["stage_raw"] = raw_stage
    deals["stage"] = _map_values(raw_stage, spec.stages) if len(deals) else raw_stage
    deals = _typed(deals, DEAL_COLUMNS, kinds)
    deals["outcome"] = np.where(deals["stage"].isin(OUTCOMES), deals["stage"], "open")
    deals.loc[deals["outcome"] == "open", "closed"] = pd.NaT
    if "tier" in deals and spec.tiers:
        deals["tier"] = _map_values(deals["tier"], spec.tiers, keep=True)
    if accounts is not None and deals["tier"].isna().all() and accounts["tier"].notna().any():
        deals["tier"] = deals["account"].map(accounts.set_index("account")["tier"])
        provided.add("deals.tier")
    if len(owners):
        by_owner = owners.set_index("owner")
        for col in ("team", "region", "role"):
            if deals[col].isna().all():
                deals[col] = deals["owner"].map(by_owner[col])
                if owners[col].notna().any():
                    provided.add(f"deals.{col}")
    if spec.source.default_role:
        deals["role"] = deals["role"].fillna(spec.source.default_role)

    events = cat["events"]
    events = _typed(events, EVENT_COLUMNS, dict(FIELDS["events"], synthetic=_BOOL))
    if not isinstance(events["kind"].dtype, pd.CategoricalDtype):
        events["kind"] = pd.Categorical(events["kind"], categories=list(EVENT_KINDS))
    # deals without recorded stage changes get one at the close (won/lost) from the deals table
    recorded = (events["kind"] == "stage_change").to_numpy() & ~events["synthetic"].to_numpy()
    has_history = pd.unique(events.loc[recorded, "deal_id"].dropna().to_numpy(dtype=object))
    once = deals.drop_duplicates("deal_id")  # a deal on several rows closes once (see _conflicting_deals)
    closing = once[once["closed"].notna() & ~once["deal_id"].isin(has_history)]
    if len(closing):
        close_ev = pd.DataFrame({
            "event_id": closing["deal_id"] + ":closed", "deal_id": closing["deal_id"],
            "kind": "stage_change", "timestamp": closing["closed"], "actor": closing["owner"],
            "stage": closing["outcome"], "synthetic": True, "source_file": closing["source_file"],
            "source_row": closing["source_row"]})
        events = pd.concat([events, _typed(close_ev, EVENT_COLUMNS, dict(FIELDS["events"], synthetic=_BOOL))],
                           ignore_index=True)
        events["kind"] = pd.Categorical(events["kind"], categories=list(EVENT_KINDS))
    if len(events):  # time order; ties (and missing times, last) in file and row order
        t = events["timestamp"].dt.tz_localize(None).to_numpy().astype("int64")
        t[events["timestamp"].isna().to_numpy()] = np.iinfo("int64").max
        if not (t[1:] >= t[:-1]).all():  # exports are often in time order already
            order = np.lexsort((events["source_row"].to_numpy(), pd.factorize(events["source_file"])[0], t))
            events = events.take(order).reset_index(drop=True)
    leads = _typed(cat["leads"], LEAD_COLUMNS, FIELDS["leads"])
    _customer_names(deals, accounts, leads, provided)
    return {"deals": deals.reset_index(drop=True), "events": events, "leads": leads,
            "owners": owners.reset_index(drop=True), "accounts": accounts, "products": products}


def _customer_names(deals: pd.DataFrame, accounts: pd.DataFrame | None, leads: pd.DataFrame, provided: set[str]) -> None:
    """Fill ``deals.account_name`` where the deals table has none: the accounts table's ``name`` of the deal's
    ``account`` (Salesforce's Account.Name), else the ``company`` of the lead converted into the deal (Zoho)."""
    before = deals["account_name"].notna().sum()
    if accounts is not None and accounts["name"].notna().any():
        by_id = accounts.dropna(subset=["name"]).set_index("account")["name"]
        deals["account_name"] = deals["account_name"].fillna(deals["account"].map(by_id))
    if len(leads) and leads["deal_id"].notna().any() and leads["company"].notna().any():
        by_deal = leads.dropna(subset=["deal_id", "company"]).drop_duplicates("deal_id").set_index("deal_id")["company"]
        deals["account_name"] = deals["account_name"].fillna(deals["deal_id"].map(by_deal))
    if deals["account_name"].notna().sum() > before:
        provided.add("deals.account_name")


# ---------------------------------------------------------------------------- stage history


def stage_paths(data: CrmData, raw: bool = False) -> pd.Series:
    """Return each deal's stage path, in time order, from its stage changes.

    Parameters
    ----------
    data : CrmData
    raw : bool
        Give the export's own stage names (True) instead of playbook stage ids (False).

    Returns
    -------
    pandas.Series
        Index ``deal_id`` (str), values: list of str, consecutive repeats removed. Deals without
        any stage change have no entry.
    """
    ev = data.events
    col = "stage_raw" if raw else "stage"
    sc = ev[(ev["kind"] == "stage_change") & ev["deal_id"].notna()]
    sc = sc[sc[col].notna()] if raw else sc.assign(stage=sc["stage"].fillna("?"))
    sc = sc.sort_values(["deal_id", "timestamp", "source_row"], kind="stable")
    same = (sc["deal_id"] == sc["deal_id"].shift()) & (sc[col] == sc[col].shift())
    return sc[~same].groupby("deal_id", sort=True)[col].agg(list)
