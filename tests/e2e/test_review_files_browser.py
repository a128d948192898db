"""The monthly review's files in Chromium: the HTML report and the case study print to PDF with their charts,
and opening them asks nothing of the network."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from sopcoach.analytics.case_study import case_study
from sopcoach.analytics.downloads import case_study_html, report_html
from sopcoach.analytics.review import review
from sopcoach.content.playbook import load_playbook
from sopcoach.crm.reading import read_export
from sopcoach.crm.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pb = load_playbook(ROOT / "playbook")
    sim = simulate(pb, tmp_path_factory.mktemp("crm") / "demo", seed=7, deals=120, weeks=13)
    data = read_export([sim.folder], "simulated", playbook=pb)
    rv = review(data, pb, None, lang="zh-CN")
    cs = case_study(data, pb, rv.compliance.findings["deal_id"].iloc[0], rv.compliance, lang="zh-CN")
    return {"report": report_html(rv, playbook=pb, case=cs), "case": case_study_html(cs, pb)}


@pytest.mark.parametrize(("name", "charts"), [("report", 4), ("case", 1)])
def test_file_prints_to_pdf_with_its_charts_and_no_outside_request(files, contexts, tmp_path, name, charts):
    """Opened from disk and printed to A4 PDF by Chromium, the file keeps every chart; nothing was fetched."""
    from pypdf import PdfReader
    path = tmp_path / f"{name}.html"
    path.write_text(files[name], encoding="utf-8")
    page = contexts.new().new_page()
    page.goto(path.as_uri())
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 100)")
    pdf = PdfReader(io.BytesIO(page.pdf(format="A4")))
    assert sum(len(p.images) for p in pdf.pages) == charts
    assert contexts.blocked == []
