"""Question templates: numbers drawn per attempt, keys computed by the playbook's own rules.

A bank question with a ``variant:`` block is a *template*. Its ``params`` say how each number is
drawn; its ``rule`` names a function of :data:`RULES` that computes the key from the playbook
(approval chain seed:2.3.1, SLA deadline in working time seed:1.2.1/2.2.2, follow-up cadence per ISO
week seed:3.1.2, quote line from the catalogue, a KPI rate of ``kpis.yaml`` seed:1.3.2). Texts quote
the drawn values as ``{{name}}``, formatted per language (amounts with thousands separators and
元/CNY, times in the playbook's time zone with the weekday).

:func:`instantiate` draws params with a :class:`random.Random` and returns an ordinary
:class:`~sopcoach.content.quizbank.SingleChoice` or :class:`~sopcoach.content.quizbank.Numeric`
(the *instance*) plus the params; :func:`build` rebuilds the same instance from stored params, so an
exam attempt stores the params once (``attempts.variants``) and every view, check, score and review
uses the instance rebuilt from them, never a new draw. The instance keeps the template's id, so
answers and item statistics pool the variants of a template.

Param kinds (exactly one per param)::

    {min: 50000, max: 600000, step: 10000}       a number in the range (both ends included)
    {choices: [A, B, C]}                         one of the values
    {dates: near_days_off, within_days: 3, hours: [9, 17]}
                                                 a local date-time on a make-up working day, in a
                                                 public-holiday block or up to ``within_days``
                                                 before one, in the years the calendar knows
    {weeks: 3, per_week: [0, 4]}                 a weekly follow-up log: dates of follow-ups over
                                                 ``weeks`` whole ISO weeks (Monday-Sunday)
    {funnel: [150, 400]}                         one month's funnel counts, leads in the range

``format`` (optional) says how a number is shown: ``number`` (default), ``money`` or ``percent``.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..content.businesstime import Duration, DurationUnit
from ..content.quizbank import FACT, Numeric, SingleChoice
from ..errors import AmbiguousDraw, TemplateError
from ..i18n import Text

__all__ = ["RULES", "AmbiguousDraw", "Rule", "TemplateError", "build", "draw_params", "instantiate", "template_problems",
           "variant_seed"]

#: How often :func:`instantiate` draws again when a draw gives two options the same text.
REDRAWS = 40
WEEKDAYS_ZH = "一二三四五六日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Outcome:
    """What a rule computes for one draw.

    ``key``: the correct option id (single choice) or the number (numeric, a Decimal);
    ``values``: extra ``{{name}}`` texts for the question (bilingual); ``tolerance`` for numeric.
    """

    key: str | Decimal
    values: dict[str, Text]
    tolerance: Decimal = Decimal(0)


@dataclass(frozen=True)
class Rule:
    """A key rule: the question type it keys, its params (name -> kind) and the computation.

    ``options``: option ids a single-choice template must offer (``None``: any ids, e.g. role ids);
    ``values``: names of the extra texts the rule gives.
    """

    name: str
    type: str
    params: dict[str, str]
    optional: dict[str, str]
    compute: Callable[[Any, dict[str, Any]], Outcome]
    options: tuple[str, ...] | None = None
    values: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------- formatting


def _text(zh: str, en: str) -> Text:
    return Text.model_validate({"zh-CN": zh, "en": en})


def _plain(d: Decimal) -> str:
    s = f"{d.normalize():f}"
    return s


def money(amount: Decimal | int | str) -> Text:
    """Return an amount in CNY with thousands separators.

    >>> m = money("123000"); m.zh_CN, m.en
    ('123,000元', 'CNY 123,000')
    >>> money("91200.50").en
    'CNY 91,200.50'
    """
    d = Decimal(str(amount))
    s = f"{d:,.2f}" if d != d.to_integral_value() else f"{d:,.0f}"
    return _text(f"{s}元", f"CNY {s}")


def when(dt: datetime) -> Text:
    """Return a local date-time with its weekday, e.g. 2025年9月30日(周二)10:30 / Tue 30 Sep 2025, 10:30."""
    wd = dt.weekday()
    return _text(f"{dt.year}年{dt.month}月{dt.day}日(周{WEEKDAYS_ZH[wd]}){dt:%H:%M}",
                 f"{WEEKDAYS_EN[wd]} {dt.day} {MONTHS_EN[dt.month - 1]} {dt.year}, {dt:%H:%M}")


def day(d: date, year: bool = False) -> Text:
    """Return a date with its weekday (the year only when ``year``)."""
    wd = d.weekday()
    return _text(f"{f'{d.year}年' if year else ''}{d.month}月{d.day}日(周{WEEKDAYS_ZH[wd]})",
                 f"{WEEKDAYS_EN[wd]} {d.day} {MONTHS_EN[d.month - 1]}{f' {d.year}' if year else ''}")


def _join(texts: list[Text], sep_zh: str = "、", sep_en: str = ", ") -> Text:
    if not texts:
        return _text("（无）", "(none)")
    return _text(sep_zh.join(x.zh_CN for x in texts), sep_en.join(x.en for x in texts))


# ---------------------------------------------------------------------------------- drawing


def _days_off_candidates(calendar: Any, within: int) -> list[date]:
    """Dates on a make-up working day, in a holiday block or up to ``within`` days before one."""
    holidays, makeup = sorted(calendar.holidays), sorted(calendar.workdays)
    out = set(makeup) | set(holidays)
    for h in holidays:
        if h - timedelta(days=1) not in calendar.holidays:
            out.update(h - timedelta(days=k) for k in range(1, within + 1))
    if calendar.covered_years is not None:
        first, last = _recent_years(calendar)
        # keep a month's margin at the end, so a deadline never runs past the known years
        out = {d for d in out if first <= d.year and d <= date(last, 11, 30)}
    return sorted(out)


def _recent_years(calendar: Any) -> tuple[int, int]:
    """The last two years the calendar covers: scenarios are set there (a calendar reaching back
    to old CRM exports must not put an exam question's request in 2016)."""
    first, last = calendar.covered_years or (2026, 2026)
    return max(first, last - 1), last


def _draw_one(name: str, spec: Any, playbook: Any, rng: random.Random) -> Any:
    if spec.choices is not None:
        v = rng.choice(list(spec.choices))
        return f"{v.normalize():f}" if isinstance(v, Decimal) else v
    if spec.min is not None:
        step = spec.step or Decimal(1)
        n = int((spec.max - spec.min) / step)
        return _plain(spec.min + step * rng.randint(0, n))
    if spec.dates is not None:
        cal = playbook.business_calendar()
        days = _days_off_candidates(cal, spec.within_days)
        if not days:
            raise TemplateError(f"param {name!r}: the playbook's calendar has no holidays or make-up working days")
        d = rng.choice(days)
        lo, hi = spec.hours
        return datetime(d.year, d.month, d.day, rng.randint(lo, hi - 1), rng.choice((0, 30))).isoformat(timespec="minutes")
    if spec.weeks is not None:
        cal = playbook.business_calendar()
        first, last = _recent_years(cal)
        start = date(first, 1, 5)
        start -= timedelta(days=start.weekday())
        mondays = [start + timedelta(weeks=k) for k in range(0, 52 * (last - first + 1) - spec.weeks)]
        monday = rng.choice(mondays)
        lo, hi = spec.per_week
        log: list[str] = []
        for w in range(spec.weeks):
            for k in sorted(rng.sample(range(6), rng.randint(lo, min(hi, 6)))):  # Monday-Saturday
                log.append((monday + timedelta(weeks=w, days=k)).isoformat())
        return {"monday": monday.isoformat(), "weeks": spec.weeks, "dates": log}
    if spec.funnel is not None:
        lo, hi = spec.funnel
        leads = rng.randint(lo, hi)
        needs = rng.randint(leads // 6, leads // 2)
        sent = rng.randint(needs // 2, needs)
        accepted = rng.randint(sent // 5, (sent * 7) // 10)
        signed = rng.randint(accepted // 2, accepted)
        return {"leads_assigned": leads, "needs_confirmed": needs, "quotes_sent": sent,
                "quotes_accepted": accepted, "contracts_signed": signed, "deals_lost": rng.randint(5, 40)}
    raise TemplateError(f"param {name!r} has no kind")  # pragma: no cover - the model requires one


def draw_params(q: Any, playbook: Any, rng: random.Random) -> dict[str, Any]:
    """Draw the params of template ``q`` (JSON values: text, numbers, lists, dicts) from ``rng``."""
    return {name: _draw_one(name, spec, playbook, rng) for name, spec in q.variant.params.items()}


def variant_seed(seed: int, question_id: str) -> str:
    """Return the seed of a template's draw in an attempt: the attempt seed and the question id."""
    return f"{seed}:{question_id}"


# ---------------------------------------------------------------------------------- formatting params


def _format(name: str, spec: Any, value: Any) -> Text:
    fmt = getattr(spec, "format", None)
    if spec.dates is not None:
        return when(datetime.fromisoformat(value))
    if spec.weeks is not None:
        return _join([day(date.fromisoformat(x)) for x in value["dates"]])
    if spec.funnel is not None:
        c = value
        return _text(f"分配线索{c['leads_assigned']}条,完成需求确认{c['needs_confirmed']}条,发出报价{c['quotes_sent']}份,"
                     f"客户接受报价{c['quotes_accepted']}份,签订合同(赢单){c['contracts_signed']}份,丢单{c['deals_lost']}个",
                     f"{c['leads_assigned']} leads assigned, {c['needs_confirmed']} with needs confirmed, "
                     f"{c['quotes_sent']} quotes sent, {c['quotes_accepted']} quotes accepted, "
                     f"{c['contracts_signed']} contracts signed (won), {c['deals_lost']} deals lost")
    if fmt == "money":
        return money(value)
    if fmt == "percent":
        return _text(f"{value}%", f"{value}%")
    if fmt == "tier":
        return _text(f"{value}类", f"class {value}")
    s = f"{int(value):,}" if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else str(value)
    return _text(s, s)


# ---------------------------------------------------------------------------------- rules


def _tools() -> Any:
    """Return :mod:`sopcoach.lessons.tools`, whose functions are the playbook's rules the keys reuse
    (imported when first needed: it loads the installation's config, which loads the exam)."""
    from ..lessons import tools  # noqa: PLC0415 - a cycle at import time otherwise (see the docstring)
    return tools


def _approval_chain(playbook: Any, p: dict[str, Any]) -> Outcome:
    """The role whose limits cover the quote: the preparer when within its limits (seed:2.3.1)."""
    a = _tools().approval(playbook, p.get("role", "sales_rep"), Decimal(p["amount"]),
                 Decimal(p["discount_pct"]) / 100, p.get("tier"))
    return Outcome(a.chain[-1], {})


def _sla_deadline(playbook: Any, p: dict[str, Any]) -> Outcome:
    """The due time in working time (seed:1.2.1, 2.2.2), and due times of the usual mistakes.

    ``working`` (the key): the calendar's rule; ``calendar``: the limit counted in calendar days
    (elapsed hours for business hours); ``no_makeup``: make-up working days not counted;
    ``weekends_only``: public holidays counted as working days.
    """
    cal = playbook.business_calendar()
    sla = playbook.sla(p["sla"])
    duration = sla.duration
    start = datetime.fromisoformat(p["request_at"])
    wrong_unit = (DurationUnit.ELAPSED_HOURS if duration.unit == DurationUnit.BUSINESS_HOURS
                  else DurationUnit.CALENDAR_DAYS)
    dues = {
        "working": _tools().deadline(cal, start, duration).due,
        "calendar": _tools().deadline(cal, start, Duration(duration.value, wrong_unit)).due,
        "no_makeup": _tools().deadline(dataclasses.replace(cal, workdays=frozenset()), start, duration).due,
        "weekends_only": _tools().deadline(dataclasses.replace(cal, holidays=frozenset()), start, duration).due,
    }
    values = {f"due_{k}": when(v.replace(tzinfo=None)) for k, v in dues.items()}
    values["sla_limit"] = _text(duration.label("zh-CN"), duration.label("en"))
    values["sla_name"] = sla.name
    return Outcome("working", values)


def _iso_weeks(p: dict[str, Any]) -> list[tuple[date, list[int]]]:
    monday = date.fromisoformat(p["log"]["monday"])
    weeks = [(monday + timedelta(weeks=w), [0] * 7) for w in range(int(p["log"]["weeks"]))]
    by_week = {m.isocalendar()[:2]: counts for m, counts in weeks}
    for x in p["log"]["dates"]:
        d = date.fromisoformat(x)
        iso = d.isocalendar()
        if (iso[0], iso[1]) in by_week:
            by_week[(iso[0], iso[1])][d.weekday()] += 1
    return weeks


def _cadence_breach(playbook: Any, p: dict[str, Any]) -> Outcome:
    """How many ISO weeks (Monday-Sunday) of the log fall short of the tier's minimum (seed:3.1.2)."""
    weeks = _iso_weeks(p)
    short = sum(1 for _, per_day in weeks if not _tools().check_follow_up_plan(playbook, p["tier"], per_day).ok)
    first, last = weeks[0][0], weeks[-1][0] + timedelta(days=6)
    return Outcome(Decimal(short), {"log_from": day(first, year=True), "log_to": day(last, year=True),
                                    "log_weeks": _text(str(len(weeks)), str(len(weeks)))})


def _quote_total(playbook: Any, p: dict[str, Any]) -> Outcome:
    """The quote line's net total in CNY: quantity x list price, less the discount (clause product-catalogue)."""
    line = _tools().quote_line(playbook, p["product"], int(p["quantity"]), Decimal(p["discount_pct"]) / 100)
    return Outcome(line.net_total.normalize(), {"product_name": line.product.name,
                                                "list_price": money(line.product.list_price),
                                                "product_unit": line.product.unit})


#: The funnel step each rate KPI measures (numerator, denominator) in :func:`lessons.tools.funnel` terms.
_KPI_STEP = {"lead_conversion_rate": 0, "quote_acceptance_rate": 2, "contract_signing_rate": 3}


def _kpi_rate(playbook: Any, p: dict[str, Any]) -> Outcome:
    """A rate KPI of ``kpis.yaml`` in percent, one decimal (seed:1.3.2; win rate: company setting)."""
    counts = dict(p["counts"])
    lost = int(counts.pop("deals_lost"))
    f = _tools().funnel(playbook, counts, deals_lost=lost)
    rate = f.win_rate if p["kpi"] == "win_rate" else f.steps[_KPI_STEP[p["kpi"]]].rate
    if rate is None:
        raise TemplateError("the drawn counts give no rate (a zero denominator)")
    pct = (Decimal(rate.numerator) * 100 / Decimal(rate.denominator)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    kpi = {k.id: k for k in playbook.kpis}[p["kpi"]]
    return Outcome(pct, {"kpi_name": kpi.name, "kpi_formula": kpi.formula}, Decimal("0.1"))


RANGE, CHOICES, DATES, LOG, FUNNEL = "range", "choices", "dates", "log", "funnel"

#: The key rules a template may name.
RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("approval_chain", "single_choice", {"amount": RANGE, "discount_pct": CHOICES},
         {"tier": CHOICES, "role": CHOICES}, _approval_chain),
    Rule("sla_deadline", "single_choice", {"sla": CHOICES, "request_at": DATES}, {}, _sla_deadline,
         options=("working", "calendar", "no_makeup", "weekends_only"),
         values=("due_working", "due_calendar", "due_no_makeup", "due_weekends_only", "sla_limit", "sla_name")),
    Rule("cadence_breach", "numeric", {"tier": CHOICES, "log": LOG}, {}, _cadence_breach,
         values=("log_from", "log_to", "log_weeks")),
    Rule("quote_total", "numeric", {"product": CHOICES, "quantity": RANGE, "discount_pct": CHOICES}, {},
         _quote_total, values=("product_name", "list_price", "product_unit")),
    Rule("kpi_rate", "numeric", {"kpi": CHOICES, "counts": FUNNEL}, {}, _kpi_rate,
         values=("kpi_name", "kpi_formula")),
)}


def kind_of(spec: Any) -> str:
    """Return the kind of a param spec: ``range``, ``choices``, ``dates``, ``log`` or ``funnel``."""
    if spec.choices is not None:
        return CHOICES
    if spec.min is not None:
        return RANGE
    if spec.dates is not None:
        return DATES
    if spec.weeks is not None:
        return LOG
    return FUNNEL


def placeholders(q: Any) -> set[str]:
    """Return the ``{{names}}`` a template's texts may use: its params and its rule's values."""
    rule = RULES.get(q.variant.rule)
    return set(q.variant.params) | set(rule.values if rule else ())


# ---------------------------------------------------------------------------------- instances


def build(q: Any, playbook: Any, params: dict[str, Any]) -> Any:
    """Return the instance of template ``q`` for ``params`` (an ordinary question, same id).

    Raises
    ------
    TemplateError
        When the rule gives no key (e.g. no role may approve, a zero denominator), a key no option
        has, or no ``playbook`` is given; :class:`~sopcoach.errors.AmbiguousDraw` when two options
        read the same.
    """
    if playbook is None:
        raise TemplateError(f"question {q.id} is a template: its key needs the playbook; load the bank with it")
    rule = RULES[q.variant.rule]
    try:
        out = rule.compute(playbook, params)
    except (ArithmeticError, KeyError, ValueError) as exc:
        raise TemplateError(f"question {q.id}: rule {rule.name} gives no key for {params}: {exc}") from None
    values = {n: _format(n, q.variant.params[n], v) for n, v in params.items()}
    values.update(out.values)

    def fill(text: Text | None) -> Text | None:
        if text is None:
            return None
        try:
            return Text.model_validate({
                "zh-CN": FACT.sub(lambda m: values[m.group(1)].zh_CN, text.zh_CN),
                "en": FACT.sub(lambda m: values[m.group(1)].en, text.en)})
        except KeyError as exc:
            raise TemplateError(f"question {q.id}: unknown placeholder {{{{{exc.args[0]}}}}}") from None

    update: dict[str, Any] = {f: fill(getattr(q, f)) for f in ("text", "scenario", "explanation")}
    update["variant"] = None
    update["derived"] = True
    if isinstance(q, SingleChoice):
        opts = [o.model_copy(update={"text": fill(o.text), "correct": o.id == out.key}) for o in q.options]
        if not any(o.correct for o in opts):
            raise TemplateError(f"question {q.id}: rule {rule.name} gives key {out.key!r}, which no option has; "
                                f"give an option with id {out.key!r}")
        for lang in ("zh_CN", "en"):
            texts = [getattr(o.text, lang) for o in opts]
            if len(set(texts)) < len(texts):
                raise AmbiguousDraw(f"question {q.id}: two options read the same for {params}")
        update["options"] = opts
    elif isinstance(q, Numeric):
        update.update(answer=Decimal(out.key), tolerance=out.tolerance or q.tolerance)
    return q.model_copy(update=update)


def instantiate(q: Any, playbook: Any, rng: random.Random) -> tuple[Any, dict[str, Any]]:
    """Draw params for template ``q`` from ``rng`` and return ``(instance, params)``.

    A draw that gives two options the same text is drawn again (up to :data:`REDRAWS` times, from
    the same ``rng``, so a seed still gives one result); a draw the rule gives no key for is an
    error at once (``sopcoach check`` finds such templates before an exam does).

    Raises
    ------
    TemplateError
        When a draw has no key, or no draw in :data:`REDRAWS` has distinct options.
    """
    if playbook is None:
        raise TemplateError(f"question {q.id} is a template: its numbers need the playbook; load the bank with it")
    last: TemplateError | None = None
    for _ in range(REDRAWS):
        params = draw_params(q, playbook, rng)
        try:
            return build(q, playbook, params), params
        except AmbiguousDraw as exc:
            last = exc
    raise TemplateError(f"question {q.id}: no usable draw in {REDRAWS} tries (last: {last})")


def template_problems(q: Any, playbook: Any) -> list[tuple[tuple, str]]:
    """Return what is wrong with template ``q``'s rule and params: ``[(field path, message)]``.

    The path is relative to the question (e.g. ``("variant", "params", "tier")``).
    """
    v = q.variant
    rule = RULES.get(v.rule)
    if rule is None:
        return [(("variant", "rule"), f"unknown rule {v.rule!r}; use one of {', '.join(sorted(RULES))}")]
    out: list[tuple[tuple, str]] = []
    if q.type != rule.type:
        out.append((("type",), f"rule {rule.name} keys {rule.type} questions (this one is {q.type})"))
    for name, kind in rule.params.items():
        if name not in v.params:
            out.append((("variant", "params"), f"rule {rule.name} needs param {name!r} ({kind})"))
    for name, spec in v.params.items():
        want = rule.params.get(name) or rule.optional.get(name)
        if want is None:
            out.append((("variant", "params", name), f"rule {rule.name} takes no param {name!r}; its params are "
                        f"{', '.join(list(rule.params) + list(rule.optional))}"))
        elif kind_of(spec) != want:
            out.append((("variant", "params", name), f"param {name!r} must be {want} (got {kind_of(spec)})"))
    if out or playbook is None:
        return out
    known = {"tier": {t.id for t in playbook.tiers}, "role": {a.role for a in playbook.authority},
             "sla": {s.id for s in playbook.slas
                     if s.limit.unit in ("working_days", "business_hours") and not s.scheduled},
             "product": {p.id for p in playbook.products}, "kpi": set(_KPI_STEP) | {"win_rate"}}
    for name, pool in known.items():
        spec = v.params.get(name)
        if spec is not None and spec.choices is not None:
            bad = [str(c) for c in spec.choices if str(c) not in pool]
            if bad:
                out.append((("variant", "params", name, "choices"),
                            f"unknown {name} {', '.join(bad)}; use {', '.join(sorted(pool))}"))
    if rule.options is not None and isinstance(q, SingleChoice):
        ids = {o.id for o in q.options}
        missing = [i for i in rule.options if i not in ids]
        if missing:
            out.append((("options",), f"rule {rule.name} needs options with ids {', '.join(rule.options)} "
                        f"(missing: {', '.join(missing)})"))
    return out


def check_draws(q: Any, playbook: Any, seeds: int = 25) -> list[str]:
    """Instantiate template ``q`` on ``seeds`` seeds; return a message per seed whose draw is unusable."""
    out = []
    for seed in range(seeds):
        try:
            instantiate(q, playbook, random.Random(variant_seed(seed, q.id)))
        except TemplateError as exc:
            out.append(f"seed {seed}: {exc}")
    return out
