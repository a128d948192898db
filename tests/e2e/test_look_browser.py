"""The sopcoach look in headless Chromium: the learner pages on a desktop and on a 360 px phone, and by keyboard.

One learner server (module scope) with the company's name and colours set; each test signs in its
own learner (an exam may be sat once a day). Screenshots of home, a lesson, the exam and the result
page at 1366x900 and 360x740 go to ``test-artifacts/<test>/``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from learner_servers import LearnerServer, LearnerServers
from support import PAGE_LOAD_MS, complete_lessons, installation_at, learner_env, ROOT, sign_in_browser

pytestmark = pytest.mark.e2e
CODE = "look-code-1234"
COMPANY = ("示例销售有限公司", "Example Sales Co.")
PRIMARY = "#7a1f5c"
WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 360, "height": 740}}
LEARNERS = {"k1": "甲一", "k2": "乙二", "k3": "丙三"}
NON_BLANK = re.compile(r"\S")


@pytest.fixture(scope="module")
def look_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LearnerServer]:
    """A learner server showing :data:`COMPANY` in :data:`PRIMARY`; its learners have done every lesson."""
    folder = tmp_path_factory.mktemp("look")
    home = folder / "home"
    home.mkdir()
    inst = installation_at(ROOT, home)
    for learner, name in LEARNERS.items():
        inst.records.enroll(learner, name, code=CODE)
        complete_lessons(inst, learner)  # the blueprint requires the lessons before the exam
    inst.records.dispose()
    env = {**learner_env(ROOT, home), "SOPCOACH_COMPANY": COMPANY[0], "SOPCOACH_COMPANY_EN": COMPANY[1],
           "SOPCOACH_PRIMARY_COLOR": PRIMARY}
    with LearnerServers(folder) as servers:
        yield servers(env=env)


def _check_page(page, width: int, lang: str = "zh-CN") -> None:
    """One <title>, <html lang>, the company's header bar, and no sideways scrolling at ``width``."""
    from playwright.sync_api import expect
    assert page.locator("title").count() == 1
    assert page.evaluate("document.documentElement.lang") == lang
    header = page.locator("header.sopcoach-header")
    expect(header.locator(".sopcoach-company:visible")).to_have_text(COMPANY[1] if lang == "en" else COMPANY[0])
    assert header.evaluate("h => getComputedStyle(h).backgroundColor") == "rgb(122, 31, 92)"  # PRIMARY
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    # controls wrap: none sticks out past the right edge (a wide table scrolls in its own box)
    outside = page.evaluate("""w => [...document.querySelectorAll('button, input, select, textarea, a[href]')]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > w + 1
                     && !e.closest('.widget-html-content'))
        .map(e => e.outerHTML.slice(0, 80))""", width)
    assert outside == []


def _shot(page, artifacts, name: str, viewport: dict) -> None:
    page.screenshot(path=str(artifacts / f"{name}-{viewport['width']}x{viewport['height']}.png"), full_page=True)


@pytest.mark.parametrize("device,learner", [("desktop", "k1"), ("phone", "k2")])
def test_learner_pages_in_the_company_look(look_server, contexts, artifacts, device: str, learner: str) -> None:
    """Home, a lesson, the exam and its result: the company's header, one title in the page's language,
    no sideways scrolling at 360 px, nothing asked from outside the server; a screenshot of each."""
    from playwright.sync_api import expect
    viewport = WIDTHS[device]
    width = viewport["width"]
    page = contexts.new(viewport=viewport).new_page()

    def at_the_door(door) -> None:
        """The sign-in page wears the company's header too."""
        expect(door.locator(".sopcoach-header")).to_have_text(COMPANY[0])
        assert door.evaluate("document.scrollingElement.scrollWidth") <= width
        _shot(door, artifacts, "sign-in", viewport)

    sign_in_browser(page, look_server.base, learner, CODE, before_submit=at_the_door)

    expect(page).to_have_title(re.compile(r"^学习中心 · "))
    _check_page(page, width)
    _shot(page, artifacts, "home", viewport)

    page.locator("a[data-view][href$='lessons/process']").first.click()
    page.locator(".sopcoach-lesson-ready").wait_for(timeout=PAGE_LOAD_MS)
    expect(page).to_have_title(re.compile("销售流程"))
    _check_page(page, width)
    _shot(page, artifacts, "lesson", viewport)

    page.goto(look_server.url("learn/lessons/process?lang=en"), timeout=PAGE_LOAD_MS)
    page.locator(".sopcoach-lesson-ready").wait_for(timeout=PAGE_LOAD_MS)
    expect(page).to_have_title(re.compile("^The sales process"))
    _check_page(page, width, "en")
    _shot(page, artifacts, "lesson-en", viewport)

    page.goto(look_server.url("learn/exam"), timeout=PAGE_LOAD_MS)
    page.get_by_role("button", name="开始考试").click()
    page.locator(".sopcoach-q1").wait_for(timeout=PAGE_LOAD_MS)
    expect(page).to_have_title(re.compile("认证考试"))
    _check_page(page, width)
    _shot(page, artifacts, "exam", viewport)

    page.get_by_role("button", name="检查并提交").click()
    page.get_by_role("button", name="提交试卷").click()
    page.get_by_role("button", name="确认提交").click()
    page.get_by_text("考试结果").wait_for(timeout=PAGE_LOAD_MS)
    _check_page(page, width)
    _shot(page, artifacts, "result", viewport)
    assert contexts.blocked == []


