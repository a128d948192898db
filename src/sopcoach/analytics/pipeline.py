"""The pipeline report of a month: open pipeline by stage, weighted forecast, deal size, sales velocity, reps.

For the monthly review of the KPIs (seed:1.3.2): what was open at the month's end and in which
stage, what it is worth weighted by each deal's chance, the average won deal, the sales velocity,
each rep's figures against the playbook's targets (``kpis.yaml``), the lost reasons, and each
figure's change since the previous month. The win rate and the sales cycle are the KPIs of
:func:`~sopcoach.analytics.kpis.kpis`; a figure the export cannot support is not computable with
the reason (:mod:`sopcoach.analytics.inputs`), never 0.

Units: amounts in the export's currency (the mapping's ``source.currency``); rates fractions 0-1;
cycles calendar days in the playbook's time zone.
"""
from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..crm.problems import input_gap
from ..crm.reading import CrmData
from ..errors import AnalysisError
from ..i18n import current_lang, t
from ..labels import duration_text, money_text
from ..content.businesstime import DurationUnit
from ..errors import CalendarRangeError
from .inputs import amount_gap, closed_gap, gap_of, mark, outcome_gap, stage_time_gap
from .kpis import _wall_days, breakdown, kpis, open_at_end
from .period import Period, months_of
from .report import counted
from .stages import _core, stage_entries

__all__ = ["PipelineReport", "pipeline_json", "pipeline_lines", "pipeline_note", "pipeline_report", "shown_figures",
           "stage_stays", "time_in_stage"]

#: the label of the open deals whose stage at the month's end is not known
UNKNOWN_STAGE = "(unknown)"


@dataclass(frozen=True)
class PipelineReport:
    """The pipeline of one month (see :func:`pipeline_report`).

    ``stage_basis`` is ``history`` (stage at the month's end from the stage changes) or ``current``
    (the deals' current stage: the export records no stage change). ``by_stage``, ``reps`` and
    ``lost_reasons`` carry why (some of) their figures are not computable in
    ``attrs["not_computable"]`` (:func:`~sopcoach.analytics.inputs.gap_of`).
    """

    month: str
    previous_month: str
    currency: str | None
    stage_basis: str
    by_stage: pd.DataFrame
    figures: pd.DataFrame
    reps: pd.DataFrame
    lost_reasons: pd.DataFrame
    lost_reasons_gap: str
    probability_source: str
    lang: str
    #: the time deals spent in each stage they left in the month (:func:`time_in_stage`)
    time_in_stage: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    #: whether the export has data in the previous month (a deal created or closed in it); without,
    #: ``figures`` has no ``previous`` nor ``change`` (NaN), never a change from zero
    previous_has_data: bool = True


def _previous(month: str) -> str:
    return str(pd.Period(month, freq="M") - 1)


def _stage_at_end(data: CrmData, playbook: Any, period: Period, rows: np.ndarray) -> tuple[pd.Series, str]:
    """The playbook stage id of each deal in ``rows`` (of ``unique_deals()``) at the period's end, and the basis."""
    deals = data.unique_deals()
    entries = stage_entries(data, playbook)
    ids = [s.id for s in playbook.stages]
    if bool(entries["dated"].any()):
        e = entries[(entries["entered"] < period.end).to_numpy()]
        furthest = e.groupby("pos")["position"].max()
        pos = furthest.reindex(rows).fillna(0).astype("int64").to_numpy()  # created by then: at the first stage
        return pd.Series(np.array(ids, dtype=object)[pos], index=rows), "history"
    current = deals["stage"].to_numpy(dtype=object)[rows]
    stage = np.where(pd.Series(current).isin(ids).to_numpy(), current, UNKNOWN_STAGE)
    return pd.Series(stage, index=rows, dtype=object), "current"


