"""One stalwart process at a time changes an environment: an OS lock on its lock path.

The environment says what to lock (:attr:`Environment.lock_path`). POSIX: ``flock`` on a
read-only descriptor of the site-packages directory itself, so locking writes nothing into the
environment. Windows: ``msvcrt.locking`` on a file in the state directory. The OS drops either
lock when the process dies, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from types import TracebackType
from typing import Self

from stalwart import fs
from stalwart.errors import EnvironmentBusyError

__all__ = ["EnvironmentLock", "DEFAULT_LOCK_WAIT"]

DEFAULT_LOCK_WAIT = 300.0  # seconds to wait for another stalwart process
_NOTICE_AFTER = 1.0
_POLL = 0.05


class EnvironmentLock:
    """Exclusive lock on *lock_path* (a directory on POSIX, a file on Windows); a context
    manager. *timeout* is how long to wait for another process holding it."""

    def __init__(
        self,
        lock_path: str,
        *,
        timeout: float = DEFAULT_LOCK_WAIT,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.lock_path = lock_path
        self.timeout = timeout
        self.notify = notify
        self._fd: int | None = None

    def acquire(self) -> None:
        rt = fs.runtime()
        start = rt.clock()
        told = False
        fd = self._open()
        while not _try_lock(fd):
            waited = rt.clock() - start
            if waited >= self.timeout:
                os.close(fd)
                raise EnvironmentBusyError(
                    f"another stalwart process has been changing {self.lock_path} for "
                    f"{waited:.1f} s; gave up waiting (raise the wait with --lock-wait)"
                )
            if not told and waited >= _NOTICE_AFTER and self.notify is not None:
                self.notify(f"waiting for another stalwart process to finish with {self.lock_path}")
                told = True
            rt.sleep(_POLL)
        self._fd = fd

    def _open(self) -> int:
        if fs.WINDOWS:
            fs.makedirs(os.path.dirname(self.lock_path))
            writer = fs.open_for_write(self.lock_path)
            return writer.detach()
        # Read-only descriptor: locking writes nothing.
        return os.open(self.lock_path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))  # noqa: TID251

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the lock

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    if fs.WINDOWS:
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError as exc:
            # Locked by another process: EACCES (or EDEADLOCK). Anything else is a real error,
            # not a reason to wait for a process that does not exist.
            if exc.errno in (errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)):
                return False
            raise
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
