"""Wall-clock install time of real wheels: stalwart against pip, uv and pypa/installer.

    .venv/bin/python benchmarks/install_speed.py [--dir /dev/shm/stalwart-bench]
        [--disk DIR] [--rounds 7] [--corpus small|large] [--phase-runs 3] [--profile]
        [--stalwart-src DIR] [--keep]

Each tool installs the same corpus (``--no-deps``, local wheel files, no index) into a fresh
virtual environment, through its real command line, with and without byte-compilation:

* stalwart  ``stalwart install --python VENV/bin/python WHEELS -q [--no-compile]``; its
  interpreter cache (``STALWART_CACHE_DIR``, bench-local) is warm, as on any second use of the
  same venv path; the ``cold`` rows give it an empty cache each run.
* pip       ``python -m pip --python VENV/bin/python install --no-deps --no-index
  --compile|--no-compile``, with its configuration isolated (``PIP_CONFIG_FILE=/dev/null``).
* uv        ``uv pip install --python VENV/bin/python --no-deps --offline --no-config
  [--compile-bytecode]``; ``cold`` gets an empty ``UV_CACHE_DIR`` each run, ``warm`` a cache
  that already holds the unpacked wheels (uv then hard-links from it).
* installer ``VENV/bin/python -m installer --compile-bytecode 0|--no-compile-bytecode`` run by
  the target interpreter (installer installs into the running interpreter's scheme), with
  ``PYTHONPATH`` naming only the installer package. Level 0 only, like the others (installer's
  default also writes ``opt-1`` files).

Each round creates every target venv first (untimed), then times the tools in an order rotated
by one every round; one untimed warm-up round comes first. The table gives the median over the
rounds and the ratio tool / stalwart with the same compile setting (> 1: slower than stalwart).
The default directory is on tmpfs; ``--disk DIR`` runs the same rounds on a disk directory too,
interleaved, and prints its columns beside. The wheels are downloaded once into
``.cache/bench-wheels/`` of the repository (pinned versions, binary only). Every run is checked
afterwards (untimed): all distributions installed, and ``.pyc`` files exactly when compiling.

Then stalwart's own ``-v`` phases (stage, compile, commit) are printed, median of
``--phase-runs``. ``--profile`` also runs ``stalwart.cli.main`` in-process under cProfile
(into ``.cache/bench-stalwart-{c,n}.prof``) and prints the top functions. ``--stalwart-src DIR``
benchmarks the stalwart package under DIR (``python -m stalwart``) instead of the venv's
``stalwart`` command, e.g. a snapshot made with ``git archive`` to compare before and after.
Wall-clock numbers are only as good as the machine is quiet: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

REPO = Path(__file__).resolve().parent.parent
WHEEL_CACHE = REPO / ".cache" / "bench-wheels"
BIN = Path(sys.executable).parent
MARKER = ".stalwart-bench"
STALWART_SRC: str | None = None  # --stalwart-src: run that source tree's stalwart instead


def stalwart_cmd(env: dict[str, str]) -> list[str]:
    """The stalwart command line; with --stalwart-src, ``python -m stalwart`` from that tree."""
    if STALWART_SRC is None:
        return [str(BIN / "stalwart")]
    env["PYTHONPATH"] = STALWART_SRC
    return [sys.executable, "-m", "stalwart"]


SMALL = [
    "six==1.16.0",
    "idna==3.10",
    "certifi==2024.8.30",
    "urllib3==2.2.3",
    "requests==2.32.3",
    "MarkupSafe==2.1.5",
    "PyYAML==6.0.2",
    "pyflakes==3.2.0",
    "Jinja2==3.1.4",
    "packaging==24.2",
    "click==8.1.7",
    "rich==13.9.4",
    "Pygments==2.18.0",
]
LARGE = [*SMALL, "numpy==2.1.3", "pandas==2.2.3"]
CORPORA = {"small": SMALL, "large": LARGE}


# --------------------------------------------------------------------------------------------
# environment and corpus


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that configures pip or uv."""
    env = dict(os.environ)
    for key in list(env):
        if (
            key.startswith(("PIP_", "UV_", "PYTHON", "STALWART_"))
            or key in {"VIRTUAL_ENV", "CONDA_PREFIX", "__PYVENV_LAUNCHER__"}
        ) and key != "PIP_CERT":
            del env[key]
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def _find_wheel(pin: str, tags: set[str]) -> Path | None:
    name, version = pin.split("==")
    for path in sorted(WHEEL_CACHE.glob("*.whl")):
        try:
            wname, wversion, _, wtags = parse_wheel_filename(path.name)
        except ValueError:
            continue
        if (
            wname == canonicalize_name(name)
            and str(wversion) == version
            and any(str(t) in tags for t in wtags)
        ):
            return path
    return None


