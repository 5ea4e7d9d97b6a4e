"""stalwart.safety: PEP 668, protected destinations, and conflicts, decided before any change.

Environments belong to a fake interpreter (``fakeenv``) with real directories; installed
distributions are written by hand; new files come from real wheels, planned and staged.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import pytest

import stalwart
from fakeenv import Wheels, materialize, system_info, venv_info, write_dist
from stalwart.environment import Environment
from stalwart.errors import ConflictError, ExternallyManagedError, TargetEnvironmentError
from stalwart.installed import Installed, find_installed
from stalwart.paths import PathKeys
from stalwart.plan import WheelPlan, plan_wheel
from stalwart.safety import check_conflicts, check_destinations, check_externally_managed
from stalwart.staging import StagedWheel, stage_wheels
from stalwart.transaction import Transaction
from treesnap import snapshot
from wheelfactory import record_hash

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX layouts")


@pytest.fixture
def wheels(tmp_path: Path) -> Iterator[Wheels]:
    with ExitStack() as stack:
        yield Wheels(tmp_path / "wheels", stack)


@pytest.fixture
def venv_env(tmp_path: Path) -> Environment:
    return materialize(Environment(venv_info(tmp_path / "venv")))


# -- PEP 668 --------------------------------------------------------------------------------------


@pytest.fixture
def managed(tmp_path: Path) -> Environment:
    """A system interpreter whose stdlib carries the EXTERNALLY-MANAGED marker."""
    env = Environment(system_info(tmp_path / "sys"))
    Path(env.stdlib).mkdir(parents=True)
    (Path(env.stdlib) / "EXTERNALLY-MANAGED").write_text("[externally-managed]\nError=no\n")
    return env


def test_an_externally_managed_interpreter_is_refused(managed: Environment) -> None:
    with pytest.raises(ExternallyManagedError) as caught:
        check_externally_managed(managed)
    message = str(caught.value)
    assert os.path.join(managed.stdlib, "EXTERNALLY-MANAGED") in message
    assert "--break-system-packages" in message
    assert isinstance(caught.value, TargetEnvironmentError)


def test_pep668_exemptions(managed: Environment, tmp_path: Path) -> None:
    check_externally_managed(managed, override=True)  # --break-system-packages
    info = managed.interpreter
    check_externally_managed(Environment(info, target=str(tmp_path / "t")))
    check_externally_managed(Environment(info, prefix=str(tmp_path / "p")))
    # A venv of a managed interpreter: its stdlib is the base's, marker and all.
    venv = Environment(dataclasses.replace(venv_info(tmp_path / "venv"), stdlib=managed.stdlib))
    check_externally_managed(venv)
    with pytest.raises(ExternallyManagedError):  # while the interpreter itself stays managed
        check_externally_managed(managed, override=False)


def test_an_unmarked_system_interpreter_is_fine(tmp_path: Path) -> None:
    env = Environment(system_info(tmp_path / "sys"))
    Path(env.stdlib).mkdir(parents=True)
    check_externally_managed(env)
    (Path(env.stdlib) / "EXTERNALLY-MANAGED").write_text("")
    with pytest.raises(ExternallyManagedError):
        check_externally_managed(env)


# -- destinations ---------------------------------------------------------------------------------


def plans(env: Environment, *wheels_: object) -> list[WheelPlan]:
    return [plan_wheel(w, env) for w in wheels_]  # type: ignore[arg-type]


def refused(plans_: list[WheelPlan], env: Environment) -> list[str]:
    before = snapshot(env.root)
    with pytest.raises(TargetEnvironmentError) as caught:
        check_destinations(plans_, env)
    assert snapshot(env.root) == before
    return caught.value.problems


def test_ordinary_destinations_pass(wheels: Wheels, venv_env: Environment, tmp_path: Path) -> None:
    w = wheels(
        "demo",
        "1.0",
        {"demo/__init__.py": b""},
        data={"scripts/tool": b"#!python\n", "data/share/demo/x": b"", "headers/h.h": b""},
        entry_points="[console_scripts]\ndemo = demo:main\n",
    )
    check_destinations(plans(venv_env, w), venv_env)
    # the same wheel through a link leading out of the environment is not fine
    (tmp_path / "outside").mkdir()
    Path(venv_env.site_packages, "demo").symlink_to(tmp_path / "outside")
    with pytest.raises(TargetEnvironmentError, match="leads outside the environment"):
        check_destinations(plans(venv_env, w), venv_env)


def test_writes_into_the_standard_library_are_refused(
    wheels: Wheels, venv_env: Environment, tmp_path: Path
) -> None:
    # A venv's lib/pythonX.Y is its platstdlib: site-packages inside it is allowed, the rest not.
    w = wheels("evil", "1.0", {"evil.py": b""}, data={"data/lib/python3.11/os.py": b""})
    (problem,) = refused(plans(venv_env, w), venv_env)
    assert problem == (f"{w.filename} writes into {venv_env.platstdlib}, which is protected")
    # A Fedora-like system interpreter whose data directory is /usr, above its stdlib.
    info = system_info(tmp_path / "sys")
    info = dataclasses.replace(info, paths={**info.paths, "data": info.prefix})
    system = materialize(Environment(info))
    Path(system.stdlib).mkdir(parents=True)
    (problem,) = refused(plans(system, w), system)
    assert problem.endswith(f"writes into {system.stdlib}, which is protected")


def test_writes_into_stalwart_itself_are_refused(wheels: Wheels, tmp_path: Path) -> None:
    package = Path(stalwart.__file__).parent
    env = Environment(venv_info(tmp_path / "venv"), target=str(package.parent))
    w = wheels("stalwart_trojan", "1.0", {"stalwart/plan.py": b"evil = True\n"})
    before = (package / "plan.py").read_bytes()
    with pytest.raises(TargetEnvironmentError) as caught:
        check_destinations(plans(env, w), env)
    (problem,) = caught.value.problems
    assert problem == f"{w.filename} writes into {package}, which is protected"
    assert (package / "plan.py").read_bytes() == before


def test_writes_through_a_symlink_leading_out_are_refused(
    wheels: Wheels, venv_env: Environment, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (Path(venv_env.site_packages) / "evil").symlink_to(outside)
    w = wheels("evil", "1.0", {"evil/__init__.py": b""})
    (problem,) = refused(plans(venv_env, w), venv_env)
    link = os.path.join(venv_env.site_packages, "evil")
    assert problem == (
        f"{w.filename} writes into {link}, which leads outside the environment (to {outside})"
    )
    assert list(outside.iterdir()) == []


def test_new_directories_below_a_link_leading_out_are_refused(
    wheels: Wheels, venv_env: Environment, tmp_path: Path
) -> None:
    """A directory that does not exist yet takes its verdict from its parent: the parent is a
    link out of the environment, so everything planned below it is refused too."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (Path(venv_env.site_packages) / "evil").symlink_to(outside)
    w = wheels("evil", "1.0", {"evil/a/b/c.py": b"", "evil/a/d.py": b""})
    (problem,) = refused(plans(venv_env, w), venv_env)
    deep = os.path.join(venv_env.site_packages, "evil", "a")
    assert problem == (
        f"{w.filename} writes into {deep}, which leads outside the environment (to {outside / 'a'})"
    )
    assert list(outside.iterdir()) == []


