"""sopcoach behind a real JupyterHub: the shipped deploy/jupyterhub_config.py, records on PostgreSQL.

JupyterHub (``hub`` extra) with configurable-http-proxy 5.3 on 127.0.0.1, the shared-password
authenticator and ``SimpleLocalProcessSpawner``; each user's server is ``sopcoach serve --hub`` and
the trainer apps are the Hub service ``sopcoach-trainer``, open to the Hub group ``trainers`` only.
Two learners sign in at the Hub in Chromium, land on the learner app, practise and take the exam
side by side; both attempts land in the one PostgreSQL database, and the trainer's results app
(reached through the Hub) lists both. A learner reaches nothing but their own learner app. The
idle culler the config adds runs as a Hub service and the Hub grants its requests.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from datetime import datetime, timezone

import psutil
import pytest
import requests
import websocket
from hub_servers import Hub, private_postgres
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
from playwright.sync_api import expect
from test_exam_browser import _answer_in_browser
from test_lessons_browser import answer_practice
from wire import KEEP_SOCKETS, Traffic

from sopcoach.config import Installation, Settings
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_blueprint, load_bank
from sopcoach.lessons.progress import LessonService
from sopcoach.records.store import Records
from sopcoach.certification.exam import attempt_question
from support import PAGE_LOAD_MS, ROOT, complete_lessons, correct_response, wrong_response

pytestmark = pytest.mark.e2e
PASSWORD = "hub-test-password-1"
LEARNERS = ("ann", "bob")
TRAINER = "tina"
TIMEOUT = 90_000
#: A Hub user's first visit starts their server (the learner server, its zygote and a preheated page).
SPAWN_MS = 240_000


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A running Hub on a private PostgreSQL; yields (hub, installation on the same database)."""
    folder = tmp_path_factory.mktemp("hub")
    home = folder / "sopcoach-home"
    home.mkdir()
    with private_postgres() as db_url:
        pb = load_playbook(ROOT / "playbook")
        bank = load_bank(ROOT / "quizzes" / "bank", pb)
        inst = Installation(Settings(home, db_url, "zh-CN", ROOT), pb, bank,
                            load_blueprint(ROOT / "quizzes" / "blueprint.yaml", bank), Records(db_url))
        for name in LEARNERS:  # the lessons done already, so the exam is open (one is practised again below)
            inst.records.hub_learner(name)
            complete_lessons(inst, name)
        env = {"PATH": os.environ["PATH"], "SOPCOACH_DB_URL": db_url, "SOPCOACH_CONTENT": str(ROOT),
               "SOPCOACH_HOME": str(home), "SOPCOACH_LANG": "zh-CN"}
        pythonpath = os.environ.get("PYTHONPATH")
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        running = Hub(folder, env, password=PASSWORD, users=[*LEARNERS, TRAINER], trainers=[TRAINER])
        try:
            running.wait_ready()
            yield running, inst
        finally:
            running.stop()
            inst.records.dispose()
            kept = ROOT / "test-artifacts" / "jupyterhub"  # the Hub's log, its servers' output included
            kept.mkdir(parents=True, exist_ok=True)
            shutil.copy(running.log_path, kept / "jupyterhub.log")


def _sign_in_at_hub(page, hub: Hub, user: str) -> str:
    """Log ``user`` in on the Hub's login page; wait for their learner app's home view. Return its base URL."""
    page.goto(hub.url + "hub/login", timeout=TIMEOUT)
    page.locator("#username_input").fill(user)
    page.locator("#password_input").fill(PASSWORD)
    page.locator("#login_submit").click()
    base = f"{hub.url}user/{user}/"
    page.wait_for_url(base + "learn/", timeout=SPAWN_MS)
    page.locator(".sopcoach-home-ready").wait_for(timeout=SPAWN_MS)
    return base


def _practise_one(page, inst, learner: str, lesson_id: str) -> str:
    """Answer the first practice question of a lesson right through the page; return its id."""
    q = LessonService(inst).questions(lesson_id)[0]
    answer_practice(page, q, TIMEOUT)
    return q.id


