"""Tests for stalwart.scripts: entry points, POSIX scripts, shebang rewriting, Windows launchers.

POSIX output is checked byte for byte against pypa/installer (a test-only reference) and by
running the generated scripts; launchers are checked against distlib's binaries and by running
their zip payload with the real interpreter.
"""

from __future__ import annotations

import io
import json
import keyword
import os
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from installer.scripts import Script
from installer.utils import fix_shebang

import platforms
from stalwart.errors import InvalidWheelError, TargetEnvironmentError, WheelError
from stalwart.scripts import (
    SCRIPT_MODE,
    ScriptSpec,
    parse_entry_points,
    posix_script,
    posix_shebang,
    rewrite_shebang,
    script_files,
    script_specs,
    windows_launcher,
)

posix_only = platforms.posix_only("runs POSIX scripts")

LONG_PYTHON = "/opt/" + "x" * 130 + "/bin/python3"
WIN_PYTHON = r"C:\Python311\python.exe"
WIN_SPACED = r"C:\Program Files\Python311\python.exe"


def body(module: str, head: str, call: str) -> bytes:
    return (
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        f"from {module} import {head}\n"
        'if __name__ == "__main__":\n'
        '    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])\n'
        f"    sys.exit({call}())\n"
    ).encode()


def installer_bytes(spec: ScriptSpec, python: str, kind: str = "posix") -> tuple[str, bytes]:
    assert spec.attr is not None
    section = "gui" if spec.gui else "console"
    return Script(spec.name, spec.module, spec.attr, section).generate(python, kind)  # type: ignore[arg-type]


def distlib_exe(name: str) -> bytes:
    return files("distlib").joinpath(name).read_bytes()


def main_py(exe: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(exe)) as archive:
        assert archive.namelist() == ["__main__.py"]
        assert archive.testzip() is None
        return archive.read("__main__.py")


# --------------------------------------------------------------------------- entry points


ENTRY_POINTS = """\
[console_scripts]
Tool = pkg.cli:main
tool-extra = pkg.cli : main.run [fancy, more]
; a comment
# another comment

[gui_scripts]
tool-gui=pkg.gui:App.start

[pkg.plugins]
percent = pkg.plugins:handler  # %(not)s interpolated
"""


def test_parse_entry_points_keeps_case_order_and_raw_values() -> None:
    groups = parse_entry_points(ENTRY_POINTS)
    assert list(groups) == ["console_scripts", "gui_scripts", "pkg.plugins"]
    assert groups["console_scripts"] == {
        "Tool": "pkg.cli:main",
        "tool-extra": "pkg.cli : main.run [fancy, more]",
    }
    assert groups["gui_scripts"] == {"tool-gui": "pkg.gui:App.start"}
    assert groups["pkg.plugins"]["percent"] == "pkg.plugins:handler  # %(not)s interpolated"


def test_parse_entry_points_colon_is_not_a_delimiter() -> None:
    assert parse_entry_points("[g]\na:b = m:f\n") == {"g": {"a:b": "m:f"}}


def test_parse_entry_points_default_group_is_not_merged() -> None:
    groups = parse_entry_points("[DEFAULT]\nx = m:f\n[console_scripts]\ny = m:g\n")
    assert groups == {"DEFAULT": {"x": "m:f"}, "console_scripts": {"y": "m:g"}}
    assert [s.name for s in script_specs("[DEFAULT]\nx = m:f\n[console_scripts]\ny = m:g\n")] == [
        "y"
    ]


def test_parse_entry_points_empty() -> None:
    assert parse_entry_points("") == {}
    assert script_specs("") == []
    assert script_specs("[other]\nx = m:f\n") == []


@pytest.mark.parametrize(
    "text",
    [
        "x = m:f\n",  # no section header
        "[console_scripts]\nx = m:f\nx = m:g\n",  # duplicate name
        "[console_scripts]\n[console_scripts]\n",  # duplicate section
        "[console_scripts]\njust a line\n",  # no delimiter
    ],
)
def test_parse_entry_points_invalid(text: str) -> None:
    with pytest.raises(InvalidWheelError) as info:
        parse_entry_points(text)
    assert info.value.wheel == "entry_points.txt"
    assert isinstance(info.value, ValueError)


