"""The certification exam in headless Chromium against a real learner server and database.

The learner signs in at the server's door (its sign-in page) and takes the exam at ``/learn/exam``,
a view of the one learner page.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from sopcoach.certification.exam import attempt_question
from sopcoach.i18n import shown
from support import (LEARNER_ROOT, PAGE_LOAD_MS, ROOT, complete_lessons, correct_response, installation_at,
                     learner_env, sign_in_browser, sign_in_session, wrong_response)

pytestmark = pytest.mark.e2e
CODE = "test-code-1234"
TIMEOUT = 90_000  # generous: CI has two cores
LOAD = PAGE_LOAD_MS


@pytest.fixture
def exam_server(learner_server, tmp_path):
    """Start the learner server on the shipped content with an empty database; yield (base_url, installation)."""
    home = tmp_path / "home"
    home.mkdir()
    inst = installation_at(ROOT, home)
    inst.records.enroll("e3001", "赵六", code=CODE)
    complete_lessons(inst, "e3001")  # the blueprint requires the lessons before the exam
    base = learner_server(LEARNER_ROOT, learner_env(ROOT, home)).base
    yield base, inst
    inst.records.dispose()


def _open_exam(page, base: str, learner: str = "e3001", code: str = CODE, before_submit=None) -> None:
    """Open ``/learn/exam``, sign in at the door and wait for the exam's instructions."""
    sign_in_browser(page, base, learner, code, "exam", before_submit=before_submit, timeout=LOAD)
    page.get_by_text("考试时间").wait_for(timeout=LOAD)


def _wait_saved(inst, attempt_id: int, qid: str, expect) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ans = inst.records.answers(attempt_id).get(qid)
        if ans is not None and ans.response == expect:
            return
        time.sleep(0.1)
    raise AssertionError(f"answer to {qid} not saved as {expect!r}")


def _exact(label: str) -> re.Pattern[str]:
    """Match a label's whole text ("5%" must not pick "15%")."""
    return re.compile(rf"^\s*{re.escape(label)}\s*$")


def _answer_in_browser(page, inst, attempt, index: int, response) -> None:
    """Give ``response`` to question ``index`` through the page's controls."""
    qid = attempt.question_ids[index]
    q = attempt_question(inst.bank, attempt, qid)
    if response is None:
        return
    labels = {o.id: shown(o.text, "zh-CN") for o in getattr(q, "options", []) or getattr(q, "blocks", [])}
    app = page.locator(f".sopcoach-q{index + 1}")
    app.wait_for(timeout=TIMEOUT)
    if q.type == "single_choice":
        app.locator(".widget-radio-box label").filter(has_text=_exact(labels[response])).first.click()
    elif q.type == "true_false":
        app.locator(".widget-radio-box label", has_text="正确" if response else "错误").first.click()
    elif q.type == "multiple_choice":
        for oid in response:
            app.locator(".widget-checkbox label").filter(has_text=_exact(labels[oid])).first.click()
    elif q.type == "numeric":
        box = app.locator(".widget-text input").first
        box.fill(str(response))
        box.press("Enter")
    elif q.type == "ordering":
        selects = app.locator("select")
        for pos, oid in enumerate(response):
            selects.nth(pos).select_option(label=labels[oid])
    stored = response if q.type != "multiple_choice" else sorted(response)
    _wait_saved(inst, attempt.id, qid, stored)


