"""A zip reader for wheels that trusts nothing.

A wheel is attacker-controlled input, and zip leaves a lot of room for two readers to see two
different archives in the same bytes: the central directory and the local headers can disagree,
entries can overlap (the classic non-recursive zip bomb), names can escape the target directory
or alias each other on case-insensitive or Windows filesystems. :class:`WheelArchive` therefore
checks the whole structure up front, reports *every* problem at once (so a user fixes a wheel in
one round trip), and only then hands out entries. Contents are checked while they stream: the
CRC-32 and the size are verified at the end of each entry, and inflating never produces more
than the declared size, so a lying header cannot blow up memory.

The module is pure: it only reads the archive it is given, never writes anywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import threading
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final, NamedTuple, Protocol, Self

from stalwart.errors import MAX_SHOWN, UnsafeArchiveError, capped

__all__ = ["Limits", "Entry", "ArchiveReader", "WheelArchive", "DEFAULT_LIMITS", "CHUNK_SIZE"]

CHUNK_SIZE: Final = 1 << 20
"""Bytes read (and at most produced by inflating) per step while streaming an entry."""

_HAS_PREAD: Final = hasattr(os, "pread")
_RATIO_FLOOR: Final = 1 << 20  # compression ratio is only suspicious for entries above 1 MiB

_LFH_SIG: Final = b"PK\x03\x04"
_CDH_SIG: Final = b"PK\x01\x02"
_DD_SIG: Final = b"PK\x07\x08"
_EOCD_SIG: Final = b"PK\x05\x06"
_Z64_EOCD_SIG: Final = b"PK\x06\x06"
_Z64_LOC_SIG: Final = b"PK\x06\x07"

_LFH = struct.Struct("<4s5H3L2H")  # local file header, 30 bytes
_CDH = struct.Struct("<4s6H3L5H2L")  # central directory header, 46 bytes
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory, 22 bytes
_Z64_EOCD = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory, 56 bytes
_Z64_LOC = struct.Struct("<4sLQL")  # zip64 end of central directory locator, 20 bytes
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<L")
_U64 = struct.Struct("<Q")
_EXTRA_HEAD = struct.Struct("<HH")

_MAX16: Final = 0xFFFF
_MAX32: Final = 0xFFFFFFFF
_MAX_COMMENT: Final = 0xFFFF

_FLAG_ENCRYPTED: Final = 0x0001
_FLAG_DESCRIPTOR: Final = 0x0008
_FLAG_STRONG_ENCRYPTION: Final = 0x0040
_FLAG_UTF8: Final = 0x0800
_FLAG_CD_ENCRYPTED: Final = 0x2000
_FLAGS_COMPARED: Final = _FLAG_ENCRYPTED | _FLAG_DESCRIPTOR | _FLAG_UTF8
_FLAGS_ENCRYPTION: Final = _FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_CD_ENCRYPTED

_STORED: Final = 0
_DEFLATED: Final = 8
_EXTRA_ZIP64: Final = 0x0001
_EXTRA_UNICODE_PATH: Final = 0x7075

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")
_RESERVED: Final = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{dev}{n}" for dev in ("COM", "LPT") for n in "123456789\u00b9\u00b2\u00b3"]
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what an archive may declare; exceeding one is refused before anything is read.

    ``max_ratio`` only applies to entries above 1 MiB uncompressed: small files compress well for
    innocent reasons, while a big entry with a huge ratio is how zip bombs look.
    """

    max_total_size: int = 4 * 1024**3
    max_entry_size: int = 2 * 1024**3
    # Deflate cannot exceed about 1032:1, so this only refuses near-pure-filler entries; real
    # wheels reach 1016:1 (onnx test data). The total-size cap is the main guard against bombs.
    max_ratio: float = 1024.0
    max_entries: int = 100_000
    # METADATA, WHEEL, RECORD and entry_points.txt are read whole into memory and parsed. A
    # RECORD of 100,000 entries is ~15 MB; a bigger one is a way to make validation slow.
    max_metadata_size: int = 64 * 1024**2


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True, slots=True)
class Entry:
    """One member of the archive, as the (validated) central directory declares it.

    ``mode`` holds the unix permission bits (e.g. ``0o755``), or ``None`` when the archive
    carries no unix attributes for the entry (a writer on Windows, for instance).
    """

    name: str
    size: int
    compressed_size: int
    crc: int
    mode: int | None
    is_dir: bool


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where an entry's bytes live; private so callers cannot point reads elsewhere."""

    entry: Entry
    method: int
    data_offset: int


