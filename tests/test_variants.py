"""Question templates (issue 15.3): numbers drawn per attempt, keys from the playbook's own rules,
the draw stored with the attempt, item statistics pooling the variants, fresh practice variants."""
from __future__ import annotations

import random
from decimal import Decimal as D
from fractions import Fraction

import pytest
import yaml

from sopcoach.certification.exam import attempt_question, draw
from sopcoach.certification.itemstats import analyse, load_responses
from sopcoach.certification.scoring import key_text
from sopcoach.certification.variants import RULES, AmbiguousDraw, TemplateError, build, instantiate, variant_seed
from sopcoach.content.check import check_paths
from sopcoach.content.quizbank import Numeric, SingleChoice, load_bank
from sopcoach.errors import ContentError, InvalidResponse
from sopcoach.lessons.progress import LessonService
from support import ROOT, correct_response, widget_tree, wrong_response

#: Every test that uses the records database runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")

TEMPLATES = {"sales_process": ["sp-var-approval-chain", "sp-var-proposal-deadline"],
             "customer_management": ["cm-var-cadence-breach"], "product_knowledge": ["pk-var-quote-line"],
             "crm_use": ["cr-var-kpi-rate"]}


def _key(rule: str, playbook, **params):
    return RULES[rule].compute(playbook, params)


# -- the rules, against the shipped playbook ---------------------------------------------------------
@pytest.mark.parametrize("amount, pct, approver", [
    ("100000", "10", "sales_rep"),             # exactly at both of the rep's limits: no approval
    ("100000.01", "10", "sales_supervisor"),   # one cent over the amount limit
    ("100000", "11", "sales_supervisor"),      # over the discount limit only
    ("500000", "20", "sales_supervisor"),      # exactly at the supervisor's limits
    ("500000", "21", "sales_director"),
    ("500000.01", "5", "sales_director"),
])
def test_approval_chain_at_the_exact_limits(playbook, amount, pct, approver):
    """seed:2.3.1: limits are inclusive; either limit exceeded goes up the chain."""
    assert _key("approval_chain", playbook, amount=amount, discount_pct=pct).key == approver


def test_deadline_on_the_friday_before_national_day_counts_the_makeup_sunday(playbook):
    """Fri 26 Sep 2025 + 3 working days: the make-up Sunday 28 Sep counts, so Tue 30 Sep; ignoring
    the make-up day runs past the holiday to Thu 9 Oct; calendar days give Mon 29 Sep."""
    v = _key("sla_deadline", playbook, sla="first_proposal", request_at="2025-09-26T10:00").values
    assert v["due_working"].en == "Tue 30 Sep 2025, 10:00"
    assert v["due_working"].zh_CN == "2025年9月30日(周二)10:00"
    assert v["due_no_makeup"].en == "Thu 9 Oct 2025, 10:00"
    assert v["due_calendar"].en == "Mon 29 Sep 2025, 10:00"


def test_deadline_from_a_makeup_saturday_starts_that_day(playbook):
    """Sat 11 Oct 2025 is a make-up working day: the count starts at once (Wed 15 Oct 10:00); a
    calendar without make-up days would start on Monday's opening (Thu 16 Oct 09:00)."""
    v = _key("sla_deadline", playbook, sla="first_proposal", request_at="2025-10-11T10:00").values
    assert v["due_working"].en == "Wed 15 Oct 2025, 10:00"
    assert v["due_no_makeup"].en == "Thu 16 Oct 2025, 09:00"


def test_deadline_instance_has_four_distinct_options_and_the_working_time_key(playbook, bank):
    """Delivery (5 working days) from Tue 30 Sep 2025: each mistake gives its own date-time."""
    q = bank["sp-var-proposal-deadline"]
    inst = build(q, playbook, {"sla": "delivery", "request_at": "2025-09-30T10:00"})
    assert isinstance(inst, SingleChoice) and inst.variant is None and inst.id == q.id
    assert key_text(inst, "en") == "Tue 14 Oct 2025, 10:00"
    assert sorted(o.text.en for o in inst.options if not o.correct) == [
        "Sun 5 Oct 2025, 10:00", "Tue 7 Oct 2025, 10:00", "Wed 15 Oct 2025, 10:00"]
    assert "5 working days" in inst.text.en and "2025年9月30日(周二)10:00" in inst.scenario.zh_CN


