"""Planning: where every file of a validated wheel goes. Pure: computes, never writes.

The plan is a tuple of frozen file actions: :class:`Extract` this archive member, or
:class:`Generate` these bytes (scripts, ``INSTALLER``, ``direct_url.json``...), to that absolute
path. Staging it is :mod:`stalwart.staging`'s job, committing it :mod:`stalwart.transaction`'s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stalwart import scripts
from stalwart.environment import STATE_DIR_NAME
from stalwart.errors import InvalidWheelError
from stalwart.paths import PathKey, PathKeys, is_within

if TYPE_CHECKING:
    from stalwart.environment import Environment
    from stalwart.wheel.wheelfile import Wheel

__all__ = ["Extract", "Generate", "FileAction", "WheelPlan", "plan_wheel", "record_path"]

#: What ``.dist-info/INSTALLER`` says (the "Recording installed projects" spec).
INSTALLER = b"stalwart\n"


@dataclass(frozen=True, slots=True)
class Extract:
    """Copy archive *member* to *dest* (absolute, normalized)."""

    dest: str
    member: str
    executable: bool = False
    rewrite_shebang: bool = False  # a .data/scripts file: '#!python' points at the interpreter
    compile: bool = False  # a .py file to byte-compile


@dataclass(frozen=True, slots=True)
class Generate:
    """Write bytes stalwart made (a script, INSTALLER, REQUESTED...) to *dest*."""

    dest: str
    content: bytes
    executable: bool = False

    @property
    def compile(self) -> bool:
        return False  # generated scripts are not importable modules


FileAction = Extract | Generate


@dataclass(frozen=True)
class WheelPlan:
    """Everything installing one wheel will write (RECORD and bytecode come at staging)."""

    wheel: Wheel
    lib_dir: str  # where .dist-info goes; RECORD paths are relative to it
    dist_info_dir: str
    files: tuple[FileAction, ...]

    @property
    def record_file(self) -> str:
        return os.path.join(self.dist_info_dir, "RECORD")


def record_path(lib_dir: str, dest: str) -> str:
    """RECORD path of *dest*: relative to *lib_dir*, '/'-separated (as pip writes it)."""
    if dest.startswith(lib_dir) and dest[len(lib_dir) : len(lib_dir) + 1] == os.sep:
        rel = dest[len(lib_dir) + 1 :]  # the common case, without relpath's cost per file
    else:
        rel = os.path.relpath(dest, lib_dir)
    return rel.replace(os.sep, "/")


def plan_wheel(
    wheel: Wheel,
    env: Environment,
    *,
    requested: bool = True,
    direct_url: dict[str, object] | None = None,
) -> WheelPlan:
    """Map every member of *wheel* to its place in *env*; generate scripts and metadata."""
    # Headers go to a directory named after the distribution: only a valid project name
    # (PEP 508) may name it, never METADATA text such as "..".
    scheme = env.scheme(
        wheel.display_name if _VALID_NAME.fullmatch(wheel.display_name) else wheel.name
    )
    lib_dir = scheme.purelib if wheel.root_is_purelib else scheme.platlib
    dist_info_dir = os.path.join(lib_dir, wheel.dist_info)
    problems: list[str] = []
    actions: list[FileAction] = []
    keys = PathKeys()
    directories: dict[str, str | None] = {}  # a directory's verdict, for _foreign_place
    skip = {f"{wheel.dist_info}/{n}" for n in ("RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER")}
    data_prefix = wheel.data_dir + "/"
    for entry in wheel.files:
        name = entry.name
        if name in skip:
            continue
        executable = bool(entry.mode and entry.mode & 0o111)
        shebang = False
        if name.startswith(data_prefix):
            key, _, rest = name[len(data_prefix) :].partition("/")
            scheme_root = scheme.get(key)
            if scheme_root is None or not rest:
                problems.append(f"{name}: unknown data directory {key!r} (wheel spec: .data)")
                continue
            root = scheme_root
            shebang = key == "scripts"
            executable = executable or shebang
        else:
            root, rest = lib_dir, name
        dest = os.path.normpath(os.path.join(root, *rest.split("/")))
        if not is_within(os.path.normpath(root), dest):
            problems.append(f"{name}: would be written outside {root}")
            continue
        problem = _foreign_place(keys, env, wheel, dest, directories)
        if problem is not None:
            problems.append(f"{name}: {problem}")
            continue
        actions.append(
            Extract(
                dest=dest,
                member=name,
                executable=executable,
                rewrite_shebang=shebang,
                compile=dest.endswith(".py") and not shebang,
            )
        )
    entry_points = wheel.read_text("entry_points.txt")
    if entry_points:
        arch = env.platform if env.windows else None
        try:
            specs = scripts.script_specs(entry_points)
        except InvalidWheelError as exc:
            # script_specs knows only the text: name the wheel, like every other problem here.
            problems.extend(f"{wheel.dist_info}/entry_points.txt: {p}" for p in exc.problems)
            specs = []
        for spec in _versioned_scripts(specs, wheel.name, env.version):
            for rel, content, _mode in scripts.script_files(
                spec, env.executable, windows=env.windows, arch=arch
            ):
                dest = os.path.normpath(os.path.join(scheme.scripts, rel))
                actions.append(Generate(dest=dest, content=content, executable=True))
    actions.append(Generate(dest=os.path.join(dist_info_dir, "INSTALLER"), content=INSTALLER))
    if requested:
        actions.append(Generate(dest=os.path.join(dist_info_dir, "REQUESTED"), content=b""))
    if direct_url is not None:
        actions.append(
            Generate(
                dest=os.path.join(dist_info_dir, "direct_url.json"),
                content=json.dumps(direct_url, sort_keys=True).encode("utf-8"),
            )
        )
    seen: dict[PathKey, str] = {keys.key(os.path.join(dist_info_dir, "RECORD")): "RECORD"}
    for action in actions:
        ident = keys.key(action.dest)  # two spellings of one file (lib64/...) are one path
        what = action.member if isinstance(action, Extract) else action.dest
        if ident in seen:
            problems.append(f"{what} and {seen[ident]} go to the same path")
        seen[ident] = what
    if problems:
        raise InvalidWheelError(wheel.path, problems)
    return WheelPlan(wheel, lib_dir, dist_info_dir, tuple(actions))


def _foreign_place(
    keys: PathKeys, env: Environment, wheel: Wheel, dest: str, seen: dict[str, str | None]
) -> str | None:
    """Why *dest* is no place for a wheel's file, compared by identity, not spelling.

    - stalwart's state directory: a planted journal would be replayed by the next command's
      recovery (a venv's ``lib64`` symlink once made a ``.data/data`` path a way in);
    - a ``.dist-info`` directory in site-packages other than the wheel's own: it would claim
      to be another distribution, and its RECORD could make uninstall keep this wheel's files.
    """
    parent, name = os.path.split(dest)
    if parent not in seen:  # most files share their directory: decide it once
        seen[parent] = _foreign_directory(keys, env, wheel, parent)
    verdict = seen[parent]
    if verdict is not None:
        return verdict
    if name.casefold() == STATE_DIR_NAME and keys.within(env.state_dir, dest):
        return "would be written into stalwart's own state directory"
    own = wheel.dist_info.casefold()
    folded = name.casefold()
    if folded.endswith(".dist-info") and folded != own and parent in env.lib_dirs:
        return _dist_info_problem(name, parent, wheel)
    return None


def _foreign_directory(
    keys: PathKeys, env: Environment, wheel: Wheel, directory: str
) -> str | None:
    if keys.dir_within(env.state_dir, directory):
        return "would be written into stalwart's own state directory"
    own = wheel.dist_info.casefold()
    for lib_dir in env.lib_dirs:
        entry = keys.entry_below(lib_dir, os.path.join(directory, "x"))
        folded = (entry or "").casefold()
        if entry != "x" and folded.endswith(".dist-info") and folded != own:
            return _dist_info_problem(entry or "", lib_dir, wheel)
    return None


def _dist_info_problem(entry: str, lib_dir: str, wheel: Wheel) -> str:
    return (
        f"would create {entry} in {lib_dir}: a wheel may ship only its own .dist-info "
        f"directory ({wheel.dist_info})"
    )


_VERSIONED = {"pip": "pip", "setuptools": "easy_install"}
# PEP 508 / core metadata: a project name.
_VALID_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def _versioned_scripts(
    specs: list[scripts.ScriptSpec], dist: str, version: tuple[int, int, int]
) -> list[scripts.ScriptSpec]:
    """pip's versioned entry points rewritten for the *target* interpreter, as pip and uv do.

    pip's wheel names ``pip3.12`` after the Python that built it; installed for 3.11 it must
    provide ``pip``, ``pip3`` and ``pip3.11`` instead (likewise ``easy_install`` of old
    setuptools).
    """
    base = _VERSIONED.get(dist)
    if base is None:
        return specs
    main = next((s for s in specs if s.name == base and not s.gui), None)
    if main is None:
        return specs
    pattern = re.compile(rf"{re.escape(base)}-?\d+(\.\d+)?")
    kept = [s for s in specs if s.gui or not pattern.fullmatch(s.name)]
    suffixes = (f"{version[0]}", f"{version[0]}.{version[1]}")
    sep = "-" if base == "easy_install" else ""
    extra = [dataclasses.replace(main, name=f"{base}{sep}{v}") for v in suffixes]
    return kept + extra
