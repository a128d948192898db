"""The monthly review app for trainers (``notebooks/review/monthly_review.ipynb``, trainer server only).

Pick an export and a month -> KPI cards (coloured against their targets), the month's pipeline (with
its own month picker: value by stage, weighted forecast, time in stage, reps, lost reasons), funnel
chart, cycle-time distribution, bottleneck call-out, month-over-month trend, compliance table,
per-rep view, data quality, every table labelled in the page's language (:mod:`sopcoach.labels`);
then a case-study walkthrough: pick a deal -> its timeline against the SOP stages with each deviation marked, the
clause quoted, and discussion prompts (seed:1.3.2, seed:3.3.2).

The widgets only display and forward clicks: reading is :func:`sopcoach.crm.reading.read_export`, every
figure and finding comes from :mod:`sopcoach.analytics`, drawn by :mod:`sopcoach.analytics.report`.
Feedback goes to a status widget in the layout, never to ``print`` (shared case 29); errors are
logged on the server, not shown as tracebacks.

Exports are found in ``$SOPCOACH_CRM_DIR`` (default ``crm/`` in the data home, see
:func:`sopcoach.config.settings`; ``var/crm`` in the project folder unless ``SOPCOACH_HOME`` says otherwise):
each sub-folder is one export, each CSV/XLSX file directly inside is one too. Files can also be
uploaded (in chunks, with a progress bar per file: :class:`~sopcoach.ui.chunked_upload.ChunkedUpload`;
at most ``$SOPCOACH_UPLOAD_MAX_MB`` decimal megabytes per file, default :data:`UPLOAD_MAX_MB`), and a
simulated demo export is always offered.
"""
from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
from markupsafe import Markup

from ..analytics import downloads, report
from ..spreadsheet import XLSX_MIME
from ..analytics.case_study import (all_months_compliance, case_study, crm_note, deal_words, draft_question,
                                    missing_data_note, remember_compliance, stage_words)
from ..analytics.kpis import stage_conversion_by
from ..analytics.period import Period, months_of
from ..analytics.pipeline import pipeline_report
from ..analytics.review import review
from ..config import content_folder, settings
from ..content.playbook import load_playbook
from ..content.quizbank import load_bank
from ..authoring.question_edit import DRAFTS_FILE, existing_draft, save_draft
from ..labels import column_label
from ..crm.reading import read_export
from ..crm.simulate import simulate
from ..errors import ConfigError, SopcoachError
from ..i18n import current_lang, page_lang, t
from ..tables import render as render_table
from ._common import esc, html_class, log_to_server, safe, trainer_page
from .download_button import DownloadButton, Made
from .chunked_upload import ChunkedUpload

DEMO = "__demo__"
UPLOAD = "__upload__"
ALL = "__all__"

CSS = """
<style>
.sopcoach-review { font-family: "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif; }
.sopcoach-review .cards{display:flex;flex-wrap:wrap;gap:10px}
.sopcoach-review .card{border:1px solid #ccd;border-radius:6px;padding:8px 12px;min-width:150px;max-width:230px;background:#fff}
.sopcoach-review .card .k{font-size:12px;color:#555}.sopcoach-review .card .v{font-size:24px;font-weight:bold}
.sopcoach-review .card .s{font-size:11px;color:#666}
.sopcoach-review .card.met{border-left:6px solid #1b7f3b;background:#f3faf4}.sopcoach-review .card.near{border-left:6px solid #b7791f;background:#fdf8ec}.sopcoach-review .card.missed{border-left:6px solid #c0392b;background:#fdf1f0}.sopcoach-review .card .target{font-weight:bold;color:#333}
.sopcoach-review .legend{font-size:12px;color:#555;max-width:820px}
.sopcoach-review .note{font-size:12px;color:#555;margin:0}.sopcoach-review small.crm{color:#666;font-weight:normal}
.sopcoach-review table.t{border-collapse:collapse;font-size:12px;margin:6px 0}
.sopcoach-review table.t td,.sopcoach-review table.t th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}
.sopcoach-review .sopcoach-pipeline table.t td{white-space:nowrap}.sopcoach-review .sopcoach-pipeline table.t:first-of-type td:last-child{white-space:normal;min-width:18em}
.sopcoach-review .callout{background:#fdecea;border-left:4px solid #c0392b;padding:8px 12px;margin:8px 0}
.sopcoach-review .ok{background:#eef6ee;border-left:4px solid #1b7f3b;padding:8px 12px;margin:8px 0}
.sopcoach-review .neutral{background:#f4f4f6;border-left:4px solid #8a8a99;padding:8px 12px;margin:8px 0}
.sopcoach-review .clause{background:#f3f6fa;border-left:4px solid #4a7bb7;padding:6px 10px;margin:4px 0;font-size:13px}
.sopcoach-review .v-met{color:#1b7f3b}.sopcoach-review .v-breached{color:#b3261e;font-weight:bold}.sopcoach-review .v-not_checkable{color:#8a5300}
.sopcoach-msg-info{color:#2b5c94}.sopcoach-msg-warning{color:#8a5300}.sopcoach-msg-danger{color:#b3261e}
</style>
"""


