"""Schema migrations (:mod:`sopcoach.records.schema`): Alembic owns the records schema.

An earlier sopcoach's database (the one main made before migrations, ``fixtures/records/main-81c2d52.sql``,
and the oldest layout, ``skeleton-12df4e2.sql``) is refused until ``sopcoach db upgrade`` brings it to
the current revision with its data; a database at a newer revision is refused too; ``sopcoach db
backup`` copies a database that is being written into a consistent copy. Every test runs on the
``db_url`` fixture (each database kind the suite is run with).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select, text
from sqlalchemy.engine import make_url

from support import ROOT, correct_response, run_sopcoach

from sopcoach.cli.main import main
from sopcoach.config import Installation, Settings
from sopcoach.errors import SchemaOutdated, SchemaTooNew
from sopcoach.records import schema
from sopcoach.records.backup import find_pg_dump
from sopcoach.records.models import AuditEvent, Base, Certificate, to_db, utcnow
from sopcoach.records.store import Records, make_engine

#: Every test that uses the records database runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")

FIXTURES = Path(__file__).parent / "fixtures" / "records"
MAIN_DUMP = FIXTURES / "main-81c2d52.sql"
SKELETON_DUMP = FIXTURES / "skeleton-12df4e2.sql"
#: The rows main's database holds, per table.
MAIN_COUNTS = {"learners": 3, "attempts": 2, "answers": 60, "certificates": 1, "lesson_progress": 20,
               "releases": 1, "question_reviews": 0, "web_sessions": 1, "page_kernels": 1, "audit_events": 2,
               "login_throttle": 3}
SKELETON_TABLES = ("learners", "login_throttle", "attempts", "answers", "lesson_progress", "audit_events")
CERTIFICATE = "SC-1NT2-V3RR-WKGC"


@functools.cache
def _frozen_models():
    """Main's models before migrations (a verbatim copy), for making its database on any kind of database."""
    name = "records_models_81c2d52"
    spec = importlib.util.spec_from_file_location(name, FIXTURES / "models_81c2d52.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its annotations are resolved through the module
    spec.loader.exec_module(module)
    return module


def make_old_database(db_url: str, dump: Path, tmp_path: Path) -> None:
    """Make, at ``db_url``, the database an earlier sopcoach left: ``dump``'s tables and rows.

    SQLite: the dump itself is run. Other databases: the frozen pre-migration models create the
    dump's tables there (as main's ``create_all`` did) and its rows are copied across.
    """
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database) as con:
            con.executescript(dump.read_text(encoding="utf-8"))
        return
    staging = tmp_path / f"staging-{dump.stem}.db"
    with sqlite3.connect(staging) as con:
        con.executescript(dump.read_text(encoding="utf-8"))
    source, target = create_engine(f"sqlite:///{staging}"), create_engine(db_url)
    have = set(inspect(source).get_table_names())
    tables = [t for t in _frozen_models().Base.metadata.sorted_tables if t.name in have]
    with source.connect() as src, target.begin() as dst:
        for table in tables:
            table.create(dst)
            rows = [dict(r) for r in src.execute(select(table)).mappings()]
            if rows:
                dst.execute(insert(table), rows)
            if "id" in table.c and table.c.id.primary_key and table.c.id.type.python_type is int:  # a serial id
                dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                 f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"))
    source.dispose()
    target.dispose()


def counts(db_url: str, tables) -> dict[str, int]:
    engine = create_engine(db_url)
    with engine.connect() as c:
        out = {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}
    engine.dispose()
    return out


def schema_differences(db_url: str) -> list:
    """What the database's tables lack or have beyond the current models (Alembic's comparison)."""
    engine = create_engine(db_url)
    with engine.connect() as c:
        diffs = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    return diffs


def revision_of(db_url: str) -> str | None:
    engine = create_engine(db_url)
    with engine.connect() as c:
        rev = MigrationContext.configure(c).get_current_revision()
    engine.dispose()
    return rev


def inst_on(records, tmp_path, playbook, bank, blueprint):
    s = Settings(home=tmp_path, db_url=records.url, lang="zh-CN", content=ROOT)
    return Installation(s, playbook, bank, blueprint, records)


