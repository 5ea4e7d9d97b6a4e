"""Short fuzzing of every parser of untrusted bytes: only stalwart's own errors may escape.

Inputs are structured but broken: honest wheels from :mod:`seeds` mutated byte by byte, zips
built by :func:`wheelfactory.zip_bytes` with random header overrides, wheels whose metadata
members are replaced by hostile text, RECORD-like csv with huge fields, non-ASCII digits, NULs
and unknown hash names. Each test also checks a property of what comes back. Long runs of the
same targets live in ``fuzz/`` (atheris); this file stays well under 30 s.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seeds
from journalfuzz import signed, target
from oracles import csv_limit, plain_configparser
from stalwart.errors import MAX_SHOWN, InvalidWheelError, StalwartError
from stalwart.scripts import ScriptSpec, parse_entry_points, rewrite_shebang, script_specs
from stalwart.wheel.archive import Limits, WheelArchive
from stalwart.wheel.headers import parse_headers
from stalwart.wheel.record import (
    MAX_FIELD,
    MAX_PROBLEMS,
    UNKNOWN_HASH,
    RecordEntry,
    format_record,
    is_checkable,
    parse_record,
)
from stalwart.wheel.wheelfile import WheelWarning, open_wheel
from wheelfactory import Member, zip_bytes

# STALWART_FUZZ_EXAMPLES=5000 turns this file into a longer hunt (minutes, not seconds).
FAST = settings(
    max_examples=int(os.environ.get("STALWART_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEED_WHEELS = seeds.wheel_variants()
SMALL_LIMITS = Limits(max_total_size=1 << 20, max_entry_size=1 << 20, max_metadata_size=1 << 20)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every example (function-scoped tmp_path does not reset per example)."""
    return tmp_path_factory.mktemp("fuzz")


@contextmanager
def only_stalwart_errors() -> Iterator[None]:
    """The property every target shares: a StalwartError or nothing. Anything else fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WheelWarning)
            yield
    except StalwartError as exc:
        assert exc.problems or exc.subject
        assert len(str(exc)) < 50_000, "error messages are capped"


# -- strategies ------------------------------------------------------------------------------------

INTERESTING_INTS = st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0xFFFFFFFF])
INTERESTING_U16 = st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFE, 0xFFFF])


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """*data* with a few byte-level mutations: flips, overwrites, inserts, cuts, splices."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice", "int"]))
        if op == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            out[at] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del out[at : at + draw(st.integers(1, 16))]
        elif op == "truncate":
            del out[at:]
        elif op == "splice":  # copy a chunk elsewhere: duplicated headers, overlapping entries
            size = draw(st.integers(1, 64))
            chunk = bytes(out[at : at + size])
            to = draw(st.integers(0, len(out)))
            out[to:to] = chunk
        else:  # overwrite a little-endian field with a boundary value
            value = draw(INTERESTING_INTS)
            width = draw(st.sampled_from([2, 4]))
            out[at : at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return bytes(out)


def mutated_wheel() -> st.SearchStrategy[bytes]:
    return st.sampled_from(sorted(SEED_WHEELS)).flatmap(lambda k: mutated(SEED_WHEELS[k]))


NAMES = st.sampled_from(
    [
        "demo/a.py",
        "demo/",
        "Demo/A.py",
        "demo/a.py/",
        "../evil.py",
        "/abs.py",
        "a\\b.py",
        "C:x.py",
        "con.txt",
        "x\x00y",
        "é/ñ.py",
        "e\u0301/n.py",
        "a//b",
        "dir. /f",
        "a" * 300,
        "a/" * 200 + "deep",
    ]
)


@st.composite
def hostile_members(draw: st.DrawFn) -> list[Member]:
    """Members whose header fields are overridden at random (None keeps the honest value)."""
    members = []
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.binary(max_size=64) | st.just(b"A" * 5000))
        maybe = st.none() | INTERESTING_INTS
        members.append(
            Member(
                name=draw(NAMES | st.binary(max_size=12)),
                data=data,
                method=draw(st.sampled_from([0, 8, 8, 12, 99])),
                unix_mode=draw(st.sampled_from([None, 0o100644, 0o40755, 0o120777, 0o10644])),
                flags=draw(st.sampled_from([0, 0x1, 0x8, 0x800, 0x40, 0x2000])),
                descriptor=draw(st.booleans()),
                descriptor_signature=draw(st.booleans()),
                zip64=draw(st.booleans()),
                payload=draw(st.none() | st.binary(max_size=32)),
                crc=draw(maybe),
                size=draw(maybe),
                compressed_size=draw(maybe),
                extra=draw(
                    st.sampled_from([b"", b"\x01\x00\x04\x00abcd", b"\x75\x70\x01\x00", b"\xff"])
                ),
                local_name=draw(st.none() | st.binary(max_size=8)),
                local_method=draw(st.none() | st.sampled_from([0, 8])),
                local_crc=draw(maybe),
                local_size=draw(maybe),
                offset=draw(maybe),
                write_local=draw(st.booleans() | st.just(True)),
                after=draw(st.sampled_from([b"", b"junk"])),
            )
        )
    return members


