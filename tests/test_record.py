"""RECORD parsing: strict for a wheel's RECORD, lenient for an installed one; neither raises.

Each test here started as a reproduction of a defect the fuzzers found (see tests/test_fuzz.py).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from oracles import csv_limit
from stalwart.errors import MAX_SHOWN, InvalidWheelError
from stalwart.wheel.record import (
    ACCEPTED_HASHES,
    MAX_FIELD,
    MAX_PROBLEMS,
    UNKNOWN_HASH,
    RecordEntry,
    decode_hash,
    format_record,
    hash_file,
    is_checkable,
    parse_record,
)

SHA = "sha256=" + "A" * 43  # 32 zero bytes
HUGE = "x" * (MAX_FIELD + 10)


# -- fields over the csv module's limit (used to raise _csv.Error) -------------------------------


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (f"{HUGE},{SHA},1", f"path is {len(HUGE)} characters long, over the limit of {MAX_FIELD}"),
        (f"a.py,{HUGE},1", "too long for any digest"),
        (f"a.py,{SHA},{'9' * (MAX_FIELD + 10)}", "is too large (more than 20 digits)"),
        (f"a.py,{SHA},{HUGE}", "size must be ASCII digits"),
        (f'"{HUGE}\n{HUGE}",,', "over the limit"),  # a quoted field across lines
    ],
)
def test_strict_field_over_the_csv_limit_is_a_problem(row: str, says: str) -> None:
    entries, problems = parse_record(f"ok.py,{SHA},1\n{row}\nlast.py,,\n", source="X/RECORD")
    assert [e.path for e in entries] == ["ok.py", "last.py"]
    assert len(problems) == 1
    assert problems[0].startswith("X/RECORD line 2: ")
    assert says in problems[0]
    assert len(problems[0]) < 300  # the field is not copied into the message


def test_lenient_keeps_the_path_of_a_row_with_a_huge_hash_or_size() -> None:
    text = f"a.py,{HUGE},1\nb.py,{SHA},{HUGE}\n{HUGE},,\nc.py,,\n"
    entries, problems = parse_record(text, lenient=True)
    assert entries == [
        RecordEntry("a.py", UNKNOWN_HASH, None, 1),
        RecordEntry("b.py", "sha256", bytes(32), None),
        RecordEntry("c.py"),
    ]
    assert len(problems) == 1  # the row without a usable path
    assert "line 3: path is" in problems[0]


def test_the_global_csv_limit_is_neither_changed_nor_relied_on() -> None:
    text = f'a.py,{SHA},1\n{HUGE},,\n"q,""uoted""",,2\r\nz.py,,\r'
    before = csv.field_size_limit()
    expected = parse_record(text)
    assert csv.field_size_limit() == before
    with csv_limit(4):  # another library lowered it: same answer
        assert parse_record(text) == expected
    with csv_limit(10 * MAX_FIELD):  # or raised it: still the same answer
        assert parse_record(text) == expected
    assert [e.path for e in expected[0]] == ["a.py", 'q,"uoted"', "z.py"]


# -- sizes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["²", "١٢", "12\u0660", "+1", " 1", "1_000", "0x10", "-1", "1.0"])
def test_size_must_be_ascii_digits(size: str) -> None:
    entries, problems = parse_record(f"a.py,{SHA},{size}\n")
    assert entries == []
    assert problems == [f"RECORD line 1: size {size!r} is not a number: size must be ASCII digits"]
    lenient, problems = parse_record(f"a.py,{SHA},{size}\n", lenient=True)
    assert lenient == [RecordEntry("a.py", "sha256", bytes(32), None)]
    assert problems == []


def test_size_with_more_digits_than_int_accepts() -> None:
    # int() refuses strings of over 4,300 digits with a ValueError (CVE-2020-10735).
    size = "9" * 5000
    _, problems = parse_record(f"a.py,,{size}\n")
    assert len(problems) == 1
    assert "is too large (more than 20 digits)" in problems[0]
    assert parse_record(f"a.py,,{size}\n", lenient=True) == ([RecordEntry("a.py")], [])
    assert parse_record("a.py,,00000000000000000042\n") == ([RecordEntry("a.py", size=42)], [])


# -- hashes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hash_text", "name"),
    [
        ("md5=1B2M2Y8AsgTpgAmY7PhCfg", "md5"),
        ("sha1=2jmj7l5rSw0yVb_vlWAYkK_YBwk", "sha1"),
        ("shake_128=AAAA", "shake_128"),
        ("foo=YWJj", "foo"),
        ("unknown=YWJj", "unknown"),
    ],
)
def test_unknown_and_weak_hashes_are_kept_but_not_checkable(hash_text: str, name: str) -> None:
    for lenient in (False, True):
        entries, problems = parse_record(f"a.py,{hash_text},3\n", lenient=lenient)
        assert problems == []
        [entry] = entries
        assert entry.hash_name == name
        assert not entry.checkable
        assert not is_checkable(entry.hash_name)


