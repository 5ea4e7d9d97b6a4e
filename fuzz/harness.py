"""Shared plumbing of the fuzz targets: libFuzzer through atheris, or a hypothesis loop.

Every target is a function of one input (``bytes``) that may raise a
:class:`stalwart.errors.StalwartError` (the input was refused) and nothing else: any other
exception, including a failed property assertion, is a crash. A target file calls :func:`run`
with its function and its seeds, and is run as a script::

    python fuzz/fuzz_record.py -max_total_time=600          # libFuzzer flags pass through
    python fuzz/fuzz_record.py fuzz/crashes/record-crash-1a2b  # replay one input

Seeds come from ``tests/seeds.py`` (the same honest wheels the tests build) and are written to
``fuzz/corpus/<target>/`` on the first run; libFuzzer adds what it finds there. Without atheris
the same command runs a hypothesis loop over mutated seeds, with ``-max_total_time=`` and
``-runs=`` honoured, and prints the same summary lines (``stat::number_of_executed_units``,
``Test unit written to``) that ``fuzz/run_all.py`` reads; ``STALWART_FUZZ_NO_ATHERIS=1`` forces
that loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FUZZ_DIR = Path(__file__).resolve().parent
ROOT = FUZZ_DIR.parent
sys.path.insert(0, str(ROOT / "tests"))  # seeds.py and wheelfactory.py

atheris: Any
try:
    if os.environ.get("STALWART_FUZZ_NO_ATHERIS"):  # try the fallback where atheris exists
        raise ImportError("STALWART_FUZZ_NO_ATHERIS is set")
    import atheris
except ImportError:
    atheris = None

Target = Callable[[bytes], None]


def instrumented() -> contextlib.AbstractContextManager[Any]:
    """Import stalwart inside this so libFuzzer sees coverage of its Python code."""
    return atheris.instrument_imports() if atheris is not None else contextlib.nullcontext()


SCRATCH = (
    Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(os.environ.get("TMPDIR", "/tmp"))
) / "stalwart-fuzz"


def scratch_file(name: str) -> Path:
    """A per-process file for targets that need a path, on tmpfs when there is one.

    libFuzzer ends the process without running Python's exit handlers, so these are left
    behind (a few kB each); ``fuzz/run_all.py`` removes the directory afterwards.
    """
    folder = SCRATCH / str(os.getpid())  # the name itself may matter (a wheel's filename)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def run(name: str, target: Target, seeds: Callable[[], Iterable[bytes]]) -> None:
    """Fuzz *target* (or replay the files named on the command line)."""
    corpus = FUZZ_DIR / "corpus" / name
    if not corpus.is_dir() or not any(corpus.iterdir()):
        corpus.mkdir(parents=True, exist_ok=True)
        for data in seeds():
            (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    from stalwart.errors import StalwartError

    def guarded(data: bytes) -> None:
        with contextlib.suppress(StalwartError):
            target(data)

    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    inputs = [a for a in sys.argv[1:] if not a.startswith("-")]
    if atheris is not None:
        dirs = inputs or [str(corpus)]
        atheris.Setup([sys.argv[0], *flags, *dirs], guarded)
        atheris.Fuzz()
    elif inputs:
        for path in inputs:
            guarded(Path(path).read_bytes())
        print(f"replayed {len(inputs)} inputs without a crash")
    else:
        _hypothesis_loop(name, guarded, [p.read_bytes() for p in sorted(corpus.iterdir())], flags)


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"-{name}="):
            return int(flag.split("=", 1)[1])
    return default


def _hypothesis_loop(name: str, target: Target, corpus: list[bytes], flags: list[str]) -> None:
    """Run *target* on mutated seeds in batches until -max_total_time or -runs is reached."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    budget = _flag(flags, "max_total_time", 60)
    runs = _flag(flags, "runs", -1)
    prefix = next((f.split("=", 1)[1] for f in flags if f.startswith("-artifact_prefix=")), "")
    done = 0
    started = time.monotonic()
    inputs = st.sampled_from(corpus).flatmap(_mutations) | st.binary(max_size=4096)

    @settings(
        max_examples=500,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def batch(data: bytes) -> None:
        nonlocal done
        done += 1
        try:
            target(data)
        except Exception:
            path = Path(f"{prefix}crash-{hashlib.sha1(data).hexdigest()}")
            path.write_bytes(data)
            print("=== Uncaught Python exception: ===", file=sys.stderr)
            traceback.print_exc()
            print(f"Test unit written to {path}", file=sys.stderr)
            print(f"stat::number_of_executed_units: {done}", file=sys.stderr)
            sys.exit(1)

    while time.monotonic() - started < budget and (runs < 0 or done < runs):
        batch()
    elapsed = time.monotonic() - started
    print(f"Done {done} runs in {elapsed:.0f} second(s) (hypothesis loop: {name})", file=sys.stderr)
    print(f"stat::number_of_executed_units: {done}", file=sys.stderr)


def _mutations(data: bytes) -> Any:
    """A strategy of *data* with a few byte flips, inserts, deletions and splices."""
    from hypothesis import strategies as st

    @st.composite
    def mutate(draw: Any) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            if not out:
                break
            at = draw(st.integers(0, len(out) - 1))
            op = draw(st.integers(0, 3))
            if op == 0:
                out[at] ^= 1 << draw(st.integers(0, 7))
            elif op == 1:
                out[at:at] = draw(st.binary(min_size=1, max_size=8))
            elif op == 2:
                del out[at : at + draw(st.integers(1, 32))]
            else:
                chunk = bytes(out[at : at + draw(st.integers(1, 64))])
                to = draw(st.integers(0, len(out)))
                out[to:to] = chunk
        return bytes(out)

    return mutate()


def text_of(data: bytes) -> str:
    """Input bytes as the text a reader would decode (undecodable bytes replaced)."""
    return data.decode("utf-8", "replace")