@st.composite
def hostile_zip(draw: st.DrawFn) -> bytes:
    members = draw(hostile_members())
    maybe = st.none() | INTERESTING_INTS
    return zip_bytes(
        members,
        prefix=draw(st.sampled_from([b"", b"MZ\x90\x00"])),
        trailing=draw(st.sampled_from([b"", b"PK\x05\x06", b"trailing"])),
        comment=draw(st.sampled_from([b"", b"comment", b"PK\x05\x06" + bytes(18)])),
        zip64_end=draw(st.booleans()),
        count=draw(st.none() | INTERESTING_U16),
        cd_size=draw(maybe),
        cd_offset=draw(maybe),
        cd_trailer=draw(st.sampled_from([b"", b"x"])),
    )


# RECORD-like csv: pieces that break one rule at a time, joined into fields, rows and lines.
SHA256 = "sha256=" + "A" * 43
FIELD_PIECES = st.sampled_from(
    [
        "",
        "demo/a.py",
        "é.py",
        SHA256,
        "sha256=",
        "sha256=" + "A" * 42,
        "md5=1B2M2Y8AsgTpgAmY7PhCfg",
        "shake_128=AAAA",
        "shake_128=",
        "foo=YWJj",
        f"{UNKNOWN_HASH}=",
        "=",
        "$",
        "12",
        "0",
        "²",
        "١٢",
        "-1",
        " ",
        "9" * 25,
        "\x00",
        '"',
        '""',
        ",",
        "\r",
        "\n",
        "\r\n",
        "\ufeff",
        "\x1b[2J",
    ]
)
HUGE_FIELDS = st.sampled_from(["x" * (MAX_FIELD + 1), "9" * (MAX_FIELD + 1), "a" * 4301])
FIELDS = (
    st.lists(FIELD_PIECES, max_size=4).map("".join)
    | st.text(max_size=12)
    | HUGE_FIELDS
    | FIELD_PIECES
)


def _quote(field: str) -> str:
    return '"' + field.replace('"', '""') + '"'


@st.composite
def record_text(draw: st.DrawFn) -> str:
    rows = []
    for fields in draw(st.lists(st.lists(FIELDS, max_size=5), max_size=8)):
        cells = [_quote(f) if draw(st.booleans()) else f for f in fields]
        rows.append(",".join(cells))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ending.join(rows) + draw(st.sampled_from(["", ending]))
    if draw(st.booleans()):  # some honest rows around the broken ones
        honest = format_record([RecordEntry("demo/ok.py", "sha256", bytes(32), 7)]).decode()
        text = honest + text + "\n" + honest
    return text


