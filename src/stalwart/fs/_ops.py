"""The public filesystem operations: the plain OS call first, the retry loop only on failure.

Each function is a thin ``try: <os call> except OSError: retry(...)``: when nothing is locked the
cost over calling ``os`` directly is one function call and one attribute lookup.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import sys
from types import TracebackType
from typing import Self

from stalwart.errors import LockTimeoutError

from . import _prims as P
from ._classify import Op, Target
from ._retry import _fresh, remember_fresh, retry

__all__ = [
    "StrPath",
    "WINDOWS",
    "TEMP_SUFFIX",
    "FileWriter",
    "replace",
    "rename",
    "write_atomic",
    "open_for_write",
    "copy",
    "link",
    "unlink",
    "rmdir",
    "rmtree",
    "makedirs",
    "chmod",
    "move_to_trash",
    "empty_trash",
    "rmdir_if_empty",
    "sync_directory",
    "temp_name",
    "clone",
    "set_times",
]

StrPath = str | os.PathLike[str]

#: Windows-only behaviour is switched on this one flag, so it is easy to find and to test.
WINDOWS = sys.platform == "win32"

#: Suffix of every temporary file the layer creates, so leftovers of a crash are recognisable.
TEMP_SUFFIX = ".stalwart-tmp"

_O_BINARY = getattr(os, "O_BINARY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_BINARY | _O_CLOEXEC
_CREATE_EXCL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY | _O_CLOEXEC
_counter = itertools.count()  # thread-safe in CPython: next() on a count is atomic

# Hard links are not always possible; these mean "copy instead", not "retry".
_LINK_FALLBACK_ERRNOS = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
)
# Windows: invalid function, not same device, too many links.
_LINK_FALLBACK_WINERRORS = frozenset({1, 17, 1142})


def _s(path: StrPath) -> str:
    return os.fspath(path)


def replace(src: StrPath, dst: StrPath) -> None:
    """Atomically rename *src* to *dst*, replacing *dst* if it exists (``os.replace``)."""
    try:
        P.replace(src, dst)
    except OSError as exc:
        retry(Op.REPLACE, (_s(src), _s(dst)), P.replace, exc, src, dst)
    if _s(src) in _fresh:  # our new file has a new name: still ours (_retry.remember_fresh)
        remember_fresh(_s(dst))


def _rename_no_clobber(src: StrPath, dst: StrPath) -> None:
    # Windows' MoveFileEx without MOVEFILE_REPLACE_EXISTING refuses an existing target by
    # itself. POSIX rename() clobbers, so look first; the window between the look and the
    # rename is closed by the environment lock every mutating command holds.
    if not WINDOWS and os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), _s(dst))
    P.rename(src, dst)


def rename(src: StrPath, dst: StrPath) -> None:
    """Rename *src* to *dst*, refusing (``FileExistsError``) to overwrite an existing *dst*."""
    try:
        _rename_no_clobber(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        retry(Op.RENAME, (_s(src), _s(dst)), _rename_no_clobber, exc, src, dst)
    if _s(src) in _fresh:
        remember_fresh(_s(dst))


_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid  # noqa: PLW0603 - the cached pid must follow fork()
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_refresh_pid)


def temp_name(path: str) -> str:
    """The name of the next temporary file the layer makes for *path*.

    Next to the target (same filesystem, so the final replace is atomic); the pid and a
    counter make it unique, the suffix makes a crash's leftovers recognisable.
    """
    return f"{path}.{_pid}.{next(_counter)}{TEMP_SUFFIX}"


def _open(path: StrPath, flags: int, mode: int) -> int:
    try:
        return P.open(path, flags, mode)
    except FileExistsError:
        raise
    except OSError as exc:
        return retry(Op.OPEN, (_s(path),), P.open, exc, path, flags, mode)


class FileWriter:
    """A file opened for writing through the layer; every ``write`` is an injectable OS call.

    Used as a context manager, a failure inside the block removes the partial file, so nothing
    half-written is left behind.
    """

    __slots__ = ("_fd", "path")

    def __init__(self, path: StrPath, *, exclusive: bool = False, mode: int = 0o666) -> None:
        self.path = _s(path)
        self._fd = _open(path, _CREATE_EXCL_FLAGS if exclusive else _CREATE_FLAGS, mode)
        remember_fresh(self.path)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written = P.write(self._fd, data)
        if written < len(data):
            _write_rest(self._fd, data, written)
        return len(data)

    def sync(self) -> None:
        """Flush to stable storage (``fsync``) before the file is made visible."""
        os.fsync(self._fd)

    def detach(self) -> int:
        """Hand the descriptor over to the caller (who must close it)."""
        fd, self._fd = self._fd, -1
        return fd

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc_type is not None:
            unlink(self.path, missing_ok=True)


def open_for_write(path: StrPath, *, exclusive: bool = False, mode: int = 0o666) -> FileWriter:
    """Create (or truncate) *path* for writing; *mode* is filtered by the umask like ``open``."""
    return FileWriter(path, exclusive=exclusive, mode=mode)


def write_atomic(path: StrPath, data: bytes, mode: int | None = None, durable: bool = True) -> None:
    """Write *data* to *path* so readers see the old file or the new one, never a mix.

    A temporary file in the same directory is written, flushed and fsynced (when *durable*),
    then replaces *path*. *mode* (e.g. 0o755) is applied before the file becomes visible.
    Written out with the primitives rather than :class:`FileWriter`, so that the fast path is
    the same system calls a hand-written version would make and little else.
    """
    target = os.fspath(path)
    tmp = f"{target}.{_pid}.{next(_counter)}{TEMP_SUFFIX}"  # temp_name, inlined: hot path
    try:
        fd = P.open(tmp, _CREATE_EXCL_FLAGS, 0o666)
    except FileExistsError:  # a leftover of a crashed process that had our pid
        tmp, fd = _open_temp(target)
    except OSError as exc:
        fd = retry(Op.OPEN, (tmp,), P.open, exc, tmp, _CREATE_EXCL_FLAGS, 0o666)
    remember_fresh(tmp)
    try:
        written = P.write(fd, data)
        if written < len(data):
            _write_rest(fd, data, written)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink(tmp, missing_ok=True)
        raise
    os.close(fd)
    try:
        if mode is not None:
            chmod(tmp, mode)
        try:
            P.replace(tmp, target)
        except OSError as exc:
            retry(Op.REPLACE, (tmp, target), P.replace, exc, tmp, target)
    except BaseException:
        unlink(tmp, missing_ok=True)
        raise
    remember_fresh(target)


def sync_directory(path: StrPath) -> None:
    """Make renames into *path* durable (``fsync`` of the directory); no-op where unsupported.

    ``write_atomic`` makes a file's content durable; the directory entry that names it is
    durable only once its directory is synced. Windows has no directory fsync.
    """
    if WINDOWS:
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; nothing more can be done
    finally:
        os.close(fd)


def _open_temp(target: str) -> tuple[str, int]:
    """Slow path of :func:`write_atomic`: skip names a crashed process left behind."""
    while True:
        tmp = temp_name(target)
        try:
            return tmp, _open(tmp, _CREATE_EXCL_FLAGS, 0o666)
        except FileExistsError:
            continue


def _write_rest(fd: int, data: bytes | bytearray | memoryview, written: int) -> None:
    """Finish a short write (rare: full disks, signals), off the fast path."""
    view = memoryview(data)[written:]
    while view:
        view = view[P.write(fd, view) :]


def _copy(src: StrPath, dst: StrPath, times: bool = False) -> None:
    P.copyfile(src, dst)
    st = os.stat(src)
    P.chmod(dst, stat.S_IMODE(st.st_mode))
    if times:
        P.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy(src: StrPath, dst: StrPath, times: bool = False) -> None:
    """Copy the file *src* to the file path *dst*, keeping its permission bits, and with
    *times* its access and modification times (a timestamp ``.pyc`` of the source stays
    valid for the copy)."""
    remember_fresh(_s(dst))
    try:
        _copy(src, dst, times)
    except OSError as exc:
        retry(Op.COPY, (_s(src), _s(dst)), _copy, exc, src, dst, times)


#: FICLONE, ioctl(dest_fd, FICLONE, src_fd): a reflink on btrfs, XFS, bcachefs, OCFS2.
_FICLONE = 0x40049409
_CLONE_UNSUPPORTED = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS}
)


def clone(src: StrPath, dst: StrPath) -> bool:
    """Make *dst* a copy-on-write clone of *src* (shares blocks until either is written);
    False, with nothing left at *dst*, where the file system or the platform cannot.

    Linux: the ``FICLONE`` ioctl; macOS: ``clonefile(2)``. Windows block cloning (ReFS, Dev
    Drive) needs ``FSCTL_DUPLICATE_EXTENTS_TO_FILE`` on pre-sized files and is not done:
    False there, and the caller hard-links or copies. A clone has its own inode and times:
    the caller gives it the source's times when they matter.
    """
    if sys.platform == "darwin":
        return _clonefile(_s(src), _s(dst))
    if sys.platform != "linux":
        return False
    import fcntl

    remember_fresh(_s(dst))
    fd = _open(dst, _CREATE_EXCL_FLAGS, 0o600)
    try:
        with open(src, "rb") as source:
            fcntl.ioctl(fd, _FICLONE, source.fileno())
    except OSError as exc:
        os.close(fd)
        unlink(dst, missing_ok=True)
        if exc.errno in _CLONE_UNSUPPORTED:
            return False
        raise
    os.close(fd)
    chmod(dst, stat.S_IMODE(os.stat(src).st_mode))
    return True


def _clonefile(src: str, dst: str) -> bool:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    clonefile = getattr(libc, "clonefile", None)
    if clonefile is None:
        return False
    remember_fresh(dst)
    if clonefile(os.fsencode(src), os.fsencode(dst), 0) == 0:
        return True
    code = ctypes.get_errno()
    if code in _CLONE_UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), dst)


def set_times(path: StrPath, mtime_ns: int) -> None:
    """Give *path* this modification time (and access time), as ``os.utime``."""
    try:
        P.utime(path, ns=(mtime_ns, mtime_ns))
    except OSError as exc:
        retry(Op.CHMOD, (_s(path),), _utime, exc, path, mtime_ns)


def _utime(path: StrPath, mtime_ns: int) -> None:
    P.utime(path, ns=(mtime_ns, mtime_ns))


def _link_unsupported(exc: OSError) -> bool:
    winerror = getattr(exc, "winerror", None)
    if winerror is not None:
        return winerror in _LINK_FALLBACK_WINERRORS
    return exc.errno in _LINK_FALLBACK_ERRNOS


def link(src: StrPath, dst: StrPath) -> bool:
    """Hard-link *src* at *dst*; copy instead where links are impossible. True if linked."""
    remember_fresh(_s(dst))
    try:
        P.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if _link_unsupported(exc):
            copy(src, dst)
            return False
        retry(Op.LINK, (_s(src), _s(dst)), P.link, exc, src, dst)
    return True


# The hot operations take their options as ordinary parameters, not keyword-only ones: on
# CPython 3.11 keyword-only defaults cost ~15 ns a call, half the layer's whole overhead
# (benchmarks/fs_overhead.py). Callers still pass them by keyword.
def unlink(path: StrPath, missing_ok: bool = False, trash: StrPath | None = None) -> str | None:
    """Remove a file; returns the path it was moved to when it had to go to *trash*.

    On Windows a read-only file is made writable after the first access-denied (as ``del /f``
    would). A file that stays locked past the budget — a running ``.exe``, a loaded ``.pyd`` —
    can still be renamed: with *trash* it is moved there, to be deleted by a later run.
    """
    try:
        P.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise
    except OSError as exc:
        try:
            retry(Op.UNLINK, (_s(path),), P.unlink, exc, path)
        except FileNotFoundError:
            if not missing_ok:
                raise
        except LockTimeoutError:
            if trash is None:
                raise
            return move_to_trash(path, trash)
    return None


def rmdir(path: StrPath) -> None:
    """Remove an empty directory (WinError 145 while a child is delete-pending is retried)."""
    try:
        P.rmdir(path)
    except OSError as exc:
        retry(Op.RMDIR, (_s(path),), P.rmdir, exc, path)


def move_to_trash(path: StrPath, trash: StrPath) -> str:
    """Rename *path* into the directory *trash* under a unique name; returns the new path."""
    makedirs(trash)
    base = os.path.basename(os.path.normpath(_s(path)))
    while True:
        dst = os.path.join(_s(trash), f"{base}.{_pid}.{next(_counter)}")
        try:
            rename(path, dst)
        except FileExistsError:
            continue
        return dst


def rmtree(path: StrPath, *, trash: StrPath | None = None, missing_ok: bool = True) -> list[str]:
    """Remove a directory tree, retrying each entry on its own.

    A file or directory that stays locked past the budget is moved into *trash* (when given)
    and removal goes on; the paths moved there are returned. Symlinks and junctions are
    removed, not followed.
    Iterative, so no depth of nesting a wheel can ship makes it fail. A directory it has just
    emptied that still reports "not empty" is waited for like a lock: on Windows a child is
    delete-pending while a scanner holds it (WinError 145), on NFS a silly-renamed file of a
    handle still open elsewhere.
    """
    trashed: list[str] = []
    top = _s(path)
    try:
        st = os.lstat(top)
    except FileNotFoundError:
        if missing_ok:
            return trashed
        raise
    if not stat.S_ISDIR(st.st_mode):
        moved = unlink(top, trash=trash)
        return [moved] if moved else trashed
    if _is_junction(top, st):
        rmdir(top)  # the link itself; its target is not ours to empty
        return trashed
    _rmtree(top, None if trash is None else _s(trash), trashed)
    return trashed


def _rmtree(top: str, trash: str | None, trashed: list[str]) -> None:
    stack: list[tuple[str, bool]] = [(top, False)]  # (directory, its entries are gone)
    while stack:
        directory, emptied = stack.pop()
        if emptied:
            _remove_emptied(directory, trash, trashed)
            continue
        try:
            with P.scandir(directory) as it:
                entries = [(e.path, e.is_dir(follow_symlinks=False)) for e in it]
        except FileNotFoundError:
            continue
        stack.append((directory, True))
        for entry, is_dir in entries:
            if is_dir and _is_junction(entry):
                rmdir(entry)  # a junction: remove the link, never what it points to
            elif is_dir:
                stack.append((entry, False))
            else:
                try:
                    unlink(entry, missing_ok=True)
                except LockTimeoutError:
                    if trash is None:
                        raise
                    trashed.append(move_to_trash(entry, trash))


def _remove_emptied(directory: str, trash: str | None, trashed: list[str]) -> None:
    try:
        try:
            P.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError as exc:
            retry(Op.RMDIR, (directory,), P.rmdir, exc, directory, target=Target.EMPTIED_DIRECTORY)
    except FileNotFoundError:
        pass
    except LockTimeoutError:
        if trash is None:
            raise
        trashed.append(move_to_trash(directory, trash))


def empty_trash(trash: StrPath) -> list[str]:
    """Delete what earlier runs moved into *trash*; returns what is still there.

    Deliberately without waiting: whatever is in the trash was locked past a full budget
    before, so each command makes one attempt per entry and leaves the rest for the next.
    """
    left: list[str] = []
    try:
        names = P.listdir(trash)
    except FileNotFoundError:
        return left
    for name in names:
        entry = os.path.join(_s(trash), name)
        if not _remove_now(entry):
            left.append(entry)
    try:
        emptied = not left and rmdir_if_empty(trash)
    except LockTimeoutError:
        emptied = False
    if not left and not emptied:
        left.append(_s(trash))
    return left


def _remove_now(path: str) -> bool:
    """One attempt, no retry, at removing *path* and everything below it (iteratively)."""
    ok = True
    stack: list[tuple[str, bool]] = [(path, False)]
    while stack:
        entry, emptied = stack.pop()
        try:
            if emptied:
                P.rmdir(entry)
            elif stat.S_ISDIR(os.lstat(entry).st_mode) and not _is_junction(entry):
                stack.append((entry, True))
                with P.scandir(entry) as it:
                    stack.extend((child.path, False) for child in it)  # try every child
            else:
                P.unlink(entry)
        except FileNotFoundError:
            continue
        except OSError:
            ok = False
    return ok


_NOT_EMPTY_ERRNOS = frozenset({errno.ENOTEMPTY, errno.EEXIST})
_WIN_DIR_NOT_EMPTY = 145


def rmdir_if_empty(path: StrPath) -> bool:
    """Remove the directory *path* if it is empty; True if it is gone, False if it is not
    empty (or cannot be removed for good); :class:`LockTimeoutError` if a lock outlasted the
    budget, so that a caller never takes a locked directory for a full one.

    "Not empty" is normally an answer, not a lock: waiting on it would cost the full budget
    for every directory that merely still holds files (on Windows it is WinError 145, which
    the retry loop treats as a lock for directory removal). Only a directory whose listing is
    empty but which still cannot be removed (children pending deletion) is waited for.
    """
    try:
        P.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError as exc:
        not_empty = (
            getattr(exc, "winerror", None) == _WIN_DIR_NOT_EMPTY or exc.errno in _NOT_EMPTY_ERRNOS
        )
        if not_empty:
            try:
                with P.scandir(path) as it:
                    if next(it, None) is not None:
                        return False
            except OSError:
                return False
        try:
            retry(Op.RMDIR, (_s(path),), P.rmdir, exc, path)
        except FileNotFoundError:
            return True
        except LockTimeoutError:
            raise  # locked past the budget is not "not empty": the caller must know
        except OSError:
            return False
    return True


# Windows reparse point constants (the stat module defines the tag only on Windows).
_FILE_ATTRIBUTE_REPARSE_POINT = 0x400
_IO_REPARSE_TAG_MOUNT_POINT = 0xA0000003


def _is_junction(path: str, st: os.stat_result | None = None) -> bool:
    """A Windows junction or volume mount point: removed as a link, never descended into.

    Only the mount-point tag counts, as in ``shutil.rmtree``: other reparse points on
    directories (OneDrive placeholders, Windows container layers, deduplicated data) are
    ordinary directories whose contents must go first; ``rmdir`` on one would only meet "not
    empty" (WinError 145), which the retry loop waits out for the whole budget. Directory
    symlinks are not ``is_dir(follow_symlinks=False)`` and never get here.
    """
    if not WINDOWS:
        return False
    if st is None:
        st = os.lstat(path)
    attributes = getattr(st, "st_file_attributes", 0)
    tag = getattr(st, "st_reparse_tag", 0)
    return bool(attributes & _FILE_ATTRIBUTE_REPARSE_POINT) and tag == _IO_REPARSE_TAG_MOUNT_POINT


def _mkdir_one(path: StrPath, mode: int) -> None:
    """``mkdir``, where a directory that appeared meanwhile is fine: the unit retried."""
    try:
        P.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def makedirs(path: StrPath, mode: int = 0o777, exist_ok: bool = True) -> None:
    """Create *path* and missing parents (``os.makedirs``), each ``mkdir`` retried on locks.

    Missing parents are found walking up, then created shallowest first (no recursion: any
    depth a wheel can ship works).
    """
    try:
        P.mkdir(path, mode)
    except FileExistsError:
        if not exist_ok or not os.path.isdir(path):
            raise
    except FileNotFoundError:
        # Missing parents: created shallowest first, each mkdir retried on its own.
        for directory in _missing_dirs(_s(path)):
            try:
                _mkdir_one(directory, mode)
            except FileExistsError:
                raise
            except OSError as exc:
                retry(Op.MKDIR, (directory,), _make_path, exc, directory, mode)
    except OSError as exc:
        # A lock: what is retried makes missing parents too, since a lock on the first mkdir
        # says nothing about whether they exist (the lock-episode run found exactly that).
        retry(Op.MKDIR, (_s(path),), _make_path, exc, path, mode)


def _make_path(path: StrPath, mode: int) -> None:
    """*path* and whatever of its parents is missing: the unit :func:`makedirs` retries."""
    for directory in _missing_dirs(_s(path)):
        _mkdir_one(directory, mode)


def _missing_dirs(path: str) -> list[str]:
    """*path* and its ancestors that are not directories yet, shallowest first."""
    missing = []
    current = os.path.normpath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return missing[::-1]


def chmod(path: StrPath, mode: int) -> None:
    """Change permission bits (on Windows only the read-only attribute follows them)."""
    try:
        P.chmod(path, mode)
    except OSError as exc:
        retry(Op.CHMOD, (_s(path),), P.chmod, exc, path, mode)
