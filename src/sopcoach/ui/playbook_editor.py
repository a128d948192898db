"""The playbook editor app for trainers (``notebooks/trainer/playbook_editor.ipynb``, trainer server).

Trainers change the SOP after each monthly review (seed:3.3.2, seed:4.2.1, seed:4.2.2) in a form,
not in raw YAML. Tabs:

* **Clauses**: the clauses of one section at a time, title and text in zh-CN and en side by
  side, the rationale of a company setting, and a *retired* switch (a retired clause keeps its id,
  its text and its history).
* **Values**: typed controls for every value the code computes with: SLA limits with their unit (and
  the company-set tolerance of a scheduled one, such as the satisfaction call),
  quote limits and discount limits per role, the tiers' weekly follow-up minimums and size
  thresholds, the order of the stages and the role responsible for each, KPI targets, the business
  calendar and the release label.
* **New clause**: add a clause after any other.
* **Review and save**: the readable diff, the impact of each changed clause (questions, practice
  questions, lessons, compliance checks, KPIs), the questions whose key changes, the lesson text
  that changes, hints; then *Save*. Save is enabled only when ``sopcoach check`` reports nothing
  and the review shown is that of the current edits; the server re-checks both on every click.
* **History**: the versions kept before each save, and *Restore*.

Every edit goes through :class:`sopcoach.authoring.playbook_edit.PlaybookEdit` and is checked at once with
the messages of ``sopcoach check`` (shown above the tabs). The widgets only display and forward:
every handler is wrapped with :func:`sopcoach.ui._common.safe`, value handlers are registered with
``names="value"``, and nothing is printed.
"""
from __future__ import annotations

import functools
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from collections.abc import Callable

import ipywidgets as w

from ..authoring.playbook_edit import UNITS, WEEKDAYS, PlaybookEdit, Review, diff_lines, open_playbook
from ..errors import EditError, InvalidPlaybook, SaveConflict
from ..i18n import current_lang, page_lang, t
from ..tables import Cell, Markup, Table, render
from ._common import editor_root, esc, safe
from .history_panel import HistoryPanel

CSS = """
<style>
.sopcoach-editor { font-family: "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  max-width: 1180px; }
.sopcoach-editor h2 { margin: 4px 0 6px 0; }
.sopcoach-editor h4 { margin: 10px 0 4px 0; }
.sopcoach-editor .card { border: 1px solid #d5dbe3; border-radius: 6px; padding: 6px 10px; margin: 6px 0;
  background: #fff; }
.sopcoach-editor .retired { color: #8a5300; font-weight: bold; }
.sopcoach-editor .ok { background: #eef6ee; border-left: 4px solid #1b7f3b; padding: 6px 10px; margin: 4px 0; }
.sopcoach-editor .bad { background: #fdecea; border-left: 4px solid #c0392b; padding: 6px 10px; margin: 4px 0; }
.sopcoach-editor .hint { background: #fff6e0; border-left: 4px solid #c98a00; padding: 4px 10px; margin: 3px 0; }
.sopcoach-editor .problems { font-family: monospace; font-size: 12px; white-space: pre-wrap; }
.sopcoach-editor table.t { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
.sopcoach-editor table.t td, .sopcoach-editor table.t th { border-bottom: 1px solid #ddd; padding: 3px 8px;
  text-align: left; vertical-align: top; }
.sopcoach-editor pre.diff { font-family: monospace !important; font-size: 12px; line-height: 1.35; background: #f7f7f7;
  padding: 6px; overflow-x: auto; white-space: pre; }
.sopcoach-editor .old { color: #b3261e; text-decoration: line-through; } .sopcoach-editor .new { color: #1b7f3b; }
.sopcoach-msg-info { color: #2b5c94; } .sopcoach-msg-warning { color: #8a5300; }
.sopcoach-msg-danger { color: #b3261e; } .sopcoach-msg-success { color: #1b7f3b; font-weight: bold; }
</style>
"""

UNIT_NAMES = {"working_days": ("工作日", "working days"), "calendar_days": ("自然日", "calendar days"),
              "elapsed_hours": ("小时(实际经过)", "elapsed hours"),
              "business_hours": ("工作小时", "business hours")}
DAY_NAMES = {"Mon": "一", "Tue": "二", "Wed": "三", "Thu": "四", "Fri": "五", "Sat": "六", "Sun": "日"}
CHAPTERS = {"1": ("一", "1"), "2": ("二", "2"), "3": ("三", "3"), "4": ("四", "4")}
#: The source SOP's four parts (its headings 一 to 四, seed:1 to seed:4), zh-CN and en.
CHAPTER_TITLES = {"1": ("销售操作规程的重要性及目标", "Importance and objectives of the SOP"),
                  "2": ("销售操作规程的完善步骤", "Steps to improve the SOP"),
                  "3": ("销售操作规程的核心内容", "Core content of the SOP"),
                  "4": ("实施与监控", "Implementation and monitoring")}
FULL = w.Layout(width="98%")
HALF = w.Layout(width="49%")


def _slug(name: str) -> str:
    return "sopcoach-c-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name)


