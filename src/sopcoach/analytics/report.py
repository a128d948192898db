"""Show a monthly review: charts (PNG), the one HTML table renderer, KPI cards and the HTML report.

:mod:`sopcoach.analytics` computes; this module only turns its results into pictures and HTML.
The markup lives in Jinja2 templates (``templates/macros.html``, ``templates/report.html``) with
autoescape on, so every CRM value (deal ids, owners, clause texts, row problems) is escaped in one
place. :func:`html_table` draws a DataFrame with the one table renderer, :mod:`sopcoach.tables`.
"""
from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from ..crm.problems import summary_lines
from ..i18n import current_lang, t
from ..tables import LOADER as TABLE_LOADER
from ..tables import Table as _Table
from ..tables import render as render_table
from .inputs import gap_of

if TYPE_CHECKING:  # for annotations only: the trainer pages use html_table without loading the CRM analysis
    from .case_study import CaseStudy
    from .pipeline import PipelineReport
    from .review import Review

__all__ = ["KpiCard", "Table", "bottleneck_html", "cell_text", "chart_cycle", "chart_funnel", "chart_timeline",
           "chart_trend", "gap_html", "gap_of", "html_table", "kpi_cards", "kpi_cards_html", "populations_note",
           "problem_summary_html", "render_html"]

#: The templates of this module (package data, see ``pyproject.toml``); a text is escaped unless it is Markup.
TEMPLATES = jinja2.Environment(
    loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))), TABLE_LOADER]),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=True),
    undefined=jinja2.StrictUndefined,
)


def _macro(name: str) -> Callable[..., Markup]:
    return getattr(TEMPLATES.get_template("macros.html").module, name)


# ----------------------------------------------------------------------------------- tables


#: A column's formatter: value -> the cell's text (escaped when shown); return Markup for HTML.
Format = Callable[[Any], str]


def _float_format(values: pd.Series) -> str:
    """Return the format of a column's floats: 3 decimals if all are within -1.5..1.5, else 1 with thousands."""
    v = pd.to_numeric(values, errors="coerce") if values.dtype == object else values
    fractions = v.dtype.kind == "f" and bool((v.dropna().abs() <= 1.5).all())
    return "{:.3f}" if fractions else "{:,.1f}"


def cell_text(v: Any, float_format: str = "{:,.1f}", missing: str = "") -> str:
    """Return the text a table shows for one value.

    Times as ``YYYY-MM-DD HH:MM``; True as ✓ and False as nothing; integers with thousands
    separators; floats with ``float_format``; lists joined by commas; None, NaN and NaT as ``missing``.

    Examples
    --------
    >>> cell_text(1234), cell_text(0.5, "{:.3f}"), cell_text(["a", "b"]), cell_text(None, missing="–")
    ('1,234', '0.500', 'a, b', '–')
    """
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    if v is None or v is pd.NaT or v is pd.NA:
        return missing
    if isinstance(v, pd.Timestamp):
        return missing if pd.isna(v) else v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, (bool, np.bool_)):
        return "✓" if v else ""
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return missing if math.isnan(float(v)) else float_format.format(float(v))
    if not isinstance(v, str) and pd.isna(v):
        return missing
    return str(v)


@dataclass(frozen=True)
class Table(_Table):
    """A DataFrame as :mod:`sopcoach.tables` draws it: header texts, rows of cell texts, rows left out."""

    @classmethod
    def of(cls, df: pd.DataFrame, columns: Iterable[str] | None = None, *, index: bool = True,
           headers: Mapping[str, str] | None = None, formats: Mapping[str, Format] | None = None,
           missing: str = "", max_rows: int = 200) -> Table:
        """Prepare ``df`` for :func:`sopcoach.tables.render` (parameters as :func:`html_table`)."""
        cols = list(columns if columns is not None else df.columns)
        headers, formats = headers or {}, formats or {}
        part = df.head(max_rows)
        columns_text = []
        for c in cols:
            fmt = formats.get(c)
            if fmt is None:
                float_format = _float_format(df[c])
                fmt = functools.partial(cell_text, float_format=float_format, missing=missing)
            columns_text.append([fmt(v) for v in part[c].tolist()])
        header = [headers.get(c, str(c)) for c in cols]
        if index:
            name = df.index.name
            header.insert(0, "" if name is None else headers.get(name, str(name)))
            show = str if name is None else formats.get(name, str)
            columns_text.insert(0, [show(v) for v in part.index])
        rows = [list(r) for r in zip(*columns_text)] if columns_text else [[] for _ in range(len(part))]
        return cls(header, rows, max(0, len(df) - max_rows))


