"""Lessons: the tools give right values on known inputs; practice is apart from the exam; the
progress rule; the installation secret; the lesson gate of the exam; the working-time cases 25 and 28."""
from __future__ import annotations

import os
import shutil
from datetime import date, datetime, time
from decimal import Decimal as D
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
import yaml

from sopcoach.content.businesstime import BusinessCalendar, Duration
from sopcoach.content.playbook import load_playbook
from sopcoach.errors import InvalidResponse, LessonsIncomplete, ToolInputError
from sopcoach.lessons.progress import PASS_FRACTION, LessonService, lesson_gate
from sopcoach.lessons.tools import (approval, check_follow_up_plan, classify_tier, deadline, funnel, objectives,
                                    quote_line, stage_map, trend)
from sopcoach.web.secret import load_secret
from support import CASES, ROOT, answer_practice, complete_lessons, correct_response, wrong_response

#: Every test that uses the records database runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def lessons(inst, clock):
    inst.records.enroll("e7001", "周九", code="c-7001")
    return LessonService(inst, clock)


# --------------------------------------------------------------------------------- SLA calculator


@pytest.mark.parametrize("start, value, unit, due", [
    # the make-up working Sunday before National Day counts as day 0; 1-8 October are off
    ((2025, 9, 28, 10, 0), 1, "working_days", (2025, 9, 29, 10, 0)),
    ((2025, 9, 28, 10, 0), 2, "working_days", (2025, 9, 30, 10, 0)),
    ((2025, 9, 28, 10, 0), 3, "working_days", (2025, 10, 9, 10, 0)),
    ((2025, 9, 28, 10, 0), 4, "working_days", (2025, 10, 10, 10, 0)),
    # Saturday 11 October 2025 is the second make-up working day
    ((2025, 9, 28, 10, 0), 5, "working_days", (2025, 10, 11, 10, 0)),
    ((2025, 9, 30, 16, 0), 2, "working_days", (2025, 10, 10, 16, 0)),
    # a start on a non-working day counts from the next working day's opening
    ((2025, 9, 27, 14, 0), 2, "working_days", (2025, 9, 30, 9, 0)),
    ((2025, 10, 3, 15, 0), 1, "working_days", (2025, 10, 10, 9, 0)),
    # business hours 09:00-18:00: 1 h on the 30th, 7 h on 9 October
    ((2025, 9, 30, 17, 0), 8, "business_hours", (2025, 10, 9, 16, 0)),
    ((2025, 9, 30, 10, 0), 9, "business_hours", (2025, 10, 9, 10, 0)),
    ((2025, 9, 28, 17, 0), 2, "business_hours", (2025, 9, 29, 10, 0)),
    # elapsed hours and calendar days run through the holiday
    ((2025, 9, 30, 20, 0), 24, "elapsed_hours", (2025, 10, 1, 20, 0)),
    ((2025, 9, 28, 10, 0), 30, "calendar_days", (2025, 10, 28, 10, 0)),
])
def test_sla_calculator_across_the_2025_national_day_holiday(playbook, start, value, unit, due):
    """The deadline calculator gives the due times worked by hand across National Day 2025."""
    d = deadline(playbook.business_calendar(), datetime(*start), Duration(value, unit))
    assert d.due == datetime(*due, tzinfo=SHANGHAI)


def test_sla_calculator_marks_each_day_of_the_span(playbook):
    """The days from the make-up Sunday to 9 October are marked make-up, working, holiday, weekend."""
    d = deadline(playbook.business_calendar(), datetime(2025, 9, 28, 10), Duration(3, "working_days"))
    kinds = {m.day: m.kind for m in d.days}
    assert kinds[date(2025, 9, 28)] == "makeup" and kinds[date(2025, 9, 29)] == "working"
    assert kinds[date(2025, 10, 1)] == "holiday" and kinds[date(2025, 10, 8)] == "holiday"
    assert kinds[date(2025, 10, 4)] == "weekend"  # a Saturday inside the holiday: off either way
    assert kinds[date(2025, 10, 9)] == "working" and len(d.days) == 12


