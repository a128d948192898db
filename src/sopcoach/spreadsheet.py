"""Cells safe to open in a spreadsheet: the one place that guards against formula injection.

CSV: a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets when a CSV file is opened. Following OWASP's rule
for CSV injection (https://owasp.org/www-community/attacks/CSV_Injection), :func:`safe_cell`
prefixes such a text with a single quote, so it is shown as text; numbers (negative ones too),
booleans, dates and empty cells are left as they are. Every sopcoach CSV export of text a person
typed (names, teams, cohorts, question texts) passes its cells through :func:`safe_cell`,
:func:`safe_row` or :func:`safe_frame` first: ``sopcoach results``, the trainer results app's
downloads (:func:`sopcoach.certification.results.export_bytes`) and ``sopcoach trainer itemstats``.

XLSX: a cell stored as a string (data type ``s``) is never run, so :func:`xlsx_bytes` keeps every
text exactly as typed (``=1+1`` stays ``=1+1``, with no ``'`` shown) and only stops openpyxl from
storing a text that starts with ``=`` as a live formula (data type ``f``).

The module needs no pandas to import (:func:`safe_frame` takes any DataFrame-like object with
``copy``, ``columns``, ``index`` and column ``map``; :func:`xlsx_bytes` imports pandas itself).
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["FORMULA_PREFIXES", "XLSX_MIME", "safe_cell", "safe_frame", "safe_row", "xlsx_bytes"]

#: The first characters that make a spreadsheet read a text cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: The MIME type of an XLSX file (what a download of one is labelled).
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

F = TypeVar("F")


def safe_cell(value: Any) -> Any:
    """Return ``value``, with a ``'`` in front when it is a text starting with a formula character.

    >>> safe_cell("=HYPERLINK(\\"http://x\\")"), safe_cell("-5"), safe_cell(-5), safe_cell("王伟")
    ('\\'=HYPERLINK("http://x")', "'-5", -5, '王伟')
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``row`` (one CSV/JSON record) with every value passed through :func:`safe_cell`."""
    return {k: safe_cell(v) for k, v in row.items()}


def safe_frame(df: F) -> F:
    """Return a copy of the DataFrame ``df`` with every text cell (and text index label) made safe.

    Columns of numbers keep their dtype; in a column of objects only the ``str`` values change.
    """
    out = df.copy()  # type: ignore[attr-defined]
    for column in out.columns:
        if out[column].dtype.kind == "O":  # object or pandas' str dtype
            out[column] = out[column].map(safe_cell)
    if out.index.dtype.kind == "O":
        out.index = out.index.map(safe_cell)
    return out


def xlsx_bytes(df: Any, sheet: str = "sheet") -> bytes:
    """Return the DataFrame ``df`` as an XLSX file (bytes): one sheet named ``sheet`` (cut to 31
    characters, Excel's limit), a header row and no index column.

    Every text cell, the header too, is stored as a string (openpyxl data type ``s``, no ``<f>``
    element), exactly as it is in ``df``: a string cell is never run as a formula, so no ``'`` is
    added. Numbers, booleans and dates keep their types.
    """
    import pandas as pd  # noqa: PLC0415 - heavy: only the XLSX exports need it

    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        df.to_excel(xl, sheet_name=sheet[:31], index=False)
        for row in xl.sheets[sheet[:31]].iter_rows():
            for cell in row:
                if cell.data_type == "f":  # openpyxl's guess for a text starting with "="
                    cell.data_type = "s"
    return buf.getvalue()