METADATA_PIECES = st.sampled_from(
    [
        "Name: demo",
        "Version: 1.0",
        "Version: " + "1" * 5000,
        "Name: " + "n" * 70000,
        "Metadata-Version: 2.1",
        "Wheel-Version: 1.0",
        "Wheel-Version: 2.0",
        "Wheel-Version: 1.9",
        "Wheel-Version: \u0661.\u0660",
        "Root-Is-Purelib: true",
        "Root-Is-Purelib: maybe",
        " continued",
        "\tcontinued",
        "no colon here",
        ":",
        "",
        "\ufeffName: demo",
        "Summary: a\u2028Name: evil",
        "Summary: a\x85b",
        "Name: demo\x00",
    ]
)


@st.composite
def header_text(draw: st.DrawFn) -> str:
    lines = draw(st.lists(METADATA_PIECES | st.text(max_size=20), max_size=10))
    return draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)


EP_LINES = st.sampled_from(
    [
        "[console_scripts]",
        "[gui_scripts]",
        "[DEFAULT]",
        "[other]",
        "[console_scripts",
        "demo = demo.cli:main",
        "demo-x = demo.cli:run [extra]",
        "a:b = m:f",
        "Tool = pkg.mod:obj.attr",
        "x = m",
        "x = m:f:g",
        "x = 1m:f",
        "x = m:class",
        "../x = m:f",
        ".x = m:f",
        "a\\b = m:f",
        "c:x = m:f",
        "x\x01 = m:f",
        "= m:f",
        "x =",
        "x = %(y)s",
        "    continued",
        "# comment",
        "; comment",
        "",
        "no delimiter",
        "x" + " " * 300 + "y",
    ]
)


@st.composite
def entry_points_text(draw: st.DrawFn) -> str:
    lines = draw(st.lists(EP_LINES | st.text(max_size=16), max_size=12))
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


# -- the zip reader --------------------------------------------------------------------------------


def _drain(path: Path) -> None:
    """Open, list and stream every entry out, as extraction does."""
    with WheelArchive(path, SMALL_LIMITS) as archive:
        for entry in archive.entries:
            if entry.is_dir:
                continue
            sink = bytearray()
            digest, size = archive.copy_to(entry, sink.extend)
            assert size == len(sink) == entry.size
            assert archive.read(entry.name) == bytes(sink)
            assert len(digest) == 32


@FAST
@given(data=mutated_wheel() | hostile_zip() | st.binary(max_size=256))
def test_archive_reader_raises_only_stalwart_errors(scratch: Path, data: bytes) -> None:
    path = scratch / "archive.zip"
    path.write_bytes(data)
    with only_stalwart_errors():
        _drain(path)


# -- open_wheel ------------------------------------------------------------------------------------

MEMBERS = ["METADATA", "WHEEL", "RECORD", "entry_points.txt"]


@st.composite
def hostile_wheel(draw: st.DrawFn) -> dict[str, bytes]:
    """An honest wheel whose metadata members are partly replaced by hostile content."""
    files = seeds.wheel_files()
    for member in draw(st.lists(st.sampled_from(MEMBERS), max_size=3, unique=True)):
        name = f"{seeds.DIST_INFO}/{member}"
        good = files[name].decode()
        text = draw(
            st.sampled_from([good.replace("\n", "\r"), "\ufeff" + good, good + "\x00"])
            | (record_text() if member == "RECORD" else header_text())
            | (entry_points_text() if member == "entry_points.txt" else st.just(good))
        )
        raw = text.encode("utf-8", "surrogatepass")
        files[name] = draw(st.sampled_from([raw, raw + b"\xff", raw.replace(b"a", b"\xe9", 1)]))
    if draw(st.booleans()):
        files[draw(NAMES)] = b"extra"
    return files


FILENAMES = st.sampled_from(
    [
        seeds.FILENAME,
        seeds.FILENAME,
        "demo-1.0-1-py3-none-any.whl",
        "demo-2.0-py3-none-any.whl",
        "Demo-1.0-py3-none-any.whl",
        "demo-1.0.whl",
        "demo-1.0-x-py3-none-any.whl",
        f"demo-{'1' * 200}-py3-none-any.whl",
        "demo-1.0-py3-none-any.zip",
    ]
)


