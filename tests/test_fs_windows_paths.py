"""The Windows-only branches of stalwart.fs, driven on every platform with fabricated errors.

``stalwart.fs.faults`` raises errors that carry ``winerror`` exactly where the OS would, so the
Windows handling of access denied (WinError 5) runs here on Linux too, with fake time. The real
Windows behaviour behind these codes is exercised by ``test_windows_locks.py`` on Windows.
Junctions cannot be faked that way: the tests that need real ones run on Windows only.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import stalwart.fs as fs
from platforms import windows_only
from stalwart.errors import LockTimeoutError
from stalwart.fs.faults import FaultInjector
from stalwart.transaction import Transaction

if TYPE_CHECKING:
    from conftest import FakeTime

POLICY = fs.RetryPolicy()  # the defaults: 10 s budget, 1 s for access denied

# A read-only file: what Windows' read-only attribute looks like through os.stat(). (Names of
# files whose mode is checked avoid .exe/.bat, which Windows reports as executable too.)
READ_ONLY = 0o444


@pytest.fixture(autouse=True)
def policy(fake_time: FakeTime) -> Iterator[fs.RetryPolicy]:
    """The default policy whatever STALWART_LOCK_TIMEOUT says, over the fake clock."""
    with fs.settings(policy=POLICY):
        yield POLICY


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def make_file(path: Path, data: bytes, mode: int | None = None) -> Path:
    path.write_bytes(data)
    if mode is not None:
        os.chmod(path, mode)
    return path


# --- access denied clears read-only on the target only ------------------------------------------


def test_replace_that_gives_up_leaves_a_read_only_source_unchanged(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    """The destination is in use (a running .exe gives WinError 5); the source is read-only.
    The failed replace must leave both files exactly as they were, attribute included."""
    src = make_file(tmp_path / "staged.bin", b"new", READ_ONLY)
    dst = make_file(tmp_path / "tool.exe", b"old")
    fault = faults.fail(fs.Op.REPLACE, "*/tool.exe", winerror=5)
    with pytest.raises(LockTimeoutError) as info:
        fs.replace(src, dst)
    assert info.value.winerror == 5
    assert info.value.elapsed == pytest.approx(POLICY.budget(brief=True))
    assert fault.hits == info.value.attempts > 1
    assert faults.calls.get(fs.Op.CHMOD, 0) == 0
    assert mode_of(src) == READ_ONLY
    assert src.read_bytes() == b"new"
    assert dst.read_bytes() == b"old"


def test_replace_over_a_read_only_target_keeps_the_mode_of_the_source(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    """Replacing a read-only file with a read-only file: only the target's attribute stands in
    the way; the file that takes its place keeps its own mode."""
    src = make_file(tmp_path / "new.pyd", b"new", READ_ONLY)
    dst = make_file(tmp_path / "old.pyd", b"old", READ_ONLY)
    faults.fail(fs.Op.REPLACE, "*/old.pyd", winerror=5, times=1)
    fs.replace(src, dst)
    assert dst.read_bytes() == b"new"
    assert mode_of(dst) == READ_ONLY
    assert faults.calls[fs.Op.CHMOD] == 1  # the target's attribute, once
    assert not src.exists()


def test_rename_of_a_read_only_file_keeps_its_mode(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    """Moving an installed file aside (a backup, the trash) after an access-denied episode."""
    src = make_file(tmp_path / "data.bin", b"data", READ_ONLY)
    dst = tmp_path / "backup-000001"
    faults.fail(fs.Op.RENAME, "*/data.bin", winerror=5, times=2)
    fs.rename(src, dst)
    assert dst.read_bytes() == b"data"
    assert mode_of(dst) == READ_ONLY
    assert faults.calls.get(fs.Op.CHMOD, 0) == 0
    assert fs.runtime().stats.by_op()[fs.Op.RENAME].retries == 2


def test_copy_never_changes_its_source(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    src = make_file(tmp_path / "src.dll", b"\x00dll", READ_ONLY)
    dst = tmp_path / "dst.dll"
    faults.fail(fs.Op.COPY, "*/dst.dll", winerror=5, times=1)
    fs.copy(src, dst)
    assert mode_of(src) == READ_ONLY
    assert dst.read_bytes() == b"\x00dll"
    assert mode_of(dst) == READ_ONLY  # copy keeps the permission bits of the source


def test_unlink_still_clears_read_only_on_the_file_it_removes(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    """The single path of unlink is its target: ``del /f`` behaviour is kept."""
    path = make_file(tmp_path / "ro.txt", b"x", READ_ONLY)
    faults.fail(fs.Op.UNLINK, "*/ro.txt", winerror=5, times=1)
    fs.unlink(path)
    assert not path.exists()
    assert faults.calls[fs.Op.CHMOD] == 1


def test_rollback_restores_a_read_only_file_with_its_mode(
    tmp_path: Path, faults: FaultInjector, fake_time: FakeTime
) -> None:
    """All or nothing includes the read-only attribute: moving an installed read-only file to
    the backup area meets an access-denied episode, a later step fails for good, and the
    rollback must put the file back exactly as it was."""
    env = tmp_path / "env"
    env.mkdir()
    old = make_file(env / "old.pyd", b"old module", READ_ONLY)
    txn = Transaction(str(env / ".stalwart"))
    staged = txn.stage_path("new.py")
    with fs.open_for_write(staged, exclusive=True) as writer:
        writer.write(b"new module")
    txn.install(staged, str(env / "new.py"))
    txn.remove(str(old))
    faults.fail(fs.Op.RENAME, "*/old.pyd", winerror=5, times=1)  # the backup, then it works
    faults.fail(fs.Op.REPLACE, "*/new.py", errno=13)  # EACCES: permanent, the commit fails
    with pytest.raises(PermissionError):
        txn.commit()
    assert old.read_bytes() == b"old module"
    assert mode_of(old) == READ_ONLY
    assert sorted(p.name for p in env.iterdir()) == ["old.pyd"]


# --- junctions (Windows only: they need NTFS) ----------------------------------------------------

needs_junctions = windows_only("NTFS junctions: Windows only")


def make_junction(link: Path, target: Path) -> Path:
    """``mklink /J``: a directory junction, which needs no privilege (unlike a symlink)."""
    subprocess.run(
        ["cmd", "/c", "mklink", "/J", str(link), str(target)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert link.is_dir()
    assert (link / "keep.txt").is_file()  # it really leads to the target
    return link


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory a junction points at; nothing in it may be removed."""
    target = tmp_path / "outside"
    target.mkdir()
    make_file(target / "keep.txt", b"not yours")
    return target


@needs_junctions
def test_rmtree_of_a_junction_removes_the_link_not_the_target(
    tmp_path: Path, outside: Path, fake_time: FakeTime
) -> None:
    link = make_junction(tmp_path / "link", outside)
    assert fs.rmtree(link) == []
    assert not os.path.lexists(link)
    assert (outside / "keep.txt").read_bytes() == b"not yours"


@needs_junctions
def test_rmtree_removes_a_junction_inside_the_tree_not_its_target(
    tmp_path: Path, outside: Path, fake_time: FakeTime
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    make_file(tree / "sub" / "a.py", b"a")
    make_junction(tree / "sub" / "link", outside)
    assert fs.rmtree(tree) == []
    assert not tree.exists()
    assert (outside / "keep.txt").read_bytes() == b"not yours"
    assert fake_time.sleeps == []  # nothing was waited for


@needs_junctions
def test_empty_trash_removes_a_junction_not_its_target(
    tmp_path: Path, outside: Path, fake_time: FakeTime
) -> None:
    trash = tmp_path / "trash"
    trash.mkdir()
    make_junction(trash / "pkg.1.0", outside)
    assert fs.empty_trash(trash) == []
    assert not trash.exists()
    assert (outside / "keep.txt").read_bytes() == b"not yours"
