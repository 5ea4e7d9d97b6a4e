"""stalwart.uninstall.plan_removal / plan_removals: what removing a distribution takes away.

Planning only reads: every test checks the plan, and that the tree is untouched. Environments
belong to a fake interpreter (``fakeenv``) laid out below tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakeenv import materialize, venv_info, write_dist
from stalwart.environment import Environment
from stalwart.errors import UninstallError
from stalwart.installed import Installed, find_installed
from stalwart.paths import PathKeys, is_within
from stalwart.uninstall import Removal, interpreter_paths, plan_removal, plan_removals
from treesnap import snapshot
from wheelfactory import record_hash

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX layout and symlinks")


@pytest.fixture
def env(tmp_path: Path) -> Environment:
    return materialize(Environment(venv_info(tmp_path / "venv")))


@pytest.fixture
def site(env: Environment) -> Path:
    return Path(env.site_packages)


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    return tmp_path / "venv"


def dist(env: Environment, name: str) -> Installed:
    return find_installed(env.lib_dirs)[name]


def plan(env: Environment, name: str, **kw: frozenset[str]) -> Removal:
    before = snapshot(env.root)
    removal = plan_removal(dist(env, name), env.roots, env.stop_dirs, **kw)
    assert snapshot(env.root) == before  # planning is pure
    return removal


def touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


DEMO = {
    "demo/__init__.py": b"",
    "demo/sub/__init__.py": b"",
    "demo/sub/mod.py": b"X = 1\n",
    "demo/sub/data.txt": b"data\n",
    "../../../bin/demo-cli": b"#!/bin/sh\n",
    "../../../share/demo/doc/readme.txt": b"readme\n",
}


@pytest.fixture
def demo(env: Environment, site: Path) -> Path:
    """demo 1.0 with bytecode of two interpreters, a file RECORD does not list in its
    .dist-info, and a user's file in one of its directories."""
    info = write_dist(site, "demo", "1.0", DEMO, dist_info_files={"licenses/LICENSE": b"MIT"})
    for pyc in [
        "demo/__pycache__/__init__.cpython-311.pyc",
        "demo/__pycache__/__init__.cpython-312.opt-1.pyc",
        "demo/__pycache__/unrelated.cpython-311.pyc",  # no unrelated.py in RECORD: stays
        "demo/sub/__pycache__/mod.cpython-311.pyc",
        "demo/sub/__pycache__/mod.cpython-311.pyc.12345.tmp",  # not bytecode: stays
    ]:
        touch(site / pyc)
    touch(site / "demo" / "sub" / "users-notes.txt")
    return info


def test_record_files_bytecode_and_the_whole_dist_info(
    env: Environment, site: Path, venv: Path, demo: Path
) -> None:
    removal = plan(env, "demo")
    assert removal.dist.name == "demo"
    expected = {
        site / "demo/__init__.py",
        site / "demo/sub/__init__.py",
        site / "demo/sub/mod.py",
        site / "demo/sub/data.txt",
        venv / "bin/demo-cli",
        venv / "share/demo/doc/readme.txt",
        site / "demo/__pycache__/__init__.cpython-311.pyc",
        site / "demo/__pycache__/__init__.cpython-312.opt-1.pyc",
        site / "demo/sub/__pycache__/mod.cpython-311.pyc",
        demo / "METADATA",
        demo / "INSTALLER",
        demo / "RECORD",
        demo / "licenses" / "LICENSE",  # not in RECORD, but the .dist-info goes whole
    }
    assert set(removal.files) == {str(p) for p in expected}
    assert len(removal.files) == len(expected)  # each once


def test_prune_deepest_first_and_never_a_stop_dir(
    env: Environment, site: Path, venv: Path, demo: Path
) -> None:
    prune = plan(env, "demo").prune
    assert set(prune) == {
        str(site / "demo"),
        str(site / "demo/__pycache__"),
        str(site / "demo/sub"),
        str(site / "demo/sub/__pycache__"),
        str(demo),
        str(demo / "licenses"),
        str(venv / "share/demo/doc"),
        str(venv / "share/demo"),
        str(venv / "share"),
    }
    for i, later in enumerate(prune):
        for earlier in prune[:i]:
            assert not is_within(earlier, later), f"{earlier} is pruned before {later} below it"
    for stop in env.stop_dirs:
        assert stop not in prune
    assert all(is_within(env.root, p) for p in prune)


def test_files_other_distributions_still_list_are_kept(
    env: Environment, site: Path, demo: Path
) -> None:
    keep = frozenset({PathKeys().key(str(site / "demo/__init__.py"))})
    removal = plan(env, "demo", keep=keep)
    assert str(site / "demo/__init__.py") not in removal.files
    # ... and so is its bytecode, which belongs with it
    assert str(site / "demo/__pycache__/__init__.cpython-311.pyc") not in removal.files
    assert str(site / "demo/sub/mod.py") in removal.files
    assert str(site / "demo") in removal.prune  # only pruned if it ends up empty


