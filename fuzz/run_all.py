"""Run every fuzz target for N seconds and print, per target, executions and any crash.

    python fuzz/run_all.py 60                      # 60 s per target, all targets
    python fuzz/run_all.py 10 record shebang       # some targets
    python fuzz/run_all.py 60 --json               # one JSON object (for robustness figures)

Targets run one after another (libFuzzer's -timeout flags an input slower than 10 s, which is
how a quadratic parser shows up). Crash inputs land in ``fuzz/crashes/``; replay one with
``python fuzz/fuzz_<target>.py fuzz/crashes/<file>``. Exit status 1 if any target crashed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
TARGETS = ("archive", "open_wheel", "record", "headers", "entry_points", "shebang", "journal")
_EXECUTED = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_EXCEPTION = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception|Exit|Interrupt)\b.*)$", re.MULTILINE)


@dataclass
class Result:
    target: str
    seconds: float
    executions: int
    per_second: float
    crash: str | None  # the exception (or libFuzzer's reason), None if none was found
    artifact: str | None  # the input that caused it


def fuzz(target: str, seconds: int) -> Result:
    crashes = FUZZ_DIR / "crashes"
    crashes.mkdir(exist_ok=True)
    command = [
        sys.executable,
        str(FUZZ_DIR / f"fuzz_{target}.py"),
        f"-max_total_time={seconds}",
        "-print_final_stats=1",
        "-timeout=10",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={crashes}/{target}-",
    ]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    elapsed = time.monotonic() - started
    log = proc.stdout + proc.stderr
    executed = [int(n) for n in _EXECUTED.findall(log)]
    count = executed[-1] if executed else 0
    artifact = _ARTIFACT.findall(log)
    crash = None
    if proc.returncode != 0 or artifact:
        found = _EXCEPTION.findall(log)
        reason = re.search(r"ERROR: libFuzzer: ([^\n]+)", log)
        crash = (
            found[-1]
            if found
            else reason.group(1)
            if reason
            else f"exit status {proc.returncode}: {log.strip()[-300:]}"
        )
    return Result(
        target,
        round(elapsed, 1),
        count,
        round(count / max(elapsed, 1e-9)),
        crash,
        artifact[-1] if artifact else None,
    )


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    args = [a for a in argv if a != "--json"]
    seconds = int(args[0]) if args else 60
    targets = args[1:] or list(TARGETS)
    unknown = set(targets) - set(TARGETS)
    if unknown:
        print(f"unknown targets: {', '.join(sorted(unknown))}; choose from {', '.join(TARGETS)}")
        return 2
    results = []
    try:
        for target in targets:
            result = fuzz(target, seconds)
            results.append(result)
            if not as_json:
                status = "no crash" if result.crash is None else f"CRASH {result.crash}"
                where = f" ({result.artifact})" if result.artifact else ""
                print(
                    f"{target:13} {result.executions:>10,} executions in {result.seconds:5.0f} s"
                    f"  {result.per_second:>7,}/s  {status}{where}",
                    flush=True,
                )
    finally:
        from harness import SCRATCH

        shutil.rmtree(SCRATCH, ignore_errors=True)
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.crash for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
