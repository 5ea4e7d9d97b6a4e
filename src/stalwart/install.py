"""Installing and uninstalling: open, validate, plan, stage, then commit as one transaction.

Nothing visible changes until every wheel of the command is extracted, verified against its
RECORD, byte-compiled and staged next to the environment; then :class:`Transaction` moves it all
in, or nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from stalwart import fs
from stalwart._paths import is_within
from stalwart.environment import Environment, helper_script, interpreter_env
from stalwart.envlock import DEFAULT_LOCK_WAIT, EnvironmentLock
from stalwart.errors import (
    ConflictError,
    ExternallyManagedError,
    InvalidWheelError,
    NotInstalledError,
    TargetEnvironmentError,
    UsageError,
)
from stalwart.installed import Installed, find_installed
from stalwart.plan import FileAction, WheelPlan, plan_wheel, record_path
from stalwart.scripts import rewrite_shebang
from stalwart.transaction import RecoveryReport, Transaction, recover
from stalwart.uninstall import Removal, files_owned_by, interpreter_paths, plan_removal
from stalwart.wheel.archive import DEFAULT_LIMITS, Limits
from stalwart.wheel.record import ACCEPTED_HASHES, RecordEntry, format_record, hash_file
from stalwart.wheel.wheelfile import Wheel, check_compatible, open_wheel

__all__ = [
    "InstallOptions",
    "DistResult",
    "InstallResult",
    "Progress",
    "install",
    "uninstall",
    "recover_environment",
]

Progress = Callable[[str, int, int], None]  # (phase, done, total)
_PARALLEL_MIN_FILES = 64
_WORKERS = min(8, (os.cpu_count() or 2) * 2)
_COMPILE_CHUNK = 40  # .py files per compiling process, at least


@dataclass(frozen=True)
class InstallOptions:
    compile: bool = True
    verify_record: bool = True
    reinstall: bool = False
    allow_overwrite: bool = False
    break_system_packages: bool = False
    requested: bool = True
    limits: Limits = DEFAULT_LIMITS
    lock_wait: float = DEFAULT_LOCK_WAIT


@dataclass(frozen=True)
class DistResult:
    name: str
    version: str
    action: str  # "installed", "upgraded", "reinstalled", "unchanged", "uninstalled"
    previous: str | None = None
    files: int = 0


@dataclass
class InstallResult:
    dists: list[DistResult] = field(default_factory=list)
    recovered: list[RecoveryReport] = field(default_factory=list)
    compile_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    #: Seconds per phase ("stage", "compile", "commit"): where the time of a command went.
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> list[DistResult]:
        return [d for d in self.dists if d.action != "unchanged"]


@dataclass(frozen=True, slots=True)
class _Staged:
    action: FileAction
    staged: str
    entry: RecordEntry  # RECORD row of the installed file (path relative to lib_dir)
    problem: str | None = None


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_externally_managed(env: Environment, options: InstallOptions) -> None:
    # Like pip: --target and --prefix skip the check, as the marker cannot be located for them.
    if env.in_venv or env.target is not None or env.custom_prefix:
        return
    if options.break_system_packages:
        return
    marker = os.path.join(env.stdlib, "EXTERNALLY-MANAGED")
    if os.path.exists(marker):
        raise ExternallyManagedError(
            f"{env.executable} is externally managed ({marker}, PEP 668): install into a "
            "virtual environment, or pass --break-system-packages to override"
        )


def _check_not_self(plans: list[WheelPlan], env: Environment) -> None:
    """Refuse wheels that would overwrite stalwart itself or the interpreter's own files, or
    write through a symlink that leads out of the environment (uninstall would then refuse
    to remove what install put there)."""

    stdlib = {os.path.realpath(env.stdlib), os.path.realpath(env.platstdlib)}
    # In a virtual environment platstdlib contains site-packages: those are not protected.
    allowed = {os.path.realpath(d) for d in env.lib_dirs}
    own = os.path.realpath(os.path.dirname(__file__))
    exe = {os.path.realpath(sys.executable), os.path.realpath(env.executable)}
    exe_names = {os.path.basename(p) for p in (*exe, sys.executable, env.executable)}
    inside = {os.path.realpath(d) for d in env.roots}
    problems: list[str] = []
    for plan in plans:
        for parent in sorted({os.path.dirname(a.dest) for a in plan.files}):
            real = os.path.realpath(parent)
            if not any(is_within(root, real) for root in inside):
                problems.append(
                    f"{plan.wheel.filename} writes into {parent}, which leads outside the "
                    f"environment (to {real})"
                )
                break
            if is_within(own, real) or (
                any(is_within(p, real) for p in stdlib)
                and not any(is_within(a, real) for a in allowed)
            ):
                problems.append(f"{plan.wheel.filename} writes into {parent}, which is protected")
                break
        problems.extend(
            f"{plan.wheel.filename} would overwrite the interpreter {action.dest}"
            for action in plan.files
            # realpath only for files named like an interpreter: it costs a syscall per part
            if _interpreter_like(os.path.basename(action.dest), exe_names)
            and os.path.realpath(action.dest) in exe
        )
    if problems:
        raise TargetEnvironmentError("; ".join(problems))


def _interpreter_like(name: str, exe_names: set[str]) -> bool:
    return name in exe_names or name.lower().startswith(("python", "pypy"))


def _stage_one(
    wheel: Wheel,
    plan: WheelPlan,
    action: FileAction,
    staged: str,
    options: InstallOptions,
    python: str,
    windows: bool,
    umask: int,
) -> _Staged:
    rel = record_path(plan.lib_dir, action.dest)
    mode = 0o777 if action.executable else 0o666
    expected = wheel.record.get(action.member) if action.member else None
    hash_name = "sha256"
    if expected is not None and expected.hash_name in ACCEPTED_HASHES:
        hash_name = expected.hash_name
    problem = None
    if action.member is None or action.rewrite_shebang:
        if action.member is None:
            assert action.content is not None
            data = action.content
        else:
            original = wheel.archive.read(action.member)
            problem = _mismatch(expected, hashlib.new(hash_name, original).digest(), len(original))
            data = rewrite_shebang(original, python, windows=windows) or original
        with fs.open_for_write(staged, exclusive=True, mode=mode) as writer:
            writer.write(data)
        digest, size = hashlib.new(hash_name, data).digest(), len(data)
    else:
        entry = wheel.archive.get(action.member)
        assert entry is not None
        with fs.open_for_write(staged, exclusive=True, mode=mode) as writer:
            digest, size = wheel.archive.copy_to(entry, writer.write, hash_name)
        problem = _mismatch(expected, digest, size)
    if action.executable and (0o777 & ~umask) & 0o111 != 0o111:
        fs.chmod(staged, (0o777 & ~umask) | 0o111)  # pip's rule for executables
    if problem is not None:
        problem = f"{action.member}: {problem}"
        if not options.verify_record:
            problem = None
    return _Staged(action, staged, RecordEntry(rel, hash_name, digest, size), problem)


def _mismatch(expected: RecordEntry | None, digest: bytes, size: int) -> str | None:
    if expected is None:
        return None  # only reachable with verify_record=False; validation refused it otherwise
    if expected.digest != digest:
        return "content does not match its RECORD hash"
    if expected.size is not None and expected.size != size:
        return f"size {size} does not match RECORD's {expected.size}"
    return None


def _stage_all(
    plans: list[WheelPlan],
    txn: Transaction,
    options: InstallOptions,
    env: Environment,
    umask: int,
    tick: Callable[[int], None],
) -> list[list[_Staged]]:
    """Extract and generate every file of every wheel into staging, verifying RECORD hashes.

    One thread pool serves all wheels (zlib, hashing and file writes release the GIL), so many
    small wheels gain as much as one big one. Results are collected, and progress reported, in
    the calling thread.
    """
    jobs = [
        (index, plan, action, txn.stage_path(action.dest))
        for index, plan in enumerate(plans)
        for action in plan.files
    ]

    def run(job: tuple[int, WheelPlan, FileAction, str]) -> _Staged:
        _, plan, action, staged = job
        return _stage_one(
            plan.wheel, plan, action, staged, options, env.executable, env.windows, umask
        )

    staged: list[list[_Staged]] = [[] for _ in plans]
    if len(jobs) >= _PARALLEL_MIN_FILES:
        pool = ThreadPoolExecutor(_WORKERS)
        try:
            for job, item in zip(jobs, pool.map(run, jobs), strict=True):
                staged[job[0]].append(item)
                tick(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        for job in jobs:
            staged[job[0]].append(run(job))
            tick(1)
    for plan, items in zip(plans, staged, strict=True):
        problems = [s.problem for s in items if s.problem]
        if problems:
            raise InvalidWheelError(plan.wheel.path, problems)
    return staged


def _start_compilers(env: Environment, n_sources: int) -> list[subprocess.Popen[str]]:
    """Start the target interpreter(s) that will byte-compile, before staging begins.

    Their start-up (tens of ms each) then overlaps extraction; they wait on stdin for work.
    """
    if n_sources == 0:
        return []
    script = helper_script("_compile_pyc.py")
    env_vars = interpreter_env()
    workers = max(1, min(os.cpu_count() or 1, n_sources // _COMPILE_CHUNK))
    return [
        subprocess.Popen(
            [env.executable, "-I", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env_vars,
        )
        for _ in range(workers)
    ]


def _stop_compilers(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _compile(
    procs: list[subprocess.Popen[str]], sources: list[tuple[str, str, int]]
) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """Byte-compile with the *target* interpreter; returns ([(final .py, pyc rel, data)], errors).

    *sources* are (staged path, final path, size). The target compiles (its magic number, its
    optimizations) and hands the bytes back; stalwart writes them, so bytecode goes through the
    filesystem layer and the transaction too. Work is balanced over *procs* by source size.
    """
    chunks: list[list[tuple[str, str]]] = [[] for _ in procs]
    loads = [0] * len(procs)
    for staged, final, size in sorted(sources, key=lambda s: -s[2]):
        i = loads.index(min(loads))
        chunks[i].append((staged, final))
        loads[i] += size + 2048  # per-file overhead
    results: list[tuple[str, str, bytes]] = []
    errors: list[str] = []
    for chunk, proc in zip(chunks, procs, strict=True):
        stdout, stderr = proc.communicate(json.dumps(chunk))
        if proc.returncode != 0:
            errors.append(f"byte-compilation failed: {stderr.strip()[-500:]}")
            continue
        for (_, final), line in zip(chunk, stdout.splitlines(), strict=True):
            row = json.loads(line)
            if "error" in row:
                errors.append(f"{final}: {row['error']}")
            else:
                results.append((final, row["pyc"], base64.b64decode(row["data"])))
    return results, errors


def _direct_url(path: str) -> dict[str, object]:
    """What pip records for a wheel installed from a local file (PEP 610)."""
    hexdigest = hash_file(path)[0].hex()
    return {
        "archive_info": {"hash": f"sha256={hexdigest}", "hashes": {"sha256": hexdigest}},
        "url": Path(os.path.abspath(path)).as_uri(),
    }


def _conflicts(
    staged_by_plan: list[list[_Staged]],
    plans: list[WheelPlan],
    installed: dict[str, Installed],
    replacing: set[str],
    removing: set[str],
    allow: bool,
) -> list[str]:
    """What the new files would clobber: files of other distributions (different content),
    the same path from two wheels of this command (different content), and directories that
    hold anything this command does not remove (refused even with --allow-overwrite: their
    contents would be deleted, not overwritten)."""
    problems: list[str] = []
    claimed: dict[str, tuple[WheelPlan, _Staged]] = {}
    for plan, staged in zip(plans, staged_by_plan, strict=True):
        for item in staged:
            key = os.path.normcase(item.action.dest)
            first = claimed.setdefault(key, (plan, item))
            if (
                first[1] is not item
                and not allow
                and not _same_content(first[1].staged, item.staged)
            ):
                problems.append(
                    f"{item.action.dest} is shipped by both {first[0].wheel.filename} and "
                    f"{plan.wheel.filename}, with different content"
                )
    existing = [s for staged in staged_by_plan for s in staged if os.path.lexists(s.action.dest)]
    for item in existing:
        dest = item.action.dest
        if os.path.isdir(dest) and not os.path.islink(dest):
            kept = _first_kept_file(dest, removing)
            if kept is not None:
                problems.append(
                    f"{dest} is a directory that holds {kept}; a file cannot replace it"
                )
    if not existing or allow:
        return problems
    owners: dict[str, Installed] = {}
    for dist in installed.values():
        if dist.name in replacing:
            continue
        for path in dist.files():
            owners[os.path.normcase(path)] = dist
    for item in existing:
        owner = owners.get(os.path.normcase(item.action.dest))
        if owner is None:
            continue
        if _same_content(item.action.dest, item.staged):
            continue  # e.g. a pkgutil namespace __init__.py shipped by every member
        problems.append(f"{item.action.dest} belongs to {owner.display_name} {owner.version}")
    return problems


def _first_kept_file(directory: str, removing: set[str]) -> str | None:
    """A file below *directory* that this command does not remove, if there is one."""
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.normcase(path) not in removing:
                return path
    return None


def _same_content(a: str, b: str) -> bool:
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


def recover_environment(env: Environment) -> list[RecoveryReport]:
    """Finish or undo transactions a crashed stalwart left; caller must hold the env lock."""
    return recover(env.state_dir, env.roots)


def install(
    wheel_paths: Sequence[str | os.PathLike[str]],
    env: Environment,
    options: InstallOptions = InstallOptions(),
    *,
    progress: Progress | None = None,
    notify: Callable[[str], None] | None = None,
) -> InstallResult:
    """Install *wheel_paths* into *env* as one transaction."""
    start = time.perf_counter()
    result = InstallResult()
    _check_externally_managed(env, options)
    wheels: list[Wheel] = []
    try:
        for path in wheel_paths:
            wheels.append(
                open_wheel(path, limits=options.limits, verify_record=options.verify_record)
            )
        seen: dict[str, str] = {}
        for wheel in wheels:
            check_compatible(wheel, env.tags)
            if wheel.name in seen:
                raise UsageError(
                    f"{wheel.filename} and {seen[wheel.name]} are both {wheel.display_name}"
                )
            seen[wheel.name] = wheel.filename
            result.notes.extend(f"{wheel.filename}: {n}" for n in wheel.notes)
        for lib_dir in env.lib_dirs:
            if os.path.lexists(lib_dir) and not os.path.isdir(lib_dir):
                raise TargetEnvironmentError(f"{lib_dir} exists and is not a directory")
            fs.makedirs(lib_dir)
        with EnvironmentLock(env.lib_dirs[0], timeout=options.lock_wait, notify=notify):
            result.recovered = recover_environment(env)
            _install_locked(wheels, env, options, result, progress)
    finally:
        for wheel in wheels:
            wheel.close()
    result.elapsed = time.perf_counter() - start
    return result


def _install_locked(
    wheels: list[Wheel],
    env: Environment,
    options: InstallOptions,
    result: InstallResult,
    progress: Progress | None,
) -> None:
    installed = find_installed(env.lib_dirs)
    plans: list[WheelPlan] = []
    previous: dict[str, Installed] = {}
    for wheel in wheels:
        old = installed.get(wheel.name)
        if old is not None and not options.reinstall and _same_version(old, wheel):
            result.dists.append(DistResult(wheel.display_name, old.version, "unchanged"))
            continue
        if old is not None:
            previous[wheel.name] = old
        plans.append(
            plan_wheel(wheel, env, requested=options.requested, direct_url=_direct_url(wheel.path))
        )
    if not plans:
        return
    _check_not_self(plans, env)
    keep = files_owned_by([d for d in installed.values() if d.name not in previous])
    protected = interpreter_paths(env.executable, sys.executable)
    removals = [
        plan_removal(old, env.roots, _stop_dirs(env), keep, protected) for old in previous.values()
    ]
    umask = _current_umask()
    total = sum(len(p.files) for p in plans)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("staging", done, total)

    clock = time.perf_counter
    t0 = clock()
    txn = Transaction(env.state_dir)
    n_sources = sum(a.compile for p in plans for a in p.files) if options.compile else 0
    compilers = _start_compilers(env, n_sources)
    try:
        staged_by_plan = _stage_all(plans, txn, options, env, umask, tick)
        problems = _conflicts(
            staged_by_plan,
            plans,
            installed,
            set(previous),
            {os.path.normcase(f) for r in removals for f in r.files},
            options.allow_overwrite,
        )
        if problems:
            raise ConflictError(
                "installing would overwrite files of other distributions (pass "
                "--allow-overwrite to do it anyway): " + "; ".join(problems[:10])
            )
        if progress is not None:
            progress("compiling", 0, 1)
        t1 = clock()
        sources = [
            (s.staged, s.action.dest, s.entry.size or 0)
            for staged in staged_by_plan
            for s in staged
            if s.action.compile
        ]
        # With --no-compile no compiler was started, and nothing is compiled.
        compiled, result.compile_errors = _compile(compilers, sources) if compilers else ([], [])
        pycs: dict[str, list[tuple[str, str, bytes]]] = {}
        for item in compiled:
            pycs.setdefault(item[0], []).append(item)
        for plan, staged in zip(plans, staged_by_plan, strict=True):
            _finish_wheel_staging(plan, staged, txn, pycs)
        t2 = clock()
        for removal in removals:
            for path in removal.files:
                txn.remove(path)  # ignored for paths the new version installs again
            for directory in removal.prune:
                txn.prune_if_empty(directory)
        if progress is not None:
            progress("committing", 0, 1)
        txn.commit()
    except BaseException:
        _stop_compilers(compilers)
        txn.abort()
        raise
    result.phases.update(stage=t1 - t0, compile=t2 - t1, commit=clock() - t2)
    for plan, staged in zip(plans, staged_by_plan, strict=True):
        old = previous.get(plan.wheel.name)
        if old is None:
            action = "installed"
        elif _same_version(old, plan.wheel):
            action = "reinstalled"
        else:
            action = "upgraded"
        result.dists.append(
            DistResult(
                plan.wheel.display_name,
                str(plan.wheel.version),
                action,
                previous=None if old is None else old.version,
                files=len(staged),
            )
        )


def _same_version(old: Installed, wheel: Wheel) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(old.version) == wheel.version
    except InvalidVersion:
        return False


def _stop_dirs(env: Environment) -> list[str]:
    scheme_dirs = [env.paths[k] for k in ("purelib", "platlib", "scripts", "data")]
    return [*scheme_dirs, *env.lib_dirs, *env.roots]


def _finish_wheel_staging(
    plan: WheelPlan,
    staged: list[_Staged],
    txn: Transaction,
    pycs: dict[str, list[tuple[str, str, bytes]]],
) -> None:
    """Declare one wheel's staged files, write its bytecode and its RECORD into staging."""
    rows = [s.entry for s in staged]
    for item in staged:
        txn.install(item.staged, item.action.dest)
        for final, rel, data in pycs.get(item.action.dest, ()):
            dest = os.path.normpath(os.path.join(os.path.dirname(final), rel))
            path = txn.stage_path(dest)
            with fs.open_for_write(path, exclusive=True) as writer:
                writer.write(data)
            txn.install(path, dest)
            rows.append(RecordEntry(record_path(plan.lib_dir, dest)))
    rows.append(RecordEntry(record_path(plan.lib_dir, plan.record_file)))
    record = txn.stage_path(plan.record_file)
    with fs.open_for_write(record, exclusive=True) as writer:
        writer.write(format_record(rows))
    txn.install(record, plan.record_file)


