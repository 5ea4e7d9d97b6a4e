"""Tests for stalwart.wheel.archive: honest wheels read back exactly, hostile ones are refused.

Archives are built for real (see ``wheelfactory``), either by :mod:`zipfile` or byte by byte.
Files live in directories from ``tmp_path_factory`` whose names do not contain the test id, so
a ``match=`` pattern can never be satisfied by the path in the message by accident.
"""

from __future__ import annotations

import hashlib
import random
import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stalwart.errors import UnsafeArchiveError, WheelError
from stalwart.wheel import archive
from stalwart.wheel.archive import Entry, Limits, WheelArchive
from wheelfactory import (
    DEFLATED,
    LOCAL,
    MAX32,
    STORED,
    Member,
    build_zip,
    local_record,
    make_wheel,
    zip_bytes,
)

MiB = 1024 * 1024


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zips")


def ok(name: str | bytes = "a.txt", data: bytes = b"hello, world", **changes: object) -> Member:
    """An honest member, with some fields overridden to make it dishonest."""
    return replace(Member(name, data), **changes)  # type: ignore[arg-type]


def dir_member(name: str) -> Member:
    return Member(name, b"", method=STORED, unix_mode=0o40755)


def good_zip() -> bytes:
    return zip_bytes([ok("pkg/__init__.py", b"x = 1\n" * 50), ok("pkg/data.bin", b"\x00" * 300)])


# -- honest archives ---------------------------------------------------------------------------

FILES = {
    "pkg/": b"",
    "pkg/__init__.py": b"from .core import main\n",
    "pkg/core.py": b"def main() -> None:\n    print('hi')\n" * 200,
    "pkg/bin/tool": b"#!/bin/sh\necho tool\n",
    "pkg/empty.txt": b"",
    "pkg/caf\u00e9.txt": b"non-ascii name",
    "pkg-1.0.dist-info/RECORD": b"",
}
MODES = {"pkg/bin/tool": 0o100755}


@pytest.mark.parametrize(
    "writer",
    [
        {},
        {"streamed": True},
        {"force_zip64": True},
        {"streamed": True, "force_zip64": True},
        {"compression": zipfile.ZIP_STORED},
        {"compression": zipfile.ZIP_STORED, "streamed": True},
    ],
    ids=["deflated", "descriptors", "zip64", "zip64-descriptors", "stored", "stored-descriptors"],
)
def test_reads_what_zipfile_writes(workdir: Path, writer: dict[str, object]) -> None:
    path = make_wheel(workdir / "pkg.whl", FILES, modes=MODES, **writer)  # type: ignore[arg-type]
    with WheelArchive(path) as wheel:
        assert [e.name for e in wheel.entries] == list(FILES)
        for name, data in FILES.items():
            entry = wheel.get(name)
            assert entry is not None
            assert entry.is_dir == name.endswith("/")
            assert entry.size == len(data)
            assert entry.crc == zlib.crc32(data)
            assert wheel.read(name) == data
        assert wheel.get("pkg/bin/tool") == Entry(
            "pkg/bin/tool",
            len(FILES["pkg/bin/tool"]),
            wheel.entries[3].compressed_size,
            zlib.crc32(FILES["pkg/bin/tool"]),
            0o755,
            False,
        )
        assert {e.name: e.mode for e in wheel.entries}["pkg/"] == 0o755
        assert {e.name: e.mode for e in wheel.entries}["pkg/core.py"] == 0o644
        assert wheel.get("missing") is None


