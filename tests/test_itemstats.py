"""Item analysis (:mod:`sopcoach.certification.itemstats`) against values worked by hand.

The fixed matrix: six people, four one-point questions, everyone sees them in the order A B C D::

         A  B  C  D | total
    P1   1  1  1  1 |  4
    P2   1  1  1  0 |  3
    P3   1  1  0  1 |  3
    P4   1  0  1  0 |  2
    P5   1  0  0  0 |  1
    P6   0  1  0  0 |  1

Worked by hand (fractions exact; s = 6, every variance with s - 1 = 5):

question A: x = 1 1 1 1 1 0, mean 5/6 -> facility 5/6. Sum of squared deviations 5(1/6)^2 + (5/6)^2 =
5/6, var 1/6, SD 0.408248. Rest of test 3 2 2 1 0 1, mean 3/2, sum of squares 5.5, var 1.1.
Co-deviation sum (1/6)(1.5+0.5+0.5-0.5-1.5) + (-5/6)(-0.5) = 1/12 + 5/12 = 1/2, cov 1/10.
D = 0.1 / sqrt(1/6 * 1.1) = 0.233550. Sorted x 0 1 1 1 1 1 against sorted rest 0 1 1 2 2 3:
(-5/6)(-1.5) + (1/6)(-0.5-0.5+0.5+0.5+1.5) = 1.25 + 0.25 = 1.5, cov_max 0.3, E = 1/3.

question B: x = 1 1 1 0 0 1, mean 2/3, sum of squares 4/3, var 4/15, SD 0.516398. Rest 3 2 2 2 1 0,
mean 5/3, sum of squares 48/9, var 16/15. Co-deviations (1/3)(4/3+1/3+1/3-5/3) + (-2/3)(1/3-2/3) =
1/9 + 2/9 = 1/3, cov 1/15. D = (1/15) / sqrt(4/15 * 16/15) = 1/8. Sorted: (-2/3)(-5/3) + (-2/3)(-2/3)
+ (1/3)(1/3+1/3+1/3+4/3) = 10/9 + 4/9 + 7/9 = 7/3, cov_max 7/15, E = 1/7 = 14.3% < 15%: flagged.

question C: x = 1 1 0 1 0 0, mean 1/2, var 3/10, SD 0.547723. Rest 3 2 3 1 1 1, mean 11/6, sum of
squares 29/6, var 29/30. Co-deviations (1/2)(7/6+1/6-5/6) + (-1/2)(7/6-5/6-5/6) = 1/4 + 1/4, cov 1/10.
D = 0.1 / sqrt(0.29) = 0.185695. Sorted: (-1/2)(-15/6) + (1/2)(15/6) = 5/2, cov_max 1/2, E = 1/5.

question D: x = 1 0 1 0 0 0, mean 1/3, var 4/15, SD 0.516398. Rest 3 3 2 2 1 1, mean 2, var 4/5.
Co-deviations (2/3)(1+0) + (-1/3)(1+0-1-1) = 1, cov 1/5. D = 0.2 / sqrt(16/75) = 0.433013. Sorted:
(-1/3)(-1-1+0+0) + (2/3)(1+1) = 2, cov_max 2/5, E = 1/2.

test (percent = 25 x points): totals 4 3 3 2 1 1, mean 7/3 -> 58.3333%; median (2+3)/2 -> 62.5%;
sum of squares 22/3, var 22/15, SD 1.211060 -> 30.2765%. Alpha = 4/3 (1 - (1/6+4/15+3/10+4/15) /
(22/15)) = 4/3 (1 - 15/22) = 14/33 = 0.424242; KR-20 with p q: 4/3 (1 - (30/36) / (11/9)) = 14/33
as well. Error ratio sqrt(19/33) = 0.758787; SEM^2 = 19/33 * 22/15 = 38/45 points^2 -> SEM
0.918937 points = 22.9734%. Skewness: m2 = 11/9, m3 = 2/27, k2 = 22/15, k3 = 36 (2/27) / 20 = 2/15,
skew = (2/15) / (22/15)^1.5 = 0.075066. Kurtosis: m4 = 65/27, k4 = 36 (7 * 65/27 - 15 * 121/81) / 60
= -10/3, kurt = (-10/3) / (22/15)^2 = -1.549587.

cut at 50% (2 points): pass rate 4/6. Within one SEM (22.97 points of percent) of 50: only P4 -> 1/6.
Livingston K2 = (28/45 + 1/9) / (22/15 + 1/9) = 33/71 = 0.464789. Halves: odd positions (A, C) give
100 100 50 100 50 0, even positions (B, D) 100 50 100 0 0 50; pass at 50: T T T T T F and T T T F F T;
agreement 3/6; chance 5/6 * 4/6 + 1/6 * 2/6 = 11/18; kappa (1/2 - 11/18) / (7/18) = -2/7.

clauses (A: c1, B: c1 c2, C: c2, D: c3): c3 missed 1 - 2/6 = 2/3; c2 1 - 7/12 = 5/12; c1 1 - 9/12 = 1/4.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from sopcoach.certification.itemstats import (MIN_N, analyse, clause_summary, cut_consistency, discrimination_word,
                                              exam_statistics, flags_of, item_statistics, item_table, load_responses,
                                              responses_from_matrix, verdict)

MATRIX = pd.DataFrame({"A": [1, 1, 1, 1, 1, 0], "B": [1, 1, 1, 0, 0, 1], "C": [1, 1, 0, 1, 0, 0],
                       "D": [1, 0, 1, 0, 0, 0]}, index=[f"P{i}" for i in range(1, 7)], dtype=float)
POINTS = pd.Series(1.0, index=MATRIX.columns)
GUESS = pd.Series({"A": 0.25, "B": 0.5, "C": float("nan"), "D": 0.5})


@pytest.fixture
def items():
    return item_statistics(MATRIX, POINTS, GUESS)


@pytest.fixture
def responses():
    return responses_from_matrix(MATRIX, POINTS, 0.5)


@pytest.fixture
def test_figures(responses):
    return exam_statistics(responses.totals, responses.slots)


def test_facility_index_is_the_mean_score_fraction(items):
    """Facility is 5/6, 4/6, 3/6 and 2/6."""
    assert items["facility"].tolist() == pytest.approx([5 / 6, 4 / 6, 3 / 6, 2 / 6], abs=1e-12)


def test_item_standard_deviation_uses_s_minus_one(items):
    """Item SDs are sqrt(1/6), sqrt(4/15), sqrt(3/10), sqrt(4/15)."""
    expected = [math.sqrt(1 / 6), math.sqrt(4 / 15), math.sqrt(3 / 10), math.sqrt(4 / 15)]
    assert items["sd"].tolist() == pytest.approx(expected, abs=1e-12)
    assert items.loc["A", "sd"] == pytest.approx(0.408248, abs=1e-6)


def test_discrimination_index_correlates_item_with_rest_of_test(items):
    """Discrimination is 0.233550, 1/8, 0.185695 and 0.433013."""
    assert items["discrimination"].tolist() == pytest.approx([0.233550, 0.125, 0.185695, 0.433013], abs=1e-6)
    assert items.loc["D", "discrimination"] == pytest.approx(0.2 / math.sqrt(16 / 75), abs=1e-12)


def test_discriminative_efficiency_divides_by_the_sorted_covariance(items):
    """Efficiency is 1/3, 1/7, 1/5 and 1/2."""
    assert items["efficiency"].tolist() == pytest.approx([1 / 3, 1 / 7, 1 / 5, 1 / 2], abs=1e-12)


def test_no_question_is_judged_from_six_answers(items):
    """B's efficiency (14.3%) and D's facility at the guess would be Moodle flags, but six answers judge nothing:
    every question reads "too few answers (n=6)"."""
    assert items["flags"].map(len).sum() == 0 and not items["judged"].any()
    assert [verdict(f, n, "en") for f, n in zip(items["flags"], items["n"])] == ["too few answers (n=6)"] * 4
    assert verdict([], 6, "zh-CN") == "样本不足 (n=6)"


def test_negative_discrimination_is_flagged_when_its_interval_is_below_zero():
    """A question the weaker people get right and the stronger miss is flagged 'check the key' once 60 people
    answered it (its 95% Fisher interval lies below 0); the same pattern in 6 people is not judged."""
    m = MATRIX.assign(E=[0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    small = item_statistics(m, pd.Series(1.0, index=m.columns))
    assert small.loc["E", "discrimination"] < 0 and small.loc["E", "flags"] == []
    big = pd.concat([m] * 10, ignore_index=True)
    out = item_statistics(big, pd.Series(1.0, index=big.columns))
    assert out.loc["E", "discrimination_high"] < 0
    assert "negative_discrimination" in out.loc["E", "flags"]


def test_facility_flags_need_the_interval_outside_the_band():
    """Too hard: 2 right of 20 (Wilson upper 30.1% < 35%), not 2 of 9 (too few) nor 4 of 20 (upper 41.6%).
    Too easy: all 80 right (lower 95.4% > 95%), not all 60 (lower 94.0%)."""
    def flags(right, n):
        col = pd.DataFrame({"q": [1.0] * right + [0.0] * (n - right)})
        return item_statistics(col, pd.Series({"q": 1.0})).loc["q", "flags"]
    assert flags(2, 20) == ["too_hard"] and flags(2, 9) == [] and flags(4, 20) == []
    assert flags(80, 80) == ["too_easy"] and flags(60, 60) == []


def test_flags_of_states_each_rule():
    """Low discrimination below 0.20, low efficiency only from 30 answers, guessing at the facility's upper end."""
    inside, nan2 = (0.5, 0.8), (float("nan"), float("nan"))
    assert flags_of(40, inside, (0.01, 0.19), 0.5, float("nan")) == ["low_discrimination"]
    assert flags_of(29, inside, nan2, 0.1, float("nan")) == [] and flags_of(30, inside, nan2, 0.1, 0.2) == ["low_efficiency"]
    assert flags_of(30, (0.1, 0.3), nan2, 0.5, 0.3) == ["too_hard", "guessing"]
    assert flags_of(9, (0.0, 0.1), (-0.9, -0.5), 0.0, 0.5) == []


