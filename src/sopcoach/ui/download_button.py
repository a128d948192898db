"""A button that downloads a file the kernel makes when it is clicked: one click, no second link.

:class:`DownloadButton` is an `anywidget <https://anywidget.dev>`_ (its JavaScript is
``static/download.js``, served by Voila from anywidget's own labextension; nothing is fetched from
elsewhere). A click asks the kernel for the file; the kernel calls the app's maker, which returns
``(data, filename, mime)`` (or None when it refused, having said why on the page), and sends the
bytes back as one binary buffer; the browser saves them under ``filename`` (a ``Blob`` behind a
temporary object URL, released after the save starts). While the kernel works the button says so
and takes no second click.

The protocol (browser -> kernel, nothing from the browser is trusted): ``{"type": "want"}``. The
kernel answers ``{"type": "file", "name": str, "mime": str}`` with the bytes as the one buffer, or
``{"type": "failed"}``. A ``want`` while the button is disabled, or while a file is being made, is
answered ``failed`` and makes nothing (a forged message starts no work the page did not offer).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ._common import log

_STATIC = Path(__file__).with_name("static")

#: What a maker returns: the file's bytes, its name and its MIME type; None when it refused (and said why).
Made = tuple[bytes, str, str] | None


class DownloadButton(anywidget.AnyWidget):
    """A button whose click downloads the file ``make()`` returns (see the module docstring).

    Parameters
    ----------
    description : str
        The button's text (in the page's language).
    make : callable
        ``make() -> (data: bytes, filename: str, mime: str) | None``; called in the kernel on each
        click. It reports its own refusals on the page (e.g. an app method wrapped in ``safe``) and
        returns None then.
    busy_text : str
        What the button says while the file is being made.
    icon : str
        A Font Awesome 4 icon name (``download``, ``file-text``, ``table``).
    """

    _esm = _STATIC / "download.js"
    description = traitlets.Unicode("").tag(sync=True)
    busy_text = traitlets.Unicode("").tag(sync=True)
    icon = traitlets.Unicode("download").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, description: str, make: Callable[[], Made], *, busy_text: str = "", icon: str = "download",
                 **kwargs: Any) -> None:
        super().__init__(description=description, busy_text=busy_text or description, icon=icon, **kwargs)
        self._make = make
        self._making = False
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "want":
            self.request()

    def request(self) -> None:
        """Do what a click asks: make the file and send it to the browser (or answer ``failed``)."""
        if self.disabled or self._making:
            self.send({"type": "failed"})
            return
        self._making = True
        made: Made = None
        try:
            made = self._make()
        except Exception:  # a maker not wrapped in safe: the page is told nothing new, the log has it
            log.exception("making the download of %r failed", self.description)
        finally:
            self._making = False
        if made is None:
            self.send({"type": "failed"})
            return
        data, name, mime = made
        self.send({"type": "file", "name": name, "mime": mime}, [data])
