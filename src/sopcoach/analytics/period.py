"""Reporting periods: a calendar month in the playbook's time zone (or the whole export) and the deals it covers.

:class:`Period` holds the month's start and end as UTC instants (end exclusive); :func:`months_of`
lists the months an export spans; :func:`parse_instant` reads an ``as_of`` instant.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..crm.reading import CrmData
from ..errors import AnalysisError

__all__ = ["Period"]


def parse_instant(value: Any, name: str = "as_of", tz: str = "UTC") -> pd.Timestamp:
    """Return ``value`` (datetime, Timestamp or ISO 8601 text) as a UTC Timestamp.

    A value without a time zone is a wall time in ``tz`` (IANA name; the command line passes the
    playbook's zone, the library's callers UTC).

    Raises
    ------
    AnalysisError
        When ``value`` is not a date or date/time (``"yesterday"``, ``"2017-13-01"``); the message
        names the argument ``name``.

    Examples
    --------
    >>> parse_instant("2025-06-30T18:00", tz="Asia/Shanghai")
    Timestamp('2025-06-30 10:00:00+0000', tz='UTC')
    """
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.strip())
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            raise ValueError("no value")
    except (ValueError, TypeError) as exc:
        raise AnalysisError(f"{name} must be an ISO date or date/time such as 2025-06-30 or "
                            f"2025-06-30T18:00+08:00 (got {value!r}: {exc})") from None
    return (stamp.tz_localize(tz) if stamp.tzinfo is None else stamp).tz_convert("UTC")


# ----------------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A calendar month in the playbook's time zone, or the whole export (``month=None``).

    ``start`` and ``end`` are UTC instants, ``end`` exclusive; both None for the whole export.
    """

    month: str | None
    start: pd.Timestamp | None
    end: pd.Timestamp | None

    @classmethod
    def of(cls, month: str | None, tz: str) -> Period:
        """Build the period of ``month`` (``YYYY-MM``) in time zone ``tz``.

        Raises
        ------
        AnalysisError
            When ``month`` is not ``YYYY-MM``.

        Examples
        --------
        >>> Period.of("2025-03", "Asia/Shanghai").start
        Timestamp('2025-02-28 16:00:00+0000', tz='UTC')
        """
        if month is None:
            return cls(None, None, None)
        text = str(month).strip()
        if not re.fullmatch(r"\d{4}-\d{2}", text):
            raise AnalysisError(f"month must be written YYYY-MM, e.g. 2025-03 (got {month!r})")
        if not 1 <= int(text[5:]) <= 12:
            raise AnalysisError(f"month {month!r} does not exist: the month number must be 01 to 12")
        first = pd.Period(text, freq="M")
        start = first.start_time.tz_localize(tz).tz_convert("UTC")
        end = (first + 1).start_time.tz_localize(tz).tz_convert("UTC")
        return cls(str(first), start, end)

    def contains(self, stamps: pd.Series) -> pd.Series:
        """Return a boolean mask: which (UTC) stamps fall in the period (NaT never does)."""
        if self.month is None:
            return stamps.notna()
        return (stamps >= self.start) & (stamps < self.end)


def months_of(data: CrmData, tz: str) -> list[str]:
    """Return the months (``YYYY-MM``, in ``tz``) in which deals were created or closed."""
    stamps = pd.concat([data.deals["created"], data.deals["closed"]]).dropna()
    if stamps.empty:
        return []
    return sorted(stamps.dt.tz_convert(tz).dt.strftime("%Y-%m").unique().tolist())


def _month_text(stamps: pd.Series, tz: str) -> pd.Series:
    """``YYYY-MM`` of UTC stamps in time zone ``tz`` (missing stays missing), formatted once per month."""
    local = stamps.dt.tz_convert(tz)
    key = (local.dt.year * 12 + local.dt.month - 1).to_numpy(dtype="float64")
    out = np.full(len(key), None, dtype=object)
    ok = ~np.isnan(key)
    if ok.any():
        uniq, inv = np.unique(key[ok].astype(np.int64), return_inverse=True)
        labels = np.array([f"{u // 12:04d}-{u % 12 + 1:02d}" for u in uniq], dtype=object)
        out[ok] = labels[inv]
    return pd.Series(out, index=stamps.index, dtype="str")


# ----------------------------------------------------------------------------------- funnel


def _cohort(data: CrmData, period: Period) -> pd.DataFrame:
    deals = data.unique_deals()
    if period.month is None:
        return deals
    return deals[period.contains(deals["created"])]


def _cohort_rows(data: CrmData, period: Period) -> np.ndarray:
    """Rows of ``data.unique_deals()`` in the cohort of ``period`` (see :func:`funnel`)."""
    deals = data.unique_deals()
    if period.month is None:
        return np.arange(len(deals))
    return np.flatnonzero(period.contains(deals["created"]).to_numpy())
