"""Byte-compiling with the *target* interpreter, which hands the bytes back.

Bytecode depends on the interpreter that will import it (its magic number, its optimizations),
so the target compiles. It does not write: ``_compile_pyc.py`` returns each ``.pyc`` as bytes
and stalwart stages them like any other file, so bytecode goes through the filesystem layer and
the transaction too. The worker processes start before staging, so their start-up overlaps it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from stalwart.interpreter import helper_script, interpreter_env

__all__ = ["Source", "Compiled", "Compiler"]

_COMPILE_CHUNK = 40  # .py files per compiling process, at least
#: Printed by _compile_pyc.py before its answers: what a .pth file prints comes before it.
_BEGIN = "\x1estalwart-compile-begin\x1e\n"


@dataclass(frozen=True, slots=True)
class Source:
    """A staged ``.py`` file and the path it will have once installed."""

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

    def __init__(self, executable: str, n_sources: int) -> None:
        """Start enough processes for *n_sources* files (none for zero)."""
        self.executable = executable
        self._procs: list[subprocess.Popen[str]] = []
        if n_sources == 0:
            return
        script = helper_script("_compile_pyc.py")
        env = interpreter_env()
        workers = max(1, min(os.cpu_count() or 1, n_sources // _COMPILE_CHUNK))
        for _ in range(workers):
            self._procs.append(
                subprocess.Popen(
                    [executable, "-I", "-c", script],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )

    def compile(self, sources: list[Source]) -> tuple[list[Compiled], list[str]]:
        """Compile *sources*, balanced over the processes by size; returns (results, errors).

        A file that does not compile (a syntax error in a test fixture...) is an error to
        report, not a failed install: pip and uv install such files too.
        """
        if not self._procs:
            return [], []
        chunks: list[list[Source]] = [[] for _ in self._procs]
        loads = [0] * len(self._procs)
        for source in sorted(sources, key=lambda s: -s.size):
            i = loads.index(min(loads))
            chunks[i].append(source)
            loads[i] += source.size + 2048  # per-file overhead
        results: list[Compiled] = []
        errors: list[str] = []
        for chunk, proc in zip(chunks, self._procs, strict=True):
            stdout, stderr = proc.communicate(json.dumps([[s.staged, s.final] for s in chunk]))
            if proc.returncode != 0:
                errors.append(f"byte-compilation failed: {stderr.strip()[-500:]}")
                continue
            _, found, answer = stdout.rpartition(_BEGIN)
            lines = answer.splitlines()
            if not found or len(lines) != len(chunk):
                errors.append(f"byte-compilation gave no usable answer: {stderr.strip()[-500:]}")
                continue
            for source, line in zip(chunk, lines, strict=True):
                row = json.loads(line)
                if "error" in row:
                    errors.append(f"{source.final}: {row['error']}")
                    continue
                dest = os.path.normpath(os.path.join(os.path.dirname(source.final), row["pyc"]))
                results.append(Compiled(source, dest, base64.b64decode(row["data"])))
        self._procs = []
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
