"""parse_headers on hostile METADATA/WHEEL text: linear, and lines end where email.parser says.

Each test reproduces a defect the fuzzers found.
"""

from __future__ import annotations

import email.parser

import pytest

from stalwart.wheel.headers import parse_headers


def test_400000_continuation_lines_are_joined_once() -> None:
    # Each continuation used to copy the whole value so far: quadratic, seconds for this input.
    headers = parse_headers("License: first\n" + " more\n" * 400_000 + "Name: demo\n")
    value = headers.get("License")
    assert value is not None
    assert value.count("\n") == 400_000
    assert value.endswith("\nmore")
    assert headers.get("Name") == "demo"


@pytest.mark.parametrize(
    "separator", ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"]
)
def test_only_cr_and_lf_end_a_line(separator: str) -> None:
    # str.splitlines() also splits at these: a field hidden in a value that pip never sees.
    text = f"Name: demo\nSummary: harmless{separator}Requires-Dist: evil\n"
    headers = parse_headers(text)
    assert headers.get_all("Requires-Dist") == []
    assert headers.get("Summary") == f"harmless{separator}Requires-Dist: evil"
    theirs = email.parser.HeaderParser().parsestr(text)
    assert theirs.get_all("Requires-Dist") is None


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
def test_every_line_ending(newline: str) -> None:
    text = newline.join(["Name: demo", "License: a", "  b", "", "Name: body"])
    headers = parse_headers(text)
    assert headers.get_all("Name") == ["demo"]
    assert headers.get("License") == "a\nb"


def test_a_header_line_of_megabytes() -> None:
    headers = parse_headers("Summary: " + "s" * 8_000_000 + "\nName: demo\n")
    assert headers.get("Name") == "demo"
    assert len(headers.get("Summary") or "") == 8_000_000
