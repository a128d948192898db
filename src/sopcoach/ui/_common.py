"""Helpers shared by the apps: a safe-callback decorator, server-side logging, small HTML bits."""
from __future__ import annotations

import base64
import functools
import html
import io
import logging
import math
import os
import sys
from typing import Any
from collections.abc import Callable, Sequence

import ipywidgets as w
import traitlets
from IPython import get_ipython
from ipywidgets.widgets.widget_bool import CheckboxStyle, ToggleButtonStyle
from ipywidgets.widgets.widget_description import DescriptionStyle
from ipywidgets.widgets.widget_int import ProgressStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ..errors import ContentError, DatabaseBusy, RecordsError, SchemaMismatch, SopcoachError
from ..i18n import page_lang, t, zh_html

log = logging.getLogger("sopcoach.ui")


def log_to_server() -> None:
    """Send the ``sopcoach.ui`` log (and the comm layer's, :data:`COMM_LOGGERS`) to the server's log, and
    keep errors in widget messages off the page (:func:`keep_comm_errors_off_the_page`), once per
    process; the page builders call it.

    In a kernel ``sys.stderr``, and file descriptor 2 itself, are forwarded to the page; the
    process's original stderr (:func:`_server_stream`) is the Voila server's log, where tracebacks
    belong (shared case 29).
    Importing :mod:`sopcoach.ui` configures nothing.
    """
    if log.handlers:
        return
    handler = logging.StreamHandler(_server_stream())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for logger in (log, *(logging.getLogger(name) for name in COMM_LOGGERS)):
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    keep_comm_errors_off_the_page()


def _server_stream() -> Any:
    """Return the stream of the server's log: the process's real stderr.

    ipykernel (``capture_fd_output``, on by default) also forwards what is written to file
    descriptor 2 to the page; it keeps a copy of the original descriptor, which is the server's log
    alone, and its own log writes there. So does this one.
    """
    original = getattr(sys.stderr, "_original_stdstream_copy", None)
    if original is None:
        return sys.__stderr__
    return io.TextIOWrapper(io.FileIO(os.dup(original), "w"), line_buffering=True)


#: The comm layer's loggers (the ``comm`` package, ipykernel's comm manager). Without a handler of
#: their own their warnings and tracebacks go to ``sys.stderr``, which a kernel forwards to the page;
#: :func:`log_to_server` sends them to the server's log.
COMM_LOGGERS = ("Comm", "ipykernel.comm")
#: The kernel message types whose handling :func:`keep_comm_errors_off_the_page` guards.
COMM_MESSAGES = ("comm_open", "comm_msg", "comm_close")


