"""The trainer server: Voila on the trainer and review notebooks, with a trainer home page at ``/``.

``python -m sopcoach.web.trainer ROOT [voila options]`` (built by
:func:`sopcoach.web.launch.trainer_command`) runs :class:`TrainerServer`: Voila's own application
whose ``/`` is :class:`TrainerHomeHandler` instead of Voila's file list. The home page lists every
page of the server (each notebook of ``trainer/`` and ``review/``) under what a trainer does with
it, with its title and description in the page's language (``?lang=en``; taken from the notebook's
first cell, ``# 中文标题 · English title`` then a Chinese and an English paragraph), and links that
keep the language. It answers only with the server's token (or, behind JupyterHub, the Hub's
login), like every other route.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import nbformat
from jupyter_server.utils import url_escape, url_path_join
from tornado import web
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from ..i18n import LANGS, t
from .launch import TRAINER_FOLDERS, quiet_traitlets_notices
from .look import font_awesome_handlers, notebook_heading, use_sopcoach_template

_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
                                autoescape=True)

#: What a trainer does, in the order of the home page: (zh-CN, en, pages as folder/name stems).
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("学员与认证", "Learners and certification", ("trainer/results", "trainer/certificates", "trainer/item_analysis")),
    ("课程内容", "Course content", ("trainer/question_editor", "trainer/playbook_editor", "trainer/playbook_changes")),
    ("月度复盘", "Monthly review", ("review/monthly_review",)),
)
#: Sentences of a notebook's description that say where it runs: left out on the home page.
_SERVER_ONLY = ("仅供培训师服务器使用。", "Trainer server only.", "For the trainer's server only.")


@dataclass(frozen=True)
class TrainerPage:
    """One page of the trainer server: its notebook path below the root and its bilingual texts."""

    path: str
    title: tuple[str, str]
    about: tuple[str, str]


def read_page(root: Path, path: str) -> TrainerPage:
    """Return the title and description of the notebook ``root/path`` from its first markdown cell.

    The cell is ``# 中文 · English`` followed by a Chinese and an English paragraph; a notebook
    written otherwise gets its file name as title and no description (it is still listed).
    """
    stem = Path(path).stem.replace("_", " ")
    try:
        nb = nbformat.read(root / path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "markdown")
    except (OSError, ValueError, StopIteration):
        return TrainerPage(path, (stem, stem), ("", ""))
    title, about = notebook_heading(cell.source) or ((stem, stem), ("", ""))
    texts = list(about)
    for sentence in _SERVER_ONLY:
        texts = [x.replace(sentence, "").strip() for x in texts]
    texts = [x.replace("`", "") for x in texts]  # markdown code spans read as plain words on a card
    return TrainerPage(path, title, (texts[0], texts[1]))


def trainer_pages(root: Path) -> list[tuple[tuple[str, str], list[TrainerPage]]]:
    """Return the home page's groups with their pages: :data:`GROUPS` in order, then any other notebook
    of the served folders under "More pages"."""
    found = sorted(str(p.relative_to(root)) for name in TRAINER_FOLDERS if (root / name).is_dir()
                   for p in (root / name).glob("*.ipynb"))
    listed: set[str] = set()
    groups: list[tuple[tuple[str, str], list[TrainerPage]]] = []
    for zh, en, stems in GROUPS:
        pages = [read_page(root, f"{s}.ipynb") for s in stems if f"{s}.ipynb" in found]
        listed.update(p.path for p in pages)
        if pages:
            groups.append(((zh, en), pages))
    rest = [read_page(root, p) for p in found if p not in listed]
    if rest:
        groups.append((("更多页面", "More pages"), rest))
    return groups


class TrainerHomeHandler(TornadoVoilaTreeHandler):
    """``GET /``: the trainer home page (see the module docstring); authenticated like Voila's tree."""

    @web.authenticated
    async def get(self, path: str = "") -> None:
        lang = self.get_argument("lang", "zh-CN")
        lang = lang if lang in LANGS else "zh-CN"
        root = Path(self.contents_manager.root_dir)
        query = "?lang=en" if lang == "en" else ""
        groups = [(t(zh, en, lang), [{"title": t(*p.title, lang), "about": t(*p.about, lang),
                                      "href": url_path_join(self.base_url, "voila/render", url_escape(p.path)) + query}
                                     for p in pages])
                  for (zh, en), pages in trainer_pages(root)]
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(_TEMPLATES.get_template("trainer_home.html").render(
            lang=lang, groups=groups, other_lang="zh-CN" if lang == "en" else "en",
            other_label=t("English", "中文", lang), home=self.base_url,
            title=t("培训师主页", "Trainer home", lang),
            intro=t("销售操作规程的培训、认证与复盘：选择要做的事。每个页面都可用右上角的链接切换中英文。",
                    "Training, certification and reviews of the sales SOP: pick what to do. Each page switches "
                    "between Chinese and English with the link at its top right.", lang)))


class TrainerPageHandler(TornadoVoilaHandler):
    """A trainer page (Voila's own handler) that also sets the ``_xsrf`` cookie.

    The page's shutdown beacon (sent when the page closes) carries that cookie's token; without it
    jupyter_server refuses the shutdown (403, voila#1458) and the page's kernel lives on until the
    culler stops it.
    """

    @web.authenticated
    async def get(self, path: str | None = None) -> None:
        self.xsrf_token  # noqa: B018 - sets the _xsrf cookie the page's shutdown beacon sends
        await super().get(path)


class TrainerServer(Voila):
    """Voila's application with the trainer home page at ``/`` and no outside requests (see the module docstring)."""

    name = "sopcoach-trainer-server"

    def initialize(self, argv: Any = None) -> None:
        _TEMPLATES.globals["look"] = use_sopcoach_template()  # before Voila looks for its template
        super().initialize(argv)

    def init_handlers(self) -> list:
        handlers = super().init_handlers()
        home = (self.server_url, TrainerHomeHandler, {"voila_configuration": self.voila_configuration})
        handlers = [(route, TrainerPageHandler if handler is TornadoVoilaHandler else handler, *rest)
                    for route, handler, *rest in handlers]
        fonts = font_awesome_handlers(self.server_url)
        return [home, *fonts, *handlers]


def main(argv: list[str] | None = None) -> None:
    """Run the trainer server (``python -m sopcoach.web.trainer ROOT [voila options]``)."""
    quiet_traitlets_notices()
    TrainerServer.launch_instance(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

