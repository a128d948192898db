"""Serving a cohort: one kernel per learner, kernels reclaimed, a cap, and pages that stay readable.

Every test starts its own learner server (the ``learner_server`` fixture: pool of one preheated
kernel, ready once it runs) in a fresh ``SOPCOACH_HOME``, signs learners in through the real sign-in page in headless
Chromium, and counts kernels as the ``ipykernel`` child processes of that server.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import pytest
from learner_servers import LearnerServer
from support import (CHROMIUM, CHROMIUM_ARGS, NOT_LOOPBACK, ROOT, complete_lessons, correct_response,
                     installation_at, learner_env, poll)

from sopcoach.certification.exam import attempt_question, draw
from sopcoach.config import Installation
from sopcoach.i18n import shown
from sopcoach.content.playbook import load_playbook

pytestmark = pytest.mark.e2e

CODE = "known-code"
POOL = 1
#: Page loads on the shared two-core machine can be slow; these are upper bounds, not expectations.
LOAD_MS = 180_000
START_S = 120.0
#: The acceptance: the kernel of a closed page is stopped within 60 s.
CLOSED_PAGE_S = 60.0
#: The banner shows after 20 s without an answer; pings go every 5 s.
BANNER_MS = 40_000
#: How long a learner may arrive after a preheated kernel died (s).
REACTION_S = 15.0
LONG_QUESTION = "tc-allowed-uses"
LONG_OPTION = "b"  # quizzes/bank/tools_confidentiality.yaml, the option that used to end in "…"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright, shared by this module."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: run `make test`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # with scrollbars shown, as on a desktop: a box that scrolls sideways shows in the screenshots
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                                             ignore_default_args=["--hide-scrollbars"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def learner_contexts(chromium: Any) -> Iterator[Callable[..., Any]]:
    """Factory of browser contexts (one per learner) that may only reach loopback; closed after the test."""
    opened: list[Any] = []

    def new(locale: str = "zh-CN", width: int = 1280, height: int = 900) -> Any:
        context = chromium.new_context(viewport={"width": width, "height": height}, locale=locale)
        context.route(NOT_LOOPBACK, lambda route: route.abort())
        opened.append(context)
        return context

    try:
        yield new
    finally:
        for context in opened:
            with contextlib.suppress(Exception):  # already closed with its browser
                context.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """Folder ``test-artifacts/<test name>`` (below the rootdir) for screenshots."""
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    folder = Path(request.config.rootpath) / "test-artifacts" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- page helpers ---------------------------------------------------------------------------------

def sign_in(page: Any, served: LearnerServer, learner: str, path: str = "learn/") -> None:
    """Open ``path``, which leads to the sign-in page, and sign in (the server then sends the browser to ``path``)."""
    page.goto(served.base + path, timeout=LOAD_MS)
    page.locator("#learner_id").fill(learner)
    page.locator("#code").fill(CODE)
    page.locator("#sign-in").click()


def page_kernel(page: Any) -> str:
    """Return the id of the kernel serving ``page`` (from Voila's page config)."""
    return page.evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")


def home_ready(page: Any) -> None:
    page.locator(".sopcoach-home-ready").wait_for(state="visible", timeout=LOAD_MS)


def _playbook() -> Any:
    return load_playbook(ROOT / "playbook")


class Views:
    """Expected address, title and visible marker of each view of the learner page (Chinese)."""

    def __init__(self, base: str):
        pb = _playbook()
        self.base = base
        self.sop = pb.sop.name.get("zh-CN")
        self.lessons = {x.id: x for x in pb.lessons}

    def wait(self, page: Any, view: str) -> None:
        """Wait until ``view`` ('', 'lessons/<id>' or 'exam') is shown and in the address bar."""
        if view == "":
            title, marker = f"学习中心 · {self.sop}", page.locator(".sopcoach-home-ready")
        elif view == "exam":
            title = f"认证考试 · {self.sop}"
            marker = page.locator(".sopcoach-app h2", has_text="销售操作规程上岗认证考试")
        else:
            lesson = self.lessons[view.split("/", 1)[1]]
            title = f"{lesson.title.get('zh-CN')} · {self.sop}"
            marker = page.locator(".sopcoach-lesson-ready")
        page.wait_for_function("t => document.title === t", arg=title, timeout=LOAD_MS)
        marker.first.wait_for(state="visible", timeout=LOAD_MS)
        if view.startswith("lessons/"):
            lesson = self.lessons[view.split("/", 1)[1]]
            page.locator(".sopcoach-lesson h2", has_text=shown(lesson.title, "zh-CN")).wait_for(timeout=LOAD_MS)
        assert page.url == self.base + "learn/" + view, (page.url, view)


# -- one kernel per learner ----------------------------------------------------------------------

def test_moving_between_views_starts_no_kernel(learner_server, learner_contexts):
    """A learner going home -> 3 lessons -> exam -> home by links and Back/Forward keeps one kernel, and the address follows."""
    served = learner_server(learners={"e1001": "张三"}, code=CODE)
    views = Views(served.base)
    page = learner_contexts().new_page()
    sign_in(page, served, "e1001")
    views.wait(page, "")
    mine = page_kernel(page)
    # the pool refills after handing out its kernel: the learner's kernel plus one preheated
    poll(lambda: len(served.kernels()) == 1 + POOL and served.owned_by("e1001") == {mine}, START_S,
         "the pool is refilled")
    kernels, started = set(served.kernels()), served.kernels_started()

    def steady(where: str) -> None:
        assert set(served.kernels()) == kernels, f"kernels changed at {where}"
        assert served.kernels_started() == started, f"a kernel started at {where}"
        assert page_kernel(page) == mine

    page.locator(".sopcoach-lesson-purpose a.sopcoach-lesson-link").click()
    views.wait(page, "lessons/purpose")
    steady("lesson purpose")
    page.locator(".sopcoach-nav a.sopcoach-next-link").first.click()
    views.wait(page, "lessons/process")
    steady("lesson process")
    page.locator(".sopcoach-nav a.sopcoach-next-link").first.click()
    views.wait(page, "lessons/authority")
    steady("lesson authority")
    page.locator(".sopcoach-nav a.sopcoach-home-link").first.click()
    views.wait(page, "")
    page.locator("a.sopcoach-exam-link").first.click()
    views.wait(page, "exam")
    steady("exam")
    page.locator("a.sopcoach-home-link").first.click()
    views.wait(page, "")
    steady("home")
    for view in ("exam", "", "lessons/authority", "lessons/process"):
        page.go_back(timeout=LOAD_MS)
        views.wait(page, view)
        steady(f"Back to {view or 'home'}")
    for view in ("lessons/authority", ""):
        page.go_forward(timeout=LOAD_MS)
        views.wait(page, view)
        steady(f"Forward to {view or 'home'}")


def test_reload_returns_to_the_same_view(learner_server, learner_contexts):
    """Reloading the page on a lesson view shows that lesson again at the same address."""
    served = learner_server(learners={"e1002": "李四"}, code=CODE)
    views = Views(served.base)
    page = learner_contexts().new_page()
    sign_in(page, served, "e1002")
    views.wait(page, "")
    page.locator(".sopcoach-lesson-process a.sopcoach-lesson-link").click()
    views.wait(page, "lessons/process")
    page.reload(timeout=LOAD_MS)
    views.wait(page, "lessons/process")
    page.locator(".sopcoach-topbar a.sopcoach-home-top").click()  # and the reloaded page still switches views
    views.wait(page, "")


@pytest.mark.parametrize("how", ["second tab", "reload"])
def test_opening_the_page_again_stops_the_previous_kernel(learner_server, learner_contexts, how):
    """When a learner opens the page again (second tab or reload), the previous page's kernel stops: one kernel per learner."""
    served = learner_server(learners={"e1003": "王五"}, code=CODE)
    context = learner_contexts()
    first = context.new_page()
    sign_in(first, served, "e1003")
    home_ready(first)
    old = page_kernel(first)
    if how == "second tab":
        page = context.new_page()
        page.goto(served.base + "learn/", timeout=LOAD_MS)
    else:
        page = first
        page.reload(timeout=LOAD_MS)
    home_ready(page)
    new = page_kernel(page)
    assert new != old
    poll(lambda: old not in served.kernels(), 30, f"the previous page's kernel {old} stops")
    assert served.owned_by("e1003") == {new}
    assert f"learner e1003 opened a new page; stopping kernel {old}" in served.log()
    if how == "second tab":  # the first tab is told why it stopped, and where to go on
        banner = first.locator("#sopcoach-connection-lost")
        banner.wait_for(state="visible", timeout=BANNER_MS)
        assert "另一个窗口或标签页" in banner.inner_text()


# -- kernels of closed pages ---------------------------------------------------------------------

def test_kernel_of_a_closed_page_stops(learner_server, learner_contexts):
    """Closing a learner's page stops its kernel within 60 s."""
    served = learner_server(learners={"e1004": "赵六"}, code=CODE)
    page = learner_contexts().new_page()
    sign_in(page, served, "e1004")
    home_ready(page)
    kid = page_kernel(page)
    assert kid in served.kernels()
    closed = time.monotonic()
    page.close(run_before_unload=True)
    poll(lambda: kid not in served.kernels(), CLOSED_PAGE_S, f"kernel {kid} of the closed page stops")
    print(f"closed page's kernel stopped after {time.monotonic() - closed:.1f} s")
    assert served.owned_by("e1004") == set()


#: The page sends its shutdown beacon with navigator.sendBeacon on beforeunload; Chromium does not
#: pass that request through Playwright's routing, so the page itself drops it.
DROP_SHUTDOWN_BEACON = """
(() => {
  const send = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => String(url).includes('/voila/api/shutdown/') ? true : send(url, data);
})();
"""


def test_kernel_of_a_closed_page_stops_without_the_beacon(learner_server, learner_contexts):
    """With the page's shutdown beacon blocked, the culler still stops a closed page's kernel within 60 s."""
    served = learner_server(learners={"e1005": "孙七"}, code=CODE)
    context = learner_contexts()
    context.route(re.compile(r"/voila/api/shutdown/"), lambda route: route.abort())
    context.add_init_script(DROP_SHUTDOWN_BEACON)
    page = context.new_page()
    sign_in(page, served, "e1005")
    home_ready(page)
    kid = page_kernel(page)
    closed = time.monotonic()
    page.close(run_before_unload=True)
    poll(lambda: kid not in served.kernels(), CLOSED_PAGE_S, f"the culler stops kernel {kid} of the closed page")
    print(f"culler stopped the closed page's kernel after {time.monotonic() - closed:.1f} s")
    assert re.search(rf"Culling .*{kid}", served.log()), "the kernel was not stopped by the culler"
    assert served.owned_by("e1005") == set()


def test_kernels_stay_within_open_pages_plus_pool(learner_server, learner_contexts):
    """After four learners have each opened and reloaded their page, kernels alive are at most four plus the pool."""
    learners = {f"e20{i:02d}": f"学员{i}" for i in range(1, 5)}
    served = learner_server(learners=learners, code=CODE)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], len(served.kernels()))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    pages = {}
    try:
        for learner in learners:
            page = learner_contexts().new_page()
            sign_in(page, served, learner)
            home_ready(page)
            page.reload(timeout=LOAD_MS)
            home_ready(page)
            pages[learner] = page
        current = {learner: page_kernel(page) for learner, page in pages.items()}
        poll(lambda: len(served.kernels()) <= len(learners) + POOL, CLOSED_PAGE_S,
             f"kernels alive <= {len(learners)} open pages + {POOL} preheated (alive: {len(served.kernels())})")
    finally:
        stop.set()
        sampler.join()
    print(f"peak kernels while 4 learners opened and reloaded: {peak[0]}")
    for learner, kid in current.items():
        assert served.owned_by(learner) == {kid}
    assert len(served.unbound()) <= POOL