def corpus(pins: list[str]) -> list[Path]:
    """The wheels for *pins* that this interpreter can install, downloaded once."""
    tags = {str(t) for t in sys_tags()}
    missing = [pin for pin in pins if _find_wheel(pin, tags) is None]
    if missing:
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        print(f"downloading {len(missing)} wheels into {WHEEL_CACHE} ...", flush=True)
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*argv, "-q", "-d", str(WHEEL_CACHE), *missing], env=clean_env(), check=True)
    wheels = []
    for pin in pins:
        found = _find_wheel(pin, tags)
        if found is None:
            raise SystemExit(f"no wheel for {pin} compatible with this interpreter")
        wheels.append(found)
    return wheels


# --------------------------------------------------------------------------------------------
# variants


@dataclass
class Run:
    argv: list[str]
    env: dict[str, str]
    cleanup: list[Path] = field(default_factory=list)  # removed after the run, untimed


@dataclass
class Variant:
    tool: str
    compile: bool
    cache: str  # "" when the tool keeps no cache that matters here
    make: Callable[[Workspace, Path, list[str]], Run]

    @property
    def key(self) -> str:
        parts = [self.tool, "c" if self.compile else "n", self.cache]
        return "-".join(p for p in parts if p)

    @property
    def reference(self) -> bool:
        return self.tool == "stalwart" and self.cache == "warm"


class Workspace:
    """One base directory (tmpfs or disk) holding the venvs, caches and scratch of a series."""

    def __init__(self, label: str, base: Path) -> None:
        self.label = label
        self.base = base.resolve()
        self.counter = 0
        nonempty = self.base.exists() and any(self.base.iterdir())
        if nonempty and not (self.base / MARKER).exists():
            raise SystemExit(f"{self.base} exists, is not empty and is not a bench directory")
        self.created = not self.base.exists()
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / MARKER).touch()
        self.clear()
        # installer on PYTHONPATH, alone (not the whole site-packages of the repo's venv).
        import installer

        self.installer_path = self.base / "installer-path"
        self.installer_path.mkdir()
        (self.installer_path / "installer").symlink_to(Path(installer.__file__).parent)
        self.stalwart_cache = self.base / "stalwart-cache"
        self.uv_warm_cache = self.base / "uv-warm-cache"
        self.venvs = self.base / "venvs"
        self.venvs.mkdir()

    def clear(self) -> None:
        for child in self.base.iterdir():
            if child.name == MARKER:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def remove(self) -> None:
        """Empty the directory; remove it too when this run created it."""
        self.clear()
        if self.created:
            (self.base / MARKER).unlink()
            self.base.rmdir()

    def scratch(self, prefix: str) -> Path:
        """A fresh, not yet existing path for a per-run cache."""
        self.counter += 1
        return self.base / f"{prefix}-{self.counter}"

    def fresh_venv(self, key: str) -> Path:
        path = self.venvs / key
        if path.exists():
            shutil.rmtree(path)
        venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=True).create(path)
        return path


def py(target: Path) -> str:
    return str(target / "bin" / "python")


