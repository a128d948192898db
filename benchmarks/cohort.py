"""A cohort against one learner server: view-ready and click-to-saved times, kernels, memory and CPU.

Run ``python benchmarks/cohort.py --learners N [--browsers B] [--arrive-over S] [--json OUT]``
(defaults: B=5, S=60 seconds; ``--arrive-over 0`` starts everyone at once).

What happens, in one run:

1. **Baseline.** A bare one-button Voila notebook in a temporary folder, served by plain
   ``python -m voila`` (no preheating), is opened a few times in Chromium: time to interactive
   (the button visible and enabled), click to output, and the server's RSS with the page open.
2. **Server start.** A fresh ``SOPCOACH_HOME`` in a temporary folder gets N learners (plus one
   probe learner) with known access codes; every lesson is completed in the records except one
   practice question of the last lesson visited, which each learner answers during the run (so the
   exam's lesson gate opens through the app, as for a real learner). One learner server is started
   (:func:`sopcoach.web.launch.learner_command`, 127.0.0.1, a free port). Measured: seconds from the
   process start until ``GET /login`` answers, and until a first learner is served (sign-in and
   home view ready, through the protocol client below).
3. **Cohort.** N learners arrive evenly over S seconds. B of them are Chromium contexts (Playwright)
   and measure what a person sees (ready markers in the page). The others are protocol clients in
   this one asyncio process: they sign in over HTTP (``GET /login`` for the ``_xsrf`` cookie, POST the
   form), load the page (``GET /learn/``; the kernel id is in the page), fetch the kernel model,
   open the kernel websocket (protocol ``v1.kernel.websocket.jupyter.org``) and send the messages
   the page sends: ``kernel_info_request``, the widget control comm's ``request_states``, the
   router's ``navigate`` (the view is ready when the kernel answers with ``address``), button
   clicks and value updates, a ping every 5 s, and the shutdown beacon when the page closes.
   Each learner: sign in, home, 3 lessons, one practice answer with its check button, home, exam,
   start, 10 answers, reload (a new page and kernel; resume), 5 answers, review, submit. A think
   time (``--think``, jittered) separates actions; it is never part of a measured figure.
4. **Samples** every 0.5 s: page kernels (``ipykernel`` children of the server), RSS of the server
   and its kernels, and CPU seconds of the server process, of its kernels and of the clients (this
   process: protocol clients and the Playwright driver side; the browsers: Chromium and
   Playwright's driver); the CPU the rest of the machine used meanwhile is reported too, since a
   shared machine slows everything. Two probes, also every 0.5 s, tell where time goes: the time
   of ``GET /login`` (the server's one event loop) and the wait for the records' SQLite write lock
   (``BEGIN IMMEDIATE``, released at once). The slowest measurements are printed with what the
   server was doing then, and the server's log is read for kernels culled after being handed to a
   page, IOPub timeouts while preheating, dead preheated kernels and busy (503) pages.

Measured per learner: *first view* (sign-in POST, or the sign-in click, until the home view is
ready), *view switch* (``navigate`` sent, or link clicked, until the view is ready),
*click to saved* (answer given until the kernel has handled it and the page shows "已保存/Saved";
for the practice question: check clicked until the feedback shows), *question* (start/next/resume
clicked until the question's controls are there), *reload* (reload until the exam view is ready)
and *submit* (confirm clicked until the result shows). Errors are any failure: an HTTP error or
503, a timeout, a refusal shown in the page, a closed websocket, a missing widget, or fewer stored
answers than given (checked in the records at the end). A learner stops at its first error; the
error names the step, and for a browser what the page showed. ``--keep`` keeps the temporary folder
(server logs).

The script prints figures and ratios against the baseline measured in the same run; it never
judges them. It stops every process it started by pid, whatever happens, and each of its waits is
bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookies
import itertools
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
try:
    import sopcoach  # noqa: F401
except ImportError:  # not installed: run from the checkout
    sys.path.insert(0, str(REPO / "src"))

import nbformat
import psutil
from _tti import CHROMIUM, CHROMIUM_ARGS, NOT_LOOPBACK
from _tti import stop_process as stop_server
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from sopcoach.web.launch import POOL_SIZE, free_port, learner_command

WS_PROTOCOL = "v1.kernel.websocket.jupyter.org"
WIDGET_VIEW = b"application/vnd.jupyter.widget-view+json"  # the app's output in the page
LEARNER_ROOT = REPO / "notebooks" / "learner"
SAMPLE_EVERY_S = 0.5
PING_EVERY_S = 5.0          # as the router's page script
CONTROL_COMM_PATIENCE_S = 4.0  # the page gives up on the control comm after this and loads models one by one

BARE = "bare.ipynb"
BARE_CELL = (
    'import ipywidgets as w; b = w.Button(description="Go"); out = w.Output(); '
    'b.on_click(lambda _: out.append_stdout("clicked")); display(w.VBox([b, out]))'
)

# Button labels of the exam view (both languages; the server's default language decides).
START = ("开始考试", "Start the exam", "继续考试", "Resume the exam")
RESUME = ("继续考试", "Resume the exam")
NEXT = ("下一题", "Next")
REVIEW = ("检查并提交", "Review and submit")
SUBMIT = ("提交试卷", "Submit")
CONFIRM = ("确认提交", "Yes, submit")
SAVED = ("已保存", "Saved")
MESSAGE = re.compile(r'<div class="sopcoach-msg-(info|warning|danger)">(.*?)</div>', re.DOTALL)


class Failure(Exception):
    """A learner's step failed (what a person would call an error)."""


# -- the plan every learner follows ----------------------------------------------------------------
@dataclass
class Plan:
    """What the learners do, read from the content: which lessons, which practice question."""

    lessons: list[str]                 # lesson ids visited, in order
    markers: dict[str, str]            # lesson id -> css class only that lesson's view has
    practice_lesson: str
    practice_qid: str
    practice_label: str                # the correct option's label, as the page shows it
    lang: str


def make_plan(inst: Any) -> Plan:
    from sopcoach.i18n import current_lang, t
    from sopcoach.lessons.progress import LessonService
    service = LessonService(inst)
    lessons = list(service.lessons())[:3]
    lang = current_lang()
    markers = {x.id: f"sopcoach-practice-{service.questions(x.id)[0].id}" for x in lessons}
    last = lessons[-1]
    q = next((q for q in service.questions(last.id)
              if q.type in ("single_choice", "true_false") and q.variant is None), None)
    if q is None:
        raise SystemExit(f"lesson {last.id} has no single-choice or true/false practice question")
    if q.type == "true_false":
        label = t("正确", "True", lang) if q.answer else t("错误", "False", lang)
    else:
        label = next(o.text.get(lang) for o in q.options if o.correct)
    return Plan([x.id for x in lessons], markers, last.id, q.id, label, lang)


def prepare_records(inst: Any, ids: list[str], plan: Plan) -> None:
    """Enroll ``ids`` (code ``code-<id>``) and complete every lesson but ``plan``'s practice question."""
    from sopcoach.certification.itemstats import simulated_response
    from sopcoach.lessons.progress import LessonService
    service = LessonService(inst)
    for learner in ids:
        inst.records.enroll(learner, f"Learner {learner}", code=f"code-{learner}")
        for lesson in service.lessons():
            for q in service.questions(lesson.id):
                if q.id != plan.practice_qid:
                    shown, params = service.variant(q.id)  # a template: one fresh variant
                    service.answer(learner, lesson.id, q.id, simulated_response(shown, True), params=params)


