"""Tests for sopcoach.content.businesstime: working days, business hours, holidays, DST (shared cases 25, 28)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
import yaml

from sopcoach.content.businesstime import (
    BusinessCalendar,
    BusinessTimeError,
    CalendarRangeError,
    Duration,
    DurationUnit,
    NaiveDatetimeError,
    NonexistentLocalTime,
)
from sopcoach.errors import SopcoachError

CASES = Path(__file__).resolve().parents[2] / "shared" / "cases" / "inputs"
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")
WD, CD = DurationUnit.WORKING_DAYS, DurationUnit.CALENDAR_DAYS
EH, BH = DurationUnit.ELAPSED_HOURS, DurationUnit.BUSINESS_HOURS


def load_case(name: str) -> dict:
    """Read a shared case input with the plain YAML loader the case was written for."""
    return yaml.safe_load((CASES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def china() -> BusinessCalendar:
    return BusinessCalendar.china()


@pytest.fixture(scope="module")
def case25() -> dict:
    return load_case("25_sla_holidays_england.yaml")


@pytest.fixture(scope="module")
def case28() -> dict:
    return load_case("28_sla_dst.yaml")


@pytest.fixture(scope="module")
def berlin(case28) -> BusinessCalendar:
    hours = case28["business_hours"]
    return BusinessCalendar(case28["timezone"], day_start=time.fromisoformat(hours["start"]),
                            day_end=time.fromisoformat(hours["end"]))


def england_calendar(case25: dict, holidays=None) -> BusinessCalendar:
    cal = case25["calendar"]
    return BusinessCalendar("Europe/London", weekend=frozenset(WEEKDAYS.index(d) for d in cal["weekend"]),
                            holidays=frozenset(cal["holidays"] if holidays is None else holidays))


def sla(case: dict, name: str) -> Duration:
    ((key, value),) = case["sla"][name].items()
    return Duration(value, WD if key == "business_days" else DurationUnit(key))


def china_time(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


# ---------------------------------------------------------------- shared case 25 (England, Easter)


def test_case25_five_working_days_skip_good_friday_and_easter_monday(case25):
    """Five working days from Mon 2023-04-03 09:00 with both Easter holidays fall due Wed 2023-04-12 09:00."""
    due = england_calendar(case25).add(datetime(2023, 4, 3, 9, 0, tzinfo=LONDON), sla(case25, "first_quote"))
    assert due.isoformat() == "2023-04-12T09:00:00+01:00"


def test_case25_missing_easter_monday_gives_the_wrong_day(case25):
    """Without the England-only Easter Monday the due date moves to 04-11, so the regional list matters."""
    cal = england_calendar(case25, holidays=[date(2023, 4, 7)])
    due = cal.add(datetime(2023, 4, 3, 9, 0, tzinfo=LONDON), sla(case25, "first_quote"))
    assert due.date() == date(2023, 4, 11)


# ---------------------------------------------------------------- shared case 28 (Berlin, DST)


def test_case28_one_calendar_day_across_spring_dst_is_23_hours(berlin, case28):
    """One calendar day from Sat 2024-03-30 10:00 Berlin is 2024-03-31 10:00+02:00, 23 real hours later."""
    start = berlin.check_local(datetime(2024, 3, 30, 10, 0))
    due = berlin.add(start, sla(case28, "callback_calendar"))
    assert due.isoformat() == "2024-03-31T10:00:00+02:00"
    assert berlin.elapsed(start, due, EH) == 23


def test_case28_24_elapsed_hours_across_spring_dst(berlin, case28):
    """24 elapsed hours from Sat 2024-03-30 10:00 Berlin is 2024-03-31 11:00+02:00."""
    start = berlin.check_local(datetime(2024, 3, 30, 10, 0))
    assert berlin.add(start, sla(case28, "callback_hours")).isoformat() == "2024-03-31T11:00:00+02:00"


def test_case28_business_hours_across_autumn_dst_use_local_wall_time(berlin, case28):
    """Four business hours (09-17) from Fri 2024-10-25 15:00 Berlin fall due Mon 2024-10-28 11:00+01:00."""
    start = berlin.check_local(datetime(2024, 10, 25, 15, 0))
    assert berlin.add(start, sla(case28, "first_response")).isoformat() == "2024-10-28T11:00:00+01:00"


def test_case28_nonexistent_local_time_is_flagged(berlin):
    """A CRM wall time of 2024-03-31 02:30 in Berlin (skipped by DST) raises instead of being shifted."""
    with pytest.raises(NonexistentLocalTime, match=r"2024-03-31 02:30:00 does not exist in Europe/Berlin"):
        berlin.check_local(datetime(2024, 3, 31, 2, 30))


def test_nonexistent_local_time_is_a_sopcoach_error(berlin):
    """NonexistentLocalTime belongs to the sopcoach error tree."""
    with pytest.raises(SopcoachError):
        berlin.check_local(datetime(2024, 3, 31, 2, 30))


def test_ambiguous_local_time_takes_first_occurrence(berlin):
    """The repeated wall time 2024-10-27 02:30 in Berlin is reported ambiguous and read as its first (+02:00) occurrence."""
    naive = datetime(2024, 10, 27, 2, 30)
    assert berlin.is_ambiguous(naive)
    assert berlin.check_local(naive).isoformat() == "2024-10-27T02:30:00+02:00"


def test_ambiguous_local_time_with_fold_1_takes_second_occurrence(berlin):
    """A naive value carrying fold=1 is read as the second (+01:00) occurrence."""
    assert berlin.check_local(datetime(2024, 10, 27, 2, 30, fold=1)).isoformat() == "2024-10-27T02:30:00+01:00"


# ---------------------------------------------------------------- mainland China, 2025 National Day


def test_china_calendar_agrees_with_chinese_calendar_every_day(china):
    """Every date of 2025-2026 has the working-day status chinese_calendar gives it."""
    day = date(2025, 1, 1)
    while day.year <= 2026:
        assert china.is_working_day(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_working_sunday_before_national_day_is_a_working_day(china):
    """Sunday 2025-09-28 is an official make-up working day."""
    assert china.is_working_day(date(2025, 9, 28)) and chinese_calendar.is_workday(date(2025, 9, 28))


def test_saturday_after_national_day_is_a_working_day(china):
    """Saturday 2025-10-11 is an official make-up working day."""
    assert china.is_working_day(date(2025, 10, 11)) and chinese_calendar.is_workday(date(2025, 10, 11))


def test_national_day_holiday_is_not_working(china):
    """Every day of 2025-10-01..08 is a holiday, weekdays included."""
    assert not any(china.is_working_day(date(2025, 10, n)) for n in range(1, 9))


def test_three_working_days_from_working_sunday_skip_national_day(china):
    """A request on the working Sunday 2025-09-28 10:00 plus 3 working days is due 2025-10-09 10:00."""
    due = china.add(china_time(2025, 9, 28, 10, 0), Duration(3, WD))
    assert due == china_time(2025, 10, 9, 10, 0)
    assert due.date() == chinese_calendar.find_workday(3, date(2025, 9, 28))


def test_one_working_day_from_last_day_before_national_day(china):
    """One working day from Tue 2025-09-30 15:00 is due Thu 2025-10-09 15:00."""
    due = china.add(china_time(2025, 9, 30, 15, 0), Duration(1, WD))
    assert due == china_time(2025, 10, 9, 15, 0)
    assert due.date() == chinese_calendar.find_workday(1, date(2025, 9, 30))


def test_two_working_days_from_friday_count_the_makeup_saturday(china):
    """Two working days from Fri 2025-10-10 17:00 are Sat 10-11 (make-up) and Mon 10-13: due Mon 17:00."""
    due = china.add(china_time(2025, 10, 10, 17, 0), Duration(2, WD))
    assert due == china_time(2025, 10, 13, 17, 0)
    assert due.date() == chinese_calendar.find_workday(2, date(2025, 10, 10))


def test_start_on_holiday_counts_from_next_opening(china):
    """A request during the holiday (2025-10-03 14:00) counts from the 10-09 opening: 1 working day is 10-10 09:00."""
    assert china.add(china_time(2025, 10, 3, 14, 0), Duration(1, WD)) == china_time(2025, 10, 10, 9, 0)


def test_working_days_between_counts_whole_days(china):
    """From 2025-09-30 10:00, one whole working day is complete at 2025-10-09 10:00 and not a minute before."""
    start = china_time(2025, 9, 30, 10, 0)
    assert china.working_days_between(start, china_time(2025, 10, 9, 9, 59)) == 0
    assert china.working_days_between(start, china_time(2025, 10, 9, 10, 0)) == 1


# ---------------------------------------------------------------- business hours


def test_business_hours_across_a_weekend(china):
    """Two business hours (09-18) from Fri 2025-10-17 17:00 are due Mon 2025-10-20 10:00."""
    assert china.add(china_time(2025, 10, 17, 17, 0), Duration(2, BH)) == china_time(2025, 10, 20, 10, 0)


def test_business_hours_across_a_holiday(china):
    """Four business hours from Tue 2025-09-30 16:00 skip the National Day holiday and fall due 2025-10-09 11:00."""
    assert china.add(china_time(2025, 9, 30, 16, 0), Duration(4, BH)) == china_time(2025, 10, 9, 11, 0)


def test_business_hours_between_skips_holiday(china):
    """Only 2 h on 09-30 and 2 h on 10-09 count between 2025-09-30 16:00 and 2025-10-09 11:00."""
    assert china.business_hours_between(china_time(2025, 9, 30, 16, 0), china_time(2025, 10, 9, 11, 0)) == 4


def test_business_hours_start_outside_hours_counts_from_next_opening(china):
    """One business hour from Tue 2025-10-14 20:00 is due Wed 10:00."""
    assert china.add(china_time(2025, 10, 14, 20, 0), Duration(1, BH)) == china_time(2025, 10, 15, 10, 0)


def test_business_hours_running_out_at_closing_fall_due_at_next_opening(china):
    """Two business hours from Thu 2025-10-16 16:00 end at closing, so they fall due Fri 09:00."""
    assert china.add(china_time(2025, 10, 16, 16, 0), Duration(2, BH)) == china_time(2025, 10, 17, 9, 0)


def test_fractional_business_hours(china):
    """1.5 business hours from 17:00 are due 09:30 the next working day."""
    assert china.add(china_time(2025, 10, 16, 17, 0), Duration(Decimal("1.5"), BH)) == china_time(2025, 10, 17, 9, 30)


# ---------------------------------------------------------------- elapsed() matches add()


CHINA_STARTS = [
    china_time(2025, 9, 28, 10, 0),               # working Sunday
    china_time(2025, 10, 3, 14, 0),               # holiday
    china_time(2025, 10, 10, 17, 59, 59, 500000),  # just before closing, before the make-up Saturday
    china_time(2025, 10, 14, 20, 0),              # after hours
    datetime(2025, 12, 31, 1, 0, tzinfo=timezone.utc),  # UTC from storage
]
BERLIN_STARTS = [
    datetime(2024, 3, 29, 16, 30, tzinfo=BERLIN),  # Friday before spring DST
    datetime(2024, 3, 30, 2, 30, tzinfo=BERLIN),   # +1 calendar day lands in the DST gap
    datetime(2024, 10, 25, 15, 0, tzinfo=BERLIN),  # case 28 scenario 2
    datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=BERLIN),  # second occurrence of the repeated hour
]
DURATIONS = [Duration(v, u) for u in DurationUnit for v in (0, 1, 3, 7)] + [
    Duration(Decimal("2.5"), EH), Duration(Decimal("2.5"), BH), Duration(Decimal("0.25"), BH)]
CASES_ELAPSED = [("china", s, d) for s in CHINA_STARTS for d in DURATIONS] + [
    ("berlin", s, d) for s in BERLIN_STARTS for d in DURATIONS]


@pytest.mark.parametrize(("where", "start", "duration"), CASES_ELAPSED,
                         ids=[f"{w}-{s.isoformat()}-{str(d).replace(' ', '_')}" for w, s, d in CASES_ELAPSED])
def test_elapsed_at_due_time_equals_duration_and_breach_starts_after_it(where, start, duration, china, berlin):
    """elapsed(start, add(start, d)) == d.value, and one microsecond later (only) is a breach."""
    cal = china if where == "china" else berlin
    due = cal.add(start, duration)
    tick = timedelta(microseconds=1)
    utc_due = due.astimezone(timezone.utc)  # aware + timedelta is wall-clock arithmetic and drops fold
    assert cal.elapsed(start, due, duration.unit) == duration.value
    assert cal.elapsed(start, utc_due + tick, duration.unit) > duration.value
    if utc_due - tick >= start:
        assert cal.elapsed(start, utc_due - tick, duration.unit) <= duration.value


def test_elapsed_end_before_start_is_negative(china):
    """Measuring backwards gives the negative amount."""
    assert china.elapsed(china_time(2025, 10, 9, 11, 0), china_time(2025, 9, 30, 16, 0), BH) == -4


# ---------------------------------------------------------------- 24-hour e-mail reply (seed:1.2.1)


def test_email_reply_within_24_elapsed_hours_is_on_time_through_a_holiday(china):
    """A reply exactly 24 real hours after the e-mail (stored in UTC, across 10-01) meets the 24-hour SLA."""
    received = datetime(2025, 9, 30, 9, 30, tzinfo=timezone.utc)  # 17:30 in Shanghai
    limit = Duration(24, EH)
    assert china.add(received, limit) == china_time(2025, 10, 1, 17, 30)
    assert not china.elapsed(received, datetime(2025, 10, 1, 9, 30, tzinfo=timezone.utc), EH) > limit.value


def test_email_reply_one_second_late_breaches_24_elapsed_hours(china):
    """A reply 24 h and 1 s after the e-mail breaches the 24-hour SLA."""
    received = datetime(2025, 9, 30, 9, 30, tzinfo=timezone.utc)
    reply = datetime(2025, 10, 1, 9, 30, 1, tzinfo=timezone.utc)
    assert china.elapsed(received, reply, EH) > 24


def test_results_are_in_the_calendar_zone(china):
    """A UTC start yields a due time in Asia/Shanghai."""
    due = china.add(datetime(2025, 10, 9, 1, 0, tzinfo=timezone.utc), Duration(1, WD))
    assert due.tzinfo == SHANGHAI and due.isoformat() == "2025-10-10T09:00:00+08:00"


# ---------------------------------------------------------------- errors


def test_naive_start_raises_naive_datetime_error(china):
    """A naive start is refused with a NaiveDatetimeError (a ValueError) saying it has no time zone."""
    with pytest.raises(NaiveDatetimeError, match="has no time zone") as info:
        china.add(datetime(2025, 10, 9, 10, 0), Duration(1, WD))
    assert isinstance(info.value, ValueError) and isinstance(info.value, SopcoachError)


@pytest.mark.parametrize("method", ["working_days_between", "business_hours_between"])
def test_naive_end_raises_naive_datetime_error(china, method):
    """A naive end is refused by the between functions."""
    with pytest.raises(NaiveDatetimeError, match=r"end=2025-10-09T10:00:00 has no time zone"):
        getattr(china, method)(china_time(2025, 10, 9, 9, 0), datetime(2025, 10, 9, 10, 0))


def test_date_outside_covered_years_raises_calendar_range_error(china):
    """Asking whether a 2031 date is a working day names the covered years and the two fixes."""
    with pytest.raises(CalendarRangeError) as info:
        china.is_working_day(date(2031, 3, 3))
    message = str(info.value)
    assert "2031-03-03" in message and "(2025-2026)" in message
    assert "update the chinesecalendar package" in message and "declare the holidays in the playbook" in message
    assert isinstance(info.value, SopcoachError)


def test_working_days_into_unknown_year_raise_calendar_range_error(china):
    """Counting working days past 2026 refuses to guess 2027's holidays."""
    with pytest.raises(CalendarRangeError, match="2027-01-01"):
        china.add(china_time(2026, 12, 30, 10, 0), Duration(5, WD))