def _dec(value: Any) -> Decimal:
    """Convert a widget number to an exact decimal (a float through its shortest text: 0.1 stays 0.1)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _num(value: Any) -> float | int:
    """Convert a playbook number to what a numeric widget shows."""
    d = Decimal(str(value)) if value is not None else Decimal(0)
    return int(d) if d == d.to_integral_value() else float(d)


class PlaybookEditorApp:
    """The editor's widgets; build it with :func:`build` (or :func:`playbook_editor` in a notebook).

    Parameters
    ----------
    session : PlaybookEdit
        The editing session (content folder, history folder).
    lang : str, optional
        ``zh-CN`` or ``en`` (default from ``SOPCOACH_LANG``).
    by : str, optional
        Who saves (kept with each backup); default ``JUPYTERHUB_USER`` or ``SOPCOACH_TRAINER``.

    Attributes
    ----------
    controls : dict
        Every input widget by a stable name, e.g. ``tier.A.min_weekly_follow_ups``,
        ``sla.email_reply.unit``, ``authority.sales_rep.max_discount_pct``, ``stage.quotation.role``,
        ``clause.follow-up-frequency.text.en``. Each also carries the CSS class
        ``sopcoach-c-<name>`` (non-alphanumerics as ``-``) for browser tests.
    """

    def __init__(self, session: PlaybookEdit, lang: str | None = None, by: str | None = None):
        self.ed = session
        self.lang = lang or current_lang()
        self.by = by if by is not None else (os.environ.get("JUPYTERHUB_USER") or os.environ.get("SOPCOACH_TRAINER") or "")
        self.controls: dict[str, w.Widget] = {}
        self._readers: dict[str, Callable[[], Any]] = {}
        self._writers: dict[str, Callable[[Any], bool]] = {}
        self._syncing = False
        self._reviewed: int | None = None
        self.review_data: Review | None = None

        self.title = w.HTML(CSS + f"<h2>{esc(self.tr('销售规程编辑器', 'Playbook editor'))}</h2>"
                            f"<div>{esc(self.tr('内容目录: ', 'Content folder: '))}<code>{esc(self.ed.content)}</code></div>")
        self.check_box = w.HTML()
        self.check_box.add_class("sopcoach-check")
        self.status = w.HTML()
        self.status.add_class("sopcoach-status")
        self.review_button = w.Button(description=self.tr("检查修改并保存…", "Review and save…"),
                                      button_style="info", icon="eye")
        self.review_button.add_class("sopcoach-review-button")
        self.review_button.add_class("sopcoach-ready")
        self.review_button.on_click(self.on_review)
        self.reload_button = w.Button(description=self.tr("从磁盘重新载入（保留修改）", "Reload from disk (keep my changes)"),
                                      icon="refresh", layout=w.Layout(width="auto"))
        self.reload_button.add_class("sopcoach-reload-button")
        self.reload_button.on_click(self.on_reload)
        self.discard_button = w.Button(description=self.tr("放弃全部修改", "Discard my changes"), icon="undo",
                                       layout=w.Layout(width="auto"))
        self.discard_button.add_class("sopcoach-discard-button")
        self.discard_button.on_click(self.on_discard)
        toolbar = w.HBox([self.review_button, self.reload_button, self.discard_button])

        self.tabs = w.Tab(children=[self._build_clauses(), self._build_values(), self._build_add(),
                                    self._build_review(), self._build_history()])
        for i, (zh, en) in enumerate((("条款", "Clauses"), ("数值设定", "Values"), ("新增条款", "New clause"),
                                      ("检查并保存", "Review and save"), ("历史版本", "History"))):
            self.tabs.set_title(i, self.tr(zh, en))
        self.root = w.VBox([self.title, toolbar, self.check_box, self.status, self.tabs])
        self.root.add_class("sopcoach-editor")
        self._after_edit()
        if self.ed.read_only():
            self.say(self.tr("以下文件无法在此编辑（保存会改变其格式），请手工修改：",
                             "These files cannot be edited here (saving would reformat them); edit them by hand: ")
                     + ", ".join(self.ed.read_only()), "warning")

    # -- helpers ------------------------------------------------------------------------------------------
    def tr(self, zh: str, en: str) -> str:
        return t(zh, en, self.lang)

    def say(self, text: str, level: str = "info") -> None:
        """Show a short message above the tabs (never a traceback)."""
        self.status.value = f'<div class="sopcoach-msg-{level}">{esc(text)}</div>' if text else ""

    def _bind(self, name: str, widget: w.Widget, read: Callable[[], Any], write: Callable[[Any], bool]) -> w.Widget:
        """Register an input widget: ``read`` gives its value from the session, ``write`` edits it."""
        old = self.controls.get(name)
        if old is not None and old is not widget:
            old.close()
        self.controls[name] = widget
        self._readers[name] = read
        self._writers[name] = write
        widget.add_class(_slug(name))
        self._syncing = True
        try:
            widget.value = read()
        finally:
            self._syncing = False
        widget.observe(functools.partial(self.on_control, name), names="value")
        return widget

    def _unbind(self, prefix: str) -> None:
        for name in [n for n in self.controls if n.startswith(prefix)]:
            self.controls.pop(name).close()
            self._readers.pop(name, None)
            self._writers.pop(name, None)

    @safe
    def on_control(self, name: str, change: dict) -> None:
        """Forward a changed input to the session, then re-check the playbook."""
        if self._syncing or name not in self._writers:
            return
        try:
            self._writers[name](change["new"])
        except EditError:  # refused (e.g. 2.5 follow-ups): show the session's value again, then say why
            self._syncing = True
            try:
                self.controls[name].value = self._readers[name]()
            finally:
                self._syncing = False
            raise
        finally:
            self._after_edit()

    def refresh(self) -> None:
        """Show the session's values in every control (after a reload, a discard, a save or a restore)."""
        self._syncing = True
        try:
            for name, widget in self.controls.items():
                value = self._readers[name]()
                if widget.value != value:
                    widget.value = value
        finally:
            self._syncing = False
        self._layout_stages()
        self._fill_sections()
        self._fill_after()
        self._after_edit()

    def _after_edit(self) -> None:
        """Re-check the edits (``sopcoach check``) and update the summary, the disabled states and Save."""
        changed = self.ed.changed_files()
        for name, widget in self.controls.items():
            if name.endswith(".none"):
                target = self.controls.get(name[:-5])
                if target is not None:
                    target.disabled = bool(widget.value)
        if not changed and self.ed.playbook is None:  # the files on disk do not pass check
            problems = self.ed.validate()
            lines = "\n".join(str(p) for p in problems[:20])
            self.check_box.value = (
                f"<div class='bad'><b>{esc(self.tr(f'磁盘上的规程文件有 {len(problems)} 个问题(sopcoach check),请先修正:', f'The playbook files on disk have {len(problems)} problem(s) (sopcoach check); fix them first:'))}</b>"
                f"<div class='problems'>{esc(lines)}</div></div>")
        elif not changed:
            self.check_box.value = (f"<div class='ok'>{esc(self.tr('没有未保存的修改。', 'No unsaved changes.'))}</div>")
        else:
            problems = self.ed.validate()
            files = ", ".join(f"playbook/{n}" for n in changed)
            head = self.tr(f"未保存的修改: {files}", f"Unsaved changes: {files}")
            if problems:
                lines = "\n".join(str(p) for p in problems[:20])
                more = (self.tr(f"\n……另有 {len(problems) - 20} 个问题", f"\n... and {len(problems) - 20} more")
                        if len(problems) > 20 else "")
                self.check_box.value = (
                    f"<div class='bad'>{esc(head)}<br><b>{esc(self.tr(f'sopcoach check 发现 {len(problems)} 个问题,修正后才能保存:', f'sopcoach check reports {len(problems)} problem(s); fix them before saving:'))}</b>"
                    f"<div class='problems'>{esc(lines + more)}</div></div>")
            else:
                self.check_box.value = (f"<div class='ok'>{esc(head)}<br>✓ "
                                        f"{esc(self.tr('sopcoach check: 没有问题。', 'sopcoach check: no problems.'))}</div>")
        self._update_save()
        self._mark_retired()

    # -- clauses --------------------------------------------------------------------------------------------
    def _section_label(self, key: str, ids: list[str]) -> str:
        if key == "company":
            return self.tr(f"公司设定（{len(ids)} 条）", f"Company settings ({len(ids)})")
        zh, en = CHAPTERS.get(key, (key, key))
        title = CHAPTER_TITLES.get(key)
        name = f" · {self.tr(*title)}" if title else ""
        return self.tr(f"第{zh}部分{name}（{len(ids)} 条）", f"Part {en}{name} ({len(ids)})")

    def _build_clauses(self) -> w.Widget:
        self.section = w.Dropdown(description=self.tr("部分", "Section"), layout=w.Layout(width="70%"))
        self.section.add_class("sopcoach-section")
        self.section.observe(self.on_section, names="value")
        self.clause_box = w.VBox()
        self._fill_sections()
        return w.VBox([w.HTML(self.tr("<p>每条条款的中文与英文并排显示；条款编号不可修改。停用的条款保留编号和历史。</p>",
                                      "<p>Each clause in zh-CN and en side by side. Ids never change; a retired "
                                      "clause keeps its id and its history.</p>")), self.section, self.clause_box])

    def _fill_sections(self) -> None:
        sections = self.ed.clause_sections()
        options = [(self._section_label(k, ids), k) for k, ids in sections]
        current = self.section.value
        self._syncing = True
        try:
            self.section.options = options
            self.section.value = current if current in dict(sections) else (options[0][1] if options else None)
        finally:
            self._syncing = False
        self._show_section(self.section.value)

    @safe
    def on_section(self, change: dict) -> None:
        if not self._syncing:
            self._show_section(change["new"])

    def show_clause(self, clause_id: str) -> None:
        """Show the section holding ``clause_id``."""
        for key, ids in self.ed.clause_sections():
            if clause_id in ids:
                if self.section.value == key:
                    self._show_section(key)
                else:
                    self.section.value = key
                self.tabs.selected_index = 0
                return

    def _show_section(self, key: str | None) -> None:
        self._unbind("clause.")
        ids = dict(self.ed.clause_sections()).get(key, []) if key is not None else []
        self.clause_box.children = tuple(self._clause_card(cid) for cid in ids)
        self._mark_retired()

    def _clause_card(self, cid: str) -> w.Widget:
        ed = self.ed
        source = str(ed.value("clauses", cid, "source"))
        head = w.HTML()
        head.add_class(_slug(f"clause.{cid}.head"))
        rows: list[w.Widget] = [head]
        for field, label, box in (("title", self.tr("标题", "Title"), w.Text),
                                  ("text", self.tr("正文", "Text"), w.Textarea)):
            pair = []
            for lang in ("zh-CN", "en"):
                kw = {"layout": w.Layout(width="49%", height="150px" if box is w.Textarea else None),
                      "continuous_update": False, "placeholder": f"{label} ({lang})"}
                widget = box(**kw)
                pair.append(self._bind(
                    f"clause.{cid}.{field}.{lang}", widget,
                    functools.partial(lambda c, f, l: str((ed.value("clauses", c, f) or {}).get(l, "")), cid, field, lang),
                    functools.partial(lambda c, f, l, v: ed.set_clause_text(c, f, l, v), cid, field, lang)))
            rows.append(w.HTML(f"<b>{esc(label)}</b> <span style='color:#666'>zh-CN | en</span>"))
            rows.append(w.HBox(pair))
        if source == "company-setting":
            rows.append(self._bind(
                f"clause.{cid}.rationale",
                w.Text(description=self.tr("理由", "Rationale"), continuous_update=False, layout=FULL),
                functools.partial(lambda c: str(ed.value("clauses", c, "rationale") or ""), cid),
                functools.partial(lambda c, v: ed.set_clause_rationale(c, v), cid)))
        rows.append(self._bind(
            f"clause.{cid}.retired",
            w.Checkbox(description=self.tr("停用（保留编号与历史）", "Retired (keeps its id and history)"), indent=False),
            functools.partial(lambda c: bool(ed.value("clauses", c, "retired")), cid),
            functools.partial(lambda c, v: ed.retire_clause(c, bool(v)), cid)))
        card = w.VBox(rows)
        card.add_class("card")
        card.add_class(_slug(f"clause.{cid}"))
        return card

    def _mark_retired(self) -> None:
        for name, widget in self.controls.items():
            m = re.fullmatch(r"clause\.(.+)\.retired", name)
            if not m:
                continue
            cid = m.group(1)
            for card in self.clause_box.children:
                head = card.children[0]
                if _slug(f"clause.{cid}.head") in head._dom_classes:
                    source = self.ed.value("clauses", cid, "source")
                    badge = (f" <span class='retired'>{esc(self.tr('已停用', 'retired'))}</span>" if widget.value else "")
                    head.value = f"<b>{esc(cid)}</b> · {esc(source)}{badge}"

    # -- values --------------------------------------------------------------------------------------------
    def _build_values(self) -> w.Widget:
        parts = [
            (self.tr("服务时限（SLA）", "Service levels (SLAs)"), self._build_slas()),
            (self.tr("报价与折扣权限", "Quote and discount authority"), self._build_authority()),
            (self.tr("客户等级与跟进频率", "Customer tiers and follow-up cadence"), self._build_tiers()),
            (self.tr("销售阶段顺序与负责岗位", "Stage order and responsible roles"), self._build_stages()),
            (self.tr("工具与模板的复查周期", "Review interval of tools and templates"), self._build_templates()),
            (self.tr("KPI 目标", "KPI targets"), self._build_kpis()),
            (self.tr("工作日历", "Business calendar"), self._build_calendar()),
            (self.tr("版本号", "Release label"), self._build_sop()),
        ]
        acc = w.Accordion(children=[p[1] for p in parts])
        for i, (title, _) in enumerate(parts):
            acc.set_title(i, title)
        acc.selected_index = 2
        self.values_accordion = acc
        return acc

    def _name(self, part: str, ident: str) -> str:
        pb = self.ed.playbook
        if pb is None:
            return ident
        item = next((x for x in getattr(pb, part) if getattr(x, "id", getattr(x, "role", None)) == ident), None)
        name = getattr(item, "name", None)
        if part == "authority":
            name = next((r.name for r in pb.roles if r.id == ident), None)
        return f"{name.get(self.lang)} ({ident})" if name is not None else ident

    def _roles(self) -> list[tuple[str, str]]:
        return [(self._name("roles", r), r) for r in self.ed.ids("roles")]

    def _build_slas(self) -> w.Widget:
        ed = self.ed
        rows = [w.HTML(self.tr("<p>每个时限都有单位：工作日、自然日、小时（实际经过，含夜间周末）或工作小时。</p>",
                               "<p>Every limit has a unit: working days, calendar days, elapsed hours (nights and "
                               "weekends count) or business hours.</p>"))]
        units = [(self.tr(*UNIT_NAMES[u]), u) for u in UNITS]
        for sid in ed.ids("slas"):
            value = self._bind(f"sla.{sid}.value", w.FloatText(layout=w.Layout(width="120px")),
                               functools.partial(lambda s: _num((ed.value("slas", s, "limit") or {}).get("value")), sid),
                               functools.partial(lambda s, v: ed.set_sla_limit(s, value=_dec(v)), sid))
            unit = self._bind(f"sla.{sid}.unit", w.Dropdown(options=units, layout=w.Layout(width="200px")),
                              functools.partial(lambda s: (ed.value("slas", s, "limit") or {}).get("unit"), sid),
                              functools.partial(lambda s, v: ed.set_sla_limit(s, unit=v), sid))
            rows.append(w.HBox([w.HTML(esc(self._name("slas", sid)), layout=w.Layout(width="380px")), value, unit]))
            if isinstance(ed.value("slas", sid, "tolerance"), dict):  # scheduled: due on a day, seed:1.2.1
                rows.append(self._tolerance_row(sid))
        return w.VBox(rows)

    def _tolerance_row(self, sid: str) -> w.Widget:
        """The company-set window of a scheduled SLA: whole days before and after its due day, and their unit."""
        ed = self.ed

        def read(key: str) -> Any:
            return (ed.value("slas", sid, "tolerance") or {}).get(key)

        days = [self._bind(f"sla.{sid}.tolerance.{key}", w.FloatText(layout=w.Layout(width="90px")),
                           functools.partial(lambda k: _num(read(k)), key),
                           functools.partial(lambda k, v: ed.set_sla_tolerance(sid, **{k: v}), key))
                for key in ("before", "after")]
        unit = self._bind(f"sla.{sid}.tolerance.unit",
                          w.Dropdown(options=[(self.tr(*UNIT_NAMES[u]), u) for u in ("working_days", "calendar_days")],
                                     layout=w.Layout(width="160px")),
                          lambda: read("unit"), lambda v: ed.set_sla_tolerance(sid, unit=v))
        label = self.tr("　公司允许：提前 / 推迟（天数，公司设定）", "   Company tolerance: days before / after (company setting)")
        return w.HBox([w.HTML(esc(label), layout=w.Layout(width="380px")), days[0], days[1], unit])

    def _build_templates(self) -> w.Widget:
        ed = self.ed
        rows = [w.HTML(self.tr("<p>工具与模板多久复查一次（seed:3.2.2）；没有“月”这个单位，一个季度写作 90 个自然日。</p>",
                               "<p>How often each tool or template is reviewed (seed:3.2.2); there is no month unit: "
                               "a quarter is 90 calendar days.</p>"))]
        units = [(self.tr(*UNIT_NAMES[u]), u) for u in UNITS]

        def spec(x: str) -> dict:
            return ed.value("templates", x, "review_every") or {}

        for tid in ed.ids("templates"):
            value = w.FloatText(layout=w.Layout(width="120px"))
            unit = self._bind(f"template.{tid}.review_unit", w.Dropdown(options=units, layout=w.Layout(width="200px")),
                              functools.partial(lambda x: spec(x).get("unit") or "calendar_days", tid),
                              functools.partial(lambda x, v: False if not spec(x) else ed.set_template_review(x, unit=v), tid))
            none = self._optional_number(
                f"template.{tid}.review_value", value,
                functools.partial(lambda x: spec(x).get("value"), tid),
                functools.partial(lambda x, u, v: ed.set_template_review(x, value=v, unit=u.value), tid, unit))
            rows.append(w.HBox([w.HTML(esc(self._name("templates", tid)), layout=w.Layout(width="380px")), none, unit]))
        return w.VBox(rows)

    def _optional_number(self, name: str, widget: w.Widget, read: Callable[[], Any], write: Callable[[Any], bool],
                         scale: Decimal = Decimal(1)) -> w.Widget:
        """A number with a "no limit" box: checked removes the value, unchecked writes the number."""
        none = w.Checkbox(description=self.tr("不设", "none"), indent=False, layout=w.Layout(width="70px"))
        self._bind(name, widget, lambda: _num((read() or Decimal(0)) * scale),
                   lambda v: False if none.value else write(_dec(v) / scale))
        self._bind(name + ".none", none, lambda: read() is None,
                   lambda v: write(None) if v else write(_dec(widget.value) / scale))
        return w.HBox([widget, none])

    def _build_authority(self) -> w.Widget:
        ed = self.ed
        rows = [w.HTML(self.tr("<p>报价金额（人民币元，含税）与折扣上限（%）。任一项超出，由审批人审批。</p>",
                               "<p>Quote amount (SOP currency, tax included) and discount limit (%). Above either "
                               "limit the approver approves.</p>"))]
        header = [self.tr("岗位", "Role"), self.tr("报价金额上限", "Max quote amount"),
                  self.tr("折扣上限（%）", "Max discount (%)"), self.tr("审批人", "Approver")]
        rows.append(w.HBox([w.HTML(f"<b>{esc(h)}</b>", layout=w.Layout(width=wd))
                            for h, wd in zip(header, ("260px", "240px", "200px", "240px"))]))
        for role in ed.ids("authority"):
            amount = self._optional_number(
                f"authority.{role}.max_quote_amount", w.FloatText(layout=w.Layout(width="160px")),
                functools.partial(lambda r: ed.value("authority", r, "max_quote_amount"), role),
                functools.partial(lambda r, v: ed.set_authority(r, max_quote_amount=v), role))
            discount = self._optional_number(
                f"authority.{role}.max_discount_pct", w.FloatText(layout=w.Layout(width="120px")),
                functools.partial(lambda r: ed.value("authority", r, "max_discount"), role),
                functools.partial(lambda r, v: ed.set_authority(r, max_discount=v), role), scale=Decimal(100))
            approver = self._bind(
                f"authority.{role}.approver",
                w.Dropdown(options=[(self.tr("（无，最高岗位）", "(none: top role)"), "")] + self._roles(),
                           layout=w.Layout(width="240px")),
                functools.partial(lambda r: str(ed.value("authority", r, "approver") or ""), role),
                functools.partial(lambda r, v: ed.set_authority(r, approver=v or None), role))
            rows.append(w.HBox([w.HTML(esc(self._name("authority", role)), layout=w.Layout(width="260px")),
                                w.Box([amount], layout=w.Layout(width="240px")),
                                w.Box([discount], layout=w.Layout(width="200px")), approver]))
        return w.VBox(rows)

    def _build_tiers(self) -> w.Widget:
        ed = self.ed
        rows = [w.HTML(self.tr("<p>每周最低跟进次数（自然周，周一至周日）与规模门槛（年营业收入或员工人数，满足其一）。</p>",
                               "<p>Minimum follow-ups per calendar week (Monday-Sunday) and the size thresholds "
                               "(annual revenue OR employees).</p>"))]
        header = [self.tr("等级", "Tier"), self.tr("每周最低跟进次数", "Min follow-ups / week"),
                  self.tr("年营业收入门槛", "Min annual revenue"), self.tr("员工人数门槛", "Min employees")]
        rows.append(w.HBox([w.HTML(f"<b>{esc(h)}</b>", layout=w.Layout(width=wd))
                            for h, wd in zip(header, ("300px", "180px", "260px", "220px"))]))
        for tid in ed.ids("tiers"):
            cadence = self._bind(
                f"tier.{tid}.min_weekly_follow_ups", w.FloatText(layout=w.Layout(width="100px")),
                functools.partial(lambda x: int(ed.value("tiers", x, "min_weekly_follow_ups") or 0), tid),
                functools.partial(lambda x, v: ed.set_tier(x, min_weekly_follow_ups=v), tid))
            revenue = self._optional_number(
                f"tier.{tid}.min_annual_revenue", w.FloatText(layout=w.Layout(width="170px")),
                functools.partial(lambda x: ed.value("tiers", x, "min_annual_revenue"), tid),
                functools.partial(lambda x, v: ed.set_tier(x, min_annual_revenue=v), tid))
            employees = self._optional_number(
                f"tier.{tid}.min_employees", w.FloatText(layout=w.Layout(width="120px")),
                functools.partial(lambda x: ed.value("tiers", x, "min_employees"), tid),
                functools.partial(lambda x, v: ed.set_tier(x, min_employees=v), tid))
            rows.append(w.HBox([w.HTML(esc(self._name("tiers", tid)), layout=w.Layout(width="300px")),
                                w.Box([cadence], layout=w.Layout(width="180px")),
                                w.Box([revenue], layout=w.Layout(width="260px")), employees]))
        return w.VBox(rows)

    def _build_stages(self) -> w.Widget:
        ed = self.ed
        self.stage_rows: dict[str, w.Widget] = {}
        self.stage_numbers: dict[str, w.HTML] = {}
        for sid in ed.ids("stages"):
            role = self._bind(f"stage.{sid}.role", w.Dropdown(options=self._roles(), layout=w.Layout(width="260px")),
                              functools.partial(lambda s: str(ed.value("stages", s, "responsible_role")), sid),
                              functools.partial(lambda s, v: ed.set_stage_role(s, v), sid))
            up = w.Button(icon="arrow-up", tooltip=self.tr("上移", "Move up"), layout=w.Layout(width="40px"))
            down = w.Button(icon="arrow-down", tooltip=self.tr("下移", "Move down"), layout=w.Layout(width="40px"))
            up.add_class(_slug(f"stage.{sid}.up"))
            down.add_class(_slug(f"stage.{sid}.down"))
            up.on_click(functools.partial(self.on_move_stage, sid, -1))
            down.on_click(functools.partial(self.on_move_stage, sid, 1))
            self.stage_numbers[sid] = w.HTML(layout=w.Layout(width="40px"))
            self.stage_rows[sid] = w.HBox([self.stage_numbers[sid],
                                           w.HTML(esc(self._name("stages", sid)), layout=w.Layout(width="260px")),
                                           role, up, down])
        self.stages_box = w.VBox()
        self._layout_stages()
        return w.VBox([w.HTML(self.tr("<p>列表顺序就是销售流程的顺序（第 1 阶段在最上面）；试题由此推导“第几个阶段”。</p>",
                                      "<p>The order of this list is the order of the sales process (stage 1 on "
                                      "top); questions derive \"the 3rd stage\" from it.</p>")), self.stages_box])

    def _layout_stages(self) -> None:
        order = [s for s in self.ed.ids("stages") if s in self.stage_rows]
        for i, sid in enumerate(order, 1):
            self.stage_numbers[sid].value = f"<b>{i}.</b>"
        self.stages_box.children = tuple(self.stage_rows[s] for s in order)

    @safe
    def on_move_stage(self, stage_id: str, delta: int, _button: Any = None) -> None:
        """Move a stage one place up or down."""
        try:
            self.ed.move_stage(stage_id, delta)
        finally:
            self._layout_stages()
            self._after_edit()

    def _build_kpis(self) -> w.Widget:
        ed = self.ed
        rows = [w.HTML(self.tr("<p>比率类指标的目标以百分比输入；天数类指标以天数输入。</p>",
                               "<p>Targets of rates are entered in percent; those counted in days, in days.</p>"))]
        for kid in ed.ids("kpis"):
            unit = str(ed.value("kpis", kid, "unit"))
            scale = Decimal(100) if unit == "fraction" else Decimal(1)
            label = {"fraction": "%", "calendar_days": self.tr("自然日", "calendar days"),
                     "working_days": self.tr("工作日", "working days"), "count": self.tr("次", "count")}.get(unit, unit)
            target = self._optional_number(
                f"kpi.{kid}.target", w.FloatText(layout=w.Layout(width="120px")),
                functools.partial(lambda k: ed.value("kpis", k, "target"), kid),
                functools.partial(lambda k, v: ed.set_kpi_target(k, v), kid), scale=scale)
            rows.append(w.HBox([w.HTML(esc(self._name("kpis", kid)), layout=w.Layout(width="320px")), target,
                                w.HTML(esc(label))]))
        return w.VBox(rows)

    def _build_calendar(self) -> w.Widget:
        ed = self.ed

        def read(key: str, default: Any = "") -> Callable[[], Any]:
            return lambda: ed.value("calendar", None, key) if ed.value("calendar", None, key) is not None else default

        def joined(key: str) -> Callable[[], str]:
            return lambda: ", ".join(str(x) for x in (ed.value("calendar", None, key) or []))

        days = []
        for day in WEEKDAYS:
            days.append(self._bind(
                f"calendar.weekend.{day}",
                w.Checkbox(description=self.tr(f"周{DAY_NAMES[day]}", day), indent=False, layout=w.Layout(width="80px")),
                functools.partial(lambda d: d in (ed.value("calendar", None, "weekend") or []), day),
                functools.partial(lambda d, v: ed.set_calendar(weekend=[
                    x for x in WEEKDAYS if (x == d and v) or (x != d and x in (ed.value("calendar", None, "weekend") or []))]),
                    day)))
        text = functools.partial(w.Text, continuous_update=False, style={"description_width": "160px"},
                                 layout=w.Layout(width="520px"))
        fields = [
            self._bind("calendar.timezone", text(description=self.tr("时区", "Time zone")), read("timezone"),
                       lambda v: ed.set_calendar(timezone=v)),
            w.HBox([w.HTML(f"<b>{esc(self.tr('每周休息日', 'Weekend'))}</b>", layout=w.Layout(width="160px"))] + days),
            self._bind("calendar.day_start", text(description=self.tr("上班时间（HH:MM）", "Day starts (HH:MM)")),
                       read("day_start"), lambda v: ed.set_calendar(day_start=v)),
            self._bind("calendar.day_end", text(description=self.tr("下班时间（HH:MM）", "Day ends (HH:MM)")),
                       read("day_end"), lambda v: ed.set_calendar(day_end=v)),
            self._bind("calendar.holidays_source",
                       w.Dropdown(description=self.tr("节假日来源", "Holidays from"), style={"description_width": "160px"},
                                  options=[(self.tr("中国法定节假日与调休（chinese-calendar）",
                                                    "Mainland-China holidays and make-up days (chinese-calendar)"),
                                            "chinese-calendar"),
                                           (self.tr("仅下列日期（declared）", "Only the dates below (declared)"), "declared")],
                                  layout=w.Layout(width="520px")),
                       read("holidays_source", "chinese-calendar"), lambda v: ed.set_calendar(holidays_source=v)),
            self._bind("calendar.years", text(description=self.tr("覆盖年份", "Years covered")), joined("years"),
                       lambda v: ed.set_calendar(years=v)),
            self._bind("calendar.holidays", text(description=self.tr("公司额外休息日", "Extra days off"),
                                                 placeholder="YYYY-MM-DD, ..."),
                       joined("holidays"), lambda v: ed.set_calendar(holidays=v)),
            self._bind("calendar.workdays", text(description=self.tr("公司额外工作日", "Extra working days"),
                                                 placeholder="YYYY-MM-DD, ..."),
                       joined("workdays"), lambda v: ed.set_calendar(workdays=v)),
        ]
        return w.VBox(fields)

    def _build_sop(self) -> w.Widget:
        ed = self.ed
        return w.VBox([
            w.HTML(self.tr("<p>每次修改规则后提高版本号，考试记录和证书据此追溯所依据的规则。</p>",
                           "<p>Raise the label whenever a rule changes, so that results and certificates can be "
                           "traced to the rules in force.</p>")),
            self._bind("sop.version", w.Text(description=self.tr("版本号", "Version"), continuous_update=False),
                       lambda: str(ed.value("sop", None, "version") or ""), lambda v: ed.set_sop_version(v))])

    # -- new clause --------------------------------------------------------------------------------------------
    def _build_add(self) -> w.Widget:
        lay = w.Layout(width="49%")
        self.new_id = w.Text(description=self.tr("编号", "Id"), placeholder="e.g. reply-template",
                             continuous_update=False)
        self.new_source = w.Text(description=self.tr("来源", "Source"), placeholder="seed:3.1.2 / company-setting",
                                 continuous_update=False)
        self.new_rationale = w.Text(description=self.tr("理由", "Rationale"), continuous_update=False, layout=FULL,
                                    placeholder=self.tr("公司设定条款必填：一句话说明理由",
                                                        "required for company-setting: one line, why"))
        self.new_title = {lang: w.Text(placeholder=f"{self.tr('标题', 'Title')} ({lang})", layout=lay,
                                       continuous_update=False) for lang in ("zh-CN", "en")}
        self.new_text = {lang: w.Textarea(placeholder=f"{self.tr('正文', 'Text')} ({lang})",
                                          layout=w.Layout(width="49%", height="140px"), continuous_update=False)
                         for lang in ("zh-CN", "en")}
        self.new_after = w.Dropdown(description=self.tr("插入在其后", "Insert after"), layout=w.Layout(width="70%"))
        self.add_button = w.Button(description=self.tr("新增条款", "Add the clause"), button_style="primary", icon="plus")
        self.add_button.add_class("sopcoach-add-clause")
        self.add_button.on_click(self.on_add_clause)
        for name, widget in (("new.id", self.new_id), ("new.source", self.new_source),
                             ("new.rationale", self.new_rationale), ("new.title.zh-CN", self.new_title["zh-CN"]),
                             ("new.title.en", self.new_title["en"]), ("new.text.zh-CN", self.new_text["zh-CN"]),
                             ("new.text.en", self.new_text["en"]), ("new.after", self.new_after)):
            widget.add_class(_slug(name))
        self._fill_after()
        return w.VBox([
            w.HTML(self.tr("<p>新条款需要新的编号（不要重用已停用条款的编号）、来源（seed:N.N.N 或 company-setting）、"
                           "中英文标题和正文。</p>",
                           "<p>A new clause needs a new id (never reuse a retired one), its source (seed:N.N.N or "
                           "company-setting) and a title and text in both languages.</p>")),
            w.HBox([self.new_id, self.new_source]), self.new_rationale,
            w.HBox(list(self.new_title.values())), w.HBox(list(self.new_text.values())),
            self.new_after, self.add_button])

    def _fill_after(self) -> None:
        pb = self.ed.playbook
        titles = {c.id: c.title.get(self.lang) for c in pb.clauses} if pb else {}
        ids = self.ed.ids("clauses")
        self.new_after.options = [(f"{cid} · {titles.get(cid, '')}", cid) for cid in ids]
        if ids:
            self.new_after.value = ids[-1]

    @safe
    def on_add_clause(self, _button: Any = None) -> None:
        """Add the clause of the form (refused with the reason when incomplete)."""
        cid = self.new_id.value.strip()
        self.ed.add_clause(cid, self.new_source.value, {k: v.value for k, v in self.new_title.items()},
                           {k: v.value for k, v in self.new_text.items()}, self.new_rationale.value or None,
                           after=self.new_after.value)
        for widget in (self.new_id, self.new_source, self.new_rationale, *self.new_title.values(),
                       *self.new_text.values()):
            widget.value = ""
        self._fill_after()
        self._fill_sections()
        self._after_edit()
        self.show_clause(cid)
        self.say(self.tr(f"已新增条款 {cid}(尚未保存)。", f"Clause {cid} added (not saved yet)."), "info")

    # -- review and save ----------------------------------------------------------------------------------------
    def _build_review(self) -> w.Widget:
        self.review_html = w.HTML()
        self.review_html.add_class("sopcoach-review")
        self.refresh_review_button = w.Button(description=self.tr("更新检查结果", "Refresh the review"), icon="refresh",
                                              layout=w.Layout(width="auto"))
        self.refresh_review_button.on_click(self.on_review)
        self.note = w.Text(description=self.tr("修改说明", "Note"), continuous_update=False, layout=FULL,
                           placeholder=self.tr("改了什么、为什么（例如：3 月复盘：A 类客户流失）",
                                               "what changed and why (e.g. March review: A accounts churning)"))
        self.note.add_class("sopcoach-note")
        self.save_button = w.Button(description=self.tr("保存", "Save"), button_style="success", icon="save",
                                    disabled=True)
        self.save_button.add_class("sopcoach-save-button")
        self.save_button.on_click(self.on_save)
        return w.VBox([self.refresh_review_button, self.review_html, self.note, self.save_button])

    def _update_save(self) -> None:
        ok = (self._reviewed == self.ed.generation and self.review_data is not None
              and bool(self.review_data.changed_files) and not self.review_data.problems)
        self.save_button.disabled = not ok
        if self._reviewed is not None and self._reviewed != self.ed.generation and self.review_data is not None:
            self.review_html.value = (f"<div class='hint'>{esc(self.tr('修改后需要重新检查:请点“更新检查结果”。', 'The edits changed since this review: click Refresh the review.'))}</div>")
            self.review_data = None

    @safe
    def on_review(self, _button: Any = None) -> None:
        """Show the diff and the impact of the edits, and enable Save when they pass check."""
        self.tabs.selected_index = 3
        self.review_data = self.ed.review(self.lang)
        self._reviewed = self.ed.generation
        self.review_html.value = self.render_review(self.review_data)
        self._update_save()

    def render_review(self, r: Review) -> str:
        """Return the review as HTML: diff, impact, key changes, lesson changes, hints, problems."""
        tr = self.tr
        if not r.changed_files:
            return f"<div class='ok'>{esc(tr('没有修改,无需保存。', 'Nothing changed; nothing to save.'))}</div>"
        out = [f"<h4>{esc(tr('修改的文件', 'Files changed'))}</h4><div>{esc(', '.join(r.changed_files))}</div>"]
        if r.problems:
            lines = "\n".join(str(p) for p in r.problems[:20])
            out.append(f"<div class='bad'><b>{esc(tr('sopcoach check 发现问题,不能保存:', 'sopcoach check reports problems; saving is not possible:'))}</b>"
                       f"<div class='problems'>{esc(lines)}</div></div>")
        if r.diff is not None:
            out.append(f"<h4>{esc(tr('修改内容(按条款)', 'What changes (by clause)'))}</h4>")
            out.append(f"<pre class='diff sopcoach-diff'>{esc(chr(10).join(diff_lines(r.diff, self.lang)) or '-')}</pre>")
            for name, text in r.diff.file_diffs.items():
                out.append(f"<details><summary>{esc(tr('YAML 文件差异: ', 'YAML diff: '))}playbook/{esc(name)}</summary>"
                           f"<pre class='diff'>{esc(text)}</pre></details>")
        if r.impact:
            head = (tr("条款", "Clause"), tr("考试题", "Exam questions"), tr("练习题", "Practice questions"),
                    tr("课程", "Lessons"), tr("合规检查", "Compliance checks"), "KPI")
            body = [[Markup("<b>{}</b><br>{} {}").format(x.clause, x.source, x.title)]
                    + [", ".join(v) or "-" for v in (x.questions, x.practice, x.lessons, x.checks, x.kpis)]
                    for x in r.impact]
            out.append(f"<h4>{esc(tr('影响(使用这些条款的内容)', 'Impact (what uses each changed clause)'))}</h4>"
                       + render(Table(head, body, css_class="t sopcoach-impact")))
        out.append(f"<h4>{esc(tr('答案随之改变的题目', 'Questions whose key changes'))}</h4>")
        if r.key_changes:
            rows = [[k.question_id, tr("考试", "exam") if k.pool == "bank" else tr("练习", "practice"),
                     Cell(k.old, "old"), Cell(k.new, "new")] for k in r.key_changes]
            out.append(render(Table([tr("题目", "Question"), tr("题库", "Pool"), tr("原答案", "Old key"), tr("新答案", "New key")],
                                  rows, css_class="t sopcoach-keys")))
        else:
            out.append(f"<div>{esc(tr('没有。', 'None.'))}</div>")
        if r.text_changes:
            out.append(f"<div>{esc(tr('题面或解析引用了改动的数值(答案不变): ', 'Question texts that quote a changed value (key unchanged): '))}"
                       f"{esc(', '.join(r.text_changes))}</div>")
        if r.lesson_changes:
            rows = [[Markup("{}<br>{}").format(c.lesson, c.title), Cell(c.old, "old"), Cell(c.new, "new")]
                    for c in r.lesson_changes]
            out.append(f"<h4>{esc(tr('课程中随之改变的内容', 'What the lessons will say'))}</h4>"
                       + render(Table([tr("课程", "Lesson"), tr("修改前", "Before"), tr("修改后", "After")], rows,
                                    css_class="t sopcoach-lessons")))
        if r.hints:
            out.append(f"<h4>{esc(tr('请留意', 'Please check'))}</h4>"
                       + "".join(f"<div class='hint'>{esc(h)}</div>" for h in r.hints))
        if not r.problems:
            out.append(f"<div class='ok'>{esc(tr('可以保存。保存前的版本会自动备份,可在“历史版本”中恢复。', 'Ready to save. The version on disk is backed up first and can be restored under History.'))}</div>")
        return "".join(out)

    @safe
    def on_save(self, _button: Any = None) -> None:
        """Save after a current, clean review (re-checked here: a forged click cannot skip it)."""
        if not self.ed.dirty:
            self.say(self.tr("没有修改，无需保存。", "Nothing changed; nothing to save."), "info")
            return
        if self._reviewed != self.ed.generation or self.review_data is None:
            self.on_review()
            self.say(self.tr("修改已变化，已更新检查结果；请核对后再点保存。",
                             "The edits changed: the review is updated; check it and click Save again."), "warning")
            return
        self.save_button.disabled = True
        try:
            result = self.ed.save(note=self.note.value.strip(), by=self.by)
        except SaveConflict as exc:
            files = ", ".join(exc.files)
            self.say(self.tr(
                f"未保存:{files} 在您打开后已被他人修改。您的修改仍在编辑器中,并已另存到 {exc.draft}。"
                "请点“从磁盘重新载入(保留修改)”,核对后再保存。",
                f"Nothing was saved: {files} changed on disk after you opened it. Your edits are still here and "
                f"were also kept in {exc.draft}. Click \"Reload from disk (keep my changes)\", review and save again."),
                "danger")
            return
        except InvalidPlaybook as exc:
            self.review_data = None
            self.say(str(exc), "danger")
            return
        finally:
            self._update_save()
        self.review_data = None
        self._reviewed = None
        self.note.value = ""
        self.refresh()
        self.history.fill()
        backup = result.backup.id if result.backup else "-"
        self.review_html.value = ""
        self.say(self.tr(f"已保存: {', '.join(result.written)}。修改前的版本已备份({backup}),可在“历史版本”中恢复。"
                         "请用 sopcoach release 发布新版本,使用改动条款的试题会被标记待复核。",
                         f"Saved: {', '.join(result.written)}. The previous version is kept ({backup}) and can be "
                         "restored under History. Release it with `sopcoach release` so that questions on the "
                         "changed clauses are flagged for review."), "success")

    # -- reload / discard ---------------------------------------------------------------------------------------
    @safe
    def on_reload(self, _button: Any = None) -> None:
        """Read the files again and re-apply the edits of this session."""
        failed = self.ed.reload(keep_changes=True)
        self._reviewed = None
        self.review_data = None
        self.review_html.value = ""
        self.refresh()
        if failed:
            self.say(self.tr("已重新载入；以下修改无法重新应用：", "Reloaded; these edits could not be re-applied: ")
                     + "; ".join(failed), "warning")
        else:
            self.say(self.tr("已从磁盘重新载入，您的修改已重新应用。", "Reloaded from disk; your edits are re-applied."), "info")

    @safe
    def on_discard(self, _button: Any = None) -> None:
        """Drop every unsaved edit and show the files as they are on disk."""
        self.ed.reload(keep_changes=False)
        self._reviewed = None
        self.review_data = None
        self.review_html.value = ""
        self.refresh()
        self.say(self.tr("已放弃所有未保存的修改。", "Every unsaved edit was discarded."), "info")

    # -- history -------------------------------------------------------------------------------------------------
    def _build_history(self) -> w.Widget:
        self.history = HistoryPanel(self, self._after_restore)
        self.versions, self.restore_button, self.history_info = (self.history.versions, self.history.restore_button,
                                                                 self.history.history_info)
        return self.history.root

    def _after_restore(self, _result: Any) -> None:
        """Show the restored files (the session reopened them); the review is stale."""
        self._reviewed = None
        self.review_data = None
        self.review_html.value = ""
        self.refresh()


def build(content: Path | str | None = None, home: Path | str | None = None, lang: str | None = None,
          by: str | None = None) -> PlaybookEditorApp:
    """Open the playbook of ``content`` (default ``SOPCOACH_CONTENT``) and return the editor app.

    Raises
    ------
    EditError
        When the content folder has no ``playbook/``.
    """
    return PlaybookEditorApp(open_playbook(content, home), lang=lang, by=by)


def playbook_editor(content: Path | str | None = None, home: Path | str | None = None,
                    lang: str | None = None) -> w.Widget:
    """Return the playbook editor's widget (the notebook's one call).

    When the playbook cannot be opened, a message says why instead (the details go to the log).
    """
    lang = lang or page_lang()
    return editor_root(lambda: build(content, home, lang), "playbook editor", lang)