def _wait(check, what: str, timeout: float = 60, page=None) -> None:
    """Wait until ``check()`` holds; with ``page``, poll through Playwright, which delivers the page's
    websocket events to listeners only while the test calls into it."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        if page is not None:
            page.wait_for_timeout(200)
        else:
            time.sleep(0.2)


def test_two_learners_and_a_trainer_through_the_hub(hub, contexts, artifacts):
    """Two Hub users learn and take the exam side by side; both results reach one PostgreSQL database
    and the trainer's results app; only the trainers group reaches the trainer apps."""
    running, inst = hub
    pages = {name: contexts.new().new_page() for name in LEARNERS}
    bases = {name: _sign_in_at_hub(pages[name], running, name) for name in LEARNERS}
    for name, page in pages.items():
        assert page.url == bases[name] + "learn/"
        assert page.locator("#learner_id").count() == 0  # no sopcoach sign-in page behind the Hub
        page.screenshot(path=str(artifacts / f"{name}-home.png"), full_page=True)

    # A lesson each, at the same time: both practice answers are recorded, each under its own learner.
    lesson = inst.playbook.lessons[0].id
    for page in pages.values():
        page.goto(f"{page.url}lessons/{lesson}", timeout=TIMEOUT)
    answered = {name: _practise_one(pages[name], inst, name, lesson) for name in LEARNERS}
    for name in LEARNERS:
        _wait(lambda name=name: answered[name] in (inst.records.lesson_progress(name)[lesson].practice or {})
              .get("answers", {}), f"{name}'s practice answer saved")

    # The exam, both attempts open at once, answers given in turn: ann right, bob wrong.
    for name, page in pages.items():
        page.goto(bases[name] + "learn/exam", timeout=TIMEOUT)
        page.get_by_role("button", name="开始考试").click(timeout=SPAWN_MS)
    for page in pages.values():
        page.get_by_text("第 1 题，共").wait_for(timeout=TIMEOUT)
    attempts = {name: inst.records.attempts(name)[-1] for name in LEARNERS}
    n = len(attempts["ann"].question_ids)
    for i in range(n):
        for name, page in pages.items():
            q = attempt_question(inst.bank, attempts[name], attempts[name].question_ids[i])
            page.get_by_text(f"第 {i + 1} 题，共 {n} 题").wait_for(timeout=TIMEOUT)
            _answer_in_browser(page, inst, attempts[name], i, correct_response(q) if name == "ann" else wrong_response(q))
            if i < n - 1:
                page.get_by_role("button", name="下一题").click()
    for page in pages.values():
        page.get_by_role("button", name="检查并提交").click()
        page.get_by_role("button", name="提交试卷").click()
        page.get_by_role("button", name="确认提交").click()
    pages["ann"].locator(".sopcoach-pass", has_text="通过").wait_for(timeout=TIMEOUT)
    pages["bob"].locator(".sopcoach-fail", has_text="未通过").wait_for(timeout=TIMEOUT)
    (a,), (b,) = inst.records.attempts("ann"), inst.records.attempts("bob")
    assert (a.state, a.passed, b.state, b.passed) == ("scored", True, "scored", False)
    assert inst.records.url.startswith("postgresql")

    # The trainer: their own learner app works, and the trainer apps (a Hub service) list both results.
    trainer = contexts.new().new_page()
    _sign_in_at_hub(trainer, running, TRAINER)
    trainer.goto(running.url + "services/sopcoach-trainer/voila/render/trainer/results.ipynb", timeout=SPAWN_MS)
    expect(trainer.get_by_role("link", name="下载 Excel (XLSX)")).to_be_visible(timeout=SPAWN_MS)
    for name in LEARNERS:
        expect(trainer.get_by_text(name, exact=True).first).to_be_visible()
    trainer.screenshot(path=str(artifacts / "trainer-results.png"), full_page=True)

    # A learner does not reach the trainer apps, nor another learner's server.
    for path in ("services/sopcoach-trainer/", "services/sopcoach-trainer/voila/render/trainer/results.ipynb",
                 "user/bob/learn/"):
        response = pages["ann"].goto(running.url + path, timeout=TIMEOUT)
        assert response is not None and response.status == 403, (path, response and response.status)
        assert "results()" not in pages["ann"].content() and "下载 Excel" not in pages["ann"].content()


def _frame(msg_type: str, channel: str, content: dict, session: str) -> tuple[str, list[int]]:
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "username": "", "session": session, "msg_type": msg_type, "version": "5.3",
              "date": datetime.now(timezone.utc).isoformat()}
    msg = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    return msg_id, list(serialize_msg_to_ws_v1(msg, channel, pack=lambda o: json.dumps(o).encode()))


