"""The resilient filesystem layer: the only code in stalwart that mutates the disk.

Every function makes the plain OS call first; only when it fails does the retry loop look at
the error. Lock episodes (Windows sharing violations, EBUSY, ...) are retried with jittered
exponential back-off up to a per-operation deadline (default 10 s, ``STALWART_LOCK_TIMEOUT``,
``--lock-timeout``, or :func:`configure`); real errors are raised at once and unchanged; a
budget that runs out raises :class:`~stalwart.errors.LockTimeoutError`.

Arguments are ``str`` or ``os.PathLike`` and come in the order ``os``/``shutil`` use.
"""

from stalwart.errors import LockTimeoutError

from ._classify import Op, Target, Transience, classify
from ._ops import (
    TEMP_SUFFIX,
    WINDOWS,
    FileWriter,
    StrPath,
    chmod,
    clone,
    copy,
    empty_trash,
    link,
    makedirs,
    move_to_trash,
    open_for_write,
    rename,
    replace,
    rmdir,
    rmdir_if_empty,
    rmtree,
    set_times,
    sync_directory,
    temp_name,
    unlink,
    write_atomic,
)
from ._policy import DEFAULT_TIMEOUT, ENV_LOCK_TIMEOUT, RetryPolicy, policy_from_env
from ._retry import (
    Clock,
    LockEpisode,
    OpStats,
    RetryEvent,
    Runtime,
    Sleeper,
    Stats,
    configure,
    retry,
    runtime,
    settings,
)

__all__ = [
    # operations
    "replace",
    "rename",
    "write_atomic",
    "open_for_write",
    "FileWriter",
    "copy",
    "clone",
    "link",
    "unlink",
    "rmdir",
    "rmdir_if_empty",
    "rmtree",
    "makedirs",
    "chmod",
    "set_times",
    "move_to_trash",
    "empty_trash",
    "sync_directory",
    "temp_name",
    # policy and runtime
    "RetryPolicy",
    "DEFAULT_TIMEOUT",
    "ENV_LOCK_TIMEOUT",
    "policy_from_env",
    "configure",
    "settings",
    "runtime",
    "retry",
    "Runtime",
    "Clock",
    "Sleeper",
    "Stats",
    "OpStats",
    "LockEpisode",
    "RetryEvent",
    # classification
    "Op",
    "Target",
    "Transience",
    "classify",
    "LockTimeoutError",
    # constants
    "StrPath",
    "WINDOWS",
    "TEMP_SUFFIX",
]