def _probabilities(data: CrmData, playbook: Any, rows: np.ndarray, stage: pd.Series,
                   lang: str) -> tuple[np.ndarray, str, str]:
    """Each open deal's win probability (fraction 0-1), where it comes from, and why not computable ("")."""
    deals = data.unique_deals()
    if data.has("deals.probability"):
        why = input_gap(data, "deals.probability", deals.iloc[rows], "商机的赢单概率", "deal probabilities", lang)
        prob = deals["probability"].to_numpy(dtype="float64")[rows]
        missing = int(np.isnan(prob).sum())
        if not why and missing:
            why = t(f"{missing} 个未结商机没有赢单概率（导出的概率列为空）；请在 CRM 中补全后重新导出。",
                    f"{missing} open deals have no probability (blank in the export's probability column); "
                    "fill it in the CRM and export again.", lang)
        return prob, "mapping", why or ""
    given = {s.id: float(s.probability) for s in playbook.stages if s.probability is not None}
    need = sorted(set(stage) - {UNKNOWN_STAGE})
    lacking = [s for s in need if s not in given]
    if not given or lacking:
        names = {s.id: s.name.get(lang) for s in playbook.stages}
        which = "、".join(names[s] for s in lacking) if lang != "en" else ", ".join(names[s] for s in lacking)
        return np.full(len(rows), np.nan), "", t(
            f"导出没有商机的赢单概率，规程也没有为这些阶段（{which}）设定概率，无法计算加权预测。"
            "（给维护导入映射的同事：在商机表字段中加入 probability: {column: 概率列, percent: true}；"
            "或由培训负责人在 process.yaml 的阶段中写 probability（0-1）。）",
            f"the export has no deal probability column and the playbook sets no probability for the stages "
            f"({which}), so there is no weighted forecast. (For whoever maintains the import mapping: add "
            "probability: {column: <probability column>, percent: true} to the deals table's fields; or the "
            "trainer gives those stages a probability (0-1) in process.yaml.)", lang)
    unknown = int((stage == UNKNOWN_STAGE).sum())
    why = t(f"{unknown} 个未结商机在月末的阶段未知，无法按阶段概率加权。",
            f"the stage at the month's end of {unknown} open deals is not known, so they cannot be weighted "
            "by a stage probability.", lang) if unknown else ""
    return np.array([given.get(s, np.nan) for s in stage], dtype="float64"), "playbook", why


# ----------------------------------------------------------------------------------- time in stage


def stage_stays(data: CrmData, playbook: Any) -> pd.DataFrame:
    """Return every recorded stay of a deal in a playbook stage: from entering it to the next stage change.

    The stage changes are the export's stage history (the events of kind ``stage_change``, e.g.
    Salesforce's OpportunityHistory, or the dates of a mapping's ``stage_dates``; a deal without
    history gets one change at its close). Per deal, in time order, repeated changes into the same
    stage are one stay; a stay ends at the deal's next change into another stage (a later stage,
    an earlier one, won or lost). The last stay of a deal still open has no end and is left out.

    Returns
    -------
    pandas.DataFrame
        Columns ``deal_id`` (str), ``pos`` (intp, the deal's row in ``data.unique_deals()``),
        ``stage`` (str, playbook stage id), ``entered``, ``left`` (datetime64[us, UTC]). One row
        per finished stay, in deal then time order.
    """
    ids = [s.id for s in playbook.stages]
    key = ("stays", tuple(ids))
    if key not in data._cache:
        ev = _core(data)
        sc = ev.loc[(ev["kind"] == "stage_change").to_numpy() & ev["timestamp"].notna().to_numpy()
                    & ev["stage"].notna().to_numpy() & (ev["pos"] >= 0).to_numpy(), ["pos", "stage", "timestamp"]]
        sc = pd.DataFrame({"pos": sc["pos"].to_numpy(), "stage": sc["stage"].astype(str).to_numpy(),
                           "timestamp": sc["timestamp"].to_numpy()}).sort_values(["pos", "timestamp"], kind="stable")
        same_deal = sc["pos"].shift() == sc["pos"]
        sc = sc[~(same_deal & (sc["stage"] == sc["stage"].shift())).to_numpy()]  # one stay per run of a stage
        left = sc["timestamp"].shift(-1).where((sc["pos"].shift(-1) == sc["pos"]).to_numpy())
        stays = pd.DataFrame({"pos": sc["pos"].to_numpy().astype(np.intp), "stage": sc["stage"].to_numpy(),
                              "entered": sc["timestamp"].to_numpy(), "left": left.to_numpy()})
        stays = stays[stays["stage"].isin(ids).to_numpy() & stays["left"].notna().to_numpy()].reset_index(drop=True)
        stays.insert(0, "deal_id", data.unique_deals()["deal_id"].to_numpy(dtype=object)[stays["pos"].to_numpy()])
        for c in ("entered", "left"):
            stays[c] = pd.to_datetime(stays[c], utc=True).astype("datetime64[us, UTC]")
        data._cache[key] = stays
    return data._cache[key].copy()


#: the duration columns of :func:`time_in_stage`
TIME_IN_STAGE_COLUMNS = ["deals", "working_days_median", "working_days_mean", "calendar_days_median",
                         "calendar_days_mean", "hours_median", "working_days_median_change"]


