"""The certification exam view of the learner app (``/learn/exam``).

Pages: instructions -> one question a page (progress, timer, back/next, flag) -> review
-> confirm -> result. Each answer is saved through :class:`sopcoach.certification.exam.ExamService` the moment it
is given; every button handler asks the service, which re-checks the attempt's state in the
database, so a forged or repeated widget message cannot answer late, submit twice or change a
score. No widget holds a key or a correctness flag before the attempt is scored.
"""
from __future__ import annotations

import asyncio
import dataclasses
import enum
from datetime import datetime
from fractions import Fraction
from typing import Any
from collections.abc import Callable, Sequence

import ipywidgets as w

from ..certification.certificates import certificate_pdf, learner_certificate
from ..certification.exam import AttemptState, AttemptSummary, Eligibility, ExamService, QuestionView, ReviewItem
from ..certification.scoring import ScoreReport, floor_percent, points_text
from ..config import Installation
from ..errors import (AlreadyCertified, AttemptClosed, AttemptExpired, AttemptLimitReached, AuthError, ExamError, InvalidResponse,
                      LessonsIncomplete, RecordsError, StaleAttempt, WaitRequired)
from ..i18n import current_lang, local_day, local_time, shown, t, zone_name
from ..records.models import utcnow
from ..tables import Cell, Table, render
from ._common import (CheckboxStyle, DescriptionStyle, ProgressStyle, ToggleButtonStyle, button, database_refusal,
                      download_link, esc, hbox, html_widget, log, safe, shared_layout, shared_style, vbox)
from .navigation import Navigator

CSS = """
<style>
.sopcoach-app { max-width: 860px; font-size: 15px; font-family: "Noto Sans CJK SC", "Noto Sans SC",
  "PingFang SC", "Microsoft YaHei", sans-serif; }
.sopcoach-app h2 { margin: 4px 0 8px 0; }
.sopcoach-scenario { background: #f3f6fa; border-left: 4px solid #4a7bb7; padding: 8px 12px; margin: 6px 0; }
.sopcoach-pass { color: #1b7f3b; font-weight: bold; font-size: 28px; }
.sopcoach-fail { color: #b3261e; font-weight: bold; font-size: 28px; }
.sopcoach-msg-warning { color: #8a5300; } .sopcoach-msg-danger { color: #b3261e; }
.sopcoach-msg-info { color: #2b5c94; }
.sopcoach-table td, .sopcoach-table th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
</style>
"""


class Page(str, enum.Enum):
    SIGN_IN = "sign_in"
    INSTRUCTIONS = "instructions"
    QUESTION = "question"
    REVIEW = "review"
    CONFIRM = "confirm"
    RESULT = "result"
    PAST = "past"  # the review of one closed attempt


def refusal_message(exc: Exception, lang: str) -> str:
    """Return the learner-facing text for a refused action (sign-in, answer, submit, start)."""
    if isinstance(exc, LessonsIncomplete):
        return t("请先完成全部课程再开始考试。", "Complete every lesson before you start the exam.", lang)
    if isinstance(exc, AttemptExpired):
        return t("考试时间已到，截止前保存的答案已计分。", "Time is up; the answers saved before the deadline were scored.", lang)
    if isinstance(exc, AttemptClosed):
        return t("本次考试已提交，不能再修改答案。", "This attempt is submitted; answers can no longer change.", lang)
    if isinstance(exc, AlreadyCertified):
        return t("您已通过认证，不能再次参加认证考试。", "You are certified already; the exam cannot be taken again.", lang)
    if isinstance(exc, AttemptLimitReached):
        return t("考试次数已用完，请联系培训负责人。", "You have used every attempt; please contact your trainer.", lang)
    if isinstance(exc, WaitRequired):
        hours = exc.seconds_left / 3600
        return t(f"距下次考试还需等待约 {hours:.1f} 小时。", f"Please wait about {hours:.1f} h before the next attempt.", lang)
    if isinstance(exc, StaleAttempt):
        return t("此考试已在另一个窗口中更新，本页已显示最新的答案，请确认后再作答。",
                 "This exam was changed in another window; this page now shows the latest answers. Check them, then go on.",
                 lang)
    if isinstance(exc, InvalidResponse):
        return t("答案格式不正确，请检查后重新输入（数值题请输入数字，例如 12.5）。",
                 "That answer is not valid; please check it (a number for numeric questions, e.g. 12.5).", lang)
    if isinstance(exc, RecordsError):  # the details are in the server log, never in the page
        return database_refusal(exc, lang)
    if isinstance(exc, AuthError):
        text = str(exc)
        if text.startswith("too many"):
            secs = "".join(ch for ch in text if ch.isdigit()) or "?"
            return t(f"登录失败次数过多，请 {secs} 秒后再试。", f"Too many failed sign-ins; try again in {secs} s.", lang)
        return t("员工编号或访问码不正确。", "Unknown employee id or wrong access code.", lang)
    return t("操作未完成，请刷新页面后再试。", "That did not work; please reload the page and try again.", lang)