def keep_comm_errors_off_the_page() -> None:
    """In a kernel, send an error raised while a widget message is handled to the server log only.

    A malformed or forged widget message (a state that fails a trait's validation, an unknown
    method, a ``custom`` message a widget cannot take) makes ipywidgets call the shell's
    ``showtraceback``, which sends the whole traceback, with the install paths, to the page as an
    IOPub ``error`` message. This wraps the kernel's ``comm_open``/``comm_msg``/``comm_close``
    handlers: while one runs, ``showtraceback`` logs the traceback to :data:`log` (the server's log)
    and sends nothing, and an error escaping the handler is logged the same way. The page keeps
    working: the message is dropped, the widgets keep their state. Code run in cells still reports
    its errors as before. Does nothing outside an IPython kernel, or when already done.
    """
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if shell is None or kernel is None or getattr(kernel, "_sopcoach_comm_guard", False):
        return
    handling = [0]
    show = shell.showtraceback

    def showtraceback(*args: Any, **kwargs: Any) -> None:
        if handling[0]:
            log.error("a widget message failed (not shown to the page)", exc_info=sys.exc_info())
            return
        show(*args, **kwargs)

    def guard(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            handling[0] += 1
            try:
                return handler(*args, **kwargs)
            except Exception:
                log.exception("a widget message failed (not shown to the page)")
                return None
            finally:
                handling[0] -= 1
        return run

    shell.showtraceback = showtraceback
    for msg_type in COMM_MESSAGES:
        if msg_type in kernel.shell_handlers:
            kernel.shell_handlers[msg_type] = guard(kernel.shell_handlers[msg_type])
    kernel._sopcoach_comm_guard = True


def esc(text: Any) -> str:
    """Escape text for an HTML widget, keeping line breaks."""
    return html.escape(str(text)).replace("\n", "<br>")


def download_link(data: bytes, filename: str, label: str, mime: str) -> str:
    """Return an HTML link that downloads ``data`` as ``filename`` (the file is inside the link, a
    ``data:`` URL, so no server route serves it; ``mime`` e.g. ``application/pdf``)."""
    b64 = base64.b64encode(data).decode("ascii")
    return (f"<a class='download' download='{esc(filename)}' "
            f"href='data:{mime};base64,{b64}'>{esc(label)}</a>")


#: What a callback's unexpected failure says in the page, unless the app has its own ``failure_text``.
FAILURE_TEXT = ("出错了，请重试。已保存的答案不会丢失。", "Something went wrong; please try again. Your saved answers are kept.")
#: What a learner is told when the records database is at another schema revision (never "busy":
#: trying again does not help; the administrator runs `sopcoach db upgrade`).
SCHEMA_TEXT = ("记录数据库需要管理员升级，答案未保存，请联系培训负责人。",
               "The records database needs an upgrade by the administrator; nothing was saved. Please tell your trainer.")


def database_refusal(exc: RecordsError, lang: str | None) -> str:
    """Return the learner-facing text for a records error: a schema to upgrade (:data:`SCHEMA_TEXT`),
    busy (try again) or another database error (try again, then tell the trainer); the error's own
    line goes to the server log, not the page."""
    if isinstance(exc, SchemaMismatch):
        return t(*SCHEMA_TEXT, lang)
    if isinstance(exc, DatabaseBusy):
        return t("数据库繁忙，刚才的操作没有保存，请再试一次。", "The database is busy; that was not saved. Please try again.", lang)
    return t("数据库出错，刚才的操作没有保存。请再试一次；如仍出错，请联系培训负责人。",
             "A database error stopped that; it was not saved. Please try again, and tell your trainer if it persists.", lang)


def safe(method: Callable) -> Callable:
    """Wrap a widget callback: errors become a short message in the app, details go to the log.

    The one error guard of every sopcoach page. The app (``self``) shows messages with
    ``say(text, level)``, ``text`` plain (the app escapes it). A ``ContentError`` shows its first 30
    problems, a ``RecordsError`` :func:`database_refusal`'s words (its own line goes to the log),
    another ``SopcoachError`` (a refused action) its own message; anything else shows
    the app's ``failure_text`` (zh-CN, en), default :data:`FAILURE_TEXT`, and logs the traceback
    on the server, never in the page (shared case 29). When the app has ``callback_done()``, it
    runs after every callback, failed or not (e.g. to enable the buttons again).
    """
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ContentError as exc:
            log.info("content problem in %s: %s", method.__name__, exc)
            self.say("\n".join(str(p) for p in exc.problems[:30]), "warning")
        except SchemaMismatch as exc:
            log.error("%s", exc)
            self.say(t(*SCHEMA_TEXT, getattr(self, "lang", None)), "danger")
        except RecordsError as exc:  # the database's own line goes to the log, the page says it in words
            log.warning("database error in %s: %s", method.__name__, exc)
            self.say(database_refusal(exc, getattr(self, "lang", None)), "warning")
        except SopcoachError as exc:
            log.info("refused in %s: %s", method.__name__, exc)
            self.say(str(exc), "warning")
        except Exception:
            log.exception("callback %s failed", method.__name__)
            zh, en = getattr(self, "failure_text", FAILURE_TEXT)
            self.say(t(zh, en, getattr(self, "lang", None)), "danger")
        finally:
            done = getattr(self, "callback_done", None)
            if callable(done):
                done()
        return None
    return wrapper


_SHARED: dict[str | tuple[Any, ...], Any] = {}


def shared_html_parts() -> tuple[Any, Any]:
    """Return the one Layout and one HTMLStyle that every :func:`html_widget` shares.

    Each widget model costs the page a message and the kernel an object; an HTML widget brings a
    Layout and a style of its own, so sharing them cuts a lesson view's models by about half.
    They are made on first use inside the kernel (the learner app makes them before its first
    view) and must never be changed.
    """
    if "layout" not in _SHARED or _SHARED["layout"].comm is None:
        _SHARED["layout"], _SHARED["style"] = w.Layout(), HTMLStyle()
    return _SHARED["layout"], _SHARED["style"]


def shared_layout(**props: str) -> Any:
    """Return the page's one ``Layout`` with exactly ``props`` (e.g. ``width="auto"``); never change it.

    Like :func:`shared_html_parts`: a widget given a shared layout costs the page one model, not
    two. Give a widget its own ``Layout`` when code changes it later (``layout.display = "none"``).
    """
    key = ("layout", tuple(sorted(props.items())))
    if not props:
        return shared_html_parts()[0]
    if key not in _SHARED or _SHARED[key].comm is None:
        _SHARED[key] = w.Layout(**props)
    return _SHARED[key]


def shared_style(cls: type, **props: str) -> Any:
    """Return the page's one style of class ``cls`` (``ButtonStyle``, ``CheckboxStyle``...) with ``props``; never change it."""
    key = (cls, tuple(sorted(props.items())))
    if key not in _SHARED or _SHARED[key].comm is None:
        _SHARED[key] = cls(**props)
    return _SHARED[key]


def shared_parts() -> None:
    """Make the layouts and styles the learner views share, before the first view (they belong to the page)."""
    shared_html_parts()
    shared_layout(width="auto")
    for cls in (w.ButtonStyle, CheckboxStyle, DescriptionStyle, ProgressStyle, ToggleButtonStyle):
        shared_style(cls)


def button(description: str, classes: Sequence[str] = (), **kwargs: Any) -> Any:
    """Return a ``Button`` with the shared layout and style unless ``layout``/``style`` are given.

    ``classes`` are its CSS classes, sent with the widget (``add_class`` afterwards costs a message each).
    """
    kwargs.setdefault("layout", shared_layout())
    kwargs.setdefault("style", shared_style(w.ButtonStyle))
    return w.Button(description=description, _dom_classes=tuple(classes), **kwargs)


def vbox(children: Any = (), classes: Sequence[str] = (), **kwargs: Any) -> Any:
    """Return a ``VBox`` of ``children`` with CSS ``classes`` and the shared layout unless ``layout`` is given."""
    kwargs.setdefault("layout", shared_layout())
    return w.VBox(list(children), _dom_classes=tuple(classes), **kwargs)


def hbox(children: Any = (), classes: Sequence[str] = (), **kwargs: Any) -> Any:
    """Return an ``HBox`` of ``children`` with CSS ``classes`` and the shared layout unless ``layout`` is given."""
    kwargs.setdefault("layout", shared_layout())
    return w.HBox(list(children), _dom_classes=tuple(classes), **kwargs)


class ChineseHTML(w.HTML):
    """An HTML widget of a Chinese learner page: its text, whatever sets it, is shown with
    full-width punctuation next to Chinese (:func:`sopcoach.i18n.zh_html`; tags are left alone)."""

    @traitlets.validate("value")
    def _full_width(self, proposal: Any) -> str:
        return zh_html(proposal["value"])


def html_widget(value: str = "", classes: Sequence[str] = (), lang: str | None = None, **kwargs: Any) -> Any:
    """Return an HTML widget showing ``value``, with CSS ``classes`` and the shared layout and style (pass no ``layout``/``style``).

    ``lang``: the learner page's language; a Chinese page's widget keeps its punctuation
    full-width (:class:`ChineseHTML`). ``None`` (trainer pages): the text as given.
    """
    layout, style = shared_html_parts()
    return html_class(lang)(value, layout=layout, style=style, _dom_classes=tuple(classes), **kwargs)


def html_class(lang: str | None) -> type:
    """The HTML widget class of a page in ``lang``: :class:`ChineseHTML` on a Chinese page, ``ipywidgets.HTML``
    on an English one or when no language is given."""
    return ChineseHTML if lang is not None and lang != "en" else w.HTML


class WholeNumberBox:
    """A number box for a whole number in ``[low, high]`` that keeps what is typed or refuses it.

    ipywidgets' ``IntText`` drops a typed ``.`` in the browser, so ``2.5`` arrives as 25 and is
    computed with as if typed. This box is a ``FloatText`` (the browser keeps ``2.5``); :meth:`read`
    gives the whole number, or ``None`` after showing next to the box, in the page's language, why
    the value was refused (not whole, or out of range). A tool computes nothing from a ``None``.

    Parameters
    ----------
    value : int
        The first value shown, in ``[low, high]``.
    low, high : int
        The smallest and largest value accepted (inclusive).
    description : str
        The box's label (already in the page's language).
    lang : {"zh-CN", "en"}
        The language of the refusal.
    classes : sequence of str
        CSS classes of the box (sent with the widget).
    **kwargs
        ``layout`` and ``style`` of the ``FloatText`` (default: the page's shared layout).

    Attributes
    ----------
    box : ipywidgets.FloatText
        The input; :meth:`watch` calls a handler when its ``value`` changes.
    note : ipywidgets.HTML
        The refusal shown next to the box (empty while the value is accepted).
    root : ipywidgets.HBox
        ``box`` and ``note`` side by side: the widget to place on the page.
    """

    def __init__(self, value: int, low: int, high: int, description: str, lang: str | None,
                 classes: Sequence[str] = (), **kwargs: Any):
        kwargs.setdefault("layout", shared_layout())
        self.low, self.high, self.lang = low, high, lang
        self.box = w.FloatText(value=value, description=description, _dom_classes=tuple(classes), **kwargs)
        self.note = html_widget(classes=("sopcoach-box-refusal",))
        self.root = hbox([self.box, self.note])

    def watch(self, handler: Callable[..., Any]) -> None:
        """Call ``handler`` whenever the box's value changes (``names="value"``)."""
        self.box.observe(handler, names="value")

    @property
    def value(self) -> float:
        """What is in the box, as the browser sent it (a float, perhaps not whole)."""
        return self.box.value

    @value.setter
    def value(self, v: float) -> None:
        self.box.value = v

    def read(self) -> int | None:
        """Return the box's whole number; ``None`` when it is refused (the note says why)."""
        v = self.box.value
        shown = f"{v:f}".rstrip("0").rstrip(".") if isinstance(v, float) and math.isfinite(v) else str(v)
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v):
            text = t(f"请输入整数（收到 {shown}），未据此计算。",
                     f"Type a whole number (got {shown}); nothing was computed from it.", self.lang)
        elif not self.low <= v <= self.high:
            text = t(f"请输入 {self.low:,} 到 {self.high:,} 之间的整数（收到 {shown}），未据此计算。",
                     f"Type a whole number from {self.low:,} to {self.high:,} (got {shown}); nothing was "
                     "computed from it.", self.lang)
        else:
            self.note.value = ""
            return int(v)
        self.note.value = f'<span class="sopcoach-msg-warning">{esc(text)}</span>'
        return None


