"""The ``stalwart`` command, end to end: real wheels, real virtual environments.

Most tests run the installed console script in a subprocess (exit codes, stdout/stderr as a user
sees them); some call :func:`stalwart.cli.main` in-process with ``capsys`` for speed and for
things a subprocess cannot fake (an externally managed interpreter).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import stalwart
import stalwart.cli
import stalwart.fs
from platforms import posix_only
from stalwart.environment import query_environment
from stalwart.errors import ExternallyManagedError
from stalwart.install import InstallOptions, install
from stalwart.safety import check_externally_managed
from treesnap import snapshot
from venvs import PY, Venv, cli_environ, copy_venv, without_banner
from wheelfactory import build_wheel

# The venv fixtures assume the POSIX layout (bin/, lib/pythonX.Y/site-packages), installed
# scripts are checked for mode and shebang, and some tests run /bin/sh or make symlinks. (The
# few tests that use none of that, such as --version and usage errors, go with the module.)
pytestmark = posix_only("POSIX venv layout (bin/, lib/pythonX.Y), file modes, /bin/sh, symlinks")

STALWART = Path(sys.executable).with_name("stalwart")
SUMMARY = re.compile(r"^Installed (\d+) packages? in \d+ ms$", re.MULTILINE)

# -- wheels ---------------------------------------------------------------------------------------


DEMO_FILES = {
    "demo/__init__.py": b"def main():\n    print('demo main')\n    return 0\n",
    "demo/sub/__init__.py": b"",
    "demo/sub/mod.py": b"VALUE = 42\n",
    "demo/data.json": b'{"a": 1}\n',
}
DEMO_DATA = {
    "scripts/demo-tool": b"#!python\nprint('tool')\n",
    "data/share/demo/readme.txt": b"read me\n",
}
DEMO_ENTRY_POINTS = "[console_scripts]\ndemo-cli = demo:main\n[gui_scripts]\ndemo-gui = demo:main\n"


@dataclass(frozen=True)
class Wheels:
    demo: Path
    other: Path
    alpha: Path  # ships shared/x.py with content A
    beta: Path  # ships shared/x.py with content B
    gamma: Path  # ships shared/x.py with content A, like alpha


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    root = tmp_path_factory.mktemp("wheels")
    return Wheels(
        demo=build_wheel(
            root,
            "demo",
            "1.0",
            DEMO_FILES,
            entry_points=DEMO_ENTRY_POINTS,
            data=DEMO_DATA,
        ),
        other=build_wheel(root, "other", "2.0", {"other.py": b"X = 1\n"}),
        alpha=build_wheel(root, "alpha", "1.0", {"shared/x.py": b"WHO = 'A'\n", "alpha.py": b""}),
        beta=build_wheel(root, "beta", "1.0", {"shared/x.py": b"WHO = 'B'\n", "beta.py": b""}),
        gamma=build_wheel(root, "gamma", "1.0", {"shared/x.py": b"WHO = 'A'\n", "gamma.py": b""}),
    )


# -- environments and running the command ---------------------------------------------------------


@pytest.fixture
def venv(pristine_venv: Venv, tmp_path: Path) -> Venv:
    return copy_venv(pristine_venv, tmp_path / "venv")


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return cli_environ(tmp_path_factory.mktemp("cache"))


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(cli_env: dict[str, str]) -> Run:
    """``run(*args, env=...)``: the real console script in a subprocess."""

    def go(*args: str | Path, env: Mapping[str, str] | None = None, cmd: list[str] | None = None):
        return subprocess.run(
            [*(cmd or [str(STALWART)]), *map(str, args)],
            capture_output=True,
            text=True,
            env={**cli_env, **(env or {})},
            timeout=120,
            check=False,
        )

    return go


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., Result]:
    """``cli(*args)``: :func:`stalwart.cli.main` in-process; the fs runtime is restored after."""
    monkeypatch.setenv("STALWART_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("STALWART_LOCK_TIMEOUT", raising=False)

    def go(*args: str | Path) -> Result:
        capsys.readouterr()
        with stalwart.fs.settings():
            code = stalwart.cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return go


def assert_error(proc: subprocess.CompletedProcess[str] | Result, code: int, *says: str) -> None:
    rc = proc.returncode if isinstance(proc, subprocess.CompletedProcess) else proc.code
    err = proc.stderr if isinstance(proc, subprocess.CompletedProcess) else proc.err
    assert rc == code, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    for part in says:
        assert part in err, (part, err)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


# -- basics ---------------------------------------------------------------------------------------


def test_version(run: Run) -> None:
    proc = ok(run("--version"))
    assert proc.stdout == f"stalwart {stalwart.__version__}\n"


def test_version_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert stalwart.cli.main(["--version"]) == 0  # the fast path: no parser built
    assert capsys.readouterr().out == f"stalwart {stalwart.__version__}\n"
    with pytest.raises(SystemExit) as exit_:  # with other options, argparse answers it
        stalwart.cli.main(["--version", "-h"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("stalwart ")


def test_version_imports_nothing_else() -> None:
    """``stalwart --version`` within a few ms of ``python -c pass``: the CLI module imports
    no parser, no logging, no typing at start-up (measured: 17.5 ms vs 15.2 ms)."""
    code = (
        "import sys; import stalwart.cli; "
        "print(','.join(m for m in ('argparse', 'logging', 'typing', 'json', 'stalwart.install')"
        " if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.stdout.strip() == "", proc.stdout


def test_python_dash_m(run: Run) -> None:
    proc = ok(run("--version", cmd=[sys.executable, "-m", "stalwart"]))
    assert proc.stdout == f"stalwart {stalwart.__version__}\n"


def test_self_check(run: Run) -> None:
    proc = ok(run("self-check"))
    assert "filesystem layer ok" in proc.stdout
    assert "lock policy: retry up to 10 s" in proc.stdout


def test_self_check_follows_lock_timeout(cli: Callable[..., Result]) -> None:
    result = cli("self-check", "--lock-timeout", "2.5")
    assert result.code == 0, result.err
    assert "retry up to 2.5 s" in result.out


def test_no_command_prints_help(run: Run) -> None:
    proc = run()
    assert proc.returncode == 2
    assert "usage: stalwart" in proc.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["install"], "nothing to install: name packages or wheels, or use -r FILE"),
        (["install", "--no-such-flag", "x.whl"], "unrecognized arguments: --no-such-flag"),
        (["uninstall"], "the following arguments are required: NAME"),
        (["install", "--target", "a", "--prefix", "b", "x.whl"], "not allowed with argument"),
        (["list", "--format", "yaml"], "invalid choice: 'yaml'"),
        (["install", "--lock-timeout", "abc", "x.whl"], "'abc' is not a number of seconds"),
        (["install", "--lock-timeout", "-1", "x.whl"], "must be >= 0 seconds"),
        (["install", "--lock-timeout", "nan", "x.whl"], "must be >= 0 seconds"),
        (["install", "--lock-wait", "soon", "x.whl"], "'soon' is not a number of seconds"),
    ],
)
def test_usage_errors_exit_2(cli: Callable[..., Result], args: list[str], says: str) -> None:
    result = cli(*args)
    assert_error(result, 2, says)
    assert result.out == ""


def test_usage_error_subprocess(run: Run, wheels: Wheels) -> None:
    proc = run("install", "--lock-timeout", "abc", wheels.demo)
    assert_error(proc, 2, "error: argument --lock-timeout: 'abc' is not a number of seconds")
    assert proc.stderr.startswith("usage: stalwart install")
    assert proc.stdout == ""
    # An unknown option, too, is shown with the usage of the command it was given to.
    proc = run("install", "--no-such-flag", wheels.demo)
    assert_error(proc, 2, "error: unrecognized arguments: --no-such-flag")
    assert proc.stderr.startswith("usage: stalwart install"), proc.stderr


def test_bad_lock_timeout_env(run: Run, venv: Venv, wheels: Wheels) -> None:
    before = snapshot(venv.root)
    proc = run(
        "install", "--python", venv.python, wheels.demo, env={"STALWART_LOCK_TIMEOUT": "abc"}
    )
    assert_error(proc, 2, "STALWART_LOCK_TIMEOUT='abc' is not a number of seconds")
    assert without_banner(proc.stderr).startswith("error: ")
    assert snapshot(venv.root) == before
    proc = run("list", "--python", venv.python, env={"STALWART_LOCK_TIMEOUT": "-3"})
    assert_error(proc, 2, "STALWART_LOCK_TIMEOUT='-3' must be >= 0 seconds")


def test_good_lock_timeout_env(run: Run) -> None:
    proc = ok(run("self-check", env={"STALWART_LOCK_TIMEOUT": "3"}))
    assert "retry up to 3 s" in proc.stdout


def test_missing_wheel_file(run: Run, venv: Venv, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ghost-1.0-py3-none-any.whl"
    before = snapshot(venv.root)
    proc = run("install", "--python", venv.python, missing)
    assert_error(proc, 1, str(missing))
    assert without_banner(proc.stderr).startswith("error: ")
    assert snapshot(venv.root) == before


def test_missing_interpreter(run: Run, tmp_path: Path, wheels: Wheels) -> None:
    proc = run("install", "--python", tmp_path / "no" / "python", wheels.demo)
    assert_error(proc, 4, "does not exist")


# -- install, list, show --------------------------------------------------------------------------


def test_install_summary_and_result(run: Run, venv: Venv, wheels: Wheels) -> None:
    proc = ok(run("install", "--python", venv.python, wheels.demo, wheels.other))
    match = SUMMARY.search(proc.stdout)
    assert match is not None, proc.stdout
    assert match[1] == "2"
    assert "Installed 2 packages in " in proc.stdout
    assert without_banner(proc.stderr) == ""
    assert (venv.site / "demo" / "sub" / "mod.py").read_bytes() == b"VALUE = 42\n"
    assert (venv.site / "other.py").is_file()
    assert list((venv.site / "demo" / "__pycache__").glob("__init__.*.pyc"))
    assert (venv.root / "share" / "demo" / "readme.txt").read_bytes() == b"read me\n"
    assert not (venv.site / ".stalwart").exists()
    # Generated and .data scripts point at the venv's interpreter and run.
    for script in ("demo-cli", "demo-gui", "demo-tool"):
        path = venv.bin / script
        assert path.read_bytes().startswith(f"#!{venv.python}\n".encode()), script
        assert os.access(path, os.X_OK), script
    launched = subprocess.run(
        [venv.bin / "demo-cli"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (launched.returncode, launched.stdout) == (0, "demo main\n")


def test_install_one_package_summary(cli: Callable[..., Result], venv: Venv, wheels: Wheels):
    result = cli("install", "--python", venv.python, wheels.other)
    assert result.code == 0, result.err
    assert SUMMARY.search(result.out), result.out
    assert "Installed 1 package in " in result.out


def test_quiet_prints_nothing(run: Run, venv: Venv, wheels: Wheels) -> None:
    proc = ok(run("install", "-q", "--python", venv.python, wheels.demo))
    assert (proc.stdout, proc.stderr) == ("", "")
    proc = ok(run("uninstall", "-q", "--python", venv.python, "demo"))
    assert (proc.stdout, proc.stderr) == ("", "")


def test_verbose_reports_lock_retries(run: Run, venv: Venv, wheels: Wheels) -> None:
    proc = ok(run("install", "-v", "--python", venv.python, wheels.demo))
    assert " + demo 1.0" in proc.stdout
    summary = [line for line in proc.stdout.splitlines() if line.startswith("Installed")]
    assert len(summary) == 1
    assert re.fullmatch(r"Installed 1 package in \d+ ms; .*lock retries.*", summary[0])


def test_list_and_json(run: Run, venv: Venv, wheels: Wheels) -> None:
    ok(run("install", "--python", venv.python, wheels.demo, wheels.other))
    proc = ok(run("list", "--python", venv.python))
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["Package", "Version"]
    assert ["demo", "1.0"] in [line.split() for line in lines]
    assert ["other", "2.0"] in [line.split() for line in lines]

    proc = ok(run("list", "--python", venv.root, "--format", "json"))  # a venv dir works too
    rows = json.loads(proc.stdout)
    assert rows == [
        {"name": "demo", "version": "1.0", "installer": "stalwart", "requested": True},
        {"name": "other", "version": "2.0", "installer": "stalwart", "requested": True},
    ]


def test_list_empty_json(cli: Callable[..., Result], venv: Venv) -> None:
    result = cli("list", "--python", venv.python, "--format", "json")
    assert result.code == 0
    assert json.loads(result.out) == []


def test_show(run: Run, venv: Venv, wheels: Wheels, tmp_path: Path) -> None:
    user = build_wheel(
        tmp_path / "w",
        "demo_user",
        "2.0",
        {"demo_user.py": b""},
        requires=["demo>=1", "rich; extra == 'fancy'"],
    )
    ok(run("install", "--python", venv.python, wheels.demo, user))
    proc = ok(run("show", "--python", venv.python, "DEMO"))
    fields = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert fields["Name"] == "demo"
    assert fields["Version"] == "1.0"
    assert fields["Summary"] == "demo for tests"
    assert Path(fields["Location"]) == venv.site
    assert fields["Installer"] == "stalwart"
    assert fields["Requested"] == "yes"
    assert fields["Required-by"] == "demo_user"
    assert int(fields["Files"]) > len(DEMO_FILES)
    other = ok(run("show", "--python", venv.python, "demo_user"))
    assert "Requires: demo\n" in other.stdout  # names only; the extra's requirement is not one
    assert_error(run("show", "--python", venv.python, "demo", "nope"), 1, "not installed: nope")


# -- verify ---------------------------------------------------------------------------------------


def test_verify(run: Run, venv: Venv, wheels: Wheels) -> None:
    ok(run("install", "--python", venv.python, wheels.demo))
    proc = ok(run("verify", "--python", venv.python))
    assert "Verified 1 package: 0 with differences" in proc.stdout

    mod = venv.site / "demo" / "sub" / "mod.py"
    mod.write_bytes(b"VALUE = 43\n")
    proc = run("verify", "--python", venv.python)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert f"changed: {mod}" in proc.stdout
    assert "missing:" not in proc.stdout
    assert "extra:" not in proc.stdout

    readme = venv.root / "share" / "demo" / "readme.txt"
    readme.unlink()
    proc = run("verify", "--python", venv.python, "demo")
    assert proc.returncode == 5
    assert f"changed: {mod}" in proc.stdout
    assert f"missing: {readme}" in proc.stdout

    stray = venv.site / "demo" / "stray.txt"
    stray.write_text("not from the wheel\n")
    (venv.bin / "someone-elses-script").write_text("#!/bin/sh\n")  # bin/ is shared: not extra
    proc = run("verify", "--python", venv.python)
    assert proc.returncode == 5
    assert f"extra: {stray}" in proc.stdout
    assert "someone-elses-script" not in proc.stdout
    assert "Verified 1 package: 1 with differences" in proc.stdout

    assert_error(run("verify", "--python", venv.python, "nope"), 1, "not installed: nope")


# -- uninstall and reinstall ----------------------------------------------------------------------


def test_uninstall_restores_the_environment(run: Run, venv: Venv, wheels: Wheels) -> None:
    pristine = snapshot(venv.root)
    ok(run("install", "--python", venv.python, wheels.demo, wheels.other))
    pycache = venv.site / "demo" / "sub" / "__pycache__"
    assert list(pycache.glob("mod.*.pyc"))
    # Bytecode another interpreter wrote later belongs to the package too.
    (pycache / "mod.cpython-399.pyc").write_bytes(b"stale")
    for script in ("demo-cli", "demo-gui", "demo-tool"):
        assert (venv.bin / script).is_file()

    proc = ok(run("uninstall", "--python", venv.python, "demo", "other", "-y"))
    assert re.search(r"^Uninstalled 2 packages in \d+ ms$", proc.stdout, re.MULTILINE)
    assert snapshot(venv.root) == pristine
    assert not (venv.site / "demo").exists()
    assert not (venv.root / "share").exists()
    for script in ("demo-cli", "demo-gui", "demo-tool"):
        assert not (venv.bin / script).exists()


def test_uninstall_keeps_foreign_files_and_their_dirs(run: Run, venv: Venv, wheels: Wheels):
    ok(run("install", "--python", venv.python, wheels.demo))
    mine = venv.site / "demo" / "sub" / "notes.txt"
    mine.write_text("user file\n")
    ok(run("uninstall", "--python", venv.python, "demo"))
    assert mine.read_text() == "user file\n"
    assert not (venv.site / "demo" / "sub" / "mod.py").exists()
    assert not (venv.site / "demo" / "sub" / "__pycache__").exists()
    assert not (venv.site / "demo-1.0.dist-info").exists()


def test_uninstall_not_installed(run: Run, venv: Venv, wheels: Wheels) -> None:
    """As pip and uv do: a name that is not installed is skipped with a warning, exit 0, and
    the others are still removed."""
    before = snapshot(venv.root)
    proc = ok(run("uninstall", "--python", venv.python, "ghost"))
    assert "skipping ghost: it is not installed" in proc.stderr
    assert snapshot(venv.root) == before
    ok(run("install", "--python", venv.python, wheels.other))
    proc = ok(run("uninstall", "--python", venv.python, "ghost", "other"))
    assert " - other 2.0" in proc.stdout
    assert snapshot(venv.root) == before


def test_reinstall(run: Run, venv: Venv, wheels: Wheels) -> None:
    ok(run("install", "--python", venv.python, wheels.demo))
    mod = venv.site / "demo" / "sub" / "mod.py"
    mod.write_bytes(b"VALUE = 'edited'\n")

    proc = ok(run("install", "-v", "--python", venv.python, wheels.demo))
    assert " = demo 1.0 already installed" in proc.stdout
    assert re.search(r"^Installed 0 packages in \d+ ms", proc.stdout, re.MULTILINE)
    assert mod.read_bytes() == b"VALUE = 'edited'\n"  # untouched

    proc = ok(run("install", "--reinstall", "--python", venv.python, wheels.demo))
    assert re.search(r"^Installed 1 package in \d+ ms", proc.stdout, re.MULTILINE)
    assert mod.read_bytes() == b"VALUE = 42\n"
    ok(run("verify", "--python", venv.python))


def test_upgrade_removes_files_of_the_old_version(
    run: Run, venv: Venv, wheels: Wheels, tmp_path: Path
) -> None:
    ok(run("install", "--python", venv.python, wheels.demo))
    new_files = {k: v for k, v in DEMO_FILES.items() if k != "demo/sub/mod.py"}
    demo2 = build_wheel(tmp_path / "v2", "demo", "2.0", new_files, entry_points=DEMO_ENTRY_POINTS)
    proc = ok(run("install", "-v", "--python", venv.python, demo2))
    assert " ~ demo 1.0 -> 2.0" in proc.stdout
    assert not (venv.site / "demo" / "sub" / "mod.py").exists()
    assert not (venv.site / "demo-1.0.dist-info").exists()
    assert not (venv.bin / "demo-tool").exists()
    assert (venv.bin / "demo-cli").is_file()
    ok(run("verify", "--python", venv.python))


# -- requirements files, --target, --prefix -------------------------------------------------------


def test_requirements_file(run: Run, venv: Venv, wheels: Wheels, tmp_path: Path) -> None:
    local = tmp_path / "reqs" / "wheels"
    local.mkdir(parents=True)
    (local / wheels.demo.name).write_bytes(wheels.demo.read_bytes())
    reqs = tmp_path / "reqs" / "requirements.txt"
    reqs.write_text(
        "# local wheels only\n\n"
        f"wheels/{wheels.demo.name}\n"  # relative to the requirements file
        f"{wheels.other}  # absolute, with a comment\n"
    )
    proc = ok(run("install", "--python", venv.python, "-r", reqs))
    assert SUMMARY.search(proc.stdout)[1] == "2"  # type: ignore[index]
    assert (venv.site / "demo" / "__init__.py").is_file()
    assert (venv.site / "other.py").is_file()


def test_requirements_file_problems(run: Run, venv: Venv, tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("requests==2.31\nnot a requirement!\n-e ./src\n")
    proc = run("install", "--python", venv.python, "-r", reqs)
    assert_error(proc, 2, f"{reqs}:2", f"{reqs}:3", "editable")
    missing = tmp_path / "missing.txt"
    assert_error(run("install", "--python", venv.python, "-r", missing), 2, str(missing))
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    proc = ok(run("install", "--python", venv.python, "-r", empty))
    assert "name no requirements" in proc.stderr


def test_target(run: Run, venv: Venv, wheels: Wheels, tmp_path: Path) -> None:
    target = tmp_path / "target"
    before = snapshot(venv.root)
    ok(run("install", "--python", venv.python, "--target", target, wheels.demo))
    assert (target / "demo" / "sub" / "mod.py").read_bytes() == b"VALUE = 42\n"
    assert (target / "demo-1.0.dist-info" / "METADATA").is_file()
    assert (target / "bin" / "demo-cli").read_bytes().startswith(f"#!{venv.python}\n".encode())
    assert (target / "bin" / "demo-tool").is_file()
    assert (target / "share" / "demo" / "readme.txt").is_file()
    assert not (target / ".stalwart").exists()
    assert snapshot(venv.root) == before, "--target must not touch the venv"

    listed = json.loads(
        ok(run("list", "--python", venv.python, "--target", target, "--format", "json")).stdout
    )
    assert [row["name"] for row in listed] == ["demo"]
    ok(run("verify", "--python", venv.python, "--target", target))
    ok(run("uninstall", "--python", venv.python, "--target", target, "demo"))
    assert sorted(os.listdir(target)) == []


def test_prefix(run: Run, venv: Venv, wheels: Wheels, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    before = snapshot(venv.root)
    ok(run("install", "--python", venv.python, "--prefix", prefix, wheels.demo))
    site = prefix / "lib" / PY / "site-packages"
    assert (site / "demo" / "sub" / "mod.py").read_bytes() == b"VALUE = 42\n"
    assert (site / "demo-1.0.dist-info" / "RECORD").is_file()
    assert (prefix / "bin" / "demo-cli").read_bytes().startswith(f"#!{venv.python}\n".encode())
    assert (prefix / "share" / "demo" / "readme.txt").is_file()
    assert snapshot(venv.root) == before, "--prefix must not touch the venv"
    ok(run("verify", "--python", venv.python, "--prefix", prefix))


# -- conflicts ------------------------------------------------------------------------------------


def test_conflicting_file(run: Run, venv: Venv, wheels: Wheels) -> None:
    ok(run("install", "--python", venv.python, wheels.alpha))
    shared = venv.site / "shared" / "x.py"
    before = snapshot(venv.root)
    proc = run("install", "--python", venv.python, wheels.beta)
    assert_error(proc, 1, f"{shared} belongs to alpha 1.0", "--allow-overwrite")
    assert snapshot(venv.root) == before

    # Same content: a shared file is fine (pkgutil-style namespace __init__.py files).
    ok(run("install", "--python", venv.python, wheels.gamma))
    assert shared.read_bytes() == b"WHO = 'A'\n"

    ok(run("install", "--allow-overwrite", "--python", venv.python, wheels.beta))
    assert shared.read_bytes() == b"WHO = 'B'\n"
    assert (venv.site / "beta.py").is_file()


def test_two_wheels_of_one_distribution(run: Run, venv: Venv, wheels: Wheels, tmp_path: Path):
    demo2 = build_wheel(tmp_path, "demo", "2.0", {"demo/__init__.py": b""})
    proc = run("install", "--python", venv.python, wheels.demo, demo2)
    assert_error(proc, 2, "are both demo")


# -- PEP 668 --------------------------------------------------------------------------------------


@pytest.fixture
def managed_env(venv: Venv, tmp_path: Path):
    """The venv's real description, but claiming to be a system interpreter whose stdlib
    carries an EXTERNALLY-MANAGED marker."""
    real = query_environment(str(venv.python), use_cache=False)
    stdlib = tmp_path / "stdlib"
    stdlib.mkdir()
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\nError=use apt\n")
    system = dataclasses.replace(real.interpreter, stdlib=str(stdlib), in_venv=False)
    return dataclasses.replace(real, interpreter=system)


def test_externally_managed(managed_env, venv: Venv, wheels: Wheels) -> None:
    marker = os.path.join(managed_env.stdlib, "EXTERNALLY-MANAGED")
    with pytest.raises(ExternallyManagedError, match="--break-system-packages") as caught:
        check_externally_managed(managed_env)
    assert marker in str(caught.value)
    assert "PEP 668" in str(caught.value)
    check_externally_managed(managed_env, override=True)
    # The marker is what counts: without it, a system interpreter is fine.
    os.unlink(marker)
    check_externally_managed(managed_env)


def test_externally_managed_install_and_cli(
    managed_env, venv: Venv, wheels: Wheels, cli: Callable[..., Result], monkeypatch
) -> None:
    before = snapshot(venv.root)
    with pytest.raises(ExternallyManagedError):
        install([wheels.demo], managed_env)
    assert snapshot(venv.root) == before

    monkeypatch.setattr(stalwart.cli, "_environment", lambda *args, **kwargs: managed_env)
    result = cli("install", wheels.demo)
    assert_error(result, 4, "externally managed", "--break-system-packages")
    assert without_banner(result.err).startswith("error: ")
    assert snapshot(venv.root) == before

    result = cli("install", "--break-system-packages", wheels.demo)
    assert result.code == 0, result.err
    assert (venv.site / "demo" / "__init__.py").is_file()


# -- progress bar ---------------------------------------------------------------------------------


def test_no_progress_bar_when_stderr_is_not_a_tty(
    run: Run, venv: Venv, wheels: Wheels, cli_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "CI"}
    proc = subprocess.run(
        [STALWART, "install", "--python", venv.python, wheels.demo],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert without_banner(proc.stderr) == ""
    assert SUMMARY.search(proc.stdout), proc.stdout
    assert "\x1b" not in proc.stdout


def test_no_progress_bar_in_process(cli: Callable[..., Result], venv: Venv, wheels: Wheels):
    result = cli("install", "--python", venv.python, wheels.demo)
    assert result.code == 0
    assert without_banner(result.err) == ""


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bar_goes_to_the_terminal_on_stderr(
    venv: Venv, wheels: Wheels, cli_env: dict[str, str]
) -> None:
    """Control for the test above; the bar must not leak into a redirected stdout."""
    import pty
    import select

    env = {k: v for k, v in cli_env.items() if k != "CI"}
    env["TERM"] = "xterm"
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [STALWART, "install", "--python", venv.python, wheels.demo],
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            timeout=120,
            check=False,
        )
        os.close(slave)
        seen = b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO once the other side is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    stdout = proc.stdout.decode()
    assert SUMMARY.search(stdout), repr(stdout)
    assert b"staging" in seen or b"\x1b[" in seen, seen[:200]


# -- bytecode ------------------------------------------------------------------------------------


def test_invalid_syntax_does_not_fail_the_install(run: Run, venv: Venv, tmp_path: Path) -> None:
    """Like pip: a module that does not compile is installed anyway, and -v names it."""
    wheel = build_wheel(
        tmp_path / "w",
        "broken",
        "1.0",
        {"broken/__init__.py": b"X = 1\n", "broken/py2only.py": b"print 'hello'\n"},
    )
    proc = ok(run("install", "-v", "--python", venv.python, wheel))
    assert "not byte-compiled:" in proc.stdout
    assert "py2only.py" in proc.stdout
    cache = venv.site / "broken" / "__pycache__"
    assert sorted(p.name.split(".")[0] for p in cache.iterdir()) == ["__init__"]
    record = (venv.site / "broken-1.0.dist-info" / "RECORD").read_text()
    assert "broken/__pycache__/__init__." in record
    assert "broken/py2only.py,sha256=" in record
    assert ok(run("verify", "--python", venv.python)).returncode == 0


def test_pyc_is_valid_for_its_source(run: Run, venv: Venv, tmp_path: Path) -> None:
    """The bytecode written through the fs layer is what the interpreter would load."""
    wheel = build_wheel(tmp_path / "w", "fresh", "1.0", {"fresh.py": b"VALUE = 'compiled'\n"})
    ok(run("install", "--python", venv.python, wheel))
    check = (
        "import importlib.util, sys, fresh, os; "
        "pyc = importlib.util.cache_from_source(fresh.__file__); "
        "print(os.path.exists(pyc), fresh.__cached__ == pyc, fresh.VALUE)"
    )
    proc = subprocess.run(
        [str(venv.python), "-B", "-c", check], capture_output=True, text=True, check=True
    )
    assert proc.stdout.split() == ["True", "True", "compiled"]
    # The header records the installed source's mtime and size, so the interpreter uses the
    # bytecode instead of recompiling it.
    pyc = next((venv.site / "__pycache__").glob("fresh.*.pyc"))
    header = pyc.read_bytes()[:16]
    src = (venv.site / "fresh.py").stat()
    assert int.from_bytes(header[8:12], "little") == int(src.st_mtime) & 0xFFFFFFFF
    assert int.from_bytes(header[12:16], "little") == src.st_size


def test_no_compile_writes_no_bytecode(run: Run, venv: Venv, wheels: Wheels) -> None:
    ok(run("install", "--no-compile", "--python", venv.python, wheels.demo))
    assert not list(venv.root.rglob("demo/**/__pycache__"))
    assert ".pyc" not in (venv.site / "demo-1.0.dist-info" / "RECORD").read_text()


# -- protected files -----------------------------------------------------------------------------


def test_wheel_overwriting_the_interpreter_is_refused(run: Run, venv: Venv, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path / "w",
        "hijack",
        "1.0",
        {"hijack.py": b""},
        data={"scripts/python": b"#!/bin/sh\necho pwned\n"},
    )
    before = snapshot(venv.root)
    proc = run("install", "--python", venv.python, wheel)
    assert_error(proc, 4, "would overwrite the interpreter")
    assert snapshot(venv.root) == before


def test_wheel_writing_into_stalwart_itself_is_refused(
    run: Run, tmp_path: Path, wheels: Wheels
) -> None:
    """--target at the directory stalwart runs from: its own package must not be replaced."""
    own = Path(stalwart.__file__).resolve().parent
    wheel = build_wheel(tmp_path / "w", "stalwart", "99.0", {"stalwart/__init__.py": b"X = 1\n"})
    before = sorted(p.name for p in own.parent.iterdir())
    proc = run("install", "--target", own.parent, wheel)
    assert_error(proc, 4, "which is protected")
    assert (own / "__init__.py").read_bytes() != b"X = 1\n"
    assert sorted(p.name for p in own.parent.iterdir()) == before


def test_upgrade_keeps_a_file_another_distribution_still_owns(
    run: Run, venv: Venv, wheels: Wheels, tmp_path: Path
) -> None:
    """alpha and gamma both ship shared/x.py; alpha 2.0 drops it: gamma's copy must stay."""
    ok(run("install", "--python", venv.python, wheels.alpha, wheels.gamma))
    alpha2 = build_wheel(tmp_path / "w", "alpha", "2.0", {"alpha.py": b"V = 2\n"})
    ok(run("install", "--python", venv.python, alpha2))
    assert (venv.site / "shared" / "x.py").read_bytes() == b"WHO = 'A'\n"
    assert not (venv.site / "alpha-1.0.dist-info").exists()
    assert ok(run("verify", "--python", venv.python)).returncode == 0


