"""Serve a folder of learner notebooks with Voila, locked down and preheated.

:func:`voila_command` builds the argv for ``python -m voila <root>``, :func:`run_voila` runs it in
the foreground and :func:`free_port` picks a free local port (tests and benchmarks).

What the command sets, and why (read off the Voila 0.5.13 source: ``voila/app.py``,
``voila/configuration.py``, ``voila/voila_kernel_manager.py``):

``<root>`` (a directory, positional)
    Voila's folder mode: ``Voila.root_dir`` becomes ``root`` and the contents manager, the kernel
    cwd and ``/voila/files/`` are confined to it (paths resolving outside it answer 404/403).
    Notebooks are rendered at ``/voila/render/<relative path>.ipynb``; ``/`` and ``/voila/tree/``
    list notebooks and folders only.
``--Voila.ip=<host>`` / ``--Voila.port=<port>`` / ``--Voila.port_retries=0``
    Bind loopback only. Voila otherwise silently tries 50 other ports when the port is taken,
    so a caller polling ``port`` would talk to nothing (or to someone else's server).
``--Voila.config_file_paths=[]``
    Voila reads ``voila.py``/``voila.json`` from the *current directory* and every Jupyter config
    dir; pinning the list empty makes this argv the whole configuration, so a stray file cannot
    widen ``file_allowlist`` or turn tracebacks on. (Traitlets 5 warns that the ``=[]`` form is
    deprecated; it still works and has no replacement for "empty".)
``--VoilaConfiguration.preheat_kernel=True`` + ``default_pool_size=<pool_size>``
    With a folder root, ``VoilaKernelManager.__init__`` walks ``root.rglob("*.ipynb")`` (skipping
    ``.ipynb_checkpoints`` and ``VoilaKernelManager.preheat_denylist``) and fills one pool per
    notebook, keyed by the path relative to ``root``, which is exactly the ``<path>`` of
    ``/voila/render/<path>``, so the pooled kernels are used (the log says "Using pre-heated
    kernel"). The per-notebook ``VoilaKernelManager.kernel_pools_config`` is left at its default
    (``{"default": {"pool_size": default_pool_size}}``), i.e. every notebook gets ``pool_size``
    kernels; pass it through ``extra`` to tune single notebooks. Notebooks added after start-up
    have no pool and fall back to a fresh kernel. ``pool_size <= 0`` turns preheating off
    (``preheat_kernel=False``). Preheating is incompatible with ``prelaunch_hook`` and with
    ``progressive_rendering``; neither is set.
``--MappingKernelManager.cull_idle_timeout`` / ``cull_interval``
    Voila does not shut a kernel down when its page closes; jupyter_server's culler does it once
    the kernel has been idle and unconnected that long. Pooled kernels are never culled.
``--VoilaConfiguration.show_tracebacks=False``
    Errors reach the learner without the code and paths of a traceback (it is also the default;
    stated so that ``extra``/defaults cannot drift silently).
``--VoilaConfiguration.theme=light``
    The learner apps are designed against the light JupyterLab theme.
``--VoilaConfiguration.allow_template_override=NOTEBOOK`` / ``allow_theme_override=NOTEBOOK``
    By default any visitor can add ``?template=...`` to a URL. Measured on 0.5.13: an unknown or
    non-HTML template (e.g. ``?template=script``) starts a kernel and then hangs the request
    forever on ``TemplateNotFound``, a cheap way to pile up kernels. Templates and themes may
    still come from the notebook's own ``metadata.voila``.
``file_allowlist`` / ``file_denylist``
    Not passed: Voila's defaults serve only ``.png/.jpg/.gif/.svg`` below ``root`` from
    ``/voila/files/`` and never ``.ipynb``/``.py``.
No token
    Voila's default (no ``--token``): the apps are reached on loopback only, through the
    sopcoach launcher. ``/api/kernels`` (the listing) is not routed by Voila at all;
    ``/api/kernels/<uuid>`` and its websocket answer to whoever knows the UUID, and the websocket
    only relays comm/kernel-info messages (no ``execute_request``).
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["free_port", "run_voila", "voila_command"]

_LOOPBACK_NAMES = {"localhost"}


def _check_loopback(host: str) -> None:
    """Raise unless ``host`` is a loopback address (or ``localhost``)."""
    if host in _LOOPBACK_NAMES:
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be a loopback IP address, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"sopcoach serves on loopback only, refusing to bind {host!r}")


def voila_command(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8866,
    pool_size: int = 2,
    cull_idle_seconds: int = 600,
    cull_interval_seconds: int = 60,
    extra: Sequence[str] = (),
) -> list[str]:
    """Build the argv that serves the notebooks folder ``root`` with Voila.

    Only ``root`` is reachable: notebooks render at ``/voila/render/<path>.ipynb`` and
    ``/voila/files/`` serves nothing but images below ``root``. See the module docstring for
    each option and the reason for it.

    Parameters
    ----------
    root : Path
        The notebooks folder to serve (e.g. ``notebooks/learner``). It is resolved to an
        absolute path.
    host : str, default "127.0.0.1"
        Loopback address to bind (``127.0.0.1``, ``::1`` or ``localhost``).
    port : int, default 8866
        TCP port. Voila is told not to fall back to another port when this one is taken.
    pool_size : int, default 2
        Preheated kernels kept ready per notebook found under ``root`` at start-up;
        ``0`` or less disables preheating.
    cull_idle_seconds : int, default 600
        Shut a kernel down after it has been idle and without a browser connection this long.
    cull_interval_seconds : int, default 60
        How often the culler checks.
    extra : Sequence[str], default ()
        Further Voila options appended last (a later option wins over an earlier one).

    Returns
    -------
    list[str]
        The argv, starting with ``sys.executable, "-m", "voila"``.

    Raises
    ------
    NotADirectoryError
        If ``root`` is not an existing directory.
    ValueError
        If ``host`` is not a loopback address, ``port`` is out of range or a culling
        duration is not positive.

    Examples
    --------
    >>> argv = voila_command(Path("."), port=9000, pool_size=0)
    >>> argv[1:3], "--no-browser" in argv, "--Voila.port=9000" in argv
    (['-m', 'voila'], True, True)
    >>> "--VoilaConfiguration.preheat_kernel=False" in argv
    True
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"notebooks folder not found: {root}")
    _check_loopback(host)
    if not 0 < int(port) < 65536:
        raise ValueError(f"port out of range: {port!r}")
    if cull_idle_seconds <= 0 or cull_interval_seconds <= 0:
        raise ValueError("cull_idle_seconds and cull_interval_seconds must be positive")

    preheat = pool_size > 0
    argv = [
        sys.executable,
        "-m",
        "voila",
        str(root),
        "--no-browser",
        f"--Voila.ip={host}",
        f"--Voila.port={int(port)}",
        "--Voila.port_retries=0",
        "--Voila.config_file_paths=[]",
        "--VoilaConfiguration.theme=light",
        "--VoilaConfiguration.show_tracebacks=False",
        "--VoilaConfiguration.allow_template_override=NOTEBOOK",
        "--VoilaConfiguration.allow_theme_override=NOTEBOOK",
        f"--VoilaConfiguration.preheat_kernel={preheat}",
    ]
    if preheat:
        argv.append(f"--VoilaConfiguration.default_pool_size={int(pool_size)}")
    argv += [
        f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_seconds)}",
        f"--MappingKernelManager.cull_interval={int(cull_interval_seconds)}",
    ]
    argv += [str(arg) for arg in extra]
    return argv


