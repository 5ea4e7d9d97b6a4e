"""Console/GUI script generation and ``#!python`` rewriting, as bytes.

Pure on purpose: every function here returns the bytes (and mode) of a file and never touches the
disk, so the install layer can write them through :mod:`stalwart.fs` (retries, rollback) and record
their hashes in RECORD like any other file.

Output is byte-compatible with pypa/installer 1.x for POSIX scripts, and with distlib (what pip
uses) for the Windows ``.exe`` launchers, so environments built by stalwart look like the ones the
reference installers build.
"""

from __future__ import annotations

import configparser
import functools
import io
import keyword
import ntpath
import re
import shlex
from dataclasses import dataclass

from stalwart.errors import InvalidWheelError, TargetEnvironmentError, capped

__all__ = [
    "SCRIPT_MODE",
    "ScriptSpec",
    "parse_entry_points",
    "script_specs",
    "posix_shebang",
    "posix_script",
    "rewrite_shebang",
    "windows_launcher",
    "script_files",
]

SCRIPT_MODE = 0o755
"""Mode of every generated script and launcher (what pip and installer give them)."""

ENTRY_POINTS = "entry_points.txt"

# The longest shebang line Linux executes (including "#!" and the newline); longer ones, and
# interpreter paths with a space, go through /bin/sh. Same limit as pypa/installer, which
# deliberately ignores macOS's larger one so the output does not depend on the platform.
_MAX_SHEBANG = 127

# Same text as pypa/installer's template, so scripts match its output byte for byte.
_BODY = (
    "# -*- coding: utf-8 -*-\n"
    "import re\n"
    "import sys\n"
    "from {module} import {head}\n"
    'if __name__ == "__main__":\n'
    '    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])\n'
    "    sys.exit({call}())\n"
)

# ``module[:attr] [extras]``; identifiers are checked part by part afterwards for precise errors.
_REFERENCE = re.compile(
    r"(?P<module>[^\s:\[\]]+)\s*(?::\s*(?P<attr>[^\s:\[\]]+)\s*)?(?P<extras>\[[^\[\]]*\])?",
)

# What follows ``#!python`` on a first line we understand: an optional ``w`` (GUI), a version that
# the target interpreter replaces, then arguments separated by a blank.
_PYTHON_LINE = re.compile(rb"#!python(?P<gui>w?)[0-9.]*(?P<args>[ \t].*)?", re.DOTALL)

# sysconfig names ("win-amd64") and wheel tag names ("win_amd64") both name the same launchers.
_LAUNCHERS: dict[str, tuple[str, str]] = {
    "win32": ("t32.exe", "w32.exe"),
    "win_amd64": ("t64.exe", "w64.exe"),
    "win_arm64": ("t64-arm.exe", "w64-arm.exe"),
}

# A fixed timestamp (the zip epoch) keeps launchers reproducible; distlib would use "now".
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# A section name no header can produce, so a "[DEFAULT]" group stays an ordinary (ignored) group
# instead of being merged into console_scripts by configparser.
_NO_DEFAULT_SECTION = "\x00stalwart: no default section"


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """One ``console_scripts`` / ``gui_scripts`` entry: file ``name`` calls ``module:attr``.

    Construction checks the fields, because they end up in file names and generated code.
    ``attr`` may be ``None`` (a bare module reference), but no script can be generated from it.
    """

    name: str
    module: str
    attr: str | None
    gui: bool

    def __post_init__(self) -> None:
        problems = _name_problems(self.name) + _reference_problems(self.module, self.attr)
        if problems:
            raise InvalidWheelError(
                ENTRY_POINTS, [f"invalid script {self.name!r}: {p}" for p in problems]
            )


