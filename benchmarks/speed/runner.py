"""Set up each workspace (untimed), then alternate the cells round by round and time them.

Each round runs every cell once per workspace, in an order rotated by one cell every round, so
no tool always runs right after the same neighbour or at the same point of a round; the tmpfs
and disk workspaces take turns within the round. On disk, ``os.sync()`` before every timed
command starts it with the previous one's writeback done. Only ``time.perf_counter`` around
``subprocess.run`` is timed: the whole command, interpreter start-up included, as a user waits.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .cells import Cell, Prepared, Setup, prepare
from .corpus import tiny_wheel, tiny_wheels
from .tools import Command
from .workspace import Workspace, remove, site_packages


@dataclass
class Series:
    """One workspace's results: seconds per cell key, and what the last run installed."""

    ws: Workspace
    setup: Setup
    sync: bool  # on disk: flush the previous run's writeback before timing
    times: dict[str, list[float]] = field(default_factory=dict)
    census: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def median(self, key: str) -> float | None:
        found = self.times.get(key)
        return statistics.median(found) if found else None


def execute(command: Command, cwd: str, what: str) -> float:
    """Run *command*, return its wall-clock seconds; stop the benchmark if it failed."""
    start = time.perf_counter()
    proc = subprocess.run(command.argv, env=command.env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout.decode(errors="replace")[-4000:])
        sys.stderr.write(proc.stderr.decode(errors="replace")[-4000:])
        shown = " ".join(command.argv[:12]) + (" ..." if len(command.argv) > 12 else "")
        raise SystemExit(f"{what} failed (exit {proc.returncode}): {shown}")
    return elapsed


def run_cell(series: Series, cell: Cell) -> float:
    prepared: Prepared = prepare(cell, series.ws, series.setup)
    try:
        if series.sync:
            os.sync()
        elapsed = execute(prepared.command, str(series.ws.base), cell.key)
        series.census[cell.key] = prepared.check()
    finally:
        for path in prepared.cleanup:
            remove(path)
    return elapsed


def set_up(series: Series, cells: list[Cell], many: int, log: Callable[[str], None]) -> None:
    """The shared trees of the many-dists and floor cells, then one untimed run of every warm
    cell: its cache is then pre-filled by an earlier install into the same venv path."""
    ws, setup = series.ws, series.setup
    keys = {c.scenario.key for c in cells}
    started = time.perf_counter()
    if "floors" in keys:
        tree = ws.fresh_venv("floor-source")
        _plain_install(ws, setup, tree, [str(w) for w in setup.corpus.wheels])
        setup.floor_tree = site_packages(tree)
    if "many" in keys:
        wheels = tiny_wheels(ws.base / "many-wheels", many)
        template = ws.fresh_venv("many-template")
        _plain_install(ws, setup, template, [str(w) for w in wheels])
        setup.many_template, setup.many_count = template, many
        (ws.base / "many-extra").mkdir()
        setup.many_wheel = tiny_wheel(ws.base / "many-extra", "bench_tiny_extra")
    for cell in cells:
        if cell.scenario.warm:
            run_cell(series, cell)
    log(f"  set up {ws.label} ({time.perf_counter() - started:.0f} s)")


def _plain_install(ws: Workspace, setup: Setup, venv: Path, wheels: list[str]) -> None:
    """Trees the timed runs start from: installed by stalwart without bytecode and without
    --stalwart-args, with a cache of its own (so the warm caches see only timed tools)."""
    cache = ws.scratch("setup-cache")
    tools = setup.tools
    command = tools.stalwart(venv, wheels, compile_=False, cache=cache, state=ws.state, extra=False)
    execute(command, str(ws.base), "setting up")
    remove(cache)


def rounds(
    series: list[Series],
    cells: list[Cell],
    count: int,
    warmup: int,
    log: Callable[[str], None],
) -> None:
    started = time.perf_counter()
    for rnd in range(warmup + count):
        shift = rnd % len(cells)
        order = cells[shift:] + cells[:shift]
        for s in series:
            for cell in order:
                elapsed = run_cell(s, cell)
                if rnd >= warmup:
                    s.times.setdefault(cell.key, []).append(elapsed)
        label = "warm-up" if rnd < warmup else f"{rnd - warmup + 1}/{count}"
        log(f"  round {label} done ({time.perf_counter() - started:.0f} s)")
