"""Staging: every file of every wheel of a command, written into the transaction's stage.

Each wheel travels as one :class:`StagedWheel`: its plan, the staged files with the digests
computed while they were written, and later its bytecode. Like pypa/installer's
``WheelDestination``, this module is where bytes become files and RECORD rows: each write
returns the row describing what was written, and :func:`declare` finishes a wheel by writing its
RECORD and handing every file to the transaction. Nothing here is visible in the environment
until the transaction commits.

Archive members are streamed out while hashing (each byte of a member is read once) and checked
against the wheel's RECORD as they go.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from stalwart import fs
from stalwart.cpus import usable_cpus
from stalwart.errors import InvalidWheelError
from stalwart.plan import Extract, FileAction, WheelPlan, record_path
from stalwart.scripts import rewrite_shebang
from stalwart.transaction import Transaction
from stalwart.wheel.record import ACCEPTED_HASHES, RecordEntry, format_record

if TYPE_CHECKING:
    from stalwart.wheelcache import CachedFile, CacheEntry

__all__ = [
    "LinkMode",
    "LINK_MODES",
    "Placer",
    "StagedFile",
    "StagedWheel",
    "stage_wheels",
    "declare",
    "current_umask",
]

LinkMode = Literal["auto", "clone", "hardlink", "copy"]
LINK_MODES: tuple[LinkMode, ...] = ("auto", "clone", "hardlink", "copy")


class Placer:
    """Puts files of the unpacked-wheel cache into the stage: clone, hard link or copy.

    ``auto`` tries a copy-on-write clone, then a hard link, then a copy, per file, and stops
    trying what the file system refused once (tmpfs cannot clone; two file systems cannot
    link). A clone or a copy is given the cache file's times, so that cached timestamp
    ``.pyc`` files stay valid for it; a hard link is the cache file itself (an edit of it in
    the environment is an edit of the cache: the cache entry's marker notices, see
    :mod:`stalwart.wheelcache`).
    """

    def __init__(self, mode: LinkMode = "auto") -> None:
        self.mode = mode
        self._clone = mode in ("auto", "clone")
        self._link = mode in ("auto", "hardlink")
        self.counts: dict[str, int] = {"clone": 0, "hardlink": 0, "copy": 0}

    def place(self, src: str, dst: str, mtime_ns: int) -> None:
        if self._clone:
            if fs.clone(src, dst):
                fs.set_times(dst, mtime_ns)
                self.counts["clone"] += 1
                return
            self._clone = False
        if self._link:
            if fs.link(src, dst):
                self.counts["hardlink"] += 1
                return
            self._link = False  # fs.link copied it (no links here): times, then copies
            fs.set_times(dst, mtime_ns)
            self.counts["copy"] += 1
            return
        fs.copy(src, dst, times=True)
        self.counts["copy"] += 1

    @property
    def links(self) -> bool:
        """Whether placing still links or clones (a quick call) rather than copies."""
        return self._clone or self._link

    def summary(self) -> str:
        parts = [f"{n} {kind}" for kind, n in self.counts.items() if n]
        return ", ".join(parts) or "nothing"


_PARALLEL_MIN_FILES = 64
_WORKERS = usable_cpus()


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A file waiting in the stage: where it goes, where it is, and its RECORD row."""

    dest: str
    staged: str
    record: RecordEntry  # path relative to the wheel's lib_dir, hash and size of what was written
    compile: bool = False


@dataclass
class StagedWheel:
    """One wheel through staging: its plan, its staged files, then its bytecode."""

    plan: WheelPlan
    files: list[StagedFile]
    bytecode: list[StagedFile] = field(default_factory=list)

    def add_bytecode(self, txn: Transaction, dest: str, data: bytes) -> None:
        """Stage compiled bytecode for *dest* (a ``__pycache__`` path of this wheel)."""
        path = txn.stage_path(dest)
        with fs.open_for_write(path, exclusive=True) as writer:
            writer.write(data)
        # pip lists bytecode without a hash: it is derived, and rewritten by any interpreter.
        self.bytecode.append(StagedFile(dest, path, RecordEntry(record_path(self.lib_dir, dest))))

    def add_cached_bytecode(
        self, txn: Transaction, dest: str, src: str, cached: CachedFile, placer: Placer
    ) -> None:
        """Stage bytecode for *dest* from the cache (compiled once for this interpreter)."""
        path = txn.stage_path(dest)
        placer.place(src, path, cached.mtime_ns)
        self.bytecode.append(StagedFile(dest, path, RecordEntry(record_path(self.lib_dir, dest))))

    @property
    def lib_dir(self) -> str:
        return self.plan.lib_dir


