"""Where the harness runs from, and the process environment every timed command gets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the repo venv: stalwart, pip, uv and installer live here


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that configures pip, uv, Python or stalwart.

    A machine-wide ``PIP_FIND_LINKS`` or ``PYTHONDONTWRITEBYTECODE`` would change what a tool
    does, not only how fast, and ``SOURCE_DATE_EPOCH`` makes py_compile write hash-based .pyc;
    ``PIP_CERT`` stays, it only says whom to trust for downloads.
    """
    env = dict(os.environ)
    for key in list(env):
        if (
            key.startswith(("PIP_", "UV_", "PYTHON", "STALWART_"))
            or key in {"VIRTUAL_ENV", "CONDA_PREFIX", "__PYVENV_LAUNCHER__", "SOURCE_DATE_EPOCH"}
        ) and key != "PIP_CERT":
            del env[key]
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env
