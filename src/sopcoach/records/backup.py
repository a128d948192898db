"""A consistent copy of the records database while servers keep writing (``sopcoach db backup``).

SQLite: the sqlite3 online-backup API copies the database in one step under one read transaction
(in WAL mode writers go on meanwhile), so the copy is the database as of one moment; the copy is a
single self-contained file (rollback journal, not WAL) that passed ``PRAGMA integrity_check``.
Open it with ``sqlite3 FILE`` or ``--db-url sqlite:////path/FILE``.

PostgreSQL: ``pg_dump -Fc`` (custom format, one snapshot), taken from ``PATH`` or else the newest
``/usr/lib/postgresql/*/bin/pg_dump``; restore with ``pg_restore -d DBNAME FILE``. The password,
if the URL has one, goes to ``pg_dump`` in ``PGPASSWORD``, never on its command line.

Either way the copy is written next to ``FILE`` as ``FILE.partial`` and renamed when complete, so
``FILE`` is never half written.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ..errors import ConfigError, RecordsError

__all__ = ["Backup", "backup", "find_pg_dump", "sqlite_path"]


@dataclass(frozen=True)
class Backup:
    """A backup written: the file, its size in bytes, and how it was made (``method``)."""

    path: Path
    size: int
    method: str


def sqlite_path(url: str) -> Path | None:
    """Return the file of an SQLite URL (``None`` for an in-memory database or another dialect).

    >>> sqlite_path("sqlite:////srv/var/sopcoach.db")
    PosixPath('/srv/var/sopcoach.db')
    >>> sqlite_path("sqlite://") is None, sqlite_path("postgresql+psycopg://db/sop") is None
    (True, True)
    """
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def find_pg_dump() -> str | None:
    """Return the ``pg_dump`` to use: on ``PATH``, else the newest in ``/usr/lib/postgresql/*/bin``."""
    on_path = shutil.which("pg_dump")
    if on_path:
        return on_path

    def major(p: Path) -> int:
        m = re.search(r"/postgresql/(\d+)/", str(p))
        return int(m.group(1)) if m else 0
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), key=major)
    return str(found[-1]) if found else None


def backup(url: str, output: Path | str, *, overwrite: bool = False) -> Backup:
    """Write a consistent copy of the database at ``url`` to ``output``.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of an SQLite file or a PostgreSQL database.
    output : path-like
        The file to write (an SQLite database, or a ``pg_dump`` custom-format archive).
    overwrite : bool
        Replace ``output`` when it exists (else refused).

    Raises
    ------
    ConfigError
        ``output`` exists (without ``overwrite``) or its folder does not; the SQLite file does not
        exist; an in-memory or other kind of database; no ``pg_dump`` found.
    RecordsError
        When the copy fails (the message says why); no partial ``output`` is left.
    """
    out = Path(output).expanduser().resolve()
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; give another file, or --force to replace it")
    if not out.parent.is_dir():
        raise ConfigError(f"no folder {out.parent} for the backup")
    partial = out.with_name(out.name + ".partial")
    backend = make_url(url).get_backend_name()
    try:
        if backend == "sqlite":
            method = _sqlite_backup(url, partial)
        elif backend == "postgresql":
            method = _pg_backup(url, partial)
        else:
            raise ConfigError(f"sopcoach backs up SQLite and PostgreSQL databases, not {backend}; use the database's own tools")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(out, out.stat().st_size, method)


def _sqlite_backup(url: str, partial: Path) -> str:
    source = sqlite_path(url)
    if source is None:
        raise ConfigError("an in-memory SQLite database has nothing to back up")
    if not source.is_file():
        raise ConfigError(f"no database file {source}")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # one step: one read transaction, the database as of one moment
            dst.execute("PRAGMA journal_mode = DELETE")  # a single file, not WAL
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise RecordsError(f"the copy of {source} fails the integrity check: {check}")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise RecordsError(f"the backup of {source} failed: {exc}") from exc
    finally:
        src.close()
    return "sqlite3 online backup"


def _pg_backup(url: str, partial: Path) -> str:
    pg_dump = find_pg_dump()
    if pg_dump is None:
        raise ConfigError("pg_dump not found (on PATH or in /usr/lib/postgresql/*/bin): install PostgreSQL's client "
                          "programs (Debian: apt-get install postgresql-client)")
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    libpq = u.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run([pg_dump, "--format=custom", "--file", str(partial), "--dbname", libpq],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise RecordsError(f"pg_dump failed: {why}")
    return f"{pg_dump} --format=custom"
