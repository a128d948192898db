"""A lesson view of the learner app: the lesson notebook's prose in the learner's language (playbook
facts filled in), the clauses it shows, its tool, and practice questions with immediate feedback;
progress is saved per learner.

The lesson notebook (``lessons/<file>.ipynb``, see :mod:`sopcoach.lessons.notebook`) is read, never
run, each time the lesson is opened (cached until the file changes), so a trainer's edit shows at
the learner's next opening without a restart. Clauses, tools and facts come from the playbook, the
questions from the practice pool (``quizzes/practice/``). The practice key of a
question is shown right after the learner answers it; that is intended for practice only (the
exam never shows a key before submission).
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from datetime import datetime
from typing import Any
from collections.abc import Callable, Sequence

import ipywidgets as w

from ..certification.scoring import floor_percent
from ..config import Installation
from ..content.quizbank import display_order
from ..errors import ContentError, InvalidResponse, RecordsError, SchemaMismatch
from ..i18n import lt, shown, zh_html
from ..labels import source_label
from ..lessons.progress import PASS_FRACTION, Feedback, LessonService, LessonStatus
from ..lessons.notebook import LessonNotebook, Prose, fill_facts, prose_html, strip_title
from ._common import (SCHEMA_TEXT, CheckboxStyle, DescriptionStyle, ProgressStyle, button, database_refusal, esc, hbox,
                      html_widget, log, safe, shared_layout, shared_style, vbox)
from .exam_app import credit_mark
from .home_app import LearnerPage
from .lesson_tools import Tool, build_tool
from .navigation import Navigator


def clauses_html(playbook: Any, clause_ids: Sequence[str], lang: str) -> str:
    """Return the cards of the clauses ``clause_ids`` (a lesson's ``clauses(...)`` call) under a heading.

    Raises
    ------
    KeyError
        When a clause id is not in the playbook (``sopcoach check`` reports it).
    """
    cards = []
    for cid in clause_ids:
        c = playbook.clause(cid)
        company = c.source == "company-setting"
        tag = (f"<span class='sopcoach-tag sopcoach-tag-company'>{esc(lt('公司设定', 'company setting', lang))}</span>" if company
               else f"<span class='sopcoach-tag'>{esc(source_label(c.source, lang))}</span>")
        cards.append(f"<div class='sopcoach-card sopcoach-clause' data-clause='{esc(c.id)}'><b>{esc(shown(c.title, lang))}</b>{tag}"
                     f"<p>{esc(shown(c.text, lang))}</p></div>")
    return f"<h3>{esc(lt('规程条款', 'What the SOP says', lang))}</h3>" + "".join(cards)


def practice_head_html(lang: str) -> str:
    """Return the practice section's heading and completion rule (``practice()`` of a lesson)."""
    rule = lt(f"答完本课全部练习题且得分不低于 {floor_percent(PASS_FRACTION, 0)}% 即完成本课,可以反复练习,保留最佳成绩。",
             f"Answer every practice question with a score of at least {floor_percent(PASS_FRACTION, 0)}% to complete "
             "the lesson; you may practise again, the best score is kept.", lang)
    return f"<h3>{esc(lt('练习', 'Practice', lang))}</h3><p><small>{esc(rule)}</small></p>"


def lesson_error(lesson: Any, exc: Exception) -> str:
    """Return one line saying why a lesson notebook cannot be shown (for the trainer: file, cell, fix).

    The notebook is named by its file name only: the page does not show where the server keeps it.
    """
    folder = f"{Path(lesson.path).parent}/"
    if isinstance(exc, ContentError):
        return "; ".join(str(p) for p in exc.problems).replace(folder, "")
    return f"{Path(lesson.path).name}: unknown fact {exc}; run `sopcoach check` for the names to use"


class PracticeItem:
    """One practice question: its answer control, a check button and the feedback area.

    A template (``variant:``) shows one drawn variant (``params``, kept in the kernel): the stored
    answer's variant on a reload, else fresh numbers; "New numbers" draws fresh ones.
    """

    def __init__(self, app: LessonApp, q: Any, number: int, stored: dict | None):
        self.app, self.q, self.lang, self.number = app, q, app.lang, number
        self.params: dict[str, Any] | None = None
        rng = random.Random(f"{app.learner_id}:{q.id}")  # stable per learner, so a reload looks the same
        prev = (stored or {}).get("response")
        if q.variant is not None:
            try:
                self.q, self.params = app.service.variant(q.id, (stored or {}).get("params"))
            except InvalidResponse:  # the stored numbers no longer fit the template: fresh ones
                self.q, self.params = app.service.variant(q.id)
                prev = None
            q = self.q
        if q.type in ("single_choice", "true_false"):
            if q.type == "true_false":
                options = [(lt("正确", "True", self.lang), "true"), (lt("错误", "False", self.lang), "false")]
                value = None if prev is None else ("true" if prev else "false")
            else:
                opts = display_order(list(q.options), rng)
                options = [(self.txt(o.text), o.id) for o in opts]
                value = prev
            self.control = w.RadioButtons(options=options, value=value, layout=shared_layout(width="auto"),
                                          style=shared_style(DescriptionStyle))
        elif q.type == "multiple_choice":
            opts = display_order(list(q.options), rng)
            chosen = set(prev or [])
            self.boxes = [(o.id, w.Checkbox(value=o.id in chosen, description=self.txt(o.text), indent=False,
                                            layout=shared_layout(width="auto"), style=shared_style(CheckboxStyle)))
                          for o in opts]
            self.control = vbox([b for _, b in self.boxes])
        else:  # numeric
            self.text = w.Text(value=prev or "", placeholder=lt("输入数字", "Type a number", self.lang),
                               description=lt("答案", "Answer", self.lang), layout=shared_layout())
            unit = self.txt(q.unit) if getattr(q, "unit", None) else ""
            self.control = hbox([self.text, w.Label(unit, layout=shared_layout())])
        self.check = button(lt("检查答案", "Check", self.lang), classes=("sopcoach-check",), button_style="info")
        self.check.on_click(lambda _b: app.on_check(self))
        self.feedback = self.html(classes=("sopcoach-feedback",))
        self.head = self.html(self._head())
        buttons: Any = self.check
        if self.params is not None:
            self.fresh = button(lt("换一组数字", "New numbers", self.lang), classes=("sopcoach-new-numbers",))
            self.fresh.on_click(lambda _b: app.on_new_numbers(self))
            buttons = hbox([self.check, self.fresh])
        self.root = vbox([self.head, self.control, buttons, self.feedback],
                         classes=("sopcoach-card", "sopcoach-practice", f"sopcoach-practice-{q.id}"))

    def html(self, value: str = "", classes: Sequence[str] = ()) -> Any:
        """Return an HTML widget of this page (full-width punctuation on a Chinese page)."""
        return html_widget(value, classes, lang=self.lang)

    def txt(self, text: Any) -> str:
        """Return a content text as the page shows it (:func:`~sopcoach.i18n.shown`)."""
        return shown(text, self.lang)

    def _head(self) -> str:
        q = self.q
        head = f"<p><b>{self.number}. </b>"
        if q.scenario:
            head = f"<div class='sopcoach-scenario'>{esc(self.txt(q.scenario))}</div>" + head
        head += f"<b>{esc(self.txt(q.text))}</b></p>"
        if q.type == "multiple_choice":
            head += lt("<p><i>选择所有正确的选项。</i></p>", "<p><i>Select every correct option.</i></p>", self.lang)
        return head

    def new_numbers(self) -> None:
        """Show a fresh variant of a template: new numbers, no answer, no feedback."""
        self.q, self.params = self.app.service.variant(self.q.id)
        self.head.value = self._head()
        if self.q.type == "single_choice":
            by_id = {o.id: o for o in self.q.options}
            self.control.value = None
            self.control.options = [(self.txt(by_id[oid].text), oid) for _, oid in self.control.options]
            self.control.value = None
        elif self.q.type == "numeric":
            self.text.value = ""
        self.feedback.value = ""

    def response(self) -> Any:
        if self.q.type == "true_false":
            return None if self.control.value is None else self.control.value == "true"
        if self.q.type == "single_choice":
            return self.control.value
        if self.q.type == "multiple_choice":
            return [oid for oid, b in self.boxes if b.value]
        return self.text.value.strip() or None

    def refuse(self, why: str) -> None:
        """Show under the question why its answer was not checked (nothing was saved)."""
        self.feedback.value = f"<div class='sopcoach-refused' role='alert'>{esc(why)}</div>"

    def show(self, fb: Feedback) -> None:
        pct = floor_percent(fb.credit)
        head = credit_mark(fb.correct, fb.credit > 0, lt(f"（{pct}%）", f" ({pct}%)", self.lang), self.lang,
                           right=("回答正确", "Correct"), wrong=("回答错误", "Not right"))
        parts = [head, f"{esc(lt('正确答案：', 'Answer: ', self.lang))}<b>{esc(self.txt(fb.key))}</b>"]
        if fb.explanation:
            parts.append(f"<i>{esc(self.txt(fb.explanation))}</i>")
        if fb.clauses:
            parts.append(f"<small>{esc(lt('依据条款：', 'Clause: ', self.lang))}{esc(lt('；', '; ', self.lang).join(self.txt(c) for c in fb.clauses))}</small>")
        self.feedback.value = "<div>" + "<br>".join(parts) + "</div>"


class LessonApp(LearnerPage):
    """One lesson: clauses from the playbook, the lesson's tool, practice and progress.

    Parameters
    ----------
    inst : Installation
    lesson_id : str
        A lesson id of ``playbook/lessons.yaml``.
    lang, clock, learner_id
        As for :class:`~sopcoach.ui.home_app.LearnerPage`.
    """

    css_class = "sopcoach-lesson"

    def __init__(self, inst: Installation, lesson_id: str, lang: str | None = None,
                 clock: Callable[[], datetime] | None = None, learner_id: str | None = None,
                 nav: Navigator | None = None):
        super().__init__(inst, lang, clock, nav=nav)
        self.service = LessonService(inst, self.clock)
        self.lesson = self.service.lesson(lesson_id)
        self.items: dict[str, PracticeItem] = {}
        self.tool: Tool | None = None
        #: The digest of the stored practice this page shows (see :meth:`_practice_token`).
        self._seen = ""
        self.progress_line = self.html(classes=("sopcoach-lesson-status",))
        self.bar = w.FloatProgress(min=0, max=100, value=0, layout=shared_layout(width="240px"),
                                   style=shared_style(ProgressStyle))
        self.title.value = (f"<h2>{esc(self.tr(f'第 {self.lesson.number} 课', f'Lesson {self.lesson.number}'))} · "
                            f"{esc(self.txt(self.lesson.title))}</h2>")
        self.start(learner_id)

    # -- page -------------------------------------------------------------------------------------
    def _nav(self) -> str:
        prev, nxt = self.service.neighbours(self.lesson.id)
        links = [self.link("home.ipynb", self.tr("← 学习中心", "← Learning centre"), "sopcoach-home-link")]
        if prev is not None:
            links.append(self.link(prev.notebook, self.tr(f"上一课:{self.txt(prev.title)}", f"Previous: {self.txt(prev.title)}"),
                                   "sopcoach-prev-link"))
        if nxt is not None:
            links.append(self.link(nxt.notebook, self.tr(f"下一课:{self.txt(nxt.title)} →", f"Next: {self.txt(nxt.title)} →"),
                                   "sopcoach-next-link"))
        else:
            links.append(self.link("exam.ipynb", self.tr("认证考试 →", "Certification exam →"), "sopcoach-exam-link"))
        return " ".join(links)

    def show(self) -> None:
        status = self.service.open(self._learner(), self.lesson.id)
        self.nav.value = nav = self._nav()
        try:  # read again when the trainer saved the notebook since it was last shown
            nb = self.lesson.read()
            self.title.value = self._title_html(nb)
            blocks = self._blocks(nb)
        except (ContentError, KeyError) as exc:
            log.warning("lesson %s not shown: %s", self.lesson.id, exc)
            self.body.children = (self.html(f"<p>{esc(self.tr('本课内容有误,暂时无法显示,请联系培训师。', 'This lesson has an error and cannot be shown; please tell your trainer.'))}</p>"
                                              f"<p><small>{esc(lesson_error(self.lesson, exc))}</small></p>",
                                              classes=("sopcoach-lesson-error",)), self.html(nav, classes=("sopcoach-nav",)))
            return
        progress = hbox([self.bar, self.progress_line], layout=shared_layout(align_items="center"))
        footer = self.html(nav, classes=("sopcoach-nav",))
        self.body.children = (vbox([*blocks, progress, footer], classes=("sopcoach-lesson-ready",)),)
        self._restore_feedback(self._answers())
        self._show_status(status)
        self._seen = self._practice_token()

    def _title_html(self, nb: LessonNotebook) -> str:
        title = self.txt(fill_facts(self.inst.playbook, nb.title(self.lang), self.lang))
        return (f"<h2>{esc(self.tr(f'第 {self.lesson.number} 课', f'Lesson {self.lesson.number}'))} · "
                f"{esc(title)}</h2>")

    def _practice_token(self) -> str:
        """Return a digest of the learner's stored practice of this lesson (changes with every check saved)."""
        stored = self.inst.records.lesson_progress(self._learner()).get(self.lesson.id)
        practice = (stored.practice or {}) if stored is not None else {}
        return hashlib.sha256(json.dumps(practice, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _answers(self) -> dict:
        stored = self.inst.records.lesson_progress(self._learner()).get(self.lesson.id)
        return ((stored.practice or {}).get("answers") or {}) if stored is not None else {}

    def _blocks(self, nb: LessonNotebook) -> list[w.Widget]:
        """Return the lesson's widgets in notebook order: prose of the learner's language, clauses, tool, practice.

        Consecutive text is one HTML widget (each widget is a model the page creates, and closes again).
        """
        pb = self.inst.playbook
        blocks: list[w.Widget] = []
        text: list[str] = []

        def flush() -> None:
            if text:
                classes = ("sopcoach-lesson-text",) if not blocks else ("sopcoach-lesson-text", "sopcoach-lesson-more")
                blocks.append(self.html("".join(text), classes=classes))
                text.clear()

        first = True
        seeds = "".join(f"<span class='sopcoach-tag'>{esc(source_label(s, self.lang))}</span>" for s in self.lesson.seeds)
        self.tool, self.items = None, {}
        placed_practice = False
        for part in nb.parts:
            if isinstance(part, Prose):
                if part.lang != self.lang:
                    continue
                source = strip_title(part.source) if first else part.source
                prose = prose_html(pb, Prose(part.cell, part.lang, source), self.lang)
                text.append(f"<div class='sopcoach-prose'>{prose if self.lang == 'en' else zh_html(prose)}"
                            + (f"<p>{seeds}</p>" if first else "") + "</div>")
                first = False
            elif part.name == "clauses":
                text.append(clauses_html(pb, part.args, self.lang))
            elif part.name == "tool" and self.tool is None:
                flush()
                self.tool = build_tool(self.inst, self.lesson, self.lang, lambda notebook, label: self.link(notebook, label))
                blocks.append(self.tool.root)
            elif part.name == "practice" and not placed_practice:
                flush()
                blocks.extend(self._practice())
                placed_practice = True
        flush()
        if not placed_practice:  # a notebook without practice(): the lesson's practice still counts
            blocks.extend(self._practice())
        return blocks

    def _practice(self) -> list[w.Widget]:
        answers = self._answers()
        for i, q in enumerate(self.service.questions(self.lesson.id), 1):
            self.items[q.id] = PracticeItem(self, q, i, answers.get(q.id))
        head = self.html(practice_head_html(self.lang))
        return [head, *[it.root for it in self.items.values()]]

    def _restore_feedback(self, answers: dict) -> None:
        for qid, item in self.items.items():
            stored = answers.get(qid)
            if not stored:
                continue
            try:
                fb = self.service.feedback(qid, stored, self.lang)
            except Exception:
                log.info("stored practice answer to %s not shown", qid)
                continue
            item.show(fb)

    def _show_status(self, s: LessonStatus) -> None:
        self.bar.value = float(s.progress * 100)
        self.bar.bar_style = "success" if s.complete else "info"
        if s.complete:
            state = f"<span class='sopcoach-done'>✓ {esc(self.tr('本课已完成', 'Lesson complete'))}</span>"
        else:
            state = f"<span class='sopcoach-todo'>{esc(self.tr('未完成', 'Not complete yet'))}</span>"
        self.progress_line.value = (f"&nbsp;{state} · {esc(self.tr('已答', 'answered'))} {s.answered}/{s.total} · "
                                    f"{esc(self.tr('得分', 'score'))} <b class='sopcoach-score'>{s.percent(s.score)}%</b> · "
                                    f"{esc(self.tr('最佳', 'best'))} {s.percent()}%")

    # -- practice ---------------------------------------------------------------------------------
    @safe
    def on_new_numbers(self, item: PracticeItem) -> None:
        if self.learner_id is None or self._busy:
            return
        item.new_numbers()

    @safe
    def on_check(self, item: PracticeItem) -> None:
        if self.learner_id is None or self._busy:
            return
        self._busy = True
        item.check.disabled = True
        response = item.response()
        stale = self._practice_token() != self._seen  # another window of this lesson saved since this one loaded
        try:
            fb = self.service.answer(self.learner_id, self.lesson.id, item.q.id, response, self.lang,
                                     params=item.params)
        except InvalidResponse:
            if response is None or response == []:
                why = self.tr(f"第 {item.number} 题还没有作答，请先作答再检查。",
                              f"Question {item.number} has no answer yet; answer it, then check.")
            else:
                why = self.tr(f"第 {item.number} 题请输入数字，例如 12.5（收到“{response}”）。",
                              f"Question {item.number} takes a number, e.g. 12.5 (got {response}).")
            self.say(why, "warning")
            item.refuse(why)  # next to the question too, replacing the last check's verdict
            return
        except SchemaMismatch:
            self.say(self.tr(*SCHEMA_TEXT), "danger")
            return
        except RecordsError as exc:
            log.info("not saved: %s (learner %s)", exc, self.learner_id)
            self.say(database_refusal(exc, self.lang), "warning")
            return
        finally:
            self._busy = False
            item.check.disabled = False
        if stale:  # this answer is saved; the rest of the page is brought up to what the other window saved
            self.show()
            self.say(self.tr("本课练习已在另一个窗口中更新，本页已刷新为最新的答案和进度。",
                             "This lesson's practice was changed in another window; this page now shows the latest answers and progress."),
                     "warning")
            return
        self.say("")
        item.show(fb)
        self._seen = self._practice_token()
        if fb.status is not None:  # always given for a signed-in learner
            self._show_status(fb.status)
