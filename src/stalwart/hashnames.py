"""Hash algorithm names: which ones stalwart can check, which ones are strong enough to trust.

One table for the wheel, RECORD, index, lock-file and network readers, written out rather than
derived from ``hashlib`` so that importing it costs nothing (``hashlib`` loads OpenSSL).
"""

from __future__ import annotations

from typing import Final

__all__ = ["CHECKABLE", "DIGEST_SIZES", "STRONG", "hex_length"]

DIGEST_SIZES: Final = {
    "md5": 16,
    "sha1": 20,
    "sha224": 28,
    "sha256": 32,
    "sha384": 48,
    "sha512": 64,
    "sha3_224": 28,
    "sha3_256": 32,
    "sha3_384": 48,
    "sha3_512": 64,
    "blake2b": 64,
    "blake2s": 32,
}
"""Digest sizes in bytes of the fixed-length algorithms of ``hashlib.algorithms_guaranteed``
(``shake_*`` need a length, so nothing names them as a hash). A table rather than
``hashlib.new(name).digest_size``: that costs ~0.4 us a call and fails for md5 on FIPS builds."""

CHECKABLE: Final = frozenset(DIGEST_SIZES)
"""Names whose digest stalwart can compute, so a value under them says whether bytes changed."""

STRONG: Final = ("sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b")
"""sha256 or stronger: what the wheel spec requires of RECORD, and all a download is trusted on
(md5 and sha1 can be forged)."""


def hex_length(name: str) -> int:
    """Length of a hex digest under *name* (a key of :data:`DIGEST_SIZES`)."""
    return 2 * DIGEST_SIZES[name]
