"""stalwart: a wheel installer that survives file locks and installs all-or-nothing.

The modules form layers; each imports only from layers before its own (checked by
``tests/test_layering.py``, which also checks that only ``fs`` mutates the disk):

1. ``errors`` the one exception tree; ``paths`` what a path *is* (identity, not spelling);
   ``cache`` where the user cache lives and its layout
2. ``fs`` the only code that mutates the disk, waiting out lock episodes; ``wheel`` reads and
   validates wheels (pure); ``scripts`` console scripts and launchers (pure); ``index``
   project pages of package indexes and the choice among their files (pure)
3. ``interpreter`` finds and queries a target interpreter; ``journalkey`` signs journals;
   ``envlock`` one writer per environment; ``installed`` reads installed ``.dist-info``;
   ``requirements`` specs, requirements files and ``pylock.toml`` (pure); ``net`` settings,
   credentials and the HTTP client; ``wheelcache`` unpacked wheels and their bytecode;
   ``filedigests`` remembered sha256 of local wheel files
4. ``environment`` the target's scheme, tags and directories; ``transaction`` journal, commit,
   rollback, recovery; ``bytecode`` compiling with the target interpreter
5. ``plan`` where each file of a wheel goes (pure); ``session`` lock, then recover;
   ``results`` what a command did
6. ``staging`` every file of a command into the transaction's stage; ``verify`` installed files
   against RECORD; ``resolve`` from requirements to the exact set of wheels (resolvelib)
7. ``safety`` PEP 668, protected paths, conflicts (read-only); ``uninstall``
8. ``install`` wheels to one transaction; ``selfcheck``
9. ``fetch`` downloads every chosen wheel, verified, before anything is installed
10. ``satisfy`` resolve, fetch, install under one environment lock
11. ``cli`` parses arguments, calls the library, renders results
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
