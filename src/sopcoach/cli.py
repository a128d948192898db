"""The ``sopcoach`` command: ``serve``, ``check``, ``results``, ``enroll``.

Exit codes: 0 success; 1 content problems (``check``) or a refused action; 2 usage errors.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import ContentError, Problem, SopcoachError


def check_paths(paths: Sequence[Path], content: Path) -> list[Problem]:
    """Validate content files and return every problem (empty when clean).

    With no ``paths``, checks ``playbook/`` and ``quizzes/`` under ``content`` together (banks are
    checked against the playbook). A given folder named ``playbook`` is loaded as a playbook; any
    other YAML file is read as a bank (``questions:``) or a blueprint (``exam:``).
    """
    from ._yaml import load_yaml
    from .playbook import load_playbook
    from .quizbank import load_bank, load_blueprint

    problems: list[Problem] = []
    playbook = None

    def attempt(fn, *args):
        try:
            return fn(*args)
        except ContentError as exc:
            problems.extend(exc.problems)
            return None

    if not paths:
        playbook = attempt(load_playbook, content / "playbook")
        bank = attempt(load_bank, content / "quizzes" / "bank", playbook) if playbook else None
        if playbook is None:  # still report bank syntax/schema problems
            attempt(load_bank, content / "quizzes" / "bank", None)
        attempt(load_blueprint, content / "quizzes" / "blueprint.yaml", bank)
        return problems
    files: list[Path] = []
    for p in paths:
        if p.is_dir() and (p.name == "playbook" or any(p.glob("sop.yaml"))):
            playbook = attempt(load_playbook, p)
        elif p.is_dir():
            files.extend(sorted(p.rglob("*.yaml")))
        elif not p.exists():
            problems.append(Problem(str(p), 0, 0, "", "no such file"))
        else:
            files.append(p)
    if playbook is None and (content / "playbook").is_dir():
        try:
            playbook = load_playbook(content / "playbook")
        except ContentError:
            playbook = None
    for f in files:
        doc = load_yaml(f)
        if doc.problems or not isinstance(doc.data, dict):
            problems.extend(doc.problems or [doc.problem((), "expected a mapping with 'questions' or 'exam'")])
        elif "exam" in doc.data:
            attempt(load_blueprint, f, None)
        else:
            attempt(load_bank, [f], playbook)
    return problems


def _cmd_check(args: argparse.Namespace) -> int:
    from .config import PROJECT_ROOT
    import os
    content = Path(os.environ.get("SOPCOACH_CONTENT") or Path.cwd() if (Path.cwd() / "playbook").is_dir()
                   else PROJECT_ROOT)
    problems = check_paths([Path(p) for p in args.paths], content)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("ok: no problems", file=sys.stderr)
    return 0


def _cmd_enroll(args: argparse.Namespace) -> int:
    from .config import installation
    inst = installation()
    code = inst.records.enroll(args.id, args.name, team=args.team, cohort=args.cohort)
    print(f"enrolled {args.id} ({args.name}); access code: {code}")
    print("give the code to the learner in person; it is shown only once")
    return 0


RESULT_COLUMNS = ["attempt_id", "learner_id", "name", "team", "cohort", "exam_id", "number", "state",
                  "started_at", "closed_at", "minutes_taken", "score", "percent", "passed",
                  "playbook_version"]


def results_rows() -> list[dict]:
    """Return one dict per attempt (columns :data:`RESULT_COLUMNS`); ``score`` is an exact fraction text."""
    from .config import installation
    from .records import from_db
    inst = installation()
    learners = {l.id: l for l in inst.records.learners()}
    rows = []
    for a in inst.records.attempts():
        l = learners.get(a.learner_id)
        start, end = from_db(a.started_at), from_db(a.closed_at)
        rows.append({
            "attempt_id": a.id, "learner_id": a.learner_id, "name": l.name if l else "",
            "team": (l.team or "") if l else "", "cohort": (l.cohort or "") if l else "",
            "exam_id": a.exam_id, "number": a.number, "state": a.state,
            "started_at": start.isoformat(), "closed_at": end.isoformat() if end else "",
            "minutes_taken": round((end - start).total_seconds() / 60, 1) if end else "",
            "score": f"{a.score_num}/{a.score_den}" if a.score_den else "",
            "percent": a.percent or "", "passed": "" if a.passed is None else bool(a.passed),
            "playbook_version": a.playbook_version,
        })
    return rows


def _cmd_results(args: argparse.Namespace) -> int:
    rows = results_rows()
    out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.format == "json":
            json.dump(rows, out, ensure_ascii=False, indent=2)
            out.write("\n")
        else:
            writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os
    from .config import installation, settings
    from .server import run_voila
    s = settings()
    inst = installation(s)  # fails early, with every content problem, before the server starts
    if not inst.records.learners():
        code = inst.records.enroll("demo", "演示学员 Demo Learner", team="demo", cohort="demo")
        print(f"\nDemo learner for a first try: employee id 'demo', access code '{code}'\n", flush=True)
    print(f"database: {s.db_url}\nlearner app: http://{args.host}:{args.port}/", flush=True)
    env = dict(os.environ, SOPCOACH_HOME=str(s.home), SOPCOACH_DB_URL=s.db_url, SOPCOACH_LANG=s.lang,
               SOPCOACH_CONTENT=str(s.content))
    return run_voila(s.notebooks_dir / "learner", host=args.host, port=args.port, env=env)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sopcoach", description="Teach, examine and audit a sales SOP.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the learner app with Voila")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8866)
    s.set_defaults(func=_cmd_serve)
    c = sub.add_parser("check", help="validate playbook/ and quizzes/ (or the given files)")
    c.add_argument("paths", nargs="*")
    c.set_defaults(func=_cmd_check)
    r = sub.add_parser("results", help="export exam attempts")
    r.add_argument("--format", choices=["csv", "json"], default="csv")
    r.add_argument("-o", "--output")
    r.set_defaults(func=_cmd_results)
    e = sub.add_parser("enroll", help="enroll a learner and issue a personal access code")
    e.add_argument("--id", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--team")
    e.add_argument("--cohort")
    e.set_defaults(func=_cmd_enroll)
    for name in COMMAND_MODULES:
        import importlib
        importlib.import_module(name).register(sub)
    return p


#: Modules that add sub-commands: each has ``register(subparsers)`` adding parsers whose
#: ``func(args) -> int`` runs the command.
COMMAND_MODULES: list[str] = ["sopcoach.interchange_cli"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ContentError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return 1
    except SopcoachError as exc:
        print(f"sopcoach: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
