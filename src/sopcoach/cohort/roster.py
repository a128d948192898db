"""HR rosters: read a CSV or XLSX list of people, compare it with the enrolled learners, apply it at once.

A roster has one row per person and a header row naming its columns, in Chinese or English
(:data:`COLUMNS`; case, blanks, ``_`` and ``-`` in a header do not matter; other columns are
ignored and reported). ``员工编号``/``employee id`` and ``姓名``/``name`` are required; ``团队``/``team``,
``批次``/``cohort``, ``邮箱``/``email``, ``状态``/``status`` and ``离职日期``/``end date`` are optional.

A CSV may be UTF-8, UTF-8 with BOM or GBK/GB18030 (Chinese Excel's "CSV"), with ``,`` ``;`` TAB or
``|`` between fields: :mod:`sopcoach.crm.dialect` tells which, and refuses a guess it cannot trust.

The rules (decided with trainers and HR coordinators):

* A person is a *leaver* when the status says so (:data:`LEAVER_STATUSES`) or the end date has come
  (a future end date keeps them active until a roster read on or after that day). A status that says
  active next to a past end date is a bad row.
* People enrolled but absent from the roster are never deactivated silently: they are listed as
  ``absent`` and kept, unless ``deactivate_missing`` is asked for.
* A blank team, cohort or e-mail cell keeps what is on record (HR files leave cells blank).
* Every bad row is reported (file, line, column, the fix), and then nothing is written: a roster is
  applied completely, in one transaction, or not at all.
* A deactivated learner cannot sign in (their sessions end), and keeps their attempts and
  certificates: a leaver's certificate stays genuine (it attests what was passed).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Any

from ..crm.dialect import check_size, check_xlsx, detect_delimiter, detect_encoding
from ..errors import ContentError, Problem
from ..records.models import AuditEvent, Learner, to_db, utcnow
from ..records.store import MAX_ID_LENGTH, Records, Transaction, hash_access_code, new_access_code

__all__ = [
    "ACTIONS",
    "ACTIVE_STATUSES",
    "COLUMNS",
    "LEAVER_STATUSES",
    "Change",
    "Roster",
    "RosterOutcome",
    "RosterRow",
    "apply_roster",
    "read_roster",
]

#: The columns a roster may have: field -> accepted headers (compared without case, blanks, ``_``, ``-``).
COLUMNS: dict[str, tuple[str, ...]] = {
    "learner_id": ("员工编号", "工号", "员工号", "employee id", "employee no", "employee number", "staff id", "id"),
    "name": ("姓名", "名字", "name", "full name"),
    "team": ("团队", "小组", "部门", "team", "department"),
    "cohort": ("批次", "培训批次", "期次", "cohort", "intake", "batch"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "email", "e-mail", "mail"),
    "status": ("状态", "在职状态", "员工状态", "status", "employment status"),
    "end_date": ("离职日期", "最后工作日", "end date", "leaving date", "last day", "termination date"),
}
REQUIRED = ("learner_id", "name")
#: Status texts meaning the person works here (compared without case); a blank status means the same.
ACTIVE_STATUSES = ("在职", "在岗", "试用", "试用期", "新入职", "正式", "active", "current", "employed", "new hire")
#: Status texts meaning the person has left.
LEAVER_STATUSES = ("离职", "已离职", "离岗", "leaver", "left", "inactive", "terminated", "resigned")
#: What applying a roster does to one person (see :class:`Change`).
ACTIONS = ("create", "update", "reactivate", "deactivate", "unchanged", "absent", "not_enrolled")
#: Largest roster file read (decimal megabytes); a company's whole staff list is far below it.
MAX_ROSTER_MB = 20
LIMITS = {"learner_id": MAX_ID_LENGTH, "name": 200, "team": 100, "cohort": 100, "email": 254}


def _key(header: str) -> str:
    return "".join(ch for ch in str(header).lstrip("\ufeff").casefold() if ch not in " _-\u3000\t")


_HEADER = {_key(h): f for f, hs in COLUMNS.items() for h in hs}
_ACTIVE = {_key(s) for s in ACTIVE_STATUSES}
_LEAVER = {_key(s) for s in LEAVER_STATUSES}


@dataclass(frozen=True)
class RosterRow:
    """One person of a roster: ``line`` is the file's line (CSV) or row (XLSX), 1 = the header.

    ``team``, ``cohort`` and ``email`` are ``None`` when the cell is blank or the column absent
    (the record keeps its value); ``leaver`` is decided from the status and end date.
    """

    line: int
    learner_id: str
    name: str
    team: str | None
    cohort: str | None
    email: str | None
    leaver: bool
    end_date: date | None


@dataclass(frozen=True)
class Roster:
    """A roster read and checked: its rows and the columns it had (``ignored``: headers not used)."""

    path: str
    rows: tuple[RosterRow, ...]
    columns: tuple[str, ...]
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """What applying a roster does to one person.

    ``action`` is one of :data:`ACTIONS`: ``create`` (new learner, gets an access code), ``update``
    (``fields`` says what changes, e.g. ``team: A -> B``), ``reactivate`` (was deactivated, listed
    as working again), ``deactivate`` (a leaver, or absent with ``deactivate_missing``),
    ``unchanged``, ``absent`` (enrolled, not in the roster, kept) or ``not_enrolled`` (a leaver never
    enrolled: nothing to do). ``line`` is the roster line (0 for ``absent``).
    """

    action: str
    learner_id: str
    name: str
    line: int = 0
    fields: tuple[str, ...] = ()
    team: str | None = None
    cohort: str | None = None


@dataclass
class RosterOutcome:
    """The changes of a roster (applied, or only planned with ``dry_run``) and the new access codes by id."""

    changes: list[Change]
    codes: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    def count(self, action: str) -> int:
        """Return how many people get ``action``."""
        return sum(1 for c in self.changes if c.action == action)


# -- reading ------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    """Return a cell as text: Excel's ``1001.0`` is ``1001``; blank is ``""``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value).replace("\u3000", " ").strip()