def html_table(df: pd.DataFrame, columns: Iterable[str] | None = None, *, index: bool = True,
               headers: Mapping[str, str] | None = None, formats: Mapping[str, Format] | None = None,
               missing: str = "", max_rows: int = 200) -> str:
    """Return ``df`` as an HTML table (``<table class='t'>``), every cell escaped.

    A DataFrame drawn by the one table renderer of sopcoach (:func:`sopcoach.tables.render`).

    Parameters
    ----------
    df : DataFrame
    columns : iterable of str, optional
        The columns shown, in this order (default: all).
    index : bool, default True
        Show the index as the first column, headed by the index's name.
    headers : mapping, optional
        Header text per column (or index) name; default the name itself.
    formats : mapping, optional
        Per column, a function from a value to the cell's text, escaped when shown; a function may
        return :class:`markupsafe.Markup` for a cell that is HTML.
    missing : str, default ""
        Text for None, NaN and NaT in a column without a format.
    max_rows : int, default 200
        Rows shown; a note below the table says how many more there are.

    Returns
    -------
    str
        The HTML fragment. A column without a format shows :func:`cell_text`: a float column of
        fractions (every value within -1.5..1.5) with 3 decimals, any other float column with 1
        decimal and thousands separators, the same for every row.

    Examples
    --------
    >>> print(html_table(pd.DataFrame({"deal": ["<b>A&B</b>"], "rate": [0.5]}), index=False))
    <table class='t'><tr><th>deal</th><th>rate</th></tr><tr><td>&lt;b&gt;A&amp;B&lt;/b&gt;</td><td>0.500</td></tr></table>
    """
    return render_table(Table.of(df, columns, index=index, headers=headers, formats=formats,
                                 missing=missing, max_rows=max_rows))


# ----------------------------------------------------------------------------------- KPI cards


def _fmt_value(v: float, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.1%}" if unit == "fraction" else f"{v:,.1f}"


@dataclass(frozen=True)
class KpiCard:
    """One KPI as a card shows it: name, value, how it was counted, why (if it could not be), target."""

    name: str
    value: str
    detail: str
    reason: str
    target: str


def kpi_cards(rv: Review) -> list[KpiCard]:
    """Return one card per KPI of ``rv.kpis``: rates as percents with their 95% interval, cycles in days."""
    lang = rv.lang
    cards = []
    for _, r in rv.kpis.iterrows():
        if r["status"] == "ok":
            value = _fmt_value(r["value"], r["unit"])
            detail = (f"{int(r['numerator']):,} / {int(r['denominator']):,}" if r["unit"] == "fraction"
                      else t(f"{int(r['denominator'])} 个赢单", f"{int(r['denominator'])} won deals", lang))
            if r["unit"] == "fraction" and not math.isnan(r["ci_low"]):
                detail += f" · 95% [{r['ci_low']:.1%}–{r['ci_high']:.1%}]"
        else:
            value, detail = t("无法计算", "not computable", lang), ""
        target = "" if math.isnan(r["target"]) else t("目标 ", "target ", lang) + _fmt_value(r["target"], r["unit"])
        cards.append(KpiCard(r["name"], value, detail, r["reason"] or "", target))
    return cards


def kpi_cards_html(rv: Review) -> str:
    """Return the KPI cards as an HTML fragment (used by the report and the review app)."""
    return str(_macro("kpi_cards")(kpi_cards(rv)))


def problem_summary_html(problems: Iterable[Any], lang: str | None = None) -> str:
    """Return the summary of the values that could not be read (:func:`~sopcoach.crm.problems.summary_lines`) as HTML.

    ``problems`` are an export's row problems (``CrmData.problems``, ``Review.problems``). The
    report and the review app show it at the top; "" when every value was read.
    """
    return str(_macro("problem_summary")(summary_lines(problems, lang or current_lang())))


def gap_html(df: pd.DataFrame) -> str:
    """Return why a table's figures are blank (:func:`~sopcoach.analytics.inputs.gap_of`) as a call-out; "" when none are."""
    return str(_macro("gap")(gap_of(df)))


def bottleneck_html(rv: Review) -> str:
    """Return the bottleneck verdict: a red call-out naming the stage, else green (none weak) or grey (not judged)."""
    return str(_macro("bottleneck")(rv.bottleneck, functools.partial(t, lang=rv.lang)))


