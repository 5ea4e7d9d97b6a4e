"""stalwart.interpreter: finding a target interpreter, asking it once, caching the answer.

Interpreters here are often small shell scripts that ``exec`` a real Python and append a line
to a log first: the log counts how many times the query really ran, which is how the caches
are proved to answer (or not). The in-memory memo lives for the process, so "a later command"
is a fresh process (:func:`query_in_fresh_process`) sharing the test's cache directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment

from stalwart import cli
from stalwart.errors import TargetEnvironmentError
from stalwart.interpreter import (
    QUERY_BEGIN,
    QUERY_END,
    InterpreterInfo,
    query_interpreter,
    resolve_python,
)
from venvs import Venv, copy_venv

pytestmark = pytest.mark.skipif(os.name != "posix", reason="shell-script interpreters")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own cache directory (``STALWART_CACHE_DIR``), for this and child processes."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("STALWART_CACHE_DIR", str(directory))
    return directory


def cache_files(cache: Path) -> list[Path]:
    directory = cache / "interpreters"
    return sorted(directory.iterdir()) if directory.exists() else []


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


class Counted:
    """An interpreter that logs every start, then runs *python*."""

    def __init__(self, path: Path, python: str) -> None:
        self.path = path
        self.log = path.with_suffix(".log")
        self.point_at(python)

    def point_at(self, python: str, before: str = "") -> None:
        script(self.path, f'echo run >> "{self.log}"\n{before}exec "{python}" "$@"\n')

    @property
    def runs(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0

    def __str__(self) -> str:
        return str(self.path)


CHILD = (
    "import dataclasses, json, sys\n"
    "from stalwart.interpreter import query_interpreter\n"
    "print(json.dumps([dataclasses.asdict(query_interpreter(e)) for e in sys.argv[1:]]))\n"
)


def query_in_fresh_process(*executables: object) -> list[dict[str, Any]]:
    """What a new stalwart process (empty memo, same cache directory) gets for each."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, executables)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def as_json(info: InterpreterInfo) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(info)))
    return result


# -- resolve_python -------------------------------------------------------------------------------


def test_resolve_python_defaults_to_the_running_interpreter() -> None:
    assert resolve_python(None) == sys.executable


