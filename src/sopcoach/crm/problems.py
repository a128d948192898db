"""The row problems of a CRM export, summarised per file and column, and traced to the fields they break.

:func:`read_export <sopcoach.crm.reading.read_export>` collects one
:class:`~sopcoach.errors.Problem` per value it could not read. Thousands of them usually share one
cause (a date format the mapping does not declare), so they are shown first as a summary, one
group per file and column (:func:`summarise`, :func:`summary_lines`: the command line, the HTML
report and the review app all print these lines), and the full list after. :func:`unparsed` tells
an analysis how many of the values it needs failed to parse, so a figure that needs them is
reported as not computable instead of being counted without them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import Problem
from ..i18n import current_lang, t

if TYPE_CHECKING:
    from .reading import CrmData

__all__ = ["ProblemGroup", "Unparsed", "fix_of", "input_gap", "missing_reason", "summarise", "summary_lines", "unparsed"]


def fix_of(message: str) -> tuple[str, str]:
    """Split a problem's message into what was found and how to fix it (the text after the first ``"; "``).

    Examples
    --------
    >>> fix_of("closed: '2017-03-01' does not match the declared date format(s) '%d/%m/%Y'; correct the value")
    ("closed: '2017-03-01' does not match the declared date format(s) '%d/%m/%Y'", 'correct the value')
    >>> fix_of("deal_id: a value is required")
    ('deal_id: a value is required', '')
    """
    what, _, fix = message.partition("; ")
    return what, fix


@dataclass(frozen=True)
class ProblemGroup:
    """The problems of one file and column: how many, the first one (its line and message) and the fix.

    ``line`` is the first problem's line in the file (the header is line 1, 0 when unknown);
    ``example`` its message without the fix; ``fix`` the fix its message gives (empty when none).
    """

    path: str
    column: str
    count: int
    line: int
    example: str
    fix: str


def summarise(problems: Iterable[Problem]) -> list[ProblemGroup]:
    """Group row problems per file and column, most frequent first.

    Returns
    -------
    list of ProblemGroup
        One per (file, column), sorted by count (descending), then file and column.

    Examples
    --------
    >>> ps = [Problem("a.csv", n, 7, "close_date", f"closed: 'x{n}' is bad; declare it") for n in (3, 2)]
    >>> summarise(ps)
    [ProblemGroup(path='a.csv', column='close_date', count=2, line=2, example="closed: 'x2' is bad", fix='declare it')]
    """
    groups: dict[tuple[str, str], list[Problem]] = {}
    for p in problems:
        groups.setdefault((p.path, p.field), []).append(p)
    out = []
    for (path, column), ps in groups.items():
        first = min(ps, key=lambda p: (p.line, p.column))
        what, fix = fix_of(first.message)
        out.append(ProblemGroup(path, column, len(ps), first.line, what, fix))
    return sorted(out, key=lambda g: (-g.count, g.path, g.column))


def summary_lines(problems: Iterable[Problem], lang: str | None = None) -> list[str]:
    """Return the summary of row problems as lines of text: a heading, then one line per file and column.

    The command line prints these lines first, the HTML report and the review app show them at the
    top; empty when there is no problem.

    Examples
    --------
    >>> ps = [Problem("a.csv", n, 7, "close_date", f"closed: 'x{n}' is bad; declare it") for n in (3, 2)]
    >>> for line in summary_lines(ps, "en"):
    ...     print(line)
    2 values could not be read (1 column); the figures that need them are not computable:
    a.csv, column close_date: 2 values; e.g. line 2: closed: 'x2' is bad; fix: declare it
    """
    lang = lang or current_lang()
    groups = summarise(problems)
    if not groups:
        return []
    values = [g for g in groups if g.line > 1]
    n, k, m = sum(g.count for g in values), len(values), len(groups) - len(values)
    parts = ([t(f"{n:,} 个值无法读取（{k} 列）", f"{n:,} value{'s' if n != 1 else ''} could not be read ({k} "
                f"column{'s' if k != 1 else ''})", lang)] if values else [])
    parts += [t(f"{m} 处缺列或整个文件的问题", f"{m} missing column{'s' if m != 1 else ''} or whole-file "
                f"problem{'s' if m != 1 else ''}", lang)] if m else []
    lines = [t("；".join(parts) + "；需要它们的数字一律显示为无法计算：",
               "; ".join(parts) + "; the figures that need them are not computable:", lang)]
    for g in groups:
        column = t(f"「{g.column}」列", f"column {g.column}", lang) if g.column else t("文件", "file", lang)
        fix = t(f"；改正：{g.fix}", f"; fix: {g.fix}", lang) if g.fix else ""
        if g.line > 1:
            lines.append(t(f"{g.path}，{column}：{g.count:,} 个值；例如第 {g.line} 行：{g.example}{fix}",
                           f"{g.path}, {column}: {g.count:,} value{'s' if g.count != 1 else ''}; e.g. line "
                           f"{g.line}: {g.example}{fix}", lang))
        else:
            lines.append(t(f"{g.path}，{column}：{g.example}{fix}", f"{g.path}, {column}: {g.example}{fix}", lang))
    return lines


# ------------------------------------------------------------------------ fields they break


def _field_problems(data: CrmData) -> pd.DataFrame:
    """The problems on data rows, each traced to the canonical field(s) its column feeds (cached).

    Columns ``field`` (``kind.field``, e.g. ``deals.closed``), ``source_file`` (str),
    ``source_row`` (int64), ``problem`` (int64: position in ``data.problems``).
    """
    if "field_problems" in data._cache:
        return data._cache["field_problems"]
    tables = {f.path: f.table for f in data.files}
    specs = {tb.name: tb for tb in data.mapping.spec.tables}
    rows = []
    for i, p in enumerate(data.problems):
        table = specs.get(tables.get(p.path, ""))
        if table is None or p.line < 2:  # the header (a missing column) is data.has()'s concern
            continue
        for name, spec in table.fields.items():
            if spec.column and p.field in spec.column:
                rows.append((f"{table.kind}.{name}", p.path, p.line, i))
        for part in ("stage_dates", "milestone_dates"):  # deals' date columns that become events
            for target, spec in getattr(table, part).items():
                if spec.column and p.field in spec.column and spec.column[0] not in table.fields:
                    rows.append((f"{table.kind}.{part}.{target}", p.path, p.line, i))
    out = pd.DataFrame(rows, columns=["field", "source_file", "source_row", "problem"])
    out["source_row"] = out["source_row"].astype("int64")
    data._cache["field_problems"] = out
    return out


@dataclass(frozen=True)
class Unparsed:
    """How many values of one field, among the rows an analysis needs, failed to parse.

    ``field`` is ``kind.field``; ``count`` the values; ``problems`` the first few of them.
    """

    field: str
    count: int
    problems: tuple[Problem, ...]

    def reason(self, what: str, what_en: str, lang: str | None = None) -> str:
        """Say why a figure is not computable: which values, how many, where, one example and the fix.

        ``what``/``what_en`` name the values in Chinese and English ("赢单和丢单的关闭日期",
        "close dates of won and lost deals").
        """
        lang = lang or current_lang()
        p = self.problems[0]
        example, fix = fix_of(p.message)
        fix = fix or t("改正导出中的值或映射", "correct the values in the export or the mapping", lang)
        name = Path(p.path).name
        return t(f"{what}有 {self.count:,} 个无法读取（{name} 的「{p.field}」列，例如第 {p.line} 行：{example}）；"
                 f"{fix}，然后重新分析。",
                 f"{what_en[:1].upper()}{what_en[1:]} could not be read: {self.count:,} "
                 f"value{'s' if self.count != 1 else ''} ({name}, column {p.field}; e.g. line {p.line}: "
                 f"{example}); {fix}, then analyse again.", lang)


#: the columns of a table's rows that :func:`unparsed` matches with the problems (select only these
#: when passing a subset of a large table: ``table.loc[mask, ROW_KEYS]``)
ROW_KEYS = ["source_file", "source_row"]


def unparsed(data: CrmData, field: str, rows: pd.DataFrame | Callable[[], pd.DataFrame] | None = None
             ) -> Unparsed | None:
    """Count the values of ``field`` that failed to parse in ``rows`` (default: the whole table).

    Parameters
    ----------
    data : CrmData
    field : str
        ``kind.field``, e.g. ``deals.closed``; a trailing ``*`` matches every field it starts
        (``deals.stage_dates.*``: the deals' stage date columns).
    rows : pandas.DataFrame or a function returning one, optional
        Rows of ``data.deals``, ``data.events`` or ``data.leads`` (their ``source_file`` and
        ``source_row`` are matched with the problems' file and line). A function is called only
        when ``field`` has problems at all (selecting rows of a large table costs more than the test).

    Returns
    -------
    Unparsed or None
        None when every value of ``field`` in ``rows`` was read.
    """
    fp = _field_problems(data)
    if not len(fp):  # (most exports: every value was read)
        return None
    fp = fp[fp["field"].str.startswith(field[:-1]) if field.endswith("*") else fp["field"] == field]
    if len(fp) and rows is not None:
        table = rows if isinstance(rows, pd.DataFrame) else rows()
        keys = pd.MultiIndex.from_arrays([table["source_file"].astype(object), table["source_row"]])
        fp = fp[pd.MultiIndex.from_arrays([fp["source_file"], fp["source_row"]]).isin(keys)]
    if not len(fp):
        return None
    first = fp.drop_duplicates("problem").head(3)["problem"]
    return Unparsed(field, int(fp["problem"].nunique()), tuple(data.problems[i] for i in first))


def missing_reason(data: CrmData, field: str, what: str, what_en: str, lang: str | None = None) -> str | None:
    """Say why a figure is not computable when the export lacks ``field`` (``kind.field``); None when it has it.

    The reason names the column the mapping expected (and the file it was not found in), or says
    the mapping does not map the field, with the fix.
    """
    if data.has(field):
        return None
    lang = lang or current_lang()
    kind, name = field.split(".", 1)
    tables = [tb for tb in data.mapping.spec.tables if tb.kind == kind]
    specs = [tb.fields[name] for tb in tables if name in tb.fields]
    files = [Path(f.path).name for f in data.files if f.kind == kind]
    mapping = Path(str(data.mapping.path)).name
    if not files:
        return t(f"导出中没有{what}所在的文件（{kind} 表）；请一并导出该文件。",
                 f"the export has no {kind} file, so it has no {what_en}; export that file too.", lang)
    if not specs or not specs[0].column:
        return t(f"导出中没有{what}：导入映射 {mapping} 未包含这一项；请维护导入映射的同事加上 CRM 中对应的列。",
                 f"the export has no {what_en}: the import mapping {mapping} does not include it; ask whoever "
                 "maintains the import mapping to add the CRM's column.", lang)
    cols = " / ".join(repr(c) for c in specs[0].column)
    return t(f"{', '.join(files)} 中没有 {cols} 列（{field}，{what}）；请在导出中包含该列，或在映射 {mapping} 中改用 CRM 的列名。",
             f"{', '.join(files)} has no column {cols} ({field}: {what_en}); export it with that column, or "
             f"name the CRM's column in the mapping {mapping}.", lang)


def input_gap(data: CrmData, field: str, rows: pd.DataFrame | Callable[[], pd.DataFrame] | None, what: str, what_en: str,
              lang: str | None = None) -> str | None:
    """Say why a figure that needs ``field`` in ``rows`` is not computable; None when it is.

    The export lacks the field (:func:`missing_reason`), or some of its values in ``rows`` failed
    to parse (:func:`unparsed`; a figure is never counted on the parsed rows only).
    """
    if (why := missing_reason(data, field, what, what_en, lang)) is not None:
        return why
    u = unparsed(data, field, rows)
    return u.reason(what, what_en, lang) if u is not None else None
