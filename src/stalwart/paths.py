"""Small path predicates shared by planning, install checks, uninstall and verify. Pure."""

from __future__ import annotations

import os

__all__ = ["is_within"]


def is_within(root: str, path: str) -> bool:
    """True when *path* is *root* or lies below it, compared lexically (no symlinks followed).

    Callers that must not be fooled by links pass ``realpath`` s; planning passes normalized
    paths on purpose (the archive already refused '..', links and absolute names, and following
    links in a target directory is not planning's business). Paths on different drives are
    never within each other.
    """
    try:
        return os.path.commonpath([root, path]) == root
    except ValueError:
        return False
