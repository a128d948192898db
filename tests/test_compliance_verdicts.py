"""The scheduled follow-up verdicts, judged all at once, agree with a plain per-instance reading of seed:1.2.1."""
from __future__ import annotations

import random
from datetime import date, timedelta

import pandas as pd
import pytest

from sopcoach.analytics.compliance import scheduled_verdicts


def reference(due_day, end_day, start_day, windows, as_of_day):
    """One instance at a time, as the rule reads: the window of the due day decides, then the call's day."""
    verdicts, days = [], []
    for dd, ed, sd in zip(due_day, end_day, start_day):
        win = windows.get(dd) if pd.notna(dd) else None
        ed = ed if pd.notna(ed) else None
        if win is None:
            verdict = "unchecked"
        elif ed is not None:
            first, last = win
            verdict = ("too_early" if ed < first else "on_time" if ed == dd else
                       "within_tolerance" if ed <= last else "late")
        else:
            verdict = "missing" if as_of_day is not None and as_of_day > win[1] else "pending"
        verdicts.append(verdict)
        days.append((ed - sd).days if ed is not None else None)
    return verdicts, days


D = date(2025, 4, 2)  # due day; the company's window is 03-28 .. 04-08
WINDOWS = {D: (date(2025, 3, 28), date(2025, 4, 8)), date(2025, 4, 3): (date(2025, 4, 3), date(2025, 4, 3)),
           date(2031, 1, 1): None}  # a due day the calendar does not cover
START = date(2025, 3, 3)

EDGES = [  # (due day, call day), every boundary of the window and the missing values
    (D, date(2025, 3, 27)), (D, date(2025, 3, 28)), (D, D), (D, date(2025, 4, 1)), (D, date(2025, 4, 8)),
    (D, date(2025, 4, 9)), (D, None), (date(2025, 4, 3), date(2025, 4, 3)), (date(2025, 4, 3), date(2025, 4, 4)),
    (date(2025, 4, 3), date(2025, 4, 2)), (date(2031, 1, 1), D), (date(2031, 1, 1), None), (None, D), (None, None),
]


def series(values):
    return pd.Series(values, dtype=object)


@pytest.mark.parametrize("as_of_day", [None, date(2025, 4, 3), date(2025, 4, 8), date(2025, 4, 9)])
def test_edge_cases_agree_with_the_per_instance_rule(as_of_day):
    due = series([d for d, _ in EDGES])
    end = series([e for _, e in EDGES])
    start = series([START] * len(EDGES))
    verdict, days, first, last = scheduled_verdicts(due, end, start, WINDOWS, as_of_day)
    want, want_days = reference(due, end, start, WINDOWS, as_of_day)
    assert list(verdict) == want
    assert days == want_days
    assert [(f, l) for f, l in zip(first, last)] == [
        WINDOWS.get(d) or (None, None) if d is not None else (None, None) for d, _ in EDGES]


def test_the_boundaries_give_each_verdict():
    due = series([d for d, _ in EDGES])
    verdict, *_ = scheduled_verdicts(due, series([e for _, e in EDGES]), series([START] * len(EDGES)), WINDOWS,
                                     date(2025, 4, 9))
    assert list(verdict) == ["too_early", "within_tolerance", "on_time", "within_tolerance", "within_tolerance",
                             "late", "missing", "on_time", "late", "too_early", "unchecked", "unchecked",
                             "unchecked", "unchecked"]


def test_random_instances_agree_with_the_per_instance_rule():
    rng = random.Random(7)
    windows = {}
    for k in range(40):
        day = date(2025, 1, 1) + timedelta(days=k)
        windows[day] = None if k % 9 == 0 else (day - timedelta(days=rng.randint(0, 4)),
                                                day + timedelta(days=rng.randint(0, 4)))
    due = [rng.choice([*windows, None]) for _ in range(2_000)]
    end = [None if rng.random() < 0.2 else date(2025, 1, 1) + timedelta(days=rng.randint(-5, 50)) for _ in due]
    start = [date(2024, 12, 1) + timedelta(days=rng.randint(0, 20)) for _ in due]
    for as_of_day in (None, date(2025, 1, 20)):
        verdict, days, _, _ = scheduled_verdicts(series(due), series(end), series(start), windows, as_of_day)
        assert (list(verdict), days) == reference(series(due), series(end), series(start), windows, as_of_day)


def test_no_instances():
    verdict, days, first, last = scheduled_verdicts(series([]), series([]), series([]), {}, None)
    assert (len(verdict), days, len(first), len(last)) == (0, [], 0, 0)
