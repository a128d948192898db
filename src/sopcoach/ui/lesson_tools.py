"""The interactive tools of the lessons: widgets that read inputs, call a pure function of
:mod:`sopcoach.lessons` and show its result. No rule is computed here.

Each tool has ``root`` (its widget), ``out`` (the result area) and ``msg`` (a short message for
refused input); every handler is registered with ``names="value"`` and wrapped with ``safe``.
"""
from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from collections.abc import Callable, Sequence

import ipywidgets as w

from ..certification.scoring import floor_percent
from ..content.businesstime import Duration, DurationUnit
from ..errors import ToolInputError
from ..i18n import shown, t
from ..labels import crm_field_label, source_label
from ..lessons.tools import (FUNNEL_COUNTS, KPI_STAGE, approval, check_follow_up_plan, classify_tier, deadline, funnel,
                             judge_use, objectives, parse_series, quote_line, stage_map, templates_for_stage, trend)
from ..tables import Cell, Row, Table, render
from ._common import WholeNumberBox, esc, hbox, html_widget, log, safe, shared_layout, vbox

WEEKDAYS = {"zh-CN": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
            "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]}


def _money(v: Decimal | int) -> str:
    d = Decimal(v).normalize()
    return f"{d:,f}" if d == d.to_integral_value() else f"{d:,}"


def _pct(fraction_0_1: Decimal) -> str:
    return f"{(Decimal(fraction_0_1) * 100).normalize():f}%"


class Tool:
    """Base of a lesson tool: a result area, a message line and the lesson's context."""

    def __init__(self, inst: Any, lesson: Any, lang: str, link: Callable[[str, str], str]):
        self.inst = inst
        self.playbook = inst.playbook
        self.lesson = lesson
        self.lang = lang
        self.link = link
        self.out = self.html(classes=("sopcoach-tool-out",))
        self.msg = self.html()
        self.root = w.VBox(layout=shared_layout(), _dom_classes=("sopcoach-tool", f"sopcoach-tool-{lesson.tool}"))

    def tr(self, zh: str, en: str) -> str:
        return shown(t(zh, en, self.lang), self.lang)

    def txt(self, text: Any) -> str:
        """Return a content text as the page shows it (:func:`~sopcoach.i18n.shown`)."""
        return shown(text, self.lang)

    def fields(self, names: list[str]) -> str:
        """Return CRM fields by their labels, joined in the page's language."""
        return self.tr("、", ", ").join(crm_field_label(n, self.lang) for n in names)

    def html(self, value: str = "", classes: Sequence[str] = ()) -> Any:
        """Return an HTML widget of this page (full-width punctuation on a Chinese page)."""
        return html_widget(value, classes, lang=self.lang)

    def say(self, text: str, level: str = "info") -> None:
        self.msg.value = f'<div class="sopcoach-msg-{level}">{esc(text)}</div>' if text else ""

    def number(self, box: w.Text, label: str, low: Decimal | int | None = None, high: Decimal | int | None = None,
               percent: bool = False) -> Decimal | None:
        """Return the number typed in ``box`` (thousands separators and a trailing ``%`` allowed);
        ``None`` after saying, in the page's language, why it was refused (empty, not a number, out
        of ``[low, high]``). ``label`` names the box in the message."""
        raw = box.value.strip().replace(",", "").replace("，", "").replace(" ", "")
        if percent:
            raw = raw.rstrip("%％")
        typed = box.value.strip()
        if not raw:
            self.say(self.tr(f"请填写{label}。", f"Fill in {label}."), "warning")
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            self.say(self.tr(f"{label}请输入数字（收到“{typed}”），未据此计算。",
                             f"Type a number for {label} (got {typed}); nothing was computed from it."), "warning")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            span = (self.tr(f"{_money(low)} 到 {_money(high)} 之间", f"from {_money(low)} to {_money(high)}") if low is not None and high is not None
                    else self.tr(f"不小于 {_money(low)}", f"of {_money(low)} or more") if low is not None
                    else self.tr(f"不大于 {_money(high or 0)}", f"of {_money(high or 0)} or less"))
            self.say(self.tr(f"{label}应为{span}的数（收到 {typed}），未据此计算。",
                             f"{label} must be a number {span} (got {typed}); nothing was computed from it."), "warning")
            return None
        return value

    def refuse(self, exc: ToolInputError) -> None:
        """Say, in the page's language, that the inputs give no result (the details go to the server log)."""
        log.info("lesson tool %s refused its input: %s", self.lesson.tool, exc)
        self.out.value = ""
        self.say(self.tr("按这些输入得不出结果：没有任何岗位的权限能覆盖这份报价，或输入超出了规程的范围。请调整后再试。",
                         "These inputs give no result: no role's authority covers this quote, or an input is outside "
                         "what the SOP covers. Change them and try again."), "warning")

    def role_name(self, role_id: str | None) -> str:
        return next((self.txt(r.name) for r in self.playbook.roles if r.id == role_id), str(role_id))

    def stage_name(self, stage_id: str | None) -> str:
        return next((self.txt(s.name) for s in self.playbook.stages if s.id == stage_id), str(stage_id))

    def clause_ref(self, clause_id: str) -> str:
        """Return a clause by its title and where it comes from (an SOP section or a company setting)."""
        c = self.playbook.clause(clause_id)
        src = source_label(c.source, self.lang)
        return self.tr(f"{self.txt(c.title)}（{src}）", f"{self.txt(c.title)} ({src})")

    def source_label(self, part: str, item_id: str) -> str:
        """Where an item's content comes from, for the learner: an SOP section, a company wording of
        one, or a company setting (:meth:`Playbook.provenance_of`)."""
        p = self.playbook.provenance_of(part, item_id)
        if p.kind == "elaborates":
            return self.tr(f"公司细化（{source_label(str(p.ref), self.lang)}）", f"company wording of {source_label(str(p.ref), self.lang)}")
        if p.kind == "company-setting":
            return self.tr("公司设定", "company setting")
        return source_label(str(p.ref or ""), self.lang)

    def source_tag(self, part: str, item_id: str) -> str:
        """:meth:`source_label` as a small tag (company settings stand out)."""
        company = self.playbook.provenance_of(part, item_id).kind == "company-setting"
        cls = "sopcoach-tag sopcoach-tag-company" if company else "sopcoach-tag"
        return f"<span class='{cls}'>{esc(self.source_label(part, item_id))}</span>"


# ---------------------------------------------------------------------------------------- goals


class GoalsTool(Tool):
    """Lesson 1: pick a goal of the SOP; see its clauses and the lessons that teach them."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.items = objectives(self.playbook, self.lesson)
        self.pick = w.ToggleButtons(options=[(self.txt(o.goal.name), i) for i, o in enumerate(self.items)],
                                    value=0 if self.items else None, style={"button_width": "auto"}, layout=shared_layout())
        self.pick.observe(self.on_pick, names="value")
        self.root.children = (self.pick, self.out, self.msg)
        self.on_pick()

    @safe
    def on_pick(self, _change: Any = None) -> None:
        if self.pick.value is None:
            return
        o = self.items[self.pick.value]
        clauses = "".join(f"<li><b>{esc(self.txt(c.title))}</b> <span class='sopcoach-tag'>{esc(source_label(c.source, self.lang))}</span></li>"
                          for c in o.clauses)
        lessons = " · ".join(self.link(x.notebook, f"{x.number}. {self.txt(x.title)}") for x in o.lessons)
        self.out.value = (f"<div class='sopcoach-card'><p>{esc(self.tr('这个目标包含的条款:', 'Clauses under this goal:'))}</p>"
                          f"<ul>{clauses}</ul><p>{esc(self.tr('详细讲解:', 'Taught in detail in: '))}{lessons}</p></div>")


# -------------------------------------------------------------------------------------- process


class ProcessTool(Tool):
    """Lesson 2: the stage diagram highlighting a role's stages; a stage's criteria and fields."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.role = w.Dropdown(options=[(self.txt(r.name), r.id) for r in self.playbook.roles],
                               value=self.playbook.stages[0].responsible_role,
                               description=self.tr("岗位", "Role"), layout=shared_layout(), _dom_classes=("sopcoach-role-pick",))
        self.stage = w.Dropdown(options=[(f"{i}. {self.txt(s.name)}", s.id) for i, s in enumerate(self.playbook.stages, 1)],
                                value=self.playbook.stages[0].id, description=self.tr("阶段", "Stage"), layout=shared_layout())
        self.diagram = self.html(classes=("sopcoach-diagram",))
        self.detail = self.html()
        steps = "".join(f"<li><b>{esc(self.tr(f'第 {s.number} 步：', f'Step {s.number}: '))}{esc(self.txt(s.name))}</b> — {esc(self.txt(s.action))}"
                        f"<br><small>{esc(self.tr('CRM记录：', 'CRM: '))}{esc(self.fields(s.required_fields))}</small></li>"
                        for s in sorted(self.playbook.steps, key=lambda x: x.number))
        self.role.observe(self.on_role, names="value")
        self.stage.observe(self.on_stage, names="value")
        self.root.children = (self.role, self.diagram, self.stage, self.detail,
                              self.html(f"<h4>{esc(self.tr('可量化的步骤', 'Measurable steps'))}</h4><ol style='list-style:none;padding-left:0'>{steps}</ol>"),
                              self.msg)
        self.on_role()
        self.on_stage()

    @safe
    def on_role(self, _change: Any = None) -> None:
        boxes = stage_map(self.playbook, self.role.value)
        parts = []
        for b in boxes:
            cls = "sopcoach-stage sopcoach-stage-hl" if b.highlighted else "sopcoach-stage"
            added = (self.source_tag("stages", b.stage.id)
                     if self.playbook.provenance_of("stages", b.stage.id).kind == "company-setting" else "")
            parts.append(f"<span class='{cls}' data-stage='{b.stage.id}'>{b.position}. {esc(self.txt(b.stage.name))}"
                         f"{added}<br><small>{esc(self.role_name(b.stage.responsible_role))}</small></span>")
        mine = [b for b in boxes if b.highlighted]
        role = self.playbook.role(self.role.value)
        summary = (self.tr(f"{self.txt(role.name)}负责 {len(mine)} 个阶段。", f"{self.txt(role.name)} is responsible for {len(mine)} stage(s).")
                   if mine else self.tr(f"{self.txt(role.name)}不负责任何阶段,但承担以下职责。",
                                        f"{self.txt(role.name)} runs no stage but has these duties."))
        self.diagram.value = ("<div>" + "<span class='sopcoach-arrow'>→</span>".join(parts) + "</div>"
                              f"<p class='sopcoach-role-summary'>{esc(summary)} {esc(self.txt(role.duties))}</p>")

    @safe
    def on_stage(self, _change: Any = None) -> None:
        s = next(x for x in self.playbook.stages if x.id == self.stage.value)
        entry = "".join(f"<li>{esc(self.txt(c))}</li>" for c in s.entry_criteria)
        exit_ = "".join(f"<li>{esc(self.txt(c))}</li>" for c in s.exit_criteria)
        self.detail.value = (f"<div class='sopcoach-card'><b>{esc(self.txt(s.name))}</b>"
                             f"{self.source_tag('stages', s.id)} — "
                             f"{esc(self.tr('负责岗位：', 'responsible: '))}{esc(self.role_name(s.responsible_role))}"
                             f"<br>{esc(self.tr('进入条件：', 'Entry criteria:'))}<ul>{entry}</ul>"
                             f"{esc(self.tr('完成条件：', 'Exit criteria:'))}<ul>{exit_}</ul>"
                             f"{esc(self.tr('CRM记录：', 'CRM: '))}<span class='sopcoach-crm-fields'>{esc(self.fields(s.crm_fields))}</span></div>")


