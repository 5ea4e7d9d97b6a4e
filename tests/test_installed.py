"""stalwart.installed: reading the ``.dist-info`` directories of an environment.

Distributions are laid out by hand (``fakeenv.write_dist``), including broken ones, in
directories named like a venv's purelib and platlib.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakeenv import write_dist
from stalwart.errors import NotInstalledError
from stalwart.installed import (
    Installed,
    file_owners,
    find_installed,
    record_path_to_abs,
    require,
)
from stalwart.paths import PathKeys
from stalwart.wheel.record import RecordEntry
from wheelfactory import record_bytes, record_hash

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX paths")


@pytest.fixture
def pure(tmp_path: Path) -> Path:
    path = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def plat(tmp_path: Path) -> Path:
    path = tmp_path / "venv" / "lib64" / "python3.11" / "site-packages"
    path.mkdir(parents=True)
    return path


def dist_info(lib: Path, dirname: str, metadata: bytes) -> Path:
    path = lib / dirname
    path.mkdir()
    (path / "METADATA").write_bytes(metadata)
    return path


# -- find_installed -------------------------------------------------------------------------------


def test_find_installed_reads_purelib_and_platlib(pure: Path, plat: Path) -> None:
    write_dist(pure, "Pure_Thing", "1.0", {"pure_thing.py": b""})
    write_dist(plat, "native", "2.0b1", {"native.so": b""})
    found = find_installed([str(pure), str(plat)])
    assert sorted(found) == ["native", "pure-thing"]  # canonical names
    thing = found["pure-thing"]
    assert thing == Installed(
        name="pure-thing",
        display_name="Pure_Thing",
        version="1.0",
        dist_info=str(pure / "Pure_Thing-1.0.dist-info"),
        lib_dir=str(pure),
    )
    assert found["native"].lib_dir == str(plat)
    assert found["native"].version == "2.0b1"
    assert thing.installer == "test"
    assert not thing.requested


def test_what_is_not_a_distribution_is_ignored(pure: Path, tmp_path: Path) -> None:
    write_dist(pure, "good", "1.0", {"good.py": b""})
    dist_info(pure, "noname-1.0.dist-info", b"Metadata-Version: 2.1\nVersion: 1.0\n")
    dist_info(pure, "noversion-1.0.dist-info", b"Metadata-Version: 2.1\nName: noversion\n")
    dist_info(pure, "latin1-1.0.dist-info", b"Name: latin1\nVersion: 1.0\nAuthor: J\xe9r\xf4me\n")
    (pure / "nometadata-1.0.dist-info").mkdir()
    (pure / "egg-1.0.egg-info").mkdir()
    (pure / "file-1.0.dist-info").write_text("a file, not a directory")
    dist_info(pure, "body-1.0.dist-info", b"Version: 1.0\n\nName: in-the-description\n")
    found = find_installed([str(pure), str(tmp_path / "missing")])
    assert list(found) == ["good"]


def test_the_first_occurrence_wins(pure: Path, plat: Path) -> None:
    write_dist(plat, "dup", "2.0", {})
    write_dist(pure, "dup", "1.0", {})
    # lib_dirs are read in order: purelib first.
    assert find_installed([str(pure), str(plat)])["dup"].version == "1.0"
    assert find_installed([str(plat), str(pure)])["dup"].version == "2.0"
    # Within one directory, in sorted order: 'Dup-3.0' sorts before 'dup-1.0'.
    dist_info(pure, "Dup-3.0.dist-info", b"Name: Dup\nVersion: 3.0\n")
    assert find_installed([str(pure)])["dup"].version == "3.0"


def test_a_directory_listed_twice_is_read_once(pure: Path) -> None:
    write_dist(pure, "one", "1.0", {})
    again = str(pure) + os.sep + "." + os.sep
    assert list(find_installed([str(pure), again])) == ["one"]


# -- RECORD ---------------------------------------------------------------------------------------


def installed(lib: Path, name: str) -> Installed:
    return find_installed([str(lib)])[name]


def test_record_rows_and_files(pure: Path) -> None:
    files = {"demo/__init__.py": b"", "../../../bin/demo": b"#!/bin/sh\n"}
    write_dist(pure, "demo", "1.0", files)
    dist = installed(pure, "demo")
    assert dist.record_problems == []
    assert [e.path for e in dist.record] == [
        "demo/__init__.py",
        "../../../bin/demo",
        "demo-1.0.dist-info/METADATA",
        "demo-1.0.dist-info/INSTALLER",
        "demo-1.0.dist-info/RECORD",
    ]
    assert dist.record[0] == RecordEntry("demo/__init__.py", "sha256", dist.record[0].digest, 0)
    venv = pure.parent.parent.parent
    assert dist.files() == [
        str(pure / "demo" / "__init__.py"),
        str(venv / "bin" / "demo"),  # normalized, not left with '..'
        str(pure / "demo-1.0.dist-info" / "METADATA"),
        str(pure / "demo-1.0.dist-info" / "INSTALLER"),
        str(pure / "demo-1.0.dist-info" / "RECORD"),
    ]


def test_a_missing_record(pure: Path) -> None:
    write_dist(pure, "norecord", "1.0", {"norecord.py": b""}, record=False)
    dist = installed(pure, "norecord")
    assert dist.record == []
    assert dist.files() == []
    (problem,) = dist.record_problems
    assert "RECORD is missing" in problem
    assert str(pure / "norecord-1.0.dist-info" / "RECORD") in problem


def test_an_unreadable_record(pure: Path) -> None:
    info = write_dist(pure, "binary", "1.0", {"binary.py": b""})
    (info / "RECORD").write_bytes(b"binary.py,,\n\xff\xfe\n")
    dist = installed(pure, "binary")
    assert dist.record == []
    (problem,) = dist.record_problems
    assert "cannot be read" in problem


def test_an_installed_record_is_read_leniently(pure: Path) -> None:
    rows = [
        ("ok.py", record_hash(b""), "0"),
        ("badhash.py", "sha256=!!", "3"),
        ("badsize.py", record_hash(b""), "big"),
    ]
    info = write_dist(pure, "lenient", "1.0", {}, rows=rows)
    with (info / "RECORD").open("ab") as f:
        f.write(b"two,fields\n")
    dist = installed(pure, "lenient")
    assert [(e.path, e.digest is not None, e.size) for e in dist.record] == [
        ("ok.py", True, 0),
        ("badhash.py", False, 3),  # kept: uninstall needs the path, not the hash
        ("badsize.py", True, None),
    ]
    (problem,) = dist.record_problems
    assert "line 4" in problem
    assert "expected 3 fields" in problem


def test_record_is_read_once(pure: Path) -> None:
    info = write_dist(pure, "cached", "1.0", {"cached.py": b""})
    dist = installed(pure, "cached")
    first = dist.record
    (info / "RECORD").write_bytes(record_bytes([("other.py", "", "")]))
    assert dist.record is first


# -- require --------------------------------------------------------------------------------------


def test_require_keeps_order_and_drops_duplicates(pure: Path) -> None:
    for name in ("alpha", "Beta_Two", "gamma"):
        write_dist(pure, name, "1.0", {})
    found = find_installed([str(pure)])
    got = require(found, ["gamma", "beta-two", "Alpha", "BETA.two", "gamma"])
    assert [d.name for d in got] == ["gamma", "beta-two", "alpha"]


def test_require_names_every_missing_distribution(pure: Path) -> None:
    write_dist(pure, "present", "1.0", {})
    found = find_installed([str(pure)])
    with pytest.raises(NotInstalledError) as caught:
        require(found, ["nope", "present", "Also_Missing"])
    assert caught.value.names == ["nope", "Also_Missing"]  # as the user spelled them
    assert str(caught.value) == "not installed: nope, Also_Missing"
    assert isinstance(caught.value, LookupError)


# -- file owners and RECORD paths -----------------------------------------------------------------


def test_file_owners_lists_every_owner_of_a_path(pure: Path) -> None:
    shared = {
        "ns/__init__.py": b"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
    }
    write_dist(pure, "ns-one", "1.0", {**shared, "ns/one.py": b""})
    write_dist(pure, "ns-two", "2.0", {**shared, "ns/two.py": b""})
    found = find_installed([str(pure)])
    keys = PathKeys()
    owners = file_owners(found.values(), keys)
    init = keys.key(str(pure / "ns" / "__init__.py"))
    assert sorted((d.name, e.path) for d, e in owners[init]) == [
        ("ns-one", "ns/__init__.py"),
        ("ns-two", "ns/__init__.py"),
    ]
    assert [d.name for d, _ in owners[keys.key(str(pure / "ns" / "one.py"))]] == ["ns-one"]
    assert keys.key(str(pure / "ns-two-2.0.dist-info" / "RECORD")) in owners
    # Identity, not spelling: the same file through another path is the same key.
    assert keys.key(str(pure / "ns" / ".." / "ns" / "one.py")) in owners


def test_record_path_to_abs() -> None:
    lib = os.path.join(os.sep, "env", "lib", "python3.11", "site-packages")
    assert record_path_to_abs(lib, "pkg/mod.py") == os.path.join(lib, "pkg", "mod.py")
    assert record_path_to_abs(lib, "../../../bin/tool") == os.path.join(
        os.sep, "env", "bin", "tool"
    )
    assert record_path_to_abs(lib, "pkg/./sub/../mod.py") == os.path.join(lib, "pkg", "mod.py")
    assert record_path_to_abs(lib, "/etc/passwd") == os.path.join(os.sep, "etc", "passwd")
    assert record_path_to_abs(lib, "/opt//x/../y") == os.path.join(os.sep, "opt", "y")
    # Relative paths may climb above the root of the filesystem; they end at the root.
    assert record_path_to_abs(lib, "../" * 10 + "etc/shadow") == os.path.join(
        os.sep, "etc", "shadow"
    )