def _date(value: Any) -> date | None:
    """Read an end date: an Excel date, ``2026-12-31``, ``2026/12/31`` or ``2026.12.31``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if not text:
        return None
    parts = text.replace("/", "-").replace(".", "-").split(" ")[0].split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    return date(int(parts[0]), int(parts[1]), int(parts[2]))


def _csv_cells(raw: bytes, name: str, encoding: str) -> list[tuple[int, list[str]]]:
    decoding = detect_encoding(raw, encoding, name)
    try:
        text = raw.decode(decoding.codec)
    except UnicodeDecodeError:
        if decoding.how != "valid UTF-8":
            raise ContentError([Problem(name, 0, 0, "", f"the file cannot be read as {decoding.describe('en')}; "
                                        "save it again as 'CSV UTF-8' (or pass --encoding CODEC)")]) from None
        decoding = detect_encoding(raw, encoding, name, utf8=False)  # UTF-8 at the start only
        text = raw.decode(decoding.codec, errors="strict")
    text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=detect_delimiter(text, name))
    out, line = [], 1
    for record in reader:
        out.append((line, record))
        line = reader.line_num + 1
    return out


def _xlsx_cells(path: Path, name: str) -> list[tuple[int, list[Any]]]:
    import openpyxl  # noqa: PLC0415 - heavy: only for .xlsx rosters

    check_xlsx(name, str(path), MAX_ROSTER_MB * 5)
    wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    try:
        return [(i, list(r)) for i, r in enumerate(wb.worksheets[0].iter_rows(values_only=True), start=1)]
    finally:
        wb.close()


def _fix_encoding_hint(exc: ContentError) -> ContentError:
    """Say ``--encoding`` where the CRM reader's messages say ``source.encoding`` in a mapping."""
    def fix(message: str) -> str:
        return (message.replace("set source.delimiter in the mapping (e.g. source.delimiter: ';')",
                                "save the roster again as 'CSV UTF-8' (commas between fields)")
                .replace("set source.encoding: ", "pass --encoding ").replace(" in the mapping", ""))
    return ContentError([Problem(p.path, p.line, p.column, p.field, fix(p.message), p.severity) for p in exc.problems])