# -- processes ---------------------------------------------------------------------------------------
def start_process(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def stop_process(proc: subprocess.Popen | None) -> None:
    """Stop ``proc`` (SIGTERM, then SIGKILL) and any of its children still running, by pid."""
    if proc is None:
        return
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    stop_server(proc, timeout=15)
    for child in children:  # kernels the server did not stop (it was killed)
        try:
            if child.is_running():
                child.kill()
        except psutil.Error:
            pass


async def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Poll ``url`` until it answers 200; return when (perf_counter)."""
    client = AsyncHTTPClient()
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            r = await client.fetch(url, raise_error=False, request_timeout=2, connect_timeout=1)
            if r.code == 200:
                return time.perf_counter()
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


# -- sampling ----------------------------------------------------------------------------------------
class Sampler:
    """Every 0.5 s: kernels, RSS and CPU of the server tree and of the clients (by pid)."""

    def __init__(self) -> None:
        self.server: psutil.Process | None = None
        self.me = psutil.Process()
        # t, kernels, server MB, kernels MB, CPU s of the live server tree, CPU s of the server process alone
        self.samples: list[tuple[float, int, float, float, float, float]] = []
        self.probes: list[tuple[float, float]] = []  # (t, seconds) of GET /login: the server's responsiveness
        self.db_waits: list[tuple[float, float]] = []  # (t, seconds) to get the records' write lock
        self.cpu: dict[int, tuple[str, float]] = {}               # pid -> (role, last cpu seconds)
        self.mark: dict[int, float] = {}
        self._stop = False

    def watch(self, pid: int) -> None:
        self.server = psutil.Process(pid)

    def _cpu_of(self, p: psutil.Process) -> float:
        c = p.cpu_times()
        return c.user + c.system

    def sample(self) -> None:
        now = time.perf_counter()
        server_tree: set[int] = set()
        kernels = 0
        server_mb = kernels_mb = tree_cpu = server_cpu = 0.0
        if self.server is not None:
            try:
                procs = [self.server, *self.server.children(recursive=True)]
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                    cpu = self._cpu_of(p)
                    is_kernel = p is not self.server and "ipykernel" in " ".join(p.cmdline())
                except psutil.Error:
                    continue
                server_tree.add(p.pid)
                tree_cpu += cpu
                if p is self.server:
                    server_mb += rss
                    server_cpu = cpu
                else:
                    kernels_mb += rss
                    kernels += is_kernel
                self.cpu[p.pid] = ("server" if p is self.server else "kernels", cpu)
        try:
            self.cpu[self.me.pid] = ("protocol", self._cpu_of(self.me))
            mine = self.me.children(recursive=True)
        except psutil.Error:
            mine = []
        for p in mine:
            if p.pid in server_tree or (self.server is not None and p.pid == self.server.pid):
                continue
            prev = self.cpu.get(p.pid)
            if prev is not None and prev[0] in ("server", "kernels"):
                continue
            try:
                self.cpu[p.pid] = ("browser", self._cpu_of(p))
            except psutil.Error:
                pass
        if self.server is not None:
            self.samples.append((now, kernels, server_mb, kernels_mb, tree_cpu, server_cpu))

    def kernels_now(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def quiet(self, cores: float = 0.15, seconds: float = 2.0) -> bool:
        """Say whether the server and its kernels used less than ``cores`` over the last ``seconds``."""
        recent = [s for s in self.samples if s[0] >= self.samples[-1][0] - seconds] if self.samples else []
        if len(recent) < 2 or recent[-1][0] - recent[0][0] < seconds * 0.75:
            return False
        return (recent[-1][4] - recent[0][4]) / (recent[-1][0] - recent[0][0]) < cores

    @staticmethod
    def machine_busy() -> float:
        """CPU seconds the whole machine has been busy since boot (every process, every core; not steal)."""
        c = psutil.cpu_times()
        return sum(c) - c.idle - getattr(c, "iowait", 0.0) - getattr(c, "steal", 0.0)

    @staticmethod
    def machine_steal() -> float:
        """CPU seconds a virtual machine's host has taken from this machine since boot (0 on bare metal)."""
        return getattr(psutil.cpu_times(), "steal", 0.0)

    def mark_cpu(self) -> None:
        """Remember every process's CPU so far (the cohort's CPU is counted from here)."""
        self.sample()
        self.mark = {pid: cpu for pid, (_, cpu) in self.cpu.items()}
        self.mark_busy = self.machine_busy()
        self.mark_steal = self.machine_steal()

    def others_since_mark(self) -> float:
        """CPU seconds of processes that are not this run's (other work on the machine) since the mark."""
        return self.machine_busy() - self.mark_busy - sum(self.cpu_since_mark().values())

    def cpu_since_mark(self) -> dict[str, float]:
        out = {"server": 0.0, "kernels": 0.0, "protocol": 0.0, "browser": 0.0}
        for pid, (role, cpu) in self.cpu.items():
            out[role] += cpu - self.mark.get(pid, 0.0)
        return out

    def window(self, t0: float, t1: float) -> list[tuple[float, int, float, float]]:
        return [s for s in self.samples if t0 <= s[0] <= t1]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop:
            await loop.run_in_executor(None, self.sample)
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def probe(self, url: str) -> None:
        """Every 0.5 s, time ``GET url`` (a cheap page served by the server's one event loop)."""
        client = AsyncHTTPClient()
        while not self._stop:
            t0 = time.perf_counter()
            try:
                await client.fetch(url, raise_error=False, request_timeout=30, connect_timeout=30)
                self.probes.append((t0, time.perf_counter() - t0))
            except Exception:
                self.probes.append((t0, 30.0))
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def probe_db(self, path: Path) -> None:
        """Every 0.5 s, time how long the SQLite records' write lock takes to get (then let it go at once).

        The records store opens every transaction, reads included, with ``BEGIN IMMEDIATE``: one
        writer at a time across the server and every kernel. A long wait here means learners' saves
        and view switches queue for the database.
        """
        loop = asyncio.get_running_loop()
        con = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)

        def once() -> tuple[float, float]:
            t0 = time.perf_counter()
            try:
                con.execute("BEGIN IMMEDIATE")
                waited = time.perf_counter() - t0
                con.execute("ROLLBACK")
            except sqlite3.OperationalError:  # still locked after 30 s
                waited = time.perf_counter() - t0
            return t0, waited

        try:
            while not self._stop:
                self.db_waits.append(await loop.run_in_executor(None, once))
                await asyncio.sleep(SAMPLE_EVERY_S)
        finally:
            con.close()

    def stop(self) -> None:
        self._stop = True


# -- results -------------------------------------------------------------------------------------------
@dataclass
class Result:
    learner: str
    kind: str  # "browser" or "protocol"
    first_view: float | None = None
    views: list[float] = field(default_factory=list)
    saves: list[float] = field(default_factory=list)
    practice: list[float] = field(default_factory=list)
    questions: list[float] = field(default_factory=list)
    reload: float | None = None
    submit: float | None = None
    answers_given: int = 0
    errors: list[str] = field(default_factory=list)
    done: bool = False
    step: str = "start"  # what the learner was doing (named in an error)
    traffic: list[tuple[int, int]] = field(default_factory=list)  # (messages, bytes) a view switch brought
    slow_control_comm: int = 0  # pages whose widget state took longer than the page waits for it
    kernel_stderr: list[str] = field(default_factory=list)
    events: list[tuple[str, float, float]] = field(default_factory=list)  # (metric, start perf_counter, seconds)

    def add(self, metric: str, t0: float, seconds: float) -> None:
        """Record one measurement that started at ``t0``."""
        value = getattr(self, metric)
        if isinstance(value, list):
            value.append(seconds)
        else:
            setattr(self, metric, seconds)
        self.events.append((metric, t0, seconds))


