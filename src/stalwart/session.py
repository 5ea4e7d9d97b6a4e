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

__all__ = ["locked_environment", "check_state_dir", "DEFAULT_LOCK_WAIT"]


@contextmanager
def locked_environment(
    env: Environment,
    *,
    wait: float = DEFAULT_LOCK_WAIT,
    notify: Callable[[str], None] | None = None,
    create: bool = False,
    trust_journal: bool = False,
) -> Iterator[list[RecoveryReport]]:
    """Hold *env*'s lock for the block, after recovering interrupted transactions.

    Yields what recovery did. *create* makes the directories holding ``.dist-info`` first (an
    install into a fresh ``--target``); without it a missing site-packages is left alone.
    *wait* is how long to wait for another stalwart process (``--lock-wait``).
    *trust_journal* replays journals without checking their signature (``stalwart recover
    --trust-journal``, for a journal the user inspected; paths are still checked).
    """
    for lib_dir in env.lib_dirs:
        if os.path.lexists(lib_dir) and not os.path.isdir(lib_dir):
            raise TargetEnvironmentError(f"{lib_dir} exists and is not a directory")
        if create:
            fs.makedirs(lib_dir)
    with EnvironmentLock(env.lock_path, timeout=wait, notify=notify):
        check_state_dir(env)
        yield recover(env.state_dir, env.roots, trust=trust_journal)


def check_state_dir(env: Environment) -> None:
    """The state directory must be a real directory of the environment, or absent.

    stalwart stages, backs up and deletes below it: were it a symlink, that would happen
    wherever the link leads (tidying once deleted a file outside the environment).
    """
    state = env.state_dir
    if not os.path.lexists(state):
        return
    if os.path.islink(state) or not os.path.isdir(state):
        kind = "a symlink" if os.path.islink(state) else "not a directory"
        raise TargetEnvironmentError(
            f"{state} is {kind}; stalwart keeps its transactions there and will not follow "
            "it. Remove it (after checking what it is) and run the command again"
        )
