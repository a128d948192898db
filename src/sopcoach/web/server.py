"""The learner server: Voila's standalone app with sign-in at the door and one page per learner.

:class:`LearnerServer` is Voila's ``Voila`` application with its own routes:

``/login``, ``/logout``
    The sign-in page (:mod:`sopcoach.web.identity`). Behind JupyterHub (``--LearnerServer.hub``) the
    Hub's OAuth takes its place (:mod:`sopcoach.web.hub`): ``/oauth_callback``, and ``/logout`` on to the Hub's.
``/learn/`` and every address below it (``/learn/lessons/process``, ``/learn/exam``, ...)
    The one learner page, ``app.ipynb`` of the learner folder, rendered by Voila in a preheated
    kernel. The view is in the address; the page's router widget tells the kernel which view to
    show, so moving between views starts no kernel and a reload returns to the same view.
``/`` sends the browser to ``/learn/``.
``/api/kernels/<id>`` (GET), its ``/channels`` websocket, ``/voila/api/shutdown/<id>``
    Answer only the learner whose page the kernel serves (403 otherwise, 403 to anonymous).
Voila's static files, themes and lab extensions
    As Voila serves them. Nothing else: no notebook listing, no contents API, no other notebook.

Kernels are held to the cohort (:class:`PageKernels`): a learner has one page kernel at a time
(opening the page again, e.g. a reload or a second tab, stops the previous one), the kernel of a
closed page is stopped at once by the page's own shutdown beacon (the page gets the ``_xsrf``
cookie it needs, voila#1458) or by the culler within :data:`CULL_IDLE_S` + :data:`CULL_INTERVAL_S`
seconds, a kernel whose learner's session ended is stopped within :data:`SWEEP_S` seconds, and
past :attr:`LearnerServer.max_pages` open pages a newcomer is told that the server is busy (503).
A preheated kernel that died is never handed out.

The kernels' messages and the page renders share the server's one event loop; the kernel manager
and exporter of :mod:`sopcoach.web.serving` keep its work per message and per page small.

Requests whose ``Host`` is not one of the allowed names get 400 (DNS-rebinding and
Host-header attacks); set them with ``--LearnerServer.allowed_hosts``.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth import IdentityProvider
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.kernels.handlers import KernelHandler
from jupyter_server._tz import utcnow as jupyter_utcnow
from jupyter_server.utils import url_path_join
import tornado.ioloop
from tornado import web
from traitlets import Bool, Integer, List, Unicode
from voila.app import Voila, _kernel_id_regex
from voila.request_info_handler import RequestInfoSocketHandler
from voila.shutdown_kernel_handler import VoilaShutdownKernelHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from ..config import open_records
from ..content.playbook import load_playbook
from ..config import settings as sopcoach_settings
from ..errors import SchemaMismatch
from ..records.models import utcnow
from .launch import APP_NOTEBOOK, quiet_traitlets_notices
from .identity import _TEMPLATES, SESSION_HOURS, LearnerIdentityProvider, PlainErrors, request_lang
from .secret import load_secret
from .verify import VerifyHandler
from .look import font_awesome_handlers, use_sopcoach_template
from .serving import ActivityRelay, LearnerKernelManager
from .zygote import ZYGOTE_ENV

__all__ = ["LearnerServer", "PageKernels", "main"]

#: How often kernels of ended sessions and stopped kernels are swept (elapsed seconds).
SWEEP_S = 10


#: Tasks started and not awaited (kernel stops); held here until done, since the event loop keeps
#: only a weak reference to a task and may otherwise collect it before it finishes.
_BACKGROUND: set[asyncio.Future] = set()


def background(aw: Any) -> asyncio.Future:
    """Run the awaitable ``aw`` on the event loop without waiting for it; its failure is logged."""
    task = asyncio.ensure_future(aw)
    _BACKGROUND.add(task)

    def done(t: asyncio.Future) -> None:
        _BACKGROUND.discard(t)
        if not t.cancelled() and t.exception() is not None:
            logging.getLogger("LearnerServer").error("background task failed", exc_info=t.exception())
    task.add_done_callback(done)
    return task


class PageKernels:
    """The kernels that serve learners' pages: who owns which, one per learner, the cap.

    Parameters
    ----------
    server : LearnerServer
        Gives the kernel manager, the records store and the log.
    """

    def __init__(self, server: LearnerServer):
        self.server = server
        self.owner: dict[str, tuple[str, str]] = {}   # kernel id -> (learner id, session hash)
        self.by_learner: dict[str, str] = {}          # learner id -> kernel id

    @property
    def km(self) -> Any:
        return self.server.kernel_manager

    def alive(self) -> set[str]:
        return set(self.km.list_kernel_ids())

    def open_pages(self) -> int:
        """Return how many bound page kernels are running."""
        running = self.alive()
        return sum(1 for k in self.owner if k in running)

    def full(self, learner_id: str) -> bool:
        """Say whether a new page for ``learner_id`` would pass the cap (their own old page does not count)."""
        cap = self.server.max_pages
        if cap <= 0:
            return False
        mine = 1 if self.by_learner.get(learner_id) in self.owner else 0
        return self.open_pages() - mine >= cap

    def bind(self, kernel_id: str, learner_id: str, session_hash: str) -> None:
        """Record that ``kernel_id`` now serves ``learner_id``; stop the learner's previous page kernel."""
        self.server.records.bind_page(kernel_id, learner_id, session_hash)
        self.owner[kernel_id] = (learner_id, session_hash)
        previous = self.by_learner.get(learner_id)
        self.by_learner[learner_id] = kernel_id
        RequestInfoSocketHandler._cache.pop(kernel_id, None)  # sopcoach kernels never read it
        if previous and previous != kernel_id:
            self.server.log.info("learner %s opened a new page; stopping kernel %s", learner_id, previous)
            background(self.stop(previous))

    def owns(self, learner_id: str | None, kernel_id: str) -> bool:
        entry = self.owner.get(kernel_id)
        return learner_id is not None and entry is not None and entry[0] == learner_id

    async def stop(self, kernel_id: str) -> None:
        """Stop a page kernel (if still running) and forget it."""
        if kernel_id in self.alive():
            try:
                await ensure_async(self.km.shutdown_kernel(kernel_id))
            except Exception:
                self.server.log.debug("kernel %s was already gone", kernel_id)
        self.forget([kernel_id])

    def forget(self, kernel_ids: list[str]) -> None:
        for kid in kernel_ids:
            entry = self.owner.pop(kid, None)
            if entry is not None and self.by_learner.get(entry[0]) == kid:
                del self.by_learner[entry[0]]
            RequestInfoSocketHandler._cache.pop(kid, None)
        try:
            self.server.records.unbind_pages(list(kernel_ids))
        except Exception:
            self.server.log.exception("could not forget page kernels")

    def end_session_pages(self, session_hash: str) -> None:
        """Stop every page kernel of one session (sign-out)."""
        for kid, (_, sh) in list(self.owner.items()):
            if sh == session_hash:
                background(self.stop(kid))

    async def sweep(self) -> None:
        """Forget stopped kernels; stop kernels whose learner's session has ended."""
        running = self.alive()
        gone = [k for k in self.owner if k not in running]
        if gone:
            self.forget(gone)
        if self.server.identity_provider.hub_user is not None:
            return
        hashes = {sh for _, sh in self.owner.values()}
        records = self.server.records
        ended = hashes - records.live_sessions(hashes)
        for kid, (learner, sh) in list(self.owner.items()):
            if sh in ended:
                self.server.log.info("session of %s ended; stopping kernel %s", learner, kid)
                await self.stop(kid)


