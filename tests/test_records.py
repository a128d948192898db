"""The records store: sign-in, throttling, and concurrent writes, on SQLite and PostgreSQL."""
from __future__ import annotations

import multiprocessing as mp
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sopcoach.errors import AuthError
from sopcoach.records.models import Answer, Attempt, utcnow
from sopcoach.records.store import Records

#: Every test that uses the records database runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")


@pytest.mark.databases("sqlite")
def test_sqlite_uses_wal_and_a_busy_timeout(records):
    """The SQLite connection is in WAL mode with a busy timeout of at least 5 s."""
    with records.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_enrolled_learner_signs_in_with_the_issued_code(records):
    """The code printed by enroll opens the learner's account; it is stored hashed."""
    code = records.enroll("e1", "李四", team="华东")
    assert records.authenticate("e1", code).name == "李四"
    assert code not in records.learner("e1").code_hash


@pytest.mark.parametrize("learner_id, code", [("e1", "wrong"), ("nobody", "x")])
def test_wrong_code_and_unknown_id_get_the_same_refusal(records, learner_id, code):
    """Unknown id and wrong code are refused with one message, so ids cannot be probed."""
    records.enroll("e1", "李四")
    with pytest.raises(AuthError, match="unknown id or wrong access code"):
        records.authenticate(learner_id, code)


def test_failures_never_lock_the_learner_out(records):
    """Failed sign-ins for an id do not stop its learner: throttling is the door's job, per client."""
    code = records.enroll("e1", "李四")
    for _ in range(10):
        with pytest.raises(AuthError):
            records.authenticate("e1", "bad")
    assert records.authenticate("e1", code).id == "e1"


def test_unknown_id_costs_a_full_code_check(records, monkeypatch):
    """An unknown id, an empty id and an over-long id each run the same PBKDF2 check as a known one."""
    import sopcoach.records.store as mod
    calls = []
    real = mod._hash_code
    monkeypatch.setattr(mod, "_hash_code", lambda code, salt: calls.append(salt) or real(code, salt))
    records.enroll("e1", "李四", code="right")
    calls.clear()
    for learner_id in ("e1", "nobody", "", "x" * 1_000_000):
        with pytest.raises(AuthError, match="unknown id or wrong access code"):
            records.authenticate(learner_id, "wrong")
    assert len(calls) == 4


def test_sessions_end_at_sign_out_reissue_and_revoke(records):
    """A session token names its learner until sign-out; re-issuing the code or revoking ends all of them."""
    records.enroll("e1", "李四")
    one, two = records.open_session("e1", 3600), records.open_session("e1", 3600)
    assert records.session_learner(one).id == "e1" and records.session_learner("forged") is None
    records.end_session(one)
    assert records.session_learner(one) is None and records.session_learner(two).id == "e1"
    records.enroll("e1", "李四")  # a new access code
    assert records.session_learner(two) is None
    three = records.open_session("e1", 3600)
    assert records.end_sessions("e1") == 1 and records.session_learner(three) is None


def test_live_sessions_answers_for_many_sessions_at_once(records):
    """The page sweep asks once which sessions still live: ended, expired and unknown ones are not."""
    from sopcoach.records.store import token_hash
    records.enroll("e1", "李四")
    records.enroll("e2", "王五")
    now = utcnow()
    live, ended, expired = (records.open_session("e1", 3600, now=now), records.open_session("e1", 3600, now=now),
                            records.open_session("e2", 60, now=now - timedelta(hours=1)))
    records.end_session(ended)
    hashes = {token_hash(x) for x in (live, ended, expired)} | {"0" * 64}
    assert records.live_sessions(hashes, now=now) == {token_hash(live)}
    assert records.live_sessions([], now=now) == set()


def test_session_expires(records):
    """A session is refused from its expiry on."""
    records.enroll("e1", "李四")
    now = utcnow()
    tok = records.open_session("e1", 60, now)
    assert records.session_learner(tok, now + timedelta(seconds=59)).id == "e1"
    assert records.session_learner(tok, now + timedelta(seconds=60)) is None


