"""The learner page's router: the view in the address, in-app links, and the connection banner.

:class:`Router` is an `anywidget <https://anywidget.dev>`_ with no visible part. Its JavaScript
(``static/router.js``) reports the page's address to the kernel when the page loads, when an
in-app link (``<a data-view href=...>``) is clicked and on Back/Forward; the kernel answers with
the address of the view it shows (``replace`` on load and history, ``push`` for a switch the
kernel made itself). It pings the kernel every 5 s; without an answer for 20 s it shows a banner
saying that saved answers are safe and how to continue, and dims the page so that nothing is typed
into a page that cannot save it.

Nothing the browser sends here decides who the learner is or what they may do: a ``navigate``
message only asks for a view, which the app then shows or refuses like any other request.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Callable

import anywidget
import traitlets

_STATIC = Path(__file__).with_name("static")

#: The longest path or language accepted from the browser (characters).
MAX_PATH = 200


class Router(anywidget.AnyWidget):
    """Address bar and connection watch of the learner page (see the module docstring).

    Parameters
    ----------
    base : str
        The app's address prefix, e.g. ``/learn/``.
    lang : str
        Language of the banner (``zh-CN`` or ``en``).
    """

    _esm = _STATIC / "router.js"
    _css = _STATIC / "router.css"
    base = traitlets.Unicode("/learn/").tag(sync=True)
    lang = traitlets.Unicode("zh-CN").tag(sync=True)

    def __init__(self, base: str = "/learn/", lang: str = "zh-CN", **kwargs: Any):
        super().__init__(base=base, lang=lang, **kwargs)
        self._navigate: Callable[[str, str, str], None] | None = None
        self.on_msg(self._on_msg)

    def on_navigate(self, callback: Callable[[str, str, str], None]) -> None:
        """Call ``callback(path, lang, kind)`` when the browser reports an address."""
        self._navigate = callback

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "ping":
            self.send({"type": "pong"})
        elif kind == "navigate" and self._navigate is not None:
            path, lang, how = content.get("path"), content.get("lang"), content.get("kind")
            if not isinstance(path, str) or not isinstance(lang, str) or len(path) > MAX_PATH or len(lang) > 10:
                return
            self._navigate(path, lang, how if isinstance(how, str) else "")

    def show_address(self, path: str, lang: str = "", title: str = "", push: bool = False) -> None:
        """Put ``path`` (below ``base``) and ``?lang=`` into the address bar."""
        self.send({"type": "address", "path": path, "lang": lang, "title": title, "push": push})
