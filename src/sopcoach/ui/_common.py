"""Helpers shared by the apps: a safe-callback decorator, server-side logging, small HTML bits."""
from __future__ import annotations

import functools
import html
import json
import logging
import sys
from typing import Any, Callable

import ipywidgets as w

from ..errors import AuthError, SopcoachError
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


def address_bar() -> w.Output:
    """Return the (invisible) output that :func:`remember_session` writes its script into."""
    out = w.Output(layout=w.Layout(display="none"))
    out.add_class("sopcoach-address")
    return out


def remember_session(out: w.Output, token: str | None) -> None:
    """Put the signed session token into the page's address after a sign-in.

    ``history.replaceState`` changes the address bar only (no request, no new history entry), so a
    reload or the browser's Back button brings the learner back signed in, as the links between
    pages already do. The token is the one the links carry (learner id, expiry, MAC), never a key.
    """
    if not token:
        return
    script = ("(function(){var s=new URLSearchParams(%s).get('session');var u=new URL(window.location.href);"
              "u.searchParams.set('session',s);history.replaceState(history.state,'',u.toString());})();"
              % json.dumps(f"session={token}"))
    from IPython.display import Javascript, display
    out.clear_output()
    with out:
        display(Javascript(script))


def check_sign_in(page: Any, refuse: Callable[[AuthError], None]) -> Any | None:
    """Check a page's sign-in form (employee id, access code) once; return the learner or None.

    ``page`` has ``inst``, ``clock``, ``id_box``, ``code_box``, ``sign_in_button`` and ``_busy``.
    The button is disabled while the check runs (a double click does not count twice); the code
    box is emptied whatever the outcome; a refusal goes to ``refuse``.
    """
    page._busy = True
    page.sign_in_button.disabled = True
    try:
        return page.inst.records.authenticate(page.id_box.value, page.code_box.value, page.clock())
    except AuthError as exc:
        refuse(exc)
        return None
    finally:
        page._busy = False
        page.sign_in_button.disabled = False
        page.code_box.value = ""
