"""The certification exam: a seeded draw and an explicit attempt state machine (seed:3.3.1).

States and transitions (:data:`TRANSITIONS`)::

    started --submit--> submitted --score--> scored
    started --deadline passes--> expired (scored with the answers saved before the deadline)

Every rule is enforced here, against the records database, never in the browser: answers are
refused once the attempt is closed or its time is up (measured from the server-side start), a
second submit returns the first result unchanged, and a new attempt is refused past the attempt
limit or before the waiting time has passed.

Concurrent commands are ordered by row locks (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite runs
one writing transaction at a time anyway): answer, flag, submit and expiry lock the attempt, so an
answer raced by the submit is either stored before scoring (and counted) or refused with
:class:`AttemptClosed`; a start locks the learner, so two starts at once give one attempt.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import ceil
from typing import Any
from collections.abc import Callable
from collections.abc import Set as AbstractSet

from ..content.quizbank import (Bank, Blueprint, MultipleChoice, Numeric, Ordering, Section, SingleChoice, TrueFalse,
                                display_order)
from ..errors import (AlreadyCertified, AttemptClosed, AttemptExpired, AttemptLimitReached, ExamError, InvalidResponse,
                      LessonsIncomplete, QuestionsNeedReview, StaleAttempt, WaitRequired)
from ..i18n import Text, t
from ..records.models import Answer, Attempt, from_db, to_db, utcnow
from ..records.store import Records, Transaction
from .certificates import RECERT_INFIX, issue_for_attempt
from .scoring import (ScoreReport, check_response, floor_percent, key_text, number_text, report_from_json, report_to_json,
                      score_attempt)
from .variants import TemplateError, build, instantiate, variant_seed


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
    """A seeded draw: question ids in exam order, each question's option/block order and the
    drawn params of each template (``variants``: question id -> params, empty without templates)."""

    question_ids: list[str]
    option_orders: dict[str, list[str]]
    variants: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def draw(bank: Bank, blueprint: Blueprint, seed: int, exclude: AbstractSet[str] = frozenset()) -> Draw:
    """Draw an exam from ``bank`` as ``blueprint`` says, deterministically for ``seed``.

    Questions are drawn per section (``Section.draw`` each, sections in blueprint order, questions
    shuffled within the exam). Choice options and ordering blocks are shuffled; an ordering's
    shown order never equals its key (shared case 12); an option pinned last (``pin: last``, or a
    text such as "All of the above", see :func:`~sopcoach.content.quizbank.display_order`) stays last.

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
        they never depend on which option is correct. ``variants`` maps each template drawn to
        its params, drawn from ``seed`` and the question id (:func:`~sopcoach.certification.variants.variant_seed`).

    Raises
    ------
    ExamError
        When a section has fewer eligible questions than it draws, or a template gives no usable
        variant.
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
        order = option_order(bank[qid], rng)
        if order is not None:
            orders[qid] = order
    variants: dict[str, dict[str, Any]] = {}
    for qid in chosen:
        if bank[qid].variant is not None:
            try:
                variants[qid] = instantiate(bank[qid], bank.playbook, random.Random(variant_seed(seed, qid)))[1]
            except TemplateError as exc:
                raise ExamError(str(exc)) from None
    return Draw(chosen, orders, variants)


def attempt_question(bank: Bank, row: Attempt, question_id: str) -> Any:
    """Return question ``question_id`` as attempt ``row`` asked it: a template's instance rebuilt
    from the params stored with the attempt (never drawn again), any other question as it is.

    Raises
    ------
    ExamError
        When a template of the attempt has no stored params (a row from before templates existed
        cannot name a template) or its params give no instance.
    """
    q = bank[question_id]
    if q.variant is None:
        return q
    params = (row.variants or {}).get(question_id)
    if params is None:
        raise ExamError(f"attempt {row.id} has no drawn numbers for template {question_id!r}")
    try:
        return build(q, bank.playbook, params)
    except TemplateError as exc:
        raise ExamError(str(exc)) from None


