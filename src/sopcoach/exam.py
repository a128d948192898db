"""The certification exam: a seeded draw and an explicit attempt state machine (seed:3.3.1).

States and transitions (:data:`TRANSITIONS`)::

    started --submit--> submitted --score--> scored
    started --deadline passes--> expired (scored with the answers saved before the deadline)

Every rule is enforced here, against the records database, never in the browser: answers are
refused once the attempt is closed or its time is up (measured from the server-side start), a
second submit returns the first result unchanged, and a new attempt is refused past the attempt
limit or before the waiting time has passed.
"""
from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import (AttemptClosed, AttemptExpired, AttemptLimitReached, ExamError, InvalidResponse,
                     WaitRequired)
from .quizbank import Bank, Blueprint, MultipleChoice, Numeric, Ordering, SingleChoice, TrueFalse
from .records import Answer, Attempt, Records, from_db, to_db, utcnow
from .scoring import ScoreReport, check_response, report_from_json, report_to_json, score_attempt


class AttemptState(str, enum.Enum):
    """The life of an attempt."""

    STARTED = "started"
    SUBMITTED = "submitted"
    SCORED = "scored"
    EXPIRED = "expired"


TRANSITIONS: dict[AttemptState, set[AttemptState]] = {
    AttemptState.STARTED: {AttemptState.SUBMITTED, AttemptState.EXPIRED},
    AttemptState.SUBMITTED: {AttemptState.SCORED},
    AttemptState.SCORED: set(),
    AttemptState.EXPIRED: set(),
}
CLOSED = {AttemptState.SUBMITTED, AttemptState.SCORED, AttemptState.EXPIRED}


def transition(row: Attempt, new: AttemptState) -> None:
    """Move ``row`` to ``new``; raise :class:`AttemptClosed` when the state machine forbids it."""
    old = AttemptState(row.state)
    if new not in TRANSITIONS[old]:
        raise AttemptClosed(f"attempt {row.id} is {old.value}; it cannot become {new.value}")
    row.state = new.value


@dataclass(frozen=True)
class Draw:
    """A seeded draw: question ids in exam order and each question's option/block order."""

    question_ids: list[str]
    option_orders: dict[str, list[str]]


def draw(bank: Bank, blueprint: Blueprint, seed: int, exclude: set[str] = frozenset()) -> Draw:
    """Draw an exam from ``bank`` as ``blueprint`` says, deterministically for ``seed``.

    Questions are drawn per section (``Section.draw`` each, sections in blueprint order, questions
    shuffled within the exam). Choice options and ordering blocks are shuffled; an ordering's
    shown order never equals its key (shared case 12).

    Parameters
    ----------
    bank : Bank
    blueprint : Blueprint
    seed : int
        Stored with the attempt; the same seed always gives the same :class:`Draw`.
    exclude : set of str
        Question ids not to draw (e.g. questions waiting for a trainer's review).

    Returns
    -------
    Draw
        ``question_ids`` in exam order; ``option_orders`` maps each choice or ordering question
        to its option/block ids in display order. Orders are shuffled from the ids sorted, so
        they never depend on which option is correct.

    Raises
    ------
    ExamError
        When a section has fewer eligible questions than it draws.
    """
    rng = random.Random(seed)
    chosen: list[str] = []
    for section in blueprint.sections:
        pool = [q.id for q in bank.in_section(section.id) if q.id not in exclude]
        if len(pool) < section.draw:
            raise ExamError(f"section '{section.id}' needs {section.draw} questions, the bank has {len(pool)}")
        chosen.extend(rng.sample(pool, section.draw))
    rng.shuffle(chosen)
    orders: dict[str, list[str]] = {}
    for qid in chosen:
        q = bank[qid]
        if isinstance(q, (SingleChoice, MultipleChoice)):
            ids = sorted(o.id for o in q.options)  # the shown order must not depend on the key
            rng.shuffle(ids)
            orders[qid] = ids
        elif isinstance(q, Ordering):
            ids = sorted(o.id for o in q.blocks)
            key = [o.id for o in q.items]
            rng.shuffle(ids)
            if ids[: len(key)] == key:
                ids = ids[1:] + ids[:1]
            orders[qid] = ids
    return Draw(chosen, orders)


