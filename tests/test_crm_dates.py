"""Date columns of CRM exports: one declared format per column (or formats that never disagree), an
ambiguous column refused as a whole, and date-only values on days whose midnight a DST change skips."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest

from sopcoach.crm.reading import read_export
from sopcoach.errors import ContentError
from test_crm import CASE_MAPPING, SALESFORCE, mapping, row_problems

DECLARED = '["%Y-%m-%d", excel_serial]'
MONTH_DAY = '["%m/%d/%Y", "%d/%m/%Y"]'


def deals(tmp_path, values, formats, tz="UTC"):
    """Write a deals CSV whose created_at column holds ``values`` and read it with ``formats``."""
    src = tmp_path / "deals.csv"
    src.write_text("deal_id,created_at\n" + "".join(f'D-{i},"{v}"\n' for i, v in enumerate(values)),
                   encoding="utf-8")
    body = CASE_MAPPING.replace(DECLARED, formats).replace("timezone: UTC", f"timezone: {tz}")
    return read_export(src, mapping(tmp_path, body))


def utc(text):
    return pd.Timestamp(text, tz="UTC")


# ------------------------------------------------------------------- one format per column


def test_the_format_that_reads_every_value_is_used_for_the_whole_column(tmp_path):
    """13/04/2024 can only be day-first, so 05/04/2024 beside it is 5 April, not 4 May."""
    data = deals(tmp_path, ["05/04/2024", "13/04/2024"], MONTH_DAY)
    assert data.deals["created"].tolist() == [utc("2024-04-05"), utc("2024-04-13")]
    assert data.date_formats[["column", "format", "rows"]].values.tolist() == [["created_at", "%d/%m/%Y", 2]]
    assert row_problems(data) == []


def test_a_value_no_format_reads_is_a_row_problem_not_evidence(tmp_path):
    """A typo is reported on its row; the other values still decide the column's format."""
    data = deals(tmp_path, ["05/04/2024", "13/04/2024", "n/a"], MONTH_DAY)
    assert data.deals["created"].tolist()[:2] == [utc("2024-04-05"), utc("2024-04-13")]
    (p,) = row_problems(data)
    assert p.line == 4 and "'n/a' does not match the declared date format(s)" in p.message


def test_formats_that_agree_on_every_value_are_not_ambiguous(tmp_path):
    """04/04/2024 and 05/05/2024 are the same day month-first and day-first."""
    data = deals(tmp_path, ["04/04/2024", "05/05/2024"], MONTH_DAY)
    assert data.deals["created"].tolist() == [utc("2024-04-04"), utc("2024-05-05")]
    assert list(data.date_formats["format"]) == ["%m/%d/%Y"]


@pytest.mark.parametrize("values, formats, expected, used", [
    (["2021-04-15 23:03:00", "15 Apr, 2021 00:02:00"], '["%Y-%m-%d %H:%M:%S", "%d %b, %Y %H:%M:%S"]',
     ["2021-04-15 23:03", "2021-04-15 00:02"], {"%Y-%m-%d %H:%M:%S": 1, "%d %b, %Y %H:%M:%S": 1}),
    (["2024-04-01T10:00:00", "45383", "45292.6458333333"], '["%Y-%m-%dT%H:%M:%S", excel_serial]',
     ["2024-04-01 10:00", "2024-04-01 00:00", "2024-01-01 15:30"], {"%Y-%m-%dT%H:%M:%S": 1, "excel_serial": 2}),
])
def test_formats_needed_together_read_their_own_values(tmp_path, values, formats, expected, used):
    """Zoho's two formats, or ISO times beside Excel serials, in one column: no value is read by two
    formats, so each value takes the one that reads it, and both formats are listed."""
    data = deals(tmp_path, values, formats)
    assert data.deals["created"].tolist() == [utc(e) for e in expected]
    assert dict(data.date_formats[["format", "rows"]].values.tolist()) == used
    assert row_problems(data) == []


# ------------------------------------------------------------------- ambiguous columns refused


def test_formats_needed_together_that_read_a_value_differently_refuse_the_column(tmp_path):
    """05/04/2024 is 4 May month-first and 5 April day-first; 13/04/2024 needs day-first and
    04/20/2024 month-first: no format reads the column, so it is refused, not read per row."""
    with pytest.raises(ContentError) as err:
        deals(tmp_path, ["05/04/2024", "13/04/2024", "04/20/2024"], MONTH_DAY)
    (p,) = err.value.problems
    assert p.path.endswith("deals.csv") and (p.line, p.column, p.field) == (2, 2, "created_at")
    assert p.message.startswith("created: the date format of column 'created_at' is ambiguous")
    assert ("'05/04/2024' (row 2) is 2024-05-04 by '%m/%d/%Y' but 2024-04-05 by '%d/%m/%Y'" in p.message)
    assert ("'%m/%d/%Y' cannot read '13/04/2024' (row 3) and '%d/%m/%Y' cannot read '04/20/2024' (row 4)"
            in p.message)
    assert "never picks a format per row" in p.message
    assert (f"keep only the format these dates are written in under created in {tmp_path / 'mapping.yaml'}:16 "
            "(formats: ['%m/%d/%Y', '%d/%m/%Y']), or correct the values in the file") in p.message


def test_two_formats_that_both_read_every_value_differently_are_ambiguous(tmp_path):
    """Only values like 05/04/2024: either format reads them all, as other days; refused."""
    with pytest.raises(ContentError) as err:
        deals(tmp_path, ["05/04/2024", "05/06/2024", "01/02/2024"], MONTH_DAY)
    (p,) = err.value.problems
    assert "'%m/%d/%Y' and '%d/%m/%Y' both read every value of the column, differently" in p.message
    assert "'05/06/2024' (row 3) is 2024-05-06 by '%m/%d/%Y' but 2024-06-05 by '%d/%m/%Y'" in p.message
    assert "keep only the format these dates are written in" in p.message


