"""The raw OS calls the filesystem layer makes, looked up at call time.

Every mutation in ``_ops`` calls ``_prims.<name>(...)`` rather than ``os.<name>`` so that
:mod:`stalwart.fs.faults` can put a failing wrapper in exactly the place where the OS would raise,
and the whole retry machinery above it runs for real. When no faults are installed these are the
``os`` functions themselves: one module attribute lookup is the whole cost.
"""

from __future__ import annotations

import os
import shutil

replace = os.replace
rename = os.rename
link = os.link
unlink = os.unlink
rmdir = os.rmdir
mkdir = os.mkdir
chmod = os.chmod
open = os.open
write = os.write
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
    "open",
    "write",
    "copyfile",
)
