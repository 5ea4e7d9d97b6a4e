"""Overhead of stalwart.fs over the plain os calls it wraps, on a few thousand small files.

    .venv/bin/python benchmarks/fs_overhead.py [--dir /dev/shm/...] [--files 3000] [--rounds 9]
                                               [--disk DIR] [--disk-files 500] [--chunks 10]

Each operation is timed in rounds; within a round plain and stalwart alternate over chunks of
the files (A B B A A B ..., so drift and cache warmth hit both sides alike). Plain and stalwart
work on their own files in the same directory, prepared outside the timed region; the garbage
collector is off while timing. The table shows the median per-round time as ns per operation
and the ratio stalwart / plain; replace, write, link and unlink must stay within 1.02
(PASS/FAIL). makedirs and copy are shown for information: their plain equivalents
(os.makedirs, shutil.copy) do not make the same system calls. Last, the layer's own cost per
call is measured with the primitives swapped for no-op C functions: that figure involves no
system call and so stays meaningful on a busy machine, where 2 % verdicts are not.

``write`` compares write_atomic with the same system calls made by hand: os.open of an O_EXCL
temporary, os.write, os.fsync, os.close, os.replace.

This is a report: the exit code is 0 whatever the ratios.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import os
import platform
import shutil
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stalwart.fs as fs

THRESHOLD = 1.02
GATED = ("replace", "write", "link", "unlink")
DATA = b"x" * 200  # a small file, like most files in a wheel

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
EXCL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY | _O_CLOEXEC


@dataclass
class Result:
    plain: list[int] = field(default_factory=list)  # ns per round
    stalwart: list[int] = field(default_factory=list)

    def per_op(self, n: int) -> tuple[float, float]:
        return statistics.median(self.plain) / n, statistics.median(self.stalwart) / n

    @property
    def ratio(self) -> float:
        return statistics.median(self.stalwart) / statistics.median(self.plain)

    @property
    def paired(self) -> float:
        """Median of the per-round ratios: both sides of a round ran interleaved, chunk by
        chunk, so load that comes and goes between rounds cancels out of each ratio."""
        return statistics.median(s / p for s, p in zip(self.stalwart, self.plain, strict=True))

    @property
    def min_ratio(self) -> float:
        return min(self.stalwart) / min(self.plain)


def timed(body: Callable[[], None]) -> int:
    gc.disable()
    try:
        start = time.perf_counter_ns()
        body()
        return time.perf_counter_ns() - start
    finally:
        gc.enable()


def make_files(paths: list[str]) -> None:
    for path in paths:
        fd = os.open(path, EXCL_FLAGS, 0o644)
        os.write(fd, DATA)
        os.close(fd)


def remove_files(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Bench:
    """One operation. Plain and stalwart each get their own files (``a-*`` and ``b-*``) in the
    same directory; ``prepare`` and ``cleanup`` run untimed around each round, and the timed
    functions take a pre-sliced chunk of work items.
    """

    name = ""

    def __init__(self, root: str, n: int) -> None:
        self.dir = os.path.join(root, self.name)
        os.mkdir(self.dir)
        self.n = n
        self.setup()

    def p(self, prefix: str) -> list[str]:
        return [os.path.join(self.dir, f"{prefix}{i:05d}.py") for i in range(self.n)]

    def setup(self) -> None:
        """Make ``self.items``: side ("a" plain, "b" stalwart) -> one work item per file."""
        raise NotImplementedError

    def prepare(self, side: str) -> None:
        pass

    def cleanup(self, side: str) -> None:
        pass

    def plain(self, items: list[Any]) -> None:
        raise NotImplementedError

    def stalwart(self, items: list[Any]) -> None:
        raise NotImplementedError


class Replace(Bench):
    name = "replace"

    def setup(self) -> None:
        self.items = {s: list(zip(self.p(f"{s}-new-"), self.p(f"{s}-"), strict=True)) for s in "ab"}
        for side in "ab":
            make_files([dst for _, dst in self.items[side]])

    def prepare(self, side: str) -> None:
        make_files([src for src, _ in self.items[side]])

    def plain(self, items: list[Any]) -> None:
        replace = os.replace
        for s, d in items:
            replace(s, d)

    def stalwart(self, items: list[Any]) -> None:
        replace = fs.replace
        for s, d in items:
            replace(s, d)


class Write(Bench):
    name = "write"

    def setup(self) -> None:
        self.items = {s: self.p(f"{s}-") for s in "ab"}
        for side in "ab":
            make_files(self.items[side])
        self.pid = os.getpid()
        self.counter = itertools.count()

    def plain(self, items: list[Any]) -> None:
        # The same system calls write_atomic makes; the temporary is named the cheap way.
        open_, write, fsync, close, replace = os.open, os.write, os.fsync, os.close, os.replace
        pid, counter, flags = self.pid, self.counter, EXCL_FLAGS
        for target in items:
            tmp = f"{target}.{pid}.{next(counter)}.tmp"
            fd = open_(tmp, flags, 0o666)
            write(fd, DATA)
            fsync(fd)
            close(fd)
            replace(tmp, target)

    def stalwart(self, items: list[Any]) -> None:
        write_atomic = fs.write_atomic
        for target in items:
            write_atomic(target, DATA)


class Link(Bench):
    name = "link"

    def setup(self) -> None:
        self.items = {s: list(zip(self.p(f"{s}-src-"), self.p(f"{s}-"), strict=True)) for s in "ab"}
        for side in "ab":
            make_files([src for src, _ in self.items[side]])

    def cleanup(self, side: str) -> None:
        remove_files([dst for _, dst in self.items[side]])

    def plain(self, items: list[Any]) -> None:
        link = os.link
        for s, d in items:
            link(s, d)

    def stalwart(self, items: list[Any]) -> None:
        link = fs.link
        for s, d in items:
            link(s, d)


class Unlink(Bench):
    name = "unlink"

    def setup(self) -> None:
        self.items = {s: self.p(f"{s}-") for s in "ab"}

    def prepare(self, side: str) -> None:
        make_files(self.items[side])

    def plain(self, items: list[Any]) -> None:
        unlink = os.unlink
        for path in items:
            unlink(path)

    def stalwart(self, items: list[Any]) -> None:
        unlink = fs.unlink
        for path in items:
            unlink(path)


class Makedirs(Bench):
    """Information only: os.makedirs stats the parent first, stalwart tries mkdir first."""

    name = "makedirs"

    def setup(self) -> None:
        self.items = {s: [p[:-3] for p in self.p(f"{s}-pkg")] for s in "ab"}

    def cleanup(self, side: str) -> None:
        for path in self.items[side]:
            os.rmdir(path)

    def plain(self, items: list[Any]) -> None:
        makedirs = os.makedirs
        for path in items:
            makedirs(path, exist_ok=True)

    def stalwart(self, items: list[Any]) -> None:
        makedirs = fs.makedirs
        for path in items:
            makedirs(path)


class Copy(Link):
    """Information only: shutil.copy and fs.copy both copy the data and the mode bits."""

    name = "copy"

    def plain(self, items: list[Any]) -> None:
        copy = shutil.copy
        for s, d in items:
            copy(s, d)

    def stalwart(self, items: list[Any]) -> None:
        copy = fs.copy
        for s, d in items:
            copy(s, d)


BENCHES: list[type[Bench]] = [Replace, Write, Link, Unlink, Makedirs, Copy]


def run_suite(root: str, n: int, rounds: int, chunks: int) -> dict[str, Result]:
    """Per round: prepare both file sets, then time chunks alternately, A B B A A B ...

    Plain and stalwart swap file sets every round: on a real disk the set created second can
    be measurably slower or faster, which must not show up as overhead of either side.
    """
    results: dict[str, Result] = {}
    bounds = [(n * k // chunks, n * (k + 1) // chunks) for k in range(chunks)]
    for cls in BENCHES:
        bench = cls(root, n)
        result = results[bench.name] = Result()
        for round_ in range(rounds + 1):  # round 0 is an untimed warm-up
            plain_set, our_set = ("a", "b") if round_ % 2 else ("b", "a")
            sides = (
                (plain_set, bench.plain, result.plain),
                (our_set, bench.stalwart, result.stalwart),
            )
            for side in "ab":
                bench.prepare(side)
            gc.collect()
            total = {"a": 0, "b": 0}
            for k, (lo, hi) in enumerate(bounds):
                # Alternate plain and stalwart, swapping which goes first every chunk so that
                # neither always runs on a cache the other just warmed.
                for side, run, _ in sides if k % 2 == 0 else sides[::-1]:
                    items = bench.items[side][lo:hi]
                    total[side] += timed(lambda run=run, items=items: run(items))
            for side in "ab":
                bench.cleanup(side)
            if round_:
                for side, _, times in sides:
                    times.append(total[side])
        shutil.rmtree(bench.dir)
    return results


def call_overhead() -> dict[str, float]:
    """ns the layer adds to one call, with the primitives swapped for no-op C functions.

    Unlike the timings above this involves no system call, so it barely depends on the load of
    the machine: it is the floor of what stalwart.fs costs per operation.
    """
    from stalwart.fs.faults import primitives_replaced

    noop2, noop1 = slice, len  # C callables taking 2 and 1 arguments, no system call
    cases = {
        "replace": (noop2, fs.replace, ("a", "b")),
        "link": (noop2, fs.link, ("a", "b")),
        "unlink": (noop1, fs.unlink, ("a",)),
    }
    out = {}
    for name, (noop, wrapper, args) in cases.items():
        with primitives_replaced(**{name: noop}):
            number = 20_000
            stmt = "f(a)" if len(args) == 1 else "f(a, b)"
            names = dict(zip("ab", args, strict=False))
            timers = [timeit.Timer(stmt, globals={"f": f, **names}) for f in (noop, wrapper)]
            best = [math.inf, math.inf]
            for _ in range(60):  # interleaved, so a burst of other load hits both alike
                for k, timer in enumerate(timers):
                    best[k] = min(best[k], timer.timeit(number))
            base, ours = best
            out[name] = (ours - base) / number * 1e9
    return out


def fresh_dir(base: str) -> str:
    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, f"stalwart-fs-overhead-{os.getpid()}")
    os.mkdir(path)
    return path


def report(columns: list[tuple[str, str, int, dict[str, Result]]]) -> None:
    cells = (
        f"{'plain ns':>9} {'stalwart ns':>11} {'paired':>6} {'ratio':>6} {'min-r':>6}"
        f" {'spread':>6} {'':>4}"
    )
    width = len(cells)
    for label, where, n, _ in columns:
        print(f"{label}: {where}, {n} files")
    print()
    print(
        f"{'':<10}" + "".join(f" | {f'{label} ({n} files)':^{width}}" for label, _, n, _ in columns)
    )
    print(f"{'op':<10}" + f" | {cells}" * len(columns))
    print("-" * 10 + ("-+-" + "-" * width) * len(columns))
    for cls in BENCHES:
        line = f"{cls.name:<10}"
        for _, _, n, results in columns:
            r = results[cls.name]
            plain, ours = r.per_op(n)
            verdict = "info"
            if cls.name in GATED:
                verdict = "PASS" if r.paired <= THRESHOLD else "FAIL"
            spread = max(max(r.plain) / min(r.plain), max(r.stalwart) / min(r.stalwart))
            line += (
                f" | {plain:>9.0f} {ours:>11.0f} {r.paired:>6.3f} {r.ratio:>6.3f}"
                f" {r.min_ratio:>6.3f}"
                f" {spread:>6.2f} {verdict:>4}"
            )
        print(line)
    print()
    print("ns: per operation, median over rounds of the per-round time.")
    print(
        f"paired: median of the per-round stalwart / plain ratios (the verdict: PASS if <= "
        f"{THRESHOLD} for {', '.join(GATED)})."
    )
    print("ratio: stalwart / plain of the median round times.")
    print("min-r: the same ratio of the fastest rounds (less sensitive to other load).")
    print("spread: slowest / fastest round of either side; above ~1.05 the machine is too")
    print("        busy for a 2% verdict to mean much, rerun on a quiet machine.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/dev/shm", help="where to work (default: tmpfs)")
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--chunks", type=int, default=10, help="alternations of plain/stalwart within a round"
    )
    parser.add_argument("--disk", help="also measure in this directory (on a real disk)")
    parser.add_argument(
        "--disk-files",
        type=int,
        default=500,
        help="files for the --disk run (default 500: an fsync on a real disk takes milliseconds)",
    )
    args = parser.parse_args(argv)

    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    print(
        f"stalwart.fs overhead: Python {platform.python_version()}, {sys.platform}, "
        f"{os.cpu_count()} CPUs, load {' '.join(f'{x:.1f}' for x in load)}; "
        f"{args.rounds} rounds + 1 warm-up, plain/stalwart alternating over {args.chunks} chunks"
    )
    columns = []
    started = time.monotonic()
    targets = [("tmpfs" if args.dir.startswith("/dev/shm") else "dir", args.dir, args.files)]
    if args.disk:
        targets.append(("disk", args.disk, args.disk_files))
    for label, base, n in targets:
        root = fresh_dir(base)
        try:
            columns.append((label, root, n, run_suite(root, n, args.rounds, args.chunks)))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    overhead = call_overhead()
    print(f"(measured in {time.monotonic() - started:.1f} s)\n")
    report(columns)
    print()
    print("layer cost per call without any system call (primitives swapped for no-op C calls),")
    print("and the ratio it implies on the tmpfs timings above:")
    label, _, n, results = columns[0]
    for name, ns in overhead.items():
        plain, _ = results[name].per_op(n)
        print(f"  {name:<8} +{ns:5.0f} ns per call  -> expected {label} ratio {1 + ns / plain:.3f}")
    failed = [
        f"{name} ({label})"
        for label, _, _, results in columns
        for name in GATED
        if results[name].paired > THRESHOLD
    ]
    print()
    if failed:
        print(f"OVER {THRESHOLD}: {', '.join(failed)}")
    else:
        print(f"all gated operations within {THRESHOLD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
