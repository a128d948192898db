"""Item analysis of the certification exam, with Moodle's quiz statistics as the reference.

Definitions (Moodle, ``question/classes/statistics/questions/calculator.php`` and
``mod/quiz/report/statistics/classes/calculator.php``; docs "Quiz statistics calculations"). For a
question ``p`` answered in ``s`` attempts, ``x_p(i)`` is the mark attempt ``i`` earned on it (points),
``X(i)`` the attempt's total and ``X_p(i) = X(i) - x_p(i)`` the rest of the test:

facility index
    ``F = mean(x_p) / max mark``: the mean score fraction (needs ``s >= 1``).
standard deviation
    ``SD = sd(x_p) / max mark``, with the ``s - 1`` denominator (``s >= 2``).
discrimination index
    ``D = cov(x_p, X_p) / sqrt(var(x_p) var(X_p))``: the Pearson correlation of the item with the
    rest of the test (``s >= 2`` and both variances non-zero). Moodle shows it times 100.
discriminative efficiency
    ``E = cov(x_p, X_p) / cov_max``, where ``cov_max`` pairs the item marks and the rest-of-test
    marks both sorted ascending (the largest covariance those two sets of marks allow); ``s >= 2``
    and ``cov_max != 0``. Moodle's report marks a question whose efficiency is below 15% as
    needing checking.

Test statistics are on the percentage scale (each attempt's score as a percent of its points, as
Moodle shows them): mean (``s >= 1``), median (``s >= 1``), standard deviation (``s >= 2``),
skewness (``s >= 3``), kurtosis (``s >= 4``), and Cronbach's alpha, Moodle's "coefficient of
internal consistency" ``alpha = k/(k-1) (1 - sum var(slot_j) / var(X))`` over the ``k`` positions
of the exam (``s >= 3``, ``k >= 2``, as Moodle computes it only with the skewness). With
dichotomous items (every mark 0 or full) alpha *is* KR-20. Error ratio ``sqrt(1 - alpha)`` and the
standard error of measurement ``SEM = SD sqrt(1 - alpha)`` follow. Because questions are drawn
at random, each attempt holds different questions: as Moodle does for random questions, the
test-level figures use the exam's positions (slot ``j`` is the ``j``-th question shown, whichever
it was) and the question-level figures use each question over the attempts that drew it.

Minimum samples: each figure is reported with ``n`` and the ``min_n`` it needs to be computed at
all (above); below it the value is missing. Figures computed from fewer than
:data:`RECOMMENDED_N` responses (questions) or attempts (test) are marked ``tentative``: with a
random draw of 30 of 96 questions each question is seen in about a third of the attempts, so
question figures stabilise slowly.

Near the cut score. A 90% pass mark makes most questions easy by design, so facility and
discrimination say little about the one decision that matters: pass or fail. :func:`cut_consistency`
reports, with the pass mark ``C`` (percent):

* the SEM and the share of attempts within one SEM of ``C`` (``|X - C| <= SEM``): their pass/fail
  could flip on a retest with one SEM of measurement error;
* Livingston's criterion-referenced reliability ``K2 = (alpha var(X) + (mean - C)^2) /
  (var(X) + (mean - C)^2)``: how reliably the exam places people on either side of ``C``;
* split-half decision consistency: every attempt scored on its odd and on its even positions, each
  half classified pass/fail at ``C``; ``agreement`` is the share classified alike and ``kappa``
  Cohen's kappa (agreement beyond chance). A half is half as long as the exam, so this
  underestimates the full exam's consistency (a conservative figure).

:func:`clause_summary` aggregates by SOP clause: the share of credit missed on the questions that
examine each clause ("the questions on seed:2.3.1 are missed most").

When a question is flagged. A question is judged only from :data:`MIN_FLAG_N` responses on
(sopcoach's rule: below ten answers one lucky or unlucky answer moves the facility by ten points
or more); below it the page says "too few answers (n=3)" and no flag is raised. From there a flag
needs the sample to support it, not just the point estimate:

``too_hard`` / ``too_easy``
    The 95% Wilson score interval of the facility (Wilson 1927, as the monthly review's rates use;
    :func:`sopcoach.analytics.funnel.wilson_interval`, with ``facility x n`` successes, so partial
    credit counts fractionally) lies wholly below or wholly above :data:`FACILITY_BAND`, 35% to 95%.
    The band follows Moodle's reading of the facility index (docs "Quiz report statistics": 35-64%
    "about right for the average student", 95-100% "extremely easy"), widened upwards because a
    90% pass mark (seed:3.3.1) makes easy questions the norm.
``negative_discrimination`` / ``low_discrimination``
    The 95% interval of the discrimination index (Fisher's z transform, ``atanh(D) +- 1.96 /
    sqrt(n - 3)``; needs ``n >= 4``) lies wholly below 0, or wholly below
    :data:`WEAK_DISCRIMINATION` (0.20: Moodle's docs read 0.20-0.29 as weak, below 0.20 as very
    weak discrimination; 0.30-0.49 adequate, 0.50 and above very good, see :func:`discrimination_word`).
``low_efficiency``
    Discriminative efficiency below :data:`DUBIOUS_EFFICIENCY` (Moodle's "needs checking"), from
    :data:`RECOMMENDED_N` responses on (the figure has no interval; below that it is tentative).
``guessing``
    The upper end of the facility's interval at or below the random-guess score.
"""
from __future__ import annotations

