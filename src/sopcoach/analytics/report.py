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
from ..i18n import current_lang, local_time, t, zh_html, zone_name
from ..tables import LOADER as TABLE_LOADER
from ..tables import Table as _Table
from ..tables import render as render_table
from .inputs import gap_of

if TYPE_CHECKING:  # for annotations only: the trainer pages use html_table without loading the CRM analysis
    from .case_study import CaseStudy
    from .pipeline import PipelineReport
    from .review import Review

__all__ = ["KpiCard", "Table", "bottleneck_html", "cell_text", "chart_cycle", "chart_funnel", "chart_timeline",
           "chart_trend", "charts_with_data", "gap_html", "gap_of", "html_table", "kpi_cards", "kpi_cards_html", "missing_fields_html",
           "month_ticks", "populations_note", "problem_summary_html", "render_html", "timeline_figure", "trend_people"]

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


# ----------------------------------------------------------------------------------- people's tables


def rate_text(v: Any, lang: str | None = None) -> str:
    """A fraction 0-1 as a percentage; a rate outside 0-100% is a data problem, said so, never printed.

    >>> rate_text(0.6316, "en"), rate_text(1.033, "en"), rate_text(float("nan"), "en")
    ('63.2%', 'data problem (over 100%)', '')
    """
    if v is None or pd.isna(v):
        return ""
    if not -1e-9 <= float(v) <= 1 + 1e-9:
        return t("数据有误（超过100%）", "data problem (over 100%)", lang) if float(v) > 1 else \
            t("数据有误（小于0）", "data problem (below 0)", lang)
    return f"{float(v):.1%}"


def unit_format(unit: str, lang: str | None, currency: str | None = None, signed: bool = False) -> Format:
    """Return the cell formatter of a unit of :data:`sopcoach.labels.UNITS` (blank for a missing value).

    ``percent``: :func:`rate_text`; ``points``: percentage points (``+2.5 pts``); ``amount``:
    :func:`sopcoach.labels.money_text` (``1,234 元``); ``calendar_days``, ``working_days``, ``hours``:
    :func:`sopcoach.labels.duration_number` (the label names the unit). ``signed`` shows a + on increases
    (changes, differences).
    """
    from ..labels import money_text, duration_number  # noqa: PLC0415 - labels loads zoneinfo (see people_table)

    def fmt(v: Any) -> str:
        if v is None or v is pd.NA or (not isinstance(v, str) and pd.isna(v)):
            return ""
        x = float(v)
        if unit == "percent":
            return rate_text(x, lang)
        if unit == "points":
            return f"{x * 100:+.1f} " + t("个百分点", "pts", lang)
        if unit == "amount":
            return money_text(x, currency, lang, signed=signed)
        return duration_number(x, unit, signed=signed)
    return fmt


def people_table(df: pd.DataFrame, columns: Iterable[str] | None = None, *, lang: str | None = None,
                 currency: str | None = None, index: bool = True, max_rows: int = 200,
                 labels: Mapping[str, str] | None = None, units: Mapping[str, str] | None = None,
                 formats: Mapping[str, Format] | None = None) -> Table:
    """Prepare ``df`` for people: labels in ``lang`` (:mod:`sopcoach.labels`), numbers in their units, words.

    Each header is :func:`sopcoach.labels.column_label` (or ``labels[column]``); a column of
    :data:`sopcoach.labels.UNITS` (or ``units``) shows percentages (a rate outside 0-100% as a data
    problem, :func:`rate_text`), amounts with ``currency``, days and hours; a column of
    :data:`sopcoach.labels.VALUES` shows its values in words; ``formats`` (column -> formatter)
    overrides both. Other parameters as :func:`html_table`.
    """
    from ..labels import UNITS, VALUES, column_label, source_words  # noqa: PLC0415 - labels loads zoneinfo; the report's callers all have it
    lang = lang or current_lang()
    cols = list(columns if columns is not None else df.columns)
    labels, units = dict(labels or {}), dict(units or {})
    names = cols + ([df.index.name] if index and df.index.name is not None else [])
    headers = {c: labels.get(c) or column_label(c, lang) for c in names}
    given = dict(formats or {})
    shown: dict[str, Format] = {}
    for c in names:
        unit = units.get(c, UNITS.get(c))
        if c in given:
            shown[c] = given[c]
        elif unit:
            shown[c] = unit_format(unit, lang, currency, signed=c.endswith(("_change", "_vs_target")))
        elif c in VALUES:
            shown[c] = functools.partial(_in_words, words=VALUES[c], lang=lang)
        elif c == "source":  # a clause's source (seed:1.2.1, company-setting) in words
            shown[c] = functools.partial(source_words, lang=lang)
    return Table.of(df, cols, index=index, headers=headers, formats=shown, max_rows=max_rows)


