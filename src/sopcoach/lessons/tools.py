"""Lesson tools: what a rep uses at work, as pure functions over the playbook.

Every lesson of ``playbook/lessons.yaml`` (:class:`~sopcoach.content.playbook.LessonSpec`) teaches clauses
of the playbook with one interactive tool. The tools below compute; the widgets of
:mod:`sopcoach.ui.lesson_app` only display their results and forward the learner's inputs.

================== ========================================= =====================================
tool               function                                  clauses (seed)
================== ========================================= =====================================
goals              :func:`objectives`                        seed:1
process            :func:`stage_map`                         seed:1.1.2, 2.1.1, 2.2.1
approval           :func:`approval`                          seed:1.1.1, 2.3.1 (+ quote-limits)
sla                :func:`deadline`                          seed:1.2.1, 1.2.2, 2.2.2
tiers              :func:`classify_tier`,                    seed:3.1.1, 3.1.2
                   :func:`check_follow_up_plan`
confidentiality    :func:`judge_use`                         seed:3.1.3
templates          :func:`templates_for_stage`               seed:1.1.1, 3.2.1, 3.2.2
crm_kpis           :func:`funnel`                            seed:1.3.2, 2.3.2
improvement        :func:`trend`                             seed:3.3, 4.2.2
catalogue          :func:`quote_line`                        seed:3.3.1 (product knowledge), 2.3.1
================== ========================================= =====================================
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from collections.abc import Sequence

from ..config import PROJECT_ROOT
from ..content.businesstime import BusinessCalendar, Duration
from ..content.playbook import load_playbook
from ..content.quizbank import FACT
from ..errors import ToolInputError
from ..i18n import current_lang

# ------------------------------------------------------------------------------------ lesson text


def fact_text(playbook: Any, name: str, lang: str | None = None) -> str:
    """Return a playbook fact (:meth:`Playbook.facts`) as learner text in ``lang``.

    Stage and role facts become names, amounts get thousands separators, durations their unit.

    Examples
    --------
    >>> pb = _shipped_playbook()
    >>> fact_text(pb, "stage.1"), fact_text(pb, "authority.sales_rep.max_quote_amount", "en")
    ('客户接触', '100,000')
    >>> fact_text(pb, "sla.first_proposal", "en"), fact_text(pb, "authority.sales_rep.approver", "en")
    ('3 working days', 'Sales supervisor')
    """
    value = playbook.facts()[name]
    lang = lang or current_lang()
    if isinstance(value, Duration):
        return value.label(lang)
    if name.startswith("stage.") and name.count(".") == 1:
        return next(s.name.get(lang) for s in playbook.stages if s.id == value)
    if name.endswith((".responsible_role", ".approver")) or name.startswith("role."):
        return next((r.name.get(lang) for r in playbook.roles if r.id == value), str(value))
    if isinstance(value, Decimal):
        v = value.normalize()
        return f"{v:,f}" if v == v.to_integral_value() else f"{v:f}"
    return str(value)


def render_text(playbook: Any, text: Any, lang: str | None = None) -> str:
    """Return a bilingual text in ``lang`` with its ``{{fact}}`` placeholders filled.

    Raises
    ------
    KeyError
        When a placeholder names no playbook fact.
    """
    return FACT.sub(lambda m: fact_text(playbook, m.group(1), lang), text.get(lang))


# ------------------------------------------------------------------------------- goals (lesson 1)


def covers(seed: str, source: str) -> bool:
    """Tell whether the SOP section ``seed`` contains the clause source ``source``.

    >>> covers("seed:1.1", "seed:1.1.2"), covers("seed:1.1", "seed:1.10"), covers("seed:1", "seed:1")
    (True, False, True)
    """
    return source == seed or source.startswith(seed + ".")


@dataclass(frozen=True)
class Objective:
    """A goal of the SOP, the clauses under it and the lessons that teach them (seed:1)."""

    goal: Any
    clauses: tuple[Any, ...]
    lessons: tuple[Any, ...]


def objectives(playbook: Any, lesson: Any) -> list[Objective]:
    """Return each goal of ``lesson.goals`` with its active clauses and the lessons covering them.

    A lesson covers a clause when one of its ``seeds`` contains the clause's source; the lesson
    that declares the goals is left out of its own list.

    Examples
    --------
    >>> pb = _shipped_playbook()
    >>> first = next(x for x in pb.lessons if x.id == "purpose")
    >>> [(o.goal.seed, len(o.clauses), [x.number for x in o.lessons]) for o in objectives(pb, first)]
    [('seed:1.1', 2, [2, 3, 7]), ('seed:1.2', 2, [4]), ('seed:1.3', 2, [8])]
    """
    out = []
    for goal in lesson.goals:
        clauses = tuple(c for c in playbook.clauses if not c.retired and covers(goal.seed, c.source))
        teach = tuple(sorted((x for x in playbook.lessons if x.id != lesson.id and any(
            covers(s, c.source) or covers(c.source, s) for s in x.seeds for c in clauses)),
            key=lambda x: x.number))
        out.append(Objective(goal, clauses, teach))
    return out


# ----------------------------------------------------------------------------- process (lesson 2)


@dataclass(frozen=True)
class StageBox:
    """One stage of the diagram: its 1-based position, the stage and whether ``role`` runs it."""

    position: int
    stage: Any
    highlighted: bool


def stage_map(playbook: Any, role_id: str | None = None) -> list[StageBox]:
    """Return the stages in process order, highlighting those ``role_id`` is responsible for.

    seed:1.1.2 (who does what), seed:2.1.1 (the stages). ``role_id=None`` highlights nothing.

    Examples
    --------
    >>> pb = _shipped_playbook()
    >>> [(b.position, b.stage.id) for b in stage_map(pb, "finance") if b.highlighted]
    [(6, 'payment_collection')]
    """
    if role_id is not None and role_id not in {r.id for r in playbook.roles}:
        raise ToolInputError(f"unknown role {role_id!r}")
    return [StageBox(i, s, s.responsible_role == role_id) for i, s in enumerate(playbook.stages, 1)]


# ---------------------------------------------------------------------------- approval (lesson 3)


@dataclass(frozen=True)
class ApprovalStep:
    """One role's limits checked against the quote (amount in the SOP currency, discount 0-1)."""

    role: str
    max_quote_amount: Decimal | None
    max_discount: Decimal | None
    amount_ok: bool
    discount_ok: bool

    @property
    def covers(self) -> bool:
        return self.amount_ok and self.discount_ok


