"""The trainer apps (``notebooks/trainer/``, served only by the trainer server).

* :func:`playbook_changes`: every content problem with file and line; the playbook against the
  last release, clause by clause and file by file; the impact of each changed clause (questions,
  lessons, compliance checks, KPIs); the questions waiting for review, with their keys, to confirm;
  releasing a version (refused while a text still quotes a changed value, listed above the button,
  until the trainer ticks the confirmation and gives a name); who must re-certify.
* :func:`results`: attempts per person or per attempt, filtered by team, cohort and dates,
  downloadable as CSV or XLSX.
* :func:`item_analysis`: Moodle's question and test statistics, pass/fail consistency at the cut
  score, questions to check, clauses missed most.
* :func:`certificates`: who is certified, verification of a code, the PDF of a certificate, who
  must re-certify.

Widgets only display and forward clicks; every figure comes from :mod:`sopcoach.authoring.versions`,
:mod:`sopcoach.certification.results`, :mod:`sopcoach.certification.itemstats` and
:mod:`sopcoach.certification.certificates`. Feedback goes to a status line in the layout (shared
case 29); errors are logged on the server, never shown as tracebacks. Downloads are links with the
file inside (``data:`` URLs), so they need no file route on the server.
"""
from __future__ import annotations

import base64
import difflib
import functools
from datetime import datetime
from typing import Any
from collections.abc import Callable

import ipywidgets as w
import pandas as pd
from markupsafe import Markup

from ..analytics.report import html_table
from ..authoring.versions import (confirm, diff_playbook, impact, latest_release, needs_review,
                                  next_label, playbook_files, recertification_list, release, releases,
                                  set_sop_version, stale_quotes)
from ..certification.certificates import certificate_pdf, certificate_table, verify
from ..certification.itemstats import (FACILITY_BAND, MIN_FLAG_N, TABLE_HEADERS, WEAK_DISCRIMINATION, WHICH_TEXT, cut_table,
                                       discrimination_word, figure_table, item_table, verdict)
from ..certification.itemstats import item_analysis as analyse_items
from ..certification.results import ATTEMPT_COLUMNS, attempt_table, export_bytes, person_table
from ..config import installation, open_records, settings
from ..content.check import check_paths
from ..content.playbook import load_playbook
from ..content.quizbank import load_bank, load_blueprint
from ..errors import ContentError, StaleQuotes
from ..i18n import current_lang, local_day, page_lang, t
from ..certification.charts import chart_items, chart_pass_rate, chart_scores, shorten
from ..labels import VALUES, column_label, readable, source_label
from ..records.models import utcnow
from ..tables import Table, render
from ..spreadsheet import XLSX_MIME
from ._common import download_link, esc, log, log_to_server, safe, trainer_page

CSS = """
<style>
.sopcoach-trainer { font-family: "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  font-size: 14px; max-width: 1200px; }
.sopcoach-trainer h3 { margin: 14px 0 6px 0; border-bottom: 2px solid #4a7bb7; padding-bottom: 2px; }
.sopcoach-trainer table.t { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 8px 0; }
.sopcoach-trainer table.t td, .sopcoach-trainer table.t th { border-bottom: 1px solid #ddd; padding: 3px 8px;
  text-align: left; vertical-align: top; }
.sopcoach-trainer table.t th { background: #f3f6fa; }
.sopcoach-trainer .problem { font-family: monospace; color: #b3261e; white-space: pre-wrap; }
.sopcoach-trainer .ok { background: #eef6ee; border-left: 4px solid #1b7f3b; padding: 6px 10px; margin: 4px 0; }
.sopcoach-trainer .warn { background: #fdf3e6; border-left: 4px solid #c77700; padding: 6px 10px; margin: 4px 0; }
.sopcoach-trainer .bad { background: #fdecea; border-left: 4px solid #c0392b; padding: 6px 10px; margin: 4px 0; }
.sopcoach-trainer .change { border: 1px solid #ccd; border-radius: 6px; padding: 6px 10px; margin: 6px 0; background: #fff; }
.sopcoach-trainer .change .head { font-weight: bold; }
.sopcoach-trainer del { background: #fbd3d0; text-decoration: line-through; }
.sopcoach-trainer ins { background: #cdeccf; text-decoration: none; }
.sopcoach-trainer pre.udiff { font-size: 12px; background: #fafafa; border: 1px solid #ddd; padding: 6px;
  max-height: 360px; overflow: auto; }
.sopcoach-trainer .flag { color: #b3261e; font-weight: bold; }
.sopcoach-trainer .muted { color: #666; font-size: 12px; }
.sopcoach-trainer figure.sopcoach-item-chart { margin: 4px 0; } .sopcoach-trainer figure.sopcoach-item-chart svg { width: 100%; max-width: 860px; height: auto; }
.sopcoach-trainer .sopcoach-item-point { cursor: help; } .sopcoach-trainer .sopcoach-item-point:hover path { stroke: #000; stroke-width: 2; }
.sopcoach-trainer .cards { display: flex; flex-wrap: wrap; gap: 10px; }
.sopcoach-trainer .card { border: 1px solid #ccd; border-radius: 6px; padding: 6px 12px; min-width: 140px; background: #fff; }
.sopcoach-trainer .card .k { font-size: 12px; color: #555; } .sopcoach-trainer .card .v { font-size: 22px; font-weight: bold; }
.sopcoach-trainer .card .s { font-size: 11px; color: #666; }
.sopcoach-trainer a.download { display: inline-block; margin: 4px 8px 4px 0; padding: 4px 10px; border: 1px solid #4a7bb7;
  border-radius: 4px; text-decoration: none; color: #23406b; background: #f3f6fa; }
.sopcoach-msg-info { color: #2b5c94; } .sopcoach-msg-warning { color: #8a5300; } .sopcoach-msg-danger { color: #b3261e; }
</style>
"""

STATUS_TEXT = VALUES["certificate_status"]


