"""A corpus of hostile wheels: every one is refused, loudly, and leaves no trace.

Each case is a real wheel file on disk (built with :mod:`wheelfactory`), thrown at
:func:`stalwart.install.install` in-process and at the real ``stalwart`` command in a subprocess,
against a real virtual environment made with ``python -m venv --without-pip``. For every case:

- the right exception class (in-process), exit code 1 (CLI);
- the message names the wheel file and the rule it breaks; stderr is one paragraph that starts
  with ``error:`` and holds no traceback;
- the whole directory around the venv is byte-identical afterwards: nothing installed, no
  ``.stalwart`` staging left behind, nothing written outside (``evil/`` never appears).

Then the uninstall side: a RECORD edited after installation to point outside the environment
must make ``stalwart uninstall`` refuse and delete nothing. And ``--no-verify-record`` accepts a
stale RECORD but writes a correct one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import wheelfactory
from platforms import posix_only
from stalwart.environment import Environment, query_environment
from stalwart.errors import (
    IncompatibleWheelError,
    InvalidWheelError,
    UninstallError,
    UnsafeArchiveError,
    WheelError,
)
from stalwart.install import InstallOptions, install
from stalwart.uninstall import uninstall
from stalwart.wheel.archive import DEFAULT_LIMITS, Limits
from stalwart.wheel.wheelfile import open_wheel
from treesnap import snapshot
from venvs import cli_environ, make_venv, without_banner
from wheelfactory import Member, build_zip, make_wheel, record_bytes, record_hash, record_row

# Every case runs against a venv with the POSIX layout, and "no traces" includes no .stalwart/
# (Windows keeps .stalwart/lock, the file its environment lock is taken on).
pytestmark = posix_only("POSIX venv layout (<base>/venv/lib/pythonX.Y/site-packages), flock")

STALWART = Path(sys.executable).with_name("stalwart")
NAME, VERSION = "hostile", "1.0"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
DATA_DIR = f"{NAME}-{VERSION}.data"
FILENAME = f"{NAME}-{VERSION}-py3-none-any.whl"

# The venv lives at <base>/venv; site-packages is <base>/venv/lib/pythonX.Y/site-packages, so
# four levels up from site-packages is <base>, and three levels up from bin/ is above <base>.
UP_FROM_SITE = "../../../../"
EVIL = "evil"


# -- building wheels ------------------------------------------------------------------------------


def metadata(name: str = NAME, version: str = VERSION) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test\n".encode()


def wheel_meta(
    wheel_version: str = "1.0", purelib: str = "true", tag: str = "py3-none-any"
) -> bytes:
    return (
        f"Wheel-Version: {wheel_version}\nGenerator: test\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n"
    ).encode()


def base_files(dist_info: str = DIST_INFO) -> dict[str, bytes]:
    """An honest wheel's content, without RECORD."""
    return {
        f"{NAME}/__init__.py": b"def main():\n    return 0\n",
        f"{NAME}/data.txt": b"some data\n",
        f"{dist_info}/METADATA": metadata(),
        f"{dist_info}/WHEEL": wheel_meta(),
    }


def with_record(
    files: Mapping[str, bytes], dist_info: str = DIST_INFO, hash_name: str = "sha256"
) -> dict[str, bytes]:
    """``files`` plus a RECORD that lists every one of them correctly."""
    return wheelfactory.with_record(files, dist_info, hash_name)


def members_with_record(files: Mapping[str, bytes], *extra: Member) -> list[Member]:
    """Honest members for ``files`` plus ``extra`` ones; RECORD lists all of them honestly.

    So that the only rule a zip-level case breaks is the zip-level one.
    """
    rows = [record_row(name, data) for name, data in files.items()]
    rows += [
        record_row(m.name if isinstance(m.name, str) else m.name.decode("utf-8", "replace"), m.data)
        for m in extra
    ]
    rows.append((f"{DIST_INFO}/RECORD", "", ""))
    honest = [Member(name, data) for name, data in files.items()]
    return [*honest, *extra, Member(f"{DIST_INFO}/RECORD", record_bytes(rows))]


