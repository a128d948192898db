"""The demo cohort in the trainer's pages: ``sopcoach demo`` fills a data home, ``sopcoach serve --trainer``
shows it in Chromium (results with a deactivated leaver, certificates with recertification due)."""
from __future__ import annotations

from pathlib import Path

import pytest

from sopcoach.content.playbook import load_playbook
from sopcoach.records.store import Records
from support import ROOT, run_sopcoach
from trainer_servers import Trainer, serve_trainer


@pytest.fixture
def demo_trainer(tmp_path: Path):
    home = tmp_path / "home"
    made = run_sopcoach(["demo", "--seed", "7"], home)
    assert made.returncode == 0, made.stderr
    records = Records(f"sqlite:///{home / 'sopcoach.db'}")
    leaver = next(x.name for x in records.learners() if not x.active)
    records.dispose()
    with serve_trainer(ROOT, home, tmp_path) as trainer:  # the pages only read: the shipped content is safe
        trainer.leaver = leaver  # type: ignore[attr-defined]
        yield trainer


def test_demo_cohort_fills_the_trainer_pages(demo_trainer: Trainer, page, artifacts) -> None:
    """Results list the 24 demo learners, one of them deactivated; certificates show who must recertify
    after release 1.0 changed quote-limits, and one expired certificate."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 2400})
    page.goto(demo_trainer.url("/voila/render/trainer/results.ipynb"), timeout=180_000)
    expect(page.get_by_role("link", name="下载 Excel (XLSX)")).to_be_visible(timeout=180_000)
    expect(page.get_by_text("已停用", exact=True)).to_have_count(1)  # the leaver, still listed
    leaver = page.locator("tr", has=page.get_by_text("已停用", exact=True))
    expect(leaver).to_contain_text(demo_trainer.leaver)
    expect(page.locator("tr", has=page.get_by_text("D2001", exact=True))).to_contain_text("在职")
    page.screenshot(path=str(artifacts / "demo_results.png"), full_page=True)

    page.goto(demo_trainer.url("/voila/render/trainer/certificates.ipynb"), timeout=180_000)
    expect(page.get_by_role("button", name="生成 PDF")).to_be_visible(timeout=180_000)
    changed = next(c for c in load_playbook(ROOT / "playbook").clauses if c.id == "quote-limits")
    by_title = page.get_by_text(changed.title.get("zh-CN")).filter(visible=True)  # by title, not id
    expect(by_title.first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("quote-limits")).to_have_count(0)
    expect(page.get_by_text("company-setting")).to_have_count(0)
    expect(page.get_by_text("需复认证").first).to_be_visible()
    expect(page.get_by_text("已过期", exact=True)).to_have_count(1)
    page.screenshot(path=str(artifacts / "demo_certificates.png"), full_page=True)
