"""Installing wheels: open, validate, plan, stage, compile, check, then commit as one transaction.

Orchestration only; each step is another module's job::

    wheelcache (unpack + verify once; or wheel.open_wheel without the cache)
    -> plan.plan_wheel -> safety.check_destinations -> bytecode.Compiler (once per wheel and
    interpreter, kept in the cache) -> staging.stage_wheels (link from the cache)
    -> safety.check_conflicts -> uninstall.plan_removals (upgrades)
    -> transaction.Transaction.commit

Nothing visible changes until every wheel of the command is unpacked, verified against its
RECORD, byte-compiled and staged next to the environment; then the transaction moves it all
in, or nothing.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from stalwart import safety, staging, uninstall
from stalwart.bytecode import Compiler, Source
from stalwart.cache import CacheLayout
from stalwart.environment import Environment
from stalwart.errors import IncompatibleWheelError, RequestError, UsageError
from stalwart.installed import Installed, find_installed
from stalwart.paths import PathKeys
from stalwart.plan import WheelPlan, plan_wheel
from stalwart.results import Action, CommandResult, DistResult
from stalwart.session import DEFAULT_LOCK_WAIT, locked_environment
from stalwart.staging import LinkMode, StagedWheel
from stalwart.transaction import Transaction
from stalwart.wheel.archive import DEFAULT_LIMITS, Limits
from stalwart.wheel.headers import parse_headers
from stalwart.wheel.record import hash_file
from stalwart.wheel.wheelfile import Wheel, check_compatible, open_wheel

if TYPE_CHECKING:
    from packaging.version import Version

    from stalwart.wheelcache import CachedFile, CacheEntry, WheelCache

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
        return cls(absolute, requested, file_url(absolute))


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
    #: Unpack wheels (and keep their bytecode) in the user cache, and link files from there.
    cache: bool = True
    cache_dir: str | None = None  # default: stalwart.cache.cache_dir()
    link_mode: LinkMode = "auto"


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
    for source in sources:
        _check_regular(source.path)  # before the lock: a missing file needs no waiting
    with locked_environment(env, wait=options.lock_wait, notify=notify, create=True) as recovered:
        result.recovered = recovered
        install_locked(sources, env, options, result, progress)
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
    installed = find_installed(env.lib_dirs)
    with ExitStack() as stack:
        opened = _open_all(sources, env, options, installed, result, stack, progress)
        _install_opened(opened, env, options, installed, result, progress)


@dataclass(frozen=True)
class _Opened:
    wheel: Wheel
    source: WheelSource
    entry: CacheEntry | None  # its unpacked-wheel cache entry, when the cache is used


def _open_all(
    sources: Sequence[WheelSource],
    env: Environment,
    options: InstallOptions,
    installed: dict[str, Installed],
    result: CommandResult,
    stack: ExitStack,
    progress: Progress | None = None,
) -> list[_Opened]:
    """Open and validate every wheel that needs installing; one per distribution.

    A wheel whose name and version (from its filename) are installed already is not even
    opened (a no-op install costs a directory listing). The same file named twice is
    installed once. With the cache, a wheel is unpacked and verified once, and served from
    its cache entry ever after.
    """
    from stalwart.filedigests import FileDigests
    from stalwart.index.candidates import parse_wheel_name
    from stalwart.wheelcache import WheelCache, open_cached

    layout = CacheLayout(options.cache_dir)
    cache = WheelCache(layout) if options.cache else None
    digests = FileDigests(layout)
    opened: list[_Opened] = []
    seen: dict[str, str] = {}
    files: set[tuple[int, int]] = set()
    for given in sources:
        source = given
        ident = _check_regular(source.path)
        if ident in files:
            continue
        files.add(ident)
        try:
            name, version, _, _ = parse_wheel_name(os.path.basename(source.path))
        except ValueError:
            name = None  # open_wheel names the problem
        old = installed.get(name) if name is not None else None
        if old is not None and not options.reinstall and _same(old.version, version):
            result.dists.append(DistResult(old.display_name, old.version, Action.UNCHANGED))
            continue
        entry = None
        if cache is None:
            wheel = _open(source, options, stack)
        else:
            if source.sha256 is None:  # the cache key; also what direct_url.json records
                source = replace(source, sha256=digests.sha256(source.path))
            entry = _cached(cache, source, options, progress)
            wheel = open_cached(entry, source.path)
        check_compatible(wheel, env.tags)
        if not options.ignore_requires_python:
            _check_requires_python(wheel, env.version)
        if wheel.name in seen:
            raise UsageError(
                f"{wheel.filename} and {seen[wheel.name]} are both {wheel.display_name}"
            )
        seen[wheel.name] = wheel.filename
        result.notes.extend(f"{wheel.filename}: {n}" for n in wheel.notes)
        opened.append(_Opened(wheel, source, entry))
    return opened


def _open(source: WheelSource, options: InstallOptions, stack: ExitStack) -> Wheel:
    wheel = open_wheel(source.path, limits=options.limits, verify_record=options.verify_record)
    stack.callback(wheel.close)
    return wheel


def _cached(
    cache: WheelCache, source: WheelSource, options: InstallOptions, progress: Progress | None
) -> CacheEntry:
    """The wheel's cache entry: looked up by its sha256, checked, made if missing."""
    sha256 = source.sha256 or hash_file(source.path)[0].hex()
    entry = cache.lookup(sha256)
    if entry is not None and (not entry.intact() or (options.verify_record and not entry.verified)):
        cache.drop(entry)  # damaged (an edit through a hard link?) or never verified
        entry = None
    if entry is None:
        with ExitStack() as scope:
            wheel = _open(source, options, scope)
            what = f"unpacking {wheel.display_name}"  # a validated name: safe to print
            tick = None if progress is None else partial(progress, what)
            entry = cache.fill(wheel, sha256, verify_record=options.verify_record, tick=tick)
    return entry