class _Central(NamedTuple):
    """One raw central directory record, before any interpretation."""

    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    disk: int
    external_attr: int
    offset: int
    name: bytes
    extra: bytes


class _Fatal(Exception):
    """The structure is too broken to look any further; the message is the last problem."""


ReadAt = Callable[[int, int], bytes]


def _parse_extra(extra: bytes) -> dict[int, bytes] | None:
    """Split an extra field into its blocks; ``None`` if malformed or a block id repeats.

    Repeated or ragged blocks are refused because readers disagree on which copy wins.
    """
    blocks: dict[int, bytes] = {}
    pos, end = 0, len(extra)
    while pos < end:
        if pos + 4 > end:
            return None
        block_id, length = _EXTRA_HEAD.unpack_from(extra, pos)
        pos += 4
        if pos + length > end or block_id in blocks:
            return None
        blocks[block_id] = extra[pos : pos + length]
        pos += length
    return blocks


def _fold(text: str) -> str:
    """Key under which two names land on the same file on a case-insensitive filesystem.

    Normalising as well catches NFC/NFD twins, which macOS filesystems treat as one name.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def _component_problems(part: str) -> list[str]:
    """Rules for one path component; Windows aliases are included because wheels travel."""
    if part in (".", ".."):
        return [f"has a {part!r} path component"]
    problems = []
    if part[-1] in ". ":
        problems.append(f"component {part!r} ends with a dot or space (Windows drops it)")
    if part.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        problems.append(f"component {part!r} is a reserved Windows device name")
    return problems


def _name_problems(name: str, is_dir: bool, cache: dict[str, list[str]]) -> list[str]:
    """Every reason ``name`` could escape the target or alias another path.

    ``cache`` maps components already seen to their problems: directory names repeat a lot.
    """
    if name in ("", "/"):
        return ["has an empty name"]
    problems = []
    if _CONTROL.search(name):
        problems.append("name contains a control character")
    absolute = name[0] in "/\\"
    if absolute:
        problems.append("is an absolute path")
    if "\\" in name:
        problems.append("name contains a backslash")
    if _DRIVE.match(name):
        problems.append("starts with a drive letter")
    elif ":" in name:
        problems.append("name contains a colon (a drive or an NTFS stream on Windows)")
    body = name[:-1] if is_dir else name
    parts = _SEPARATORS.split(body)
    if absolute:
        parts = parts[1:]
    seen: set[str] = set()
    for part in parts:
        found = cache.get(part)
        if found is None:
            found = ["has an empty path component"] if not part else _component_problems(part)
            cache[part] = found
        if not found:
            continue
        for problem in found:
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    return problems


class _Scan:
    """One pass over the archive's structure that collects problems instead of stopping.

    Everything is O(entries): one read of the central directory, one small read per local
    header (plus one per data descriptor), and a sort of the entry spans for the layout check.
    """

    def __init__(self, read_at: ReadAt, file_size: int, limits: Limits) -> None:
        self.read_at = read_at
        self.file_size = file_size
        self.limits = limits
        self.problems: list[str] = []
        self.unlisted = 0  # problems past MAX_SHOWN, counted but not kept
        self.entries: list[Entry] = []
        self.slots: dict[str, _Slot] = {}
        self.spans: list[tuple[int, int, str]] = []
        self.cd_offset = 0
        self.part_cache: dict[str, list[str]] = {}

    def _say(self, problem: str) -> None:
        """Keep the first problems; count the rest, so a hostile archive cannot fill memory."""
        if len(self.problems) < MAX_SHOWN:
            self.problems.append(problem)
        else:
            self.unlisted += 1

    def report(self) -> list[str]:
        """The problems found, the last one counting those not kept (errors show no more)."""
        return capped(self.problems, self.unlisted)

    def run(self) -> None:
        try:
            count, cd_offset, cd_size, cd_end = self._end_records()
            self.cd_offset = cd_offset
            records = self._central_directory(count, cd_offset, cd_size, cd_end)
        except _Fatal as exc:
            self._say(str(exc))
            return
        total = sum(self._entry(record) for record in records)
        self._collisions()
        self._layout()
        if total > self.limits.max_total_size:
            self._say(
                f"entries add up to {total} bytes uncompressed, over the total size limit "
                f"of {self.limits.max_total_size}"
            )

    # -- end records ---------------------------------------------------------------------

    def _find_end(self) -> tuple[int, tuple[int, ...]]:
        """Locate the end of central directory record, which must close the file exactly."""
        if self.file_size < _EOCD.size:
            raise _Fatal(
                f"not a zip archive: {self.file_size} bytes is too short for an end of "
                "central directory record (truncated?)"
            )
        tail_start = max(0, self.file_size - _EOCD.size - _MAX_COMMENT)
        tail = self.read_at(tail_start, self.file_size - tail_start)
        loose: tuple[int, int] | None = None
        pos = tail.rfind(_EOCD_SIG)
        while pos >= 0:
            if pos + _EOCD.size <= len(tail):
                end = pos + _EOCD.size + _U16.unpack_from(tail, pos + 20)[0]
                if end == len(tail):
                    loose = None
                    break
                if end < len(tail) and loose is None:
                    loose = (pos, end)
            pos = tail.rfind(_EOCD_SIG, 0, pos)
        if loose is not None:
            pos, end = loose
            self._say(
                f"{len(tail) - end} bytes of trailing data after the end of central "
                "directory record"
            )
        elif pos < 0:
            raise _Fatal(
                "not a zip archive, or truncated: no end of central directory record found"
            )
        record = _EOCD.unpack_from(tail, pos)
        if _EOCD_SIG in tail[pos + _EOCD.size : pos + _EOCD.size + record[7]]:
            self._say("archive comment contains an end of central directory signature (ambiguous)")
        return tail_start + pos, record

    def _end_records(self) -> tuple[int, int, int, int]:
        """Return (entry count, central directory offset and size, where it must end)."""
        eocd_pos, eocd = self._find_end()
        _, disk, cd_disk, count_disk, count, cd_size, cd_offset, _ = eocd
        loc_pos = eocd_pos - _Z64_LOC.size
        if loc_pos >= 0 and self.read_at(loc_pos, 4) == _Z64_LOC_SIG:
            return self._zip64_end(loc_pos, eocd)
        if disk or cd_disk:
            raise _Fatal("multi-disk (spanned) archives are not supported")
        if count_disk != count:
            self._say(
                f"end of central directory record disagrees with itself on the entry count "
                f"({count_disk} vs {count})"
            )
        return count, cd_offset, cd_size, eocd_pos

    def _zip64_end(self, loc_pos: int, eocd: tuple[int, ...]) -> tuple[int, int, int, int]:
        """Read the zip64 end record and insist that the legacy record agrees with it."""
        _, z_disk, z_offset, disks = _Z64_LOC.unpack(self.read_at(loc_pos, _Z64_LOC.size))
        if z_disk != 0 or disks > 1 or eocd[1] not in (0, _MAX16) or eocd[2] not in (0, _MAX16):
            raise _Fatal("multi-disk (spanned) archives are not supported")
        raw = self.read_at(z_offset, _Z64_EOCD.size) if z_offset < loc_pos else b""
        if len(raw) < _Z64_EOCD.size or raw[:4] != _Z64_EOCD_SIG:
            raise _Fatal(f"zip64 end of central directory record missing at offset {z_offset}")
        _, rest, _, _, disk, cd_disk, count_disk, count, cd_size, cd_offset = _Z64_EOCD.unpack(raw)
        if disk or cd_disk:
            raise _Fatal("multi-disk (spanned) archives are not supported")
        if rest < _Z64_EOCD.size - 12 or z_offset + 12 + rest != loc_pos:
            self._say("zip64 end of central directory record does not end where its locator begins")
        if count_disk != count:
            self._say(
                f"zip64 end of central directory record disagrees with itself on the entry "
                f"count ({count_disk} vs {count})"
            )
        for what, legacy, sentinel, value in (
            ("entry count on this disk", eocd[3], _MAX16, count_disk),
            ("entry count", eocd[4], _MAX16, count),
            ("central directory size", eocd[5], _MAX32, cd_size),
            ("central directory offset", eocd[6], _MAX32, cd_offset),
        ):
            if legacy not in (sentinel, value):
                self._say(
                    f"zip64 and legacy end of central directory records disagree on the "
                    f"{what} ({value} vs {legacy})"
                )
        return count, cd_offset, cd_size, z_offset

    # -- central directory ---------------------------------------------------------------

    def _central_directory(
        self, count: int, cd_offset: int, cd_size: int, cd_end: int
    ) -> list[_Central]:
        if count > self.limits.max_entries:
            raise _Fatal(
                f"archive declares {count} entries, over the limit of {self.limits.max_entries}"
            )
        if cd_offset + cd_size > cd_end:
            raise _Fatal(
                "central directory overruns the end records (truncated or corrupt archive)"
            )
        if cd_offset + cd_size < cd_end:
            self._say(
                f"{cd_end - cd_offset - cd_size} bytes between the central directory and the "
                "end records belong to no entry"
            )
        if count * _CDH.size > cd_size:
            raise _Fatal(
                f"central directory of {cd_size} bytes is too small for {count} entries "
                "(truncated or corrupt archive)"
            )
        buf = self.read_at(cd_offset, cd_size)
        records: list[_Central] = []
        pos = 0
        for index in range(count):
            fields = _CDH.unpack_from(buf, pos) if pos + _CDH.size <= cd_size else None
            if fields is None or fields[0] != _CDH_SIG:
                raise _Fatal(
                    f"central directory record #{index} is malformed (truncated or corrupt)"
                )
            name_end = pos + _CDH.size + fields[10]
            extra_end = name_end + fields[11]
            end = extra_end + fields[12]
            if end > cd_size:
                raise _Fatal(f"central directory record #{index} runs past the directory's end")
            records.append(
                _Central(
                    flags=fields[3],
                    method=fields[4],
                    crc=fields[7],
                    compressed_size=fields[8],
                    size=fields[9],
                    disk=fields[13],
                    external_attr=fields[15],
                    offset=fields[16],
                    name=buf[pos + _CDH.size : name_end],
                    extra=buf[name_end:extra_end],
                )
            )
            pos = end
        if pos != cd_size:
            self._say(
                f"{cd_size - pos} bytes at the end of the central directory belong to no entry"
            )
        return records

    def _decode_name(self, record: _Central, blocks: dict[int, bytes]) -> str:
        """Decode as the zip spec says (UTF-8 if flagged, else cp437), refusing ambiguity."""
        if record.flags & _FLAG_UTF8:
            try:
                name = record.name.decode("utf-8")
            except UnicodeDecodeError:
                name = record.name.decode("utf-8", "replace")
                self._say(f"entry {name!r}: name {record.name!r} is flagged UTF-8 but is not")
        else:
            name = record.name.decode("cp437")
        unicode_path = blocks.get(_EXTRA_UNICODE_PATH)
        if unicode_path is not None and unicode_path[5:] != name.encode("utf-8", "replace"):
            self._say(f"entry {name!r}: Unicode Path extra field gives it a different name")
        return name

    def _zip64_values(
        self, record: _Central, blocks: dict[int, bytes], label: str
    ) -> _Central | None:
        """Replace sentinel fields by the zip64 extra values, in the order the spec fixes.

        ``None`` when the extra field cannot supply them: the sizes are then unknown.
        """
        if _MAX32 not in (record.size, record.compressed_size, record.offset) and (
            record.disk != _MAX16
        ):
            return record
        data = blocks.get(_EXTRA_ZIP64, b"")
        values = [record.size, record.compressed_size, record.offset, record.disk]
        pos = 0
        for i, (what, sentinel, unpacker) in enumerate(
            (
                ("size", _MAX32, _U64),
                ("compressed size", _MAX32, _U64),
                ("offset", _MAX32, _U64),
                ("disk", _MAX16, _U32),
            )
        ):
            if values[i] != sentinel:
                continue
            if pos + unpacker.size > len(data):
                self._say(
                    f"entry {label}: zip64 extra field is missing or too short for its {what}"
                )
                return None
            values[i] = unpacker.unpack_from(data, pos)[0]
            pos += unpacker.size
        size, compressed_size, offset, disk = values
        return record._replace(size=size, compressed_size=compressed_size, offset=offset, disk=disk)

    def _attributes(self, record: _Central, label: str, is_dir: bool) -> int | None:
        """Refuse links and special files; return the permission bits, if any."""
        unix = record.external_attr >> 16
        kind = stat.S_IFMT(unix)
        if kind == stat.S_IFLNK:
            self._say(f"entry {label}: is a symbolic link")
        elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            self._say(f"entry {label}: is a special file (type {kind:#o})")
        elif (kind == stat.S_IFDIR and not is_dir) or (kind == stat.S_IFREG and is_dir):
            self._say(f"entry {label}: file type in its attributes contradicts its name")
        return stat.S_IMODE(unix) if unix else None

    def _entry(self, raw: _Central) -> int:
        """Check one central directory record and its local header; return its declared size."""
        blocks = _parse_extra(raw.extra)
        name = self._decode_name(raw, blocks or {})
        label = repr(name)
        if blocks is None:
            self._say(f"entry {label}: malformed extra field in central directory")
            blocks = {}
        is_dir = name.endswith("/")
        for problem in _name_problems(name, is_dir, self.part_cache):
            self._say(f"entry {label}: {problem}")
        mode = self._attributes(raw, label, is_dir)
        record = self._zip64_values(raw, blocks, label)
        if record is None:  # sizes unknown: checking them would only add noise
            self.entries.append(Entry(name, 0, 0, raw.crc, mode, is_dir))
            return 0
        self._content_rules(record, label, is_dir)
        data_offset = self._local_header(record, label)
        entry = Entry(name, record.size, record.compressed_size, record.crc, mode, is_dir)
        self.entries.append(entry)
        if data_offset is not None and name not in self.slots:
            self.slots[name] = _Slot(entry, record.method, data_offset)
        return record.size

    def _content_rules(self, record: _Central, label: str, is_dir: bool) -> None:
        """Encryption, compression method, disk and size limits, from the directory alone."""
        say = self._say
        if record.flags & _FLAGS_ENCRYPTION:
            say(f"entry {label}: is encrypted")
        if record.method not in (_STORED, _DEFLATED):
            say(f"entry {label}: uses unsupported compression method {record.method}")
        if record.disk != 0:
            say(f"entry {label}: lives on another disk ({record.disk})")
        if record.method == _STORED and record.compressed_size != record.size:
            say(
                f"entry {label}: is stored but its compressed size ({record.compressed_size}) "
                f"differs from its size ({record.size})"
            )
        if is_dir and record.size:
            say(f"entry {label}: directory entry has content ({record.size} bytes)")
        limits = self.limits
        if record.size > limits.max_entry_size:
            say(
                f"entry {label}: is {record.size} bytes uncompressed, over the per-entry size "
                f"limit of {limits.max_entry_size}"
            )
        ratio = record.size / max(record.compressed_size, 1)
        if record.size > _RATIO_FLOOR and ratio > limits.max_ratio:
            say(
                f"entry {label}: compression ratio {ratio:.0f} exceeds the limit of "
                f"{limits.max_ratio:g} (zip bomb?)"
            )

    # -- local headers ---------------------------------------------------------------------

    def _local_header(self, record: _Central, label: str) -> int | None:
        """Check the local header against the directory; return where the data starts."""
        say = self._say
        offset = record.offset
        # One read usually covers header, name and extra field (extras are short in practice).
        want = min(_LFH.size + len(record.name) + 64, self.cd_offset - offset)
        head = self.read_at(offset, want) if offset < self.cd_offset else b""
        if len(head) < _LFH.size or head[:4] != _LFH_SIG:
            say(f"entry {label}: no local header at offset {offset}")
            return None
        fields: tuple[int, ...] = _LFH.unpack_from(head)[1:]
        _, flags, method, _, _, crc, csize, size, name_len, extra_len = fields
        data_offset: int = offset + _LFH.size + name_len + extra_len
        if data_offset > self.cd_offset:
            say(f"entry {label}: local header runs into the central directory")
            return None
        extra_start = _LFH.size + name_len
        if len(head) < extra_start + extra_len:
            head = self.read_at(offset, extra_start + extra_len)
        if head[_LFH.size : extra_start] != record.name:
            local_name = head[_LFH.size : extra_start]
            say(f"entry {label}: local header has a different name ({local_name!r})")
        if (flags ^ record.flags) & _FLAGS_COMPARED:
            say(
                f"entry {label}: local header flags {flags:#06x} contradict central directory "
                f"flags {record.flags:#06x}"
            )
        if method != record.method:
            say(
                f"entry {label}: local header says compression method {method}, central "
                f"directory says {record.method}"
            )
        blocks = _parse_extra(head[extra_start : extra_start + extra_len])
        if blocks is None:
            say(f"entry {label}: malformed extra field in local header")
            blocks = {}
        zip64 = _EXTRA_ZIP64 in blocks
        if _MAX32 in (size, csize):
            resolved = self._local_zip64(blocks.get(_EXTRA_ZIP64, b""), size, csize)
            if resolved is None:
                say(f"entry {label}: local zip64 extra field is missing or too short")
                return None
            size, csize = resolved
        data_end = data_offset + record.compressed_size
        if data_end > self.cd_offset:
            say(f"entry {label}: data runs into the central directory (truncated or overlapping)")
            return None
        local: tuple[int, ...] = (crc, csize, size)
        if flags & _FLAG_DESCRIPTOR:  # zeros in the local header mean "see the descriptor"
            local = tuple(v or c for v, c in zip(local, self._declared(record), strict=True))
            end = self._descriptor(record, label, data_end, zip64)
        else:
            end = data_end
        self._compare_local(record, label, local)
        self.spans.append((offset, end, label))
        return data_offset

    @staticmethod
    def _local_zip64(data: bytes, size: int, csize: int) -> tuple[int, int] | None:
        """Sizes from a local zip64 extra field: both by the spec, the sentinel one if short."""
        if len(data) >= 16:
            both: tuple[int, int] = struct.unpack_from("<QQ", data)
            return both
        if len(data) >= 8 and (size == _MAX32) != (csize == _MAX32):
            value: int = _U64.unpack_from(data)[0]
            return (value, csize) if size == _MAX32 else (size, value)
        return None

    @staticmethod
    def _declared(record: _Central) -> tuple[int, int, int]:
        return record.crc, record.compressed_size, record.size

    def _compare_local(self, record: _Central, label: str, local: tuple[int, ...]) -> None:
        for what, here, there in zip(
            ("CRC-32", "compressed size", "size"), local, self._declared(record), strict=True
        ):
            if here != there:
                shown = (f"{here:#010x}", f"{there:#010x}") if what == "CRC-32" else (here, there)
                self._say(
                    f"entry {label}: local header says {what} {shown[0]}, central directory "
                    f"says {shown[1]}"
                )

    def _descriptor(self, record: _Central, label: str, data_end: int, zip64: bool) -> int:
        """Find the data descriptor after the data and return where the entry really ends.

        The signature is optional and the sizes are 8 bytes wide for zip64 entries (some writers
        get that wrong, so the other width is tried second). The first layout that repeats the
        directory's values wins; a forged alternative would leave bytes that no entry covers,
        which the layout check reports.
        """
        raw = self.read_at(data_end, min(24, self.cd_offset - data_end))
        want = self._declared(record)
        widths = ("<LQQ", "<LLL") if zip64 else ("<LLL", "<LQQ")
        for fmt in widths:
            for start in (4, 0):  # with the signature first
                size = start + struct.calcsize(fmt)
                if len(raw) < size or (start and raw[:4] != _DD_SIG):
                    continue
                if struct.unpack_from(fmt, raw, start) == want:
                    return data_end + size
        self._say(f"entry {label}: data descriptor contradicts the central directory")
        return data_end

    # -- whole-archive rules ---------------------------------------------------------------

    def _collisions(self) -> None:
        """Exact duplicates, case/normalisation twins, and files that other paths go through."""
        say = self._say
        exact: set[str] = set()
        keys: dict[str, Entry] = {}
        files: list[Entry] = []
        for entry in self.entries:
            if entry.name in exact:
                say(f"entry {entry.name!r}: duplicate entry name")
                continue
            exact.add(entry.name)
            key = _fold(entry.name[:-1] if entry.is_dir else entry.name)
            other = keys.get(key)
            if other is None:
                keys[key] = entry
                if not entry.is_dir:
                    files.append(entry)
            elif other.is_dir != entry.is_dir:
                say(f"entry {entry.name!r}: file and directory collide with {other.name!r}")
            else:
                say(f"entry {entry.name!r}: collides case-insensitively with {other.name!r}")
        if not files:
            return
        # Every folded directory prefix gets a number, from its parent's number and its last
        # component: linear in the length of the names. Joining the prefixes as strings, as this
        # did before, was quadratic in the depth ('a/' * 30000: 0.4 s per entry).
        folded: dict[str, str] = {}  # directory names repeat a lot; fold each once

        def fold(part: str) -> str:
            key = folded.get(part)
            if key is None:
                key = folded[part] = _fold(part)
            return key

        prefixes: dict[tuple[int, str], int] = {}
        owners: dict[int, Entry] = {}
        for file in files:
            node = 0
            for part in file.name.split("/"):
                node = prefixes.setdefault((node, fold(part)), len(prefixes) + 1)
            owners[node] = file
        for entry in self.entries:
            parts = (entry.name[:-1] if entry.is_dir else entry.name).split("/")
            node = 0
            for part in parts[:-1]:
                found = prefixes.get((node, fold(part)))
                if found is None:
                    break  # no file lies below this prefix
                node = found
                blocker = owners.get(node)
                if blocker is not None:
                    say(
                        f"entry {entry.name!r}: needs {blocker.name!r} to be a directory, "
                        "but it is a file"
                    )
                    break

    def _layout(self) -> None:
        """Entries must tile the bytes before the central directory: no gaps, no overlaps."""
        cursor, previous = 0, ""
        for start, end, label in sorted(self.spans):
            if start < cursor:
                self._say(f"entry {label}: overlaps entry {previous}")
            elif start > cursor:
                self._say(
                    f"{start - cursor} bytes at offset {cursor} belong to no entry "
                    f"(before entry {label})"
                )
            if end > cursor:
                cursor, previous = end, label
        if cursor < self.cd_offset and (self.spans or not self.entries):
            self._say(
                f"{self.cd_offset - cursor} bytes before the central directory belong to no entry"
            )


class ArchiveReader(Protocol):
    """What planning and staging read from a wheel: a :class:`WheelArchive`, or the same
    members served from the unpacked cache (``stalwart.wheelcache``)."""

    @property
    def entries(self) -> tuple[Entry, ...]: ...

    @property
    def limits(self) -> Limits: ...

    def get(self, name: str) -> Entry | None: ...

    def read(self, name: str) -> bytes: ...

    def copy_to(
        self, entry: Entry, write: Callable[[bytes], object], hash_name: str = "sha256"
    ) -> tuple[bytes, int]: ...

    def close(self) -> None: ...


class WheelArchive:
    """A validated, read-only view of a wheel file; use it as a context manager.

    The constructor checks the whole structure and raises :class:`UnsafeArchiveError` with every
    problem found. Afterwards :meth:`read` and :meth:`copy_to` stream contents and verify them;
    they are safe to call from several threads at once (reads are positional).
    """

    def __init__(self, path: str | os.PathLike[str], limits: Limits = Limits()) -> None:
        self.path = os.fspath(path)
        self.limits = limits
        self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()
        try:
            scan = _Scan(self._read_at, os.fstat(self._file.fileno()).st_size, limits)
            scan.run()
            if scan.problems:
                raise UnsafeArchiveError(self.path, scan.report())
        except BaseException:
            self._file.close()
            raise
        self.entries: tuple[Entry, ...] = tuple(scan.entries)
        self._slots = scan.slots

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<WheelArchive {self.path!r} ({len(self.entries)} entries)>"

    def close(self) -> None:
        """Release the file handle; idempotent."""
        self._file.close()

    def get(self, name: str) -> Entry | None:
        """The entry called exactly ``name``, or ``None``."""
        slot = self._slots.get(name)
        return None if slot is None else slot.entry

    def read(self, name: str) -> bytes:
        """The whole content of entry ``name`` (``KeyError`` if absent), CRC and size checked."""
        slot = self._slots.get(name)
        if slot is None:
            raise KeyError(name)
        return b"".join(self._stream(slot))

    def copy_to(
        self, entry: Entry, write: Callable[[bytes], object], hash_name: str = "sha256"
    ) -> tuple[bytes, int]:
        """Stream ``entry`` to ``write`` in chunks, hashing in the same pass.

        Returns ``(digest, size)``. The CRC and size are only known to be right at the end: on a
        mismatch :class:`UnsafeArchiveError` is raised after some chunks were already written,
        so the caller must discard what it wrote.
        """
        slot = self._slots.get(entry.name)
        if slot is None or slot.entry != entry:
            raise KeyError(entry.name)
        digest = hashlib.new(hash_name)
        size = 0
        for chunk in self._stream(slot):
            digest.update(chunk)
            write(chunk)
            size += len(chunk)
        return digest.digest(), size

    # -- reading ---------------------------------------------------------------------------

    def _read_at(self, offset: int, length: int) -> bytes:
        """Read up to ``length`` bytes at ``offset`` without a shared file position."""
        if self._file.closed:
            raise ValueError(f"{self.path}: archive is closed")
        fd = self._file.fileno()
        parts: list[bytes] = []
        while length > 0:
            if _HAS_PREAD:
                chunk = os.pread(fd, length, offset)
            else:  # Windows: no pread; a lock makes seek + read atomic.
                with self._lock:
                    self._file.seek(offset)
                    chunk = self._file.read(length) or b""
            if not chunk:
                break
            parts.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _fail(self, entry: Entry, problem: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(self.path, f"entry {entry.name!r}: {problem}")

    def _raw(self, slot: _Slot) -> Iterator[bytes]:
        offset, remaining = slot.data_offset, slot.entry.compressed_size
        while remaining:
            want = min(CHUNK_SIZE, remaining)
            chunk = self._read_at(offset, want)
            if len(chunk) != want:
                raise self._fail(slot.entry, "archive ended while reading (file changed?)")
            yield chunk
            offset += want
            remaining -= want

    def _inflate(self, slot: _Slot) -> Iterator[bytes]:
        """Inflate in bounded steps so a lying header cannot make us hold more than a chunk."""
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        for compressed in self._raw(slot):
            if inflater.eof:
                raise self._fail(slot.entry, "compressed data continues past its deflate stream")
            pending = compressed
            while True:
                try:
                    out = inflater.decompress(pending, CHUNK_SIZE)
                except zlib.error as exc:
                    raise self._fail(slot.entry, f"corrupt deflate data ({exc})") from None
                pending = inflater.unconsumed_tail
                if out:
                    yield out
                if inflater.eof:
                    if pending or inflater.unused_data:
                        raise self._fail(
                            slot.entry, "compressed data continues past its deflate stream"
                        )
                    break
                if not pending and len(out) < CHUNK_SIZE:
                    break
        if not inflater.eof:
            raise self._fail(slot.entry, "deflate stream is truncated")

    def _stream(self, slot: _Slot) -> Iterator[bytes]:
        """Yield the entry's content, then insist on the declared size and CRC-32."""
        entry = slot.entry
        chunks = self._raw(slot) if slot.method == _STORED else self._inflate(slot)
        crc = size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > entry.size:
                raise self._fail(entry, f"content exceeds its declared size of {entry.size} bytes")
            crc = zlib.crc32(chunk, crc)
            yield chunk
        if size != entry.size:
            raise self._fail(entry, f"content is {size} bytes, declared {entry.size}")
        if crc != entry.crc:
            raise self._fail(
                entry, f"CRC-32 mismatch: content has {crc:#010x}, declared {entry.crc:#010x}"
            )
