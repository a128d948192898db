"""Data quality of a CRM export: blank accounts, unknown stages, products and tiers, impossible times, duplicates.

:func:`quality_report` reports each check as found, clean, or not checkable with the reason; the
findings name the source file and row.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..i18n import current_lang, t
from ..labels import VALUES, date_format_words
from .reading import CrmData, positions_in, stage_paths

__all__ = ["QualityReport", "quality_report"]


# --------------------------------------------------------------------------- data quality

_NAT = np.iinfo("int64").min


def _ns(s: pd.Series) -> np.ndarray:
    """Return a UTC datetime series as int64 microseconds (NaT as the int64 minimum)."""
    return s.dt.tz_localize(None).to_numpy().astype("datetime64[us]").astype("int64")


@dataclass(frozen=True)
class QualityReport:
    """Data-quality findings of an export.

    ``summary``: index ``check`` (str); columns ``status`` (``found``, ``clean`` or
    ``not_checkable``), ``count`` (int64), ``message`` (str), ``examples`` (str).
    ``details``: one row per finding; columns ``check``, ``deal_id``, ``event_id``, ``value``,
    ``source_file`` (str), ``source_row`` (int64).
    """

    summary: pd.DataFrame
    details: pd.DataFrame

    def count(self, check: str) -> int:
        return int(self.summary.loc[check, "count"]) if check in self.summary.index else 0


def quality_report(data: CrmData, playbook: Any = None, lang: str | None = None) -> QualityReport:
    """Check an export for blank accounts, unknown stages/products/tiers, impossible times, duplicates.

    Checks (each reported as found, clean, or not checkable with the reason): ``blank_account``
    (deals without an account, open ones counted apart), ``unknown_stage`` (raw stage names the
    mapping does not map), ``unknown_product`` (not in the export's product list), ``unknown_tier``
    (not a playbook tier), ``unknown_account``, ``event_before_deal`` (an event earlier than its deal's
    creation), ``negative_duration`` (closed before created, an event ending or modified before it
    starts, a negative call duration), ``duplicate_event`` (identical in every column but the id), ``duplicate_deal`` (a deal id on
    more than one deals row, e.g. the same file exported twice: the deal is counted once; rows that
    differ are also row problems), every count being of unique deals,
    ``orphan_event`` (no deal or account, or an unknown deal id), ``date_formats`` (more than one
    date format in the export), ``stage_regression`` (a stage path that goes back, e.g. won then
    lost).

    Parameters
    ----------
    data : CrmData
    playbook : Playbook, optional
        Needed for ``unknown_tier``.
    lang : {"zh-CN", "en"}, optional
        Language of the messages (default ``SOPCOACH_LANG``).

    Returns
    -------
    QualityReport
    """
    lang = lang or current_lang()

    def tr(zh: str, en: str) -> str:
        return t(zh, en, lang)

    rows: list[dict[str, Any]] = []
    details: list[pd.DataFrame] = []
    deals, ev = data.unique_deals(), data.events  # every count is of deals, not of rows

    def add(check: str, status: str, count: int, message: str, frame: pd.DataFrame | None = None,
            value: pd.Series | None = None) -> None:
        examples = ""
        if frame is not None and len(frame):
            d = pd.DataFrame({
                "check": check,
                "deal_id": frame["deal_id"] if "deal_id" in frame else None,
                "event_id": frame["event_id"] if "event_id" in frame else None,
                "value": value.astype(str) if value is not None else None,
                "source_file": frame["source_file"], "source_row": frame["source_row"]})
            details.append(d)
            ids = frame["deal_id"].astype(object)
            if "event_id" in frame:
                ids = frame["event_id"].astype(object).where(frame["event_id"].notna(), ids)
            ids = ids.fillna("row " + frame["source_row"].astype(str)).astype(str)
            examples = ", ".join(ids.head(5)) + (" ..." if len(frame) > 5 else "")
        rows.append({"check": check, "status": status, "count": count, "message": message,
                     "examples": examples})

    # blank accounts
    if data.has("deals.account"):
        blank = deals[deals["account"].isna()]
        n_open = int((blank["outcome"] == "open").sum())
        add("blank_account", "found" if len(blank) else "clean", len(blank),
            tr(f"{len(blank):,} 个商机没有客户（{n_open:,} 个进行中，{len(blank) - n_open:,} 个已关闭）",
               f"{len(blank):,} deals without an account ({n_open:,} open, {len(blank) - n_open:,} closed)"),
            blank)
    else:
        add("blank_account", "not_checkable", 0, tr("映射没有商机的客户列", "the mapping has no account column for deals"))
    # unknown stages
    unk = deals[deals["stage"].isna() & deals["stage_raw"].notna()]
    ev_unk = ev[(ev["kind"] == "stage_change") & ev["stage"].isna() & ev["stage_raw"].notna()]
    names = sorted(set(unk["stage_raw"]) | set(ev_unk["stage_raw"]))
    add("unknown_stage", "found" if names else "clean", len(unk) + len(ev_unk),
        tr(f"映射中没有的阶段名称：{'、'.join(names)}", f"stage names not in the mapping: {', '.join(names)}")
        if names else tr("所有阶段名称都已映射", "every stage name is mapped"),
        pd.concat([unk, ev_unk]) if names else None,
        pd.concat([unk["stage_raw"], ev_unk["stage_raw"]]) if names else None)
    # unknown products
    if data.products is None or not data.has("deals.product"):
        add("unknown_product", "not_checkable", 0,
            tr("导出数据没有产品清单", "the export has no product list") if data.products is None
            else tr("商机没有产品列", "the deals have no product column"))
    else:
        bad = deals[deals["product"].notna() & ~deals["product"].isin(data.products)]
        names = sorted(bad["product"].unique())
        add("unknown_product", "found" if len(bad) else "clean", len(bad),
            tr(f"不在产品清单中的产品：{'、'.join(names)}", f"products not in the product list: {', '.join(names)}")
            if names else tr("所有产品都在清单中", "every product is listed"),
            bad, bad["product"])
    # unknown tiers
    if playbook is None or not data.has("deals.tier"):
        add("unknown_tier", "not_checkable", 0, tr("商机没有客户等级", "the deals have no tier")
            if playbook is not None else tr("未提供规程", "no playbook given"))
    else:
        tiers = {t.id for t in playbook.tiers}
        bad = deals[deals["tier"].notna() & ~deals["tier"].isin(tiers)]
        add("unknown_tier", "found" if len(bad) else "clean", len(bad),
            tr(f"不在规程客户等级中的等级（{'、'.join(sorted(tiers))}）：{'、'.join(sorted(bad['tier'].unique()))}",
               f"tiers not in the playbook ({', '.join(sorted(tiers))}): {', '.join(sorted(bad['tier'].unique()))}")
            if len(bad) else tr("所有等级都是规程中的客户等级", "every tier is a playbook tier"), bad, bad["tier"])
    # unknown accounts
    if data.accounts is None or not data.has("deals.account"):
        add("unknown_account", "not_checkable", 0, tr("导出数据没有客户清单", "the export has no account list"))
    else:
        bad = deals[deals["account"].notna() & ~deals["account"].isin(set(data.accounts["account"].dropna()))]
        add("unknown_account", "found" if len(bad) else "clean", len(bad),
            tr(f"{len(bad):,} 个商机的客户不在客户清单中", f"{len(bad):,} deals name an account missing from the account list"),
            bad, bad["account"])
    # events before the deal exists
    pos = data.event_deal_pos()
    real = ~ev["synthetic"].to_numpy()
    created = _ns(data.unique_deals()["created"])
    linked = real & (pos >= 0)
    if linked.any() and (created != _NAT).any():
        c = np.where(pos >= 0, created[np.maximum(pos, 0)], _NAT)
        ts = _ns(ev["timestamp"])
        before = ev[linked & (c != _NAT) & (ts != _NAT) & (ts < c)]
        add("event_before_deal", "found" if len(before) else "clean", len(before),
            tr(f"{len(before):,} 条记录早于其商机的创建时间", f"{len(before):,} events are dated before their deal was created"),
            before,
            before["timestamp"].astype(str))
    else:
        add("event_before_deal", "not_checkable", 0,
            tr("没有与带创建时间的商机关联的记录", "no events linked to deals with a creation date"))
    # negative durations
    neg_deals = deals[deals["closed"] < deals["created"]]
    neg_end = ev[ev["end"] < ev["timestamp"]]
    neg_mod = ev[ev["modified"] < ev["timestamp"]]
    neg_dur = ev[ev["duration_s"] < 0]
    total = len(neg_deals) + len(neg_end) + len(neg_mod) + len(neg_dur)
    parts = [tr(f"{len(neg_deals):,} 个商机的关闭早于创建", f"{len(neg_deals):,} deals closed before they were created"),
             tr(f"{len(neg_end):,} 条记录的结束早于开始", f"{len(neg_end):,} events end before they start"),
             tr(f"{len(neg_mod):,} 条记录的修改早于创建", f"{len(neg_mod):,} records modified before they were created"),
             tr(f"{len(neg_dur):,} 个通话时长为负", f"{len(neg_dur):,} negative call durations")]
    frame = pd.concat([neg_deals.assign(event_id=None), neg_end, neg_mod, neg_dur])
    add("negative_duration", "found" if total else "clean", total, tr("；", "; ").join(parts), frame if total else None)
    # duplicates
    dup = ev[ev["duplicate_of"].notna()]
    if len(dup):
        by_kind = dup["kind"].astype(str).value_counts()
        kinds = VALUES["kind"]
        what = tr("、", ", ").join(f"{n:,} {tr(*kinds.get(k, (k, k)))}" for k, n in by_kind.items())
        msg = tr(f"{len(dup):,} 条记录除编号外与之前的记录完全相同（{what}）；保留在数据中，但不计入跟进次数",
                 f"{len(dup):,} events repeat an earlier one in every column but the id ({what}); "
                 "they are kept in the data and left out of follow-up counts")
    else:
        msg = tr("没有重复记录", "no repeated events")
    add("duplicate_event", "found" if len(dup) else "clean", len(dup), msg, dup, dup["duplicate_of"])
    # deal ids on more than one row (identical rows are counted once; differing ones are row problems)
    rows_ = data.deals
    again = rows_[rows_["deal_id"].notna() & rows_["deal_id"].duplicated()]
    if len(again):
        first = rows_.drop_duplicates("deal_id").set_index("deal_id").loc[again["deal_id"]]
        where = (first["source_file"].map(lambda f: Path(str(f)).name) + " line "
                 + first["source_row"].astype(str)).to_numpy()
        value = pd.Series(where, index=again.index)
        files = ", ".join(dict.fromkeys(Path(str(f)).name for f in pd.concat([first["source_file"], again["source_file"]])))
        n_ids = again["deal_id"].nunique()
        e = again.iloc[0]
        eg = f"{e['deal_id']}: {where[0]}, {Path(str(e['source_file'])).name} line {e['source_row']}"
        add("duplicate_deal", "found", len(again),
            tr(f"{n_ids:,} 个商机编号出现在多行中（{files}；共多出 {len(again):,} 行；例如 {eg}），每个商机只计一次；"
               "内容不同的行另列为行问题",
               f"{n_ids:,} deal id{'s are' if n_ids != 1 else ' is'} on more than one row ({files}; {len(again):,} "
               f"extra row{'s' if len(again) != 1 else ''}; e.g. {eg}); each deal is counted once, and rows that "
               "differ are listed as row problems"),
            again, value)
    else:
        add("duplicate_deal", "clean", 0, tr("每个商机编号只出现一次", "every deal id is on one row"))
    # orphans
    has_deal = ev["deal_id"].notna().to_numpy()
    orphan = ev[real & ((~has_deal & ev["account_id"].isna().to_numpy()) | (has_deal & (pos < 0)))]
    add("orphan_event", "found" if len(orphan) else "clean", len(orphan),
        tr(f"{len(orphan):,} 条记录没有商机或客户，或指向导出中不存在的商机",
           f"{len(orphan):,} events have no deal or account, or name a deal not in the export"), orphan)
    # date formats
    fm = data.date_formats
    distinct = sorted(fm["format"].unique()) if len(fm) else []
    if len(distinct) > 1:
        parts = []
        for fmt_, grp_ in fm.groupby("format", sort=True):
            files = ", ".join(dict.fromkeys(Path(f).name for f in grp_["file"]))
            words = date_format_words(fmt_, lang)
            parts.append(tr(f"{words}（{files}；{int(grp_['rows'].sum()):,} 个值）",
                            f"{words} ({files}; {int(grp_['rows'].sum()):,} values)"))
        add("date_formats", "found", len(distinct),
            tr(f"本导出使用 {len(distinct)} 种日期格式，均按映射声明解析：", f"{len(distinct)} date formats in this "
               "export, each parsed as the mapping declares: ") + tr("；", "; ").join(parts))
    else:
        one = date_format_words(distinct[0], lang) if distinct else ""
        add("date_formats", "clean", len(distinct), tr(f"一种日期格式：{one}", f"one date format: {one}")
            if distinct else tr("没有日期", "no dates"))
    # stage regressions (using playbook order when given, else won -> lost only)
    ids = [s.id for s in playbook.stages] if playbook is not None else []
    order = {s: i for i, s in enumerate(ids)}
    order.update({"won": len(ids), "lost": len(ids)})
    sel = ((ev["kind"] == "stage_change").to_numpy() & (pos >= 0) & ev["stage"].isin(order).to_numpy())
    idx = np.flatnonzero(sel)
    idx = idx[np.lexsort((_ns(ev["timestamp"])[idx], pos[idx]))]  # by deal, then time (stable)
    grp = pd.Series(pos[idx])
    stages = ev["stage"].to_numpy(dtype=object)[idx]
    stage_pos = pd.Series(positions_in(pd.Index(list(order)), stages))
    stage_pos = stage_pos.map(dict(enumerate(order.values()))).astype("int64")
    before = stage_pos.groupby(grp).cummax().groupby(grp).shift()
    is_won = pd.Series(stage_pos.to_numpy() == order["won"]) & pd.Series(stages == "won")
    won_before = is_won.astype("int64").groupby(grp).cummax().groupby(grp).shift().fillna(0)
    is_lost = pd.Series(stages == "lost")
    back_rows = ((stage_pos < before) | (is_lost & (won_before > 0))).to_numpy()
    back_ids = set(data.unique_deals()["deal_id"].to_numpy()[pos[idx][back_rows]])
    frame = deals[deals["deal_id"].isin(back_ids)]
    paths = stage_paths(data) if back_ids else pd.Series(dtype=object)
    add("stage_regression", "found" if back_ids else "clean", len(back_ids),
        tr(f"{len(back_ids):,} 个商机在流程中倒退（如先赢单后丢单）",
           f"{len(back_ids):,} deals moved back in the process (e.g. won, then lost)"), frame,
        frame["deal_id"].map(lambda d: " -> ".join(paths.get(d, []))))
    summary = pd.DataFrame(rows).set_index("check")
    summary["count"] = summary["count"].astype("int64")
    det = (pd.concat(details, ignore_index=True) if details else
           pd.DataFrame(columns=["check", "deal_id", "event_id", "value", "source_file", "source_row"]))
    return QualityReport(summary, det)
