"""The exception tree of stalwart.

Every error stalwart raises on purpose derives from :class:`StalwartError`, and also from the
builtin a caller would naturally catch, so ``except OSError`` still works around file trouble.
The CLI maps these classes to exit codes with one table (``stalwart.cli``)::

    StalwartError                          subject + problems, rendered the same way everywhere
    ├── RequestError                       exit 1: this request cannot be done; nothing changed
    │   ├── WheelError (ValueError)
    │   │   ├── UnsafeArchiveError         zip structure or names that could hurt
    │   │   ├── InvalidWheelError          breaks the wheel spec (filename, WHEEL, RECORD, hashes)
    │   │   └── IncompatibleWheelError     tags or Requires-Python do not fit the target
    │   ├── ConflictError                  a file belongs to another distribution
    │   ├── UninstallError (ValueError)    an installed RECORD is unsafe or missing
    │   ├── NotInstalledError (LookupError) a named distribution is not in the environment
    │   ├── IndexPageError (ValueError)    a package index page that cannot be read
    │   ├── ResolutionError                no set of versions satisfies every requirement
    │   ├── NetworkError                   a URL could not be fetched (status, attempts)
    │   │   └── OfflineError               --offline, and the answer is not in the cache
    │   ├── HashMismatchError (ValueError) a downloaded file is not what its hash promised
    │   └── HashRequiredError              hashes are required, and a file has none to check
    ├── FilesystemError (OSError)          exit 1: a file operation failed; nothing changed
    │   ├── LockTimeoutError               exit 3: a file stayed locked past the retry budget
    │   ├── RollbackIncompleteError        exit 4: undo could not finish; run `stalwart recover`
    │   └── JournalError                   exit 4: a journal stalwart will not replay
    ├── TargetEnvironmentError (RuntimeError)  exit 4: the environment cannot be used as asked
    │   ├── ExternallyManagedError         PEP 668 marker present
    │   ├── EnvironmentBusyError           another stalwart process holds the environment
    │   └── PendingTransactionError        an interrupted command must be recovered first
    └── UsageError (ValueError)            exit 2: what the user typed is wrong
        ├── InvalidRequirementError        a requirement, or a line of a requirements file
        └── LockFileError                  a pylock.toml that cannot be installed from

Every error carries a ``subject`` (the wheel, file or environment at fault, or ``None``) and a
list of ``problems``; ``str()`` shows the first :data:`MAX_SHOWN` of them, each cut to
:data:`MAX_PROBLEM_CHARS`, and a count of the rest, so no input can make a message huge.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterable

__all__ = [
    "MoreProblems",
    "capped",
    "MAX_SHOWN",
    "MAX_PROBLEM_CHARS",
    "StalwartError",
    "RequestError",
    "WheelError",
    "UnsafeArchiveError",
    "InvalidWheelError",
    "IncompatibleWheelError",
    "ConflictError",
    "UninstallError",
    "NotInstalledError",
    "FilesystemError",
    "LockTimeoutError",
    "RollbackIncompleteError",
    "JournalError",
    "TargetEnvironmentError",
    "ExternallyManagedError",
    "EnvironmentBusyError",
    "PendingTransactionError",
    "UsageError",
    "InvalidRequirementError",
    "LockFileError",
    "IndexPageError",
    "ResolutionError",
    "LOCK_HINT",
    "render_problems",
    # network
    "NetworkError",
    "OfflineError",
    "HashMismatchError",
    "HashRequiredError",
]

MAX_SHOWN = 20
"""Problems an error message lists; the rest are counted."""
MAX_PROBLEM_CHARS = 2000
"""Longest rendering of one problem: a hostile RECORD row must not become a 13 MB message."""


def _clip(text: str) -> str:
    """Cut the middle out of an overlong problem; its end often says what to do."""
    if len(text) <= MAX_PROBLEM_CHARS:
        return text
    keep = MAX_PROBLEM_CHARS // 2
    return f"{text[:keep]} [... {len(text) - 2 * keep} characters ...] {text[-keep:]}"


class MoreProblems(str):
    """The last entry of a capped problem list: "N more problems are not listed", carrying N
    so that the headline counts every problem, listed or not."""

    omitted: int

    def __new__(cls, count: int, source: str = "") -> MoreProblems:
        prefix = f"{source}: " if source else ""
        made = super().__new__(cls, f"{prefix}{count} more problems are not listed")
        made.omitted = count
        return made


def capped(problems: list[str], unlisted: int = 0, source: str = "") -> list[str]:
    """At most :data:`MAX_SHOWN` of *problems*, the last then a :class:`MoreProblems` counting
    the rest and the *unlisted* ones a parser counted without keeping (a hostile input must
    not fill memory with messages nobody will read)."""
    total = len(problems) + unlisted
    if total <= MAX_SHOWN:
        return problems
    return [*problems[: MAX_SHOWN - 1], MoreProblems(total - MAX_SHOWN + 1, source)]


def render_problems(subject: str | None, problems: list[str]) -> str:
    """``subject: problem``, or a list of the first :data:`MAX_SHOWN` problems and a count."""
    head = f"{_clip(subject)}: " if subject else ""
    if not problems:
        return head.rstrip(": ") or "unknown error"
    if len(problems) == 1:
        return head + _clip(problems[0])
    total = sum(p.omitted if isinstance(p, MoreProblems) else 1 for p in problems)
    lines = [f"  - {_clip(p)}" for p in problems[:MAX_SHOWN]]
    if len(problems) > MAX_SHOWN:
        lines.append(f"  ... and {len(problems) - MAX_SHOWN} more")
    return f"{head}{total} problems:\n" + "\n".join(lines)


def _as_list(problems: str | Iterable[str]) -> list[str]:
    return [problems] if isinstance(problems, str) else list(problems)


class StalwartError(Exception):
    """Root of every error stalwart raises on purpose.

    *subject* names what is at fault (``None`` when the problems say it themselves);
    *problems* lists every rule broken, so a user can fix all of them in one round trip.
    """

    def __init__(self, problems: str | Iterable[str], *, subject: str | None = None) -> None:
        self.subject = subject
        self.problems = _as_list(problems)
        super().__init__(*self.problems)

    def __str__(self) -> str:
        return render_problems(self.subject, self.problems)


class RequestError(StalwartError):
    """The request cannot be carried out as asked; the environment was not changed."""


class WheelError(RequestError, ValueError):
    """A wheel cannot be installed as it is; *wheel* is its path (the subject)."""

    def __init__(self, wheel: str, problems: str | Iterable[str]) -> None:
        super().__init__(problems, subject=wheel)

    @property
    def wheel(self) -> str:
        return self.subject or ""


class UnsafeArchiveError(WheelError):
    """The zip archive is malformed or hostile; nothing of it is extracted."""


class InvalidWheelError(WheelError):
    """The wheel breaks the binary distribution format or the RECORD spec."""


class IncompatibleWheelError(WheelError):
    """The wheel's tags or ``Requires-Python`` do not fit the target interpreter."""


