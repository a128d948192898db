"""The learner server's door, attacked over real HTTP: sign-in, sessions, throttling, hosts, kernels.

Every test talks to a real learner server (``python -m sopcoach.web.server``, started here with
:class:`learner_servers.LearnerServers`) over real sockets with ``requests`` and
``websocket-client``; Chromium is used only where a page must be seen. The servers keep one
preheated kernel each and are stopped by pid at the end of the module.
"""
from __future__ import annotations

import base64
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from collections.abc import Callable

import pytest
import requests
import websocket
from learner_servers import LearnerServer, LearnerServers
from requests.adapters import HTTPAdapter
from sqlalchemy import func, select

from sopcoach.config import Installation, Settings
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank, load_blueprint
from sopcoach.records.models import AuditEvent, Learner, PageKernel, WebSession
from sopcoach.records.store import Records
from support import ROOT, complete_lessons, correct_response
from wire import KEEP_SOCKETS, Traffic, click_data, comm_messages_from_kernel, forge

pytestmark = pytest.mark.e2e

CODE = "door-code-2468"
COOKIE = "sopcoach-session"
PAGE_TIMEOUT = 120_000  # ms, Playwright: two shared cores, a kernel may be starting
#: Learners enrolled on the main server (each test uses its own, so tests do not disturb each other).
LEARNERS = ["d-cookie", "d-signout", "d-reissue", "d-revoke", "d-revoke-page", "d-lockout",
            "d-owner", "d-other", "d-origin", "d-passed"] + [f"d-timing-{i}" for i in range(7)]