def test_script_specs() -> None:
    assert script_specs(ENTRY_POINTS) == [
        ScriptSpec("Tool", "pkg.cli", "main", gui=False),
        ScriptSpec("tool-extra", "pkg.cli", "main.run", gui=False),
        ScriptSpec("tool-gui", "pkg.gui", "App.start", gui=True),
    ]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1pkg:main", "module '1pkg'"),
        ("pkg..sub:main", "module 'pkg..sub'"),
        (".pkg:main", "module '.pkg'"),
        ("my-pkg:main", "module 'my-pkg'"),
        ("pkg:ma-in", "attribute 'ma-in'"),
        ("pkg:main.", "attribute 'main.'"),
        ("class:main", "module 'class'"),
        ("pkg:def", "attribute 'def'"),
        ("pkg", "names no callable"),
        ("pkg:", "not an object reference"),
        ("pkg:a:b", "not an object reference"),
        ("pkg:main [x", "not an object reference"),
        ("pkg:main; import os", "not an object reference"),
        ("", "not an object reference"),
    ],
)
def test_script_specs_invalid_reference(value: str, fragment: str) -> None:
    with pytest.raises(InvalidWheelError) as info:
        script_specs(f"[console_scripts]\ntool = {value}\n")
    assert info.value.wheel == "entry_points.txt"
    assert len(info.value.problems) >= 1
    assert any(fragment in p and "[console_scripts] 'tool'" in p for p in info.value.problems)


@pytest.mark.parametrize(
    "name",
    ["../evil", "bin/evil", "..\\evil", "a\\b", ".hidden", "..", ".", "C:evil", "a:b", "a\x07b"],
)
def test_script_specs_refuses_traversal_names(name: str) -> None:
    for group in ("console_scripts", "gui_scripts"):
        with pytest.raises(InvalidWheelError) as info:
            script_specs(f"[{group}]\n{name} = pkg:main\n")
        assert repr(name) in str(info.value)


def test_script_specs_reports_every_problem() -> None:
    text = (
        "[console_scripts]\n../a = pkg:main\nb = 1x:main\nok = pkg:main\n[gui_scripts]\nok = p:f\n"
    )
    with pytest.raises(WheelError) as info:
        script_specs(text)
    problems = info.value.problems
    assert len(problems) == 3
    assert "path separator" in problems[0]
    assert "'1x'" in problems[1]
    assert "[gui_scripts] 'ok'" in problems[2] and "console_scripts" in problems[2]


def test_script_spec_is_frozen_and_slotted() -> None:
    spec = ScriptSpec("tool", "pkg", "main", gui=False)
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert not hasattr(spec, "__dict__")
    assert ScriptSpec("tool", "pkg", None, gui=False).attr is None


@pytest.mark.parametrize(
    ("name", "module", "attr"),
    [
        ("a/b", "pkg", "main"),
        ("tool", "os; import x", "main"),
        ("tool", "pkg", "main()"),
        ("", "pkg", "main"),
    ],
)
def test_script_spec_refuses_bad_fields(name: str, module: str, attr: str) -> None:
    with pytest.raises(InvalidWheelError):
        ScriptSpec(name, module, attr, gui=False)


def test_script_without_attr_cannot_be_generated() -> None:
    spec = ScriptSpec("tool", "pkg", None, gui=False)
    with pytest.raises(InvalidWheelError, match="names no callable"):
        posix_script(spec, "/usr/bin/python3")
    with pytest.raises(InvalidWheelError, match="names no callable"):
        windows_launcher(spec, WIN_PYTHON, "win_amd64")


# --------------------------------------------------------------------------- POSIX scripts


