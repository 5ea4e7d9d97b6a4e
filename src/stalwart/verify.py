"""Checking installed files against their RECORD: changed, missing and extra files. Read-only."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stalwart.hashnames import CHECKABLE
from stalwart.installed import Installed, file_owners, find_installed, record_path_to_abs, require
from stalwart.paths import PathKey, PathKeys, is_within, open_regular
from stalwart.session import DEFAULT_LOCK_WAIT, locked_environment
from stalwart.wheel.record import UNKNOWN_HASH

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Sequence

    from stalwart.environment import Environment
    from stalwart.transaction import RecoveryReport

__all__ = ["VerifyReport", "verify_distribution", "verify_environment", "verify_recovered"]


@dataclass
class VerifyReport:
    name: str
    version: str
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    #: Files whose RECORD hash cannot be checked (an unknown or variable-length hash name):
    #: told, but not counted as differences.
    unchecked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra)


#: Hashes a RECORD row can be checked with: fixed-length ones hashlib always has. (shake_*
#: need a length; md5 and sha1 are weak but still say whether a file changed.)
CHECKABLE_HASHES = CHECKABLE


def verify_distribution(
    dist: Installed, owned_elsewhere: Container[PathKey] | None = None
) -> VerifyReport:
    """Compare *dist*'s files with its RECORD.

    Extra files are files (other than bytecode) inside the directories RECORD mentions that no
    RECORD lists; *owned_elsewhere* holds the identities of paths other distributions own.
    Only regular files are opened: a FIFO where a file should be is "changed", not a hang.
    """
    keys = PathKeys()
    report = VerifyReport(dist.display_name, dist.version)
    report.missing.extend(dist.record_problems)
    listed: set[PathKey] = set()
    dirs: set[str] = set()
    for entry in dist.record:
        path = record_path_to_abs(dist.lib_dir, entry.path)
        listed.add(keys.key(path))
        if not os.path.lexists(path):
            report.missing.append(path)
            continue
        if entry.hash_name is None:
            continue  # RECORD itself, INSTALLER written by another tool...: no hash to check
        dirs.add(os.path.dirname(path))
        if entry.hash_name == UNKNOWN_HASH or entry.digest is None:
            report.unchecked.append(f"{path} (RECORD's hash field is unreadable)")
            continue
        if entry.hash_name not in CHECKABLE_HASHES:
            report.unchecked.append(f"{path} (RECORD uses the hash {entry.hash_name!r})")
            continue
        try:
            digest, size = _digest(path, entry.hash_name)
        except (OSError, ValueError):
            report.changed.append(path)
            continue
        if digest != entry.digest or (entry.size is not None and size != entry.size):
            report.changed.append(path)
    others: Container[PathKey] = owned_elsewhere if owned_elsewhere is not None else ()
    for directory in sorted(d for d in dirs if _is_package_dir(d, dist)):
        # Shared directories such as bin/ are skipped: other files there are not ours.
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if name == "__pycache__" or name.endswith(".pyc"):
                continue
            ident = keys.key(path)
            if ident in listed or ident in others:
                continue
            if os.path.isfile(path):
                report.extra.append(path)
    return report


def _digest(path: str, hash_name: str) -> tuple[bytes, int]:
    digest = hashlib.new(hash_name)
    size = 0
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size


def _is_package_dir(directory: str, dist: Installed) -> bool:
    """True below the dist's lib dir (packages, dist-info), false for bin/, share/, ..."""
    lib = os.path.normcase(os.path.normpath(dist.lib_dir))
    d = os.path.normcase(os.path.normpath(directory))
    return d != lib and is_within(lib, d)


class _OwnedElsewhere:
    """``key in it``: some distribution other than *name* lists the path in its RECORD."""

    def __init__(self, owners: dict[PathKey, set[str]], name: str) -> None:
        self._owners = owners
        self._name = name

    def __contains__(self, key: object) -> bool:
        owners = self._owners.get(key) if isinstance(key, tuple) else None
        return bool(owners) and owners != {self._name}


def verify_environment(env: Environment, names: Sequence[str] = ()) -> list[VerifyReport]:
    """Verify the named distributions of *env* (all when *names* is empty)."""
    installed = find_installed(env.lib_dirs)
    wanted = require(installed, names) if names else [installed[n] for n in sorted(installed)]
    rows = file_owners(installed.values(), PathKeys())
    owners = {ident: {dist.name for dist, _ in found} for ident, found in rows.items()}
    return [verify_distribution(dist, _OwnedElsewhere(owners, dist.name)) for dist in wanted]


def verify_recovered(
    env: Environment,
    names: Sequence[str] = (),
    *,
    wait: float = DEFAULT_LOCK_WAIT,
    notify: Callable[[str], None] | None = None,
) -> tuple[list[RecoveryReport], list[VerifyReport]]:
    """Verify *env* holding its lock, after finishing whatever a crashed command left.

    A pending transaction means files are half moved: verifying then would report a broken
    environment as fine (or a fine one as broken). So the lock is taken and recovery runs
    first, as every changing command does; what it did is returned with the reports.
    """
    with locked_environment(env, wait=wait, notify=notify) as recovered:
        return recovered, verify_environment(env, names)
