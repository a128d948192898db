"""Analyse a CRM export against the playbook: KPIs, funnel, bottleneck, SOP compliance, case studies.

What the SOP asks for:

* KPIs set and tracked (lead conversion, quote acceptance, contract signing, average sales cycle),
  analysed regularly to find the weak stage, "a stage whose conversion is markedly lower than the
  others" (seed:1.3.2, seed:4.2.2). The formulas are the playbook's (``kpis.yaml``, clause
  ``kpi-formulas``); each is computed per period (a calendar month in the playbook's time zone).
* Follow-up data tracked in the CRM (seed:2.3.2): the follow-up cadence per customer tier
  (seed:3.1.2) and the time limits of ``slas.yaml`` (seed:1.2.1, seed:1.2.2, seed:2.2.2).
* Quotes above a role's authority only with approval (seed:2.3.1).
* A monthly meeting that studies won and lost deals and updates the SOP (seed:3.3.2):
  :func:`case_study` gives one deal's timeline against the SOP stages with each deviation and the
  clause it breaks.

Working time (working days, business hours, holidays, make-up working days, DST) is always the
playbook's :class:`~sopcoach.content.businesstime.BusinessCalendar` (``add`` for due times, ``elapsed`` for
the actual value). A check the export cannot support is reported as ``not_checkable`` with the
reason, never as zero breaches.

Units: rates are fractions 0-1 (0.632, not 63.2); sales cycles are calendar days (wall-clock days
in the playbook's time zone, fractional); SLA values are in each SLA's own unit.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..crm.problems import summarise
from ..crm.quality import QualityReport, quality_report
from ..crm.reading import CrmData
from ..i18n import current_lang
from .compliance import Compliance, check_compliance
from .funnel import Bottleneck, find_bottleneck, funnel
from .inputs import gap_of, outcome_gap
from .kpis import GROUPS, breakdown, cycle_times, kpis, monthly_trend, stage_counts
from .period import Period
from .stages import stage_entries

__all__ = ["Review", "review", "review_json"]


# ----------------------------------------------------------------------------------- review


@dataclass(frozen=True)
class Review:
    """Everything the monthly review shows, computed once (see :func:`review`)."""

    month: str | None
    source: str
    kpis: pd.DataFrame
    stage_counts: dict[str, int]
    funnel: pd.DataFrame
    bottleneck: Bottleneck
    cycle_days: pd.Series
    by: dict[str, pd.DataFrame]
    trend: pd.DataFrame
    compliance: Compliance
    quality: QualityReport
    problems: tuple
    lang: str
    #: why ``stage_counts`` is empty (unmapped or blank stages, blank or conflicting deal ids, or the
    #: month's cohort not computable); "" when it is not
    stage_counts_gap: str = ""
    #: the currency of the export's amounts (the mapping's ``source.currency``), None when it does not say
    currency: str | None = None
    #: the playbook's time zone (``calendar.timezone``): the report shows its moments in it
    timezone: str = "UTC"


def review(data: CrmData, playbook: Any, month: str | None = None, as_of: Any = None, *,
           lang: str | None = None) -> Review:
    """Compute the whole monthly review of an export (KPIs, funnel, bottleneck, compliance, quality).

    Parameters
    ----------
    data : CrmData
    playbook : Playbook
    month : str, optional
        ``YYYY-MM`` in the playbook's time zone; None for the whole export.
    as_of : datetime-like, optional
        See :func:`check_compliance`.

    Returns
    -------
    Review

    Raises
    ------
    AnalysisError
        When ``month`` is malformed.
    """
    lang = lang or current_lang()
    Period.of(month, playbook.calendar.timezone)  # validate early
    entries = stage_entries(data, playbook)
    comp = check_compliance(data, playbook, month, as_of, lang=lang, entries=entries)
    fun = funnel(data, playbook, month, lang=lang, entries=entries)
    by = {g: breakdown(data, playbook, g, month, comp if g == "owner" else None, lang=lang)
          for g in GROUPS if data.deals[g].notna().any()}
    k = kpis(data, playbook, month, lang=lang, entries=entries)
    cycles = cycle_times(data, playbook, month)
    if k.at["median_sales_cycle", "status"] != "ok":  # never a distribution that omits unreadable deals
        cycles = cycles.iloc[:0]
    return Review(month, data.mapping.id, k,
                  stage_counts(data, playbook, month), fun, find_bottleneck(fun, lang=lang),
                  cycles, by,
                  monthly_trend(data, playbook, comp if month is None else None, lang=lang), comp,
                  quality_report(data, playbook, lang), data.problems, lang,
                  outcome_gap(data, lang) or (gap_of(fun) if month else ""), data.mapping.spec.source.currency,
                  playbook.calendar.timezone)


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp,)):
        return None if pd.isna(v) else v.isoformat()
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if v is pd.NaT or v is pd.NA:
        return None
    return v


def _records(df: pd.DataFrame, index: str | None = None) -> list[dict[str, Any]]:
    frame = df.reset_index() if index else df
    return [{k: _jsonable(v) for k, v in row.items()} for row in frame.to_dict("records")]


def review_json(rv: Review) -> dict[str, Any]:
    """Return the review as JSON-ready data: KPIs (fractions 0-1), cycle days, stage counts, findings.

    Keys: ``source``, ``month``, ``kpis`` (``win_rate`` etc. as fractions, ``sales_cycle_days``
    with ``mean``, ``median`` and ``count``, ``stage_counts``), ``kpi_details``, ``funnel``,
    ``bottleneck``, ``compliance`` (``checks``, ``findings`` and ``missing_fields``: each missing CRM field once,
    with how to supply it and the checks waiting for it), ``data_quality``,
    ``not_computable`` (why the ``funnel``, the ``trend``, the ``stage_counts`` and each group table ``by`` are blank,
    null when they are not), ``problem_summary`` (per file and column: ``path``, ``column``, ``count``, ``line``,
    ``example``, ``fix``, most frequent first), ``problems`` (every row problem). A KPI that is
    not computable is null, its reason in ``kpi_details``.
    """
    k = rv.kpis
    val = lambda kid: _jsonable(k.at[kid, "value"]) if kid in k.index else None  # noqa: E731
    b = rv.bottleneck
    return {
        "source": rv.source,
        "month": rv.month,
        "kpis": {
            "lead_conversion_rate": val("lead_conversion_rate"),
            "quote_acceptance_rate": val("quote_acceptance_rate"),
            "contract_signing_rate": val("contract_signing_rate"),
            "win_rate": val("win_rate"),
            "sales_cycle_days": {"mean": val("average_sales_cycle"), "median": val("median_sales_cycle"),
                                 "count": len(rv.cycle_days)},
            "stage_counts": rv.stage_counts,
        },
        "kpi_details": _records(k, "kpi"),
        "funnel": _records(rv.funnel, "stage"),
        "bottleneck": {"stage": b.stage, "conversion": _jsonable(b.conversion),
                       "ci": [_jsonable(x) for x in b.ci], "rest_conversion": _jsonable(b.rest_conversion),
                       "rest_ci": [_jsonable(x) for x in b.rest_ci], "confidence": b.confidence,
                       "reason": b.reason},
        "compliance": {"as_of": _jsonable(rv.compliance.as_of),
                       "checks": _records(rv.compliance.checks, "check"),
                       "findings": _records(rv.compliance.findings),
                       "missing_fields": _records(rv.compliance.missing, "need")},
        "data_quality": _records(rv.quality.summary, "check"),
        "not_computable": {"funnel": gap_of(rv.funnel) or None, "trend": gap_of(rv.trend) or None,
                           "stage_counts": rv.stage_counts_gap or None,
                           "by": {g: gap_of(df) or None for g, df in rv.by.items()}},
        "problem_summary": [asdict(g) for g in summarise(rv.problems)],
        "problems": [str(p) for p in rv.problems],
    }