@dataclass(frozen=True)
class Where:
    """Where a case builds its wheel, and the directory the venv lives in."""

    dir: Path
    base: Path

    def path(self, filename: str = FILENAME) -> Path:
        return self.dir / filename


def _wheel(files: Mapping[str, bytes], filename: str = FILENAME) -> Callable[[Where], Path]:
    return lambda w: make_wheel(w.path(filename), files)


def _zip(*extra: Member, files: Mapping[str, bytes] | None = None) -> Callable[[Where], Path]:
    return lambda w: build_zip(w.path(), members_with_record(files or base_files(), *extra))


def _mutated(change: Callable[[dict[str, bytes]], None]) -> Callable[[Where], Path]:
    """An honest wheel (with RECORD) that ``change`` edits afterwards."""

    def build(w: Where) -> Path:
        files = with_record(base_files())
        change(files)
        return make_wheel(w.path(), files)

    return build


def _absolute(w: Where) -> Path:
    target = f"{w.base}/{EVIL}/pwned.py"
    return build_zip(w.path(), members_with_record(base_files(), Member(target, b"owned = 1\n")))


def _two_dist_infos(w: Where) -> Path:
    files = base_files()
    files["other-1.0.dist-info/METADATA"] = metadata("other")
    return make_wheel(w.path(), with_record(files))


def _no_dist_info(w: Where) -> Path:
    return make_wheel(w.path(), {f"{NAME}/__init__.py": b"", f"{NAME}/x.py": b""})


def _dist_info_mismatch(w: Where) -> Path:
    files = base_files("other-1.0.dist-info")
    return make_wheel(w.path(), with_record(files, "other-1.0.dist-info"))


def _without(name: str) -> Callable[[Where], Path]:
    def build(w: Where) -> Path:
        files = base_files()
        del files[f"{DIST_INFO}/{name}"]
        return make_wheel(w.path(), with_record(files))

    return build


def _replacing(member: str, data: bytes) -> Callable[[Where], Path]:
    def build(w: Where) -> Path:
        files = base_files()
        files[member] = data
        return make_wheel(w.path(), with_record(files))

    return build


def _weak_hash(hash_name: str) -> Callable[[Where], Path]:
    return lambda w: make_wheel(w.path(), with_record(base_files(), hash_name=hash_name))


def _tampered(files: dict[str, bytes]) -> None:
    """Content changed after RECORD was written (same size, different bytes)."""
    files[f"{NAME}/data.txt"] = b"SOME DATA\n"


def _tampered_many(w: Where) -> Path:
    """Enough files for staging to run in parallel threads; one was tampered with."""
    files = base_files()
    for i in range(80):
        files[f"{NAME}/mod{i:02d}.py"] = f"VALUE = {i}\n".encode()
    files = with_record(files)
    files[f"{NAME}/mod57.py"] = b"VALUE = 0\n\n"
    return make_wheel(w.path(), files)


def _wrong_size(files: dict[str, bytes]) -> None:
    rows = list(csv.reader(io.StringIO(files[f"{DIST_INFO}/RECORD"].decode())))
    for row in rows:
        if row[0] == f"{NAME}/data.txt":
            row[2] = str(int(row[2]) + 1)
    files[f"{DIST_INFO}/RECORD"] = record_bytes([(a, b, c) for a, b, c in rows])


def _not_in_record(files: dict[str, bytes]) -> None:
    files[f"{NAME}/smuggled.py"] = b"import os\n"


def _record_lists_missing(files: dict[str, bytes]) -> None:
    del files[f"{NAME}/data.txt"]


def _data_dir(sub: str) -> Callable[[Where], Path]:
    def build(w: Where) -> Path:
        files = base_files()
        files[f"{DATA_DIR}/{sub}"] = b"owned = 1\n"
        return make_wheel(w.path(), with_record(files))

    return build