# -- protocol client ------------------------------------------------------------------------------------
class Http:
    """An HTTP client with a cookie jar, for one learner."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base = base
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.client = AsyncHTTPClient()

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    async def fetch(self, path: str, method: str = "GET", body: dict | None = None) -> Any:
        headers = {"Cookie": self.cookie_header()} if self.cookies else {}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = HTTPRequest(self.base + path, method=method, body=data, headers=headers, follow_redirects=False,
                          request_timeout=self.timeout, connect_timeout=self.timeout)
        r = await self.client.fetch(req, raise_error=False)
        if r.code == 599:
            raise Failure(f"{method} {path}: {r.error}")
        for raw in r.headers.get_list("Set-Cookie"):
            jar = http.cookies.SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel.value and not morsel["expires"].startswith(("Thu, 01 Jan 1970",)) \
                        and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return r


def _pack(obj: Any) -> bytes:
    return json.dumps(obj).encode()


class KernelPage:
    """One learner page as the protocol client holds it: the kernel websocket and the widget models."""

    def __init__(self, http: Http, kernel_id: str, timeout: float) -> None:
        self.http = http
        self.kernel_id = kernel_id
        self.timeout = timeout
        self.session = uuid.uuid4().hex
        self.models: dict[str, dict] = {}          # model id -> state
        self.idle: dict[str, asyncio.Future] = {}  # msg id -> future (time of idle)
        self.replies: dict[str, asyncio.Future] = {}
        self.addresses: list[tuple[str, asyncio.Future]] = []
        self.states: asyncio.Future | None = None
        self.closed = False
        self.ws: Any = None
        self.reader: asyncio.Task | None = None
        self.pinger: asyncio.Task | None = None
        self.router: str | None = None
        self.stderr: list[str] = []  # what the kernel wrote to stderr (the page shows it nowhere)
        self.gone: set[str] = set()      # widgets the kernel closed
        self.received = [0, 0]           # messages, bytes from the kernel
        self.controls: set[str] = set()  # control comms this page opened

    async def connect(self) -> None:
        base = self.http.base
        url = base.replace("http://", "ws://", 1) + f"/api/kernels/{self.kernel_id}/channels?session_id={self.session}"
        req = HTTPRequest(url, headers={"Cookie": self.http.cookie_header(), "Origin": base},
                          connect_timeout=self.timeout, request_timeout=self.timeout)
        try:
            self.ws = await websocket_connect(req, subprotocols=[WS_PROTOCOL])
        except Exception as exc:
            raise Failure(f"websocket to kernel refused: {exc}") from None
        self.reader = asyncio.ensure_future(self._read())

    def send(self, msg_type: str, content: dict, metadata: dict | None = None, track: bool = False) -> str:
        """Send a shell message; with ``track``, :meth:`wait_idle` can wait for the kernel to finish it."""
        if self.closed:
            raise Failure("websocket closed")
        header = {"msg_id": uuid.uuid4().hex, "username": "", "session": self.session,
                  "date": datetime.now(timezone.utc).isoformat(), "msg_type": msg_type, "version": "5.3"}
        msg = {"header": header, "parent_header": {}, "metadata": metadata or {}, "content": content}
        if track:
            self.idle[header["msg_id"]] = asyncio.get_running_loop().create_future()
        try:
            sent = self.ws.write_message(serialize_msg_to_ws_v1(msg, "shell", pack=_pack), binary=True)
        except Exception as exc:
            self.closed = True
            raise Failure(f"websocket closed: {type(exc).__name__}") from None
        sent.add_done_callback(lambda f: f.exception())  # a failed write shows as a closed socket
        return header["msg_id"]

    async def wait_idle(self, msg_id: str) -> float:
        fut = self.idle[msg_id]
        try:
            return await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError:
            raise Failure(f"kernel did not finish a message within {self.timeout:.0f} s") from None
        finally:
            self.idle.pop(msg_id, None)

    def _fail_all(self, why: str) -> None:
        for fut in [*self.idle.values(), *self.replies.values(), *(f for _, f in self.addresses),
                    *([self.states] if self.states else [])]:
            if not fut.done():
                fut.set_exception(Failure(why))

    async def _read(self) -> None:
        while True:
            frame = await self.ws.read_message()
            if frame is None:
                self.closed = True
                self._fail_all(f"websocket closed by the server ({self.ws.close_code} {self.ws.close_reason})")
                return
            now = time.perf_counter()
            self.received[0] += 1
            self.received[1] += len(frame)
            try:
                if isinstance(frame, str):
                    msg = json.loads(frame)
                    header, parent, content = msg["header"], msg["parent_header"], msg["content"]
                else:
                    _, parts = deserialize_msg_from_ws_v1(frame)
                    header, parent, content = json.loads(parts[0]), json.loads(parts[1]), json.loads(parts[3])
                self._dispatch(now, header.get("msg_type"), parent, content)
            except Exception as exc:
                self._fail_all(f"bad message from the kernel: {type(exc).__name__}: {exc}")

    def _dispatch(self, now: float, mtype: str, parent: dict, content: dict) -> None:
        if mtype == "status":
            if content.get("execution_state") == "idle":
                fut = self.idle.get(parent.get("msg_id"))
                if fut is not None and not fut.done():
                    fut.set_result(now)
        elif mtype == "comm_open":
            data = content.get("data") or {}
            if "state" in data:
                self.models[content["comm_id"]] = dict(data["state"])
        elif mtype == "comm_msg":
            data = content.get("data") or {}
            method = data.get("method")
            cid = content.get("comm_id")
            if method in ("update", "echo_update"):
                self.models.setdefault(cid, {}).update(data.get("state") or {})
            elif method == "update_states":
                for mid, model in (data.get("states") or {}).items():
                    self.models[mid] = dict(model.get("state", {}))
                if self.states is not None and not self.states.done():
                    self.states.set_result(now)
            elif method == "custom":
                msg = data.get("content") or {}
                if isinstance(msg, dict) and msg.get("type") == "address":
                    for path, fut in list(self.addresses):
                        if msg.get("path") == path and not fut.done():
                            fut.set_result(now)
        elif mtype == "comm_close":
            self.models.pop(content.get("comm_id"), None)
            self.gone.add(content.get("comm_id"))
        elif mtype == "stream" and content.get("name") == "stderr":
            text = str(content.get("text", ""))
            m = re.search(r"No such comm: ([0-9a-f]+)", text)
            if m:  # say which comm it was: a widget the kernel had closed, the control comm, or other
                cid = m.group(1)
                what = ("the control comm" if cid in self.controls else "a closed widget" if cid in self.gone
                        else "a live widget" if cid in self.models else "an unknown comm")
                text = f"No such comm ({what})"
            self.stderr.append(text[:200])
        elif mtype == "kernel_info_reply":
            fut = self.replies.get(parent.get("msg_id"))
            if fut is not None and not fut.done():
                fut.set_result(now)

    async def start(self) -> bool:
        """Do what the page does once connected; return whether the widget state came in time."""
        loop = asyncio.get_running_loop()
        mid = self.send("kernel_info_request", {})
        self.replies[mid] = loop.create_future()
        try:
            await asyncio.wait_for(self.replies[mid], self.timeout)
        except asyncio.TimeoutError:
            raise Failure(f"no kernel_info_reply within {self.timeout:.0f} s") from None
        t0 = time.perf_counter()
        self.states = loop.create_future()
        control = uuid.uuid4().hex
        self.controls.add(control)
        self.send("comm_open", {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
                  {"version": "1.0.0"})
        self.send("comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
        try:
            await asyncio.wait_for(self.states, self.timeout)
        except asyncio.TimeoutError:
            raise Failure("no widget state from the kernel (request_states)") from None
        in_time = time.perf_counter() - t0 <= CONTROL_COMM_PATIENCE_S
        self.send("comm_close", {"comm_id": control, "data": {}})
        self.router = next((mid for mid, s in self.models.items()
                            if s.get("_model_name") == "AnyModel" and "base" in s and "lang" in s), None)
        if self.router is None:
            raise Failure("no router widget on the page")
        self.pinger = asyncio.ensure_future(self._ping())
        return in_time

    async def _ping(self) -> None:
        while not self.closed:
            await asyncio.sleep(PING_EVERY_S)
            if self.closed or self.router is None:
                return
            try:
                self.send("comm_msg", {"comm_id": self.router, "data": {"method": "custom", "content": {"type": "ping"}}})
            except Failure:
                return

    async def navigate(self, path: str, kind: str, lang: str = "") -> float:
        """Report an address to the router; return when the kernel answers with that address."""
        fut = asyncio.get_running_loop().create_future()
        self.addresses.append((path, fut))
        try:
            self.send("comm_msg", {"comm_id": self.router, "data": {
                "method": "custom", "content": {"type": "navigate", "kind": kind, "path": path, "lang": lang}}})
            return await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError:
            raise Failure(f"no address {path!r} from the kernel within {self.timeout:.0f} s") from None
        finally:
            self.addresses.remove((path, fut))

    # -- widgets ---------------------------------------------------------------------------------
    def with_class(self, css: str) -> str | None:
        return next((mid for mid, s in self.models.items() if css in (s.get("_dom_classes") or ())), None)

    def button(self, labels: tuple[str, ...]) -> str | None:
        return next((mid for mid, s in self.models.items()
                     if s.get("_model_name") == "ButtonModel" and s.get("description") in labels), None)

    def children(self, mid: str) -> list[str]:
        return [c.removeprefix("IPY_MODEL_") for c in self.models.get(mid, {}).get("children") or ()]

    def descendants(self, mid: str) -> list[str]:
        out, stack = [], [mid]
        while stack and len(out) < 500:
            m = stack.pop(0)
            out.append(m)
            stack.extend(self.children(m))
        return out

    def messages(self) -> list[tuple[str, str]]:
        """The app's short messages shown now, as (level, text): ``<div class="sopcoach-msg-LEVEL">``."""
        out = []
        for s in self.models.values():
            if s.get("_model_name") == "HTMLModel":
                out += MESSAGE.findall(str(s.get("value", "")))
        return out

    def refusal(self) -> str | None:
        return next((text for level, text in self.messages() if level in ("warning", "danger")), None)

    async def click(self, mid: str) -> float:
        return await self.wait_idle(self.send("comm_msg", {"comm_id": mid, "data": {
            "method": "custom", "content": {"event": "click"}}}, track=True))

    async def update(self, mid: str, **state: Any) -> float:
        return await self.wait_idle(self.send("comm_msg", {"comm_id": mid, "data": {
            "method": "update", "state": state, "buffer_paths": []}}, track=True))

    async def close(self) -> None:
        """Close the page: the websocket, then the page's shutdown beacon."""
        if self.pinger is not None:
            self.pinger.cancel()
        if self.ws is not None and not self.closed:
            self.closed = True
            self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
        xsrf = self.http.cookies.get("_xsrf", "")
        r = await self.http.fetch(f"/voila/api/shutdown/{self.kernel_id}", "POST", {"_xsrf": xsrf})
        if r.code not in (200, 204):
            raise Failure(f"shutdown beacon: HTTP {r.code}")


