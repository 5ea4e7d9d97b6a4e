"""stalwart's robustness figures, from one command: every check runs, one table sums them up.

    .venv/bin/python scripts/robustness.py            # about 15 minutes on 2 cores
    .venv/bin/python scripts/robustness.py --quick    # about 2 minutes

1. lock episodes: ``scripts/lock_episodes.py``, random locks of random length under the real
   ``stalwart install`` (``--episodes``, default 1000; ``--seed`` reproduces a run);
2. crash sweeps: the ``slow`` tests of ``tests/test_transactions.py``, SIGKILL of the real
   command before every mutation point, then the next command (``--quick``: the fresh-install
   sweep only); the crash points are counted by the sweeps themselves (``STALWART_SWEEP_COUNTS``);
3. hostile corpus: ``tests/test_hostile.py``, every hostile wheel refused;
4. fuzzers: ``fuzz/run_all.py`` when it exists (``--fuzz-seconds`` per target).

Each check's full output is kept in ``--logs`` (default ``.cache/robustness/<time>/``). Exit
status 1 if a check failed; misbehaviours the lock-episode run already knows (each reproduced
by a strict-xfail test) are counted and named, not failed on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SWEEP_COUNTS_ENV = "STALWART_SWEEP_COUNTS"  # tests/test_transactions.py writes it


@dataclass
class Check:
    """One row of the summary: what ran, how it went, its figures."""

    name: str
    status: str  # "ok", "FAILED", "not present"
    wall: float
    figures: list[str] = field(default_factory=list)


def run(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> tuple[int, float]:
    """Run *argv* from the repository root, its output into *log*; (exit status, seconds)."""
    print(f"$ {' '.join(argv)}  (output: {log})", flush=True)
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.run(
            list(argv),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            check=False,
        )
    return proc.returncode, time.monotonic() - started


def junit_counts(path: Path) -> Counter[tuple[str, str]]:
    """(test function, "passed"/"failed"/"skipped") -> number of test cases, from junit XML."""
    counts: Counter[tuple[str, str]] = Counter()
    if not path.is_file():
        return counts
    for case in ET.parse(path).iter("testcase"):  # noqa: S314 - our own pytest's report
        name = (case.get("name") or "").split("[")[0]
        if case.find("failure") is not None or case.find("error") is not None:
            status = "failed"
        elif case.find("skipped") is not None:
            status = "skipped"
        else:
            status = "passed"
        counts[(name, status)] += 1
    return counts


def pytest_argv(*args: str, junit: Path) -> list[str]:
    return [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]


def lock_episodes(logs: Path, episodes: int, seed: int | None) -> Check:
    out = logs / "lock-episodes.json"
    argv = [PYTHON, "scripts/lock_episodes.py", "--episodes", str(episodes), "-q"]
    argv += ["--json", str(out)] + ([] if seed is None else ["--seed", str(seed)])
    code, wall = run(argv, logs / "lock-episodes.txt")
    if not out.is_file():
        return Check("lock episodes", "FAILED", wall, [f"exit {code}, no results"])
    data = json.loads(out.read_text(encoding="utf-8"))
    s = data["summary"]
    known = [f"{k.split(':', 1)[1]} {n}" for k, n in s.items() if k.startswith("known:")]
    figures = [
        f"{s['episodes']} episodes (seed {data['seed']}, --lock-timeout {data['budget']:g} s), "
        f"{s['exercised']} exercised",
        f"{s['succeeded']} succeeded ({s['absorbed']} of them despite an over-budget lock), "
        f"{s['failed_cleanly']} failed cleanly (exit 3, unchanged), "
        f"{s['committed_with_warning']} committed with a warning",
        f"known misbehaviours: {', '.join(known) if known else 'none hit'}; "
        f"other rule breaks: {s['broke_rules']}",
    ]
    return Check("lock episodes", "ok" if code == 0 else "FAILED", wall, figures)


def crash_sweeps(logs: Path, quick: bool) -> Check:
    counts_file = logs / "sweep-counts.jsonl"
    counts_file.unlink(missing_ok=True)
    junit = logs / "crash-sweeps.xml"
    argv = pytest_argv("-n", "2", "-m", "slow", "tests/test_transactions.py", junit=junit)
    if quick:
        argv += ["-k", "fresh_install"]
    code, wall = run(argv, logs / "crash-sweeps.txt", {SWEEP_COUNTS_ENV: str(counts_file)})
    sweeps: dict[str, dict[str, int]] = {}
    if counts_file.is_file():
        for line in counts_file.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            sweep = sweeps.setdefault(row["sweep"], {"points": row["points"], "kills": 0})
            sweep["kills"] += row["kills"]
            sweep["problems"] = sweep.get("problems", 0) + row["problems"]
    tests = junit_counts(junit)
    passed = sum(n for (_, status), n in tests.items() if status == "passed")
    total = sum(tests.values())
    covered = sum(s["kills"] for s in sweeps.values())
    figures = [
        ", ".join(f"{name}: {s['kills']}/{s['points']} crash points" for name, s in sweeps.items())
        + f"; {covered} in all, each followed by recover or an install",
        f"wrong outcomes: {sum(s['problems'] for s in sweeps.values())}; "
        f"{passed}/{total} tests passed",
    ]
    complete = all(s["kills"] == s["points"] for s in sweeps.values())
    ok = code == 0 and bool(sweeps) and complete
    return Check("crash sweeps", "ok" if ok else "FAILED", wall, figures)


HOSTILE_GROUPS = (
    ("test_refused_in_process", "refused in-process"),
    ("test_refused_by_cli", "by the CLI"),
    ("test_still_refused_without_record_verification", "with --no-verify-record"),
)


def hostile_corpus(logs: Path) -> Check:
    junit = logs / "hostile.xml"
    code, wall = run(
        pytest_argv("-n", "2", "tests/test_hostile.py", junit=junit), logs / "hostile.txt"
    )
    tests = junit_counts(junit)
    cases = tests[(HOSTILE_GROUPS[0][0], "passed")] + tests[(HOSTILE_GROUPS[0][0], "failed")]
    parts = [
        f"{label} {tests[(name, 'passed')]}/{tests[(name, 'passed')] + tests[(name, 'failed')]}"
        for name, label in HOSTILE_GROUPS
    ]
    grouped = {name for name, _ in HOSTILE_GROUPS}
    others = [(n, s) for (n, s) in tests if n not in grouped]
    other_passed = sum(tests[k] for k in others if k[1] == "passed")
    other_total = sum(tests[k] for k in others)
    figures = [
        f"{cases} hostile wheels: " + ", ".join(parts),
        f"uninstall, recovery and batch refusals: {other_passed}/{other_total} tests passed",
    ]
    failed = sum(n for (_, status), n in tests.items() if status == "failed")
    ok = code == 0 and cases > 0 and failed == 0
    return Check("hostile corpus", "ok" if ok else "FAILED", wall, figures)


def fuzzers(logs: Path, seconds: int) -> Check:
    script = ROOT / "fuzz" / "run_all.py"
    if not script.is_file():
        return Check("fuzzers", "not present", 0.0, ["fuzz/run_all.py does not exist"])
    log = logs / "fuzzers.txt"
    code, wall = run([PYTHON, str(script), str(seconds), "--json"], log)
    text = log.read_text(encoding="utf-8", errors="replace")
    results = _last_json_list(text)
    if results is None:
        return Check("fuzzers", "ok" if code == 0 else "FAILED", wall, [f"exit {code}"])
    crashes = [r for r in results if r.get("crash")]
    figures = [
        f"{len(results)} targets x {seconds} s: "
        f"{sum(int(r.get('executions', 0)) for r in results):,} executions, "
        f"{len(crashes)} crashed" + "".join(f"; {r.get('target')}: {r['crash']}" for r in crashes)
    ]
    return Check("fuzzers", "ok" if code == 0 and not crashes else "FAILED", wall, figures)


def _last_json_list(text: str) -> list[dict[str, object]] | None:
    """The JSON array ``run_all.py --json`` prints last, if there is one."""
    start = text.rfind("\n[")
    start = 0 if start < 0 and text.startswith("[") else start
    if start < 0:
        return None
    try:
        value = json.loads(text[start:])
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, dict) for v in value) else None


def table(checks: Sequence[Check], total: float) -> str:
    rows = [("check", "status", "wall", "figures")]
    for check in checks:
        wall = f"{check.wall:.1f} s" if check.wall else "-"
        first, *rest = check.figures or [""]
        rows.append((check.name, check.status, wall, first))
        rows += [("", "", "", more) for more in rest]
    rows.append(("total", "", f"{total:.1f} s", ""))
    name, status, wall = (max(len(r[i]) for r in rows) for i in range(3))
    return "\n".join(
        f"{r[0].ljust(name)}  {r[1].ljust(status)}  {r[2].rjust(wall)}  {r[3]}".rstrip()
        for r in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a short variant of every check")
    parser.add_argument("--episodes", type=int, default=None, help="default 1000 (quick: 40)")
    parser.add_argument("--seed", type=int, default=None, help="of the lock-episode run")
    parser.add_argument("--fuzz-seconds", type=int, default=None, help="default 30 (quick: 3)")
    parser.add_argument("--logs", type=Path, default=None, help="where each check's output goes")
    args = parser.parse_args(argv)
    episodes = args.episodes or (40 if args.quick else 1000)
    fuzz_seconds = args.fuzz_seconds or (3 if args.quick else 30)
    logs = args.logs or ROOT / ".cache" / "robustness" / time.strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    checks = [
        lock_episodes(logs, episodes, args.seed),
        crash_sweeps(logs, args.quick),
        hostile_corpus(logs),
        fuzzers(logs, fuzz_seconds),
    ]
    total = time.monotonic() - started
    print()
    print(f"stalwart robustness figures{' (--quick)' if args.quick else ''}; logs in {logs}")
    print(table(checks, total))
    return 1 if any(c.status == "FAILED" for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
