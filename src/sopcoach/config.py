"""Settings from the environment, and the loaded content of one sopcoach installation.

Environment
-----------
SOPCOACH_HOME
    Data folder (database, logs); default ``./var`` below the working directory.
SOPCOACH_DB_URL
    SQLAlchemy URL; default ``sqlite:///$SOPCOACH_HOME/sopcoach.db``.
SOPCOACH_LANG
    ``zh-CN`` (default) or ``en``.
SOPCOACH_CONTENT
    The folder holding ``playbook/`` and ``quizzes/``; default: the project root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError
from .i18n import current_lang

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`settings`."""

    home: Path
    db_url: str
    lang: str
    content: Path

    @property
    def playbook_dir(self) -> Path:
        return self.content / "playbook"

    @property
    def quizzes_dir(self) -> Path:
        return self.content / "quizzes"

    @property
    def notebooks_dir(self) -> Path:
        return self.content / "notebooks"


def settings() -> Settings:
    """Read the settings from the environment (see the module docstring).

    Raises
    ------
    ConfigError
        When ``SOPCOACH_HOME`` cannot be created or ``SOPCOACH_CONTENT`` has no playbook.
    """
    home = Path(os.environ.get("SOPCOACH_HOME") or Path.cwd() / "var").expanduser().resolve()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"SOPCOACH_HOME={home} cannot be created: {exc}") from exc
    content = Path(os.environ.get("SOPCOACH_CONTENT") or PROJECT_ROOT).expanduser().resolve()
    if not (content / "playbook").is_dir():
        raise ConfigError(f"no playbook/ folder in {content}; set SOPCOACH_CONTENT to the folder "
                          "that holds playbook/ and quizzes/")
    url = os.environ.get("SOPCOACH_DB_URL") or f"sqlite:///{home / 'sopcoach.db'}"
    return Settings(home=home, db_url=url, lang=current_lang(), content=content)


@dataclass(frozen=True)
class Installation:
    """The loaded playbook, bank and blueprint plus the records store of one installation."""

    settings: Settings
    playbook: object
    bank: object
    blueprint: object
    records: object

    def exam_service(self, clock=None, lesson_gate=None):
        """Return an :class:`~sopcoach.exam.ExamService` over this installation.

        ``lesson_gate(learner_id) -> missing lesson ids`` (optional) makes the service refuse a new
        attempt until the lessons are complete (see :func:`sopcoach.lessons.lesson_gate`).
        """
        from .exam import ExamService
        from .records import utcnow
        return ExamService(self.records, self.bank, self.blueprint, self.playbook.content_hash(),
                           self.playbook.sop.version, clock or utcnow, lesson_gate=lesson_gate)

    @property
    def practice_dir(self) -> Path:
        """The practice pool folder, ``quizzes/practice/`` (never drawn into the exam)."""
        return self.settings.quizzes_dir / "practice"

    def practice(self):
        """Return the practice pool (a :class:`~sopcoach.quizbank.Bank`, keys resolved), loaded once.

        Raises
        ------
        ContentError
            When a practice file is invalid.
        """
        key = (str(self.practice_dir), self.playbook.content_hash())
        if key not in _PRACTICE:
            from .quizbank import Bank, load_bank
            have = self.practice_dir.is_dir() and any(self.practice_dir.glob("*.yaml"))
            _PRACTICE[key] = load_bank(self.practice_dir, self.playbook) if have else Bank([], "")
        return _PRACTICE[key]


_PRACTICE: dict = {}


def content_fingerprint(s: Settings) -> tuple:
    """Return (path, modification time in ns, size) of every content file, to notice edits."""
    out = []
    for folder in (s.playbook_dir, s.quizzes_dir):
        for f in sorted(folder.rglob("*.yaml")) if folder.is_dir() else []:
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


@lru_cache(maxsize=4)
def _load(s: Settings, fingerprint: tuple = ()) -> Installation:
    from .playbook import load_playbook
    from .quizbank import load_bank, load_blueprint
    from .records import Records
    playbook = load_playbook(s.playbook_dir)
    bank = load_bank(s.quizzes_dir / "bank", playbook)
    blueprint = load_blueprint(s.quizzes_dir / "blueprint.yaml", bank)
    return Installation(s, playbook, bank, blueprint, Records(s.db_url))


def installation(s: Settings | None = None) -> Installation:
    """Load the content and open the records store, once per process and content version.

    The loaded objects are reused until a file under ``playbook/`` or ``quizzes/`` changes on disk
    (a trainer saved an edit); the next call then loads the new content.

    Raises
    ------
    ContentError
        When a content file is invalid (every problem, with file and line).
    """
    s = s or settings()
    return _load(s, content_fingerprint(s))
