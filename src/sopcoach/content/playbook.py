"""The sales SOP as a validated, immutable model loaded from ``playbook/*.yaml``.

Each YAML file holds one or more top-level parts (``clauses``, ``roles``, ``stages``, ``steps``,
``authority``, ``slas``, ``tiers``, ``kpis``, ``templates``, ``confidentiality``, ``calendar``,
``products``, ``sop``; optional: ``lessons``). A part may appear in only one file. Every
structured value names the clause it implements (``clause:``); every clause names its ``source``:
a reference into the source SOP (``seed:1.2.1``) or ``company-setting`` with a one-line
``rationale`` for values the source leaves open.

Provenance (where an item's content comes from) is one of three kinds, see :class:`Provenance`:
``source: seed:N`` (the SOP states it), ``elaborates: seed:N`` with a ``rationale`` saying how
(company wording that details a seed clause), or ``source: company-setting`` with a ``rationale``
saying why. A clause states its own; any other item may state its own with the same fields and
otherwise has the provenance of the clause it names.
"""
from __future__ import annotations

import hashlib
import re
from datetime import date, time
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, field_validator,
                      model_validator)

from ..errors import ContentError, Problem, relpath
from ..i18n import Text
from .businesstime import BusinessCalendar, Duration, DurationUnit, check_timezone
from .yaml_loader import Loaded, load_yaml, raise_problems, validate

ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SEED_REF = re.compile(r"^seed:\d+(\.\d+)*$")
COMPANY = "company-setting"
#: The clauses of the source SOP (``/work/shared/seed/CLAUSES.md``, the sales SOP's clause index).
#: A ``seed:N`` reference must name one of them or a section that contains one (``seed:1.2``).
SEED_CLAUSES = (
    "seed:1", "seed:1.1.1", "seed:1.1.2", "seed:1.2.1", "seed:1.2.2", "seed:1.3.1", "seed:1.3.2",
    "seed:2.1.1", "seed:2.1.2", "seed:2.2.1", "seed:2.2.2", "seed:2.3.1", "seed:2.3.2",
    "seed:3.1.1", "seed:3.1.2", "seed:3.1.3", "seed:3.2.1", "seed:3.2.2", "seed:3.3.1", "seed:3.3.2",
    "seed:4.1.1", "seed:4.1.2", "seed:4.2.1", "seed:4.2.2",
)


def check_seed_ref(v: str) -> str:
    """Return ``v`` when it names a clause or section of the source SOP (:data:`SEED_CLAUSES`).

    Raises ``ValueError`` naming the fix otherwise (``seed:9.9``, ``seed:1.2.7``, ``1.2.1``).
    """
    if not SEED_REF.match(v):
        raise ValueError(f"a reference to the SOP is written 'seed:N[.N...]' as in CLAUSES.md (got {v!r})")
    if not any(ref == v or ref.startswith(v + ".") for ref in SEED_CLAUSES):
        section = v.split(".")[0]
        near = [ref for ref in SEED_CLAUSES if ref.split(".")[0] == section] or list(SEED_CLAUSES)
        raise ValueError(f"unknown seed reference {v!r}: the SOP has no such clause; use one of "
                         f"{', '.join(near)} (see CLAUSES.md)")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Provenance(_Model):
    """Where an item's content comes from: the SOP, a company elaboration of it, or a company setting.

    ``kind`` is ``seed`` (the SOP states it; ``ref`` is the clause, quoted faithfully),
    ``elaborates`` (company wording that details the seed clause ``ref``; ``rationale`` says how),
    ``company-setting`` (the SOP leaves it open or does not have it; ``rationale`` says why; ``ref``
    None) or ``none`` (nothing says; ``sopcoach check`` reports it). ``via`` is the clause id the
    item inherits its provenance from, None when the item states its own.
    """

    part: str
    item: str
    kind: Literal["seed", "elaborates", "company-setting", "none"]
    ref: str | None = None
    rationale: str | None = None
    via: str | None = None


