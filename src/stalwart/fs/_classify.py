"""Which OS errors are lock episodes worth waiting out, and which are real.

Pure functions: the retry loop asks, tests call them with fabricated errors. Windows codes are
read from ``OSError.winerror``, so the Windows table is exercised on Linux too.
"""

from __future__ import annotations

import enum
import errno

__all__ = [
    "Op",
    "Target",
    "Transience",
    "classify",
    "WIN_ACCESS_DENIED",
    "WIN_SHARING_VIOLATION",
    "WIN_LOCK_VIOLATION",
    "WIN_USER_MAPPED_FILE",
    "WIN_DIR_NOT_EMPTY",
]

# https://learn.microsoft.com/windows/win32/debug/system-error-codes
WIN_ACCESS_DENIED = 5  # delete-pending file, file mapped by a scanner, or a real ACL denial
WIN_SHARING_VIOLATION = 32  # another handle was opened without FILE_SHARE_DELETE/WRITE
WIN_LOCK_VIOLATION = 33  # a byte-range lock
WIN_USER_MAPPED_FILE = 1224  # a section (memory map) is open on the file
WIN_DIR_NOT_EMPTY = 145  # a child is still delete-pending while a scanner holds it


class Op(enum.StrEnum):
    """Kinds of mutation; used for fault injection, statistics and messages."""

    REPLACE = "replace"
    RENAME = "rename"
    LINK = "link"
    COPY = "copy"
    OPEN = "open"
    WRITE = "write"
    UNLINK = "unlink"
    RMDIR = "rmdir"
    MKDIR = "mkdir"
    CHMOD = "chmod"


class Target(enum.Enum):
    """What the path an operation failed on is, as far as the retry loop could tell."""

    FILE = "file"  # a regular file that is not read-only
    OWN_FILE = "own-file"  # a file this process created moments ago (staged, temporary, ...)
    READONLY_FILE = "readonly-file"
    DIRECTORY = "directory"
    EMPTIED_DIRECTORY = "emptied-directory"  # rmtree has just removed everything in it
    MISSING = "missing"
    UNKNOWN = "unknown"


class Transience(enum.Enum):
    """How long an error deserves to be waited for."""

    PERMANENT = "permanent"  # raise at once, unchanged
    TRANSIENT = "transient"  # a lock episode: retry up to the full budget
    BRIEF = "brief"  # plausibly transient, but could be real: retry only briefly


_DIRECTORY_REMOVAL = frozenset({Op.RMDIR})
_POSIX_TRANSIENT = frozenset({errno.EBUSY, errno.ETXTBSY})
_POSIX_BRIEF = frozenset({errno.EMFILE, errno.ENFILE})
_NOT_EMPTY = frozenset({errno.ENOTEMPTY, errno.EEXIST})


def classify(exc: OSError, op: Op, target: Target = Target.UNKNOWN) -> Transience:
    """Decide whether *exc*, raised by *op* on *target*, is worth retrying.

    ``winerror`` wins when present: on Windows it is the precise code, and errno is only its lossy
    translation (5, 32 and 33 all become EACCES).
    """
    winerror = getattr(exc, "winerror", None)
    if winerror is not None:
        return _classify_windows(winerror, op, target)
    code = exc.errno
    if target is Target.EMPTIED_DIRECTORY and op in _DIRECTORY_REMOVAL and code in _NOT_EMPTY:
        # Every entry was just removed, yet the directory is "not empty": an NFS client's
        # silly-renamed .nfsXXXX file for a handle still open elsewhere, gone once it closes.
        return Transience.TRANSIENT
    if code in _POSIX_TRANSIENT:
        return Transience.TRANSIENT
    if code in _POSIX_BRIEF:
        # Too many open files clears when our own worker threads close theirs.
        return Transience.BRIEF
    # EACCES/EPERM on POSIX are real permission problems: never retried.
    return Transience.PERMANENT


def _classify_windows(winerror: int, op: Op, target: Target) -> Transience:
    if winerror in (WIN_SHARING_VIOLATION, WIN_LOCK_VIOLATION, WIN_USER_MAPPED_FILE):
        return Transience.TRANSIENT
    if winerror == WIN_DIR_NOT_EMPTY:
        return Transience.TRANSIENT if op in _DIRECTORY_REMOVAL else Transience.PERMANENT
    if winerror == WIN_ACCESS_DENIED:
        # Access denied is what a delete-pending or scanner-mapped *file* gives, but it is also
        # a real ACL denial or a directory in the way. No ACL can have denied us a file we
        # created moments ago: on one of those it is a scanner (the founding failure: an EDR
        # holding a freshly written launcher), worth the full budget. On any other plain file
        # whose read-only attribute we already cleared it is worth a brief wait (uv retries
        # code 5 for its full budget on every file: astral-sh/uv#9216).
        if target is Target.OWN_FILE:
            return Transience.TRANSIENT
        if target is Target.FILE:
            return Transience.BRIEF
        return Transience.PERMANENT
    return Transience.PERMANENT
