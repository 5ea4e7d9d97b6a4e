"""stalwart.requirements.pylock: PEP 751 lock files, checked and narrowed to one target's wheels."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.markers import default_environment
from packaging.tags import Tag, sys_tags
from packaging.version import Version

from stalwart.errors import LockFileError, UsageError
from stalwart.requirements.pylock import (
    Lock,
    LockedWheel,
    load_lock,
    parse_lock,
    select_from_lock,
)
from tinywheels import build_wheel, sha256_of

LOCK_DIR = os.path.abspath(os.path.join(os.sep, "locks", "project"))
LOCK_PATH = os.path.join(LOCK_DIR, "pylock.toml")
SHA = "a" * 64
LINUX_311 = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.4",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "6.1.0",
    "platform_system": "Linux",
    "platform_version": "#1 SMP",
    "python_full_version": "3.11.4",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "sys_platform": "linux",
}
TAGS = [
    Tag("cp311", "cp311", "manylinux_2_17_x86_64"),
    Tag("cp311", "abi3", "manylinux_2_17_x86_64"),
    Tag("py3", "none", "manylinux_2_17_x86_64"),
    Tag("cp311", "none", "any"),
    Tag("py3", "none", "any"),
]
PY = (3, 11, 4)


def wheel(filename: str, **fields: Any) -> str:
    parts = [f"name = {filename!r}", f"url = 'https://files.example/{filename}'"]
    parts += [f"{key} = {value}" for key, value in fields.items()]
    if "hashes" not in fields:
        parts.append(f"hashes = {{sha256 = '{SHA}'}}")
    return "{" + ", ".join(parts) + "}"


def package(
    name: str, version: str | None = "1.0", *, wheels: list[str] | None = None, body: str = ""
) -> str:
    lines = ["[[packages]]", f"name = {name!r}"]
    if version is not None:
        lines.append(f"version = {version!r}")
    if wheels is None and "[packages." not in body and " = {" not in body:
        wheels = [wheel(f"{name}-{version}-py3-none-any.whl")]
    if wheels is not None:
        lines.append("wheels = [" + ", ".join(wheels) + "]")
    lines.append(body)
    return "\n".join(lines) + "\n"


def lock(*packages: str, head: str = "") -> str:
    return f"lock-version = '1.0'\ncreated-by = 'tests'\n{head}\n" + "\n".join(packages)


def select(text: str | dict[str, Any] | Lock, **kwargs: Any) -> list[LockedWheel]:
    kwargs.setdefault("marker_env", LINUX_311)
    kwargs.setdefault("tags", TAGS)
    kwargs.setdefault("python_version", PY)
    return select_from_lock(text, path=LOCK_PATH, **kwargs)


def chosen(text: str, **kwargs: Any) -> list[tuple[str, str]]:
    return [(w.name, w.filename) for w in select(text, **kwargs)]


def problems(text: str, **kwargs: Any) -> list[str]:
    with pytest.raises(LockFileError) as info:
        select(text, **kwargs)
    assert info.value.subject == LOCK_PATH
    assert isinstance(info.value, UsageError)
    return info.value.problems


# -- the real pip writes a lock; we choose what it locked -----------------------------------------


def pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def pip_lock(tmp_path: Path, *args: str) -> Path:
    output = tmp_path / "pylock.toml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "lock",
            "--quiet",
            "--no-index",
            "--find-links",
            str(tmp_path / "wheels"),
            "-o",
            str(output),
            *args,
        ],
        cwd=tmp_path,
        env=pip_env(),
        check=True,
        capture_output=True,
    )
    return output


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    best = str(next(iter(sys_tags())))
    build_wheel(
        wheels,
        "alpha",
        "1.0",
        requires=["beta>=1", 'gamma; python_version < "3"'],
        extras={"fast": ["delta"]},
    )
    build_wheel(wheels, "beta", "1.0")
    build_wheel(wheels, "beta", "2.0")
    build_wheel(wheels, "beta", "2.0", tag=best)  # pip prefers this one here
    build_wheel(wheels, "beta", "2.0", tag="cp27-cp27m-win32")
    build_wheel(wheels, "gamma", "1.0")
    build_wheel(wheels, "delta", "1.0")
    build_wheel(wheels, "epsilon", "3.0", requires_python=">=3")
    return wheels


def running_target() -> dict[str, Any]:
    return {
        "marker_env": default_environment(),
        "tags": list(sys_tags()),
        "python_version": sys.version_info[:3],
    }


def test_select_exactly_what_pip_locked(tmp_path: Path, wheel_dir: Path) -> None:
    path = pip_lock(tmp_path, "alpha[fast]", "epsilon")
    data = tomllib.loads(path.read_text())
    assert data["created-by"] == "pip"
    locked = {
        (p["name"], p["version"], w["url"], w["hashes"]["sha256"])
        for p in data["packages"]
        for w in p["wheels"]
    }
    selected = select_from_lock(path.read_text(), path=str(path), **running_target())
    assert {(w.name, str(w.version), w.url, w.hashes["sha256"]) for w in selected} == locked
    assert {w.name for w in selected} == {"alpha", "beta", "delta", "epsilon"}
    for w in selected:
        assert not w.direct
        assert w.hashes["sha256"] == sha256_of(wheel_dir / w.filename)


def test_best_tag_agrees_with_pip(tmp_path: Path, wheel_dir: Path) -> None:
    # pip locks the one wheel it would install; offered all of beta's wheels, we choose it too.
    path = pip_lock(tmp_path, "beta==2.0")
    data = tomllib.loads(path.read_text())
    (beta,) = data["packages"]
    pip_choice = beta["wheels"][0]["name"]
    beta["wheels"] = [
        {"name": p.name, "path": f"wheels/{p.name}", "hashes": {"sha256": sha256_of(p)}}
        for p in sorted(wheel_dir.glob("beta-2.0-*.whl"))
    ]
    (selected,) = select_from_lock(data, path=str(path), **running_target())
    assert selected.filename == pip_choice
    assert selected.path == str(wheel_dir / pip_choice)
    assert selected.url is None


def test_pip_lock_of_a_local_wheel_is_a_direct_archive(tmp_path: Path, wheel_dir: Path) -> None:
    path = pip_lock(tmp_path, str(wheel_dir / "delta-1.0-py3-none-any.whl"))
    (delta,) = select_from_lock(load_lock(str(path)), **running_target())
    assert (delta.name, delta.version, delta.direct) == ("delta", Version("1.0"), True)
    assert delta.hashes["sha256"] == sha256_of(wheel_dir / "delta-1.0-py3-none-any.whl")


# -- the file's own keys --------------------------------------------------------------------------


def test_minimal_lock() -> None:
    parsed = parse_lock(lock(package("demo")), path=LOCK_PATH)
    assert parsed.lock_version == (1, 0)
    assert parsed.created_by == "tests"
    assert [p.name for p in parsed.packages] == ["demo"]
    assert parsed.notes == ()
    (demo,) = select(parsed)
    assert demo == LockedWheel(
        name="demo",
        version=Version("1.0"),
        filename="demo-1.0-py3-none-any.whl",
        url="https://files.example/demo-1.0-py3-none-any.whl",
        path=None,
        hashes={"sha256": SHA},
        size=None,
        upload_time=None,
        index=None,
        direct=False,
        tag_rank=4,
    )


def test_empty_package_list_is_valid() -> None:
    assert select(lock(head="packages = []")) == []


def test_newer_minor_version_is_read_with_a_note() -> None:
    text = lock(package("demo")).replace("'1.0'", "'1.3'", 1)
    parsed = parse_lock(text)
    assert parsed.lock_version == (1, 3)
    assert "newer" in parsed.notes[0]


@pytest.mark.parametrize(
    ("first_line", "message"),
    [
        ("lock-version = '2.0'", "lock-version 2.0 is not supported"),
        ("lock-version = '0.9'", "lock-version 0.9 is not supported"),
        ("lock-version = 'one'", "is not MAJOR.MINOR"),
        ("lock-version = '1'", "is not MAJOR.MINOR"),
        ("lock-version = 1.0", "lock-version must be a string"),
        ("", "lock-version is required"),
    ],
)
def test_lock_version(first_line: str, message: str) -> None:
    text = lock(package("demo")).replace("lock-version = '1.0'", first_line, 1)
    with pytest.raises(LockFileError, match=message):
        parse_lock(text)


def test_created_by_is_required() -> None:
    with pytest.raises(LockFileError, match="created-by is required"):
        parse_lock(lock(package("demo")).replace("created-by = 'tests'", ""))


def test_requires_python_of_the_lock() -> None:
    text = lock(package("demo"), head="requires-python = '>=3.12'")
    assert "requires Python >=3.12; the target is 3.11.4" in problems(text)[0]
    assert chosen(lock(package("demo"), head="requires-python = '>=3.11'"))


def test_environments() -> None:
    head = "environments = [\"sys_platform == 'win32'\", \"sys_platform == 'darwin'\"]"
    assert (
        "matches none of the lock file's environments" in problems(lock(package("d"), head=head))[0]
    )
    head = "environments = [\"sys_platform == 'win32'\", \"sys_platform == 'linux'\"]"
    assert chosen(lock(package("demo"), head=head)) == [("demo", "demo-1.0-py3-none-any.whl")]


# -- packages: markers, extras, groups ------------------------------------------------------------


def test_package_markers() -> None:
    text = lock(
        package("onlywin", body="marker = \"sys_platform == 'win32'\""),
        package("onlylinux", body="marker = \"sys_platform == 'linux'\""),
    )
    assert [name for name, _ in chosen(text)] == ["onlylinux"]


EXTRAS_LOCK = lock(
    package("base"),
    package("fast", body="marker = \"'fast' in extras\""),
    package("pytest", body="marker = \"'test' in dependency_groups\""),
    package("lint", body="marker = \"'lint' in dependency_groups\""),
    package("default", body="marker = \"'main' in dependency_groups\""),
    head="extras = ['fast']\ndependency-groups = ['test', 'lint']\ndefault-groups = ['main']",
)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, ["base", "default"]),  # default-groups by default (PEP 751 "Installation")
        ({"groups": ()}, ["base"]),
        ({"extras": ["Fast"]}, ["base", "fast", "default"]),
        ({"groups": ["test", "main"]}, ["base", "pytest", "default"]),
        ({"extras": ["fast"], "groups": ["lint"]}, ["base", "fast", "lint"]),
    ],
)
def test_extras_and_groups(kwargs: dict[str, Any], expected: list[str]) -> None:
    assert [name for name, _ in chosen(EXTRAS_LOCK, **kwargs)] == expected


def test_unknown_extras_and_groups_are_refused() -> None:
    found = problems(EXTRAS_LOCK, extras=["slow"], groups=["docs"])
    assert found == [
        "the lock file offers no extra 'slow' (it has: fast)",
        "the lock file offers no dependency group 'docs' (it has: lint, main, test)",
    ]


def test_a_marker_that_cannot_be_evaluated() -> None:
    # PEP 751 markers know "extras" (a set), not the "extra" of core metadata.
    text = lock(package("demo", body="marker = \"extra == 'x'\""))
    assert "cannot evaluate the marker" in problems(text)[0]


def test_package_requires_python() -> None:
    text = lock(package("new", body="requires-python = '>=3.12'"), package("ok"))
    assert problems(text) == ["new requires Python >=3.12; the target is 3.11.4"]


def test_ambiguous_packages_are_refused() -> None:
    text = lock(package("demo", "1.0"), package("demo", "2.0"))
    assert problems(text) == ["demo is locked more than once for this environment"]
    # Entries whose markers exclude each other are not ambiguous.
    text = lock(
        package("demo", "1.0", body="marker = \"sys_platform == 'win32'\""),
        package("demo", "2.0", body="marker = \"sys_platform != 'win32'\""),
    )
    assert chosen(text) == [("demo", "demo-2.0-py3-none-any.whl")]


# -- choosing a wheel -----------------------------------------------------------------------------


def test_the_best_tag_wins() -> None:
    wheels = [
        wheel("demo-1.0-cp311-cp311-win_amd64.whl"),
        wheel("demo-1.0-py3-none-any.whl"),
        wheel("demo-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"),
        wheel("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
    ]
    (selected,) = select(lock(package("demo", wheels=wheels)))
    assert selected.filename == "demo-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"
    assert selected.tag_rank == 1


def test_build_tags_break_ties() -> None:
    wheels = [
        wheel("demo-1.0-1-py3-none-any.whl"),
        wheel("demo-1.0-3-py3-none-any.whl"),
        wheel("demo-1.0-2-py3-none-any.whl"),
    ]
    assert chosen(lock(package("demo", wheels=wheels))) == [("demo", "demo-1.0-3-py3-none-any.whl")]


@pytest.mark.parametrize(
    "body",
    [
        "sdist = {name = 'demo-1.0.tar.gz', url = 'https://f.example/demo-1.0.tar.gz', "
        f"hashes = {{sha256 = '{SHA}'}}}}",
        "vcs = {type = 'git', url = 'https://github.com/x/demo', commit-id = 'abc'}",
        "directory = {path = '../demo'}",
        f"archive = {{url = 'https://f.example/demo-1.0.zip', hashes = {{sha256 = '{SHA}'}}}}",
    ],
)
def test_source_only_packages_need_a_build(body: str) -> None:
    text = lock(
        package(
            "demo", None if "vcs" in body or "directory" in body else "1.0", wheels=None, body=body
        )
    )
    assert problems(text) == [
        "demo publishes no wheel for this environment; building from source is not supported yet"
    ]


def test_incompatible_wheels_with_an_sdist_need_a_build() -> None:
    text = lock(
        package(
            "demo",
            wheels=[wheel("demo-1.0-cp311-cp311-win_amd64.whl")],
            body="sdist = {url = 'https://f.example/demo-1.0.tar.gz', "
            f"hashes = {{sha256 = '{SHA}'}}}}",
        )
    )
    assert "publishes no wheel for this environment" in problems(text)[0]


def test_incompatible_wheels_alone() -> None:
    text = lock(package("demo", wheels=[wheel("demo-1.0-cp311-cp311-win_amd64.whl")]))
    assert problems(text) == [
        "demo has no wheel for this environment (locked wheels: demo-1.0-cp311-cp311-win_amd64.whl)"
    ]


def test_paths_are_relative_to_the_lock_file() -> None:
    body = (
        f"wheels = [{{path = 'dist/sub/demo-1.0-py3-none-any.whl', hashes = {{sha256 = '{SHA}'}}}}]"
    )
    (selected,) = select(lock(package("demo", wheels=None, body=body)))
    assert selected.path == os.path.join(LOCK_DIR, "dist", "sub", "demo-1.0-py3-none-any.whl")
    assert selected.filename == "demo-1.0-py3-none-any.whl"
    assert selected.url is None


def test_wheel_details_are_kept() -> None:
    wheels = [
        wheel(
            "demo-1.0-py3-none-any.whl",
            size=1234,
            **{"upload-time": "2025-01-25T11:30:10.164985+00:00"},
            hashes=f"{{sha256 = '{SHA.upper()}', md5 = '{'c' * 32}'}}",
        )
    ]
    text = lock(package("demo", wheels=wheels, body="index = 'https://pypi.org/simple/'"))
    (selected,) = select(text)
    assert selected.size == 1234
    assert selected.upload_time is not None
    assert selected.upload_time.year == 2025
    assert selected.hashes == {"sha256": SHA, "md5": "c" * 32}
    assert selected.index == "https://pypi.org/simple/"


def test_archive_wheels_are_direct() -> None:
    body = (
        "archive = {url = 'https://f.example/demo-2.0-py3-none-any.whl', "
        f"hashes = {{sha256 = '{SHA}'}}}}"
    )
    (selected,) = select(lock(package("demo", None, wheels=None, body=body)))
    assert (selected.version, selected.direct) == (Version("2.0"), True)


# -- refusing malformed files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wheels", "message"),
    [
        ([wheel("demo-1.0-py3-none-any.whl", hashes="{}")], "hashes are required"),
        (
            ["{name = 'demo-1.0-py3-none-any.whl', url = 'https://f.example/x.whl'}"],
            "hashes are required",
        ),
        (
            [wheel("demo-1.0-py3-none-any.whl", hashes=f"{{md5 = '{'c' * 32}'}}")],
            "no hash stalwart can verify",
        ),
        ([wheel("demo-1.0-py3-none-any.whl", hashes="{sha256 = 'abc'}")], "not 64 hex digits"),
        ([wheel("demo-1.0-py3-none-any.whl", hashes="{sha256 = 5}")], "must be a string"),
        (
            ["{name = 'demo-1.0-py3-none-any.whl', hashes = {sha256 = '" + SHA + "'}}"],
            "url or path is required",
        ),
        ([wheel("other-1.0-py3-none-any.whl")], "a wheel of other, not demo"),
        ([wheel("demo-2.0-py3-none-any.whl")], "is version 2.0, not 1.0"),
        ([wheel("demo-1.0.tar.gz")], "invalid wheel filename"),
        ([wheel("demo-1.0-py3-none-any.whl", size="true")], "size must be an integer"),
        ([wheel("demo-1.0-py3-none-any.whl", size=-1)], "size must not be negative"),
        (
            [wheel("demo-1.0-py3-none-any.whl", **{"upload-time": "'yesterday'"})],
            "upload-time must be",
        ),
        (
            ["{url = 'https://f.example/', hashes = {sha256 = '" + SHA + "'}}"],
            "no usable file name",
        ),
        ([wheel("..")], "no usable file name"),
        (["'not a table'"], "must be a table"),
        ([wheel("demo-1.0-py3-none-any.whl").replace("https://", "ftp://")], "not http(s) or file"),
    ],
)
def test_malformed_wheels(wheels: list[str], message: str) -> None:
    with pytest.raises(LockFileError) as info:
        parse_lock(lock(package("demo", wheels=wheels)), path=LOCK_PATH)
    assert any(message in p for p in info.value.problems), info.value.problems


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (lock("[[packages]]\nversion = '1.0'\n"), "name is required"),
        (lock("[[packages]]\nname = 'bad name!'\nwheels = []\n"), "not a valid project name"),
        (lock(package("demo", "1.0.x")), "not a valid version"),
        (lock(package("demo", body="marker = 'python_version >>> 3'")), "not a valid marker"),
        (lock(package("demo", body="requires-python = '>=3.x'")), "requires-python"),
        (lock("[[packages]]\nname = 'demo'\n"), "no source"),
        (
            lock(
                package(
                    "demo",
                    wheels=[wheel("demo-1.0-py3-none-any.whl")],
                    body="directory = {path = '.'}",
                )
            ),
            "conflicting sources",
        ),
        (lock(head="packages = 'x'"), "packages must be an array"),
        (lock(), "packages is required"),
        (
            lock(head="environments = [1]\npackages = []"),
            "environments must be an array of strings",
        ),
        (lock(head="environments = ['os_name ==']\npackages = []"), "not a valid marker"),
        (lock(package("demo", body="dependencies = 'x'")), "dependencies must be an array"),
    ],
)
def test_malformed_files(text: str, message: str) -> None:
    with pytest.raises(LockFileError) as info:
        parse_lock(text, path=LOCK_PATH)
    assert any(message in p for p in info.value.problems), info.value.problems


def test_every_problem_at_once() -> None:
    text = lock(
        package("one", wheels=[wheel("one-1.0-py3-none-any.whl", hashes="{}")]),
        package("two", "x.y"),
        "[[packages]]\nname = 3\n",
    )
    with pytest.raises(LockFileError) as info:
        parse_lock(text, path=LOCK_PATH)
    assert len(info.value.problems) >= 3


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("lock-version = ", "not valid TOML"),
        ("a = 1\na = 2", "not valid TOML"),
        (b"\xff\xfe", "not UTF-8"),
        ("x = " + "[" * 10_000, "not valid TOML"),
    ],
)
def test_unreadable_toml(source: str | bytes, message: str) -> None:
    with pytest.raises(LockFileError, match=message):
        parse_lock(source)


def test_credentials_stay_out_of_messages() -> None:
    url = "ftp://alice:s3cr3t@files.example/demo-1.0-py3-none-any.whl"
    text = lock(package("demo", wheels=[f"{{url = '{url}', hashes = {{sha256 = '{SHA}'}}}}"]))
    with pytest.raises(LockFileError) as info:
        parse_lock(text)
    assert "s3cr3t" not in str(info.value)
    url = "https://alice:s3cr3t@files.example/demo-1.0-py3-none-any.whl"
    text = lock(package("demo", wheels=[f"{{url = '{url}', hashes = {{sha256 = '{SHA}'}}}}"]))
    (selected,) = select(text)
    assert selected.url == url
    assert "s3cr3t" not in repr(selected)
    assert "s3cr3t" not in repr(parse_lock(text))


def test_load_lock_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    body = "wheels = [" + f"{{path = 'demo-1.0-py3-none-any.whl', hashes = {{sha256 = '{SHA}'}}}}]"
    path.write_text(lock(package("demo", wheels=None, body=body)))
    parsed = load_lock(str(path))
    assert parsed.path == str(path)
    assert parsed.packages[0].wheels[0].path == str(tmp_path / "demo-1.0-py3-none-any.whl")
    with pytest.raises(LockFileError, match="cannot read"):
        load_lock(str(tmp_path / "missing.toml"))
    with pytest.raises(LockFileError, match="not a regular file"):
        load_lock(str(tmp_path))


# -- hostile input --------------------------------------------------------------------------------


def maybe(values: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values, sometimes anything at all."""
    junk = st.text(max_size=8) | st.integers() | st.booleans()
    return st.one_of(*[st.sampled_from(values)] * 4, junk)