def test_china_calendar_for_unknown_year_raises_calendar_range_error():
    """Building the China calendar for 2031 fails because chinese_calendar has no data for it."""
    with pytest.raises(CalendarRangeError, match=r"not 2031; update the chinesecalendar package"):
        BusinessCalendar.china(years=(2031,))


def test_declared_calendar_has_no_year_limit():
    """A calendar with declared holidays and no covered_years answers for any year."""
    assert BusinessCalendar().is_working_day(date(2031, 3, 3))


def test_calendar_days_do_not_need_holidays(china):
    """Calendar days are plain date arithmetic and work outside the covered years."""
    assert china.add(china_time(2031, 3, 3, 10, 0), Duration(30, CD)) == china_time(2031, 4, 2, 10, 0)


def test_holiday_that_is_also_a_workday_is_refused():
    """A date declared both a holiday and a make-up working day is rejected."""
    with pytest.raises(BusinessTimeError, match="both a holiday and a make-up working day"):
        BusinessCalendar(holidays=frozenset({date(2025, 10, 11)}), workdays=frozenset({date(2025, 10, 11)}))


def test_unknown_time_zone_is_refused():
    """An unknown IANA name is rejected with an example of a valid one."""
    with pytest.raises(BusinessTimeError, match=r"unknown time zone 'Asia/Beijing'; use an IANA name"):
        BusinessCalendar("Asia/Beijing")