#: The largest file accepted by the upload, in decimal megabytes, unless ``$SOPCOACH_UPLOAD_MAX_MB`` says otherwise.
UPLOAD_MAX_MB = 1000

#: most deals offered in the case-study picker (a month of a large export closes thousands)
CASE_LIMIT = 300


def exports_dir() -> Path:
    """Return the folder holding the exports offered in the app: ``$SOPCOACH_CRM_DIR``, else ``crm/`` in the data home.

    Raises
    ------
    ConfigError
        When ``SOPCOACH_CRM_DIR`` is unset and the settings cannot be resolved (see :func:`sopcoach.config.settings`).
    """
    env = os.environ.get("SOPCOACH_CRM_DIR")
    if env:
        return Path(env).expanduser()
    return settings().home / "crm"


def upload_limit_mb() -> float:
    """Return the largest file the upload accepts, in decimal megabytes: ``$SOPCOACH_UPLOAD_MAX_MB``, else
    :data:`UPLOAD_MAX_MB`.

    Raises
    ------
    ConfigError
        When ``SOPCOACH_UPLOAD_MAX_MB`` is not a positive number.
    """
    raw = os.environ.get("SOPCOACH_UPLOAD_MAX_MB", "").strip()
    if not raw:
        return UPLOAD_MAX_MB
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if not value > 0:
        raise ConfigError(f"SOPCOACH_UPLOAD_MAX_MB must be a positive number of megabytes, not {raw!r}")
    return value


def list_exports(folder: Path) -> list[tuple[str, str]]:
    """Return (label, path) for each export in ``folder``: sub-folders and single CSV/XLSX files."""
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_dir() and any(x.suffix.lower() in (".csv", ".xlsx") for x in p.iterdir()):
            out.append((p.name, str(p)))
        elif p.is_file() and p.suffix.lower() in (".csv", ".xlsx"):
            out.append((p.name, str(p)))
    return out


def meeting_month(data: Any, timezone: str) -> str | None:
    """Return the month (``YYYY-MM`` in ``timezone``) a review opens on: the latest with deals both created and closed.

    A month in which the export records only a few closes (or only new deals) shows mostly "not
    computable" figures and an empty funnel; the meeting reviews the latest month with both. None
    when no month has both (the review then opens on all months).
    """
    deals = data.deals

    def months(column: str) -> set[str]:
        stamps = deals[column].dropna()
        return set(stamps.dt.tz_convert(timezone).dt.strftime("%Y-%m")) if len(stamps) else set()
    both = months("created") & months("closed")
    return max(both) if both else None


