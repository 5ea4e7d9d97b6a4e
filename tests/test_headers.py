"""The METADATA/WHEEL header reader agrees with email.parser on what stalwart reads."""

from __future__ import annotations

import email.parser
import sysconfig
from pathlib import Path

import pytest

from stalwart.wheel.headers import parse_headers

SAMPLE = (
    "Metadata-Version: 2.1\n"
    "Name: Demo-Pkg\n"
    "Version: 1.0\n"
    "Summary: a summary\n"
    "Requires-Dist: one\n"
    "requires-dist: two ; extra == 'x'\n"
    "License: first line\n"
    "        second line\n"
    "\n"
    "Name: not-a-header: this is the long description\n"
)


def test_fields_repeats_case_and_continuations() -> None:
    h = parse_headers(SAMPLE)
    assert h.get("name") == "Demo-Pkg"
    assert h.get("VERSION") == "1.0"
    assert h.get_all("Requires-Dist") == ["one", "two ; extra == 'x'"]
    assert h.get("License") == "first line\nsecond line"
    assert h.get("Missing") is None
    assert h.get("Missing", "") == ""
    assert h.get_all("Missing") == []


def test_the_body_is_not_read() -> None:
    assert parse_headers(SAMPLE).get_all("Name") == ["Demo-Pkg"]


def _installed_metadata() -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    return sorted(site.glob("*.dist-info/METADATA"))[:60]


@pytest.mark.parametrize("path", _installed_metadata(), ids=lambda p: p.parent.name)
def test_agrees_with_email_parser_on_real_metadata(path: Path) -> None:
    text = path.read_text("utf-8")
    ours = parse_headers(text)
    theirs = email.parser.HeaderParser().parsestr(text)
    for field in ("Name", "Version", "Summary", "Requires-Dist", "Requires-Python"):
        expected = [" ".join(v.split()) for v in theirs.get_all(field) or []]
        assert [" ".join(v.split()) for v in ours.get_all(field)] == expected, field