def read_roster(path: str | Path, today: date, encoding: str = "auto") -> Roster:
    """Read and check a roster file (``.csv`` or ``.xlsx``, first sheet).

    Parameters
    ----------
    path : path-like
        The roster; its name is used in problems.
    today : date
        The company's day (playbook time zone): an end date on or before it makes a leaver.
    encoding : str
        A CSV's text encoding: ``auto`` (detected) or a Python codec name such as ``gbk``.

    Returns
    -------
    Roster
        One :class:`RosterRow` per non-blank row, in file order.

    Raises
    ------
    ContentError
        With every problem found, each naming file, line, column (1-based) and the header, and the
        fix: a missing required column, a blank id or name, an id or text too long, an e-mail
        address or end date that cannot be read, an unknown status, an active status next to a
        past end date, an employee id listed twice. Also for a file that is not .csv or .xlsx, is
        too large, has an encoding that cannot be told, or is an XLSX that is not one.
    """
    path = Path(path)
    name = str(path)
    if path.suffix.lower() not in (".csv", ".txt", ".tsv", ".xlsx", ".xlsm"):
        raise ContentError([Problem(name, 0, 0, "", f"a roster is a .csv or .xlsx file (got {path.suffix or 'no suffix'}); "
                                    "in Excel, save it as 'Excel Workbook (.xlsx)' or 'CSV UTF-8'")])
    check_size(name, path.stat().st_size, MAX_ROSTER_MB)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            cells: list[tuple[int, list[Any]]] = _xlsx_cells(path, name)
        else:
            cells = list(_csv_cells(path.read_bytes(), name, encoding))
    except ContentError as exc:
        raise _fix_encoding_hint(exc) from None
    cells = [(line, record) for line, record in cells if any(_text(v) for v in record)]
    if not cells:
        raise ContentError([Problem(name, 0, 0, "", "the roster is empty; it needs a header row "
                                    "(员工编号, 姓名, ...) and a row per person")])
    header_line, header = cells[0]
    where: dict[str, int] = {}
    ignored = []
    problems = []
    for i, h in enumerate(header):
        f = _HEADER.get(_key(_text(h)))
        if f is None:
            if _text(h):
                ignored.append(_text(h))
        elif f in where:
            problems.append(Problem(name, header_line, i + 1, _text(h), f"a second column for {f} (the first is "
                                    f"column {where[f] + 1}, {_text(header[where[f]])!r}); delete one of them"))
        else:
            where[f] = i
    for f in REQUIRED:
        if f not in where:
            names = " / ".join(COLUMNS[f][:2] + COLUMNS[f][3:4])
            problems.append(Problem(name, header_line, 0, "", f"no {f} column: the header needs one named "
                                    f"{names}; found {', '.join(repr(_text(h)) for h in header)}"))
    if problems:
        raise ContentError(problems)
    rows: list[RosterRow] = []
    seen: dict[str, int] = {}
    for line, record in cells[1:]:
        row, row_problems = _row(name, line, record, where, header, today)
        if row is not None and row.learner_id in seen:
            row_problems.append(Problem(name, line, where["learner_id"] + 1, _text(header[where["learner_id"]]),
                                        f"employee id {row.learner_id!r} is also on line {seen[row.learner_id]}; "
                                        "list each person once"))
        problems += row_problems
        if row is not None and not row_problems:
            rows.append(row)
        if row is not None:
            seen.setdefault(row.learner_id, line)
    if problems:
        raise ContentError(problems)
    return Roster(name, tuple(rows), tuple(f for f in COLUMNS if f in where), tuple(ignored))


def _row(name: str, line: int, record: list[Any], where: dict[str, int], header: list[Any],
         today: date) -> tuple[RosterRow | None, list[Problem]]:
    problems: list[Problem] = []

    def cell(f: str) -> Any:
        i = where.get(f)
        return record[i] if i is not None and i < len(record) else None

    def problem(f: str, message: str) -> None:
        problems.append(Problem(name, line, where[f] + 1, _text(header[where[f]]), message))

    values = {f: _text(cell(f)) for f in LIMITS}
    for f, limit in LIMITS.items():
        if len(values[f]) > limit:
            problem(f, f"at most {limit} characters (got {len(values[f])}); shorten it")
    if not values["learner_id"]:
        problem("learner_id", "the employee id is blank; fill it in or delete the row")
    elif any(ch.isspace() for ch in values["learner_id"]):
        problem("learner_id", f"an employee id has no blanks (got {values['learner_id']!r}); remove them")
    email = values["email"]
    if email:
        try:
            addr = Address(addr_spec=email)
            if "." not in addr.domain:
                raise ValueError(email)
        except (ValueError, HeaderParseError, IndexError):
            problem("email", f"not an e-mail address: {email!r}; write it as name@company.com or leave it blank")
    leaver = False
    status = _key(values_status) if (values_status := _text(cell("status"))) else ""
    if status in _LEAVER:
        leaver = True
    elif status and status not in _ACTIVE:
        problem("status", f"unknown status {values_status!r}: write 在职 or active for people who work here, "
                "离职 or leaver for leavers (or leave it blank)")
    end = None
    try:
        end = _date(cell("end_date"))
    except ValueError:
        problem("end_date", f"not a date: {_text(cell('end_date'))!r}; write it as 2026-12-31 or leave it blank")
    if end is not None and end <= today:
        if status and status in _ACTIVE:
            problem("end_date", f"the status says {values_status!r} but the end date {end.isoformat()} has passed; "
                    "correct one of them")
        leaver = True
    if not values["name"] and not leaver:
        problem("name", "the name is blank; fill it in (only a leaver's row may leave it blank)")
    if not values["learner_id"]:
        return None, problems
    return RosterRow(line, values["learner_id"], values["name"], values["team"] or None, values["cohort"] or None,
                     email or None, leaver, end), problems