def as_text(value: Any) -> str:
    """Return a value as text: lists joined by commas, a missing value (None, NaN) as a dash."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "–" if value is None or (isinstance(value, float) and value != value) else str(value)


def table_html(df: pd.DataFrame, *, index: bool = False, **options: Any) -> str:
    """Render ``df`` with :func:`sopcoach.analytics.report.html_table` as the trainer pages show tables.

    The row labels are shown only with ``index=True``; a missing value is a dash; up to 500 rows.
    ``options`` are those of :func:`~sopcoach.analytics.report.html_table` (``headers``, ``formats``: a
    format returns text, or :class:`markupsafe.Markup` for HTML).
    """
    return html_table(df, index=index, **{"missing": "–", "max_rows": 500, **options})


def pct(v: Any, digits: int = 1) -> str:
    """Format a fraction 0-1 as a percent (a dash when missing)."""
    return "–" if v is None or v != v else f"{100 * float(v):.{digits}f}%"


def text_diff_html(old: str, new: str) -> Markup:
    """Mark what changed between two texts, character by character (``<del>``/``<ins>``)."""
    sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
    out = []
    for op, a1, a2, b1, b2 in sm.get_opcodes():
        if op == "equal":
            out.append(esc(old[a1:a2]))
        if op in ("delete", "replace"):
            out.append(f"<del>{esc(old[a1:a2])}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{esc(new[b1:b2])}</ins>")
    return Markup("".join(out).replace("\n", "<br>"))


class _App:
    """Shared parts of the trainer apps: language, status line, root box."""

    def __init__(self, s: Any = None, records: Any = None, lang: str | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.s = s or settings()
        self.records = records or open_records(self.s)
        self.lang = lang or current_lang()
        self.clock = clock or utcnow
        self.status = w.HTML()
        self.root = w.VBox()
        self.root.add_class("sopcoach-trainer")

    def tr(self, zh: str, en: str) -> str:
        return t(zh, en, self.lang)

    @functools.cached_property
    def timezone(self) -> str:
        """The company's time zone (the playbook calendar's): days on these pages are its days."""
        return str(load_playbook(self.s.playbook_dir).calendar.timezone)

    def day(self, moment: datetime | None) -> str:
        """A moment's day in the company's time zone (:func:`~sopcoach.i18n.local_day`)."""
        return local_day(moment, self.timezone)

    #: What an unexpected error in a callback says (see :func:`~sopcoach.ui._common.safe`).
    failure_text = ("出错了，请重试；详情见服务器日志。", "Something went wrong; please try again. The server log has the details.")

    def say(self, text: str, level: str = "info", raw: bool = False) -> None:
        body = text if raw else esc(text)
        self.status.value = f"<div class='sopcoach-msg-{level}'>{body}</div>" if text else ""

    def content(self) -> tuple[Any, Any, Any]:
        """Load playbook, bank and blueprint fresh from disk (a trainer may have just edited them)."""
        pb = load_playbook(self.s.playbook_dir)
        bank = load_bank(self.s.quizzes_dir / "bank", pb)
        return pb, bank, load_blueprint(self.s.quizzes_dir / "blueprint.yaml", bank)


# -- playbook changes --------------------------------------------------------------------------------
class PlaybookChangesApp(_App):
    """Problems, diff against the last release, impact, needs-review, release, recertification."""

    def __init__(self, s: Any = None, records: Any = None, lang: str | None = None,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(s, records, lang, clock)
        self.problems_box = w.HTML()
        self.diff_box = w.HTML()
        self.files_box = w.Accordion()
        self.impact_box = w.HTML()
        self.review_box = w.VBox()
        self.recert_box = w.HTML()
        self.by_box = w.Text(description=self.tr("您的姓名", "Your name"), placeholder=self.tr("培训师", "trainer"))
        self.refresh_button = w.Button(description=self.tr("重新读取", "Reload from disk"), icon="refresh")
        self.refresh_button.on_click(self.on_refresh)
        self.confirm_button = w.Button(description=self.tr("确认所选题目", "Confirm the selected questions"),
                                       button_style="success", icon="check")
        self.confirm_button.on_click(self.on_confirm)
        self.label_box = w.Text(description=self.tr("版本号", "Label"))
        self.note_box = w.Textarea(description=self.tr("说明", "Note"),
                                   placeholder=self.tr("修改了什么、为什么（如月度复盘结论）",
                                                       "What changed and why (e.g. the monthly review's finding)"),
                                   layout=w.Layout(width="600px", height="60px"))
        self.release_button = w.Button(description=self.tr("发布此版本", "Release this version"),
                                       button_style="primary", icon="tag")
        self.release_button.on_click(self.on_release)
        self.quotes_box = w.HTML()
        self.confirm_quotes_box = w.Checkbox(
            value=False, indent=False, layout=w.Layout(display="none", width="auto"),
            style={"description_width": "initial"},
            description=self.tr("这些文字确应保留旧值：确认并发布（记录您的姓名）",
                                "These texts are meant to keep the old value: confirm and release (your name is recorded)"))
        self.confirm_quotes_box.add_class("sopcoach-confirm-quotes")
        self.stale: list[Any] = []
        self.checks: dict[str, w.Checkbox] = {}
        self.playbook = self.bank = None
        self.problems: list[Any] = []
        self.diff: Any = None
        intro = self.tr(
            "<p>在 JupyterLab 或任何编辑器中修改 <code>playbook/*.yaml</code>，然后点击“重新读取”。本页列出所有问题（文件和行号）、"
            "与上次发布版本的差异及其影响；发布新版本后，考查已修改条款的题目需要您复核确认才会重新进入考试。</p>",
            "<p>Edit <code>playbook/*.yaml</code> in JupyterLab or any editor, then press “Reload from disk”. "
            "This page lists every problem (file and line), the differences from the last released version and "
            "their impact. After a release, questions that examine a changed clause stay out of the exam until "
            "you review and confirm them.</p>")
        self.root.children = [
            w.HTML(CSS + intro),
            w.HBox([self.refresh_button, self.by_box]), self.status,
            w.HTML(f"<h3>{self.tr('1. 内容检查', '1. Content check')}</h3>"), self.problems_box,
            w.HTML(f"<h3>{self.tr('2. 与上次发布版本的差异', '2. Changes since the last release')}</h3>"),
            self.diff_box, self.files_box,
            w.HTML(f"<h3>{self.tr('3. 影响', '3. Impact')}</h3>"), self.impact_box,
            w.HTML(f"<h3>{self.tr('4. 发布', '4. Release')}</h3>"),
            w.VBox([self.label_box, self.note_box, self.quotes_box, self.confirm_quotes_box, self.release_button]),
            w.HTML(f"<h3>{self.tr('5. 待复核的题目', '5. Questions waiting for review')}</h3>"), self.review_box,
            w.HTML(f"<h3>{self.tr('6. 需要复认证的人员', '6. People who must re-certify')}</h3>"), self.recert_box,
        ]
        self.refresh()

    # -- rendering --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the content and the records and redraw every section."""
        try:  # one load when the content is clean; check_paths then lists every problem otherwise
            self.playbook, self.bank, _ = self.content()
            self.problems = []
        except ContentError:
            self.playbook = self.bank = None
            self.problems = check_paths([], self.s.content)
        if self.problems:
            lines = "\n".join(esc(p) for p in self.problems)
            self.problems_box.value = (
                f"<div class='bad'>{esc(self.tr(f'{len(self.problems)} 个问题：请按文件和行号修改后重新读取。', f'{len(self.problems)} problem(s): fix them at the file and line shown, then reload.'))}</div>"
                f"<div class='problem'>{lines}</div>")
        else:
            self.problems_box.value = f"<div class='ok'>{esc(self.tr('没有问题。', 'No problems.'))}</div>"
        base = latest_release(self.records)
        if self.playbook is None:
            self.diff = None
            self.diff_box.value = f"<div class='warn'>{esc(self.tr('内容有错误，无法比较。', 'The content has errors; nothing to compare.'))}</div>"
            self.files_box.children = ()
            self.impact_box.value = ""
        else:
            self.diff = diff_playbook(base, self.playbook, playbook_files(self.s.playbook_dir), self.lang)
            self._render_diff()
            self._render_impact()
        self._render_quotes(stale_quotes(base, self.playbook, self.lang) if self.playbook is not None else [])
        if self.playbook is not None:
            released = {r.label for r in releases(self.records)}
            label = self.playbook.sop.version
            while label in released:
                label = next_label(label)
            self.label_box.value = label
        self._render_review()
        self._render_recert()

    def _render_diff(self) -> None:
        d = self.diff
        if d.base_label is None:
            self.diff_box.value = f"<div class='warn'>{esc(d.text(self.lang))}</div>"
            self.files_box.children = ()
            return
        head = self.tr(f"上次发布：<b>{esc(d.base_label)}</b>（{d.base_created_at:%Y-%m-%d %H:%M} UTC）；"
                       f"当前 sop.version：<b>{esc(d.version[1])}</b>",
                       f"Last release: <b>{esc(d.base_label)}</b> ({d.base_created_at:%Y-%m-%d %H:%M} UTC); "
                       f"sop.version on disk: <b>{esc(d.version[1])}</b>")
        parts = [f"<p>{head}</p>"]
        if not d.changes:
            parts.append(f"<div class='ok'>{esc(self.tr('没有条款变化。', 'No clause has changed.'))}</div>")
        parts.extend(f"<div class='warn sopcoach-requoted'>{esc(note)}</div>" for note in d.requote_notes(self.lang))
        kinds = {"added": self.tr("新增", "added"), "removed": self.tr("删除", "removed"),
                 "changed": self.tr("修改", "changed")}
        for ch in d.changes:
            rows = []
            for f in ch.fields:
                if isinstance(f.old, str) and isinstance(f.new, str) and len(f.old) + len(f.new) > 40:
                    value = text_diff_html(f.old, f.new)
                else:
                    value = Markup("<del>{}</del> → <ins>{}</ins>").format(as_text(f.old), as_text(f.new))
                rows.append([Markup("<code>{}</code>").format(f.path), value])
            parts.append(f"<div class='change'><div class='head'>[{esc(kinds[ch.kind])}] {esc(ch.clause_id)} · "
                         f"{esc(ch.title)} <span class='muted'>({esc(source_label(ch.source, self.lang))})</span></div>"
                         + render(Table([], rows)) + "</div>")
        self.diff_box.value = "".join(parts)
        boxes = [w.HTML(f"<pre class='udiff'>{esc(text)}</pre>") for text in d.file_diffs.values()]
        self.files_box.children = boxes
        for i, name in enumerate(d.file_diffs):
            self.files_box.set_title(i, self.tr(f"文件差异：{name}", f"File diff: {name}"))

    def _render_quotes(self, stale: list[Any]) -> None:
        """Show the texts still quoting a changed value; a new list un-ticks the confirmation."""
        if stale != self.stale:
            self.confirm_quotes_box.value = False
        self.stale = stale
        self.confirm_quotes_box.layout.display = "flex" if stale else "none"
        if not stale:
            self.quotes_box.value = ""
            return
        items = "".join(f"<li>{esc(q.text(self.lang))}</li>" for q in stale)
        self.quotes_box.value = (
            f"<div class='warn'>{esc(self.tr(f'{len(stale)} 处文字仍写着已修改的旧值，发布会被拒绝：请在规程编辑页修改这些文字后重新读取；若确应保留，勾选下面的确认框并填写您的姓名。', f'{len(stale)} text(s) still quote a value changed since the last release; releasing is refused. Edit them in the playbook editor and reload, or, if a text is meant to keep that value, tick the confirmation below and give your name.'))}"
            f"<ul class='sopcoach-stale-quotes'>{items}</ul></div>")

    def _render_impact(self) -> None:
        if not self.diff or not self.diff.changes:
            self.impact_box.value = f"<p class='muted'>{esc(self.tr('没有修改的条款。', 'No changed clause.'))}</p>"
            return
        df = impact(self.playbook, self.bank, self.diff.changed_ids, self.lang)
        self.impact_box.value = table_html(df, index=True, headers={
            "clause": self.tr("条款", "clause"), "source": self.tr("来源", "source"), "title": self.tr("标题", "title"),
            "questions": self.tr("考题", "questions"), "lessons": self.tr("课程", "lessons"),
            "checks": self.tr("合规检查", "compliance checks"), "kpis": "KPI"})

    def _question_html(self, qid: str) -> str:
        q = self.bank.questions.get(qid) if self.bank is not None else None
        if q is None:
            return f"<b>{esc(qid)}</b> <span class='muted'>{esc(self.tr('(题库中已无此题)', '(no longer in the bank)'))}</span>"
        key = ""
        if q.variant is not None:  # a template: its key is computed per drawn variant
            key = esc(self.tr(f"模板题:每次抽题按规则 {q.variant.rule} 计算答案", f"A template: rule {q.variant.rule} "
                              "computes the key of each drawn variant"))
        elif hasattr(q, "options"):
            key = "<br>".join(f"{'✔' if o.correct else '✗'} {esc(o.text.get(self.lang))}" for o in q.options)
        elif q.type == "true_false":
            key = self.tr("答案：", "Key: ") + esc(self.tr("正确", "true") if q.answer else self.tr("错误", "false"))
        elif q.type == "numeric":
            key = self.tr("答案：", "Key: ") + esc(f"{q.answer} ± {q.tolerance}")
        elif q.type == "ordering":
            key = self.tr("顺序：", "Order: ") + " → ".join(esc(o.text.get(self.lang)) for o in q.items)
        scen = f"<i>{esc(q.scenario.get(self.lang))}</i><br>" if q.scenario else ""
        return (f"<b>{esc(qid)}</b> <span class='muted'>[{esc(q.section)}; {esc(as_text(list(q.clauses)))}]</span><br>"
                f"{scen}{esc(q.text.get(self.lang))}<div class='muted'>{key}</div>")

    def _render_review(self) -> None:
        table = needs_review(self.records)
        if table.empty:
            self.checks = {}
            self.review_box.children = [w.HTML(f"<div class='ok'>{esc(self.tr('没有待复核的题目。', 'No question is waiting for review.'))}</div>")]
            return
        self.checks = {qid: w.Checkbox(value=False, indent=False, layout=w.Layout(width="30px")) for qid in table.index}
        rows = []
        for qid, r in table.iterrows():
            info = self.tr(f"修改的条款：{', '.join(r['clauses'])}（版本 {', '.join(r['releases'])}）",
                           f"changed clauses: {', '.join(r['clauses'])} (release {', '.join(r['releases'])})")
            box = w.HBox([self.checks[qid], w.HTML(self._question_html(qid) + f"<div class='muted'>{esc(info)}</div>")])
            box.add_class(f"sopcoach-review-{qid}")
            rows.append(box)
        hint = w.HTML(f"<div class='warn'>{esc(self.tr(f'{len(table)} 题在复核确认前不会出现在考试中。核对题目和答案仍符合修改后的条款，勾选后确认。', f'{len(table)} question(s) stay out of the exam until confirmed. Check that each question and its key still fit the changed clause, tick it and confirm.'))}</div>")
        self.review_box.children = [hint, *rows, self.confirm_button]

    def _render_recert(self) -> None:
        df = recertification_list(self.records, self.clock())
        if df.empty:
            self.recert_box.value = f"<div class='ok'>{esc(self.tr('没有人需要复认证。', 'Nobody needs to re-certify.'))}</div>"
            return
        df = df.assign(issued_at=df["issued_at"].map(self.day))
        self.recert_box.value = (
            f"<p>{esc(self.tr('这些人员的证书涵盖了已修改的条款；他们在学员端的复认证考试只考这些条款。', 'Their certificates covered clauses that have changed; their recertification exam examines just those clauses.'))}</p>"
            + table_html(df, headers={"learner_id": self.tr("员工编号", "id"), "name": self.tr("姓名", "name"),
                                      "team": self.tr("团队", "team"), "cohort": self.tr("批次", "cohort"),
                                      "certificate": self.tr("证书", "certificate"),
                                      "issued_at": self.tr("签发", "issued"), "version": self.tr("版本", "version"),
                                      "changed": self.tr("需重考的条款", "clauses to re-examine")}))

    # -- actions ----------------------------------------------------------------------------------
    @safe
    def on_refresh(self, _button: Any = None) -> None:
        self.refresh()
        self.say(self.tr("已重新读取。", "Reloaded."))

    @safe
    def on_confirm(self, _button: Any = None) -> None:
        chosen = [qid for qid, box in self.checks.items() if box.value]
        if not chosen:
            self.say(self.tr("请先勾选要确认的题目。", "Tick the questions to confirm first."), "warning")
            return
        done = confirm(self.records, chosen, by=self.by_box.value.strip(), now=self.clock())
        self._render_review()
        self.say(self.tr(f"已确认 {len(done)} 题，重新进入考试：{', '.join(done)}",
                         f"Confirmed {len(done)}, back in the exam: {', '.join(done)}"))

    @safe
    def on_release(self, _button: Any = None) -> None:
        confirmed = list(self.stale) if self.confirm_quotes_box.value else []  # what the trainer saw and ticked
        self.refresh()
        if self.problems or self.playbook is None:
            self.say(self.tr("内容有问题，不能发布；请先修改。", "The content has problems; fix them before releasing."),
                     "warning")
            return
        by = self.by_box.value.strip()
        unconfirmed = [q for q in self.stale if q not in confirmed]
        if unconfirmed:
            self.say(str(StaleQuotes(unconfirmed, self.lang)).splitlines()[0] + " "
                     + self.tr("见“4. 发布”中的列表。", "See the list under “4. Release”."), "warning")
            return
        if self.stale and not by:
            self.say(self.tr("确认保留旧值需要您的姓名：请填写“您的姓名”后再发布。",
                             "Confirming the quotes needs your name: fill in “Your name”, then release."), "warning")
            return
        label = self.label_box.value.strip() or self.playbook.sop.version
        if label != self.playbook.sop.version:
            set_sop_version(self.s.playbook_dir, label, home=self.s.home, by=self.by_box.value.strip())
            self.playbook, self.bank, _ = self.content()
        out = release(self.records, self.playbook, self.bank, self.s.playbook_dir, label=label,
                      note=self.note_box.value.strip(), by=by, now=self.clock(), confirm_quotes=confirmed,
                      lang=self.lang)
        self.note_box.value = ""
        self.refresh()
        kept = self.tr(f"；{by} 确认保留 {len(out.confirmed_quotes)} 处旧值引用（已随版本记录）",
                       f"; {len(out.confirmed_quotes)} quote(s) of old values confirmed by {by} (recorded with "
                       "the release)") if out.confirmed_quotes else ""
        self.say(self.tr(f"已发布 {out.label}：修改 {len(out.changed)} 个条款，{len(out.flagged)} 题待复核{kept}。",
                         f"Released {out.label}: {len(out.changed)} clause(s) changed, {len(out.flagged)} "
                         f"question(s) waiting for review{kept}."))


