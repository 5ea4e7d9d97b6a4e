"""Real Windows locks held while stalwart replaces or removes a file (Windows only).

The other tests fabricate ``winerror`` codes; here another party really holds the file, the way
antivirus scanners, indexers and running programs do:

- a handle opened with ``CreateFileW`` without ``FILE_SHARE_DELETE`` (what scanners open with):
  deleting, renaming or replacing the file is a sharing violation, WinError 32;
- a file marked for deletion while a handle stays open (classic delete-pending semantics): its
  directory cannot be removed yet, WinError 145;
- a running ``.exe`` (a distlib console-script launcher that sleeps): it cannot be deleted or
  replaced, WinError 5, but it can be renamed, which is what the trash relies on;
- a memory-mapped file (``mmap`` keeps a section open): it cannot be truncated, WinError 1224;
- a byte-range lock (``msvcrt.locking``): its bytes cannot be read, WinError 33.

Each lock is either released by a background thread after ``HOLD`` seconds (that thread's sleep
stands for the other program's behaviour) and the operation must succeed after recording a lock
episode, or held past a small budget, and the operation must raise ``LockTimeoutError`` naming
the path and leave the file as it was. Timing is asserted only within generous bounds.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import os
import re
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

import stalwart.fs as fs
from platforms import windows_only
from stalwart.errors import LockTimeoutError
from stalwart.scripts import ScriptSpec, windows_launcher
from treesnap import snapshot
from venvs import without_banner
from wheelfactory import make_wheel

pytestmark = windows_only(
    "holds real Windows locks (CreateFileW share modes, delete-pending files, a running .exe, "
    "mmap, msvcrt.locking)"
)

HOLD = 0.4  # seconds the other party keeps its lock in the "released in time" tests
SMALL_BUDGET = 0.5  # fs.settings(timeout=...) in the "held past the budget" tests
# Generous budgets for the "released in time" tests, so that a slow CI machine cannot turn a
# 0.4 s lock into a failure; access denied (WinError 5) normally gets only 1 s.
PATIENT = fs.RetryPolicy(timeout=30.0, brief_timeout=30.0)

# WinError codes (https://learn.microsoft.com/windows/win32/debug/system-error-codes).
ACCESS_DENIED = 5
SHARING_VIOLATION = 32
LOCK_VIOLATION = 33
DIR_NOT_EMPTY = 145
USER_MAPPED_FILE = 1224


# --- the other party: Win32 calls through ctypes -------------------------------------------------

GENERIC_READ = 0x80000000
DELETE = 0x00010000
FILE_SHARE_READ = 0x1
FILE_SHARE_WRITE = 0x2
FILE_SHARE_DELETE = 0x4
OPEN_EXISTING = 3
FILE_ATTRIBUTE_NORMAL = 0x80
FILE_DISPOSITION_INFO_CLASS = 4  # FileDispositionInfo: classic (not POSIX) delete semantics


@functools.cache
def kernel32() -> Any:
    """A private kernel32 binding (argtypes set here cannot leak into other ctypes users)."""
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    k32.CreateFileW.argtypes = [
        wintypes.LPCWSTR,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.LPVOID,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.HANDLE,
    ]
    k32.CreateFileW.restype = wintypes.HANDLE
    k32.CloseHandle.argtypes = [wintypes.HANDLE]
    k32.CloseHandle.restype = wintypes.BOOL
    k32.SetFileInformationByHandle.argtypes = [
        wintypes.HANDLE,
        ctypes.c_int,
        wintypes.LPVOID,
        wintypes.DWORD,
    ]
    k32.SetFileInformationByHandle.restype = wintypes.BOOL
    return k32


def open_handle(path: Path, access: int, share: int) -> int:
    import ctypes

    handle = kernel32().CreateFileW(
        str(path), access, share, None, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, None
    )
    if handle in (None, ctypes.c_void_p(-1).value):
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]
    return int(handle)


def close_handle(handle: int) -> None:
    import ctypes

    if not kernel32().CloseHandle(handle):
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]


class Lock:
    """Another program's hold on ``path``: :meth:`take` it, :meth:`release` it (idempotent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held = False
        self._guard = threading.Lock()

    def take(self) -> Lock:
        self._take()
        self._held = True
        return self

    def release(self) -> None:
        with self._guard:
            if self._held:
                self._held = False
                self._release()

    def _take(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class ScannerHandle(Lock):
    """An open handle without ``FILE_SHARE_DELETE``, like an antivirus scan of a new file."""

    def _take(self) -> None:
        self.handle = open_handle(self.path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE)

    def _release(self) -> None:
        close_handle(self.handle)


class DeletePending(Lock):
    """The file is deleted but stays in its directory while a handle is open: the directory
    cannot be removed until then (WinError 145)."""

    def _take(self) -> None:
        import ctypes

        share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE
        self.handle = open_handle(self.path, DELETE | GENERIC_READ, share)
        delete = ctypes.c_ubyte(1)  # FILE_DISPOSITION_INFO { BOOLEAN DeleteFile = TRUE }
        if not kernel32().SetFileInformationByHandle(
            self.handle, FILE_DISPOSITION_INFO_CLASS, ctypes.byref(delete), ctypes.sizeof(delete)
        ):
            error = ctypes.get_last_error()
            close_handle(self.handle)
            raise ctypes.WinError(error)  # type: ignore[attr-defined]
        if self.path.name not in os.listdir(self.path.parent):
            close_handle(self.handle)
            pytest.fail("the file vanished at once: not classic delete-pending semantics")

    def _release(self) -> None:
        close_handle(self.handle)


SLEEPER = """\
import os
import time


def main():
    print(os.getpid(), flush=True)
    time.sleep(120)  # killed long before; the limit only bounds a leak
    return 0
"""


class RunningExe(Lock):
    """``path`` becomes a console-script launcher (distlib's, as installed by pip and stalwart)
    that runs a Python function sleeping for minutes: a program in use."""

    def _take(self) -> None:
        lib = self.path.parent / f"{self.path.stem}-lib"
        lib.mkdir(exist_ok=True)
        (lib / "sleeper.py").write_text(SLEEPER)
        spec = ScriptSpec("sleeper", "sleeper", "main", gui=False)
        self.path.write_bytes(windows_launcher(spec, sys.executable, sysconfig.get_platform()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = str(lib)
        self.proc = subprocess.Popen(
            [str(self.path)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the Python child is up: the launcher is running
        if not line.strip().isdigit():
            self.proc.kill()
            self.proc.wait(timeout=60)
            pytest.fail(f"the launcher did not start: {line!r}")
        self.child = int(line)

    def _release(self) -> None:
        self.proc.kill()  # the launcher's job object takes its Python child along
        self.proc.wait(timeout=60)
        try:
            os.kill(self.child, 9)  # in case it did not
        except OSError:
            pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


class Mapped(Lock):
    """A memory map of the file (a section stays open, as in a program using mmap)."""

    def _take(self) -> None:
        import mmap

        with self.path.open("rb") as f:
            self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        # The map keeps its own handle: the file object is closed, the section is not.

    def _release(self) -> None:
        self.map.close()


class ByteRangeLock(Lock):
    """``msvcrt.locking`` on every byte of the file, from a file opened as Python opens files."""

    def _take(self) -> None:
        import msvcrt

        self.size = self.path.stat().st_size
        self.file = self.path.open("r+b")
        msvcrt.locking(self.file.fileno(), msvcrt.LK_NBLCK, self.size)  # type: ignore[attr-defined]

    def _release(self) -> None:
        import msvcrt

        self.file.seek(0)  # locking() works from the current position
        msvcrt.locking(self.file.fileno(), msvcrt.LK_UNLCK, self.size)  # type: ignore[attr-defined]
        self.file.close()


@pytest.fixture
def locks() -> Iterator[list[Lock]]:
    """Locks a test takes; every one is released afterwards, whatever happened."""
    taken: list[Lock] = []
    yield taken
    for lock in taken:
        lock.release()


def release_later(lock: Lock, seconds: float = HOLD) -> threading.Timer:
    """The other party lets go after ``seconds``, in a background thread."""
    timer = threading.Timer(seconds, lock.release)
    timer.daemon = True
    timer.start()
    return timer


# --- scenarios: one operation on one kind of lock ------------------------------------------------


class Case:
    """Files for one operation; ``held`` is what the other party locks."""

    codes: ClassVar[frozenset[int]]  # WinError codes the lock may give this operation
    held: Path

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def setup(self) -> None:
        raise NotImplementedError

    def lock(self) -> Lock:
        raise NotImplementedError

    def run(self) -> object:
        raise NotImplementedError

    def check_done(self, result: object) -> None:
        raise NotImplementedError

    def check_untouched(self) -> None:
        raise NotImplementedError


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class ReplaceScanned(Case):
    """fs.replace onto a file a scanner holds (MoveFileEx: 32, or 5 for an open target)."""

    codes = frozenset({SHARING_VIOLATION, ACCESS_DENIED})

    def setup(self) -> None:
        self.src = write(self.tmp / "new.pyd", b"new module")
        self.held = write(self.tmp / "site" / "mod.pyd", b"old module")

    def lock(self) -> Lock:
        return ScannerHandle(self.held)

    def run(self) -> object:
        return fs.replace(self.src, self.held)

    def check_done(self, result: object) -> None:
        assert self.held.read_bytes() == b"new module"
        assert not self.src.exists()

    def check_untouched(self) -> None:
        assert self.held.read_bytes() == b"old module"
        assert self.src.read_bytes() == b"new module"


class UnlinkScanned(Case):
    """fs.unlink of a file a scanner holds (DeleteFile: 32)."""

    codes = frozenset({SHARING_VIOLATION})

    def setup(self) -> None:
        self.held = write(self.tmp / "site" / "mod.pyd", b"module")

    def lock(self) -> Lock:
        return ScannerHandle(self.held)

    def run(self) -> object:
        return fs.unlink(self.held)

    def check_done(self, result: object) -> None:
        assert result is None
        assert not self.held.exists()

    def check_untouched(self) -> None:
        assert self.held.read_bytes() == b"module"


class RmtreeScanned(Case):
    """fs.rmtree of a package whose extension module a scanner holds."""

    codes = frozenset({SHARING_VIOLATION})

    def setup(self) -> None:
        self.top = self.tmp / "site" / "pkg"
        write(self.top / "__init__.py", b"")
        write(self.top / "sub" / "a.py", b"a")
        self.held = write(self.top / "sub" / "_speedups.pyd", b"module")

    def lock(self) -> Lock:
        return ScannerHandle(self.held)

    def run(self) -> object:
        return fs.rmtree(self.top)

    def check_done(self, result: object) -> None:
        assert result == []
        assert not self.top.exists()

    def check_untouched(self) -> None:
        assert self.held.read_bytes() == b"module"


class WriteAtomicScanned(Case):
    """fs.write_atomic over a file a scanner holds: its final replace waits."""

    codes = frozenset({SHARING_VIOLATION, ACCESS_DENIED})

    def setup(self) -> None:
        self.held = write(self.tmp / "site" / "RECORD", b"old record")

    def lock(self) -> Lock:
        return ScannerHandle(self.held)

    def run(self) -> object:
        return fs.write_atomic(self.held, b"new record")

    def check_done(self, result: object) -> None:
        assert self.held.read_bytes() == b"new record"
        assert os.listdir(self.held.parent) == ["RECORD"]  # no temporary left

    def check_untouched(self) -> None:
        assert self.held.read_bytes() == b"old record"
        assert os.listdir(self.held.parent) == ["RECORD"]


class RmdirDeletePending(Case):
    """fs.rmdir of a directory whose last file is deleted but still open elsewhere (145)."""

    codes = frozenset({DIR_NOT_EMPTY})

    def setup(self) -> None:
        self.dir = self.tmp / "site" / "pkg"
        write(self.dir / "mod.pyd", b"module")
        self.held = self.dir / "mod.pyd"

    def lock(self) -> Lock:
        return DeletePending(self.held)

    def run(self) -> object:
        return fs.rmdir(self.dir)

    def check_done(self, result: object) -> None:
        assert not self.dir.exists()

    def check_untouched(self) -> None:
        assert self.dir.is_dir()

    @property
    def locked_path(self) -> Path:
        return self.dir


class UnlinkRunning(Case):
    """fs.unlink of a running .exe (5: the image cannot be deleted while it runs)."""

    codes = frozenset({ACCESS_DENIED})

    def setup(self) -> None:
        self.held = self.tmp / "Scripts" / "tool.exe"
        self.held.parent.mkdir(parents=True)

    def lock(self) -> Lock:
        return RunningExe(self.held)

    def run(self) -> object:
        return fs.unlink(self.held)

    def check_done(self, result: object) -> None:
        assert not self.held.exists()

    def check_untouched(self) -> None:
        assert self.held.read_bytes() == self.launcher

    launcher = b""  # the bytes of the running program, once it is running


class ReplaceRunning(UnlinkRunning):
    """fs.replace onto a running .exe (5)."""

    def setup(self) -> None:
        super().setup()
        self.src = write(self.tmp / "new-tool.exe", b"new launcher")

    def run(self) -> object:
        return fs.replace(self.src, self.held)

    def check_done(self, result: object) -> None:
        assert self.held.read_bytes() == b"new launcher"
        assert not self.src.exists()

    def check_untouched(self) -> None:
        super().check_untouched()
        assert self.src.read_bytes() == b"new launcher"


class OpenForWriteMapped(Case):
    """fs.open_for_write truncating a memory-mapped file (1224). ``os.open`` reports it as a
    bare EINVAL; the layer asks again through CreateFileW to see the Windows code."""

    codes = frozenset({USER_MAPPED_FILE})

    def setup(self) -> None:
        self.held = write(self.tmp / "site" / "data.bin", b"mapped data")

    def lock(self) -> Lock:
        return Mapped(self.held)

    def run(self) -> object:
        with fs.open_for_write(self.held) as writer:
            return writer.write(b"new data")

    def check_done(self, result: object) -> None:
        assert result == len(b"new data")
        assert self.held.read_bytes() == b"new data"

    def check_untouched(self) -> None:
        assert self.held.read_bytes() == b"mapped data"


class CopyByteLocked(Case):
    """fs.copy of a file whose bytes another program locked (ReadFile: 33). The C runtime
    reports it as EACCES; the layer asks again through ReadFile to see the Windows code."""

    codes = frozenset({LOCK_VIOLATION})

    def setup(self) -> None:
        self.held = write(self.tmp / "cache" / "mod.pyd", b"locked module")
        self.dst = self.tmp / "stage" / "mod.pyd"
        self.dst.parent.mkdir()

    def lock(self) -> Lock:
        return ByteRangeLock(self.held)

    def run(self) -> object:
        return fs.copy(self.held, self.dst)

    def check_done(self, result: object) -> None:
        assert self.dst.read_bytes() == b"locked module"

    def check_untouched(self) -> None:
        assert self.held.read_bytes() == b"locked module"


CASES: list[type[Case]] = [
    ReplaceScanned,
    UnlinkScanned,
    RmtreeScanned,
    WriteAtomicScanned,
    RmdirDeletePending,
    UnlinkRunning,
    ReplaceRunning,
    OpenForWriteMapped,
    CopyByteLocked,
]
cases = pytest.mark.parametrize("case_cls", CASES, ids=lambda c: c.__name__)


def locked_path(case: Case) -> Path:
    """The path the operation fails on: the held file, or the directory it keeps from going."""
    return getattr(case, "locked_path", case.held)


def prepare(case_cls: type[Case], tmp_path: Path, locks: list[Lock]) -> Case:
    case = case_cls(tmp_path)
    case.setup()
    lock = case.lock()
    locks.append(lock)
    lock.take()
    if isinstance(case, UnlinkRunning):
        case.launcher = case.held.read_bytes()
    return case


def episodes_on(stats: fs.Stats, path: Path) -> list[fs.LockEpisode]:
    want = os.path.normcase(str(path))
    return [e for e in stats.episodes() if want in (os.path.normcase(p) for p in e.paths)]


@cases
def test_lock_released_in_time_is_waited_out(
    case_cls: type[Case], tmp_path: Path, locks: list[Lock]
) -> None:
    case = prepare(case_cls, tmp_path, locks)
    with fs.settings(policy=PATIENT, fresh_stats=True) as rt:
        timer = release_later(locks[0])
        result = case.run()
        timer.join()
    case.check_done(result)
    (episode,) = episodes_on(rt.stats, locked_path(case))
    assert episode.resolved
    assert episode.attempts >= 2
    assert 0 < episode.waited < PATIENT.timeout
    assert getattr(episode.error, "winerror", None) in case.codes, episode.error


@cases
def test_lock_held_past_the_budget_raises_and_changes_nothing(
    case_cls: type[Case], tmp_path: Path, locks: list[Lock]
) -> None:
    case = prepare(case_cls, tmp_path, locks)
    with (
        fs.settings(timeout=SMALL_BUDGET, fresh_stats=True) as rt,
        pytest.raises(LockTimeoutError) as info,
    ):
        case.run()
    err = info.value
    path = str(locked_path(case))
    assert os.path.normcase(path) in {os.path.normcase(p) for p in err.paths}
    assert path in str(err)
    assert err.winerror in case.codes, err
    assert SMALL_BUDGET <= err.elapsed < SMALL_BUDGET + 10
    assert err.attempts >= 2
    (episode,) = episodes_on(rt.stats, locked_path(case))
    assert not episode.resolved
    locks[0].release()  # then look: a byte-range lock would keep even reading out
    case.check_untouched()


def test_running_exe_held_for_ever_goes_to_the_trash(tmp_path: Path, locks: list[Lock]) -> None:
    """Deleting a running program times out, but renaming it works: unlink(trash=) moves it
    into the trash, and empty_trash removes it once the program has exited."""
    scripts, trash = tmp_path / "Scripts", tmp_path / "trash"
    scripts.mkdir()
    exe = RunningExe(scripts / "tool.exe")
    locks.append(exe)
    exe.take()
    with fs.settings(timeout=SMALL_BUDGET, fresh_stats=True) as rt:
        moved = fs.unlink(exe.path, trash=trash)
    assert moved is not None
    assert os.path.dirname(moved) == str(trash)
    assert os.path.basename(moved).startswith("tool.exe.")
    assert not exe.path.exists()
    assert exe.running  # renamed under a running program, not killed
    (episode,) = episodes_on(rt.stats, exe.path)
    assert not episode.resolved
    assert getattr(episode.error, "winerror", None) == ACCESS_DENIED
    # Still running: the one attempt empty_trash makes leaves it there.
    assert fs.empty_trash(trash) == [moved]
    exe.release()
    # Each later command makes one attempt; the first after the exit normally succeeds, but the
    # system may need a moment to let go of a program's image, so allow a few (generous bound).
    attempts = 1
    while fs.empty_trash(trash) and attempts < 50:
        attempts += 1
        threading.Event().wait(0.2)
    assert not trash.exists(), f"still in the trash after {attempts} attempts"


# --- the real command, upgrading a package whose extension module is held ------------------------


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def build_wheel(directory: Path, name: str, version: str, files: Mapping[str, bytes]) -> Path:
    """A pure wheel with METADATA, WHEEL and a correct RECORD, written by make_wheel."""
    dist_info = f"{name}-{version}.dist-info"
    content = dict(files)
    content[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    ).encode()
    content[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    for path, body in content.items():
        writer.writerow((path, f"sha256={_b64(hashlib.sha256(body).digest())}", len(body)))
    writer.writerow((f"{dist_info}/RECORD", "", ""))
    content[f"{dist_info}/RECORD"] = out.getvalue().encode()
    directory.mkdir(parents=True, exist_ok=True)
    return make_wheel(directory / f"{name}-{version}-py3-none-any.whl", content)


def stalwart_command() -> list[str]:
    exe = Path(sys.executable).with_name("stalwart.exe")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "stalwart"]


def run_cli(tmp: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STALWART_", "PYTHON"))}
    env["STALWART_CACHE_DIR"] = str(tmp / "cache")
    env["CI"] = "1"  # no progress bar
    return subprocess.run(
        [*stalwart_command(), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@dataclass
class Upgrade:
    venv: Path
    held: Path  # the installed extension module of version 1.0
    new: Path  # the wheel of version 2.0


@pytest.fixture
def upgrade(tmp_path: Path) -> Upgrade:
    """A venv (``python -m venv --without-pip``) with lockdemo 1.0 installed by the CLI."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheels = tmp_path / "wheels"
    old = build_wheel(
        wheels,
        "lockdemo",
        "1.0",
        {"lockdemo/__init__.py": b"V = 1\n", "lockdemo/_speedups.pyd": b"binary 1"},
    )
    new = build_wheel(
        wheels,
        "lockdemo",
        "2.0",
        {"lockdemo/__init__.py": b"V = 2\n", "lockdemo/_speedups.pyd": b"binary 2"},
    )
    proc = run_cli(tmp_path, "install", "--python", venv, old)
    assert proc.returncode == 0, proc.stderr
    held = venv / "Lib" / "site-packages" / "lockdemo" / "_speedups.pyd"
    assert held.read_bytes() == b"binary 1"
    return Upgrade(venv, held, new)


def release_once_committing(
    lock: Lock, state_dir: Path, done: threading.Event, hold: float = 0.5
) -> threading.Thread:
    """Release ``lock`` ``hold`` seconds after stalwart wrote its journal, i.e. once its commit
    has started and is about to move the held file: so it really meets the lock."""

    def watch() -> None:
        while not done.is_set():
            if list(state_dir.glob("txn-*/journal.json")):
                done.wait(hold)
                break
            done.wait(0.01)
        lock.release()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_cli_upgrade_waits_for_a_held_extension_module(
    upgrade: Upgrade, tmp_path: Path, locks: list[Lock]
) -> None:
    lock = ScannerHandle(upgrade.held)
    locks.append(lock)
    lock.take()
    done = threading.Event()
    watcher = release_once_committing(lock, upgrade.held.parents[1] / ".stalwart", done)
    try:
        proc = run_cli(tmp_path, "install", "-v", "--python", upgrade.venv, upgrade.new)
    finally:
        done.set()
        watcher.join(timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert upgrade.held.read_bytes() == b"binary 2"
    assert (upgrade.held.parent / "__init__.py").read_bytes() == b"V = 2\n"
    # -v lists each lock episode: the move of the held module out of the way, which waited.
    episode = re.search(
        rf"lock: rename {re.escape(str(upgrade.held))} -> .*: (\d+) attempts, (\d+) ms \(ok\)",
        proc.stdout,
        re.IGNORECASE,  # Windows paths: the target interpreter may spell the case differently
    )
    assert episode is not None, proc.stdout
    assert int(episode[1]) >= 2
    assert int(episode[2]) > 0


def test_cli_upgrade_blocked_for_ever_exits_3_and_changes_nothing(
    upgrade: Upgrade, tmp_path: Path, locks: list[Lock]
) -> None:
    before = snapshot(upgrade.venv)
    lock = ScannerHandle(upgrade.held)
    locks.append(lock)
    lock.take()
    try:
        proc = run_cli(
            tmp_path, "install", "--lock-timeout", "1", "--python", upgrade.venv, upgrade.new
        )
    finally:
        lock.release()
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert without_banner(proc.stderr).startswith("error: ")
    assert str(upgrade.held).casefold() in proc.stderr.casefold()
    assert f"WinError {SHARING_VIOLATION}" in proc.stderr
    assert snapshot(upgrade.venv) == before
    assert upgrade.held.read_bytes() == b"binary 1"
