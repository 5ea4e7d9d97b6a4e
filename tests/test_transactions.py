"""All or nothing: crashes, late failures, locked files and concurrent commands.

The heart of this module kills the real ``stalwart`` command (a subprocess with the LD_PRELOAD
fault shim) before each of its filesystem mutations in turn, then runs the next command and
checks that the environment is, byte for byte, either exactly what it was or exactly what an
uninterrupted run makes. The rest checks the same promise in-process, where a crash is a
``BaseException`` raised from under the filesystem layer and time is fake:

- locked files that stay locked (the command fails, nothing changed) or let go in time;
- a late failure in the commit phase of an upgrade (the old version is restored);
- recovery from every crash point of a commit, and from crashes during recovery itself, under
  the directory listing orders of several filesystems;
- concurrent commands on one environment, serialized by the environment lock;
- Windows "file in use" deletes, which end in ``.stalwart/trash`` and are emptied later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import stalwart.fs as fs
import stalwart.transaction as transaction
import venvs
import wheelfactory
from faultshim.harness import KILLED, Rule, mutation_points, read_log, run_under_shim
from stalwart.cache import CacheLayout
from stalwart.environment import Environment, query_environment
from stalwart.envlock import EnvironmentLock
from stalwart.errors import LockTimeoutError, TargetEnvironmentError
from stalwart.filedigests import FileDigests
from stalwart.fs import Op
from stalwart.fs.faults import FaultInjector, Mutation, SimulatedCrash
from stalwart.install import InstallOptions, install
from stalwart.transaction import (
    COMMITTED,
    JOURNAL,
    RollbackIncompleteError,
    Transaction,
    recover,
)
from stalwart.uninstall import uninstall
from treesnap import Node, Snapshot, describe_diff, snapshot
from venvs import PY, Venv

# The LD_PRELOAD shim, flock, POSIX permission bits and the POSIX venv layout; Windows
# behaviour is exercised through the fault injector's winerror codes.
pytestmark = [
    pytest.mark.linux_only,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="Linux only: LD_PRELOAD shim, POSIX venvs"
    ),
]

STALWART = Path(sys.executable).with_name("stalwart")
NO_COMPILE = InstallOptions(compile=False)


# -- snapshots ------------------------------------------------------------------------------------


def leftovers(root: Path) -> list[str]:
    """Staging, backup, trash and temporary files stalwart must never leave behind."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            if name == ".stalwart" or name.endswith(fs.TEMP_SUFFIX):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def assert_same(got: Snapshot, want: Snapshot, what: str = "") -> None:
    assert got == want, f"{what}: {describe_diff(got, want)}"


# -- wheels ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    """What a generated wheel contains."""

    name: str
    version: str
    files: Mapping[str, bytes]
    data: Mapping[str, bytes] = field(default_factory=dict)  # below <name>-<version>.data/
    entry_points: str | None = None


def build_wheel(directory: Path, dist: Dist) -> Path:
    """A valid pure-Python wheel of *dist* with a correct RECORD."""
    return wheelfactory.build_wheel(
        directory,
        dist.name,
        dist.version,
        dist.files,
        data=dist.data,
        entry_points=dist.entry_points,
    )


def crash_dist(name: str, major: int, *, extra_modules: int = 0) -> Dist:
    """Version *major*.0 of a distribution for the crash tests.

    Each has modules, a subpackage, a console script and a ``.data/data`` file. Version 2
    changes some files, keeps some byte-identical, drops a module and a whole subpackage, adds
    a module, a subpackage and a data directory; of the extra modules it changes one, drops
    one and adds one.
    """
    version = f"{major}.0"
    files: dict[str, bytes] = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{name}/core.py": f"def main():\n    print({version!r})\n    return 0\n".encode(),
        f"{name}/sub/__init__.py": b"",  # identical in both versions
        f"{name}/sub/helpers.py": b"def helper():\n    return %d\n" % major,
    }
    data = {f"data/share/{name}/readme.txt": f"{name} {version}\n".encode()}
    scripts = [f"{name}-cli = {name}.core:main"]
    if major == 1:
        files[f"{name}/sub/legacy.py"] = b"LEGACY = True\n"
        files[f"{name}/old/__init__.py"] = b"OLD = 1\n"
    else:
        files[f"{name}/sub/fresh.py"] = b"FRESH = True\n"
        files[f"{name}/v2/__init__.py"] = b"API = 2\n"
        data[f"data/share/{name}/changes/notes.txt"] = b"what changed\n"
    if extra_modules:
        kept = range(extra_modules - 1) if major == 1 else range(1, extra_modules)
        for i in kept:
            body = f"N = {i}\n" if i != 2 else f"N = {i}  # version {major}\n"
            files[f"{name}/extra/m{i}.py"] = body.encode()
        data[f"scripts/{name}-run"] = b"#!python\nprint('run')\n"
        scripts.append(f"{name}-{'legacy' if major == 1 else 'modern'} = {name}.core:main")
    return Dist(name, version, files, data, "[console_scripts]\n" + "\n".join(scripts) + "\n")


TINY = Dist("tiny", "1.0", {"tiny.py": b"TINY = 1\n"})


# -- environments and the command ----------------------------------------------------------------


def venv_paths(root: Path) -> tuple[Path, Path]:
    """(interpreter, site-packages) of the POSIX virtual environment at *root*."""
    return root / "bin" / "python", root / "lib" / PY / "site-packages"


@pytest.fixture(scope="module")
def base_venv(pristine_venv: Venv) -> Path:
    """A pristine venv (no pip); tests copy it, which keeps it working (bin/python is a link)."""
    return pristine_venv.root


