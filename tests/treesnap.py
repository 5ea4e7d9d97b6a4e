"""Snapshots of a directory tree, to prove an environment is byte-identical before and after."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["Snapshot", "snapshot"]

Snapshot = dict[str, tuple[object, ...]]


def snapshot(root: Path) -> Snapshot:
    """Every path below *root*: files with mode and bytes, directories with mode, symlinks.

    Directory mtimes are left out: staging in ``.stalwart`` and cleaning up touches them.
    """
    tree: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                tree[rel] = ("file", stat.S_IMODE(st.st_mode), Path(path).read_bytes())
    return tree