@FAST
@given(
    files=hostile_wheel(),
    mutate=st.booleans(),
    filename=FILENAMES,
    verify=st.booleans(),
    data=st.data(),
)
def test_open_wheel_raises_only_stalwart_errors(
    scratch: Path,
    files: dict[str, bytes],
    mutate: bool,
    filename: str,
    verify: bool,
    data: st.DataObject,
) -> None:
    raw = seeds.make_wheel_bytes(files)
    if mutate:
        raw = data.draw(mutated(raw))
    path = scratch / filename
    path.write_bytes(raw)
    with only_stalwart_errors():
        wheel = open_wheel(path, limits=SMALL_LIMITS, verify_record=verify)
        try:
            # What install planning does next with the validated wheel.
            text = wheel.read_text("entry_points.txt")
            specs = script_specs(text) if text else []
            assert all(isinstance(spec, ScriptSpec) for spec in specs)
            for entry in wheel.files:
                wheel.archive.read(entry.name)
            if verify:
                for entry in wheel.files:
                    if not entry.name.endswith(("/RECORD", "/RECORD.jws", "/RECORD.p7s")):
                        assert is_checkable(wheel.record[entry.name].hash_name)
        finally:
            wheel.close()


# -- RECORD ----------------------------------------------------------------------------------------


@FAST
@given(text=record_text())
def test_strict_record_reports_or_round_trips(text: str) -> None:
    entries, problems = parse_record(text, source="R")
    assert len(problems) <= MAX_PROBLEMS
    assert all(p.startswith("R") for p in problems)
    for entry in entries:
        assert entry.path and len(entry.path) <= MAX_FIELD and "\x00" not in entry.path
        assert (entry.hash_name is None) == (entry.digest is None)
        assert entry.hash_name != UNKNOWN_HASH
    # What strict mode accepts, format_record writes back to the same entries.
    assert parse_record(format_record(entries).decode("utf-8")) == (entries, [])
    # The result never depends on the process-wide csv limit.
    with csv_limit(8):
        assert parse_record(text, source="R") == (entries, problems)


@FAST
@given(text=record_text())
def test_lenient_record_keeps_every_usable_path(text: str) -> None:
    entries, problems = parse_record(text, lenient=True)
    strict, _ = parse_record(text)
    assert len(problems) <= MAX_PROBLEMS
    assert all(isinstance(e.path, str) and e.path for e in entries)
    assert all(e.size is None or e.size >= 0 for e in entries)
    assert all(not e.checkable or e.digest is not None for e in entries)
    # Lenient keeps what strict keeps, plus rows whose hash or size it cannot use.
    assert set(strict) <= set(entries)
    for extra in set(entries) - set(strict):
        assert extra.hash_name == UNKNOWN_HASH or extra.size is None


# -- METADATA / WHEEL headers ----------------------------------------------------------------------


@FAST
@given(text=header_text() | st.text(max_size=200))
def test_headers_never_raise_and_stop_at_the_blank_line(text: str) -> None:
    headers = parse_headers(text)
    for name in ("name", "version", "wheel-version", "summary"):
        values = headers.get_all(name)
        assert headers.get(name) == (values[0] if values else None)
        for value in values:
            assert "\r" not in value  # lines end at CR too, like email.parser
    # Nothing after the first blank line is a header.
    assert parse_headers(text + "\n\nName: after").get_all("name") == headers.get_all("name")


# -- entry_points.txt ------------------------------------------------------------------------------


@FAST
@given(text=entry_points_text())
def test_entry_points_only_invalid_wheel_errors_and_same_as_configparser(text: str) -> None:
    try:
        groups = parse_entry_points(text)
    except InvalidWheelError as exc:
        assert 1 <= len(exc.problems) <= MAX_SHOWN
        assert plain_configparser(text) is None
        return
    assert groups == plain_configparser(text)