# ------------------------------------------------------------------------------------- approval


class ApprovalTool(Tool):
    """Lesson 3: the quote-approval simulator (amount, discount, class -> who approves and why)."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        limited = [a.role for a in self.playbook.authority if a.approver is not None]
        self.role = w.Dropdown(options=[(self.role_name(r), r) for r in limited], value=limited[0],
                               description=self.tr("报价人", "Quoted by"), layout=shared_layout())
        self.amount = w.Text(value="120000", description=self.tr("金额（元）", "Amount (CNY)"), continuous_update=False,
                             layout=shared_layout(), _dom_classes=("sopcoach-amount",))
        self.discount = w.Text(value="8", description=self.tr("折扣 %", "Discount %"), continuous_update=False,
                               layout=shared_layout(), _dom_classes=("sopcoach-discount",))
        self.tier = w.Dropdown(options=[(self.txt(x.name), x.id) for x in self.playbook.tiers],
                               value=self.playbook.tiers[0].id, description=self.tr("客户等级", "Class"), layout=shared_layout())
        for box in (self.role, self.amount, self.discount, self.tier):
            box.observe(self.on_change, names="value")
        self.root.children = (hbox([self.role, self.tier]),
                              hbox([self.amount, self.discount]), self.out, self.msg)
        self.on_change()

    @safe
    def on_change(self, _change: Any = None) -> None:
        amount = self.number(self.amount, self.tr("金额", "the amount"), low=0)
        pct = self.number(self.discount, self.tr("折扣", "the discount"), low=0, high=100, percent=True) if amount is not None else None
        if amount is None or pct is None:
            self.out.value = ""
            return
        discount = pct / 100
        try:
            a = approval(self.playbook, self.role.value, amount, discount, self.tier.value)
        except ToolInputError as exc:
            self.refuse(exc)
            return
        self.say("")
        lines = []
        for step in a.steps:
            cap_amount = _money(step.max_quote_amount) if step.max_quote_amount is not None else self.tr("不限", "no limit")
            cap_disc = _pct(step.max_discount) if step.max_discount is not None else self.tr("不限", "no limit")
            verdicts = []
            if not step.amount_ok:
                verdicts.append(self.tr(f"金额 {_money(amount)} 元超出上限 {cap_amount} 元",
                                        f"the amount {_money(amount)} CNY is above the limit of {cap_amount} CNY"))
            if not step.discount_ok:
                verdicts.append(self.tr(f"折扣 {_pct(discount)} 超出上限 {cap_disc}", f"the discount {_pct(discount)} is above the limit of {cap_disc}"))
            verdict = ("<span class='sopcoach-warn'>" + esc("; ".join(verdicts)) + "</span>" if verdicts
                       else "<span class='sopcoach-ok'>" + esc(self.tr("在权限内", "within authority")) + "</span>")
            lines.append(f"<li><b>{esc(self.role_name(step.role))}</b> ({esc(self.tr('上限', 'limits'))}: {cap_amount} / {cap_disc}) — {verdict}</li>")
        if a.needs_approval:
            head = self.tr(f"需要审批:由{self.role_name(a.approver)}审批。", f"Approval needed: the {self.role_name(a.approver).lower()} approves.")
            chain = " → ".join(self.role_name(r) for r in a.chain)
            head_html = f"<p class='sopcoach-warn sopcoach-approver' data-approver='{a.approver}'>{esc(head)}<br>{esc(chain)}</p>"
        else:
            head = self.tr("无需审批：报价人可以直接发出报价。", "No approval needed: the quote may be sent as it is.")
            head_html = f"<p class='sopcoach-ok sopcoach-approver' data-approver=''>{esc(head)}</p>"
        tier = self.playbook.tier(a.tier) if a.tier else None
        tier_note = (self.tr(f"客户等级({self.txt(tier.name)})不改变报价权限:各等级的审批层级相同。",
                             f"The customer class ({self.txt(tier.name)}) does not change the limits: every class has the same approval levels.")
                     if tier else "")
        clause = a.clause
        self.out.value = (f"<div class='sopcoach-card'>{head_html}<ol>{''.join(lines)}</ol><p><small>{esc(tier_note)}</small></p>"
                          f"<p><b>{esc(self.tr('依据', 'Rule'))}: {esc(self.clause_ref(clause.id))}</b> · "
                          f"{esc(self.clause_ref('role-authority'))}</p><blockquote>{esc(self.txt(clause.text))}</blockquote></div>")


# ------------------------------------------------------------------------------------------ SLA


class SlaTool(Tool):
    """Lesson 4: the deadline calculator over the business calendar (holidays, make-up days)."""

    CUSTOM = "__custom__"

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.calendar = self.playbook.business_calendar()
        opts = [(self.tr(f"{self.txt(s.name)}（{s.duration.label(self.lang)}）", f"{self.txt(s.name)} ({s.duration.label(self.lang)})"), s.id)
                for s in self.playbook.slas]
        opts.append((self.tr("自定义时限", "Custom limit"), self.CUSTOM))
        first = "first_proposal" if any(s.id == "first_proposal" for s in self.playbook.slas) else self.playbook.slas[0].id
        self.sla = w.Dropdown(options=opts, value=first, description=self.tr("时限", "Limit"), layout=w.Layout(width="420px"), _dom_classes=("sopcoach-sla-pick",))
        self.start_date = w.Text(value="2025-09-28", description=self.tr("开始日期", "Start date"), continuous_update=False,
                                 placeholder=self.tr("例如 2025-09-28", "e.g. 2025-09-28"), layout=shared_layout(), _dom_classes=("sopcoach-start-date",))
        self.start_time = w.Text(value="10:00", description=self.tr("开始时间", "Start time"), continuous_update=False,
                                 placeholder=self.tr("例如 10:00", "e.g. 10:00"), layout=shared_layout(), _dom_classes=("sopcoach-start-time",))
        self.value = WholeNumberBox(3, 0, 400, self.tr("数量", "Amount"), self.lang, classes=("sopcoach-sla-amount",))
        self.unit = w.Dropdown(options=[(Duration(2, u).label(self.lang).replace("2", "", 1).strip(), u.value) for u in DurationUnit],
                               value="working_days", description=self.tr("单位", "Unit"), layout=shared_layout())
        self.custom = w.HBox([self.value.root, self.unit])  # its own layout: shown and hidden
        for box in (self.sla, self.start_date, self.start_time, self.unit):
            box.observe(self.on_change, names="value")
        self.value.watch(self.on_change)
        legend = "".join(f"<span class='sopcoach-day sopcoach-day-{k}'>{esc(v)}</span>" for k, v in self.kinds().items())
        self.root.children = (self.sla, hbox([self.start_date, self.start_time]), self.custom, self.out,
                              self.html(f"<div>{legend}</div>"), self.msg)
        self.on_change()

    def kinds(self) -> dict[str, str]:
        return {"working": self.tr("工作日", "working day"), "makeup": self.tr("调休上班", "make-up workday"),
                "holiday": self.tr("法定假日", "public holiday"), "weekend": self.tr("周末", "weekend")}

    def duration(self) -> Duration | None:
        """The limit picked, or None when the custom amount is refused (its box says why)."""
        if self.sla.value == self.CUSTOM:
            n = self.value.read()
            return None if n is None else Duration(n, self.unit.value)
        return self.playbook.sla(self.sla.value).duration

    @safe
    def on_change(self, _change: Any = None) -> None:
        self.custom.layout.display = "" if self.sla.value == self.CUSTOM else "none"
        try:
            day = date.fromisoformat(self.start_date.value.strip())
            clock = time.fromisoformat(self.start_time.value.strip())
        except ValueError:
            self.say(self.tr("请按 2025-09-28 和 10:00 的格式输入日期和时间。", "Type the date as 2025-09-28 and the time as 10:00."), "warning")
            return
        duration = self.duration()
        if duration is None:
            self.out.value = ""
            return
        d = deadline(self.calendar, datetime.combine(day, clock), duration)
        self.say("")
        names = WEEKDAYS["en" if self.lang == "en" else "zh-CN"]
        kinds = self.kinds()
        start_kind = kinds[[m.kind for m in d.days][0]]
        due = d.due
        unit_rule = {
            "working_days": self.tr("按工作日计：跳过周末和法定假日，调休上班日照常计算；到期时间为数满的最后一个工作日的同一时刻。",
                                    "Working days: weekends and public holidays are skipped, make-up working days count; due at the same time on the N-th working day."),
            "business_hours": self.tr(f"按工作小时计:只在工作日 {self.calendar.day_start:%H:%M}-{self.calendar.day_end:%H:%M} 内计时。",
                                      f"Business hours: the clock runs only {self.calendar.day_start:%H:%M}-{self.calendar.day_end:%H:%M} on working days."),
            "elapsed_hours": self.tr("按实际小时计：夜间、周末和节假日都计时。", "Elapsed hours: nights, weekends and holidays all count."),
            "calendar_days": self.tr("按自然日计：周末和节假日都计算在内。", "Calendar days: weekends and holidays are included."),
        }[d.duration.unit.value]
        sla = None if self.sla.value == self.CUSTOM else self.playbook.sla(self.sla.value)
        due_label = self.tr("截止时间", "Due")
        window = ""
        if sla is not None and sla.tolerance is not None:  # a scheduled follow-up: due on the day, seed:1.2.1
            tol = sla.tolerance
            first, last = self.calendar.day_window(due.date(), tol.before, tol.after, tol.unit)
            due_label = self.tr("规定日期", "Due on")
            window = (f"<p class='sopcoach-window'>{esc(self.tr('当天完成;公司允许', 'On that day; the company accepts'))} "
                      f"<b>{first:%Y-%m-%d}</b> – <b>{last:%Y-%m-%d}</b>. "
                      f"{esc(self.tr('更早为过早,更晚为逾期。', 'Earlier is too early, later is late.'))} "
                      f"<small>{esc(self.clause_ref(tol.clause))}</small></p>")
        strip = "".join(f"<span class='sopcoach-day sopcoach-day-{m.kind}' title='{esc(kinds[m.kind])}'>"
                        f"{m.day:%m-%d}<br>{names[m.day.weekday()]}</span>" for m in d.days[:62])
        self.out.value = (f"<div class='sopcoach-card'><p>{esc(self.tr('开始', 'Start'))}: {d.start:%Y-%m-%d %H:%M} "
                          f"({names[d.start.weekday()]}, {esc(start_kind)}) · {esc(d.duration.label(self.lang))}</p>"
                          f"<p style='font-size:18px'>{esc(due_label)}: "
                          f"<b class='sopcoach-due'>{due:%Y-%m-%d %H:%M}</b> ({names[due.weekday()]}, {esc(self.calendar.timezone)})</p>{window}"
                          f"<p><small>{esc(unit_rule)} {esc(self.tr('依据', 'Rule'))}: {esc(self.clause_ref('business-calendar'))}</small></p>"
                          f"<div>{strip}</div></div>")


# ---------------------------------------------------------------------------------------- tiers


class TiersTool(Tool):
    """Lesson 5: the tier classifier and the weekly follow-up plan checker."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.revenue = w.Text(value="30000000", description=self.tr("年收入（元）", "Revenue (CNY)"), continuous_update=False,
                              style={"description_width": "initial"}, layout=shared_layout(), _dom_classes=("sopcoach-revenue",))
        self.employees = WholeNumberBox(600, 0, 10_000_000, self.tr("员工人数", "Employees"), self.lang,
                                        classes=("sopcoach-employees",), style={"description_width": "initial"})
        self.key = w.Checkbox(value=True, description=self.tr("重点行业或全公司范围、多模块需求", "Key industry or company-wide, multi-module needs"),
                              indent=False, layout=w.Layout(width="auto"))
        self.result = self.html(classes=("sopcoach-tier-result",))
        for box in (self.revenue, self.key):
            box.observe(self.on_classify, names="value")
        self.employees.watch(self.on_classify)
        self.plan_tier = w.Dropdown(options=[(self.txt(x.name), x.id) for x in self.playbook.tiers],
                                    value=self.playbook.tiers[0].id, description=self.tr("客户等级", "Class"), layout=shared_layout())
        names = WEEKDAYS["en" if self.lang == "en" else "zh-CN"]
        self.days = [WholeNumberBox(1 if i in (0, 3) else 0, 0, 20, names[i], self.lang, classes=(f"sopcoach-day-count-{i}",),
                                    layout=shared_layout(width="130px")) for i in range(7)]
        self.plan_tier.observe(self.on_plan, names="value")
        for day in self.days:
            day.watch(self.on_plan)
        self.plan_out = self.html(classes=("sopcoach-plan-result",))
        self.root.children = (self.html(f"<h4>{esc(self.tr('客户分类', 'Classify a customer'))}</h4>"),
                              hbox([self.revenue, self.employees.root]), self.key, self.result,
                              self.html(f"<h4>{esc(self.tr('一周跟进计划', 'A week of follow-ups'))}</h4>"), self.plan_tier,
                              hbox([d.root for d in self.days[:4]]), hbox([d.root for d in self.days[4:]]), self.plan_out, self.msg)
        self.on_classify()
        self.on_plan()

    @safe
    def on_classify(self, _change: Any = None) -> None:
        revenue = self.number(self.revenue, self.tr("年收入", "the revenue"), low=0)
        employees = self.employees.read()
        if revenue is None or employees is None:
            self.result.value = ""
            return
        try:
            dec = classify_tier(self.playbook, revenue, employees, self.key.value)
        except ToolInputError as exc:
            self.refuse(exc)
            return
        self.say("")
        tier = dec.tier
        why = []
        if dec.by_revenue and tier.min_annual_revenue:
            why.append(self.tr(f"年收入不低于 {_money(tier.min_annual_revenue)} 元", f"revenue of at least {_money(tier.min_annual_revenue)} CNY"))
        if dec.by_employees and tier.min_employees:
            why.append(self.tr(f"员工不少于 {tier.min_employees} 人", f"at least {tier.min_employees} employees"))
        held = (self.tr(f"规模已达{self.txt(dec.held_back.name)}门槛,但不属重点行业、也没有全公司范围需求,因此降一级。",
                        f"The size reaches {self.txt(dec.held_back.name)}, but without a key industry or company-wide needs the customer is one class lower.")
                if dec.held_back is not None else "")
        self.result.value = (f"<div class='sopcoach-card'><p style='font-size:18px'><b class='sopcoach-tier' data-tier='{tier.id}'>"
                             f"{esc(self.txt(tier.name))}</b></p><p>{esc('; '.join(why))} {esc(held)}</p>"
                             f"<p><small>{esc(self.txt(tier.criteria))}</small></p>"
                             f"<p>{esc(self.tr(f'每周至少跟进 {tier.min_weekly_follow_ups} 次', f'At least {tier.min_weekly_follow_ups} follow-ups a week'))}"
                             f" ({esc(self.clause_ref(tier.cadence_clause))})</p></div>")
        if self.plan_tier.value != tier.id:
            self.plan_tier.value = tier.id

    @safe
    def on_plan(self, _change: Any = None) -> None:
        per_day = [d.read() for d in self.days]
        whole = [n for n in per_day if n is not None]
        if len(whole) < len(per_day):
            self.plan_out.value = ""
            return
        c = check_follow_up_plan(self.playbook, self.plan_tier.value, whole)
        if c.ok:
            text = self.tr(f"计划共 {c.total} 次,达到{self.txt(c.tier.name)}每周至少 {c.minimum} 次的要求。",
                           f"The plan has {c.total} follow-ups and meets the minimum of {c.minimum} a week for {self.txt(c.tier.name)}.")
            html = f"<p class='sopcoach-ok'>✓ {esc(text)}</p>"
        else:
            text = self.tr(f"警告:计划只有 {c.total} 次,低于{self.txt(c.tier.name)}每周至少 {c.minimum} 次的要求,还差 {c.shortfall} 次。",
                           f"Warning: the plan has only {c.total} follow-ups, below the minimum of {c.minimum} a week for "
                           f"{self.txt(c.tier.name)}; {c.shortfall} more needed.")
            html = f"<p class='sopcoach-warn'>⚠ {esc(text)}</p>"
        self.plan_out.value = html + f"<p><small>{esc(self.clause_ref(c.tier.cadence_clause))}</small></p>"