def attempts_text(el: Eligibility, max_attempts: int, lang: str) -> str:
    """Return "attempts used 1, attempts left 2 (of 3)" in ``lang`` (counts from :meth:`ExamService.eligibility`)."""
    return t(f"已考 {el.attempts_used} 次，剩余 {el.attempts_left} 次（共 {max_attempts} 次）",
             f"Attempts used {el.attempts_used}, attempts left {el.attempts_left} (of {max_attempts})", lang)


def next_attempt_text(el: Eligibility, timezone: str, lang: str) -> tuple[str, str]:
    """Say when the learner's next attempt opens: ``(state, text)``.

    ``state`` is ``"used_up"`` (no attempts left: contact the trainer), ``"waiting"`` (the text
    names the day and time, ``YYYY-MM-DD HH:MM`` in the company's ``timezone``, when the waiting
    time ends, :attr:`Eligibility.opens_at`) or ``"open"`` (an attempt may start or resume
    now). The rule is the service's (:class:`Eligibility`, blueprint ``max_attempts`` and
    ``wait_between_attempts_hours``); this only words it. Callers show a learner who passed the
    certificate instead.
    """
    if el.open_attempt is None and el.attempts_left <= 0:
        return "used_up", t("考试次数已用完，请联系培训负责人。", "No attempts left — contact your trainer.", lang)
    if el.open_attempt is None and el.opens_at is not None:
        opens = local_time(el.opens_at, timezone)
        return "waiting", t(f"下次考试开放时间：{opens}（{zone_name(timezone, lang)}）。",
                            f"Your next attempt opens on {opens} ({zone_name(timezone, lang)}).", lang)
    return "open", t("现在可以开始考试。", "You may start the exam now.", lang)