def _in_words(v: Any, words: Mapping[Any, tuple[str, str]], lang: str) -> str:
    """A stored state or yes/no in words (:data:`sopcoach.labels.VALUES`), any other value as :func:`cell_text`."""
    if isinstance(v, (str, bool, np.bool_)) and v in words:
        zh, en = words[v]
        return t(zh, en, lang)
    return cell_text(v)


def people_html(df: pd.DataFrame, columns: Iterable[str] | None = None, **kwargs: Any) -> str:
    """Return :func:`people_table` of ``df`` as HTML (the review app's tables)."""
    return render_table(people_table(df, columns, **kwargs))


# ----------------------------------------------------------------------------------- KPI cards


def _fmt_value(v: float, unit: str, lang: str | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if unit == "fraction":
        return rate_text(v, lang)
    from ..labels import duration_text  # noqa: PLC0415 - labels loads zoneinfo (see people_table)
    return duration_text(v, unit, lang)


#: what a rate KPI counts, numerator then denominator, (zh-CN, en) with ``{n}`` and ``{d}``
COUNTED = {
    "lead_conversion_rate": ("完成需求确认 {n} / 分配的线索 {d}", "{n} needs confirmed / {d} leads assigned"),
    "quote_acceptance_rate": ("被接受的报价 {n} / 发出的报价 {d}", "{n} quotes accepted / {d} quotes sent"),
    "contract_signing_rate": ("签订的合同 {n} / 被接受的报价 {d}", "{n} contracts signed / {d} quotes accepted"),
    "win_rate": ("赢单 {n} / 赢单与丢单 {d}", "{n} won / {d} won or lost"),
}


def counted(kpi: str, numerator: float, denominator: float, lang: str | None = None) -> str:
    """Say what a rate KPI counted, e.g. ``4,238 won / 6,711 won or lost`` (:data:`COUNTED`)."""
    zh, en = COUNTED.get(kpi, ("{n} / {d}", "{n} / {d}"))
    n, d = f"{int(numerator):,}", f"{int(denominator):,}"
    return t(zh.format(n=n, d=d), en.format(n=n, d=d), lang)


def kpi_verdict(value: float, target: float, unit: str) -> str:
    """Return ``met``, ``near`` or ``missed`` for a KPI against its target ("" without both).

    A rate (``fraction``) is met at or above its target and near within 5 percentage points
    below it; a duration (``calendar_days``, ``working_days``) is met at or below its target and
    near within 10% above it.

    >>> kpi_verdict(0.33, 0.35, "fraction"), kpi_verdict(70, 60, "calendar_days")
    ('near', 'missed')
    """
    if value is None or target is None or math.isnan(value) or math.isnan(target):
        return ""
    if unit in ("calendar_days", "working_days"):
        return "met" if value <= target else ("near" if value <= target * 1.1 else "missed")
    return "met" if value >= target else ("near" if value >= target - 0.05 else "missed")


#: a verdict in words (the card says it, its colour repeats it)
VERDICTS = {"met": ("已达标", "target met"), "near": ("接近目标", "near the target"),
            "missed": ("未达标", "target missed")}


@dataclass(frozen=True)
class KpiCard:
    """One KPI as a card shows it: name, value, how it was counted, why (if it could not be), target.

    ``verdict`` is ``met``, ``near``, ``missed`` or "" (no target, or not computable; the card's
    CSS class); ``target`` says the target and the verdict in words.
    """

    name: str
    value: str
    detail: str
    reason: str
    target: str
    verdict: str = ""


def kpi_cards(rv: Review) -> list[KpiCard]:
    """Return one card per KPI of ``rv.kpis``: rates as percents with their 95% interval, cycles in days.

    Each card with a target is judged against it (:func:`kpi_verdict`), in words and colour.
    """
    lang = rv.lang
    cards = []
    for kid, r in rv.kpis.iterrows():
        verdict = ""
        if r["status"] == "ok":
            value = _fmt_value(r["value"], r["unit"], lang)
            detail = (counted(str(kid), r["numerator"], r["denominator"], lang) if r["unit"] == "fraction"
                      else t(f"{int(r['denominator'])} 个赢单", f"{int(r['denominator'])} won deals", lang))
            if r["unit"] == "fraction" and not math.isnan(r["ci_low"]):
                detail += t(f" · 95% 区间 [{r['ci_low']:.1%}–{r['ci_high']:.1%}]",
                            f" · 95% interval [{r['ci_low']:.1%}–{r['ci_high']:.1%}]", lang)
            verdict = kpi_verdict(r["value"], r["target"], r["unit"])
        else:
            value, detail = t("无法计算", "not computable", lang), ""
        target = "" if math.isnan(r["target"]) else t("目标 ", "target ", lang) + _fmt_value(r["target"], r["unit"], lang)
        if verdict:
            target += " · " + t(*VERDICTS[verdict], lang)
        cards.append(KpiCard(r["name"], value, detail, r["reason"] or "", target, verdict))
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
        return t("全部月份：KPI、漏斗和分组都按整份导出统计；分组表中的“新建商机”只计有创建日期的商机。",
                 "All months: the KPIs, the funnel and the groups count the whole export; 'deals created' in the "
                 "group tables counts the deals that have a creation date.", rv.lang)
    m = rv.month
    return t(f"KPI 按事件发生的月份统计（{m} 关闭的商机、{m} 发出的报价……）；漏斗、阶段数和瓶颈跟踪 {m} "
             f"新建的商机（同期群）到目前为止到达的阶段；分组表中的“期末未结”是 {m} 月末仍在进行的商机。",
             f"KPIs count what happened in {m} (deals closed, quotes sent in it); the funnel, the stage "
             f"counts and the bottleneck follow the deals created in {m} (a cohort) to the furthest stage "
             f"reached so far; 'open at the end' in the group tables is the pipeline at the end of {m}.", rv.lang)


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


def charts_with_data(rv: Review) -> dict[str, bool]:
    """Tell which of the review's charts have something to draw: ``{"funnel", "cycle", "trend"}`` -> bool.

    A chart without data is left out of the page and the report (the KPI card or the note next to it
    says why) rather than drawn as empty axes.
    """
    return {"funnel": not gap_of(rv.funnel) and bool(rv.funnel["reached"].sum() > 0),
            "cycle": bool(len(rv.cycle_days)),
            "trend": bool(rv.trend["win_rate"].notna().any()) if "win_rate" in rv.trend else False}


def chart_funnel(rv: Review) -> bytes:
    """Draw the funnel (deals reached per stage, conversion with its interval) as PNG bytes."""
    plt = _plt()
    f = rv.funnel
    fig, ax = plt.subplots(figsize=(7, 3.2))
    if gap_of(f):
        _not_computable(ax, rv.lang)
        return _figure_png(fig)
    y = np.arange(len(f))[::-1]
    recorded, guessed, weak = "#4a7bb7", "#b8c7db", "#c0392b"  # each colour is named in the legend
    colors = [weak if s == rv.bottleneck.stage else (recorded if o else guessed) for s, o in zip(f.index, f["observed"])]
    ax.barh(y, f["reached"], color=colors)
    for yi, (reached, conv, lo, hi) in zip(y, f[["reached", "conversion", "ci_low", "ci_high"]].to_numpy()):
        label = f"{int(reached):,}"
        if not math.isnan(conv):
            label += f"  → {conv:.0%} [{lo:.0%}–{hi:.0%}]"
        ax.text(reached, yi, " " + label, va="center", fontsize=8)
    inferred = [not o and i < len(f) - 1 for i, o in enumerate(f["observed"])]
    ax.set_yticks(y, [f"{n} *" if i else str(n) for n, i in zip(f["name"], inferred)])
    ax.set_ylabel(t("SOP 阶段", "SOP stage", rv.lang))
    ax.set_xlabel(t("到达该阶段的商机数（→ 转化率 [95% 区间]）", "deals that reached the stage (→ conversion [95% interval])",
                    rv.lang))
    from matplotlib.patches import Patch  # noqa: PLC0415 - loaded already: _plt() imported matplotlib
    kinds = [(recorded, t("导出有记录", "recorded in the export", rv.lang)),
             (guessed, t("导出未记录：由之后的阶段或赢单推断", "not recorded: inferred from a later stage or a win",
                        rv.lang)),
             (weak, t("瓶颈阶段", "bottleneck", rv.lang))]
    shown = [Patch(color=c, label=label) for c, label in kinds if c in colors]
    if len(shown) > 1:  # one colour alone needs no key
        ax.legend(handles=shown, fontsize=8, loc="lower right", frameon=False)
    if any(inferred):
        fig.text(0.01, -0.08, inferred_legend(f, rv.lang), fontsize=7, color="#555", wrap=True)
    ax.set_xlim(0, max(1, f["reached"].max()) * 1.6)
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def chart_cycle(rv: Review) -> bytes:
    """Draw the distribution of won-deal cycle times (calendar days) as PNG bytes."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    c = rv.cycle_days
    if len(c):
        from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - loaded already: _plt() imported matplotlib
        from ..labels import duration_text  # noqa: PLC0415 - labels loads zoneinfo (see people_table)
        mean, median = (duration_text(v, "calendar_days", rv.lang) for v in (c.mean(), c.median()))
        ax.hist(c, bins=min(40, max(5, len(c) // 10)), color="#4a7bb7")
        ax.axvline(c.mean(), color="#c0392b", label=t(f"平均 {mean}", f"mean {mean}", rv.lang))
        ax.axvline(c.median(), color="#1b7f3b", linestyle="--", label=t(f"中位数 {median}", f"median {median}", rv.lang))
        ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=2, frameon=False)  # above: never over a bar
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of deals
    else:  # the sales-cycle KPI card says why
        _not_computable(ax, rv.lang)
    ax.set_xlabel(t("销售周期（自然日）", "sales cycle (calendar days)", rv.lang))
    ax.set_ylabel(t("赢单数", "won deals", rv.lang))
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def month_positions(months: Iterable[str]) -> np.ndarray:
    """Return each ``YYYY-MM`` month's position on a time axis: calendar months since the first.

    >>> month_positions(["2024-02", "2026-02", "2026-03"]).tolist()
    [0, 24, 25]
    """
    ordinal = np.array([int(m[:4]) * 12 + int(m[5:7]) - 1 for m in months], dtype=np.int64)
    return ordinal - ordinal.min() if len(ordinal) else ordinal


def month_ticks(ax: Any, positions: Iterable[int], months: list[str], most: int = 12) -> None:
    """Label a month axis with at most ``most`` of its ``YYYY-MM`` months (every n-th), slanted, so no two touch."""
    at = list(positions)
    every = max(1, -(-len(months) // most))
    ax.set_xticks(at[::every], months[::every], rotation=45, ha="right", rotation_mode="anchor", fontsize=8)


def chart_trend(rv: Review) -> bytes:
    """Draw the monthly win rate with its interval as PNG bytes."""
    plt = _plt()
    tr = rv.trend.dropna(subset=["win_rate"])
    fig, ax = plt.subplots(figsize=(7, 2.6))
    if gap_of(rv.trend) and not len(tr):
        _not_computable(ax, rv.lang)
    elif len(tr):
        x = month_positions(tr.index)
        # one point per calendar month: a month without closed deals is a gap in the line, not a step
        span = pd.RangeIndex(int(x.max()) + 1)
        for col in ("win_rate", "ci_low", "ci_high"):
            tr = tr.assign(**{col: tr[col].astype(float)})
        line = pd.DataFrame(tr[["win_rate", "ci_low", "ci_high"]].to_numpy(), index=x).reindex(span)
        ax.plot(span, line[0], marker="o", color="#4a7bb7")
        ax.fill_between(span, line[1], line[2], color="#4a7bb7", alpha=0.15)
        month_ticks(ax, x, list(tr.index))
        if rv.month in tr.index:
            ax.axvline(x[list(tr.index).index(rv.month)], color="#c0392b", linestyle=":",
                       label=t(f"复盘月份 {rv.month}", f"month reviewed ({rv.month})", rv.lang))
            ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.02), frameon=False)  # above the line
    ax.set_xlabel(t("关闭月份（赢单与丢单）", "month closed (won or lost)", rv.lang))
    ax.set_ylim(0, 1)
    from matplotlib.ticker import PercentFormatter  # noqa: PLC0415 - loaded already: _plt() imported matplotlib
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel(t("赢单率（95% 区间）", "win rate (95% interval)", rv.lang))
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def chart_timeline(cs: CaseStudy, playbook: Any, lang: str | None = None) -> bytes:
    """Draw a deal's events against the SOP stages (:func:`timeline_figure`) as PNG bytes."""
    return _figure_png(timeline_figure(cs, playbook, lang))


def timeline_figure(cs: CaseStudy, playbook: Any, lang: str | None = None) -> Any:
    """Return a matplotlib Figure of a deal's events against the SOP stages: events as dots, deviations as
    red crosses, each broken limit's due time as a dashed red line.

    The time axis (naive local times of the playbook's zone) spans the deal's own events and due
    times with a margin (a twentieth of the span, at least a day each side); the legend, above the
    plot, shows each mark the chart uses and only those. The caller closes the figure
    (:func:`chart_timeline` does).
    """
    plt = _plt()
    from matplotlib import dates as mdates  # noqa: PLC0415 - with matplotlib, only when a chart is drawn
    from matplotlib.lines import Line2D  # noqa: PLC0415

    lang = lang or current_lang()
    tz = playbook.calendar.timezone
    tl = cs.timeline
    names = [s.name.get(lang) for s in playbook.stages]
    # the outcome (won, lost) and any stage outside the playbook get rows above the SOP stages
    names += sorted({str(s) for s in tl["stage"].dropna() if s} - set(names))
    pos = {n: i for i, n in enumerate(names)}
    fig, ax = plt.subplots(figsize=(8, 3.2))
    handles = []
    moments: list[pd.Timestamp] = []
    if len(tl):
        x = tl["timestamp"].dt.tz_convert(tz).dt.tz_localize(None)
        y = np.array([pos.get(s, -0.5) for s in tl["stage"]])
        dev = (tl["deviation"] != "").to_numpy()
        moments += list(x)
        if (~dev).any():
            ax.scatter(x[~dev], y[~dev], s=18, color="#4a7bb7", zorder=3)
            handles.append(Line2D([], [], linestyle="", marker="o", markersize=5, color="#4a7bb7",
                                  label=t("记录", "event", lang)))
        if dev.any():
            ax.scatter(x[dev], y[dev], s=60, color="#c0392b", marker="X", zorder=4)
            handles.append(Line2D([], [], linestyle="", marker="X", markersize=8, color="#c0392b",
                                  label=t("偏离SOP", "deviation", lang)))
    dues = [d.tz_convert(tz).tz_localize(None) for d in cs.deviations.get("due", pd.Series(dtype=object)).dropna()]
    for due in dues:
        ax.axvline(due, color="#c0392b", alpha=0.4, linestyle="--", zorder=1)
    if dues:
        moments += dues
        handles.append(Line2D([], [], color="#c0392b", alpha=0.4, linestyle="--",
                              label=t("时限截止", "limit due", lang)))
    if moments:
        lo, hi = min(moments), max(moments)
        margin = max((hi - lo) / 20, pd.Timedelta(days=1))
        ax.set_xlim(lo - margin, hi + margin)
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        if lang == "en":
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        else:  # Chinese dates, not English month abbreviations
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
                locator, formats=["%Y年", "%m月", "%m月%d日", "%H:%M", "%H:%M", "%S.%f"],
                zero_formats=["", "%Y年", "%m月", "%m月%d日", "%H:%M", "%H:%M"],
                offset_formats=["", "%Y年", "%Y年%m月", "%Y年%m月%d日", "%Y年%m月%d日", "%Y年%m月%d日 %H:%M"]))
    if handles:  # above the plot, so it never covers a mark
        ax.legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=len(handles),
                  frameon=False)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-1, len(names))
    ax.set_ylabel(t("阶段", "stage", lang))
    ax.set_xlabel(t(f"时间（{zone_name(tz, 'zh-CN')}）", f"time ({zone_name(tz, 'en')})", lang))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------- report

