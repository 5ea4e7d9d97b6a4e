"""stalwart.wheel.record: RECORD rows read and written, hashes decoded, files hashed.

Example-based tests of each rule, and one round-trip property (hypothesis). Fuzzing the parser
with hostile input is ``test_fuzz.py``'s job.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stalwart.wheel.record import (
    ACCEPTED_HASHES,
    RecordEntry,
    decode_hash,
    encode_digest,
    format_record,
    hash_file,
    parse_record,
)
from wheelfactory import record_hash

EMPTY_SHA256 = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- the round trip -------------------------------------------------------------------------------


@st.composite
def entries(draw: st.DrawFn) -> RecordEntry:
    # Any text a file name can hold (no NUL, no lone surrogate), but a lone CR: see
    # test_a_path_with_a_carriage_return_round_trips.
    path = draw(
        st.text(
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\x00"), min_size=1
        )
    )
    hashed = draw(st.one_of(st.none(), st.tuples(st.sampled_from(ACCEPTED_HASHES), st.binary())))
    size = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=2**64)))
    if hashed is None:
        return RecordEntry(path, size=size)
    name, content = hashed
    return RecordEntry(path, name, hashlib.new(name, content).digest(), size)


@given(st.lists(entries(), max_size=8))
def test_format_then_parse_gives_the_same_entries(rows: list[RecordEntry]) -> None:
    text = format_record(rows).decode("utf-8")
    assert parse_record(text) == (rows, [])
    assert parse_record(text, lenient=True) == (rows, [])


def test_format_record_writes_csv_with_lf_endings() -> None:
    rows = [
        RecordEntry("pkg/mod.py", "sha256", sha256(b""), 0),
        RecordEntry('pkg/with,comma and "quote".txt', size=12),
        RecordEntry("pkg-1.0.dist-info/RECORD"),
    ]
    assert (
        format_record(rows)
        == (
            f"pkg/mod.py,sha256={EMPTY_SHA256},0\n"
            '"pkg/with,comma and ""quote"".txt",,12\n'
            "pkg-1.0.dist-info/RECORD,,\n"
        ).encode()
    )
    assert format_record([RecordEntry("ünï/cödé.py")]) == "ünï/cödé.py,,\n".encode()


def test_a_path_with_a_carriage_return_round_trips() -> None:
    rows = [RecordEntry("odd\rname.py", "sha256", sha256(b"x"), 1)]
    assert parse_record(format_record(rows).decode()) == (rows, [])


# -- parsing --------------------------------------------------------------------------------------


def test_parse_record_reads_hashes_and_sizes() -> None:
    text = (
        f"pkg/a.py,{record_hash(b'a')},1\n"
        "\n"  # blank lines are skipped
        f"pkg/b.py,{record_hash(b'bb', 'sha512')},2\r\n"
        "pkg-1.0.dist-info/RECORD,,\n"
    )
    assert parse_record(text) == (
        [
            RecordEntry("pkg/a.py", "sha256", sha256(b"a"), 1),
            RecordEntry("pkg/b.py", "sha512", hashlib.sha512(b"bb").digest(), 2),
            RecordEntry("pkg-1.0.dist-info/RECORD"),
        ],
        [],
    )


# Rows breaking one rule each, and a pattern the problem must match (the wording around the
# rule may change; the rule and the offending value must be named).
BAD_ROWS = [
    ("two,fields", r"expected 3 fields.*found 2"),
    ("a,b,c,d", r"expected 3 fields.*found 4"),
    (",,", r"empty path"),
    ("p1,sha256,1", r"not of the form name=value"),
    ("p2,sha256=a,1", r"not urlsafe base64"),
    ("p3,sha256=AAAA,1", r"wrong length for sha256"),
    (f"p4,{record_hash(b'')},12kB", r"size '12kB' is not a number"),
    (f"p5,{record_hash(b'')},-1", r"size '-1' is not a number"),
]


def test_strict_parsing_reports_every_bad_row_with_its_line() -> None:
    good = f"ok.py,{record_hash(b'ok')},2"
    text = "\n".join([good, *(row for row, _ in BAD_ROWS), good]) + "\n"
    got, problems = parse_record(text, source="demo/RECORD")
    assert got == [RecordEntry("ok.py", "sha256", sha256(b"ok"), 2)] * 2
    assert len(problems) == len(BAD_ROWS)
    for line, (problem, (_, wanted)) in enumerate(zip(problems, BAD_ROWS, strict=True), start=2):
        assert problem.startswith(f"demo/RECORD line {line}: "), problem
        assert re.search(wanted, problem), problem


def test_lenient_parsing_keeps_the_paths_of_rows_with_bad_hashes_or_sizes() -> None:
    text = "\n".join(row for row, _ in BAD_ROWS) + "\n"
    got, problems = parse_record(text, lenient=True)
    # Only what makes a row useless is reported: its shape, or no path at all.
    assert len(problems) == 3, problems
    for problem, (_, wanted) in zip(problems, BAD_ROWS[:3], strict=True):
        assert re.search(wanted, problem), problem
    # The others are kept for their paths; a hash that cannot be decoded has no digest.
    assert [(e.path, e.digest, e.size) for e in got] == [
        ("p1", None, 1),
        ("p2", None, 1),
        ("p3", None, 1),
        ("p4", sha256(b""), None),
        ("p5", sha256(b""), None),
    ]


@pytest.mark.parametrize("lenient", [False, True])
def test_a_superscript_size_is_a_problem_not_a_crash(lenient: bool) -> None:
    entries_, problems = parse_record("a.py,,\u00b2\n", lenient=lenient)
    assert entries_ == ([] if not lenient else [RecordEntry("a.py")])
    assert len(problems) == (0 if lenient else 1)


# -- hashes ---------------------------------------------------------------------------------------


def test_decode_hash() -> None:
    digest = sha256(b"content")
    text = encode_digest(digest)
    assert decode_hash(f"sha256={text}") == ("sha256", digest)
    padded = base64.urlsafe_b64encode(digest).decode()
    assert padded.endswith("=")
    assert decode_hash(f"sha256={padded}") == ("sha256", digest)  # padding is tolerated
    # An algorithm hashlib does not guarantee is decoded; whether it is strong enough is the
    # wheel validator's call (ACCEPTED_HASHES).
    assert decode_hash("whirlpool=YWJj") == ("whirlpool", b"abc")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sha256", "not of the form name=value"),
        ("=abc", "not of the form name=value"),
        ("sha256=", "not of the form name=value"),
        ("sha256=a", "not urlsafe base64"),
        ("sha256=\u00e9t\u00e9", "not urlsafe base64"),
        (f"sha256={encode_digest(hashlib.sha1(b'').digest())}", "wrong length for sha256"),
        (f"md5={encode_digest(sha256(b''))}", "wrong length for md5"),
    ],
)
def test_decode_hash_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_hash(text)


def test_encode_digest_is_urlsafe_base64_without_padding() -> None:
    assert encode_digest(sha256(b"")) == EMPTY_SHA256
    assert encode_digest(b"\xfb\xff") == "-_8"  # '+/8=' in standard base64
    assert encode_digest(b"") == ""
    assert record_hash(b"x") == "sha256=" + encode_digest(sha256(b"x"))


def test_hash_text_of_an_entry() -> None:
    assert RecordEntry("a", "sha256", sha256(b"")).hash_text == f"sha256={EMPTY_SHA256}"
    assert RecordEntry("a").hash_text == ""
    assert RecordEntry("a", "sha256", None).hash_text == ""


def test_hash_file(tmp_path: Path) -> None:
    big = tmp_path / "big"
    content = bytes(range(256)) * 4097 + b"tail"  # a little over 1 MiB: two chunks
    big.write_bytes(content)
    assert hash_file(str(big)) == (sha256(content), len(content))
    assert hash_file(str(big), "sha512") == (hashlib.sha512(content).digest(), len(content))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_file(str(empty)) == (sha256(b""), 0)
    with pytest.raises(FileNotFoundError):
        hash_file(str(tmp_path / "missing"))
    with pytest.raises(ValueError):
        hash_file(str(empty), "no-such-hash")
