"""Fixtures for the browser tests: server factories, headless Chromium and a page per test.

``voila_server`` starts plain Voila (:func:`sopcoach.web.launch.voila_command`, what the trainer server
is built on); ``learner_server`` starts the learner server (:func:`sopcoach.web.launch.learner_command`:
sign-in at the door, one page per learner). Signing in is in :mod:`support` (``sign_in_browser``
through the real sign-in page, ``sign_in_session`` over HTTP).

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
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sopcoach.web.launch import free_port, learner_command, voila_command
from support import CHROMIUM, CHROMIUM_ARGS, LEARNER_ROOT, NOT_LOOPBACK, stop_process

START_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0
_E2E_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the real Voila app in headless Chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class VoilaServers:
    """Start Voila servers for one test and stop exactly those at teardown.

    Call the instance as ``start(root, env) -> base_url``; further keyword arguments go to
    :func:`sopcoach.web.launch.voila_command` (``pool_size=...``). ``env`` is laid over this
    process's environment; ``SOPCOACH_HOME`` defaults to a fresh folder in the test's tmp dir.

    With ``learner=True`` the learner server is started instead (keyword arguments go to
    :func:`sopcoach.web.launch.learner_command`, ``pool_size`` defaults to 1 to spare the two cores);
    it is ready when ``GET <base>login`` answers 200 (answers at all behind JupyterHub, i.e. with
    ``JUPYTERHUB_USER`` in the environment, where there is no sign-in page), and the returned base URL ends with its
    ``base_url`` (``http://127.0.0.1:PORT/``), so pages are ``f"{base}learn/"``. Plain Voila's base
    URL has no trailing slash (``f"{base}/voila/render/..."``), as before.
    """

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._procs: list[tuple[subprocess.Popen[bytes], object]] = []
        self._logs: dict[str, Path] = {}
        self._by_base: dict[str, subprocess.Popen[bytes]] = {}
        self._started = 0

    def __call__(self, root: Path, env: dict[str, str] | None = None, *, learner: bool = False,
                 **options: object) -> str:
        self._started += 1
        number = self._started
        full_env = {**os.environ, **(env or {})}
        if "SOPCOACH_HOME" not in (env or {}):
            home = self._tmp_path / f"sopcoach-home-{number}"
            home.mkdir(parents=True, exist_ok=True)
            full_env["SOPCOACH_HOME"] = str(home)
        full_env["PYTHONUNBUFFERED"] = "1"

        port = free_port()
        if learner:
            options.setdefault("pool_size", 1)
            argv = learner_command(Path(root), port=port, **options)  # type: ignore[arg-type]
            base_url = f"http://127.0.0.1:{port}{options.get('base_url', '/')}"
            probe, what = base_url + "login", "the learner server"
        else:
            argv = voila_command(Path(root), port=port, **options)  # type: ignore[arg-type]
            base_url = f"http://127.0.0.1:{port}"
            probe, what = base_url + "/", "Voila"
        log_path = self._tmp_path / f"{'learner' if learner else 'voila'}-{number}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        self._procs.append((proc, log))
        self._logs[base_url] = log_path
        self._by_base[base_url] = proc

        deadline = time.monotonic() + START_TIMEOUT
        status = None
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"{what} exited with {proc.returncode} before answering; log {log_path}:\n"
                    f"{_tail(log_path)}"
                )
            try:
                status = requests.get(probe, timeout=5, allow_redirects=False).status_code
                # behind JupyterHub (JUPYTERHUB_USER set) there is no sign-in page: any answer will do
                if not learner or status == 200 or ("JUPYTERHUB_USER" in full_env and status < 500):
                    return base_url
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what} did not answer on {probe} within {START_TIMEOUT:.0f} s (last status "
                    f"{status}); log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.2)

    def process(self, base_url: str) -> subprocess.Popen[bytes]:
        """Return the process of the server at ``base_url`` (to stop it, or to read its pid)."""
        return self._by_base[base_url]

    def log_path(self, base_url: str) -> Path:
        """Return the log file of the server at ``base_url``."""
        return self._logs[base_url]

    def log(self, base_url: str) -> str:
        """Return what the server at ``base_url`` has logged so far."""
        return self._logs[base_url].read_text(errors="replace")

    def wait_for_log(self, base_url: str, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait until the server's log matches the regex ``pattern``; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log(base_url))
            if match:
                return match
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{pattern!r} not logged within {timeout:.0f} s:\n"
                    f"{_tail(self._logs[base_url])}"
                )
            time.sleep(0.2)

    def stop(self, base_url: str) -> None:
        """Terminate the server at ``base_url`` (by its pid), killing it if it outlives the timeout."""
        stop_process(self._by_base[base_url], STOP_TIMEOUT)

    def stop_all(self) -> None:
        """Terminate the servers started here (by pid), killing any that outlive the timeout."""
        for proc, log in self._procs:
            stop_process(proc, STOP_TIMEOUT)
            log.close()  # type: ignore[attr-defined]
        self._procs.clear()


class LearnerServers:
    """Start learner servers: ``start(root=notebooks/learner, env=None, **options) -> base_url``.

    A view of a test's :class:`VoilaServers` with ``learner=True``: options go to
    :func:`sopcoach.web.launch.learner_command` (``pool_size`` defaults to 1, ``max_pages``,
    ``base_url``, ...), the base URL ends with ``/``, and ``log``, ``wait_for_log``, ``process``,
    ``stop`` work as there.
    """

    def __init__(self, servers: VoilaServers) -> None:
        self._servers = servers

    def __call__(self, root: Path | None = None, env: dict[str, str] | None = None, **options: object) -> str:
        return self._servers(root if root is not None else LEARNER_ROOT, env, learner=True, **options)

    def __getattr__(self, name: str) -> object:
        return getattr(self._servers, name)


@pytest.fixture
def voila_server(tmp_path: Path) -> Iterator[VoilaServers]:
    """Factory ``start(root, env) -> base_url`` for Voila servers torn down after the test."""
    servers = VoilaServers(tmp_path)
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture
def learner_server(voila_server: VoilaServers) -> LearnerServers:
    """Factory ``start(root=notebooks/learner, env=None, **options) -> base_url`` for learner servers
    (``pool_size=1`` unless given), torn down after the test with the test's other servers."""
    return LearnerServers(voila_server)


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
