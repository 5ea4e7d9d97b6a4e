"""Reading a user's input file (requirements, lock) without trusting what the path names."""

from __future__ import annotations

import os
import stat

__all__ = ["read_limited"]


def read_limited(path: str, limit: int) -> bytes:
    """The bytes of the regular file *path*; ``ValueError`` when it is not one or is too large.

    Opened without blocking and checked with ``fstat`` before reading: ``-r /dev/zero`` or a
    FIFO must be refused, not read forever or waited on.
    """
    # Read-only: test_layering checks these flags.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))  # noqa: TID251
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ValueError(f"larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
