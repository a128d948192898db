"""``docs/nginx.conf``, run for real: the learner server behind nginx with TLS, in Chromium.

The module starts, once, a learner server as docs/nginx.conf says to run it behind nginx (base URL
``/sop/``, allowed host ``learn.example.com``, ``--trust-proxy``) and nginx with the shipped
``docs/nginx.conf``. Only what must differ on a test machine is changed in the copy: the listen
addresses (free ports on 127.0.0.1 instead of 80/443 on every interface), the certificate paths
(a self-signed certificate for learn.example.com made with ``openssl req -x509``) and the upstream
port. The copy is included from a minimal main configuration (``events {}`` + ``http {}`` with
logs and temp files in the test's folder), as Debian's ``/etc/nginx/nginx.conf`` includes
``conf.d/*.conf``.

Chromium reaches ``https://learn.example.com:<port>/sop/`` through ``--host-resolver-rules``;
HTTP probes go to 127.0.0.1 with the ``Host`` header a browser would send. The module is
skipped only when nginx is not installed (``make test`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from learner_servers import LearnerServers
from support import (
    PAGE_LOAD_MS,
    ROOT,
    SESSION_COOKIE,
    sign_in_browser,
    stop_process,
)

from sopcoach.web.launch import free_port

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (`make browser` installs it)"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),  # self-signed certificate
]

DOCS_CONF = ROOT / "docs" / "nginx.conf"
NAME = "learn.example.com"
PREFIX = "/sop/"
LEARNER, CODE = "e1", "code-1"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0
#: A loopback address other than 127.0.0.1, from which a client reaches nginx; nginx itself reaches
#: the learner server from 127.0.0.1, so this address in the server's log can only come from nginx's
#: forwarding headers.
CLIENT_ADDRESS = "127.0.0.2"
SAME_PAGE = "window.__sopcoachSamePage === true"


@dataclass
class Proxy:
    """The running pair: nginx on ``http_port``/``https_port`` in front of the learner server."""

    http_port: int
    https_port: int
    upstream_port: int
    server_log: Path

    @property
    def base(self) -> str:
        """The learner app's address as a browser sees it (``https://learn.example.com:PORT/sop/``)."""
        return f"https://{NAME}:{self.https_port}{PREFIX}"

    def https(self, path: str) -> str:
        """The address of ``path`` (below ``/sop/``) on nginx's TLS port, by IP (send ``Host`` yourself)."""
        return f"https://127.0.0.1:{self.https_port}{PREFIX}{path}"

    @property
    def host_header(self) -> str:
        """The ``Host`` header a browser sends to ``base``."""
        return f"{NAME}:{self.https_port}"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _replace(text: str, old: str, new: str) -> str:
    """Replace every ``old`` in the docs configuration; fail if the docs no longer contain it."""
    assert old in text, f"docs/nginx.conf no longer contains {old!r}: update this test's substitutions"
    return text.replace(old, new)


