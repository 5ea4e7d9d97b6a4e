"""Where stalwart keeps what it can compute again: its user cache directory.

One directory for everything cached (interpreter answers today; downloads and unpacked wheels
share it), so ``--cache-dir`` / ``STALWART_CACHE_DIR`` moves all of it at once.
"""

from __future__ import annotations

import os
import sys

__all__ = ["cache_dir", "state_home", "CacheLayout", "ENV_CACHE_DIR", "ENV_STATE_DIR"]

ENV_CACHE_DIR = "STALWART_CACHE_DIR"
ENV_STATE_DIR = "STALWART_STATE_DIR"


def cache_dir() -> str:
    """``STALWART_CACHE_DIR`` if set, else the platform's user cache directory for stalwart.

    The same places platformdirs' ``user_cache_dir("stalwart")`` gives (``$XDG_CACHE_HOME``
    or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%\\stalwart\\Cache``
    on Windows), written out because importing platformdirs costs ~25 ms (it pulls in pathlib
    and tempfile) and every command asks for this directory.
    """
    return _user_dir(
        ENV_CACHE_DIR, "Cache", "~/Library/Caches/stalwart", "XDG_CACHE_HOME", "~/.cache"
    )


def state_home() -> str:
    """``STALWART_STATE_DIR`` if set, else the platform's user state directory for stalwart.

    For what must outlive a cache clean-up (the key that signs transaction journals):
    ``$XDG_STATE_HOME`` or ``~/.local/state`` on Linux, ``~/Library/Application Support`` on
    macOS, ``%LOCALAPPDATA%\\stalwart\\State`` on Windows (platformdirs' user_state_dir).
    """
    return _user_dir(
        ENV_STATE_DIR,
        "State",
        "~/Library/Application Support/stalwart",
        "XDG_STATE_HOME",
        "~/.local/state",
    )


def _user_dir(variable: str, windows: str, macos: str, xdg_variable: str, xdg_default: str) -> str:
    """*variable* if set, else the platform's place: on Windows
    ``%LOCALAPPDATA%\\stalwart\\<windows>``, on macOS *macos*, elsewhere ``$<xdg_variable>``
    when absolute (else *xdg_default*) + ``stalwart``."""
    explicit = os.environ.get(variable)
    if explicit:
        return os.path.abspath(explicit)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "stalwart", windows)
    if sys.platform == "darwin":
        return os.path.expanduser(macos)
    xdg = os.environ.get(xdg_variable, "").strip()
    base = xdg if os.path.isabs(xdg) else os.path.expanduser(xdg_default)
    return os.path.join(base, "stalwart")


class CacheLayout:
    """Where each kind of cached thing lives below one cache directory. Paths only; the
    writers (the network client, the unpacked-wheel cache) write through :mod:`stalwart.fs`.

    - ``interpreters/<key>.json``      what a target interpreter reported
    - ``http/<key>.json`` + ``.body``  index pages with their ETag/Last-Modified
    - ``wheels/<sha256>/<filename>``   wheel files, content-addressed by their sha256 (downloads
                                        and, later, local wheels: one store for both)
    - ``metadata/<sha256>.metadata``   PEP 658 metadata files, by their own sha256
    - ``unpacked/<sha256>/``           unpacked, validated wheels and their bytecode
    - ``digests/<key>.json``           sha256 of local wheel files, by file identity
    """

    def __init__(self, root: str | None = None) -> None:
        self.root = root if root is not None else cache_dir()

    def interpreters(self) -> str:
        return os.path.join(self.root, "interpreters")

    def http(self) -> str:
        return os.path.join(self.root, "http")

    def wheels(self) -> str:
        return os.path.join(self.root, "wheels")

    def wheel(self, sha256: str, filename: str) -> str:
        """The cached wheel file with this sha256 (hex) and name."""
        return os.path.join(self.root, "wheels", sha256, filename)

    def digests(self) -> str:
        return os.path.join(self.root, "digests")

    def metadata(self, sha256: str) -> str:
        return os.path.join(self.root, "metadata", f"{sha256}.metadata")
