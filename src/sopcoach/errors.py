"""One exception tree for sopcoach, rooted at :class:`SopcoachError`.

Every error sopcoach raises on purpose is defined here::

    SopcoachError
    ├── ContentError            a content file is invalid (``problems``: every Problem found)
    ├── ConfigError             a setting or an input file is unusable
    │   └── UsageError          a command's options cannot be used as given (exit code 2)
    ├── ExamError               an exam action is not allowed now
    │   ├── AttemptClosed
    │   │   └── AttemptExpired
    │   ├── AttemptLimitReached
    │   ├── AlreadyCertified
    │   ├── WaitRequired        (``seconds_left``)
    │   ├── InvalidResponse
    │   ├── LessonsIncomplete   (``missing``)
    │   └── QuestionsNeedReview (``section``, ``needed``, ``available``, ``waiting``)
    ├── AuthError               sign-in refused
    ├── RecordsError            the database could not complete an operation (one line saying what)
    │   ├── DatabaseBusy        it stayed locked through every retry (trying again later may work)
    │   └── SchemaMismatch      the database's schema is not this sopcoach's (``current``, ``head``)
    │       ├── SchemaOutdated  older: ``sopcoach db upgrade`` brings it up
    │       └── SchemaTooNew    newer: a newer sopcoach upgraded it
    ├── CertificateError        a certificate operation is refused
    ├── VersionError            a release, confirmation or version write is refused
    │   └── StaleQuotes         texts still quote a value the release changes (``quotes``, one a line)
    ├── EditError               a playbook edit or save is refused
    │   ├── InvalidPlaybook     (``problems``)
    │   └── SaveConflict        (``files``, ``draft``)
    ├── BusinessTimeError       (also a ValueError) an invalid duration, calendar or argument
    │   ├── NaiveDatetimeError
    │   ├── NonexistentLocalTime
    │   └── CalendarRangeError
    ├── ToolInputError          (also a ValueError) a lesson tool got an unusable input
    ├── TemplateError           (also a ValueError) a question template gives no usable key
    │   └── AmbiguousDraw       a draw gives two options the same text (drawn again)
    ├── AnalysisError           a CRM analysis cannot run with the given arguments
    └── SimulationError         a simulated export cannot be built as asked

Content errors carry :class:`Problem` records (file, line, column, field path, message) and are
printed in the ``path:line:column: message`` form that editors and CI understand. The ``sopcoach``
command turns any of these errors into one line on stderr (one line per problem for the errors that
carry ``problems``) and exit code 1, or 2 for a :class:`UsageError` (see :func:`sopcoach.cli.main.main`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from .i18n import t


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
    severity : str
        ``"error"`` (the default: the content is unusable) or ``"warning"`` (usable, but likely
        wrong; ``sopcoach check`` prints it and still exits 0).

    Examples
    --------
    >>> str(Problem("playbook/tiers.yaml", 4, 7, "tiers[0].name", "expected text"))
    'playbook/tiers.yaml:4:7: tiers[0].name: expected text'

    Line and column 0 mean unknown (a problem with the whole file) and are left out:

    >>> str(Problem("deals.csv", 0, 0, "", "no such file or folder"))
    'deals.csv: no such file or folder'
    >>> str(Problem("bank.yaml", 9, 11, "questions[0].options[3]", "pin it", severity="warning"))
    'bank.yaml:9:11: questions[0].options[3]: warning: pin it'
    """

    path: str
    line: int
    column: int
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line else "") + (f":{self.column}" if self.line and self.column else "")
        message = f"warning: {self.message}" if self.severity == "warning" else self.message
        return f"{where}: {self.field}: {message}" if self.field else f"{where}: {message}"


class SopcoachError(Exception):
    """Root of every error sopcoach raises on purpose."""


class ContentError(SopcoachError):
    """A content file (playbook, bank, blueprint, mapping) is invalid; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(SopcoachError):
    """A setting (environment variable, command option) or an input file is unusable."""


class UsageError(ConfigError):
    """A command's options or arguments cannot be used as given (``sopcoach`` exits with code 2)."""


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


class LessonsIncomplete(ExamError):
    """The blueprint requires the lessons first (``require_lessons``) and some are not complete.

    ``missing`` lists the lesson ids still to complete.
    """

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = list(missing)


class QuestionsNeedReview(ExamError):
    """A section keeps too few confirmed questions: a release marked the rest needs-review.

    ``section``, ``needed``, ``available`` and ``waiting`` (the question ids a trainer must review
    and confirm, see :func:`sopcoach.authoring.versions.confirm`) say what is missing.
    """

    def __init__(self, section: str, needed: int, available: int, waiting: list[str]):
        super().__init__(
            f"the exam is not available until a trainer reviews the questions changed by the last "
            f"playbook release: section '{section}' draws {needed} questions but only {available} are "
            f"confirmed; review and confirm some of: {', '.join(waiting)} "
            "(trainer notebook 'playbook_changes' or `sopcoach review --confirm QID`)")
        self.section, self.needed, self.available, self.waiting = section, needed, available, list(waiting)


class AuthError(SopcoachError):
    """Sign-in refused: unknown id, wrong access code, or too many recent failures."""


class RecordsError(SopcoachError):
    """The records database could not complete an operation; the message is one line saying what."""


class DatabaseBusy(RecordsError):
    """The records database stayed locked through every retry; nothing was written (try again later)."""


class NoDatabase(RecordsError):
    """A command that only reads records found no records database (a wrong data home or database URL);
    the message names the database and the fix. Nothing was created."""


