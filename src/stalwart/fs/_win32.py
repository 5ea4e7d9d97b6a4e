"""Windows: the error code behind a failed open or copy, which the C runtime hides.

``os.open`` and the ``io`` module (so ``shutil.copyfile``) go through the C runtime, which
reports only ``errno``: it folds a sharing violation (WinError 32), a lock violation (33) and
access denied (5) into EACCES and a user-mapped section (1224) into EINVAL, and leaves
``OSError.winerror`` unset. The retry loop reads ``winerror`` to tell a scanner's lock from a
real denial, so an open or copy that failed that way is made once more through ``CreateFileW``,
``ReadFile`` and ``WriteFile``, whose failures carry the Windows code. If the lock went away in
between, that second attempt simply succeeds. (``os.replace``, ``os.unlink`` and the other
calls of the layer use the Windows API directly and keep ``winerror`` already.)

Slow path only: ctypes is loaded at the first such failure, never at start-up.
"""

from __future__ import annotations

import errno
import sys

__all__ = ["folded"]

# What the C runtime turns the lock codes into (and also some real errors, which the second
# attempt reports with their own code).
_FOLDED_ERRNOS = frozenset({errno.EACCES, errno.EINVAL})


def folded(exc: OSError) -> bool:
    """*exc* may be a lock whose Windows code the C runtime dropped."""
    return getattr(exc, "winerror", None) is None and exc.errno in _FOLDED_ERRNOS


if sys.platform == "win32":
    import functools
    import msvcrt
    import os
    import stat
    from typing import Any

    __all__ += ["open_file", "copy_file"]

    _GENERIC_READ = 0x80000000
    _GENERIC_WRITE = 0x40000000
    # The C runtime's default sharing (_SH_DENYNO), so the second attempt asks for exactly what
    # the first one did.
    _SHARE = 0x1 | 0x2  # FILE_SHARE_READ | FILE_SHARE_WRITE
    _CREATE_NEW, _CREATE_ALWAYS, _OPEN_EXISTING, _OPEN_ALWAYS, _TRUNCATE_EXISTING = 1, 2, 3, 4, 5
    _FILE_ATTRIBUTE_READONLY = 0x1
    _FILE_ATTRIBUTE_NORMAL = 0x80
    _ACCESS = {
        os.O_RDONLY: _GENERIC_READ,
        os.O_WRONLY: _GENERIC_WRITE,
        os.O_RDWR: _GENERIC_READ | _GENERIC_WRITE,
    }
    _CHUNK = 1 << 20

    @functools.cache
    def _kernel32() -> Any:
        """A private binding: argtypes set here cannot clash with other ctypes users."""
        import ctypes
        from ctypes import wintypes

        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.CreateFileW.argtypes = [
            wintypes.LPCWSTR,
            wintypes.DWORD,
            wintypes.DWORD,
            wintypes.LPVOID,
            wintypes.DWORD,
            wintypes.DWORD,
            wintypes.HANDLE,
        ]
        k32.CreateFileW.restype = wintypes.HANDLE
        k32.CloseHandle.argtypes = [wintypes.HANDLE]
        k32.CloseHandle.restype = wintypes.BOOL
        for name in ("ReadFile", "WriteFile"):
            function = getattr(k32, name)
            function.argtypes = [
                wintypes.HANDLE,
                wintypes.LPVOID,
                wintypes.DWORD,
                ctypes.POINTER(wintypes.DWORD),
                wintypes.LPVOID,
            ]
            function.restype = wintypes.BOOL
        return k32

    def _last_error(path: str) -> OSError:
        """The calling thread's last Windows error, as ``OSError`` with ``winerror`` and path
        (the constructor maps the code to errno and picks the subclass, as ``os`` does)."""
        import ctypes

        code = ctypes.get_last_error()
        return OSError(0, ctypes.FormatError(code).strip(), path, code)

    def _disposition(flags: int) -> int:
        if flags & os.O_CREAT:
            if flags & os.O_EXCL:
                return _CREATE_NEW
            return _CREATE_ALWAYS if flags & os.O_TRUNC else _OPEN_ALWAYS
        return _TRUNCATE_EXISTING if flags & os.O_TRUNC else _OPEN_EXISTING

    def open_file(path: str, flags: int, mode: int = 0o777) -> int:
        """``os.open(path, flags, mode)`` through ``CreateFileW``: same access, sharing and
        disposition, and a read-only attribute for a new file whose *mode* has no write bit."""
        import ctypes

        readonly = flags & os.O_CREAT and not mode & stat.S_IWRITE
        attributes = _FILE_ATTRIBUTE_READONLY if readonly else _FILE_ATTRIBUTE_NORMAL
        access = _ACCESS[flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)]
        k32 = _kernel32()
        handle = k32.CreateFileW(path, access, _SHARE, None, _disposition(flags), attributes, None)
        if handle is None or handle == ctypes.c_void_p(-1).value:
            raise _last_error(path)
        try:
            return msvcrt.open_osfhandle(handle, flags & (os.O_APPEND | os.O_TEXT) | os.O_NOINHERIT)
        except BaseException:
            k32.CloseHandle(handle)
            raise

    def copy_file(src: str, dst: str) -> None:
        """``shutil.copyfile(src, dst)`` through ``ReadFile``/``WriteFile``."""
        source = open_file(src, os.O_RDONLY | os.O_BINARY)
        try:
            target = open_file(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_BINARY, 0o666)
            try:
                _pump(msvcrt.get_osfhandle(source), src, msvcrt.get_osfhandle(target), dst)
            finally:
                os.close(target)
        finally:
            os.close(source)

    def _pump(source: int, src: str, target: int, dst: str) -> None:
        import ctypes
        from ctypes import wintypes

        k32 = _kernel32()
        buffer = ctypes.create_string_buffer(_CHUNK)
        done = wintypes.DWORD()
        while True:
            if not k32.ReadFile(source, buffer, _CHUNK, ctypes.byref(done), None):
                raise _last_error(src)  # a byte-range lock on the source: WinError 33
            size = done.value
            if size == 0:
                return
            written = 0
            while written < size:
                at = ctypes.byref(buffer, written)
                if not k32.WriteFile(target, at, size - written, ctypes.byref(done), None):
                    raise _last_error(dst)
                written += done.value