def populations_note(rv: Review) -> str:
    """Say which deals each part of a monthly review counts (they differ by design).

    KPIs count what happened in the month (deals closed, quotes sent in it); the funnel, the stage
    counts and the bottleneck follow the cohort of deals created in it to their furthest stage so
    far; the per-group ``open`` is the pipeline at the month's end.
    """
    if rv.month is None:
        return t("全部月份：KPI、漏斗和分组都按整份导出统计；分组表中的“created”只计有创建日期的商机。",
                 "All months: the KPIs, the funnel and the groups count the whole export; 'created' in the "
                 "group tables counts the deals that have a creation date.", rv.lang)
    m = rv.month
    return t(f"KPI 按事件发生的月份统计（{m} 关闭的商机、{m} 发出的报价……）；漏斗、阶段数和瓶颈跟踪 {m} "
             f"新建的商机（同期群）到目前为止到达的阶段；分组表中的“open”是 {m} 月末仍在进行的商机。",
             f"KPIs count what happened in {m} (deals closed, quotes sent in it); the funnel, the stage "
             f"counts and the bottleneck follow the deals created in {m} (a cohort) to the furthest stage "
             f"reached so far; 'open' in the group tables is the pipeline at the end of {m}.", rv.lang)


# ----------------------------------------------------------------------------------- charts


def _plt() -> Any:
    # matplotlib is imported when the first chart is drawn: it costs a second at start-up and
    # neither the CLI's text output nor the learner server ever draws one.
    import matplotlib  # noqa: PLC0415 - heavy: matplotlib, only when a chart is drawn
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # noqa: PLC0415 - heavy: matplotlib, only when a chart is drawn
    from matplotlib import font_manager  # noqa: PLC0415 - heavy: matplotlib, only when a chart is drawn
    wanted = ["Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei"]
    have = {f.name for f in font_manager.fontManager.ttflist}
    fonts = [f for f in wanted if f in have]
    plt.rcParams["font.sans-serif"] = fonts + ["DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _figure_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt  # noqa: PLC0415 - loaded already: every chart calls _plt() first
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _not_computable(ax: Any, lang: str) -> None:
    """Write "not computable" on a chart whose figures are blank (the reason is shown next to it)."""
    ax.text(0.5, 0.5, t("无法计算（原因见上文）", "not computable (the reason is given above)", lang),
            ha="center", transform=ax.transAxes)


def chart_funnel(rv: Review) -> bytes:
    """Draw the funnel (deals reached per stage, conversion with its interval) as PNG bytes."""
    plt = _plt()
    f = rv.funnel
    fig, ax = plt.subplots(figsize=(7, 3.2))
    if gap_of(f):
        _not_computable(ax, rv.lang)
        return _figure_png(fig)
    y = np.arange(len(f))[::-1]
    colors = ["#c0392b" if s == rv.bottleneck.stage else ("#4a7bb7" if o else "#b8c7db")
              for s, o in zip(f.index, f["observed"])]
    ax.barh(y, f["reached"], color=colors)
    for yi, (reached, conv, lo, hi) in zip(y, f[["reached", "conversion", "ci_low", "ci_high"]].to_numpy()):
        label = f"{int(reached):,}"
        if not math.isnan(conv):
            label += f"  → {conv:.0%} [{lo:.0%}–{hi:.0%}]"
        ax.text(reached, yi, " " + label, va="center", fontsize=8)
    ax.set_yticks(y, f["name"])
    ax.set_xlabel(t("到达该阶段的商机数", "deals that reached the stage", rv.lang))
    ax.set_xlim(0, max(1, f["reached"].max()) * 1.6)
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def chart_cycle(rv: Review) -> bytes:
    """Draw the distribution of won-deal cycle times (calendar days) as PNG bytes."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    c = rv.cycle_days
    if len(c):
        ax.hist(c, bins=min(40, max(5, len(c) // 10)), color="#4a7bb7")
        ax.axvline(c.mean(), color="#c0392b", label=t(f"平均 {c.mean():.1f} 天", f"mean {c.mean():.1f} d", rv.lang))
        ax.axvline(c.median(), color="#1b7f3b", linestyle="--",
                   label=t(f"中位数 {c.median():.1f} 天", f"median {c.median():.1f} d", rv.lang))
        ax.legend(fontsize=8)
    else:  # the sales-cycle KPI card says why
        _not_computable(ax, rv.lang)
    ax.set_xlabel(t("销售周期（自然日）", "sales cycle (calendar days)", rv.lang))
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def chart_trend(rv: Review) -> bytes:
    """Draw the monthly win rate with its interval as PNG bytes."""
    plt = _plt()
    tr = rv.trend.dropna(subset=["win_rate"])
    fig, ax = plt.subplots(figsize=(7, 2.6))
    if gap_of(rv.trend) and not len(tr):
        _not_computable(ax, rv.lang)
    elif len(tr):
        x = np.arange(len(tr))
        ax.plot(x, tr["win_rate"], marker="o", color="#4a7bb7")
        ax.fill_between(x, tr["ci_low"], tr["ci_high"], color="#4a7bb7", alpha=0.15)
        ax.set_xticks(x, tr.index, rotation=45, fontsize=7)
        if rv.month in tr.index:
            ax.axvline(list(tr.index).index(rv.month), color="#c0392b", linestyle=":")
    ax.set_ylim(0, 1)
    ax.set_ylabel(t("赢单率", "win rate", rv.lang))
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def chart_timeline(cs: CaseStudy, playbook: Any, lang: str | None = None) -> bytes:
    """Draw a deal's events against the SOP stages, deviations in red, as PNG bytes."""
    plt = _plt()
    lang = lang or current_lang()
    tl = cs.timeline
    names = [s.name.get(lang) for s in playbook.stages]
    # the outcome (won, lost) and any stage outside the playbook get rows above the SOP stages
    names += sorted({str(s) for s in tl["stage"].dropna()} - set(names))
    pos = {n: i for i, n in enumerate(names)}
    fig, ax = plt.subplots(figsize=(8, 3))
    if len(tl):
        x = tl["timestamp"].dt.tz_convert(playbook.calendar.timezone).dt.tz_localize(None)
        y = [pos.get(s, -0.5) for s in tl["stage"]]
        dev = tl["deviation"] != ""
        ax.scatter(x[~dev], np.array(y)[~dev.to_numpy()], s=18, color="#4a7bb7", label=t("记录", "event", lang))
        ax.scatter(x[dev], np.array(y)[dev.to_numpy()], s=60, color="#c0392b", marker="X",
                   label=t("偏离SOP", "deviation", lang))
        ax.legend(fontsize=8, loc="lower right")
    for d in cs.deviations.itertuples():
        if pd.notna(d.due):
            ax.axvline(d.due.tz_convert(playbook.calendar.timezone).tz_localize(None), color="#c0392b",
                       alpha=0.3, linestyle="--")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-1, len(names))
    fig.autofmt_xdate()
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


