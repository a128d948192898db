"""The sopcoach look in JupyterLab's Voila preview (``sopcoach lab``), asking nothing from outside.

A Jupyter server extension: ``sopcoach lab`` enables it
(``--ServerApp.jpserver_extensions={'sopcoach.web.lab': True}``) and names the ``sopcoach`` template
(``--VoilaConfiguration.template=sopcoach``). Loaded into the Lab's server, it makes Voila's preview
render with :func:`sopcoach.web.look.use_sopcoach_template` (the company's header, the page's
language) and serves Font Awesome from the Lab's own server at :data:`~sopcoach.web.look.FONT_AWESOME_ROUTE`,
so that a trainer's preview looks like the learner's page and fetches nothing from a CDN (Voila's
``lab`` template links Font Awesome from jsDelivr).
"""
from __future__ import annotations

from typing import Any

from .look import font_awesome_handlers, use_sopcoach_template


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "sopcoach.web.lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Use the sopcoach template for Voila's preview and serve Font Awesome below the server's base URL.

    Raises
    ------
    ConfigError
        When the look's settings are unusable (the Lab does not start; the message names the setting).
    """
    use_sopcoach_template()
    web_app = serverapp.web_app
    # Voila's page would load MathJax from cdnjs to typeset rendered markdown; learner pages show no
    # TeX (lesson prose is rendered to HTML, sopcoach.lessons.notebook), so the preview typesets none
    web_app.settings["mathjax_url"] = ""
    web_app.add_handlers(".*$", font_awesome_handlers(web_app.settings["base_url"]))
