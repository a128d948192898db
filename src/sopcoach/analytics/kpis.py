"""KPIs per period and per group: the playbook's formulas (``kpis.yaml``, seed:1.3.2), sales cycle, trends.

Rates are fractions 0-1; sales cycles are calendar days (wall-clock days in the playbook's time
zone, fractional). Groups are owner, team, region and product (:data:`GROUPS`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..crm.problems import ROW_KEYS, input_gap, unparsed
from ..crm.reading import CrmData, positions_in
from ..errors import AnalysisError
from ..i18n import current_lang, t
from .compliance import Compliance
from .funnel import _wilson_arrays, find_bottleneck, wilson_interval
from .inputs import amount_gap, closed_gap, created_gap, funnel_gap, mark, outcome_gap, stage_time_gap
from .period import Period, _cohort, _cohort_rows, _month_text
from .stages import _core, _observed_beyond, _stage_ids, stage_entries

__all__ = ["breakdown", "cycle_times", "kpis", "monthly_trend", "open_at_end", "previous_month_values", "stage_conversion_by"]


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
    * ``win_rate`` = won / (won + lost), deals closed in the period (for the whole export: every
      won and lost deal by its outcome, so close dates are needed only for a month).
    * ``average_sales_cycle`` = mean calendar days from lead assignment to contract signature over
      the deals won in the period; ``median_sales_cycle`` the median of the same values.

    A KPI the export cannot support (a stage it never records, no closed deal) is
    ``not_computable`` with the reason; its value is NaN, never 0. A rate is 0-100% by
    construction: a numerator above its denominator (more needs confirmed than leads assigned in
    the month) is a data problem, ``not_computable`` with both counts in the reason, never 103.3%. So is a KPI whose inputs are
    absent from the export (a leads file without its conversion column) or failed to parse (any
    unreadable close date of a won or lost deal makes a month's win rate not computable: it is
    never counted on the readable rows only); the reason names the column, the count of unreadable
    values, one example with its line, and the fix (:mod:`sopcoach.analytics.inputs`).

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
        if ok and den > 0 and num > den:  # a rate is 0-100% by construction: more is a data problem
            zh_example, en_example = _FLOW_EXAMPLES.get(kid, ("", ""))
            rows[kid] = dict(value=math.nan, numerator=num, denominator=den, ci_low=math.nan, ci_high=math.nan,
                             status="not_computable", reason=t(
                                 f"数据问题：分子（{num:,.0f}）大于分母（{den:,.0f}），比率会超过 100%。"
                                 + (f"分子和分母按各自发生的月份统计（{zh_example}）；" if zh_example else "")
                                 + "请查看全部月份，或检查导出是否漏记了分母的记录。",
                                 f"data problem: the numerator ({num:,.0f}) exceeds the denominator ({den:,.0f}), "
                                 "so the rate would pass 100%. "
                                 + (f"They are counted in the month each happened ({en_example}); "
                                    if en_example else "")
                                 + "look at all months, or check the export for records of the denominator it "
                                 "misses.", lang))
        elif ok and den > 0:
            lo, hi = wilson_interval(num, den)
            rows[kid] = dict(value=num / den, numerator=num, denominator=den, ci_low=lo, ci_high=hi,
                             status="ok", reason="")
        else:
            why = reason if not ok else t("本期分母为 0。", "the denominator is 0 in this period.", lang)
            rows[kid] = dict(value=math.nan, numerator=num if ok else math.nan,
                             denominator=den if ok else math.nan, ci_low=math.nan, ci_high=math.nan,
                             status="not_computable", reason=why)

    def never(stage: str) -> str:
        name = next(s.name.get(lang) for s in playbook.stages if s.id == stage)
        return t(f"导出数据从未记录「{name}」阶段（或其后的阶段），只能从赢单推断。（给维护导入映射的同事："
                 f"在映射文件的 stages 下，把 CRM 中相当于「{name}」的阶段映射到 {stage}。）",
                 f"the export never records the '{name}' stage (or a later one) except through won deals. "
                 f"(For whoever maintains the import mapping: under stages in the mapping file, map the CRM stage "
                 f"that corresponds to '{name}' onto {stage}.)", lang)

    def entry_gap(stage: str) -> str | None:
        """Per month: the won deals dated into ``stage`` only by their close date, which is unreadable."""
        if period.month is None:
            return None
        e = entries[(entries["stage"] == stage).to_numpy() & entries["entered"].isna().to_numpy()]
        rows = deals.iloc[e["pos"].to_numpy()]
        return input_gap(data, "deals.closed", rows[rows["outcome"] == "won"], "赢单的关闭日期",
                         "close dates of won deals", lang)

    def blocked(ok: bool, ok_m: bool, stage: str, *gaps: str | None) -> str:
        """Why a stage-based rate is not computable ("" when it is): unreadable stage times first (they can
        hide a stage), then what the export never records, then the other unreadable inputs."""
        if stages_why:
            return stages_why
        if not ok:
            return never(stage)
        if not ok_m:
            return undated(stage)
        return next((g for g in gaps if g), "")

    created = int(period.contains(deals["created"]).sum())
    # what the KPIs need: readable creation and close dates, stage-change times
    created_why = created_gap(data, lang)
    # the whole export counts every won and lost deal by its outcome; a month needs their close dates
    outcome_why = outcome_gap(data, lang)  # unmapped or blank stages, blank or conflicting deal ids
    closed_why = outcome_why or (closed_gap(data, lang) if period.month is not None else None)
    won_why = outcome_why or (closed_gap(data, lang, ("won",)) if period.month is not None else None)
    stages_why = stage_time_gap(data, lang)
    # lead conversion
    leads = data.leads
    leads_why = (input_gap(data, "leads.converted", leads, "线索的转化标记", "lead conversion flags", lang)
                 if len(leads) else None)
    if leads_why is None and len(leads) and period.month is not None:
        leads_why = input_gap(data, "leads.created", leads, "线索的创建日期", "lead creation dates", lang)
    if leads_why:
        rate("lead_conversion_rate", math.nan, math.nan, False, leads_why)
    elif len(leads):
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
        why = (blocked(ok, ok_m, "solution_demo", created_why, entry_gap("solution_demo"))
               if "solution_demo" in ids else "")
        rate("lead_conversion_rate", float(len(entered("solution_demo"))) if ok_m else math.nan,
             float(created), ok_m and not why, why)
    # quote acceptance
    ok = "contract_negotiation" in ids and _observed_beyond(entries, "quotation", ids)
    ok_m = ok and dated("quotation")
    core = _core(data)
    quotes = core[(core["milestone"] == "quote_sent").to_numpy()]
    sent = float(period.contains(quotes["timestamp"]).sum()) if len(quotes) else float(len(entered("quotation")))
    accepted = float(len(entered("contract_negotiation")))
    ev = data.events
    bad_quotes = unparsed(data, "events.timestamp", lambda: ev.loc[(ev["milestone"] == "quote_sent").to_numpy(), ROW_KEYS])
    quotes_why = bad_quotes.reason("报价发出时间", "quote-sent times", lang) if bad_quotes else None
    accept_why = entry_gap("contract_negotiation")
    why = blocked(ok, ok_m, "quotation", quotes_why, accept_why)
    rate("quote_acceptance_rate", accepted, sent, ok_m and not why, why)
    # contract signing
    in_period = period.contains(deals["closed"]) if period.month is not None else True
    won_in = deals[(deals["outcome"] == "won") & in_period]
    lost_in = deals[(deals["outcome"] == "lost") & in_period]
    ok = _observed_beyond(entries, "contract_negotiation", ids)
    ok_m = ok and dated("contract_negotiation")
    why = blocked(ok, ok_m, "contract_negotiation", won_why, accept_why)
    rate("contract_signing_rate", float(len(won_in)), accepted, ok_m and not why, why)
    # win rate
    rate("win_rate", float(len(won_in)), float(len(won_in) + len(lost_in)), not closed_why, closed_why or "")
    if not closed_why and len(won_in) + len(lost_in) == 0:
        rows["win_rate"]["reason"] = t("本期没有赢单或丢单。", "no deal was won or lost in this period.", lang)
    # cycle
    cyc = cycle_times(data, playbook, month)
    won_deals = deals[deals["outcome"] == "won"]
    cycle_why = outcome_why or closed_gap(data, lang, ("won",)) or created_gap(data, lang, won_deals)
    for kid, fn in (("average_sales_cycle", "mean"), ("median_sales_cycle", "median")):
        if cycle_why:
            rows[kid] = dict(value=math.nan, numerator=math.nan, denominator=math.nan, ci_low=math.nan,
                             ci_high=math.nan, status="not_computable", reason=cycle_why)
        elif len(cyc):
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
    """Count the deals per current stage (playbook ids, ``won``, ``lost``, ``unmapped``) in the cohort.

    Empty when a deal's stage or id is unmapped, blank or conflicting (:func:`~sopcoach.analytics.inputs.outcome_gap`
    says why): the counts are never taken over the mapped rows only.
    """
    if outcome_gap(data) is not None:  # never counted on the mapped rows only
        return {}
    cohort = _cohort(data, Period.of(month, playbook.calendar.timezone))
    counts = cohort["stage"].fillna("unmapped").value_counts()
    order = _stage_ids(playbook) + ["won", "lost", "unmapped"]
    return {s: int(counts[s]) for s in order if s in counts.index}


# ----------------------------------------------------------------------------------- groups


def open_at_end(deals: pd.DataFrame, period: Period) -> np.ndarray:
    """Return a boolean array over ``deals``: the pipeline at the end of ``period``.

    Open at a month's end: created by then and not closed by then (a deal without a creation date
    is left out, so is a won or lost deal closed on an unknown date); for the whole export
    (``period.month`` None), the deals still open.
    """
    outcome = deals["outcome"].to_numpy(dtype=object)
    if period.month is None:
        return np.asarray(outcome == "open")
    created, closed = deals["created"], deals["closed"]
    return (((created < period.end) & (closed.isna() | (closed >= period.end))).to_numpy()
            & ~((outcome != "open") & closed.isna().to_numpy()))


GROUPS = ("owner", "team", "region", "product")


def breakdown(data: CrmData, playbook: Any, by: str = "owner", month: str | None = None,
              compliance: Compliance | None = None, *, lang: str | None = None) -> pd.DataFrame:
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
        by ``won`` then ``created``, descending. Columns whose inputs are absent or unreadable
        (creation or close dates, deal outcomes, the amounts of won deals) are blank (NA), with the
        reason in ``attrs["not_computable"]`` (see :mod:`sopcoach.analytics.inputs`).

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

    open_m = open_at_end(deals, period)
    out = pd.DataFrame({
        "created": count(period.contains(deals["created"]).to_numpy()),
        "won": count(won_m), "lost": count(lost_m), "open": count(open_m),
    }, index=pd.Index(list(names), name=by, dtype="str"))
    n = (out["won"] + out["lost"]).to_numpy()
    out["win_rate"] = np.where(n > 0, out["won"] / np.maximum(n, 1), np.nan)
    out["ci_low"], out["ci_high"] = _wilson_arrays(out["won"].to_numpy(), n)
    cyc = cycle_times(data, playbook, month)
    cpos = positions_in(data.deal_index(), cyc.index)  # (the cycles' ids are Arrow strings, the deals' Python ones)
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
    out = out.sort_values(["won", "created"], ascending=False, kind="stable")
    return _blank_unreadable(out, data, lang, month=month)


#: the columns of :func:`breakdown` and :func:`monthly_trend` that need the close dates of won and lost deals
_NEED_CLOSED = ["won", "lost", "win_rate", "ci_low", "ci_high", "win_rate_change", "cycle_mean", "cycle_median",
                "amount_won"]


def _blank_unreadable(out: pd.DataFrame, data: CrmData, lang: str | None, month: str | None) -> pd.DataFrame:
    """Blank the columns of a per-group or per-month table whose dates are absent or unreadable (see :func:`mark`)."""
    outcome_why = outcome_gap(data, lang)
    created_why, closed_why = created_gap(data, lang), outcome_why or closed_gap(data, lang)
    amount_why = amount_gap(data, lang)
    cols = (["created", "cycle_mean", "cycle_median"] if created_why else []) + (_NEED_CLOSED if closed_why else [])
    cols += ["amount_won"] if amount_why else []
    if outcome_why or (month is not None and (created_why or closed_why)):
        cols.append("open")  # the pipeline at the month's end: created by then, not closed by then
    return mark(out, [outcome_why, created_why, closed_why, amount_why], dict.fromkeys(cols), lang)


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
    out = out[decided[:, :-1].sum(axis=1) > 0].sort_values("deals", ascending=False, kind="stable")
    return mark(out, [funnel_gap(data, month, lang)], list(out.columns), lang)


def previous_month_values(by_month: pd.Series) -> pd.Series:
    """Return, for each ``YYYY-MM`` of the index, the value of the calendar month before (NaN when it has no row).

    Never the previous row: a trend skips the months without data, and the month before 2026-02 is
    2026-01, not the 2024-02 an export may have as its previous row.

    >>> previous_month_values(pd.Series([0.5, 0.6, 0.7], index=["2024-02", "2026-02", "2026-03"])).tolist()
    [nan, nan, 0.6]
    """
    if by_month.empty:
        return by_month.astype("float64")
    before = (pd.PeriodIndex(by_month.index, freq="M") - 1).strftime("%Y-%m")
    return pd.Series(by_month.reindex(before).to_numpy(dtype="float64"), index=by_month.index)


def monthly_trend(data: CrmData, playbook: Any, compliance: Compliance | None = None, *,
                  lang: str | None = None) -> pd.DataFrame:
    """Return the month-over-month trend of the headline KPIs.

    Returns
    -------
    pandas.DataFrame
        Index ``month`` (str ``YYYY-MM`` in the playbook's time zone). Columns ``created``,
        ``won``, ``lost`` (int64); ``win_rate``, ``ci_low``, ``ci_high`` (float64 fractions);
        ``win_rate_change`` (float64, difference from the calendar month before in fraction points;
        NaN when that month has no row, i.e. no deal was created or closed in it, or no win rate);
        ``cycle_mean``, ``cycle_median`` (float64 calendar days); ``amount_won`` (float64);
        ``breaches`` (Int64, SOP findings by the month of their start, with ``compliance``;
        missing when no SOP rule could be checked). Columns whose inputs are absent or
        unreadable are blank (NA) with the reason in ``attrs["not_computable"]``.
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
    cyc_m = month(deals["closed"].iloc[positions_in(data.deal_index(), cyc.index)]) if len(cyc) else pd.Series(dtype=str)
    idx = sorted(set(created.index) | set(won.index) | set(lost.index))
    out = pd.DataFrame(index=pd.Index(idx, name="month"))
    for name, s in (("created", created), ("won", won), ("lost", lost)):
        out[name] = s.reindex(idx, fill_value=0).astype("int64")
    n = (out["won"] + out["lost"]).to_numpy()
    out["win_rate"] = np.where(n > 0, out["won"] / np.maximum(n, 1), np.nan)
    out["ci_low"], out["ci_high"] = _wilson_arrays(out["won"].to_numpy(), n)
    out["win_rate_change"] = out["win_rate"] - previous_month_values(out["win_rate"])
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
    return _blank_unreadable(out, data, lang, month=None)
