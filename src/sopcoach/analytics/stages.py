"""Stage entries: whether and when each deal entered each playbook stage, read from the export.

Every analysis starts from :func:`stage_entries` (cached on the :class:`~sopcoach.crm.reading.CrmData`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..crm.reading import CrmData

__all__ = ["stage_entries"]


# ----------------------------------------------------------------------------------- stages


def _stage_ids(playbook: Any) -> list[str]:
    return [s.id for s in playbook.stages]


_CORE = ["event_id", "deal_id", "account_id", "kind", "timestamp", "actor", "direction", "stage",
         "milestone", "amount", "discount", "approved_by", "status", "synthetic"]

_CORE_CATEGORIES = ["direction", "stage", "milestone"]


def _core(data: CrmData) -> pd.DataFrame:
    """The events without repeated rows (``duplicate_of``), the columns analyses use, and ``pos``.

    ``pos`` (intp) is the row of the event's deal in ``data.unique_deals()`` (-1: none). Cached on
    the export, since every check reads it.
    """
    if "core" not in data._cache:
        ev = data.events
        keep = ev["duplicate_of"].isna().to_numpy()
        core = ev.loc[keep, _CORE].reset_index(drop=True)
        for c in _CORE_CATEGORIES:  # a handful of distinct values: compared by code, not text
            core[c] = _categories(core[c])
        core["pos"] = data.event_deal_pos()[keep]
        data._cache["core"] = core
    return data._cache["core"]


def _categories(values: pd.Series) -> pd.Series:
    """Return ``values.astype("category")`` (categories sorted, missing values without one), made from
    one factorization of the Python strings: the distinct values are sorted, not the rows."""
    codes, uniq = pd.factorize(values.to_numpy(dtype=object))  # a missing value gets code -1
    cats = pd.Index(uniq, dtype=values.dtype)
    order = cats.argsort()
    rank = np.empty(len(order) + 1, dtype=codes.dtype)
    rank[order], rank[-1] = np.arange(len(order)), -1  # (code -1 takes the final -1)
    return pd.Series(pd.Categorical.from_codes(rank[codes], dtype=pd.CategoricalDtype(cats.take(order))),
                     index=values.index, name=values.name)


def stage_entries(data: CrmData, playbook: Any) -> pd.DataFrame:
    """Return, per deal and playbook stage, whether and when the deal entered the stage.

    A deal reached every stage up to the furthest one it was seen in (its current stage or a stage
    change); a won deal reached them all. ``entered`` is the first recorded entry; a stage reached
    but never recorded takes the next recorded entry (or the close of a won deal) and is marked
    ``observed=False``.

    Returns
    -------
    pandas.DataFrame
        Index: RangeIndex. Columns: ``deal_id`` (str), ``stage`` (str, playbook id),
        ``position`` (int64, 0-based order), ``entered`` (datetime64[us, UTC], NaT when unknown),
        ``observed`` (bool: the export shows the deal in this stage), ``dated`` (bool: a stage
        change records when), ``pos`` (intp: the deal's row in ``data.unique_deals()``). Only
        reached stages appear.
    """
    ids = _stage_ids(playbook)
    key = ("entries", tuple(ids))
    if key not in data._cache:
        data._cache[key] = _stage_entries(data, ids)
    return data._cache[key]


def _stage_entries(data: CrmData, ids: list[str]) -> pd.DataFrame:
    k = len(ids)
    deals = data.unique_deals()
    n = len(deals)
    ev = _core(data)
    is_sc = (ev["kind"] == "stage_change").to_numpy()
    sc = ev.loc[is_sc, ["stage", "timestamp", "pos"]]
    sc = sc[sc["stage"].isin(ids).to_numpy() & sc["timestamp"].notna().to_numpy()]
    r = sc["pos"].to_numpy()
    ok = r >= 0
    stage_index = pd.Index(ids)
    c = stage_index.get_indexer(sc["stage"])[ok].astype("int64")
    never = np.iinfo("int64").max
    first = np.full((n, k), never, dtype="int64")
    cell = r[ok].astype("int64") * k + c
    ts = _naive(sc["timestamp"])[ok].astype("int64")
    if len(cell):  # earliest entry per (deal, stage): sort by cell, then time; keep each cell's first
        order = np.lexsort((ts, cell))
        head = np.r_[True, cell[order][1:] != cell[order][:-1]]
        first.reshape(-1)[cell[order][head]] = ts[order][head]
    seen = first != never
    current = stage_index.get_indexer(deals["stage"])
    has_cur = current >= 0
    seen[np.flatnonzero(has_cur), current[has_cur]] = True
    furthest = np.where(seen.any(axis=1), k - 1 - np.argmax(seen[:, ::-1], axis=1), -1) if k else np.zeros(n)
    won = (deals["outcome"] == "won").to_numpy()
    furthest = np.where(won, k - 1, np.maximum(furthest, 0))  # every deal starts at the first stage
    reached = np.arange(k)[None, :] <= furthest[:, None]
    filled = first.copy()
    for j in range(k - 2, -1, -1):  # a stage reached but not dated: the next dated entry
        filled[:, j] = np.where(filled[:, j] == never, filled[:, j + 1], filled[:, j])
    close = _naive(deals["closed"]).astype("int64")
    close_ok = ~np.isnat(_naive(deals["closed"]))
    fill_close = (filled == never) & (won & close_ok)[:, None]
    filled = np.where(fill_close, close[:, None], filled)
    rr, cc = np.nonzero(reached)
    stamps = filled[rr, cc]
    entered = np.where(stamps == never, np.datetime64("NaT", "us"), stamps.astype("datetime64[us]"))
    out = pd.DataFrame({
        "deal_id": deals["deal_id"].to_numpy()[rr],
        "pos": rr.astype(np.intp),
        "stage": np.array(ids, dtype=object)[cc],
        "position": cc.astype("int64"),
        "entered": pd.DatetimeIndex(entered).tz_localize("UTC"),
        "observed": seen[rr, cc],
        "dated": (first != never)[rr, cc],
    })
    out["stage"] = out["stage"].astype(str)
    return out


def _naive(s: pd.Series) -> np.ndarray:
    """Return a UTC datetime series as naive ``datetime64[us]`` values (NaT kept)."""
    return s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _observed_beyond(entries: pd.DataFrame, stage: str, ids: list[str]) -> bool:
    """Tell whether any deal is *seen* (not only inferred) at ``stage`` or a later playbook stage."""
    later = ids[ids.index(stage):]
    return bool(entries.loc[entries["stage"].isin(later), "observed"].any())
