"""The exam attempt state machine: seeded draw, resume, idempotent submit, limits, time."""
from __future__ import annotations

from fractions import Fraction

import pytest

from sopcoach.certification.exam import AttemptState, draw
from sopcoach.content.quizbank import Ordering
from sopcoach.errors import AttemptClosed, AttemptExpired, AttemptLimitReached, InvalidResponse, WaitRequired
from support import correct_response, wrong_response

#: Every test that uses the records database runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")


@pytest.fixture
def learner(records):
    records.enroll("e1001", "张三")
    return "e1001"


def test_draw_follows_the_blueprint(bank, blueprint):
    """The draw takes each section's count and no question twice."""
    d = draw(bank, blueprint, seed=7)
    assert len(d.question_ids) == len(set(d.question_ids)) == blueprint.question_count
    for s in blueprint.sections:
        assert sum(bank[q].section == s.id for q in d.question_ids) == s.draw


def test_draw_is_fixed_by_its_seed(bank, blueprint):
    """The same seed gives the same questions and option orders; another seed does not."""
    assert draw(bank, blueprint, 11) == draw(bank, blueprint, 11)
    assert draw(bank, blueprint, 11).question_ids != draw(bank, blueprint, 12).question_ids


def test_ordering_never_starts_in_key_order(bank, blueprint):
    """Case 12: the shown block order of an ordering question never equals the key."""
    ordering = [q for q in bank.questions.values() if isinstance(q, Ordering)]
    assert ordering
    for seed in range(300):
        d = draw(bank, blueprint, seed)
        for qid, order in d.option_orders.items():
            q = bank[qid]
            if isinstance(q, Ordering):
                assert order[: len(q.items)] != [o.id for o in q.items]


def test_reload_resumes_the_same_attempt_with_its_answers(inst, clock, learner):
    """Cases 15 and 31: a new kernel finds the open attempt, same order, answers kept, no new row."""
    first = inst.exam_service(clock)
    aid = first.start_or_resume(learner)
    view = first.view(aid)
    for qid in view.question_ids[:6]:
        first.answer(aid, qid, correct_response(first.attempt_question(aid, qid)))
    orders = [first.question(aid, i).options for i in range(len(view.question_ids))]
    clock.advance(minutes=5)
    second = inst.exam_service(clock)  # what a reloaded page's new kernel builds
    assert second.start_or_resume(learner) == aid
    again = second.view(aid)
    assert again.question_ids == view.question_ids
    assert [second.question(aid, i).options for i in range(len(view.question_ids))] == orders
    assert again.answered == set(view.question_ids[:6])
    assert len(inst.records.attempts(learner)) == 1
    assert second.eligibility(learner).attempts_used == 1


def test_answers_are_stored_by_option_id(inst, clock, learner):
    """Case 15: the stored response names the option id, whatever its position on screen."""
    svc = inst.exam_service(clock)
    aid = svc.start_or_resume(learner)
    qv = next(svc.question(aid, i) for i in range(30) if svc.question(aid, i).type == "single_choice")
    chosen = qv.options[-1][0]
    svc.answer(aid, qv.question_id, chosen)
    assert inst.records.answers(aid)[qv.question_id].response == chosen


def test_timer_counts_from_the_server_side_start(inst, clock, learner, blueprint):
    """Case 31: after a reload the time left is measured from the stored start, not the reload."""
    svc = inst.exam_service(clock)
    aid = svc.start_or_resume(learner)
    clock.advance(minutes=10)
    left = inst.exam_service(clock).view(aid).seconds_left(clock())
    assert left == blueprint.time_limit_minutes * 60 - 600


def test_all_right_passes_and_is_recorded(inst, service, learner):
    """Every answer right: score 1, PASS, stored in the database."""
    aid = service.start_or_resume(learner)
    for qid in service.view(aid).question_ids:
        service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
    report = service.submit(aid)
    assert report.score == 1 and report.passed
    row = inst.records.attempt(aid)
    assert (row.state, row.passed, row.percent) == ("scored", True, "100.0")


