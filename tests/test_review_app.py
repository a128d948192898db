"""The monthly review app: it only displays what analytics computes, and forwards clicks."""
from __future__ import annotations

import html
import json
import re

import pytest

from sopcoach.errors import ConfigError
from sopcoach.crm.simulate import simulate
from sopcoach.ui.review_app import ALL, DEMO, UPLOAD, build, list_exports, monthly_review
from support import ROOT, UploadBrowser, day_first_close_dates

NOTEBOOK = ROOT / "notebooks" / "review" / "monthly_review.ipynb"


@pytest.fixture(scope="module")
def exports(tmp_path_factory, playbook):
    """A folder of exports: one simulated export with known breaches, and one stray CSV."""
    root = tmp_path_factory.mktemp("crm")
    sim = simulate(playbook, root / "acme-2025", seed=11, deals=120, weeks=13)
    (root / "notes.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    return root, sim


@pytest.fixture(scope="module")
def analysed(exports, playbook):
    """The app after loading the simulated export and analysing all months."""
    root, sim = exports
    app = build(root, lang="en", playbook=playbook)
    app.export.value = str(root / "acme-2025")
    app.load_button.click()
    app.month.value = ALL
    app.analyse_button.click()
    return app, sim


def test_exports_are_listed_with_demo_and_upload(exports, playbook):
    """The export picker offers each export folder and file, the demo and the uploaded files."""
    root, _ = exports
    app = build(root, lang="en", playbook=playbook)
    values = [v for _, v in app.export.options]
    assert values == [str(root / "acme-2025"), str(root / "notes.csv"), DEMO, UPLOAD]
    assert list_exports(root / "missing") == []


def test_analyse_is_disabled_until_an_export_is_loaded(exports, playbook):
    """The Analyse button stays disabled until an export has been read."""
    app = build(exports[0], lang="en", playbook=playbook)
    assert app.analyse_button.disabled
    app.export.value = str(exports[0] / "acme-2025")
    app.load_button.click()
    assert not app.analyse_button.disabled


def test_loading_offers_the_months_and_picks_the_latest(exports, playbook):
    """After loading, the months of the export are offered and the latest closed month is chosen."""
    app = build(exports[0], lang="en", playbook=playbook)
    app.export.value = str(exports[0] / "acme-2025")
    app.load_button.click()
    months = [v for _, v in app.month.options]
    assert months[0] == ALL and "2025-03" in months
    assert app.month.value == max(m for m in months if m != ALL)
    assert "Read 120 deals" in app.status.value


@pytest.mark.parametrize("export, month", [("salesforce_devorg_export_earthfink", "2026-02"),
                                           ("zoho_crm_export_sample", "2021-04")])
def test_the_review_opens_on_the_latest_month_with_new_and_closed_deals(playbook, export, month):
    """Salesforce's last month (2026-03) and Zoho's (2021-05) only close deals: the review opens on the latest month
    with deals both created and closed, so the first screen has a funnel and win rates, not "not computable"."""
    app = _real(playbook, export, "zh-CN")
    assert app.month.value == month and max(v for _, v in app.month.options if v != ALL) > month


def test_overview_shows_kpi_cards_and_charts(analysed):
    """The overview shows the KPI cards, the bottleneck call-out and the funnel, cycle and trend charts."""
    app, _ = analysed
    assert "Win rate" in app.cards.value and "Median sales cycle" in app.cards.value
    assert "callout" in app.callout.value or "ok" in app.callout.value
    for img in (app.funnel_img, app.cycle_img, app.trend_img):
        assert bytes(img.value).startswith(b"\x89PNG") and img.layout.display == ""


def _real(playbook, export: str, lang: str, month: str | None = None):
    """The review app on one of the shared real exports, loaded and (with ``month``) analysed for that month."""
    from support import SHARED
    folder = SHARED / "data" / "crm" / export
    app = build(folder.parent, lang=lang, playbook=playbook)
    app.export.value = str(folder)
    app.load_button.click()
    if month is not None:
        app.month.value = month
        app.analyse_button.click()
    return app


def test_a_month_without_new_deals_draws_no_empty_charts(playbook):
    """Salesforce's last month has no new deal and no won deal: the funnel and cycle charts (and the all-zero funnel
    table) are hidden, not drawn as empty axes; the HTML report leaves them out too; the cards say why."""
    from sopcoach.analytics import report
    app = _real(playbook, "salesforce_devorg_export_earthfink", "zh-CN", "2026-03")
    assert app.funnel_img.layout.display == "none" and app.cycle_img.layout.display == "none"
    assert app.funnel_table.value == "" and "漏斗为空" in app.callout.value
    assert app.trend_img.layout.display == "" and bytes(app.trend_img.value).startswith(b"\x89PNG")
    page = report.render_html(app.review, playbook=playbook)
    assert page.count("<img alt='chart'") == 1 and "销售周期分布" not in page


def test_compliance_tab_lists_every_injected_breach(analysed):
    """The findings table names every deal in which the simulator injected a breach."""
    app, sim = analysed
    for deal_id in set(sim.truth["deal_id"]):
        assert f"<td>{deal_id}</td>" in app.findings_table.value
    assert f"Findings ({len(sim.truth)})" in app.findings_table.value


def test_per_rep_view_switches_to_teams(analysed):
    """The per-rep view shows reps with their stage conversion, and switching the toggle shows teams."""
    app, _ = analysed
    app.group.value = "owner"
    assert "<th>rep</th>" in app.group_table.value and "<th>SOP deviations</th>" in app.group_table.value
    assert "Stage conversion and weak stage" in app.group_stages.value and "<th>weak stage</th>" in app.group_stages.value
    assert "<th>Needs analysis: conversion</th>" in app.group_stages.value
    app.group.value = "team"
    assert "<th>team</th>" in app.group_table.value and "华东1组" in app.group_table.value


def test_case_study_quotes_the_clause_and_asks_questions(analysed, playbook):
    """Picking a deal shows its deviations with the clause quoted, the timeline chart and prompts."""
    app, sim = analysed
    deal_id = sim.truth.loc[sim.truth["check"] == "sla:delivery", "deal_id"].iloc[0]
    app.deal.value = deal_id
    assert playbook.clause("sales-cycle-timeliness").text.en in app.case_deviations.value.replace("&#x27;", "'").replace("&quot;", '"')
    assert bytes(app.case_img.value).startswith(b"\x89PNG")
    assert app.case_prompts.value.count("<li>") >= 3
    assert "Delivery after contract signature" in app.case_timeline.value


def _uploaded(exports, playbook):
    """A review app (en) into which the simulated export's files were uploaded in 64 KB chunks: (app, browser, sim)."""
    _, sim = exports
    app = build(exports[0], lang="en", playbook=playbook)
    app.upload.chunk_bytes = 64 * 1024
    app.source.value = "simulated"
    browser = UploadBrowser(app.upload)
    browser.upload_files("b1", list(sim.files))
    return app, browser, sim


def test_uploaded_files_are_read(exports, playbook):
    """Files uploaded in chunks (CSV with a BOM) become the chosen export and are read like files on disk."""
    app, _browser, sim = _uploaded(exports, playbook)
    assert app.export.value == UPLOAD
    assert re.fullmatch(rf"Uploaded {len(sim.files)} files \([\d.]+ MB\): click Load\.", html.unescape(
        re.sub("<[^>]+>", "", app.status.value)))
    assert [p.name for p in app.upload.paths] == [p.name for p in sim.files]
    app.load_button.click()
    assert "Read 120 deals" in app.status.value


def test_an_interrupted_upload_keeps_the_loaded_export(exports, playbook):
    """Stopping an upload half-way leaves the export already read in place, and the status line says so."""
    app, browser, sim = _uploaded(exports, playbook)
    app.load_button.click()
    data = app.data
    first = sim.files[0]
    browser.begin("b2", [(first.name, first.stat().st_size)])
    browser.chunk("b2", 0, 0, first.read_bytes()[:1000])
    app.upload._on_msg(app.upload, {"type": "cancel", "batch": "b2"}, [])
    assert app.data is data and not app.analyse_button.disabled
    assert "Upload stopped: this upload is incomplete and not used" in html.unescape(app.status.value)
    assert "The export already loaded and the files of the last complete upload are unchanged" in html.unescape(
        app.status.value)
    app.load_button.click()  # the last complete upload is still there
    assert "Read 120 deals" in app.status.value


def test_upload_limit_comes_from_the_environment(exports, playbook, monkeypatch):
    """SOPCOACH_UPLOAD_MAX_MB sets the largest file accepted; a file over it is refused with the limit named."""
    monkeypatch.setenv("SOPCOACH_UPLOAD_MAX_MB", "2.5")
    app = build(exports[0], playbook=playbook)
    assert app.upload.max_bytes == 2_500_000
    UploadBrowser(app.upload).begin("b1", [("deals.csv", 3_000_000)])
    assert "deals.csv（3.0 MB）超过上限 2 MB" in app.status.value and app.upload.paths == []
    monkeypatch.setenv("SOPCOACH_UPLOAD_MAX_MB", "lots")
    with pytest.raises(ConfigError, match="SOPCOACH_UPLOAD_MAX_MB"):
        build(exports[0], playbook=playbook)


def test_nothing_uploaded_is_a_message_not_an_error(exports, playbook):
    """Loading the upload slot with no file shows a warning in the status line."""
    app = build(exports[0], lang="en", playbook=playbook)
    app.export.value = UPLOAD
    app.load_button.click()
    assert "sopcoach-msg-warning" in app.status.value and "Upload CSV or XLSX files first" in app.status.value


def test_unreadable_export_shows_its_problems(exports, playbook):
    """An export the mapping cannot read shows each problem (file, line, fix) in the status line."""
    app = build(exports[0], lang="en", playbook=playbook)
    app.export.value = str(exports[0] / "notes.csv")
    app.source.value = "maven"
    app.load_button.click()
    assert "sopcoach-msg-warning" in app.status.value
    assert "column &#x27;opportunity_id&#x27; not found in the header" in app.status.value
    assert app.analyse_button.disabled


def test_demo_export_is_generated_on_demand(playbook, tmp_path):
    """The demo entry simulates an export when chosen, so the app works without any file."""
    app = build(tmp_path, lang="en", playbook=playbook)
    assert [v for _, v in app.export.options] == [DEMO, UPLOAD]
    app.load_button.click()
    assert "Read 160 deals" in app.status.value


def test_monthly_review_returns_a_widget(playbook, tmp_path):
    """The notebook's one call returns the app's root widget."""
    import ipywidgets as w
    assert isinstance(monthly_review(tmp_path, lang="zh-CN", playbook=playbook), w.VBox)


def test_callbacks_never_print():
    """Case 29: the app never prints (output would vanish in Voila); feedback goes to widgets."""
    source = (ROOT / "src" / "sopcoach" / "ui" / "review_app.py").read_text(encoding="utf-8")
    assert not re.search(r"(?<![\w.])print\(", source)


def test_notebook_is_thin_and_without_outputs():
    """The review notebook is a title, one import and one builder call, with no outputs or logic."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = nb["cells"]
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert code == ["from sopcoach.ui.review_app import monthly_review", "monthly_review()"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")


def test_an_export_with_no_checkable_rule_never_reads_as_zero_deviations(playbook, tmp_path):
    """The Maven export supports no SOP check: the app says so instead of "0 findings", the deal list
    shows no deviation counts, and a case study says nothing can be judged (README: not checkable is
    never zero breaches)."""
    app = _real(playbook, "maven_crm_sales_opportunities", "en", "2017-06")
    assert app.review.compliance.checked == 0
    assert "No SOP rule could be checked" in app.status.value and "0 findings" not in app.status.value
    assert "no findings does not mean no deviations" in app.findings_table.value
    assert app.deal.options and not any("deviations" in label for label, _ in app.deal.options)
    assert "No SOP rule could be checked" in app.case_deviations.value
    assert "No deviation" not in app.case_deviations.value
    assert "Tier: —" in app.case_title.value  # Maven has no tiers: a dash, not "nan"
    assert len(app.deal.options) == 300 and "Listing 300 of 641 deals" in app.deal_note.value
    assert any("which events" in p for p in app.case_prompts.value.split("<li>"))


def test_unreadable_values_are_summarised_above_the_figures(exports, playbook, tmp_path):
    """An export whose close dates are written day first: loading shows the summary of unreadable values
    (file, column, count, example line, fix) above the tabs, and the KPI cards say not computable."""
    _, sim = exports
    count = day_first_close_dates(sim.folder, tmp_path / "day-first")
    app = build(tmp_path, lang="en", playbook=playbook)
    app.export.value = str(tmp_path / "day-first")
    app.load_button.click()
    assert f"{count} values could not be read (summary below" in app.status.value
    # each file read is a line of its own under the message, escaped once (no "<br>" shown as text)
    assert "&lt;" not in app.status.value and "&amp;#" not in app.status.value
    assert app.status.value.count("<br>") == len(app.data.files)
    assert f"<small>{html.escape(app.data.files[0].describe('en', short=True))}" in app.status.value
    assert "/" not in app.data.files[0].describe("en", short=True).split(":")[0]  # the file's name, not its folder
    summary = app.problems.value
    assert f"<b>{count} values could not be read (1 column); the figures that need them are not computable:</b>" in summary
    assert f"column 关闭时间: {count} values; e.g. line 2: closed: " in summary and "; fix: correct the value" in summary
    assert app.widget.children.index(app.problems) < app.widget.children.index(app.tabs)
    app.month.value = ALL
    app.analyse_button.click()
    assert "Close dates of won deals could not be read" in app.cards.value
    assert "no deal was won or lost" not in app.cards.value


def _download(button) -> tuple[str, bytes]:
    """What one click of a download button makes: the browser's ``want`` message in, the file name and bytes out."""
    sent = []
    button.send = lambda content, buffers=None: sent.append((content, buffers))
    button._handle_custom_msg({"type": "want"}, [])
    ((content, buffers),) = sent
    assert content["type"] == "file", content
    return content["name"], bytes(buffers[0])


def test_report_download_is_one_self_contained_html_file(analysed):
    """The report button offers one HTML file that asks nothing from the network and carries its charts inline."""
    app, _ = analysed
    name, data = _download(app.report_button)
    page = data.decode("utf-8")
    assert name == "sopcoach-review-all-months.html"
    assert not re.search(r"(src|href)=['\"]?https?://", page) and "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") >= 3 and "@media print" in page
    assert "<h2>Pipeline</h2>" in page and app.pipe_month.value in page  # the pipeline tab's month is in the file