def test_page_owner_follows_the_session(records):
    """A page kernel names its learner while the session lives, and nobody after it ends."""
    from sopcoach.records.store import token_hash
    records.enroll("e1", "李四")
    tok = records.open_session("e1", 3600)
    records.bind_page("k-1", "e1", token_hash(tok))
    assert records.page_owner("k-1") == "e1" and records.page_owner("k-2") is None
    records.end_session(tok)
    assert records.page_owner("k-1") is None
    records.unbind_pages(["k-1"])


def test_hashed_code_of_a_hub_learner_never_matches(records):
    """A learner created for JupyterHub has no access code that could match."""
    records.hub_learner("hubuser")
    with pytest.raises(AuthError):
        records.authenticate("hubuser", "")


def test_hub_user_is_the_learner_enrolled_under_another_case(records):
    """JupyterHub lowercases names: Hub user e1001 is the enrolled E1001 (name and team kept), not a new learner;
    an id matching several enrolled ids ignoring case is refused; an unknown Hub user gets a new learner."""
    records.enroll("E1001", "张三", team="A")
    learner = records.hub_learner("e1001")
    assert (learner.id, learner.name, learner.team) == ("E1001", "张三", "A")
    assert [x.id for x in records.learners()] == ["E1001"]
    records.enroll("AB1", "李四")
    records.enroll("Ab1", "王五")
    with pytest.raises(AuthError, match="several enrolled ids"):
        records.hub_learner("ab1")
    records.enroll("ab2", "赵六")
    records.enroll("AB2", "钱七")
    assert records.hub_learner("ab2").name == "赵六"  # the exact id wins
    new = records.hub_learner("newcomer")
    assert (new.id, new.name) == ("newcomer", "newcomer") and len(records.learners()) == 6


def _writer(url: str, worker: int, n: int, start, errors) -> None:
    from sopcoach.records.models import to_db, utcnow
    from sopcoach.records.store import Records
    r = Records(url)
    start.wait()
    try:
        for i in range(n):
            def do(s, i=i):
                # read, then write: the pattern that fails at once with deferred transactions
                s.execute(select(func.count()).select_from(Answer)).scalar()
                s.add(Answer(attempt_id=worker, question_id=f"q{i}", response={"w": worker, "i": i},
                             flagged=False, revision=1, answered_at=to_db(utcnow())))
            r.run(do)
    except Exception as exc:
        errors.put(repr(exc))
    finally:
        r.dispose()


def test_twenty_processes_saving_fifty_answers_lose_nothing(db_url):
    """Case 32: 20 processes x 50 answers on one database (SQLite file, PostgreSQL) give 1000 rows and no error."""
    url = db_url
    r = Records(url)
    r.enroll("e", "e")
    with r.session() as s:
        for w in range(20):
            s.add(Attempt(id=w, learner_id="e", exam_id="x", number=w + 1, state="started", seed=0,
                          question_ids=[], option_orders={}, bank_digest="", playbook_hash="",
                          playbook_version="", started_at=utcnow().replace(tzinfo=None),
                          deadline_at=utcnow().replace(tzinfo=None)))
    ctx = mp.get_context("forkserver")  # each child forks from a server that imported this module once
    ctx.set_forkserver_preload([__name__])
    start, errors = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, w, 50, start, errors)) for w in range(20)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 20
    assert errors.empty()
    with r.session() as s:
        assert s.execute(select(func.count()).select_from(Answer)).scalar() == 1000
    r.dispose()


def test_a_new_code_keeps_team_and_cohort(records):
    """Re-enrolling only to issue a new code keeps the learner's team and cohort."""
    records.enroll("e9", "李四", team="华东", cohort="2025Q3")
    records.enroll("e9", "李四")
    row = records.learner("e9")
    assert (row.team, row.cohort) == ("华东", "2025Q3")


@pytest.mark.parametrize("url", ["postgresql://u@/sop?host=/nowhere", "postgres://u@/sop?host=/nowhere",
                                 "postgresql+psycopg://u@/sop?host=/nowhere"])
