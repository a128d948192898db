"""The learner's review of closed attempts, and two windows on one attempt (headless, real records)."""
from __future__ import annotations

import dataclasses

import pytest

from sopcoach.certification.exam import draw
from sopcoach.certification.scoring import key_text
from sopcoach.errors import ExamError, StaleAttempt
from sopcoach.i18n import shown
from sopcoach.ui._common import esc
from sopcoach.ui.exam_app import ExamApp, Page
from sopcoach.ui.home_app import HomeApp
from support import correct_response, widget_tree, wrong_response

pytestmark = pytest.mark.databases("sqlite", "postgresql")

LEARNER = "e3001"


def _seed_with_template_and_scenario(inst) -> int:
    """Return a draw seed whose exam holds a template and a question with a scenario."""
    for seed in range(500):
        ids = draw(inst.bank, inst.blueprint, seed).question_ids
        qs = [inst.bank[q] for q in ids]
        if any(q.variant is not None for q in qs) and any(q.scenario and q.variant is None for q in qs):
            return seed
    raise AssertionError("no seed draws both a template and a scenario question")


def _closed_attempt(inst, clock, right: bool = False) -> int:
    """Take and submit an attempt of LEARNER (every answer right or wrong) through the service."""
    inst.records.enroll(LEARNER, "赵六")
    service = inst.exam_service(clock)
    attempt = service.start_or_resume(LEARNER, seed=_seed_with_template_and_scenario(inst))
    for qid in service.view(attempt).question_ids:
        q = service.attempt_question(attempt, qid)
        response = correct_response(q) if right else wrong_response(q)
        if response is not None and response != []:
            service.answer(attempt, qid, response)
    service.submit(attempt)
    return attempt


def _states(app) -> str:
    return "\n".join(str(m.get_state()) for m in widget_tree(app.root))


def _open_review(app) -> str:
    buttons = [b for b in widget_tree(app.root) if "sopcoach-past-attempt" in getattr(b, "_dom_classes", ())]
    assert len(buttons) == 1, "the exam page lists the one closed attempt"
    buttons[0].click()
    assert app.page is Page.PAST
    return app.body.children[0].value


def test_a_closed_attempt_is_reviewed_later_as_it_was_asked(inst, clock):
    """A new page lists the closed attempt; its review shows every question as asked (a template with
    its stored numbers, a scenario), the learner's own answer, the key, and clauses by title."""
    attempt = _closed_attempt(inst, clock)
    home = HomeApp(inst, lang="zh-CN", clock=clock, learner_id=LEARNER)
    assert "查看我的 1 次考试答卷" in "\n".join(str(m.get_state()) for m in widget_tree(home.root))
    app = ExamApp(inst, lang="zh-CN", clock=clock, start_timer=False, learner_id=LEARNER)
    assert "第 1 次考试" in _states(app)
    html = _open_review(app)
    service = app.service
    for qid in service.view(attempt).question_ids:
        asked = service.attempt_question(attempt, qid)
        assert esc(shown(asked.text, "zh-CN")) in html
        if asked.scenario:
            assert esc(shown(asked.scenario, "zh-CN")) in html
    template = next(q for q in service.view(attempt).question_ids if inst.bank[q].variant is not None)
    rebuilt = service.attempt_question(attempt, template)
    assert "{{" not in html and esc(shown(rebuilt.scenario or rebuilt.text, "zh-CN")) in html
    assert html.count("您的答案：") == len(service.view(attempt).question_ids)
    assert "正确答案：" in html
    assert "seed:" not in html and "(quote-limits)" not in html
    assert inst.playbook.clause("quote-limits").title.zh_CN in html or "请复习条款：" in html
    back = [b for b in widget_tree(app.root) if "sopcoach-past-back" in getattr(b, "_dom_classes", ())][0]
    back.click()
    assert app.page is Page.INSTRUCTIONS


def test_the_review_shows_no_key_when_the_blueprint_says_never(inst, clock):
    """With ``show_correct_answers: never`` the review shows the learner's answers and the clauses,
    and no widget state holds a key or an explanation."""
    bp = inst.blueprint.model_copy(update={"show_correct_answers": "never"})
    inst = dataclasses.replace(inst, blueprint=bp)
    attempt = _closed_attempt(inst, clock)
    app = ExamApp(inst, lang="zh-CN", clock=clock, start_timer=False, learner_id=LEARNER)
    html = _open_review(app)
    assert "您的答案：" in html and "正确答案：" not in html and "不公布正确答案" in html
    blob = _states(app)
    for qid in app.service.view(attempt).question_ids:
        q = app.service.attempt_question(attempt, qid)
        if q.explanation:
            assert q.explanation.zh_CN not in blob
        if q.type in ("single_choice", "multiple_choice", "ordering"):
            key = key_text(q, "zh-CN")
            assert f"正确答案：{key}" not in blob