# -- the cap -------------------------------------------------------------------------------------

def test_past_the_cap_a_newcomer_is_told_to_come_back(learner_server, learner_contexts, shots):
    """With max_pages=2 a third learner gets the 503 busy page at once, and gets in once a page closes."""
    served = learner_server(learners={"e3001": "甲", "e3002": "乙", "e3003": "丙"}, code=CODE, max_pages=2)
    first = {}
    for learner in ("e3001", "e3002"):
        page = learner_contexts().new_page()
        sign_in(page, served, learner)
        home_ready(page)
        first[learner] = page
    page = learner_contexts().new_page()
    page.goto(served.base + "learn/", timeout=LOAD_MS)
    page.locator("#learner_id").fill("e3003")
    page.locator("#code").fill(CODE)
    with page.expect_response(lambda r: urlparse(r.url).path == "/learn/", timeout=30_000) as answer:
        page.locator("#sign-in").click()
    assert answer.value.status == 503
    busy = page.locator("h1#sopcoach-busy")
    busy.wait_for(state="visible", timeout=10_000)
    assert "一分钟后再试" in page.locator("body").inner_text()
    page.screenshot(path=str(shots / "busy-zh.png"), full_page=True)
    english = page.goto(served.base + "learn/?lang=en", timeout=30_000)
    assert english.status == 503
    assert "try again in a minute" in page.locator("body").inner_text()
    assert served.owned_by("e3003") == set()

    first["e3001"].close(run_before_unload=True)

    def gets_in() -> bool:
        response = page.goto(served.base + "learn/", timeout=LOAD_MS)
        return response.status == 200

    poll(gets_in, CLOSED_PAGE_S + 20, "the third learner gets in after a page closed", every=2.0)
    home_ready(page)
    assert len(served.owned_by("e3003")) == 1


