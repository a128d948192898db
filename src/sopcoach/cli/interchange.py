"""The ``sopcoach import`` and ``sopcoach export`` commands (question-bank interchange).

``sopcoach import FILE [FILE ...] [--format gift|aiken|jupyterquiz|moodle-xml] -o OUT.yaml [--section S]
[--clause C] [--strict]`` writes one bank file and prints, per source file, ``imported N, skipped M``
and one ``path:line:column`` line per skipped item (with the reason) and per note. The written
bank is loaded again, against the project's playbook when there is one, exactly as
``sopcoach check`` does. With ``--strict``, an item skipped or a file not imported writes nothing
(an existing OUT.yaml is left as it was) and the last line says so:
``sopcoach import: --strict: N item(s) skipped, nothing written``. Exit codes: 0 written; 1 nothing
importable, a file unreadable, the bank invalid, or (``--strict``) any item skipped; 2 usage errors.

``sopcoach export BANK [BANK ...] --format gift|moodle-xml -o OUT [--lang both|zh-CN|en]
[--playbook DIR]`` loads bank files or folders resolved against the playbook (derived keys become
literal) and writes them for Moodle. Exit codes: 0 written; 1 content problems.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from ..config import content_folder
from ..content.playbook import load_playbook
from ..content.quizbank import ID, UNMAPPED_CLAUSE, load_bank
from ..errors import ConfigError, ContentError, relpath
from ..interchange import EXPORT_FORMATS, IMPORT_FORMATS, ImportOptions, bank_yaml, export_questions, import_file


def _playbook_dir(args: argparse.Namespace) -> Path | None:
    """The playbook ``sopcoach check`` uses (:func:`sopcoach.config.content_folder`); ``None`` without one.

    Only the default, the project folder, may lack a playbook (an installed package without
    content); a folder given with ``--content`` or ``SOPCOACH_CONTENT`` must have one.
    """
    folder = content_folder(args.content, required=False)
    return folder / "playbook" if folder is not None else None


def _load_playbook(path: Path | None) -> Any:
    return load_playbook(path) if path is not None else None


def cmd_import(args: argparse.Namespace) -> int:
    """Run ``sopcoach import``; return the exit code."""

    for name, value in (("--section", args.section), ("--clause", args.clause)):
        if value is not None and not re.match(ID, value):
            print(f"sopcoach import: {name} {value!r} is not an id (letters, digits, _ . -)", file=sys.stderr)
            return 2
    out = Path(args.output)
    pb_dir = _playbook_dir(args)  # a wrong --content fails before any file is read or written
    options = ImportOptions(section=args.section, clause=args.clause or ImportOptions().clause)
    taken: set[str] = set()
    questions: list[dict] = []
    failed = 0  # files that could not be read or had file-level problems
    skipped = 0
    for f in args.files:
        try:
            result = import_file(f, args.format, options, taken)
        except ConfigError as exc:
            print(f"sopcoach import: {exc}", file=sys.stderr)
            failed += 1
            continue
        for line in result.summary():
            print(line)
        failed += bool(result.problems)
        skipped += len(result.skipped)
        questions += result.questions
    if args.strict and (skipped or failed):
        why = [f"{skipped} item(s) skipped"] * bool(skipped) + [f"{failed} file(s) not imported"] * bool(failed)
        print(f"sopcoach import: --strict: {', '.join(why)}, nothing written", file=sys.stderr)
        return 1
    if not questions:
        print("sopcoach import: no question could be imported; nothing written", file=sys.stderr)
        return 1
    sources = ", ".join(relpath(f) for f in args.files)
    header = (f"# Imported by `sopcoach import` from {sources}.\n"
              f"# Clause '{options.clause}' marks questions not mapped to an SOP clause yet; texts in one language\n"
              "# fill both zh-CN and en. Review both before the questions enter the certification bank.\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(bank_yaml(questions, header), encoding="utf-8")
    try:
        load_bank([out], _load_playbook(pb_dir))
    except ContentError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        print(f"sopcoach import: {relpath(out)} was written but does not pass `sopcoach check`", file=sys.stderr)
        return 1
    print(f"wrote {len(questions)} question(s) to {relpath(out)}", file=sys.stderr)
    if failed:
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``sopcoach export``; return the exit code."""

    paths: list[Path] = []
    for b in args.banks:
        p = Path(b)
        if p.is_dir():
            paths.extend(sorted(p.glob("*.yaml")))
        elif p.exists():
            paths.append(p)
        else:
            print(f"sopcoach export: {b}: no such file or folder", file=sys.stderr)
            return 1
    playbook_dir = Path(args.playbook) if args.playbook else _playbook_dir(args)
    bank = load_bank(paths, _load_playbook(playbook_dir))  # ContentError -> exit 1 in cli.main
    chosen = list(bank.questions.values()) if args.include_retired else bank.active()
    text, notes = export_questions(chosen, args.format, args.lang)
    Path(args.output).write_text(text, encoding="utf-8")
    for n in notes:
        print(f"note: {n}")
    left = len(bank) - len(chosen)
    if left:
        print(f"note: {left} retired question(s) left out (--include-retired writes them too)")
    print(f"wrote {len(chosen)} question(s) to {relpath(args.output)} ({args.format})", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    """Add the ``import`` and ``export`` sub-commands to the ``sopcoach`` parser."""

    i = subparsers.add_parser("import", help="import GIFT, Moodle XML, Aiken or jupyterquiz questions into a bank file")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--format", choices=IMPORT_FORMATS, help="source format (default: from the content)")
    i.add_argument("-o", "--output", required=True, metavar="OUT.yaml", help="bank file to write")
    i.add_argument("--section", help="section id for items without a category (default: the file name)")
    i.add_argument("--clause", help=f"clause id for every question (default: {UNMAPPED_CLAUSE})")
    i.add_argument("--strict", action="store_true", help="write nothing and exit 1 when any item is skipped")
    i.set_defaults(func=cmd_import)
    e = subparsers.add_parser("export", help="export a bank as GIFT or Moodle XML")
    e.add_argument("banks", nargs="+", metavar="BANK", help="bank files or folders (e.g. quizzes/bank)")
    e.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    e.add_argument("-o", "--output", required=True, metavar="OUT")
    e.add_argument("--lang", choices=["both", "zh-CN", "en"], default="both",
                   help="both: Moodle multilang spans where the languages differ (default)")
    e.add_argument("--playbook", help="playbook folder resolving facts and derived keys (default: as check)")
    e.add_argument("--include-retired", action="store_true",
                   help="also write retired questions (by default a retired question is examined no more and not exported)")
    e.set_defaults(func=cmd_export)