def test_resolve_python_keeps_the_spelling_of_a_path(
    pristine_venv: Venv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bin/python of a venv is a symlink: scripts get the shebang of the path given, so it
    # must not be resolved.
    assert pristine_venv.python.is_symlink()
    assert resolve_python(str(pristine_venv.python)) == str(pristine_venv.python)
    monkeypatch.chdir(pristine_venv.root)
    assert resolve_python(os.path.join("bin", "python")) == str(pristine_venv.python)


def test_resolve_python_accepts_a_venv_directory(pristine_venv: Venv) -> None:
    assert resolve_python(str(pristine_venv.root)) == str(pristine_venv.python)


def test_resolve_python_looks_a_name_up_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = script(tmp_path / "bin" / "my-python", 'exec python3 "$@"\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert resolve_python("my-python") == str(exe)
    with pytest.raises(TargetEnvironmentError, match="no interpreter named 'python-nope' on PATH"):
        resolve_python("python-nope")


def test_resolve_python_refuses_what_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(TargetEnvironmentError, match="does not exist"):
        resolve_python(str(tmp_path / "missing" / "python"))
    (tmp_path / "not-a-venv").mkdir()
    with pytest.raises(TargetEnvironmentError, match="does not exist"):
        resolve_python(str(tmp_path / "not-a-venv"))


# -- asking a real interpreter --------------------------------------------------------------------


def test_query_the_running_interpreter(cache: Path) -> None:
    info = query_interpreter(sys.executable, use_cache=False)
    paths = sysconfig.get_paths()
    assert info.executable == sys.executable
    assert info.prefix == sys.prefix
    assert info.in_venv == (sys.prefix != sys.base_prefix)
    assert info.paths == {k: paths[k] for k in ("purelib", "platlib", "scripts", "data", "include")}
    assert info.implementation == sys.implementation.name
    assert info.version == tuple(sys.version_info[:3])
    assert info.platform == sysconfig.get_platform()
    assert info.soabi == (sysconfig.get_config_var("SOABI") or "")
    assert info.os_name == os.name
    assert info.stdlib == paths["stdlib"]
    assert info.platstdlib == paths["platstdlib"]
    assert info.pointer_bits == (64 if sys.maxsize > 2**32 else 32)
    want = default_environment()
    assert {k: v for k, v in info.markers.items() if k in want} == {
        k: v for k, v in want.items() if k in info.markers
    }


def test_the_marker_environment_is_packagings(cache: Path) -> None:
    # The target evaluates PEP 508 markers itself; for this interpreter they are packaging's.
    info = query_interpreter(sys.executable)
    assert info.markers == default_environment()


def test_query_a_real_venv(tmp_path: Path, pristine_venv: Venv, cache: Path) -> None:
    venv = copy_venv(pristine_venv, tmp_path / "venv")
    info = query_interpreter(str(venv.python))
    assert info.executable == str(venv.python)
    assert info.prefix == str(venv.root)
    assert info.in_venv
    assert info.paths["purelib"] == str(venv.site)
    assert info.paths["platlib"] == str(venv.site)
    assert info.paths["scripts"] == str(venv.bin)
    assert info.version == tuple(sys.version_info[:3])  # made from the one running the tests


def test_noise_from_a_pth_file_at_start_up_is_ignored(
    tmp_path: Path, pristine_venv: Venv, cache: Path
) -> None:
    venv = copy_venv(pristine_venv, tmp_path / "venv")
    fake_answer = QUERY_BEGIN + '{"bogus": 1}' + QUERY_END
    (venv.site / "noise.pth").write_text(
        f"import sys; print('noise'); print({fake_answer!r}); print('more noise')\n"
    )
    check = subprocess.run(
        [str(venv.python), "-I", "-c", "pass"], capture_output=True, text=True, check=True
    )
    assert "noise" in check.stdout  # the .pth file does run at start-up
    info = query_interpreter(str(venv.python))
    assert info.prefix == str(venv.root)
    assert info.paths["purelib"] == str(venv.site)


def test_an_interpreter_that_prints_garbage_first_still_reports(
    tmp_path: Path, cache: Path
) -> None:
    exe = Counted(tmp_path / "noisy-python", sys.executable)
    exe.point_at(sys.executable, before="echo 'garbage {\"version\": [' \nprintf '\\036\\036'\n")
    info = query_interpreter(str(exe))
    assert info.version == tuple(sys.version_info[:3])
    assert info.executable == sys.executable


# -- the caches -----------------------------------------------------------------------------------


def test_the_disk_cache_answers_a_later_process(tmp_path: Path, cache: Path) -> None:
    exe = Counted(tmp_path / "python", sys.executable)
    first = query_interpreter(str(exe))
    assert exe.runs == 1
    assert query_interpreter(str(exe)) is first  # the memo
    assert exe.runs == 1
    (cached,) = cache_files(cache)
    # Doctor the cached answer: a later process reports it without starting the interpreter.
    data = json.loads(cached.read_text())
    data["platform"] = "doctored-platform"
    cached.write_text(json.dumps(data))
    (later,) = query_in_fresh_process(exe)
    assert exe.runs == 1
    assert later == {**as_json(first), "platform": "doctored-platform"}


def test_changing_the_interpreter_file_invalidates_the_disk_cache(
    tmp_path: Path, cache: Path
) -> None:
    exe = Counted(tmp_path / "python", sys.executable)
    first = query_interpreter(str(exe))
    exe.point_at(sys.executable, before=": a longer script is another interpreter\n")
    (later,) = query_in_fresh_process(exe)
    assert exe.runs == 2
    assert later == as_json(first)
    assert len(cache_files(cache)) == 2  # keyed by path, size and mtime


def test_use_cache_false_runs_again_despite_the_memo(
    tmp_path: Path, pristine_venv: Venv, cache: Path
) -> None:
    exe = Counted(tmp_path / "python", sys.executable)
    first = query_interpreter(str(exe))
    assert first.prefix == sys.prefix
    exe.point_at(str(pristine_venv.python))  # "after changing the interpreter"
    assert query_interpreter(str(exe)) is first  # the memo still answers, by design
    assert exe.runs == 1
    fresh = query_interpreter(str(exe), use_cache=False)
    assert exe.runs == 2
    assert fresh.prefix == str(pristine_venv.root)
    # ... and both caches now hold the new answer.
    assert query_interpreter(str(exe)) == fresh
    (later,) = query_in_fresh_process(exe)
    assert later == as_json(fresh)
    assert exe.runs == 2


def test_use_cache_false_ignores_the_disk_cache_and_rewrites_it(
    tmp_path: Path, cache: Path
) -> None:
    exe = Counted(tmp_path / "python", sys.executable)
    first = query_interpreter(str(exe))
    (cached,) = cache_files(cache)
    data = json.loads(cached.read_text())
    cached.write_text(json.dumps({**data, "platform": "stale"}))
    again = query_interpreter(str(exe), use_cache=False)
    assert exe.runs == 2
    assert again == first
    assert json.loads(cached.read_text())["platform"] == first.platform


DAMAGE = {
    "not json": b'{"executable": ',
    "not utf-8": b"\xff\xfe\x00garbage",
    "a list": b"[1, 2, 3]",
    "missing keys": b'{"executable": "/usr/bin/python3", "version": [3, 11, 0]}',
    "wrong types": b'{"executable": 1, "version": "3.11", "paths": []}',
}


def test_a_damaged_cache_file_is_ignored_and_replaced(tmp_path: Path, cache: Path) -> None:
    exes = [Counted(tmp_path / f"python-{i}", sys.executable) for i in range(len(DAMAGE))]
    answers = [as_json(query_interpreter(str(exe))) for exe in exes]
    files = cache_files(cache)
    assert len(files) == len(exes)  # one per interpreter file
    for path, damage in zip(files, DAMAGE.values(), strict=True):
        path.write_bytes(damage)
    assert query_in_fresh_process(*exes) == answers
    assert [exe.runs for exe in exes] == [2] * len(exes)  # each one asked again
    for path in files:
        assert json.loads(path.read_text())["version"] == list(sys.version_info[:3])


# -- interpreters that are not -------------------------------------------------------------------


def no_chained_traceback(exc: BaseException) -> bool:
    """No "During handling of the above exception..." when it is printed."""
    return exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


NOT_PYTHON = {
    "prints nothing": "exit 0\n",
    "prints garbage": "echo 'Hello, I am not Python'\n",
    "prints an answer that is not an object": f"printf '{QUERY_BEGIN}[1, 2]{QUERY_END}'\n",
    "prints an incomplete answer": (
        f'printf \'{QUERY_BEGIN}{{"executable": "x", "version": [3, 11, 0]}}{QUERY_END}\'\n'
    ),
    "reports a version that is not three numbers": (
        f"printf '{QUERY_BEGIN}{{\"version\": [3, 11]}}{QUERY_END}'\n"
    ),
}


@pytest.mark.parametrize("body", NOT_PYTHON.values(), ids=NOT_PYTHON.keys())
def test_an_executable_that_is_not_python(tmp_path: Path, cache: Path, body: str) -> None:
    exe = script(tmp_path / "python", body)
    with pytest.raises(TargetEnvironmentError, match="is it a Python interpreter") as caught:
        query_interpreter(str(exe))
    assert no_chained_traceback(caught.value)
    assert cache_files(cache) == []  # nothing cached from a failure


def test_an_interpreter_that_fails_names_its_last_error_line(tmp_path: Path, cache: Path) -> None:
    exe = script(tmp_path / "python", "echo 'first line' >&2\necho 'the real reason' >&2\nexit 3\n")
    with pytest.raises(TargetEnvironmentError, match=r"failed to report.*: the real reason"):
        query_interpreter(str(exe))
    assert cache_files(cache) == []


def test_a_file_that_cannot_be_run(tmp_path: Path, cache: Path) -> None:
    exe = tmp_path / "python"
    exe.write_bytes(b"\x7fELF not really\n")
    exe.chmod(0o644)
    with pytest.raises(TargetEnvironmentError, match="cannot run the interpreter") as caught:
        query_interpreter(str(exe))
    assert no_chained_traceback(caught.value)


def test_the_cli_reports_a_non_python_without_a_traceback(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    true = shutil.which("true")
    assert true is not None
    code = cli.main(["list", "--python", true])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ENVIRONMENT, err
    assert "is it a Python interpreter" in err
    assert "Traceback" not in err
