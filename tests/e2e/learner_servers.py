"""The one way the browser tests start a learner server, wait for it, look at it and stop it.

A learner server is ``python -m sopcoach.web.server`` as :func:`sopcoach.web.launch.learner_command`
builds its command line: the sign-in page at the door, one page kernel per learner, a pool of
preheated kernels. :class:`LearnerServers` starts them (on 127.0.0.1 and a free port) and stops
exactly those it started, by pid, with any kernel that outlived its server. The ``learner_server``
fixture (tests/e2e/conftest.py) holds one for a test; a module that shares one server between its
tests makes its own in a module-scoped fixture::

    with LearnerServers(tmp_path_factory.mktemp("servers")) as servers:
        yield servers(learners={"e1": "One"}, code="code-1", base_url="/sop/")
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import psutil
import pytest
import requests

from sopcoach.records.store import Records
from sopcoach.web.launch import free_port, learner_command
from support import LEARNER_ROOT, ROOT, learner_env, stop_process

#: Seconds a server may take to answer and fill its pool on the two shared cores.
START_TIMEOUT = 120.0
#: Seconds a server has to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0
_POOL_FILLED = re.compile(r"Kernel pool of \S+ is filled")
_KERNEL_FILE = re.compile(r"kernel-([0-9a-f\-]{36})\.json$")


def _kernel_id(cmdline: list[str]) -> str | None:
    for arg in cmdline:
        found = _KERNEL_FILE.search(arg)
        if found:
            return found.group(1)
    return None


class LearnerServer:
    """One running learner server: its process, addresses, data, log and kernels.

    Attributes
    ----------
    base : str
        Its base URL, ending with ``/`` (``http://127.0.0.1:PORT/`` or ``.../sop/``); pages are
        ``base + "learn/"``, the sign-in page ``base + "login"``.
    origin : str
        ``http://127.0.0.1:PORT`` (what a browser sends as ``Origin``).
    port : int
    prefix : str
        The ``base_url`` option (``/`` unless given).
    home : Path
        Its data home (``SOPCOACH_HOME``).
    db_url : str
        Its database (``SOPCOACH_DB_URL``).
    env : dict[str, str]
        Its whole environment (run ``sopcoach`` commands with it to reach the same database).
    log_path : Path
        Where its stdout and stderr go.
    """

    def __init__(self, argv: list[str], env: dict[str, str], port: int, prefix: str, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.prefix = prefix
        self.origin = f"http://127.0.0.1:{port}"
        self.base = self.origin + prefix
        self.home = Path(env["SOPCOACH_HOME"])
        self.db_url = env["SOPCOACH_DB_URL"]
        self.log_path = log_path
        self._kernel_pids: set[int] = set()  # every kernel seen, killed at stop if it outlived the server
        self._records: Records | None = None
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str) -> str:
        """Return the address of ``path`` below the base URL (a leading ``/`` is optional)."""
        return self.base + path.lstrip("/")

    @property
    def records(self) -> Records:
        """The server's database (opened on first use, closed at :meth:`stop`)."""
        if self._records is None:
            self._records = Records(self.db_url)
        return self._records

    # -- the log -------------------------------------------------------------------------------------
    def log(self) -> str:
        """Return what the server has logged so far."""
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        """Return the last ``lines`` lines of the log."""
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait until the log matches the regex ``pattern``; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log())
            if match:
                return match
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} not logged within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)

    # -- kernels -------------------------------------------------------------------------------------
    def kernels(self) -> dict[str, int]:
        """Return ``{kernel id: pid}`` of the live ipykernel processes below the server."""
        out: dict[str, int] = {}
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return out
        for child in children:
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
                cmd = child.cmdline()
            except psutil.NoSuchProcess:
                continue
            if any("ipykernel" in part for part in cmd):
                kid = _kernel_id(cmd)
                if kid:
                    out[kid] = child.pid
                    self._kernel_pids.add(child.pid)
        return out

    def kernels_started(self) -> int:
        """How many kernels the server has started so far (its log's "Kernel started" lines)."""
        return len(re.findall(r"Kernel started: [0-9a-f-]{36}", self.log()))

    def owned_by(self, learner: str) -> set[str]:
        """Return the live kernels bound to ``learner``'s pages."""
        return {k for k in self.kernels() if self.records.page_owner(k) == learner}

    def unbound(self) -> set[str]:
        """Return the live kernels bound to no learner (the preheated pool)."""
        return {k for k in self.kernels() if self.records.page_owner(k) is None}

    # -- start and stop ------------------------------------------------------------------------------
    def wait_ready(self, pool_size: int) -> None:
        """Wait until the sign-in page answers 200 and ``pool_size`` preheated kernels run.

        Fails the test when the server exits or is not ready within :data:`START_TIMEOUT`. (A learner
        server behind JupyterHub is started by the Hub: tests/e2e/hub_servers.py.)
        """
        deadline = time.monotonic() + START_TIMEOUT
        status: int | None = None
        answered = False
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"the learner server exited with {self.proc.returncode} before it was ready; "
                            f"log {self.log_path}:\n{self.tail()}")
            if not answered:
                try:
                    status = requests.get(self.base + "login", timeout=5, allow_redirects=False).status_code
                    answered = status == 200
                except requests.RequestException:
                    pass
            filled = pool_size == 0 or (_POOL_FILLED.search(self.log()) is not None
                                        and len(self.kernels()) >= pool_size)
            if answered and filled:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"the learner server was not ready within {START_TIMEOUT:.0f} s (sign-in page: "
                            f"{status}; pool of {pool_size} filled: {filled}); log {self.log_path}:\n{self.tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server by its pid (killed after :data:`STOP_TIMEOUT`), then any of its kernels
        still running; close its database and log. Stopping twice does nothing more."""
        if self.proc.poll() is None:
            self.kernels()  # remember the last kernels seen
        stop_process(self.proc, STOP_TIMEOUT)
        for pid in self._kernel_pids:  # kernels of this server that outlived it
            try:
                proc = psutil.Process(pid)
                if any("ipykernel" in part for part in proc.cmdline()):
                    proc.kill()
            except psutil.Error:
                pass
        self._kernel_pids.clear()
        if self._records is not None:
            self._records.dispose()
            self._records = None
        self._log.close()


class LearnerServers:
    """Start learner servers and stop exactly those at the end (use as a context manager).

    Call the instance to start one::

        servers(root=notebooks/learner, env=None, *, learners={}, code=None, **options) -> LearnerServer

    ``env`` is laid over this process's environment and :func:`support.learner_env` of the
    project's content and a fresh data home in ``folder`` (so a test passes only what differs, e.g.
    ``learner_env(content, home)``). ``learners`` (``{id: name}``) are enrolled with the access
    code ``code`` before the server starts. ``options`` go to :func:`sopcoach.web.launch.learner_command`
    (``pool_size`` defaults to 1 to spare the two cores; ``base_url``, ``allowed_hosts``,
    ``max_pages``, ``trust_proxy``). The call returns once the server is ready
    (:meth:`LearnerServer.wait_ready`).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[LearnerServer] = []

    def __call__(self, root: Path | None = None, env: Mapping[str, str] | None = None, *,
                 learners: Mapping[str, str] | None = None, code: str | None = None,
                 **options: object) -> LearnerServer:
        number = len(self.started) + 1
        env = dict(env or {})
        if "SOPCOACH_HOME" in env:
            home = Path(env["SOPCOACH_HOME"])
        else:
            home = self.folder / f"sopcoach-home-{number}"
            home.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **learner_env(ROOT, home), **env, "PYTHONUNBUFFERED": "1"}
        options.setdefault("pool_size", 1)
        port = free_port()
        argv = learner_command(Path(root) if root is not None else LEARNER_ROOT, port=port, **options)  # type: ignore[arg-type]
        if learners:
            records = Records(full_env["SOPCOACH_DB_URL"])
            try:
                for learner_id, name in learners.items():
                    records.enroll(learner_id, name, code=code)
            finally:
                records.dispose()
        server = LearnerServer(argv, full_env, port, str(options.get("base_url", "/")),
                               self.folder / f"learner-server-{number}.log")
        self.started.append(server)
        server.wait_ready(int(options["pool_size"]))  # type: ignore[call-overload]
        return server

    def stop_all(self) -> None:
        """Stop every server started here (see :meth:`LearnerServer.stop`)."""
        for server in self.started:
            server.stop()
        self.started.clear()

    def __enter__(self) -> LearnerServers:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()