@dataclass(frozen=True)
class Approval:
    """Who must approve a quote and why (seed:2.3.1, clause ``quote-limits``).

    ``steps[0]`` is the preparing role; ``approver`` is the role whose limits cover the quote
    (``None`` when the preparer may send it alone). ``clause`` is the clause that sets the limits.
    """

    role: str
    amount: Decimal
    discount: Decimal
    tier: str | None
    steps: tuple[ApprovalStep, ...]
    clause: Any

    @property
    def needs_approval(self) -> bool:
        return len(self.steps) > 1

    @property
    def approver(self) -> str | None:
        return self.steps[-1].role if self.needs_approval else None

    @property
    def chain(self) -> list[str]:
        return [s.role for s in self.steps]


def approval(playbook: Any, role: str, amount: Decimal | int | str, discount: Decimal | int | str,
             tier: str | None = None) -> Approval:
    """Return the approval a quote needs under the playbook's authority limits.

    A quote above EITHER the role's amount limit or its discount limit goes to the role's
    approver, and on up the chain until a role's limits cover it (seed:2.3.1; the amounts are the
    company setting ``quote-limits``). Limits are inclusive: a quote exactly at the limit needs no
    approval.

    Parameters
    ----------
    playbook : Playbook
    role : str
        The role preparing the quote (a role with an authority limit, e.g. ``"sales_rep"``).
    amount : Decimal
        Quote total in the SOP currency (CNY), >= 0.
    discount : Decimal
        Discount off list price as a fraction 0-1 (``Decimal("0.12")`` is 12%).
    tier : str, optional
        The customer's class (A/B/C). The shipped limits are the same for every class; it is kept
        in the result so the page can say so.

    Returns
    -------
    Approval

    Raises
    ------
    ToolInputError
        On an unknown role or tier, a negative amount, a discount outside [0, 1], or when no role
        in the chain may approve.

    Examples
    --------
    >>> from decimal import Decimal as D
    >>> pb = _shipped_playbook()
    >>> approval(pb, "sales_rep", D("100000"), D("0.10")).chain
    ['sales_rep']
    >>> approval(pb, "sales_rep", D("100000.01"), D("0.10")).approver
    'sales_supervisor'
    >>> approval(pb, "sales_rep", D("80000"), D("0.25")).chain
    ['sales_rep', 'sales_supervisor', 'sales_director']
    """
    try:
        amount, discount = Decimal(str(amount)), Decimal(str(discount))
    except ArithmeticError:
        raise ToolInputError(f"amount and discount must be numbers (got {amount!r}, {discount!r})") from None
    if not amount.is_finite() or amount < 0:
        raise ToolInputError(f"the quote amount must be 0 or more (got {amount})")
    if not discount.is_finite() or not 0 <= discount <= 1:
        raise ToolInputError(f"the discount is a fraction 0-1 (got {discount}); write 0.12 for 12%")
    if tier is not None and tier not in {x.id for x in playbook.tiers}:
        raise ToolInputError(f"unknown customer class {tier!r}")
    limits = {a.role: a for a in playbook.authority}
    if role not in limits:
        raise ToolInputError(f"role {role!r} has no quote authority in the playbook")
    try:
        chain = playbook.approval_chain(role, amount, discount)
    except ValueError as exc:
        raise ToolInputError(str(exc)) from None
    steps = tuple(ApprovalStep(a.role, a.max_quote_amount, a.max_discount,
                               a.max_quote_amount is None or amount <= a.max_quote_amount,
                               a.max_discount is None or discount <= a.max_discount) for a in chain)
    return Approval(role, amount, discount, tier, steps, playbook.clause(chain[0].clause))