class Sourced(_Model):
    """The provenance fields an item may state: ``source``, ``elaborates`` and ``rationale``.

    At most one of ``source`` (``seed:N`` or ``company-setting``) and ``elaborates`` (``seed:N``);
    ``rationale`` is required with ``company-setting`` (why the company chose it) and with
    ``elaborates`` (how the item details the clause), and only allowed with them. Seed references
    must name a clause of the SOP (:func:`check_seed_ref`). Raises ``ValueError`` otherwise.
    """

    source: str | None = None
    elaborates: str | None = None
    rationale: str | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        if v is None or v == COMPANY:
            return v
        if not SEED_REF.match(v):
            _bad_source(v)
        return check_seed_ref(v)

    @field_validator("elaborates")
    @classmethod
    def _elaborates(cls, v: str | None) -> str | None:
        return None if v is None else check_seed_ref(v)

    @model_validator(mode="after")
    def _provenance(self) -> Sourced:
        has_reason = bool((self.rationale or "").strip())
        if self.source is not None and self.elaborates is not None:
            raise ValueError(f"give either 'source' or 'elaborates', not both: write 'source: {self.elaborates}' "
                             f"when the SOP states the item, 'elaborates: {self.elaborates}' with a rationale when "
                             "the company's wording details it")
        if self.source == COMPANY and not has_reason:
            raise ValueError("a company-setting needs a one-line 'rationale' saying why the company chose it")
        if self.elaborates is not None and not has_reason:
            raise ValueError(f"'elaborates: {self.elaborates}' needs a one-line 'rationale' saying how the item "
                             "details that clause (what the SOP says, what the company adds)")
        if has_reason and self.source != COMPANY and self.elaborates is None:
            raise ValueError(f"a 'rationale' explains a company-setting or an elaboration: add 'source: {COMPANY}' "
                             "or 'elaborates: seed:N', or remove the rationale")
        return self

    def own_provenance(self, part: str, item: str) -> Provenance | None:
        """Return the provenance the item states itself, None when it states none."""
        if self.elaborates is not None:
            return Provenance(part=part, item=item, kind="elaborates", ref=self.elaborates, rationale=self.rationale)
        if self.source == COMPANY:
            return Provenance(part=part, item=item, kind="company-setting", rationale=self.rationale)
        if self.source is not None:
            return Provenance(part=part, item=item, kind="seed", ref=self.source)
        return None


def _bad_source(v: str) -> NoReturn:
    raise ValueError(f"source must be 'seed:N[.N...]' or '{COMPANY}' (got {v!r}); for company wording that "
                     "details a seed clause write 'elaborates: seed:N' with a rationale")


class Clause(_Model):
    """One SOP clause: stable id, bilingual title and text, and where it comes from.

    ``source`` is ``seed:N`` (the zh-CN text quotes the SOP) or ``company-setting`` with a one-line
    ``rationale``; ``elaborates`` is not used on clauses (a clause either quotes the SOP or sets a
    value it leaves open). Raises ``ValueError`` for a company-setting without a rationale or an
    unknown seed reference.
    """

    id: str = Field(pattern=ID)
    source: str
    rationale: str | None = None
    title: Text
    text: Text
    retired: bool = False

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v != COMPANY and not SEED_REF.match(v):
            _bad_source(v)
        return v if v == COMPANY else check_seed_ref(v)

    @model_validator(mode="after")
    def _rationale(self) -> Clause:
        if self.source == COMPANY and not (self.rationale or "").strip():
            raise ValueError("a company-setting clause needs a one-line 'rationale' saying why the company chose it")
        return self

    @property
    def provenance(self) -> Provenance:
        """The clause's :class:`Provenance` (kind ``seed`` or ``company-setting``)."""
        if self.source == COMPANY:
            return Provenance(part="clauses", item=self.id, kind="company-setting", rationale=self.rationale)
        return Provenance(part="clauses", item=self.id, kind="seed", ref=self.source)


class Role(Sourced):
    """A role in the sales team (seed:1.1.2)."""

    id: str = Field(pattern=ID)
    name: Text
    duties: Text
    clause: str


class Stage(Sourced):
    """One stage of the sales process, in order, with its responsible role (seed:1.1.2, 2.1.1)."""

    id: str = Field(pattern=ID)
    name: Text
    responsible_role: str
    entry_criteria: list[Text] = Field(min_length=1)
    exit_criteria: list[Text] = Field(min_length=1)
    crm_fields: list[str] = Field(default_factory=list)
    clause: str
    #: the chance (fraction 0-1) that a deal open in this stage is won, for the weighted pipeline
    #: forecast when the export carries no probability of its own (None: not set)
    probability: Decimal | None = Field(default=None, ge=0, le=1)