def test_posix_shebang_forms() -> None:
    assert posix_shebang("/usr/bin/python3") == b"#!/usr/bin/python3\n"
    assert posix_shebang("/my env/bin/python") == (
        b"#!/bin/sh\n'''exec' '/my env/bin/python' \"$0\" \"$@\"\n' '''\n"
    )
    assert posix_shebang(LONG_PYTHON) == (
        b"#!/bin/sh\n'''exec' " + LONG_PYTHON.encode() + b' "$0" "$@"\n' + b"' '''\n"
    )


def test_posix_shebang_length_limit_is_127_bytes_in_utf8() -> None:
    fits = "/" + "p" * 123  # 124 bytes + "#!" + "\n" == 127
    assert posix_shebang(fits) == b"#!" + fits.encode() + b"\n"
    assert posix_shebang(fits + "p").startswith(b"#!/bin/sh\n")
    wide = "/" + "é" * 62  # 125 bytes in UTF-8, only 63 characters
    assert posix_shebang(wide).startswith(b"#!/bin/sh\n")


@pytest.mark.parametrize("python", ["", "/usr/bin/py\nthon", "/usr/bin/py\rthon", "/a\0b"])
def test_posix_shebang_refuses_line_breaking_paths(python: str) -> None:
    with pytest.raises(TargetEnvironmentError):
        posix_shebang(python)


def test_posix_script_layout() -> None:
    spec = ScriptSpec("pytest", "pytest", "console_main", gui=False)
    assert posix_script(spec, "/venv/bin/python") == (
        b"#!/venv/bin/python\n" + body("pytest", "console_main", "console_main")
    )
    nested = ScriptSpec("tool", "pkg.cli", "App.main", gui=False)
    assert posix_script(nested, "/venv/bin/python").endswith(
        b"from pkg.cli import App\n"
        b'if __name__ == "__main__":\n'
        b'    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])\n'
        b"    sys.exit(App.main())\n"
    )


@pytest.mark.parametrize(
    "python",
    [
        "/usr/bin/python3",
        "/home/me/my project/.venv/bin/python",
        LONG_PYTHON,
        "/it's/a trap/python",
        '/a "quoted"/python',
        "/ünïcødé/bin/python",
    ],
)
@pytest.mark.parametrize(
    ("module", "attr", "gui"),
    [
        ("pytest", "console_main", False),
        ("pkg.sub.cli", "main", False),
        ("pkg", "App.run.now", False),
        ("pkg.gui", "start", True),
    ],
)
def test_posix_matches_installer(python: str, module: str, attr: str, gui: bool) -> None:
    spec = ScriptSpec("tool", module, attr, gui=gui)
    name, expected = installer_bytes(spec, python)
    assert posix_script(spec, python) == expected
    assert script_files(spec, python, windows=False, arch=None) == [(name, expected, SCRIPT_MODE)]
    assert SCRIPT_MODE == 0o755


dotted = st.lists(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
        lambda s: not keyword.iskeyword(s)
    ),
    min_size=1,
    max_size=3,
).map(".".join)
paths = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\n\r\0"),
    min_size=1,
    max_size=160,
).map(lambda s: "/" + s)


@given(module=dotted, attr=dotted, python=paths, gui=st.booleans())
def test_posix_matches_installer_property(module: str, attr: str, python: str, gui: bool) -> None:
    spec = ScriptSpec("tool", module, attr, gui=gui)
    assert posix_script(spec, python) == installer_bytes(spec, python)[1]


PROBE = """\
import json
import sys


def main():
    json.dump({"argv": sys.argv, "prefix": sys.base_prefix}, sys.stdout)
    return 3


class App:
    main = staticmethod(main)
"""


