"""Time-based faultshim rules: a lock that lasts a given time, whoever retries how often.

A rule ``op:glob:errno:count:ms`` (``Rule(..., seconds=...)``) fails matching calls from the
first one until *ms* of CLOCK_MONOTONIC have passed. These tests run real child processes and
measure, inside the child, when calls failed and when they passed again; the lock-episode run
(``test_lock_episodes.py``) builds on exactly this.
"""

from __future__ import annotations

import errno
import json
import sys
import textwrap
from pathlib import Path

import pytest

from faultshim.harness import LogEntry, Rule, ShimConfigError, read_log, run_under_shim

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="LD_PRELOAD shim: Linux/glibc only"
)

# Retries os.replace('a', 'b') every `pause` seconds until it passes (or `give_up` seconds
# went by), then replaces back and forth `after` more times. Prints, for each call, its
# errno (0 = passed) and the monotonic times just before and just after it.
RETRY_LOOP = """
import json, os, time
calls = []

def call(src, dst):
    before = time.monotonic()
    try:
        os.replace(src, dst)
        code = 0
    except OSError as exc:
        code = exc.errno
    calls.append((code, before, time.monotonic()))
    return code

start = time.monotonic()
while call("a", "b") and time.monotonic() - start < {give_up}:
    time.sleep({pause})
for i in range({after}):
    call("b", "a") if i % 2 == 0 else call("a", "b")
print(json.dumps(calls))
"""


