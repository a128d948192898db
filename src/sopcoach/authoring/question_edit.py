"""Edit the question banks safely: add, edit and retire questions, live ``check``, diff, impact, save.

The engine behind the question editor app (:mod:`sopcoach.ui.question_editor`); it never imports
ipywidgets. It works like :class:`sopcoach.authoring.playbook_edit.PlaybookEdit`, on the files of
``quizzes/`` instead of ``playbook/``:

* **Open**: ``quizzes/blueprint.yaml``, the certification bank ``quizzes/bank/*.yaml`` (pool
  ``bank``) and the lesson practice pool ``quizzes/practice/*.yaml`` (pool ``practice``) are read
  with ruamel.yaml's round trip (comments, key order, quoting and blank lines survive); a file whose
  layout ruamel.yaml cannot reproduce byte for byte is read-only.
* **Edit**: :meth:`QuestionEdit.set_text` (stem ``text``, ``scenario``, ``explanation``, numeric
  ``unit``; zh-CN and en), :meth:`~QuestionEdit.set_field` (``section``, ``points``, ``key_from``,
  ``answer_from``, ``answer``, ``tolerance``), :meth:`~QuestionEdit.set_clauses`,
  :meth:`~QuestionEdit.set_choices` (``options``, ordering ``items`` and ``distractors``),
  :meth:`~QuestionEdit.add_question`, :meth:`~QuestionEdit.retire` and
  :meth:`~QuestionEdit.set_draw` (a blueprint section's draw, a whole number).
* **Retire, never delete**: attempts store answers per question id and item statistics read them
  (seed:3.3.1 exam records), so a question is retired with ``retired: true``: it stays in its file,
  old attempts are still scored and shown, but the exam draw, the blueprint counts and lesson
  practice leave it out (:meth:`sopcoach.content.quizbank.Bank.in_section`). An id is never reused.
* **Drafts**: ``quizzes/drafts/*.yaml`` (pool ``drafts``) holds questions written for the trainers
  to review, e.g. from a case study's deviation (:func:`save_draft`, seed:3.3.2). No exam and no
  lesson reads this folder; the editor opens, checks and saves a draft like any question.
* **Validate**: :meth:`QuestionEdit.validate` runs what ``sopcoach check`` runs
  (:func:`sopcoach.authoring.playbook_edit.evaluate_texts` with ``quizzes/`` replaced by the edited
  files): ``quizzes/bank/crm_use.yaml:12:5: questions[3].options: message`` lines.
* **Review**: :meth:`QuestionEdit.review`: the questions added, edited (which fields), retired or
  brought back, their key before and after, how many exam attempts drew each, the blueprint
  sections whose eligible count changes (and whether each still has ``draw`` questions), the
  unified diff of each file, and hints.
* **Save**: through :func:`sopcoach.authoring.yaml_writer.write_files` (the installation's lock,
  a backup of every ``quizzes/`` file in ``$SOPCOACH_HOME/question-history/<id>/``, atomic
  writes); refused while ``check`` reports a problem (:class:`~sopcoach.errors.InvalidPlaybook`),
  when a file changed on disk since it was opened (:class:`~sopcoach.errors.SaveConflict`), or
  when the folder is not writable (:class:`~sopcoach.errors.ContentNotWritable`).
* **History and restore**: :meth:`~QuestionEdit.history` lists the versions kept before each save
  (newest first) and :meth:`~QuestionEdit.restore` puts one back
  (:func:`sopcoach.authoring.playbook_edit.restore` over ``quizzes/``): refused while the session has
  unsaved edits, and refused with nothing written when the version's bank, blueprint or practice pool
  do not load against today's playbook; the version replaced is backed up first, so a restore can
  be undone by restoring that backup.
"""
from __future__ import annotations

from collections import Counter

import json

import difflib
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

from pydantic import TypeAdapter, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from ..config import open_records, settings
from ..content.playbook import load_playbook
from ..content.quizbank import ID, Question, load_bank
from ..content.yaml_loader import format_loc
from ..errors import ContentError, ContentNotWritable, EditError, InvalidPlaybook, Problem, SaveConflict
from ..i18n import t
from .playbook_edit import (LANGS, EditSession, OpenedFile, _assign, _insert_after, _key_text, _number, _open_file, _plain,
                            _remove, _set_list, _split_list, _whole, evaluate_texts)
from .yaml_writer import dump, encode, read_folder, sha256, write_files

__all__ = ["DRAFTS_FILE", "POOLS", "STORE", "QuestionChange", "QuestionEdit", "QuestionRef", "QuestionReview", "SectionCount",
           "open_questions"]

#: The pools: the certification bank, the lesson practice pool and the trainers' drafts (subfolders of
#: ``quizzes/``); only ``bank`` reaches an exam and only ``practice`` a lesson.
POOLS = ("bank", "practice", "drafts")
#: The file :func:`save_draft` adds drafts to (relative to ``quizzes/``).
DRAFTS_FILE = "drafts/case_studies.yaml"
DRAFTS_HEADER = ("Practice question drafts for the trainers (seed:3.3.2), written from case-study deviations of the\n"
                 "monthly review. No exam or lesson reads quizzes/drafts/: review a draft in the question editor\n"
                 "(pool: drafts), then add it to the bank or the practice pool under a new id.")
