"""One base directory (tmpfs or disk) holding the venvs, caches and scratch of a series.

Everything a run writes lives below it, so tmpfs and disk figures differ only by where the base
is. A marker file says the directory is ours (it is emptied at start and removed at the end),
and an exclusive lock on it keeps two harness runs from sharing one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import venv
from pathlib import Path

MARKER = ".stalwart-bench"


class Workspace:
    def __init__(self, label: str, base: Path) -> None:
        self.label = label
        self.base = base.resolve()
        nonempty = self.base.exists() and any(self.base.iterdir())
        if nonempty and not (self.base / MARKER).exists():
            raise SystemExit(f"{self.base} exists, is not empty and is not a bench directory")
        self.created = not self.base.exists()
        self.base.mkdir(parents=True, exist_ok=True)
        self._lock = (self.base / MARKER).open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another benchmark run is using {self.base}") from None
        self.clear()
        self.counter = 0
        self.venvs = self.dir("venvs")
        self.state = self.dir("stalwart-state")  # journal key: outlives caches, as at a user's
        self.stalwart_warm = self.base / "stalwart-warm-cache"
        self.uv_warm = self.base / "uv-warm-cache"
        # installer on PYTHONPATH, alone (not the whole site-packages of the repo's venv).
        import installer

        self.installer_path = self.dir("installer-path")
        (self.installer_path / "installer").symlink_to(Path(installer.__file__).parent)

    def dir(self, name: str) -> Path:
        path = self.base / name
        path.mkdir()
        return path

    def clear(self) -> None:
        for child in self.base.iterdir():
            if child.name != MARKER:
                remove(child)

    def close(self, keep: bool) -> None:
        """Empty the directory (unless *keep*); remove it too when this run created it."""
        if not keep:
            self.clear()
            if self.created:
                (self.base / MARKER).unlink()
                self.base.rmdir()
        self._lock.close()

    def scratch(self, prefix: str) -> Path:
        """A fresh, not yet existing path: a per-run cache, a floor's destination."""
        self.counter += 1
        return self.base / f"{prefix}-{self.counter}"

    def fresh_venv(self, name: str) -> Path:
        """An empty venv (no pip) at the same path each time for *name*: tools that cache what
        they learnt of an interpreter by its path find it again, as on a user's machine."""
        path = self.venvs / name
        remove(path)
        venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=True).create(path)
        return path

    def copy_venv(self, template: Path, name: str) -> Path:
        path = self.venvs / name
        remove(path)
        shutil.copytree(template, path, symlinks=True)
        return path


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def site_packages(venv_dir: Path) -> Path:
    found = list((venv_dir / "lib").glob("python*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"cannot find site-packages in {venv_dir}")
    return found[0]


def census(root: Path) -> tuple[int, int, int]:
    """(distributions, files, .pyc files) of a venv or of a tree (a site-packages, a floor's
    copy). Distributions are the ``.dist-info`` directories at the top of its site-packages
    only: setuptools vendors packages with theirs."""
    site = site_packages(root) if (root / "pyvenv.cfg").exists() else root
    dists = sum(1 for p in site.iterdir() if p.name.endswith(".dist-info"))
    files = pycs = 0
    for _, _, names in os.walk(root):
        files += len(names)
        pycs += sum(1 for n in names if n.endswith(".pyc"))
    return dists, files, pycs
