"""The records database's tables (SQLAlchemy models) and how times are stored.

Learners, sign-in throttles, web sessions, page kernels, exam attempts and answers, lesson progress,
audit events, playbook releases, question reviews and certificates. Times are stored as naive UTC:
:func:`to_db` converts an aware datetime for storage, :func:`from_db` converts it back.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, overload

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Answer",
    "Attempt",
    "AuditEvent",
    "Certificate",
    "Learner",
    "LessonProgress",
    "LoginThrottle",
    "PageKernel",
    "QuestionReview",
    "Release",
    "WebSession",
    "from_db",
    "to_db",
    "utcnow",
]


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(timezone.utc)


@overload
def to_db(dt: datetime) -> datetime: ...
@overload
def to_db(dt: None) -> None: ...
@overload
def to_db(dt: datetime | None) -> datetime | None: ...
def to_db(dt: datetime | None) -> datetime | None:
    """Convert an aware datetime to naive UTC for storage (naive input is refused)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime (UTC)")
    return dt.astimezone(timezone.utc).replace(tzinfo=None)


@overload
def from_db(dt: datetime) -> datetime: ...
@overload
def from_db(dt: None) -> None: ...
@overload
def from_db(dt: datetime | None) -> datetime | None: ...
def from_db(dt: datetime | None) -> datetime | None:
    """Convert a stored naive-UTC datetime back to an aware one."""
    return None if dt is None else dt.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class Learner(Base):
    """A person who may sign in: employee id, display name, team, cohort, e-mail, hashed access code.

    ``deactivated_at`` (naive UTC) is set when the person left (``sopcoach enroll --roster`` with a
    leaver row): they can no longer sign in, and their attempts and certificates are kept.
    """

    __tablename__ = "learners"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(100))
    cohort: Mapped[str | None] = mapped_column(String(100))
    code_salt: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    email: Mapped[str | None] = mapped_column(String(254))
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def active(self) -> bool:
        """Whether the learner may sign in (not deactivated)."""
        return self.deactivated_at is None


class LoginThrottle(Base):
    """Recent sign-in failures per employee id (known or not), to slow guessing down."""

    __tablename__ = "login_throttle"
    learner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime)


class WebSession(Base):
    """A sign-in at the learner server's door: the cookie carries ``token``, the row its SHA-256.

    A session ends at ``expires_at`` (naive UTC), at sign-out, or when the learner's access code is
    re-issued or revoked (``ended_at`` and ``ended_reason`` are then set).
    """

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_reason: Mapped[str] = mapped_column(String(40), default="")


class PageKernel(Base):
    """The kernel that serves one learner's page, bound by the server when it hands the page out.

    The kernel learns whose page it serves only from this row (never from the browser).
    """

    __tablename__ = "page_kernels"
    kernel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(DateTime)


class Attempt(Base):
    """One exam attempt; ``state`` follows :class:`sopcoach.certification.exam.AttemptState`.

    ``question_ids`` and ``option_orders`` freeze the seeded draw, so a reload shows the same
    questions in the same order (shared case 15); ``variants`` holds the params drawn for each
    template question (question id -> params; ``None`` when the attempt has no template), so its
    numbers and key never change after the start. Score columns are filled when scored.
    """

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("learner_id", "exam_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    exam_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    question_ids: Mapped[list] = mapped_column(JSON)
    option_orders: Mapped[dict] = mapped_column(JSON)
    variants: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    bank_digest: Mapped[str] = mapped_column(String(64))
    playbook_hash: Mapped[str] = mapped_column(String(64))
    playbook_version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    deadline_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    score_num: Mapped[int | None] = mapped_column(Integer)
    score_den: Mapped[int | None] = mapped_column(Integer)
    percent: Mapped[str | None] = mapped_column(String(8))
    passed: Mapped[bool | None] = mapped_column(Boolean)
    report: Mapped[dict | None] = mapped_column(JSON)


class Answer(Base):
    """The latest response to one question of one attempt (one row per attempt and question)."""

    __tablename__ = "answers"
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    question_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    response: Mapped[Any] = mapped_column(JSON, nullable=True)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    answered_at: Mapped[datetime] = mapped_column(DateTime)


class LessonProgress(Base):
    """A learner's progress in one lesson: opened, practice score, completed."""

    __tablename__ = "lesson_progress"
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), primary_key=True)
    lesson_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    practice: Mapped[dict] = mapped_column(JSON, default=dict)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditEvent(Base):
    """A refused or notable action (late submit, forged message, failed sign-in) for trainers."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    learner_id: Mapped[str | None] = mapped_column(String(64))
    attempt_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")


class Release(Base):
    """A released playbook version (see :mod:`sopcoach.authoring.versions`).

    ``clause_hashes`` maps each clause id to the SHA-256 of what learners and keys depend on;
    ``snapshot`` holds ``{"files": {name: yaml text}, "clauses": {id: content}}`` for diffs, and
    ``"quotes_confirmed": {"by": name, "quotes": [...]}`` when the trainer confirmed texts that
    still quote a changed value (:func:`sopcoach.authoring.versions.stale_quotes`);
    ``changed`` lists the clause ids that differ from the previous release (empty for the first).
    """

    __tablename__ = "releases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    playbook_hash: Mapped[str] = mapped_column(String(64), index=True)
    clause_hashes: Mapped[dict] = mapped_column(JSON)
    snapshot: Mapped[dict] = mapped_column(JSON)
    changed: Mapped[list] = mapped_column(JSON, default=list)


class QuestionReview(Base):
    """A question that examines a clause a release changed: out of the exam until confirmed.

    ``status`` is ``needs_review`` or ``confirmed``; ``clauses`` are the changed clauses it examines.
    """

    __tablename__ = "question_reviews"
    __table_args__ = (UniqueConstraint("question_id", "release_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question_id: Mapped[str] = mapped_column(String(100), index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    clauses: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    flagged_at: Mapped[datetime] = mapped_column(DateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    confirmed_by: Mapped[str | None] = mapped_column(String(100))


class Certificate(Base):
    """A certificate issued for a passed attempt (see :mod:`sopcoach.certification.certificates`).

    ``clauses`` are the clauses the passing attempt examined; ``clause_hashes`` their hashes in the
    release the certificate was issued on (empty when no release existed yet). A recertification
    issues a new certificate that ``replaces`` the old one; the old one gets ``superseded_by``.
    Times are naive UTC; ``expires_at`` is ``issued_at`` plus the blueprint's calendar days.
    """

    __tablename__ = "certificates"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    learner_id: Mapped[str] = mapped_column(ForeignKey("learners.id"), index=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"))
    exam_id: Mapped[str] = mapped_column(String(64))
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    playbook_version: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    score_num: Mapped[int] = mapped_column(Integer)
    score_den: Mapped[int] = mapped_column(Integer)
    percent: Mapped[str] = mapped_column(String(8))
    clauses: Mapped[list] = mapped_column(JSON)
    clause_hashes: Mapped[dict] = mapped_column(JSON)
    replaces: Mapped[str | None] = mapped_column(String(32))
    superseded_by: Mapped[str | None] = mapped_column(String(32))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_reason: Mapped[str] = mapped_column(Text, default="")