class ProtocolLearner:
    """One learner driven over HTTP and the kernel websocket."""

    def __init__(self, base: str, learner: str, plan: Plan, timeout: float, think: float, seed: int) -> None:
        self.base, self.learner, self.plan = base, learner, plan
        self.timeout, self.think_s = timeout, think
        self.rng = random.Random(seed)
        self.http = Http(base, timeout)
        self.page: KernelPage | None = None
        self.result = Result(learner, "protocol")

    async def think(self) -> None:
        if self.think_s > 0:
            await asyncio.sleep(self.think_s * self.rng.uniform(0.5, 1.5))

    async def sign_in(self) -> float:
        """Sign in at the door; return the perf_counter time of the POST (start of the first view)."""
        r = await self.http.fetch("/login?next=/learn/")
        if r.code != 200:
            raise Failure(f"GET /login: HTTP {r.code}")
        m = re.search(rb'name="_xsrf" value="([^"]+)"', r.body)
        if m is None:
            raise Failure("GET /login: no _xsrf field")
        t0 = time.perf_counter()
        r = await self.http.fetch("/login?lang=" + self.plan.lang, "POST", {
            "_xsrf": m.group(1).decode(), "next": "/learn/", "learner_id": self.learner, "code": f"code-{self.learner}"})
        if r.code != 302 or "sopcoach-session" not in self.http.cookies:
            raise Failure(f"POST /login: HTTP {r.code}, no session")
        self.next_location = r.headers.get("Location", "/learn/")
        return t0

    async def open_page(self, path: str) -> KernelPage:
        """Load the page at ``/learn/<path>`` and show its view, as the browser does."""
        r = await self.http.fetch("/learn/" + path)
        if r.code != 200:
            raise Failure(f"GET /learn/{path}: HTTP {r.code}" + (" (server busy)" if r.code == 503 else ""))
        m = re.search(rb'"kernelId": "([0-9a-f\-]{36})"', r.body)
        if m is None:
            raise Failure(f"GET /learn/{path}: no kernel id in the page")
        kid = m.group(1).decode()
        if WIDGET_VIEW not in r.body:
            raise Failure(f"GET /learn/{path}: the page holds no widget output (kernel {kid}): a browser shows no app")
        r = await self.http.fetch(f"/api/kernels/{kid}")
        if r.code != 200:
            raise Failure(f"GET /api/kernels/<id>: HTTP {r.code}")
        if self.page is not None:
            self.result.kernel_stderr += self.page.stderr
        page = KernelPage(self.http, kid, self.timeout)
        await page.connect()
        self.page = page
        if not await page.start():
            self.result.slow_control_comm += 1
        await page.navigate(path, "load")
        return page

    def check_view(self, css: str) -> None:
        if self.page.with_class(css) is None:
            raise Failure(f"view shown without {css}")

    async def go(self, path: str, css: str) -> None:
        await self.think()
        before = list(self.page.received)
        t0 = time.perf_counter()
        t1 = await self.page.navigate(path, "link")
        self.check_view(css)
        self.result.add("views", t0, t1 - t0)
        self.result.traffic.append((self.page.received[0] - before[0], self.page.received[1] - before[1]))

    async def run(self) -> None:
        res, plan = self.result, self.plan
        res.step = "sign-in"
        t0 = await self.sign_in()
        res.step = "first view (home)"
        await self.open_page("")
        self.check_view("sopcoach-home-ready")
        res.add("first_view", t0, time.perf_counter() - t0)
        for lesson in plan.lessons:
            res.step = f"view lessons/{lesson}"
            await self.go(f"lessons/{lesson}", plan.markers[lesson])
        res.step = "practice"
        await self.practice()
        res.step = "view home"
        await self.go("", "sopcoach-home-ready")
        res.step = "view exam"
        await self.think()
        t0 = time.perf_counter()
        t1 = await self.page.navigate("exam", "link")
        if self.page.button(START) is None:
            raise Failure("exam view without a start button: " + (self.page.refusal() or "no message"))
        res.add("views", t0, t1 - t0)
        res.step = "exam start"
        await self.start_exam(1)
        for n in range(1, 11):
            res.step = f"exam question {n}"
            await self.answer(n)
            await self.next_question(n + 1)
        res.step = "reload"
        await self.think()
        await self.page.close()
        t0 = time.perf_counter()
        await self.open_page("exam")
        if self.page.button(RESUME) is None:
            raise Failure("reloaded exam view without a resume button")
        res.add("reload", t0, time.perf_counter() - t0)
        res.step = "exam resume"
        await self.start_exam(11)
        for n in range(11, 16):
            res.step = f"exam question {n}"
            await self.answer(n)
            if n < 15:
                await self.next_question(n + 1)
        res.step = "submit"
        await self.submit()
        res.kernel_stderr += self.page.stderr
        page, self.page = self.page, None
        await page.close()
        res.done = True

    async def practice(self) -> None:
        card = self.page.with_class(f"sopcoach-practice-{self.plan.practice_qid}")
        kids = self.page.children(card) if card else []
        if len(kids) < 4:
            raise Failure("practice card not found")
        control, check, feedback = kids[1], kids[2], kids[3]
        labels = list(self.page.models[control].get("_options_labels") or [])
        if self.plan.practice_label not in labels:
            raise Failure(f"practice option {self.plan.practice_label!r} not offered")
        await self.think()
        await self.page.update(control, index=labels.index(self.plan.practice_label))
        await self.think()
        t0 = time.perf_counter()
        t1 = await self.page.click(check)
        if "sopcoach-right" not in str(self.page.models.get(feedback, {}).get("value", "")):
            raise Failure("practice feedback not shown: " + (self.page.refusal() or "no message"))
        self.result.add("practice", t0, t1 - t0)

    async def start_exam(self, expect: int) -> None:
        await self._to_question(START, "start", expect)

    async def next_question(self, n: int) -> None:
        await self._to_question(NEXT, "next", n)

    async def _to_question(self, labels: tuple[str, ...], what: str, n: int) -> None:
        """Click the ``what`` button; time it until question ``n`` is shown."""
        button = self.page.button(labels)
        if button is None:
            raise Failure(f"no {what} button")
        await self.think()
        t0 = time.perf_counter()
        t1 = await self.page.click(button)
        if self.page.with_class(f"sopcoach-q{n}") is None:
            raise Failure(f"question {n} not shown after {what}: " + (self.page.refusal() or "no message"))
        self.result.add("questions", t0, t1 - t0)

    async def answer(self, n: int) -> None:
        box = self.page.with_class(f"sopcoach-q{n}")
        if box is None:
            raise Failure(f"question {n} not shown")
        target = None
        for mid in self.page.descendants(box):
            state = self.page.models.get(mid, {})
            name = state.get("_model_name")
            if name == "RadioButtonsModel":
                target = (mid, {"index": 0})
            elif name == "CheckboxModel":
                target = (mid, {"value": not state.get("value")})
            elif name == "DropdownModel":
                target = (mid, {"index": 1})
            elif name == "TextModel":
                target = (mid, {"value": "1"})
            if target:
                break
        if target is None:
            raise Failure(f"question {n}: no answer control")
        await self.think()
        t0 = time.perf_counter()
        t1 = await self.page.update(target[0], **target[1])
        refusal = self.page.refusal()
        if refusal or not any(s in text for _, text in self.page.messages() for s in SAVED):
            raise Failure(f"question {n}: not saved: {refusal or 'no Saved message'}")
        self.result.add("saves", t0, t1 - t0)
        self.result.answers_given += 1

    async def submit(self) -> None:
        for labels in (REVIEW, SUBMIT):
            button = self.page.button(labels)
            if button is None:
                raise Failure(f"no {labels[1]!r} button")
            await self.think()
            await self.page.click(button)
        button = self.page.button(CONFIRM)
        if button is None:
            raise Failure("no confirm button")
        await self.think()
        t0 = time.perf_counter()
        t1 = await self.page.click(button)
        if not any("sopcoach-pass" in str(s.get("value", "")) or "sopcoach-fail" in str(s.get("value", ""))
                   for s in self.page.models.values()):
            raise Failure("no result after submit: " + (self.page.refusal() or "no message"))
        self.result.add("submit", t0, t1 - t0)

    async def cleanup(self) -> None:
        if self.page is not None:
            self.result.kernel_stderr += self.page.stderr
            try:
                await self.page.close()
            except Exception:
                pass


