"""Trainer sub-commands: ``release``, ``diff``, ``review``, ``recertify``, ``verify``, ``certificate``,
``itemstats``.

``release [--label L] [--note TEXT] [--by NAME] [--confirm-quotes]``
    Check the content, then record the playbook as a released version (see
    :mod:`sopcoach.authoring.versions`). ``--label`` different from ``sop.version`` writes the new label into
    ``playbook/sop.yaml`` first (comments and key order kept). Prints the changed clauses and the
    questions now marked needs-review. Refused (exit 1, one line per text on stderr) while a
    clause text still quotes a value changed since the last release
    (:func:`sopcoach.authoring.versions.stale_quotes`); ``--confirm-quotes --by NAME`` releases
    anyway and records the confirmation with the release.
``diff [--files]``
    The playbook on disk against the last release: changed clauses field by field, a warning per
    text still quoting a changed value, then what uses each (questions, lessons, compliance checks,
    KPIs); ``--files`` adds unified diffs of the YAML.
``review [--confirm QID ...] [--by NAME]``
    List the questions waiting for review, or confirm them (they return to the exam draw).
``recertify``
    The certified people whose certificate covered a clause changed since.
``verify CODE``
    Whether a certificate is genuine and current. Exit 0: genuine and current; 3: genuine but not
    current (expired, revoked, replaced, or recertification due); 1: not genuine or mistyped.
``certificate CODE -o FILE.pdf`` (or ``--learner ID``)
    Write a certificate as PDF (its verify line is the learner server's check page when
    ``SOPCOACH_PUBLIC_URL`` is set, see :mod:`sopcoach.config`).
``itemstats [--attempts first|last|best|all] [--format text|csv|json] [-o FILE]``
    Item analysis (see :mod:`sopcoach.certification.itemstats`).

Every command uses the records, so :func:`sopcoach.cli.main.main` resolves the settings first
(:func:`sopcoach.config.settings`: ``--content``/``--home``/``--db-url``, else ``SOPCOACH_CONTENT``,
``SOPCOACH_HOME``, ``SOPCOACH_DB_URL``; ``SOPCOACH_LANG``), hands them over as ``args.settings`` and
prints the database used on stderr. Only ``release`` creates a missing database; the others refuse
one in one line (:func:`sopcoach.config.require_database`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..authoring.versions import (confirm, diff_playbook, impact, latest_release, needs_review,
                                  playbook_files, recertification_list, release, set_sop_version,
                                  stale_quotes)
from ..certification.certificates import certificate_pdf, certificate_table, verify
from ..config import open_records
from ..content.check import check_paths
from ..content.playbook import load_playbook
from ..content.quizbank import load_bank, load_blueprint
from ..errors import CertificateError, ContentError, StaleQuotes, UsageError
from ..i18n import current_lang, local_day, t
from ..spreadsheet import safe_frame


def register(sub: Any) -> None:
    """Add the trainer commands to the ``sopcoach`` command's sub-parsers."""
    r = sub.add_parser("release", help="record the playbook as a released version; flag affected questions")
    r.add_argument("--label", help="release label (default: sop.version; a new label is written to sop.yaml)")
    r.add_argument("--note", default="", help="what changed and why")
    r.add_argument("--by", default="", help="who releases")
    r.add_argument("--confirm-quotes", action="store_true",
                   help="release although texts still quote values changed since the last release "
                        "(needs --by; recorded with the release)")
    r.set_defaults(func=_cmd_release, uses_records=True, creates_records=True)
    d = sub.add_parser("diff", help="the playbook against the last release, and the impact of each change")
    d.add_argument("--files", action="store_true", help="also print unified diffs of the YAML files")
    d.set_defaults(func=_cmd_diff, uses_records=True)
    v = sub.add_parser("review", help="list questions waiting for review, or confirm them")
    v.add_argument("--confirm", nargs="+", metavar="QID", help="question ids to confirm")
    v.add_argument("--by", default="", help="who confirms")
    v.set_defaults(func=_cmd_review, uses_records=True)
    c = sub.add_parser("recertify", help="list certified people whose certificate covered a changed clause")
    c.set_defaults(func=_cmd_recertify, uses_records=True)
    f = sub.add_parser("verify", help="is a certificate genuine and current? (exit 0 yes, 3 not current, 1 not genuine)")
    f.add_argument("code")
    f.set_defaults(func=_cmd_verify, uses_records=True)
    p = sub.add_parser("certificate", help="write a certificate as PDF")
    p.add_argument("code", nargs="?", help="verification code")
    p.add_argument("--learner", help="instead of a code: the learner's certificate in force")
    p.add_argument("-o", "--output", required=True, help="the PDF file to write")
    p.set_defaults(func=_cmd_certificate, uses_records=True)
    i = sub.add_parser("itemstats", help="item analysis of the certification exam (Moodle's statistics)")
    i.add_argument("--attempts", choices=["first", "last", "best", "all"], default="first")
    i.add_argument("--format", choices=["text", "csv", "json"], default="text")
    i.add_argument("-o", "--output", help="write the per-question table here (csv/json)")
    i.set_defaults(func=_cmd_itemstats, uses_records=True)


