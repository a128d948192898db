"""The ``sopcoach`` Voila template: every page of both servers in the company's look, asking nothing from outside.

The template (``share/voila/templates/sopcoach/`` next to this module) extends Voila's ``lab``
template. It gives each page:

- a header bar with the company's name (and logo) in its colours (:func:`sopcoach.config.look`);
- one ``<title>``, the page's title in the page's language: a trainer page's from its notebook's
  first cell (``# 中文 · English``, :func:`notebook_heading`), the learner page's "学习中心" until
  the page's router names the view; ``<html lang>`` is the page's language (``?lang=en`` of the
  address, else the server's ``SOPCOACH_LANG``), set before the page is drawn;
- a trainer notebook's heading and description in the page's language only (not both);
- the loading text in the page's language;
- Font Awesome from this server (:data:`FONT_AWESOME_ROUTE`, the ``fontawesome-free`` package),
  not Voila's public CDN, so the browser fetches nothing from outside the server;
- the pages' stylesheet (``static/sopcoach.css``): readable at 360 px wide, a visible focus outline.

The learner page's HTML is rendered before the learner asks for it (a preheated kernel), so the
page's language is applied in the browser: the template carries both languages' texts and picks
one from the address.

:func:`use_sopcoach_template` makes a server use it; the servers call it before Voila reads its
templates, and the servers' command lines name it (``--VoilaConfiguration.template=sopcoach``,
:func:`sopcoach.web.launch.voila_command`).
"""
from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from voila import notebook_renderer

from ..config import Look, look
from ..i18n import current_lang
from .launch import TEMPLATE
from .serving import CachedVoilaExporter

__all__ = ["FONT_AWESOME_ROUTE", "TEMPLATE", "TEMPLATE_ROOT", "LookExporter", "font_awesome_dir", "font_awesome_handlers",
           "notebook_heading", "use_sopcoach_template"]

#: A Jupyter data folder holding ``voila/templates/sopcoach/``, put first on ``JUPYTER_PATH``.
TEMPLATE_ROOT = Path(__file__).with_name("share")
#: Where the servers serve Font Awesome (``css/``, ``webfonts/``) below their base URL.
FONT_AWESOME_ROUTE = "voila/fontawesome/"
#: The learner page's title until its router names the view (zh-CN, en).
LEARNER_TITLE = ("学习中心", "Learning centre")


def font_awesome_dir() -> str | None:
    """Return the folder holding Font Awesome's ``css/`` and ``webfonts/``, or ``None`` if not installed."""
    try:
        folder = distribution("fontawesome-free").locate_file("fontawesome-free/static/fontawesome_free")
    except PackageNotFoundError:
        return None
    return str(folder) if (Path(str(folder)) / "css" / "all.min.css").is_file() else None


def font_awesome_handlers(base_url: str) -> list[tuple]:
    """Return the tornado route serving Font Awesome at :data:`FONT_AWESOME_ROUTE` below ``base_url``
    (empty when the ``fontawesome-free`` package is missing): the same for the learner server, the
    trainer server and the Lab's preview, so no page asks a CDN."""
    from jupyter_server.utils import url_path_join  # noqa: PLC0415 - with the servers only
    from tornado import web  # noqa: PLC0415

    folder = font_awesome_dir()
    return [(url_path_join(base_url, FONT_AWESOME_ROUTE + "(.*)"), web.StaticFileHandler, {"path": folder})] if folder else []


def notebook_heading(source: str) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """Return ``((title zh-CN, title en), (about zh-CN, about en))`` of a notebook's first markdown cell.

    The cell is ``# 中文标题 · English title`` followed by a Chinese and an English paragraph (a
    missing paragraph is ``""``; a title without `` · `` is both languages' title). ``None`` when the
    cell does not start with a ``#`` heading.

    Examples
    --------
    >>> notebook_heading("# 考试成绩 · Exam results\\n\\n按团队筛选。\\n\\nFilter by team.")
    (('考试成绩', 'Exam results'), ('按团队筛选。', 'Filter by team.'))
    >>> notebook_heading("Some text") is None
    True
    """
    blocks = [b.strip() for b in source.split("\n\n") if b.strip()]
    if not blocks or not blocks[0].startswith("#"):
        return None
    zh, _, en = blocks[0].lstrip("#").strip().partition(" · ")
    texts = blocks[1:3] if len(blocks) >= 3 else ["", ""]
    return (zh.strip(), (en or zh).strip()), (texts[0], texts[1])


def page_titles(nb: Any, name: str) -> tuple[str, str]:
    """Return a page's ``<title>`` (zh-CN, en): its notebook's heading, the learner page's, else ``name``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = notebook_heading(cell.source)
            if heading is not None:
                return heading[0]
            break
    return LEARNER_TITLE if name == "app" else (name, name)


def template_globals() -> dict[str, Any]:
    """Return what the template reads besides the notebook: the look, the default language, Font Awesome.

    Raises
    ------
    ConfigError
        When the look's settings are unusable (:func:`sopcoach.config.look`).
    """
    company = look()
    return {
        "sopcoach_look": company,
        "sopcoach_lang": current_lang(),
        "sopcoach_font_awesome": font_awesome_dir() is not None,
        "sopcoach_font_awesome_route": FONT_AWESOME_ROUTE,
        "sopcoach_titles": page_titles,
        "sopcoach_heading": notebook_heading,
    }


class LookExporter(CachedVoilaExporter):
    """Voila's exporter (templates compiled once per server) whose templates see :func:`template_globals`."""

    #: Read once per server process (the look does not change while it runs).
    _globals: dict[str, Any] | None = None

    def _create_environment(self) -> Any:
        env = super()._create_environment()
        if LookExporter._globals is None:
            LookExporter._globals = template_globals()
        env.globals.update(LookExporter._globals)
        return env


def use_sopcoach_template() -> Look:
    """Make this process's Voila find the ``sopcoach`` template and render with :class:`LookExporter`.

    Puts :data:`TEMPLATE_ROOT` first on ``JUPYTER_PATH`` (where Voila and nbconvert look for
    templates and their static files) and reads the look once, so that unusable settings stop the
    server at start (``ConfigError``) rather than at the first page.
    """
    root = str(TEMPLATE_ROOT)
    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([root, *paths])
    LookExporter._globals = template_globals()
    notebook_renderer.VoilaExporter = LookExporter
    return LookExporter._globals["sopcoach_look"]