class ExamApp:
    """The exam app's widgets and navigation; build it with :func:`exam_app`.

    Parameters
    ----------
    inst : Installation
        Loaded content and records store.
    lang : str, optional
        ``zh-CN`` or ``en`` (default from ``SOPCOACH_LANG``).
    clock : callable, optional
        Aware-UTC clock (tests use a fake one).
    learner_id : str, optional
        An already authenticated learner (JupyterHub); skips the sign-in page.
    start_timer : bool
        Run the once-a-second countdown (needs a running event loop, as in a Voila kernel).
    lesson_gate : callable, optional
        ``lesson_gate(learner_id) -> lesson ids not complete``: while it is not empty the
        instructions name the missing lessons and offer no start button, and the service refuses
        a new attempt (:func:`exam_app` passes it when the blueprint sets ``require_lessons``).
    """

    def __init__(self, inst: Installation, lang: str | None = None, clock: Callable[[], datetime] | None = None,
                 learner_id: str | None = None, start_timer: bool = True,
                 lesson_gate: Callable[[str], list[str]] | None = None, nav: Navigator | None = None):
        self.inst = inst
        self.nav = nav or Navigator(lessons=inst.playbook.lessons)
        self.lang = lang or current_lang()
        self.clock = clock or utcnow
        self.service: ExamService = inst.exam_service(self.clock, lesson_gate=lesson_gate)
        self.bp = inst.blueprint
        self.learner_id: str | None = None
        self.learner_name = ""
        self.attempt_id: int | None = None
        self.index = 0
        self.page = Page.SIGN_IN
        self.report: ScoreReport | None = None
        self._busy = False
        self._timer_task: asyncio.Task | None = None
        self._want_timer = start_timer
        self._answer_widget: w.Widget | None = None
        self._answer_getter: Callable[[], Any] | None = None
        #: The token of the attempt's answers this page shows (ExamService.answers_version).
        self._seen: str | None = None
        self._status_level = ""

        self.title = self.html(CSS + f"<h2>{esc(shown(self.bp.title, self.lang))}</h2>")
        self.status = self.html()
        self.timer = self.html()
        self.body = vbox()
        self.root = vbox([self.title, self.timer, self.body, self.status], classes=("sopcoach-app",))

        # question-page widgets (reused)
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=shared_layout(width="60%"),
                                      style=shared_style(ProgressStyle))
        self.progress_label = self.html()
        self.scenario = self.html()
        self.question_text = self.html()
        self.answer_box = vbox()
        self.back_button = button(self.tr("上一题", "Back"), icon="arrow-left")
        self.next_button = button(self.tr("下一题", "Next"), icon="arrow-right")
        self.flag_button = w.ToggleButton(description=self.tr("标记待复查", "Flag for review"), icon="flag",
                                          tooltip=self.tr("标记待复查", "Flag for review"),
                                          layout=shared_layout(), style=shared_style(ToggleButtonStyle))
        self.review_button = button(self.tr("检查并提交", "Review and submit"), button_style="info")
        # The question page keeps its frame from one question to the next: only the answer control
        # is new, so moving to the next question re-draws one control, not the page.
        self.question_head = hbox([self.progress, self.progress_label])
        self.question_nav = hbox([self.back_button, self.next_button, self.flag_button, self.review_button])
        self.back_button.on_click(self.on_back)
        self.next_button.on_click(self.on_next)
        self.flag_button.observe(self.on_flag, names="value")
        self.review_button.on_click(self.on_review)
        self.submit_button = button(self.tr("提交试卷", "Submit"), button_style="warning")
        self.submit_button.on_click(self.on_submit_request)
        self.confirm_button = button(self.tr("确认提交", "Yes, submit"), button_style="danger")
        self.confirm_button.on_click(self.on_confirm)
        self.cancel_button = button(self.tr("返回作答", "Back to the questions"))
        self.cancel_button.on_click(self.on_cancel)
        self.start_button = button(self.tr("开始考试", "Start the exam"), button_style="primary")
        self.start_button.on_click(self.on_start)
        self._flag_sync = False

        if learner_id:
            row = inst.records.learner(learner_id)
            self._signed_in(learner_id, row.name if row is not None else learner_id)
        else:
            self.show_sign_in()

    # -- helpers ------------------------------------------------------------------------------------
    def tr(self, zh: str, en: str) -> str:
        return shown(t(zh, en, self.lang), self.lang)

    def html(self, value: str = "", classes: Sequence[str] = ()) -> Any:
        """Return an HTML widget of this page (full-width punctuation on a Chinese page)."""
        return html_widget(value, classes, lang=self.lang)

    def say(self, text: str, level: str = "info") -> None:
        """Show a short message under the page (never a traceback)."""
        self.status.value = f'<div class="sopcoach-msg-{level}">{esc(text)}</div>' if text else ""
        self._status_level = level if text else ""

    def _clear_note(self) -> None:
        """Clear an information line ("Saved") that belongs to the question page; keep a warning."""
        if self._status_level == "info":
            self.say("")

    def _refuse(self, exc: Exception) -> None:
        log.info("refused: %s (learner %s, attempt %s)", exc, self.learner_id, self.attempt_id)
        self.say(refusal_message(exc, self.lang), "warning")

    def _set(self, page: Page, *children: w.Widget) -> None:
        self.page = page
        self.body.children = tuple(children)

    # -- nobody signed in ----------------------------------------------------------------------------
    def show_sign_in(self) -> None:
        """Say that nobody is signed in; signing in happens at the server's door, not in a page."""
        self._set(Page.SIGN_IN, self.html(self.tr("<p class='sopcoach-signed-out'>请先登录。</p>",
                                               "<p class='sopcoach-signed-out'>Please sign in first.</p>")))

    def _signed_in(self, learner_id: str, name: str) -> None:
        self.learner_id, self.learner_name = learner_id, name
        self.say("")
        self.show_instructions()

    def _certified_html(self) -> str:
        """Say whether the learner's certificate is current, and where to recertify when it is not."""
        cert = learner_certificate(self.inst.records, self._learner(), self.clock())
        if cert is None:
            return self.tr("<p><b>您已通过认证。</b></p>", "<p><b>You are certified.</b></p>")
        until = local_day(cert.expires_at, self.inst.playbook.calendar.timezone)
        if cert.current:
            return (self.tr(f"<p class='sopcoach-certificate'><b>您已通过认证。</b>证书 <b class='sopcoach-cert-code'>{esc(cert.code)}</b>，有效期至 {until}。</p>",
                            f"<p class='sopcoach-certificate'><b>You are certified.</b> Certificate <b class='sopcoach-cert-code'>{esc(cert.code)}</b>, valid until {until}.</p>")
                    + self._certificate_pdf_link(cert.code))
        why = {"expired": self.tr(f"已于 {until} 过期", f"expired on {until}"),
               "recertify": self.tr("所涵盖的SOP条款已修改", "SOP clauses it covers have changed"),
               "revoked": self.tr("已被撤销，请联系培训师", "has been revoked; please contact your trainer")
               }.get(cert.status, self.tr("不再有效", "is no longer current"))
        link = "" if cert.status == "revoked" else (
            " " + self.nav.link('recertification.ipynb', self.tr('参加复认证考试', 'Take the recertification exam'),
                                'sopcoach-recert-link', self.lang))
        return self.tr(f"<p class='sopcoach-cert-lapsed'><b>您的证书 {esc(cert.code)} {why}。</b>{link}</p>",
                       f"<p class='sopcoach-cert-lapsed'><b>Your certificate {esc(cert.code)} {why}.</b>{link}</p>")

    def _certificate_pdf_link(self, code: str) -> str:
        """Return a paragraph with the certificate's PDF as a download link (the PDF is inside the link).

        A PDF that cannot be drawn is logged on the server and the paragraph says so; the result
        and the code stay on the page.
        """
        try:
            data = certificate_pdf(self.inst.records, code, self.bp.title, self.inst.playbook.sop.name,
                                   self.inst.playbook.calendar.timezone, self.clock(), self.inst.settings.public_url)
        except Exception:
            log.exception("certificate PDF %s failed", code)
            return f"<p class='sopcoach-msg-warning'>{esc(self.tr('证书 PDF 暂时无法生成，请稍后再打开本页。', 'The certificate PDF could not be made; please open this page again later.'))}</p>"
        link = download_link(data, f"certificate-{code}.pdf", self.tr("下载证书 PDF", "Download the certificate (PDF)"),
                             "application/pdf")
        return f"<p class='sopcoach-cert-pdf'>{link}</p>"

    def _next_attempt_html(self, el: Eligibility) -> str:
        """Return the attempts used and left and when the next attempt opens, as paragraphs."""
        state, text = next_attempt_text(el, self.inst.playbook.calendar.timezone, self.lang)
        level = {"used_up": "danger", "waiting": "warning"}.get(state, "info")
        return (f"<p class='sopcoach-attempts-left'>{esc(attempts_text(el, self.bp.max_attempts, self.lang))}</p>"
                f"<p class='sopcoach-next-attempt sopcoach-msg-{level}'>{esc(text)}</p>")

    def _href(self, notebook: str) -> str:
        return self.nav.href(notebook, self.lang)

    def _home_link(self) -> str:
        return (f"<p class='sopcoach-nav'>{self.nav.link('home.ipynb', self.tr('← 学习中心', '← Learning centre'), 'sopcoach-home-link', self.lang)}</p>")

    # -- instructions ---------------------------------------------------------------------------------
    def show_instructions(self) -> None:
        el = self.service.eligibility(self._learner())
        bp = self.bp
        pct = floor_percent(bp.pass_fraction, 0)
        rows = [
            (self.tr("题目数量", "Questions"), str(bp.question_count)),
            (self.tr("考试时间", "Time limit"), self.tr(f"{bp.time_limit_minutes} 分钟", f"{bp.time_limit_minutes} minutes")),
            (self.tr("通过分数", "Pass mark"), f"{pct}%"),
            (self.tr("考试次数", "Attempts"), self.tr(f"每人最多 {bp.max_attempts} 次，剩余 {el.attempts_left} 次",
                                                    f"at most {bp.max_attempts}, {el.attempts_left} left")),
            (self.tr("两次考试间隔", "Between attempts"),
             self.tr(f"至少 {bp.wait_between_attempts_hours.normalize():f} 小时", f"at least {bp.wait_between_attempts_hours.normalize():f} hours")),
            (self.tr("交卷后", "After submitting"),
             self.tr("可查看每题的正确答案和解析", "you see each question's correct answer and explanation")
             if bp.show_correct_answers == "after_submit" else
             self.tr("只显示得分，不公布正确答案", "you see your score; the correct answers are not shown")),
        ]
        if bp.require_lessons:
            rows.append((self.tr("考试前", "Before the exam"), self.tr("须完成全部课程", "every lesson is complete")))
        table = render(Table([], [[Cell(k, heads_row=True), v] for k, v in rows], css_class="sopcoach-table"))
        html = (self._home_link() + f"<p>{esc(self.tr('您好，', 'Hello, '))}{esc(self.learner_name)}</p>"
                f"<p>{esc(shown(bp.instructions, self.lang))}</p>{table}")
        children: list[w.Widget] = [self.html(html)]
        past = self._past_attempts_list()
        missing = self.service.missing_lessons(self._learner()) if el.open_attempt is None and not el.passed else []
        if missing:
            titles = {x.id: x for x in self.inst.playbook.lessons}
            items = "".join(f"<li>{self.nav.link(titles[m].notebook, f'{titles[m].number}. {shown(titles[m].title, self.lang)}', '', self.lang)}</li>"
                            for m in missing if m in titles)
            children.append(self.html(f"<p class='sopcoach-lessons-missing'><b>{esc(refusal_message(LessonsIncomplete('', missing), self.lang))}</b> "
                                   f"{esc(self.tr('尚未完成的课程：', 'Lessons still to complete:'))}</p><ul>{items}</ul>"))
        elif el.open_attempt is not None:
            self.start_button.description = self.tr("继续考试", "Resume the exam")
            children.append(self.start_button)
        elif el.passed:
            children.append(self.html(self._certified_html()))
        elif el.attempts_left <= 0 or el.wait_seconds > 0:
            children.append(self.html(self._next_attempt_html(el)))
        else:
            self.start_button.description = self.tr("开始考试", "Start the exam")
            children.append(self.start_button)
        self.start_button.disabled = False
        self._set(Page.INSTRUCTIONS, *children, *past)

    @safe
    def on_start(self, _button: Any = None) -> None:
        if self.page is not Page.INSTRUCTIONS or self.learner_id is None or self._busy:
            return
        self._busy = True
        self.start_button.disabled = True
        try:
            self.attempt_id = self.service.start_or_resume(self.learner_id)
        except (AlreadyCertified, AttemptLimitReached, WaitRequired, LessonsIncomplete, RecordsError) as exc:
            self._refuse(exc)
            return
        finally:
            self._busy = False
        view = self.service.view(self.attempt_id)
        self.index = next((i for i, q in enumerate(view.question_ids) if q not in view.answered), 0)
        self.say("")
        self._seen = None
        self._start_timer()
        self.show_question()

    def _learner(self) -> str:
        """Return the signed-in learner's id (the exam is shown only after sign-in)."""
        if self.learner_id is None:
            raise AuthError("no learner is signed in on this page")
        return self.learner_id

    def _attempt(self) -> int:
        """Return the open attempt's id (questions and review exist only once it has started)."""
        if self.attempt_id is None:
            raise ExamError("no attempt has been started on this page")
        return self.attempt_id

    # -- questions ------------------------------------------------------------------------------------
    def _open(self) -> bool:
        """Return True when the attempt is still open; otherwise show the result."""
        if self.attempt_id is None:
            return False
        view = self.service.view(self.attempt_id)  # expires it when the time is up
        if view.state is not AttemptState.STARTED:
            self.show_result()
            return False
        return True

    def _sync(self) -> None:
        """Take the attempt's answers as they are now; warn when another window changed them since."""
        current = self.service.answers_version(self._attempt())
        if self._seen is not None and current != self._seen:
            self._refuse(StaleAttempt("changed in another window"))
        self._seen = current

    def show_question(self) -> None:
        if not self._open():
            return
        self.say("")  # "Saved" belongs to the question it was said for
        self._sync()
        qv = self.service.question(self._attempt(), self.index, self.lang)
        # The question's number goes last, so the page never shows it above another question's
        # stem or controls (a learner, and the browser tests, read "question 5" as "5 is shown").
        self._build_answer(qv)
        self.scenario.value, self.question_text.value = stem_html(qv, self.lang)
        self._flag_sync = True
        self.flag_button.value = qv.flagged
        self._flag_sync = False
        self.back_button.disabled = qv.number == 1
        self.next_button.disabled = qv.number == qv.total
        self.progress.max, self.progress.value = qv.total, qv.number
        self.progress_label.value = self.tr(f"第 {qv.number} 题，共 {qv.total} 题", f"Question {qv.number} of {qv.total}")
        self._set(Page.QUESTION, self.question_head, self.scenario, self.question_text, self.answer_box,
                  self.question_nav)

    def _build_answer(self, qv: QuestionView) -> None:
        old = self._answer_widget
        qid = qv.question_id
        widget, getter = answer_control(qv, self.lang, lambda: self.on_answer(qid))
        self._answer_widget, self._answer_getter = widget, getter
        self.answer_box.children = (widget,)
        if old is not None:
            old.close()

    @safe
    def on_answer(self, qid: str) -> None:
        if self.page is not Page.QUESTION or self.attempt_id is None or self._answer_getter is None:
            return
        response = self._answer_getter()
        try:
            self._seen = self.service.answer(self.attempt_id, qid, response, expected=self._seen)
        except AttemptClosed as exc:  # includes expired
            self._refuse(exc)
            self.show_result()
            return
        except StaleAttempt:  # nothing saved: show what the other window saved, then let the learner choose
            self.show_question()
            return
        except (InvalidResponse, RecordsError) as exc:
            self._refuse(exc)
            return
        self.say(self.tr("已保存", "Saved"), "info")

    @safe
    def on_flag(self, change: dict) -> None:
        if self._flag_sync or self.page is not Page.QUESTION or self.attempt_id is None:
            return
        qid = self.service.view(self.attempt_id).question_ids[self.index]
        try:
            self._seen = self.service.flag(self.attempt_id, qid, bool(change["new"]), expected=self._seen)
        except AttemptClosed as exc:
            self._refuse(exc)
            self.show_result()
        except StaleAttempt:
            self.show_question()
        except RecordsError as exc:
            self._refuse(exc)

    @safe
    def on_back(self, _button: Any = None) -> None:
        if self.page is Page.QUESTION and self.index > 0:
            self.index -= 1
            self.show_question()

    @safe
    def on_next(self, _button: Any = None) -> None:
        if self.page is Page.QUESTION and self.attempt_id is not None:
            total = len(self.service.view(self.attempt_id).question_ids)
            if self.index < total - 1:
                self.index += 1
                self.show_question()

    def go_to(self, index: int) -> None:
        """Show question ``index`` (0-based)."""
        if self.attempt_id is None:
            return
        self.index = index
        self.show_question()

    # -- review and submit ------------------------------------------------------------------------------
    @safe
    def on_review(self, _button: Any = None) -> None:
        if self.page not in (Page.QUESTION, Page.CONFIRM) or not self._open():
            return
        self.show_review()

    def show_review(self) -> None:
        self._clear_note()
        self._sync()
        view = self.service.view(self._attempt())
        rows: list[w.Widget] = []
        unanswered = [i for i, q in enumerate(view.question_ids) if q not in view.answered]
        flagged = [i for i, q in enumerate(view.question_ids) if q in view.flagged]
        summary = self.tr(f"已答 {len(view.answered)} 题，未答 {len(unanswered)} 题，标记待复查 {len(flagged)} 题。",
                          f"Answered {len(view.answered)}, unanswered {len(unanswered)}, flagged {len(flagged)}.")
        rows.append(self.html(f"<h3>{esc(self.tr('检查答卷', 'Review'))}</h3><p>{esc(summary)}</p>"))
        for i in sorted(set(unanswered) | set(flagged)):
            tags = []
            if i in unanswered:
                tags.append(self.tr("未答", "unanswered"))
            if i in flagged:
                tags.append(self.tr("待复查", "flagged"))
            b = w.Button(description=self.tr(f"第 {i + 1} 题（{'、'.join(tags)}）", f"Question {i + 1} ({', '.join(tags)})"),
                         layout=w.Layout(width="auto"))
            b.on_click(self._goto_handler(i))
            rows.append(b)
        back = w.Button(description=self.tr("返回作答", "Back to the questions"))
        back.on_click(self._goto_handler(self.index))
        self._set(Page.REVIEW, *rows, hbox([back, self.submit_button]))

    def _goto_handler(self, index: int) -> Callable:
        @safe
        def handler(app: ExamApp, _b: Any = None) -> None:
            if app.page in (Page.REVIEW, Page.CONFIRM) and app._open():
                app.go_to(index)
        return lambda b: handler(self, b)

    @safe
    def on_submit_request(self, _button: Any = None) -> None:
        if self.page is not Page.REVIEW or not self._open():
            return
        view = self.service.view(self._attempt())
        missing = len(view.question_ids) - len(view.answered)
        warn = self.tr(f"还有 {missing} 题未作答，未答题目不得分。", f"{missing} questions are unanswered and will score nothing.") if missing else ""
        text = self.tr("提交后不能再修改答案。确定提交吗？", "After submitting you cannot change your answers. Submit now?")
        self.confirm_button.disabled = False
        self._set(Page.CONFIRM, self.html(f"<p><b>{esc(warn)}</b></p><p>{esc(text)}</p>"),
                  hbox([self.cancel_button, self.confirm_button]))

    @safe
    def on_cancel(self, _button: Any = None) -> None:
        if self.page is Page.CONFIRM and self._open():
            self.show_question()

    @safe
    def on_confirm(self, _button: Any = None) -> None:
        if self.page is not Page.CONFIRM or self.attempt_id is None or self._busy:
            return
        self._clear_note()
        self._busy = True
        self.confirm_button.disabled = True
        try:
            self.report = self.service.submit(self.attempt_id)
        except AttemptExpired as exc:
            self._refuse(exc)
        except RecordsError as exc:  # not submitted: the learner stays on the confirmation and may try again
            self._refuse(exc)
            self.confirm_button.disabled = False
            return
        finally:
            self._busy = False
        self.show_result()

    # -- result -------------------------------------------------------------------------------------------
    def show_result(self) -> None:
        self._stop_timer()
        if self.attempt_id is None:
            return
        row = self.inst.records.attempt(self.attempt_id)
        if row is None:
            raise ExamError(f"no attempt {self.attempt_id}")
        if row.state == AttemptState.STARTED.value:
            return
        rep = self.service.report(self.attempt_id)
        self.report = rep
        self.timer.value = ""
        self._clear_note()
        head = self._score_html(rep, self.tr("考试结果", "Result"))
        head += (self._certified_html() if rep.passed
                 else self._next_attempt_html(self.service.eligibility(self._learner())))
        if row.state == AttemptState.EXPIRED.value:
            head += f"<p>{esc(self.tr('考试时间已到，已按截止前保存的答案计分。', 'Time ran out; the answers saved before the deadline were scored.'))}</p>"
        titles = {s.id: shown(s.title, self.lang) for s in self.bp.sections}
        sec_rows = [[titles.get(k, k), f"{floor_percent(e / p if p else Fraction(0))}%"] for k, (e, p) in rep.sections.items()]
        sections = (f"<h4>{esc(self.tr('分项得分', 'By section'))}</h4>"
                    + render(Table([], sec_rows, css_class="sopcoach-table")))
        missed_html = ""
        missed = [item for item in self.service.review(self.attempt_id, self._learner(), self.lang) if not item.full_marks]
        if missed:
            items = "".join(f"<li>{self._review_item_html(item, brief=True)}</li>" for item in missed)
            missed_html = (f"<h4>{esc(self.tr('需要复习的题目', 'Questions to revisit'))}</h4><ol class='sopcoach-missed'>{items}</ol>")
        attempt_id = self.attempt_id
        whole = button(self.tr("查看完整答卷", "Review every question"), classes=("sopcoach-review-attempt",))
        whole.on_click(lambda _b: self.on_past(attempt_id))
        self._set(Page.RESULT, self.html(self._home_link() + head + sections + missed_html), whole)

    def _score_html(self, rep: ScoreReport, heading: str) -> str:
        """Return a result's heading, verdict and score line (percent, points, pass mark)."""
        verdict = (f"<span class='sopcoach-pass'>{esc(self.tr('通过', 'Passed'))}</span>" if rep.passed
                   else f"<span class='sopcoach-fail'>{esc(self.tr('未通过', 'Not passed'))}</span>")
        points = points_text(rep.earned, rep.possible)
        pct = floor_percent(rep.pass_mark, 0)
        score = f"<b class='sopcoach-score'>{rep.percent_display}%</b>"
        pts = f"<span class='sopcoach-points'>{esc(self.tr(f'{points} 分', f'{points} points'))}</span>"
        line = (f"{esc(self.tr('得分：', 'Score: '))}{score}{esc(self.tr('（', ' ('))}{pts}"
                f"{esc(self.tr(f'；通过分数 {pct}%）', f'; pass mark {pct}%)'))}")
        return f"<h3>{esc(heading)}</h3><p>{verdict}</p><p>{line}</p>"

    def _clause_titles(self, clause_ids: tuple[str, ...]) -> str:
        """Return the clauses by title (a learner never sees a clause id or a seed reference)."""
        titles = []
        for cid in clause_ids:
            try:
                titles.append(shown(self.inst.playbook.clause(cid).title, self.lang))
            except KeyError:
                log.warning("clause %s of a question is not in the playbook", cid)
        return self.tr("；", "; ").join(dict.fromkeys(titles))

    def _review_item_html(self, item: ReviewItem, brief: bool = False) -> str:
        """Return one question of a closed attempt: scenario, stem, the learner's answer, the key and
        explanation when the blueprint shows them, and the clauses to re-read."""
        qv = item.view
        scenario, stem = stem_html(qv, self.lang)
        pts = points_text(item.earned, item.points)
        mark = credit_mark(item.full_marks, item.earned > 0, self.tr(f"（{pts} 分）", f" ({pts} points)"), self.lang)
        answer = shown(item.answer, self.lang) if item.answer else self.tr("（未作答）", "(not answered)")
        lines = [f"{esc(self.tr('您的答案：', 'Your answer: '))}<span class='sopcoach-own-answer'>{esc(answer)}</span> {mark}"]
        if item.key is not None:
            lines.append(f"{esc(self.tr('正确答案：', 'Correct answer: '))}<b class='sopcoach-key'>{esc(shown(item.key, self.lang))}</b>")
        if item.explanation:
            lines.append(f"<i class='sopcoach-explanation'>{esc(shown(item.explanation, self.lang))}</i>")
        clauses = self._clause_titles(item.clauses)
        if clauses:
            lines.append(f"<small>{esc(self.tr('请复习条款：', 'Re-read: '))}{esc(clauses)}</small>")
        head = scenario + (f"<p><b>{esc(shown(qv.text, self.lang))}</b></p>" if brief else stem)
        return head + "".join(f"<div class='sopcoach-review-line'>{line}</div>" for line in lines)

    # -- past attempts ----------------------------------------------------------------------------------
    def _attempt_label(self, a: AttemptSummary) -> str:
        day = local_day(a.closed_at, self.inst.playbook.calendar.timezone) if a.closed_at else "?"
        verdict = self.tr("通过", "passed") if a.passed else self.tr("未通过", "not passed")
        late = self.tr("，超时交卷", ", time ran out") if a.state is AttemptState.EXPIRED else ""
        return self.tr(f"第 {a.number} 次考试（{day}，{a.percent}%，{verdict}{late}）",
                       f"Attempt {a.number} ({day}, {a.percent}%, {verdict}{late})")

    def _past_attempts_list(self) -> list[w.Widget]:
        """Return the learner's closed attempts, each with a button that opens its review (or nothing)."""
        past = self.service.closed_attempts(self._learner())
        if not past:
            return []
        rows: list[w.Widget] = [self.html(f"<h4>{esc(self.tr('我的考试记录', 'My past attempts'))}</h4>")]
        for a in reversed(past):
            b = button(self.tr("查看答卷", "Review"), classes=("sopcoach-past-attempt", f"sopcoach-past-{a.number}"))
            b.on_click(self._past_handler(a.attempt_id))
            rows.append(hbox([self.html(esc(self._attempt_label(a))), b]))
        return rows

    def _past_handler(self, attempt_id: int) -> Callable:
        return lambda _b: self.on_past(attempt_id)

    @safe
    def on_past(self, attempt_id: int) -> None:
        """Show the review of one of the learner's closed attempts (the service refuses any other)."""
        if self.page not in (Page.INSTRUCTIONS, Page.RESULT, Page.PAST) or self.learner_id is None:
            return
        items = self.service.review(attempt_id, self.learner_id, self.lang)
        summary = next((a for a in self.service.closed_attempts(self.learner_id) if a.attempt_id == attempt_id), None)
        rep = self.service.report(attempt_id)
        heading = self._attempt_label(summary) if summary is not None else self.tr("答卷", "Answers")
        note = ("" if self.bp.show_correct_answers == "after_submit" else
                f"<p class='sopcoach-no-key'>{esc(self.tr('本考试不公布正确答案；请按提示复习相关条款。', 'This exam does not show its correct answers; re-read the clauses named.'))}</p>")
        body = "".join(f"<li class='sopcoach-review-item'>{self._review_item_html(item)}</li>" for item in items)
        back = button(self.tr("返回考试页面", "Back to the exam page"), classes=("sopcoach-past-back",))
        back.on_click(lambda _b: self.on_past_back())
        self.say("")
        self._set(Page.PAST, self.html(self._home_link() + self._score_html(rep, heading) + note
                                         + f"<ol class='sopcoach-review-list'>{body}</ol>"), back)

    @safe
    def on_past_back(self) -> None:
        if self.page is Page.PAST:
            self.show_instructions()

    # -- timer ----------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Update the countdown from the server-side start; close the attempt when time is up."""
        if self.attempt_id is None or self.page is Page.RESULT:
            return
        view = self.service.view(self.attempt_id)
        left = view.seconds_left(self.clock())
        self.timer.value = (f"<div class='sopcoach-timer'>{esc(self.tr('剩余时间', 'Time left'))} "
                            f"{left // 60:02d}:{left % 60:02d}</div>")
        if view.state is not AttemptState.STARTED:
            self.say(refusal_message(AttemptExpired(), self.lang), "warning")
            self.show_result()

    def _start_timer(self) -> None:
        self.tick()
        if not self._want_timer or self._timer_task is not None:
            return
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            return
        if not loop.is_running():
            return

        async def run() -> None:
            while self.page is not Page.RESULT:
                await asyncio.sleep(1)
                try:
                    self.tick()
                except Exception:
                    log.exception("timer tick failed")
        self._timer_task = loop.create_task(run())

    def _stop_timer(self) -> None:
        if self._timer_task is not None:
            self._timer_task.cancel()
            self._timer_task = None


