"""RECORD files: parsing, writing and hash checking (PEP 376 / PEP 627; the
"Recording installed projects" specification). Pure: no disk access."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ACCEPTED_HASHES",
    "RecordEntry",
    "parse_record",
    "format_record",
    "encode_digest",
    "decode_hash",
    "hash_file",
]

# The wheel spec requires a hash from hashlib.algorithms_guaranteed that is sha256 or stronger;
# md5 and sha1 are refused (binary distribution format, "The .dist-info directory").
ACCEPTED_HASHES = ("sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b")


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One RECORD row: a '/'-separated path, and the hash and size when known."""

    path: str
    hash_name: str | None = None
    digest: bytes | None = None
    size: int | None = None

    @property
    def hash_text(self) -> str:
        if self.hash_name is None or self.digest is None:
            return ""
        return f"{self.hash_name}={encode_digest(self.digest)}"


def encode_digest(digest: bytes) -> str:
    """urlsafe base64 without padding, as RECORD wants it."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def decode_hash(text: str) -> tuple[str, bytes]:
    """``sha256=...`` -> ('sha256', digest); raises ValueError on anything malformed."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise ValueError(f"hash {text!r} is not of the form name=value")
    try:
        digest = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        raise ValueError(f"hash {text!r} is not urlsafe base64") from None
    if name in hashlib.algorithms_guaranteed and hashlib.new(name).digest_size != len(digest):
        raise ValueError(f"hash {text!r} has the wrong length for {name}")
    return name, digest


def parse_record(
    text: str, *, source: str = "RECORD", lenient: bool = False
) -> tuple[list[RecordEntry], list[str]]:
    """Parse RECORD text; returns (entries, problems). Every problem is reported, not the first.

    *lenient* (for installed RECORDs, where only the paths matter to uninstall) keeps a row
    with a malformed hash or size as a path-only entry instead of reporting it.
    """
    entries: list[RecordEntry] = []
    problems: list[str] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    for lineno, row in enumerate(reader, start=1):
        if not row:
            continue
        if len(row) != 3:
            problems.append(f"{source} line {lineno}: expected 3 fields, found {len(row)}")
            continue
        path, hash_text, size_text = row
        if not path:
            problems.append(f"{source} line {lineno}: empty path")
            continue
        hash_name: str | None = None
        digest: bytes | None = None
        size: int | None = None
        if hash_text:
            try:
                hash_name, digest = decode_hash(hash_text)
            except ValueError as exc:
                if not lenient:
                    problems.append(f"{source} line {lineno}: {exc}")
                    continue
        if size_text:
            if size_text.isdigit():
                size = int(size_text)
            elif not lenient:
                problems.append(f"{source} line {lineno}: size {size_text!r} is not a number")
                continue
        entries.append(RecordEntry(path, hash_name, digest, size))
    return entries, problems


def format_record(entries: Iterable[RecordEntry]) -> bytes:
    """RECORD bytes: csv rows with '\\n' endings, like pip and installer write them."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    for entry in entries:
        writer.writerow(
            (entry.path, entry.hash_text, "" if entry.size is None else str(entry.size))
        )
    return out.getvalue().encode("utf-8")


def hash_file(path: str, hash_name: str = "sha256") -> tuple[bytes, int]:
    """(digest, size) of the file at *path*, read in 1 MiB chunks."""
    digest = hashlib.new(hash_name)
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size
