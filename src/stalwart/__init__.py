"""stalwart: a wheel installer that survives file locks and installs all-or-nothing.

The modules form a pipeline; each imports only from those listed before it (checked by
``tests/test_layering.py``):

- ``errors``       the one exception tree          ``paths``  path predicates (pure)
- ``cache``        where the user cache lives
- ``fs``           the only code that mutates the disk; waits out lock episodes
- ``wheel``        reads and validates wheels (pure)  ``scripts``  console scripts, launchers (pure)
- ``interpreter``  finds and queries a target interpreter (cached)
- ``transaction``  journal, commit, rollback, crash recovery
- ``envlock``      one writer per environment     ``installed``  reads installed .dist-info
- ``environment``  the target: scheme, tags, directories, state dir, lock path
- ``results``      what a command did             ``bytecode``  compiles with the target
- ``plan``         where each file of a wheel goes (pure)
- ``session``      lock the environment, recover unfinished work
- ``verify``       installed files against RECORD (read-only)
- ``staging``      writes every file of a command into the transaction's stage
- ``safety``       PEP 668, protected paths, conflicts (read-only)
- ``uninstall``    what removing a distribution takes away (pure), and doing it
- ``install``      orchestration of an install
- ``cli``          parses arguments, calls the library, renders results
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
