"""Files a sales manager takes to the monthly meeting (seed:3.3.2): the HTML report, each table as XLSX, the case study.

Every file stands on its own: the HTML pages carry their CSS inline and their charts as PNG data
URIs (no request leaves the file, so a browser prints it to PDF with the charts); an XLSX sheet has
people's labels (:mod:`sopcoach.labels`) for its columns, rates as percentages (a ``0.0%`` number
format on the fraction, so the cell still computes), amounts with the export's currency and times
in the company's time zone. Nothing here draws a widget: the review app offers these bytes with
:func:`sopcoach.ui._common.download_link`.
"""
from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from markupsafe import Markup

from ..i18n import t, zh_html, zone_name
from ..labels import DURATION_DECIMALS, UNITS, VALUES, column_label, currency_word, money_text, source_words
from . import report

if TYPE_CHECKING:
    from .case_study import CaseStudy
    from .review import Review

__all__ = ["XLSX_FORMATS", "DownloadTable", "case_study_html", "report_html", "review_tables", "table_xlsx"]

#: XLSX number format of each unit of :data:`sopcoach.labels.UNITS` (amounts: :func:`_money_format`); durations
#: with the decimals the page shows (:data:`sopcoach.labels.DURATION_DECIMALS`).
XLSX_FORMATS = {"percent": "0.0%", "points": "+0.0%;-0.0%;0.0%",
                **{u: "0." + "0" * DURATION_DECIMALS[u] for u in ("calendar_days", "working_days", "hours")}}

#: Print rules added to the HTML pages: A4, charts within the page, no row split across pages.
PRINT_CSS = ("@page{size:A4;margin:14mm}"
             "@media print{body{margin:0}img{max-width:100%;page-break-inside:avoid}"
             "tr,.card,.callout,.clause{page-break-inside:avoid}h2,h3{page-break-after:avoid}}")


def report_html(rv: Review, *, playbook: Any = None, case: CaseStudy | None = None, pipeline: Any = None) -> str:
    """Return the monthly report as one self-contained HTML page (:func:`sopcoach.analytics.report.render_html`)
    with print rules (A4, charts kept whole), so a browser's "Print > Save as PDF" keeps every chart."""
    page = report.render_html(rv, case=case, playbook=playbook, pipeline=pipeline)
    return page.replace("</style>", PRINT_CSS + "</style>", 1)


