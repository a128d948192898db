"""The one error guard of every sopcoach page (``sopcoach.ui._common.safe``) and where the ui log goes."""
from __future__ import annotations

import subprocess
import sys

from sopcoach.errors import AuthError, ContentError, Problem
from sopcoach.ui import review_app, trainer_app
from sopcoach.ui._common import FAILURE_TEXT, safe


class _App:
    lang = "en"

    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []
        self.done = 0

    def say(self, text: str, level: str = "info") -> None:
        self.said.append((level, text))

    def callback_done(self) -> None:
        self.done += 1

    @safe
    def refuse(self) -> None:
        raise AuthError("not yours to start")

    @safe
    def bad_content(self) -> None:
        raise ContentError([Problem("playbook/sla.yaml", 3, 5, "hours", "must be a number")])

    @safe
    def crash(self) -> None:
        raise RuntimeError("secret path /srv/x")

    @safe
    def works(self) -> int:
        return 7


def test_guard_says_refusals_content_problems_and_hides_failures(caplog):
    app = _App()
    assert app.works() == 7
    app.refuse()
    app.bad_content()
    app.crash()
    levels = [level for level, _ in app.said]
    assert levels == ["warning", "warning", "danger"]
    assert app.said[0][1] == "not yours to start"
    assert "sla.yaml" in app.said[1][1] and "must be a number" in app.said[1][1]
    assert app.said[2][1] == FAILURE_TEXT[1] and "secret" not in app.said[2][1]
    assert "secret path" in caplog.text  # the details go to the server log
    assert app.done == 4  # after every callback, failed or not


def test_an_app_names_its_own_failure_text():
    class Review(_App):
        failure_text = ("坏了", "Check the export")

    app = Review()
    app.crash()
    assert app.said == [("danger", "Check the export")]


def test_trainer_and_review_pages_use_the_one_guard():
    assert trainer_app.safe is safe and review_app.safe is safe
    assert not hasattr(trainer_app, "_safe") and not hasattr(review_app, "_safe")


def test_importing_the_ui_configures_no_logging():
    """Importing sopcoach.ui adds no handler; a page builder sends the ui log to the process's stderr once."""
    code = ("import logging, sopcoach.ui as ui, sopcoach.ui._common as c\n"
            "log = logging.getLogger('sopcoach.ui')\n"
            "print(len(log.handlers), log.propagate)\n"
            "c.log_to_server(); c.log_to_server()\n"
            "print(len(log.handlers), log.propagate)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["0 True", "1 False"]
