"""Platform markers for tests: each adds a pytest marker (to select with ``-m``) and the skip
that keeps the test from running where it cannot, so plain ``pytest`` works everywhere.

Use the result as a module's ``pytestmark``, as a decorator, or as ``pytest.param(marks=...)``::

    pytestmark = posix_only("the POSIX venv layout: bin/, lib/pythonX.Y/site-packages")

    @posix_only("checks permission bits Windows does not keep")
    def test_mode(): ...

CI runs the portable part with ``-m "not linux_only"`` (macOS) and
``-m "not linux_only and not posix_only"`` (Windows); the same ``-m`` on Linux runs what those
jobs run. The markers are described in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import sys
from typing import TypeVar

import pytest

__all__ = ["Marks", "linux_only", "posix_only", "windows_only"]

T = TypeVar("T")


class Marks(list[pytest.MarkDecorator]):
    """Marks that apply together: a list for ``pytestmark`` and ``marks=``, or a decorator."""

    def __call__(self, obj: T) -> T:
        for mark in self:
            obj = mark(obj)
        return obj


def linux_only(reason: str) -> Marks:
    """Needs Linux (glibc, LD_PRELOAD, /proc); skipped elsewhere."""
    linux = sys.platform.startswith("linux")
    return Marks([pytest.mark.linux_only, pytest.mark.skipif(not linux, reason=reason)])


def posix_only(reason: str) -> Marks:
    """Needs a POSIX system (Linux or macOS); skipped on Windows."""
    return Marks([pytest.mark.posix_only, pytest.mark.skipif(os.name != "posix", reason=reason)])


def windows_only(reason: str) -> Marks:
    """Needs Windows; skipped elsewhere."""
    windows = sys.platform == "win32"
    return Marks([pytest.mark.windows_only, pytest.mark.skipif(not windows, reason=reason)])