def test_each_table_downloads_as_xlsx_with_labels_and_percent_formats(analysed):
    """Every table of the review downloads as an XLSX that openpyxl reads: labelled header, rates as 0.0%."""
    import io
    import openpyxl
    app, _ = analysed
    keys = [v for _, v in app.table_pick.options]
    assert {"funnel", "trend", "checks", "findings", "by-owner", "quality"} <= set(keys)
    for key in keys:
        app.table_pick.value = key
        name, data = _download(app.xlsx_button)
        assert name.endswith(f"-{key}.xlsx")
        ws = openpyxl.load_workbook(io.BytesIO(data)).active
        header = [c.value for c in ws[3]]
        assert all(isinstance(h, str) and "_" not in h for h in header if h), (key, header)
        if key == "by-owner":
            rate = header.index("win rate") + 1
            assert ws.cell(row=4, column=rate).number_format == "0.0%"


def test_case_study_shows_stages_against_the_sop_and_downloads_without_seed_refs(analysed):
    """The case tab lists each stage with its limit, working days and verdict; the clause is quoted without its
    seed reference on the page; the case study downloads as one HTML file."""
    app, _ = analysed
    assert "time (working days)" in app.case_sop.value and "verdict" in app.case_sop.value
    assert "<span class='v-breached'>breached</span>" in app.case_sop.value  # coloured, not escaped
    assert "seed:" not in app.case_deviations.value
    assert "<th>time (Beijing time)</th>" in app.case_timeline.value  # its times are local: the header says where
    name, data = _download(app.case_button)
    assert name.startswith("sopcoach-case-") and "https://" not in data.decode("utf-8")
    assert "time (Beijing time)" in data.decode("utf-8")
    _name, report_page = _download(app.report_button)
    assert "time (Beijing time)" in report_page.decode("utf-8")


