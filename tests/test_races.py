"""Learners' commands racing each other, with real threads, on SQLite and on PostgreSQL.

An answer saved while the same attempt is being submitted is either in the score or refused with
a message (never "saved" and left out of the score); two starts at once give one attempt; two pages
saving practice answers of one lesson at once lose none; no caller ever sees a raw database error.
"""
from __future__ import annotations

import threading

import pytest

from sopcoach.certification.exam import AttemptState
from sopcoach.certification.scoring import score_attempt
from sopcoach.errors import AttemptClosed, RecordsError
from support import correct_response

#: Every test here runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")

#: Attempts raced per test: one race can go either way, ten show a lost answer when there is one.
ROUNDS = 10
#: Generous: a thread that has not finished by then has hung (the machine may be busy with other tests).
JOIN_SECONDS = 120


def _run_together(*targets) -> list[BaseException]:
    """Run each target in its own thread, released at once by a barrier; return the exceptions raised."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrap(fn):
        def run():
            barrier.wait()
            try:
                fn()
            except BaseException as exc:  # reported to the test, which asserts there were none
                errors.append(exc)
        return run
    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join(JOIN_SECONDS)
    assert not any(th.is_alive() for th in threads), "a racing thread hung"
    return errors


def test_an_answer_raced_by_the_submit_is_scored_or_refused(inst, clock):
    """Answers saved while the attempt is submitted: every one the learner was told is saved is in the
    score, the rest are refused with AttemptClosed, and the score equals scoring the stored answers."""
    lost, scored_late = [], 0
    for n in range(ROUNDS):
        learner = f"race{n}"
        inst.records.enroll(learner, learner)
        service = inst.exam_service(clock)
        aid = service.start_or_resume(learner)
        qids = service.view(aid).question_ids
        first_saved = threading.Event()
        saved: list[str] = []
        refused: list[str] = []

        def answer_all(service=service, aid=aid, qids=qids, saved=saved, refused=refused, first_saved=first_saved):
            for qid in qids:
                try:
                    service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
                except AttemptClosed:
                    refused.append(qid)
                else:
                    saved.append(qid)
                first_saved.set()

        def submit(service=service, aid=aid, first_saved=first_saved):
            assert first_saved.wait(JOIN_SECONDS)
            service.submit(aid)

        assert _run_together(answer_all, submit) == []
        row = inst.records.attempt(aid)
        assert row.state == AttemptState.SCORED.value
        stored = {q: a.response for q, a in inst.records.answers(aid).items()}
        report = service.report(aid)
        earned = {r.question_id for r in report.results if r.earned == r.points}
        assert set(saved) | set(refused) == set(qids)
        lost += [q for q in saved if q not in earned]
        scored_late += len(refused) > 0
        assert set(stored) == set(saved)  # a refused answer is not stored
        rescored = score_attempt([service.attempt_question(aid, q) for q in row.question_ids], stored,
                                 inst.blueprint.pass_fraction)
        assert (rescored.earned, rescored.possible) == (report.earned, report.possible)
        assert (row.score_num, row.score_den) == (report.score.numerator, report.score.denominator)
    assert lost == [], f"answers told 'saved' but not scored: {lost}"
    assert scored_late > 0, "no round had an answer refused: the submit never raced an answer"


def test_two_simultaneous_starts_give_one_attempt(inst, clock):
    """Two pages of one learner press start at once: both get the same attempt, no error, one row."""
    for n in range(ROUNDS):
        learner = f"twin{n}"
        inst.records.enroll(learner, learner)
        ids: list[int] = []
        pages = [inst.exam_service(clock), inst.exam_service(clock)]
        errors = _run_together(*[lambda s=s: ids.append(s.start_or_resume(learner)) for s in pages])
        assert errors == []
        assert len(ids) == 2 and ids[0] == ids[1]
        assert [a.id for a in inst.records.attempts(learner)] == [ids[0]]


def test_two_pages_saving_practice_answers_of_one_lesson_lose_none(inst, clock):
    """Two pages of one learner answer a lesson's practice questions at once, from a lesson never opened:
    every answer is stored, every try counted, and the lesson is complete."""
    from sopcoach.lessons.progress import LessonService
    service = LessonService(inst, clock=clock)
    lesson = service.lessons()[0]
    questions = service.questions(lesson.id)
    assert len(questions) >= 2
    for n in range(ROUNDS):
        learner = f"pupil{n}"
        inst.records.enroll(learner, learner)

        def page(part, learner=learner):
            for q in part:
                service.answer(learner, lesson.id, q.id, correct_response(q))
        assert _run_together(lambda: page(questions[0::2]), lambda: page(questions[1::2])) == []
        row = inst.records.lesson_progress(learner)[lesson.id]
        assert set(row.practice["answers"]) == {q.id for q in questions}
        assert row.practice["tries"] == len(questions)
        assert row.completed_at is not None


def test_a_database_error_that_is_not_a_lock_says_what_it_is(records):
    """A constraint violation comes out as one RecordsError line naming it, not as a raw driver error."""
    records.enroll("e1", "张三")
    from sopcoach.records.models import LessonProgress, to_db, utcnow

    def duplicate(s):
        for _ in range(2):
            s.add(LessonProgress(learner_id="e1", lesson_id="L1", opened_at=to_db(utcnow()), practice={}))
            s.flush()
    with pytest.raises(RecordsError) as info:
        records.run(duplicate)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("database error (integrity): "), message
