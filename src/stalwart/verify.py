"""Checking installed files against their RECORD: changed, missing and extra files. Read-only."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from stalwart._paths import is_within
from stalwart.installed import Installed, record_path_to_abs

__all__ = ["VerifyReport", "verify_distribution"]


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


def _digest(path: str, name: str) -> tuple[bytes, int]:
    h = hashlib.new(name)
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.digest(), size


def verify_distribution(dist: Installed, owned_elsewhere: set[str] | None = None) -> VerifyReport:
    """Compare *dist*'s files with its RECORD.

    Extra files are files (other than bytecode) inside the directories RECORD mentions that no
    RECORD lists; *owned_elsewhere* holds normalized paths other distributions own.
    """
    report = VerifyReport(dist.display_name, dist.version)
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
            digest, size = _digest(path, entry.hash_name)
        except (OSError, ValueError):
            report.changed.append(path)
            continue
        if digest != entry.digest or (entry.size is not None and size != entry.size):
            report.changed.append(path)
    others = owned_elsewhere or set()
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
