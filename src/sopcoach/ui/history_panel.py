"""The "历史版本 / History" part of the playbook and question editors: saved versions and *Restore*.

Both editors keep the version on disk before every save (or restore) in a history folder below
``$SOPCOACH_HOME`` (:meth:`sopcoach.authoring.playbook_edit.EditSession.history`); this panel lists
them newest first, labelled with the time in the playbook calendar's zone, the kind, who, the files
written and the note, and restores the chosen one through the session
(:meth:`~sopcoach.authoring.playbook_edit.EditSession.restore`: refused while there are unsaved edits
or when the version's files do not load; the version replaced is kept, so a restore can be undone).
"""
from __future__ import annotations

from typing import Any, Protocol
from collections.abc import Callable

import ipywidgets as w

from ..authoring.playbook_edit import EditSession, SaveResult
from ..i18n import t
from ._common import esc, safe


class EditorApp(Protocol):
    """What the panel needs of its editor app."""

    lang: str
    by: str

    @property
    def ed(self) -> EditSession: ...

    def say(self, text: str, level: str = "info") -> None: ...


class HistoryPanel:
    """The versions dropdown (CSS class ``sopcoach-versions``), the restore button
    (``sopcoach-restore-button``) and a line of information (``history_info``), in ``root``.

    Parameters
    ----------
    app : EditorApp
        The editor: its session (``ed``), page language (``lang``), who restores (``by``) and
        ``say(text, level)`` for the outcome.
    after_restore : callable
        Called with the :class:`~sopcoach.authoring.playbook_edit.SaveResult` after a restore wrote
        files: the page shows the files as restored (the session has reopened them).
    """

    def __init__(self, app: EditorApp, after_restore: Callable[[SaveResult], None]):
        self.app = app
        self.lang = app.lang
        self.after_restore = after_restore
        self.versions = w.Dropdown(description=self.tr("版本", "Version"), layout=w.Layout(width="90%"))
        self.versions.add_class("sopcoach-versions")
        self.restore_button = w.Button(description=self.tr("恢复此版本", "Restore this version"), button_style="warning",
                                       icon="history", layout=w.Layout(width="auto", align_self="flex-start"))
        self.restore_button.add_class("sopcoach-restore-button")
        self.restore_button.on_click(self.on_restore)
        self.history_info = w.HTML()
        self.history_info.add_class("sopcoach-history-info")
        self.root = w.VBox([w.HTML(self.tr("<p>每次保存（或恢复）前，磁盘上的版本都会保存在这里。恢复前会先备份当前版本，"
                                           "所以恢复也可以撤销。</p>",
                                           "<p>Before every save (or restore) the version on disk is kept here. A restore "
                                           "backs up the current version first, so it can be undone.</p>")),
                            self.versions, self.restore_button, self.history_info])
        self.root.add_class("sopcoach-history")
        self.fill()

    def tr(self, zh: str, en: str) -> str:
        return t(zh, en, self.lang)

    def say(self, text: str, level: str = "info") -> None:
        self.app.say(text, level)

    def fill(self) -> None:
        """List the saved versions again, newest first (after a save or a restore), the newest chosen."""
        backups = self.app.ed.history()
        zone = self.app.ed.timezone
        self.versions.options = [(b.label(self.lang, zone), b.id) for b in backups]
        self.versions.value = backups[0].id if backups else None
        self.restore_button.disabled = not backups
        for control in (self.versions, self.restore_button):  # nothing to choose before the first save
            control.layout.display = "" if backups else "none"
        self.history_info.value = "" if backups else esc(self.tr("尚无保存记录。", "Nothing saved yet."))

    @safe
    def on_restore(self, _button: Any = None) -> None:
        """Restore the chosen version (refused while there are unsaved edits, or when it does not load)."""
        if not self.versions.value:
            return
        result = self.app.ed.restore(self.versions.value, by=self.app.by, lang=self.lang)
        self.fill()
        if result.written:
            self.after_restore(result)
            files = self.tr("、", ", ").join(result.written)
            self.say(self.tr(f"已恢复：{files}。恢复前的版本已备份（列表最上面一项），可恢复它来撤销。",
                             f"Restored: {files}. The version replaced is kept (at the top of the list); restore it "
                             "to undo."), "success")
        else:
            self.say(self.tr("该版本与当前文件相同，无需恢复。", "That version equals the files on disk; nothing to restore."),
                     "info")