# -- helpers ----------------------------------------------------------------------------------------
def _records(s: Any):
    return open_records(s)


def _content(s: Any) -> tuple[Any, Any, Any]:
    """Load the playbook, bank and blueprint fresh from disk (not the per-process cache)."""
    playbook = load_playbook(s.playbook_dir)
    bank = load_bank(s.quizzes_dir / "bank", playbook)
    return playbook, bank, load_blueprint(s.quizzes_dir / "blueprint.yaml", bank)


def _timezone(s: Any) -> str:
    """The company's time zone (the playbook calendar's), in which days are printed."""
    return str(load_playbook(s.playbook_dir).calendar.timezone)


def _join(items: list[str], empty: str = "-") -> str:
    return ", ".join(items) if items else empty


# -- commands ------------------------------------------------------------------------------------------
def _cmd_release(args: argparse.Namespace) -> int:
    lang = current_lang()
    s = args.settings
    problems = [p for p in check_paths([], s.content) if p.severity == "error"]  # warnings do not block
    if problems:
        raise ContentError(problems)
    playbook, bank, _ = _content(s)
    if args.confirm_quotes and not args.by.strip():
        raise UsageError("--confirm-quotes needs --by NAME: the release records who confirmed the quotes")
    records = _records(s)
    try:
        stale = stale_quotes(latest_release(records), playbook, lang)
        if stale and not args.confirm_quotes:  # before --label writes sop.yaml: a refusal changes nothing
            raise StaleQuotes(stale, lang)
        if args.label and args.label != playbook.sop.version:
            path = set_sop_version(s.playbook_dir, args.label, home=s.home, by=args.by or "")
            print(t(f"已将 sop.version 改为 {args.label}（{path}）", f"sop.version set to {args.label} in {path}", lang))
            playbook, bank, _ = _content(s)
        out = release(records, playbook, bank, s.playbook_dir, label=args.label, note=args.note, by=args.by,
                      confirm_quotes=args.confirm_quotes, lang=lang)
    except StaleQuotes as exc:  # one line per text, so each can be found and fixed
        print(f"sopcoach release: {exc}", file=sys.stderr)
        return 1
    print(t(f"已发布版本 {out.label}（上一版本：{out.previous or '无'}）",
            f"released version {out.label} (previous: {out.previous or 'none'})", lang))
    if out.confirmed_quotes:
        print(t(f"{args.by} 确认保留的旧值引用（已随版本记录）：",
                f"quotes of changed values confirmed by {args.by} (recorded with the release):", lang))
        for q in out.confirmed_quotes:
            print("  " + q.text(lang))
    print(t("修改的条款：", "changed clauses: ", lang) + _join(list(out.changed)))
    print(t("需复核的题目（复核前不进入考试）：", "questions marked needs-review (out of the exam until confirmed): ",
            lang) + _join(list(out.flagged)))
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    lang = current_lang()
    s = args.settings
    playbook, bank, _ = _content(s)
    base = latest_release(_records(s))
    diff = diff_playbook(base, playbook, playbook_files(s.playbook_dir), lang)
    print(diff.text(lang))
    stale = stale_quotes(base, playbook, lang)
    if stale:
        print()
        print(t("警告：这些文字仍写着已修改的旧值（发布前请修改，或用 --confirm-quotes 确认）：",
                "warning: these texts still quote a changed value (edit them before releasing, or confirm "
                "with --confirm-quotes):", lang))
        for q in stale:
            print("  " + q.text(lang))
    if diff.changes:
        print()
        print(t("影响：", "impact:", lang))
        for cid, r in impact(playbook, bank, diff.changed_ids, lang).iterrows():
            print(f"  {cid} ({r['source']})")
            print(f"    {t('题目', 'questions', lang)}: {_join(r['questions'])}")
            print(f"    {t('课程', 'lessons', lang)}: {_join(r['lessons'])}")
            print(f"    {t('合规检查', 'compliance checks', lang)}: {_join(r['checks'])}")
            print(f"    KPI: {_join(r['kpis'])}")
    if args.files:
        for name, text in diff.file_diffs.items():
            print()
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    lang = current_lang()
    s = args.settings
    records = _records(s)
    if args.confirm:
        done = confirm(records, args.confirm, by=args.by)
        print(t(f"已确认 {len(done)} 题，重新进入考试抽题：", f"confirmed {len(done)}, back in the exam draw: ", lang)
              + _join(done))
        return 0
    table = needs_review(records)
    if table.empty:
        print(t("没有待复核的题目。", "no question is waiting for review.", lang))
        return 0
    print("\t".join(t(zh, en, lang) for zh, en in (("题目", "question"), ("已修改的条款", "changed clauses"),
                                                    ("版本", "releases"))))
    for qid, r in table.iterrows():
        print(f"{qid}\t{_join(r['clauses'])}\t{_join(r['releases'])}")
    return 0