def test_incomplete_rollback_keeps_what_recover_needs(venv: Venv, tmp_path: Path) -> None:
    """An upgrade fails, and so does undoing it: the journal and backups must survive for
    `stalwart recover`, which then restores the old version byte for byte."""
    from stalwart.fs import Op
    from stalwart.fs.faults import FaultInjector
    from stalwart.transaction import RollbackIncompleteError, pending_transactions

    old = build_wheel(tmp_path / "w", "pkgx", "1.0", {"pkgx/a.py": b"A1\n", "pkgx/b.py": b"B1\n"})
    new = build_wheel(tmp_path / "w", "pkgx", "2.0", {"pkgx/a.py": b"A2\n", "pkgx/b.py": b"B2\n"})
    env = query_environment(str(venv.python), use_cache=False)
    install([old], env, InstallOptions(compile=False))
    before = snapshot(venv.root)
    with stalwart.fs.settings(timeout=0), FaultInjector() as faults:
        faults.fail(Op.REPLACE, "*/pkgx/b.py", errno=13)  # EACCES: installing, and restoring
        with pytest.raises(RollbackIncompleteError, match="run `stalwart recover`"):
            install([new], env, InstallOptions(compile=False))
    (txn,) = pending_transactions(env.state_dir)
    assert os.path.exists(os.path.join(txn, "journal.json"))
    assert snapshot(venv.root) != before
    from stalwart.session import locked_environment

    with locked_environment(env) as reports:
        (report,) = reports
    assert report.action == "rolled back"
    assert snapshot(venv.root) == before


