"""Edit the playbook safely: typed setters on round-trip YAML, live ``check``, diff, impact, save.

Trainers keep the SOP current after every monthly review (seed:3.3.2, seed:4.2.1, seed:4.2.2).
:class:`PlaybookEdit` is the engine behind the playbook editor app
(:mod:`sopcoach.ui.playbook_editor`); it never imports ipywidgets.

* **Open**: every ``playbook/*.yaml`` file of the content folder (``SOPCOACH_CONTENT``) is read as
  bytes (its SHA-256 is remembered) and parsed with ruamel.yaml's round-trip loader, so comments,
  key order, quoting, flow style and blank lines survive. A file whose formatting ruamel.yaml
  cannot reproduce byte for byte is opened read-only (editing it would reformat untouched lines).
* **Edit**: typed setters (:meth:`PlaybookEdit.set_sla_limit`, :meth:`~PlaybookEdit.set_tier`,
  :meth:`~PlaybookEdit.set_stage_order`, :meth:`~PlaybookEdit.add_clause`, ...) change one value of
  the documents in memory. A setter given the value already there changes nothing.
* **Validate**: :meth:`PlaybookEdit.validate` writes the edited files to a temporary content
  folder (the real ``quizzes/`` linked in) and runs what ``sopcoach check`` runs
  (:func:`evaluate_texts`: the steps of :func:`sopcoach.content.check.check_paths`): the same loaders and
  the same ``path:line:column: field: message`` lines, paths relative to the content folder
  (``playbook/customers.yaml``). A bank key that no longer matches the playbook (``key_from``)
  is reported as ``check`` reports it. The lesson practice pool (``quizzes/practice/``) is
  validated too when it exists.
* **Review**: :meth:`PlaybookEdit.review` gives the clause-by-clause diff against the files as
  opened (:func:`sopcoach.authoring.versions.diff_playbook`), the impact of every changed clause
  (:func:`sopcoach.authoring.versions.impact`: questions, lessons, compliance checks, KPIs), the questions
  whose resolved key changes (the bank loaded against the old and the new playbook), the lines of
  lesson notebooks' prose whose text changes (filled-in facts), and hints (a clause text that still quotes an old value, a
  retired clause still in use).
* **Save**: :meth:`PlaybookEdit.save` refuses while ``check`` reports a problem
  (:class:`InvalidPlaybook`) and refuses when a playbook file changed on disk since it was opened
  (:class:`SaveConflict`; the edited files are kept as a draft and stay in the session). Otherwise
  it writes through the one YAML writer (:func:`sopcoach.authoring.yaml_writer.write_files`: under the
  installation's lock, every playbook file as it is on disk is copied to
  ``$SOPCOACH_HOME/playbook-history/<id>/``, then only the files that changed are written, atomically). Saving with no change writes nothing.
  :func:`restore` puts a saved version back (after backing up the current one).
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Iterator, Sequence

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, FoldedScalarString, LiteralScalarString, SingleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from ..certification.scoring import key_text
from ..config import settings
from ..content.check import fold_follow_ons, quality_warnings
from ..content.playbook import Clause, load_playbook
from ..content.quizbank import FACT, Bank, load_bank, load_blueprint
from ..content.yaml_loader import format_loc
from ..errors import ContentError, EditError, InvalidPlaybook, Problem, SaveConflict
from ..i18n import current_lang, t, zone_name
from ..lessons.notebook import fill_facts
from .versions import clause_contents, diff_playbook, impact, stale_quotes
from .yaml_writer import (HISTORY, MANIFEST, Backup, decode, dump, encode, history, history_dir, load_round_trip, new_id,
                          read_folder, sha256, write_files)

__all__ = [
    "Backup", "EditError", "InvalidPlaybook", "KeyChange", "LessonChange", "PlaybookEdit", "Review",
    "SaveConflict", "SaveResult", "evaluate_texts", "history", "open_playbook", "question_key", "restore",
    "validate_texts",
]

DRAFTS = "drafts"
LANGS = ("zh-CN", "en")
#: Units of a duration (see :class:`sopcoach.content.businesstime.DurationUnit`).
UNITS = ("working_days", "calendar_days", "elapsed_hours", "business_hours")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_KEEP: Any = object()
_UNSET: Any = object()

#: Key order used when a key is added to an item (a new key goes before the first later key).
_ORDER = {
    "clauses": ("id", "source", "rationale", "retired", "title", "text"),
    "authority": ("role", "max_quote_amount", "max_discount", "approver", "clause"),
    "tiers": ("id", "name", "criteria", "min_weekly_follow_ups", "min_annual_revenue", "min_employees",
              "clause", "cadence_clause"),
    "kpis": ("id", "name", "formula", "unit", "target", "clause"),
    "calendar": ("timezone", "weekend", "day_start", "day_end", "holidays_source", "years", "holidays",
                 "workdays", "clause"),
    "sop": ("name", "currency", "version"),
    "slas": ("id", "name", "start_event", "end_event", "kind", "limit", "tolerance", "clause"),
    "stages": ("id", "name", "responsible_role", "entry_criteria", "exit_criteria", "crm_fields", "clause"),
    "templates": ("id", "kind", "name", "used_at_stage", "when", "body", "items", "review_every", "clause"),
}


# -- comment tails: the blank lines and comments after an item belong to its position ----------------------
def _tail_holder(node: Any) -> tuple[Any, Any] | None:
    """Return ``(map, key)`` whose comment slot holds what follows ``node`` in the file."""
    while isinstance(node, CommentedMap) and len(node):
        key = list(node.keys())[-1]
        value = node[key]
        if isinstance(value, CommentedMap) and len(value) and not value.fa.flow_style():
            node = value
            continue
        if isinstance(value, CommentedSeq) and len(value) and not value.fa.flow_style():
            return None  # a block list at the end: leave its comments alone
        return node, key
    return None


def _tail_split(node: Any) -> tuple[str, str]:
    """Return ``(own, position)``: the end-of-line part of ``node``'s trailing comment, and the rest."""
    holder = _tail_holder(node)
    if holder is None:
        return "", ""
    cm, key = holder
    slot = cm.ca.items.get(key)
    token = slot[2] if slot and len(slot) > 2 else None
    value = token.value if token is not None else ""
    if isinstance(cm[key], (LiteralScalarString, FoldedScalarString)):
        return "", value  # a block scalar ends with its own line break
    if "\n" not in value:
        return value, ""
    cut = value.index("\n") + 1
    return value[:cut], value[cut:]


def _tail_set(node: Any, own: str, position: str) -> None:
    holder = _tail_holder(node)
    if holder is None:
        return
    cm, key = holder
    block = isinstance(cm[key], (LiteralScalarString, FoldedScalarString))
    value = position if block else (own or "\n") + position
    slot = cm.ca.items.setdefault(key, [None, None, None, None])
    while len(slot) < 4:
        slot.append(None)
    if (block and not value) or (not block and value == "\n"):
        slot[2] = None
        if not any(slot):
            del cm.ca.items[key]
        return
    token = slot[2]
    if token is None:
        slot[2] = CommentToken(value, CommentMark(0), None)
    else:
        token.value = value


def _reorder(seq: CommentedSeq, new_order: Sequence[int]) -> None:
    """Reorder ``seq`` to ``[seq[i] for i in new_order]``; separators and section comments stay put."""
    items = list(seq)
    tails = [_tail_split(x) for x in items]
    for pos, old in enumerate(new_order):
        seq[pos] = items[old]
    for pos, old in enumerate(new_order):
        _tail_set(items[old], tails[old][0], tails[pos][1])