def _stalwart(cold: bool, compile_: bool) -> Callable[[Workspace, Path, list[str]], Run]:
    def make(ws: Workspace, target: Path, wheels: list[str]) -> Run:
        env = clean_env()
        cleanup = []
        if cold:
            cache = ws.scratch("stalwart-cold")
            cleanup.append(cache)
        else:
            cache = ws.stalwart_cache
        env["STALWART_CACHE_DIR"] = str(cache)
        argv = [*stalwart_cmd(env), "install", "--python", py(target), *wheels, "-q"]
        if not compile_:
            argv.append("--no-compile")
        return Run(argv, env, cleanup)

    return make


def _pip(compile_: bool) -> Callable[[Workspace, Path, list[str]], Run]:
    def make(ws: Workspace, target: Path, wheels: list[str]) -> Run:
        argv = [sys.executable, "-m", "pip", "--python", py(target), "install", "-q"]
        argv += ["--no-deps", "--no-index", "--compile" if compile_ else "--no-compile", *wheels]
        return Run(argv, clean_env())

    return make


def uv_binary() -> str:
    candidate = BIN / "uv"
    if candidate.exists():
        return str(candidate)
    from uv import find_uv_bin  # type: ignore[import-not-found]

    return str(find_uv_bin())


def _uv(cold: bool, compile_: bool) -> Callable[[Workspace, Path, list[str]], Run]:
    def make(ws: Workspace, target: Path, wheels: list[str]) -> Run:
        env = clean_env()
        cleanup = []
        if cold:
            cache = ws.scratch("uv-cold")
            cleanup.append(cache)
        else:
            cache = ws.uv_warm_cache
        env["UV_CACHE_DIR"] = str(cache)
        argv = [uv_binary(), "pip", "install", "--python", py(target), "-q"]
        argv += ["--no-deps", "--offline", "--no-config"]
        if compile_:
            argv.append("--compile-bytecode")
        return Run([*argv, *wheels], env, cleanup)

    return make


def _installer(compile_: bool) -> Callable[[Workspace, Path, list[str]], Run]:
    def make(ws: Workspace, target: Path, wheels: list[str]) -> Run:
        env = clean_env()
        env["PYTHONPATH"] = str(ws.installer_path)
        argv = [py(target), "-m", "installer"]
        argv += ["--compile-bytecode", "0"] if compile_ else ["--no-compile-bytecode"]
        return Run([*argv, *wheels], env)

    return make


VARIANTS = [
    Variant("stalwart", True, "warm", _stalwart(cold=False, compile_=True)),
    Variant("stalwart", False, "warm", _stalwart(cold=False, compile_=False)),
    Variant("stalwart", True, "cold", _stalwart(cold=True, compile_=True)),
    Variant("stalwart", False, "cold", _stalwart(cold=True, compile_=False)),
    Variant("pip", True, "", _pip(compile_=True)),
    Variant("pip", False, "", _pip(compile_=False)),
    Variant("uv", True, "cold", _uv(cold=True, compile_=True)),
    Variant("uv", False, "cold", _uv(cold=True, compile_=False)),
    Variant("uv", True, "warm", _uv(cold=False, compile_=True)),
    Variant("uv", False, "warm", _uv(cold=False, compile_=False)),
    Variant("installer", True, "", _installer(compile_=True)),
    Variant("installer", False, "", _installer(compile_=False)),
]


# --------------------------------------------------------------------------------------------
# running