def test_two_wheels_of_one_command_shipping_one_path_differently(
    run: Run, venv: Venv, wheels: Wheels
) -> None:
    before = snapshot(venv.root)
    proc = run("install", "--python", venv.python, wheels.alpha, wheels.beta)
    assert_error(proc, 1, "shared/x.py is shipped by both", "with different content")
    assert snapshot(venv.root) == before
    # The same bytes from both (a namespace __init__.py) are fine, and both RECORDs list it.
    ok(run("install", "--python", venv.python, wheels.alpha, wheels.gamma))
    assert ok(run("verify", "--python", venv.python)).returncode == 0


def test_a_file_does_not_replace_a_directory_holding_other_files(
    run: Run, venv: Venv, tmp_path: Path
) -> None:
    """pkgd/data is a directory in 1.0 and a file in 2.0; a plugin and the user put files in
    it. Replacing it would delete them: refused, and nothing changes."""
    w = tmp_path / "w"
    v1 = build_wheel(w, "pkgd", "1.0", {"pkgd/__init__.py": b"", "pkgd/data/x.txt": b"x\n"})
    v2 = build_wheel(w, "pkgd", "2.0", {"pkgd/__init__.py": b"", "pkgd/data": b"a file\n"})
    plugin = build_wheel(w, "plugin", "1.0", {"pkgd/data/plugin.txt": b"p\n"})
    ok(run("install", "--python", venv.python, v1, plugin))
    (venv.site / "pkgd" / "data" / "user.txt").write_bytes(b"precious\n")
    before = snapshot(venv.root)
    proc = run("install", "--python", venv.python, v2)
    assert_error(proc, 1, "is a directory that holds", "a file cannot replace it")
    assert snapshot(venv.root) == before
    # Without the foreign files the upgrade goes through: the old directory is replaced.
    ok(run("uninstall", "--python", venv.python, "plugin"))
    (venv.site / "pkgd" / "data" / "user.txt").unlink()
    ok(run("install", "--python", venv.python, v2))
    assert (venv.site / "pkgd" / "data").read_bytes() == b"a file\n"
    assert ok(run("verify", "--python", venv.python)).returncode == 0