def test_a_record_naming_the_interpreter_refuses_the_whole_removal(
    env: Environment, site: Path, venv: Path
) -> None:
    (venv / "bin" / "python3").symlink_to("python")
    rows = [("evil.py", record_hash(b""), "0"), ("../../../bin/python3", "", "")]
    write_dist(site, "evil", "1.0", {"evil.py": b""}, rows=rows)
    protected = interpreter_paths(env.executable)
    with pytest.raises(UninstallError) as caught:
        plan(env, "evil", protected=protected)
    assert caught.value.subject == "refusing to uninstall evil 1.0"
    assert caught.value.problems == [
        "RECORD entry '../../../bin/python3' is the environment's interpreter"
    ]


def test_record_paths_outside_the_environment_are_all_refused(
    tmp_path: Path, env: Environment, site: Path
) -> None:
    outside = tmp_path / "elsewhere"
    touch(outside / "victim.py")
    touch(outside / "target.py")
    (site / "linkdir").symlink_to(outside)  # a directory on the way leads out
    touch(tmp_path / "outside.txt")
    rows = [
        ("ok.py", "", ""),
        ("../../../../outside.txt", "", ""),
        ("/etc/passwd", "", ""),
        ("linkdir/victim.py", "", ""),
    ]
    touch(site / "ok.py")
    write_dist(site, "hostile", "1.0", {}, rows=rows)
    before = snapshot(tmp_path)
    with pytest.raises(UninstallError) as caught:
        plan(env, "hostile")
    assert caught.value.problems == [
        f"RECORD entry {p!r} resolves outside the environment"
        for p in ("../../../../outside.txt", "/etc/passwd", "linkdir/victim.py")
    ]
    assert snapshot(tmp_path) == before


def test_a_symlink_inside_is_removed_itself_not_its_target(
    tmp_path: Path, env: Environment, site: Path
) -> None:
    target = touch(tmp_path / "elsewhere" / "target.py")
    write_dist(site, "linky", "1.0", {"linky/__init__.py": b""})
    (site / "linky" / "alias.py").symlink_to(target)
    info = site / "linky-1.0.dist-info"
    with (info / "RECORD").open("a") as f:
        f.write("linky/alias.py,,\n")
    removal = plan(env, "linky")
    assert str(site / "linky" / "alias.py") in removal.files
    assert str(target) not in removal.files


def test_listed_directories_are_only_pruned(env: Environment, site: Path, venv: Path) -> None:
    (site / "dirs" / "empty").mkdir(parents=True)
    touch(site / "dirs" / "full" / "someone-elses.py")
    rows = [
        ("dirs/", "", ""),
        ("dirs/empty", "", ""),
        ("dirs/full/", "", ""),
        ("../../../bin", "", ""),  # a hostile row: the scripts directory
        ("../../..", "", ""),  # the environment itself
    ]
    write_dist(site, "dirs", "1.0", {}, rows=rows)
    removal = plan(env, "dirs")
    listed = {site / "dirs", site / "dirs" / "empty", site / "dirs" / "full", venv / "bin", venv}
    assert not {str(p) for p in listed} & set(removal.files)
    assert not [f for f in removal.files if f.startswith(str(site / "dirs") + os.sep)]
    assert {str(site / "dirs"), str(site / "dirs/empty"), str(site / "dirs/full")} <= set(
        removal.prune
    )
    assert str(venv / "bin") not in removal.prune
    assert str(venv) not in removal.prune


def test_a_missing_record_refuses_the_removal(env: Environment, site: Path) -> None:
    write_dist(site, "norecord", "1.0", {"norecord.py": b""}, record=False)
    with pytest.raises(UninstallError) as caught:
        plan(env, "norecord")
    (problem,) = caught.value.problems
    assert "RECORD is missing" in problem


def test_a_dist_info_leading_out_is_refused(tmp_path: Path, env: Environment, site: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_dist(elsewhere, "away", "1.0", {})
    (site / "away-1.0.dist-info").symlink_to(elsewhere / "away-1.0.dist-info")
    with pytest.raises(UninstallError) as caught:
        plan(env, "away")
    assert any("away-1.0.dist-info resolves outside" in p for p in caught.value.problems)


# -- plan_removals --------------------------------------------------------------------------------

SHARED = {"ns/__init__.py": b"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"}


def test_plan_removals_keeps_what_staying_distributions_list(env: Environment, site: Path) -> None:
    write_dist(site, "ns-one", "1.0", {**SHARED, "ns/one.py": b""})
    write_dist(site, "ns-two", "1.0", {**SHARED, "ns/two.py": b""})
    installed = find_installed(env.lib_dirs)
    init = str(site / "ns" / "__init__.py")
    (one,) = plan_removals([installed["ns-one"]], installed, env)
    assert init not in one.files
    assert str(site / "ns" / "one.py") in one.files
    both = plan_removals([installed["ns-one"], installed["ns-two"]], installed, env)
    assert [init in r.files for r in both] == [True, True]


def test_plan_removals_protects_the_interpreter(env: Environment, site: Path) -> None:
    write_dist(site, "grabby", "1.0", {}, rows=[("../../../bin/python", "", "")])
    installed = find_installed(env.lib_dirs)
    with pytest.raises(UninstallError, match="is the environment's interpreter"):
        plan_removals([installed["grabby"]], installed, env)
