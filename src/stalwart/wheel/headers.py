"""Reading the RFC 822-style headers of METADATA and WHEEL files. Pure.

``email.parser`` does this too, but importing it costs ~9 ms and parsing a whole METADATA
(long descriptions included) is slow when ``list`` reads every installed distribution. Core
metadata only needs the header block: fields, repeated fields, and indented continuation lines.
"""

from __future__ import annotations

__all__ = ["Headers", "parse_headers"]


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
    """Parse the header block of *text* (up to the first empty line)."""
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if last:  # continuation of the previous field
                last[-1] = f"{last[-1]}\n{line.strip()}"
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue  # not a header line; email.parser would also skip it as a defect
        last = fields.setdefault(name.strip().lower(), [])
        last.append(value.strip())
    return Headers(fields)
