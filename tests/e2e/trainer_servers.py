"""The token-protected trainer server on a test's own content folder, for the editor browser tests.

:func:`trainer_server` starts :func:`sopcoach.web.launch.trainer_command` on ``content/notebooks``
(the trainer folders only), waits until it answers, yields ``(base_url, token, home)`` and stops the
process it started by its pid. :func:`serve_trainer` runs the real ``sopcoach serve --trainer``
command line on a content folder and data home and yields a :class:`Trainer`.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sopcoach.web.launch import free_port, trainer_command, trainer_site
from support import learner_env, stop_process


def content_env(content: Path, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a server on ``content`` with its data in ``home`` (zh-CN pages)."""
    return {**os.environ, **learner_env(content, home, "zh-CN", PYTHONUNBUFFERED="1", **extra)}


def wait_answering(proc: subprocess.Popen, url: str, log_path: Path, timeout: float) -> None:
    """Wait until ``url`` answers any HTTP request; fail with the log's tail if ``proc`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)


@contextlib.contextmanager
def trainer_server(content: Path, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """Run the trainer server on ``content``; yield ``(base_url, token, home)``."""
    home = tmp_path / "home"
    home.mkdir()
    token = secrets.token_urlsafe(24)
    site = trainer_site(content / "notebooks", tmp_path / "trainer-site")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(trainer_command(site, port=port), content_env(content, home, JUPYTER_TOKEN=token),
                 tmp_path / "trainer-voila.log", f"{base}/?token={token}"):
        yield base, token, home


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], log_path: Path, ready_url: str,
            timeout: float = 60) -> Iterator[subprocess.Popen]:
    """Start ``argv`` (output to ``log_path``), wait until ``ready_url`` answers, yield the process, stop it by its pid."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_answering(proc, ready_url, log_path, timeout)
        yield proc
    finally:
        stop_process(proc, 10)


@dataclass
class Trainer:
    """A running ``sopcoach serve --trainer``: its address, token, content folder and log file."""

    base: str
    token: str
    content: Path
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base}{path}{'&' if '?' in path else '?'}token={self.token}"


@contextlib.contextmanager
def serve_trainer(content: Path, home: Path, tmp_path: Path, **extra: str) -> Iterator[Trainer]:
    """Run ``sopcoach serve --trainer`` on ``content`` with the data in ``home`` (``extra``: more environment
    variables); stop it by its pid."""
    token = "e2e-" + secrets.token_hex(16)
    port = free_port()
    env = {**os.environ, "SOPCOACH_CONTENT": str(content), "SOPCOACH_HOME": str(home),
           "SOPCOACH_TRAINER_TOKEN": token, "SOPCOACH_LANG": "zh-CN", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("SOPCOACH_DB_URL", None)
    log = tmp_path / "trainer.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "sopcoach.cli.main", "serve", "--trainer", "--port", str(port)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_answering(proc, base + "/", log, 90)
        yield Trainer(base, token, content, log)
    finally:
        stop_process(proc, 30)  # SIGTERM is forwarded to Voila