class Step(Sourced):
    """A measurable step of the process (seed:2.2.1)."""

    id: str = Field(pattern=ID)
    number: int = Field(ge=1)
    name: Text
    action: Text
    required_fields: list[str] = Field(default_factory=list)
    clause: str


class AuthorityLimit(Sourced):
    """What a role may quote on its own, and who approves above it (seed:2.3.1).

    ``max_quote_amount`` is in ``currency`` units (None: no limit); ``max_discount`` a fraction 0-1
    of list price (None: no limit). ``approver`` is the role that approves above either limit.
    """

    role: str
    max_quote_amount: Decimal | None = Field(default=None, ge=0)
    max_discount: Decimal | None = Field(default=None, ge=0, le=1)
    approver: str | None = None
    clause: str

    @field_validator("max_discount", mode="before")
    @classmethod
    def _fraction(cls, v: Any) -> Any:
        if v is not None and Decimal(str(v)) > 1:
            raise ValueError(f"max_discount must be a fraction in [0, 1] (got {v}); write 0.1 for 10%")
        return v


class DurationSpec(_Model):
    """A duration with an explicit unit, e.g. ``{value: 3, unit: working_days}``."""

    value: Decimal = Field(ge=0)
    unit: DurationUnit

    def to_duration(self) -> Duration:
        v = int(self.value) if self.value == int(self.value) else self.value
        return Duration(v, self.unit)


class Tolerance(_Model):
    """How many days before and after its due day a scheduled SLA's end event still counts.

    A company setting, never SOP: the source says "成交后30天进行满意度回访" (seed:1.2.1) and leaves
    the margin open, so ``clause`` must name a ``company-setting`` clause whose ``rationale`` says
    why. ``before`` and ``after`` are whole days (>= 0) in ``unit`` (``working_days`` of the
    playbook calendar, or ``calendar_days``).
    """

    before: int = Field(ge=0)
    after: int = Field(ge=0)
    unit: Literal["working_days", "calendar_days"]
    clause: str


class SLA(Sourced):
    """A service-level rule on two CRM events (seed:1.2).

    ``kind: deadline`` (the default): ``end_event`` within ``limit`` of ``start_event`` ("reply within
    24 hours"); any time up to the due time is on time. ``kind: scheduled``: ``end_event`` is due on
    the day ``limit`` after ``start_event`` ("a satisfaction call 30 days after the deal",
    seed:1.2.1), ``limit`` in whole days; ``tolerance`` (required, a company setting) is how many days
    before or after that day still count. Earlier is too early, later is late.
    """

    id: str = Field(pattern=ID)
    name: Text
    start_event: str = Field(pattern=ID)
    end_event: str = Field(pattern=ID)
    kind: Literal["deadline", "scheduled"] = "deadline"
    limit: DurationSpec
    tolerance: Tolerance | None = None
    clause: str

    @model_validator(mode="after")
    def _scheduled(self) -> SLA:
        if self.kind == "scheduled":
            if self.tolerance is None:
                raise ValueError("a scheduled SLA needs a tolerance, e.g. tolerance: {before: 3, after: 3, unit: "
                                 "working_days, clause: <company-setting clause>}; write before: 0, after: 0 for "
                                 "exactly on the day")
            if self.limit.unit not in (DurationUnit.CALENDAR_DAYS, DurationUnit.WORKING_DAYS):
                raise ValueError(f"a scheduled SLA falls due on a day: its limit is in calendar_days or "
                                 f"working_days (got {self.limit.unit.value})")
        elif self.tolerance is not None:
            raise ValueError("only a scheduled SLA (kind: scheduled) has a tolerance; a deadline is met any time "
                             "before it, so remove 'tolerance' or add 'kind: scheduled'")
        return self

    @property
    def duration(self) -> Duration:
        """``limit`` as a :class:`Duration`: the time allowed (deadline) or the offset of the due day (scheduled)."""
        return self.limit.to_duration()

    @property
    def scheduled(self) -> bool:
        """Whether the end event is due on one day (with a tolerance) rather than by a deadline."""
        return self.kind == "scheduled"