# ----------------------------------------------------------------------------------- report

def _png(chart: bytes) -> str:
    """Return PNG bytes as the base64 text of a ``data:image/png`` URI."""
    return base64.b64encode(chart).decode("ascii")


#: The columns the report's tables show (the review app shows the same, its funnel without ``advanced``).
FUNNEL_SHOWN = ["name", "reached", "open_here", "lost_here", "advanced", "conversion", "ci_low", "ci_high", "observed"]
CHECKS_SHOWN = ["rule", "clause", "source", "status", "instances", "breaches", "pending", "reason", "inferred"]
FINDINGS_SHOWN = ["rule", "owner", "clause", "source", "expected", "actual"]  # indexed by deal_id
TIMELINE_SHOWN = ["stage", "what", "deviation"]  # indexed by local_time


#: the per-rep columns of the pipeline section (:func:`sopcoach.analytics.pipeline.pipeline_report`)
PIPELINE_REPS_SHOWN = ["won", "lost", "open", "win_rate", "win_rate_target", "cycle_mean", "cycle_target", "amount_won"]


def _pipeline_tables(pr: PipelineReport) -> dict[str, Any]:
    """The pipeline section's tables, headers in the report's language, amounts with the currency."""
    from .pipeline import pipeline_note, shown_figures  # noqa: PLC0415 - the pipeline needs the CRM reader; the trainer pages do not
    lang, cur = pr.lang, pr.currency or ""

    def money(v: Any) -> str:
        return "" if v is None or pd.isna(v) else f"{float(v):,.0f} {cur}".rstrip()

    def pct(v: Any) -> str:
        return "" if v is None or pd.isna(v) else f"{float(v):.1%}"

    heads = {"value": t("数值", "value", lang), "change": t("较上月", "change", lang), "note": t("说明", "how / why", lang),
             "figure": "", "name": t("阶段", "stage", lang), "deals": t("商机数", "deals", lang),
             "with_amount": t("有金额", "with an amount", lang), "amount": t("金额", "amount", lang),
             "weighted": t("加权", "weighted", lang), "owner": t("销售", "rep", lang), "won": t("赢单", "won", lang),
             "lost": t("丢单", "lost", lang), "open": t("月末未结", "open at month end", lang),
             "win_rate": t("赢单率", "win rate", lang), "win_rate_target": t("目标", "target", lang),
             "cycle_mean": t("平均周期（天）", "average cycle (days)", lang), "cycle_target": t("目标", "target", lang),
             "amount_won": t("赢单金额", "amount won", lang), "lost_reason": t("丢单原因", "lost reason", lang)}
    tables = {"figures": Table.of(shown_figures(pr), headers=heads),
              "by_stage": Table.of(pr.by_stage.set_index("name"), ["deals", "with_amount", "amount", "weighted"],
                                   headers=heads, formats={"amount": money, "weighted": money}),
              "lost": Table.of(pr.lost_reasons, headers=heads, formats={"amount": money})}
    if len(pr.reps):
        tables["reps"] = Table.of(pr.reps, PIPELINE_REPS_SHOWN, headers=heads, max_rows=50,
                                  formats={"win_rate": pct, "win_rate_target": pct, "amount_won": money})
    return {"note": pipeline_note(pr), "tables": tables, "by_stage_gap": gap_of(pr.by_stage),
            "reps_gap": gap_of(pr.reps) if len(pr.reps) else "", "lost_gap": pr.lost_reasons_gap,
            "has_lost": len(pr.lost_reasons) > 0}