def test_a_draw_with_two_equal_options_is_ambiguous_and_drawn_again(playbook, bank):
    """From the make-up Saturday, ignoring holidays changes nothing: two options would read alike."""
    q = bank["sp-var-proposal-deadline"]
    with pytest.raises(AmbiguousDraw):
        build(q, playbook, {"sla": "first_proposal", "request_at": "2025-10-11T10:00"})
    for seed in range(20):  # instantiate never hands out such a draw
        inst, _ = instantiate(q, playbook, random.Random(seed))
        texts = [o.text.en for o in inst.options]
        assert len(set(texts)) == 4 and sum(o.correct for o in inst.options) == 1


def test_cadence_counts_breaches_per_iso_week(playbook, bank):
    """A class A log (at least 3 a week, seed:3.1.2) with one short ISO week: the key is 1. Six
    follow-ups in the first week do not make up for the second."""
    log = {"monday": "2026-03-02", "weeks": 3,
           "dates": ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07",
                     "2026-03-09", "2026-03-13",                       # week 11: only 2
                     "2026-03-16", "2026-03-18", "2026-03-20"]}
    assert _key("cadence_breach", playbook, tier="A", log=log).key == 1
    assert _key("cadence_breach", playbook, tier="B", log=log).key == 0
    inst = build(bank["cm-var-cadence-breach"], playbook, {"tier": "A", "log": log})
    assert isinstance(inst, Numeric) and inst.answer == 1
    assert "3月9日(周一)、3月13日(周五)" in inst.scenario.zh_CN and "class A" in inst.scenario.en


def test_quote_line_and_kpi_rate(playbook, bank):
    """A quote line from the catalogue; a KPI by the kpis.yaml formula, percent to one decimal."""
    assert _key("quote_total", playbook, product="crm-enterprise", quantity="40", discount_pct="5").key == D("91200")
    counts = {"leads_assigned": 200, "needs_confirmed": 60, "quotes_sent": 40, "quotes_accepted": 12,
              "contracts_signed": 10, "deals_lost": 20}
    out = _key("kpi_rate", playbook, kpi="win_rate", counts=counts)
    assert (out.key, out.tolerance) == (D("33.3"), D("0.1"))
    assert _key("kpi_rate", playbook, kpi="quote_acceptance_rate", counts=counts).key == D("30.0")
    inst = build(bank["pk-var-quote-line"], playbook, {"product": "crm-enterprise", "quantity": "40", "discount_pct": "5"})
    assert inst.answer == D("91200") and "2,400元" in inst.explanation.zh_CN


# -- the shipped banks ----------------------------------------------------------------------------
def test_every_section_with_a_computable_rule_has_a_template(bank):
    """One template at least per exam section with a computable rule; tools_confidentiality has none."""
    for section, ids in TEMPLATES.items():
        assert [q.id for q in bank.in_section(section) if q.variant is not None] == ids
    assert not [q for q in bank.in_section("tools_confidentiality") if q.variant is not None]


def test_templates_have_no_key_of_their_own(bank):
    """A template's key is only its instances': the bank object says so instead of showing one."""
    q = bank["pk-var-quote-line"]
    assert q.answer is None and key_text(q, "en") == "computed for each drawn variant"


# -- the exam: seeded draw, stored params, the same instance everywhere -----------------------------
def test_scenarios_are_set_in_the_calendars_last_two_years(playbook, bank):
    """The calendar reaches back to 2016 for old CRM exports; a drawn request time or follow-up log is still
    set in its last two years (2025-2026), never in 2016."""
    first, last = playbook.business_calendar().covered_years
    assert first <= 2016 and last == 2026
    years = set()
    for q in bank.active():
        if q.variant is None or q.variant.rule not in ("sla_deadline", "cadence_breach"):
            continue
        for seed in range(40):
            _, params = instantiate(q, playbook, random.Random(seed))
            for value in params.values():
                texts = value["dates"] + [value["monday"]] if isinstance(value, dict) and "dates" in value else [value]
                years.update(int(v[:4]) for v in texts if isinstance(v, str) and v[:4].isdigit() and v[4:5] == "-")
    assert years and years <= {last - 1, last}


