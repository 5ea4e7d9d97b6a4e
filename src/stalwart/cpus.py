"""How many threads work that needs the CPU gets."""

from __future__ import annotations

import os

__all__ = ["usable_cpus"]


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, where the OS has one), at most 8.

    Threads that inflate, hash and write release the GIL only for part of each file; the rest
    is Python that holds it. One thread per CPU keeps every CPU busy; more only take turns at
    the GIL (measured on 2 CPUs, 61 wheels: 2 threads 2.1 s, 4 threads 2.6 s, 8 threads 2.7 s).
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # Windows and macOS have no affinity call
        count = os.cpu_count() or 2
    return max(1, min(8, count))
