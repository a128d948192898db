"""The trainer home page's list (:mod:`sopcoach.web.trainer`): every trainer and review notebook, titled
and described in both languages from its first cell."""
from __future__ import annotations

import nbformat

from sopcoach.web.launch import trainer_site
from sopcoach.web.trainer import GROUPS, read_page, trainer_pages
from support import ROOT


def test_every_shipped_page_is_listed_once_with_both_titles(tmp_path):
    """The shipped pages appear once each, in the groups' order, each with a Chinese and an English title
    and description (no server-only note, no markdown backticks)."""
    site = trainer_site(ROOT / "notebooks", tmp_path / "site")
    groups = trainer_pages(site)
    paths = [p.path for _, pages in groups for p in pages]
    assert paths == [f"{s}.ipynb" for _, _, stems in GROUPS for s in stems]
    results = read_page(site, "trainer/results.ipynb")
    assert results.title == ("考试成绩", "Exam results")
    assert results.about[0].startswith("按团队、批次和日期筛选") and results.about[1].startswith("Filter by team")
    for _, pages in groups:
        for p in pages:
            assert all(p.title) and all(p.about), p
            assert not any("仅供培训师服务器使用" in a or "`" in a for a in p.about), p


def test_a_new_notebook_is_listed_under_more_pages(tmp_path):
    """A notebook a trainer adds to notebooks/trainer/ shows on the home page without code changes; one
    without the usual first cell is listed by its file name."""
    notebooks = tmp_path / "notebooks"
    (notebooks / "trainer").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# 团队看板 · Team board\n\n各团队进度。\n\nEach team's progress."))
    nbformat.write(nb, notebooks / "trainer" / "team_board.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), notebooks / "trainer" / "scratch_pad.ipynb")
    groups = trainer_pages(trainer_site(notebooks, tmp_path / "site"))
    assert [(g, [(p.path, p.title) for p in pages]) for g, pages in groups] == [
        (("更多页面", "More pages"), [("trainer/scratch_pad.ipynb", ("scratch pad", "scratch pad")),
                                     ("trainer/team_board.ipynb", ("团队看板", "Team board"))])]