def copy_venv(src: Path, dst: Path) -> Path:
    return venvs.copy_venv(src, dst).root


cli_env = venvs.cli_environ


def run_cli(
    *args: str | Path, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STALWART), *map(str, args)],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps += 1
        self.now += seconds


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """Fake time for the filesystem layer; the default 10 s budget; fresh statistics."""
    fake = FakeClock()
    with fs.settings(
        policy=fs.RetryPolicy(), clock=fake.clock, sleep=fake.sleep, seed=7, fresh_stats=True
    ):
        yield fake


@pytest.fixture
def injector() -> Iterator[FaultInjector]:
    with FaultInjector() as faults:
        yield faults


@dataclass
class InProcessVenv:
    root: Path
    site: Path
    env: Environment


@pytest.fixture
def ivenv(base_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InProcessVenv:
    """A copied venv and its :class:`Environment`, for calling the library in-process."""
    monkeypatch.setenv("STALWART_CACHE_DIR", str(tmp_path / "cache"))
    root = copy_venv(base_venv, tmp_path / "venv")
    python, site = venv_paths(root)
    return InProcessVenv(root, site, query_environment(str(python)))


# == 1. a crash before every mutation point, through the real command ============================


@dataclass
class CrashScenario:
    """A command, the environment it starts from, and what it looks like before and after.

    ``work`` is the venv every run uses: restored from ``template`` before each run, so the
    interpreter cache (keyed by the interpreter's path) stays warm and no run writes to it.
    """

    work: Path
    template: Path
    argv: list[str]
    env: dict[str, str]
    ignore: list[str]
    points: int  # mutation points of an uninterrupted run
    journal_at: int  # the point that renames journal.json into place
    committed_at: int  # the point that renames COMMITTED into place
    old: Snapshot
    new: Snapshot
    old_tiny: Snapshot  # old + TINY installed by a later command
    new_tiny: Snapshot
    tiny: Path

    @property
    def python(self) -> Path:
        return venv_paths(self.work)[0]

    def restore(self) -> None:
        shutil.rmtree(self.work)
        copy_venv(self.template, self.work)


def make_scenario(
    root: Path, base: Path, before: Sequence[Path], command: Sequence[Path]
) -> CrashScenario:
    """Install *before* uninterrupted, then learn the mutation points of installing *command*."""
    work = copy_venv(base, root / "venv")
    python = venv_paths(work)[0]
    cache = root / "cache"
    env = cli_env(cache)
    ok(run_cli("list", "--python", python, env=env))  # warms the interpreter cache
    if before:
        ok(run_cli("install", "--no-compile", "--python", python, *before, env=env))
    template = copy_venv(work, root / "template")
    old = snapshot(work)
    argv = [str(STALWART), "install", "--no-compile", "--python", str(python), *map(str, command)]
    ignore = [str(cache), f"{cache}/*"]
    log = root / "trace.log"
    points = mutation_points(
        argv, count_file=root / "count", env=env, ignore=ignore, log=log, trace=True
    )
    trace = read_log(log)
    assert [e.point for e in trace] == list(range(1, points + 1))

    def renamed_into_place(name: str) -> int:
        (point,) = [
            e.point
            for e in trace
            if e.op == "rename" and len(e.paths) == 2 and e.paths[1].endswith(f"/{name}")
        ]
        return point

    new = snapshot(work)
    assert not leftovers(work)
    assert new != old
    tiny = build_wheel(root / "tiny", TINY)
    ok(run_cli("install", "--no-compile", "--python", python, tiny, env=env))
    new_tiny = snapshot(work)
    scenario = CrashScenario(
        work=work,
        template=template,
        argv=argv,
        env=env,
        ignore=ignore,
        points=points,
        journal_at=renamed_into_place(JOURNAL),
        committed_at=renamed_into_place(COMMITTED),
        old=old,
        new=new,
        old_tiny={},
        new_tiny=new_tiny,
        tiny=tiny,
    )
    scenario.restore()
    ok(run_cli("install", "--no-compile", "--python", python, tiny, env=env))
    scenario.old_tiny = snapshot(work)
    return scenario


CRASH_DISTS = (("alpha", 0), ("bravo", 0), ("charlie", 7))  # charlie: ~10 files in its package


@pytest.fixture(scope="module")
def crash_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[Path]]:
    root = tmp_path_factory.mktemp("crash-wheels")
    return {
        major: [
            build_wheel(root, crash_dist(name, major, extra_modules=extra))
            for name, extra in CRASH_DISTS
        ]
        for major in (1, 2)
    }


@pytest.fixture(scope="module")
def fresh_scenario(
    tmp_path_factory: pytest.TempPathFactory, base_venv: Path, crash_wheels: dict[int, list[Path]]
) -> CrashScenario:
    """Install three wheels into an empty venv."""
    return make_scenario(tmp_path_factory.mktemp("fresh"), base_venv, [], crash_wheels[1])


@pytest.fixture(scope="module")
def upgrade_scenario(
    tmp_path_factory: pytest.TempPathFactory, base_venv: Path, crash_wheels: dict[int, list[Path]]
) -> CrashScenario:
    """Upgrade three installed distributions to versions that drop, add and change files."""
    return make_scenario(
        tmp_path_factory.mktemp("upgrade"), base_venv, crash_wheels[1], crash_wheels[2]
    )


#: When set, each crash sweep shard appends one JSON line of counts to the file it names, so
#: ``scripts/robustness.py`` can report how many crash points the sweeps covered.
SWEEP_COUNTS_ENV = "STALWART_SWEEP_COUNTS"


