"""Finding a target interpreter and asking it about itself, once.

The target may be any CPython/PyPy 3.8+, not the interpreter running stalwart, so its install
scheme, version and platform are asked of it: one subprocess running ``_query_interpreter.py``.
The answer is kept in memory and on disk (keyed by the interpreter's path, size and mtime), so
repeated commands start without a subprocess. The only write is that cache file, through
:mod:`stalwart.fs`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from stalwart import fs
from stalwart.cache import cache_dir
from stalwart.errors import TargetEnvironmentError

__all__ = [
    "InterpreterInfo",
    "resolve_python",
    "discover_python",
    "query_interpreter",
    "interpreter_env",
    "helper_script",
    "QUERY_BEGIN",
    "QUERY_END",
]

_CACHE_VERSION = 5
#: Markers around the query's answer: a ``.pth`` file in the target's site-packages may print
#: anything to stdout at start-up, before the query runs.
QUERY_BEGIN = "\x1estalwart-query-begin\x1e"
QUERY_END = "\x1estalwart-query-end\x1e"


@dataclass(frozen=True, slots=True)
class InterpreterInfo:
    """What a target interpreter reported about itself (``_query_interpreter.py``)."""

    executable: str
    prefix: str  # sys.prefix, or the --prefix asked for
    in_venv: bool
    paths: dict[str, str]  # sysconfig scheme: purelib, platlib, scripts, data, include
    implementation: str
    version: tuple[int, int, int]
    platform: str  # sysconfig.get_platform()
    soabi: str
    debug: bool
    gil_disabled: bool
    pointer_bits: int
    os_name: str
    stdlib: str
    platstdlib: str
    markers: dict[str, str]  # PEP 508 environment markers, evaluated by the target itself
    cache_tag: str = ""  # sys.implementation.cache_tag: names __pycache__ files ("" = none)
    magic: str = ""  # importlib.util.MAGIC_NUMBER, hex: which bytecode it reads

    @property
    def bytecode_tag(self) -> str:
        """Names this interpreter's bytecode in the wheel cache: its cache tag and magic."""
        return f"{self.cache_tag}-{self.magic}" if self.cache_tag and self.magic else ""


def resolve_python(python: str | None) -> str:
    """The absolute path of the interpreter *python* names (default: the running one).

    *python* may be a path, a virtual environment's directory (as uv accepts), or a command name
    looked up on ``PATH``.
    """
    if python is None:
        return sys.executable
    candidate = python
    if os.path.isdir(candidate):
        sub = "Scripts" if os.name == "nt" else "bin"
        exe = "python.exe" if os.name == "nt" else "python"
        candidate = os.path.join(candidate, sub, exe)
    elif os.sep not in candidate and (os.altsep is None or os.altsep not in candidate):
        import shutil  # noqa: TID251 - shutil.which only reads

        found = shutil.which(candidate)
        if found is None:
            raise TargetEnvironmentError(f"no interpreter named {python!r} on PATH")
        candidate = found
    if not os.path.exists(candidate):
        raise TargetEnvironmentError(f"the interpreter {python} does not exist")
    return os.path.abspath(candidate)


def discover_python(
    python: str | None,
    *,
    system: bool = False,
    environ: dict[str, str] | None = None,
    cwd: str | None = None,
) -> str:
    """The interpreter a command should use, found as uv finds it.

    ``--python`` if given; else the active virtual environment (``VIRTUAL_ENV``); else a
    ``.venv`` in the current directory or one of its parents; else, only with ``--system``,
    the first ``python3`` on ``PATH``. Never silently the interpreter running stalwart: that
    is how a tool's own environment, or a system Python, gets changed by accident.
    """
    if python is not None:
        return resolve_python(python)
    env = os.environ if environ is None else environ
    active = env.get("VIRTUAL_ENV", "").strip()
    if active:
        return resolve_python(active)
    here = os.path.abspath(cwd or os.getcwd())
    while True:
        candidate = os.path.join(here, ".venv")
        if os.path.isfile(os.path.join(candidate, "pyvenv.cfg")):
            return resolve_python(candidate)
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    if system:
        import shutil  # noqa: TID251 - shutil.which only reads

        found = shutil.which("python3") or shutil.which("python")
        if found is None:
            raise TargetEnvironmentError("--system: no python3 on PATH")
        return os.path.abspath(found)
    raise TargetEnvironmentError(
        "no virtual environment found: activate one (VIRTUAL_ENV), create one with "
        "`python3 -m venv .venv`, name one with --python, or pass --system to use the "
        "python3 on PATH"
    )