def site_packages(target: Path) -> Path:
    found = list((target / "lib").glob("python*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"cannot find site-packages in {target}")
    return found[0]


def census(target: Path) -> tuple[int, int, int]:
    """(distributions, files, .pyc files) installed into *target*."""
    site = site_packages(target)
    dists = sum(1 for p in site.iterdir() if p.name.endswith(".dist-info"))
    files = pycs = 0
    for root in (site, target / "bin"):
        for _, _, names in os.walk(root):
            files += len(names)
            pycs += sum(1 for n in names if n.endswith(".pyc"))
    return dists, files, pycs


def timed(variant: Variant, ws: Workspace, target: Path, wheels: list[str], sync: bool) -> float:
    run = variant.make(ws, target, wheels)
    if sync:
        os.sync()  # start every disk run with the writeback of the previous one done
    start = time.perf_counter()
    proc = subprocess.run(run.argv, env=run.env, cwd=ws.base, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout.decode(errors="replace"))
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        raise SystemExit(f"{variant.key} failed (exit {proc.returncode}): {' '.join(run.argv)}")
    for path in run.cleanup:
        shutil.rmtree(path, ignore_errors=True)
    return elapsed


@dataclass
class Series:
    ws: Workspace
    sync: bool
    times: dict[str, list[float]] = field(default_factory=dict)
    census: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    phases: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def one_round(series: Series, wheels: list[str], order: list[Variant], record: bool) -> None:
    targets = {v.key: series.ws.fresh_venv(v.key) for v in order}
    for variant in order:
        elapsed = timed(variant, series.ws, targets[variant.key], wheels, series.sync)
        got = census(targets[variant.key])
        if got[0] != len(wheels):
            raise SystemExit(f"{variant.key}: {got[0]} distributions installed, not {len(wheels)}")
        if variant.compile != (got[2] > 0):
            raise SystemExit(f"{variant.key}: {got[2]} .pyc files with compile={variant.compile}")
        series.census[variant.key] = got
        if record:
            series.times.setdefault(variant.key, []).append(elapsed)


PHASES = re.compile(r"phases: (.*)")
SUMMARY = re.compile(r"Installed \d+ packages? in (\d+) ms")


def stalwart_phases(series: Series, wheels: list[str], runs: int) -> None:
    """Stalwart's own account of where its time went (``-v``), untimed by us."""
    for compile_ in (True, False):
        label = "compile" if compile_ else "no-compile"
        acc = series.phases.setdefault(label, {})
        for _ in range(runs):
            target = series.ws.fresh_venv("phases")
            env = clean_env()
            env["STALWART_CACHE_DIR"] = str(series.ws.stalwart_cache)
            argv = [*stalwart_cmd(env), "install", "--python", py(target), *wheels, "-v"]
            if not compile_:
                argv.append("--no-compile")
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                return
            match = PHASES.search(proc.stdout)
            if match:
                for part in match.group(1).split(", "):
                    name, ms, _ = part.rsplit(" ", 2)
                    acc.setdefault(name, []).append(float(ms))
            total = SUMMARY.search(proc.stdout)
            if total:
                acc.setdefault("total (in-process)", []).append(float(total.group(1)))


# --------------------------------------------------------------------------------------------
# report


def fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def report(series: list[Series], rounds: int) -> None:
    header = f"{'tool':<10} {'compile':<7} {'cache':<5}"
    sub = " " * len(header)
    for s in series:
        header += f" | {s.ws.label:^28}"
        sub += f" | {'median s':>9} {'min s':>7} {'ratio':>8}"
    print(header)
    print(sub)
    print("-" * len(sub))
    ordered = sorted(VARIANTS, key=lambda v: (not v.compile, not v.reference))
    for compile_ in (True, False):
        for variant in (v for v in ordered if v.compile == compile_):
            line = f"{variant.tool:<10} {'yes' if compile_ else 'no':<7} {variant.cache or '-':<5}"
            for s in series:
                times = s.times[variant.key]
                ref = next(v for v in VARIANTS if v.reference and v.compile == compile_)
                ratio = statistics.median(times) / statistics.median(s.times[ref.key])
                line += (
                    f" | {statistics.median(times):9.3f} {min(times):7.3f} "
                    f"{fmt_ratio(None if variant.reference else ratio):>8}"
                )
            print(line)
        print()
    print(f"median and min over {rounds} rounds; ratio = tool / stalwart (warm) with the same")
    print("compile setting, > 1 means slower than stalwart.")
    print()
    s0 = series[0]
    print("installed (dists, files, .pyc) in the target:")
    for variant in VARIANTS:
        dists, files, pycs = s0.census[variant.key]
        print(f"  {variant.key:<18} {dists:>3} dists {files:>6} files {pycs:>6} .pyc")
    for s in series:
        if not any(s.phases.values()):
            continue
        print(f"\nstalwart's own phases (-v, median ms) on {s.ws.label}:")
        for label, acc in s.phases.items():
            parts = ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in acc.items())
            print(f"  {label:<11} {parts}")


def profile(ws: Workspace, wheels: list[str], compile_: bool) -> None:
    """cProfile stalwart's install in-process; prints the top functions."""
    import cProfile
    import pstats

    if STALWART_SRC is not None:
        sys.path.insert(0, STALWART_SRC)
    from stalwart.cli import main

    target = ws.fresh_venv("profile")
    os.environ["STALWART_CACHE_DIR"] = str(ws.stalwart_cache)
    argv = ["install", "--python", py(target), *wheels, "-q"]
    if not compile_:
        argv.append("--no-compile")
    out = REPO / ".cache" / f"bench-stalwart-{'c' if compile_ else 'n'}.prof"
    prof = cProfile.Profile()
    prof.runcall(main, argv)
    prof.dump_stats(out)
    print(f"\n=== cProfile of stalwart install (compile={compile_}), {out} ===")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)


