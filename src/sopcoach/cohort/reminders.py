"""Reminders: who must (re)certify soon, and one bilingual e-mail each over SMTP.

A learner is *due* (:func:`due_list`) for one reason, the first that applies:

``expired``
    Their latest certificate has expired (seed:3.3.1: certified people only sell on their own).
``expiring``
    Their certificate expires within the given number of calendar days (even when a clause also
    changed: a recertification keeps the expiry date, so only a new exam helps).
``recertify``
    A clause their certificate covered changed since it was issued
    (:func:`sopcoach.authoring.versions.recertification_due`).
``not_certified``
    Enrolled and never certified (their lesson progress and attempts are shown).

Deactivated learners (leavers) and revoked certificates get no reminder: the first left, the second
was the trainer's decision. :func:`send_reminders` sends one e-mail per due learner with an
address, over one SMTP connection (STARTTLS and login when configured, :class:`SmtpSettings`), and
records each sent reminder as an audit event (``reminder_sent``), so a second run on the same
company day does not send it again. A refused recipient or a lost connection is reported per
person; the others are still sent.
"""
from __future__ import annotations

import os
import smtplib
import ssl
import tomllib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any

from ..certification.certificates import learner_certificate
from ..errors import ConfigError
from ..i18n import local_day, t
from ..records.models import utcnow

__all__ = ["REASONS", "Due", "SendResult", "SmtpSettings", "due_list", "reminder_message", "send_reminders",
           "smtp_settings"]

#: Why a learner is due, in the order they are decided (see the module docstring).
REASONS = ("expired", "expiring", "recertify", "not_certified")
REASON_TEXT = {
    "expired": ("证书已过期", "certificate expired"),
    "recertify": ("条款已修改，需复认证", "recertification due (clauses changed)"),
    "expiring": ("证书即将到期", "certificate expires soon"),
    "not_certified": ("尚未取得认证", "not certified yet"),
}
#: The audit event kind recording a sent reminder; its detail starts with the company day.
SENT_KIND = "reminder_sent"


@dataclass(frozen=True)
class Due:
    """A learner who should be reminded, and why.

    ``expires_at`` (aware UTC) and ``certificate`` are those of the latest certificate (``None``
    when there is none); ``changed`` the clause ids to re-examine (``recertify``);
    ``lessons_done``/``lessons_total`` count completed lessons; ``attempts`` the exam attempts made.
    """

    learner_id: str
    name: str
    team: str
    cohort: str
    email: str
    reason: str
    certificate: str | None = None
    expires_at: datetime | None = None
    changed: tuple[str, ...] = ()
    lessons_done: int = 0
    lessons_total: int = 0
    attempts: int = 0

    def detail(self, timezone: str, lang: str | None = None) -> str:
        """Return one line saying what is due: the expiry day, the changed clauses, or the progress."""
        day = local_day(self.expires_at, timezone)
        if self.reason == "expired":
            return t(f"证书 {self.certificate} 已于 {day} 到期", f"certificate {self.certificate} expired on {day}", lang)
        if self.reason == "expiring":
            return t(f"证书 {self.certificate} 将于 {day} 到期", f"certificate {self.certificate} expires on {day}", lang)
        if self.reason == "recertify":
            return t(f"证书 {self.certificate} 涵盖的条款已修改：{', '.join(self.changed)}",
                     f"certificate {self.certificate} covered clauses that changed: {', '.join(self.changed)}", lang)
        return t(f"已完成课程 {self.lessons_done}/{self.lessons_total}，考试 {self.attempts} 次",
                 f"lessons done {self.lessons_done}/{self.lessons_total}, exam attempts {self.attempts}", lang)


