"""Case studies for the monthly meeting (seed:3.3.2): a deal's timeline against the SOP, each deviation and its clause.

:func:`case_study` builds one deal's walkthrough: its events in time order, each playbook stage with
the time limits (``slas.yaml``) that apply in it, the stage's duration in working days and each
limit's verdict (met, breached, not due yet, not reached, not checkable), the deviations with the
clause they break, and discussion prompts. :func:`draft_question` turns a deviation into a practice
question draft for the trainers (the bank's question shape, the clause cited, the deal's numbers);
:func:`sopcoach.authoring.question_edit.save_draft` keeps it in ``quizzes/drafts/``, outside every
exam and lesson.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..crm.reading import CrmData
from ..content.businesstime import DurationUnit
from ..errors import AnalysisError, CalendarRangeError
from ..i18n import current_lang, t, zone_name
from ..labels import DURATION_WORDS, VALUES, duration_text, event_label, money_text
from .compliance import (_TS, FOLLOW_UP_BREACHES, FOLLOW_UP_VERDICTS, STAGE_MILESTONES, Compliance, _fmt_local,
                         MISSING_FIELDS, check_compliance, milestones,
                         missing_field_words)
from .stages import stage_entries

__all__ = ["VERDICTS", "CaseStudy", "all_months_compliance", "case_study", "crm_note", "deal_words",
           "draft_question", "remember_compliance", "sla_phases", "stage_words"]

#: Verdict of a time limit on one deal -> (zh-CN, en) words a sales manager reads.
VERDICTS = {"met": ("达标", "met"), "breached": ("违反", "breached"), "pending": ("未到期", "not due yet"),
            "not_reached": ("未到达", "not reached"), "not_checkable": ("无法检查", "not checkable")}
#: The phase of a limit that no stage starts: after the deal closes, or at any stage (an e-mail, an issue).
AFTER, ANY = "_after", "_any"



# ----------------------------------------------------------------------------------- names


def _text(value: Any) -> str | None:
    """A text cell, or None when blank or missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def deal_words(deal: pd.Series, deal_id: str, lang: str | None = None) -> dict[str, str | None]:
    """Return how people name a deal: ``title`` (its CRM name, else its id), ``customer`` (the customer's
    name, else the account as the export writes it; None when unknown), ``owner`` (None when unknown) and
    ``ids`` (the ids not already shown, as a small note: "商机编号 006…；客户编号 001…"; "" when none).

    ``deal`` is a row of ``CrmData.deals`` (``name``, ``account``, ``account_name``, ``owner``).

    >>> import pandas as pd
    >>> w = deal_words(pd.Series({"name": "Edge SLA", "account": "001A", "account_name": "Edge", "owner": None}),
    ...                "006X", "en")
    >>> w["title"], w["customer"], w["owner"], w["ids"]
    ('Edge SLA', 'Edge', None, 'deal id 006X; customer id 001A')
    """
    name, account, account_name = _text(deal.get("name")), _text(deal.get("account")), _text(deal.get("account_name"))
    ids = []
    if name:
        ids.append(t(f"商机编号 {deal_id}", f"deal id {deal_id}", lang))
    if account_name and account and account != account_name:
        ids.append(t(f"客户编号 {account}", f"customer id {account}", lang))
    return {"title": name or deal_id, "customer": account_name or account, "owner": _text(deal.get("owner")),
            "ids": t("；", "; ", lang).join(ids)}


def stage_words(playbook: Any, stage: Any, raw: Any, lang: str | None = None) -> tuple[str, str]:
    """Return a deal's stage as the SOP names it in ``lang`` and the CRM's own value when that reads otherwise.

    ``stage`` is a playbook stage id, ``won`` or ``lost`` (missing: the CRM's value is not mapped, so
    the CRM's value is the name); ``raw`` the CRM's value. The second item is "" when the CRM
    writes the same words.

    >>> from sopcoach.config import PROJECT_ROOT
    >>> from sopcoach.content.playbook import load_playbook
    >>> pb = load_playbook(PROJECT_ROOT / "playbook")
    >>> stage_words(pb, "first_contact", "Prospecting", "en"), stage_words(pb, "won", "Closed Won", "zh-CN")
    (('Customer contact', 'Prospecting'), ('赢单', 'Closed Won'))
    """
    raw_text = _text(raw) or ""
    names = {s.id: s.name.get(lang) for s in playbook.stages}
    names.update({"won": t("赢单", "won", lang), "lost": t("丢单", "lost", lang)})
    name = names.get(stage) if isinstance(stage, str) else None
    if name is None:
        return raw_text or "—", ""
    return name, "" if raw_text.casefold() == name.casefold() else raw_text