def uninstall(
    names: Sequence[str],
    env: Environment,
    *,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    notify: Callable[[str], None] | None = None,
) -> InstallResult:
    """Remove the named distributions as one transaction."""
    from packaging.utils import canonicalize_name

    start = time.perf_counter()
    result = InstallResult()
    with EnvironmentLock(env.lib_dirs[0], timeout=lock_wait, notify=notify):
        result.recovered = recover_environment(env)
        installed = find_installed(env.lib_dirs)
        missing = [n for n in names if canonicalize_name(n) not in installed]
        if missing:
            raise NotInstalledError(missing)
        leaving = list(dict.fromkeys(canonicalize_name(n) for n in names))
        keep = files_owned_by([d for d in installed.values() if d.name not in leaving])
        removals: list[Removal] = [
            plan_removal(
                installed[name],
                env.roots,
                _stop_dirs(env),
                keep,
                interpreter_paths(env.executable, sys.executable),
            )
            for name in leaving
        ]
        txn = Transaction(env.state_dir)
        try:
            for removal in removals:
                for path in removal.files:
                    txn.remove(path)
                for directory in removal.prune:
                    txn.prune_if_empty(directory)
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        for removal in removals:
            result.dists.append(
                DistResult(
                    removal.dist.display_name,
                    removal.dist.version,
                    "uninstalled",
                    files=len(removal.files),
                )
            )
    result.elapsed = time.perf_counter() - start
    return result
