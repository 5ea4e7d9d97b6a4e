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

__all__ = ["InstallOptions", "Progress", "WheelSource", "install", "install_locked"]

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class WheelSource:
    """A wheel file to install, and what to record about where it came from.

    *direct_url* is the URL ``direct_url.json`` records (PEP 610: a wheel the user named by
    path or URL); None for one an index provided, as pip writes none then. *sha256* (hex),
    when already known from a download, saves reading the file again.
    """

    path: str
    requested: bool = True
    direct_url: str | None = None
    sha256: str | None = None

    @classmethod
    def local(cls, path: str | os.PathLike[str], *, requested: bool = True) -> WheelSource:
        """A wheel file the user named: recorded with its ``file://`` URL, as pip does."""
        absolute = os.path.abspath(os.fspath(path))
        return cls(absolute, requested, Path(absolute).as_uri())


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
    wheels: Sequence[str | os.PathLike[str] | WheelSource],
    env: Environment,
    options: InstallOptions = InstallOptions(),
    *,
    progress: Progress | None = None,
    notify: Callable[[str], None] | None = None,
) -> CommandResult:
    """Install *wheels* (paths, or :class:`WheelSource` s) into *env* as one transaction."""
    start = time.perf_counter()
    result = CommandResult()
    safety.check_externally_managed(env, override=options.break_system_packages)
    sources = [
        w if isinstance(w, WheelSource) else WheelSource.local(w, requested=options.requested)
        for w in wheels
    ]
    with ExitStack() as stack:
        opened = _open_all(sources, env, options, stack)  # before the lock: nothing to wait for
        with locked_environment(
            env, wait=options.lock_wait, notify=notify, create=True
        ) as recovered:
            result.recovered = recovered
            _install_opened(opened, env, options, result, progress)
    result.elapsed = time.perf_counter() - start
    return result


def install_locked(
    sources: Sequence[WheelSource],
    env: Environment,
    options: InstallOptions,
    result: CommandResult,
    progress: Progress | None = None,
) -> None:
    """:func:`install`'s work for a caller that already holds the environment lock (an
    install from an index resolves and downloads under it), adding to *result*."""
    with ExitStack() as stack:
        _install_opened(_open_all(sources, env, options, stack), env, options, result, progress)


def _open_all(
    sources: Sequence[WheelSource],
    env: Environment,
    options: InstallOptions,
    stack: ExitStack,
) -> list[tuple[Wheel, WheelSource]]:
    """Open and validate every wheel (closed when *stack* closes); one per distribution.

    The same file named twice (by any spelling) is installed once.
    """
    opened: list[tuple[Wheel, WheelSource]] = []
    seen: dict[str, str] = {}
    files: set[tuple[int, int]] = set()
    for source in sources:
        ident = _check_regular(source.path)
        if ident in files:
            continue
        files.add(ident)
        wheel = open_wheel(source.path, limits=options.limits, verify_record=options.verify_record)
        stack.callback(wheel.close)
        check_compatible(wheel, env.tags)
        if not options.ignore_requires_python:
            _check_requires_python(wheel, env.version)
        if wheel.name in seen:
            raise UsageError(
                f"{wheel.filename} and {seen[wheel.name]} are both {wheel.display_name}"
            )
        seen[wheel.name] = wheel.filename
        opened.append((wheel, source))
    return opened


def _install_opened(
    opened: list[tuple[Wheel, WheelSource]],
    env: Environment,
    options: InstallOptions,
    result: CommandResult,
    progress: Progress | None,
) -> None:
    for wheel, _ in opened:
        result.notes.extend(f"{wheel.filename}: {n}" for n in wheel.notes)
    installed = find_installed(env.lib_dirs)
    plans: list[WheelPlan] = []
    previous: dict[str, Installed] = {}
    for wheel, source in opened:
        old = installed.get(wheel.name)
        if old is not None and not options.reinstall and _same_version(old, wheel):
            result.dists.append(DistResult(wheel.display_name, old.version, Action.UNCHANGED))
            continue
        if old is not None:
            previous[wheel.name] = old
        plans.append(
            plan_wheel(wheel, env, requested=source.requested, direct_url=_direct_url(source))
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


def _direct_url(source: WheelSource) -> dict[str, object] | None:
    """What pip records for a wheel installed from a file or URL the user named (PEP 610);
    nothing for one an index provided."""
    if source.direct_url is None:
        return None
    hexdigest = source.sha256 or hash_file(source.path)[0].hex()
    return {
        "archive_info": {"hash": f"sha256={hexdigest}", "hashes": {"sha256": hexdigest}},
        "url": source.direct_url,
    }


def _check_regular(path: str) -> tuple[int, int]:
    """A wheel path must name a regular file (opening a FIFO would wait for ever); returns
    its identity."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise RequestError(f"no such file: {path}") from None
    except OSError as exc:
        raise RequestError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise RequestError(f"{path} is not a regular file")
    return st.st_dev, st.st_ino


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
