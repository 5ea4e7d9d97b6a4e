"""The retry policy: one frozen value and the pure maths of its back-off."""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, replace

__all__ = [
    "RetryPolicy",
    "DEFAULT_TIMEOUT",
    "MIN_BRIEF_TIMEOUT",
    "BRIEF_FRACTION",
    "ENV_LOCK_TIMEOUT",
    "policy_from_env",
]

DEFAULT_TIMEOUT = 10.0  # seconds; uv waits about as long in total for a locked launcher
#: Errors that may be real (access denied on a file stalwart did not just write, too many open
#: files) get this fraction of the budget, at least MIN_BRIEF_TIMEOUT, never more than the
#: budget itself: raising --lock-timeout for a slow scanner raises this too.
BRIEF_FRACTION = 0.1
MIN_BRIEF_TIMEOUT = 1.0
ENV_LOCK_TIMEOUT = "STALWART_LOCK_TIMEOUT"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long stalwart waits out a lock episode on one operation.

    ``timeout`` is a monotonic deadline per operation, measured from its first failure; 0 means
    "no retry". Sleeps start at ``first_delay``, grow by ``multiplier`` with +/- ``jitter``
    (a fraction) and never exceed ``max_delay``. Errors that could be real (Windows access
    denied, too many open files) get the brief budget: ``brief_timeout`` if set, else
    :data:`BRIEF_FRACTION` of ``timeout`` but at least :data:`MIN_BRIEF_TIMEOUT`; never more
    than ``timeout``.
    """

    timeout: float = DEFAULT_TIMEOUT
    first_delay: float = 0.001
    multiplier: float = 2.0
    max_delay: float = 0.2
    jitter: float = 0.25
    brief_timeout: float | None = None

    def __post_init__(self) -> None:
        # Written as "not (good)" so that NaN, for which every comparison is false, fails too.
        brief = 0.0 if self.brief_timeout is None else self.brief_timeout
        if not (self.timeout >= 0 and brief >= 0):
            raise ValueError("lock timeouts must be >= 0 seconds")
        if not (0 < self.first_delay <= self.max_delay < math.inf):
            raise ValueError("need 0 < first_delay <= max_delay < inf")
        if not (1 <= self.multiplier < math.inf and 0 <= self.jitter < 1):
            raise ValueError("need 1 <= multiplier < inf and 0 <= jitter < 1")

    def with_timeout(self, timeout: float) -> RetryPolicy:
        return replace(self, timeout=timeout)

    def budget(self, brief: bool) -> float:
        """Seconds an operation may keep retrying, counted from its first failure."""
        if not brief:
            return self.timeout
        if self.brief_timeout is not None:
            return min(self.timeout, self.brief_timeout)
        return min(self.timeout, max(MIN_BRIEF_TIMEOUT, self.timeout * BRIEF_FRACTION))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Sleep before retry number *attempt* (1 = after the first failure), capped."""
        try:
            base = self.first_delay * self.multiplier ** min(attempt - 1, 64)
        except OverflowError:
            base = self.max_delay
        if self.jitter and rng is not None:
            base *= 1.0 + rng.uniform(-self.jitter, self.jitter)
        return min(base, self.max_delay)


def policy_from_env(environ: dict[str, str] | None = None) -> RetryPolicy:
    """The default policy, with ``STALWART_LOCK_TIMEOUT`` (seconds) applied when set."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_LOCK_TIMEOUT, "").strip()
    if not raw:
        return RetryPolicy()
    try:
        timeout = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_LOCK_TIMEOUT}={raw!r} is not a number of seconds") from None
    if not timeout >= 0:  # also rejects nan
        raise ValueError(f"{ENV_LOCK_TIMEOUT}={raw!r} must be >= 0 seconds")
    return RetryPolicy(timeout=timeout)