def load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm/stalwart-bench"))
    parser.add_argument("--disk", type=Path, help="also run on this (disk) directory")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="small")
    parser.add_argument("--phase-runs", type=int, default=3, help="stalwart -v runs for phases")
    parser.add_argument("--profile", action="store_true", help="cProfile stalwart afterwards")
    parser.add_argument("--keep", action="store_true", help="leave the bench directories")
    parser.add_argument(
        "--stalwart-src",
        type=Path,
        help="benchmark the stalwart package under this directory (python -m stalwart) instead "
        "of the venv's stalwart command, e.g. a snapshot to compare against",
    )
    args = parser.parse_args(argv)
    if args.stalwart_src is not None:
        global STALWART_SRC  # noqa: PLW0603 - set once, before anything runs
        STALWART_SRC = str(args.stalwart_src.resolve())

    started = time.perf_counter()
    wheels = [str(p) for p in corpus(CORPORA[args.corpus])]
    size = sum(os.path.getsize(w) for w in wheels)
    workspaces = [Workspace(f"tmpfs {args.dir}" if args.disk else str(args.dir), args.dir)]
    if args.disk:
        workspaces.append(Workspace(f"disk {args.disk}", args.disk))
    series = [Series(ws, sync=i > 0) for i, ws in enumerate(workspaces)]
    print(
        f"corpus {args.corpus}: {len(wheels)} wheels, {size / 1e6:.1f} MB; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{args.rounds} rounds + 1 warm-up; load average {load()}",
        flush=True,
    )
    try:
        for rnd in range(args.rounds + 1):
            shift = rnd % len(VARIANTS)
            order = VARIANTS[shift:] + VARIANTS[:shift]
            for i, s in enumerate(series):
                if rnd == 0 and i > 0:
                    # The page cache and the tools' own bytecode are warm already: only the
                    # caches that live in this directory need the warm-up here.
                    one_round(s, wheels, [v for v in order if v.cache == "warm"], record=False)
                else:
                    one_round(s, wheels, order, record=rnd > 0)
            print(f"  round {rnd or 'warm-up'} done ({time.perf_counter() - started:.0f} s)")
        for s in series:
            stalwart_phases(s, wheels, args.phase_runs)
        print()
        report(series, args.rounds)
        if args.profile:
            for compile_ in (True, False):
                profile(workspaces[0], wheels, compile_)
    finally:
        if not args.keep:
            for ws in workspaces:
                ws.remove()
    print(f"\n(total {time.perf_counter() - started:.0f} s; load average now {load()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