def wait_until(condition: Callable[[], bool], timeout: float, message: Callable[[], str] | str) -> None:
    """Poll ``condition`` every 0.2 s until it holds; fail with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message() if callable(message) else message)
        time.sleep(0.2)


def _installation(home: Path) -> Installation:
    pb = load_playbook(ROOT / "playbook")
    bank = load_bank(ROOT / "quizzes" / "bank", pb)
    bp = load_blueprint(ROOT / "quizzes" / "blueprint.yaml", bank)
    url = f"sqlite:///{home / 'sopcoach.db'}"
    return Installation(Settings(home, url, "zh-CN", ROOT), pb, bank, bp, Records(url))


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LearnerServer]:
    """The main learner server (loopback, base URL ``/``) with the test learners enrolled."""
    with LearnerServers(tmp_path_factory.mktemp("door")) as servers:
        yield servers(learners={i: f"Learner {i}" for i in LEARNERS}, code=CODE)


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LearnerServer]:
    """A second server behind a proxy prefix: ``--base-url /sop/ --allowed-host learn.example.com``."""
    with LearnerServers(tmp_path_factory.mktemp("door-prefixed")) as servers:
        yield servers(learners={"p-learner": "Prefixed Learner"}, code=CODE, base_url="/sop/",
                      allowed_hosts=["learn.example.com"])


# -- HTTP helpers -------------------------------------------------------------------------------------
class _SourceAdapter(HTTPAdapter):
    """Send every request from a chosen local address (another "client" on the loopback net)."""

    def __init__(self, source: str) -> None:
        self._source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["source_address"] = (self._source, 0)
        return super().init_poolmanager(*args, **kwargs)


def client(source: str = "127.0.0.1") -> requests.Session:
    """A fresh HTTP client (own cookie jar) whose connections come from ``source``."""
    session = requests.Session()
    if source != "127.0.0.1":
        adapter = _SourceAdapter(source)
        session.mount("http://", adapter)
    return session


def _xsrf(html: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', html)
    assert match, "the form carries no _xsrf field"
    return match.group(1)


def post_sign_in(server: LearnerServer, session: requests.Session, learner_id: str, code: str,
                 next_url: str | None = None, follow: bool = False) -> requests.Response:
    """Fetch the sign-in form (for its _xsrf) and post ``learner_id``/``code`` as the form does."""
    form = session.get(server.base + "login", timeout=30)
    assert form.status_code == 200, form.status_code
    data = {"learner_id": learner_id, "code": code, "_xsrf": _xsrf(form.text)}
    if next_url is not None:
        data["next"] = next_url
    return session.post(server.base + "login", data=data, allow_redirects=follow, timeout=60)


def sign_in(server: LearnerServer, learner_id: str, source: str = "127.0.0.1") -> requests.Session:
    """Return a client signed in as ``learner_id`` (asserts the sign-in succeeded)."""
    session = client(source)
    response = post_sign_in(server, session, learner_id, CODE)
    assert response.status_code == 302, (response.status_code, response.text[:300])
    assert session.cookies.get(COOKIE), "no session cookie after sign-in"
    return session


def cookie_header(value: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={value}"}


def is_signed_in(server: LearnerServer, cookie_value: str) -> bool:
    """Ask the server whether ``cookie_value`` is a live session (the form sends the signed-in on)."""
    probe = requests.get(server.base + "login", params={"next": server.prefix + "learn/"},
                         headers=cookie_header(cookie_value), allow_redirects=False, timeout=30)
    return probe.status_code == 302


def goes_to_login(response: requests.Response, server: LearnerServer) -> bool:
    return response.status_code == 302 and \
        response.headers.get("Location", "").split("?")[0].endswith(server.prefix + "login")


def open_page_over_http(server: LearnerServer, session: requests.Session) -> str:
    """GET ``/learn/`` as the signed-in learner of ``session``; return the kernel bound to the page."""
    response = session.get(server.base + "learn/", timeout=120)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    kernels = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", response.text)
    with server.records.session() as s:
        bound = set(s.scalars(select(PageKernel.kernel_id)))
    (kernel_id,) = {k for k in kernels if k in bound}
    return kernel_id


def ws_status(url: str, cookie_value: str | None = None, origin: str | None = None) -> int:
    """Open a websocket to ``url``; return 101 when the server accepted it, else the HTTP status."""
    options: dict[str, object] = {"timeout": 30}
    if cookie_value is not None:
        options["cookie"] = f"{COOKIE}={cookie_value}"
    if origin is not None:
        options["origin"] = origin
    try:
        ws = websocket.create_connection(url, **options)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    status = ws.status
    ws.close()
    return status


def page_kernel_of(server: LearnerServer, learner_id: str) -> str:
    """Wait until ``learner_id`` has a bound page kernel; return its id."""
    found: list[str] = []

    def bound() -> bool:
        with server.records.session() as s:
            found[:] = list(s.scalars(select(PageKernel.kernel_id).where(PageKernel.learner_id == learner_id)))
        return len(found) == 1
    wait_until(bound, 60, lambda: f"no page kernel bound to {learner_id}: {found}")
    return found[0]


def cli(server: LearnerServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``sopcoach`` command against the server's SOPCOACH_HOME."""
    exe = Path(sys.executable).with_name("sopcoach")
    argv = [str(exe), *args] if exe.is_file() else [sys.executable, "-m", "sopcoach.cli.main", *args]
    done = subprocess.run(argv, env=server.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def browser_sign_in(page, server: LearnerServer, learner_id: str, target: str) -> None:
    """Open ``target`` in Chromium, sign in at the door as ``learner_id`` and return on the app."""
    answer = page.goto(server.url(target), timeout=PAGE_TIMEOUT)
    assert answer is not None and answer.status == 200 and page.locator("#learner_id").count() == 1, \
        f"no sign-in form at {page.url} ({answer and answer.status}): {page.inner_text('body')[:200]}"
    page.locator("#learner_id").fill(learner_id)
    page.locator("#code").fill(CODE)
    page.locator("#sign-in").click()


# == 1. anonymous visitors start nothing ===============================================================
ANONYMOUS_PAGES = ["/learn/", "/learn/exam", "/learn/lessons/process"]
ANONYMOUS_OTHER = ["/voila/render/app.ipynb", "/voila/tree", "/voila/files/app.ipynb", "/api/kernels",
                   f"/api/kernels/{uuid.uuid4()}"]


@pytest.mark.parametrize("path", ANONYMOUS_PAGES)
def test_anonymous_page_request_is_sent_to_sign_in(door, path):
    """An anonymous GET of a learner page is redirected to the sign-in page, which then leads back to it."""
    response = requests.get(door.url(path), allow_redirects=False, timeout=30)
    assert goes_to_login(response, door), (response.status_code, response.headers.get("Location"))
    assert f"next={requests.utils.quote(path, safe='')}" in response.headers["Location"]


@pytest.mark.parametrize("path", ANONYMOUS_OTHER)
def test_anonymous_request_outside_the_pages_is_refused(door, path):
    """An anonymous GET of a notebook, file, listing or kernel address is answered 403 or 404."""
    response = requests.get(door.url(path), allow_redirects=False, timeout=30)
    assert response.status_code in (403, 404), (response.status_code, response.text[:200])


def test_anonymous_kernel_websocket_is_refused(door):
    """An anonymous websocket to a kernel's channels is refused with 403 before any upgrade."""
    url = f"ws://127.0.0.1:{door.port}/api/kernels/{uuid.uuid4()}/channels"
    assert ws_status(url) == 403


def test_anonymous_requests_start_no_kernel(door):
    """Every anonymous page, notebook, kernel and websocket request together starts no kernel."""
    started, running = door.kernels_started(), len(door.kernels())
    assert started >= 1 and running >= 1  # control: the preheated kernel is seen by both counts
    for path in ANONYMOUS_PAGES + ANONYMOUS_OTHER:
        requests.get(door.url(path), timeout=30)  # redirects followed: the sign-in page too
    ws_status(f"ws://127.0.0.1:{door.port}/api/kernels/{uuid.uuid4()}/channels")
    assert door.kernels_started() == started
    assert len(door.kernels()) <= running


def test_forty_anonymous_exam_requests_start_no_kernel(door):
    """Forty anonymous GETs of the exam page leave the number of kernels unchanged."""
    started, running = door.kernels_started(), len(door.kernels())
    for _ in range(40):
        response = requests.get(door.base + "learn/exam", allow_redirects=False, timeout=30)
        assert goes_to_login(response, door)
    assert door.kernels_started() == started
    assert len(door.kernels()) <= running


# == 1. the session cookie ==============================================================================
def _set_cookie(response: requests.Response) -> str:
    (header,) = [h for h in response.raw.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    return header


def _token_in(cookie_value: str) -> str:
    """The session token inside a Tornado v2 signed value ``2|1:0|10:ts|16:name|n:base64(token)|sig``."""
    fields = cookie_value.strip('"').split("|")
    return base64.b64decode(fields[4].split(":", 1)[1]).decode()


@pytest.fixture(scope="module")
def cookie_sign_in(door):
    """The 302 answer to d-cookie's sign-in and the client that received it."""
    session = client()
    response = post_sign_in(door, session, "d-cookie", CODE)
    assert response.status_code == 302
    return response, session


def test_session_cookie_is_httponly(cookie_sign_in):
    """The session cookie is HttpOnly (page scripts cannot read it)."""
    assert re.search(r";\s*HttpOnly", _set_cookie(cookie_sign_in[0]), re.I)


def test_session_cookie_is_samesite_lax(cookie_sign_in):
    """The session cookie is SameSite=Lax (not sent on cross-site subrequests)."""
    assert re.search(r";\s*SameSite=Lax", _set_cookie(cookie_sign_in[0]), re.I)


def test_session_cookie_expires(cookie_sign_in):
    """The session cookie carries an expiry later than the server's own clock (not a browser-lifetime cookie)."""
    header = _set_cookie(cookie_sign_in[0])
    expires = re.search(r";\s*expires=([^;]+)", header, re.I)
    max_age = re.search(r";\s*max-age=(\d+)", header, re.I)
    assert expires or max_age, header
    if expires:
        server_now = parsedate_to_datetime(cookie_sign_in[0].headers["Date"])
        assert parsedate_to_datetime(expires.group(1)) > server_now
    else:
        assert int(max_age.group(1)) > 0


def test_session_is_never_in_the_address(door):
    """After sign-in the browser lands on the app at an address that carries no session token."""
    session = client()
    response = post_sign_in(door, session, "d-cookie", CODE, next_url="/learn/", follow=True)
    assert response.status_code == 200
    cookie_value = session.cookies.get(COOKIE)
    token = _token_in(cookie_value)
    addresses = [r.headers.get("Location", "") for r in response.history] + [response.url]
    assert response.url.split("?")[0] == door.base + "learn/"
    for address in addresses:
        assert token not in address and cookie_value.strip('"') not in address
        assert not re.search(r"[?&](session|token)=", address), address


def test_altered_session_cookie_is_refused(door, cookie_sign_in):
    """A session cookie with one character of its signature changed is not a session."""
    value = cookie_sign_in[1].cookies.get(COOKIE).strip('"')
    assert is_signed_in(door, f'"{value}"')  # control: the genuine cookie is a session
    last = value[-1]
    forged = value[:-1] + ("0" if last != "0" else "1")
    assert not is_signed_in(door, f'"{forged}"')
    response = requests.get(door.base + "learn/", headers=cookie_header(f'"{forged}"'),
                            allow_redirects=False, timeout=30)
    assert goes_to_login(response, door)


def test_unsigned_session_token_is_refused(door, cookie_sign_in):
    """The bare session token, without the server's signature around it, is not a session."""
    token = _token_in(cookie_sign_in[1].cookies.get(COOKIE))
    assert not is_signed_in(door, token)


# == 1. sign-out, re-issue, revoke =======================================================================
def test_sign_out_ends_the_session(door):
    """After sign-out the old session cookie, replayed, is sent to the sign-in page."""
    session = sign_in(door, "d-signout")
    old = session.cookies.get(COOKIE)
    confirm = session.get(door.base + "logout", timeout=30)
    assert confirm.status_code == 200
    done = session.post(door.base + "logout", data={"_xsrf": _xsrf(confirm.text)}, allow_redirects=False,
                        timeout=30)
    assert goes_to_login(done, door) and "notice=signed_out" in done.headers["Location"]
    replay = requests.get(door.base + "learn/", headers=cookie_header(old), allow_redirects=False, timeout=30)
    assert goes_to_login(replay, door)


def test_reissued_access_code_ends_existing_sessions(door):
    """Issuing the learner a new access code (`sopcoach enroll`) ends the sessions opened with the old one."""
    old = sign_in(door, "d-reissue").cookies.get(COOKIE)
    assert is_signed_in(door, old)
    cli(door, "enroll", "--id", "d-reissue", "--name", "Learner d-reissue")
    wait_until(lambda: not is_signed_in(door, old), 30, "the old session outlived the re-issued code")
    replay = requests.get(door.base + "learn/", headers=cookie_header(old), allow_redirects=False, timeout=30)
    assert goes_to_login(replay, door)


def test_revoke_ends_existing_sessions(door):
    """`sopcoach revoke ID` ends that learner's sessions: the old cookie is sent to the sign-in page."""
    old = sign_in(door, "d-revoke").cookies.get(COOKIE)
    assert is_signed_in(door, old)
    cli(door, "revoke", "d-revoke")
    wait_until(lambda: not is_signed_in(door, old), 30, "the session outlived `sopcoach revoke`")
    replay = requests.get(door.base + "learn/", headers=cookie_header(old), allow_redirects=False, timeout=30)
    assert goes_to_login(replay, door)


def test_revoke_stops_the_open_page_kernel(door, page):
    """`sopcoach revoke ID` stops the kernel of the learner's open page within the server's sweep."""
    browser_sign_in(page, door, "d-revoke-page", "/learn/")
    page.locator(".sopcoach-home-ready").wait_for(timeout=PAGE_TIMEOUT)
    kernel_id = page_kernel_of(door, "d-revoke-page")
    assert f"Kernel shutdown: {kernel_id}" not in door.log()
    cli(door, "revoke", "d-revoke-page")
    door.wait_for_log(rf"Kernel shutdown: {kernel_id}", timeout=40)


# == 1. timing, throttling, field caps ===================================================================
def test_sign_in_costs_the_same_for_unknown_and_known_ids(door):
    """A sign-in with an unknown id takes about as long as one with a known id and a wrong code."""
    session = client("127.0.0.3")  # its own address: its failures throttle nobody else
    post_sign_in(door, session, "d-timing-warmup", "wrong")  # first request pays for connections
    known, unknown = [], []
    for i in range(7):
        for ids, times in ((f"d-timing-{i}", known), (f"nobody-{uuid.uuid4().hex[:12]}", unknown)):
            form = session.get(door.base + "login", timeout=30)
            data = {"learner_id": ids, "code": f"wrong-{i}", "_xsrf": _xsrf(form.text)}
            t0 = time.perf_counter()
            response = session.post(door.base + "login", data=data, allow_redirects=False, timeout=60)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 403, response.status_code
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 <= ratio <= 2.0, (ratio, known, unknown)


def test_wrong_codes_from_one_address_are_throttled(door):
    """A stranger repeating wrong codes for one id from one address gets 429 with Retry-After, even for the right code."""
    stranger = client("127.0.0.2")
    answers = []
    for i in range(10):
        response = post_sign_in(door, stranger, "d-lockout", f"guess-{i}")
        answers.append(response.status_code)
        if response.status_code == 429:
            break
    assert answers[0] == 403 and answers[-1] == 429, answers
    assert int(response.headers["Retry-After"]) > 0
    right = post_sign_in(door, stranger, "d-lockout", CODE)
    assert right.status_code == 429


def test_a_stranger_cannot_lock_the_learner_out(door):
    """While a stranger's address is throttled for an id, the learner signs in at once from their own address."""
    stranger = client("127.0.0.2")
    for i in range(10):
        if post_sign_in(door, stranger, "d-lockout", f"again-{i}").status_code == 429:
            break
    else:
        pytest.fail("the stranger was never throttled")
    learner = client("127.0.0.1")
    response = post_sign_in(door, learner, "d-lockout", CODE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/learn/"


def test_guessing_many_ids_from_one_address_is_throttled(door):
    """A stranger trying a different id each time from one address is stopped with 429 and Retry-After."""
    stranger = client("127.0.0.4")
    answers = []
    for i in range(40):
        response = post_sign_in(door, stranger, f"spray-{i}", "guess")
        answers.append(response.status_code)
        if response.status_code == 429:
            break
    assert answers[-1] == 429, answers
    assert int(response.headers["Retry-After"]) > 0


def _longest(server: LearnerServer) -> dict[str, int]:
    with server.records.session() as s:
        return {
            "learners": s.scalar(select(func.max(func.length(Learner.id)))) or 0,
            "audit": s.scalar(select(func.max(func.length(AuditEvent.learner_id)))) or 0,
            "sessions": s.scalar(select(func.max(func.length(WebSession.learner_id)))) or 0,
            "huge_audit": s.scalar(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.learner_id.like("xxxxxxxx%"))) or 0,
        }


def test_million_character_id_is_refused_and_not_stored(door):
    """A 1,000,000-character employee id is answered 400 and stored nowhere."""
    response = post_sign_in(door, client("127.0.0.5"), "x" * 1_000_000, "code")
    assert response.status_code in (400, 413), response.status_code
    longest = _longest(door)
    assert longest["learners"] <= 64 and longest["audit"] <= 64 and longest["sessions"] <= 64, longest
    assert longest["huge_audit"] == 0


def test_million_character_code_is_refused(door):
    """A 1,000,000-character access code for a real id is answered 400 and opens no session."""
    session = client("127.0.0.5")
    response = post_sign_in(door, session, "d-cookie", "c" * 1_000_000)
    assert response.status_code in (400, 413), response.status_code
    assert session.cookies.get(COOKIE) is None


# == 4. Host and Origin ===================================================================================
def test_foreign_host_header_is_refused(door):
    """A request whose Host header is not an allowed name is answered 400."""
    for path in ("/login", "/learn/"):
        response = requests.get(door.url(path), headers={"Host": "evil.example"}, allow_redirects=False,
                                timeout=30)
        assert response.status_code == 400, (path, response.status_code)


def test_allowed_host_is_answered(door, prefixed):
    """With --allowed-host learn.example.com that Host is answered, while a server without it refuses it."""
    allowed = requests.get(prefixed.base + "learn/", headers={"Host": "learn.example.com"},
                           allow_redirects=False, timeout=30)
    assert goes_to_login(allowed, prefixed), (allowed.status_code, allowed.text[:200])
    refused = requests.get(door.base + "learn/", headers={"Host": "learn.example.com"},
                           allow_redirects=False, timeout=30)
    assert refused.status_code == 400


def test_websocket_from_a_foreign_origin_is_refused(door):
    """The learner's own kernel websocket is refused (403) when the Origin is another site."""
    session = sign_in(door, "d-origin")
    kernel_id = open_page_over_http(door, session)
    url = f"ws://127.0.0.1:{door.port}/api/kernels/{kernel_id}/channels"
    cookie_value = session.cookies.get(COOKIE)
    assert ws_status(url, cookie_value, origin=door.origin) == 101  # control: same origin is accepted
    assert ws_status(url, cookie_value, origin="https://evil.example") == 403


def test_websocket_to_another_learners_kernel_is_refused(door):
    """A signed-in learner's websocket to another learner's page kernel is refused with 403."""
    owner = sign_in(door, "d-owner")
    kernel_id = open_page_over_http(door, owner)
    other = sign_in(door, "d-other")
    url = f"ws://127.0.0.1:{door.port}/api/kernels/{kernel_id}/channels"
    assert ws_status(url, owner.cookies.get(COOKIE), origin=door.origin) == 101  # control: the owner
    assert ws_status(url, other.cookies.get(COOKIE), origin=door.origin) == 403
    model = other.get(door.base + f"api/kernels/{kernel_id}", timeout=30)
    assert model.status_code == 403


# == 4. behind a reverse proxy: --base-url /sop/ ==========================================================
def test_prefixed_server_answers_below_its_prefix(prefixed):
    """With --base-url /sop/ the sign-in page is at /sop/login and /sop/learn/ leads to it."""
    response = requests.get(prefixed.base + "learn/", allow_redirects=False, timeout=30)
    assert goes_to_login(response, prefixed)
    assert response.headers["Location"].split("?")[0].endswith("/sop/login")
    sign_in_page = requests.get(prefixed.base + "login", timeout=30)
    assert sign_in_page.status_code == 200, (sign_in_page.status_code, sign_in_page.text[:200])
    assert 'id="learner_id"' in sign_in_page.text


def test_prefixed_server_has_no_unprefixed_pages(prefixed):
    """With --base-url /sop/ the address /learn/ without the prefix is 404."""
    response = requests.get(prefixed.origin + "/learn/", allow_redirects=False, timeout=30)
    assert response.status_code == 404, (response.status_code, response.text[:200])


def test_browser_signs_in_below_the_prefix(prefixed, page):
    """In Chromium a learner signs in under /sop/ and sees the home view there."""
    browser_sign_in(page, prefixed, "p-learner", "/learn/")
    page.locator(".sopcoach-home-ready").wait_for(timeout=PAGE_TIMEOUT)
    assert page.url.startswith(prefixed.origin + "/sop/learn/")


# == 3. rules on the server: a forged start ===============================================================
@pytest.fixture(scope="module")
def passed_learner(door):
    """d-passed has done every lesson and passed the exam (one scored attempt)."""
    inst = _installation(door.home)
    complete_lessons(inst, "d-passed")
    service = inst.exam_service()
    attempt = service.start_or_resume("d-passed")
    for qid in service.view(attempt).question_ids:
        service.answer(attempt, qid, correct_response(service.attempt_question(attempt, qid)))
    assert service.submit(attempt).passed
    yield inst
    inst.records.dispose()


def test_forged_start_by_a_certified_learner_creates_no_attempt(door, passed_learner, page):
    """A certified learner's forged click on the hidden start button is refused by the server: no new attempt."""
    inst = passed_learner
    assert len(inst.records.attempts("d-passed")) == 1
    page.add_init_script(KEEP_SOCKETS)
    traffic = Traffic(page)
    browser_sign_in(page, door, "d-passed", "/learn/exam")
    page.get_by_text("您已通过认证").first.wait_for(timeout=PAGE_TIMEOUT)
    models = comm_messages_from_kernel(traffic)
    starts = [mid for mid, st in models.items() if st.get("description") == "开始考试"]
    assert starts, "the exam view's start button was never sent to the page"
    refused = page.get_by_text("您已通过认证，不能再次参加认证考试。")
    assert refused.count() == 0
    for mid in starts:
        forge(page, traffic.session_id(), mid, click_data())
    refused.wait_for(timeout=PAGE_TIMEOUT)  # the forged click reached the kernel, which refused it
    assert len(inst.records.attempts("d-passed")) == 1


def test_anyone_verifies_a_certificate_in_the_browser_without_a_kernel(door, passed_learner, page):
    """/verify needs no sign-in and starts no kernel: a genuine code reads current with the holder and the
    company's day; a code with a wrong check character reads mistyped; English on ?lang=en."""
    from sopcoach.certification.certificates import learner_certificate
    from sopcoach.i18n import local_day
    cert = learner_certificate(passed_learner.records, "d-passed")
    assert cert is not None
    started = door.kernels_started()
    page.goto(door.url("/verify"))
    page.fill("#code", cert.code.lower().replace("-", " "))
    page.click("#verify")
    verdict = page.locator("#sopcoach-verdict")
    verdict.wait_for(timeout=PAGE_TIMEOUT)
    text = verdict.inner_text()
    assert verdict.get_attribute("data-status") == "current"
    assert "真实证书" in text and "Learner d-passed (d-passed)" in text and "当前有效" in text
    assert f"签发于 {local_day(cert.issued_at, 'Asia/Shanghai')}" in text
    wrong = cert.code[:-1] + ("A" if cert.code[-1] != "A" else "B")
    page.goto(door.url(f"/verify?lang=en&code={wrong}"))
    assert page.locator("#sopcoach-verdict").get_attribute("data-status") == "mistyped"
    assert "mistyped" in page.locator("#sopcoach-verdict").inner_text()
    assert page.locator("label[for=code]").inner_text() == "Certificate code"
    assert door.kernels_started() == started
