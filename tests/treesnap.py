"""Snapshots of a directory tree, to prove an environment is byte-identical before and after."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Node", "Snapshot", "snapshot", "describe_diff"]


@dataclass(frozen=True)
class Node:
    """One entry: its kind, permission bits, and content (or symlink target).

    ``mtime`` and ``size`` are kept for checks that need them (a ``.pyc`` header records its
    source's) but left out of equality: staging and cleaning up touch times, not content.
    """

    kind: str  # "dir", "file" or "link"
    mode: int
    data: bytes = b""
    mtime: int = field(default=0, compare=False)  # whole seconds
    size: int = field(default=0, compare=False)


Snapshot = dict[str, Node]  # '/'-separated path relative to the root -> node


def snapshot(root: Path | str) -> Snapshot:
    """Every directory, file and symlink below *root* (symlinks are not followed)."""
    tree: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = Node("link", mode, os.readlink(path).encode())
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = Node("dir", mode)
            else:
                data = Path(path).read_bytes() if stat.S_ISREG(st.st_mode) else b"<special>"
                tree[rel] = Node("file", mode, data, int(st.st_mtime), st.st_size)
    return tree


def describe_diff(got: Snapshot, want: Snapshot, limit: int = 8) -> str:
    """A short, readable account of how two snapshots differ."""
    extra = sorted(set(got) - set(want))
    missing = sorted(set(want) - set(got))
    changed = sorted(k for k in set(got) & set(want) if got[k] != want[k])
    parts = []
    for label, keys in (("extra", extra), ("missing", missing), ("changed", changed)):
        if keys:
            more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
            parts.append(f"{label}: {keys[:limit]}{more}")
    return "; ".join(parts) or "identical"
