"""The retry loop of stalwart.fs, driven through every public operation on real files.

Faults are injected under the primitives (``stalwart.fs.faults``) and time is fake (the
``fake_time`` fixture), so lock episodes of many seconds run in microseconds and never sleep.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

import stalwart.fs as fs
from platforms import posix_only
from stalwart.errors import LOCK_HINT, LockTimeoutError
from stalwart.fs.faults import Fault, FaultInjector

if TYPE_CHECKING:
    from conftest import FakeTime

POLICY = fs.RetryPolicy()  # the defaults: 10 s budget, 1 s brief budget, 0.2 s cap

# Lock-like errors every operation must wait out: a POSIX errno and a Windows sharing violation.
LOCKS = {
    "EBUSY": {"errno": errno.EBUSY},
    "WinError32": {"winerror": 32},
}


@pytest.fixture(autouse=True)
def policy(fake_time: FakeTime) -> Iterator[fs.RetryPolicy]:
    """Pin the default policy, whatever STALWART_LOCK_TIMEOUT says, over the fake clock."""
    with fs.settings(policy=POLICY):
        yield POLICY


def stats() -> fs.Stats:
    return fs.runtime().stats


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def temp_files(directory: str | Path) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(fs.TEMP_SUFFIX)]


def assert_sane_sleeps(fake: FakeTime, policy: fs.RetryPolicy) -> None:
    """Every sleep in (0, max_delay], growing (within jitter) until the cap: no busy loop."""
    sleeps = fake.sleeps
    assert sleeps, "expected the retry loop to sleep"
    assert all(0 < s <= policy.max_delay for s in sleeps), sleeps
    shrink = (1 - policy.jitter) / (1 + policy.jitter)
    # The last sleep is clamped to the deadline and may be short; the others only grow,
    # give or take the jitter, until they reach the cap.
    for before, after in itertools.pairwise(sleeps[:-1]):
        assert after >= min(before * policy.multiplier, policy.max_delay) * shrink * 0.999
    if sum(sleeps) >= 4 * policy.max_delay:
        assert max(sleeps) >= policy.max_delay * (1 - policy.jitter)
        capped_floor = policy.max_delay * (1 - policy.jitter)
        bound = 64 + sum(sleeps) / capped_floor
        assert len(sleeps) <= bound


def assert_lock_timeout(
    err: LockTimeoutError,
    *,
    operation: fs.Op,
    attempts: int,
    lock: dict[str, int],
    fake: FakeTime,
    budget: float,
) -> None:
    assert isinstance(err, OSError)
    assert err.operation == str(operation)
    assert err.attempts == attempts
    if "winerror" in lock:
        assert err.winerror == lock["winerror"]
        assert err.errno == errno.EACCES  # what the OS maps sharing violations to
        assert f"WinError {lock['winerror']}" in str(err)
    else:
        assert err.winerror is None
        assert err.errno == lock["errno"]
        assert errno.errorcode[lock["errno"]] in str(err)
    assert err.elapsed == pytest.approx(budget, abs=1e-6)  # the whole budget, no more
    assert err.elapsed <= budget + POLICY.max_delay
    assert fake.elapsed <= budget + POLICY.max_delay
    assert err.paths
    assert err.filename == err.paths[0]
    message = str(err)
    for path in err.paths:
        assert path in message
    assert LOCK_HINT in message
    assert "Hint:" in message
    assert isinstance(err.last_error, OSError)
    assert err.__cause__ is err.last_error


# --- one scenario per public operation -----------------------------------------------------------


class Scenario:
    """Sets up real files for one operation, runs it, and checks the disk afterwards."""

    op: ClassVar[fs.Op]  # the primitive the fault goes on
    raises_on_timeout: ClassVar[bool] = True
    single_call: ClassVar[bool] = True  # the operation calls its primitive exactly once
    enoent_raises: ClassVar[bool] = False  # an injected ENOENT surfaces as FileNotFoundError

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.setup()

    def p(self, *parts: str) -> str:
        return os.path.join(os.fspath(self.tmp), *parts)

    def setup(self) -> None:
        raise NotImplementedError

    @property
    def pattern(self) -> str:
        raise NotImplementedError

    def run(self) -> Any:
        raise NotImplementedError

    def check_paths(self, paths: tuple[str, ...]) -> None:
        raise NotImplementedError

    def check_done(self, result: Any) -> None:
        raise NotImplementedError

    def check_failed(self) -> None:
        """The disk after the operation gave up (lock timeout or a permanent error)."""
        raise NotImplementedError

    def check_left(self, result: Any) -> None:
        """For operations that report instead of raising (``empty_trash``)."""
        raise NotImplementedError


def write(path: str, data: bytes, mode: int | None = None) -> None:
    Path(path).write_bytes(data)
    if mode is not None:
        os.chmod(path, mode)


def read(path: str) -> bytes:
    return Path(path).read_bytes()


class Replace(Scenario):
    op = fs.Op.REPLACE
    enoent_raises = True
    pattern = "*/dst"

    def setup(self) -> None:
        self.src, self.dst = self.p("src"), self.p("dst")
        write(self.src, b"new")
        write(self.dst, b"old")

    def run(self) -> Any:
        return fs.replace(self.src, self.dst)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.src, self.dst)

    def check_done(self, result: Any) -> None:
        assert read(self.dst) == b"new"
        assert not os.path.exists(self.src)

    def check_failed(self) -> None:
        assert read(self.dst) == b"old"
        assert read(self.src) == b"new"


class Rename(Scenario):
    op = fs.Op.RENAME
    enoent_raises = True
    pattern = "*/src"

    def setup(self) -> None:
        self.src, self.dst = self.p("src"), self.p("dst")
        write(self.src, b"data")

    def run(self) -> Any:
        return fs.rename(self.src, self.dst)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.src, self.dst)

    def check_done(self, result: Any) -> None:
        assert read(self.dst) == b"data"
        assert not os.path.exists(self.src)

    def check_failed(self) -> None:
        assert read(self.src) == b"data"
        assert not os.path.exists(self.dst)


class WriteAtomic(Scenario):
    """A lock on the final replace of ``write_atomic``."""

    op = fs.Op.REPLACE
    pattern = "*/target"

    def setup(self) -> None:
        self.target = self.p("target")
        write(self.target, b"old")

    def run(self) -> Any:
        return fs.write_atomic(self.target, b"new contents")

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert len(paths) == 2
        assert paths[1] == self.target
        assert paths[0].endswith(fs.TEMP_SUFFIX)
        assert os.path.dirname(paths[0]) == os.fspath(self.tmp)

    def check_done(self, result: Any) -> None:
        assert read(self.target) == b"new contents"
        assert temp_files(self.tmp) == []

    def check_failed(self) -> None:
        assert read(self.target) == b"old"
        assert temp_files(self.tmp) == []


class WriteAtomicOpen(WriteAtomic):
    """A lock on creating the temporary file of ``write_atomic``."""

    op = fs.Op.OPEN
    pattern = "*" + fs.TEMP_SUFFIX

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert len(paths) == 1
        assert paths[0].endswith(fs.TEMP_SUFFIX)


class OpenForWrite(Scenario):
    op = fs.Op.OPEN
    enoent_raises = True
    pattern = "*/out.bin"

    def setup(self) -> None:
        self.path = self.p("out.bin")

    def run(self) -> Any:
        with fs.open_for_write(self.path) as writer:
            return writer.write(b"payload")

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.path,)

    def check_done(self, result: Any) -> None:
        assert result == 7
        assert read(self.path) == b"payload"

    def check_failed(self) -> None:
        assert not os.path.exists(self.path)


class Copy(Scenario):
    op = fs.Op.COPY
    enoent_raises = True
    pattern = "*/dst.bin"

    def setup(self) -> None:
        self.src, self.dst = self.p("src.bin"), self.p("dst.bin")
        write(self.src, b"\x00\x01data", mode=0o750)

    def run(self) -> Any:
        return fs.copy(self.src, self.dst)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.src, self.dst)

    def check_done(self, result: Any) -> None:
        assert read(self.dst) == b"\x00\x01data"
        assert mode_of(self.dst) == 0o750
        assert read(self.src) == b"\x00\x01data"

    def check_failed(self) -> None:
        assert not os.path.exists(self.dst)


class Link(Scenario):
    op = fs.Op.LINK
    enoent_raises = True
    pattern = "*/dst"

    def setup(self) -> None:
        self.src, self.dst = self.p("src"), self.p("dst")
        write(self.src, b"data")

    def run(self) -> Any:
        return fs.link(self.src, self.dst)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.src, self.dst)

    def check_done(self, result: Any) -> None:
        assert result is True
        assert os.path.samefile(self.src, self.dst)
        assert os.stat(self.src).st_nlink == 2

    def check_failed(self) -> None:
        assert not os.path.exists(self.dst)


class Unlink(Scenario):
    op = fs.Op.UNLINK
    enoent_raises = True
    pattern = "*/victim"

    def setup(self) -> None:
        self.path = self.p("victim")
        write(self.path, b"data")

    def run(self) -> Any:
        return fs.unlink(self.path)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.path,)

    def check_done(self, result: Any) -> None:
        assert not os.path.lexists(self.path)

    def check_failed(self) -> None:
        assert read(self.path) == b"data"


class Rmdir(Scenario):
    op = fs.Op.RMDIR
    enoent_raises = True
    pattern = "*/emptydir"

    def setup(self) -> None:
        self.path = self.p("emptydir")
        os.mkdir(self.path)

    def run(self) -> Any:
        return fs.rmdir(self.path)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.path,)

    def check_done(self, result: Any) -> None:
        assert not os.path.lexists(self.path)

    def check_failed(self) -> None:
        assert os.path.isdir(self.path)


class Rmtree(Scenario):
    op = fs.Op.UNLINK
    single_call = False
    pattern = "*/stubborn.txt"

    def setup(self) -> None:
        self.top = self.p("tree")
        self.stubborn = self.p("tree", "sub", "stubborn.txt")
        os.makedirs(self.p("tree", "sub", "deeper"))
        write(self.p("tree", "a.txt"), b"a")
        write(self.p("tree", "sub", "b.txt"), b"b")
        write(self.stubborn, b"locked")
        os.symlink(self.p("tree", "a.txt"), self.p("tree", "sub", "link"))

    def run(self) -> Any:
        return fs.rmtree(self.top)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.stubborn,)

    def check_done(self, result: Any) -> None:
        assert result == []
        assert not os.path.lexists(self.top)

    def check_failed(self) -> None:
        assert read(self.stubborn) == b"locked"


class Makedirs(Scenario):
    op = fs.Op.MKDIR
    single_call = False
    pattern = "*/leaf"

    def setup(self) -> None:
        self.mid = self.p("base", "mid")
        self.leaf = self.p("base", "mid", "leaf")
        os.makedirs(self.mid)

    def run(self) -> Any:
        return fs.makedirs(self.leaf)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.leaf,)

    def check_done(self, result: Any) -> None:
        assert os.path.isdir(self.leaf)

    def check_failed(self) -> None:
        assert not os.path.exists(self.leaf)


class MakedirsParent(Makedirs):
    """The lock is on a missing parent, created on the way down."""

    pattern = "*/mid"

    def setup(self) -> None:
        self.mid = self.p("base", "mid")
        self.leaf = self.p("base", "mid", "leaf")
        os.mkdir(self.p("base"))

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.mid,)

    def check_failed(self) -> None:
        assert not os.path.exists(self.mid)


class Chmod(Scenario):
    op = fs.Op.CHMOD
    enoent_raises = True
    pattern = "*/file"

    def setup(self) -> None:
        self.path = self.p("file")
        write(self.path, b"x", mode=0o644)

    def run(self) -> Any:
        return fs.chmod(self.path, 0o600)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.path,)

    def check_done(self, result: Any) -> None:
        assert mode_of(self.path) == 0o600

    def check_failed(self) -> None:
        assert mode_of(self.path) == 0o644


class SetTimes(Scenario):
    op = fs.Op.CHMOD  # utime is a metadata change, faulted and counted like chmod
    enoent_raises = True
    pattern = "*/file"

    def setup(self) -> None:
        self.path = self.p("file")
        write(self.path, b"x")
        self.before = os.stat(self.path).st_mtime_ns

    def run(self) -> Any:
        return fs.set_times(self.path, 1_000_000_000_000_000_000)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.path,)

    def check_done(self, result: Any) -> None:
        assert os.stat(self.path).st_mtime_ns == 1_000_000_000_000_000_000

    def check_failed(self) -> None:
        assert os.stat(self.path).st_mtime_ns == self.before


class Clone(Scenario):
    """A lock on creating the clone's file; where cloning is unsupported (tmpfs, ext4) the
    result is False and nothing is left, else the clone has the content."""

    op = fs.Op.OPEN
    pattern = "*/dst"

    def setup(self) -> None:
        self.src, self.dst = self.p("src"), self.p("dst")
        write(self.src, b"cloned", mode=0o644)

    def run(self) -> Any:
        return fs.clone(self.src, self.dst)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.dst,)

    def check_done(self, result: Any) -> None:
        if result:
            assert read(self.dst) == b"cloned"
        else:
            assert not os.path.exists(self.dst)
        assert read(self.src) == b"cloned"

    def check_failed(self) -> None:
        assert not os.path.exists(self.dst)
        assert read(self.src) == b"cloned"


class MoveToTrash(Scenario):
    op = fs.Op.RENAME
    pattern = "*/victim.pyd"

    def setup(self) -> None:
        self.path = self.p("victim.pyd")
        self.trash = self.p("trash")
        write(self.path, b"module")

    def run(self) -> Any:
        return fs.move_to_trash(self.path, self.trash)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert len(paths) == 2
        assert paths[0] == self.path
        assert os.path.dirname(paths[1]) == self.trash

    def check_done(self, result: Any) -> None:
        assert os.path.dirname(result) == self.trash
        assert os.path.basename(result).startswith("victim.pyd.")
        assert read(result) == b"module"
        assert not os.path.lexists(self.path)

    def check_failed(self) -> None:
        assert read(self.path) == b"module"
        assert os.listdir(self.trash) == []


class RmdirIfEmpty(Scenario):
    """``rmdir_if_empty`` waits out a lock on an empty directory; past the budget it raises
    (a locked directory is not a full one: a caller pruning after a commit must know)."""

    op = fs.Op.RMDIR
    pattern = "*/emptydir"
    permanent_returns_false = True  # an error that is no lock is an answer: "not removed"

    def setup(self) -> None:
        self.path = self.p("emptydir")
        os.mkdir(self.path)

    def run(self) -> Any:
        return fs.rmdir_if_empty(self.path)

    def check_paths(self, paths: tuple[str, ...]) -> None:
        assert paths == (self.path,)

    def check_done(self, result: Any) -> None:
        assert result is True
        assert not os.path.lexists(self.path)

    def check_failed(self) -> None:
        assert os.path.isdir(self.path)


SCENARIOS: list[type[Scenario]] = [
    Replace,
    Rename,
    WriteAtomic,
    WriteAtomicOpen,
    OpenForWrite,
    Copy,
    Link,
    Unlink,
    Rmdir,
    Rmtree,
    Makedirs,
    MakedirsParent,
    Chmod,
    SetTimes,
    Clone,
    MoveToTrash,
    RmdirIfEmpty,
]
# Scenarios that cannot run on Windows: mode bits beyond read-only, and a symlink (which needs a
# privilege there).
POSIX_SCENARIOS = {
    Copy: posix_only("checks that copy keeps mode 0o750"),
    Chmod: posix_only("checks mode bits Windows does not keep"),
    Rmtree: posix_only("makes a symlink"),
}


def param(cls: type[Scenario]) -> Any:
    return pytest.param(cls, marks=POSIX_SCENARIOS.get(cls, ()))


scenarios = pytest.mark.parametrize(
    "scenario_cls", [param(c) for c in SCENARIOS], ids=lambda c: c.__name__
)
locks = pytest.mark.parametrize("lock", list(LOCKS.values()), ids=list(LOCKS))


#: Every public operation and the scenario(s) that drive it.
COVERAGE: dict[str, list[type[Scenario]]] = {
    "replace": [Replace],
    "rename": [Rename],
    "write_atomic": [WriteAtomic, WriteAtomicOpen],
    "open_for_write": [OpenForWrite],
    "copy": [Copy],
    "link": [Link],
    "unlink": [Unlink],
    "rmdir": [Rmdir],
    "rmtree": [Rmtree],
    "makedirs": [Makedirs, MakedirsParent],
    "chmod": [Chmod],
    "set_times": [SetTimes],
    "clone": [Clone],
    "move_to_trash": [MoveToTrash],
    "rmdir_if_empty": [RmdirIfEmpty],
}
# Operations that on purpose make one attempt and never wait: tested on their own below.
NO_RETRY = {"empty_trash"}


def test_every_public_operation_has_a_scenario() -> None:
    not_operations = {"policy_from_env", "configure", "settings", "runtime", "classify", "retry"}
    not_operations.add("temp_name")  # names, mutates nothing
    not_operations.add("sync_directory")  # flushes, mutates nothing
    operations = {n for n in fs.__all__ if n.islower() and callable(getattr(fs, n))}
    assert operations - not_operations == set(COVERAGE) | NO_RETRY
    assert sorted(c.__name__ for cs in COVERAGE.values() for c in cs) == sorted(
        c.__name__ for c in SCENARIOS
    )


# --- (a) the lock ends before the deadline -------------------------------------------------------


@scenarios
@locks
def test_success_when_lock_ends_after_n_attempts(
    scenario_cls: type[Scenario],
    lock: dict[str, int],
    tmp_path: Path,
    faults: FaultInjector,
    fake_time: FakeTime,
) -> None:
    scenario = scenario_cls(tmp_path)
    fault = faults.fail(scenario.op, scenario.pattern, times=4, **lock)
    result = scenario.run()
    scenario.check_done(result)
    assert fault.hits == 4
    assert fault.passed == 1
    assert len(fake_time.sleeps) == 4
    assert all(0 < s <= POLICY.max_delay for s in fake_time.sleeps)
    by_op = stats().by_op()
    assert by_op[scenario.op].episodes == 1
    assert by_op[scenario.op].retries == 4
    assert by_op[scenario.op].failures == 0
    assert by_op[scenario.op].waited == pytest.approx(fake_time.slept)
    (episode,) = stats().episodes()
    assert episode.resolved
    assert episode.attempts == 5
    scenario.check_paths(episode.paths)


@scenarios
@locks
def test_success_when_lock_ends_after_some_seconds(
    scenario_cls: type[Scenario],
    lock: dict[str, int],
    tmp_path: Path,
    faults: FaultInjector,
    fake_time: FakeTime,
) -> None:
    scenario = scenario_cls(tmp_path)
    fault = faults.fail(scenario.op, scenario.pattern, seconds=2.5, **lock)
    result = scenario.run()
    scenario.check_done(result)
    assert 2.5 <= fake_time.elapsed <= 2.5 + POLICY.max_delay
    assert fault.hits == len(fake_time.sleeps)
    assert fault.hits > 5
    assert_sane_sleeps(fake_time, POLICY)
    total = stats().total()
    assert total.episodes == 1
    assert total.retries == fault.hits
    assert total.failures == 0
    assert stats().summary().startswith(f"{fault.hits} lock retries, waited 2.")


# --- (b) the lock outlasts the deadline ----------------------------------------------------------


@scenarios
@locks
def test_lock_timeout_after_the_deadline(
    scenario_cls: type[Scenario],
    lock: dict[str, int],
    tmp_path: Path,
    faults: FaultInjector,
    fake_time: FakeTime,
) -> None:
    scenario = scenario_cls(tmp_path)
    fault = faults.fail(scenario.op, scenario.pattern, **lock)
    if scenario.raises_on_timeout:
        with pytest.raises(LockTimeoutError) as info:
            scenario.run()
        err = info.value
        assert_lock_timeout(
            err,
            operation=scenario.op,
            attempts=fault.hits,
            lock=lock,
            fake=fake_time,
            budget=POLICY.timeout,
        )
        scenario.check_paths(err.paths)
    else:
        scenario.check_left(scenario.run())
        assert fake_time.elapsed <= POLICY.timeout + POLICY.max_delay
    assert fault.hits == len(fake_time.sleeps) + 1
    assert_sane_sleeps(fake_time, POLICY)
    scenario.check_failed()
    (episode,) = stats().episodes()
    assert not episode.resolved
    assert episode.attempts == fault.hits
    assert episode.waited == pytest.approx(POLICY.timeout)
    scenario.check_paths(episode.paths)
    assert stats().by_op()[scenario.op].failures == 1
    assert stats().summary().endswith("; 1 still locked at the deadline")


@scenarios
def test_lock_timeout_respects_a_configured_budget(
    scenario_cls: type[Scenario], tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    scenario = scenario_cls(tmp_path)
    faults.fail(scenario.op, scenario.pattern, errno=errno.ETXTBSY)
    with fs.settings(timeout=0.75):
        if scenario.raises_on_timeout:
            with pytest.raises(LockTimeoutError) as info:
                scenario.run()
            assert info.value.elapsed == pytest.approx(0.75)
            assert info.value.errno == errno.ETXTBSY
        else:
            scenario.check_left(scenario.run())
    assert fake_time.elapsed == pytest.approx(0.75)
    scenario.check_failed()


# --- (c) real errors are not retried -------------------------------------------------------------


@scenarios
def test_permission_error_is_raised_at_once_and_unchanged(
    scenario_cls: type[Scenario], tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    scenario = scenario_cls(tmp_path)
    fault = faults.fail(scenario.op, scenario.pattern, errno=errno.EACCES)
    if getattr(scenario, "permanent_returns_false", False):
        assert scenario.run() is False
    elif scenario.raises_on_timeout:
        with pytest.raises(OSError) as info:
            scenario.run()
        assert type(info.value) is PermissionError
        assert info.value.errno == errno.EACCES
        assert not isinstance(info.value, LockTimeoutError)
    else:
        scenario.check_left(scenario.run())
    assert fault.hits == 1
    if scenario.single_call:
        assert faults.calls[scenario.op] == 1
    assert fake_time.sleeps == []
    assert stats().episodes() == []
    assert stats().summary() == "no lock retries"
    scenario.check_failed()


@pytest.mark.parametrize(
    "scenario_cls", [param(s) for s in SCENARIOS if s.enoent_raises], ids=lambda c: c.__name__
)
def test_enoent_is_raised_at_once_and_unchanged(
    scenario_cls: type[Scenario], tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    scenario = scenario_cls(tmp_path)
    fault = faults.fail(scenario.op, scenario.pattern, errno=errno.ENOENT)
    with pytest.raises(FileNotFoundError) as info:
        scenario.run()
    assert type(info.value) is FileNotFoundError
    assert fault.hits == 1
    assert faults.calls[scenario.op] == 1
    assert fake_time.sleeps == []
    assert stats().episodes() == []
    scenario.check_failed()


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("replace", fs.replace),
        ("link", fs.link),
        ("unlink", lambda a, b: fs.unlink(a)),
        ("chmod", lambda a, b: fs.chmod(a, 0o600)),
    ],
)
def test_permanent_error_is_the_same_object(
    name: str,
    call: Callable[[str, str], object],
    tmp_path: Path,
    faults: FaultInjector,
    fake_time: FakeTime,
) -> None:
    original = PermissionError(errno.EACCES, "denied by policy", "x")
    fault = faults.fail(fs.Op(name), "*/a", error=original)
    a = tmp_path / "a"
    a.write_bytes(b"a")
    with pytest.raises(PermissionError) as info:
        call(str(a), str(tmp_path / "b"))
    assert info.value is original
    assert fault.hits == 1
    assert fake_time.sleeps == []


def test_transient_then_permanent_stops_at_the_permanent_error(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"s")
    busy = faults.fail(fs.Op.REPLACE, "*/dst", errno=errno.EBUSY, times=2)
    denied = faults.fail(fs.Op.REPLACE, "*/dst", errno=errno.EACCES)
    with pytest.raises(PermissionError) as info:
        fs.replace(src, dst)
    assert not isinstance(info.value, LockTimeoutError)
    assert busy.hits == 2
    assert denied.hits == 1
    assert faults.calls[fs.Op.REPLACE] == 3
    assert len(fake_time.sleeps) == 2
    (episode,) = stats().episodes()
    assert not episode.resolved
    assert episode.attempts == 3
    assert stats().by_op()[fs.Op.REPLACE].failures == 1


# --- (d) timeout 0: one attempt ------------------------------------------------------------------


@scenarios
def test_timeout_zero_means_a_single_attempt(
    scenario_cls: type[Scenario], tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    scenario = scenario_cls(tmp_path)
    fault = faults.fail(scenario.op, scenario.pattern, errno=errno.EBUSY)
    with fs.settings(timeout=0):
        if scenario.raises_on_timeout:
            with pytest.raises(LockTimeoutError) as info:
                scenario.run()
            assert info.value.attempts == 1
            assert info.value.elapsed == 0
            assert info.value.errno == errno.EBUSY
            scenario.check_paths(info.value.paths)
        else:
            scenario.check_left(scenario.run())
    assert fault.hits == 1
    if scenario.single_call:
        assert faults.calls[scenario.op] == 1
    assert fake_time.sleeps == []
    assert fake_time.elapsed == 0
    scenario.check_failed()


def test_timeout_zero_from_the_environment(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fs.ENV_LOCK_TIMEOUT, "0")
    path = tmp_path / "f"
    path.write_bytes(b"")
    faults.fail(fs.Op.UNLINK, "*/f", winerror=32)
    with fs.settings(policy=fs.policy_from_env()), pytest.raises(LockTimeoutError) as info:
        fs.unlink(path)
    assert info.value.attempts == 1
    assert info.value.winerror == 32
    assert fake_time.sleeps == []


# --- no fault: the fast path never enters the retry loop -----------------------------------------


@posix_only("runs every scenario, including those with POSIX mode bits and a symlink")
def test_no_faults_no_retries(tmp_path: Path, faults: FaultInjector, fake_time: FakeTime) -> None:
    for cls in SCENARIOS:
        (tmp_path / cls.__name__).mkdir()
        scenario = cls(tmp_path / cls.__name__)
        scenario.check_done(scenario.run())
    assert fake_time.sleeps == []
    assert stats().episodes() == []
    assert stats().summary() == "no lock retries"
    assert sum(faults.calls.values()) > len(SCENARIOS)


# --- Windows access denied and directory-not-empty ----------------------------------------------


def test_readonly_file_is_cleared_then_access_denied_retried_briefly(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path = tmp_path / "locked.pyd"
    path.write_bytes(b"x")
    os.chmod(path, 0o444)
    fault = faults.fail(fs.Op.UNLINK, "*/locked.pyd", winerror=5)
    with pytest.raises(LockTimeoutError) as info:
        fs.unlink(path)
    err = info.value
    assert err.winerror == 5
    assert mode_of(path) & stat.S_IWRITE  # the layer cleared read-only, as del /f would
    assert faults.calls[fs.Op.CHMOD] == 1  # once, not on every retry
    assert err.elapsed <= POLICY.budget(brief=True)
    assert err.elapsed == pytest.approx(POLICY.budget(brief=True))
    assert fake_time.elapsed <= POLICY.budget(brief=True) + 1e-9
    assert fault.hits == err.attempts > 2
    assert "WinError 5" in str(err)
    assert_sane_sleeps(fake_time, POLICY)


def test_readonly_file_cleared_then_unlink_succeeds(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path = tmp_path / "ro.txt"
    path.write_bytes(b"x")
    os.chmod(path, 0o444)
    faults.fail(fs.Op.UNLINK, "*/ro.txt", winerror=5, times=1)
    fs.unlink(path)
    assert not path.exists()
    assert stats().by_op()[fs.Op.UNLINK].retries == 1


def test_access_denied_on_a_writable_file_is_brief(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    src, dst = tmp_path / "new", tmp_path / "old.dll"
    src.write_bytes(b"n")
    dst.write_bytes(b"o")
    faults.fail(fs.Op.REPLACE, "*/old.dll", winerror=5)
    with pytest.raises(LockTimeoutError) as info:
        fs.replace(src, dst)
    assert info.value.elapsed == pytest.approx(POLICY.budget(brief=True))
    assert faults.calls.get(fs.Op.CHMOD, 0) == 0  # nothing was read-only
    assert dst.read_bytes() == b"o"


def test_access_denied_when_read_only_cannot_be_cleared_is_permanent(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path = tmp_path / "acl.txt"
    path.write_bytes(b"x")
    os.chmod(path, 0o444)
    unlink_fault = faults.fail(fs.Op.UNLINK, "*/acl.txt", winerror=5)
    faults.fail(fs.Op.CHMOD, "*/acl.txt", errno=errno.EPERM)
    with pytest.raises(PermissionError) as info:
        fs.unlink(path)
    assert not isinstance(info.value, LockTimeoutError)
    assert info.value.winerror == 5  # type: ignore[attr-defined]
    assert unlink_fault.hits == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize("missing", [False, True])
def test_access_denied_on_a_directory_or_missing_path_is_permanent(
    missing: bool, tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path = tmp_path / "d"
    if not missing:
        path.mkdir()
    fault = faults.fail(fs.Op.RMDIR, "*/d", winerror=5)
    with pytest.raises(PermissionError):
        fs.rmdir(path)
    assert fault.hits == 1
    assert fake_time.sleeps == []
    assert path.exists() is not missing


def test_dir_not_empty_on_rmdir_is_retried(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path = tmp_path / "pkg"
    path.mkdir()
    fault = faults.fail(fs.Op.RMDIR, "*/pkg", winerror=145, times=3)
    fs.rmdir(path)
    assert not path.exists()
    assert fault.hits == 3
    assert stats().by_op()[fs.Op.RMDIR].retries == 3


@posix_only("expects EACCES; Windows' OSError maps WinError 145 to ENOTEMPTY")
def test_dir_not_empty_on_rmdir_times_out(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path = tmp_path / "pkg"
    path.mkdir()
    fault = faults.fail(fs.Op.RMDIR, "*/pkg", winerror=145)
    with pytest.raises(LockTimeoutError) as info:
        fs.rmdir(path)
    assert_lock_timeout(
        info.value,
        operation=fs.Op.RMDIR,
        attempts=fault.hits,
        lock={"winerror": 145},
        fake=fake_time,
        budget=POLICY.timeout,
    )


@posix_only("expects PermissionError; on Windows WinError 145 makes OSError(ENOTEMPTY)")
def test_dir_not_empty_elsewhere_is_permanent(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    src.mkdir()
    fault = faults.fail(fs.Op.RENAME, "*/a", winerror=145)
    with pytest.raises(PermissionError):
        fs.rename(src, dst)
    assert fault.hits == 1
    assert fake_time.sleeps == []


def test_too_many_open_files_is_retried_briefly(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    fault = faults.fail(fs.Op.OPEN, "*/f", errno=errno.EMFILE)
    with pytest.raises(LockTimeoutError) as info:
        fs.open_for_write(tmp_path / "f")
    assert info.value.errno == errno.EMFILE
    assert info.value.elapsed == pytest.approx(POLICY.budget(brief=True))
    assert fault.hits == info.value.attempts > 2


# --- trash ---------------------------------------------------------------------------------------


def test_rmtree_moves_a_stubborn_file_into_trash(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    tree, trash = tmp_path / "site" / "pkg", tmp_path / "trash"
    (tree / "sub").mkdir(parents=True)
    (tree / "__init__.py").write_bytes(b"")
    (tree / "sub" / "_speedups.pyd").write_bytes(b"loaded")
    faults.fail(fs.Op.UNLINK, "*/_speedups.pyd", winerror=32)
    trashed = fs.rmtree(tree, trash=trash)
    assert not tree.exists()
    assert len(trashed) == 1
    assert os.path.dirname(trashed[0]) == str(trash)
    assert os.path.basename(trashed[0]).startswith("_speedups.pyd.")
    assert Path(trashed[0]).read_bytes() == b"loaded"
    assert os.listdir(trash) == [os.path.basename(trashed[0])]
    assert fake_time.elapsed == pytest.approx(POLICY.timeout)


def test_rmtree_moves_a_stubborn_directory_into_trash(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    tree, trash = tmp_path / "pkg", tmp_path / "trash"
    (tree / "held").mkdir(parents=True)
    (tree / "held" / "x.py").write_bytes(b"x")
    faults.fail(fs.Op.RMDIR, "*/held", winerror=145)
    trashed = fs.rmtree(tree, trash=trash)
    assert not tree.exists()
    assert len(trashed) == 1
    assert os.path.basename(trashed[0]).startswith("held.")
    assert os.path.isdir(trashed[0])


def test_rmtree_without_trash_raises(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    tree = tmp_path / "pkg"
    tree.mkdir()
    (tree / "m.pyd").write_bytes(b"")
    faults.fail(fs.Op.UNLINK, "*/m.pyd", winerror=32)
    with pytest.raises(LockTimeoutError) as info:
        fs.rmtree(tree)
    assert info.value.paths == (str(tree / "m.pyd"),)
    assert (tree / "m.pyd").exists()


def test_rmtree_missing(tmp_path: Path, fake_time: FakeTime) -> None:
    assert fs.rmtree(tmp_path / "nope") == []
    with pytest.raises(FileNotFoundError):
        fs.rmtree(tmp_path / "nope", missing_ok=False)


def test_rmtree_of_a_single_stubborn_file_returns_its_trash_path(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path, trash = tmp_path / "app.exe", tmp_path / "trash"
    path.write_bytes(b"running")
    faults.fail(fs.Op.UNLINK, "*/app.exe", winerror=32)
    trashed = fs.rmtree(path, trash=trash)
    assert not path.exists()
    assert len(os.listdir(trash)) == 1
    assert trashed == [str(trash / os.listdir(trash)[0])]
    assert Path(trashed[0]).read_bytes() == b"running"


def test_unlink_with_trash_moves_a_stubborn_file(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path, trash = tmp_path / "python.exe", tmp_path / "trash"
    path.write_bytes(b"exe")
    faults.fail(fs.Op.UNLINK, "*/python.exe", winerror=32)
    moved = fs.unlink(path, trash=trash)
    assert not path.exists()
    assert moved == str(trash / os.listdir(trash)[0])
    assert Path(moved).read_bytes() == b"exe"
    assert fake_time.elapsed == pytest.approx(POLICY.timeout)


def test_unlink_returns_none_when_removed(tmp_path: Path, fake_time: FakeTime) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    assert fs.unlink(path, trash=tmp_path / "trash") is None
    assert fs.unlink(path, missing_ok=True) is None
    assert not (tmp_path / "trash").exists()


def test_empty_trash_then_nothing_left(tmp_path: Path, fake_time: FakeTime) -> None:
    trash = tmp_path / "trash"
    assert fs.empty_trash(trash) == []  # missing trash: nothing to do
    trash.mkdir()
    (trash / "a.1.0").write_bytes(b"")
    assert fs.empty_trash(trash) == []
    assert not trash.exists()


# --- link falls back to copy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        {"errno": errno.EXDEV},
        {"errno": errno.EMLINK},
        {"errno": errno.EPERM},
        {"errno": errno.ENOTSUP},
        {"winerror": 17},
        {"winerror": 1142},
    ],
    ids=str,
)
@posix_only("checks that the copy keeps mode 0o755")
def test_link_falls_back_to_copy(
    error: dict[str, int], tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    src, dst = tmp_path / "src.sh", tmp_path / "dst.sh"
    src.write_bytes(b"#!/bin/sh\n")
    os.chmod(src, 0o755)
    fault = faults.fail(fs.Op.LINK, "*/dst.sh", **error)
    assert fs.link(src, dst) is False
    assert fault.hits == 1
    assert faults.calls[fs.Op.LINK] == 1
    assert faults.calls[fs.Op.COPY] == 1
    assert dst.read_bytes() == b"#!/bin/sh\n"
    assert mode_of(dst) == 0o755
    assert not os.path.samefile(src, dst)
    assert os.stat(src).st_nlink == 1
    assert fake_time.sleeps == []


def test_link_fallback_copy_is_itself_retried(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"data")
    faults.fail(fs.Op.LINK, "*/dst", errno=errno.EXDEV)
    faults.fail(fs.Op.COPY, "*/dst", winerror=32, times=2)
    assert fs.link(src, dst) is False
    assert dst.read_bytes() == b"data"
    assert stats().by_op()[fs.Op.COPY].retries == 2


def test_link_to_an_existing_path_is_not_retried(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"s")
    dst.write_bytes(b"d")
    with pytest.raises(FileExistsError):
        fs.link(src, dst)
    assert faults.calls[fs.Op.LINK] == 1
    assert faults.calls.get(fs.Op.COPY, 0) == 0
    assert dst.read_bytes() == b"d"


def test_rename_refuses_to_clobber(tmp_path: Path, fake_time: FakeTime) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"s")
    dst.write_bytes(b"d")
    with pytest.raises(FileExistsError):
        fs.rename(src, dst)
    assert dst.read_bytes() == b"d"
    assert src.read_bytes() == b"s"
    assert fake_time.sleeps == []


# --- write_atomic and FileWriter -----------------------------------------------------------------


@posix_only("checks mode 0o755")
def test_write_atomic_new_file_with_mode(tmp_path: Path, fake_time: FakeTime) -> None:
    target = tmp_path / "bin" / "tool"
    target.parent.mkdir()
    fs.write_atomic(target, b"#!python\n", mode=0o755)
    assert target.read_bytes() == b"#!python\n"
    assert mode_of(target) == 0o755
    fs.write_atomic(target, b"v2", durable=False)
    assert target.read_bytes() == b"v2"
    assert temp_files(target.parent) == []


@pytest.mark.parametrize(
    ("op", "error"),
    [
        (fs.Op.REPLACE, {"errno": errno.EACCES}),
        (fs.Op.REPLACE, {"errno": errno.EXDEV}),
        (fs.Op.CHMOD, {"errno": errno.EPERM}),
        (fs.Op.WRITE, {"errno": errno.ENOSPC}),
        (fs.Op.OPEN, {"errno": errno.ENOSPC}),
    ],
    ids=str,
)
def test_write_atomic_failure_keeps_old_content_and_leaves_no_temp(
    op: fs.Op, error: dict[str, int], tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    target = tmp_path / "RECORD"
    target.write_bytes(b"old")
    fault = faults.fail(op, "*", **error)
    with pytest.raises(OSError) as info:
        fs.write_atomic(target, b"new", mode=0o644)
    assert info.value.errno == error["errno"]
    assert not isinstance(info.value, LockTimeoutError)
    assert fault.hits == 1
    assert target.read_bytes() == b"old"
    assert temp_files(tmp_path) == []
    assert os.listdir(tmp_path) == ["RECORD"]


def test_write_atomic_timeout_leaves_no_temp(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    target = tmp_path / "launcher.exe"
    target.write_bytes(b"old")
    faults.fail(fs.Op.REPLACE, "*/launcher.exe", winerror=32)
    with pytest.raises(LockTimeoutError):
        fs.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["launcher.exe"]


def test_filewriter_removes_partial_file_on_error(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path = tmp_path / "big.bin"
    fault = faults.fail(fs.Op.WRITE, "*", errno=errno.ENOSPC, times=1)
    with pytest.raises(OSError) as info, fs.open_for_write(path) as writer:
        writer.write(b"first")  # not written: the fault is on the first write
    assert info.value.errno == errno.ENOSPC
    assert fault.hits == 1
    assert not path.exists()
    # Also when the error is in the caller's code, after some data was written.
    with pytest.raises(RuntimeError), fs.open_for_write(path) as writer:
        writer.write(b"partial")
        assert path.read_bytes() == b"partial"
        raise RuntimeError("boom")
    assert not path.exists()


@posix_only("checks mode 0o600 under the umask")
def test_filewriter_close_keeps_file_and_is_idempotent(tmp_path: Path, fake_time: FakeTime) -> None:
    path = tmp_path / "out"
    writer = fs.open_for_write(path, mode=0o600)
    assert writer.write(bytearray(b"ab")) + writer.write(memoryview(b"cd")) == 4
    writer.sync()
    writer.close()
    writer.close()
    assert path.read_bytes() == b"abcd"
    assert mode_of(path) == 0o600 & ~_umask()
    # Truncates by default; exclusive refuses an existing file without retrying.
    with fs.open_for_write(path) as w:
        w.write(b"z")
    assert path.read_bytes() == b"z"
    with pytest.raises(FileExistsError):
        fs.open_for_write(path, exclusive=True)
    assert fake_time.sleeps == []


def test_filewriter_detach_hands_over_the_descriptor(tmp_path: Path, fake_time: FakeTime) -> None:
    path = tmp_path / "out"
    with fs.open_for_write(path) as writer:
        writer.write(b"abc")
        fd = writer.detach()
    # Leaving the block closed nothing: the descriptor is the caller's now.
    assert os.write(fd, b"def") == 3
    os.close(fd)
    assert path.read_bytes() == b"abcdef"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_filewriter_handles_short_writes(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    faults.short_writes = 3
    path = tmp_path / "short"
    with fs.open_for_write(path) as writer:
        assert writer.write(b"0123456789") == 10
    assert path.read_bytes() == b"0123456789"
    assert faults.calls[fs.Op.WRITE] == 4  # 3 + 3 + 3 + 1 bytes


# --- observers, statistics, logging --------------------------------------------------------------


def test_observers_receive_retry_events(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"s")
    events: list[fs.RetryEvent] = []
    faults.fail(fs.Op.REPLACE, "*/dst", winerror=33, times=3)
    with fs.settings(observers=(events.append,)):
        fs.replace(src, dst)
    assert [e.attempt for e in events] == [1, 2, 3]
    assert all(e.op is fs.Op.REPLACE for e in events)
    assert all(e.paths == (str(src), str(dst)) for e in events)
    assert all(e.error.winerror == 33 for e in events)  # type: ignore[attr-defined]
    assert [e.delay for e in events] == fake_time.sleeps
    assert [e.elapsed for e in events] == pytest.approx([0.0, *_running_sum(fake_time.sleeps)[:-1]])
    # Observers are restored with the settings block.
    assert fs.runtime().observers == ()


def _running_sum(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def test_observers_are_not_called_on_the_fast_path(tmp_path: Path, fake_time: FakeTime) -> None:
    events: list[fs.RetryEvent] = []
    with fs.settings(observers=(events.append,)):
        fs.write_atomic(tmp_path / "x", b"x")
        fs.unlink(tmp_path / "x")
    assert events == []


def test_stats_summary_text(tmp_path: Path, faults: FaultInjector, fake_time: FakeTime) -> None:
    assert stats().summary() == "no lock retries"
    src, dst, victim = tmp_path / "src", tmp_path / "dst", tmp_path / "victim"
    src.write_bytes(b"s")
    victim.write_bytes(b"v")
    faults.fail(fs.Op.REPLACE, "*/dst", errno=errno.EBUSY, times=2)
    faults.fail(fs.Op.UNLINK, "*/victim", winerror=32, times=1)
    fs.replace(src, dst)
    fs.unlink(victim)
    waited = f"{fake_time.slept:.3f}"
    assert stats().summary() == f"3 lock retries, waited {waited} s (replace 2, unlink 1)"
    total = stats().total()
    assert (total.episodes, total.retries, total.failures) == (2, 3, 0)


def test_stats_summary_with_failures_only(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    faults.fail(fs.Op.UNLINK, "*/f", winerror=32)
    with fs.settings(timeout=0), pytest.raises(LockTimeoutError):
        fs.unlink(path)
    summary = stats().summary()
    assert summary == "0 lock retries, waited 0.000 s; 1 still locked at the deadline"


def test_fresh_stats_are_isolated(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    outer = stats()
    faults.fail(fs.Op.CHMOD, "*/f", errno=errno.EBUSY, times=1)
    (tmp_path / "f").write_bytes(b"")
    with fs.settings(fresh_stats=True) as rt:
        fs.chmod(tmp_path / "f", 0o600)
        assert rt.stats.total().retries == 1
    assert outer.summary() == "no lock retries"
    assert stats() is outer


def test_debug_log_record_for_each_retry(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stalwart.fs")
    path = tmp_path / "pkg"
    path.mkdir()
    faults.fail(fs.Op.RMDIR, "*/pkg", errno=errno.EBUSY, times=3)
    fs.rmdir(path)
    records = [r for r in caplog.records if r.name == "stalwart.fs"]
    assert len(records) == 3
    assert all(r.levelno == logging.DEBUG for r in records)
    for attempt, record in enumerate(records, 1):
        message = record.getMessage()
        assert str(path) in message
        assert message.startswith("rmdir ")
        assert f"attempt {attempt}," in message
        assert "retrying in" in message


def test_no_log_records_on_the_fast_path(
    tmp_path: Path, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stalwart.fs")
    fs.write_atomic(tmp_path / "x", b"x")
    fs.rmtree(tmp_path / "x")
    assert [r for r in caplog.records if r.name == "stalwart.fs"] == []


# --- the fixtures themselves ---------------------------------------------------------------------


def test_fake_time_is_what_the_layer_uses(fake_time: FakeTime) -> None:
    rt = fs.runtime()
    assert rt.clock() == fake_time.clock()
    rt.sleep(0.5)
    assert fake_time.elapsed == 0.5
    assert fake_time.sleeps == [0.5]
    with pytest.raises(AssertionError):
        rt.sleep(-1.0)


def test_faults_fixture_installs_wrappers(faults: FaultInjector, tmp_path: Path) -> None:
    assert faults.installed
    assert isinstance(faults.fail(fs.Op.REPLACE, "*/nothing", times=1), Fault)
    (tmp_path / "a").write_bytes(b"")
    fs.replace(tmp_path / "a", tmp_path / "b")
    assert faults.calls[fs.Op.REPLACE] == 1  # the call went through the wrapper


def test_write_atomic_skips_a_temp_name_a_crashed_process_left(tmp_path: Path) -> None:
    """A leftover temporary with our pid and counter value is neither reused nor clobbered."""
    target = tmp_path / "file.txt"
    probe = fs.temp_name(str(target))  # "<target>.<pid>.<n><suffix>"
    stem, n = probe[: -len(fs.TEMP_SUFFIX)].rsplit(".", 1)
    stale = Path(f"{stem}.{int(n) + 1}{fs.TEMP_SUFFIX}")  # the name write_atomic tries next
    stale.write_bytes(b"left by a crash")
    fs.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert stale.read_bytes() == b"left by a crash"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["file.txt", stale.name])


# --- operations that never wait --------------------------------------------------------------


def test_empty_trash_makes_one_attempt_and_leaves_what_is_locked(
    tmp_path: Path, fake_time: Any, faults: FaultInjector
) -> None:
    """What is in the trash was locked past a whole budget before: each command tries once,
    without sleeping, and the next command tries again."""
    trash = tmp_path / "trash"
    (trash / "pkg.1.1" / "sub").mkdir(parents=True)
    (trash / "pkg.1.1" / "sub" / "m.py").write_bytes(b"m")
    (trash / "old.pyd.1.0").write_bytes(b"old")
    (trash / "other.exe.1.2").write_bytes(b"exe")
    fault = faults.fail(fs.Op.UNLINK, "*/old.pyd.1.0", winerror=32)
    assert fs.empty_trash(trash) == [str(trash / "old.pyd.1.0")]
    assert fault.hits == 1
    assert fake_time.sleeps == []
    assert sorted(p.name for p in trash.iterdir()) == ["old.pyd.1.0"]
    faults.faults.clear()
    assert fs.empty_trash(trash) == []
    assert not trash.exists()


def test_rmdir_if_empty_does_not_wait_on_a_directory_with_files(
    tmp_path: Path, fake_time: Any, faults: FaultInjector
) -> None:
    """On Windows "not empty" is WinError 145, a lock for rmdir; with files present it is an
    answer, and pruning must not spend the budget on it."""
    full = tmp_path / "full"
    full.mkdir()
    (full / "f").write_bytes(b"")
    faults.fail(fs.Op.RMDIR, "*/full", winerror=145)
    assert fs.rmdir_if_empty(full) is False
    assert fake_time.sleeps == []
    assert full.is_dir()


def test_rmdir_if_empty_waits_for_delete_pending_children(
    tmp_path: Path, fake_time: Any, faults: FaultInjector
) -> None:
    """An empty listing that still gives 145: children pending deletion; worth the wait."""
    empty = tmp_path / "empty"
    empty.mkdir()
    faults.fail(fs.Op.RMDIR, "*/empty", winerror=145, times=3)
    assert fs.rmdir_if_empty(empty) is True
    assert len(fake_time.sleeps) == 3
    assert not empty.exists()


# --- files of our own, emptied directories, any depth --------------------------------------------


def test_access_denied_on_a_file_we_just_wrote_gets_the_full_budget(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    """WinError 5 on a file this process created cannot be an ACL: it is a scanner holding the
    fresh file, and is waited for as long as any lock (the founding failure)."""
    staged, dest = tmp_path / "staged.exe", tmp_path / "tool.exe"
    with fs.open_for_write(staged) as writer:
        writer.write(b"MZ launcher")
    faults.fail(fs.Op.REPLACE, "*/tool.exe", winerror=5, seconds=3.0)
    fs.replace(staged, dest)
    assert dest.read_bytes() == b"MZ launcher"
    assert 3.0 <= fake_time.elapsed < POLICY.timeout
    # The renamed file is still ours: a later code 5 on it is waited out too.
    faults.fail(fs.Op.UNLINK, "*/tool.exe", winerror=5, seconds=2.0)
    fs.unlink(dest)
    assert not dest.exists()


def test_access_denied_on_a_file_we_did_not_write_stays_brief(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    foreign = tmp_path / "foreign.exe"
    foreign.write_bytes(b"installed by someone else")
    faults.fail(fs.Op.UNLINK, "*/foreign.exe", winerror=5, seconds=3.0)
    with pytest.raises(LockTimeoutError) as info:
        fs.unlink(foreign)
    assert info.value.elapsed == pytest.approx(POLICY.budget(brief=True))
    assert foreign.exists()


def test_write_atomic_target_counts_as_our_own(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    record = tmp_path / "RECORD"
    fs.write_atomic(record, b"rows\n")
    faults.fail(fs.Op.CHMOD, "*/RECORD", winerror=5, seconds=2.5)
    fs.chmod(record, 0o644)
    assert fake_time.elapsed >= 2.5


@pytest.mark.parametrize("code", [errno.ENOTEMPTY, errno.EEXIST])
def test_rmtree_waits_for_a_directory_it_emptied_that_is_not_empty_yet(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime, code: int
) -> None:
    """NFS keeps a silly-renamed .nfsXXXX while another handle is open; it goes soon."""
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "f").write_bytes(b"")
    faults.fail(fs.Op.RMDIR, "*/top/sub", errno=code, seconds=0.6)
    fs.rmtree(top)
    assert not top.exists()
    assert fake_time.elapsed >= 0.6


def test_rmtree_gives_up_on_a_directory_that_never_empties(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    top = tmp_path / "top"
    top.mkdir()
    faults.fail(fs.Op.RMDIR, "*/top", errno=errno.ENOTEMPTY)
    with pytest.raises(LockTimeoutError):
        fs.rmtree(top)
    assert fake_time.elapsed == pytest.approx(POLICY.timeout)


def test_rmtree_and_makedirs_handle_any_depth(tmp_path: Path) -> None:
    """Deeper than the interpreter's recursion limit: a wheel can ship that."""
    depth = 1100
    deep = tmp_path.joinpath(*["d"] * depth)
    fs.makedirs(deep)
    assert deep.is_dir()
    (deep / "leaf.txt").write_bytes(b"x")
    fs.rmtree(tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_empty_trash_handles_any_depth(tmp_path: Path) -> None:
    trash = tmp_path / "trash"
    deep = trash.joinpath(*["d"] * 1100)
    fs.makedirs(deep)
    (deep / "f").write_bytes(b"")
    assert fs.empty_trash(trash) == []
    assert not trash.exists()


def test_primitives_can_be_replaced_for_a_while(tmp_path: Path) -> None:
    from stalwart.fs.faults import primitives_replaced

    missing = str(tmp_path / "missing")
    calls: list[str] = []
    with primitives_replaced(unlink=calls.append):
        fs.unlink(missing)  # the replacement ran, not os.unlink
    assert calls == [missing]
    with pytest.raises(FileNotFoundError):
        fs.unlink(missing)  # and the real call is back
    with pytest.raises(ValueError, match="not primitives"), primitives_replaced(nope=len):
        pass
