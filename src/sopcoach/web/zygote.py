"""Start page kernels by forking a process that has imported them already (a kernel zygote).

A page kernel spends ~1.3 CPU-seconds before it can serve anyone, most of it importing ipykernel,
ipywidgets, SQLAlchemy, pydantic and sopcoach. A cohort arriving together starts one kernel per
learner (and one more per reload), so on two cores those imports alone queue arrivals for tens of
seconds. The learner server therefore starts one *zygote* (:func:`serve`) that imports all of it
once and then forks a child for every kernel; the child runs ipykernel exactly as
``python -m ipykernel_launcher -f <connection file>`` would, with the environment and working
folder jupyter_client asked for. A fork costs milliseconds and shares the imported modules'
memory with its siblings until they write to it.

:class:`ForkProvisioner` is the jupyter_client kernel provisioner (entry point
``sopcoach-fork``) that asks the zygote instead of starting a new Python. It behaves like
jupyter_client's ``LocalProvisioner`` in every other respect (signals to the kernel's process
group, kill, wait); when the zygote is not running or the command is not an ipykernel launch, it
falls back to ``LocalProvisioner``'s ``Popen``.

The zygote imports modules and loads the content files (:func:`sopcoach.config.load_content`, 0.7
CPU-s a kernel saves); it opens no database, socket or thread before forking (a forked SQLite
connection or thread would be shared unsafely). It exits when the learner server does.
"""
from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner
from setproctitle import getproctitle, setproctitle

from ..config import load_content

__all__ = ["ZYGOTE_ENV", "ForkProvisioner", "ForkedProcess", "serve"]

#: Environment variable naming the zygote's Unix socket (set by the learner server).
ZYGOTE_ENV = "SOPCOACH_ZYGOTE"
#: Modules the zygote imports before forking.
PRELOAD = ("setproctitle", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger", "ipywidgets",
           "anywidget", "sqlalchemy.orm", "sopcoach.ui")


class ForkedProcess:
    """The ``Popen``-like handle of a kernel forked by the zygote (not a child of this process)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None

    def poll(self) -> int | None:
        """Return ``None`` while the kernel runs, else its exit status (0: unknown, it was not our child)."""
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
                with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        self.returncode = 0
            except (ProcessLookupError, FileNotFoundError):
                self.returncode = 0
            except PermissionError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"kernel process {self.pid} still running")
            time.sleep(0.05)
        return self.returncode or 0

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                self.returncode = 0

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


async def _ask(path: str, request: dict, timeout: float = 10.0) -> dict:
    """Send ``request`` to the zygote at ``path`` and return its answer, without blocking the event loop.

    Raises
    ------
    OSError
        When the zygote cannot be reached or does not answer within ``timeout`` seconds.
    ValueError
        When the answer is not JSON.
    """
    async def exchange() -> bytes:
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(json.dumps(request).encode("utf-8") + b"\n")
            await writer.drain()
            return await reader.readline()
        finally:
            writer.close()

    try:
        data = await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:
        raise OSError(f"the kernel zygote did not answer within {timeout:.0f} s") from None
    return json.loads(data or b"{}")


class ForkProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, with ipykernel launches forked from the zygote."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        path = os.environ.get(ZYGOTE_ENV)
        if not path or len(cmd) < 3 or cmd[1:3] != ["-m", "ipykernel_launcher"]:
            return await super().launch_kernel(cmd, **kwargs)
        env = kwargs.get("env") or dict(os.environ)
        cwd = str(kwargs.get("cwd") or Path.cwd())
        try:
            reply = await _ask(path, {"argv": cmd[3:], "env": env, "cwd": cwd})
            pid = int(reply["pid"])
        except (OSError, ValueError, KeyError) as exc:
            self.log.warning("kernel zygote unavailable (%s); starting a new Python", exc)
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedProcess(pid)  # type: ignore[assignment]
        self.pid, self.pgid = pid, pid  # the child leads its own session and process group
        self.cwd = cwd
        return self.connection_info


def _child(request: dict, listener: socket.socket) -> None:
    """Become the kernel (never returns)."""
    code = 1
    try:
        # Show as what it is (ps, psutil and the tests find kernels by their command line); first,
        # before the environment changes under setproctitle.
        setproctitle(" ".join([sys.executable, "-m", "ipykernel_launcher", *request["argv"]]))
        listener.close()
        os.setsid()
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        # ipywidgets registers its comm targets when it is imported inside a running kernel; here it
        # was imported before the kernel existed, so it is loaded as an IPython extension instead
        # (its public load_ipython_extension), which registers them once the kernel runs.
        # A page kernel keeps no input history: IPython's history is an SQLite file shared by every
        # kernel of the user, written by a thread of each, and nobody reads a page's history.
        # parent_handle: the kernel ends when the zygote does (so when the server is gone, even killed),
        # and it does not print the banner of a kernel started by hand.
        argv = [*request["argv"], "--IPKernelApp.extra_extensions=ipywidgets", "--HistoryManager.enabled=False",
                f"--IPKernelApp.parent_handle={os.getppid()}"]
        sys.argv = [sys.executable, *argv]
        from ipykernel import kernelapp  # noqa: PLC0415 - start-up: the kernel app, only in a forked child
        kernelapp.launch_new_instance(argv=argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(path: str, parent_pid: int) -> None:
    """Import the kernels' modules, then fork a kernel for every request on the Unix socket ``path``.

    A request is one JSON line ``{"argv": [...], "env": {...}, "cwd": "..."}``; the answer is
    ``{"pid": N}``. The zygote exits when ``parent_pid`` (the learner server) is gone.
    """
    # debugpy (imported by ipykernel) warns on import that frozen modules hide breakpoints; nobody
    # debugs a page kernel, and the warning would open the server's log.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    for name in PRELOAD:
        importlib.import_module(name)
    try:  # every kernel starts with the content loaded (the kernel reloads it if a file changed since)
        load_content()
    except Exception as exc:
        print(f"kernel zygote: content not preloaded: {exc}", file=sys.stderr, flush=True)
    # Keep the preloaded objects out of the collector, so children neither scan them nor touch
    # (and so copy) the pages they live on.
    gc.freeze()
    setproctitle(getproctitle())  # moves the environment aside once, so children can retitle
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the system
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    listener.listen(64)
    listener.settimeout(2.0)
    print(f"kernel zygote ready at {path}", file=sys.stderr, flush=True)
    while True:
        if os.getppid() != parent_pid:
            break
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            try:
                conn.settimeout(10.0)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(1 << 20)
                    if not chunk:
                        break
                    data += chunk
                request = json.loads(data)
                pid = os.fork()
                if pid == 0:
                    conn.close()
                    _child(request, listener)
                conn.sendall(json.dumps({"pid": pid}).encode("utf-8") + b"\n")
            except (OSError, ValueError, KeyError) as exc:
                print(f"kernel zygote: bad request: {exc}", file=sys.stderr, flush=True)
    listener.close()
    try:
        os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
