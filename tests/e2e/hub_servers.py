"""A real JupyterHub for the browser tests, and a private PostgreSQL cluster for its records.

:func:`private_postgres` starts a PostgreSQL server of Debian's ``postgresql`` package on a Unix
socket in a fresh folder (no TCP port; :mod:`pg_cluster`, shared with the records tests) and yields
the SQLAlchemy URL of an empty database in it.

:class:`Hub` runs ``jupyterhub`` (from the ``hub`` extra) with the shipped
``deploy/jupyterhub_config.py`` plus what a test machine needs: loopback ports, the
``SharedPasswordAuthenticator``, ``SimpleLocalProcessSpawner`` (every server as this OS user) and
configurable-http-proxy from ``.venv/node`` (``make hub`` installs it). Stopping it stops the Hub
(which stops the users' servers, the trainer service and the proxy) and then kills by pid anything
started below it that outlived it.
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests

from pg_cluster import running_cluster
from sopcoach.web.launch import free_port
from support import ROOT, stop_process

#: Where ``make hub`` installs configurable-http-proxy (npm, beside the venv's Python).
CHP = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
#: Seconds the Hub (and its trainer service) may take to answer on the two shared cores.
START_TIMEOUT = 120.0
#: Seconds the Hub has to stop its servers and exit after SIGTERM before it is killed.
STOP_TIMEOUT = 60.0


def _wait(check, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log and log.exists() else ""
            pytest.fail(f"{what} not within {timeout:.0f} s\n{tail}")
        time.sleep(0.2)


@contextmanager
def private_postgres() -> Iterator[str]:
    """Start a private PostgreSQL server (:class:`pg_cluster.Cluster`, as the records tests do) and
    yield the URL of a new empty database in it; the server is stopped and its folder removed after.

    Fails in one line naming ``make postgres`` when Debian's server binaries are missing.
    """
    with running_cluster() as cluster:
        yield cluster.url(cluster.create_database())


class Hub:
    """One running JupyterHub: its public address, folders and log.

    Attributes
    ----------
    url : str
        The Hub's public address, ``http://127.0.0.1:PORT/`` (the proxy).
    folder : Path
        Its working folder (Hub database, cookie secret, log, users' homes).
    log_path : Path
    """

    def __init__(self, folder: Path, env: Mapping[str, str], *, password: str, users: list[str],
                 trainers: list[str]) -> None:
        if not CHP.exists():
            pytest.fail(f"{CHP} is missing: run `make hub` (installs configurable-http-proxy 5.3 with npm)")
        self.folder = folder
        port, hub_port, api_port, trainer_port = (free_port() for _ in range(4))
        self.url = f"http://127.0.0.1:{port}/"
        config = folder / "jupyterhub_config.py"
        config.write_text(f"""
c = get_config()
load_subconfig({str(ROOT / 'deploy' / 'jupyterhub_config.py')!r})
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
c.JupyterHub.db_url = {f"sqlite:///{folder / 'jupyterhub.sqlite'}"!r}
c.JupyterHub.cookie_secret_file = {str(folder / 'jupyterhub_cookie_secret')!r}
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allowed_users = {set(users)!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(folder / 'homes' / '{username}')!r}
""")
        self.log_path = folder / "jupyterhub.log"
        self._log = self.log_path.open("wb")
        full_env = {**env, "SOPCOACH_TRAINERS": ",".join(trainers), "SOPCOACH_TRAINER_PORT": str(trainer_port),
                    "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=folder,
                                     stdout=self._log, stderr=subprocess.STDOUT, env=full_env)
        self._seen: dict[int, psutil.Process] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        """Every live process below the Hub (proxy, trainer service, users' servers, their kernels)."""
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self._seen.update((p.pid, p) for p in found)
        return found

    def wait_ready(self) -> None:
        """Wait until the Hub answers through its proxy and the trainer service answers."""
        def up() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"jupyterhub exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                hub = requests.get(self.url + "hub/health", timeout=5).status_code == 200
                service = requests.get(self.url + "services/sopcoach-trainer/", timeout=5,
                                       allow_redirects=False).status_code in (302, 403)
                return hub and service
            except requests.RequestException:
                return False
        _wait(up, "JupyterHub and the trainer service answering", START_TIMEOUT, self.log_path)
        self.descendants()

    def stop(self) -> None:
        """Stop the Hub by its pid (it stops what it started), then kill by pid whatever outlived it."""
        self.descendants()
        stop_process(self.proc, STOP_TIMEOUT)
        for proc in self._seen.values():  # psutil refuses a pid that was reused by another process
            try:
                proc.kill()
            except psutil.Error:
                pass
        self._log.close()
