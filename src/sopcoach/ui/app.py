"""The learner app: home, lessons, exam and recertification as views of one Voila page.

One page per learner means one kernel per learner: the views are built in the same kernel when
the learner moves between them, so a view switch costs a few widget messages, not a page load.
The address records the view (``/learn/``, ``/learn/lessons/<id>``, ``/learn/exam``,
``/learn/recertification``, with ``?lang=en``) through :class:`~sopcoach.ui.router.Router`, so a
reload and Back/Forward return to it.

Who the learner is comes from the server, never from the browser: the learner server binds the
kernel to the signed-in learner before the page is sent (:meth:`sopcoach.records.store.Records.bind_page`)
and the app reads that binding by its own kernel id (or ``JUPYTERHUB_USER`` behind JupyterHub).
"""
from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any
from collections.abc import Callable

from ipykernel.connect import get_connection_file
import ipywidgets as w
from ipywidgets.widgets.widget import _instances

from ..config import Installation, installation
from ..errors import SchemaMismatch
from ..i18n import LANGS, current_lang, t
from ..lessons.progress import lesson_gate
from ..records.models import utcnow
from ._common import esc, log, log_to_server, safe, shared_parts
from .exam_app import ExamApp
from .home_app import HomeApp
from .lesson_app import LessonApp
from .navigation import APP_PREFIX, Navigator
from .router import Router

__all__ = ["LearnerApp", "build_learner_app", "learner_app", "page_kernel_id"]

_LESSON_ROUTE = re.compile(r"^lessons/([A-Za-z0-9_\-]{1,64})$")

WRAP_CSS = """
<style>
/* Every option and stem in full, wrapped, at any width (no "…"). */
.sopcoach-app .widget-radio-box label, .sopcoach-app .widget-checkbox label, .sopcoach-app .widget-label,
.sopcoach-app .widget-label-basic, .sopcoach-app .widget-checkbox .widget-label-basic span,
.sopcoach-app .widget-dropdown select, .sopcoach-app .widget-button, .sopcoach-app .widget-toggle-button {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  height: auto !important; line-height: 1.4; }
.sopcoach-app .widget-button, .sopcoach-app .widget-toggle-button { min-height: 32px; padding: 4px 14px;
  width: auto; max-width: 100%; }
.sopcoach-app .widget-radio-box label { display: flex; align-items: flex-start; gap: 6px; margin: 4px 0; }
/* ipywidgets 8 puts the radio after its text and floats it left; a flex label ignores the float. */
.sopcoach-app .widget-radio-box input { flex: none; margin-top: 4px; order: -1; }
/* auto, not 100%: 100% plus the widget margins made every multiple-choice box scroll sideways. */
.sopcoach-app .widget-checkbox { width: auto !important; height: auto !important; }
.sopcoach-app .widget-checkbox label { display: flex; align-items: flex-start; gap: 6px; }
.sopcoach-app .widget-checkbox input { flex: none; margin-top: 4px; }
.sopcoach-app .widget-radio-box, .sopcoach-app .widget-radio, .sopcoach-app .sopcoach-answer { width: 100% !important; max-width: 100%; }
.sopcoach-app .widget-radio > .widget-label { display: none; }
.sopcoach-app { max-width: 860px; width: 100%; box-sizing: border-box; overflow-wrap: anywhere; }
.sopcoach-app .widget-hbox { flex-wrap: wrap; }
.sopcoach-app .widget-html-content { white-space: normal; }
.sopcoach-topbar a { margin-right: 14px; }
.sopcoach-app a { color: #1f5fa8; text-decoration: none; } .sopcoach-app a:hover { text-decoration: underline; }
@media (max-width: 600px) {
  .sopcoach-app { font-size: 15px; }
  .sopcoach-app .widget-inline-hbox, .sopcoach-app .widget-hbox { max-width: 100%; }
  .sopcoach-app .widget-progress { max-width: 100%; }
  .sopcoach-app [style*="width: 430px"], .sopcoach-app [style*="width:430px"] { width: 100% !important; }
}
</style>
"""


def page_kernel_id() -> str | None:
    """Return the id of the kernel this code runs in (from its connection file), or ``None``."""
    try:
        name = os.path.basename(get_connection_file())
    except Exception:
        return None
    m = re.match(r"^kernel-([0-9a-f\-]{36})\.json$", name)
    return m.group(1) if m else None