@FAST
@given(text=entry_points_text())
def test_script_specs_are_safe_or_refused(text: str) -> None:
    try:
        specs = script_specs(text)
    except InvalidWheelError as exc:
        assert 1 <= len(exc.problems) <= MAX_SHOWN
        return
    for spec in specs:
        assert spec.name and not spec.name.startswith(".")
        assert not set(spec.name) & set("/\\:\x00\n\r")
        assert spec.attr is not None
        assert all(part.isidentifier() for part in f"{spec.module}.{spec.attr}".split("."))


# -- shebangs --------------------------------------------------------------------------------------

SHEBANG_PIECES = st.sampled_from(
    [
        *(b"#!python", b"#!pythonw", b"#!python3.11", b" -E", b"\t-s", b"w", b"foo", b"\r", b"\n"),
        *(b"\r\n", b"\x00", b"'''", b'"$0"', b" " * 200, b"\xff\xfe", b"print(1)"),
    ]
)


@FAST
@given(
    pieces=st.lists(SHEBANG_PIECES | st.binary(max_size=8), max_size=8),
    seed=st.sampled_from(seeds.SHEBANGS),
    python=st.sampled_from(seeds.PYTHONS),
    windows=st.booleans(),
)
def test_rewrite_shebang_keeps_the_rest_of_the_file(
    pieces: list[bytes], seed: bytes, python: str, windows: bool
) -> None:
    data = b"".join(pieces) + seed
    with only_stalwart_errors():
        new = rewrite_shebang(data, python, windows=windows)
        if not data.startswith(b"#!python"):
            assert new is None
            return
        assert new is None or new.startswith(b"#!")
        out = data if new is None else new
        end = data.find(b"\n")
        rest = b"" if end < 0 else data[end + 1 :]
        assert out.endswith(rest)


# -- the problem cap is shared by every parser ----------------------------------------------------


@pytest.mark.parametrize(
    "parse",
    [
        lambda: parse_record("x\n" * 10_000),
        lambda: parse_record("x\n" * 10_000, lenient=True),
    ],
)
def test_problem_lists_stay_bounded(
    parse: Callable[[], tuple[list[RecordEntry], list[str]]],
) -> None:
    _, problems = parse()
    assert len(problems) == MAX_PROBLEMS
    assert problems[-1].endswith(f"{10_000 - MAX_PROBLEMS + 1} more problems are not listed")


# -- transaction journals ------------------------------------------------------------------------

PATHY = st.sampled_from(
    [
        seeds.JOURNAL_ENV,
        f"{seeds.JOURNAL_ENV}/lib/site-packages/x.py",
        f"{seeds.JOURNAL_ENV}/../etc/passwd",
        f"{seeds.JOURNAL_TXN}/stage/1",
        f"{seeds.JOURNAL_TXN}/backup/0",
        f"{seeds.JOURNAL_TXN}/../txn-other/stage/1",
        "/proc/self/cwd/x",
        "relative/x",
        "",
        "\x00",
    ]
) | st.text(max_size=40)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | PATHY,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def journal_steps(draw: st.DrawFn) -> object:
    pair = st.lists(st.tuples(PATHY, PATHY).map(list) | JSONISH, max_size=4)
    steps = {
        "mkdirs": draw(st.lists(PATHY, max_size=4) | JSONISH),
        "backups": draw(pair),
        "installs": draw(pair),
        "prune": draw(st.lists(PATHY, max_size=4) | JSONISH),
    }
    for key in draw(st.sets(st.sampled_from(sorted(steps)))):
        del steps[key]
    return steps


@FAST
@given(steps=journal_steps(), raw=st.binary(max_size=200))
def test_a_journal_is_refused_or_names_only_its_own_places(steps: object, raw: bytes) -> None:
    """Signed or not, a journal yields steps inside the environment and its own transaction
    directory, or a refusal; nothing else escapes (the fuzz/fuzz_journal.py properties)."""
    target(raw)
    target(json.dumps(steps).encode())
    assert signed(json.dumps(steps).encode()) is not None  # the signed form was tried too