def _png(chart: bytes) -> str:
    """Return PNG bytes as the base64 text of a ``data:image/png`` URI."""
    return base64.b64encode(chart).decode("ascii")


#: The columns the report's tables show (the review app shows the same, its funnel without ``advanced``).
FUNNEL_SHOWN = ["name", "reached", "open_here", "lost_here", "advanced", "conversion", "ci_low", "ci_high", "observed"]
#: (the clause by its title, its source in words: :func:`sopcoach.labels.source_label`)
CHECKS_SHOWN = ["rule", "clause_title", "source", "status", "instances", "breaches", "pending", "reason", "inferred"]
FINDINGS_SHOWN = ["rule", "owner", "clause_title", "source", "expected", "actual"]  # indexed by deal_id
TIMELINE_SHOWN = ["stage", "what", "deviation"]  # indexed by local_time
QUALITY_SHOWN = ["status", "count", "message", "examples"]


#: the per-rep columns of the pipeline section (:func:`sopcoach.analytics.pipeline.pipeline_report`)
PIPELINE_REPS_SHOWN = ["won", "lost", "open", "win_rate", "win_rate_target", "win_rate_vs_target", "cycle_mean",
                       "cycle_target", "cycle_vs_target", "amount_won"]
#: the columns of the time-in-stage table (:func:`sopcoach.analytics.pipeline.time_in_stage`)
TIME_IN_STAGE_SHOWN = ["deals", "working_days_median", "working_days_mean", "calendar_days_median",
                       "calendar_days_mean", "hours_median", "working_days_median_change"]