def option_order(q: Any, rng: random.Random) -> list[str] | None:
    """Return the ids of a choice question's options (an ordering's blocks) in the exam's display
    order drawn from ``rng``; ``None`` for a type without options.

    The shown order never depends on the key: it is shuffled from the ids sorted; an option pinned
    last ("all of the above") keeps its place after the others; an ordering is never shown in its
    key's order (shared case 12).
    """
    if isinstance(q, (SingleChoice, MultipleChoice)):
        return [o.id for o in display_order(sorted(q.options, key=lambda o: o.id), rng)]
    if isinstance(q, Ordering):
        ids = sorted(o.id for o in q.blocks)
        key = [o.id for o in q.items]
        rng.shuffle(ids)
        if ids[: len(key)] == key:
            ids = ids[1:] + ids[:1]
        return ids
    return None


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


def question_view(q: Any, order: list[str], lang: str | None, number: int, total: int, response: Any = None,
                  flagged: bool = False) -> QuestionView:
    """Return what the learner's page shows of question ``q`` (resolved): no key, no correctness.

    ``order`` is the option (block) ids in display order (:func:`option_order`); ``number`` is
    1-based. Used by :meth:`ExamService.question` and by the question editor's preview.
    """
    if isinstance(q, (SingleChoice, MultipleChoice)):
        by_id = {o.id: o for o in q.options}
        options = [(oid, by_id[oid].text.get(lang)) for oid in order]
    elif isinstance(q, Ordering):
        by_id = {o.id: o for o in q.blocks}
        options = [(oid, by_id[oid].text.get(lang)) for oid in order]
    elif isinstance(q, TrueFalse):
        options = [("true", t("正确", "True", lang)), ("false", t("错误", "False", lang))]
    else:
        options = []
    unit = q.unit.get(lang) if isinstance(q, Numeric) and q.unit else None
    return QuestionView(q.id, number, total, q.type, q.scenario.get(lang) if q.scenario else None,
                        q.text.get(lang), options, unit, response, flagged)


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


def _answers_token(answers: Iterable[Answer]) -> str:
    """Return a short digest of an attempt's answers (question, response, flag, revision)."""
    state = sorted((a.question_id, json.dumps(a.response, sort_keys=True), bool(a.flagged), a.revision or 0)
                   for a in answers)
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AttemptSummary:
    """A closed attempt as the learner's list of past attempts shows it.

    ``percent`` is the score in percent, rounded down to one decimal (a Decimal); ``closed_at``
    is aware UTC.
    """

    attempt_id: int
    number: int
    state: AttemptState
    closed_at: datetime | None
    percent: Decimal
    passed: bool


@dataclass(frozen=True)
class ReviewItem:
    """One question of a closed attempt as its review shows it to the learner.

    ``view`` is the question as the attempt asked it (a template rebuilt from the stored params,
    the attempt's option order, the learner's ``response``); ``answer`` is that response in words
    (``""``: unanswered); ``earned`` and ``points`` are exact. ``key`` and ``explanation`` are
    ``None`` when the blueprint shows no correct answers (``show_correct_answers: never``);
    ``clauses`` are clause ids (the page shows their titles).
    """

    view: QuestionView
    answer: str
    earned: Fraction
    points: Fraction
    key: str | None
    explanation: str | None
    clauses: tuple[str, ...]

    @property
    def full_marks(self) -> bool:
        return self.earned == self.points


def response_text(q: Any, response: Any, lang: str | None) -> str:
    """Return a stored response to ``q`` in words (option texts, 正确/错误, the number with its
    unit, the blocks in order); ``""`` when unanswered.

    >>> response_text(TrueFalse.model_validate({"id": "x", "type": "true_false", "section": "s", "clauses": ["c"],
    ...     "text": {"zh-CN": "对吗", "en": "Right?"}, "answer": True}), False, "en")
    'False'
    """
    if response is None or response == []:
        return ""
    if isinstance(q, TrueFalse):
        return t("正确", "True", lang) if response else t("错误", "False", lang)
    if isinstance(q, (SingleChoice, MultipleChoice)):
        texts = {o.id: o.text.get(lang) for o in q.options}
        chosen = response if isinstance(response, list) else [response]
        return t("；", "; ", lang).join(texts.get(oid, str(oid)) for oid in chosen)
    if isinstance(q, Ordering):
        texts = {o.id: o.text.get(lang) for o in q.blocks}
        return " → ".join(texts.get(oid, str(oid)) for oid in response)
    if isinstance(q, Numeric):
        unit = f" {q.unit.get(lang)}" if q.unit else ""
        try:
            return number_text(Decimal(str(response))) + unit
        except ArithmeticError:
            return str(response) + unit
    return str(response)