@pytest.mark.parametrize(
    "member",
    [
        Member("a", b"abc" * 1000),
        Member("a", b"abc" * 1000, method=STORED),
        Member("a", b"abc" * 1000, descriptor=True),
        Member("a", b"abc" * 1000, descriptor=True, descriptor_signature=False),
        Member("a", b"abc" * 1000, zip64=True),
        Member("a", b"abc" * 1000, zip64=True, descriptor=True),
        Member("a", b"abc" * 1000, zip64=True, descriptor=True, descriptor_signature=False),
    ],
    ids=["deflated", "stored", "dd", "dd-nosig", "zip64", "zip64-dd", "zip64-dd-nosig"],
)
@pytest.mark.parametrize("zip64_end", [False, True], ids=["end", "zip64-end"])
def test_reads_hand_built_variants(workdir: Path, member: Member, zip64_end: bool) -> None:
    second = replace(member, name="b/c.txt", data=b"second")
    path = build_zip(workdir / "v.whl", [member, second], zip64_end=zip64_end)
    with zipfile.ZipFile(path) as reference:  # the factory itself writes valid zips
        assert reference.testzip() is None
    with WheelArchive(path) as wheel:
        assert wheel.read("a") == b"abc" * 1000
        assert wheel.read("b/c.txt") == b"second"


def test_mode_is_none_without_unix_attributes(workdir: Path) -> None:
    path = build_zip(workdir / "m.whl", [ok("a.txt", unix_mode=None), ok("b", unix_mode=0o100700)])
    with WheelArchive(path) as wheel:
        assert [e.mode for e in wheel.entries] == [None, 0o700]


def test_empty_archive_and_comment_are_fine(workdir: Path) -> None:
    with WheelArchive(build_zip(workdir / "e.whl", [])) as wheel:
        assert wheel.entries == ()
    with WheelArchive(build_zip(workdir / "c.whl", {"a": b"1"}, comment=b"made by hand")) as wheel:
        assert wheel.read("a") == b"1"


def test_small_compressible_entries_pass_default_ratio(workdir: Path) -> None:
    path = build_zip(workdir / "z.whl", {"zeros": bytes(MiB)})  # exactly 1 MiB: not checked
    with WheelArchive(path) as wheel:
        assert wheel.read("zeros") == bytes(MiB)


@pytest.mark.parametrize("method", [STORED, DEFLATED])
@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "md5"])
def test_copy_to_streams_and_hashes(workdir: Path, method: int, hash_name: str) -> None:
    data = random.Random(7).randbytes(3 * MiB + 123)  # several chunks
    path = build_zip(workdir / "h.whl", [Member("big.bin", data, method=method)])
    chunks: list[bytes] = []
    with WheelArchive(path) as wheel:
        entry = wheel.get("big.bin")
        assert entry is not None
        digest, size = wheel.copy_to(entry, chunks.append, hash_name)
    assert size == len(data)
    assert digest == hashlib.new(hash_name, data).digest()
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= archive.CHUNK_SIZE


@pytest.mark.parametrize(
    ("data", "chunk"),
    [
        (b"abcd" * 100_000, 4096),
        # zlib swallows all input here while output is still pending at a chunk boundary
        (b"abcd" * 2_500, 256),
        (bytes(range(256)) * 40, 1000),
    ],
    ids=["large", "pending-output", "odd-chunk"],
)
def test_inflate_is_bounded_by_chunk_size(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, chunk: int
) -> None:
    """Highly compressible data must come out in small steps, never all at once."""
    monkeypatch.setattr(archive, "CHUNK_SIZE", chunk)
    path = build_zip(workdir / "s.whl", [Member("s", data)])
    chunks: list[bytes] = []
    with WheelArchive(path) as wheel:
        entry = wheel.entries[0]
        digest, size = wheel.copy_to(entry, chunks.append)
    assert (digest, size) == (hashlib.sha256(data).digest(), len(data))
    assert max(len(c) for c in chunks) <= chunk
    assert len(chunks) >= len(data) // chunk


@pytest.mark.parametrize("pread", [True, False], ids=["pread", "seek-under-lock"])
def test_copy_to_from_many_threads(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, pread: bool
) -> None:
    monkeypatch.setattr(archive, "_HAS_PREAD", pread)  # False: the Windows code path
    rng = random.Random(3)
    files = {f"pkg/f{i}.bin": rng.randbytes(200_000 + i) for i in range(12)}
    path = make_wheel(workdir / "t.whl", files, compression=zipfile.ZIP_STORED)

    with WheelArchive(path) as wheel:

        def copy(entry: Entry) -> tuple[str, bytes, int, bytes]:
            parts: list[bytes] = []
            digest, size = wheel.copy_to(entry, parts.append)
            return entry.name, digest, size, b"".join(parts)

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(copy, wheel.entries * 3))
    for name, digest, size, data in results:
        assert data == files[name]
        assert (digest, size) == (hashlib.sha256(files[name]).digest(), len(files[name]))


