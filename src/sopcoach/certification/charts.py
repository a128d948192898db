"""Charts of the trainer's results page (PNG bytes, drawn with matplotlib as the monthly review's are).

* :func:`chart_scores`: the distribution of scored attempts' percents with the pass bar (seed:3.3.1,
  90% by default) marked, so a trainer sees how far below the bar the fails fall.
* :func:`chart_pass_rate`: per cohort, the share of all its people who had passed the exam by the
  end of each month since its first attempt (whether the certificate is still current is the
  certificates page's matter).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analytics.report import _figure_png, _plt
from ..i18n import t


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
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.5, 0.5, t("还没有评分的考试", "no scored attempt yet", lang), ha="center", transform=ax.transAxes)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of attempts
    ax.axvline(pass_percent, color="#23406b", linestyle="--")
    ax.text(pass_percent, ax.get_ylim()[1] * 0.95, t(f"及格线 {pass_percent:g}% ", f"pass bar {pass_percent:g}% ", lang),
            fontsize=8, va="top", ha="right", color="#23406b")
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
        ax.set_xticks(x, rates.index, fontsize=8)
        ax.set_ylim(0, 105)
        ax.legend(fontsize=8, title=t("批次", "cohort", lang), title_fontsize=8)
    ax.set_ylabel(t("已通过考试的人员 %", "people who passed %", lang))
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_png(fig)