def _no_history(lang: str) -> str:
    return t("导出没有阶段变更历史（没有记录商机何时进入各阶段），无法计算各阶段停留时间。请在导出中加上阶段变更历史"
             "（如 Salesforce 的 OpportunityHistory）或每个阶段的进入日期。（给维护导入映射的同事：加一张事件表，"
             "字段 kind: {value: stage_change}、stage 和 timestamp；或在商机表的 stage_dates 中为每个阶段写上进入日期的列。）",
             "the export has no stage history (it does not record when deals entered their stages), so the "
             "time in each stage is not known. Add the stage history (like Salesforce's OpportunityHistory) or "
             "each stage's entry date to the export. (For whoever maintains the import mapping: an events table "
             "of stage changes, kind: {value: stage_change} with stage and timestamp; or the deals table's "
             "stage_dates, per stage the column of the date a deal entered it.)", lang)


def _stage_durations(data: CrmData, playbook: Any, period: Period) -> tuple[pd.DataFrame, str]:
    """Per (deal, stage) left in ``period``: working days, calendar days, hours; why working days are not known."""
    stays = stage_stays(data, playbook)
    stays = stays[period.contains(stays["left"]).to_numpy()]
    tz = playbook.calendar.timezone
    cal = playbook.business_calendar()
    why = ""
    try:
        working = [float(cal.elapsed(a.to_pydatetime(), b.to_pydatetime(), DurationUnit.WORKING_DAYS))
                   for a, b in zip(stays["entered"], stays["left"])]
    except CalendarRangeError as exc:
        working = [math.nan] * len(stays)
        why = str(exc)
    per = pd.DataFrame({"pos": stays["pos"].to_numpy(), "stage": stays["stage"].to_numpy(),
                        "working_days": np.asarray(working, dtype="float64"),
                        "calendar_days": _wall_days(stays["entered"], stays["left"], tz).to_numpy(dtype="float64"),
                        "hours": ((stays["left"] - stays["entered"]) / pd.Timedelta(hours=1)).to_numpy(dtype="float64")})
    return per.groupby(["pos", "stage"], as_index=False).sum(min_count=1), why


def time_in_stage(data: CrmData, playbook: Any, month: str, lang: str | None = None) -> pd.DataFrame:
    """Return how long deals stayed in each playbook stage they left in ``month`` (seed:1.3.2).

    From the stage history (:func:`stage_stays`): a deal's time in a stage is the sum of its stays
    there that ended in the month (it left the stage for another one, won or lost). Working days
    are the playbook's business calendar (:meth:`~sopcoach.content.businesstime.BusinessCalendar.elapsed`,
    fractional, weekends and holidays excluded); calendar days are wall-clock days in the
    playbook's time zone; hours are real hours. Parameters as :func:`pipeline_report`.

    Returns
    -------
    pandas.DataFrame
        Index ``stage`` (playbook stage id, every stage in order). Columns ``name`` (str, the stage's
        name), ``deals`` (int64, deals that left the stage in the month), ``working_days_median``,
        ``working_days_mean``, ``calendar_days_median``, ``calendar_days_mean``, ``hours_median``
        (float64, per deal; NaN when no deal left the stage), ``working_days_median_change``
        (float64, change of the median since the previous month). When the export has no stage
        history, or its stage times are unreadable, or a stay lies outside the business calendar's
        years, the figures that need it are NaN and ``attrs["not_computable"]`` says why and how
        to supply it.

    Raises
    ------
    AnalysisError
        When ``month`` is not ``YYYY-MM``.
    """
    lang = lang or current_lang()
    tz = playbook.calendar.timezone
    period = Period.of(month, tz)
    ids = [s.id for s in playbook.stages]
    names = [s.name.get(lang) for s in playbook.stages]
    now, why_now = _stage_durations(data, playbook, period)
    before, why_before = _stage_durations(data, playbook, Period.of(_previous(str(period.month)), tz))
    g = now.groupby("stage")
    out = pd.DataFrame({"name": names, "deals": g.size().reindex(ids, fill_value=0).astype("int64").to_numpy()},
                       index=pd.Index(ids, name="stage", dtype="str"))
    for unit in ("working_days", "calendar_days"):
        out[f"{unit}_median"] = g[unit].median().reindex(ids).astype("float64").to_numpy()
        out[f"{unit}_mean"] = g[unit].mean().reindex(ids).astype("float64").to_numpy()
    out["hours_median"] = g["hours"].median().reindex(ids).astype("float64").to_numpy()
    out["working_days_median_change"] = (
        out["working_days_median"] - before.groupby("stage")["working_days"].median().reindex(ids)).astype("float64")
    history = bool(stage_entries(data, playbook)["dated"].any())
    gap = stage_time_gap(data, lang) or (None if history else _no_history(lang))
    if gap:
        return mark(out, [gap], TIME_IN_STAGE_COLUMNS, lang)
    if why_now:
        return mark(out, [why_now], [c for c in out.columns if c.startswith("working_days")], lang)
    return mark(out, [why_before], ["working_days_median_change"], lang)


