"""One exception tree for sopcoach, rooted at :class:`SopcoachError`.

Content errors carry :class:`Problem` records (file, line, column, field path, message) and are
printed in the ``path:line:column: message`` form that editors and CI understand.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a content file.

    Parameters
    ----------
    path : str
        The file, as given to the loader.
    line, column : int
        1-based position of the offending node; 0 when unknown.
    field : str
        Dotted field path inside the file, e.g. ``stages[2].role``; empty for the whole file.
    message : str
        What was expected, what was found, and how to fix it.

    Examples
    --------
    >>> str(Problem("playbook/tiers.yaml", 4, 7, "tiers[0].name", "expected text"))
    'playbook/tiers.yaml:4:7: tiers[0].name: expected text'

    Line and column 0 mean unknown (a problem with the whole file) and are left out:

    >>> str(Problem("deals.csv", 0, 0, "", "no such file or folder"))
    'deals.csv: no such file or folder'
    """

    path: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line else "") + (f":{self.column}" if self.line and self.column else "")
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SopcoachError(Exception):
    """Root of every error sopcoach raises on purpose."""


class ContentError(SopcoachError):
    """A content file (playbook, bank, blueprint, mapping) is invalid; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(SopcoachError):
    """A setting (environment variable, command option) is unusable."""


class ExamError(SopcoachError):
    """An exam action is not allowed in the attempt's current state."""


class AttemptClosed(ExamError):
    """The attempt is submitted, scored or expired: it takes no more answers or submissions."""


class AttemptExpired(AttemptClosed):
    """The attempt's time limit has passed (measured from the server-side start)."""


class AttemptLimitReached(ExamError):
    """The learner has used every attempt the blueprint allows."""


class AlreadyCertified(ExamError):
    """The learner has passed this exam already: a new attempt is refused (recertification is a separate exam)."""


class WaitRequired(ExamError):
    """The blueprint's waiting time since the learner's last attempt has not passed yet."""

    def __init__(self, message: str, seconds_left: float):
        super().__init__(message)
        self.seconds_left = seconds_left


class InvalidResponse(ExamError):
    """A response does not fit its question (unknown option id, not a number, ...)."""


class AuthError(SopcoachError):
    """Sign-in refused: unknown id, wrong access code, or too many recent failures."""


class RecordsError(SopcoachError):
    """The records database could not complete an operation (after retries)."""


def relpath(path: Path | str) -> str:
    """Return ``path`` relative to the working directory when it lies below it, else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
