"""Analyse a CRM export against the playbook: KPIs, funnel, bottleneck, SOP compliance, case studies.

What the SOP asks for:

* KPIs set and tracked (lead conversion, quote acceptance, contract signing, average sales cycle),
  analysed regularly to find the weak stage, "a stage whose conversion is markedly lower than the
  others" (seed:1.3.2, seed:4.2.2). The formulas are the playbook's (``kpis.yaml``, clause
  ``kpi-formulas``); each is computed per period (a calendar month in the playbook's time zone).
* Follow-up data tracked in the CRM (seed:2.3.2): the follow-up cadence per customer tier
  (seed:3.1.2) and the time limits of ``slas.yaml`` (seed:1.2.1, seed:1.2.2, seed:2.2.2).
* Quotes above a role's authority only with approval (seed:2.3.1).
* A monthly meeting that studies won and lost deals and updates the SOP (seed:3.3.2):
  :func:`case_study` gives one deal's timeline against the SOP stages with each deviation and the
  clause it breaks.

Working time (working days, business hours, holidays, make-up working days, DST) is always the
playbook's :class:`~sopcoach.content.businesstime.BusinessCalendar` (``add`` for due times, ``elapsed`` for
the actual value). A check the export cannot support is reported as ``not_checkable`` with the
reason, never as zero breaches.

Units: rates are fractions 0-1 (0.632, not 63.2); sales cycles are calendar days (wall-clock days
in the playbook's time zone, fractional); SLA values are in each SLA's own unit.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from .content.businesstime import BusinessCalendar, Duration, DurationUnit
from .crm.quality import QualityReport, quality_report
from .crm.reading import CrmData
from .errors import AnalysisError, CalendarRangeError
from .i18n import current_lang, t

__all__ = [
    "Bottleneck", "CaseStudy", "Compliance", "Period", "Review", "breakdown", "case_study",
    "check_compliance", "cycle_times", "find_bottleneck", "funnel", "kpis", "monthly_trend",
    "review", "review_json", "stage_conversion_by", "stage_entries", "wilson_interval",
]

_TS = "datetime64[us, UTC]"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
FOLLOW_UP_KINDS = ("call", "email", "meeting")

#: SLA events implied by entering a playbook stage (the stage's entry criterion in process.yaml):
#: entering solution_demo means the needs were confirmed, quotation that the proposal was
#: accepted, payment_collection that the contract was signed.
STAGE_MILESTONES = {"needs_confirmed": "solution_demo", "proposal_accepted": "quotation",
                    "contract_signed": "payment_collection"}


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
    def of(cls, month: str | None, tz: str) -> "Period":
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


# ----------------------------------------------------------------------------------- statistics


def wilson_interval(successes: float, trials: float, confidence: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion (fractions 0-1; NaN when ``trials`` is 0).

    Examples
    --------
    >>> lo, hi = wilson_interval(1, 4)
    >>> round(lo, 3), round(hi, 3)
    (0.046, 0.699)
    """
    if trials <= 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _wilson_arrays(x: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    lo = np.full(len(n), np.nan)
    hi = np.full(len(n), np.nan)
    for i, (a, b) in enumerate(zip(x, n)):
        lo[i], hi[i] = wilson_interval(float(a), float(b), confidence)
    return lo, hi


# ----------------------------------------------------------------------------------- stages


def _stage_ids(playbook: Any) -> list[str]:
    return [s.id for s in playbook.stages]


_CORE = ["event_id", "deal_id", "account_id", "kind", "timestamp", "actor", "direction", "stage",
         "milestone", "amount", "discount", "approved_by", "synthetic"]

_CORE_CATEGORIES = ["direction", "stage", "milestone"]


def _core(data: CrmData) -> pd.DataFrame:
    """The events without repeated rows (``duplicate_of``), the columns analyses use, and ``pos``.

    ``pos`` (intp) is the row of the event's deal in ``data.unique_deals()`` (-1: none). Cached on
    the export, since every check reads it.
    """
    if "core" not in data._cache:
        ev = data.events
        keep = ev["duplicate_of"].isna().to_numpy()
        core = ev.loc[keep, _CORE].reset_index(drop=True)
        for c in _CORE_CATEGORIES:  # a handful of distinct values: compared by code, not text
            core[c] = core[c].astype("category")
        core["pos"] = data.event_deal_pos()[keep]
        data._cache["core"] = core
    return data._cache["core"]


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


def stage_entries(data: CrmData, playbook: Any) -> pd.DataFrame:
    """Return, per deal and playbook stage, whether and when the deal entered the stage.

    A deal reached every stage up to the furthest one it was seen in (its current stage or a stage
    change); a won deal reached them all. ``entered`` is the first recorded entry; a stage reached
    but never recorded takes the next recorded entry (or the close of a won deal) and is marked
    ``observed=False``.

    Returns
    -------
    pandas.DataFrame
        Index: RangeIndex. Columns: ``deal_id`` (str), ``stage`` (str, playbook id),
        ``position`` (int64, 0-based order), ``entered`` (datetime64[us, UTC], NaT when unknown),
        ``observed`` (bool: the export shows the deal in this stage), ``dated`` (bool: a stage
        change records when), ``pos`` (intp: the deal's row in ``data.unique_deals()``). Only
        reached stages appear.
    """
    ids = _stage_ids(playbook)
    key = ("entries", tuple(ids))
    if key not in data._cache:
        data._cache[key] = _stage_entries(data, ids)
    return data._cache[key]


def _stage_entries(data: CrmData, ids: list[str]) -> pd.DataFrame:
    k = len(ids)
    deals = data.unique_deals()
    n = len(deals)
    ev = _core(data)
    is_sc = (ev["kind"] == "stage_change").to_numpy()
    sc = ev.loc[is_sc, ["stage", "timestamp", "pos"]]
    sc = sc[sc["stage"].isin(ids).to_numpy() & sc["timestamp"].notna().to_numpy()]
    r = sc["pos"].to_numpy()
    ok = r >= 0
    stage_index = pd.Index(ids)
    c = stage_index.get_indexer(sc["stage"])[ok].astype("int64")
    never = np.iinfo("int64").max
    first = np.full((n, k), never, dtype="int64")
    cell = r[ok].astype("int64") * k + c
    ts = _naive(sc["timestamp"])[ok].astype("int64")
    if len(cell):  # earliest entry per (deal, stage): sort by cell, then time; keep each cell's first
        order = np.lexsort((ts, cell))
        head = np.r_[True, cell[order][1:] != cell[order][:-1]]
        first.reshape(-1)[cell[order][head]] = ts[order][head]
    seen = first != never
    current = stage_index.get_indexer(deals["stage"])
    has_cur = current >= 0
    seen[np.flatnonzero(has_cur), current[has_cur]] = True
    furthest = np.where(seen.any(axis=1), k - 1 - np.argmax(seen[:, ::-1], axis=1), -1) if k else np.zeros(n)
    won = (deals["outcome"] == "won").to_numpy()
    furthest = np.where(won, k - 1, np.maximum(furthest, 0))  # every deal starts at the first stage
    reached = np.arange(k)[None, :] <= furthest[:, None]
    filled = first.copy()
    for j in range(k - 2, -1, -1):  # a stage reached but not dated: the next dated entry
        filled[:, j] = np.where(filled[:, j] == never, filled[:, j + 1], filled[:, j])
    close = _naive(deals["closed"]).astype("int64")
    close_ok = ~np.isnat(_naive(deals["closed"]))
    fill_close = (filled == never) & (won & close_ok)[:, None]
    filled = np.where(fill_close, close[:, None], filled)
    rr, cc = np.nonzero(reached)
    stamps = filled[rr, cc]
    entered = np.where(stamps == never, np.datetime64("NaT", "us"), stamps.astype("datetime64[us]"))
    out = pd.DataFrame({
        "deal_id": deals["deal_id"].to_numpy()[rr],
        "pos": rr.astype(np.intp),
        "stage": np.array(ids, dtype=object)[cc],
        "position": cc.astype("int64"),
        "entered": pd.DatetimeIndex(entered).tz_localize("UTC"),
        "observed": seen[rr, cc],
        "dated": (first != never)[rr, cc],
    })
    out["stage"] = out["stage"].astype(str)
    return out


def _local_us(s: pd.Series, tz: str) -> np.ndarray:
    """Return UTC stamps as local wall-clock times of ``tz``, int64 microseconds since 1970-01-01."""
    return s.dt.tz_convert(tz).dt.tz_localize(None).to_numpy().astype("datetime64[us]").astype("int64")


def _naive(s: pd.Series) -> np.ndarray:
    """Return a UTC datetime series as naive ``datetime64[us]`` values (NaT kept)."""
    return s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _observed_beyond(entries: pd.DataFrame, stage: str, ids: list[str]) -> bool:
    """Tell whether any deal is *seen* (not only inferred) at ``stage`` or a later playbook stage."""
    later = ids[ids.index(stage):]
    return bool(entries.loc[entries["stage"].isin(later), "observed"].any())


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


def funnel(data: CrmData, playbook: Any, month: str | None = None, *, lang: str | None = None,
           entries: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the stage funnel and the stage-to-stage conversion (seed:1.3.2).

    The cohort is every deal (``month=None``) or the deals created in ``month``. A deal *reached*
    a stage when it was seen there or further on (a won deal reached every stage). Conversion out
    of a stage counts only decided deals: ``advanced / (advanced + lost_here)``, where
    ``advanced`` reached the next stage and ``lost_here`` were lost with this as their furthest
    stage; deals still open in the stage are left out.

    Parameters
    ----------
    data : CrmData
    playbook : Playbook
    month : str, optional
        ``YYYY-MM`` in the playbook's time zone.
    lang : {"zh-CN", "en"}, optional
        Language of ``name``.

    Returns
    -------
    pandas.DataFrame
        Index ``stage`` (playbook stage id, in process order). Columns: ``name`` (str),
        ``reached``, ``open_here``, ``lost_here``, ``advanced`` (int64 deal counts),
        ``conversion``, ``ci_low``, ``ci_high`` (float64 fractions 0-1, NaN for the last stage and
        when no deal decided), ``observed`` (bool: the export records this stage itself rather
        than only through won deals), ``lost_unknown`` (int64, on the first stage only: lost
        deals whose last stage the export does not record; they count in ``reached`` of the
        first stage and in no conversion).
    """
    ids = _stage_ids(playbook)
    period = Period.of(month, playbook.calendar.timezone)
    entries = stage_entries(data, playbook) if entries is None else entries
    deals = data.unique_deals()
    in_cohort = np.zeros(len(deals), dtype=bool)
    in_cohort[_cohort_rows(data, period)] = True
    e = entries[in_cohort[entries["pos"].to_numpy()]] if len(entries) else entries
    k = len(ids)
    reached = pd.Series(np.bincount(e["position"].to_numpy(), minlength=k)[:k], index=ids).astype("int64")
    pos = e["pos"].to_numpy()
    furthest = np.full(len(deals), -1, dtype=np.int64)
    np.maximum.at(furthest, pos, e["position"].to_numpy())
    seen_any = np.zeros(len(deals), dtype=bool)
    seen_any[pos[e["observed"].to_numpy()]] = True
    outcome = deals["outcome"].to_numpy(dtype=object)
    rows = np.flatnonzero(in_cohort & (furthest >= 0))
    lost_rows = rows[outcome[rows] == "lost"]
    lost = lost_rows[seen_any[lost_rows]]  # lost where the export says
    lost_unknown = len(lost_rows) - len(lost)
    lost_here = np.bincount(furthest[lost], minlength=k)[:k]
    open_rows = rows[outcome[rows] == "open"]
    open_here = np.bincount(furthest[open_rows], minlength=k)[:k]
    advanced = np.append(reached.to_numpy()[1:], 0).astype("int64")
    decided = advanced + lost_here
    conv = np.where(decided > 0, advanced / np.maximum(decided, 1), np.nan)
    conv[-1] = np.nan
    lo, hi = _wilson_arrays(advanced, decided)
    lo[-1] = hi[-1] = np.nan
    observed = entries.groupby("stage")["observed"].any().reindex(ids, fill_value=False).astype(bool)
    names = {s.id: s.name.get(lang or current_lang()) for s in playbook.stages}
    out = pd.DataFrame({
        "name": [names[s] for s in ids], "reached": reached.to_numpy(),
        "open_here": open_here.astype("int64"), "lost_here": lost_here.astype("int64"),
        "advanced": advanced, "conversion": conv, "ci_low": lo, "ci_high": hi,
        "observed": observed.to_numpy(),
        "lost_unknown": np.array([lost_unknown] + [0] * (len(ids) - 1), dtype="int64")},
        index=pd.Index(ids, name="stage"))
    return out


@dataclass(frozen=True)
class Bottleneck:
    """The weak stage of a funnel, if one is markedly lower (seed:1.3.2, seed:4.2.2).

    ``confidence`` is the per-comparison level the intervals use; ``stage`` is None when no stage
    is flagged; ``compared`` lists every stage considered with its
    conversion and interval; ``reason`` explains the verdict in words.
    """

    stage: str | None
    conversion: float
    ci: tuple[float, float]
    rest_conversion: float
    rest_ci: tuple[float, float]
    confidence: float
    reason: str
    compared: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def judged(self) -> bool:
        """True when at least two stages could be compared (else the funnel says nothing either way)."""
        return len(self.compared) >= 2

    @property
    def css_class(self) -> str:
        """``callout`` (a bottleneck), ``ok`` (compared, none markedly lower) or ``neutral`` (not judged)."""
        return "callout" if self.stage else ("ok" if self.judged else "neutral")


def find_bottleneck(fun: pd.DataFrame, confidence: float = 0.95, min_decided: int = 20,
                    lang: str | None = None) -> Bottleneck:
    """Flag the stage whose conversion is markedly lower than the other stages'.

    Each stage's conversion is compared with the pooled conversion of the other stages, using
    Wilson score intervals. Since every stage is tested, the intervals use the Bonferroni-adjusted
    level ``1 - (1 - confidence) / m`` for ``m`` compared stages (99% for five stages at 95%). A
    stage is flagged when the upper end of its interval lies below the lower end of the others',
    and it has at least ``min_decided`` decided deals (advanced or lost there): a monthly meeting
    should not redesign a stage on a handful of deals. Only stages the export records itself
    (``observed``) and at which it records at least one loss are compared: a stage with no loss at
    all converts 100% by construction (an export that books every loss at one stage). Among
    flagged stages the lowest conversion is returned. The interval level is written in the reason
    as "Bonferroni-adjusted", since the funnel chart shows plain 95% intervals.

    Parameters
    ----------
    fun : pandas.DataFrame
        The output of :func:`funnel` (``advanced``, ``lost_here``, ``observed``, ``name``).
    confidence : float
        Family-wide confidence level, in (0, 1).
    min_decided : int
        Fewest decided deals for a stage to be flagged.

    Returns
    -------
    Bottleneck
        ``ci`` and ``rest_ci`` at the adjusted level; ``stage`` None when nothing is flagged.

    Examples
    --------
    >>> f = pd.DataFrame({"name": ["a", "b", "c"], "advanced": [90, 30, 0],
    ...                   "lost_here": [10, 70, 0], "observed": [True, True, True]},
    ...                  index=pd.Index(["a", "b", "c"], name="stage"))
    >>> find_bottleneck(f).stage
    'b'
    """
    lang = lang or current_lang()
    decided = fun["advanced"] + fun["lost_here"]
    # a stage where the export records no loss at all converts 100% by construction (Maven records
    # every loss at one stage): it says nothing about that stage, so it is not compared
    no_loss = [str(fun.at[s, "name"]) for s in fun.index
               if fun.at[s, "observed"] and decided[s] > 0 and fun.at[s, "lost_here"] == 0]
    cand = fun[fun["observed"] & (decided > 0) & (fun["lost_here"] > 0)].copy()
    cand["decided"] = decided[cand.index]
    level = 1 - (1 - confidence) / max(len(cand), 1)
    rows = []
    for s in cand.index:
        x, n = cand.at[s, "advanced"], cand.at[s, "decided"]
        others = cand.drop(index=s)
        rx, rn = others["advanced"].sum(), others["decided"].sum()
        lo, hi = wilson_interval(x, n, level)
        rlo, rhi = wilson_interval(rx, rn, level)
        rows.append({"stage": s, "conversion": x / n, "ci_low": lo, "ci_high": hi,
                     "decided": int(n), "rest_conversion": rx / rn if rn else math.nan,
                     "rest_ci_low": rlo, "rest_ci_high": rhi,
                     "flagged": bool(rn and hi < rlo and n >= min_decided)})
    compared = pd.DataFrame(rows).set_index("stage") if rows else pd.DataFrame()
    nan2 = (math.nan, math.nan)
    if "reached" in fun and not fun["reached"].any():
        return Bottleneck(None, math.nan, nan2, math.nan, nan2, level,
                          t("漏斗为空：本期没有新建的商机（漏斗跟踪本期新建的商机）。",
                            "The funnel is empty: no deal was created in this period (the funnel follows "
                            "the deals created in it).", lang), compared)
    if len(compared) < 2:
        lossless = (t(f"导出数据在这些阶段没有记录任何丢单，无法判断其转化率：{'、'.join(no_loss)}。",
                      f" The export records no loss at all at: {', '.join(no_loss)}, so their conversion "
                      "says nothing.", lang) if no_loss else "")
        return Bottleneck(None, math.nan, nan2, math.nan, nan2, level,
                          t("可比较的阶段不足两个（导出数据只在不到两个阶段记录了丢单）。",
                            "Fewer than two stages can be compared: the export records losses at fewer "
                            "than two stages.", lang) + lossless, compared)
    flagged = compared[compared["flagged"]]
    pct = f"{level:.1%}".replace(".0%", "%")  # 99%, 97.5%
    if flagged.empty:
        return Bottleneck(None, math.nan, nan2, math.nan, nan2, level,
                          t(f"没有阶段的转化率显著低于其他阶段（{pct} 置信区间重叠，或有结论的商机少于 {min_decided} 个）。",
                            f"No stage converts markedly lower than the others (the {pct} intervals "
                            f"overlap, or fewer than {min_decided} deals were decided there).", lang), compared)
    s = flagged["conversion"].idxmin()
    r = compared.loc[s]
    name = fun.at[s, "name"]
    rest = [str(fun.at[o, "name"]) for o in compared.index if o != s]
    inferred = [str(fun.at[o, "name"]) for o in fun.index if not fun.at[o, "observed"]]
    reason = t(
        f"阶段「{name}」的转化率为 {r.conversion:.1%}（{pct} 区间，已按 {len(compared)} 个阶段做 Bonferroni 校正："
        f"{r.ci_low:.1%}–{r.ci_high:.1%}，"
        f"{r.decided} 个有结论的商机），显著低于导出中有记录的其他阶段（{'、'.join(rest)}）的 "
        f"{r.rest_conversion:.1%}（{r.rest_ci_low:.1%}–{r.rest_ci_high:.1%}）。"
        + (f"未比较只能推断的阶段：{'、'.join(inferred)}。" if inferred else ""),
        f"Stage '{name}' converts {r.conversion:.1%} ({pct} interval, Bonferroni-adjusted for "
        f"{len(compared)} stages: {r.ci_low:.1%}-{r.ci_high:.1%}, "
        f"{r.decided} decided deals), markedly below the other stages the export records "
        f"({', '.join(rest)}): {r.rest_conversion:.1%} ({r.rest_ci_low:.1%}-{r.rest_ci_high:.1%})."
        + (f" Not compared, as only inferred: {', '.join(inferred)}." if inferred else ""), lang)
    return Bottleneck(s, float(r.conversion), (float(r.ci_low), float(r.ci_high)),
                      float(r.rest_conversion), (float(r.rest_ci_low), float(r.rest_ci_high)),
                      level, reason, compared)


# ----------------------------------------------------------------------------------- KPIs


def _wall_days(start: pd.Series, end: pd.Series, tz: str) -> pd.Series:
    """Calendar days between two UTC series, measured on the local wall clock of ``tz``."""
    s = start.dt.tz_convert(tz).dt.tz_localize(None)
    e = end.dt.tz_convert(tz).dt.tz_localize(None)
    return (e - s) / pd.Timedelta(days=1)


def cycle_times(data: CrmData, playbook: Any, month: str | None = None) -> pd.Series:
    """Return the sales cycle of each won deal closed in the period, in calendar days (seed:1.3.2).

    The cycle runs from lead assignment (the deal's ``created``) to contract signature (its
    ``closed``), measured in wall-clock calendar days in the playbook's time zone. Deals without a
    creation date, or closed before they were created (a data-quality finding), are left out.

    Returns
    -------
    pandas.Series
        Index ``deal_id`` (str); values float64 calendar days; name ``cycle_days``.
    """
    tz = playbook.calendar.timezone
    key = ("cycle", tz, month)
    if key not in data._cache:
        period = Period.of(month, tz)
        deals = data.unique_deals()
        won = deals[(deals["outcome"] == "won") & period.contains(deals["closed"]) & deals["created"].notna()]
        days = _wall_days(won["created"], won["closed"], tz)
        days.index = pd.Index(won["deal_id"].to_numpy(), name="deal_id")
        data._cache[key] = days[days >= 0].rename("cycle_days").astype("float64")
    return data._cache[key].copy()


#: why a monthly flow ratio can pass 100%, per KPI (its numerator may come from an earlier month's denominator)
_FLOW_EXAMPLES = {
    "lead_conversion_rate": ("上月分配的线索可能本月才确认需求", "a lead assigned last month may have its needs "
                             "confirmed this month"),
    "quote_acceptance_rate": ("上月发出的报价可能本月才被接受", "a quote sent last month may be accepted this month"),
    "contract_signing_rate": ("上月接受的报价可能本月才签约", "a quote accepted last month may be signed this month"),
}


def kpis(data: CrmData, playbook: Any, month: str | None = None, *, lang: str | None = None,
         entries: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compute the KPIs of seed:1.3.2 with the playbook's formulas (``kpis.yaml``).

    Formulas (per period; ``month=None`` is the whole export):

    * ``lead_conversion_rate`` = leads whose needs were confirmed in the period / leads assigned in
      the period. With a leads table: leads converted / leads created in the period (the CRM's own
      conversion); otherwise deals entering ``solution_demo`` (needs confirmed) / deals created.
    * ``quote_acceptance_rate`` = quotes accepted (deals entering ``contract_negotiation``) / quotes
      sent (``quote_sent`` events, else deals entering ``quotation``).
    * ``contract_signing_rate`` = contracts signed (deals won) / quotes accepted.
    * ``win_rate`` = won / (won + lost), deals closed in the period.
    * ``average_sales_cycle`` = mean calendar days from lead assignment to contract signature over
      the deals won in the period; ``median_sales_cycle`` the median of the same values.

    A KPI the export cannot support (a stage it never records, no closed deal) is
    ``not_computable`` with the reason; its value is NaN, never 0.

    Returns
    -------
    pandas.DataFrame
        Index ``kpi`` (str). Columns: ``name``, ``unit`` (``fraction`` or ``calendar_days``),
        ``status`` (``ok``/``not_computable``), ``reason``, ``formula``, ``clause`` (str);
        ``value``, ``numerator``, ``denominator``, ``ci_low``, ``ci_high`` (Wilson 95%, fractions
        only), ``target`` (float64).

    Examples
    --------
    See ``tests/test_analytics.py``: the Maven export gives ``win_rate`` 0.632 and a median cycle
    of 57 days.
    """
    lang = lang or current_lang()
    tz = playbook.calendar.timezone
    period = Period.of(month, tz)
    ids = _stage_ids(playbook)
    entries = stage_entries(data, playbook) if entries is None else entries
    deals = data.unique_deals()
    rows: dict[str, dict[str, Any]] = {}

    def entered(stage: str) -> pd.Series:
        e = entries[entries["stage"] == stage]
        return e[period.contains(e["entered"])] if period.month else e

    def undated(stage: str) -> str:
        name = next(s.name.get(lang) for s in playbook.stages if s.id == stage)
        return t(f"导出数据没有阶段变更历史，不知道商机何时进入「{name}」，无法按月统计；请不选月份查看全部数据。",
                 f"the export has no stage history, so it does not say when deals entered '{name}'; "
                 "this KPI cannot be counted per month (choose all months).", lang)

    def dated(stage: str) -> bool:
        later = ids[ids.index(stage):]
        return period.month is None or bool(entries.loc[entries["stage"].isin(later), "dated"].any())

    def rate(kid: str, num: float, den: float, ok: bool, reason: str) -> None:
        if ok and den > 0:
            lo, hi = wilson_interval(num, den) if num <= den else (math.nan, math.nan)
            zh_example, en_example = _FLOW_EXAMPLES.get(kid, ("", ""))
            note = "" if num <= den else t(
                f"分子和分母按各自发生的月份统计（{zh_example}），比率可超过100%。",
                f"numerator and denominator are counted in the month each happened ({en_example}), so "
                "the ratio can exceed 100%.", lang)
            rows[kid] = dict(value=num / den, numerator=num, denominator=den, ci_low=lo, ci_high=hi,
                             status="ok", reason=note)
        else:
            why = reason if not ok else t("本期分母为 0。", "the denominator is 0 in this period.", lang)
            rows[kid] = dict(value=math.nan, numerator=num if ok else math.nan,
                             denominator=den if ok else math.nan, ci_low=math.nan, ci_high=math.nan,
                             status="not_computable", reason=why)

    def never(stage: str) -> str:
        name = next(s.name.get(lang) for s in playbook.stages if s.id == stage)
        return t(f"导出数据从未记录「{name}」阶段（或其后的阶段），只能从赢单推断；请在映射中把一个 CRM 阶段映射到 {stage}。",
                 f"the export never records the '{name}' stage (or a later one) except through won "
                 f"deals; map a CRM stage onto {stage}.", lang)

    created = int(period.contains(deals["created"]).sum())
    # lead conversion
    leads = data.leads
    if len(leads):
        if period.month is not None and leads["created"].isna().all():
            rate("lead_conversion_rate", math.nan, math.nan, False,
                 t("线索表没有创建日期，无法按月统计。", "the leads table has no creation date, so leads "
                   "cannot be counted per month.", lang))
        else:
            sel = leads[period.contains(leads["created"])] if period.month else leads
            rate("lead_conversion_rate", float(sel["converted"].sum()), float(len(sel)), True, "")
            if rows["lead_conversion_rate"]["status"] == "ok":
                rows["lead_conversion_rate"]["reason"] = t(
                    "按线索表计算：已转化线索 ÷ 线索（CRM 自身的转化标记）。",
                    "from the leads table: converted leads ÷ leads (the CRM's own conversion flag).", lang)
    else:
        ok = "solution_demo" in ids and _observed_beyond(entries, "solution_demo", ids)
        ok_m = ok and dated("solution_demo")
        rate("lead_conversion_rate", float(len(entered("solution_demo"))) if ok_m else math.nan,
             float(created), ok_m, (never("solution_demo") if not ok else undated("solution_demo"))
             if "solution_demo" in ids else "")
    # quote acceptance
    ok = "contract_negotiation" in ids and _observed_beyond(entries, "quotation", ids)
    ok_m = ok and dated("quotation")
    core = _core(data)
    quotes = core[(core["milestone"] == "quote_sent").to_numpy()]
    sent = float(period.contains(quotes["timestamp"]).sum()) if len(quotes) else float(len(entered("quotation")))
    accepted = float(len(entered("contract_negotiation")))
    rate("quote_acceptance_rate", accepted, sent, ok_m, never("quotation") if not ok else undated("quotation"))
    # contract signing
    won_in = deals[(deals["outcome"] == "won") & period.contains(deals["closed"])]
    lost_in = deals[(deals["outcome"] == "lost") & period.contains(deals["closed"])]
    ok = _observed_beyond(entries, "contract_negotiation", ids)
    ok_m = ok and dated("contract_negotiation")
    rate("contract_signing_rate", float(len(won_in)), accepted, ok_m,
         never("contract_negotiation") if not ok else undated("contract_negotiation"))
    # win rate
    rate("win_rate", float(len(won_in)), float(len(won_in) + len(lost_in)), True, "")
    if len(won_in) + len(lost_in) == 0:
        rows["win_rate"]["reason"] = t("本期没有赢单或丢单。", "no deal was won or lost in this period.", lang)
    # cycle
    cyc = cycle_times(data, playbook, month)
    for kid, fn in (("average_sales_cycle", "mean"), ("median_sales_cycle", "median")):
        if len(cyc):
            rows[kid] = dict(value=float(getattr(cyc, fn)()), numerator=float(cyc.sum()),
                             denominator=float(len(cyc)), ci_low=math.nan, ci_high=math.nan,
                             status="ok", reason="")
        else:
            won_p = deals[(deals["outcome"] == "won") & period.contains(deals["closed"])]
            negative = int((won_p["closed"] < won_p["created"]).sum())
            why = (t(f"本期 {negative} 个赢单的关闭日期早于创建日期（见数据质量报告）。",
                     f"the {negative} deals won in this period closed before they were created (see the "
                     "data-quality report).", lang) if negative else
                   t("本期没有带创建日期的赢单。", "no won deal with a creation date in this period.", lang))
            rows[kid] = dict(value=math.nan, numerator=math.nan, denominator=math.nan, ci_low=math.nan,
                             ci_high=math.nan, status="not_computable", reason=why)
    meta = {k.id: k for k in playbook.kpis}
    out = []
    for kid, r in rows.items():
        k = meta.get(kid if kid != "median_sales_cycle" else "average_sales_cycle")
        name = k.name.get(lang) if k else kid
        if kid == "median_sales_cycle":
            name = t("销售周期中位数", "Median sales cycle", lang)
        out.append(dict(kpi=kid, name=name,
                        unit=k.unit if k else ("calendar_days" if "cycle" in kid else "fraction"),
                        formula=k.formula.get(lang) if k and kid != "median_sales_cycle" else
                        t("本期赢单销售周期（自然日）的中位数", "median of the calendar-day cycles of the deals won in the period", lang),
                        clause=k.clause if k else "kpi-formulas",
                        target=float(k.target) if k and k.target is not None and kid != "median_sales_cycle" else math.nan,
                        **r))
    df = pd.DataFrame(out).set_index("kpi")
    for c in ("value", "numerator", "denominator", "ci_low", "ci_high", "target"):
        df[c] = df[c].astype("float64")
    return df[["name", "value", "unit", "status", "reason", "numerator", "denominator", "ci_low",
               "ci_high", "target", "formula", "clause"]]


def stage_counts(data: CrmData, playbook: Any, month: str | None = None) -> dict[str, int]:
    """Count the deals per current stage (playbook ids, ``won``, ``lost``, ``unmapped``) in the cohort."""
    cohort = _cohort(data, Period.of(month, playbook.calendar.timezone))
    counts = cohort["stage"].fillna("unmapped").value_counts()
    order = _stage_ids(playbook) + ["won", "lost", "unmapped"]
    return {s: int(counts[s]) for s in order if s in counts.index}


# ----------------------------------------------------------------------------------- groups


GROUPS = ("owner", "team", "region", "product")


def breakdown(data: CrmData, playbook: Any, by: str = "owner", month: str | None = None,
              compliance: "Compliance | None" = None) -> pd.DataFrame:
    """Return the KPIs per rep, team, region or product.

    Parameters
    ----------
    by : {"owner", "team", "region", "product"}
    compliance : Compliance, optional
        Adds ``breaches`` (SOP findings per group).

    Returns
    -------
    pandas.DataFrame
        Index: the group value (str; ``(none)`` for blanks). Columns ``created``, ``won``,
        ``lost``, ``open`` (int64 deal counts: created in the period, won or lost in it, open at
        its end — created by then and not closed by then, so a deal without a creation date is left
        out; for the whole export, still open); ``win_rate``, ``ci_low``, ``ci_high`` (float64 fractions); ``cycle_mean``,
        ``cycle_median`` (float64 calendar days); ``amount_won`` (float64, export currency);
        ``breaches`` (Int64, with ``compliance``; missing when no SOP rule could be checked). Sorted
        by ``won`` then ``created``, descending.

    Raises
    ------
    AnalysisError
        When ``by`` is not one of the groups.
    """
    if by not in GROUPS:
        raise AnalysisError(f"by must be one of {', '.join(GROUPS)} (got {by!r})")
    tz = playbook.calendar.timezone
    period = Period.of(month, tz)
    deals = data.unique_deals()
    group = deals[by].fillna("(none)")
    codes, names = pd.factorize(group.to_numpy(dtype=object))
    g = len(names)
    outcome = deals["outcome"].to_numpy(dtype=object)
    closed_in = period.contains(deals["closed"]).to_numpy()
    won_m, lost_m = closed_in & (outcome == "won"), closed_in & (outcome == "lost")

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=g).astype("int64")

    if period.month is None:
        open_m = outcome == "open"
    else:  # the pipeline at the end of the month: created by then, not closed by then
        created, closed = deals["created"], deals["closed"]
        open_m = (((created < period.end) & (closed.isna() | (closed >= period.end))).to_numpy()
                  & ~((outcome != "open") & closed.isna().to_numpy()))  # not: closed on an unknown date
    out = pd.DataFrame({
        "created": count(period.contains(deals["created"]).to_numpy()),
        "won": count(won_m), "lost": count(lost_m), "open": count(open_m),
    }, index=pd.Index(list(names), name=by, dtype="str"))
    n = (out["won"] + out["lost"]).to_numpy()
    out["win_rate"] = np.where(n > 0, out["won"] / np.maximum(n, 1), np.nan)
    out["ci_low"], out["ci_high"] = _wilson_arrays(out["won"].to_numpy(), n)
    cyc = cycle_times(data, playbook, month)
    cpos = pd.Index(deals["deal_id"]).get_indexer(cyc.index)
    by_group = cyc.groupby(codes[cpos]) if len(cyc) else None
    out["cycle_mean"] = (by_group.mean().reindex(range(g)).to_numpy() if by_group is not None
                         else np.full(g, np.nan)).astype("float64")
    out["cycle_median"] = (by_group.median().reindex(range(g)).to_numpy() if by_group is not None
                           else np.full(g, np.nan)).astype("float64")
    amount = np.nan_to_num(deals["amount"].to_numpy(dtype="float64"))
    out["amount_won"] = np.bincount(codes[won_m], weights=amount[won_m], minlength=g).astype("float64")
    out = out[(out[["created", "won", "lost", "open"]].sum(axis=1) > 0).to_numpy()]
    idx = list(out.index)
    if compliance is not None:
        f = compliance.findings
        col = "owner" if by == "owner" else None
        if col:
            counts = f.groupby(f["owner"].fillna("(none)")).size()
        else:
            fg = f["deal_id"].map(pd.Series(group.to_numpy(), index=deals["deal_id"])).fillna("(none)")
            counts = f.groupby(fg).size()
        out["breaches"] = counts.reindex(idx, fill_value=0).astype("Int64")
        if not compliance.checked:  # no rule could be checked: no count, rather than 0
            out["breaches"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out.sort_values(["won", "created"], ascending=False, kind="stable")


def stage_conversion_by(data: CrmData, playbook: Any, by: str = "owner", month: str | None = None,
                        *, lang: str | None = None) -> pd.DataFrame:
    """Return the stage-to-stage conversion per rep, team, region or product, with each one's weak stage.

    The same rules as :func:`funnel` (cohort, decided deals) and :func:`find_bottleneck` (a weak stage
    only when markedly lower, judged with intervals, and on enough decided deals), per group.

    Returns
    -------
    pandas.DataFrame
        Index: the group value (str). Columns: one per playbook stage but the last, named after
        the stage id, with its conversion (float64 fraction, NaN when no deal decided there);
        ``deals`` (int64, the group's deals in the cohort: created in the month, or all);
        ``weak_stage`` (str stage name, missing when none is flagged). Groups without a decided
        deal are left out; sorted by ``deals``, descending.

    Raises
    ------
    AnalysisError
        When ``by`` is not one of the groups.
    """
    if by not in GROUPS:
        raise AnalysisError(f"by must be one of {', '.join(GROUPS)} (got {by!r})")
    lang = lang or current_lang()
    ids = _stage_ids(playbook)
    k = len(ids)
    period = Period.of(month, playbook.calendar.timezone)
    deals = data.unique_deals()
    entries = stage_entries(data, playbook)
    codes, names = pd.factorize(deals[by].fillna("(none)").to_numpy(dtype=object))
    g = len(names)
    in_cohort = np.zeros(len(deals), dtype=bool)
    in_cohort[_cohort_rows(data, period)] = True
    e = entries[in_cohort[entries["pos"].to_numpy()]]
    pos, position = e["pos"].to_numpy(), e["position"].to_numpy()
    reached = np.bincount(codes[pos] * k + position, minlength=g * k).reshape(g, k)
    furthest = np.full(len(deals), -1, dtype=np.int64)
    np.maximum.at(furthest, pos, position)
    seen_any = np.zeros(len(deals), dtype=bool)
    seen_any[pos[e["observed"].to_numpy()]] = True
    lost = np.flatnonzero(in_cohort & (deals["outcome"] == "lost").to_numpy() & seen_any & (furthest >= 0))
    lost_here = np.bincount(codes[lost] * k + furthest[lost], minlength=g * k).reshape(g, k)
    advanced = np.zeros_like(reached)
    advanced[:, :-1] = reached[:, 1:]
    decided = advanced + lost_here
    conv = np.where(decided > 0, advanced / np.maximum(decided, 1), np.nan)
    observed = entries.groupby("stage")["observed"].any().reindex(ids, fill_value=False).to_numpy()
    stage_names = {st.id: st.name.get(lang) for st in playbook.stages}
    out = pd.DataFrame(conv[:, :-1], columns=ids[:-1], index=pd.Index(list(names), name=by, dtype="str"))
    out["deals"] = np.bincount(codes[in_cohort], minlength=g).astype("int64")
    weak = []
    for i in range(g):
        f = pd.DataFrame({"name": [stage_names[x] for x in ids], "advanced": advanced[i],
                          "lost_here": lost_here[i], "observed": observed}, index=pd.Index(ids, name="stage"))
        f.iloc[-1, f.columns.get_loc("observed")] = False
        b = find_bottleneck(f, lang=lang) if decided[i].sum() else None
        weak.append(stage_names[b.stage] if b is not None and b.stage else None)
    out["weak_stage"] = pd.Series(weak, index=out.index, dtype="str")
    return out[decided[:, :-1].sum(axis=1) > 0].sort_values("deals", ascending=False, kind="stable")


def monthly_trend(data: CrmData, playbook: Any, compliance: "Compliance | None" = None) -> pd.DataFrame:
    """Return the month-over-month trend of the headline KPIs.

    Returns
    -------
    pandas.DataFrame
        Index ``month`` (str ``YYYY-MM`` in the playbook's time zone). Columns ``created``,
        ``won``, ``lost`` (int64); ``win_rate``, ``ci_low``, ``ci_high`` (float64 fractions);
        ``win_rate_change`` (float64, difference from the previous month in fraction points);
        ``cycle_mean``, ``cycle_median`` (float64 calendar days); ``amount_won`` (float64);
        ``breaches`` (Int64, SOP findings by the month of their start, with ``compliance``;
        missing when no SOP rule could be checked).
    """
    tz = playbook.calendar.timezone
    deals = data.unique_deals()

    def month(s: pd.Series) -> pd.Series:
        return _month_text(s, tz)

    created = deals[deals["created"].notna()].groupby(month(deals["created"].dropna())).size()
    closed = deals[deals["closed"].notna()]
    cm = month(closed["closed"])
    won = closed[closed["outcome"] == "won"].groupby(cm[closed["outcome"] == "won"]).size()
    lost = closed[closed["outcome"] == "lost"].groupby(cm[closed["outcome"] == "lost"]).size()
    amount = closed[closed["outcome"] == "won"].groupby(cm[closed["outcome"] == "won"])["amount"].sum()
    cyc = cycle_times(data, playbook)
    cyc_m = month(deals.set_index("deal_id").loc[cyc.index, "closed"]) if len(cyc) else pd.Series(dtype=str)
    idx = sorted(set(created.index) | set(won.index) | set(lost.index))
    out = pd.DataFrame(index=pd.Index(idx, name="month"))
    for name, s in (("created", created), ("won", won), ("lost", lost)):
        out[name] = s.reindex(idx, fill_value=0).astype("int64")
    n = (out["won"] + out["lost"]).to_numpy()
    out["win_rate"] = np.where(n > 0, out["won"] / np.maximum(n, 1), np.nan)
    out["ci_low"], out["ci_high"] = _wilson_arrays(out["won"].to_numpy(), n)
    out["win_rate_change"] = out["win_rate"].diff()
    out["cycle_mean"] = (cyc.groupby(cyc_m.to_numpy()).mean() if len(cyc) else pd.Series(dtype=float)).reindex(idx).astype("float64")
    out["cycle_median"] = (cyc.groupby(cyc_m.to_numpy()).median() if len(cyc) else pd.Series(dtype=float)).reindex(idx).astype("float64")
    out["amount_won"] = amount.reindex(idx).fillna(0.0).astype("float64")
    if compliance is not None and not compliance.checked:  # nothing checkable: no count, rather than 0
        out["breaches"] = pd.array([pd.NA] * len(idx), dtype="Int64")
    elif compliance is not None and len(compliance.findings):
        fm = month(compliance.findings["start"].dropna())
        out["breaches"] = fm.value_counts().reindex(idx, fill_value=0).astype("Int64")
    elif compliance is not None:
        out["breaches"] = pd.array([0] * len(idx), dtype="Int64")
    return out


# ----------------------------------------------------------------------------------- compliance


FINDING_COLUMNS = ["check", "rule", "deal_id", "owner", "clause", "source", "expected", "actual",
                   "limit", "value", "unit", "start", "due", "end", "week", "event_id"]


@dataclass(frozen=True)
class Compliance:
    """SOP compliance of an export.

    ``checks``: index ``check`` (``sla:<id>``, ``cadence``, ``authority``); columns ``rule``
    (str), ``clause`` (clause id), ``source`` (``seed:N`` or ``company-setting``), ``status``
    (``checked`` or ``not_checkable``), ``reason`` (str), ``instances``, ``breaches``, ``pending``
    (Int64; pending = not due yet; missing, never 0, for a check that could not run).

    ``findings``: one row per breach. ``check``, ``rule``, ``deal_id``, ``owner``, ``clause``,
    ``source``, ``expected``, ``actual`` (str, human-readable), ``unit`` (str), ``week`` (str,
    ISO week for cadence), ``event_id`` (str); ``limit`` and ``value`` (float64, in ``unit``);
    ``start``, ``due``, ``end`` (datetime64[us, UTC]; ``end`` NaT when never recorded).
    """

    checks: pd.DataFrame
    findings: pd.DataFrame
    as_of: pd.Timestamp | None

    def for_deal(self, deal_id: str) -> pd.DataFrame:
        return self.findings[self.findings["deal_id"] == deal_id]

    @property
    def checked(self) -> int:
        """How many checks the export supported (status ``checked``); 0 means no finding can exist."""
        return int((self.checks["status"] == "checked").sum())

    def summary(self, lang: str | None = None) -> str:
        """One sentence on the findings that never passes off unchecked rules as kept ones.

        >>> c = Compliance(pd.DataFrame({"status": ["not_checkable"] * 2}), pd.DataFrame(), None)
        >>> c.summary("en")
        'No SOP rule could be checked on this export (2 not checkable): no findings does not mean no deviations.'
        """
        total, checked, n = len(self.checks), self.checked, len(self.findings)
        if not checked:
            return t(f"这份导出无法检查任何SOP规则（{total} 项均无法检查）：没有偏离记录不代表没有偏离。",
                     f"No SOP rule could be checked on this export ({total} not checkable): no findings does "
                     "not mean no deviations.", lang)
        rest = total - checked
        return t(f"{n:,} 条偏离记录（{checked} 项规则已检查" + (f"，{rest} 项无法检查）" if rest else "）"),
                 f"{n:,} findings ({checked} rules checked" + (f", {rest} not checkable)" if rest else ")"), lang)


def _clause_source(playbook: Any, clause_id: str) -> str:
    try:
        return playbook.clause(clause_id).source
    except KeyError:
        return ""


def milestones(data: CrmData, playbook: Any, entries: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return every SLA event occurrence per deal, from explicit events and from stage entries.

    Sources: ``lead_assigned`` = deal created; ``deal_closed`` = a won deal's close;
    ``needs_confirmed``, ``proposal_accepted``, ``contract_signed`` = recorded entries into
    ``solution_demo``, ``quotation``, ``payment_collection`` (:data:`STAGE_MILESTONES`; a won
    deal's close also signs the contract); ``first_contact_made`` = the first outbound call,
    e-mail or meeting when the export has no explicit first-contact events; every event whose
    ``milestone`` is set.

    Returns
    -------
    pandas.DataFrame
        Columns ``deal_id``, ``milestone``, ``event_id`` (str), ``timestamp`` (datetime64[us, UTC]),
        ``pos`` (intp: the deal's row in ``data.unique_deals()``).
    """
    entries = stage_entries(data, playbook) if entries is None else entries
    deals = data.unique_deals()
    rows = np.arange(len(deals), dtype=np.intp)
    ev = _core(data)
    parts = [pd.DataFrame({"deal_id": deals["deal_id"], "milestone": "lead_assigned",
                           "timestamp": deals["created"], "event_id": None, "pos": rows})]
    won = (deals["outcome"] == "won").to_numpy()
    for name in ("deal_closed", "contract_signed"):
        parts.append(pd.DataFrame({"deal_id": deals["deal_id"][won], "milestone": name,
                                   "timestamp": deals["closed"][won], "event_id": None, "pos": rows[won]}))
    obs = entries[entries["observed"] & entries["entered"].notna()]
    for name, stage in STAGE_MILESTONES.items():
        e = obs[obs["stage"] == stage]
        parts.append(pd.DataFrame({"deal_id": e["deal_id"], "milestone": name,
                                   "timestamp": e["entered"], "event_id": None, "pos": e["pos"]}))
    linked = ev["pos"].to_numpy() >= 0
    explicit = ev.loc[ev["milestone"].notna().to_numpy() & linked,
                      ["deal_id", "milestone", "timestamp", "event_id", "pos"]]
    parts.append(explicit)
    if not (explicit["milestone"] == "first_contact_made").any():
        mask = (ev["kind"].isin(FOLLOW_UP_KINDS).to_numpy() & (ev["direction"] != "inbound").to_numpy() & linked)
        contact = ev.loc[mask, ["deal_id", "timestamp", "event_id", "pos"]]
        first = contact.sort_values("timestamp", kind="stable").drop_duplicates("pos")
        parts.append(first.assign(milestone="first_contact_made"))
    out = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)  # no deals: empty
    out = out[out["timestamp"].notna()]
    out["timestamp"] = out["timestamp"].astype(_TS)
    out["pos"] = out["pos"].astype(np.intp)
    return out.reset_index(drop=True)


class _DueOracle:
    """Due times from the playbook calendar, called as rarely as the verdicts allow.

    Working days, calendar days and elapsed hours come from :meth:`BusinessCalendar.add_many`, once
    per distinct local start date. Business hours go through :meth:`BusinessCalendar.add`, bucketed:
    their due time grows with the start (a start outside business hours counts from the next
    opening), so for all starts inside one bucket of UTC time ``[b, b + w)`` the due time lies
    between ``add(b)`` and ``add(b + w)``. A target at or before the first bound is on time and one
    after the second is late for every start in the bucket; only targets between the bounds need the
    exact ``add(start)``. (Working days are not monotone this way: a Sunday-evening start counts from
    Monday's opening, a Monday 01:00 start keeps its wall time.) A start whose working days the
    calendar does not know (:class:`CalendarRangeError`) gets no verdict.
    """

    #: widths of the start buckets, in hours, wide to narrow; each narrower one sees only the starts
    #: the wider ones could not settle
    BUCKET_HOURS = (24, 4, 1)

    def __init__(self, cal: BusinessCalendar, duration: Duration, memo: dict | None = None):
        self.cal, self.duration = cal, duration
        self.memo = {} if memo is None else memo  # shared by SLAs with the same limit

    def due_us(self, start_us: int) -> int | None:
        """Return the due time of a start (both UTC microseconds); None outside the calendar's years."""
        key = (self.duration, start_us)
        if key not in self.memo:
            start = _EPOCH + timedelta(microseconds=start_us)
            try:
                self.memo[key] = (self.cal.add(start, self.duration) - _EPOCH) // _MICROSECOND
            except CalendarRangeError:
                self.memo[key] = None
        return self.memo[key]

    def add(self, start: pd.Timestamp) -> pd.Timestamp:
        """Return the due time of ``start`` in UTC; NaT when the calendar does not cover it."""
        due = self.due_us(start.value // 1000)
        return pd.NaT if due is None else pd.Timestamp(due, unit="us", tz="UTC")

    def late(self, starts: pd.Series, targets: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Return (``targets > add(starts)``, unknown) element-wise (UTC series without NaT).

        ``unknown`` marks starts whose due time falls outside the calendar's years. The upper bound
        of a bucket's due times is the lower bound of the next bucket (``add`` is monotone). Wide
        buckets settle most starts with few calls; what they leave open goes to narrower ones, and
        what those leave open gets its exact due time.
        """
        n = len(starts)
        tgt = _naive(targets).astype("int64")
        if self.duration.unit is not DurationUnit.BUSINESS_HOURS:
            due = self.cal.add_many(starts, self.duration)
            unknown = due.isna().to_numpy()
            return ~unknown & (tgt > _naive(due).astype("int64")), unknown
        start_us = _naive(starts).astype("int64")
        late = np.zeros(n, dtype=bool)
        todo = np.arange(n)
        for hours in self.BUCKET_HOURS:
            if not len(todo):
                break
            width = 3_600_000_000 * hours
            bucket = start_us[todo] // width
            probes = np.unique(np.concatenate([bucket, bucket + 1]))
            due = np.zeros(len(probes), dtype="int64")
            known = np.ones(len(probes), dtype=bool)
            for i, b in enumerate(probes.tolist()):
                d = self.due_us(b * width)
                if d is None:
                    known[i] = False
                else:
                    due[i] = d
            lo_i = np.searchsorted(probes, bucket)
            hi_i = np.searchsorted(probes, bucket + 1)
            sure = known[lo_i] & known[hi_i]
            t = tgt[todo]
            is_late = sure & (t > due[hi_i])
            late[todo[is_late]] = True
            todo = todo[~is_late & ~(sure & (t <= due[lo_i]))]
        unknown = np.zeros(n, dtype=bool)
        for i, s_us, t_us in zip(todo.tolist(), start_us[todo].tolist(), tgt[todo].tolist()):
            d = self.due_us(s_us)
            if d is None:
                unknown[i] = True
            else:
                late[i] = t_us > d
        return late & ~unknown, unknown


_ZH_UNITS = {"working_days": "个工作日", "calendar_days": "个自然日", "elapsed_hours": "小时",
             "business_hours": "个工作小时"}
_ZH_KINDS = {"stage_change": "阶段变更", "call": "电话", "email": "邮件", "meeting": "拜访", "task": "任务"}


def _fmt_local(ts: pd.Timestamp | None, tz: str) -> str:
    if ts is None or pd.isna(ts):
        return ""
    return ts.tz_convert(tz).strftime("%Y-%m-%d %H:%M")


def _num(v: Decimal | float) -> str:
    v = float(v)
    return f"{v:,.0f}" if abs(v - round(v)) < 1e-9 else f"{v:,.2f}"


def check_compliance(data: CrmData, playbook: Any, month: str | None = None,
                     as_of: Any = None, *, lang: str | None = None,
                     entries: pd.DataFrame | None = None) -> Compliance:
    """Check the export against the SOP's time limits, follow-up cadence and quote authority.

    * Every SLA of the playbook (``slas.yaml``: 24-hour e-mail reply and the 2-working-day first
      technical solution, seed:1.2.1; 3 working days to a proposal and 5 to delivery, seed:1.2.2;
      the satisfaction call 30 calendar days after the deal closes, seed:1.2.1; the company's
      first-contact and quotation limits). One instance per deal (per inbound e-mail for the
      reply): the first start event, answered by the first end event at or after it. It is a breach
      when the end comes after the due time (:meth:`BusinessCalendar.add`), or when nothing is
      recorded and the due time has passed by ``as_of``; the actual value is
      :meth:`BusinessCalendar.elapsed` in the SLA's unit.
    * Follow-up cadence (seed:3.1.2 for tier A; company setting for B and C): outbound calls,
      e-mails and meetings (duplicates left out) per deal and ISO week (Monday-Sunday, playbook
      time zone), for every full week the deal was open; a week belongs to the month of its
      Thursday.
    * Quote authority (seed:2.3.1): a ``quote_sent`` event whose amount or discount exceeds the
      quoting role's limit and that names no approver.

    A check is ``not_checkable`` (never "0 breaches") when the export lacks what it needs: no start
    events, no end events at all (the CRM does not record them), no tier, no approval field, a
    currency other than the playbook's.

    Parameters
    ----------
    data : CrmData
    playbook : Playbook
    month : str, optional
        ``YYYY-MM``: instances that start in the month (weeks whose Thursday is in it).
    as_of : datetime-like, optional
        The moment the export describes (UTC if naive); default: its latest timestamp.

    Returns
    -------
    Compliance

    Raises
    ------
    CalendarRangeError
        When a working-day limit reaches a year the playbook's calendar does not cover.
    AnalysisError
        When ``month`` is not ``YYYY-MM`` or ``as_of`` is not a date/time.
    """
    lang = lang or current_lang()
    tz = playbook.calendar.timezone
    cal = playbook.business_calendar()
    period = Period.of(month, tz)
    if as_of is None:
        as_of = data.as_of
    as_of = None if as_of is None else parse_instant(as_of, "as_of")
    entries = stage_entries(data, playbook) if entries is None else entries
    deals = data.unique_deals().set_index("deal_id")
    owner = deals["owner"]
    checks: list[dict[str, Any]] = []
    findings: list[pd.DataFrame] = []
    ms = milestones(data, playbook, entries)
    by_milestone = {m: g for m, g in ms.groupby("milestone", sort=False)}
    have = set(by_milestone)
    memo: dict = {}

    def check_row(cid: str, rule: str, clause: str, status: str, reason: str = "", instances: int = 0,
                  breaches: int = 0, pending: int = 0) -> None:
        checks.append(dict(check=cid, rule=rule, clause=clause, source=_clause_source(playbook, clause),
                           status=status, reason=reason, instances=instances, breaches=breaches,
                           pending=pending))

    ev = _core(data)
    for sla in playbook.slas:
        cid, rule = f"sla:{sla.id}", sla.name.get(lang)
        d = sla.duration
        unit_label = d.label(lang)
        if sla.start_event == "customer_email_received":
            inst = _email_instances(ev)
            if inst is None:
                check_row(cid, rule, sla.clause, "not_checkable",
                          t("导出数据没有标明收发方向的邮件记录。", "the export has no e-mails with a direction "
                            "(received / sent).", lang))
                continue
        else:
            if sla.start_event not in have:
                check_row(cid, rule, sla.clause, "not_checkable",
                          t(f"导出数据没有记录起点事件 {sla.start_event}。",
                            f"the export records no '{sla.start_event}' events.", lang))
                continue
            if sla.end_event not in have:
                check_row(cid, rule, sla.clause, "not_checkable",
                          t(f"导出数据没有记录终点事件 {sla.end_event}，无法区分“未做”和“未记录”。",
                            f"the export records no '{sla.end_event}' events at all, so 'not done' "
                            "cannot be told from 'not recorded'.", lang))
                continue
            starts = by_milestone[sla.start_event].sort_values("timestamp", kind="stable").drop_duplicates("pos")
            ends = by_milestone[sla.end_event]
            inst = _pair(starts, ends)
        inst = inst[period.contains(inst["start"])] if period.month else inst
        oracle = _DueOracle(cal, d, memo)
        has_end = inst["end"].notna().to_numpy()
        if as_of is None:
            target = inst["end"]
            considered = has_end
        else:
            target = inst["end"].fillna(as_of)
            considered = np.ones(len(inst), dtype=bool)
        late = np.zeros(len(inst), dtype=bool)
        unknown = np.zeros(len(inst), dtype=bool)
        idx = np.flatnonzero(considered)
        if len(idx):
            late[idx], unknown[idx] = oracle.late(inst["start"].iloc[idx].reset_index(drop=True),
                                                  target.iloc[idx].reset_index(drop=True))
        if len(inst) and unknown.all():
            years = cal.covered_years
            span = f"{inst['start'].min():%Y}-{inst['start'].max():%Y}"
            check_row(cid, rule, sla.clause, "not_checkable",
                      t(f"业务日历只覆盖 {years[0]}-{years[1]} 年，导出数据的日期在 {span}；请在 playbook 的 calendar.years 中加入这些年份。",
                        f"the business calendar covers {years[0]}-{years[1]} only and the export's dates "
                        f"are {span}; add those years to calendar.years in the playbook.", lang),
                      len(inst), 0, 0)
            continue
        pending = int((~has_end & ~late & ~unknown & considered).sum())
        bad = inst[late]
        reason = (t(f"{int(unknown.sum())} 个实例超出业务日历覆盖的年份，未检查。",
                    f"{int(unknown.sum())} instances fall outside the business calendar's years and were "
                    "not checked.", lang) if unknown.any() else "")
        check_row(cid, rule, sla.clause, "checked", reason, len(inst) - int(unknown.sum()), len(bad), pending)
        if len(bad):
            recs = []
            for r in bad.itertuples():
                due = oracle.add(r.start)
                end = r.end if pd.notna(r.end) else None
                measured_to = end if end is not None else as_of
                value = float(cal.elapsed(r.start.to_pydatetime(), measured_to.to_pydatetime(), d.unit))
                expected = t(f"{unit_label}内（{_fmt_local(due, tz)} 前）", f"within {unit_label} "
                             f"(by {_fmt_local(due, tz)})", lang)
                zh_unit = _ZH_UNITS[d.unit.value]
                en_unit = d.unit.value.replace("_", " ")
                actual = (t(f"{_num(value)}{zh_unit}（{_fmt_local(end, tz)}）",
                            f"{_num(value)} {en_unit} ({_fmt_local(end, tz)})", lang) if end is not None else
                          t(f"截至 {_fmt_local(as_of, tz)} 未记录（已过 {_num(value)}{zh_unit}）",
                            f"not recorded by {_fmt_local(as_of, tz)} ({_num(value)} {en_unit} elapsed)", lang))
                recs.append(dict(check=cid, rule=rule, deal_id=r.deal_id, owner=owner.get(r.deal_id),
                                 clause=sla.clause, source=_clause_source(playbook, sla.clause),
                                 expected=expected, actual=actual, limit=float(d.value), value=value,
                                 unit=d.unit.value, start=r.start, due=due, end=r.end, week=None,
                                 event_id=r.event_id))
            findings.append(pd.DataFrame(recs))
    findings.append(_cadence(data, playbook, period, as_of, lang, check_row))
    findings.append(_authority(data, playbook, period, lang, check_row))
    fnd = pd.concat([f for f in findings if f is not None and len(f)], ignore_index=True) if any(
        f is not None and len(f) for f in findings) else pd.DataFrame(columns=FINDING_COLUMNS)
    for c in FINDING_COLUMNS:
        if c not in fnd:
            fnd[c] = None
    fnd = fnd[FINDING_COLUMNS]
    for c in ("start", "due", "end"):
        fnd[c] = pd.to_datetime(fnd[c], utc=True).astype(_TS)
    for c in ("limit", "value"):
        fnd[c] = fnd[c].astype("float64")
    for c in ("check", "rule", "deal_id", "owner", "clause", "source", "expected", "actual", "unit",
              "week", "event_id"):
        fnd[c] = fnd[c].astype(object).where(fnd[c].notna(), None).astype("str")
    fnd = fnd.sort_values(["check", "deal_id", "start"], kind="stable").reset_index(drop=True)
    chk = pd.DataFrame(checks).set_index("check")
    for c in ("instances", "breaches", "pending"):  # a check that did not run counts nothing, not 0
        chk[c] = chk[c].astype("Int64").where(chk["status"] == "checked", pd.NA)
    return Compliance(chk, fnd, as_of)


def _pair(starts: pd.DataFrame, ends: pd.DataFrame) -> pd.DataFrame:
    """Pair each deal's start with the first end at or after it (``end`` NaT when none)."""
    s = starts[["pos", "deal_id", "timestamp"]].rename(columns={"timestamp": "start"})
    s = s.sort_values("start", kind="stable")
    e = ends[["pos", "timestamp", "event_id"]].rename(columns={"timestamp": "end"})
    e = e.assign(_key=e["end"]).sort_values("_key", kind="stable")
    out = pd.merge_asof(s, e, left_on="start", right_on="_key", by="pos", direction="forward")
    return out.drop(columns=["_key", "pos"]).reset_index(drop=True)


def _email_instances(ev: pd.DataFrame) -> pd.DataFrame | None:
    """Pair each inbound e-mail with the first outbound one on the same deal (or account) after it."""
    is_mail = (ev["kind"] == "email").to_numpy() & ev["direction"].notna().to_numpy()
    mail = ev.loc[is_mail, ["deal_id", "account_id", "timestamp", "event_id", "direction", "pos"]]
    inbound_m = (mail["direction"] == "inbound").to_numpy()
    outbound_m = (mail["direction"] == "outbound").to_numpy()
    if not (inbound_m.any() and outbound_m.any()):
        return None
    pos = mail["pos"].to_numpy()
    acc = pd.factorize(mail["account_id"])[0]
    key = np.where(pos >= 0, pos, np.where(acc >= 0, pos.max() + 2 + acc, -1))
    mail = mail.assign(_key=key)[key >= 0]
    inbound = mail[mail["direction"] == "inbound"][["_key", "deal_id", "timestamp"]].rename(columns={"timestamp": "start"})
    out = mail[mail["direction"] == "outbound"][["_key", "timestamp", "event_id"]].rename(columns={"timestamp": "end"})
    inbound = inbound.sort_values("start", kind="stable")
    out = out.assign(_t=out["end"]).sort_values("_t", kind="stable")
    pairs = pd.merge_asof(inbound, out, left_on="start", right_on="_t", by="_key", direction="forward")
    return pairs.drop(columns=["_t", "_key"]).reset_index(drop=True)


def _cadence(data: CrmData, playbook: Any, period: Period, as_of: pd.Timestamp | None, lang: str,
             check_row: Any) -> pd.DataFrame | None:
    tiers = {tr.id: tr for tr in playbook.tiers}
    clause = playbook.tiers[0].cadence_clause if playbook.tiers else "follow-up-frequency"
    rule = t("按客户等级的每周跟进次数", "Weekly follow-ups per customer tier", lang)
    deals = data.unique_deals()
    tz = playbook.calendar.timezone
    ev = _core(data)
    is_contact = ev["kind"].isin(FOLLOW_UP_KINDS).to_numpy() & ~ev["synthetic"].to_numpy()
    if not data.has("deals.tier") or not deals["tier"].isin(tiers).any():
        check_row("cadence", rule, clause, "not_checkable",
                  t("导出数据没有客户等级（A/B/C）。", "the export has no customer tier (A/B/C).", lang))
        return None
    if not is_contact.any():
        check_row("cadence", rule, clause, "not_checkable",
                  t("导出数据没有电话、邮件或拜访记录。", "the export has no calls, e-mails or meetings.", lang))
        return None
    if as_of is None:
        check_row("cadence", rule, clause, "not_checkable", "no timestamp in the export")
        return None
    sel = np.flatnonzero((deals["tier"].isin(tiers) & deals["created"].notna()).to_numpy())
    d = deals.iloc[sel]
    minimum = d["tier"].map({k: v.min_weekly_follow_ups for k, v in tiers.items()}).astype("int64").to_numpy()
    sel, d, minimum = sel[minimum > 0], d[minimum > 0], minimum[minimum > 0]
    day = 86_400_000_000  # microseconds
    start = _local_us(d["created"], tz)
    stop = _local_us(d["closed"].fillna(as_of).clip(upper=as_of), tz)
    # days since 1970-01-01 (a Thursday): Monday of a day = day - (day + 3) % 7
    start_day = start // day
    start_monday = start_day - (start_day + 3) % 7
    first = np.where(start == start_monday * day, start_monday, start_monday + 7)
    stop_day = stop // day
    last_end = stop_day - (stop_day + 3) % 7          # the Monday (00:00) at or before ``stop``
    n_weeks = np.maximum((last_end - first) // 7, 0)
    rep = np.repeat(np.arange(len(d)), n_weeks)
    offs = np.arange(int(n_weeks.sum())) - np.repeat(np.cumsum(n_weeks) - n_weeks, n_weeks)
    w_pos = sel[rep]
    w_monday = first[rep] + 7 * offs
    w_min = minimum[rep]
    if period.month is not None:
        thursday = (w_monday + 3).astype("datetime64[D]")
        keep = np.datetime_as_string(thursday, unit="M") == period.month
        w_pos, w_monday, w_min = w_pos[keep], w_monday[keep], w_min[keep]
    # follow-ups: outbound (or undirected) contacts, duplicates left out, linked to the deal or its account
    ok = is_contact & (ev["direction"] != "inbound").to_numpy()
    pos = ev["pos"].to_numpy()
    f_pos = pos[ok & (pos >= 0)]
    stamps = ev.loc[ok & (pos >= 0), "timestamp"]
    via = ok & (pos < 0) & ev["account_id"].notna().to_numpy()
    if via.any() and deals["account"].notna().any():
        link = pd.DataFrame({"account_id": deals["account"], "_pos": np.arange(len(deals))}).dropna()
        extra = ev.loc[via, ["account_id", "timestamp"]].merge(link, on="account_id")
        f_pos = np.concatenate([f_pos, extra["_pos"].to_numpy()])
        stamps = pd.concat([stamps, extra["timestamp"]], ignore_index=True)
    local = _local_us(stamps, tz) // day
    f_monday = local - (local + 3) % 7
    span = 1 << 32
    f_key = f_pos.astype("int64") * span + f_monday
    keys, counts = np.unique(f_key, return_counts=True)
    w_key = w_pos.astype("int64") * span + w_monday
    w_count = np.zeros(len(w_key), dtype="int64")
    if len(keys):
        at = np.minimum(np.searchsorted(keys, w_key), len(keys) - 1)
        hit = keys[at] == w_key
        w_count[hit] = counts[at[hit]]
    weeks = pd.DataFrame({
        "deal_id": deals["deal_id"].to_numpy()[w_pos],
        "monday": w_monday.astype("datetime64[D]").astype("datetime64[us]"),
        "minimum": w_min.astype("int64"),
        "count": w_count.astype("int64"),
    })
    bad = weeks[weeks["count"] < weeks["minimum"]]
    check_row("cadence", rule, clause, "checked", "", len(weeks), len(bad), 0)
    if bad.empty:
        return None
    tier = deals.set_index("deal_id")["tier"]
    iso = bad["monday"].dt.isocalendar()
    week = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    sunday = bad["monday"] + pd.Timedelta(days=6)
    rng = bad["monday"].dt.strftime("%m-%d") + "–" + sunday.dt.strftime("%m-%d")
    cl = bad["deal_id"].map(lambda x: tiers[tier[x]].cadence_clause)
    start = bad["monday"].dt.tz_localize(tz).dt.tz_convert("UTC")
    out = pd.DataFrame({
        "check": "cadence", "rule": rule, "deal_id": bad["deal_id"].to_numpy(),
        "owner": bad["deal_id"].map(deals.set_index("deal_id")["owner"]).to_numpy(),
        "clause": cl.to_numpy(), "source": cl.map(lambda x: _clause_source(playbook, x)).to_numpy(),
        "expected": [t(f"{tier[i]}类客户每周至少 {m} 次跟进（{w}，{r}）",
                       f"at least {m} follow-ups for a tier-{tier[i]} customer in {w} ({r})", lang)
                     for i, m, w, r in zip(bad["deal_id"], bad["minimum"], week, rng)],
        "actual": [t(f"{n} 次", f"{n} follow-up{'s' if n != 1 else ''}", lang) for n in bad["count"]],
        "limit": bad["minimum"].astype("float64").to_numpy(), "value": bad["count"].astype("float64").to_numpy(),
        "unit": "follow_ups_per_week", "start": start.to_numpy(),
        "due": (start + pd.Timedelta(days=7)).to_numpy(), "end": pd.NaT, "week": week.to_numpy(),
        "event_id": None})
    return out


def _authority(data: CrmData, playbook: Any, period: Period, lang: str, check_row: Any) -> pd.DataFrame | None:
    clause = playbook.authority[0].clause if playbook.authority else "quote-limits"
    rule = t("超出权限的报价须经审批", "Quotes above the role's authority need approval", lang)
    ev = _core(data)
    quotes = ev[(ev["milestone"] == "quote_sent").to_numpy()]
    currency = data.mapping.spec.source.currency
    if quotes.empty or quotes["amount"].isna().all():
        check_row("authority", rule, clause, "not_checkable",
                  t("导出数据没有带金额的报价记录。", "the export has no quotes with an amount.", lang))
        return None
    if not data.has("events.approved_by"):
        check_row("authority", rule, clause, "not_checkable",
                  t("导出数据没有审批人字段。", "the export has no approval field.", lang))
        return None
    if currency != playbook.sop.currency:
        check_row("authority", rule, clause, "not_checkable",
                  t(f"报价币种为 {currency or '未声明'}，权限金额以 {playbook.sop.currency} 计。",
                    f"quotes are in {currency or 'an undeclared currency'}, the authority limits in "
                    f"{playbook.sop.currency}.", lang))
        return None
    q = quotes[period.contains(quotes["timestamp"])] if period.month else quotes
    q = q[q["amount"].notna()]
    roles = data.owners.set_index("owner")["role"] if len(data.owners) else pd.Series(dtype=str)
    deal_role = data.unique_deals()["role"].to_numpy(dtype=object)
    role = q["actor"].map(roles).to_numpy(dtype=object)
    qpos = q["pos"].to_numpy()
    from_deal = np.where(qpos >= 0, deal_role[np.maximum(qpos, 0)], None) if len(deal_role) else np.full(len(q), None)
    role = np.where(pd.isna(role), from_deal, role)
    if data.mapping.spec.source.default_role:
        role = np.where(pd.isna(role), data.mapping.spec.source.default_role, role)
    if pd.isna(role).all():
        check_row("authority", rule, clause, "not_checkable",
                  t("导出数据没有说明报价人的岗位。", "the export does not say which role quoted.", lang))
        return None
    limits = {a.role: a for a in playbook.authority}
    inf = float("inf")
    role_code, role_u = pd.factorize(pd.Series(role, dtype=object))  # a missing role gets code -1
    per_role = [limits.get(r) for r in role_u] + [None]  # code -1 takes the final None: unknown
    max_amount = np.array([inf if a is None or a.max_quote_amount is None else float(a.max_quote_amount)
                           for a in per_role])[role_code]
    max_disc = np.array([inf if a is None or a.max_discount is None else float(a.max_discount)
                         for a in per_role])[role_code]
    known = np.array([a is not None for a in per_role], dtype=bool)[role_code]
    amount = q["amount"].to_numpy(dtype="float64")
    disc = np.nan_to_num(q["discount"].to_numpy(dtype="float64"), nan=0.0)
    approved = q["approved_by"].fillna("").str.strip().ne("").to_numpy()
    over = known & ((amount > max_amount) | (disc > max_disc))
    recs = []
    for i in np.flatnonzero(over & ~approved):  # few: the exact chain (Decimal) names the approver
        r = q.iloc[i]
        rl = role[i]
        amt = Decimal(str(r["amount"]))
        dsc = Decimal(str(r["discount"])) if pd.notna(r["discount"]) else Decimal(0)
        try:
            chain = playbook.approval_chain(rl, amt, dsc)
        except ValueError:
            chain = [limits[rl], limits[rl]]
        if len(chain) == 1:
            continue
        lim = limits[rl]
        need = chain[1].role
        expected = t(
            f"{rl} 报价上限 {_num(lim.max_quote_amount or 0)} {playbook.sop.currency}、折扣上限 "
            f"{float(lim.max_discount or 0):.0%}；超出须由 {need} 审批",
            f"{rl} may quote up to {_num(lim.max_quote_amount or 0)} {playbook.sop.currency} at up to "
            f"{float(lim.max_discount or 0):.0%} off; above that, approval by {need}", lang)
        actual = t(f"{_num(amt)} {playbook.sop.currency}，折扣 {float(dsc):.0%}，无审批记录",
                   f"{_num(amt)} {playbook.sop.currency} at {float(dsc):.0%} off, no approver recorded", lang)
        recs.append(dict(check="authority", rule=rule, deal_id=r["deal_id"], owner=r["actor"], clause=lim.clause,
                         source=_clause_source(playbook, lim.clause), expected=expected, actual=actual,
                         limit=float(lim.max_quote_amount or 0), value=float(amt),
                         unit=playbook.sop.currency, start=r["timestamp"], due=pd.NaT, end=pd.NaT,
                         week=None, event_id=r["event_id"]))
    unknown_role = int((~known).sum())
    reason = t(f"{unknown_role} 条报价的岗位不在权限表中。", f"{unknown_role} quotes by roles without a "
               "limit in the playbook were skipped.", lang) if unknown_role else ""
    check_row("authority", rule, clause, "checked", reason, len(q) - unknown_role, len(recs), 0)
    return pd.DataFrame(recs) if recs else None


# ----------------------------------------------------------------------------------- case study


@dataclass(frozen=True)
class CaseStudy:
    """One deal against the SOP, for the monthly meeting (seed:3.3.2).

    ``deal``: the deal's row. ``timeline``: its events in time order, columns ``timestamp``
    (datetime64[us, UTC]), ``local_time`` (str, playbook zone), ``kind``, ``stage`` (playbook stage
    in force), ``what`` (str), ``deviation`` (str, empty when none). ``stages``: index playbook
    stage id; columns ``name``, ``entered`` (datetime64[us, UTC]), ``observed`` (bool),
    ``exit_criteria`` (str). ``deviations``: the deal's compliance findings plus ``clause_title``
    and ``clause_text`` (the clause quoted). ``prompts``: discussion questions. ``checked``: how
    many SOP checks the export supported (0: an empty ``deviations`` says nothing).
    """

    deal_id: str
    deal: pd.Series
    timeline: pd.DataFrame
    stages: pd.DataFrame
    deviations: pd.DataFrame
    prompts: list[str]
    checked: int = 0


def case_study(data: CrmData, playbook: Any, deal_id: str, compliance: Compliance | None = None,
               *, lang: str | None = None) -> CaseStudy:
    """Build the timeline of one deal against the SOP stages, with each deviation and its clause.

    Raises
    ------
    AnalysisError
        When ``deal_id`` is not in the export.
    """
    lang = lang or current_lang()
    tz = playbook.calendar.timezone
    deals = data.deals.drop_duplicates("deal_id").set_index("deal_id")
    if deal_id not in deals.index:
        raise AnalysisError(f"deal {deal_id!r} is not in the export")
    deal = deals.loc[deal_id]
    compliance = compliance or check_compliance(data, playbook, lang=lang)
    ev = data.events[(data.events["deal_id"] == deal_id)
                     | (data.events["deal_id"].isna() & pd.notna(deal["account"])
                        & (data.events["account_id"] == deal["account"]))]
    ev = ev.sort_values("timestamp", kind="stable")
    names = {s.id: s.name.get(lang) for s in playbook.stages}
    names.update({"won": t("赢单", "won", lang), "lost": t("丢单", "lost", lang)})
    dev = compliance.for_deal(deal_id).copy()

    def clause_text(cid: str, part: str) -> str:
        try:
            c = playbook.clause(cid)
        except KeyError:
            return ""
        return (c.title if part == "title" else c.text).get(lang)

    dev["clause_title"] = dev["clause"].map(lambda c: clause_text(c, "title"))
    dev["clause_text"] = dev["clause"].map(lambda c: clause_text(c, "text"))
    # stage in force at each event
    sc = ev[ev["kind"] == "stage_change"]
    current = None
    stages_at = []
    for r in ev.itertuples():
        if r.kind == "stage_change" and isinstance(r.stage, str):
            current = r.stage
        stages_at.append(names.get(current, current or ""))
    flagged = dict(zip(dev["event_id"], dev["rule"] + ": " + dev["actual"]))

    def what(r: Any) -> str:
        if r.kind == "stage_change":
            label = names.get(r.stage, r.stage_raw if isinstance(r.stage_raw, str) else "?")
            return t(f"进入阶段：{label}", f"stage: {label}", lang)
        parts = [t(_ZH_KINDS.get(str(r.kind), str(r.kind)), str(r.kind), lang)]
        if isinstance(r.direction, str):
            parts.append(t({"inbound": "（客户发起）", "outbound": "（我方发起）"}[r.direction],
                           f"({r.direction})", lang))
        if isinstance(r.milestone, str):
            parts.append(f"[{r.milestone}]")
        if isinstance(r.subject, str):
            parts.append(r.subject)
        if pd.notna(r.amount):
            parts.append(f"{_num(r.amount)}")
        return " ".join(parts)

    timeline = pd.DataFrame({
        "timestamp": ev["timestamp"].to_numpy(),
        "local_time": [_fmt_local(x, tz) for x in ev["timestamp"]],
        "kind": ev["kind"].astype(str).to_numpy(),
        "stage": stages_at,
        "what": [what(r) for r in ev.itertuples()],
        "deviation": [flagged.get(e, "") for e in ev["event_id"]],
        "event_id": ev["event_id"].to_numpy(),
    })
    timeline["timestamp"] = pd.to_datetime(timeline["timestamp"], utc=True).astype(_TS)
    ent = stage_entries(data, playbook)
    ent = ent[ent["deal_id"] == deal_id].set_index("stage")
    stages = pd.DataFrame({
        "name": [s.name.get(lang) for s in playbook.stages],
        "entered": [ent["entered"].get(s.id, pd.NaT) for s in playbook.stages],
        "observed": [bool(ent["observed"].get(s.id, False)) for s in playbook.stages],
        "exit_criteria": ["; ".join(c.get(lang) for c in s.exit_criteria) for s in playbook.stages],
    }, index=pd.Index([s.id for s in playbook.stages], name="stage"))
    stages["entered"] = pd.to_datetime(stages["entered"], utc=True).astype(_TS)
    del sc
    return CaseStudy(deal_id, deal, timeline, stages, dev.reset_index(drop=True),
                     discussion_prompts(deal, dev, stages, lang, checked=compliance.checked),
                     compliance.checked)


def discussion_prompts(deal: pd.Series, deviations: pd.DataFrame, stages: pd.DataFrame,
                       lang: str | None = None, checked: int = 1) -> list[str]:
    """Return questions for the monthly meeting about one deal (seed:3.3.2).

    ``checked`` is the number of SOP checks the export supported; with none, the prompt asks what
    the CRM should record instead of suggesting the deal kept the SOP.
    """
    lang = lang or current_lang()
    out = []
    reached = stages[stages["entered"].notna() | stages["observed"]]
    last = reached["name"].iloc[-1] if len(reached) else None
    if deal["outcome"] == "won":
        out.append(t("这个单子赢在哪里？哪些做法值得写进SOP或案例库？",
                     "What won this deal? Which of its practices belong in the SOP or the case library?", lang))
    elif deal["outcome"] == "lost":
        out.append(t(f"商机在「{last}」阶段之后丢失：该阶段的退出标准是否达到？客户的顾虑是什么？",
                     f"The deal was lost after '{last}': were that stage's exit criteria met? What was the "
                     "customer's concern?", lang))
    else:
        out.append(t(f"商机目前在「{last}」阶段：推进到下一阶段需要满足哪些退出标准？",
                     f"The deal is at '{last}': which exit criteria must be met to move on?", lang))
    for r in deviations.itertuples():
        out.append(t(f"{r.rule}：SOP要求 {r.expected}，实际 {r.actual}。原因是什么？条款「{r.clause_title}」需要调整，还是执行需要改进？",
                     f"{r.rule}: the SOP expects {r.expected}; actual {r.actual}. Why? Does the clause "
                     f"'{r.clause_title}' need changing, or its execution?", lang))
    if deviations.empty and not checked:
        out.append(t("这份导出无法检查SOP的执行：CRM需要记录哪些事件（邮件、电话、报价、审批），才能复盘这个商机？",
                     "This export cannot show whether the SOP was kept: which events (e-mails, calls, quotes, "
                     "approvals) must the CRM record to review this deal?", lang))
    elif deviations.empty:
        out.append(t("没有发现偏离SOP的记录：数据是否完整记录了每一步？",
                     "No deviation from the SOP was found: does the CRM record every step of this deal?", lang))
    out.append(t("基于这个案例，下个月的SOP或培训要改什么？", "What should change in the SOP or the training "
                 "next month because of this case?", lang))
    return out


# ----------------------------------------------------------------------------------- review


@dataclass(frozen=True)
class Review:
    """Everything the monthly review shows, computed once (see :func:`review`)."""

    month: str | None
    source: str
    kpis: pd.DataFrame
    stage_counts: dict[str, int]
    funnel: pd.DataFrame
    bottleneck: Bottleneck
    cycle_days: pd.Series
    by: dict[str, pd.DataFrame]
    trend: pd.DataFrame
    compliance: Compliance
    quality: QualityReport
    problems: tuple
    lang: str


def review(data: CrmData, playbook: Any, month: str | None = None, as_of: Any = None, *,
           lang: str | None = None) -> Review:
    """Compute the whole monthly review of an export (KPIs, funnel, bottleneck, compliance, quality).

    Parameters
    ----------
    data : CrmData
    playbook : Playbook
    month : str, optional
        ``YYYY-MM`` in the playbook's time zone; None for the whole export.
    as_of : datetime-like, optional
        See :func:`check_compliance`.

    Returns
    -------
    Review

    Raises
    ------
    AnalysisError
        When ``month`` is malformed.
    """
    lang = lang or current_lang()
    Period.of(month, playbook.calendar.timezone)  # validate early
    entries = stage_entries(data, playbook)
    comp = check_compliance(data, playbook, month, as_of, lang=lang, entries=entries)
    fun = funnel(data, playbook, month, lang=lang, entries=entries)
    by = {g: breakdown(data, playbook, g, month, comp if g == "owner" else None)
          for g in GROUPS if data.deals[g].notna().any()}
    return Review(month, data.mapping.id, kpis(data, playbook, month, lang=lang, entries=entries),
                  stage_counts(data, playbook, month), fun, find_bottleneck(fun, lang=lang),
                  cycle_times(data, playbook, month), by,
                  monthly_trend(data, playbook, comp if month is None else None), comp,
                  quality_report(data, playbook, lang), data.problems, lang)


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp,)):
        return None if pd.isna(v) else v.isoformat()
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if v is pd.NaT or v is pd.NA:
        return None
    return v


def _records(df: pd.DataFrame, index: str | None = None) -> list[dict[str, Any]]:
    frame = df.reset_index() if index else df
    return [{k: _jsonable(v) for k, v in row.items()} for row in frame.to_dict("records")]


def review_json(rv: Review) -> dict[str, Any]:
    """Return the review as JSON-ready data: KPIs (fractions 0-1), cycle days, stage counts, findings.

    Keys: ``source``, ``month``, ``kpis`` (``win_rate`` etc. as fractions, ``sales_cycle_days``
    with ``mean``, ``median`` and ``count``, ``stage_counts``), ``kpi_details``, ``funnel``,
    ``bottleneck``, ``compliance`` (``checks`` and ``findings``), ``data_quality``, ``problems``.
    """
    k = rv.kpis
    val = lambda kid: _jsonable(k.at[kid, "value"]) if kid in k.index else None  # noqa: E731
    b = rv.bottleneck
    return {
        "source": rv.source,
        "month": rv.month,
        "kpis": {
            "lead_conversion_rate": val("lead_conversion_rate"),
            "quote_acceptance_rate": val("quote_acceptance_rate"),
            "contract_signing_rate": val("contract_signing_rate"),
            "win_rate": val("win_rate"),
            "sales_cycle_days": {"mean": val("average_sales_cycle"), "median": val("median_sales_cycle"),
                                 "count": int(len(rv.cycle_days))},
            "stage_counts": rv.stage_counts,
        },
        "kpi_details": _records(k, "kpi"),
        "funnel": _records(rv.funnel, "stage"),
        "bottleneck": {"stage": b.stage, "conversion": _jsonable(b.conversion),
                       "ci": [_jsonable(x) for x in b.ci], "rest_conversion": _jsonable(b.rest_conversion),
                       "rest_ci": [_jsonable(x) for x in b.rest_ci], "confidence": b.confidence,
                       "reason": b.reason},
        "compliance": {"as_of": _jsonable(rv.compliance.as_of),
                       "checks": _records(rv.compliance.checks, "check"),
                       "findings": _records(rv.compliance.findings)},
        "data_quality": _records(rv.quality.summary, "check"),
        "problems": [str(p) for p in rv.problems],
    }