def _figures(data: CrmData, playbook: Any, period: Period, lang: str) -> tuple[dict[str, Any], pd.DataFrame, str, str]:
    """The month's headline figures (value, reason, inputs), the table by stage, the stage basis and probability source."""
    deals = data.unique_deals()
    rows = np.flatnonzero(open_at_end(deals, period))
    stage, basis = _stage_at_end(data, playbook, period, rows)
    amount = deals["amount"].to_numpy(dtype="float64")[rows]
    prob, source, prob_why = _probabilities(data, playbook, rows, stage, lang)
    order = [s.id for s in playbook.stages] + [UNKNOWN_STAGE]
    names = {s.id: s.name.get(lang) for s in playbook.stages} | {UNKNOWN_STAGE: t("阶段未知", "stage unknown", lang)}
    frame = pd.DataFrame({"stage": stage.to_numpy(), "amount": amount, "weighted": amount * prob,
                          "has_amount": ~np.isnan(amount)})
    g = frame.groupby("stage")
    by_stage = pd.DataFrame({
        "name": [names[s] for s in order],
        "deals": g.size().reindex(order, fill_value=0).astype("int64").to_numpy(),
        "with_amount": g["has_amount"].sum().reindex(order, fill_value=0).astype("int64").to_numpy(),
        "amount": g["amount"].sum().reindex(order, fill_value=0.0).astype("float64").to_numpy(),
        "weighted": g["weighted"].sum().reindex(order, fill_value=0.0).astype("float64").to_numpy(),
    }, index=pd.Index(order, name="stage", dtype="str"))
    by_stage = by_stage[(by_stage["deals"] > 0).to_numpy() | (by_stage.index != UNKNOWN_STAGE)]
    open_why = outcome_gap(data, lang) or closed_gap(data, lang) or \
        input_gap(data, "deals.created", deals, "商机的创建日期", "deal creation dates", lang)
    stage_why = stage_time_gap(data, lang) if basis == "history" else None
    value_why = amount_gap(data, lang, ("open", "won", "lost"))
    by_stage = mark(by_stage, [open_why, stage_why], ["deals", "with_amount", "amount", "weighted"], lang)
    by_stage = mark(by_stage, [value_why], ["amount", "weighted"], lang)
    by_stage = mark(by_stage, [prob_why], ["weighted"], lang)
    k = kpis(data, playbook, period.month, lang=lang)
    won = deals[(deals["outcome"] == "won").to_numpy() & period.contains(deals["closed"]).to_numpy()]
    won_amount = won["amount"].dropna()
    size_why = outcome_gap(data, lang) or closed_gap(data, lang, ("won",)) or amount_gap(data, lang) or (
        "" if len(won_amount) else t("本期没有带金额的赢单。", "no won deal with an amount in this period.", lang))
    cur = data.mapping.spec.source.currency or ""
    fig: dict[str, Any] = {}

    def put(fid: str, value: float, why: str | None, unit: str, inputs: str = "") -> None:
        fig[fid] = dict(value=math.nan if why else float(value), reason=why or "", unit=unit, inputs=inputs)

    pipe_why = open_why or stage_why or value_why
    if not pipe_why and len(rows) and np.isnan(amount).all():  # open deals, none with an amount: not a value of 0
        pipe_why = t(f"月末的 {len(rows):,} 个未结商机都没有金额，管道金额无从计算。",
                     f"none of the {len(rows):,} deals open at the month's end has an amount, so the pipeline value "
                     "is not known.", lang)
    put("open_deals", float(len(rows)), open_why, "count")
    put("pipeline_value", float(np.nansum(amount)), pipe_why, "amount",
        t(f"{int((~np.isnan(amount)).sum()):,} 个有金额", f"{int((~np.isnan(amount)).sum()):,} with an amount", lang))
    put("weighted_forecast", float(np.nansum(amount * prob)), pipe_why or prob_why, "amount",
        {"mapping": t("概率取自导出的概率列", "probability from the export's column", lang),
         "playbook": t("概率取自手册的阶段设定", "probability from the playbook's stages", lang)}.get(source, ""))
    for kid in ("lead_conversion_rate", "quote_acceptance_rate", "contract_signing_rate"):  # the SOP's other KPIs
        r = k.loc[kid]
        put(kid, float(r["value"]), r["reason"] if r["status"] != "ok" else None, "fraction",
            counted(kid, r["numerator"], r["denominator"], lang) if r["status"] == "ok" else "")
        fig[kid]["name"] = str(r["name"])
    for kid, fid in (("win_rate", "win_rate"), ("average_sales_cycle", "average_sales_cycle")):
        r = k.loc[kid]
        put(fid, float(r["value"]), r["reason"] if r["status"] != "ok" else None,
            "fraction" if kid == "win_rate" else "calendar_days",
            counted(kid, r["numerator"], r["denominator"], lang) if kid == "win_rate" and r["status"] == "ok" else
            (t(f"{int(r['denominator'])} 个赢单", f"{int(r['denominator'])} won deals", lang) if r["status"] == "ok" else ""))
    put("average_deal_size", float(won_amount.mean()) if len(won_amount) else math.nan, size_why, "amount",
        t(f"{len(won_amount):,} 个有金额的赢单", f"{len(won_amount):,} won deals with an amount", lang))
    parts = [fig[f] for f in ("open_deals", "win_rate", "average_deal_size", "average_sales_cycle")]
    vel_why = next((p["reason"] for p in parts if p["reason"]), "")
    if not vel_why and fig["average_sales_cycle"]["value"] <= 0:
        vel_why = t("平均销售周期为 0 天。", "the average sales cycle is 0 days.", lang)
    per_day = (fig["open_deals"]["value"] * fig["win_rate"]["value"] * fig["average_deal_size"]["value"]
               / fig["average_sales_cycle"]["value"]) if not vel_why else math.nan
    days = int(pd.Period(period.month, freq="M").days_in_month)
    how = "" if vel_why else (
        f"{int(fig['open_deals']['value']):,} × {fig['win_rate']['value']:.1%} × "
        f"{money_text(fig['average_deal_size']['value'], cur, lang)} ÷ "
        f"{duration_text(fig['average_sales_cycle']['value'], 'calendar_days', lang)}")
    put("sales_velocity_per_day", per_day, vel_why, "amount_per_day", how)
    put("sales_velocity_per_month", per_day * days, vel_why, "amount_per_month",
        "" if vel_why else t(f"每天 × {days} 天", f"per day × {days} days", lang))
    return fig, by_stage, basis, source


