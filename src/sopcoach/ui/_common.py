"""Helpers shared by the apps: a safe-callback decorator, server-side logging, small HTML bits."""
from __future__ import annotations

import functools
import html
import logging
import sys
from typing import Any, Callable


from ..errors import SopcoachError
from ..i18n import t

log = logging.getLogger("sopcoach.ui")
if not log.handlers:
    # The kernel's sys.stderr is forwarded to the page; the process's real stderr is the server log.
    _handler = logging.StreamHandler(sys.__stderr__)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def esc(text: Any) -> str:
    """Escape text for an HTML widget, keeping line breaks."""
    return html.escape(str(text)).replace("\n", "<br>")


def safe(method: Callable) -> Callable:
    """Wrap a widget callback: errors become a short message in the app, details go to the log.

    A ``SopcoachError`` (a refused action) shows its own message; anything else shows a generic
    message and logs the traceback on the server, never in the page (shared case 29).
    """
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except SopcoachError as exc:
            log.info("refused in %s: %s", method.__name__, exc)
            self.say(str(exc), "warning")
        except Exception:  # noqa: BLE001 - a callback must never leak a traceback to the page
            log.exception("callback %s failed", method.__name__)
            self.say(t("出错了，请重试。已保存的答案不会丢失。",
                       "Something went wrong; please try again. Your saved answers are kept.",
                       getattr(self, "lang", None)), "danger")
    return wrapper


_SHARED: dict[str, Any] = {}


def shared_html_parts() -> tuple[Any, Any]:
    """Return the one Layout and one HTMLStyle that every :func:`html_widget` shares.

    Each widget model costs the page a message and the kernel an object; an HTML widget brings a
    Layout and a style of its own, so sharing them cuts a lesson view's models by about half.
    They are made on first use inside the kernel (the learner app makes them before its first
    view) and must never be changed.
    """
    import ipywidgets as w
    if "layout" not in _SHARED or _SHARED["layout"].comm is None:
        from ipywidgets.widgets.widget_string import HTMLStyle
        _SHARED["layout"], _SHARED["style"] = w.Layout(), HTMLStyle()
    return _SHARED["layout"], _SHARED["style"]


def html_widget(value: str = "", **kwargs: Any) -> Any:
    """Return an HTML widget with the shared layout and style (pass no ``layout``/``style``)."""
    import ipywidgets as w
    layout, style = shared_html_parts()
    return w.HTML(value, layout=layout, style=style, **kwargs)