def test_missing_record_refuses_uninstall_and_upgrade(
    run: Run, venv: Venv, wheels: Wheels, tmp_path: Path
) -> None:
    """Without RECORD the files are unknown: removing only the .dist-info would orphan them."""
    ok(run("install", "--python", venv.python, wheels.other))
    (venv.site / "other-2.0.dist-info" / "RECORD").unlink()
    before = snapshot(venv.root)
    proc = run("uninstall", "--python", venv.python, "other")
    assert_error(proc, 1, "refusing to uninstall other 2.0", "RECORD is missing")
    assert snapshot(venv.root) == before
    newer = build_wheel(tmp_path / "w", "other", "3.0", {"other.py": b"X = 3\n"})
    assert_error(run("install", "--python", venv.python, newer), 1, "RECORD is missing")
    assert snapshot(venv.root) == before
    proc = run("verify", "--python", venv.python)
    assert proc.returncode == 5
    assert "RECORD is missing" in proc.stdout


def test_uninstall_does_not_follow_a_symlinked_dist_info_outside(
    run: Run, venv: Venv, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: ext\nVersion: 1.0\n")
    (outside / "RECORD").write_bytes(b"")
    (outside / "notes.txt").write_bytes(b"keep me\n")
    (venv.site / "ext-1.0.dist-info").symlink_to(outside)
    proc = run("uninstall", "--python", venv.python, "ext")
    assert_error(proc, 1, "resolves outside the environment")
    assert sorted(p.name for p in outside.iterdir()) == ["METADATA", "RECORD", "notes.txt"]


def test_install_does_not_write_through_a_symlink_out_of_the_environment(
    run: Run, venv: Venv, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.py").write_bytes(b"the user's own file\n")
    (venv.site / "pkgx").symlink_to(outside)
    wheel = build_wheel(tmp_path / "w", "pkgx", "1.0", {"pkgx/a.py": b"from the wheel\n"})
    proc = run("install", "--python", venv.python, wheel)
    assert_error(proc, 4, "leads outside the environment")
    assert (outside / "a.py").read_bytes() == b"the user's own file\n"
    assert sorted(p.name for p in outside.iterdir()) == ["a.py"]


@pytest.mark.parametrize("prints", ["", "[1]", "{}", '{"paths": 3}'])
def test_an_interpreter_that_reports_nonsense(
    run: Run, tmp_path: Path, wheels: Wheels, prints: str
) -> None:
    fake = tmp_path / "fakepy"
    fake.write_text(f"#!/bin/sh\nprintf '%s' '{prints}'\n")
    fake.chmod(0o755)
    proc = run("install", "--python", fake, wheels.other)
    assert_error(proc, 4, "did not report a usable install scheme")


def test_upgrade_where_a_file_becomes_a_package(run: Run, venv: Venv, tmp_path: Path) -> None:
    w = tmp_path / "w"
    v1 = build_wheel(w, "ftod", "1.0", {"ftod/__init__.py": b"", "ftod/thing": b"a file\n"})
    v2 = build_wheel(
        w, "ftod", "2.0", {"ftod/__init__.py": b"", "ftod/thing/__init__.py": b"X = 2\n"}
    )
    ok(run("install", "--python", venv.python, v1))
    ok(run("install", "--python", venv.python, v2))
    assert (venv.site / "ftod" / "thing" / "__init__.py").read_bytes() == b"X = 2\n"
    assert ok(run("verify", "--python", venv.python)).returncode == 0


def test_prefix_headers_land_under_the_prefix(run: Run, tmp_path: Path) -> None:
    """Like pip --prefix: headers go to <prefix>/include/pythonX.Y/<name>, not to the base
    interpreter's include directory, and uninstall takes them away again."""
    wheel = build_wheel(
        tmp_path / "w", "hdr", "1.0", {"hdr.py": b""}, data={"headers/hdr.h": b"int x;\n"}
    )
    prefix = tmp_path / "prefix"
    ok(run("install", "--prefix", prefix, wheel))
    (header,) = prefix.rglob("hdr.h")
    assert header.relative_to(prefix).parts[:2] == ("include", PY)
    ok(run("uninstall", "--prefix", prefix, "hdr"))
    assert not list(prefix.rglob("hdr*"))


def test_recovery_through_another_spelling_of_the_same_path(tmp_path: Path) -> None:
    """A journal written through a symlinked path is replayed through the resolved one (a
    symlinked home, macOS /var and /private/var): same files, so not 'outside'."""
    from stalwart.fs.faults import FaultInjector, Mutation, SimulatedCrash
    from stalwart.journalkey import journal_key
    from stalwart.transaction import Transaction, recover

    real = tmp_path / "real"
    (real / "env").mkdir(parents=True)
    (real / "env" / "old.txt").write_bytes(b"old\n")
    link = tmp_path / "link"
    link.symlink_to(real)

    def transaction() -> Transaction:
        txn = Transaction(str(link / "env" / ".stalwart"))
        staged = txn.stage_path("new.txt")
        with stalwart.fs.open_for_write(staged, exclusive=True) as writer:
            writer.write(b"new\n")
        txn.install(staged, str(link / "env" / "new.txt"))
        txn.remove(str(link / "env" / "old.txt"))
        return txn

    journal_key(create=True)  # made once; not a step of the commits compared below
    first = transaction()
    with FaultInjector(record=True) as probe:
        first.commit()
    ran: list[Mutation] = probe.mutations
    (real / "env" / "new.txt").unlink()
    (real / "env" / "old.txt").write_bytes(b"old\n")
    # Crash just after the old file was moved aside (its backup rename), before the install.
    (backup_at,) = [i for i, m in enumerate(ran) if m.op == "rename" and "backup" in m.paths[-1]]
    txn = transaction()
    with FaultInjector(crash_after=backup_at + 1), contextlib.suppress(SimulatedCrash, OSError):
        txn.commit()
    assert not (real / "env" / "old.txt").exists()
    (report,) = recover(str(real / "env" / ".stalwart"), [str(real / "env")])
    assert report.action == "rolled back"
    assert sorted(p.name for p in (real / "env").iterdir()) == ["old.txt"]