def case_study_html(cs: CaseStudy, playbook: Any) -> str:
    """Return one deal's case study as a self-contained HTML page (seed:3.3.2).

    The deal by its name and customer (ids as a small note), its stage as the SOP names it (the
    CRM's own value noted where it differs), the timeline chart (PNG data URI), each stage with its
    time limits, working-day duration and verdict, one note on the limits the export cannot check
    (:func:`~sopcoach.analytics.case_study.missing_data_note`), the deviations with the clause they break (title and text; the ``seed:``
    reference stays in the data, not on the page), the discussion prompts and the events. Every
    value is escaped (Jinja2 autoescape).
    """
    from .case_study import crm_note, deal_words, missing_data_note, stage_words  # noqa: PLC0415 - needs the CRM reader

    lang = cs.lang
    tr = functools.partial(t, lang=lang)
    sop = cs.sop
    shown = sop[["stage", "entered", "left", "working_days", "stage_note", "rule", "limit", "actual", "verdict",
                 "reason"]].copy()
    shown["entered"] = shown["entered"].map(lambda x: _local(x, cs.timezone))
    shown["left"] = shown["left"].map(lambda x: _local(x, cs.timezone))
    heads = {c: column_label(c, lang) for c in shown.columns}
    words = dict(zip(sop["verdict"], sop["verdict_text"]))

    def verdict(key: Any) -> Markup:  # coloured by the template's CSS: met green, breached red
        return Markup("<span class='v-{}'>{}</span>").format(str(key), words.get(key, ""))

    rows = report.Table.of(shown, index=False, headers=heads,
                           formats={"working_days": report.unit_format("working_days", lang), "verdict": verdict})
    chart = report._png(report.chart_timeline(cs, playbook, lang))
    events = report.Table.of(cs.timeline.set_index("local_time")[report.TIMELINE_SHOWN],
                             headers={"local_time": column_label("local_time", lang, cs.timezone),
                                      **{c: column_label(c, lang) for c in report.TIMELINE_SHOWN}})
    d = cs.deal
    words = deal_words(d, cs.deal_id, lang)
    stage, raw = stage_words(playbook, d.get("stage"), d.get("stage_raw"), lang)
    tier = d.get("tier")
    info = {"title": words["title"], "ids": words["ids"], "owner": words["owner"] or "—",
            "customer": words["customer"] or "—", "tier": "—" if tier is None or pd.isna(tier) else str(tier),
            "stage": stage, "crm_stage": crm_note(raw, lang)}
    info["outcome"] = {"won": tr("赢单", "won"), "lost": tr("丢单", "lost")}.get(str(d.get("outcome")), tr("进行中", "open"))
    amount = d.get("amount")
    info["amount"] = money_text(amount, cs.currency, lang) or "—"
    page = report.TEMPLATES.get_template("case_study.html").render(
        t=tr, lang=lang, cs=cs, chart=chart, sop=rows, events=events,
        deal=info, sep=tr("：", ": "), missing=missing_data_note(sop, lang),
        deviations=list(cs.deviations.itertuples()), prompts=cs.prompts, print_css=Markup(PRINT_CSS),
        not_checked=not cs.checked)
    return page if lang == "en" else zh_html(page)  # full-width punctuation next to Chinese, as on the page


def _local(value: Any, timezone: str) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).tz_convert(timezone).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class DownloadTable:
    """One table the review page offers as XLSX: a title, the frame and the file name's stem."""

    key: str
    title: str
    frame: pd.DataFrame


def review_tables(rv: Review, cs: CaseStudy | None = None) -> list[DownloadTable]:
    """Return the tables of a monthly review (and of a case study) as the review page shows them.

    Funnel, monthly trend, KPIs, SOP checks, findings, one table per group (rep, team, region,
    product), data quality; with ``cs`` the case study's stages against the SOP and its events.
    """
    lang = rv.lang
    tr = functools.partial(t, lang=lang)
    funnel = rv.funnel[report.FUNNEL_SHOWN]
    funnel = funnel.drop(columns="name").set_axis(pd.Index(funnel["name"].astype(str), name="stage"))  # stages by name
    out = [DownloadTable("funnel", tr("漏斗", "Funnel"), funnel),
           DownloadTable("trend", tr("月度趋势", "Monthly trend"), rv.trend),
           DownloadTable("kpis", tr("KPI", "KPIs"), kpi_table(rv)),
           DownloadTable("checks", tr("SOP 检查项", "SOP checks"), _sources(rv.compliance.checks[report.CHECKS_SHOWN], lang)),
           DownloadTable("findings", tr("偏离记录", "Findings"),
                         _sources(rv.compliance.findings.set_index("deal_id")[report.FINDINGS_SHOWN], lang))]
    names = {"owner": tr("按销售", "Per rep"), "team": tr("按团队", "Per team"), "region": tr("按区域", "Per region"),
             "product": tr("按产品", "Per product")}
    out += [DownloadTable(f"by-{g}", names.get(g, g), df) for g, df in rv.by.items()]
    out.append(DownloadTable("quality", tr("数据质量", "Data quality"), rv.quality.summary))
    if cs is not None:
        from .case_study import deal_words  # noqa: PLC0415 - needs the CRM reader

        name = deal_words(cs.deal, cs.deal_id, lang)["title"]
        out.append(DownloadTable("case-sop", tr(f"案例 {name}：对照SOP", f"Case {name}: against the SOP"),
                                 cs.sop.drop(columns=["phase", "verdict", "help"], errors="ignore")))
        out.append(DownloadTable("case-events", tr(f"案例 {name}：事件", f"Case {name}: events"),
                                 cs.timeline.drop(columns=["timestamp"])))
    return out


