"""The target environment: its install scheme and wheel tags, asked of its own interpreter.

The interpreter is queried once (one subprocess running ``_query_interpreter.py``); the answer
is cached in memory and on disk, keyed by the interpreter's path, size and mtime, so repeated
commands start without a subprocess. Reading is pure; the only write is the cache file, through
``stalwart.fs``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from stalwart import fs
from stalwart.errors import TargetEnvironmentError, UsageError

if TYPE_CHECKING:
    from packaging.tags import Tag

__all__ = [
    "Scheme",
    "Environment",
    "query_environment",
    "cache_dir",
    "interpreter_env",
    "helper_script",
]

_CACHE_VERSION = 2


@dataclass(frozen=True, slots=True)
class Scheme:
    """Where each kind of file of a distribution goes (the wheel spec's ``.data`` keys)."""

    purelib: str
    platlib: str
    scripts: str
    data: str
    headers: str

    def get(self, key: str) -> str | None:
        """The directory for a ``.data`` key, or None for a key the wheel spec does not know."""
        return getattr(self, key) if key in _SCHEME_KEYS else None


_SCHEME_KEYS = frozenset({"purelib", "platlib", "scripts", "data", "headers"})


@dataclass(frozen=True)
class Environment:
    """What stalwart knows about a target interpreter and where it installs."""

    executable: str
    prefix: str
    in_venv: bool
    paths: dict[str, str]
    implementation: str
    cache_tag: str | None
    version: tuple[int, int, int]
    platform: str
    soabi: str
    debug: bool
    gil_disabled: bool
    pointer_bits: int
    os_name: str
    stdlib: str
    platstdlib: str
    target: str | None = None
    custom_prefix: bool = False  # --prefix: the interpreter's scheme, rooted elsewhere
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def windows(self) -> bool:
        return self.os_name == "nt"

    @property
    def site_packages(self) -> str:
        """Where ``.dist-info`` directories live (purelib, as pip and installer put them)."""
        return self.paths["purelib"]

    @property
    def state_dir(self) -> str:
        """stalwart's own area inside the environment: staging, journal, backups, trash.

        Inside site-packages, so renames from it into place never cross filesystems; the dot
        keeps it from ever being imported. Removed again when a command leaves it empty.
        """
        return os.path.join(self.target or self.paths["purelib"], ".stalwart")

    @property
    def lib_dirs(self) -> list[str]:
        """Directories holding ``.dist-info`` directories (purelib, and platlib if different)."""
        if self.target is not None:
            return [self.target]
        return list(dict.fromkeys([self.paths["purelib"], self.paths["platlib"]]))

    @property
    def root(self) -> str:
        """The environment's own directory: the prefix, or the --target directory."""
        return self.target or self.prefix

    @property
    def roots(self) -> list[str]:
        """Every directory install may write below: the root and each scheme directory (a
        system interpreter may keep scripts or headers outside its prefix). Uninstall and
        recovery accept exactly these, so whatever install wrote they can also undo."""
        if self.target is not None:
            return [self.target]
        scheme = self.scheme("x")  # the headers directory, without a distribution's own part
        schemed = (scheme.purelib, scheme.platlib, scheme.scripts, scheme.data)
        dirs = [self.root, *self.lib_dirs, *schemed, os.path.dirname(scheme.headers)]
        return list(dict.fromkeys(os.path.normpath(d) for d in dirs))

    def scheme(self, dist_name: str) -> Scheme:
        """The scheme for one distribution (headers are per distribution, as in pip)."""
        if self.target is not None:
            return Scheme(
                purelib=self.target,
                platlib=self.target,
                scripts=os.path.join(self.target, "bin"),
                data=self.target,
                headers=os.path.join(self.target, "include", dist_name),
            )
        if self.in_venv:
            major, minor = self.version[:2]
            headers = os.path.join(
                self.prefix, "include", "site", f"python{major}.{minor}", dist_name
            )
        else:
            headers = os.path.join(self.paths["include"], dist_name)
        return Scheme(
            purelib=self.paths["purelib"],
            platlib=self.paths["platlib"],
            scripts=self.paths["scripts"],
            data=self.paths["data"],
            headers=headers,
        )

    @cached_property
    def tags(self) -> list[Tag]:
        """Wheel tags this interpreter accepts, best first (``packaging.tags`` order)."""
        from packaging import tags as t

        version = self.version[:2]
        platforms = list(self._platforms())
        if self.implementation == "cpython":
            abi = f"cp{version[0]}{version[1]}{'t' if self.gil_disabled else ''}"
            abi += "d" if self.debug else ""
            result = list(t.cpython_tags(version, [abi], platforms))
            interpreter = f"cp{version[0]}{version[1]}"
        else:
            interpreter = f"{t.interpreter_name()}{version[0]}{version[1]}"
            abi = self.soabi.replace("-", "_").replace(".", "_") if self.soabi else "none"
            result = list(t.generic_tags(interpreter, [abi], platforms))
        result.extend(t.compatible_tags(version, interpreter, platforms))
        return result

    def _platforms(self) -> list[str]:
        # Platform tags depend on the machine (glibc version, macOS release) more than on the
        # interpreter; the target runs on this machine, so ask packaging here when the
        # interpreter's platform matches ours, and fall back to its own platform otherwise.
        import sysconfig

        from packaging import tags as t

        if self.platform == sysconfig.get_platform() and self.pointer_bits == (
            64 if sys.maxsize > 2**32 else 32
        ):
            return list(t.platform_tags())
        return [self.platform.replace("-", "_").replace(".", "_")]


def cache_dir() -> str:
    """stalwart's user cache directory (``STALWART_CACHE_DIR``, else XDG / LOCALAPPDATA)."""
    explicit = os.environ.get("STALWART_CACHE_DIR")
    if explicit:
        return explicit
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "stalwart", "Cache")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "stalwart")