# -- dead preheated kernels ----------------------------------------------------------------------

def _settled(pid: int) -> Callable[[], bool]:
    """Return a check that is true once process ``pid`` has used no CPU since the previous check."""
    last = [-1.0]

    def check() -> bool:
        times = psutil.Process(pid).cpu_times()
        used = times.user + times.system
        quiet = used == last[0]
        last[0] = used
        return quiet
    return check


@pytest.mark.parametrize("when", ["while it renders the page", "once it is warm"])
def test_a_dead_preheated_kernel_is_never_handed_out(learner_server, learner_contexts, when):
    """After the preheated kernel is killed, a learner signing in still gets a working page."""
    served = learner_server(learners={"e4001": "周八"}, code=CODE)
    (pooled, pid), = served.kernels().items()
    if when == "once it is warm":  # the notebook has run: the kernel has gone quiet
        poll(_settled(pid), START_S, "the preheated kernel has run the page and is idle", every=1.0)
    os.kill(pid, signal.SIGKILL)
    poll(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 10,
         "the preheated kernel is dead")
    # The learner arrives once the server has reacted to the death (jupyter_client's restarter looks
    # every 3 s). A server that reacts only when a page is asked for shows nothing here: then the
    # learner arrives after REACTION_S, as any learner may.
    reacted = re.compile(rf"restarting kernel|dropped a dead preheated kernel|Kernel shutdown: {pooled}")
    deadline = time.monotonic() + REACTION_S
    while not reacted.search(served.log()) and time.monotonic() < deadline:
        time.sleep(0.25)
    page = learner_contexts().new_page()
    sign_in(page, served, "e4001")
    views = Views(served.base)
    views.wait(page, "")
    page.locator(".sopcoach-lesson-purpose a.sopcoach-lesson-link").click()  # the kernel answers
    views.wait(page, "lessons/purpose")
    assert page.locator("#sopcoach-connection-lost").count() == 0 or page.locator("#sopcoach-connection-lost").is_hidden()