def test_one_ambiguous_value_follows_its_column(tmp_path):
    """In a day-first column of 1,920 rows, 05/04/2024 is read day-first too; one month-first
    value (04/20/2024) makes the column ambiguous, and it is refused whatever the proportions."""
    days = [f"{d:02d}/{m:02d}/2024" for m in range(1, 13) for d in range(13, 29)]
    data = deals(tmp_path, days * 10 + ["05/04/2024"], MONTH_DAY)
    assert data.deals["created"].iloc[-1] == utc("2024-04-05")
    with pytest.raises(ContentError, match="is ambiguous"):
        deals(tmp_path, days * 10 + ["05/04/2024", "04/20/2024"], MONTH_DAY)


# ------------------------------------------------------------------- days without a midnight


@pytest.mark.parametrize("tz, day", [
    ("America/Santiago", "2024-09-08"), ("America/Havana", "2024-03-10"), ("Asia/Beirut", "2024-03-31")])
def test_a_date_on_a_day_whose_midnight_does_not_exist_is_that_days_first_instant(tmp_path, tz, day):
    """DST starts at 00:00 there: the date still means the day, placed at 01:00 local (the first
    instant that exists), checked against zoneinfo; it was a row problem before."""
    zone, midnight = ZoneInfo(tz), datetime.fromisoformat(day)
    assert midnight.replace(tzinfo=zone).astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != midnight
    first = (midnight + timedelta(hours=1)).replace(tzinfo=zone).astimezone(timezone.utc)
    assert (first - timedelta(microseconds=1)).astimezone(zone).date() < midnight.date()  # nothing earlier that day
    serial = (midnight - datetime(1899, 12, 30)).days
    data = deals(tmp_path, [day, str(serial)], DECLARED, tz)
    assert data.deals["created"].tolist() == [pd.Timestamp(first)] * 2
    assert row_problems(data) == []


def test_a_wall_time_in_the_gap_is_still_a_row_problem(tmp_path):
    """Case 28 holds for times of day: Santiago 2024-09-08 00:30 was skipped; 23:59 the evening
    before exists; the date alone is the day's first instant."""
    data = deals(tmp_path, ["2024-09-08 00:30", "2024-09-07 23:59", "2024-09-08"],
                 '["%Y-%m-%d %H:%M", "%Y-%m-%d"]', "America/Santiago")
    (p,) = row_problems(data)
    assert p.line == 2 and "2024-09-08 00:30:00 does not exist in America/Santiago" in p.message
    created = data.deals["created"].tolist()
    assert pd.isna(created[0]) and created[1:] == [utc("2024-09-08 03:59"), utc("2024-09-08 04:00")]


def test_a_day_skipped_whole_is_a_row_problem(tmp_path):
    """Samoa skipped 2011-12-30 when it crossed the date line: the date cannot be placed."""
    data = deals(tmp_path, ["2011-12-30", "2011-12-31"], DECLARED, "Pacific/Apia")
    (p,) = row_problems(data)
    assert p.line == 2 and "the day 2011-12-30 does not exist in Pacific/Apia" in p.message
    assert data.deals["created"][1] == pd.Timestamp("2011-12-31 00:00", tz="Pacific/Apia")


def test_xlsx_dates_in_a_gap_are_placed_or_reported_never_dropped(tmp_path):
    """An XLSX date cell at a skipped midnight is the day; a skipped time of day is a row problem
    (both were silently left empty before)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["deal_id", "created_at"])
    ws.append(["D-1", datetime(2024, 9, 8)])
    ws.append(["D-2", datetime(2024, 9, 8, 0, 30)])
    wb.save(tmp_path / "deals.xlsx")
    body = CASE_MAPPING.replace("timezone: UTC", "timezone: America/Santiago")
    data = read_export(tmp_path / "deals.xlsx", mapping(tmp_path, body))
    assert data.deals["created"][0] == utc("2024-09-08 04:00")
    (p,) = row_problems(data)
    assert p.line == 3 and "2024-09-08 00:30:00 does not exist in America/Santiago" in p.message


# ------------------------------------------------------------------- the real exports


def test_salesforce_dates_read_as_before():
    """Salesforce: date-only CreatedDate/CloseDate, 12-hour times in OpportunityHistory
    ('02/23/26 08:55 PM' is 20:55), every value read, one format per column."""
    data = read_export([SALESFORCE], "salesforce")
    assert data.problems == ()
    fm = data.date_formats.assign(file=data.date_formats["file"].str.rsplit("/", n=1).str[-1])
    assert fm[["file", "column", "format", "rows"]].values.tolist() == [
        ["Opportunity.csv", "CreatedDate", "%m/%d/%y", 36], ["Opportunity.csv", "CloseDate", "%m/%d/%y", 36],
        ["OpportunityHistory.csv", "CreatedDate", "%m/%d/%y %I:%M %p", 48],
        ["Lead.csv", "ConvertedDate", "%m/%d/%y", 5]]
    history = data.events[data.events["source_file"].str.endswith("OpportunityHistory.csv")]
    text = (SALESFORCE / "OpportunityHistory.csv").read_text(encoding="utf-8")
    at_855 = sum(line.split(",")[3] == "02/23/26 08:55 PM" for line in text.splitlines()[1:])
    assert at_855 > 0 and (history["timestamp"] == utc("2026-02-23 20:55")).sum() == at_855