# --------------------------------------------------------------------------------- SLA (lesson 4)


@dataclass(frozen=True)
class DayMark:
    """A local date between the start and the due time, and what kind of day it is.

    ``kind``: ``working`` (ordinary working day), ``makeup`` (an official make-up working day on a
    weekend), ``holiday`` (a public holiday on a weekday) or ``weekend``.
    """

    day: date
    kind: str


@dataclass(frozen=True)
class Deadline:
    """The due time of a limit started at ``start`` (both aware, in the calendar's zone)."""

    start: datetime
    duration: Duration
    due: datetime
    days: tuple[DayMark, ...]


def day_kind(calendar: BusinessCalendar, d: date) -> str:
    """Return ``working``, ``makeup``, ``holiday`` or ``weekend`` for a local date.

    Examples
    --------
    >>> cal = BusinessCalendar.china()
    >>> [day_kind(cal, date(2025, 9, n)) for n in (27, 28, 29)], day_kind(cal, date(2025, 10, 1))
    (['weekend', 'makeup', 'working'], 'holiday')
    """
    working = calendar.is_working_day(d)
    weekend = d.weekday() in calendar.weekend
    if working:
        return "makeup" if weekend else "working"
    return "weekend" if weekend and d not in calendar.holidays else "holiday"


def deadline(calendar: BusinessCalendar, start: datetime, duration: Duration) -> Deadline:
    """Return when a limit of ``duration`` started at ``start`` falls due, with the days it spans.

    The unit rules are those of :meth:`BusinessCalendar.add` (seed:1.2.1, 1.2.2, 2.2.2):
    working days skip weekends and public holidays and count official make-up working days;
    business hours run only 09:00-18:00 (the playbook's hours) on working days; elapsed hours and
    calendar days run through nights, weekends and holidays.

    Parameters
    ----------
    calendar : BusinessCalendar
        From :meth:`Playbook.business_calendar`.
    start : datetime
        Local wall time without a zone (as typed in the page), or an aware instant.
    duration : Duration

    Returns
    -------
    Deadline
        ``days`` lists every local date from the start's to the due time's, each with its kind.

    Raises
    ------
    NonexistentLocalTime
        When a typed local time does not exist (a DST gap).
    CalendarRangeError
        When the calendar does not know the holidays of a year the limit reaches.

    Examples
    --------
    A request on the make-up working Sunday before the 2025 National Day holiday:

    >>> cal = BusinessCalendar.china()
    >>> d = deadline(cal, datetime(2025, 9, 28, 10, 0), Duration(3, "working_days"))
    >>> d.due.isoformat()
    '2025-10-09T10:00:00+08:00'
    >>> [m.kind for m in d.days][:4], len(d.days)
    (['makeup', 'working', 'working', 'holiday'], 12)
    """
    local = calendar.check_local(start)
    due = calendar.add(local, duration)
    days: list[DayMark] = []
    d = local.date()
    while d <= due.date():
        days.append(DayMark(d, day_kind(calendar, d)))
        d += timedelta(days=1)
    return Deadline(local, duration, due, tuple(days))