def due_list(inst: Any, within_days: int = 30, now: datetime | None = None) -> list[Due]:
    """Return the active learners who are due, by reason (as :data:`REASONS`) and then employee id.

    Parameters
    ----------
    inst : Installation
        The records, blueprint (exam id) and lessons.
    within_days : int
        Calendar days ahead within which an expiring certificate is due (0: only expired ones).
    now : datetime, optional
        Aware UTC time to judge at (default: now).
    """
    from ..authoring.versions import recertification_due  # noqa: PLC0415 - pandas-free, but loads the authoring rules
    from ..lessons.progress import LessonService  # noqa: PLC0415 - loads the lessons only when asked

    now = now or utcnow()
    records = inst.records
    lessons = [lesson.id for lesson in LessonService(inst).lessons()]
    counts = records.attempt_counts(inst.blueprint.id)
    out = []
    for x in records.learners():
        if not x.active:
            continue
        v = learner_certificate(records, x.id, now)
        base = Due(x.id, x.name, x.team or "", x.cohort or "", x.email or "", "not_certified",
                   attempts=counts.get(x.id, 0), lessons_total=len(lessons))
        if v is None:
            done = records.lesson_progress(x.id)
            out.append(replace(base, lessons_done=sum(1 for lid in lessons if lid in done
                                                      and done[lid].completed_at is not None)))
            continue
        cert = replace(base, certificate=v.code, expires_at=v.expires_at)
        soon = v.expires_at is not None and v.expires_at <= now + timedelta(days=within_days)
        if v.status == "expired":
            out.append(replace(cert, reason="expired"))
        elif v.status in ("current", "recertify") and soon:
            out.append(replace(cert, reason="expiring", changed=v.changed))
        elif v.status == "recertify":
            due = recertification_due(records, x.id, now)
            out.append(replace(cert, reason="recertify", changed=tuple(due[1] if due else v.changed)))
    return sorted(out, key=lambda d: (REASONS.index(d.reason), d.learner_id))


