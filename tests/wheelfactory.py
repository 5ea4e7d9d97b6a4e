"""Build zip files for tests, honest ones and deliberately broken ones.

:func:`make_wheel` goes through :mod:`zipfile`, so tests see what a real writer produces.
:func:`build_zip` writes every structure by hand with :mod:`struct`; each :class:`Member` field
that ends up in a header can be overridden, which is how the hostile corpus is made (headers that
disagree, overlapping entries, forged sizes, zip64 records, trailing garbage...).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STORED = 0
DEFLATED = 8
MAX32 = 0xFFFFFFFF
MAX16 = 0xFFFF

LOCAL = struct.Struct("<4s5H3L2H")
CENTRAL = struct.Struct("<4s6H3L5H2L")
END = struct.Struct("<4s4H2LH")
ZIP64_END = struct.Struct("<4sQ2H2L4Q")
ZIP64_LOCATOR = struct.Struct("<4sLQL")

UNIX = 3 << 8 | 20  # "version made by": unix, spec 2.0
DOS_DATE = (0, 33)  # 1980-01-01 00:00, the zip epoch


@dataclass
class Member:
    """One entry; ``None`` overrides mean "the honest value"."""

    name: str | bytes
    data: bytes = b""
    method: int = DEFLATED
    unix_mode: int | None = 0o100644  # high 16 bits of external_attr, None for none
    flags: int = 0  # bit 11 (UTF-8) is added for non-ASCII str names
    descriptor: bool = False  # sizes and CRC go into a data descriptor (flag bit 3)
    descriptor_signature: bool = True
    zip64: bool = False  # sizes (and offset) through zip64 extra fields
    payload: bytes | None = None  # raw bytes stored as the compressed data
    crc: int | None = None  # both headers
    size: int | None = None  # both headers
    compressed_size: int | None = None  # both headers
    extra: bytes = b""  # appended to the central extra field
    local_extra: bytes = b""  # appended to the local extra field
    local_name: bytes | None = None
    local_method: int | None = None
    local_flags: int | None = None
    local_crc: int | None = None
    local_size: int | None = None
    local_compressed_size: int | None = None
    descriptor_values: tuple[int, int, int] | None = None  # (crc, compressed, size)
    offset: int | None = None  # central directory's idea of the local header offset
    write_local: bool = True  # False: only a central record (points at someone else's bytes)
    after: bytes = b""  # bytes written after the entry that no entry covers

    @property
    def raw_name(self) -> bytes:
        return self.name if isinstance(self.name, bytes) else self.name.encode("utf-8")

    @property
    def all_flags(self) -> int:
        flags = self.flags | (0x08 if self.descriptor else 0)
        if isinstance(self.name, str) and not self.name.isascii():
            flags |= 0x800
        return flags

    @property
    def compressed(self) -> bytes:
        if self.payload is not None:
            return self.payload
        if self.method == DEFLATED:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            return packer.compress(self.data) + packer.flush()
        return self.data

    def honest(self) -> tuple[int, int, int]:
        """(crc, compressed size, size) as the central directory will declare them."""
        crc = zlib.crc32(self.data) if self.crc is None else self.crc
        csize = len(self.compressed) if self.compressed_size is None else self.compressed_size
        size = len(self.data) if self.size is None else self.size
        return crc, csize, size


def _pick(override: int | None, value: int) -> int:
    return value if override is None else override


def local_record(member: Member) -> bytes:
    """Local header + name + extra + data (+ data descriptor) for ``member``."""
    crc, csize, size = member.honest()
    flags = _pick(member.local_flags, member.all_flags)
    l_crc = _pick(member.local_crc, 0 if member.descriptor else crc)
    l_csize = _pick(member.local_compressed_size, 0 if member.descriptor else csize)
    l_size = _pick(member.local_size, 0 if member.descriptor else size)
    extra = b""
    if member.zip64:
        extra = struct.pack("<HHQQ", 1, 16, l_size, l_csize)
        l_size = l_csize = MAX32
    extra += member.local_extra
    name = member.raw_name if member.local_name is None else member.local_name
    header = LOCAL.pack(
        b"PK\x03\x04",
        45 if member.zip64 else 20,
        flags,
        _pick(member.local_method, member.method),
        *DOS_DATE,
        l_crc,
        l_csize,
        l_size,
        len(name),
        len(extra),
    )
    out = header + name + extra + member.compressed
    if member.descriptor:
        values = member.descriptor_values or (crc, csize, size)
        body = struct.pack("<LQQ" if member.zip64 else "<LLL", *values)
        out += (b"PK\x07\x08" if member.descriptor_signature else b"") + body
    return out


def central_record(member: Member, offset: int) -> bytes:
    """Central directory header for ``member`` whose local header sits at ``offset``."""
    crc, csize, size = member.honest()
    offset = _pick(member.offset, offset)
    extra = b""
    if member.zip64:
        extra = struct.pack("<HHQQQ", 1, 24, size, csize, offset)
        size = csize = offset = MAX32
    extra += member.extra
    attr = 0 if member.unix_mode is None else member.unix_mode << 16
    name = member.raw_name
    return (
        CENTRAL.pack(
            b"PK\x01\x02",
            UNIX if member.unix_mode is not None else 20,
            45 if member.zip64 else 20,
            member.all_flags,
            member.method,
            *DOS_DATE,
            crc,
            csize,
            size,
            len(name),
            len(extra),
            0,
            0,
            0,
            attr,
            offset,
        )
        + name
        + extra
    )


def zip_bytes(
    members: Iterable[Member] | Mapping[str, bytes],
    *,
    prefix: bytes = b"",
    trailing: bytes = b"",
    comment: bytes = b"",
    zip64_end: bool = False,
    count: int | None = None,
    cd_size: int | None = None,
    cd_offset: int | None = None,
    zip64_count: int | None = None,
    cd_trailer: bytes = b"",
) -> bytes:
    """The bytes of a zip archive; keyword overrides forge the end records.

    ``cd_trailer`` lands between the central directory and the end records, uncounted.
    """
    if isinstance(members, Mapping):
        members = [Member(name, data) for name, data in members.items()]
    members = list(members)
    out = bytearray(prefix)
    offsets = []
    for member in members:
        offsets.append(len(out))
        if member.write_local:
            out += local_record(member)
        out += member.after
    start = len(out)
    for member, offset in zip(members, offsets, strict=True):
        out += central_record(member, offset)
    size = len(out) - start
    out += cd_trailer
    n = len(members)
    real = (_pick(count, n), _pick(cd_size, size), _pick(cd_offset, start))
    if zip64_end:
        z64_at = len(out)
        z64_count = _pick(zip64_count, real[0])
        out += ZIP64_END.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, z64_count, z64_count, *real[1:])
        out += ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, z64_at, 1)
        legacy = (
            MAX16 if count is None else count,
            MAX32 if cd_size is None else cd_size,
            MAX32 if cd_offset is None else cd_offset,
        )
    else:
        legacy = real
    out += END.pack(b"PK\x05\x06", 0, 0, legacy[0], legacy[0], *legacy[1:], len(comment))
    return bytes(out + comment + trailing)


def build_zip(path: Path, members: Iterable[Member] | Mapping[str, bytes], **kwargs: Any) -> Path:
    """Write :func:`zip_bytes` to ``path`` and return it."""
    path.write_bytes(zip_bytes(members, **kwargs))
    return path


def make_wheel(
    path: Path,
    files: Mapping[str, bytes],
    *,
    modes: Mapping[str, int] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
    streamed: bool = False,
    force_zip64: bool = False,
) -> Path:
    """Write ``files`` with :mod:`zipfile`, the way ordinary tools make wheels.

    Names ending in ``/`` become directory entries. ``streamed`` writes to an unseekable stream,
    which makes zipfile use data descriptors; ``force_zip64`` adds zip64 extra fields.
    """
    modes = modes or {}
    sink = io.BytesIO()
    target = _Unseekable(sink) if streamed else sink
    with zipfile.ZipFile(target, "w", compression) as archive:  # type: ignore[arg-type]
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            default = 0o40755 if name.endswith("/") else 0o100644
            info.external_attr = modes.get(name, default) << 16
            info.create_system = 3
            if name.endswith("/"):
                archive.writestr(info, b"")
                continue
            info.compress_type = compression
            with archive.open(info, "w", force_zip64=force_zip64) as out:
                out.write(data)
    path.write_bytes(sink.getvalue())
    return path


class _Unseekable:
    """A write-only stream: zipfile then streams entries with data descriptors."""

    def __init__(self, sink: io.BytesIO) -> None:
        self._sink = sink

    def write(self, data: bytes) -> int:
        return self._sink.write(data)

    def flush(self) -> None:
        pass


# -- whole wheels with a correct RECORD -----------------------------------------------------------


def record_hash(data: bytes, hash_name: str = "sha256") -> str:
    """``sha256=<urlsafe base64 without padding>``, as a RECORD row spells a hash."""
    digest = hashlib.new(hash_name, data).digest()
    return f"{hash_name}=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def record_row(path: str, data: bytes, hash_name: str = "sha256") -> tuple[str, str, str]:
    return path, record_hash(data, hash_name), str(len(data))


def record_bytes(rows: Iterable[tuple[str, str, str]]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def with_record(
    files: Mapping[str, bytes], dist_info: str, hash_name: str = "sha256"
) -> dict[str, bytes]:
    """*files* plus a RECORD at ``<dist_info>/RECORD`` listing every one of them correctly."""
    rows = [record_row(name, data, hash_name) for name, data in files.items()]
    rows.append((f"{dist_info}/RECORD", "", ""))
    return {**files, f"{dist_info}/RECORD": record_bytes(rows)}


def wheel_files(
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    data: Mapping[str, bytes] | None = None,
    entry_points: str | None = None,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    tag: str = "py3-none-any",
    purelib: bool = True,
) -> dict[str, bytes]:
    """Everything a valid wheel holds: *files* at the root, *data* below ``.data/``, and
    METADATA, WHEEL, entry_points.txt and a correct RECORD in ``.dist-info``."""
    dist_info = f"{name}-{version}.dist-info"
    content = dict(files)
    for key, value in (data or {}).items():
        content[f"{name}-{version}.data/{key}"] = value
    metadata = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name} for tests\n"
    )
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    if requires_python is not None:
        metadata += f"Requires-Python: {requires_python}\n"
    content[f"{dist_info}/METADATA"] = metadata.encode()
    content[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {str(purelib).lower()}\n"
        f"Tag: {tag}\n"
    ).encode()
    if entry_points is not None:
        content[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    return with_record(content, dist_info)


def build_wheel(
    directory: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    modes: Mapping[str, int] | None = None,
    tag: str = "py3-none-any",
    **kwargs: Any,
) -> Path:
    """A valid wheel file in *directory* (see :func:`wheel_files` for the keywords)."""
    directory.mkdir(parents=True, exist_ok=True)
    content = wheel_files(name, version, files, tag=tag, **kwargs)
    return make_wheel(directory / f"{name}-{version}-{tag}.whl", content, modes=modes)
