"""Distributions already installed in an environment, read from their ``.dist-info``.

Pure: only reads. Used to find upgrades, file conflicts, and what to uninstall or verify.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import BinaryIO

from stalwart.errors import NotInstalledError
from stalwart.paths import PathKey, PathKeys, open_regular, read_regular
from stalwart.wheel.headers import Headers, parse_headers
from stalwart.wheel.record import RecordEntry, parse_record

_MAX_RECORD = 512 << 20  # bytes; far beyond any real RECORD, small enough not to exhaust memory
_MAX_METADATA = 64 << 20

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
            text = read_regular(path, limit=_MAX_RECORD).decode("utf-8")
        except FileNotFoundError:
            return [], [f"{path} is missing, so the files of the distribution are unknown"]
        except (OSError, ValueError) as exc:  # not a file, too big, not UTF-8
            return [], [f"{path} cannot be read: {exc}"]
        return parse_record(text, source=path, lenient=True)

    @cached_property
    def metadata(self) -> Headers:
        return parse_headers(self.read_text("METADATA") or "")

    def read_text(self, member: str) -> str | None:
        """A file of the ``.dist-info`` as text; None when it is missing or not readable text
        (a FIFO, a huge file, bytes that are not UTF-8: installed metadata is read leniently)."""
        try:
            data = read_regular(os.path.join(self.dist_info, member), limit=_MAX_METADATA)
            return data.decode("utf-8")
        except (OSError, ValueError):
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


def _header_block(f: BinaryIO) -> str:
    """Only the header lines (long descriptions follow the first empty line), at most
    :data:`_MAX_METADATA` bytes of them; raises UnicodeDecodeError for non-UTF-8 bytes."""
    lines = []
    size = 0
    for line in f:
        if not line.rstrip(b"\r\n"):
            break  # only an empty line ends the block: one of blanks continues a field
        size += len(line)
        if size > _MAX_METADATA:
            raise ValueError("metadata headers too large")
        lines.append(line)
    return b"".join(lines).decode("utf-8")


def _read_dist(lib_dir: str, dirname: str) -> Installed | None:
    from packaging.utils import canonicalize_name

    dist_info = os.path.join(lib_dir, dirname)
    metadata_path = os.path.join(dist_info, "METADATA")
    try:
        with open_regular(metadata_path) as f:
            meta = parse_headers(_header_block(f))
    except (OSError, ValueError):  # missing, a FIFO, not UTF-8, absurdly long
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
        except (FileNotFoundError, NotADirectoryError):
            continue  # a scheme directory not made yet; a PermissionError is the user's to see
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