# -- a new database --------------------------------------------------------------------------------
def test_a_new_database_is_created_at_the_head_revision(db_url):
    """An empty database gets the models' tables and is stamped with the head revision."""
    records = Records(db_url)
    records.dispose()
    assert revision_of(db_url) == schema.head_revision()
    assert schema_differences(db_url) == []


def test_the_revisions_build_exactly_the_models_tables(db_url):
    """Running the revisions on an empty database gives the tables the models describe (no drift)."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(schema.alembic_config(conn), "head")
    engine.dispose()
    assert schema_differences(db_url) == []
    assert revision_of(db_url) == schema.head_revision()


# -- main's database (made before migrations) ------------------------------------------------------
def test_mains_database_is_refused_in_one_line_until_upgraded(db_url, tmp_path):
    """Opening main's database says, in one line, to run `sopcoach db upgrade`, and changes nothing."""
    make_old_database(db_url, MAIN_DUMP, tmp_path)
    with pytest.raises(SchemaOutdated) as refused:
        Records(db_url)
    message = str(refused.value)
    assert "\n" not in message
    assert "run `sopcoach db upgrade --db-url " in message and "without schema migrations" in message
    assert revision_of(db_url) is None
    assert counts(db_url, MAIN_COUNTS) == MAIN_COUNTS
    copy = tmp_path / "before-upgrade.backup"  # the backup README advises before upgrading works on it
    assert main(["db", "backup", "-o", str(copy), "--db-url", db_url]) == 0
    if make_url(db_url).get_backend_name() == "sqlite":
        assert counts(f"sqlite:///{copy}", MAIN_COUNTS) == MAIN_COUNTS


def test_db_upgrade_brings_mains_database_to_head_with_its_data(db_url, tmp_path, playbook, bank, blueprint, clock):
    """`sopcoach db upgrade` adopts main's database: every row kept, and the exam works on it."""
    make_old_database(db_url, MAIN_DUMP, tmp_path)
    assert main(["db", "upgrade", "--db-url", db_url]) == 0
    assert revision_of(db_url) == schema.head_revision()
    assert schema_differences(db_url) == []
    assert counts(db_url, MAIN_COUNTS) == MAIN_COUNTS
    records = Records(db_url)
    try:
        cert = records.run(lambda s: s.get(Certificate, CERTIFICATE))
        assert (cert.learner_id, cert.percent, cert.score_num, cert.score_den) == ("E1001", "100.0", 1, 1)
        failed = records.attempts("E1002")[0]
        assert (failed.state, failed.percent, failed.score_num, failed.score_den, failed.passed) == \
            ("scored", "50.0", 1, 2, False)
        assert failed.variants is None  # drawn before templates: no params (revision 0003)
        assert records.authenticate("E1001", "aaaa-bbbb-cccc").name == "张三"  # the stored code hash still signs in
        assert [(x.active, x.email) for x in records.learners()] == [(True, None)] * 3  # revision 0002: nobody left
        assert len(records.lesson_progress("E1003")) == 2
        # the app works on it: E1003 starts, answers and submits an attempt, and is certified
        service = inst_on(records, tmp_path, playbook, bank, blueprint).exam_service(clock)
        aid = service.start_or_resume("E1003", seed=11)
        for qid in records.attempt(aid).question_ids:
            service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
        clock.advance(minutes=15)
        assert service.submit(aid).passed
        assert aid == 3 and records.attempt(aid).state == "scored"
        assert records.latest_certificate_code("E1003") not in (None, CERTIFICATE)
    finally:
        records.dispose()
    assert main(["db", "upgrade", "--db-url", db_url]) == 0  # a second upgrade changes nothing
    assert counts(db_url, ["attempts", "certificates"]) == {"attempts": 3, "certificates": 2}