def test_a_new_directory_named_like_a_missing_protected_place_is_judged_itself(
    wheels: Wheels, tmp_path: Path
) -> None:
    """A place compared with that does not exist yet (here the stdlib of a system interpreter
    whose data directory is its prefix) is compared by spelling: a new directory spelled like
    it is judged on its own, not given its parent's (allowed) verdict."""
    info = system_info(tmp_path / "sys")
    info = dataclasses.replace(info, paths={**info.paths, "data": info.prefix})
    system = materialize(Environment(info))
    assert not os.path.exists(system.stdlib)
    w = wheels("evil", "1.0", {"evil.py": b""}, data={"data/lib/python3.11/os.py": b""})
    (problem,) = refused(plans(system, w), system)
    assert problem.endswith(f"writes into {system.stdlib}, which is protected")


def test_overwriting_the_interpreter_is_refused_also_through_a_link(
    wheels: Wheels, venv_env: Environment
) -> None:
    bin_dir = Path(venv_env.executable).parent
    (bin_dir / "python3").symlink_to("python")
    direct = wheels("direct", "1.0", {"direct.py": b""}, data={"scripts/python": b"#!/bin/sh\n"})
    linked = wheels("linked", "1.0", {"linked.py": b""}, data={"scripts/python3": b"#!/bin/sh\n"})
    problems = refused(plans(venv_env, direct, linked), venv_env)
    assert problems == [
        f"{direct.filename} would overwrite the interpreter {bin_dir / 'python'}",
        f"{linked.filename} would overwrite the interpreter {bin_dir / 'python3'}",
    ]