#: The history folder below ``$SOPCOACH_HOME`` that keeps the version before each save.
STORE = "question-history"
BLUEPRINT = "blueprint.yaml"
#: Key order of a question in the bank files (a new key goes before the first later one present).
ORDER = ("id", "type", "section", "clauses", "points", "retired", "key_from", "answer_from", "answer", "tolerance",
         "min", "max", "unit", "scenario", "text", "explanation", "options", "items", "distractors",
         "feedback_true", "feedback_false", "feedback_other")
OPTION_ORDER = ("id", "text", "correct", "value", "weight", "pin", "feedback")
#: Bilingual texts of a question; all but ``text`` may be removed (blank in both languages).
TEXT_FIELDS = ("text", "scenario", "explanation", "unit")
#: Fields :meth:`QuestionEdit.set_field` sets.
FIELDS = ("section", "points", "key_from", "answer_from", "answer", "tolerance")
CHOICE_KEYS = ("options", "items", "distractors")
_QUESTION = TypeAdapter(Question)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _pool_of(name: str) -> str | None:
    head, _, rest = name.partition("/")
    return head if head in POOLS and rest and "/" not in rest else None


def _bilingual(value: Any, flow: bool = False) -> CommentedMap:
    node = CommentedMap((lang, str((value or {}).get(lang, "")).strip()) for lang in LANGS)
    if flow:
        node.fa.set_flow_style()
    return node


def _schema_messages(exc: ValidationError) -> list[str]:
    return [f"{format_loc(tuple(e['loc'][1:] if len(e['loc']) > 1 else e['loc']))}: "
            f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]


@dataclass(frozen=True)
class QuestionRef:
    """One question of a pool as listed in the editor's picker."""

    pool: str
    id: str
    file: str  # relative to quizzes/: "bank/crm_use.yaml"
    type: str
    section: str
    text: dict  # {"zh-CN": ..., "en": ...}, as written (facts unresolved)
    retired: bool

    def label(self, lang: str | None = None) -> str:
        """``id · stem`` (stem cut at 60 characters), ``[retired]`` when retired."""
        stem = str(self.text.get("en" if lang == "en" else "zh-CN") or "")
        stem = stem if len(stem) <= 60 else stem[:59] + "…"
        mark = t(" [已停用]", " [retired]", lang) if self.retired else ""
        return f"{self.id} · {stem}{mark}"


#: A pool of questions in words (zh-CN, en), as the review before saving names it.
POOL_WORDS = {"bank": ("考试题", "exam question"), "practice": ("练习题", "practice question"), "drafts": ("草稿", "draft")}
#: A question's field in words (zh-CN, en): what the review before saving says changed.
FIELD_WORDS = {"text": ("题干", "stem"), "scenario": ("情景", "scenario"), "explanation": ("解析", "explanation"),
               "options": ("选项", "options"), "items": ("排序项", "items"), "key": ("答案", "key"),
               "key_from": ("答案所依据的规程值", "key from the playbook"), "answer": ("答案", "answer"),
               "answer_from": ("答案所依据的规程值", "answer from the playbook"), "tolerance": ("允许误差", "tolerance"),
               "unit": ("单位", "unit"), "clauses": ("依据条款", "clauses"), "section": ("部分", "section"),
               "type": ("题型", "type"), "retired": ("停用", "retired"), "variant": ("模板", "template")}


@dataclass(frozen=True)
class QuestionChange:
    """A question added, edited, retired or brought back (``kind``), compared with the files as opened.

    ``fields`` are the top-level fields that differ; ``attempts`` is how many exam attempts drew the
    question (their answers are stored under its id); ``old_key``/``new_key`` the key as learner
    text (empty when it does not resolve).
    """

    pool: str
    id: str
    kind: str  # added | edited | retired | restored
    fields: tuple[str, ...]
    attempts: int
    old_key: str
    new_key: str


@dataclass(frozen=True)
class SectionCount:
    """Eligible (not retired) questions of a section before and after the edits; ``draw`` is the
    blueprint's count (``None`` for a practice section)."""

    pool: str
    section: str
    before: int
    after: int
    draw_before: int | None
    draw_after: int | None

    @property
    def short(self) -> bool:
        """True when the exam section would draw more questions than it has."""
        return self.draw_after is not None and self.after < self.draw_after