def run_script(
    path: Path, *args: str, stdin: str = "", pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def link_python(folder: Path) -> str:
    folder.mkdir(parents=True)
    link = folder / "python"
    link.symlink_to(os.path.realpath(sys.executable))
    return str(link)


def write_script(folder: Path, spec: ScriptSpec, python: str) -> Path:
    ((name, data, mode),) = script_files(spec, python, windows=False, arch=None)
    script = folder / name
    script.write_bytes(data)
    script.chmod(mode)
    return script


@posix_only
@pytest.mark.parametrize("where", ["plain", "with space", "long"])
@pytest.mark.parametrize("attr", ["main", "App.main"])
def test_generated_posix_script_runs(tmp_path: Path, where: str, attr: str) -> None:
    if where == "plain":
        python = sys.executable
    elif where == "with space":
        python = link_python(tmp_path / "my env" / "bin")
    else:
        python = link_python(tmp_path.joinpath(*["d" * 40] * 4))
        assert len(python) + 3 > 127
    (tmp_path / "probe.py").write_text(PROBE)
    script = write_script(tmp_path, ScriptSpec("probe-tool", "probe", attr, gui=False), python)
    assert script.read_bytes().startswith(b"#!/bin/sh\n") == (where != "plain")
    result = run_script(script, "two words", "--flag", pythonpath=tmp_path)
    # The callable's return value is the exit status; "$0" "$@" arrive intact through /bin/sh.
    assert result.returncode == 3, result.stderr
    seen = json.loads(result.stdout)
    assert seen["argv"] == [str(script), "two words", "--flag"]
    assert seen["prefix"] == sys.base_prefix


@posix_only
def test_generated_posix_script_runs_stdlib_tool(tmp_path: Path) -> None:
    script = write_script(
        tmp_path, ScriptSpec("pj", "json", "tool.main", gui=False), sys.executable
    )
    result = run_script(script, "--sort-keys", stdin='{"b": 1, "a": [true]}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"a": [True], "b": 1}
    assert result.stdout.index('"a"') < result.stdout.index('"b"')


# --------------------------------------------------------------------------- shebang rewriting

PY = "/venv/bin/python"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"#!python\nprint(1)\n", b"#!/venv/bin/python\nprint(1)\n"),
        (b"#!pythonw\nprint(1)\n", b"#!/venv/bin/python\nprint(1)\n"),
        (b"#!python3\nprint(1)\n", b"#!/venv/bin/python\nprint(1)\n"),
        (b"#!python3.11 -u\nprint(1)\n", b"#!/venv/bin/python -u\nprint(1)\n"),
        (b"#!python -E -s\nx\n", b"#!/venv/bin/python -E -s\nx\n"),
        (b"#!python\t-u\nx\n", b"#!/venv/bin/python\t-u\nx\n"),
        (b"#!python\r\nprint(1)\r\n", b"#!/venv/bin/python\nprint(1)\r\n"),
        (b"#!python", b"#!/venv/bin/python"),
        (b"#!python\n", b"#!/venv/bin/python\n"),
        (b"#!pythonista\nx\n", b"#!/venv/bin/python\nx\n"),
        (b"#!python\n#!python\n", b"#!/venv/bin/python\n#!python\n"),
    ],
)
def test_rewrite_shebang_posix(data: bytes, expected: bytes) -> None:
    assert rewrite_shebang(data, PY, windows=False) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"#!/usr/bin/env python\nprint(1)\n",
        b"#! python\nprint(1)\n",
        b"#!Python\nprint(1)\n",
        b"\n#!python\n",
        b" #!python\n",
        b"#!/bin/sh\necho hi\n",
        b"\x7fELF\x02\x01\x01",
        b"",
    ],
)
@pytest.mark.parametrize("windows", [False, True])
def test_rewrite_shebang_leaves_other_files(data: bytes, windows: bool) -> None:
    assert rewrite_shebang(data, PY, windows=windows) is None


def test_rewrite_shebang_none_when_already_right() -> None:
    assert rewrite_shebang(b"#!python\nx\n", "python", windows=False) is None


@pytest.mark.parametrize(
    "data",
    [b"#!python\nprint(1)\n", b"#!python3\nprint(1)\n", b"#!pythonw\nx\n", b"#!python\n", b"#!py"],
)
def test_rewrite_shebang_matches_installer_where_it_can(data: bytes) -> None:
    with fix_shebang(io.BytesIO(data), PY) as stream:
        expected = stream.read()
    ours = rewrite_shebang(data, PY, windows=False)
    assert (data if ours is None else ours) == expected