def test_lookup_errors_and_close(workdir: Path) -> None:
    path = build_zip(workdir / "l.whl", {"a": b"1"})
    wheel = WheelArchive(path)
    with pytest.raises(KeyError):
        wheel.read("b")
    with pytest.raises(KeyError):
        wheel.copy_to(Entry("a", 2, 2, 0, None, False), lambda _: None)
    wheel.close()
    wheel.close()
    with pytest.raises(ValueError, match="closed"):
        wheel.read("a")


def test_reading_never_writes(workdir: Path) -> None:
    path = make_wheel(workdir / "r.whl", FILES, modes=MODES)
    before = (sorted(workdir.iterdir()), path.stat().st_mtime_ns, path.read_bytes())
    with WheelArchive(path) as wheel:
        for entry in wheel.entries:
            wheel.copy_to(entry, lambda _: None)
    assert (sorted(workdir.iterdir()), path.stat().st_mtime_ns, path.read_bytes()) == before


# -- hostile archives: refused up front -----------------------------------------------------------


def _overlapping() -> bytes:
    """Entry b's local header lives inside entry a's data: two entries share bytes."""
    inner = Member("b.txt", b"shared bytes", method=STORED)
    outer = Member("a.txt", local_record(inner), method=STORED)
    ghost = replace(inner, write_local=False, offset=LOCAL.size + len("a.txt"))
    return zip_bytes([outer, ghost])


def _truncated_middle() -> bytes:
    data = good_zip()
    return data[:40] + data[60:]


def _unicode_path_extra(name: str, claimed: str) -> bytes:
    body = b"\x01" + struct.pack("<L", zlib.crc32(name.encode())) + claimed.encode()
    return struct.pack("<HH", 0x7075, len(body)) + body


Case = tuple[Callable[[], bytes], Limits | None, str]

