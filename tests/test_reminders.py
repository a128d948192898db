"""Reminders (:mod:`sopcoach.cohort.reminders`, ``sopcoach remind``): who is due, and e-mail through a real
local SMTP server (aiosmtpd) that records what it received. Records tests run on SQLite and PostgreSQL."""
from __future__ import annotations

import socket
from datetime import timedelta
from email import message_from_bytes, policy

import pytest

from support import complete_lessons, correct_response

from sopcoach.cli.main import main
from sopcoach.cohort.reminders import SmtpSettings, due_list, send_reminders, smtp_settings
from sopcoach.cohort.roster import Roster, RosterRow, apply_roster
from sopcoach.errors import ConfigError

pytestmark = pytest.mark.databases("sqlite", "postgresql")


class Inbox:
    """An aiosmtpd handler keeping every message; it refuses the recipient ``refused@example.com``."""

    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == "refused@example.com":
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    """A real SMTP server on a free loopback port; yields (inbox, port)."""
    from aiosmtpd.controller import Controller
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def people(records, *rows):
    """Enroll learners (id, name, email[, leaver]) through a roster."""
    apply_roster(records, Roster("test", tuple(RosterRow(i + 2, r[0], r[1], "华东一组", "2026春", r[2],
                                                         len(r) > 3 and r[3], None) for i, r in enumerate(rows)), ()))


def certify(inst, service, learner_id):
    complete_lessons(inst, learner_id)
    attempt = service.start_or_resume(learner_id, seed=5)
    for qid in service.view(attempt).question_ids:
        service.answer(attempt, qid, correct_response(service.attempt_question(attempt, qid)))
    assert service.submit(attempt).passed


def test_due_list_expired_expiring_and_not_certified(inst, service, records, clock):
    """Expired first, then expiring within the window, then never certified (with progress); leavers and
    certificates expiring later are not listed."""
    people(records, ("E1", "王伟", "e1@example.com"), ("E2", "李娜", "e2@example.com"),
           ("E3", "张敏", "e3@example.com"), ("E4", "刘洋", None), ("E5", "陈静", "e5@example.com"))
    certify(inst, service, "E2")
    clock.advance(days=30)
    certify(inst, service, "E1")
    certify(inst, service, "E5")
    people(records, ("E5", "陈静", None, True))
    clock.advance(days=340)  # E2's certificate expired 5 days ago, E1's expires in 25 days
    dues = due_list(inst, 30, clock())
    assert [(d.learner_id, d.reason) for d in dues] == [
        ("E2", "expired"), ("E1", "expiring"), ("E3", "not_certified"), ("E4", "not_certified")]
    assert dues[1].detail("Asia/Shanghai", "en") == f"certificate {dues[1].certificate} expires on 2027-04-01"
    assert dues[2].detail("Asia/Shanghai", "en").startswith("lessons done 0/")
    assert [d.learner_id for d in due_list(inst, 10, clock())] == ["E2", "E3", "E4"]


def test_send_reminders_one_bilingual_mail_each_and_not_twice_a_day(inst, records, clock, smtp):
    """Each due learner with an address gets one mail (subject and body in Chinese and English); a refused
    address fails alone; a second run the same day sends nothing again."""
    inbox, port = smtp
    people(records, ("E1", "王伟", "wang.wei@example.com"), ("E2", "李娜", "refused@example.com"),
           ("E3", "张敏", None), ("E4", "刘洋", "liu.yang@example.com"))
    settings = SmtpSettings("127.0.0.1", port, "training@example.com", starttls=False)
    dues = due_list(inst, 30, clock())
    results = send_reminders(inst, dues, settings, "http://learn.example.com/", clock())
    assert [(r.learner_id, r.status) for r in results] == [
        ("E3", "no_email"), ("E1", "sent"), ("E2", "failed"), ("E4", "sent")]
    assert results[2].error == "refused: 550 5.1.1 no such mailbox"
    assert [rcpt for rcpt, _ in inbox.messages] == [["wang.wei@example.com"], ["liu.yang@example.com"]]
    msg = inbox.messages[0][1]
    assert msg["Subject"] == "【销售规程认证】尚未取得认证 / Sales SOP certification: not certified yet"
    assert msg["From"] == "training@example.com" and "wang.wei@example.com" in msg["To"]
    body = msg.get_content()
    for expected in ("王伟，您好", "已完成课程 0/", "请完成课程并参加认证考试", "http://learn.example.com/",
                     "Dear 王伟", "lessons done 0/", "take the certification exam"):
        assert expected in body, expected
    again = send_reminders(inst, dues, settings, "", clock())
    assert [(r.learner_id, r.status) for r in again] == [
        ("E1", "already_sent"), ("E3", "no_email"), ("E4", "already_sent"), ("E2", "failed")]
    assert len(inbox.messages) == 2
    assert [e.learner_id for e in records.audit_events("reminder_sent")] == ["E1", "E4"]
    clock.advance(days=1)
    assert [r.status for r in send_reminders(inst, dues, settings, "", clock())].count("sent") == 2


