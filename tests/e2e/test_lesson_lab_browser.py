"""``sopcoach lab`` in headless Chromium: the Voila preview of a lesson notebook shows the learner's
view (one language, playbook facts filled in, the lesson's tool), and shows a trainer's edit at the
next preview.
"""
from __future__ import annotations

import re
import secrets
import sys

import nbformat
import pytest

from sopcoach.web.launch import free_port
from support import PAGE_LOAD_MS, copy_content
from trainer_servers import content_env, running

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab(tmp_path):
    """Run `sopcoach lab` on a copy of the shipped content; yield (base_url, token, content)."""
    content = copy_content(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    token, port = secrets.token_urlsafe(16), free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "sopcoach", "--content", str(content), "lab", "--port", str(port), "--token", token,
            "--lang", "zh-CN"]
    with running(argv, content_env(content, home), tmp_path / "lab.log", f"{base}/api/status?token={token}", 90):
        yield base, token, content


def test_the_voila_preview_shows_the_lesson_as_the_learner_sees_it(lab, contexts, artifacts):
    base, token, content = lab
    page = contexts.new().new_page()
    url = f"{base}/voila/render/lessons/03_authority.ipynb?token={token}"
    page.goto(url, timeout=PAGE_LOAD_MS)
    page.locator(".sopcoach-tool-approval").wait_for(timeout=PAGE_LOAD_MS)  # the tool ran in the preview kernel
    text = page.locator("body").inner_text()
    assert "销售代表可独立报价至100,000元、折扣不超过10%" in text  # facts filled in the zh-CN prose
    assert "{{" not in text and "Quote authority and approvals" not in text  # no placeholder, no en cell
    # as on the learner's page: no half-width , : ; ? ! next to Chinese (prose, clause cards, practice questions)
    half = re.findall(r".{0,8}(?:[\u4e00-\u9fff][,:;?!]|[,:;?!][\u4e00-\u9fff]).{0,8}", text)
    assert half == [], f"half-width punctuation next to Chinese in the preview: {half[:5]}"
    assert page.locator("[data-clause='quote-limits']").count() == 1  # clauses("...") placed the card
    page.screenshot(path=str(artifacts / "lab-preview-zh.png"), full_page=True)
    # the preview is in the learner's look (the company's header) and asks nothing outside the Lab's server
    assert page.locator(".sopcoach-header").count() == 1
    assert page.evaluate("document.fonts.check('16px \"Font Awesome 5 Free\"')") or \
        page.locator("link[href*='voila/fontawesome/css/all.min.css']").count() == 1
    assert contexts.blocked == [], f"the preview fetched from outside: {sorted(set(contexts.blocked))}"

    # The trainer edits the prose and quotes another fact; the next preview shows it filled in.
    path = content / "lessons" / "03_authority.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and "zh-CN" in c.metadata.get("tags", []))
    cell.source += "\n\n客户邮件须在{{sla.email_reply}}内回复。"
    nbformat.write(nb, path)
    page.goto(url, timeout=PAGE_LOAD_MS)
    page.locator(".sopcoach-tool-approval").wait_for(timeout=PAGE_LOAD_MS)
    text = page.locator("body").inner_text()
    assert "客户邮件须在" in text and "{{" not in text