def crm_note(raw: str, lang: str | None = None) -> str:
    """The CRM's own value as a small note after the SOP's name: "（CRM：Prospecting）" ("" for "")."""
    return t(f"（CRM：{raw}）", f" (CRM: {raw})", lang) if raw else ""


def all_months_compliance(data: CrmData, playbook: Any, lang: str | None = None) -> Compliance:
    """Return the export's compliance over all months in ``lang``, computed once per loaded export.

    The result is kept with the loaded data (``CrmData``'s cache, keyed by the playbook and the
    language), so every case study of the export, and a question draft's other language, reuse
    it; reading the export again starts afresh. :func:`remember_compliance` stores one computed
    elsewhere (the review of all months).
    """
    lang = lang or current_lang()
    key = ("all_months_compliance", id(playbook), lang)
    if key not in data._cache:
        remember_compliance(data, playbook, check_compliance(data, playbook, lang=lang), lang)
    return data._cache[key][1]


def remember_compliance(data: CrmData, playbook: Any, compliance: Compliance, lang: str) -> None:
    """Keep ``compliance`` (of all months, in ``lang``) for :func:`all_months_compliance`.

    The playbook is kept with it, so its ``id`` (the key) cannot name another playbook later.
    """
    data._cache[("all_months_compliance", id(playbook), lang)] = (playbook, compliance)


# ----------------------------------------------------------------------------------- case study


@dataclass(frozen=True)
class CaseStudy:
    """One deal against the SOP, for the monthly meeting (seed:3.3.2).

    ``deal``: the deal's row. ``timeline``: its events in time order, columns ``timestamp``
    (datetime64[us, UTC]), ``local_time`` (str, playbook zone), ``kind``, ``stage`` (playbook stage
    in force), ``what`` (str), ``deviation`` (str, empty when none). ``stages``: index playbook
    stage id; columns ``name``, ``entered`` (datetime64[us, UTC]), ``observed`` (bool), ``dated``
    (bool: a stage change records when), ``exit_criteria`` (str). ``sop``: the deal against the
    SOP's time limits, one row per stage and limit that applies in it (a stage without a limit has
    one row with ``sla`` ""), then the limits that start after the deal (phase ``_after``) or at
    any stage (``_any``); see :func:`sop_table`. ``deviations``: the deal's compliance findings
    plus ``clause_title`` and ``clause_text`` (the clause quoted). ``prompts``: discussion
    questions. ``checked``: how many SOP checks the export supported (0: an empty ``deviations``
    says nothing). ``timezone``: the playbook's, in which ``local_time`` is written; ``currency``: the
    export's (the deal's ``amount``).
    """

    deal_id: str
    deal: pd.Series
    timeline: pd.DataFrame
    stages: pd.DataFrame
    deviations: pd.DataFrame
    prompts: list[str]
    checked: int = 0
    sop: pd.DataFrame = field(default_factory=pd.DataFrame)
    timezone: str = "UTC"
    lang: str = "zh-CN"
    currency: str | None = None


