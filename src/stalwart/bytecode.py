"""Byte-compiling with the *target* interpreter, in a pool of its processes, which hand the
bytes back.

Bytecode depends on the interpreter that will import it (its magic number, its optimizations),
so the target compiles. It does not write: ``_compile_pyc.py`` is fed source paths and returns
each ``.pyc`` as raw bytes, and stalwart stores them through the filesystem layer (in the
transaction's stage, or in the unpacked-wheel cache). One process per core, started before
staging so that their start-up overlaps it, each fed the next files by size (longest first), and
each watched: a file that takes longer than the per-file timeout gets its process killed and is
reported as not compiled, like a file with a syntax error (pip and uv install those too).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Self

from stalwart.interpreter import helper_script, interpreter_env

__all__ = ["Source", "Compiled", "Compiler", "PER_FILE_TIMEOUT"]

_COMPILE_CHUNK = 40  # .py files per compiling process, at least
_BEGIN = b"\x1estalwart-compile-begin\x1e\n"
PER_FILE_TIMEOUT = 120.0  # seconds without an answer before a worker is given up on


@dataclass(frozen=True, slots=True)
class Source:
    """A ``.py`` file to compile (``path``) and the path it will have once installed."""

    staged: str
    final: str
    size: int


@dataclass(frozen=True, slots=True)
class Compiled:
    """Bytecode for *source*, to be installed at *dest*."""

    source: Source
    dest: str
    data: bytes


class Compiler:
    """Target-interpreter processes waiting for work; a context manager that stops them."""

    def __init__(
        self,
        executable: str,
        n_sources: int,
        *,
        per_file_timeout: float = PER_FILE_TIMEOUT,
    ) -> None:
        """Start enough processes for *n_sources* files (none for zero), one per core at most."""
        self.executable = executable
        self.per_file_timeout = per_file_timeout
        self._procs: list[subprocess.Popen[bytes]] = []
        if n_sources == 0:
            return
        script = helper_script("_compile_pyc.py")
        env = interpreter_env()
        workers = max(1, min(os.cpu_count() or 1, -(-n_sources // _COMPILE_CHUNK)))
        for _ in range(workers):
            self._procs.append(
                subprocess.Popen(
                    [executable, "-I", "-c", script],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    # Compiling prints SyntaxWarnings; unread, a pipe would fill and stall it.
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
            )

    def compile(
        self, sources: list[Source], tick: Callable[[int], None] | None = None
    ) -> tuple[list[Compiled], list[str]]:
        """Compile *sources*, balanced over the processes by size; returns (results, errors).

        A file that does not compile is an error to report, not a failed install.
        """
        if not self._procs or not sources:
            self.close()
            return [], []
        chunks: list[list[Source]] = [[] for _ in self._procs]
        loads = [0] * len(self._procs)
        for source in sorted(sources, key=lambda s: -s.size):
            i = loads.index(min(loads))
            chunks[i].append(source)
            loads[i] += source.size + 2048  # per-file overhead
        workers = [
            _Worker(proc, chunk, tick) for proc, chunk in zip(self._procs, chunks, strict=True)
        ]
        for worker in workers:
            worker.start()
        while any(w.alive for w in workers):
            for worker in workers:
                if worker.alive and time.monotonic() - worker.progress > self.per_file_timeout:
                    worker.give_up(self.per_file_timeout)
            for worker in workers:
                worker.wait(0.05)
        self._procs = []
        results = [c for w in workers for c in w.results]
        errors = [e for w in workers for e in w.errors]
        return results, errors

    def close(self) -> None:
        """Stop processes that were never given work (an install that failed earlier)."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self._procs = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Worker:
    """One process and its share of the files: a thread feeds it, another reads its answers."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        chunk: list[Source],
        tick: Callable[[int], None] | None,
    ) -> None:
        self.proc = proc
        self.chunk = chunk
        self.tick = tick
        self.results: list[Compiled] = []
        self.errors: list[str] = []
        self.progress = time.monotonic()
        self.done = 0
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._timed_out: float | None = None

    def start(self) -> None:
        self._feeder.start()
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._reader.is_alive()

    def wait(self, seconds: float) -> None:
        self._reader.join(seconds)

    def give_up(self, timeout: float) -> None:
        self._timed_out = timeout
        self.proc.kill()

    def _feed(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            for source in self.chunk:
                stdin.write(json.dumps([source.staged, source.final]).encode("utf-8") + b"\n")
            stdin.write(b"\n")
            stdin.close()
        except OSError:
            pass  # the process died; the reader reports what is missing

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            if not _skip_to_marker(stdout):
                raise EOFError
            for source in self.chunk:
                header = stdout.readline()
                if not header:
                    raise EOFError
                row = json.loads(header)
                if "error" in row:
                    self.errors.append(f"{source.final}: {row['error']}")
                else:
                    data = stdout.read(int(row["size"]))
                    if len(data) != int(row["size"]):
                        raise EOFError
                    dest = os.path.normpath(os.path.join(os.path.dirname(source.final), row["pyc"]))
                    self.results.append(Compiled(source, dest, data))
                self.done += 1
                self.progress = time.monotonic()
                if self.tick is not None:
                    self.tick(1)
        except (EOFError, ValueError, KeyError, TypeError):
            left = self.chunk[self.done :]
            if left:
                why = (
                    f"no answer within {self._timed_out:g} s"
                    if self._timed_out is not None
                    else "the compiling interpreter stopped"
                )
                self.errors.append(f"{left[0].final}: not byte-compiled: {why}")
                self.errors.extend(f"{s.final}: not byte-compiled (skipped)" for s in left[1:])
        finally:
            if self.proc.poll() is None and self._timed_out is not None:
                self.proc.kill()
            self.proc.wait()
            stdout.close()


def _skip_to_marker(stdout: IO[bytes]) -> bool:
    """Read past whatever a ``.pth`` file printed before the worker's marker line."""
    while True:
        line = stdout.readline()
        if not line:
            return False
        if line.endswith(_BEGIN):
            return True