import random
import json
from dataclasses import dataclass, field
from datetime import timedelta
from statistics import NormalDist
from typing import Any, TypeGuard
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from ..analytics.funnel import wilson_interval
from ..i18n import t
from ..content.quizbank import FACT
from ..records.models import utcnow

#: Responses (per question) or attempts (per test) below which a figure is marked tentative.
RECOMMENDED_N = 30
#: Moodle's threshold: a question whose discriminative efficiency is below it needs checking.
DUBIOUS_EFFICIENCY = 0.15
#: Responses below which a question is not judged at all (no flag; "too few answers").
MIN_FLAG_N = 10
#: The acceptable facility band (fractions): a question is too hard or too easy only when the 95%
#: interval of its facility lies wholly outside it (see the module docstring for the source).
FACILITY_BAND = (0.35, 0.95)
#: Discrimination below this is weak (Moodle's docs); flagged when the 95% interval lies below it.
WEAK_DISCRIMINATION = 0.20
#: The confidence of the intervals that decide a flag.
CONFIDENCE = 0.95

#: The minimum sample each figure needs to be computed (Moodle's conditions).
MIN_N = {"facility": 1, "sd": 2, "discrimination": 2, "efficiency": 2, "mean": 1, "median": 1,
         "skewness": 3, "kurtosis": 4, "alpha": 3, "error_ratio": 3, "sem": 3}

_LOW, _HIGH = (f"{100 * b:g}%" for b in FACILITY_BAND)
#: Flag -> (zh-CN, en): what the page, the downloads and ``sopcoach itemstats`` say.
FLAG_TEXT = {
    "too_hard": (f"太难：得分率的95%置信区间整体低于{_LOW}", f"too hard: the 95% interval of its facility lies below {_LOW}"),
    "too_easy": (f"太容易：得分率的95%置信区间整体高于{_HIGH}",
                 f"too easy: the 95% interval of its facility lies above {_HIGH}"),
    "negative_discrimination": ("区分度为负（95%置信区间整体低于0）：高分者反而答错，请检查答案和措辞",
                                "negative discrimination (95% interval below 0): stronger candidates do worse; "
                                "check the key and the wording"),
    "low_discrimination": (f"区分度低（95%置信区间整体低于{WEAK_DISCRIMINATION:.2f}）：答对与否和总分关系很弱",
                           f"low discrimination (95% interval below {WEAK_DISCRIMINATION:.2f}): whether it is "
                           "answered right says little about the whole test"),
    "low_efficiency": ("区分效率低于15%（Moodle 的“需检查”标准）",
                       "discriminative efficiency below 15% (Moodle's 'needs checking')"),
    "guessing": ("难度指数不高于随机猜测得分", "facility at or below the random-guess score"),
}

#: Lower bound of each discrimination band -> (zh-CN, en) word, highest first (Moodle's docs).
DISCRIMINATION_WORDS = ((0.50, "很好", "very good"), (0.30, "尚可", "adequate"), (0.20, "偏弱", "weak"),
                        (0.0, "很弱", "very weak"), (-np.inf, "为负", "negative"))


def discrimination_word(d: float, lang: str | None = None) -> str:
    """Return the word Moodle's docs give a discrimination index ``d`` (-1 to 1); ``""`` when missing.

    >>> discrimination_word(0.42, "en"), discrimination_word(-0.1, "zh-CN"), discrimination_word(float("nan"))
    ('adequate', '为负', '')
    """
    if d != d:
        return ""
    return next(t(zh, en, lang) for low, zh, en in DISCRIMINATION_WORDS if d >= low)