def retry_loop(
    tmp_path: Path, rule: Rule, *, pause: float = 0.01, give_up: float = 5.0, after: int = 4
) -> tuple[list[tuple[int, float, float]], list[LogEntry]]:
    """Run RETRY_LOOP under *rule*; returns its calls and the shim's fault lines."""
    (tmp_path / "a").write_text("payload")
    log = tmp_path / "faults.log"
    code = RETRY_LOOP.format(pause=pause, give_up=give_up, after=after)
    result = run_under_shim(
        [sys.executable, "-c", textwrap.dedent(code)], rules=[rule], log=log, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    calls = [(int(c), float(b), float(a)) for c, b, a in json.loads(result.stdout)]
    return calls, [e for e in read_log(log) if e.kind == "fault"]


def test_spec_has_a_fifth_field_only_with_seconds() -> None:
    assert Rule("rename", "*b", "EBUSY", 3).spec() == "rename:*b:16:3"
    assert Rule("rename", "*b", "EBUSY", -1, seconds=0.3).spec() == "rename:*b:16:-1:300.000000"
    assert Rule("open", "*.so", "ETXTBSY", 2, seconds=0.0015).spec().endswith(":26:2:1.500000")


def test_rules_the_shim_would_misread_are_refused() -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        Rule("rename", "*", "EBUSY", -1, seconds=-0.1)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        Rule("rename", "*", "EBUSY", -1, seconds=float("nan"))
    # Four fields "rename:*:EBUSY:16:3" would be read as glob '*', errno EBUSY, count 16, 3 ms.
    with pytest.raises(ValueError, match="needs seconds"):
        Rule("rename", "*:EBUSY", "EBUSY", 3)
    Rule("rename", "*:EBUSY", "EBUSY", -1)  # count -1 is no number of milliseconds: unambiguous
    Rule("rename", "*:EBUSY", "EBUSY", 3, seconds=1.0)
    Rule("rename", "*a:b", "EBUSY", 3)  # other colons in a glob are fine


def test_a_lock_of_300_ms_lets_a_retrying_caller_through_after_300_ms(tmp_path: Path) -> None:
    calls, faults = retry_loop(tmp_path, Rule("rename", "*b", "EBUSY", -1, seconds=0.3))
    failed = [c for c in calls if c[0] != 0]
    first_pass = next(i for i, c in enumerate(calls) if c[0] == 0)
    assert first_pass == len(failed) > 5  # every call failed until one passed, then none
    assert {c[0] for c in failed} == {errno.EBUSY}
    opened = calls[0][1]  # the window opened during the first call, not before it
    # The last refused call started inside the window; the first passing one ended after it.
    assert failed[-1][1] < calls[0][2] + 0.3
    assert calls[first_pass][2] >= opened + 0.3
    # A caller polling every 10 ms gets through soon after: generous for a loaded machine.
    assert calls[first_pass][1] < opened + 0.3 + 0.25
    assert (tmp_path / "b").read_text() == "payload"  # an even number of swaps after it
    # The shim logged exactly the refused calls.
    assert len(faults) == len(failed)
    assert {(e.op, e.errno, e.paths) for e in faults} == {("rename", errno.EBUSY, ("a", "b"))}


def test_calls_after_the_window_pass_however_long_the_count(tmp_path: Path) -> None:
    """One refused call opens a 100 ms window; after sleeping past it every call passes."""
    calls, faults = retry_loop(
        tmp_path, Rule("rename", "*", "ETXTBSY", -1, seconds=0.1), pause=0.25, after=6
    )
    assert [c[0] for c in calls] == [errno.ETXTBSY] + [0] * 7
    assert len(faults) == 1


def test_count_bounds_a_timed_rule(tmp_path: Path) -> None:
    calls, faults = retry_loop(tmp_path, Rule("rename", "*b", "EBUSY", 2, seconds=60))
    assert [c[0] for c in calls] == [errno.EBUSY, errno.EBUSY] + [0] * 5
    assert len(faults) == 2


def test_a_window_of_zero_fails_nothing(tmp_path: Path) -> None:
    calls, faults = retry_loop(tmp_path, Rule("rename", "*b", "EBUSY", -1, seconds=0))
    assert [c[0] for c in calls] == [0] * 5
    assert faults == []


def test_the_window_opens_at_the_first_matching_call(tmp_path: Path) -> None:
    """Calls the rule does not match, however many and however late, start no clock."""
    code = """
        import os, time
        for i in range(5):
            open(f"other{i}", "w").close()   # opens: not the rule's op
            os.replace(f"other{i}", f"moved{i}")  # renames, but not of a matching path
        time.sleep(0.6)
        open("a", "w").close()
        for _ in range(3):
            try:
                os.replace("a", "locked")
                print(0)
            except OSError as exc:
                print(exc.errno)
    """
    result = run_under_shim(
        [sys.executable, "-c", textwrap.dedent(code)],
        rules=[Rule("rename", "*locked", "EBUSY", -1, seconds=0.5)],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(errno.EBUSY)] * 3


def test_old_and_new_forms_mix_and_colons_in_globs_survive(tmp_path: Path) -> None:
    code = """
        import os
        for name in ("x:1", "y"):
            open(name, "w").close()
            for _ in range(3):
                try:
                    os.unlink(name)
                    print(name, 0)
                except OSError as exc:
                    print(name, exc.errno)
    """
    result = run_under_shim(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"FAULTSHIM_RULES": "unlink:*x:1:EIO:1;unlink:*y:EBUSY:-1:60000"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"x:1 {errno.EIO}",
        "x:1 0",
        f"x:1 {errno.ENOENT}",
        *[f"y {errno.EBUSY}"] * 3,
    ]


@pytest.mark.parametrize(
    "rules",
    ["unlink:*:EBUSY:1:abc", "unlink:*:EBUSY:1:-5", "unlink:*:EBUSY:1:nan", "unlink:*:EBUSY"],
)
def test_bad_durations_fail_loudly(tmp_path: Path, rules: str) -> None:
    with pytest.raises(ShimConfigError, match="FAULTSHIM_RULES"):
        run_under_shim(
            [sys.executable, "-c", "print('never runs')"],
            env={"FAULTSHIM_RULES": rules},
            cwd=tmp_path,
        )


STALWART_REPLACE = """
import time, stalwart.fs as f
start = time.monotonic()
f.replace('a', 'b')
print(time.monotonic() - start)
"""


def test_stalwart_waits_out_a_300_ms_lock_within_its_budget(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("old")
    log = tmp_path / "faults.log"
    result = run_under_shim(
        [sys.executable, "-c", STALWART_REPLACE],
        rules=[Rule("rename", "*b", "EBUSY", -1, seconds=0.3)],
        env={"STALWART_LOCK_TIMEOUT": "1"},
        log=log,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    # Let through within one capped back-off sleep (200 ms) of the window's end, long before
    # the 1 s budget: it was waited out, not run into.
    assert 0.3 <= float(result.stdout) < 0.3 + 0.2 + 0.2
    assert (tmp_path / "b").read_text() == "new"
    assert len(read_log(log)) > 5  # doubling sleeps from 1 ms: several refused attempts


GIVE_UP_THEN_RETRY = """
import time, stalwart.fs as f
from stalwart.errors import LockTimeoutError
start = time.monotonic()
try:
    f.replace('a', 'b')
except LockTimeoutError as exc:
    print(round(time.monotonic() - start, 3), exc.attempts)
time.sleep(0.45)
f.replace('a', 'b')  # past the 0.6 s window: let go
print('replaced')
"""


def test_stalwart_gives_up_on_a_lock_longer_than_its_budget(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("old")
    result = run_under_shim(
        [sys.executable, "-c", GIVE_UP_THEN_RETRY],
        rules=[Rule("rename", "*b", "EBUSY", -1, seconds=0.6)],
        env={"STALWART_LOCK_TIMEOUT": "0.2"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    gave_up, replaced = result.stdout.splitlines()
    waited, attempts = gave_up.split()
    assert 0.2 <= float(waited) < 0.6  # the whole budget, then no further attempt
    assert int(attempts) > 5
    assert replaced == "replaced"
    assert (tmp_path / "b").read_text() == "new"
