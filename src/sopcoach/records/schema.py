"""The records database's schema: Alembic revisions, the check every store makes, and the upgrade.

Alembic owns the schema. Its scripts ship inside the package (``records/migrations/``: ``env.py``
and ``versions/``) and are driven from code, so no ``alembic.ini`` is needed. Revision ``0001`` is
the schema of the last sopcoach without migrations; every later change of
:mod:`sopcoach.records.models` comes with a revision in ``versions/``.

A database is in one of five states (:attr:`SchemaState.status`):

``empty``
    No sopcoach table: :func:`ensure` (called by every :class:`~sopcoach.records.store.Records`)
    creates the tables of :mod:`~sopcoach.records.models` and stamps the head revision.
``current``
    At the head revision: ready.
``unversioned``
    sopcoach tables but no revision: made before migrations (by ``Base.metadata.create_all``).
``outdated``
    At an older revision.
``newer``
    At a revision this code does not know: a newer sopcoach upgraded it.

:func:`ensure` refuses the last three with a one-line :class:`~sopcoach.errors.SchemaOutdated` or
:class:`~sopcoach.errors.SchemaTooNew`; :func:`upgrade` (``sopcoach db upgrade``) brings an
``unversioned`` or ``outdated`` database to the head in one transaction, keeping its data.
"""
from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url

from ..errors import RecordsError, SchemaMismatch, SchemaOutdated, SchemaTooNew
from .models import Base

__all__ = [
    "MIGRATIONS",
    "TABLES",
    "UPGRADE_COMMAND",
    "SchemaState",
    "alembic_config",
    "ensure",
    "head_revision",
    "mismatch",
    "new_revision",
    "schema_state",
    "shown_url",
    "upgrade",
    "upgrade_command_for",
    "url_state",
]

#: The Alembic script folder shipped with the package (``env.py``, ``versions/``).
MIGRATIONS = Path(__file__).resolve().with_name("migrations")
#: The command that upgrades the database a command or server uses (without location options).
UPGRADE_COMMAND = "sopcoach db upgrade"
#: The tables of the current models; a database holding any of them is a sopcoach database.
TABLES = frozenset(Base.metadata.tables)
#: PostgreSQL advisory lock key held while a schema is created, checked or upgraded (so two
#: processes opening a new database at once do not both create it).
_PG_LOCK = 0x50C0AC4


@dataclass(frozen=True)
class SchemaState:
    """What a database holds: its revision (``None``: none stamped), this code's head, and whether it
    has sopcoach tables (``tables``: their names) and knows ``current`` (``known``)."""

    current: str | None
    head: str
    tables: frozenset[str]
    known: bool

    @property
    def status(self) -> str:
        """``empty``, ``current``, ``unversioned``, ``outdated`` or ``newer`` (see the module docstring)."""
        if self.current is None:
            return "unversioned" if self.tables else "empty"
        if not self.known:
            return "newer"
        return "current" if self.current == self.head else "outdated"


def alembic_config(connection: Connection | None = None, script_location: Path | str | None = None) -> Config:
    """Return an Alembic config for the records migrations (no ``alembic.ini``).

    ``connection`` (open, in a transaction) is what ``env.py`` migrates; ``script_location`` defaults
    to :data:`MIGRATIONS`.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location or MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=4)
def _scripts(location: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(script_location=location))


def _script_directory() -> ScriptDirectory:
    return _scripts(str(MIGRATIONS))


def head_revision() -> str:
    """Return the revision id this code's models correspond to (the single head of ``versions/``)."""
    head = _script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package ships its revisions
        raise RecordsError(f"no schema revisions in {MIGRATIONS}")
    return head


def schema_state(conn: Connection) -> SchemaState:
    """Return the state of the database behind ``conn`` (read only)."""
    current = MigrationContext.configure(conn).get_current_revision()
    tables = frozenset(inspect(conn).get_table_names()) & TABLES
    known = True
    if current is not None:
        try:
            known = _script_directory().get_revision(current) is not None
        except CommandError:
            known = False
    return SchemaState(current, head_revision(), tables, known)


def missing_sqlite_file(engine: Engine) -> Path | None:
    """Return the path of ``engine``'s SQLite database file when that file does not exist, else ``None``."""
    u = engine.url
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:" and not Path(u.database).exists():
        return Path(u.database)
    return None


def url_state(engine: Engine) -> SchemaState:
    """Return the state of the database of ``engine``, changing nothing (a missing SQLite file is
    ``empty`` and is not created)."""
    if missing_sqlite_file(engine) is not None:
        return SchemaState(None, head_revision(), frozenset(), True)
    with engine.connect() as conn:
        return schema_state(conn)


def shown_url(url: str) -> str:
    """Return ``url`` with its password hidden (``***``), as messages show it."""
    return make_url(url).render_as_string(hide_password=True)


def upgrade_command_for(url: str) -> str:
    """Return ``sopcoach db upgrade --db-url URL`` for ``url`` (quoted for a POSIX shell, password hidden).

    >>> upgrade_command_for("sqlite:////srv/sop coach/sopcoach.db")
    "sopcoach db upgrade --db-url 'sqlite:////srv/sop coach/sopcoach.db'"
    """
    return f"{UPGRADE_COMMAND} --db-url {shlex.quote(shown_url(url))}"


