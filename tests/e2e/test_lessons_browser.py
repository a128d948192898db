"""The lessons in headless Chromium: sign in at the door, land on the home view, walk through two
lessons with their practice inside the one learner page, reload, and find the progress kept; the
exam waits for the lessons.
"""
from __future__ import annotations

import re
import time

import pytest

from sopcoach.lessons.progress import LessonService
from sopcoach.i18n import shown
from support import (LEARNER_ROOT, PAGE_LOAD_MS, ROOT, SESSION_COOKIE, correct_response, installation_at,
                     learner_env, sign_in_browser)

pytestmark = pytest.mark.e2e
CODE = "lesson-code-5678"
TIMEOUT = 90_000  # generous: CI has two cores
LOAD = PAGE_LOAD_MS
#: Set on the page's window; still there after a view switch, gone after a page load.
SAME_PAGE = "window.__sopcoachSamePage === true"


@pytest.fixture
def lesson_server(learner_server, tmp_path):
    """The learner server on the shipped content with one enrolled learner; yield (base_url, inst)."""
    home = tmp_path / "home"
    home.mkdir()
    inst = installation_at(ROOT, home)
    inst.records.enroll("e4001", "孙七", code=CODE)
    base = learner_server(LEARNER_ROOT, learner_env(ROOT, home)).base
    yield base, inst
    inst.records.dispose()


