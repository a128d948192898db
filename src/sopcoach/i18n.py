"""Bilingual text (Simplified Chinese by default, English) and the learner-facing UI strings."""
from __future__ import annotations

import os

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


def t(zh: str, en: str, lang: str | None = None) -> str:
    """Pick the UI string for ``lang`` (default: :func:`current_lang`)."""
    return en if (lang or current_lang()) == "en" else zh