def case_study(data: CrmData, playbook: Any, deal_id: str, compliance: Compliance | None = None,
               *, lang: str | None = None) -> CaseStudy:
    """Build the timeline of one deal against the SOP stages, with each deviation and its clause.

    Parameters
    ----------
    data : CrmData
    playbook : Playbook
    deal_id : str
    compliance : Compliance, optional
        The export's compliance over all months (:func:`check_compliance` with no month; default:
        :func:`all_months_compliance`, once per export and language). A month's compliance holds only the
        instances that started in the month,
        so a deal's earlier deviations would be missing.
    lang : {"zh-CN", "en"}, optional

    Returns
    -------
    CaseStudy

    Raises
    ------
    AnalysisError
        When ``deal_id`` is not in the export.
    """
    lang = lang or current_lang()
    tz = playbook.calendar.timezone
    deals = data.deals.drop_duplicates("deal_id").set_index("deal_id")
    if deal_id not in deals.index:
        raise AnalysisError(f"deal {deal_id!r} is not in the export")
    deal = deals.loc[deal_id]
    compliance = compliance or all_months_compliance(data, playbook, lang)
    ev = data.events[(data.events["deal_id"] == deal_id)
                     | (data.events["deal_id"].isna() & pd.notna(deal["account"])
                        & (data.events["account_id"] == deal["account"]))]
    ev = ev.sort_values("timestamp", kind="stable")
    names = {s.id: s.name.get(lang) for s in playbook.stages}
    names.update({"won": t("赢单", "won", lang), "lost": t("丢单", "lost", lang)})
    dev = compliance.for_deal(deal_id).copy()
    currency = data.mapping.spec.source.currency

    def clause_text(cid: str, part: str) -> str:
        try:
            c = playbook.clause(cid)
        except KeyError:
            return ""
        return (c.title if part == "title" else c.text).get(lang)

    dev["clause_title"] = dev["clause"].map(lambda c: clause_text(c, "title"))
    dev["clause_text"] = dev["clause"].map(lambda c: clause_text(c, "text"))
    current = None
    stages_at = []
    for r in ev.itertuples():
        if r.kind == "stage_change" and isinstance(r.stage, str):
            current = r.stage
        stages_at.append(names.get(current, current or ""))
    flagged = dict(zip(dev["event_id"], dev["rule"] + ": " + dev["actual"]))

    def what(r: Any) -> str:
        if r.kind == "stage_change":
            label, raw = stage_words(playbook, r.stage, r.stage_raw, lang)
            return t(f"进入阶段：{label}", f"stage: {label}", lang) + crm_note(raw, lang)
        parts = [t(*VALUES["kind"].get(str(r.kind), (str(r.kind), str(r.kind))), lang)]
        if isinstance(r.direction, str):
            parts.append(t({"inbound": "（客户发起）", "outbound": "（我方发起）"}[r.direction],
                           f"({r.direction})", lang))
        if isinstance(r.milestone, str):  # the SOP step it records, in words
            parts.append(t(f"（{event_label(r.milestone, lang)}）", f"({event_label(r.milestone, lang)})", lang))
        if isinstance(r.subject, str):
            parts.append(r.subject)
        if pd.notna(r.amount):
            parts.append(money_text(r.amount, currency, lang))
        return " ".join(parts)

    timeline = pd.DataFrame({
        "timestamp": ev["timestamp"].to_numpy(),
        "local_time": [_fmt_local(x, tz) for x in ev["timestamp"]],
        "kind": ev["kind"].astype(str).to_numpy(),
        "stage": stages_at,
        "what": [what(r) for r in ev.itertuples()],
        "deviation": [flagged.get(e, "") for e in ev["event_id"]],
        "event_id": ev["event_id"].to_numpy(),
    })
    timeline["timestamp"] = pd.to_datetime(timeline["timestamp"], utc=True).astype(_TS)
    entries = stage_entries(data, playbook)
    ent = entries[entries["deal_id"] == deal_id].set_index("stage")
    stages = pd.DataFrame({
        "name": [s.name.get(lang) for s in playbook.stages],
        "entered": [ent["entered"].get(s.id, pd.NaT) for s in playbook.stages],
        "observed": [bool(ent["observed"].get(s.id, False)) for s in playbook.stages],
        "dated": [bool(ent["dated"].get(s.id, False)) for s in playbook.stages],
        "exit_criteria": ["; ".join(c.get(lang) for c in s.exit_criteria) for s in playbook.stages],
    }, index=pd.Index([s.id for s in playbook.stages], name="stage"))
    stages["entered"] = pd.to_datetime(stages["entered"], utc=True).astype(_TS)
    ms = milestones(data, playbook, entries)
    sop = sop_table(playbook, deal_id, deal, stages, ms[ms["deal_id"] == deal_id], compliance, data.as_of, lang,
                    events=ev)
    return CaseStudy(deal_id, deal, timeline, stages, dev.reset_index(drop=True),
                     discussion_prompts(deal, dev, stages, lang, checked=compliance.checked, sop=sop),
                     compliance.checked, sop, tz, lang, currency)


def sla_phases(playbook: Any) -> dict[str, str]:
    """Return ``{sla id: phase}``: the playbook stage in which each time limit's clock starts.

    ``lead_assigned`` (the deal is created) starts in the first stage; ``needs_confirmed``,
    ``proposal_accepted`` and ``contract_signed`` on entering the stage their entry criterion names
    (:data:`~sopcoach.analytics.compliance.STAGE_MILESTONES`: solution demo, quotation, payment
    collection; seed:1.2.2); ``deal_closed`` after the deal (:data:`AFTER`, the satisfaction call,
    seed:1.2.1); any other start (a customer e-mail, a reported technical issue) at any stage
    (:data:`ANY`).

    >>> from sopcoach.config import PROJECT_ROOT
    >>> from sopcoach.content.playbook import load_playbook
    >>> sla_phases(load_playbook(PROJECT_ROOT / "playbook"))["first_proposal"]
    'solution_demo'
    """
    first = playbook.stages[0].id if playbook.stages else ANY
    out = {}
    for sla in playbook.slas:
        start = sla.start_event
        out[sla.id] = (first if start == "lead_assigned" else STAGE_MILESTONES.get(start)
                       or (AFTER if start == "deal_closed" else ANY))
    return out


def _ts(value: Any) -> pd.Timestamp | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value)


def _working_days(cal: Any, start: pd.Timestamp | None, end: pd.Timestamp | None) -> float:
    """Working days (:meth:`BusinessCalendar.elapsed`, fractional) from ``start`` to ``end``; NaN when unknown."""
    if start is None or end is None:
        return float("nan")
    try:
        return float(cal.elapsed(start.to_pydatetime(), end.to_pydatetime(), DurationUnit.WORKING_DAYS))
    except CalendarRangeError:
        return float("nan")


