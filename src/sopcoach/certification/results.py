"""Exam results for trainers: per attempt and per person, filtered, exported to CSV, JSON or XLSX.

Per attempt: one row per attempt (columns :data:`ATTEMPT_COLUMNS`, the ``sopcoach results`` export
of old). Per person: attempts at the certification exam, best and last score, pass status, time
taken, and the certificate in force (see :mod:`sopcoach.certification.certificates`). Filters: team, cohort and
a date range on the attempts' start, in the playbook's time zone (calendar dates, both ends
included).
"""
from __future__ import annotations

import json
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ..records.models import from_db, utcnow
from ..records.store import Records
from ..spreadsheet import safe_frame, xlsx_bytes
from .certificates import certificate_table
from .scoring import points_text, report_from_json

ATTEMPT_COLUMNS = ["attempt_id", "learner_id", "name", "team", "cohort", "exam_id", "number", "state",
                   "started_at", "closed_at", "minutes_taken", "score", "percent", "passed",
                   "playbook_version"]
PERSON_COLUMNS = ["learner_id", "name", "team", "cohort", "attempts", "best_percent", "last_percent",
                  "passed", "first_passed_at", "last_attempt_at", "minutes_best", "minutes_last",
                  "certificate", "certificate_status", "valid_until", "active"]
FORMATS = ("csv", "json", "xlsx")


