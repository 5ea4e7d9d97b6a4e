"""Randomized lock episodes against the real ``stalwart install`` (the long run).

Run with the project's venv: ``.venv/bin/python scripts/lock_episodes.py --episodes 1000``;
``--seed S`` reproduces a run, ``--seed S --only N`` one episode of it. The code lives in
``tests/lockepisodes.py``, which ``tests/test_lock_episodes.py`` runs briefly in the suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import lockepisodes

if __name__ == "__main__":
    sys.exit(lockepisodes.main())
