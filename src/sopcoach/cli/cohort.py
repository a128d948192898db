"""Cohort commands: ``enroll --roster``, ``remind`` and ``demo`` (see :mod:`sopcoach.cohort`).

``enroll --roster FILE.csv|xlsx [--dry-run] [--deactivate-missing] [--reissue] [--slips FILE.pdf --url URL]``
    Create, update, reactivate and deactivate learners as an HR roster says, all or nothing
    (:mod:`sopcoach.cohort.roster`). Prints one line per person who changes (``--dry-run``: would
    change; nothing is written) and a count per action. New access codes are printed once as a
    table, or with ``--slips`` written as sign-in slips (PDF) and not printed. Exit 1 with one line
    per bad row (``file:line:column: header: message``) when any row is bad.
``remind [--within DAYS] [--send] [--url URL]``
    List the active learners whose certificate has expired or expires within DAYS (default 30), who
    must recertify, or who are not certified yet; with ``--send``, e-mail each one
    (:mod:`sopcoach.cohort.reminders`; SMTP from ``SOPCOACH_SMTP_*`` or ``HOME/smtp.toml``). Exit 1
    when a reminder could not be sent.
``demo [--seed N] [--force]``
    Fill the data home with the demo cohort (:mod:`sopcoach.cohort.demo`); refused when it has
    learners already, unless ``--force``.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..config import installation
from ..errors import ConfigError, UsageError
from ..i18n import t

__all__ = ["enroll_roster", "register"]

ACTION_TEXT = {"create": ("新建", "create"), "update": ("更新", "update"), "reactivate": ("恢复", "reactivate"),
               "deactivate": ("停用", "deactivate"), "unchanged": ("不变", "unchanged"),
               "absent": ("名单中没有（保留）", "absent (kept)"), "not_enrolled": ("离职且未注册", "leaver, not enrolled")}


def _table(header: list[str], rows: list[list[str]]) -> None:
    """Print a tab-separated table with a header row."""
    for row in [header, *rows]:
        print("\t".join(row))



#: The demo cohort's stages in the page language.
_STAGE_TEXT = {"enrolled": ("仅注册", "enrolled"), "lessons_partly": ("课程进行中", "some lessons done"),
               "lessons_done": ("课程已完成", "lessons done"), "passed": ("已通过", "passed"),
               "failed": ("未通过一次", "failed once"), "failed_twice": ("未通过两次", "failed twice"),
               "in_progress": ("考试进行中", "exam in progress"), "expired": ("证书已过期", "certificate expired"),
               "expiring": ("证书即将到期", "certificate expiring"), "recertify": ("需复认证", "must recertify"),
               "leaver": ("已离职", "leaver")}

#: The roster's fields in the page language (a change reads "团队: 华东 -> 华南").
_FIELD_TEXT = {"name": ("姓名", "name"), "team": ("团队", "team"), "cohort": ("批次", "cohort"), "email": ("邮箱", "e-mail")}


def _field_text(change: str) -> str:
    """``team: A -> B`` with the field named in the current language."""
    field, sep, rest = change.partition(": ")
    return f"{t(*_FIELD_TEXT[field])}{sep}{rest}" if field in _FIELD_TEXT else change

def enroll_roster(args: argparse.Namespace) -> int:
    """Run ``sopcoach enroll --roster`` (see the module docstring)."""
    from ..cohort.roster import ACTIONS, apply_roster, read_roster  # noqa: PLC0415 - only this command
    from ..cohort.slips import Slip, slips_pdf  # noqa: PLC0415 - only this command

    if args.slips and not args.url:
        raise UsageError("--slips needs --url: the address learners type to reach the learner server, "
                         "e.g. --url http://learn.example.com:8866/")
    inst = installation(args.settings)
    today = datetime.now(ZoneInfo(inst.playbook.calendar.timezone)).date()
    roster = read_roster(args.roster, today, args.encoding)
    if roster.ignored:
        print(t(f"忽略的列：{', '.join(roster.ignored)}", f"columns ignored: {', '.join(roster.ignored)}"),
              file=sys.stderr)
    outcome = apply_roster(inst.records, roster, deactivate_missing=args.deactivate_missing, reissue=args.reissue,
                           dry_run=args.dry_run)
    shown = [c for c in outcome.changes if c.action != "unchanged"]
    if args.dry_run:
        print(t("演练（--dry-run）：以下为将要进行的更改，未写入任何记录", "dry run: what would change; nothing was written"))
    for c in shown:
        where = f"{roster.path}:{c.line}" if c.line else ""
        if c.action == "absent":  # the action's own words say it
            detail = ""
        elif c.action == "update":
            detail = "; ".join(_field_text(f) for f in c.fields)
        else:
            detail = " / ".join(x for x in (c.team, c.cohort) if x)
        print("\t".join([t(*ACTION_TEXT[c.action]), c.learner_id, c.name, detail, where]).rstrip())
    counts = t("，", ", ").join(f"{outcome.count(a)} {t(*ACTION_TEXT[a])}" for a in ACTIONS if outcome.count(a))
    print(t(f"合计：{counts or '无'}", f"total: {counts or 'nobody'}"))
    if outcome.count("absent"):
        print(t("名单中没有的学员保留不动；要停用他们，请加 --deactivate-missing",
                "learners absent from the roster are kept; --deactivate-missing deactivates them"))
    if args.dry_run or not outcome.codes:
        return 0
    names = {c.learner_id: c.name for c in outcome.changes}
    if args.slips:
        slips = [Slip(lid, names[lid], code) for lid, code in outcome.codes.items()]
        Path(args.slips).write_bytes(slips_pdf(slips, args.url))
        print(t(f"登录凭条：{len(slips)} 张已写入 {args.slips}（访问码只出现在凭条上）",
                f"sign-in slips: {len(slips)} written to {args.slips} (the access codes are only on the slips)"))
        return 0
    _table([t("员工编号", "employee id"), t("姓名", "name"), t("访问码", "access code")],
           [[lid, names[lid], code] for lid, code in outcome.codes.items()])
    print(t("访问码只显示这一次，请当面交给本人", "the access codes are shown only once; hand each to its learner in person"))
    return 0


def _cmd_remind(args: argparse.Namespace) -> int:
    from ..cohort.reminders import REASON_TEXT, due_list, send_reminders, smtp_settings  # noqa: PLC0415

    if args.within < 0:
        raise UsageError(f"--within is a number of days, 0 or more (got {args.within})")
    inst = installation(args.settings)
    tz = inst.playbook.calendar.timezone
    dues = due_list(inst, args.within)
    _table([t("员工编号", "employee id"), t("姓名", "name"), t("团队", "team"), t("批次", "cohort"),
            t("邮箱", "email"), t("原因", "reason"), t("详情", "detail")],
           [[d.learner_id, d.name, d.team, d.cohort, d.email, t(*REASON_TEXT[d.reason]), d.detail(tz)] for d in dues])
    print(t(f"共 {len(dues)} 人需要提醒", f"{len(dues)} to remind"), file=sys.stderr)
    if not args.send:
        return 0
    smtp = smtp_settings(args.settings.home)
    if smtp is None:
        raise ConfigError("--send needs an SMTP server: set SOPCOACH_SMTP_HOST, SOPCOACH_SMTP_FROM (and "
                          "SOPCOACH_SMTP_USER, SOPCOACH_SMTP_PASSWORD, SOPCOACH_SMTP_PORT, SOPCOACH_SMTP_STARTTLS) "
                          f"or write them to {args.settings.home / 'smtp.toml'}")
    results = send_reminders(inst, dues, smtp, args.url or "")
    status = {"sent": ("已发送", "sent"), "no_email": ("没有邮箱，未发送", "no e-mail address, not sent"),
              "already_sent": ("今天已发送过", "already sent today"), "failed": ("发送失败", "FAILED")}
    for r in results:
        print("\t".join([r.learner_id, r.email, t(*status[r.status]), r.error]).rstrip())
    failed = sum(1 for r in results if r.status == "failed")
    sent = sum(1 for r in results if r.status == "sent")
    print(t(f"已发送 {sent} 封，失败 {failed} 封", f"{sent} sent, {failed} failed"), file=sys.stderr)
    return 1 if failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..cohort.demo import fill_demo  # noqa: PLC0415 - only this command

    inst = installation(args.settings)
    have = inst.records.learners()
    if have and not args.force:
        raise ConfigError(f"the data home {args.settings.home} has {len(have)} learner(s) already; the demo fills an "
                          "empty one: use a new --home DIR (or --force to add the demo cohort anyway)")
    print(t("正在生成演示批次（约半分钟）……", "making the demo cohort (about half a minute) ..."), file=sys.stderr, flush=True)
    demo = fill_demo(inst, args.seed)
    stages: dict[str, int] = {}
    for x in demo.learners.values():
        stages[x["stage"]] = stages.get(x["stage"], 0) + 1
    home = args.settings.home
    print(t(f"演示批次：{len(demo.learners)} 名学员，发布版本 {'、'.join(demo.releases)}",
            f"demo cohort: {len(demo.learners)} learners, releases {', '.join(demo.releases)}"))
    print("  " + t("，", ", ").join(f"{t(*_STAGE_TEXT.get(k, (k, k)))} {v}" for k, v in sorted(stages.items())))
    print(t(f"学员端：sopcoach serve --home {home}\n  以 {demo.sign_in_as}（{demo.learners[demo.sign_in_as]['name']}）"
            f"登录，访问码 {demo.access_code}",
            f"learner app: sopcoach serve --home {home}\n  sign in as {demo.sign_in_as} "
            f"({demo.learners[demo.sign_in_as]['name']}), access code {demo.access_code}"))
    crm = Path(home) / "crm"
    print(t(f"培训师端：sopcoach serve --trainer --home {home}（打开它打印的带 token 的地址）\n"
            f"  月度复盘列出 {crm} 中的 CRM 导出（每个导出一个文件夹），也可在页面上上传\n"
            f"提醒名单：sopcoach remind --home {home}",
            f"trainer app: sopcoach serve --trainer --home {home} (open the address with the token it prints)\n"
            f"  the monthly review lists the CRM exports in {crm} (one folder per export), or upload them on the page\n"
            f"reminders: sopcoach remind --home {home}"))
    return 0


def register(sub: Any) -> None:
    """Add ``remind`` and ``demo`` to the ``sopcoach`` command's sub-parsers (``enroll --roster`` is an
    option of ``enroll``, see :func:`add_roster_options`)."""
    r = sub.add_parser("remind", help="list who must (re)certify or is not certified yet; --send e-mails them")
    r.add_argument("--within", type=int, default=30, metavar="DAYS",
                   help="certificates expiring within this many calendar days are due (default 30)")
    r.add_argument("--send", action="store_true",
                   help="e-mail each due learner with an address (SMTP: SOPCOACH_SMTP_* or HOME/smtp.toml); "
                        "a reminder sent today is not sent again")
    r.add_argument("--url", help="the learner server's address, written in the e-mails")
    r.set_defaults(func=_cmd_remind, uses_records=True)
    d = sub.add_parser("demo", help="fill a data home with a realistic demo cohort (for trying the pages)")
    d.add_argument("--seed", type=int, default=7, help="the same seed gives the same cohort (default 7)")
    d.add_argument("--force", action="store_true", help="add the demo cohort to a home that has learners")
    d.set_defaults(func=_cmd_demo, uses_records=True, creates_records=True)


def add_roster_options(e: argparse.ArgumentParser) -> None:
    """Add the roster options to the ``enroll`` parser."""
    g = e.add_argument_group("a whole cohort from an HR roster (instead of --id/--name)")
    g.add_argument("--roster", metavar="FILE", help="CSV (UTF-8, UTF-8 with BOM or GBK) or XLSX with a header "
                   "row: 员工编号/employee id, 姓名/name, and optionally 团队/team, 批次/cohort, 邮箱/email, "
                   "状态/status (在职/离职), 离职日期/end date")
    g.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    g.add_argument("--deactivate-missing", action="store_true",
                   help="deactivate enrolled learners the roster does not list (default: keep them)")
    g.add_argument("--reissue", action="store_true",
                   help="new access codes for the listed learners already enrolled too (their old codes stop working)")
    g.add_argument("--slips", metavar="FILE.pdf", help="write the new access codes as sign-in slips instead of printing them")
    g.add_argument("--url", help="the learner server's address printed on the slips")
    g.add_argument("--encoding", default="auto", help="the CSV's text encoding when detection cannot tell (e.g. gbk)")