def _as_date(value: date | str | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def attempt_rows(records: Records, *, team: str | None = None, cohort: str | None = None,
                 since: date | str | None = None, until: date | str | None = None,
                 exam_id: str | None = None, timezone: str = "Asia/Shanghai") -> list[dict[str, Any]]:
    """Return one dict per attempt (keys :data:`ATTEMPT_COLUMNS`), oldest first.

    Parameters
    ----------
    team, cohort : str, optional
        Keep the attempts of learners in this team / cohort (exact match).
    since, until : date or ISO date text, optional
        Keep attempts started on or after ``since`` and on or before ``until``, as calendar dates
        in ``timezone``.
    exam_id : str, optional
        Keep one exam's attempts (default: all, recertifications included).

    Returns
    -------
    list of dict
        ``started_at``/``closed_at`` are ISO texts in UTC; ``minutes_taken`` elapsed minutes
        (one decimal, empty while open); ``score`` points earned/possible (``27/30``, see
        :func:`~.scoring.points_text`); ``percent`` the displayed percent (rounded down); ``passed``
        a bool (empty while open).
    """
    tz = ZoneInfo(timezone)
    lo, hi = _as_date(since), _as_date(until)
    learners = {x.id: x for x in records.learners()}
    rows = []
    for a in records.attempts(exam_id=exam_id):
        person = learners.get(a.learner_id)
        if team is not None and (person is None or (person.team or "") != team):
            continue
        if cohort is not None and (person is None or (person.cohort or "") != cohort):
            continue
        start, end = from_db(a.started_at), from_db(a.closed_at)
        day = start.astimezone(tz).date()
        if (lo is not None and day < lo) or (hi is not None and day > hi):
            continue
        rows.append({
            "attempt_id": a.id, "learner_id": a.learner_id, "name": person.name if person else "",
            "team": (person.team or "") if person else "", "cohort": (person.cohort or "") if person else "",
            "exam_id": a.exam_id, "number": a.number, "state": a.state,
            "started_at": start.isoformat(), "closed_at": end.isoformat() if end else "",
            "minutes_taken": round((end - start).total_seconds() / 60, 1) if end else "",
            "score": _points(a),
            "percent": a.percent or "", "passed": "" if a.passed is None else bool(a.passed),
            "playbook_version": a.playbook_version,
        })
    return rows


def _points(a: Any) -> str:
    """Points earned/possible of a scored attempt (``27/30``), from its stored report."""
    share = _share(a)
    return "" if share is None else points_text(*share)


def _share(a: Any) -> tuple[Fraction, Fraction] | None:
    """Exact (earned, possible) points of a scored attempt from its stored report; ``None`` unscored."""
    if not a.report:
        return None
    rep = report_from_json(a.report)
    return rep.earned, rep.possible


def attempt_table(records: Records, **filters: Any) -> pd.DataFrame:
    """Return :func:`attempt_rows` as a DataFrame (columns :data:`ATTEMPT_COLUMNS`)."""
    return pd.DataFrame(attempt_rows(records, **filters), columns=ATTEMPT_COLUMNS)


def person_table(records: Records, exam_id: str, *, team: str | None = None, cohort: str | None = None,
                 since: date | str | None = None, until: date | str | None = None,
                 timezone: str = "Asia/Shanghai", now: datetime | None = None) -> pd.DataFrame:
    """Return one row per person: attempts, best and last score, pass status, time taken.

    Parameters
    ----------
    exam_id : str
        The certification exam (the blueprint id); recertification attempts are not counted.
    team, cohort, since, until, timezone
        As for :func:`attempt_rows`. Without a date filter, enrolled people who never started
        appear with 0 attempts; with one, only people with attempts in the range.

    Returns
    -------
    DataFrame
        Columns :data:`PERSON_COLUMNS`: ``attempts`` (int), ``best_percent``/``last_percent``
        (float percent, rounded down to one decimal as shown to the learner; ``NaN`` before a
        scored attempt), ``passed`` (bool), ``first_passed_at``/``last_attempt_at`` (ISO UTC
        text), ``minutes_best``/``minutes_last`` (elapsed minutes of the best and the last
        attempt), ``certificate`` (code of the certificate in force), ``certificate_status``
        (``current``, ``recertify``, ``expired``, ``revoked`` or empty), ``valid_until`` (ISO),
        ``active`` (bool: false for a deactivated learner, a leaver, whose results are kept).
    """
    attempts = attempt_rows(records, team=team, cohort=cohort, since=since, until=until, exam_id=exam_id,
                            timezone=timezone)
    shares = {a.id: share[0] / share[1] for a in records.attempts(exam_id=exam_id)
              if (share := _share(a)) is not None}  # exact: "26.5/30" is for people, not for ranking
    by_person: dict[str, list[dict[str, Any]]] = {}
    for r in attempts:
        by_person.setdefault(r["learner_id"], []).append(r)
    certs = certificate_table(records, now or utcnow())
    certs = certs[certs["status"] != "superseded"].drop_duplicates("learner_id")  # newest first
    cert_of = {r.learner_id: r for r in certs.itertuples()}
    people = records.learners()
    dated = _as_date(since) is not None or _as_date(until) is not None
    rows = []
    for p in people:
        if (team is not None and (p.team or "") != team) or (cohort is not None and (p.cohort or "") != cohort):
            continue
        mine = by_person.get(p.id, [])
        if dated and not mine:
            continue
        closed = [r for r in mine if r["score"]]
        best = max(closed, key=lambda r: (shares[r["attempt_id"]], -r["number"]), default=None)
        last = closed[-1] if closed else None
        passed = [r for r in closed if r["passed"] is True]
        cert = cert_of.get(p.id)
        rows.append({
            "learner_id": p.id, "name": p.name, "team": p.team or "", "cohort": p.cohort or "",
            "attempts": len(mine),
            "best_percent": float(best["percent"]) if best else float("nan"),
            "last_percent": float(last["percent"]) if last else float("nan"),
            "passed": bool(passed), "first_passed_at": passed[0]["closed_at"] if passed else "",
            "last_attempt_at": mine[-1]["started_at"] if mine else "",
            "minutes_best": best["minutes_taken"] if best else float("nan"),
            "minutes_last": last["minutes_taken"] if last else float("nan"),
            "certificate": cert.code if cert is not None else "",
            "certificate_status": cert.status if cert is not None else "",
            "valid_until": cert.expires_at.isoformat() if cert is not None else "",
            "active": p.active,
        })
    out = pd.DataFrame(rows, columns=PERSON_COLUMNS)
    out["attempts"] = out["attempts"].astype("int64")
    for c in ("best_percent", "last_percent", "minutes_best", "minutes_last"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    return out


def export_bytes(df: pd.DataFrame, fmt: str, sheet: str = "results") -> bytes:
    """Return ``df`` as a file in ``fmt``.

    ``csv``: UTF-8 with a byte-order mark, so Excel opens Chinese names correctly, lines ending in CRLF
    (RFC 4180; a carriage return inside a cell is then quoted); ``json``: a list
    of records (UTF-8, unescaped Chinese); ``xlsx``: one sheet named ``sheet``. In CSV a text cell
    that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``...) starts with ``'``
    (:func:`sopcoach.spreadsheet.safe_cell`); XLSX and JSON keep every text exactly, XLSX as string
    cells that never run (:func:`sopcoach.spreadsheet.xlsx_bytes`); numbers stay numbers.
    """
    if fmt == "csv":
        return safe_frame(df).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
    if fmt == "json":
        data = json.loads(df.to_json(orient="records", force_ascii=False))
        return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    if fmt == "xlsx":
        return xlsx_bytes(df, sheet)
    raise ValueError(f"format must be one of {', '.join(FORMATS)} (got {fmt!r})")


def export(df: pd.DataFrame, path: Path | str, fmt: str | None = None) -> Path:
    """Write ``df`` to ``path`` in ``fmt`` (default: from the file's suffix); return the path."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    path.write_bytes(export_bytes(df, fmt))
    return path