@pytest.mark.parametrize("setting, said, unsaid", [
    ("after_submit", "可查看每题的正确答案和解析", "不公布正确答案"),
    ("never", "只显示得分，不公布正确答案", "可查看每题的正确答案和解析"),
])
def test_the_instructions_say_what_submitting_shows_from_the_blueprint(inst, clock, setting, said, unsaid):
    """The exam's instructions table words the blueprint's ``show_correct_answers`` and ``require_lessons``
    (the instruction text no longer repeats numbers a trainer may change)."""
    bp = inst.blueprint.model_copy(update={"show_correct_answers": setting})
    app = ExamApp(dataclasses.replace(inst, blueprint=bp), lang="zh-CN", clock=clock, start_timer=False,
                  learner_id=LEARNER)
    assert app.page is Page.INSTRUCTIONS
    html = _states(app)
    assert said in html and unsaid not in html
    assert "须完成全部课程" in html
    assert f"{bp.time_limit_minutes} 分钟" in html and "本考试共" not in html


def test_an_open_attempt_has_no_review_and_another_learners_attempt_is_refused(inst, clock):
    """The service refuses the review of an open attempt and of someone else's; a forged request
    from the page shows nothing of it."""
    inst.records.enroll("e3002", "钱七")
    service = inst.exam_service(clock)
    open_attempt = service.start_or_resume("e3002")
    with pytest.raises(ExamError):
        service.review(open_attempt, "e3002")
    closed = _closed_attempt(inst, clock)
    with pytest.raises(ExamError):
        service.review(closed, "e3002")
    app = ExamApp(inst, lang="zh-CN", clock=clock, start_timer=False, learner_id="e3002")
    app.on_past(open_attempt)
    app.on_past(closed)
    assert app.page is not Page.PAST
    blob = _states(app)
    assert "正确答案：" not in blob and "您的答案：" not in blob


def test_an_answer_from_a_stale_window_is_not_saved_and_the_window_says_so(inst, clock):
    """Two windows on one attempt: B saves an answer; A's next answer to that question saves nothing,
    A shows B's answer and says, in the page's language, that another window changed the exam."""
    inst.records.enroll(LEARNER, "赵六")
    a = ExamApp(inst, lang="zh-CN", clock=clock, start_timer=False, learner_id=LEARNER)
    b = ExamApp(inst, lang="zh-CN", clock=clock, start_timer=False, learner_id=LEARNER)
    a.start_button.click()
    b.start_button.click()
    assert a.attempt_id == b.attempt_id
    qids = a.service.view(a.attempt_id).question_ids
    index = next(i for i, q in enumerate(qids) if inst.bank[q].type == "single_choice" and inst.bank[q].variant is None)
    a.go_to(index)
    b.go_to(index)
    q = inst.bank[qids[index]]
    right, wrong = correct_response(q), wrong_response(q)
    b._answer_widget.value = right
    assert "已保存" in b.status.value
    a._answer_widget.value = wrong
    assert inst.records.answers(a.attempt_id)[q.id].response == right
    assert "另一个窗口" in a.status.value
    assert a._answer_widget.value == right, "the stale window now shows the saved answer"
    a._answer_widget.value = wrong  # now the learner's choice, made on the latest answers, is saved
    assert inst.records.answers(a.attempt_id)[q.id].response == wrong and "已保存" in a.status.value


def test_the_service_refuses_a_save_on_answers_that_changed_since(inst, clock):
    """ExamService.answer with an old token raises StaleAttempt and stores nothing."""
    inst.records.enroll(LEARNER, "赵六")
    service = inst.exam_service(clock)
    attempt = service.start_or_resume(LEARNER)
    token = service.answers_version(attempt)
    qids = service.view(attempt).question_ids
    first, second = (service.attempt_question(attempt, q) for q in qids[:2])
    new = service.answer(attempt, first.id, correct_response(first), expected=token)
    assert new != token
    with pytest.raises(StaleAttempt):
        service.answer(attempt, second.id, correct_response(second), expected=token)
    assert second.id not in inst.records.answers(attempt)
    with pytest.raises(StaleAttempt):
        service.flag(attempt, second.id, True, expected=token)
    assert service.flag(attempt, second.id, True, expected=new) == service.answers_version(attempt)


def test_english_stale_window_message(inst, clock):
    """The stale-window warning is in the page's language."""
    inst.records.enroll(LEARNER, "Zhao")
    a = ExamApp(inst, lang="en", clock=clock, start_timer=False, learner_id=LEARNER)
    b = ExamApp(inst, lang="en", clock=clock, start_timer=False, learner_id=LEARNER)
    a.start_button.click()
    b.start_button.click()
    b.flag_button.value = True
    a.on_next()
    assert "another window" in a.status.value