# -- lost connection -----------------------------------------------------------------------------

@pytest.mark.parametrize("lost, lang", [("server stopped", "zh-CN"), ("kernel killed", "en")])
def test_a_lost_connection_shows_a_banner(learner_server, learner_contexts, shots, lost, lang):
    """When the server stops or the page's kernel dies, a banner in the page's language says saved answers are safe and to reload."""
    served = learner_server(learners={"e5001": "吴九"}, code=CODE)
    page = learner_contexts(locale=lang).new_page()
    sign_in(page, served, "e5001", path="learn/" + ("?lang=en" if lang == "en" else ""))
    home_ready(page)
    banner = page.locator("#sopcoach-connection-lost")
    assert banner.count() == 0 or banner.is_hidden()
    if lost == "server stopped":
        served.proc.send_signal(signal.SIGTERM)
    else:
        kid = page_kernel(page)
        os.kill(served.kernels()[kid], signal.SIGKILL)
    banner.wait_for(state="visible", timeout=BANNER_MS)
    text = banner.inner_text()
    page.screenshot(path=str(shots / f"banner-{lang}.png"), full_page=True)
    assert banner.get_attribute("role") == "alert"
    if lang == "en":
        assert "safely stored" in text and "reload" in text.lower()
    else:
        assert "已安全保存" in text and "重新加载" in text
        assert not re.search(r"[A-Za-z]{4,}", text)
    assert page.evaluate("() => document.body.classList.contains('sopcoach-offline')")


