"""A private PostgreSQL cluster for the tests: initdb in a temporary folder, reached by a unix socket there.

:class:`Cluster` runs Debian's server binaries (``/usr/lib/postgresql/<version>/bin``, installed by
``make postgres``) with nothing written outside its folder: ``listen_addresses`` is empty (no TCP
port), the socket lives in the folder, clients are trusted (only the folder's owner can reach the
socket). Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a test
database lives for one test. When the tests run as root, the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root) and the folder belongs to it.
"""
from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

#: What a PostgreSQL test says when the server binaries are missing (one line, no skip).
MISSING = "PostgreSQL's server binaries are missing (no /usr/lib/postgresql/*/bin/initdb): run `make postgres`"
#: The superuser the cluster is made with; tests connect as it, without a password.
USER = "sopcoach"


def server_bin() -> Path | None:
    """Return the newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb`` and ``pg_ctl``, or ``None``."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()]
    found.sort(key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    return found[-1] if found else None


class Cluster:
    """One PostgreSQL server in its own temporary folder; :meth:`start`, then :meth:`stop` (removes the folder).

    Parameters
    ----------
    bindir : Path
        The server's ``bin`` folder (see :func:`server_bin`).
    """

    def __init__(self, bindir: Path):
        self.bindir = bindir
        # In /tmp itself, whatever TMPDIR says: the socket's path must stay under 108 bytes, and the
        # postgres user (when the tests run as root) must be able to reach the folder.
        self.root = Path(tempfile.mkdtemp(prefix="sopcoach-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._run_as: str | None = None
        if os.geteuid() == 0:
            self._run_as = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.root, self._run_as)

    def _run(self, *args: str) -> None:
        proc = subprocess.run([str(self.bindir / args[0]), *args[1:]], user=self._run_as, capture_output=True,
                              text=True, timeout=180, cwd=self.root)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()}\n{log}")

    def start(self) -> Cluster:
        """Make the cluster and start its server; return ``self`` once it accepts connections."""
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C",
                  "--no-sync")
        options = (f"-k {self.root} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "120", "start")
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown, waiting for it) and remove the cluster's folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str) -> str:
        """Return the SQLAlchemy URL of database ``dbname`` (psycopg 3, over the cluster's unix socket)."""
        return f"postgresql+psycopg://{USER}@/{dbname}?host={self.root}"

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(host=str(self.root), user=USER, dbname="postgres", autocommit=True)

    def create_database(self) -> str:
        """Create a new empty database (a copy of ``template0``); return its name."""
        name = f"t_{secrets.token_hex(6)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the connections still open to it."""
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')



@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Start a private cluster, yield it, stop it and remove its folder (also on failure).

    Fails the test (does not skip) with one line naming ``make postgres`` when the server binaries are missing.
    """
    bindir = server_bin()
    if bindir is None:
        pytest.fail(MISSING, pytrace=False)
    cluster = Cluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()

def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
