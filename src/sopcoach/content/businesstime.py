"""Working time for the sales SOP's service levels: working days, business hours, holidays.

The SOP states its limits in four different units (seed:1.2.1, seed:1.2.2, seed:2.2.2): "reply to a
customer e-mail within 24 hours", "first solution within 2 working days", "satisfaction call 30 days
after the deal closes". Each unit is a :class:`DurationUnit`, and they differ across weekends,
holidays and daylight-saving changes (shared cases 25 and 28):

============== ================================================================================
unit           meaning (``add`` gives the due time, ``elapsed`` measures the same unit back)
============== ================================================================================
working_days   same local wall-clock time on the N-th working day after the start's local date
calendar_days  same local wall-clock time N dates later (23 or 25 real hours across DST)
elapsed_hours  N real hours (absolute time, computed in UTC)
business_hours N hours counted only inside ``[day_start, day_end)`` local wall time on working days
============== ================================================================================

Timestamps are stored in UTC; business windows are evaluated in the calendar's local time zone
(``zoneinfo``). Mainland-China public holidays and official make-up working days (调休) come from the
``chinesecalendar`` package (:meth:`BusinessCalendar.china`); other regions declare their holidays in
the playbook. A calendar built from ``chinesecalendar`` refuses to answer for years it does not know
(:class:`CalendarRangeError`) instead of silently treating them as plain Monday-Friday weeks.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as _dt_timezone
from decimal import Decimal
from collections.abc import Iterable
from typing import overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

from ..errors import BusinessTimeError, CalendarRangeError, NaiveDatetimeError, NonexistentLocalTime

__all__ = [
    "BusinessCalendar",
    "BusinessTimeError",
    "CalendarRangeError",
    "Duration",
    "DurationUnit",
    "NaiveDatetimeError",
    "NonexistentLocalTime",
]

_UTC = _dt_timezone.utc
_US_PER_HOUR = 3_600_000_000
_ONE_DAY = timedelta(days=1)


# ------------------------------------------------------------------------------------ durations


class DurationUnit(str, enum.Enum):
    """The unit of an SLA limit; the value is the key used in playbook files.

    Examples
    --------
    >>> DurationUnit("business_hours") is DurationUnit.BUSINESS_HOURS
    True
    """

    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"
    ELAPSED_HOURS = "elapsed_hours"
    BUSINESS_HOURS = "business_hours"


_DAY_UNITS = (DurationUnit.WORKING_DAYS, DurationUnit.CALENDAR_DAYS)
_EN_NAMES = {
    DurationUnit.WORKING_DAYS: ("working day", "working days"),
    DurationUnit.CALENDAR_DAYS: ("calendar day", "calendar days"),
    DurationUnit.ELAPSED_HOURS: ("elapsed hour", "elapsed hours"),
    DurationUnit.BUSINESS_HOURS: ("business hour", "business hours"),
}
_ZH_FORMATS = {
    DurationUnit.WORKING_DAYS: "{}个工作日",
    DurationUnit.CALENDAR_DAYS: "{}个自然日",
    DurationUnit.ELAPSED_HOURS: "{}小时",
    DurationUnit.BUSINESS_HOURS: "{}个工作小时",
}


def _number_text(value: int | Decimal) -> str:
    """Write ``value`` without trailing zeros or exponent: 3, 1.5, 0.25."""
    if value == int(value):
        return str(int(value))
    return format(Decimal(value).normalize(), "f")


@dataclass(frozen=True)
class Duration:
    """An SLA limit: a non-negative amount of one :class:`DurationUnit`.

    Parameters
    ----------
    value : int or decimal.Decimal
        The amount, >= 0. Whole numbers only for ``working_days`` and ``calendar_days``; hours may be
        fractional (``Decimal("1.5")``). Floats are refused because they are inexact.
    unit : DurationUnit or str
        The unit; a string such as ``"working_days"`` is converted.

    Raises
    ------
    BusinessTimeError
        If the value is negative, not an int/Decimal, not finite, a fraction of a day, or the unit
        is unknown.

    Examples
    --------
    >>> d = Duration(3, DurationUnit.WORKING_DAYS)
    >>> str(d), d.label(), d.label("en")
    ('3 working days', '3个工作日', '3 working days')
    >>> Duration(24, "elapsed_hours").label()
    '24小时'
    >>> Duration(Decimal("1.50"), DurationUnit.BUSINESS_HOURS).label("en")
    '1.5 business hours'
    >>> str(Duration(1, DurationUnit.CALENDAR_DAYS))
    '1 calendar day'
    """

    value: int | Decimal
    unit: DurationUnit

    def __post_init__(self) -> None:
        try:
            unit = DurationUnit(self.unit)
        except ValueError:
            allowed = ", ".join(u.value for u in DurationUnit)
            raise BusinessTimeError(f"duration unit must be one of {allowed} (got {self.unit!r})") from None
        object.__setattr__(self, "unit", unit)
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
            raise BusinessTimeError(
                f"duration value must be an int or a Decimal (got {type(v).__name__} {v!r}); "
                "write Decimal('1.5') for a fractional number of hours")
        if isinstance(v, Decimal) and not v.is_finite():
            raise BusinessTimeError(f"duration value must be a finite number (got {v})")
        if v < 0:
            raise BusinessTimeError(f"duration value must be >= 0 (got {v})")
        if unit in _DAY_UNITS and v != int(v):
            raise BusinessTimeError(
                f"{unit.value} must be a whole number of days (got {v}); use hours for part of a day")

    def __str__(self) -> str:
        singular, plural = _EN_NAMES[self.unit]
        return f"{_number_text(self.value)} {singular if self.value == 1 else plural}"

    def label(self, lang: str = "zh-CN") -> str:
        """Return the duration as text for learners.

        Parameters
        ----------
        lang : {"zh-CN", "en"}
            Content language; ``"zh-CN"`` writes ``3个工作日``, ``24小时``, ``30个自然日``,
            ``4个工作小时``; ``"en"`` gives the same text as ``str(duration)``.

        Returns
        -------
        str

        Raises
        ------
        BusinessTimeError
            If ``lang`` is neither ``"zh-CN"`` nor ``"en"``.

        Examples
        --------
        >>> Duration(30, DurationUnit.CALENDAR_DAYS).label()
        '30个自然日'
        >>> Duration(4, DurationUnit.BUSINESS_HOURS).label("en")
        '4 business hours'
        """
        if lang == "en":
            return str(self)
        if lang == "zh-CN":
            return _ZH_FORMATS[self.unit].format(_number_text(self.value))
        raise BusinessTimeError(f"label language must be 'zh-CN' or 'en' (got {lang!r})")


# ------------------------------------------------------------------------------------- helpers


def _to_utc(dt: datetime) -> datetime:
    """Return the aware ``dt`` in UTC (so comparisons and differences use real time)."""
    return dt.astimezone(_UTC)


def _real_delta(end: datetime, start: datetime) -> timedelta:
    """Return ``end - start`` in real time (Python ignores the offset when both share a tzinfo)."""
    return _to_utc(end) - _to_utc(start)


def _microseconds(td: timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


def _hours(td: timedelta) -> Decimal:
    return Decimal(_microseconds(td)) / Decimal(_US_PER_HOUR)


def _hours_to_timedelta(hours: int | Decimal) -> timedelta:
    """Convert hours to a timedelta, rounded to the nearest microsecond."""
    return timedelta(microseconds=int((Decimal(hours) * _US_PER_HOUR).to_integral_value()))


def _ratio(part: timedelta, whole: timedelta) -> Decimal:
    return Decimal(_microseconds(part)) / Decimal(_microseconds(whole))


def _offset_text(dt: datetime) -> str:
    off = dt.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# ------------------------------------------------------------------------------------ calendar


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and business hours of one company location, in one IANA time zone.

    A date is a working day when it is a declared make-up working day (``workdays``), or when it is
    neither a ``weekend`` day nor a declared holiday. Business hours are ``[day_start, day_end)``
    local wall time on working days (e.g. 09:00-18:00 is 9 business hours).

    Parameters
    ----------
    timezone : str
        IANA time-zone name of the business location, e.g. ``"Asia/Shanghai"``.
    weekend : frozenset of int
        Weekly rest days as ``date.weekday()`` numbers (Monday 0 ... Sunday 6); at most six of them.
    holidays : frozenset of datetime.date
        Public holidays: non-working days that would otherwise be working weekdays.
    workdays : frozenset of datetime.date
        Make-up working days (调休) that fall on weekend days. Must not overlap ``holidays``.
    day_start, day_end : datetime.time
        Opening and closing local wall time of business hours; ``day_start < day_end``, both naive.
    covered_years : tuple of (int, int) or None
        First and last year (inclusive) whose holidays the calendar knows. When given, any question
        that needs the working-day status of a date outside them raises :class:`CalendarRangeError`.
        ``None`` (the default for explicitly declared holidays) means no limit.

    Raises
    ------
    BusinessTimeError
        If the time zone is unknown, the weekend covers all seven days, a holiday is also a make-up
        working day, the business hours are empty or ``covered_years`` is not ``(first, last)``.

    Notes
    -----
    Rules for each unit (see :meth:`add` for the due time, :meth:`elapsed` for the measurement):

    * ``working_days``: N working days after a start on a working day = the same local wall-clock
      time on the N-th working day after the start's local date (0 = the start itself). A start on a
      non-working day (weekend or holiday) counts from the opening (``day_start``) of the next
      working day, so N working days after Saturday 10:00 is the N-th working day after Monday,
      at 09:00. A start on a working day outside business hours keeps its wall-clock time.
    * ``calendar_days``: the same local wall-clock time N dates later (23 real hours when it
      crosses the spring DST change).
    * ``elapsed_hours``: N real hours, computed in UTC.
    * ``business_hours``: only the time inside ``[day_start, day_end)`` on working days counts,
      measured in local wall-clock time (so a DST change inside the window does not add or remove
      an hour). A start outside business hours starts counting at the next opening. When the hours
      run out exactly at closing time, the due time is the next opening: the clock is stopped
      overnight, so no reply can breach before then (this keeps ``end > add(start, d)`` and
      ``elapsed(start, end, d.unit) > d.value`` the same test).
    * A computed due time that falls in a DST gap moves forward by the length of the gap (02:30 ->
      03:30); one that falls in the repeated hour of autumn takes its first occurrence (``fold=0``).

    Examples
    --------
    Shared case 25: 5 working days from Monday 2023-04-03 09:00 with Good Friday and Easter Monday.

    >>> from datetime import date, datetime, time
    >>> from zoneinfo import ZoneInfo
    >>> england = BusinessCalendar("Europe/London",
    ...                            holidays=frozenset({date(2023, 4, 7), date(2023, 4, 10)}))
    >>> start = datetime(2023, 4, 3, 9, 0, tzinfo=ZoneInfo("Europe/London"))
    >>> england.add(start, Duration(5, DurationUnit.WORKING_DAYS)).isoformat()
    '2023-04-12T09:00:00+01:00'

    Mainland China, with the 2025 National Day holiday and its make-up working days:

    >>> china = BusinessCalendar.china()
    >>> china.is_working_day(date(2025, 9, 28)), china.is_working_day(date(2025, 10, 1))
    (True, False)
    >>> sunday = datetime(2025, 9, 28, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    >>> china.add(sunday, Duration(3, DurationUnit.WORKING_DAYS)).isoformat()
    '2025-10-09T10:00:00+08:00'
    """

    timezone: str = "Asia/Shanghai"
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    day_start: time = time(9, 0)
    day_end: time = time(18, 0)
    covered_years: tuple[int, int] | None = None
    # memo of _following_working_day (the calendar is immutable, so an answer never changes)
    _following: dict[date, date] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.timezone, str):
            raise BusinessTimeError(f"timezone must be an IANA name such as 'Asia/Shanghai' (got {self.timezone!r})")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BusinessTimeError(
                f"unknown time zone {self.timezone!r}; use an IANA name such as 'Asia/Shanghai'") from None
        weekend = frozenset(self.weekend)
        if any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in weekend):
            raise BusinessTimeError(
                f"weekend days must be weekday numbers 0 (Monday) to 6 (Sunday) (got {sorted(weekend, key=str)})")
        if len(weekend) == 7:
            raise BusinessTimeError("weekend covers all seven weekdays; at least one weekday must be a working day")
        holidays, workdays = frozenset(self.holidays), frozenset(self.workdays)
        for name, days in (("holidays", holidays), ("workdays", workdays)):
            bad = [d for d in days if isinstance(d, datetime) or not isinstance(d, date)]
            if bad:
                raise BusinessTimeError(f"{name} must contain dates, not times or text (got {bad[0]!r})")
        both = sorted(holidays & workdays)
        if both:
            raise BusinessTimeError(
                f"{both[0].isoformat()} is declared both a holiday and a make-up working day; keep only one")
        for name in ("day_start", "day_end"):
            t = getattr(self, name)
            if not isinstance(t, time) or t.tzinfo is not None:
                raise BusinessTimeError(f"{name} must be a naive local time such as time(9, 0) (got {t!r})")
        if not self.day_start < self.day_end:
            raise BusinessTimeError(
                f"business hours must start before they end (got {self.day_start:%H:%M}-{self.day_end:%H:%M})")
        covered = None if self.covered_years is None else tuple(self.covered_years)
        if covered is not None:
            if (len(covered) != 2 or any(isinstance(y, bool) or not isinstance(y, int) for y in covered)
                    or covered[0] > covered[1]):
                raise BusinessTimeError(
                    f"covered_years must be (first_year, last_year) with first <= last (got {self.covered_years!r})")
        object.__setattr__(self, "weekend", weekend)
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)
        object.__setattr__(self, "covered_years", covered)

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def china(cls, years: Iterable[int] = (2025, 2026), timezone: str = "Asia/Shanghai",
              day_start: time = time(9), day_end: time = time(18)) -> BusinessCalendar:
        """Build the mainland-China calendar from the ``chinesecalendar`` package.

        Weekend is Saturday and Sunday; public holidays and the official make-up working days (调休)
        are taken from ``chinese_calendar`` for every year from ``min(years)`` to ``max(years)``,
        and those years become ``covered_years``.

        Parameters
        ----------
        years : iterable of int
            Years to load (e.g. ``(2025, 2026)``); the range between the smallest and largest is loaded.
        timezone : str
            IANA time zone of the business location.
        day_start, day_end : datetime.time
            Business hours, local wall time (default 09:00-18:00).

        Returns
        -------
        BusinessCalendar

        Raises
        ------
        CalendarRangeError
            If ``chinesecalendar`` has no data for one of the years.
        BusinessTimeError
            If ``years`` is empty or not whole numbers, or another setting is invalid.

        Examples
        --------
        >>> cal = BusinessCalendar.china()
        >>> cal.covered_years
        (2025, 2026)
        >>> cal.is_working_day(date(2025, 10, 11))  # Saturday make-up working day
        True
        """
        wanted = list(years)
        if not wanted or any(isinstance(y, bool) or not isinstance(y, int) for y in wanted):
            raise BusinessTimeError(f"years must be a non-empty list of whole years such as (2025, 2026) (got {years!r})")
        first, last = min(wanted), max(wanted)
        known = {d.year for d in chinese_calendar.holidays}
        missing = [y for y in range(first, last + 1) if y not in known]
        if missing:
            version = getattr(chinese_calendar, "__version__", "?")
            raise CalendarRangeError(
                f"chinesecalendar {version} knows the years {min(known)}-{max(known)} but not "
                f"{', '.join(map(str, missing))}; update the chinesecalendar package "
                "(pip install -U chinesecalendar) or declare the holidays in the playbook")
        weekend = frozenset({5, 6})
        holidays = frozenset(d for d in chinese_calendar.holidays
                             if first <= d.year <= last and d.weekday() not in weekend)
        workdays = frozenset(d for d in chinese_calendar.workdays
                             if first <= d.year <= last and d.weekday() in weekend)
        return cls(timezone=timezone, weekend=weekend, holidays=holidays, workdays=workdays,
                   day_start=day_start, day_end=day_end, covered_years=(first, last))

    # --------------------------------------------------------------------------------- queries

    @property
    def tzinfo(self) -> ZoneInfo:
        """The calendar's time zone as a :class:`zoneinfo.ZoneInfo` (cached by ``zoneinfo``)."""
        return ZoneInfo(self.timezone)

    def is_working_day(self, d: date) -> bool:
        """Tell whether the local date ``d`` is a working day.

        Parameters
        ----------
        d : datetime.date
            A local calendar date (not a datetime: convert with ``dt.astimezone(cal.tzinfo).date()``).

        Returns
        -------
        bool
            True for a declared make-up working day, or a non-weekend day that is not a holiday.

        Raises
        ------
        CalendarRangeError
            If the calendar has ``covered_years`` and ``d`` lies outside them.
        BusinessTimeError
            If ``d`` is not a date.

        Examples
        --------
        >>> cal = BusinessCalendar.china()
        >>> [cal.is_working_day(date(2025, 10, n)) for n in (8, 9, 11, 12)]
        [False, True, True, False]
        >>> cal.is_working_day(date(2031, 1, 2))
        Traceback (most recent call last):
        ...
        sopcoach.errors.CalendarRangeError: 2031-01-02 is outside the years this calendar covers (2025-2026): its public holidays and make-up working days are unknown; update the chinesecalendar package (then rebuild with BusinessCalendar.china(years=...)) or declare the holidays in the playbook
        """
        if isinstance(d, datetime) or not isinstance(d, date):
            raise BusinessTimeError(
                f"is_working_day takes a local date (got {type(d).__name__} {d!r}); "
                "for a datetime use dt.astimezone(calendar.tzinfo).date()")
        self._check_range(d)
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() not in self.weekend

    def _check_range(self, d: date) -> None:
        if self.covered_years is None:
            return
        first, last = self.covered_years
        if not first <= d.year <= last:
            years = str(first) if first == last else f"{first}-{last}"
            raise CalendarRangeError(
                f"{d.isoformat()} is outside the years this calendar covers ({years}): its public "
                "holidays and make-up working days are unknown; update the chinesecalendar package "
                "(then rebuild with BusinessCalendar.china(years=...)) or declare the holidays in the playbook")

    @overload
    def _following_working_day(self, d: date) -> date: ...
    @overload
    def _following_working_day(self, d: date, until: date | None) -> date | None: ...

    def _following_working_day(self, d: date, until: date | None = None) -> date | None:
        """Return the first working day after ``d``; None if there is none up to ``until``."""
        if until is None:
            following = self._following.get(d)
            if following is None:
                found = self._following_working_day(d, date.max)
                if found is None:
                    raise BusinessTimeError(f"no working day follows {d.isoformat()}")
                following = self._following[d] = found
            return following
        while True:
            d += _ONE_DAY
            if until is not None and d > until:
                return None
            if self.is_working_day(d):
                return d

    # ------------------------------------------------------------------------- local wall time

    def _local(self, dt: datetime, name: str) -> datetime:
        """Return the aware ``dt`` in the calendar's zone; refuse naive values."""
        if not isinstance(dt, datetime):
            raise BusinessTimeError(f"{name} must be a datetime (got {type(dt).__name__} {dt!r})")
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise NaiveDatetimeError(
                f"{name}={dt.isoformat()} has no time zone, so the instant is unknown; attach one "
                "(stored timestamps are UTC: dt.replace(tzinfo=timezone.utc)) or interpret a local "
                "wall time with BusinessCalendar.check_local()")
        return dt.astimezone(self.tzinfo)

    def _aware(self, wall: datetime) -> datetime:
        """Attach the zone to a computed wall time: a gap moves forward, a repeated hour takes fold=0."""
        return wall.replace(tzinfo=self.tzinfo, fold=0).astimezone(_UTC).astimezone(self.tzinfo)

    def check_local(self, naive: datetime) -> datetime:
        """Interpret a naive local wall time (a form field, a CRM export cell) in the calendar's zone.

        A wall time that does not exist (skipped by the spring DST change) is flagged, not shifted.
        A wall time that occurs twice (the repeated autumn hour) is resolved by the value's ``fold``
        attribute: ``fold=0``, the default of every parsed value, means the first occurrence (the
        daylight-saving offset, the earlier instant); ``fold=1`` means the second. Use
        :meth:`is_ambiguous` to report such rows.

        Parameters
        ----------
        naive : datetime.datetime
            Local wall time without tzinfo. An aware value is simply converted to the local zone.

        Returns
        -------
        datetime.datetime
            The aware local datetime.

        Raises
        ------
        NonexistentLocalTime
            If the wall time falls in a DST gap of the calendar's zone.
        BusinessTimeError
            If ``naive`` is not a datetime.

        Examples
        --------
        >>> berlin = BusinessCalendar("Europe/Berlin")
        >>> berlin.check_local(datetime(2024, 10, 27, 2, 30)).isoformat()  # repeated hour: first
        '2024-10-27T02:30:00+02:00'
        >>> berlin.check_local(datetime(2024, 3, 31, 2, 30))
        Traceback (most recent call last):
        ...
        sopcoach.errors.NonexistentLocalTime: 2024-03-31 02:30:00 does not exist in Europe/Berlin: the clocks moved from UTC+01:00 to UTC+02:00 and skipped it; correct the value at its source (or store it in UTC) rather than shifting it
        """
        if not isinstance(naive, datetime):
            raise BusinessTimeError(f"check_local takes a datetime (got {type(naive).__name__} {naive!r})")
        if naive.tzinfo is not None:
            return naive.astimezone(self.tzinfo)
        first = naive.replace(tzinfo=self.tzinfo, fold=0)
        if first.astimezone(_UTC).astimezone(self.tzinfo).replace(tzinfo=None) != naive:
            after = naive.replace(tzinfo=self.tzinfo, fold=1)
            raise NonexistentLocalTime(
                f"{naive:%Y-%m-%d %H:%M:%S} does not exist in {self.timezone}: the clocks moved from "
                f"{_offset_text(first)} to {_offset_text(after)} and skipped it; correct the value at "
                "its source (or store it in UTC) rather than shifting it")
        return naive.replace(tzinfo=self.tzinfo)

    def is_ambiguous(self, naive: datetime) -> bool:
        """Tell whether a naive local wall time occurs twice (the repeated hour when DST ends).

        Parameters
        ----------
        naive : datetime.datetime
            Local wall time without tzinfo (any tzinfo is ignored).

        Returns
        -------
        bool
            True if the wall time exists twice; False if it exists once or not at all.

        Raises
        ------
        BusinessTimeError
            If ``naive`` is not a datetime.

        Examples
        --------
        >>> berlin = BusinessCalendar("Europe/Berlin")
        >>> berlin.is_ambiguous(datetime(2024, 10, 27, 2, 30)), berlin.is_ambiguous(datetime(2024, 10, 27, 3, 30))
        (True, False)
        """
        if not isinstance(naive, datetime):
            raise BusinessTimeError(f"is_ambiguous takes a datetime (got {type(naive).__name__} {naive!r})")
        first = naive.replace(tzinfo=self.tzinfo, fold=0)
        second = naive.replace(tzinfo=self.tzinfo, fold=1)
        exists = first.astimezone(_UTC).astimezone(self.tzinfo).replace(tzinfo=None) == naive.replace(tzinfo=None)
        return exists and first.utcoffset() != second.utcoffset()

    # --------------------------------------------------------------------------------- add

    def add(self, start: datetime, duration: Duration) -> datetime:
        """Return the due time: ``duration`` after ``start`` under the rules of its unit.

        Parameters
        ----------
        start : datetime.datetime
            Aware start instant, in any zone (UTC from storage is usual).
        duration : Duration
            The limit; the rules per unit are in the class Notes (working days keep the wall-clock
            time, calendar days add dates in local time, elapsed hours add real time, business
            hours count only inside business hours of working days).

        Returns
        -------
        datetime.datetime
            The due instant, aware, in the calendar's zone: an end event at exactly this instant
            is on time, any later one is a breach.

        Raises
        ------
        NaiveDatetimeError
            If ``start`` has no time zone.
        CalendarRangeError
            If a working day or business hour must be looked up outside ``covered_years``
            (``calendar_days`` and ``elapsed_hours`` never consult holidays and work for any date).
        BusinessTimeError
            If ``duration`` is not a :class:`Duration`.

        Examples
        --------
        Shared case 28 (Europe/Berlin, business hours 09:00-17:00):

        >>> berlin = BusinessCalendar("Europe/Berlin", day_start=time(9), day_end=time(17))
        >>> sat = berlin.check_local(datetime(2024, 3, 30, 10, 0))
        >>> berlin.add(sat, Duration(1, DurationUnit.CALENDAR_DAYS)).isoformat()
        '2024-03-31T10:00:00+02:00'
        >>> berlin.add(sat, Duration(24, DurationUnit.ELAPSED_HOURS)).isoformat()
        '2024-03-31T11:00:00+02:00'
        >>> fri = berlin.check_local(datetime(2024, 10, 25, 15, 0))
        >>> berlin.add(fri, Duration(4, DurationUnit.BUSINESS_HOURS)).isoformat()
        '2024-10-28T11:00:00+01:00'

        Hours that run out exactly at closing time fall due at the next opening:

        >>> berlin.add(fri, Duration(2, DurationUnit.BUSINESS_HOURS)).isoformat()
        '2024-10-28T09:00:00+01:00'
        """
        if not isinstance(duration, Duration):
            raise BusinessTimeError(f"duration must be a Duration (got {type(duration).__name__} {duration!r})")
        local = self._local(start, "start")
        unit, value = duration.unit, duration.value
        if unit is DurationUnit.ELAPSED_HOURS:
            return (_to_utc(local) + _hours_to_timedelta(value)).astimezone(self.tzinfo)
        if unit is DurationUnit.CALENDAR_DAYS:
            return self._add_calendar_days(local, int(value))
        if unit is DurationUnit.WORKING_DAYS:
            return self._add_working_days(local, int(value))
        return self._add_business_hours(local, value)

    def add_many(self, starts, duration: Duration):
        """Return :meth:`add` of every start at once, with the same rules and the same results.

        Parameters
        ----------
        starts : pandas.Series
            Start instants, ``datetime64[us, UTC]`` (any aware datetime dtype; NaT allowed).
        duration : Duration
            The limit, as for :meth:`add`.

        Returns
        -------
        pandas.Series
            Due instants, ``datetime64[us, UTC]``, on the index of ``starts``. NaT where the start is
            NaT, or where :meth:`add` would raise :class:`CalendarRangeError` (a working day outside
            ``covered_years``).

        Raises
        ------
        BusinessTimeError
            If ``duration`` is not a :class:`Duration`, or ``starts`` has no time zone.

        Notes
        -----
        Working and calendar days are worked out once per distinct local start date; each start then
        keeps its wall-clock time (or takes the opening time, as in :meth:`add`). The rare due wall
        time that falls in a DST gap, and every ``business_hours`` limit, go through :meth:`add`.

        Examples
        --------
        >>> import pandas as pd
        >>> cal = BusinessCalendar.china()
        >>> starts = pd.Series(pd.to_datetime(["2025-09-28 02:00", "2025-09-27 02:00"], utc=True))
        >>> [str(t) for t in cal.add_many(starts, Duration(3, DurationUnit.WORKING_DAYS))]
        ['2025-10-09 02:00:00+00:00', '2025-10-09 01:00:00+00:00']
        """
        import numpy as np  # noqa: PLC0415 - heavy: numpy, only for vectorised business-time columns (analytics)
        import pandas as pd  # noqa: PLC0415 - heavy: pandas, only for vectorised business-time columns (analytics)

        if not isinstance(duration, Duration):
            raise BusinessTimeError(f"duration must be a Duration (got {type(duration).__name__} {duration!r})")
        if getattr(starts.dtype, "tz", None) is None:
            raise NaiveDatetimeError("starts have no time zone; stored timestamps are UTC (tz_localize('UTC'))")
        utc = starts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        unit, value = duration.unit, duration.value
        if unit is DurationUnit.ELAPSED_HOURS:
            return utc + pd.Timedelta(_hours_to_timedelta(value))
        out = pd.Series(pd.NaT, index=starts.index, dtype="datetime64[us, UTC]")
        ok = utc.notna().to_numpy()
        if unit is DurationUnit.BUSINESS_HOURS:
            for i in np.flatnonzero(ok):
                try:
                    out.iat[i] = self.add(utc.iat[i].to_pydatetime(), duration)
                except CalendarRangeError:
                    pass
            return out
        n = int(value)
        naive = utc[ok].dt.tz_convert(self.timezone).dt.tz_localize(None)
        day = naive.dt.normalize()
        wall = naive - day
        day_codes, day_u = pd.factorize(day)
        opening = pd.Timedelta(hours=self.day_start.hour, minutes=self.day_start.minute,
                               seconds=self.day_start.second, microseconds=self.day_start.microsecond)
        due_day = np.full(len(day_u), np.datetime64("NaT"), dtype="datetime64[us]")
        keeps_wall = np.ones(len(day_u), dtype=bool)  # False: the start counts from the opening time
        for j, d in enumerate(day_u.date):
            if unit is DurationUnit.CALENDAR_DAYS:
                due_day[j] = np.datetime64(d + timedelta(days=n), "us")
                continue
            try:
                if not self.is_working_day(d):
                    d, keeps_wall[j] = self._following_working_day(d), False
                for _ in range(n):
                    d = self._following_working_day(d)
            except CalendarRangeError:
                continue
            due_day[j] = np.datetime64(d, "us")
        offset = np.where(keeps_wall[day_codes], wall.to_numpy(), opening.to_timedelta64())
        due_naive = pd.DatetimeIndex(due_day[day_codes] + offset.astype("timedelta64[us]"))
        due = due_naive.tz_localize(self.timezone, ambiguous=np.ones(len(due_naive), dtype=bool),
                                    nonexistent="NaT").tz_convert("UTC")
        values = pd.Series(due, index=naive.index)
        if n == 0:  # the start itself when it keeps its wall time, as add() returns it unchanged
            values = values.where(~pd.Series(keeps_wall[day_codes], index=naive.index), utc[ok])
        out[ok] = values
        gap = np.flatnonzero(ok)[(values.isna() & pd.Series(~np.isnat(due_day[day_codes]),
                                                            index=naive.index)).to_numpy()]
        for i in gap:  # a due wall time inside a DST gap: add() moves it forward by the gap
            out.iat[i] = self.add(utc.iat[i].to_pydatetime(), duration)
        return out

    def _add_calendar_days(self, local: datetime, n: int) -> datetime:
        if n == 0:
            return local
        return self._aware(local.replace(tzinfo=None) + timedelta(days=n))

    def _working_day_anchor(self, local: datetime) -> datetime:
        """Return where working-day counting starts: the start, or the next working day's opening."""
        if self.is_working_day(local.date()):
            return local
        following = self._following_working_day(local.date())
        return self._aware(datetime.combine(following, self.day_start))

    def _add_working_days(self, local: datetime, n: int) -> datetime:
        anchor = self._working_day_anchor(local)
        if n == 0:
            return anchor
        day, wall = anchor.date(), anchor.replace(tzinfo=None).time()
        for _ in range(n):
            day = self._following_working_day(day)
        return self._aware(datetime.combine(day, wall))

    def _next_business_moment(self, wall: datetime) -> datetime:
        """Return ``wall`` if it is inside business hours, else the next opening (naive wall times)."""
        day = wall.date()
        if self.is_working_day(day):
            if wall.time() < self.day_start:
                return datetime.combine(day, self.day_start)
            if wall.time() < self.day_end:
                return wall
        return datetime.combine(self._following_working_day(day), self.day_start)

    def _add_business_hours(self, local: datetime, hours: int | Decimal) -> datetime:
        remaining = _hours_to_timedelta(hours)
        wall = local.replace(tzinfo=None)
        current = self._next_business_moment(wall)
        while True:
            available = datetime.combine(current.date(), self.day_end) - current  # > 0
            if remaining < available:
                if remaining == timedelta(0) and current == wall:
                    return local
                return self._aware(current + remaining)
            # Hours that run out exactly at closing time fall due at the next opening.
            remaining -= available
            current = datetime.combine(self._following_working_day(current.date()), self.day_start)

    def day_window(self, day: date, before: int, after: int, unit: DurationUnit | str) -> tuple[date, date]:
        """Return the first and last local dates of the window around a due ``day``.

        A scheduled follow-up (the satisfaction call on the 30th calendar day after the deal,
        seed:1.2.1) is due on one day; the company's tolerance lets it fall ``before`` days earlier
        or ``after`` days later. In ``working_days`` the window counts working days of this calendar
        (a due day off counts from it: 1 working day before a Saturday is the Friday); in
        ``calendar_days`` it counts dates.

        Parameters
        ----------
        day : datetime.date
            The local due date.
        before, after : int
            Days (>= 0) the window reaches before and after ``day``, in ``unit``.
        unit : {"working_days", "calendar_days"}

        Returns
        -------
        tuple of datetime.date
            ``(first, last)``, both inclusive; ``first <= day <= last``.

        Raises
        ------
        BusinessTimeError
            If ``before`` or ``after`` is negative or not an int, or ``unit`` is not a day unit.
        CalendarRangeError
            If a working day must be looked up outside ``covered_years``.

        Examples
        --------
        Due on Saturday 4 October 2025 (National Day holiday), 3 working days either side: the
        make-up working Sunday 28 September and the make-up working Saturday 11 October count.

        >>> cal = BusinessCalendar.china()
        >>> [d.isoformat() for d in cal.day_window(date(2025, 10, 4), 3, 3, "working_days")]
        ['2025-09-28', '2025-10-11']
        >>> [d.isoformat() for d in cal.day_window(date(2025, 10, 4), 3, 3, "calendar_days")]
        ['2025-10-01', '2025-10-07']
        """
        unit = DurationUnit(unit)
        for name, n in (("before", before), ("after", after)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise BusinessTimeError(f"{name} must be a whole number of days >= 0 (got {n!r})")
        if unit is DurationUnit.CALENDAR_DAYS:
            return day - timedelta(days=before), day + timedelta(days=after)
        if unit is not DurationUnit.WORKING_DAYS:
            raise BusinessTimeError(f"a day window counts working_days or calendar_days (got {unit.value})")
        first = day
        for _ in range(before):
            first -= _ONE_DAY
            while not self.is_working_day(first):
                first -= _ONE_DAY
        last = day
        for _ in range(after):
            last = self._following_working_day(last)
        return first, last

    # ----------------------------------------------------------------------------- measuring

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Count the whole working days elapsed from ``start`` to ``end``.

        The count is the largest N with ``add(start, N working days) <= end``: a working day is
        complete when the same wall-clock time is reached on the next working day. Before the
        counting starts (a start on a non-working day, before the next opening) the count is 0.
        ``end`` before ``start`` gives ``-working_days_between(end, start)``.

        Parameters
        ----------
        start, end : datetime.datetime
            Aware instants, in any zone.

        Returns
        -------
        int
            Whole working days (floor of ``elapsed(start, end, DurationUnit.WORKING_DAYS)``).

        Raises
        ------
        NaiveDatetimeError
            If ``start`` or ``end`` has no time zone.
        CalendarRangeError
            If a date between the two local dates lies outside ``covered_years``.

        Examples
        --------
        >>> cal = BusinessCalendar.china()
        >>> tz = cal.tzinfo
        >>> cal.working_days_between(datetime(2025, 9, 30, 10, tzinfo=tz), datetime(2025, 10, 9, 9, 59, tzinfo=tz))
        0
        >>> cal.working_days_between(datetime(2025, 9, 30, 10, tzinfo=tz), datetime(2025, 10, 9, 10, tzinfo=tz))
        1
        """
        start_l, end_l = self._local(start, "start"), self._local(end, "end")
        if _to_utc(end_l) < _to_utc(start_l):
            return -self.working_days_between(end_l, start_l)
        return self._working_day_progress(start_l, end_l, with_fraction=False)[0]

    def _working_day_progress(self, start_l: datetime, end_l: datetime,
                              with_fraction: bool) -> tuple[int, Decimal]:
        """Return (whole working days, exact elapsed working days) from ``start_l`` to ``end_l``.

        The fraction is the share of real time between the last reached due time and the next one;
        computing it needs the next working day after ``end``.
        """
        anchor = self._working_day_anchor(start_l)
        end_utc = _to_utc(end_l)
        if end_utc <= _to_utc(anchor):
            return 0, Decimal(0)
        wall = anchor.replace(tzinfo=None).time()
        count, previous, day = 0, anchor, anchor.date()
        limit = None if with_fraction else end_l.date()
        while True:
            following = self._following_working_day(day, until=limit)
            if following is None:  # only with a limit, that is without the fraction
                return count, Decimal(count)
            due = self._aware(datetime.combine(following, wall))
            if _to_utc(due) > end_utc:
                if not with_fraction:
                    return count, Decimal(count)
                return count, count + _ratio(_real_delta(end_l, previous), _real_delta(due, previous))
            count, previous, day = count + 1, due, following

    def business_hours_between(self, start: datetime, end: datetime) -> Decimal:
        """Return the business hours elapsed from ``start`` to ``end``.

        Only time inside ``[day_start, day_end)`` local wall time on working days counts, measured
        in wall-clock hours. ``end`` before ``start`` gives the negative of the reverse.

        Parameters
        ----------
        start, end : datetime.datetime
            Aware instants, in any zone.

        Returns
        -------
        decimal.Decimal
            Business hours (exact to the microsecond; e.g. ``Decimal('2.5')``).

        Raises
        ------
        NaiveDatetimeError
            If ``start`` or ``end`` has no time zone.
        CalendarRangeError
            If a day whose business hours overlap the interval lies outside ``covered_years``.

        Examples
        --------
        Friday 15:00 to Monday 11:00 within 09:00-17:00 (shared case 28, across the DST change):

        >>> berlin = BusinessCalendar("Europe/Berlin", day_start=time(9), day_end=time(17))
        >>> berlin.business_hours_between(berlin.check_local(datetime(2024, 10, 25, 15)),
        ...                               berlin.check_local(datetime(2024, 10, 28, 11)))
        Decimal('4')
        """
        start_l, end_l = self._local(start, "start"), self._local(end, "end")
        if _to_utc(end_l) < _to_utc(start_l):
            return -self.business_hours_between(end_l, start_l)
        s, e = start_l.replace(tzinfo=None), end_l.replace(tzinfo=None)
        total = timedelta(0)
        day = s.date()
        while day <= e.date():
            low = max(s, datetime.combine(day, self.day_start))
            high = min(e, datetime.combine(day, self.day_end))
            if high > low and self.is_working_day(day):
                total += high - low
            day += _ONE_DAY
        return _hours(total)

    def elapsed(self, start: datetime, end: datetime, unit: DurationUnit) -> Decimal:
        """Return how much of ``unit`` has elapsed from ``start`` to ``end``, for SLA checks.

        The measure matches :meth:`add`: ``elapsed(start, add(start, d), d.unit) == d.value``, and an
        SLA of limit ``d`` is breached iff ``elapsed(start, end, d.unit) > d.value``, which is the
        same as ``end > add(start, d)``.

        * ``elapsed_hours``: real hours.
        * ``business_hours``: :meth:`business_hours_between`.
        * ``calendar_days`` and ``working_days``: N whole days (the largest N whose due time is
          ``<= end``) plus the share of real time elapsed between the N-th and the (N+1)-th due
          time, a fraction in [0, 1). For working days the whole part is
          :meth:`working_days_between`; a start on a non-working day measures 0 until the next
          opening.
        * ``end`` before ``start`` gives ``-elapsed(end, start, unit)``.

        Parameters
        ----------
        start, end : datetime.datetime
            Aware instants, in any zone.
        unit : DurationUnit or str
            The unit to measure in.

        Returns
        -------
        decimal.Decimal
            Amount of ``unit``; exact for whole microseconds (divisions are rounded to 28 digits).

        Raises
        ------
        NaiveDatetimeError
            If ``start`` or ``end`` has no time zone.
        CalendarRangeError
            For ``working_days`` and ``business_hours``, if a day that must be looked up (for working
            days, up to the next working day after ``end``) lies outside ``covered_years``.
        BusinessTimeError
            If ``unit`` is unknown.

        Examples
        --------
        An e-mail reply within 24 hours (seed:1.2.1), timestamps stored in UTC:

        >>> from datetime import timezone
        >>> cal = BusinessCalendar.china()
        >>> asked = datetime(2025, 9, 30, 9, 0, tzinfo=timezone.utc)
        >>> cal.elapsed(asked, datetime(2025, 10, 1, 6, 0, tzinfo=timezone.utc), DurationUnit.ELAPSED_HOURS)
        Decimal('21')
        >>> cal.elapsed(asked, datetime(2025, 10, 9, 9, 0, tzinfo=timezone.utc), DurationUnit.WORKING_DAYS)
        Decimal('1')
        """
        try:
            unit = DurationUnit(unit)
        except ValueError:
            allowed = ", ".join(u.value for u in DurationUnit)
            raise BusinessTimeError(f"unit must be one of {allowed} (got {unit!r})") from None
        start_l, end_l = self._local(start, "start"), self._local(end, "end")
        if _to_utc(end_l) < _to_utc(start_l):
            return -self.elapsed(end_l, start_l, unit)
        if unit is DurationUnit.ELAPSED_HOURS:
            return _hours(_real_delta(end_l, start_l))
        if unit is DurationUnit.BUSINESS_HOURS:
            return self.business_hours_between(start_l, end_l)
        if unit is DurationUnit.WORKING_DAYS:
            return self._working_day_progress(start_l, end_l, with_fraction=True)[1]
        return self._calendar_day_progress(start_l, end_l)

    def _calendar_day_progress(self, start_l: datetime, end_l: datetime) -> Decimal:
        end_utc = _to_utc(end_l)
        count = max((end_l.date() - start_l.date()).days, 0)
        while count > 0 and _to_utc(self._add_calendar_days(start_l, count)) > end_utc:
            count -= 1
        while _to_utc(self._add_calendar_days(start_l, count + 1)) <= end_utc:
            count += 1
        previous = self._add_calendar_days(start_l, count)
        following = self._add_calendar_days(start_l, count + 1)
        return count + _ratio(_real_delta(end_l, previous), _real_delta(following, previous))


def check_timezone(name: str) -> str:
    """Return ``name`` when it is a known IANA time zone; raise ``ValueError`` naming the fix."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Asia/Shanghai'") from None
    return name