def _site_configuration(docs: str, *, http_port: int, https_port: int, upstream_port: int,
                       cert: Path, key: Path) -> str:
    """Return docs/nginx.conf with the test's ports and certificate (and nothing else) changed."""
    text = _replace(docs, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _replace(text, "listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    text, ipv6 = re.subn(r"(?m)^\s*listen \[::\]:(80|443)( ssl)?;.*\n", "", text)  # loopback IPv4 only
    assert ipv6 == 2, "docs/nginx.conf no longer has its two IPv6 listen lines: update this test"
    text = _replace(text, "/etc/ssl/sopcoach/learn.example.com.fullchain.pem", str(cert))
    text = _replace(text, "/etc/ssl/sopcoach/learn.example.com.key.pem", str(key))
    return _replace(text, "http://127.0.0.1:8866;", f"http://127.0.0.1:{upstream_port};")


def _main_configuration(folder: Path, site: Path) -> str:
    """A minimal main configuration including ``site``, with every file nginx writes in ``folder``."""
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, nginx would run its workers as "nobody", who cannot enter pytest's private tmp folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}worker_processes 1;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    access_log {folder / 'access.log'};\n"
            f"{temp}\n"
            f"    include {site};\n"
            "}\n")


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "learn.example.com.crt", folder / "learn.example.com.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={NAME}",
         "-addext", f"subjectAltName=DNS:{NAME}"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def _wait_for(answer, proc: subprocess.Popen[bytes], logs: list[Path], what: str) -> None:
    """Poll ``answer()`` (True when ready) until ``what`` is up; fail with its logs if it exits or stalls."""
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n" + "\n".join(f"{p}:\n{_tail(p)}" for p in logs))
        try:
            if answer():
                return
        except requests.RequestException as exc:
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready within {START_TIMEOUT:.0f} s ({last}):\n"
                        + "\n".join(f"{p}:\n{_tail(p)}" for p in logs))
        time.sleep(0.2)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A learner server (one enrolled learner) behind nginx running docs/nginx.conf."""
    folder = tmp_path_factory.mktemp("reverse-proxy")
    with LearnerServers(folder) as servers:
        server = servers(learners={LEARNER: "One"}, code=CODE, base_url=PREFIX, allowed_hosts=[NAME],
                         trust_proxy=True)
        cert, key = _self_signed_certificate(folder)
        http_port, https_port = free_port(), free_port()
        site = folder / "sopcoach.conf"
        site.write_text(_site_configuration(DOCS_CONF.read_text(), http_port=http_port, https_port=https_port,
                                           upstream_port=server.port, cert=cert, key=key))
        main = folder / "nginx.conf"
        main.write_text(_main_configuration(folder, site))
        nginx_log = folder / "nginx.out"
        with nginx_log.open("wb") as log:
            nginx = subprocess.Popen(
                [NGINX, "-c", str(main), "-p", str(folder),
                 "-g", f"daemon off; pid {folder / 'nginx.pid'}; error_log {folder / 'error.log'};"],
                stdout=log, stderr=subprocess.STDOUT,
            )
            try:  # nginx is stopped (SIGTERM: fast shutdown) before the learner server
                probe = f"https://127.0.0.1:{https_port}{PREFIX}login"
                _wait_for(lambda: requests.get(probe, headers={"Host": f"{NAME}:{https_port}"}, verify=False,
                                               timeout=5).status_code == 200,
                          nginx, [nginx_log, folder / "error.log"], "nginx")
                yield Proxy(http_port, https_port, server.port, server.log_path)
            finally:
                stop_process(nginx, STOP_TIMEOUT)


@pytest.fixture(scope="module")
def proxy_browser(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """Headless Chromium (as conftest's ``browser``) that resolves learn.example.com to 127.0.0.1 (nginx)."""
    # tests/e2e/conftest.py, as pytest loaded it (``import conftest`` may find tests/conftest.py)
    e2e = request.config.pluginmanager.get_plugin(str(Path(__file__).resolve().with_name("conftest.py")))
    resolving = browser.browser_type.launch(  # type: ignore[attr-defined]
        executable_path=str(e2e.CHROMIUM), headless=True,
        args=[*e2e.CHROMIUM_ARGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"],
    )
    try:
        yield resolving
    finally:
        resolving.close()


class _FromAddress(HTTPAdapter):
    """Connect from a given local address (to tell the client's address from nginx's)."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._address, 0)
        return super().init_poolmanager(*args, **kwargs)


def _sign_in(session: requests.Session, base: str, host: str | None = None) -> requests.Response:
    """Sign ``LEARNER`` in at ``base`` as the form does (GET for the _xsrf cookie, POST); return the POST."""
    headers = {"Host": host} if host else {}
    page = session.get(base + "login", headers=headers, verify=False, timeout=30)
    assert page.status_code == 200, f"GET {base}login answered {page.status_code}"
    xsrf = session.cookies.get("_xsrf")
    assert xsrf, "the sign-in page set no _xsrf cookie"
    answer = session.post(base + "login", data={"learner_id": LEARNER, "code": CODE, "_xsrf": xsrf},
                          headers=headers, verify=False, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, f"sign-in refused: HTTP {answer.status_code}"
    return answer


def _session_cookie(answer: requests.Response):
    found = [c for c in answer.cookies if c.name == SESSION_COOKIE]
    assert found, f"no {SESSION_COOKIE} cookie in {answer.headers.get('Set-Cookie')!r}"
    return found[0]


def test_learner_signs_in_and_opens_a_lesson_through_nginx(proxy: Proxy, proxy_browser, artifacts: Path) -> None:
    """Through nginx over TLS a learner signs in, gets the home view (kernel websocket) and switches to a lesson in place."""
    context = proxy_browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900},
                                        locale="zh-CN")
    blocked: list[str] = []
    elsewhere = re.compile(rf"^https?://(?!{re.escape(NAME)}:{proxy.https_port}/)")
    context.route(elsewhere, lambda route: (blocked.append(route.request.url), route.abort()))
    page = context.new_page()
    try:
        sign_in_browser(page, proxy.base, LEARNER, CODE)  # waits for .sopcoach-home-ready
        page.evaluate("window.__sopcoachSamePage = true")
        link = page.locator(f'a[data-view][href^="{PREFIX}learn/lessons/"]').first
        target = link.get_attribute("href")
        link.click()
        page.locator(".sopcoach-lesson-ready").wait_for(state="visible", timeout=PAGE_LOAD_MS)
        assert page.url == f"https://{NAME}:{proxy.https_port}{target}"
        assert page.evaluate(SAME_PAGE), "the lesson link loaded a new page instead of switching the view"
    except BaseException:
        page.screenshot(path=str(artifacts / "failure.png"), full_page=True, timeout=15_000)
        raise
    finally:
        context.close()
        if blocked:  # as conftest's contexts do: nothing may download at run time, but it is no failure here
            warnings.warn(f"aborted requests outside the proxy: {sorted(set(blocked))}", stacklevel=1)


def test_session_cookie_is_secure_behind_tls(proxy: Proxy) -> None:
    """Signed in through nginx (X-Forwarded-Proto https), the session cookie is Secure; directly over HTTP it is not."""
    through_nginx = _session_cookie(_sign_in(requests.Session(), proxy.https(""), host=proxy.host_header))
    direct = _session_cookie(_sign_in(requests.Session(), f"http://127.0.0.1:{proxy.upstream_port}{PREFIX}"))
    assert through_nginx.secure
    assert not direct.secure


def test_server_logs_the_address_nginx_forwarded(proxy: Proxy) -> None:
    """The sign-in log line names the learner's own address (from nginx's headers), not nginx's."""
    session = requests.Session()
    session.mount("https://", _FromAddress(CLIENT_ADDRESS))
    _sign_in(session, proxy.https(""), host=proxy.host_header)
    line = f"signed in: {LEARNER} from {CLIENT_ADDRESS}"
    deadline = time.monotonic() + 30
    while line not in proxy.server_log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{line!r} not logged:\n{_tail(proxy.server_log)}"
        time.sleep(0.2)


def test_another_host_name_is_refused(proxy: Proxy) -> None:
    """A request through nginx naming another host gets the server's 400 "unknown host"."""
    answer = requests.get(proxy.https("login"), headers={"Host": "intruder.example.net"}, verify=False,
                          timeout=30, allow_redirects=False)
    assert answer.status_code == 400
    assert "unknown host" in answer.text


def test_plain_http_is_redirected_to_https(proxy: Proxy) -> None:
    """A plain-HTTP request gets a permanent redirect to the same address over HTTPS."""
    answer = requests.get(f"http://127.0.0.1:{proxy.http_port}{PREFIX}learn/?lang=en",
                          headers={"Host": NAME}, timeout=30, allow_redirects=False)
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://{NAME}{PREFIX}learn/?lang=en"