HOSTILE: dict[str, Case] = {
    # structure
    "not-a-zip": (lambda: b"definitely not a zip archive, just text\n" * 3, None, r"not a zip"),
    "empty-file": (lambda: b"", None, r"not a zip"),
    "truncated-tail": (lambda: good_zip()[:-10], None, r"truncated: no end of central dir"),
    "truncated-middle": (_truncated_middle, None, r"central directory overruns.*truncated"),
    "trailing-garbage": (lambda: good_zip() + b"garbage", None, r"7 bytes of trailing data"),
    "prepended-data": (
        lambda: zip_bytes({"a.txt": b"x"}, prefix=b"MZ" + bytes(30)),
        None,
        r"32 bytes at offset 0 belong to no entry \(before entry 'a\.txt'\)",
    ),
    "gap-between-entries": (
        lambda: zip_bytes([ok("a.txt", after=b"JUNK"), ok("b.txt")]),
        None,
        r"4 bytes at offset \d+ belong to no entry \(before entry 'b\.txt'\)",
    ),
    "hidden-entry": (
        lambda: zip_bytes([ok("a.txt"), ok("b.txt")], count=1),
        None,
        r"bytes at the end of the central directory belong to no entry",
    ),
    "gap-before-end-record": (
        lambda: zip_bytes([ok()], cd_trailer=b"hidden"),
        None,
        r"6 bytes between the central directory and the end records",
    ),
    "overlapping-entries": (_overlapping, None, r"entry 'b\.txt': overlaps entry 'a\.txt'"),
    "comment-with-end-signature": (
        lambda: zip_bytes([ok()], comment=b"PK\x05\x06"),
        None,
        r"comment contains an end of central directory signature",
    ),
    "zip64-end-disagrees": (
        lambda: zip_bytes([ok(), ok("b.txt")], zip64_end=True, count=2, zip64_count=1),
        None,
        r"zip64 and legacy end of central directory records disagree on the entry count",
    ),
    "zip64-extra-missing": (
        lambda: zip_bytes([ok(size=MAX32)]),
        None,
        r"entry 'a\.txt': zip64 extra field is missing or too short for its size",
    ),
    "no-local-header": (
        lambda: zip_bytes([ok(), ok("b.txt", offset=3)]),
        None,
        r"entry 'b\.txt': no local header at offset 3",
    ),
    "duplicate-name": (
        lambda: zip_bytes([ok("a.txt", b"one"), ok("a.txt", b"two")]),
        None,
        r"entry 'a\.txt': duplicate entry name",
    ),
    # local header vs central directory
    "local-name": (
        lambda: zip_bytes([ok(local_name=b"b.txt")]),
        None,
        r"entry 'a\.txt': local header has a different name \(b'b\.txt'\)",
    ),
    "local-method": (
        lambda: zip_bytes([ok(local_method=STORED)]),
        None,
        r"entry 'a\.txt': local header says compression method 0, central directory says 8",
    ),
    "local-size": (
        lambda: zip_bytes([ok(local_size=4)]),
        None,
        r"entry 'a\.txt': local header says size 4, central directory says 12",
    ),
    "local-compressed-size": (
        lambda: zip_bytes([ok(local_compressed_size=1)]),
        None,
        r"entry 'a\.txt': local header says compressed size 1, central directory says 14",
    ),
    "local-crc": (
        lambda: zip_bytes([ok(local_crc=0xDEAD)]),
        None,
        r"entry 'a\.txt': local header says CRC-32 0x0000dead, central directory says 0xffab723a",
    ),
    "local-flags": (
        lambda: zip_bytes([ok(local_flags=0x0800)]),
        None,
        r"entry 'a\.txt': local header flags 0x0800 contradict",
    ),
    "descriptor-disagrees": (
        lambda: zip_bytes([ok(descriptor=True, descriptor_values=(1, 2, 3))]),
        None,
        r"entry 'a\.txt': data descriptor contradicts the central directory",
    ),
    # entry kinds and flags
    "encrypted": (lambda: zip_bytes([ok(flags=1)]), None, r"entry 'a\.txt': is encrypted"),
    "symlink": (
        lambda: zip_bytes([ok("pkg/link", b"/etc/passwd", unix_mode=0o120777)]),
        None,
        r"entry 'pkg/link': is a symbolic link",
    ),
    "fifo": (
        lambda: zip_bytes([ok("pkg/fifo", b"", unix_mode=0o010644)]),
        None,
        r"entry 'pkg/fifo': is a special file",
    ),
    "dir-mode-on-file": (
        lambda: zip_bytes([ok("pkg", unix_mode=0o040755)]),
        None,
        r"entry 'pkg': file type in its attributes contradicts its name",
    ),
    "directory-with-content": (
        lambda: zip_bytes([ok("pkg/", b"abc", method=STORED, unix_mode=0o040755)]),
        None,
        r"entry 'pkg/': directory entry has content",
    ),
    "unsupported-method": (
        lambda: zip_bytes([ok(method=12, payload=b"BZh91AY&SY")]),
        None,
        r"entry 'a\.txt': uses unsupported compression method 12",
    ),
    "stored-sizes-differ": (
        lambda: zip_bytes([ok(method=STORED, size=99)]),
        None,
        r"entry 'a\.txt': is stored but its compressed size \(12\) differs",
    ),
    "malformed-extra": (
        lambda: zip_bytes([ok(extra=b"\x01\x00\x10")]),
        None,
        r"entry 'a\.txt': malformed extra field in central directory",
    ),
    "unicode-path-extra": (
        lambda: zip_bytes([ok(extra=_unicode_path_extra("a.txt", "../evil.txt"))]),
        None,
        r"entry 'a\.txt': Unicode Path extra field gives it a different name",
    ),
    "bad-utf8": (
        lambda: zip_bytes([ok(b"a\xff.txt", flags=0x0800)]),
        None,
        r"entry 'a\ufffd\.txt': name b'a\\xff\.txt' is flagged UTF-8 but is not",
    ),
    # names
    "absolute": (
        lambda: zip_bytes([ok("/etc/passwd")]),
        None,
        r"entry '/etc/passwd': is an absolute path",
    ),
    "absolute-backslash": (
        lambda: zip_bytes([ok("\\evil.py")]),
        None,
        r"entry '\\\\evil\.py': is an absolute path",
    ),
    "backslash": (
        lambda: zip_bytes([ok("pkg\\..\\evil.py")]),
        None,
        r"entry 'pkg\\\\\.\.\\\\evil\.py': name contains a backslash",
    ),
    "drive-letter": (
        lambda: zip_bytes([ok("C:/Windows/evil.dll")]),
        None,
        r"entry 'C:/Windows/evil\.dll': starts with a drive letter",
    ),
    "ntfs-stream": (
        lambda: zip_bytes([ok("pkg/a.py:hidden")]),
        None,
        r"entry 'pkg/a\.py:hidden': name contains a colon",
    ),
    "dotdot": (
        lambda: zip_bytes([ok("pkg/../../evil.py")]),
        None,
        r"entry 'pkg/\.\./\.\./evil\.py': has a '\.\.' path component",
    ),
    "dot": (
        lambda: zip_bytes([ok("./pkg/a.py")]),
        None,
        r"entry '\./pkg/a\.py': has a '\.' path component",
    ),
    "empty-component": (
        lambda: zip_bytes([ok("pkg//a.py")]),
        None,
        r"entry 'pkg//a\.py': has an empty path component",
    ),
    "nul": (
        lambda: zip_bytes([ok("pkg/a\x00.py")]),
        None,
        r"entry 'pkg/a\\x00\.py': name contains a control character",
    ),
    "escape-sequence": (
        lambda: zip_bytes([ok("pkg/\x1b[31mred.py")]),
        None,
        r"entry 'pkg/\\x1b\[31mred\.py': name contains a control character",
    ),
    "delete-char": (
        lambda: zip_bytes([ok("pkg/a\x7f.py")]),
        None,
        r"name contains a control character",
    ),
    "case-collision": (
        lambda: zip_bytes([ok("pkg/Readme.txt"), ok("pkg/README.TXT")]),
        None,
        r"entry 'pkg/README\.TXT': collides case-insensitively with 'pkg/Readme\.txt'",
    ),
    "normalization-collision": (
        lambda: zip_bytes([ok("caf\u00e9.py"), ok("cafe\u0301.py")]),
        None,
        r"collides case-insensitively with 'caf\u00e9\.py'",
    ),
    "file-dir-prefix": (
        lambda: zip_bytes([ok("pkg"), ok("pkg/a.py")]),
        None,
        r"entry 'pkg/a\.py': needs 'pkg' to be a directory, but it is a file",
    ),
    "file-dir-prefix-case": (
        lambda: zip_bytes([ok("lib/PKG"), ok("lib/pkg/sub/a.py")]),
        None,
        r"entry 'lib/pkg/sub/a\.py': needs 'lib/PKG' to be a directory",
    ),
    "file-and-dir-entry": (
        lambda: zip_bytes([ok("pkg"), dir_member("PKG/")]),
        None,
        r"entry 'PKG/': file and directory collide with 'pkg'",
    ),
    "reserved-con": (
        lambda: zip_bytes([ok("pkg/CON.txt")]),
        None,
        r"entry 'pkg/CON\.txt': component 'CON\.txt' is a reserved Windows device name",
    ),
    "reserved-aux-dir": (
        lambda: zip_bytes([ok("aux/x.py")]),
        None,
        r"component 'aux' is a reserved Windows device name",
    ),
    "reserved-com1": (
        lambda: zip_bytes([ok("pkg/com1.tar.gz")]),
        None,
        r"component 'com1\.tar\.gz' is a reserved Windows device name",
    ),
    "reserved-lpt9": (
        lambda: zip_bytes([ok("Lpt9")]),
        None,
        r"component 'Lpt9' is a reserved Windows device name",
    ),
    "trailing-dot": (
        lambda: zip_bytes([ok("pkg./a.py")]),
        None,
        r"entry 'pkg\./a\.py': component 'pkg\.' ends with a dot or space",
    ),
    "trailing-space": (
        lambda: zip_bytes([ok("pkg /a.py")]),
        None,
        r"component 'pkg ' ends with a dot or space",
    ),
    # limits
    "zip-bomb-ratio": (
        lambda: zip_bytes([ok("bomb.bin", bytes(2 * MiB))]),
        Limits(max_ratio=200),
        r"entry 'bomb\.bin': compression ratio \d+ exceeds the limit of 200",
    ),
    "zip-bomb-custom-ratio": (
        lambda: zip_bytes([ok("text.txt", b"0123456789abcdef" * 100_000)]),
        Limits(max_ratio=5),
        r"entry 'text\.txt': compression ratio \d+ exceeds the limit of 5",
    ),
    "entry-size-cap": (
        lambda: zip_bytes([ok(data=bytes(100))]),
        Limits(max_entry_size=50),
        r"entry 'a\.txt': is 100 bytes uncompressed, over the per-entry size limit of 50",
    ),
    "total-size-cap": (
        lambda: zip_bytes([ok("a", bytes(100)), ok("b", bytes(100))]),
        Limits(max_total_size=150),
        r"entries add up to 200 bytes uncompressed, over the total size limit of 150",
    ),
    "entry-count-cap": (
        lambda: zip_bytes([ok("a"), ok("b"), ok("c")]),
        Limits(max_entries=2),
        r"archive declares 3 entries, over the limit of 2",
    ),
}