@dataclass(frozen=True)
class QuestionView:
    """What the learner's page may know about a question: no key, no correctness.

    ``options`` are ``(option_id, label)`` pairs in this attempt's order.
    """

    question_id: str
    number: int
    total: int
    type: str
    scenario: str | None
    text: str
    options: list[tuple[str, str]]
    unit: str | None
    response: Any
    flagged: bool


@dataclass(frozen=True)
class AttemptView:
    """An attempt as the learner sees it."""

    attempt_id: int
    number: int
    state: AttemptState
    started_at: datetime
    deadline_at: datetime
    question_ids: list[str]
    answered: set[str]
    flagged: set[str]

    def seconds_left(self, now: datetime) -> int:
        return max(0, int((self.deadline_at - now).total_seconds()))


@dataclass(frozen=True)
class Eligibility:
    """Whether the learner may start (or resume) an attempt now, and why not."""

    attempts_used: int
    attempts_left: int
    open_attempt: int | None
    passed: bool
    wait_seconds: int

    @property
    def can_start(self) -> bool:
        return self.open_attempt is not None or (self.attempts_left > 0 and self.wait_seconds == 0)


class ExamService:
    """Server-side exam logic over a :class:`Records` store.

    Parameters
    ----------
    records : Records
    bank : Bank
        The certification bank, keys resolved against the playbook.
    blueprint : Blueprint
    playbook_hash, playbook_version : str
        Recorded with each attempt.
    clock : callable, optional
        Returns the current aware UTC time (tests pass a fake clock).
    """

    def __init__(self, records: Records, bank: Bank, blueprint: Blueprint, playbook_hash: str = "",
                 playbook_version: str = "", clock: Callable[[], datetime] = utcnow):
        self.records = records
        self.bank = bank
        self.blueprint = blueprint
        self.playbook_hash = playbook_hash
        self.playbook_version = playbook_version
        self.clock = clock

    # -- queries -------------------------------------------------------------------------------
    def eligibility(self, learner_id: str) -> Eligibility:
        """Return attempts used and left, the open attempt if any, and the waiting time in seconds."""
        now = self.clock()
        return self.records.run(lambda s: self._eligibility(s, learner_id, now))

    def _eligibility(self, s: Session, learner_id: str, now: datetime) -> Eligibility:
        rows = list(s.scalars(select(Attempt).where(Attempt.learner_id == learner_id,
                                                    Attempt.exam_id == self.blueprint.id)
                              .order_by(Attempt.number)))
        open_rows = [r for r in rows if r.state == AttemptState.STARTED.value]
        passed = any(r.passed for r in rows)
        wait = 0
        closed = [from_db(r.closed_at) for r in rows if r.closed_at is not None]
        if closed and not open_rows:
            ready = max(closed) + timedelta(hours=float(self.blueprint.wait_between_attempts_hours))
            wait = max(0, int((ready - now).total_seconds() + 0.999))
        left = max(0, self.blueprint.max_attempts - len(rows))
        return Eligibility(len(rows), left, open_rows[0].id if open_rows else None, passed, wait)

    def view(self, attempt_id: int) -> AttemptView:
        """Return the attempt's state, expiring it first when its time is up."""
        self.expire_if_due(attempt_id)
        row = self._row(attempt_id)
        answers = self.records.answers(attempt_id)
        return AttemptView(row.id, row.number, AttemptState(row.state), from_db(row.started_at),
                           from_db(row.deadline_at), list(row.question_ids),
                           {q for q, a in answers.items() if a.response is not None},
                           {q for q, a in answers.items() if a.flagged})

    def question(self, attempt_id: int, index: int, lang: str | None = None) -> QuestionView:
        """Return the learner's view of question ``index`` (0-based) of an attempt, with no key."""
        row = self._row(attempt_id)
        qid = row.question_ids[index]
        q = self.bank[qid]
        answer = self.records.answers(attempt_id).get(qid)
        order = row.option_orders.get(qid, [])
        if isinstance(q, (SingleChoice, MultipleChoice)):
            by_id = {o.id: o for o in q.options}
            options = [(oid, by_id[oid].text.get(lang)) for oid in order]
        elif isinstance(q, Ordering):
            by_id = {o.id: o for o in q.blocks}
            options = [(oid, by_id[oid].text.get(lang)) for oid in order]
        elif isinstance(q, TrueFalse):
            from .i18n import t
            options = [("true", t("正确", "True", lang)), ("false", t("错误", "False", lang))]
        else:
            options = []
        unit = q.unit.get(lang) if isinstance(q, Numeric) and q.unit else None
        return QuestionView(qid, index + 1, len(row.question_ids), q.type,
                            q.scenario.get(lang) if q.scenario else None, q.text.get(lang), options,
                            unit, answer.response if answer else None, bool(answer and answer.flagged))

    # -- commands --------------------------------------------------------------------------------
    def start_or_resume(self, learner_id: str, seed: int | None = None) -> int:
        """Return the learner's open attempt, or start a new one; return its id.

        Raises
        ------
        AttemptLimitReached
            When every allowed attempt is used.
        WaitRequired
            When the waiting time after the last attempt has not passed.
        """
        now = self.clock()
        for row_id in self._open_ids(learner_id):
            self.expire_if_due(row_id)

        def do(s: Session) -> int:
            el = self._eligibility(s, learner_id, now)
            if el.open_attempt is not None:
                return el.open_attempt
            if el.attempts_left <= 0:
                raise AttemptLimitReached(f"all {self.blueprint.max_attempts} attempts are used")
            if el.wait_seconds > 0:
                raise WaitRequired(f"wait {el.wait_seconds} s before the next attempt", el.wait_seconds)
            use_seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
            d = draw(self.bank, self.blueprint, use_seed)
            row = Attempt(learner_id=learner_id, exam_id=self.blueprint.id, number=el.attempts_used + 1,
                          state=AttemptState.STARTED.value, seed=use_seed, question_ids=d.question_ids,
                          option_orders=d.option_orders, bank_digest=self.bank.digest,
                          playbook_hash=self.playbook_hash, playbook_version=self.playbook_version,
                          started_at=to_db(now),
                          deadline_at=to_db(now + timedelta(minutes=self.blueprint.time_limit_minutes)))
            s.add(row)
            s.flush()
            return row.id
        return self.records.run(do)

    def answer(self, attempt_id: int, question_id: str, response: Any) -> None:
        """Save a response as it is given (the latest one counts).

        Raises
        ------
        AttemptExpired
            When the time limit has passed (the attempt is then scored as expired).
        AttemptClosed
            When the attempt is already submitted.
        InvalidResponse
            When the response does not fit the question or the question is not in the attempt.
        """
        now = self.clock()

        def do(s: Session) -> None:
            row = self._open_row(s, attempt_id, now)
            if question_id not in row.question_ids:
                raise InvalidResponse(f"question {question_id!r} is not part of this attempt")
            value = check_response(self.bank[question_id], response)
            ans = s.get(Answer, (attempt_id, question_id))
            if ans is None:
                s.add(Answer(attempt_id=attempt_id, question_id=question_id, response=value,
                             flagged=False, revision=1, answered_at=to_db(now)))
            elif ans.response != value:
                ans.response, ans.revision, ans.answered_at = value, ans.revision + 1, to_db(now)
        self._guarded(attempt_id, do)

    def flag(self, attempt_id: int, question_id: str, flagged: bool) -> None:
        """Mark a question for review (or clear the mark). Same refusals as :meth:`answer`."""
        now = self.clock()

        def do(s: Session) -> None:
            row = self._open_row(s, attempt_id, now)
            if question_id not in row.question_ids:
                raise InvalidResponse(f"question {question_id!r} is not part of this attempt")
            ans = s.get(Answer, (attempt_id, question_id))
            if ans is None:
                s.add(Answer(attempt_id=attempt_id, question_id=question_id, response=None,
                             flagged=bool(flagged), revision=0, answered_at=to_db(now)))
            else:
                ans.flagged = bool(flagged)
        self._guarded(attempt_id, do)

    def submit(self, attempt_id: int) -> ScoreReport:
        """Submit and score the attempt; idempotent.

        A second submit returns the stored result unchanged. After the deadline the attempt is
        closed as ``expired`` and scored with the answers saved before the deadline; the late
        submit itself is refused with :class:`AttemptExpired`.
        """
        now = self.clock()

        def do(s: Session) -> tuple[bool, ScoreReport]:
            row = s.get(Attempt, attempt_id, with_for_update=True)
            if row is None:
                raise ExamError(f"no attempt {attempt_id}")
            state = AttemptState(row.state)
            if state in CLOSED:
                return state == AttemptState.EXPIRED, self._stored_report(s, row)
            if now > from_db(row.deadline_at):
                self._close(s, row, AttemptState.EXPIRED, now)
                return True, self._stored_report(s, row)
            transition(row, AttemptState.SUBMITTED)
            self._close(s, row, AttemptState.SCORED, now)
            return False, self._stored_report(s, row)
        late, report = self.records.run(do)
        if late and AttemptState(self._row(attempt_id).state) == AttemptState.EXPIRED:
            raise AttemptExpired("the time limit has passed; the answers saved before it were scored")
        return report

    def expire_if_due(self, attempt_id: int) -> bool:
        """Close an open attempt whose deadline has passed; return True when it did."""
        now = self.clock()

        def do(s: Session) -> bool:
            row = s.get(Attempt, attempt_id)
            if row is None or row.state != AttemptState.STARTED.value or now <= from_db(row.deadline_at):
                return False
            self._close(s, row, AttemptState.EXPIRED, now)
            return True
        return self.records.run(do)

    def report(self, attempt_id: int) -> ScoreReport:
        """Return the score of a closed attempt.

        Raises
        ------
        ExamError
            When the attempt is still open.
        """
        def do(s: Session) -> ScoreReport:
            row = s.get(Attempt, attempt_id)
            if row is None or row.state == AttemptState.STARTED.value:
                raise ExamError("the attempt is not submitted yet")
            return self._stored_report(s, row)
        return self.records.run(do)

    # -- internals -------------------------------------------------------------------------------
    def _open_ids(self, learner_id: str) -> list[int]:
        return self.records.run(lambda s: list(s.scalars(
            select(Attempt.id).where(Attempt.learner_id == learner_id,
                                     Attempt.state == AttemptState.STARTED.value))))

    def _row(self, attempt_id: int) -> Attempt:
        row = self.records.attempt(attempt_id)
        if row is None:
            raise ExamError(f"no attempt {attempt_id}")
        return row

    def _open_row(self, s: Session, attempt_id: int, now: datetime) -> Attempt:
        row = s.get(Attempt, attempt_id)
        if row is None:
            raise ExamError(f"no attempt {attempt_id}")
        if row.state != AttemptState.STARTED.value:
            raise AttemptClosed("this attempt is already submitted; it takes no more answers")
        if now > from_db(row.deadline_at):
            raise AttemptExpired("the time limit has passed; answers are no longer accepted")
        return row

    def _guarded(self, attempt_id: int, fn: Callable[[Session], None]) -> None:
        try:
            self.records.run(fn)
        except AttemptExpired:
            self.expire_if_due(attempt_id)
            raise

    def _close(self, s: Session, row: Attempt, state: AttemptState, now: datetime) -> None:
        answers = {a.question_id: a.response for a in
                   s.scalars(select(Answer).where(Answer.attempt_id == row.id))}
        questions = [self.bank[q] for q in row.question_ids]
        rep = score_attempt(questions, answers, self.blueprint.pass_fraction)
        if state == AttemptState.SCORED:
            transition(row, AttemptState.SCORED)
        else:
            transition(row, AttemptState.EXPIRED)
        row.closed_at = to_db(now)
        row.score_num, row.score_den = rep.score.numerator, rep.score.denominator
        row.percent = str(rep.percent_display)
        row.passed = rep.passed
        row.report = report_to_json(rep)

    def _stored_report(self, s: Session, row: Attempt) -> ScoreReport:
        return report_from_json(row.report)


def attempt_counts(records: Records, exam_id: str) -> dict[str, int]:
    """Return the number of attempts per learner id for ``exam_id``."""
    return dict(records.run(lambda s: list(s.execute(
        select(Attempt.learner_id, func.count()).where(Attempt.exam_id == exam_id)
        .group_by(Attempt.learner_id)))))