def _install_opened(
    opened: list[_Opened],
    env: Environment,
    options: InstallOptions,
    installed: dict[str, Installed],
    result: CommandResult,
    progress: Progress | None,
) -> None:
    plans: list[WheelPlan] = []
    entries: list[CacheEntry | None] = []
    previous: dict[str, Installed] = {}
    for one in opened:
        wheel, source = one.wheel, one.source
        old = installed.get(wheel.name)
        if old is not None and not options.reinstall and _same_version(old, wheel):
            result.dists.append(DistResult(wheel.display_name, old.version, Action.UNCHANGED))
            continue
        if old is not None:
            previous[wheel.name] = old
        plans.append(
            plan_wheel(wheel, env, requested=source.requested, direct_url=_direct_url(source))
        )
        entries.append(one.entry)
    if not plans:
        return
    safety.check_destinations(plans, env)
    removals = uninstall.plan_removals(list(previous.values()), installed, env)
    keys = PathKeys()
    tick = _counter(progress, "staging", sum(len(p.files) for p in plans))
    clock = time.perf_counter
    t0 = clock()
    placer = staging.Placer(options.link_mode)
    txn = Transaction(env.state_dir)
    tag = env.interpreter.bytecode_tag
    cached_pyc: list[dict[str, CachedFile] | None] = [
        e.bytecode(tag) if e is not None and tag and options.compile else None for e in entries
    ]
    to_compile = [
        a
        for p, e, pyc in zip(plans, entries, cached_pyc, strict=True)
        if options.compile and (e is None or pyc is None)
        for a in p.files
        if a.compile
    ]
    try:
        with Compiler(env.executable, len(to_compile)) as compiler:
            if any(e is not None for e in entries) and options.compile and tag:
                compiled = _compile_into_cache(
                    compiler, plans, entries, cached_pyc, tag, result, progress
                )
                cached_pyc = compiled
            t_compiled = clock()
            staged = staging.stage_wheels(
                plans,
                txn,
                python=env.executable,
                windows=env.windows,
                verify_record=options.verify_record,
                tick=tick,
                entries=entries,
                placer=placer,
            )
            safety.check_conflicts(
                staged,
                installed,
                replacing=previous,
                removing={keys.key(f) for r in removals for f in r.files},
                allow_overwrite=options.allow_overwrite,
            )
            t1 = clock()
            if options.compile:
                _stage_bytecode(compiler, staged, entries, cached_pyc, env, txn, placer, result)
        for item in staged:
            staging.declare(item, txn)
        t2 = clock()
        uninstall.schedule(removals, txn)
        if progress is not None:
            progress("committing", 0, 0)  # one step, no count to show
        txn.commit()
    except BaseException:
        txn.abort()
        raise
    result.notes.extend(txn.warnings)
    result.phases.update(
        compile=(t_compiled - t0) + (t2 - t1), stage=t1 - t_compiled, commit=clock() - t2
    )
    result.placed = placer.summary()
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