#: a KPI's unit (``kpis.yaml``) -> the unit of its value and target in :data:`sopcoach.labels.UNITS` terms, and in words
KPI_UNITS = {"fraction": ("percent", ("比率", "rate")), "calendar_days": ("calendar_days", ("自然日", "calendar days")),
             "working_days": ("working_days", ("工作日", "working days"))}


def kpi_table(rv: Review) -> pd.DataFrame:
    """Return the review's KPIs as a manager reads them in a spreadsheet.

    One row per KPI: ``figure`` (its name in the review's language), ``value`` and ``target``
    (numbers in the KPI's unit: a rate as a fraction shown ``0.0%``, a cycle in days; their unit per
    row in ``attrs["units"]`` for :func:`table_xlsx`), ``unit`` and ``kpi_verdict`` (target met,
    near, missed) and ``status`` (computed or not) in words, ``numerator``, ``denominator``,
    ``ci_low``, ``ci_high``, ``reason`` and ``formula``. No KPI id, no code.
    """
    lang = rv.lang
    k = rv.kpis
    verdicts = [report.kpi_verdict(v, tg, u) if st == "ok" else ""
                for v, tg, u, st in zip(k["value"], k["target"], k["unit"], k["status"])]
    out = pd.DataFrame({
        "figure": k["name"].to_numpy(), "value": k["value"].to_numpy(), "target": k["target"].to_numpy(),
        "unit": [t(*KPI_UNITS[u][1], lang) if u in KPI_UNITS else u for u in k["unit"]],
        "kpi_verdict": [t(*report.VERDICTS[v], lang) if v else "" for v in verdicts],
        "status": [t(*VALUES["status"][s], lang) if s in VALUES["status"] else s for s in k["status"]],
        "numerator": k["numerator"].to_numpy(), "denominator": k["denominator"].to_numpy(),
        "ci_low": k["ci_low"].to_numpy(), "ci_high": k["ci_high"].to_numpy(),
        "reason": k["reason"].to_numpy(), "formula": k["formula"].to_numpy()})
    units = [KPI_UNITS.get(u, ("", ""))[0] for u in k["unit"]]
    out.attrs["units"] = {"value": units, "target": units}
    return out