def test_the_draw_is_seeded_per_attempt_and_question(bank, blueprint):
    """The same seed gives the same params; the params come from the seed and the question id."""
    d = draw(bank, blueprint, 5)
    assert d.variants and set(d.variants) == {q for q in d.question_ids if bank[q].variant is not None}
    assert draw(bank, blueprint, 5).variants == d.variants
    for qid, params in d.variants.items():
        assert instantiate(bank[qid], bank.playbook, random.Random(variant_seed(5, qid)))[1] == params
    drawn = [draw(bank, blueprint, s).variants.get("pk-var-quote-line") for s in range(40)]
    assert len({str(p) for p in drawn if p is not None}) > 3  # the numbers do vary between attempts


def _seed_with_templates(bank, blueprint, n: int = 3) -> int:
    return next(s for s in range(500) if len(draw(bank, blueprint, s).variants) >= n)


def test_params_are_stored_and_every_view_uses_them(inst, clock, bank, blueprint):
    """The attempt stores the params; a reload (new service) shows the same numbers; answers are
    checked, scored and reviewed on that instance; the learner's view holds no key."""
    inst.records.enroll("e9001", "赵六")
    seed = _seed_with_templates(bank, blueprint)
    first = inst.exam_service(clock)
    aid = first.start_or_resume("e9001", seed=seed)
    row = inst.records.attempt(aid)
    assert row.variants == draw(bank, blueprint, seed).variants
    templates = list(row.variants)
    views = {}
    for i, qid in enumerate(row.question_ids):
        if qid in templates:
            qv = first.question(aid, i, "en")
            asked = attempt_question(bank, row, qid)
            assert qv.text == asked.text.en and "{{" not in (qv.scenario or "") + qv.text
            assert not hasattr(qv, "answer") and "correct" not in repr(qv).lower()
            views[qid] = qv
    second = inst.exam_service(clock)  # a reloaded page
    for i, qid in enumerate(row.question_ids):
        if qid in views:
            assert second.question(aid, i, "en") == views[qid]
    # right on every question of the attempt, each on the variant it asked
    for qid in row.question_ids:
        second.answer(aid, qid, correct_response(second.attempt_question(aid, qid)))
    clock.advance(minutes=20)
    report = second.submit(aid)
    assert report.passed and report.score == 1
    assert inst.exam_service(clock).submit(aid) == report  # a second submit: the same result
    after = inst.records.attempt(aid)
    assert after.variants == row.variants
    for qid in templates:
        assert key_text(second.attempt_question(aid, qid)) == key_text(attempt_question(bank, row, qid))


def test_a_template_answered_from_another_variant_is_wrong(inst, clock, bank, blueprint):
    """The key of the stored variant counts: an answer right for other numbers scores 0."""
    inst.records.enroll("e9002", "钱七")
    service = inst.exam_service(clock)
    seed = next(s for s in range(500) if "pk-var-quote-line" in draw(bank, blueprint, s).variants)
    aid = service.start_or_resume("e9002", seed=seed)
    row = inst.records.attempt(aid)
    params = row.variants["pk-var-quote-line"]
    other = dict(params, quantity=str(int(params["quantity"]) + 1))
    for qid in row.question_ids:
        q = build(bank[qid], bank.playbook, other) if qid == "pk-var-quote-line" else service.attempt_question(aid, qid)
        service.answer(aid, qid, correct_response(q))
    clock.advance(minutes=20)
    report = service.submit(aid)
    missed = [r.question_id for r in report.results if r.earned != r.points]
    assert missed == ["pk-var-quote-line"]


def test_item_statistics_pool_the_variants_of_a_template(inst, clock, bank, blueprint):
    """Attempts drawing different numbers of one template count as responses to one item, and the
    item says how many variants it pools."""
    service = inst.exam_service(clock)
    seeds = [s for s in range(400) if "sp-var-approval-chain" in draw(bank, blueprint, s).variants][:4]
    params = set()
    for i, seed in enumerate(seeds):
        learner = f"p{i}"
        inst.records.enroll(learner, learner)
        aid = service.start_or_resume(learner, seed=seed)
        params.add(str(inst.records.attempt(aid).variants["sp-var-approval-chain"]))
        for j, qid in enumerate(inst.records.attempt(aid).question_ids):
            q = service.attempt_question(aid, qid)
            service.answer(aid, qid, correct_response(q) if (j + i) % 3 else wrong_response(q))
        clock.advance(minutes=20)
        service.submit(aid)
    assert len(seeds) == 4 and len(params) >= 2
    resp = load_responses(inst.records, blueprint.id, 0.9)
    items = analyse(resp, bank).items
    assert items.loc["sp-var-approval-chain", "n"] == 4
    assert items.loc["sp-var-approval-chain", "variants"] == len(params)
    fixed = next(q for q in items.index if bank[q].variant is None)
    assert items.loc[fixed, "variants"] == 0