class Tier(Sourced):
    """A customer tier (A/B/C) with its classification criteria and cadence (seed:3.1.1, 3.1.2)."""

    id: str = Field(pattern=ID)
    name: Text
    criteria: Text
    min_weekly_follow_ups: int = Field(ge=0)
    min_annual_revenue: Decimal | None = Field(default=None, ge=0)
    min_employees: int | None = Field(default=None, ge=0)
    clause: str
    cadence_clause: str


class KPI(Sourced):
    """A key performance indicator with its formula (seed:1.3.2). ``target`` is a fraction 0-1 or days."""

    id: str = Field(pattern=ID)
    name: Text
    formula: Text
    unit: Literal["fraction", "calendar_days", "working_days", "count"]
    target: Decimal | None = None
    clause: str


class Template(Sourced):
    """A standard tool or template (seed:1.1.1, 3.2.1): welcome message, question list, quote sheet."""

    id: str = Field(pattern=ID)
    kind: Literal["welcome_message", "question_list", "quote_sheet", "contract", "demo_slides",
                  "case_library"]
    name: Text
    used_at_stage: str | None = None
    when: Text
    body: Text | None = None
    items: list[Text] = Field(default_factory=list)
    review_every: DurationSpec | None = None
    clause: str


class ConfidentialityRule(Sourced):
    """A rule on the use of customer data (seed:3.1.3)."""

    id: str = Field(pattern=ID)
    text: Text
    allowed: bool
    clause: str


class CalendarSpec(Sourced):
    """The business calendar: time zone, weekend, business hours and holidays (company setting)."""

    timezone: str = "Asia/Shanghai"
    weekend: list[Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]] = ["Sat", "Sun"]
    day_start: str = "09:00"
    day_end: str = "18:00"
    holidays_source: Literal["chinese-calendar", "declared"] = "chinese-calendar"
    years: list[int] = Field(default_factory=lambda: [2025, 2026])
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    clause: str

    @field_validator("day_start", "day_end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError(f"time must be 'HH:MM' in quotes (got {v!r})")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)

    def build(self) -> BusinessCalendar:
        """Return the :class:`BusinessCalendar` this spec describes."""
        days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        start, end = (time.fromisoformat(x) for x in (self.day_start, self.day_end))
        if self.holidays_source == "chinese-calendar":
            base = BusinessCalendar.china(years=tuple(self.years), timezone=self.timezone,
                                          day_start=start, day_end=end)
            return BusinessCalendar(
                timezone=self.timezone, weekend=frozenset(days.index(d) for d in self.weekend),
                holidays=base.holidays | frozenset(self.holidays),
                workdays=base.workdays | frozenset(self.workdays),
                day_start=start, day_end=end, covered_years=base.covered_years)
        return BusinessCalendar(
            timezone=self.timezone, weekend=frozenset(days.index(d) for d in self.weekend),
            holidays=frozenset(self.holidays), workdays=frozenset(self.workdays),
            day_start=start, day_end=end,
            covered_years=(min(self.years), max(self.years)) if self.years else None)


class Product(Sourced):
    """An item of the sample product catalogue (the company replaces it)."""

    id: str = Field(pattern=ID)
    name: Text
    description: Text
    list_price: Decimal = Field(ge=0)
    unit: Text
    clause: str | None = None


class Goal(_Model):
    """A goal of the SOP (a section such as ``seed:1.2``) with its bilingual name (lesson tools)."""

    seed: str = Field(pattern=r"^seed:\d+(\.\d+)*$")
    name: Text


class LessonSpec(_Model):
    """A lesson of the learner app (seed:3.3.1): its place in the course and its notebook.

    ``playbook/lessons.yaml`` is the one list of lessons. The lesson itself is the notebook
    ``lessons/<notebook>`` a trainer writes (:mod:`sopcoach.lessons.notebook`): prose in zh-CN and en
    quoting playbook facts as ``{{fact}}``, and calls placing the clauses it shows, its tool and its
    practice. :attr:`title`, :attr:`clauses` and :attr:`tool` are read from that notebook (again
    after it changed on disk). Practice questions are the questions of ``quizzes/practice/`` whose
    ``section`` is the lesson ``id``; ``goals`` is the data of the ``goals`` tool.
    """

    id: str = Field(pattern=ID)
    number: int = Field(ge=1)
    notebook: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.ipynb$")
    seeds: list[str] = Field(min_length=1)
    goals: list[Goal] = Field(default_factory=list)
    _folder: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path:
        """The lesson notebook's file: ``lessons/<notebook>`` of the content folder the playbook was loaded from."""
        from ..lessons.notebook import lessons_folder  # noqa: PLC0415 - lessons.notebook imports this module
        return (self._folder or lessons_folder(Path(__file__).resolve().parents[3])) / self.notebook

    def read(self) -> Any:
        """Return the lesson notebook (:class:`~sopcoach.lessons.notebook.LessonNotebook`), cached until it changes.

        Raises
        ------
        ContentError
            When the notebook is missing or invalid (file, cell, line and the fix).
        """
        from ..lessons.notebook import lesson_notebook  # noqa: PLC0415 - lessons.notebook imports this module
        return lesson_notebook(self.path)

    def _read_or_none(self) -> Any:
        try:
            return self.read()
        except ContentError:  # shown on the lesson's own page and by `sopcoach check`
            return None

    @property
    def title(self) -> Text:
        """The bilingual title: the notebook's first ``# heading`` per language (the id while it is unreadable)."""
        nb = self._read_or_none()
        titles = {lang: (nb.title(lang) if nb else "") or self.id for lang in ("zh-CN", "en")}
        return Text.model_validate(titles)

    @property
    def clauses(self) -> tuple[str, ...]:
        """The clause ids the notebook shows, in reading order (none while it is unreadable)."""
        nb = self._read_or_none()
        return nb.clauses if nb else ()

    @property
    def tool(self) -> str | None:
        """The notebook's tool (``tool("approval")``), or ``None``."""
        nb = self._read_or_none()
        return nb.tool if nb else None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not SEED_REF.match(s)]
        if bad:
            raise ValueError(f"seeds must be references such as 'seed:1.2' (got {bad[0]!r})")
        return v


