"""The monthly review as HTML: the one table renderer, the self-contained report, escaping of CRM values."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from markupsafe import Markup, escape

from sopcoach.analytics.case_study import case_study
from sopcoach.analytics.report import html_table, render_html
from sopcoach.analytics.review import review
from sopcoach.crm.reading import read_export
from sopcoach.crm.simulate import simulate
from support import day_first_close_dates

HOSTILE = '<script>alert(1)</script> & "Co"'


def rename_deal(folder: Path, old: str, new: str) -> None:
    """Give deal ``old`` the id ``new`` in a simulated export (its deal row and all its events)."""
    for name in ("商机.csv", "跟进记录.csv"):
        path = folder / name
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            if row["商机编号"] == old:
                row["商机编号"] = new
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


@pytest.fixture(scope="module")
def sim(playbook, tmp_path_factory):
    return simulate(playbook, tmp_path_factory.mktemp("sim"), seed=3, deals=80, weeks=12)


def test_html_report_is_self_contained(sim, playbook):
    """The HTML report embeds its charts as data URIs and loads nothing from elsewhere."""
    data = read_export(sim.folder, "simulated", playbook=playbook)
    rv = review(data, playbook, as_of=sim.as_of, lang="en")
    page = render_html(rv, case=case_study(data, playbook, sim.truth.iloc[0]["deal_id"], rv.compliance),
                       playbook=playbook)
    assert page.count("data:image/png;base64,") == 4
    assert "src='http" not in page and "href=" not in page and "<script" not in page


def test_report_escapes_a_hostile_deal_name(sim, playbook, tmp_path):
    """A deal named ``<script>alert(1)</script> & "Co"`` shows as that text in the findings and the case study."""
    folder = tmp_path / "export"
    folder.mkdir()
    for f in sim.folder.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    breached = sim.truth.iloc[0]["deal_id"]
    rename_deal(folder, breached, HOSTILE)
    data = read_export(folder, "simulated", playbook=playbook)
    rv = review(data, playbook, as_of=sim.as_of, lang="en")
    assert HOSTILE in set(rv.compliance.findings["deal_id"])
    page = render_html(rv, case=case_study(data, playbook, HOSTILE, rv.compliance), playbook=playbook)
    shown = str(escape(HOSTILE))  # &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Co&#34;
    assert f"<td>{shown}</td>" in page  # the findings table
    assert f"<h2>Case study: {shown}</h2>" in page
    assert "<script" not in page and '"Co"' not in page


def test_html_table_formats_a_column_the_same_in_every_row():
    """Fractions keep 3 decimals, days 1 decimal in every row (6.1 next to 65.6, not 6.102)."""
    df = pd.DataFrame({"win_rate": [0.5, 0.123], "cycle_mean": [6.1024, 65.61]},
                      index=pd.Index(["2017-05", "2017-06"], name="month"))
    out = html_table(df)
    assert "<td>0.500</td>" in out and "<td>0.123</td>" in out
    assert "<td>6.1</td>" in out and "<td>65.6</td>" in out and "6.102" not in out


def test_html_table_escapes_every_cell_but_markup_from_a_format():
    """Headers, index, values and a format's text are escaped; a format that returns Markup is HTML."""
    df = pd.DataFrame({"<h>": ["a<b"], "flag": ["x"], "note": ["y"]}, index=pd.Index(["i&j"], name="k'"))
    out = html_table(df, formats={"flag": lambda v: Markup("<b>%s</b>") % v, "note": lambda v: f"<i>{v}</i>"})
    assert out == ("<table class='t'><tr><th>k&#39;</th><th>&lt;h&gt;</th><th>flag</th><th>note</th></tr>"
                   "<tr><td>i&amp;j</td><td>a&lt;b</td><td><b>x</b></td><td>&lt;i&gt;y&lt;/i&gt;</td></tr></table>")


def test_html_table_says_how_many_rows_it_leaves_out():
    """Past ``max_rows`` the table stops and a note gives the number of rows left out."""
    out = html_table(pd.DataFrame({"n": range(1205)}), max_rows=200)
    assert out.count("<tr>") == 201 and out.endswith("<p class='muted'>… 1,005 more rows</p>")


def test_html_table_shows_missing_values_lists_and_headers_as_asked():
    """``missing`` replaces None and NaN, lists are joined by commas, ``headers`` renames columns."""
    df = pd.DataFrame({"clauses": [["a", "b"], None], "score": [float("nan"), 0.5]})
    out = html_table(df, index=False, missing="–", headers={"clauses": "Clauses"})
    assert "<th>Clauses</th><th>score</th>" in out
    assert "<tr><td>a, b</td><td>–</td></tr><tr><td>–</td><td>0.500</td></tr>" in out


def test_report_summarises_unreadable_values_first(sim, playbook, tmp_path):
    """With the close dates written day first, the report opens with the summary of unreadable values
    (file, column, count, example line, fix), before the KPI cards, which say not computable."""
    count = day_first_close_dates(sim.folder, tmp_path / "export")
    data = read_export(tmp_path / "export", "simulated", playbook=playbook)
    page = render_html(review(data, playbook, lang="en"))
    summary = page.index(f"<b>{count} values could not be read (1 column); the figures that need them are not "
                         "computable:</b>")
    assert summary < page.index("<h2>KPI</h2>")
    first = page[summary:page.index("</div>", summary)]
    assert "商机.csv, column 关闭时间: " in first and f": {count} values; e.g. line 2: closed: " in first
    assert "; fix: correct the value or declare its format in the mapping" in first
    cards = page[page.index("<h2>KPI</h2>"):page.index("<h2>Funnel</h2>")]
    assert "Close dates of won deals could not be read" in cards
    assert "no deal was won or lost" not in page
    trend = page[page.index("<h2>Month-over-month trend</h2>"):page.index("<h2>SOP compliance</h2>")]
    assert "<div class='callout'>not computable (won, lost, win rate, " in trend
