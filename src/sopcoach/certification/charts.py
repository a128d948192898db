"""Charts of the trainer's results page (PNG bytes, drawn with matplotlib as the monthly review's are).

* :func:`chart_scores`: the distribution of scored attempts' percents with the pass bar (seed:3.3.1,
  90% by default) marked, so a trainer sees how far below the bar the fails fall.
* :func:`chart_pass_rate`: per cohort, the share of all its people who had passed the exam by the
  end of each month since its first attempt (whether the certificate is still current is the
  certificates page's matter).
* :func:`chart_items` (the item-analysis page): each question's facility against its
  discrimination index, the acceptable region shaded, as SVG text whose points carry the question's
  text as a tooltip.
"""
from __future__ import annotations

import io
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from ..analytics.report import _figure_png, _plt, month_ticks
from ..i18n import t
from .itemstats import FACILITY_BAND, WEAK_DISCRIMINATION, discrimination_word, verdict


def chart_scores(attempts: pd.DataFrame, pass_percent: float, lang: str | None = None) -> bytes:
    """Draw a histogram of the closed attempts' percents (5-point bins) with the pass bar; PNG bytes.

    Parameters
    ----------
    attempts : DataFrame
        :func:`~sopcoach.certification.results.attempt_table` rows; those with a ``percent`` are drawn.
    pass_percent : float
        The pass bar in percent (90.0 for the blueprint's 0.9).
    """
    plt = _plt()
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - heavy: matplotlib, loaded by _plt() already
    percents = pd.to_numeric(attempts["percent"], errors="coerce").dropna()
    fig, ax = plt.subplots(figsize=(7, 2.6))
    if len(percents):
        passed = percents >= pass_percent
        bins = np.arange(0, 105, 5)
        ax.hist([percents[~passed], percents[passed]], bins=bins, stacked=True, color=["#c0392b", "#1b7f3b"],
                label=[t("未通过", "failed", lang), t("通过", "passed", lang)])
    else:
        ax.text(0.5, 0.5, t("还没有评分的考试", "no scored attempt yet", lang), ha="center", transform=ax.transAxes)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of attempts
    ax.axvline(pass_percent, color="#23406b", linestyle="--",
               label=t(f"及格线 {pass_percent:g}%", f"pass bar {pass_percent:g}%", lang))
    # the key above the plot, never over a bar or the line
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=3, frameon=False)
    ax.set_xlim(0, 100)
    ax.set_xlabel(t("得分率 %", "score %", lang))
    ax.set_ylabel(t("考试次数", "attempts", lang))
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def pass_rate_by_month(people: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """Return, per cohort (columns) and month (index, ``YYYY-MM`` in ``timezone``), the share 0-1 of the
    cohort's people who had passed the exam by the end of that month (first pass on or before it).

    ``people`` are :func:`~sopcoach.certification.results.person_table` rows (without a date filter:
    everyone enrolled, those who never sat included, so the share is of the whole cohort). Months
    run from the cohort's first attempt to the latest month of any attempt or pass; a cohort nobody
    of which has sat is left out. People without a cohort form the cohort ``""``. An empty frame
    when nobody has sat the exam.

    >>> df = pd.DataFrame({"cohort": ["A", "A", "A", "A"],
    ...                    "last_attempt_at": ["2026-03-02T01:00:00+00:00"] * 2 + ["", ""],
    ...                    "first_passed_at": ["2026-04-01T01:00:00+00:00", "", "", ""]})
    >>> pass_rate_by_month(df, "Asia/Shanghai")["A"].tolist()
    [0.0, 0.25]
    """
    def month(col: pd.Series) -> pd.Series:
        moments = pd.to_datetime(col.where(col != ""), utc=True, errors="coerce")
        return moments.dt.tz_convert(timezone).dt.strftime("%Y-%m")

    cohorts = people["cohort"].fillna("")
    started, passed = month(people["last_attempt_at"]), month(people["first_passed_at"])
    seen = pd.concat([started, passed]).dropna()
    if seen.empty:
        return pd.DataFrame()
    months = list(pd.period_range(seen.min(), seen.max(), freq="M").strftime("%Y-%m"))
    out = {}
    for cohort, group in people.groupby(cohorts):
        mine = pd.concat([started[group.index], passed[group.index]]).dropna()
        if mine.empty:
            continue
        first = mine.min()
        out[cohort] = [(passed[group.index] <= m).sum() / len(group) if m >= first else np.nan for m in months]
    return pd.DataFrame(out, index=months)


def chart_pass_rate(people: pd.DataFrame, timezone: str, lang: str | None = None) -> bytes:
    """Draw :func:`pass_rate_by_month`, one line per cohort, as PNG bytes."""
    plt = _plt()
    rates = pass_rate_by_month(people, timezone)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    if rates.empty:
        ax.text(0.5, 0.5, t("还没有人参加考试", "nobody has sat the exam yet", lang), ha="center", transform=ax.transAxes)
    else:
        x = np.arange(len(rates))
        for cohort in rates.columns:
            ax.plot(x, rates[cohort] * 100, marker="o", label=cohort or t("（无批次）", "(no cohort)", lang))
        month_ticks(ax, x, list(rates.index))
        ax.set_ylim(0, 105)
        # beside the plot: the lines rise to the top right and would run under a key inside it
        ax.legend(fontsize=8, title=t("批次", "cohort", lang), title_fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.01, 1), frameon=False)
        ax.set_xlabel(t("月份（截至月末）", "month (by its end)", lang))
    ax.set_ylabel(t("已通过考试的人员 %", "people who passed %", lang))
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)