def _insert_after(seq: CommentedSeq, index: int, item: Any) -> None:
    """Insert ``item`` after ``seq[index]``, separated by a blank line like its neighbours."""
    own, position = _tail_split(seq[index])
    seq.insert(index + 1, item)
    _tail_set(seq[index], own, "\n")
    _tail_set(item, "", position if index + 2 < len(seq) or position.strip() else "")


# -- values -------------------------------------------------------------------------------------------------
def _as_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _number(value: Any, what: str) -> int | Decimal:
    """Return ``value`` as an exact number: an ``int`` when whole, else a ``Decimal``."""
    d = _as_decimal(value)
    if d is None:
        raise EditError(f"{what} must be a number (got {value!r})")
    return int(d) if d == d.to_integral_value() else d


def _whole(value: Any, what: str, unit: str) -> int:
    """Return ``value`` as an ``int``; raise :class:`EditError` when it is not a whole number."""
    d = _as_decimal(value)
    if d is None:
        raise EditError(f"{what} must be a number (got {value!r})")
    if d != d.to_integral_value():
        raise EditError(f"{what} is a whole number of {unit} (got {d.normalize():f}); "
                        "type a whole number, nothing was changed")
    return int(d)


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool) and old == new
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new))
    a, b = _as_decimal(old), _as_decimal(new)
    if a is not None and b is not None and not isinstance(old, str) and not isinstance(new, str):
        return a == b
    if old is None or new is None:
        return old is new
    return str(old) == str(new)


