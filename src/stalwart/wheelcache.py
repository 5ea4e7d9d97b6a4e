"""A cache of unpacked, validated wheels and their bytecode, content-addressed by sha256.

An entry is ``<cache>/unpacked/<wheel sha256>/``: the wheel's files under ``files/`` exactly
as the archive names them, and ``entry.json``, written last, listing every file with its size,
mtime and sha256 and what planning needs (the dist-info, Root-Is-Purelib, modes). A wheel is
validated once, when its entry is made (archive checks, every RECORD hash); later installs
read nothing of the archive and trust the entry only while its marker holds: every file it
lists still has the size and mtime the marker recorded. An edit made through a hard link in an
environment changes the mtime, so the entry is then dropped and made again (``stalwart cache
verify`` re-hashes everything).

Bytecode lives beside the files, per target interpreter (``pyc/<magic>-<optimization>/``, with
its own marker): compiled once per wheel and interpreter, then linked like any other file.
Timestamp-based ``.pyc`` files stay valid because an installed source keeps the cache file's
mtime and size: a hard link is the same file, and copies are given the cache file's times.

Entries are made in a temporary directory and renamed into place, so several processes can
fill the cache at once: the first rename wins and the others drop their copy. Every write goes
through :mod:`stalwart.fs`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stalwart import fs
from stalwart.cache import CacheLayout
from stalwart.cpus import usable_cpus
from stalwart.errors import InvalidWheelError
from stalwart.paths import read_regular, walk
from stalwart.wheel.archive import DEFAULT_LIMITS, Entry
from stalwart.wheel.record import ACCEPTED_HASHES, RecordEntry

if TYPE_CHECKING:
    from stalwart.wheel.wheelfile import Wheel

__all__ = ["CachedFile", "CacheEntry", "CachedArchive", "WheelCache", "FORMAT", "size_batches"]

FORMAT = 2
MARKER = "entry.json"
FILES = "files"
_WORKERS = usable_cpus()
_PARALLEL_MIN_FILES = 32


@dataclass(frozen=True, slots=True)
class CachedFile:
    """One file of an entry: where it is and what it must still be."""

    member: str
    size: int
    sha256: bytes
    mode: int  # 0o644 or 0o755
    mtime_ns: int


@dataclass(frozen=True)
class CacheEntry:
    """An unpacked, validated wheel in the cache."""

    root: str
    sha256: str
    info: Mapping[str, Any]  # the wheel's metadata as planning needs it
    files: Mapping[str, CachedFile]

    def path(self, member: str) -> str:
        # Called for every file of every install: concatenation, not os.path.join. Members
        # are validated archive names ('/'-separated, no '..', no backslash).
        return f"{self.root}{os.sep}{FILES}{os.sep}{member.replace('/', os.sep)}"

    @property
    def verified(self) -> bool:
        """Whether every file was checked against the wheel's RECORD when it was unpacked."""
        return bool(self.info.get("verified", False))

    def intact(self, members: Iterator[str] | None = None) -> bool:
        """The integrity marker holds: every listed file has its recorded size and mtime."""
        for member in members if members is not None else iter(self.files):
            cached = self.files[member]
            try:
                st = os.lstat(self.path(member))
            except OSError:
                return False
            if (
                not stat.S_ISREG(st.st_mode)
                or st.st_size != cached.size
                or st.st_mtime_ns != cached.mtime_ns
            ):
                return False
        return True

    def bytecode_dir(self, tag: str) -> str:
        return os.path.join(self.root, "pyc", tag)

    def bytecode(self, tag: str) -> dict[str, CachedFile] | None:
        """The compiled files for interpreter *tag* (by source member), or None if not made."""
        try:
            data = json.loads(read_regular(os.path.join(self.root, "pyc", f"{tag}.json"), 1 << 26))
            return {
                row[0]: CachedFile(row[0], row[1], bytes.fromhex(row[2]), 0o644, row[3])
                for row in data["files"]
            }
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None


