"""Fuzz target: the zip reader on arbitrary bytes: open, list, and stream every entry out.

Run: ``python fuzz/fuzz_archive.py -max_total_time=600`` (see fuzz/README.md).
"""

from __future__ import annotations

import harness

with harness.instrumented():
    from stalwart.wheel.archive import Limits, WheelArchive

import seeds

LIMITS = Limits(max_total_size=1 << 22, max_entry_size=1 << 22, max_metadata_size=1 << 20)
PATH = harness.scratch_file("archive.zip")


def target(data: bytes) -> None:
    PATH.write_bytes(data)
    with WheelArchive(PATH, LIMITS) as archive:
        for entry in archive.entries:
            if entry.is_dir:
                continue
            sink = bytearray()
            _digest, size = archive.copy_to(entry, sink.extend)
            assert size == len(sink) == entry.size, "streamed size differs from the declared one"
            assert archive.read(entry.name) == bytes(sink), "two reads of one entry differ"


if __name__ == "__main__":
    harness.run("archive", target, lambda: seeds.wheel_variants().values())
