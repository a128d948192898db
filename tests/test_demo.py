"""The demo cohort (:mod:`sopcoach.cohort.demo`, ``sopcoach demo``): a data home with every page's data,
made through the real rules, the same for the same seed."""
from __future__ import annotations

import contextlib
import io

import pytest

from sopcoach.authoring.versions import recertification_list
from sopcoach.certification.certificates import certificate_table
from sopcoach.cli.main import main
from sopcoach.cohort.reminders import due_list
from sopcoach.config import installation, settings
from sopcoach.lessons.progress import LessonService
from sopcoach.records.store import Records


def summary(home):
    """What a demo home holds, without times and codes (which differ between runs)."""
    inst = installation(settings(None, home, None))
    r = inst.records
    try:
        learners = [(x.id, x.name, x.team, x.cohort, x.email, x.active) for x in r.learners()]
        attempts = [(a.learner_id, a.number, a.state, a.seed, a.percent, a.passed, a.playbook_version)
                    for a in r.attempts()]
        lessons = {x.id: sorted(k for k, p in r.lesson_progress(x.id).items() if p.completed_at is not None)
                   for x in r.learners()}
        certs = certificate_table(r)
        return dict(inst=inst, learners=learners, attempts=attempts, lessons=lessons,
                    certificates=sorted(zip(certs.learner_id, certs.status, certs.version, certs.percent)),
                    releases=[(x.label, x.changed) for x in r.releases()], recertify=recertification_list(r),
                    dues=[(d.learner_id, d.reason) for d in due_list(inst, 30)])
    finally:
        r.dispose()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo home made by `sopcoach demo --seed 7`: (home, exit code, what it printed)."""
    home = tmp_path_factory.mktemp("demo-home")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--home", str(home), "--seed", "7"])
    return home, code, out.getvalue()


def test_demo_fills_every_kind_of_record(demo, capsys):
    """24 learners in 3 teams and 2 cohorts (one leaver); lessons at every stage; passes, fails and one
    open attempt; certificates current, expiring, expired and due for recertification; two releases."""
    home, code, _ = demo
    assert code == 0
    s = summary(home)
    learners = s["learners"]
    assert len(learners) == 24 and len({x[2] for x in learners}) == 3 and len({x[3] for x in learners}) == 2
    assert all(x[4] == f"{x[0].lower()}@example.com" for x in learners)
    assert sum(1 for x in learners if not x[5]) == 1
    total = len(LessonService(s["inst"]).lessons())
    done = sorted(len(v) for v in s["lessons"].values())
    assert done.count(0) == 3 and done.count(total) >= 15 and any(0 < n < total for n in done)
    states = [a[2] for a in s["attempts"]]
    assert states.count("started") == 1
    assert sum(1 for a in s["attempts"] if a[5]) == 13 and sum(1 for a in s["attempts"] if a[5] is False) == 3
    assert len({a[4] for a in s["attempts"] if a[5]}) > 1  # passes with a question or two wrong, not all 100%
    statuses = [c[1] for c in s["certificates"]]
    assert statuses.count("expired") == 1 and statuses.count("current") == 2 and statuses.count("recertify") == 10
    assert s["releases"] == [("0.9", []), ("1.0", ["quote-limits"])]
    assert len(s["recertify"]) >= 9 and set(s["recertify"].changed.map(tuple)) == {("quote-limits",)}
    reasons = [reason for _, reason in s["dues"]]
    assert reasons.count("expired") == 1 and reasons.count("expiring") == 1 and reasons.count("recertify") >= 8
    assert reasons.count("not_certified") == 11  # the one who failed twice, the ten of cohort 2 without a pass


def test_demo_prints_how_to_sign_in_and_the_code_works(demo):
    """The output names a learner and an access code that signs in, and how to open the trainer pages."""
    home, _, out = demo
    assert f"sopcoach serve --trainer --home {home}" in out and f"sopcoach serve --home {home}" in out
    assert "发布版本 0.9、1.0" in out  # a Chinese line lists with 、, not ", "
    assert f"月度复盘列出 {home / 'crm'} 中的 CRM 导出" in out  # where the review's exports go with --home
    learner, code = out.split("以 ")[1].split("（")[0], out.split("访问码 ")[1].split()[0]
    r = Records(settings(None, home, None).db_url)
    try:
        assert r.authenticate(learner, code).id == learner
    finally:
        r.dispose()


def test_demo_refuses_a_home_with_learners_and_same_seed_same_cohort(demo, tmp_path, capsys):
    """A home with learners is refused (exit 1, one line); the same seed in a new home gives the same
    learners, progress, draws, scores and certificates; another seed another cohort."""
    home = demo[0]
    assert main(["demo", "--home", str(home)]) == 1
    assert "has 24 learner(s) already; the demo fills an empty one" in capsys.readouterr().err
    again = tmp_path / "again"
    assert main(["demo", "--home", str(again), "--seed", "7"]) == 0
    first, second = summary(home), summary(again)
    for key in ("learners", "attempts", "lessons", "certificates", "releases", "dues"):
        assert first[key] == second[key], key
    other = tmp_path / "other"
    assert main(["demo", "--home", str(other), "--seed", "8"]) == 0
    assert summary(other)["learners"] != first["learners"]
