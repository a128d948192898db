"""Nothing the browser receives before submission tells right from wrong; forged messages change nothing.

The learner signs in at the learner server's door and takes the exam at ``/learn/exam``; forged
widget messages are sent on the page's own kernel websocket (:mod:`wire`).
"""
from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from sopcoach.records.models import Attempt, to_db, utcnow
from sopcoach.i18n import shown
from support import LEARNER_ROOT, ROOT, complete_lessons, correct_response, installation_at, learner_env
from test_exam_browser import CODE, TIMEOUT, _open_exam
from wire import (KEEP_SOCKETS, Traffic, click_data, comm_messages_from_kernel, forge, normalise,
                  normalised_messages, update_data)

pytestmark = pytest.mark.e2e
SEED = 424242


def _content(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(ROOT / "playbook", root / "playbook")
    shutil.copytree(ROOT / "quizzes", root / "quizzes")
    return root


def _change_keys(bank_dir: Path) -> int:
    """Change every hand-written key of the bank (derived keys and templates' keys follow the playbook);
    return how many."""
    yaml = YAML()
    yaml.preserve_quotes = True
    changed = 0
    for f in sorted(bank_dir.glob("*.yaml")):
        data = yaml.load(f)
        for q in data["questions"]:
            t = q["type"]
            if "variant" in q:  # a template's key is computed from the playbook, like a derived key
                continue
            if t == "true_false":
                q["answer"] = str(q["answer"]).lower() not in ("true", "yes")
            elif t == "single_choice" and "key_from" not in q:
                opts = q["options"]
                i = next(k for k, o in enumerate(opts) if str(o.get("correct")).lower() in ("true", "yes"))
                del opts[i]["correct"]
                opts[(i + 1) % len(opts)]["correct"] = True
            elif t == "multiple_choice":
                for o in q["options"]:
                    o["correct"] = str(o.get("correct", False)).lower() not in ("true", "yes")
            elif t == "numeric" and "answer" in q:
                q["answer"] = str(q["answer"]) + "1"
            elif t == "ordering":
                q["items"] = list(reversed(list(q["items"])))
            else:
                continue
            changed += 1
        with f.open("w", encoding="utf-8") as fh:
            yaml.dump(data, fh)
    return changed


def _wait_db(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not in the database in time: {what}")


def _wait_answers(inst, attempt_id: int, count: int) -> None:
    _wait_db(lambda: sum(a.response is not None for a in inst.records.answers(attempt_id).values()) >= count,
             f"{count} saved answers")


def _walk(page, inst, attempt_id: int, n: int, dom: list[str]) -> None:
    """Visit every question, answer with the first control shown, flag question 2, open the review."""
    for i in range(n):
        page.get_by_text(f"第 {i + 1} 题，共 {n} 题").wait_for(timeout=TIMEOUT)
        app = page.locator(f".sopcoach-q{i + 1}")
        app.wait_for(timeout=TIMEOUT)
        if app.locator(".widget-radio-box input").count():
            app.locator(".widget-radio-box input").first.click()
        elif app.locator(".widget-checkbox input").count():
            app.locator(".widget-checkbox input").first.click()
        elif app.locator(".widget-text input").count():
            box = app.locator(".widget-text input").first
            box.fill("1")
            box.press("Enter")
        elif app.locator("select").count():
            app.locator("select").first.select_option(index=1)
        _wait_answers(inst, attempt_id, i + 1)
        page.locator(".sopcoach-msg-info", has_text="已保存").wait_for(timeout=TIMEOUT)
        if i == 1:
            page.get_by_role("button", name="标记待复查").click()
            qid = inst.records.attempt(attempt_id).question_ids[1]
            _wait_db(lambda: inst.records.answers(attempt_id)[qid].flagged, "question 2 flagged")
        dom.append(normalise(page.locator(".sopcoach-learner-app").inner_text()))
        if i < n - 1:
            page.get_by_role("button", name="下一题").click()
    page.get_by_role("button", name="检查并提交").click()
    page.get_by_text("检查答卷").wait_for(timeout=TIMEOUT)
    dom.append(normalise(page.locator(".sopcoach-learner-app").inner_text()))


def _run(learner_server, contexts, tmp_path, name: str, content: Path) -> tuple[set, set, list, object]:
    home = tmp_path / f"home-{name}"
    home.mkdir()
    inst = installation_at(content, home)
    inst.records.enroll("e4001", "钱七", code=CODE)
    aid = inst.exam_service().start_or_resume("e4001", seed=SEED)
    server = learner_server(LEARNER_ROOT, learner_env(content, home))
    base = server.base
    context = contexts.new()
    page = context.new_page()
    traffic = Traffic(page)  # from the sign-in page on: everything the browser receives
    dom: list[str] = []
    _open_exam(page, base, "e4001")
    page.get_by_role("button", name="继续考试").click()
    _walk(page, inst, aid, len(inst.records.attempt(aid).question_ids), dom)
    context.close()
    server.stop()  # one server at a time on two cores
    bodies = {normalise(b) for b in traffic.bodies}
    return normalised_messages(traffic), bodies, dom, inst


def test_pre_submission_traffic_is_identical_for_different_keys(learner_server, contexts, tmp_path, artifacts):
    """The same seeded attempt against two banks that differ only in keys sends the same bytes."""
    a = _content(tmp_path, "a")
    b = _content(tmp_path, "b")
    assert _change_keys(b / "quizzes" / "bank") > 40
    msgs_a, bodies_a, dom_a, inst_a = _run(learner_server, contexts, tmp_path, "a", a)
    msgs_b, bodies_b, dom_b, inst_b = _run(learner_server, contexts, tmp_path, "b", b)
    # the two banks really do differ in the keys of the drawn questions
    qids = inst_a.records.attempts("e4001")[0].question_ids
    assert qids == inst_b.records.attempts("e4001")[0].question_ids
    differ = [q for q in qids if inst_a.bank[q].model_dump() != inst_b.bank[q].model_dump()]
    assert len(differ) >= 10
    (artifacts / "traffic-a.txt").write_text("\n".join(sorted(msgs_a)), encoding="utf-8")
    (artifacts / "traffic-b.txt").write_text("\n".join(sorted(msgs_b)), encoding="utf-8")
    assert dom_a == dom_b
    assert bodies_a == bodies_b
    assert msgs_a == msgs_b
    # and nothing received carries an explanation of a drawn question
    blob = "\n".join(msgs_a | bodies_a)
    for q in qids:
        exp = inst_a.bank[q].explanation
        if exp:
            for text in (exp.zh_CN, exp.en, shown(exp, "zh-CN"), shown(exp, "en")):  # as written and as pages show text
                assert text not in blob


def _signed_in_page(learner_server, contexts, tmp_path, prepare=None):
    """Sign learner e5001 (lessons complete) in and open the exam, keeping the page's websockets
    at hand for forging; ``prepare(inst)`` runs before the server starts. Return (inst, page, traffic)."""
    home = tmp_path / "home"
    home.mkdir()
    inst = installation_at(ROOT, home)
    inst.records.enroll("e5001", "孙八", code=CODE)
    complete_lessons(inst, "e5001")  # the blueprint requires the lessons before the exam
    if prepare is not None:
        prepare(inst)
    base = learner_server(LEARNER_ROOT, learner_env(ROOT, home)).base
    page = contexts.new().new_page()
    page.add_init_script(KEEP_SOCKETS)
    traffic = Traffic(page)
    _open_exam(page, base, "e5001")
    return inst, page, traffic


def _model_id(models: dict, description: str) -> str:
    return next(mid for mid, st in models.items() if st.get("description") == description)


def test_forged_messages_cannot_submit_twice_or_answer_late(learner_server, contexts, tmp_path, artifacts):
    """After submission, forged clicks and value updates neither add an attempt nor change the score."""
    inst, page, traffic = _signed_in_page(learner_server, contexts, tmp_path)
    models = comm_messages_from_kernel(traffic)
    page.get_by_role("button", name="开始考试").click()
    page.get_by_text("第 1 题，共").wait_for(timeout=TIMEOUT)
    # positive control: a forged click does reach the kernel while the attempt is open
    forge(page, traffic.session_id(), _model_id(models, "下一题"), click_data())
    page.get_by_text("第 2 题，共").wait_for(timeout=TIMEOUT)
    page.get_by_role("button", name="检查并提交").click()
    page.get_by_role("button", name="提交试卷").click()
    page.get_by_role("button", name="确认提交").click()
    page.get_by_text("考试结果").wait_for(timeout=TIMEOUT)
    (row,) = inst.records.attempts("e5001")
    before = (row.state, row.score_num, row.score_den, row.closed_at)
    session = traffic.session_id()
    confirm = _model_id(models, "确认提交")
    start = _model_id(models, "开始考试")
    radios = [cid for cid, st in comm_messages_from_kernel(traffic).items()
              if st.get("_model_name") == "RadioButtonsModel"]
    for _ in range(3):
        forge(page, session, confirm, click_data())
        forge(page, session, start, click_data())
    for cid in radios:
        forge(page, session, cid, update_data(index=0))
    # Barrier: the kernel handles one websocket's messages in order, so once the in-app link that
    # follows them has switched the view, every forged message has been handled.
    page.locator(".sopcoach-topbar .sopcoach-home-top").click()
    page.locator(".sopcoach-home-ready").wait_for(timeout=TIMEOUT)
    rows = inst.records.attempts("e5001")
    assert len(rows) == 1
    assert (rows[0].state, rows[0].score_num, rows[0].score_den, rows[0].closed_at) == before
    assert all(a.response is None for a in inst.records.answers(rows[0].id).values())
    page.screenshot(path=str(artifacts / "after-forged.png"), full_page=True)
    assert "Traceback" not in page.content()


def test_forged_submit_after_the_time_limit_is_refused(learner_server, contexts, tmp_path):
    """A forged confirm after the deadline does not submit: the attempt is closed as expired."""
    inst, page, traffic = _signed_in_page(learner_server, contexts, tmp_path)
    models = comm_messages_from_kernel(traffic)
    page.get_by_role("button", name="开始考试").click()
    page.get_by_text("第 1 题，共").wait_for(timeout=TIMEOUT)
    (row,) = inst.records.attempts("e5001")
    with inst.records.session() as s:  # the time limit passes (server-side clock)
        s.get(Attempt, row.id).deadline_at = to_db(utcnow() - timedelta(seconds=5))
    forge(page, traffic.session_id(), _model_id(models, "确认提交"), click_data())
    deadline = time.monotonic() + 60
    while inst.records.attempt(row.id).state == "started" and time.monotonic() < deadline:
        time.sleep(0.2)
    row = inst.records.attempt(row.id)
    assert row.state == "expired"


def _certify(inst) -> None:
    """Let e5001 pass the certification exam (through the service, as an earlier visit would)."""
    service = inst.exam_service()
    aid = service.start_or_resume("e5001")
    for qid in inst.records.attempt(aid).question_ids:
        service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
    service.submit(aid)
    assert inst.records.attempt(aid).passed


def test_forged_start_by_a_certified_learner_is_refused(learner_server, contexts, tmp_path, artifacts):
    """A learner who passed sees no start button, and a forged click on it starts no second attempt."""
    inst, page, traffic = _signed_in_page(learner_server, contexts, tmp_path, prepare=_certify)
    page.get_by_text("您已通过认证").first.wait_for(timeout=TIMEOUT)
    assert page.get_by_role("button", name="开始考试").count() == 0
    models = comm_messages_from_kernel(traffic)
    forge(page, traffic.session_id(), _model_id(models, "开始考试"), click_data())
    # the forged click reached the kernel and the service refused it (AlreadyCertified)
    page.get_by_text("您已通过认证，不能再次参加认证考试。").wait_for(timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "forged-start-refused.png"), full_page=True)
    (row,) = inst.records.attempts("e5001")
    assert row.passed and row.state == "scored"
    assert page.get_by_text("第 1 题，共").count() == 0


def test_malformed_widget_messages_send_no_traceback_and_the_page_works_on(learner_server, contexts, tmp_path):
    """Malformed messages to the page's widgets (a state failing validation, a state that is no
    mapping, no method, an unknown comm) bring no error, traceback or install path to the browser;
    the page then starts the exam as usual."""
    inst, page, traffic = _signed_in_page(learner_server, contexts, tmp_path)
    models = comm_messages_from_kernel(traffic)
    # an HTML widget of the page (the front end echoes an update back, so not the start button)
    session = traffic.session_id()
    html = next(mid for mid, st in models.items() if st.get("_model_name") == "HTMLModel")
    for comm_id, data in [(html, update_data(value=["not", "text"])), (html, update_data(layout="IPY_MODEL_nosuch")),
                          (html, {"method": "update", "state": "not a mapping", "buffer_paths": []}),
                          (html, {"no method": 1}), (html, {"method": "no such method"}),
                          ("0" * 32, click_data())]:
        forge(page, session, comm_id, data)
    # Barrier: the kernel handles one websocket's messages in order, so once the click that follows
    # them has started the exam, every malformed message has been handled.
    page.get_by_role("button", name="开始考试").click()
    page.get_by_text("第 1 题，共").wait_for(timeout=TIMEOUT)
    received = traffic.messages()
    assert not [m for m in received if m["header"].get("msg_type") == "error"]
    text = repr([m["content"] for m in received])
    assert "Traceback" not in text and "site-packages" not in text and "sopcoach/" not in text
    assert not [m for m in received if m["header"].get("msg_type") == "stream" and m["content"].get("name") == "stderr"]
    assert "Traceback" not in page.content()
    assert len(inst.records.attempts("e5001")) == 1