def test_discrimination_reads_as_moodle_words():
    """0.50 very good, 0.30 adequate, 0.20 weak, 0 very weak, below 0 negative."""
    assert [discrimination_word(d, "en") for d in (0.5, 0.3, 0.29, 0.0, -0.01)] == [
        "very good", "adequate", "weak", "very weak", "negative"]


def test_item_table_reads_as_people_read_it():
    """Question text and id, facility as a percent, discrimination with its word, the verdict; labelled columns."""
    from sopcoach.labels import readable
    items = item_statistics(MATRIX, POINTS, GUESS).assign(text=["Who approves?", "B?", "C?", "D?"])
    table = item_table(items, "en")
    assert table.loc[0, ["question", "text", "facility_pct", "discrimination_word", "verdict"]].tolist() == [
        "A", "Who approves?", 83.3, "weak", "too few answers (n=6)"]
    head = list(readable(table, "zh-CN", "Asia/Shanghai").columns)
    assert head[:2] == ["题目编号", "题目"] and "难度指数（得分率 %）" in head and "区分度评价" in head


def test_chart_places_questions_with_their_text_on_hover():
    """The SVG shades the acceptable region and gives each placed point its question's text as a tooltip."""
    from sopcoach.certification.charts import chart_items
    items = item_statistics(MATRIX, POINTS, GUESS).assign(text=["Who approves a 12% discount?", "B?", "C?", "D?"])
    svg = chart_items(items, "en")
    assert svg.startswith("<svg") and svg.count("class=\"sopcoach-item-point\"") == 4
    assert "<title>Who approves a 12% discount? (A) · n=6 · facility 83% · discrimination 0.23 (weak) · too few answers (n=6)</title>" in svg