#: the figures' names, in order
_NAMES = {
    "open_deals": ("月末未结商机", "Open deals at month end"),
    "pipeline_value": ("管道金额", "Pipeline value"),
    "weighted_forecast": ("加权预测", "Weighted forecast"),
    "win_rate": ("赢单率", "Win rate"),
    "average_deal_size": ("平均赢单金额", "Average won deal size"),
    "average_sales_cycle": ("平均销售周期", "Average sales cycle"),
    "sales_velocity_per_day": ("销售速度（每天）", "Sales velocity (per day)"),
    "sales_velocity_per_month": ("销售速度（每月）", "Sales velocity (per month)"),
}


def pipeline_report(data: CrmData, playbook: Any, month: str, lang: str | None = None) -> PipelineReport:
    """Compute the pipeline report of ``month`` (seed:1.3.2, the KPIs of ``kpis.yaml``).

    Parameters
    ----------
    data : CrmData
    playbook : Playbook
    month : str
        ``YYYY-MM`` in the playbook's time zone.
    lang : {"zh-CN", "en"}, optional

    Returns
    -------
    PipelineReport
        ``by_stage``: index ``stage`` (playbook stage id, plus ``(unknown)`` for open deals whose
        stage at the month's end is not known); columns ``name`` (str), ``deals``, ``with_amount``
        (int64: deals open at the month's end, those of them with an amount), ``amount`` and
        ``weighted`` (float64, export currency: the sum of amounts, and of amount × probability;
        NaN when not computable). ``figures``: index ``figure`` (``open_deals``,
        ``pipeline_value``, ``weighted_forecast``, ``lead_conversion_rate``, ``quote_acceptance_rate``,
        ``contract_signing_rate`` (the KPIs of :func:`~sopcoach.analytics.kpis.kpis`), ``win_rate``, ``average_deal_size``,
        ``average_sales_cycle``, ``sales_velocity_per_day``, ``sales_velocity_per_month``);
        columns ``name``, ``unit`` (``count``, ``amount``, ``fraction``, ``calendar_days``,
        ``amount_per_day``, ``amount_per_month``), ``reason`` (why not computable, "" when it
        is), ``inputs`` (str, how it was computed); ``value``, ``previous`` (the calendar month
        before) and ``change`` (value − previous; fraction points for the win rate), float64;
        ``previous`` and ``change`` are NaN when the export has no data in the month before
        (``previous_has_data`` False: no deal created or closed in it).
        Sales velocity = open deals × win rate × average won deal size ÷ average sales cycle
        (calendar days); per month, × the days of the month. ``reps``: the columns of
        :func:`~sopcoach.analytics.kpis.breakdown` by owner plus ``win_rate_target``,
        ``cycle_target`` (float64, ``kpis.yaml``; NaN when not set), ``win_rate_vs_target``,
        ``cycle_vs_target`` (float64 differences). ``lost_reasons``: index ``lost_reason``
        (str); columns ``deals`` (int64, lost in the month), ``amount`` (float64).

        A deal's probability from the export is the one it has now (the export's column), not the
        one it had at the month's end; the playbook's is that of the deal's stage at the month's end.
        Open deals without an amount count in ``deals`` but add nothing to ``amount``.

    Raises
    ------
    AnalysisError
        When ``month`` is missing or not ``YYYY-MM``.
    """
    lang = lang or current_lang()
    if month is None:
        raise AnalysisError("the pipeline report is of one month: give month as YYYY-MM, e.g. 2025-03")
    tz = playbook.calendar.timezone
    period = Period.of(month, tz)
    month = str(period.month)
    prev = _previous(month)
    fig, by_stage, basis, source = _figures(data, playbook, period, lang)
    prev_has_data = prev in months_of(data, tz)  # else its figures read 0: no change from a month without data
    before = _figures(data, playbook, Period.of(prev, tz), lang)[0] if prev_has_data else {}
    figures = pd.DataFrame([
        dict(figure=f, name=v.get("name") or t(*_NAMES[f], lang), unit=v["unit"], value=v["value"],
             previous=before[f]["value"] if before else math.nan,
             change=v["value"] - before[f]["value"] if before else math.nan, reason=v["reason"], inputs=v["inputs"])
        for f, v in fig.items()]).set_index("figure")
    for c in ("value", "previous", "change"):
        figures[c] = figures[c].astype("float64")
    reps = breakdown(data, playbook, "owner", month, lang=lang) if data.deals["owner"].notna().any() \
        else pd.DataFrame()
    if len(reps):
        targets = {k.id: float(k.target) if k.target is not None else math.nan for k in playbook.kpis}
        reps["win_rate_target"] = targets.get("win_rate", math.nan)
        reps["cycle_target"] = targets.get("average_sales_cycle", math.nan)
        reps["win_rate_vs_target"] = reps["win_rate"] - reps["win_rate_target"]
        reps["cycle_vs_target"] = reps["cycle_mean"] - reps["cycle_target"]
    deals = data.unique_deals()
    if data.has("deals.lost_reason"):
        lost = deals[(deals["outcome"] == "lost").to_numpy() & period.contains(deals["closed"]).to_numpy()]
        g = lost.groupby(lost["lost_reason"].fillna(t("（未填写）", "(blank)", lang)))
        lost_reasons = pd.DataFrame({"deals": g.size().astype("int64"), "amount": g["amount"].sum().astype("float64")})
        lost_reasons.index.name = "lost_reason"
        lost_reasons = lost_reasons.sort_values("deals", ascending=False, kind="stable")
        lost_why = outcome_gap(data, lang) or closed_gap(data, lang, ("lost",)) or ""
    else:
        lost_reasons = pd.DataFrame({"deals": pd.Series(dtype="int64"), "amount": pd.Series(dtype="float64")},
                                    index=pd.Index([], name="lost_reason", dtype="str"))
        lost_why = t("导出没有丢单原因。请在导出中加上丢单原因一列。（给维护导入映射的同事：在商机表字段中加入"
                     " lost_reason: <丢单原因列>。）",
                     "the export has no lost reasons. Add the lost-reason column to the export. (For whoever "
                     "maintains the import mapping: add lost_reason: <column> to the deals table's fields.)", lang)
    return PipelineReport(month, prev, data.mapping.spec.source.currency, basis, by_stage, figures, reps,
                          lost_reasons, lost_why, source, lang, time_in_stage(data, playbook, month, lang),
                          prev_has_data)