# ------------------------------------------------------------------------------ confidentiality


class ConfidentialityTool(Tool):
    """Lesson 6: scenario exercises, one per confidentiality rule: allowed or forbidden?"""

    def __init__(self, *args: Any):
        super().__init__(*args)
        rows: list[w.Widget] = []
        self.feedback: dict[str, w.HTML] = {}
        for i, rule in enumerate(self.playbook.confidentiality, 1):
            yes = w.Button(description=self.tr("允许", "Allowed"), button_style="success", layout=shared_layout(width="110px"))
            no = w.Button(description=self.tr("禁止", "Forbidden"), button_style="danger", layout=shared_layout(width="110px"))
            fb = self.html()
            self.feedback[rule.id] = fb
            yes.on_click(self._handler(rule.id, True))
            no.on_click(self._handler(rule.id, False))
            box = vbox([self.html(f"<b>{i}.</b> {esc(self.txt(rule.text))}"), hbox([yes, no]), fb], classes=("sopcoach-card", f"sopcoach-scenario-{rule.id}"))
            rows.append(box)
        self.root.children = (*rows, self.msg)

    def _handler(self, rule_id: str, allowed: bool) -> Callable:
        return lambda _b: self.on_judge(rule_id, allowed)

    @safe
    def on_judge(self, rule_id: str, allowed: bool) -> None:
        right, rule = judge_use(self.playbook, rule_id, allowed)
        verdict = self.tr("允许", "allowed") if rule.allowed else self.tr("禁止", "forbidden")
        head = (f"<span class='sopcoach-right'>✓ {esc(self.tr('判断正确', 'Right'))}</span>" if right
                else f"<span class='sopcoach-wrong'>✗ {esc(self.tr('判断错误', 'Not right'))}</span>")
        self.feedback[rule_id].value = (f"{head}: {esc(self.tr(f'这种做法是{verdict}的。', f'this use is {verdict}.'))} "
                                        f"<small>{esc(self.txt(self.playbook.clause(rule.clause).title))}</small>"
                                        f"{self.source_tag('confidentiality', rule.id)}")


