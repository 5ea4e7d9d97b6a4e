"""stalwart.plan.plan_wheel: where every member of a wheel goes, and what stalwart generates.

Wheels are real (``wheelfactory``) and opened with ``open_wheel``; environments belong to a fake
interpreter (``fakeenv``), with platlib apart from purelib so that the two can be told apart.
Planning is pure: nothing here touches the environment's directories, which do not exist.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from fakeenv import Wheels, prefix_info, venv_info
from stalwart.environment import Environment
from stalwart.errors import InvalidWheelError
from stalwart.plan import INSTALLER, Extract, Generate, WheelPlan, plan_wheel, record_path
from stalwart.wheel.archive import Entry
from wheelfactory import make_wheel, wheel_files, with_record

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX layouts")


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    return tmp_path / "venv"


@pytest.fixture
def env(venv: Path) -> Environment:
    return Environment(venv_info(venv, platlib="lib64"))


@pytest.fixture
def wheel(tmp_path: Path) -> Iterator[Wheels]:
    with ExitStack() as stack:
        yield Wheels(tmp_path / "wheels", stack)


def by_member(plan: WheelPlan) -> dict[str, Extract]:
    return {a.member: a for a in plan.files if isinstance(a, Extract)}


def generated(plan: WheelPlan) -> dict[str, Generate]:
    return {a.dest: a for a in plan.files if isinstance(a, Generate)}


def site(venv: Path) -> Path:
    return venv / "lib" / "python3.11" / "site-packages"


def platsite(venv: Path) -> Path:
    return venv / "lib64" / "python3.11" / "site-packages"


# -- where the root of the wheel goes -------------------------------------------------------------


def test_a_purelib_wheel_goes_to_purelib(wheel: Wheels, env: Environment, venv: Path) -> None:
    w = wheel("demo", "1.0", {"demo/__init__.py": b"", "demo/data.bin": b"\0"})
    plan = plan_wheel(w, env)
    lib = site(venv)
    assert plan.lib_dir == str(lib)
    assert plan.dist_info_dir == str(lib / "demo-1.0.dist-info")
    assert plan.record_file == str(lib / "demo-1.0.dist-info" / "RECORD")
    assert by_member(plan) == {
        "demo/__init__.py": Extract(
            str(lib / "demo/__init__.py"), "demo/__init__.py", compile=True
        ),
        "demo/data.bin": Extract(str(lib / "demo/data.bin"), "demo/data.bin"),
        "demo-1.0.dist-info/METADATA": Extract(
            str(lib / "demo-1.0.dist-info/METADATA"), "demo-1.0.dist-info/METADATA"
        ),
        "demo-1.0.dist-info/WHEEL": Extract(
            str(lib / "demo-1.0.dist-info/WHEEL"), "demo-1.0.dist-info/WHEEL"
        ),
        # RECORD is not extracted: staging writes the installed one.
    }


def test_a_platlib_wheel_goes_to_platlib(wheel: Wheels, env: Environment, venv: Path) -> None:
    w = wheel("native", "2.0", {"native/__init__.py": b""}, purelib=False)
    plan = plan_wheel(w, env)
    lib = platsite(venv)
    assert plan.lib_dir == str(lib)
    assert plan.dist_info_dir == str(lib / "native-2.0.dist-info")
    assert by_member(plan)["native/__init__.py"].dest == str(lib / "native/__init__.py")
    assert {os.path.dirname(dest) for dest in generated(plan)} == {plan.dist_info_dir}


def test_every_data_key_has_its_place(wheel: Wheels, env: Environment, venv: Path) -> None:
    data = {
        "purelib/pure_mod.py": b"",
        "platlib/plat_mod.py": b"",
        "scripts/tool": b"#!python\nprint('tool')\n",
        "scripts/helper.py": b"print('not a module')\n",
        "scripts/run.sh": b"#!/bin/sh\necho run\n",
        "data/share/demo/readme.txt": b"hello\n",
        "data/share/demo/example.py": b"",
        "headers/demo.h": b"int demo;\n",
    }
    modes = {"Demo_Pkg-1.0.data/scripts/run.sh": 0o100755}  # tool and helper.py: 0o644
    w = wheel("Demo_Pkg", "1.0", {"demo_pkg/__init__.py": b""}, data=data, modes=modes)
    plan = plan_wheel(w, env)
    members = by_member(plan)
    pre = "Demo_Pkg-1.0.data/"
    got = {m[len(pre) :]: a for m, a in members.items() if m.startswith(pre)}
    assert {k: a.dest for k, a in got.items()} == {
        "purelib/pure_mod.py": str(site(venv) / "pure_mod.py"),
        "platlib/plat_mod.py": str(platsite(venv) / "plat_mod.py"),
        "scripts/tool": str(venv / "bin" / "tool"),
        "scripts/helper.py": str(venv / "bin" / "helper.py"),
        "scripts/run.sh": str(venv / "bin" / "run.sh"),
        "data/share/demo/readme.txt": str(venv / "share/demo/readme.txt"),
        "data/share/demo/example.py": str(venv / "share/demo/example.py"),
        # Per distribution, as pip: <venv>/include/site/pythonX.Y/<name>/
        "headers/demo.h": str(venv / "include/site/python3.11/Demo_Pkg/demo.h"),
    }
    for key in ("scripts/tool", "scripts/helper.py", "scripts/run.sh"):
        assert got[key].rewrite_shebang, key  # '#!python' is pointed at the interpreter
        assert got[key].executable, key
        assert not got[key].compile, key  # scripts are not importable modules
    for key in ("purelib/pure_mod.py", "platlib/plat_mod.py"):
        assert got[key].compile and not got[key].rewrite_shebang and not got[key].executable
    assert not got["headers/demo.h"].rewrite_shebang


def test_the_executable_bit_follows_the_archive(wheel: Wheels, env: Environment) -> None:
    files = {"demo/run": b"#!/bin/sh\n", "demo/plain.txt": b"", "demo/__init__.py": b""}
    w = wheel("demo", "1.0", files, modes={"demo/run": 0o100755, "demo/plain.txt": 0o100644})
    members = by_member(plan_wheel(w, env))
    assert members["demo/run"].executable
    assert not members["demo/plain.txt"].executable
    assert not members["demo/run"].rewrite_shebang  # only .data/scripts files are rewritten


# -- what stalwart generates ----------------------------------------------------------------------


def test_scripts_and_metadata_are_generated(wheel: Wheels, env: Environment, venv: Path) -> None:
    entry_points = (
        "[console_scripts]\ndemo-cli = demo.cli:main\n[gui_scripts]\ndemo-gui = demo.gui:run\n"
        "[demo.plugins]\nnot-a-script = demo.plugin:thing\n"
    )
    w = wheel("demo", "1.0", {"demo/__init__.py": b""}, entry_points=entry_points)
    direct_url = {"url": "file:///w/demo-1.0-py3-none-any.whl", "archive_info": {}}
    plan = plan_wheel(w, env, direct_url=direct_url)
    made = generated(plan)
    info = site(venv) / "demo-1.0.dist-info"
    assert set(made) == {
        str(venv / "bin" / "demo-cli"),
        str(venv / "bin" / "demo-gui"),
        str(info / "INSTALLER"),
        str(info / "REQUESTED"),
        str(info / "direct_url.json"),
    }
    for name, call in (("demo-cli", b"from demo.cli import main"), ("demo-gui", b"import run")):
        script = made[str(venv / "bin" / name)]
        assert script.executable
        assert not script.compile
        assert script.content.startswith(b"#!" + str(venv / "bin" / "python").encode() + b"\n")
        assert call in script.content
    assert made[str(info / "INSTALLER")] == Generate(str(info / "INSTALLER"), INSTALLER)
    assert INSTALLER == b"stalwart\n"
    assert made[str(info / "REQUESTED")].content == b""
    assert json.loads(made[str(info / "direct_url.json")].content) == direct_url
    assert (
        made[str(info / "direct_url.json")].content
        == json.dumps(direct_url, sort_keys=True).encode()
    )
    # entry_points.txt itself is an ordinary member
    assert by_member(plan)["demo-1.0.dist-info/entry_points.txt"].dest == str(
        info / "entry_points.txt"
    )


def test_not_requested_and_no_direct_url(wheel: Wheels, env: Environment) -> None:
    plan = plan_wheel(wheel("demo", "1.0", {"demo.py": b""}), env, requested=False)
    names = sorted(os.path.basename(dest) for dest in generated(plan))
    assert names == ["INSTALLER"]


def test_the_wheels_own_installer_and_signatures_are_not_extracted(
    tmp_path: Path, wheel: Wheels, env: Environment
) -> None:
    files = wheel_files("demo", "1.0", {"demo.py": b""})
    files = {k: v for k, v in files.items() if not k.endswith("/RECORD")}
    files["demo-1.0.dist-info/INSTALLER"] = b"some-other-tool\n"
    files["demo-1.0.dist-info/RECORD.jws"] = b"{}"
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    w = wheel.open(make_wheel(path, with_record(files, "demo-1.0.dist-info")))
    plan = plan_wheel(w, env)
    members = set(by_member(plan))
    assert members == {"demo.py", "demo-1.0.dist-info/METADATA", "demo-1.0.dist-info/WHEEL"}
    installer = [a for a in plan.files if a.dest.endswith("INSTALLER")]
    assert installer == [Generate(installer[0].dest, b"stalwart\n")]


# -- what is refused, all at once -----------------------------------------------------------------


def test_unknown_data_keys_and_bad_entry_points_are_listed_together(
    wheel: Wheels, env: Environment
) -> None:
    data = {"lib/x.py": b"", "PLATLIB/x.so": b"", "scripts/ok": b"#!python\n", "purelib/ok.py": b""}
    w = wheel(
        "demo",
        "1.0",
        {"demo.py": b"", "demo-1.0.data/headers": b"a file where a directory belongs"},
        data=data,
        entry_points="[console_scripts]\n.hidden = demo:main\nno-attr = demo\n",
    )
    with pytest.raises(InvalidWheelError) as caught:
        plan_wheel(w, env)
    problems = caught.value.problems
    assert caught.value.wheel == w.path
    assert sorted(p.split(":")[0] for p in problems) == [
        "demo-1.0.data/PLATLIB/x.so",  # keys are case-sensitive
        "demo-1.0.data/headers",  # a key with nothing below it
        "demo-1.0.data/lib/x.py",
        "demo-1.0.dist-info/entry_points.txt",
        "demo-1.0.dist-info/entry_points.txt",
    ]
    assert sum("unknown data directory" in p for p in problems) == 3
    assert any("'.hidden' starts with" in p for p in problems)
    assert any("'no-attr'" in p for p in problems)


class StubArchive:
    """A validated archive plus entries the real reader would refuse ('..' components).

    The reader refuses such names first; the planner keeps its own containment check, which
    only a hand-built :class:`Wheel` reaches.
    """

    def __init__(self, real: Any, extra: list[str]) -> None:
        self.real = real
        self.entries = (*real.entries, *(Entry(n, 0, 0, 0, 0o644, False) for n in extra))

    def get(self, name: str) -> Entry | None:
        return self.real.get(name)

    def read(self, name: str) -> bytes:
        data: bytes = self.real.read(name)
        return data


def test_paths_leading_out_are_refused_every_one(wheel: Wheels, env: Environment) -> None:
    w = wheel("demo", "1.0", {"demo/__init__.py": b""})
    hostile = [
        "demo/../../escape.py",
        "demo-1.0.data/data/../../../../etc/passwd",
        "demo-1.0.data/scripts/../../lib/python3.11/site-packages/x.pth",
        "demo-1.0.data/../sneaky.py",
    ]
    forged = dataclasses.replace(w, archive=StubArchive(w.archive, hostile))
    with pytest.raises(InvalidWheelError) as caught:
        plan_wheel(forged, env)
    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert [p.split(": ")[0] for p in problems] == hostile
    assert sum("would be written outside" in p for p in problems) == 3
    assert "unknown data directory '..'" in problems[3]


def test_stalwarts_state_directory_is_refused(wheel: Wheels, env: Environment) -> None:
    files = {"demo.py": b"", ".stalwart/txn-1/journal.json": b"{}"}
    w = wheel("demo", "1.0", files, data={"purelib/.stalwart/trash/x": b""})
    with pytest.raises(InvalidWheelError) as caught:
        plan_wheel(w, env)
    assert len(caught.value.problems) == 2
    assert all("stalwart's own state directory" in p for p in caught.value.problems)


def test_two_members_for_one_path(wheel: Wheels, env: Environment) -> None:
    w = wheel(
        "demo",
        "1.0",
        {"demo/x.py": b"root"},
        data={"purelib/demo/x.py": b"data", "scripts/demo": b"#!python\n"},
        entry_points="[console_scripts]\ndemo = demo.x:main\n",
    )
    with pytest.raises(InvalidWheelError) as caught:
        plan_wheel(w, env)
    problems = caught.value.problems
    assert len(problems) == 2, problems
    assert any("demo-1.0.data/purelib/demo/x.py" in p and "demo/x.py and" in p for p in problems)
    assert any("demo-1.0.data/scripts/demo" in p and "same path" in p for p in problems)


# -- other targets --------------------------------------------------------------------------------


def test_target_puts_everything_in_the_directory(tmp_path: Path, wheel: Wheels, venv: Path) -> None:
    target = tmp_path / "target"
    env = Environment(venv_info(venv), target=str(target))
    w = wheel(
        "demo",
        "1.0",
        {"demo/__init__.py": b""},
        data={"scripts/tool": b"#!python\n", "headers/d.h": b"", "data/etc/d.cfg": b""},
        entry_points="[console_scripts]\ndemo = demo:main\n",
        purelib=False,
    )
    plan = plan_wheel(w, env)
    assert plan.lib_dir == str(target)
    dests = {a.dest for a in plan.files}
    assert all(d.startswith(str(target) + os.sep) for d in dests), dests
    assert str(target / "bin" / "tool") in dests
    assert str(target / "bin" / "demo") in dests
    assert str(target / "include" / "demo" / "d.h") in dests
    assert str(target / "etc" / "d.cfg") in dests
    # the shebang is still the interpreter's
    script = generated(plan)[str(target / "bin" / "demo")]
    assert script.content.startswith(b"#!" + str(venv / "bin" / "python").encode())


def test_prefix_headers_are_not_the_venv_kind(tmp_path: Path, wheel: Wheels, venv: Path) -> None:
    prefix = tmp_path / "pfx"
    env = Environment(prefix_info(prefix, interpreter=venv_info(venv)), prefix=str(prefix))
    w = wheel("demo", "1.0", {"demo.py": b""}, data={"headers/d.h": b"", "scripts/t": b""})
    members = by_member(plan_wheel(w, env))
    assert members["demo-1.0.data/headers/d.h"].dest == str(prefix / "include/python3.11/demo/d.h")
    assert members["demo-1.0.data/scripts/t"].dest == str(prefix / "bin" / "t")
    assert members["demo.py"].dest == str(prefix / "lib/python3.11/site-packages/demo.py")


def test_record_path() -> None:
    lib = os.path.join(os.sep, "v", "lib", "python3.11", "site-packages")
    assert record_path(lib, os.path.join(lib, "pkg", "mod.py")) == "pkg/mod.py"
    assert (
        record_path(lib, os.path.join(lib, "d-1.0.dist-info", "RECORD")) == "d-1.0.dist-info/RECORD"
    )
    assert record_path(lib, os.path.join(os.sep, "v", "bin", "tool")) == "../../../bin/tool"
    assert record_path(lib, os.path.join(os.sep, "v", "include", "site", "h.h")) == (
        "../../../include/site/h.h"
    )


def test_headers_stay_in_a_directory_of_their_own(
    tmp_path: Path, wheel: Wheels, env: Environment, venv: Path
) -> None:
    files = wheel_files("_", "1.0", {"m.py": b""}, data={"headers/x.h": b"int x;\n"})
    files = {k: v for k, v in files.items() if not k.endswith("/RECORD")}
    files["_-1.0.dist-info/METADATA"] = b"Metadata-Version: 2.1\nName: ..\nVersion: 1.0\n"
    w = wheel.open(
        make_wheel(tmp_path / "_-1.0-py3-none-any.whl", with_record(files, "_-1.0.dist-info"))
    )
    assert w.display_name == ".."  # accepted by validation: canonicalize_name("..") == "-"
    try:
        plan = plan_wheel(w, env)
    except InvalidWheelError:
        return  # refusing the wheel is a fine answer too
    dest = by_member(plan)["_-1.0.data/headers/x.h"].dest
    shared = venv / "include" / "site" / "python3.11"
    rel = os.path.relpath(dest, shared)
    assert not rel.startswith(".."), dest
    assert os.sep in rel, dest  # below a directory of the distribution's own