# -- every option and stem in full ---------------------------------------------------------------

CUT_CHECK = """
(el) => {
  // What keeps `el` from showing in full: an ellipsis or hidden overflow in effect in it, or a box
  // around it (up to the app) that hides part of it or scrolls sideways (text wider than its frame).
  const name = (e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`;
  const cut = [];
  for (const e of [el, ...el.querySelectorAll('*')]) {
    const cs = getComputedStyle(e);
    if (cs.display === 'none') continue;
    if (e.scrollWidth > e.clientWidth + 1 && (cs.textOverflow === 'ellipsis' || cs.overflowX !== 'visible')) {
      cut.push(`${name(e)}: ${e.scrollWidth} px of text in ${e.clientWidth} px (${cs.textOverflow}, overflow ${cs.overflowX})`);
    }
  }
  const r = el.getBoundingClientRect();
  for (let a = el.parentElement; a && !a.classList.contains('sopcoach-learner-app'); a = a.parentElement) {
    const cs = getComputedStyle(a);
    if (cs.overflowX === 'visible') continue;
    const frame = a.getBoundingClientRect();
    const inner = frame.left + a.clientLeft;
    if (r.left < inner - 1 || r.right > inner + a.clientWidth + 1) cut.push(`hidden in part by ${name(a)}`);
    if (a.scrollWidth > a.clientWidth + 1) {
      cut.push(`${name(a)} around it scrolls sideways: ${a.scrollWidth} px in ${a.clientWidth} px (overflow ${cs.overflowX})`);
    }
  }
  // a choice's box or button comes before its text
  let control_first = null;
  const input = el.querySelector('input[type=radio], input[type=checkbox]');
  if (input) {
    const range = document.createRange();
    range.selectNodeContents(el);
    const texts = [...range.getClientRects()].filter((t) => t.width > 0 && !(t.left >= input.getBoundingClientRect().left - 0.5 && t.right <= input.getBoundingClientRect().right + 0.5));
    const textLeft = Math.min(...texts.map((t) => t.left));
    control_first = input.getBoundingClientRect().right <= textLeft + 1;
  }
  return { text: el.innerText.replace(/\\s+/g, ' ').trim(), cut, left: r.left, right: r.right,
           width: window.innerWidth, control_first };
}
"""


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _not_in_full(page: Any, number: int, question: Any, lang: str) -> list[str]:
    """Return what keeps the stem or a choice of the shown question ``number`` from showing in full."""
    problems: list[str] = []

    def look(handle: Any, what: str) -> str:
        seen = handle.evaluate(CUT_CHECK)
        text = seen["text"]
        if seen["cut"]:
            problems.append(f"{what} {text!r} is cut: {seen['cut']}")
        if seen["left"] < 0 or seen["right"] > seen["width"] + 1:
            problems.append(f"{what} {text!r} runs off the {seen['width']} px page: {seen['left']:.0f}..{seen['right']:.0f}")
        if seen["control_first"] is False:
            problems.append(f"{what} {text!r}: its box or button comes after the text")
        return text

    stem = _norm(shown(question.text, lang))
    stems = [h for h in page.locator(".sopcoach-app p > b").element_handles() if _norm(h.inner_text()) == stem]
    if len(stems) != 1:
        problems.append(f"the stem {stem!r} is not shown whole as one element ({len(stems)} found)")
    else:
        look(stems[0], "stem")
    if getattr(question, "scenario", None):
        look(page.locator(".sopcoach-scenario").first.element_handle(), "scenario")
    labels = page.locator(f".sopcoach-q{number} .widget-radio-box label, "
                          f".sopcoach-q{number} .widget-checkbox label.widget-label-basic")
    seen = {look(labels.nth(i), "choice") for i in range(labels.count())}
    if question.type in ("single_choice", "multiple_choice"):
        options = {_norm(shown(o.text, lang)) for o in question.options}
        if seen != options:
            problems.append(f"choices shown {sorted(seen)} are not the options {sorted(options)}")
    return problems