def credit_mark(full: bool, partly: bool, detail: str, lang: str | None,
                right: tuple[str, str] = ("正确", "Right"), wrong: tuple[str, str] = ("错误", "Wrong")) -> str:
    """Return the mark of an answer: ✓ right, ◐ partly right followed by ``detail`` (its credit, in
    the page's language), or ✗ wrong; ``right`` and ``wrong`` are the (zh-CN, en) words."""
    if full:
        return f"<span class='sopcoach-right'>✓ {esc(t(*right, lang))}</span>"
    if partly:
        return f"<span class='sopcoach-wrong'>◐ {esc(t('部分正确', 'Partly right', lang))}{esc(detail)}</span>"
    return f"<span class='sopcoach-wrong'>✗ {esc(t(*wrong, lang))}</span>"


def stem_html(qv: QuestionView, lang: str | None) -> tuple[str, str]:
    """Return the HTML of a question's scenario box (``""`` without one) and of its stem, as the
    exam page shows them (also the question editor's preview)."""
    scenario = (f"<div class='sopcoach-scenario'><b>{esc(t('情景', 'Scenario', lang))}</b><br>"
                f"{esc(shown(qv.scenario, lang))}</div>" if qv.scenario else "")
    return scenario, f"<p><b>{esc(shown(qv.text, lang))}</b></p>"