def trainer_page(page: w.Widget, lang: str) -> w.Widget:
    """Return a trainer page's widget under its top line: the trainer home and this page in the other language.

    The language link reloads the page with ``?lang=`` (see :func:`sopcoach.i18n.page_lang`); the
    home link leads from ``voila/render/<folder>/<page>.ipynb`` to the server's ``/``.
    """
    other = "en" if lang == "zh-CN" else "zh-CN"
    top = w.HTML(f"<div class='sopcoach-page-top' style='display:flex;justify-content:space-between;margin-bottom:6px'>"
                 f"<a class='sopcoach-trainer-home' href='../../../{'?lang=en' if lang == 'en' else ''}'>"
                 f"{esc(t('← 培训师主页', '← Trainer home', lang))}</a>"
                 f"<a class='sopcoach-lang-switch' href='?lang={other}'>{'English' if lang == 'zh-CN' else '中文'}</a></div>")
    return w.VBox([top, page])


def editor_root(make: Callable[[], Any], what: str, lang: str | None = None) -> w.Widget:
    """Return ``make().root`` (a trainer editor app's widget), or a message saying why it cannot open.

    The one opener of the trainer editors' notebooks: a refusal (:class:`SopcoachError`, e.g. no
    content folder) shows its own message, any other error a short text; details go to the server log.
    """
    log_to_server()
    lang = lang or page_lang()
    try:
        return trainer_page(make().root, lang)
    except SopcoachError as exc:
        log.info("%s refused: %s", what, exc)
        return w.HTML(f"<div class='sopcoach-msg-danger'>{esc(exc)}</div>")
    except Exception:
        log.exception("%s failed to open", what)
        return w.HTML(f"<div class='sopcoach-msg-danger'>{esc(t('编辑器无法打开,详情见服务器日志。', 'The editor could not open; see the server log.', lang))}</div>")
