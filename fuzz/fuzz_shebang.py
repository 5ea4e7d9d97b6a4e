"""Fuzz target: rewriting the ``#!python`` line of ``.data/scripts/`` files.

The first input byte picks the interpreter path (low bits) and Windows or POSIX (high bit);
the rest is the file.

Run: ``python fuzz/fuzz_shebang.py -max_total_time=600`` (see fuzz/README.md).
"""

from __future__ import annotations

import harness

with harness.instrumented():
    from stalwart.scripts import rewrite_shebang

import seeds


def target(data: bytes) -> None:
    if not data:
        return
    python = seeds.PYTHONS[data[0] % len(seeds.PYTHONS)]
    windows = bool(data[0] & 0x80)
    script = data[1:]
    new = rewrite_shebang(script, python, windows=windows)
    if not script.startswith(b"#!python"):
        assert new is None, "rewrote a file without #!python"
        return
    out = script if new is None else new
    assert out.startswith(b"#!")
    end = script.find(b"\n")
    assert out.endswith(b"" if end < 0 else script[end + 1 :]), "changed the body"


def _seeds() -> list[bytes]:
    return [bytes([i]) + s for i in (0, 1, 2, 0x80, 0x83) for s in seeds.SHEBANGS]


if __name__ == "__main__":
    harness.run("shebang", target, _seeds)