def test_a_deviation_becomes_a_draft_in_quizzes_drafts(exports, playbook, tmp_path, monkeypatch):
    """The draft button writes the chosen deviation to quizzes/drafts/ of the content folder, not to the bank."""
    import shutil
    for part in ("playbook", "quizzes", "lessons"):
        shutil.copytree(ROOT / part, tmp_path / "content" / part)
    monkeypatch.setenv("SOPCOACH_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    root, _ = exports
    bank_before = {p.name: p.read_bytes() for p in (tmp_path / "content" / "quizzes" / "bank").glob("*.yaml")}
    app = build(root, lang="en", playbook=playbook, content=tmp_path / "content")
    app.export.value = str(root / "acme-2025")
    app.load_button.click()
    app.month.value = ALL
    app.analyse_button.click()
    assert app.draft_pick.options
    app.draft_button.click()
    assert "saved to quizzes/drafts/case_studies.yaml" in app.draft_out.value, app.status.value
    assert "saved to quizzes/drafts/" in app.status.value and "Writing" not in app.status.value  # not left "busy"
    drafts = tmp_path / "content" / "quizzes" / "drafts" / "case_studies.yaml"
    assert drafts.is_file()
    assert bank_before == {p.name: p.read_bytes() for p in (tmp_path / "content" / "quizzes" / "bank").glob("*.yaml")}
    written = drafts.read_bytes()
    app.draft_button.click()  # the same deviation again: said, not saved twice
    assert "has a draft already" in app.draft_out.value and drafts.read_bytes() == written
    assert "has a draft already" in app.status.value


def test_loading_reports_each_file_as_it_is_read(exports, playbook):
    """Reading an export steps through its files: the progress bar reaches the file count."""
    app = build(exports[0], lang="en", playbook=playbook)
    app.export.value = str(exports[0] / "acme-2025")
    seen = []
    app.progress.observe(lambda ch: seen.append(ch["new"]), names="value")
    app.load_button.click()
    assert app.progress.max == len(app.data.files) and seen and max(seen) == len(app.data.files)


def test_salesforce_case_study_reads_by_names_and_sop_stages(playbook):
    """On the Salesforce export (zh-CN) the deal picker, the case title and the download name each deal and its
    customer (ids only as a small note), never "?"; the stage is the SOP's, Salesforce's own value a note;
    the SOP table's reasons are in plain words, the mapping help one note under the table."""
    from support import SHARED
    sf = SHARED / "data" / "crm" / "salesforce_devorg_export_earthfink"
    app = build(sf.parent, lang="zh-CN", playbook=playbook)
    app.export.value = str(sf)
    app.load_button.click()
    app.month.value = ALL
    app.analyse_button.click()
    import pandas as pd
    opp = pd.read_csv(sf / "Opportunity.csv").set_index("Id")
    customers = pd.read_csv(sf / "Account.csv").set_index("Id")["Name"]
    assert app.deal.options and not any("?" in label for label, _ in app.deal.options)
    for label, deal_id in app.deal.options:
        name, customer = opp.at[deal_id, "Name"], customers[opp.at[deal_id, "AccountId"]]
        assert label.startswith(f"{name} · {customer} · ") and label.endswith(f" · {deal_id}"), label
    deal_id = next(d for _, d in app.deal.options if opp.at[d, "StageName"] == "Closed Won")
    app.deal.value = deal_id
    name, account = opp.at[deal_id, "Name"], opp.at[deal_id, "AccountId"]
    title = app.case_title.value
    assert f"<h3>{html.escape(name)}</h3>" in title
    assert f"<small>商机编号 {deal_id}；客户编号 {account}</small>" in title
    assert f"客户：{html.escape(customers[account])}" in title and "负责人：—" in title
    assert "阶段：赢单<small class='crm'>（CRM：Closed Won）</small>" in title
    sop = app.case_sop.value
    table, note = sop.split("</table>")
    assert "`" not in table and "stage_dates" not in table and "映射" not in table
    assert "<p class='legend'>有 " in note and "项时限无法检查" in note and "`" not in note
    _file, data = _download(app.case_button)
    page = data.decode("utf-8")
    assert f"<h1>案例研讨：{html.escape(name)}</h1>" in page and f"客户：{html.escape(customers[account])}" in page
    assert "（CRM：Closed Won）" in page and "项时限无法检查" in page


def test_question_drafts_reuse_the_exports_compliance(exports, playbook, tmp_path, monkeypatch):
    """A second deal and a second draft compute no compliance again: once per loaded export and language."""
    import shutil
    import sopcoach.analytics.case_study as module
    for part in ("playbook", "quizzes"):
        shutil.copytree(ROOT / part, tmp_path / "content" / part)
    monkeypatch.setenv("SOPCOACH_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    calls = []
    real = module.check_compliance
    monkeypatch.setattr(module, "check_compliance", lambda *a, **k: calls.append(k.get("lang")) or real(*a, **k))
    root, _ = exports
    app = build(root, lang="en", playbook=playbook, content=tmp_path / "content")
    app.export.value = str(root / "acme-2025")
    app.load_button.click()
    app.month.value = [v for _, v in app.month.options][1]  # a month: the case studies need all months
    app.analyse_button.click()
    deals = [v for _, v in app.deal.options]
    app.deal.value = deals[1]
    app.deal.value = deals[0]
    assert calls == ["en"]
    for said in ("saved to quizzes/drafts/", "has a draft already"):
        app.draft_button.click()
        assert said in app.draft_out.value, app.status.value
    assert calls == ["en", "zh-CN"]


def test_the_table_picker_starts_on_the_first_table_so_the_xlsx_button_always_makes_one(exports, playbook):
    """After Analyse the table picker shows the first table (never an empty pick): pressing "Download Excel" at once
    offers that table; a table picked before stays picked when the review is analysed again."""
    root, _ = exports
    app = build(root, lang="en", playbook=playbook)
    app.export.value = str(root / "acme-2025")
    app.load_button.click()
    app.analyse_button.click()
    first = app.table_pick.options[0][1]
    assert app.table_pick.value == first == "funnel"
    name, _ = _download(app.xlsx_button)
    assert name.endswith("-funnel.xlsx") and "Choose a table" not in app.status.value
    app.table_pick.value = "quality"
    app.analyse_button.click()
    assert app.table_pick.value == "quality"