class _EntryPointsParser(configparser.ConfigParser):
    """configparser with case-sensitive names and an option pattern that cannot backtrack.

    configparser's ``(?P<option>.*?)\\s*(?P<vi>=)`` is quadratic on a line holding a long run of
    blanks and no ``=``: a 40,000-blank line took 9 s. Up to the first ``=`` and then
    ``rstrip()``-ed by configparser (which it does to every option name) gives the same name.
    """

    _OPT_TMPL = r"(?P<option>[^=]*)(?P<vi>{delim})\s*(?P<value>.*)$"

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def parse_entry_points(text: str) -> dict[str, dict[str, str]]:
    """Parse ``entry_points.txt`` into ``{group: {name: value}}``, keeping case and order.

    Uses configparser like importlib.metadata and pypa/installer (``=`` is the only delimiter,
    since names may contain ``:``; no interpolation, since values may contain ``%``). Raises
    :class:`InvalidWheelError` naming each line it cannot read, and nothing else.
    """
    parser = _EntryPointsParser(
        delimiters=("=",),
        interpolation=None,
        default_section=_NO_DEFAULT_SECTION,
    )
    try:
        parser.read_string(text, source=ENTRY_POINTS)
    except configparser.MissingSectionHeaderError as exc:
        found = _clip(repr(exc.line))
        problem = f"line {exc.lineno}: expected a [section] header first, found {found}"
        raise InvalidWheelError(ENTRY_POINTS, problem) from None
    except configparser.ParsingError as exc:
        # Its message quotes every bad line in full; name each one (as repr), shortened, instead.
        lines = [f"line {n}: not 'name = value': {_clip(line)}" for n, line in exc.errors]
        raise InvalidWheelError(ENTRY_POINTS, capped(lines)) from None
    except configparser.Error as exc:
        raise InvalidWheelError(ENTRY_POINTS, f"cannot be parsed: {_clip(str(exc), 300)}") from None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def script_specs(entry_points_text: str) -> list[ScriptSpec]:
    """Validated specs for the console and GUI scripts declared in ``entry_points.txt``.

    Every problem is reported at once (``InvalidWheelError.problems``); nothing is generated from
    a file with any bad entry, since script names become paths and references become code.
    """
    groups = parse_entry_points(entry_points_text)
    specs: list[ScriptSpec] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for group, gui in (("console_scripts", False), ("gui_scripts", True)):
        for name, value in groups.get(group, {}).items():
            where = f"[{group}] {name!r}"
            found = _name_problems(name)
            match = _REFERENCE.fullmatch(value.strip())
            module = attr = None
            if match is None:
                found.append(f"{value!r} is not an object reference 'module:attr [extras]'")
            else:
                module, attr = match["module"], match["attr"]
                found += _reference_problems(module, attr)
                if attr is None:
                    found.append(f"{value!r} names no callable (expected 'module:attr')")
            if name in seen:
                found.append(f"script name already declared in [{seen[name]}]")
            seen.setdefault(name, group)
            if found:
                problems += [f"{where}: {problem}" for problem in found]
            elif module is not None:
                specs.append(ScriptSpec(name, module, attr, gui))
    if problems:
        raise InvalidWheelError(ENTRY_POINTS, capped(problems))
    return specs


def posix_shebang(python: str) -> bytes:
    """The first line(s) that make a POSIX script run under ``python``, as pypa/installer writes.

    A plain ``#!python`` line cannot hold a path with a space and is cut by the kernel past
    127 bytes, so those paths use the polyglot ``/bin/sh`` header: sh execs the interpreter on the
    script, and Python reads the same lines as two harmless string literals.
    """
    return _posix_shebang(python, b"")


def posix_script(spec: ScriptSpec, python: str) -> bytes:
    """The full POSIX script for ``spec`` (GUI scripts are plain scripts on POSIX)."""
    return posix_shebang(python) + _body(spec)


def rewrite_shebang(data: bytes, python: str, *, windows: bool) -> bytes | None:
    """Point a ``.data/scripts/`` file's ``#!python`` line at ``python``; None if unchanged.

    Which files qualify follows the wheel spec exactly as pip and pypa/installer apply it: the
    content starts with ``b"#!python"`` (so ``#!python3`` qualifies, ``#! python`` does not).
    Unlike them, interpreter arguments (``#!python -E``) are kept, and ``#!pythonw`` selects
    ``pythonw`` on Windows. The original line ending is kept, except that CRLF becomes LF on
    POSIX, where the kernel would read the CR as part of the interpreter line. A remainder that
    is not a version or arguments (``#!pythonfoo``) is dropped, like the reference installers do.
    """
    if not data.startswith(b"#!python"):
        return None
    end = data.find(b"\n")
    first, rest = (data, b"") if end < 0 else (data[: end + 1], data[end + 1 :])
    line = first.rstrip(b"\r\n")
    newline = first[len(line) :]
    match = _PYTHON_LINE.fullmatch(line)
    gui = first.startswith(b"#!pythonw") if match is None else bool(match["gui"])
    args = b"" if match is None or match["args"] is None else match["args"]
    if windows:
        executable = _windows_executable(python, gui=gui)
        new = b"#!" + executable + args + newline + rest
    elif _is_simple(python, args):
        # Any line ending becomes LF: the kernel would take a CR as part of the interpreter line.
        new = b"#!" + _check_python(python) + args + (b"\n" if newline else b"") + rest
    else:
        new = _posix_shebang(python, args) + rest
    return None if new == data else new


def windows_launcher(spec: ScriptSpec, python: str, arch: str) -> bytes:
    """The ``.exe`` for ``spec``: distlib's launcher, a shebang line, then a zip of the script.

    The launcher runs the interpreter named by the shebang on its own file, which Python opens
    as a zip application (``__main__.py``). GUI scripts use the windowless launcher and
    ``pythonw``. ``arch`` is a sysconfig/wheel platform name: win32, win_amd64 or win_arm64.
    """
    key = arch.replace("-", "_").lower()
    if key not in _LAUNCHERS:
        raise TargetEnvironmentError(
            f"no Windows launcher for platform {arch!r}; expected one of {sorted(_LAUNCHERS)}"
        )
    launcher = _launcher(_LAUNCHERS[key][spec.gui])
    shebang = b"#!" + _windows_executable(python, gui=spec.gui) + b"\n"
    import zipfile  # Windows launchers only: zipfile pulls in pathlib and urllib

    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo("__main__.py", date_time=_ZIP_DATE)
        # ZipInfo defaults these from the running OS; pin them so output is the same everywhere.
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        archive.writestr(info, _body(spec))
    return launcher + shebang + stream.getvalue()