# ------------------------------------------------------------------------------------ templates


class TemplatesTool(Tool):
    """Lesson 7: the standard tools per stage, shown from the playbook, and when each is used."""

    SEVERAL = "__several__"

    def __init__(self, *args: Any):
        super().__init__(*args)
        opts = [(f"{i}. {self.txt(s.name)}", s.id) for i, s in enumerate(self.playbook.stages, 1)]
        opts.append((self.tr("多个阶段通用", "Used at several stages"), self.SEVERAL))
        self.stage = w.Dropdown(options=opts, value=self.playbook.stages[0].id, description=self.tr("阶段", "Stage"), layout=shared_layout(), _dom_classes=("sopcoach-template-stage",))
        self.stage.observe(self.on_stage, names="value")
        self.root.children = (self.stage, self.out, self.msg)
        self.on_stage()

    @safe
    def on_stage(self, _change: Any = None) -> None:
        stage = None if self.stage.value == self.SEVERAL else self.stage.value
        cards = []
        for tpl in templates_for_stage(self.playbook, stage):
            body = f"<blockquote class='sopcoach-template-body'>{esc(self.txt(tpl.body))}</blockquote>" if tpl.body else ""
            items = ("<ol>" + "".join(f"<li>{esc(self.txt(x))}</li>" for x in tpl.items) + "</ol>") if tpl.items else ""
            review = (f"<p><small>{esc(self.tr('审核周期', 'Reviewed every'))}: {esc(tpl.review_every.to_duration().label(self.lang))}</small></p>"
                      if tpl.review_every else "")
            cards.append(f"<div class='sopcoach-card sopcoach-template-{tpl.id}'><b>{esc(self.txt(tpl.name))}</b>"
                         f"<p><i>{esc(self.tr('何时使用', 'When'))}: {esc(self.txt(tpl.when))}</i></p>{body}{items}{review}"
                         f"<p><small>{esc(self.txt(self.playbook.clause(tpl.clause).title))}</small>"
                         f"{self.source_tag('templates', tpl.id)}</p></div>")
        if not cards:
            cards.append(f"<p>{esc(self.tr('这个阶段没有专用模板。', 'No template is specific to this stage.'))}</p>")
        self.out.value = "".join(cards)