def test_a_postgresql_url_uses_psycopg_3(url):
    """Plain postgresql:// URLs get psycopg 3, the driver of the 'postgres' extra (not SQLAlchemy's psycopg2)."""
    from sopcoach.records.store import make_engine
    engine = make_engine(url)
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    engine.dispose()


def test_a_missing_postgresql_driver_names_the_extra(monkeypatch):
    """Without psycopg, a PostgreSQL URL stops with one ConfigError line naming the extra (not ModuleNotFoundError)."""
    import sys

    from sopcoach.errors import ConfigError
    from sopcoach.records.store import make_engine
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an installation without the extra sees
    with pytest.raises(ConfigError, match=r"^the database URL needs the Python driver 'psycopg', which is not installed; "
                                          r"install it with: pip install 'sopcoach\[postgres\]'$"):
        make_engine("postgresql+psycopg://u@/sop?host=/nowhere")


@pytest.mark.databases("postgresql")
def test_postgresql_waits_for_a_lock_as_long_as_sqlite(records):
    """A PostgreSQL connection gives up on a lock after 30 s (lock_timeout), like SQLite's busy timeout."""
    with records.engine.connect() as c:
        assert c.exec_driver_sql("SHOW lock_timeout").scalar() == "30s"


def _race_two(records, first_a, first_b):
    """Run two transactions in threads that each take a row lock, meet at a barrier, then take the other's;
    return how often each transaction function ran (a retry runs it again) and the errors."""
    import threading

    from sqlalchemy import text
    meet = threading.Barrier(2, timeout=60)
    runs = {"x": 0, "y": 0}
    errors = []

    def tx(name, first, second):
        def do(s):
            runs[name] += 1
            s.execute(text("UPDATE learners SET name = name || '+' WHERE id = :id"), {"id": first})
            if runs[name] == 1:
                meet.wait()  # both hold their first lock now
            s.execute(text("UPDATE learners SET name = name || '+' WHERE id = :id"), {"id": second})
        try:
            records.run(do)
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=tx, args=("x", first_a, first_b)),
               threading.Thread(target=tx, args=("y", first_b, first_a))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    return runs, errors


@pytest.mark.databases("postgresql")
def test_a_deadlock_is_tried_again_and_both_transactions_land(records):
    """Two transactions locking two rows in opposite orders deadlock (40P01); PostgreSQL aborts one, and
    Records.run runs it again, so both changes are stored and nobody sees an error."""
    records.enroll("a", "A")
    records.enroll("b", "B")
    runs, errors = _race_two(records, "a", "b")
    assert errors == []
    assert sorted(runs.values()) == [1, 2]  # the victim ran twice
    assert (records.learner("a").name, records.learner("b").name) == ("A++", "B++")


@pytest.mark.databases("postgresql")
def test_a_serialization_failure_is_tried_again(records):
    """Two REPEATABLE READ transactions updating one row: the second fails with 40001 and its retry lands."""
    import threading

    from sqlalchemy import text
    records.enroll("a", "A")
    meet = threading.Barrier(2, timeout=60)
    runs, errors = [], []

    def tx():
        def do(s):
            s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            s.execute(text("SELECT name FROM learners WHERE id = 'a'")).scalar()  # the snapshot is taken here
            runs.append(1)
            if len(runs) <= 2:
                meet.wait()  # both have their snapshot before either writes
            s.execute(text("UPDATE learners SET name = name || '+' WHERE id = 'a'"))
        try:
            records.run(do)
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=tx) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert errors == []
    assert len(runs) == 3
    assert records.learner("a").name == "A++"


def test_an_unreachable_postgresql_server_is_one_records_error_line(tmp_path):
    """A PostgreSQL URL whose server is not there stops with one RecordsError line saying so (no traceback)."""
    from sopcoach.errors import RecordsError
    with pytest.raises(RecordsError) as info:
        Records(f"postgresql+psycopg://nobody@/sop?host={tmp_path}")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("database error (operational): ") and str(tmp_path) in message