def _cache_key(executable: str, prefix: str | None) -> str | None:
    try:
        st = os.stat(executable)
    except OSError:
        return None
    ident = json.dumps([_CACHE_VERSION, executable, st.st_size, st.st_mtime_ns, prefix])
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def helper_script(name: str) -> str:
    """Source of a script stalwart runs in the target interpreter (shipped beside this module;
    read directly: importlib.resources costs ~5 ms of start-up for the same bytes)."""
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as f:
        return f.read()


def interpreter_env() -> dict[str, str]:
    """Environment for running the target interpreter: without PYTHON* variables, which could
    point it at our own site-packages or change how it starts (it also runs with ``-I``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


_REQUIRED = frozenset(
    {
        "executable",
        "prefix",
        "in_venv",
        "paths",
        "implementation",
        "version",
        "platform",
        "os_name",
        "stdlib",
        "platstdlib",
    }
)


def _run_query(executable: str, prefix: str | None) -> dict[str, Any]:
    script = helper_script("_query_interpreter.py")
    args = json.dumps({"prefix": prefix} if prefix else {})
    env = interpreter_env()
    try:
        proc = subprocess.run(
            [executable, "-I", "-c", script, args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    except OSError as exc:
        raise TargetEnvironmentError(f"cannot run the interpreter {executable}: {exc}") from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise TargetEnvironmentError(
            f"the interpreter {executable} failed to report its install scheme: {detail[0]}"
        )
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.keys() >= _REQUIRED:
        raise TargetEnvironmentError(
            f"{executable} did not report a usable install scheme; is it a Python interpreter?"
        )
    return data


_memo: dict[tuple[str, str | None], dict[str, Any]] = {}


def _query(executable: str, prefix: str | None, *, use_cache: bool) -> dict[str, Any]:
    memo_key = (executable, prefix)
    if memo_key in _memo:
        return _memo[memo_key]
    key = _cache_key(executable, prefix) if use_cache else None
    path = os.path.join(cache_dir(), "interpreters", f"{key}.json") if key else None
    data: dict[str, Any] | None = None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = None
    if data is None:
        data = _run_query(executable, prefix)
        if path is not None:
            try:
                fs.makedirs(os.path.dirname(path))
                fs.write_atomic(path, json.dumps(data).encode(), durable=False)
            except OSError:
                pass  # a cache that cannot be written only costs a subprocess next time
    _memo[memo_key] = data
    return data


def query_environment(
    python: str | None = None,
    *,
    prefix: str | None = None,
    target: str | None = None,
    use_cache: bool = True,
) -> Environment:
    """Describe the environment of *python* (default: the running interpreter).

    *prefix* installs into another prefix with the interpreter's scheme (``pip --prefix``);
    *target* puts everything into one directory (``pip --target``).
    """
    if prefix is not None and target is not None:
        raise UsageError("--prefix and --target cannot be used together")
    executable = _resolve_python(python)
    data = _query(executable, os.path.abspath(prefix) if prefix else None, use_cache=use_cache)
    try:
        return _environment(data, prefix, target)
    except (KeyError, TypeError, ValueError):
        raise TargetEnvironmentError(
            f"{executable} did not report a usable install scheme; is it a Python interpreter?"
        ) from None


def _environment(data: dict[str, Any], prefix: str | None, target: str | None) -> Environment:
    return Environment(
        executable=data["executable"],
        prefix=data["prefix"],
        in_venv=bool(data["in_venv"]) and prefix is None,
        paths={
            k: str(data["paths"][k]) for k in ("purelib", "platlib", "scripts", "data", "include")
        },
        implementation=data["implementation"],
        cache_tag=data["cache_tag"],
        version=tuple(data["version"]),
        platform=data["platform"],
        soabi=data["soabi"],
        debug=bool(data["debug"]),
        gil_disabled=bool(data["gil_disabled"]),
        pointer_bits=int(data["pointer_bits"]),
        os_name=data["os_name"],
        stdlib=data["stdlib"],
        platstdlib=data["platstdlib"],
        target=os.path.abspath(target) if target else None,
        custom_prefix=prefix is not None,
        raw=data,
    )


def _resolve_python(python: str | None) -> str:
    if python is None:
        return sys.executable
    candidate = python
    if os.path.isdir(candidate):  # a virtual environment's directory, as uv accepts
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