def script_files(
    spec: ScriptSpec, python: str, *, windows: bool, arch: str | None
) -> list[tuple[str, bytes, int]]:
    """The ``(relative name, content, mode)`` files that install ``spec``.

    Windows gets only ``name.exe``, like pip: a second ``name-script.py`` would be redundant.
    """
    if not windows:
        return [(spec.name, posix_script(spec, python), SCRIPT_MODE)]
    if arch is None:
        raise TargetEnvironmentError("an architecture is needed to build Windows launchers")
    return [(f"{spec.name}.exe", windows_launcher(spec, python, arch), SCRIPT_MODE)]


def _clip(text: str, keep: int = 80) -> str:
    """A hostile line or message, shortened for a problem."""
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"


def _name_problems(name: str) -> list[str]:
    """Why ``name`` cannot be a file directly inside the scripts directory, if it cannot."""
    if not name:
        return ["empty script name"]
    if "/" in name or "\\" in name:
        return [f"script name {name!r} contains a path separator"]
    if name.startswith("."):
        return [f"script name {name!r} starts with '.'"]
    # "C:name" is drive-relative on Windows and "name:stream" an alternate data stream.
    if ":" in name:
        return [f"script name {name!r} contains ':'"]
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return [f"script name {name!r} contains a control character"]
    return []


def _reference_problems(module: str, attr: str | None) -> list[str]:
    """Why ``module:attr`` cannot be pasted into an import statement safely, if it cannot."""
    problems = []
    if not _is_dotted(module):
        problems.append(f"module {module!r} is not a dotted Python name")
    if attr is not None and not _is_dotted(attr):
        problems.append(f"attribute {attr!r} is not a dotted Python name")
    return problems


def _is_dotted(value: str) -> bool:
    """Whether ``value`` is ``name(.name)*`` of identifiers that are not keywords."""
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in value.split("."))


def _body(spec: ScriptSpec) -> bytes:
    """The Python code of a script (no shebang), shared by POSIX scripts and launchers."""
    if spec.attr is None:
        raise InvalidWheelError(
            ENTRY_POINTS, f"script {spec.name!r} names no callable (expected 'module:attr')"
        )
    head = spec.attr.split(".", 1)[0]
    return _BODY.format(module=spec.module, head=head, call=spec.attr).encode("utf-8")


def _check_python(python: str) -> bytes:
    """The interpreter path as bytes, refusing what would break out of the shebang line."""
    if not python or any(char in python for char in "\n\r\0"):
        raise TargetEnvironmentError(f"unusable interpreter path for a shebang: {python!r}")
    return python.encode("utf-8")


def _is_simple(python: str, args: bytes) -> bool:
    """Whether a plain ``#!`` line works: no space in the path, within the kernel's length."""
    executable = _check_python(python)
    return b" " not in executable and len(executable) + len(args) + 3 <= _MAX_SHEBANG


def _posix_shebang(python: str, args: bytes) -> bytes:
    """The POSIX header for ``python`` followed by interpreter ``args``, ending in a newline."""
    if _is_simple(python, args):
        return b"#!" + _check_python(python) + args + b"\n"
    quoted = shlex.quote(python).encode("utf-8")
    return b"#!/bin/sh\n'''exec' " + quoted + args + b' "$0" "$@"\n' + b"' '''\n"


def _windows_executable(python: str, *, gui: bool) -> bytes:
    """The shebang form of a Windows interpreter path: ``pythonw`` for GUI, quoted if spaced.

    The path is split with ntpath so Windows output can be computed (and tested) anywhere.
    """
    _check_python(python)
    if gui:
        file = ntpath.basename(python)
        folder = python[: len(python) - len(file)]
        python = folder + re.sub(r"(?i)python(?!w)", lambda m: m[0] + "w", file, count=1)
    if " " in python and not python.startswith('"'):
        python = f'"{python}"'
    return python.encode("utf-8")


@functools.cache
def _launcher(name: str) -> bytes:
    """The launcher binary ``name`` from distlib, read once.

    Imported lazily (only Windows targets need it); caching also keeps working if distlib itself
    is replaced on disk during the install, the failure pip hit in pypa/pip#12666.
    """
    from importlib.resources import files

    try:
        return files("distlib").joinpath(name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TargetEnvironmentError(
            f"cannot build Windows launchers: distlib resource {name!r} is unavailable ({exc}); "
            "install or upgrade distlib"
        ) from exc
