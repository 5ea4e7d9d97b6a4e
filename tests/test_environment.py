"""stalwart.environment: the directories of a target, and the wheel tags it accepts.

Most environments here belong to a fake interpreter (:mod:`fakeenv`): nothing is queried, so
every expected directory is written out in full. Two tests ask the real interpreter, to tie
the computed tags and the ``--prefix`` query to what packaging and sysconfig say.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from packaging import tags as ptags
from packaging.tags import Tag

from fakeenv import prefix_info, system_info, venv_info
from stalwart.environment import STATE_DIR_NAME, Environment, Scheme, query_environment
from stalwart.errors import UsageError
from stalwart.interpreter import query_interpreter

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX layouts")

PLATFORMS = list(ptags.platform_tags())


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STALWART_CACHE_DIR", str(tmp_path / "cache"))


def s(path: Path) -> str:
    return str(path)


# -- directories ----------------------------------------------------------------------------------


def test_a_virtual_environment(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    env = Environment(venv_info(venv))
    assert env.in_venv
    assert env.scheme("Demo_Pkg") == Scheme(
        purelib=s(site),
        platlib=s(site),
        scripts=s(venv / "bin"),
        data=s(venv),
        # pip's venv headers directory: <prefix>/include/site/pythonX.Y/<distribution>
        headers=s(venv / "include" / "site" / "python3.11" / "Demo_Pkg"),
    )
    assert env.site_packages == s(site)
    assert env.lib_dirs == [s(site)]
    assert env.state_dir == s(site / STATE_DIR_NAME)
    assert env.lock_path == s(site)  # flock on the directory itself: nothing is written
    assert env.root == s(venv)
    assert env.roots == [s(venv), s(site), s(venv / "bin"), s(venv / "include/site/python3.11")]
    assert set(env.stop_dirs) == {
        s(venv),
        s(site),
        s(venv / "bin"),
        s(venv / "include/site/python3.11"),
    }
    assert env.executable == s(venv / "bin" / "python")


def test_a_virtual_environment_with_a_separate_platlib(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    pure = venv / "lib" / "python3.11" / "site-packages"
    plat = venv / "lib64" / "python3.11" / "site-packages"
    env = Environment(venv_info(venv, platlib="lib64"))
    assert env.lib_dirs == [s(pure), s(plat)]
    assert env.site_packages == s(pure)  # .dist-info of pure wheels, the state dir, the lock
    assert env.state_dir == s(pure / STATE_DIR_NAME)
    assert env.scheme("x").platlib == s(plat)
    assert s(plat) in env.roots
    assert {s(pure), s(plat)} <= set(env.stop_dirs)


def test_a_system_interpreter_installs_outside_its_prefix(tmp_path: Path) -> None:
    usr = tmp_path / "usr"
    site = usr / "local" / "lib" / "python3.11" / "dist-packages"
    env = Environment(system_info(tmp_path))
    assert not env.in_venv
    assert env.scheme("demo") == Scheme(
        purelib=s(site),
        platlib=s(site),
        scripts=s(usr / "local" / "bin"),
        data=s(usr / "local"),
        headers=s(usr / "include" / "python3.11" / "demo"),
    )
    assert env.root == s(usr)
    # Every scheme directory is a root: uninstall and recovery must reach what install wrote.
    assert env.roots == [
        s(usr),
        s(site),
        s(usr / "local" / "bin"),
        s(usr / "local"),
        s(usr / "include" / "python3.11"),
    ]
    assert {s(usr / "local" / "bin"), s(usr / "local"), s(site)} <= set(env.stop_dirs)
    assert env.stdlib == s(usr / "lib" / "python3.11")


def test_target_puts_everything_in_one_directory(tmp_path: Path) -> None:
    target = tmp_path / "t"
    env = Environment(venv_info(tmp_path / "venv"), target=s(target))
    assert env.scheme("Demo") == Scheme(
        purelib=s(target),
        platlib=s(target),
        scripts=s(target / "bin"),
        data=s(target),
        headers=s(target / "include" / "Demo"),
    )
    assert env.site_packages == s(target)
    assert env.lib_dirs == [s(target)]
    assert env.state_dir == s(target / STATE_DIR_NAME)
    assert env.lock_path == s(target)
    assert env.root == s(target)
    assert env.roots == [s(target)]  # nothing of the interpreter's own environment
    assert s(target) in env.stop_dirs


def test_prefix_uses_the_interpreters_scheme_rooted_elsewhere(tmp_path: Path) -> None:
    venv_interpreter = venv_info(tmp_path / "venv")
    prefix = tmp_path / "pfx"
    site = prefix / "lib" / "python3.11" / "site-packages"
    env = Environment(prefix_info(prefix, interpreter=venv_interpreter), prefix=s(prefix))
    assert not env.in_venv  # the interpreter is a venv, the prefix is not
    assert env.scheme("demo") == Scheme(
        purelib=s(site),
        platlib=s(site),
        scripts=s(prefix / "bin"),
        data=s(prefix),
        headers=s(prefix / "include" / "python3.11" / "demo"),  # no include/site/ outside venvs
    )
    assert env.root == s(prefix)
    assert env.site_packages == s(site)
    assert env.lock_path == s(site)
    assert env.roots == [s(prefix), s(site), s(prefix / "bin"), s(prefix / "include/python3.11")]
    assert not any(r.startswith(s(tmp_path / "venv")) for r in env.roots)


def test_query_environment_refuses_prefix_with_target() -> None:
    # Refused before any interpreter is looked for: this one does not exist.
    with pytest.raises(UsageError, match="--prefix and --target"):
        query_environment("/nonexistent/python", prefix="/p", target="/t")


def test_query_environment_makes_prefix_and_target_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = query_environment(prefix="pfx")
    prefix = str(tmp_path / "pfx")
    assert env.prefix == prefix
    assert env.interpreter.prefix == prefix
    assert env.root == prefix
    for key in ("purelib", "platlib", "scripts", "data", "include"):
        assert os.path.commonpath([prefix, env.paths[key]]) == prefix, (key, env.paths[key])
    target = query_environment(target="tgt")
    assert target.target == str(tmp_path / "tgt")
    assert target.roots == [str(tmp_path / "tgt")]


# -- tags -----------------------------------------------------------------------------------------


def test_tags_of_the_running_interpreter_are_packagings() -> None:
    info = query_interpreter(sys.executable)
    assert Environment(info).tags == list(ptags.sys_tags())


def test_cpython_tags_best_first(tmp_path: Path) -> None:
    tags = Environment(venv_info(tmp_path / "v", version=(3, 12, 1))).tags
    plat = PLATFORMS[0]
    assert tags[0] == Tag("cp312", "cp312", plat)
    for wanted in [
        Tag("cp312", "abi3", plat),
        Tag("cp32", "abi3", plat),  # abi3 goes back to 3.2
        Tag("cp312", "none", plat),
        Tag("py3", "none", plat),
        Tag("cp312", "none", "any"),
        Tag("py312", "none", "any"),
        Tag("py3", "none", "any"),
    ]:
        assert wanted in tags, wanted
    for refused in [
        Tag("cp313", "cp313", plat),
        Tag("cp312", "cp312t", plat),
        Tag("py2", "none", "any"),
    ]:
        assert refused not in tags, refused
    index = tags.index
    assert index(Tag("cp312", "cp312", plat)) < index(Tag("cp312", "abi3", plat))
    assert index(Tag("cp312", "abi3", plat)) < index(Tag("py3", "none", "any"))
    assert tags == [
        *ptags.cpython_tags((3, 12), ["cp312"], PLATFORMS),
        *ptags.compatible_tags((3, 12), "cp312", PLATFORMS),
    ]


def test_free_threaded_cpython_has_its_own_abi_and_no_abi3(tmp_path: Path) -> None:
    tags = Environment(venv_info(tmp_path / "v", version=(3, 13, 0), gil_disabled=True)).tags
    plat = PLATFORMS[0]
    assert tags[0] == Tag("cp313", "cp313t", plat)
    assert Tag("cp313", "cp313", plat) not in tags  # GIL extension modules do not load
    assert not [t for t in tags if t.abi == "abi3"]
    assert Tag("py3", "none", "any") in tags


def test_debug_cpython_prefers_its_debug_abi(tmp_path: Path) -> None:
    tags = Environment(venv_info(tmp_path / "v", debug=True)).tags
    plat = PLATFORMS[0]
    assert tags[0] == Tag("cp311", "cp311d", plat)
    assert Tag("py3", "none", "any") in tags


def test_debug_cpython_also_accepts_the_release_abi(tmp_path: Path) -> None:
    tags = Environment(venv_info(tmp_path / "v", debug=True)).tags
    assert Tag("cp311", "cp311", PLATFORMS[0]) in tags
    assert tags.index(Tag("cp311", "cp311d", PLATFORMS[0])) == 0


def pypy_env(tmp_path: Path) -> Environment:
    return Environment(
        venv_info(tmp_path / "v", version=(3, 10, 14), implementation="pypy", soabi="pypy310-pp73")
    )


def test_pypy_gets_generic_tags_with_its_soabi(tmp_path: Path) -> None:
    tags = pypy_env(tmp_path).tags
    assert {t.abi for t in tags} >= {"pypy310_pp73", "none"}
    assert not [t for t in tags if t.abi.startswith("cp") or t.abi == "abi3"]
    assert Tag("py3", "none", "any") in tags
    assert Tag("py310", "none", "any") in tags


def test_pypy_tags_carry_the_pypy_interpreter_name(tmp_path: Path) -> None:
    tags = pypy_env(tmp_path).tags
    assert tags[0] == Tag("pp310", "pypy310_pp73", PLATFORMS[0])
    assert Tag("pp310", "none", "any") in tags


def test_a_foreign_platform_uses_the_interpreters_own_platform_tag(tmp_path: Path) -> None:
    env = Environment(venv_info(tmp_path / "v", platform="macosx-11.0-arm64"))
    assert {t.platform for t in env.tags} == {"macosx_11_0_arm64", "any"}
    assert env.tags[0] == Tag("cp311", "cp311", "macosx_11_0_arm64")


def test_another_pointer_size_on_this_platform_is_foreign_too(tmp_path: Path) -> None:
    bits = 32 if sys.maxsize > 2**32 else 64
    env = Environment(venv_info(tmp_path / "v", pointer_bits=bits))
    platform = env.platform.replace("-", "_").replace(".", "_")
    assert {t.platform for t in env.tags} == {platform, "any"}