class ReviewApp:
    """The review app's widgets and state; build it with :func:`monthly_review`.

    Parameters
    ----------
    playbook : Playbook
    folder : path-like, optional
        Where exports are listed (default :func:`exports_dir`).
    lang : {"zh-CN", "en"}, optional
    content : path-like, optional
        The content folder whose ``quizzes/drafts/`` receives question drafts (default
        :func:`sopcoach.config.content_folder`).
    """

    def __init__(self, playbook: Any, folder: Path | str | None = None, lang: str | None = None,
                 content: Path | str | None = None):
        self.pb = playbook
        self.content = Path(content) if content else None  # holds quizzes/ (drafts); default content_folder()
        self.lang = lang or current_lang()
        self.folder = Path(folder) if folder else exports_dir()
        self.data: Any = None
        self.review: Any = None
        self._demo_dir: str | None = None
        self.case: Any = None
        self.pipe: Any = None  # the pipeline tab's PipelineReport (the HTML report includes it)
        tr = self.tr
        options = [(label, path) for label, path in list_exports(self.folder)]
        options += [(tr("演示：模拟导出（含已知违规）", "Demo: simulated export (known breaches)"), DEMO),
                    (tr("上传的文件", "Uploaded files"), UPLOAD)]
        self.export = w.Dropdown(options=options, value=options[0][1], description=tr("导出", "Export"),
                                 layout=w.Layout(width="420px"))
        self.source = w.Dropdown(options=[(tr("自动识别", "Auto-detect"), ""), ("Maven", "maven"),
                                          ("Salesforce", "salesforce"), ("Zoho", "zoho"),
                                          (tr("模拟", "Simulated"), "simulated")],
                                 value="", description=tr("来源", "Source"), layout=w.Layout(width="260px"))
        self.upload = ChunkedUpload(self.lang, accept=".csv,.xlsx", max_bytes=int(upload_limit_mb() * 1e6))
        self.upload.add_class("sopcoach-review-upload")
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="420px", display="none"))
        self.progress.add_class("sopcoach-progress")
        self.load_button = w.Button(description=tr("读取", "Load"), button_style="primary", icon="folder-open")
        self.month = w.Dropdown(options=[(tr("全部月份", "All months"), ALL)], value=ALL,
                                description=tr("月份", "Month"), layout=w.Layout(width="260px"))
        self.analyse_button = w.Button(description=tr("分析", "Analyse"), button_style="success",
                                       icon="bar-chart", disabled=True)
        self.status = self._html()
        self.problems = self._html()  # the values that could not be read, summarised: above every figure
        self.cards = self._html()
        self.callout = self._html()
        self.funnel_img = w.Image(format="png", layout=w.Layout(max_width="760px"))
        self.funnel_table = self._html()
        self.cycle_img = w.Image(format="png", layout=w.Layout(max_width="760px"))
        self.trend_img = w.Image(format="png", layout=w.Layout(max_width="760px"))
        self.compliance_table = self._html()
        self.findings_table = self._html()
        self.group = w.ToggleButtons(options=[(tr("销售", "rep"), "owner"), (tr("团队", "team"), "team"),
                                              (tr("区域", "region"), "region"), (tr("产品", "product"), "product")],
                                     value="owner")
        self.group_table = self._html()
        self.group_stages = self._html()
        self.quality_table = self._html()
        self.pipe_month = w.Dropdown(options=[], description=tr("管道月份", "Month"), layout=w.Layout(width="260px"))
        self.pipeline = self._html()  # the month's pipeline: figures, stages, time in stage, reps, lost reasons
        self.deal = w.Dropdown(options=[], description=tr("商机", "Deal"), layout=w.Layout(width="520px"))
        self.deal_note = self._html()
        self.case_title = self._html()
        self.case_img = w.Image(format="png", layout=w.Layout(max_width="820px"))
        self.case_deviations = self._html()
        self.case_timeline = self._html()
        self.case_prompts = self._html()
        self.case_sop = self._html()
        self.draft_pick = w.Dropdown(options=[], description=tr("偏离", "Deviation"), layout=w.Layout(width="520px"))
        self.draft_button = w.Button(description=tr("生成练习题草稿", "Make a practice question draft"), icon="pencil",
                                     layout=w.Layout(width="auto"))
        self.draft_out = self._html()
        self.case_button = DownloadButton(tr("下载案例（HTML）", "Download the case study (HTML)"), self.case_file,
                                          busy_text=tr("正在生成案例……", "Making the case study ..."))
        self.report_button = DownloadButton(tr("下载 HTML 报告", "Download the HTML report"), self.report_file,
                                            icon="file-text",
                                            busy_text=tr("正在生成 HTML 报告（含图表）……", "Making the HTML report ..."))
        self.table_pick = w.Dropdown(options=[], description=tr("表格", "Table"), layout=w.Layout(width="360px"))
        self.xlsx_button = DownloadButton(tr("下载 Excel (XLSX)", "Download Excel (XLSX)"), self.xlsx_file, icon="table",
                                          busy_text=tr("正在生成 Excel……", "Making the Excel file ..."))
        self.load_button.on_click(self.on_load)
        self.analyse_button.on_click(self.on_analyse)
        self.group.observe(self.on_group, names="value")
        self.pipe_month.observe(self.on_pipeline, names="value")
        self.deal.observe(self.on_deal, names="value")
        self.upload.on_complete(self.on_upload)
        self.upload.on_notice(self.say)
        self.draft_button.on_click(self.on_draft)
        self.tabs = w.Tab(children=[
            w.VBox([self.cards, self.callout, self.funnel_img, self.funnel_table, self.cycle_img, self.trend_img]),
            w.VBox([self.pipe_month, self.pipeline]),
            w.VBox([self.compliance_table, self.findings_table]),
            w.VBox([self.group, self.group_table, self.group_stages]),
            w.VBox([self.deal, self.deal_note, self.case_title, self.case_img, self.case_sop, self.case_deviations,
                    w.HBox([self.draft_pick, self.draft_button]), self.draft_out, self.case_prompts,
                    w.HBox([self.case_button]), self.case_timeline]),
            w.VBox([self.quality_table]),
        ])
        for i, title in enumerate([tr("概览", "Overview"), tr("管道", "Pipeline"), tr("SOP 合规", "Compliance"),
                                   tr("分组", "Per rep"), tr("案例研讨", "Case study"), tr("数据质量", "Data quality")]):
            self.tabs.set_title(i, title)
        self.tabs.layout.display = "none"
        self.take = w.VBox([w.HTML(f"<h4>{tr('带去会议', 'Take it to the meeting')}</h4>"),
                            w.HBox([self.report_button, self.table_pick, self.xlsx_button])],
                           layout=w.Layout(display="none"))
        self.take.add_class("sopcoach-take")
        title = w.HTML(CSS)  # the notebook's title cell names the app
        self.widget = w.VBox([title, w.HBox([self.export, self.source]), self.upload, w.HBox([self.load_button]),
                              w.HBox([self.month, self.analyse_button]), self.progress, self.status, self.problems,
                              self.take, self.tabs])
        self.widget.add_class("sopcoach-review")

    # ------------------------------------------------------------------------------- helpers
    def _html(self) -> Any:
        """An HTML widget of this page: on a Chinese page its text keeps full-width punctuation next to Chinese
        (clause titles and texts are written with half-width marks in the playbook)."""
        return html_class(self.lang)()

    def tr(self, zh: str, en: str) -> str:
        return t(zh, en, self.lang)

    #: What an unexpected error in a callback says (see :func:`~sopcoach.ui._common.safe`).
    failure_text = ("出错了，请检查导出文件后重试。", "Something went wrong; check the export and try again.")

    def say(self, text: str, level: str = "info", details: list[str] | None = None) -> None:
        """Show a message in the status line, with smaller detail lines under it (all plain text, escaped here)."""
        small = f"<br><small>{'<br>'.join(esc(d) for d in details)}</small>" if details else ""
        self.status.value = f"<span class='sopcoach-msg-{level}'>{esc(text)}</span>{small}"

    def callback_done(self) -> None:
        """After every callback (see :func:`~sopcoach.ui._common.safe`): the controls work again."""
        self._busy(False)

    def _busy(self, busy: bool) -> None:
        for b in (self.load_button, self.export, self.source, self.month, self.report_button, self.xlsx_button,
                  self.case_button, self.draft_button, self.upload):
            b.disabled = busy
        self.analyse_button.disabled = busy or self.data is None
        if not busy:
            self.progress.layout.display = "none"

    def step(self, done: int, total: int, text: str) -> None:
        """Show progress: the bar at ``done`` of ``total`` and ``text`` in the status line (sent at once)."""
        self.progress.max = max(1, total)
        self.progress.value = min(done, total)
        self.progress.layout.display = ""
        self.say(text)

    def _paths(self) -> list[Any]:
        choice = self.export.value
        if choice == DEMO:
            if self._demo_dir is None:
                self._demo_dir = tempfile.mkdtemp(prefix="sopcoach-demo-")
                simulate(self.pb, self._demo_dir, seed=7, deals=160, weeks=17)
            return [Path(self._demo_dir)]
        if choice == UPLOAD:
            if not self.upload.paths:
                raise SopcoachError(self.tr("请先上传 CSV 或 XLSX 文件。", "Upload CSV or XLSX files first."))
            return list(self.upload.paths)
        return [Path(choice)]

    # ------------------------------------------------------------------------------- actions
    @safe
    def on_load(self, _button: Any = None) -> None:
        """Read the chosen export and offer its months."""
        self._busy(True)
        self.say(self.tr("正在读取……", "Reading ..."))
        source = self.source.value or ("simulated" if self.export.value == DEMO else None)
        sizes: list[int] = []

        def progress(i: int, n: int, name: str, size: int) -> None:
            sizes.append(size)
            mb = sum(sizes) / 1e6
            if i < n:
                self.step(i, n, self.tr(f"正在读取 {Path(name).name}（第 {i + 1}/{n} 个文件，累计 {mb:,.1f} MB）……",
                                        f"Reading {Path(name).name} ({i + 1}/{n} files, {mb:,.1f} MB so far) ..."))
            else:
                self.step(n, n, self.tr(f"已读取 {n} 个文件（{mb:,.1f} MB），正在整理……",
                                        f"Read {n} files ({mb:,.1f} MB); assembling ..."))

        self.data = read_export(self._paths(), source, playbook=self.pb, progress=progress)
        self.take.layout.display = "none"
        months = months_of(self.data, self.pb.calendar.timezone)
        self.month.options = [(self.tr("全部月份", "All months"), ALL)] + [(m, m) for m in reversed(months)]
        self.month.value = meeting_month(self.data, self.pb.calendar.timezone) or ALL
        self.review = None  # the pipeline waits for Analyse
        self.pipe_month.options = [(m, m) for m in reversed(months)]
        files = [f.describe(self.lang, short=True) for f in self.data.files]
        if self.data.skipped:
            files.append(self.tr(f"未读取（映射中没有对应的表）：{', '.join(self.data.skipped)}",
                                 f"not read (no table of the mapping reads them): {', '.join(self.data.skipped)}"))
        self.problems.value = report.problem_summary_html(self.data.problems, self.lang)
        problems = len(self.data.problems)
        extra = self.tr(f"；{problems:,} 个值无法读取（摘要见下，需要它们的数字显示为无法计算）",
                        f"; {problems:,} values could not be read (summary below; the figures that need "
                        "them are not computable)") if problems else ""
        self.say(self.tr(f"已读取 {len(self.data.deals):,} 个商机、{len(self.data.events):,} 条记录{extra}。",
                         f"Read {len(self.data.deals):,} deals and {len(self.data.events):,} events{extra}."),
                 details=files)
        self.review = None
        self.tabs.layout.display = "none"

    @safe
    def on_analyse(self, _button: Any = None) -> None:
        """Compute the review for the chosen month and fill every tab."""
        if self.data is None:
            raise SopcoachError(self.tr("请先读取导出文件。", "Load an export first."))
        self._busy(True)
        self.say(self.tr("正在分析……", "Analysing ..."))
        month = None if self.month.value == ALL else self.month.value
        self.step(0, 4, self.tr("正在分析（1/4）：KPI、漏斗与SOP合规……", "Analysing (1/4): KPIs, funnel and SOP compliance ..."))
        rv = review(self.data, self.pb, month, lang=self.lang)
        self.review = rv
        self.step(1, 4, self.tr("正在分析（2/4）：绘制图表……", "Analysing (2/4): drawing the charts ..."))
        self.cards.value = f"<p class='note'>{html.escape(report.populations_note(rv))}</p>" + report.kpi_cards_html(rv)
        self.callout.value = report.gap_html(rv.funnel) + report.bottleneck_html(rv) + report.gap_html(rv.trend)
        drawn = report.charts_with_data(rv)  # a chart without data is hidden; the cards and notes say why
        for name, image, draw in (("funnel", self.funnel_img, report.chart_funnel),
                                  ("cycle", self.cycle_img, report.chart_cycle), ("trend", self.trend_img, report.chart_trend)):
            image.layout.display = "" if drawn[name] else "none"
            if drawn[name]:
                image.value = draw(rv)
        legend = report.inferred_legend(rv.funnel, self.lang)
        self.funnel_table.value = "" if not drawn["funnel"] else (
            render_table(report.funnel_people(rv)) + (f"<p class='legend'>{html.escape(legend)}</p>" if legend else ""))
        self.compliance_table.value = (f"<h4>{self.tr('检查项', 'Checks')}</h4>" + report.people_html(
            rv.compliance.checks, report.CHECKS_SHOWN, lang=self.lang, index=False)
            + report.missing_fields_html(rv.compliance, self.lang))
        findings = rv.compliance.findings.set_index("deal_id")[report.FINDINGS_SHOWN]
        self.findings_table.value = (f"<h4>{self.tr(f'偏离记录（{len(findings):,}）', f'Findings ({len(findings):,})')}</h4>"
                                     f"<p>{html.escape(rv.compliance.summary(self.lang))}</p>"
                                     + (report.people_html(findings, lang=self.lang, max_rows=300) if len(findings) else ""))
        self.step(2, 4, self.tr("正在分析（3/4）：分组与数据质量……", "Analysing (3/4): groups and data quality ..."))
        self.on_group()
        probs = "".join(f"<li>{html.escape(str(p))}</li>" for p in rv.problems[:100])
        self.quality_table.value = report.people_html(rv.quality.summary, report.QUALITY_SHOWN, lang=self.lang,
                                                      index=False) + (
            f"<h4>{self.tr('无法读取的值', 'Row problems')}</h4><ul>{probs}</ul>" if probs else "")
        self.step(3, 4, self.tr("正在分析（4/4）：案例研讨……", "Analysing (4/4): the case study ..."))
        if rv.month is None:  # the case studies reuse it (all_months_compliance)
            remember_compliance(self.data, self.pb, rv.compliance, self.lang)
        self._deal_options()
        pick = month or (self.pipe_month.options[0][1] if self.pipe_month.options else None)
        if pick is not None and self.pipe_month.value != pick:
            self.pipe_month.value = pick  # its observer draws the pipeline
        else:
            self.on_pipeline()
        self._table_options()
        self.take.layout.display = ""
        self.tabs.layout.display = ""
        self.say(self.tr(f"分析完成：{rv.month or '全部月份'}。", f"Done: {rv.month or 'all months'}. ")
                 + html.escape(rv.compliance.summary(self.lang)))

    def _deal_options(self) -> None:
        rv, data = self.review, self.data
        deals = data.deals.drop_duplicates("deal_id").set_index("deal_id")
        counts = rv.compliance.findings.groupby("deal_id").size().sort_values(ascending=False)
        period = Period.of(rv.month, self.pb.calendar.timezone)
        closed = deals[period.contains(deals["closed"])].index
        ids = list(counts.index) + [d for d in closed if d not in counts.index]
        total = len(ids)
        ids = ids[:CASE_LIMIT]
        self.deal_note.value = ("" if total <= CASE_LIMIT else "<p class='note'>" + html.escape(self.tr(
            f"列出 {total:,} 个商机中的前 {CASE_LIMIT} 个：先列偏离最多的，再列本期关闭的。",
            f"Listing {CASE_LIMIT} of {total:,} deals: those with most deviations first, then those closed "
            "in the period.")) + "</p>")

        def label(d: str) -> str:  # the deal's name and customer first; its id last, when it has a name
            r = deals.loc[d]
            words = deal_words(r, d, self.lang)
            outcome = {"won": self.tr("赢单", "won"), "lost": self.tr("丢单", "lost")}.get(r["outcome"], self.tr("进行中", "open"))
            parts = [words["title"], words["customer"], words["owner"], outcome]
            if rv.compliance.checked:  # nothing checkable: no count to show
                n = int(counts.get(d, 0))
                parts.append(self.tr(f"{n} 处偏离", f"{n} deviation" if n == 1 else f"{n} deviations"))
            if words["title"] != d:
                parts.append(d)
            return " · ".join(p for p in parts if p)

        self.deal.options = [(label(d), d) for d in ids]
        if ids:
            self.deal.value = ids[0]
            self.on_deal()

    @safe
    def on_pipeline(self, _change: Any = None) -> None:
        """Show the pipeline of the month picked on the pipeline tab (any month of the export; seed:1.3.2)."""
        if self.review is None:
            return
        if not self.pipe_month.value:
            self.pipeline.value = "<p>" + esc(self.tr("这份导出没有可选的月份。", "The export has no month to show.")) + "</p>"
            return
        self.pipe = pipeline_report(self.data, self.pb, self.pipe_month.value, self.lang)
        self.pipeline.value = report.pipeline_html(self.pipe)

    @safe
    def on_group(self, _change: Any = None) -> None:
        """Show the KPIs per rep, team, region or product."""
        if self.review is None:
            return
        by = self.group.value
        if by not in self.review.by:
            self.group_table.value = self.tr("<p>导出数据没有这个维度。</p>", "<p>The export has no such column.</p>")
            self.group_stages.value = ""
            return
        self.group_table.value = report.gap_html(self.review.by[by]) + report.people_html(
            self.review.by[by], lang=self.lang, currency=self.review.currency, max_rows=100)
        month = self.review.month
        conv = stage_conversion_by(self.data, self.pb, by, month, lang=self.lang)
        names = {st.id: st.name.get(self.lang) for st in self.pb.stages}
        self.group_stages.value = (f"<h4>{self.tr('各阶段转化率与薄弱环节', 'Stage conversion and weak stage')}</h4>"
                                   + report.gap_html(conv) + report.people_html(
                                       conv, lang=self.lang, max_rows=100,
                                       labels={s: self.tr(f"{n}转化率", f"{n}: conversion") for s, n in names.items()},
                                       units=dict.fromkeys(names, "percent")))

    def all_months(self, lang: str | None = None) -> Any:
        """The export's compliance over all months in ``lang`` (default: the page's), computed once per load
        (:func:`~sopcoach.analytics.case_study.all_months_compliance`): a case study follows a deal's whole life."""
        return all_months_compliance(self.data, self.pb, lang or self.lang)

    @safe
    def on_deal(self, _change: Any = None) -> None:
        """Walk through one deal: each stage against the SOP's limits, deviations with their clause, prompts."""
        if self.review is None or not self.deal.value:
            return
        cs = case_study(self.data, self.pb, self.deal.value, self.all_months(), lang=self.lang)
        self.case = cs
        self.case_title.value = self._case_heading(cs)
        self.case_img.value = report.chart_timeline(cs, self.pb, self.lang)
        note = missing_data_note(cs.sop, self.lang)
        self.case_sop.value = (f"<h4>{self.tr('对照SOP：各阶段的时限、用时（工作日）与结论', 'Against the SOP: each stage, its limit, time taken (working days) and verdict')}</h4>"
                               + self._sop_table(cs) + (f"<p class='legend'>{esc(note)}</p>" if note else ""))
        devs = []
        for r in cs.deviations.itertuples():  # the clause's title and text; its seed reference stays in the data
            sep = self.tr("：", ": ")
            devs.append(f"<div class='callout'><b>{html.escape(r.rule)}</b> — {self.tr('应', 'expected')}{sep}"
                        f"{html.escape(r.expected)}{self.tr('；', '; ')}{self.tr('实际', 'actual')}{sep}"
                        f"{html.escape(r.actual)}<div class='clause'><b>{html.escape(r.clause_title)}</b>{sep}"
                        f"{html.escape(r.clause_text)}</div></div>")
        if not devs and not cs.checked:
            devs = [f"<div class='callout'>{html.escape(self.review.compliance.summary(self.lang))}</div>"]
        self.case_deviations.value = "".join(devs) or (
            f"<div class='ok'>{self.tr('在可检查的规则中未发现偏离SOP的记录。', 'No deviation from the SOP found among the rules that could be checked.')}</div>")
        self.draft_pick.options = [(f"{r.rule}{self.tr('：', ': ')}{r.actual}"[:90], i) for i, r in enumerate(cs.deviations.itertuples())]
        self.draft_pick.value = 0 if len(cs.deviations) else None
        self.draft_button.disabled = not len(cs.deviations)
        self.draft_out.value = ""
        self.case_prompts.value = (f"<h4>{self.tr('讨论问题', 'Discussion prompts')}</h4><ol>"
                                   + "".join(f"<li>{html.escape(p)}</li>" for p in cs.prompts) + "</ol>")
        self.case_timeline.value = report.html_table(cs.timeline.set_index("local_time")[report.TIMELINE_SHOWN],
                                                     headers={c: column_label(c, self.lang, cs.timezone) for c in
                                                              ["local_time", *report.TIMELINE_SHOWN]})

    def _case_heading(self, cs: Any) -> str:
        """The deal's name (its ids as a small note), owner, customer, tier and stage as the SOP names it."""
        d = cs.deal
        words = deal_words(d, cs.deal_id, self.lang)
        stage, raw = stage_words(self.pb, d.get("stage"), d.get("stage_raw"), self.lang)
        tier = d.get("tier")
        sep = self.tr("：", ": ")
        facts = [(self.tr("负责人", "Owner"), words["owner"] or "—"), (self.tr("客户", "Customer"), words["customer"] or "—"),
                 (self.tr("等级", "Tier"), "—" if tier is None or pd.isna(tier) else str(tier))]
        line = " · ".join(f"{esc(k)}{sep}{esc(v)}" for k, v in facts)
        line += f" · {esc(self.tr('阶段', 'Stage'))}{sep}{esc(stage)}"
        if raw:
            line += f"<small class='crm'>{esc(crm_note(raw, self.lang))}</small>"
        ids = f"<p class='note'><small>{esc(words['ids'])}</small></p>" if words["ids"] else ""
        return f"<h3>{esc(words['title'])}</h3>{ids}<p>{line}</p>"

    def _sop_table(self, cs: Any) -> str:
        """The case's stages against the SOP's limits, labelled, each verdict coloured."""
        sop = cs.sop.copy()
        sop["entered"] = sop["entered"].map(lambda x: "" if pd.isna(x) else x.tz_convert(cs.timezone).strftime("%Y-%m-%d %H:%M"))
        cols = ["stage", "entered", "working_days", "stage_note", "rule", "limit", "actual", "verdict", "reason"]
        words = dict(zip(sop["verdict"], sop["verdict_text"]))
        heads = {c: column_label(c, self.lang) for c in cols}
        heads["entered"] = column_label("entered", self.lang, cs.timezone)

        def verdict(key: Any) -> Markup:  # coloured: met green, breached red
            return Markup(f"<span class='v-{html.escape(str(key))}'>{html.escape(words.get(key, ''))}</span>")

        return report.html_table(sop, cols, index=False, headers=heads,
                                 formats={"working_days": report.unit_format("working_days", self.lang),
                                          "verdict": verdict})

    @safe
    def on_upload(self, paths: list[Path]) -> None:
        """Choose the uploaded files (complete, in the private upload folder) as the export and say what arrived."""
        files = paths
        mb = sum(p.stat().st_size for p in files) / 1e6
        self.export.value = UPLOAD
        self.say(self.tr(f"已上传 {len(files)} 个文件（{mb:,.1f} MB）：点“读取”。",
                         f"Uploaded {len(files)} files ({mb:,.1f} MB): click Load."))

    def _table_options(self) -> None:
        """Offer the review's tables; the one picked before stays picked, else the first (never none)."""
        before = self.table_pick.value
        self.table_pick.options = [(tb.title, tb.key) for tb in downloads.review_tables(self.review)]
        keys = [key for _, key in self.table_pick.options]
        self.table_pick.value = before if before in keys else (keys[0] if keys else None)

    def _stem(self) -> str:
        return downloads.file_stem("sopcoach-review", self.review.month or "all-months")

    @safe
    def report_file(self) -> Made:
        """The month's HTML report (one self-contained file, printable to PDF), for the report button."""
        if self.review is None:
            raise SopcoachError(self.tr("请先分析。", "Analyse first."))
        self._busy(True)
        self.step(0, 1, self.tr("正在生成 HTML 报告（含图表）……", "Making the HTML report (with its charts) ..."))
        page = downloads.report_html(self.review, playbook=self.pb, case=self.case, pipeline=self.pipe)
        self.say(self.tr("报告已下载：可在浏览器中打开并打印为 PDF。", "The report is downloaded: open it in a browser "
                         "and print it to PDF."))
        return page.encode("utf-8"), f"{self._stem()}.html", "text/html"

    @safe
    def xlsx_file(self) -> Made:
        """The chosen table as XLSX (labels, percentages, the currency), for the Excel button."""
        if self.review is None:
            raise SopcoachError(self.tr("请先分析。", "Analyse first."))
        tables = {tb.key: tb for tb in downloads.review_tables(self.review, self.case)}
        tb = tables.get(self.table_pick.value)
        if tb is None:
            raise SopcoachError(self.tr("请选择一个表格。", "Choose a table."))
        self._busy(True)
        self.step(0, 1, self.tr(f"正在生成 {tb.title}（{len(tb.frame):,} 行）……", f"Making {tb.title} ({len(tb.frame):,} rows) ..."))
        data = downloads.table_xlsx(tb.frame, tb.title, self.lang, timezone=self.pb.calendar.timezone,
                                    currency=self.data.mapping.spec.source.currency, title=tb.title)
        self.say(self.tr(f"{tb.title}：Excel 文件已下载。", f"{tb.title}: the Excel file is downloaded."))
        return data, f"{self._stem()}-{tb.key}.xlsx", XLSX_MIME

    @safe
    def case_file(self) -> Made:
        """The case study as one self-contained HTML file, for the case study's button."""
        if self.case is None:
            raise SopcoachError(self.tr("请先选择一个商机。", "Choose a deal first."))
        page = downloads.case_study_html(self.case, self.pb)
        return page.encode("utf-8"), downloads.file_stem("sopcoach-case", self.case.deal_id) + ".html", "text/html"

    @safe
    def on_draft(self, _button: Any = None) -> None:
        """Write the chosen deviation as a practice question draft (quizzes/drafts/, in no exam or lesson)."""
        if self.case is None or self.draft_pick.value is None:
            raise SopcoachError(self.tr("请先选择一处偏离。", "Choose a deviation first."))
        self._busy(True)
        self.step(0, 1, self.tr("正在生成练习题草稿（中英文）……", "Writing the practice question draft (zh-CN and en) ..."))
        cs = self.case
        other_lang = "en" if self.lang != "en" else "zh-CN"
        other = case_study(self.data, self.pb, cs.deal_id, self.all_months(other_lang), lang=other_lang)
        content = self.content or content_folder()
        bank = load_bank(content / "quizzes" / "bank", self.pb)
        q = draft_question(cs, int(self.draft_pick.value), self.pb, bank, other=other)
        same = existing_draft(q, content, None)
        if same is not None:  # the same deviation drafted before: nothing new to write
            said = self.tr(f"这处偏离已有草稿 {same}（quizzes/{DRAFTS_FILE}），未重复保存；在试题编辑器中选“草稿”即可审阅。",
                           f"This deviation has a draft already, {same} (quizzes/{DRAFTS_FILE}); nothing was saved again. "
                           "Open it in the question editor (pool: drafts).")
        else:
            qid = save_draft(q, content, None, by="monthly review")
            said = self.tr(f"草稿 {qid} 已保存到 quizzes/{DRAFTS_FILE}：在试题编辑器中选“草稿”即可审阅；它不会进入任何考试或课程。",
                           f"Draft {qid} saved to quizzes/{DRAFTS_FILE}: open it in the question editor (pool: drafts); "
                           "it is in no exam or lesson.")
        self.draft_out.value = "<div class='ok'>" + html.escape(said) + "</div>"
        self.say(said)  # the status line ends the "writing" it showed