def current_umask() -> int:
    """The process umask (POSIX has no way to read it without setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def stage_wheels(
    plans: list[WheelPlan],
    txn: Transaction,
    *,
    python: str,
    windows: bool,
    verify_record: bool = True,
    tick: Callable[[int], None] | None = None,
    entries: Sequence[CacheEntry | None] | None = None,
    placer: Placer | None = None,
) -> list[StagedWheel]:
    """Write every file of every plan into *txn*'s stage, checking RECORD hashes as it goes.

    One thread pool serves all wheels (zlib, hashing and file writes release the GIL), so many
    small wheels gain as much as one big one. Results are collected, and progress reported, in
    the calling thread. Raises :class:`InvalidWheelError` listing every file whose content does
    not match its RECORD row (unless *verify_record* is off).

    With *entries* (the unpacked-wheel cache entry of each plan, or None), archive members are
    put in place from the cache by *placer* instead of extracted: no byte is read, and the
    digests are the ones the cache took when it unpacked and verified the wheel.
    """
    umask = current_umask()
    jobs = [(index, action) for index, plan in enumerate(plans) for action in plan.files]
    cached = list(entries) if entries is not None else [None] * len(plans)
    put = placer or Placer()

    def cache_entry(job: tuple[int, FileAction]) -> CacheEntry | None:
        """Where *job*'s file is placed from: its wheel's cache entry, unless it is generated
        or rewritten (a script's shebang), or the wheel is not cached."""
        index, action = job
        if isinstance(action, Extract) and not action.rewrite_shebang:
            return cached[index]
        return None

    def run(job: tuple[int, FileAction]) -> tuple[StagedFile, str | None]:
        index, action = job
        staged = txn.stage_path(action.dest)
        entry = cache_entry(job)
        if entry is not None and isinstance(action, Extract):  # isinstance: for mypy
            return _place_file(plans[index], action, staged, entry, put, umask), None
        return _stage_file(plans[index], action, staged, python, windows, umask)

    results: list[tuple[StagedFile, str | None] | None] = [None] * len(jobs)
    # Linking or cloning from the cache is one quick system call per file: threads would only
    # fight over the GIL (measured: twice as slow on tmpfs), so it runs here. Extraction
    # (zlib, hashing, writes: all release the GIL) and copies run in a pool.
    pooled: list[int] = []
    untold = 0  # placed but not yet reported to *tick*
    for position, job in enumerate(jobs):
        if put.links and cache_entry(job) is not None:
            results[position] = run(job)
            untold += 1
            if tick is not None and untold == 256:
                tick(untold)
                untold = 0
        else:
            pooled.append(position)
    if tick is not None and untold:
        tick(untold)
    if len(pooled) >= _PARALLEL_MIN_FILES:
        # Batches, not one task per file: a future per file costs more than writing one.
        size = max(16, len(pooled) // (_WORKERS * 4))
        batches = [pooled[i : i + size] for i in range(0, len(pooled), size)]
        from concurrent.futures import ThreadPoolExecutor  # imports logging: when needed

        pool = ThreadPoolExecutor(_WORKERS)
        try:
            done = pool.map(lambda batch: [run(jobs[p]) for p in batch], batches)
            for batch, outcomes in zip(batches, done, strict=True):
                for position, outcome in zip(batch, outcomes, strict=True):
                    results[position] = outcome
                if tick is not None:
                    tick(len(batch))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        for position in pooled:
            results[position] = run(jobs[position])
            if tick is not None:
                tick(1)
    staged = [StagedWheel(plan, []) for plan in plans]
    problems: list[list[str]] = [[] for _ in plans]
    for (index, _), result in zip(jobs, results, strict=True):
        assert result is not None  # every position was run above
        item, problem = result
        staged[index].files.append(item)
        if problem:
            problems[index].append(problem)
    if verify_record:
        for plan, found in zip(plans, problems, strict=True):
            if found:
                raise InvalidWheelError(plan.wheel.path, found)
    return staged


def _stage_file(
    plan: WheelPlan, action: FileAction, staged: str, python: str, windows: bool, umask: int
) -> tuple[StagedFile, str | None]:
    """Write one file into the stage; returns it and a RECORD mismatch, if any."""
    wheel = plan.wheel
    mode = 0o777 if action.executable else 0o666
    expected = wheel.record.get(action.member) if isinstance(action, Extract) else None
    hash_name = "sha256"
    if expected is not None and expected.hash_name in ACCEPTED_HASHES:
        hash_name = expected.hash_name
    problem = None
    what = action.member if isinstance(action, Extract) else action.dest
    if isinstance(action, Extract) and not action.rewrite_shebang:
        entry = wheel.archive.get(action.member)
        assert entry is not None  # planned from the archive's own entries
        with fs.open_for_write(staged, exclusive=True, mode=mode) as writer:
            digest, size = wheel.archive.copy_to(entry, writer.write, hash_name)
        problem = _mismatch(expected, digest, size)
    else:
        if isinstance(action, Extract):
            original = wheel.archive.read(action.member)
            problem = _mismatch(expected, hashlib.new(hash_name, original).digest(), len(original))
            data = rewrite_shebang(original, python, windows=windows) or original
        else:
            data = action.content
        with fs.open_for_write(staged, exclusive=True, mode=mode) as writer:
            writer.write(data)
        digest, size = hashlib.new(hash_name, data).digest(), len(data)
    if action.executable and (0o777 & ~umask) & 0o111 != 0o111:
        fs.chmod(staged, (0o777 & ~umask) | 0o111)  # pip's rule for executables
    if problem is not None:
        problem = f"{what}: {problem}"
    record = RecordEntry(record_path(plan.lib_dir, action.dest), hash_name, digest, size)
    return StagedFile(action.dest, staged, record, action.compile), problem


def _wanted_mode(executable: bool, umask: int) -> int:
    """The mode a file gets when written with the umask (pip's rule for executables)."""
    mode = (0o777 if executable else 0o666) & ~umask
    return mode | 0o111 if executable else mode


def _place_file(
    plan: WheelPlan, action: Extract, staged: str, entry: CacheEntry, placer: Placer, umask: int
) -> StagedFile:
    """Stage an archive member from the cache: linked or cloned when the cache file already
    has the mode the umask gives (the usual 022), else copied and given it."""
    cached = entry.files[action.member]
    source = entry.path(action.member)
    mode = _wanted_mode(action.executable, umask)
    if mode == cached.mode:
        placer.place(source, staged, cached.mtime_ns)
    else:
        fs.copy(source, staged, times=True)
        fs.chmod(staged, mode)
    record = RecordEntry(
        record_path(plan.lib_dir, action.dest), "sha256", cached.sha256, cached.size
    )
    return StagedFile(action.dest, staged, record, action.compile)


def _mismatch(expected: RecordEntry | None, digest: bytes, size: int) -> str | None:
    if expected is None:
        return None  # only reachable with verify_record=False; validation refused it otherwise
    if expected.digest != digest:
        return "content does not match its RECORD hash"
    if expected.size is not None and expected.size != size:
        return f"size {size} does not match RECORD's {expected.size}"
    return None


def declare(wheel: StagedWheel, txn: Transaction) -> None:
    """Hand a wheel's staged files and bytecode to *txn*, after writing its RECORD."""
    plan = wheel.plan
    rows = [f.record for f in wheel.files]
    for item in wheel.files:
        txn.install(item.staged, item.dest)
    for pyc in wheel.bytecode:
        txn.install(pyc.staged, pyc.dest)
        rows.append(pyc.record)
    rows.append(RecordEntry(record_path(plan.lib_dir, plan.record_file)))
    record = txn.stage_path(plan.record_file)
    with fs.open_for_write(record, exclusive=True) as writer:
        writer.write(format_record(rows))
    txn.install(record, plan.record_file)
