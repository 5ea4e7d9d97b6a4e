"""stalwart.transaction.Transaction in-process, on small trees: no venv, no interpreter.

The trees are a handful of files below ``tmp_path/env`` (the only root); the state directory
is ``env/.stalwart`` as in a real site-packages. The last part crashes commits at every
mutation the fault injector counts and checks that recovery always ends in exactly the old or
exactly the new tree, under the directory listing orders of several filesystems.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stalwart import fs
from stalwart.errors import JournalError, RollbackIncompleteError
from stalwart.fs import Op
from stalwart.fs.faults import FaultInjector, SimulatedCrash
from stalwart.transaction import (
    COMMITTED,
    JOURNAL,
    Transaction,
    pending_transactions,
    recover,
)
from treesnap import Node, Snapshot, describe_diff, snapshot

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX modes")


@dataclass(frozen=True)
class Change:
    """An old tree, and a transaction on it: files to install, paths to remove, dirs to prune.

    In *old*, ``None`` stands for an empty directory; paths are '/'-separated, below env/.
    """

    old: Mapping[str, bytes | None]
    installs: Mapping[str, bytes] = field(default_factory=dict)
    removes: tuple[str, ...] = ()
    prune: tuple[str, ...] = ()
    modes: Mapping[str, int] = field(default_factory=dict)

    def build(self, env: Path) -> Snapshot:
        """Lay out the old tree afresh; returns its snapshot."""
        if env.exists():
            shutil.rmtree(env)
        env.mkdir(parents=True)
        for rel, data in self.old.items():
            path = env / rel
            if data is None:
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        return snapshot(env)

    def stage(self, env: Path, *, trees: bool = True) -> Transaction:
        """A transaction with every file staged and every change declared, not committed;
        new directories staged as whole trees, or (*trees* False, as on Windows) flat."""
        txn = Transaction(str(env / ".stalwart"), trees=trees)
        for rel, data in self.installs.items():
            staged = txn.stage_path(str(env / rel))
            mode = self.modes.get(rel, 0o644)
            with fs.open_for_write(staged, exclusive=True, mode=mode) as writer:
                writer.write(data)
            fs.chmod(staged, mode)
            txn.install(staged, str(env / rel))
        for rel in self.removes:
            txn.remove(str(env / rel))
        for rel in self.prune:
            txn.prune_if_empty(str(env / rel))
        return txn


@pytest.fixture
def env(tmp_path: Path) -> Path:
    return tmp_path / "env"


def state(env: Path) -> Path:
    return env / ".stalwart"


def files(tree: Snapshot) -> dict[str, bytes]:
    return {k: n.data for k, n in tree.items() if n.kind == "file"}


# -- committing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("trees", [True, False], ids=["trees", "file-by-file"])
def test_install_into_new_directories(env: Path, trees: bool) -> None:
    change = Change(
        old={"keep.txt": b"keep"},
        installs={"pkg/__init__.py": b"init", "pkg/deep/er/mod.py": b"mod", "tool": b"#!"},
        modes={"tool": 0o755},
    )
    change.build(env)
    txn = change.stage(env, trees=trees)
    # Three files, nothing backed up; as trees: pkg/ moves in whole, then the tool.
    assert txn.commit() == (2 if trees else 3)
    assert txn.committed
    tree = snapshot(env)
    assert files(tree) == {
        "keep.txt": b"keep",
        "pkg/__init__.py": b"init",
        "pkg/deep/er/mod.py": b"mod",
        "tool": b"#!",
    }
    assert tree["tool"].mode == 0o755
    assert tree["pkg/deep/er"].kind == "dir"
    assert not state(env).exists()  # the transaction and the state dir are gone


def test_replace_remove_and_prune(env: Path) -> None:
    change = Change(
        old={"pkg/a.py": b"old a", "pkg/b.py": b"b", "pkg/sub/c.py": b"c", "other/d.py": b"d"},
        installs={"pkg/a.py": b"new a"},
        removes=("pkg/b.py", "pkg/sub/c.py", "other/d.py"),
        prune=("pkg/sub", "pkg", "other"),
    )
    change.build(env)
    (env / "other" / "users-file").write_bytes(b"not ours")
    assert change.stage(env).commit() == 5  # 4 backups (a, b, c, d) + 1 install
    tree = snapshot(env)
    assert files(tree) == {"pkg/a.py": b"new a", "other/users-file": b"not ours"}
    assert "pkg/sub" not in tree  # emptied: pruned
    assert tree["other"].kind == "dir"  # still holds a file: kept
    assert not state(env).exists()


def test_abort_leaves_nothing(env: Path) -> None:
    change = Change(old={"a.py": b"a"}, installs={"a.py": b"A", "b/c.py": b"c"}, removes=("a.py",))
    old = change.build(env)
    txn = change.stage(env)
    assert state(env).exists()  # the stage lives there
    txn.abort()
    assert snapshot(env) == old
    assert not state(env).exists()
    assert pending_transactions(str(state(env))) == []


def test_remove_of_a_path_also_installed_is_ignored(env: Path) -> None:
    change = Change(old={"a.py": b"old"}, installs={"a.py": b"new"})
    change.build(env)
    txn = change.stage(env)
    txn.remove(str(env / "a.py"))  # after install: ignored
    assert txn.commit() == 2  # backup of the old a.py + the install
    assert (env / "a.py").read_bytes() == b"new"

    change.build(env)
    txn = Transaction(str(state(env)))
    txn.remove(str(env / "a.py"))  # before install: the install wins
    staged = txn.stage_path("a.py")
    with fs.open_for_write(staged, exclusive=True) as writer:
        writer.write(b"newer")
    txn.install(staged, str(env / "a.py"))
    txn.commit()
    assert (env / "a.py").read_bytes() == b"newer"


def test_a_case_only_rename(env: Path) -> None:
    change = Change(
        old={"pkg/Module.py": b"old"},
        installs={"pkg/module.py": b"new"},
        removes=("pkg/Module.py",),
    )
    change.build(env)
    change.stage(env).commit()
    assert sorted(os.listdir(env / "pkg")) == ["module.py"]
    assert (env / "pkg" / "module.py").read_bytes() == b"new"


def test_a_file_replaced_by_a_directory(env: Path) -> None:
    change = Change(
        old={"pkg/thing": b"a module file"},
        installs={"pkg/thing/__init__.py": b"now a package"},
        removes=("pkg/thing",),
    )
    change.build(env)
    change.stage(env).commit()
    tree = snapshot(env)
    assert tree["pkg/thing"].kind == "dir"
    assert files(tree) == {"pkg/thing/__init__.py": b"now a package"}


def test_a_directory_replaced_by_a_file(env: Path) -> None:
    change = Change(
        old={"pkg/thing/__init__.py": b"a package", "pkg/thing/helper.py": b"h"},
        installs={"pkg/thing": b"now a module file"},
        removes=("pkg/thing/__init__.py", "pkg/thing/helper.py"),
        prune=("pkg/thing",),
    )
    change.build(env)
    change.stage(env).commit()
    tree = snapshot(env)
    assert tree["pkg/thing"] == Node("file", 0o644, b"now a module file")
    assert files(tree) == {"pkg/thing": b"now a module file"}


@pytest.mark.parametrize("trees", [True, False], ids=["trees", "file-by-file"])
def test_a_failing_step_rolls_everything_back(
    env: Path, faults: FaultInjector, trees: bool
) -> None:
    """pkg/new/ is new: as a tree it is already in place when pkg/z.py fails, and goes back."""
    change = Change(
        old={"pkg/a.py": b"a", "pkg/gone.py": b"g"},
        installs={"pkg/a.py": b"A", "pkg/new/b.py": b"b", "pkg/z.py": b"z"},
        removes=("pkg/gone.py",),
    )
    old = change.build(env)
    txn = change.stage(env, trees=trees)
    faults.fail(Op.REPLACE, "*/pkg/z.py", errno=errno.EIO, times=1)
    with pytest.raises(OSError) as caught:
        txn.commit()
    assert caught.value.errno == errno.EIO
    assert not txn.committed
    assert snapshot(env) == old
    assert not state(env).exists()


# -- recovery refuses a journal it did not write --------------------------------------------------


def forged_journal(env: Path, outside: Path, kind: str) -> Path:
    """A transaction directory whose journal names something it must not."""
    txn = state(env) / "txn-20260101000000-forged00"
    stage, backup = txn / "stage", txn / "backup"
    stage.mkdir(parents=True)
    (stage / "000001-x").write_bytes(b"planted")
    steps: dict[str, object] = {
        "format": 1,
        "mkdirs": [],
        "backups": [],
        "installs": [],
        "prune": [],
    }
    if kind == "install outside the roots":
        steps["installs"] = [[str(stage / "000001-x"), str(outside / "victim")]]
    elif kind == "staged file outside the stage":
        steps["installs"] = [[str(outside / "victim"), str(env / "stolen")]]
    elif kind == "backup outside the backup dir":
        steps["backups"] = [[str(env / "a.py"), str(outside / "a.py")]]
    elif kind == "mkdir outside the roots":
        steps["mkdirs"] = [str(outside / "newdir")]
    elif kind == "prune outside the roots":
        steps["prune"] = [str(outside)]
    elif kind == "relative path":
        steps["installs"] = [[str(stage / "000001-x"), "victim"]]
    elif kind == "through a symlink leading out":
        (env / "link").symlink_to(outside)
        steps["installs"] = [[str(stage / "000001-x"), str(env / "link" / "victim")]]
    elif kind == "unknown format":
        steps["format"] = 99
    elif kind == "not a path":
        steps["prune"] = [42]
    (txn / JOURNAL).write_text(json.dumps(steps) if kind != "not json" else "{'format': 1")
    del backup
    return txn


FORGERIES = [
    "install outside the roots",
    "staged file outside the stage",
    "backup outside the backup dir",
    "mkdir outside the roots",
    "prune outside the roots",
    "relative path",
    "through a symlink leading out",
    "unknown format",
    "not a path",
    "not json",
]


@pytest.mark.parametrize("kind", FORGERIES)
def test_recovery_refuses_a_forged_journal(tmp_path: Path, env: Path, kind: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"precious")
    env.mkdir()
    (env / "a.py").write_bytes(b"a")
    txn = forged_journal(env, outside, kind)
    before = snapshot(tmp_path)
    with pytest.raises(JournalError) as caught:
        recover(str(state(env)), [str(env)])
    assert caught.value.journal == str(txn / JOURNAL)
    assert "refusing to replay" in str(caught.value)
    assert snapshot(tmp_path) == before  # nothing replayed, nothing deleted


def test_pending_transactions(tmp_path: Path) -> None:
    st = tmp_path / ".stalwart"
    assert pending_transactions(str(st)) == []  # no state directory
    for name in ("txn-2", "txn-1", "trash", "lock", "notes-txn-3"):
        (st / name).mkdir(parents=True)
    assert pending_transactions(str(st)) == [str(st / "txn-1"), str(st / "txn-2")]
    afile = tmp_path / "afile"
    afile.write_bytes(b"")
    assert pending_transactions(str(afile)) == []


def test_recover_discards_a_transaction_without_journal(env: Path) -> None:
    change = Change(old={"a.py": b"a"}, installs={"a.py": b"A"})
    old = change.build(env)
    txn = change.stage(env)
    (report,) = recover(str(state(env)), [str(env)])
    assert report.txn_dir == txn.dir
    assert report.action == "discarded staging"
    assert snapshot(env) == old
    assert not state(env).exists()


# -- crash at every mutation of a commit ----------------------------------------------------------

CHANGES = {
    "fresh": Change(
        old={"bin/old": b"#!old"},
        installs={
            "pkg/__init__.py": b"init",
            "pkg/sub/m.py": b"m",
            "pkg-1.0.dist-info/RECORD": b"rows",
            "bin/tool": b"#!new",
        },
        modes={"bin/tool": 0o755},
    ),
    "upgrade": Change(
        old={
            "pkg/__init__.py": b"old init",
            "pkg/changed.py": b"old",
            "pkg/kept.py": b"kept",
            "pkg/gone.py": b"gone",
            "pkg/olddir/x.py": b"x",
            "bin/tool": b"#!old",
        },
        installs={
            "pkg/__init__.py": b"new init",
            "pkg/changed.py": b"new",
            "pkg/new/deep/y.py": b"y",
            "bin/tool": b"#!new",
        },
        removes=("pkg/gone.py", "pkg/olddir/x.py", "pkg/changed.py", "bin/tool"),
        prune=("pkg/olddir",),
        modes={"bin/tool": 0o755},
    ),
    "removals only": Change(
        old={"lib/a.py": b"a", "lib/sub/b.py": b"b", "lib/sub/c.txt": b"c", "keep.txt": b"k"},
        removes=("lib/a.py", "lib/sub/b.py", "lib/sub/c.txt"),
        prune=("lib/sub", "lib"),
    ),
    "directory replaced by a file": Change(
        old={"pkg/thing/__init__.py": b"package", "pkg/thing/helper.py": b"h", "pkg/o.py": b"o"},
        installs={"pkg/thing": b"module file"},
        removes=("pkg/thing/__init__.py", "pkg/thing/helper.py"),
        prune=("pkg/thing",),
    ),
    "file replaced by a directory": Change(
        old={"pkg/thing": b"module file"},
        installs={"pkg/thing/__init__.py": b"package", "pkg/thing/sub/m.py": b"m"},
        removes=("pkg/thing",),
    ),
}


def point(mutations: list[object], op: str, suffix: str) -> int:
    """1-based number of the one mutation *op* whose last path ends with *suffix*."""
    (index,) = [
        i
        for i, m in enumerate(mutations)
        if m.op == op and m.paths[-1].endswith(suffix)  # type: ignore[attr-defined]
    ]
    return index + 1


@pytest.fixture
def sweep_env(env: Path) -> Iterator[Path]:
    """Where the sweep builds its trees: tmpfs when there is one. The sweep creates and
    removes hundreds of directories, and on a disk filesystem each rmdir may cost
    milliseconds (ext4 mounted with ``discard``: about 3 ms on the machine this was written on).
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield env
        return
    root = Path(tempfile.mkdtemp(prefix="stalwart-txn-sweep-", dir=shm))
    try:
        yield root / "env"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def txn_left(env: Path) -> bool:
    return bool(pending_transactions(str(state(env))))


