"""The journal fuzz target, shared by ``fuzz/fuzz_journal.py`` (atheris) and ``test_fuzz.py``.

The input is taken two ways: as the journal file itself (unsigned garbage must be refused), and
as the ``steps`` of a journal signed with the right key (so the reader's checks after the
signature are reached: a wheel cannot sign, but the reader must not rely on that alone). Either
way the reader may only refuse (``ValueError``, which recovery reports as a JournalError) or
return steps whose every path lies in the environment or its own transaction directory.
"""

from __future__ import annotations

import json
import os

import seeds
from stalwart import journalkey
from stalwart.errors import JournalError
from stalwart.transaction import JournalSteps, read_journal

KEY = b"k" * 32
ROOTS = [seeds.JOURNAL_ENV]


def read(raw: bytes, trust: bool = False) -> JournalSteps:
    try:
        return read_journal(raw, seeds.JOURNAL_TXN, ROOTS, KEY, trust=trust)
    except ValueError as exc:
        raise JournalError("journal.json", str(exc)) from None


def contained(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return os.path.isabs(path) and (real == root or real.startswith(root.rstrip("/") + "/"))


def check(steps: JournalSteps) -> None:
    stage = os.path.join(seeds.JOURNAL_TXN, "stage")
    backup = os.path.join(seeds.JOURNAL_TXN, "backup")
    for path in [*steps.mkdirs, *steps.prune, *(d for d, _ in steps.backups)]:
        assert contained(seeds.JOURNAL_ENV, path), path
    for staged, dest in steps.installs:
        assert contained(stage, staged) and contained(seeds.JOURNAL_ENV, dest), (staged, dest)
    for _, saved in steps.backups:
        assert contained(backup, saved), saved


def signed(steps_json: bytes) -> bytes | None:
    try:
        steps = json.loads(steps_json.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    # The journal format, as an attacker could read it from the source: the MAC covers the
    # transaction directory's name and the steps.
    payload = json.dumps([os.path.basename(seeds.JOURNAL_TXN), steps], sort_keys=True)
    mac = journalkey.sign(KEY, payload.encode())
    return json.dumps({"format": 2, "steps": steps, "mac": mac}).encode()


def target(data: bytes) -> None:
    """Refusals (JournalError) are fine; anything returned must hold :func:`check`."""
    for raw in (data, signed(data)):
        if raw is None:
            continue
        try:
            steps = read(raw)
        except JournalError:
            continue
        check(steps)