class _RequestKernels:
    """The kernel manager as one page request sees it: binds the kernel it hands out to the learner.

    Voila's handler asks the kernel manager for a preheated kernel (``get_rendered_notebook``) or a
    new one (``start_kernel``); both are intercepted here so that the kernel is bound to the
    signed-in learner before the page reaches the browser. A preheated kernel whose start or
    notebook run failed is shut down and the next one is taken.
    """

    def __init__(self, km: Any, on_kernel: Any, log: Any):
        self._km, self._on_kernel, self._log = km, on_kernel, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._km, name)

    async def get_rendered_notebook(self, notebook_name: str, **kwargs: Any) -> Any:
        for _ in range(4):
            task, cache, kernel_id = await self._km.get_rendered_notebook(notebook_name, **kwargs)
            if await _healthy(self._km, kernel_id, task):
                # It may have waited in the pool longer than the culler's idle limit; out of the pool
                # and not yet connected, it would be culled before the page connects.
                self._km.get_kernel(kernel_id).last_activity = jupyter_utcnow()
                self._on_kernel(kernel_id)
                return task, cache, kernel_id
            self._log.warning("preheated kernel %s died; not handing it out", kernel_id)
            background(ensure_async(self._km.shutdown_kernel(kernel_id, now=True)))
            if self._km.get_pool_size(notebook_name) == 0:
                break
        raise web.HTTPError(503, "no healthy kernel")

    async def start_kernel(self, **kwargs: Any) -> str:
        kernel_id = await ensure_async(self._km.start_kernel(**kwargs))
        self._on_kernel(kernel_id)
        return kernel_id


