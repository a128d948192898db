"""Paths and helpers shared by the tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CASES = SHARED / "cases" / "inputs"


class FakeClock:
    """An aware-UTC clock that only moves when told to."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def correct_response(q):
    """Return a response that earns full credit on ``q`` (test helper; reads the key)."""
    from sopcoach.quizbank import MultipleChoice, Numeric, Ordering, SingleChoice, TrueFalse
    if isinstance(q, SingleChoice):
        return next(o.id for o in q.options if o.correct)
    if isinstance(q, MultipleChoice):
        return sorted(o.id for o in q.options if o.correct)
    if isinstance(q, TrueFalse):
        return q.answer
    if isinstance(q, Numeric):
        return f"{q.answer.normalize():f}"
    if isinstance(q, Ordering):
        return [o.id for o in q.items]
    raise TypeError(q)


def wrong_response(q):
    """Return a response that earns no credit on ``q``."""
    from sopcoach.quizbank import MultipleChoice, Numeric, Ordering, SingleChoice, TrueFalse
    if isinstance(q, SingleChoice):
        return next(o.id for o in q.options if not o.correct)
    if isinstance(q, MultipleChoice):
        return sorted(o.id for o in q.options if not o.correct)
    if isinstance(q, TrueFalse):
        return not q.answer
    if isinstance(q, Numeric):
        return f"{(q.answer + q.tolerance + 1000).normalize():f}"
    if isinstance(q, Ordering):  # only blocks outside the key, or nothing at all
        return [o.id for o in q.distractors] or None
    raise TypeError(q)


def complete_lessons(inst, learner_id: str) -> None:
    """Answer every practice question of every lesson right, so the exam's lesson gate is open."""
    from sopcoach.lessons import LessonService
    service = LessonService(inst)
    for lesson in service.lessons():
        for q in service.questions(lesson.id):
            service.answer(learner_id, lesson.id, q.id, correct_response(q))
