"""A learner's lessons: practice feedback, progress and the exam's lesson gate (:class:`LessonService`).

Each lesson teaches with one tool of :mod:`sopcoach.lessons.progress.tools`; this module keeps what the learner did.

Progress rule (stored per learner and lesson in the ``lesson_progress`` table)
-------------------------------------------------------------------------------
* **opened**: when the lesson page loads for a signed-in learner (the first opening is kept).
* **practice score**: the lesson's practice questions (``quizzes/practice/``, ``section`` = the
  lesson id) are scored with the exam's rules (:func:`sopcoach.certification.scoring.credit`); the score is the
  mean credit of the latest answer to each question, unanswered ones counting 0, an exact
  ``Fraction``. The best score reached is kept.
* **complete**: every practice question of the lesson has been answered and the score is at least
  :data:`PASS_FRACTION` (4/5, i.e. 80%). Completion is recorded once and never taken back; a lesson
  without practice questions is complete when opened.
* The exam (``require_lessons: true`` in the blueprint) opens only when every lesson is complete
  (:func:`lesson_gate`).
* A practice *template* (``variant:``, see :mod:`sopcoach.certification.variants`) is shown with
  fresh numbers, drawn at random whenever the learner asks for new ones (:meth:`LessonService.variant`);
  the answer is scored on the variant shown and stored with its params, so the feedback (and the
  key it shows) is that of the numbers the learner answered. Practice draws never use an exam
  attempt's seed, so a practice key says nothing about an exam's numbers.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any
from collections.abc import Callable, Sequence

from ..certification.scoring import check_response, credit, floor_percent, key_text
from ..certification.variants import TemplateError, build, instantiate
from ..errors import InvalidResponse, ToolInputError
from ..records.models import from_db, utcnow
from .tools import render_text

#: Share of the practice points a learner needs (with every question answered) to complete a lesson.
PASS_FRACTION = Fraction(4, 5)
#: Question types the lesson practice renders.
PRACTICE_TYPES = ("single_choice", "multiple_choice", "true_false", "numeric")


@dataclass(frozen=True)
class LessonStatus:
    """One learner's progress in one lesson (see the module docstring for the rule)."""

    lesson: Any
    opened: bool
    answered: int
    total: int
    score: Fraction
    best: Fraction
    complete: bool

    @property
    def progress(self) -> Fraction:
        """Share 0-1 for a progress bar: 1 when complete, else opening plus answered questions."""
        if self.complete:
            return Fraction(1)
        done = int(self.opened) + self.answered
        return Fraction(done, self.total + 2)

    def percent(self, value: Fraction | None = None) -> str:
        """Return ``value`` (default: the best score) as a percent rounded down, e.g. ``'80.0'``."""
        return str(floor_percent(self.best if value is None else value))


@dataclass(frozen=True)
class Feedback:
    """The immediate feedback on one practice answer."""

    question_id: str
    credit: Fraction
    key: str
    explanation: str | None
    clauses: tuple[str, ...]
    status: LessonStatus | None

    @property
    def correct(self) -> bool:
        return self.credit == 1


def _frac(text: Any) -> Fraction:
    try:
        return Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        return Fraction(0)


def practice_score(question_ids: Sequence[str], answers: dict[str, Any]) -> Fraction:
    """Return the mean credit over ``question_ids`` of the stored answers (unanswered = 0).

    >>> practice_score(["a", "b"], {"a": {"credit": "1"}, "b": {"credit": "1/2"}})
    Fraction(3, 4)
    """
    if not question_ids:
        return Fraction(1)
    total = sum((_frac(answers[q]["credit"]) for q in question_ids if q in answers), Fraction(0))
    return total / len(question_ids)


def is_complete(question_ids: Sequence[str], answers: dict[str, Any]) -> bool:
    """Return True when every question is answered and the score reaches :data:`PASS_FRACTION`.

    >>> is_complete(["a", "b"], {"a": {"credit": "1"}}), is_complete(["a"], {"a": {"credit": "4/5"}})
    (False, True)
    """
    return all(q in answers for q in question_ids) and practice_score(question_ids, answers) >= PASS_FRACTION