def test_no_widget_state_holds_a_template_key_before_submission(inst, clock, bank, blueprint):
    """The exam page of a template question syncs its option texts, never its option ids or key."""
    from sopcoach.ui.exam_app import ExamApp
    inst.records.enroll("e9003", "孙八")
    seed = next(s for s in range(500) if "sp-var-proposal-deadline" in draw(bank, blueprint, s).variants)
    inst.exam_service(clock).start_or_resume("e9003", seed=seed)
    app = ExamApp(inst, lang="en", clock=clock, start_timer=False, learner_id="e9003")
    app.start_button.click()
    row = inst.records.attempt(app.attempt_id)
    app.go_to(row.question_ids.index("sp-var-proposal-deadline"))
    blob = "\n".join(str(m.get_state()) for m in widget_tree(app.root))
    asked = attempt_question(bank, row, "sp-var-proposal-deadline")
    assert all(o.text.en in blob for o in asked.options)
    assert not any(f"'{o.id}'" in blob for o in asked.options)  # the ids (the key is 'working') stay in the kernel
    assert "no_makeup" not in blob and "weekends_only" not in blob and "correct" not in blob.lower()


# -- practice: fresh variants ---------------------------------------------------------------------
def test_practice_shows_fresh_variants_and_scores_the_one_answered(inst, clock):
    """Each draw has new numbers; the answer is scored on the variant shown and stored with its
    params, so the feedback (and its key) is that variant's."""
    inst.records.enroll("e9004", "周九")
    lessons = LessonService(inst, clock)
    q = next(q for q in lessons.questions("products") if q.variant is not None)
    draws = [lessons.variant(q.id) for _ in range(8)]
    assert len({str(p) for _, p in draws}) >= 5
    shown, params = draws[0]
    with pytest.raises(InvalidResponse):  # a template answered without the variant shown
        lessons.answer("e9004", "products", q.id, correct_response(shown))
    fb = lessons.answer("e9004", "products", q.id, correct_response(shown), "en", params=params)
    assert fb.correct and fb.key == key_text(shown, "en")
    stored = inst.records.lesson_progress("e9004")["products"].practice["answers"][q.id]
    assert stored["params"] == params
    assert lessons.feedback(q.id, stored, "en").key == fb.key
    other = next(s for s, p in draws if key_text(s) != key_text(shown))
    fb = lessons.answer("e9004", "products", q.id, correct_response(other), "en", params=params)
    assert not fb.correct and fb.credit == Fraction(0)


def test_practice_page_new_numbers_button_draws_a_fresh_variant(inst, clock):
    """The lesson page shows a template with numbers; "New numbers" replaces them and clears the answer."""
    from sopcoach.ui.lesson_app import LessonApp
    inst.records.enroll("e9005", "吴十")
    app = LessonApp(inst, "service_levels", lang="en", clock=clock, learner_id="e9005")
    item = app.items["pr-sla-var-deadline"]
    seen = {item.head.value}
    first = item.params
    item.control.value = next(o.id for o in item.q.options if o.correct)
    item.check.click()
    assert "Correct" in item.feedback.value
    answered = inst.records.lesson_progress("e9005")["service_levels"].practice["answers"]["pr-sla-var-deadline"]
    assert answered["params"] == first and answered["credit"] == "1"
    for _ in range(5):
        item.fresh.click()
        seen.add(item.head.value)
    assert len(seen) >= 3 and item.feedback.value == "" and item.control.value is None
    assert [label for label, _ in item.control.options] == [
        next(o.text.en for o in item.q.options if o.id == oid) for _, oid in item.control.options]
    again = LessonApp(inst, "service_levels", lang="en", clock=clock, learner_id="e9005")
    assert again.items["pr-sla-var-deadline"].params == first  # a reload shows the variant answered
    assert "Correct" in again.items["pr-sla-var-deadline"].feedback.value