class SchemaMismatch(RecordsError):
    """The records database's schema revision is not the one this sopcoach works with.

    ``current`` is the database's Alembic revision (``None``: made before sopcoach had migrations),
    ``head`` the revision this sopcoach's code expects. The message is one line saying what to do.
    """

    def __init__(self, message: str, current: str | None, head: str):
        super().__init__(message)
        self.current, self.head = current, head


class SchemaOutdated(SchemaMismatch):
    """The records database has an older schema; the message names the command that upgrades it
    (``sopcoach db upgrade``)."""


class SchemaTooNew(SchemaMismatch):
    """The records database was upgraded by a newer sopcoach than this one: this code is older."""


class CertificateError(SopcoachError):
    """A certificate operation is refused (unknown code, nothing to print)."""


class VersionError(SopcoachError):
    """A release, confirmation or version write is refused (nothing changed, label in use, ...)."""


class StaleQuotes(VersionError):
    """A release is refused: texts still quote values changed since the last release.

    ``quotes`` are :class:`sopcoach.authoring.versions.StaleQuote` records (see
    :func:`sopcoach.authoring.versions.stale_quotes`); the message lists each, one a line, in ``lang``.
    """

    def __init__(self, quotes: Sequence[Any], lang: str | None = None):
        self.quotes = list(quotes)
        lines = "\n".join("  " + q.text(lang) for q in self.quotes)
        super().__init__(t(
            f"未发布:{len(self.quotes)} 处文字仍写着已修改的旧值:\n{lines}\n"
            "请修改这些文字(条款正文在 playbook/clauses.yaml,也可用培训师的规程编辑页);若确应保留该值,"
            "确认后再发布:sopcoach release --confirm-quotes --by 姓名,或“规程变更”页的确认勾选框。"
            "引用 SOP 原文的条款(source: seed:N)保持 SOP 的原话:SOP 本身未改时请确认引用,"
            "或先把该条款改为公司设定(source: company-setting,并写明 rationale)再改其正文。",
            f"not released: {len(self.quotes)} text(s) still quote a value changed since the last release:\n"
            f"{lines}\nEdit those texts (clause texts are in playbook/clauses.yaml; or use the trainer's playbook "
            "editor), or, if a text is meant to keep that value, confirm and release: `sopcoach release "
            "--confirm-quotes --by NAME`, or the confirmation box on the playbook-changes page. A clause that "
            "quotes the SOP (source: seed:N) keeps the SOP's words: when the SOP itself did not change, confirm "
            "the quote, or first make the clause a company setting (source: company-setting with a rationale), "
            "then change its text.", lang))


class EditError(SopcoachError):
    """An edit or a save is refused (unknown id, read-only file, nothing to restore, ...)."""


class ContentNotWritable(EditError):
    """A save is refused because this process cannot write the content folder; nothing was written."""


class InvalidPlaybook(EditError):
    """Saving (or restoring) is refused because ``sopcoach check`` reports ``problems``."""

    def __init__(self, problems: Sequence[Problem], head: str | None = None):
        """``head`` is the first line (default: nothing was saved, fix the problems first); the
        first 20 problems follow it."""
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems[:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        head = head or (f"nothing was saved: `sopcoach check` reports {len(self.problems)} problem(s); "
                        "fix them first")
        super().__init__(f"{head}\n{lines}{more}")


class SaveConflict(EditError):
    """Saving is refused because playbook files changed on disk since the session opened them.

    ``files`` names them (``playbook/<name>``); ``draft`` is the folder holding the trainer's edited
    files, so nothing is lost even if the session ends.
    """

    def __init__(self, files: Sequence[str], draft: Path | None):
        self.files = list(files)
        self.draft = draft
        kept = f" Your edited version is kept in {draft}." if draft else ""
        super().__init__(
            f"nothing was saved: {', '.join(self.files)} changed on disk since you opened the playbook "
            f"(someone else saved or edited it).{kept} Reload (your changes are re-applied to the new "
            "files), review and save again.")


class BusinessTimeError(SopcoachError, ValueError):
    """An invalid duration, calendar setting or argument given to the working-time engine."""


class NaiveDatetimeError(BusinessTimeError):
    """A datetime without a time zone was given where an instant is needed.

    Stored timestamps are UTC (attach ``timezone.utc``); local wall times from a form or a CRM export
    go through :meth:`sopcoach.content.businesstime.BusinessCalendar.check_local` first.
    """


class NonexistentLocalTime(BusinessTimeError):
    """A local wall time falls in a daylight-saving gap (e.g. 2024-03-31 02:30 in Europe/Berlin).

    Such a value is flagged, never shifted silently (shared case 28).
    """


class CalendarRangeError(BusinessTimeError):
    """A date lies outside the years whose holidays and make-up working days the calendar knows."""


class StaleAttempt(ExamError):
    """A page acted on an attempt whose answers changed in another window since it loaded them."""


class ToolInputError(SopcoachError, ValueError):
    """A lesson tool got an input it cannot use (negative amount, unknown role, ...)."""


class TemplateError(SopcoachError, ValueError):
    """A question template gives no usable instance: its rule gives no key for a draw (no role may
    approve, a zero denominator, a key no option has), or no draw has distinct options."""


class AmbiguousDraw(TemplateError):
    """A template's draw gives two options the same text (the draw is made again)."""


class AnalysisError(SopcoachError):
    """An analysis cannot run with the given arguments (e.g. an unknown month or deal)."""


class SimulationError(SopcoachError):
    """The simulation cannot be built as asked (e.g. too few deals for the breaches requested)."""


def relpath(path: Path | str) -> str:
    """Return ``path`` relative to the working directory when it lies below it, else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
