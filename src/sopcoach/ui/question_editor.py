"""The question editor app for trainers (``notebooks/trainer/question_editor.ipynb``, trainer server).

Trainers add, edit and retire the certification exam's questions (``quizzes/bank/``) and the
lessons' practice questions (``quizzes/practice/``) in a form, not in raw YAML (seed:3.3.1: the
assessments new hires pass; seed:3.3.2: content kept current). The page:

* **Pick**: the pool (exam bank or practice), a search over id and stem, the question (retired ones
  marked), and *New question* (id, type, section, clauses; the new question starts with placeholder
  texts and options to overwrite).
* **Edit**: section, clauses, scenario, stem and explanation in zh-CN and en side by side, and per
  type: the options (id, texts, correct, ``value`` for a ``key_from`` key, pinned last) with the
  playbook fact the key follows (``key_from``), true/false, the number with its tolerance and unit or
  the playbook fact it follows (``answer_from``), the blocks of an ordering question in the correct
  order; *Retire* / *Bring back* (a retired question keeps its id: attempts that drew it stay
  readable, but it is never drawn or practised again).
* **Preview**: the question exactly as the learner sees it, built by the same code as the pages
  (:func:`sopcoach.ui.exam_app.stem_html` and :func:`~sopcoach.ui.exam_app.answer_control` for the
  exam, :class:`sopcoach.ui.lesson_app.PracticeItem` for practice), with the playbook's values filled
  in; the key only with *Show key*. The question's own problems are listed below it.
* **Check, review, save**: *Check* runs ``sopcoach check`` on the edited files; *Review* shows what
  changes (questions, keys, attempts that drew them, section counts against the blueprint's draw),
  the YAML diff and hints; *Save* (enabled after a current review without problems) writes through
  :class:`sopcoach.authoring.question_edit.QuestionEdit` with a backup of every ``quizzes/`` file.
* **History** (历史版本): the versions kept before each save, newest first (time in the playbook's
  zone, who, files, note), and *Restore this version* (:class:`sopcoach.ui.history_panel.HistoryPanel`,
  shared with the playbook editor): refused while there are unsaved edits or when the version's
  questions do not load; the version replaced is kept, so a restore can be undone; the questions
  shown are read again.

Every handler is wrapped with :func:`sopcoach.ui._common.safe`; value handlers are registered with
``names="value"``; nothing is printed.
"""
from __future__ import annotations

import functools
import os
import random
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from collections.abc import Callable, Sequence

import ipywidgets as w

from ..authoring.question_edit import POOLS, QuestionEdit, QuestionReview, open_questions
from ..certification.exam import option_order, question_view
from ..certification.scoring import check_response, credit, key_text
from ..certification.variants import TemplateError, instantiate
from ..content.quizbank import EXAM_TYPES
from ..errors import EditError, InvalidResponse, SaveConflict
from ..i18n import current_lang, page_lang, t
from ..lessons.progress import Feedback
from ._common import editor_root, esc, safe
from .history_panel import HistoryPanel
from .exam_app import CSS as EXAM_CSS
from .exam_app import answer_control, stem_html
from .lesson_app import PracticeItem
from .playbook_editor import CSS

POOL_NAMES = {"bank": ("考试题库", "Exam bank"), "practice": ("课程练习", "Lesson practice"),
              "drafts": ("草稿（不进考试和课程）", "Drafts (in no exam or lesson)")}
TYPE_NAMES = {"single_choice": ("单选", "single choice"), "multiple_choice": ("多选", "multiple choice"),
              "true_false": ("判断", "true/false"), "numeric": ("数值", "number"), "ordering": ("排序", "ordering")}
#: Types the practice page renders (lesson practice has no ordering control).
PRACTICE_TYPES = ("single_choice", "multiple_choice", "true_false", "numeric")
TEXTS = (("scenario", ("情景(可选)", "Scenario (optional)")), ("text", ("题干", "Stem")),
         ("explanation", ("解析(交卷后显示)", "Explanation (shown after scoring)")))
HALF = w.Layout(width="49%")
FULL = w.Layout(width="98%")