def test_a_hub_learner_reaches_only_the_learner_app(hub, contexts, tmp_path):
    """/lab, /tree, terminals, the contents and kernels APIs, every content file and the database:
    403/404 for a signed-in Hub learner; an execute_request over the page's own kernel websocket runs nothing."""
    running, inst = hub
    context = contexts.new()
    context.add_init_script(KEEP_SOCKETS)
    page = context.new_page()
    traffic = Traffic(page)
    base = _sign_in_at_hub(page, running, "ann")
    http = page.request  # the browser's cookies: the Hub login and the server's OAuth cookie

    files = sorted(str(p.relative_to(ROOT)) for folder in ("quizzes", "playbook") for p in (ROOT / folder).rglob("*")
                   if p.is_file())
    assert len(files) > 10
    targets = [*files, "sopcoach.db", "var/sopcoach.db", "jupyterhub.sqlite", "app.ipynb", "notebooks/learner/app.ipynb"]
    prefixes = ["", "files/", "voila/files/", "voila/static/", "api/contents/", "tree/", "edit/", "view/",
                "lab/tree/", "voila/render/", "voila/tree/", "files/..%2F..%2F", "voila/files/..%2F..%2F"]
    refused = ["lab", "lab/", "tree", "tree/", "terminals/1", "api/terminals", "api/contents", "api/contents/",
               "api/kernels", "api/kernels/", "api/sessions", "api/kernelspecs", "api/nbconvert", "api/me", "nbconvert/",
               "voila/tree", "voila/render/app.ipynb", "notebooks/app.ipynb"]
    answers = {}
    for path in refused + [p + t for p in prefixes for t in targets]:
        r = http.get(base + path, max_redirects=0, timeout=TIMEOUT)
        answers[path] = r.status
        body = r.text() if r.status == 200 else ""
        assert "questions:" not in body and "slas:" not in body and '"cells"' not in body, path
    assert {s for s in answers.values()} <= {403, 404}, {p: s for p, s in answers.items() if s not in (403, 404)}
    new_kernel = http.post(base + "api/kernels", data="{}", headers={"Content-Type": "application/json"},
                           max_redirects=0, timeout=TIMEOUT)
    assert new_kernel.status in (403, 404, 405), new_kernel.status

    # The page's own kernel: an execute_request on the shell and the control channel is dropped by the
    # server (its log says so); a kernel_info_request sent on the shell channel after it is answered, the
    # execute_request never is (the shell channel is handled in order), and no code ran.
    marker = tmp_path / "executed"
    session = traffic.session_id()
    execute = {"code": f"open({str(marker)!r}, 'w').write('ran')", "silent": False, "store_history": False,
               "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
    refusals = running.log().count('Received message of type "execute_request", which is not allowed')
    sent = [_frame("execute_request", "control", execute, session), _frame("execute_request", "shell", execute, session),
            _frame("kernel_info_request", "shell", {}, session)]
    for _, frame in sent:
        page.evaluate("bytes => { for (const s of window.__sopcoachSockets) { if (s.readyState === 1) "
                      "s.send(new Uint8Array(bytes)); } }", frame)
    (control_exec, _), (shell_exec, _), (info, _) = sent

    def replied() -> set[str]:
        return {m["parent_header"].get("msg_id") for m in traffic.messages()}

    _wait(lambda: info in replied(), "the kernel_info_request answered", page=page)
    _wait(lambda: running.log().count('Received message of type "execute_request", which is not allowed') == refusals + 2,
          "both execute_requests refused in the server's log")
    assert not {control_exec, shell_exec} & replied()
    assert not marker.exists()
    # The kernel websocket itself answers only ann's Hub login: not an anonymous client, not bob's login.
    (kernel_url,) = [u for u in page.evaluate("window.__sopcoachSockets.map(s => s.url)") if "/channels" in u]
    assert kernel_url.startswith(f"ws://127.0.0.1:{running.url.split(':')[2].rstrip('/')}/user/ann/api/kernels/")
    bob = contexts.new().new_page()
    _sign_in_at_hub(bob, running, "bob")
    bob_cookies = "; ".join(f"{c['name']}={c['value']}" for c in bob.context.cookies(running.url))
    for cookie in ("", bob_cookies):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(kernel_url, header=[f"Cookie: {cookie}"] if cookie else [], timeout=30)
        assert refused.value.status_code in (302, 403), refused.value.status_code

    # And the page still works: it was not disturbed by the refused messages.
    page.goto(base + "learn/", timeout=TIMEOUT)
    page.locator(".sopcoach-home-ready").wait_for(timeout=PAGE_LOAD_MS)
    assert requests.get(running.url + "hub/health", timeout=30).status_code == 200


def test_the_idle_culler_runs_with_the_scopes_it_needs(hub):
    """The shipped config starts jupyterhub-idle-culler as a Hub service (SOPCOACH_IDLE_TIMEOUT unset:
    3600 s), and its role lets it list the users and their servers (the Hub answers it 200, never 403)."""
    running, _inst = hub

    def culler() -> list[str]:
        lines = []
        for p in running.descendants():
            try:
                lines.append(" ".join(p.cmdline()))
            except psutil.Error:  # a page kernel that ended meanwhile
                continue
        return [line for line in lines if "jupyterhub_idle_culler" in line]

    _wait(lambda: bool(culler()), "the idle-culler service running below the Hub")
    assert culler()[0].endswith("--timeout=3600")
    _wait(lambda: any("200 GET /hub/api/users" in line and "(idle-culler@" in line
                      for line in running.log().splitlines()), "the culler's first listing of the users")
    refused = [line for line in running.log().splitlines() if "(idle-culler@" in line and " 403 " in line]
    assert not refused, refused
