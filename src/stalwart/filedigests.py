"""The sha256 of local wheel files, remembered by what the file *is*, not what it is called.

The unpacked-wheel cache is keyed by a wheel's sha256, so installing from a local file used to
mean hashing it every time (126 ms for the 121 MB benchmark corpus, about a twelfth of a warm
install). A digest is kept in ``<cache>/digests/<sha256 of the real path>.json`` beside the
file's device, inode, size, mtime and ctime, and reused only while all of them still match:
any write to the file changes its ctime, which unlike mtime no user can set back. Anything
unexpected in a memo (a damaged file, another format) means "hash it again", never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from stalwart import fs
from stalwart.cache import CacheLayout
from stalwart.paths import read_regular
from stalwart.wheel.record import hash_file

__all__ = ["FileDigests"]

_FORMAT = 1
_MAX_MEMO = 4096
_HEX64 = re.compile(r"[0-9a-f]{64}")


class FileDigests:
    """sha256 (hex) of local files, computed once per version of each file."""

    def __init__(self, layout: CacheLayout) -> None:
        self.root = layout.digests()

    def sha256(self, path: str) -> str:
        """The file's sha256; remembered for next time when the cache can be written."""
        real = os.path.realpath(path)
        memo = os.path.join(
            self.root, hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest() + ".json"
        )
        before = _identity(real)
        known = self._recall(memo, real, before)
        if known is not None:
            return known
        digest = hash_file(real)[0].hex()
        if before is not None and _identity(real) == before:  # not changed while hashed
            self._remember(memo, real, before, digest)
        return digest

    def prune(self) -> int:
        """Drop memos whose file is gone or changed (they would never match again)."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return 0
        dropped = 0
        for name in names:
            memo = os.path.join(self.root, name)
            try:
                data = json.loads(read_regular(memo, _MAX_MEMO))
                path = data["path"]
                keep = (
                    isinstance(path, str)
                    and name == _memo_name(path)
                    and self._recall(memo, path, _identity(path)) is not None
                )
            except (OSError, ValueError, KeyError, TypeError):
                keep = False
            if not keep:
                fs.unlink(memo, missing_ok=True)
                dropped += 1
        return dropped

    def _recall(self, memo: str, real: str, identity: list[int] | None) -> str | None:
        if identity is None:
            return None
        try:
            data = json.loads(read_regular(memo, _MAX_MEMO))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        digest = data.get("sha256")
        holds = (
            data.get("format") == _FORMAT
            and data.get("path") == real
            and data.get("identity") == identity
            and isinstance(digest, str)
            and _HEX64.fullmatch(digest) is not None
        )
        return digest if holds else None

    def _remember(self, memo: str, real: str, identity: list[int], digest: str) -> None:
        data = {"format": _FORMAT, "path": real, "identity": identity, "sha256": digest}
        try:
            fs.makedirs(self.root)
            fs.write_atomic(memo, json.dumps(data).encode(), durable=False)
        except OSError:
            pass  # a read-only or full cache: the digest is simply computed again next time


def _memo_name(real: str) -> str:
    return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest() + ".json"


def _identity(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