def test_sla_calculator_uses_the_playbook_limit(playbook):
    """The first-proposal limit of the playbook (3 working days) gives 9 October from the make-up Sunday."""
    d = deadline(playbook.business_calendar(), datetime(2025, 9, 28, 10), playbook.sla("first_proposal").duration)
    assert d.due.date() == date(2025, 10, 9)


# ------------------------------------------------------------- working-time engine: cases 25, 28


def _case(name: str) -> dict:
    return yaml.safe_load((CASES / name).read_text(encoding="utf-8"))


def test_case25_england_easter_five_working_days():
    """Case 25: 5 working days from Mon 2023-04-03 09:00 with Good Friday and Easter Monday is Wed 04-12."""
    case = _case("25_sla_holidays_england.yaml")
    holidays = frozenset(case["calendar"]["holidays"])
    days = case["sla"]["first_quote"]["business_days"]
    assert holidays == {date(2023, 4, 7), date(2023, 4, 10)} and days == 5
    england = BusinessCalendar("Europe/London", holidays=holidays)
    start = england.check_local(datetime(2023, 4, 3, 9, 0))
    due = deadline(england, start, Duration(days, "working_days")).due
    assert due == datetime(2023, 4, 12, 9, 0, tzinfo=ZoneInfo("Europe/London"))
    good_friday_only = BusinessCalendar("Europe/London", holidays=frozenset({date(2023, 4, 7)}))
    assert good_friday_only.add(start, Duration(days, "working_days")).date() == date(2023, 4, 11)


def test_case28_dst_calendar_day_elapsed_hours_and_business_hours():
    """Case 28: 1 calendar day is 10:00+02:00, 24 elapsed hours 11:00+02:00, 4 business hours Mon 11:00+01:00."""
    case = _case("28_sla_dst.yaml")
    hours = case["business_hours"]
    berlin = BusinessCalendar(case["timezone"], day_start=time.fromisoformat(hours["start"]),
                              day_end=time.fromisoformat(hours["end"]))
    limits = {k: Duration(*next(iter(((v, u) for u, v in spec.items())))) for k, spec in case["sla"].items()}
    sat = datetime(2024, 3, 30, 10, 0)
    assert deadline(berlin, sat, limits["callback_calendar"]).due.isoformat() == "2024-03-31T10:00:00+02:00"
    assert deadline(berlin, sat, limits["callback_hours"]).due.isoformat() == "2024-03-31T11:00:00+02:00"
    fri = datetime(2024, 10, 25, 15, 0)
    assert deadline(berlin, fri, limits["first_response"]).due.isoformat() == "2024-10-28T11:00:00+01:00"


def test_case28_nonexistent_local_time_is_flagged():
    """Case 28: a typed local time inside the spring DST gap is refused, not shifted."""
    from sopcoach.errors import NonexistentLocalTime
    berlin = BusinessCalendar("Europe/Berlin")
    with pytest.raises(NonexistentLocalTime):
        deadline(berlin, datetime(2024, 3, 31, 2, 30), Duration(1, "calendar_days"))


# --------------------------------------------------------------------------- approval simulator