@pytest.mark.parametrize(("make", "limits", "pattern"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_archive_is_refused(
    workdir: Path, make: Callable[[], bytes], limits: Limits | None, pattern: str
) -> None:
    path = workdir / "hostile.whl"
    path.write_bytes(make())
    with pytest.raises(UnsafeArchiveError, match=pattern) as info:
        WheelArchive(path, limits or Limits()).close()
    assert info.value.wheel == str(path)
    assert any(re.search(pattern, p) for p in info.value.problems), info.value.problems


def test_all_problems_are_reported_at_once(workdir: Path) -> None:
    members = [
        ok("../evil.py"),
        ok("C:/evil.py"),
        ok("pkg\\evil.py"),
        ok("dup.py"),
        ok("dup.py"),
        ok("secret.py", flags=1),
        ok("link", unix_mode=0o120777),
    ]
    path = build_zip(workdir / "multi.whl", members, trailing=b"junk")
    with pytest.raises(UnsafeArchiveError) as info:
        WheelArchive(path)
    problems = info.value.problems
    expected = [
        r"4 bytes of trailing data",
        r"'\.\./evil\.py': has a '\.\.' path component",
        r"'C:/evil\.py': starts with a drive letter",
        r"'pkg\\\\evil\.py': name contains a backslash",
        r"'dup\.py': duplicate entry name",
        r"'secret\.py': is encrypted",
        r"'link': is a symbolic link",
    ]
    for pattern in expected:
        assert any(re.search(pattern, p) for p in problems), (pattern, problems)
    assert len(problems) == len(expected)
    message = str(info.value)
    assert message.startswith(f"{path}: {len(expected)} problems:")
    assert isinstance(info.value, WheelError)
    assert isinstance(info.value, ValueError)


# -- hostile content: found while streaming -------------------------------------------------------

STREAM_FAILURES: dict[str, tuple[Member, str]] = {
    "crc-deflated": (ok(crc=0x12345678), r"entry 'a\.txt': CRC-32 mismatch"),
    "crc-stored": (ok(method=STORED, crc=0x12345678), r"entry 'a\.txt': CRC-32 mismatch"),
    "inflates-past-declared-size": (
        ok(data=bytes(500_000), size=10),
        r"entry 'a\.txt': content exceeds its declared size of 10 bytes",
    ),
    "shorter-than-declared": (
        ok(data=b"abc", size=100),
        r"entry 'a\.txt': content is 3 bytes, declared 100",
    ),
    "corrupt-deflate": (
        ok(payload=b"\xff\xff\xff\xff\xff"),
        r"entry 'a\.txt': corrupt deflate data",
    ),
    "truncated-deflate": (
        ok(payload=zlib.compress(b"hello" * 1000)[2:-30]),
        r"entry 'a\.txt': (deflate stream is truncated|corrupt deflate data)",
    ),
    "data-after-deflate-stream": (
        ok(payload=zlib.compressobj(9, zlib.DEFLATED, -15).compress(b"hi") + b"\x03\x00junk"),
        r"entry 'a\.txt': compressed data continues past its deflate stream",
    ),
}


@pytest.mark.parametrize(
    ("member", "pattern"), STREAM_FAILURES.values(), ids=STREAM_FAILURES.keys()
)
def test_content_is_verified_while_reading(workdir: Path, member: Member, pattern: str) -> None:
    path = build_zip(workdir / "c.whl", [member])
    with WheelArchive(path) as wheel:  # the structure itself is consistent
        entry = wheel.entries[0]
        with pytest.raises(UnsafeArchiveError, match=pattern):
            wheel.read(entry.name)
        with pytest.raises(UnsafeArchiveError, match=pattern):
            wheel.copy_to(entry, lambda _: None)


def test_lying_size_does_not_inflate_everything(workdir: Path) -> None:
    """A header declaring a few bytes over a 64 MiB bomb stops after the first chunk."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(bytes(64 * MiB)) + bomb.flush()
    path = build_zip(workdir / "b.whl", [Member("x", b"", payload=payload, size=10, crc=0)])
    written: list[int] = []
    with WheelArchive(path) as wheel, pytest.raises(UnsafeArchiveError, match="declared size"):
        wheel.copy_to(wheel.entries[0], lambda chunk: written.append(len(chunk)))
    assert written == []


# -- property: any valid names and contents round-trip --------------------------------------------

RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{d}{n}" for d in ("COM", "LPT") for n in "123456789\u00b9\u00b2\u00b3"
}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def _good_component(part: str) -> bool:
    return part[-1] != "." and part.split(".", 1)[0].upper() not in RESERVED


components = st.text(
    alphabet=st.characters(codec="utf-8", categories=("Ll", "Lu", "Nd")) | st.sampled_from("_-.+"),
    min_size=1,
    max_size=8,
).filter(_good_component)
paths = st.lists(components, min_size=1, max_size=4).map("/".join)


def _no_collisions(names: list[str]) -> bool:
    folded = [_fold(n) for n in names]
    parents = {"/".join(f.split("/")[:i]) for f in folded for i in range(1, f.count("/") + 1)}
    return len(set(folded)) == len(folded) and not parents & set(folded)


@settings(max_examples=60, deadline=None, database=None)
@given(
    names=st.lists(paths, min_size=1, max_size=8).filter(_no_collisions),
    blobs=st.lists(st.binary(max_size=3000), min_size=8, max_size=8),
    compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
    streamed=st.booleans(),
)
def test_valid_archives_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    names: list[str],
    blobs: list[bytes],
    compression: int,
    streamed: bool,
) -> None:
    files = dict(zip(names, blobs, strict=False))
    path = make_wheel(
        tmp_path_factory.mktemp("prop") / "p.whl", files, compression=compression, streamed=streamed
    )
    with WheelArchive(path) as wheel:
        assert [e.name for e in wheel.entries] == names
        for entry in wheel.entries:
            data = files[entry.name]
            assert wheel.read(entry.name) == data
            parts: list[bytes] = []
            assert wheel.copy_to(entry, parts.append) == (hashlib.sha256(data).digest(), len(data))
            assert b"".join(parts) == data
