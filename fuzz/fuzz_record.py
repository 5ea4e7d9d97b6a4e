"""Fuzz target: RECORD parsing, strict (a wheel's) and lenient (an installed one), with the
properties tests/test_fuzz.py checks.

An input starting with ``!`` has its first ``~`` replaced by a field longer than the csv
module's limit, so short inputs reach the limit-free reader too.

Run: ``python fuzz/fuzz_record.py -max_total_time=600`` (see fuzz/README.md).
"""

from __future__ import annotations

import harness

with harness.instrumented():
    from stalwart.wheel.record import (
        MAX_FIELD,
        MAX_PROBLEMS,
        UNKNOWN_HASH,
        format_record,
        parse_record,
    )

import seeds
from oracles import csv_limit


def target(data: bytes) -> None:
    text = harness.text_of(data)
    if text.startswith("!"):
        text = text[1:].replace("~", "x" * (MAX_FIELD + 1), 1)
    entries, problems = parse_record(text)
    assert len(problems) <= MAX_PROBLEMS
    for entry in entries:
        assert entry.path and len(entry.path) <= MAX_FIELD and "\x00" not in entry.path
        assert (entry.hash_name is None) == (entry.digest is None)
    assert parse_record(format_record(entries).decode("utf-8")) == (entries, []), "round trip"
    lenient, lenient_problems = parse_record(text, lenient=True)
    assert len(lenient_problems) <= MAX_PROBLEMS
    assert set(entries) <= set(lenient), "lenient lost a row strict kept"
    for extra in set(lenient) - set(entries):
        assert extra.hash_name == UNKNOWN_HASH or extra.size is None
    if len(data) % 8 == 0:  # now and then: the answer must not depend on csv's global limit
        with csv_limit(8):
            assert parse_record(text) == (entries, problems), "depends on csv.field_size_limit"


if __name__ == "__main__":
    harness.run("record", target, lambda: (t.encode() for t in seeds.record_texts()))