# -- browser learner ----------------------------------------------------------------------------------
class Wire:
    """Times of the widget updates a browser page sends and of the kernel's idle replies to them."""

    def __init__(self, page: Any) -> None:
        self.updates: list[tuple[float, str]] = []
        self.idle: dict[str, float] = {}
        page.on("websocket", self._on_ws)

    def _on_ws(self, ws: Any) -> None:
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    @staticmethod
    def _parts(payload: Any) -> list[bytes] | None:
        if isinstance(payload, str):
            return None
        try:
            return deserialize_msg_from_ws_v1(payload)[1]
        except Exception:
            return None

    def _sent(self, payload: Any) -> None:
        now = time.perf_counter()
        parts = self._parts(payload)
        if parts is None:
            return
        header = json.loads(parts[0])
        if header.get("msg_type") == "comm_msg" and b'"update"' in parts[3]:
            data = json.loads(parts[3]).get("data", {})
            if data.get("method") == "update":
                self.updates.append((now, header["msg_id"]))

    def _received(self, payload: Any) -> None:
        now = time.perf_counter()
        parts = self._parts(payload)
        if parts is None or b'"status"' not in parts[0]:
            return
        if b'"idle"' in parts[3]:
            self.idle[json.loads(parts[1]).get("msg_id", "")] = now

    async def handled_after(self, t0: float, timeout: float) -> float:
        """Return when the kernel finished the first update sent after ``t0`` (polled, bounded)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for ts, mid in self.updates:
                if ts >= t0 and mid in self.idle:
                    return self.idle[mid]
            await asyncio.sleep(0.01)
        raise Failure(f"the kernel did not handle the answer within {timeout:.0f} s")


class BrowserLearner:
    """One learner in a Chromium context: what a person sees."""

    def __init__(self, browser: Any, base: str, learner: str, plan: Plan, timeout: float, think: float,
                 seed: int) -> None:
        self.browser, self.base, self.learner, self.plan = browser, base, learner, plan
        self.timeout, self.think_s = timeout, think
        self.rng = random.Random(seed)
        self.result = Result(learner, "browser")
        self.context: Any = None
        self.page: Any = None
        self.beacons: list[int] = []

    async def think(self) -> None:
        if self.think_s > 0:
            await asyncio.sleep(self.think_s * self.rng.uniform(0.5, 1.5))

    async def visible(self, selector: str) -> float:
        await self.page.locator(selector).first.wait_for(state="visible", timeout=self.timeout * 1000)
        return time.perf_counter()

    async def enabled_button(self, labels: tuple[str, ...]) -> Any:
        pattern = re.compile("^\\s*(" + "|".join(map(re.escape, labels)) + ")\\s*$")
        button = self.page.locator("button.widget-button", has_text=pattern).first
        await button.wait_for(state="visible", timeout=self.timeout * 1000)
        deadline = time.perf_counter() + self.timeout
        while not await button.is_enabled():
            if time.perf_counter() > deadline:
                raise Failure(f"button {labels[0]!r} stays disabled")
            await asyncio.sleep(0.01)
        return button

    async def refusal(self) -> str:
        loc = self.page.locator(".sopcoach-msg-warning, .sopcoach-msg-danger")
        return (await loc.first.inner_text()) if await loc.count() else ""

    async def run(self) -> None:
        res, plan = self.result, self.plan
        self.context = await self.browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        await self.context.route(NOT_LOOPBACK, lambda route: route.abort())
        self.page = await self.context.new_page()
        self.wire = Wire(self.page)
        self.context.on("request", lambda req: self.beacons.append(1)
                        if "/voila/api/shutdown/" in req.url else None)
        r = await self.page.goto(self.base + "/login?next=/learn/", timeout=self.timeout * 1000)
        if r is None or r.status != 200:
            raise Failure(f"GET /login: HTTP {r.status if r else '?'}")
        await self.page.fill("#learner_id", self.learner)
        await self.page.fill("#code", f"code-{self.learner}")
        res.step = "first view (home)"
        t0 = time.perf_counter()
        await self.page.click("#sign-in")
        await self.first_view_or_busy()
        res.add("first_view", t0, time.perf_counter() - t0)
        # home -> lesson 1 (from the list) -> the next lessons (by their links) -> practice -> home -> exam
        for lesson in plan.lessons:
            res.step = f"view lessons/{lesson}"
            link = f'a[data-view][href$="/lessons/{lesson}"]'
            await self.go(link, f".sopcoach-lesson-ready .{plan.markers[lesson]}")
        res.step = "practice"
        await self.practice()
        res.step = "view home"
        await self.go("a.sopcoach-home-top", ".sopcoach-home-ready")
        res.step = "view exam"
        await self.think()
        t0 = time.perf_counter()
        await self.page.locator("a.sopcoach-exam-link").first.click()
        await self.enabled_button(START)
        res.add("views", t0, time.perf_counter() - t0)
        res.step = "exam start"
        await self.start_exam(START, 1)
        for n in range(1, 11):
            res.step = f"exam question {n}"
            await self.answer(n)
            await self.next_question(n + 1)
        res.step = "reload"
        await self.think()
        t0 = time.perf_counter()
        await self.page.reload(timeout=self.timeout * 1000)
        await self.enabled_button(RESUME)
        res.add("reload", t0, time.perf_counter() - t0)
        res.step = "exam resume"
        await self.start_exam(RESUME, 11)
        for n in range(11, 16):
            res.step = f"exam question {n}"
            await self.answer(n)
            if n < 15:
                await self.next_question(n + 1)
        res.step = "submit"
        for labels in (REVIEW, SUBMIT):
            await self.think()
            await (await self.enabled_button(labels)).click()
        button = await self.enabled_button(CONFIRM)
        await self.think()
        t0 = time.perf_counter()
        await button.click()
        await self.visible(".sopcoach-pass, .sopcoach-fail")
        res.add("submit", t0, time.perf_counter() - t0)
        res.done = True

    async def first_view_or_busy(self) -> None:
        busy = self.page.locator("h1#sopcoach-busy")
        ready = self.page.locator(".sopcoach-home-ready").first
        deadline = time.perf_counter() + self.timeout
        while time.perf_counter() < deadline:
            try:
                if await busy.count():
                    raise Failure("server busy page (503) after sign-in")
                if await ready.is_visible():
                    return
            except Failure:
                raise
            except Exception:
                pass
            await asyncio.sleep(0.02)
        raise Failure(f"home view not ready within {self.timeout:.0f} s after sign-in")

    async def go(self, link: str, ready: str) -> None:
        await self.think()
        t0 = time.perf_counter()
        await self.page.locator(link).first.click()
        t1 = await self.visible(ready)
        self.result.add("views", t0, t1 - t0)

    async def practice(self) -> None:
        card = self.page.locator(f".sopcoach-practice-{self.plan.practice_qid}")
        label = card.locator(".widget-radio-box label").filter(
            has_text=re.compile("^\\s*" + re.escape(self.plan.practice_label) + "\\s*$"))
        await self.think()
        await label.first.click()
        await self.think()
        t0 = time.perf_counter()
        await card.locator(".sopcoach-check").first.click()
        await card.locator(".sopcoach-feedback .sopcoach-right").first.wait_for(
            state="visible", timeout=self.timeout * 1000)
        self.result.add("practice", t0, time.perf_counter() - t0)

    async def start_exam(self, labels: tuple[str, ...], expect: int) -> None:
        await self._to_question(labels, expect)

    async def next_question(self, n: int) -> None:
        await self._to_question(NEXT, n)

    async def _to_question(self, labels: tuple[str, ...], n: int) -> None:
        """Click the enabled button labelled ``labels``; time it until question ``n`` is visible."""
        button = await self.enabled_button(labels)
        await self.think()
        t0 = time.perf_counter()
        await button.click()
        t1 = await self.visible(f".sopcoach-q{n}")
        self.result.add("questions", t0, t1 - t0)

    async def answer(self, n: int) -> None:
        box = self.page.locator(f".sopcoach-q{n}").first
        await box.wait_for(state="visible", timeout=self.timeout * 1000)
        await self.think()
        radios, checks = box.locator("input[type=radio]"), box.locator("input[type=checkbox]")
        selects, texts = box.locator("select"), box.locator("input[type=text], input:not([type])")
        t0 = time.perf_counter()
        if await radios.count():
            await radios.first.check()
        elif await checks.count():
            await checks.first.click()
        elif await selects.count():
            await selects.first.select_option(index=1)
        elif await texts.count():
            await texts.first.fill("1")
            await texts.first.press("Enter")
        else:
            raise Failure(f"question {n}: no answer control")
        t1 = await self.wire.handled_after(t0, self.timeout)
        saved = self.page.locator(".sopcoach-msg-info", has_text=re.compile("|".join(SAVED))).first
        try:
            await saved.wait_for(state="visible", timeout=self.timeout * 1000)
        except Exception:
            raise Failure(f"question {n}: not saved: {await self.refusal() or 'no Saved message'}") from None
        refusal = await self.refusal()
        if refusal:
            raise Failure(f"question {n}: not saved: {refusal}")
        self.result.add("saves", t0, max(t1, time.perf_counter()) - t0)
        self.result.answers_given += 1

    async def diagnose(self) -> str:
        """Say what the page shows after a failure (bounded; never raises)."""
        if self.page is None:
            return ""
        try:
            html = await asyncio.wait_for(self.page.content(), 10)
            banner = await self.page.locator("#sopcoach-connection-lost").is_visible()
            text = re.sub(r"\s+", " ", await asyncio.wait_for(self.page.inner_text("body"), 10))[:120]
            kid = re.search(r'"kernelId": "([0-9a-f\-]{36})"', html)
            return (f"page {self.page.url}; kernel {kid.group(1) if kid else '?'}; widget output in the page: "
                    f"{'yes' if WIDGET_VIEW.decode() in html else 'NO'}; connection-lost banner: "
                    f"{'shown' if banner else 'no'}; text: {text!r}")
        except Exception as exc:
            return f"(no diagnosis: {type(exc).__name__})"

    async def cleanup(self) -> None:
        if self.page is not None:
            try:  # leave the page as a person closing it would: its shutdown beacon goes out.
                # Playwright's request interception (the route) drops a beacon sent while a page
                # unloads, so the route is lifted first (measured: with it, the kernel waits for the culler).
                await self.context.unroute(NOT_LOOPBACK)
                self.beacons.clear()
                await self.page.close(run_before_unload=True)
                deadline = time.perf_counter() + 5
                while not self.beacons and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
            except Exception:
                pass
        if self.context is not None:
            try:
                await self.context.close()
            except Exception:
                pass


async def drive(learner: Any, timeout: float) -> Result:
    """Run one learner to its end, its first error or ``timeout``; the page is closed in any case."""
    res = learner.result
    error = None
    try:
        await asyncio.wait_for(learner.run(), timeout)
    except asyncio.TimeoutError:
        error = f"did not finish within {timeout:.0f} s"
    except Failure as exc:
        error = str(exc)
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        if error is not None:
            seen = await learner.diagnose() if isinstance(learner, BrowserLearner) else ""
            res.errors.append(f"[{res.step}] {error}" + (f" -- {seen}" if seen else ""))
        try:
            await asyncio.wait_for(learner.cleanup(), 30)
        except Exception:
            pass
    return learner.result


# -- baseline -------------------------------------------------------------------------------------------
async def baseline(browser: Any, tmp: Path, env: dict[str, str], runs: int, timeout: float) -> dict:
    """Bare one-button Voila notebook: TTI, click to output and RSS, one learner at a time."""
    root = tmp / "bare"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(BARE_CELL))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / BARE)
    port = free_port()
    argv = [sys.executable, "-m", "voila", str(root), "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"]
    proc = start_process(argv, env, tmp / "voila-bare.log")
    out: dict[str, Any] = {"tti": [], "click": [], "rss_mb": [], "error": None}
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_http(base + "/", proc, 120)
        for _ in range(runs):
            context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            await context.route(NOT_LOOPBACK, lambda route: route.abort())
            try:
                page = await context.new_page()
                t0 = time.perf_counter()
                await page.goto(f"{base}/voila/render/{BARE}", wait_until="commit", timeout=timeout * 1000)
                button = page.locator('button.widget-button:has-text("Go")').first
                await button.wait_for(state="visible", timeout=timeout * 1000)
                while not await button.is_enabled():
                    if time.perf_counter() - t0 > timeout:
                        raise TimeoutError("the Go button stays disabled")
                    await asyncio.sleep(0.005)
                out["tti"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await button.click()
                await page.locator("text=clicked").first.wait_for(state="visible", timeout=timeout * 1000)
                out["click"].append(time.perf_counter() - t0)
                tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
                out["rss_mb"].append(sum(p.memory_info().rss for p in tree) / 2**20)
                await page.close(run_before_unload=True)
            finally:
                await context.close()
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        stop_process(proc)
    return out


# -- figures ------------------------------------------------------------------------------------------
def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def fmt(value: float | None, width: int = 8, digits: int = 2) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'n/a':>{width}}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def collect(results: list[Result], attr: str, kind: str | None = None) -> list[float]:
    out: list[float] = []
    for r in results:
        if kind is not None and r.kind != kind:
            continue
        v = getattr(r, attr)
        if isinstance(v, list):
            out.extend(v)
        elif v is not None:
            out.append(v)
    return out


def stored_answers(inst: Any, learner: str) -> int:
    attempts = inst.records.attempts(learner, inst.blueprint.id)
    if not attempts:
        return 0
    latest = max(attempts, key=lambda a: a.id)
    return sum(1 for a in inst.records.answers(latest.id).values() if a.response is not None)


# -- main ---------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, tmp: Path) -> dict:
    from playwright.async_api import async_playwright
    AsyncHTTPClient.configure(None, max_clients=max(100, 4 * args.learners))

    home = tmp / "sopcoach-home"
    home.mkdir()
    os.environ["SOPCOACH_HOME"] = str(home)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    from sopcoach.config import installation
    inst = installation()
    plan = make_plan(inst)
    ids = [f"c{i:03d}" for i in range(1, args.learners + 1)]
    print(f"enrolling {len(ids)} learners (+1 probe) and completing their lessons ...", flush=True)
    prepare_records(inst, ["probe", *ids], plan)

    sampler = Sampler()
    figures: dict[str, Any] = {"learners": args.learners, "browsers": min(args.browsers, args.learners),
                               "arrive_over_s": args.arrive_over, "think_s": args.think, "pool_size": args.pool_size}
    proc: subprocess.Popen | None = None
    sampling: asyncio.Task | None = None
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            print(f"baseline: bare one-button Voila notebook, {args.baseline_runs} page loads ...", flush=True)
            figures["baseline"] = await baseline(browser, tmp, env, args.baseline_runs, args.step_timeout)

            port = free_port()
            base = f"http://127.0.0.1:{port}"
            max_pages = args.max_pages or args.learners + 10
            argv = learner_command(LEARNER_ROOT, port=port, max_pages=max_pages, pool_size=args.pool_size)
            figures["max_pages"] = max_pages
            print(f"learner server: pool {args.pool_size}, max pages {max_pages}, {base} ...", flush=True)
            t_start = time.perf_counter()
            proc = start_process(argv, env, tmp / "learner-server.log")
            sampler.watch(proc.pid)
            sampling = asyncio.ensure_future(sampler.run())
            t_answer = await wait_http(base + "/login", proc, 120)
            probe = ProtocolLearner(base, "probe", plan, args.step_timeout, 0, 0)
            try:
                await probe.sign_in()
                await probe.open_page("")
                probe.check_view("sopcoach-home-ready")
                t_served = time.perf_counter()
                figures["start_answer_s"] = t_answer - t_start
                figures["start_first_learner_s"] = t_served - t_start
            except Failure as exc:
                figures["start_error"] = str(exc)
            finally:
                await probe.cleanup()
            sampler.sample()
            start_cpu = sampler.cpu_since_mark()
            figures["start_cpu_s"] = start_cpu["server"] + start_cpu["kernels"]
            # steady state before the cohort (bounded): the probe's kernel stopped, the pool full and
            # its notebooks run (the server and its kernels quiet)
            deadline = time.perf_counter() + 120
            while not (sampler.kernels_now() == args.pool_size and sampler.quiet()):
                if time.perf_counter() > deadline:
                    print("  warning: the server did not settle within 120 s; starting anyway", flush=True)
                    break
                await asyncio.sleep(0.25)
            figures["idle_kernels"] = sampler.kernels_now()
            figures["idle_rss_mb"] = sum(sampler.samples[-1][2:4]) if sampler.samples else None
            figures["load_before"] = os.getloadavg()

            n = args.learners
            b = min(args.browsers, n)
            on_browser = {round(j * n / b) for j in range(b)} if b else set()
            print(f"cohort: {n} learners ({len(on_browser)} in Chromium), arriving over {args.arrive_over:g} s, "
                  f"think time {args.think:g} s ...", flush=True)
            sampler.mark_cpu()
            t_cohort = time.perf_counter()
            probing = asyncio.ensure_future(sampler.probe(base + "/login"))
            db_file = home / "sopcoach.db"
            db_probing = asyncio.ensure_future(sampler.probe_db(db_file)) if db_file.is_file() else None

            async def arrive(i: int, learner: str) -> Result:
                await asyncio.sleep(args.arrive_over * i / n if n > 1 else 0)
                if i in on_browser:
                    who = BrowserLearner(browser, base, learner, plan, args.step_timeout, args.think, i)
                else:
                    who = ProtocolLearner(base, learner, plan, args.step_timeout, args.think, i)
                res = await drive(who, args.learner_timeout)
                state = "done" if res.done else f"ERROR {res.errors[0] if res.errors else ''}"
                print(f"  {learner} ({res.kind}): first view {fmt(res.first_view, 0)} s, {state}", flush=True)
                return res

            results = await asyncio.gather(*(arrive(i, learner) for i, learner in enumerate(ids)))
            t_end = time.perf_counter()
            probing.cancel()
            if db_probing is not None:
                db_probing.cancel()
            sampler.sample()
            cpu = sampler.cpu_since_mark()
            cpu["others"] = sampler.others_since_mark()
            cpu["steal"] = sampler.machine_steal() - sampler.mark_steal
            window = sampler.window(t_cohort, t_end)
            # kernels given back after everyone left (bounded)
            deadline = time.perf_counter() + 90
            while sampler.kernels_now() > args.pool_size and time.perf_counter() < deadline:
                await asyncio.sleep(0.25)
            figures["kernels_after"] = sampler.kernels_now()
            figures["reclaim_s"] = time.perf_counter() - t_end if sampler.kernels_now() <= args.pool_size else None
        finally:
            sampler.stop()
            if sampling is not None:
                try:
                    await asyncio.wait_for(sampling, 5)
                except Exception:
                    pass
            stop_process(proc)
            await browser.close()

    for res in results:
        if res.done:
            stored = stored_answers(inst, res.learner)
            if stored < res.answers_given:
                res.errors.append(f"{stored} answers stored, {res.answers_given} given")
    log_text = (tmp / "learner-server.log").read_text(errors="replace")
    figures.update({
        "results": results,
        "samples": sampler.samples,
        "probes": [p for p in sampler.probes if t_cohort <= p[0] <= t_end],
        "db_waits": [p for p in sampler.db_waits if t_cohort <= p[0] <= t_end],
        "t_cohort": t_cohort,
        "wall_s": t_end - t_cohort,
        "cpu": cpu,
        "peak_kernels": max((s[1] for s in window), default=None),
        "peak_rss_mb": max((s[2] + s[3] for s in window), default=None),
        "peak_server_rss_mb": max((s[2] for s in window), default=None),
        "server_log_errors": [line for line in log_text.splitlines()
                              if re.search(r"\b(ERROR|CRITICAL)\b|Traceback|\[E ", line)][:20],
        "server_log": read_log(log_text),
    })
    return figures


def read_log(text: str) -> dict[str, Any]:
    """What the learner server's log says about kernels handed out, culled, lost outputs and refusals."""
    handed = set(re.findall(r"Using pre-heated kernel: ([0-9a-f\-]{36})", text))
    culled = re.findall(r"Culling 'idle' kernel '[^']*' \(([0-9a-f\-]{36})\)", text)
    missing = set(re.findall(r"\b404 GET /api/kernels/([0-9a-f\-]{36})", text))
    return {
        "iopub_timeouts": text.count("Timeout waiting for IOPub output"),
        "culled": len(culled),
        "culled_after_hand_out": sorted(k for k in culled if k in handed),
        "culled_then_404": sorted(k for k in culled if k in handed and k in missing),
        "dead_preheated": len(re.findall(r"preheated kernel \S+ died|dropped a dead preheated kernel", text)),
        "busy_503": len(re.findall(r"\b503 GET\b", text)),
    }


