"""The monthly review's upload in headless Chromium, on the token-protected trainer server.

A manager uploads a simulated export whose follow-up file is several MB: the page shows a progress bar
per file that moves while the file arrives (name, %, MB), the export then loads as before, and the page
fetches nothing from outside the server (anywidget's code is served by Voila itself).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sopcoach.content.playbook import load_playbook
from sopcoach.crm.simulate import simulate
from sopcoach.ui.chunked_upload import CHUNK_BYTES
from support import ROOT, copy_content
from trainer_servers import trainer_server as run_trainer_server

pytestmark = pytest.mark.e2e
TIMEOUT = 90_000  # generous: CI has two cores
LOAD = 120_000

#: Records each progress row's state at every change of the upload control (the bar's moves).
WATCH = """() => {
  window.__rows = [];
  const el = document.querySelector('.sopcoach-review-upload');
  new MutationObserver(() => {
    for (const r of el.querySelectorAll('.sopcoach-upload-file')) {
      const p = r.querySelector('progress');
      window.__rows.push({name: r.querySelector('.sopcoach-upload-name').textContent, value: p.value, max: p.max,
                          text: r.querySelector('.sopcoach-upload-figures').textContent});
    }
  }).observe(el, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


@pytest.fixture
def export(tmp_path) -> list[Path]:
    """A simulated export of 6,000 deals: its follow-up file is about 7 MB (several upload slices)."""
    sim = simulate(load_playbook(ROOT / "playbook"), tmp_path / "export", seed=3, deals=6000, weeks=26)
    return list(sim.files)


@pytest.fixture
def trainer_server(tmp_path):
    content = copy_content(tmp_path, "review/monthly_review.ipynb", "trainer/question_editor.ipynb")
    with run_trainer_server(content, tmp_path) as server:
        yield server


def test_a_multi_mb_upload_shows_its_progress_and_loads(trainer_server, export, contexts, artifacts):
    base, token, _home = trainer_server
    big = max(export, key=lambda p: p.stat().st_size)
    assert big.stat().st_size > 3 * CHUNK_BYTES
    page = contexts.new().new_page()
    page.goto(f"{base}/voila/render/review/monthly_review.ipynb?token={token}", timeout=LOAD)
    page.locator(".sopcoach-upload-choose").wait_for(state="visible", timeout=LOAD)
    assert page.locator(".sopcoach-upload-choose").inner_text() == "选择文件上传"
    page.evaluate(WATCH)
    page.locator(".sopcoach-upload-input").set_input_files([str(p) for p in export])

    status = page.locator(".sopcoach-review .sopcoach-msg-info")
    status.get_by_text(f"已上传 {len(export)} 个文件").wait_for(timeout=TIMEOUT)
    rows = page.evaluate("window.__rows")
    moves = sorted({r["value"] for r in rows if r["name"] == big.name and 0 < r["value"] < r["max"]})
    assert len(moves) >= 2, rows  # the bar stood at two or more places between empty and full
    assert all(r["max"] == big.stat().st_size for r in rows if r["name"] == big.name)
    shown = page.locator(".sopcoach-upload-file").filter(has_text=big.name).inner_text()
    assert re.search(rf"100% · {big.stat().st_size / 1e6:.1f} / {big.stat().st_size / 1e6:.1f} MB", shown), shown
    middle = next(r["text"] for r in rows if r["name"] == big.name and r["value"] == moves[0])
    assert re.fullmatch(r"\d{1,2}% · \d+\.\d / \d+\.\d MB", middle), middle
    small = min(export, key=lambda p: p.stat().st_size)  # a file under 0.1 MB reads in KB, not "0.0 / 0.0 MB"
    assert small.stat().st_size < 1e5
    kb = f"{max(1, round(small.stat().st_size / 1e3)):,}"
    assert re.search(rf"100% · {kb} / {kb} KB", page.locator(".sopcoach-upload-file").filter(has_text=small.name).inner_text())
    page.screenshot(path=str(artifacts / "1-uploaded.png"), full_page=True)

    page.get_by_role("button", name="读取").click()
    status.get_by_text("已读取 6,000 个商机").wait_for(timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "2-loaded.png"), full_page=True)
    assert contexts.blocked == []