@pytest.mark.parametrize("role, amount, discount, chain", [
    ("sales_rep", "100000", "0.10", ["sales_rep"]),                                    # exactly at both limits
    ("sales_rep", "99999.99", "0.0999", ["sales_rep"]),
    ("sales_rep", "100000.01", "0.10", ["sales_rep", "sales_supervisor"]),             # 1 fen above the amount
    ("sales_rep", "100000", "0.1001", ["sales_rep", "sales_supervisor"]),              # just above the discount
    ("sales_rep", "500000", "0.20", ["sales_rep", "sales_supervisor"]),                # at the supervisor's limits
    ("sales_rep", "500000.01", "0.05", ["sales_rep", "sales_supervisor", "sales_director"]),
    ("sales_rep", "1000", "0.2001", ["sales_rep", "sales_supervisor", "sales_director"]),
    ("account_manager", "300000", "0.15", ["account_manager"]),
    ("account_manager", "300000.01", "0.15", ["account_manager", "sales_supervisor"]),
    ("account_manager", "300000", "0.16", ["account_manager", "sales_supervisor"]),
    ("account_manager", "600000", "0.10", ["account_manager", "sales_supervisor", "sales_director"]),
    ("sales_supervisor", "500000", "0.20", ["sales_supervisor"]),
    ("sales_supervisor", "500001", "0.20", ["sales_supervisor", "sales_director"]),
])
def test_approval_simulator_at_and_around_each_threshold(playbook, role, amount, discount, chain):
    """seed:2.3.1: limits are inclusive; a quote above either limit goes one level further up."""
    a = approval(playbook, role, D(amount), D(discount), "A")
    assert a.chain == chain
    assert a.approver == (chain[-1] if len(chain) > 1 else None)
    assert a.clause.id == "quote-limits"


def test_approval_simulator_says_which_limit_is_exceeded(playbook):
    """A rep's quote of 120,000 at 12% breaks both the amount and the discount limit of the rep only."""
    a = approval(playbook, "sales_rep", D("120000"), D("0.12"))
    first, second = a.steps
    assert (first.amount_ok, first.discount_ok, second.covers) == (False, False, True)


def test_approval_simulator_refuses_bad_input(playbook):
    """A negative amount, a discount written as 12 instead of 0.12 and an unknown role are refused."""
    for args in (("sales_rep", D(-1), D(0)), ("sales_rep", D(1000), D(12)), ("finance", D(1), D(0))):
        with pytest.raises(ToolInputError):
            approval(playbook, *args)


def test_approval_follows_a_trainers_change_to_the_playbook(tmp_path):
    """Raising the rep's amount limit in authority.yaml changes the simulator without any code change."""
    shutil.copytree(ROOT / "playbook", tmp_path / "playbook")
    path = tmp_path / "playbook" / "authority.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("max_quote_amount: 100000 ", "max_quote_amount: 150000 ", 1),
                    encoding="utf-8")
    pb = load_playbook(tmp_path / "playbook")
    assert approval(pb, "sales_rep", D("120000"), D("0.05")).chain == ["sales_rep"]
    rep = next(x for x in pb.lessons if x.id == "authority").read()
    assert "销售代表可独立报价至150,000元" in rep.text(pb, "zh-CN")


# ------------------------------------------------------------------------ tiers and follow-ups


@pytest.mark.parametrize("revenue, employees, key, tier", [
    (50_000_000, 0, True, "A"), (49_999_999, 499, True, "B"), (0, 500, True, "A"), (0, 500, False, "B"),
    (10_000_000, 0, False, "B"), (9_999_999, 99, True, "C"), (0, 100, False, "B"), (0, 0, False, "C"),
])
def test_tier_classifier_at_the_thresholds(playbook, revenue, employees, key, tier):
    """Size by revenue OR employees; class A also needs a key industry or company-wide needs."""
    assert classify_tier(playbook, revenue, employees, key).tier.id == tier


@pytest.mark.parametrize("tier, plan, ok, short", [
    ("A", [1, 0, 1, 0, 1, 0, 0], True, 0), ("A", [1, 0, 1, 0, 0, 0, 0], False, 1),
    ("B", [0, 0, 0, 0, 0, 2, 0], True, 0), ("C", [0] * 7, False, 1),
])
def test_follow_up_plan_warns_below_the_tier_minimum(playbook, tier, plan, ok, short):
    """seed:3.1.2: a week's plan below the tier's minimum is flagged with the shortfall."""
    check = check_follow_up_plan(playbook, tier, plan)
    assert (check.ok, check.shortfall) == (ok, short)


# ------------------------------------------------------------------------------ funnel and trend


