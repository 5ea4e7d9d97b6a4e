"""``python -m benchmarks.speed``: parse the command line, then corpus, set-up, rounds, report."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from . import __doc__ as overview
from . import cells as cells_mod
from . import corpus as corpus_mod
from . import detail, machine, report, runner
from .tools import Tools
from .workspace import Workspace

DEFAULT_DIR = Path("/dev/shm/stalwart-bench")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description=(overview or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--dir", type=Path, default=DEFAULT_DIR, help="base directory (default on tmpfs)")
    add("--disk", type=Path, help="also run every round in this directory (on a disk)")
    add("--rounds", type=int, help="timed rounds (default 7; 2 with --quick)")
    add("--warmup", type=int, help="untimed rounds first (default 1; 0 with --quick)")
    add("--quick", action="store_true", help="small corpus, 2 rounds, no warm-up: a smoke run")
    add("--only", help="comma-separated scenarios: " + ", ".join(KEYS))
    add("--wheels", type=Path, help="install every .whl of DIR instead of the pinned corpus")
    add("--scipy", action="store_true", help="add scipy (114 MB unpacked) to the corpus")
    add("--many", type=int, default=500, help="distributions in the many scenario's venv")
    add(
        "--stalwart-args",
        default="",
        help='extra stalwart flags: "--link-mode hardlink"; one flag alone: --stalwart-args=--flag',
    )
    add("--uv-args", default="", help="extra uv pip install flags")
    add("--stalwart-src", type=Path, help="run python -m stalwart from this source tree")
    add(
        "--write",
        type=Path,
        help="add or replace this run's section in this markdown file; plot beside it (.png)",
    )
    add("--json", type=Path, help="write every time measured to this file")
    add("--phase-runs", type=int, help="stalwart -v runs for its phases (default 3; 0 quick)")
    add("--profile", action="store_true", help="cProfile stalwart in-process afterwards")
    add("--keep", action="store_true", help="leave the base directories")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 7)
    args.warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    if args.phase_runs is None:
        args.phase_runs = 0 if args.quick else 3
    if args.rounds < 1 or args.warmup < 0 or args.many < 1:
        parser.error("--rounds and --many must be at least 1, --warmup at least 0")
    return args


KEYS = [s.key for s in cells_mod.scenarios(1, "")]


def choose(only: str | None, many: int, extraction: str) -> list[cells_mod.Scenario]:
    everything = cells_mod.scenarios(many, extraction)
    if not only:
        return everything
    wanted = [k.strip() for k in only.split(",") if k.strip()]
    unknown = sorted(set(wanted) - set(KEYS))
    if unknown:
        raise SystemExit(f"unknown scenario {', '.join(unknown)}; known: {', '.join(KEYS)}")
    return [s for s in everything if s.key in wanted]


def log(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    started = time.perf_counter()
    tools = Tools(
        stalwart_src=str(args.stalwart_src.resolve()) if args.stalwart_src else None,
        stalwart_args=tuple(shlex.split(args.stalwart_args)),
        uv_args=tuple(shlex.split(args.uv_args)),
    )
    extraction = cells_mod.extraction_tool()
    scenarios = choose(args.only, args.many, extraction)
    if args.wheels is not None:
        corpus = corpus_mod.from_directory(args.wheels)
    else:
        corpus = corpus_mod.pinned(small=args.quick, scipy=args.scipy)
    bases = [args.dir] + ([args.disk] if args.disk else [])
    info = machine.facts([b.resolve() for b in bases])
    versions = machine.versions(tools, extraction)
    log(f"corpus {corpus.label}: {corpus.describe()}")
    log(f"{info['date']}; {info['cpu']}; {info['kernel']}; load average {info['load before']}")
    log("tools: " + "; ".join(f"{k} {v}" for k, v in versions.items()))

    series, phases = measure(args, tools, corpus, scenarios, bases)
    info["load after"] = machine.load()
    print_report(args, series, scenarios, phases, info)
    log(f"(total {time.perf_counter() - started:.0f} s)")

    info["corpus label"] = corpus.label
    info["corpus"] = info["corpus summary"] = corpus.describe()
    if args.wheels is None:
        info["corpus"] += " (pinned by hash in benchmarks/speed/corpus.py)"
    info["machine"] = (
        f"{info['cpu']}; {info['kernel']}; load average {info['load before']} before, "
        f"{info['load after']} after"
    )
    info["tools"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    info["method"] = (
        f"{args.rounds} round(s) after {args.warmup} warm-up, tools alternating, a fresh venv "
        "per run; median seconds; spread = slowest / fastest round; x uv, x pip = median / "
        "that tool's median in the same scenario (> 1: slower)"
    )
    info["command"] = f"`python -m benchmarks.speed {shlex.join(argv)}`"
    write(args, series, scenarios, info)
    return 0


def measure(
    args: argparse.Namespace,
    tools: Tools,
    corpus: corpus_mod.Corpus,
    scenarios: list[cells_mod.Scenario],
    bases: list[Path],
) -> tuple[list[runner.Series], dict[str, dict[str, dict[str, float]]]]:
    """Set up every workspace, run the rounds, ask stalwart for its phases; clean up."""
    cells = cells_mod.cells(scenarios)
    workspaces: list[Workspace] = []
    phases = {}
    try:
        for base in bases:
            workspaces.append(Workspace(f"{machine.filesystem(base.resolve())}: {base}", base))
        series = [
            runner.Series(ws, cells_mod.Setup(tools, corpus), sync=i > 0)
            for i, ws in enumerate(workspaces)
        ]
        where = ", ".join(ws.label for ws in workspaces)
        log(f"{len(cells)} cells x {args.rounds} round(s) (+{args.warmup} warm-up) in {where}")
        for s in series:
            runner.set_up(s, cells, args.many, log)
        runner.rounds(series, cells, args.rounds, args.warmup, log)
        if args.phase_runs:
            phases = {s.ws.label: detail.phases(s, args.phase_runs) for s in series}
        if args.profile:
            for compile_ in (True, False):
                detail.profile(series[0], compile_)
    finally:
        for ws in workspaces:
            ws.close(keep=args.keep)
    return series, phases


def print_report(
    args: argparse.Namespace,
    series: list[runner.Series],
    scenarios: list[cells_mod.Scenario],
    phases: dict[str, dict[str, dict[str, float]]],
    info: dict[str, str],
) -> None:
    print()
    for s in series:
        print(f"{s.ws.label}: {args.rounds} round(s) after {args.warmup} warm-up")
        print(report.text_table(s, scenarios))
        print()
    print("median, fastest and slowest round in seconds; spread = slowest / fastest; x uv and")
    print("x pip = median / that tool's median in the same scenario (> 1: slower).")
    print("\ninstalled by the last run (dists, files, .pyc):")
    for key, (dists, files, pycs) in sorted(series[0].census.items()):
        print(f"  {key:<34} {dists:>4} dists {files:>7,} files {pycs:>6,} .pyc")
    for label, by_setting in phases.items():
        if by_setting:
            print(f"\nstalwart's own phases (-v, median ms, warm cache) on {label}:")
            for setting, acc in by_setting.items():
                print(f"  {setting:<12} " + ", ".join(f"{k} {v:.0f}" for k, v in acc.items()))
    print(f"\nload average before {info['load before']}, after {info['load after']}")


def write(
    args: argparse.Namespace,
    series: list[runner.Series],
    scenarios: list[cells_mod.Scenario],
    info: dict[str, str],
) -> None:
    if args.json:
        report.write_json(args.json, info, series)
        log(f"raw times written to {args.json}")
    if args.write:
        png = args.write.with_suffix(".png")
        title = f"{info['date']}: {info['corpus label']} corpus, {info['corpus summary']}"
        plotted = report.plot(png, series, scenarios, title)
        if plotted:
            log(f"plot written to {png}")
        else:
            log("no plot: matplotlib is missing (pip install -e '.[bench]')")
        key = f"{info['day']} {info['corpus label']}"
        section = report.markdown_section(key, info, series, scenarios, png if plotted else None)
        report.write_markdown(args.write, key, section)
        log(f"section '{key}' written to {args.write}")


if __name__ == "__main__":
    raise SystemExit(main())
