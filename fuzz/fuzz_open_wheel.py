"""Fuzz target: open_wheel (zip structure, METADATA, WHEEL, RECORD, entry_points.txt rules) on
arbitrary archives, then what install planning does with a wheel that passed.

Two kinds of input, chosen by the low bit of the first byte:

- odd: the rest is the wheel file, byte for byte (mutated zips);
- even: the rest is up to five chunks separated by ``\\xfe\\xfe`` that replace METADATA, WHEEL,
  RECORD and entry_points.txt of an honest wheel (an empty chunk keeps the honest member; an
  honest RECORD is recomputed) and name one extra member; the zip is written by zipfile, so
  mutations reach the metadata rules instead of failing the CRC check.

Run: ``python fuzz/fuzz_open_wheel.py -max_total_time=600`` (see fuzz/README.md).
"""

from __future__ import annotations

import io
import warnings
import zipfile

import harness

with harness.instrumented():
    import packaging.tags
    import packaging.utils
    import packaging.version  # noqa: F401 - imported lazily by open_wheel; instrument them too

    from stalwart.scripts import script_specs
    from stalwart.wheel.archive import Limits
    from stalwart.wheel.record import is_checkable
    from stalwart.wheel.wheelfile import WheelWarning, open_wheel

import seeds

LIMITS = Limits(max_total_size=1 << 22, max_entry_size=1 << 22, max_metadata_size=1 << 20)
PATH = harness.scratch_file(seeds.FILENAME)
SIGNATURES = ("/RECORD", "/RECORD.jws", "/RECORD.p7s")
MEMBERS = ("METADATA", "WHEEL", "RECORD", "entry_points.txt")
SEPARATOR = b"\xfe\xfe"
HONEST = seeds.wheel_files()
warnings.simplefilter("ignore", WheelWarning)


def _structured(payload: bytes) -> bytes:
    """An honest wheel whose metadata members are replaced by chunks of *payload*."""
    chunks = payload.split(SEPARATOR, len(MEMBERS))
    files = {k: v for k, v in HONEST.items() if not k.endswith("/RECORD")}
    for member, chunk in zip(MEMBERS, chunks, strict=False):
        if chunk and member != "RECORD":
            files[f"{seeds.DIST_INFO}/{member}"] = chunk
    if len(chunks) > len(MEMBERS):
        # zipfile cuts a name at its first NUL; an empty name it cannot write at all.
        name = chunks[-1].decode("utf-8", "replace")[:200].split("\x00", 1)[0]
        files[name or "x"] = b"extra"
    record = chunks[2] if len(chunks) > 2 and chunks[2] else None
    if record is None:
        record = seeds.record_text(files).encode()
    files[f"{seeds.DIST_INFO}/RECORD"] = record
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def target(data: bytes) -> None:
    if not data:
        return
    PATH.write_bytes(data[1:] if data[0] & 1 else _structured(data[1:]))
    verify = len(data) % 2 == 0  # both modes, without spending input bytes on a flag
    wheel = open_wheel(PATH, limits=LIMITS, verify_record=verify)
    try:
        text = wheel.read_text("entry_points.txt")
        if text:
            script_specs(text)
        for entry in wheel.files:
            wheel.archive.read(entry.name)
            if verify and not entry.name.endswith(SIGNATURES):
                assert is_checkable(wheel.record[entry.name].hash_name), entry.name
    finally:
        wheel.close()


def _seeds() -> list[bytes]:
    raw = [b"\x01" + wheel for wheel in seeds.wheel_variants().values()]
    members = [HONEST[f"{seeds.DIST_INFO}/{m}"] for m in MEMBERS]
    structured = [
        b"\x00" + SEPARATOR.join(members),
        b"\x00" + SEPARATOR.join([members[0], b"", b"", members[3]]),
        b"\x00" + SEPARATOR.join([b"", b"", b"", b"", b"demo/extra.py"]),
    ]
    return raw + structured


if __name__ == "__main__":
    harness.run("open_wheel", target, _seeds)
