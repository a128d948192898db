"""Every learner page speaks one language: no English on a Chinese page, no Chinese on an English one.

The pages (home, exam instructions, every question, the result, the review of a closed attempt,
every lesson with its tool and practice feedback) are rendered headless on the shipped content; the
text a learner sees (HTML text, button and box labels, options, placeholders) is collected and
checked: on zh-CN no ASCII word outside :data:`ALLOWED` and no half-width ``, : ; ( ) ? !`` next to
Chinese; on en no Chinese character.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from sopcoach.i18n import CJK
from sopcoach.ui.exam_app import ExamApp, Page
from sopcoach.ui.home_app import HomeApp
from sopcoach.ui.lesson_app import LessonApp
from support import complete_lessons, correct_response, widget_tree, wrong_response

pytestmark = pytest.mark.databases("sqlite")

#: ASCII words a Chinese page may show: product and system names, units, the time zone, customer
#: classes (A/B/C) and "Step", the SOP source's own name for its measurable steps (Step1 to Step3).
ALLOWED = {"CRM", "KPI", "SOP", "PDF", "API", "PPT", "Asia", "Shanghai", "CNY", "A", "B", "C", "Step"}

HALF_NEXT_TO_CJK = re.compile(rf"[{CJK}][ ]?[,:;()?!]|[,:;()?!][ ]?[{CJK}]")
ASCII_WORD = re.compile(r"[A-Za-z]+")
ANY_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff01-\uff5e]")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "aria-label", "alt") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_texts(root) -> list[str]:
    """Return the texts a learner sees in ``root``: HTML text nodes, labels, options, placeholders."""
    out: list[str] = []
    for wdg in widget_tree(root):
        state = wdg.get_state()
        if wdg.__class__.__name__ in ("HTML", "HTMLMath", "Label"):
            parser = _Text()
            parser.feed(state.get("value") or "")
            out.append("".join(parser.parts))
        for key in ("description", "placeholder", "tooltip", "_options_labels", "button_text"):
            value = state.get(key)
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, (list, tuple)):
                out.extend(str(v) for v in value)
    return [x for x in out if x and x.strip()]


def problems(texts: list[str], lang: str) -> list[str]:
    """Return the texts that break the page language's rules, each with what is wrong."""
    bad = []
    for text in texts:
        if lang == "en":
            if ANY_CJK.search(text):
                bad.append(f"Chinese on an English page: {text[:160]!r}")
            continue
        words = sorted({w for w in ASCII_WORD.findall(text) if w not in ALLOWED})
        if words:
            bad.append(f"English {words} on a Chinese page: {text[:160]!r}")
        half = HALF_NEXT_TO_CJK.findall(text)
        if half:
            bad.append(f"half-width {half} next to Chinese: {text[:160]!r}")
    return bad


def _take(app: ExamApp, inst, right: bool, pages: list) -> None:
    app.start_button.click()
    total = len(app.service.view(app.attempt_id).question_ids)
    for i in range(total):
        app.go_to(i)
        qv = app.service.question(app.attempt_id, i)
        q = app.service.attempt_question(app.attempt_id, qv.question_id)
        response = correct_response(q) if right else wrong_response(q)
        if response is not None and response != []:
            app.service.answer(app.attempt_id, q.id, response)
        pages.append(visible_texts(app.root))
    app.review_button.click()
    pages.append(visible_texts(app.root))
    app.submit_button.click()
    pages.append(visible_texts(app.root))
    app.confirm_button.click()
    assert app.page is Page.RESULT
    pages.append(visible_texts(app.root))


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_learner_pages_speak_the_page_language(inst, clock, lang):
    name = "赵六" if lang == "zh-CN" else "Zhao Liu"
    inst.records.enroll("e4001", name)
    complete_lessons(inst, "e4001")
    pages: list[list[str]] = []
    exam = ExamApp(inst, lang=lang, clock=clock, start_timer=False, learner_id="e4001")
    pages.append(visible_texts(exam.root))
    _take(exam, inst, right=False, pages=pages)
    again = ExamApp(inst, lang=lang, clock=clock, start_timer=False, learner_id="e4001")
    pages.append(visible_texts(again.root))
    past = [b for b in widget_tree(again.root) if "sopcoach-past-attempt" in getattr(b, "_dom_classes", ())]
    past[0].click()
    assert again.page is Page.PAST
    pages.append(visible_texts(again.root))
    pages.append(visible_texts(HomeApp(inst, lang=lang, clock=clock, learner_id="e4001").root))
    for lesson in inst.playbook.lessons:
        app = LessonApp(inst, lesson.id, lang=lang, clock=clock, learner_id="e4001")
        pages.append(visible_texts(app.root))
    bad = sorted({p for texts in pages for p in problems(texts, lang)})
    assert not bad, "\n".join(bad)
