"""The exception tree of stalwart.

Every error stalwart raises on purpose derives from :class:`StalwartError`, and also from the
builtin a caller would naturally catch, so ``except OSError`` still works around file trouble::

    StalwartError
    ├── FilesystemError (OSError)
    │   └── LockTimeoutError          a file stayed locked past the retry budget
    ├── WheelError (ValueError)
    │   ├── UnsafeArchiveError        zip structure or names that could hurt (bombs, traversal)
    │   ├── InvalidWheelError         breaks the wheel spec (filename, WHEEL, RECORD, hashes)
    │   └── IncompatibleWheelError    tags do not fit the target interpreter
    ├── TargetEnvironmentError (RuntimeError)  the target environment cannot be used as asked
    │   ├── ConflictError             a file belongs to another distribution
    │   └── ExternallyManagedError    PEP 668 marker present
    ├── UninstallError (ValueError)   RECORD of an installed distribution is unsafe or missing
    ├── NotInstalledError (LookupError) a named distribution is not in the environment
    └── UsageError (ValueError)       the command line or API call is wrong

Data lives in attributes; the message is what ``str()`` shows and what the CLI prints.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "StalwartError",
    "FilesystemError",
    "LockTimeoutError",
    "WheelError",
    "UnsafeArchiveError",
    "InvalidWheelError",
    "IncompatibleWheelError",
    "TargetEnvironmentError",
    "ConflictError",
    "ExternallyManagedError",
    "UninstallError",
    "NotInstalledError",
    "UsageError",
]


class StalwartError(Exception):
    """Root of every error stalwart raises on purpose."""


class FilesystemError(StalwartError, OSError):
    """A filesystem operation failed in a way stalwart explains."""


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
        super().__init__(code, last_error.strerror or str(last_error))
        self.filename = paths[0] if paths else None
        self.filename2 = paths[1] if len(paths) > 1 else None
        self.operation = operation
        self.paths = paths
        self.attempts = attempts
        self.elapsed = elapsed
        self.last_error = last_error
        # On POSIX, OSError has no winerror slot; keep the attribute anyway so the CLI and the
        # classification tests read it the same way on every platform.
        self.winerror = getattr(last_error, "winerror", None)

    def __str__(self) -> str:
        where = " -> ".join(self.paths)
        code = (
            f"WinError {self.winerror}"
            if self.winerror is not None
            else (_errno.errorcode.get(self.errno or 0, str(self.errno)))
        )
        return (
            f"{self.operation} {where} failed after {self.attempts} attempts over "
            f"{self.elapsed:.3f} s: [{code}] {self.last_error.strerror or self.last_error}. "
            f"Hint: {LOCK_HINT}."
        )


class WheelError(StalwartError, ValueError):
    """A wheel cannot be installed as it is. ``problems`` lists every rule it breaks."""

    def __init__(self, wheel: str, problems: list[str] | str) -> None:
        self.wheel = wheel
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(wheel, self.problems)

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"{self.wheel}: {self.problems[0]}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"{self.wheel}: {len(self.problems)} problems:\n{lines}"


class UnsafeArchiveError(WheelError):
    """The zip archive is malformed or hostile; nothing of it is extracted."""


class InvalidWheelError(WheelError):
    """The wheel breaks the binary distribution format or the RECORD spec."""


class IncompatibleWheelError(WheelError):
    """The wheel's tags do not match the target interpreter."""


class TargetEnvironmentError(StalwartError, RuntimeError):
    """The target environment cannot be used as asked."""


class ConflictError(TargetEnvironmentError):
    """Installing would overwrite files owned by another distribution."""


class ExternallyManagedError(TargetEnvironmentError):
    """The environment is marked EXTERNALLY-MANAGED (PEP 668)."""


class UninstallError(StalwartError, ValueError):
    """An installed distribution cannot be removed safely."""


class NotInstalledError(StalwartError, LookupError):
    """A distribution named by the user is not installed in the environment."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(f"not installed: {', '.join(names)}")

    def __str__(self) -> str:
        return str(self.args[0])


class UsageError(StalwartError, ValueError):
    """The request itself is wrong (unknown distribution, conflicting options)."""