def test_every_wheels_problem_is_listed(
    wheels: Wheels, venv_env: Environment, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (Path(venv_env.site_packages) / "out").symlink_to(tmp_path / "outside")
    a = wheels("a", "1.0", {"out/a.py": b""})
    b = wheels("b", "1.0", {"b.py": b""}, data={"data/lib/python3.11/b.py": b""})
    c = wheels("c", "1.0", {"c.py": b""}, data={"scripts/python": b""})
    ok = wheels("ok", "1.0", {"ok.py": b""})
    problems = refused(plans(venv_env, a, ok, b, c), venv_env)
    assert [p.split(" ", 1)[0] for p in problems] == [a.filename, b.filename, c.filename]


# -- conflicts ------------------------------------------------------------------------------------


@pytest.fixture
def txn(venv_env: Environment) -> Iterator[Transaction]:
    txn = Transaction(venv_env.state_dir)
    yield txn
    txn.abort()


class Command:
    """Stages wheels into one transaction, as an install command would."""

    def __init__(self, env: Environment, wheels_: Wheels, txn: Transaction) -> None:
        self.env, self.wheels, self.txn = env, wheels_, txn

    def stage(self, *dists: tuple[str, Mapping[str, bytes]]) -> list[StagedWheel]:
        opened = [self.wheels(name, "2.0", files) for name, files in dists]
        plans_ = [plan_wheel(w, self.env) for w in opened]
        return stage_wheels(plans_, self.txn, python=self.env.executable, windows=False)

    def installed(self) -> dict[str, Installed]:
        return find_installed(self.env.lib_dirs)


@pytest.fixture
def command(venv_env: Environment, wheels: Wheels, txn: Transaction) -> Command:
    return Command(venv_env, wheels, txn)


def conflicts(
    staged: list[StagedWheel],
    installed: dict[str, Installed],
    *,
    replacing: tuple[str, ...] = (),
    removing: frozenset[str] = frozenset(),
    allow_overwrite: bool = False,
) -> list[str]:
    try:
        check_conflicts(
            staged,
            installed,
            replacing=replacing,
            removing=set(removing),
            allow_overwrite=allow_overwrite,
        )
    except ConflictError as exc:
        assert "--allow-overwrite" in (exc.subject or "")
        return exc.problems
    return []


NS_INIT = b"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def test_an_identical_shared_file_is_accepted(command: Command, venv_env: Environment) -> None:
    write_dist(venv_env.site_packages, "ns-one", "1.0", {"ns/__init__.py": NS_INIT})
    staged = command.stage(("ns_two", {"ns/__init__.py": NS_INIT, "ns/two.py": b""}))
    assert conflicts(staged, command.installed()) == []
    Path(venv_env.site_packages, "ns", "__init__.py").write_bytes(b"# changed on disk\n")
    assert conflicts(staged, command.installed()) == []  # RECORD's digest decides, not the disk
    staged = command.stage(("ns_three", {"ns/__init__.py": NS_INIT + b"# not the same\n"}))
    (problem,) = conflicts(staged, command.installed())
    assert problem.endswith("belongs to ns-one 1.0")


def test_identical_content_under_another_hash_is_accepted(
    command: Command, venv_env: Environment
) -> None:
    rows = [("ns/__init__.py", record_hash(NS_INIT, "sha512"), str(len(NS_INIT)))]
    write_dist(venv_env.site_packages, "ns-one", "1.0", {"ns/__init__.py": NS_INIT}, rows=rows)
    staged = command.stage(("ns_two", {"ns/__init__.py": NS_INIT}))
    assert conflicts(staged, command.installed()) == []
    # A row whose hash cannot be decoded proves nothing: the file counts as foreign.
    (Path(venv_env.site_packages) / "ns-one-1.0.dist-info" / "RECORD").write_text(
        f"ns/__init__.py,sha512=not-a-digest,{len(NS_INIT)}\n"
    )
    (problem,) = conflicts(staged, command.installed())
    assert problem.endswith("__init__.py belongs to ns-one 1.0")


def test_a_different_file_is_refused_naming_every_owner(
    command: Command, venv_env: Environment
) -> None:
    site = venv_env.site_packages
    write_dist(site, "zeta", "1.0", {"shared/x.py": b"old"})
    write_dist(site, "Alpha", "3.1", {"shared/x.py": b"old"})
    write_dist(site, "unhashed", "0.1", {}, rows=[("shared/y.py", "", "")])
    Path(site, "shared", "y.py").write_bytes(b"same bytes, but no hash to prove it")
    staged = command.stage(
        ("newcomer", {"shared/x.py": b"new", "shared/y.py": b"same bytes, but no hash to prove it"})
    )
    assert sorted(conflicts(staged, command.installed())) == [
        f"{os.path.join(site, 'shared', 'x.py')} belongs to Alpha 3.1 and zeta 1.0",
        f"{os.path.join(site, 'shared', 'y.py')} belongs to unhashed 0.1",
    ]
    assert conflicts(staged, command.installed(), allow_overwrite=True) == []


def test_the_distributions_being_replaced_are_not_foreign(
    command: Command, venv_env: Environment
) -> None:
    write_dist(venv_env.site_packages, "demo", "1.0", {"demo/x.py": b"version 1"})
    staged = command.stage(("demo", {"demo/x.py": b"version 2"}))
    assert conflicts(staged, command.installed()) == [
        f"{os.path.join(venv_env.site_packages, 'demo', 'x.py')} belongs to demo 1.0"
    ]
    assert conflicts(staged, command.installed(), replacing=("demo",)) == []


def test_two_wheels_of_one_command_shipping_one_path(command: Command) -> None:
    staged = command.stage(
        ("first", {"common/x.py": b"one", "common/same.py": b"same"}),
        ("second", {"common/x.py": b"two", "common/same.py": b"same"}),
    )
    dest = os.path.join(command.env.site_packages, "common", "x.py")
    assert conflicts(staged, {}) == [
        f"{dest} is shipped by both first-2.0-py3-none-any.whl and "
        "second-2.0-py3-none-any.whl, with different content"
    ]
    assert conflicts(staged, {}, allow_overwrite=True) == []


def test_a_file_cannot_replace_a_directory_that_holds_files(
    command: Command, venv_env: Environment
) -> None:
    site = Path(venv_env.site_packages)
    (site / "thing" / "sub").mkdir(parents=True)
    (site / "thing" / "sub" / "f.py").write_bytes(b"")
    (site / "emptydir").mkdir()
    staged = command.stage(("thing", {"thing": b"a module file", "emptydir": b"fine"}))
    held = str(site / "thing" / "sub" / "f.py")
    want = [f"{site / 'thing'} is a directory that holds {held}; a file cannot replace it"]
    assert conflicts(staged, {}) == want
    assert conflicts(staged, {}, allow_overwrite=True) == want  # overwriting would delete
    assert conflicts(staged, {}, removing=frozenset({PathKeys().key(held)})) == []


def test_every_conflict_is_listed(command: Command, venv_env: Environment) -> None:
    site = Path(venv_env.site_packages)
    write_dist(site, "owner", "1.0", {"owned.py": b"theirs"})
    (site / "dir" / "x").mkdir(parents=True)
    (site / "dir" / "x" / "keep.txt").write_bytes(b"")
    staged = command.stage(
        ("one", {"owned.py": b"mine", "dup.py": b"1", "dir/x": b"file"}),
        ("two", {"dup.py": b"2"}),
    )
    problems = conflicts(staged, command.installed())
    assert len(problems) == 3, problems
    assert {p.split(" ")[-1] for p in problems} >= {"1.0", "content", "it"}