def helper_script(name: str) -> str:
    """Source of a script stalwart runs in the target interpreter (shipped beside this module;
    read directly: importlib.resources costs ~5 ms of start-up for the same bytes)."""
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as f:
        return f.read()


def interpreter_env() -> dict[str, str]:
    """Environment for running the target interpreter: without PYTHON* variables, which could
    point it at our own site-packages or change how it starts (it also runs with ``-I``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


_memo: dict[tuple[str, str | None], InterpreterInfo] = {}


def query_interpreter(
    executable: str, *, prefix: str | None = None, use_cache: bool = True
) -> InterpreterInfo:
    """Ask *executable* for its scheme (rooted at *prefix* if given); cached unless told not to.

    ``use_cache=False`` runs the interpreter again and refreshes both caches: it is how a
    caller asks for the truth after changing the interpreter.
    """
    memo_key = (executable, prefix)
    if use_cache and memo_key in _memo:
        return _memo[memo_key]
    path = _cache_path(executable, prefix)
    info = _read_cache(path) if use_cache and path is not None else None
    if info is None:
        data = _run_query(executable, prefix)
        info = _info(executable, data)
        if path is not None:
            try:
                fs.makedirs(os.path.dirname(path))
                fs.write_atomic(path, json.dumps(data).encode(), durable=False)
            except OSError:
                pass  # a cache that cannot be written only costs a subprocess next time
    _memo[memo_key] = info
    return info


def _cache_path(executable: str, prefix: str | None) -> str | None:
    try:
        st = os.stat(executable)
    except OSError:
        return None
    ident = json.dumps([_CACHE_VERSION, executable, st.st_size, st.st_mtime_ns, prefix])
    key = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return os.path.join(cache_dir(), "interpreters", f"{key}.json")


def _read_cache(path: str) -> InterpreterInfo | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return _info(data.get("executable", ""), data)
    except (OSError, ValueError, AttributeError, TargetEnvironmentError):
        return None  # missing or damaged: ask the interpreter again


def _run_query(executable: str, prefix: str | None) -> dict[str, Any]:
    import subprocess  # only on a cache miss: most commands never start the interpreter

    script = helper_script("_query_interpreter.py")
    args = json.dumps({"prefix": prefix} if prefix else {})
    try:
        proc = subprocess.run(
            [executable, "-I", "-c", script, args],
            capture_output=True,
            text=True,
            errors="replace",
            env=interpreter_env(),
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise TargetEnvironmentError(f"cannot run the interpreter {executable}: {exc}") from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise TargetEnvironmentError(
            f"the interpreter {executable} failed to report its install scheme: {detail[0]}"
        )
    begin = proc.stdout.rfind(QUERY_BEGIN)
    end = proc.stdout.rfind(QUERY_END)
    try:
        if begin < 0 or end < begin:
            raise ValueError("no answer")
        data = json.loads(proc.stdout[begin + len(QUERY_BEGIN) : end])
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise TargetEnvironmentError(
            f"{executable} did not report a usable install scheme; is it a Python interpreter?"
        )
    return data


def _info(executable: str, data: dict[str, Any]) -> InterpreterInfo:
    try:
        version = tuple(int(v) for v in data["version"])
        if len(version) != 3:
            raise ValueError(version)
        return InterpreterInfo(
            executable=str(data["executable"]),
            prefix=str(data["prefix"]),
            in_venv=bool(data["in_venv"]),
            paths={
                k: str(data["paths"][k])
                for k in ("purelib", "platlib", "scripts", "data", "include")
            },
            implementation=str(data["implementation"]),
            version=(version[0], version[1], version[2]),
            platform=str(data["platform"]),
            soabi=str(data["soabi"]),
            debug=bool(data["debug"]),
            gil_disabled=bool(data["gil_disabled"]),
            pointer_bits=int(data["pointer_bits"]),
            os_name=str(data["os_name"]),
            stdlib=str(data["stdlib"]),
            platstdlib=str(data["platstdlib"]),
            markers={str(k): str(v) for k, v in dict(data["markers"]).items()},
            cache_tag=str(data.get("cache_tag") or ""),
            magic=str(data.get("magic") or ""),
        )
    except (KeyError, TypeError, ValueError):
        raise TargetEnvironmentError(
            f"{executable} did not report a usable install scheme; is it a Python interpreter?"
        ) from None