def _incompatible(w: Where) -> Path:
    tag = "cp27-cp27mu-manylinux1_i686"
    files = base_files()
    files[f"{DIST_INFO}/WHEEL"] = wheel_meta(purelib="false", tag=tag)
    return make_wheel(w.path(f"{NAME}-{VERSION}-{tag}.whl"), with_record(files))


def _entry_point(name: str) -> Callable[[Where], Path]:
    def build(w: Where) -> Path:
        files = base_files()
        files[f"{DIST_INFO}/entry_points.txt"] = (
            f"[console_scripts]\n{name} = {NAME}:main\n".encode()
        )
        return make_wheel(w.path(), with_record(files))

    return build


def _planted_journal(w: Where) -> Path:
    """A journal planted in site-packages/.stalwart would be replayed by the next recovery."""
    files = base_files()
    files[".stalwart/txn-0/journal.json"] = (
        b'{"format": 1, "mkdirs": [], "backups": [], "prune": [],'
        b' "installs": [["/tmp/stolen", "/tmp/victim.txt"]]}'
    )
    return make_wheel(w.path(), with_record(files))


def _zip_bomb(w: Where) -> Path:
    """8 MiB of zeros deflate to ~8 KiB, and the headers claim they inflate to 1 GiB."""
    bomb = Member(f"{NAME}/bomb.bin", bytes(8 << 20), size=1 << 30)
    return build_zip(w.path(), members_with_record(base_files(), bomb))


def _honest_bomb(w: Where) -> Path:
    """A truthful 8 MiB of zeros: ratio ~1000, refused under a stricter ratio limit."""
    return build_zip(
        w.path(), members_with_record(base_files(), Member(f"{NAME}/bomb.bin", bytes(8 << 20)))
    )


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Where], Path]
    error: type[WheelError]
    says: tuple[str, ...]  # substrings of the message: the rule broken
    cli: bool = True  # also run through the CLI subprocess
    at_extraction: bool = False  # validation passes; staging must catch it
    limits: Limits = DEFAULT_LIMITS  # in-process only


