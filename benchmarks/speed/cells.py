"""What is timed: scenarios x tools, each a *cell* that prepares one run untimed.

A cell's ``prepare`` makes everything the run needs (a fresh venv, an empty cache for a cold
run) and returns the command to time, a check to run afterwards (untimed: did the tool install
what it should, with ``.pyc`` files exactly when compiling?) and what to delete then. Warm cells
are run once untimed before the rounds (``runner.set_up``): the cache they share is filled by one
earlier install into the very venv path the timed runs use, as on a user's second install.

Scenarios:

* ``cold-bytecode``, ``cold-no-bytecode``, ``warm-bytecode``, ``warm-no-bytecode``: the corpus
  into a fresh venv. Cold: an empty ``STALWART_CACHE_DIR`` / ``UV_CACHE_DIR`` each run. Warm:
  the shared cache. pip and installer keep no cache of unpacked wheels: cold rows only.
* ``many``: one tiny wheel into a fresh copy of a venv holding N tiny distributions (warm
  caches, no bytecode): the fixed cost, and how it grows with the environment.
* ``floors``: what the same bytes cost without an installer: ``cp -al`` (hardlink floor) and
  ``cp -r`` (copy floor) of a tree the corpus was installed into, without ``.pyc``; ``unzip``
  of every wheel into one directory (extraction floor), or Python's zipfile without unzip.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import Corpus
from .env import clean_env
from .tools import Command, Tools
from .workspace import Workspace, census

INSTALLERS = ("stalwart", "uv", "pip", "installer")
WARM = ("stalwart", "uv")
NO_CACHE = ("pip", "installer")  # no cache of unpacked wheels: "n/a" in warm rows


@dataclass(frozen=True)
class Scenario:
    key: str  # as --only spells it
    title: str
    warm: bool = False
    bytecode: bool = False
    tools: tuple[str, ...] = INSTALLERS  # timed
    na: tuple[str, ...] = ()  # shown as "n/a": nothing to measure


def scenarios(many: int, extraction: str) -> list[Scenario]:
    return [
        Scenario("cold-bytecode", "cold cache, bytecode", bytecode=True),
        Scenario("cold-no-bytecode", "cold cache, no bytecode"),
        Scenario("warm-bytecode", "warm cache, bytecode", True, True, WARM, NO_CACHE),
        Scenario("warm-no-bytecode", "warm cache, no bytecode", True, False, WARM, NO_CACHE),
        Scenario(
            "many",
            f"1 tiny wheel into {many} dists (warm cache, no bytecode)",
            warm=True,
            tools=("stalwart", "uv", "pip"),
        ),
        Scenario("floors", "floors (no bytecode)", tools=("cp -al", "cp -r", extraction)),
    ]


@dataclass
class Prepared:
    command: Command
    check: Callable[[], tuple[int, int, int]]  # raises SystemExit on a wrong result
    cleanup: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    tool: str

    @property
    def key(self) -> str:
        return f"{self.scenario.key}/{self.tool}"


@dataclass
class Setup:
    """What cells share within one workspace, made once before the rounds (untimed)."""

    tools: Tools
    corpus: Corpus
    many_template: Path | None = None  # a venv holding the N tiny distributions
    many_wheel: Path | None = None  # the one more tiny wheel
    many_count: int = 0
    floor_tree: Path | None = None  # site-packages the corpus was installed into


def cells(selected: list[Scenario]) -> list[Cell]:
    return [Cell(s, t) for s in selected for t in s.tools]


def prepare(cell: Cell, ws: Workspace, setup: Setup) -> Prepared:
    if cell.scenario.key == "floors":
        return _floor(cell, ws, setup)
    if cell.scenario.key == "many":
        return _many(cell, ws, setup)
    return _install(cell, ws, setup)


def _fail(cell: Cell, message: str) -> SystemExit:
    return SystemExit(f"{cell.key}: {message}")


def _install(cell: Cell, ws: Workspace, setup: Setup) -> Prepared:
    sc = cell.scenario
    target = ws.fresh_venv(cell.key.replace("/", "-"))
    wheels = [str(w) for w in setup.corpus.wheels]
    cleanup = [target]
    command = _command(cell, ws, setup, target, wheels, cleanup)

    def check() -> tuple[int, int, int]:
        got = census(target)
        if got[0] != len(wheels):
            raise _fail(cell, f"{got[0]} distributions installed, not {len(wheels)}")
        if sc.bytecode != (got[2] > 0):
            raise _fail(cell, f"{got[2]} .pyc files with bytecode={sc.bytecode}")
        return got

    return Prepared(command, check, cleanup)


def _command(
    cell: Cell, ws: Workspace, setup: Setup, target: Path, wheels: list[str], cleanup: list[Path]
) -> Command:
    sc, tools = cell.scenario, setup.tools
    if cell.tool == "stalwart":
        cache = ws.stalwart_warm if sc.warm else ws.scratch("stalwart-cold-cache")
        if not sc.warm:
            cleanup.append(cache)
        return tools.stalwart(target, wheels, compile_=sc.bytecode, cache=cache, state=ws.state)
    if cell.tool == "uv":
        cache = ws.uv_warm if sc.warm else ws.scratch("uv-cold-cache")
        if not sc.warm:
            cleanup.append(cache)
        return tools.uv_install(target, wheels, compile_=sc.bytecode, cache=cache)
    if cell.tool == "pip":
        return tools.pip_install(target, wheels, compile_=sc.bytecode)
    if cell.tool == "installer":
        path = ws.installer_path
        return tools.installer(target, wheels, compile_=sc.bytecode, installer_path=path)
    raise AssertionError(cell.tool)


def _many(cell: Cell, ws: Workspace, setup: Setup) -> Prepared:
    assert setup.many_template is not None and setup.many_wheel is not None
    target = ws.copy_venv(setup.many_template, cell.key.replace("/", "-"))
    cleanup = [target]
    command = _command(cell, ws, setup, target, [str(setup.many_wheel)], cleanup)
    expected = setup.many_count + 1

    def check() -> tuple[int, int, int]:
        got = census(target)
        if got[0] != expected:
            raise _fail(cell, f"{got[0]} distributions in the venv, not {expected}")
        if got[2]:
            raise _fail(cell, f"{got[2]} .pyc files without bytecode")
        return got

    return Prepared(command, check, cleanup)


UNZIP_ALL = 'for w; do unzip -q -o "$w" -d "$0" || exit 1; done'
ZIPFILE_ALL = """import sys, zipfile
for w in sys.argv[2:]:
    zipfile.ZipFile(w).extractall(sys.argv[1])
