"""A demo cohort: a data home filled, through the real rules, with a year of a realistic training history.

:func:`fill_demo` enrolls 24 learners (Chinese names, three teams, two cohorts) from rosters
(:func:`sopcoach.cohort.roster.apply_roster`) and lets them work with a fake clock that moves through
the past weeks: lessons opened and practised (:class:`~sopcoach.lessons.progress.LessonService`),
exam attempts passed, failed and one still open (:class:`~sopcoach.certification.exam.ExamService`,
lesson gate and waiting time included), certificates (one expired, one expiring within three weeks),
a leaver, and two playbook releases (:func:`sopcoach.authoring.versions.release`): the earlier one,
``0.9``, had the sales supervisor's quote limit at 300,000 CNY (the shipped content says 500,000), so
the certificates issued on it are due for recertification of clause ``quote-limits``. Nothing is
inserted around the rules; the same seed gives the same people, progress, draws and scores.
"""
from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..authoring.versions import confirm, needs_review_ids, release
from ..certification.exam import ExamService
from ..certification.itemstats import simulated_response
from ..content.playbook import load_playbook
from ..errors import SopcoachError
from ..lessons.progress import LessonService, lesson_gate
from ..records.models import utcnow
from .roster import Roster, RosterRow, apply_roster

__all__ = ["DEMO_TEAMS", "DemoCohort", "fill_demo"]

DEMO_TEAMS = ("华东一组", "华南二组", "华北三组")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
          "霞", "平", "刚", "桂英", "婷", "浩然", "子涵", "雨欣", "思远", "嘉怡", "宇航", "欣怡", "志强", "晓东")
#: The earlier playbook version of the demo: the supervisor's quote limit, in the files as shipped and before.
_OLD_VERSION = "0.9"
_EDITS = (("authority.yaml", "max_quote_amount: 500000", "max_quote_amount: 300000"),
          ("clauses.yaml", "报价金额不超过500,000元", "报价金额不超过300,000元"),
          ("clauses.yaml", "amount up to 500,000 CNY", "amount up to 300,000 CNY"))
TRAINER = "演示培训师 Demo trainer"


class _Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class DemoCohort:
    """What :func:`fill_demo` made: the learners by id (name, team, cohort, stage), the release labels,
    and one learner to sign in as with their access code."""

    learners: dict[str, dict[str, str]] = field(default_factory=dict)
    releases: tuple[str, ...] = ()
    sign_in_as: str = ""
    access_code: str = ""


def _old_playbook(content: Path, scratch: Path) -> Path:
    """Copy the playbook to ``scratch`` as it was in version 0.9 (the lower quote limit)."""
    folder = scratch / "playbook"
    shutil.copytree(content / "playbook", folder)
    for name, new, old in _EDITS:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        if new not in text:
            raise SopcoachError(f"the demo cannot make its earlier playbook version: {path.name} no longer says "
                                f"{new!r}; update _EDITS in sopcoach/cohort/demo.py")
        path.write_text(text.replace(new, old, 1), encoding="utf-8")
    return folder