def sop_table(playbook: Any, deal_id: str, deal: pd.Series, stages: pd.DataFrame, ms: pd.DataFrame,
              compliance: Compliance, as_of: Any, lang: str, events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return one deal against the SOP's time limits, stage by stage (seed:1.2.1, seed:1.2.2, seed:3.3.2).

    Each stage's time: from its recorded entry (the first stage: the deal's creation when no entry
    is recorded) to the next recorded entry of a later stage, else the close (the recorded change to
    won or lost, else the deal's close date), else ``as_of`` (still open, so far), in working days
    of the playbook's business calendar. Each limit's verdict on this deal: ``breached`` when a
    compliance finding names the deal (the SOP's own check, over all months), ``not_checkable``
    when the export cannot support the check (its reason), else ``met`` (the end event came by the
    due time), ``pending`` (not due yet at ``as_of``) or ``not_reached`` (the clock never started:
    the deal never got there).

    Parameters
    ----------
    playbook : Playbook
    deal_id : str
    deal : Series
        The deal's row (``created``, ``closed``, ``outcome``).
    stages : DataFrame
        :attr:`CaseStudy.stages`.
    ms : DataFrame
        The deal's SLA events (:func:`~sopcoach.analytics.compliance.milestones`).
    compliance : Compliance
        Over all months.
    as_of : datetime-like or None
        The moment the export describes (UTC).
    lang : {"zh-CN", "en"}
    events : DataFrame, optional
        The deal's events: the e-mail reply limit is "not reached" on a deal without a customer e-mail.

    Returns
    -------
    pandas.DataFrame
        RangeIndex. Columns ``phase`` (stage id, ``_after`` or ``_any``), ``stage`` (its name),
        ``entered``, ``left`` (datetime64[us, UTC], NaT when unknown), ``working_days`` (float64,
        the stage's time in working days, NaN when unknown), ``stage_note`` (str: how the time was
        measured or why it is blank), ``sla`` (SLA id, "" for none), ``rule`` (its name), ``limit``
        (str, e.g. "3 working days"), ``clause``, ``clause_title``, ``source`` (``seed:N`` or
        ``company-setting``: kept in the data, not shown on the page), ``start``, ``due``, ``end``
        (datetime64[us, UTC]), ``value`` (float64 in ``unit``), ``unit`` (str), ``actual`` (str),
        ``verdict`` (a key of :data:`VERDICTS`), ``verdict_text`` and ``reason`` (str: why a limit is not
        checkable, in a manager's words), ``help`` (str: for a limit the export cannot support, the SLA
        event or input it lacks, e.g. ``needs_confirmed``, ``email_direction``; "" otherwise; see
        :func:`missing_data_note`).
    """
    cal = playbook.business_calendar()
    as_of_ts = _ts(as_of)
    phases = sla_phases(playbook)
    checks = compliance.checks
    findings = compliance.for_deal(deal_id)
    follow = compliance.follow_ups
    follow = follow[follow["deal_id"] == deal_id] if len(follow) else follow
    ids = list(stages.index)
    dated = {s: _ts(stages.at[s, "entered"]) if stages.at[s, "dated"] else None for s in ids}
    if ids and dated[ids[0]] is None and pd.notna(deal.get("created")):
        dated[ids[0]] = _ts(deal["created"])
    closed = _ts(deal.get("closed")) if deal.get("outcome") in ("won", "lost") else None
    if closed is not None and events is not None and len(events):
        # the recorded change to won/lost is when the deal closed (a CRM's close date may be the
        # date planned, e.g. Salesforce's CloseDate weeks after the history's Closed Lost)
        recorded = events[(events["kind"] == "stage_change") & ~events["synthetic"].astype(bool)
                          & events["stage"].isin(["won", "lost"])]["timestamp"].dropna()
        if len(recorded):
            closed = _ts(recorded.min())

    def stage_span(i: int) -> tuple[pd.Timestamp | None, pd.Timestamp | None, str]:
        sid = ids[i]
        entered = dated[sid]
        if entered is None:
            reached = pd.notna(stages.at[sid, "entered"]) or stages.at[sid, "observed"]
            return None, None, (t("未记录进入时间", "entry not recorded", lang) if reached
                                else t("未到达", "not reached", lang))
        later = [dated[s] for s in ids[i + 1:] if dated[s] is not None and dated[s] >= entered]
        if later:
            skipped = dated[ids[i + 1]] is None if i + 1 < len(ids) else False
            return entered, later[0], (t("至下一个有记录的阶段（其间阶段未记录）", "until the next recorded stage "
                                         "(stages between were not recorded)", lang) if skipped else "")
        if any(pd.notna(stages.at[s, "entered"]) or stages.at[s, "observed"] for s in ids[i + 1:]):
            return entered, None, t("已进入后续阶段（其进入时间未记录），停留时间不详",
                                    "moved on to a later stage at a time not recorded: time in stage unknown", lang)
        if closed is not None and closed >= entered:
            return entered, closed, t("至关闭", "until the close", lang)
        if deal.get("outcome") not in ("won", "lost") and as_of_ts is not None:
            return entered, as_of_ts, t("进行中，至导出时", "still open, until the export", lang)
        return entered, None, t("离开时间未记录", "exit not recorded", lang)

    def clause_part(cid: str, part: str) -> str:
        try:
            c = playbook.clause(cid)
        except KeyError:
            return ""
        return c.source if part == "source" else (c.title if part == "title" else c.text).get(lang)

    def verdict(sla: Any) -> dict[str, Any]:
        cid = f"sla:{sla.id}"
        d = sla.duration
        out: dict[str, Any] = dict(start=None, due=None, end=None, value=float("nan"), unit=d.unit.value, actual="",
                                   reason="", help="")
        row = checks.loc[cid] if cid in checks.index else None
        mine = findings[findings["check"] == cid]
        if len(mine):
            f = mine.iloc[0]
            more = t(f"（共 {len(mine)} 次）", f" ({len(mine)} times)", lang) if len(mine) > 1 else ""
            return {**out, "start": _ts(f["start"]), "due": _ts(f["due"]), "end": _ts(f["end"]),
                    "value": float(f["value"]), "actual": str(f["actual"]) + more, "verdict": "breached"}
        if row is None or row["status"] != "checked":
            # the check's reason is in a manager's words already; ``needs`` names the missing fields
            reason, need = ("", "") if row is None else (str(row["reason"]), str(row.get("needs", "") or ""))
            return {**out, "verdict": "not_checkable", "reason": reason, "help": need}
        if sla.scheduled:
            fu = follow[follow["check"] == cid] if len(follow) else follow
            if not len(fu):
                return {**out, "verdict": "not_reached"}
            v = str(fu.iloc[0]["verdict"])
            words = t(*FOLLOW_UP_VERDICTS.get(v, (v, v)), lang)
            key = ("breached" if v in FOLLOW_UP_BREACHES else "pending" if v == "pending"
                   else "not_checkable" if v == "unchecked" else "met")
            return {**out, "start": _ts(fu.iloc[0]["start"]), "end": _ts(fu.iloc[0]["end"]), "actual": words,
                    "verdict": key}
        if sla.start_event == "customer_email_received":  # one instance per e-mail: the findings say which were late
            inbound = 0 if events is None else int(((events["kind"] == "email")
                                                     & (events["direction"] == "inbound")).sum())
            if events is not None and not inbound:
                return {**out, "verdict": "not_reached", "actual": t("没有客户来信", "no customer e-mail", lang)}
            return {**out, "verdict": "met", "actual": t(
                f"{inbound} 封客户来信均按时回复", "the customer e-mail was answered in time" if inbound == 1
                else f"all {inbound} customer e-mails answered in time", lang)}
        starts = ms[ms["milestone"] == sla.start_event].sort_values("timestamp", kind="stable")
        if not len(starts):
            phase = phases[sla.id]
            reached = phase in stages.index and (pd.notna(stages.at[phase, "entered"]) or stages.at[phase, "observed"])
            if reached:  # the deal got there, but when the clock started is not recorded
                what = event_label(sla.start_event, lang)
                return {**out, "verdict": "not_checkable", "reason": t(
                    f"本商机没有记录「{what}」的时间。", f"this deal has no recorded time for '{what}'.", lang)}
            return {**out, "verdict": "not_reached"}
        start = pd.Timestamp(starts["timestamp"].iloc[0])
        ends = ms[(ms["milestone"] == sla.end_event)].sort_values("timestamp", kind="stable")
        after = ends[ends["timestamp"] >= start]
        end = _ts(after["timestamp"].iloc[0]) if len(after) else None
        if end is None and sla.end_event == "first_contact_made" and len(ends):
            end = _ts(ends["timestamp"].iloc[0])  # contacted as a lead, before the deal was created: in time
        try:
            due = pd.Timestamp(cal.add(start.to_pydatetime(), d))
            if end is not None:
                value = float(cal.elapsed(start.to_pydatetime(), max(end, start).to_pydatetime(), d.unit))
            elif as_of_ts is not None:
                value = float(cal.elapsed(start.to_pydatetime(), as_of_ts.to_pydatetime(), d.unit))
            else:
                value = float("nan")
        except CalendarRangeError as exc:
            return {**out, "start": start, "end": end, "verdict": "not_checkable", "reason": str(exc)}
        if end is not None:
            return {**out, "start": start, "due": due, "end": end, "value": value, "verdict": "met",
                    "actual": duration_text(value, d.unit.value, lang)}
        if as_of_ts is None or as_of_ts <= due:
            return {**out, "start": start, "due": due, "value": value, "verdict": "pending",
                    "actual": t("尚未记录，未到期", "not recorded yet, not due", lang)}
        # due and never recorded, yet no finding: the export-wide check saw no such instance
        return {**out, "start": start, "due": due, "value": value, "verdict": "breached",
                "actual": t(f"截至 {_fmt_local(as_of_ts, cal.timezone)} 未记录", f"not recorded by "
                            f"{_fmt_local(as_of_ts, cal.timezone)}", lang)}

    by_phase: dict[str, list[Any]] = {}
    for sla in playbook.slas:
        by_phase.setdefault(phases[sla.id], []).append(sla)
    rows: list[dict[str, Any]] = []

    def add(phase: str, name: str, span: tuple[Any, Any, str]) -> None:
        entered, left, note = span
        base = dict(phase=phase, stage=name, entered=entered, left=left,
                    working_days=_working_days(cal, entered, left), stage_note=note)
        slas = by_phase.get(phase, [])
        if not slas:
            rows.append({**base, "sla": "", "rule": "", "limit": "", "clause": "", "clause_title": "", "source": "",
                         "start": None, "due": None, "end": None, "value": float("nan"), "unit": "", "actual": "",
                         "verdict": "", "reason": "", "help": ""})
        for sla in slas:
            v = verdict(sla)
            rows.append({**base, "sla": sla.id, "rule": sla.name.get(lang), "limit": sla.duration.label(lang),
                         "clause": sla.clause, "clause_title": clause_part(sla.clause, "title"),
                         "source": clause_part(sla.clause, "source"), **v})

    for i, sid in enumerate(ids):
        add(sid, str(stages.at[sid, "name"]), stage_span(i))
    add(AFTER, t("成交后", "after the deal", lang), (None, None, ""))
    add(ANY, t("任何阶段", "at any stage", lang), (None, None, ""))
    out = pd.DataFrame(rows)
    out = out[(out["sla"] != "") | ~out["phase"].isin([AFTER, ANY])].reset_index(drop=True)
    for c in ("entered", "left", "start", "due", "end"):
        out[c] = pd.to_datetime(out[c], utc=True).astype(_TS)
    out["working_days"] = out["working_days"].astype("float64")
    out["value"] = out["value"].astype("float64")
    out["verdict_text"] = out["verdict"].map(lambda v: t(*VERDICTS[v], lang) if v in VERDICTS else "")
    return out


def missing_data_note(sop: pd.DataFrame, lang: str | None = None) -> str:
    """Return one note, in a manager's words, on the limits the export cannot check and how to get them checked.

    ``sop`` is :attr:`CaseStudy.sop`; its ``help`` column names what each such limit lacks. "" when
    every limit could be judged.
    """
    lang = lang or current_lang()
    if "help" not in sop.columns:
        return ""
    lacking = sop[sop["help"] != ""]
    if not len(lacking):
        return ""
    needs = list(dict.fromkeys(n for cell in lacking["help"] for n in cell.split(", ") if n))
    fields = t("、", "; ", lang).join(dict.fromkeys(missing_field_words(n, lang)[0] for n in needs))
    events = [n for n in needs if n not in MISSING_FIELDS]  # a step's date: one sentence for all of them
    hows = [missing_field_words(n, lang)[1] for n in needs if n in MISSING_FIELDS]
    if events:
        zh = "、".join(f"“{event_label(e, 'zh-CN')}”" for e in events)
        en = ", ".join(f"'{event_label(e, 'en')}'" for e in events)
        contact = t("（首次接触也可由电话、邮件和拜访记录得出）", " (or export the calls, e-mails and meetings: the first "
                    "outbound one is the first contact)", lang) if "first_contact_made" in events else ""
        hows.insert(0, t(f"在 CRM 中为每个商机记录{zh}的日期（日期字段或活动记录），并随导出一起导出{contact}。",
                         f"record the dates of {en} on each deal in the CRM (date fields or activities) and include "
                         f"them in the export{contact}.", lang))
    n = lacking["sla"].nunique()
    return t(f"有 {n} 项时限无法检查：这份导出缺少{fields}。请负责 CRM 导出的同事：{''.join(hows)}下次复盘就能检查这些时限。",
             f"{n} limits could not be checked: this export lacks {fields}. Ask whoever looks after the CRM export to "
             f"{'; '.join(h.rstrip('.') for h in hows)}. The next review will then check these limits.", lang)


def discussion_prompts(deal: pd.Series, deviations: pd.DataFrame, stages: pd.DataFrame,
                       lang: str | None = None, checked: int = 1, sop: pd.DataFrame | None = None) -> list[str]:
    """Return questions for the monthly meeting about one deal (seed:3.3.2).

    ``checked`` is the number of SOP checks the export supported; with none, the prompt asks what
    the CRM should record instead of suggesting the deal kept the SOP. With ``sop``
    (:func:`sop_table`), the stage that took the most working days gets a question of its own.
    """
    lang = lang or current_lang()
    out = []
    reached = stages[stages["entered"].notna() | stages["observed"]]
    last = reached["name"].iloc[-1] if len(reached) else None
    if deal["outcome"] == "won":
        out.append(t("这个单子赢在哪里？哪些做法值得写进SOP或案例库？",
                     "What won this deal? Which of its practices belong in the SOP or the case library?", lang))
    elif deal["outcome"] == "lost":
        out.append(t(f"商机在「{last}」阶段之后丢失：该阶段的退出标准是否达到？客户的顾虑是什么？",
                     f"The deal was lost after '{last}': were that stage's exit criteria met? What was the "
                     "customer's concern?", lang))
    else:
        out.append(t(f"商机目前在「{last}」阶段：推进到下一阶段需要满足哪些退出标准？",
                     f"The deal is at '{last}': which exit criteria must be met to move on?", lang))
    for r in deviations.itertuples():
        out.append(t(f"{r.rule}：SOP要求 {r.expected}，实际 {r.actual}。原因是什么？条款「{r.clause_title}」需要调整，还是执行需要改进？",
                     f"{r.rule}: the SOP expects {r.expected}; actual {r.actual}. Why? Does the clause "
                     f"'{r.clause_title}' need changing, or its execution?", lang))
    if deviations.empty and not checked:
        out.append(t("这份导出无法检查SOP的执行：CRM需要记录哪些事件（邮件、电话、报价、审批），才能复盘这个商机？",
                     "This export cannot show whether the SOP was kept: which events (e-mails, calls, quotes, "
                     "approvals) must the CRM record to review this deal?", lang))
    elif deviations.empty:
        out.append(t("没有发现偏离SOP的记录：数据是否完整记录了每一步？",
                     "No deviation from the SOP was found: does the CRM record every step of this deal?", lang))
    timed = sop.drop_duplicates("phase").dropna(subset=["working_days"]) if sop is not None and len(sop) else None
    if timed is not None and len(timed) > 1:
        slow = timed.loc[timed["working_days"].idxmax()]
        took = duration_text(slow["working_days"], "working_days", lang)
        out.append(t(f"「{slow['stage']}」阶段用了 {took}，是本单最长的阶段：时间花在了哪里？",
                     f"'{slow['stage']}' took {took}, the longest stage of this deal: where did the time go?", lang))
    out.append(t("基于这个案例，下个月的SOP或培训要改什么？", "What should change in the SOP or the training "
                 "next month because of this case?", lang))
    return out


def _section_of(bank: Any, clause: str, default: str) -> str:
    """The exam section whose active questions cite ``clause`` most often (``default`` when none does)."""
    counts: dict[str, int] = {}
    for q in bank.active() if bank is not None else []:
        if clause in q.clauses:
            counts[q.section] = counts.get(q.section, 0) + 1
    return max(counts, key=lambda s: counts[s]) if counts else default


def draft_question(cs: CaseStudy, index: int, playbook: Any, bank: Any = None, *, other: CaseStudy | None = None,
                   section: str = "sales_process", taken: Any = ()) -> dict[str, Any]:
    """Turn deviation ``index`` of a case study into a practice question draft for the trainers (seed:3.3.2).

    The draft is a question in the bank's shape (:class:`sopcoach.content.quizbank.Question`): a
    scenario with the deal's own numbers (when the clock started, when it was due, what happened),
    the clause it breaks cited in ``clauses`` and quoted in the explanation. A broken time limit
    becomes a numeric question whose key is the playbook's limit (``answer_from: sla.<id>.value``,
    never a copied number); any other deviation (follow-up cadence, quote authority) a true/false
    one ("the deal kept the SOP": false). It is a draft: it goes to ``quizzes/drafts/`` through
    :func:`sopcoach.authoring.question_edit.save_draft`, never to an exam or a lesson.

    Parameters
    ----------
    cs : CaseStudy
    index : int
        Row of ``cs.deviations``.
    playbook : Playbook
    bank : Bank, optional
        The certification bank: the draft's section is the one whose questions cite the clause most.
    other : CaseStudy, optional
        The same case study in the other language: each language's text is written from the case
        study in that language (default: both from ``cs``).
    section : str
        The section when no bank question cites the clause.
    taken : collection of str
        Question ids already used; the draft's id gets a suffix to avoid them.

    Returns
    -------
    dict
        ``id``, ``type``, ``section``, ``clauses``, ``scenario``, ``text``, ``explanation`` (each
        ``{"zh-CN", "en"}``), and ``answer_from`` + ``unit`` (numeric) or ``answer`` (true/false).

    Raises
    ------
    AnalysisError
        When ``index`` is not a row of ``cs.deviations``.
    """
    if not 0 <= index < len(cs.deviations):
        raise AnalysisError(f"the case study of {cs.deal_id} has {len(cs.deviations)} deviations; there is no "
                            f"deviation {index}")
    cases = {cs.lang: cs}
    if other is not None and len(other.deviations) == len(cs.deviations):
        cases[other.lang] = other
    dev = {lang: cases.get(lang, cs).deviations.iloc[index] for lang in ("zh-CN", "en")}
    d = cs.deviations.iloc[index]
    tz = cs.timezone
    clause = str(d["clause"])
    try:
        c = playbook.clause(clause)
        quote = {lang: c.text.get(lang) for lang in ("zh-CN", "en")}
        title = {lang: c.title.get(lang) for lang in ("zh-CN", "en")}
    except KeyError:
        quote = title = {"zh-CN": "", "en": ""}
    sla = next((s for s in playbook.slas if f"sla:{s.id}" == d["check"]), None)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"case-{str(d['check']).replace('sla:', '')}-{cs.deal_id}").strip("-")
    qid, n = base, 2
    while qid in set(taken):
        qid, n = f"{base}-{n}", n + 1
    start, due, end = (_fmt_local(_ts(d.get(k)), tz) for k in ("start", "due", "end"))
    owner = d.get("owner") if isinstance(d.get("owner"), str) else None
    who = {"zh-CN": f"（负责人：{owner}）" if owner else "", "en": f" (owner: {owner})" if owner else ""}
    deal_name = _text(cs.deal.get("name"))  # the deal by its CRM name, its id in brackets
    deal = ({"zh-CN": f"商机「{deal_name}」（{cs.deal_id}）", "en": f"Deal '{deal_name}' ({cs.deal_id})"} if deal_name
            else {"zh-CN": f"商机 {cs.deal_id}", "en": f"Deal {cs.deal_id}"})
    actual = {lang: dev[lang]["actual"] for lang in dev}
    explanation = {"zh-CN": f"条款「{title['zh-CN']}」：{quote['zh-CN']} 本案例中：{actual['zh-CN']}。",
                   "en": f"Clause '{title['en']}': {quote['en']} In this case: {actual['en']}."}
    out: dict[str, Any] = {"id": qid, "section": _section_of(bank, clause, section), "clauses": [clause]}
    if sla is not None:
        name = {lang: sla.name.get(lang) for lang in ("zh-CN", "en")}
        unit = dict(zip(("zh-CN", "en"), DURATION_WORDS[sla.duration.unit.value]))
        happened = ({"zh-CN": f"，实际在 {end} 完成", "en": f"; it happened at {end}"} if end
                    else {"zh-CN": "，至导出时仍未记录", "en": "; by the time of the export it was not recorded"})
        out.update(type="numeric", answer_from=f"sla.{sla.id}.value", unit=unit, scenario={
            "zh-CN": f"{deal['zh-CN']}{who['zh-CN']}：「{name['zh-CN']}」的计时从 {start}（{zone_name(tz, 'zh-CN')}）"
                     f"开始{happened['zh-CN']}；"
                     f"实际：{actual['zh-CN']}。",
            "en": f"{deal['en']}{who['en']}: the clock of '{name['en']}' started at {start} ({zone_name(tz, 'en')}){happened['en']}; "
                  f"actual: {actual['en']}."},
            text={"zh-CN": f"按规程，「{name['zh-CN']}」的时限是多少{unit['zh-CN'].removeprefix('个')}？",
                  "en": f"Under the SOP, what is the limit for '{name['en']}', in {unit['en']}?"})
        if due:
            explanation = {"zh-CN": explanation["zh-CN"] + f"应在 {due} 前完成。",
                           "en": explanation["en"] + f" It was due by {due}."}
    else:
        out.update(type="true_false", answer=False, scenario={
            "zh-CN": f"{deal['zh-CN']}{who['zh-CN']}：{dev['zh-CN']['rule']}——规程要求 {dev['zh-CN']['expected']}；"
                     f"实际 {actual['zh-CN']}。",
            "en": f"{deal['en']}{who['en']}: {dev['en']['rule']}: the SOP expects {dev['en']['expected']}; "
                  f"actual {actual['en']}."},
            text={"zh-CN": "这个商机在这一点上遵守了规程。", "en": "On this point the deal kept the SOP."})
    out["explanation"] = explanation
    return out
