"""The ``sopcoach`` command: ``serve`` (``--trainer``), ``check``, ``results``, ``enroll``, ``revoke``
(and the sub-commands of :data:`COMMAND_MODULES`: ``db``, ``import``/``export``, ``analyze``, the trainer's,
``remind`` and ``demo``; ``enroll --roster`` is :mod:`sopcoach.cli.cohort`'s).

Every command finds the content folder, data home and database with :func:`sopcoach.config.settings`
(``--content``, ``--home``, ``--db-url``, else ``SOPCOACH_CONTENT``, ``SOPCOACH_HOME``,
``SOPCOACH_DB_URL``, else the project folder); a command that reads or writes records first prints
``database: URL (where it came from)`` on stderr.

Exit codes: 0 success; 1 content problems, bad input or a refused action; 2 usage errors. Every
:class:`~sopcoach.errors.SopcoachError` ends as one line on stderr (one per problem for content
problems), never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import os
import secrets
import sys
from datetime import date
from pathlib import Path
from collections.abc import Sequence

from ..config import PROJECT_ROOT, content_folder, installation, look, require_database, settings
from ..content.check import check_paths, provenance_summary
from ..content.playbook import load_playbook
from ..errors import AuthError, ConfigError, SopcoachError, UsageError
from ..i18n import LANGS, current_lang
from ..spreadsheet import safe_row
from ..web.launch import (POOL_SIZE, TEMPLATE, TRAINER_PORT, is_loopback, learner_command, run_foreground,
                          run_trainer, trainer_command, trainer_site)
from . import cohort, crm, db, interchange, trainer



#: Preheated page kernels of a learner server behind JupyterHub: the server has one learner, whose
#: first page then opens at once (a second kernel is preheated when it is taken).
HUB_POOL_SIZE = 1
#: The name of the demo learner a first ``sopcoach serve`` enrolls.
DEMO_NAME = "演示学员 Demo Learner"

def _cmd_lab(args: argparse.Namespace) -> int:
    """Run JupyterLab on the content folder (127.0.0.1, no browser) until interrupted; return its exit code."""
    content = content_folder(args.content)
    lang = args.lang or current_lang()
    token = args.token or secrets.token_urlsafe(24)
    env = {**os.environ, "SOPCOACH_CONTENT": str(content), "SOPCOACH_LANG": lang}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={args.port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={content}", f"--IdentityProvider.token={token}",
           "--VoilaExporter.preprocessors=['sopcoach.lessons.preview.LessonPreview']",
           # the preview in the learner's look, Font Awesome from this server (sopcoach.web.lab)
           "--ServerApp.jpserver_extensions={'sopcoach.web.lab': True}", f"--VoilaConfiguration.template={TEMPLATE}"]
    from ..web.look import TEMPLATE_ROOT  # noqa: PLC0415 - imports Voila: only for this command
    paths = [str(TEMPLATE_ROOT), *(p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p)]
    env["JUPYTER_PATH"] = os.pathsep.join(paths)  # Voila's preview finds the template when it loads
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # a container; JupyterLab refuses root without it
        cmd.append("--allow-root")
    print(f"JupyterLab on {content} (preview language {lang}): "
          f"http://127.0.0.1:{args.port}/lab/tree/lessons?token={token}\n"
          "Edit a lesson in lessons/, then use the Voila preview button for the learner's view; "
          "`sopcoach check` checks the lessons.", flush=True)
    return run_foreground(cmd, env)


def _cmd_check(args: argparse.Namespace) -> int:
    # Given files are checked against the content's playbook when there is one (an installed package
    # may have none); without files the content folder itself is checked, so it must exist.
    content = content_folder(args.content, required=not args.paths)
    if not args.paths:
        print(f"checking {content}", file=sys.stderr)
    home = settings(content, create_home=False).home if content is not None else None
    problems = check_paths([Path(p) for p in args.paths], content or PROJECT_ROOT, home)
    for p in problems:
        print(p)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        print(f"{len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"ok: no problems, {len(problems)} warning(s)" if problems else "ok: no problems", file=sys.stderr)
    if not args.paths:
        print(provenance_summary(load_playbook((content or PROJECT_ROOT) / "playbook")), file=sys.stderr)
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    inst = installation(args.settings)
    if inst.records.learner(args.id) is None:
        raise AuthError(f"no learner with employee id {args.id!r} in this database")
    ended = inst.records.end_sessions(args.id, reason="revoked")
    print(f"revoked: {ended} session(s) of {args.id} ended; the learner server stops their open page within 10 s")
    return 0


def _cmd_enroll(args: argparse.Namespace) -> int:
    if args.roster:
        if args.id or args.name:
            raise UsageError("give either --roster FILE or --id and --name, not both")
        return cohort.enroll_roster(args)
    if not (args.id and args.name):
        raise UsageError("enroll needs --id and --name (one learner) or --roster FILE (a cohort)")
    inst = installation(args.settings)
    code = inst.records.enroll(args.id, args.name, team=args.team, cohort=args.cohort)
    print(f"enrolled {args.id} ({args.name}); access code: {code}")
    print("give the code to the learner in person; it is shown only once")
    return 0


RESULT_COLUMNS = ["attempt_id", "learner_id", "name", "team", "cohort", "exam_id", "number", "state",
                  "started_at", "closed_at", "minutes_taken", "score", "percent", "passed",
                  "playbook_version"]


def _cmd_results(args: argparse.Namespace) -> int:
    import pandas as pd  # noqa: PLC0415 - heavy: pandas, only for `sopcoach results`

    from ..certification.results import (  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
        attempt_rows,
        export_bytes,
        person_table,
    )
    if args.format == "xlsx" and not args.output:
        raise UsageError("--format xlsx writes a file: give it with -o FILE.xlsx")
    inst = installation(args.settings)
    filters = dict(team=args.team, cohort=args.cohort, since=args.since, until=args.until,
                   timezone=inst.playbook.calendar.timezone)
    if args.by == "person":
        table = person_table(inst.records, inst.blueprint.id, **filters)
    else:
        rows = attempt_rows(inst.records, **filters)
        table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    if args.format == "xlsx":
        Path(args.output).write_bytes(export_bytes(table, "xlsx", sheet=args.by))
        return 0
    out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.by == "person":
            text = export_bytes(table, args.format).decode("utf-8-sig")
            out.write(text)
        elif args.format == "json":
            json.dump(rows, out, ensure_ascii=False, indent=2)
            out.write("\n")
        else:
            writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(safe_row(r) for r in rows)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _iso_date(text: str):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD (got {text!r})") from None


def _cmd_serve(args: argparse.Namespace) -> int:
    """Run ``sopcoach serve``.

    :mod:`sopcoach.web.launch` reports an unusable option (``--host``, ``--base-url``, ``--port``,
    ``--max-pages``, the token) as ``ValueError``; here it becomes a :class:`UsageError` (one line,
    exit code 2).
    """
    try:
        return _serve(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _serve(args: argparse.Namespace) -> int:
    s = settings(args.content, args.home, args.db_url)
    inst = installation(s)  # fails early, with every content problem, before the server starts
    look()  # likewise an unusable company colour or logo (every page shows them)
    env = dict(os.environ, SOPCOACH_HOME=str(s.home), SOPCOACH_DB_URL=s.db_url, SOPCOACH_LANG=s.lang,
               SOPCOACH_CONTENT=str(s.content))
    if args.hub:
        return _serve_hub(args, s, env)
    if args.trainer:
        return _serve_trainer(args, s, env)
    port = args.port or 8866
    shown = f"[{args.host}]" if ":" in args.host else args.host
    try:
        argv = learner_command(s.notebooks_dir / "learner", host=args.host, port=port, base_url=args.base_url,
                               allowed_hosts=args.allowed_host, max_pages=args.max_pages,
                               pool_size=POOL_SIZE if args.pool_size is None else args.pool_size,
                               trust_proxy=args.trust_proxy)
    except NotADirectoryError as exc:
        raise ConfigError(str(exc)) from None
    if not inst.records.learners():  # only once the options are known to be usable
        code = inst.records.enroll("demo", DEMO_NAME, team="demo", cohort="demo")
        print(f"\nDemo learner for a first try: employee id 'demo', access code '{code}'\n"
              f"(lost it? `.venv/bin/sopcoach enroll --id demo --name '{DEMO_NAME}'` issues a new one)\n", flush=True)
    if not is_loopback(args.host) and not args.allowed_host:
        print("note: serving on a network address; add --allowed-host NAME for the name learners type "
              "(or the reverse proxy's public name), and put TLS in front (README: 'On a network').", flush=True)
    if ipaddress.ip_address(args.host if args.host != "localhost" else "127.0.0.1").is_unspecified:
        shown = "127.0.0.1"  # every interface: this machine's own address works, and is allowed
    print(f"{s.database_line()}\nlearner app: http://{shown}:{port}{args.base_url}", flush=True)
    return run_foreground(argv, env)


def _serve_trainer(args: argparse.Namespace, s, env: dict) -> int:
    """Serve notebooks/trainer and notebooks/review on their own port, behind a token."""
    token = os.environ.get("SOPCOACH_TRAINER_TOKEN") or secrets.token_urlsafe(24)
    if len(token) < 16:
        raise ConfigError("SOPCOACH_TRAINER_TOKEN must have at least 16 characters")
    port = args.port or TRAINER_PORT
    env.pop("SOPCOACH_TRAINER_TOKEN", None)
    base = f"http://{args.host}:{port}"
    print(f"{s.database_line()}\ntrainer app (keep the token private): {base}/?token={token}\n"
          f"  playbook changes: {base}/voila/render/trainer/playbook_changes.ipynb?token={token}", flush=True)
    try:
        return run_trainer(s.notebooks_dir, s.home / "trainer-site", token, host=args.host, port=port, env=env)
    except NotADirectoryError as exc:
        raise ConfigError(str(exc)) from None


def _serve_hub(args: argparse.Namespace, s, env: dict) -> int:
    """Run the learner server as a JupyterHub user's server, or (``--trainer``) the trainer server as a
    Hub service: address, port and prefix come from the Hub's environment, the Hub's OAuth is the door."""
    try:
        from ..web.hub import hub_server  # noqa: PLC0415 - optional dependency (the hub extra: jupyterhub)
    except ImportError as exc:
        raise ConfigError(f"--hub needs JupyterHub installed (pip install 'sopcoach[hub]'): {exc}") from None
    where = hub_server(service=args.trainer)
    try:
        if args.trainer:
            site = trainer_site(s.notebooks_dir, s.home / "trainer-site")
            argv = trainer_command(site, host=where.host, port=where.port, hub_prefix=where.prefix)
        else:
            argv = learner_command(s.notebooks_dir / "learner", host=where.host, port=where.port, base_url=where.prefix,
                                   allowed_hosts=[*args.allowed_host, *([where.public_host] if where.public_host else [])],
                                   max_pages=args.max_pages, pool_size=HUB_POOL_SIZE if args.pool_size is None else args.pool_size,
                                   trust_proxy=True, hub=True)
    except NotADirectoryError as exc:
        raise ConfigError(str(exc)) from None
    what = "trainer app (Hub service)" if args.trainer else f"learner app of {where.user}"
    print(f"{s.database_line()}\n{what} behind JupyterHub at http://{where.host}:{where.port}{where.prefix}", flush=True)
    return run_foreground(argv, env)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sopcoach", description="Teach, examine and audit a sales SOP.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the learner app with Voila (or, with --trainer, the trainer app)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 for every network interface)")
    s.add_argument("--port", type=int, default=None, help="default 8866 (learner app), 8867 (--trainer)")
    s.add_argument("--base-url", default="/", metavar="/PREFIX/",
                   help="serve under this path prefix, e.g. /sop/ behind a reverse proxy (learner app)")
    s.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a host name learners reach the server by (e.g. learn.example.com); repeatable. "
                        "Requests for any other name are refused (loopback is always allowed)")
    s.add_argument("--max-pages", type=int, default=200, metavar="N",
                   help="open learner pages (one kernel each) at once before newcomers are asked to try "
                        "again in a minute (default 200; 0 = no cap)")
    s.add_argument("--pool-size", type=int, default=None, metavar="N",
                   help=f"preheated kernels kept ready for arriving learners (default {POOL_SIZE}; "
                        f"{HUB_POOL_SIZE} with --hub, where the server has one learner)")
    s.add_argument("--trust-proxy", action="store_true",
                   help="behind a reverse proxy: take the client address and https from X-Forwarded-* headers")
    s.add_argument("--trainer", action="store_true",
                   help="serve notebooks/trainer and notebooks/review behind a token "
                        "($SOPCOACH_TRAINER_TOKEN, else a new one printed at start)")
    s.add_argument("--hub", action="store_true",
                   help="run under JupyterHub (started by the Hub's spawner, or as a Hub service with --trainer): "
                        "address, port and prefix come from the Hub, its login is the door (docs/deploy.md)")
    s.set_defaults(func=_cmd_serve)
    lab = sub.add_parser("lab", help="JupyterLab on the content, for trainers writing lessons (lessons/*.ipynb) "
                         "with the learner's view in the Voila preview")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("--lang", choices=list(LANGS), default=None,
                     help="language of the preview and of the lesson calls (default: SOPCOACH_LANG, else zh-CN)")
    lab.add_argument("--token", default=None, help="the token to open JupyterLab with (default: a new one, printed)")
    lab.set_defaults(func=_cmd_lab)
    c = sub.add_parser("check", help="validate playbook/, quizzes/ and lessons/ (or the given files)")
    c.add_argument("paths", nargs="*")
    c.set_defaults(func=_cmd_check)
    r = sub.add_parser("results", help="export exam attempts (or a summary per person)")
    r.add_argument("--format", choices=["csv", "json", "xlsx"], default="csv", help="xlsx needs -o FILE")
    r.add_argument("-o", "--output")
    r.add_argument("--by", choices=["attempt", "person"], default="attempt",
                   help="one row per attempt (default) or per person: attempts, best and last score, "
                        "pass status, time taken, certificate")
    r.add_argument("--team", help="only learners of this team")
    r.add_argument("--cohort", help="only learners of this cohort")
    r.add_argument("--since", type=_iso_date, help="attempts started on or after this date (YYYY-MM-DD, "
                   "playbook time zone)")
    r.add_argument("--until", type=_iso_date, help="attempts started on or before this date")
    r.set_defaults(func=_cmd_results, uses_records=True)
    e = sub.add_parser("enroll", help="enroll a learner and issue a personal access code (or a cohort: --roster)")
    e.add_argument("--id", help="employee id (one learner; enrolling a deactivated learner again reactivates them)")
    e.add_argument("--name")
    e.add_argument("--team")
    e.add_argument("--cohort")
    cohort.add_roster_options(e)
    e.set_defaults(func=_cmd_enroll, uses_records=True, creates_records=True)
    v = sub.add_parser("revoke", help="end every signed-in session of a learner (their open page stops)")
    v.add_argument("id")
    v.set_defaults(func=_cmd_revoke, uses_records=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    _location_options(p, None)
    for command in _commands(p):  # also after the command: `sopcoach enroll --home DIR ...`
        _location_options(command, argparse.SUPPRESS)
    return p


def _commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Return every command's parser below ``parser`` (``db``, and ``db upgrade`` below it, ...)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                found += [command, *_commands(command)]
    return found


def _location_options(parser: argparse.ArgumentParser, default: object) -> None:
    """Add ``--content``, ``--home`` and ``--db-url`` (see :func:`sopcoach.config.settings`)."""
    g = parser.add_argument_group("where the installation is (the flag, else the environment variable, else "
                                  "the default; the working directory plays no part)")
    g.add_argument("--content", metavar="DIR", default=default,
                   help="folder holding playbook/ and quizzes/ ($SOPCOACH_CONTENT; default: the project folder)")
    g.add_argument("--home", metavar="DIR", default=default,
                   help="data folder: database, secret key, history ($SOPCOACH_HOME; default: var/ in the "
                        "content folder)")
    g.add_argument("--db-url", metavar="URL", default=default,
                   help="SQLAlchemy database URL ($SOPCOACH_DB_URL; default: sqlite:///HOME/sopcoach.db)")


#: Modules that add sub-commands: each has ``register(subparsers)`` adding parsers whose
#: ``func(args) -> int`` runs the command.
COMMAND_MODULES = (interchange, crm, trainer, db, cohort)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sopcoach`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    A command that uses records (``uses_records``) gets ``args.settings`` (resolved once, see
    :func:`sopcoach.config.settings`) and the database it uses is printed first, on stderr. Only a
    command marked ``creates_records`` (``enroll``, ``db upgrade``) creates a missing data home or
    database; ``inspects_records`` (``db current``) reports one; every other refuses it
    (:func:`sopcoach.config.require_database`, exit code 1) before it runs. Errors
    end as one line on stderr, ``sopcoach COMMAND: message`` (content problems: one
    ``path:line:column: field: message`` line each): exit code 2 for a
    :class:`~sopcoach.errors.UsageError` (argparse exits 2 itself for malformed arguments), 1 for
    any other :class:`~sopcoach.errors.SopcoachError` or a file that cannot be read or written.
    """
    args = build_parser().parse_args(argv)
    name = getattr(args, "command_name", None) or f"sopcoach {args.command}"
    try:
        if getattr(args, "uses_records", False):
            creates = getattr(args, "creates_records", False)
            args.settings = settings(args.content, args.home, args.db_url, create_home=creates)
            print(args.settings.database_line(), file=sys.stderr, flush=True)
            if not creates and not getattr(args, "inspects_records", False):
                require_database(args.settings)
        return args.func(args)
    except SopcoachError as exc:
        problems = getattr(exc, "problems", None)
        if problems:
            for p in problems:
                print(_one_line(str(p)), file=sys.stderr)
        else:
            print(f"{name}: {_one_line(str(exc))}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except OSError as exc:  # a file given on the command line cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{name}: {where}{_one_line(exc.strerror or str(exc))}", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    """Return ``text`` with its line breaks (and runs of blanks) replaced by single spaces."""
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