@pytest.mark.parametrize(
    "hash_text",
    [
        "shake_128=",
        "shake_128====",
        "sha256=" + "A" * 43 + "$$$",  # base64 decoders skip junk; RECORD must not
        "sha256=" + "A" * 42,  # 31 bytes
        "sha256=A",  # 6 bits
        "SHA256=" + "A" * 43,
        "sha 256=" + "A" * 43,
        "=abc",
        "sha256",
        "sha256=+/+/",  # standard, not urlsafe, alphabet
        "sha256=AAAA===",
    ],
)
def test_malformed_hash_strict_problem_lenient_unknown(hash_text: str) -> None:
    _, problems = parse_record(f"a.py,{hash_text},1\n")
    assert len(problems) == 1
    assert problems[0].startswith("RECORD line 1: ")
    with pytest.raises(ValueError, match="hash"):
        decode_hash(hash_text)
    entries, problems = parse_record(f"a.py,{hash_text},1\n", lenient=True)
    assert entries == [RecordEntry("a.py", UNKNOWN_HASH, None, 1)]
    assert problems == []
    assert not entries[0].checkable


def test_padding_is_tolerated() -> None:
    digest = hashlib.sha256(b"x").digest()
    name, decoded = decode_hash("sha256=" + __import__("base64").urlsafe_b64encode(digest).decode())
    assert (name, decoded) == ("sha256", digest)


@pytest.mark.parametrize("name", ["shake_128", "shake_256", "foo", "md5", UNKNOWN_HASH, ""])
def test_hash_file_refuses_what_it_cannot_compute(tmp_path: Path, name: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert not is_checkable(name)
    with pytest.raises(ValueError, match="cannot compute hash"):
        hash_file(str(path), name)


@pytest.mark.parametrize("name", ACCEPTED_HASHES)
def test_hash_file_computes_every_accepted_hash(tmp_path: Path, name: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1000)
    assert is_checkable(name)
    assert hash_file(str(path), name) == (hashlib.new(name, b"abc" * 1000).digest(), 3000)


# -- paths -----------------------------------------------------------------------------------------


def test_nul_in_a_path_is_a_problem_in_both_modes() -> None:
    # os.path.realpath raises ValueError on one: uninstall would crash on it.
    for lenient in (False, True):
        entries, problems = parse_record("a\x00b.py,,\nc.py,,\n", lenient=lenient)
        assert entries == [RecordEntry("c.py")]
        assert problems == ["RECORD line 1: path 'a\\x00b.py' contains a NUL character"]


def test_line_endings_cr_crlf_lf_are_all_rows() -> None:
    text = "a.py,,1\rb.py,,2\r\nc.py,,3\n\rd.py,,4"
    entries, problems = parse_record(text)
    assert [(e.path, e.size) for e in entries] == [
        ("a.py", 1),
        ("b.py", 2),
        ("c.py", 3),
        ("d.py", 4),
    ]
    assert problems == []


# -- many problems ---------------------------------------------------------------------------------


def test_200000_bogus_rows_give_a_bounded_list_that_counts_the_rest() -> None:
    text = "not,a,record,row\n" * 200_000
    for lenient in (False, True):
        entries, problems = parse_record(text, source="big/RECORD", lenient=lenient)
        assert entries == []
        assert len(problems) == MAX_PROBLEMS
        assert problems[0] == "big/RECORD line 1: expected 3 fields (path, hash, size), found 4"
        assert (
            problems[-1] == f"big/RECORD: {200_000 - MAX_PROBLEMS + 1} more problems are not listed"
        )
    message = str(InvalidWheelError("w.whl", problems))
    assert len(message) < 3000
    assert "199981 more problems" in message  # the count is shown, not hidden past MAX_SHOWN
    assert MAX_PROBLEMS <= MAX_SHOWN


def test_exactly_max_problems_are_all_listed() -> None:
    _, problems = parse_record("x\n" * MAX_PROBLEMS)
    assert len(problems) == MAX_PROBLEMS
    assert problems[-1].startswith(f"RECORD line {MAX_PROBLEMS}: ")


# -- writing ---------------------------------------------------------------------------------------


def test_format_then_parse_round_trips_awkward_paths() -> None:
    entries = [
        RecordEntry('we,ird "name".py', "sha256", bytes(32), 0),
        RecordEntry("line\nbreak.py", "sha512", bytes(64), 12),
        RecordEntry("cr\ronly.py"),
        RecordEntry(" spaced .py", size=7),
        RecordEntry("ü/ñ.py", "blake2b", bytes(range(64)), 1),
    ]
    assert parse_record(format_record(entries).decode("utf-8")) == (entries, [])
