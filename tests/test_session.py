"""stalwart.session.locked_environment: lock, recover unfinished work, then run the command.

Another holder of the lock is a second :class:`EnvironmentLock` in this process: ``flock``
locks belong to open file descriptions, so a second descriptor of the same directory conflicts
just like another process would. Waiting runs on the fake clock (``fake_time``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import FakeTime
from fakeenv import materialize, venv_info
from stalwart import fs
from stalwart.environment import Environment
from stalwart.envlock import EnvironmentLock
from stalwart.errors import EnvironmentBusyError, TargetEnvironmentError
from stalwart.fs.faults import FaultInjector, SimulatedCrash
from stalwart.session import locked_environment
from stalwart.transaction import RecoveryReport, Transaction, pending_transactions
from treesnap import snapshot

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock on a directory")


@pytest.fixture
def env(tmp_path: Path) -> Environment:
    return materialize(Environment(venv_info(tmp_path / "venv")))


def staged_upgrade(env: Environment, new: bytes) -> Transaction:
    """A transaction replacing site-packages/mod.py with *new*, staged, not committed."""
    txn = Transaction(env.state_dir)
    staged = txn.stage_path("mod.py")
    with fs.open_for_write(staged, exclusive=True) as writer:
        writer.write(new)
    txn.install(staged, os.path.join(env.site_packages, "mod.py"))
    return txn


def interrupted_upgrade(env: Environment) -> Transaction:
    """mod.py 'old' -> 'new', killed right after the new file went into place (before
    COMMITTED): on disk the environment shows the new file, and the journal says roll back."""
    mod = Path(env.site_packages) / "mod.py"
    mod.write_bytes(b"old")
    dry_run = staged_upgrade(env, b"new")
    with FaultInjector(record=True) as probe:
        dry_run.commit()
    (install_at,) = [
        i + 1
        for i, m in enumerate(probe.mutations)
        if m.op == "replace" and m.paths[-1] == str(mod)
    ]
    mod.write_bytes(b"old")
    txn = staged_upgrade(env, b"new")
    with pytest.raises(BaseException) as caught, FaultInjector(crash_after=install_at):
        txn.commit()
    assert isinstance(caught.value.__cause__ or caught.value, SimulatedCrash)
    assert mod.read_bytes() == b"new"
    assert pending_transactions(env.state_dir) == [txn.dir]
    return txn


def test_unfinished_work_is_recovered_before_the_block(env: Environment) -> None:
    txn = interrupted_upgrade(env)
    mod = Path(env.site_packages) / "mod.py"
    with locked_environment(env) as reports:
        assert mod.read_bytes() == b"old"  # already rolled back when the block starts
        assert reports == [RecoveryReport(txn.dir, "rolled back", 2)]  # install + backup
        assert pending_transactions(env.state_dir) == []
    assert not Path(env.state_dir).exists()


def test_an_abandoned_stage_is_discarded(env: Environment) -> None:
    txn = staged_upgrade(env, b"never committed")
    with locked_environment(env) as reports:
        assert [(r.txn_dir, r.action) for r in reports] == [(txn.dir, "discarded staging")]
    assert not Path(env.state_dir).exists()


def test_nothing_to_recover(env: Environment) -> None:
    before = snapshot(Path(env.root))
    with locked_environment(env) as reports:
        assert reports == []
        with pytest.raises(EnvironmentBusyError):  # held for the block
            EnvironmentLock(env.lock_path, timeout=0).acquire()
    assert snapshot(Path(env.root)) == before  # locking and an empty recovery write nothing


def test_create_makes_the_lib_dirs(tmp_path: Path) -> None:
    env = Environment(venv_info(tmp_path / "venv", platlib="lib64"))
    assert not any(Path(d).exists() for d in env.lib_dirs)
    with locked_environment(env, create=True) as reports:
        assert reports == []
        assert all(Path(d).is_dir() for d in env.lib_dirs)
        assert len(env.lib_dirs) == 2


def test_without_create_a_missing_site_packages_is_not_made(tmp_path: Path) -> None:
    env = Environment(venv_info(tmp_path / "venv"))
    with pytest.raises(OSError), locked_environment(env):
        pytest.fail("the block ran without a site-packages to lock")
    assert not Path(env.site_packages).exists()


@pytest.mark.parametrize("create", [False, True])
def test_a_lib_dir_that_is_a_file(tmp_path: Path, create: bool) -> None:
    env = Environment(venv_info(tmp_path / "venv"))
    site = Path(env.site_packages)
    site.parent.mkdir(parents=True)
    site.write_bytes(b"not a directory")
    with (
        pytest.raises(TargetEnvironmentError, match="exists and is not a directory"),
        locked_environment(env, create=create),
    ):
        pytest.fail("the block ran")
    assert site.read_bytes() == b"not a directory"


def test_the_lock_is_held_in_the_block_and_released_after_an_error(env: Environment) -> None:
    with pytest.raises(KeyError), locked_environment(env):
        with pytest.raises(EnvironmentBusyError):
            EnvironmentLock(env.lock_path, timeout=0).acquire()
        raise KeyError("the command failed")
    with EnvironmentLock(env.lock_path, timeout=0):
        pass  # free again


def test_another_holder_makes_it_give_up_after_the_wait(
    env: Environment, fake_time: FakeTime
) -> None:
    txn = interrupted_upgrade(env)
    notes: list[str] = []
    with EnvironmentLock(env.lock_path, timeout=0):
        with (
            pytest.raises(EnvironmentBusyError, match="gave up waiting") as caught,
            locked_environment(env, wait=5.0, notify=notes.append),
        ):
            pytest.fail("the block ran while another process held the environment")
        # Recovery only ever runs under the lock: the other holder may be mid-commit.
        assert pending_transactions(env.state_dir) == [txn.dir]
    assert 5.0 <= fake_time.elapsed < 5.1  # waited the whole budget, on the fake clock
    assert fake_time.sleeps and max(fake_time.sleeps) <= 0.05  # polling, not one long sleep
    assert len(notes) == 1
    assert env.lock_path in notes[0]
    assert env.lock_path in str(caught.value)
    with locked_environment(env, wait=0) as reports:  # the holder is gone
        assert [r.action for r in reports] == ["rolled back"]