def _names(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
        if name not in out:
            out.append(name)
    return out


def fill_demo(inst: Any, seed: int = 7, now: datetime | None = None) -> DemoCohort:
    """Fill the installation's empty records with the demo cohort (see the module docstring).

    Parameters
    ----------
    inst : Installation
        Its records must hold no learner and no release (the CLI refuses otherwise, or takes ``--force``
        for learners).
    seed : int
        Decides names, stages, draws and answers: the same seed gives the same cohort.
    now : datetime, optional
        Aware UTC "today" of the demo (default: now); the history lies in the 13 months before it.

    Returns
    -------
    DemoCohort

    Raises
    ------
    SopcoachError
        When the records already hold a release (the demo's releases would not be its own), or
        the shipped playbook no longer has the text the demo's earlier version changes.
    """
    now = now or utcnow()
    records = inst.records
    if records.releases():
        raise SopcoachError("the demo needs a data home without playbook releases; use a new --home")
    rng = random.Random(seed)
    clock = _Clock(now - timedelta(days=400))
    lessons = LessonService(inst, clock)
    names = _names(rng, 24)
    out = DemoCohort()
    first = now - timedelta(days=400)
    second = now - timedelta(days=44)
    cohorts = (f"{first:%Y}年{first.month}月批", f"{second:%Y}年{second.month}月批")
    people = []
    for i, name in enumerate(names):
        cohort = cohorts[i // 12]
        lid = f"D{1001 + i}" if i < 12 else f"D{2001 + i - 12}"
        people.append(RosterRow(i + 2, lid, name, DEMO_TEAMS[i % 3], cohort, f"{lid.lower()}@example.com", False, None))
    # stages, by position within each cohort (shuffled by the seed)
    stages_a = ["expired", "expiring", "failed_twice", "leaver"] + ["recertify"] * 8
    stages_b = ["enrolled"] * 3 + ["lessons_partly"] * 3 + ["lessons_done"] * 2 + ["passed"] * 2 + ["failed", "in_progress"]
    rng.shuffle(stages_a)
    rng.shuffle(stages_b)
    stage = dict(zip([p.learner_id for p in people], stages_a + stages_b))

    with tempfile.TemporaryDirectory() as scratch:
        old_folder = _old_playbook(inst.settings.content, Path(scratch))
        old = load_playbook(old_folder)
        clock.now = first - timedelta(days=3)
        release(records, old, inst.bank, old_folder, label=_OLD_VERSION, note="演示：上一版规程 / demo: earlier version",
                by=TRAINER, now=clock.now)
        old_exam = ExamService(records, inst.bank, inst.blueprint, old.content_hash(), _OLD_VERSION, clock,
                               lesson_gate=lesson_gate(inst))
        clock.now = first
        apply_roster(records, Roster("demo-roster-1.csv", tuple(people[:12]), ()), now=clock.now)
        # cohort 1: lessons in the first weeks, exams on the old version
        exam_day = {"expired": 25, "expiring": 45}  # expired 10 days ago; expires in 10 days
        for p in people[:12]:
            clock.now = first + timedelta(days=rng.randint(1, 5), hours=rng.randint(1, 8))
            _do_lessons(lessons, p.learner_id, rng, clock, len(lessons.lessons()))
            clock.now = first + timedelta(days=exam_day.get(stage[p.learner_id], rng.randint(90, 130)), hours=2)
            if stage[p.learner_id] == "failed_twice":
                _take(old_exam, p.learner_id, rng, clock, right=0.5)
                clock.now += timedelta(days=3)
                _take(old_exam, p.learner_id, rng, clock, right=0.6)
            else:
                _take(old_exam, p.learner_id, rng, clock, right=1.0)
        leaver = next(p for p in people[:12] if stage[p.learner_id] == "leaver")
        clock.now = now - timedelta(days=60)
        apply_roster(records, Roster("demo-roster-leaver.csv", (RosterRow(2, leaver.learner_id, leaver.name, None, None,
                                                                            None, True, clock.now.date()),), ()),
                     now=clock.now)
        # the current version: the quote limit changed, the questions on it were reviewed and confirmed
        clock.now = now - timedelta(days=50)
        release(records, inst.playbook, inst.bank, inst.settings.playbook_dir,
                note="上调销售主管报价权限至500,000元 / supervisor quote limit raised to 500,000 CNY", by=TRAINER,
                now=clock.now)
        clock.now += timedelta(days=2)
        confirm(records, needs_review_ids(records), by=TRAINER, now=clock.now)
    exam = inst.exam_service(clock, lesson_gate=lesson_gate(inst))
    clock.now = second
    outcome = apply_roster(records, Roster("demo-roster-2.csv", tuple(people[12:]), ()), now=clock.now)
    total = len(lessons.lessons())
    for p in people[12:]:
        s = stage[p.learner_id]
        clock.now = second + timedelta(days=rng.randint(1, 6), hours=rng.randint(1, 8))
        if s == "enrolled":
            continue
        _do_lessons(lessons, p.learner_id, rng, clock, rng.randint(1, max(1, total - 2)) if s == "lessons_partly" else total)
        clock.now += timedelta(days=rng.randint(1, 5), hours=3)
        if s == "passed":
            _take(exam, p.learner_id, rng, clock, right=1.0)
        elif s == "failed":
            _take(exam, p.learner_id, rng, clock, right=0.55)
        elif s == "in_progress":
            clock.now = now - timedelta(minutes=10)
            attempt = exam.start_or_resume(p.learner_id, seed=rng.randrange(2**31))
            view = exam.view(attempt)
            for qid in view.question_ids[: len(view.question_ids) // 3]:
                exam.answer(attempt, qid, simulated_response(exam.attempt_question(attempt, qid), True))
    for p in people:
        out.learners[p.learner_id] = {"name": p.name, "team": p.team or "", "cohort": p.cohort or "",
                                      "stage": stage[p.learner_id]}
    out.releases = (_OLD_VERSION, inst.playbook.sop.version)
    out.sign_in_as = next(p.learner_id for p in people[12:] if stage[p.learner_id] == "lessons_done")  # can open the exam at once
    out.access_code = outcome.codes[out.sign_in_as]
    return out


def _do_lessons(lessons: LessonService, learner_id: str, rng: random.Random, clock: _Clock, n: int) -> None:
    """Work through the first ``n`` lessons, a day or two apart (a wrong practice answer is tried again)."""
    for lesson in lessons.lessons()[:n]:
        lessons.open(learner_id, lesson.id)
        for q in lessons.questions(lesson.id):
            right = rng.random() < 0.8
            clock.now += timedelta(minutes=rng.randint(1, 4))
            shown, params = lessons.variant(q.id, rng=rng)  # a template: the numbers the page shows
            lessons.answer(learner_id, lesson.id, q.id, simulated_response(shown, right), params=params)
            if not right:  # tried again until right, as the lesson page lets them
                lessons.answer(learner_id, lesson.id, q.id, simulated_response(shown, True), params=params)
        clock.now += timedelta(days=rng.randint(1, 2))


def _take(exam: Any, learner_id: str, rng: random.Random, clock: _Clock, right: float) -> None:
    """Take an exam attempt in 20-40 minutes. ``right`` 1.0: a pass with up to three questions wrong (never
    more points than the pass mark allows); below 1: about that share of the questions right (a fail)."""
    attempt = exam.start_or_resume(learner_id, seed=rng.randrange(2**31))
    ids = exam.view(attempt).question_ids
    if right >= 1:
        allowed = (1 - exam.blueprint.pass_mark) * sum(exam.bank[q].points for q in ids)
        wrong: set[str] = set()
        for qid in rng.sample(ids, rng.randint(0, 3)):
            if sum(exam.bank[q].points for q in wrong) + exam.bank[qid].points <= allowed:
                wrong.add(qid)
    else:
        wrong = {qid for qid in ids if rng.random() >= right}
    for qid in ids:
        exam.answer(attempt, qid, simulated_response(exam.attempt_question(attempt, qid), qid not in wrong))
    clock.now += timedelta(minutes=rng.randint(20, 40))
    exam.submit(attempt)
