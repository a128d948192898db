"""Sign-in at the learner server's door: a jupyter_server identity provider with its own page.

Every request to the learner server passes :meth:`LearnerIdentityProvider.get_user` before any
handler runs (jupyter_server's ``JupyterHandler.prepare``). Without a live session the app page
redirects to ``/login`` and every API or websocket request answers 403, so an anonymous visitor
starts no kernel.

The session cookie (``sopcoach-session``) holds a random token, signed by Tornado with the
server's cookie secret, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over HTTPS, expiring after
:data:`SESSION_HOURS`. The records store keeps only the token's SHA-256 (``web_sessions``), so a
session ends at sign-out, when the learner's access code is re-issued (``sopcoach enroll``) or
revoked (``sopcoach revoke``), and at its expiry.

Guessing is slowed per client address and employee id (:class:`SignInThrottle`): a stranger's
failures never lock the real learner out, since they are counted against the stranger's address.
A sign-in costs the same CPU time for a known and an unknown id (see
:meth:`sopcoach.records.store.Records.authenticate`). Behind JupyterHub (``sopcoach serve --hub``)
the Hub's OAuth is the door instead (:mod:`sopcoach.web.hub`) and there is no sign-in page.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jinja2
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from ..errors import AuthError
from ..i18n import t
from ..records.store import MAX_CODE_LENGTH, MAX_ID_LENGTH, Records, token_hash

__all__ = ["COOKIE_NAME", "SESSION_HOURS", "LearnerIdentityProvider", "PlainErrors", "SignInThrottle"]

#: How long a sign-in lasts, in elapsed hours (one working day).
SESSION_HOURS = 8
COOKIE_NAME = "sopcoach-session"
#: How long a looked-up session is trusted before the records store is asked again (seconds).
SESSION_CACHE_SECONDS = 3.0

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
    autoescape=True,
)

TEXT = {
    "zh-CN": {
        "title": "登录 · 销售SOP学习中心",
        "heading": "销售SOP学习中心",
        "intro": "请输入员工编号和培训负责人发给您的个人访问码。",
        "id": "员工编号",
        "code": "访问码",
        "submit": "登录",
        "other_lang": "English",
        "wrong": "员工编号或访问码不正确。",
        "too_long": "员工编号和访问码最多 {n} 个字符。",
        "throttled": "登录失败次数过多，请 {s} 后再试。",
        "signed_out": "您已退出登录。",
        "ended": "您的登录已结束（已退出、访问码已更新或已过期），请重新登录。",
    },
    "en": {
        "title": "Sign in · Sales SOP learning centre",
        "heading": "Sales SOP learning centre",
        "intro": "Enter your employee id and the personal access code your trainer gave you.",
        "id": "Employee id",
        "code": "Access code",
        "submit": "Sign in",
        "other_lang": "中文",
        "wrong": "Unknown employee id or wrong access code.",
        "too_long": "The employee id and the access code have at most {n} characters.",
        "throttled": "Too many failed sign-ins; try again in {s}.",
        "signed_out": "You are signed out.",
        "ended": "Your sign-in has ended (signed out, new access code, or expired); please sign in again.",
    },
}


def request_lang(handler: web.RequestHandler) -> str:
    """Return ``en`` or ``zh-CN`` for a request: ``?lang=``, else the server default."""
    lang = handler.get_argument("lang", None) if hasattr(handler, "get_argument") else None
    if lang in TEXT:
        return lang
    default = os.environ.get("SOPCOACH_LANG", "zh-CN")
    return default if default in TEXT else "zh-CN"


@dataclass
class SignInThrottle:
    """Slow down guessing of access codes, per client address.

    A client address may fail ``per_pair`` times for one employee id; each further failure makes it
    wait ``first_wait_s`` seconds, doubling with every failure up to ``window_s``, before it may
    try that id again (a learner who mistypes a few times waits half a minute, not a quarter of an
    hour). In all it may fail ``per_client`` times within ``window_s`` elapsed seconds. Failures
    from other addresses do not count, so nobody can lock a learner out.

    Examples
    --------
    >>> th = SignInThrottle(per_pair=2, per_client=5, window_s=600, first_wait_s=30)
    >>> th.failed("10.0.0.9", "e1", now=0); th.failed("10.0.0.9", "e1", now=1)
    >>> th.wait_seconds("10.0.0.9", "e1", now=2), th.wait_seconds("10.0.0.7", "e1", now=2)
    (29, 0)
    >>> th.failed("10.0.0.9", "e1", now=31); th.wait_seconds("10.0.0.9", "e1", now=31)
    60
    """

    per_pair: int = 5
    per_client: int = 20
    window_s: float = 900.0
    first_wait_s: float = 30.0
    _pairs: dict[tuple[str, str], deque] = field(default_factory=dict)
    _clients: dict[str, deque] = field(default_factory=dict)

    def _trim(self, q: deque, now: float) -> deque:
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def wait_seconds(self, client: str, learner_id: str, now: float | None = None) -> int:
        """Return how many whole seconds ``client`` must wait before trying ``learner_id`` again."""
        now = time.monotonic() if now is None else now
        waits = [0.0]
        pair = self._pairs.get((client, learner_id))
        if pair is not None and len(self._trim(pair, now)) >= self.per_pair:
            extra = len(pair) - self.per_pair
            waits.append(pair[-1] + min(self.first_wait_s * 2 ** extra, self.window_s) - now)
        clients = self._clients.get(client)
        if clients is not None and len(self._trim(clients, now)) >= self.per_client:
            waits.append(clients[len(clients) - self.per_client] + self.window_s - now)
        return int(max(waits) + 0.999)

    def failed(self, client: str, learner_id: str, now: float | None = None) -> None:
        """Count one failed sign-in of ``client`` for ``learner_id``."""
        now = time.monotonic() if now is None else now
        self._pairs.setdefault((client, learner_id), deque()).append(now)
        self._clients.setdefault(client, deque()).append(now)
        if len(self._pairs) > 100_000:  # forget the oldest pairs rather than grow without bound
            for key in list(self._pairs)[:50_000]:
                del self._pairs[key]

    def succeeded(self, client: str, learner_id: str) -> None:
        """Forget ``client``'s failures for ``learner_id`` after a successful sign-in."""
        self._pairs.pop((client, learner_id), None)


