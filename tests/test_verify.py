"""stalwart.verify: installed files compared with their RECORD (changed, missing, extra)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakeenv import materialize, venv_info, write_dist
from stalwart.environment import Environment
from stalwart.errors import NotInstalledError
from stalwart.installed import find_installed
from stalwart.paths import PathKeys
from stalwart.verify import VerifyReport, verify_distribution, verify_environment
from treesnap import snapshot

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX layout")


@pytest.fixture
def env(tmp_path: Path) -> Environment:
    return materialize(Environment(venv_info(tmp_path / "venv")))


@pytest.fixture
def site(env: Environment) -> Path:
    return Path(env.site_packages)


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    return tmp_path / "venv"


DEMO = {
    "demo/__init__.py": b"",
    "demo/mod.py": b"VALUE = 1\n",
    "demo/data.txt": b"some data\n",
    "../../../bin/demo-cli": b"#!/bin/sh\necho demo\n",
}


@pytest.fixture
def demo(site: Path) -> Path:
    return write_dist(site, "demo", "1.0", DEMO)


def verify(env: Environment, names: list[str] | None = None) -> list[VerifyReport]:
    before = snapshot(env.root)
    reports = verify_environment(env, names or [])
    assert snapshot(env.root) == before  # read-only
    return reports


def test_an_intact_distribution(env: Environment, demo: Path) -> None:
    (report,) = verify(env)
    assert report == VerifyReport("demo", "1.0")
    assert report.ok
    (Path(env.site_packages) / "demo" / "data.txt").write_bytes(b"other data\n")
    (report,) = verify(env)
    assert not report.ok


def test_changed_missing_and_extra_files(
    env: Environment, site: Path, venv: Path, demo: Path
) -> None:
    (site / "demo" / "mod.py").write_bytes(b"VALUE = 2\n")  # same size, other bytes
    (site / "demo" / "data.txt").write_bytes(b"some data, and more\n")
    (venv / "bin" / "demo-cli").write_bytes(b"#!/bin/sh\necho DEMO\n")
    (site / "demo" / "__init__.py").unlink()
    (site / "demo" / "planted.py").write_bytes(b"import os\n")
    (demo / "direct_url.json").write_bytes(b"{}")  # RECORD does not list it
    (report,) = verify(env)
    assert not report.ok
    assert sorted(report.changed) == sorted(
        [str(site / "demo/mod.py"), str(site / "demo/data.txt"), str(venv / "bin/demo-cli")]
    )
    assert report.missing == [str(site / "demo/__init__.py")]
    assert sorted(report.extra) == sorted(
        [str(site / "demo/planted.py"), str(demo / "direct_url.json")]
    )


def test_a_file_replaced_by_a_directory_is_changed(
    env: Environment, site: Path, demo: Path
) -> None:
    (site / "demo" / "data.txt").unlink()
    (site / "demo" / "data.txt").mkdir()
    (report,) = verify(env)
    assert report.changed == [str(site / "demo/data.txt")]


def test_bytecode_and_shared_directories_are_not_extra(
    env: Environment, site: Path, venv: Path, demo: Path
) -> None:
    (site / "demo" / "__pycache__").mkdir()
    (site / "demo" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"pyc")
    (site / "demo" / "legacy.pyc").write_bytes(b"pyc")
    (site / "demo" / "subdir").mkdir()  # a directory is not an extra file
    (venv / "bin" / "someone-elses-tool").write_bytes(b"")  # bin/ is shared
    (site / "top_level_module.py").write_bytes(b"")  # site-packages itself is shared
    (site / "demo" / "planted.txt").write_bytes(b"")  # the one extra file
    (report,) = verify(env)
    assert report.extra == [str(site / "demo" / "planted.txt")]
    assert report.changed == report.missing == []


def test_rows_without_a_hash_are_only_checked_for_presence(env: Environment, site: Path) -> None:
    (site / "nohash.py").write_bytes(b"anything")
    rows = [("nohash.py", "", ""), ("gone.py", "", "")]
    write_dist(site, "unhashed", "1.0", {}, rows=rows)
    (report,) = verify(env)
    assert report.changed == []
    assert report.missing == [str(site / "gone.py")]


def test_files_owned_by_another_distribution_are_not_extra(env: Environment, site: Path) -> None:
    write_dist(site, "ns-one", "1.0", {"ns/__init__.py": b"", "ns/one.py": b""})
    write_dist(site, "ns-two", "1.0", {"ns/__init__.py": b"", "ns/two.py": b""})
    assert [r.ok for r in verify(env)] == [True, True]
    # Without knowing the other owners, ns/two.py looks planted in ns-one's directory.
    one = find_installed(env.lib_dirs)["ns-one"]
    assert verify_distribution(one).extra == [str(site / "ns" / "two.py")]
    assert verify_distribution(one, {PathKeys().key(str(site / "ns" / "two.py"))}).ok


def test_a_distribution_without_record(env: Environment, site: Path) -> None:
    write_dist(site, "norecord", "1.0", {"norecord.py": b""}, record=False)
    (report,) = verify(env)
    (problem,) = report.missing
    assert "RECORD is missing" in problem
    assert not report.ok


def test_names_select_and_order_the_reports(env: Environment, site: Path) -> None:
    for name in ("zeta", "alpha", "Mid_Dle"):
        write_dist(site, name, "1.0", {f"{name.lower()}.py": b""})
    assert [r.name for r in verify(env)] == ["alpha", "Mid_Dle", "zeta"]
    assert [r.name for r in verify(env, ["zeta", "mid-dle"])] == ["zeta", "Mid_Dle"]


def test_unknown_names_are_all_reported(env: Environment, demo: Path) -> None:
    with pytest.raises(NotInstalledError) as caught:
        verify_environment(env, ["ghost", "demo", "spook"])
    assert caught.value.names == ["ghost", "spook"]