@dataclass(frozen=True)
class Eligibility:
    """Whether the learner may start (or resume) an attempt now, and why not."""

    attempts_used: int
    attempts_left: int
    open_attempt: int | None
    passed: bool
    wait_seconds: int
    #: When the wait ends (aware UTC; ``None`` with no wait): every page words this one moment, so
    #: two pages never disagree by the rounding of "now + wait_seconds".
    opens_at: datetime | None = None

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
    lesson_gate : callable, optional
        ``lesson_gate(learner_id) -> list of lesson ids not complete``; when given, a new attempt
        is refused with :class:`LessonsIncomplete` while the list is not empty (an open attempt
        still resumes). The installation's exam app passes it when the blueprint sets
        ``require_lessons``.
    """

    def __init__(self, records: Records, bank: Bank, blueprint: Blueprint, playbook_hash: str = "",
                 playbook_version: str = "", clock: Callable[[], datetime] = utcnow,
                 lesson_gate: Callable[[str], list[str]] | None = None):
        self.lesson_gate = lesson_gate
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
        return self.records.transaction(lambda tx: self._eligibility(tx, learner_id, now))

    def _eligibility(self, tx: Transaction, learner_id: str, now: datetime) -> Eligibility:
        rows = tx.attempts(learner_id, self.blueprint.id)
        open_rows = [r for r in rows if r.state == AttemptState.STARTED.value]
        passed = any(r.passed for r in rows)
        wait, opens = 0, None
        closed = [from_db(r.closed_at) for r in rows if r.closed_at is not None]
        if closed and not open_rows:
            ready = max(closed) + timedelta(hours=float(self.blueprint.wait_between_attempts_hours))
            wait = max(0, int((ready - now).total_seconds() + 0.999))
            opens = ready if wait else None
        left = max(0, self.blueprint.max_attempts - len(rows))
        return Eligibility(len(rows), left, open_rows[0].id if open_rows else None, passed, wait, opens)

    def closed_attempts(self, learner_id: str) -> list[AttemptSummary]:
        """Return the learner's closed (scored or expired) attempts at this exam, by attempt number."""
        rows = self.records.transaction(lambda tx: tx.attempts(learner_id, self.blueprint.id))
        return [AttemptSummary(r.id, r.number, AttemptState(r.state), from_db(r.closed_at) if r.closed_at else None,
                               Decimal(r.percent or "0"), bool(r.passed))
                for r in rows if r.state != AttemptState.STARTED.value]

    def review(self, attempt_id: int, learner_id: str, lang: str | None = None) -> list[ReviewItem]:
        """Return every question of a closed attempt of ``learner_id``, in exam order, for its review.

        The key and the explanation are given only when the blueprint shows correct answers after
        submission (``show_correct_answers: after_submit``); an open attempt has no review at all,
        so no key of an attempt still running ever leaves the server.

        Raises
        ------
        ExamError
            When the attempt is not one of ``learner_id``'s, or is still open (expiring it first
            when its time is up).
        """
        self.expire_if_due(attempt_id)
        row = self.records.attempt(attempt_id)
        if row is None or row.learner_id != learner_id or row.exam_id != self.blueprint.id:
            raise ExamError(f"attempt {attempt_id} is not one of {learner_id}'s attempts at {self.blueprint.id}")
        if row.state == AttemptState.STARTED.value:
            raise ExamError(f"attempt {attempt_id} is still open; it can be reviewed once it is submitted")
        results = {r.question_id: r for r in self._stored_report(row).results}
        answers = self.records.answers(attempt_id)
        show_key = self.blueprint.show_correct_answers == "after_submit"
        items = []
        total = len(row.question_ids)
        for i, qid in enumerate(row.question_ids):
            q = attempt_question(self.bank, row, qid)
            ans = answers.get(qid)
            response = ans.response if ans else None
            res = results.get(qid)
            view = question_view(q, row.option_orders.get(qid, []), lang, i + 1, total, response)
            items.append(ReviewItem(
                view, response_text(q, response, lang), res.earned if res else Fraction(0),
                res.points if res else Fraction(q.points),
                key_text(q, lang) if show_key else None,
                q.explanation.get(lang) if show_key and q.explanation else None,
                tuple(res.clauses if res else q.clauses)))
        return items

    def answers_version(self, attempt_id: int) -> str:
        """Return a token that changes whenever an answer or flag of the attempt changes.

        A page keeps the token of the answers it shows; :meth:`answer` and :meth:`flag` given an
        ``expected`` token refuse with :class:`StaleAttempt` when the answers changed since (another
        window of the same attempt saved one).
        """
        return _answers_token(self.records.answers(attempt_id).values())

    def missing_lessons(self, learner_id: str) -> list[str]:
        """Return the lesson ids the learner must still complete (empty without a lesson gate)."""
        return list(self.lesson_gate(learner_id)) if self.lesson_gate is not None else []

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
        q = attempt_question(self.bank, row, qid)
        answer = self.records.answers(attempt_id).get(qid)
        return question_view(q, row.option_orders.get(qid, []), lang, index + 1, len(row.question_ids),
                             answer.response if answer else None, bool(answer and answer.flagged))

    # -- commands --------------------------------------------------------------------------------
    def start_or_resume(self, learner_id: str, seed: int | None = None) -> int:
        """Return the learner's open attempt, or start a new one; return its id.

        Raises
        ------
        AlreadyCertified
            When the learner has passed this exam (a forged start from a certified learner's page is
            refused here, whatever the browser shows; recertification is its own exam).
        AttemptLimitReached
            When every allowed attempt is used.
        WaitRequired
            When the waiting time after the last attempt has not passed.
        LessonsIncomplete
            When a lesson gate is set and some lessons are not complete.
        ExamError
            When no learner has this id.
        """
        now = self.clock()
        missing = self.missing_lessons(learner_id)
        for row_id in self._open_ids(learner_id):
            self.expire_if_due(row_id)

        def do(tx: Transaction) -> int:
            # One start of a learner at a time: a second page pressing start at the same moment
            # waits here, then finds the attempt the first one made and resumes it.
            if tx.learner(learner_id, for_update=True) is None:
                raise ExamError(f"no learner {learner_id!r}")
            el = self._eligibility(tx, learner_id, now)
            if el.open_attempt is not None:
                return el.open_attempt
            if el.passed:
                raise AlreadyCertified(f"{learner_id} has passed {self.blueprint.id} already")
            if el.attempts_left <= 0:
                raise AttemptLimitReached(f"all {self.blueprint.max_attempts} attempts are used")
            if el.wait_seconds > 0:
                raise WaitRequired(f"wait {el.wait_seconds} s before the next attempt", el.wait_seconds)
            if missing:
                raise LessonsIncomplete(f"complete the lessons first: {', '.join(missing)}", missing)
            use_seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
            d = draw(self.bank, self.blueprint, use_seed, exclude=self._held_back(tx))
            row = Attempt(learner_id=learner_id, exam_id=self.blueprint.id, number=el.attempts_used + 1,
                          state=AttemptState.STARTED.value, seed=use_seed, question_ids=d.question_ids,
                          option_orders=d.option_orders, variants=d.variants or None,
                          bank_digest=self.bank.digest,
                          playbook_hash=self.playbook_hash, playbook_version=self._version(tx),
                          started_at=to_db(now),
                          deadline_at=to_db(now + timedelta(minutes=self.blueprint.time_limit_minutes)))
            tx.add(row)
            tx.flush()
            return row.id
        return self.records.transaction(do)

    def answer(self, attempt_id: int, question_id: str, response: Any, expected: str | None = None) -> str:
        """Save a response as it is given (the latest one counts); return the answers' new token
        (:meth:`answers_version`).

        ``expected``: the token of the answers the page shows; when the attempt's answers changed
        since (another window saved one), nothing is saved.

        Raises
        ------
        StaleAttempt
            When ``expected`` is given and no longer the attempt's token.
        ------
        AttemptExpired
            When the time limit has passed (the attempt is then scored as expired).
        AttemptClosed
            When the attempt is already submitted.
        InvalidResponse
            When the response does not fit the question or the question is not in the attempt.
        """
        now = self.clock()

        def do(tx: Transaction) -> str:
            row = self._open_row(tx, attempt_id, now)
            if question_id not in row.question_ids:
                raise InvalidResponse(f"question {question_id!r} is not part of this attempt")
            value = check_response(attempt_question(self.bank, row, question_id), response)
            self._check_version(tx, attempt_id, expected)
            ans = tx.answer(attempt_id, question_id)
            if ans is None:
                tx.add(Answer(attempt_id=attempt_id, question_id=question_id, response=value,
                             flagged=False, revision=1, answered_at=to_db(now)))
            elif ans.response != value:
                ans.response, ans.revision, ans.answered_at = value, ans.revision + 1, to_db(now)
            tx.flush()
            return _answers_token(tx.answers(attempt_id))
        return self._guarded(attempt_id, do)

    def flag(self, attempt_id: int, question_id: str, flagged: bool, expected: str | None = None) -> str:
        """Mark a question for review (or clear the mark); return the answers' new token.
        Same refusals as :meth:`answer` (``expected`` too)."""
        now = self.clock()

        def do(tx: Transaction) -> str:
            row = self._open_row(tx, attempt_id, now)
            if question_id not in row.question_ids:
                raise InvalidResponse(f"question {question_id!r} is not part of this attempt")
            self._check_version(tx, attempt_id, expected)
            ans = tx.answer(attempt_id, question_id)
            if ans is None:
                tx.add(Answer(attempt_id=attempt_id, question_id=question_id, response=None,
                             flagged=bool(flagged), revision=0, answered_at=to_db(now)))
            else:
                ans.flagged = bool(flagged)
            tx.flush()
            return _answers_token(tx.answers(attempt_id))
        return self._guarded(attempt_id, do)

    def submit(self, attempt_id: int) -> ScoreReport:
        """Submit and score the attempt; idempotent.

        A second submit returns the stored result unchanged. After the deadline the attempt is
        closed as ``expired`` and scored with the answers saved before the deadline; the late
        submit itself is refused with :class:`AttemptExpired`.
        """
        now = self.clock()

        def do(tx: Transaction) -> tuple[bool, ScoreReport]:
            row = tx.attempt(attempt_id, for_update=True)
            if row is None:
                raise ExamError(f"no attempt {attempt_id}")
            state = AttemptState(row.state)
            if state in CLOSED:
                return state == AttemptState.EXPIRED, self._stored_report(row)
            if now > from_db(row.deadline_at):
                self._close(tx, row, AttemptState.EXPIRED, now)
                return True, self._stored_report(row)
            transition(row, AttemptState.SUBMITTED)
            self._close(tx, row, AttemptState.SCORED, now)
            return False, self._stored_report(row)
        late, report = self.records.transaction(do)
        if late and AttemptState(self._row(attempt_id).state) == AttemptState.EXPIRED:
            raise AttemptExpired("the time limit has passed; the answers saved before it were scored")
        return report

    def expire_if_due(self, attempt_id: int) -> bool:
        """Close an open attempt whose deadline has passed; return True when it did."""
        now = self.clock()

        def do(tx: Transaction) -> bool:
            row = tx.attempt(attempt_id, for_update=True)
            if row is None or row.state != AttemptState.STARTED.value or now <= from_db(row.deadline_at):
                return False
            self._close(tx, row, AttemptState.EXPIRED, now)
            return True
        return self.records.transaction(do)

    def attempt_question(self, attempt_id: int, question_id: str) -> Any:
        """Return a question as the attempt asked it (a template's stored variant); for review after scoring."""
        return attempt_question(self.bank, self._row(attempt_id), question_id)

    def report(self, attempt_id: int) -> ScoreReport:
        """Return the score of a closed attempt.

        Raises
        ------
        ExamError
            When the attempt is still open.
        """
        def do(tx: Transaction) -> ScoreReport:
            row = tx.attempt(attempt_id)
            if row is None or row.state == AttemptState.STARTED.value:
                raise ExamError("the attempt is not submitted yet")
            return self._stored_report(row)
        return self.records.transaction(do)

    # -- internals -------------------------------------------------------------------------------
    def _open_ids(self, learner_id: str) -> list[int]:
        return self.records.open_attempt_ids(learner_id)

    def _row(self, attempt_id: int) -> Attempt:
        row = self.records.attempt(attempt_id)
        if row is None:
            raise ExamError(f"no attempt {attempt_id}")
        return row

    def _open_row(self, tx: Transaction, attempt_id: int, now: datetime) -> Attempt:
        """Return the attempt, locked until the transaction ends, when it still takes answers.

        The lock orders an answer and a submit of the same attempt: the submit (which locks the row
        too) either scores after the answer is stored, or the answer finds the attempt closed.
        """
        row = tx.attempt(attempt_id, for_update=True)
        if row is None:
            raise ExamError(f"no attempt {attempt_id}")
        if row.state != AttemptState.STARTED.value:
            raise AttemptClosed("this attempt is already submitted; it takes no more answers")
        if now > from_db(row.deadline_at):
            raise AttemptExpired("the time limit has passed; answers are no longer accepted")
        return row

    @staticmethod
    def _check_version(tx: Transaction, attempt_id: int, expected: str | None) -> None:
        """Refuse with :class:`StaleAttempt` when the attempt's answers are not the ``expected`` ones."""
        if expected is not None and _answers_token(tx.answers(attempt_id)) != expected:
            raise StaleAttempt(f"the answers of attempt {attempt_id} changed in another window since this one loaded them")

    def _guarded(self, attempt_id: int, fn: Callable[[Transaction], str]) -> str:
        try:
            return self.records.transaction(fn)
        except AttemptExpired:
            self.expire_if_due(attempt_id)
            raise

    def _close(self, tx: Transaction, row: Attempt, state: AttemptState, now: datetime) -> None:
        answers = tx.responses(row.id)
        questions = [attempt_question(self.bank, row, q) for q in row.question_ids]
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
        if rep.passed:
            issue_for_attempt(tx, row, self.blueprint, now)

    def _stored_report(self, row: Attempt) -> ScoreReport:
        if row.report is None:
            raise ExamError(f"attempt {row.id} has no stored score report")
        return report_from_json(row.report)

    def _held_back(self, tx: Transaction) -> set[str]:
        """Return the questions left out of the draw: those marked needs-review by a release.

        Raises
        ------
        QuestionsNeedReview
            When a section keeps fewer confirmed questions than it draws.
        """
        held = tx.pending_review_ids() & set(self.bank.questions)
        for section in self.blueprint.sections:
            ids = [q.id for q in self.bank.in_section(section.id)]
            usable = [q for q in ids if q not in held]
            if len(usable) < section.draw:
                raise QuestionsNeedReview(section.id, section.draw, len(usable), sorted(set(ids) & held))
        return held

    def _version(self, tx: Transaction) -> str:
        """Return the playbook version an attempt records: the release label of this content,
        ``<sop.version>+unreleased`` when releases exist but none matches, else ``sop.version``."""
        label = tx.release_label_for(self.playbook_hash)
        if label is not None:
            return label
        if tx.any_release():
            return f"{self.playbook_version}+unreleased"[:64]
        return self.playbook_version


