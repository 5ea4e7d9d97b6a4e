"""Every command that changes an environment starts the same way: lock it, then recover.

Holding the environment lock, a command first finishes or undoes whatever an interrupted
command left behind (:func:`stalwart.transaction.recover`), so it always starts from a
consistent environment. Install, uninstall and ``stalwart recover`` all go through
:func:`locked_environment`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from stalwart import fs
from stalwart.environment import Environment
from stalwart.envlock import DEFAULT_LOCK_WAIT, EnvironmentLock
from stalwart.errors import TargetEnvironmentError
from stalwart.transaction import RecoveryReport, recover

__all__ = ["locked_environment", "DEFAULT_LOCK_WAIT"]


@contextmanager
def locked_environment(
    env: Environment,
    *,
    wait: float = DEFAULT_LOCK_WAIT,
    notify: Callable[[str], None] | None = None,
    create: bool = False,
) -> Iterator[list[RecoveryReport]]:
    """Hold *env*'s lock for the block, after recovering interrupted transactions.

    Yields what recovery did. *create* makes the directories holding ``.dist-info`` first (an
    install into a fresh ``--target``); without it a missing site-packages is left alone.
    *wait* is how long to wait for another stalwart process (``--lock-wait``).
    """
    for lib_dir in env.lib_dirs:
        if os.path.lexists(lib_dir) and not os.path.isdir(lib_dir):
            raise TargetEnvironmentError(f"{lib_dir} exists and is not a directory")
        if create:
            fs.makedirs(lib_dir)
    with EnvironmentLock(env.lock_path, timeout=wait, notify=notify):
        yield recover(env.state_dir, env.roots)
