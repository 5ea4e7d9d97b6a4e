"""Fault injection: make chosen OS calls on chosen paths fail, in this process.

The injector swaps the primitives in ``stalwart.fs._prims`` for wrappers, so a fault surfaces
exactly where the OS would raise and the real retry loop above it runs. Time-limited faults use
the filesystem layer's clock, so tests with a fake clock never sleep::

    with FaultInjector() as faults:
        faults.fail(Op.REPLACE, "*/demo.pyd", winerror=32, seconds=0.5)
        install(...)
"""

from __future__ import annotations

import errno as _errno
import fnmatch
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from . import _prims
from ._classify import Op
from ._retry import runtime

__all__ = ["Fault", "FaultInjector", "make_error"]

_PRIM_OPS: dict[str, Op] = {
    "replace": Op.REPLACE,
    "rename": Op.RENAME,
    "link": Op.LINK,
    "unlink": Op.UNLINK,
    "rmdir": Op.RMDIR,
    "mkdir": Op.MKDIR,
    "chmod": Op.CHMOD,
    "open": Op.OPEN,
    "write": Op.WRITE,
    "copyfile": Op.COPY,
}

_WIN_MESSAGES = {
    5: "Access is denied",
    32: "The process cannot access the file because it is being used by another process",
    33: "The process cannot access the file because another process has locked a portion of it",
    145: "The directory is not empty",
    1224: "The requested operation cannot be performed on a file with a user-mapped section open",
}


def make_error(path: str, *, errno: int | None = None, winerror: int | None = None) -> OSError:
    """An ``OSError`` like the OS would raise; with *winerror*, one carrying that code.

    On Linux the ``winerror`` attribute is set by hand, which is all the classification reads.
    """
    if winerror is not None:
        message = _WIN_MESSAGES.get(winerror, f"Windows error {winerror}")
        if os.name == "nt":  # the constructor maps winerror to errno itself
            return OSError(None, message, path, winerror)
        exc = PermissionError(_errno.EACCES, message, path)
        exc.winerror = winerror  # type: ignore[attr-defined]
        return exc
    code = _errno.EBUSY if errno is None else errno
    return OSError(code, os.strerror(code), path)


@dataclass(slots=True)
class Fault:
    """Fail *op* on paths matching *pattern* (``fnmatch``, ``*`` spans ``/``).

    Active for the first *times* matching calls, or for *seconds* of layer-clock time from the
    first matching call, or (neither given) for ever.
    """

    op: Op
    pattern: str
    errno: int | None = None
    winerror: int | None = None
    times: int | None = None
    seconds: float | None = None
    hits: int = 0
    started: float | None = None
    passed: int = 0  # matching calls let through after the fault ended

    def active(self, now: float) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.seconds is not None and self.started is not None:
            return now - self.started < self.seconds
        return True


@dataclass
class FaultInjector:
    """Installs :class:`Fault` s over the primitives; a context manager."""

    faults: list[Fault] = field(default_factory=list)
    calls: dict[Op, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _saved: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def fail(
        self,
        op: Op | str,
        pattern: str = "*",
        *,
        errno: int | None = None,
        winerror: int | None = None,
        times: int | None = None,
        seconds: float | None = None,
    ) -> Fault:
        fault = Fault(Op(op), pattern, errno, winerror, times, seconds)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _check(self, op: Op, args: tuple[Any, ...]) -> None:
        paths = [os.fspath(a) for a in args if isinstance(a, str | os.PathLike)]
        with self._lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            for fault in self.faults:
                if fault.op is not op or not any(
                    fnmatch.fnmatchcase(p.replace("\\", "/"), fault.pattern) for p in paths
                ):
                    continue
                now = runtime().clock()
                if fault.started is None:
                    fault.started = now
                if fault.active(now):
                    fault.hits += 1
                    raise make_error(paths[0], errno=fault.errno, winerror=fault.winerror)
                fault.passed += 1

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        op = _PRIM_OPS[name]
        if name == "write":  # os.write(fd, data): no path to match, only "*" faults apply

            def write(fd: int, data: Any) -> Any:
                self._check(op, (f"<fd {fd}>",))
                return original(fd, data)

            return write

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._check(op, args)
            return original(*args, **kwargs)

        return wrapper

    def install(self) -> None:
        if self._saved:
            raise RuntimeError("fault injector already installed")
        for name in _prims.NAMES:
            original = getattr(_prims, name)
            self._saved[name] = original
            setattr(_prims, name, self._wrap(name, original))

    def uninstall(self) -> None:
        for name, original in self._saved.items():
            setattr(_prims, name, original)
        self._saved.clear()

    def __enter__(self) -> Self:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()
