"""Uninstalling: what removing a distribution takes away (pure planning), and doing it.

The removal set is RECORD's files, the ``__pycache__`` entries of its ``.py`` files, and the
rest of its ``.dist-info``. Any RECORD path that resolves outside the environment is refused:
a hostile RECORD must not turn an uninstall into ``rm`` of arbitrary files. :func:`uninstall`
removes the named distributions as one transaction; upgrades use :func:`plan_removal` too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass

from stalwart.environment import Environment
from stalwart.errors import UninstallError
from stalwart.installed import Installed, find_installed, record_path_to_abs, require
from stalwart.paths import PathKey, PathKeys, file_id, is_within, walk
from stalwart.results import Action, CommandResult, DistResult
from stalwart.session import DEFAULT_LOCK_WAIT, locked_environment
from stalwart.transaction import Transaction

__all__ = [
    "Removal",
    "plan_removal",
    "plan_removals",
    "schedule",
    "files_owned_by",
    "interpreter_paths",
    "uninstall",
]


@dataclass(frozen=True)
class Removal:
    """Files to delete and directories to drop if they end up empty."""

    dist: Installed
    files: tuple[str, ...]
    prune: tuple[str, ...]


def plan_removal(
    dist: Installed,
    roots: list[str],
    stop_dirs: list[str],
    keep: Container[PathKey] = frozenset(),
    protected: Container[tuple[int, int]] = frozenset(),
    *,
    state_dir: str | None = None,
) -> Removal:
    """Plan the removal of *dist*; every path must lie in one of *roots*, by identity.

    *stop_dirs* (site-packages, scripts, ...) are never pruned themselves. *keep* holds the
    identities (:class:`~stalwart.paths.PathKeys`) of paths that other installed distributions
    still list in their RECORD (a shared namespace ``__init__.py``): pip deletes those,
    breaking the other distribution; we keep them. *protected* holds the ``(st_dev, st_ino)``
    of the interpreter(s): a RECORD naming one makes the whole removal refused, as does one
    naming anything in stalwart's *state_dir*.
    """
    keys = PathKeys()
    # Without a complete RECORD the distribution's files are unknown: removing only what is
    # listed would orphan the rest (pip refuses too).
    problems: list[str] = list(dist.record_problems)
    # The .dist-info itself is walked below: it must not lead out of the environment either.
    if not any(keys.within(root, os.path.realpath(dist.dist_info)) for root in roots):
        problems.append(f"{dist.dist_info} resolves outside the environment")
    files: dict[str, None] = {}
    seen: set[PathKey] = set()
    listed_dirs: dict[str, None] = {}
    for entry in dist.record:
        path = record_path_to_abs(dist.lib_dir, entry.path)
        # No directory on the way may lead outside the environment; the file itself may be a
        # symlink, which is removed, never followed.
        if not any(keys.within(root, path) for root in roots):
            problems.append(f"RECORD entry {entry.path!r} resolves outside the environment")
            continue
        if state_dir is not None and keys.within(state_dir, path):
            problems.append(f"RECORD entry {entry.path!r} is in stalwart's state directory")
            continue
        if protected and file_id(path) in protected:
            problems.append(f"RECORD entry {entry.path!r} is the environment's interpreter")
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            # RECORD lists files, though some installers copy "pkg/" rows too. Removing a listed
            # directory would take everything in it (a hostile '../../../bin' would delete the
            # interpreter), so it is only dropped if it ends up empty, like any parent.
            listed_dirs[path] = None
            continue
        ident = keys.key(path)
        if ident in keep or ident in seen:
            continue  # another distribution's file, or this one under a second spelling
        seen.add(ident)
        files[path] = None
        if path.endswith(".py"):
            for pyc in _pycache_entries(path):
                files[pyc] = None
    if problems:
        raise UninstallError(
            problems, subject=f"refusing to uninstall {dist.display_name} {dist.version}"
        )
    info_dirs: list[str] = []
    for dirpath, _dirnames, filenames in walk(dist.dist_info):
        info_dirs.append(dirpath)
        for name in filenames:
            files[os.path.join(dirpath, name)] = None
    stops = {os.path.normpath(d) for d in stop_dirs}
    prune: dict[str, None] = {}
    for start in [*(os.path.dirname(p) for p in files), *listed_dirs]:
        parent = start
        while parent not in stops and parent not in prune and parent != os.path.dirname(parent):
            if not any(is_within(r, parent) for r in roots):
                break
            prune[parent] = None
            parent = os.path.dirname(parent)
    prune.update(dict.fromkeys(info_dirs))
    ordered = sorted(prune, key=lambda p: (-p.count(os.sep), p))
    return Removal(dist, tuple(files), tuple(ordered))


def interpreter_paths(*executables: str) -> frozenset[tuple[int, int]]:
    """``(st_dev, st_ino)`` of *executables* (links followed), for *protected*: a hard link
    or another spelling of the interpreter is still the interpreter."""
    return frozenset(i for i in map(file_id, executables) if i is not None)


def files_owned_by(dists: Iterable[Installed], keys: PathKeys | None = None) -> set[PathKey]:
    """Identities of the paths listed in the RECORDs of *dists*."""
    keys = keys or PathKeys()
    return {keys.key(p) for d in dists for p in d.files()}


def _pycache_entries(py_path: str) -> list[str]:
    """Bytecode of *py_path* for any interpreter: ``__pycache__/<stem>.*.pyc``."""
    directory, name = os.path.split(py_path)
    cache = os.path.join(directory, "__pycache__")
    stem = name[:-3] + "."
    try:
        names = os.listdir(cache)
    except OSError:
        return []
    return [os.path.join(cache, n) for n in names if n.startswith(stem) and n.endswith(".pyc")]


def plan_removals(
    leaving: Sequence[Installed], installed: dict[str, Installed], env: Environment
) -> list[Removal]:
    """Removals of *leaving*, keeping files the distributions that stay still list.

    A distribution that stays only counts as an owner if it is real: one whose ``.dist-info``
    is itself a file of a leaving distribution (a wheel that shipped a second dist-info
    claiming its own files) cannot make uninstall keep them.
    """
    if not leaving:
        return []  # nothing leaves: no other distribution's RECORD needs reading
    keys = PathKeys()
    names = {d.name for d in leaving}
    leaving_files = files_owned_by(leaving, keys)
    staying = [
        d
        for d in installed.values()
        if d.name not in names
        and keys.key(os.path.join(d.dist_info, "RECORD")) not in leaving_files
    ]
    keep = files_owned_by(staying, keys)
    protected = interpreter_paths(env.executable, sys.executable)
    return [
        plan_removal(d, env.roots, env.stop_dirs, keep, protected, state_dir=env.state_dir)
        for d in leaving
    ]


def schedule(removals: Sequence[Removal], txn: Transaction) -> None:
    """Declare *removals* to *txn* (paths it also installs are left to the install)."""
    for removal in removals:
        for path in removal.files:
            txn.remove(path)
        for directory in removal.prune:
            txn.prune_if_empty(directory)


def uninstall(
    names: Sequence[str],
    env: Environment,
    *,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    notify: Callable[[str], None] | None = None,
    missing_ok: bool = False,
) -> CommandResult:
    """Remove the named distributions as one transaction.

    A name that is not installed raises :class:`NotInstalledError`, or with *missing_ok* is
    skipped with a note (pip and uv go on too).
    """
    from packaging.utils import canonicalize_name

    start = time.perf_counter()
    result = CommandResult()
    with locked_environment(env, wait=lock_wait, notify=notify) as recovered:
        result.recovered = recovered
        installed = find_installed(env.lib_dirs)
        if missing_ok:
            absent = [n for n in names if canonicalize_name(n) not in installed]
            result.notes.extend(f"skipping {n}: it is not installed" for n in absent)
            names = [n for n in names if n not in absent]
        if not names:
            result.elapsed = time.perf_counter() - start
            return result
        removals = plan_removals(require(installed, names), installed, env)
        txn = Transaction(env.state_dir)
        try:
            schedule(removals, txn)
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        result.notes.extend(txn.warnings)
    for removal in removals:
        dist = removal.dist
        result.dists.append(
            DistResult(
                dist.display_name, dist.version, Action.UNINSTALLED, files=len(removal.files)
            )
        )
    result.elapsed = time.perf_counter() - start
    return result
