"""Fuzz target: the METADATA/WHEEL header reader.

Run: ``python fuzz/fuzz_headers.py -max_total_time=600`` (see fuzz/README.md).
"""

from __future__ import annotations

import harness

with harness.instrumented():
    from stalwart.wheel.headers import parse_headers

import seeds


def target(data: bytes) -> None:
    text = harness.text_of(data)
    headers = parse_headers(text)
    for name in ("name", "version", "wheel-version", "root-is-purelib"):
        values = headers.get_all(name)
        assert headers.get(name) == (values[0] if values else None)
        assert all("\r" not in value for value in values), "a line ended inside a value"
    after = parse_headers(text + "\n\nName: after")
    assert after.get_all("name") == headers.get_all("name"), "read past the header block"


if __name__ == "__main__":
    harness.run("headers", target, lambda: (t.encode() for t in seeds.metadata_texts()))
