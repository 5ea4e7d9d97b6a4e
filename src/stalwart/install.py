"""Installing wheels: open, validate, plan, stage, compile, check, then commit as one transaction.

Orchestration only; each step is another module's job::

    wheel.open_wheel -> plan.plan_wheel -> safety.check_destinations
    -> staging.stage_wheels -> safety.check_conflicts -> bytecode.Compiler
    -> uninstall.plan_removals (upgrades) -> transaction.Transaction.commit

Nothing visible changes until every wheel of the command is extracted, verified against its
RECORD, byte-compiled and staged next to the environment; then the transaction moves it all
in, or nothing.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from stalwart import safety, staging, uninstall
from stalwart.bytecode import Compiler, Source
from stalwart.environment import Environment
from stalwart.errors import IncompatibleWheelError, RequestError, UsageError
from stalwart.installed import Installed, find_installed
from stalwart.paths import PathKeys
from stalwart.plan import WheelPlan, plan_wheel
from stalwart.results import Action, CommandResult, DistResult
from stalwart.session import DEFAULT_LOCK_WAIT, locked_environment
from stalwart.staging import StagedWheel
from stalwart.transaction import Transaction
from stalwart.wheel.archive import DEFAULT_LIMITS, Limits
from stalwart.wheel.headers import parse_headers
from stalwart.wheel.record import hash_file
from stalwart.wheel.wheelfile import Wheel, check_compatible, open_wheel

__all__ = ["InstallOptions", "Progress", "install"]

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class InstallOptions:
    compile: bool = True
    verify_record: bool = True
    reinstall: bool = False
    allow_overwrite: bool = False
    break_system_packages: bool = False
    ignore_requires_python: bool = False
    requested: bool = True
    limits: Limits = DEFAULT_LIMITS
    lock_wait: float = DEFAULT_LOCK_WAIT


def install(
    wheel_paths: Sequence[str | os.PathLike[str]],
    env: Environment,
    options: InstallOptions = InstallOptions(),
    *,
    progress: Progress | None = None,
    notify: Callable[[str], None] | None = None,
) -> CommandResult:
    """Install *wheel_paths* into *env* as one transaction."""
    start = time.perf_counter()
    result = CommandResult()
    safety.check_externally_managed(env, override=options.break_system_packages)
    with ExitStack() as stack:
        wheels = _open_all(wheel_paths, env, options, stack)
        for wheel in wheels:
            result.notes.extend(f"{wheel.filename}: {n}" for n in wheel.notes)
        with locked_environment(
            env, wait=options.lock_wait, notify=notify, create=True
        ) as recovered:
            result.recovered = recovered
            _install_locked(wheels, env, options, result, progress)
    result.elapsed = time.perf_counter() - start
    return result


def _open_all(
    paths: Sequence[str | os.PathLike[str]],
    env: Environment,
    options: InstallOptions,
    stack: ExitStack,
) -> list[Wheel]:
    """Open and validate every wheel (closed when *stack* closes); one per distribution."""
    wheels: list[Wheel] = []
    seen: dict[str, str] = {}
    for path in paths:
        _check_regular(os.fspath(path))
        wheel = open_wheel(path, limits=options.limits, verify_record=options.verify_record)
        stack.callback(wheel.close)
        check_compatible(wheel, env.tags)
        if not options.ignore_requires_python:
            _check_requires_python(wheel, env.version)
        if wheel.name in seen:
            raise UsageError(
                f"{wheel.filename} and {seen[wheel.name]} are both {wheel.display_name}"
            )
        seen[wheel.name] = wheel.filename
        wheels.append(wheel)
    return wheels


def _install_locked(
    wheels: list[Wheel],
    env: Environment,
    options: InstallOptions,
    result: CommandResult,
    progress: Progress | None,
) -> None:
    installed = find_installed(env.lib_dirs)
    plans: list[WheelPlan] = []
    previous: dict[str, Installed] = {}
    for wheel in wheels:
        old = installed.get(wheel.name)
        if old is not None and not options.reinstall and _same_version(old, wheel):
            result.dists.append(DistResult(wheel.display_name, old.version, Action.UNCHANGED))
            continue
        if old is not None:
            previous[wheel.name] = old
        plans.append(
            plan_wheel(wheel, env, requested=options.requested, direct_url=_direct_url(wheel.path))
        )
    if not plans:
        return
    safety.check_destinations(plans, env)
    removals = uninstall.plan_removals(list(previous.values()), installed, env)
    keys = PathKeys()
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
    try:
        with Compiler(env.executable, n_sources) as compiler:
            staged = staging.stage_wheels(
                plans,
                txn,
                python=env.executable,
                windows=env.windows,
                verify_record=options.verify_record,
                tick=tick,
            )
            safety.check_conflicts(
                staged,
                installed,
                replacing=previous,
                removing={keys.key(f) for r in removals for f in r.files},
                allow_overwrite=options.allow_overwrite,
            )
            if progress is not None:
                progress("compiling", 0, 1)
            t1 = clock()
            _compile(compiler, staged, txn, result)
        for item in staged:
            staging.declare(item, txn)
        t2 = clock()
        uninstall.schedule(removals, txn)
        if progress is not None:
            progress("committing", 0, 1)
        txn.commit()
    except BaseException:
        txn.abort()
        raise
    result.notes.extend(txn.warnings)
    result.phases.update(stage=t1 - t0, compile=t2 - t1, commit=clock() - t2)
    for item in staged:
        dist = item.plan.wheel
        old = previous.get(dist.name)
        if old is None:
            action = Action.INSTALLED
        elif _same_version(old, dist):
            action = Action.REINSTALLED
        else:
            action = Action.UPGRADED
        result.dists.append(
            DistResult(
                dist.display_name,
                str(dist.version),
                action,
                previous=None if old is None else old.version,
                files=len(item.files),
            )
        )


def _compile(
    compiler: Compiler, staged: list[StagedWheel], txn: Transaction, result: CommandResult
) -> None:
    """Compile the staged ``.py`` files of every wheel and stage their bytecode.

    A path shipped by several wheels (an identical namespace ``__init__.py``) is compiled once
    and its bytecode listed in each of their RECORDs, as pip does.
    """
    owners: dict[str, list[StagedWheel]] = {}
    sources: list[Source] = []
    for wheel in staged:
        for item in wheel.files:
            if item.compile:
                if item.dest not in owners:
                    sources.append(Source(item.staged, item.dest, item.record.size or 0))
                owners.setdefault(item.dest, []).append(wheel)
    compiled, result.compile_errors = compiler.compile(sources)
    for pyc in compiled:
        for wheel in owners[pyc.source.final]:
            wheel.add_bytecode(txn, pyc.dest, pyc.data)


def _direct_url(path: str) -> dict[str, object]:
    """What pip records for a wheel installed from a local file (PEP 610)."""
    hexdigest = hash_file(path)[0].hex()
    return {
        "archive_info": {"hash": f"sha256={hexdigest}", "hashes": {"sha256": hexdigest}},
        "url": Path(os.path.abspath(path)).as_uri(),
    }


def _check_regular(path: str) -> None:
    """A wheel path must name a regular file: opening a FIFO would wait for ever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise RequestError(f"no such file: {path}") from None
    except OSError as exc:
        raise RequestError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise RequestError(f"{path} is not a regular file")


def _check_requires_python(wheel: Wheel, version: tuple[int, int, int]) -> None:
    """Refuse a wheel whose ``Requires-Python`` excludes the target (core metadata spec; pip
    and uv refuse too; ``--ignore-requires-python`` as in pip)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    text = wheel.read_text("METADATA") or ""
    wanted = parse_headers(text).get("Requires-Python")
    if not wanted:
        return
    try:
        spec = SpecifierSet(wanted)
    except InvalidSpecifier:
        return  # pip ignores an unparsable Requires-Python too
    target = ".".join(map(str, version))
    if not spec.contains(target, prereleases=True):
        raise IncompatibleWheelError(
            wheel.path,
            f"it requires Python {wanted}, the target is {target} "
            "(--ignore-requires-python installs it anyway)",
        )


def _same_version(old: Installed, wheel: Wheel) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(old.version) == wheel.version
    except InvalidVersion:
        return False
