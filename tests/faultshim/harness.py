"""Run a real process with faultshim.so preloaded: filesystem faults and kills below Python.

The shim (``faultshim.c`` next to this file) interposes the libc calls that mutate the disk, so
it works on any process, such as the ``stalwart`` CLI, without touching its code. This module
compiles it once per source version and sets the ``FAULTSHIM_*`` environment for a child::

    from faultshim.harness import Rule, run_under_shim

    result = run_under_shim(
        [sys.executable, "-c", "import os; os.replace('a', 'b')"],
        rules=[Rule("rename", "*b", "EBUSY", 3)],
        log=tmp_path / "faults.log",
        cwd=tmp_path,
    )

``Rule(..., seconds=0.3)`` is a lock of a given length instead: matching calls fail from the
first one until 0.3 s have passed, however the process retries.

Linux/glibc only. A missing or failing C compiler is an error, not a skip: CI installs gcc.
"""

from __future__ import annotations

import errno as errno_mod
import hashlib
import os
import platform
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_EXIT_STATUS",
    "DEFAULT_CACHE_DIR",
    "KILLED",
    "OPS",
    "SOURCE",
    "LogEntry",
    "Rule",
    "ShimConfigError",
    "build_shim",
    "compile_command",
    "mutation_points",
    "read_count",
    "read_log",
    "run_under_shim",
]

SOURCE = Path(__file__).with_name("faultshim.c")
REPO_ROOT = Path(__file__).resolve().parents[2]
#: ``.cache/`` is gitignored; one .so per source version lives here.
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "faultshim"

#: Operation names a rule can target ("*" = any of them).
OPS = frozenset(
    {"rename", "unlink", "rmdir", "link", "symlink", "mkdir", "chmod", "open", "write", "*"}
)
#: Exit status of a process whose FAULTSHIM_* configuration the shim rejected.
CONFIG_EXIT_STATUS = 111
#: ``returncode`` of a process the shim killed at ``kill_at``.
KILLED = -signal.SIGKILL

_CFLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra")
_LIBS = ("-ldl", "-pthread")  # libdl/libpthread are part of libc since glibc 2.34; older needs them
_ENV_PREFIX = "FAULTSHIM_"


class ShimConfigError(RuntimeError):
    """The shim refused its configuration (the child exited before running anything)."""


def compile_command(output: Path, *, extra: Sequence[str] = ()) -> list[str]:
    """The compiler invocation that builds the shim into *output*."""
    cc = os.environ.get("CC") or "gcc"
    return [cc, *_CFLAGS, *extra, "-o", str(output), str(SOURCE), *_LIBS]


def build_shim(cache_dir: Path | None = None) -> Path:
    """Compile ``faultshim.c`` into *cache_dir* (default ``<repo>/.cache/faultshim``), once.

    The file name carries a hash of the source, flags and machine, so an edited ``.c`` is
    rebuilt automatically and concurrent builders (pytest-xdist workers) never see a
    half-written library: each compiles to a private name and renames it into place.
    """
    cache_dir = DEFAULT_CACHE_DIR if cache_dir is None else Path(cache_dir)
    machine = platform.machine() or "unknown"
    digest = hashlib.sha256()
    digest.update(SOURCE.read_bytes())
    digest.update(" ".join((*_CFLAGS, *_LIBS, machine)).encode())
    output = cache_dir / f"faultshim-{machine}-{digest.hexdigest()[:16]}.so"
    if output.is_file():
        return output

    cmd = compile_command(output)
    if shutil.which(cmd[0]) is None:
        raise RuntimeError(
            f"cannot build the fault-injection shim: C compiler {cmd[0]!r} not found "
            "(install gcc, or set CC)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{output.name}.{os.getpid()}.partial"
    cmd = compile_command(partial)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"building the fault-injection shim failed ({' '.join(cmd)}):\n{proc.stderr}"
        )
    os.replace(partial, output)
    for stale in cache_dir.glob(f"faultshim-{machine}-*.so"):
        if stale != output:
            stale.unlink(missing_ok=True)
    return output


@dataclass(frozen=True, slots=True)
class Rule:
    """Fail the next *count* calls of *op* on a path matching *glob* with *errno*.

    *op* is one of :data:`OPS`; at-variants share their family's name (``renameat`` is
    ``rename``, ``unlinkat(AT_REMOVEDIR)`` is ``rmdir``, ``openat`` is ``open``). *glob* is an
    fnmatch(3) pattern whose ``*`` also crosses ``/``; it is tried against each path argument as
    the process passed it (relative paths stay relative) and, for dirfd-relative calls, also
    joined to the directory. *errno* is a name (``"EBUSY"``) or a number; *count* = -1 never
    stops failing. The first rule that matches and has a count left decides a call.

    With *seconds*, the rule is a lock episode of that length: it fails matching calls from
    the first one until *seconds* of CLOCK_MONOTONIC have passed (at most *count* of them,
    -1 for no limit), then lets every call through, whoever retries how often.
    """

    op: str
    glob: str
    errno: str | int
    count: int
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; expected one of {sorted(OPS)}")
        if not self.glob or ";" in self.glob:
            raise ValueError(f"glob must be non-empty and free of ';': {self.glob!r}")
        self.errno_number()  # validates
        if self.count < -1:
            raise ValueError(f"count must be >= -1, got {self.count}")
        if self.seconds is not None and not 0 <= self.seconds < 1e9:  # also refuses nan
            raise ValueError(f"seconds must be >= 0, got {self.seconds}")
        if self.seconds is None and self.count >= 0 and _is_errno(self.glob.rpartition(":")[2]):
            # The shim would read "...:<errno>:<errno>:<count>" as op:glob:errno:count:ms.
            raise ValueError(f"a glob ending in ':<errno>' needs seconds: {self.glob!r}")

    def errno_number(self) -> int:
        """The errno as a number; names are looked up in the :mod:`errno` module."""
        if isinstance(self.errno, int):
            number = self.errno
        else:
            found: object = getattr(errno_mod, self.errno, None) if self.errno.isupper() else None
            if not isinstance(found, int):
                raise ValueError(f"unknown errno name {self.errno!r}")
            number = found
        if not 0 < number < 4096:
            raise ValueError(f"errno out of range: {number}")
        return number

    def spec(self) -> str:
        """The ``op:glob:errno:count[:ms]`` text of ``FAULTSHIM_RULES`` (errno as a number)."""
        text = f"{self.op}:{self.glob}:{self.errno_number()}:{self.count}"
        if self.seconds is not None:
            text += f":{self.seconds * 1000:.6f}"
        return text


