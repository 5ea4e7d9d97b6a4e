"""The one retry loop every filesystem mutation falls into after its first failure.

The runtime (policy, clock, sleeper, statistics, observers) is a module global, not a context
variable, on purpose: worker threads extracting wheels in parallel must see the same policy and
feed the same counters without each being handed a context.
"""

from __future__ import annotations

import os
import random
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from stalwart.errors import LockTimeoutError

from . import _prims
from ._classify import WIN_ACCESS_DENIED, Op, Target, Transience, classify
from ._policy import RetryPolicy, policy_from_env

if TYPE_CHECKING:
    import logging

__all__ = [
    "Clock",
    "Sleeper",
    "RetryEvent",
    "LockEpisode",
    "OpStats",
    "Stats",
    "Runtime",
    "runtime",
    "configure",
    "settings",
    "retry",
    "remember_fresh",
    "is_fresh",
    "forget_fresh",
]

T = TypeVar("T")


def _log() -> logging.Logger:
    """The ``stalwart.fs`` logger, imported on the first retry: logging costs ~8 ms of
    start-up, and an install where nothing is locked never logs."""
    import logging

    return logging.getLogger("stalwart.fs")


class Clock(Protocol):
    """Monotonic seconds; tests inject a fake one."""

    def __call__(self) -> float: ...


class Sleeper(Protocol):
    """Blocks for *seconds*; tests inject one that only advances a fake clock."""

    def __call__(self, seconds: float, /) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One failed attempt about to be retried; handed to observers."""

    op: Op
    paths: tuple[str, ...]
    attempt: int
    elapsed: float
    delay: float
    error: OSError


@dataclass(frozen=True, slots=True)
class LockEpisode:
    """A run of transient failures on one operation, and how it ended."""

    op: Op
    paths: tuple[str, ...]
    attempts: int
    waited: float
    error: OSError
    resolved: bool


@dataclass(frozen=True, slots=True)
class OpStats:
    episodes: int = 0
    retries: int = 0
    waited: float = 0.0
    failures: int = 0


class Stats:
    """Thread-safe counters of lock episodes, per operation kind, for the CLI's summary."""

    _KEEP = 200  # episodes kept in detail; counters keep counting past it

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_op: dict[Op, OpStats] = {}
        self._episodes: list[LockEpisode] = []

    def record(self, episode: LockEpisode) -> None:
        with self._lock:
            old = self._by_op.get(episode.op, OpStats())
            self._by_op[episode.op] = OpStats(
                episodes=old.episodes + 1,
                retries=old.retries + episode.attempts - 1,
                waited=old.waited + episode.waited,
                failures=old.failures + (not episode.resolved),
            )
            if len(self._episodes) < self._KEEP:
                self._episodes.append(episode)

    def by_op(self) -> dict[Op, OpStats]:
        with self._lock:
            return dict(self._by_op)

    def episodes(self) -> list[LockEpisode]:
        with self._lock:
            return list(self._episodes)

    def total(self) -> OpStats:
        values = self.by_op().values()
        return OpStats(
            episodes=sum(s.episodes for s in values),
            retries=sum(s.retries for s in values),
            waited=sum(s.waited for s in values),
            failures=sum(s.failures for s in values),
        )

    def summary(self) -> str:
        """``3 lock retries, waited 0.412 s (replace 2, unlink 1)`` or ``no lock retries``."""
        by_op = self.by_op()
        total = self.total()
        if not total.retries and not total.failures:
            return "no lock retries"
        parts = ", ".join(f"{op} {s.retries}" for op, s in sorted(by_op.items()) if s.retries)
        text = f"{total.retries} lock retries, waited {total.waited:.3f} s"
        if parts:
            text += f" ({parts})"
        if total.failures:
            text += f"; {total.failures} still locked at the deadline"
        return text