def test_rewrite_shebang_posix_sh_trick_for_unusable_paths() -> None:
    spaced = "/my env/bin/python"
    assert rewrite_shebang(b"#!python -u\r\nprint(1)\r\n", spaced, windows=False) == (
        b"#!/bin/sh\n'''exec' '/my env/bin/python' -u \"$0\" \"$@\"\n' '''\nprint(1)\r\n"
    )
    assert rewrite_shebang(b"#!python\nx\n", LONG_PYTHON, windows=False) == (
        posix_shebang(LONG_PYTHON) + b"x\n"
    )
    # The arguments count towards the kernel's limit.
    fits = "/" + "p" * 123
    assert rewrite_shebang(b"#!python\n", fits, windows=False) == b"#!" + fits.encode() + b"\n"
    assert rewrite_shebang(b"#!python -u\n", fits, windows=False).startswith(b"#!/bin/sh\n")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "python", "expected"),
    [
        (b"#!python\r\nx\r\n", WIN_PYTHON, b"#!C:\\Python311\\python.exe\r\nx\r\n"),
        (b"#!pythonw\r\nx\r\n", WIN_PYTHON, b"#!C:\\Python311\\pythonw.exe\r\nx\r\n"),
        (b"#!pythonw -u\nx\n", WIN_PYTHON, b"#!C:\\Python311\\pythonw.exe -u\nx\n"),
        (
            b"#!python3 -E\r\nx\r\n",
            WIN_SPACED,
            b'#!"C:\\Program Files\\Python311\\python.exe" -E\r\nx\r\n',
        ),
        (b"#!pythonw\nx\n", "C:/Py/Python.exe", b"#!C:/Py/Pythonw.exe\nx\n"),
        (b"#!pythonw\nx\n", r"C:\Py\pythonw.exe", b"#!C:\\Py\\pythonw.exe\nx\n"),
    ],
)
def test_rewrite_shebang_windows(data: bytes, python: str, expected: bytes) -> None:
    assert rewrite_shebang(data, python, windows=True) == expected


def test_rewrite_shebang_posix_ignores_pythonw() -> None:
    assert rewrite_shebang(b"#!pythonw\n", "/usr/bin/python3", windows=False) == (
        b"#!/usr/bin/python3\n"
    )


@given(
    rest=st.binary(max_size=200),
    first=st.sampled_from([b"#!python", b"#!pythonw", b"#!python3.12", b"#!python -E"]),
    newline=st.sampled_from([b"\n", b"\r\n"]),
    windows=st.booleans(),
)
def test_rewrite_shebang_keeps_the_rest(
    rest: bytes, first: bytes, newline: bytes, windows: bool
) -> None:
    new = rewrite_shebang(first + newline + rest, WIN_PYTHON if windows else PY, windows=windows)
    assert new is not None
    assert new.endswith(rest)
    line = new[: len(new) - len(rest)]
    assert line.count(b"\n") == 1
    assert line.endswith(newline if windows else b"\n")
    assert line.startswith(b"#!C:\\Python311\\python" if windows else b"#!/venv/bin/python")


# --------------------------------------------------------------------------- Windows launchers


@pytest.mark.parametrize(
    ("arch", "console", "gui"),
    [
        ("win_amd64", "t64.exe", "w64.exe"),
        ("win-amd64", "t64.exe", "w64.exe"),
        ("win32", "t32.exe", "w32.exe"),
        ("win_arm64", "t64-arm.exe", "w64-arm.exe"),
        ("win-arm64", "t64-arm.exe", "w64-arm.exe"),
    ],
)
def test_windows_launcher_layout(arch: str, console: str, gui: str) -> None:
    for spec, launcher, python in [
        (ScriptSpec("tool", "pkg.cli", "App.main", gui=False), console, WIN_PYTHON),
        (ScriptSpec("tool", "pkg.cli", "App.main", gui=True), gui, r"C:\Python311\pythonw.exe"),
    ]:
        exe = windows_launcher(spec, WIN_PYTHON, arch)
        stub = distlib_exe(launcher)
        assert exe.startswith(stub)
        shebang = b"#!" + python.encode() + b"\n"
        assert exe[len(stub) :].startswith(shebang + b"PK\x03\x04")
        assert main_py(exe) == body("pkg.cli", "App", "App.main")


