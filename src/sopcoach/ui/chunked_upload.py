"""File upload in chunks, with a progress bar per file: the review app's upload control.

:class:`ChunkedUpload` is an `anywidget <https://anywidget.dev>`_ (its JavaScript is
``static/upload.js``; anywidget's labextension ships in its Python package, so Voila serves it
from the server and the page fetches nothing from elsewhere). The browser reads each chosen file
in slices of ``chunk_bytes`` and sends one slice at a time, as a binary buffer; the kernel appends
it to a temporary file in a private upload folder and answers with the bytes it holds, and only
then is the next slice sent. The progress bars show what the kernel has received (file name, %,
MB), so a 90 MB export shows its progress while it arrives, and the kernel holds one slice in
memory, never the file.

The protocol (browser -> kernel; nothing from the browser is trusted):

``{"type": "begin", "batch": str, "files": [{"name": str, "size": int}, ...]}``
    A new set of files. Refused as a whole (nothing is written) when a file is over
    ``max_bytes``, has a type not in ``accept``, or the set has more than :data:`MAX_FILES`
    files. An upload still arriving is interrupted (see below). Answer ``{"type": "go"}`` or
    ``{"type": "refused"}``.
``{"type": "chunk", "batch": str, "index": int, "offset": int}`` and one buffer
    The bytes of file ``index`` from ``offset``. Accepted only for the current batch, at the
    offset where the file's received bytes end, no longer than ``chunk_bytes`` and not past the
    declared size; anything else ends the batch with a message and nothing of it is used.
    Answer ``{"type": "ack", "index": int, "received": int}``; after the last byte of the last
    file, ``{"type": "done"}`` and the completed paths go to the ``on_complete`` callback.
``{"type": "cancel", "batch": str}``
    The person stopped the upload.

A file name is reduced to its last path component, stripped of control and path characters, and
made unique within the set; it keeps its extension (the export reader matches file names to its
tables). Files are written as ``<name>.part`` in a fresh sub-folder and renamed when complete; a set
is handed on only when every file has arrived. An interrupted or refused set removes its own
sub-folder only: the files of the last complete upload, and anything already read from them, stay.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import anywidget
import traitlets

from ..i18n import t
from ._common import log

_STATIC = Path(__file__).with_name("static")

#: Bytes per slice the browser sends (2 MiB: well under the Jupyter server's 10 MiB message limit).
CHUNK_BYTES = 2 * 1024 * 1024
#: The most files in one upload.
MAX_FILES = 50
#: The longest file name kept (characters, extension included).
MAX_NAME = 120
#: Characters kept in a file name besides letters and digits (any script).
_NAME_KEEP = re.compile(r"[^\w .()+,@=\-]", re.UNICODE)


def clean_name(name: Any, used: set[str] | None = None) -> str:
    """Return ``name`` made safe as a file name in the upload folder ("" when nothing usable is left).

    Keeps the last component of a ``/`` or ``\\`` path, NFC-normalised; drops control
    characters and any character other than letters, digits (any script), space and
    ``.()+,@=-_``; removes leading dots and spaces; shortens the stem so that the whole is at
    most :data:`MAX_NAME` characters. With ``used``, a name already in it gets `` (2)``, `` (3)``, ...
    before its extension (compared case-insensitively) and is added to it.

    Examples
    --------
    >>> clean_name("../../etc/passwd.csv"), clean_name("C:\\\\x\\\\商机 2025.csv"), clean_name("..")
    ('passwd.csv', '商机 2025.csv', '')
    """
    if not isinstance(name, str):
        return ""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = _NAME_KEEP.sub("_", name).strip().lstrip(". ")
    if not name:
        return ""
    stem, ext = os.path.splitext(name)
    ext = ext[:16]
    stem = stem[: MAX_NAME - len(ext) - 5]
    name = stem + ext
    if used is not None:
        n = 2
        while name.lower() in used:
            name = f"{stem} ({n}){ext}"
            n += 1
        used.add(name.lower())
    return name


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


@dataclass
class _Incoming:
    """One file of the batch arriving."""

    name: str  # the name on disk, and shown
    size: int
    received: int = 0
    handle: BinaryIO | None = field(default=None, repr=False)


class ChunkedUpload(anywidget.AnyWidget):
    """Choose files and send them in chunks, with a progress bar per file (see the module docstring).

    Parameters
    ----------
    lang : {"zh-CN", "en"}, optional
        The language of the control and its messages.
    accept : str
        File types offered and accepted, as in ``<input accept>``: extensions such as ``".csv,.xlsx"``.
    max_bytes : int
        The largest file accepted (bytes).
    folder : path-like, optional
        The private upload folder; default: a new one in the system temporary folder (mode 0700),
        removed when the widget is garbage-collected or the kernel exits.
    chunk_bytes : int
        The largest slice the browser sends (bytes).

    Attributes
    ----------
    paths : list of Path
        The files of the last complete upload (empty before one).
    """

    _esm = _STATIC / "upload.js"
    _css = _STATIC / "upload.css"
    accept = traitlets.Unicode(".csv,.xlsx").tag(sync=True)
    chunk_bytes = traitlets.Int(CHUNK_BYTES).tag(sync=True)
    max_bytes = traitlets.Int(1_000_000_000).tag(sync=True)
    texts = traitlets.Dict().tag(sync=True)
    #: one row per file of the batch: name, size, received (bytes), state (arriving, done, stopped)
    files: traitlets.List[dict] = traitlets.List().tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    level = traitlets.Unicode("info").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, lang: str = "zh-CN", accept: str = ".csv,.xlsx", max_bytes: int = 1_000_000_000,
                 folder: Path | str | None = None, chunk_bytes: int = CHUNK_BYTES, **kwargs: Any):
        self.lang = lang
        texts = {"choose": self.tr("选择文件上传", "Choose files to upload"), "cancel": self.tr("停止上传", "Stop"),
                 "lost": self.tr("与服务器的连接中断，上传未完成；已读取的数据不受影响。请重新加载页面后再上传。",
                                 "The connection to the server was lost and the upload did not finish; data already "
                                 "loaded is unaffected. Reload the page and upload again.")}
        super().__init__(accept=accept, max_bytes=max_bytes, chunk_bytes=chunk_bytes, texts=texts, **kwargs)
        if folder is None:
            folder = tempfile.mkdtemp(prefix="sopcoach-upload-")
            weakref.finalize(self, shutil.rmtree, folder, True)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.paths: list[Path] = []
        self._done_dir: Path | None = None  # the last complete batch's folder
        self._batch: str | None = None
        self._dir: Path | None = None
        self._incoming: list[_Incoming] = []
        self._complete: Callable[[list[Path]], Any] | None = None
        self._notice: Callable[[str, str], Any] | None = None
        self.on_msg(self._on_msg)

    def tr(self, zh: str, en: str) -> str:
        return t(zh, en, self.lang)

    def on_complete(self, callback: Callable[[list[Path]], Any]) -> None:
        """Call ``callback(paths)`` when every file of an upload has arrived (paths in the order chosen)."""
        self._complete = callback

    def on_notice(self, callback: Callable[[str, str], Any]) -> None:
        """Call ``callback(text, level)`` (level ``info``, ``warning``) with each message, besides showing it here."""
        self._notice = callback

    def say(self, text: str, level: str = "info") -> None:
        """Pass ``text`` to the ``on_notice`` callback; without one, show it under the progress bars."""
        if self._notice is not None:
            self._notice(text, level)
        else:
            self.message, self.level = text, level

    # ------------------------------------------------------------------------------- messages
    def _on_msg(self, _widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        try:
            if kind == "begin":
                self._begin(content)
            elif kind == "chunk":
                self._chunk(content, buffers)
            elif kind == "cancel" and self._batch is not None and content.get("batch") == self._batch:
                self._stop(self.tr("上传已停止", "Upload stopped"))
        except OSError:  # e.g. the disk is full
            log.exception("upload failed")
            if self._batch is not None:
                self._stop(self.tr("服务器无法保存上传的文件", "The server could not store the uploaded file"))

    def _begin(self, content: dict) -> None:
        batch, files = content.get("batch"), content.get("files")
        if not isinstance(batch, str) or not 0 < len(batch) <= 64 or not isinstance(files, list) or not files:
            return
        before = ""  # what happened to an upload still arriving
        if self._batch is not None:
            before = self._stop(self.tr("上一次上传被新的上传打断", "The previous upload was interrupted by a new one"),
                                say=False)
        if len(files) > MAX_FILES:
            return self._refuse(self.tr(f"一次最多上传 {MAX_FILES} 个文件。", f"Upload at most {MAX_FILES} files at a time."))
        used: set[str] = set()
        incoming, refusals = [], []
        exts = [e.strip().lower() for e in self.accept.split(",") if e.strip()]
        limit = self.max_bytes / 1e6
        for f in files:
            name = f.get("name") if isinstance(f, dict) else None
            size = f.get("size") if isinstance(f, dict) else None
            shown = clean_name(name) or "?"
            safe = clean_name(name, used)
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                refusals.append(self.tr(f"{shown}：大小未知", f"{shown}: unknown size"))
            elif size > self.max_bytes:
                refusals.append(self.tr(f"{shown}（{size / 1e6:,.1f} MB）超过上限 {limit:,.0f} MB",
                                        f"{shown} ({size / 1e6:,.1f} MB) is over the limit of {limit:,.0f} MB"))
            elif not safe or (exts and os.path.splitext(safe)[1].lower() not in exts):
                refusals.append(self.tr(f"{shown}：只接受 {self.accept} 文件", f"{shown}: only {self.accept} files are accepted"))
            else:
                incoming.append(_Incoming(safe, size))
        if refusals:
            return self._refuse(before + self.tr("未上传：", "Not uploaded: ") + self.tr("；", "; ").join(refusals)
                                + self.tr("。已读取的数据不受影响。", ". Data already loaded is unaffected."))
        self._batch, self._incoming = batch, incoming
        self._dir = Path(tempfile.mkdtemp(prefix="batch-", dir=self.folder))
        self._show()
        self.say(before + self.tr(f"正在上传 {len(incoming)} 个文件……", f"Uploading {_files(len(incoming))} ..."),
                 "warning" if before else "info")
        self.send({"type": "go", "batch": batch})
        self._finish_if_done()  # a set of empty files is complete at once

    def _chunk(self, content: dict, buffers: Any) -> None:
        if self._batch is None or content.get("batch") != self._batch:
            return  # a late chunk of a stopped upload: nothing to do
        index, offset = content.get("index"), content.get("offset")
        if (not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(self._incoming)
                or not buffers or len(buffers) != 1):
            self._stop(self.tr("收到无法识别的上传数据", "Unrecognised upload data arrived"))
            return
        f = self._incoming[index]
        data = memoryview(buffers[0]).cast("B")
        if offset != f.received or isinstance(offset, bool) or not 0 < len(data) <= self.chunk_bytes \
                or f.received + len(data) > f.size:
            self._stop(self.tr(f"{f.name} 的数据顺序不对", f"the data of {f.name} arrived out of order"))
            return
        assert self._dir is not None
        if f.handle is None:
            f.handle = open(self._dir / (f.name + ".part"), "xb")  # kept open from chunk to chunk
        f.handle.write(data)
        f.received += len(data)
        if f.received == f.size:
            self._close(f)
        self._show()
        self.send({"type": "ack", "batch": self._batch, "index": index, "received": f.received})
        self._finish_if_done()

    # ------------------------------------------------------------------------------- states
    def _close(self, f: _Incoming) -> None:
        assert self._dir is not None
        if f.handle is not None:
            f.handle.close()
            f.handle = None
            os.replace(self._dir / (f.name + ".part"), self._dir / f.name)
        else:  # an empty file
            (self._dir / f.name).touch()

    def _finish_if_done(self) -> None:
        if self._batch is None or self._dir is None or any(f.received < f.size for f in self._incoming):
            return
        for f in self._incoming:
            if not (self._dir / f.name).exists():
                self._close(f)
        old, self._done_dir = self._done_dir, self._dir
        self.paths = [self._dir / f.name for f in self._incoming]
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.send({"type": "done", "batch": self._batch})
        mb = sum(f.size for f in self._incoming) / 1e6
        self.say(self.tr(f"已收到 {len(self.paths)} 个文件（{mb:,.1f} MB）。", f"Received {_files(len(self.paths))} ({mb:,.1f} MB)."))
        self._batch, self._dir, self._incoming = None, None, []
        if self._complete is not None:
            self._complete(list(self.paths))

    def _show(self) -> None:
        self.files = [{"name": f.name, "size": f.size, "received": f.received,
                       "state": "done" if f.received == f.size else "arriving"} for f in self._incoming]

    def _refuse(self, text: str) -> None:
        self.send({"type": "refused"})
        self.say(text, "warning")

    def _stop(self, why: str, say: bool = True) -> str:
        """End the batch arriving: remove its folder; say (unless ``say`` is false) and return what arrived and
        that nothing loaded is lost."""
        arrived = [f for f in self._incoming if f.received == f.size]
        missing = [f for f in self._incoming if f.received < f.size]
        for f in self._incoming:
            if f.handle is not None:
                f.handle.close()
        self.files = [{"name": f.name, "size": f.size, "received": f.received,
                       "state": "done" if f.received == f.size else "stopped"} for f in self._incoming]
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self.send({"type": "stopped", "batch": self._batch})
        self._batch, self._dir, self._incoming = None, None, []
        parts = [self.tr(f"{f.name} 只收到 {f.received / 1e6:,.1f} / {f.size / 1e6:,.1f} MB",
                         f"{f.name} arrived {f.received / 1e6:,.1f} of {f.size / 1e6:,.1f} MB") for f in missing]
        kept = (self.tr("已读取的导出和上一次完整上传的文件保持不变", "the export already loaded and the files of the last "
                        "complete upload are unchanged") if self.paths else
                self.tr("已读取的数据保持不变", "data already loaded is unchanged"))
        text = self.tr(f"{why}：本次上传未完成，未使用（{'；'.join(parts) or '无'}；完整收到 {len(arrived)} 个文件）。"
                       f"{kept}。请重新上传。",
                       f"{why}: this upload is incomplete and not used ({'; '.join(parts) or 'none'}; "
                       f"{_files(len(arrived))} complete). {kept[0].upper() + kept[1:]}. Upload again. ")
        if say:
            self.say(text.strip(), "warning")
        return text