def _sources(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """``df`` with its clause sources in words (``seed:1.2.1`` -> SOP section 1.2.1)."""
    return df.assign(source=df["source"].map(functools.partial(source_words, lang=lang)))


def _money_format(currency: str | None, lang: str) -> str:
    """The XLSX number format of an amount: whole units and the currency word, as the page writes money
    (:func:`sopcoach.labels.money_text`); the cell keeps the exact amount."""
    word = currency_word(currency, lang)
    return f'#,##0 "{word}"' if word else "#,##0"


def table_xlsx(df: pd.DataFrame, sheet: str, lang: str, *, timezone: str = "UTC", currency: str | None = None,
               index: bool = True, title: str | None = None) -> bytes:
    """Return ``df`` as an XLSX file (bytes) that people read and a spreadsheet still computes.

    Parameters
    ----------
    df : DataFrame
        With ``index`` the index is the first column (when named or not a RangeIndex).
    sheet : str
        The sheet's name (cut to Excel's 31 characters; ``[]:*?/\\`` replaced).
    lang : {"zh-CN", "en"}
        The language of the header (:func:`sopcoach.labels.column_label`).
    timezone : str
        Times (tz-aware) are written as local times of this zone, named in the header.
    currency : str, optional
        The export's currency (``CNY``): amount columns (unit ``amount`` in :data:`sopcoach.labels.UNITS`) get the number format
        ``#,##0 "元"`` (``#,##0 "CNY"`` in English: the page's money wording, :func:`sopcoach.labels.money_text`).
    title : str, optional
        A first row above the header (the table's title).

    A column whose unit differs per row (the KPIs: a rate, then a cycle in days) names its units in
    ``df.attrs["units"][column]`` (a list, one :data:`sopcoach.labels.UNITS` unit per row).

    Returns
    -------
    bytes
        An ``.xlsx`` workbook with one sheet: the header bold and frozen, each column's number format
        from its unit (:data:`XLSX_FORMATS`: rates ``0.0%``, amounts with the currency, working days
        with two decimals),
        text cells stored as text (never run as formulas, see :mod:`sopcoach.spreadsheet`).
    """
    from openpyxl import Workbook  # noqa: PLC0415 - heavy: only when a table is downloaded
    from openpyxl.styles import Font  # noqa: PLC0415

    frame = df.reset_index() if index and (df.index.name is not None or not isinstance(df.index, pd.RangeIndex)) else df
    wb = Workbook()
    ws = wb.active
    ws.title = re.sub(r"[\[\]:*?/\\]", "-", sheet)[:31] or "sheet"
    first = 1
    if title:
        ws.cell(row=1, column=1, value=title).font = Font(bold=True, size=13)
        first = 3
    columns = [str(c) for c in frame.columns]
    tz_named = {c for c in columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)}
    for j, c in enumerate(columns, start=1):
        label = column_label(c, lang, timezone if c in tz_named else None)
        if c in tz_named and label == column_label(c, lang):
            label += t(f"（{zone_name(timezone, lang)}）", f" ({zone_name(timezone, lang)})", lang)
        cell = ws.cell(row=first, column=j, value=label)
        cell.font = Font(bold=True)
    row_units = df.attrs.get("units", {})
    for j, c in enumerate(columns, start=1):
        values = _cells(frame[c], timezone)
        if c in VALUES:  # stored states and flags in words, as on the page
            values = [t(*VALUES[c][v], lang) if v in VALUES[c] else v for v in values]
        date = "yyyy-mm-dd hh:mm" if c in tz_named or frame[c].dtype.kind == "M" else None
        units = row_units.get(c) or [UNITS.get(c)] * len(values)
        for i, (v, unit) in enumerate(zip(values, units), start=first + 1):
            cell = ws.cell(row=i, column=j, value=v)
            fmt = (_money_format(currency, lang) if unit == "amount" else XLSX_FORMATS.get(unit or "")) or date
            if isinstance(v, str):
                cell.data_type = "s"  # a text starting with "=" stays text
            elif fmt and v is not None:
                cell.number_format = fmt
        width = max([len(str(ws.cell(row=first, column=j).value))] + [len(str(v)) for v in values[:200] if v is not None])
        ws.column_dimensions[ws.cell(row=first, column=j).column_letter].width = min(60, max(8, width + 2))
    ws.freeze_panes = ws.cell(row=first + 1, column=1)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cells(s: pd.Series, timezone: str) -> list[Any]:
    """The values of a column as openpyxl takes them: None for missing, naive local times, plain numbers."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        local = s.dt.tz_convert(timezone).dt.tz_localize(None)
        return [None if pd.isna(v) else v.to_pydatetime() for v in local]
    out: list[Any] = []
    for v in s.tolist():
        if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v):
            out.append(None)
        elif isinstance(v, (list, tuple)):
            out.append(", ".join(str(x) for x in v))
        elif isinstance(v, (bool, int, float, str)):
            out.append(v)
        elif hasattr(v, "item"):  # numpy scalars
            out.append(v.item())
        else:
            out.append(str(v))
    return out


def file_stem(*parts: Iterable[str] | str) -> str:
    """Return a file name stem from ``parts`` (``sopcoach-review-2025-03``): letters, digits, ``-`` and ``_``."""
    text = "-".join(str(p) for p in parts if p)
    return re.sub(r"[^\w.-]+", "-", text, flags=re.ASCII).strip("-") or "sopcoach"