def answer_control(qv: QuestionView, lang: str | None, on_change: Callable[[], None]
                   ) -> tuple[w.Widget, Callable[[], Any]]:
    """Build the answer control the exam page shows for ``qv``: ``(widget, getter)``.

    ``on_change`` is called (no arguments) whenever the learner changes the answer; ``getter``
    returns the response as :meth:`ExamService.answer` takes it (an option id, a list of ids, a
    bool, a number's text, or ``None``). The question editor's preview uses the same control.
    """
    def tr(zh: str, en: str) -> str:
        return t(zh, en, lang)

    def html(value: str = "", classes: tuple[str, ...] = ()) -> Any:
        return html_widget(value, classes, lang=lang)

    qv = dataclasses.replace(qv, options=[(oid, shown(label, lang)) for oid, label in qv.options],
                             unit=shown(qv.unit, lang) if qv.unit else qv.unit)
    # q<n> lets tests and assistive tools find the current question.
    classes = ("sopcoach-answer", f"sopcoach-q{qv.number}")
    if qv.type in ("single_choice", "true_false"):
        value = qv.response
        if qv.type == "true_false" and value is not None:
            value = "true" if value else "false"
        widget = w.RadioButtons(options=[(label, oid) for oid, label in qv.options], value=value,
                                layout=shared_layout(width="auto"), style=shared_style(DescriptionStyle),
                                _dom_classes=classes)
        if qv.type == "true_false":
            getter = lambda: None if widget.value is None else widget.value == "true"  # noqa: E731
        else:
            getter = lambda: widget.value  # noqa: E731
        widget.observe(lambda ch: on_change(), names="value")
    elif qv.type == "multiple_choice":
        chosen = set(qv.response or [])
        boxes = [w.Checkbox(value=oid in chosen, description=label, indent=False, layout=shared_layout(),
                            style=shared_style(CheckboxStyle)) for oid, label in qv.options]
        ids = [oid for oid, _ in qv.options]
        for box in boxes:
            box.observe(lambda ch: on_change(), names="value")
        hint = html(tr("<i>多选题：选择所有正确的选项。错选会扣分。</i>",
                              "<i>Select every correct option. Wrong picks cost credit.</i>"))
        widget = vbox([hint, *boxes], classes=classes)
        getter = lambda: [i for i, b in zip(ids, boxes) if b.value]  # noqa: E731
    elif qv.type == "numeric":
        box = w.Text(value=qv.response or "", placeholder=tr("输入数字", "Type a number"),
                     description=tr("答案", "Answer"), continuous_update=False, layout=shared_layout())
        box.observe(lambda ch: on_change(), names="value")
        widget = hbox([box, w.Label(qv.unit or "", layout=shared_layout())], classes=classes)
        getter = lambda: box.value.strip() or None  # noqa: E731
    elif qv.type == "ordering":
        current = list(qv.response or [])
        choices = [("—", None)] + [(label, oid) for oid, label in qv.options]
        blocks = html("<p>" + esc(tr("可选项：", "Blocks: ")) + esc(tr("；", "; ")).join(esc(l) for _, l in qv.options) + "</p>")
        drops = []
        for pos in range(len(qv.options)):
            d = w.Dropdown(options=choices, value=current[pos] if pos < len(current) else None,
                           description=tr(f"第 {pos + 1} 位", f"Position {pos + 1}"), layout=shared_layout())
            d.observe(lambda ch: on_change(), names="value")
            drops.append(d)
        hint = html(tr("<i>按正确顺序为每个位置选择一项；不属于该流程的项不要选。</i>",
                              "<i>Pick a block for each position in the right order; leave out blocks that do not belong.</i>"))
        widget = vbox([hint, blocks, *drops], classes=classes)
        getter = lambda: [d.value for d in drops if d.value is not None]  # noqa: E731
    else:  # pragma: no cover - the bank validates types
        widget, getter = html(classes=classes), (lambda: None)
    return widget, getter