class CachedArchive:
    """The reading side of :class:`~stalwart.wheel.archive.WheelArchive`, served from an entry:
    planning and staging work the same on a cached wheel as on an open one."""

    def __init__(self, entry: CacheEntry) -> None:
        self.entry = entry
        self.limits = DEFAULT_LIMITS
        modes = entry.info["modes"]
        self.entries: tuple[Entry, ...] = tuple(
            Entry(m, f.size, f.size, 0, modes.get(m), False) for m, f in entry.files.items()
        )
        self._by_name = {e.name: e for e in self.entries}

    def get(self, name: str) -> Entry | None:
        return self._by_name.get(name)

    def read(self, name: str) -> bytes:
        return read_regular(self.entry.path(name))

    def copy_to(
        self, entry: Entry, write: Callable[[bytes], object], hash_name: str = "sha256"
    ) -> tuple[bytes, int]:
        digest = hashlib.new(hash_name)
        size = 0
        with open(self.entry.path(entry.name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
                write(chunk)
                size += len(chunk)
        return digest.digest(), size

    def close(self) -> None:
        pass


def size_batches(entries: list[Entry], count: int) -> list[list[Entry]]:
    """*entries* cut into about *count* runs of about equal compressed size, in order."""
    share = max(1, sum(e.compressed_size for e in entries) // count)
    batches: list[list[Entry]] = [[]]
    size = 0
    for entry in entries:
        if size >= share and batches[-1]:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += entry.compressed_size
    return batches


class WheelCache:
    """Unpacked wheels below ``<cache>/unpacked``."""

    def __init__(self, layout: CacheLayout | None = None) -> None:
        self.layout = layout or CacheLayout()
        self.root = os.path.join(self.layout.root, "unpacked")

    def lookup(self, sha256: str) -> CacheEntry | None:
        """The entry for the wheel with this sha256, if it is there and its marker holds."""
        root = os.path.join(self.root, sha256)
        try:
            data = json.loads(read_regular(os.path.join(root, MARKER), 1 << 28))
            if data.get("format") != FORMAT or data.get("sha256") != sha256:
                return None
            files = {
                row[0]: CachedFile(row[0], row[1], bytes.fromhex(row[2]), row[3], row[4])
                for row in data["files"]
            }
            return CacheEntry(root, sha256, _checked_info(data["info"]), files)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def fill(
        self,
        wheel: Wheel,
        sha256: str,
        *,
        verify_record: bool = True,
        tick: Callable[[int, int], None] | None = None,
    ) -> CacheEntry:
        """Unpack the validated *wheel* into a new entry, checking every file against its
        RECORD hash as it is written; returns the entry (another process's, if it won)."""
        fs.makedirs(self.root)
        tmp = fs.temp_name(os.path.join(self.root, f".{sha256}"))
        files_dir = os.path.join(tmp, FILES)
        fs.makedirs(files_dir)
        try:
            rows = self._extract(wheel, files_dir, verify_record, tick)
            marker = {
                "format": FORMAT,
                "sha256": sha256,
                "info": {**_info(wheel), "verified": verify_record},
                "files": [[r.member, r.size, r.sha256.hex(), r.mode, r.mtime_ns] for r in rows],
            }
            fs.write_atomic(
                os.path.join(tmp, MARKER), json.dumps(marker).encode("utf-8"), durable=False
            )
            final = os.path.join(self.root, sha256)
            try:
                fs.rename(tmp, final)
            except FileExistsError:
                self.drop_path(tmp)  # another process filled it first: identical content
            else:
                tmp = ""
        except BaseException:
            if tmp:
                self.drop_path(tmp)
            raise
        entry = self.lookup(sha256)
        if entry is None:
            raise InvalidWheelError(wheel.path, "the unpacked-wheel cache entry cannot be read")
        return entry

    def _extract(
        self,
        wheel: Wheel,
        files_dir: str,
        verify: bool,
        tick: Callable[[int, int], None] | None = None,
    ) -> list[CachedFile]:
        """Every file of *wheel* into *files_dir*, in threads (zlib and hashlib release the
        GIL); *tick* (files done, total) is called from this thread."""
        entries = [e for e in wheel.archive.entries if not e.is_dir]
        dirs = sorted({os.path.dirname(e.name) for e in entries if "/" in e.name})
        for directory in dirs:
            fs.makedirs(os.path.join(files_dir, *directory.split("/")))

        def batch(items: list[Entry]) -> list[tuple[CachedFile, str | None]]:
            return [self._extract_one(wheel, entry, files_dir, verify) for entry in items]

        results: list[tuple[CachedFile, str | None]] = []
        if len(entries) >= _PARALLEL_MIN_FILES:
            # Batches of about equal compressed size, not a task per file: a future per small
            # file costs more than inflating it, and the threads then fight over the GIL.
            with ThreadPoolExecutor(_WORKERS) as pool:
                for done in pool.map(batch, size_batches(entries, _WORKERS * 4)):
                    results.extend(done)
                    if tick is not None:
                        tick(len(results), len(entries))
        else:
            for entry in entries:
                results.extend(batch([entry]))
                if tick is not None:
                    tick(len(results), len(entries))
        problems = [p for _, p in results if p]
        if problems:
            raise InvalidWheelError(wheel.path, problems)
        return [r for r, _ in results]

    @staticmethod
    def _extract_one(
        wheel: Wheel, entry: Entry, files_dir: str, verify: bool
    ) -> tuple[CachedFile, str | None]:
        path = os.path.join(files_dir, *entry.name.split("/"))
        executable = bool(entry.mode and entry.mode & 0o111)
        mode = 0o755 if executable else 0o644
        expected = wheel.record.get(entry.name)
        check = expected.hash_name if expected is not None else None
        # One pass: the archive hashes sha256 as it streams; a RECORD naming another
        # algorithm gets it computed alongside.
        other = hashlib.new(check) if check in ACCEPTED_HASHES and check != "sha256" else None
        with fs.open_for_write(path, exclusive=True, mode=mode) as writer:
            if other is None:
                sha, size = wheel.archive.copy_to(entry, writer.write, "sha256")
            else:
                update = other.update

                def write(chunk: bytes) -> None:
                    update(chunk)
                    writer.write(chunk)

                sha, size = wheel.archive.copy_to(entry, write, "sha256")
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) != mode:
            fs.chmod(path, mode)  # a umask other than 022: the cache stays the same everywhere
        problem = None
        if verify and expected is not None and expected.digest is not None:
            got = other.digest() if other is not None else sha
            if got != expected.digest:
                problem = f"{entry.name}: content does not match its RECORD hash"
            elif expected.size is not None and expected.size != size:
                problem = f"{entry.name}: size {size} does not match RECORD's {expected.size}"
        return CachedFile(entry.name, size, sha, mode, st.st_mtime_ns), problem

    def entries(self) -> list[str]:
        """The entry directories (complete or not) below the cache."""
        try:
            return sorted(os.path.join(self.root, n) for n in os.listdir(self.root))
        except FileNotFoundError:
            return []

    def verify(self, *, fix: bool = False) -> list[str]:
        """Re-hash every file of every entry; one line per damaged entry (dropped if *fix*).

        Hard-linked installs share their files with the cache: an edit made in place in an
        environment shows here as a file whose content no longer has its recorded hash.
        """
        damaged = []
        for root in self.entries():
            sha = os.path.basename(root)
            entry = self.lookup(sha)
            if entry is None:
                continue  # not an entry (or an unfinished one): prune's business
            bad = [m for m in entry.files if not _same_content(entry, m)]
            if bad:
                damaged.append(f"{root}: {len(bad)} file(s) changed, e.g. {bad[0]}")
                if fix:
                    self.drop(entry)
        return damaged

    def prune(self) -> list[str]:
        """Drop entries whose marker is missing or no longer holds, and leftovers."""
        dropped = []
        for root in self.entries():
            name = os.path.basename(root)
            entry = self.lookup(name) if not name.startswith(".") else None
            if entry is None or not entry.intact():
                self.drop_path(root)
                dropped.append(root)
        return dropped

    def clean(self) -> int:
        """Remove the whole cache directory; returns the bytes it held."""
        size = 0
        for dirpath, _dirs, files in walk(self.layout.root):
            for name in files:
                try:
                    size += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        fs.rmtree(self.layout.root)
        return size

    def drop(self, entry: CacheEntry) -> None:
        """Remove a damaged entry (its marker no longer holds) so it is made again."""
        self.drop_path(entry.root)

    def drop_path(self, root: str) -> None:
        aside = fs.temp_name(root)
        try:
            fs.rename(root, aside)
        except FileNotFoundError:
            return
        fs.rmtree(aside)

    def add_bytecode(
        self, entry: CacheEntry, tag: str, compiled: Mapping[str, bytes]
    ) -> dict[str, CachedFile]:
        """Store *compiled* (source member -> ``.pyc`` bytes) for interpreter *tag*."""
        base = entry.bytecode_dir(tag)
        rows = []
        for member, data in compiled.items():
            path = os.path.join(base, *member.split("/")) + ".pyc"
            fs.makedirs(os.path.dirname(path))
            fs.write_atomic(path, data, mode=0o644, durable=False)
            st = os.stat(path)
            rows.append([member, len(data), hashlib.sha256(data).hexdigest(), st.st_mtime_ns])
        marker = os.path.join(entry.root, "pyc", f"{tag}.json")
        fs.makedirs(os.path.dirname(marker))
        fs.write_atomic(marker, json.dumps({"files": rows}).encode("utf-8"), durable=False)
        return entry.bytecode(tag) or {}


def _info(wheel: Wheel) -> dict[str, Any]:
    """What planning needs of a wheel, so that a cached one is planned without its archive."""
    return {
        "filename": wheel.filename,
        "name": str(wheel.name),
        "display_name": wheel.display_name,
        "version": str(wheel.version),
        "dist_info": wheel.dist_info,
        "data_dir": wheel.data_dir,
        "root_is_purelib": wheel.root_is_purelib,
        "notes": list(wheel.notes),
        "modes": {e.name: e.mode for e in wheel.archive.entries if not e.is_dir},
    }


_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "filename": str,
    "name": str,
    "display_name": str,
    "version": str,
    "dist_info": str,
    "data_dir": str,
    "root_is_purelib": bool,
    "notes": list,
    "modes": dict,
}


def _checked_info(info: object) -> dict[str, Any]:
    """*info* if it has every key :func:`open_cached` reads, with the right types; a marker
    damaged or left by another version raises ``TypeError``, and the entry counts as absent."""
    if not isinstance(info, dict):
        raise TypeError("info is not an object")
    for key, kind in _INFO_TYPES.items():
        if not isinstance(info[key], kind):
            raise TypeError(f"info[{key!r}] is not a {kind}")
    if not all(isinstance(n, str) for n in info["notes"]):
        raise TypeError("info['notes'] holds a non-string")
    from packaging.version import Version

    from stalwart.index.candidates import parse_wheel_name

    Version(info["version"])  # ValueError when damaged, as the rest of the marker's checks
    parse_wheel_name(info["filename"])
    return info


def cached_record(entry: CacheEntry) -> dict[str, RecordEntry]:
    """RECORD rows of a cached wheel, from the digests taken when it was unpacked."""
    return {m: RecordEntry(m, "sha256", f.sha256, f.size) for m, f in entry.files.items()}


def open_cached(entry: CacheEntry, path: str) -> Wheel:
    """A :class:`~stalwart.wheel.wheelfile.Wheel` served from *entry* (no archive is read);
    *path* is the wheel file it came from, for messages and ``direct_url.json``."""
    from packaging.utils import NormalizedName
    from packaging.version import Version

    from stalwart.index.candidates import parse_wheel_name
    from stalwart.wheel.wheelfile import Wheel

    info = entry.info
    tags = parse_wheel_name(info["filename"])[3]
    return Wheel(
        path=path,
        filename=info["filename"],
        name=NormalizedName(info["name"]),
        display_name=info["display_name"],
        version=Version(info["version"]),
        tags=tags,
        dist_info=info["dist_info"],
        data_dir=info["data_dir"],
        root_is_purelib=bool(info["root_is_purelib"]),
        record=cached_record(entry),
        archive=CachedArchive(entry),
        notes=tuple(info["notes"]),
    )


def _same_content(entry: CacheEntry, member: str) -> bool:
    cached = entry.files[member]
    digest = hashlib.sha256()
    try:
        with open(entry.path(member), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return False
    return digest.digest() == cached.sha256