def test_funnel_rates_and_weak_stage_follow_the_numbers(playbook):
    """Changing one count changes the rates and moves the weak stage (seed:1.3.2)."""
    counts = {"leads_assigned": 200, "needs_confirmed": 60, "quotes_sent": 40, "quotes_accepted": 12,
              "contracts_signed": 10}
    f = funnel(playbook, counts, deals_lost=20)
    assert [s.rate for s in f.steps] == [Fraction(3, 10), Fraction(2, 3), Fraction(3, 10), Fraction(5, 6)]
    assert f.weakest.kpi.id == "quote_acceptance_rate" and f.win_rate == Fraction(1, 3)
    f2 = funnel(playbook, {**counts, "needs_confirmed": 40, "quotes_accepted": 30, "contracts_signed": 25})
    assert f2.weakest.kpi.id == "lead_conversion_rate" and f2.steps[0].rate == Fraction(1, 5)


def test_funnel_refuses_a_widening_funnel(playbook):
    """A count above the one before it is refused."""
    with pytest.raises(ToolInputError):
        funnel(playbook, {"leads_assigned": 10, "needs_confirmed": 11, "quotes_sent": 0, "quotes_accepted": 0,
                          "contracts_signed": 0})


def test_trend_detects_a_steady_fall():
    """seed:4.2.2: three falls in a row is a falling trend; a rebound is not."""
    assert trend([30, 28, 25, 21]) == "falling" and trend([30, 28, 29, 21]) == "steady"


def test_stage_map_highlights_the_responsible_role(playbook):
    """The stage diagram highlights the sales rep's three stages, in process order."""
    assert [b.position for b in stage_map(playbook, "sales_rep") if b.highlighted] == [1, 2, 4]


@pytest.mark.parametrize("product, qty, discount, net, chain", [
    ("crm-standard", 30, "0", "36000", ["sales_rep"]),                       # the exam's pk-seat-total line
    ("crm-enterprise", 45, "0.05", "102600.00", ["sales_rep", "sales_supervisor"]),   # above 100,000 after discount
    ("implementation", 2, "0.10", "90000.00", ["sales_rep"]),                 # exactly at 10% and under the amount
    ("support-premium", 9, "0.12", "475200.00", ["sales_rep", "sales_supervisor"]),
    ("support-premium", 9, "0", "540000", ["sales_rep", "sales_supervisor", "sales_director"]),
])
def test_a_quote_line_prices_from_the_list_price_and_names_the_approver(playbook, product, qty, discount, net, chain):
    """quantity x list price, less the discount, is the quote amount the approval chain judges."""
    line = quote_line(playbook, product, qty, discount)
    assert str(line.net_total) == net and line.approval.chain == chain


def test_a_quote_line_refuses_what_is_no_quote(playbook):
    """An unknown product or a quantity below 1 is refused with the fix."""
    with pytest.raises(ToolInputError, match="unknown product 'crm-gold'; pick one of the catalogue"):
        quote_line(playbook, "crm-gold", 1, 0)
    with pytest.raises(ToolInputError, match="whole number of 1 or more"):
        quote_line(playbook, "training", 0, 0)


def test_goals_map_to_the_lessons_that_teach_them(playbook):
    """Lesson 1 maps each goal of seed:1 to its clauses and later lessons."""
    first = next(x for x in playbook.lessons if x.id == "purpose")
    assert [o.goal.seed for o in objectives(playbook, first)] == ["seed:1.1", "seed:1.2", "seed:1.3"]


# ----------------------------------------------------------------------------- content of lessons