# ------------------------------------------------------------------------------ tiers (lesson 5)


@dataclass(frozen=True)
class TierDecision:
    """The class a customer falls in, and the facts that decided it (seed:3.1.1)."""

    tier: Any
    by_revenue: bool
    by_employees: bool
    held_back: Any = None  # the higher tier the size reached but industry/needs did not


def _size_ok(tier: Any, revenue: Decimal, employees: int) -> tuple[bool, bool]:
    no_threshold = tier.min_annual_revenue is None and tier.min_employees is None
    by_rev = tier.min_annual_revenue is not None and revenue >= tier.min_annual_revenue
    by_emp = tier.min_employees is not None and employees >= tier.min_employees
    return by_rev or no_threshold, by_emp or no_threshold


def classify_tier(playbook: Any, annual_revenue: Decimal | int | str, employees: int,
                  key_account: bool) -> TierDecision:
    """Return the customer class: the first tier (in playbook order) whose size threshold is met.

    Size qualifies by annual revenue OR by employees (the tier's ``min_annual_revenue`` and
    ``min_employees``, clause ``tier-thresholds``). The first (highest) tier also needs a key
    industry or multi-module, company-wide needs (``key_account``), as that clause says; without it
    the customer falls to the next tier whose size is met (seed:3.1.1).

    Parameters
    ----------
    annual_revenue : Decimal
        Annual revenue in the SOP currency (CNY), >= 0.
    employees : int
        Number of employees, >= 0.
    key_account : bool
        A key industry (or group company) or multi-module, company-wide needs.

    Raises
    ------
    ToolInputError
        On a negative or non-numeric size, or when no tier fits.

    Examples
    --------
    >>> pb = _shipped_playbook()
    >>> classify_tier(pb, 50_000_000, 10, True).tier.id, classify_tier(pb, 50_000_000, 10, False).tier.id
    ('A', 'B')
    >>> classify_tier(pb, 9_999_999, 99, True).tier.id, classify_tier(pb, 0, 100, False).tier.id
    ('C', 'B')
    """
    try:
        revenue = Decimal(str(annual_revenue))
        employees = int(employees)
    except (ArithmeticError, ValueError, TypeError):
        raise ToolInputError("revenue and employees must be numbers") from None
    if not revenue.is_finite() or revenue < 0 or employees < 0:
        raise ToolInputError("revenue and employees must be 0 or more")
    held_back = None
    for i, tier in enumerate(playbook.tiers):
        by_rev, by_emp = _size_ok(tier, revenue, employees)
        if not (by_rev or by_emp):
            continue
        if i == 0 and len(playbook.tiers) > 1 and not key_account:
            held_back = tier
            continue
        return TierDecision(tier, by_rev, by_emp, held_back)
    raise ToolInputError("no customer class fits; check the tier thresholds in customers.yaml")


