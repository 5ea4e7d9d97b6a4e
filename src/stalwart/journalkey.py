"""The key that proves a transaction journal was written by stalwart, for this user.

Recovery replays a journal with the user's rights: it renames files. Journals therefore carry
an HMAC-SHA256 under a per-user secret kept outside every environment (in the user's state
directory, :func:`stalwart.cache.state_home`), so nothing a wheel installs (a file that lands in
``.stalwart/`` through some path alias, say) can ever be replayed. The key is made on first use,
readable by its owner only, and written through :mod:`stalwart.fs`.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from stalwart import fs
from stalwart.cache import state_home
from stalwart.paths import read_regular

__all__ = ["journal_key", "key_path", "sign", "signature_matches"]

_KEY_BYTES = 32


def key_path() -> str:
    return os.path.join(state_home(), "journal.key")


def journal_key(*, create: bool) -> bytes | None:
    """This user's journal key; made (when *create*) if there is none yet, else None."""
    path = key_path()
    try:
        key = read_regular(path, limit=4096)
    except FileNotFoundError:
        key = b""
    except (OSError, ValueError):
        return None  # unreadable: no journal can be trusted, and none is overwritten blindly
    if len(key) >= _KEY_BYTES:
        return key
    if not create:
        return None
    # Two first commands at once: the first rename wins, the other reads the winner's key
    # (replacing it would orphan journals the first one signs).
    fs.makedirs(os.path.dirname(path), mode=0o700)
    tmp = fs.temp_name(path)
    with fs.open_for_write(tmp, exclusive=True, mode=0o600) as writer:
        writer.write(os.urandom(_KEY_BYTES))
        writer.sync()
    try:
        fs.rename(tmp, path)
    except FileExistsError:
        if journal_key(create=False) is None:  # a damaged key verifies nothing: replace it
            fs.replace(tmp, path)
        else:
            fs.unlink(tmp, missing_ok=True)
    return journal_key(create=False)


def sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def signature_matches(key: bytes | None, payload: bytes, signature: object) -> bool:
    if key is None or not isinstance(signature, str):
        return False
    return hmac.compare_digest(sign(key, payload), signature)
