"""The one HTML table renderer of sopcoach: a Jinja2 macro with autoescape over plain cells.

Every table a page or the report shows is drawn here (``templates/table.html``): the learner's
exam and lesson tools, the trainer pages, the review app and the HTML monthly review. A cell's text is
escaped once, here; a :class:`markupsafe.Markup` text is HTML already. The module needs Jinja2
only (no pandas): :func:`sopcoach.analytics.report.html_table` turns a DataFrame into a
:class:`Table` and draws it with :func:`render`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

__all__ = ["LOADER", "Cell", "Markup", "Row", "Table", "render"]

#: The loader of the shared templates (``sopcoach/templates``); other environments chain it to import the macro.
LOADER = jinja2.FileSystemLoader(str(Path(__file__).with_name("templates")))

_ENV = jinja2.Environment(loader=LOADER, autoescape=True, undefined=jinja2.StrictUndefined)
#: The macro, compiled once at import: the learner server's kernel zygote imports this module before
#: it forks, so page kernels share the compiled template instead of each compiling it.
_TABLE_MACRO = _ENV.get_template("table.html").module.table  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Cell:
    """One table cell.

    ``text`` is shown escaped (any value, as ``str``) unless it is :class:`Markup`; ``css_class``
    is the cell's ``class`` attribute (none when empty); ``heads_row`` makes it a ``<th>``, the
    label of its row.
    """

    text: Any
    css_class: str = ""
    heads_row: bool = False


@dataclass(frozen=True)
class Row:
    """One table row: its cells (a :class:`Cell`, or any value for a plain cell) and its ``class``."""

    cells: Sequence[Any]
    css_class: str = ""


@dataclass(frozen=True)
class Table:
    """A table ready to draw.

    Attributes
    ----------
    header : sequence
        Column header texts (escaped unless Markup); empty: the table has no header row.
    rows : sequence
        Each a :class:`Row`, or a sequence of cells (a :class:`Cell` or a value).
    more : int, default 0
        Rows left out; when above 0 a note below the table says how many.
    css_class : str, default ``"t"``
        The table's ``class`` attribute (``t`` in the report and trainer pages, ``sopcoach-table``
        on the learner's pages).
    """

    header: Sequence[Any]
    rows: Sequence[Row | Sequence[Any]]
    more: int = 0
    css_class: str = "t"
    body: tuple[Row, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = tuple(r if isinstance(r, Row) else Row(r) for r in self.rows)
        body = tuple(Row(tuple(c if isinstance(c, Cell) else Cell(c) for c in r.cells), r.css_class) for r in rows)
        object.__setattr__(self, "body", body)

    @property
    def more_text(self) -> str:
        """The note under a cut table, e.g. ``1,234 more rows``."""
        return f"{self.more:,} more rows"


def render(table: Table) -> str:
    """Return ``table`` as an HTML fragment (``<table class=...>``), every text cell escaped.

    Examples
    --------
    >>> print(render(Table(["deal", "rate"], [["<b>A&B</b>", "50%"]])))
    <table class='t'><tr><th>deal</th><th>rate</th></tr><tr><td>&lt;b&gt;A&amp;B&lt;/b&gt;</td><td>50%</td></tr></table>
    >>> print(render(Table([], [Row([Cell("Pass mark", heads_row=True), Cell("90%", "score")], "ok")], css_class="x")))
    <table class='x'><tr class='ok'><th>Pass mark</th><td class='score'>90%</td></tr></table>
    """
    return str(_TABLE_MACRO(table))