# ------------------------------------------------------------------------------------- CRM, KPI


class CrmKpiTool(Tool):
    """Lesson 8: the CRM fields of each stage and a live funnel with its conversion rates."""

    LABELS = {"leads_assigned": ("分配的线索", "Leads assigned"), "needs_confirmed": ("需求确认", "Needs confirmed"),
              "quotes_sent": ("发出报价", "Quotes sent"), "quotes_accepted": ("报价被接受", "Quotes accepted"),
              "contracts_signed": ("签订合同", "Contracts signed")}
    DEFAULTS = {"leads_assigned": 200, "needs_confirmed": 60, "quotes_sent": 40, "quotes_accepted": 12,
                "contracts_signed": 10}

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.stage = w.Dropdown(options=[(f"{i}. {self.txt(s.name)}", s.id) for i, s in enumerate(self.playbook.stages, 1)],
                                value=self.playbook.stages[0].id, description=self.tr("阶段", "Stage"), layout=shared_layout())
        self.field_list = self.html()
        self.stage.observe(self.on_stage, names="value")
        self.counts = {}
        for name in FUNNEL_COUNTS:
            box = WholeNumberBox(self.DEFAULTS[name], 0, 1_000_000, self.tr(*self.LABELS[name]), self.lang,
                                 classes=(f"sopcoach-count-{name}",), layout=shared_layout(width="260px"),
                                 style={"description_width": "120px"})
            box.watch(self.on_funnel)
            self.counts[name] = box
        self.lost = WholeNumberBox(20, 0, 1_000_000, self.tr("丢单数", "Deals lost"), self.lang,
                                   classes=("sopcoach-count-lost",), layout=shared_layout(width="260px"),
                                   style={"description_width": "120px"})
        self.lost.watch(self.on_funnel)
        self.funnel_out = self.html(classes=("sopcoach-funnel",))
        self.root.children = (self.html(f"<h4>{esc(self.tr('每个阶段在CRM中记录什么', 'What to record in the CRM at each stage'))}</h4>"),
                              self.stage, self.field_list,
                              self.html(f"<h4>{esc(self.tr('示例漏斗(修改数字试试)', 'Example funnel (change the numbers)'))}</h4>"),
                              hbox([vbox([b.root for b in self.counts.values()] + [self.lost.root]), self.funnel_out]), self.msg)
        self.on_stage()
        self.on_funnel()

    @safe
    def on_stage(self, _change: Any = None) -> None:
        s = next(x for x in self.playbook.stages if x.id == self.stage.value)
        steps = [st for st in self.playbook.steps if set(st.required_fields) & set(s.crm_fields)]
        step_txt = "".join(f"<li>{esc(self.tr(f'第 {st.number} 步 {self.txt(st.name)}：', f'Step {st.number} {self.txt(st.name)}: '))}"
                           f"{esc(self.fields(st.required_fields))}</li>" for st in steps)
        self.field_list.value = (f"<div class='sopcoach-card'>{esc(self.role_name(s.responsible_role))}{esc(self.tr('记录：', ' records: '))}"
                             f"<span class='sopcoach-crm-fields'>{esc(self.fields(s.crm_fields))}</span>"
                             + (f"<ul>{step_txt}</ul>" if step_txt else "") + "</div>")

    @safe
    def on_funnel(self, _change: Any = None) -> None:
        counts = {k: b.read() for k, b in self.counts.items()}
        lost = self.lost.read()
        if lost is None or None in counts.values():
            self.funnel_out.value = ""
            return
        whole = {k: v for k, v in counts.items() if v is not None}
        try:
            f = funnel(self.playbook, whole, lost)
        except ToolInputError:
            self.say(self.tr("漏斗的每一步不能多于上一步。", "Each step of the funnel must not exceed the step before it."), "warning")
            return
        self.say("")
        top = max(whole["leads_assigned"], 1)
        bars = "".join(f"<div>{esc(self.tr(*self.LABELS[n]))}: <span class='sopcoach-bar' style='width:{int(200 * v / top)}px'></span> {v}</div>"
                       for n, v in whole.items())
        rows = []
        for s in f.steps:
            rate = f"{floor_percent(s.rate)}%" if s.rate is not None else "—"
            name = self.txt(s.kpi.name) if s.kpi else f"{self.tr(*self.LABELS[s.source])} → {self.tr(*self.LABELS[s.target])}"
            target = f"{floor_percent(Fraction(s.kpi.target), 0)}%" if s.kpi is not None and s.kpi.target is not None else ""
            weak = s is f.weakest
            cls = "sopcoach-warn" if weak else ("sopcoach-todo" if s.below_target else "")
            flag = f" ⚠ {self.tr('薄弱环节', 'weak stage')}" if weak else ""
            rows.append(Row([name, Cell(rate, f"sopcoach-rate-{s.kpi.id if s.kpi else s.source}"), target, Cell(flag, cls)],
                            "sopcoach-weak" if weak else ""))
        win = f"{floor_percent(f.win_rate)}%" if f.win_rate is not None else "—"
        table = render(Table([self.tr("转化", "Conversion"), self.tr("比率", "Rate"), self.tr("目标", "Target"), ""], rows,
                           css_class="sopcoach-table"))
        self.funnel_out.value = (f"<div class='sopcoach-card'>{bars}{table}"
                                 f"<p>{esc(self.tr('赢单率', 'Win rate'))}: <b class='sopcoach-win-rate'>{win}</b></p>"
                                 f"<p><small>{esc(self.clause_ref('kpi-formulas'))}</small></p></div>")


