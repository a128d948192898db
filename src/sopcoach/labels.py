"""The one label table of sopcoach's people-facing tables and downloads (results, certificates, the monthly review).

A column named in code (``learner_id``, ``best_percent``, ``closed_at``) is shown to people, on a page
or in a CSV/XLSX they download, as :data:`COLUMNS` says in their language; a moment is shown in the
company's time zone (the playbook calendar's), named in its column's label; a state, a status or a
yes/no in words (:data:`VALUES`); a number in its unit (:data:`UNITS`: percentages, amounts
with the currency, working or calendar days, hours). Machine exports (``sopcoach results --format json``) keep the
column names and ISO UTC times.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from .i18n import seed_words, t, zone_name

#: Column name -> (zh-CN, en) label.
COLUMNS: dict[str, tuple[str, str]] = {
    "attempt_id": ("考试记录号", "attempt no."), "learner_id": ("员工编号", "employee id"), "name": ("姓名", "name"),
    "team": ("团队", "team"), "cohort": ("批次", "cohort"), "exam_id": ("考试", "exam"),
    "number": ("第几次", "attempt"), "state": ("状态", "state"), "started_at": ("开始时间", "started"),
    "closed_at": ("交卷时间", "finished"), "minutes_taken": ("用时（分钟）", "minutes taken"),
    "score": ("得分（分）", "points"), "percent": ("得分率 %", "score %"), "passed": ("通过", "passed"),
    "playbook_version": ("规程版本", "SOP version"), "attempts": ("考试次数", "attempts"),
    "best_percent": ("最高得分率 %", "best score %"), "last_percent": ("最近得分率 %", "last score %"),
    "first_passed_at": ("首次通过", "first passed"), "last_attempt_at": ("最近考试", "last attempt"),
    "minutes_best": ("最高分用时（分钟）", "minutes (best)"), "minutes_last": ("最近用时（分钟）", "minutes (last)"),
    "certificate": ("证书", "certificate"), "certificate_status": ("证书状态", "certificate status"),
    "valid_until": ("有效期至", "valid until"), "issued_at": ("签发", "issued"), "expires_at": ("有效期至", "valid until"),
    "code": ("验证码", "code"), "version": ("规程版本", "SOP version"), "status": ("状态", "status"),
    "changed": ("已修改的条款", "changed clauses"), "active": ("在职", "active"),
    # the monthly review (sopcoach.analytics: funnel, trend, groups, compliance, data quality, pipeline)
    "stage": ("阶段", "stage"), "month": ("月份", "month"), "reached": ("到达的商机", "deals reached"),
    "open_here": ("仍在此阶段", "still open here"), "lost_here": ("在此阶段丢单", "lost here"),
    "advanced": ("进入下一阶段", "moved on"), "conversion": ("转化率", "conversion"),
    "ci_low": ("95% 区间下限", "lower 95% bound"), "ci_high": ("95% 区间上限", "upper 95% bound"),
    "observed": ("导出有记录", "recorded in the export"), "lost_unknown": ("丢单阶段未知", "lost at an unknown stage"),
    "created": ("新建商机", "deals created"), "won": ("赢单", "won"), "lost": ("丢单", "lost"),
    "open": ("期末未结", "open at the end"), "win_rate": ("赢单率", "win rate"),
    "win_rate_change": ("赢单率较上月", "win rate, change"), "cycle_mean": ("平均周期（自然日）", "mean cycle (calendar days)"),
    "cycle_median": ("周期中位数（自然日）", "median cycle (calendar days)"), "amount_won": ("赢单金额", "amount won"),
    "breaches": ("偏离SOP次数", "SOP deviations"), "owner": ("销售", "rep"), "region": ("区域", "region"),
    "product": ("产品", "product"), "check": ("检查项", "check"), "rule": ("规则", "rule"), "clause": ("条款", "clause"),
    "source": ("出处", "source"), "instances": ("检查次数", "times checked"), "pending": ("未到期", "not yet due"),
    "reason": ("说明", "note"), "inferred": ("推断依据", "inferred from"), "deal_id": ("商机编号", "deal id"),
    "expected": ("应", "expected"), "actual": ("实际", "actual"), "count": ("数量", "count"),
    "message": ("结果", "finding"), "examples": ("示例", "examples"), "deals": ("商机数", "deals"),
    "weak_stage": ("薄弱阶段", "weak stage"), "figure": ("指标", "figure"), "value": ("数值", "value"),
    "change": ("较上月", "change since last month"), "note": ("说明", "how computed / why"),
    "with_amount": ("有金额的商机", "with an amount"), "amount": ("金额", "amount"),
    "weighted": ("加权金额", "weighted amount"), "lost_reason": ("丢单原因", "lost reason"),
    "win_rate_target": ("赢单率目标", "win-rate target"), "cycle_target": ("周期目标（自然日）", "cycle target (calendar days)"),
    "win_rate_vs_target": ("赢单率较目标", "win rate vs target"),
    "cycle_vs_target": ("周期较目标（自然日）", "cycle vs target (calendar days)"),
    "working_days_median": ("中位数（工作日）", "median (working days)"),
    "working_days_mean": ("平均（工作日）", "mean (working days)"),
    "calendar_days_median": ("中位数（自然日）", "median (calendar days)"),
    "calendar_days_mean": ("平均（自然日）", "mean (calendar days)"), "hours_median": ("中位数（小时）", "median (hours)"),
    "working_days_median_change": ("中位数较上月（工作日）", "median, change (working days)"),
    "local_time": ("时间", "time"), "what": ("记录", "what happened"), "deviation": ("偏离SOP", "deviation"),
    # item analysis (sopcoach.certification.itemstats.item_table)
    "question": ("题目编号", "question id"), "text": ("题目", "question"), "section": ("部分", "section"),
    "clauses": ("条款", "clauses"), "n": ("作答数", "answers"), "facility_pct": ("难度指数（得分率 %）", "facility %"),
    "facility_low_pct": ("得分率95%区间下限 %", "facility 95% interval from %"),
    "facility_high_pct": ("得分率95%区间上限 %", "facility 95% interval to %"),
    "discrimination": ("区分度（-1 至 1）", "discrimination (-1 to 1)"),
    "discrimination_word": ("区分度评价", "discrimination reads as"), "efficiency_pct": ("区分效率 %", "efficiency %"),
    "guess_pct": ("随机猜测得分 %", "random-guess score %"), "verdict": ("提示", "flags"),
    "variants": ("模板变体数", "variants pooled"),
}
#: Columns holding a moment (ISO text or datetime, UTC): shown in the company's time zone.
MOMENTS = frozenset({"started_at", "closed_at", "first_passed_at", "last_attempt_at", "valid_until", "issued_at",
                     "expires_at", "entered"})
#: Columns already written in the company's time zone (text): their label names the zone, their values stay.
LOCAL_MOMENTS = frozenset({"local_time"})
#: Column -> stored value -> (zh-CN, en) words.
VALUES: dict[str, dict[Any, tuple[str, str]]] = {
    "kind": {"stage_change": ("阶段变更", "stage change"), "call": ("电话", "call"), "email": ("邮件", "e-mail"),
             "meeting": ("拜访", "meeting"), "task": ("任务", "task")},  # a CRM event
    "state": {"started": ("进行中", "in progress"), "submitted": ("已交卷", "submitted"), "scored": ("已评分", "scored"),
              "expired": ("超时交卷", "time ran out")},
    "certificate_status": {"current": ("有效", "current"), "recertify": ("需复认证", "recertify"),
                           "expired": ("已过期", "expired"), "superseded": ("已更新", "superseded"),
                           "revoked": ("已撤销", "revoked")},
    "passed": {True: ("是", "yes"), False: ("否", "no")},
    "active": {True: ("在职", "active"), False: ("已停用", "deactivated")},
}
VALUES["status"] = {**VALUES["certificate_status"],
                    "checked": ("已检查", "checked"), "not_checkable": ("无法检查", "not checkable"),
                    "found": ("发现问题", "found"), "clean": ("无问题", "clean"), "ok": ("可计算", "computed"),
                    "not_computable": ("无法计算", "not computable")}
VALUES["observed"] = {True: ("是", "yes"), False: ("推断 *", "inferred *")}

#: How a column's numbers read (the review's tables): ``percent`` a fraction 0-1 shown as a percentage,
#: ``points`` a change of a fraction shown in percentage points, ``amount`` money in the export's currency,
#: ``calendar_days``, ``working_days``, ``hours`` durations (their labels name the unit).
UNITS: dict[str, str] = {
    **dict.fromkeys(("conversion", "ci_low", "ci_high", "win_rate", "win_rate_target", "share", "rate"), "percent"),
    **dict.fromkeys(("win_rate_change", "win_rate_vs_target"), "points"),
    **dict.fromkeys(("amount_won", "amount", "weighted", "pipeline", "average_deal"), "amount"),
    **dict.fromkeys(("cycle_mean", "cycle_median", "cycle_target", "cycle_vs_target", "calendar_days_median",
                     "calendar_days_mean"), "calendar_days"),
    **dict.fromkeys(("working_days", "working_days_median", "working_days_mean", "working_days_median_change"),
                    "working_days"),
    "hours_median": "hours",
}


#: CRM field name (``crm_fields``, ``required_fields`` of playbook/process.yaml) -> (zh-CN, en) label.
CRM_FIELDS: dict[str, tuple[str, str]] = {
    "source": ("客户来源", "lead source"), "industry": ("行业", "industry"), "size": ("规模", "company size"),
    "contact_name": ("联系人", "contact name"), "contact_phone": ("联系电话", "contact phone"),
    "lead_assigned_at": ("线索分配时间", "lead assigned at"), "first_contact_at": ("首次接触时间", "first contact at"),
    "current_solution": ("现有方案", "current solution"), "pain_points": ("痛点", "pain points"),
    "budget_range": ("预算范围", "budget range"), "decision_maker": ("决策人", "decision maker"),
    "customer_tier": ("客户等级", "customer class"), "needs_confirmed_at": ("需求确认时间", "needs confirmed at"),
    "recommended_products": ("推荐产品", "recommended products"),
    "proposal_sent_at": ("方案发送时间", "proposal sent at"), "demo_date": ("演示日期", "demo date"),
    "demo_attendees": ("演示参加人", "demo attendees"), "proposal_accepted_at": ("方案接受时间", "proposal accepted at"),
    "quote_amount": ("报价金额", "quote amount"), "discount": ("折扣", "discount"), "approved_by": ("审批人", "approved by"),
    "quote_sent_at": ("报价发送时间", "quote sent at"), "quote_accepted_at": ("报价接受时间", "quote accepted at"),
    "contract_number": ("合同编号", "contract number"), "contract_amount": ("合同金额", "contract amount"),
    "contract_signed_at": ("合同签订时间", "contract signed at"), "delivered_at": ("交付时间", "delivered at"),
    "invoice_number": ("发票号", "invoice number"), "invoice_date": ("开票日期", "invoice date"),
    "amount_received": ("回款金额", "amount received"), "payment_received_at": ("回款时间", "payment received at"),
    "satisfaction_call_at": ("满意度回访时间", "satisfaction call at"),
}


#: SLA event (``start_event``/``end_event`` of playbook/slas.yaml) -> (zh-CN, en) words a sales manager reads.
SLA_EVENTS: dict[str, tuple[str, str]] = {
    "lead_assigned": ("线索分配", "lead assigned"), "first_contact_made": ("首次接触", "first contact made"),
    "needs_confirmed": ("需求确认", "needs confirmed"), "proposal_sent": ("发送方案", "proposal sent"),
    "proposal_accepted": ("客户接受方案", "proposal accepted"), "quote_sent": ("发送报价", "quote sent"),
    "contract_signed": ("合同签订", "contract signed"), "delivered": ("交付", "delivered"),
    "deal_closed": ("成交", "deal closed"), "satisfaction_call_made": ("满意度回访", "satisfaction call made"),
    "customer_email_received": ("收到客户邮件", "customer e-mail received"), "email_replied": ("回复邮件", "e-mail replied"),
    "tech_issue_reported": ("客户报告技术问题", "technical issue reported"),
    "tech_solution_provided": ("提供技术方案", "technical solution provided"),
}


def _named(table: dict[str, tuple[str, str]], name: str, lang: str | None, blanks: bool = True) -> str:
    """``table[name]`` in ``lang``; a name the table lacks as it is (with blanks for ``_`` when ``blanks``)."""
    plain = name.replace("_", " ") if blanks else name
    zh, en = table.get(name, (plain, plain))
    return t(zh, en, lang)


def event_label(event: str, lang: str | None = None) -> str:
    """Return an SLA event in words (an event without words: its name with blanks for ``_``).

    >>> event_label("delivered", "zh-CN"), event_label("quote_sent", "en"), event_label("x_y", "en")
    ('交付', 'quote sent', 'x y')
    """
    return _named(SLA_EVENTS, event, lang)


def crm_field_label(field: str, lang: str | None = None) -> str:
    """Return a CRM field's label in ``lang`` (a field without a label: its name with blanks for ``_``).

    >>> crm_field_label("quote_amount", "zh-CN"), crm_field_label("quote_amount", "en"), crm_field_label("x_y", "en")
    ('报价金额', 'quote amount', 'x y')
    """
    return _named(CRM_FIELDS, field, lang)


#: CRM source (the mapping's id: ``sopcoach analyze --source``) -> (zh-CN, en) display name
SOURCES: dict[str, tuple[str, str]] = {
    "salesforce": ("Salesforce", "Salesforce"), "zoho": ("Zoho CRM", "Zoho CRM"), "maven": ("Maven", "Maven"),
    "simulated": ("模拟数据", "simulated data"),
}


def source_name(source: str, lang: str | None = None) -> str:
    """Return a CRM source's display name (a mapping of one's own: its id as given).

    >>> source_name("zoho", "en"), source_name("simulated", "zh-CN"), source_name("acme-crm", "en")
    ('Zoho CRM', '模拟数据', 'acme-crm')
    """
    return _named(SOURCES, source, lang, blanks=False)


#: strftime directive -> (zh-CN, en) words (:func:`date_format_words`)
_DATE_PARTS = {
    "%Y": ("四位年", "year"), "%y": ("两位年", "two-digit year"), "%m": ("月", "month"), "%d": ("日", "day"),
    "%b": ("英文月份缩写", "month abbreviation"), "%B": ("英文月份", "month name"), "%H": ("时", "hour"),
    "%I": ("时", "hour"), "%M": ("分", "minute"), "%S": ("秒", "second"),
    "%p": ("AM/PM", "AM/PM"), "%f": ("微秒", "microseconds"), "%z": ("时区偏移", "UTC offset"),
    "%j": ("一年中的第几天", "day of the year"), "%a": ("英文星期缩写", "weekday abbreviation"),
}
#: the moment every date-format example shows (:func:`date_format_words`)
_EXAMPLE = datetime(2025, 3, 7, 14, 5, 9)


def date_format_words(fmt: str, lang: str | None = None) -> str:
    """Return a date format of a mapping (a strftime pattern or ``excel_serial``) in words, with an example.

    >>> date_format_words("%m/%d/%y", "zh-CN"), date_format_words("%m/%d/%y", "en")
    ('月/日/两位年，如 03/07/25', 'month/day/two-digit year, e.g. 03/07/25')
    >>> date_format_words("excel_serial", "en")
    'Excel day number, e.g. 45723'
    """
    if fmt == "excel_serial":
        serial = (_EXAMPLE - datetime(1899, 12, 30)).days
        return t(f"Excel 日期序号，如 {serial}", f"Excel day number, e.g. {serial}", lang)
    def part(m: re.Match) -> str:
        zh, en = _DATE_PARTS.get(m.group(0), (m.group(0), m.group(0)))
        return t(zh, en, lang)

    words = re.sub(r"%[a-zA-Z]", part, fmt)
    try:
        example = _EXAMPLE.strftime(fmt)
    except ValueError:  # a pattern strftime rejects: the words alone
        return words
    return t(f"{words}，如 {example}", f"{words}, e.g. {example}", lang)


def source_label(ref: str, lang: str | None = None) -> str:
    """Return a clause source (``seed:1.2.1``, ``company-setting``) as a learner reads it.

    >>> source_label("seed:1.2.1", "zh-CN"), source_label("seed:1.2.1", "en"), source_label("company-setting", "zh-CN")
    ('规程第 1.2.1 节', 'SOP section 1.2.1', '公司设定')
    """
    if ref.startswith("seed:"):
        return seed_words(ref, lang)
    return t("公司设定", "company setting", lang)


def source_words(value: Any, lang: str | None = None) -> str:
    """Return a table cell of a clause's source in words (:func:`source_label`); blank or other text as it is.

    >>> source_words("seed:3.1.2", "en"), source_words("company-setting", "en"), source_words("", "en")
    ('SOP section 3.1.2', 'company setting', '')
    """
    if not isinstance(value, str) or not (value.startswith("seed:") or value == "company-setting"):
        return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
    return source_label(value, lang)


#: What a CRM export table of each kind holds, in words (zh-CN, en): ``SourceFile.describe`` of the reader.
TABLE_KIND_WORDS = {"deals": ("商机", "deals"), "events": ("跟进与阶段记录", "activities and stage changes"),
                    "leads": ("线索", "leads"), "owners": ("销售人员", "sales people"),
                    "accounts": ("客户", "customers"), "products": ("产品", "products")}
#: Currency code -> (zh-CN, en) as written after an amount; other codes stay as they are.
CURRENCY_WORDS = {"CNY": ("元", "CNY"), "RMB": ("元", "CNY")}


def currency_word(code: str | None, lang: str | None = None) -> str:
    """Return a currency code as written after an amount in ``lang``: ``元`` for CNY on a Chinese page.

    >>> currency_word("CNY", "zh-CN"), currency_word("CNY", "en"), currency_word("USD", "zh-CN")
    ('元', 'CNY', 'USD')
    """
    if not code:
        return ""
    zh, en = CURRENCY_WORDS.get(code.upper(), (code, code))
    return t(zh, en, lang)


def _missing(value: Any) -> bool:
    """True for a missing number (None, NA, NaN, NaT), which money and durations show as ""."""
    return value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value))


def money_text(value: Any, currency: str | None, lang: str | None = None, *, signed: bool = False) -> str:
    """Return an amount as the review writes money: thousands separators, whole units, the currency word
    (:func:`currency_word`: ``元`` on a Chinese page); "" for a missing value. ``signed`` shows a + on increases.

    The one money wording of the monthly review (its tables, KPI figures, findings, case study and downloads).

    >>> money_text(251000, "CNY", "zh-CN"), money_text(251000.4, "CNY", "en"), money_text(-1500, "USD", "en", signed=True)
    ('251,000 元', '251,000 CNY', '-1,500 USD')
    """
    if _missing(value):
        return ""
    return f"{float(value):{'+' if signed else ''},.0f} {currency_word(currency, lang)}".rstrip()


#: Decimals a duration is shown with, per unit (:data:`UNITS` and the SLAs' units): hours to a tenth (six
#: minutes), working days to a hundredth (about five working minutes), calendar days to a tenth.
DURATION_DECIMALS = {"hours": 1, "elapsed_hours": 1, "business_hours": 1, "working_days": 2, "calendar_days": 1}
#: Duration unit -> (zh-CN, en) words written after the number.
DURATION_WORDS = {"working_days": ("个工作日", "working days"), "calendar_days": ("个自然日", "calendar days"),
                  "elapsed_hours": ("小时", "elapsed hours"), "business_hours": ("个工作小时", "business hours"),
                  "hours": ("小时", "hours")}


def duration_number(value: Any, unit: str, *, signed: bool = False) -> str:
    """Return a duration's number at its unit's precision (:data:`DURATION_DECIMALS`; "" for a missing value),
    for a cell whose label names the unit. ``signed`` shows a + on increases.

    >>> duration_number(26.3712, "elapsed_hours"), duration_number(3.456, "working_days"), duration_number(2, "hours", signed=True)
    ('26.4', '3.46', '+2.0')
    """
    if _missing(value):
        return ""
    return f"{float(value):{'+' if signed else ''},.{DURATION_DECIMALS.get(unit, 1)}f}"


def duration_text(value: Any, unit: str, lang: str | None = None, *, signed: bool = False) -> str:
    """Return a duration with its unit in words (:data:`DURATION_WORDS`), at its unit's precision.

    >>> duration_text(26.3712, "elapsed_hours", "zh-CN"), duration_text(5.1649, "working_days", "en")
    ('26.4小时', '5.16 working days')
    """
    number = duration_number(value, unit, signed=signed)
    zh, en = DURATION_WORDS.get(unit, (unit, unit.replace("_", " ")))
    return number and t(f"{number}{zh}", f"{number} {en}", lang)


def column_label(column: str, lang: str | None = None, timezone: str | None = None) -> str:
    """Return the label of ``column`` in ``lang``; a moment column names the time zone it is shown in.

    >>> column_label("closed_at", "en", "Asia/Shanghai"), column_label("learner_id", "zh-CN")
    ('finished (Beijing time)', '员工编号')
    >>> column_label("local_time", "zh-CN", "Asia/Shanghai")
    '时间（北京时间）'
    """
    zh, en = COLUMNS.get(column, (column, column))
    text = t(zh, en, lang)
    if timezone and (column in MOMENTS or column in LOCAL_MOMENTS):
        text += t(f"（{zone_name(timezone, 'zh-CN')}）", f" ({zone_name(timezone, 'en')})", lang)
    return text


def local_time(value: Any, timezone: str) -> str:
    """Return a UTC moment (ISO text or aware datetime) as ``YYYY-MM-DD HH:MM`` in ``timezone``; blank stays blank.

    >>> local_time("2026-03-02T17:30:00+00:00", "Asia/Shanghai")
    '2026-03-03 01:30'
    """
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return f"{moment.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"


def _word(words: dict[Any, tuple[str, str]], value: Any, lang: str | None) -> Any:
    pair = words.get(value) if isinstance(value, (str, bool)) else None
    return value if pair is None else t(pair[0], pair[1], lang)


def readable(df: pd.DataFrame, lang: str | None, timezone: str) -> pd.DataFrame:
    """Return ``df`` as people read it: labels for column names, moments in ``timezone``, values in words.

    Numbers stay numbers (a percent column is a number of percent, its label says %), so a
    spreadsheet can still sum and sort them.
    """
    out = df.copy()
    for column in out.columns:
        if column in MOMENTS:
            out[column] = out[column].map(lambda v: local_time(v, timezone))
        elif column in VALUES:
            words = VALUES[column]
            out[column] = out[column].map(lambda v, words=words: _word(words, v, lang))
    return out.rename(columns={c: column_label(c, lang, timezone) for c in out.columns})


#: The monthly review's case study and its downloads (seed:3.3.2): the columns only they show.
_REVIEW_COLUMNS: dict[str, tuple[str, str]] = {
    "stage_name": ("阶段", "stage"), "entered": ("进入时间", "entered"), "left": ("离开时间", "left"),
    "working_days": ("用时（工作日）", "time (working days)"), "stage_note": ("用时说明", "how the time was measured"),
    "limit": ("时限", "limit"), "verdict_text": ("结论", "verdict"), "kind": ("类型", "kind"), "sla": ("时限编号", "limit id"),
    "start": ("计时开始", "clock started"), "due": ("截止时间", "due"), "end": ("完成时间", "done"), "unit": ("单位", "unit"),
    "clause_title": ("SOP 条款", "SOP clause"), "week": ("周", "week"), "event_id": ("事件编号", "event id"),
    "kpi": ("KPI", "KPI"), "numerator": ("分子", "numerator"), "denominator": ("分母", "denominator"),
    "target": ("目标", "target"), "formula": ("计算方法", "formula"), "kpi_verdict": ("对照目标", "against the target"),
}
COLUMNS.update(_REVIEW_COLUMNS)
