"""The command line of each tool, as a user would type it: one place to read what is compared.

* stalwart  ``stalwart install --no-deps --python VENV -q [--no-compile] [--stalwart-args] WHEELS``
* uv        ``uv pip install --no-deps --offline --no-config --python VENV -q
  [--compile-bytecode] [--uv-args] WHEELS``
* pip       ``python -m pip --python VENV install --no-deps --no-index -q
  --compile|--no-compile WHEELS``
* installer ``VENV/bin/python -m installer --compile-bytecode 0|--no-compile-bytecode WHEELS``,
  run by the target interpreter (installer installs into the running interpreter's scheme) with
  ``PYTHONPATH`` naming only the installer package. Level 0 only, like the others: installer's
  default also writes ``opt-1`` files.

Caches are parameters: the caller decides what is cold and what is warm.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .env import BIN, clean_env


def python_of(venv: Path) -> str:
    return str(venv / "bin" / "python")


def _uv_binary() -> str:
    candidate = BIN / "uv"
    if candidate.exists():
        return str(candidate)
    from uv import find_uv_bin  # type: ignore[import-not-found]

    return str(find_uv_bin())


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Tools:
    """How to start each tool; ``stalwart_src`` runs ``python -m stalwart`` from that tree
    (a ``git archive`` snapshot, say) instead of the repo venv's ``stalwart``."""

    stalwart_src: str | None = None
    stalwart_args: tuple[str, ...] = ()
    uv_args: tuple[str, ...] = ()

    @property
    def uv(self) -> str:
        return _uv_binary()

    @property
    def pip(self) -> list[str]:
        return [sys.executable, "-m", "pip"]

    def stalwart_base(self, env: dict[str, str]) -> list[str]:
        if self.stalwart_src is None:
            return [str(BIN / "stalwart")]
        env["PYTHONPATH"] = self.stalwart_src
        return [sys.executable, "-m", "stalwart"]

    def stalwart(
        self,
        venv: Path,
        wheels: list[str],
        *,
        compile_: bool,
        cache: Path,
        state: Path,
        extra: bool = True,
    ) -> Command:
        """*extra* False leaves ``--stalwart-args`` out: for setting up, not for timing."""
        env = clean_env()
        env["STALWART_CACHE_DIR"] = str(cache)
        env["STALWART_STATE_DIR"] = str(state)  # the journal key, never the user's
        argv = [*self.stalwart_base(env), "install", "--no-deps", "--python", python_of(venv)]
        argv.append("-q")
        if not compile_:
            argv.append("--no-compile")
        if extra:
            argv += self.stalwart_args
        return Command([*argv, *wheels], env)

    def uv_install(self, venv: Path, wheels: list[str], *, compile_: bool, cache: Path) -> Command:
        env = clean_env()
        env["UV_CACHE_DIR"] = str(cache)
        argv = [self.uv, "pip", "install", "--no-deps", "--offline", "--no-config"]
        argv += ["--python", python_of(venv), "-q"]
        if compile_:
            argv.append("--compile-bytecode")
        return Command([*argv, *self.uv_args, *wheels], env)

    def pip_install(self, venv: Path, wheels: list[str], *, compile_: bool) -> Command:
        argv = [*self.pip, "--python", python_of(venv), "install", "--no-deps", "--no-index"]
        argv += ["-q", "--compile" if compile_ else "--no-compile"]
        return Command([*argv, *wheels], clean_env())

    def installer(
        self, venv: Path, wheels: list[str], *, compile_: bool, installer_path: Path
    ) -> Command:
        env = clean_env()
        env["PYTHONPATH"] = str(installer_path)
        argv = [python_of(venv), "-m", "installer"]
        argv += ["--compile-bytecode", "0"] if compile_ else ["--no-compile-bytecode"]
        return Command([*argv, *wheels], env)
