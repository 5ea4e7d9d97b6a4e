"""When to try a request again, and how long to wait first. Pure, apart from the budget's lock.

What counts as transient (RFC 9110 and what uv learned in production): a connection that could
not be opened or broke, a timeout, a body that ended early (astral-sh/uv#5555, #9213), 429 Too
Many Requests (astral-sh/uv#6029) and any 5xx. Other 4xx answers are the server's final word.
"""

from __future__ import annotations

import threading

__all__ = [
    "AttemptFailed",
    "RetryBudget",
    "backoff",
    "parse_retry_after",
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "MAX_RETRY_AFTER",
]

BACKOFF_BASE = 0.5
"""Seconds before the first retry (before jitter); doubles with each retry."""
BACKOFF_CAP = 10.0
"""Longest wait between two attempts that back-off alone chooses."""
MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured; a server asking for more is not retried at all (waiting
less than it asked would only earn another refusal)."""


class AttemptFailed(Exception):
    """One attempt at a request failed; the retry loop decides whether there is another.

    *url* is already redacted. Never leaves :mod:`stalwart.net`: the client turns the last one
    into a :class:`~stalwart.errors.NetworkError`.
    """

    def __init__(
        self,
        url: str,
        problem: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(problem)
        self.url = url
        self.problem = problem
        self.transient = transient
        self.status = status
        self.retry_after = retry_after


def backoff(retry: int, jitter: float) -> float:
    """Seconds to wait before retry number *retry* (1-based).

    Exponential (``BACKOFF_BASE * 2**(retry-1)``, capped at :data:`BACKOFF_CAP`), scaled by
    *jitter* in [0, 1) to a factor between 0.5 and 1.5, so clients that failed together do not
    come back together.
    """
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** max(0, retry - 1))
    return base * (0.5 + jitter)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (RFC 9110 section 10.2.3): a number of
    seconds or an HTTP date, *now* being the wall-clock time. ``None`` when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one is read as such
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


class RetryBudget:
    """Seconds of waiting left for a whole client, shared by its threads."""

    def __init__(self, seconds: float) -> None:
        self._left = seconds
        self._lock = threading.Lock()

    def take(self, seconds: float) -> bool:
        """Reserve *seconds* of waiting; False (and nothing taken) when not that much is left."""
        with self._lock:
            if seconds > self._left:
                return False
            self._left -= seconds
            return True

    @property
    def left(self) -> float:
        return self._left