def _is_errno(text: str) -> bool:
    """Whether the shim would take *text* for an errno field (a name it knows, or 1..4095)."""
    if text.isdigit():
        return 0 < int(text) < 4096
    return text.isupper() and isinstance(getattr(errno_mod, text, None), int)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of ``FAULTSHIM_LOG``.

    *kind* is ``"fault"``, ``"kill"`` or ``"point"`` (trace); *point* the mutation point number
    (0 for an uncounted write); *errno* the injected error (None for kills and trace lines).
    """

    kind: str
    pid: int
    point: int
    op: str
    errno: int | None
    paths: tuple[str, ...]


def read_log(path: Path) -> list[LogEntry]:
    """Parse a ``FAULTSHIM_LOG`` file; a missing file means nothing was logged."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        kind, pid, point, op, err, *paths = line.split("\t")
        code: int | None
        if err in ("-", "SIGKILL"):
            code = None
        elif err.isdigit():
            code = int(err)
        else:
            code = getattr(errno_mod, err)
        entries.append(LogEntry(kind, int(pid), int(point), op, code, tuple(paths)))
    return entries


def read_count(path: Path) -> int:
    """The number of mutation points a finished process reported in ``FAULTSHIM_COUNT_FILE``."""
    return int(Path(path).read_text(encoding="ascii").strip())


def _shim_env(
    shim: Path,
    *,
    rules: Sequence[Rule],
    kill_at: int | None,
    count_file: Path | None,
    log: Path | None,
    ignore: Sequence[str],
    trace: bool,
    count_writes: bool,
    env: Mapping[str, str] | None,
) -> dict[str, str]:
    # Never inherit a configuration from an outer shim-run process.
    out = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIX)}
    if env:
        out.update(env)
    preload = out.get("LD_PRELOAD", "")
    out["LD_PRELOAD"] = f"{shim}:{preload}" if preload else str(shim)
    out["PYTHONDONTWRITEBYTECODE"] = "1"
    if rules:
        out["FAULTSHIM_RULES"] = ";".join(rule.spec() for rule in rules)
    if kill_at is not None:
        if kill_at < 1:
            raise ValueError(f"kill_at counts from 1, got {kill_at}")
        out["FAULTSHIM_KILL_AT"] = str(kill_at)
    if count_file is not None:
        out["FAULTSHIM_COUNT_FILE"] = os.fspath(count_file)
    if log is not None:
        out["FAULTSHIM_LOG"] = os.fspath(log)
    if ignore:
        if any(":" in glob or not glob for glob in ignore):
            raise ValueError(f"ignore globs must be non-empty and free of ':': {ignore!r}")
        out["FAULTSHIM_IGNORE"] = ":".join(ignore)
    if trace:
        out["FAULTSHIM_TRACE"] = "1"
    if count_writes:
        out["FAULTSHIM_COUNT_WRITES"] = "1"
    return out


def run_under_shim(
    argv: Sequence[str | os.PathLike[str]],
    *,
    rules: Sequence[Rule] = (),
    kill_at: int | None = None,
    count_file: Path | None = None,
    log: Path | None = None,
    ignore: Sequence[str] = (),
    trace: bool = False,
    count_writes: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    shim: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run *argv* with the shim preloaded and return its result (text, output captured).

    *env* is applied on top of this process's environment (minus any ``FAULTSHIM_*``), then
    the shim's variables and ``PYTHONDONTWRITEBYTECODE=1`` are set. A process killed at
    *kill_at* has ``returncode ==`` :data:`KILLED` (-9). The counters are per process: children
    the program starts inherit the configuration and count (and may be killed) on their own.
    Raises :class:`ShimConfigError` if the shim rejected its configuration.
    """
    child_env = _shim_env(
        build_shim() if shim is None else shim,
        rules=rules,
        kill_at=kill_at,
        count_file=count_file,
        log=log,
        ignore=ignore,
        trace=trace,
        count_writes=count_writes,
        env=env,
    )
    result = subprocess.run(
        [os.fspath(arg) for arg in argv],
        env=child_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode == CONFIG_EXIT_STATUS and result.stderr.startswith("faultshim: "):
        raise ShimConfigError(result.stderr.strip())
    return result


def mutation_points(
    argv: Sequence[str | os.PathLike[str]], *, count_file: Path, **kwargs: Any
) -> int:
    """Run *argv* once under the shim (no kill) and return how many mutation points it hit.

    The run must succeed, so a crash schedule ``kill_at=1..N`` is built on a good baseline.
    Other keyword arguments go to :func:`run_under_shim`.
    """
    if "kill_at" in kwargs:
        raise TypeError("mutation_points() runs without kill_at")
    result = run_under_shim(argv, count_file=count_file, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(
            f"baseline run failed with {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return read_count(count_file)