def attempt_counts(records: Records, exam_id: str) -> dict[str, int]:
    """Return the number of attempts per learner id for ``exam_id``."""
    return records.attempt_counts(exam_id)


def recertification_exam(bank: Bank, blueprint: Blueprint, clauses: list[str], release_id: int,
                         playbook: Any = None, per_clause: int = 2,
                         exclude: AbstractSet[str] = frozenset()) -> tuple[Bank, Blueprint]:
    """Build the short exam that re-certifies a person on just ``clauses``.

    Each clause becomes a section that draws up to ``per_clause`` questions examining it (a
    question that examines several of the clauses goes to the one with the fewest questions).
    Questions in ``exclude`` (needs-review) are left out. The exam keeps the blueprint's pass mark
    (seed:3.3.1), attempts and waiting time; its time limit is the blueprint's, pro rata to the
    number of questions (at least 5 minutes); its id is ``<id>.recert-r<release_id>``, so its
    attempts are counted apart from the certification exam's and from other recertifications.

    Parameters
    ----------
    bank, blueprint : Bank, Blueprint
        The certification bank and blueprint.
    clauses : list of str
        The changed clauses the person's certificate covered.
    release_id : int
        The release the person re-certifies on.
    playbook : Playbook, optional
        Gives the clause titles shown in the instructions and section titles.
    per_clause : int
        Questions drawn per clause (fewer when fewer exist).

    Returns
    -------
    (Bank, Blueprint)
        A bank holding the eligible questions (their ``section`` set to the clause they stand
        for) and the blueprint; pass both to :class:`ExamService`.

    Raises
    ------
    ExamError
        When no eligible question examines any of the clauses.
    """


    pools = {c: [q for q in bank.active() if c in q.clauses and q.id not in exclude] for c in clauses}
    assigned: dict[str, list[Any]] = {}
    taken: set[str] = set()
    for c in sorted(clauses, key=lambda c: (len(pools[c]), clauses.index(c))):
        mine = [q for q in pools[c] if q.id not in taken]
        taken.update(q.id for q in mine)
        if mine:
            assigned[c] = [q.model_copy(update={"section": c}) for q in mine]
    if not assigned:
        raise ExamError(f"no confirmed question examines the changed clauses {', '.join(clauses)}; "
                        "write or confirm questions on them first")

    def title(c: str) -> Text:
        try:
            return playbook.clause(c).title
        except (AttributeError, KeyError):
            return Text.model_validate({"zh-CN": c, "en": c})

    ordered = [c for c in clauses if c in assigned]
    sections = [Section(id=c, title=title(c), draw=min(per_clause, len(assigned[c]))) for c in ordered]
    n = sum(s.draw for s in sections)
    minutes = max(5, ceil(blueprint.time_limit_minutes * n / max(1, blueprint.question_count)))
    pct = floor_percent(blueprint.pass_fraction, 0)
    zh_titles = "、".join(f"「{title(c).zh_CN}」" for c in ordered)
    en_titles = "; ".join(f"'{title(c).en}'" for c in ordered)
    bp = blueprint.model_copy(update={
        "id": f"{blueprint.id}{RECERT_INFIX}{release_id}",
        "title": Text.model_validate({"zh-CN": f"{blueprint.title.zh_CN} · 复认证",
                                      "en": f"{blueprint.title.en}: recertification"}),
        "instructions": Text.model_validate({
            "zh-CN": f"本次复认证共{n}题,限时{minutes}分钟,只考查您获得认证后修改过的规程条款:{zh_titles}。"
                     f"得分达到{pct}%及以上为通过,通过后您的证书更新到当前规程版本。",
            "en": f"This recertification has {n} questions and a {minutes}-minute limit. It examines only the "
                  f"SOP clauses changed since you were certified: {en_titles}. You pass with {pct}% or more; "
                  "your certificate is then brought up to the current SOP version."}),
        "time_limit_minutes": minutes, "require_lessons": False, "sections": sections})
    sub = Bank([q for c in ordered for q in assigned[c]], bank.digest, playbook=bank.playbook)
    return sub, bp
