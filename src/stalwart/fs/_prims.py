"""The raw OS calls the filesystem layer makes, looked up at call time.

Every mutation in ``_ops`` calls ``_prims.<name>(...)`` rather than ``os.<name>`` so that
:mod:`stalwart.fs.faults` can put a failing wrapper in exactly the place where the OS would raise,
and the whole retry machinery above it runs for real. When no faults are installed these are the
``os`` functions themselves: one module attribute lookup is the whole cost. On Windows ``open``
and ``copyfile`` are thin wrappers that recover the Windows error code the C runtime drops when
they fail (see ``_win32``).
"""

from __future__ import annotations

import os
import shutil
import sys

replace = os.replace
rename = os.rename
link = os.link
unlink = os.unlink
rmdir = os.rmdir
mkdir = os.mkdir
chmod = os.chmod
utime = os.utime
write = os.write

if sys.platform == "win32":
    from . import _win32

    def open(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        """``os.open``; a failure the C runtime reported without its Windows code is asked
        again through ``CreateFileW``, so that a sharing violation reaches the retry loop as
        WinError 32 rather than as a bare EACCES."""
        try:
            return os.open(path, flags, mode)
        except OSError as exc:
            if not _win32.folded(exc):
                raise
        return _win32.open_file(os.fspath(path), flags, mode)

    def copyfile(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """``shutil.copyfile``, asked again through the Windows API like :func:`open`."""
        try:
            shutil.copyfile(src, dst)
        except OSError as exc:
            if not _win32.folded(exc):
                raise
        else:
            return
        _win32.copy_file(os.fspath(src), os.fspath(dst))

else:
    open = os.open
    copyfile = shutil.copyfile
# Reads, never faulted or counted: the injector may only reorder their answers, because
# deletion order follows listing order and that differs between filesystems.
scandir = os.scandir
listdir = os.listdir

#: Primitive name -> the operation kind a fault for it is registered under.
NAMES = (
    "replace",
    "rename",
    "link",
    "unlink",
    "rmdir",
    "mkdir",
    "chmod",
    "utime",
    "open",
    "write",
    "copyfile",
)
