"""What the analyses need from an export, and why a figure is not computable when the export falls short.

A figure is **not computable** when a column it needs is absent from the export, or when any of
the values it needs failed to parse (the row problems of
:func:`~sopcoach.crm.reading.read_export`). It is never counted on the rows that did parse:
a win rate without the deals whose close date is unreadable would silently omit them. The reason
names the column, the count of unreadable values, one example with its line, and the fix
(:func:`sopcoach.crm.problems.input_gap`). Figures needing deal outcomes or stages (win rate,
cycles, stage counts, funnel, the groups' won/lost/open) are not computable while a deals row has
an unmapped or blank stage, a blank id, or an id shared with a row that differs (:func:`outcome_gap`);
amount totals while an amount they sum is unreadable (:func:`amount_gap`).

Tables (funnel, trend, groups) carry the reason in ``df.attrs["not_computable"]`` (:func:`mark`,
:func:`gap_of`), with the figures that need the missing values blanked (NA), never 0.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from ..crm.problems import ROW_KEYS, input_gap, unparsed
from ..i18n import current_lang, t

if TYPE_CHECKING:  # the report imports gap_of without loading the CRM reader
    from ..crm.reading import CrmData

__all__ = ["amount_gap", "closed_gap", "created_gap", "funnel_gap", "gap_of", "mark", "outcome_gap", "stage_time_gap"]

#: the key of a table's ``attrs`` that holds why (some of) its figures are not computable
NOT_COMPUTABLE = "not_computable"


#: the fields a deal's outcome and stage come from, with what they are called in a reason
_OUTCOME_FIELDS = (("deals.stage", "商机阶段", "deal stages"), ("deals.deal_id", "商机编号", "deal ids"),
                   ("events.stage", "阶段变更记录中的阶段", "stages of the stage changes"))


def outcome_gap(data: CrmData, lang: str | None = None) -> str | None:
    """Why figures needing the deals' outcomes or stages are not computable; None when they are.

    A deals row with a blank id, a blank stage or a stage name the mapping does not map, a deal id
    on two rows that disagree, or a stage change to an unmapped stage, is a row problem
    (:func:`sopcoach.crm.reading.read_export`); while any exists, no win rate, stage count or
    funnel is counted on the other rows (the reason names the count, one example and the fix).
    """
    for field, what, what_en in _OUTCOME_FIELDS:
        u = unparsed(data, field)
        if u is not None:
            return u.reason(what, what_en, lang)
    return None


def amount_gap(data: CrmData, lang: str | None = None, outcome: Iterable[str] = ("won",)) -> str | None:
    """Why amount figures (the amount won, a pipeline value) of the deals with ``outcome`` are not computable.

    None when every amount they need was read; a blank amount is no amount (not a problem), an
    unreadable one (``n/a``, ``$12k``) makes every total over those deals not computable.
    """
    return _gap_of_deals(data, "deals.amount", outcome, ("赢单的金额", "amounts of won deals"),
                         ("商机的金额", "deal amounts"), lang)


def _gap_of_deals(data: CrmData, field: str, outcome: Iterable[str], won: tuple[str, str],
                  other: tuple[str, str], lang: str | None) -> str | None:
    """:func:`input_gap` of ``field`` over the deals with ``outcome``, named ``won`` (only won deals) or ``other``."""
    outcome = tuple(outcome)
    deals = data.unique_deals()
    what, what_en = won if outcome == ("won",) else other
    return input_gap(data, field, lambda: deals[deals["outcome"].isin(outcome)], what, what_en, lang)


def closed_gap(data: CrmData, lang: str | None = None, outcome: Iterable[str] = ("won", "lost")) -> str | None:
    """Why figures needing the close dates of won (and lost) deals are not computable; None when they are."""
    return _gap_of_deals(data, "deals.closed", outcome, ("赢单的关闭日期", "close dates of won deals"),
                         ("赢单和丢单的关闭日期", "close dates of won and lost deals"), lang)


def created_gap(data: CrmData, lang: str | None = None, rows: pd.DataFrame | None = None) -> str | None:
    """Why figures needing the deals' creation dates (of ``rows``, default all deals) are not computable."""
    rows = data.unique_deals() if rows is None else rows
    return input_gap(data, "deals.created", rows, "商机的创建日期", "deal creation dates", lang)


def stage_time_gap(data: CrmData, lang: str | None = None) -> str | None:
    """Why figures needing when deals entered their stages are not computable; None when they are.

    Unreadable or unmapped stages (:func:`outcome_gap`) come first; then unreadable stage-change
    times: a stage change whose time failed to parse would drop the deal's passage through that stage.
    """
    if (why := outcome_gap(data, lang)) is not None:
        return why
    lang = lang or current_lang()
    ev = data.events
    def changes() -> pd.DataFrame:
        return ev.loc[(ev["kind"] == "stage_change").to_numpy() & ~ev["synthetic"].to_numpy(), ROW_KEYS]

    for field, rows in (("events.timestamp", changes), ("deals.stage_dates.*", None)):
        u = unparsed(data, field, rows)
        if u is not None:
            return u.reason("阶段变更时间", "stage-change times", lang)
    return None


def funnel_gap(data: CrmData, month: str | None, lang: str | None = None) -> str | None:
    """Why the funnel (of ``month``'s cohort: the deals created in it) is not computable; None when it is."""
    return stage_time_gap(data, lang) or (created_gap(data, lang) if month is not None else None)


def mark(df: pd.DataFrame, reasons: Iterable[str | None], columns: Iterable[str] = (),
         lang: str | None = None) -> pd.DataFrame:
    """Blank ``columns`` of ``df`` (NA, never 0) and record why in ``df.attrs["not_computable"]``.

    Integer columns become nullable ``Int64``, others float64 NaN. Nothing changes when every
    reason is None. The reason names the blanked columns by their labels (:mod:`sopcoach.labels`).
    """
    why = [r for r in dict.fromkeys(reasons) if r]
    if not why:
        return df
    cols = [c for c in columns if c in df.columns]
    for c in cols:
        if df[c].dtype.kind in "iu" or str(df[c].dtype) == "Int64":
            df[c] = pd.array([pd.NA] * len(df), dtype="Int64")
        elif df[c].dtype.kind == "f":
            df[c] = float("nan")
        else:
            df[c] = pd.Series([pd.NA] * len(df), index=df.index, dtype="object")
    from ..labels import column_label  # noqa: PLC0415 - labels loads zoneinfo; only a table with a gap needs it
    lang = lang or current_lang()
    named = t("、", ", ", lang).join(column_label(c, lang) for c in cols)
    which = t(f"（{named}）", f" ({named})", lang) if cols and len(cols) < len(df.columns) else ""
    df.attrs[NOT_COMPUTABLE] = t(f"无法计算{which}：", f"not computable{which}: ", lang) + " ".join(why)
    return df


def gap_of(df: pd.DataFrame) -> str:
    """Return why (some of) a table's figures are not computable ("" when all are)."""
    return str(df.attrs.get(NOT_COMPUTABLE, ""))
