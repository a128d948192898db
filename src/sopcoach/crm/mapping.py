"""CRM mappings: the canonical fields of deals, events and leads, and the YAML files that map an export onto them.

A mapping (YAML; the built-in ones are in ``src/sopcoach/crm/mappings/``: ``maven``, ``salesforce``,
``zoho``, ``simulated``) says which file is which table, which column is which canonical field, the
declared date formats and time zone, and how the CRM's stage names map onto the playbook's stages.
:func:`load_mapping` validates one and reports every problem with its line (a
:class:`~sopcoach.errors.ContentError`); :mod:`sopcoach.crm.reading` reads an export with it.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..content.businesstime import check_timezone
from ..content.yaml_loader import Loaded, load_yaml, raise_problems, validate
from ..errors import ContentError, Problem

__all__ = ["BUILTIN_SOURCES", "EVENT_KINDS", "EVENT_STATUSES", "Mapping", "builtin_mapping_path", "load_mapping"]

EVENT_KINDS = ("stage_change", "call", "email", "meeting", "task")
#: what an activity's ``status`` maps onto: only ``done`` ones (or those without a status) count as held
EVENT_STATUSES = ("done", "planned", "cancelled")
OUTCOMES = ("won", "lost")
BUILTIN_SOURCES = ("maven", "salesforce", "zoho", "simulated")
EXCEL_SERIAL = "excel_serial"
EXCEL_SERIAL_RANGE = (20000, 80000)  # 1954-10-03 .. 2119-01-10

UTC = "UTC"

DEAL_COLUMNS = ["deal_id", "name", "owner", "account", "account_name", "tier", "product", "amount", "stage",
                "stage_raw", "outcome", "created", "closed", "team", "region", "role", "probability", "lost_reason",
                "source_file", "source_row"]
EVENT_COLUMNS = ["event_id", "deal_id", "account_id", "kind", "timestamp", "actor", "direction",
                 "stage", "stage_raw", "milestone", "subject", "end", "modified", "duration_s",
                 "amount", "discount", "approved_by", "status", "duplicate_of", "synthetic", "source_file",
                 "source_row"]
LEAD_COLUMNS = ["lead_id", "owner", "company", "status", "created", "converted", "converted_at",
                "deal_id", "source_file", "source_row"]

# Canonical fields per table kind: (type, required)
_TEXT, _DATE, _NUM, _BOOL = "text", "date", "number", "bool"
FIELDS: dict[str, dict[str, str]] = {
    "deals": {"deal_id": _TEXT, "name": _TEXT, "owner": _TEXT, "account": _TEXT, "account_name": _TEXT,
              "tier": _TEXT, "product": _TEXT,
              "amount": _NUM, "stage": _TEXT, "created": _DATE, "closed": _DATE, "team": _TEXT,
              "region": _TEXT, "probability": _NUM, "lost_reason": _TEXT},
    "events": {"event_id": _TEXT, "deal_id": _TEXT, "account_id": _TEXT, "kind": _TEXT,
               "timestamp": _DATE, "actor": _TEXT, "direction": _TEXT, "stage": _TEXT,
               "milestone": _TEXT, "subject": _TEXT, "end": _DATE, "modified": _DATE,
               "duration_s": _NUM, "amount": _NUM, "discount": _NUM, "approved_by": _TEXT,
               "status": _TEXT},
    "leads": {"lead_id": _TEXT, "owner": _TEXT, "company": _TEXT, "status": _TEXT,
              "created": _DATE, "converted": _BOOL, "converted_at": _DATE, "deal_id": _TEXT},
    "owners": {"owner": _TEXT, "team": _TEXT, "region": _TEXT, "role": _TEXT},
    "products": {"product": _TEXT},
    "accounts": {"account": _TEXT, "name": _TEXT, "tier": _TEXT},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "deals": (), "events": ("timestamp", "kind"), "leads": (), "owners": ("owner",),
    "products": ("product",), "accounts": ("account",),
}


# ------------------------------------------------------------------------------------ mapping


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldSpec(_Model):
    """Where one canonical field comes from: a column (or alternatives), or a constant ``value``.

    ``column`` may list several header names (aliases, e.g. ``[客户名称, Account Name]``); the first
    one present in the file is used. ``formats`` (date fields, required) lists ``strptime`` codes
    and/or ``excel_serial``; they are judged per column, never per row: one format that reads every
    value is used for all of them, several are used together only when no value is read by two as
    different instants, else the export is refused (see :mod:`sopcoach.crm.reading`). A format
    without a time of day reads days (placed at the day's first instant in the source's zone).
    ``values`` maps raw text onto canonical values (kinds, directions, milestones, booleans).
    ``percent: true`` reads ``12`` or ``12%`` as the fraction 0.12.
    """

    column: list[str] | None = None
    value: str | None = None
    formats: list[str] = Field(default_factory=list)
    values: dict[str, str] | None = None
    percent: bool = False

    @field_validator("column", mode="before")
    @classmethod
    def _one_or_more(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("percent", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.lower() in ("true", "yes"):
                return True
            if v.lower() in ("false", "no"):
                return False
        return v

    @model_validator(mode="after")
    def _source(self) -> FieldSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of 'column' (a header name) or 'value' (a constant)")
        if self.column is not None and not all(c.strip() for c in self.column):
            raise ValueError("column names must not be blank")
        for f in self.formats:
            if f != EXCEL_SERIAL and "%" not in f:
                raise ValueError(f"date format {f!r} is neither a strptime code such as '%Y-%m-%d' "
                                 f"nor '{EXCEL_SERIAL}'")
        return self


def _field_shorthand(v: Any) -> Any:
    """Accept ``field: Column Name`` for ``field: {column: Column Name}``."""
    if isinstance(v, dict):
        return {k: ({"column": x} if isinstance(x, (str, list)) else x) for k, x in v.items()}
    return v


class TableSpec(_Model):
    """One table of an export: which files hold it and where each canonical field comes from."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["deals", "events", "leads", "owners", "products", "accounts"]
    files: list[str] = Field(min_length=1)
    sheet: str | None = None
    fields: dict[str, FieldSpec]
    stage_dates: dict[str, FieldSpec] = Field(default_factory=dict)
    milestone_dates: dict[str, FieldSpec] = Field(default_factory=dict)

    @field_validator("fields", "stage_dates", "milestone_dates", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return _field_shorthand(v)

    @model_validator(mode="after")
    def _fields(self) -> TableSpec:
        allowed = FIELDS[self.kind]
        errors = []
        for name, spec in self.fields.items():
            if name not in allowed:
                errors.append(f"unknown field '{name}' for a {self.kind} table; known: {', '.join(allowed)}")
            elif allowed[name] == _DATE and spec.column is not None and not spec.formats:
                errors.append(f"date field '{name}' needs 'formats' (e.g. ['%Y-%m-%d']); sopcoach "
                              "never guesses a date format")
        for name in REQUIRED[self.kind]:
            if name not in self.fields:
                errors.append(f"a {self.kind} table needs the field '{name}'")
        for part in ("stage_dates", "milestone_dates"):
            specs = getattr(self, part)
            if specs and self.kind != "deals":
                errors.append(f"'{part}' is only for deals tables")
            for key, spec in specs.items():
                refers = spec.column is not None and len(spec.column) == 1 and spec.column[0] in self.fields
                if spec.column is not None and not spec.formats and not refers:
                    errors.append(f"{part}.{key} needs 'formats'; sopcoach never guesses a date format")
        if errors:
            raise ValueError("; ".join(errors))
        return self


#: what a declared delimiter, decimal mark or thousands separator must be, and how to write one
_MARKS: dict[str, tuple[Callable[[str], bool], str]] = {
    "delimiter": (lambda v: len(v) == 1 and v not in "\"\r\n",
                  "a field delimiter; write one character such as ';' or '\\t' (in double quotes)"),
    "decimal": (lambda v: v in (".", ","), "a decimal mark; write '.' or ','"),
    "thousands": (lambda v: len(v) == 1 and not v.isdigit(),
                  "a thousands separator; write one character such as ',' '.' or \"'\""),
}


class SourceSpec(_Model):
    """Facts about the export as a whole.

    ``encoding`` (a Python codec name such as ``cp1252`` or ``gbk``), ``delimiter`` (one character),
    ``decimal`` (``.`` or ``,``) and ``thousands`` (one character) are detected and reported when
    ``auto`` (see :mod:`sopcoach.crm.dialect`); a detection that cannot tell is refused and names
    the key to declare. ``max_file_mb`` caps a file's size and ``max_unpacked_mb`` an XLSX's
    unpacked parts (decimal megabytes).
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str
    timezone: str = UTC
    encoding: str = "auto"
    delimiter: str = "auto"
    currency: str | None = None
    thousands: str = "auto"
    decimal: str = "auto"
    default_role: str | None = None
    max_file_mb: float = Field(default=2000, gt=0)
    max_unpacked_mb: float = Field(default=500, gt=0)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        v = v.strip().lower()
        if v != "auto":
            try:
                text = getattr(codecs.lookup(v), "_is_text_encoding", True)  # not base64, rot13 ...
            except LookupError:
                text = False
            if not text:
                raise ValueError(f"{v!r} is not a known text encoding; write a Python codec name such as "
                                 "utf-8, cp1252, gb18030 or shift_jis, or auto")
        return v

    @field_validator("delimiter", "decimal", "thousands")
    @classmethod
    def _mark(cls, v: str, info: ValidationInfo) -> str:
        fits, what = _MARKS[info.field_name or ""]
        if v != "auto" and not fits(v):
            raise ValueError(f"{v!r} is not {what}, or auto")
        return v

    @model_validator(mode="after")
    def _separators(self) -> SourceSpec:
        if self.thousands == self.decimal != "auto":
            raise ValueError("thousands and decimal separators must differ")
        return self


class DeriveSpec(_Model):
    """How an SLA event is derived from the stage changes: ``{entered_stage: <playbook stage id>}``.

    The event happens when a deal's stage change first enters that playbook stage (only dated,
    recorded entries count; a stage only inferred from a later one gives no event). Used only when
    the export records no event of that name itself; every check using it says so (``inferred``).
    """

    entered_stage: str


class MappingSpec(_Model):
    """The whole mapping file: ``source``, ``stages``, ``tiers``, ``derive``, ``tables``.

    ``derive`` maps an SLA event name (``slas.yaml`` start/end events, e.g. ``quote_sent``) onto the
    stage entry that stands for it in this CRM (:class:`DeriveSpec`), e.g. Salesforce's
    ``Proposal/Price Quote`` stage is where the quote goes out: ``quote_sent: {entered_stage: quotation}``.
    """

    source: SourceSpec
    stages: dict[str, str] = Field(default_factory=dict)
    tiers: dict[str, str] = Field(default_factory=dict)
    derive: dict[str, DeriveSpec] = Field(default_factory=dict)
    tables: list[TableSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> MappingSpec:
        names = [t.name for t in self.tables]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"table names must be unique (repeated: {', '.join(dup)})")
        if not any(t.kind == "deals" for t in self.tables):
            raise ValueError("a mapping needs at least one table of kind 'deals'")
        return self


@dataclass(frozen=True)
class Mapping:
    """A validated mapping plus the file it came from (for locating problems)."""

    spec: MappingSpec
    path: str
    doc: Loaded

    @property
    def id(self) -> str:
        return self.spec.source.id

    def mark(self, *loc: Any) -> tuple[int, int]:
        """Return the (line, column) of a key path in the mapping file."""
        return self.doc.mark(loc)

    def table_index(self, name: str) -> int:
        return [t.name for t in self.spec.tables].index(name)


def builtin_mapping_path(name: str) -> Path:
    """Return the path of a built-in mapping (``maven``, ``salesforce``, ``zoho``, ``simulated``).

    Raises
    ------
    KeyError
        When ``name`` is not a built-in source.
    """
    if name not in BUILTIN_SOURCES:
        raise KeyError(f"unknown source {name!r}; built-in sources: {', '.join(BUILTIN_SOURCES)}")
    return Path(str(resources.files("sopcoach.crm") / "mappings" / f"{name}.yaml"))


def load_mapping(source: str | Path | Mapping, playbook: Any = None) -> Mapping:
    """Load and validate a mapping, by built-in name or from a YAML file.

    Parameters
    ----------
    source : str, path-like or Mapping
        ``maven``, ``salesforce``, ``zoho``, ``simulated``, or a path to a mapping YAML file.
    playbook : Playbook, optional
        When given, stage targets must be playbook stage ids (or ``won``/``lost``), tier targets
        playbook tier ids, milestone values SLA event names of the playbook.

    Returns
    -------
    Mapping

    Raises
    ------
    ContentError
        With every problem (YAML syntax, duplicate keys, unknown fields, missing date formats,
        targets unknown to the playbook), each with file, line and field.

    Examples
    --------
    >>> load_mapping("maven").spec.stages["Won"]
    'won'
    """
    if isinstance(source, Mapping):
        mapping = source
    else:
        name = str(source).strip().lower()  # "Maven" names the built-in mapping too
        path = builtin_mapping_path(name) if name in BUILTIN_SOURCES else Path(source)
        if not path.is_file():
            raise ContentError([Problem(str(source), 0, 0, "", "no such mapping file; give a path to a "
                                        f"mapping YAML or one of {', '.join(BUILTIN_SOURCES)}")])
        doc = load_yaml(path)
        if doc.data is not None and not doc.problems:
            spec = validate(MappingSpec, doc)
        else:
            spec = None
        if doc.data is None and not doc.problems:
            doc.problems.append(doc.problem((), "the mapping file is empty"))
        raise_problems(doc.problems)
        mapping = Mapping(spec, doc.path, doc)  # type: ignore[arg-type]
    if playbook is not None:
        raise_problems(_check_against_playbook(mapping, playbook))
    return mapping


def _check_against_playbook(m: Mapping, playbook: Any) -> list[Problem]:
    problems = []
    stage_ids = [s.id for s in playbook.stages]
    targets = set(stage_ids) | set(OUTCOMES)
    for raw, target in m.spec.stages.items():
        if target not in targets:
            problems.append(m.doc.problem(("stages", raw), f"'{target}' is not a playbook stage; use one of "
                                          f"{', '.join(stage_ids)}, won, lost"))
    tiers = {t.id for t in playbook.tiers}
    for raw, target in m.spec.tiers.items():
        if target not in tiers:
            problems.append(m.doc.problem(("tiers", raw), f"'{target}' is not a playbook tier; use one of "
                                          f"{', '.join(sorted(tiers))}"))
    sla_events = {e for s in playbook.slas for e in (s.start_event, s.end_event)}
    for event, how in m.spec.derive.items():
        if event not in sla_events:
            problems.append(m.doc.problem(("derive", event), f"'{event}' is not an SLA event of the playbook; "
                                          f"use one of {', '.join(sorted(sla_events))}"))
        if how.entered_stage not in stage_ids:
            problems.append(m.doc.problem(("derive", event, "entered_stage"),
                                          f"'{how.entered_stage}' is not a playbook stage; use one of "
                                          f"{', '.join(stage_ids)}"))
    for i, t in enumerate(m.spec.tables):
        for name in t.stage_dates:
            if name not in stage_ids:
                problems.append(m.doc.problem(("tables", i, "stage_dates", name),
                                              f"'{name}' is not a playbook stage; use one of {', '.join(stage_ids)}"))
        for name in t.milestone_dates:
            if name not in sla_events:
                problems.append(m.doc.problem(("tables", i, "milestone_dates", name),
                                              f"'{name}' is not an SLA event of the playbook; use one of "
                                              f"{', '.join(sorted(sla_events))}"))
        spec = t.fields.get("milestone")
        if spec is not None:
            for raw, target in (spec.values or {}).items():
                if target not in sla_events:
                    problems.append(m.doc.problem(("tables", i, "fields", "milestone", "values", raw),
                                                  f"'{target}' is not an SLA event of the playbook; use one "
                                                  f"of {', '.join(sorted(sla_events))}"))
            if spec.value is not None and spec.value not in sla_events:
                problems.append(m.doc.problem(("tables", i, "fields", "milestone", "value"),
                                              f"'{spec.value}' is not an SLA event of the playbook"))
        status = t.fields.get("status")
        if status is not None:
            for raw, target in ((status.values or {}).items() if status.value is None else [("value", status.value)]):
                if target not in EVENT_STATUSES:
                    problems.append(m.doc.problem(("tables", i, "fields", "status"),
                                                  f"'{target}' (for '{raw}') is not an activity status; use one of "
                                                  f"{', '.join(EVENT_STATUSES)}"))
        kind = t.fields.get("kind")
        if kind is not None:
            bad = [v for v in ([kind.value] if kind.value else list((kind.values or {}).values()))
                   if v not in EVENT_KINDS]
            for v in bad:
                problems.append(m.doc.problem(("tables", i, "fields", "kind"),
                                              f"'{v}' is not an event kind; use one of {', '.join(EVENT_KINDS)}"))
    return problems
