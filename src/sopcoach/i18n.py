"""Bilingual text (Simplified Chinese by default, English) and the learner-facing UI strings."""
from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"


def current_lang() -> str:
    """Return the content language from ``SOPCOACH_LANG`` (``zh-CN`` default, ``en``)."""
    lang = os.environ.get("SOPCOACH_LANG", DEFAULT_LANG)
    return lang if lang in LANGS else DEFAULT_LANG


class Text(BaseModel):
    """A text in both content languages; both are required and non-blank.

    Examples
    --------
    >>> Text.model_validate({"zh-CN": "阶段", "en": "Stage"}).get("en")
    'Stage'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    zh_CN: str = Field(alias="zh-CN")
    en: str

    @field_validator("zh_CN", "en")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text must not be blank; write the text in both zh-CN and en")
        return v.strip()

    def get(self, lang: str | None = None) -> str:
        """Return the text in ``lang`` (default: :func:`current_lang`)."""
        return self.en if (lang or current_lang()) == "en" else self.zh_CN

    def format(self, **values: object) -> Text:
        """Return a copy with ``{name}`` placeholders filled in both languages."""
        return Text.model_validate({"zh-CN": self.zh_CN.format(**values), "en": self.en.format(**values)})


def page_lang() -> str:
    """Return the language a trainer page was opened in: ``?lang=`` of its address, else :func:`current_lang`.

    Voila gives a page's kernel the request's query string in ``QUERY_STRING`` when it starts the
    kernel (the trainer server starts one per page view), so ``/voila/render/trainer/results.ipynb?lang=en``
    shows the page in English. The learner server does not use this (its router decides the language).

    >>> os.environ["QUERY_STRING"] = "lang=en&x=1"; page_lang()
    'en'
    >>> os.environ["QUERY_STRING"] = "lang=fr"; page_lang() == current_lang()
    True
    >>> del os.environ["QUERY_STRING"]
    """
    asked = parse_qs(os.environ.get("QUERY_STRING", "")).get("lang", [""])[-1]
    return asked if asked in LANGS else current_lang()


def t(zh: str, en: str, lang: str | None = None) -> str:
    """Pick the UI string for ``lang`` (default: :func:`current_lang`)."""
    return en if (lang or current_lang()) == "en" else zh


#: Characters of Chinese text: CJK ideographs, CJK punctuation and the full-width forms.
CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_FULL = {",": "\uff0c", ":": "\uff1a", ";": "\uff1b", "?": "\uff1f", "!": "\uff01"}
_MARK = re.compile(rf"(?<=[{CJK}])[ \t]*([,:;?!])[ \t]*|[ \t]*([,:;?!])[ \t]*(?=[{CJK}])")
_PAREN = re.compile(r"[ \t]*\((?P<inner>[^()\n]*)\)[ \t]*")
_AMOUNT = re.compile(r"(?<![\d.,])\d{5,}(?=\s*元)|(?<=CNY )\d{5,}(?!\d|[.,]\d)")
_SEED = re.compile(r"(?<![A-Za-z0-9_])seed:(\d+(?:\.\d+)*)")
_HAS_CJK = re.compile(rf"[{CJK}]")


def zh_punct(text: str) -> str:
    """Return Chinese ``text`` with the half-width ``, : ; ? !`` and ``( )`` next to Chinese made full-width.

    A mark counts as next to Chinese when the character before or after it (blanks and tabs
    aside) is Chinese; a pair of brackets when it holds Chinese or stands next to it. The blanks
    around a mark made full-width go (full-width marks carry their own space). Marks between
    Latin letters or digits stay (``10:00``, ``1,000``, ``seed:1.2.1``).

    >>> zh_punct("得分: 95% (通过分数 90%)")
    '得分：95%（通过分数 90%）'
    >>> zh_punct("10:00, 1,000 and (a, b)")
    '10:00, 1,000 and (a, b)'
    >>> zh_punct("金额(16,000元)不超过上限,无需审批")
    '金额（16,000元）不超过上限，无需审批'
    >>> zh_punct("数量24(计价单位:每期(1天))")
    '数量24（计价单位：每期（1天））'
    """
    def paren(m: re.Match) -> str:
        around = m.string[max(0, m.start() - 1):m.start()] + m.string[m.end():m.end() + 1]
        if _HAS_CJK.search(around) or _HAS_CJK.search(m.group("inner")):
            return f"\uff08{m.group('inner')}\uff09"
        return m.group(0)
    while True:  # inner brackets first: 每期(1天) inside (计价单位:每期(1天))
        done = _PAREN.sub(paren, text)
        if done == text:
            break
        text = done
    return _MARK.sub(lambda m: _FULL[m.group(1) or m.group(2)], text)


def lt(zh: str, en: str, lang: str | None = None) -> str:
    """Pick a learner page's string for ``lang`` as :func:`t` does, Chinese with full-width punctuation."""
    return shown(t(zh, en, lang), lang)


_TAG = re.compile(r"(<[^>]*>|&#?\w+;)")  # a tag, or a character reference (its ; is no punctuation)


