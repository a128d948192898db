"""Formula injection (OWASP's CSV injection): every CSV/XLSX export writes formula-leading texts as text.

Names typed by a person (``=HYPERLINK(...)``, ``+1``, ``-2+3``, ``@SUM``, a leading tab or carriage
return) come back from CSV files with a leading ``'``; from XLSX files exactly as typed, as string
cells (data type ``s``, no ``<f>`` element), never formulas; numbers, negative ones too, stay numbers.
"""
from __future__ import annotations

import csv
import io
import zipfile

import openpyxl
import pandas as pd
import pytest

from support import command_line_installation, correct_response

from sopcoach.certification.results import export_bytes, person_table
from sopcoach.spreadsheet import safe_cell, safe_frame, safe_row, xlsx_bytes

EVIL = ["=HYPERLINK(\"http://x.example\",\"y\")", "+1+2", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def test_safe_cell_prefixes_text_only():
    for text in EVIL:
        assert safe_cell(text) == "'" + text
    assert [safe_cell(v) for v in ("王伟", "", "a=b", -5, -2.5, True, None)] == ["王伟", "", "a=b", -5, -2.5, True, None]
    assert safe_row({"name": "=1", "n": -1}) == {"name": "'=1", "n": -1}


def test_safe_frame_keeps_number_columns():
    df = pd.DataFrame({"name": ["=1+1", "ok"], "delta": [-5, 3], "x": [-1.5, 2.0]}, index=["-a", "b"])
    out = safe_frame(df)
    assert list(out["name"]) == ["'=1+1", "ok"] and list(out.index) == ["'-a", "b"]
    assert out["delta"].dtype == "int64" and list(out["delta"]) == [-5, 3] and out["x"].dtype == "float64"
    assert df.loc["-a", "name"] == "=1+1"  # the caller's frame is not changed


def test_export_bytes_csv_and_xlsx_read_back_as_text():
    df = pd.DataFrame({"name": EVIL, "delta": range(-3, 3)})
    rows = list(csv.DictReader(io.StringIO(export_bytes(df, "csv").decode("utf-8-sig"), newline="")))
    assert [r["name"] for r in rows] == ["'" + e for e in EVIL]
    assert [r["delta"] for r in rows] == ["-3", "-2", "-1", "0", "1", "2"]
    data = export_bytes(df, "xlsx")
    assert_no_formula(data)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    names = [sheet.cell(row=i, column=1) for i in range(2, len(EVIL) + 2)]
    assert [c.data_type for c in names] == ["s"] * len(EVIL)
    assert [c.value for c in names] == [e.replace("\r", "\n") for e in EVIL]  # exact; XML reads CR as LF
    deltas = [sheet.cell(row=i, column=2) for i in range(2, len(EVIL) + 2)]
    assert [c.data_type for c in deltas] == ["n"] * len(EVIL) and [c.value for c in deltas] == [-3, -2, -1, 0, 1, 2]


def assert_no_formula(data: bytes) -> None:
    """The XLSX file ``data`` has no formula anywhere: no ``<f>`` element in any sheet's XML."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in sheets)


def test_xlsx_keeps_formula_texts_exactly_as_strings():
    """``=1+1`` and ``+E2`` (also as a column name) come back exactly, with no ``'``, as strings."""
    df = pd.DataFrame({"=A1": ["=1+1", "+E2", "-x", "ok"], "n": [-1, 0, 1, 2]})
    data = xlsx_bytes(df, "a sheet name longer than thirty-one characters")
    assert_no_formula(data)
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.active
    assert sheet.title == "a sheet name longer than thirty"  # Excel's 31 characters
    cells = [c for row in sheet.iter_rows(max_col=1) for c in row]
    assert [c.value for c in cells] == ["=A1", "=1+1", "+E2", "-x", "ok"]
    assert {c.data_type for c in cells} == {"s"}
    assert [c.value for c in sheet["B"][1:]] == [-1, 0, 1, 2]


def test_unescaped_xlsx_would_be_a_formula():
    """The check above can fail: openpyxl writes an unescaped ``=`` text as a formula."""
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        pd.DataFrame({"name": ["=1+1"]}).to_excel(xl, index=False)
    assert openpyxl.load_workbook(io.BytesIO(buf.getvalue())).active.cell(row=2, column=1).data_type == "f"


@pytest.fixture
def evil_home(tmp_path, monkeypatch):
    """An installation whose learners have formula names, teams and cohorts; each sat the exam once."""
    inst, clock, service = command_line_installation(tmp_path, monkeypatch)
    for i, name in enumerate(EVIL[:4]):
        inst.records.enroll(f"L{i}", name, team="=cmd|' /C calc'!A0", cohort="@c")
        aid = service.start_or_resume(f"L{i}", seed=i)
        for qid in inst.records.attempt(aid).question_ids:
            service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
        clock.advance(minutes=10)
        service.submit(aid)
        clock.advance(hours=25)
    return tmp_path, inst


@pytest.mark.parametrize("by", ["attempt", "person"])
def test_cli_results_csv_escapes(evil_home, capsys, by):
    from sopcoach.cli.main import main
    folder, _ = evil_home
    out = folder / f"{by}.csv"
    assert main(["results", "--by", by, "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline="")))
    assert [r["name"] for r in rows] == ["'" + e for e in EVIL[:4]]
    assert {r["team"] for r in rows} == {"'=cmd|' /C calc'!A0"} and {r["cohort"] for r in rows} == {"'@c"}


@pytest.mark.parametrize("by", ["attempt", "person"])
def test_cli_results_xlsx_writes_text_not_formulas(evil_home, by):
    from sopcoach.cli.main import main
    folder, _ = evil_home
    out = folder / f"{by}.xlsx"
    assert main(["results", "--by", by, "--format", "xlsx", "-o", str(out)]) == 0
    assert_no_formula(out.read_bytes())
    sheet = openpyxl.load_workbook(out).active
    header = [c.value for c in sheet[1]]
    cells = [row[header.index(col)] for row in sheet.iter_rows(min_row=2) for col in ("name", "team", "cohort")]
    assert len(cells) == 12 and {c.data_type for c in cells} == {"s"}
    assert sorted(c.value for c in cells[::3]) == sorted(EVIL[:4])  # exactly as typed, no "'"
    assert {c.value for c in cells[1::3]} == {"=cmd|' /C calc'!A0"} and {c.value for c in cells[2::3]} == {"@c"}
    numbers = [row[header.index("attempts" if by == "person" else "number")] for row in sheet.iter_rows(min_row=2)]
    assert {c.data_type for c in numbers} == {"n"}


def test_trainer_download_bytes_escape(evil_home):
    """The trainer results app's downloads are :func:`export_bytes` of :func:`person_table`."""
    _, inst = evil_home
    df = person_table(inst.records, inst.blueprint.id)
    sheet = openpyxl.load_workbook(io.BytesIO(export_bytes(df, "xlsx", sheet="person"))).active
    assert sorted(r[1] for r in sheet.iter_rows(min_row=2, values_only=True)) == sorted(EVIL[:4])
    assert all(c.data_type == "s" for row in sheet.iter_rows(min_row=2) for c in row[1:4])
