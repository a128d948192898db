"""The learner home view (``/learn/``): every lesson with the learner's progress, then the exam.

:class:`LearnerPage` is what the home and lesson views share: the learner (given by the learner
app, which the server told who is signed in), the bilingual chrome, and in-app links between views
(:class:`~sopcoach.ui.navigation.Navigator`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from collections.abc import Callable, Sequence

import ipywidgets as w

from ..certification.scoring import floor_percent
from ..config import Installation
from ..errors import AuthError
from ..i18n import current_lang, shown, t
from ..lessons.progress import LessonService
from ..records.models import utcnow
from ._common import esc, html_widget, vbox
from .exam_app import CSS, attempts_text, next_attempt_text
from .navigation import Navigator

LESSON_CSS = """
<style>
.sopcoach-nav { margin: 2px 0 10px 0; } .sopcoach-nav a { margin-right: 18px; }
.sopcoach-app a { color: #1f5fa8; text-decoration: none; } .sopcoach-app a:hover { text-decoration: underline; }
.sopcoach-card { border: 1px solid #d7dde5; border-radius: 6px; padding: 8px 12px; margin: 6px 0; background: #fff; }
.sopcoach-tag { display: inline-block; font-size: 12px; padding: 0 6px; border-radius: 8px; background: #e8eef7; color: #2b5c94; margin-left: 6px; }
.sopcoach-tag-company { background: #fdf0dc; color: #8a5300; }
.sopcoach-done { color: #1b7f3b; font-weight: bold; } .sopcoach-todo { color: #666; }
.sopcoach-right { color: #1b7f3b; } .sopcoach-wrong { color: #b3261e; }
.sopcoach-stage { display: inline-block; border: 2px solid #9fb3c8; border-radius: 6px; padding: 6px 8px; margin: 2px; min-width: 92px; text-align: center; background: #f7f9fb; }
.sopcoach-stage-hl { border-color: #1b7f3b; background: #e3f4e8; font-weight: bold; }
.sopcoach-arrow { display: inline-block; color: #9fb3c8; margin: 0 2px; }
.sopcoach-day { display: inline-block; width: 58px; margin: 2px; padding: 3px; text-align: center; border-radius: 4px; font-size: 12px; }
.sopcoach-day-working { background: #e3f4e8; } .sopcoach-day-makeup { background: #c9ecd3; border: 1px solid #1b7f3b; }
.sopcoach-day-holiday { background: #fbe1df; } .sopcoach-day-weekend { background: #eceff3; color: #777; }
.sopcoach-table { border-collapse: collapse; margin: 6px 0; }
.sopcoach-table th, .sopcoach-table td { padding: 3px 10px; text-align: left; border-bottom: 1px solid #eef1f5; }
.sopcoach-table td[class^="sopcoach-rate-"] { font-weight: bold; }
.sopcoach-bar { background: #4a7bb7; height: 14px; display: inline-block; vertical-align: middle; }
.sopcoach-warn { color: #b3261e; font-weight: bold; } .sopcoach-ok { color: #1b7f3b; font-weight: bold; }
.sopcoach-row { align-items: center; }
.sopcoach-meter { display: inline-block; width: 180px; max-width: 40vw; height: 12px; background: #e6eaef; border-radius: 6px;
  vertical-align: middle; overflow: hidden; margin: 0 8px; }
.sopcoach-meter.sopcoach-overall { width: 300px; }
.sopcoach-meter-fill { display: block; height: 100%; background: #4a7bb7; }
.sopcoach-meter-fill.sopcoach-meter-done { background: #1b7f3b; }
.sopcoach-lesson-row { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 0; padding: 6px 0;
  border-bottom: 1px solid #eef1f5; }
.sopcoach-lesson-title { flex: 1 1 360px; min-width: 0; }
.sopcoach-lesson-state { margin-left: 4px; }
</style>
"""


def _meter(percent: float, css: str, complete: bool) -> str:
    """Return a progress bar drawn in CSS (``percent`` in [0, 100])."""
    pct = max(0.0, min(100.0, percent))
    return (f"<span class='sopcoach-meter {css}' role='progressbar' aria-valuemin='0' aria-valuemax='100' "
            f"aria-valuenow='{pct:.0f}'><span class='sopcoach-meter-fill{' sopcoach-meter-done' if complete else ''}' "
            f"style='width:{pct:.1f}%'></span></span>")


class LearnerPage:
    """What every learner page shares: identity, sign-in form, messages and links between pages.

    Subclasses implement :meth:`show` (the page once the learner is known).
    """

    css_class = "sopcoach-page"

    def __init__(self, inst: Installation, lang: str | None = None, clock: Callable[[], datetime] | None = None,
                 learner_id: str | None = None, nav: Navigator | None = None):
        self.inst = inst
        self.lang = lang or current_lang()
        self.clock = clock or utcnow
        self.nav_links = nav or Navigator(lessons=inst.playbook.lessons)
        self.learner_id: str | None = None
        self.learner_name = ""
        self._busy = False
        self.title = self.html()
        self.nav = self.html(classes=("sopcoach-nav",))
        self.status = self.html()
        self.body = vbox()
        self.root = vbox([self.html(CSS + LESSON_CSS), self.title, self.nav, self.body, self.status],
                         classes=("sopcoach-app", self.css_class))

    def start(self, learner_id: str | None) -> LearnerPage:
        """Show the page for ``learner_id``, or the sign-in form when it is ``None``."""
        if learner_id:
            row = self.inst.records.learner(learner_id)
            self._signed_in(learner_id, row.name if row is not None else learner_id)
        else:
            self.show_sign_in()
        return self

    # -- helpers ----------------------------------------------------------------------------------
    def tr(self, zh: str, en: str) -> str:
        return shown(t(zh, en, self.lang), self.lang)

    def txt(self, text: Any) -> str:
        """Return a content text as the page shows it (:func:`~sopcoach.i18n.shown`)."""
        return shown(text, self.lang)

    def html(self, value: str = "", classes: Sequence[str] = ()) -> Any:
        """Return an HTML widget of this page (full-width punctuation on a Chinese page)."""
        return html_widget(value, classes, lang=self.lang)

    def say(self, text: str, level: str = "info") -> None:
        """Show a short message under the page (never a traceback)."""
        self.status.value = f'<div class="sopcoach-msg-{level}">{esc(text)}</div>' if text else ""

    def href(self, notebook: str, lang: str | None = None) -> str:
        """Return the address of another view of the learner app (``home.ipynb``, a lesson, ``exam.ipynb``)."""
        return self.nav_links.href(notebook, lang or self.lang)

    def link(self, notebook: str, label: str, css: str = "") -> str:
        return self.nav_links.link(notebook, label, css, self.lang)

    # -- nobody signed in ---------------------------------------------------------------------
    def show_sign_in(self) -> None:
        """Say that nobody is signed in; signing in happens at the server's door, not in a page."""
        self.nav.value = ""
        self.body.children = (self.html(self.tr("<p class='sopcoach-signed-out'>请先登录。</p>",
                                             "<p class='sopcoach-signed-out'>Please sign in first.</p>")),)

    def _signed_in(self, learner_id: str, name: str) -> None:
        self.learner_id, self.learner_name = learner_id, name
        self.say("")
        self.show()

    def _learner(self) -> str:
        """Return the signed-in learner's id (pages are shown only after sign-in)."""
        if self.learner_id is None:
            raise AuthError("no learner is signed in on this page")
        return self.learner_id

    def show(self) -> None:  # pragma: no cover - every page implements it
        raise NotImplementedError


class HomeApp(LearnerPage):
    """The learner's home page: every lesson with a progress bar, then the exam."""

    css_class = "sopcoach-home"

    def __init__(self, inst: Installation, lang: str | None = None, clock: Callable[[], datetime] | None = None,
                 learner_id: str | None = None, nav: Navigator | None = None):
        super().__init__(inst, lang, clock, nav=nav)
        self.lessons = LessonService(inst, self.clock)
        self.title.value = (f"<h2>{esc(self.txt(inst.playbook.sop.name))} · "
                            f"{esc(self.tr('学习中心', 'Learning centre'))}</h2>")
        #: Progress per lesson id, in percent (what each bar shows).
        self.bars: dict[str, float] = {}
        self.start(learner_id)

    def show(self) -> None:
        """Show every lesson with its progress, then the exam card.

        The listing is one HTML widget (progress bars drawn in CSS, ``role="progressbar"``): a view
        switch then sends a handful of widget messages, not a hundred.
        """
        statuses = self.lessons.statuses(self._learner())
        done = sum(s.complete for s in statuses)
        total = len(statuses)
        self.nav.value = f"<span class='sopcoach-hello'>{esc(self.tr('您好,', 'Hello, '))}{esc(self.learner_name)}</span>"
        parts = [f"<h3>{esc(self.tr('课程', 'Lessons'))}</h3>",
                 f"<div class='sopcoach-row'>{_meter(done / total * 100 if total else 0, 'sopcoach-overall', done == total)}"
                 f"&nbsp;<b class='sopcoach-done-count'>"
                 f"{esc(self.tr(f'已完成 {done} / {total} 课', f'{done} of {total} lessons complete'))}</b></div>"]
        self.bars = {}
        for s in statuses:
            lesson = s.lesson
            percent = float(s.progress * 100)
            self.bars[lesson.id] = percent
            if s.complete:
                state = f"<span class='sopcoach-done'>✓ {esc(self.tr('已完成', 'complete'))}</span>"
            elif s.opened:
                state = (f"<span class='sopcoach-todo'>{esc(self.tr('学习中', 'in progress'))} · "
                         f"{esc(self.tr(f'练习 {s.answered}/{s.total}', f'practice {s.answered}/{s.total}'))}</span>")
            else:
                state = f"<span class='sopcoach-todo'>{esc(self.tr('未开始', 'not started'))}</span>"
            best = (f" · {esc(self.tr('最佳得分', 'best score'))} {s.percent()}%" if s.opened and s.answered else "")
            parts.append(
                f"<div class='sopcoach-lesson-row sopcoach-lesson-{esc(lesson.id)}'>"
                f"<span class='sopcoach-lesson-title'><b>{lesson.number}.</b> "
                f"{self.link(lesson.notebook, self.txt(lesson.title), 'sopcoach-lesson-link')}</span>"
                f"{_meter(percent, 'sopcoach-lesson-bar', s.complete)}<span class='sopcoach-lesson-state'>{state}{best}</span></div>")
        listing_html = self.html("".join(parts))
        listing = vbox([listing_html, self._exam_card([s.lesson for s in statuses if not s.complete])],
                       classes=("sopcoach-home-ready",))
        self.body.children = (listing,)

    def _exam_card(self, missing: list[Any]) -> w.Widget:
        bp = self.inst.blueprint
        el = self.inst.exam_service(self.clock).eligibility(self._learner())
        head = f"<h3>{esc(self.tr('上岗认证考试', 'Certification exam'))}</h3>"
        facts = self.tr(f"{bp.question_count} 题 · {bp.time_limit_minutes} 分钟 · 通过分数 {floor_percent(bp.pass_fraction, 0)}%",
                        f"{bp.question_count} questions · {bp.time_limit_minutes} minutes · pass mark {floor_percent(bp.pass_fraction, 0)}%")
        if el.passed:
            state = f"<span class='sopcoach-done'>✓ {esc(self.tr('您已通过认证', 'You are certified'))}</span>"
        elif bp.require_lessons and missing:
            names = "、".join(f"{x.number}. {self.txt(x.title)}" for x in missing) if self.lang != "en" \
                else "; ".join(f"{x.number}. {self.txt(x.title)}" for x in missing)
            state = (f"<span class='sopcoach-todo sopcoach-exam-locked'>"
                     f"{esc(self.tr('完成全部课程后才能开始考试。尚未完成:', 'The exam opens when every lesson is complete. Still to complete: '))}"
                     f"{esc(names)}</span>")
        elif el.can_start:
            state = f"<span class='sopcoach-ok sopcoach-exam-open'>{esc(self.tr('可以参加考试', 'The exam is open to you'))}</span>"
        else:  # the service's rule (Eligibility): waiting after an attempt, or no attempts left
            when, text = next_attempt_text(el, self.inst.playbook.calendar.timezone, self.lang)
            css = "sopcoach-warn sopcoach-exam-used-up" if when == "used_up" else "sopcoach-todo sopcoach-exam-waiting"
            state = (f"<span class='{css}'>{esc(text)}</span><br>"
                     f"<span class='sopcoach-todo'>{esc(attempts_text(el, bp.max_attempts, self.lang))}</span>")
        link = self.link("exam.ipynb", self.tr("进入考试页面 →", "Go to the exam →"), "sopcoach-exam-link")
        closed = len(self.inst.exam_service(self.clock).closed_attempts(self._learner()))
        past = (f"<p class='sopcoach-past-attempts'>"
                f"{self.link('exam.ipynb', self.tr(f'查看我的 {closed} 次考试答卷 →', f'Review my {closed} past attempt(s) →'), 'sopcoach-past-link')}</p>"
                if closed else "")
        card = self.html(f"<div class='sopcoach-card'>{head}<p>{esc(facts)}</p><p>{state}</p><p>{link}</p>{past}</div>",
                           classes=("sopcoach-exam-card",))
        return card
