"""stalwart's own account of where its time goes: ``-v`` phases, and cProfile on request.

Untimed by the harness, after the rounds: it explains a row of the table, it is not one.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import statistics
import subprocess
import sys

from .env import REPO
from .runner import Series
from .workspace import remove

PHASES = re.compile(r"phases: (.*)")
TOTAL = re.compile(r"Installed \d+ packages? in (\d+) ms")


def phases(series: Series, runs: int) -> dict[str, dict[str, float]]:
    """Median ms per phase (``stage``, ``compile``, ``commit``...) with and without bytecode,
    warm cache; empty when stalwart prints no phases (an older or newer ``-v`` format)."""
    ws, setup = series.ws, series.setup
    wheels = [str(w) for w in setup.corpus.wheels]
    found: dict[str, dict[str, float]] = {}
    for compile_ in (True, False):
        acc: dict[str, list[float]] = {}
        for _ in range(runs):
            target = ws.fresh_venv("phases")
            command = setup.tools.stalwart(
                target, wheels, compile_=compile_, cache=ws.stalwart_warm, state=ws.state
            )
            argv = [a for a in command.argv if a != "-q"] + ["-v"]
            proc = subprocess.run(
                argv, env=command.env, capture_output=True, text=True, check=False
            )
            remove(target)
            match = PHASES.search(proc.stdout)
            if proc.returncode != 0 or match is None:
                return {}
            for part in match.group(1).split(", "):
                name, ms, _ = part.rsplit(" ", 2)
                acc.setdefault(name, []).append(float(ms))
            total = TOTAL.search(proc.stdout)
            if total:
                acc.setdefault("total in-process", []).append(float(total.group(1)))
        label = "bytecode" if compile_ else "no bytecode"
        found[label] = {k: statistics.median(v) for k, v in acc.items()}
    return found


def profile(series: Series, compile_: bool) -> None:
    """cProfile ``stalwart.cli.main`` in-process (warm cache); prints the top functions."""
    ws, setup = series.ws, series.setup
    if setup.tools.stalwart_src is not None:
        sys.path.insert(0, setup.tools.stalwart_src)
    from stalwart.cli import main

    target = ws.fresh_venv("profile")
    command = setup.tools.stalwart(
        target,
        [str(w) for w in setup.corpus.wheels],
        compile_=compile_,
        cache=ws.stalwart_warm,
        state=ws.state,
    )
    os.environ.update({k: v for k, v in command.env.items() if k.startswith("STALWART_")})
    argv = command.argv[command.argv.index("install") :]
    out = REPO / ".cache" / f"bench-stalwart-{'c' if compile_ else 'n'}.prof"
    prof = cProfile.Profile()
    prof.runcall(main, argv)
    prof.dump_stats(out)
    remove(target)
    print(f"\n=== cProfile of stalwart install (bytecode={compile_}), {out} ===")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)