# ---------------------------------------------------------------- Duration


@pytest.mark.parametrize(("duration", "zh", "en"), [
    (Duration(3, WD), "3个工作日", "3 working days"),
    (Duration(24, EH), "24小时", "24 elapsed hours"),
    (Duration(30, CD), "30个自然日", "30 calendar days"),
    (Duration(4, BH), "4个工作小时", "4 business hours"),
    (Duration(1, WD), "1个工作日", "1 working day"),
    (Duration(Decimal("2.50"), BH), "2.5个工作小时", "2.5 business hours"),
])
def test_duration_labels(duration, zh, en):
    """A duration reads as its Chinese label by default and as English in str() and label('en')."""
    assert (duration.label(), duration.label("en"), str(duration)) == (zh, en, en)


@pytest.mark.parametrize(("value", "unit", "message"), [
    (1.5, BH, "must be an int or a Decimal (got float 1.5)"),
    (-1, WD, "must be >= 0 (got -1)"),
    (Decimal("1.5"), WD, "working_days must be a whole number of days (got 1.5)"),
    (1, "weeks", "duration unit must be one of working_days, calendar_days, elapsed_hours, business_hours"),
])
def test_invalid_duration_is_refused(value, unit, message):
    """A float, negative, fractional-day or unknown-unit duration raises BusinessTimeError."""
    with pytest.raises(BusinessTimeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Duration(value, unit)
