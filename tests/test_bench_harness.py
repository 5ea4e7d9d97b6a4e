"""Smoke test of the install-speed harness (``python -m benchmarks.speed``), offline.

One quick round on three wheels made by ``wheelfactory`` (no network, no pinned corpus), tmpfs
and disk directories both under ``tmp_path``: every scenario and every tool must appear in the
table, in the raw times and in the markdown section. It checks that the harness works end to end,
not what it measures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from platforms import linux_only
from realwheels import REPO, clean_env
from wheelfactory import build_wheel

pytestmark = [pytest.mark.slow, *linux_only("GNU cp -al and the Linux venv layout")]

INSTALLERS = ["stalwart", "uv", "pip", "installer"]
EXPECTED = {
    "cold-bytecode": INSTALLERS,
    "cold-no-bytecode": INSTALLERS,
    "warm-bytecode": ["stalwart", "uv"],
    "warm-no-bytecode": ["stalwart", "uv"],
    "many": ["stalwart", "uv", "pip"],
    "floors": ["cp -al", "cp -r"],  # + unzip, or Python's zipfile where unzip is missing
}
TITLES = [
    "cold cache, bytecode",
    "cold cache, no bytecode",
    "warm cache, bytecode",
    "warm cache, no bytecode",
    "1 tiny wheel into 20 dists",
    "floors (no bytecode)",
]


def corpus(directory: Path) -> Path:
    build_wheel(
        directory,
        "alpha",
        "1.0",
        {"alpha/__init__.py": b"X = 1\n", "alpha/cli.py": b"def main():\n    return 0\n"},
        entry_points="[console_scripts]\nalpha = alpha.cli:main\n",
    )
    build_wheel(
        directory,
        "beta",
        "2.0",
        {"beta/__init__.py": b"", "beta/sub/__init__.py": b"Y = 2\n", "beta/data.txt": b"x\n"},
    )
    build_wheel(directory, "gamma", "0.1", {"gamma.py": b"Z = 3\n"})
    return directory


def test_quick_run_reports_every_tool_and_scenario(tmp_path: Path) -> None:
    wheels = corpus(tmp_path / "wheels")
    out = tmp_path / "docs" / "benchmarks.md"
    raw = tmp_path / "raw.json"
    argv = [sys.executable, "-m", "benchmarks.speed", "--quick", "--rounds", "1"]
    argv += ["--wheels", str(wheels), "--many", "20", "--dir", str(tmp_path / "shm")]
    argv += ["--disk", str(tmp_path / "disk"), "--write", str(out), "--json", str(raw)]
    proc = subprocess.run(
        argv, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    data = json.loads(raw.read_text())
    places = [s["label"].split(": ", 1)[1] for s in data["series"]]
    assert places == [str(tmp_path / "shm"), str(tmp_path / "disk")]
    for series in data["series"]:
        times = series["times"]
        for scenario, tools in EXPECTED.items():
            for tool in tools:
                assert len(times[f"{scenario}/{tool}"]) == 1, (scenario, tool)
        floors = [k for k in times if k.startswith("floors/")]
        assert len(floors) == 3, floors  # the extraction floor too
        assert all(t[0] > 0 for t in times.values())
        census = series["census"]
        assert census["cold-bytecode/stalwart"]["dists"] == 3
        assert census["cold-bytecode/stalwart"]["pyc"] > 0
        assert census["cold-no-bytecode/uv"]["pyc"] == 0
        assert census["many/pip"]["dists"] == 21

    for title in TITLES:
        assert title in proc.stdout
    for tool in [*INSTALLERS, "cp -al", "cp -r"]:
        assert f"  {tool} " in proc.stdout
    assert proc.stdout.count("n/a: no cache of unpacked wheels") == 2 * 4  # 2 warm x 2 tools x 2

    text = out.read_text()
    assert "<!-- speed: " in text and "corpus: wheels from" in text
    assert text.count("| cold cache, bytecode | stalwart |") == 2  # tmpfs and disk tables
    if "no plot: matplotlib is missing" in proc.stdout:
        assert "![plot of this run]" not in text
    else:
        assert out.with_suffix(".png").stat().st_size > 0
        assert "![plot of this run](benchmarks.png)" in text
    assert not (tmp_path / "shm").exists() and not (tmp_path / "disk").exists()