@dataclass(frozen=True)
class QuestionReview:
    """Everything shown before saving (see :meth:`QuestionEdit.review`)."""

    changed_files: tuple[str, ...]
    problems: tuple[Problem, ...]
    changes: tuple[QuestionChange, ...]
    sections: tuple[SectionCount, ...]
    diff: str
    hints: tuple[str, ...]
    warnings: tuple[Problem, ...] = ()

    def text(self, lang: str | None = None) -> str:
        """Return the review as readable text (what the app shows, without HTML)."""
        if not self.changed_files:
            return t("没有修改。", "No change.", lang)
        kinds = {"added": t("新增", "added", lang), "edited": t("修改", "edited", lang),
                 "retired": t("停用", "retired", lang), "restored": t("恢复使用", "restored", lang)}
        lines = [t("修改的文件：", "Files changed: ", lang) + ", ".join(self.changed_files)]
        if self.problems:
            lines.append(t("问题（修正后才能保存）：", "Problems (fix them before saving):", lang))
            lines += [f"  {p}" for p in self.problems]
        for c in self.changes:
            line = f"{t(*POOL_WORDS.get(c.pool, (c.pool, c.pool)), lang)} {c.id} [{kinds[c.kind]}]"
            if c.fields:
                line += " " + t("、", ", ", lang).join(t(*FIELD_WORDS.get(f, (f, f)), lang) for f in c.fields)
            if c.old_key != c.new_key:
                line += t(f"; 答案 {c.old_key or '-'} → {c.new_key or '-'}", f"; key {c.old_key or '-'} -> {c.new_key or '-'}",
                          lang)
            if c.attempts:
                line += t(f"; 已有 {c.attempts} 次考试抽到此题", f"; drawn in {c.attempts} exam attempt(s)", lang)
            lines.append(line)
        if self.warnings:
            lines.append(t("提醒（不影响保存）：", "Warnings (saving is allowed):", lang))
            lines += [f"  {w}" for w in self.warnings]
        for s in self.sections:
            draw = "" if s.draw_after is None else t(f"，每次抽取 {s.draw_after}", f", draws {s.draw_after}", lang)
            lines.append(t(f"{POOL_WORDS.get(s.pool, (s.pool, s.pool))[0]} {s.section}：可抽题数 {s.before} → {s.after}{draw}",
                           f"{s.pool} {s.section}: {s.before} -> {s.after}{draw}", lang))
        lines += self.hints
        return "\n".join(lines)