def zh_html(html: str) -> str:
    """Return Chinese HTML with :func:`zh_punct` applied to its text, never to its tags or character references.

    >>> zh_html("<p class='a:b'>依据: <a href='x?y=1'>条款</a> (规程)</p>")
    "<p class='a:b'>依据：<a href='x?y=1'>条款</a>（规程）</p>"
    >>> zh_html("用 &lt;列名&gt;, 或 &#x27;日期&#x27;")
    '用 &lt;列名&gt;，或 &#x27;日期&#x27;'
    """
    parts = _TAG.split(html)
    return "".join(p if i % 2 else zh_punct(p) for i, p in enumerate(parts))


def shown(text: Text | str, lang: str | None = None) -> str:
    """Return ``text`` (a :class:`Text` or a string already in ``lang``) as a learner page shows it:
    a reference to the SOP source (``seed:1.2.1``) in words, an amount of money with thousands
    separators (``300000元`` as ``300,000元``), Chinese with full-width punctuation (:func:`zh_punct`).

    >>> shown("通过线是90%(seed:3.3.1),恰好达到即通过", "zh-CN"), shown("the pass mark (seed:3.3.1)", "en")
    ('通过线是90%（规程第 3.3.1 节），恰好达到即通过', 'the pass mark (SOP section 3.3.1)')
    >>> shown("权限为300000元", "zh-CN"), shown("up to CNY 300000, 2025", "en")
    ('权限为300,000元', 'up to CNY 300,000, 2025')
    """
    s = seed_words(text.get(lang) if isinstance(text, Text) else text, lang)
    s = _AMOUNT.sub(lambda m: f"{int(m.group(0)):,}", s)
    return s if (lang or current_lang()) == "en" else zh_punct(s)


def seed_words(text: str, lang: str | None = None) -> str:
    """Return ``text`` with each ``seed:N`` (a section of the SOP source) written out in ``lang``.

    >>> seed_words("see seed:1.2.1", "en"), seed_words("见seed:4", "zh-CN")
    ('see SOP section 1.2.1', '见规程第 4 节')
    """
    return _SEED.sub(lambda m: t(f"规程第 {m.group(1)} 节", f"SOP section {m.group(1)}", lang), text)


def local_day(moment: datetime | None, timezone: str) -> str:
    """Return the calendar day of an aware moment in the company's time zone, ``YYYY-MM-DD``.

    Every page, command and PDF shows certificate and attempt days through this one function, so
    the same certificate never reads 2026-12-06 on one page (UTC) and 2026-12-07 on its PDF
    (Asia/Shanghai). ``None`` gives ``?``.

    Raises
    ------
    ValueError
        When ``moment`` is naive (its zone would be a guess).

    >>> from datetime import timezone as tz
    >>> local_day(datetime(2026, 12, 6, 17, 30, tzinfo=tz.utc), "Asia/Shanghai")
    '2026-12-07'
    """
    return "?" if moment is None else f"{_in_zone(moment, timezone):%Y-%m-%d}"


def _in_zone(moment: datetime, timezone: str) -> datetime:
    """Return ``moment`` in ``timezone``; ``ValueError`` when it is naive (its zone would be a guess)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; give an aware datetime")
    return moment.astimezone(ZoneInfo(timezone))


def local_time(moment: datetime, timezone: str) -> str:
    """Return an aware moment as day and time in the company's time zone, ``YYYY-MM-DD HH:MM``.

    Used for "the next attempt opens at": the minute is rounded up, so the time shown is never
    before the moment itself (the day is the one :func:`local_day` gives for the rounded moment).
    A naive ``moment`` raises ``ValueError``, as in :func:`local_day`.

    >>> from datetime import timezone as tz
    >>> local_time(datetime(2026, 3, 3, 1, 0, tzinfo=tz.utc), "Asia/Shanghai")
    '2026-03-03 09:00'
    >>> local_time(datetime(2026, 3, 3, 15, 59, 1, tzinfo=tz.utc), "Asia/Shanghai")
    '2026-03-04 00:00'
    """
    local = _in_zone(moment, timezone)
    floor = local.replace(second=0, microsecond=0)
    return f"{floor if floor == local else floor + timedelta(minutes=1):%Y-%m-%d %H:%M}"


#: What people in the zone call its time, where CLDR's generic name is not it ("中国时间").
_ZONE_NAMES = {"Asia/Shanghai": ("北京时间", "Beijing time"), "Asia/Chongqing": ("北京时间", "Beijing time"),
               "Asia/Harbin": ("北京时间", "Beijing time"), "PRC": ("北京时间", "Beijing time")}


def zone_name(timezone: str, lang: str | None = None) -> str:
    """Return an IANA time zone as people name its time, in ``lang``: ``北京时间``, ``Central European Time``.

    China's zones read 北京时间 / Beijing time; every other zone takes CLDR's generic name (Babel),
    e.g. ``中欧时间``; a zone CLDR does not know keeps its IANA name.

    >>> zone_name("Asia/Shanghai"), zone_name("Asia/Shanghai", "en"), zone_name("Europe/Berlin", "zh-CN")
    ('北京时间', 'Beijing time', '中欧时间')
    """
    lang = lang or current_lang()
    if timezone in _ZONE_NAMES:
        return t(*_ZONE_NAMES[timezone], lang)
    from babel.dates import get_timezone_name  # noqa: PLC0415 - Babel's locale data loads on first use
    try:
        return get_timezone_name(timezone, locale="zh_Hans_CN" if lang == "zh-CN" else "en")
    except LookupError:
        return timezone