def test_ten_lessons_each_with_a_notebook_and_practice(playbook, inst):
    """Ten lessons with at least 3 practice questions each, all served by the one thin learner notebook."""
    import nbformat
    assert [x.number for x in sorted(playbook.lessons, key=lambda x: x.number)] == list(range(1, 11))
    practice = inst.practice()
    for lesson in playbook.lessons:
        assert len(practice.in_section(lesson.id)) >= 3
    assert sorted(p.name for p in (ROOT / "notebooks" / "learner").glob("*.ipynb")) == ["app.ipynb"]
    nb = nbformat.read(ROOT / "notebooks" / "learner" / "app.ipynb", 4)
    # one cell: each cell is one more execute round trip for the server on every page it preheats
    assert [c.source for c in nb.cells] == ["from sopcoach.ui import learner_app\nlearner_app()"]
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_lessons_cover_every_seed_section(playbook):
    """Every seed:N of CLAUSES.md lies in some lesson's seeds."""
    import re
    from sopcoach.lessons.tools import covers
    from support import SHARED
    refs = set(re.findall(r"^\| (seed:[\d.]+) \|", (SHARED / "seed" / "CLAUSES.md").read_text(encoding="utf-8"), flags=re.M))
    missing = {r for r in refs if not any(covers(s, r) for x in playbook.lessons for s in x.seeds)}
    assert len(refs) == 24 and missing == set()


def test_lesson_text_comes_from_the_playbook(playbook):
    """Key points quote playbook facts: the SLA lesson states the proposal and delivery limits."""
    sla = next(x for x in playbook.lessons if x.id == "service_levels").read()
    text = sla.text(playbook, "en")
    assert "3 working days" in text and "5 working days" in text and "{{" not in text


# ------------------------------------------------------------------------------ practice vs exam


def test_no_exam_item_appears_in_practice(bank, inst):
    """The practice pool shares no id and no question text with the certification bank."""
    practice = inst.practice()
    assert len(practice) >= 27
    assert set(practice.questions) & set(bank.questions) == set()
    exam_texts = {q.text.zh_CN for q in bank.questions.values()} | {q.text.en for q in bank.questions.values()}
    assert all(q.text.zh_CN not in exam_texts and q.text.en not in exam_texts for q in practice.questions.values())
    assert all(q.id.startswith("pr-") for q in practice.questions.values())


def test_practice_is_never_drawn_into_the_exam(service, inst, clock):
    """An exam attempt draws only bank questions, never practice ones."""
    inst.records.enroll("e7002", "吴十", code="c-7002")
    aid = service.start_or_resume("e7002", seed=7)
    drawn = set(inst.records.attempt(aid).question_ids)
    assert drawn <= set(inst.bank.questions) and not drawn & set(inst.practice().questions)


def test_practice_uses_the_lessons_and_renderable_types(playbook, inst):
    """Every practice question belongs to a lesson and has a type the lesson page renders."""
    from sopcoach.lessons.progress import PRACTICE_TYPES
    ids = {x.id for x in playbook.lessons}
    assert all(q.section in ids and q.type in PRACTICE_TYPES for q in inst.practice().questions.values())


# ------------------------------------------------------------------------------------- progress


def test_opening_a_lesson_records_it_once(lessons, inst, clock):
    """Opening records the first opening time; a second opening keeps it."""
    lessons.open("e7001", "authority")
    first = inst.records.lesson_progress("e7001")["authority"].opened_at
    clock.advance(hours=1)
    status = lessons.open("e7001", "authority")
    assert inst.records.lesson_progress("e7001")["authority"].opened_at == first
    assert status.opened and not status.complete and status.answered == 0


def test_complete_needs_every_question_and_four_fifths(lessons, inst):
    """A lesson completes only when every practice question is answered and the score is >= 4/5."""
    qs = [q for q in lessons.questions("authority") if q.variant is None]
    assert len(qs) == 4 and len(lessons.questions("authority")) == 5  # and one template
    for q in lessons.questions("authority")[:-1]:
        fb = answer_practice(lessons, "e7001", "authority", q)
        assert fb.correct and not fb.status.complete
    last = lessons.questions("authority")[-1]
    fb = answer_practice(lessons, "e7001", "authority", last, right=False)
    assert fb.status.score == Fraction(4, 5) and fb.status.complete  # 4/5 reaches the pass fraction
    fb = answer_practice(lessons, "e7001", "authority", qs[0], right=False)
    assert fb.status.score == Fraction(3, 5) and fb.status.complete  # completion is never taken back
    other = "e7001b"
    inst.records.enroll(other, "李四")
    for q in lessons.questions("authority")[:3]:
        answer_practice(lessons, other, "authority", q)
    fb = answer_practice(lessons, other, "authority", lessons.questions("authority")[3], right=False)
    assert fb.status.score == Fraction(3, 5) and not fb.status.complete  # not every question answered
    fb = answer_practice(lessons, other, "authority", lessons.questions("authority")[4])
    assert fb.status.score == Fraction(4, 5) and fb.status.complete
    assert PASS_FRACTION == Fraction(4, 5)


