"""stalwart: a wheel installer that survives file locks and installs all-or-nothing.

Layers, lowest first (each imports only from those above it in this list):

- ``stalwart.fs``        the only code that mutates the disk; retries lock episodes
- ``stalwart.wheel``     reads and validates wheels; pure (no writes)
- ``stalwart.environment`` asks a target interpreter for its install scheme
- ``stalwart.plan``      turns validated wheels + a scheme into frozen operations; pure
- ``stalwart.install``   applies plans through ``stalwart.fs``
- ``stalwart.cli``       parses arguments, calls the library, renders results
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
