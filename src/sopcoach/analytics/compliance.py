"""SOP compliance of an export: time limits, follow-up cadence and quote authority (seed:1.2, 2.3.1, 3.1.2).

Working time is always the playbook's :class:`~sopcoach.content.businesstime.BusinessCalendar`
(``add`` for due times, ``elapsed`` for the actual value); SLA values are in each SLA's own unit. A
check the export cannot support is reported as ``not_checkable`` with the reason, never as zero
breaches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from ..content.businesstime import BusinessCalendar, Duration, DurationUnit
from ..crm.problems import ROW_KEYS, unparsed
from ..crm.reading import CrmData
from ..errors import CalendarRangeError
from ..i18n import current_lang, t
from ..labels import duration_text, event_label, money_text
from .inputs import closed_gap, created_gap, stage_time_gap
from .period import Period, parse_instant
from .stages import _core, _naive, stage_entries

__all__ = ["FOLLOW_UP_VERDICTS", "MISSING_FIELDS", "Compliance", "check_compliance", "derived_events",
           "missing_field_words", "need_key", "supply_hint"]

_TS = "datetime64[us, UTC]"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
FOLLOW_UP_KINDS = ("call", "email", "meeting")

#: SLA events implied by entering a playbook stage (the stage's entry criterion in process.yaml):
#: entering solution_demo means the needs were confirmed, quotation that the proposal was
#: accepted, payment_collection that the contract was signed.
STAGE_MILESTONES = {"needs_confirmed": "solution_demo", "proposal_accepted": "quotation",
                    "contract_signed": "payment_collection"}


def _local_us(s: pd.Series, tz: str) -> np.ndarray:
    """Return UTC stamps as local wall-clock times of ``tz``, int64 microseconds since 1970-01-01."""
    return s.dt.tz_convert(tz).dt.tz_localize(None).to_numpy().astype("datetime64[us]").astype("int64")


# ----------------------------------------------------------------------------------- compliance


FINDING_COLUMNS = ["check", "rule", "deal_id", "owner", "clause", "clause_title", "source", "expected", "actual",
                   "limit", "value", "unit", "start", "due", "end", "week", "event_id", "verdict"]

#: Verdicts on a scheduled follow-up (the satisfaction call on day 30 after the deal, seed:1.2.1),
#: with the words a sales manager reads. Breaches: ``too_early``, ``late``, ``missing``.
FOLLOW_UP_VERDICTS = {
    "too_early": ("过早", "too early"),
    "on_time": ("当天完成", "on the day"),
    "within_tolerance": ("在允许范围内", "within tolerance"),
    "late": ("逾期", "late"),
    "missing": ("缺失", "missing"),
    "pending": ("未到期", "not due yet"),
    "unchecked": ("未检查", "not checked"),
}
FOLLOW_UP_BREACHES = ("too_early", "late", "missing")
FOLLOW_UP_COLUMNS = ["check", "deal_id", "owner", "start", "due_day", "first_day", "last_day", "end", "day",
                     "verdict"]


def _empty_follow_ups() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in FOLLOW_UP_COLUMNS})


@dataclass(frozen=True)
class Compliance:
    """SOP compliance of an export.

    ``checks``: index ``check`` (``sla:<id>``, ``cadence``, ``authority``); columns ``rule``
    (str), ``clause`` (clause id), ``clause_title`` (str, the clause's title in the review's
    language), ``source`` (``seed:N`` or ``company-setting``), ``status`` (``checked`` or
    ``not_checkable``), ``reason`` (str), ``instances``, ``breaches``, ``pending``
    (Int64; pending = not due yet; missing, never 0, for a check that could not run), ``inferred``
    (str: which of a checked SLA's events were inferred from stage changes or from the first outbound
    contact, "" when none; see :func:`derived_events`), ``needs`` (str: the missing CRM fields a
    check that cannot run waits for, keys of :data:`MISSING_FIELDS` or SLA events, joined by ", ";
    "" when none). A check that ran but covered 0 cases is ``not_checkable`` with why; a check that
    waits for a missing field says so in a few words in its ``reason`` ("Waits for the customer
    class (A/B/C).").

    ``missing``: one row per missing CRM field, said once however many checks wait for it: index
    ``need``; columns ``field`` (the field in words), ``how`` (how to supply it, in a manager's
    words), ``mapping`` (what the import mapping needs, for whoever maintains it,
    :func:`supply_hint`), ``rules`` (the names of the checks waiting for it, joined).

    ``findings``: one row per breach. ``check``, ``rule``, ``deal_id``, ``owner``, ``clause``,
    ``clause_title``, ``source``, ``expected``, ``actual`` (str, human-readable), ``unit`` (str), ``week`` (str,
    ISO week for cadence), ``event_id`` (str); ``limit`` and ``value`` (float64, in ``unit``);
    ``start``, ``due``, ``end`` (datetime64[us, UTC]; ``end`` NaT when never recorded);
    ``verdict`` (str: ``late`` or ``missing`` for a deadline SLA, ``too_early``, ``late`` or
    ``missing`` for a scheduled one, see :data:`FOLLOW_UP_VERDICTS`; "None" for other checks).

    ``follow_ups``: one row per instance of a scheduled SLA (kept or not): ``check``, ``deal_id``,
    ``owner`` (str); ``start``, ``end`` (datetime64[us, UTC], ``end`` NaT when no call);
    ``due_day``, ``first_day``, ``last_day`` (datetime.date, local: the due day and the company's
    window, None when unchecked); ``day`` (Int64: local calendar days from start to end);
    ``verdict`` (str, a key of :data:`FOLLOW_UP_VERDICTS`).
    """

    checks: pd.DataFrame
    findings: pd.DataFrame
    as_of: pd.Timestamp | None
    follow_ups: pd.DataFrame = field(default_factory=_empty_follow_ups)
    missing: pd.DataFrame = field(default_factory=lambda: _missing_table([], "en"))

    def for_deal(self, deal_id: str) -> pd.DataFrame:
        return self.findings[self.findings["deal_id"] == deal_id]

    @property
    def checked(self) -> int:
        """How many checks the export supported (status ``checked``); 0 means no finding can exist."""
        return int((self.checks["status"] == "checked").sum())

    def summary(self, lang: str | None = None) -> str:
        """One sentence on the findings that never passes off unchecked rules as kept ones.

        >>> c = Compliance(pd.DataFrame({"status": ["not_checkable"] * 2}), pd.DataFrame(), None)
        >>> c.summary("en")
        'No SOP rule could be checked on this export (2 not checkable): no findings does not mean no deviations.'
        """
        total, checked, n = len(self.checks), self.checked, len(self.findings)
        if not checked:
            waiting = int((self.checks["needs"].fillna("") != "").sum()) if "needs" in self.checks else total
            if waiting < total:  # some rules only had nothing to check in the period
                return t(f"没有一项SOP规则得到检查：{waiting} 项缺少所需的 CRM 字段，{total - waiting} 项在所选期间"
                         "没有可检查的情形。没有偏离记录不代表没有偏离。",
                         f"No SOP rule was checked: {waiting} lack a CRM field they need, {total - waiting} had "
                         "nothing to check in the period chosen. No findings does not mean no deviations.", lang)
            return t(f"这份导出无法检查任何SOP规则（{total} 项均无法检查）：没有偏离记录不代表没有偏离。",
                     f"No SOP rule could be checked on this export ({total} not checkable): no findings does "
                     "not mean no deviations.", lang)
        rest = total - checked
        return t(f"{n:,} 条偏离记录（{checked} 项规则已检查" + (f"，{rest} 项无法检查）" if rest else "）"),
                 f"{n:,} findings ({checked} rules checked" + (f", {rest} not checkable)" if rest else ")"), lang)


#: A CRM field a check can wait for -> (zh-CN, en) the field in words, then (zh-CN, en) how to supply it.
#: SLA events other than these read "the date of <event>" (:func:`sopcoach.labels.event_label`).
MISSING_FIELDS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "email_direction": (("邮件的收发方向", "which e-mails were received and which sent"),
                        ("导出邮件记录时带上方向一列（收到/发出）。",
                         "export the e-mails with their direction (received or sent).")),
    "tier": (("客户等级（A/B/C）", "the customer class (A/B/C)"),
             ("在 CRM 的客户或商机上填写客户等级，并随导出一起导出。",
              "fill in the customer class on the accounts or deals in the CRM and include it in the export.")),
    "contacts": (("电话、邮件和拜访记录", "calls, e-mails and meetings"),
                 ("把 CRM 中的活动记录（电话、邮件、拜访）一并导出，每条带时间，并关联到客户或商机。",
                  "export the CRM's activities (calls, e-mails, meetings) too, each with its time and linked to "
                  "its account or deal.")),
    "approved_by": (("报价审批人", "who approved a quote"),
                    ("在报价上记录超出权限时由谁批准，并随导出一起导出。",
                     "record on each quote who approved it when it exceeded the rep's authority, and include it "
                     "in the export.")),
    "quote_amount": (("报价金额", "quote amounts"),
                     ("导出每次报价及其金额（有折扣时连同折扣）。",
                      "export each quote with its amount (and its discount, if any).")),
    "stage_changes": (("阶段变更历史", "the stage history"),
                      ("导出商机的阶段变更历史（何时进入哪个阶段），如 Salesforce 的 OpportunityHistory。",
                       "export the deals' stage history (which stage each entered, and when), like Salesforce's "
                       "OpportunityHistory.")),
    "created": (("商机创建日期", "deal creation dates"),
                ("导出商机的创建日期。", "include the deals' creation dates in the export.")),
    "closed": (("赢单的成交日期", "close dates of won deals"),
               ("导出商机的成交日期，并注明哪个阶段表示赢单。",
                "include the deals' close dates in the export and say which stage means won.")),
}


def need_key(need: str) -> str:
    """The missing field an SLA event or input stands for (two stage limits both wait for the stage history).

    >>> need_key("needs_confirmed"), need_key("lead_assigned"), need_key("delivered"), need_key("tier")
    ('stage_changes', 'created', 'delivered', 'tier')
    """
    if need in ("deal_closed", "contract_signed"):
        return "closed"
    if need == "lead_assigned":
        return "created"
    return "stage_changes" if need in STAGE_MILESTONES else need


def missing_field_words(need: str, lang: str | None = None) -> tuple[str, str]:
    """The missing field ``need`` (a :func:`need_key`) in words, and how to supply it, in a manager's words.

    >>> missing_field_words("delivered", "en")[0]
    "the date of 'delivered'"
    """
    if need in MISSING_FIELDS:
        (zh, en), (how_zh, how_en) = MISSING_FIELDS[need]
        return t(zh, en, lang), t(how_zh, how_en, lang)
    zh_ev, en_ev = event_label(need, "zh-CN"), event_label(need, "en")
    contact = t("；或导出电话、邮件和拜访记录（第一次主动联系即为首次接触）", "; or export the calls, e-mails and "
                "meetings (the first outbound one is the first contact)", lang) if need == "first_contact_made" else ""
    return (t(f"“{zh_ev}”的日期", f"the date of '{en_ev}'", lang),
            t(f"在 CRM 中为每个商机记录“{zh_ev}”的日期（日期字段或一条活动记录），并随导出一起导出{contact}。",
              f"record the date of '{en_ev}' on each deal in the CRM (a date field or an activity) and include "
              f"it in the export{contact}.", lang))


def _missing_table(rows: list[tuple[str, str, str]], lang: str) -> pd.DataFrame:
    """The ``missing`` table of :class:`Compliance` from (need as the check named it, rule, check id) rows."""
    per: dict[str, dict[str, list[str]]] = {}
    for need, rule, _ in rows:
        entry = per.setdefault(need_key(need), {"rules": [], "mapping": []})
        entry["rules"].append(rule)
        entry["mapping"].append(supply_hint(need, lang))
    sep = t("、", ", ", lang)
    out = pd.DataFrame(
        [(key, *missing_field_words(key, lang), " ".join(dict.fromkeys(v["mapping"])),
          sep.join(dict.fromkeys(v["rules"]))) for key, v in per.items()],
        columns=["need", "field", "how", "mapping", "rules"])
    return out.set_index("need")


def _waits_for(needs: tuple[str, ...], lang: str) -> str:
    """A check's few words on the fields it waits for ("缺少客户等级（A/B/C）；电话、邮件和拜访记录。")."""
    fields = list(dict.fromkeys(missing_field_words(need_key(n), lang)[0] for n in needs))
    return t("缺少" + "；".join(fields) + "。", "Waits for " + "; ".join(fields) + ".", lang)


def _role_name(playbook: Any, role_id: str, lang: str) -> str:
    """The role's name in ``lang`` (销售代表 / sales representative); an id the playbook lacks as it is."""
    try:
        name = playbook.role(role_id).name.get(lang)
    except KeyError:
        return role_id
    return name if lang != "en" else name[:1].lower() + name[1:]


def _clause_title(playbook: Any, clause_id: str, lang: str) -> str:
    """The clause's title in ``lang`` (an id the playbook does not have: the id itself)."""
    try:
        return playbook.clause(clause_id).title.get(lang)
    except KeyError:
        return clause_id


def _stage_name(playbook: Any, stage_id: str, lang: str) -> str:
    """A playbook stage's name in ``lang`` (an unknown id as it is)."""
    return next((s.name.get(lang) for s in playbook.stages if s.id == stage_id), stage_id)


def _clause_source(playbook: Any, clause_id: str) -> str:
    try:
        return playbook.clause(clause_id).source
    except KeyError:
        return ""


def milestones(data: CrmData, playbook: Any, entries: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return every SLA event occurrence per deal, from explicit events and from stage entries.

    Sources: ``lead_assigned`` = deal created; ``deal_closed`` = a won deal's close;
    ``needs_confirmed``, ``proposal_accepted``, ``contract_signed`` = recorded entries into
    ``solution_demo``, ``quotation``, ``payment_collection`` (:data:`STAGE_MILESTONES`; a won
    deal's close also signs the contract); the mapping's ``derive`` events = dated entries into the
    stage it names, where the export records no such event itself; ``first_contact_made`` = the first outbound call,
    e-mail or meeting when the export has no explicit first-contact events; every event whose
    ``milestone`` is set.

    Returns
    -------
    pandas.DataFrame
        Columns ``deal_id``, ``milestone``, ``event_id`` (str), ``timestamp`` (datetime64[us, UTC]),
        ``pos`` (intp: the deal's row in ``data.unique_deals()``).
    """
    parts = [p for _, p in _milestone_parts(data, playbook, entries)]
    out = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)  # no deals: empty
    return _dated(out)


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    """The SLA events of ``frame`` that have a time, with :func:`milestones`' column types."""
    out = frame[frame["timestamp"].notna().to_numpy()]
    out = out.assign(timestamp=out["timestamp"].astype(_TS), pos=out["pos"].astype(np.intp))
    return out.reset_index(drop=True)


def _by_milestone(data: CrmData, playbook: Any, entries: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """:func:`milestones` per SLA event name (each frame's rows in the same order), without one table of all."""
    found: dict[str, list[pd.DataFrame]] = {}
    for name, part in _milestone_parts(data, playbook, entries):
        if name is not None:
            found.setdefault(name, []).append(part)
            continue
        for m, group in part.groupby("milestone", sort=False, observed=True):
            found.setdefault(str(m), []).append(group)
    out = {}
    for name, frames in found.items():
        frames = [f for f in frames if len(f)]
        if frames:
            frame = _dated(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
            if len(frame):
                out[name] = frame
    return out


def _milestone_parts(data: CrmData, playbook: Any, entries: pd.DataFrame | None
                     ) -> list[tuple[str | None, pd.DataFrame]]:
    """The parts :func:`milestones` is made of, in its order: (the SLA event name, or None for several; rows)."""
    entries = stage_entries(data, playbook) if entries is None else entries
    deals = data.unique_deals()
    rows = np.arange(len(deals), dtype=np.intp)
    ev = _core(data)
    parts = [pd.DataFrame({"deal_id": deals["deal_id"], "milestone": "lead_assigned",
                           "timestamp": deals["created"], "event_id": None, "pos": rows})]
    won = (deals["outcome"] == "won").to_numpy()
    for name in ("deal_closed", "contract_signed"):
        parts.append(pd.DataFrame({"deal_id": deals["deal_id"][won], "milestone": name,
                                   "timestamp": deals["closed"][won], "event_id": None, "pos": rows[won]}))
    obs = entries[entries["observed"] & entries["entered"].notna()]
    for name, stage in STAGE_MILESTONES.items():
        e = obs[obs["stage"] == stage]
        parts.append(pd.DataFrame({"deal_id": e["deal_id"], "milestone": name,
                                   "timestamp": e["entered"], "event_id": None, "pos": e["pos"]}))
    linked = ev["pos"].to_numpy() >= 0
    explicit = ev.loc[ev["milestone"].notna().to_numpy() & linked,
                      ["deal_id", "milestone", "timestamp", "event_id", "pos"]]
    parts.append(explicit)
    parts.extend(_mapping_derived(data, entries, set(explicit["milestone"].dropna().unique())))
    if not (explicit["milestone"] == "first_contact_made").any():
        mask = (ev["kind"].isin(FOLLOW_UP_KINDS).to_numpy() & (ev["direction"] != "inbound").to_numpy() & linked
                & _held(ev))
        contact = ev.loc[mask, ["deal_id", "timestamp", "event_id", "pos"]]
        first = contact.sort_values("timestamp", kind="stable").drop_duplicates("pos")
        parts.append(first.assign(milestone="first_contact_made"))
    names: list[str | None] = [p["milestone"].iat[0] if len(p) and isinstance(p["milestone"].iat[0], str) and
                               p is not explicit else None for p in parts]
    return list(zip(names, parts))


def _held(ev: pd.DataFrame) -> np.ndarray:
    """Activities that took place: status ``done`` or no status recorded (planned or cancelled ones do not count)."""
    st = ev["status"]
    return (st.isna() | (st == "done")).to_numpy()


def _mapping_derived(data: CrmData, entries: pd.DataFrame, recorded: set[str]) -> list[pd.DataFrame]:
    """SLA events the mapping derives from stage entries (``derive: {event: {entered_stage: stage}}``).

    One event per deal at its first *dated* entry into the stage (a stage change records when); an
    event the export records itself (``recorded``) is never derived. Columns as :func:`milestones`.
    """
    parts = []
    dated = entries[entries["dated"].to_numpy() & entries["entered"].notna().to_numpy()]
    for name, how in data.mapping.spec.derive.items():
        if name in recorded:
            continue
        e = dated[(dated["stage"] == how.entered_stage).to_numpy()]
        parts.append(pd.DataFrame({"deal_id": e["deal_id"], "milestone": name, "timestamp": e["entered"],
                                   "event_id": None, "pos": e["pos"]}))
    return parts


def derived_events(data: CrmData) -> dict[str, tuple[str, str]]:
    """Return the SLA events read from stage changes rather than recorded: ``{event: (stage, origin)}``.

    ``origin`` is ``process`` for the playbook's stage entry criteria (:data:`STAGE_MILESTONES`,
    process.yaml: entering ``quotation`` means the proposal was accepted) and ``mapping`` for the
    mapping's ``derive`` (used only where the export records no such event itself).
    """
    ev = data.events
    recorded = set(ev["milestone"].dropna().unique())
    out = {name: (stage, "process") for name, stage in STAGE_MILESTONES.items()}
    out.update({name: (how.entered_stage, "mapping") for name, how in data.mapping.spec.derive.items()
                if name not in recorded})
    return out


def _inferred_note(events: tuple[str, ...], derived: dict[str, tuple[str, str]], playbook: Any, lang: str) -> str:
    """The legend of a check whose events are inferred from stage changes ("" when none is), in words:
    each event and stage by name, and whether the stage's entry criterion or the import mapping says so."""
    parts = []
    for e in dict.fromkeys(events):
        if e in derived:
            stage, origin = derived[e]
            name = _stage_name(playbook, stage, lang)
            parts.append(t(f"“{event_label(e, lang)}”= 进入“{name}”阶段（" + ("该阶段的准入条件" if origin == "process"
                                                                        else "导入映射的设定") + "）",
                           f"'{event_label(e, lang)}' = entering {name} (" + (
                               "the stage's entry criterion" if origin == "process" else "set in the import mapping")
                           + ")", lang))
    if not parts:
        return ""
    return t("推断：由阶段变更得出，", "inferred from stage changes: ", lang) + t("；", "; ", lang).join(parts)


def supply_hint(need: str, lang: str | None = None) -> str:
    """How a mapping supplies what a check needs: the canonical field (``table.field``) and the YAML to write.

    ``need`` is an SLA event name (``quote_sent``), ``tier``, ``contacts``, ``approved_by``,
    ``quote_amount`` or ``email_direction``. Shapes follow ``src/sopcoach/crm/mappings/*.yaml``.

    >>> supply_hint("tier", "en")[:40]
    'needs deals.tier (the customer class A/B'
    """
    lang = lang or current_lang()
    fixed = {
        "tier": ("需要 deals.tier（客户等级 A/B/C）：在商机表（或客户表）中用 `tier: <列名>` 映射客户等级列，并用 "
                 "`tiers: {<CRM 中的值>: A}` 把其值对应到 A/B/C。",
                 "needs deals.tier (the customer class A/B/C): map the column with `tier: <column>` in the deals "
                 "(or accounts) table and its values with `tiers: {<CRM value>: A}`."),
        "contacts": ("需要电话、邮件或拜访记录：一个 events 表，`kind` 为 call/email/meeting，带 `timestamp`，并以 "
                     "`deal_id` 或 `account_id` 关联到商机。",
                     "needs calls, e-mails or meetings: an events table with `kind` call/email/meeting, a "
                     "`timestamp`, and `deal_id` or `account_id` linking each to a deal."),
        "approved_by": ("需要 events.approved_by：在报价记录所在的 events 表中用 `approved_by: <列名>` 映射审批人列。",
                        "needs events.approved_by: map the approver column with `approved_by: <column>` in the "
                        "events table that holds the quotes."),
        "quote_amount": ("需要带 events.amount 的 quote_sent 记录（折扣用 `discount: {column: <列名>, percent: true}`）："
                         "用 `milestone` 的值映射 `{<CRM 中的值>: quote_sent}`，或用 `derive: {quote_sent: "
                         "{entered_stage: quotation}}` 由阶段变更得出，并映射 `amount: <列名>`。",
                         "needs quote_sent events with events.amount (and `discount: {column: <column>, percent: "
                         "true}`): map `milestone` values `{<CRM value>: quote_sent}`, or derive them from stage "
                         "changes with `derive: {quote_sent: {entered_stage: quotation}}`, and map `amount: <column>`."),
        "email_direction": ("需要 kind 为 email 且带 events.direction 的记录：`direction: {column: <列名>, values: "
                            "{<收到>: inbound, <发出>: outbound}}`。",
                            "needs e-mails (kind email) with events.direction: `direction: {column: <column>, "
                            "values: {<received>: inbound, <sent>: outbound}}`."),
    }
    if need in fixed:
        return t(*fixed[need], lang)
    if need == "lead_assigned":
        return t("需要 deals.created：在商机表中映射 `created: {column: <列名>, formats: [...]}`。",
                 "needs deals.created: map `created: {column: <column>, formats: [...]}` in the deals table.", lang)
    if need in ("deal_closed", "contract_signed"):
        extra = t("，或阶段变更进入 payment_collection", ", or stage changes entering payment_collection",
                  lang) if need == "contract_signed" else ""
        return t(f"需要赢单的 deals.closed（映射 `closed` 和赢单阶段）{extra}。",
                 f"needs deals.closed of won deals (map `closed` and the won stage){extra}.", lang)
    if need in STAGE_MILESTONES:
        return t(f"需要进入 {STAGE_MILESTONES[need]} 阶段的阶段变更记录（events 表，`kind: {{value: stage_change}}`，"
                 "带 `stage` 和 `timestamp`），或商机表的 `stage_dates`。",
                 f"needs stage changes entering {STAGE_MILESTONES[need]} (an events table with `kind: {{value: "
                 "stage_change}`, `stage` and `timestamp`), or `stage_dates` on the deals table.", lang)
    contact = t("；或一个电话、邮件、拜访的 events 表（第一次主动联系即为首次接触）",
                "; or an events table of calls, e-mails or meetings (the first outbound one is the first "
                "contact)", lang) if need == "first_contact_made" else ""
    return t(f"需要 {need} 事件：在 events 表中用 `milestone: {{column: <列名>, values: {{<CRM 中的值>: {need}}}}}` "
             f"映射，或在商机表中用 `milestone_dates: {{{need}: <日期列>}}`，或当进入某阶段即表示该事件时用映射的 "
             f"`derive: {{{need}: {{entered_stage: <阶段>}}}}`{contact}。",
             f"needs '{need}' events: map them with `milestone: {{column: <column>, values: {{<CRM value>: {need}}}}}` "
             f"in an events table, a deals date column with `milestone_dates: {{{need}: <column>}}`, or, where "
             f"entering a stage means it, the mapping's `derive: {{{need}: {{entered_stage: <stage>}}}}`{contact}.",
             lang)


def _unreadable_times(data: CrmData, events: tuple[str, ...], lang: str) -> str | None:
    """Why a check on the SLA events ``events`` (milestone names) cannot run: some of their times are unreadable.

    A check is never run on the readable rows only (an unreadable time would drop its instance and
    hide a breach); the reason names the column, the count, an example line and the fix
    (:mod:`sopcoach.analytics.inputs`). ``None`` when every time the events come from was read.
    """
    ev = data.events
    u = unparsed(data, "events.timestamp", lambda: ev.loc[ev["milestone"].isin(events).to_numpy(), ROW_KEYS])
    if u is not None:
        return u.reason("事件时间", "event times", lang)
    if "first_contact_made" in events or "customer_email_received" in events:
        u = unparsed(data, "events.timestamp", lambda: ev.loc[ev["kind"].isin(FOLLOW_UP_KINDS).to_numpy(), ROW_KEYS])
        if u is not None:
            return u.reason("电话、邮件和拜访的时间", "times of calls, e-mails and meetings", lang)
    if "lead_assigned" in events and (why := created_gap(data, lang)):
        return why
    if {"deal_closed", "contract_signed"} & set(events) and (why := closed_gap(data, lang, ("won",))):
        return why
    if set(STAGE_MILESTONES) & set(events):
        return stage_time_gap(data, lang)
    return None


class _DueOracle:
    """Due times from the playbook calendar, called as rarely as the verdicts allow.

    Working days, calendar days and elapsed hours come from :meth:`BusinessCalendar.add_many`, once
    per distinct local start date. Business hours go through :meth:`BusinessCalendar.add`, bucketed:
    their due time grows with the start (a start outside business hours counts from the next
    opening), so for all starts inside one bucket of UTC time ``[b, b + w)`` the due time lies
    between ``add(b)`` and ``add(b + w)``. A target at or before the first bound is on time and one
    after the second is late for every start in the bucket; only targets between the bounds need the
    exact ``add(start)``. (Working days are not monotone this way: a Sunday-evening start counts from
    Monday's opening, a Monday 01:00 start keeps its wall time.) A start whose working days the
    calendar does not know (:class:`CalendarRangeError`) gets no verdict.
    """

    #: widths of the start buckets, in hours, wide to narrow; each narrower one sees only the starts
    #: the wider ones could not settle
    BUCKET_HOURS = (24, 4, 1)

    def __init__(self, cal: BusinessCalendar, duration: Duration, memo: dict | None = None):
        self.cal, self.duration = cal, duration
        self.memo = {} if memo is None else memo  # shared by SLAs with the same limit

    def due_us(self, start_us: int) -> int | None:
        """Return the due time of a start (both UTC microseconds); None outside the calendar's years."""
        key = (self.duration, start_us)
        if key not in self.memo:
            start = _EPOCH + timedelta(microseconds=start_us)
            try:
                self.memo[key] = (self.cal.add(start, self.duration) - _EPOCH) // _MICROSECOND
            except CalendarRangeError:
                self.memo[key] = None
        return self.memo[key]

    def add(self, start: pd.Timestamp) -> pd.Timestamp:
        """Return the due time of ``start`` in UTC; NaT when the calendar does not cover it."""
        due = self.due_us(start.value // 1000)
        return pd.NaT if due is None else pd.Timestamp(due, unit="us", tz="UTC")

    def late(self, starts: pd.Series, targets: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Return (``targets > add(starts)``, unknown) element-wise (UTC series without NaT).

        ``unknown`` marks starts whose due time falls outside the calendar's years. The upper bound
        of a bucket's due times is the lower bound of the next bucket (``add`` is monotone). Wide
        buckets settle most starts with few calls; what they leave open goes to narrower ones, and
        what those leave open gets its exact due time.
        """
        n = len(starts)
        tgt = _naive(targets).astype("int64")
        if self.duration.unit is not DurationUnit.BUSINESS_HOURS:
            due = self.cal.add_many(starts, self.duration)
            unknown = due.isna().to_numpy()
            return ~unknown & (tgt > _naive(due).astype("int64")), unknown
        start_us = _naive(starts).astype("int64")
        late = np.zeros(n, dtype=bool)
        todo = np.arange(n)
        for hours in self.BUCKET_HOURS:
            if not len(todo):
                break
            width = 3_600_000_000 * hours
            bucket = start_us[todo] // width
            probes = np.unique(np.concatenate([bucket, bucket + 1]))
            due = np.zeros(len(probes), dtype="int64")
            known = np.ones(len(probes), dtype=bool)
            for i, b in enumerate(probes.tolist()):
                d = self.due_us(b * width)
                if d is None:
                    known[i] = False
                else:
                    due[i] = d
            lo_i = np.searchsorted(probes, bucket)
            hi_i = np.searchsorted(probes, bucket + 1)
            sure = known[lo_i] & known[hi_i]
            t = tgt[todo]
            is_late = sure & (t > due[hi_i])
            late[todo[is_late]] = True
            todo = todo[~is_late & ~(sure & (t <= due[lo_i]))]
        unknown = np.zeros(n, dtype=bool)
        for i, s_us, t_us in zip(todo.tolist(), start_us[todo].tolist(), tgt[todo].tolist()):
            d = self.due_us(s_us)
            if d is None:
                unknown[i] = True
            else:
                late[i] = t_us > d
        return late & ~unknown, unknown


def _fmt_local(ts: pd.Timestamp | None, tz: str) -> str:
    if ts is None or pd.isna(ts):
        return ""
    return ts.tz_convert(tz).strftime("%Y-%m-%d %H:%M")


def check_compliance(data: CrmData, playbook: Any, month: str | None = None,
                     as_of: Any = None, *, lang: str | None = None,
                     entries: pd.DataFrame | None = None) -> Compliance:
    """Check the export against the SOP's time limits, follow-up cadence and quote authority.

    * Every SLA of the playbook (``slas.yaml``: 24-hour e-mail reply and the 2-working-day first
      technical solution, seed:1.2.1; 3 working days to a proposal and 5 to delivery, seed:1.2.2;
      the company's first-contact and quotation limits). One instance per deal (per inbound e-mail
      for the reply): the first start event, answered by the first end event at or after it. It is
      a breach when the end comes after the due time (:meth:`BusinessCalendar.add`), or when
      nothing is recorded and the due time has passed by ``as_of``; the actual value is
      :meth:`BusinessCalendar.elapsed` in the SLA's unit. A deal whose first contact precedes its
      creation (contacted as a lead, created on conversion) made its first contact in time.
    * Scheduled SLAs (``kind: scheduled``: the satisfaction call on the 30th calendar day after the
      deal closes, seed:1.2.1, with the company's tolerance): the first call on or after the
      window's first day (else an early call, when no call follows it) is judged by its local date
      against the due day and the window around it
      (:meth:`BusinessCalendar.day_window`): ``too_early`` before the window, ``on_time`` on the
      day, ``within_tolerance`` elsewhere in the window, ``late`` after it, ``missing`` when no call
      is recorded and the window has ended by ``as_of`` (``pending`` before). Breaches are
      ``too_early``, ``late`` and ``missing``; every verdict is in ``follow_ups``.
    * Follow-up cadence (seed:3.1.2 for tier A; company setting for B and C): outbound calls,
      e-mails and meetings (duplicates left out) per deal and ISO week (Monday-Sunday, playbook
      time zone), for every full week the deal was open; a week belongs to the month of its
      Thursday.
    * Quote authority (seed:2.3.1): a ``quote_sent`` event whose amount or discount exceeds the
      quoting role's limit and that names no approver.

    A check is ``not_checkable`` (never "0 breaches") when the export lacks what it needs: no start
    events, no end events at all (the CRM does not record them), start and end inferred from the same
    stage entry, no tier, no approval field, a currency other than the playbook's; when it covered 0
    cases; and when any time or amount it needs failed to parse (it is
    never run on the readable rows only; the reason names the column, the count, an example line and
    the fix).

    Parameters
    ----------
    data : CrmData
    playbook : Playbook
    month : str, optional
        ``YYYY-MM``: instances that start in the month (weeks whose Thursday is in it).
    as_of : datetime-like, optional
        The moment the export describes (UTC if naive); default: its latest timestamp.

    Returns
    -------
    Compliance

    Raises
    ------
    CalendarRangeError
        When a working-day limit reaches a year the playbook's calendar does not cover.
    AnalysisError
        When ``month`` is not ``YYYY-MM`` or ``as_of`` is not a date/time.
    """
    lang = lang or current_lang()
    tz = playbook.calendar.timezone
    cal = playbook.business_calendar()
    period = Period.of(month, tz)
    if as_of is None:
        as_of = data.as_of
    as_of = None if as_of is None else parse_instant(as_of, "as_of")
    entries = stage_entries(data, playbook) if entries is None else entries
    deals = data.unique_deals().set_index("deal_id")
    owner = deals["owner"]
    checks: list[dict[str, Any]] = []
    findings: list[pd.DataFrame] = []
    by_milestone = _by_milestone(data, playbook, entries)
    have = set(by_milestone)
    memo: dict = {}
    follow_ups: list[pd.DataFrame] = []

    waiting: list[tuple[str, str, str]] = []  # (need, rule, check id): the missing fields, said once

    def check_row(cid: str, rule: str, clause: str, status: str, reason: str = "", instances: int = 0,
                  breaches: int = 0, pending: int = 0, needs: tuple[str, ...] = ()) -> None:
        if status == "checked" and instances == 0:  # a check that covered no case has checked nothing
            status, reason = "not_checkable", _no_case(cid, playbook, period, lang) + (f" {reason}" if reason else "")
        if needs:
            reason = (reason + t("", " ", lang) if reason else "") + _waits_for(needs, lang)
            waiting.extend((n, rule, cid) for n in needs)
        checks.append(dict(check=cid, rule=rule, clause=clause, clause_title=_clause_title(playbook, clause, lang),
                           source=_clause_source(playbook, clause),
                           status=status, reason=reason, instances=instances, breaches=breaches,
                           pending=pending, needs=", ".join(dict.fromkeys(need_key(n) for n in needs))))

    ev = _core(data)
    derived = derived_events(data)
    for sla in playbook.slas:
        cid, rule = f"sla:{sla.id}", sla.name.get(lang)
        d = sla.duration
        unit_label = d.label(lang)
        unreadable = _unreadable_times(data, (sla.start_event, sla.end_event), lang)
        if unreadable:
            check_row(cid, rule, sla.clause, "not_checkable", unreadable)
            continue
        if sla.start_event == "customer_email_received":
            inst = _email_instances(ev)
            if inst is None:
                check_row(cid, rule, sla.clause, "not_checkable", needs=("email_direction",))
                continue
        else:
            if sla.start_event not in have:
                check_row(cid, rule, sla.clause, "not_checkable", needs=(sla.start_event,))
                continue
            if sla.end_event not in have:
                check_row(cid, rule, sla.clause, "not_checkable", needs=(sla.end_event,))
                continue
            same = _same_entry(sla.start_event, sla.end_event, derived)
            if same:
                stage = _stage_name(playbook, same, lang)
                check_row(cid, rule, sla.clause, "not_checkable",
                          t(f"“{event_label(sla.start_event, lang)}”和“{event_label(sla.end_event, lang)}”都只能由进入"
                            f"“{stage}”阶段推断，两者同时发生，时限无从衡量。",
                            f"'{event_label(sla.start_event, lang)}' and '{event_label(sla.end_event, lang)}' are "
                            f"both inferred from entering {stage}, so they coincide and the limit cannot be "
                            "measured.", lang), needs=(sla.end_event,))
                continue
            starts = by_milestone[sla.start_event].sort_values("timestamp", kind="stable").drop_duplicates("pos")
            ends = by_milestone[sla.end_event]
            inst = _pair(starts, ends, keep_pos=sla.scheduled)
            if sla.end_event == "first_contact_made":
                inst = _contacted_before(inst, ends)
        inst = inst[period.contains(inst["start"])] if period.month else inst
        if sla.scheduled:
            fu, recs_s = _scheduled(inst.reset_index(drop=True), by_milestone[sla.end_event], sla, cal, as_of,
                                    owner, playbook, lang)
            follow_ups.append(fu)
            counts = fu["verdict"].value_counts()
            unchecked = int(counts.get("unchecked", 0))
            if len(fu) and unchecked == len(fu):
                years = cal.covered_years
                check_row(cid, rule, sla.clause, "not_checkable",
                          t(f"业务日历只覆盖 {years[0]}-{years[1]} 年，导出数据的日期超出此范围；请在 playbook 的 calendar.years 中加入这些年份。",
                            f"the business calendar covers {years[0]}-{years[1]} only and the export's dates are "
                            "outside; add those years to calendar.years in the playbook.", lang), len(fu), 0, 0)
                continue
            reason = t("；", "; ", lang).join(f"{t(*FOLLOW_UP_VERDICTS[v], lang)} {int(counts[v])}"
                                              for v in FOLLOW_UP_VERDICTS if counts.get(v, 0))
            check_row(cid, rule, sla.clause, "checked", reason, len(fu) - unchecked,
                      int(sum(counts.get(v, 0) for v in FOLLOW_UP_BREACHES)), int(counts.get("pending", 0)))
            if recs_s:
                findings.append(pd.DataFrame(recs_s))
            continue
        oracle = _DueOracle(cal, d, memo)
        has_end = inst["end"].notna().to_numpy()
        if as_of is None:
            target = inst["end"]
            considered = has_end
        else:
            target = inst["end"].fillna(as_of)
            considered = np.ones(len(inst), dtype=bool)
        late = np.zeros(len(inst), dtype=bool)
        unknown = np.zeros(len(inst), dtype=bool)
        idx = np.flatnonzero(considered)
        if len(idx):
            late[idx], unknown[idx] = oracle.late(inst["start"].iloc[idx].reset_index(drop=True),
                                                  target.iloc[idx].reset_index(drop=True))
        if len(inst) and unknown.all():
            years = cal.covered_years
            span = f"{inst['start'].min():%Y}-{inst['start'].max():%Y}"
            check_row(cid, rule, sla.clause, "not_checkable",
                      t(f"业务日历只覆盖 {years[0]}-{years[1]} 年，导出数据的日期在 {span}；请在 playbook 的 calendar.years 中加入这些年份。",
                        f"the business calendar covers {years[0]}-{years[1]} only and the export's dates "
                        f"are {span}; add those years to calendar.years in the playbook.", lang),
                      len(inst), 0, 0)
            continue
        pending = int((~has_end & ~late & ~unknown & considered).sum())
        bad = inst[late]
        reason = (t(f"{int(unknown.sum())} 个实例超出业务日历覆盖的年份，未检查。",
                    f"{int(unknown.sum())} instances fall outside the business calendar's years and were "
                    "not checked.", lang) if unknown.any() else "")
        check_row(cid, rule, sla.clause, "checked", reason, len(inst) - int(unknown.sum()), len(bad), pending)
        if len(bad):
            recs = []
            for r in bad.itertuples():
                due = oracle.add(r.start)
                end = r.end if pd.notna(r.end) else None
                measured_to = end if end is not None else as_of
                value = float(cal.elapsed(r.start.to_pydatetime(), measured_to.to_pydatetime(), d.unit))
                expected = t(f"{unit_label}内（{_fmt_local(due, tz)} 前）", f"within {unit_label} "
                             f"(by {_fmt_local(due, tz)})", lang)
                took = duration_text(value, d.unit.value, lang)
                actual = (t(f"{took}（{_fmt_local(end, tz)}）", f"{took} ({_fmt_local(end, tz)})", lang)
                          if end is not None else
                          t(f"截至 {_fmt_local(as_of, tz)} 未记录（已过 {took}）",
                            f"not recorded by {_fmt_local(as_of, tz)} ({took} elapsed)", lang))
                recs.append(dict(check=cid, rule=rule, deal_id=r.deal_id, owner=owner.get(r.deal_id),
                                 clause=sla.clause, source=_clause_source(playbook, sla.clause),
                                 expected=expected, actual=actual, limit=float(d.value), value=value,
                                 unit=d.unit.value, start=r.start, due=due, end=r.end, week=None,
                                 event_id=r.event_id, verdict="late" if end is not None else "missing"))
            findings.append(pd.DataFrame(recs))
    findings.append(_cadence(data, playbook, period, as_of, lang, check_row))
    findings.append(_authority(data, playbook, period, lang, check_row))
    fnd = pd.concat([f for f in findings if f is not None and len(f)], ignore_index=True) if any(
        f is not None and len(f) for f in findings) else pd.DataFrame(columns=FINDING_COLUMNS)
    for c in FINDING_COLUMNS:
        if c not in fnd:
            fnd[c] = None
    titles = {c.id: c.title.get(lang) for c in playbook.clauses}  # one look-up per clause, not per finding
    fnd["clause_title"] = fnd["clause"].map(titles).where(fnd["clause"].isin(titles), fnd["clause"])
    fnd = fnd[FINDING_COLUMNS]
    for c in ("start", "due", "end"):
        fnd[c] = pd.to_datetime(fnd[c], utc=True).astype(_TS)
    for c in ("limit", "value"):
        fnd[c] = fnd[c].astype("float64")
    for c in ("check", "rule", "deal_id", "owner", "clause", "clause_title", "source", "expected", "actual", "unit",
              "week", "event_id", "verdict"):
        fnd[c] = fnd[c].astype(object).where(fnd[c].notna(), None).astype("str")
    fnd = fnd.sort_values(["check", "deal_id", "start"], kind="stable").reset_index(drop=True)
    chk = pd.DataFrame(checks).set_index("check")
    chk["inferred"] = _inferred_column(chk, playbook, derived, ev, lang)
    for c in ("instances", "breaches", "pending"):  # a check that did not run counts nothing, not 0
        chk[c] = chk[c].astype("Int64").where(chk["status"] == "checked", pd.NA)
    fu = (pd.concat(follow_ups, ignore_index=True) if any(len(f) for f in follow_ups) else _empty_follow_ups())
    return Compliance(chk, fnd, as_of, fu, _missing_table(waiting, lang))


def _derived_quotes(data: CrmData, stage: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quotes read from stage changes (the mapping's ``derive: {quote_sent: {entered_stage: stage}}``).

    Per deal, the first stage change into ``stage`` (playbook id) with its ``amount`` (the deal's
    amount at that change, e.g. Salesforce OpportunityHistory.Amount), ``actor`` and time; returns
    (the :func:`_core` rows, the matching rows of ``data.events`` for the unreadable-value checks).
    """
    ev = _core(data)
    hit = ((ev["kind"] == "stage_change").to_numpy() & (ev["stage"] == stage).to_numpy()
           & (ev["pos"].to_numpy() >= 0) & ev["timestamp"].notna().to_numpy())
    q = ev[hit].sort_values("timestamp", kind="stable").drop_duplicates("pos")
    raw = data.events
    rows = (raw["kind"] == "stage_change").to_numpy() & (raw["stage"] == stage).to_numpy()
    return q, raw[rows]


def _contacted_before(inst: pd.DataFrame, ends: pd.DataFrame) -> pd.DataFrame:
    """A deal first contacted before its clock started (a Zoho potential is created when the lead is converted,
    after the calls to the lead) made its first contact in time: its instance ends at that earlier contact,
    never 'missing'."""
    none = inst["end"].isna().to_numpy()
    if not none.any() or ends.empty:
        return inst
    first = ends.sort_values("timestamp", kind="stable").drop_duplicates("deal_id").set_index("deal_id")
    early = inst["deal_id"].map(first["timestamp"])
    use = none & early.notna().to_numpy() & (early < inst["start"]).to_numpy()
    if not use.any():
        return inst
    return inst.assign(end=inst["end"].where(~use, early).astype(inst["end"].dtype),
                       event_id=inst["event_id"].where(~use, inst["deal_id"].map(first["event_id"])))


def _same_entry(start: str, end: str, derived: dict[str, tuple[str, str]]) -> str | None:
    """The stage whose entry both SLA events are inferred from (they coincide), else None."""
    if start in derived and end in derived and derived[start][0] == derived[end][0]:
        return derived[start][0]
    return None


def _inferred_column(chk: pd.DataFrame, playbook: Any, derived: dict[str, tuple[str, str]], ev: pd.DataFrame,
                     lang: str) -> list[str]:
    """The ``inferred`` legend per check: which of a checked SLA's events come from stage changes ("" none)."""
    events = {f"sla:{s.id}": (s.start_event, s.end_event) for s in playbook.slas}
    first_contact = not (ev["milestone"] == "first_contact_made").any()
    out = []
    for cid, status in chk["status"].items():
        evs = events.get(str(cid), ())
        note = _inferred_note(evs, derived, playbook, lang) if status == "checked" else ""
        if status == "checked" and first_contact and "first_contact_made" in evs:
            note += (t("；", "; ", lang) if note else "") + t(
                "推断：“首次接触”= 第一次主动的电话、邮件或拜访", "inferred: 'first contact made' = the first "
                "outbound call, e-mail or meeting", lang)
        if status == "checked" and cid == "authority" and derived.get("quote_sent", ("", ""))[1] == "mapping" \
                and not (ev["milestone"] == "quote_sent").any():
            name = _stage_name(playbook, derived["quote_sent"][0], lang)
            note = t(f"推断：报价 = 进入“{name}”阶段的阶段变更及其金额（导入映射的设定）",
                     f"inferred: quotes = the stage changes entering {name}, with their amount "
                     "(set in the import mapping)", lang)
        out.append(note)
    return out


def _no_case(cid: str, playbook: Any, period: Period, lang: str) -> str:
    """Why a check that ran covered 0 cases: what it would have counted, in which period, in a manager's words."""
    when = t(f"{period.month} 月", f"in {period.month}", lang) if period.month else t("整份导出中", "in the export", lang)
    if cid.startswith("sla:"):
        sla = next(s for s in playbook.slas if f"sla:{s.id}" == cid)
        return t(f"没有可检查的情形：{when}没有商机记录“{event_label(sla.start_event, 'zh-CN')}”。",
                 f"Nothing to check: no deal records '{event_label(sla.start_event, 'en')}' {when}.", lang)
    if cid == "cadence":
        return t(f"没有可检查的情形：{when}没有标有客户等级、且整周都在进行中的商机。",
                 f"Nothing to check: no deal with a customer class was open for a whole week {when}.", lang)
    return t(f"没有可检查的情形：{when}没有报价。", f"Nothing to check: no quote {when}.", lang)


def _scheduled(inst: pd.DataFrame, ends: pd.DataFrame, sla: Any, cal: BusinessCalendar, as_of: pd.Timestamp | None,
               owner: pd.Series, playbook: Any, lang: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Judge each instance of a scheduled SLA by local dates; return its follow-up rows and findings.

    The due day is the local date of :meth:`BusinessCalendar.add` (``limit`` after the start,
    seed:1.2.1); the window is :meth:`BusinessCalendar.day_window` of the SLA's ``tolerance`` (a
    company setting). ``inst`` has ``pos``, ``deal_id``, ``start``, ``end`` (NaT: no call; else the
    first call after the start) and ``event_id``; ``ends`` are all the deal's calls. The call that
    counts is the first on or after the window's first day; an early call counts (``too_early``)
    only when no call follows it, so an early courtesy call does not hide the scheduled one.
    """
    tz, tol, d = cal.timezone, sla.tolerance, sla.duration
    due = cal.add_many(inst["start"], d) if len(inst) else pd.Series([], dtype=_TS)
    due_day = due.dt.tz_convert(tz).dt.date
    windows: dict[Any, tuple[Any, Any] | None] = {}
    for day in set(due_day.dropna()):
        try:
            windows[day] = cal.day_window(day, tol.before, tol.after, tol.unit)
        except CalendarRangeError:
            windows[day] = None
    if len(inst):  # the first call from the window's first local midnight on, where there is one
        first_day = due_day.map(lambda day: (windows.get(day) or (None, None))[0])
        opens = pd.to_datetime(first_day.astype("string"), errors="coerce").dt.tz_localize(
            tz, nonexistent="shift_forward", ambiguous=True).dt.tz_convert("UTC")
        later = _pair(inst.assign(timestamp=opens.fillna(inst["start"]).astype(_TS)), ends)
        use = later["end"].notna().to_numpy()
        inst = inst.assign(end=inst["end"].where(~use, later["end"]),
                           event_id=inst["event_id"].where(~use, later["event_id"]))
    start_day = inst["start"].dt.tz_convert(tz).dt.date
    end_day = inst["end"].dt.tz_convert(tz).dt.date
    as_of_day = None if as_of is None else as_of.tz_convert(tz).date()
    verdict, n_days, first_days, last_days = scheduled_verdicts(due_day, end_day, start_day, windows, as_of_day)
    checked = verdict != "unchecked"
    deal_ids = inst["deal_id"].to_numpy(dtype=object)
    if owner.index.is_unique:  # (an unknown deal and a blank owner are both missing)
        owners = owner.reindex(deal_ids).to_numpy(dtype=object)
    else:
        owners = np.array([owner.get(x) for x in deal_ids] + [None], dtype=object)[:-1]
    dd_all = due_day.astype(object).where(due_day.notna(), None).to_numpy(dtype=object)
    rows = {"check": [f"sla:{sla.id}"] * len(inst), "deal_id": list(deal_ids), "owner": list(owners),
            "start": list(inst["start"]), "due_day": list(np.where(checked, dd_all, None)),
            "first_day": list(first_days), "last_day": list(last_days), "end": list(inst["end"]),
            "day": n_days, "verdict": list(verdict)}
    recs = []
    unit_zh, unit_en = ("个工作日", "working days") if tol.unit == "working_days" else ("天", "calendar days")
    for i in np.flatnonzero(np.isin(verdict, FOLLOW_UP_BREACHES)).tolist():  # findings: the breaches only
        r = inst.iloc[i]
        dd, first, last, n, v = due_day.iat[i], first_days[i], last_days[i], n_days[i], verdict[i]
        ed = end_day.iat[i] if pd.notna(r.end) else None
        zh, en = FOLLOW_UP_VERDICTS[v]
        expected = t(f"成交后{d.label('zh-CN')}当天（{dd}），公司允许 {first} 至 {last}"
                     f"（提前至多 {tol.before}{unit_zh}，推迟至多 {tol.after}{unit_zh}）",
                     f"on the day {d.label('en')} after the deal ({dd}); the company accepts {first} to {last} "
                     f"({tol.before} {unit_en} before, {tol.after} after)", lang)
        if ed is not None:
            actual = t(f"{zh}：成交后第 {n} 天（{_fmt_local(r.end, tz)}）", f"{en}: day {n} after the deal "
                       f"({_fmt_local(r.end, tz)})", lang)
        else:
            actual = t(f"{zh}：截至 {_fmt_local(as_of, tz)} 未记录回访", f"{en}: no call recorded by "
                       f"{_fmt_local(as_of, tz)}", lang)
        measured_to = r.end if ed is not None else as_of
        if measured_to is None:  # a missing call needs as_of: never here without it
            continue
        recs.append(dict(check=f"sla:{sla.id}", rule=sla.name.get(lang), deal_id=r.deal_id, owner=owners[i],
                         clause=sla.clause, source=_clause_source(playbook, sla.clause), expected=expected,
                         actual=actual, limit=float(d.value),
                         value=float(cal.elapsed(r.start.to_pydatetime(), measured_to.to_pydatetime(), d.unit)),
                         unit=d.unit.value, start=r.start, due=due.iat[i], end=r.end, week=None,
                         event_id=r.event_id, verdict=v))
    fu = pd.DataFrame(rows, columns=FOLLOW_UP_COLUMNS)
    fu["day"] = fu["day"].astype("Int64")
    for c in ("start", "end"):
        fu[c] = pd.to_datetime(fu[c], utc=True).astype(_TS)
    return fu, recs


def scheduled_verdicts(due_day: pd.Series, end_day: pd.Series, start_day: pd.Series,
                       windows: dict[Any, tuple[Any, Any] | None], as_of_day: Any
                       ) -> tuple[np.ndarray, list[int | None], np.ndarray, np.ndarray]:
    """Judge scheduled follow-ups by local dates, all at once (seed:1.2.1; see :func:`_scheduled`).

    Parameters
    ----------
    due_day, end_day, start_day : pd.Series
        Per instance, the local due date, the local date of the call that counts (missing: no call)
        and the local start date (``datetime.date`` objects).
    windows : dict
        The company's window ``(first_day, last_day)`` per due date; None where the calendar does not
        cover it.
    as_of_day : datetime.date or None
        The local date the export was taken (None: unknown, so no call is ever ``missing``).

    Returns
    -------
    verdict : np.ndarray of str
        ``unchecked`` (no window), ``too_early`` (before the first day), ``on_time`` (on the due
        day), ``within_tolerance`` (by the last day), ``late``; without a call ``missing`` when
        ``as_of_day`` is after the last day, else ``pending``.
    days : list of int or None
        Calendar days from the start to the call (None without a call).
    first_days, last_days : np.ndarray of datetime.date or None
        The window of each instance (None where unchecked).
    """
    n = len(due_day)

    def distinct(days: Any) -> tuple[np.ndarray, np.ndarray]:  # codes (-1: missing) and distinct dates
        codes, uniq = pd.factorize(np.asarray(days, dtype=object)) if len(days) else (np.zeros(0, np.intp), [])
        return codes, np.asarray(uniq, dtype=object)

    due_c, due_u = distinct(due_day)
    first_u, last_u = np.full(len(due_u) + 1, None, dtype=object), np.full(len(due_u) + 1, None, dtype=object)
    for i, day in enumerate(due_u):
        w = windows.get(day)
        if w is not None:
            first_u[i], last_u[i] = w
    first_days, last_days = first_u[due_c], last_u[due_c]  # (code -1 takes the final None)
    checked = np.array([w is not None for w in first_u], dtype=bool)[due_c] if n else np.zeros(0, dtype=bool)

    def ordinal(days: Any) -> np.ndarray:  # local dates as day numbers, -1 where missing
        codes, uniq = distinct(days)
        return np.array([x.toordinal() for x in uniq] + [-1], dtype=np.int64)[codes]

    due_o, end_o, start_o = ordinal(due_day), ordinal(end_day), ordinal(start_day)
    first_o, last_o = ordinal(first_days), ordinal(last_days)
    called = end_o >= 0
    as_of_o = as_of_day.toordinal() if as_of_day is not None else None
    overdue = np.zeros(n, dtype=bool) if as_of_o is None else as_of_o > last_o
    verdict = np.select(
        [~checked, called & (end_o < first_o), called & (end_o == due_o), called & (end_o <= last_o), called, overdue],
        ["unchecked", "too_early", "on_time", "within_tolerance", "late", "missing"], "pending").astype(object)
    days = [int(e - s) if c else None for e, s, c in zip(end_o.tolist(), start_o.tolist(), called.tolist())]
    return verdict, days, first_days, last_days


def _pair(starts: pd.DataFrame, ends: pd.DataFrame, keep_pos: bool = False) -> pd.DataFrame:
    """Pair each deal's start with the first end at or after it (``end`` NaT when none), in the starts' order
    of time; ``keep_pos`` keeps the deal's position column ``pos``."""
    s = starts[["pos", "deal_id", "timestamp"]].rename(columns={"timestamp": "start"})
    s = s.assign(_order=np.arange(len(s))).sort_values("start", kind="stable")
    e = ends[["pos", "timestamp", "event_id"]].rename(columns={"timestamp": "end"})
    e = e.assign(_key=e["end"]).sort_values("_key", kind="stable")
    out = pd.merge_asof(s, e, left_on="start", right_on="_key", by="pos", direction="forward")
    out = out.sort_values("_order", kind="stable").drop(columns=["_key", "_order"] + ([] if keep_pos else ["pos"]))
    return out.reset_index(drop=True)


def _email_instances(ev: pd.DataFrame) -> pd.DataFrame | None:
    """Pair each inbound e-mail with the first outbound one on the same deal (or account) after it."""
    is_mail = (ev["kind"] == "email").to_numpy() & ev["direction"].notna().to_numpy()
    mail = ev.loc[is_mail, ["deal_id", "account_id", "timestamp", "event_id", "direction", "pos"]]
    inbound_m = (mail["direction"] == "inbound").to_numpy()
    outbound_m = (mail["direction"] == "outbound").to_numpy()
    if not (inbound_m.any() and outbound_m.any()):
        return None
    pos = mail["pos"].to_numpy()
    acc = pd.factorize(mail["account_id"])[0]
    key = np.where(pos >= 0, pos, np.where(acc >= 0, pos.max() + 2 + acc, -1))
    mail = mail.assign(_key=key)[key >= 0]
    inbound = mail[mail["direction"] == "inbound"][["_key", "deal_id", "timestamp"]].rename(columns={"timestamp": "start"})
    out = mail[mail["direction"] == "outbound"][["_key", "timestamp", "event_id"]].rename(columns={"timestamp": "end"})
    inbound = inbound.sort_values("start", kind="stable")
    out = out.assign(_t=out["end"]).sort_values("_t", kind="stable")
    pairs = pd.merge_asof(inbound, out, left_on="start", right_on="_t", by="_key", direction="forward")
    return pairs.drop(columns=["_t", "_key"]).reset_index(drop=True)


def _cadence(data: CrmData, playbook: Any, period: Period, as_of: pd.Timestamp | None, lang: str,
             check_row: Any) -> pd.DataFrame | None:
    tiers = {tr.id: tr for tr in playbook.tiers}
    clause = playbook.tiers[0].cadence_clause if playbook.tiers else "follow-up-frequency"
    rule = t("按客户等级的每周跟进次数", "Weekly follow-ups per customer tier", lang)
    deals = data.unique_deals()
    tz = playbook.calendar.timezone
    ev = _core(data)
    is_contact = ev["kind"].isin(FOLLOW_UP_KINDS).to_numpy() & ~ev["synthetic"].to_numpy() & _held(ev)
    no_tier = not data.has("deals.tier") or not deals["tier"].isin(tiers).any()
    if no_tier or not is_contact.any():  # name every input that is missing (said once in Compliance.missing)
        check_row("cadence", rule, clause, "not_checkable",
                  needs=(("tier",) if no_tier else ()) + (("contacts",) if not is_contact.any() else ()))
        return None
    unread = unparsed(data, "events.timestamp",
                      lambda: data.events.loc[data.events["kind"].isin(FOLLOW_UP_KINDS).to_numpy(), ROW_KEYS])
    why = (unread.reason("电话、邮件和拜访的时间", "times of calls, e-mails and meetings", lang) if unread else
           created_gap(data, lang) or closed_gap(data, lang))
    if why:  # a week would lose the contacts (or the deal its open weeks) whose time is unreadable
        check_row("cadence", rule, clause, "not_checkable", why)
        return None
    if as_of is None:
        check_row("cadence", rule, clause, "not_checkable", "no timestamp in the export")
        return None
    sel = np.flatnonzero((deals["tier"].isin(tiers) & deals["created"].notna()).to_numpy())
    d = deals.iloc[sel]
    minimum = np.array([tr.min_weekly_follow_ups for tr in tiers.values()], dtype="int64")[
        pd.Index(list(tiers)).get_indexer(d["tier"])]
    sel, d, minimum = sel[minimum > 0], d[minimum > 0], minimum[minimum > 0]
    day = 86_400_000_000  # microseconds
    start = _local_us(d["created"], tz)
    stop = _local_us(d["closed"].fillna(as_of).clip(upper=as_of), tz)
    # days since 1970-01-01 (a Thursday): Monday of a day = day - (day + 3) % 7
    start_day = start // day
    start_monday = start_day - (start_day + 3) % 7
    first = np.where(start == start_monday * day, start_monday, start_monday + 7)
    stop_day = stop // day
    last_end = stop_day - (stop_day + 3) % 7          # the Monday (00:00) at or before ``stop``
    n_weeks = np.maximum((last_end - first) // 7, 0)
    rep = np.repeat(np.arange(len(d)), n_weeks)
    offs = np.arange(int(n_weeks.sum())) - np.repeat(np.cumsum(n_weeks) - n_weeks, n_weeks)
    w_pos = sel[rep]
    w_monday = first[rep] + 7 * offs
    w_min = minimum[rep]
    if period.month is not None:
        thursday = (w_monday + 3).astype("datetime64[D]")
        keep = np.datetime_as_string(thursday, unit="M") == period.month
        w_pos, w_monday, w_min = w_pos[keep], w_monday[keep], w_min[keep]
    # follow-ups: outbound (or undirected) contacts, duplicates left out, linked to the deal or its account
    ok = is_contact & (ev["direction"] != "inbound").to_numpy()
    pos = ev["pos"].to_numpy()
    f_pos = pos[ok & (pos >= 0)]
    stamps = ev.loc[ok & (pos >= 0), "timestamp"]
    via = ok & (pos < 0)
    via[via] = ~pd.isna(ev["account_id"].to_numpy(dtype=object)[via])
    if via.any() and deals["account"].notna().any():
        link = pd.DataFrame({"account_id": deals["account"], "_pos": np.arange(len(deals))}).dropna()
        extra = ev.loc[via, ["account_id", "timestamp"]].merge(link, on="account_id")
        f_pos = np.concatenate([f_pos, extra["_pos"].to_numpy()])
        stamps = pd.concat([stamps, extra["timestamp"]], ignore_index=True)
    local = _local_us(stamps, tz) // day
    f_monday = local - (local + 3) % 7
    span = 1 << 32
    f_key = f_pos.astype("int64") * span + f_monday
    keys, counts = np.unique(f_key, return_counts=True)
    w_key = w_pos.astype("int64") * span + w_monday
    w_count = np.zeros(len(w_key), dtype="int64")
    if len(keys):
        at = np.minimum(np.searchsorted(keys, w_key), len(keys) - 1)
        hit = keys[at] == w_key
        w_count[hit] = counts[at[hit]]
    weeks = pd.DataFrame({
        "deal_id": deals["deal_id"].to_numpy()[w_pos],
        "monday": w_monday.astype("datetime64[D]").astype("datetime64[us]"),
        "minimum": w_min.astype("int64"),
        "count": w_count.astype("int64"),
    })
    short = (weeks["count"] < weeks["minimum"]).to_numpy()
    bad = weeks[short]
    check_row("cadence", rule, clause, "checked", "", len(weeks), len(bad), 0)
    if bad.empty:
        return None
    bad_pos = w_pos[short]
    tier = pd.Series(deals["tier"].to_numpy(dtype=object)[bad_pos], index=bad.index)
    iso = bad["monday"].dt.isocalendar()
    week = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    sunday = bad["monday"] + pd.Timedelta(days=6)
    rng = bad["monday"].dt.strftime("%m-%d") + "–" + sunday.dt.strftime("%m-%d")
    cl = tier.map(lambda x: tiers[x].cadence_clause)
    start = bad["monday"].dt.tz_localize(tz).dt.tz_convert("UTC")
    out = pd.DataFrame({
        "check": "cadence", "rule": rule, "deal_id": bad["deal_id"].to_numpy(),
        "owner": deals["owner"].to_numpy(dtype=object)[bad_pos],
        "clause": cl.to_numpy(), "source": cl.map(lambda x: _clause_source(playbook, x)).to_numpy(),
        "expected": [t(f"{tr}类客户每周至少 {m} 次跟进（{w}，{r}）",
                       f"at least {m} follow-ups for a tier-{tr} customer in {w} ({r})", lang)
                     for tr, m, w, r in zip(tier, bad["minimum"], week, rng)],
        "actual": [t(f"{n} 次", f"{n} follow-up{'s' if n != 1 else ''}", lang) for n in bad["count"]],
        "limit": bad["minimum"].astype("float64").to_numpy(), "value": bad["count"].astype("float64").to_numpy(),
        "unit": "follow_ups_per_week", "start": start.to_numpy(),
        "due": (start + pd.Timedelta(days=7)).to_numpy(), "end": pd.NaT, "week": week.to_numpy(),
        "event_id": None})
    return out


def _authority(data: CrmData, playbook: Any, period: Period, lang: str, check_row: Any) -> pd.DataFrame | None:
    clause = playbook.authority[0].clause if playbook.authority else "quote-limits"
    rule = t("超出权限的报价须经审批", "Quotes above the role's authority need approval", lang)
    ev = _core(data)
    quotes = ev[(ev["milestone"] == "quote_sent").to_numpy()]
    currency = data.mapping.spec.source.currency
    sent: Any = lambda: data.events[(data.events["milestone"] == "quote_sent").to_numpy()]  # noqa: E731
    if quotes.empty and "quote_sent" in data.mapping.spec.derive:
        quotes, sent = _derived_quotes(data, data.mapping.spec.derive["quote_sent"].entered_stage)
    if quotes.empty or quotes["amount"].isna().all():
        check_row("authority", rule, clause, "not_checkable", needs=("quote_amount",))
        return None
    for name, what, what_en in (("events.timestamp", "报价发出时间", "quote-sent times"),
                                ("events.amount", "报价金额", "quote amounts"),
                                ("events.discount", "报价折扣", "quote discounts")):
        unread = unparsed(data, name, sent)
        if unread is not None:
            check_row("authority", rule, clause, "not_checkable", unread.reason(what, what_en, lang))
            return None
    blockers = []  # every one is named, so that fixing one does not reveal the next
    needs = () if data.has("events.approved_by") else ("approved_by",)
    if currency != playbook.sop.currency:
        blockers.append(t(f"报价币种为 {currency or '未声明'}，权限金额以 {playbook.sop.currency} 计。",
                          f"quotes are in {currency or 'an undeclared currency'}, the authority limits in "
                          f"{playbook.sop.currency}.", lang))
    if blockers or needs:
        check_row("authority", rule, clause, "not_checkable", " ".join(blockers), needs=needs)
        return None
    q = quotes[period.contains(quotes["timestamp"])] if period.month else quotes
    q = q[q["amount"].notna()]
    roles = data.owners.set_index("owner")["role"] if len(data.owners) else pd.Series(dtype=str)
    deal_role = data.unique_deals()["role"].to_numpy(dtype=object)
    role = q["actor"].map(roles).to_numpy(dtype=object)
    qpos = q["pos"].to_numpy()
    from_deal = np.where(qpos >= 0, deal_role[np.maximum(qpos, 0)], None) if len(deal_role) else np.full(len(q), None)
    role = np.where(pd.isna(role), from_deal, role)
    if data.mapping.spec.source.default_role:
        role = np.where(pd.isna(role), data.mapping.spec.source.default_role, role)
    if pd.isna(role).all():
        check_row("authority", rule, clause, "not_checkable",
                  t("导出数据没有说明报价人的岗位。", "the export does not say which role quoted.", lang))
        return None
    limits = {a.role: a for a in playbook.authority}
    inf = float("inf")
    role_code, role_u = pd.factorize(pd.Series(role, dtype=object))  # a missing role gets code -1
    per_role = [limits.get(r) for r in role_u] + [None]  # code -1 takes the final None: unknown
    max_amount = np.array([inf if a is None or a.max_quote_amount is None else float(a.max_quote_amount)
                           for a in per_role])[role_code]
    max_disc = np.array([inf if a is None or a.max_discount is None else float(a.max_discount)
                         for a in per_role])[role_code]
    known = np.array([a is not None for a in per_role], dtype=bool)[role_code]
    amount = q["amount"].to_numpy(dtype="float64")
    disc = np.nan_to_num(q["discount"].to_numpy(dtype="float64"), nan=0.0)
    approved = q["approved_by"].fillna("").str.strip().ne("").to_numpy()
    over = known & ((amount > max_amount) | (disc > max_disc))
    recs = []
    for i in np.flatnonzero(over & ~approved):  # few: the exact chain (Decimal) names the approver
        r = q.iloc[i]
        rl = role[i]
        amt = Decimal(str(r["amount"]))
        dsc = Decimal(str(r["discount"])) if pd.notna(r["discount"]) else Decimal(0)
        try:
            chain = playbook.approval_chain(rl, amt, dsc)
        except ValueError:
            chain = [limits[rl], limits[rl]]
        if len(chain) == 1:
            continue
        lim = limits[rl]
        who, need = _role_name(playbook, rl, lang), _role_name(playbook, chain[1].role, lang)
        most, quoted = (money_text(x, playbook.sop.currency, lang) for x in (lim.max_quote_amount or 0, amt))
        expected = t(
            f"{who}报价上限 {most}、折扣上限 {float(lim.max_discount or 0):.0%}；超出须由{need}审批",
            f"a {who} may quote up to {most} at up to "
            f"{float(lim.max_discount or 0):.0%} off; above that, approval by the {need}", lang)
        actual = t(f"{quoted}，折扣 {float(dsc):.0%}，无审批记录",
                   f"{quoted} at {float(dsc):.0%} off, no approver recorded", lang)
        recs.append(dict(check="authority", rule=rule, deal_id=r["deal_id"], owner=r["actor"], clause=lim.clause,
                         source=_clause_source(playbook, lim.clause), expected=expected, actual=actual,
                         limit=float(lim.max_quote_amount or 0), value=float(amt),
                         unit=playbook.sop.currency, start=r["timestamp"], due=pd.NaT, end=pd.NaT,
                         week=None, event_id=r["event_id"]))
    unknown_role = int((~known).sum())
    reason = t(f"{unknown_role} 条报价的岗位不在权限表中。", f"{unknown_role} quotes by roles without a "
               "limit in the playbook were skipped.", lang) if unknown_role else ""
    if len(q) and q["discount"].isna().all():  # an absent discount is not a 0% discount: say what was judged
        reason = (reason + " " if reason else "") + t("导出数据没有记录折扣，只按金额检查。",
                                                      "the export records no discounts: only amounts were judged.", lang)
    check_row("authority", rule, clause, "checked", reason, len(q) - unknown_role, len(recs), 0)
    return pd.DataFrame(recs) if recs else None