def _cmd_recertify(args: argparse.Namespace) -> int:
    lang = current_lang()
    table = recertification_list(_records(args.settings))
    if table.empty:
        print(t("没有人需要复认证。", "nobody needs to re-certify.", lang))
        return 0
    print("\t".join(t(zh, en, lang) for zh, en in (
        ("员工编号", "employee id"), ("姓名", "name"), ("团队", "team"), ("证书", "certificate"),
        ("签发", "issued"), ("版本", "version"), ("需重考的条款", "clauses to re-examine"))))
    tz = _timezone(args.settings)
    for r in table.itertuples():
        print(f"{r.learner_id}\t{r.name}\t{r.team}\t{r.certificate}\t{local_day(r.issued_at, tz)}\t{r.version}\t"
              f"{_join(r.changed)}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    v = verify(_records(args.settings), args.code)
    print(v.message(current_lang(), _timezone(args.settings)))
    return 0 if v.current else 3 if v.genuine else 1


def _cmd_certificate(args: argparse.Namespace) -> int:
    s = args.settings
    records = _records(s)
    playbook, _, blueprint = _content(s)
    code = args.code
    if not code:
        if not args.learner:
            raise UsageError("give a certificate code or --learner ID")
        table = certificate_table(records)
        mine = table[(table["learner_id"] == args.learner) & (table["status"] != "superseded")]
        if mine.empty:
            raise CertificateError(f"learner {args.learner} holds no certificate")
        code = mine.iloc[0]["code"]
    pdf = certificate_pdf(records, code, blueprint.title, playbook.sop.name, playbook.calendar.timezone,
                          public_url=s.public_url)
    Path(args.output).write_bytes(pdf)
    print(f"{code} -> {args.output}")
    return 0


def _print_table(df: Any, headers: list[str], formats: dict[str, Any] | None = None) -> None:
    """Print ``df`` tab-separated under ``headers`` (one per column); a missing value as ``–``."""
    formats = formats or {}
    print("\t".join(headers))
    for row in df.itertuples(index=False):
        cells = []
        for column, value in zip(df.columns, row):
            missing = value is None or (isinstance(value, float) and value != value)
            cells.append("–" if missing else formats[column](value) if column in formats else str(value))
        print("\t".join(cells))


def _cmd_itemstats(args: argparse.Namespace) -> int:
    from ..certification.itemstats import (  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
        MIN_FLAG_N, TABLE_HEADERS, WHICH_TEXT, cut_table, figure_table, item_analysis, item_table)
    from ..labels import column_label  # noqa: PLC0415 - with the command above
    lang = current_lang()
    s = args.settings
    playbook, bank, blueprint = _content(s)
    ia = item_analysis(_records(s), bank, blueprint, playbook, args.attempts, lang)
    if args.format in ("csv", "json"):  # machine exports: the column names of ItemAnalysis.items
        items = ia.items.copy()
        items["flags"] = items["flags"].map(lambda f: "; ".join(f))
        items["clauses"] = items["clauses"].map(lambda c: " ".join(c))
        text = safe_frame(items).to_csv() if args.format == "csv" else items.reset_index().to_json(
            orient="records", force_ascii=False, indent=2)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
        return 0
    which = t(*WHICH_TEXT[args.attempts], lang)
    print(t(f"{ia.attempts} 次作答（{which}）", f"{ia.attempts} attempts ({which})", lang))
    print()
    print(t("整卷：", "the test:", lang))
    _print_table(figure_table(ia.test, lang), [t(*TABLE_HEADERS[c], lang) for c in ("figure", "value", "n", "min_n", "note")])
    print()
    print(t("及格线附近的判定一致性：", "pass/fail consistency near the cut score:", lang))
    _print_table(cut_table(ia.cut, lang), [t(*TABLE_HEADERS[c], lang) for c in ("figure", "value")])
    table = item_table(ia.items, lang)
    flagged = table[[bool(f) for f in ia.items["flags"]]]
    percent = lambda v: f"{v:.1f}%"  # noqa: E731
    shown = ["question", "text", "n", "facility_pct", "discrimination", "discrimination_word", "verdict"]
    print()
    print(t(f"需检查的题目（{len(flagged)}）：", f"questions to check ({len(flagged)}):", lang))
    if len(flagged):
        _print_table(flagged[shown], [column_label(c, lang) for c in shown],
                     {"facility_pct": percent, "discrimination": lambda v: f"{v:.2f}"})
    unjudged = int((~ia.items["judged"]).sum())
    if unjudged:
        print(t(f"另有 {unjudged} 道题作答少于 {MIN_FLAG_N} 次，样本不足，不作判断。",
                f"{unjudged} more question(s) have fewer than {MIN_FLAG_N} answers: too few to judge.", lang))
    print()
    print(t("按条款（失分最多在前）：", "by clause (most missed first):", lang))
    clauses = ia.clauses.head(10)[["source", "title", "responses", "missed"]]
    _print_table(clauses, [t("来源", "source", lang), t("条款", "clause", lang), t("作答数", "answers", lang),
                           t("失分率", "missed", lang)], {"missed": lambda v: f"{100 * v:.1f}%"})
    return 0
