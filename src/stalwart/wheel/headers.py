"""Reading the RFC 822-style headers of METADATA and WHEEL files. Pure.

``email.parser`` does this too, but importing it costs ~9 ms and parsing a whole METADATA
(long descriptions included) is slow when ``list`` reads every installed distribution. Core
metadata only needs the header block: fields, repeated fields, and indented continuation lines.
Like ``email.parser``, lines end only at ``\\r\\n``, ``\\r`` or ``\\n``: ``str.splitlines()`` also
splits at ``\\x1c``, ``\\x85`` or ``\\u2028``, which would let a hostile value hide a field that
pip does not see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["Headers", "parse_headers"]

_LINE_END = re.compile(r"\r\n?|\n")


class Headers:
    """Header fields by case-insensitive name, repeated fields kept in order."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._fields.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self._fields.get(name.lower(), ()))


def parse_headers(text: str) -> Headers:
    """Parse the header block of *text* (up to the first empty line). Never raises.

    Linear in the size of the header block: continuation lines are collected and joined once
    (appending each to the value so far was quadratic: 400,000 short continuation lines took
    seconds). Nothing after the header block is looked at.
    """
    fields: dict[str, list[list[str]]] = {}
    last: list[str] | None = None  # the lines of the field being read
    for line in _lines(text):
        if not line:
            break  # a line of spaces is a continuation line, as email.parser reads it
        if line[0] in " \t":
            if last is not None:  # continuation of the previous field
                last.append(line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue  # not a header line; email.parser would also skip it as a defect
        last = [value.strip()]
        fields.setdefault(name.strip().lower(), []).append(last)
    return Headers({name: ["\n".join(lines) for lines in all_] for name, all_ in fields.items()})


def _lines(text: str) -> Iterator[str]:
    """The lines of *text*, lazily: callers stop at the end of the header block."""
    start = 0
    for end in _LINE_END.finditer(text):
        yield text[start : end.start()]
        start = end.end()
    if start < len(text):
        yield text[start:]
