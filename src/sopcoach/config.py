"""Where an installation's content, data and database are, and its loaded content.

:func:`settings` is the one place that resolves the content folder, the data home and the database
URL, for every command, both servers and every notebook. Each setting comes from the first of:

==========  ==============  =======================  ==========================================
setting     flag            environment variable     default
==========  ==============  =======================  ==========================================
content     ``--content``   ``SOPCOACH_CONTENT``     the project folder (:data:`PROJECT_ROOT`)
home        ``--home``      ``SOPCOACH_HOME``        ``var/`` inside the content folder
database    ``--db-url``    ``SOPCOACH_DB_URL``      ``sqlite:///<home>/sopcoach.db``
language                    ``SOPCOACH_LANG``        ``zh-CN`` (or ``en``)
public_url                  ``SOPCOACH_PUBLIC_URL``  none: certificates say ``sopcoach verify CODE``
==========  ==============  =======================  ==========================================

``public_url`` is the learner server's address as people open it, with its path prefix if it has
one (``https://sop.example.com`` or ``https://example.com/sop``). When set, a certificate PDF prints
the page that checks it, ``<public_url>/verify?code=SC-...`` (:mod:`sopcoach.web.verify`), instead
of the shell command.

The apps' notebooks are ``notebooks/`` in the content folder when it has one, else the project's.
The working directory plays no part: ``sopcoach enroll`` run from any folder writes to the
database the server reads. ``sopcoach serve`` passes the resolved values to its servers and their
kernels in the environment, so they resolve the same.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, overload
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from .certification.exam import ExamService
from .content.playbook import Playbook, load_playbook
from .content.quizbank import Bank, Blueprint, load_bank, load_blueprint
from .errors import ConfigError, NoDatabase
from .i18n import current_lang
from .records.models import utcnow
from .records.schema import UPGRADE_COMMAND, missing_sqlite_file, shown_url, upgrade_command_for, url_state
from .records.store import Records, make_engine

#: The project folder this package was installed from (a checkout, or an editable install): its
#: ``playbook/``, ``quizzes/`` and ``notebooks/`` are the default content.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The database file's name inside the data home (when no database URL is given).
DB_FILE = "sopcoach.db"


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`settings`.

    ``db_origin`` says where ``db_url`` came from (``--db-url``, ``SOPCOACH_DB_URL``, or the data
    home and where that came from); it is not part of equality.
    """

    home: Path
    db_url: str
    lang: str
    content: Path
    db_origin: str = field(default="", compare=False)
    public_url: str = ""

    @property
    def playbook_dir(self) -> Path:
        return self.content / "playbook"

    @property
    def quizzes_dir(self) -> Path:
        return self.content / "quizzes"

    @property
    def notebooks_dir(self) -> Path:
        """The apps' notebooks: ``notebooks/`` in the content folder when it has one, else the project's.

        A content folder may hold only ``playbook/`` and ``quizzes/``; the servers then serve the
        notebooks installed with sopcoach.
        """
        own = self.content / "notebooks"
        return own if own.is_dir() else PROJECT_ROOT / "notebooks"

    def database_line(self) -> str:
        """Return the line a command prints to say which database it uses (password hidden).

        Examples
        --------
        >>> s = Settings(Path("/srv/var"), "postgresql+psycopg://sop:secret@db/sop", "en", Path("/srv"),
        ...              db_origin="SOPCOACH_DB_URL")
        >>> s.database_line()
        'database: postgresql+psycopg://sop:***@db/sop (SOPCOACH_DB_URL)'
        """
        url = make_url(self.db_url).render_as_string(hide_password=True)
        return f"database: {url}" + (f" ({self.db_origin})" if self.db_origin else "")


def _pick(flag: str, given: os.PathLike | str | None, variable: str) -> tuple[str | None, str]:
    """Return the value and where it came from: the flag's argument, else the environment variable."""
    if given is not None and str(given) != "":
        return str(given), flag
    value = os.environ.get(variable)
    return (value, variable) if value else (None, "")


@overload
def content_folder(content: os.PathLike | str | None = None, *, required: Literal[True] = True) -> Path: ...


@overload
def content_folder(content: os.PathLike | str | None = None, *, required: bool) -> Path | None: ...


def content_folder(content: os.PathLike | str | None = None, *, required: bool = True) -> Path | None:
    """Return the content folder (holding ``playbook/`` and ``quizzes/``), resolved as :func:`settings` does.

    Parameters
    ----------
    content : path-like, optional
        The ``--content`` flag's value; default ``$SOPCOACH_CONTENT``, else :data:`PROJECT_ROOT`.
    required : bool
        When false and no folder was given (flag or variable), return ``None`` instead of raising if
        the project folder holds no ``playbook/`` (an installed package without content).

    Raises
    ------
    ConfigError
        When the folder has no ``playbook/`` (the message names the flag or variable it came from).
    """
    value, origin = _pick("--content", content, "SOPCOACH_CONTENT")
    folder = Path(value or PROJECT_ROOT).expanduser().resolve()
    if not (folder / "playbook").is_dir():
        if not origin and not required:
            return None
        where = f"{origin}={value}" if origin else f"the project folder {folder}"
        raise ConfigError(f"no playbook/ folder in {folder} ({where}); give --content or set SOPCOACH_CONTENT "
                          "to the folder that holds playbook/ and quizzes/")
    return folder


