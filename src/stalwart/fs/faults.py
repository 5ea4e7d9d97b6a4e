"""Fault injection: make chosen OS calls on chosen paths fail, in this process.

The injector swaps the primitives in ``stalwart.fs._prims`` for wrappers, so a fault surfaces
exactly where the OS would raise and the real retry loop above it runs. Time-limited faults use
the filesystem layer's clock, so tests with a fake clock never sleep::

    with FaultInjector() as faults:
        faults.fail(Op.REPLACE, "*/demo.pyd", winerror=32, seconds=0.5)
        install(...)

It also simulates a crash: with ``crash_after=K`` the first K mutations run and every later one
raises :class:`SimulatedCrash` (a ``BaseException``, which no retry loop or cleanup catches as
an error), so the disk is left as a process killed before mutation K+1 would leave it. And it
can list directories in another order (``listing="reversed"`` / ``"casefold"``), since deletion
order follows listing order, which differs between filesystems.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import fnmatch
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from . import _prims
from ._classify import Op
from ._retry import runtime

__all__ = [
    "Fault",
    "FaultInjector",
    "Mutation",
    "SimulatedCrash",
    "make_error",
    "primitives_replaced",
]

Listing = Literal["native", "casefold", "reversed"]


class SimulatedCrash(BaseException):
    """The process "died" before this mutation (``FaultInjector(crash_after=K)``)."""


@dataclass(frozen=True, slots=True)
class Mutation:
    """One mutating primitive call that ran: its name and its path arguments."""

    op: str
    paths: tuple[str, ...]


_PRIM_OPS: dict[str, Op] = {
    "replace": Op.REPLACE,
    "rename": Op.RENAME,
    "link": Op.LINK,
    "unlink": Op.UNLINK,
    "rmdir": Op.RMDIR,
    "mkdir": Op.MKDIR,
    "chmod": Op.CHMOD,
    "utime": Op.CHMOD,
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
    """Fail *op* on paths matching *pattern* (``fnmatch``, ``*`` spans ``/``) and *when*.

    Active for the first *times* matching calls, or for *seconds* of layer-clock time from the
    first matching call, or (neither given) for ever. *when* decides on what a path *is* rather
    than how it is named: a Windows lock follows the open file through renames, so a test
    holding a file matches it by device and inode.
    """

    op: Op
    pattern: str
    errno: int | None = None
    winerror: int | None = None
    times: int | None = None
    seconds: float | None = None
    error: OSError | None = None  # raise this very object instead of making one
    when: Callable[[str], bool] | None = None
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
    """Installs :class:`Fault` s over the primitives; a context manager.

    ``crash_after``: let that many mutations run, then raise :class:`SimulatedCrash` before
    each further one. ``record``: keep every mutation that ran in :attr:`mutations`.
    ``listing``: the order directory reads return entries in.
    """

    faults: list[Fault] = field(default_factory=list)
    calls: dict[Op, int] = field(default_factory=dict)
    crash_after: int | None = None
    record: bool = False
    listing: Listing = "native"
    short_writes: int | None = None  # each os.write writes at most this many bytes
    mutations: list[Mutation] = field(default_factory=list)
    count: int = 0  # mutations that ran
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
        error: OSError | None = None,
        when: Callable[[str], bool] | None = None,
    ) -> Fault:
        fault = Fault(Op(op), pattern, errno, winerror, times, seconds, error, when)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _check(self, name: str, op: Op, args: tuple[Any, ...]) -> None:
        paths = [os.fspath(a) for a in args if isinstance(a, str | os.PathLike)]
        with self._lock:
            if self.crash_after is not None and self.count >= self.crash_after:
                raise SimulatedCrash(f"before {name}{tuple(paths)!r}")
            self.count += 1
            if self.record:
                self.mutations.append(Mutation(name, tuple(paths)))
            self.calls[op] = self.calls.get(op, 0) + 1
            for fault in self.faults:
                if fault.op is not op or not any(
                    fnmatch.fnmatchcase(p.replace("\\", "/"), fault.pattern)
                    and (fault.when is None or fault.when(p))
                    for p in paths
                ):
                    continue
                now = runtime().clock()
                if fault.started is None:
                    fault.started = now
                if fault.active(now):
                    fault.hits += 1
                    if fault.error is not None:
                        raise fault.error
                    raise make_error(paths[0], errno=fault.errno, winerror=fault.winerror)
                fault.passed += 1

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        op = _PRIM_OPS[name]
        if name == "write":  # os.write(fd, data): no path to match, only "*" faults apply

            def write(fd: int, data: Any) -> Any:
                self._check(name, op, (f"<fd {fd}>",))
                if self.short_writes is not None:
                    data = bytes(memoryview(data)[: self.short_writes])
                return original(fd, data)

            return write

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._check(name, op, args)
            return original(*args, **kwargs)

        return wrapper

    def _ordered(self, names: list[str]) -> list[str]:
        return sorted(names, key=str.casefold, reverse=self.listing == "reversed")

    def _listing_wrappers(self) -> dict[str, Callable[..., Any]]:
        scandir, listdir = _prims.scandir, _prims.listdir

        def ordered_scandir(path: Any) -> Any:
            with scandir(path) as it:
                entries = sorted(
                    it, key=lambda e: e.name.casefold(), reverse=self.listing == "reversed"
                )
            return contextlib.nullcontext(entries)

        def ordered_listdir(path: Any) -> list[str]:
            return self._ordered(listdir(path))

        return {"scandir": ordered_scandir, "listdir": ordered_listdir}

    def install(self) -> None:
        if self._saved:
            raise RuntimeError("fault injector already installed")
        for name in _prims.NAMES:
            original = getattr(_prims, name)
            self._saved[name] = original
            setattr(_prims, name, self._wrap(name, original))
        if self.listing != "native":
            for name, wrapper in self._listing_wrappers().items():
                self._saved[name] = getattr(_prims, name)
                setattr(_prims, name, wrapper)

    @property
    def installed(self) -> bool:
        return bool(self._saved)

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


@contextlib.contextmanager
def primitives_replaced(**replacements: Callable[..., Any]) -> Iterator[None]:
    """Put *replacements* (``replace=..., link=...``: names of the raw OS calls the layer
    makes) in place of those calls for the duration: the benchmark of the layer's own cost
    swaps them for no-ops, as the injector swaps them for failing wrappers."""
    unknown = set(replacements) - set(_prims.NAMES)
    if unknown:
        raise ValueError(f"not primitives of stalwart.fs: {sorted(unknown)}")
    saved = {name: getattr(_prims, name) for name in replacements}
    try:
        for name, function in replacements.items():
            setattr(_prims, name, function)
        yield
    finally:
        for name, original in saved.items():
            setattr(_prims, name, original)
