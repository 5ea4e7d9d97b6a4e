"""stalwart.wheel.wheelfile: open_wheel's spec rules, all reported at once, and check_compatible.

Each wheel starts valid (``wheelfactory.wheel_files``) and breaks one rule; RECORD is rewritten
correctly afterwards unless RECORD itself is the subject, so only the rule under test fails.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from packaging.tags import Tag

from stalwart.errors import IncompatibleWheelError, InvalidWheelError
from stalwart.wheel.record import RecordEntry
from stalwart.wheel.wheelfile import Wheel, WheelWarning, check_compatible, open_wheel
from wheelfactory import make_wheel, record_bytes, record_hash, wheel_files, with_record

DI = "demo-1.0.dist-info"
FILENAME = "demo-1.0-py3-none-any.whl"
METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
WHEEL = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def base() -> dict[str, bytes]:
    """The files of demo 1.0 without RECORD."""
    files = wheel_files("demo", "1.0", {"demo/__init__.py": b"", "demo/mod.py": b"X = 1\n"})
    del files[f"{DI}/RECORD"]
    return files


def build(
    tmp_path: Path,
    files: Mapping[str, bytes],
    *,
    filename: str = FILENAME,
    record: str | None = DI,
) -> Path:
    """A wheel of *files*, with a correct RECORD in *record* (a dist-info dir) unless None."""
    content = with_record(files, record) if record is not None else dict(files)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_wheel(tmp_path / filename, content)


@pytest.fixture
def opened() -> Iterator[list[Wheel]]:
    """Wheels to close at the end of the test."""
    wheels: list[Wheel] = []
    yield wheels
    for w in wheels:
        w.close()


def problems(path: Path, *, verify_record: bool = True) -> list[str]:
    with pytest.raises(InvalidWheelError) as caught:
        open_wheel(path, verify_record=verify_record).close()
    assert caught.value.wheel == str(path)
    return caught.value.problems


def test_a_valid_wheel(tmp_path: Path, opened: list[Wheel]) -> None:
    files = base()
    files["demo-1.0.data/scripts/tool"] = b"#!python\n"
    w = open_wheel(build(tmp_path, files))
    opened.append(w)
    assert w.filename == FILENAME
    assert w.path == str(tmp_path / FILENAME)
    assert w.name == "demo"
    assert w.display_name == "demo"
    assert str(w.version) == "1.0"
    assert w.tags == frozenset({Tag("py3", "none", "any")})
    assert w.dist_info == DI
    assert w.data_dir == "demo-1.0.data"
    assert w.root_is_purelib
    assert w.notes == ()
    assert w.record["demo/mod.py"] == RecordEntry(
        "demo/mod.py", "sha256", w.record["demo/mod.py"].digest, 6
    )
    assert w.record[f"{DI}/RECORD"] == RecordEntry(f"{DI}/RECORD")
    assert sorted(e.name for e in w.files) == sorted([*files, f"{DI}/RECORD"])
    assert w.read_text("METADATA") == files[f"{DI}/METADATA"].decode()
    assert w.read_text("entry_points.txt") is None


def test_names_and_versions_agree_after_normalization(tmp_path: Path, opened: list[Wheel]) -> None:
    di = "demo.pkg-1.0.0.dist-info"
    files = {
        "demo_pkg/__init__.py": b"",
        f"{di}/METADATA": b"Metadata-Version: 2.1\nName: Demo-PKG\nVersion: 1.0.0\n",
        f"{di}/WHEEL": WHEEL,
    }
    w = open_wheel(build(tmp_path, files, filename="Demo_Pkg-1.0-py3-none-any.whl", record=di))
    opened.append(w)
    assert w.name == "demo-pkg"
    assert w.display_name == "Demo-PKG"  # METADATA's spelling
    assert w.data_dir == "demo.pkg-1.0.0.data"


@pytest.mark.parametrize("filename", ["demo.whl", "demo-1.0.whl", "demo-1.0-py3-none.zip"])
def test_an_invalid_filename(tmp_path: Path, filename: str) -> None:
    path = build(tmp_path, base(), filename=filename)
    (problem,) = problems(path)
    assert problem.startswith("invalid wheel filename")


def test_exactly_one_dist_info(tmp_path: Path) -> None:
    none = {k.replace(DI, "demo-1.0.info"): v for k, v in base().items()}
    (problem,) = problems(build(tmp_path / "a", none, record=None))
    assert problem == "expected exactly one top-level .dist-info directory, found none"
    two = {**base(), "other-1.0.dist-info/METADATA": METADATA}
    (problem,) = problems(build(tmp_path / "b", two))
    assert "found demo-1.0.dist-info, other-1.0.dist-info" in problem


def renamed(files: Mapping[str, bytes], old: str, new: str) -> dict[str, bytes]:
    return {k.replace(old, new, 1) if k.startswith(old) else k: v for k, v in files.items()}


def test_the_dist_info_name_and_version_must_match_the_filename(tmp_path: Path) -> None:
    files = renamed(base(), DI, "other-2.0.dist-info")
    found = problems(build(tmp_path, files, record="other-2.0.dist-info"))
    assert found == [
        "other-2.0.dist-info does not match the distribution name 'demo' of the filename",
        "other-2.0.dist-info does not match the version 1.0 of the filename",
    ]
    files = renamed(base(), DI, "demo-one.dist-info")
    (tmp_path / "b").mkdir()
    (problem,) = problems(build(tmp_path / "b", files, record="demo-one.dist-info"))
    assert "invalid version 'one'" in problem


@pytest.mark.parametrize(
    ("metadata", "wanted"),
    [
        (None, f"{DI}/METADATA is missing"),
        (b"Name: other\nVersion: 1.0\n", "METADATA Name 'other' does not match"),
        (b"Version: 1.0\n", "METADATA Name None does not match"),
        (b"Name: demo\nVersion: 1.1\n", "METADATA Version '1.1' does not match"),
        (b"Name: demo\n", "METADATA Version None does not match"),
        (b"Name: demo\nVersion: one\n", "METADATA Version 'one' is not a valid version"),
    ],
)
def test_metadata_must_agree(tmp_path: Path, metadata: bytes | None, wanted: str) -> None:
    files = base()
    if metadata is None:
        del files[f"{DI}/METADATA"]
    else:
        files[f"{DI}/METADATA"] = metadata
    (problem,) = problems(build(tmp_path, files))
    assert problem.startswith(wanted), problem


def test_a_metadata_file_that_is_not_utf8(tmp_path: Path) -> None:
    files = {**base(), f"{DI}/METADATA": b"Name: d\xe9mo\nVersion: 1.0\n"}
    found = problems(build(tmp_path, files))
    assert any(p.startswith(f"{DI}/METADATA is not UTF-8") for p in found), found


def test_a_metadata_file_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    files = {**base(), f"{DI}/METADATA": b"Name: d\xe9mo\nVersion: 1.0\n"}
    (problem,) = problems(build(tmp_path, files))
    assert problem.startswith(f"{DI}/METADATA is not UTF-8")


def test_a_data_directory_of_another_name(tmp_path: Path) -> None:
    files = {**base(), "other-1.0.data/scripts/x": b"", "demo-1.0.data/data/ok": b""}
    (problem,) = problems(build(tmp_path, files))
    assert problem == "unexpected data directory other-1.0.data (expected demo-1.0.data)"


def with_wheel(tmp_path: Path, wheel: bytes | None) -> Path:
    files = base()
    if wheel is None:
        del files[f"{DI}/WHEEL"]
    else:
        files[f"{DI}/WHEEL"] = wheel
    return build(tmp_path, files)


@pytest.mark.parametrize(
    ("wheel", "wanted"),
    [
        (None, f"{DI}/WHEEL is missing"),
        (WHEEL.replace(b"1.0", b"2.0", 1), "Wheel-Version 2.0 is not supported"),
        (WHEEL.replace(b"1.0", b"one", 1), "WHEEL has an invalid Wheel-Version 'one'"),
        (WHEEL.replace(b"Wheel-Version: 1.0\n", b""), "WHEEL has an invalid Wheel-Version ''"),
        (WHEEL.replace(b": true", b": yes"), "WHEEL Root-Is-Purelib must be true or false"),
        (WHEEL.replace(b"Root-Is-Purelib: true\n", b""), "WHEEL Root-Is-Purelib must be"),
    ],
)
def test_wheel_metadata_rules(tmp_path: Path, wheel: bytes | None, wanted: str) -> None:
    (problem,) = problems(with_wheel(tmp_path, wheel))
    assert problem.startswith(wanted), problem


def test_a_newer_minor_wheel_version_is_installed_with_a_note(
    tmp_path: Path, opened: list[Wheel]
) -> None:
    path = with_wheel(tmp_path, WHEEL.replace(b"1.0", b"1.1", 1))
    with pytest.warns(WheelWarning, match=r"demo-1\.0-py3-none-any\.whl: Wheel-Version 1\.1"):
        w = open_wheel(path)
    opened.append(w)
    assert w.notes == ("Wheel-Version 1.1 is newer than 1.0; installing anyway",)


def test_root_is_purelib_false_in_any_case(tmp_path: Path, opened: list[Wheel]) -> None:
    w = open_wheel(with_wheel(tmp_path, WHEEL.replace(b": true", b": False")))
    opened.append(w)
    assert not w.root_is_purelib


# -- RECORD ---------------------------------------------------------------------------------------


def with_rows(
    tmp_path: Path,
    rows: list[tuple[str, str, str]],
    files: Mapping[str, bytes] | None = None,
    **extra: bytes,
) -> Path:
    """A wheel of *files* (default: ``base()``) plus *extra*, with exactly *rows* in RECORD."""
    files = {**(base() if files is None else files), **extra}
    files[f"{DI}/RECORD"] = record_bytes([*rows, (f"{DI}/RECORD", "", "")])
    return build(tmp_path, files, record=None)


def good_rows(**extra: bytes) -> list[tuple[str, str, str]]:
    files = {**base(), **extra}
    return [(name, record_hash(data), str(len(data))) for name, data in files.items()]


def test_record_must_list_every_file_with_a_strong_hash(tmp_path: Path) -> None:
    rows = [r for r in good_rows() if r[0] != "demo/__init__.py"]  # unlisted
    rows = [(p, "", "") if p == "demo/mod.py" else r for r, p in ((r, r[0]) for r in rows)]
    rows = [(p, record_hash(b"", "md5") if p == f"{DI}/WHEEL" else h, s) for p, h, s in rows]
    rows.append(("demo/ghost.py", record_hash(b""), "0"))  # not in the archive
    rows.append(("demo/", "", ""))  # a directory row: ignored
    found = problems(with_rows(tmp_path, rows))
    assert sorted(found) == sorted(
        [
            "demo/__init__.py is in the archive but not in RECORD",
            "RECORD has no hash for demo/mod.py",
            f"RECORD hashes {DI}/WHEEL with md5; sha256 or stronger is required",
            "RECORD lists demo/ghost.py, which is not in the archive",
        ]
    )


@pytest.mark.parametrize("weak", ["md5", "sha1", "sha224"])
def test_weak_hashes_are_refused(tmp_path: Path, weak: str) -> None:
    rows = [(p, record_hash(b"", weak) if p == "demo/mod.py" else h, s) for p, h, s in good_rows()]
    (problem,) = problems(with_rows(tmp_path, rows))
    assert f"with {weak};" in problem


@pytest.mark.parametrize("strong", ["sha384", "sha512", "sha3_256", "blake2b"])
def test_strong_hashes_are_accepted(tmp_path: Path, strong: str, opened: list[Wheel]) -> None:
    files = base()
    rows = [(p, record_hash(d, strong), str(len(d))) for p, d in files.items()]
    w = open_wheel(with_rows(tmp_path, rows))
    opened.append(w)
    assert w.record["demo/mod.py"].hash_name == strong


def test_record_rows_duplicated_or_malformed(tmp_path: Path) -> None:
    rows = good_rows()
    rows.append(rows[0])
    rows.append(("demo/mod.py", "sha256=AAAA", "6"))
    rows.append(("two", "fields"))  # type: ignore[arg-type]
    found = sorted(problems(with_rows(tmp_path, rows)))
    assert len(found) == 3, found
    assert re.fullmatch(rf"RECORD lists '?{rows[0][0]}'? twice", found[0]), found[0]
    assert found[1].startswith(f"{DI}/RECORD line 6: hash 'sha256=AAAA' has the wrong length")
    assert re.match(rf"{DI}/RECORD line 7: expected 3 fields.*found 2", found[1 + 1])


def test_signatures_need_no_record_row(tmp_path: Path, opened: list[Wheel]) -> None:
    path = with_rows(
        tmp_path, good_rows(), **{f"{DI}/RECORD.jws": b"{}", f"{DI}/RECORD.p7s": b"sig"}
    )
    w = open_wheel(path)
    opened.append(w)
    assert f"{DI}/RECORD.jws" not in w.record


def test_a_missing_record(tmp_path: Path) -> None:
    (problem,) = problems(build(tmp_path, base(), record=None))
    assert problem == f"{DI}/RECORD is missing"
    (problem,) = problems(build(tmp_path, base(), record=None), verify_record=False)
    assert problem == f"{DI}/RECORD is missing"


def test_verify_record_false_accepts_a_stale_record(tmp_path: Path, opened: list[Wheel]) -> None:
    rows = [r for r in good_rows() if r[0] != "demo/__init__.py"]
    rows = [(p, record_hash(b"", "md5"), s) for p, _, s in rows]
    rows += [("demo/ghost.py", "", ""), ("demo/ghost.py", "", ""), ("bad", "sha256=?", "x")]
    path = with_rows(tmp_path, rows)
    assert len(problems(path)) > 4
    w = open_wheel(path, verify_record=False)
    opened.append(w)
    assert "demo/__init__.py" not in w.record
    assert "demo/ghost.py" in w.record
    assert "bad" not in w.record  # unparseable rows are dropped, not kept


def test_every_problem_at_once(tmp_path: Path) -> None:
    files = base()
    files[f"{DI}/METADATA"] = b"Name: other\nVersion: 9\n"
    files[f"{DI}/WHEEL"] = b"Wheel-Version: 3.0\nRoot-Is-Purelib: maybe\n"
    files["stray-1.0.data/x"] = b""
    rows = [r for r in good_rows() if r[0] == "demo/__init__.py"]
    found = problems(with_rows(tmp_path, rows, files))
    for wanted in [
        "unexpected data directory stray-1.0.data",
        "METADATA Name 'other'",
        "METADATA Version '9'",
        "Wheel-Version 3.0 is not supported",
        "WHEEL Root-Is-Purelib must be true or false",
        "demo/mod.py is in the archive but not in RECORD",
        f"{DI}/WHEEL is in the archive but not in RECORD",
    ]:
        assert any(p.startswith(wanted) for p in found), (wanted, found)


def test_the_archive_is_closed_when_validation_fails(tmp_path: Path) -> None:
    files = base()
    del files[f"{DI}/METADATA"]
    path = build(tmp_path, files)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(3):
            problems(path)
    path.unlink()  # nothing holds it (on Windows an open handle would refuse this)


# -- compatibility --------------------------------------------------------------------------------

PY3 = [
    Tag("cp311", "cp311", "linux_x86_64"),
    Tag("py3", "none", "any"),
    Tag("py311", "none", "any"),
]


def wheel_tagged(tmp_path: Path, tag: str, opened: list[Wheel]) -> Wheel:
    files = base()
    w = open_wheel(build(tmp_path, files, filename=f"demo-1.0-{tag}.whl"))
    opened.append(w)
    return w


@pytest.mark.parametrize("tag", ["py3-none-any", "py2.py3-none-any", "cp311-cp311-linux_x86_64"])
def test_compatible_wheels(tmp_path: Path, tag: str, opened: list[Wheel]) -> None:
    w = wheel_tagged(tmp_path, tag, opened)
    check_compatible(w, PY3)
    with pytest.raises(IncompatibleWheelError):
        check_compatible(w, [Tag("cp27", "cp27mu", "linux_x86_64")])


@pytest.mark.parametrize(
    "tag", ["py2-none-any", "cp39-cp39-win_amd64", "cp311-abi3-macosx_11_0_arm64"]
)
def test_incompatible_wheels(tmp_path: Path, tag: str, opened: list[Wheel]) -> None:
    w = wheel_tagged(tmp_path, tag, opened)
    with pytest.raises(IncompatibleWheelError) as caught:
        check_compatible(w, PY3)
    (problem,) = caught.value.problems
    assert f"its tags ({tag})" in problem
    assert "cp311-cp311-linux_x86_64, py3-none-any, py311-none-any" in problem
    assert caught.value.wheel == w.path