class LearnerApp:
    """The learner page: a router, a top bar and the current view.

    Parameters
    ----------
    inst_loader : callable
        Returns the current :class:`~sopcoach.config.Installation` (reloaded when content changed).
    learner_id : callable or str or None
        The learner, or a function returning it once the page's request is known (the kernel's
        binding). ``None``: nobody is signed in (the view says so).
    base : str
        The server's base URL (``/`` or ``/PREFIX/``).
    clock : callable, optional
        Aware-UTC clock.
    start_timer : bool
        Run the exam countdown (needs a running event loop, as in a kernel).
    """

    def __init__(self, inst_loader: Callable[[], Installation] = installation,
                 learner_id: Callable[[], str | None] | str | None = None, base: str = "/",
                 clock: Callable[[], datetime] | None = None, start_timer: bool = True):
        self._inst_loader = inst_loader
        self._learner_source = learner_id
        self.learner_id: str | None = None
        self._identified = False
        self.clock = clock or utcnow
        self.start_timer = start_timer
        self.base = base if base.endswith("/") else base + "/"
        self.lang = current_lang()
        self.path: str | None = None
        self.view: Any = None
        self.router = Router(base=self.base + APP_PREFIX, lang=self.lang)
        self.router.on_navigate(self.on_navigate)
        self.topbar = w.HTML(_dom_classes=("sopcoach-topbar",))
        self.main = w.VBox([w.HTML(t("<p>正在载入……</p>", "<p>Loading…</p>", self.lang))])
        self.root = w.VBox([w.HTML(WRAP_CSS), self.router, self.topbar, self.main],
                           _dom_classes=("sopcoach-app", "sopcoach-learner-app"))
        shared_parts()  # part of the page, not of a view
        #: The page's own widgets; every other widget belongs to a view and is closed with it.
        self._chrome = set(widget_registry())

    # -- identity ---------------------------------------------------------------------------
    def _identify(self) -> str | None:
        if not self._identified:
            src = self._learner_source
            self.learner_id = src() if callable(src) else src
            self._identified = True
        return self.learner_id

    # -- navigation --------------------------------------------------------------------------
    @safe
    def on_navigate(self, path: str, lang: str, kind: str = "") -> None:
        """Show the view at ``path`` in ``lang`` (as reported by the browser)."""
        self.open(path, lang, push=False)

    def say(self, text: str, level: str = "info") -> None:  # for @safe
        self.main.children = (w.HTML(f'<div class="sopcoach-msg-{level}">{esc(text)}</div>'),)

    def open(self, path: str, lang: str = "", push: bool = False) -> None:
        """Build and show the view at ``path``; unknown paths show the home view."""
        lang = lang if lang in LANGS else current_lang()
        self.lang = lang
        self.router.lang = lang
        learner = self._identify()
        inst = self._inst_loader()
        path = (path or "").strip("/")
        nav = Navigator(self.base + APP_PREFIX, inst.playbook.lessons)
        if learner is None:
            self._close_view()
            login = self.base + "login" + (f"?lang={lang}" if lang != "zh-CN" else "")
            self.topbar.value = ""
            self.main.children = (w.HTML(t(
                f"<p class='sopcoach-signed-out'>您的登录已结束，请<a href='{esc(login)}'>重新登录</a>。</p>",
                f"<p class='sopcoach-signed-out'>Your sign-in has ended; please <a href='{esc(login)}'>sign in again</a>.</p>",
                lang)),)
            return
        self._close_view()
        view, route, title = self._build(inst, nav, path, lang, learner)
        self.view, self.path = view, route
        other = "en" if lang == "zh-CN" else "zh-CN"
        self.topbar.value = (
            f"{nav.link('', t('学习中心', 'Learning centre', lang), 'sopcoach-home-top', lang)}"
            f"<a class='sopcoach-lang' data-view href='{esc(nav.href(route, other))}'>{'English' if other == 'en' else '中文'}</a>"
            f"<a class='sopcoach-sign-out' href='{esc(self.base + 'logout' + ('?lang=en' if lang == 'en' else ''))}'>"
            f"{esc(t('退出登录', 'Sign out', lang))}</a>")
        self.main.children = (view.root,)
        self.router.show_address(route, lang if lang != current_lang() else "", title, push=push)

    def _build(self, inst: Installation, nav: Navigator, path: str, lang: str, learner: str) -> tuple[Any, str, str]:
        view: Any  # one of the pages (ExamApp, RecertificationApp, LessonApp, HomeApp)
        sop = inst.playbook.sop.name.get(lang)
        if path == "exam":
            gate = lesson_gate(inst) if inst.blueprint.require_lessons else None
            view = ExamApp(inst, lang=lang, clock=self.clock, learner_id=learner, lesson_gate=gate,
                           start_timer=self.start_timer, nav=nav)
            return view, "exam", f"{t('认证考试', 'Certification exam', lang)} · {sop}"
        if path == "recertification":
            from .recert_app import RecertificationApp  # noqa: PLC0415 - start-up: the release history (authoring.versions), only for a learner due to re-certify
            view = RecertificationApp(inst, lang=lang, clock=self.clock, learner_id=learner,
                                      start_timer=self.start_timer, nav=nav)
            return view, "recertification", f"{t('复认证', 'Recertification', lang)} · {sop}"
        m = _LESSON_ROUTE.match(path)
        if m and any(x.id == m.group(1) for x in inst.playbook.lessons):
            view = LessonApp(inst, m.group(1), lang=lang, clock=self.clock, learner_id=learner, nav=nav)
            return view, path, f"{view.lesson.title.get(lang)} · {sop}"
        view = HomeApp(inst, lang=lang, clock=self.clock, learner_id=learner, nav=nav)
        return view, "", f"{t('学习中心', 'Learning centre', lang)} · {sop}"

    def _close_view(self) -> None:
        """Stop the current view's timers and close every widget it made (layouts and styles too)."""
        old = self.view
        self.view = None
        if old is not None:
            stop = getattr(old, "close", None) or getattr(old, "_stop_timer", None)
            if callable(stop):
                try:
                    stop()
                except Exception:
                    log.exception("closing the previous view failed")
        self.main.children = ()
        registry = widget_registry()
        for model_id in [k for k in registry if k not in self._chrome]:
            widget = registry.get(model_id)
            if widget is not None:
                widget.close()