def correlation_interval(r: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Return the interval of a correlation ``r`` over ``n`` pairs by Fisher's z transform (NaN when ``n < 4``).

    >>> lo, hi = correlation_interval(0.5, 30)
    >>> round(lo, 3), round(hi, 3)
    (0.17, 0.729)
    """
    if n < 4 or r != r:
        return np.nan, np.nan
    z = np.arctanh(np.clip(r, -0.999999, 0.999999))
    half = NormalDist().inv_cdf(0.5 + confidence / 2) / np.sqrt(n - 3)
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def sample_note(n: int, lang: str | None = None) -> str:
    """Return what the page says of a question with too few answers to judge (``""`` from :data:`MIN_FLAG_N` on).

    >>> sample_note(3, "zh-CN"), sample_note(3, "en"), sample_note(12, "en")
    ('样本不足 (n=3)', 'too few answers (n=3)', '')
    """
    return t(f"样本不足 (n={n})", f"too few answers (n={n})", lang) if n < MIN_FLAG_N else ""


def flags_of(n: int, facility: tuple[float, float], discrimination: tuple[float, float], efficiency: float,
             guess: float) -> list[str]:
    """Return the flags (keys of :data:`FLAG_TEXT`) the sample supports (rules: the module docstring).

    Parameters
    ----------
    n : int
        Responses to the question.
    facility, discrimination : (float, float)
        The 95% intervals of the facility (fractions) and of the discrimination index (NaN: none).
    efficiency, guess : float
        Discriminative efficiency and the random-guess score (fractions; NaN: unknown).
    """
    if n < MIN_FLAG_N:
        return []
    flags = []
    if facility[1] < FACILITY_BAND[0]:
        flags.append("too_hard")
    if facility[0] > FACILITY_BAND[1]:
        flags.append("too_easy")
    if discrimination[1] < 0:
        flags.append("negative_discrimination")
    elif discrimination[1] < WEAK_DISCRIMINATION:
        flags.append("low_discrimination")
    if efficiency < DUBIOUS_EFFICIENCY and n >= RECOMMENDED_N:
        flags.append("low_efficiency")
    if guess == guess and facility[1] <= guess:
        flags.append("guessing")
    return flags


# -- question statistics --------------------------------------------------------------------------
def item_statistics(marks: pd.DataFrame, max_marks: pd.Series, guess: pd.Series | None = None) -> pd.DataFrame:
    """Compute Moodle's question statistics from a response matrix.

    Parameters
    ----------
    marks : DataFrame
        One row per attempt, one column per question: the points earned (float, ``NaN`` where the
        attempt did not draw the question). A row's total is the sum of its marks.
    max_marks : Series
        The points of each question (index: question ids).
    guess : Series, optional
        Random-guess score per question as a fraction (``NaN``: unknown); see :func:`guess_score`.

    Returns
    -------
    DataFrame
        Index: question id; columns ``n`` (int), ``facility``, ``sd``, ``discrimination``,
        ``efficiency`` (float fractions, ``NaN`` when not computable), ``facility_low``,
        ``facility_high`` (its 95% Wilson interval), ``discrimination_low``, ``discrimination_high``
        (its 95% Fisher-z interval, ``NaN`` below 4 responses), ``guess`` (float), ``flags`` (list
        of str, keys of :data:`FLAG_TEXT`, only those the sample supports: see :func:`flags_of`),
        ``judged`` (bool: ``n`` at least :data:`MIN_FLAG_N`), ``tentative`` (bool: ``n`` below
        :data:`RECOMMENDED_N`).

    Examples
    --------
    >>> m = pd.DataFrame({"a": [1, 1, 0], "b": [1, 0, 0]}, dtype=float)
    >>> round(float(item_statistics(m, pd.Series({"a": 1.0, "b": 1.0})).loc["a", "facility"]), 4)
    0.6667
    """
    totals = marks.sum(axis=1, min_count=1)
    rows = []
    for q in marks.columns:
        mask = marks[q].notna().to_numpy()
        x = marks[q].to_numpy(dtype=float)[mask]
        rest = totals.to_numpy(dtype=float)[mask] - x
        s = len(x)
        mx = float(max_marks[q])
        fac = sd = di = de = np.nan
        if s >= 1 and mx:
            fac = x.mean() / mx
        if s >= 2:
            dx, dr = x - x.mean(), rest - rest.mean()
            var_x, var_r = (dx ** 2).sum() / (s - 1), (dr ** 2).sum() / (s - 1)
            cov = (dx * dr).sum() / (s - 1)
            cov_max = ((np.sort(x) - x.mean()) * (np.sort(rest) - rest.mean())).sum() / (s - 1)
            sd = np.sqrt(var_x) / mx if mx else np.nan
            if var_x * var_r > 1e-15:
                di = cov / np.sqrt(var_x * var_r)
            if abs(cov_max) > 1e-15:
                de = cov / cov_max
        g = float(guess[q]) if guess is not None and q in guess.index and pd.notna(guess[q]) else np.nan
        f_ci = wilson_interval(fac * s, s, CONFIDENCE) if s and fac == fac else (np.nan, np.nan)
        d_ci = correlation_interval(di, s)
        rows.append({"question": q, "n": s, "facility": fac, "facility_low": f_ci[0], "facility_high": f_ci[1],
                     "sd": sd, "discrimination": di, "discrimination_low": d_ci[0], "discrimination_high": d_ci[1],
                     "efficiency": de, "guess": g, "flags": flags_of(s, f_ci, d_ci, de, g),
                     "judged": s >= MIN_FLAG_N, "tentative": s < RECOMMENDED_N})
    cols = ["question", "n", "facility", "facility_low", "facility_high", "sd", "discrimination", "discrimination_low",
            "discrimination_high", "efficiency", "guess", "flags", "judged", "tentative"]
    out = pd.DataFrame(rows, columns=cols).set_index("question")
    out["n"] = out["n"].astype("int64")
    return out


def guess_score(question: Any) -> float:
    """Return the expected credit of a random answer, as Moodle estimates it, or ``NaN``.

    Single choice: the mean credit of its options (a template: one key among its options);
    true/false: 0.5; other types: unknown.
    """
    kind = getattr(question, "type", "")
    if kind == "single_choice" and getattr(question, "variant", None) is not None:
        return 1 / len(question.options)
    if kind == "true_false":
        return 0.5
    if kind == "single_choice":
        credits = [1.0 if o.correct else max(0.0, float(o.weight or 0)) for o in question.options]
        return sum(credits) / len(credits)
    return float("nan")


# -- test statistics ------------------------------------------------------------------------------------
def exam_statistics(totals: pd.Series, slots: pd.DataFrame) -> pd.DataFrame:
    """Compute Moodle's test statistics on the percentage scale.

    Parameters
    ----------
    totals : Series
        Each attempt's score in percent (0-100).
    slots : DataFrame
        One row per attempt, one column per position: the percent of the test earned at that
        position (a row sums to the attempt's total).

    Returns
    -------
    DataFrame
        Index: ``mean``, ``median``, ``sd``, ``skewness``, ``kurtosis``, ``alpha``,
        ``error_ratio``, ``sem``; columns ``value`` (float, ``NaN`` below ``min_n``), ``n``,
        ``min_n`` (int), ``unit`` (``percent`` or ``ratio``), ``tentative`` (bool).
    """
    x = totals.to_numpy(dtype=float)
    s = len(x)
    k = slots.shape[1]
    v: dict[str, float] = dict.fromkeys(["mean", "median", "sd", "skewness", "kurtosis", "alpha",
                                         "error_ratio", "sem"], np.nan)
    if s >= 1:
        v["mean"] = x.mean()
        v["median"] = float(np.median(x))
    if s >= 2:
        d = x - x.mean()
        v["sd"] = np.sqrt((d ** 2).sum() / (s - 1))
        if s >= 3:
            m2, m3, m4 = (d ** 2).mean(), (d ** 3).mean(), (d ** 4).mean()
            k2 = s * m2 / (s - 1)
            k3 = s * s * m3 / ((s - 1) * (s - 2))
            if k2 > 1e-15:
                v["skewness"] = k3 / k2 ** 1.5
                if s >= 4:
                    k4 = s * s * ((s + 1) * m4 - 3 * (s - 1) * m2 * m2) / ((s - 1) * (s - 2) * (s - 3))
                    v["kurtosis"] = k4 / (k2 * k2)
                if k >= 2:
                    sum_var = float(slots.var(axis=0, ddof=1).sum())
                    v["alpha"] = k / (k - 1) * (1 - sum_var / k2)
                    if v["alpha"] <= 1:
                        v["error_ratio"] = np.sqrt(1 - v["alpha"])
                        v["sem"] = v["error_ratio"] * v["sd"]
    units = {"skewness": "ratio", "kurtosis": "ratio", "alpha": "ratio", "error_ratio": "ratio"}
    rows = [{"figure": f, "value": val, "n": s, "min_n": MIN_N.get(f, 2), "unit": units.get(f, "percent"),
             "tentative": s < RECOMMENDED_N} for f, val in v.items()]
    return pd.DataFrame(rows).set_index("figure")


@dataclass(frozen=True)
class CutConsistency:
    """How consistently the exam separates pass from fail at the cut (see the module docstring).

    All scores in percent; ``None`` where a figure cannot be computed.
    """

    cut: float
    n: int
    pass_rate: float | None
    sem: float | None
    near_cut: int | None
    near_cut_share: float | None
    livingston_k2: float | None
    agreement: float | None
    kappa: float | None

    def as_frame(self) -> pd.DataFrame:
        """Return the figures as a one-column DataFrame (index: figure name)."""
        return pd.DataFrame({"value": {k: v for k, v in self.__dict__.items()}})


def _known(v: float | None) -> TypeGuard[float]:
    """Return whether a figure is present (neither None nor NaN)."""
    return v is not None and not np.isnan(v)


def cut_consistency(totals: pd.Series, halves: tuple[pd.Series, pd.Series], cut: float,
                    alpha: float | None, sd: float | None) -> CutConsistency:
    """Measure the pass/fail decision's consistency near the cut score ``cut`` (percent).

    Parameters
    ----------
    totals : Series
        Each attempt's score in percent.
    halves : (Series, Series)
        Each attempt's score in percent on its odd and on its even positions.
    cut : float
        The pass mark in percent (pass when the score is at least ``cut``).
    alpha, sd : float or None
        From :func:`exam_statistics`.
    """
    x = totals.to_numpy(dtype=float)
    n = len(x)
    if n == 0:
        return CutConsistency(cut, 0, None, None, None, None, None, None, None)
    sem = sd * np.sqrt(1 - alpha) if _known(alpha) and _known(sd) and alpha <= 1 else None
    near = int((np.abs(x - cut) <= sem + 1e-9).sum()) if sem is not None else None
    k2 = None
    if _known(alpha) and n >= 2:
        var = x.var(ddof=1)
        dev = (x.mean() - cut) ** 2
        k2 = (alpha * var + dev) / (var + dev) if var + dev > 0 else None
    h1 = halves[0].to_numpy(dtype=float) >= cut - 1e-9
    h2 = halves[1].to_numpy(dtype=float) >= cut - 1e-9
    agreement = float((h1 == h2).mean())
    p1, p2 = h1.mean(), h2.mean()
    pe = p1 * p2 + (1 - p1) * (1 - p2)
    kappa = float((agreement - pe) / (1 - pe)) if pe < 1 - 1e-12 else None
    return CutConsistency(cut, n, float((x >= cut - 1e-9).mean()), None if sem is None else float(sem), near,
                          None if near is None else near / n, None if k2 is None else float(k2), agreement, kappa)


# -- clauses --------------------------------------------------------------------------------------------
def clause_summary(marks: pd.DataFrame, max_marks: pd.Series, question_clauses: Mapping[str, Iterable[str]],
                   clause_info: dict[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """Aggregate the responses by SOP clause: which clauses' questions are missed most.

    Parameters
    ----------
    marks, max_marks
        As for :func:`item_statistics`.
    question_clauses : dict
        Question id -> the clause ids it examines (a question counts for each of its clauses).
    clause_info : dict, optional
        Clause id -> ``(source, title)``, e.g. ``("seed:2.3.1", "...")``.

    Returns
    -------
    DataFrame
        Index: clause id, sorted by ``missed`` descending; columns ``source``, ``title`` (str),
        ``questions`` (int: questions answered at least once), ``responses`` (int), ``facility``
        (mean score fraction over the responses), ``missed`` (``1 - facility``).
    """
    acc: dict[str, list[float]] = {}
    for q in marks.columns:
        col = marks[q].dropna()
        if col.empty:
            continue
        for c in question_clauses.get(q, ()):
            a = acc.setdefault(c, [0, 0, 0.0, 0.0])
            a[0] += 1
            a[1] += len(col)
            a[2] += float(col.sum())
            a[3] += float(max_marks[q]) * len(col)
    info = clause_info or {}
    rows = [{"clause": c, "source": info.get(c, ("", ""))[0], "title": info.get(c, ("", ""))[1],
             "questions": a[0], "responses": a[1], "facility": a[2] / a[3] if a[3] else np.nan,
             "missed": 1 - a[2] / a[3] if a[3] else np.nan} for c, a in acc.items()]
    cols = ["clause", "source", "title", "questions", "responses", "facility", "missed"]
    out = pd.DataFrame(rows, columns=cols).set_index("clause")
    return out.sort_values(["missed", "responses"], ascending=[False, False], kind="stable")


# -- from the records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Responses:
    """The response data of closed attempts, ready for the statistics above.

    ``marks`` (attempt x question, points, ``NaN`` = not drawn), ``max_marks`` (points per
    question), ``slots`` and ``slot_max`` (attempt x position, percent of the test earned and
    possible), ``totals`` (percent per attempt), ``attempts`` (index attempt id; columns
    ``learner_id``, ``number``, ``passed``), ``pass_mark`` (fraction). ``variants`` maps each
    template question (see :mod:`sopcoach.certification.variants`) to the number of distinct drawn
    variants among these attempts: a template's figures pool all its variants (one column per
    template id, whatever numbers each attempt drew).
    """

    marks: pd.DataFrame
    max_marks: pd.Series
    slots: pd.DataFrame
    slot_max: pd.DataFrame
    totals: pd.Series
    attempts: pd.DataFrame
    pass_mark: float
    variants: Mapping[str, int] = field(default_factory=dict)

    def halves(self) -> tuple[pd.Series, pd.Series]:
        """Return each attempt's percent score on its odd and on its even positions."""
        odd = [c for c in self.slots.columns if c % 2 == 1]
        even = [c for c in self.slots.columns if c % 2 == 0]

        def pct(cols: list[int]) -> pd.Series:
            return 100 * self.slots[cols].sum(axis=1) / self.slot_max[cols].sum(axis=1)
        return pct(odd), pct(even)


WHICH = ("first", "last", "best", "all")
#: Which attempts -> (zh-CN, en) words.
WHICH_TEXT = {"first": ("每人第一次", "first attempt of each person"), "last": ("每人最后一次", "last attempt of each person"),
              "best": ("每人最高分", "best attempt of each person"), "all": ("全部考试", "all attempts")}


def responses_from_matrix(marks: pd.DataFrame, max_marks: pd.Series, pass_mark: float) -> Responses:
    """Build :class:`Responses` from a complete matrix (every attempt answered every question, in
    column order): the positions are the columns."""
    possible = float(max_marks[marks.columns].sum())
    slots = pd.DataFrame(100 * marks.to_numpy(dtype=float) / possible, index=marks.index,
                         columns=range(1, marks.shape[1] + 1))
    slot_max = pd.DataFrame(np.tile(100 * max_marks[marks.columns].to_numpy(dtype=float) / possible,
                                    (len(marks), 1)), index=marks.index, columns=slots.columns)
    totals = slots.sum(axis=1)
    meta = pd.DataFrame({"learner_id": [str(i) for i in marks.index], "number": 1,
                         "passed": totals >= 100 * pass_mark - 1e-9}, index=marks.index)
    return Responses(marks.astype(float), max_marks.astype(float), slots, slot_max, totals, meta, pass_mark)


def load_responses(records: Any, exam_id: str, pass_mark: float, which: str = "first") -> Responses:
    """Read the closed attempts of ``exam_id`` from the records into :class:`Responses`.

    Parameters
    ----------
    which : {"first", "last", "best", "all"}
        Which attempts of each person: the first (default: free of what earlier attempts taught),
        the last, the best scored, or every attempt.
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {', '.join(WHICH)} (got {which!r})")
    rows = [a for a in records.attempts(exam_id=exam_id) if a.report and a.state in ("scored", "expired")]
    by_person: dict[str, list[Any]] = {}
    for a in rows:
        by_person.setdefault(a.learner_id, []).append(a)
    chosen = []
    for attempts in by_person.values():
        attempts.sort(key=lambda a: a.number)
        if which == "first":
            chosen.append(attempts[0])
        elif which == "last":
            chosen.append(attempts[-1])
        elif which == "best":
            chosen.append(max(attempts, key=lambda a: (a.score_num / a.score_den if a.score_den else 0, -a.number)))
        else:
            chosen.extend(attempts)
    chosen.sort(key=lambda a: a.id)
    mark_rows, slot_rows, max_rows, maxes, meta = {}, {}, {}, {}, {}
    drawn: dict[str, set[str]] = {}
    for a in chosen:
        for qid, params in (getattr(a, "variants", None) or {}).items():
            drawn.setdefault(qid, set()).add(json.dumps(params, sort_keys=True))
        results = a.report["results"]
        possible = sum(r["points"][0] / r["points"][1] for r in results) or 1.0
        mark_rows[a.id] = {r["question_id"]: r["earned"][0] / r["earned"][1] for r in results}
        slot_rows[a.id] = {j: 100 * r["earned"][0] / r["earned"][1] / possible for j, r in enumerate(results, 1)}
        max_rows[a.id] = {j: 100 * r["points"][0] / r["points"][1] / possible for j, r in enumerate(results, 1)}
        for r in results:
            maxes[r["question_id"]] = r["points"][0] / r["points"][1]
        meta[a.id] = {"learner_id": a.learner_id, "number": a.number, "passed": bool(a.passed)}
    marks = pd.DataFrame.from_dict(mark_rows, orient="index", dtype=float)
    slots = pd.DataFrame.from_dict(slot_rows, orient="index", dtype=float)
    slot_max = pd.DataFrame.from_dict(max_rows, orient="index", dtype=float)
    attempts = pd.DataFrame.from_dict(meta, orient="index", columns=["learner_id", "number", "passed"])
    return Responses(marks, pd.Series(maxes, dtype=float), slots, slot_max, slots.sum(axis=1), attempts, pass_mark,
                     {q: len(v) for q, v in drawn.items()})


@dataclass(frozen=True)
class ItemAnalysis:
    """Every figure of the analysis (see the module docstring)."""

    which: str
    attempts: int
    items: pd.DataFrame
    test: pd.DataFrame
    cut: CutConsistency
    clauses: pd.DataFrame


def analyse(responses: Responses, bank: Any = None, playbook: Any = None, which: str = "first",
            lang: str | None = None, sections: Mapping[str, str] | None = None) -> ItemAnalysis:
    """Run every statistic on ``responses``.

    ``bank`` adds the random-guess scores, the question -> clause links and the columns ``text``
    (the question's stem in ``lang``), ``section``, ``clauses`` and ``variants`` to the items;
    ``playbook`` the clause sources and titles (for :func:`clause_summary`); ``sections`` (section
    id -> title, the blueprint's) shows each question's section by its title.
    """
    guess = None
    qclauses: dict[str, list[str]] = {}
    if bank is not None:
        known = [q for q in responses.marks.columns if q in bank.questions]
        guess = pd.Series({q: guess_score(bank[q]) for q in known}, dtype=float)
        qclauses = {q: list(bank[q].clauses) for q in known}
    info = {c.id: (c.source, c.title.get(lang)) for c in playbook.clauses} if playbook is not None else None
    items = item_statistics(responses.marks, responses.max_marks, guess)
    if bank is not None:
        names = sections or {}
        items.insert(0, "section", [names.get(bank[q].section, bank[q].section) if q in bank.questions else ""
                                    for q in items.index])
        items.insert(1, "clauses", [list(bank[q].clauses) if q in bank.questions else [] for q in items.index])
        items.insert(0, "text", [question_stem(bank[q], lang) if q in bank.questions else "" for q in items.index])
        # a template's row pools every variant drawn of it: how many distinct ones (0: a fixed question)
        items["variants"] = pd.Series({q: responses.variants.get(q, 0) for q in items.index}, dtype="int64")
    test = exam_statistics(responses.totals, responses.slots)
    cut = cut_consistency(responses.totals, responses.halves(), 100 * responses.pass_mark,
                          _val(test, "alpha"), _val(test, "sd"))
    clauses = clause_summary(responses.marks, responses.max_marks, qclauses, info)
    return ItemAnalysis(which, len(responses.totals), items, test, cut, clauses)


def question_stem(q: Any, lang: str | None = None) -> str:
    """Return a question's stem in ``lang`` as the item analysis names it.

    A template question's stem has a placeholder per drawn value (``{{kpi_name}}``); its row pools
    every variant, so the stem reads with "…" for each placeholder and is marked as a template:
    ``〔模板题〕按规程的公式，本月的…是百分之多少？``.
    """
    text = q.text.get(lang)
    if not q.is_template:
        return text
    return t("〔模板题〕", "[template] ", lang) + FACT.sub("…", text)


def _val(df: pd.DataFrame, figure: str) -> float | None:
    v = df.loc[figure, "value"]
    return None if pd.isna(v) else float(v)


def item_analysis(records: Any, bank: Any, blueprint: Any, playbook: Any = None, which: str = "first",
                  lang: str | None = None) -> ItemAnalysis:
    """Analyse the certification exam's closed attempts (``which`` of each person)."""
    resp = load_responses(records, blueprint.id, float(blueprint.pass_fraction), which)
    return analyse(resp, bank, playbook, which, lang, {s.id: s.title.get(lang) for s in blueprint.sections})


#: Test figure -> (zh-CN, en) name, as the page and ``sopcoach itemstats`` show it.
FIGURE_TEXT = {"mean": ("平均分", "mean"), "median": ("中位数", "median"), "sd": ("标准差", "standard deviation"),
               "skewness": ("偏度", "skewness"), "kurtosis": ("峰度", "kurtosis"),
               "alpha": ("Cronbach α (二分题即 KR-20)", "Cronbach's alpha (KR-20 for 0/1 items)"),
               "error_ratio": ("误差比", "error ratio"), "sem": ("测量标准误 SEM", "standard error of measurement")}
#: The headers of :func:`figure_table` and :func:`cut_table`: column -> (zh-CN, en).
TABLE_HEADERS = {"figure": ("指标", "figure"), "value": ("数值", "value"), "n": ("n", "n"),
                 "min_n": ("最少样本", "min n"), "note": ("备注", "note")}


def figure_table(test: pd.DataFrame, lang: str | None = None) -> pd.DataFrame:
    """Return :attr:`ItemAnalysis.test` as people read it.

    Returns
    -------
    DataFrame
        One row per figure; columns ``figure`` (its name in ``lang``), ``value`` (text: percents
        as ``72.4%``, ratios with 3 decimals, ``–`` when not computable), ``n``, ``min_n`` (int),
        ``note`` ("tentative" below :data:`RECOMMENDED_N`).
    """
    rows = []
    for fig, r in test.iterrows():
        v = r["value"]
        shown = "–" if v != v else (f"{v:.1f}%" if r["unit"] == "percent" else f"{v:.3f}")
        rows.append({"figure": t(*FIGURE_TEXT[str(fig)], lang), "value": shown, "n": int(r["n"]),
                     "min_n": int(r["min_n"]), "note": t("暂定", "tentative", lang) if r["tentative"] and v == v else ""})
    return pd.DataFrame(rows, columns=["figure", "value", "n", "min_n", "note"])


def cut_table(c: CutConsistency, lang: str | None = None) -> pd.DataFrame:
    """Return the figures of :func:`cut_consistency` as people read them.

    Returns
    -------
    DataFrame
        Columns ``figure`` (name in ``lang``) and ``value`` (text: shares as percents, SEM in
        percentage points, K² and kappa with 3 decimals, ``–`` when not computable).
    """
    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f}%"

    def ratio(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    rows = [
        (t("及格线", "cut score", lang), f"{c.cut:.0f}%"),
        (t("通过率", "pass rate", lang), pct(c.pass_rate)),
        ("SEM", "–" if c.sem is None else f"{c.sem:.1f} " + t("个百分点", "points", lang)),
        (t("距及格线一个 SEM 以内的考试", "attempts within one SEM of the cut", lang),
         "–" if c.near_cut is None else f"{c.near_cut} ({pct(c.near_cut_share)})"),
        (t("Livingston K²（以及格线为准的信度）", "Livingston's K² (reliability at the cut)", lang), ratio(c.livingston_k2)),
        (t("奇偶半卷判定一致率", "split-half (odd/even) decision agreement", lang), pct(c.agreement)),
        (t("Cohen κ（扣除偶然一致）", "Cohen's kappa (beyond chance)", lang), ratio(c.kappa)),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"])


#: The columns of :func:`item_table`, in order (labels: :data:`sopcoach.labels.COLUMNS`).
ITEM_COLUMNS = ["question", "text", "section", "clauses", "n", "facility_pct", "facility_low_pct", "facility_high_pct",
                "discrimination", "discrimination_word", "efficiency_pct", "guess_pct", "verdict", "variants"]


def verdict(flags: list[str], n: int, lang: str | None = None) -> str:
    """Return what is said of a question: its flags' texts joined by "; ", or "too few answers (n=3)".

    >>> verdict([], 3, "en"), verdict(["too_hard"], 40, "en")[:8], verdict([], 40, "en")
    ('too few answers (n=3)', 'too hard', '')
    """
    return sample_note(n, lang) or "; ".join(t(*FLAG_TEXT[f], lang) for f in flags)


def item_table(items: pd.DataFrame, lang: str | None = None) -> pd.DataFrame:
    """Return the per-question figures as people read them (the downloads and ``sopcoach itemstats``).

    Parameters
    ----------
    items : DataFrame
        :attr:`ItemAnalysis.items` (with the bank's columns: see :func:`analyse`).

    Returns
    -------
    DataFrame
        Columns :data:`ITEM_COLUMNS` (code names; :func:`sopcoach.labels.readable` labels them):
        ``question`` (id), ``text`` (the stem in ``lang``), ``section``, ``clauses`` (ids joined
        by spaces), ``n`` (int), ``facility_pct`` and its 95% interval ``facility_low_pct``,
        ``facility_high_pct``, ``efficiency_pct``, ``guess_pct`` (float percents, 1 decimal, NaN
        when missing), ``discrimination`` (float -1 to 1, 3 decimals), ``discrimination_word``
        (:func:`discrimination_word`), ``verdict`` (:func:`verdict`), ``variants`` (int).
    """
    def pct(col: str) -> pd.Series:
        return (100 * items[col].astype(float)).round(1)

    out = pd.DataFrame({
        "question": items.index.astype(str),
        "text": items["text"] if "text" in items else "",
        "section": items["section"] if "section" in items else "",
        "clauses": items["clauses"].map(" ".join) if "clauses" in items else "",
        "n": items["n"], "facility_pct": pct("facility"), "facility_low_pct": pct("facility_low"),
        "facility_high_pct": pct("facility_high"), "discrimination": items["discrimination"].astype(float).round(3),
        "discrimination_word": items["discrimination"].map(lambda d: discrimination_word(d, lang)),
        "efficiency_pct": pct("efficiency"), "guess_pct": pct("guess"),
        "verdict": [verdict(f, n, lang) for f, n in zip(items["flags"], items["n"])],
        "variants": items["variants"] if "variants" in items else 0,
    }, columns=ITEM_COLUMNS)
    return out.reset_index(drop=True)


# -- demo data ------------------------------------------------------------------------------------------
def simulated_response(question: Any, right: bool) -> Any:
    """Return a response that earns full credit (``right``) or none on ``question`` (demo data)."""
    kind = question.type
    if kind == "single_choice":
        return next(o.id for o in question.options if o.correct == right)
    if kind == "multiple_choice":
        return sorted(o.id for o in question.options if o.correct == right)
    if kind == "true_false":
        return question.answer if right else not question.answer
    if kind == "numeric":
        value = question.answer if right else question.answer + question.tolerance + 1000
        return f"{value.normalize():f}"
    if kind == "ordering":
        return [o.id for o in question.items] if right else ([o.id for o in question.distractors] or None)
    return None


def simulate_attempts(service: Any, learners: int = 40, seed: int = 0, start: Any = None,
                      teams: tuple[str, ...] = ("east", "north", "south"),
                      cohorts: tuple[str, ...] = ("2026-01", "2026-02")) -> list[int]:
    """Fill the records with exam attempts of simulated learners (to try the trainer apps).

    Learners ``D001`` ... get an ability and answer each drawn question right with a probability
    that grows with their ability and the question's ease (a Rasch-like model, seeded); failed
    learners take a second attempt after the waiting time. Attempts go through ``service`` (an
    :class:`~sopcoach.certification.exam.ExamService` whose ``clock`` is set here), so they are scored, versioned
    and certified like real ones.

    Returns
    -------
    list of int
        The attempt ids created.
    """

    rng = random.Random(seed)
    now = [start or utcnow() - timedelta(days=60)]
    service.clock = lambda: now[0]
    ease = {qid: rng.gauss(2.2, 1.0) for qid in service.bank.questions}
    ids = []
    for i in range(1, learners + 1):
        lid = f"D{i:03d}"
        service.records.enroll(lid, f"演示学员{i:03d}", team=teams[i % len(teams)], cohort=cohorts[i % len(cohorts)])
        ability = rng.gauss(1.0, 1.2)
        for _attempt in range(2):
            aid = service.start_or_resume(lid, seed=rng.randrange(2**31))
            for qid in service.records.attempt(aid).question_ids:
                p = 1 / (1 + np.exp(-(ability + ease[qid])))
                service.answer(aid, qid, simulated_response(service.attempt_question(aid, qid), rng.random() < p))
            now[0] += timedelta(minutes=rng.randint(12, 40))
            report = service.submit(aid)
            ids.append(aid)
            now[0] += timedelta(hours=float(service.blueprint.wait_between_attempts_hours) + 1)
            if report.passed:
                break
            ability += 0.8
    return ids