# -- SMTP ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmtpSettings:
    """Where and how reminders are sent: server, port, optional login, sender, STARTTLS."""

    host: str
    port: int
    sender: str
    user: str = ""
    password: str = ""
    starttls: bool = True

    def __repr__(self) -> str:  # never show the password
        return f"SmtpSettings(host={self.host!r}, port={self.port}, sender={self.sender!r}, user={self.user!r})"


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def smtp_settings(home: Path | None, environ: dict[str, str] | None = None) -> SmtpSettings | None:
    """Read the SMTP settings: ``SOPCOACH_SMTP_*`` variables over the file ``HOME/smtp.toml``.

    Keys (file) / variables: ``host`` / ``SOPCOACH_SMTP_HOST``, ``port`` / ``..._PORT`` (default 587
    with STARTTLS, else 25), ``user``, ``password``, ``from`` / ``..._FROM`` (the sender address,
    required), ``starttls`` (default true). Returns ``None`` when no host is set anywhere.

    Raises
    ------
    ConfigError
        When the file is not valid TOML, the port is not a number, ``starttls`` is not a yes/no, or
        no sender is given (each names the key and the fix).
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = home / "smtp.toml" if home is not None else None
    if path is not None and path.is_file():
        try:
            values = dict(tomllib.loads(path.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); write e.g. host = \"smtp.example.com\"") from None
    for key in ("host", "port", "user", "password", "from", "starttls"):
        if env.get(f"SOPCOACH_SMTP_{key.upper()}"):
            values[key] = env[f"SOPCOACH_SMTP_{key.upper()}"]
    if not values.get("host"):
        return None
    where = f"{path} or SOPCOACH_SMTP_*" if path is not None else "SOPCOACH_SMTP_*"
    tls = values.get("starttls", True)
    if isinstance(tls, str):
        if tls.strip().lower() not in _TRUE + _FALSE:
            raise ConfigError(f"{where}: starttls must be true or false (got {tls!r})")
        tls = tls.strip().lower() in _TRUE
    try:
        port = int(values.get("port") or (587 if tls else 25))
    except ValueError:
        raise ConfigError(f"{where}: port must be a number such as 587 (got {values.get('port')!r})") from None
    if not values.get("from"):
        raise ConfigError(f"{where}: the sender address is missing; set from = \"training@example.com\" "
                          "(or SOPCOACH_SMTP_FROM)")
    return SmtpSettings(str(values["host"]), port, str(values["from"]), str(values.get("user", "")),
                        str(values.get("password", "")), bool(tls))


def reminder_message(due: Due, sender: str, url: str, timezone: str) -> EmailMessage:
    """Return the reminder e-mail to one learner: subject and plain-text body in Chinese, then English."""
    zh, en = REASON_TEXT[due.reason]
    msg = EmailMessage()
    msg["Subject"] = f"【销售规程认证】{zh} / Sales SOP certification: {en}"
    msg["From"] = sender
    msg["To"] = formataddr((due.name, due.email))
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    action_zh = "请完成课程并参加认证考试" if due.reason == "not_certified" else "请尽快参加复认证考试"
    action_en = ("please complete the lessons and take the certification exam" if due.reason == "not_certified"
                 else "please take the recertification exam soon")
    where = f"\n{url}\n" if url else "\n"
    msg.set_content(
        f"{due.name}，您好：\n\n{zh}：{due.detail(timezone, 'zh-CN')}。\n{action_zh}：{where}\n"
        "用员工编号和访问码登录；访问码遗失请联系培训师。\n\n"
        f"Dear {due.name},\n\n{en[0].upper() + en[1:]}: {due.detail(timezone, 'en')}.\n"
        f"Sign in with your employee id and access code and {action_en}:{where}\n"
        "Lost your access code? Ask your trainer.\n")
    return msg


@dataclass(frozen=True)
class SendResult:
    """What happened to one learner's reminder: ``status`` is ``sent``, ``no_email``,
    ``already_sent`` (today, by an earlier run) or ``failed`` (``error`` says why)."""

    learner_id: str
    email: str
    status: str
    error: str = ""


def send_reminders(inst: Any, dues: list[Due], smtp: SmtpSettings, url: str = "",
                   now: datetime | None = None) -> list[SendResult]:
    """Send one reminder per due learner with an e-mail address; return what happened to each.

    A reminder already sent on the same company day (playbook time zone) for the same reason is
    not sent again. Each sent reminder is recorded at once (audit event ``reminder_sent``,
    detail ``DAY REASON ADDRESS``), so a run cut short resends nothing that went out.

    Raises
    ------
    Nothing for delivery problems: a refused address, or a server that cannot be reached or refuses
    the login, makes ``failed`` results naming the error.
    """
    now = now or utcnow()
    tz = inst.playbook.calendar.timezone
    today = local_day(now, tz)
    records = inst.records
    sent_today = {(e.learner_id, e.detail.split(" ")[1]) for e in records.audit_events(SENT_KIND)
                  if e.detail.startswith(today + " ")}
    results: list[SendResult] = []
    todo = []
    for d in dues:
        if not d.email:
            results.append(SendResult(d.learner_id, "", "no_email"))
        elif (d.learner_id, d.reason) in sent_today:
            results.append(SendResult(d.learner_id, d.email, "already_sent"))
        else:
            todo.append(d)
    if not todo:
        return results
    try:
        server = smtplib.SMTP(smtp.host, smtp.port, timeout=30)
    except OSError as exc:
        return results + [SendResult(d.learner_id, d.email, "failed", f"cannot reach {smtp.host}:{smtp.port}: {exc}")
                          for d in todo]
    try:
        try:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.user:
                server.login(smtp.user, smtp.password)
        except (smtplib.SMTPException, OSError) as exc:
            return results + [SendResult(d.learner_id, d.email, "failed", f"{smtp.host}: {exc}") for d in todo]
        for d in todo:
            try:
                server.send_message(reminder_message(d, smtp.sender, url, tz))
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                results.append(SendResult(d.learner_id, d.email, "failed",
                                          f"refused: {code} {text.decode(errors='replace')}"))
                continue
            except (smtplib.SMTPException, OSError) as exc:
                results.append(SendResult(d.learner_id, d.email, "failed", str(exc)))
                continue
            records.audit(SENT_KIND, f"{today} {d.reason} {d.email}", learner_id=d.learner_id)
            results.append(SendResult(d.learner_id, d.email, "sent"))
    finally:
        try:
            server.quit()
        except (smtplib.SMTPException, OSError):
            server.close()
    return results
