"""The certification exam in headless Chromium against a real Voila server and database."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
import requests

from sopcoach.config import Installation, Settings
from sopcoach.playbook import load_playbook
from sopcoach.quizbank import load_bank, load_blueprint
from sopcoach.records import Records
from support import ROOT, complete_lessons, correct_response, wrong_response

pytestmark = pytest.mark.e2e
CODE = "test-code-1234"
TIMEOUT = 90_000  # generous: CI has two cores and a server preheats a dozen kernels


def _installation(content: Path, home: Path) -> Installation:
    pb = load_playbook(content / "playbook")
    bank = load_bank(content / "quizzes" / "bank", pb)
    bp = load_blueprint(content / "quizzes" / "blueprint.yaml", bank)
    url = f"sqlite:///{home / 'sopcoach.db'}"
    return Installation(Settings(home, url, "zh-CN", content), pb, bank, bp, Records(url))


def _env(content: Path, home: Path) -> dict:
    return dict(os.environ, SOPCOACH_HOME=str(home), SOPCOACH_DB_URL=f"sqlite:///{home / 'sopcoach.db'}",
                SOPCOACH_CONTENT=str(content), SOPCOACH_LANG="zh-CN")


@pytest.fixture
def exam_server(voila_server, tmp_path):
    """Start Voila on the shipped content with an empty database; return (base_url, installation)."""
    home = tmp_path / "home"
    home.mkdir()
    inst = _installation(ROOT, home)
    inst.records.enroll("e3001", "赵六", code=CODE)
    complete_lessons(inst, "e3001")  # the blueprint requires the lessons before the exam
    base = voila_server(ROOT / "notebooks" / "learner", _env(ROOT, home))
    yield base, inst
    inst.records.dispose()


def _open_exam(page, base: str) -> None:
    page.goto(f"{base}/voila/render/exam.ipynb", timeout=120_000)
    page.locator(".sopcoach-ready").wait_for(state="visible", timeout=120_000)


def _sign_in(page, learner: str = "e3001", code: str = CODE) -> None:
    page.get_by_label("员工编号").fill(learner)
    page.get_by_label("员工编号").press("Tab")
    page.get_by_label("访问码").fill(code)
    page.get_by_label("访问码").press("Tab")
    page.locator(".sopcoach-ready").click()
    page.get_by_text("考试时间").wait_for(timeout=TIMEOUT)


def _wait_saved(inst, attempt_id: int, qid: str, expect) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        ans = inst.records.answers(attempt_id).get(qid)
        if ans is not None and ans.response == expect:
            return
        time.sleep(0.1)
    raise AssertionError(f"answer to {qid} not saved as {expect!r}")


def _exact(label: str) -> "re.Pattern[str]":
    """Match a label's whole text ("5%" must not pick "15%")."""
    return re.compile(rf"^\s*{re.escape(label)}\s*$")


def _answer_in_browser(page, inst, attempt, index: int, response) -> None:
    """Give ``response`` to question ``index`` through the page's controls."""
    qid = attempt.question_ids[index]
    q = inst.bank[qid]
    if response is None:
        return
    labels = {o.id: o.text.get("zh-CN") for o in getattr(q, "options", []) or getattr(q, "blocks", [])}
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


def _take_exam(page, inst, learner: str, right: bool, artifacts: Path, tag: str) -> None:
    page.get_by_role("button", name="开始考试").click()
    page.get_by_text("第 1 题，共").wait_for(timeout=TIMEOUT)
    attempt = inst.records.attempts(learner)[-1]
    n = len(attempt.question_ids)
    for i in range(n):
        page.get_by_text(f"第 {i + 1} 题，共 {n} 题").wait_for(timeout=TIMEOUT)
        page.locator(f".sopcoach-q{i + 1}").wait_for(timeout=TIMEOUT)
        q = inst.bank[attempt.question_ids[i]]
        _answer_in_browser(page, inst, attempt, i, correct_response(q) if right else wrong_response(q))
        if i == 0:
            page.screenshot(path=str(artifacts / f"{tag}-question.png"), full_page=True)
        if i < n - 1:
            page.get_by_role("button", name="下一题").click()
    page.get_by_role("button", name="检查并提交").click()
    page.get_by_role("button", name="提交试卷").click()
    page.get_by_role("button", name="确认提交").click()
    page.get_by_text("考试结果").wait_for(timeout=TIMEOUT)