class QuestionEdit(EditSession):
    """An editing session over ``quizzes/`` of one content folder.

    Parameters
    ----------
    content : path-like
        The folder holding ``playbook/`` and ``quizzes/`` (``SOPCOACH_CONTENT``).
    home : path-like
        ``SOPCOACH_HOME``: versions are kept in ``question-history/`` below it.
    records : Records, optional
        The records store; with it, the review counts the exam attempts that drew each question.
    clock : callable, optional
        Aware-UTC clock (tests pass a fake one).

    Raises
    ------
    EditError
        When ``content`` has no ``quizzes/bank/`` folder.

    Examples
    --------
    >>> from sopcoach.config import PROJECT_ROOT
    >>> ed = QuestionEdit(PROJECT_ROOT, home=Path(tempfile.mkdtemp()))
    >>> ed.retire("bank", ed.questions("bank")[0].id)
    True
    >>> ed.changed_files()
    ['bank/crm_use.yaml']
    """

    store = STORE

    def __init__(self, content: Path | str, home: Path | str, records: Any = None,
                 clock: Callable[[], datetime] = _utcnow):
        self.content = Path(content).expanduser().resolve()
        self.home = Path(home).expanduser()
        self.records = records
        self.clock = clock
        self.folder = self.content / "quizzes"
        if not (self.folder / "bank").is_dir():
            raise EditError(f"no quizzes/bank/ folder in {self.content}; set SOPCOACH_CONTENT to the folder "
                            "that holds playbook/ and quizzes/")
        self.generation = 0
        self._cache: dict[str, tuple[int, Any]] = {}
        self._playbook: Any = None
        self._created: set[str] = set()
        self._open()

    # -- opening ---------------------------------------------------------------------------------------
    def _open(self) -> None:
        self.files: dict[str, OpenedFile] = {}
        self.docs: dict[str, Any] = {}
        for name, raw in read_folder(self.folder, recursive=True).items():
            if name != BLUEPRINT and _pool_of(name) is None:
                continue
            opened, doc = _open_file(name, raw)
            self.files[name] = opened
            self.docs[name] = doc
        self.opened_at = self.clock()
        self._dirty: set[str] = set()
        self._created = set()
        self._base = {key: _plain(node) for key, (_name, node) in self._index().items()}
        self._base_draws = self.draws()
        self._cache.clear()

    def _index(self) -> dict[tuple[str, str], tuple[str, CommentedMap]]:
        """``{(pool, id): (file, node)}`` of every question, in file order."""
        out: dict[tuple[str, str], tuple[str, CommentedMap]] = {}
        for name, doc in self.docs.items():
            pool = _pool_of(name)
            if pool is None or not isinstance(doc, CommentedMap) or not isinstance(doc.get("questions"), list):
                continue
            for node in doc["questions"]:
                if isinstance(node, CommentedMap) and node.get("id") is not None:
                    out.setdefault((pool, str(node["id"])), (name, node))
        return out

    def draws(self) -> dict[str, int]:
        """Return ``{section: draw}`` of the blueprint as edited (empty when it does not read)."""
        doc = self.docs.get(BLUEPRINT)
        try:
            return {str(s["id"]): s["draw"] for s in doc["exam"]["sections"]}  # type: ignore[index]
        except (KeyError, TypeError):
            return {}

    @property
    def playbook(self) -> Any:
        """The playbook of the content folder (``None`` when it does not load); facts and clauses."""
        if self._playbook is None:
            try:
                self._playbook = load_playbook(self.content / "playbook")
            except ContentError:
                return None
        return self._playbook

    def reload(self) -> None:
        """Drop every unsaved edit and read the files again from disk."""
        self._reopen()

    # -- reading -------------------------------------------------------------------------------------
    def questions(self, pool: str) -> list[QuestionRef]:
        """Return the questions of ``pool`` (``bank``, ``practice`` or ``drafts``) in file order, retired ones included."""
        self._pool(pool)
        out = []
        for (p, qid), (name, node) in self._index().items():
            if p != pool:
                continue
            text = node.get("text")
            out.append(QuestionRef(pool, qid, name, str(node.get("type", "")), str(node.get("section", "")),
                                   {k: str(v) for k, v in text.items()} if isinstance(text, CommentedMap) else {},
                                   bool(node.get("retired", False))))
        return out

    def question(self, pool: str, qid: str) -> dict:
        """Return the question as written (plain data: facts unresolved, keys as authored)."""
        return _plain(self._node(pool, qid))

    def file_of(self, pool: str, qid: str) -> str:
        """Return the file (relative to ``quizzes/``) holding the question."""
        return self._find(pool, qid)[0]

    def files_of(self, pool: str) -> list[str]:
        """Return the files of ``pool`` (relative to ``quizzes/``)."""
        self._pool(pool)
        return [n for n in self.files if _pool_of(n) == pool]

    def sections(self, pool: str) -> list[str]:
        """Return the section ids a question of ``pool`` may name: the blueprint's sections for the
        bank, the lesson ids for practice (plus any section already used)."""
        self._pool(pool)
        known = list(self.draws()) if pool != "practice" else [x.id for x in (self.playbook.lessons if self.playbook else [])]
        used = [r.section for r in self.questions(pool)]
        return list(dict.fromkeys(known + used))

    def section_label(self, pool: str, section: str, lang: str | None = None) -> str:
        """Return a section as a trainer reads it: the blueprint section's title (bank, drafts) or the lesson's
        number and title (practice), then its id in brackets; an unknown section as its id.

        >>> from sopcoach.config import PROJECT_ROOT
        >>> QuestionEdit(PROJECT_ROOT, home=Path(tempfile.mkdtemp())).section_label("bank", "crm_use", "zh-CN")
        'CRM使用（crm_use）'
        """
        title = None
        if pool == "practice":
            lesson = next((x for x in (self.playbook.lessons if self.playbook else []) if x.id == section), None)
            if lesson is not None and lesson.title is not None:
                title = f"{lesson.number}. {lesson.title.get(lang)}"
        elif BLUEPRINT in self.docs:
            for x in _plain(self.docs[BLUEPRINT]).get("exam", {}).get("sections", []) or []:
                if isinstance(x, dict) and x.get("id") == section and isinstance(x.get("title"), dict):
                    title = x["title"].get(lang or "zh-CN") or x["title"].get("zh-CN")
        if not title:
            return section
        return t(f"{title}（{section}）", f"{title} ({section})", lang)

    def facts(self) -> list[str]:
        """Return the playbook fact names a ``key_from``/``answer_from`` may name, sorted."""
        return sorted(self.playbook.facts()) if self.playbook else []

    def clause_ids(self) -> list[str]:
        """Return the playbook's clause ids in file order."""
        return [c.id for c in self.playbook.clauses] if self.playbook else []

    def clause_labels(self, lang: str) -> dict[str, str]:
        """Return ``{clause id: title in lang}`` in file order, each label unique (a title two clauses share
        gets the id after it), so a trainer picks clauses by title and the file keeps ids."""
        titles = [(c.id, c.title.get(lang)) for c in self.playbook.clauses] if self.playbook else []
        seen = Counter(title for _, title in titles)
        return {cid: title if seen[title] == 1 else f"{title} [{cid}]" for cid, title in titles}

    def texts(self) -> dict[str, str]:
        """Return ``{name: text}`` of every file as it would be saved now (names relative to ``quizzes/``)."""
        return {n: dump(self.docs[n], f.indent) if n in self._dirty and f.indent else f.text
                for n, f in self.files.items()}

    # -- editing ---------------------------------------------------------------------------------------
    @staticmethod
    def _pool(pool: str) -> None:
        if pool not in POOLS:
            raise EditError(f"pool is 'bank' (the certification exam), 'practice' (lessons) or 'drafts', not {pool!r}")

    def _find(self, pool: str, qid: str) -> tuple[str, CommentedMap]:
        self._pool(pool)
        hit = self._index().get((pool, qid))
        if hit is None:
            raise EditError(f"no question '{qid}' in quizzes/{pool}/")
        return hit

    def _node(self, pool: str, qid: str) -> CommentedMap:
        return self._find(pool, qid)[1]

    def _writable(self, name: str) -> None:
        if self.files[name].indent is None:
            raise EditError(f"quizzes/{name} cannot be edited here without reformatting it (ruamel.yaml does not "
                            "reproduce its layout exactly); edit it by hand and run `sopcoach check`")

    def _edit(self, pool: str, qid: str) -> tuple[str, CommentedMap]:
        name, node = self._find(pool, qid)
        self._writable(name)
        return name, node

    def _done(self, name: str, changed: bool) -> bool:
        if changed:
            self._dirty.add(name)
            self.generation += 1
        return changed

    def set_text(self, pool: str, qid: str, field: str, lang: str, value: str) -> bool:
        """Set a bilingual text (``text``, ``scenario``, ``explanation``, numeric ``unit``) in ``lang``.

        A blank optional text in both languages removes the field; a text missing in one language is
        written blank, and ``check`` reports it ("write the text in both zh-CN and en").

        Returns
        -------
        bool
            Whether anything changed.
        """
        if field not in TEXT_FIELDS or lang not in LANGS:
            raise EditError(f"a question's texts are {', '.join(TEXT_FIELDS)} in zh-CN/en (got {field!r}, {lang!r})")
        name, node = self._edit(pool, qid)
        new = str(value or "").strip()
        old = node.get(field)
        if not isinstance(old, CommentedMap):
            if not new:
                return False
            texts = {lang: new}
            return self._done(name, _assign(node, field, _bilingual(texts, flow=field == "unit"), ORDER))
        if not new and field != "text" and not any(str(old.get(x, "")).strip() for x in LANGS if x != lang):
            return self._done(name, _remove(node, field))
        if "\n" in new and not old.fa.flow_style():
            new = LiteralScalarString(new)
        return self._done(name, _assign(old, lang, new, LANGS))

    def set_field(self, pool: str, qid: str, field: str, value: Any) -> bool:
        """Set ``section``, ``points`` (> 0), ``key_from``/``answer_from`` (a playbook fact; ``None``
        or blank removes it), ``answer`` (a number for a numeric question, true/false for a
        true/false one; ``None`` removes it) or ``tolerance`` (>= 0; ``None`` removes it).

        Raises
        ------
        EditError
            For an unknown field, or a value that is not a number where a number is needed (nothing
            is changed then).
        """
        if field not in FIELDS:
            raise EditError(f"set_field sets {', '.join(FIELDS)} (got {field!r})")
        name, node = self._edit(pool, qid)
        blank = value is None or (isinstance(value, str) and not value.strip())
        if blank and field != "section":
            return self._done(name, _remove(node, field))
        if field in ("section", "key_from", "answer_from"):
            return self._done(name, _assign(node, field, str(value).strip(), ORDER))
        if field == "answer" and node.get("type") == "true_false":
            if not isinstance(value, bool) and str(value).strip().lower() not in ("true", "false"):
                raise EditError(f"the answer of a true/false question is true or false (got {value!r})")
            flag = value if isinstance(value, bool) else str(value).strip().lower() == "true"
            return self._done(name, _assign(node, field, flag, ORDER))
        number = _number(value, f"{field} of question '{qid}'")
        return self._done(name, _assign(node, field, number, ORDER))

    def set_clauses(self, pool: str, qid: str, clauses: str | Sequence[str]) -> bool:
        """Set the clause ids the question examines (a list, or text such as ``"a, b"``)."""
        name, node = self._edit(pool, qid)
        return self._done(name, _set_list(node, "clauses", _split_list(clauses), ORDER))

    def set_choices(self, pool: str, qid: str, choices: Sequence[dict], key: str = "options") -> bool:
        """Replace a question's ``options`` (or ordering ``items``/``distractors``) by ``choices``.

        Each choice is ``{"id", "text": {"zh-CN", "en"}, "correct": bool, "value": number or None,
        "pin": "last" or None}`` in display order (for ``items``: the correct order). An option kept
        (same id) is updated in place, so its comments stay; ``correct: false`` and empty values are
        left out of the file.
        """
        if key not in CHOICE_KEYS:
            raise EditError(f"choices are {', '.join(CHOICE_KEYS)} (got {key!r})")
        name, node = self._edit(pool, qid)
        seq = node.get(key)
        old = {str(o.get("id")): o for o in seq if isinstance(o, CommentedMap)} if isinstance(seq, CommentedSeq) else {}
        flow = any(isinstance(o.get("text"), CommentedMap) and o["text"].fa.flow_style() for o in old.values()) \
            if old else True
        changed = False
        nodes = []
        for c in choices:
            cid = str(c.get("id", "")).strip()
            item = old.get(cid)
            if item is None:
                item = CommentedMap([("id", cid), ("text", _bilingual(c.get("text"), flow))])
                changed = True
            else:
                text = item.get("text")
                if not isinstance(text, CommentedMap):
                    changed |= _assign(item, "text", _bilingual(c.get("text"), flow), OPTION_ORDER)
                else:
                    for lang in LANGS:
                        changed |= _assign(text, lang, str((c.get("text") or {}).get(lang, "")).strip(), LANGS)
            for field, val in (("correct", True if c.get("correct") else None),
                               ("value", None if c.get("value") in (None, "") else _number(c["value"], f"value of option '{cid}'")),
                               ("pin", c.get("pin") or None)):
                if key != "options" and field != "pin":
                    continue
                changed |= _remove(item, field) if val is None else _assign(item, field, val, OPTION_ORDER)
            nodes.append(item)
        if [str(o.get("id")) for o in nodes] != list(old):
            if isinstance(seq, CommentedSeq):
                del seq[:]
                seq.extend(nodes)
            else:
                changed |= _assign(node, key, CommentedSeq(nodes), ORDER)
            changed = True
        return self._done(name, changed)

    def retire(self, pool: str, qid: str, retired: bool = True) -> bool:
        """Retire a question (``retired: true``) or bring it back; it keeps its id, text and key.

        A retired question is never drawn or practised again, but attempts that drew it are still
        scored and shown and item statistics still find it (see the module docstring).
        """
        name, node = self._edit(pool, qid)
        return self._done(name, _assign(node, "retired", True, ORDER) if retired else _remove(node, "retired"))

    def set_draw(self, section: str, draw: Any) -> bool:
        """Set how many questions the exam draws from a blueprint section (a whole number >= 1).

        Raises
        ------
        EditError
            When ``draw`` is not a whole number (``2.5``) or there is no such section; nothing changes.
        """
        self._writable(BLUEPRINT)
        n = _whole(draw, f"draw of section '{section}'", "questions")
        for s in self.docs[BLUEPRINT]["exam"]["sections"]:
            if str(s.get("id")) == section:
                return self._done(BLUEPRINT, _assign(s, "draw", n, ("id", "title", "draw")))
        raise EditError(f"no section '{section}' in quizzes/{BLUEPRINT}")

    def add_question(self, pool: str, data: dict, file: str | None = None, after: str | None = None) -> str:
        """Add a question to ``pool``; return the file it went to (relative to ``quizzes/``).

        Parameters
        ----------
        data : dict
            The question as in a bank file: ``id``, ``type``, ``section``, ``clauses``, ``text``
            (``{"zh-CN", "en"}``), and per type ``options``/``key_from``, ``answer``/``answer_from``
            (+ ``tolerance``, ``unit``), ``items``; optional ``scenario``, ``explanation``.
        file : str, optional
            The file (``bank/crm_use.yaml``); default: the pool's file holding most questions of the
            section (else its first file).
        after : str, optional
            Insert after this question (default: after the last question of the section in the file,
            else at the end).

        Raises
        ------
        EditError
            When the id is taken (in either pool: ids are never reused) or the question is incomplete
            (every field named, as ``check`` would name it).
        """
        self._pool(pool)
        if isinstance(data.get("clauses"), str):
            data = {**data, "clauses": _split_list(data["clauses"])}
        qid = str(data.get("id", "")).strip()
        if not re.fullmatch(ID.strip("^$"), qid):
            raise EditError(f"id {qid!r}: letters, digits, '-', '_', '.', starting with a letter or digit")
        if any(key[1] == qid for key in self._index()):
            raise EditError(f"question id '{qid}' is already used; ids are never reused (attempts store answers "
                            "per id), pick a new one")
        try:
            _QUESTION.validate_python(data)
        except ValidationError as exc:
            raise EditError("the new question is incomplete: " + "; ".join(_schema_messages(exc))) from None
        files = self.files_of(pool)
        if file is None:
            counts = {n: sum(1 for r in self.questions(pool) if r.file == n and r.section == data.get("section"))
                      for n in files}
            file = max(files, key=lambda n: counts[n]) if counts and max(counts.values()) else (files[0] if files else None)
        if file not in files and pool == "drafts" and file is not None and _pool_of(file) == pool:
            self._create(file)
        elif file not in files:
            raise EditError(f"no file {file!r} in quizzes/{pool}/")
        self._writable(file)
        seq = self.docs[file]["questions"]
        ids = [str(q.get("id")) for q in seq]
        if after is not None:
            if after not in ids:
                raise EditError(f"no question '{after}' in quizzes/{file} to insert after")
            index = ids.index(after)
        else:
            same = [i for i, q in enumerate(seq) if q.get("section") == data.get("section")]
            index = same[-1] if same else len(seq) - 1
        if index < 0:
            seq.append(self._to_node(data))
        else:
            _insert_after(seq, index, self._to_node(data))
        self._done(file, True)
        return file

    def _create(self, name: str) -> None:
        """Start the new file ``name`` (a drafts file) in this session; :meth:`save` writes it."""
        doc = CommentedMap([("questions", CommentedSeq())])
        doc.yaml_set_start_comment(DRAFTS_HEADER)
        self.files[name] = OpenedFile(name, b"", "", sha256(b""), (2, 4, 2))
        self.docs[name] = doc
        self._created.add(name)

    @staticmethod
    def _to_node(data: dict) -> CommentedMap:
        node = CommentedMap()
        for key in ORDER + tuple(k for k in data if k not in ORDER):
            if key not in data or data[key] is None:
                continue
            value = data[key]
            if key in TEXT_FIELDS or key.startswith("feedback_"):
                value = _bilingual(value, flow=key == "unit")
            elif key == "clauses":
                value = CommentedSeq(_split_list(value))
                value.fa.set_flow_style()
            elif key in CHOICE_KEYS:
                items = []
                for c in value:
                    item = CommentedMap([("id", str(c["id"])), ("text", _bilingual(c.get("text"), flow=True))])
                    for f in ("correct", "value", "pin"):
                        if c.get(f) not in (None, False, ""):
                            item[f] = _number(c[f], f) if f == "value" else c[f]
                    items.append(item)
                value = CommentedSeq(items)
            elif key in ("answer", "tolerance", "points", "min", "max") and not isinstance(value, bool):
                value = _number(value, key)
            node[key] = value
        return node

    # -- checking and reviewing --------------------------------------------------------------------------
    def validate(self) -> list[Problem]:
        """Return what ``sopcoach check`` would report if the edits were saved (empty: valid).

        Paths are relative to the content folder (``quizzes/bank/crm_use.yaml:40:7: ...``), line
        numbers those of the files as they would be written.
        """
        return self._state()["problems"]

    def warnings(self) -> list[Problem]:
        """Return what ``sopcoach check`` would warn about if the edits were saved: an option that
        refers to the others without ``pin: last`` and, when nothing is wrong, the coverage and
        quality findings (a practice question too close to an exam question, an option much longer
        or shorter than its siblings, an examined clause no lesson teaches). Warnings never block a save."""
        return self._state()["warnings"]

    def _state(self) -> dict[str, Any]:
        return self._cached("state", lambda: evaluate_texts(self.content, self.texts(), "quizzes"))

    def resolved(self, pool: str, qid: str) -> tuple[Any, list[str]]:
        """Return ``(question, problems)``: the question as edited with its facts and key resolved
        against the playbook (what the learner sees; ``None`` when it does not load) and the
        problems of this question alone (``field: message``)."""
        node = self._node(pool, qid)
        with tempfile.TemporaryDirectory(prefix="sopcoach-question-") as tmp:
            path = Path(tmp) / "question.yaml"
            path.write_text(dump({"questions": [node]}), encoding="utf-8")
            try:
                bank = load_bank(path, self.playbook)
            except ContentError as exc:
                return None, [f"{p.field}: {p.message}" if p.field else p.message for p in exc.problems]
        return bank[qid], [f"{w.field}: {w.message}" for w in bank.warnings]

    def _attempts(self) -> dict[str, int]:
        """``{question id: number of exam attempts that drew it}`` (empty without records)."""
        if self.records is None:
            return {}
        counts: dict[str, int] = {}
        try:
            for a in self.records.attempts():
                for qid in a.question_ids or []:
                    counts[qid] = counts.get(qid, 0) + 1
        except Exception:
            return {}
        return counts

    def review(self, lang: str | None = None) -> QuestionReview:
        """Return the changes, their impact, the diff and the problems of the edits.

        Returns
        -------
        QuestionReview
            ``changes`` (per question: kind, fields, attempts that drew it, key before and after),
            ``sections`` (eligible counts per section before and after, with the blueprint's draw),
            ``diff`` (unified diff of each changed file, comments included), ``hints``,
            ``problems`` (``check``) and ``warnings`` (``check``'s warnings in the changed files).
        """
        return self._cached(f"review:{lang}", lambda: self._review(lang))

    def _review(self, lang: str | None) -> QuestionReview:
        changed = self.changed_files()
        if not changed:
            return QuestionReview((), (), (), (), "", ())
        problems = tuple(self.validate())
        new = {key: _plain(node) for key, (_n, node) in self._index().items()}
        attempts = self._attempts()
        state = self._state()
        base = self._cached("base", lambda: evaluate_texts(self.content, {n: f.text for n, f in self.files.items()},
                                                           "quizzes"))
        changes = []
        for key, q in new.items():
            pool, qid = key
            old = self._base.get(key)
            if old == q:
                continue
            if old is None:
                kind, fields = "added", ()
            else:
                fields = tuple(f for f in dict.fromkeys([*old, *q]) if old.get(f) != q.get(f))
                kind = ("retired" if q.get("retired") else "restored") if "retired" in fields else "edited"
            keys = []
            for st in (base, state):
                b = st.get(pool)
                keys.append(_key_text(b[qid], lang) if b is not None and qid in b.questions else "")
            changes.append(QuestionChange(pool, qid, kind, fields, attempts.get(qid, 0) if pool == "bank" else 0,
                                          keys[0], keys[1]))
        sections = self._sections(new, {c.pool for c in changes} | ({"bank"} if BLUEPRINT in changed else set()))
        diff = "\n".join(line for name in changed for line in difflib.unified_diff(
            self.files[name].text.splitlines(), self.texts()[name].splitlines(), f"quizzes/{name}", f"quizzes/{name}",
            n=2, lineterm=""))
        hints = []
        for s in sections:
            if s.short:
                hints.append(t(f"考试部分 {s.section} 抽取 {s.draw_after} 题,但只剩 {s.after} 道可用题目:请补充题目或降低抽题数。",
                               f"exam section {s.section} draws {s.draw_after} questions but has {s.after} in use: "
                               "add questions or lower its draw.", lang))
        before, after = sum(self._base_draws.values()), sum(self.draws().values())
        instructions = _plain(self.docs[BLUEPRINT]["exam"].get("instructions")) if BLUEPRINT in self.docs else None
        if before != after and isinstance(instructions, dict) and any(
                re.search(rf"(?<!\d){before}(?!\d)", str(x)) for x in instructions.values()):
            hints.append(t(f"考试现在共 {after} 题,但 blueprint.yaml 的考试说明仍写着 {before}:请同步修改说明。",
                           f"the exam now has {after} questions, but the instructions in blueprint.yaml still say "
                           f"{before}: edit them to match.", lang))
        for c in changes:
            if c.attempts and c.kind == "edited" and c.old_key != c.new_key:
                hints.append(t(f"{c.id} 已被 {c.attempts} 次考试抽到:改答案不会重新评分旧答卷;若题意已变,请停用此题并以新 id 新增。",
                               f"{c.id} was drawn in {c.attempts} attempt(s): changing its key does not re-score them; "
                               "if the question now asks something else, retire it and add it under a new id.", lang))
        touched = {f"quizzes/{n}" for n in changed}
        return QuestionReview(tuple(f"quizzes/{n}" for n in changed), problems, tuple(changes), tuple(sections), diff,
                              tuple(hints), tuple(w for w in self.warnings() if w.path in touched))

    def _sections(self, new: dict, pools: set[str]) -> list[SectionCount]:
        draws = self.draws()
        out = []
        for pool in POOLS:
            if pool not in pools:
                continue
            names = list(draws) if pool == "bank" else []
            names += [q.get("section") for (p, _), q in {**self._base, **new}.items() if p == pool]
            for section in dict.fromkeys(str(s) for s in names if s is not None):
                def count(qs: dict) -> int:
                    return sum(1 for (p, _), q in qs.items() if p == pool and str(q.get("section")) == section  # noqa: B023
                               and not q.get("retired"))
                row = SectionCount(pool, section, count(self._base), count(new),
                                   self._base_draws.get(section) if pool == "bank" else None,
                                   draws.get(section) if pool == "bank" else None)
                if (row.before, row.draw_before) != (row.after, row.draw_after):
                    out.append(row)
        return out

    # -- saving ----------------------------------------------------------------------------------------
    def save(self, note: str = "", by: str = "") -> tuple[str, ...]:
        """Write the edited files, keeping every ``quizzes/`` file on disk as a backup.

        Returns
        -------
        tuple of str
            The files written (``quizzes/bank/crm_use.yaml``); empty when nothing changed.

        Raises
        ------
        InvalidPlaybook
            When ``sopcoach check`` reports problems for the edited files (nothing is written).
        SaveConflict
            When a file changed on disk since it was opened (nothing is written; the edited files
            are kept in ``question-history/drafts/<id>/`` and in this session).
        ContentNotWritable
            When this process may not write ``quizzes/`` (nothing is written).
        """
        changed = self.changed_files()
        if not changed:
            return ()
        problems = self.validate()
        if problems:
            raise InvalidPlaybook(problems)
        texts = self.texts()
        review = self.review()
        now = self.clock()

        def checked(disk: dict[str, bytes]) -> dict[str, bytes]:
            mine = {n for n in disk if n == BLUEPRINT or _pool_of(n)}
            def moved_on_disk(n: str) -> bool:
                if n in self._created:  # a new file: someone else wrote it meanwhile
                    return n in disk
                return n not in disk or n not in self.files or sha256(disk[n]) != self.files[n].sha256
            moved = sorted(n for n in mine | set(self.files) if moved_on_disk(n))
            if moved:
                raise SaveConflict([f"quizzes/{n}" for n in moved], self._keep_draft(texts, changed, now))
            return {n: encode(texts[n], self.files[n].raw) for n in changed}

        backup = write_files(self.folder, self.home, checked, "save", note, by,
                             tuple(c.id for c in review.changes), now, prefix="quizzes/", store=STORE, recursive=True)
        self._reopen()
        return backup.changed if backup else ()