def render_html(rv: Review, *, case: CaseStudy | None = None, playbook: Any = None,
                pipeline: PipelineReport | None = None) -> str:
    """Return a self-contained HTML report (charts embedded as PNG data URIs, no external files).

    Sections: the values that could not be read (a summary per file and column, first), KPI
    cards, the month's pipeline (with ``pipeline``), funnel with the bottleneck verdict, cycle-time distribution, monthly trend,
    SOP compliance (checks and findings), one table per group, data quality, unreadable rows, and
    the case study when ``case`` and ``playbook`` are given. The page is ``templates/report.html``.

    Parameters
    ----------
    rv : Review
    case : CaseStudy, optional
        Adds a case-study section (needs ``playbook`` for its chart).
    playbook : Playbook, optional
    pipeline : PipelineReport, optional
        Adds the pipeline section (:func:`sopcoach.analytics.pipeline.pipeline_report` of ``rv.month``).
    """
    lang = rv.lang
    findings = rv.compliance.findings.set_index("deal_id")[FINDINGS_SHOWN]
    charts = {"funnel": _png(chart_funnel(rv)), "cycle": _png(chart_cycle(rv)), "trend": _png(chart_trend(rv))}
    tables = {
        "funnel": Table.of(rv.funnel, FUNNEL_SHOWN),
        "trend": Table.of(rv.trend),
        "checks": Table.of(rv.compliance.checks[CHECKS_SHOWN]),
        "findings": Table.of(findings),
        "by": {g: Table.of(df, max_rows=50) for g, df in rv.by.items()},
        "quality": Table.of(rv.quality.summary),
    }
    if case is not None and playbook is not None:
        charts["timeline"] = _png(chart_timeline(case, playbook, lang))
        tables["timeline"] = Table.of(case.timeline.set_index("local_time")[TIMELINE_SHOWN])
    else:
        case = None
    return TEMPLATES.get_template("report.html").render(
        rv=rv, case=case, t=functools.partial(t, lang=lang), month=rv.month or t("全部月份", "all months", lang),
        as_of=str(rv.compliance.as_of or ""), note=populations_note(rv), cards=kpi_cards(rv),
        charts=charts, tables=tables, findings=len(findings), summary=rv.compliance.summary(lang),
        problem_summary=Markup(problem_summary_html(rv.problems, lang)),
        gaps={"funnel": gap_of(rv.funnel), "trend": gap_of(rv.trend), "by": {g: gap_of(df) for g, df in rv.by.items()}},
        deviations=list(case.deviations.itertuples()) if case is not None else [],
        pipeline=_pipeline_tables(pipeline) if pipeline is not None else None)