def record_sweep(sweep: str, shard: int, points: int, kills: int, problems: int) -> None:
    path = os.environ.get(SWEEP_COUNTS_ENV)
    if path:
        line = {
            "sweep": sweep,
            "shard": shard,
            "points": points,
            "kills": kills,
            "problems": problems,
        }
        with open(path, "a", encoding="utf-8") as f:  # one short append: shards never interleave
            f.write(json.dumps(line) + "\n")


def crash_at_every_point(
    scenario: CrashScenario, shard: int, shards: int, sweep: str = ""
) -> list[str]:
    """Kill the command before point K, for every K of this shard; returns what went wrong.

    After the kill, the next command is ``stalwart recover`` for most K and, for every third
    K, an ``install`` of an unrelated wheel, which must recover by itself first. The outcome is
    fully determined: the old environment unless COMMITTED was already in place. K = points + 1
    is the uninterrupted run; every other K is a crash point (counted for *sweep*, see
    :func:`record_sweep`).
    """
    problems: list[str] = []
    kills = 0
    for k in range(1, scenario.points + 2):
        if (k - 1) % shards != shard:
            continue
        kills += k <= scenario.points
        scenario.restore()
        crashed = run_under_shim(scenario.argv, kill_at=k, env=scenario.env, ignore=scenario.ignore)
        if k <= scenario.points:
            assert crashed.returncode == KILLED, (k, crashed.stdout, crashed.stderr)
        else:
            ok(crashed)
        done = k - 1  # points that ran before the kill
        committed = done >= scenario.committed_at
        rolled_back = scenario.journal_at <= done < scenario.committed_at
        if done in (scenario.journal_at, scenario.committed_at):
            # `list` only reads: it points at `recover` and changes nothing.
            crashed_state = snapshot(scenario.work)
            listed = ok(run_cli("list", "--python", scenario.python, env=scenario.env))
            if "stalwart recover" not in listed.stderr:
                problems.append(f"K={k}: list did not mention recover: {listed.stderr!r}")
            if snapshot(scenario.work) != crashed_state:
                problems.append(f"K={k}: list changed the environment")
        use_tiny = k % 3 == 0  # spread over the shards
        if use_tiny:
            tiny = ["install", "--no-compile", "--python", scenario.python, scenario.tiny]
            follow = ok(run_cli(*tiny, env=scenario.env))
            want = scenario.new_tiny if committed else scenario.old_tiny
            said = follow.stderr
        else:
            follow = ok(run_cli("recover", "--python", scenario.python, env=scenario.env))
            want = scenario.new if committed else scenario.old
            said = follow.stdout
        if rolled_back and "rolled back" not in said:
            problems.append(f"K={k}: the next command did not roll back: {said!r}")
        left = leftovers(scenario.work)
        if left:
            problems.append(f"K={k}: left behind {left}")
        got = snapshot(scenario.work)
        if got != want:
            state = "new" if committed else "old"
            problems.append(
                f"K={k} ({'install' if use_tiny else 'recover'}): not the {state} "
                f"environment: {describe_diff(got, want)}"
            )
    record_sweep(sweep, shard, scenario.points, kills, len(problems))
    return problems


FRESH_SHARDS = 2
UPGRADE_SHARDS = 4  # an upgrade has about twice as many points: shards balance pytest-xdist


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(FRESH_SHARDS))
def test_crash_at_every_point_of_a_fresh_install(
    fresh_scenario: CrashScenario, shard: int, record_property: Callable[[str, object], None]
) -> None:
    scenario = fresh_scenario
    record_property("mutation_points", scenario.points)
    print(f"fresh install: {scenario.points} mutation points")
    assert scenario.points > 10
    assert 1 < scenario.journal_at < scenario.committed_at < scenario.points
    problems = crash_at_every_point(scenario, shard, FRESH_SHARDS, "fresh install")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(UPGRADE_SHARDS))
def test_crash_at_every_point_of_an_upgrade(
    upgrade_scenario: CrashScenario, shard: int, record_property: Callable[[str, object], None]
) -> None:
    scenario = upgrade_scenario
    record_property("mutation_points", scenario.points)
    print(f"upgrade: {scenario.points} mutation points")
    assert scenario.points > 10
    assert 1 < scenario.journal_at < scenario.committed_at < scenario.points
    site = venv_paths(scenario.work)[1].relative_to(scenario.work)
    # The upgrade really drops, adds and changes files, subpackages included.
    assert f"{site}/charlie/old/__init__.py" in scenario.old
    assert f"{site}/charlie/old" not in scenario.new
    assert f"{site}/charlie/v2/__init__.py" in scenario.new
    assert "share/charlie/changes/notes.txt" in scenario.new
    core = f"{site}/charlie/core.py"
    assert scenario.old[core] != scenario.new[core]
    assert (
        scenario.old[f"{site}/charlie/sub/__init__.py"]
        == scenario.new[f"{site}/charlie/sub/__init__.py"]
    )
    assert "bin/charlie-legacy" in scenario.old
    assert "bin/charlie-legacy" not in scenario.new
    problems = crash_at_every_point(scenario, shard, UPGRADE_SHARDS, "upgrade")
    assert not problems, "\n".join(problems)


# == 2. a file that stays locked, and one that lets go in time ==================================

# The last of the three wheels: its new package directory is committed as one tree (one
# rename, transaction.TREES); moved file by file (Windows), core.py is one of its files.
LOCKED = "*/site-packages/charlie"
LOCKED_FILE = "*/site-packages/charlie/core.py"


