"""Headless tests of the exam app's widgets: flow, feedback, double clicks and forged messages."""
from __future__ import annotations

import pytest

from sopcoach.certification.exam import AttemptState
from sopcoach.certification.scoring import points_text
from sopcoach.i18n import shown
from sopcoach.ui.exam_app import ExamApp, Page
import base64
import re

from sopcoach.ui.home_app import HomeApp
from support import complete_lessons, correct_response, widget_tree, wrong_response

#: Every test that uses the records database runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")


@pytest.fixture
def app(inst, clock):
    inst.records.enroll("e2001", "王五")
    return ExamApp(inst, lang="zh-CN", clock=clock, start_timer=False, learner_id="e2001")


def _forge_click(button) -> None:
    """Deliver a click the way a (forged) comm message from the page does."""
    button._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "click"}}},
                        "buffers": []})


def _forge_value(widget, **state) -> None:
    """Deliver a state update the way a (forged) comm message from the page does."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
                        "buffers": []})


def _answer_current(app, inst, right: bool = True, before_answering=None) -> None:
    qv = app.service.question(app.attempt_id, app.index)
    q = app.service.attempt_question(app.attempt_id, qv.question_id)
    resp = correct_response(q) if right else wrong_response(q)
    if before_answering is not None:
        before_answering()
    widget = app._answer_widget
    if qv.type == "single_choice":
        widget.value = resp
    elif qv.type == "true_false":
        widget.value = "true" if resp else "false"
    elif qv.type == "multiple_choice":
        ids = [oid for oid, _ in qv.options]
        for oid, box in zip(ids, widget.children[1:]):
            box.value = oid in resp
    elif qv.type == "numeric":
        widget.children[0].value = resp
    elif qv.type == "ordering":
        drops = widget.children[2:]
        for d in drops:
            d.value = None
        for d, oid in zip(drops, resp or []):
            d.value = oid


def _take(app, inst, right: bool = True) -> None:
    assert app.page is Page.INSTRUCTIONS
    app.start_button.click()
    assert app.page is Page.QUESTION
    total = len(app.service.view(app.attempt_id).question_ids)
    for i in range(total):
        _answer_current(app, inst, right)
        if i < total - 1:
            app.next_button.click()
    app.review_button.click()
    app.submit_button.click()
    assert app.page is Page.CONFIRM
    app.confirm_button.click()


def test_without_a_learner_the_page_offers_nothing_to_start(inst, clock):
    """Without a signed-in learner the exam view only asks to sign in (sign-in is the server's door)."""
    a = ExamApp(inst, lang="en", clock=clock, start_timer=False)
    assert a.page is Page.SIGN_IN
    assert a.start_button not in a.body.children
    assert "sign in" in a.body.children[0].value.lower()


def test_forged_start_by_a_certified_learner_is_refused(app, inst):
    """A learner who passed cannot get a second attempt by a forged start, even from the instructions page."""
    _take(app, inst, right=True)
    app.page = Page.INSTRUCTIONS  # as if the hidden start button were still there
    _forge_click(app.start_button)
    assert len(inst.records.attempts("e2001")) == 1
    assert "certified" in app.status.value.lower() or "已通过认证" in app.status.value


def test_all_right_shows_pass_in_the_page(app, inst):
    """Case 29: the result is shown in a widget of the layout: 通过 and 100.0%, in one language."""
    _take(app, inst, right=True)
    assert app.page is Page.RESULT
    html = app.body.children[0].value
    assert "<span class='sopcoach-pass'>通过</span>" in html and "100.0%" in html
    assert "PASS" not in html and "Passed" not in html
    assert inst.records.attempts("e2001")[0].passed is True


def test_all_wrong_shows_fail_and_clauses_to_reread(app, inst):
    """A failed attempt shows 未通过 and, per missed question, the clause to re-read by its title
    (never a clause id or a seed reference)."""
    _take(app, inst, right=False)
    html = app.body.children[0].value
    assert "<span class='sopcoach-fail'>未通过</span>" in html and "请复习条款：" in html
    assert "seed:" not in html and "FAIL" not in html
    missed = app.service.report(app.attempt_id).missed()
    title = shown(inst.playbook.clause(missed[0].clauses[0]).title, "zh-CN")
    assert title in html and f"({missed[0].clauses[0]})" not in html


def _page_text(app) -> str:
    return " ".join(getattr(c, "value", "") for c in widget_tree(app.body) if isinstance(getattr(c, "value", None), str))


def test_fail_says_points_attempts_left_and_when_the_next_attempt_opens(inst, clock):
    """Issue 17: after a fail the result page gives the score in points and percent, the attempts
    left (3 allowed, 1 used) and the day and time the next attempt opens in Asia/Shanghai: 24 hours
    after 2026-03-02 01:00 UTC is 2026-03-03 09:00 in Shanghai. Revisiting the page says the same."""
    inst.records.enroll("e2002", "赵六")
    a = ExamApp(inst, lang="en", clock=clock, start_timer=False, learner_id="e2002")
    _take(a, inst, right=False)
    text = _page_text(a)
    points = points_text(a.report.earned, a.report.possible)
    assert a.report.earned == 0 and points.startswith("0/")
    assert "Not passed" in text and "0.0%</b> (<span class='sopcoach-points'>" + points + " points</span>" in text
    assert "Attempts used 1, attempts left 2 (of 3)" in text
    assert "Your next attempt opens on 2026-03-03 09:00 (Beijing time)." in text
    assert "未通过" not in text and "FAIL" not in text
    clock.advance(hours=1, milliseconds=400)  # a later view, at a moment with a fraction of a second: the same time
    again = ExamApp(inst, lang="zh-CN", clock=clock, start_timer=False, learner_id="e2002")
    text = _page_text(again)
    assert "剩余 2 次" in text and "下次考试开放时间：2026-03-03 09:00（北京时间）" in text
    assert again.start_button not in again.body.children


def test_last_fail_says_no_attempts_left(inst, clock):
    """After the last allowed attempt the page says no attempts are left and to contact the trainer."""
    inst.records.enroll("e2003", "钱七")
    for _ in range(inst.blueprint.max_attempts):
        a = ExamApp(inst, lang="en", clock=clock, start_timer=False, learner_id="e2003")
        _take(a, inst, right=False)
        clock.advance(hours=float(inst.blueprint.wait_between_attempts_hours) + 1)
    text = _page_text(a)
    assert "attempts left 0" in text and "No attempts left — contact your trainer." in text


def test_home_does_not_say_the_exam_is_open_while_the_learner_waits(inst, clock):
    """Issue 17: during the 24-hour wait the home page's exam card says when the exam opens, not
    可以参加考试 in green; when the wait is over it is open again."""
    inst.records.enroll("e2004", "孙八")
    complete_lessons(inst, "e2004")
    home = HomeApp(inst, lang="zh-CN", clock=clock, learner_id="e2004")
    assert "sopcoach-exam-open" in _page_text(home) and "可以参加考试" in _page_text(home)
    a = ExamApp(inst, lang="zh-CN", clock=clock, start_timer=False, learner_id="e2004")
    _take(a, inst, right=False)
    clock.advance(hours=2)
    text = _page_text(HomeApp(inst, lang="zh-CN", clock=clock, learner_id="e2004"))
    assert "可以参加考试" not in text and "sopcoach-ok" not in text.split("上岗认证考试")[1]
    assert "sopcoach-exam-waiting" in text and "2026-03-03 09:00" in text and "剩余 2 次" in text
    clock.advance(hours=22)
    assert "sopcoach-exam-open" in _page_text(HomeApp(inst, lang="zh-CN", clock=clock, learner_id="e2004"))


def test_pass_shows_the_certificate_and_its_pdf(inst, clock):
    """Issue 17: a pass shows the certificate code, its end day in the company's days and a PDF
    download (a data: link whose bytes are a PDF); a later visit of the exam page shows them too."""
    inst.records.enroll("e2005", "周九")
    a = ExamApp(inst, lang="en", clock=clock, start_timer=False, learner_id="e2005")
    _take(a, inst, right=True)
    cert = inst.records.latest_certificate_code("e2005")
    assert cert
    for page in (a, ExamApp(inst, lang="en", clock=clock, start_timer=False, learner_id="e2005")):
        text = _page_text(page)
        assert f"Certificate <b class='sopcoach-cert-code'>{cert}</b>, valid until 2027-03-02" in text
        href = re.search(r"download='certificate-([^']+)\.pdf' href='data:application/pdf;base64,([^']+)'", text)
        assert href is not None and href.group(1) == cert
        assert base64.b64decode(href.group(2)).startswith(b"%PDF")


def test_double_confirm_creates_one_result(app, inst):
    """Case 33: two rapid confirm clicks leave one scored attempt."""
    _take(app, inst)
    app.confirm_button.click()
    _forge_click(app.confirm_button)
    rows = inst.records.attempts("e2001")
    assert len(rows) == 1 and rows[0].state == AttemptState.SCORED.value


def test_each_answer_is_saved_once_when_given(app, inst):
    """An answer change writes one revision to the database immediately."""
    app.start_button.click()
    qids = app.service.view(app.attempt_id).question_ids
    index = next(i for i, q in enumerate(qids) if inst.bank[q].type == "single_choice")
    app.go_to(index)
    _answer_current(app, inst)
    qid = qids[index]
    ans = inst.records.answers(app.attempt_id)[qid]
    assert ans.response is not None and ans.revision == 1


def test_forged_answer_after_submission_changes_nothing(app, inst):
    """A forged value change on a closed attempt is refused; the score stays."""
    app.start_button.click()
    radio_q = None
    for i in range(len(app.service.view(app.attempt_id).question_ids)):
        app.go_to(i)
        if app.service.question(app.attempt_id, i).type == "single_choice":
            radio_q = i
            break
    widget = app._answer_widget
    app.review_button.click()
    app.submit_button.click()
    app.confirm_button.click()
    before = app.service.report(app.attempt_id).score
    app.page = Page.QUESTION  # even if the app were fooled into the question page
    _forge_value(widget, index=0)
    assert app.service.report(app.attempt_id).score == before
    assert app.page is Page.RESULT


def test_forged_click_on_disabled_submit_after_time_limit(app, inst, clock):
    """A forged confirm after the time limit does not submit late: the attempt is expired."""
    app.start_button.click()
    app.review_button.click()
    app.submit_button.click()
    clock.advance(minutes=inst.blueprint.time_limit_minutes + 1)
    app.confirm_button.disabled = True
    _forge_click(app.confirm_button)
    row = inst.records.attempt(app.attempt_id)
    assert row.state == AttemptState.EXPIRED.value
    assert app.page is Page.RESULT


def test_forged_start_on_result_page_starts_nothing(app, inst):
    """A forged click on the hidden start button after the result does not open a new attempt."""
    _take(app, inst, right=False)
    _forge_click(app.start_button)
    assert len(inst.records.attempts("e2001")) == 1


def test_callback_error_shows_a_short_message_not_a_traceback(app, monkeypatch):
    """Case 29: an unexpected error in a callback becomes a short message in the page."""
    def boom(*a, **k):
        raise RuntimeError("secret internal detail")
    monkeypatch.setattr(app.service, "start_or_resume", boom)
    app.start_button.click()
    assert "出错了" in app.status.value
    assert "secret" not in app.status.value and "Traceback" not in app.status.value


def test_no_widget_state_carries_the_key_before_submission(app, inst):
    """No synced widget trait holds a correctness flag, a key or an explanation before submit."""
    app.start_button.click()
    secrets = set()
    for qid in app.service.view(app.attempt_id).question_ids:
        q = inst.bank[qid]
        if q.explanation:
            secrets.add(q.explanation.get("zh-CN"))
    for i in range(len(app.service.view(app.attempt_id).question_ids)):
        app.go_to(i)
        blob = "\n".join(str(m.get_state()) for m in widget_tree(app.root))
        assert "correct" not in blob.lower()
        assert not any(s in blob for s in secrets)


def test_untouched_ordering_is_unanswered_in_review(app, inst):
    """Case 12: an ordering question left untouched is listed as unanswered before submit."""
    from sopcoach.certification.exam import draw
    seed = next(s for s in range(1000)
                if any(inst.bank[q].type == "ordering" for q in draw(inst.bank, inst.blueprint, s).question_ids))
    app.service.start_or_resume("e2001", seed=seed)  # the attempt the app will resume
    app.start_button.click()
    view = app.service.view(app.attempt_id)
    idx = next(i for i, q in enumerate(view.question_ids) if inst.bank[q].type == "ordering")
    app.go_to(idx)
    app.review_button.click()
    labels = [c.description for c in app.body.children if hasattr(c, "description")]
    assert any(f"第 {idx + 1} 题" in l and "未答" in l for l in labels)


def test_no_bare_print_in_the_ui_package():
    """Case 29: no callback in sopcoach.ui prints; feedback goes to widgets, details to the log."""
    import ast
    import sopcoach.ui as ui_pkg
    from pathlib import Path
    offenders = []
    for f in Path(ui_pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{f.name}:{node.lineno}")
    assert offenders == []


def test_english_setting_shows_english(inst, clock):
    """SOPCOACH_LANG=en (or lang='en') shows the app in English."""
    a = ExamApp(inst, lang="en", clock=clock, start_timer=False)
    assert a.start_button.description == "Start the exam"
    assert "Certification" in a.title.value or "certification" in a.title.value.lower()


def test_jupyterhub_user_skips_sign_in(inst, monkeypatch):
    """Behind JupyterHub the Hub user is the learner: the exam view opens on the instructions page."""
    import importlib
    mod = importlib.import_module("sopcoach.ui.app")
    monkeypatch.setenv("JUPYTERHUB_USER", "hub-alice")
    monkeypatch.setattr(mod, "installation", lambda: inst)
    app = mod.build_learner_app()
    app.on_navigate("exam", "zh-CN")
    assert app.view.page is Page.INSTRUCTIONS
    assert any("hub-alice" in getattr(c, "value", "") for c in app.view.body.children)
    assert inst.records.learner("hub-alice") is not None


def test_jupyterhub_lowercased_user_is_the_enrolled_learner(inst, monkeypatch):
    """The Hub signs E3001 in as e3001: the page greets the enrolled learner by name and adds no learner."""
    import importlib
    mod = importlib.import_module("sopcoach.ui.app")
    inst.records.enroll("E3001", "张三", team="A")
    monkeypatch.setenv("JUPYTERHUB_USER", "e3001")
    monkeypatch.setattr(mod, "installation", lambda: inst)
    app = mod.build_learner_app()
    app.on_navigate("exam", "zh-CN")
    assert any("张三" in getattr(c, "value", "") for c in app.view.body.children)
    assert [x.id for x in inst.records.learners()] == ["E3001"]


def test_certified_learner_sees_validity_then_the_lapse(app, inst, clock):
    """After a pass the exam page names the certificate and its end date; a year and a day later it
    says the certificate expired and links the recertification exam (not "You are certified")."""
    _take(app, inst, right=True)

    def instructions_text() -> str:
        again = ExamApp(inst, lang="en", clock=clock, start_timer=False, learner_id="e2001")
        assert again.page is Page.INSTRUCTIONS
        return " ".join(getattr(c, "value", "") for c in again.body.children if isinstance(getattr(c, "value", None), str))

    text = instructions_text()
    assert "You are certified." in text and "valid until 2027-03-02" in text
    clock.advance(days=366)
    text = instructions_text()
    assert "expired on 2027-03-02" in text and "/learn/recertification" in text
    assert "You are certified" not in text


def test_next_question_keeps_the_page_frame(app, inst):
    """Moving to the next question replaces only the answer control; progress and buttons stay the same widgets."""
    app.start_button.click()
    frame = app.body.children
    first_answer = app._answer_widget
    app.next_button.click()
    assert app.body.children == frame
    assert app._answer_widget is not first_answer and first_answer.comm is None  # the old control is closed
    assert app.question_head.children[0] is app.progress and app.progress.value == 2


def test_a_database_error_shows_a_short_text_never_the_raw_error(app, inst):
    """An answer the database refuses for a reason other than a lock (here: its table is gone) is
    reported as not saved, in the learner's words; the database's own message stays in the log."""
    app.start_button.click()
    assert app.page is Page.QUESTION
    def lose_the_table():
        with inst.records.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE answers RENAME TO answers_gone")
    _answer_current(app, inst, before_answering=lose_the_table)
    shown = app.status.value
    assert "数据库出错，刚才的操作没有保存" in shown
    assert "已保存" not in shown and "answers" not in shown and "error" not in shown.lower()
    app.status.value = ""
    app.next_button.click()  # reads the answers too: the page's common guard words it the same way
    assert "数据库出错，刚才的操作没有保存" in app.status.value and "answers" not in app.status.value