def context_at(fig: dict, t0: float, t1: float) -> str:
    """Say what the server was doing between ``t0`` and ``t1``: kernels, cores used, GET /login time."""
    around = [s for s in fig["samples"] if t0 - SAMPLE_EVERY_S <= s[0] <= t1 + SAMPLE_EVERY_S]
    probes = [sec for t, sec in fig["probes"] if t0 - 1 <= t <= t1]
    probe = f", GET /login up to {max(probes):.2f} s" if probes else ""
    waits = [sec for t, sec in fig["db_waits"] if t0 - 1 <= t <= t1]
    probe += f", DB lock wait up to {max(waits):.2f} s" if waits else ""
    if len(around) < 2:
        return f"kernels {around[0][1] if around else '?'}{probe}"
    span = around[-1][0] - around[0][0]
    tree = sum(max(0.0, b[4] - a[4]) for a, b in itertools.pairwise(around)) / span  # an exit lowers the sum
    server = (around[-1][5] - around[0][5]) / span
    return (f"kernels {max(s[1] for s in around)}, server process {server:.1f} cores, "
            f"kernels {max(0.0, tree - server):.1f} cores{probe}")


def slowest(fig: dict, metric: str, count: int = 5) -> list[str]:
    """The slowest measurements of ``metric``, each with what the server was doing then."""
    rows = sorted(((sec, t0, r) for r in fig["results"] for m, t0, sec in r.events if m == metric),
                  key=lambda x: -x[0])[:count]
    out = []
    for sec, t0, r in rows:
        out.append(f"{sec:6.2f} s at +{t0 - fig['t_cohort']:5.1f} s, {r.learner} ({r.kind}); "
                   + context_at(fig, t0, t0 + sec))
    return out