def _num(v: Any) -> Any:
    """A JSON number (None for NaN or NA)."""
    return None if v is None or pd.isna(v) else (int(v) if isinstance(v, (int, np.integer)) else float(v))


def pipeline_json(pr: PipelineReport) -> dict[str, Any]:
    """Return the pipeline report as JSON-ready data (amounts in ``currency``, rates fractions 0-1).

    Keys: ``month``, ``previous_month``, ``currency``, ``stage_basis``, ``probability_source``,
    ``by_stage`` (a list of ``stage``, ``name``, ``deals``, ``with_amount``, ``amount``,
    ``weighted``), ``figures`` (per figure id: ``name``, ``unit``, ``value``, ``previous``,
    ``change``, ``reason``, ``inputs``), ``reps`` (a list of rows), ``lost_reasons``,
    ``time_in_stage`` (a list of ``stage``, ``name``, ``deals`` and the durations of
    :func:`time_in_stage`: working days, calendar days, hours), ``not_computable`` (``by_stage``,
    ``reps``, ``lost_reasons``, ``time_in_stage``: why, or null).
    """
    def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
        return [{k: (_num(v) if not isinstance(v, str) else v) for k, v in r.items()}
                for r in df.reset_index().to_dict("records")]

    return {
        "month": pr.month, "previous_month": pr.previous_month, "previous_has_data": pr.previous_has_data,
        "currency": pr.currency,
        "stage_basis": pr.stage_basis, "probability_source": pr.probability_source or None,
        "by_stage": rows(pr.by_stage),
        "figures": {f: {"name": r["name"], "unit": r["unit"], "value": _num(r["value"]),
                        "previous": _num(r["previous"]), "change": _num(r["change"]),
                        "reason": r["reason"] or None, "inputs": r["inputs"] or None}
                    for f, r in pr.figures.iterrows()},
        "reps": rows(pr.reps) if len(pr.reps) else [],
        "lost_reasons": rows(pr.lost_reasons),
        "time_in_stage": rows(pr.time_in_stage),
        "not_computable": {"by_stage": gap_of(pr.by_stage) or None, "reps": gap_of(pr.reps) or None,
                           "lost_reasons": pr.lost_reasons_gap or None,
                           "time_in_stage": gap_of(pr.time_in_stage) or None},
    }