def test_new_hire_passes_in_the_browser(exam_server, page, artifacts):
    """A new hire signs in, answers everything right, sees PASS, and the database records it."""
    base, inst = exam_server
    _open_exam(page, base)
    page.screenshot(path=str(artifacts / "sign-in.png"), full_page=True)
    _sign_in(page)
    page.screenshot(path=str(artifacts / "instructions.png"), full_page=True)
    _take_exam(page, inst, "e3001", True, artifacts, "pass")
    page.get_by_text("通过 PASS").wait_for(timeout=TIMEOUT)
    assert "100.0%" in page.locator(".sopcoach-app").inner_text()
    page.screenshot(path=str(artifacts / "result-pass.png"), full_page=True)
    (row,) = inst.records.attempts("e3001")
    assert (row.state, row.passed, row.percent) == ("scored", True, "100.0")


def test_bad_answers_fail_in_the_browser(exam_server, page, artifacts):
    """A new hire who answers badly is shown FAIL with the clauses to re-read."""
    base, inst = exam_server
    _open_exam(page, base)
    _sign_in(page)
    _take_exam(page, inst, "e3001", False, artifacts, "fail")
    page.get_by_text("未通过 FAIL").wait_for(timeout=TIMEOUT)
    assert "请复习条款" in page.locator(".sopcoach-app").inner_text()
    page.screenshot(path=str(artifacts / "result-fail.png"), full_page=True)
    (row,) = inst.records.attempts("e3001")
    assert row.passed is False


def test_reload_mid_exam_resumes(exam_server, page, artifacts):
    """After answering three questions and reloading, the same attempt resumes with its answers,
    without a second sign-in."""
    base, inst = exam_server
    _open_exam(page, base)
    _sign_in(page)
    page.get_by_role("button", name="开始考试").click()
    page.get_by_text("第 1 题，共").wait_for(timeout=TIMEOUT)
    attempt = inst.records.attempts("e3001")[-1]
    n = len(attempt.question_ids)
    for i in range(3):
        q = inst.bank[attempt.question_ids[i]]
        _answer_in_browser(page, inst, attempt, i, correct_response(q))
        page.get_by_role("button", name="下一题").click()
        page.get_by_text(f"第 {i + 2} 题，共 {n} 题").wait_for(timeout=TIMEOUT)
    assert "session=" in page.url  # the sign-in put the session into the address
    page.reload(timeout=120_000)  # a new kernel: the learner is still signed in, and the attempt resumes
    page.get_by_role("button", name="继续考试").wait_for(timeout=120_000)
    assert page.get_by_label("访问码").count() == 0
    page.get_by_role("button", name="继续考试").click()
    page.get_by_text(f"第 4 题，共 {n} 题").wait_for(timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "resumed.png"), full_page=True)
    assert len(inst.records.attempts("e3001")) == 1
    assert len(inst.records.answers(attempt.id)) == 3
    page.get_by_role("button", name="上一题").click()
    page.get_by_text(f"第 3 题，共 {n} 题").wait_for(timeout=TIMEOUT)
    q3 = inst.bank[attempt.question_ids[2]]
    if q3.type in ("single_choice", "true_false"):
        checked = page.locator(".widget-radio-box input:checked")
        assert checked.count() == 1


def test_content_and_database_cannot_be_fetched(exam_server):
    """Files under quizzes/, playbook/ and the database are not served by the learner server."""
    base, inst = exam_server
    targets = ["quizzes/blueprint.yaml", "quizzes/bank/sales_process.yaml", "playbook/slas.yaml",
               "sopcoach.db", "exam.ipynb"]
    prefixes = ["/", "/files/", "/voila/files/", "/voila/static/", "/api/contents/", "/voila/tree/",
                "/voila/files/..%2F..%2F", "/files/..%2F..%2F", "/voila/render/..%2F..%2F"]
    for prefix in prefixes:
        for t in targets:
            r = requests.get(base + prefix + t, timeout=10)
            body = r.text
            assert not (r.status_code == 200 and ("questions:" in body or "exam:" in body
                                                   or "slas:" in body or "SQLite format" in body
                                                   or '"cells"' in body)), (prefix + t, r.status_code)
