"""The LD_PRELOAD fault shim, proven on real child processes.

Each test runs a small Python program (``sys.executable -c ...``) with ``faultshim.so``
preloaded and checks what happened on disk, on stdout and in the shim's log. The last tests run
stalwart's own filesystem layer under the shim: its retry loop must absorb injected lock
episodes and report a budget that runs out.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from faultshim.harness import (
    KILLED,
    LogEntry,
    Rule,
    ShimConfigError,
    build_shim,
    compile_command,
    mutation_points,
    read_count,
    read_log,
    run_under_shim,
)

pytestmark = [
    pytest.mark.linux_only,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="LD_PRELOAD shim: Linux/glibc only"
    ),
]

# Tries os.replace(src, dst) `attempts` times, printing the errno of each try (0 = success).
REPLACE_LOOP = """
import json, os
results = []
for _ in range({attempts}):
    try:
        os.replace({src!r}, {dst!r})
        results.append(0)
    except OSError as exc:
        results.append(exc.errno)
print(json.dumps(results))
"""


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def faults(log: Path) -> list[LogEntry]:
    return [entry for entry in read_log(log) if entry.kind == "fault"]


def test_compiles_warning_free(tmp_path: Path) -> None:
    out = tmp_path / "faultshim.so"
    proc = subprocess.run(
        compile_command(out, extra=["-Werror"]), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert out.stat().st_size > 0


def test_build_shim_is_cached_per_source_version(tmp_path: Path) -> None:
    first = build_shim(tmp_path)
    assert build_shim(tmp_path) == first
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_replace_fails_count_times_then_succeeds(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("payload")
    log = tmp_path / "faults.log"
    result = ok(
        run_under_shim(
            py(REPLACE_LOOP.format(attempts=5, src="src", dst="dst")),
            rules=[Rule("rename", "*dst", "EBUSY", 3)],
            log=log,
            cwd=tmp_path,
        )
    )
    # After the fourth call moved src away, the fifth finds nothing to move.
    assert json.loads(result.stdout) == [errno.EBUSY] * 3 + [0, errno.ENOENT]
    assert (tmp_path / "dst").read_text() == "payload"
    assert faults(log) == [
        LogEntry("fault", faults(log)[0].pid, point, "rename", errno.EBUSY, ("src", "dst"))
        for point in (1, 2, 3)
    ]


def test_rule_matches_either_path_of_a_rename(tmp_path: Path) -> None:
    (tmp_path / "locked.so").write_text("x")
    result = ok(
        run_under_shim(
            py(REPLACE_LOOP.format(attempts=2, src="locked.so", dst="elsewhere")),
            rules=[Rule("rename", "*.so", "ETXTBSY", -1)],
            cwd=tmp_path,
        )
    )
    assert json.loads(result.stdout) == [errno.ETXTBSY, errno.ETXTBSY]


def test_non_matching_paths_and_other_ops_are_unaffected(tmp_path: Path) -> None:
    log = tmp_path / "faults.log"
    result = ok(
        run_under_shim(
            py(
                """
                import os
                os.mkdir("dir")                         # op matches, path does not
                open("dir/file.txt", "w").close()
                os.replace("dir/file.txt", "dir/moved.txt")
                os.link("dir/moved.txt", "dir/other.dll")  # path matches, op does not
                os.unlink("dir/moved.txt")
                print(sorted(os.listdir("dir")))
                """
            ),
            rules=[Rule("mkdir", "*/pkg/*", "EACCES", -1), Rule("unlink", "*.dll", "EIO", -1)],
            log=log,
            cwd=tmp_path,
        )
    )
    assert result.stdout.strip() == "['other.dll']"
    assert faults(log) == []


def test_reads_are_never_faulted_or_counted(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("hello")
    count = tmp_path / "count"
    result = run_under_shim(
        py(
            """
            import os, sys
            assert open("data.txt").read() == "hello"
            assert open("data.txt", "rb").read() == b"hello"
            fd = os.open("data.txt", os.O_RDONLY)
            os.close(fd)
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
            os.close(fd)
            os.listdir(".")
            os.stat("data.txt")
            print("reads ok", flush=True)
            try:
                open("data.txt", "a")
            except PermissionError:
                sys.exit(3)
            """
        ),
        # Every open for writing fails, the interpreter's own start-up included: it only reads.
        rules=[Rule("open", "*", "EACCES", -1)],
        count_file=count,
        cwd=tmp_path,
    )
    assert result.stdout == "reads ok\n"
    assert result.returncode == 3, result.stderr
    assert read_count(count) == 1


@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_kill_at_stops_before_the_kth_mutation(tmp_path: Path, kill_at: int) -> None:
    log = tmp_path / "faults.log"
    result = run_under_shim(
        py("import os; os.mkdir('a'); os.mkdir('b'); os.mkdir('c'); print('done')"),
        kill_at=kill_at,
        log=log,
        cwd=tmp_path,
    )
    assert result.returncode == KILLED == -9
    assert result.stdout == ""
    made = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert made == ["a", "b", "c"][: kill_at - 1]
    (entry,) = read_log(log)
    assert (entry.kind, entry.point, entry.op, entry.paths) == (
        "kill",
        kill_at,
        "mkdir",
        ("abc"[kill_at - 1],),
    )


def test_kill_after_the_last_point_never_fires(tmp_path: Path) -> None:
    count = tmp_path / "count"
    argv = py("import os; os.mkdir('a'); os.mkdir('b'); os.mkdir('c')")
    assert mutation_points(argv, count_file=count, cwd=tmp_path) == 3
    for name in "abc":
        (tmp_path / name).rmdir()
    ok(run_under_shim(argv, kill_at=4, cwd=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["a", "b", "c"]


def test_count_file_counts_every_mutation_point(tmp_path: Path) -> None:
    count = tmp_path / "count"
    log = tmp_path / "trace.log"
    ok(
        run_under_shim(
            py(
                """
                import os, shutil
                os.makedirs("t/sub")                   # mkdir x2
                with open("t/f", "w") as f:            # open
                    f.write("x")
                fd = os.open("t/g", os.O_WRONLY | os.O_CREAT, 0o644)  # open
                os.write(fd, b"y")                     # not a point by default
                os.close(fd)
                os.chmod("t/f", 0o600)                 # chmod
                os.replace("t/f", "t/h")               # rename
                os.link("t/h", "t/i")                  # link
                os.symlink("h", "t/j")                 # symlink
                try:
                    os.rename("missing", "t/k")        # rename, failing by itself: counted
                except FileNotFoundError:
                    pass
                shutil.rmtree("t")  # unlinkat x4 (g, h, i, j), rmdir sub, rmdir t
                """
            ),
            count_file=count,
            log=log,
            trace=True,
            cwd=tmp_path,
        )
    )
    ops = [entry.op for entry in read_log(log)]
    before_rmtree = ["mkdir", "mkdir", "open", "open", "chmod", "rename", "link", "symlink"]
    assert ops[:9] == [*before_rmtree, "rename"]
    assert sorted(ops[9:]) == ["rmdir", "rmdir", "unlink", "unlink", "unlink", "unlink"]
    assert read_count(count) == len(ops) == 15
    assert [entry.point for entry in read_log(log)] == list(range(1, 16))


def test_dirfd_relative_calls_match_the_joined_path(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "mod.so").write_text("x")
    log = tmp_path / "faults.log"
    result = run_under_shim(
        # shutil.rmtree removes entries with unlinkat(dirfd, "mod.so", 0)
        py("import shutil; shutil.rmtree('tree')"),
        rules=[Rule("unlink", "*/tree/pkg/mod.so", "EBUSY", 1)],
        log=log,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Device or resource busy" in result.stderr
    assert (tree / "pkg" / "mod.so").exists()
    (entry,) = faults(log)
    assert (entry.op, entry.errno, entry.paths) == ("unlink", errno.EBUSY, ("mod.so",))


def test_ignore_globs_are_neither_counted_nor_faulted(tmp_path: Path) -> None:
    count = tmp_path / "count"
    log = tmp_path / "faults.log"
    result = ok(
        run_under_shim(
            py(
                """
                import json, os
                out = []
                for path in ("skip/a", "b.tmp", "kept"):
                    try:
                        os.makedirs(path)
                        out.append(0)
                    except OSError as exc:
                        out.append(exc.errno)
                print(json.dumps(out))
                """
            ),
            rules=[Rule("*", "*", "EIO", -1)],
            ignore=["skip", "skip/*", "*.tmp"],
            count_file=count,
            log=log,
            cwd=tmp_path,
        )
    )
    assert json.loads(result.stdout) == [0, 0, errno.EIO]
    assert read_count(count) == 1
    assert [(e.op, e.errno, e.paths) for e in faults(log)] == [("mkdir", errno.EIO, ("kept",))]


def test_faults_are_thread_safe(tmp_path: Path) -> None:
    count = tmp_path / "count"
    log = tmp_path / "faults.log"
    result = ok(
        run_under_shim(
            py(
                """
                import os, threading
                failures = []
                def work(t):
                    for i in range(50):
                        try:
                            os.mkdir(f"d{t}-{i}")
                        except OSError:
                            failures.append(1)
                threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
                for th in threads: th.start()
                for th in threads: th.join()
                print(len(failures), len(os.listdir(".")))
                """
            ),
            rules=[Rule("mkdir", "d*", "ENOSPC", 37)],
            count_file=count,
            log=log,
            cwd=tmp_path,
        )
    )
    # The listing also shows faults.log, written since the first fault; the count file is not
    # written until exit.
    assert result.stdout.split() == ["37", str(400 - 37 + 1)]
    assert read_count(count) == 400
    points = [entry.point for entry in faults(log)]
    assert len(points) == len(set(points)) == 37


def test_less_common_entry_points_are_intercepted(tmp_path: Path) -> None:
    """C extensions may call what CPython does not: creat, fopen, renameat2, symlinkat, ..."""
    (tmp_path / "src").write_text("x")
    result = ok(
        run_under_shim(
            py(
                """
                import ctypes, json, os
                libc = ctypes.CDLL(None, use_errno=True)
                libc.fopen.restype = ctypes.c_void_p
                AT_FDCWD = -100
                calls = {
                    "creat": lambda: libc.creat(b"target-creat", 0o644),
                    "fopen": lambda: libc.fopen(b"target-fopen", b"w") or -1,
                    "fopen-read": lambda: libc.fopen(b"src", b"r") and 0,
                    "renameat2": lambda: libc.renameat2(AT_FDCWD, b"src", AT_FDCWD,
                                                         b"target-renameat2", 0),
                    "symlinkat": lambda: libc.symlinkat(b"src", AT_FDCWD, b"target-symlinkat"),
                    "mkdirat": lambda: libc.mkdirat(AT_FDCWD, b"target-mkdirat", 0o755),
                    "linkat": lambda: libc.linkat(AT_FDCWD, b"src", AT_FDCWD, b"target-linkat", 0),
                    "fchmodat": lambda: libc.fchmodat(AT_FDCWD, b"target-fopen", 0o600, 0),
                }
                out = {}
                for name, call in calls.items():
                    ctypes.set_errno(0)
                    out[name] = [call(), ctypes.get_errno()]
                print(json.dumps(out))
                """
            ),
            rules=[Rule("*", "target-*", "EIO", -1)],
            cwd=tmp_path,
        )
    )
    out = json.loads(result.stdout)
    assert out.pop("fopen-read") == [0, 0]
    assert out == {name: [-1, errno.EIO] for name in out}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_writes_are_opt_in_points_and_can_fail(tmp_path: Path) -> None:
    count = tmp_path / "count"
    result = run_under_shim(
        py(
            """
            import os, sys
            print("to a pipe: never a regular file", flush=True)
            with open("ok.bin", "wb") as f:
                f.write(b"1234")
            with open("full.bin", "wb") as f:
                f.write(b"1234")
            """
        ),
        rules=[Rule("write", "*/full.bin", "ENOSPC", -1)],
        count_writes=True,
        count_file=count,
        cwd=tmp_path,
    )
    assert result.stdout == "to a pipe: never a regular file\n"
    assert result.returncode == 1
    assert "No space left on device" in result.stderr
    assert (tmp_path / "ok.bin").read_bytes() == b"1234"
    assert (tmp_path / "full.bin").read_bytes() == b""
    # opens of ok.bin and full.bin, the write to ok.bin, the (failed) write to full.bin
    assert read_count(count) == 4


def test_bad_configuration_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown op"):
        Rule("remove", "*", "EIO", 1)
    with pytest.raises(ValueError, match="unknown errno"):
        Rule("unlink", "*", "EWHATEVER", 1)
    with pytest.raises(ShimConfigError, match="FAULTSHIM_RULES errno"):
        run_under_shim(
            py("print('never runs')"), env={"FAULTSHIM_RULES": "unlink:*:EWHAT:1"}, cwd=tmp_path
        )


# --- stalwart's filesystem layer under the shim ------------------------------------------------

STALWART_REPLACE = "import stalwart.fs as f; f.replace('a', 'b')"


def test_stalwart_retry_absorbs_injected_lock_episode(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("old")
    log = tmp_path / "faults.log"
    ok(
        run_under_shim(
            py(STALWART_REPLACE),
            rules=[Rule("rename", "*b", "EBUSY", 3)],
            log=log,
            cwd=tmp_path,
        )
    )
    assert (tmp_path / "b").read_text() == "new"
    assert not (tmp_path / "a").exists()
    assert [(e.op, e.errno, e.paths) for e in faults(log)] == [
        ("rename", errno.EBUSY, ("a", "b"))
    ] * 3


def test_stalwart_reports_a_lock_that_outlasts_the_budget(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("old")
    result = run_under_shim(
        py(STALWART_REPLACE),
        rules=[Rule("rename", "*b", "EBUSY", -1)],
        env={"STALWART_LOCK_TIMEOUT": "0.2"},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "LockTimeoutError" in result.stderr
    assert "failed after" in result.stderr
    assert "EBUSY" in result.stderr
    assert (tmp_path / "a").read_text() == "new"
    assert (tmp_path / "b").read_text() == "old"