def _show(value: float, unit: str, currency: str, lang: str, change: bool = False) -> str:
    """``value`` for people: a percentage, days, or an amount with the currency."""
    sign = "+" if change else ""
    if unit == "fraction":
        return f"{value * 100:{sign}.1f} " + t("个百分点", "pts", lang) if change else f"{value:.1%}"
    if unit == "calendar_days":
        return duration_text(value, unit, lang, signed=change)
    if unit == "count":
        return f"{value:{sign},.0f}"
    per = {"amount_per_day": t("/天", "/day", lang), "amount_per_month": t("/月", "/month", lang)}.get(unit, "")
    return money_text(value, currency, lang, signed=change) + per


def pipeline_note(pr: PipelineReport) -> str:
    """Say which month the pipeline is of, what the changes compare with, and where the stages come from."""
    lang = pr.lang
    basis = t("月末阶段取自阶段变更历史" if pr.stage_basis == "history" else "导出没有阶段变更历史，按商机当前阶段",
              "stage at the month's end from the stage history" if pr.stage_basis == "history"
              else "no stage history in the export: the deals' current stage", lang)
    if not pr.previous_has_data:
        return t(f"管道（{pr.month}；上月 {pr.previous_month} 无数据，不作比较；{basis}）",
                 f"Pipeline ({pr.month}; no data last month, {pr.previous_month}, so no change is shown; {basis})",
                 lang)
    return t(f"管道（{pr.month}，较 {pr.previous_month} 的变化；{basis}）",
             f"Pipeline ({pr.month}, change since {pr.previous_month}; {basis})", lang)


#: what a change since last month reads when the export has no data in the month before
NO_DATA_LAST_MONTH = ("上月无数据", "no data last month")


def shown_figures(pr: PipelineReport) -> pd.DataFrame:
    """Return the figures as people read them: index the figure's name; ``value``, ``change``, ``note`` (str).

    ``value`` is a percentage, days or an amount with the currency ("not computable" when it is
    not); ``change`` the change since the previous month ("" when either month lacks the figure,
    :data:`NO_DATA_LAST_MONTH` in words when the export has no data in the month before);
    ``note`` how the figure was computed, or why it could not be.
    """
    lang, cur = pr.lang, pr.currency or ""
    nc = t("无法计算", "not computable", lang)
    rows = []
    for _, r in pr.figures.iterrows():
        if r["reason"]:
            rows.append((r["name"], nc, "", r["reason"]))
        else:
            change = (t(*NO_DATA_LAST_MONTH, lang) if not pr.previous_has_data else
                      "" if pd.isna(r["change"]) else _show(r["change"], r["unit"], cur, lang, change=True))
            rows.append((r["name"], _show(r["value"], r["unit"], cur, lang), change, r["inputs"]))
    return pd.DataFrame(rows, columns=["figure", "value", "change", "note"]).set_index("figure")