class SopMeta(_Model):
    """Name, currency and release label of the SOP."""

    name: Text
    currency: str = "CNY"
    version: str = "draft"


PARTS: dict[str, Any] = {
    "sop": SopMeta, "clauses": list[Clause], "roles": list[Role], "stages": list[Stage],
    "steps": list[Step], "authority": list[AuthorityLimit], "slas": list[SLA], "tiers": list[Tier],
    "kpis": list[KPI], "templates": list[Template], "confidentiality": list[ConfidentialityRule],
    "calendar": CalendarSpec, "products": list[Product], "lessons": list[LessonSpec],
}
#: Parts that a playbook may leave out (an empty list is used).
OPTIONAL_PARTS = frozenset({"lessons"})
#: Parts whose items carry content of the SOP, in the order :meth:`Playbook.provenance` lists them.
PROVENANCE_PARTS = ("clauses", "roles", "stages", "steps", "authority", "slas", "tiers", "kpis", "templates",
                    "confidentiality", "calendar", "products")


class Playbook(_Model):
    """The whole SOP. Lists keep the authored order (stages in process order).

    Build it with :func:`load_playbook`; the model validates cross references (roles, stages and
    clauses named anywhere must exist; ids are unique per part).
    """

    sop: SopMeta
    clauses: list[Clause]
    roles: list[Role]
    stages: list[Stage]
    steps: list[Step]
    authority: list[AuthorityLimit]
    slas: list[SLA]
    tiers: list[Tier]
    kpis: list[KPI]
    templates: list[Template]
    confidentiality: list[ConfidentialityRule]
    calendar: CalendarSpec
    products: list[Product]
    lessons: list[LessonSpec] = Field(default_factory=list)

    # -- lookups ---------------------------------------------------------------------------
    def clause(self, clause_id: str) -> Clause:
        """Return the clause ``clause_id``; raise ``KeyError`` when there is none."""
        return {c.id: c for c in self.clauses}[clause_id]

    def role(self, role_id: str) -> Role:
        return {r.id: r for r in self.roles}[role_id]

    def sla(self, sla_id: str) -> SLA:
        return {s.id: s for s in self.slas}[sla_id]

    def tier(self, tier_id: str) -> Tier:
        return {t.id: t for t in self.tiers}[tier_id]

    def business_calendar(self) -> BusinessCalendar:
        """Return the business calendar (working days, hours, holidays) of ``calendar``."""
        return self.calendar.build()

    def seed_refs(self) -> set[str]:
        """Return every ``seed:N`` reference that some active clause covers."""
        return {c.source for c in self.clauses if c.source != COMPANY and not c.retired}

    def provenance(self) -> list[Provenance]:
        """Return where the content of every item comes from, part by part (:data:`PROVENANCE_PARTS`).

        A clause (retired ones left out) gives its own ``source``. Any other item gives the
        ``source``/``elaborates``/``rationale`` it states, else that of the clause it names (``via``
        is then the clause id), else kind ``none``. Items are named by ``id`` (``role`` for
        authority limits, the part name for the calendar). Source of the rule: issue 15, item 5
        ("content the SOP does not state is marked company-setting or says which seed clause it
        elaborates").
        """
        clauses = {c.id: c for c in self.clauses}
        out: list[Provenance] = []
        for part in PROVENANCE_PARTS:
            value = getattr(self, part)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Clause):
                    if not item.retired:
                        out.append(item.provenance)
                    continue
                name = str(getattr(item, "id", None) or getattr(item, "role", None) or part)
                own = item.own_provenance(part, name)
                clause = clauses.get(item.clause or "")
                if own is None and clause is not None:
                    own = clause.provenance.model_copy(update={"part": part, "item": name, "via": clause.id})
                out.append(own or Provenance(part=part, item=name, kind="none"))
        return out

    def provenance_of(self, part: str, item: str) -> Provenance:
        """Return the :class:`Provenance` of one item (``part`` as in :data:`PROVENANCE_PARTS`).

        Raises ``KeyError`` when ``part`` has no item ``item``.
        """
        found = next((p for p in self.provenance() if p.part == part and p.item == item), None)
        if found is None:
            raise KeyError(f"{part} has no item {item!r}")
        return found

    def facts(self) -> dict[str, Any]:
        """Return the named values that question keys and texts may use (``{{name}}``).

        Names: ``sla.<id>`` (a :class:`Duration`), ``sla.<id>.value``; for a scheduled SLA
        ``sla.<id>.tolerance_before`` and ``sla.<id>.tolerance_after`` (Durations); ``tier.<id>.min_weekly_follow_ups``;
        ``authority.<role>.max_quote_amount``, ``authority.<role>.max_discount_pct`` (percent),
        ``authority.<role>.approver`` (role id); ``stage.<n>`` (stage id at 1-based position n),
        ``stage.<id>.responsible_role``; ``role.<id>`` (role id).
        """
        f: dict[str, Any] = {}
        for s in self.slas:
            f[f"sla.{s.id}"] = s.duration
            f[f"sla.{s.id}.value"] = s.limit.value
            if s.tolerance is not None:
                f[f"sla.{s.id}.tolerance_before"] = Duration(s.tolerance.before, DurationUnit(s.tolerance.unit))
                f[f"sla.{s.id}.tolerance_after"] = Duration(s.tolerance.after, DurationUnit(s.tolerance.unit))
        for t in self.tiers:
            f[f"tier.{t.id}.min_weekly_follow_ups"] = t.min_weekly_follow_ups
        for a in self.authority:
            if a.max_quote_amount is not None:
                f[f"authority.{a.role}.max_quote_amount"] = a.max_quote_amount
            if a.max_discount is not None:
                f[f"authority.{a.role}.max_discount_pct"] = a.max_discount * 100
            f[f"authority.{a.role}.approver"] = a.approver
        for i, st in enumerate(self.stages, 1):
            f[f"stage.{i}"] = st.id
            f[f"stage.{st.id}.responsible_role"] = st.responsible_role
        for r in self.roles:
            f[f"role.{r.id}"] = r.id
        return f

    def approval_chain(self, role: str, amount: Decimal, discount: Decimal) -> list[AuthorityLimit]:
        """Return the limits consulted, from ``role`` up to the first role that may approve.

        Parameters
        ----------
        role : str
            The role preparing the quote.
        amount : Decimal
            Quote amount in the SOP currency.
        discount : Decimal
            Discount off list price as a fraction 0-1.

        Returns
        -------
        list of AuthorityLimit
            The first item is ``role``'s own limit; the last is the role whose limits cover the
            quote (seed:2.3.1). One item means no approval is needed.

        Raises
        ------
        KeyError
            When ``role`` has no authority limit.
        ValueError
            When no role in the chain may approve the quote.
        """
        limits = {a.role: a for a in self.authority}
        chain = [limits[role]]
        seen = {role}
        while not _covers(chain[-1], amount, discount):
            nxt = chain[-1].approver
            if nxt is None or nxt in seen or nxt not in limits:
                raise ValueError("no role in the approval chain may approve this quote")
            seen.add(nxt)
            chain.append(limits[nxt])
        return chain

    @model_validator(mode="after")
    def _references(self) -> Playbook:
        errors = []
        for part in ("clauses", "roles", "stages", "steps", "slas", "tiers", "kpis", "templates",
                     "confidentiality", "products", "lessons"):
            seen: set[str] = set()
            for item in getattr(self, part):
                if item.id in seen:
                    errors.append(f"{part}: duplicate id '{item.id}'; ids must be unique")
                seen.add(item.id)
        clause_ids = {c.id for c in self.clauses}
        role_ids = {r.id for r in self.roles}
        stage_ids = {s.id for s in self.stages}

        def need(kind: str, value: str | None, pool: set[str], where: str) -> None:
            if value is not None and value not in pool:
                errors.append(f"{where}: unknown {kind} '{value}' (known: {', '.join(sorted(pool))})")

        for part in ("roles", "stages", "steps", "authority", "slas", "tiers", "kpis", "templates",
                     "confidentiality"):
            for item in getattr(self, part):
                need("clause", item.clause, clause_ids, f"{part} '{getattr(item, 'id', getattr(item, 'role', ''))}'")
        need("clause", self.calendar.clause, clause_ids, "calendar")
        for sla in self.slas:
            if sla.tolerance is None:
                continue
            need("clause", sla.tolerance.clause, clause_ids, f"slas '{sla.id}' tolerance")
            if sla.tolerance.clause in clause_ids and self.clause(sla.tolerance.clause).source != COMPANY:
                errors.append(f"slas '{sla.id}': the tolerance is a company setting, not SOP: point tolerance.clause "
                              f"at a clause with source: {COMPANY} and a rationale (got '{sla.tolerance.clause}', "
                              f"source {self.clause(sla.tolerance.clause).source})")
        for t in self.tiers:
            need("clause", t.cadence_clause, clause_ids, f"tiers '{t.id}'")
        for product in self.products:
            need("clause", product.clause, clause_ids, f"products '{product.id}'")
        for s in self.stages:
            need("role", s.responsible_role, role_ids, f"stages '{s.id}'")
        for a in self.authority:
            need("role", a.role, role_ids, f"authority '{a.role}'")
            need("role", a.approver, role_ids, f"authority '{a.role}'")
        for template in self.templates:
            need("stage", template.used_at_stage, stage_ids, f"templates '{template.id}'")
        numbers: set[int] = set()
        for lesson in self.lessons:
            if lesson.number in numbers:
                errors.append(f"lessons '{lesson.id}': duplicate number {lesson.number}; number lessons 1, 2, 3 ...")
            numbers.add(lesson.number)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @cached_property
    def _hash(self) -> str:  # pragma: no cover - trivial
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def content_hash(self) -> str:
        """Return a SHA-256 of the playbook's content (identifies the version an attempt used)."""
        return self._hash


