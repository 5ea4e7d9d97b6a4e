"""open_wheel on wheels whose metadata files are hostile: one InvalidWheelError, never a crash.

The rule: a wheel's RECORD, METADATA, WHEEL and entry_points.txt get strict, rule-named
problems that name the member. Each test reproduces a defect the fuzzers found.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import pytest

from seeds import DIST_INFO, FILENAME, METADATA, WHEEL, b64, wheel_files
from stalwart.errors import MAX_SHOWN, InvalidWheelError
from stalwart.wheel.archive import Limits
from stalwart.wheel.wheelfile import Wheel, open_wheel
from wheelfactory import make_wheel


def build(tmp_path: Path, changes: Mapping[str, bytes], *, filename: str = FILENAME) -> Path:
    """An honest wheel with *changes* applied; RECORD is recomputed unless *changes* sets it."""
    record = changes.get(f"{DIST_INFO}/RECORD")
    files = wheel_files(extra={k: v for k, v in changes.items() if not k.endswith("/RECORD")})
    if record is not None:
        files[f"{DIST_INFO}/RECORD"] = record
    return make_wheel(tmp_path / filename, files)


def refused(path: Path, limits: Limits | None = None) -> InvalidWheelError:
    with pytest.raises(InvalidWheelError) as caught:
        if limits is None:
            open_wheel(path)
        else:
            open_wheel(path, limits=limits)
    assert caught.value.wheel == str(path)
    assert len(str(caught.value)) < 10_000
    return caught.value


def opened(path: Path) -> Wheel:
    wheel = open_wheel(path)
    wheel.close()
    return wheel


# -- encodings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["METADATA", "WHEEL", "RECORD", "entry_points.txt"])
def test_not_utf8_names_the_member_and_the_byte(tmp_path: Path, member: str) -> None:
    good = wheel_files()[f"{DIST_INFO}/{member}"]
    error = refused(build(tmp_path, {f"{DIST_INFO}/{member}": good + b"\xff\xfe"}))
    assert f"{DIST_INFO}/{member} is not UTF-8 (byte {len(good)}: invalid start byte)" in str(error)


@pytest.mark.parametrize("member", ["METADATA", "WHEEL", "RECORD", "entry_points.txt"])
def test_byte_order_mark_is_refused_by_name(tmp_path: Path, member: str) -> None:
    good = wheel_files()[f"{DIST_INFO}/{member}"]
    error = refused(build(tmp_path, {f"{DIST_INFO}/{member}": b"\xef\xbb\xbf" + good}))
    assert f"{DIST_INFO}/{member} starts with a byte order mark (U+FEFF)" in str(error)


@pytest.mark.parametrize("member", ["METADATA", "WHEEL", "RECORD", "entry_points.txt"])
def test_nul_is_refused_by_name(tmp_path: Path, member: str) -> None:
    good = wheel_files()[f"{DIST_INFO}/{member}"]
    error = refused(build(tmp_path, {f"{DIST_INFO}/{member}": good[:5] + b"\x00" + good[5:]}))
    assert f"{DIST_INFO}/{member} contains a NUL character (at character 5)" in str(error)


def test_entry_points_not_utf8_used_to_crash_at_planning(tmp_path: Path) -> None:
    # Wheel.read_text raised UnicodeDecodeError, from install planning, after validation passed.
    path = build(tmp_path, {f"{DIST_INFO}/entry_points.txt": b"[console_scripts]\n\xe9 = m:f\n"})
    assert "entry_points.txt is not UTF-8" in str(refused(path))
    with pytest.raises(InvalidWheelError, match=r"entry_points\.txt is not UTF-8"):
        open_wheel(path, verify_record=False)


def test_cr_only_and_crlf_line_endings_are_read(tmp_path: Path) -> None:
    files = {
        f"{DIST_INFO}/METADATA": METADATA.replace("\n", "\r").encode(),
        f"{DIST_INFO}/WHEEL": WHEEL.replace("\n", "\r\n").encode(),
    }
    wheel = opened(build(tmp_path, files))
    assert wheel.display_name == "demo"
    assert wheel.root_is_purelib
    record = "\r".join(wheel_files(extra=files)[f"{DIST_INFO}/RECORD"].decode().split("\n"))
    assert opened(build(tmp_path, {**files, f"{DIST_INFO}/RECORD": record.encode()})).record


# -- huge fields -----------------------------------------------------------------------------------


def test_a_header_line_of_megabytes(tmp_path: Path) -> None:
    summary = METADATA.replace("Summary: a demo", "Summary: " + "s" * 4_000_000)
    assert opened(build(tmp_path, {f"{DIST_INFO}/METADATA": summary.encode()}))
    name = METADATA.replace("Name: demo", "Name: " + "n" * 4_000_000)
    error = refused(build(tmp_path, {f"{DIST_INFO}/METADATA": name.encode()}))
    assert "METADATA Name 'nnnn" in str(error)
    assert "(4000000 characters) does not match the filename's 'demo'" in str(error)


@pytest.mark.parametrize("where", ["METADATA", "dist-info"])
def test_a_version_of_5000_digits(tmp_path: Path, where: str) -> None:
    # packaging raises a bare ValueError (int()'s 4,300-digit limit), not InvalidVersion.
    huge = "1" * 5000
    if where == "METADATA":
        path = build(tmp_path, {f"{DIST_INFO}/METADATA": METADATA.replace("1.0", huge).encode()})
        says = "METADATA Version '1111"
    else:
        renamed = f"demo-{huge}.dist-info"
        files = {
            name.replace(DIST_INFO, renamed): data.replace(DIST_INFO.encode(), renamed.encode())
            for name, data in wheel_files().items()
        }
        path = make_wheel(tmp_path / FILENAME, files)
        says = "(5015 characters) has an invalid version '1111"
    error = refused(path)
    assert says in str(error)


def test_a_filename_version_of_5000_digits(tmp_path: Path) -> None:
    with pytest.raises(InvalidWheelError, match="invalid wheel filename"):
        open_wheel(tmp_path / f"demo-{'1' * 5000}-py3-none-any.whl")


@pytest.mark.parametrize("version", ["\u0661.\u0660", "1_0.0", "+1.0", "1.0.0", "1", "1.", " 1 .0"])
def test_wheel_version_must_be_ascii_major_dot_minor(tmp_path: Path, version: str) -> None:
    wheel = WHEEL.replace("Wheel-Version: 1.0", f"Wheel-Version: {version}")
    error = refused(build(tmp_path, {f"{DIST_INFO}/WHEEL": wheel.encode()}))
    assert "WHEEL has an invalid Wheel-Version" in str(error)


def test_metadata_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    path = build(tmp_path, {f"{DIST_INFO}/METADATA": METADATA.encode() + b"x" * 5000})
    error = refused(path, Limits(max_metadata_size=4096))
    size = len(METADATA) + 5000
    assert f"METADATA is {size} bytes, over the metadata size limit of 4096" in str(error)


# -- RECORD ----------------------------------------------------------------------------------------


def test_200000_bogus_record_rows(tmp_path: Path) -> None:
    record = wheel_files()[f"{DIST_INFO}/RECORD"] + b"bogus row\n" * 200_000
    error = refused(build(tmp_path, {f"{DIST_INFO}/RECORD": record}))
    assert len(error.problems) <= 2 * MAX_SHOWN
    assert f"{DIST_INFO}/RECORD: 199981 more problems are not listed" in str(error)


def test_record_listing_many_missing_files_is_capped(tmp_path: Path) -> None:
    rows = b"".join(b"ghost/%d.py,sha256=%s,1\n" % (i, b"A" * 43) for i in range(5000))
    record = wheel_files()[f"{DIST_INFO}/RECORD"] + rows
    error = refused(build(tmp_path, {f"{DIST_INFO}/RECORD": record}))
    assert len(error.problems) == MAX_SHOWN
    assert error.problems[-1] == f"{5000 - MAX_SHOWN + 1} more problems are not listed"


def test_record_path_with_a_terminal_escape_is_quoted(tmp_path: Path) -> None:
    evil = "\x1b]0;owned\x07\x1b[2J.py"
    record = wheel_files()[f"{DIST_INFO}/RECORD"] + f"{evil},sha256={'A' * 43},1\n".encode()
    error = refused(build(tmp_path, {f"{DIST_INFO}/RECORD": record}))
    assert f"RECORD lists {evil!r}, which is not in the archive" in str(error)
    assert "\x1b" not in str(error)


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        ("sha256={h},²", "size '²' is not a number: size must be ASCII digits"),
        ("shake_128=AAAA,1", "with shake_128; sha256 or stronger is required"),
        ("foo=AAAA,1", "with foo; sha256 or stronger is required"),
        ("md5=1B2M2Y8AsgTpgAmY7PhCfg,0", "with md5; sha256 or stronger is required"),
        ("sha256={h}$,1", "is not urlsafe base64"),
    ],
)
def test_record_rules_name_the_member(tmp_path: Path, cell: str, says: str) -> None:
    files = wheel_files()
    data = files["demo/__init__.py"]
    digest = b64(hashlib.sha256(data).digest())
    lines = files[f"{DIST_INFO}/RECORD"].decode().splitlines()
    lines[0] = f"demo/__init__.py,{cell.format(h=digest)}"
    record = "\n".join(lines).encode()
    error = refused(build(tmp_path, {f"{DIST_INFO}/RECORD": record}))
    assert says in str(error)