def run_voila(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8866,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run Voila on ``root`` in the foreground until it exits.

    SIGINT and SIGTERM received by this process are forwarded to the Voila process, which
    then shuts its kernels down and exits. Voila runs in its own session, so a Ctrl-C in the
    terminal reaches it exactly once (through this forwarding).

    Parameters
    ----------
    root : Path
        The notebooks folder to serve, as for :func:`voila_command`.
    host : str, default "127.0.0.1"
        Loopback address to bind.
    port : int, default 8866
        TCP port to bind.
    env : Mapping[str, str] or None, default None
        Complete environment for Voila and its kernels; ``None`` inherits this process's.

    Returns
    -------
    int
        Voila's exit code; ``128 + N`` if it was killed by signal ``N``.

    Raises
    ------
    NotADirectoryError
        If ``root`` is not an existing directory.
    ValueError
        If ``host`` or ``port`` is invalid.
    OSError
        If the Voila process cannot be started.
    """
    argv = voila_command(root, host=host, port=port)
    proc = subprocess.Popen(
        argv, env=dict(env) if env is not None else None, start_new_session=True
    )

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous: dict[int, object] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[signum] = signal.signal(signum, forward)
            except ValueError:  # not the main thread: cannot install handlers
                break
        code = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if proc.poll() is None:  # e.g. an exception in this process: do not leave Voila behind
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 128 - code if code < 0 else code


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now.

    The port is only probed, not reserved: another process may take it before it is used.

    Parameters
    ----------
    host : str, default "127.0.0.1"
        Address to probe.

    Returns
    -------
    int
        A port number chosen by the operating system.

    Raises
    ------
    OSError
        If no socket can be bound on ``host``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