def _slug(name: str) -> str:
    return "sopcoach-q-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name)


def _text(value: Any, lang: str) -> str:
    return str((value or {}).get(lang, "")) if isinstance(value, dict) else ""


def _show(value: Any) -> str:
    return "" if value is None else str(value)


def skeleton(qid: str, qtype: str, section: str, clauses: str | Sequence[str]) -> dict:
    """Return a new question of ``qtype`` with placeholder texts and options (valid, to overwrite)."""
    data: dict[str, Any] = {"id": qid, "type": qtype, "section": section, "clauses": list(clauses) if not isinstance(clauses, str) else clauses,
                            "text": {"zh-CN": "(新题目:请填写题干)", "en": "(New question: write the stem)"}}

    def opt(oid: str, correct: bool = False) -> dict:
        return {"id": oid, "text": {"zh-CN": f"选项 {oid.upper()}", "en": f"Option {oid.upper()}"}, "correct": correct}

    if qtype == "single_choice":
        data["options"] = [opt("a", True), opt("b"), opt("c"), opt("d")]
    elif qtype == "multiple_choice":
        data["options"] = [opt("a", True), opt("b", True), opt("c"), opt("d")]
    elif qtype == "true_false":
        data["answer"] = True
    elif qtype == "numeric":
        data["answer"] = 1
    elif qtype == "ordering":
        data["items"] = [{"id": x, "text": {"zh-CN": f"步骤 {x.upper()}", "en": f"Step {x.upper()}"}} for x in "abc"]
    return data


