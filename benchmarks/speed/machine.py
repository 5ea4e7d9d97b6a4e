"""What a reader needs to judge the figures: the machine, how busy it was, the tool versions."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .env import REPO
from .tools import Tools


def load() -> str:
    """The 1, 5 and 15 minute load averages: above the core count, the figures are noise."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def filesystem(path: Path) -> str:
    """The type of the filesystem holding *path* (tmpfs, ext4, ...), from /proc/mounts."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount = fields[1].replace("\\040", " ")
                inside = str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best):
                    best, kind = mount, fields[2]
    except OSError:
        pass
    return kind


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return "missing"
    lines = (proc.stdout or proc.stderr).splitlines()
    return lines[0].strip() if lines else "unknown"


def _git_commit(directory: Path) -> str:
    head = _first_line(["git", "-C", str(directory), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(directory), "status", "--porcelain", "-uno"])
    if not head or " " in head:
        return "not a git checkout"
    return head + (" with uncommitted changes" if dirty not in {"", "unknown"} else "")


def versions(tools: Tools, extraction: str) -> dict[str, str]:
    """One line per tool, as its own command line reports it."""
    if tools.stalwart_src is None:
        stalwart = f"{metadata.version('stalwart')} (git {_git_commit(REPO)})"
    else:
        stalwart = f"source {tools.stalwart_src} (git {_git_commit(Path(tools.stalwart_src))})"
    if tools.stalwart_args:
        stalwart += f", args {' '.join(tools.stalwart_args)}"
    uv = _first_line([tools.uv, "--version"]).removeprefix("uv ")
    if tools.uv_args:
        uv += f", args {' '.join(tools.uv_args)}"
    found = {
        "stalwart": stalwart,
        "uv": uv,
        "pip": " ".join(_first_line([*tools.pip, "--version"]).split()[1:2]),
        "pypa/installer": metadata.version("installer"),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "cp": _first_line(["cp", "--version"]).removeprefix("cp "),
    }
    if extraction == "unzip":
        found["unzip"] = " ".join(_first_line(["unzip", "-v"]).split()[:2])
    else:
        found["extraction floor"] = "Python's zipfile (no unzip on this machine)"
    return found


def facts(disk_paths: list[Path]) -> dict[str, str]:
    now = datetime.datetime.now(datetime.UTC)
    return {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "day": now.strftime("%Y-%m-%d"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} logical CPUs",
        "kernel": f"{platform.system()} {platform.release()}",
        "load before": load(),
        "filesystems": ", ".join(f"{p} ({filesystem(p)})" for p in disk_paths),
    }