def test_an_unreachable_server_fails_each_reminder(inst, records, clock):
    """No SMTP server at the address: every reminder is reported failed with the reason; nothing recorded."""
    people(records, ("E1", "王伟", "e1@example.com"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = send_reminders(inst, due_list(inst, 30, clock()), SmtpSettings("127.0.0.1", port, "t@example.com",
                                                                             starttls=False), "", clock())
    assert [(r.learner_id, r.status) for r in results] == [("E1", "failed")]
    assert results[0].error.startswith(f"cannot reach 127.0.0.1:{port}:")
    assert records.audit_events("reminder_sent") == []


def test_remind_command_lists_and_sends(db_url, records, smtp, monkeypatch, capsys):
    """`sopcoach remind` prints the table; with --send and SOPCOACH_SMTP_* it mails and reports per person."""
    inbox, port = smtp
    people(records, ("E1", "王伟", "wang.wei@example.com"), ("E2", "李娜", None))
    assert main(["remind", "--db-url", db_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "员工编号\t姓名\t团队\t批次\t邮箱\t原因\t详情"
    assert out[1].startswith("E1\t王伟\t华东一组\t2026春\twang.wei@example.com\t尚未取得认证\t已完成课程 0/")
    assert main(["remind", "--db-url", db_url, "--send"]) == 1  # no SMTP settings yet
    err = capsys.readouterr().err
    assert "--send needs an SMTP server: set SOPCOACH_SMTP_HOST" in err
    for key, value in {"HOST": "127.0.0.1", "PORT": str(port), "FROM": "training@example.com", "STARTTLS": "no"}.items():
        monkeypatch.setenv(f"SOPCOACH_SMTP_{key}", value)
    assert main(["remind", "--db-url", db_url, "--send", "--url", "http://learn.example.com/"]) == 0
    out = capsys.readouterr().out
    assert "E1\twang.wei@example.com\t已发送" in out and "E2\t\t没有邮箱，未发送" in out
    assert [rcpt for rcpt, _ in inbox.messages] == [["wang.wei@example.com"]]


def test_smtp_settings_from_file_and_environment(tmp_path):
    """HOME/smtp.toml gives the settings, SOPCOACH_SMTP_* override it; mistakes name the key and the fix."""
    assert smtp_settings(tmp_path, {}) is None
    (tmp_path / "smtp.toml").write_text('host = "smtp.example.com"\nuser = "bot"\npassword = "s3cret"\n'
                                        'from = "training@example.com"\n', encoding="utf-8")
    s = smtp_settings(tmp_path, {"SOPCOACH_SMTP_PORT": "2525"})
    assert (s.host, s.port, s.user, s.password, s.sender, s.starttls) == (
        "smtp.example.com", 2525, "bot", "s3cret", "training@example.com", True)
    assert "s3cret" not in repr(s)
    assert smtp_settings(tmp_path, {"SOPCOACH_SMTP_STARTTLS": "false"}).port == 25
    with pytest.raises(ConfigError, match="port must be a number such as 587 \\(got 'abc'\\)"):
        smtp_settings(tmp_path, {"SOPCOACH_SMTP_PORT": "abc"})
    with pytest.raises(ConfigError, match="the sender address is missing"):
        smtp_settings(None, {"SOPCOACH_SMTP_HOST": "smtp.example.com"})
    (tmp_path / "smtp.toml").write_text("host = smtp.example.com\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        smtp_settings(tmp_path, {})


def test_within_must_not_be_negative(db_url, records, capsys):
    """`remind --within -1` is a usage error."""
    assert main(["remind", "--db-url", db_url, "--within", "-1"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "sopcoach remind: --within is a number of days, 0 or more (got -1)"


def test_within_window_is_calendar_days(inst, service, records, clock):
    """A certificate expiring exactly DAYS calendar days ahead is due; one a day later is not."""
    people(records, ("E1", "王伟", None))
    certify(inst, service, "E1")
    expires = clock() + timedelta(days=int(inst.blueprint.certificate_valid_days))  # issued now
    assert [d.reason for d in due_list(inst, 30, expires - timedelta(days=30))] == ["expiring"]
    assert due_list(inst, 30, expires - timedelta(days=31)) == []