def _focused(page) -> dict:
    """Where the keyboard is: the focused element's tag, box, outline, and a handle to compare stops."""
    return page.evaluate("""() => { const e = document.activeElement, r = e.getBoundingClientRect(),
        s = getComputedStyle(e);
        if (!e.dataset.stop) e.dataset.stop = String(Math.random());
        return {tag: e.tagName, kind: e.tagName + (e.type ? ':' + e.type : ''), stop: e.dataset.stop, top: r.top + window.scrollY, left: r.left,
                outline: s.outlineStyle, width: parseFloat(s.outlineWidth), html: e.outerHTML.slice(0, 120)}; }""")


def _tab_through(page) -> list[dict]:
    """Press Tab from the top of the page until the keyboard comes back to the first stop; return the stops.

    Each stop has a non-empty accessible name and a visible outline, and the stops run down the page.
    """
    from playwright.sync_api import expect
    page.locator("header.sopcoach-header").click()  # Tab starts from the top of the page
    stops: list[dict] = []
    for _ in range(300):
        page.keyboard.press("Tab")
        here = _focused(page)
        if here["tag"] == "BODY":  # past the last control: the browser's own stop
            continue
        if stops and here["stop"] == stops[0]["stop"]:
            break
        expect(page.locator(":focus")).to_have_accessible_name(NON_BLANK)
        assert here["outline"] != "none" and here["width"] >= 2, f"no visible focus outline on {here['html']}"
        if stops:
            assert here["top"] >= stops[-1]["top"] - 4, f"{here['html']} comes after {stops[-1]['html']} but is above it"
        stops.append(here)
    else:
        pytest.fail("the keyboard never came back to the first control")
    return stops


def test_home_and_every_lesson_by_keyboard(look_server, contexts) -> None:
    """Every link and control of home and of every lesson (practice questions, hands-on tools) is reached by
    Tab in reading order, has a name a screen reader says, and shows where the keyboard is."""
    from sopcoach.content.playbook import load_playbook
    page = contexts.new(viewport=WIDTHS["phone"]).new_page()
    sign_in_browser(page, look_server.base, "k3", CODE)
    lessons = [lesson.id for lesson in load_playbook(ROOT / "playbook").lessons]
    assert len(lessons) >= 10
    for view in ["", *(f"lessons/{lesson}" for lesson in lessons)]:
        if view:
            page.goto(look_server.url(f"learn/{view}"), timeout=PAGE_LOAD_MS)
            page.locator(".sopcoach-lesson-ready").wait_for(timeout=PAGE_LOAD_MS)
        stops = _tab_through(page)
        kinds = {s["kind"] for s in stops}
        assert "A" in kinds and (not view or "BUTTON:submit" in kinds), (view, kinds)
    assert contexts.blocked == []


def test_exam_by_keyboard_with_names_for_screen_readers(look_server, contexts, artifacts) -> None:
    """Every control of the exam page, on every question, is reached by Tab in reading order, has a name a
    screen reader says, and shows where the keyboard is; the exam is started and walked by keyboard."""
    from playwright.sync_api import expect
    page = contexts.new(viewport=WIDTHS["phone"]).new_page()
    sign_in_browser(page, look_server.base, "k3", CODE, "exam")
    start = page.get_by_role("button", name="开始考试")
    start.wait_for(timeout=PAGE_LOAD_MS)
    stops = _tab_through(page)
    assert any(s["tag"] == "BUTTON" for s in stops)
    start.focus()
    page.keyboard.press("Enter")
    seen: set[str] = set()
    visited = 0
    for number in range(1, 31):
        visited = number
        question = page.locator(f".sopcoach-q{number}")
        question.wait_for(timeout=PAGE_LOAD_MS)
        stops = _tab_through(page)
        seen |= {s["kind"] for s in stops}
        if number == 1:
            page.screenshot(path=str(artifacts / "exam-keyboard-360x740.png"), full_page=True)
        forward = page.get_by_role("button", name="下一题")
        if number == 30 or forward.is_disabled():
            break
        forward.focus()
        page.keyboard.press("Enter")
        expect(page.locator(f".sopcoach-q{number + 1}")).to_be_visible(timeout=PAGE_LOAD_MS)
    assert visited == 30
    assert {"INPUT:radio", "A", "BUTTON:submit"} <= seen, seen
    assert contexts.blocked == []
