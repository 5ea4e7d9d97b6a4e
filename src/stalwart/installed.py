"""Distributions already installed in an environment, read from their ``.dist-info``.

Pure: only reads. Used to find upgrades, file conflicts, and what to uninstall or verify.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TextIO

from stalwart.errors import NotInstalledError
from stalwart.paths import PathKey, PathKeys
from stalwart.wheel.headers import Headers, parse_headers
from stalwart.wheel.record import RecordEntry, parse_record

__all__ = ["Installed", "find_installed", "require", "file_owners", "record_path_to_abs"]


@dataclass(frozen=True)
class Installed:
    """One installed distribution."""

    name: str  # canonical (normalized) name
    display_name: str
    version: str
    dist_info: str  # absolute path of the .dist-info directory
    lib_dir: str  # the directory RECORD paths are relative to

    @property
    def record(self) -> list[RecordEntry]:
        """RECORD's rows; empty when it is missing or unreadable (see :attr:`record_problems`)."""
        return self._record[0]

    @property
    def record_problems(self) -> list[str]:
        """Why RECORD cannot be trusted in full: missing, not UTF-8, malformed rows."""
        return self._record[1]

    @cached_property
    def _record(self) -> tuple[list[RecordEntry], list[str]]:
        path = os.path.join(self.dist_info, "RECORD")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return [], [f"{path} is missing, so the files of the distribution are unknown"]
        except (OSError, UnicodeDecodeError) as exc:
            return [], [f"{path} cannot be read: {exc}"]
        return parse_record(text, source=path, lenient=True)

    @cached_property
    def metadata(self) -> Headers:
        try:
            with open(os.path.join(self.dist_info, "METADATA"), encoding="utf-8") as f:
                return parse_headers(f.read())
        except (OSError, UnicodeDecodeError):
            return parse_headers("")

    def read_text(self, member: str) -> str | None:
        try:
            with open(os.path.join(self.dist_info, member), encoding="utf-8") as f:
                return f.read()
        except OSError:
            return None

    @property
    def installer(self) -> str:
        return (self.read_text("INSTALLER") or "").strip()

    @property
    def requested(self) -> bool:
        return os.path.exists(os.path.join(self.dist_info, "REQUESTED"))

    def files(self) -> list[str]:
        """Absolute paths RECORD lists (normalized, not resolved)."""
        return [record_path_to_abs(self.lib_dir, e.path) for e in self.record]


def record_path_to_abs(lib_dir: str, path: str) -> str:
    """Turn a RECORD path (relative to *lib_dir*, or absolute) into a normalized absolute one."""
    native = path.replace("/", os.sep)
    return os.path.normpath(native if os.path.isabs(native) else os.path.join(lib_dir, native))


def _header_block(f: TextIO) -> str:
    """Only the header lines: long descriptions follow the first empty line."""
    lines = []
    for line in f:
        if not line.strip():
            break
        lines.append(line)
    return "".join(lines)


def _read_dist(lib_dir: str, dirname: str) -> Installed | None:
    from packaging.utils import canonicalize_name

    dist_info = os.path.join(lib_dir, dirname)
    metadata_path = os.path.join(dist_info, "METADATA")
    try:
        with open(metadata_path, encoding="utf-8") as f:
            meta = parse_headers(_header_block(f))
    except (OSError, UnicodeDecodeError):
        return None
    name, version = meta.get("Name"), meta.get("Version")
    if not name or not version:
        return None
    return Installed(canonicalize_name(name), name, version, dist_info, lib_dir)


def find_installed(lib_dirs: list[str]) -> dict[str, Installed]:
    """Every distribution with a ``.dist-info`` in *lib_dirs*, by canonical name."""
    found: dict[str, Installed] = {}
    for lib_dir in dict.fromkeys(os.path.normpath(d) for d in lib_dirs):
        try:
            names = sorted(os.listdir(lib_dir))
        except FileNotFoundError:
            continue
        for dirname in names:
            if not dirname.endswith(".dist-info"):
                continue
            dist = _read_dist(lib_dir, dirname)
            if dist is not None and dist.name not in found:
                found[dist.name] = dist
    return found


def require(installed: dict[str, Installed], names: Sequence[str]) -> list[Installed]:
    """The distributions *names* asks for, in order and once each; raises
    :class:`NotInstalledError` naming every one that is not installed."""
    from packaging.utils import canonicalize_name

    missing = [n for n in names if canonicalize_name(n) not in installed]
    if missing:
        raise NotInstalledError(missing)
    wanted = dict.fromkeys(canonicalize_name(n) for n in names)
    return [installed[name] for name in wanted]


def file_owners(
    dists: Iterable[Installed], keys: PathKeys
) -> dict[PathKey, list[tuple[Installed, RecordEntry]]]:
    """Which distributions list each file in their RECORD (with the row), by path identity:
    ``lib64/...`` and ``lib/...`` rows name one file."""
    owners: dict[PathKey, list[tuple[Installed, RecordEntry]]] = {}
    for dist in dists:
        for entry in dist.record:
            ident = keys.key(record_path_to_abs(dist.lib_dir, entry.path))
            owners.setdefault(ident, []).append((dist, entry))
    return owners
