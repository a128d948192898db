"""The lessons in headless Chromium: land on the home page, walk through two lessons with their
practice, reload, and find the progress kept; the exam waits for the lessons."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from sopcoach.config import Installation, Settings
from sopcoach.lessons import LessonService
from sopcoach.playbook import load_playbook
from sopcoach.quizbank import load_bank, load_blueprint
from sopcoach.records import Records
from support import ROOT, correct_response

pytestmark = pytest.mark.e2e
CODE = "lesson-code-5678"
TIMEOUT = 90_000  # generous: CI has two cores and a server preheats a dozen kernels
LOAD = 180_000


@pytest.fixture
def lesson_server(voila_server, tmp_path):
    """Voila on the shipped learner notebooks with one enrolled learner; yield (base_url, inst)."""
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'sopcoach.db'}"
    pb = load_playbook(ROOT / "playbook")
    bank = load_bank(ROOT / "quizzes" / "bank", pb)
    inst = Installation(Settings(home, url, "zh-CN", ROOT), pb, bank,
                        load_blueprint(ROOT / "quizzes" / "blueprint.yaml", bank), Records(url))
    inst.records.enroll("e4001", "孙七", code=CODE)
    env = dict(os.environ, SOPCOACH_HOME=str(home), SOPCOACH_DB_URL=url, SOPCOACH_CONTENT=str(ROOT),
               SOPCOACH_LANG="zh-CN")
    base = voila_server(ROOT / "notebooks" / "learner", env, pool_size=1)
    yield base, inst
    inst.records.dispose()


def _wait_db(check, what: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not saved in time: {what}")


def _practise(page, inst, lesson_id: str) -> None:
    """Answer every practice question of the lesson right, through the page, and check each."""
    service = LessonService(inst)
    for q in service.questions(lesson_id):
        box = page.locator(f".sopcoach-practice-{q.id}")
        box.scroll_into_view_if_needed()
        resp = correct_response(q)
        if q.type == "single_choice":
            label = next(o.text.get("zh-CN") for o in q.options if o.id == resp)
            box.locator(".widget-radio-box label", has_text=label).first.click()
        elif q.type == "true_false":
            box.locator(".widget-radio-box label", has_text="正确" if resp else "错误").first.click()
        elif q.type == "multiple_choice":
            for oid in resp:
                label = next(o.text.get("zh-CN") for o in q.options if o.id == oid)
                box.locator(".widget-checkbox label", has_text=label).first.click()
        else:
            field = box.locator(".widget-text input").first
            field.fill(resp)
            field.press("Tab")
        box.locator(".sopcoach-check").click()
        box.locator(".sopcoach-feedback", has_text="回答正确").wait_for(timeout=TIMEOUT)
        _wait_db(lambda: q.id in ((inst.records.lesson_progress("e4001").get(lesson_id).practice or {})
                                  .get("answers", {})), f"{lesson_id}/{q.id}")


def test_learner_walks_two_lessons_and_progress_survives_a_reload(lesson_server, page, artifacts):
    """A learner lands on home, signs in once, completes lessons 3 and 4, reloads and sees it kept."""
    base, inst = lesson_server
    page.goto(base + "/", timeout=LOAD)
    page.locator(".sopcoach-ready").wait_for(state="visible", timeout=LOAD)
    assert "/voila/render/home.ipynb" in page.url
    page.screenshot(path=str(artifacts / "1-home-sign-in.png"), full_page=True)
    page.get_by_label("员工编号").fill("e4001")
    page.get_by_label("员工编号").press("Tab")
    page.get_by_label("访问码").fill(CODE)
    page.get_by_label("访问码").press("Tab")
    page.locator(".sopcoach-ready").click()
    page.locator(".sopcoach-home-ready").wait_for(timeout=TIMEOUT)
    assert page.locator(".sopcoach-lesson-row").count() == len(inst.playbook.lessons) == 9
    assert "完成全部课程后才能开始考试" in page.locator(".sopcoach-exam-card").inner_text()
    page.screenshot(path=str(artifacts / "2-home-signed-in.png"), full_page=True)

    # The sign-in put the session into the address: a reload keeps the learner signed in.
    page.wait_for_url(re.compile(r"home\.ipynb\?session="), timeout=TIMEOUT)
    page.reload(timeout=LOAD)
    page.locator(".sopcoach-home-ready").wait_for(timeout=LOAD)
    assert page.get_by_label("访问码").count() == 0

    # Lesson 3 through its link: no second sign-in (the link carries the session token).
    page.locator(".sopcoach-lesson-authority a").click()
    page.locator(".sopcoach-lesson-ready").wait_for(timeout=LOAD)
    assert "session=" in page.url
    _wait_db(lambda: "authority" in inst.records.lesson_progress("e4001"), "lesson opened")
    page.go_back(timeout=LOAD)  # Back to the home page: still signed in
    page.locator(".sopcoach-home-ready").wait_for(timeout=LOAD)
    page.go_forward(timeout=LOAD)
    page.locator(".sopcoach-lesson-ready").wait_for(timeout=LOAD)
    amount = page.locator(".sopcoach-amount input")
    amount.fill("100000.01")
    amount.press("Enter")
    page.locator(".sopcoach-approver[data-approver='sales_supervisor']").wait_for(timeout=TIMEOUT)
    page.locator(".sopcoach-tool").screenshot(path=str(artifacts / "3-approval-simulator.png"))
    _practise(page, inst, "authority")
    page.locator(".sopcoach-lesson-status", has_text="本课已完成").wait_for(timeout=TIMEOUT)
    page.locator(".sopcoach-lesson-status").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "4-lesson3-complete.png"))

    # Next lesson (4) through the footer link: the SLA calculator across the National Day holiday.
    page.locator(".sopcoach-next-link").last.click()
    page.locator(".sopcoach-lesson-ready").wait_for(timeout=LOAD)
    page.locator(".sopcoach-due", has_text="2025-10-09 10:00").wait_for(timeout=TIMEOUT)
    page.locator(".sopcoach-tool").screenshot(path=str(artifacts / "5-sla-calculator.png"))
    _practise(page, inst, "service_levels")
    page.locator(".sopcoach-lesson-status", has_text="本课已完成").wait_for(timeout=TIMEOUT)

    # Reload: a new kernel, the same learner (token in the URL), answers and completion kept.
    page.reload(timeout=LOAD)
    page.locator(".sopcoach-lesson-ready").wait_for(timeout=LOAD)
    page.locator(".sopcoach-lesson-status", has_text="本课已完成").wait_for(timeout=TIMEOUT)
    assert page.locator(".sopcoach-feedback", has_text="回答正确").count() == len(
        LessonService(inst).questions("service_levels"))
    page.locator(".sopcoach-lesson-status").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "6-lesson4-after-reload.png"))

    page.locator(".sopcoach-home-link").first.click()
    page.locator(".sopcoach-home-ready").wait_for(timeout=LOAD)
    home_text = page.locator(".sopcoach-home").inner_text()
    assert "已完成 2 / 9 课" in home_text
    for lid in ("authority", "service_levels"):
        assert "已完成" in page.locator(f".sopcoach-lesson-{lid}").inner_text()
    page.screenshot(path=str(artifacts / "7-home-progress.png"), full_page=True)
    done = {k for k, v in inst.records.lesson_progress("e4001").items() if v.completed_at is not None}
    assert done == {"authority", "service_levels"}

    # The exam page accepts the session and names the missing lessons instead of a start button.
    page.locator(".sopcoach-exam-link").click()
    page.locator(".sopcoach-lessons-missing").wait_for(timeout=LOAD)
    assert page.get_by_role("button", name="开始考试").count() == 0
    page.screenshot(path=str(artifacts / "8-exam-gated.png"), full_page=True)


def test_forged_session_token_falls_back_to_sign_in(lesson_server, page):
    """A lesson opened with a forged token shows the sign-in form and records nothing."""
    base, inst = lesson_server
    page.goto(f"{base}/voila/render/lesson_1_purpose.ipynb?session=ZTQwMDE.9999999999.forged", timeout=LOAD)
    page.locator(".sopcoach-ready").wait_for(state="visible", timeout=LOAD)
    assert page.get_by_label("访问码").count() == 1
    assert inst.records.lesson_progress("e4001") == {}
