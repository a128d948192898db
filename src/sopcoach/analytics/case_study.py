"""Case studies for the monthly meeting (seed:3.3.2): a deal's timeline against the SOP, each deviation and its clause."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..crm.reading import CrmData
from ..errors import AnalysisError
from ..i18n import current_lang, t
from .compliance import _TS, Compliance, _fmt_local, _num, check_compliance
from .stages import stage_entries

__all__ = ["CaseStudy", "case_study"]

_ZH_KINDS = {"stage_change": "阶段变更", "call": "电话", "email": "邮件", "meeting": "拜访", "task": "任务"}


# ----------------------------------------------------------------------------------- case study


@dataclass(frozen=True)
class CaseStudy:
    """One deal against the SOP, for the monthly meeting (seed:3.3.2).

    ``deal``: the deal's row. ``timeline``: its events in time order, columns ``timestamp``
    (datetime64[us, UTC]), ``local_time`` (str, playbook zone), ``kind``, ``stage`` (playbook stage
    in force), ``what`` (str), ``deviation`` (str, empty when none). ``stages``: index playbook
    stage id; columns ``name``, ``entered`` (datetime64[us, UTC]), ``observed`` (bool),
    ``exit_criteria`` (str). ``deviations``: the deal's compliance findings plus ``clause_title``
    and ``clause_text`` (the clause quoted). ``prompts``: discussion questions. ``checked``: how
    many SOP checks the export supported (0: an empty ``deviations`` says nothing).
    """

    deal_id: str
    deal: pd.Series
    timeline: pd.DataFrame
    stages: pd.DataFrame
    deviations: pd.DataFrame
    prompts: list[str]
    checked: int = 0


def case_study(data: CrmData, playbook: Any, deal_id: str, compliance: Compliance | None = None,
               *, lang: str | None = None) -> CaseStudy:
    """Build the timeline of one deal against the SOP stages, with each deviation and its clause.

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
    compliance = compliance or check_compliance(data, playbook, lang=lang)
    ev = data.events[(data.events["deal_id"] == deal_id)
                     | (data.events["deal_id"].isna() & pd.notna(deal["account"])
                        & (data.events["account_id"] == deal["account"]))]
    ev = ev.sort_values("timestamp", kind="stable")
    names = {s.id: s.name.get(lang) for s in playbook.stages}
    names.update({"won": t("赢单", "won", lang), "lost": t("丢单", "lost", lang)})
    dev = compliance.for_deal(deal_id).copy()

    def clause_text(cid: str, part: str) -> str:
        try:
            c = playbook.clause(cid)
        except KeyError:
            return ""
        return (c.title if part == "title" else c.text).get(lang)

    dev["clause_title"] = dev["clause"].map(lambda c: clause_text(c, "title"))
    dev["clause_text"] = dev["clause"].map(lambda c: clause_text(c, "text"))
    # stage in force at each event
    sc = ev[ev["kind"] == "stage_change"]
    current = None
    stages_at = []
    for r in ev.itertuples():
        if r.kind == "stage_change" and isinstance(r.stage, str):
            current = r.stage
        stages_at.append(names.get(current, current or ""))
    flagged = dict(zip(dev["event_id"], dev["rule"] + ": " + dev["actual"]))

    def what(r: Any) -> str:
        if r.kind == "stage_change":
            label = names.get(r.stage, r.stage_raw if isinstance(r.stage_raw, str) else "?")
            return t(f"进入阶段：{label}", f"stage: {label}", lang)
        parts = [t(_ZH_KINDS.get(str(r.kind), str(r.kind)), str(r.kind), lang)]
        if isinstance(r.direction, str):
            parts.append(t({"inbound": "（客户发起）", "outbound": "（我方发起）"}[r.direction],
                           f"({r.direction})", lang))
        if isinstance(r.milestone, str):
            parts.append(f"[{r.milestone}]")
        if isinstance(r.subject, str):
            parts.append(r.subject)
        if pd.notna(r.amount):
            parts.append(f"{_num(r.amount)}")
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
    ent = stage_entries(data, playbook)
    ent = ent[ent["deal_id"] == deal_id].set_index("stage")
    stages = pd.DataFrame({
        "name": [s.name.get(lang) for s in playbook.stages],
        "entered": [ent["entered"].get(s.id, pd.NaT) for s in playbook.stages],
        "observed": [bool(ent["observed"].get(s.id, False)) for s in playbook.stages],
        "exit_criteria": ["; ".join(c.get(lang) for c in s.exit_criteria) for s in playbook.stages],
    }, index=pd.Index([s.id for s in playbook.stages], name="stage"))
    stages["entered"] = pd.to_datetime(stages["entered"], utc=True).astype(_TS)
    del sc
    return CaseStudy(deal_id, deal, timeline, stages, dev.reset_index(drop=True),
                     discussion_prompts(deal, dev, stages, lang, checked=compliance.checked),
                     compliance.checked)


def discussion_prompts(deal: pd.Series, deviations: pd.DataFrame, stages: pd.DataFrame,
                       lang: str | None = None, checked: int = 1) -> list[str]:
    """Return questions for the monthly meeting about one deal (seed:3.3.2).

    ``checked`` is the number of SOP checks the export supported; with none, the prompt asks what
    the CRM should record instead of suggesting the deal kept the SOP.
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
    out.append(t("基于这个案例，下个月的SOP或培训要改什么？", "What should change in the SOP or the training "
                 "next month because of this case?", lang))
    return out