async def _healthy(km: Any, kernel_id: str, task: asyncio.Task) -> bool:
    """Say whether a preheated kernel is running and its notebook run has not failed."""
    if task.done() and (task.cancelled() or task.exception() is not None):
        return False
    try:
        return kernel_id in km and bool(await ensure_async(km.get_kernel(kernel_id).is_alive()))
    except Exception:
        return False


async def prune_pool(km: Any, notebook: str) -> None:
    """Drop preheated kernels that died from the front of ``notebook``'s pool."""
    pools = getattr(km, "_pools", {})
    pool = pools.get(notebook, [])
    while pool and pool[0].done():
        try:
            content = pool[0].result()
            ok = await _healthy(km, content["kernel_id"], content["task"])
        except Exception:
            ok, content = False, None
        if ok:
            return
        pool.pop(0)
        km.log.warning("dropped a dead preheated kernel from the pool of %s", notebook)
        if content is not None:
            background(ensure_async(km.shutdown_kernel(content["kernel_id"], now=True)))
        km.fill_if_needed(delay=0, notebook_name=notebook)


class LearnerPageHandler(PlainErrors, TornadoVoilaHandler):
    """``GET /learn/...``: the signed-in learner's one page (``app.ipynb``), or the busy page."""

    @property
    def pages(self) -> PageKernels:
        return self.settings["sopcoach_pages"]

    @property
    def kernel_manager(self) -> Any:
        km = self.settings["kernel_manager"]
        if getattr(self, "_bind_to", None) is None:
            return km
        return _RequestKernels(km, self._bind_kernel, self.log)

    def _bind_kernel(self, kernel_id: str) -> None:
        learner_id, session_hash = self._bind_to
        self.pages.bind(kernel_id, learner_id, session_hash)

    @web.authenticated
    async def get(self, view: str | None = None) -> None:
        learner = self.current_user.username
        if self.pages.full(learner):
            self.set_status(503)
            self.set_header("Retry-After", "60")
            self.set_header("Cache-Control", "no-store")
            here = self.request.uri or (self.base_url + "learn/")
            self.finish(_TEMPLATES.get_template("busy.html").render(lang=request_lang(self), retry=here))
            return
        self.xsrf_token  # noqa: B018 - sets the _xsrf cookie the page's shutdown beacon sends
        self.set_header("X-Frame-Options", "SAMEORIGIN")
        await prune_pool(self.settings["kernel_manager"], self.notebook_path)
        self._bind_to = (learner, self.identity_provider.session_hash(self))
        async for html in self.get_generator(path=None):
            self.write(html)
            self.flush()


