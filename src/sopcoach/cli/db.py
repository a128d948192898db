"""The ``sopcoach db`` commands: the records database's schema revision, its upgrade, its backup.

``db current``
    The database's schema revision and whether this sopcoach can use it. Exit 0: up to date (or
    empty: the first command creates the tables); 3: it needs ``sopcoach db upgrade``, or a newer
    sopcoach upgraded it.
``db upgrade``
    Bring the database to this sopcoach's schema revision, in one transaction, data kept: a
    database made before migrations is adopted, an older revision is upgraded, an empty one gets
    the tables. A database at a newer revision is refused (exit 1).
``db backup -o FILE [--force]``
    A consistent copy while servers keep writing: SQLite through the online-backup API (``FILE`` is
    an SQLite database), PostgreSQL through ``pg_dump -Fc`` (restore with ``pg_restore``).

Every command first prints the database it uses on stderr (``database: URL (where it came from)``,
see :func:`sopcoach.config.settings`).
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ..config import upgrade_command
from ..errors import RecordsError
from ..records import schema
from ..records.backup import backup
from ..records.schema import SchemaState
from ..records.store import describe_db_error, make_engine

#: Exit code of ``db current`` when the database cannot be used as it is.
NOT_CURRENT = 3


def register(sub: Any) -> None:
    """Add ``sopcoach db`` and its sub-commands to the ``sopcoach`` command's sub-parsers."""
    d = sub.add_parser("db", help="the records database: schema revision, upgrade, backup")
    dsub = d.add_subparsers(dest="db_command", required=True, metavar="{current,upgrade,backup}")
    c = dsub.add_parser("current", help="the schema revision and whether it is up to date (exit 0 yes, 3 no)")
    c.set_defaults(func=_cmd_current, uses_records=True, command_name="sopcoach db current")
    u = dsub.add_parser("upgrade", help="bring the database to this sopcoach's schema, data kept")
    u.set_defaults(func=_cmd_upgrade, uses_records=True, command_name="sopcoach db upgrade")
    b = dsub.add_parser("backup", help="a consistent copy (SQLite: a database file; PostgreSQL: pg_dump -Fc)")
    b.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    b.add_argument("--force", action="store_true", help="replace FILE when it exists")
    b.set_defaults(func=_cmd_backup, uses_records=True, command_name="sopcoach db backup")


def describe(state: SchemaState, upgrade_command: str = schema.UPGRADE_COMMAND) -> str:
    """Return one line saying what ``state`` means for this sopcoach (naming ``upgrade_command``).

    >>> describe(SchemaState("0001", "0001", frozenset({"learners"}), True))
    'revision 0001 (this sopcoach: 0001): up to date'
    >>> describe(SchemaState(None, "0001", frozenset({"learners"}), True))
    'no revision: made before sopcoach had migrations (this sopcoach: 0001); run `sopcoach db upgrade`'
    """
    head = f"this sopcoach: {state.head}"
    return {
        "empty": f"empty: no sopcoach tables yet ({head}); the first command creates them",
        "current": f"revision {state.current} ({head}): up to date",
        "unversioned": f"no revision: made before sopcoach had migrations ({head}); run `{upgrade_command}`",
        "outdated": f"revision {state.current} ({head}): older; run `{upgrade_command}`",
        "newer": f"revision {state.current} ({head}): newer than this sopcoach knows; run the sopcoach that upgraded it",
    }[state.status]


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    """An engine for ``url``, disposed after; a database error (unreachable server, unreadable file)
    becomes a :class:`RecordsError` whose one line the command prints (no traceback)."""
    engine = make_engine(url)
    try:
        yield engine
    except DBAPIError as exc:
        raise RecordsError(describe_db_error(exc)) from exc
    finally:
        engine.dispose()


def _cmd_current(args: argparse.Namespace) -> int:
    with _engine(args.settings.db_url) as engine:
        missing = schema.missing_sqlite_file(engine)
        if missing is not None:  # a mistyped path or data home must not look like a healthy new database
            print(f"no database file at {missing}; `{upgrade_command(args.settings)}` creates one there")
            return NOT_CURRENT
        state = schema.url_state(engine)
    print(describe(state, upgrade_command(args.settings)))
    return 0 if state.status in ("current", "empty") else NOT_CURRENT


def _cmd_upgrade(args: argparse.Namespace) -> int:
    with _engine(args.settings.db_url) as engine:
        before, after = schema.upgrade(engine, args.settings.db_url)
    if before.status == "current":
        print(f"already at revision {after.current}: nothing to do")
    elif before.status == "empty":
        print(f"created the tables at revision {after.current}")
    else:
        was = "made before migrations" if before.current is None else f"revision {before.current}"
        print(f"upgraded: {was} -> revision {after.current}; data kept")
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    done = backup(args.settings.db_url, args.output, overwrite=args.force)
    print(f"backup: {done.path} ({done.size} bytes, {done.method})")
    return 0