def _shown_response(page, q, index: int):
    """Read the response the page's controls show for question ``index`` (as the database stores it)."""
    box = page.locator(f".sopcoach-q{index + 1}")
    box.wait_for(timeout=TIMEOUT)
    by_label = {shown(o.text, "zh-CN").strip(): o.id for o in getattr(q, "options", []) or getattr(q, "blocks", [])}
    if q.type in ("single_choice", "true_false"):
        checked = box.locator(".widget-radio-box label").filter(has=page.locator("input:checked"))
        if checked.count() != 1:
            return None
        text = checked.inner_text().strip()
        return (text == "正确") if q.type == "true_false" else by_label.get(text)
    if q.type == "multiple_choice":
        boxes = box.locator(".widget-checkbox")
        return sorted(by_label.get(boxes.nth(k).inner_text().strip()) for k in range(boxes.count())
                      if boxes.nth(k).locator("input").is_checked())
    if q.type == "numeric":
        return box.locator(".widget-text input").first.input_value().strip() or None
    if q.type == "ordering":
        picked = [s.evaluate("s => s.options[s.selectedIndex] ? s.options[s.selectedIndex].text : ''").strip()
                  for s in box.locator("select").all()]
        return [by_label[t] for t in picked if t in by_label]
    raise TypeError(q.type)


def _wait_shown(page, q, index: int, expect) -> None:
    """Wait until question ``index`` shows ``expect`` in its controls."""
    deadline = time.monotonic() + TIMEOUT / 1000
    shown = None
    while time.monotonic() < deadline:
        shown = _shown_response(page, q, index)
        if shown == expect:
            return
        time.sleep(0.2)
    raise AssertionError(f"question {index + 1} ({q.id}) shows {shown!r}, saved {expect!r}")


def _take_exam(page, inst, learner: str, right: bool, artifacts: Path, tag: str) -> None:
    page.get_by_role("button", name="开始考试").click()
    page.get_by_text("第 1 题，共").wait_for(timeout=TIMEOUT)
    attempt = inst.records.attempts(learner)[-1]
    n = len(attempt.question_ids)
    for i in range(n):
        page.get_by_text(f"第 {i + 1} 题，共 {n} 题").wait_for(timeout=TIMEOUT)
        page.locator(f".sopcoach-q{i + 1}").wait_for(timeout=TIMEOUT)
        q = attempt_question(inst.bank, attempt, attempt.question_ids[i])
        _answer_in_browser(page, inst, attempt, i, correct_response(q) if right else wrong_response(q))
        if i == 0:
            page.screenshot(path=str(artifacts / f"{tag}-question.png"), full_page=True)
        if i < n - 1:
            page.get_by_role("button", name="下一题").click()
    page.get_by_role("button", name="检查并提交").click()
    page.get_by_role("button", name="提交试卷").click()
    page.get_by_role("button", name="确认提交").click()
    page.get_by_text("考试结果").wait_for(timeout=TIMEOUT)


def _app_text(page) -> str:
    return page.locator(".sopcoach-learner-app").inner_text()


def test_new_hire_passes_in_the_browser(exam_server, page, artifacts):
    """A new hire signs in at the door, answers everything right, sees PASS, and the database records it."""
    base, inst = exam_server
    _open_exam(page, base, before_submit=lambda p: p.screenshot(path=str(artifacts / "sign-in.png"), full_page=True))
    assert page.url == f"{base}learn/exam"
    page.screenshot(path=str(artifacts / "instructions.png"), full_page=True)
    _take_exam(page, inst, "e3001", True, artifacts, "pass")
    page.locator(".sopcoach-pass", has_text="通过").wait_for(timeout=TIMEOUT)
    text = _app_text(page)
    assert "100.0%" in text and "PASS" not in text and "有效期至" in text
    pdf = page.locator(".sopcoach-cert-pdf a.download")
    assert pdf.get_attribute("href").startswith("data:application/pdf;base64,JVBER")  # %PDF
    page.screenshot(path=str(artifacts / "result-pass.png"), full_page=True)
    (row,) = inst.records.attempts("e3001")
    assert (row.state, row.passed, row.percent) == ("scored", True, "100.0")


def test_bad_answers_fail_in_the_browser(exam_server, page, artifacts):
    """A new hire who answers badly is shown FAIL with the clauses to re-read."""
    base, inst = exam_server
    _open_exam(page, base)
    _take_exam(page, inst, "e3001", False, artifacts, "fail")
    page.locator(".sopcoach-fail", has_text="未通过").wait_for(timeout=TIMEOUT)
    text = _app_text(page)
    assert "请复习条款" in text and "FAIL" not in text
    assert "剩余 2 次" in text and "下次考试开放时间" in text and "北京时间" in text
    page.screenshot(path=str(artifacts / "result-fail.png"), full_page=True)
    (row,) = inst.records.attempts("e3001")
    assert row.passed is False