def test_db_upgrade_adopts_the_oldest_layout(db_url, tmp_path, playbook, bank, blueprint, clock):
    """The first sopcoach's six tables get the five added since; their rows stay; releases and
    certificates work afterwards."""
    make_old_database(db_url, SKELETON_DUMP, tmp_path)
    before = counts(db_url, SKELETON_TABLES)
    with pytest.raises(SchemaOutdated):
        Records(db_url)
    assert main(["db", "upgrade", "--db-url", db_url]) == 0
    assert schema_differences(db_url) == []
    assert counts(db_url, SKELETON_TABLES) == before
    assert before["answers"] == 60 and before["learners"] == 3
    from sopcoach.authoring.versions import release
    records = Records(db_url)
    try:
        release(records, playbook, bank, ROOT / "playbook", label="1.0", now=clock())
        service = inst_on(records, tmp_path, playbook, bank, blueprint).exam_service(clock)
        aid = service.start_or_resume("E1003", seed=2)
        for qid in records.attempt(aid).question_ids:
            service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
        assert service.submit(aid).passed
        assert records.latest_certificate_code("E1003") is not None
    finally:
        records.dispose()


def test_a_layout_no_sopcoach_made_is_not_touched(db_url, tmp_path):
    """A `learners` table without its columns stops the upgrade (exit 1, one line); nothing changes."""
    engine = create_engine(db_url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE learners (id VARCHAR(64) PRIMARY KEY)"))
    engine.dispose()
    assert main(["db", "upgrade", "--db-url", db_url]) == 1
    assert revision_of(db_url) is None
    engine = create_engine(db_url)
    assert inspect(engine).get_table_names() == ["learners"]
    engine.dispose()


# -- the command line and the servers ----------------------------------------------------------
def test_commands_refuse_an_old_database_naming_the_upgrade_command(tmp_path):
    """Every command refuses main's database in one line that names the command to run, as the user
    would type it: with --db-url when the database was named by --db-url, plain when by the environment."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    make_old_database(url, MAIN_DUMP, tmp_path)
    by_flag = run_sopcoach(["enroll", "--id", "E9", "--name", "N", "--db-url", url], tmp_path / "home")
    assert by_flag.returncode == 1
    assert by_flag.stderr.splitlines()[-1].startswith("sopcoach enroll: the records database ")
    assert f"run `sopcoach db upgrade --db-url {url}` first" in by_flag.stderr
    by_env = run_sopcoach(["serve", "--port", "8998"], tmp_path / "home", SOPCOACH_DB_URL=url)
    assert by_env.returncode == 1 and by_env.stdout == ""
    assert len(by_env.stderr.splitlines()) == 1 and "run `sopcoach db upgrade` first" in by_env.stderr
    current = run_sopcoach(["db", "current"], tmp_path / "home", SOPCOACH_DB_URL=url)
    assert current.returncode == 3
    assert current.stdout.startswith("no revision: made before sopcoach had migrations")
    upgraded = run_sopcoach(["db", "upgrade"], tmp_path / "home", SOPCOACH_DB_URL=url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stderr.startswith(f"database: {url} (SOPCOACH_DB_URL)")
    assert upgraded.stdout == f"upgraded: made before migrations -> revision {schema.head_revision()}; data kept\n"
    assert run_sopcoach(["enroll", "--id", "E9", "--name", "N"], tmp_path / "home", SOPCOACH_DB_URL=url).returncode == 0


def test_the_learner_server_refuses_an_old_database_in_one_line(tmp_path):
    """The learner server started on its own (as JupyterHub starts it) exits 1 with one critical line."""
    from sopcoach.web.launch import learner_command
    url = f"sqlite:///{tmp_path / 'old.db'}"
    make_old_database(url, MAIN_DUMP, tmp_path)
    argv = learner_command(ROOT / "notebooks" / "learner", host="127.0.0.1", port=8997, base_url="/",
                           allowed_hosts=[], max_pages=10, pool_size=0, trust_proxy=False)
    env = dict(os.environ, SOPCOACH_HOME=str(tmp_path / "home"), SOPCOACH_DB_URL=url, SOPCOACH_CONTENT=str(ROOT))
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if "sopcoach db upgrade" in line]
    assert len(lines) == 1 and "Traceback" not in proc.stderr


def test_a_learner_page_never_calls_an_old_schema_busy(tmp_path, monkeypatch):
    """The learner page on an old database says the database needs an upgrade, not "busy, try again"."""
    from sopcoach.errors import RecordsError
    from sopcoach.ui.app import learner_app
    from sopcoach.ui.exam_app import refusal_message
    url = f"sqlite:///{tmp_path / 'old.db'}"
    make_old_database(url, MAIN_DUMP, tmp_path)
    monkeypatch.setenv("SOPCOACH_DB_URL", url)
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    page = learner_app().value
    assert "needs an upgrade" in page and "busy" not in page and "content files" not in page
    old = SchemaOutdated("the records database ... run `sopcoach db upgrade` first", None, "0001")
    for lang in ("en", "zh-CN"):
        assert refusal_message(old, lang) != refusal_message(RecordsError("locked"), lang)
    assert "busy" not in refusal_message(old, "en") and "繁忙" not in refusal_message(old, "zh-CN")


# -- other revisions ---------------------------------------------------------------------------------
def test_revision_0003_adds_attempt_variants_keeping_attempts(db_url):
    """0003 gives attempts a nullable ``variants`` column: an attempt made at 0002 keeps its row,
    with no drawn params (it drew no template); the downgrade drops the column again."""
    records = Records(db_url)
    records.enroll("E1", "张三")
    records.dispose()
    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(schema.alembic_config(conn), "0002")
    engine.dispose()
    engine = create_engine(db_url)
    assert "variants" not in {c["name"] for c in inspect(engine).get_columns("attempts")}
    with engine.begin() as c:
        c.execute(text("INSERT INTO attempts (learner_id, exam_id, number, state, seed, question_ids, option_orders, "
                       "bank_digest, playbook_hash, playbook_version, started_at, deadline_at) VALUES ('E1', 'x', 1, "
                       "'started', 7, '[\"q1\"]', '{}', 'd', 'h', '1.0', '2026-01-05 01:00:00', '2026-01-05 01:45:00')"))
    engine.dispose()
    with pytest.raises(SchemaOutdated, match="revision 0002"):
        Records(db_url)
    engine = make_engine(db_url)
    before, after = schema.upgrade(engine, db_url)
    engine.dispose()
    assert (before.current, after.current) == ("0002", "0003") and schema_differences(db_url) == []
    records = Records(db_url)
    try:
        row = records.attempts("E1")[0]
        assert (row.seed, row.question_ids, row.variants) == (7, ["q1"], None)
    finally:
        records.dispose()


def test_a_database_from_a_newer_sopcoach_is_refused(db_url):
    """A revision this code does not know: Records, `db upgrade` and `db current` all say the code is older."""
    Records(db_url).dispose()
    engine = create_engine(db_url)
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match=rf"revision 0099, newer than this sopcoach knows \(up to {schema.head_revision()}\)"):
        Records(db_url)
    assert main(["db", "upgrade", "--db-url", db_url]) == 1
    assert main(["db", "current", "--db-url", db_url]) == 3
    assert revision_of(db_url) == "0099"


NEXT_REVISION = '''
"""A later schema change (test only): learners get a nullable note."""
import sqlalchemy as sa
from alembic import op

revision = "{next}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("learners") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    op.execute("UPDATE learners SET note = 'upgraded'")
'''


def test_an_older_revision_is_refused_then_upgraded(db_url, tmp_path, monkeypatch):
    """With a revision after the head in the scripts, a database at the head is refused, and the upgrade
    runs the new revision (a new column, on SQLite through a batch table rebuild) keeping every row."""
    head = schema.head_revision()
    after = f"{int(head) + 1:04d}"
    scripts = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / f"{after}_note.py").write_text(NEXT_REVISION.replace("{next}", after).replace("{head}", head),
                                                           encoding="utf-8")
    records = Records(db_url)  # at the head
    records.enroll("E1", "张三")
    records.audit("x", learner_id="E1")
    records.dispose()
    monkeypatch.setattr(schema, "MIGRATIONS", scripts)
    with pytest.raises(SchemaOutdated, match=rf"revision {head}, older than this sopcoach's {after}: run `sopcoach db upgrade"):
        Records(db_url)
    engine = make_engine(db_url)
    before, upgraded = schema.upgrade(engine, db_url)
    engine.dispose()
    assert (before.status, upgraded.current) == ("outdated", after)
    engine = create_engine(db_url)
    with engine.connect() as c:
        assert c.execute(text("SELECT id, name, note FROM learners")).all() == [("E1", "张三", "upgraded")]
        assert c.execute(text("SELECT count(*) FROM audit_events")).scalar() == 1
    engine.dispose()
    Records(db_url).dispose()  # at the head now


# -- backup ------------------------------------------------------------------------------------------
class PairWriter(threading.Thread):
    """Writes audit events in pairs, one pair per transaction, until stopped: a consistent copy holds
    whole pairs only."""

    def __init__(self, db_url: str):
        super().__init__(daemon=True)
        self.records = Records(db_url)
        self.pairs = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                n = self.pairs
                self.records.run(lambda s: s.add_all([AuditEvent(at=to_db(utcnow()), kind="pair-a", detail=str(n)),
                                                      AuditEvent(at=to_db(utcnow()), kind="pair-b", detail=str(n))]))
                self.pairs += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def wait_for(self, pairs: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.pairs < pairs:
            assert self.error is None and time.monotonic() < deadline, self.error
            time.sleep(0.01)


def _pairs_in_sqlite_copy(path: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        a, b = (con.execute("SELECT count(*) FROM audit_events WHERE kind = ?", (k,)).fetchone()[0]
                for k in ("pair-a", "pair-b"))
        top = con.execute("SELECT max(CAST(detail AS INTEGER)) FROM audit_events WHERE kind = 'pair-b'").fetchone()[0]
        return a, b, top
    finally:
        con.close()


def _pairs_in_pg_archive(path: Path) -> tuple[int, int, int]:
    pg_restore = str(Path(find_pg_dump()).with_name("pg_restore"))
    sql = subprocess.run([pg_restore, "--data-only", "--table=audit_events", "-f", "-", str(path)],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    block = sql.split("COPY public.audit_events ")[1].split("\n\\.\n")[0].splitlines()[1:]
    kinds = [row.split("\t")[4] for row in block]
    details = [int(row.split("\t")[5]) for row in block if row.split("\t")[4] == "pair-b"]
    return kinds.count("pair-a"), kinds.count("pair-b"), max(details)


def test_backup_of_a_database_being_written_is_consistent(db_url, tmp_path):
    """`sopcoach db backup` while another connection keeps committing pairs: the copy opens, holds
    whole pairs only, and is the database of one moment (the writer went on past it)."""
    writer = PairWriter(db_url)
    writer.start()
    try:
        writer.wait_for(200)
        out = tmp_path / "copy.backup"
        assert main(["db", "backup", "-o", str(out), "--db-url", db_url]) == 0
        at_copy = writer.pairs
        writer.wait_for(at_copy + 50)  # still writing after the copy
    finally:
        writer.stop.set()
        writer.join(timeout=120)
        writer.records.dispose()
    assert writer.error is None
    read = _pairs_in_sqlite_copy if make_url(db_url).get_backend_name() == "sqlite" else _pairs_in_pg_archive
    a, b, top = read(out)
    assert a == b == top + 1  # pairs 0..top, each whole
    assert 200 <= a < writer.pairs


def test_backup_refuses_to_overwrite_and_says_which_database(db_url, tmp_path, capsys):
    """An existing file is kept unless --force; the database used is printed first."""
    Records(db_url).dispose()
    out = tmp_path / "copy.backup"
    out.write_text("keep me")
    assert main(["db", "backup", "-o", str(out), "--db-url", db_url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("database: ") and "exists; give another file, or --force" in err
    assert out.read_text() == "keep me"
    assert main(["db", "backup", "-o", str(out), "--force", "--db-url", db_url]) == 0
    assert out.stat().st_size > 1000 and not out.with_name("copy.backup.partial").exists()


def test_new_revision_writes_the_next_script_and_finds_no_drift(tmp_path):
    """The developer's helper writes the revision after the head; with the models unchanged it changes nothing."""
    scripts = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = schema.head_revision()
    path = schema.new_revision("nothing changed", scripts)
    assert path.name == f"{int(head) + 1:04d}_nothing_changed.py" and path.parent == scripts / "versions"
    body = path.read_text(encoding="utf-8")
    assert f"down_revision = '{head}'" in body and "op." not in body.split("def upgrade")[1].split("def downgrade")[0]