@pytest.fixture(params=[True, False], ids=["trees", "file-by-file"])
def trees(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways a commit moves new directories in: as whole trees (POSIX) or file by file
    (Windows), in-process."""
    monkeypatch.setattr(transaction, "TREES", request.param)
    return bool(request.param)


def test_a_file_locked_for_ever_fails_the_install_and_changes_nothing(
    fresh_scenario: CrashScenario,
) -> None:
    scenario = fresh_scenario
    scenario.restore()
    proc = run_under_shim(
        scenario.argv,
        rules=[Rule("rename", LOCKED, "EBUSY", -1)],
        env={**scenario.env, "STALWART_LOCK_TIMEOUT": "0.3"},
        ignore=scenario.ignore,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "site-packages/charlie " in proc.stderr
    assert "failed after" in proc.stderr
    assert "EBUSY" in proc.stderr
    assert not leftovers(scenario.work)
    assert_same(snapshot(scenario.work), scenario.old, "after a lock timeout")


def test_a_lock_episode_within_the_budget_is_waited_out(fresh_scenario: CrashScenario) -> None:
    scenario = fresh_scenario
    scenario.restore()
    proc = ok(
        run_under_shim(
            [*scenario.argv, "-v", "--lock-timeout", "5"],
            rules=[Rule("rename", LOCKED, "EBUSY", 3)],
            env=scenario.env,
            ignore=scenario.ignore,
        )
    )
    assert "3 lock retries" in proc.stdout, proc.stdout
    assert "site-packages/charlie" in proc.stdout  # the episode is listed with -v
    assert not leftovers(scenario.work)
    assert_same(snapshot(scenario.work), scenario.new, "after a lock episode")


def test_a_windows_sharing_violation_for_ever_in_process(
    ivenv: InProcessVenv,
    crash_wheels: dict[int, list[Path]],
    fake_clock: FakeClock,
    injector: FaultInjector,
    trees: bool,
) -> None:
    before = snapshot(ivenv.root)
    fault = injector.fail(Op.REPLACE, LOCKED if trees else LOCKED_FILE, winerror=32)
    with pytest.raises(LockTimeoutError) as caught:
        install(crash_wheels[1], ivenv.env, NO_COMPILE)
    error = caught.value
    assert error.winerror == 32
    locked = ("charlie",) if trees else ("charlie", "core.py")
    assert error.paths[-1].endswith(os.path.join("site-packages", *locked))
    assert "failed after" in str(error)
    assert error.attempts > 5
    assert fake_clock.now >= fs.DEFAULT_TIMEOUT  # the whole budget, in fake seconds
    assert fault.hits == error.attempts  # the rollback never touched the locked file
    assert not leftovers(ivenv.root)
    assert_same(snapshot(ivenv.root), before, "after a lock timeout")


def test_access_denied_on_a_freshly_written_script_is_waited_out(
    ivenv: InProcessVenv,
    crash_wheels: dict[int, list[Path]],
    fake_clock: FakeClock,
    injector: FaultInjector,
) -> None:
    """The founding failure: an EDR holds the launcher stalwart has just written, and moving it
    into place gives WinError 5 for 3 s. With --lock-timeout 10 that is waited out, though
    code 5 on files stalwart did not write gets only the brief budget (1 s here)."""
    fault = injector.fail(Op.REPLACE, "*/bin/alpha-cli", winerror=5, seconds=3.0)
    with fs.settings(timeout=10.0):
        result = install(crash_wheels[1], ivenv.env, NO_COMPILE)
    assert [d.name for d in result.changed] == ["alpha", "bravo", "charlie"]
    assert fault.hits > 1
    assert 3.0 <= fake_clock.now < 10.0
    assert (ivenv.root / "bin" / "alpha-cli").is_file()
    assert not leftovers(ivenv.root)


# == 3. a late failure rolls an upgrade back ======================================================

# The last thing the upgrade moves into place: charlie 2.0's new .dist-info directory, as
# one tree; file by file, its RECORD.
LAST_RECORD = "*/charlie-2.0.dist-info"
LAST_RECORD_FILE = "*/charlie-2.0.dist-info/RECORD"


def records(site: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(site.glob("*.dist-info/RECORD"))}


def test_an_upgrade_failing_at_its_last_rename_restores_the_old_version(
    upgrade_scenario: CrashScenario,
) -> None:
    scenario = upgrade_scenario
    scenario.restore()
    site = venv_paths(scenario.work)[1]
    old_records = records(site)
    assert sorted(old_records) == [f"{n}-1.0.dist-info" for n in ("alpha", "bravo", "charlie")]
    proc = run_under_shim(
        scenario.argv,
        rules=[Rule("rename", LAST_RECORD, "EIO", -1)],
        env=scenario.env,
        ignore=scenario.ignore,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Input/output error" in proc.stderr
    assert records(site) == old_records
    assert not leftovers(scenario.work)
    assert_same(snapshot(scenario.work), scenario.old, "after a failed upgrade")
    ok(run_cli("verify", "--python", scenario.python, env=scenario.env))


def test_an_upgrade_running_out_of_space_while_staging_changes_nothing(
    upgrade_scenario: CrashScenario,
) -> None:
    scenario = upgrade_scenario
    scenario.restore()
    proc = run_under_shim(
        scenario.argv,
        rules=[Rule("write", "*/.stalwart/*", "ENOSPC", -1)],
        env=scenario.env,
        ignore=scenario.ignore,
    )
    assert proc.returncode == 1, proc.stderr
    assert "No space left on device" in proc.stderr
    assert not leftovers(scenario.work)
    assert_same(snapshot(scenario.work), scenario.old, "after ENOSPC")


@pytest.mark.parametrize(
    "op, pattern, code, cache",
    [
        # Into the cache of unpacked wheels (the new version is not in it yet)...
        pytest.param(Op.WRITE, "*", errno.ENOSPC, True, id="ENOSPC-while-unpacking"),
        # ... or, without the cache, straight into the transaction's stage.
        pytest.param(Op.WRITE, "*", errno.ENOSPC, False, id="ENOSPC-while-staging"),
        pytest.param(Op.REPLACE, LAST_RECORD, errno.EIO, True, id="EIO-at-the-last-rename"),
    ],
)
def test_a_failed_upgrade_in_process_keeps_the_old_version_byte_for_byte(
    ivenv: InProcessVenv,
    crash_wheels: dict[int, list[Path]],
    injector: FaultInjector,
    op: Op,
    pattern: str,
    code: int,
    cache: bool,
    trees: bool,
) -> None:
    if pattern == LAST_RECORD and not trees:
        pattern = LAST_RECORD_FILE
    install(crash_wheels[1], ivenv.env, NO_COMPILE)
    before = snapshot(ivenv.root)
    old_records = records(ivenv.site)
    for wheel in crash_wheels[2]:  # the wheel digests are remembered (a full disk skips that)
        FileDigests(CacheLayout()).sha256(str(wheel))
    fault = injector.fail(op, pattern, errno=code)
    with pytest.raises(OSError) as caught:
        install(crash_wheels[2], ivenv.env, dataclasses.replace(NO_COMPILE, cache=cache))
    assert caught.value.errno == code
    assert fault.hits == 1  # permanent errors are not retried
    assert records(ivenv.site) == old_records
    assert not leftovers(ivenv.root)
    assert_same(snapshot(ivenv.root), before, "after a failed upgrade")


# == 4. recovery, in-process: a crash is a BaseException raised under the filesystem layer ======


Crash = SimulatedCrash


@contextlib.contextmanager
def crash_after(limit: int | None, seen: list[Mutation] | None = None) -> Iterator[None]:
    """Let *limit* mutating primitive calls through, then "crash" before the next.

    Every primitive counts (open, write, replace, rename, unlink, mkdir, ...), like a point of
    the LD_PRELOAD shim. *limit* None never crashes; *seen* collects the calls that ran.
    """
    with FaultInjector(crash_after=limit, record=seen is not None) as injector:
        try:
            yield
        finally:
            if seen is not None:
                seen.extend(injector.mutations)


LISTING_ORDERS = ["native", "casefold", "reversed"]


@pytest.fixture(params=LISTING_ORDERS)
def listing_order(request: pytest.FixtureRequest) -> Iterator[str]:
    """``rmtree`` deletes in listing order, which differs between filesystems: ext4 hashes,
    tmpfs lists newest first, NTFS sorts case-insensitively. Recovery must not depend on it."""
    order = request.param
    with FaultInjector(listing=order):
        yield order


class Toy:
    """A small environment and one upgrade-like transaction on it.

    The transaction changes a file (and its mode), keeps one, removes one, removes a whole
    directory (pruned), adds a file in an existing directory and one in new nested
    directories.
    """

    OLD: Mapping[str, tuple[bytes, int]] = {
        "pkg/__init__.py": (b"old init\n", 0o644),
        "pkg/changed.py": (b"old content\n", 0o644),
        "pkg/kept.py": (b"kept\n", 0o644),
        "pkg/removed.py": (b"removed in new\n", 0o644),
        "pkg/olddir/x.py": (b"old dir\n", 0o644),
        "bin/tool": (b"#!/bin/sh\necho old\n", 0o644),
    }
    NEW: Mapping[str, tuple[bytes, int]] = {
        "pkg/__init__.py": (b"new init\n", 0o644),
        "pkg/changed.py": (b"new content\n", 0o644),
        "pkg/added.py": (b"added\n", 0o644),
        "pkg/newdir/deep/y.py": (b"deep\n", 0o644),
        "bin/tool": (b"#!/bin/sh\necho new\n", 0o755),
    }
    REMOVED = ("pkg/removed.py", "pkg/olddir/x.py", "pkg/changed.py", "bin/tool")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = root / "env"
        self.state = self.env / ".stalwart"

    def build(self) -> Snapshot:
        """Lay out the old environment afresh; returns its snapshot."""
        if self.root.exists():
            shutil.rmtree(self.root)
        for rel, (data, mode) in self.OLD.items():
            path = self.env / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
        return snapshot(self.env)

    def stage(self) -> Transaction:
        """A transaction with everything staged and declared, not yet committed."""
        txn = Transaction(str(self.state))
        for rel, (data, mode) in self.NEW.items():
            staged = txn.stage_path(rel)
            with fs.open_for_write(staged, exclusive=True, mode=mode) as writer:
                writer.write(data)
            fs.chmod(staged, mode)
            txn.install(staged, str(self.env / rel))
        for rel in self.REMOVED:
            txn.remove(str(self.env / rel))  # ignored for paths installed anew
        txn.prune_if_empty(str(self.env / "pkg" / "olddir"))
        return txn


@pytest.fixture
def toy(tmp_path: Path) -> Toy:
    return Toy(tmp_path / "toy")


@pytest.fixture
def toy_states(toy: Toy) -> tuple[Snapshot, Snapshot, list[Mutation]]:
    """(old, new, the mutations of an uninterrupted commit) of the toy transaction."""
    old = toy.build()
    txn = toy.stage()
    seen: list[Mutation] = []
    with crash_after(None, seen):
        txn.commit()
    new = snapshot(toy.env)
    assert not toy.state.exists()
    assert "pkg/olddir" not in new
    assert new["bin/tool"] == Node("file", 0o755, b"#!/bin/sh\necho new\n")
    assert new["pkg/kept.py"] == old["pkg/kept.py"]
    assert "pkg/removed.py" not in new
    return old, new, seen


def point_of(seen: list[Mutation], op: str, suffix: str) -> int:
    """1-based number of the mutation *op* whose last path ends with *suffix*."""
    (index,) = [i for i, m in enumerate(seen) if m.op == op and m.paths[-1].endswith(suffix)]
    return index + 1


def test_recover_rolls_back_a_commit_killed_halfway(
    toy: Toy, toy_states: tuple[Snapshot, Snapshot, list[Mutation]]
) -> None:
    """Killed after every backup and two of the installs: recovery puts the old files back."""
    old, _new, seen = toy_states
    journal_at = point_of(seen, "replace", JOURNAL)
    replaces = [i for i, m in enumerate(seen) if m.op == "replace" and i >= journal_at]
    installs = replaces[:-1]  # the last one puts COMMITTED in place
    assert len(installs) == 5  # one per new file
    toy.build()
    txn = toy.stage()
    ran: list[Mutation] = []
    with contextlib.suppress(Crash, RollbackIncompleteError), crash_after(installs[2], ran):
        txn.commit()
    ops = [m.op for m in ran]
    assert ops.count("rename") == 5  # the backups
    assert ops[journal_at:].count("replace") == 2
    assert snapshot(toy.env) != old
    (report,) = recover(str(toy.state), [str(toy.env)])
    assert report.action == "rolled back"
    assert report.steps > 0
    assert_same(snapshot(toy.env), old, "after rolling back")


def test_recover_rolls_forward_after_committed(
    toy: Toy, toy_states: tuple[Snapshot, Snapshot, list[Mutation]]
) -> None:
    """Killed just after COMMITTED: recovery finishes the cleanup and the pruning."""
    _old, new, seen = toy_states
    toy.build()
    txn = toy.stage()
    with contextlib.suppress(Crash), crash_after(point_of(seen, "replace", COMMITTED)):
        txn.commit()
    applied = snapshot(toy.env)
    assert "pkg/olddir" in applied  # pruning happens after COMMITTED
    (report,) = recover(str(toy.state), [str(toy.env)])
    assert report.action == "rolled forward"
    assert not toy.state.exists()
    assert_same(snapshot(toy.env), new, "after rolling forward")


def test_crash_at_every_point_of_a_commit(
    toy: Toy, toy_states: tuple[Snapshot, Snapshot, list[Mutation]], listing_order: str
) -> None:
    old, new, seen = toy_states
    journal_at = point_of(seen, "replace", JOURNAL)
    committed_at = point_of(seen, "replace", COMMITTED)
    problems = []
    for limit in range(len(seen) + 1):
        toy.build()
        txn = toy.stage()
        with contextlib.suppress(Crash, RollbackIncompleteError), crash_after(limit):
            txn.commit()
        reports = recover(str(toy.state), [str(toy.env)])
        want = new if limit >= committed_at else old
        if journal_at <= limit < committed_at and [r.action for r in reports] != ["rolled back"]:
            problems.append(f"crash after {limit}: {reports}")
        got = snapshot(toy.env)
        if got != want:
            problems.append(f"crash after {limit} ({listing_order}): {describe_diff(got, want)}")
    assert not problems, "\n".join(problems)


def test_crash_during_recovery_then_recover_again(
    toy: Toy, toy_states: tuple[Snapshot, Snapshot, list[Mutation]], listing_order: str
) -> None:
    """Recovery itself may be killed at any point; the next recovery still ends in old or new."""
    old, new, seen = toy_states
    committed_at = point_of(seen, "replace", COMMITTED)
    problems = []
    cases = 0
    for limit in range(len(seen)):
        for again in range(200):
            toy.build()
            txn = toy.stage()
            with contextlib.suppress(Crash, RollbackIncompleteError), crash_after(limit):
                txn.commit()
            crashed = False
            try:
                with crash_after(again):
                    recover(str(toy.state), [str(toy.env)])
            except Crash:
                crashed = True
            recover(str(toy.state), [str(toy.env)])
            cases += 1
            want = new if limit >= committed_at else old
            got = snapshot(toy.env)
            if got != want:
                problems.append(
                    f"commit crashed after {limit}, recovery after {again} "
                    f"({listing_order}): {describe_diff(got, want)}"
                )
            if not crashed:
                break
        else:
            pytest.fail(f"recovery after a crash at {limit} never ran to its end")
    assert cases > 2 * len(seen)
    assert not problems, "\n".join(problems[:20])


def test_crash_while_a_failed_commit_rolls_back(
    toy: Toy,
    toy_states: tuple[Snapshot, Snapshot, list[Mutation]],
    injector: FaultInjector,
    listing_order: str,
) -> None:
    """The last install fails; the in-process undo and cleanup are killed at every point."""
    old, _new, _seen = toy_states
    problems = []
    for limit in range(200):
        toy.build()
        txn = toy.stage()
        fault = injector.fail(Op.REPLACE, "*/bin/tool", errno=errno.EIO, times=1)
        crashed = False
        try:
            with crash_after(limit):
                txn.commit()
        except Crash:
            crashed = True  # before the failure, or while cleaning up after the rollback
        except RollbackIncompleteError as exc:
            assert isinstance(exc.cause, Crash)  # killed while undoing
            crashed = True
        except OSError as exc:
            assert exc.errno == errno.EIO
        finally:
            injector.faults.remove(fault)
        if not crashed:
            assert not toy.state.exists()
        recover(str(toy.state), [str(toy.env)])
        got = snapshot(toy.env)
        if got != old:
            problems.append(f"crash after {limit} ({listing_order}): {describe_diff(got, old)}")
        if not crashed:
            break
    else:
        pytest.fail("the failed commit never ran to its end")
    assert not problems, "\n".join(problems[:20])


def test_rollback_incomplete_names_the_journal_and_recover(
    toy: Toy, injector: FaultInjector
) -> None:
    old = toy.build()
    txn = toy.stage()
    # The last install fails for real; then restoring a backup fails too (a permanent error).
    injector.fail(Op.REPLACE, "*/bin/tool", errno=errno.EIO, times=1)
    undo = injector.fail(Op.REPLACE, "*/backup/*", errno=errno.EIO)
    with pytest.raises(RollbackIncompleteError) as caught:
        txn.commit()
    error = caught.value
    assert error.journal == txn.journal_path
    assert os.path.isfile(error.journal)  # kept for recovery
    message = str(error)
    assert txn.journal_path in message
    assert "stalwart recover" in message
    assert isinstance(error.cause, OSError)
    assert error.cause.errno == errno.EIO
    assert isinstance(error, OSError)  # the CLI maps it like any filesystem error
    assert snapshot(toy.env) != old
    injector.faults.remove(undo)  # the file is released
    (report,) = recover(str(toy.state), [str(toy.env)])
    assert report.action == "rolled back"
    assert not toy.state.exists()
    assert_same(snapshot(toy.env), old, "after stalwart recover")


# == 5. concurrent commands on one environment ===================================================


def conc_dist(i: int) -> Dist:
    """Distinct distributions that share directories: a namespace package, share/, bin/."""
    name = f"conc{i:02d}"
    return Dist(
        name,
        "1.0",
        {
            f"{name}/__init__.py": f"NAME = {name!r}\n".encode(),
            f"{name}/mod.py": b"def main():\n    return 0\n",
            f"nsshared/{name}.py": f"OWNER = {name!r}\n".encode(),  # no __init__.py: shared
        },
        {f"data/share/conc/{name}.txt": name.encode()},
        f"[console_scripts]\n{name}-cli = {name}.mod:main\n",
    )


def run_together(commands: list[list[str | Path]], env: Mapping[str, str]) -> list[str]:
    """Start every command at once; returns what each printed. Each must exit 0."""
    procs = [
        subprocess.Popen(
            [str(STALWART), *map(str, cmd)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env),
        )
        for cmd in commands
    ]
    outputs = []
    for cmd, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (cmd, out, err)
        assert "Traceback" not in err
        assert "recovered" not in err  # nobody crashed, so nobody had to recover
        outputs.append(out + err)
    return outputs


def test_concurrent_installs_and_uninstalls_on_one_environment(
    base_venv: Path, tmp_path: Path
) -> None:
    root = copy_venv(base_venv, tmp_path / "venv")
    python, site = venv_paths(root)
    env = cli_env(tmp_path / "cache")
    ok(run_cli("list", "--python", python, env=env))  # the interpreter cache is written once
    wheels = [build_wheel(tmp_path / "wheels", conc_dist(i)) for i in range(12)]
    target = ["--python", str(python)]

    def installed() -> list[str]:
        proc = ok(run_cli("list", "--format", "json", *target, env=env))
        return sorted(row["name"] for row in json.loads(proc.stdout))

    # Eight installs at once; two install a wheel another one installs too: whoever comes
    # second finds it installed ("unchanged"), so every command succeeds in any order.
    run_together(
        [
            ["install", *target, wheels[0]],
            ["install", *target, wheels[1]],
            ["install", *target, "--no-compile", wheels[2]],
            ["install", *target, wheels[3]],
            ["install", *target, "--no-compile", wheels[4]],
            ["install", *target, wheels[5], wheels[6]],
            ["install", *target, wheels[0]],
            ["install", *target, "--no-compile", wheels[1], wheels[7]],
        ],
        env,
    )
    assert installed() == [f"conc{i:02d}" for i in range(8)]
    ok(run_cli("verify", *target, env=env))
    assert not leftovers(root)

    # Four uninstalls and four installs at once (one of them also names an installed wheel).
    run_together(
        [
            ["uninstall", *target, "conc00"],
            ["install", *target, wheels[8]],
            ["uninstall", *target, "conc01"],
            ["install", *target, "--no-compile", wheels[9]],
            ["uninstall", *target, "conc02"],
            ["install", *target, wheels[10]],
            ["uninstall", *target, "conc03"],
            ["install", *target, wheels[11], wheels[4]],
        ],
        env,
    )
    assert installed() == [f"conc{i:02d}" for i in range(4, 12)]
    verified = ok(run_cli("verify", "-v", *target, env=env))
    assert "Verified 8 packages: 0 with differences" in verified.stdout
    assert not leftovers(root)
    for i in range(12):
        name = f"conc{i:02d}"
        present = i >= 4
        assert (site / name / "mod.py").is_file() is present, name
        assert (site / "nsshared" / f"{name}.py").is_file() is present, name
        assert (root / "share" / "conc" / f"{name}.txt").is_file() is present, name
        assert (root / "bin" / f"{name}-cli").is_file() is present, name
        assert (site / f"{name}-1.0.dist-info").is_dir() is present, name


HOLD_LOCK = """
import sys
from stalwart.envlock import EnvironmentLock
lock = EnvironmentLock(sys.argv[1], timeout=0)
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the parent closes our stdin
"""


@contextlib.contextmanager
def lock_held_by_another_process(lib_dir: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lib_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)
        assert proc.stdout is not None
        proc.stdout.close()


def test_environment_lock_excludes_another_process(tmp_path: Path) -> None:
    lib = tmp_path / "site-packages"
    lib.mkdir()
    before = snapshot(tmp_path)
    with lock_held_by_another_process(lib) as holder:
        with pytest.raises(TargetEnvironmentError, match="another stalwart process"):
            EnvironmentLock(str(lib), timeout=0).acquire()
        # Waiting: polls on the layer's clock, says once that it waits, then gives up.
        fake = FakeClock()
        notes: list[str] = []
        with (
            fs.settings(clock=fake.clock, sleep=fake.sleep),
            pytest.raises(TargetEnvironmentError, match=r"another stalwart process.*--lock-wait"),
        ):
            EnvironmentLock(str(lib), timeout=3.0, notify=notes.append).acquire()
        assert fake.now >= 3.0
        assert fake.sleeps > 10
        assert len(notes) == 1
        assert "waiting for another stalwart process" in notes[0]
        assert holder.poll() is None
    # The holder exited: the OS dropped its lock.
    with EnvironmentLock(str(lib), timeout=0):
        pass
    assert snapshot(tmp_path) == before  # locking writes nothing into the environment


def test_the_command_gives_up_on_a_locked_environment(
    fresh_scenario: CrashScenario,
) -> None:
    scenario = fresh_scenario
    scenario.restore()
    with lock_held_by_another_process(venv_paths(scenario.work)[1]):
        proc = run_cli(*scenario.argv[1:], "--lock-wait", "0", env=scenario.env)
    assert proc.returncode == 4, proc.stderr
    assert "another stalwart process" in proc.stderr
    assert_same(snapshot(scenario.work), scenario.old, "after giving up")


# == 6. Windows "file in use": deletes fail, renames work ========================================


def test_unlink_of_a_running_exe_moves_it_to_the_trash(
    tmp_path: Path, fake_clock: FakeClock, injector: FaultInjector
) -> None:
    exe = tmp_path / "bin" / "tool.exe"
    exe.parent.mkdir()
    exe.write_bytes(b"MZ running")
    trash = tmp_path / "state" / "trash"
    # Access denied on delete, for ever (a running .exe); renaming it is allowed.
    injector.fail(Op.UNLINK, "*/tool.exe*", winerror=5)
    moved = fs.unlink(exe, trash=trash)
    assert moved is not None
    assert not exe.exists()
    assert Path(moved).parent == trash
    assert Path(moved).read_bytes() == b"MZ running"
    assert 0 < fake_clock.now <= fs.RetryPolicy().budget(brief=True) + 1  # access denied: brief
    # Still running: the trash keeps it.
    assert fs.empty_trash(trash) == [moved]
    assert Path(moved).is_file()
    injector.faults.clear()  # the program exited
    assert fs.empty_trash(trash) == []
    assert not trash.exists()


@dataclass
class FilesInUse(FaultInjector):
    """Deleting the held files fails with a sharing violation whatever their name is now.

    On Windows a lock belongs to the open file, not to its path: a loaded ``.pyd`` can be
    renamed (into a backup directory, say) but not deleted. Files are told apart by inode.
    """

    def hold(self, path: Path) -> None:
        st = os.lstat(path)
        held = (st.st_dev, st.st_ino)

        def is_held(candidate: str) -> bool:
            try:
                now = os.lstat(candidate)
            except OSError:
                return False
            return (now.st_dev, now.st_ino) == held

        self.fail(Op.UNLINK, "*", winerror=32, when=is_held)


NATIVE = Dist(
    "native",
    "1.0",
    {
        "native/__init__.py": b"from native._speedups import *\n",
        "native/_speedups.pyd": b"MZ\x90\x00 a loaded extension module",
        "native/pure.py": b"PURE = 1\n",
    },
)


def test_uninstall_with_a_loaded_pyd_leaves_it_in_the_trash(
    ivenv: InProcessVenv, tmp_path: Path, fake_clock: FakeClock
) -> None:
    install([build_wheel(tmp_path / "wheels", NATIVE)], ivenv.env, NO_COMPILE)
    pyd = ivenv.site / "native" / "_speedups.pyd"
    data = pyd.read_bytes()
    ino = pyd.stat().st_ino
    state = ivenv.site / ".stalwart"
    with FilesInUse() as in_use:
        in_use.hold(pyd)
        result = uninstall(["native"], ivenv.env)
        assert [(d.name, d.action) for d in result.dists] == [("native", "uninstalled")]
        # Moved into the backup by rename, committed; deleting the backup failed for the
        # whole budget, so the file went to the trash, and the trash could not be emptied.
        assert not (ivenv.site / "native").exists()
        assert not list(ivenv.site.glob("native-*.dist-info"))
        assert sorted(p.name for p in state.iterdir()) == ["trash"]
        (trashed,) = (state / "trash").iterdir()
        assert trashed.read_bytes() == data
        assert trashed.stat().st_ino == ino
        # rmtree waited the whole budget; empty_trash then tried once without waiting.
        assert fs.DEFAULT_TIMEOUT <= fake_clock.now < 2 * fs.DEFAULT_TIMEOUT
        assert fs.runtime().stats.total().failures == 1  # one lock episode; the retry-free
        # attempt of empty_trash is not an episode
        # The next command, while the file is still loaded, leaves it there and succeeds.
        install([build_wheel(tmp_path / "wheels", TINY)], ivenv.env, NO_COMPILE)
        assert trashed.exists()
    # Once the process that loaded it is gone, the next command empties the trash.
    result = uninstall(["tiny"], ivenv.env)
    assert result.recovered == []
    assert not state.exists()
    assert not leftovers(ivenv.root)
    assert list(ivenv.site.iterdir()) == []  # as empty as the venv was made