class ConflictError(RequestError):
    """Installing would overwrite files owned by another distribution, or a directory."""


class UninstallError(RequestError, ValueError):
    """An installed distribution cannot be removed (or replaced) safely."""


class NotInstalledError(RequestError, LookupError):
    """Distributions named by the user are not installed in the environment."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        super().__init__(f"not installed: {', '.join(self.names)}")


class FilesystemError(StalwartError, OSError):
    """A filesystem operation failed in a way stalwart explains.

    Also an ``OSError`` (``errno`` set from the cause), so callers that handle OS errors still
    catch it; ``problems`` holds the explanation.
    """

    def __init__(
        self, code: int | None, problems: str | Iterable[str], *, subject: str | None = None
    ) -> None:
        OSError.__init__(self, code or 0, "; ".join(_as_list(problems)))
        self.subject = subject
        self.problems = _as_list(problems)

    def __str__(self) -> str:
        return render_problems(self.subject, self.problems)


LOCK_HINT = (
    "another process holds the file (on Windows this is often antivirus or an indexer scanning "
    "a freshly written file); raise the budget with --lock-timeout / STALWART_LOCK_TIMEOUT, or "
    "exclude the environment from scanning"
)


class LockTimeoutError(FilesystemError):
    """A transient error (a lock episode) outlasted the retry budget.

    Keeps ``errno``/``winerror`` of the last OS error so callers can still match on them.
    """

    def __init__(
        self,
        operation: str,
        paths: tuple[str, ...],
        attempts: int,
        elapsed: float,
        last_error: OSError,
    ) -> None:
        code = last_error.errno if last_error.errno is not None else _errno.EBUSY
        self.operation = operation
        self.paths = paths
        self.attempts = attempts
        self.elapsed = elapsed
        self.last_error = last_error
        # On POSIX, OSError has no winerror slot; keep the attribute anyway so the CLI and the
        # classification tests read it the same way on every platform.
        self.winerror = getattr(last_error, "winerror", None)
        name = (
            f"WinError {self.winerror}"
            if self.winerror is not None
            else _errno.errorcode.get(code, str(code))
        )
        problem = (
            f"{operation} {' -> '.join(paths)} failed after {attempts} attempts over "
            f"{elapsed:.3f} s: [{name}] {last_error.strerror or last_error}. Hint: {LOCK_HINT}."
        )
        super().__init__(code, problem)
        self.strerror = last_error.strerror or str(last_error)
        self.filename = paths[0] if paths else None
        self.filename2 = paths[1] if len(paths) > 1 else None


class RollbackIncompleteError(FilesystemError):
    """Undoing a failed transaction could not finish; the journal is kept for ``recover``."""

    def __init__(self, journal: str, cause: BaseException) -> None:
        self.journal = journal
        self.cause = cause
        super().__init__(
            getattr(cause, "errno", None),
            f"the transaction could not be rolled back completely ({cause}). Its journal is "
            f"{journal}; run `stalwart recover` once the file is released to restore the "
            "environment.",
        )


class JournalError(FilesystemError):
    """A journal that stalwart did not write, or that is damaged: nothing is replayed."""

    def __init__(self, journal: str, problem: str) -> None:
        self.journal = journal
        self.problem = problem
        super().__init__(
            None,
            f"refusing to replay the transaction journal {journal}: {problem}. Inspect it, "
            "then delete its transaction directory to go on.",
        )


class TargetEnvironmentError(StalwartError, RuntimeError):
    """The target environment cannot be used as asked."""


class ExternallyManagedError(TargetEnvironmentError):
    """The environment is marked EXTERNALLY-MANAGED (PEP 668)."""


class EnvironmentBusyError(TargetEnvironmentError):
    """Another stalwart process kept the environment past the wait (``--lock-wait``)."""


class PendingTransactionError(TargetEnvironmentError):
    """An interrupted command left a transaction behind that must be recovered first."""


class UsageError(StalwartError, ValueError):
    """The command line or API call is wrong (conflicting options, an unreadable argument)."""


# -- requirements, lock files and indexes --


class InvalidRequirementError(UsageError):
    """A requirement the user typed, or a line of their requirements file, breaks a rule.

    The subject is the text itself, or ``file:line`` for a requirements file.
    """


class LockFileError(UsageError):
    """A ``pylock.toml`` (PEP 751) is malformed or cannot be installed for this target."""


class IndexPageError(RequestError, ValueError):
    """A package index answered with a page that cannot be read; the subject is its URL.

    URLs in the subject and problems never carry credentials (``stalwart.index.simple.redact_url``).
    """


# -- resolution ---------------------------------------------------------------------------------


class ResolutionError(RequestError):
    """No set of versions satisfies every requirement; ``problems`` say which clash and why."""

    def __init__(self, problems: Iterable[str]) -> None:
        super().__init__(problems, subject="cannot find versions that work together")


# -- network (stalwart.net) -----------------------------------------------------------------------
# Every URL below reaches these classes already redacted (stalwart.index.simple.redact_url): this
# module sits below the index layer and cannot redact by itself, and a message must never carry
# a password.


class NetworkError(RequestError):
    """A URL could not be fetched: the server refused, failed, or could not be reached.

    *url* is redacted; *status* is the last HTTP status (``None`` when no answer came, e.g. a
    refused connection or a TLS failure); *attempts* counts the tries, retries included.
    """

    def __init__(
        self, url: str, problem: str, *, status: int | None = None, attempts: int = 1
    ) -> None:
        self.url = url
        self.status = status
        self.attempts = attempts
        self.problem = problem
        shown = problem if attempts <= 1 else f"{problem} (after {attempts} attempts)"
        super().__init__(shown, subject=url)


class OfflineError(NetworkError):
    """``--offline`` (or ``UV_OFFLINE``) is set and *url* is not in the cache."""

    def __init__(self, url: str) -> None:
        super().__init__(
            url,
            "not in the cache, and --offline forbids using the network; run once online to fill "
            "the cache, or drop --offline",
        )


class HashMismatchError(RequestError, ValueError):
    """A downloaded (or local) file does not have the hash its index or lock file promised.

    Nothing of it is kept. *file* is the file name; *algorithm*, *expected* and *actual* name
    the first hash that disagreed.
    """

    def __init__(self, file: str, algorithm: str, expected: str, actual: str) -> None:
        self.file = file
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{algorithm} hash mismatch: expected {expected}, got {actual}. The file was changed "
            "after its hash was published, or something between here and the index altered it; "
            "nothing was kept",
            subject=file,
        )


class HashRequiredError(RequestError):
    """Hashes are required (``--require-hashes``, a lock file) but *file* comes with none."""

    def __init__(self, file: str) -> None:
        self.file = file
        super().__init__(
            "no sha256 (or other strong) hash is known for this file, and hashes are required "
            "(--require-hashes); pin it with a hash or use an index that publishes them",
            subject=file,
        )