"""


def _floor(cell: Cell, ws: Workspace, setup: Setup) -> Prepared:
    assert setup.floor_tree is not None
    dest = ws.scratch("floor")
    wheels = [str(w) for w in setup.corpus.wheels]
    if cell.tool == "cp -al":
        argv = ["cp", "-al", str(setup.floor_tree), str(dest)]
    elif cell.tool == "cp -r":
        argv = ["cp", "-r", str(setup.floor_tree), str(dest)]
    elif cell.tool == "unzip":
        argv = ["sh", "-c", UNZIP_ALL, str(dest), *wheels]
    else:  # Python's zipfile: the fallback where unzip is missing, labelled as such
        argv = [sys.executable, "-c", ZIPFILE_ALL, str(dest), *wheels]
    expected = census(setup.floor_tree)[1] if cell.tool.startswith("cp") else setup.corpus.files

    def check() -> tuple[int, int, int]:
        got = census(dest)
        if got[1] != expected:
            raise _fail(cell, f"{got[1]} files, not {expected}")
        return got

    return Prepared(Command(argv, clean_env()), check, [dest])


def extraction_tool() -> str:
    """``unzip`` where installed (``.ci/run`` installs it), else Python's zipfile, labelled."""
    return "unzip" if shutil.which("unzip") else "zipfile (python)"
