"""Fuzz target: reading a transaction journal back (what recovery acts on); the target and its
properties are in ``tests/journalfuzz.py``.

Run: ``python fuzz/fuzz_journal.py -max_total_time=600`` (see fuzz/README.md).
"""

from __future__ import annotations

import harness

with harness.instrumented():
    import stalwart.transaction  # noqa: F401 - instrumented before journalfuzz imports it

import journalfuzz
import seeds

if __name__ == "__main__":
    harness.run("journal", journalfuzz.target, lambda: (s.encode() for s in seeds.journal_steps()))