def _styled(old: Any, new: Any) -> Any:
    """Return ``new`` in the scalar style of ``old`` (literal block, quotes), when it is text."""
    if not isinstance(new, str) or isinstance(new, (LiteralScalarString, DoubleQuotedScalarString)):
        return new
    if new == "":
        return new
    if "\n" in new or isinstance(old, (LiteralScalarString, FoldedScalarString)):
        return LiteralScalarString(new)
    if isinstance(old, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(new)
    if isinstance(old, SingleQuotedScalarString):
        return SingleQuotedScalarString(new)
    return new


def _plain(value: Any) -> Any:
    """Return a ruamel value as plain Python data (for display and comparison)."""
    if isinstance(value, CommentedMap):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (CommentedSeq, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _as_decimal(value)
    if isinstance(value, str):
        return str(value)
    return value


def _assign(cm: CommentedMap, key: str, value: Any, order: Sequence[str]) -> bool:
    """Set ``cm[key]``; a new key goes before the first existing key that follows it in ``order``."""
    if key in cm:
        if _same(cm[key], value):
            return False
        cm[key] = _styled(cm[key], value)
        return True
    keys = list(cm.keys())
    later = order[order.index(key) + 1:] if key in order else ()
    index = next((i for i, k in enumerate(keys) if k in later), None)
    if index is None:  # append: the item's trailing separator moves to the new last key
        own, position = _tail_split(cm)
        _tail_set(cm, own, "")
        cm[key] = value
        _tail_set(cm, "", position)
    else:
        cm.insert(index, key, value)
    return True


def _remove(cm: CommentedMap, key: str) -> bool:
    if key not in cm:
        return False
    if list(cm.keys())[-1] == key and len(cm) > 1:
        _own, position = _tail_split(cm)
        del cm[key]
        _tail_set(cm, "", position)
    else:
        del cm[key]
    return True


def _flow_seq(values: Iterable[Any]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq


def _set_list(cm: CommentedMap, key: str, values: Sequence[Any], order: Sequence[str]) -> bool:
    old = cm.get(key)
    if isinstance(old, CommentedSeq):
        if _same(list(old), list(values)):
            return False
        was_flow = not len(old) or old.fa.flow_style()
        del old[:]
        old.extend(values)
        if was_flow:  # `holidays: []` is a flow list: keep writing it on one line
            old.fa.set_flow_style()
        return True
    return _assign(cm, key, _flow_seq(values), order)


def _split_list(text: str | Sequence[Any]) -> list[str]:
    if isinstance(text, str):
        return [p for p in re.split(r"[\s,;，；、]+", text.strip()) if p]
    return [str(x).strip() for x in text if str(x).strip()]


def _typed_list(parts: Iterable[str], kind: str) -> list[Any]:
    """Turn typed words into YAML values: ints / dates where they parse, else the text (``check``
    then reports it with its line)."""
    out: list[Any] = []
    for p in parts:
        if kind == "int" and re.fullmatch(r"\d+", p):
            out.append(int(p))
        elif kind == "date":
            try:
                out.append(date.fromisoformat(p))
            except ValueError:
                out.append(p)
        else:
            out.append(p)
    return out


# -- the files as opened -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenedFile:
    """One playbook file as read: its bytes' SHA-256, its text, and how ruamel reproduces it."""

    name: str
    raw: bytes
    text: str
    sha256: str
    indent: tuple[int, int, int] | None  # None: ruamel cannot reproduce it; the file is read-only


def _open_file(name: str, raw: bytes) -> tuple[OpenedFile, Any]:
    text = decode(raw)
    try:
        doc, indent = load_round_trip(text)
    except Exception:
        doc, indent = None, None
    return OpenedFile(name, raw, text, sha256(raw), indent), doc


# -- validation ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _materialize(content: Path, texts: dict[str, str], folder: str = "playbook") -> Iterator[Path]:
    """Yield a temporary content folder: ``folder`` (``playbook`` or ``quizzes``) holds ``texts``
    (names relative to it, ``bank/crm_use.yaml``), the other folders (and ``lessons/``) are the real ones."""
    with tempfile.TemporaryDirectory(prefix="sopcoach-edit-") as tmp:
        root = Path(tmp)
        (root / folder).mkdir()
        for name, text in texts.items():
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (root / folder / name).write_text(text, encoding="utf-8")
        for other in {"playbook", "quizzes", "lessons"} - {folder}:
            if (content / other).is_dir():
                (root / other).symlink_to((content / other).resolve(), target_is_directory=True)
        yield root


def _display(path: str, roots: Sequence[Path]) -> str:
    """Map a problem's path (relative to the cwd or absolute, maybe in the temporary folder) to a path
    relative to the content folder (``playbook/customers.yaml``)."""
    if not path:
        return path
    p = Path(path)
    candidates = [p] if p.is_absolute() else [Path.cwd() / p]
    for c in candidates:
        for variant in (c, c.resolve()):
            for root in roots:
                for r in (root, root.resolve()):
                    try:
                        return variant.relative_to(r).as_posix()
                    except ValueError:
                        continue
    return path


def evaluate_texts(content: Path | str, texts: dict[str, str], part: str = "playbook") -> dict[str, Any]:
    """Check and load ``content`` with ``part`` (``playbook/``, or ``quizzes/`` for the question
    editor) replaced by ``texts``, as ``sopcoach check`` does.

    The steps are those of :func:`sopcoach.content.check.check_paths` without paths: the playbook, then the
    bank against it (against no playbook when the playbook fails, so the bank's own problems are
    still reported), then the blueprint against the bank; then the practice pool
    (``quizzes/practice/``) when it exists and everything else is clean.

    Returns
    -------
    dict
        ``problems`` (list of :class:`~sopcoach.errors.Problem`, paths relative to ``content``),
        ``playbook``, ``bank``, ``practice``, ``blueprint`` (each ``None`` when it does not load),
        ``files`` (``texts``) and ``warnings``: what ``check`` prints as warnings (the banks' own and,
        when there is no problem, :func:`sopcoach.content.check.quality_warnings`: untaught clauses,
        practice twins of exam questions, odd option lengths), paths as in ``problems``.
    """

    content = Path(content)
    problems: list[Problem] = []

    def attempt(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except ContentError as exc:
            problems.extend(exc.problems)
            return None

    with _materialize(content, texts, part) as root:
        quizzes = root / "quizzes"
        playbook = attempt(load_playbook, root / "playbook")
        bank = attempt(load_bank, quizzes / "bank", playbook) if playbook else None
        if playbook is None:
            attempt(load_bank, quizzes / "bank", None)
        blueprint = attempt(load_blueprint, quizzes / "blueprint.yaml", bank)
        practice = None
        folder = quizzes / "practice"
        if playbook is not None and folder.is_dir() and any(folder.glob("*.yaml")):
            practice = attempt(load_bank, folder, playbook)
        roots = [root, content]
        mapped = fold_follow_ons([Problem(_display(p.path, roots), p.line, p.column, p.field, p.message)
                                  for p in problems], playbook_failed=playbook is None)
        found = [*(bank.warnings if bank else []), *(practice.warnings if practice else [])]
        if bank is not None and not mapped:
            found += quality_warnings(playbook, bank, practice, blueprint)
        warnings = [dataclasses.replace(w, path=_display(w.path, roots)) for w in found]
    return {"problems": mapped, "playbook": playbook, "bank": bank, "practice": practice, "files": texts,
            "blueprint": blueprint, "warnings": warnings}


def validate_texts(content: Path | str, texts: dict[str, str]) -> list[Problem]:
    """Return what ``sopcoach check`` reports for ``content`` with ``playbook/`` replaced by ``texts``.

    Parameters
    ----------
    content : path-like
        The content folder (holds ``quizzes/``, which is checked against the edited playbook).
    texts : dict
        ``{file name: YAML text}``: the whole playbook folder as it would be saved.

    Returns
    -------
    list of Problem
        The problems ``sopcoach check`` prints (playbook, bank, blueprint), then those of the practice
        pool; paths are relative to ``content`` (``playbook/tiers.yaml``). Empty when clean.
    """
    return evaluate_texts(content, texts)["problems"]


# -- review ------------------------------------------------------------------------------------------------
def question_key(q: Any) -> tuple:
    """Return a question's resolved key as a comparable tuple (what a right answer must be).

    Examples
    --------
    >>> from decimal import Decimal
    >>> from sopcoach.content.quizbank import Numeric
    >>> q = Numeric.model_validate({"id": "q", "type": "numeric", "section": "s", "clauses": ["c"],
    ...     "text": {"zh-CN": "几次?", "en": "How many?"}, "answer": 4})
    >>> question_key(q)
    ('numeric', '4', '0')
    """
    kind = getattr(q, "type", "")
    if getattr(q, "variant", None) is not None:  # a template: its key is its rule, computed per draw
        return (kind, "template", q.variant.rule)
    if kind == "numeric":
        return (kind, *(f"{x:f}" for x in (q.answer.normalize(), q.tolerance.normalize()))) + tuple(
            (str(a.answer), str(a.min), str(a.max), str(a.weight)) for a in (q.answers or []))
    if kind in ("single_choice", "multiple_choice"):
        return (kind, tuple(sorted(o.id for o in q.options if o.correct)),
                tuple((o.id, str(o.weight)) for o in q.options if o.weight is not None))
    if kind == "true_false":
        return (kind, bool(q.answer))
    if kind == "ordering":
        return (kind, tuple(o.id for o in q.items))
    return (kind, repr(getattr(q, "answers", None) or getattr(q, "pairs", None)))


def _key_text(q: Any, lang: str | None) -> str:
    text = key_text(q, lang)
    return text or " / ".join(str(x) for x in question_key(q)[1:])


@dataclass(frozen=True)
class KeyChange:
    """A question whose resolved key differs between the playbook as opened and as edited.

    ``pool`` is ``bank`` (the certification exam) or ``practice`` (lesson practice); ``old`` and
    ``new`` are the keys as learner text (``4 次/周``).
    """

    question_id: str
    pool: str
    clauses: tuple[str, ...]
    old: str
    new: str


@dataclass(frozen=True)
class LessonChange:
    """A line of a lesson notebook's prose whose text (with ``{{fact}}`` values filled in) changes."""

    lesson: str  # "L5 customers"
    title: str
    old: str
    new: str


@dataclass(frozen=True)
class ImpactRow:
    """What uses one changed clause (from :func:`sopcoach.authoring.versions.impact`, plus practice questions)."""

    clause: str
    source: str
    title: str
    questions: tuple[str, ...]
    practice: tuple[str, ...]
    lessons: tuple[str, ...]
    checks: tuple[str, ...]
    kpis: tuple[str, ...]


@dataclass(frozen=True)
class Review:
    """Everything a trainer sees before saving (see :meth:`PlaybookEdit.review`).

    ``diff`` is a :class:`sopcoach.authoring.versions.PlaybookDiff` against the files as opened (``None``
    while the edited playbook does not load); ``text_changes`` are questions whose text quotes a
    changed value (``{{fact}}``) although their key stays.
    """

    changed_files: tuple[str, ...]
    problems: tuple[Problem, ...]
    diff: Any
    impact: tuple[ImpactRow, ...]
    key_changes: tuple[KeyChange, ...]
    text_changes: tuple[str, ...]
    lesson_changes: tuple[LessonChange, ...]
    hints: tuple[str, ...]

    @property
    def changed_clauses(self) -> tuple[str, ...]:
        return tuple(self.diff.changed_ids) if self.diff is not None else ()

    def text(self, lang: str | None = None) -> str:
        """Return the review as readable text (what the app shows, without HTML)."""
        if not self.changed_files:
            return t("没有修改。", "No change.", lang)
        lines = [t("修改的文件：", "Files changed: ", lang) + ", ".join(self.changed_files)]
        if self.problems:
            lines.append(t("问题（修正后才能保存）：", "Problems (fix them before saving):", lang))
            lines += [f"  {p}" for p in self.problems]
        if self.diff is not None:
            for line in diff_lines(self.diff, lang):
                lines.append(line)
        for row in self.impact:
            lines.append(f"{row.clause}: " + "; ".join(
                f"{name} {', '.join(vals)}" for name, vals in (
                    (t("试题", "questions", lang), row.questions), (t("练习", "practice", lang), row.practice),
                    (t("课程", "lessons", lang), row.lessons), (t("合规检查", "checks", lang), row.checks),
                    ("KPI", row.kpis)) if vals))
        for k in self.key_changes:
            lines.append(t(f"答案变化 {k.question_id}: {k.old} → {k.new}",
                           f"key changes {k.question_id}: {k.old} -> {k.new}", lang))
        for c in self.lesson_changes:
            lines.append(f"{c.lesson}: {c.old} -> {c.new}")
        lines += self.hints
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def diff_lines(diff: Any, lang: str | None = None) -> list[str]:
    """Return a :class:`~sopcoach.authoring.versions.PlaybookDiff`'s clause changes as readable lines.

    One line per clause (``~ follow-up-frequency (seed:3.1.2) Follow-up frequency``) and one per
    changed field (``tiers.cadence[A].min_weekly_follow_ups: 3 -> 4``).
    """
    mark = {"added": "+", "removed": "-", "changed": "~"}
    kinds = {"added": t("新增", "added", lang), "removed": t("删除", "removed", lang),
             "changed": t("修改", "changed", lang)}
    out = []
    if diff.version[0] != diff.version[1]:
        out.append(f"~ sop.version: {diff.version[0]} -> {diff.version[1]}")
    for ch in diff.changes:
        out.append(f"{mark[ch.kind]} {ch.clause_id} ({ch.source}) {ch.title} [{kinds[ch.kind]}]")
        if ch.kind == "added":
            continue
        for f in ch.fields:
            old, new = _show(f.old), _show(f.new)
            if len(old) + len(new) > 100 or "\n" in old + new:
                out.append(f"    {f.path}:")
                out += [f"      - {x}" for x in old.splitlines()] if f.old is not None else []
                out += [f"      + {x}" for x in new.splitlines()] if f.new is not None else []
            else:
                out.append(f"    {f.path}: {old} -> {new}")
    return out


@dataclass(frozen=True)
class _Baseline:
    """The files as opened, shaped like a :class:`sopcoach.records.models.Release` for ``diff_playbook``."""

    label: str
    created_at: datetime  # naive UTC, as stored
    snapshot: dict


@dataclass(frozen=True)
class SaveResult:
    """What a save or restore wrote: the files (``playbook/<name>``), the backup of the version before."""

    written: tuple[str, ...]
    backup: Backup | None
    changed_clauses: tuple[str, ...] = ()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def restore(content: Path | str, home: Path | str, backup_id: str, note: str = "", by: str = "",
            now: datetime | None = None, *, part: str = "playbook", store: str = HISTORY,
            lang: str | None = None) -> SaveResult:
    """Put the files of a saved version of ``part`` back, after backing up the current files.

    The playbook editor restores ``playbook/`` from ``playbook-history/``; the question editor
    ``quizzes/`` (subfolders included) from ``question-history/``. A file the version does not hold
    (added later) is left as it is.

    Parameters
    ----------
    content : path-like
        The content folder (``<part>/`` is written).
    home : path-like
        ``SOPCOACH_HOME`` (versions in ``<store>/`` below it).
    backup_id : str
        A :attr:`Backup.id` from :func:`history` (``history(home, store)``).
    part : str
        ``playbook`` or ``quizzes``: the folder restored, checked as :func:`evaluate_texts` checks it
        (the playbook with today's question bank; the bank, blueprint and practice pool against
        today's playbook).
    store : str
        The history folder below ``home`` (``playbook-history`` or ``question-history``).
    lang : str, optional
        Language of the refusals (default ``SOPCOACH_LANG``).

    Returns
    -------
    SaveResult
        The files rewritten (``<part>/<name>``) and the backup of the version replaced (so a restore
        can be undone); empty when the version equals the files on disk.

    Raises
    ------
    EditError
        When there is no such version.
    InvalidPlaybook
        When the version does not pass ``sopcoach check`` with today's other files (nothing is
        written; the messages say what to fix).
    ContentNotWritable
        When this process may not write ``<part>/`` (nothing is written).
    """
    content, home = Path(content), Path(home)
    now = now or _utcnow()
    root = history_dir(home, store)
    source = root / (backup_id or "")
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._-]*", backup_id or "") or not (source / MANIFEST).is_file():
        raise EditError(t(f"没有已保存的版本“{backup_id}”（{root}）。", f"no saved version '{backup_id}' in {root}", lang))
    recursive = part != "playbook"
    saved = read_folder(source, recursive)

    def checked(disk: dict[str, bytes]) -> dict[str, bytes]:
        state = {**{n: decode(r) for n, r in disk.items()}, **{n: decode(r) for n, r in saved.items()}}
        problems = evaluate_texts(content, state, part)["problems"]
        if problems:
            raise InvalidPlaybook(problems, t(
                f"未恢复：版本 {backup_id} 的文件无法载入（sopcoach check 发现 {len(problems)} 个问题），没有写入任何文件。"
                "请选择其他版本，或先修正以下问题：",
                f"nothing was restored: the files of version {backup_id} do not load (`sopcoach check` reports "
                f"{len(problems)} problem(s)); nothing was written. Pick another version, or fix these first:", lang))
        return saved

    backup = write_files(content / part, home, checked, "restore",
                         note or t(f"恢复 {backup_id} 之前", f"before restoring {backup_id}", lang), by, now=now,
                         prefix=f"{part}/", store=store, recursive=recursive)
    return SaveResult(backup.changed if backup else (), backup)


# -- the session -------------------------------------------------------------------------------------------
def _clause_section(source: str) -> str:
    m = re.match(r"seed:(\d+)", source)
    return m.group(1) if m else "company"


class EditSession:
    """What the playbook and question editing sessions share: the cache of derived state per edit
    generation, which files would change, the drafts kept when a save meets a conflict, and the history.

    A subclass sets ``content``, ``folder`` (the folder it edits: ``content/playbook`` or
    ``content/quizzes``), ``files`` (:class:`OpenedFile` by name), ``home``, ``clock``,
    ``generation`` and ``_cache``, defines :meth:`texts` (every file as it would be saved now),
    :meth:`_open` (read the files from disk) and ``playbook``, and names its history folder in
    ``store`` (below ``$SOPCOACH_HOME``).
    """

    store: str = HISTORY
    content: Path
    folder: Path
    files: dict[str, OpenedFile]
    home: Path
    clock: Callable[[], datetime]
    generation: int
    _cache: dict[str, tuple[int, Any]]

    def texts(self) -> dict[str, str]:  # pragma: no cover - every session defines it
        raise NotImplementedError

    def _open(self) -> None:  # pragma: no cover - every session defines it
        raise NotImplementedError

    @property
    def playbook(self) -> Any:  # pragma: no cover - every session defines it
        raise NotImplementedError

    def _reopen(self) -> None:
        """Read the files again after this session wrote them (a save or a restore)."""
        self._open()
        self.generation += 1

    def _cached(self, key: str, fn: Callable[[], Any]) -> Any:
        hit = self._cache.get(key)
        if hit is None or hit[0] != self.generation:
            hit = (self.generation, fn())
            self._cache[key] = hit
        return hit[1]

    def changed_files(self) -> list[str]:
        """Return the names of the files whose text differs from the file as opened."""
        return self._cached("changed", lambda: [n for n, text in self.texts().items() if text != self.files[n].text])

    @property
    def dirty(self) -> bool:
        """True when saving would change a file."""
        return bool(self.changed_files())

    def read_only(self) -> list[str]:
        """Return the files ruamel.yaml cannot reproduce byte for byte (they cannot be edited here)."""
        return [n for n, f in self.files.items() if f.indent is None]

    def _keep_draft(self, texts: dict[str, str], changed: Sequence[str], now: datetime) -> Path | None:
        """Keep the edited ``changed`` files in ``<store>/drafts/<id>/`` (after a refused save); None on failure."""
        try:
            root = history_dir(self.home, self.store) / DRAFTS
            root.mkdir(parents=True, exist_ok=True)
            folder = root / new_id(root, now)
            for name in changed:
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text(texts[name], encoding="utf-8")
            return folder
        except OSError:  # pragma: no cover - the edits are still in the session
            return None

    def history(self) -> list[Backup]:
        """Return the versions kept before each save, newest first."""
        return history(self.home, self.store)

    @property
    def timezone(self) -> str | None:
        """The company's time zone (the playbook calendar's, e.g. ``Asia/Shanghai``); ``None`` when
        the playbook does not load. The history lists its versions at this zone's times."""
        pb = self.playbook
        return str(pb.calendar.timezone) if pb is not None else None

    def restore(self, backup_id: str, note: str = "", by: str = "", lang: str | None = None) -> SaveResult:
        """Restore the saved version ``backup_id`` of this session's folder (see :func:`restore`) and
        reopen the files.

        Returns
        -------
        SaveResult
            The files rewritten and the backup of the version replaced (restoring it undoes this restore).

        Raises
        ------
        EditError
            While this session has unsaved edits (save or discard them first), or when there is no
            such version.
        InvalidPlaybook
            When the version's files do not pass ``sopcoach check`` (nothing is written).
        ContentNotWritable
            When this process may not write the folder (nothing is written).
        """
        if self.dirty:
            raise EditError(t("有未保存的修改：请先保存或放弃修改，再恢复版本。",
                              "you have unsaved changes; save or discard them before restoring a version", lang))
        if not note:  # the version replaced is kept with a note naming the one restored, at the company's time
            saved = next((b for b in self.history() if b.id == backup_id), None)
            zone = self.timezone
            if saved is not None and zone:
                when = f"{saved.created_at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S} {zone_name(zone, lang)}"
                note = t(f"恢复 {when} 保存的版本之前", f"before restoring the version saved at {when}", lang)
        result = restore(self.content, self.home, backup_id, note, by, self.clock(), part=self.folder.name, store=self.store,
                         lang=lang)
        self._reopen()
        return result


class PlaybookEdit(EditSession):
    """An editing session over the playbook of one content folder.

    Parameters
    ----------
    content : path-like
        The folder holding ``playbook/`` and ``quizzes/`` (``SOPCOACH_CONTENT``).
    home : path-like
        ``SOPCOACH_HOME``: versions are kept in ``playbook-history/`` below it.
    clock : callable, optional
        Aware-UTC clock (tests pass a fake one).

    Raises
    ------
    EditError
        When ``content`` has no ``playbook/`` folder.

    Examples
    --------
    >>> from sopcoach.config import PROJECT_ROOT
    >>> ed = PlaybookEdit(PROJECT_ROOT, home=Path(tempfile.mkdtemp()))
    >>> ed.set_tier("A", min_weekly_follow_ups=4)
    True
    >>> ed.changed_files(), ed.item("tiers", "A")["min_weekly_follow_ups"]
    (['customers.yaml'], 4)
    >>> ed.set_tier("A", min_weekly_follow_ups=4)  # the same value again changes nothing
    False
    """

    def __init__(self, content: Path | str, home: Path | str, clock: Callable[[], datetime] = _utcnow):
        self.content = Path(content).expanduser().resolve()
        self.home = Path(home).expanduser()
        self.clock = clock
        self.folder = self.content / "playbook"
        if not self.folder.is_dir():
            raise EditError(f"no playbook/ folder in {self.content}; set SOPCOACH_CONTENT to the folder "
                            "that holds playbook/ and quizzes/")
        self._ops: list[tuple[str, tuple, dict]] = []
        self.generation = 0
        self._cache: dict[str, tuple[int, Any]] = {}
        self._open()
        broken = [n for n, doc in self.docs.items() if not isinstance(doc, CommentedMap)]
        if broken:
            lines = [str(p) for p in validate_texts(self.content, {n: f.text for n, f in self.files.items()})
                     if p.path in {f"playbook/{n}" for n in broken}]
            raise EditError(f"{', '.join(f'playbook/{n}' for n in broken)} cannot be read as a mapping of parts; "
                            "fix it by hand first (`sopcoach check` shows where):\n" + "\n".join(lines))

    # -- opening ---------------------------------------------------------------------------------------
    def _open(self) -> None:
        self.files: dict[str, OpenedFile] = {}
        self.docs: dict[str, Any] = {}
        for name, raw in read_folder(self.folder).items():
            opened, doc = _open_file(name, raw)
            self.files[name] = opened
            self.docs[name] = doc
        self.opened_at = self.clock()
        self.owner: dict[str, str] = {}
        for name, doc in self.docs.items():
            if isinstance(doc, CommentedMap):
                for key in doc:
                    self.owner.setdefault(str(key), name)
        self._base: dict[str, Any] | None = None
        self._pb: Any = _UNSET
        self._cache.clear()

    @property
    def _baseline(self) -> dict[str, Any]:
        """Playbook, bank and practice pool of the files as opened (loaded on first use)."""
        if self._base is None:
            self._base = evaluate_texts(self.content, {n: f.text for n, f in self.files.items()})
        return self._base

    def reload(self, keep_changes: bool = True) -> list[str]:
        """Read the files again from disk; with ``keep_changes``, re-apply this session's edits.

        Returns
        -------
        list of str
            Edits that could not be re-applied (each with the reason); empty when all were.
        """
        ops = list(self._ops) if keep_changes else []
        self._ops = []
        self._open()
        self.generation += 1
        failed = []
        for name, args, kwargs in ops:
            try:
                getattr(self, name)(*args, **kwargs)
            except EditError as exc:
                failed.append(f"{name}{args}: {exc}")
        return failed

    # -- reading -------------------------------------------------------------------------------------
    @property
    def playbook(self) -> Any:
        """The playbook as opened (``None`` when the files on disk do not load)."""
        if self._base is not None:
            return self._base["playbook"]
        if self._pb is _UNSET:
            with _materialize(self.content, {n: f.text for n, f in self.files.items()}) as root:
                try:
                    self._pb = load_playbook(root / "playbook")
                except ContentError:
                    self._pb = None
        return self._pb

    def texts(self) -> dict[str, str]:
        """Return ``{file name: text}`` of every playbook file as it would be saved now."""
        out = {}
        for name, f in self.files.items():
            if name not in self._dirty_docs():
                out[name] = f.text
            elif f.indent is None:  # _writable() refuses edits to such a file, so this is a bug
                raise EditError(f"playbook/{name} was edited although its layout cannot be reproduced")
            else:
                out[name] = dump(self.docs[name], f.indent)
        return out

    def _dirty_docs(self) -> set[str]:
        """Return the files some edit of this session touched (only those are dumped)."""
        return {self.owner[_OP_PART[name]] for name, _, _ in self._ops if _OP_PART[name] in self.owner}

    def part(self, part: str) -> Any:
        """Return a top-level part of the documents (``tiers``, ``calendar``, ...) as ruamel data."""
        name = self.owner.get(part)
        if name is None:
            raise EditError(f"no playbook file holds the part '{part}'")
        return self.docs[name][part]

    def item(self, part: str, ident: str) -> CommentedMap:
        """Return the item ``ident`` (its ``id``, or ``role`` for authority limits) of a list part."""
        for entry in self.part(part):
            if isinstance(entry, CommentedMap) and ident in (entry.get("id"), entry.get("role")):
                return entry
        raise EditError(f"no {part} item '{ident}' in the playbook")

    def ids(self, part: str) -> list[str]:
        """Return the ids of a list part in file order (``role`` for authority limits)."""
        return [str(e.get("id", e.get("role"))) for e in self.part(part) if isinstance(e, CommentedMap)]

    def value(self, part: str, ident: str | None, key: str) -> Any:
        """Return one value as plain Python data (``None`` when absent)."""
        node = self.part(part) if ident is None else self.item(part, ident)
        return _plain(node.get(key))

    def clause_sections(self) -> list[tuple[str, list[str]]]:
        """Return ``[(section, [clause ids])]`` in file order: ``"1"``..``"4"`` by the seed chapter of
        the clause's source, and ``"company"`` for company settings."""
        out: dict[str, list[str]] = {}
        for c in self.part("clauses"):
            out.setdefault(_clause_section(str(c.get("source", ""))), []).append(str(c.get("id")))
        return list(out.items())

    # -- editing ---------------------------------------------------------------------------------------
    def _writable(self, part: str) -> None:
        name = self.owner.get(part)
        if name is None:
            raise EditError(f"no playbook file holds the part '{part}'")
        if self.files[name].indent is None:
            raise EditError(f"playbook/{name} cannot be edited here without reformatting it (ruamel.yaml does "
                            "not reproduce its layout exactly); edit it by hand and run `sopcoach check`")

    def _done(self, name: str, args: tuple, kwargs: dict, changed: bool) -> bool:
        if changed:
            self._ops.append((name, args, kwargs))
            self.generation += 1
        return changed

    def set_clause_text(self, clause_id: str, field: str, lang: str, value: str) -> bool:
        """Set a clause's ``title`` or ``text`` in one language (``zh-CN`` or ``en``).

        Multi-line texts are written as literal blocks (``|-``), so colons and quotes need no escaping.

        Returns
        -------
        bool
            Whether anything changed.
        """
        if field not in ("title", "text") or lang not in LANGS:
            raise EditError(f"a clause has title/text in zh-CN/en (got {field!r}, {lang!r})")
        self._writable("clauses")
        node = self.item("clauses", clause_id).get(field)
        if not isinstance(node, CommentedMap):
            raise EditError(f"clause '{clause_id}' has no bilingual {field}")
        new = str(value).strip()
        changed = _assign(node, lang, new, LANGS)
        return self._done("set_clause_text", (clause_id, field, lang, value), {}, changed)

    def set_clause_rationale(self, clause_id: str, value: str | None) -> bool:
        """Set (or, with ``None``/blank, remove) a clause's one-line ``rationale``."""
        self._writable("clauses")
        c = self.item("clauses", clause_id)
        new = (value or "").strip()
        changed = _assign(c, "rationale", new, _ORDER["clauses"]) if new else _remove(c, "rationale")
        return self._done("set_clause_rationale", (clause_id, value), {}, changed)

    def retire_clause(self, clause_id: str, retired: bool = True) -> bool:
        """Retire a clause (``retired: true``) or bring it back; the clause keeps its id and text.

        A retired clause stays in ``clauses.yaml`` (questions, releases and certificates that name it
        keep working); lessons and goal lists leave it out.
        """
        self._writable("clauses")
        c = self.item("clauses", clause_id)
        changed = _assign(c, "retired", True, _ORDER["clauses"]) if retired else _remove(c, "retired")
        return self._done("retire_clause", (clause_id,), {"retired": retired}, changed)

    def add_clause(self, clause_id: str, source: str, title: dict[str, str], text: dict[str, str],
                   rationale: str | None = None, after: str | None = None) -> bool:
        """Add a clause after the clause ``after`` (default: at the end).

        Parameters
        ----------
        clause_id : str
            A new, stable id (letters, digits, ``-``, ``_``, ``.``); never reuse a retired id.
        source : str
            ``seed:N.N.N`` or ``company-setting`` (which needs ``rationale``).
        title, text : dict
            ``{"zh-CN": ..., "en": ...}``, both required.

        Raises
        ------
        EditError
            When the id is taken or the clause is incomplete (the message names each field).
        """

        self._writable("clauses")
        clauses = self.part("clauses")
        cid = (clause_id or "").strip()
        if cid in self.ids("clauses"):
            raise EditError(f"clause id '{cid}' is already used; ids are never reused, pick a new one")
        data: dict[str, Any] = {"id": cid, "source": (source or "").strip()}
        if (rationale or "").strip():
            data["rationale"] = rationale.strip()  # type: ignore[union-attr]
        data["title"] = {lang: str((title or {}).get(lang, "")).strip() for lang in LANGS}
        data["text"] = {lang: str((text or {}).get(lang, "")).strip() for lang in LANGS}
        try:
            Clause.model_validate(data)
        except ValidationError as exc:
            msgs = [f"{format_loc(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                    if e["loc"] else e["msg"].removeprefix("Value error, ") for e in exc.errors()]
            raise EditError("the new clause is incomplete: " + "; ".join(msgs)) from None
        index = len(clauses) - 1 if after is None else self.ids("clauses").index(after) \
            if after in self.ids("clauses") else None
        if index is None:
            raise EditError(f"no clause '{after}' to insert after")
        node = CommentedMap()
        node["id"] = cid
        node["source"] = data["source"]
        if "rationale" in data:
            node["rationale"] = data["rationale"]
        node["title"] = CommentedMap((lang, data["title"][lang]) for lang in LANGS)
        node["text"] = CommentedMap((lang, LiteralScalarString(data["text"][lang])) for lang in LANGS)
        _insert_after(clauses, index, node)
        return self._done("add_clause", (clause_id, source, title, text),
                          {"rationale": rationale, "after": after}, True)

    def set_sla_limit(self, sla_id: str, value: Any = _KEEP, unit: str | None = None) -> bool:
        """Set an SLA's limit: ``value`` (a number) and/or ``unit`` (working_days, calendar_days,
        elapsed_hours or business_hours)."""
        self._writable("slas")
        limit = self.item("slas", sla_id).get("limit")
        if not isinstance(limit, CommentedMap):
            raise EditError(f"SLA '{sla_id}' has no limit mapping")
        changed = False
        if value is not _KEEP:
            changed |= _assign(limit, "value", _number(value, "an SLA limit"), ("value", "unit"))
        if unit is not None:
            changed |= _assign(limit, "unit", str(unit), ("value", "unit"))
        return self._done("set_sla_limit", (sla_id,), {"value": value, "unit": unit}, changed)

    def set_sla_tolerance(self, sla_id: str, before: Any = _KEEP, after: Any = _KEEP, unit: str | None = None) -> bool:
        """Set a scheduled SLA's tolerance (a company setting around the due day, e.g. of the
        satisfaction call, seed:1.2.1): ``before`` and/or ``after`` (whole days >= 0) and/or ``unit``
        (working_days or calendar_days).

        Raises
        ------
        EditError
            When the SLA has no tolerance (it is a deadline, not scheduled), or a day count is not a
            whole number (2.5 days); nothing is changed then.
        """
        self._writable("slas")
        tol = self.item("slas", sla_id).get("tolerance")
        if not isinstance(tol, CommentedMap):
            raise EditError(f"SLA '{sla_id}' has no tolerance: only a scheduled SLA (kind: scheduled) has one")
        order = ("before", "after", "unit", "clause")
        days = {k: _whole(v, f"tolerance.{k}", "days") for k, v in (("before", before), ("after", after))
                if v is not _KEEP}
        changed = False
        for key, number in days.items():
            changed |= _assign(tol, key, number, order)
        if unit is not None:
            changed |= _assign(tol, "unit", str(unit), order)
        return self._done("set_sla_tolerance", (sla_id,), {"before": before, "after": after, "unit": unit}, changed)

    def set_template_review(self, template_id: str, value: Any = _KEEP, unit: str | None = None) -> bool:
        """Set how often a tool or template is reviewed (seed:3.2.2): ``value`` and/or ``unit``;
        ``value=None`` removes the review interval."""
        self._writable("templates")
        item = self.item("templates", template_id)
        order = _ORDER["templates"]
        spec = item.get("review_every")
        if value is None:
            changed = _remove(item, "review_every")
        elif not isinstance(spec, CommentedMap):
            if value is _KEEP:
                raise EditError(f"template '{template_id}' has no review interval; give its value")
            spec = CommentedMap([("value", _number(value, "a review interval")), ("unit", unit or "calendar_days")])
            spec.fa.set_flow_style()
            changed = _assign(item, "review_every", spec, order)
        else:
            changed = False
            if value is not _KEEP:
                changed |= _assign(spec, "value", _number(value, "a review interval"), ("value", "unit"))
            if unit is not None:
                changed |= _assign(spec, "unit", str(unit), ("value", "unit"))
        return self._done("set_template_review", (template_id,), {"value": value, "unit": unit}, changed)

    def set_authority(self, role: str, max_quote_amount: Any = _KEEP, max_discount: Any = _KEEP,
                      approver: Any = _KEEP) -> bool:
        """Set a role's quote limits (seed:2.3.1, clause ``quote-limits``).

        Parameters
        ----------
        max_quote_amount : Decimal or None
            Largest quote total in the SOP currency; ``None`` for no limit.
        max_discount : Decimal or None
            Largest discount as a FRACTION 0-1 (0.12 = 12%); ``None`` for no limit.
        approver : str or None
            The role approving above either limit; ``None`` for the top role.
        """
        self._writable("authority")
        item = self.item("authority", role)
        order = _ORDER["authority"]
        changed = False
        for key, value in (("max_quote_amount", max_quote_amount), ("max_discount", max_discount)):
            if value is _KEEP:
                continue
            changed |= _remove(item, key) if value is None else _assign(item, key, _number(value, key), order)
        if approver is not _KEEP:
            changed |= _remove(item, "approver") if approver in (None, "") else \
                _assign(item, "approver", str(approver), order)
        return self._done("set_authority", (role,), {"max_quote_amount": max_quote_amount,
                                                     "max_discount": max_discount, "approver": approver}, changed)

    def set_tier(self, tier_id: str, min_weekly_follow_ups: Any = _KEEP, min_annual_revenue: Any = _KEEP,
                 min_employees: Any = _KEEP) -> bool:
        """Set a customer tier's weekly follow-up minimum (seed:3.1.2) and size thresholds
        (annual revenue in the SOP currency, employees; ``None`` for no minimum).

        Raises :class:`EditError` when a count (follow-ups, employees) is not a whole number (2.5 is
        refused, never rounded or read as 25).
        """
        self._writable("tiers")
        item = self.item("tiers", tier_id)
        order = _ORDER["tiers"]
        changed = False
        if min_weekly_follow_ups is not _KEEP:
            changed |= _assign(item, "min_weekly_follow_ups",
                               _whole(min_weekly_follow_ups, "min_weekly_follow_ups", "follow-ups a week"), order)
        for key, value in (("min_annual_revenue", min_annual_revenue), ("min_employees", min_employees)):
            if value is _KEEP:
                continue
            number = _whole(value, key, "employees") if key == "min_employees" and value is not None else value
            changed |= _remove(item, key) if value is None else _assign(item, key, _number(number, key), order)
        return self._done("set_tier", (tier_id,), {"min_weekly_follow_ups": min_weekly_follow_ups,
                                                   "min_annual_revenue": min_annual_revenue,
                                                   "min_employees": min_employees}, changed)

    def set_stage_order(self, stage_ids: Sequence[str]) -> bool:
        """Put the stages in the order ``stage_ids`` (the order of the sales process, seed:2.1.1).

        Comments and blank lines between stages stay where they are; a section comment after the
        last stage stays after the last stage.
        """
        self._writable("stages")
        current = self.ids("stages")
        wanted = [str(s) for s in stage_ids]
        if sorted(wanted) != sorted(current):
            raise EditError(f"the new order must list each stage once: {', '.join(current)}")
        if wanted == current:
            return False
        _reorder(self.part("stages"), [current.index(s) for s in wanted])
        return self._done("set_stage_order", (tuple(wanted),), {}, True)

    def move_stage(self, stage_id: str, delta: int) -> bool:
        """Move a stage ``delta`` places later (negative: earlier), within the list."""
        order = self.ids("stages")
        if stage_id not in order:
            raise EditError(f"no stage '{stage_id}' in the playbook")
        i = order.index(stage_id)
        j = min(max(i + int(delta), 0), len(order) - 1)
        order.insert(j, order.pop(i))
        return self.set_stage_order(order)

    def set_stage_role(self, stage_id: str, role: str) -> bool:
        """Set the role responsible for a stage (seed:1.1.2)."""
        self._writable("stages")
        changed = _assign(self.item("stages", stage_id), "responsible_role", str(role), _ORDER["stages"])
        return self._done("set_stage_role", (stage_id, role), {}, changed)

    def set_kpi_target(self, kpi_id: str, target: Any) -> bool:
        """Set a KPI's target in its unit (a FRACTION for rates: 0.25 = 25%); ``None`` for no target."""
        self._writable("kpis")
        item = self.item("kpis", kpi_id)
        changed = _remove(item, "target") if target is None else \
            _assign(item, "target", _number(target, "a KPI target"), _ORDER["kpis"])
        return self._done("set_kpi_target", (kpi_id, target), {}, changed)

    def set_calendar(self, **values: Any) -> bool:
        """Set business-calendar fields: ``timezone``, ``weekend`` (day names), ``day_start``/``day_end``
        ("HH:MM"), ``holidays_source``, ``years``, ``holidays``/``workdays`` (ISO dates).

        Lists may be given as text (``"2025, 2026"``); words that are not years or dates are written
        as they are, and ``check`` reports them with their line.
        """
        self._writable("calendar")
        cal = self.part("calendar")
        order = _ORDER["calendar"]
        unknown = sorted(set(values) - set(order) - {"clause"})
        if unknown:
            raise EditError(f"unknown calendar field(s): {', '.join(unknown)}")
        changed = False
        for key, value in values.items():
            if key in ("weekend",):
                changed |= _set_list(cal, key, _split_list(value), order)
            elif key == "years":
                changed |= _set_list(cal, key, _typed_list(_split_list(value), "int"), order)
            elif key in ("holidays", "workdays"):
                changed |= _set_list(cal, key, _typed_list(_split_list(value), "date"), order)
            else:
                changed |= _assign(cal, key, str(value).strip(), order)
        return self._done("set_calendar", (), dict(values), changed)

    def set_sop_version(self, label: str) -> bool:
        """Set ``sop.version``, the release label (written quoted: it is text)."""
        self._writable("sop")
        sop = self.part("sop")
        label = str(label).strip()
        changed = _assign(sop, "version", DoubleQuotedScalarString(label), _ORDER["sop"]) \
            if not _same(sop.get("version"), label) else False
        return self._done("set_sop_version", (label,), {}, changed)

    # -- checking and reviewing --------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        """Return what ``sopcoach check`` would report if the edits were saved (empty: valid).

        Messages are those of ``check`` (``playbook/customers.yaml:33:28: tiers[0]...: message``),
        with line numbers of the files as they would be written.
        """
        return self._edited_state()["problems"]

    def _edited_state(self) -> dict[str, Any]:
        return self._cached("state", lambda: evaluate_texts(self.content, self.texts()))

    def review(self, lang: str | None = None) -> Review:
        """Return the diff against the files as opened and the impact of the edits.

        Returns
        -------
        Review
            ``diff`` (clause by clause, and a unified diff per file that keeps comments), ``impact``
            (per changed clause: questions, practice questions, lessons, compliance checks, KPIs),
            ``key_changes`` (questions whose resolved key differs), ``lesson_changes`` (lesson key
            points whose values differ), ``hints`` and ``problems`` (``check``).
        """
        return self._cached(f"review:{lang}", lambda: self._review(lang))

    def _review(self, lang: str | None) -> Review:
        changed = self.changed_files()
        problems = tuple(self.validate()) if changed else ()
        if not changed:
            return Review((), (), None, (), (), (), (), ())
        old, new = self._baseline, self._edited_state()
        diff = None
        impact_rows: tuple[ImpactRow, ...] = ()
        keys: tuple[KeyChange, ...] = ()
        texts: tuple[str, ...] = ()
        lessons: tuple[LessonChange, ...] = ()
        hints: tuple[str, ...] = ()
        if new["playbook"] is not None and old["playbook"] is not None:
            base = _Baseline("before", self.opened_at.astimezone(timezone.utc).replace(tzinfo=None),
                             {"clauses": clause_contents(old["playbook"]), "files": old["files"],
                              "sop_version": old["playbook"].sop.version})
            diff = diff_playbook(base, new["playbook"], self.texts(), lang)  # type: ignore[arg-type]
            impact_rows = self._impact(new, diff.changed_ids, lang)
            keys, texts = self._key_changes(old, new, lang)
            lessons = self._lesson_changes(old["playbook"], new["playbook"], lang)
            hints = self._hints(base, new["playbook"], new, lang)
        return Review(tuple(f"playbook/{n}" for n in changed), problems, diff, impact_rows, keys, texts,
                      lessons, hints)

    def _impact(self, state: dict[str, Any], clause_ids: Sequence[str], lang: str | None) -> tuple[ImpactRow, ...]:
        if not clause_ids:
            return ()
        bank = state["bank"] or self._baseline["bank"] or Bank([], "")  # questions name the same clauses
        frame = impact(state["playbook"], bank, clause_ids, lang)
        practice = state["practice"] or self._baseline["practice"]
        rows = []
        for cid, row in frame.iterrows():
            used = tuple(q.id for q in practice.questions.values() if cid in q.clauses) if practice else ()
            rows.append(ImpactRow(str(cid), row["source"], row["title"], tuple(row["questions"]), used,
                                  tuple(row["lessons"]), tuple(row["checks"]), tuple(row["kpis"])))
        return tuple(rows)

    @staticmethod
    def _key_changes(old: dict[str, Any], new: dict[str, Any], lang: str | None
                     ) -> tuple[tuple[KeyChange, ...], tuple[str, ...]]:
        keys, texts = [], []
        for pool in ("bank", "practice"):
            a, b = old[pool], new[pool]
            if a is None or b is None:
                continue
            for qid, qb in b.questions.items():
                qa = a.questions.get(qid)
                if qa is None:
                    continue
                if question_key(qa) != question_key(qb):
                    keys.append(KeyChange(qid, pool, tuple(qb.clauses), _key_text(qa, lang), _key_text(qb, lang)))
                elif qa.model_dump(exclude={"derived"}) != qb.model_dump(exclude={"derived"}):
                    texts.append(qid)
        return tuple(keys), tuple(texts)

    @staticmethod
    def _lesson_changes(old_pb: Any, new_pb: Any, lang: str | None) -> tuple[LessonChange, ...]:
        """Return the lines of the lesson notebooks' prose (in ``lang``) whose filled-in facts change."""
        out = []
        lang = lang or current_lang()
        old_lessons = {x.id for x in old_pb.lessons}
        for lesson in sorted(new_pb.lessons, key=lambda x: x.number):
            if lesson.id not in old_lessons:
                continue
            try:
                prose = lesson.read().prose(lang)
            except ContentError:  # `sopcoach check` reports an unreadable notebook
                continue
            for line in (ln for p in prose for ln in p.source.splitlines() if FACT.search(ln)):
                try:
                    a, b = fill_facts(old_pb, line, lang), fill_facts(new_pb, line, lang)
                except (KeyError, StopIteration):
                    continue
                if a != b:
                    out.append(LessonChange(f"L{lesson.number} {lesson.id}", lesson.title.get(lang),
                                            a.lstrip("-*# "), b.lstrip("-*# ")))
        return tuple(out)

    def _hints(self, base: Any, new_pb: Any, state: dict[str, Any], lang: str | None) -> tuple[str, ...]:
        out = []
        # a value changed, but a text still quotes the old one (what `sopcoach release` refuses)
        for q in stale_quotes(base, new_pb, lang):
            where = "" if q.where == "text" else f" {q.where}"
            out.append(t(f"条款 {q.clause_id}{where} 的文字仍写着 {q.quoted}({q.path} 已从 {_show(q.old)} 改为 "
                         f"{_show(q.new)});请同步修改,否则发布时须确认。",
                         f"clause {q.clause_id}{where} still says {q.quoted} ({q.lang}; {q.path} changed from "
                         f"{_show(q.old)} to {_show(q.new)}); edit its text, or the release will ask you to "
                         "confirm it.", lang))
        # a retired clause that something still uses
        bank = state.get("bank")
        for c in new_pb.clauses:
            if not c.retired:
                continue
            users = _clause_users(new_pb, c.id)
            if bank is not None:
                users += [f"question {q.id}" for q in bank.questions.values() if c.id in q.clauses]
            if users:
                out.append(t(f"条款 {c.id} 已停用,但仍被使用:{', '.join(users)}。",
                             f"clause {c.id} is retired but still used by: {', '.join(users)}.", lang))
        return tuple(dict.fromkeys(out))

    # -- saving ----------------------------------------------------------------------------------------
    def save(self, note: str = "", by: str = "") -> SaveResult:
        """Write the edited files, keeping the version on disk as a backup.

        Parameters
        ----------
        note : str
            What changed and why (kept with the backup).
        by : str
            Who saved (kept with the backup).

        Returns
        -------
        SaveResult
            Empty (nothing written, no backup) when nothing changed.

        Raises
        ------
        InvalidPlaybook
            When ``sopcoach check`` reports problems for the edited files (nothing is written).
        SaveConflict
            When a playbook file changed on disk since it was opened (nothing is written; the edited
            files are kept in ``playbook-history/drafts/<id>/`` and in this session).
        """
        changed = self.changed_files()
        if not changed:
            return SaveResult((), None)
        problems = self.validate()
        if problems:
            raise InvalidPlaybook(problems)
        texts = self.texts()
        review = self.review()
        state = self._edited_state()
        now = self.clock()

        def checked(disk: dict[str, bytes]) -> dict[str, bytes]:
            moved = sorted({n for n in set(disk) | set(self.files)
                            if n not in disk or n not in self.files or sha256(disk[n]) != self.files[n].sha256})
            if moved:
                draft = self._keep_draft(texts, changed, now)
                raise SaveConflict([f"playbook/{n}" for n in moved], draft)
            return {name: encode(texts[name], self.files[name].raw) for name in changed}

        backup = write_files(self.folder, self.home, checked, "save", note, by, review.changed_clauses, now)
        self._ops = []
        self._open()
        self._base = state  # the files just written: no need to load them again
        self.generation += 1
        return SaveResult(backup.changed if backup else (), backup, review.changed_clauses)


    def _reopen(self) -> None:
        self._ops = []
        super()._reopen()


#: The part each setter edits (for the set of files an edit touches).
_OP_PART = {
    "set_clause_text": "clauses", "set_clause_rationale": "clauses", "retire_clause": "clauses",
    "add_clause": "clauses", "set_sla_limit": "slas", "set_sla_tolerance": "slas", "set_authority": "authority", "set_tier": "tiers",
    "set_stage_order": "stages", "set_stage_role": "stages", "set_kpi_target": "kpis",
    "set_calendar": "calendar", "set_sop_version": "sop", "set_template_review": "templates",
}


def _clause_users(pb: Any, cid: str) -> list[str]:
    users = []
    for part in ("roles", "stages", "steps", "authority", "slas", "kpis", "templates", "confidentiality"):
        for item in getattr(pb, part):
            if item.clause == cid:
                users.append(f"{part} {getattr(item, 'id', getattr(item, 'role', ''))}")
    for tier in pb.tiers:
        if cid in (tier.clause, tier.cadence_clause):
            users.append(f"tiers {tier.id}")
    if pb.calendar.clause == cid:
        users.append("calendar")
    users += [f"lesson {x.id}" for x in pb.lessons if cid in x.clauses]
    return users


def open_playbook(content: Path | str | None = None, home: Path | str | None = None) -> PlaybookEdit:
    """Open an editing session on the installation's content folder.

    Parameters
    ----------
    content, home : path-like, optional
        Default: as :func:`sopcoach.config.settings` resolves them (``SOPCOACH_CONTENT``, else the
        project folder; ``SOPCOACH_HOME``, else ``var/`` in the content folder).
    """
    if content is None or home is None:
        s = settings(content, home)
        content, home = s.content, s.home
    return PlaybookEdit(content, home)