def test_reload_mid_exam_resumes(exam_server, page, artifacts):
    """After answering three questions and reloading, the same attempt resumes at the same address
    with its answers, without a second sign-in."""
    base, inst = exam_server
    _open_exam(page, base)
    page.get_by_role("button", name="开始考试").click()
    page.get_by_text("第 1 题，共").wait_for(timeout=TIMEOUT)
    attempt = inst.records.attempts("e3001")[-1]
    n = len(attempt.question_ids)
    for i in range(3):
        q = attempt_question(inst.bank, attempt, attempt.question_ids[i])
        _answer_in_browser(page, inst, attempt, i, correct_response(q))
        page.get_by_role("button", name="下一题").click()
        page.get_by_text(f"第 {i + 2} 题，共 {n} 题").wait_for(timeout=TIMEOUT)
    assert page.url == f"{base}learn/exam"  # the address names the view, and carries no session
    page.reload(timeout=LOAD)  # a new page and kernel: the session cookie keeps the learner signed in
    page.get_by_role("button", name="继续考试").wait_for(timeout=LOAD)
    assert page.url == f"{base}learn/exam"
    assert page.locator("#learner_id").count() == 0
    page.get_by_role("button", name="继续考试").click()
    page.get_by_text(f"第 4 题，共 {n} 题").wait_for(timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "resumed.png"), full_page=True)
    assert len(inst.records.attempts("e3001")) == 1
    assert inst.records.attempts("e3001")[0].question_ids == attempt.question_ids
    saved = inst.records.answers(attempt.id)
    assert len(saved) == 3
    # Back through the answered questions: each is the same question, showing the answer given.
    service = inst.exam_service()
    for i in (2, 1, 0):
        page.get_by_role("button", name="上一题").click()
        page.get_by_text(f"第 {i + 1} 题，共 {n} 题").wait_for(timeout=TIMEOUT)
        view = service.question(attempt.id, i, "zh-CN")
        assert view.question_id == attempt.question_ids[i]
        page.locator(".sopcoach-learner-app p > b", has_text=shown(view.text, "zh-CN")).first.wait_for(timeout=TIMEOUT)
        _wait_shown(page, attempt_question(inst.bank, attempt, view.question_id), i, saved[view.question_id].response)


def test_content_and_database_cannot_be_fetched(exam_server):
    """Files under quizzes/, playbook/, the notebook and the database are not served, signed in or not."""
    base, inst = exam_server
    targets = ["quizzes/blueprint.yaml", "quizzes/bank/sales_process.yaml", "playbook/slas.yaml",
               "sopcoach.db", "app.ipynb"]
    prefixes = ["", "files/", "voila/files/", "voila/static/", "api/contents/", "voila/tree/",
                "voila/render/", "voila/files/..%2F..%2F", "files/..%2F..%2F", "voila/render/..%2F..%2F",
                "voila/static/..%2F..%2F..%2F..%2F"]

    def leaks(r: requests.Response) -> bool:
        body = r.text
        return r.status_code == 200 and ("questions:" in body or "exam:" in body or "slas:" in body
                                         or "SQLite format" in body or '"cells"' in body)

    signed_in = sign_in_session(base, "e3001", CODE)
    for client in (requests.Session(), signed_in):
        for prefix in prefixes:
            for t in targets:
                r = client.get(base + prefix + t, timeout=30)
                assert not leaks(r), (prefix + t, r.status_code)
    # An address below /learn/ is a view of the app, never a file.
    r = signed_in.get(base + "learn/quizzes/blueprint.yaml", timeout=120)
    assert r.status_code == 200 and "application/vnd.jupyter.widget-view+json" in r.text and not leaks(r)