# ---------------------------------------------------------------------------------- improvement


class ImprovementTool(Tool):
    """Lesson 9: the exam's rules from the blueprint, and the falling-trend check of the review."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        bp = self.inst.blueprint
        exam = self.tr(f"认证考试:{bp.question_count} 题,{bp.time_limit_minutes} 分钟,得分不低于 {floor_percent(bp.pass_fraction, 0)}% 为通过,最多 {bp.max_attempts} 次。",
                       f"Certification exam: {bp.question_count} questions, {bp.time_limit_minutes} minutes, pass with at least "
                       f"{floor_percent(bp.pass_fraction, 0)}%, at most {bp.max_attempts} attempts.")
        if bp.require_lessons:
            exam += self.tr("完成全部课程后才能开始考试。", " The exam opens when every lesson is complete.")
        kpis = [k for k in self.playbook.kpis if k.unit == "fraction"]
        self.kpi = w.Dropdown(options=[(self.txt(k.name), k.id) for k in kpis], value=kpis[0].id,
                              description="KPI", layout=shared_layout())
        self.series = w.Text(value="30, 28, 25, 21", description=self.tr("近几个月 %", "Monthly %"), continuous_update=False, layout=shared_layout(), _dom_classes=("sopcoach-series",))
        for box in (self.kpi, self.series):
            box.observe(self.on_change, names="value")
        self.root.children = (self.html(f"<div class='sopcoach-card sopcoach-exam-rules'>{esc(exam)}</div>"),
                              self.html(f"<h4>{esc(self.tr('月度复盘:趋势检查', 'Monthly review: trend check'))}</h4>"),
                              self.kpi, self.series, self.out, self.msg)
        self.on_change()

    @safe
    def on_change(self, _change: Any = None) -> None:
        try:
            values = parse_series(self.series.value)
            verdict = trend(values)
        except ToolInputError:
            self.out.value = ""
            self.say(self.tr(f"请输入用逗号分隔的月度数字，例如 30, 28, 25, 21（收到“{self.series.value.strip()}”）。",
                             f"Type the monthly values as numbers separated by commas, e.g. 30, 28, 25, 21 (got {self.series.value.strip()})."),
                     "warning")
            return
        self.say("")
        kpi = next(k for k in self.playbook.kpis if k.id == self.kpi.value)
        stage = KPI_STAGE.get(kpi.id)
        where = self.stage_name(stage) if stage else self.tr("整个销售流程", "the whole process")
        text = {"falling": self.tr(f"连续下降:在月度复盘会上分析“{where}”环节的成败案例,找出原因并更新规程。",
                                   f"Falling: at the monthly review, analyse wins and losses at the \"{where}\" stage, find the cause and update the SOP."),
                "rising": self.tr("持续上升：总结做法，在复盘会上分享。", "Rising: write down what works and share it at the review."),
                "steady": self.tr("没有持续下降的趋势：继续按月监控。", "No steady fall: keep monitoring every month.")}[verdict]
        cls = "sopcoach-warn" if verdict == "falling" else "sopcoach-ok"
        self.out.value = (f"<div class='sopcoach-card'><p class='{cls} sopcoach-trend' data-trend='{verdict}'>{esc(text)}</p>"
                          f"<p><small>{esc(self.clause_ref('data-driven-adjustment'))} · {esc(self.clause_ref('monthly-review'))}</small></p></div>")


# ------------------------------------------------------------------------------------ catalogue


class CatalogueTool(Tool):
    """Lesson 10: the product catalogue (what fits whom, list price per unit) and a quote line that
    prices a product from the list price and says who approves it."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        products = self.playbook.products
        rows = [[Cell(self.txt(p.name), heads_row=True), self.txt(p.description),
                 self._price(p.list_price), self.txt(p.unit)] for p in products]
        table = render(Table([self.tr("产品", "Product"), self.tr("适用场景", "What it is, when it fits"),
                              self.tr("目录价", "List price"), self.tr("计价单位", "Unit")], rows,
                             css_class="sopcoach-table sopcoach-catalogue"))
        # on a phone the catalogue scrolls sideways in its own box: a named region the keyboard can scroll
        self.table = self.html(f"<div class='sopcoach-scrollbox' role='region' tabindex='0' "
                               f"aria-label='{esc(self.tr('产品目录', 'Product catalogue'))}'>{table}</div>")
        limited = [a.role for a in self.playbook.authority if a.approver is not None]
        self.product = w.Dropdown(options=[(self.txt(p.name), p.id) for p in products],
                                  value=products[0].id if products else None, description=self.tr("产品", "Product"),
                                  layout=shared_layout(), _dom_classes=("sopcoach-quote-product",))
        self.quantity = WholeNumberBox(30, 1, 100_000, self.tr("数量", "Quantity"), self.lang, classes=("sopcoach-quote-quantity",))
        self.discount = w.Text(value="0", description=self.tr("折扣 %", "Discount %"), continuous_update=False,
                               layout=shared_layout(), _dom_classes=("sopcoach-quote-discount",))
        self.role = w.Dropdown(options=[(self.role_name(r), r) for r in limited], value=limited[0] if limited else None,
                               description=self.tr("报价人", "Quoted by"), layout=shared_layout())
        for box in (self.product, self.discount, self.role):
            box.observe(self.on_change, names="value")
        self.quantity.watch(self.on_change)
        self.root.children = (self.table, self.html(f"<h4>{esc(self.tr('报价单上的一行', 'A line of the quote sheet'))}</h4>"),
                              hbox([self.product, self.role]), hbox([self.quantity.root, self.discount]), self.out, self.msg)
        self.on_change()

    @safe
    def _price(self, amount: Decimal) -> str:
        """A list price as the page reads it: ``1,200 元`` on a Chinese page (for CNY), ``1,200 CNY`` in English."""
        cur = self.playbook.sop.currency
        return self.tr(f"{_money(amount)} 元", f"{_money(amount)} {cur}") if cur == "CNY" else f"{_money(amount)} {cur}"

    def on_change(self, _change: Any = None) -> None:
        quantity = self.quantity.read()
        if quantity is None or self.product.value is None:
            self.out.value = ""
            return
        if not self.discount.value.strip():
            self.discount.value = "0"  # an emptied discount box means no discount (this handler runs again)
            return
        pct = self.number(self.discount, self.tr("折扣", "the discount"), low=0, high=100, percent=True)
        if pct is None:
            self.out.value = ""
            return
        try:
            line = quote_line(self.playbook, self.product.value, quantity, pct / 100, self.role.value)
        except ToolInputError as exc:
            self.refuse(exc)
            return
        self.say("")
        cur = self.playbook.sop.currency
        p = line.product
        a = line.approval
        sums = self.tr(f"{quantity} × {_money(p.list_price)} {cur}({self.txt(p.unit)})= 目录价小计 {_money(line.list_total)} {cur};"
                       f"折扣 {_pct(line.discount)} 后报价金额 {_money(line.net_total)} {cur}。",
                       f"{quantity} × {_money(p.list_price)} {cur} ({self.txt(p.unit)}) = {_money(line.list_total)} {cur} at list price; "
                       f"after {_pct(line.discount)} off, the quote amount is {_money(line.net_total)} {cur}.")
        if a.needs_approval:
            who = self.tr(f"需要审批:由{self.role_name(a.approver)}审批({' → '.join(self.role_name(r) for r in a.chain)})。",
                          f"Approval needed: the {self.role_name(a.approver).lower()} approves ({' → '.join(self.role_name(r) for r in a.chain)}).")
            verdict = f"<p class='sopcoach-warn sopcoach-approver' data-approver='{a.approver}'>{esc(who)}</p>"
        else:
            who = self.tr("无需审批：报价人可以直接发出报价。", "No approval needed: the quote may be sent as it is.")
            verdict = f"<p class='sopcoach-ok sopcoach-approver' data-approver=''>{esc(who)}</p>"
        self.out.value = (f"<div class='sopcoach-card'><p class='sopcoach-quote-total' data-net='{line.net_total:f}'>{esc(sums)}</p>"
                          f"{verdict}<p><small>{esc(self.clause_ref('product-catalogue'))} · {esc(self.clause_ref(a.clause.id))}</small></p></div>")


TOOLS = {"goals": GoalsTool, "process": ProcessTool, "approval": ApprovalTool, "sla": SlaTool, "tiers": TiersTool,
         "confidentiality": ConfidentialityTool, "templates": TemplatesTool, "crm_kpis": CrmKpiTool,
         "improvement": ImprovementTool, "catalogue": CatalogueTool}


def build_tool(inst: Any, lesson: Any, lang: str, link: Callable[[str, str], str]) -> Tool:
    """Return the tool of ``lesson`` (its ``tool`` field picks the class)."""
    return TOOLS[lesson.tool](inst, lesson, lang, link)
