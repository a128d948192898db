"""Serve a folder of learner notebooks with Voila, locked down and preheated.

:func:`voila_command` builds the argv for ``python -m voila <root>``, :func:`run_foreground` runs a
server's argv in the foreground and :func:`free_port` picks a free local port (tests and benchmarks).

What the command sets, and why (read off the Voila 0.5.13 source: ``voila/app.py``,
``voila/configuration.py``, ``voila/voila_kernel_manager.py``):

``<root>`` (a directory, positional)
    Voila's folder mode: ``Voila.root_dir`` becomes ``root`` and the contents manager, the kernel
    cwd and ``/voila/files/`` are confined to it (paths resolving outside it answer 404/403).
    Notebooks are rendered at ``/voila/render/<relative path>.ipynb``; ``/`` and ``/voila/tree/``
    list notebooks and folders only.
``--Voila.ip=<host>`` / ``--Voila.port=<port>`` / ``--Voila.port_retries=0``
    The address to bind (loopback by default). Voila otherwise silently tries 50 other ports when the port is taken,
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
    kernel"). ``VoilaKernelManager.kernel_pools_config`` gives every notebook (or only those named
    in ``pools``) ``pool_size`` kernels. Notebooks added after start-up
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

Voila's ``lab`` template links Font Awesome's CSS from ``cdn.jsdelivr.net``; both servers render
with the ``sopcoach`` template instead (``--VoilaConfiguration.template=sopcoach``,
:mod:`sopcoach.web.look`), which links the copy each server serves itself.

:func:`learner_command` builds the learner server's argv on top of :func:`voila_command`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "APP_NOTEBOOK",
    "CULL_IDLE_S",
    "CULL_INTERVAL_S",
    "POOL_SIZE",
    "TRAINER_FOLDERS",
    "TRAINER_PORT",
    "TRAITLETS_FORM_NOTICE",
    "free_port",
    "is_loopback",
    "learner_command",
    "quiet_traitlets_notices",
    "run_foreground",
    "run_trainer",
    "run_voila",
    "trainer_command",
    "trainer_site",
    "voila_command",
]

_LOOPBACK_NAMES = {"localhost"}
#: The Voila template of both servers' pages (:mod:`sopcoach.web.look`, which the servers load).
TEMPLATE = "sopcoach"

#: Learner page kernels the learner server keeps preheated. A preheated page answers at once; a
#: learner who arrives when the pool is empty waits for a kernel to start and run the page (several
#: seconds while a cohort arrives). With 2, the p95 of sign-in to home for 50 learners arriving over
#: 60 s on 2 cores was 19 s; with 6 it was 10 s, and 10 did no better (benchmarks/cohort.py). Each
#: waiting kernel holds about 80 MB.
POOL_SIZE = 6
#: The learner page, relative to the learner folder.
APP_NOTEBOOK = "app.ipynb"
#: A kernel idle and without a browser connection this long is stopped (elapsed seconds).
CULL_IDLE_S = 30
#: How often the culler looks (elapsed seconds).
CULL_INTERVAL_S = 10
#: traitlets' notice on the argv forms the commands use to pin a list empty
#: (``--Voila.config_file_paths=[]``) or give a dict (``--VoilaKernelManager.kernel_pools_config={...}``):
#: it calls them deprecated but has no other one-argument form, and Voila shows traitlets' deprecation
#: notices (``voila/__init__.py``); the servers filter it out so that it does not open every log.
TRAITLETS_FORM_NOTICE = r"--\S+=.* for (containers|dict-traits) is deprecated"


def quiet_traitlets_notices() -> None:
    """Keep :data:`TRAITLETS_FORM_NOTICE` out of this process's log (every server's ``main`` calls it
    once Voila is imported, since importing Voila turns traitlets' deprecation notices back on)."""
    warnings.filterwarnings("ignore", message=TRAITLETS_FORM_NOTICE, category=DeprecationWarning)


def _check_host(host: str) -> None:
    """Raise ``ValueError`` unless ``host`` is an IP address or ``localhost``."""
    if host in _LOOPBACK_NAMES:
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--host must be an IP address of this machine (e.g. 127.0.0.1 or 0.0.0.0), "
                         f"got {host!r}") from None


def is_loopback(host: str) -> bool:
    """Say whether ``host`` is a loopback address (or ``localhost``)."""
    return host in _LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback


def voila_command(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8866,
    pool_size: int = 2,
    pools: Sequence[str] = (),
    cull_idle_seconds: int = 600,
    cull_interval_seconds: int = 60,
    extra: Sequence[str] = (),
    module: str = "voila",
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
        Address to bind (``127.0.0.1``, ``::1``, ``localhost``, or a network address).
    port : int, default 8866
        TCP port. Voila is told not to fall back to another port when this one is taken.
    pool_size : int, default 2
        Preheated kernels kept ready per notebook found under ``root`` at start-up;
        ``0`` or less disables preheating.
    pools : Sequence[str], default ()
        Preheat only these notebooks (paths relative to ``root``); empty: every notebook.
    cull_idle_seconds : int, default 600
        Shut a kernel down after it has been idle and without a browser connection this long.
    cull_interval_seconds : int, default 60
        How often the culler checks.
    extra : Sequence[str], default ()
        Further Voila options appended last (a later option wins over an earlier one).
    module : str, default "voila"
        The module run with ``python -m``: ``voila``, ``sopcoach.web.launch`` (Voila with a quiet log,
        :func:`run_voila`: the trainer server) or ``sopcoach.web.server`` (the learner server, a Voila
        application, see :func:`learner_command`).

    Returns
    -------
    list[str]
        The argv, starting with ``sys.executable, "-m", "voila"``.

    Raises
    ------
    NotADirectoryError
        If ``root`` is not an existing directory.
    ValueError
        If ``host`` is not an IP address, ``port`` is out of range or a culling
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
    _check_host(host)
    if not 0 < int(port) < 65536:
        raise ValueError(f"port out of range: {port!r}")
    if cull_idle_seconds <= 0 or cull_interval_seconds <= 0:
        raise ValueError("cull_idle_seconds and cull_interval_seconds must be positive")

    preheat = pool_size > 0
    argv = [
        sys.executable,
        "-m",
        module,
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
        config = {"default": {"pool_size": 0 if pools else int(pool_size)}}
        config.update({name: {"pool_size": int(pool_size)} for name in pools})
        argv.append(f"--VoilaConfiguration.default_pool_size={int(pool_size)}")
        argv.append(f"--VoilaKernelManager.kernel_pools_config={json.dumps(config)}")
    argv += [
        f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_seconds)}",
        f"--MappingKernelManager.cull_interval={int(cull_interval_seconds)}",
    ]
    argv += [str(arg) for arg in extra]
    return argv