class _OwnKernelMixin:
    """Refuse a kernel request unless the kernel serves the signed-in learner's page."""

    def _check_owner(self, kernel_id: str) -> None:
        user = self.current_user  # type: ignore[attr-defined]
        pages: PageKernels = self.settings["sopcoach_pages"]  # type: ignore[attr-defined]
        if user is None:
            raise web.HTTPError(403)
        if not pages.owns(user.username, kernel_id):
            raise web.HTTPError(403, "not your page")


class OwnKernelHandler(_OwnKernelMixin, KernelHandler):
    """``GET /api/kernels/<id>``: the kernel model, for its own learner only. No DELETE."""

    @web.authenticated
    async def get(self, kernel_id: str) -> None:
        self._check_owner(kernel_id)
        await super().get(kernel_id)  # type: ignore[misc]  # jupyter_server annotates get() as maybe returning None

    async def delete(self, kernel_id: str) -> None:
        raise web.HTTPError(405)


class OwnKernelWebsocketHandler(PlainErrors, _OwnKernelMixin, VoilaKernelWebsocketHandler):
    """The kernel websocket, for its own learner only (anonymous: 403 before any upgrade)."""

    async def pre_get(self) -> None:
        self._check_owner(self.kernel_id)
        await super().pre_get()


class OwnShutdownHandler(PlainErrors, _OwnKernelMixin, VoilaShutdownKernelHandler):
    """``POST /voila/api/shutdown/<id>``: the page's beacon on close, for its own learner only."""

    @web.authenticated
    async def post(self, kernel_id: str) -> None:
        self._check_owner(kernel_id)
        await self.settings["sopcoach_pages"].stop(kernel_id)
        self.set_status(204)
        self.finish()


class RootHandler(PlainErrors, JupyterHandler):
    """``GET /``: on to the learner page (the sign-in page first when needed)."""

    def get(self) -> None:
        query = self.request.query
        self.redirect(self.base_url + "learn/" + (f"?{query}" if query else ""))


class NotFoundHandler(PlainErrors, web.RequestHandler):
    """Every other address on an allowed host: 404."""

    def prepare(self) -> None:
        raise web.HTTPError(404)


class UnknownHostHandler(web.RequestHandler):
    """Every request whose Host header is not an allowed name."""

    def prepare(self) -> None:
        self.set_status(400)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("unknown host: this server answers only to the names it is configured with\n")


def host_pattern(names: list[str]) -> str:
    """Return the Tornado host regex (host name without port) matching exactly ``names``.

    Examples
    --------
    >>> import re
    >>> p = host_pattern(["learn.example.com", "127.0.0.1", "::1"])
    >>> bool(re.match(p, "learn.example.com")), bool(re.match(p, "evil.example")), bool(re.match(p, "[::1]"))
    (True, False, True)
    """
    alts = []
    for name in names:
        alts.append(re.escape(name.lower()))
        if ":" in name:
            alts.append(re.escape(f"[{name.lower()}]"))
    return "^(" + "|".join(alts) + ")$"