def test_windows_launcher_quotes_spaced_paths() -> None:
    spec = ScriptSpec("tool", "pkg", "main", gui=False)
    exe = windows_launcher(spec, WIN_SPACED, "win_amd64")
    stub = distlib_exe("t64.exe")
    assert exe[len(stub) :].startswith(b'#!"C:\\Program Files\\Python311\\python.exe"\nPK')
    gui = windows_launcher(ScriptSpec("tool", "pkg", "main", gui=True), WIN_SPACED, "win_amd64")
    assert b'#!"C:\\Program Files\\Python311\\pythonw.exe"\nPK' in gui


@pytest.mark.parametrize(
    ("arch", "kind"),
    [("win32", "win-ia32"), ("win_amd64", "win-amd64"), ("win_arm64", "win-arm64")],
)
@pytest.mark.parametrize("gui", [False, True])
def test_windows_launcher_matches_installer_up_to_the_zip(arch: str, kind: str, gui: bool) -> None:
    spec = ScriptSpec("tool", "pkg.cli", "main", gui=gui)
    name, expected = installer_bytes(spec, WIN_PYTHON, kind)
    ours = windows_launcher(spec, WIN_PYTHON, arch)
    zip_at = ours.index(b"\nPK\x03\x04") + 1
    assert ours[:zip_at] == expected[:zip_at]
    assert main_py(ours) == main_py(expected)
    assert script_files(spec, WIN_PYTHON, windows=True, arch=arch) == [(name, ours, SCRIPT_MODE)]


@given(module=dotted, attr=dotted, gui=st.booleans())
def test_windows_launcher_is_deterministic(module: str, attr: str, gui: bool) -> None:
    spec = ScriptSpec("tool", module, attr, gui=gui)
    first = windows_launcher(spec, WIN_PYTHON, "win_amd64")
    assert first == windows_launcher(spec, WIN_PYTHON, "win_amd64")
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        (info,) = archive.infolist()
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_STORED


@pytest.mark.parametrize("arch", ["win_ia64", "linux_x86_64", "amd64", "", "WIN"])
def test_windows_launcher_unknown_arch(arch: str) -> None:
    spec = ScriptSpec("tool", "pkg", "main", gui=False)
    with pytest.raises(TargetEnvironmentError, match="no Windows launcher"):
        windows_launcher(spec, WIN_PYTHON, arch)


def test_script_files_windows_needs_arch() -> None:
    spec = ScriptSpec("tool", "pkg", "main", gui=False)
    with pytest.raises(TargetEnvironmentError, match="architecture"):
        script_files(spec, WIN_PYTHON, windows=True, arch=None)


def test_windows_launcher_payload_runs(tmp_path: Path) -> None:
    # The launcher execs "python <this .exe>"; Python finds the zip behind the stub and shebang.
    exe = windows_launcher(ScriptSpec("pretty-json", "json.tool", "main", gui=False), "py", "win32")
    target = tmp_path / "pretty-json.exe"
    target.write_bytes(exe)
    result = subprocess.run(
        [sys.executable, str(target), "--sort-keys"],
        input='{"b": 1, "a": 2}',
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"a": 2, "b": 1}


def test_library_does_not_import_reference_tools() -> None:
    code = (
        "import sys, stalwart.scripts as s\n"
        "spec = s.ScriptSpec('t', 'p', 'm', gui=False)\n"
        "s.posix_script(spec, '/py'); s.rewrite_shebang(b'#!python\\n', '/py', windows=False)\n"
        "assert 'installer' not in sys.modules and 'distlib' not in sys.modules, sys.modules\n"
        "s.windows_launcher(spec, 'py', 'win_amd64')\n"
        "assert 'installer' not in sys.modules and 'distlib' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
