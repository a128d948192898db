"""Paths and helpers shared by the tests."""
from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sopcoach.certification.itemstats import simulated_response

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CASES = SHARED / "cases" / "inputs"

#: Debian's Chromium (Playwright's own browser download does not work here; ``make browser``
#: installs it) and the flags the browser tests and the benchmarks start it with.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: http(s) URLs that are not on the loopback interface: pages may not fetch them (nothing may
#: download at run time); matched in the browser, so local requests are not intercepted.
NOT_LOOPBACK = re.compile(r"^https?://(?!(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/)")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a process the tests started, by its pid: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class FakeClock:
    """An aware-UTC clock that only moves when told to."""

    def __init__(self, start: datetime = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)



def poll(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    """Return the first truthy value of ``condition()`` within ``timeout`` seconds; fail otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(every)


def run_sopcoach(args, home: Path, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """Run the ``sopcoach`` command in a new process with data home ``home`` and the shipped content.

    ``SOPCOACH_DB_URL`` is unset unless given in ``env``; returns the finished process (exit code,
    stdout and stderr as text).
    """
    full = dict(os.environ, SOPCOACH_HOME=str(home), SOPCOACH_CONTENT=str(ROOT))
    full.pop("SOPCOACH_DB_URL", None)
    full.update(env)
    # Its own session, so that on a timeout the whole process group (servers it started included)
    # is stopped, not only the command.
    with subprocess.Popen([sys.executable, "-m", "sopcoach.cli.main", *args], cwd=ROOT, env=full,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def edit_file(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in a UTF-8 file by ``new`` (``old`` must be there)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def raise_supervisor_limit(playbook_dir: Path, texts: bool = True) -> None:
    """Raise the sales supervisor's quote limit 500,000 -> 800,000 CNY in ``authority.yaml``.

    With ``texts`` the clause quote-limits is updated too (zh-CN and en), as a release requires
    (:func:`sopcoach.authoring.versions.stale_quotes`); without, its text still quotes 500,000.
    """
    edit_file(playbook_dir / "authority.yaml", "max_quote_amount: 500000", "max_quote_amount: 800000")
    if texts:
        edit_file(playbook_dir / "clauses.yaml", "报价金额不超过500,000元", "报价金额不超过800,000元")
        edit_file(playbook_dir / "clauses.yaml", "amount up to 500,000 CNY", "amount up to 800,000 CNY")


def widget_tree(widget):
    """Yield a widget and every widget below it (children, layout, style)."""
    yield widget
    for name in ("children", "layout", "style"):
        value = getattr(widget, name, None)
        for child in (value if isinstance(value, (list, tuple)) else [value]):
            if child is not None and hasattr(child, "get_state"):
                yield from widget_tree(child)


def correct_response(q):
    """Return a response that earns full credit on ``q`` (test helper; reads the key)."""
    return simulated_response(q, True)


def wrong_response(q):
    """Return a response that earns no credit on ``q`` (an ordering: only blocks outside the key, or nothing)."""
    return simulated_response(q, False)


def answer_practice(service, learner_id: str, lesson_id: str, q, right: bool = True, lang=None):
    """Answer practice question ``q`` right (or wrong) through ``service`` (a LessonService); a
    template on a fresh variant, answered with its params as the lesson page does."""
    shown, params = service.variant(q.id)
    return service.answer(learner_id, lesson_id, q.id, simulated_response(shown, right), lang, params=params)


def complete_lessons(inst, learner_id: str) -> None:
    """Answer every practice question of every lesson right, so the exam's lesson gate is open."""
    from sopcoach.lessons.progress import LessonService
    service = LessonService(inst)
    for lesson in service.lessons():
        for q in service.questions(lesson.id):
            answer_practice(service, learner_id, lesson.id, q)


# -- the learner server (browser tests) ------------------------------------------------------------
LEARNER_ROOT = ROOT / "notebooks" / "learner"
#: Elapsed milliseconds a learner page may take to load on the two-core CI machine.
PAGE_LOAD_MS = 180_000
SESSION_COOKIE = "sopcoach-session"


def copy_content(tmp_path: Path, *notebooks: str) -> Path:
    """Copy the shipped ``playbook/``, ``quizzes/`` and ``lessons/`` to ``tmp_path/content`` (the editors
    write there, never to the shipped files), with the named notebooks (``trainer/question_editor.ipynb``)."""
    root = tmp_path / "content"
    for name in ("playbook", "quizzes", "lessons"):
        shutil.copytree(ROOT / name, root / name)
    for nb in notebooks:
        (root / "notebooks" / nb).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "notebooks" / nb, root / "notebooks" / nb)
    return root


