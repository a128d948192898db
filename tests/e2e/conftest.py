"""Fixtures for the browser tests: a Voila server factory, headless Chromium and a page per test.

Every test collected below this folder gets the ``e2e`` mark, so ``pytest -m e2e`` runs the whole
folder and ``pytest -m "not e2e"`` leaves it out.

Chromium is Debian's ``/usr/bin/chromium`` (Playwright's own browser download does not work
here); ``make test`` installs it. Pages may only talk to the loopback servers: any other request
is aborted (nothing may download at run time) and reported as a warning.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sopcoach.server import free_port, voila_command

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0
#: http(s) URLs that are not on the loopback interface (matched in the browser, so local
#: requests are not slowed down by interception).
NOT_LOOPBACK = re.compile(r"^https?://(?!(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/)")

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
    :func:`sopcoach.server.voila_command` (``pool_size=...``). ``env`` is laid over this
    process's environment; ``SOPCOACH_HOME`` defaults to a fresh folder in the test's tmp dir.
    """

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._procs: list[tuple[subprocess.Popen[bytes], object]] = []
        self._logs: dict[str, Path] = {}

    def __call__(self, root: Path, env: dict[str, str] | None = None, **options: object) -> str:
        number = len(self._procs) + 1
        full_env = {**os.environ, **(env or {})}
        if "SOPCOACH_HOME" not in (env or {}):
            home = self._tmp_path / f"sopcoach-home-{number}"
            home.mkdir(parents=True, exist_ok=True)
            full_env["SOPCOACH_HOME"] = str(home)
        full_env["PYTHONUNBUFFERED"] = "1"

        port = free_port()
        argv = voila_command(Path(root), port=port, **options)  # type: ignore[arg-type]
        log_path = self._tmp_path / f"voila-{number}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        self._procs.append((proc, log))
        base_url = f"http://127.0.0.1:{port}"
        self._logs[base_url] = log_path

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"Voila exited with {proc.returncode} before answering; log {log_path}:\n"
                    f"{_tail(log_path)}"
                )
            try:
                requests.get(base_url + "/", timeout=2)
                return base_url
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Voila did not answer on {base_url} within {START_TIMEOUT:.0f} s; "
                    f"log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.2)

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

    def stop_all(self) -> None:
        """Terminate the servers started here (by pid), killing any that outlive the timeout."""
        for proc, log in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()  # type: ignore[attr-defined]
        self._procs.clear()


@pytest.fixture
def voila_server(tmp_path: Path) -> Iterator[VoilaServers]:
    """Factory ``start(root, env) -> base_url`` for Voila servers torn down after the test."""
    servers = VoilaServers(tmp_path)
    try:
        yield servers
    finally:
        servers.stop_all()


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


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A page in a fresh browser context (1280x900, zh-CN) that may only reach loopback."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, locale="zh-CN"
    )
    blocked: list[str] = []

    def refuse(route: object) -> None:
        blocked.append(route.request.url)  # type: ignore[attr-defined]
        route.abort()  # type: ignore[attr-defined]

    context.route(NOT_LOOPBACK, refuse)
    try:
        yield context.new_page()
    finally:
        context.close()
        if blocked:
            warnings.warn(f"aborted non-loopback requests: {sorted(set(blocked))}", stacklevel=1)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Folder ``test-artifacts/<test name>`` (below the rootdir) for screenshots."""
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    folder = Path(request.config.rootpath) / "test-artifacts" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