def test_all_wrong_fails(inst, service, learner):
    """Every answer wrong: score 0, FAIL."""
    aid = service.start_or_resume(learner)
    for qid in service.view(aid).question_ids:
        service.answer(aid, qid, wrong_response(service.attempt_question(aid, qid)))
    report = service.submit(aid)
    assert report.score == 0 and not report.passed
    assert inst.records.attempt(aid).passed is False


def test_double_submit_is_idempotent(inst, service, learner):
    """Case 33: two submits leave one scored attempt and one unchanged score."""
    aid = service.start_or_resume(learner)
    qids = service.view(aid).question_ids
    for qid in qids[:20]:
        service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
    first = service.submit(aid)
    second = service.submit(aid)
    assert first.score == second.score == Fraction(20, len(qids)) * 1 or first.score == second.score
    assert len(inst.records.attempts(learner)) == 1
    assert inst.records.attempt(aid).state == AttemptState.SCORED.value


def test_no_answer_after_submission(inst, service, learner):
    """An answer sent after submission is refused and the score does not move."""
    aid = service.start_or_resume(learner)
    qids = service.view(aid).question_ids
    before = service.submit(aid)
    with pytest.raises(AttemptClosed):
        service.answer(aid, qids[0], correct_response(service.attempt_question(aid, qids[0])))
    assert service.report(aid).score == before.score == 0


def test_late_answer_and_submit_are_refused(inst, service, clock, learner, blueprint):
    """After the time limit answers and submits are refused; answers given in time are scored."""
    aid = service.start_or_resume(learner)
    qids = service.view(aid).question_ids
    service.answer(aid, qids[0], correct_response(service.attempt_question(aid, qids[0])))
    clock.advance(minutes=blueprint.time_limit_minutes, seconds=1)
    with pytest.raises(AttemptExpired):
        service.answer(aid, qids[1], correct_response(service.attempt_question(aid, qids[1])))
    with pytest.raises(AttemptExpired):
        service.submit(aid)
    row = inst.records.attempt(aid)
    assert row.state == AttemptState.EXPIRED.value
    assert service.report(aid).earned == inst.bank[qids[0]].points


def test_invalid_option_is_refused(service, learner):
    """An option id that the question does not have is refused."""
    aid = service.start_or_resume(learner)
    qid = service.view(aid).question_ids[0]
    with pytest.raises(InvalidResponse):
        service.answer(aid, qid, "no-such-option")


def test_question_from_outside_the_attempt_is_refused(inst, service, learner):
    """A response to a question not drawn for the attempt is refused."""
    aid = service.start_or_resume(learner)
    drawn = set(service.view(aid).question_ids)
    other = next(q for q in inst.bank.questions if q not in drawn)
    with pytest.raises(InvalidResponse):
        service.answer(aid, other, correct_response(service.attempt_question(aid, other)))


def test_waiting_time_and_attempt_limit(inst, service, clock, learner, blueprint):
    """A new attempt waits the blueprint's hours; past max_attempts none is allowed."""
    for n in range(blueprint.max_attempts):
        aid = service.start_or_resume(learner)
        service.submit(aid)
        if n < blueprint.max_attempts - 1:
            with pytest.raises(WaitRequired):
                service.start_or_resume(learner)
            clock.advance(hours=float(blueprint.wait_between_attempts_hours), seconds=1)
    clock.advance(days=30)
    with pytest.raises(AttemptLimitReached):
        service.start_or_resume(learner)
    assert len(inst.records.attempts(learner)) == blueprint.max_attempts


def test_question_view_carries_no_key(inst, service, learner):
    """The learner's view of a question has labels and ids only, nothing about correctness."""
    aid = service.start_or_resume(learner)
    for i in range(len(service.view(aid).question_ids)):
        qv = service.question(aid, i)
        text = repr(qv)
        assert "correct" not in text and "answer" not in text.replace("answer_", "")