@dataclass(frozen=True)
class PlanCheck:
    """A weekly follow-up plan checked against a tier's minimum (seed:3.1.2)."""

    tier: Any
    per_day: tuple[int, ...]
    total: int
    minimum: int

    @property
    def ok(self) -> bool:
        return self.total >= self.minimum

    @property
    def shortfall(self) -> int:
        return max(0, self.minimum - self.total)


def check_follow_up_plan(playbook: Any, tier_id: str, per_day: Sequence[int]) -> PlanCheck:
    """Check a plan of follow-ups per day (Monday-Sunday) against the tier's weekly minimum.

    Weeks are counted Monday to Sunday (clause ``follow-up-cadence-b-c``); the minimum is the
    tier's ``min_weekly_follow_ups`` (class A: 3 per week, seed:3.1.2).

    Raises
    ------
    ToolInputError
        On an unknown tier, a plan that is not 7 days long or a negative count.

    Examples
    --------
    >>> pb = _shipped_playbook()
    >>> c = check_follow_up_plan(pb, "A", [1, 0, 1, 0, 0, 0, 0])
    >>> c.ok, c.total, c.minimum, c.shortfall
    (False, 2, 3, 1)
    """
    tiers = {x.id: x for x in playbook.tiers}
    if tier_id not in tiers:
        raise ToolInputError(f"unknown customer class {tier_id!r}")
    days = tuple(int(x) for x in per_day)
    if len(days) != 7 or any(x < 0 for x in days):
        raise ToolInputError("a weekly plan has 7 day counts (Monday to Sunday), each 0 or more")
    tier = tiers[tier_id]
    return PlanCheck(tier, days, sum(days), tier.min_weekly_follow_ups)


# -------------------------------------------------------------------- confidentiality (lesson 6)


def judge_use(playbook: Any, rule_id: str, said_allowed: bool) -> tuple[bool, Any]:
    """Return (whether the learner judged the use of customer data right, the rule) (seed:3.1.3).

    Examples
    --------
    >>> judge_use(_shipped_playbook(), "personal-channels", False)[0]
    True
    """
    rules = {r.id: r for r in playbook.confidentiality}
    if rule_id not in rules:
        raise ToolInputError(f"unknown confidentiality rule {rule_id!r}")
    rule = rules[rule_id]
    return bool(said_allowed) == rule.allowed, rule


# -------------------------------------------------------------------------- templates (lesson 7)


def templates_for_stage(playbook: Any, stage_id: str | None) -> list[Any]:
    """Return the templates used at ``stage_id`` (``None``: those used at several stages).

    Examples
    --------
    >>> [x.id for x in templates_for_stage(_shipped_playbook(), "first_contact")]
    ['welcome_message']
    """
    return [x for x in playbook.templates if x.used_at_stage == stage_id]


# --------------------------------------------------------------------------- CRM / KPIs (lesson 8)

#: The example funnel's counts, in order, and which KPI each conversion between two counts is.
FUNNEL_COUNTS = ("leads_assigned", "needs_confirmed", "quotes_sent", "quotes_accepted", "contracts_signed")
FUNNEL_KPIS = {("leads_assigned", "needs_confirmed"): "lead_conversion_rate",
               ("quotes_sent", "quotes_accepted"): "quote_acceptance_rate",
               ("quotes_accepted", "contracts_signed"): "contract_signing_rate"}


@dataclass(frozen=True)
class FunnelStep:
    """The conversion from one funnel count to the next (``rate`` None when ``base`` is 0)."""

    source: str
    target: str
    base: int
    reached: int
    kpi: Any = None

    @property
    def rate(self) -> Fraction | None:
        return Fraction(self.reached, self.base) if self.base else None

    @property
    def below_target(self) -> bool:
        goal = getattr(self.kpi, "target", None)
        return self.rate is not None and goal is not None and self.kpi.unit == "fraction" and self.rate < Fraction(goal)