def test_item_figures_need_their_minimum_sample():
    """One response gives a facility but no SD, discrimination or efficiency."""
    one = item_statistics(MATRIX.head(1), POINTS)
    assert one.loc["A", "n"] == 1 and one.loc["A", "facility"] == 1.0
    assert one[["sd", "discrimination", "efficiency"]].isna().all().all()


def test_items_not_drawn_count_only_where_answered():
    """A question missing (NaN) from an attempt is analysed over the attempts that drew it."""
    m = MATRIX.copy()
    m.loc["P6", "A"] = float("nan")
    out = item_statistics(m, POINTS)
    assert out.loc["A", "n"] == 5 and out.loc["A", "facility"] == 1.0


def test_test_mean_median_and_sd_in_percent(test_figures):
    """Mean 58.3333%, median 62.5%, SD 30.2765%."""
    v = test_figures["value"]
    assert v["mean"] == pytest.approx(175 / 3, abs=1e-9)
    assert v["median"] == pytest.approx(62.5, abs=1e-9)
    assert v["sd"] == pytest.approx(25 * math.sqrt(22 / 15), abs=1e-9)


def test_cronbach_alpha_equals_kr20_on_dichotomous_items(test_figures):
    """Alpha is 14/33, which is KR-20 computed with p*q."""
    p = MATRIX.mean()
    var_total = MATRIX.sum(axis=1).var(ddof=0)
    kr20 = 4 / 3 * (1 - float((p * (1 - p)).sum()) / var_total)
    assert test_figures.loc["alpha", "value"] == pytest.approx(14 / 33, abs=1e-12)
    assert kr20 == pytest.approx(14 / 33, abs=1e-12)


def test_error_ratio_and_standard_error(test_figures):
    """Error ratio sqrt(19/33); SEM sqrt(38/45) points = 22.9734%."""
    assert test_figures.loc["error_ratio", "value"] == pytest.approx(math.sqrt(19 / 33), abs=1e-12)
    assert test_figures.loc["sem", "value"] == pytest.approx(25 * math.sqrt(38 / 45), abs=1e-9)


def test_skewness_and_kurtosis_follow_moodle(test_figures):
    """Skewness 0.075066, kurtosis -1.549587 (Moodle's k-statistics)."""
    assert test_figures.loc["skewness", "value"] == pytest.approx((2 / 15) / (22 / 15) ** 1.5, abs=1e-12)
    assert test_figures.loc["kurtosis", "value"] == pytest.approx(-2250 / 1452, abs=1e-12)


