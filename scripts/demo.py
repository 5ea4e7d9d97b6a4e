"""The README's main job: install the bundled sample wheel into a fresh environment and run it.

Run with the project's venv: `.venv/bin/python scripts/demo.py`. Exits non-zero on any failure.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile  # noqa: TID251 - the demo's scratch directory
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEEL = ROOT / "examples" / "stalwart_sample-1.0.0-py3-none-any.whl"
STALWART = Path(sys.executable).parent / "stalwart"


def run(*argv: str | Path) -> str:
    print("$", " ".join(str(a) for a in argv), flush=True)
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"demo failed: exit {proc.returncode}")
    return proc.stdout


def main() -> int:
    run(STALWART, "--version")
    run(STALWART, "self-check")
    with tempfile.TemporaryDirectory(prefix="stalwart-demo-") as tmp:
        venv = Path(tmp) / "env"
        base = Path(sys.base_prefix) / "bin" / "python3"
        run(base if base.exists() else sys.executable, "-m", "venv", "--without-pip", venv)
        run(STALWART, "install", "-v", "--python", venv / "bin" / "python", WHEEL)
        out = run(venv / "bin" / "stalwart-sample")
        if "installed and running" not in out:
            raise SystemExit("demo failed: the sample's console script printed the wrong text")
        run(STALWART, "verify", "--python", venv / "bin" / "python")
        run(STALWART, "uninstall", "--python", venv / "bin" / "python", "stalwart-sample")
    print("demo ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