@pytest.mark.parametrize("trees", [True, False], ids=["trees", "file-by-file"])
@pytest.mark.parametrize("listing", ["native", "reversed", "casefold"])
@pytest.mark.parametrize("name", CHANGES)
def test_a_crash_at_every_point_of_a_commit(
    sweep_env: Path, name: str, listing: str, trees: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = sweep_env
    # A simulated crash kills the process, not the machine: what fsync makes durable does not
    # matter here, and skipping it keeps the hundreds of commits below fast.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    change = CHANGES[name]
    old = change.build(env)
    txn = change.stage(env, trees=trees)
    with FaultInjector(record=True, listing=listing) as probe:  # type: ignore[arg-type]
        txn.commit()
    new = snapshot(env)
    assert new != old
    ops = [m.op for m in probe.mutations]
    journal_at = point(probe.mutations, "replace", JOURNAL)
    committed_at = point(probe.mutations, "replace", COMMITTED)
    unlinked_at = point(probe.mutations, "unlink", JOURNAL)
    assert 0 < journal_at < committed_at < unlinked_at < len(ops)

    problems = []
    for k in range(len(ops) + 1):
        change.build(env)
        txn = change.stage(env, trees=trees)
        crashed = True
        with FaultInjector(crash_after=k, record=True, listing=listing) as injector:  # type: ignore[arg-type]
            try:
                txn.commit()
                crashed = False
            except SimulatedCrash:
                pass
            except RollbackIncompleteError as exc:  # the crash hit the commit, then its undo
                assert isinstance(exc.__cause__, SimulatedCrash)
        assert crashed == (k < len(ops)), k
        assert [m.op for m in injector.mutations] == ops[:k]  # crashed exactly before K+1
        left = txn_left(env)
        with FaultInjector(listing=listing):  # type: ignore[arg-type]
            reports = recover(str(state(env)), [str(env)])
        actions = [r.action for r in reports]
        if k < journal_at:
            expected = ["discarded staging"]  # nothing visible happened yet
        elif k < committed_at:
            expected = ["rolled back"]
        elif k < unlinked_at:
            expected = ["rolled forward"]
        else:  # the journal went first: what is left of the transaction is only discarded
            expected = ["discarded staging"] if left else []
        if actions != expected:
            problems.append(f"crash after {k}: {actions}, expected {expected}")
        want = new if k >= committed_at else old
        got = snapshot(env)
        if got != want:
            side = "new" if want is new else "old"
            problems.append(
                f"crash after {k} ({ops[k - 1] if k else '-'}), want {side}: "
                f"{describe_diff(got, want)}"
            )
    assert not problems, "\n".join(problems)


# -- new directories as whole trees ----------------------------------------------------------------


def test_a_new_directory_is_staged_as_one_tree_and_moved_in_by_one_step(env: Path) -> None:
    env.mkdir(parents=True)
    (env / "pkg").mkdir()  # exists: its files stay flat
    txn = Transaction(str(state(env)), trees=True)
    paths = {
        rel: txn.stage_path(str(env / rel))
        for rel in ("new/a.py", "new/sub/b.py", "pkg/c.py", "new-1.0.dist-info/RECORD")
    }
    stage = txn.stage_dir
    assert os.path.dirname(paths["pkg/c.py"]) == stage  # flat
    root = os.path.dirname(paths["new/a.py"])
    assert os.path.dirname(root) == stage and root.endswith("-new")
    assert paths["new/sub/b.py"] == os.path.join(root, "sub", "b.py")
    assert paths["new-1.0.dist-info/RECORD"].endswith("-new-1.0.dist-info/RECORD")
    for rel, staged in paths.items():
        Path(staged).write_bytes(rel.encode())
        txn.install(staged, str(env / rel))
    assert txn.commit() == 3  # new/, new-1.0.dist-info/, pkg/c.py
    assert files(snapshot(env)) == {rel: rel.encode() for rel in paths}


def test_every_call_gets_its_own_path_and_the_last_file_declared_wins(env: Path) -> None:
    """Two wheels may ship the same file (a namespace __init__.py): the second copy cannot take
    the tree's path, it is staged flat and moved in after the tree."""
    env.mkdir(parents=True)
    txn = Transaction(str(state(env)), trees=True)
    dest = str(env / "ns" / "__init__.py")
    first, second = txn.stage_path(dest), txn.stage_path(dest)
    assert first != second and os.path.dirname(second) == txn.stage_dir
    Path(first).write_bytes(b"first")
    Path(second).write_bytes(b"second")
    txn.install(first, dest)
    txn.install(second, dest)
    txn.commit()
    assert Path(dest).read_bytes() == b"second"


def test_names_differing_only_in_case_are_never_trees(env: Path) -> None:
    """'Foo' and 'foo' are one directory on a case-insensitive file system: neither may be
    renamed in whole, or one would land on the other."""
    env.mkdir(parents=True)
    txn = Transaction(str(state(env)), trees=True)
    upper = txn.stage_path(str(env / "Foo" / "a.py"))
    lower = txn.stage_path(str(env / "foo" / "b.py"))
    assert os.path.dirname(upper) != txn.stage_dir  # the first one asked is a tree
    assert os.path.dirname(lower) == txn.stage_dir  # its case twin is not