def test_completion_and_best_score_are_kept(lessons, inst):
    """After completion, a worse answer lowers the current score but not the best, nor completion."""
    qs = lessons.questions("service_levels")
    for q in qs:
        answer_practice(lessons, "e7001", "service_levels", q)
    fb = lessons.answer("e7001", "service_levels", qs[0].id, wrong_response(qs[0]))
    s = lessons.status("e7001", "service_levels")
    assert fb.status.score == Fraction(len(qs) - 1, len(qs)) and s.best == 1 and s.complete


def test_feedback_gives_key_explanation_and_clause(lessons):
    """A wrong practice answer gets the key, the explanation and the clause at once."""
    q = next(q for q in lessons.questions("service_levels") if q.id == "pr-sla-makeup-sunday")
    fb = lessons.answer("e7001", "service_levels", q.id, "a", lang="en")
    assert not fb.correct and "9 October 2025 10:00" in fb.key
    assert fb.explanation and lessons.playbook.clause("business-calendar").title.en in fb.clauses


def test_practice_refuses_a_question_of_another_lesson(lessons):
    """A forged answer to a question outside the lesson is refused."""
    q = lessons.questions("authority")[0]
    with pytest.raises(InvalidResponse):
        lessons.answer("e7001", "service_levels", q.id, correct_response(q))


def test_progress_survives_a_new_service(lessons, inst, clock):
    """Progress lives in the database: a new service (a reloaded page) sees the same status."""
    q = lessons.questions("customers")[0]
    lessons.answer("e7001", "customers", q.id, correct_response(q))
    again = LessonService(inst, clock).status("e7001", "customers")
    assert again.opened and again.answered == 1


# ----------------------------------------------------------------------------------- exam gate


def test_exam_refuses_to_start_before_the_lessons(inst, clock):
    """With the lesson gate, start_or_resume refuses a learner whose lessons are not complete."""
    inst.records.enroll("e7003", "郑一", code="c")
    service = inst.exam_service(clock, lesson_gate=lesson_gate(inst))
    with pytest.raises(LessonsIncomplete) as err:
        service.start_or_resume("e7003")
    assert len(err.value.missing) == 10 and inst.records.attempts("e7003") == []
    complete_lessons(inst, "e7003")
    assert service.start_or_resume("e7003") > 0


def test_exam_app_shows_missing_lessons_and_no_start_button(inst, clock):
    """The instructions page names the missing lessons; a forged start click starts nothing."""
    from sopcoach.ui.exam_app import ExamApp
    inst.records.enroll("e7004", "王二", code="c")
    app = ExamApp(inst, lang="zh-CN", clock=clock, learner_id="e7004", start_timer=False,
                  lesson_gate=lesson_gate(inst))
    html = "".join(getattr(c, "value", "") for c in app.body.children)
    assert "请先完成全部课程" in html and 'data-view href="/learn/lessons/purpose"' in html
    assert app.start_button not in app.body.children
    app.on_start()
    assert inst.records.attempts("e7004") == []


# --------------------------------------------------------------------------------- session tokens


def test_secret_key_is_kept_private_and_stable(tmp_path):
    """The installation's secret is created once with mode 0600 and read back unchanged."""
    key = load_secret(tmp_path)
    assert len(key) == 32 and load_secret(tmp_path) == key
    assert oct(os.stat(tmp_path / "secret.key").st_mode & 0o777) == "0o600"
