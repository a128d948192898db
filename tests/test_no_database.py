"""A command that only reads records refuses a data home or database URL with no database.

A wrong ``--home`` (or ``SOPCOACH_DB_URL`` naming a missing SQLite file) once created an empty
database and exported a header-only file with exit code 0. Now each reading command says, in one
line, which database is missing and how to fix it, exits 1, and creates nothing (no folder, no file,
no output); the commands that create on purpose (``enroll``, ``db upgrade``, ``trainer release``)
still do.
"""
from __future__ import annotations

import shutil
import sqlite3

import pytest

from support import ROOT

from sopcoach.cli.main import main
from sopcoach.records.schema import url_state
from sopcoach.records.store import Records, make_engine

READERS = [
    ["results"],
    ["results", "--by", "person", "--format", "xlsx", "-o", "{out}/r.xlsx"],
    ["results", "-o", "{out}/r.csv"],
    ["revoke", "E1"],
    ["diff"],
    ["review"],
    ["review", "--confirm", "q1"],
    ["recertify"],
    ["verify", "SC-XXXX"],
    ["certificate", "--learner", "E1", "-o", "{out}/c.pdf"],
    ["itemstats", "--format", "csv", "-o", "{out}/i.csv"],
    ["db", "backup", "-o", "{out}/b.db"],
]


@pytest.fixture
def content(tmp_path, monkeypatch):
    """A content folder; the environment names no data home or database."""
    for part in ("playbook", "quizzes"):
        shutil.copytree(ROOT / part, tmp_path / "content" / part)
    monkeypatch.setenv("SOPCOACH_CONTENT", str(tmp_path / "content"))
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    monkeypatch.delenv("SOPCOACH_HOME", raising=False)
    monkeypatch.delenv("SOPCOACH_DB_URL", raising=False)
    (tmp_path / "out").mkdir()
    return tmp_path


def _name(argv):
    return "sopcoach " + (" ".join(argv[:2]) if argv[0] == "db" else argv[0])


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:3]))
def test_reader_refuses_a_wrong_home(content, capsys, argv):
    """A data home that does not exist: one line naming the database and the fix, exit 1, nothing created."""
    home = content / "wrong-home"
    args = [a.format(out=content / "out") for a in argv] + ["--home", str(home)]
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()
    db = f"sqlite:///{home / 'sopcoach.db'}"
    assert err == [f"database: {db} (data home from --home)",
                   f"{_name(argv)}: no records database at {db} (data home from --home): no such file; give the "
                   "data home that holds it (--home or SOPCOACH_HOME) or its URL (--db-url or SOPCOACH_DB_URL), "
                   f"or create an empty one with `sopcoach db upgrade --db-url {db}`"]
    assert not home.exists() and list((content / "out").iterdir()) == []


@pytest.mark.parametrize("argv", [["results"], ["itemstats"], ["db", "backup", "-o", "{out}/b.db"]],
                         ids=lambda a: a[0])
def test_reader_refuses_an_empty_home_and_a_missing_db_url(content, capsys, monkeypatch, argv):
    """An existing but empty data home, and SOPCOACH_DB_URL naming a missing file, are refused alike."""
    args = [a.format(out=content / "out") for a in argv]
    empty = content / "empty-home"
    empty.mkdir()
    monkeypatch.setenv("SOPCOACH_HOME", str(empty))
    assert main(args) == 1
    assert "no records database at" in capsys.readouterr().err and list(empty.iterdir()) == []
    url = f"sqlite:///{content / 'elsewhere' / 'x.db'}"
    monkeypatch.setenv("SOPCOACH_DB_URL", url)
    assert main(args) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"{_name(argv)}: no records database at {url} (SOPCOACH_DB_URL): no such file;")
    assert last.endswith("create an empty one with `sopcoach db upgrade`")  # the environment names it: no flag
    assert not (content / "elsewhere").exists() and list((content / "out").iterdir()) == []


def test_reader_refuses_a_database_without_tables(content, capsys):
    """An SQLite file with no sopcoach tables (e.g. a stray file) is refused, not filled."""
    db = content / "stray.db"
    Records(f"sqlite:///{content / 'ok.db'}").dispose()  # a real database beside it
    db.write_bytes(b"")  # SQLite's empty database
    assert main(["results", "--db-url", f"sqlite:///{db}"]) == 1
    assert ": it holds no sopcoach tables;" in capsys.readouterr().err
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE other (x)")
    assert main(["results", "--db-url", f"sqlite:///{db}"]) == 1
    assert ": it holds no sopcoach tables;" in capsys.readouterr().err
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["other"]
    assert main(["results", "--db-url", f"sqlite:///{content / 'ok.db'}"]) == 0  # a real one is read


def test_db_current_reports_a_missing_database_and_creates_nothing(content, capsys):
    home = content / "wrong-home"
    assert main(["db", "current", "--home", str(home)]) == 3
    assert "no database file at" in capsys.readouterr().out and not home.exists()


@pytest.mark.parametrize("argv, said", [
    (["enroll", "--id", "E1", "--name", "甲"], "enrolled E1"),
    (["db", "upgrade"], "created the tables at revision"),
    (["release", "--by", "T"], ""),
], ids=["enroll", "db upgrade", "release"])
def test_creating_commands_still_create(content, capsys, argv, said):
    """enroll, db upgrade and trainer release make the data home and database; a reader then works."""
    home = content / "new-home"
    assert main(argv + ["--home", str(home)]) == 0
    assert said in capsys.readouterr().out
    assert (home / "sopcoach.db").is_file()
    assert main(["results", "--home", str(home)]) == 0
    assert capsys.readouterr().out.startswith("attempt_id,learner_id,name")


@pytest.mark.databases("sqlite", "postgresql")
def test_an_empty_database_is_refused_then_created_on_purpose(content, capsys, db_url):
    """SQLite and PostgreSQL alike: a reader refuses the empty database and leaves it empty; `db upgrade`
    creates the tables, and the reader then works."""
    assert main(["results", "--db-url", db_url]) == 1
    assert "no records database at" in capsys.readouterr().err
    engine = make_engine(db_url)
    try:
        assert url_state(engine).status == "empty"
        assert main(["db", "upgrade", "--db-url", db_url]) == 0
        assert url_state(engine).status == "current"
    finally:
        engine.dispose()
    assert main(["results", "--db-url", db_url]) == 0