def monthly_review(folder: Path | str | None = None, lang: str | None = None, playbook: Any = None) -> w.Widget:
    """Build the monthly review app and return its root widget (the notebook's one call).

    Parameters
    ----------
    folder : path-like, optional
        Where exports are listed (default :func:`exports_dir`: ``$SOPCOACH_CRM_DIR``, else ``crm/`` in
        the data home).
    lang : {"zh-CN", "en"}, optional
    playbook : Playbook, optional
        Default: the installation's playbook (``playbook/`` in :func:`sopcoach.config.content_folder`).

    Returns
    -------
    ipywidgets.Widget

    Raises
    ------
    ContentError
        When the playbook is invalid.
    ConfigError
        When the content folder has no playbook (see :func:`sopcoach.config.content_folder`), or
        ``SOPCOACH_UPLOAD_MAX_MB`` is not a positive number (see :func:`upload_limit_mb`).
    """
    log_to_server()
    lang = lang or page_lang()
    return trainer_page(build(folder, lang, playbook).widget, lang)


def build(folder: Path | str | None = None, lang: str | None = None, playbook: Any = None,
          content: Path | str | None = None) -> ReviewApp:
    """Build the app and return the :class:`ReviewApp` itself (tests drive its buttons)."""
    if playbook is None:
        playbook = load_playbook((Path(content) if content else content_folder()) / "playbook")
    return ReviewApp(playbook, folder, lang, content)
