"""WheelArchive against inputs the fuzzers built: deep names and floods of problems.

Each test reproduces a defect: the check that no file stands where a directory is needed joined
prefixes as strings (quadratic in the depth of a name), and every problem was kept in memory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stalwart.errors import MAX_SHOWN, UnsafeArchiveError
from stalwart.wheel.archive import WheelArchive
from wheelfactory import Member, build_zip

DEEP = "a/" * 30_000  # 60,000 bytes: near the 65,535-byte limit of a zip name


def test_deep_names_are_read(tmp_path: Path) -> None:
    # Before the fix each of these entries cost ~0.4 s (about 30 s for the archive).
    members = [Member(f"d{i}/{DEEP}f.txt", b"x") for i in range(80)]
    path = build_zip(tmp_path / "deep.zip", members)
    with WheelArchive(path) as archive:
        assert len(archive.entries) == 80
        assert archive.read(f"d7/{DEEP}f.txt") == b"x"


@pytest.mark.parametrize(
    ("blocker", "below"),
    [
        (f"d/{DEEP}x", f"d/{DEEP}x/f.txt"),
        (f"d/{DEEP}X", f"d/{DEEP}x/f.txt"),  # case-insensitively
        ("d/a", f"d/{DEEP}f.txt"),  # at the top of a deep chain
        (f"d/{DEEP}x", f"d/{DEEP}x/sub/"),  # a directory entry
    ],
)
def test_a_file_where_a_deep_name_needs_a_directory(
    tmp_path: Path, blocker: str, below: str
) -> None:
    mode = 0o40755 if below.endswith("/") else 0o100644
    members = [Member(blocker, b"1"), Member(below, b"", unix_mode=mode)]
    path = build_zip(tmp_path / "blocked.zip", members)
    with pytest.raises(UnsafeArchiveError) as caught:
        WheelArchive(path)
    # (str() would cut these 60 kB names in the middle: compare the problems themselves)
    assert caught.value.problems == [
        f"entry {below!r}: needs {blocker!r} to be a directory, but it is a file"
    ]


def test_a_flood_of_problems_is_counted_not_kept(tmp_path: Path) -> None:
    members = [Member(f"dir\\{i}.py", b"x") for i in range(3000)]
    path = build_zip(tmp_path / "flood.zip", members)
    with pytest.raises(UnsafeArchiveError) as caught:
        WheelArchive(path)
    problems = caught.value.problems
    assert len(problems) == MAX_SHOWN
    assert problems[0] == "entry 'dir\\\\0.py': name contains a backslash"
    assert problems[-1] == f"{3000 - MAX_SHOWN + 1} more problems are not listed"
    assert f"{3000 - MAX_SHOWN + 1} more problems are not listed" in str(caught.value)
