"""The one-click download button without a browser: a click's message makes the file and sends its bytes; a
refusal, a failure, a disabled button or a second click while one is being made sends no file."""
from __future__ import annotations

import pytest

from sopcoach.ui.download_button import DownloadButton


def _click(button: DownloadButton) -> list[tuple[dict, list | None]]:
    """Deliver the browser's ``want`` message as the comm would; return what the kernel sent back."""
    sent: list[tuple[dict, list | None]] = []
    button.send = lambda content, buffers=None: sent.append((content, buffers))  # type: ignore[method-assign]
    button._handle_custom_msg({"type": "want"}, [])
    return sent


def test_a_click_sends_the_made_file_as_one_buffer():
    calls = []
    button = DownloadButton("下载", lambda: calls.append(1) or (b"\x00PK\xff", "表.xlsx", "application/x-test"))
    assert _click(button) == [({"type": "file", "name": "表.xlsx", "mime": "application/x-test"}, [b"\x00PK\xff"])]
    assert _click(button)[0][0]["type"] == "file" and calls == [1, 1]  # each click makes the file afresh


@pytest.mark.parametrize("make", [lambda: None, lambda: 1 / 0], ids=["refused", "failed"])
def test_a_refused_or_failed_maker_sends_no_file(make):
    assert _click(DownloadButton("下载", make)) == [({"type": "failed"}, None)]


def test_a_forged_click_on_a_disabled_button_makes_nothing():
    calls = []
    button = DownloadButton("下载", lambda: calls.append(1) or (b"x", "a.html", "text/html"), disabled=True)
    assert _click(button) == [({"type": "failed"}, None)] and calls == []


def test_a_click_while_the_file_is_being_made_makes_nothing_more():
    sent: list = []
    made = []

    def make():
        button._handle_custom_msg({"type": "want"}, [])  # a second message arrives while the first is being made
        made.append(1)
        return b"x", "a.html", "text/html"
    button = DownloadButton("下载", make)
    button.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    button._handle_custom_msg({"type": "want"}, [])
    assert [c["type"] for c in sent] == ["failed", "file"] and made == [1]


def test_other_messages_are_ignored():
    button = DownloadButton("下载", lambda: (b"x", "a.html", "text/html"))
    sent: list = []
    button.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    for content in ({"type": "file"}, {"no": "type"}, "want", None):
        button._handle_custom_msg(content, [])
    assert sent == []
