"""Real wheels from the package index, downloaded once, and throwaway virtual environments.

The corpus is pinned, so every run installs the same bytes. Wheels are fetched with the repo
venv's pip into ``<repo>/.cache/wheels/`` (gitignored) the first time one is asked for; the
machine's pip configuration (find-links, mirrors, constraints) is ignored, so the files are the
ones on the index. Several pytest-xdist workers may ask at once: an ``fcntl.flock`` on a lock file
in the cache directory makes them take turns, and the winner downloads for everyone.

Also here: :func:`fresh_venv` (a venv without pip, made in a few tens of milliseconds) and
:func:`pip_install` / :func:`pip` (the real pip of the repo venv, pointed at another interpreter
with ``--python``), used as the reference the conformance tests compare stalwart against.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from venvs import make_venv

__all__ = [
    "REPO",
    "CACHE",
    "VENV",
    "RealWheel",
    "CORPUS",
    "ALL",
    "OLDER",
    "EXTRA",
    "wheel_path",
    "wheel_paths",
    "INDEX",
    "index_wheels",
    "ensure",
    "base_python",
    "fresh_venv",
    "venv_python",
    "clean_env",
    "pip",
    "pip_install",
    "stalwart",
]

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "wheels"
#: The repo's virtual environment: its pip is the reference, its ``stalwart`` the one tested.
VENV = REPO / ".venv"

_BIN = "Scripts" if os.name == "nt" else "bin"
_EXE = ".exe" if os.name == "nt" else ""


@dataclass(frozen=True)
class RealWheel:
    """One pinned distribution of the corpus and why it is in it."""

    name: str
    version: str
    why: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


#: The corpus, by the name tests use. Compiled ones are fetched for the running interpreter.
CORPUS: dict[str, RealWheel] = {
    w.name: w
    for w in [
        RealWheel("pyflakes", "3.2.0", "pure; console_scripts"),
        RealWheel("jsonpointer", "2.4", ".data/scripts/ file starting with #!python"),
        RealWheel("notebook_shim", "0.2.4", ".data/data/ file (etc/jupyter/...)"),
        RealWheel("markupsafe", "2.1.5", "compiled .so; Root-Is-Purelib: false (platlib)"),
        RealWheel("pyyaml", "6.0.2", "compiled; two top-level packages (yaml, _yaml)"),
        RealWheel("jaraco.functools", "4.0.1", "PEP 420 namespace 'jaraco' (with jaraco.context)"),
        RealWheel("jaraco.context", "5.3.0", "PEP 420 namespace 'jaraco' (with .functools)"),
        RealWheel("more_itertools", "10.2.0", "dependency of jaraco.functools (import check)"),
        RealWheel("pyzo", "4.22.0", "gui_scripts; many files, package data"),
        # pkgutil-style namespace 'backports': both ship the same backports/__init__.py (81 bytes,
        # sha256=iOEMwnlORWezdO8-2vxBIPSR37D7JGjluZ8f55vzxls), a file two distributions own.
        RealWheel("backports.tarfile", "1.2.0", "pkgutil namespace; dependency of jaraco.context"),
        RealWheel("backports.functools_lru_cache", "1.6.6", "pkgutil namespace, same __init__"),
    ]
}
#: Names of the whole corpus, in a fixed order.
ALL: list[str] = list(CORPUS)

#: Older versions of corpus members, to test upgrades (not part of :data:`ALL`).
OLDER: dict[str, RealWheel] = {
    w.name: w
    for w in [
        # jaraco/functools.py (a module) becomes jaraco/functools/__init__.py (a package) in 4.0.1.
        RealWheel("jaraco.functools", "3.6.0", "upgraded to 4.0.1: a module becomes a package"),
    ]
}


#: Other wheels for particular tests (not part of :data:`ALL`).
EXTRA: dict[str, RealWheel] = {
    w.name: w
    for w in [
        # Its backports/__init__.py (121 bytes) differs from the one the corpus pair shares.
        RealWheel("backports.weakref", "1.0.post1", "pkgutil namespace, different __init__"),
    ]
}


#: A small package index's worth for install-from-index tests: what ``pip download
#: "httpx[http2,cli]" attrs`` picked on 2026-12-02, plus older versions of a few so that the
#: resolvers have choices to make (and an h11 the newest httpcore refuses).
INDEX: list[RealWheel] = [
    RealWheel(name, version, "install from an index")
    for name, version in [
        ("anyio", "4.16.0"),
        ("attrs", "26.1.0"),
        ("attrs", "23.2.0"),
        ("certifi", "2026.10.19.post1"),
        ("click", "8.5.1"),
        ("h11", "0.16.0"),
        ("h11", "0.14.0"),
        ("h2", "4.4.1"),
        ("hpack", "4.2.0"),
        ("httpcore", "1.0.9"),
        ("httpx", "0.29.0"),
        ("httpx", "0.27.2"),
        ("hyperframe", "6.1.0"),
        ("idna", "3.20"),
        ("markdown-it-py", "4.3.0"),
        ("mdurl", "0.1.2"),
        ("pygments", "2.21.0"),
        ("rich", "14.3.4"),
        ("sniffio", "1.3.1"),
        ("typing-extensions", "4.16.0"),
    ]
]


def index_wheels() -> list[Path]:
    """The :data:`INDEX` wheels, downloaded once (one pip run) into the cache."""
    found = ensure(INDEX)
    return [found[w] for w in INDEX]


def _lookup(name: str, version: str | None) -> RealWheel:
    key = canonicalize_name(name)
    for table in (CORPUS, OLDER, EXTRA):
        for wheel in table.values():
            if canonicalize_name(wheel.name) == key and version in (None, wheel.version):
                return wheel
    known = sorted({w.requirement for t in (CORPUS, OLDER, EXTRA) for w in t.values()})
    raise KeyError(f"{name}{'==' + version if version else ''} is not pinned here: {known}")


@cache
def _supported() -> dict[Tag, int]:
    """Tags of the running interpreter, best first (the venvs use the same base interpreter)."""
    return {tag: i for i, tag in enumerate(sys_tags())}


def _find(wheel: RealWheel) -> Path | None:
    """The best cached file for *wheel* that this interpreter can install, if any."""
    want_name, want_version = canonicalize_name(wheel.name), Version(wheel.version)
    best: tuple[int, Path] | None = None
    try:
        files = list(CACHE.glob("*.whl"))
    except OSError:
        return None
    for path in files:
        try:
            name, version, _build, tags = parse_wheel_filename(path.name)
        except ValueError:
            continue
        if name != want_name or version != want_version:
            continue
        ranks = [_supported()[t] for t in tags if t in _supported()]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), path)
    return None if best is None else best[1]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for child processes: no pip configuration, no PYTHON* variables.

    ``PIP_CONFIG_FILE=/dev/null`` hides the machine's pip.conf (find-links to local wheel
    directories, mirrors); the variables that would do the same are removed. ``PYTHON*`` ones
    (``PYTHONPYCACHEPREFIX``, ``PYTHONDONTWRITEBYTECODE``...) and ``SOURCE_DATE_EPOCH`` (which
    makes py_compile write hash-based .pyc) would change what pip writes, so they go too.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTHON")
        and k
        not in {
            "PIP_FIND_LINKS",
            "PIP_CONSTRAINT",
            "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL",
            "PIP_NO_INDEX",
            "PIP_REQUIRE_VIRTUALENV",
            "PIP_TARGET",
            "PIP_PREFIX",
            "PIP_USER",
            "PIP_NO_COMPILE",
            "SOURCE_DATE_EPOCH",
            "VIRTUAL_ENV",
        }
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    if extra:
        env.update(extra)
    return env


def _reference_python() -> Path:
    """The repo venv's interpreter (it has pip); the running one if the venv is elsewhere."""
    candidate = VENV / _BIN / f"python{_EXE}"
    return candidate if candidate.exists() else Path(sys.executable)