def inferred_legend(funnel: pd.DataFrame, lang: str | None = None) -> str:
    """Explain the stages marked * in a funnel: never recorded by the export, inferred ("" when none is).

    A stage the export never records (``observed`` False) is reached by inference from a later
    stage or a won deal, so its conversion reads 100% by construction, not by measurement.
    """
    if "observed" not in funnel.columns or bool(funnel["observed"].iloc[:-1].all()):
        return ""
    return t("* 导出从未记录该阶段：商机是否到达由之后的阶段或赢单推断，所以其转化率按定义为 100%，并非实测。",
             "* a stage the export never records: reaching it is inferred from a later stage or a won deal, "
             "so its conversion is 100% by construction, not measured.", lang)


def funnel_people(rv: Review) -> Table:
    """The funnel table as people read it: stage names (``*`` when inferred), labels, percentages."""
    f = rv.funnel.copy()
    star = ~f["observed"].astype(bool)
    star.iloc[-1] = False  # the last stage has no conversion to explain
    f.index = pd.Index([f"{n} *" if s else str(n) for n, s in zip(f["name"], star)], name="stage")
    return people_table(f, [c for c in FUNNEL_SHOWN if c != "name"], lang=rv.lang)


def missing_fields_html(compliance: Any, lang: str | None = None) -> str:
    """Return the CRM fields the checks that cannot run wait for, each said once (``Compliance.missing``):
    the field and how to supply it in a manager's words, the rules waiting for it, and, folded, what the
    import mapping needs. "" when no check waits for a field."""
    rows = list(compliance.missing.itertuples())
    return str(_macro("missing_fields")(rows, functools.partial(t, lang=lang or current_lang())))