class LearnerServer(Voila):
    """Voila serving the learner page only, with sign-in at the door and kernels held to the cohort."""

    name = "sopcoach-learner-server"

    max_pages = Integer(
        200, config=True,
        help="Open learner pages (kernels) allowed at once; a newcomer past it is told the server is busy. 0: no cap.",
    )
    allowed_hosts = List(
        Unicode(), [], config=True,
        help="Host names (or addresses) the server answers to, besides loopback; e.g. the reverse proxy's public name.",
    )
    trust_xheaders = Bool(
        False, config=True,
        help="Take the client address and scheme from X-Forwarded-For/X-Real-Ip/X-Forwarded-Proto (behind a reverse proxy).",
    )
    db_url = Unicode("", config=True, help="SQLAlchemy URL of the records store.")
    log_format = Unicode("[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s", config=True,
                         help="The log line: level, time and source before each message.")
    fork_kernels = Bool(
        True, config=True,
        help="Start page kernels by forking a process that has imported them already (sopcoach.web.zygote).",
    )
    hub = Bool(
        False, config=True,
        help="Run as a JupyterHub user's server: the Hub's OAuth lets in only the server's owner (sopcoach.web.hub).",
    )

    def initialize(self, argv: Any = None) -> None:
        _TEMPLATES.globals["look"] = use_sopcoach_template()  # before Voila looks for its template
        super().initialize(argv)
        if not self.hub:
            # Outside a Hub the learner is whoever signed in: a JUPYTERHUB_USER left in the environment
            # must not reach the page kernels (forked from the zygote below), which would take it for the learner.
            for name in [n for n in os.environ if n.startswith("JUPYTERHUB_")]:
                del os.environ[name]
        s = sopcoach_settings()
        if self.db_url:
            s = replace(s, db_url=self.db_url, db_origin="--LearnerServer.db_url")
        try:  # before anything starts: a database at another schema revision is refused in one line
            self.records = open_records(s)
        except SchemaMismatch as exc:
            self.log.critical("%s", exc)
            self.exit(1)
        #: Days on the certificate check page are the company's (as on the PDF).
        self.company_timezone = str(load_playbook(s.playbook_dir).calendar.timezone)
        self.log.addFilter(_quiet_voila_notices)
        logging.getLogger("tornado.general").addFilter(_quiet_voila_notices)
        self.voila_configuration.multi_kernel_manager_class = LearnerKernelManager
        self.kernel_websocket_connection_class = ActivityRelay
        self.zygote = self._start_zygote() if self.fork_kernels else None
        self.identity_provider_class: type[IdentityProvider]
        if self.hub:
            from .hub import HubLearnerIdentity  # noqa: PLC0415 - optional dependency (jupyterhub), only behind a Hub
            self.identity_provider_class = HubLearnerIdentity
            self.cookie_secret = secrets.token_bytes(32)  # the Hub's OAuth, not a session, survives a restart
        else:
            self.identity_provider_class = LearnerIdentityProvider
            self.cookie_secret = load_secret(s.home)  # sessions survive a restart

    def init_settings(self) -> dict:
        settings = super().init_settings()
        self.identity_provider.records = self.records
        hub_user = self.identity_provider.hub_user
        if hub_user is not None:
            # behind JupyterHub the Hub's user may be new here (the page binding needs its learner row),
            # or enrolled under another case of the same id (the Hub lowercases user names)
            self.identity_provider.learner_id = self.records.hub_learner(hub_user).id
        self.pages = PageKernels(self)
        # Bindings older than any session belong to kernels of earlier runs.
        self.records.forget_old_pages(utcnow() - timedelta(hours=SESSION_HOURS))
        settings["sopcoach_pages"] = self.pages
        settings["xsrf_cookie_kwargs"] = {"samesite": "Lax", "path": self.base_url}
        return settings

    def host_names(self) -> list[str]:
        names = ["localhost", "127.0.0.1", "::1", *self.allowed_hosts]
        try:
            if not ipaddress.ip_address(self.ip).is_unspecified:
                names.append(self.ip)
        except ValueError:
            if self.ip:
                names.append(self.ip)
        return sorted({n.lower() for n in names if n})

    def init_handlers(self) -> list:
        voila_handlers = super().init_handlers()
        keep = ("/voila/templates/", "/voila/static/", "/voila/api/themes/", "/voila/labextensions/")
        handlers: list = [h for h in voila_handlers if any(k in h[0] for k in keep)]
        base = self.server_url
        # the sign-in routes live under the base URL too (/PREFIX/login behind a reverse proxy)
        handlers += [(url_path_join(base, path), *rest) for path, *rest in self.identity_provider.get_handlers()]
        handlers += [
            (url_path_join(base, rf"/api/kernels/{_kernel_id_regex}"), OwnKernelHandler),
            (url_path_join(base, rf"/api/kernels/{_kernel_id_regex}/channels"), OwnKernelWebsocketHandler),
            (url_path_join(base, rf"/voila/api/shutdown/{_kernel_id_regex}"), OwnShutdownHandler),
            *font_awesome_handlers(base),
            (url_path_join(base, r"/learn(/.*)?"), LearnerPageHandler, {
                "notebook_path": APP_NOTEBOOK,
                "template_paths": self.template_paths,
                "config": self.config,
                "voila_configuration": self.voila_configuration,
            }),
            (url_path_join(base, r"/verify"), VerifyHandler,
             {"records": self.records, "timezone": self.company_timezone}),
            (base, RootHandler),
            # any other address on an allowed host: 404 (not the next host rule's "unknown host")
            (r".*", NotFoundHandler),
        ]
        return handlers

    def start(self) -> None:
        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        settings = self.init_settings()
        self.app = web.Application(**settings)
        self.app.settings.update(self.tornado_settings)
        self.app.add_handlers(host_pattern(self.host_names()), self.init_handlers())
        self.app.add_handlers(r".*$", [(r".*", UnknownHostHandler)])
        self.app.listen(self.port, self.ip, xheaders=self.trust_xheaders)
        self.log.info("sopcoach learner server at http://%s:%s%s (answers to: %s)", self.ip, self.port,
                      self.base_url, ", ".join(self.host_names()))
        self.ioloop = tornado.ioloop.IOLoop.current()
        tornado.ioloop.PeriodicCallback(self._sweep, SWEEP_S * 1000).start()
        try:
            self.ioloop.start()
        except KeyboardInterrupt:
            self.log.info("Stopping...")
        finally:
            self.stop()

    def _start_zygote(self) -> Any:
        """Start the kernel zygote and wait (up to 30 s) until it listens; ``None`` if it does not."""
        folder = tempfile.mkdtemp(prefix="sopcoach-zygote-")
        path = os.path.join(folder, "zygote.sock")
        proc = subprocess.Popen([sys.executable, "-m", "sopcoach.web.zygote", path, str(os.getpid())])
        deadline = time.monotonic() + 30
        while not os.path.exists(path):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.log.warning("kernel zygote did not start; kernels start as new processes")
                proc.kill()
                return None
            time.sleep(0.05)
        os.environ[ZYGOTE_ENV] = path
        os.environ["JUPYTER_DEFAULT_PROVISIONER_NAME"] = "sopcoach-fork"
        return proc

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            zygote = getattr(self, "zygote", None)
            if zygote is not None and zygote.poll() is None:
                zygote.terminate()
                socket_path = os.environ.get(ZYGOTE_ENV)
                if socket_path:
                    shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)

    async def _sweep(self) -> None:
        try:
            await self.pages.sweep()
        except Exception:
            self.log.exception("page sweep failed")


def _quiet_voila_notices(record: logging.LogRecord) -> bool:
    """Drop notices that say nothing to whoever runs the learner server.

    Voila's per-page "Notebook app.ipynb is not trusted" (the server runs only its own app), and
    tornado's "websocket_ping_timeout cannot be longer than the websocket_ping_interval" (jupyter_server
    pings every 30 s and gives a pong 90 s by its own check, which needs the longer value).
    """
    msg = str(record.msg)
    return not (msg.startswith("Notebook %s is not trusted") or msg.startswith("The websocket_ping_timeout"))


def main(argv: list[str] | None = None) -> None:
    """Run the learner server (``python -m sopcoach.web.server ROOT [options]``)."""
    quiet_traitlets_notices()
    LearnerServer.launch_instance(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