def learner_env(content: Path, home: Path, lang: str = "zh-CN", **extra: str) -> dict[str, str]:
    """Environment of a learner server on the content folder ``content`` with its data in ``home``."""
    return {"SOPCOACH_HOME": str(home), "SOPCOACH_DB_URL": f"sqlite:///{home / 'sopcoach.db'}",
            "SOPCOACH_CONTENT": str(content), "SOPCOACH_LANG": lang, **extra}


def installation_at(content: Path, home: Path):
    """Load the :class:`~sopcoach.config.Installation` of ``content`` with the database in ``home``
    (the one :func:`learner_env` points a server at)."""
    from sopcoach.config import Installation, Settings
    from sopcoach.content.playbook import load_playbook
    from sopcoach.content.quizbank import load_bank, load_blueprint
    from sopcoach.records.store import Records
    pb = load_playbook(content / "playbook")
    bank = load_bank(content / "quizzes" / "bank", pb)
    bp = load_blueprint(content / "quizzes" / "blueprint.yaml", bank)
    url = f"sqlite:///{home / 'sopcoach.db'}"
    return Installation(Settings(home, url, "zh-CN", content), pb, bank, bp, Records(url))


def command_line_installation(folder: Path, monkeypatch) -> tuple[Any, FakeClock, Any]:
    """Copy the shipped playbook and quizzes into ``folder``, point the command line at it
    (``SOPCOACH_CONTENT``; data home ``folder/var``; no ``SOPCOACH_DB_URL``) and return its
    installation, a :class:`FakeClock` and the exam service on that clock."""
    import shutil
    from sopcoach.config import installation, settings
    for part in ("playbook", "quizzes"):
        shutil.copytree(ROOT / part, folder / part)
    (folder / "notebooks").mkdir()
    monkeypatch.setenv("SOPCOACH_CONTENT", str(folder))
    monkeypatch.setenv("SOPCOACH_HOME", str(folder / "var"))
    monkeypatch.delenv("SOPCOACH_DB_URL", raising=False)
    inst = installation(settings())
    clock = FakeClock()
    return inst, clock, inst.exam_service(clock)

def sign_in_session(base: str, learner_id: str, code: str, timeout: float = 30):
    """Sign in to the learner server at ``base`` over HTTP, as the sign-in form does.

    GET ``<base>login`` for the ``_xsrf`` cookie, POST the form; return the
    :class:`requests.Session` holding the session cookie (``sopcoach-session``). Raises
    ``AssertionError`` when the server does not sign the learner in.
    """
    import requests
    s = requests.Session()
    page = s.get(base + "login", timeout=timeout)
    assert page.status_code == 200, f"GET {base}login answered {page.status_code}"
    xsrf = s.cookies.get("_xsrf")
    assert xsrf, "the sign-in page set no _xsrf cookie"
    r = s.post(base + "login", data={"learner_id": learner_id, "code": code, "_xsrf": xsrf},
               allow_redirects=False, timeout=timeout)
    assert r.status_code == 302 and s.cookies.get(SESSION_COOKIE), \
        f"sign-in of {learner_id!r} refused: HTTP {r.status_code}"
    return s


def default_ready(view: str) -> str:
    """The selector that says the view at ``view`` (below ``learn/``) is shown."""
    path = view.split("?", 1)[0].strip("/")
    if path == "":
        return ".sopcoach-home-ready"
    if path.startswith("lessons/"):
        return ".sopcoach-lesson-ready"
    return ".sopcoach-topbar .sopcoach-sign-out"  # some view is built (the exam has no marker of its own)