def _covers(limit: AuthorityLimit, amount: Decimal, discount: Decimal) -> bool:
    ok_amount = limit.max_quote_amount is None or amount <= limit.max_quote_amount
    ok_discount = limit.max_discount is None or discount <= limit.max_discount
    return ok_amount and ok_discount


def load_playbook(folder: Path | str) -> Playbook:
    """Load and validate every ``*.yaml`` file of a playbook folder.

    Parameters
    ----------
    folder : path-like
        The playbook folder (e.g. ``playbook/``).

    Returns
    -------
    Playbook
        The immutable model.

    Raises
    ------
    ContentError
        With every problem found (syntax, duplicate keys, unknown or missing fields, wrong types,
        broken references), each with file, line, column and field. While a file does not parse
        (or is not a mapping), no part is reported missing: the part may be in that file.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.yaml"))
    problems: list[Problem] = []
    parts: dict[str, Any] = {}
    owner: dict[str, Loaded] = {}
    if not files:
        raise_problems([Problem(str(folder), 0, 0, "", "no playbook files (*.yaml) in this folder")])
    unread = False  # a file that did not parse (or is not a mapping) may hold any part
    for f in files:
        doc = load_yaml(f)
        problems.extend(doc.problems)
        if doc.data is None:
            unread = unread or bool(doc.problems)
            continue
        if not isinstance(doc.data, dict):
            problems.append(doc.problem((), "a playbook file must be a mapping of parts"))
            unread = True
            continue
        for key, value in doc.data.items():
            if key not in PARTS:
                problems.append(doc.problem((key,), f"unknown part '{key}'; expected one of "
                                            f"{', '.join(PARTS)}"))
                continue
            if key in parts:
                problems.append(doc.problem((key,), f"part '{key}' is already defined in "
                                            f"{owner[key].path}; keep it in one file"))
                continue
            before = len(doc.problems)
            model = _part_model(key)
            value_ok = validate(model, doc, {key: value})
            problems.extend(doc.problems[before:])
            if value_ok is not None:
                parts[key] = getattr(value_ok, key)
                owner[key] = doc
    for key in PARTS:
        if key in OPTIONAL_PARTS or unread:  # a missing part is then a follow-on of the unread file
            continue
        if key not in parts and not any(p.field.startswith(key) for p in problems):
            problems.append(Problem(relpath(folder), 0, 0, key, f"part '{key}' is missing from the playbook"))
    raise_problems(problems)
    try:
        playbook = Playbook.model_validate(parts)
    except Exception as exc:  # cross-reference errors: locate them on the owning file
        if not isinstance(exc, ValidationError):
            raise
        out = []
        for err in exc.errors():
            for msg in str(err["msg"]).removeprefix("Value error, ").split("; "):
                part = msg.split(":", 1)[0].split(" ", 1)[0]
                owning = owner.get(part)
                where = owning.problem((part,), msg) if owning else Problem(str(folder), 0, 0, "", msg)
                out.append(_locate_ref(owning, where, msg))
        raise_problems(out)
        raise  # pragma: no cover
    raise_problems(_attach_lessons(playbook, folder, owner.get("lessons")))
    return playbook


def _attach_lessons(playbook: Playbook, folder: Path, doc: Loaded | None) -> list[Problem]:
    """Point each lesson at its notebook (``lessons/`` beside ``folder``); return a problem per missing notebook.

    A missing notebook is located at its lesson's ``notebook`` in ``lessons.yaml``. What a notebook
    says is checked by ``sopcoach check`` and when the lesson is shown, so one lesson's slip never
    stops the other lessons or the exam.
    """
    from ..lessons.notebook import lessons_folder  # noqa: PLC0415 - lessons.notebook imports this module
    where = lessons_folder(folder.resolve().parent)
    problems: list[Problem] = []
    for i, lesson in enumerate(playbook.lessons):
        lesson._folder = where
        if not lesson.path.is_file():
            msg = (f"lessons '{lesson.id}': no notebook {relpath(lesson.path)}; copy a lesson notebook of "
                   f"{relpath(where)} to that name, or set notebook: to a file there")
            problems.append(doc.problem(("lessons", i, "notebook"), msg) if doc else Problem(relpath(folder), 0, 0, "", msg))
    return problems


def _part_model(key: str) -> type[BaseModel]:
    fields: dict[str, Any] = {key: (PARTS[key], ...)}
    return create_model(f"Part_{key}", __config__=ConfigDict(extra="forbid"), **fields)


def _locate_ref(doc: Loaded | None, default: Problem, msg: str) -> Problem:
    """Point a cross-reference problem at the item it names (``part 'id'``), when found."""
    m = re.match(r"(\w+) '([^']*)'", msg)
    if not (doc and m):
        return default
    part, ident = m.groups()
    items = doc.data.get(part) if isinstance(doc.data, dict) else None
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict) and ident in (item.get("id"), item.get("role")):
                return doc.problem((part, i), msg)
    return default