def _wait_db(check, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not saved in time: {what}")


def answer_practice(page, q, timeout: float = TIMEOUT, inst=None, lesson_id: str | None = None) -> None:
    """Answer practice question ``q`` right through the page (zh-CN labels), check it, and wait for "correct".

    A template's numbers live in the page's kernel only: it is answered once (first option, or 0),
    then right on the variant the stored answer names (the same numbers stay on the page).
    """
    box = page.locator(f".sopcoach-practice-{q.id}")
    box.scroll_into_view_if_needed(timeout=timeout)
    if q.variant is not None:
        if q.type == "single_choice":
            box.locator(".widget-radio-box label").first.click()
        else:
            box.locator(".widget-text input").first.fill("0")
            box.locator(".widget-text input").first.press("Tab")
        box.locator(".sopcoach-check").click()

        def stored():
            return ((inst.records.lesson_progress("e4001").get(lesson_id).practice or {}).get("answers", {})
                    .get(q.id))
        _wait_db(lambda: stored() is not None, f"{lesson_id}/{q.id} (first try)")
        if stored()["credit"] == "1":
            box.locator(".sopcoach-feedback", has_text="回答正确").wait_for(timeout=timeout)
            return
        q, _ = LessonService(inst).variant(q.id, stored()["params"])
    resp = correct_response(q)
    if q.type == "single_choice":
        label = next(shown(o.text, "zh-CN") for o in q.options if o.id == resp)
        box.locator(".widget-radio-box label", has_text=label).first.click()
    elif q.type == "true_false":
        box.locator(".widget-radio-box label", has_text="正确" if resp else "错误").first.click()
    elif q.type == "multiple_choice":
        for oid in resp:
            label = next(shown(o.text, "zh-CN") for o in q.options if o.id == oid)
            box.locator(".widget-checkbox label", has_text=label).first.click()
    else:
        field = box.locator(".widget-text input").first
        field.fill(str(resp))
        field.press("Tab")
    box.locator(".sopcoach-check").click()
    box.locator(".sopcoach-feedback", has_text="回答正确").wait_for(timeout=timeout)


def _practise(page, inst, lesson_id: str) -> None:
    """Answer every practice question of the lesson right, through the page, and check each."""
    service = LessonService(inst)
    for q in service.questions(lesson_id):
        answer_practice(page, q, inst=inst, lesson_id=lesson_id)
        _wait_db(lambda: q.id in ((inst.records.lesson_progress("e4001").get(lesson_id).practice or {})
                                  .get("answers", {})), f"{lesson_id}/{q.id}")


def _lesson_view(page, inst, lesson_id: str) -> None:
    """Wait until the page shows lesson ``lesson_id`` (its address, title and content)."""
    lesson = next(x for x in inst.playbook.lessons if x.id == lesson_id)
    page.wait_for_url(re.compile(rf"/learn/lessons/{re.escape(lesson_id)}$"), timeout=TIMEOUT)
    page.locator(".sopcoach-lesson h2", has_text=shown(lesson.title, "zh-CN")).wait_for(timeout=LOAD)
    page.locator(".sopcoach-lesson-ready").wait_for(timeout=LOAD)


def _home_view(page, base: str) -> None:
    page.wait_for_url(f"{base}learn/", timeout=TIMEOUT)
    page.locator(".sopcoach-home-ready").wait_for(timeout=LOAD)


def test_learner_walks_two_lessons_and_progress_survives_a_reload(lesson_server, page, learner_server, artifacts):
    """A learner signs in once, completes lessons 3 and 4 by in-app links, reloads and sees it kept."""
    base, inst = lesson_server
    sign_in_browser(page, base, "e4001", CODE, "",
                    before_submit=lambda p: p.screenshot(path=str(artifacts / "1-sign-in.png"), full_page=True))
    assert page.url == f"{base}learn/"  # the address names the view and carries no session
    assert page.locator(".sopcoach-lesson-row").count() == len(inst.playbook.lessons) == 10
    assert "完成全部课程后才能开始考试" in page.locator(".sopcoach-exam-card").inner_text()
    page.screenshot(path=str(artifacts / "2-home-signed-in.png"), full_page=True)

    # The session cookie keeps the learner signed in across a reload (a new page and kernel).
    page.reload(timeout=LOAD)
    _home_view(page, base)
    assert page.locator("#learner_id").count() == 0

    # Lesson 3 through its link: the view switches inside the same page (no page load, no kernel).
    page.evaluate("window.__sopcoachSamePage = true")
    page.locator(".sopcoach-lesson-authority a").click()
    _lesson_view(page, inst, "authority")
    assert page.evaluate(SAME_PAGE)
    _wait_db(lambda: "authority" in inst.records.lesson_progress("e4001"), "lesson opened")
    page.go_back(timeout=LOAD)  # Back returns to the home view, still in the same page
    _home_view(page, base)
    page.go_forward(timeout=LOAD)
    _lesson_view(page, inst, "authority")
    assert page.evaluate(SAME_PAGE)
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
    _lesson_view(page, inst, "service_levels")
    assert page.evaluate(SAME_PAGE)
    page.locator(".sopcoach-due", has_text="2025-10-09 10:00").wait_for(timeout=TIMEOUT)
    page.locator(".sopcoach-tool").screenshot(path=str(artifacts / "5-sla-calculator.png"))
    _practise(page, inst, "service_levels")
    page.locator(".sopcoach-lesson-status", has_text="本课已完成").wait_for(timeout=TIMEOUT)

    # Reload: a new kernel, the same learner (session cookie), the same view, answers and completion kept.
    page.reload(timeout=LOAD)
    _lesson_view(page, inst, "service_levels")
    page.locator(".sopcoach-lesson-status", has_text="本课已完成").wait_for(timeout=TIMEOUT)
    assert page.locator(".sopcoach-feedback", has_text="回答正确").count() == len(
        LessonService(inst).questions("service_levels"))
    page.locator(".sopcoach-lesson-status").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "6-lesson4-after-reload.png"))
    # Pages opened: the first, then one per reload, each replacing the previous one; the four view
    # switches (link, Back, Forward, next link) opened none.
    assert len(re.findall(r"learner e4001 opened a new page", learner_server.started[0].log())) == 2

    page.locator(".sopcoach-home-link").first.click()
    _home_view(page, base)
    home_text = page.locator(".sopcoach-home").inner_text()
    assert "已完成 2 / 10 课" in home_text
    for lid in ("authority", "service_levels"):
        assert "已完成" in page.locator(f".sopcoach-lesson-{lid}").inner_text()
    page.screenshot(path=str(artifacts / "7-home-progress.png"), full_page=True)
    done = {k for k, v in inst.records.lesson_progress("e4001").items() if v.completed_at is not None}
    assert done == {"authority", "service_levels"}

    # The exam view names the missing lessons instead of offering a start button.
    page.locator(".sopcoach-exam-link").click()
    page.wait_for_url(f"{base}learn/exam", timeout=TIMEOUT)
    page.locator(".sopcoach-lessons-missing").wait_for(timeout=LOAD)
    assert page.get_by_role("button", name="开始考试").count() == 0
    page.screenshot(path=str(artifacts / "8-exam-gated.png"), full_page=True)