def widget_registry() -> dict:
    """Return ipywidgets' registry of live widgets (model id -> widget) of this kernel."""
    return _instances


def learner_app() -> w.Widget:
    """Build the learner page for this kernel and return its root widget (display it).

    The learner is the one the learner server bound this kernel to (read when the page reports its
    address, i.e. after the server handed the page out), or ``JUPYTERHUB_USER`` behind JupyterHub.
    When the content does not load, the page says so briefly and the details go to the server log.
    """
    log_to_server()
    try:
        return build_learner_app().root
    except SchemaMismatch as exc:
        log.error("%s", exc)
        return w.HTML(t("<p>学习中心暂不可用：记录数据库需要管理员升级，请联系培训负责人。</p>",
                        "<p>The learning centre is unavailable: the records database needs an upgrade by the administrator. "
                        "Please tell your trainer.</p>"))
    except Exception:
        log.exception("sopcoach content failed to load")
        return w.HTML(t("<p>学习中心暂不可用：内容文件有错误，请联系培训负责人。</p>",
                        "<p>The learning centre is unavailable: the content files have errors. Please contact your trainer.</p>"))


def build_learner_app() -> LearnerApp:
    """Return the :class:`LearnerApp` of this kernel (see :func:`learner_app`).

    Raises
    ------
    ContentError
        When the content does not load.
    """
    base = os.environ.get("VOILA_BASE_URL") or "/"
    hub_user = os.environ.get("JUPYTERHUB_USER")

    def who() -> str | None:
        inst = installation()
        if hub_user:
            return inst.records.hub_learner(hub_user).id
        kernel_id = page_kernel_id()
        learner = inst.records.page_owner(kernel_id) if kernel_id else None
        if learner is None:
            log.info("page kernel %s is bound to no live session", kernel_id)
        return learner

    installation().practice()  # loaded before the learner arrives (a preheated kernel does it early)
    return LearnerApp(lambda: installation(), who, base=base)