def mismatch(state: SchemaState, url: str, upgrade_command: str | None = None) -> SchemaMismatch | None:
    """Return the error that refuses a database in ``state`` (``None`` when it can be used).

    Parameters
    ----------
    state : SchemaState
    url : str
        The database's URL (shown with the password hidden).
    upgrade_command : str, optional
        The command the message tells the user to run; default :func:`upgrade_command_for` ``url``.
    """
    upgrade_command = upgrade_command or upgrade_command_for(url)
    where = f"the records database {shown_url(url)}"
    if state.status == "unversioned":
        return SchemaOutdated(f"{where} was made by a sopcoach without schema migrations: run `{upgrade_command}` "
                              f"first (it brings the schema to revision {state.head} and keeps the data)",
                              None, state.head)
    if state.status == "outdated":
        return SchemaOutdated(f"{where} has schema revision {state.current}, older than this sopcoach's "
                              f"{state.head}: run `{upgrade_command}` first (it keeps the data)",
                              state.current, state.head)
    if state.status == "newer":
        return SchemaTooNew(f"{where} has schema revision {state.current}, newer than this sopcoach knows "
                            f"(up to {state.head}): a newer sopcoach upgraded it; run that version, or restore "
                            "a backup made before the upgrade", state.current, state.head)
    return None


def _lock(conn: Connection) -> None:
    """Hold the schema lock for the rest of the transaction (PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
    already holds the write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})


def _create(conn: Connection) -> None:
    """Create the current tables in an empty database and stamp the head revision."""
    Base.metadata.create_all(conn)
    MigrationContext.configure(conn).stamp(_script_directory(), "head")


def ensure(engine: Engine, url: str, upgrade_command: str | None = None) -> SchemaState:
    """Make an empty database current; refuse any other database not at the head revision.

    Called by every :class:`~sopcoach.records.store.Records` when it opens, so every server,
    command and notebook checks the schema before its first query. ``upgrade_command`` is what a
    refusal tells the user to run (default :func:`upgrade_command_for` ``url``).

    Returns
    -------
    SchemaState
        The state found (``empty`` when the tables were created now).

    Raises
    ------
    SchemaOutdated
        Made before migrations, or at an older revision: the message names ``upgrade_command``.
    SchemaTooNew
        At a revision this code does not know.
    """
    with engine.begin() as conn:
        _lock(conn)
        state = schema_state(conn)
        if state.status == "empty":
            _create(conn)
    error = mismatch(state, url, upgrade_command)
    if error is not None:
        raise error
    return state


def new_revision(message: str, script_location: Path | str | None = None) -> Path:
    """Write the next revision script for what the models changed since the head (for developers).

    The revisions run on a scratch SQLite database up to the head; Alembic compares it with
    :mod:`sopcoach.records.models` and writes ``versions/NNNN_<message>.py`` with the difference
    (``batch_alter_table`` blocks, so SQLite can run it). Review it before committing.

    Parameters
    ----------
    message : str
        What changed, e.g. ``"learners get a note"``.
    script_location : path-like, optional
        The script folder; default :data:`MIGRATIONS`.

    Returns
    -------
    Path
        The script written.
    """
    location = Path(script_location or MIGRATIONS)
    head = ScriptDirectory.from_config(alembic_config(script_location=location)).get_current_head() or "0000"
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'head.db'}")
        try:
            with engine.begin() as conn:
                cfg = alembic_config(conn, location)
                command.upgrade(cfg, "head")
                script = command.revision(cfg, message=message, autogenerate=True, rev_id=f"{int(head) + 1:04d}")
        finally:
            engine.dispose()
    if not isinstance(script, Script):  # pragma: no cover - one head, one script
        raise RecordsError(f"Alembic wrote no single revision script in {location}")
    return Path(script.path)


def upgrade(engine: Engine, url: str) -> tuple[SchemaState, SchemaState]:
    """Bring the database to the head revision, in one transaction (``sopcoach db upgrade``).

    An ``empty`` database gets the current tables; an ``unversioned`` one (made before migrations)
    or an ``outdated`` one runs the revisions it lacks, so its data is kept. On SQLite the foreign
    keys are checked after the change (and switched off during it, as SQLite's table rebuilds need).

    Returns
    -------
    tuple[SchemaState, SchemaState]
        The state before and after.

    Raises
    ------
    SchemaTooNew
        When the database is at a revision this code does not know (nothing is changed).
    RecordsError
        When the upgraded data breaks a foreign key (nothing is changed).
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:  # outside any transaction, where SQLite honours it
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                _lock(conn)
                before = schema_state(conn)
                if before.status == "newer":
                    raise mismatch(before, url) or AssertionError("unreachable")
                if before.status == "empty":
                    _create(conn)
                elif before.status != "current":
                    command.upgrade(alembic_config(conn), "head")
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RecordsError(f"the upgrade of {shown_url(url)} would break {len(broken)} foreign "
                                           f"key(s) (first: table {broken[0][0]}); nothing was changed")
                after = schema_state(conn)
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
    return before, after