def trend_people(rv: Review) -> Table:
    """The monthly trend as people read it; the win rate's change says "no data last month" where the
    calendar month before has no row (never a change from a month the export does not cover)."""
    from .kpis import previous_month_values  # noqa: PLC0415 - the trend needs the CRM reader; the trainer pages do not
    from .pipeline import NO_DATA_LAST_MONTH  # noqa: PLC0415 - as above
    tr = rv.trend.copy()
    points = unit_format("points", rv.lang)
    if "win_rate" in tr.columns and len(tr):
        no_prev = previous_month_values(pd.Series(1.0, index=tr.index)).isna().to_numpy()
        tr["win_rate_change"] = [t(*NO_DATA_LAST_MONTH, rv.lang) if gone else points(v)
                                 for gone, v in zip(no_prev, tr["win_rate_change"])]
    return people_table(tr, lang=rv.lang, currency=rv.currency, formats={"win_rate_change": str})


def _pipeline_tables(pr: PipelineReport) -> dict[str, Any]:
    """The pipeline section's tables, headers in the report's language, amounts with the currency."""
    from .pipeline import pipeline_note, shown_figures  # noqa: PLC0415 - the pipeline needs the CRM reader; the trainer pages do not
    lang, cur = pr.lang, pr.currency
    by_stage = pr.by_stage.set_index("name")
    by_stage.index.name = "stage"
    tis = pr.time_in_stage.set_index("name") if len(pr.time_in_stage) else pr.time_in_stage
    tis.index.name = "stage"
    tables = {"figures": people_table(shown_figures(pr), lang=lang),
              "by_stage": people_table(by_stage, ["deals", "with_amount", "amount", "weighted"], lang=lang,
                                       currency=cur),
              "time_in_stage": people_table(tis, TIME_IN_STAGE_SHOWN, lang=lang),
              "lost": people_table(pr.lost_reasons, lang=lang, currency=cur)}
    if len(pr.reps):
        tables["reps"] = people_table(pr.reps, PIPELINE_REPS_SHOWN, lang=lang, currency=cur, max_rows=50)
    return {"note": pipeline_note(pr), "tables": tables, "by_stage_gap": gap_of(pr.by_stage),
            "reps_gap": gap_of(pr.reps) if len(pr.reps) else "", "lost_gap": pr.lost_reasons_gap,
            "has_lost": len(pr.lost_reasons) > 0, "time_gap": gap_of(pr.time_in_stage),
            # a table with no figure at all is left out (its reason says why)
            "time_blank": bool(len(pr.time_in_stage) == 0 or pr.time_in_stage["deals"].isna().all()),
            "time_note": time_in_stage_note(pr)}


