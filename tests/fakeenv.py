"""Target environments of a fake interpreter, and installed distributions written by hand.

For unit tests of the modules that only *use* an environment (plan, environment, installed,
uninstall, verify, staging, safety, session): an :class:`InterpreterInfo` is built from a POSIX
layout below a temporary directory, so no subprocess runs and every directory is known in
advance. Tests that need a real interpreter use :mod:`venvs` instead.

- :func:`venv_info`    a virtual environment (``<root>/bin/python``, ``lib/pythonX.Y/...``)
- :func:`system_info`  a Debian-like system interpreter (``/usr``, ``/usr/local/.../dist-packages``)
- :func:`prefix_info`  what the interpreter reports when asked for a ``--prefix`` scheme
- :func:`materialize`  creates an environment's scheme directories and its interpreter file
- :func:`write_dist`   an installed ``.dist-info`` with a correct RECORD, as an installer leaves it
- :class:`Wheels`      opens wheels built with ``wheelfactory`` and closes them after the test
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from packaging.markers import default_environment

from stalwart.environment import Environment
from stalwart.interpreter import InterpreterInfo
from stalwart.wheel.wheelfile import Wheel, open_wheel
from wheelfactory import build_wheel, record_bytes, record_row

__all__ = [
    "VERSION",
    "venv_info",
    "system_info",
    "prefix_info",
    "materialize",
    "write_dist",
    "Wheels",
]

VERSION = (3, 11, 7)
POINTER_BITS = 64 if sys.maxsize > 2**32 else 32


def _info(
    *,
    executable: Path,
    prefix: Path,
    in_venv: bool,
    purelib: Path,
    platlib: Path,
    scripts: Path,
    data: Path,
    include: Path,
    stdlib: Path,
    platstdlib: Path,
    version: tuple[int, int, int],
    implementation: str,
    platform: str | None,
    soabi: str | None,
    debug: bool,
    gil_disabled: bool,
    pointer_bits: int | None,
) -> InterpreterInfo:
    major, minor, _ = version
    if soabi is None:
        soabi = f"cpython-{major}{minor}-x86_64-linux-gnu" if implementation == "cpython" else ""
    return InterpreterInfo(
        executable=str(executable),
        prefix=str(prefix),
        in_venv=in_venv,
        paths={
            "purelib": str(purelib),
            "platlib": str(platlib),
            "scripts": str(scripts),
            "data": str(data),
            "include": str(include),
        },
        implementation=implementation,
        version=version,
        platform=sysconfig.get_platform() if platform is None else platform,
        soabi=soabi,
        debug=debug,
        gil_disabled=gil_disabled,
        pointer_bits=POINTER_BITS if pointer_bits is None else pointer_bits,
        os_name="posix",
        stdlib=str(stdlib),
        platstdlib=str(platstdlib),
        markers=dict(default_environment()),
    )


def venv_info(
    root: Path,
    *,
    base: Path | None = None,
    platlib: str = "lib",
    version: tuple[int, int, int] = VERSION,
    implementation: str = "cpython",
    platform: str | None = None,
    soabi: str | None = None,
    debug: bool = False,
    gil_disabled: bool = False,
    pointer_bits: int | None = None,
) -> InterpreterInfo:
    """A POSIX virtual environment at *root* made from the interpreter installed at *base*.

    *platlib* ``"lib64"`` gives the split purelib/platlib layout of some distributions.
    """
    base = root.parent / "base" if base is None else base
    py = f"python{version[0]}.{version[1]}"
    return _info(
        executable=root / "bin" / "python",
        prefix=root,
        in_venv=True,
        purelib=root / "lib" / py / "site-packages",
        platlib=root / platlib / py / "site-packages",
        scripts=root / "bin",
        data=root,
        include=base / "include" / py,
        stdlib=base / "lib" / py,
        platstdlib=root / "lib" / py,
        version=version,
        implementation=implementation,
        platform=platform,
        soabi=soabi,
        debug=debug,
        gil_disabled=gil_disabled,
        pointer_bits=pointer_bits,
    )


def system_info(root: Path, *, version: tuple[int, int, int] = VERSION) -> InterpreterInfo:
    """A Debian-like system interpreter below *root*: prefix ``/usr``, installs into
    ``/usr/local`` (scripts, data and site-packages outside the prefix's own lib)."""
    py = f"python{version[0]}.{version[1]}"
    usr = root / "usr"
    site = usr / "local" / "lib" / py / "dist-packages"
    return _info(
        executable=usr / "bin" / py,
        prefix=usr,
        in_venv=False,
        purelib=site,
        platlib=site,
        scripts=usr / "local" / "bin",
        data=usr / "local",
        include=usr / "include" / py,
        stdlib=usr / "lib" / py,
        platstdlib=usr / "lib" / py,
        version=version,
        implementation="cpython",
        platform=None,
        soabi=None,
        debug=False,
        gil_disabled=False,
        pointer_bits=None,
    )


def prefix_info(
    prefix: Path, *, interpreter: InterpreterInfo, version: tuple[int, int, int] = VERSION
) -> InterpreterInfo:
    """What *interpreter* reports when asked for its ``posix_prefix`` scheme rooted at
    *prefix* (every base moved there, as ``_query_interpreter.py`` asks)."""
    py = f"python{version[0]}.{version[1]}"
    site = prefix / "lib" / py / "site-packages"
    return _info(
        executable=Path(interpreter.executable),
        prefix=prefix,
        in_venv=interpreter.in_venv,
        purelib=site,
        platlib=site,
        scripts=prefix / "bin",
        data=prefix,
        include=prefix / "include" / py,
        stdlib=Path(interpreter.stdlib),
        platstdlib=Path(interpreter.platstdlib),
        version=version,
        implementation="cpython",
        platform=None,
        soabi=None,
        debug=False,
        gil_disabled=False,
        pointer_bits=None,
    )


def materialize(env: Environment) -> Environment:
    """Create *env*'s lib dirs, scripts directory and an (inert) interpreter file; returns it."""
    for directory in [*env.lib_dirs, env.scheme("x").scripts]:
        Path(directory).mkdir(parents=True, exist_ok=True)
    exe = Path(env.executable)
    if not exe.exists():
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_bytes(b"#!/bin/sh\nexit 99\n")
        exe.chmod(0o755)
    return env


def write_dist(
    lib_dir: str | Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    rows: Iterable[tuple[str, str, str]] | None = None,
    record: bool = True,
    dist_info_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Lay out an installed distribution below *lib_dir*; returns its ``.dist-info``.

    *files* maps RECORD paths (relative to *lib_dir*, ``../`` allowed for scripts and data)
    to content; each is written and listed with its sha256. *rows* replaces the generated
    RECORD rows (for hostile or stale RECORDs); ``record=False`` leaves RECORD out.
    *dist_info_files* adds files to ``.dist-info`` that RECORD does not list.
    """
    lib = Path(lib_dir)
    dist_info = lib / f"{name}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    own = {
        "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        "INSTALLER": b"test\n",
    }
    for rel, data in files.items():
        path = Path(os.path.normpath(lib / rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for rel, data in own.items():
        (dist_info / rel).write_bytes(data)
    for rel, data in (dist_info_files or {}).items():
        (dist_info / rel).parent.mkdir(parents=True, exist_ok=True)
        (dist_info / rel).write_bytes(data)
    if record:
        prefix = f"{name}-{version}.dist-info"
        if rows is None:
            listed = {**files, **{f"{prefix}/{n}": d for n, d in own.items()}}
            rows = [record_row(rel, data) for rel, data in listed.items()]
            rows.append((f"{prefix}/RECORD", "", ""))
        (dist_info / "RECORD").write_bytes(record_bytes(rows))
    return dist_info


class Wheels:
    """Opens wheels and closes every one when *stack* closes (an open wheel holds its file).

    ``wheels(name, version, files, **build_wheel keywords)`` builds one with
    :func:`wheelfactory.build_wheel` into *directory* and opens it; :meth:`open` opens a path.
    """

    def __init__(self, directory: Path, stack: ExitStack) -> None:
        self.directory = directory
        self.stack = stack

    def open(self, path: Path, **kw: Any) -> Wheel:
        opened = open_wheel(path, **kw)
        self.stack.callback(opened.close)
        return opened

    def __call__(self, name: str, version: str, files: Mapping[str, bytes], **kw: Any) -> Wheel:
        return self.open(build_wheel(self.directory, name, version, files, **kw))