class LessonService:
    """Lessons, practice and progress of one installation, over its records store.

    Parameters
    ----------
    inst : Installation
    clock : callable, optional
        Aware-UTC clock (tests pass a fake one).
    """

    def __init__(self, inst: Any, clock: Callable[[], datetime] = utcnow):
        self.inst = inst
        self.playbook = inst.playbook
        self.records = inst.records
        self.clock = clock
        self.practice_bank = inst.practice()

    # -- content ---------------------------------------------------------------------------------
    def lessons(self) -> list[Any]:
        """Return the lessons in order of their number."""
        return sorted(self.playbook.lessons, key=lambda x: x.number)

    def lesson(self, lesson_id: str) -> Any:
        """Return one lesson; raise :class:`ToolInputError` for an unknown id."""
        for x in self.playbook.lessons:
            if x.id == lesson_id:
                return x
        raise ToolInputError(f"unknown lesson {lesson_id!r}; lessons are listed in playbook/lessons.yaml")

    def neighbours(self, lesson_id: str) -> tuple[Any, Any]:
        """Return (previous lesson or None, next lesson or None)."""
        order = self.lessons()
        i = [x.id for x in order].index(lesson_id)
        return (order[i - 1] if i > 0 else None), (order[i + 1] if i + 1 < len(order) else None)

    def questions(self, lesson_id: str) -> list[Any]:
        """Return the lesson's practice questions in authored order."""
        return self.practice_bank.in_section(lesson_id)

    def variant(self, question_id: str, params: dict[str, Any] | None = None,
                rng: random.Random | None = None) -> tuple[Any, dict[str, Any] | None]:
        """Return ``(question as shown, params)``: a template's instance for ``params``, or for
        fresh params drawn from ``rng`` (default: a new random draw); any other question as it is,
        with ``None``.

        Raises
        ------
        InvalidResponse
            When stored ``params`` no longer give an instance (the template changed since).
        """
        q = self.practice_bank[question_id]
        if q.variant is None:
            return q, None
        try:
            if params is not None:
                return build(q, self.playbook, params), params
            return instantiate(q, self.playbook, rng or random.Random(random.SystemRandom().randrange(2**63)))
        except TemplateError as exc:
            raise InvalidResponse(str(exc)) from None

    # -- progress --------------------------------------------------------------------------------
    def _status(self, lesson: Any, row: Any) -> LessonStatus:
        ids = [q.id for q in self.questions(lesson.id)]
        if row is None:
            return LessonStatus(lesson, False, 0, len(ids), Fraction(0), Fraction(0), False)
        practice = row.practice or {}
        answers = practice.get("answers") or {}
        score = practice_score(ids, answers)
        best = max(_frac(practice.get("best", "0")), score)
        return LessonStatus(lesson, True, sum(1 for q in ids if q in answers), len(ids), score, best,
                            row.completed_at is not None)

    def status(self, learner_id: str, lesson_id: str) -> LessonStatus:
        """Return the learner's progress in one lesson."""
        row = self.records.lesson_progress(learner_id).get(lesson_id)
        return self._status(self.lesson(lesson_id), row)

    def statuses(self, learner_id: str) -> list[LessonStatus]:
        """Return the learner's progress in every lesson, in lesson order."""
        rows = self.records.lesson_progress(learner_id)
        return [self._status(x, rows.get(x.id)) for x in self.lessons()]

    def missing(self, learner_id: str) -> list[str]:
        """Return the ids of the lessons the learner has not completed, in lesson order."""
        return [s.lesson.id for s in self.statuses(learner_id) if not s.complete]

    def open(self, learner_id: str, lesson_id: str) -> LessonStatus:
        """Record that the learner opened the lesson; return the progress."""
        lesson = self.lesson(lesson_id)
        now = self.clock()
        self.records.open_lesson(learner_id, lesson_id, now)
        ids = [q.id for q in self.questions(lesson_id)]
        if not ids:  # nothing to practise: opening completes it
            self.records.update_lesson_practice(learner_id, lesson_id, lambda p: (p, True), now)
        return self._status(lesson, self.records.lesson_progress(learner_id).get(lesson_id))

    def answer(self, learner_id: str, lesson_id: str, question_id: str, response: Any,
               lang: str | None = None, params: dict[str, Any] | None = None) -> Feedback:
        """Score a practice answer, save it with the new progress and return the feedback.

        ``params``: for a template, the params of the variant shown (:meth:`variant`); the answer
        is scored on that variant and stored with them.

        Raises
        ------
        InvalidResponse
            When the question is not part of the lesson, the response does not fit it, or a
            template is answered without the params of the variant shown.
        """
        lesson = self.lesson(lesson_id)
        ids = [q.id for q in self.questions(lesson_id)]
        if question_id not in ids:
            raise InvalidResponse(f"question {question_id!r} is not a practice question of this lesson")
        if self.practice_bank[question_id].variant is not None and params is None:
            raise InvalidResponse(f"question {question_id!r} is a template: answer the variant shown (its params)")
        q, params = self.variant(question_id, params)
        value = check_response(q, response)
        if value is None:
            raise InvalidResponse("give an answer first")
        earned = credit(q, value)

        def update(practice: dict) -> tuple[dict, bool]:
            answers = practice.setdefault("answers", {})
            answers[question_id] = {"response": value, "credit": str(earned),
                                    "at": self.clock().isoformat(timespec="seconds")}
            if params is not None:
                answers[question_id]["params"] = params
            score = practice_score(ids, answers)
            practice["best"] = str(max(_frac(practice.get("best", "0")), score))
            practice["tries"] = int(practice.get("tries", 0)) + 1
            return practice, is_complete(ids, answers)
        row = self.records.update_lesson_practice(learner_id, lesson_id, update, self.clock())
        return self._feedback(q, earned, lang, self._status(lesson, row))

    def feedback(self, question_id: str, stored: dict, lang: str | None = None) -> Feedback:
        """Return the feedback of a stored practice answer (``{"credit": ..}``), to show it again
        (a template's for the variant answered, its ``params`` stored with the answer)."""
        q, _ = self.variant(question_id, stored.get("params"))
        return self._feedback(q, _frac(stored.get("credit", "0")), lang, None)

    def _feedback(self, q: Any, earned: Fraction, lang: str | None, status: LessonStatus | None) -> Feedback:
        clauses = []  # by title: a learner never sees a clause id
        for cid in q.clauses:
            try:
                clauses.append(self.playbook.clause(cid).title.get(lang))
            except KeyError:
                continue
        explanation = render_text(self.playbook, q.explanation, lang) if q.explanation else None
        return Feedback(q.id, earned, key_text(q, lang), explanation, tuple(clauses), status)

    def completed_at(self, learner_id: str, lesson_id: str) -> datetime | None:
        row = self.records.lesson_progress(learner_id).get(lesson_id)
        return from_db(row.completed_at) if row is not None else None


def lesson_gate(inst: Any) -> Callable[[str], list[str]]:
    """Return ``gate(learner_id) -> lesson ids not complete`` for the exam (``require_lessons``)."""
    def gate(learner_id: str) -> list[str]:
        return LessonService(inst).missing(learner_id)
    return gate
