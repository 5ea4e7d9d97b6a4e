"""What the progress bar is told: every phase counts real work and reaches its total.

The CLI draws whatever ``install``'s progress callback receives (on a terminal only); these
tests hold the callback to account, in process, against a real environment and cache.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from indexserver import IndexServer
from stalwart.install import InstallOptions, install
from stalwart.net.settings import NetworkSettings
from stalwart.resolve.request import gather
from stalwart.satisfy import satisfy
from venvs import Venv, copy_venv
from wheelfactory import build_wheel

Seen = dict[str, list[tuple[int, int]]]


def _wheels(directory: Path) -> list[Path]:
    modules = {f"pkg{i}/mod{j}.py": f"X = {j}\n".encode() for i in range(3) for j in range(40)}
    return [
        build_wheel(directory, "alpha", "1.0", {k: v for k, v in modules.items() if "pkg0" in k}),
        build_wheel(
            directory, "beta", "2.0", {k: v for k, v in modules.items() if "pkg0" not in k}
        ),
    ]


def _record(into: Seen) -> Callable[[str, int, int], None]:
    def progress(phase: str, done: int, total: int) -> None:
        into[phase].append((done, total))

    return progress


def test_every_phase_counts_up_to_its_total(pristine_venv: Venv, tmp_path: Path) -> None:
    venv = copy_venv(pristine_venv, tmp_path / "venv")
    wheels = _wheels(tmp_path / "w")
    seen: Seen = defaultdict(list)
    options = InstallOptions(lock_wait=10, cache_dir=str(tmp_path / "cache"))
    install(wheels, venv.env, options, progress=_record(seen))

    assert set(seen) == {
        "unpacking alpha",
        "unpacking beta",
        "compiling",
        "staging",
        "committing",
    }, sorted(seen)
    for phase, counts in seen.items():
        if phase == "committing":
            assert counts == [(0, 0)]  # one step: the bar pulses, no count is made up
            continue
        totals = {total for _, total in counts}
        assert len(totals) == 1 and 0 not in totals, (phase, totals)  # known, and fixed
        done = [d for d, _ in counts]
        assert done == sorted(done) and done[-1] == counts[-1][1], (phase, counts)
    assert seen["compiling"][-1] == (80 + 40, 80 + 40)  # every module, none twice
    staged = seen["staging"][-1][1]
    assert staged > 120  # modules and the .dist-info files, and the bytecode with them


def test_a_warm_cache_skips_unpacking_and_compiling(pristine_venv: Venv, tmp_path: Path) -> None:
    wheels = _wheels(tmp_path / "w")
    options = InstallOptions(lock_wait=10, cache_dir=str(tmp_path / "cache"))
    install(wheels, copy_venv(pristine_venv, tmp_path / "first").env, options)
    seen: Seen = defaultdict(list)
    install(
        wheels, copy_venv(pristine_venv, tmp_path / "second").env, options, progress=_record(seen)
    )
    assert set(seen) == {"staging", "committing"}


def test_an_index_install_shows_resolving_then_downloads_counted(
    pristine_venv: Venv, tmp_path: Path, index_server: Callable[..., IndexServer]
) -> None:
    server = index_server(_wheels(tmp_path / "w"))
    venv = copy_venv(pristine_venv, tmp_path / "venv")
    seen: Seen = defaultdict(list)
    settings = NetworkSettings.from_environ({}, index_url=server.index_url)
    options = InstallOptions(lock_wait=10, cache_dir=str(tmp_path / "cache"))
    satisfy(gather(["alpha", "beta"]), venv.env, options, settings, progress=_record(seen))
    phases = list(seen)
    assert phases[:2] == ["resolving", "downloading"], phases
    assert seen["resolving"] == [(0, 0)]  # nobody knows how many projects there will be
    assert seen["downloading"] == [(1, 2), (2, 2)]