def settings(content: os.PathLike | str | None = None, home: os.PathLike | str | None = None,
             db_url: str | None = None, *, create_home: bool = True) -> Settings:
    """Resolve the content folder, data home and database URL (see the module docstring).

    Parameters
    ----------
    content, home : path-like, optional
        The ``--content`` and ``--home`` flags' values; ``None`` falls back to the environment, then
        the default. The data home is created when missing, unless ``create_home`` is false.
    db_url : str, optional
        The ``--db-url`` flag's value (an SQLAlchemy URL).
    create_home : bool, default True
        False for a command that only reads records: a missing data home stays missing (see
        :func:`require_database`).

    Returns
    -------
    Settings

    Raises
    ------
    ConfigError
        When the content folder has no ``playbook/``, the data home cannot be created, the
        database URL is malformed or ``SOPCOACH_PUBLIC_URL`` is not a web address.

    Examples
    --------
    >>> import tempfile
    >>> s = settings(PROJECT_ROOT, home=tempfile.mkdtemp(), db_url="sqlite://")
    >>> s.content == PROJECT_ROOT, s.database_line()
    (True, 'database: sqlite:// (--db-url)')
    """
    folder = content_folder(content)
    value, home_origin = _pick("--home", home, "SOPCOACH_HOME")
    where = Path(value).expanduser().resolve() if value else folder / "var"
    try:
        if create_home:
            where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"the data home {where} ({home_origin or 'the content folder'}) cannot be created: "
                          f"{exc.strerror}") from exc
    url, origin = _pick("--db-url", db_url, "SOPCOACH_DB_URL")
    if url is None:
        url = f"sqlite:///{where / DB_FILE}"
        origin = f"data home from {home_origin}" if home_origin else "default: var/ in the content folder"
    try:
        make_url(url)
    except ArgumentError:
        raise ConfigError(f"{origin}={url!r} is not a database URL; write it as SQLAlchemy does, e.g. "
                          "sqlite:////srv/sopcoach/sopcoach.db or postgresql+psycopg://user@host/sopcoach") from None
    return Settings(home=where, db_url=url, lang=current_lang(), content=folder, db_origin=origin,
                    public_url=public_url())


def public_url() -> str:
    """Return the learner server's public address from ``SOPCOACH_PUBLIC_URL``, without a trailing ``/`` ("" unset).

    Raises
    ------
    ConfigError
        When the variable is not an http(s) address with a host (the message shows it and an example).

    Examples
    --------
    >>> os.environ["SOPCOACH_PUBLIC_URL"] = "https://sop.example.com/"
    >>> public_url()
    'https://sop.example.com'
    >>> del os.environ["SOPCOACH_PUBLIC_URL"]
    """
    value = os.environ.get("SOPCOACH_PUBLIC_URL", "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"SOPCOACH_PUBLIC_URL={value!r} is not a web address; give the learner server's address as "
                          "people open it, e.g. https://sop.example.com (with its path prefix if it has one)")
    return value.rstrip("/")


def _db_url_from_environment() -> str | None:
    """Return the database URL :func:`settings` resolves without flags (``None``: no content folder).

    Unlike :func:`settings` it creates no folder.
    """
    url = os.environ.get("SOPCOACH_DB_URL")
    if url:
        return url
    home = os.environ.get("SOPCOACH_HOME")
    try:
        where = Path(home).expanduser().resolve() if home else content_folder() / "var"
    except ConfigError:
        return None
    return f"sqlite:///{where / DB_FILE}"


def upgrade_command(s: Settings) -> str:
    """Return the command that upgrades the database of ``s``, as the user would type it now.

    ``sopcoach db upgrade`` when the environment names the same database (no flag needed), else
    with ``--db-url URL`` (password hidden).

    Examples
    --------
    >>> upgrade_command(Settings(Path("/srv/var"), "sqlite:////srv/other.db", "en", Path("/srv")))
    'sopcoach db upgrade --db-url sqlite:////srv/other.db'
    """
    if _db_url_from_environment() == s.db_url:
        return UPGRADE_COMMAND
    return upgrade_command_for(s.db_url)


def require_database(s: Settings) -> None:
    """Refuse the database of ``s`` when it holds no sopcoach tables (an SQLite file: when it is missing).

    Commands that only read records call it first, so a wrong ``--home`` or database URL ends in one
    line instead of a new, empty database and an empty export. Nothing is created. A database that
    cannot be reached passes here; opening the store then says why in one line.

    Raises
    ------
    NoDatabase
        When there is no records database: the message names it, where its URL came from, and the
        fix (the right data home or URL, or ``sopcoach db upgrade`` to create it).
    ConfigError
        When the URL names a database whose driver is not installed.
    """
    engine = make_engine(s.db_url)
    try:
        missing = missing_sqlite_file(engine)
        state = url_state(engine)
    except OperationalError:
        return
    finally:
        engine.dispose()
    if state.status != "empty":
        return
    what = "no such file" if missing is not None else "it holds no sopcoach tables"
    where = f" ({s.db_origin})" if s.db_origin else ""
    raise NoDatabase(f"no records database at {shown_url(s.db_url)}{where}: {what}; give the data home that "
                     "holds it (--home or SOPCOACH_HOME) or its URL (--db-url or SOPCOACH_DB_URL), or create "
                     f"an empty one with `{upgrade_command(s)}`")


