"""RECORD files: parsing, writing and hash checking (PEP 376 / PEP 627; the
"Recording installed projects" specification). Pure: no disk access except :func:`hash_file`.

RECORD is attacker-controlled in both places it is read: inside a wheel (read strictly: every
broken rule is a problem that refuses the wheel) and in an installed ``.dist-info`` (read
leniently: a row that cannot be trusted in full is kept for its path, and only rows with no
usable path are problems). Neither mode raises on any input.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from stalwart.errors import MAX_SHOWN, capped
from stalwart.hashnames import DIGEST_SIZES, STRONG

__all__ = [
    "ACCEPTED_HASHES",
    "UNKNOWN_HASH",
    "MAX_FIELD",
    "MAX_PROBLEMS",
    "RecordEntry",
    "parse_record",
    "format_record",
    "encode_digest",
    "decode_hash",
    "is_checkable",
    "hash_file",
]

# The wheel spec requires a hash from hashlib.algorithms_guaranteed that is sha256 or stronger;
# md5 and sha1 are refused (binary distribution format, "The .dist-info directory"). These are
# also the only names hash_file computes (see is_checkable).
ACCEPTED_HASHES = STRONG

UNKNOWN_HASH: Final = "unknown"
"""``hash_name`` of a lenient row whose hash field is present but unreadable: not checkable."""

MAX_FIELD: Final = 131072
"""Longest path a RECORD row may carry: the csv module's default field limit, past which pip and
installer cannot read a RECORD at all. This module applies it itself, so that its result never
depends on the process-wide ``csv.field_size_limit()``."""

MAX_PROBLEMS: Final = MAX_SHOWN
"""At most this many problems are returned, the last one counting the rest, so a RECORD of
200,000 bogus rows costs neither memory nor a huge message (errors show MAX_SHOWN anyway)."""

# name=digest: the name as hashlib spells algorithms, the digest urlsafe base64 ("nopad" says the
# spec; two "=" of padding are tolerated). base64's decoders skip characters outside the alphabet.
_HASH_NAME = re.compile(r"[a-z0-9_]{1,32}")
_HASH = re.compile(rf"({_HASH_NAME.pattern})=([A-Za-z0-9_-]+)={{0,2}}")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PAD = (b"", b"", b"==", b"=")  # by len(body) % 4
_MAX_HASH_TEXT = 256  # a 64-byte digest is 86 characters; room for unknown algorithms
# [0-9], not \d or str.isdigit(): those take '\u00b2' (int() fails) and '\u0661' (int() reads 1).
_SIZE = re.compile(r"[0-9]{1,20}")
_SHOWN = 60  # characters of a hostile field quoted in a problem

_FIELD_END = re.compile(r"[,\r\n]")  # what ends an unquoted field in csv's excel dialect


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One RECORD row: a '/'-separated path, and the hash and size when known.

    ``hash_name`` is ``None`` when the row has no hash (RECORD itself, ``.pyc`` files), and
    :data:`UNKNOWN_HASH` (``digest`` ``None``) when a lenient read found a hash it cannot decode.
    """

    path: str
    hash_name: str | None = None
    digest: bytes | None = None
    size: int | None = None

    @property
    def hash_text(self) -> str:
        if self.hash_name is None or self.digest is None:
            return ""
        return f"{self.hash_name}={encode_digest(self.digest)}"

    @property
    def checkable(self) -> bool:
        """Whether :func:`hash_file` can check the file against this row's hash."""
        return self.digest is not None and is_checkable(self.hash_name)


def is_checkable(hash_name: str | None) -> bool:
    """Whether :func:`hash_file` computes *hash_name*: a fixed-length hash the spec accepts.

    Call it before :func:`hash_file` with a name read from a RECORD: anything else (``md5``,
    ``shake_128``, ``foo``, :data:`UNKNOWN_HASH`) means "cannot check", not "changed".
    """
    return hash_name in ACCEPTED_HASHES