CASES = [
    # -- zip level -----------------------------------------------------------------------------
    Case(
        "duplicate-names",
        _zip(Member(f"{NAME}/__init__.py", b"import os; os.system('evil')\n")),
        UnsafeArchiveError,
        (f"'{NAME}/__init__.py'", "duplicate entry name"),
    ),
    Case(
        "dotdot-traversal",
        _zip(Member(f"{UP_FROM_SITE}{EVIL}/pwned.py", b"owned = 1\n")),
        UnsafeArchiveError,
        (f"{EVIL}/pwned.py", "has a '..' path component"),
    ),
    Case("absolute-path", _absolute, UnsafeArchiveError, ("is an absolute path",)),
    Case(
        "symlink-entry",
        _zip(Member(f"{NAME}/passwd", b"/etc/passwd", unix_mode=0o120777)),
        UnsafeArchiveError,
        (f"'{NAME}/passwd'", "is a symbolic link"),
    ),
    Case(
        "encrypted",
        _zip(Member(f"{NAME}/secret.py", b"x = 1\n", flags=0x1)),
        UnsafeArchiveError,
        (f"'{NAME}/secret.py'", "is encrypted"),
    ),
    Case(
        "crc-mismatch",
        _zip(Member(f"{NAME}/crc.py", b"x = 1\n", crc=0xDEADBEEF)),
        UnsafeArchiveError,
        (f"'{NAME}/crc.py'", "CRC-32 mismatch"),
        at_extraction=True,
    ),
    Case(
        "zip-bomb-ratio",
        _zip_bomb,
        UnsafeArchiveError,
        (f"'{NAME}/bomb.bin'", "compression ratio", "zip bomb"),
    ),
    Case(
        "zip-bomb-ratio-strict-limit",
        _honest_bomb,
        UnsafeArchiveError,
        (f"'{NAME}/bomb.bin'", "compression ratio", "exceeds the limit of 200 (zip bomb?)"),
        cli=False,
        limits=Limits(max_ratio=200),
    ),
    Case(
        "case-collision",
        _zip(Member(f"{NAME}/Data.txt", b"other\n")),
        UnsafeArchiveError,
        (f"'{NAME}/Data.txt'", "collides case-insensitively", f"'{NAME}/data.txt'"),
    ),
    Case(
        "backslash",
        _zip(Member(f"{NAME}\\..\\..\\evil.py", b"x = 1\n")),
        UnsafeArchiveError,
        ("name contains a backslash",),
    ),
    Case(
        "nul-in-name",
        _zip(Member(f"{NAME}/evil\x00.py", b"x = 1\n")),
        UnsafeArchiveError,
        ("name contains a control character",),
    ),
    # -- wheel spec level ----------------------------------------------------------------------
    Case(
        "no-dist-info",
        _no_dist_info,
        InvalidWheelError,
        ("expected exactly one top-level .dist-info directory, found none",),
    ),
    Case(
        "two-dist-infos",
        _two_dist_infos,
        InvalidWheelError,
        ("expected exactly one top-level .dist-info", DIST_INFO, "other-1.0.dist-info"),
    ),
    Case(
        "dist-info-name-mismatch",
        _dist_info_mismatch,
        InvalidWheelError,
        ("other-1.0.dist-info does not match the distribution name 'hostile'",),
    ),
    Case(
        "metadata-name-mismatch",
        _replacing(f"{DIST_INFO}/METADATA", metadata(name="other")),
        InvalidWheelError,
        ("METADATA Name 'other' does not match",),
    ),
    Case(
        "metadata-version-mismatch",
        _replacing(f"{DIST_INFO}/METADATA", metadata(version="2.0")),
        InvalidWheelError,
        ("METADATA Version '2.0' does not match the filename's 1.0",),
    ),
    Case("missing-wheel", _without("WHEEL"), InvalidWheelError, (f"{DIST_INFO}/WHEEL is missing",)),
    Case(
        "wheel-version-2",
        _replacing(f"{DIST_INFO}/WHEEL", wheel_meta(wheel_version="2.0")),
        InvalidWheelError,
        ("Wheel-Version 2.0 is not supported",),
    ),
    Case(
        "bad-root-is-purelib",
        _replacing(f"{DIST_INFO}/WHEEL", wheel_meta(purelib="maybe")),
        InvalidWheelError,
        ("Root-Is-Purelib must be true or false", "'maybe'"),
    ),
    Case(
        "missing-record",
        lambda w: make_wheel(w.path(), base_files()),
        InvalidWheelError,
        (f"{DIST_INFO}/RECORD is missing",),
    ),
    Case(
        "file-not-in-record",
        _mutated(_not_in_record),
        InvalidWheelError,
        (f"{NAME}/smuggled.py is in the archive but not in RECORD",),
    ),
    Case(
        "record-lists-missing-file",
        _mutated(_record_lists_missing),
        InvalidWheelError,
        (f"RECORD lists {NAME}/data.txt, which is not in the archive",),
    ),
    Case(
        "record-hash-mismatch",
        _mutated(_tampered),
        InvalidWheelError,
        (f"{NAME}/data.txt", "content does not match its RECORD hash"),
        at_extraction=True,
    ),
    Case(
        "record-hash-mismatch-parallel",
        _tampered_many,
        InvalidWheelError,
        (f"{NAME}/mod57.py", "content does not match its RECORD hash"),
        cli=False,
        at_extraction=True,
    ),
    Case(
        "record-size-mismatch",
        _mutated(_wrong_size),
        InvalidWheelError,
        (f"{NAME}/data.txt", "size 10 does not match RECORD's 11"),
        at_extraction=True,
    ),
    Case(
        "record-md5",
        _weak_hash("md5"),
        InvalidWheelError,
        (f"RECORD hashes {NAME}/__init__.py with md5; sha256 or stronger is required",),
    ),
    Case(
        "record-sha1",
        _weak_hash("sha1"),
        InvalidWheelError,
        (f"RECORD hashes {NAME}/__init__.py with sha1; sha256 or stronger is required",),
    ),
    Case(
        "unknown-data-dir",
        _data_dir(f"{EVIL}/pwned.py"),
        InvalidWheelError,
        (f"{DATA_DIR}/{EVIL}/pwned.py", "unknown data directory 'evil'"),
    ),
    Case(
        "data-purelib-dotdot",
        _data_dir(f"purelib/{UP_FROM_SITE}{EVIL}/pwned.py"),
        UnsafeArchiveError,
        (f"{DATA_DIR}/purelib/../", "has a '..' path component"),
    ),
    Case(
        "data-purelib-shadows-root-file",
        _data_dir(f"purelib/{NAME}/__init__.py"),
        InvalidWheelError,
        (f"{DATA_DIR}/purelib/{NAME}/__init__.py", "go to the same path"),
        cli=False,
    ),
    Case(
        "incompatible-tag",
        _incompatible,
        IncompatibleWheelError,
        ("cp27-cp27mu-manylinux1_i686", "do not fit the target interpreter"),
    ),
    Case(
        "invalid-filename",
        _wheel(with_record(base_files()), filename=f"{NAME}.whl"),
        InvalidWheelError,
        ("invalid wheel filename",),
    ),
    Case(
        "invalid-filename-version",
        _wheel(with_record(base_files()), filename=f"{NAME}-1.0-py3-none.whl"),
        InvalidWheelError,
        ("invalid wheel filename",),
        cli=False,
    ),
    Case(
        "console-script-dotdot",
        _entry_point(f"../../{EVIL}/pwned"),
        InvalidWheelError,
        ("entry_points.txt", "'../../evil/pwned'", "contains a path separator"),
    ),
    Case(
        "console-script-code-injection",
        lambda w: make_wheel(
            w.path(),
            with_record(
                {
                    **base_files(),
                    f"{DIST_INFO}/entry_points.txt": b"[console_scripts]\nx = os;os.system:main\n",
                }
            ),
        ),
        InvalidWheelError,
        ("entry_points.txt", "module 'os;os.system' is not a dotted Python name"),
        cli=False,
    ),
    Case(
        "planted-journal",
        _planted_journal,
        InvalidWheelError,
        (".stalwart/txn-0/journal.json", "stalwart's own state directory"),
    ),
]


