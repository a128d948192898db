"""The stage funnel and the bottleneck stage (seed:1.3.2, seed:4.2.2), with Wilson intervals.

Rates are fractions 0-1; :func:`wilson_interval` gives the confidence interval of every rate the
analysis reports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ..crm.reading import CrmData
from ..i18n import current_lang, t
from .inputs import funnel_gap, gap_of, mark
from .period import Period, _cohort_rows
from .stages import _stage_ids, stage_entries

__all__ = ["Bottleneck", "find_bottleneck", "funnel", "wilson_interval"]


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
        first stage and in no conversion). When stage-change times (or, for a month, the deals'
        creation dates) are unreadable, every figure is blank (NA) and ``attrs["not_computable"]``
        says why (see :mod:`sopcoach.analytics.inputs`).
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
    return mark(out, [funnel_gap(data, month, lang)], [c for c in out.columns if c not in ("name", "observed")], lang)


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


def _unplaced_losses(fun: pd.DataFrame, lang: str) -> str:
    """Why losses could not be placed at a stage: how many, and what the export needs ("" when all were)."""
    n = int(fun["lost_unknown"].sum()) if "lost_unknown" in fun else 0
    if not n:
        return ""
    return t(f"另有 {n} 个丢单在导出中没有丢单之前的阶段变更记录（在 Salesforce 中即 OpportunityHistory 里没有它们"
             "丢单前的阶段），因此无法归到某个阶段。（给维护导入映射的同事：阶段变更来自 events 表，kind: {value: "
             "stage_change}，带 stage 和 timestamp。）",
             f" {n} lost deals have no recorded stage before the loss: the export has no stage change for them before "
             "it (in Salesforce: no earlier stage in OpportunityHistory), so they cannot be placed at a stage. (For "
             "whoever maintains the import mapping: stage changes come from an events table with kind: {value: "
             "stage_change}, stage and timestamp.)", lang)


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
    nan2 = (math.nan, math.nan)
    if gap_of(fun):
        return Bottleneck(None, math.nan, nan2, math.nan, nan2, confidence, gap_of(fun))
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
                            "than two stages.", lang) + lossless + _unplaced_losses(fun, lang), compared)
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