@dataclass(frozen=True)
class Funnel:
    """An example month's funnel with its conversion rates and KPIs (seed:1.3.2, 2.3.2)."""

    steps: tuple[FunnelStep, ...]
    win_rate: Fraction | None
    weakest: FunnelStep | None = field(default=None)


def funnel(playbook: Any, counts: dict[str, int], deals_lost: int = 0) -> Funnel:
    """Compute the funnel's conversion rates from one period's counts.

    Rates follow the KPI formulas of ``kpis.yaml`` (clause ``kpi-formulas``): lead conversion =
    needs confirmed / leads assigned, quote acceptance = quotes accepted / quotes sent, contract
    signing = contracts signed / quotes accepted, win rate = contracts signed / (signed + lost).
    The *weakest* step (seed:1.3.2: "a stage whose conversion is markedly lower") is the KPI step
    furthest below its target (smallest rate / target); ``None`` when every KPI meets its target.

    Parameters
    ----------
    counts : dict
        Non-negative integers for each of :data:`FUNNEL_COUNTS`; each count is at most the one
        before it (a funnel only narrows).
    deals_lost : int
        Deals lost in the period (for the win rate).

    Raises
    ------
    ToolInputError
        On a missing or negative count, or a count above the one before it.

    Examples
    --------
    >>> f = funnel(_shipped_playbook(), {"leads_assigned": 200, "needs_confirmed": 60,
    ...     "quotes_sent": 40, "quotes_accepted": 12, "contracts_signed": 10}, deals_lost=20)
    >>> [str(s.rate) for s in f.steps], f.weakest.kpi.id, str(f.win_rate)
    (['3/10', '2/3', '3/10', '5/6'], 'quote_acceptance_rate', '1/3')
    """
    values: list[int] = []
    for name in FUNNEL_COUNTS:
        try:
            v = int(counts[name])
        except (KeyError, TypeError, ValueError):
            raise ToolInputError(f"the funnel needs a whole number for {name}") from None
        if v < 0:
            raise ToolInputError(f"{name} must be 0 or more (got {v})")
        if values and v > values[-1]:
            raise ToolInputError(f"{name} ({v}) cannot exceed {FUNNEL_COUNTS[len(values) - 1]} ({values[-1]})")
        values.append(v)
    if int(deals_lost) < 0:
        raise ToolInputError("deals lost must be 0 or more")
    kpis = {k.id: k for k in playbook.kpis}
    steps = tuple(FunnelStep(a, b, va, vb, kpis.get(FUNNEL_KPIS.get((a, b), "")))
                  for (a, va), (b, vb) in zip(zip(FUNNEL_COUNTS, values), zip(FUNNEL_COUNTS[1:], values[1:])))
    won = values[-1]
    win = Fraction(won, won + int(deals_lost)) if won + int(deals_lost) else None
    below = [s for s in steps if s.below_target]
    weakest = min(below, key=lambda s: (s.rate or 0) / Fraction(s.kpi.target)) if below else None
    return Funnel(steps, win, weakest)


# ------------------------------------------------------------------------- improvement (lesson 9)


#: The stage whose work each KPI measures (where the monthly review looks when it falls).
KPI_STAGE = {"lead_conversion_rate": "needs_analysis", "quote_acceptance_rate": "quotation",
             "contract_signing_rate": "contract_negotiation"}


def parse_series(text: str) -> list[Decimal]:
    """Read monthly values typed as ``"30, 28, 25"`` (commas, blanks or semicolons).

    >>> parse_series("30, 28；25 21.5")
    [Decimal('30'), Decimal('28'), Decimal('25'), Decimal('21.5')]
    """
    parts = [p for p in re.split(r"[\s,;，；、]+", text.strip()) if p]
    try:
        return [Decimal(p) for p in parts]
    except ArithmeticError:
        raise ToolInputError(f"type the monthly values as numbers separated by commas (got {text!r})") from None


