"""Playbook versions: releases, clause hashes, diffs, impact, needs-review and recertification.

Trainers change the playbook as the monthly reviews teach them (seed:3.3.2, seed:4.2.1,
seed:4.2.2). This module makes such a change safe:

* :func:`clause_hashes` gives every clause a content hash of what learners and answer keys depend
  on: the clause itself (title, text, source, rationale, retired) and every structured value that
  names it with ``clause:`` (roles, stages with their position, steps, authority limits, SLAs,
  tiers, KPIs, templates, confidentiality rules, the calendar). A tier's classification fields
  belong to its ``clause``, its weekly follow-up minimum to its ``cadence_clause``, its size
  thresholds to :data:`TIER_THRESHOLDS_CLAUSE` (``tier-thresholds``). Products name
  no clause; they belong to the clause in :data:`UNLINKED_PARTS` (``product-catalogue``). Lessons
  and the ``sop`` header are not clause content.
* :func:`release` (``sopcoach release``) records a version in the records database: a label,
  the per-clause hashes and a snapshot of the YAML files. Every question that examines a clause
  whose hash changed since the previous release is marked *needs review* and left out of the exam
  draw until a trainer confirms it (:func:`confirm`, ``sopcoach review --confirm QID``). A release
  is refused (:class:`StaleQuotes`) while a text still quotes a value changed since the previous
  release (:func:`stale_quotes`: ``24小时`` after the e-mail SLA became 48 hours), unless the
  trainer confirms those quotes; the confirmation (who, which quotes) is recorded with the release.
* :func:`diff_playbook` compares the playbook on disk with the last release, clause by clause
  (field paths with old and new values) and file by file (unified diffs that keep comments);
  :func:`impact` lists, for each changed clause, the questions, lessons, compliance checks and
  KPIs that use it.
* :func:`recertification_list` names the certified people whose certificate covered a clause that
  changed since the release it was issued on; :func:`sopcoach.certification.exam.recertification_exam` builds the
  short exam on just those clauses.
* :func:`set_sop_version` writes ``sop.version`` back into the YAML through the one YAML writer
  (:mod:`sopcoach.authoring.yaml_writer`: lock, backup, atomic round trip), keeping the trainer's comments,
  quoting and key order.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from collections.abc import Collection, Iterable

from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from ..certification.certificates import certificate_changes
from ..config import settings
from ..errors import StaleQuotes, VersionError
from ..i18n import Text, t
from ..records.models import QuestionReview, Release, from_db, to_db, utcnow
from ..records.store import Records, Transaction
from .yaml_writer import update_yaml

#: Parts whose items name no clause, and the clause they belong to.
UNLINKED_PARTS: dict[str, str] = {"products": "product-catalogue"}

#: The company-setting clause of the tiers' size thresholds (``min_annual_revenue``,
#: ``min_employees``); without it they belong to the tier's classification clause.
TIER_THRESHOLDS_CLAUSE = "tier-thresholds"

#: Parts whose items carry ``clause:`` (dumped whole into that clause's content).
_CLAUSE_PARTS = ("roles", "steps", "authority", "slas", "kpis", "templates", "confidentiality")

NEEDS_REVIEW = "needs_review"
CONFIRMED = "confirmed"


# -- clause content and hashes ----------------------------------------------------------------------
#: Optional fields that playbook items gained after releases and certificates were recorded (the
#: provenance of :class:`~sopcoach.content.playbook.Sourced`, a product's ``clause``): hashed only when set, so an item that
#: does not state them hashes as before they existed, and upgrading sopcoach does not mark every
#: clause changed (every question due for review, every certificate due for recertification).
HASHED_WHEN_SET = frozenset({"source", "elaborates", "rationale", "clause"})


def _dump(model: Any, exclude: set[str] | None = None) -> dict[str, Any]:
    """Dump a playbook item for hashing, leaving out :data:`HASHED_WHEN_SET` fields that are unset."""
    out = model.model_dump(mode="json", by_alias=True, exclude=exclude)
    return {k: v for k, v in out.items() if v is not None or k not in HASHED_WHEN_SET}


def clause_contents(playbook: Any) -> dict[str, dict[str, Any]]:
    """Return, per clause id, the content its hash covers (JSON-ready, authored order kept).

    Parameters
    ----------
    playbook : Playbook

    Returns
    -------
    dict
        ``{clause_id: {"clause": {...}, "slas": [...], "stages": [...], ...}}``; a part appears
        only when some of its items name the clause.

    Examples
    --------
    >>> from sopcoach.config import PROJECT_ROOT
    >>> from sopcoach.content.playbook import load_playbook
    >>> pb = load_playbook(PROJECT_ROOT / "playbook")
    >>> sorted(clause_contents(pb)["quote-limits"])
    ['authority', 'clause', 'roles']
    """
    # a clause dumps whole: its source and rationale were hashed (None included) from the first release
    out: dict[str, dict[str, Any]] = {c.id: {"clause": c.model_dump(mode="json", by_alias=True)}
                                      for c in playbook.clauses}

    def add(clause_id: str, part: str, value: dict[str, Any]) -> None:
        if clause_id in out:  # the model validates references; a retired id still has an entry
            out[clause_id].setdefault(part, []).append(value)

    for position, stage in enumerate(playbook.stages, 1):
        add(stage.clause, "stages", {"position": position, **_dump(stage)})
    for part in _CLAUSE_PARTS:
        for item in getattr(playbook, part):
            add(item.clause, part, _dump(item))
    split = TIER_THRESHOLDS_CLAUSE in out
    thresholds = {"min_annual_revenue", "min_employees"}
    for tier in playbook.tiers:
        dumped = _dump(tier)
        add(tier.clause, "tiers", {k: v for k, v in dumped.items() if k not in
                                   {"min_weekly_follow_ups", "cadence_clause"} | (thresholds if split else set())})
        add(tier.cadence_clause, "tiers.cadence",
            {"id": tier.id, "name": dumped["name"], "min_weekly_follow_ups": tier.min_weekly_follow_ups})
        if split:
            add(TIER_THRESHOLDS_CLAUSE, "tiers.thresholds",
                {"id": tier.id, **{k: dumped[k] for k in sorted(thresholds)}})
    add(playbook.calendar.clause, "calendar", _dump(playbook.calendar))
    for part, clause_id in UNLINKED_PARTS.items():
        for item in getattr(playbook, part, []):
            add(clause_id, part, _dump(item))
    return out


def content_hash(content: Any) -> str:
    """Return the SHA-256 (hex) of ``content`` as canonical JSON (sorted keys, UTF-8).

    >>> content_hash({"b": 1, "a": "规程"}) == content_hash({"a": "规程", "b": 1})
    True
    """
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clause_hashes(playbook: Any) -> dict[str, str]:
    """Return ``{clause_id: content hash}`` for every clause (see :func:`clause_contents`)."""
    return {cid: content_hash(c) for cid, c in clause_contents(playbook).items()}


def playbook_files(folder: Path | str) -> dict[str, str]:
    """Return the text of every ``*.yaml`` file of a playbook folder, by file name."""
    return {p.name: p.read_text(encoding="utf-8-sig") for p in sorted(Path(folder).glob("*.yaml"))}


# -- releases -------------------------------------------------------------------------------------------
def releases(records: Records) -> list[Release]:
    """Return every release, oldest first."""
    return records.releases()


def latest_release(records: Records) -> Release | None:
    """Return the newest release (the version in force), or ``None`` before the first one."""
    return records.latest_release()


@dataclass(frozen=True)
class ReleaseOutcome:
    """What :func:`release` recorded.

    ``changed`` are the clause ids whose hash differs from the previous release (added, removed or
    changed); ``flagged`` the question ids marked needs-review because they examine one of them.
    """

    release_id: int
    label: str
    previous: str | None
    changed: tuple[str, ...]
    flagged: tuple[str, ...]
    confirmed_quotes: tuple[StaleQuote, ...] = ()


def release(records: Records, playbook: Any, bank: Any, folder: Path | str, label: str | None = None,
            note: str = "", by: str = "", now: datetime | None = None,
            confirm_quotes: bool | Collection[StaleQuote] = False, lang: str | None = None) -> ReleaseOutcome:
    """Record the playbook as a released version and mark affected questions needs-review.

    Parameters
    ----------
    records : Records
    playbook : Playbook
        The playbook loaded from ``folder`` (validated: release only content ``check`` accepts).
    bank : Bank
        The certification bank; questions whose ``clauses`` meet a changed clause are flagged.
    folder : path-like
        The playbook folder, snapshot for later diffs (comments included).
    label : str, optional
        The release label (default ``playbook.sop.version``); unique across releases.
    note, by : str
        Free text stored with the release (what changed and why; who released it).
    now : datetime, optional
        Aware UTC time of the release (default: now).
    confirm_quotes : bool or collection of StaleQuote
        The trainer's confirmation that texts may keep quoting a changed value
        (:func:`stale_quotes`): ``True`` confirms every one found, a collection exactly those (a quote
        found but not in it refuses the release). Recorded with the release as
        ``snapshot["quotes_confirmed"]``: ``{"by": by, "quotes": [StaleQuote.record(), ...]}``.
    lang : str, optional
        Language of the clause titles in a refusal.

    Returns
    -------
    ReleaseOutcome

    Raises
    ------
    StaleQuotes
        When a text still quotes a value changed since the last release and the trainer did not
        confirm it (``quotes`` lists every one; nothing is recorded).
    VersionError
        When the label is already used, nothing changed since the last release, or quotes are
        confirmed without ``by`` (the release records who confirmed).
    """
    now = now or utcnow()
    label = (label or playbook.sop.version).strip()
    if not label:
        raise VersionError("a release needs a label; set sop.version in playbook/sop.yaml or pass --label")
    contents = clause_contents(playbook)
    hashes = {cid: content_hash(c) for cid, c in contents.items()}
    files = playbook_files(folder)
    pb_hash = playbook.content_hash()

    def do(tx: Transaction) -> ReleaseOutcome:
        last = tx.latest_release()
        used = tx.release_labelled(label)
        if used is not None:
            raise VersionError(
                f"release label '{label}' is already used (release {used.id} of "
                f"{from_db(used.created_at):%Y-%m-%d}); raise sop.version in playbook/sop.yaml or run "
                "`sopcoach release --label NEW`, which writes the new label there")
        if last is not None and last.playbook_hash == pb_hash and last.snapshot.get("files") == files:
            raise VersionError(f"nothing changed since release '{last.label}'")
        changed = sorted(changed_clauses(last.clause_hashes, hashes)) if last is not None else []
        stale = stale_quotes(last, playbook, lang)
        confirmed = set(stale) if confirm_quotes is True else set(confirm_quotes or ())
        if any(q not in confirmed for q in stale):
            raise StaleQuotes(stale, lang)
        snapshot: dict[str, Any] = {"files": files, "clauses": contents, "sop_version": playbook.sop.version}
        if stale:
            if not by.strip():
                raise VersionError("confirming quotes of changed values needs the name of who confirms "
                                   "(`sopcoach release --confirm-quotes --by NAME`); nothing was released")
            snapshot["quotes_confirmed"] = {"by": by, "quotes": [q.record() for q in stale]}
        row = Release(label=label, created_at=to_db(now), created_by=by, note=note, playbook_hash=pb_hash,
                      clause_hashes=hashes, changed=changed, snapshot=snapshot)
        tx.add(row)
        tx.flush()
        flagged = []
        for q in bank.questions.values():
            hit = [c for c in q.clauses if c in set(changed)]
            if hit:
                tx.add(QuestionReview(question_id=q.id, release_id=row.id, clauses=hit, status=NEEDS_REVIEW,
                                     flagged_at=to_db(now)))
                flagged.append(q.id)
        return ReleaseOutcome(row.id, label, last.label if last else None, tuple(changed), tuple(flagged),
                              tuple(stale))
    return records.transaction(do)


def next_label(label: str) -> str:
    """Suggest the label after ``label``: its last number plus one.

    >>> next_label("1.0"), next_label("2025.9"), next_label("v2"), next_label("draft")
    ('1.1', '2025.10', 'v3', 'draft.1')
    """
    m = re.search(r"(\d+)(\D*)$", label)
    if not m:
        return f"{label}.1"
    return f"{label[:m.start(1)]}{int(m.group(1)) + 1}{m.group(2)}"


def changed_clauses(old: dict[str, str], new: dict[str, str]) -> set[str]:
    """Return the clause ids added, removed or changed between two hash maps.

    >>> sorted(changed_clauses({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"}))
    ['b', 'c', 'd']
    """
    return {c for c in set(old) | set(new) if old.get(c) != new.get(c)}


def set_sop_version(folder: Path | str, label: str, home: Path | str | None = None, by: str = "") -> Path:
    """Write ``sop.version: "<label>"`` into the playbook file that holds the ``sop`` part.

    The file goes through the one YAML writer (:func:`sopcoach.authoring.yaml_writer.update_yaml`): under the
    installation's write lock, after a backup of the playbook folder in
    ``$SOPCOACH_HOME/playbook-history/<id>/`` (kind ``release``), atomically, with ruamel.yaml's round
    trip: comments, blank lines, key order and the quoting of every other value stay as the trainer
    wrote them; the version is written quoted (it is text: ``1.10`` must not become the number 1.1).

    Parameters
    ----------
    folder : path-like
        The playbook folder (``<content>/playbook``).
    label : str
        The version label.
    home : path-like, optional
        ``SOPCOACH_HOME`` (lock and backups); default: the data home
        :func:`sopcoach.config.settings` resolves for the content folder ``folder/..``.
    by : str
        Who writes (kept in the backup's manifest).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    VersionError
        When no playbook file holds a ``sop:`` part.
    """
    folder = Path(folder)
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text(encoding="utf-8-sig")
        if not any(line.startswith("sop:") for line in text.splitlines()):
            continue

        def edit(doc: Any) -> None:
            doc["sop"]["version"] = DoubleQuotedScalarString(label)

        where = settings(folder.parent).home if home is None else home
        update_yaml(path, where, edit, "release", note=f"before sop.version {label}", by=by)
        return path
    raise VersionError(f"no playbook file in {folder} holds the 'sop' part")


# -- diff ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldChange:
    """One changed value: ``path`` inside the clause content (``slas[first-reply].limit.value``)."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ClauseChange:
    """A clause added, removed or changed since the base release, with its changed fields."""

    clause_id: str
    kind: str  # "added" | "removed" | "changed"
    source: str
    title: str
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class PlaybookDiff:
    """The playbook on disk against a release.

    ``base`` is the release compared with (``None`` before the first release: then nothing is
    listed); ``changes`` the changed clauses in playbook order; ``file_diffs`` a unified diff per
    YAML file that differs (comments included); ``version`` the ``(released, on disk)`` labels.
    """

    base_label: str | None
    base_created_at: datetime | None
    changes: tuple[ClauseChange, ...]
    file_diffs: dict[str, str] = field(default_factory=dict)
    version: tuple[str | None, str] = (None, "")

    @property
    def changed_ids(self) -> list[str]:
        return [c.clause_id for c in self.changes]

    @property
    def requoted(self) -> list[ClauseChange]:
        """Clauses that claim to quote the SOP (``source: seed:N``) and whose text changed.

        Their text no longer quotes the SOP word for word unless the SOP itself changed; the fix is
        to keep the SOP's words, or to make the clause a company setting with a rationale.
        """
        return [c for c in self.changes if c.kind == "changed" and c.source.startswith("seed:")
                and any(f.path.startswith("clause.text.") for f in c.fields)]

    def requote_notes(self, lang: str | None = None) -> list[str]:
        """Say, per :attr:`requoted` clause, that its text no longer quotes the SOP and what to do."""
        return [t(f"条款 {ch.clause_id} 引用 SOP 原文（{ch.source}），但正文已修改：若 SOP 本身未改，"
                  "请恢复原话，或把条款改为公司设定（source: company-setting，写明 rationale）。",
                  f"clause {ch.clause_id} quotes the SOP ({ch.source}) but its text changed: unless the SOP "
                  "itself changed, restore the SOP's words, or make the clause a company setting "
                  "(source: company-setting with a rationale).", lang) for ch in self.requoted]

    def text(self, lang: str | None = None) -> str:
        """Return the diff as readable text lines (what ``sopcoach diff`` prints)."""
        if self.base_label is None:
            return t("尚无发布版本：运行 sopcoach release 记录第一个版本。",
                     "No release yet: run `sopcoach release` to record the first version.", lang)
        head = t(f"与发布版本 {self.base_label}（{self.base_created_at:%Y-%m-%d}）相比：",
                 f"Changes since release {self.base_label} ({self.base_created_at:%Y-%m-%d}):", lang)
        lines = [head]
        if self.version[0] != self.version[1]:
            lines.append(f"  sop.version: {self.version[0]} -> {self.version[1]}")
        if not self.changes:
            lines.append(t("  没有条款变化。", "  no clause changed.", lang))
        lines.extend(f"! {note}" for note in self.requote_notes(lang))
        mark = {"added": "+", "removed": "-", "changed": "~"}
        for ch in self.changes:
            lines.append(f"{mark[ch.kind]} {ch.clause_id} ({ch.source}) {ch.title}")
            for f in ch.fields:
                old, new = _show(f.old), _show(f.new)
                if len(old) + len(new) > 100 or "\n" in old + new:
                    lines.append(f"    {f.path}:")
                    if f.old is not None:
                        lines.extend(f"      - {x}" for x in old.splitlines())
                    if f.new is not None:
                        lines.extend(f"      + {x}" for x in new.splitlines())
                else:
                    lines.append(f"    {f.path}: {old} -> {new}")
        return "\n".join(lines)


def _show(v: Any) -> str:
    return "(none)" if v is None else str(v)


def _flatten(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            key = (v.get("id") or v.get("role")) if isinstance(v, dict) else None
            _flatten(v, f"{path}[{key if key is not None else i}]", out)
    else:
        out[path] = value
    return out


def _field_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> tuple[FieldChange, ...]:
    a = _flatten(old or {}, "", {})
    b = _flatten(new or {}, "", {})
    paths = list(b) + [p for p in a if p not in b]
    return tuple(FieldChange(p, a.get(p), b.get(p)) for p in paths if a.get(p) != b.get(p))


def diff_playbook(base: Release | None, playbook: Any, files: dict[str, str] | None = None,
                  lang: str | None = None) -> PlaybookDiff:
    """Compare ``playbook`` (and its YAML ``files``) with the release ``base``.

    Parameters
    ----------
    base : Release or None
        Usually :func:`latest_release`.
    playbook : Playbook
    files : dict, optional
        ``{file name: text}`` of the playbook on disk (:func:`playbook_files`) for the file diffs.
    lang : str, optional
        Language of the clause titles.

    Returns
    -------
    PlaybookDiff
    """
    if base is None:
        return PlaybookDiff(None, None, (), {}, (None, playbook.sop.version))
    old = base.snapshot.get("clauses", {})
    new = clause_contents(playbook)
    order = [c.id for c in playbook.clauses] + [c for c in old if c not in new]
    changes = []
    for cid in order:
        a, b = old.get(cid), new.get(cid)
        if a == b:
            continue
        kind = "added" if a is None else "removed" if b is None else "changed"
        clause = (b or a)["clause"]
        title = Text.model_validate(clause["title"]).get(lang)
        changes.append(ClauseChange(cid, kind, clause["source"], title, _field_changes(a, b)))
    file_diffs = {}
    old_files = base.snapshot.get("files", {})
    for name in sorted(set(old_files) | set(files or {})):
        if files is None:
            break
        x, y = old_files.get(name, ""), files.get(name, "")
        if x != y:
            file_diffs[name] = "".join(difflib.unified_diff(
                x.splitlines(keepends=True), y.splitlines(keepends=True),
                fromfile=f"{base.label}/{name}", tofile=f"playbook/{name}"))
    return PlaybookDiff(base.label, from_db(base.created_at), tuple(changes), file_diffs,
                        (base.snapshot.get("sop_version", base.label), playbook.sop.version))


# -- stale quotes ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StaleQuote:
    """A text that still quotes a value changed since the base release.

    ``clause_id``/``title`` name the clause holding the text, ``where`` the text inside it
    (``text``: the clause's own text; ``tiers[A].criteria``: a text of a value it owns), ``lang``
    its language (``zh-CN`` or ``en``), ``quoted`` the old value as written there (``100,000元``)
    and ``excerpt`` the words around it. ``path`` is the changed field (``authority[sales_rep].
    max_quote_amount``) in clause ``changed_clause``; ``old`` and ``new`` its values (an SLA limit
    as ``"24 elapsed_hours"``).
    """

    clause_id: str
    title: str
    where: str
    lang: str
    quoted: str
    excerpt: str
    path: str
    changed_clause: str
    old: Any
    new: Any

    def text(self, lang: str | None = None) -> str:
        """Return one line naming the clause, the language, the old value in context and the new value."""
        where = t("正文", "text", lang) if self.where == "text" else self.where
        return t(f"条款 {self.clause_id}「{self.title}」{where}({self.lang})仍写着 {self.quoted}:"
                 f"“{self.excerpt}”;{self.path} 已从 {_show(self.old)} 改为 {_show(self.new)}",
                 f"clause {self.clause_id} ({self.title}), {where} ({self.lang}), still says {self.quoted}: "
                 f"\"{self.excerpt}\"; {self.path} changed from {_show(self.old)} to {_show(self.new)}", lang)

    def record(self) -> dict[str, Any]:
        """Return the quote as JSON-ready data (what a confirmed release stores)."""
        return {"clause": self.clause_id, "where": self.where, "lang": self.lang, "quoted": self.quoted,
                "excerpt": self.excerpt, "path": self.path, "old": self.old, "new": self.new}


#: How a changed value is written in a text, per field (the last key of its path): a function of
#: the value (and the SLA's unit) giving regular expressions; fields not listed are not looked for.
_NUM = r"(?<![\d.,:])(?:{})(?![\d]|[.,:]\d)"
_SLA_UNITS = {
    "elapsed_hours": (r"\s*(?:个)?小时", r"[\s-]*(?:elapsed[\s-])?hours?\b"),
    "business_hours": (r"\s*(?:个)?工作小时", r"[\s-]*(?:business|working)[\s-]hours?\b"),
    "working_days": (r"\s*(?:个)?工作日", r"[\s-]*(?:working|business)[\s-]days?\b|\s*workdays?\b"),
    "calendar_days": (r"\s*(?:个)?(?:自然日|天)", r"[\s-]*(?:calendar[\s-])?days?\b"),
}


def _numbers(value: Decimal) -> list[str]:
    """The digit forms of ``value``: ``24``; ``100000`` and ``100,000``; ``2.5``."""
    plain = format(value.normalize(), "f")
    forms = [plain]
    if value == value.to_integral_value() and abs(value) >= 1000:
        forms.append(f"{int(value):,}")
    return forms


def _num(value: Decimal) -> str:
    return _NUM.format("|".join(re.escape(f) for f in _numbers(value)))


def _quote_patterns(field_name: str, value: Any, unit: str | None) -> list[str]:
    """Return the regular expressions that find ``value`` of ``field_name`` written in a text."""
    if field_name in ("day_start", "day_end") and isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        h, m = value.split(":")
        return [rf"(?<![\d:])0?{int(h)}:{m}(?![\d:])"]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return []
    try:
        d = Decimal(str(value))
    except ArithmeticError:
        return []
    if not d.is_finite():
        return []
    if field_name == "value" and unit in _SLA_UNITS:
        return [_num(d) + u for u in _SLA_UNITS[unit]]
    if field_name == "max_discount" or (field_name == "target" and unit == "fraction"):
        pct = _num((d * 100).normalize())
        return [pct + r"\s*[%％]", pct + r"\s*percent\b", rf"百分之{pct}"]
    if field_name in ("max_quote_amount", "min_annual_revenue"):
        out = [_num(d) + r"\s*(?:元|CNY\b|RMB\b|yuan\b)"]
        if d % 10000 == 0:
            out.append(_num(d / 10000) + r"\s*万")
        if d % 100000 == 0:
            out.append(_num(d / 1000000) + r"\s*million\b")
        return out
    if field_name == "min_employees":
        return [_num(d) + r"\s*(?:名)?(?:人|员工)", _num(d) + r"\s+(?:employees|staff|people)\b"]
    if field_name == "min_weekly_follow_ups":
        out = [_num(d) + r"\s*次", _num(d) + r"\s+(?:times|follow-ups?)\b", _num(d) + r"\s+(?:a|per)\s+week\b"]
        words = {1: "once", 2: "twice"}
        if d in words:
            out.append(rf"\b{words[int(d)]}\s+(?:a|per|every)\s+week\b")
        return out
    return []


def _quoted_value(flat: dict[str, Any], path: str) -> tuple[str, Any, list[str]] | None:
    """Return ``(value path, shown value, patterns)`` of the value at ``path``, or ``None``.

    An SLA limit is its value with its unit (``24 elapsed_hours``), so a change of either quotes
    the old pair.
    """
    base = re.sub(r"\.limit\.unit$", ".limit.value", path)
    field_name = base.rsplit(".", 1)[-1]
    value = flat.get(base)
    if value is None:
        return None
    unit = None
    if base.endswith(".limit.value"):
        unit = flat.get(base[: -len("value")] + "unit")
    elif field_name == "target":
        unit = flat.get(base[: -len("target")] + "unit")
    patterns = _quote_patterns(field_name, value, unit)
    if not patterns:
        return None
    shown = _plain(value)
    return base, f"{shown} {unit}" if base.endswith(".limit.value") and unit else shown, patterns


def _plain(value: Any) -> Any:
    """Return a number as its shortest text (``"0.10"`` -> ``"0.1"``); other values unchanged."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except ArithmeticError:
        return value


def _item(path: str) -> tuple[str, str] | None:
    """Return ``(part, item id)`` of a value path: ``tiers.cadence[A].x`` -> ``("tiers", "A")``."""
    m = re.match(r"([a-z_]+)(?:\.[a-z_.]+)?\[([^\]]+)\]", path)
    return (m.group(1), m.group(2)) if m else None


def _excerpt(text: str, start: int, end: int, width: int = 24) -> str:
    lo, hi = max(0, start - width), min(len(text), end + width)
    piece = " ".join(text[lo:hi].split())
    return ("…" if lo else "") + piece + ("…" if hi < len(text) else "")


def stale_quotes(base: Release | Any | None, playbook: Any, lang: str | None = None) -> list[StaleQuote]:
    """Return the texts that still quote a value changed since the release ``base``.

    A value counts when trainers write it in prose with its unit: SLA limits (``24小时``,
    ``24 hours``, ``2个工作日``, ``8 business hours``), quote amounts and revenue thresholds
    (``100,000元``, ``500,000 CNY``, ``5,000万元``, ``50 million``), discounts and fraction KPI
    targets (``10%``), employee thresholds (``500人``), weekly follow-ups (``3次``, ``3 times``,
    ``once a week``) and business hours (``18:00``). A digit inside a longer number, a decimal or
    a time (``24`` in ``240``, ``2.4`` or ``12:24``) is not a quote. The texts searched are, in
    zh-CN and en, those of every clause holding the same item as the changed value (the tier A
    cadence: ``follow-up-frequency``, ``customer-classification``, ``tier-thresholds``) and that
    item's own texts (a tier's ``criteria``); retired clauses are not searched. An old value still in force for another item of the
    same kind in those clauses (the account manager's 15% when the representative's 10% became
    15%) is not reported: the text may quote that one.

    Company-setting clauses repeat the values they set (``playbook/clauses.yaml``); seed clauses
    quote the source's (seed:1.2.1, seed:1.2.2, seed:3.1.2).

    Parameters
    ----------
    base : Release or None
        The release compared with (usually :func:`latest_release`); ``None``: nothing is stale.
    playbook : Playbook
        The playbook to release.
    lang : str, optional
        Language of the clause titles.

    Returns
    -------
    list of StaleQuote
        In playbook order of the changed clauses, then field order; empty when every text follows.

    Examples
    --------
    >>> from sopcoach.config import PROJECT_ROOT
    >>> from sopcoach.content.playbook import load_playbook
    >>> pb = load_playbook(PROJECT_ROOT / "playbook")
    >>> from decimal import Decimal
    >>> base = type("Base", (), {"snapshot": {"clauses": clause_contents(pb)}})()  # shaped like a Release
    >>> raised = pb.model_copy(update={"authority": [a.model_copy(update={"max_discount": Decimal("0.12")})
    ...     if a.role == "sales_rep" else a for a in pb.authority]})
    >>> [(q.clause_id, q.lang, q.quoted) for q in stale_quotes(base, raised, "en")]
    [('quote-limits', 'zh-CN', '10%'), ('quote-limits', 'en', '10%')]
    """
    if base is None:
        return []
    old_contents: dict[str, Any] = base.snapshot.get("clauses", {})
    flat_new = {cid: _flatten(c, "", {}) for cid, c in clause_contents(playbook).items()}
    titles = {c.id: c.title.get(lang) for c in playbook.clauses if not c.retired}  # retired texts are not shown
    found: dict[tuple[str, str, str, str, str], StaleQuote] = {}
    for cid in flat_new:
        old, here = old_contents.get(cid), flat_new[cid]
        if old is None:
            continue
        flat_old = _flatten(old, "", {})
        for path in dict.fromkeys(p for p in list(here) + list(flat_old) if here.get(p) != flat_old.get(p)):
            was, now, item = _quoted_value(flat_old, path), _quoted_value(here, path), _item(path)
            if was is None or item is None or (now is not None and now[1] == was[1]):
                continue
            value_path, old_shown, patterns = was
            same_item = re.compile(rf"{re.escape(item[0])}(?:\.[a-z_.]+)?\[{re.escape(item[1])}\]\.")
            holders = [x for x in titles if any(same_item.match(p) for p in flat_new[x])]
            if item[0] == "calendar":  # its hours of the day (18:00) are explained by other clauses too
                holders = list(titles)
            if old_shown in _values_in_force(flat_new, holders, value_path):
                continue
            for x, where, lg, text in _texts(flat_new, holders, same_item):
                m = next((m for m in (re.search(pt, text, flags=re.IGNORECASE) for pt in patterns) if m), None)
                if m is not None:
                    found.setdefault((x, where, lg, m.group(0), value_path), StaleQuote(
                        x, titles[x], where, lg, m.group(0).strip(), _excerpt(text, m.start(), m.end()),
                        value_path, cid, old_shown, now[1] if now is not None else here.get(value_path)))
    return list(found.values())


def _values_in_force(flat: dict[str, dict[str, Any]], holders: list[str], value_path: str) -> set[Any]:
    """The values (as shown) of every item of ``value_path``'s kind (``authority[].max_discount``) in ``holders``."""
    kind = re.sub(r"\[[^\]]*\]", "[]", value_path)
    out = set()
    for x in holders:
        for p in flat[x]:
            value = _quoted_value(flat[x], p) if re.sub(r"\[[^\]]*\]", "[]", p) == kind else None
            if value is not None:
                out.add(value[1])
    return out


def _texts(flat: dict[str, dict[str, Any]], holders: list[str], same_item: re.Pattern[str]
           ) -> list[tuple[str, str, str, str]]:
    """``(clause id, where, lang, text)``: each holder's own text, then the item's texts in it."""
    out = []
    for x in holders:
        out += [(x, "text", lg, flat[x].get(f"clause.text.{lg}") or "") for lg in ("zh-CN", "en")]
        out += [(x, p.rsplit(".", 1)[0], p.rsplit(".", 1)[1], v) for p, v in flat[x].items()
                if same_item.match(p) and isinstance(v, str) and p.rsplit(".", 1)[1] in ("zh-CN", "en")]
    return out


# -- impact -----------------------------------------------------------------------------------------------
def lessons_by_clause(playbook: Any) -> dict[str, list[str]]:
    """Return ``{clause_id: ["L3 approval", ...]}`` from the playbook's ``lessons`` part.

    A lesson uses a clause its notebook shows (a ``clauses(...)`` call, see ``lessons/``).
    """
    out: dict[str, list[str]] = {}
    for lesson in sorted(getattr(playbook, "lessons", None) or [], key=lambda x: x.number):
        for cid in lesson.clauses:
            out.setdefault(cid, []).append(f"L{lesson.number} {lesson.id}")
    return out


def checks_by_clause(playbook: Any) -> dict[str, list[str]]:
    """Return ``{clause_id: [check ids]}``: the CRM compliance checks that apply each clause.

    Check ids are those of :func:`sopcoach.analytics.compliance.check_compliance`: ``sla:<id>`` (the SLA's
    clause; the calendar's clause too for SLAs counted in working days or business hours, whose
    due times it decides), ``cadence`` (tiers' classification and cadence clauses) and
    ``authority`` (the authority limits' clause).
    """
    out: dict[str, list[str]] = {}

    def add(cid: str, check: str) -> None:
        if check not in out.setdefault(cid, []):
            out[cid].append(check)

    for sla in playbook.slas:
        add(sla.clause, f"sla:{sla.id}")
        if sla.limit.unit.value in ("working_days", "business_hours"):
            add(playbook.calendar.clause, f"sla:{sla.id}")
    for tier in playbook.tiers:
        add(tier.clause, "cadence")
        add(tier.cadence_clause, "cadence")
    for limit in playbook.authority:
        add(limit.clause, "authority")
    return out


def impact(playbook: Any, bank: Any, clause_ids: Iterable[str], lang: str | None = None):
    """Return what uses each of ``clause_ids``: questions, lessons, compliance checks and KPIs.

    Returns
    -------
    pandas.DataFrame
        Index ``clause`` (str, in the given order); columns ``source``, ``title`` (str),
        ``questions``, ``lessons``, ``checks``, ``kpis`` (lists of str).
    """
    import pandas as pd  # noqa: PLC0415 - heavy: pandas, only for the trainer's tables
    lessons = lessons_by_clause(playbook)
    checks = checks_by_clause(playbook)
    titles = {c.id: (c.source, c.title.get(lang)) for c in playbook.clauses}
    rows = []
    for cid in clause_ids:
        source, title = titles.get(cid, ("", ""))
        rows.append({
            "clause": cid, "source": source, "title": title,
            "questions": [q.id for q in bank.questions.values() if cid in q.clauses],
            "lessons": lessons.get(cid, []),
            "checks": checks.get(cid, []),
            "kpis": [f"kpi:{k.id}" for k in playbook.kpis if k.clause == cid],
        })
    cols = ["clause", "source", "title", "questions", "lessons", "checks", "kpis"]
    return pd.DataFrame(rows, columns=cols).set_index("clause")


# -- needs review ---------------------------------------------------------------------------------------
def needs_review(records: Records):
    """Return the questions waiting for a trainer's confirmation.

    Returns
    -------
    pandas.DataFrame
        Index ``question_id`` (str); columns ``clauses`` (list of the changed clause ids it
        examines), ``releases`` (labels of the releases that flagged it), ``flagged_at`` (aware
        UTC datetime of the first flag).
    """
    import pandas as pd  # noqa: PLC0415 - heavy: pandas, only for the trainer's tables

    rows: dict[str, dict[str, Any]] = {}
    for qr, label in records.transaction(lambda tx: tx.pending_reviews_with_labels()):
        r = rows.setdefault(qr.question_id, {"question_id": qr.question_id, "clauses": [], "releases": [],
                                             "flagged_at": from_db(qr.flagged_at)})
        r["clauses"] += [c for c in qr.clauses if c not in r["clauses"]]
        r["releases"].append(label)
    return pd.DataFrame(list(rows.values()), columns=["question_id", "clauses", "releases", "flagged_at"]
                        ).set_index("question_id")


def needs_review_ids(records: Records) -> set[str]:
    """Return the ids of the questions marked needs-review (left out of the exam draw)."""
    return records.pending_review_ids()


def confirm(records: Records, question_ids: Iterable[str], by: str = "", now: datetime | None = None) -> list[str]:
    """Confirm questions after review: they return to the exam draw.

    Parameters
    ----------
    question_ids : iterable of str
        Questions marked needs-review.
    by : str
        Who confirmed (stored).

    Returns
    -------
    list of str
        The confirmed ids, in the given order.

    Raises
    ------
    VersionError
        When an id is not waiting for review (nothing is confirmed then); the message lists those
        that are.
    """
    now = now or utcnow()
    ids = list(dict.fromkeys(q.strip() for q in question_ids if q.strip()))

    def do(tx: Transaction) -> list[str]:
        open_rows = tx.pending_reviews()
        pending = {r.question_id for r in open_rows}
        unknown = [q for q in ids if q not in pending]
        if unknown:
            listed = ", ".join(sorted(pending)) or "none"
            raise VersionError(f"not waiting for review: {', '.join(unknown)} (waiting: {listed})")
        for r in open_rows:
            if r.question_id in ids:
                r.status, r.confirmed_at, r.confirmed_by = CONFIRMED, to_db(now), by
        return ids
    return records.transaction(do)


# -- recertification -------------------------------------------------------------------------------------
def recertification_list(records: Records, now: datetime | None = None):
    """Return the certified people whose certificate covered a clause changed since it was issued.

    Only certificates in force count (not expired, revoked or superseded by a recertification), of
    people still active (a leaver, deactivated by ``sopcoach enroll``, has nothing to re-take).

    Returns
    -------
    pandas.DataFrame
        One row per certificate; columns ``learner_id``, ``name``, ``team``, ``cohort``,
        ``certificate`` (code), ``issued_at`` (aware UTC datetime), ``version`` (the release label
        it was issued on), ``changed`` (list of clause ids to re-examine).
    """
    import pandas as pd  # noqa: PLC0415 - heavy: pandas, only for the trainer's tables
    now = now or utcnow()

    def do(tx: Transaction) -> list[dict[str, Any]]:
        current = tx.latest_release()
        out = []
        for cert, learner in tx.certificates_with_learners(by_learner=True):
            if cert.revoked_at is not None or cert.superseded_by or from_db(cert.expires_at) <= now:
                continue
            if learner.deactivated_at is not None:
                continue
            changed = certificate_changes(tx, cert, current)
            if changed:
                out.append({"learner_id": cert.learner_id, "name": learner.name, "team": learner.team or "",
                            "cohort": learner.cohort or "", "certificate": cert.code,
                            "issued_at": from_db(cert.issued_at), "version": cert.playbook_version,
                            "changed": changed})
        return out
    cols = ["learner_id", "name", "team", "cohort", "certificate", "issued_at", "version", "changed"]
    return pd.DataFrame(records.transaction(do), columns=cols)


def recertification_due(records: Records, learner_id: str, now: datetime | None = None) -> tuple[str, list[str], int] | None:
    """Return ``(certificate code, changed clause ids, current release id)`` when the learner must
    re-certify, else ``None``."""
    now = now or utcnow()

    def do(tx: Transaction) -> tuple[str, list[str], int] | None:
        current = tx.latest_release()
        certs = tx.certificates_in_force(learner_id, unrevoked=True)
        for cert in certs:
            if from_db(cert.expires_at) <= now:
                continue
            changed = certificate_changes(tx, cert, current)
            return (cert.code, changed, current.id) if changed and current is not None else None
        return None
    return records.transaction(do)