@dataclass(slots=True)
class Runtime:
    """What the retry loop reads: swapped whole by :func:`configure` and :func:`settings`."""

    policy: RetryPolicy
    clock: Clock = time.monotonic
    sleep: Sleeper = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    stats: Stats = field(default_factory=Stats)
    observers: tuple[Callable[[RetryEvent], None], ...] = ()


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The active runtime; the default policy reads ``STALWART_LOCK_TIMEOUT`` once."""
    global _runtime  # noqa: PLW0603 - one process-wide runtime, see module docstring
    if _runtime is None:
        _runtime = Runtime(policy=policy_from_env())
    return _runtime


def configure(
    *,
    policy: RetryPolicy | None = None,
    timeout: float | None = None,
    clock: Clock | None = None,
    sleep: Sleeper | None = None,
    seed: int | None = None,
    observers: tuple[Callable[[RetryEvent], None], ...] | None = None,
) -> Runtime:
    """Change the process-wide retry settings; returns the runtime now in force."""
    global _runtime  # noqa: PLW0603
    old = runtime()
    new_policy = policy or old.policy
    if timeout is not None:
        new_policy = new_policy.with_timeout(timeout)
    _runtime = Runtime(
        policy=new_policy,
        clock=clock or old.clock,
        sleep=sleep or old.sleep,
        rng=old.rng if seed is None else random.Random(seed),  # noqa: S311 - jitter, not secrets
        stats=old.stats,
        observers=old.observers if observers is None else observers,
    )
    return _runtime


@contextmanager
def settings(
    *,
    policy: RetryPolicy | None = None,
    timeout: float | None = None,
    clock: Clock | None = None,
    sleep: Sleeper | None = None,
    seed: int | None = None,
    observers: tuple[Callable[[RetryEvent], None], ...] | None = None,
    fresh_stats: bool = False,
) -> Iterator[Runtime]:
    """Apply :func:`configure` arguments for a block, then restore the previous runtime."""
    global _runtime  # noqa: PLW0603
    saved = runtime()
    rt = configure(
        policy=policy, timeout=timeout, clock=clock, sleep=sleep, seed=seed, observers=observers
    )
    if fresh_stats:
        rt.stats = Stats()
    try:
        yield rt
    finally:
        _runtime = saved


#: Files this process created (staged files, temporaries, launchers, RECORDs) and the names
#: they were renamed to: an access-denied on one of them cannot be an ACL decision. A set of
#: strings, read and added to under the GIL; cleared past _FRESH_MAX so a long-lived process
#: does not grow it for ever (a cleared entry only means a shorter wait).
_fresh: set[str] = set()
_FRESH_MAX = 1 << 20


def remember_fresh(path: str) -> None:
    """Note that this process has just created (or renamed its own file to) *path*."""
    if len(_fresh) >= _FRESH_MAX:
        _fresh.clear()
    _fresh.add(path)


def is_fresh(path: str) -> bool:
    return path in _fresh


def forget_fresh() -> None:
    """Forget every file created so far (a library caller starting an unrelated command)."""
    _fresh.clear()


def _access_denied_target(paths: tuple[str, ...]) -> Target:
    """Look at the paths behind a Windows access-denied error, clearing read-only on the target.

    Only called after a failure with winerror 5, so the extra stat costs nothing on the fast
    path. A file this process created is its own class. A read-only target is made writable
    (pip and uv do the same before deleting), after which a further access-denied can only be
    a lock.

    The target is the last path: the file the operation removes, overwrites or creates. Only
    its read-only attribute can deny the operation; the source of a rename, replace or copy is
    never changed, since its mode is what the destination must end up with, and an operation
    that fails (or a transaction rolled back) must leave it exactly as it was.
    """
    if any(path in _fresh for path in paths):
        return Target.OWN_FILE
    seen_file = False
    target = paths[-1] if paths else None
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            return Target.DIRECTORY
        seen_file = True
        if path == target and not st.st_mode & stat.S_IWRITE:
            try:
                _prims.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IWRITE)
            except OSError:
                return Target.READONLY_FILE
    return Target.FILE if seen_file else Target.MISSING


def retry(
    op: Op,
    paths: tuple[str, ...],
    call: Callable[..., T],
    first: OSError,
    *args: object,
    target: Target = Target.UNKNOWN,
) -> T:
    """Retry ``call(*args)`` after it raised *first*, as the policy allows; the slow path only.

    Callers pass the function and its arguments rather than a closure: a lambda over the
    arguments would make every call of the fast path pay for closure cells. *target* is what
    the caller knows about the path (e.g. a directory it has just emptied).

    Non-transient errors are re-raised unchanged, so callers can still match on their type.
    When the budget is spent, :class:`LockTimeoutError` names the operation, paths, attempts,
    time and last error. The sleep before the last attempt is clamped to the deadline, so an
    operation never runs past its budget by more than one attempt.
    """
    rt = runtime()
    policy = rt.policy
    start = rt.clock()
    attempt = 1
    exc = first
    known = target
    while True:
        target = known
        if getattr(exc, "winerror", None) == WIN_ACCESS_DENIED:
            target = _access_denied_target(paths)
        kind = classify(exc, op, target)
        elapsed = rt.clock() - start
        if kind is Transience.PERMANENT:
            if attempt > 1:
                rt.stats.record(LockEpisode(op, paths, attempt, elapsed, exc, resolved=False))
            raise exc
        remaining = policy.budget(kind is Transience.BRIEF) - elapsed
        if remaining <= 0:
            rt.stats.record(LockEpisode(op, paths, attempt, elapsed, exc, resolved=False))
            raise LockTimeoutError(str(op), paths, attempt, elapsed, exc) from exc
        delay = min(policy.delay(attempt, rt.rng), remaining)
        _log().debug(
            "%s %s: %s (attempt %d, %.3f s elapsed); retrying in %.4f s",
            op,
            " -> ".join(paths),
            exc,
            attempt,
            elapsed,
            delay,
        )
        if rt.observers:
            event = RetryEvent(op, paths, attempt, elapsed, delay, exc)
            for observer in rt.observers:
                observer(event)
        rt.sleep(delay)
        attempt += 1
        try:
            result = call(*args)
        except OSError as again:
            exc = again
            continue
        rt.stats.record(LockEpisode(op, paths, attempt, rt.clock() - start, exc, resolved=True))
        return result