def pipeline_html(pr: PipelineReport) -> str:
    """Return the month's pipeline section as an HTML fragment (the review app's pipeline tab; the report's section)."""
    return str(_macro("pipeline_section")(_pipeline_tables(pr), functools.partial(t, lang=pr.lang)))


def time_in_stage_note(pr: PipelineReport) -> str:
    """Say what the time-in-stage table counts and in which units."""
    return t(f"{pr.month} 离开各阶段的商机在该阶段停留的时间（每个商机一次，多次停留相加）：工作日按公司日历"
             "（不含周末和节假日），自然日按公司时区，小时为实际经过的小时；数据来自阶段变更历史，"
             "没有变更记录的商机以关闭日期结束最后一个阶段。",
             f"How long the deals that left a stage in {pr.month} had been in it (one figure per deal, its stays "
             "added up): working days by the company calendar (weekends and holidays excluded), calendar days in "
             "the company's time zone, hours as they elapsed; from the stage history, where a deal without "
             "recorded changes ends its last stage at its close date.", pr.lang)


def as_of_words(rv: Review) -> str:
    """The moment compliance is judged at, as people read it: ``2026-03-31 16:00（北京时间）`` in the
    playbook's time zone (:func:`sopcoach.i18n.local_time`, :func:`sopcoach.i18n.zone_name`); "—" without a date."""
    moment = rv.compliance.as_of
    if moment is None or pd.isna(moment):
        return "—"
    when = local_time(pd.Timestamp(moment).to_pydatetime(), rv.timezone)
    return t(f"{when}（{zone_name(rv.timezone, 'zh-CN')}）", f"{when} ({zone_name(rv.timezone, 'en')})", rv.lang)


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
    from ..labels import column_label, source_name  # noqa: PLC0415 - labels loads zoneinfo; the report's callers all have it
    lang, cur = rv.lang, rv.currency
    findings = rv.compliance.findings.set_index("deal_id")[FINDINGS_SHOWN]
    drawn = charts_with_data(rv)
    charts = {name: _png(draw(rv)) for name, draw in (("funnel", chart_funnel), ("cycle", chart_cycle),
                                                       ("trend", chart_trend)) if drawn[name]}
    tables = {
        "funnel": funnel_people(rv),
        "trend": trend_people(rv),
        "checks": people_table(rv.compliance.checks, CHECKS_SHOWN, lang=lang, index=False),
        "findings": people_table(findings, lang=lang),
        "by": {column_label(g, lang): people_table(df, lang=lang, currency=cur, max_rows=50) for g, df in rv.by.items()},
        "quality": people_table(rv.quality.summary, QUALITY_SHOWN, lang=lang, index=False),
    }
    if case is not None and playbook is not None:
        charts["timeline"] = _png(chart_timeline(case, playbook, lang))
        tables["timeline"] = people_table(case.timeline.set_index("local_time"), TIMELINE_SHOWN, lang=lang,
                                          labels={"local_time": column_label("local_time", lang, case.timezone)})
    else:
        case = None
    page = TEMPLATES.get_template("report.html").render(
        rv=rv, case=case, t=functools.partial(t, lang=lang), month=rv.month or t("全部月份", "all months", lang),
        as_of=as_of_words(rv), source=source_name(rv.source, lang), note=populations_note(rv), cards=kpi_cards(rv),
        charts=charts, tables=tables, findings=len(findings), summary=rv.compliance.summary(lang),
        problem_summary=Markup(problem_summary_html(rv.problems, lang)),
        missing_fields=Markup(missing_fields_html(rv.compliance, lang)),
        gaps={"funnel": gap_of(rv.funnel), "trend": gap_of(rv.trend),
              "by": {column_label(g, lang): gap_of(df) for g, df in rv.by.items()}},
        legend=inferred_legend(rv.funnel, lang),
        deviations=list(case.deviations.itertuples()) if case is not None else [],
        pipeline=_pipeline_tables(pipeline) if pipeline is not None else None)
    return page if lang == "en" else zh_html(page)  # full-width punctuation next to Chinese, as on the page
