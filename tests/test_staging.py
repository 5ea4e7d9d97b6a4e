"""stalwart.staging: every file of a command written into the transaction's stage, hashed as it
goes, then declared to the transaction with a RECORD of its own.

Wheels are real and planned for a fake interpreter's environment (``fakeenv``) whose
directories exist, so that declared files can be committed and looked at.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import pytest

from fakeenv import Wheels, materialize, venv_info
from stalwart.cache import CacheLayout
from stalwart.environment import Environment
from stalwart.errors import InvalidWheelError
from stalwart.plan import Extract, WheelPlan, plan_wheel, record_path
from stalwart.staging import LinkMode, Placer, StagedWheel, declare, stage_wheels
from stalwart.transaction import Transaction
from stalwart.wheel.record import RecordEntry, parse_record
from stalwart.wheel.wheelfile import open_wheel
from stalwart.wheelcache import WheelCache, open_cached
from wheelfactory import make_wheel, record_bytes, record_hash, wheel_files

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX modes")


@pytest.fixture
def env(tmp_path: Path) -> Environment:
    return materialize(Environment(venv_info(tmp_path / "venv")))


@pytest.fixture
def wheels(tmp_path: Path) -> Iterator[Wheels]:
    with ExitStack() as stack:
        yield Wheels(tmp_path / "wheels", stack)


@pytest.fixture
def txn(env: Environment) -> Iterator[Transaction]:
    txn = Transaction(env.state_dir)
    yield txn
    txn.abort()


@pytest.fixture
def umask() -> Iterator[None]:
    """Run with umask 022 whatever the caller's; restored afterwards."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def stage(
    plans: list[WheelPlan], txn: Transaction, env: Environment, **kw: bool
) -> list[StagedWheel]:
    return stage_wheels(plans, txn, python=env.executable, windows=False, **kw)


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def contents(plan: WheelPlan) -> dict[str, bytes]:
    """What each planned destination will hold, read from the archive or the plan."""
    out = {}
    for action in plan.files:
        if isinstance(action, Extract):
            out[action.dest] = plan.wheel.archive.read(action.member)
        else:
            out[action.dest] = action.content
    return out


DEMO = {"demo/__init__.py": b"", "demo/data.bin": bytes(range(256)) * 40, "demo/mod.py": b"X=1\n"}


def test_staged_files_carry_the_digest_and_size_of_what_was_written(
    wheels: Wheels, env: Environment, txn: Transaction, umask: None
) -> None:
    w = wheels("demo", "1.0", DEMO, data={"data/share/demo.txt": b"shared\n"})
    plan = plan_wheel(w, env)
    ticks: list[int] = []
    (staged,) = stage_wheels([plan], txn, python=env.executable, windows=False, tick=ticks.append)
    assert staged.plan is plan
    assert staged.lib_dir == env.site_packages
    assert [f.dest for f in staged.files] == [a.dest for a in plan.files]  # plan order
    assert ticks == [1] * len(plan.files)
    want = contents(plan)
    for item in staged.files:
        assert os.path.commonpath([item.staged, txn.stage_dir]) == txn.stage_dir
        data = Path(item.staged).read_bytes()
        assert data == want[item.dest]
        assert item.record == RecordEntry(
            record_path(plan.lib_dir, item.dest), "sha256", hashlib.sha256(data).digest(), len(data)
        )
        assert item.compile == item.dest.endswith(".py")
    paths = {f.record.path for f in staged.files}
    assert "../../../share/demo.txt" in paths
    assert "demo-1.0.dist-info/INSTALLER" in paths