def chart_items(items: pd.DataFrame, lang: str | None = None) -> str:
    """Draw each question's facility (x, percent) against its discrimination index (y); SVG text.

    The acceptable region (facility within :data:`~sopcoach.certification.itemstats.FACILITY_BAND`,
    discrimination at least :data:`~sopcoach.certification.itemstats.WEAK_DISCRIMINATION`) is
    shaded green. Flagged questions are red and labelled with their text; questions with too few
    answers to judge (:data:`~sopcoach.certification.itemstats.MIN_FLAG_N`) are hollow grey;
    the rest blue. Hovering a point shows its question text, id, n and figures (an SVG
    ``<title>``), so embed the SVG in the page (not as an ``<img>``). Questions without a
    discrimination index (fewer than two answers, or everyone scored alike) cannot be placed and
    are not drawn.

    Parameters
    ----------
    items : DataFrame
        :attr:`~sopcoach.certification.itemstats.ItemAnalysis.items` (``text`` optional: the id
        stands in for it).

    Returns
    -------
    str
        An ``<svg>`` element (no XML declaration), text drawn as paths (no font needed).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.4))
    lo, hi = (100 * b for b in FACILITY_BAND)
    ax.add_patch(plt.Rectangle((lo, WEAK_DISCRIMINATION), hi - lo, 1 - WEAK_DISCRIMINATION, color="#1b7f3b", alpha=0.10,
                               label=t("可接受范围", "acceptable region", lang)))
    ax.axhline(0, color="#999999", linewidth=0.8)
    placed = items[items["discrimination"].notna()]
    tips = {}
    for i, (qid, r) in enumerate(placed.iterrows()):
        text = str(r.get("text") or qid)
        judged, flagged = bool(r["judged"]), bool(r["flags"])
        style = (dict(color="#c0392b", s=36) if flagged else dict(color="#4a7bb7", s=28) if judged else
                 dict(facecolors="none", edgecolors="#888888", s=28))
        x, y = 100 * float(r["facility"]), float(r["discrimination"])
        ax.scatter([x], [y], gid=f"sopcoach-item-{i}", zorder=3, **style)
        if flagged:
            ax.annotate(shorten(text, 18), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, color="#b3261e")
        note = verdict(list(r["flags"]), int(r["n"]), lang)
        tips[f"sopcoach-item-{i}"] = (f"{text} ({qid}) · n={int(r['n'])} · " + t("难度指数", "facility", lang)
                                      + f" {x:.0f}% · " + t("区分度", "discrimination", lang)
                                      + f" {y:.2f} ({discrimination_word(y, lang)})" + (f" · {note}" if note else ""))
    ax.set_xlim(-2, 103)  # a point at 0% or 100% is drawn whole
    ax.set_ylim(min(-0.3, *(placed["discrimination"] - 0.06)) if len(placed) else -0.3, 1.08)
    ax.set_xlabel(t("难度指数（得分率 %，越高越容易）", "facility (score %, higher is easier)", lang))
    ax.set_ylabel(t("区分度（-1 至 1）", "discrimination (-1 to 1)", lang))
    if placed.empty:
        ax.text(0.5, 0.5, t("没有可计算区分度的题目", "no question has a discrimination index yet", lang),
                ha="center", transform=ax.transAxes)
    for label, look in ((t("需检查", "needs checking", lang), {"color": "#c0392b"}),
                        (t("无提示", "no flag", lang), {"color": "#4a7bb7"}),
                        (t("样本不足", "too few answers", lang), {"facecolors": "none", "edgecolors": "#888888"})):
        ax.scatter([], [], s=28, label=label, **look)  # legend entries only
    ax.legend(fontsize=8, loc="lower left", ncols=2)
    ax.spines[["top", "right"]].set_visible(False)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    for gid, tip in tips.items():
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}" class="sopcoach-item-point"><title>{escape(tip)}</title>', 1)
    return svg


def shorten(text: str, limit: int) -> str:
    """Return ``text`` cut to at most ``limit`` characters, an ellipsis last (at a space when one is near the end).

    >>> shorten("按规程,谁负责方案演示?", 8), shorten("Who gives the product demo?", 20)
    ('按规程,谁负责…', 'Who gives the…')
    """
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space >= limit // 2 else cut).rstrip(" ,，、") + "…"