def pipeline_lines(pr: PipelineReport) -> list[str]:
    """Return the pipeline report as text lines for the terminal (``sopcoach analyze --month``).

    Every figure is named in the report's language, with its unit: percentages, amounts with the
    currency, calendar and working days, hours.
    """
    lang, cur = pr.lang, pr.currency or ""
    nc = t("无法计算", "not computable", lang)
    colon = t("：", ": ", lang)
    out = [pipeline_note(pr)]
    for name, r in shown_figures(pr).iterrows():
        if r["value"] == nc:
            out.append(f"  {name}{colon}{nc}{colon}{r['note']}")
            continue
        line = f"  {name}{colon}{r['value']}" + (t(f"（{r['note']}）", f" ({r['note']})", lang) if r["note"] else "")
        out.append(line + (t(f"；较上月：{r['change']}", f"; change: {r['change']}", lang) if r["change"] else ""))
    out.append(f"  {t('各阶段未结商机', 'open deals by stage', lang)}{colon.rstrip()}")
    for _, r in pr.by_stage.iterrows():
        cells = [t("商机 ", "deals ", lang) + (f"{int(r['deals']):,}" if not pd.isna(r["deals"]) else "-"),
                 t("金额 ", "amount ", lang) + (money_text(r["amount"], cur, lang) or "-"),
                 t("加权 ", "weighted ", lang) + (money_text(r["weighted"], cur, lang) or "-")]
        out.append(f"    {r['name']}{colon}" + t("，", ", ", lang).join(cells))
    if gap_of(pr.by_stage):
        out.append(t(f"    （{gap_of(pr.by_stage)}）", f"    ({gap_of(pr.by_stage)})", lang))
    out.append(f"  {t('各阶段停留时间（本月离开该阶段的商机）', 'time in stage (deals that left the stage this month)', lang)}"
               f"{colon.rstrip()}")
    if gap_of(pr.time_in_stage):
        out.append(f"    {gap_of(pr.time_in_stage)}")
    else:
        for _, r in pr.time_in_stage[pr.time_in_stage["deals"] > 0].iterrows():
            wd, cd, hours, mean = (duration_text(r[c], unit, lang) or "-" for c, unit in (
                ("working_days_median", "working_days"), ("calendar_days_median", "calendar_days"),
                ("hours_median", "hours"), ("calendar_days_mean", "calendar_days")))
            out.append(f"    {r['name']}{colon}" + t(f"{int(r['deals']):,} 个商机，中位数 {wd}、{cd}（{hours}），平均 {mean}",
                                                    f"{int(r['deals']):,} deals, median {wd}, {cd} ({hours}), mean {mean}",
                                                    lang))
    if len(pr.reps):
        out.append(f"  {t('各销售', 'per rep', lang)}{colon.rstrip()}")
        days = t("个自然日", "calendar days", lang)
        for rep, r in pr.reps.iterrows():
            wr = f"{r['win_rate']:.1%}" if not pd.isna(r["win_rate"]) else "-"
            wt = t(f"（目标 {r['win_rate_target']:.0%}）", f" (target {r['win_rate_target']:.0%})", lang) \
                if not pd.isna(r["win_rate_target"]) else ""
            cy = f"{r['cycle_mean']:.1f}" if not pd.isna(r["cycle_mean"]) else "-"
            ct = t(f"（目标 {r['cycle_target']:.0f}）", f" (target {r['cycle_target']:.0f})", lang) \
                if not pd.isna(r["cycle_target"]) else ""
            am = money_text(r["amount_won"], cur, lang) or "-"
            won = f"{int(r['won']):,}" if not pd.isna(r["won"]) else "-"
            lost = f"{int(r['lost']):,}" if not pd.isna(r["lost"]) else "-"
            out.append(f"    {rep}{colon}" + t(
                f"赢单 {won}，丢单 {lost}，赢单率 {wr}{wt}，平均周期 {cy} {days}{ct}，赢单金额 {am}",
                f"won {won}, lost {lost}, win rate {wr}{wt}, mean cycle {cy} {days}{ct}, amount won {am}", lang))
        if gap_of(pr.reps):
            out.append(t(f"    （{gap_of(pr.reps)}）", f"    ({gap_of(pr.reps)})", lang))
    if pr.lost_reasons_gap:
        out.append(f"  {t('丢单原因', 'lost reasons', lang)}{colon}{nc}{colon}{pr.lost_reasons_gap}")
    else:
        out.append(f"  {t('丢单原因', 'lost reasons', lang)}{colon}" + (t("，", ", ", lang).join(
            t(f"{why} {r['deals']:,} 个", f"{why} {r['deals']:,}", lang) for why, r in pr.lost_reasons.iterrows()) or "-"))
    return out
