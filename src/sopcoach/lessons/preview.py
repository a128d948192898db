"""The Voila preview of a lesson notebook as the learner sees it (``sopcoach lab``).

JupyterLab's Voila preview renders a notebook through :class:`voila.exporter.VoilaExporter`, which
runs the nbconvert preprocessors configured as ``VoilaExporter.preprocessors``. ``sopcoach lab``
configures :class:`LessonPreview`: in a lesson notebook (one with the setup cell) it keeps the
markdown cells of the preview language only, renders them as the learner app does (facts filled,
markdown converted, raw HTML escaped) and drops the ``facts()`` cells, which the learner never sees.
Other notebooks pass unchanged.
"""
from __future__ import annotations

from typing import Any

from nbconvert.preprocessors import Preprocessor
from traitlets import Unicode

from ..config import load_content
from ..i18n import current_lang, zh_html
from .notebook import FACT, SETUP, Prose, prose_html


class LessonPreview(Preprocessor):
    """Turn a lesson notebook into the learner's view in ``lang`` before Voila runs it."""

    lang = Unicode(help="The preview language, zh-CN or en (default: SOPCOACH_LANG, else zh-CN)").tag(config=True)

    def preprocess(self, nb: Any, resources: Any) -> tuple[Any, Any]:
        """Return the notebook with the other language's prose and the facts() cells left out."""
        if not any(c.cell_type == "code" and c.source.strip() == SETUP for c in nb.cells):
            return nb, resources
        playbook = load_content().playbook
        lang = self.lang or current_lang()
        kept = []
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                if lang not in cell.get("metadata", {}).get("tags", []):
                    continue
                try:
                    html = prose_html(playbook, Prose(0, lang, cell.source), lang)
                    cell.source = html if lang == "en" else zh_html(html)  # as the learner's page shows it
                except KeyError as exc:  # show the trainer where, instead of a broken preview
                    cell.source = FACT.sub(lambda m: f"**⚠ unknown fact {m.group(1)}**", cell.source)
                    self.log.warning("lesson preview: unknown fact %s", exc)
            elif cell.cell_type == "code":
                if cell.source.strip().splitlines()[-1:] == ["facts()"]:
                    continue
                cell.outputs = []
            kept.append(cell)
        nb.cells = kept
        return nb, resources
