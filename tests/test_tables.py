"""The one table renderer (sopcoach.tables): escaping, classes, row labels, cut tables."""
from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

import sopcoach
from sopcoach.analytics.report import html_table
from sopcoach.tables import Cell, Markup, Row, Table, render


def test_text_cells_are_escaped_and_markup_cells_are_not():
    """A CRM value with markup shows as text; a Markup cell built by the page stays HTML, its values escaped."""
    out = render(Table(["<h>"], [["<script>x</script>"], [Markup("<b>{}</b>").format("a&b")]]))
    assert "<script>" not in out and "&lt;script&gt;x&lt;/script&gt;" in out
    assert "<td><b>a&amp;b</b></td>" in out and "<th>&lt;h&gt;</th>" in out


def test_row_and_cell_classes_and_row_labels():
    """Classes appear only where given; a heads_row cell is a <th> inside its row."""
    out = render(Table([], [Row([Cell("Pass mark", heads_row=True), Cell("90%", "score")], "ok"), ["a", "b"]],
                       css_class="sopcoach-table"))
    assert out == ("<table class='sopcoach-table'><tr class='ok'><th>Pass mark</th><td class='score'>90%</td></tr>"
                   "<tr><td>a</td><td>b</td></tr></table>")


def test_a_cut_table_says_how_many_rows_are_left_out():
    """A DataFrame longer than max_rows shows the first rows and the count of the rest."""
    out = html_table(pd.DataFrame({"n": range(1205)}), index=False, max_rows=5)
    assert out.count("<tr>") == 6 and "1,200 more rows" in out
    assert "more rows" not in render(Table(["n"], [[1]]))


def _code_strings(tree: ast.AST) -> list[str]:
    """Return the string constants of a module's code (docstrings, which show rendered tables, left out)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_no_module_writes_table_markup_of_its_own():
    """Every table goes through the one renderer: no Python code of sopcoach spells out a <table> or <tr>."""
    src = Path(sopcoach.__file__).parent
    writers = sorted({p.relative_to(src).as_posix() for p in src.rglob("*.py")
                      for text in _code_strings(ast.parse(p.read_text(encoding="utf-8")))
                      if "<table" in text or "<tr" in text})
    assert writers == []