# -- results ---------------------------------------------------------------------------------------------
class ResultsApp(_App):
    """Results per person or per attempt with filters, and CSV/XLSX downloads."""

    ALL = "__all__"

    def __init__(self, s: Any = None, records: Any = None, lang: str | None = None,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(s, records, lang, clock)
        inst = installation(self.s)
        self.exam_id = inst.blueprint.id
        self.pass_percent = float(inst.blueprint.pass_mark) * 100
        learners = self.records.learners()
        teams = sorted({x.team for x in learners if x.team})
        cohorts = sorted({x.cohort for x in learners if x.cohort})
        everyone = self.tr("全部", "all")
        self.team = w.Dropdown(options=[(everyone, self.ALL)] + [(x, x) for x in teams],
                               description=self.tr("团队", "Team"))
        self.cohort = w.Dropdown(options=[(everyone, self.ALL)] + [(x, x) for x in cohorts],
                                 description=self.tr("批次", "Cohort"))
        self.since = w.DatePicker(description=self.tr("开始日期", "From"))
        self.until = w.DatePicker(description=self.tr("结束日期", "To"))
        self.by = w.ToggleButtons(options=[(self.tr("按人员", "per person"), "person"),
                                           (self.tr("按考试", "per attempt"), "attempt")], value="person")
        for widget in (self.team, self.cohort, self.since, self.until, self.by):
            widget.observe(self.on_filter, names="value")
        self.summary = w.HTML()
        self.charts = w.HTML()
        self.table = w.HTML()
        self.downloads = w.HTML()
        self.table_df = pd.DataFrame()
        self.root.children = [
            w.HTML(CSS),
            w.HBox([self.team, self.cohort]), w.HBox([self.since, self.until]), self.by,
            self.status, self.summary, self.charts, self.downloads, self.table]
        self.on_filter()

    def filters(self) -> dict[str, Any]:
        return dict(team=None if self.team.value == self.ALL else self.team.value,
                    cohort=None if self.cohort.value == self.ALL else self.cohort.value,
                    since=self.since.value, until=self.until.value, timezone=self.timezone)

    @safe
    def on_filter(self, _change: Any = None) -> None:
        f = self.filters()
        if f["since"] and f["until"] and f["since"] > f["until"]:
            self.say(self.tr("开始日期晚于结束日期。", "The start date is after the end date."), "warning")
            return
        if self.by.value == "person":
            df = person_table(self.records, self.exam_id, now=self.clock(), **f)
            people, passed = len(df), int(df["passed"].sum())
            done = int((df["attempts"] > 0).sum())
            cards = [(self.tr("人员", "people"), people, ""),
                     (self.tr("已参加考试", "took the exam"), done, ""),
                     (self.tr("已通过", "passed"), passed, f"{passed / done:.0%}" if done else ""),
                     (self.tr("证书有效", "certified (current)"), int((df["certificate_status"] == "current").sum()), "")]
            self.summary.value = "<div class='cards'>" + "".join(
                f"<div class='card'><div class='k'>{esc(k)}</div><div class='v'>{esc(v)}</div><div class='s'>{esc(s)}</div></div>"
                for k, v, s in cards) + "</div>"
            self._draw_charts(df, attempt_table(self.records, **f))
            percent = lambda v: "–" if v != v else f"{v:.1f}"  # noqa: E731 - the label says %
            self.table.value = self._table(df, {"best_percent": percent, "last_percent": percent,
                                                "minutes_best": as_text, "minutes_last": as_text})
        else:
            df = attempt_table(self.records, **f)
            self.summary.value = f"<p>{esc(self.tr(f'{len(df)} 次考试', f'{len(df)} attempts'))}</p>"
            self.table.value = self._table(df[ATTEMPT_COLUMNS], {"attempt_id": as_text, "minutes_taken": as_text,
                                                                 "percent": as_text})
        self.table_df = df
        stem = f"results-{self.by.value}-{local_day(self.clock(), self.timezone).replace('-', '')}"  # the company's day
        people = readable(df, self.lang, self.timezone)  # the downloads read as the page: labels, local times, words
        self.downloads.value = (
            download_link(export_bytes(people, "csv"), f"{stem}.csv", self.tr("下载 CSV", "Download CSV"), "text/csv")
            + download_link(export_bytes(people, "xlsx", sheet=self.by.value), f"{stem}.xlsx",
                            self.tr("下载 Excel (XLSX)", "Download Excel (XLSX)"),
                            XLSX_MIME))
        self.say("")

    def _draw_charts(self, people: pd.DataFrame, attempts: pd.DataFrame) -> None:
        """The score distribution against the pass bar and the pass rate per cohort over time."""
        scores = chart_scores(attempts, self.pass_percent, self.lang)
        rates = chart_pass_rate(people, self.timezone, self.lang)
        self.charts.value = "<div class='sopcoach-charts'>" + "".join(
            f"<figure><img alt='{esc(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"
            f"<figcaption>{esc(alt)}</figcaption></figure>"
            for alt, png in ((self.tr("得分分布与及格线", "Score distribution and the pass bar"), scores),
                             (self.tr("各批次已通过考试的人员比例（按月，全批次人数为分母）", "Share of each cohort's people who have passed, by month"), rates))
        ) + "</div>"

    def _table(self, df: pd.DataFrame, formats: dict[str, Any]) -> str:
        """The table as people read it (:func:`sopcoach.labels.readable`); ``formats`` by column name."""
        return table_html(readable(df, self.lang, self.timezone),
                          formats={column_label(c, self.lang, self.timezone): f for c, f in formats.items()})


# -- item analysis --------------------------------------------------------------------------------------
class ItemAnalysisApp(_App):
    """Moodle's statistics for the certification exam, pass/fail consistency, clauses missed most.

    Questions are shown by their text (the id small beneath it, the whole text on hover); a question
    is flagged only when its sample supports it (:func:`sopcoach.certification.itemstats.flags_of`),
    otherwise it reads "too few answers (n=3)". The chart places each question by facility and
    discrimination (:func:`sopcoach.certification.charts.chart_items`); the table of every question
    downloads as CSV or XLSX with the page's labels (:func:`sopcoach.certification.itemstats.item_table`).
    """

    #: Characters of a question's text shown in a table cell (the rest on hover).
    TEXT_LIMIT = 60

    def __init__(self, s: Any = None, records: Any = None, lang: str | None = None,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(s, records, lang, clock)
        self.which = w.Dropdown(options=[(self.tr(*words), key) for key, words in WHICH_TEXT.items()],
                                description=self.tr("统计范围", "Attempts"), style={"description_width": "initial"})
        self.which.observe(self.on_which, names="value")
        self.test_box = w.HTML()
        self.cut_box = w.HTML()
        self.chart_box = w.HTML()
        self.flag_box = w.HTML()
        self.items_box = w.HTML()
        self.downloads = w.HTML()
        self.clause_box = w.HTML()
        self.analysis: Any = None
        low, high = (f"{100 * b:g}%" for b in FACILITY_BAND)
        note = self.tr(
            "<p class='muted'>定义与 Moodle 测验统计相同：难度指数 = 平均得分率（越高越容易）；区分度 = 该题得分与其余题目总分的相关系数"
            "（-1 至 1；0.50 以上很好，0.30–0.49 尚可，0.20–0.29 偏弱，0.20 以下很弱，为负则题目可能有误）；"
            "区分效率 = 协方差 / 在给定得分分布下可能的最大协方差（低于 15% 需检查）。考试随机抽题，整卷统计按题目位置计算。"
            "样本少于 30 的数值标为“暂定”。</p>"
            f"<p class='muted'>何时提示：作答少于 {MIN_FLAG_N} 次的题目不作判断，显示“样本不足”；此后仅当样本足以支持时才提示——"
            f"得分率的 95% 置信区间整体低于 {low}（太难）或高于 {high}（太容易），区分度的 95% 置信区间整体低于 0（为负）或低于 "
            f"{WEAK_DISCRIMINATION:.2f}（偏低）。</p>",
            "<p class='muted'>Definitions as in Moodle's quiz statistics: facility = mean score fraction (higher is "
            "easier); discrimination index = correlation of the question with the rest of the test (-1 to 1; 0.50 and "
            "above very good, 0.30-0.49 adequate, 0.20-0.29 weak, below 0.20 very weak, negative: the question is "
            "probably wrong); discriminative efficiency = covariance / the largest covariance the two score "
            "distributions allow (below 15%: needs checking). Questions are drawn at random, so the test figures use "
            "the exam's positions. Figures from fewer than 30 responses are marked tentative.</p>"
            f"<p class='muted'>When a question is flagged: with fewer than {MIN_FLAG_N} answers it is not judged "
            "(“too few answers”); from there only when the sample supports it: the 95% interval of its facility lies "
            f"wholly below {low} (too hard) or above {high} (too easy), or that of its discrimination wholly below 0 "
            f"(negative) or below {WEAK_DISCRIMINATION:.2f} (low).</p>")
        self.root.children = [
            w.HTML(CSS + note), self.which, self.status,
            w.HTML(f"<h3>{self.tr('整卷', 'The test')}</h3>"), self.test_box,
            w.HTML(f"<h3>{self.tr('及格线附近的判定一致性', 'Pass/fail consistency near the cut score')}</h3>"),
            self.cut_box,
            w.HTML(f"<h3>{self.tr('难度与区分度', 'Facility and discrimination')}</h3>"), self.chart_box,
            w.HTML(f"<h3>{self.tr('需检查的题目', 'Questions to check')}</h3>"), self.flag_box,
            w.HTML(f"<h3>{self.tr('按条款：失分最多的条款', 'By clause: most missed first')}</h3>"), self.clause_box,
            w.HTML(f"<h3>{self.tr('全部题目', 'Every question')}</h3>"), self.downloads, self.items_box]
        self.on_which()

    def _question_cell(self, qid: str, text: str) -> Markup:
        """The question's text, shortened (all of it and the id on hover), the id small beneath."""
        full = text or qid
        return Markup("<span class='sopcoach-question' title='{}'>{}</span><br><span class='muted'>{}</span>").format(
            f"{full} ({qid})", shorten(full, self.TEXT_LIMIT), qid)

    def _items_html(self, items: pd.DataFrame) -> str:
        """The per-question table: text, section, n, facility %, discrimination with its word, flags or sample note."""
        # (id, text) and (flags, n) pairs: the formats below turn them into HTML (a str column would not keep Markup)
        df = items.assign(question=pd.Series(list(zip(items.index, items["text"])), index=items.index, dtype=object),
                          verdict=pd.Series(list(zip(items["flags"], items["n"])), index=items.index, dtype=object))
        discrimination = lambda d: "–" if d != d else f"{d:.2f} · {discrimination_word(d, self.lang)}"  # noqa: E731
        columns = ["question", "section", "n", "facility", "sd", "discrimination", "efficiency", "guess", "verdict"]
        if "variants" in df and df["variants"].any():
            columns.append("variants")
        return table_html(df[columns], formats={
            "facility": pct, "sd": pct, "discrimination": discrimination, "efficiency": pct, "guess": pct,
            "question": lambda v: self._question_cell(v[0], str(v[1])), "variants": lambda v: str(v) if v else "–",
            "verdict": lambda v: (flag_html if v[0] else note_html)(verdict(v[0], v[1], self.lang))}, headers={
            "question": self.tr("题目", "question"), "section": self.tr("部分", "section"), "n": self.tr("作答数", "answers"),
            "facility": self.tr("难度指数（得分率）", "facility (score %)"), "sd": self.tr("标准差", "SD"),
            "discrimination": self.tr("区分度（-1 至 1）", "discrimination (-1 to 1)"),
            "efficiency": self.tr("区分效率", "efficiency"), "guess": self.tr("随机猜测得分", "random-guess score"),
            "verdict": self.tr("提示", "flags"), "variants": self.tr("模板变体数", "variants pooled")})

    @safe
    def on_which(self, _change: Any = None) -> None:
        pb, bank, bp = self.content()
        ia = analyse_items(self.records, bank, bp, pb, self.which.value, self.lang)
        self.analysis = ia
        headers = {k: self.tr(*v) for k, v in TABLE_HEADERS.items()}
        self.test_box.value = (f"<p>{esc(self.tr(f'{ia.attempts} 次考试', f'{ia.attempts} attempts'))}</p>"
                               + table_html(figure_table(ia.test, self.lang), headers=headers))
        expl = self.tr(
            "90% 的及格线让多数题目“很容易”，这是设计使然；关键在于考试能否稳定地区分通过与不通过。"
            "距及格线一个 SEM 以内的人，重考时结果可能翻转；K² 和半卷一致率越接近 1 越好（半卷只有一半长度，数值偏保守）。",
            "A 90% pass mark makes most questions easy by design; what matters is whether the exam separates pass from "
            "fail consistently. People within one SEM of the cut could flip on a retest; K² and the split-half agreement "
            "are better the closer to 1 (a half is half as long as the exam, so that figure is conservative).")
        self.cut_box.value = (table_html(cut_table(ia.cut, self.lang), headers={"figure": "", "value": ""})
                              + f"<p class='muted'>{esc(expl)}</p>")
        items = ia.items
        unplaced = int(items["discrimination"].isna().sum())
        self.chart_box.value = (
            f"<figure class='sopcoach-item-chart'>{chart_items(items, self.lang)}<figcaption class='muted'>"
            + esc(self.tr(f"每个点是一道题（鼠标悬停看题目）；绿色区域为可接受范围，红点为需检查的题目，空心灰点为样本不足。"
                          f"{unplaced} 道题无法计算区分度（作答少于 2 次或得分全部相同），未画出。",
                          f"Each point is a question (hover to read it); the green region is acceptable, red points need "
                          f"checking, hollow grey ones have too few answers. {unplaced} question(s) have no discrimination "
                          "index (fewer than 2 answers, or everyone scored alike) and are not drawn."))
            + "</figcaption></figure>")
        flagged = items[items["flags"].map(bool)]
        unjudged = int((~items["judged"]).sum())
        few = self.tr(f"另有 {unjudged} 道题作答少于 {MIN_FLAG_N} 次，样本不足，不作判断。",
                      f"{unjudged} more question(s) have fewer than {MIN_FLAG_N} answers: too few to judge.") if unjudged else ""
        self.flag_box.value = (self._items_html(flagged) if len(flagged) else
                               f"<div class='ok'>{esc(self.tr('样本足以判断的题目中，没有需要检查的。', 'Of the questions with enough answers to judge, none needs checking.'))}</div>"
                               ) + (f"<p class='muted'>{esc(few)}</p>" if few else "")
        # judged questions first, the hardest of each group first
        self.items_box.value = self._items_html(items.sort_values(["judged", "facility"], ascending=[False, True],
                                                                  kind="stable"))
        table = readable(item_table(items, self.lang), self.lang, self.timezone)
        stem = f"item-analysis-{self.which.value}-{local_day(self.clock(), self.timezone).replace('-', '')}"
        self.downloads.value = (
            download_link(export_bytes(table, "csv"), f"{stem}.csv", self.tr("下载 CSV", "Download CSV"), "text/csv")
            + download_link(export_bytes(table, "xlsx", sheet=self.tr("试题分析", "item analysis")), f"{stem}.xlsx",
                            self.tr("下载 Excel (XLSX)", "Download Excel (XLSX)"),
                            XLSX_MIME))
        cl = ia.clauses.head(15)
        self.clause_box.value = table_html(cl, columns=["title", "source", "questions", "responses", "facility", "missed"],
                                           formats={"facility": pct, "missed": pct,
                                                    "source": lambda v: source_label(str(v), self.lang)}, headers={
            "source": self.tr("来源", "source"), "title": self.tr("条款", "clause"),
            "questions": self.tr("题数", "questions"), "responses": self.tr("作答数", "answers"),
            "facility": self.tr("得分率", "facility"), "missed": self.tr("失分率", "missed")}) if len(cl) else ""
        self.say("")


def flag_html(text: str) -> Markup:
    """A flag's text in red (escaped)."""
    return Markup("<span class='flag'>{}</span>").format(text) if text else Markup("")


def note_html(text: str) -> Markup:
    """A muted note, e.g. "too few answers (n=3)" (escaped)."""
    return Markup("<span class='muted sopcoach-sample-note'>{}</span>").format(text) if text else Markup("")


# -- certificates ----------------------------------------------------------------------------------------
class CertificatesApp(_App):
    """Who is certified, verification, PDFs, recertification.

    Clauses are named by their titles in the page's language (the clause's source in brackets), the
    picked certificate's covered clauses listed under it; the PDF prints the learner server's check
    page when :attr:`sopcoach.config.Settings.public_url` is set.
    """

    def __init__(self, s: Any = None, records: Any = None, lang: str | None = None,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(s, records, lang, clock)
        self.table = w.HTML()
        self.code_box = w.Text(description=self.tr("验证码", "Code"), placeholder="SC-XXXX-XXXX-XXXX")
        self.verify_button = w.Button(description=self.tr("验证", "Verify"), icon="search")
        self.verify_button.on_click(self.on_verify)
        self.verdict = w.HTML()
        self.pick = w.Dropdown(description=self.tr("证书", "Certificate"), options=[])
        self.pick.observe(self.on_pick, names="value")
        self.covered = w.HTML()
        self.table_df = pd.DataFrame()
        self.pdf_button = w.Button(description=self.tr("生成 PDF", "Make the PDF"), icon="file-pdf-o",
                                   button_style="primary")
        self.pdf_button.on_click(self.on_pdf)
        self.pdf_link = w.HTML()
        self.recert_box = w.HTML()
        self.root.children = [
            w.HTML(CSS), self.status,
            w.HTML(f"<h3>{self.tr('验证证书', 'Verify a certificate')}</h3>"),
            w.HBox([self.code_box, self.verify_button]), self.verdict,
            w.HTML(f"<h3>{self.tr('下载证书 PDF', 'Certificate PDF')}</h3>"),
            w.HBox([self.pick, self.pdf_button]), self.covered, self.pdf_link,
            w.HTML(f"<h3>{self.tr('需要复认证的人员', 'People who must re-certify')}</h3>"), self.recert_box,
            w.HTML(f"<h3>{self.tr('全部证书', 'Every certificate')}</h3>"), self.table]
        self.refresh()

    @functools.cached_property
    def clause_titles(self) -> dict[str, str]:
        """Clause id -> "title (source in words)" in the page's language, from the playbook on disk."""
        return {c.id: c.title.get(self.lang) + self.tr(f"（{source_label(c.source, self.lang)}）",
                                                       f" ({source_label(c.source, self.lang)})")
                for c in load_playbook(self.s.playbook_dir).clauses}

    def clause_names(self, ids: Any) -> str:
        """The clauses ``ids`` by title, joined by "; " (an id no longer in the playbook stays as it is)."""
        return "; ".join(self.clause_titles.get(c, c) for c in ids)

    def refresh(self) -> None:
        df = certificate_table(self.records, self.clock())
        self.table_df = df
        status = {k: self.tr(*v) for k, v in STATUS_TEXT.items()}
        self.table.value = table_html(df.drop(columns="clauses"), formats={
            "changed": self.clause_names,
            "issued_at": self.day, "expires_at": self.day,
            "percent": lambda v: f"{v}%", "status": lambda s: status.get(s, s)}, headers={
            "code": self.tr("验证码", "code"), "learner_id": self.tr("员工编号", "id"), "name": self.tr("姓名", "name"),
            "team": self.tr("团队", "team"), "cohort": self.tr("批次", "cohort"), "version": self.tr("规程版本", "version"),
            "percent": self.tr("得分", "score"), "issued_at": self.tr("签发", "issued"),
            "expires_at": self.tr("有效期至", "valid until"), "status": self.tr("状态", "status"),
            "changed": self.tr("已修改的条款", "changed clauses")}) if len(df) else \
            f"<p class='muted'>{esc(self.tr('尚未签发证书。', 'No certificate issued yet.'))}</p>"
        live = df[df["status"] != "superseded"]
        self.pick.options = [(f"{r.name} ({r.learner_id}) · {r.code}", r.code) for r in live.itertuples()]
        if self.pick.options and self.pick.value is None:
            self.pick.value = self.pick.options[0][1]
        rc = recertification_list(self.records, self.clock())
        self.recert_box.value = (
            f"<div class='ok'>{esc(self.tr('没有人需要复认证。', 'Nobody needs to re-certify.'))}</div>" if rc.empty else
            table_html(rc.assign(issued_at=rc["issued_at"].map(self.day), changed=rc["changed"].map(self.clause_names)), headers={
                "learner_id": self.tr("员工编号", "id"), "name": self.tr("姓名", "name"), "team": self.tr("团队", "team"),
                "cohort": self.tr("批次", "cohort"), "certificate": self.tr("证书", "certificate"),
                "issued_at": self.tr("签发", "issued"), "version": self.tr("版本", "version"),
                "changed": self.tr("需重考的条款", "clauses to re-examine")}))

    @safe
    def on_pick(self, _change: Any = None) -> None:
        """List the picked certificate's clauses by title."""
        row = self.table_df[self.table_df["code"] == self.pick.value]
        if row.empty:
            self.covered.value = ""
            return
        order = {c: i for i, c in enumerate(self.clause_titles)}  # the playbook's order
        clauses = sorted(row.iloc[0]["clauses"], key=lambda c: order.get(c, len(order)))
        items = "".join(f"<li>{esc(self.clause_titles.get(c, c))}</li>" for c in clauses)
        head = self.tr(f"此证书涵盖的 {len(clauses)} 个条款", f"The {len(clauses)} clause(s) this certificate covers")
        self.covered.value = (f"<details class='sopcoach-covered'><summary>{esc(head)}</summary>"
                              f"<ul>{items}</ul></details>")

    @safe
    def on_verify(self, _button: Any = None) -> None:
        v = verify(self.records, self.code_box.value, self.clock())
        cls = "ok" if v.current else "warn" if v.genuine else "bad"
        self.verdict.value = f"<div class='{cls}'>{esc(v.message(self.lang, self.timezone))}</div>"

    @safe
    def on_pdf(self, _button: Any = None) -> None:
        if not self.pick.value:
            self.say(self.tr("请先选择证书。", "Pick a certificate first."), "warning")
            return
        pb, _, bp = self.content()
        data = certificate_pdf(self.records, self.pick.value, bp.title, pb.sop.name, pb.calendar.timezone,
                               self.clock(), self.s.public_url)
        self.pdf_link.value = download_link(data, f"certificate-{self.pick.value}.pdf",
                                            self.tr(f"下载 {self.pick.value}.pdf", f"Download {self.pick.value}.pdf"),
                                            "application/pdf")
        self.say(self.tr("PDF 已生成。", "The PDF is ready."))


# -- builders --------------------------------------------------------------------------------------------
def _build(cls: type, lang: str | None) -> w.Widget:
    log_to_server()
    lang = lang or page_lang()
    try:
        return trainer_page(cls(lang=lang).root, lang)
    except Exception:
        log.exception("trainer app %s failed to start", cls.__name__)
        return w.HTML(t("<p>无法打开：内容或数据库有错误，详情见服务器日志。</p>",
                        "<p>Cannot open: the content or the database has an error; see the server log.</p>", lang))


def playbook_changes(lang: str | None = None) -> w.Widget:
    """Build the playbook-changes app (problems, diff, impact, release, review, recertification)."""
    return _build(PlaybookChangesApp, lang)


def results(lang: str | None = None) -> w.Widget:
    """Build the results app (per person or attempt, filters, CSV/XLSX downloads)."""
    return _build(ResultsApp, lang)


def item_analysis(lang: str | None = None) -> w.Widget:
    """Build the item-analysis app."""
    return _build(ItemAnalysisApp, lang)


def certificates(lang: str | None = None) -> w.Widget:
    """Build the certificates app (verify, PDF, recertification list)."""
    return _build(CertificatesApp, lang)


__all__ = [
    "CertificatesApp",
    "ItemAnalysisApp",
    "PlaybookChangesApp",
    "ResultsApp",
    "certificates",
    "item_analysis",
    "playbook_changes",
    "results",
]