def test_each_test_figure_carries_its_minimum_sample(test_figures):
    """min_n is Moodle's: 1 for mean/median, 2 for SD, 3 for skewness and alpha, 4 for kurtosis."""
    assert test_figures["min_n"].to_dict() == {f: MIN_N[f] if f in MIN_N else 2 for f in test_figures.index}
    two = exam_statistics(pd.Series([100.0, 50.0]), pd.DataFrame({1: [50.0, 25.0], 2: [50.0, 25.0]}))
    assert not math.isnan(two.loc["sd", "value"]) and math.isnan(two.loc["alpha", "value"])


def test_cut_consistency_near_the_cut(responses, test_figures):
    """At a 50% cut: pass rate 4/6, 1/6 within one SEM, K2 33/71, agreement 1/2, kappa -2/7."""
    c = cut_consistency(responses.totals, responses.halves(), 50.0, test_figures.loc["alpha", "value"],
                        test_figures.loc["sd", "value"])
    assert c.pass_rate == pytest.approx(4 / 6)
    assert (c.near_cut, c.near_cut_share) == (1, pytest.approx(1 / 6))
    assert c.livingston_k2 == pytest.approx(33 / 71, abs=1e-12)
    assert c.agreement == pytest.approx(0.5)
    assert c.kappa == pytest.approx(-2 / 7, abs=1e-12)


def test_split_halves_use_odd_and_even_positions(responses):
    """Odd positions (A, C) and even positions (B, D) give the halves worked by hand."""
    odd, even = responses.halves()
    assert odd.tolist() == [100, 100, 50, 100, 50, 0]
    assert even.tolist() == [100, 50, 100, 0, 0, 50]


def test_clause_summary_sorts_most_missed_first():
    """c3 is missed 2/3, c2 5/12, c1 1/4, in that order."""
    out = clause_summary(MATRIX, POINTS, {"A": ["c1"], "B": ["c1", "c2"], "C": ["c2"], "D": ["c3"]},
                         {"c3": ("seed:2.3.1", "authority")})
    assert list(out.index) == ["c3", "c2", "c1"]
    assert out["missed"].tolist() == pytest.approx([2 / 3, 5 / 12, 1 / 4])
    assert out.loc["c3", "source"] == "seed:2.3.1" and out.loc["c2", "responses"] == 12


def test_records_give_the_same_figures_as_the_matrix(records, bank, blueprint, clock):
    """Attempts read from the records reproduce the matrix figures (first attempts only)."""
    from sopcoach.certification.exam import ExamService
    from support import correct_response, wrong_response
    service = ExamService(records, bank, blueprint, "h", "1.0", clock)
    for i, person in enumerate(MATRIX.index):
        records.enroll(person, person)
        aid = service.start_or_resume(person, seed=i)
        qids = records.attempt(aid).question_ids
        for j, qid in enumerate(qids):  # the first four positions follow the matrix; the rest right
            right = MATRIX.iloc[i, j] == 1 if j < 4 else True
            service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)) if right else wrong_response(service.attempt_question(aid, qid)))
        clock.advance(minutes=10)
        service.submit(aid)
    resp = load_responses(records, blueprint.id, 0.9, "first")
    assert len(resp.totals) == 6 and resp.slots.shape[1] == 30
    positions = resp.slots[[1, 2, 3, 4]] * 30 / 100  # back to points
    assert positions.to_numpy().tolist() == MATRIX.to_numpy().tolist()
    out = analyse(resp, bank)
    assert out.test.loc["mean", "value"] == pytest.approx(100 * (26 + 14 / 6) / 30)


def test_a_template_stem_reads_without_placeholders(bank):
    """A template question's row pools its variants: its stem is marked as a template and says "…" where
    each attempt's own value stands, never ``{{kpi_name}}``; a fixed question keeps its stem."""
    from sopcoach.certification.itemstats import question_stem
    templates = [q for q in bank.questions.values() if q.is_template]
    assert templates, "the bank has template questions"
    for q in templates:
        for lang, mark in (("zh-CN", "〔模板题〕"), ("en", "[template] ")):
            stem = question_stem(q, lang)
            assert stem.startswith(mark) and "{{" not in stem and "}}" not in stem
    kpi = next(q for q in templates if "{{kpi_name}}" in q.text.zh_CN)
    assert question_stem(kpi, "zh-CN") == "〔模板题〕" + kpi.text.zh_CN.replace("{{kpi_name}}", "…")
    fixed = next(q for q in bank.questions.values() if not q.is_template)
    assert question_stem(fixed, "en") == fixed.text.en