def test_language_link_switches_the_view_to_english_and_a_reload_keeps_it(lesson_server, page, artifacts):
    """The top bar's English link shows the same view in English at ?lang=en, and a reload keeps it."""
    base, inst = lesson_server
    sign_in_browser(page, base, "e4001", CODE, "lessons/purpose")
    lesson = next(x for x in inst.playbook.lessons if x.id == "purpose")
    page.evaluate("window.__sopcoachSamePage = true")
    page.locator(".sopcoach-topbar a.sopcoach-lang").click()
    page.wait_for_url(f"{base}learn/lessons/purpose?lang=en", timeout=TIMEOUT)
    page.locator(".sopcoach-lesson h2", has_text=lesson.title.get("en")).wait_for(timeout=LOAD)
    assert page.evaluate(SAME_PAGE)
    assert "Sign out" in page.locator(".sopcoach-topbar").inner_text()
    page.reload(timeout=LOAD)
    page.locator(".sopcoach-lesson h2", has_text=lesson.title.get("en")).wait_for(timeout=LOAD)
    assert page.url == f"{base}learn/lessons/purpose?lang=en"
    page.screenshot(path=str(artifacts / "lesson-in-english.png"), full_page=True)
    page.locator(".sopcoach-topbar a.sopcoach-lang", has_text="中文").click()
    page.wait_for_url(f"{base}learn/lessons/purpose", timeout=TIMEOUT)
    page.locator(".sopcoach-lesson h2", has_text=shown(lesson.title, "zh-CN")).wait_for(timeout=LOAD)


def test_forged_session_cookie_falls_back_to_sign_in(lesson_server, page):
    """A lesson opened with a forged session cookie or an old ?session= token shows the sign-in page
    and records nothing."""
    base, inst = lesson_server
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": "2|1:0|10:1700000000|16:sopcoach-session|8:Zm9yZ2Vk|"
                                                                  + "0" * 64, "url": base}])
    page.goto(f"{base}learn/lessons/purpose?session=ZTQwMDE.9999999999.forged", timeout=LOAD)
    page.locator("#learner_id").wait_for(timeout=LOAD)
    assert page.url.startswith(f"{base}login?")
    assert page.locator("#code").count() == 1
    assert page.locator(".sopcoach-lesson-ready").count() == 0
    assert inst.records.lesson_progress("e4001") == {}


def test_a_decimal_in_a_whole_number_box_is_refused_next_to_it(lesson_server, page, artifacts):
    """2.5 typed into the employees box reaches the kernel as 2.5 (not 25) and is refused next to the box."""
    base, _inst = lesson_server
    sign_in_browser(page, base, "e4001", CODE, "lessons/customers")
    page.locator(".sopcoach-tier[data-tier='A']").wait_for(timeout=TIMEOUT)
    box = page.locator(".sopcoach-employees input")
    box.fill("2.5")
    box.press("Enter")
    page.locator(".sopcoach-box-refusal", has_text="请输入整数（收到 2.5），未据此计算。").wait_for(timeout=TIMEOUT)
    assert page.locator(".sopcoach-tier").count() == 0
    page.locator(".sopcoach-tool").screenshot(path=str(artifacts / "whole-number-refusal.png"))