def sign_in_browser(page, base: str, learner_id: str, code: str, view: str = "",
                    ready: str | None = None, timeout: float = PAGE_LOAD_MS, before_submit=None) -> None:
    """Open ``<base>learn/<view>`` in ``page``, sign in on the real sign-in page, wait for the view.

    The server sends an anonymous visitor to its sign-in page; the form (``#learner_id``,
    ``#code``, ``#sign-in``) brings the learner back to ``view``. ``ready`` is the selector to wait
    for (default :func:`default_ready`; ``""`` waits for nothing). ``before_submit(page)`` runs on
    the filled form (e.g. for a screenshot).
    """
    import re
    page.goto(f"{base}learn/{view}", timeout=timeout)
    page.wait_for_url(re.compile(re.escape(base) + r"login\?"), timeout=timeout)
    page.locator("#learner_id").fill(learner_id)
    page.locator("#code").fill(code)
    if before_submit is not None:
        before_submit(page)
    page.locator("#sign-in").click()
    page.wait_for_url(lambda url: url.startswith(f"{base}learn/"), timeout=timeout)
    selector = default_ready(view) if ready is None else ready
    if selector:
        page.locator(selector).wait_for(state="visible", timeout=timeout)


def copy_export_editing_deals(export: Path, folder: Path, edit: Callable[[list[dict[str, str]]], int]) -> int:
    """Copy a simulated export to ``folder``, its deal rows (``商机.csv``) changed in place by ``edit``; return what
    ``edit`` returns (how many it changed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in export.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    with open(export / "商机.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    count = edit(rows)
    with open(folder / "商机.csv", "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return count


def day_first_close_dates(export: Path, folder: Path) -> int:
    """Copy a simulated export to ``folder`` with its deals' close times written day first (``24/03/2025 15:38``,
    as a European CRM writes them), which the simulated mapping does not declare; return how many were rewritten."""
    def edit(rows: list[dict[str, str]]) -> int:
        count = 0
        for row in rows:
            if row["关闭时间"]:
                row["关闭时间"] = datetime.strptime(row["关闭时间"], "%Y-%m-%d %H:%M").strftime("%d/%m/%Y %H:%M")
                count += 1
        return count
    return copy_export_editing_deals(export, folder, edit)


class UploadBrowser:
    """Plays the page's side of the upload protocol against a
    :class:`~sopcoach.ui.chunked_upload.ChunkedUpload`, recording the kernel's answers and completed uploads."""

    def __init__(self, upload: Any):
        self.upload = upload
        self.answers: list[dict] = []
        self.completed: list[list[Path]] = []
        upload.send = lambda content, buffers=None: self.answers.append(content)  # type: ignore[method-assign]
        handler = upload._complete  # the app's own handler still runs

        def completed(paths: list[Path]) -> None:
            self.completed.append(paths)
            if handler is not None:
                handler(paths)

        upload.on_complete(completed)

    def upload_files(self, batch: str, files: list[Path]) -> None:
        """Begin ``batch`` with ``files`` and send them whole."""
        self.begin(batch, [(p.name, p.stat().st_size) for p in files])
        for i, p in enumerate(files):
            self.send_file(batch, i, p.read_bytes())

    def begin(self, batch: str, files: list[tuple[str, int]]) -> None:
        self.upload._on_msg(self.upload, {"type": "begin", "batch": batch,
                                          "files": [{"name": n, "size": s} for n, s in files]}, [])

    def chunk(self, batch: str, index: int, offset: int, data: bytes) -> None:
        self.upload._on_msg(self.upload, {"type": "chunk", "batch": batch, "index": index, "offset": offset},
                            [memoryview(data)])

    def send_file(self, batch: str, index: int, data: bytes) -> None:
        """Send ``data`` as file ``index`` of ``batch`` in slices of the upload's ``chunk_bytes``."""
        step = self.upload.chunk_bytes
        for offset in range(0, len(data), step):
            self.chunk(batch, index, offset, data[offset:offset + step])

    def kinds(self) -> list[str]:
        return [a["type"] for a in self.answers]
