"""The question editor in headless Chromium, served by the token-protected trainer server.

A trainer finds an exam question, rewrites its stem, sees the learner's preview follow, reviews and
saves; the bank file on disk changes by that one line and the version before is kept; History
restores that version, and the form shows the stem as shipped again.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import requests

from sopcoach.authoring.question_edit import STORE
from sopcoach.authoring.yaml_writer import history
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank
from sopcoach.i18n import shown
from support import copy_content
from trainer_servers import trainer_server as run_trainer_server

pytestmark = pytest.mark.e2e
TIMEOUT = 90_000  # generous: CI has two cores
LOAD = 120_000
NEW_STEM = "本周对这家B类客户最少要跟进几次?"


@pytest.fixture
def content(tmp_path) -> Path:
    """A content folder for this test: playbook, quizzes and the question editor notebook."""
    return copy_content(tmp_path, "trainer/question_editor.ipynb")


@pytest.fixture
def trainer_server(content, tmp_path):
    """The trainer server on ``content``; yields (base_url, token, home); stopped by its pid."""
    with run_trainer_server(content, tmp_path) as server:
        yield server


def test_trainer_rewrites_a_stem_sees_the_preview_and_saves(trainer_server, content, page, artifacts):
    base, token, home = trainer_server
    name = content / "quizzes" / "bank" / "customer_management.yaml"
    shipped = name.read_text(encoding="utf-8")
    assert requests.get(f"{base}/voila/render/trainer/question_editor.ipynb", timeout=30,
                        allow_redirects=False).status_code in (302, 401, 403)

    page.goto(f"{base}/voila/render/trainer/question_editor.ipynb?token={token}", timeout=LOAD)
    page.locator(".sopcoach-q-preview").wait_for(state="visible", timeout=LOAD)
    page.locator(".sopcoach-q-search input").fill("cm-b-cadence")
    preview = page.locator(".sopcoach-q-preview")
    # the preview shows the stem as the learner sees it (full-width punctuation)
    preview.get_by_text(shown("按公司设定,本周对该客户至少要有几次跟进?", "zh-CN")).wait_for(timeout=TIMEOUT)
    assert "2次" in preview.inner_text() and "答案" not in page.locator(".sopcoach-q-key").inner_text()
    page.screenshot(path=str(artifacts / "1-question-and-preview.png"), full_page=True)

    stem = page.locator(".sopcoach-q-text-zh-CN textarea")
    stem.fill(NEW_STEM)
    stem.press("Tab")
    preview.get_by_text(shown(NEW_STEM, "zh-CN")).wait_for(timeout=TIMEOUT)
    page.locator(".sopcoach-q-show-key input").check()
    page.locator(".sopcoach-q-key b").get_by_text("2次", exact=True).wait_for(timeout=TIMEOUT)  # key_from: B-tier value
    page.screenshot(path=str(artifacts / "2-stem-edited-preview-follows.png"), full_page=True)

    page.locator(".sopcoach-q-review").click()
    page.locator(".sopcoach-q-results").get_by_text("考试题 cm-b-cadence [修改] 题干").wait_for(timeout=TIMEOUT)
    save = page.locator(".sopcoach-q-save")
    assert save.is_enabled()
    save.click()
    page.locator(".sopcoach-status").get_by_text("已保存：quizzes/bank/customer_management.yaml").wait_for(timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "3-saved.png"), full_page=True)

    saved = name.read_text(encoding="utf-8")
    changed = [x for x in difflib.unified_diff(shipped.splitlines(), saved.splitlines(), lineterm="", n=0)
               if x[:1] in "+-" and not x.startswith(("+++", "---"))]
    assert changed == ["-      zh-CN: 按公司设定,本周对该客户至少要有几次跟进?", f"+      zh-CN: {NEW_STEM}"]
    bank = load_bank(content / "quizzes" / "bank", load_playbook(content / "playbook"))
    assert bank["cm-b-cadence"].text.zh_CN == NEW_STEM
    (backup,) = history(home, STORE)
    assert (backup.folder / "bank" / "customer_management.yaml").read_text(encoding="utf-8") == shipped

    versions = page.locator(".sopcoach-versions select")
    assert "北京时间 · 保存前 · quizzes/bank/customer_management.yaml" in versions.inner_text().replace("\xa0", " ")
    page.locator(".sopcoach-restore-button").click()
    page.locator(".sopcoach-status").get_by_text("已恢复：quizzes/bank/customer_management.yaml").wait_for(timeout=TIMEOUT)
    preview.get_by_text(shown("按公司设定,本周对该客户至少要有几次跟进?", "zh-CN")).wait_for(timeout=TIMEOUT)
    assert stem.input_value() == "按公司设定,本周对该客户至少要有几次跟进?"
    page.screenshot(path=str(artifacts / "4-restored.png"), full_page=True)
    assert name.read_text(encoding="utf-8") == shipped
    assert [b.kind for b in history(home, STORE)] == ["restore", "save"]  # the restore can be undone

    # clauses are picked by title (typing offers the playbook's titles); the review names the change
    clauses = page.locator(".sopcoach-q-clauses")
    assert "B类与C类客户的最低跟进频率" in clauses.inner_text() and "follow-up-cadence" not in clauses.inner_text()
    clauses.click()  # (the tag input takes the keyboard when its box is clicked)
    page.keyboard.type("建立数据追踪机制")
    page.keyboard.press("Enter")
    clauses.get_by_text("建立数据追踪机制").wait_for(timeout=TIMEOUT)
    page.locator(".sopcoach-q-review").click()
    page.locator(".sopcoach-q-results").get_by_text("考试题 cm-b-cadence [修改] 依据条款").wait_for(timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "5-clause-picked-by-title.png"), full_page=True)
