"""Real virtual environments for tests: made once per session, copied per test.

``python -m venv --without-pip`` takes ~100 ms; copying a pristine one (its ``bin/python`` is
a symlink, kept as one) is cheaper and gives every test an environment of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from stalwart.environment import Environment, query_environment

__all__ = ["PY", "Venv", "make_venv", "copy_venv", "cli_environ", "without_banner"]

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass(frozen=True)
class Venv:
    """A POSIX virtual environment at *root*."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def site(self) -> Path:
        return self.root / "lib" / PY / "site-packages"

    @cached_property
    def env(self) -> Environment:
        """Its :class:`Environment`, asked of its interpreter afresh."""
        return query_environment(str(self.python), use_cache=False)


def make_venv(
    path: Path, python: Path | str | None = None, env: dict[str, str] | None = None
) -> Venv:
    """A new venv without pip at *path*, made by *python* (default: the one running tests)."""
    subprocess.run(
        [str(python or sys.executable), "-m", "venv", "--without-pip", str(path)],
        check=True,
        capture_output=True,
        timeout=120,
        env=env,
    )
    venv = Venv(path)
    assert venv.site.is_dir()
    return venv


def copy_venv(src: Venv | Path, dst: Path) -> Venv:
    """A copy of *src* at *dst*; symlinks stay symlinks, so the copy keeps working."""
    shutil.copytree(src.root if isinstance(src, Venv) else src, dst, symlinks=True)
    return Venv(dst)


def cli_environ(cache: Path) -> dict[str, str]:
    """The environment for running the real CLI: no STALWART_*/PYTHON* leaking in from the
    machine, a cache of the test's own, and ``CI`` set (no progress bar)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STALWART_", "PYTHON", "PIP_", "UV_", "VIRTUAL_ENV"))
    }
    env["STALWART_CACHE_DIR"] = str(cache)
    # No test reaches a public index by accident: an unset index is a closed loopback port.
    env["STALWART_INDEX_URL"] = "http://127.0.0.1:9/simple/"
    env["STALWART_STATE_DIR"] = str(cache / "state")  # the journal key, never the user's
    env["CI"] = "1"
    return env


_BANNER = re.compile(r"^Using Python \S+ (?:environment|interpreter) at .*\n?", re.MULTILINE)


def without_banner(stderr: str) -> str:
    """*stderr* without the ``Using Python ... at ...`` line every changing command prints."""
    return _BANNER.sub("", stderr)
