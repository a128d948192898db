"""The records store (:class:`Records`): learners, sign-in sessions, exam attempts, answers, lesson progress.

Any SQLAlchemy URL works: ``sqlite:///path.db`` by default, or PostgreSQL as
``postgresql+psycopg://user:password@host:5432/dbname`` (``postgresql://`` means the same; the driver,
psycopg 3, comes with ``pip install 'sopcoach[postgres]'``). Times are stored as naive UTC.

Concurrency. On SQLite the store turns on WAL journaling, a 30 s busy timeout and ``BEGIN IMMEDIATE``
transactions, so writers queue one at a time and many Voila kernels can save answers at once without
"database is locked" (shared case 32). On PostgreSQL (READ COMMITTED) the rules that read, decide and
write lock the rows they decide on (:meth:`Transaction.attempt` and :meth:`Transaction.learner` with
``for_update``, i.e. ``SELECT ... FOR UPDATE``), so an answer and the submit of its attempt, or two starts
of one learner, happen one after the other. :meth:`Records.run` retries a transaction that hit a lock
(SQLite's "locked"/"busy", PostgreSQL's serialization failure 40001, deadlock 40P01, lock timeout 55P03)
or a dropped connection, with backoff; any other database error becomes one :class:`RecordsError` line
naming what it is. Opening a store reaches the database, then checks the schema revision
(:func:`sopcoach.records.schema.ensure`): a new database gets the tables, one at another revision is
refused in one line naming ``sopcoach db upgrade``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time as _time
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast
from collections.abc import Callable, Iterable, Iterator

from sqlalchemy import create_engine, delete, event, func, select
from sqlalchemy.engine import CursorResult, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import AuthError, ConfigError, DatabaseBusy, RecordsError
from . import schema
from .models import (Answer, Attempt, AuditEvent, Base, Certificate, Learner, LessonProgress, LoginThrottle, PageKernel,
                     QuestionReview, Release, WebSession, from_db, to_db, utcnow)

__all__ = [
    "MAX_CODE_LENGTH",
    "MAX_ID_LENGTH",
    "Records",
    "Transaction",
    "any_release",
    "describe_db_error",
    "hash_access_code",
    "make_engine",
    "new_access_code",
    "pending_review_ids",
    "release_label_for",
    "set_access_code",
    "token_hash",
]

T = TypeVar("T")

#: How the rules lock a row they decide on: ``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL, which
#: orders the transactions that lock the same row but lets inserts that merely reference it (a new
#: answer, session or certificate of the learner) go on; SQLite needs none (one writer at a time).
ROW_LOCK = {"key_share": True}


def pending_review_ids(s: Session) -> set[str]:
    """Return the ids of questions marked needs-review (see :mod:`sopcoach.authoring.versions`)."""
    return set(s.scalars(select(QuestionReview.question_id).where(QuestionReview.status == "needs_review")))


def release_label_for(s: Session, playbook_hash: str) -> str | None:
    """Return the label of the newest release of this playbook content, or ``None``."""
    return s.scalars(select(Release.label).where(Release.playbook_hash == playbook_hash)
                     .order_by(Release.id.desc()).limit(1)).first()


def any_release(s: Session) -> bool:
    """Return whether any playbook version has been released."""
    return s.scalars(select(Release.id).limit(1)).first() is not None


class Transaction:
    """The queries of one transaction, for rules that read and write atomically (:meth:`Records.transaction`).

    The exam, certificate and release rules live in their own packages; every query they need
    is a named method here, so SQL lives only in :mod:`sopcoach.records`. Rows returned are live
    ORM objects: changing their attributes is saved when the transaction commits.
    """

    def __init__(self, session: Session):
        self._s = session

    # -- writing ---------------------------------------------------------------------------------
    def add(self, row: Base) -> None:
        """Insert ``row`` when the transaction commits."""
        self._s.add(row)

    def flush(self) -> None:
        """Send pending inserts now (so that new rows get their ids)."""
        self._s.flush()

    # -- learners and attempts -------------------------------------------------------------------
    def learners(self) -> list[Learner]:
        """Return every learner, by employee id."""
        return list(self._s.scalars(select(Learner).order_by(Learner.id)))

    def set_access_code(self, row: Learner, code: tuple[str, str]) -> None:
        """Give the learner ``row`` the access code hashed as ``code`` (``(salt, hash)`` from
        :func:`hash_access_code`), clear their sign-in failures and end their sessions."""
        set_access_code(self._s, row, code)

    def end_sessions(self, learner_id: str, reason: str, now: datetime) -> int:
        """End every live session of a learner; return how many ended."""
        return _end_sessions(self._s, learner_id, reason, now)

    def learner(self, learner_id: str, *, for_update: bool = False) -> Learner | None:
        """Return the learner (``for_update``: locked for this transaction, which serialises the rules
        that decide on all of one learner's attempts, such as starting one)."""
        return self._s.get(Learner, learner_id, with_for_update=ROW_LOCK) if for_update else self._s.get(Learner, learner_id)

    def attempt(self, attempt_id: int, *, for_update: bool = False) -> Attempt | None:
        """Return the attempt (``for_update``: locked for this transaction where the database can)."""
        return self._s.get(Attempt, attempt_id, with_for_update=ROW_LOCK) if for_update else self._s.get(Attempt, attempt_id)

    def attempts(self, learner_id: str, exam_id: str) -> list[Attempt]:
        """Return the learner's attempts at ``exam_id`` by attempt number."""
        return list(self._s.scalars(select(Attempt).where(Attempt.learner_id == learner_id, Attempt.exam_id == exam_id)
                                    .order_by(Attempt.number)))

    def answer(self, attempt_id: int, question_id: str) -> Answer | None:
        return self._s.get(Answer, (attempt_id, question_id))

    def answers(self, attempt_id: int) -> list[Answer]:
        """Return every stored answer row of an attempt (the flagged-only ones too)."""
        return list(self._s.scalars(select(Answer).where(Answer.attempt_id == attempt_id)))

    def responses(self, attempt_id: int) -> dict[str, Any]:
        """Return the stored response of each answered question of an attempt, by question id."""
        return {a.question_id: a.response for a in
                self._s.scalars(select(Answer).where(Answer.attempt_id == attempt_id))}

    # -- releases and reviews --------------------------------------------------------------------
    def releases(self) -> list[Release]:
        """Return every release, oldest first."""
        return list(self._s.scalars(select(Release).order_by(Release.id)))

    def first_release(self) -> Release | None:
        return self._s.scalars(select(Release).order_by(Release.id).limit(1)).first()

    def latest_release(self) -> Release | None:
        return self._s.scalars(select(Release).order_by(Release.id.desc()).limit(1)).first()

    def release_labelled(self, label: str) -> Release | None:
        return self._s.scalars(select(Release).where(Release.label == label)).first()

    def release_of_content(self, playbook_hash: str) -> Release | None:
        """Return the newest release of this playbook content, or ``None``."""
        return self._s.scalars(select(Release).where(Release.playbook_hash == playbook_hash)
                               .order_by(Release.id.desc()).limit(1)).first()

    def release_label_for(self, playbook_hash: str) -> str | None:
        return release_label_for(self._s, playbook_hash)

    def any_release(self) -> bool:
        return any_release(self._s)

    def pending_review_ids(self) -> set[str]:
        return pending_review_ids(self._s)

    def pending_reviews(self) -> list[QuestionReview]:
        """Return the needs-review marks not yet confirmed."""
        return list(self._s.scalars(select(QuestionReview).where(QuestionReview.status == "needs_review")))

    def pending_reviews_with_labels(self) -> list[tuple[QuestionReview, str]]:
        """Return the needs-review marks with the label of the release that set each, oldest first."""
        return [(qr, label) for qr, label in self._s.execute(
            select(QuestionReview, Release.label).join(Release)
            .where(QuestionReview.status == "needs_review").order_by(QuestionReview.id))]

    # -- certificates ----------------------------------------------------------------------------
    def certificate(self, code: str) -> Certificate | None:
        return self._s.get(Certificate, code)

    def certificate_of_attempt(self, attempt_id: int) -> Certificate | None:
        return self._s.scalars(select(Certificate).where(Certificate.attempt_id == attempt_id)).first()

    def certificates_in_force(self, learner_id: str, *, unrevoked: bool = False) -> list[Certificate]:
        """Return the learner's certificates not superseded (``unrevoked``: nor revoked), newest first."""
        q = select(Certificate).where(Certificate.learner_id == learner_id, Certificate.superseded_by.is_(None))
        if unrevoked:
            q = q.where(Certificate.revoked_at.is_(None))
        return list(self._s.scalars(q.order_by(Certificate.issued_at.desc())))

    def certificates_with_learners(self, *, by_learner: bool = False) -> list[tuple[Certificate, Learner]]:
        """Return every certificate with its learner: newest first, or (``by_learner``) by learner id
        and then oldest first."""
        order = ((Certificate.learner_id, Certificate.issued_at) if by_learner
                 else (Certificate.issued_at.desc(),))
        return [(c, x) for c, x in self._s.execute(select(Certificate, Learner).join(Learner).order_by(*order))]


#: The driver a plain ``postgresql://`` URL gets (SQLAlchemy's own default, psycopg2, is not a dependency).
POSTGRES_DRIVER = "postgresql+psycopg"
#: How long one statement waits for a lock before the transaction is tried again (SQLite's busy
#: timeout; PostgreSQL's lock_timeout).
LOCK_TIMEOUT_SECONDS = 30
#: PostgreSQL SQLSTATEs after which the whole transaction is tried again: serialization failure,
#: deadlock detected, lock not available.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def make_engine(url: str) -> Engine:
    """Create an engine; on SQLite turn on WAL, a 30 s busy timeout and ``BEGIN IMMEDIATE``.

    ``postgresql://`` and ``postgres://`` URLs use psycopg 3 (``postgresql+psycopg://``); their
    connections wait at most 30 s for a lock (``lock_timeout``).

    Raises
    ------
    ConfigError
        When the URL cannot be read, or names a database whose driver is not installed (PostgreSQL:
        ``pip install 'sopcoach[postgres]'``).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"the database URL {url!r} cannot be read: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=POSTGRES_DRIVER)
    if parsed.get_backend_name() != "sqlite":
        try:
            engine = create_engine(parsed, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            hint = (" install it with: pip install 'sopcoach[postgres]'" if parsed.get_backend_name() == "postgresql"
                    else "")
            raise ConfigError(f"the database URL needs the Python driver {exc.name!r}, which is not installed;{hint}") from exc
        if parsed.get_backend_name() == "postgresql":
            @event.listens_for(engine, "connect")
            def _lock_timeout(dbapi_conn: Any, _record: Any) -> None:
                # like SQLite's busy timeout: a lock held this long fails (55P03), and Records.run retries
                with dbapi_conn.cursor() as cur:
                    cur.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
                dbapi_conn.commit()
        return engine
    engine = create_engine(url, connect_args={"timeout": LOCK_TIMEOUT_SECONDS, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {LOCK_TIMEOUT_SECONDS * 1000}")
        if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _is_lock(exc: DBAPIError) -> bool:
    """Whether ``exc`` says the database was locked (trying the transaction again may succeed)."""
    if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    text = str(exc.orig).lower()  # SQLite: "database is locked", "database table is locked", SQLITE_BUSY
    return isinstance(exc, OperationalError) and ("locked" in text or "busy" in text)


def describe_db_error(exc: DBAPIError) -> str:
    """Return one line saying what a database error is: ``database error (<kind>): <first line>``.

    ``kind`` is SQLAlchemy's class of the error without ``Error`` (``integrity``, ``operational``,
    ``data``, ``programming``, ...); the rest is the first line of the driver's message (PostgreSQL
    adds its SQLSTATE), without the SQL or its parameters.

    >>> from sqlalchemy.exc import IntegrityError
    >>> describe_db_error(IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: t.id\\nmore")))
    'database error (integrity): UNIQUE constraint failed: t.id'
    """
    kind = type(exc).__name__.removesuffix("Error").lower() or "dbapi"
    lines = str(exc.orig).strip().splitlines()
    first = lines[0].strip() if lines else type(exc.orig).__name__
    state = getattr(exc.orig, "sqlstate", None)
    return f"database error ({kind}): {first}" + (f" [SQLSTATE {state}]" if state else "")


def _hash_code(code: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", code.encode(), bytes.fromhex(salt), 200_000).hex()


def token_hash(token: str) -> str:
    """Return the SHA-256 (hex) under which a session token is stored (never the token itself)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


#: Salt and hash checked when an id is unknown, so that a sign-in costs the same either way.
_DUMMY_SALT = "00" * 16
#: The longest employee id and access code accepted (characters).
MAX_ID_LENGTH = 64
MAX_CODE_LENGTH = 64


def _lesson_row(s: Session, learner_id: str, lesson_id: str, now: datetime) -> LessonProgress:
    """Return the learner's progress row of a lesson, locked for the transaction, made (opened ``now``)
    when there is none (two pages making it at once: one insert fails, and its retry finds the row)."""
    row = s.get(LessonProgress, (learner_id, lesson_id), with_for_update=ROW_LOCK)
    if row is None:
        row = LessonProgress(learner_id=learner_id, lesson_id=lesson_id, opened_at=to_db(now),
                             practice={}, completed_at=None)
        s.add(row)
    return row


class Records:
    """Facade over the records database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL, e.g. ``sqlite:////data/sopcoach.db``.
    retries : int
        How often a write that hit a locked database is retried (with exponential backoff).
    upgrade_command : str, optional
        The command a refusal tells the user to run; default ``sopcoach db upgrade --db-url URL``
        (:func:`sopcoach.config.open_records` leaves the option out where the environment names the
        same database).

    An empty database gets the current tables; any other must be at the schema revision of this
    code (:func:`sopcoach.records.schema.ensure`).

    Raises
    ------
    SchemaOutdated
        When the database was made before migrations or is at an older revision (one line naming
        ``upgrade_command``).
    SchemaTooNew
        When a newer sopcoach upgraded the database.
    """

    def __init__(self, url: str, retries: int = 8, *, upgrade_command: str | None = None):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.retries = retries
        try:
            self.run(lambda s: s.connection())  # reach the database first: one RecordsError line when it cannot be reached
            schema.ensure(self.engine, url, upgrade_command)
        except BaseException:
            self.engine.dispose()
            raise

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction, committed on success and rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def run(self, fn: Callable[[Session], T], *, retry_conflicts: bool = False) -> T:
        """Run ``fn(session)`` in one transaction, tried again (with backoff) when the database is locked.

        A transaction is tried again after SQLite's "database is locked"/"busy", PostgreSQL's
        serialization failure or deadlock (SQLSTATE 40001, 40P01, 55P03) and a dropped connection;
        with ``retry_conflicts`` also after a unique-key conflict (for get-or-create code, whose next
        try finds the row another transaction inserted meanwhile). ``fn`` must therefore have no
        effect outside the database.

        Raises
        ------
        DatabaseBusy
            When the database stays locked through every retry.
        RecordsError
            On any other database error (or a connection dropped at every try): one line,
            ``database error (<kind>): <the database's first line>``.
        """
        delay = 0.05
        for attempt in range(self.retries + 1):
            try:
                with self.session() as s:
                    return fn(s)
            except DBAPIError as exc:
                locked = _is_lock(exc)
                if not (locked or exc.connection_invalidated or (retry_conflicts and isinstance(exc, IntegrityError))):
                    raise RecordsError(describe_db_error(exc)) from exc
                if attempt == self.retries:
                    if locked:
                        raise DatabaseBusy(f"the database stayed locked through {self.retries + 1} tries; "
                                           "nothing was saved, please try again") from exc
                    raise RecordsError(describe_db_error(exc)) from exc
                _time.sleep(delay + secrets.randbelow(50) / 1000)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def transaction(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn(transaction)`` in one transaction (see :meth:`run` for retries and errors)."""
        return self.run(lambda s: fn(Transaction(s)))

    # -- learners and sign-in ----------------------------------------------------------------
    def enroll(self, learner_id: str, name: str, team: str | None = None, cohort: str | None = None,
               code: str | None = None, now: datetime | None = None) -> str:
        """Create or update a learner and issue a new personal access code; return the code.

        The code is shown once and stored only as a salted PBKDF2 hash. A deactivated learner
        enrolled again is active again. ``now`` (aware UTC, default now) is the enrolment time of a
        new learner.
        """
        learner_id = learner_id.strip()
        if not learner_id or not name.strip():
            raise AuthError("an employee id and a name are required")
        code = code or new_access_code()
        hashed = hash_access_code(code)  # PBKDF2 (~0.1 s of CPU) before the transaction, not inside it
        now = now or utcnow()

        def do(s: Session) -> None:
            row = s.get(Learner, learner_id)
            if row is None:
                row = Learner(id=learner_id, created_at=to_db(now))
                s.add(row)
            row.name = name.strip()
            row.deactivated_at = None
            if team is not None:  # a new code alone keeps the learner's team and cohort
                row.team = team
            if cohort is not None:
                row.cohort = cohort
            set_access_code(s, row, hashed)
        if len(learner_id) > MAX_ID_LENGTH:
            raise AuthError(f"an employee id has at most {MAX_ID_LENGTH} characters")
        self.run(do, retry_conflicts=True)
        return code

    def learner(self, learner_id: str) -> Learner | None:
        return self.run(lambda s: s.get(Learner, learner_id))

    def learners(self) -> list[Learner]:
        return self.run(lambda s: list(s.scalars(select(Learner).order_by(Learner.id))))

    def authenticate(self, learner_id: str, code: str, now: datetime | None = None) -> Learner:
        """Check an employee id and access code; return the learner.

        The check costs the same for a known and an unknown id (an unknown id is checked against a
        dummy hash), so response times do not tell which ids exist. Throttling of repeated failures
        is the sign-in door's job (:class:`sopcoach.web.identity.SignInThrottle`), keyed by the
        client as well as the id, so that a stranger cannot lock a learner out.

        Raises
        ------
        AuthError
            "unknown id or wrong access code" (the same for both), also for a deactivated learner
            (a leaver; the audit event ``sign_in_deactivated`` tells the trainer why) and for an id or a code
            longer than :data:`MAX_ID_LENGTH` / :data:`MAX_CODE_LENGTH` characters.
        """
        now = now or utcnow()
        learner_id = (learner_id or "").strip()
        code = code or ""
        too_long = len(learner_id) > MAX_ID_LENGTH or len(code) > MAX_CODE_LENGTH
        row = None if too_long or not learner_id else self.run(lambda s: s.get(Learner, learner_id))
        if row is not None and row.code_salt:
            ok = hmac.compare_digest(row.code_hash, _hash_code(code, row.code_salt))
        else:
            hmac.compare_digest("!", _hash_code(code[:MAX_CODE_LENGTH], _DUMMY_SALT))
            ok = False
        if ok and row is not None and row.active:
            return row
        kind = "sign_in_deactivated" if ok else "sign_in_failed"
        self.run(lambda s: s.add(AuditEvent(at=to_db(now), learner_id=learner_id[:MAX_ID_LENGTH], kind=kind)))
        raise AuthError("unknown id or wrong access code")

    # -- sessions at the learner server's door --------------------------------------------------
    def open_session(self, learner_id: str, ttl_seconds: int, now: datetime | None = None) -> str:
        """Start a signed-in session for ``learner_id``; return its token (shown once, for the cookie).

        Parameters
        ----------
        learner_id : str
            A learner that exists.
        ttl_seconds : int
            Lifetime in elapsed seconds.

        Returns
        -------
        str
            43 URL-safe characters (256 random bits); only its SHA-256 is stored.
        """
        now = now or utcnow()
        token = secrets.token_urlsafe(32)
        self.run(lambda s: s.add(WebSession(token_hash=token_hash(token), learner_id=learner_id,
                                            created_at=to_db(now),
                                            expires_at=to_db(now + timedelta(seconds=int(ttl_seconds))),
                                            ended_at=None, ended_reason="")))
        return token

    def session_learner(self, token: str | None, now: datetime | None = None) -> Learner | None:
        """Return the learner of a live session token, or ``None`` (unknown, ended, expired, or the
        learner was deactivated)."""
        if not token or len(token) > 128:
            return None
        now = now or utcnow()

        def do(s: Session) -> Learner | None:
            row = s.get(WebSession, token_hash(token))
            if row is None or row.ended_at is not None or from_db(row.expires_at) <= now:
                return None
            learner = s.get(Learner, row.learner_id)
            return learner if learner is not None and learner.active else None
        return self.run(do)

    def live_sessions(self, session_hashes: Iterable[str], now: datetime | None = None) -> set[str]:
        """Return those of ``session_hashes`` whose sessions are still live (one query for all)."""
        now = now or utcnow()
        wanted = list(set(session_hashes))
        if not wanted:
            return set()

        def do(s: Session) -> set[str]:
            rows = s.scalars(select(WebSession).where(WebSession.token_hash.in_(wanted), WebSession.ended_at.is_(None)))
            return {row.token_hash for row in rows if from_db(row.expires_at) > now}
        return self.run(do)

    def end_session(self, token: str, reason: str = "signed_out", now: datetime | None = None) -> None:
        """End one session (sign-out); an unknown token is ignored."""
        now = now or utcnow()

        def do(s: Session) -> None:
            row = s.get(WebSession, token_hash(token or ""))
            if row is not None and row.ended_at is None:
                row.ended_at, row.ended_reason = to_db(now), reason
        self.run(do)

    def end_sessions(self, learner_id: str, reason: str = "revoked", now: datetime | None = None) -> int:
        """End every live session of a learner (``sopcoach revoke``); return how many ended."""
        now = now or utcnow()
        return self.run(lambda s: _end_sessions(s, learner_id, reason, now))

    def bind_page(self, kernel_id: str, learner_id: str, session_hash: str, now: datetime | None = None) -> None:
        """Record that ``kernel_id`` serves the page of ``learner_id`` in session ``session_hash``."""
        now = now or utcnow()
        self.run(lambda s: s.merge(PageKernel(kernel_id=kernel_id, learner_id=learner_id,
                                              session_hash=session_hash, bound_at=to_db(now))))

    def page_owner(self, kernel_id: str, now: datetime | None = None) -> str | None:
        """Return the learner whose page ``kernel_id`` serves, while that session is live; else ``None``."""
        now = now or utcnow()

        def do(s: Session) -> str | None:
            row = s.get(PageKernel, kernel_id)
            if row is None:
                return None
            sess = s.get(WebSession, row.session_hash)
            if sess is None or sess.ended_at is not None or from_db(sess.expires_at) <= now:
                return None
            return row.learner_id
        return self.run(do)

    def forget_old_pages(self, before: datetime) -> int:
        """Forget page bindings made before ``before`` (their kernels are long gone); return how many."""
        def do(s: Session) -> int:
            result = s.execute(delete(PageKernel).where(PageKernel.bound_at < to_db(before)))
            return cast("CursorResult[Any]", result).rowcount  # a DELETE gives a CursorResult
        return self.run(do)

    def unbind_pages(self, kernel_ids: list[str]) -> None:
        """Forget the bindings of kernels that have stopped."""
        if kernel_ids:
            self.run(lambda s: s.execute(delete(PageKernel).where(PageKernel.kernel_id.in_(list(kernel_ids)))))

    def hub_learner(self, hub_name: str) -> Learner:
        """Return the learner a JupyterHub user is, creating one (without an access code) if none is.

        JupyterHub lowercases user names: an employee enrolled as ``E1001`` signs in to the Hub as
        ``e1001``. The learner is the one whose id is ``hub_name``; else the one enrolled learner whose
        id equals it ignoring case (their name, team and cohort are kept); else a new learner whose id
        and name are ``hub_name``.

        Raises
        ------
        AuthError
            When several enrolled ids equal ``hub_name`` ignoring case and none exactly (the trainer
            must rename one), or when the learner was deactivated (a leaver).
        RecordsError
            On a database error.
        """
        def do(s: Session) -> Learner:
            row = s.get(Learner, hub_name)
            if row is not None:
                return _active(row)
            same = s.scalars(select(Learner).where(func.lower(Learner.id) == hub_name.lower())).all()
            if len(same) > 1:
                raise AuthError(f"JupyterHub user {hub_name!r} matches several enrolled ids "
                                f"({', '.join(sorted(x.id for x in same))}); give each learner a distinct id")
            if same:
                return _active(same[0])
            row = Learner(id=hub_name, name=hub_name, code_salt="", code_hash="!", created_at=to_db(utcnow()))
            s.add(row)
            return row
        return self.run(do, retry_conflicts=True)  # two kernels of a new hub user may create it at once

    def audit(self, kind: str, detail: str = "", learner_id: str | None = None,
              attempt_id: int | None = None) -> None:
        """Record a refused or notable action."""
        self.run(lambda s: s.add(AuditEvent(at=to_db(utcnow()), kind=kind, detail=detail[:2000],
                                            learner_id=learner_id, attempt_id=attempt_id)))

    def audit_events(self, kind: str | None = None) -> list[AuditEvent]:
        def do(s: Session) -> list[AuditEvent]:
            q = select(AuditEvent).order_by(AuditEvent.id)
            return list(s.scalars(q.where(AuditEvent.kind == kind) if kind else q))
        return self.run(do)

    # -- attempts and answers (the rules live in sopcoach.certification.exam) -------------------------------
    def attempts(self, learner_id: str | None = None, exam_id: str | None = None) -> list[Attempt]:
        """Return attempts (all, or one learner's), oldest first."""
        def do(s: Session) -> list[Attempt]:
            q = select(Attempt).order_by(Attempt.id)
            if learner_id is not None:
                q = q.where(Attempt.learner_id == learner_id)
            if exam_id is not None:
                q = q.where(Attempt.exam_id == exam_id)
            return list(s.scalars(q))
        return self.run(do)

    def attempt(self, attempt_id: int) -> Attempt | None:
        return self.run(lambda s: s.get(Attempt, attempt_id))

    def open_attempt_ids(self, learner_id: str) -> list[int]:
        """Return the ids of the learner's attempts still in state ``started`` (any exam)."""
        return self.run(lambda s: list(s.scalars(
            select(Attempt.id).where(Attempt.learner_id == learner_id, Attempt.state == "started"))))

    def attempt_counts(self, exam_id: str) -> dict[str, int]:
        """Return the number of attempts per learner id for ``exam_id``."""
        return dict(self.run(lambda s: [(learner, int(n)) for learner, n in s.execute(
            select(Attempt.learner_id, func.count()).where(Attempt.exam_id == exam_id)
            .group_by(Attempt.learner_id))]))

    def latest_certificate_code(self, learner_id: str) -> str | None:
        """Return the code of the learner's most recently issued certificate that nothing replaced."""
        return self.run(lambda s: s.execute(
            select(Certificate.code).where(Certificate.learner_id == learner_id, Certificate.superseded_by.is_(None))
            .order_by(Certificate.issued_at.desc()).limit(1)).scalar())

    def releases(self) -> list[Release]:
        """Return every release, oldest first."""
        return self.transaction(lambda tx: tx.releases())

    def latest_release(self) -> Release | None:
        """Return the newest release, or ``None`` before the first one."""
        return self.transaction(lambda tx: tx.latest_release())

    def pending_review_ids(self) -> set[str]:
        """Return the ids of questions marked needs-review."""
        return self.run(pending_review_ids)

    def answers(self, attempt_id: int) -> dict[str, Answer]:
        """Return the stored answers of an attempt by question id."""
        return self.run(lambda s: {a.question_id: a for a in
                                   s.scalars(select(Answer).where(Answer.attempt_id == attempt_id))})

    # -- lesson progress (the completion rule lives in sopcoach.lessons) -----------------------
    def lesson_progress(self, learner_id: str) -> dict[str, LessonProgress]:
        """Return the learner's progress rows by lesson id (lessons never opened are absent)."""
        return self.run(lambda s: {p.lesson_id: p for p in s.scalars(
            select(LessonProgress).where(LessonProgress.learner_id == learner_id))})

    def open_lesson(self, learner_id: str, lesson_id: str, now: datetime | None = None) -> LessonProgress:
        """Record that the learner opened a lesson (the first opening is kept); return the row."""
        now = now or utcnow()

        return self.run(lambda s: _lesson_row(s, learner_id, lesson_id, now), retry_conflicts=True)

    def update_lesson_practice(self, learner_id: str, lesson_id: str,
                               update: Callable[[dict], tuple[dict, bool]],
                               now: datetime | None = None) -> LessonProgress:
        """Change a lesson's practice record in one transaction; return the row.

        ``update(practice) -> (new_practice, complete)`` gets a copy of the stored JSON; when it
        says complete, ``completed_at`` is set (once: completion is never taken back).
        """
        now = now or utcnow()

        def do(s: Session) -> LessonProgress:
            row = _lesson_row(s, learner_id, lesson_id, now)
            new, complete = update(json_copy(row.practice or {}))
            row.practice = new
            if complete and row.completed_at is None:
                row.completed_at = to_db(now)
            return row
        return self.run(do, retry_conflicts=True)


def new_access_code() -> str:
    """Return a new personal access code: three groups of four hex digits, e.g. ``3fa2-9c01-7be4`` (48 bits)."""
    return "-".join(secrets.token_hex(2) for _ in range(3))


def hash_access_code(code: str) -> tuple[str, str]:
    """Return ``(salt, hash)`` under which an access code is stored (salted PBKDF2-SHA256, 200,000 rounds)."""
    salt = secrets.token_hex(16)
    return salt, _hash_code(code, salt)


def set_access_code(s: Session, row: Learner, code: tuple[str, str]) -> None:
    """Store the hashed access code ``code`` (``(salt, hash)``) as the learner's, clear their sign-in
    failures and end their sessions (reason ``code_reissued``), in the session's transaction."""
    row.code_salt, row.code_hash = code
    s.merge(LoginThrottle(learner_id=row.id, failures=0, blocked_until=None))
    _end_sessions(s, row.id, "code_reissued", utcnow())


def _active(row: Learner) -> Learner:
    if not row.active:
        raise AuthError(f"learner {row.id!r} was deactivated (left the company); a trainer can enroll them again")
    return row


def _end_sessions(s: Session, learner_id: str, reason: str, now: datetime) -> int:
    rows = list(s.scalars(select(WebSession).where(WebSession.learner_id == learner_id,
                                                   WebSession.ended_at.is_(None))))
    for row in rows:
        row.ended_at, row.ended_reason = to_db(now), reason
    return len(rows)


def json_copy(value: Any) -> Any:
    """Return a deep copy of JSON data (so a changed JSON column is a new object SQLAlchemy sees)."""
    return json.loads(json.dumps(value))