def trend(values: Sequence[Decimal | int | str], periods: int = 3) -> str:
    """Tell whether a monthly KPI series is ``falling``, ``rising`` or ``steady`` (seed:4.2.2).

    ``falling``: each of the last ``periods`` values is below the one before it, the signal to
    find and fix the stage that KPI measures at the monthly review (seed:3.3.2). ``rising`` is the
    mirror image; anything else is ``steady``.

    Examples
    --------
    >>> trend([30, 28, 25, 21]), trend([20, 22, 25, 26]), trend([30, 28, 29, 21])
    ('falling', 'rising', 'steady')
    """
    try:
        xs = [Decimal(str(v)) for v in values]
    except ArithmeticError:
        raise ToolInputError("the monthly values must be numbers") from None
    if len(xs) < periods + 1:
        return "steady"
    tail = xs[-(periods + 1):]
    pairs = list(zip(tail, tail[1:]))
    if all(b < a for a, b in pairs):
        return "falling"
    if all(b > a for a, b in pairs):
        return "rising"
    return "steady"


# ------------------------------------------------------------------------ catalogue (lesson 10)


@dataclass(frozen=True)
class QuoteLine:
    """One line of the quote sheet: a catalogue product at list price, its discount and who approves.

    ``list_total`` and ``net_total`` are in the SOP currency (CNY, list prices tax included);
    ``discount`` is a fraction 0-1; ``approval`` is the :class:`Approval` of a quote of
    ``net_total`` at ``discount`` by the preparing role.
    """

    product: Any
    quantity: int
    discount: Decimal
    list_total: Decimal
    net_total: Decimal
    approval: Approval


def quote_line(playbook: Any, product_id: str, quantity: int, discount: Decimal | int | str,
               role: str = "sales_rep") -> QuoteLine:
    """Price ``quantity`` units of a catalogue product and say who must approve the quote.

    Quotes start from the list price (clause ``product-catalogue``): the line total is
    ``quantity`` x ``list_price`` per the product's pricing unit, the quote amount is that total
    less the discount, and the amount and discount go through :func:`approval` (seed:2.3.1).

    Parameters
    ----------
    playbook : Playbook
    product_id : str
        A product of ``playbook.products``.
    quantity : int
        Units of the product's pricing unit (users x years, sessions, projects), 1 or more.
    discount : Decimal
        Discount off list price as a fraction 0-1.
    role : str
        The role preparing the quote (default the sales representative).

    Returns
    -------
    QuoteLine

    Raises
    ------
    ToolInputError
        On an unknown product, a quantity below 1, or what :func:`approval` refuses.

    Examples
    --------
    >>> pb = _shipped_playbook()
    >>> line = quote_line(pb, "crm-enterprise", 40, "0.05")
    >>> line.list_total, line.net_total, line.approval.chain
    (Decimal('96000'), Decimal('91200.00'), ['sales_rep'])
    >>> quote_line(pb, "crm-enterprise", 50, "0.05").approval.approver
    'sales_supervisor'
    """
    product = next((p for p in playbook.products if p.id == product_id), None)
    if product is None:
        raise ToolInputError(f"unknown product {product_id!r}; pick one of the catalogue "
                             f"({', '.join(p.id for p in playbook.products)})")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ToolInputError(f"the quantity is a whole number of 1 or more (got {quantity!r})")
    try:
        discount = Decimal(str(discount))
    except ArithmeticError:
        raise ToolInputError(f"the discount must be a number (got {discount!r})") from None
    list_total = product.list_price * quantity
    net_total = (list_total * (1 - discount)) if discount.is_finite() else list_total
    decision = approval(playbook, role, net_total, discount)
    return QuoteLine(product, quantity, decision.discount, list_total, decision.amount, decision)


def _shipped_playbook() -> Any:
    """Return the playbook shipped with the project (for the examples in this module)."""
    return load_playbook(PROJECT_ROOT / "playbook")
