"""Lock episodes of known and random length against the real ``stalwart install``.

``lockepisodes`` holds the machinery and the rules (see its docstring for the margins). Here:
the pure parts (bands, drawing, judging, known-issue matching) on fabricated facts; a handful
of chosen episodes through the real CLI, one per kind of outcome; regression tests for the
misbehaviours the random run found; and a short random run (``slow``; the long one is
``scripts/lock_episodes.py``). ``LOCK_EPISODES_SEED`` fixes the random run's seed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import lockepisodes as le
from faultshim.harness import Rule
from venvs import Venv

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="Linux only: LD_PRELOAD shim, POSIX venvs"
)

OPS_SEEN = {
    "fresh": {"script": ("rename",), "state": ("rename", "unlink", "mkdir")},
    "upgrade": {"so": ("rename", "open"), "any": ("rmdir",)},
}


# -- the pure parts -------------------------------------------------------------------------------


def test_bands_follow_the_margins() -> None:
    budget = 0.3
    assert le.band(0.001, budget) == "under"
    assert le.band(budget - le.UNDER_MARGIN - 1e-6, budget) == "under"
    assert le.band(budget - le.UNDER_MARGIN, budget) == "between"
    assert le.band(budget, budget) == "between"
    assert le.band(budget + le.OVER_MARGIN, budget) == "between"
    assert le.band(budget + le.OVER_MARGIN + 1e-6, budget) == "over"
    assert le.bucket(0.0015, budget) == (0.001, 0.003, "under")
    assert le.bucket(0.2, budget) == (0.1, budget - le.UNDER_MARGIN, "under")
    assert le.bucket(0.5, budget) == (budget + le.OVER_MARGIN, 2 * budget, "over")


def test_draw_is_reproducible_and_covers_what_the_install_performs() -> None:
    episodes = le.draw(42, 3000, OPS_SEEN, 0.3)
    assert episodes == le.draw(42, 3000, OPS_SEEN, 0.3)
    assert episodes != le.draw(43, 3000, OPS_SEEN, 0.3)
    assert le.draw(42, 10, OPS_SEEN, 0.3) == episodes[:10]  # episode i depends on i only
    assert [e.index for e in episodes] == list(range(3000))
    # Only operations the command performs on that class, every one of them drawn.
    drawn = {(e.scenario, e.path_class, e.op) for e in episodes}
    assert drawn == {(s, c, op) for s, m in OPS_SEEN.items() for c, ops in m.items() for op in ops}
    assert set(Counter(e.errno for e in episodes)) == set(le.ERRNOS)
    locks = [e.lock for e in episodes]
    assert min(locks) >= le.MIN_LOCK
    assert max(locks) <= 0.6
    # Log-uniform: a quarter of the draws in each quarter of [ln 1 ms, ln 600 ms].
    logs = [math.log(lock / le.MIN_LOCK) / math.log(0.6 / le.MIN_LOCK) for lock in locks]
    for q in (0.25, 0.5, 0.75):
        assert abs(sum(x < q for x in logs) / len(logs) - q) < 0.04


def seen(**changes: object) -> le.Observed:
    """The facts of a plain success, with *changes*."""
    base = le.Observed(
        band="under",
        exit_code=0,
        stdout="Installed 2 packages in 30 ms\n",
        stderr="",
        faulted=("/v/lib/site-packages/ant-1.0.dist-info/RECORD",),
        committed=True,
        faulted_after_commit=False,
        command_state="new",
        recover_exit=0,
        recover_output="nothing to recover\n",
        final_state="new",
        leftovers=(),
    )
    return dataclasses.replace(base, **changes)


LOCKED_MESSAGE = (
    "error: rename /v/x.so -> /v/.stalwart/txn-1/backup/000003 failed after 12 attempts over "
    "0.300 s: [EBUSY] Device or resource busy. Hint: ..."
)
FAILED = {
    "exit_code": 3,
    "stderr": LOCKED_MESSAGE,
    "faulted": ("/v/x.so", "/v/.stalwart/txn-1/backup/000003"),
    "committed": False,
    "command_state": "old",
    "final_state": "old",
}
COMMITTED = {
    "stderr": "warning: installed, but cleaning up /v/.stalwart/txn-1 failed (...)\n",
    "faulted_after_commit": True,
    "command_state": "neither; vs new: extra: ['lib/.stalwart']",
}


@pytest.mark.parametrize(
    ("facts", "outcome", "problems"),
    [
        ({}, le.SUCCEEDED, []),
        ({"waits": ((0.28, True), (0.01, True))}, le.SUCCEEDED, []),
        ({"band": "over", "waits": ((0.3, False), (0.25, True))}, le.SUCCEEDED, []),  # absorbed
        ({"band": "over"}, le.SUCCEEDED, ["nothing gave up"]),  # the lock was waited out
        ({"band": "over", "faulted": ()}, le.SUCCEEDED, []),  # not exercised: nothing locked
        ({**FAILED, "band": "over", "faulted": ()}, le.FAILED, ["without naming", "under"]),
        ({"band": "between"}, le.SUCCEEDED, []),
        ({"waits": ((0.3, False),)}, le.SUCCEEDED, ["gave up after 0.300 s"]),
        ({"band": "over", "waits": ((0.5, True),)}, le.SUCCEEDED, ["0.500 s", "nothing gave"]),
        ({**FAILED, "band": "over"}, le.FAILED, []),
        ({**FAILED, "band": "between"}, le.FAILED, []),
        ({**FAILED}, le.FAILED, ["failed cleanly although the lock was under the budget"]),
        ({**COMMITTED, "band": "over"}, le.COMMITTED, []),
        ({**COMMITTED}, le.COMMITTED, ["committed with warning although the lock was under"]),
        ({**FAILED, "band": "over", "stderr": "error: locked"}, le.FAILED, ["without naming"]),
        ({**FAILED, "band": "over", "final_state": "new"}, le.FAILED, ["not the old"]),
        ({**FAILED, "band": "over", "committed": True}, le.MISBEHAVED, ["exit 3"]),
        ({**COMMITTED, "band": "over", "final_state": "old"}, le.COMMITTED, ["not the new"]),
        # A warning needs a lock on cleanup after COMMITTED to be an acceptable outcome.
        ({**COMMITTED, "band": "over", "faulted_after_commit": False}, le.MISBEHAVED, ["exit 0"]),
        # Exit 0, no warning, and the environment is not yet right: silent deferral.
        ({"band": "over", "command_state": "neither"}, le.MISBEHAVED, ["no warning"]),
        ({"stderr": "Traceback (most recent call last):"}, le.SUCCEEDED, ["traceback"]),
        ({"recover_output": "Traceback ..."}, le.SUCCEEDED, ["traceback"]),
        ({"exit_code": 70}, le.MISBEHAVED, ["internal error", "exit 70"]),
        ({"recover_exit": 4}, le.SUCCEEDED, ["recover` exited 4"]),
        ({"leftovers": ("lib/.stalwart",)}, le.SUCCEEDED, ["left behind"]),
        ({"final_state": "neither"}, le.SUCCEEDED, ["not the new"]),
    ],
)
def test_judge(facts: dict[str, object], outcome: str, problems: list[str]) -> None:
    got, found = le.judge(seen(**facts))
    assert got == outcome
    assert len(found) == len(problems), found
    for want, problem in zip(problems, found, strict=True):
        assert want in problem


def test_lock_waits_are_read_from_the_verbose_summary() -> None:
    stdout = (
        " ~ ant 1.0 -> 2.0\nphases: stage 11 ms, compile 1 ms, commit 608 ms\n"
        "   lock: unlink /v/.stalwart/txn-1/journal.json: 10 attempts, 300 ms (gave up)\n"
        "   lock: rename /v/a -> /v/b: 9 attempts, 273 ms (ok)\n"
        "Installed 2 packages in 651 ms; 17 lock retries, waited 0.573 s (unlink 17)\n"
    )
    assert le.lock_waits(stdout) == ((0.3, False), (0.273, True))
    assert le.lock_waits("Installed 2 packages in 30 ms; no lock retries\n") == ()


# -- chosen episodes through the real CLI ---------------------------------------------------------


@pytest.fixture(autouse=True)
def _umask() -> Iterator[None]:
    """Every command of this module runs with the umask its scenarios were prepared under."""
    with le.umask(le.UMASK):
        yield


@pytest.fixture(scope="module")
def scenarios(
    tmp_path_factory: pytest.TempPathFactory, pristine_venv: Venv
) -> dict[str, le.Scenario]:
    with le.umask(le.UMASK):
        return le.prepare(tmp_path_factory.mktemp("episodes"), pristine_venv)


def test_prepared_scenarios_know_what_the_install_touches(
    scenarios: dict[str, le.Scenario],
) -> None:
    fresh, upgrade = scenarios["fresh"], scenarios["upgrade"]
    site = f"lib/{le.venvs.PY}/site-packages"
    assert f"{site}/ant/_speedups.cpython-311-x86_64-linux-gnu.so" in fresh.new
    assert f"{site}/ant/old/__init__.py" in upgrade.old
    assert f"{site}/ant/old" not in upgrade.new  # a directory the upgrade must prune
    assert fresh.old != fresh.new
    assert upgrade.old != upgrade.new
    for scenario in (fresh, upgrade):
        assert set(scenario.ops) == set(le.PATH_CLASSES)
        # RECORD is written in the stage, in its new .dist-info directory, which is made
        # there and moved into place whole (transaction.TREES).
        assert "open" in scenario.ops["record"]
        assert {"mkdir", "rename"} <= set(scenario.ops["distinfo"])
        # The umask (027) differs from the cache's (022): extensions are copied from the
        # cache and given the umask's mode (chmod) rather than linked.
        assert {"open", "chmod"} <= set(scenario.ops["so"]) <= {"rename", "open", "chmod"}
        # chmod: the umask masks execute bits, so staged scripts get theirs (pip's rule).
        assert set(scenario.ops["any"]) == set(le.OPS) - {"link"}
    assert "unlink" in upgrade.ops["state"]  # deleting the backups after COMMITTED
    # An upgrade moves the old version's files aside (one by one: its directories exist).
    assert "rename" in upgrade.ops["record"] and "rename" in upgrade.ops["so"]
    assert "rename" not in fresh.ops["record"]  # moved in with its directory


def episode(scenario: str, path_class: str, op: str, lock: float) -> le.Episode:
    return le.Episode(0, scenario, path_class, op, "EBUSY", lock)


@pytest.mark.parametrize(
    ("chosen", "outcome", "absorbed"),
    [
        (episode("fresh", "distinfo", "rename", 0.15), le.SUCCEEDED, False),
        (episode("upgrade", "script", "rename", 0.25), le.SUCCEEDED, False),
        (episode("upgrade", "so", "rename", 0.55), le.FAILED, False),
        (episode("fresh", "so", "open", 0.5), le.FAILED, False),
        # Deleting a backup stays locked: renamed into the trash, emptied once let go.
        (episode("upgrade", "state", "unlink", 0.55), le.SUCCEEDED, True),
    ],
    ids=["short-distinfo", "short-script", "long-so-backup", "long-so-staging", "long-cleanup"],
)
def test_chosen_episode(
    scenarios: dict[str, le.Scenario],
    tmp_path: Path,
    chosen: le.Episode,
    outcome: str,
    absorbed: bool,
) -> None:
    result = le.run_episode(scenarios[chosen.scenario], chosen, tmp_path)
    assert result.problems == []
    assert result.known is None
    assert result.exercised
    assert result.outcome == outcome
    assert result.absorbed is absorbed
    if outcome == le.SUCCEEDED:
        assert result.command_seconds >= chosen.lock  # it really waited for the lock to go
    if outcome == le.FAILED:
        assert result.exit_code == 3


def test_a_rule_matching_nothing_is_not_exercised(
    scenarios: dict[str, le.Scenario], tmp_path: Path
) -> None:
    scenario = scenarios["fresh"]
    never = Rule("rename", f"{scenario.work}/no/such/place/*", "EBUSY", -1, seconds=1.0)
    facts, faults, _ = le.observe(scenario, [never], "over", tmp_path, le.BUDGET)
    assert faults == 0
    assert le.judge(facts) == (le.SUCCEEDED, [])


def test_cleanup_locked_past_the_trash_commits_with_a_warning(
    scenarios: dict[str, le.Scenario], tmp_path: Path
) -> None:
    """Two locks after COMMITTED: deleting the journal, then making the trash to move it to.

    One rule cannot get here: a locked delete is answered by a rename into the trash, which
    that rule does not lock. So the random run reaches "committed with warning" never; this
    shows the path exists and ends right.
    """
    scenario = scenarios["upgrade"]
    rules = [
        Rule("unlink", "*/.stalwart/txn-*/journal.json", "EBUSY", -1, seconds=0.6),
        Rule("mkdir", "*/.stalwart/trash", "EBUSY", -1, seconds=0.6),
    ]
    facts, faults, _ = le.observe(scenario, rules, "over", tmp_path, le.BUDGET)
    assert faults > 10
    assert facts.exit_code == 0
    assert "cleaning up" in facts.stderr
    assert facts.command_state != "new"  # the journal and COMMITTED stayed for recover
    assert le.judge(facts) == (le.COMMITTED, [])
    assert "rolled forward" in facts.recover_output


# -- what the random run once found (fixed) ----------------------------------------------------


def test_a_short_lock_on_the_first_staging_mkdir_is_waited_out(
    scenarios: dict[str, le.Scenario], tmp_path: Path
) -> None:
    scenario = scenarios["fresh"]
    rule = Rule("mkdir", "*/.stalwart/txn-*/stage", "EBUSY", -1, seconds=0.02)
    facts, faults, _ = le.observe(scenario, [rule], "under", tmp_path, le.BUDGET)
    assert faults > 0
    assert le.judge(facts) == (le.SUCCEEDED, []), facts.stderr


def test_a_pruned_directory_locked_past_the_budget_is_not_lost(
    scenarios: dict[str, le.Scenario], tmp_path: Path
) -> None:
    scenario = scenarios["upgrade"]
    rule = Rule("rmdir", f"{scenario.site}/ant/old", "EBUSY", -1, seconds=0.5)
    facts, faults, _ = le.observe(scenario, [rule], "over", tmp_path, le.BUDGET)
    assert faults > 0
    assert facts.final_state == "new", facts.final_state
    assert le.judge(facts)[1] == []


# -- the random run -------------------------------------------------------------------------------

SHARDS = 2
EPISODES_PER_SHARD = 20


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_random_lock_episodes(
    scenarios: dict[str, le.Scenario], tmp_path: Path, shard: int
) -> None:
    """Random episodes; no rule broken except by a known issue, whose reproduction is above."""
    env_seed = os.environ.get("LOCK_EPISODES_SEED")
    seed = int(env_seed) + shard if env_seed else random.SystemRandom().randrange(2**32)
    print(f"seed {seed} (LOCK_EPISODES_SEED={seed - shard} reproduces both shards)")
    ops = {name: s.ops for name, s in scenarios.items()}
    episodes = le.draw(seed, EPISODES_PER_SHARD, ops)
    results = le.run_episodes(scenarios, episodes, tmp_path)
    report = le.format_report(results, seed, le.BUDGET, sum(r.wall_seconds for r in results), ops)
    print(report)
    assert not [r for r in results if r.problems], report
    assert sum(r.exercised for r in results) >= 0.9 * len(results), report
    under = [r for r in results if le.band(r.episode.lock) == "under" and not r.known]
    assert all(r.outcome == le.SUCCEEDED for r in under)