def learner_command(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8866,
    base_url: str = "/",
    allowed_hosts: Sequence[str] = (),
    max_pages: int = 200,
    pool_size: int = POOL_SIZE,
    trust_proxy: bool = False,
    hub: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """Build the argv of the learner server (:mod:`sopcoach.web.server`) on the learner folder ``root``.

    Only ``app.ipynb`` of ``root`` is served (at ``<base_url>learn/``), behind the sign-in page; it
    keeps ``pool_size`` kernels preheated. A kernel idle and without a browser connection for
    :data:`CULL_IDLE_S` seconds is stopped (the culler looks every
    :data:`CULL_INTERVAL_S` seconds); the page's own beacon usually stops it
    at once when the page closes.

    Parameters
    ----------
    root : Path
        The learner notebooks folder (holding ``app.ipynb``).
    host, port
        Address and TCP port to bind (loopback by default).
    base_url : str, default "/"
        The prefix the server lives under, e.g. ``/sop/`` behind a reverse proxy; it must start
        and end with ``/``.
    allowed_hosts : Sequence[str]
        Host names the server answers to besides loopback and ``host`` (the proxy's public name).
    max_pages : int, default 200
        Open learner pages (kernels) at once before newcomers are told the server is busy.
    pool_size : int, default :data:`POOL_SIZE`
        Preheated kernels kept ready.
    trust_proxy : bool, default False
        Take the client address and scheme from the proxy's ``X-Forwarded-*`` headers.
    hub : bool, default False
        Run as a JupyterHub user's server (:mod:`sopcoach.web.hub`): the Hub's OAuth instead of the
        sign-in page, only the server's owner let in. ``base_url`` is then the Hub's prefix for the
        server (``/user/<name>/``).

    Returns
    -------
    list[str]

    Raises
    ------
    NotADirectoryError, ValueError
        As :func:`voila_command`; ``ValueError`` also for a ``base_url`` that does not start and
        end with ``/`` or a negative ``max_pages``.

    Examples
    --------
    >>> argv = learner_command(Path("."), base_url="/sop/", allowed_hosts=["learn.example.com"])
    >>> argv[2], "--Voila.base_url=/sop/" in argv
    ('sopcoach.web.server', True)
    >>> '--LearnerServer.allowed_hosts=["learn.example.com"]' in argv
    True
    """
    if not base_url.startswith("/") or not base_url.endswith("/") or "//" in base_url:
        raise ValueError(f"--base-url must start and end with '/' (e.g. /sop/), got {base_url!r}")
    if max_pages < 0:
        raise ValueError(f"--max-pages must be 0 (no cap) or more, got {max_pages}")
    _check_host(host)  # before loading the server: a bad option is refused at once
    names = [str(n).strip() for n in allowed_hosts if str(n).strip()]
    argv = voila_command(root, host=host, port=port, pool_size=pool_size, pools=(APP_NOTEBOOK,),
                         cull_idle_seconds=CULL_IDLE_S, cull_interval_seconds=CULL_INTERVAL_S,
                         module="sopcoach.web.server")
    if pool_size > 0:
        argv.append("--VoilaKernelManager.fill_delay=0")  # a taken kernel is replaced at once
    argv += [
        f"--Voila.base_url={base_url}",
        f"--LearnerServer.allowed_hosts={json.dumps(names)}",
        f"--LearnerServer.max_pages={int(max_pages)}",
        f"--LearnerServer.trust_xheaders={bool(trust_proxy)}",
        f"--LearnerServer.hub={bool(hub)}",
        "--MappingKernelManager.cull_connected=False",
        # A page kernel that dies stays dead: restarted, it would come back under the same id as an
        # empty kernel without the page's app, and be handed out (or kept) as if it were healthy.
        "--KernelManager.autorestart=False",
        # Server and kernels speak over Unix sockets in the kernels' private connection folder, not
        # loopback TCP ports any local process can reach.
        "--KernelManager.transport=ipc",
        # nbclient waits this long for the outputs of the preheat run; its 4 s default, on a busy
        # machine, can leave a page without its widget output (a blank page).
        "--VoilaExecutor.iopub_timeout=60",
        "--VoilaConfiguration.file_allowlist=[]",
        f"--VoilaConfiguration.template={TEMPLATE}",
    ]
    return argv + [str(a) for a in extra]


def run_foreground(argv: list[str], env: Mapping[str, str] | None) -> int:
    """Run a server's ``argv`` (:func:`learner_command`, :func:`trainer_command`) in the foreground until it exits.

    SIGINT and SIGTERM received by this process are forwarded to the server as SIGTERM, which
    Voila handles like Ctrl-C: it stops serving, shuts its kernels down and exits. (SIGTERM
    because Voila inherits an *ignored* SIGINT when started from a background job, and then
    ignores a forwarded SIGINT.) A second signal kills the server. It runs in its own session, so
    a Ctrl-C in the terminal reaches it only through this forwarding.

    Parameters
    ----------
    argv : list[str]
        The command.
    env : Mapping[str, str] or None
        Complete environment for the server and its kernels; ``None`` inherits this process's.

    Returns
    -------
    int
        The server's exit code; ``128 + N`` if it was killed by signal ``N``.

    Raises
    ------
    OSError
        If the process cannot be started.
    """
    proc = subprocess.Popen(
        argv, env=dict(env) if env is not None else None, start_new_session=True
    )

    received = 0

    def forward(_signum: int, _frame: object) -> None:
        nonlocal received
        received += 1
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM if received == 1 else signal.SIGKILL)

    previous: dict[signal.Signals, Any] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[signum] = signal.signal(signum, forward)
            except ValueError:  # not the main thread: cannot install handlers
                break
        code = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
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


# -- the trainer server ---------------------------------------------------------------------------
#: The notebook folders the trainer server serves (never ``learner``).
TRAINER_FOLDERS = ("trainer", "review")
#: The trainer server's default port (the learner app's is 8866).
TRAINER_PORT = 8867


def trainer_site(notebooks: Path, site: Path) -> Path:
    """Lay out the trainer server's root: ``site`` holding only links to the trainer folders.

    ``site/trainer`` and ``site/review`` are symbolic links to ``notebooks/trainer`` and
    ``notebooks/review`` (edits to those notebooks show at once); nothing else is placed in
    ``site``, so ``notebooks/learner`` and the content files are not below the trainer server's
    root either. Stale entries in ``site`` are removed.

    Parameters
    ----------
    notebooks : Path
        The project's ``notebooks/`` folder.
    site : Path
        The folder to (re)create, e.g. ``$SOPCOACH_HOME/trainer-site``.

    Returns
    -------
    Path
        ``site``, resolved.

    Raises
    ------
    NotADirectoryError
        When ``notebooks/trainer`` is missing.
    """
    notebooks = Path(notebooks).expanduser().resolve()
    if not (notebooks / "trainer").is_dir():
        raise NotADirectoryError(f"trainer notebooks not found: {notebooks / 'trainer'}")
    site = Path(site).expanduser().resolve()
    site.mkdir(parents=True, exist_ok=True)
    for entry in site.iterdir():
        if entry.name not in TRAINER_FOLDERS:
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
    for name in TRAINER_FOLDERS:
        link, target = site / name, notebooks / name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == target:
                continue
            link.unlink()
        if target.is_dir():
            link.symlink_to(target, target_is_directory=True)
    return site