# -- comparing and applying ------------------------------------------------------------------------
def _plan(roster: Roster, enrolled: dict[str, Learner], deactivate_missing: bool) -> list[Change]:
    changes = []
    for r in roster.rows:
        x = enrolled.get(r.learner_id)
        if x is None:
            changes.append(Change("not_enrolled" if r.leaver else "create", r.learner_id, r.name, r.line,
                                  team=r.team, cohort=r.cohort))
            continue
        name = r.name or x.name
        if r.leaver:
            changes.append(Change("deactivate" if x.active else "unchanged", r.learner_id, name, r.line,
                                  team=x.team, cohort=x.cohort))
            continue
        fields = tuple(f"{f}: {getattr(x, f) or '-'} -> {new}" for f, new in
                       (("name", r.name), ("team", r.team), ("cohort", r.cohort), ("email", r.email))
                       if new is not None and new != getattr(x, f))
        action = "reactivate" if not x.active else "update" if fields else "unchanged"
        changes.append(Change(action, r.learner_id, name, r.line, fields, r.team or x.team, r.cohort or x.cohort))
    listed = {r.learner_id for r in roster.rows}
    for x in enrolled.values():
        if x.id not in listed and x.active:
            changes.append(Change("deactivate" if deactivate_missing else "absent", x.id, x.name,
                                  fields=("not in the roster",), team=x.team, cohort=x.cohort))
    return changes


def apply_roster(records: Records, roster: Roster, *, deactivate_missing: bool = False, reissue: bool = False,
                 dry_run: bool = False, now: datetime | None = None) -> RosterOutcome:
    """Create, update, reactivate and deactivate learners as the roster says, in one transaction.

    Parameters
    ----------
    records : Records
    roster : Roster
        From :func:`read_roster` (already checked: every row is good).
    deactivate_missing : bool
        Deactivate the active learners the roster does not list (default: list them as ``absent``).
    reissue : bool
        Give every active person of the roster who is already enrolled a new access code too
        (their old code stops working and their sessions end); by default only new learners get one.
    dry_run : bool
        Only say what would change; write nothing and issue no code.
    now : datetime, optional
        Aware UTC time recorded as enrolment and deactivation time (default: now).

    Returns
    -------
    RosterOutcome
        The changes, in roster order (absent learners last), and each new access code by id (shown
        once: only a salted hash is stored).

    Raises
    ------
    RecordsError
        On a database error (nothing is written).
    """
    now = now or utcnow()
    enrolled_ids = {x.id for x in records.learners()}
    codes: dict[str, str] = {}
    if not dry_run:  # the codes are hashed before the transaction (PBKDF2 takes ~0.1 s each)
        codes = {r.learner_id: new_access_code() for r in roster.rows
                 if not r.leaver and (reissue or r.learner_id not in enrolled_ids)}
    hashed = {k: hash_access_code(c) for k, c in codes.items()}

    def do(tx: Transaction) -> list[Change]:
        enrolled = {x.id: x for x in tx.learners()}
        changes = _plan(roster, enrolled, deactivate_missing)
        if dry_run:
            return changes
        by_id = {r.learner_id: r for r in roster.rows}
        for c in changes:
            r = by_id.get(c.learner_id)
            if c.action == "create" and r is not None:
                row = Learner(id=r.learner_id, name=r.name, team=r.team, cohort=r.cohort, email=r.email,
                              created_at=to_db(now), code_salt="", code_hash="!")
                tx.add(row)
                tx.flush()
            elif c.action in ("update", "reactivate", "unchanged") and r is not None and not r.leaver:
                row = enrolled[c.learner_id]
                row.name = r.name or row.name
                row.team, row.cohort, row.email = r.team or row.team, r.cohort or row.cohort, r.email or row.email
                row.deactivated_at = None
            elif c.action == "deactivate":
                row = enrolled[c.learner_id]
                row.deactivated_at = to_db(now)
                tx.end_sessions(row.id, "deactivated", now)
                tx.add(AuditEvent(at=to_db(now), learner_id=row.id, kind="learner_deactivated",
                                  detail=f"roster {roster.path}" + (f" line {c.line}" if c.line else ", not listed")))
                continue
            else:
                continue
            if c.learner_id in hashed:
                tx.set_access_code(row, hashed[c.learner_id])
        return changes
    changes = records.transaction(do)
    issued = {c.learner_id for c in changes if c.action in ("create", "update", "reactivate", "unchanged")}
    return RosterOutcome(changes, {k: v for k, v in codes.items() if k in issued}, dry_run)
