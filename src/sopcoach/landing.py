"""Land ``/`` of the learner app on the learner home page (``home.ipynb``).

Voila in folder mode answers ``/`` with a listing of the notebooks. Standalone Voila has no option
for a landing page and no way to add a route, but it mounts the handlers of its (configurable)
identity provider before its own tree handler, and Tornado takes the first matching route. So
``--Voila.identity_provider_class=sopcoach.landing.LandingIdentityProvider`` (set by
:func:`sopcoach.server.voila_command`) adds one route for exactly ``/``; sign-in behaviour is the
default provider's, unchanged.

``/`` answers with a tiny page that sends the browser on to ``voila/render/home.ipynb`` (keeping
the query string, e.g. ``?lang=en``) by a meta refresh plus a plain link, rather than an HTTP
redirect: a program polling ``/`` for liveness gets a fast 200 and does not start a kernel. When
the served folder has no ``home.ipynb``, ``/`` lists the notebooks as before.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from jupyter_server.auth.identity import PasswordIdentityProvider
from voila.tornado.treehandler import TornadoVoilaTreeHandler

HOME = "home.ipynb"


class LandingHandler(TornadoVoilaTreeHandler):
    """``GET /``: send the browser to the home notebook, or list the folder when there is none."""

    async def get(self, path: str = "") -> None:
        root = Path(self.settings["contents_manager"].root_dir)
        if not (root / HOME).is_file():
            await super().get(path)
            return
        target = f"voila/render/{HOME}" + (f"?{self.request.query}" if self.request.query else "")
        safe_target = html.escape(target, quote=True)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(f'<!doctype html><html><head><meta charset="utf-8">'
                    f'<meta http-equiv="refresh" content="0; url={safe_target}"><title>sopcoach</title></head>'
                    f'<body><p><a href="{safe_target}">学习中心 · Learning centre</a></p></body></html>')


class LandingIdentityProvider(PasswordIdentityProvider):
    """Jupyter's default identity provider plus the landing route for ``/``."""

    def get_handlers(self) -> list[tuple[str, Any]]:
        conf = getattr(self.parent, "voila_configuration", None)
        extra: list[tuple[str, Any]] = []
        if conf is not None:
            extra.append((r"/", LandingHandler, {"voila_configuration": conf}))
        return extra + list(super().get_handlers())