# -- the environment ------------------------------------------------------------------------------


def assert_same_tree(before: dict[str, tuple[object, ...]], after: dict[str, tuple[object, ...]]):
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert (added, removed, changed) == ([], [], [])


@dataclass
class Venv:
    base: Path
    root: Path
    python: Path
    env: Environment

    @property
    def site_packages(self) -> Path:
        return Path(self.env.site_packages)


def _venv_at(base: Path) -> Venv:
    root = make_venv(base / "venv").root
    python = root / "bin" / "python"
    return Venv(base, root, python, query_environment(str(python), use_cache=False))


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return cli_environ(tmp_path_factory.mktemp("stalwart-cache"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    made = _venv_at(tmp_path_factory.mktemp("hostile"))
    assert made.site_packages.is_relative_to(made.root)
    assert os.path.relpath(made.base, made.site_packages) == UP_FROM_SITE.rstrip("/").replace(
        "/", os.sep
    ), "the cases assume <base>/venv/lib/pythonX.Y/site-packages"
    return made


@pytest.fixture
def fresh_venv(tmp_path: Path) -> Venv:
    return _venv_at(tmp_path)


def run_cli(cli_env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STALWART), *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
        check=False,
    )


def assert_one_paragraph_error(stderr: str) -> None:
    stderr = without_banner(stderr)
    assert stderr.startswith("error: "), stderr
    assert "Traceback" not in stderr, stderr
    assert "\n\n" not in stderr.strip(), stderr


@pytest.fixture
def where(venv: Venv, request: pytest.FixtureRequest) -> Iterator[Where]:
    case_dir = venv.base / "wheels" / request.node.name
    case_dir.mkdir(parents=True)
    yield Where(case_dir, venv.base)


def _no_traces(venv: Venv, before: dict[str, tuple[object, ...]]) -> None:
    assert_same_tree(before, snapshot(venv.base))
    assert not (venv.site_packages / ".stalwart").exists()
    assert not (venv.base / EVIL).exists()
    assert not (venv.base.parent / EVIL).exists()


# -- the corpus -----------------------------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 24
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(c.cli for c in CASES) >= 8


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_in_process(case: Case, venv: Venv, where: Where) -> None:
    wheel = case.build(where)
    if case.at_extraction:
        open_wheel(
            wheel, limits=case.limits
        ).close()  # passes validation: only extraction can catch it
    phases: list[str] = []
    before = snapshot(venv.base)
    with pytest.raises(case.error) as caught:
        install(
            [wheel],
            venv.env,
            InstallOptions(lock_wait=10, limits=case.limits),
            progress=lambda phase, _done, _total: phases.append(phase),
        )
    message = str(caught.value)
    assert type(caught.value) is case.error
    assert caught.value.wheel == str(wheel)
    assert message.startswith(f"{wheel}: "), message
    for part in case.says:
        assert part in message, (part, message)
    if case.at_extraction:
        # Extracting: into the stage, or into the cache of unpacked wheels on the way there.
        assert {"staging", "unpacking"} & {p.split()[0] for p in phases}, "found extracting?"
    assert "committing" not in phases
    _no_traces(venv, before)


CLI_CASES = [c for c in CASES if c.cli]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_refused_by_cli(case: Case, venv: Venv, where: Where, cli_env: dict[str, str]) -> None:
    wheel = case.build(where)
    before = snapshot(venv.base)
    proc = run_cli(cli_env, "install", "--python", venv.python, "--lock-wait", "10", wheel)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert_one_paragraph_error(proc.stderr)
    assert without_banner(proc.stderr).startswith(f"error: {wheel}: "), proc.stderr
    for part in case.says:
        assert part in proc.stderr, (part, proc.stderr)
    _no_traces(venv, before)


# What --no-verify-record relaxes: RECORD may be stale. Nothing else.
STALE_RECORD_RULES = {
    "file-not-in-record",
    "record-lists-missing-file",
    "record-hash-mismatch",
    "record-hash-mismatch-parallel",
    "record-size-mismatch",
    "record-md5",
    "record-sha1",
}
STRICT_CASES = [c for c in CASES if c.id not in STALE_RECORD_RULES]


@pytest.mark.parametrize("case", STRICT_CASES, ids=[c.id for c in STRICT_CASES])
def test_still_refused_without_record_verification(case: Case, venv: Venv, where: Where) -> None:
    wheel = case.build(where)
    before = snapshot(venv.base)
    with pytest.raises(case.error) as caught:
        install(
            [wheel], venv.env, InstallOptions(lock_wait=10, limits=case.limits, verify_record=False)
        )
    for part in case.says:
        assert part in str(caught.value), (part, str(caught.value))
    _no_traces(venv, before)


def test_batch_with_one_hostile_wheel_installs_nothing(
    venv: Venv, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A good wheel next to a bad one: the command is all or nothing."""
    good_dir, bad_dir = tmp_path / "good", tmp_path / "bad"
    good_dir.mkdir()
    bad_dir.mkdir()
    files = with_record(
        {
            "innocent/__init__.py": b"",
            "innocent-1.0.dist-info/METADATA": metadata("innocent"),
            "innocent-1.0.dist-info/WHEEL": wheel_meta(),
        },
        "innocent-1.0.dist-info",
    )
    good = make_wheel(good_dir / "innocent-1.0-py3-none-any.whl", files)
    bad = _mutated(_tampered)(Where(bad_dir, venv.base))
    before = snapshot(venv.base)
    proc = run_cli(cli_env, "install", "--python", venv.python, good, bad)
    assert proc.returncode == 1
    assert_one_paragraph_error(proc.stderr)
    assert str(bad) in proc.stderr
    assert "content does not match its RECORD hash" in proc.stderr
    _no_traces(venv, before)


# -- uninstall with a hostile RECORD --------------------------------------------------------------


def _install_honest(v: Venv, tmp_path: Path, cli_env: dict[str, str]) -> Path:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = make_wheel(wheels / FILENAME, with_record(base_files()))
    proc = run_cli(cli_env, "install", "-q", "--python", v.python, wheel)
    assert proc.returncode == 0, proc.stderr
    record = v.site_packages / DIST_INFO / "RECORD"
    assert record.is_file()
    return record


def _append_row(record: Path, path: str) -> None:
    with record.open("a", encoding="utf-8") as f:
        f.write(f"{path},,\n")


@pytest.mark.parametrize("form", ["relative", "absolute", "through-symlink"])
def test_uninstall_refuses_record_pointing_outside(
    form: str, fresh_venv: Venv, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    v = fresh_venv
    record = _install_honest(v, tmp_path, cli_env)
    outside = v.base / "outside.txt"
    outside.write_bytes(b"precious\n")
    if form == "relative":
        entry = f"{UP_FROM_SITE}outside.txt"
        assert (v.site_packages / entry).resolve() == outside.resolve()
    elif form == "absolute":
        entry = str(outside)
    else:
        # A directory symlink inside site-packages that leads out of the environment.
        (v.site_packages / "escape").symlink_to(v.base, target_is_directory=True)
        entry = "escape/outside.txt"
    _append_row(record, entry)
    before = snapshot(v.base)

    proc = run_cli(cli_env, "uninstall", "--python", v.python, NAME)
    assert proc.returncode == 1, proc.stderr
    assert_one_paragraph_error(proc.stderr)
    assert f"refusing to uninstall {NAME} {VERSION}" in proc.stderr
    assert f"RECORD entry {entry!r} resolves outside the environment" in proc.stderr
    assert outside.read_bytes() == b"precious\n"
    assert_same_tree(before, snapshot(v.base))

    # In-process too: the specific error class, and still nothing removed.
    with pytest.raises(UninstallError, match="resolves outside the environment"):
        uninstall([NAME], v.env, lock_wait=10)
    assert outside.read_bytes() == b"precious\n"
    assert_same_tree(before, snapshot(v.base))


@pytest.mark.parametrize(
    "entry",
    [
        "../../../bin",  # the venv's bin/, interpreter included
        ".",  # site-packages itself
        "../../..",  # the venv root
        f"{NAME}/",  # the package directory, as some installers copy "pkg/" rows
    ],
)
def test_uninstall_never_deletes_a_directory_record_lists(
    entry: str, fresh_venv: Venv, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A directory in RECORD is not a licence to delete what is in it: it goes only if empty."""
    v = fresh_venv
    pristine = snapshot(v.base)
    record = _install_honest(v, tmp_path, cli_env)
    _append_row(record, entry)

    proc = run_cli(cli_env, "uninstall", "--python", v.python, NAME)
    assert proc.returncode == 0, proc.stderr
    after = snapshot(v.base)
    assert_same_tree(pristine, {k: x for k, x in after.items() if k.split(os.sep)[0] != "wheels"})
    assert (v.root / "bin" / "python").exists()


def test_uninstall_keeps_user_files_in_a_listed_directory(
    fresh_venv: Venv, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    v = fresh_venv
    record = _install_honest(v, tmp_path, cli_env)
    _append_row(record, NAME)
    mine = v.site_packages / NAME / "notes.txt"
    mine.write_text("mine\n")
    proc = run_cli(cli_env, "uninstall", "--python", v.python, NAME)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (v.site_packages / NAME).iterdir()) == ["notes.txt"]
    assert not (v.site_packages / DIST_INFO).exists()


def test_uninstall_keeps_the_interpreter(
    fresh_venv: Venv, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    v = fresh_venv
    record = _install_honest(v, tmp_path, cli_env)
    _append_row(record, "../../../bin/python")
    proc = run_cli(cli_env, "uninstall", "--python", v.python, NAME)
    assert proc.returncode == 1
    assert "'../../../bin/python' is the environment's interpreter" in proc.stderr
    assert os.path.lexists(v.root / "bin" / "python")


# -- --no-verify-record ---------------------------------------------------------------------------


def _stale_record_wheel(directory: Path) -> Path:
    """RECORD was written, then one file changed and another was added."""
    files = with_record(base_files())
    files[f"{NAME}/data.txt"] = b"changed after RECORD was written\n"
    files[f"{NAME}/late.py"] = b"LATE = True\n"
    return make_wheel(directory / FILENAME, files)


def _rows(record: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(record.read_text("utf-8"))))


def test_no_verify_record_writes_a_correct_record(
    fresh_venv: Venv, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    v = fresh_venv
    wheel = _stale_record_wheel(tmp_path)

    before = snapshot(v.base)
    refused = run_cli(cli_env, "install", "--python", v.python, wheel)
    assert refused.returncode == 1
    assert f"{NAME}/late.py is in the archive but not in RECORD" in refused.stderr
    assert_same_tree(before, snapshot(v.base))

    proc = run_cli(cli_env, "install", "--no-verify-record", "--python", v.python, wheel)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    package = v.site_packages / NAME
    assert (package / "data.txt").read_bytes() == b"changed after RECORD was written\n"
    assert (package / "late.py").read_bytes() == b"LATE = True\n"

    rows = _rows(v.site_packages / DIST_INFO / "RECORD")
    listed = {row[0] for row in rows}
    assert {f"{NAME}/data.txt", f"{NAME}/late.py", f"{NAME}/__init__.py"} <= listed
    hashed = 0
    for path, hash_text, size in rows:
        if not hash_text:
            continue
        data = (v.site_packages / path).read_bytes()
        assert hash_text == record_hash(data), path
        assert int(size) == len(data), path
        hashed += 1
    assert hashed >= 5  # package files, METADATA, WHEEL, INSTALLER, ...

    verify = run_cli(cli_env, "verify", "--python", v.python)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_recovery_refuses_a_journal_naming_paths_outside(
    fresh_venv: Venv, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """However a foreign journal got there, recovery replays nothing it did not write."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    txn = fresh_venv.site_packages / ".stalwart" / "txn-0"
    txn.mkdir(parents=True)
    stage = txn / "stage" / "000001"
    (txn / "journal.json").write_text(
        json.dumps(
            {
                "format": 2,
                "steps": {
                    "mkdirs": [],
                    "backups": [],
                    "prune": [],
                    "installs": [[str(stage), str(victim)]],
                },
                "mac": "0" * 64,
            }
        )
    )
    proc = run_cli(cli_env, "recover", "--python", fresh_venv.python)
    assert proc.returncode == 4  # the environment needs attention, not the request
    assert "refusing to replay the transaction journal" in proc.stderr
    assert victim.read_bytes() == b"precious\n"
    # Even told to trust the journal (its signature), its paths are checked.
    trusted = run_cli(cli_env, "recover", "--trust-journal", "--python", fresh_venv.python)
    assert trusted.returncode == 4
    assert str(victim) in trusted.stderr
    assert "outside its environment" in trusted.stderr
    assert victim.read_bytes() == b"precious\n"
    assert not stage.exists()