@contextmanager
def _cache_lock() -> Iterator[None]:
    """Exclusive ``flock`` on ``<cache>/.lock`` (released by the OS if the holder dies)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("a") as handle:
        if os.name == "nt":  # no fcntl; LK_LOCK retries for 10 s, so loop until it is ours
            import msvcrt

            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            return
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _download(wheels: Sequence[RealWheel]) -> None:
    """Fetch *wheels* in one pip run into a scratch directory, then move them into the cache.

    Moving finished files in means a download that dies half way never leaves a truncated wheel
    where :func:`_find` would pick it up.
    """
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=CACHE))
    try:
        cmd = [
            str(_reference_python()),
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
            str(scratch),
            *(w.requirement for w in wheels),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"downloading {[w.requirement for w in wheels]} failed "
                f"(exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            )
        for path in scratch.glob("*.whl"):
            os.replace(path, CACHE / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _rounds(wheels: Sequence[RealWheel]) -> list[list[RealWheel]]:
    """Split *wheels* so no pip run names one project twice (pip refuses two pins of it)."""
    rounds: list[list[RealWheel]] = []
    for wheel in wheels:
        name = canonicalize_name(wheel.name)
        for round_ in rounds:
            if all(canonicalize_name(w.name) != name for w in round_):
                round_.append(wheel)
                break
        else:
            rounds.append([wheel])
    return rounds


def ensure(wheels: Iterable[RealWheel]) -> dict[RealWheel, Path]:
    """Paths of *wheels*, downloading (once, under the cache lock) those not cached yet."""
    wanted = list(dict.fromkeys(wheels))
    found = {w: _find(w) for w in wanted}
    if any(p is None for p in found.values()):
        with _cache_lock():
            # Another worker may have fetched them while this one waited for the lock.
            missing = [w for w in wanted if _find(w) is None]
            for round_ in _rounds(missing):
                _download(round_)
        found = {w: _find(w) for w in wanted}
    absent = [w.requirement for w, p in found.items() if p is None]
    if absent:
        raise RuntimeError(f"pip downloaded no installable wheel for {absent} into {CACHE}")
    return {w: p for w, p in found.items() if p is not None}


def wheel_path(name: str, version: str | None = None) -> Path:
    """The cached wheel of corpus member *name* (pinned version unless *version* is given)."""
    wheel = _lookup(name, version)
    return ensure([wheel])[wheel]


def wheel_paths(names: Iterable[str] = ALL) -> list[Path]:
    """Cached wheels of several corpus members, fetched in a single pip run if needed."""
    wheels = [_lookup(n, None) for n in names]
    found = ensure(wheels)
    return [found[w] for w in wheels]


@cache
def base_python() -> Path:
    """The base (non-venv) interpreter behind the running one, found from ``sys.base_prefix``."""
    base = Path(sys.base_prefix)
    major, minor = sys.version_info[:2]
    if os.name == "nt":
        candidates = [base / "python.exe"]
    else:
        candidates = [base / "bin" / f"python{major}.{minor}", base / "bin" / f"python{major}"]
    candidates.append(Path(getattr(sys, "_base_executable", sys.executable)))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RuntimeError(f"no base interpreter found under {base}")


def venv_python(venv: Path) -> Path:
    """The interpreter path tests hand to pip and stalwart (``bin/python3`` on POSIX).

    Both write this exact path into generated scripts' shebangs, so both get the same one.
    """
    return venv / _BIN / ("python.exe" if os.name == "nt" else "python3")


def fresh_venv(path: Path, python: Path | None = None) -> Path:
    """Create a virtual environment at *path* without pip (fast); returns *path*."""
    return make_venv(path, python or base_python(), clean_env()).root


def pip(venv: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the repo venv's real pip on *venv* (``pip --python <venv>/bin/python3 ARGS``)."""
    cmd = [str(_reference_python()), "-m", "pip", "--python", str(venv_python(venv)), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), check=False)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def pip_install(venv: Path, wheels: Iterable[Path | str], *args: str) -> None:
    """Install local *wheels* into *venv* with pip: no dependencies, no index."""
    pip(venv, "install", "--no-deps", "--no-index", *args, *map(str, wheels))


def stalwart(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real ``stalwart`` command of the repo venv (a subprocess, like a user would)."""
    exe = VENV / _BIN / f"stalwart{_EXE}"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "stalwart"]
    proc = subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=clean_env(), check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"stalwart {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