def existing_draft(data: dict, content: Path | str | None = None, home: Path | str | None = None) -> str | None:
    """Return the id of a draft (:data:`DRAFTS_FILE` pool) identical to ``data`` but for its id, or None.

    Drafting the same deviation twice would otherwise add the same question again under a new id.
    """
    s = settings(content, home)
    if not (Path(s.content) / "quizzes" / "drafts").is_dir():
        return None
    ed = QuestionEdit(s.content, s.home)

    def same(q: dict) -> str:
        return json.dumps({k: v for k, v in q.items() if k != "id"}, sort_keys=True, ensure_ascii=False, default=str)
    wanted = same(data)
    for ref in ed.questions("drafts"):
        if same(ed.question("drafts", ref.id)) == wanted:
            return ref.id
    return None


def save_draft(data: dict, content: Path | str | None = None, home: Path | str | None = None, by: str = "",
               note: str = "") -> str:
    """Add the question ``data`` to the trainers' drafts (:data:`DRAFTS_FILE`) and save it; return its id.

    The draft is checked like any question (``sopcoach check``) and written with the installation's
    lock and a backup in ``$SOPCOACH_HOME/question-history/``; ``quizzes/drafts/`` is created when
    missing. No exam or lesson reads it. An id already used in any pool gets a suffix (``-2``...).

    Raises
    ------
    EditError
        When the question is incomplete (every field named).
    InvalidPlaybook
        When ``check`` reports a problem with the draft (nothing is written).
    SaveConflict, ContentNotWritable
        As :meth:`QuestionEdit.save`.
    """
    s = settings(content, home)
    try:
        (Path(s.content) / "quizzes" / "drafts").mkdir(exist_ok=True)
    except PermissionError as exc:
        raise ContentNotWritable(t(f"无法保存草稿：本服务器没有写入 quizzes/ 的权限（{exc.strerror}）。",
                                   f"cannot save the draft: this server may not write quizzes/ ({exc.strerror}).")) from exc
    ed = QuestionEdit(s.content, s.home)
    used = {key[1] for key in ed._index()}
    qid, n = str(data.get("id", "")), 2
    base = qid
    while qid in used:
        qid, n = f"{base}-{n}", n + 1
    ed.add_question("drafts", {**data, "id": qid}, file=DRAFTS_FILE)
    ed.save(note or f"draft question {qid}", by)
    return qid


def open_questions(content: Path | str | None = None, home: Path | str | None = None,
                   records: Any = None) -> QuestionEdit:
    """Open an editing session on the installation's ``quizzes/`` (``SOPCOACH_CONTENT``, ``SOPCOACH_HOME``).

    ``records`` defaults to the installation's records store when its database exists (the review
    then counts the attempts that drew each question).
    """
    s = settings(content, home)
    if records is None:
        try:
            records = open_records(s)
        except Exception:
            records = None
    return QuestionEdit(s.content, s.home, records)

