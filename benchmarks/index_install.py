"""End-to-end install from a package index: stalwart against uv and pip, in the same run.

``python -m benchmarks.index_install`` (from the repository root) serves real wheels from a
loopback index (``tests/indexserver.py``: PEP 691 JSON with PEP 658 metadata, a real HTTP
server on 127.0.0.1; the wheels are ``tests/realwheels.INDEX``, fetched once into ``.cache/``)
and times each tool installing ``httpx[http2,cli] attrs`` (15 distributions to resolve,
download and install) into a fresh venv:

- cold: an empty cache directory, so every page and wheel crosses the (loopback) network;
- warm: the tool's cache filled by an untimed run first, as on a developer's machine.

Each with and without bytecode, as users run them: pip and stalwart compile by default, uv only
with ``--compile-bytecode``. Rounds alternate the tools' order; every cell reports its median
and spread, its ratio to uv and to pip. Every run's result is checked to be the same set of
distributions and versions across tools, so a faster wrong answer cannot win. Runs on tmpfs
(``--dir``, default ``/dev/shm``), where disk write-back cannot blur the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.speed import machine
from benchmarks.speed.env import BIN, REPO, clean_env
from benchmarks.speed.report import write_markdown

sys.path.insert(0, str(REPO / "tests"))

from indexserver import serve_index
from realwheels import index_wheels

WANT = ["httpx[http2,cli]", "attrs"]
TOOLS = ("stalwart", "uv", "pip")
SCENARIOS = ("cold, no bytecode", "cold, bytecode", "warm, no bytecode", "warm, bytecode")


@dataclass
class Cell:
    tool: str
    scenario: str
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        return max(self.times) / min(self.times) if self.times else 0.0


def command(tool: str, venv: Path, cache: Path, index: str, bytecode: bool) -> list[str]:
    python = str(venv / "bin" / "python")
    if tool == "stalwart":
        argv = [str(BIN / "stalwart"), "install", "-q", "--python", python]
        argv += ["-i", index, "--cache-dir", str(cache)]
        return argv + ([] if bytecode else ["--no-compile"]) + WANT
    if tool == "uv":
        argv = [str(BIN / "uv"), "pip", "install", "-q", "--python", python]
        argv += ["--index-url", index, "--cache-dir", str(cache)]
        return argv + (["--compile-bytecode"] if bytecode else []) + WANT
    argv = [str(BIN / "python"), "-m", "pip", "--python", python, "install", "-q"]
    argv += ["--index-url", index, "--cache-dir", str(cache)]
    return argv + ([] if bytecode else ["--no-compile"]) + WANT


def installed(venv: Path) -> dict[str, str]:
    """Name -> version of every distribution in *venv*, from its .dist-info directory names."""
    found = {}
    for info in (venv / "lib").glob("python*/site-packages/*.dist-info"):
        name, version = info.name[: -len(".dist-info")].split("-", 1)
        found[name.lower().replace("_", "-").replace(".", "-")] = version
    return found


def fresh_venv(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def run_once(
    tool: str, scenario: str, base: Path, index: str, expect: dict[str, str] | None
) -> tuple[float, dict[str, str]]:
    bytecode = "no bytecode" not in scenario
    venv = fresh_venv(base / "venv")
    cache = base / "caches" / tool
    if scenario.startswith("cold") and cache.exists():
        shutil.rmtree(cache)
    argv = command(tool, venv, cache, index, bytecode)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr}")
    got = installed(venv)
    if expect is not None and got != expect:
        raise SystemExit(f"{tool} installed {got}, not {expect}")
    return elapsed, got


def table(cells: dict[tuple[str, str], Cell]) -> list[list[str]]:
    rows = [["scenario", *(f"{t}" for t in TOOLS), "stalwart / uv", "stalwart / pip"]]
    for scenario in SCENARIOS:
        row = [scenario]
        for tool in TOOLS:
            c = cells[tool, scenario]
            row.append(f"{c.median:.2f} s (x{c.spread:.2f})")
        mine = cells["stalwart", scenario].median
        row.append(f"{mine / cells['uv', scenario].median:.2f}x")
        row.append(f"{mine / cells['pip', scenario].median:.2f}x")
        rows.append(row)
    return rows


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def render_markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _first_line(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=clean_env())
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.stdout else "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/dev/shm/stalwart-index-bench", help="base directory")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--write", type=Path, help="add or replace this run's section here")
    args = parser.parse_args(argv)

    base = Path(args.dir)
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    wheels = index_wheels()
    server = serve_index(wheels)
    # What pypi.org sends with every simple page: a warm cache may answer for 10 minutes
    # without asking again (all three tools honour it; without it they revalidate each page).
    server.cache_control = "max-age=600, public"
    facts = machine.facts([base])
    print(f"{facts['date']}; {facts['cpu']}; load {facts['load before']}; {facts['filesystems']}")
    cells = {(t, s): Cell(t, s) for t in TOOLS for s in SCENARIOS}
    expect: dict[str, str] | None = None
    try:
        for tool in TOOLS:  # warm-up: fills each tool's cache, and finds what all must install
            _, got = run_once(tool, "warm-up", base, server.index_url, expect)
            expect = expect or got
        for round_ in range(args.rounds):
            order = TOOLS if round_ % 2 == 0 else TOOLS[::-1]
            for scenario in SCENARIOS:
                for tool in order:
                    elapsed, _ = run_once(tool, scenario, base, server.index_url, expect)
                    cells[tool, scenario].times.append(elapsed)  # a cold run fills the cache
            print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
    finally:
        server.close()
        shutil.rmtree(base, ignore_errors=True)
    rows = table(cells)
    print(f"\n{len(expect or {})} distributions: {', '.join(sorted(expect or {}))}")
    print(render_text(rows))
    if args.write is not None:
        versions = {
            "uv": _first_line([str(BIN / "uv"), "--version"]),
            "pip": _first_line([str(BIN / "python"), "-m", "pip", "--version"]),
        }
        section = "\n".join(
            [
                "<!-- speed: index-install -->",
                f"## Installing from an index, {facts['date']}",
                "",
                f"- what: `install {' '.join(WANT)}` from a loopback index (PEP 691 JSON + "
                f"PEP 658 metadata), {len(expect or {})} distributions, fresh venv per run",
                f"- machine: {facts['cpu']}; {facts['kernel']}; load before "
                f"{facts['load before']}; {facts['filesystems']}",
                f"- tools: {versions['uv']}; {versions['pip'].split(' from ')[0]}",
                f"- method: medians of {args.rounds} alternating rounds (spread = max/min); "
                "`python -m benchmarks.index_install`",
                "",
                render_markdown(rows),
                "",
                "<!-- /speed: index-install -->",
            ]
        )
        write_markdown(args.write, "index-install", section + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
