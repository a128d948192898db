"""The one writer of YAML content: a file lock, a backup of the version before, an atomic replace.

Every tool that rewrites a playbook file goes through :func:`write_files` (the playbook editor's
save and restore) or :func:`update_yaml` (``sopcoach release --label``, the trainer app's release
button, via :func:`sopcoach.authoring.versions.set_sop_version`):

* **Lock**: an exclusive ``fcntl.flock`` on ``$SOPCOACH_HOME/playbook-history/.lock`` is held from
  reading the files on disk to the last write, so two trainer kernels or commands that write at
  once never lose each other's change (the second reads what the first wrote).
* **Backup**: every file of the folder as it is on disk is copied to
  ``$SOPCOACH_HOME/playbook-history/<id>/`` with a ``manifest.json`` (when, kind, who, why, the
  files' SHA-256) before anything is written; :func:`history` lists them, newest first, and
  :func:`sopcoach.authoring.playbook_edit.restore` puts one back.
* **Atomic write**: each file is written to a temporary sibling and moved over the original with
  :func:`os.replace`; a reader sees the old bytes or the new ones, never half a file.
* **Round trip**: :func:`round_trip_yaml` is ruamel.yaml's round-trip mode (comments, key order,
  quoting, flow style and blank lines survive; lines are never re-wrapped; :class:`~decimal.Decimal`
  is written as an exact plain number). The new text is produced before anything is written, so a
  value that cannot be represented raises and leaves the file and the history untouched.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo
from collections.abc import Callable, Iterator, Mapping, Sequence

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.representer import RoundTripRepresenter

from ..content.yaml_loader import load_yaml
from ..errors import ContentNotWritable
from ..i18n import t, zone_name

__all__ = ["HISTORY", "INDENTS", "MANIFEST", "Backup", "decode", "dump", "encode", "history", "load_round_trip",
           "round_trip_yaml", "sha256", "update_yaml", "write_files", "writer_lock"]

#: The folder below ``$SOPCOACH_HOME`` that holds the backups (and the lock file).
HISTORY = "playbook-history"
#: The backup's description, inside each backup folder.
MANIFEST = "manifest.json"
#: Indentation styles tried, in order, until one reproduces a file byte for byte.
INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (2, 4, 0))


# -- YAML round trip --------------------------------------------------------------------------------------
class _Representer(RoundTripRepresenter):
    """Round-trip representer that writes :class:`~decimal.Decimal` as a plain, exact number."""


def _represent_decimal(rep: RoundTripRepresenter, value: Decimal) -> Any:
    if value == value.to_integral_value():
        return rep.represent_int(int(value))
    return rep.represent_scalar("tag:yaml.org,2002:float", format(value.normalize(), "f"))


def _represent_date(rep: RoundTripRepresenter, value: date) -> Any:
    return rep.represent_scalar("tag:yaml.org,2002:timestamp", value.isoformat())


_Representer.add_representer(Decimal, _represent_decimal)
_Representer.add_representer(date, _represent_date)


def round_trip_yaml(indent: tuple[int, int, int] = (2, 4, 2)) -> YAML:
    """Return a ruamel.yaml round-trip loader/dumper with ``indent`` = (mapping, sequence, offset)."""
    y = YAML(typ="rt")
    y.Representer = _Representer
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a trainer's long line
    y.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return y


def dump(doc: Any, indent: tuple[int, int, int] = (2, 4, 2)) -> str:
    """Return ``doc`` (round-trip data) as YAML text.

    Raises
    ------
    ruamel.yaml.representer.RepresenterError
        When a value cannot be represented in YAML (nothing is written anywhere).
    """
    buf = io.StringIO()
    round_trip_yaml(indent).dump(doc, buf)
    return buf.getvalue()


def load_round_trip(text: str) -> tuple[Any, tuple[int, int, int] | None]:
    """Return ``(doc, indent)``: the round-trip data and the indentation that reproduces ``text``
    byte for byte (``None`` when none does: writing it back would reformat untouched lines).

    Raises
    ------
    ruamel.yaml.YAMLError
        When ``text`` is not YAML, or when :func:`~sopcoach.content.yaml_loader.load_yaml` refuses it
        (an alias bomb: ruamel would expand it without bound).
    """
    checked = load_yaml("<text>", text)
    if checked.data is None and checked.problems:
        raise YAMLError(str(checked.problems[0]))
    doc = None
    for candidate in INDENTS:
        doc = round_trip_yaml(candidate).load(text)
        if dump(doc, candidate) == text:
            return doc, candidate
    return round_trip_yaml().load(text), None


def sha256(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def decode(raw: bytes) -> str:
    """Decode a YAML file as ``load_yaml`` does (UTF-8, BOM dropped) with ``\\n`` line ends."""
    return raw.decode("utf-8-sig").replace("\r\n", "\n")


def encode(text: str, like: bytes) -> bytes:
    """Encode ``text`` with the BOM and line ends of the original bytes ``like``."""
    if b"\r\n" in like:
        text = text.replace("\n", "\r\n")
    data = text.encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if like.startswith(b"\xef\xbb\xbf") else data


# -- history ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backup:
    """A saved previous version of the playbook folder (``$SOPCOACH_HOME/playbook-history/<id>/``).

    ``files`` are every playbook file as it was on disk before the write; ``changed`` those the write
    then replaced; ``kind`` is ``save``, ``restore`` or ``release``.
    """

    id: str
    folder: Path
    created_at: datetime
    kind: str
    files: tuple[str, ...]
    changed: tuple[str, ...]
    clauses: tuple[str, ...]
    note: str
    by: str

    def label(self, lang: str | None = None, timezone: str | None = None) -> str:
        """Return a one-line description for a picker: time, kind, who, files written, note.

        ``timezone`` (IANA, the playbook calendar's) gives the time in that zone, named
        (``2026-12-07 09:30:05 北京时间 · 保存前 · trainer-1 · quizzes/bank/crm_use.yaml — note``);
        without it, the server's local time. ``who`` is left out when unknown.
        """
        if timezone:
            when = f"{self.created_at.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M:%S} {zone_name(timezone, lang)}"
        else:
            when = f"{self.created_at.astimezone():%Y-%m-%d %H:%M:%S}"
        what = {"restore": t("恢复前", "before restore", lang),
                "release": t("发布前", "before release", lang)}.get(self.kind, t("保存前", "before save", lang))
        files = t("、", ", ", lang).join(self.changed) or "-"
        note = f" — {self.note}" if self.note else ""
        return " · ".join(x for x in (when, what, self.by, files) if x) + note


def history_dir(home: Path | str, store: str = HISTORY) -> Path:
    """Return ``$SOPCOACH_HOME/<store>`` (default ``playbook-history``; the question editor's is
    ``question-history``)."""
    return Path(home) / store


def new_id(folder: Path, now: datetime) -> str:
    """Return a folder name for ``now`` (UTC, microseconds) not yet used in ``folder``."""
    base = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    ident, n = base, 1
    while (folder / ident).exists():
        n += 1
        ident = f"{base}-{n}"
    return ident


def history(home: Path | str, store: str = HISTORY) -> list[Backup]:
    """Return the saved previous versions, newest first.

    Parameters
    ----------
    home : path-like
        ``SOPCOACH_HOME``; versions live in ``<store>/`` below it (default ``playbook-history/``).
    """
    folder = history_dir(home, store)
    out: list[Backup] = []
    if not folder.is_dir():
        return out
    for sub in folder.iterdir():
        meta = sub / MANIFEST
        if not (sub.is_dir() and meta.is_file()):
            continue
        try:
            m = json.loads(meta.read_text(encoding="utf-8"))
            out.append(Backup(sub.name, sub, datetime.fromisoformat(m["created_at"]), m.get("kind", "save"),
                              tuple(m.get("files", [])), tuple(m.get("changed", [])),
                              tuple(m.get("clauses", [])), m.get("note", ""), m.get("by", "")))
        except (OSError, ValueError, KeyError):
            continue
    return sorted(out, key=lambda b: (b.created_at, b.id), reverse=True)


def _backup(home: Path, disk: Mapping[str, bytes], changed: Sequence[str], kind: str, note: str, by: str,
            clauses: Sequence[str], now: datetime, store: str = HISTORY) -> Backup:
    root = history_dir(home, store)
    root.mkdir(parents=True, exist_ok=True)
    ident = new_id(root, now)
    folder = root / ident
    folder.mkdir()
    for name, raw in disk.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(raw)
    manifest = {"created_at": now.isoformat(), "kind": kind, "files": sorted(disk),
                "changed": list(changed), "clauses": list(clauses), "note": note, "by": by,
                "sha256": {n: sha256(r) for n, r in disk.items()}}
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return Backup(ident, folder, now, kind, tuple(sorted(disk)), tuple(changed), tuple(clauses), note, by)


def _stage(path: Path, data: bytes) -> Path:
    """Write ``data`` beside ``path`` (a hidden temporary file with ``path``'s mode) and return it."""
    tmp = path.with_name(f".{path.name}.sopcoach-tmp")
    tmp.write_bytes(data)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    except OSError:
        pass
    return tmp


def _write_atomic(path: Path, data: bytes) -> None:
    os.replace(_stage(path, data), path)


@contextlib.contextmanager
def writer_lock(home: Path | str) -> Iterator[None]:
    """Hold the installation's exclusive write lock (``playbook-history/.lock``; blocks until free)."""
    root = history_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file is closed
        yield


def read_folder(folder: Path, recursive: bool = False) -> dict[str, bytes]:
    """Return the bytes of every ``*.yaml`` file of ``folder`` by file name (with ``recursive``, of
    its subfolders too, by path relative to ``folder``: ``bank/crm_use.yaml``)."""
    folder = Path(folder)
    if not recursive:
        return {p.name: p.read_bytes() for p in sorted(folder.glob("*.yaml"))}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.yaml"))
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- the writer ---------------------------------------------------------------------------------------------
def write_files(folder: Path | str, home: Path | str, new: Callable[[dict[str, bytes]], Mapping[str, bytes]],
                kind: str, note: str = "", by: str = "", clauses: Sequence[str] = (), now: datetime | None = None,
                prefix: str = "playbook/", store: str = HISTORY, recursive: bool = False) -> Backup | None:
    """Write YAML files of ``folder`` under the lock, after backing up every file of the folder.

    Parameters
    ----------
    folder : path-like
        The folder written (``playbook/`` of the content folder).
    home : path-like
        ``SOPCOACH_HOME``: the lock and the backups live in ``playbook-history/`` below it.
    new : callable
        Called with the files as they are on disk now (name -> bytes, read under the lock); returns
        the files to write (name -> bytes). It may raise to write nothing (a conflict, a check that
        fails). Files whose bytes equal those on disk are not written.
    kind, note, by, clauses
        Kept in the backup's manifest (``kind``: ``save``, ``restore``, ``release``).
    now : datetime, optional
        Aware time of the backup (default: now).
    prefix : str
        Prefix of the names kept as ``changed`` in the manifest.
    store : str
        The history folder below ``home`` that keeps the backup (default ``playbook-history``); the
        lock is always the installation's one (``playbook-history/.lock``).
    recursive : bool
        Read and back up the ``*.yaml`` files of the subfolders too (names are relative paths).

    Returns
    -------
    Backup or None
        The backup of the version before; ``None`` when nothing changed (nothing written).

    Raises
    ------
    ContentNotWritable
        When this process may not write ``folder`` (nothing written, no backup made).
    OSError
        When the history cannot be written, or another error stops the write.
    """
    folder, home = Path(folder), Path(home)
    now = now or _utcnow()
    with writer_lock(home):
        disk = read_folder(folder, recursive)
        files = new(disk)
        changed = [n for n, raw in files.items() if disk.get(n) != raw]
        if not changed:
            return None
        # Every new file is written beside its target before the backup: a folder this process
        # cannot write is refused with nothing saved and no history entry for a save that never was.
        staged: dict[str, Path] = {}
        try:
            try:
                for name in changed:
                    staged[name] = _stage(folder / name, files[name])
            except PermissionError as exc:
                raise ContentNotWritable(t(
                    f"无法保存：本服务器没有写入 {folder} 的权限（{exc.strerror}），没有任何修改被保存。"
                    "请在可写的内容目录中修改（见 docs/deploy.md）。",
                    f"cannot save: this server may not write {folder} ({exc.strerror}); nothing was saved. "
                    "Edit the playbook where the content folder is writable (docs/deploy.md).")) from exc
            backup = _backup(home, disk, [prefix + n for n in changed], kind, note, by, clauses, now, store)
            for name in changed:
                os.replace(staged.pop(name), folder / name)
        finally:
            for tmp in staged.values():
                tmp.unlink(missing_ok=True)
    return backup


def update_yaml(path: Path | str, home: Path | str, edit: Callable[[Any], None], kind: str, note: str = "",
                by: str = "", now: datetime | None = None) -> Backup | None:
    """Change one YAML file in place: round-trip load, ``edit(doc)``, write back through :func:`write_files`.

    The file is read under the lock, so concurrent updates each see the previous one's result.
    Comments, key order and quoting survive; the BOM and line ends of the file are kept.

    Parameters
    ----------
    path : path-like
        The YAML file (its folder's files are backed up).
    home : path-like
        ``SOPCOACH_HOME`` (lock and backups in ``playbook-history/``).
    edit : callable
        Changes the round-trip document in place.

    Returns
    -------
    Backup or None
        The backup of the version before; ``None`` when the edit changed nothing.

    Raises
    ------
    ruamel.yaml.YAMLError
        When the file is not YAML, or a value set by ``edit`` cannot be represented (the file and the
        history are left untouched).
    """
    path = Path(path)

    def new(disk: dict[str, bytes]) -> dict[str, bytes]:
        raw = disk[path.name]
        doc, indent = load_round_trip(decode(raw))
        edit(doc)
        return {path.name: encode(dump(doc, indent or (2, 4, 2)), raw)}

    return write_files(path.parent, home, new, kind, note, by, now=now)