def test_the_wheels_hash_algorithm_is_kept(
    tmp_path: Path, wheels: Wheels, env: Environment, txn: Transaction
) -> None:
    files = wheel_files("demo", "1.0", DEMO)
    rows = [
        (n, record_hash(d, "sha512"), str(len(d))) for n, d in files.items() if "RECORD" not in n
    ]
    files["demo-1.0.dist-info/RECORD"] = record_bytes(
        [*rows, ("demo-1.0.dist-info/RECORD", "", "")]
    )
    w = wheels.open(make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", files))
    (staged,) = stage([plan_wheel(w, env)], txn, env)
    by_path = {f.record.path: f.record for f in staged.files}
    assert by_path["demo/mod.py"].hash_name == "sha512"
    assert by_path["demo/mod.py"].digest == hashlib.sha512(b"X=1\n").digest()
    assert by_path["demo-1.0.dist-info/INSTALLER"].hash_name == "sha256"  # generated: default


def tampered(
    tmp_path: Path, changes: Mapping[str, bytes], rows: Mapping[str, str] | None = None
) -> Path:
    """demo 1.0 whose RECORD was written before *changes* were made to its files, with
    RECORD's size field replaced for the paths in *rows*."""
    files = wheel_files("demo", "1.0", DEMO, data={"scripts/tool": b"#!python\nprint('tool')\n"})
    files.update(changes)
    if rows:
        text = files["demo-1.0.dist-info/RECORD"].decode()
        lines = []
        for line in text.splitlines():
            path, digest, size = line.split(",")
            lines.append(f"{path},{digest},{rows.get(path, size)}")
        files["demo-1.0.dist-info/RECORD"] = ("\n".join(lines) + "\n").encode()
    return make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", files)


def test_every_file_not_matching_its_record_is_listed(
    tmp_path: Path, wheels: Wheels, env: Environment, txn: Transaction
) -> None:
    path = tampered(
        tmp_path,
        {
            "demo/mod.py": b"X=2\n",  # same size, other bytes
            "demo/__init__.py": b"import os\n",
            "demo-1.0.data/scripts/tool": b"#!python\nprint('evil')\n",  # before the rewrite
        },
        rows={"demo/data.bin": "10"},
    )
    w = wheels.open(path)
    with pytest.raises(InvalidWheelError) as caught:
        stage([plan_wheel(w, env)], txn, env)
    assert caught.value.wheel == str(path)
    assert sorted(caught.value.problems) == [
        "demo-1.0.data/scripts/tool: content does not match its RECORD hash",
        "demo/__init__.py: content does not match its RECORD hash",
        "demo/data.bin: size 10240 does not match RECORD's 10",
        "demo/mod.py: content does not match its RECORD hash",
    ]


def test_verify_record_false_stages_anyway_with_true_digests(
    tmp_path: Path, wheels: Wheels, env: Environment, txn: Transaction
) -> None:
    w = wheels.open(tampered(tmp_path, {"demo/mod.py": b"X=2\n"}), verify_record=False)
    (staged,) = stage([plan_wheel(w, env)], txn, env, verify_record=False)
    (mod,) = [f for f in staged.files if f.record.path == "demo/mod.py"]
    assert mod.record.digest == hashlib.sha256(b"X=2\n").digest()


def test_the_first_wheel_with_mismatches_is_named(
    tmp_path: Path, wheels: Wheels, env: Environment, txn: Transaction
) -> None:
    good = wheels("good", "1.0", {"good.py": b""})
    bad = wheels.open(tampered(tmp_path, {"demo/mod.py": b"X=2\n"}))
    with pytest.raises(InvalidWheelError) as caught:
        stage([plan_wheel(good, env), plan_wheel(bad, env)], txn, env)
    assert caught.value.wheel == bad.path
    assert caught.value.problems == ["demo/mod.py: content does not match its RECORD hash"]


def test_modes_and_shebangs(
    wheels: Wheels, env: Environment, txn: Transaction, umask: None
) -> None:
    w = wheels(
        "demo",
        "1.0",
        {"demo/__init__.py": b"", "demo/run": b"#!/bin/sh\n"},
        data={"scripts/tool": b"#!python -E\nprint('tool')\n", "scripts/plain.sh": b"#!/bin/sh\n"},
        entry_points="[console_scripts]\ndemo = demo:main\n",
        modes={"demo/run": 0o100755},
    )
    plan = plan_wheel(w, env)
    (staged,) = stage([plan], txn, env)
    by_dest = {os.path.relpath(f.dest, env.root): f for f in staged.files}
    assert mode(by_dest["lib/python3.11/site-packages/demo/__init__.py"].staged) == 0o644
    assert mode(by_dest["lib/python3.11/site-packages/demo/run"].staged) == 0o755
    for script in ("bin/tool", "bin/plain.sh", "bin/demo"):
        assert mode(by_dest[script].staged) == 0o755, script
    tool = Path(by_dest["bin/tool"].staged).read_bytes()
    assert tool == f"#!{env.executable} -E\nprint('tool')\n".encode()  # arguments kept
    assert by_dest["bin/tool"].record.digest == hashlib.sha256(tool).digest()
    assert by_dest["bin/tool"].record.size == len(tool)
    assert Path(by_dest["bin/plain.sh"].staged).read_bytes() == b"#!/bin/sh\n"  # untouched
    assert (
        Path(by_dest["bin/demo"].staged).read_bytes().startswith(f"#!{env.executable}\n".encode())
    )


def test_a_strict_umask_still_gives_executables_every_x_bit(
    wheels: Wheels, env: Environment, txn: Transaction
) -> None:
    w = wheels("demo", "1.0", {"demo/run": b"", "demo/data": b""}, modes={"demo/run": 0o100755})
    old = os.umask(0o077)
    try:
        (staged,) = stage([plan_wheel(w, env)], txn, env)
    finally:
        os.umask(old)
    by_name = {os.path.basename(f.dest): f for f in staged.files}
    assert mode(by_name["run"].staged) == 0o711  # pip's rule: umask, then +x for everyone
    assert mode(by_name["data"].staged) == 0o600


def test_many_files_are_staged_in_parallel_and_collected_in_order(
    wheels: Wheels, env: Environment, txn: Transaction
) -> None:
    files = {f"many/m{i:03d}.py": f"N = {i}\n".encode() for i in range(80)}
    plan = plan_wheel(wheels("many", "1.0", files), env)
    assert len(plan.files) >= 64  # the thread pool's threshold
    ticks: list[int] = []
    (staged,) = stage_wheels([plan], txn, python=env.executable, windows=False, tick=ticks.append)
    assert [f.dest for f in staged.files] == [a.dest for a in plan.files]
    want = contents(plan)
    for item in staged.files:
        assert Path(item.staged).read_bytes() == want[item.dest]
        assert item.record.digest == hashlib.sha256(want[item.dest]).digest()
    assert sum(ticks) == len(plan.files)  # progress counts every file (ticks come per batch)
    assert len({f.staged for f in staged.files}) == len(plan.files)


def test_declare_writes_a_record_of_everything_staged(
    wheels: Wheels, env: Environment, txn: Transaction
) -> None:
    w = wheels(
        "demo",
        "1.0",
        {"demo/__init__.py": b"", "demo/mod.py": b"X=1\n"},
        entry_points="[console_scripts]\ndemo = demo:main\n",
    )
    plan = plan_wheel(w, env)
    (staged,) = stage([plan], txn, env)
    site = Path(env.site_packages)
    pyc = site / "demo" / "__pycache__" / "mod.cpython-311.pyc"
    staged.add_bytecode(txn, str(pyc), b"fake bytecode")
    # Bytecode is listed without a hash, as pip lists it.
    pyc_row = RecordEntry("demo/__pycache__/mod.cpython-311.pyc")
    assert staged.bytecode[0].record == pyc_row
    declare(staged, txn)
    txn.commit()
    assert pyc.read_bytes() == b"fake bytecode"
    record = Path(plan.record_file).read_text()
    rows, problems = parse_record(record)
    assert problems == []
    assert rows == [
        *(f.record for f in staged.files),
        pyc_row,
        RecordEntry("demo-1.0.dist-info/RECORD"),
    ]
    for item in staged.files:  # every row describes the committed file
        data = Path(item.dest).read_bytes()
        assert item.record.digest == hashlib.sha256(data).digest()
    assert "../../../bin/demo" in {r.path for r in rows}


class _Recording(Placer):
    """A real placer that also notes which thread placed each file."""

    def __init__(self, mode: LinkMode) -> None:
        super().__init__(mode)
        self.threads: set[str] = set()

    def place(self, src: str, dst: str, mtime_ns: int) -> None:
        self.threads.add(threading.current_thread().name)
        super().place(src, dst, mtime_ns)


@pytest.mark.parametrize("link_mode", ["hardlink", "copy"])
def test_files_from_the_cache_are_linked_in_the_calling_thread_and_copied_in_a_pool(
    wheels: Wheels, env: Environment, txn: Transaction, tmp_path: Path, link_mode: LinkMode
) -> None:
    """A link is one quick system call: threads would only fight over the GIL for it. A copy
    moves bytes (the GIL is released): that work goes to the pool."""
    files = {f"many/m{i:03d}.py": f"N = {i}\n".encode() for i in range(80)}
    path = str(wheels("many", "1.0", files).path)
    cache = WheelCache(CacheLayout(str(tmp_path / "cache")))
    with ExitStack() as stack:
        opened = open_wheel(path)
        stack.callback(opened.close)
        entry = cache.fill(opened, "0" * 64)
    plan = plan_wheel(open_cached(entry, path), env)
    placer = _Recording(link_mode)
    ticks: list[int] = []
    (staged,) = stage_wheels(
        [plan],
        txn,
        python=env.executable,
        windows=False,
        entries=[entry],
        placer=placer,
        tick=ticks.append,
    )
    assert [f.dest for f in staged.files] == [a.dest for a in plan.files]
    assert sum(ticks) == len(plan.files)
    placed = [f for f in staged.files if f.dest.endswith(".py")]
    assert len(placed) == 80
    main = threading.current_thread().name
    linked = {os.stat(f.staged).st_ino == os.stat(entry.path(f.record.path)).st_ino for f in placed}
    if link_mode == "hardlink":
        assert placer.threads == {main}
        assert linked == {True}
    else:
        assert main not in placer.threads and placer.threads
        assert linked == {False}
    for item in placed:
        assert Path(item.staged).read_bytes() == files[item.record.path]