def report(fig: dict) -> dict:
    """Print the figures; return the JSON summary."""
    results: list[Result] = fig["results"]
    n = fig["learners"]
    errors = sum(len(r.errors) for r in results)
    rows = [("first view (sign-in -> home ready)", "first_view"), ("view switch", "views"),
            ("click to saved (exam answers)", "saves"), ("practice check -> feedback", "practice"),
            ("question shown (start/next)", "questions"), ("reload -> exam view ready", "reload"),
            ("submit -> result", "submit")]
    base = fig.get("baseline", {})
    base_tti, base_click = median(base.get("tti", [])), median(base.get("click", []))
    base_rss = median(base.get("rss_mb", []))
    print()
    print(f"cohort of {n}: {fig['browsers']} in Chromium, {n - fig['browsers']} protocol clients; arriving over "
          f"{fig['arrive_over_s']:g} s; think time {fig['think_s']:g} s; pool {fig['pool_size']}, "
          f"max pages {fig.get('max_pages')}")
    if "start_error" in fig:
        print(f"server start: first learner NOT served: {fig['start_error']}")
    else:
        print(f"server start: answers after {fig['start_answer_s']:.1f} s; first learner served (sign-in + home) "
              f"after {fig['start_first_learner_s']:.1f} s; server CPU by then {fig['start_cpu_s']:.1f} s")
    print()
    print(f"{'seconds':38}{'n':>5}{'median':>8}{'p95':>8}{'max':>8}{'browser':>9}{'protocol':>9}")
    for label, attr in rows:
        allv = collect(results, attr)
        print(f"{label:38}{len(allv):5d}{fmt(median(allv))}{fmt(p95(allv))}{fmt(max(allv) if allv else None)}"
              f"{fmt(median(collect(results, attr, 'browser')), 9)}{fmt(median(collect(results, attr, 'protocol')), 9)}")
    print("  (browser/protocol columns: medians of each kind of client)")
    print()
    done = sum(r.done for r in results)
    print(f"errors: {errors}; learners who finished: {done}/{n}")
    for r in results:
        for e in r.errors:
            print(f"  {r.learner} ({r.kind}): {e}")
    for label, metric in (("first views", "first_view"), ("view switches", "views"), ("saves", "saves")):
        print(f"slowest {label}:")
        for line in slowest(fig, metric, 3):
            print("  " + line)
    traffic = [t for r in results for t in r.traffic]
    if traffic:
        print(f"a view switch brings the page a median {median([m for m, _ in traffic]):.0f} kernel messages, "
              f"{median([b for _, b in traffic]) / 1024:.0f} KiB (protocol clients, until the address)")
    probes = [sec for _, sec in fig["probes"]]
    if probes:
        print(f"server responsiveness, GET /login every 0.5 s during the cohort: median {median(probes):.3f} s, "
              f"p95 {p95(probes):.3f} s, max {max(probes):.2f} s ({len(probes)} requests)")
    waits = [sec for _, sec in fig["db_waits"]]
    if waits:
        print(f"records write lock (BEGIN IMMEDIATE every 0.5 s): wait median {median(waits):.3f} s, "
              f"p95 {p95(waits):.3f} s, max {max(waits):.2f} s ({len(waits)} probes)")
    slow = sum(r.slow_control_comm for r in results)
    if slow:
        print(f"pages whose widget state took over {CONTROL_COMM_PATIENCE_S:g} s (a browser falls back): {slow}")
    peak_rss = fig["peak_rss_mb"]
    print(f"kernels: before the cohort {fig['idle_kernels']}, peak {fig['peak_kernels']}, "
          f"{fig['kernels_after']} left " + (f"{fig['reclaim_s']:.1f} s after everyone closed the page"
                                             if fig.get("reclaim_s") is not None else "90 s after (not reclaimed)"))
    print(f"RSS server + kernels: before the cohort {fmt(fig['idle_rss_mb'], 0, 0)} MB, peak {fmt(peak_rss, 0, 0)} MB "
          f"(server alone {fmt(fig['peak_server_rss_mb'], 0, 0)} MB), per learner {fmt(ratio(peak_rss, n), 0, 0)} MB")
    cpu, wall = fig["cpu"], fig["wall_s"]
    print(f"CPU over the cohort ({wall:.0f} s wall, {psutil.cpu_count()} cores = {psutil.cpu_count() * wall:.0f} CPU-s): "
          f"server + kernels {cpu['server'] + cpu['kernels']:.0f} s (server process {cpu['server']:.0f} s, kernels "
          f"{cpu['kernels']:.0f} s); clients: protocol (this process) {cpu['protocol']:.0f} s, "
          f"browsers (Chromium + driver) {cpu['browser']:.0f} s; other processes on the machine {cpu['others']:.0f} s; "
          f"taken by the virtual machine's host (steal) {cpu['steal']:.0f} s")
    load = fig.get("load_before")
    if load:
        print(f"load average before the cohort: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)")
    stderr = [line for r in results for line in r.kernel_stderr]
    if stderr:
        print(f"kernel stderr messages seen by the protocol clients: {len(stderr)}; distinct (first 5):")
        for line in sorted(set(stderr))[:5]:
            print("  " + line.strip()[:160])
    sl = fig["server_log"]
    print(f"server log: {sl['iopub_timeouts']} \"Timeout waiting for IOPub output\" (a preheated page may lose "
          f"the app's output), {sl['culled']} kernels culled as idle ({len(sl['culled_after_hand_out'])} of them "
          f"after being handed to a page, {len(sl['culled_then_404'])} then asked for: 404), "
          f"{sl['dead_preheated']} dead preheated kernels dropped, {sl['busy_503']} busy pages (503)")
    if fig["server_log_errors"]:
        print("server log errors (first 20):")
        for line in fig["server_log_errors"]:
            print("  " + line[:200])
    print()
    print(f"baseline: bare one-button Voila notebook, plain `python -m voila`, median of {len(base.get('tti', []))}:"
          + (f" ERROR {base['error']}" if base.get("error") else ""))
    print(f"  time to interactive {fmt(base_tti, 0)} s; click to output {fmt(base_click, 0, 3)} s; "
          f"RSS server + kernel {fmt(base_rss, 0, 0)} MB")
    first = median(collect(results, "first_view"))
    print(f"ratios: median first view / baseline TTI {fmt(ratio(first, base_tti), 0)}; "
          f"median click to saved / baseline click to output {fmt(ratio(median(collect(results, 'saves')), base_click), 0)}; "
          f"peak RSS per learner / baseline RSS {fmt(ratio(ratio(peak_rss, n), base_rss), 0)}")
    if "start_first_learner_s" in fig:
        print(f"        server start to first learner / baseline TTI {fmt(ratio(fig['start_first_learner_s'], base_tti), 0)}")

    def r3(v: float | None) -> float | None:
        return round(v, 3) if v is not None else None

    return {
        "learners": n,
        "errors": errors,
        "p95_first_view_s": r3(p95(collect(results, "first_view"))),
        "p95_view_s": r3(p95(collect(results, "views"))),
        "p95_save_s": r3(p95(collect(results, "saves"))),
        "peak_kernels": fig["peak_kernels"],
        "peak_rss_mb": r3(peak_rss),
        "baseline_tti_s": r3(base_tti),
        "median_first_view_s": r3(first),
        "median_view_s": r3(median(collect(results, "views"))),
        "median_save_s": r3(median(collect(results, "saves"))),
        "p95_practice_s": r3(p95(collect(results, "practice"))),
        "p95_question_s": r3(p95(collect(results, "questions"))),
        "p95_reload_s": r3(p95(collect(results, "reload"))),
        "p95_submit_s": r3(p95(collect(results, "submit"))),
        "peak_rss_per_learner_mb": r3(ratio(peak_rss, n)),
        "finished": sum(r.done for r in results),
        "browsers": fig["browsers"],
        "arrive_over_s": fig["arrive_over_s"],
        "think_s": fig["think_s"],
        "start_answer_s": r3(fig.get("start_answer_s")),
        "start_first_learner_s": r3(fig.get("start_first_learner_s")),
        "cpu_server_s": r3(cpu["server"] + cpu["kernels"]),
        "cpu_server_process_s": r3(cpu["server"]),
        "cpu_kernels_s": r3(cpu["kernels"]),
        "cpu_clients_protocol_s": r3(cpu["protocol"]),
        "cpu_clients_browser_s": r3(cpu["browser"]),
        "cpu_other_processes_s": r3(cpu["others"]),
        "cpu_steal_s": r3(cpu["steal"]),
        "p95_login_probe_s": r3(p95([sec for _, sec in fig["probes"]])),
        "max_login_probe_s": r3(max((sec for _, sec in fig["probes"]), default=None)),
        "p95_db_lock_wait_s": r3(p95([sec for _, sec in fig["db_waits"]])),
        "server_log": fig["server_log"],
        "max_db_lock_wait_s": r3(max((sec for _, sec in fig["db_waits"]), default=None)),
        "load_before": [round(x, 2) for x in fig.get("load_before") or ()],
        "wall_s": r3(wall),
        "kernels_after": fig["kernels_after"],
        "reclaim_s": r3(fig.get("reclaim_s")),
        "baseline_click_s": r3(base_click),
        "baseline_rss_mb": r3(base_rss),
        "ratio_first_view_to_baseline_tti": r3(ratio(first, base_tti)),
        "error_list": [f"{r.learner}: {e}" for r in results for e in r.errors],
        "per_learner": [{"learner": r.learner, "kind": r.kind, "done": r.done, "errors": r.errors,
                         "first_view_s": r3(r.first_view), "reload_s": r3(r.reload), "submit_s": r3(r.submit),
                         "views_s": [r3(v) for v in r.views], "saves_s": [r3(v) for v in r.saves],
                         "practice_s": [r3(v) for v in r.practice], "questions_s": [r3(v) for v in r.questions],
                         "slow_control_comm": r.slow_control_comm} for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, required=True, help="learners in the cohort (N)")
    parser.add_argument("--browsers", type=int, default=5, help="of them in Chromium (default: %(default)s)")
    parser.add_argument("--arrive-over", type=float, default=60.0,
                        help="seconds over which they arrive evenly; 0: all at once (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="write the summary figures to this JSON file")
    parser.add_argument("--think", type=float, default=1.0,
                        help="think time between a learner's actions, seconds, jittered x0.5-1.5 (default: %(default)s)")
    parser.add_argument("--pool-size", type=int, default=POOL_SIZE,
                        help="preheated kernels of the server (default: the server's, %(default)s)")
    parser.add_argument("--max-pages", type=int, default=0, help="the server's page cap (default: learners + 10)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="page loads of the baseline (default: %(default)s)")
    parser.add_argument("--step-timeout", type=float, default=120.0, help="seconds one step may take (default: %(default)s)")
    parser.add_argument("--learner-timeout", type=float, default=900.0,
                        help="seconds one learner may take in all (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server logs) and print it")
    args = parser.parse_args(argv)
    if args.learners < 1 or args.browsers < 0 or args.arrive_over < 0:
        parser.error("--learners must be at least 1; --browsers and --arrive-over at least 0")
    if not CHROMIUM.is_file():
        print(f"{CHROMIUM} is missing: run `make test` (or `make browser`) first.", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="sopcoach-cohort-"))
    try:
        figures = asyncio.run(run(args, tmp))
        summary = report(figures)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
            print(f"\nwrote {args.json}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
