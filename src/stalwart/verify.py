"""Checking installed files against their RECORD: changed, missing and extra files. Read-only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stalwart.installed import Installed, file_owners, find_installed, record_path_to_abs, require
from stalwart.paths import is_within
from stalwart.wheel.record import hash_file

if TYPE_CHECKING:
    from collections.abc import Container, Sequence

    from stalwart.environment import Environment

__all__ = ["VerifyReport", "verify_distribution", "verify_environment"]


@dataclass
class VerifyReport:
    name: str
    version: str
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra)


def verify_distribution(
    dist: Installed, owned_elsewhere: Container[str] | None = None
) -> VerifyReport:
    """Compare *dist*'s files with its RECORD.

    Extra files are files (other than bytecode) inside the directories RECORD mentions that no
    RECORD lists; *owned_elsewhere* holds normalized paths other distributions own.
    """
    report = VerifyReport(dist.display_name, dist.version)
    report.missing.extend(dist.record_problems)
    listed: set[str] = set()
    dirs: set[str] = set()
    for entry in dist.record:
        path = record_path_to_abs(dist.lib_dir, entry.path)
        listed.add(os.path.normcase(path))
        if not os.path.lexists(path):
            report.missing.append(path)
            continue
        if entry.hash_name is None or entry.digest is None:
            continue
        dirs.add(os.path.dirname(path))
        try:
            digest, size = hash_file(path, entry.hash_name)
        except (OSError, ValueError):
            report.changed.append(path)
            continue
        if digest != entry.digest or (entry.size is not None and size != entry.size):
            report.changed.append(path)
    others: Container[str] = owned_elsewhere if owned_elsewhere is not None else ()
    scripts_like = {os.path.normcase(d) for d in dirs if not _is_package_dir(d, dist)}
    for directory in sorted(dirs):
        if os.path.normcase(directory) in scripts_like:
            continue  # a shared directory such as bin/: other files there are not ours
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            key = os.path.normcase(path)
            if key in listed or key in others or name == "__pycache__" or name.endswith(".pyc"):
                continue
            if os.path.isfile(path):
                report.extra.append(path)
    return report


def _is_package_dir(directory: str, dist: Installed) -> bool:
    """True below the dist's lib dir (packages, dist-info), false for bin/, share/, ..."""
    lib = os.path.normcase(os.path.normpath(dist.lib_dir))
    d = os.path.normcase(os.path.normpath(directory))
    return d != lib and is_within(lib, d)


class _OwnedElsewhere:
    """``path in it``: some distribution other than *name* lists *path* in its RECORD."""

    def __init__(self, owners: dict[str, set[str]], name: str) -> None:
        self._owners = owners
        self._name = name

    def __contains__(self, path: object) -> bool:
        owners = self._owners.get(path) if isinstance(path, str) else None
        return bool(owners) and owners != {self._name}


def verify_environment(env: Environment, names: Sequence[str] = ()) -> list[VerifyReport]:
    """Verify the named distributions of *env* (all when *names* is empty)."""
    installed = find_installed(env.lib_dirs)
    wanted = require(installed, names) if names else [installed[n] for n in sorted(installed)]
    owners = {
        path: {dist.name for dist, _ in rows}
        for path, rows in file_owners(installed.values()).items()
    }
    return [verify_distribution(dist, _OwnedElsewhere(owners, dist.name)) for dist in wanted]
