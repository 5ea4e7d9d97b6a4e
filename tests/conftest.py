"""Shared fixtures: a fake clock for the filesystem layer's retry loop, and fault injection.

Kept small and generic on purpose; test modules add their own fixtures in their own files.
Shared builders live beside this file: ``wheelfactory`` (wheels and zips), ``venvs`` (virtual
environments), ``treesnap`` (tree snapshots).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import stalwart.fs
from stalwart.fs.faults import FaultInjector
from stalwart.journalkey import journal_key
from venvs import Venv, make_venv


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps.

    ``sleeps`` records every requested sleep, in order. A positive sleep always moves the clock
    forward, even by less than one float step at the current time, as a real sleep would.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.start = start
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"negative sleep {seconds!r}"
        self.sleeps.append(seconds)
        if seconds > 0:
            self.now = max(self.now + seconds, math.nextafter(self.now, math.inf))

    @property
    def elapsed(self) -> float:
        """Fake seconds since the fixture started."""
        return self.now - self.start

    @property
    def slept(self) -> float:
        return math.fsum(self.sleeps)


@pytest.fixture
def fake_time() -> Iterator[FakeTime]:
    """Fake clock and sleep for the filesystem layer, fixed jitter seed, fresh statistics."""
    fake = FakeTime()
    with stalwart.fs.settings(clock=fake.clock, sleep=fake.sleep, seed=1234, fresh_stats=True):
        yield fake


@pytest.fixture
def faults() -> Iterator[FaultInjector]:
    """An installed :class:`FaultInjector`; uninstalled (primitives restored) afterwards."""
    injector = FaultInjector()
    injector.install()
    try:
        yield injector
    finally:
        injector.uninstall()


@pytest.fixture(scope="session", autouse=True)
def _own_state_and_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """In-process tests never read or write the user's cache or journal key."""
    saved = {k: os.environ.get(k) for k in ("STALWART_CACHE_DIR", "STALWART_STATE_DIR")}
    base = tmp_path_factory.mktemp("stalwart-home")
    os.environ["STALWART_CACHE_DIR"] = str(base / "cache")
    os.environ["STALWART_STATE_DIR"] = str(base / "state")
    journal_key(create=True)  # made up front: not a mutation of whichever commit comes first
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        # Iteratively: the cache may hold trees deeper than shutil.rmtree (which pytest's own
        # clean-up uses) can recurse into.
        stalwart.fs.rmtree(base)


@pytest.fixture(scope="session")
def pristine_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """One real venv (no pip) per test process, never changed: tests copy it."""
    return make_venv(tmp_path_factory.mktemp("pristine") / "venv")


# -- a test package index (tests/indexserver.py) ------------------------------------------------
# Self-contained block: the loopback index server every network and resolver test can use.

from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from indexserver import IndexServer, serve_index  # noqa: E402


@pytest.fixture
def index_server() -> Iterator[Callable[..., IndexServer]]:
    """Start test indexes: ``index_server(wheels, **serve_index_options)``; all stopped after
    the test. Loopback only (127.0.0.1, a random port), no internet."""
    started: list[IndexServer] = []

    def start(wheels: Any = (), **options: Any) -> IndexServer:
        server = serve_index(wheels, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def deep_tmp(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path`` for a test that makes trees deeper than the recursion limit: removed with
    stalwart's iterative rmtree afterwards, since pytest's recursive clean-up would crash."""
    try:
        yield tmp_path
    finally:
        for child in list(tmp_path.iterdir()):
            stalwart.fs.rmtree(child)