# -- load and check --------------------------------------------------------------------------------
def _template(**changes):
    q = {"id": "x-var", "type": "numeric", "section": "s", "clauses": ["product-catalogue"],
         "variant": {"rule": "quote_total", "params": {
             "product": {"choices": ["crm-standard"]}, "quantity": {"min": 1, "max": 3},
             "discount_pct": {"choices": [0]}}},
         "text": {"zh-CN": "{{product_name}} × {{quantity}} 多少元?", "en": "{{product_name}} × {{quantity}}: CNY?"}}
    q.update(changes)
    return q


def _load(tmp_path, playbook, q):
    f = tmp_path / "bank.yaml"
    f.write_text(yaml.safe_dump({"questions": [q]}, allow_unicode=True), encoding="utf-8")
    return load_bank(f, playbook)


def test_a_good_template_loads(tmp_path, playbook):
    bank = _load(tmp_path, playbook, _template())
    inst, params = instantiate(bank["x-var"], playbook, random.Random(0))
    assert inst.answer == 1200 * int(params["quantity"]) and "云CRM标准版" in inst.text.zh_CN


@pytest.mark.parametrize("change, field, message", [
    ({"variant": {"rule": "nope", "params": {"a": {"choices": [1]}}}}, "variant.rule", "unknown rule 'nope'"),
    ({"variant": {"rule": "quote_total", "params": {"product": {"choices": ["crm-standard"]}}}},
     "variant.params", "needs param 'quantity'"),
    ({"variant": {"rule": "quote_total", "params": {"product": {"choices": ["gold"]}, "quantity": {"min": 1, "max": 2},
                                                    "discount_pct": {"choices": [0]}}}},
     "variant.params.product.choices", "unknown product gold"),
    ({"variant": {"rule": "quote_total", "params": {"product": {"min": 1, "max": 2}, "quantity": {"min": 1, "max": 2},
                                                    "discount_pct": {"choices": [0]}}}},
     "variant.params.product", "param 'product' must be choices (got range)"),
    ({"type": "single_choice", "options": [{"id": "a", "text": {"zh-CN": "甲", "en": "A"}},
                                           {"id": "b", "text": {"zh-CN": "乙", "en": "B"}}]},
     "type", "rule quote_total keys numeric questions"),
    ({"text": {"zh-CN": "{{nothing}}", "en": "x"}}, "", "unknown playbook fact 'nothing'"),
    ({"answer": 5}, "", "a template's key follows from its rule"),
])
def test_a_bad_template_is_refused_naming_file_question_field_and_fix(tmp_path, playbook, change, field, message):
    with pytest.raises(ContentError) as refused:
        _load(tmp_path, playbook, _template(**change))
    p = next(p for p in refused.value.problems if message in p.message)
    assert p.path.endswith("bank.yaml") and p.line > 0 and field in p.field


def test_check_reports_a_template_whose_draws_have_no_key(tmp_path, playbook):
    """An approval template whose options lack the director: the draws that need the director have
    no key option; `sopcoach check` names the template and a seed."""
    q = {"id": "y-var", "type": "single_choice", "section": "s", "clauses": ["quote-limits"],
         "variant": {"rule": "approval_chain", "params": {
             "amount": {"min": 100000, "max": 100000}, "discount_pct": {"choices": [5, 25]}}},
         "text": {"zh-CN": "{{amount}}, {{discount_pct}}?", "en": "{{amount}}, {{discount_pct}}?"},
         "options": [{"id": "sales_rep", "text": {"zh-CN": "代表", "en": "rep"}},
                     {"id": "sales_supervisor", "text": {"zh-CN": "主管", "en": "supervisor"}}]}
    f = tmp_path / "bank.yaml"
    f.write_text(yaml.safe_dump({"questions": [q]}, allow_unicode=True), encoding="utf-8")
    try:  # the load-time draw may already meet the bad case
        bank = load_bank(f, playbook)
    except ContentError as exc:
        assert "which no option has" in str(exc)
        return
    with pytest.raises(TemplateError, match="which no option has"):
        build(bank["y-var"], playbook, {"amount": "100000", "discount_pct": "25"})
    problems = check_paths([f], ROOT)
    assert any(p.severity == "error" and "template 'y-var'" in p.message and "seed" in p.message for p in problems)


def test_shipped_content_checks_clean():
    """`sopcoach check` on the shipped content: every template gives a usable key on every seed."""
    assert [p for p in check_paths([], ROOT) if p.severity == "error"] == []