def _counter(progress: Progress | None, phase: str, total: int) -> Callable[[int], None]:
    """A tick for work done in steps of n: adds them up and reports *phase* as done/total."""
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(phase, done, total)

    return tick


def _compile_into_cache(
    compiler: Compiler,
    plans: list[WheelPlan],
    entries: list[CacheEntry | None],
    cached: list[dict[str, CachedFile] | None],
    tag: str,
    result: CommandResult,
    progress: Progress | None,
) -> list[dict[str, CachedFile] | None]:
    """Compile, from the cache, the wheels whose bytecode for this interpreter is not cached
    yet, and keep it there: the next install of the same wheel for the same interpreter
    compiles nothing."""
    from stalwart.plan import Extract
    from stalwart.wheelcache import WheelCache

    sources: list[Source] = []
    owner: dict[str, tuple[int, str]] = {}  # cache source path -> (plan index, member)
    for index, (plan, entry, pyc) in enumerate(zip(plans, entries, cached, strict=True)):
        if entry is None or pyc is not None:
            continue
        for action in plan.files:
            if isinstance(action, Extract) and action.compile:
                path = entry.path(action.member)
                owner[path] = (index, action.member)
                sources.append(Source(path, action.dest, entry.files[action.member].size))
    if not sources:
        return cached
    compiled, errors = compiler.compile(sources, _counter(progress, "compiling", len(sources)))
    result.compile_errors.extend(errors)
    by_plan: dict[int, dict[str, bytes]] = {}
    for done_pyc in compiled:
        index, member = owner[done_pyc.source.staged]
        by_plan.setdefault(index, {})[member] = done_pyc.data
    store = WheelCache()
    updated = list(cached)
    for index, (entry, pyc) in enumerate(zip(entries, cached, strict=True)):
        if entry is not None and pyc is None:
            updated[index] = store.add_bytecode(entry, tag, by_plan.get(index, {}))
    return updated


def _stage_bytecode(
    compiler: Compiler,
    staged: list[StagedWheel],
    entries: list[CacheEntry | None],
    cached: list[dict[str, CachedFile] | None],
    env: Environment,
    txn: Transaction,
    placer: staging.Placer,
    result: CommandResult,
) -> None:
    """Stage every wheel's bytecode: linked from the cache, or compiled now (no cache)."""
    from stalwart.plan import Extract

    uncached = [w for w, e in zip(staged, entries, strict=True) if e is None]
    if uncached:
        _compile(compiler, uncached, txn, result)
    tag = env.interpreter.cache_tag
    # A path several wheels ship (an identical namespace __init__.py) is installed once, from
    # the last of them (the transaction's last declaration wins): its bytecode must be that
    # wheel's too, since a timestamp .pyc records its own source's mtime.
    chosen: dict[str, tuple[str, CachedFile]] = {}
    wanted: list[tuple[StagedWheel, str, str]] = []
    for wheel, entry, pyc in zip(staged, entries, cached, strict=True):
        if entry is None or pyc is None:
            continue
        base = entry.bytecode_dir(env.interpreter.bytecode_tag)
        for action in wheel.plan.files:
            if not (isinstance(action, Extract) and action.compile) or action.member not in pyc:
                continue
            directory, name = os.path.split(action.dest)
            dest = os.path.join(directory, "__pycache__", f"{name[:-3]}.{tag}.pyc")
            src = os.path.join(base, *action.member.split("/")) + ".pyc"
            chosen[dest] = (src, pyc[action.member])
            wanted.append((wheel, dest, action.dest))
    for wheel, dest, _ in wanted:
        src, cached_file = chosen[dest]
        wheel.add_cached_bytecode(txn, dest, src, cached_file, placer)


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


def file_url(path: str) -> str:
    """``file://`` URL of an absolute path, as ``pathlib.Path.as_uri`` makes it (pathlib costs
    ~5 ms of start-up for this one call)."""
    from urllib.parse import quote

    if os.name == "nt":
        drive, rest = os.path.splitdrive(path)
        return "file:///" + drive + quote(rest.replace(os.sep, "/"))
    return "file://" + quote(path)


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
    return _same(old.version, wheel.version)


def _same(installed: str, version: Version) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(installed) == version
    except InvalidVersion:
        return False