class LearnerIdentityProvider(IdentityProvider):
    """The learner from the session cookie; ``None`` without a live session.

    Behind JupyterHub the learner server uses :class:`sopcoach.web.hub.HubLearnerIdentity` instead.
    """

    cookie_name = COOKIE_NAME

    def __init__(self, *args: Any, records: Records | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.records = records
        self.throttle = SignInThrottle()
        self.hub_user: str | None = None  # the server's owner behind JupyterHub (sopcoach.web.hub); none here
        self._cache: dict[str, tuple[float, User | None, str]] = {}

    def store(self) -> Records:
        """Return the records store that sessions and sign-ins use."""
        if self.records is None:
            raise AuthError("sign-in needs a records store; start the server with one")
        return self.records

    # -- what jupyter_server asks -------------------------------------------------------------
    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    @property
    def logout_available(self) -> bool:
        return True

    def should_check_origin(self, handler: web.RequestHandler) -> bool:
        return True

    def is_token_authenticated(self, handler: web.RequestHandler) -> bool:
        return False

    def get_handlers(self) -> list[tuple[str, object]]:
        return [(r"/login", SignInHandler), (r"/logout", SignOutHandler)]

    def get_user(self, handler: web.RequestHandler) -> User | None:
        """Return the signed-in learner for this request, or ``None``."""
        token = self.session_token(handler)
        if token is None:
            return None
        user, _ = self.lookup(token)
        return user

    # -- sessions ---------------------------------------------------------------------------
    def session_token(self, handler: web.RequestHandler) -> str | None:
        """Return the session token of the request's signed cookie, or ``None``."""
        raw = handler.get_secure_cookie(COOKIE_NAME, max_age_days=SESSION_HOURS / 24 + 0.01)
        if not raw or len(raw) > 128:
            return None
        return raw.decode("ascii", "replace")

    def lookup(self, token: str) -> tuple[User | None, str]:
        """Return (user or None, session hash) for a token, asking the records store at most every few seconds."""
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        learner = self.records.session_learner(token) if self.records is not None else None
        user = None if learner is None else User(username=learner.id, name=learner.name or learner.id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (now + SESSION_CACHE_SECONDS, user, token_hash(token))
        return user, token_hash(token)

    def forget(self, token: str) -> None:
        self._cache.pop(token, None)

    def session_hash(self, handler: web.RequestHandler) -> str:
        """Return the stored hash of the request's session."""
        token = self.session_token(handler)
        return token_hash(token) if token else ""

    def start_session(self, handler: web.RequestHandler, learner_id: str) -> None:
        token = self.store().open_session(learner_id, SESSION_HOURS * 3600)
        options: dict[str, Any] = {"httponly": True, "samesite": "Lax", "expires_days": SESSION_HOURS / 24,
                                   "path": handler.base_url}  # type: ignore[attr-defined]  # a JupyterHandler
        if handler.request.protocol == "https":
            options["secure"] = True
        handler.set_secure_cookie(COOKIE_NAME, token, **options)


def _duration(seconds: int, lang: str) -> str:
    """Say a wait in words: "45 秒" / "3 分钟" (``en``: "45 s" / "3 min")."""
    if seconds < 60:
        return t(f"{seconds} 秒", f"{seconds} s", lang)
    minutes = (seconds + 59) // 60
    return t(f"{minutes} 分钟", f"{minutes} min", lang)


def safe_next(handler: JupyterHandler, target: str | None) -> str:
    """Return ``target`` if it is a path on this server below its base URL, else the app's address."""
    default = handler.base_url + "learn/"
    if not target or len(target) > 2000:
        return default
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not parsed.path.startswith(handler.base_url) or target.startswith("//") \
            or "\\" in target:
        return default
    return target


class PlainErrors:
    """Answer an error with a short plain page: jupyter_server's error pages need a static path that
    Voila does not set, and would log a traceback for every refused request."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")  # type: ignore[attr-defined]
        self.set_header("Cache-Control", "no-store")  # type: ignore[attr-defined]
        self.finish(f"{status_code} {getattr(self, '_reason', '')}\n")  # type: ignore[attr-defined]


class SignInHandler(PlainErrors, JupyterHandler):
    """``GET /login``: the sign-in page; ``POST /login``: check the code, open a session."""

    def check_xsrf_cookie(self) -> None:  # the form carries _xsrf; checked in post()
        return super().check_xsrf_cookie()

    @property
    def provider(self) -> LearnerIdentityProvider:
        return self.identity_provider  # type: ignore[return-value]

    def page(self, message: str = "", status: int = 200, learner_id: str = "", level: str = "warning") -> None:
        lang = request_lang(self)
        text = TEXT[lang]
        other = "en" if lang == "zh-CN" else "zh-CN"
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.finish(_TEMPLATES.get_template("sign_in.html").render(
            t=text, lang=lang, other_lang=other, message=message, level=level, learner_id=learner_id[:MAX_ID_LENGTH],
            xsrf=self.xsrf_token.decode("ascii"), action=self.base_url + "login",
            next=safe_next(self, self.get_argument("next", None)), max_id=MAX_ID_LENGTH, max_code=MAX_CODE_LENGTH,
            static=self.base_url))

    @allow_unauthenticated
    def get(self) -> None:
        if self.current_user is not None and self.get_argument("next", None):
            self.redirect(safe_next(self, self.get_argument("next", None)))
            return
        notice = {"signed_out": "signed_out", "ended": "ended"}.get(self.get_argument("notice", ""), "")
        self.page(TEXT[request_lang(self)][notice] if notice else "", level="info")

    @allow_unauthenticated
    async def post(self) -> None:
        text = TEXT[request_lang(self)]
        raw_id = self.get_body_argument("learner_id", "") or ""
        code = self.get_body_argument("code", "") or ""
        if len(raw_id) > MAX_ID_LENGTH or len(code) > MAX_CODE_LENGTH:
            self.page(text["too_long"].format(n=MAX_ID_LENGTH), status=400)
            return
        learner_id = raw_id.strip()
        client = self.request.remote_ip or "?"
        wait = self.provider.throttle.wait_seconds(client, learner_id)
        if wait > 0:
            self.set_header("Retry-After", str(wait))
            self.page(text["throttled"].format(s=_duration(wait, request_lang(self))), status=429,
                      learner_id=learner_id)
            return
        records = self.provider.store()
        try:
            # PBKDF2 takes ~0.2 s of CPU: off the event loop, so other learners are not held up.
            learner = await asyncio.get_running_loop().run_in_executor(None, records.authenticate, learner_id, code)
        except AuthError:
            self.provider.throttle.failed(client, learner_id)
            self.log.info("sign-in refused for %r from %s", learner_id[:MAX_ID_LENGTH], client)
            self.page(text["wrong"], status=403, learner_id=learner_id)
            return
        self.provider.throttle.succeeded(client, learner_id)
        self.provider.start_session(self, learner.id)
        self.log.info("signed in: %s from %s", learner.id, client)
        self.redirect(safe_next(self, self.get_body_argument("next", None)))


class SignOutHandler(PlainErrors, JupyterHandler):
    """``POST /logout`` (or ``GET``): end the session, clear the cookie, show the sign-in page."""

    def _sign_out(self) -> None:
        provider: LearnerIdentityProvider = self.identity_provider  # type: ignore[assignment]
        token = provider.session_token(self)
        if token is not None:
            provider.store().end_session(token)
            provider.forget(token)
            server = self.settings.get("sopcoach_pages")
            if server is not None:
                server.end_session_pages(token_hash(token))
        self.clear_cookie(COOKIE_NAME, path=self.base_url)
        lang = request_lang(self)
        self.redirect(self.base_url + "login?notice=signed_out" + ("&lang=en" if lang == "en" else ""))

    @allow_unauthenticated
    def get(self) -> None:
        """Ask before signing out (a plain link must not end a session on its own)."""
        lang = request_lang(self)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(_TEMPLATES.get_template("sign_out.html").render(
            lang=lang, xsrf=self.xsrf_token.decode("ascii"), action=self.base_url + "logout",
            back=self.base_url + "learn/"))

    @allow_unauthenticated
    def post(self) -> None:
        self._sign_out()