def encode_digest(digest: bytes) -> str:
    """urlsafe base64 without padding, as RECORD wants it."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def decode_hash(text: str) -> tuple[str, bytes]:
    """``sha256=...`` -> ('sha256', digest); raises ValueError on anything malformed.

    The name must be spelled like a hashlib name and the value must be urlsafe base64 (up to two
    ``=`` of padding are tolerated); a known fixed-length algorithm needs a digest of its length.
    Unknown names are returned as they are: whether one is acceptable is the caller's rule.
    """
    if len(text) > _MAX_HASH_TEXT:
        raise ValueError(f"hash is {len(text)} characters long, too long for any digest")
    match = _HASH.fullmatch(text)
    if match is None:
        name, sep, value = text.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"hash {_show(text)} is not of the form name=value")
        if not _HASH_NAME.fullmatch(name):
            raise ValueError(f"hash name {_show(name)} is not a hashlib algorithm name")
        raise ValueError(f"hash {_show(text)} is not urlsafe base64")
    name, body = match.group(1, 2)
    if len(body) % 4 == 1:  # 6 bits cannot end a byte
        raise ValueError(f"hash {_show(text)} is not urlsafe base64")
    # binascii directly: base64.urlsafe_b64decode costs twice as much per row.
    digest = binascii.a2b_base64(body.encode("ascii").translate(_TO_STANDARD) + _PAD[len(body) % 4])
    expected = DIGEST_SIZES.get(name)
    if expected is not None and len(digest) != expected:
        raise ValueError(
            f"hash {_show(text)} has the wrong length for {name} "
            f"({len(digest)} bytes, not {expected})"
        )
    return name, digest


def parse_record(
    text: str, *, source: str = "RECORD", lenient: bool = False
) -> tuple[list[RecordEntry], list[str]]:
    """Parse RECORD text; returns (entries, problems). Never raises.

    Strict (a wheel's RECORD): every row that breaks a rule is left out and named in a problem.
    *lenient* (an installed RECORD, where the paths matter most: they are what uninstall
    removes) keeps a row whose hash or size is unusable, with hash :data:`UNKNOWN_HASH` or size
    ``None``; only rows without a usable path are problems. At most :data:`MAX_PROBLEMS` are
    returned, the last one then counting those not listed.
    """
    try:
        return _parse(csv.reader(io.StringIO(text, newline="")), source, lenient)
    except csv.Error:
        # Only a field over csv.field_size_limit() gets here. That limit is process-wide state,
        # so it is left alone and the whole text is read again by a reader without one.
        return _parse(_rows_unlimited(text), source, lenient)


def _parse(
    rows: Iterable[list[str]], source: str, lenient: bool
) -> tuple[list[RecordEntry], list[str]]:
    entries: list[RecordEntry] = []
    problems: list[str] = []
    unlisted = 0
    for lineno, row in enumerate(rows, start=1):
        if not row:
            continue
        if len(row) != 3:
            problem = f"expected 3 fields (path, hash, size), found {len(row)}"
        else:
            path, hash_text, size_text = row
            if not path or len(path) > MAX_FIELD or "\x00" in path:
                problem = _path_problem(path)
            else:
                problem = None
                hash_name: str | None = None
                digest: bytes | None = None
                size: int | None = None
                if hash_text:
                    try:
                        hash_name, digest = decode_hash(hash_text)
                    except ValueError as exc:
                        problem = str(exc)
                        hash_name = UNKNOWN_HASH
                if size_text:
                    if _SIZE.fullmatch(size_text):
                        size = int(size_text)
                    elif problem is None:
                        problem = _size_problem(size_text)
                if problem is None or lenient:
                    entries.append(RecordEntry(path, hash_name, digest, size))
                    continue
        if len(problems) < MAX_PROBLEMS:
            problems.append(f"{source} line {lineno}: {problem}")
        else:
            unlisted += 1
    return entries, capped(problems, unlisted, source)


def _path_problem(path: str) -> str:
    """Why *path* cannot name a file, in either mode (other path rules belong to the caller)."""
    if not path:
        return "empty path"
    if len(path) > MAX_FIELD:
        return f"path is {len(path)} characters long, over the limit of {MAX_FIELD}"
    # No filesystem allows NUL in a name, and os.path functions raise ValueError on one.
    return f"path {_show(path)} contains a NUL character"


def _size_problem(size_text: str) -> str:
    if size_text.isascii() and size_text.isdigit():
        return f"size {_show(size_text)} is too large (more than 20 digits)"
    return f"size {_show(size_text)} is not a number: size must be ASCII digits"


def _show(value: str) -> str:
    """repr() of a possibly huge hostile field, cut to a readable length."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}... ({len(value)} characters)"


def _rows_unlimited(text: str) -> Iterator[list[str]]:
    """The rows ``csv.reader(io.StringIO(text, newline=""))`` reads, with no field size limit.

    The excel dialect, non-strict, as CPython's ``_csv.c`` applies it: a quote opens a quoted
    field only at the start of a field; ``""`` inside one is a quote; text after its closing quote
    is appended to the field; a quoted field may span lines, and end of input closes it. Physical
    lines end at ``\\r\\n``, ``\\r`` or ``\\n``; a line that starts with one is an empty row.
    Linear: each character is looked at by one ``find`` or ``search``.
    """
    pos, end = 0, len(text)
    while pos < end:
        fields: list[str] = []
        if text[pos] not in "\r\n":
            while True:
                if text.startswith('"', pos):
                    parts: list[str] = []
                    pos += 1
                    while True:
                        quote = text.find('"', pos)
                        chunk = text[pos:] if quote < 0 else text[pos:quote]
                        parts.append(chunk)
                        if quote < 0:
                            pos = end  # end of input inside quotes closes the field
                            break
                        pos = quote + 1
                        if not text.startswith('"', pos):
                            break
                        parts.append('"')
                        pos += 1
                    if pos < end and text[pos] not in ",\r\n":
                        stop = _field_end(text, pos)
                        parts.append(text[pos:stop])
                        pos = stop
                    fields.append("".join(parts))
                else:
                    stop = _field_end(text, pos)
                    fields.append(text[pos:stop])
                    pos = stop
                if not text.startswith(",", pos):
                    break
                pos += 1
        if pos < end:  # the line ending
            pos += 2 if text.startswith("\r\n", pos) else 1
        yield fields


def _field_end(text: str, pos: int) -> int:
    """Where the unquoted field at *pos* ends: the next comma or line break, or the end."""
    found = _FIELD_END.search(text, pos)
    return len(text) if found is None else found.start()


def format_record(entries: Iterable[RecordEntry]) -> bytes:
    """RECORD bytes: csv rows with '\\n' endings, like pip and installer write them.

    csv quotes a field holding the delimiter, a quote or a character of the line terminator:
    with '\\n' endings a bare '\\r' (legal in a POSIX file name) went out unquoted and read
    back as a line break. Such rows are written fully quoted; all others byte for byte as before.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    quoting = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for entry in entries:
        row = (entry.path, entry.hash_text, "" if entry.size is None else str(entry.size))
        (quoting if "\r" in entry.path else writer).writerow(row)
    return out.getvalue().encode("utf-8")


def hash_file(path: str, hash_name: str = "sha256") -> tuple[bytes, int]:
    """(digest, size) of the file at *path*, read in 1 MiB chunks.

    Raises ``ValueError`` for a *hash_name* that :func:`is_checkable` refuses: names come from
    RECORDs, and ``hashlib`` would raise ``ValueError`` (unknown name) or, for ``shake_*``,
    ``TypeError`` at the end. Check with :func:`is_checkable` first to report "cannot check".
    """
    if not is_checkable(hash_name):
        raise ValueError(
            f"cannot compute hash {hash_name!r}: only {', '.join(ACCEPTED_HASHES)} are supported"
        )
    digest = hashlib.new(hash_name)
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size