class QuestionEditorApp:
    """The editor's widgets; build it with :func:`build` (or :func:`question_editor` in a notebook).

    Parameters
    ----------
    session : QuestionEdit
        The editing session (content folder, history folder).
    lang : str, optional
        ``zh-CN`` or ``en`` (default from ``SOPCOACH_LANG``).
    by : str, optional
        Who saves (kept with each backup); default ``JUPYTERHUB_USER`` or ``SOPCOACH_TRAINER``.

    Attributes
    ----------
    controls : dict
        The input widgets of the question shown, by stable name: ``section``, ``clauses``,
        ``text.zh-CN``, ``scenario.en``, ``explanation.en``, ``key_from``, ``answer``, ``answer_from``,
        ``tolerance``, ``unit.en``, ``draw`` (the blueprint's draw of the question's section, exam bank
        only), ``options.<i>.id``/``.zh-CN``/``.en``/``.correct``/``.value``/
        ``.pin``, ``items.<i>...``. Each also has the CSS class ``sopcoach-q-<name>``.
    """

    def __init__(self, session: QuestionEdit, lang: str | None = None, by: str | None = None):
        self.ed = session
        self.lang = lang or current_lang()
        self.by = by if by is not None else (os.environ.get("JUPYTERHUB_USER") or os.environ.get("SOPCOACH_TRAINER") or "")
        self.controls: dict[str, w.Widget] = {}
        self._reviewed: int | None = None
        self.review_data: QuestionReview | None = None
        self._picking = False
        self._resetting = False

        self.title = w.HTML(CSS + EXAM_CSS + f"<h2>{esc(self.tr('试题编辑器', 'Question editor'))}</h2>"
                            f"<div>{esc(self.tr('内容目录: ', 'Content folder: '))}<code>{esc(self.ed.content)}</code></div>")
        self.status = self._classed(w.HTML(), "sopcoach-status")
        self.pool = self._classed(w.ToggleButtons(options=[(self.tr(*POOL_NAMES[p]), p) for p in POOLS], value="bank"),
                                  "sopcoach-q-pool")
        self.search = self._classed(w.Text(placeholder=self.tr("按 id 或题干搜索", "Search id or stem"),
                                           layout=w.Layout(width="220px")), "sopcoach-q-search")
        self.picker = self._classed(w.Dropdown(layout=w.Layout(width="560px")), "sopcoach-q-picker")
        self.new_id = self._classed(w.Text(placeholder="id", layout=w.Layout(width="200px")), "sopcoach-q-new-id")
        self.new_type = w.Dropdown(options=[(self.tr(*TYPE_NAMES[x]), x) for x in EXAM_TYPES], layout=w.Layout(width="140px"))
        self.new_section = w.Dropdown(layout=w.Layout(width="200px"))
        self.new_clauses = self._clause_tags([], self.tr("条款（输入标题）", "clauses (type a title)"))
        self.add_button = self._classed(w.Button(description=self.tr("新增题目", "Add question"), icon="plus"),
                                        "sopcoach-q-add")
        self.add_button.on_click(self.on_add)
        self.form = self._classed(w.VBox(layout=w.Layout(width="58%")), "sopcoach-q-form")
        self.show_key = self._classed(w.Checkbox(description=self.tr("显示答案", "Show key"), value=False, indent=False),
                                      "sopcoach-q-show-key")
        self.show_key.observe(lambda _c: self.refresh_preview(), names="value")
        self.preview = self._classed(w.VBox(), "sopcoach-q-preview")
        self.key_box = self._classed(w.HTML(), "sopcoach-q-key")
        self.own_problems = self._classed(w.HTML(), "sopcoach-q-problems")
        side = w.VBox([w.HTML(f"<h4>{esc(self.tr('学员看到的样子', 'What the learner sees'))}</h4>"), self.show_key,
                       self.preview, self.key_box, self.own_problems], layout=w.Layout(width="40%"))
        side.add_class("sopcoach-app")
        self.check_button = self._classed(w.Button(description=self.tr("检查", "Check"), icon="check"), "sopcoach-q-check")
        self.check_button.on_click(self.on_check)
        self.review_button = self._classed(w.Button(description=self.tr("查看修改", "Review"), icon="eye",
                                                    button_style="info"), "sopcoach-q-review")
        self.review_button.on_click(self.on_review)
        self.note = w.Text(placeholder=self.tr("修改说明（随备份保存）", "What changed and why (kept with the backup)"),
                           layout=w.Layout(width="360px"))
        self.save_button = self._classed(w.Button(description=self.tr("保存", "Save"), icon="save", button_style="success",
                                                  disabled=True), "sopcoach-q-save")
        self.save_button.on_click(self.on_save)
        self.discard_button = w.Button(description=self.tr("放弃全部修改", "Discard my changes"), icon="undo",
                                       layout=w.Layout(width="auto"))
        self.discard_button.on_click(self.on_discard)
        self.results = self._classed(w.HTML(), "sopcoach-q-results")

        self.pool.observe(self.on_pool, names="value")
        self.search.observe(lambda _c: self._fill_picker(), names="value")
        self.picker.observe(self.on_pick, names="value")
        new_row = w.HBox([w.HTML(f"<b>{esc(self.tr('新题目:', 'New:'))}</b>&nbsp;"), self.new_id, self.new_type,
                          self.new_section, self.new_clauses, self.add_button])
        self.history = HistoryPanel(self, self._after_restore)
        self.versions, self.restore_button, self.history_info = (self.history.versions, self.history.restore_button,
                                                                 self.history.history_info)
        self.root = w.VBox([self.title, w.HBox([self.pool, self.search]), self.picker, new_row, self.status,
                            w.HBox([self.form, side]),
                            w.HBox([self.check_button, self.review_button, self.note, self.save_button,
                                    self.discard_button]), self.results,
                            w.HTML(f"<h4>{esc(self.tr('历史版本', 'History'))}</h4>"), self.history.root])
        self.root.add_class("sopcoach-editor")
        self.root.add_class("sopcoach-question-editor")
        self._fill_picker()

    # -- helpers ------------------------------------------------------------------------------------------
    def tr(self, zh: str, en: str) -> str:
        return t(zh, en, self.lang)

    def say(self, text: str, level: str = "info") -> None:
        """Show a short message above the form (never a traceback)."""
        self.status.value = f'<div class="sopcoach-msg-{level}">{esc(text)}</div>' if text else ""

    @staticmethod
    def _classed(widget: w.Widget, cls: str) -> Any:
        widget.add_class(cls)
        return widget

    @property
    def qid(self) -> str | None:
        """The id of the question shown (``None`` when the pool is empty)."""
        return self.picker.value

    @functools.cached_property
    def _clause_labels(self) -> dict[str, str]:
        return self.ed.clause_labels(self.lang)

    def _clause_tags(self, ids: list[str], placeholder: str, width: str = "auto") -> w.TagsInput:
        """Clauses picked by title (typing offers the playbook's titles); an id the playbook lacks shows as it is."""
        labels = self._clause_labels
        return w.TagsInput(value=[labels.get(c, c) for c in ids], placeholder=placeholder, allow_duplicates=False,
                           allowed_tags=[*labels.values(), *(c for c in ids if c not in labels)],
                           layout=w.Layout(width=width, min_width="240px"))

    def _clause_ids(self, tags: Sequence[str]) -> list[str]:
        """The clause ids of titles picked in a clause field (a tag that is no title is taken as an id)."""
        ids = {label: cid for cid, label in self._clause_labels.items()}
        return [ids.get(tag, tag) for tag in tags]

    def _bind(self, name: str, widget: w.Widget, write: Callable[[Any], Any]) -> w.Widget:
        """Register an input of the question shown; ``write(value)`` edits the session."""
        self.controls[name] = widget
        widget.add_class(_slug(name))

        @safe
        def handler(app: QuestionEditorApp, change: dict) -> None:
            if app._resetting:
                return
            try:
                write(change["new"])
            except EditError:
                app._resetting = True
                try:
                    widget.value = change["old"]  # the session is unchanged: show its value again
                finally:
                    app._resetting = False
                raise
            app.edited()

        widget.observe(lambda ch: handler(self, ch), names="value")
        return widget

    # -- picking --------------------------------------------------------------------------------------------
    def _fill_picker(self, keep: str | None = None) -> None:
        words = self.search.value.strip().lower()
        refs = [r for r in self.ed.questions(self.pool.value)
                if not words or words in r.id.lower() or any(words in str(x).lower() for x in r.text.values())]
        keep = keep or self.qid
        self._picking = True
        try:
            self.picker.options = [(r.label(self.lang), r.id) for r in refs]
            ids = [r.id for r in refs]
            self.picker.value = keep if keep in ids else (ids[0] if ids else None)
        finally:
            self._picking = False
        sections = self.ed.sections(self.pool.value)
        self.new_section.options = [(self.ed.section_label(self.pool.value, x, self.lang), x) for x in sections]
        current = self.ed.question(self.pool.value, self.qid).get("section") if self.qid else None
        self.new_section.value = current if current in sections else (sections[0] if sections else None)
        types = PRACTICE_TYPES if self.pool.value == "practice" else EXAM_TYPES
        self.new_type.options = [(self.tr(*TYPE_NAMES[x]), x) for x in types]
        self.show_question()

    @safe
    def on_pool(self, _change: Any = None) -> None:
        self._fill_picker()

    @safe
    def on_pick(self, _change: Any = None) -> None:
        if not self._picking:
            self.show_question()

    @safe
    def on_add(self, _button: Any = None) -> None:
        """Add a new question (placeholder texts) of the chosen type and show it."""
        qid = self.new_id.value.strip()
        data = skeleton(qid, self.new_type.value, self.new_section.value or "", self._clause_ids(self.new_clauses.value))
        file = self.ed.add_question(self.pool.value, data)
        self.new_id.value = ""
        self.search.value = ""
        self._fill_picker(keep=qid)
        self.edited()
        self.say(self.tr(f"已新增 {qid}(在 quizzes/{file});请填写题干和选项,检查后保存。",
                         f"Added {qid} (in quizzes/{file}); write its stem and options, check and save."), "success")

    # -- the form -------------------------------------------------------------------------------------------
    def show_question(self) -> None:
        """Build the form of the question picked and its preview."""
        for widget in self.controls.values():
            widget.close()
        self.controls = {}
        if self.qid is None:
            self.form.children = (w.HTML(esc(self.tr("没有题目。", "No question."))),)
            self.preview.children = ()
            return
        pool, qid = self.pool.value, self.qid
        q = self.ed.question(pool, qid)
        retired = bool(q.get("retired"))
        head = w.HTML(f"<div class='card'><b>{esc(qid)}</b> · {esc(self.tr(*TYPE_NAMES.get(q['type'], (q['type'], q['type']))))}"
                      f" · <code>quizzes/{esc(self.ed.file_of(pool, qid))}</code>"
                      + (f" · <span class='retired'>{esc(self.tr('已停用', 'retired'))}</span>" if retired else "") + "</div>")
        retire = self._classed(w.Button(description=self.tr("恢复使用", "Bring back") if retired else self.tr("停用此题", "Retire"),
                                        icon="archive", layout=w.Layout(width="auto")), "sopcoach-q-retire")
        retire.on_click(lambda _b: self.on_retire(not retired))
        sections = self.ed.sections(pool)
        rows: list[w.Widget] = [head, retire]
        section = w.Dropdown(options=[(self.ed.section_label(pool, str(x), self.lang), x)
                                      for x in dict.fromkeys([*sections, q.get("section")])], value=q.get("section"),
                             description=self.tr("部分", "Section"), layout=w.Layout(width="340px"))
        rows.append(self._bind("section", section, lambda v: self.ed.set_field(pool, qid, "section", v)))
        if pool == "bank" and q.get("section") in self.ed.draws():
            draw = w.Text(value=str(self.ed.draws()[q["section"]]), continuous_update=False, layout=w.Layout(width="260px"),
                          description=self.tr("本部分每次抽题", "Exam draws"), style={"description_width": "initial"})
            rows.append(self._bind("draw", draw, lambda v: self.ed.set_draw(q["section"], v)))
        clauses = self._clause_tags(list(q.get("clauses") or []), self.tr("输入条款标题", "type a clause title"))
        rows.append(w.HBox([w.Label(self.tr("条款", "Clauses"), layout=w.Layout(width="90px")),
                            self._bind("clauses", clauses, lambda v: self.ed.set_clauses(pool, qid, self._clause_ids(v)))]))
        for field, names in TEXTS:
            rows.append(w.HTML(f"<h4>{esc(self.tr(*names))}</h4>"))
            rows.append(w.HBox([self._text_box(pool, qid, field, lang, _text(q.get(field), lang)) for lang in ("zh-CN", "en")]))
        rows += self._type_controls(pool, qid, q)
        self.form.children = tuple(rows)
        self.refresh_preview()

    def _text_box(self, pool: str, qid: str, field: str, lang: str, value: str) -> w.Widget:
        box: w.Widget
        if field == "unit":
            box = w.Text(value=value, placeholder=f"{self.tr('单位', 'unit')} {lang}", continuous_update=False)
        else:
            box = w.Textarea(value=value, placeholder=lang, continuous_update=False, layout=HALF,
                             rows=2 if field != "explanation" else 3)
        return self._bind(f"{field}.{lang}", box, lambda v: self.ed.set_text(pool, qid, field, lang, v))

    def _type_controls(self, pool: str, qid: str, q: dict) -> list[w.Widget]:
        kind = q["type"]
        facts = self.ed.facts()
        rows: list[w.Widget] = []
        if kind in ("single_choice", "multiple_choice"):
            rows.append(w.HTML(f"<h4>{esc(self.tr('选项(勾选正确项)', 'Options (tick the key)'))}</h4>"))
            if kind == "single_choice":
                key_from = w.Combobox(options=facts, value=q.get("key_from") or "", ensure_option=False,
                                      description="key_from", placeholder=self.tr("（用勾选的正确项）", "(use the ticked option)"),
                                      continuous_update=False, layout=w.Layout(width="480px"))
                rows.append(self._bind("key_from", key_from, lambda v: self.ed.set_field(pool, qid, "key_from", v)))
                rows.append(w.HTML(self.tr("<small>填了 key_from 时，答案是 value 等于该规程值的选项（不要勾选）。</small>",
                                           "<small>With key_from, the key is the option whose value equals that playbook "
                                           "value (tick none).</small>")))
            rows += self._choice_rows(pool, qid, "options", q.get("options") or [], with_key=True)
        elif kind == "ordering":
            rows.append(w.HTML(f"<h4>{esc(self.tr('步骤(按正确顺序)', 'Blocks (in the correct order)'))}</h4>"))
            rows += self._choice_rows(pool, qid, "items", q.get("items") or [], with_key=False)
            rows.append(w.HTML(f"<h4>{esc(self.tr('干扰项(不属于该顺序)', 'Distractors (not in the sequence)'))}</h4>"))
            rows += self._choice_rows(pool, qid, "distractors", q.get("distractors") or [], with_key=False)
        elif kind == "true_false":
            answer = w.ToggleButtons(options=[(self.tr("正确", "True"), True), (self.tr("错误", "False"), False)],
                                     value=bool(q.get("answer")), description=self.tr("答案", "Key"))
            rows.append(self._bind("answer", answer, lambda v: self.ed.set_field(pool, qid, "answer", v)))
        elif kind == "numeric":
            answer = w.Text(value=_show(q.get("answer")), description=self.tr("答案", "Key"), continuous_update=False,
                            placeholder=self.tr("或用 answer_from", "or use answer_from"))
            rows.append(self._bind("answer", answer, lambda v: self.ed.set_field(pool, qid, "answer", v)))
            frm = w.Combobox(options=facts, value=q.get("answer_from") or "", ensure_option=False,
                             description="answer_from", continuous_update=False, layout=w.Layout(width="480px"))
            rows.append(self._bind("answer_from", frm, lambda v: self.ed.set_field(pool, qid, "answer_from", v)))
            tol = w.Text(value=_show(q.get("tolerance")), description=self.tr("容差 ±", "Tolerance ±"),
                         continuous_update=False)
            rows.append(self._bind("tolerance", tol, lambda v: self.ed.set_field(pool, qid, "tolerance", v)))
            rows.append(w.HBox([self._text_box(pool, qid, "unit", lang, _text(q.get("unit"), lang))
                                for lang in ("zh-CN", "en")]))
        return rows

    def _choice_rows(self, pool: str, qid: str, key: str, choices: list[dict], with_key: bool) -> list[w.Widget]:
        def collect() -> list[dict]:
            out = []
            for i in range(len(choices) + 1):
                cid = self.controls.get(f"{key}.{i}.id")
                if cid is None or not cid.value.strip():
                    continue
                c: dict[str, Any] = {"id": cid.value.strip(),
                                     "text": {lang: self.controls[f"{key}.{i}.{lang}"].value for lang in ("zh-CN", "en")}}
                if with_key:
                    c["correct"] = self.controls[f"{key}.{i}.correct"].value
                    c["value"] = self.controls[f"{key}.{i}.value"].value.strip() or None
                    c["pin"] = "last" if self.controls[f"{key}.{i}.pin"].value else None
                out.append(c)
            return out

        def write(_v: Any) -> None:
            self.ed.set_choices(pool, qid, collect(), key)

        rows = []
        for i, c in enumerate([*choices, {}]):  # the last, empty row adds a choice
            parts = [self._bind(f"{key}.{i}.id", w.Text(value=c.get("id", ""), placeholder="id", continuous_update=False,
                                                        layout=w.Layout(width="70px")), write)]
            parts += [self._bind(f"{key}.{i}.{lang}", w.Text(value=_text(c.get("text"), lang), placeholder=lang,
                                                             continuous_update=False, layout=w.Layout(width="30%")), write)
                      for lang in ("zh-CN", "en")]
            if with_key:
                parts.append(self._bind(f"{key}.{i}.correct", w.Checkbox(value=bool(c.get("correct")), indent=False,
                                                                         description=self.tr("正确", "key"),
                                                                         layout=w.Layout(width="70px")), write))
                parts.append(self._bind(f"{key}.{i}.value", w.Text(value=_show(c.get("value")), placeholder="value",
                                                                   continuous_update=False, layout=w.Layout(width="80px")),
                                        write))
                parts.append(self._bind(f"{key}.{i}.pin", w.Checkbox(value=c.get("pin") == "last", indent=False,
                                                                     description=self.tr("固定最后", "last"),
                                                                     layout=w.Layout(width="90px")), write))
            rows.append(w.HBox(parts))
        rows.append(w.HTML(self.tr("<small>清空 id 删除该项；在最后一行填写 id 新增一项。</small>",
                                   "<small>Clear an id to remove that row; fill the last row's id to add one.</small>")))
        return rows

    # -- preview --------------------------------------------------------------------------------------------
    def refresh_preview(self) -> None:
        """Show the question as the learner sees it (exam page or lesson practice), and its own problems."""
        if self.qid is None:
            return
        pool = self.pool.value
        q, problems = self.ed.resolved(pool, self.qid)
        self.own_problems.value = ("<div class='bad problems'>" + "<br>".join(esc(p) for p in problems) + "</div>"
                                   if problems else "")
        old = self.preview.children
        note = ""
        if q is not None and q.variant is not None:  # a template: preview one drawn variant
            try:
                q, params = instantiate(q, self.ed.playbook, random.Random(f"preview:{self.qid}"))
            except TemplateError as exc:
                q, problems = None, [*problems, str(exc)]
                self.own_problems.value = "<div class='bad problems'>" + "<br>".join(esc(p) for p in problems) + "</div>"
            else:
                note = (self.tr("模板题:每次考试/练习抽取新的数字,按规则“{r}”计算答案。以下是一组示例数字:",
                                "A template: each exam or practice draws new numbers and rule '{r}' computes the key. "
                                "One sample draw: ").replace("{r}", self.ed.question(pool, self.qid)["variant"]["rule"])
                        + esc(", ".join(f"{k} = {v}" for k, v in params.items())))
                note = f"<div class='sopcoach-variant-note'><small>{note}</small></div>"
        if q is None:
            self.preview.children = (w.HTML(esc(self.tr("题目有问题，无法预览（见下方）。",
                                                        "The question has problems and cannot be shown (below)."))),)
            self.key_box.value = ""
        elif pool != "practice":  # the exam bank and the drafts (written for it): shown as in the exam
            qv = question_view(q, option_order(q, random.Random(0)) or [], self.lang, 1, 1)
            scenario, stem = stem_html(qv, self.lang)
            control, _getter = answer_control(qv, self.lang, lambda: None)
            self.preview.children = (w.HTML(note + scenario), w.HTML(stem), control)
        elif q.type in PRACTICE_TYPES:
            stub = SimpleNamespace(lang=self.lang, learner_id="preview", on_check=self._practice_check)
            card = PracticeItem(stub, q, 1, None).root  # type: ignore[arg-type]
            self.preview.children = (card, w.HTML(note)) if note else (card,)
        else:
            self.preview.children = (w.HTML(esc(self.tr("课程练习不显示此题型。", "Lesson practice does not show this type."))),)
        for widget in old:
            widget.close()
        if q is not None and self.show_key.value:
            expl = f"<br><i>{esc(q.explanation.get(self.lang))}</i>" if q.explanation else ""
            self.key_box.value = (f"<div class='ok'>{esc(self.tr('答案: ', 'Key: '))}<b>{esc(key_text(q, self.lang))}</b>"
                                  f"{expl}</div>")
        else:
            self.key_box.value = ""

    @safe
    def _practice_check(self, item: PracticeItem) -> None:
        """The preview's *Check* button: the feedback a learner gets (nothing is recorded)."""
        try:
            earned = credit(item.q, check_response(item.q, item.response()))
        except InvalidResponse as exc:
            self.say(str(exc), "warning")
            return
        item.show(Feedback(item.q.id, earned, key_text(item.q, self.lang),
                           item.q.explanation.get(self.lang) if item.q.explanation else None, tuple(item.q.clauses), None))

    def edited(self) -> None:
        """After an edit: the review is stale, the picker label and the preview follow."""
        self.save_button.disabled = True
        self.review_data = None
        refs = {r.id: r for r in self.ed.questions(self.pool.value)}
        qid = self.qid
        if qid in refs:
            self._picking = True
            try:
                self.picker.options = [(refs[i].label(self.lang) if i in refs else label, i) for label, i in self.picker.options]
                self.picker.value = qid
            finally:
                self._picking = False
        self.refresh_preview()
        self.say(self.tr("有未保存的修改。", "Unsaved changes.") if self.ed.dirty else "", "info")

    @safe
    def on_retire(self, retired: bool) -> None:
        self.ed.retire(self.pool.value, self.qid, retired)  # type: ignore[arg-type]
        self.show_question()
        self.edited()

    # -- check, review, save ---------------------------------------------------------------------------------
    @safe
    def on_check(self, _button: Any = None) -> None:
        problems = self.ed.validate()
        if problems:
            self.results.value = ("<div class='bad problems'>" + "<br>".join(esc(str(p)) for p in problems) + "</div>")
        else:
            warnings = self.ed.warnings()
            notes = "".join(f"<div class='hint problems'>{esc(str(x))}</div>" for x in warnings)
            self.results.value = f"<div class='ok'>{esc(self.tr('检查通过。', 'Check passed.'))}</div>{notes}"

    @safe
    def on_review(self, _button: Any = None) -> None:
        review = self.ed.review(self.lang)
        self.review_data = review
        self._reviewed = self.ed.generation
        body = esc(review.text(self.lang))
        diff = f"<pre class='diff'>{esc(review.diff)}</pre>" if review.diff else ""
        cls = "bad" if review.problems else "ok"
        self.results.value = f"<div class='{cls} problems'>{body}</div>{diff}"
        self.save_button.disabled = not review.changed_files or bool(review.problems)

    @safe
    def on_save(self, _button: Any = None) -> None:
        """Save after a current review without problems (re-checked here)."""
        if not self.ed.dirty:
            self.say(self.tr("没有修改，无需保存。", "Nothing changed; nothing to save."), "info")
            return
        if self._reviewed != self.ed.generation or self.review_data is None:
            self.on_review()
            self.say(self.tr("修改已变化，已更新检查结果；请核对后再点保存。",
                             "The edits changed: the review is updated; check it and click Save again."), "warning")
            return
        self.save_button.disabled = True
        try:
            written = self.ed.save(note=self.note.value.strip(), by=self.by)
        except SaveConflict as exc:
            self.say(str(exc), "danger")
            return
        self.note.value = ""
        self.review_data = None
        self._fill_picker()
        self.history.fill()
        self.say(self.tr(f"已保存：{'、'.join(written)}（之前的版本已备份，可在“历史版本”中恢复）。",
                         f"Saved: {', '.join(written)} (the previous version is kept and can be restored under "
                         "History)."), "success")

    def _after_restore(self, _result: Any) -> None:
        """Show the questions as restored (the session reopened the files); the review is stale."""
        self.review_data = None
        self._reviewed = None
        self.save_button.disabled = True
        self.results.value = ""
        self._fill_picker()

    @safe
    def on_discard(self, _button: Any = None) -> None:
        self.ed.reload()
        self.review_data = None
        self.results.value = ""
        self._fill_picker()
        self.say(self.tr("已放弃修改。", "Changes discarded."), "info")


def build(content: Path | str | None = None, home: Path | str | None = None, lang: str | None = None,
          by: str | None = None) -> QuestionEditorApp:
    """Open ``quizzes/`` of ``content`` (default ``SOPCOACH_CONTENT``) and return the editor app.

    Raises
    ------
    EditError
        When the content folder has no ``quizzes/bank/``.
    """
    return QuestionEditorApp(open_questions(content, home), lang=lang, by=by)


def question_editor(content: Path | str | None = None, home: Path | str | None = None,
                    lang: str | None = None) -> w.Widget:
    """Return the question editor's widget (the notebook's one call).

    When the questions cannot be opened, a message says why instead (the details go to the log).
    """
    lang = lang or page_lang()
    return editor_root(lambda: build(content, home, lang), "question editor", lang)
