"""The recertification app for learners: a short exam on just the clauses that changed.

After a trainer releases a playbook version that changes clauses a certificate covered
(:func:`sopcoach.authoring.versions.recertification_list`), the certificate holder opens
``/learn/recertification`` and takes :func:`sopcoach.certification.exam.recertification_exam`: a few
questions per changed clause, the pass mark of the certification exam (seed:3.3.1), a pro-rata time
limit. Passing renews the certificate on the current version
(:mod:`sopcoach.certification.certificates`). The exam itself is the certification exam app
(:class:`sopcoach.ui.exam_app.ExamApp`) run on the recertification bank and blueprint, so saving,
resuming, timing and scoring behave exactly as there.

This is a learner page: serve it from the learner server (a notebook in ``notebooks/learner/``
whose code cell is ``recertification_app()``), never from the trainer server.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from collections.abc import Callable

from ..authoring.versions import needs_review_ids, recertification_due
from ..certification.exam import recertification_exam
from ..config import Installation
from ..errors import ExamError
from ..i18n import current_lang, t
from ..records.models import utcnow
from ._common import esc, html_widget, log, vbox
from .exam_app import CSS, ExamApp
from .navigation import Navigator


class RecertificationApp:
    """Sign in, then the recertification exam when one is due (else say why not).

    Parameters
    ----------
    inst : Installation
    lang : str, optional
    clock : callable, optional
        Aware-UTC clock (tests pass a fake one).
    learner_id : str, optional
        An already authenticated learner (JupyterHub): no sign-in page.
    start_timer : bool
        Run the exam's countdown (needs the event loop of a Voila kernel).
    """

    def __init__(self, inst: Installation, lang: str | None = None, clock: Callable[[], datetime] | None = None,
                 learner_id: str | None = None, start_timer: bool = True, nav: Navigator | None = None):
        self.inst = inst
        self.nav = nav or Navigator(lessons=inst.playbook.lessons)
        self.lang = lang or current_lang()
        self.clock = clock or utcnow
        self.start_timer = start_timer
        self.exam: ExamApp | None = None
        self.status = html_widget()
        self.body = vbox()
        title = t("销售操作规程复认证", "Sales SOP recertification", self.lang)
        self.title = html_widget(CSS + f"<h2>{esc(title)}</h2>")
        self.root = vbox([self.title, self.body, self.status], classes=("sopcoach-app",))
        if learner_id:
            row = inst.records.learner(learner_id)
            self.open_for(learner_id, row.name if row is not None else learner_id)
        else:
            self.body.children = [html_widget(t("<p class='sopcoach-signed-out'>请先登录。</p>",
                                           "<p class='sopcoach-signed-out'>Please sign in first.</p>", self.lang))]

    def close(self) -> None:
        """Stop the exam's countdown (the view is being replaced)."""
        if self.exam is not None:
            self.exam._stop_timer()

    def say(self, text: str, level: str = "info") -> None:
        self.status.value = f'<div class="sopcoach-msg-{level}">{esc(text)}</div>' if text else ""

    def open_for(self, learner_id: str, name: str) -> None:
        """Show the learner's recertification exam, or why there is none."""
        self.say("")
        due = recertification_due(self.inst.records, learner_id, self.clock())
        if due is None:
            self.body.children = [html_widget(t(
                f"<p>{esc(name)}，您目前不需要复认证：您的证书仍是最新的，或您还没有证书(请参加认证考试)。</p>",
                f"<p>{esc(name)}, no recertification is due: your certificate is up to date, or you hold none yet "
                "(take the certification exam).</p>", self.lang))]
            return
        _code, clauses, release_id = due
        try:
            bank, blueprint = recertification_exam(self.inst.bank, self.inst.blueprint, clauses, release_id,
                                                   self.inst.playbook,
                                                   exclude=needs_review_ids(self.inst.records))
        except ExamError as exc:
            log.info("recertification of %s not available: %s", learner_id, exc)
            self.body.children = [html_widget(t(
                "<p>复认证考试暂不可用：培训负责人正在复核相关题目，请稍后再试。</p>",
                "<p>The recertification exam is not available yet: your trainer is reviewing its questions. "
                "Please try again later.</p>", self.lang))]
            return
        sub = dataclasses.replace(self.inst, bank=bank, blueprint=blueprint)
        self.exam = ExamApp(sub, lang=self.lang, clock=self.clock, learner_id=learner_id,
                            start_timer=self.start_timer, nav=self.nav)
        self.exam.learner_name = name
        self.exam.show_instructions()
        self.title.value = CSS  # the exam app shows its own title
        self.body.children = [self.exam.root]
