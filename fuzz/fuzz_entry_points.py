"""Fuzz target: entry_points.txt parsing and console/GUI script validation.

Also checks that ``parse_entry_points`` (configparser with a linear option pattern) reads
exactly what an unmodified configparser reads, on inputs short enough for the latter.

Run: ``python fuzz/fuzz_entry_points.py -max_total_time=600`` (see fuzz/README.md).
"""

from __future__ import annotations

import harness

with harness.instrumented():
    from stalwart.errors import InvalidWheelError
    from stalwart.scripts import parse_entry_points, script_specs

import seeds
from oracles import plain_configparser


def target(data: bytes) -> None:
    text = harness.text_of(data)
    try:
        groups: dict[str, dict[str, str]] | None = parse_entry_points(text)
    except InvalidWheelError:
        groups = None
    if len(text) < 1024:  # configparser itself is quadratic on long blank runs
        assert groups == plain_configparser(text), "differs from configparser"
    if groups is not None:
        for spec in script_specs(text):
            assert not set(spec.name) & set("/\\:\x00\r\n"), spec.name
            assert spec.attr is not None


if __name__ == "__main__":
    harness.run("entry_points", target, lambda: (t.encode() for t in seeds.entry_points_texts()))
