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
