"""Planning: where every file of a validated wheel goes. Pure: computes, never writes.

The plan is a tuple of frozen file actions: :class:`Extract` this archive member, or
:class:`Generate` these bytes (scripts, ``INSTALLER``, ``direct_url.json``...), to that absolute
path. Staging it is :mod:`stalwart.staging`'s job, committing it :mod:`stalwart.transaction`'s.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stalwart import scripts
from stalwart.errors import InvalidWheelError
from stalwart.paths import is_within

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
    scheme = env.scheme(wheel.display_name)
    lib_dir = scheme.purelib if wheel.root_is_purelib else scheme.platlib
    dist_info_dir = os.path.join(lib_dir, wheel.dist_info)
    problems: list[str] = []
    actions: list[FileAction] = []
    state_dir = os.path.normcase(os.path.normpath(env.state_dir))
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
        if is_within(state_dir, os.path.normcase(dest)):
            # A planted journal there would be replayed by the next command's recovery.
            problems.append(f"{name}: would be written into stalwart's own state directory")
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
        for spec in specs:
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
    seen: dict[str, str] = {}
    for action in actions:
        key = os.path.normcase(action.dest)
        what = action.member if isinstance(action, Extract) else action.dest
        if key in seen:
            problems.append(f"{what} and {seen[key]} go to the same path")
        seen[key] = what
    if problems:
        raise InvalidWheelError(wheel.path, problems)
    return WheelPlan(wheel, lib_dir, dist_info_dir, tuple(actions))
