"""Fixtures for the browser tests: learner servers, headless Chromium and a page per test.

``learner_server`` starts learner servers (:mod:`learner_servers`, the one place the tests start
one: sign-in at the door, one page per learner) and stops them after the test. Signing in is in
:mod:`support` (``sign_in_browser`` through the real sign-in page, ``sign_in_session`` over HTTP).

Every test collected below this folder gets the ``e2e`` mark, so ``pytest -m e2e`` runs the whole
folder and ``pytest -m "not e2e"`` leaves it out.

Chromium is Debian's ``/usr/bin/chromium`` (Playwright's own browser download does not work
here); ``make test`` installs it. Pages may only talk to the loopback servers: any other request
is aborted (nothing may download at run time) and reported as a warning.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from learner_servers import LearnerServers
from support import CHROMIUM, CHROMIUM_ARGS, NOT_LOOPBACK

_E2E_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the real Voila app in headless Chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def learner_server(tmp_path: Path) -> Iterator[LearnerServers]:
    """Factory ``start(root=notebooks/learner, env=None, *, learners=, code=, **options) -> LearnerServer``
    (:class:`learner_servers.LearnerServers`): learner servers stopped by pid after the test."""
    with LearnerServers(tmp_path) as servers:
        yield servers


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright, shared by the session."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: run `make test`, which installs chromium and "
            "fonts-noto-cjk before running the suite."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the item, so fixtures can tell at teardown that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _artifact_folder(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    folder = Path(request.config.rootpath) / "test-artifacts" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Contexts:
    """Browser contexts for one test: ``new(**options) -> context`` (default 1280x900, zh-CN).

    Each context may only reach loopback (other requests are aborted and reported as a warning).
    At teardown every page of every context is screenshotted into
    ``test-artifacts/<test>/failure-<n>.png`` when the test failed, then the contexts are closed.
    """

    def __init__(self, browser: object, request: pytest.FixtureRequest) -> None:
        self._browser = browser
        self._request = request
        self._contexts: list[object] = []
        self.blocked: list[str] = []

    def new(self, **options: object) -> object:
        options = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN", **options}
        context = self._browser.new_context(**options)  # type: ignore[attr-defined]

        def refuse(route: object) -> None:
            self.blocked.append(route.request.url)  # type: ignore[attr-defined]
            route.abort()  # type: ignore[attr-defined]

        context.route(NOT_LOOPBACK, refuse)
        self._contexts.append(context)
        return context

    def close_all(self) -> None:
        report = getattr(self._request.node, "report_call", None)
        failed = report is not None and report.failed
        shot = 0
        for context in self._contexts:
            if failed:
                for p in list(context.pages):  # type: ignore[attr-defined]
                    shot += 1
                    try:
                        p.screenshot(path=str(_artifact_folder(self._request) / f"failure-{shot}.png"),
                                     full_page=True, timeout=15_000)
                    except Exception as exc:
                        warnings.warn(f"no failure screenshot: {exc}", stacklevel=1)
            with contextlib.suppress(Exception):  # closed by the test already
                context.close()  # type: ignore[attr-defined]
        self._contexts.clear()
        if self.blocked:
            warnings.warn(f"aborted non-loopback requests: {sorted(set(self.blocked))}", stacklevel=1)


@pytest.fixture
def contexts(browser: object, request: pytest.FixtureRequest) -> Iterator[Contexts]:
    """Factory of loopback-only browser contexts (``contexts.new(**options)``), closed after the test,
    with screenshots of their pages when the test failed."""
    made = Contexts(browser, request)
    try:
        yield made
    finally:
        made.close_all()


@pytest.fixture
def page(contexts: Contexts) -> object:
    """A page in a fresh browser context (1280x900, zh-CN) that may only reach loopback.

    When the test fails, a full-page screenshot goes to ``test-artifacts/<test>/failure-1.png``.
    """
    return contexts.new().new_page()  # type: ignore[attr-defined]


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Folder ``test-artifacts/<test name>`` (below the rootdir) for screenshots."""
    return _artifact_folder(request)
