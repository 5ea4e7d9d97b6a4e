"""Each class of defect an attacker's corpus found, tried again against the real CLI.

Path aliases (a venv's ``lib64`` symlink, two spellings of one file), foreign ``.dist-info``
directories, FIFOs where files should be, trees deeper than the recursion limit, a symlinked
state directory, odd installed RECORDs, cleanup failing after COMMITTED, ``Requires-Python``,
verify with a pending journal, pip's versioned scripts. Every test names the rule it checks
and would fail on the code before the fix.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import stalwart.fs as fs
from stalwart.fs import Op
from stalwart.fs.faults import FaultInjector
from stalwart.install import InstallOptions, install
from treesnap import snapshot
from venvs import PY, Venv, cli_environ, copy_venv, without_banner
from wheelfactory import (
    build_wheel,
    make_wheel,
    record_bytes,
    record_hash,
    wheel_files,
    with_record,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="POSIX venv layout with its lib64 symlink"
)

STALWART = Path(sys.executable).with_name("stalwart")
NO_COMPILE = InstallOptions(compile=False)
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def venv(pristine_venv: Venv, tmp_path: Path) -> Venv:
    made = copy_venv(pristine_venv, tmp_path / "venv")
    if not (made.root / "lib64").is_symlink():
        (made.root / "lib64").symlink_to("lib")  # as venv makes it on 64-bit Linux
    return made


@pytest.fixture
def run(tmp_path: Path) -> Run:
    env = cli_environ(tmp_path / "cache")
    # The journal key of this test process: a transaction crashed in-process is this user's.
    env["STALWART_STATE_DIR"] = os.environ["STALWART_STATE_DIR"]

    def go(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(STALWART), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    return go


def refused(proc: subprocess.CompletedProcess[str], code: int, *says: str) -> None:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert without_banner(proc.stderr).startswith("error: "), proc.stderr
    for part in says:
        assert part in proc.stderr, (part, proc.stderr)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


ALIAS = f"data/lib64/{PY}/site-packages"  # .data/data/ + this = site-packages, spelled apart


# -- 1, 2: path aliases ------------------------------------------------------------------------


def test_a_journal_cannot_be_planted_through_lib64(venv: Venv, run: Run, tmp_path: Path) -> None:
    journal = f"{ALIAS}/.stalwart/txn-20260101000000-deadbeef/journal.json"
    wheel = build_wheel(
        tmp_path / "w", "planter", "1.0", {"planter.py": b""}, data={journal: b"{}"}
    )
    before = snapshot(venv.root)
    refused(run("install", "--python", venv.python, wheel), 1, "state directory")
    assert snapshot(venv.root) == before
    ok(run("list", "--python", venv.python))


def test_ownership_is_not_fooled_by_lib64(venv: Venv, run: Run, tmp_path: Path) -> None:
    owner = build_wheel(tmp_path / "w", "owner", "1.0", {"owner/x.py": b"X = 'owner'\n"})
    ok(run("install", "--no-compile", "--python", venv.python, owner))
    thief = build_wheel(
        tmp_path / "w", "thief", "1.0", {"thief.py": b""}, data={f"{ALIAS}/owner/x.py": b"evil"}
    )
    before = snapshot(venv.root)
    refused(run("install", "--python", venv.python, thief), 1, "belongs to owner 1.0")
    assert snapshot(venv.root) == before


def test_one_wheel_cannot_ship_one_file_twice_through_an_alias(
    venv: Venv, run: Run, tmp_path: Path
) -> None:
    twice = build_wheel(
        tmp_path / "w", "twice", "1.0", {"twice/a.py": b"A"}, data={f"{ALIAS}/twice/a.py": b"B"}
    )
    refused(run("install", "--python", venv.python, twice), 1, "go to the same path")


def test_the_interpreter_is_protected_by_identity(venv: Venv, run: Run, tmp_path: Path) -> None:
    """Reached as ``lib64/../bin/python``-style aliases are refused by the archive; through a
    hard link name it is still the interpreter."""
    exe = venv.root / "bin" / "python3-alias"
    os.link(os.path.realpath(venv.python), exe)
    wheel = build_wheel(
        tmp_path / "w", "clobber", "1.0", {"clobber.py": b""}, data={"scripts/python3-alias": b"x"}
    )
    refused(run("install", "--python", venv.python, wheel), 4, "would overwrite the interpreter")


# -- 3: a second .dist-info ---------------------------------------------------------------------


def test_a_wheel_cannot_ship_a_second_dist_info(venv: Venv, run: Run, tmp_path: Path) -> None:
    fake = wheel_files("decoy", "9.9", {})
    data = {f"purelib/{k}": v for k, v in fake.items()}
    wheel = build_wheel(tmp_path / "w", "sneaky", "1.0", {"sneaky.py": b""}, data=data)
    refused(run("install", "--python", venv.python, wheel), 1, "decoy-9.9.dist-info")
    assert not (venv.site / "decoy-9.9.dist-info").exists()


def test_uninstall_ignores_a_dist_info_the_leaving_distribution_shipped(
    venv: Venv, run: Run, tmp_path: Path
) -> None:
    """Installed by pip (which allows it): the decoy's RECORD lists sneaky's files. Uninstalling
    sneaky must still remove them, and the decoy with them."""
    import realwheels

    name = "sneaky"
    dist_info = f"{name}-1.0.dist-info"
    decoy_record = record_bytes(
        [
            (f"{name}/__init__.py", record_hash(b"S = 1\n"), "6"),
            ("decoy-9.9.dist-info/RECORD", "", ""),
        ]
    )
    decoy = {
        "decoy-9.9.dist-info/METADATA": b"Metadata-Version: 2.1\nName: decoy\nVersion: 9.9\n",
        "decoy-9.9.dist-info/RECORD": decoy_record,
    }
    data = {f"purelib/{k}": v for k, v in decoy.items()}  # pip checks only the root
    content = wheel_files(name, "1.0", {f"{name}/__init__.py": b"S = 1\n"}, data=data)
    assert f"{dist_info}/RECORD" in content
    wheel = make_wheel(tmp_path / f"{name}-1.0-py3-none-any.whl", content)
    realwheels.pip_install(venv.root, [wheel])
    assert (venv.site / "decoy-9.9.dist-info" / "RECORD").is_file()
    ok(run("uninstall", "--python", venv.python, name))
    assert not (venv.site / name).exists()
    assert not (venv.site / "decoy-9.9.dist-info").exists()


# -- 4: FIFOs never hang --------------------------------------------------------------------------


def test_a_fifo_where_an_owned_file_should_be(venv: Venv, run: Run, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "piped", "1.0", {"piped/a.py": b"A = 1\n"})
    ok(run("install", "--no-compile", "--python", venv.python, wheel))
    target = venv.site / "piped" / "a.py"
    target.unlink()
    os.mkfifo(target)
    proc = run("verify", "--python", venv.python, timeout=30)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert f"changed: {target}" in proc.stdout
    other = build_wheel(tmp_path / "w", "rival", "1.0", {"piped/a.py": b"B = 2\n"})
    refused(run("install", "--python", venv.python, other, timeout=30), 1, "belongs to piped")
    (venv.site / "piped-1.0.dist-info" / "METADATA").unlink()
    os.mkfifo(venv.site / "piped-1.0.dist-info" / "METADATA")
    ok(run("list", "--python", venv.python, timeout=30))


def test_a_fifo_given_as_a_wheel(venv: Venv, run: Run, tmp_path: Path) -> None:
    fifo = tmp_path / "x-1.0-py3-none-any.whl"
    os.mkfifo(fifo)
    refused(run("install", "--python", venv.python, fifo, timeout=30), 1, "not a regular file")


# -- 5: no traceback ------------------------------------------------------------------------------

DEPTH = 1100  # deeper than the default recursion limit


def test_a_deeply_nested_wheel_installs_uninstalls_and_upgrades(
    venv: Venv, run: Run, deep_tmp: Path
) -> None:
    tmp_path = deep_tmp
    deep = "/".join(["d"] * DEPTH)
    v1 = build_wheel(tmp_path / "w", "deep", "1.0", {f"deep/{deep}/leaf.txt": b"x"})
    before = snapshot(venv.root)
    ok(run("install", "--no-compile", "--python", venv.python, v1))
    ok(run("uninstall", "--python", venv.python, "deep"))
    assert snapshot(venv.root) == before
    ok(run("install", "--no-compile", "--python", venv.python, v1))
    v2 = build_wheel(tmp_path / "w", "deep", "2.0", {"deep/d": b"now a file\n"})
    ok(run("install", "--no-compile", "--python", venv.python, v2))
    assert (venv.site / "deep" / "d").read_bytes() == b"now a file\n"


def test_verify_reports_hashes_it_cannot_check(venv: Venv, run: Run, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "odd", "1.0", {"odd.py": b"O = 1\n"})
    ok(run("install", "--no-compile", "--python", venv.python, wheel))
    record = venv.site / "odd-1.0.dist-info" / "RECORD"
    text = record.read_text().replace(record_hash(b"O = 1\n"), "shake_128=AAAA")
    record.write_text(text)
    proc = ok(run("verify", "--python", venv.python))
    assert "cannot check" in proc.stderr
    assert "shake_128" in proc.stderr
    record.write_text(text.replace("shake_128=AAAA", "sha256=not*base64"))
    proc = ok(run("verify", "--python", venv.python))
    assert "cannot check" in proc.stderr and "unreadable" in proc.stderr


def test_a_pth_file_that_prints_does_not_break_the_query(
    venv: Venv, run: Run, tmp_path: Path
) -> None:
    (venv.site / "noisy.pth").write_text('import sys; print("{not json} hello")\n')
    ok(run("list", "--python", venv.python))
    wheel = build_wheel(tmp_path / "w", "quiet", "1.0", {"quiet.py": b""})
    ok(run("install", "--python", venv.python, wheel))


def test_a_huge_bogus_record_gives_a_short_message(venv: Venv, run: Run, tmp_path: Path) -> None:
    files = wheel_files("bogus", "1.0", {"bogus.py": b""})
    rows = b"".join(b"bogus/f%d.py,sha256=xx,1\n" % i for i in range(200_000))
    files["bogus-1.0.dist-info/RECORD"] += rows
    wheel = make_wheel(tmp_path / "bogus-1.0-py3-none-any.whl", files)
    proc = run("install", "--python", venv.python, wheel)
    refused(proc, 1, "200000 problems:")  # every bad row counted, 19 of them listed
    assert "199981 more problems are not listed" in proc.stderr
    assert len(proc.stderr) < 20_000, len(proc.stderr)


def test_an_installed_record_naming_the_state_dir(venv: Venv, run: Run, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "meddler", "1.0", {"meddler.py": b""})
    ok(run("install", "--no-compile", "--python", venv.python, wheel))
    record = venv.site / "meddler-1.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + ".stalwart/lock,,\n")
    refused(run("uninstall", "--python", venv.python, "meddler"), 1, "state directory")


# -- 6: symlinks --------------------------------------------------------------------------------


def test_a_symlinked_state_directory_is_not_followed(venv: Venv, run: Run, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "trash").mkdir()
    (outside / "trash" / "precious.txt").write_bytes(b"keep me\n")
    (venv.site / ".stalwart").symlink_to(outside)
    wheel = build_wheel(tmp_path / "w", "follower", "1.0", {"follower.py": b""})
    refused(run("install", "--python", venv.python, wheel), 4, "is a symlink")
    assert (outside / "trash" / "precious.txt").read_bytes() == b"keep me\n"


@pytest.mark.parametrize("content", ["symlink", "empty-dir"])
def test_a_file_does_not_replace_a_directory_holding_a_symlink_or_an_empty_dir(
    venv: Venv, run: Run, tmp_path: Path, content: str
) -> None:
    v1 = build_wheel(tmp_path / "w", "shape", "1.0", {"shape/thing/a.py": b""})
    ok(run("install", "--no-compile", "--python", venv.python, v1))
    thing = venv.site / "shape" / "thing"
    if content == "symlink":
        (thing / "mine").symlink_to(tmp_path)
    else:
        (thing / "empty").mkdir()
    v2 = build_wheel(tmp_path / "w", "shape", "2.0", {"shape/thing": b"a file now\n"})
    before = snapshot(venv.root)
    refused(run("install", "--python", venv.python, v2), 1, "a file cannot replace it")
    assert snapshot(venv.root) == before


# -- 8: committed means succeeded --------------------------------------------------------------


def test_a_lock_episode_on_the_staging_directory_is_waited_out(venv: Venv, tmp_path: Path) -> None:
    """600 ms of "directory not empty" on the staging directory, budget 1 s: succeeds."""
    wheel = build_wheel(tmp_path / "w", "calm", "1.0", {"calm.py": b""})
    with fs.settings(timeout=1.0), FaultInjector() as faults:
        fault = faults.fail(Op.RMDIR, "*/.stalwart/txn-*/stage", errno=errno.ENOTEMPTY, seconds=0.6)
        result = install([wheel], venv.env, NO_COMPILE)
    assert fault.hits > 1
    assert [d.name for d in result.changed] == ["calm"]
    assert not result.notes
    assert not (venv.site / ".stalwart").exists()


def test_cleanup_failing_after_commit_is_a_warning(venv: Venv, run: Run, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "sticky", "1.0", {"sticky.py": b""})
    with fs.settings(timeout=0.2), FaultInjector() as faults:
        # The staging directory can neither be removed nor moved to the trash.
        faults.fail(Op.RMDIR, "*/.stalwart/txn-*/stage", errno=errno.ENOTEMPTY)
        faults.fail(Op.RENAME, "*/.stalwart/txn-*/stage", errno=errno.EBUSY)
        result = install([wheel], venv.env, NO_COMPILE)
    assert [d.name for d in result.changed] == ["sticky"]
    assert any("the next stalwart command finishes it" in n for n in result.notes)
    assert (venv.site / "sticky.py").is_file()
    # The next command finishes the cleanup.
    proc = ok(run("list", "--python", venv.python))
    assert "recover" in proc.stderr  # it is pending until a changing command runs
    ok(run("recover", "--python", venv.python))
    assert not (venv.site / ".stalwart").exists()


# -- 9, 10, 11 ----------------------------------------------------------------------------------


def test_requires_python_is_enforced(venv: Venv, run: Run, tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path / "w", "future", "1.0", {"future.py": b""}, requires_python=">=3.99"
    )
    refused(run("install", "--python", venv.python, wheel), 1, "requires Python >=3.99")
    ok(run("install", "--ignore-requires-python", "--python", venv.python, wheel))
    assert (venv.site / "future.py").is_file()


def test_verify_recovers_a_pending_transaction_first(venv: Venv, run: Run, tmp_path: Path) -> None:
    from stalwart.errors import RollbackIncompleteError
    from stalwart.fs.faults import SimulatedCrash

    wheel = build_wheel(
        tmp_path / "w", "halfway", "1.0", {f"halfway/m{i}.py": b"" for i in range(5)}
    )
    plain = InstallOptions(compile=False, cache=False)  # the same mutations every run
    probe = copy_venv(venv, tmp_path / "probe")
    with FaultInjector(record=True) as recorded:
        install([wheel], probe.env, plain)
    journal_at = next(
        i
        for i, m in enumerate(recorded.mutations)
        if m.op == "replace" and m.paths[-1].endswith("journal.json")
    )
    killed = (SimulatedCrash, RollbackIncompleteError)  # the undo is "killed" too
    with FaultInjector(crash_after=journal_at + 3), pytest.raises(killed):
        install([wheel], venv.env, plain)  # killed among the moves into place
    assert (venv.site / ".stalwart").is_dir()
    proc = ok(run("verify", "--python", venv.python))
    assert "recovered an interrupted transaction" in proc.stderr
    assert not (venv.site / ".stalwart").exists()


def test_pip_gets_the_target_pythons_versioned_scripts(
    venv: Venv, run: Run, tmp_path: Path
) -> None:
    scripts = "[console_scripts]\npip = pip._internal.cli.main:main\n"
    scripts += "pip3 = pip._internal.cli.main:main\npip3.99 = pip._internal.cli.main:main\n"
    wheel = build_wheel(
        tmp_path / "w", "pip", "99.0", {"pip/__init__.py": b""}, entry_points=scripts
    )
    ok(run("install", "--no-compile", "--python", venv.python, wheel))
    major, minor = sys.version_info[:2]
    names = {p.name for p in venv.bin.iterdir() if p.name.startswith("pip")}
    assert names == {"pip", f"pip{major}", f"pip{major}.{minor}"}


def test_terminal_escapes_in_a_wheel_are_shown_not_obeyed(
    venv: Venv, run: Run, tmp_path: Path
) -> None:
    """A METADATA Summary and an installed RECORD path are the wheel author's words: printed
    raw, they could clear the screen or rewrite what the user reads."""
    files = wheel_files("loud", "1.0", {"loud.py": b""})
    meta = files["loud-1.0.dist-info/METADATA"].decode()
    files["loud-1.0.dist-info/METADATA"] = meta.replace(
        "Summary: loud for tests", "Summary: hi\x1b[2J\u202egnp.exe"
    ).encode()
    del files["loud-1.0.dist-info/RECORD"]
    files = with_record(files, "loud-1.0.dist-info")
    ok(
        run(
            "install",
            "--python",
            venv.python,
            make_wheel(tmp_path / "loud-1.0-py3-none-any.whl", files),
        )
    )
    shown = ok(run("show", "--python", venv.python, "loud")).stdout
    assert "Summary: hi\\x1b[2J\\u202egnp.exe" in shown
    assert "\x1b" not in shown and "\u202e" not in shown
    record = venv.site / "loud-1.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + "gone\x1b]0;owned\x07.py,,\n")
    proc = run("verify", "--python", venv.python)
    assert proc.returncode == 5  # differences found
    assert "gone\\x1b]0;owned\\x07.py" in proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
