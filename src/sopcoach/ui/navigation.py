"""Addresses of the learner app's views and the in-app links between them."""
from __future__ import annotations

from typing import Any

from ..i18n import current_lang
from ._common import esc

#: The app's address prefix below the server's base URL.
APP_PREFIX = "learn/"


class Navigator:
    """Addresses of the app's views, for links inside them.

    Parameters
    ----------
    base : str
        The app's prefix, e.g. ``/learn/``.
    lessons : iterable
        The playbook's lessons (each with ``id`` and ``notebook``), to map a lesson to its view.

    Examples
    --------
    >>> class L: id, notebook = "process", "lesson_2_process.ipynb"
    >>> nav = Navigator("/learn/", [L()])
    >>> nav.route("lesson_2_process.ipynb"), nav.route("exam.ipynb"), nav.href("home.ipynb", "en")
    ('lessons/process', 'exam', '/learn/?lang=en')
    """

    def __init__(self, base: str = "/" + APP_PREFIX, lessons: Any = ()):
        self.base = base
        self._lessons = {x.notebook: x.id for x in lessons}

    def route(self, target: str) -> str:
        """Return the view path (below ``base``) of a page name or a view path."""
        if target in ("home.ipynb", "home", ""):
            return ""
        if target in ("exam.ipynb", "exam"):
            return "exam"
        if target in ("recertification.ipynb", "recertification"):
            return "recertification"
        if target in self._lessons:
            return f"lessons/{self._lessons[target]}"
        return target

    def href(self, target: str, lang: str | None = None) -> str:
        """Return the address of a view, with ``?lang=`` when ``lang`` is not the default language."""
        query = f"?lang={lang}" if lang and lang != current_lang() else ""
        return self.base + self.route(target) + query

    def link(self, target: str, label: str, css: str = "", lang: str | None = None) -> str:
        """Return an in-app link (the router switches the view instead of loading a page)."""
        return f'<a class="{esc(css)}" data-view href="{esc(self.href(target, lang))}">{esc(label)}</a>'