def trainer_command(site: Path, *, host: str = "127.0.0.1", port: int = TRAINER_PORT, hub_prefix: str = "",
                    extra: Sequence[str] = ()) -> list[str]:
    """Build the argv of the trainer server: :func:`voila_command` on ``site``, token required.

    The token is not in the argv (where ``ps`` would show it): Voila's identity provider reads it
    from the ``JUPYTER_TOKEN`` environment variable, which :func:`run_trainer` sets. Every page,
    the notebook tree, the contents API and the kernels API then answer only with the token
    (``?token=...`` once, then a cookie, or an ``Authorization: token ...`` header).
    ``/voila/files/`` (Voila's unauthenticated file route) is switched off with an empty
    allowlist. No preheated kernels: trainers are few, and a pool per notebook would idle.

    With ``hub_prefix`` (e.g. ``/services/sopcoach-trainer/``) it is a JupyterHub service instead:
    :class:`sopcoach.web.hub.TrainerHubServer` under that prefix, the Hub's OAuth instead of a
    token (only Hub users holding the service's access scope get in).

    Examples
    --------
    >>> argv = trainer_command(Path("."), port=9001)
    >>> "--Voila.auto_token=True" in argv, "--Voila.port=9001" in argv
    (True, True)
    >>> argv = trainer_command(Path("."), hub_prefix="/services/t/")
    >>> argv[2], "--Voila.base_url=/services/t/" in argv, "--Voila.auto_token=True" in argv
    ('sopcoach.web.hub', True, False)
    """
    if hub_prefix:
        if not hub_prefix.startswith("/") or not hub_prefix.endswith("/"):
            raise ValueError(f"the Hub's prefix must start and end with '/', got {hub_prefix!r}")
        return voila_command(site, host=host, port=port, pool_size=0, module="sopcoach.web.hub",
                             extra=[f"--Voila.base_url={hub_prefix}", "--VoilaConfiguration.file_allowlist=[]",
                                    f"--VoilaConfiguration.template={TEMPLATE}", *extra])
    return voila_command(site, host=host, port=port, pool_size=0, module="sopcoach.web.trainer",
                         extra=["--Voila.auto_token=True", "--VoilaConfiguration.file_allowlist=[]",
                                f"--VoilaConfiguration.template={TEMPLATE}", *extra])


def run_trainer(notebooks: Path, site: Path, token: str, host: str = "127.0.0.1", port: int = TRAINER_PORT,
                env: Mapping[str, str] | None = None) -> int:
    """Serve the trainer and review notebooks, protected by ``token``, until Voila exits.

    Parameters
    ----------
    notebooks : Path
        The project's ``notebooks/`` folder.
    site : Path
        Where to lay out the server's root (see :func:`trainer_site`).
    token : str
        The access token (at least 16 characters).
    env : Mapping, optional
        Environment for Voila and its kernels (``JUPYTER_TOKEN`` is set from ``token``).

    Returns
    -------
    int
        Voila's exit code.

    Raises
    ------
    ValueError
        When the token is shorter than 16 characters, or host/port are invalid.
    """
    if len(token) < 16:
        raise ValueError("the trainer token must have at least 16 characters")
    root = trainer_site(notebooks, site)
    full = dict(env if env is not None else os.environ)
    full["JUPYTER_TOKEN"] = token
    argv = trainer_command(root, host=host, port=port)
    return run_foreground(argv, full)


def run_voila(argv: Sequence[str] | None = None) -> None:
    """Run Voila's own application (the trainer server: ``python -m sopcoach.web.launch ROOT [options]``).

    The same as ``python -m voila``, with :data:`TRAITLETS_FORM_NOTICE` kept out of the log.
    """
    from voila.app import main  # noqa: PLC0415 - start-up: Voila, only in the trainer server's own process

    quiet_traitlets_notices()
    main(list(argv) if argv is not None else None)


if __name__ == "__main__":
    run_voila(sys.argv[1:])