hashes = st.dictionaries(
    maybe(["sha256", "md5", "SHA256"]), maybe([SHA, "abc", "c" * 32]), max_size=2
)
file_tables = st.fixed_dictionaries(
    {},
    optional={
        "name": maybe(
            ["demo-1.0-py3-none-any.whl", "demo-1.0-cp311-cp311-win32.whl", "demo.tar.gz"]
        ),
        "url": maybe(["https://f.example/demo-1.0-py3-none-any.whl", "ftp://x/", "file:///x"]),
        "path": maybe(["demo-1.0-py3-none-any.whl", "../x/demo-1.0-py3-none-any.whl", ".."]),
        "hashes": hashes,
        "size": maybe([0, 12, -1]),
    },
)
package_tables = st.fixed_dictionaries(
    {"name": maybe(["demo", "Demo", "other", "bad name!"])},
    optional={
        "version": maybe(["1.0", "2.0", "x"]),
        "marker": maybe(
            ["os_name == 'posix'", "'fast' in extras", "extra == 'x'", "python_version >"]
        ),
        "requires-python": maybe([">=3", ">=4", "~="]),
        "wheels": st.lists(file_tables, max_size=3) | maybe(["x"]),
        "sdist": file_tables,
        "archive": file_tables,
        "vcs": st.just({"type": "git"}),
        "directory": maybe([{"path": "."}]),
    },
)
lock_tables = st.fixed_dictionaries(
    {
        "lock-version": st.sampled_from(["1.0", "1.0", "1.9", "2.0", "x"]),
        "created-by": st.just("tests"),
        "packages": st.lists(package_tables, max_size=4),
    },
    optional={
        "environments": st.lists(
            maybe(["os_name == 'posix'", "sys_platform == 'win32'"]), max_size=2
        ),
        "requires-python": maybe([">=3.8", ">=4"]),
        "extras": st.lists(maybe(["fast"]), max_size=2),
        "default-groups": st.lists(maybe(["main"]), max_size=2),
    },
)


@settings(max_examples=300, deadline=None, database=None)
@given(data=lock_tables, extras=st.lists(st.sampled_from(["fast", "slow"]), max_size=2))
def test_random_tables_raise_only_lock_file_errors(data: dict[str, Any], extras: list[str]) -> None:
    try:
        select(data, extras=extras)
    except LockFileError:
        pass


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_random_text_raises_only_lock_file_errors(source: str | bytes) -> None:
    try:
        select(source)
    except LockFileError:
        pass