def _attempt(home: Path, learner: str, question_first: str | None = None) -> tuple[Installation, list[str]]:
    """Enroll ``learner`` with the lessons done and start an attempt; return it and its question ids.

    With ``question_first``, the draw includes that question and every other question is answered,
    so that resuming the exam opens on it.
    """
    inst = installation_at(ROOT, home)
    inst.records.enroll(learner, "郑十", code=CODE)
    complete_lessons(inst, learner)
    seed = 0
    if question_first:
        seed = next(s for s in range(100_000) if question_first in draw(inst.bank, inst.blueprint, s).question_ids)
    service = inst.exam_service()
    aid = service.start_or_resume(learner, seed=seed)
    qids = inst.records.attempt(aid).question_ids
    if question_first:
        for qid in qids:
            if qid != question_first:
                service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
    return inst, qids


def _resume(page: Any, served: LearnerServer, learner: str, lang: str) -> None:
    """Sign in on the exam view, switch to ``lang`` and resume the attempt."""
    sign_in(page, served, learner, path="learn/exam")
    if lang == "en":
        page.locator(".sopcoach-topbar a.sopcoach-lang").click()
        page.wait_for_url(re.compile(r"/learn/exam\?lang=en$"), timeout=LOAD_MS)
    page.get_by_role("button", name="继续考试" if lang == "zh-CN" else "Resume the exam").click(timeout=LOAD_MS)


@pytest.mark.parametrize("width, height", [(1366, 900), (360, 740)])
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_long_option_shows_in_full(learner_server, learner_contexts, shots, tmp_path, lang, width, height):
    """The stem and every option of the long multiple-choice question show in full, wrapped, with nothing scrolling sideways."""
    home = tmp_path / "exam-home"
    home.mkdir()
    inst, qids = _attempt(home, "e6001", question_first=LONG_QUESTION)
    question, number = inst.bank[LONG_QUESTION], qids.index(LONG_QUESTION) + 1
    inst.records.dispose()
    served = learner_server(env=learner_env(ROOT, home))
    page = learner_contexts(locale=lang, width=width, height=height).new_page()
    _resume(page, served, "e6001", lang)
    page.locator(f".sopcoach-q{number} .widget-checkbox").first.wait_for(state="visible", timeout=LOAD_MS)
    page.screenshot(path=str(shots / f"long-option-{lang}-{width}.png"), full_page=True)
    long_option = _norm(shown(next(o for o in question.options if o.id == LONG_OPTION).text, lang))
    labels = page.locator(f".sopcoach-q{number} .widget-checkbox label.widget-label-basic")
    assert long_option in {_norm(t) for t in labels.all_inner_texts()}
    assert _not_in_full(page, number, question, lang) == []


@pytest.mark.parametrize("width, height", [(1366, 900), (360, 740)])
def test_every_question_shows_its_stem_and_choices_in_full(learner_server, learner_contexts, shots, tmp_path,
                                                           width, height):
    """Walking a whole attempt, every stem and choice shows in full with its box or button before the text."""
    home = tmp_path / "exam-home"
    home.mkdir()
    inst, qids = _attempt(home, "e6002")
    served = learner_server(env=learner_env(ROOT, home))
    page = learner_contexts(width=width, height=height).new_page()
    _resume(page, served, "e6002", "zh-CN")
    problems: list[str] = []
    for number, qid in enumerate(qids, 1):
        page.get_by_text(f"第 {number} 题，共 {len(qids)} 题").wait_for(timeout=LOAD_MS)
        page.locator(f".sopcoach-q{number}").wait_for(state="visible", timeout=LOAD_MS)
        question = attempt_question(inst.bank, inst.records.attempts("e6002")[-1], qid)
        found = _not_in_full(page, number, question, "zh-CN")
        if found:
            page.screenshot(path=str(shots / f"q{number}-{question.type}-{width}.png"), full_page=True)
        problems += [f"question {number} ({qid}, {question.type}): {p}" for p in found]
        if number < len(qids):
            page.get_by_role("button", name="下一题").click()
    inst.records.dispose()
    assert problems == []
