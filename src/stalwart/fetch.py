"""Getting every chosen wheel onto this machine, verified, before anything is installed.

Downloads run in parallel threads (the client is thread-safe and every write goes through
:mod:`stalwart.fs` into the content-addressed cache); wheels already fetched while reading
metadata are not fetched again. Every file is checked against the index's hashes by the client,
and against the user's ``--hash`` values here (any one may match, as in pip).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from stalwart.errors import HashMismatchError, HashRequiredError
from stalwart.install import WheelSource, file_url
from stalwart.resolve.model import Base, FromIndex, FromURL, LocalFile
from stalwart.resolve.resolver import Downloaded, MetadataSource, Resolution

__all__ = ["fetch"]

_WORKERS = 8


def fetch(
    resolution: Resolution,
    metadata: MetadataSource,
    *,
    user_hashes: Mapping[str, Mapping[str, tuple[str, ...]]],
    require_hashes: bool,
    tick: Callable[[int, int], None] | None = None,
) -> list[WheelSource]:
    """Local wheel files for every chosen candidate, in the resolution's order.

    *user_hashes*: per project, the ``--hash`` digests by algorithm. With *require_hashes*
    every chosen wheel must have some (pip's hash-checking mode): a missing one is refused
    before anything is downloaded, naming each project and the hash its index publishes.
    """
    chosen = resolution.chosen
    if require_hashes:
        missing = [c for c in chosen if not user_hashes.get(c.name)]
        if missing:
            raise HashRequiredError(", ".join(_pin_hint(c) for c in missing))
    pending = [c for c in chosen if _needs_download(c) and c not in resolution.fetched]
    got: dict[Base, Downloaded] = dict(resolution.fetched)
    if pending:
        pool = ThreadPoolExecutor(min(_WORKERS, len(pending)))
        try:
            results = pool.map(metadata.download, pending)
            for done, (cand, result) in enumerate(zip(pending, results, strict=True), 1):
                got[cand] = result
                if tick is not None:
                    tick(done, len(pending))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    sources = []
    for cand in chosen:
        requested = cand.name in resolution.requested
        sha256: str | None
        direct: str | None
        if isinstance(cand, LocalFile):
            path, sha256, direct = cand.path, None, _file_url(cand.path)
        else:
            download = got[cand]
            path, sha256 = download.path, download.sha256
            direct = _strip_credentials(cand.url) if isinstance(cand, FromURL) else None
        allowed = user_hashes.get(cand.name)
        if allowed:
            _check_user_hashes(path, cand, allowed, sha256)
        sources.append(WheelSource(path, requested, direct, sha256))
    return sources


def _needs_download(cand: Base) -> bool:
    return isinstance(cand, FromIndex | FromURL)


def _pin_hint(cand: Base) -> str:
    digest = cand.file.hashes.get("sha256") if isinstance(cand, FromIndex) else None
    hint = f" --hash=sha256:{digest}" if digest else ""
    return f"{cand.name}=={cand.version}{hint}"


def _check_user_hashes(
    path: str, cand: Base, allowed: Mapping[str, tuple[str, ...]], sha256: str | None
) -> None:
    """Any one of the user's digests must match (pip: "one of these hashes")."""
    actual: dict[str, str] = {}
    for algorithm, digests in allowed.items():
        known = sha256 if algorithm == "sha256" else None
        value = known if known is not None else _digest(path, algorithm)
        actual[algorithm] = value
        if value.lower() in {d.lower() for d in digests}:
            return
    algorithm = next(iter(allowed))
    raise HashMismatchError(
        os.path.basename(path), algorithm, " or ".join(allowed[algorithm]), actual[algorithm]
    )


def _digest(path: str, algorithm: str) -> str:
    from stalwart.paths import open_regular

    h = hashlib.new(algorithm)
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_url(path: str) -> str:
    return file_url(os.path.abspath(path))


def _strip_credentials(url: str) -> str:
    """PEP 610: credentials are not recorded in ``direct_url.json``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=host))