def open_records(s: Settings) -> Records:
    """Open the records store of ``s``; a refusal names :func:`upgrade_command` of ``s``.

    Raises
    ------
    SchemaOutdated, SchemaTooNew
        When the database's schema is not this code's (see :mod:`sopcoach.records.schema`).
    """
    return Records(s.db_url, upgrade_command=upgrade_command(s))


@dataclass(frozen=True)
class Installation:
    """The loaded playbook, bank and blueprint plus the records store of one installation."""

    settings: Settings
    playbook: Playbook
    bank: Bank
    blueprint: Blueprint
    records: Records
    _practice: Bank | None = field(default=None, compare=False, repr=False)

    def exam_service(self, clock=None, lesson_gate=None):
        """Return an :class:`~sopcoach.certification.exam.ExamService` over this installation.

        ``lesson_gate(learner_id) -> missing lesson ids`` (optional) makes the service refuse a new
        attempt until the lessons are complete (see :func:`sopcoach.lessons.progress.lesson_gate`).
        """
        return ExamService(self.records, self.bank, self.blueprint, self.playbook.content_hash(),
                           self.playbook.sop.version, clock or utcnow, lesson_gate=lesson_gate)

    @property
    def practice_dir(self) -> Path:
        """The practice pool folder, ``quizzes/practice/`` (never drawn into the exam)."""
        return self.settings.quizzes_dir / "practice"

    def practice(self):
        """Return the practice pool (a :class:`~sopcoach.content.quizbank.Bank`, keys resolved), loaded with the content.

        Raises
        ------
        ContentError
            When a practice file is invalid.
        """
        if self._practice is None:  # an Installation built by hand, not by installation()
            object.__setattr__(self, "_practice", _load_practice(self.practice_dir, self.playbook))
        return self._practice


def _load_practice(folder: Path, playbook: Playbook) -> Bank:
    """Load the practice pool of ``folder`` (``quizzes/practice/``); an empty pool when it has no file."""
    have = folder.is_dir() and any(folder.glob("*.yaml"))
    return load_bank(folder, playbook) if have else Bank([], "")


def content_fingerprint(s: Settings | Path) -> tuple:
    """Return (path, modification time in ns, size) of every content file, to notice edits.

    ``s`` is the settings or the content folder itself.
    """
    content = s.content if isinstance(s, Settings) else Path(s)
    out = []
    for folder in (content / "playbook", content / "quizzes"):
        for f in sorted(folder.rglob("*.yaml")) if folder.is_dir() else []:
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Content:
    """The validated content of one content folder: playbook, exam bank, blueprint, practice pool."""

    playbook: Playbook
    bank: Bank
    blueprint: Blueprint
    practice: Bank | None


@lru_cache(maxsize=4)
def _content(folder: Path, fingerprint: tuple = ()) -> Content:
    playbook = load_playbook(folder / "playbook")
    bank = load_bank(folder / "quizzes" / "bank", playbook)
    blueprint = load_blueprint(folder / "quizzes" / "blueprint.yaml", bank)
    return Content(playbook, bank, blueprint, _load_practice(folder / "quizzes" / "practice", playbook))


def load_content(folder: os.PathLike | str | None = None) -> Content:
    """Load and validate a content folder's files, once per process and content version.

    Opens no database, file handle or thread, so a process may load the content and then fork (the
    learner server's kernel zygote does, so every page kernel starts with the content loaded).

    Parameters
    ----------
    folder : path-like, optional
        The content folder; default as :func:`content_folder` resolves it.

    Raises
    ------
    ContentError
        When a content file is invalid (every problem, with file and line).
    ConfigError
        When the folder has no ``playbook/``.
    """
    where = content_folder(folder)
    return _content(where, content_fingerprint(where))


@lru_cache(maxsize=4)
def _load(s: Settings, content: Content) -> Installation:
    return Installation(s, content.playbook, content.bank, content.blueprint, open_records(s),
                        _practice=content.practice)


def installation(s: Settings | None = None) -> Installation:
    """Load the content and open the records store, once per process and content version.

    The loaded objects are reused until a file under ``playbook/`` or ``quizzes/`` changes on disk
    (a trainer saved an edit); the next call then loads the new content. The records store is opened
    once per settings and content version (see :func:`load_content` for the content alone).

    Raises
    ------
    ContentError
        When a content file is invalid (every problem, with file and line).
    SchemaOutdated, SchemaTooNew
        When the database's schema is not this code's (the message names the command to run).
    """
    s = s or settings()
    return _load(s, _content(s.content, content_fingerprint(s.content)))
