"""The target environment: where a target interpreter installs, and what wheels fit it.

A value built from what the interpreter reported (:mod:`stalwart.interpreter`) plus how the
user asked to install (``--prefix``, ``--target``). Everything else asks it for directories:
the install scheme, the directories holding ``.dist-info``, stalwart's state directory, the
lock, and the directories install, uninstall and recovery may touch. Pure.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from stalwart.errors import UsageError
from stalwart.interpreter import InterpreterInfo, query_interpreter, resolve_python

if TYPE_CHECKING:
    from packaging.tags import Tag

__all__ = ["Scheme", "Environment", "query_environment", "STATE_DIR_NAME"]

STATE_DIR_NAME = ".stalwart"
_SCHEME_KEYS = frozenset({"purelib", "platlib", "scripts", "data", "headers"})


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


@dataclass(frozen=True)
class Environment:
    """A target interpreter's install scheme, as stalwart will use it."""

    interpreter: InterpreterInfo
    target: str | None = None  # --target: everything in one directory
    prefix: str | None = None  # --prefix: the interpreter's scheme, rooted elsewhere

    # -- the interpreter -------------------------------------------------------------------

    @property
    def executable(self) -> str:
        return self.interpreter.executable

    @property
    def version(self) -> tuple[int, int, int]:
        return self.interpreter.version

    @property
    def platform(self) -> str:
        return self.interpreter.platform

    @property
    def windows(self) -> bool:
        return self.interpreter.os_name == "nt"

    @property
    def in_venv(self) -> bool:
        return self.interpreter.in_venv and self.prefix is None

    @property
    def paths(self) -> dict[str, str]:
        return self.interpreter.paths

    @property
    def stdlib(self) -> str:
        return self.interpreter.stdlib

    @property
    def platstdlib(self) -> str:
        return self.interpreter.platstdlib

    # -- directories -----------------------------------------------------------------------

    @property
    def site_packages(self) -> str:
        """Where ``.dist-info`` directories live (purelib, as pip and installer put them)."""
        return self.target or self.paths["purelib"]

    @cached_property
    def lib_dirs(self) -> list[str]:
        """Directories holding ``.dist-info`` directories (purelib, and platlib if different)."""
        if self.target is not None:
            return [self.target]
        return list(dict.fromkeys([self.paths["purelib"], self.paths["platlib"]]))

    @cached_property
    def state_dir(self) -> str:
        """stalwart's own area inside the environment: staging, journal, backups, trash.

        Inside site-packages, so renames from it into place never cross filesystems; the dot
        keeps it from ever being imported. Removed again when a command leaves it empty.
        """
        return os.path.join(self.site_packages, STATE_DIR_NAME)

    @property
    def lock_path(self) -> str:
        """What the environment lock is taken on.

        POSIX: the site-packages directory itself (``flock`` on a read-only descriptor writes
        nothing). Windows cannot lock a directory: a file in the state directory.
        """
        if sys.platform == "win32":
            return os.path.join(self.state_dir, "lock")
        return self.site_packages

    @property
    def root(self) -> str:
        """The environment's own directory: the prefix, or the --target directory."""
        return self.target or self.prefix or self.interpreter.prefix

    @cached_property
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

    @property
    def stop_dirs(self) -> list[str]:
        """Directories never removed when they end up empty (scheme directories, roots)."""
        scheme_dirs = [self.paths[k] for k in ("purelib", "platlib", "scripts", "data")]
        return [*scheme_dirs, *self.lib_dirs, *self.roots]

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
                self.interpreter.prefix, "include", "site", f"python{major}.{minor}", dist_name
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

    # -- what fits -------------------------------------------------------------------------

    @cached_property
    def tags(self) -> list[Tag]:
        """Wheel tags this interpreter accepts, best first (``packaging.tags`` order)."""
        from packaging import tags as t

        info = self.interpreter
        version = info.version[:2]
        platforms = self._platforms()
        if info.implementation == "cpython":
            release = f"cp{version[0]}{version[1]}{'t' if info.gil_disabled else ''}"
            # A debug build also loads release-ABI extensions (3.8+), as packaging.tags says.
            abis = [f"{release}d", release] if info.debug else [release]
            result = list(t.cpython_tags(version, abis, platforms))
            interpreter = f"cp{version[0]}{version[1]}"
        else:
            short = _INTERPRETER_NAMES.get(info.implementation, info.implementation)
            interpreter = f"{short}{version[0]}{version[1]}"
            result = list(t.generic_tags(interpreter, [_generic_abi(info.soabi)], platforms))
        result.extend(t.compatible_tags(version, interpreter, platforms))
        return result

    def _platforms(self) -> list[str]:
        # Platform tags depend on the machine (glibc version, macOS release) more than on the
        # interpreter; the target runs on this machine, so ask packaging here when the
        # interpreter's platform matches ours, and fall back to its own platform otherwise.
        import sysconfig

        from packaging import tags as t

        info = self.interpreter
        if info.platform == sysconfig.get_platform() and info.pointer_bits == (
            64 if sys.maxsize > 2**32 else 32
        ):
            return list(t.platform_tags())
        return [info.platform.replace("-", "_").replace(".", "_")]


#: PEP 425 short names of implementations (``packaging.tags.INTERPRETER_SHORT_NAMES``), for the
#: *target*: the interpreter running stalwart may be another one.
_INTERPRETER_NAMES = {
    "python": "py",
    "cpython": "cp",
    "pypy": "pp",
    "ironpython": "ip",
    "jython": "jy",
}


def _generic_abi(soabi: str) -> str:
    """The ABI tag of a non-CPython target from its SOABI, as packaging derives it
    (``pypy310-pp73-x86_64-linux-gnu`` -> ``pypy310_pp73``; none -> ``none``)."""
    if not soabi:
        return "none"
    parts = soabi.split("-")
    head = "_".join(parts[:2]) if soabi.startswith("pypy") and len(parts) > 1 else parts[0]
    return head.replace(".", "_")


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
    executable = resolve_python(python)
    root = os.path.abspath(prefix) if prefix else None
    info = query_interpreter(executable, prefix=root, use_cache=use_cache)
    return Environment(info, target=os.path.abspath(target) if target else None, prefix=root)
