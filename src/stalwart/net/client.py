"""The network client: index pages (cached), small files, and wheel downloads into the cache.

One :class:`Client` per command, used as a context manager and shared by the threads that
download in parallel. It owns one ``httpx.Client`` (connection pooling), created on the first
request that needs the network: a run served from the cache or from local files never imports
httpx, truststore or ssl.

Every answer is read under the same rules:

- TLS through the operating system's trust store (``truststore``), plus ``cert``; plain HTTP
  only to loopback addresses and trusted hosts (the secure origins pip allows);
- redirects followed by the client itself (at most :data:`MAX_REDIRECTS`), so credentials are
  chosen afresh for each origin and never follow a redirect to another host;
- transient failures retried (:mod:`stalwart.net._retry`) with jittered exponential back-off,
  ``Retry-After`` honoured, within ``retries`` per request and ``retry_budget`` per client;
- bodies read under a size limit, also after decompression;
- every file written through :mod:`stalwart.fs`, in a temporary file first, then renamed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

from stalwart import __version__, fs
from stalwart.cache import CacheLayout
from stalwart.errors import (
    HashMismatchError,
    HashRequiredError,
    NetworkError,
    OfflineError,
    UsageError,
)
from stalwart.hashnames import CHECKABLE, STRONG
from stalwart.index.simple import ACCEPT, JSON_V1, redact_url
from stalwart.paths import NotRegularFileError, open_regular, read_regular

from ._retry import AttemptFailed, RetryBudget, backoff, parse_retry_after
from .auth import Authenticator, Credentials, KeyringLookup, keyring_lookup, split_userinfo
from .settings import NetworkSettings, is_loopback

if TYPE_CHECKING:
    import httpx

    from stalwart.fs import Clock, Sleeper

    from ._http import Reply, Session
    from ._httpcache import CachedPage, PageCache

__all__ = [
    "Client",
    "Page",
    "Downloaded",
    "MAX_PAGE_BYTES",
    "DEFAULT_FETCH_LIMIT",
    "MAX_DOWNLOAD_BYTES",
    "MAX_REDIRECTS",
    "STRONG_HASHES",
]

log = logging.getLogger("stalwart.net")
T = TypeVar("T")

MAX_PAGE_BYTES = 128 * 1024 * 1024
"""Largest index page read (after decompression): PyPI's biggest JSON pages are a few tens of MB."""
DEFAULT_FETCH_LIMIT = 16 * 1024 * 1024
"""Default limit of :meth:`Client.fetch_bytes`: a PEP 658 metadata file is a few kB."""
MAX_DOWNLOAD_BYTES = 16 * 1024 * 1024 * 1024
"""Hard cap on one download when the index gives no size (the largest wheels are ~4 GB)."""
MAX_REDIRECTS = 10

STRONG_HASHES = frozenset(STRONG)
"""Hashes that satisfy ``require_hash`` (md5 and sha1 can be forged; pip refuses them too)."""

_REDIRECTS = frozenset((301, 302, 303, 307, 308))


@dataclass(frozen=True, slots=True)
class Page:
    """An index page (or find-links page): the answer :func:`parse_project_page` reads.

    ``url`` is where the redirects ended, without credentials (they are kept per origin by
    the client, not in URLs); links on the page resolve against it.
    """

    url: str
    content_type: str
    body: bytes = field(repr=False)
    from_cache: bool = False

    def __repr__(self) -> str:
        return (
            f"Page({redact_url(self.url)!r}, {self.content_type!r}, {len(self.body)} bytes, "
            f"from_cache={self.from_cache})"
        )


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A verified file in the wheel cache: ``path`` is ``CacheLayout.wheel(sha256, filename)``."""

    path: str
    sha256: str
    from_cache: bool


class Client:
    """Fetches index pages and files; see the module docstring for the rules.

    *transport* replaces the network (tests); *clock* (monotonic) times retries, *now* (wall
    clock) dates cache entries and ``Retry-After``, *sleep* waits between attempts, *seed*
    fixes the jitter; *keyring* replaces the ``keyring`` package lookup (``None``: the package,
    when ``settings.keyring``).
    """

    def __init__(
        self,
        settings: NetworkSettings | None = None,
        cache: CacheLayout | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = time.monotonic,
        now: Clock = time.time,
        sleep: Sleeper = time.sleep,
        keyring: KeyringLookup | None = None,
        seed: int | None = None,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.settings = settings if settings is not None else NetworkSettings()
        self.cache = cache if cache is not None else CacheLayout()
        self._transport = transport
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self._seed = seed
        self._max_download = max_download_bytes
        lookup = keyring if keyring is not None else keyring_lookup
        self._auth = Authenticator(
            (*self.settings.index_urls, *self.settings.find_links),
            netrc=self.settings.netrc,
            keyring=lookup if (keyring is not None or self.settings.keyring) else None,
        )
        self._budget = RetryBudget(self.settings.retry_budget)
        self._lock = threading.Lock()
        self._session: Session | None = None
        self._pages: PageCache | None = None
        self._random: Callable[[], float] | None = None
        self._inflight: dict[tuple[str, str], threading.Lock] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"Client(index_urls={[redact_url(u) for u in self.settings.index_urls]!r})"

    # -- lifetime ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections; the client cannot be used afterwards."""
        with self._lock:
            session, self._session, self._closed = self._session, None, True
        if session is not None:
            session.close()

    # -- index pages ---------------------------------------------------------------------------

    def get_page(self, url: str) -> Page:
        """The page at *url* (``Accept`` asks for PEP 691 JSON first), from the HTTP cache when
        it is fresh or the server answers 304; a local path or ``file://`` URL is read from disk
        (a directory serves its ``index.html``)."""
        local = _local_path(url)
        if local is not None:
            return self._local_page(url, local)
        bare, _ = split_userinfo(url)
        key = bare.partition("#")[0]
        pages = self._page_cache()
        entry = pages.load(key)
        if entry is not None and (self.settings.offline or entry.fresh(self._now())):
            log.debug("index page %s from the cache", redact_url(key))
            return _page_of(entry)
        if self.settings.offline:
            raise OfflineError(redact_url(url))
        headers = {"Accept": ACCEPT}
        if entry is not None and entry.etag:
            headers["If-None-Match"] = entry.etag
        if entry is not None and entry.last_modified:
            headers["If-Modified-Since"] = entry.last_modified

        def consume(reply: Reply, final: str) -> Page:
            from ._httpcache import CachedPage, cache_policy

            cache_control = reply.header("cache-control")
            policy = cache_policy(cache_control)
            age = _age(reply.header("age"))
            if reply.status == 304:
                if entry is None:
                    raise AttemptFailed(
                        redact_url(final), "HTTP 304 without a cached copy", transient=False
                    )
                refreshed = entry.revalidated(
                    reply.header("etag"),
                    reply.header("last-modified"),
                    cache_control,
                    age,
                    self._now(),
                )
                if not policy.no_store:
                    pages.store(refreshed)
                return _page_of(refreshed)
            body = _read_body(reply, MAX_PAGE_BYTES, "index page")
            content_type = reply.header("content-type") or ""
            if not policy.no_store:
                pages.store(
                    CachedPage(
                        url=key,
                        final_url=final,
                        content_type=content_type,
                        body=body,
                        stored_at=self._now(),
                        etag=reply.header("etag"),
                        last_modified=reply.header("last-modified"),
                        max_age=policy.max_age,
                        age=age,
                        no_cache=policy.no_cache,
                    )
                )
            return Page(final, content_type, body, from_cache=False)

        return self._get(url, headers, consume, accept_304=entry is not None)

    def _local_page(self, url: str, path: str) -> Page:
        page_url = _file_url(path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
            page_url = page_url.rstrip("/") + "/"
        body = self._read_local(url, path, MAX_PAGE_BYTES)
        content_type = JSON_V1 if path.endswith(".json") else "text/html"
        return Page(page_url, content_type, body, from_cache=False)

    # -- small files ---------------------------------------------------------------------------

    def fetch_bytes(
        self,
        url: str,
        *,
        expected: Mapping[str, str] | None = None,
        limit: int = DEFAULT_FETCH_LIMIT,
    ) -> bytes:
        """The body of a small file (a PEP 658 ``.metadata``), checked against *expected*.

        With a sha256 expected, the file is kept in ``CacheLayout.metadata(sha256)`` and read
        from there next time, without a request.
        """
        wanted = _checkable(expected)
        name = _name_of(url)
        sha256 = wanted.get("sha256")
        if sha256 is not None:
            cached = self._cached_metadata(sha256, limit)
            if cached is not None:
                return cached
        local = _local_path(url)
        if local is not None:
            data = self._read_local(url, local, limit)
        elif self.settings.offline:
            raise OfflineError(redact_url(url))
        else:
            data = self._get(url, {}, lambda reply, _final: _read_body(reply, limit, name))
        _verify(name, wanted, _digests(data, wanted))
        if sha256 is not None:
            path = self.cache.metadata(sha256)
            try:
                fs.makedirs(os.path.dirname(path))
                fs.write_atomic(path, data, durable=False)  # re-verified on every read
            except OSError as exc:
                log.warning("could not cache %s: %s", name, exc)
        return data

    def _cached_metadata(self, sha256: str, limit: int) -> bytes | None:
        import hashlib

        try:
            data = read_regular(self.cache.metadata(sha256), limit)
        except (OSError, ValueError):
            return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    # -- downloads -----------------------------------------------------------------------------

    def download(
        self,
        url: str,
        *,
        filename: str,
        hashes: Mapping[str, str],
        size: int | None = None,
        progress: Callable[[int], None] | None = None,
        require_hash: bool = False,
    ) -> Downloaded:
        """Download *url* into the wheel cache, verified against every hash in *hashes*.

        A cached file with the expected sha256 (and *size*, when given) is returned without a
        request. Otherwise the body is streamed into a temporary file beside the cache and
        hashed on the way; a mismatch raises :class:`~stalwart.errors.HashMismatchError` and
        keeps nothing. The file lands in ``CacheLayout.wheel(sha256, filename)`` under its
        *actual* sha256, also when no hash was expected (the caller decides whether that is
        acceptable; *require_hash* makes it an error up front). *progress* is called with the
        bytes received so far (from 0 again when a retry starts the body over).
        """
        _check_filename(filename)
        wanted = _checkable(hashes)
        if require_hash and not (wanted.keys() & STRONG_HASHES):
            raise HashRequiredError(filename)
        sha256 = wanted.get("sha256")
        if sha256 is None:
            return self._download(url, filename, wanted, size, progress)
        found = self._cached_wheel(sha256, filename, size)
        if found is not None:
            return Downloaded(found, sha256, from_cache=True)
        # Threads asking for the same file wait for the first one, then find it in the cache.
        with self._lock:
            gate = self._inflight.setdefault((sha256, filename), threading.Lock())
        with gate:
            found = self._cached_wheel(sha256, filename, size)
            if found is not None:
                return Downloaded(found, sha256, from_cache=True)
            return self._download(url, filename, wanted, size, progress)

    def _cached_wheel(self, sha256: str, filename: str, size: int | None) -> str | None:
        path = self.cache.wheel(sha256, filename)
        try:
            st = os.stat(path)
        except OSError:
            return None
        import stat

        if not stat.S_ISREG(st.st_mode) or (size is not None and st.st_size != size):
            return None
        return path

    def _download(
        self,
        url: str,
        filename: str,
        wanted: Mapping[str, str],
        size: int | None,
        progress: Callable[[int], None] | None,
    ) -> Downloaded:
        local = _local_path(url)
        if local is None and self.settings.offline:
            raise OfflineError(redact_url(url))
        fs.makedirs(self.cache.wheels())
        # Temporary files live beside the store (same file system: the final rename is atomic),
        # a new one per attempt; each is removed if its attempt fails.
        near = os.path.join(self.cache.wheels(), filename)
        limit = self._max_download if size is None else min(size, self._max_download)
        algorithms = frozenset(wanted) | {"sha256"}
        if local is not None:
            try:
                with open_regular(local) as source:
                    chunks = iter(lambda: source.read(1 << 20), b"")
                    temp, digests = _stream_to(near, chunks, algorithms, limit, size, progress, url)
            except AttemptFailed as failure:
                raise _network_error(failure, 1) from None
            except OSError as exc:
                raise _local_error(url, exc) from None
        else:
            headers = {"Accept-Encoding": "identity"}  # hash the bytes as published (pip too)

            def consume(reply: Reply, final: str) -> tuple[str, dict[str, str]]:
                _refuse_oversized(reply, limit, filename)
                chunks = reply.chunks(raw=True)
                return _stream_to(near, chunks, algorithms, limit, size, progress, final)

            temp, digests = self._get(url, headers, consume)
        try:
            _verify(filename, wanted, digests)
        except HashMismatchError:
            fs.unlink(temp, missing_ok=True)
            raise
        actual = digests["sha256"]
        final_path = self.cache.wheel(actual, filename)
        try:
            fs.makedirs(os.path.dirname(final_path))
            fs.rename(temp, final_path)
        except FileExistsError:
            # Another process (or thread) stored it first. Content-addressed: the same bytes,
            # unless that copy was damaged (a different size), which ours then replaces.
            if _size_of(final_path) == _size_of(temp):
                fs.unlink(temp, missing_ok=True)
            else:
                fs.replace(temp, final_path)
        except BaseException:
            fs.unlink(temp, missing_ok=True)
            raise
        log.debug("downloaded %s (sha256 %s)", filename, actual)
        return Downloaded(final_path, actual, from_cache=False)

    # -- the request loop ----------------------------------------------------------------------

    def _get(
        self,
        url: str,
        headers: Mapping[str, str],
        consume: Callable[[Reply, str], T],
        *,
        accept_304: bool = False,
    ) -> T:
        """``GET url`` with redirects, credentials and retries; *consume* reads the answer
        (a 2xx, or a 304 when *accept_304*) and gets the final URL."""
        attempt = 0
        started = self._clock()
        while True:
            attempt += 1
            try:
                return self._get_once(url, headers, consume, accept_304)
            except AttemptFailed as failure:
                delay, why_not = self._retry_delay(failure, attempt)
                if delay is None:
                    raise _network_error(failure, attempt, why_not) from None
                log.debug(
                    "GET %s failed (%s); retry %d in %.2f s (%.2f s so far)",
                    failure.url,
                    failure.problem,
                    attempt,
                    delay,
                    self._clock() - started,
                )
                self._sleep(delay)

    def _get_once(
        self,
        url: str,
        headers: Mapping[str, str],
        consume: Callable[[Reply, str], T],
        accept_304: bool,
    ) -> T:
        session = self._open_session()
        current = url
        override: Credentials | None = None
        challenged = False
        for _ in range(MAX_REDIRECTS + 1):
            bare, creds = self._auth.credentials_for(current)
            if override is not None:
                creds = override
            shown = redact_url(bare)
            self._check_secure(bare, shown)
            send = dict(headers)
            if creds is not None:
                send["Authorization"] = creds.authorization()
            with session.get(bare, send) as reply:
                status = reply.status
                log.debug("GET %s -> %d", shown, status)
                location = reply.header("location")
                if status in _REDIRECTS and location:
                    current = _resolve(bare, location)
                    override = None
                    continue
                if status in (401, 403) and not challenged:
                    challenged = True
                    override = self._auth.after_challenge(bare, creds)
                    if override is not None:
                        continue
                if status in (401, 403):
                    raise AttemptFailed(
                        shown,
                        _auth_problem(status, reply.reason, creds),
                        transient=False,
                        status=status,
                    )
                if status == 429 or 500 <= status <= 599:
                    wait = parse_retry_after(reply.header("retry-after"), self._now())
                    raise AttemptFailed(
                        shown,
                        f"HTTP {status} {reply.reason}".rstrip(),
                        transient=True,
                        status=status,
                        retry_after=wait,
                    )
                if not (200 <= status < 300 or (status == 304 and accept_304)):
                    raise AttemptFailed(
                        shown,
                        f"HTTP {status} {reply.reason}".rstrip(),
                        transient=False,
                        status=status,
                    )
                if override is not None:
                    self._auth.remember(bare, override)
                return consume(reply, bare)
        raise AttemptFailed(
            redact_url(current), f"more than {MAX_REDIRECTS} redirects", transient=False
        )

    def _retry_delay(self, failure: AttemptFailed, attempt: int) -> tuple[float | None, str]:
        """Seconds to wait before the next attempt, or ``None`` and why there is none."""
        if not failure.transient:
            return None, ""
        if attempt > self.settings.retries:
            return None, ""
        from ._retry import MAX_RETRY_AFTER

        delay = backoff(attempt, self._jitter())
        if failure.retry_after is not None:
            if failure.retry_after > MAX_RETRY_AFTER:
                return None, f"the server asks to retry after {failure.retry_after:.0f} s"
            delay = failure.retry_after
        if not self._budget.take(delay):
            return None, f"the retry budget of {self.settings.retry_budget:g} s is spent"
        return delay, ""

    def _jitter(self) -> float:
        if self._random is None:
            import random

            # Jitter, not secrets: a seeded generator makes tests repeatable.
            self._random = random.Random(self._seed).random  # noqa: S311
        return self._random()

    def _check_secure(self, url: str, shown: str) -> None:
        """Plain HTTP only where nobody can tamper with it: loopback, or a host the user trusts."""
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            scheme, host = parts.scheme.lower(), parts.hostname or ""
        except ValueError as exc:
            raise AttemptFailed(shown, f"not a valid URL: {exc}", transient=False) from None
        if scheme == "https":
            return
        if scheme != "http":
            raise AttemptFailed(
                shown, f"cannot fetch {scheme or 'a relative'} URL", transient=False
            )
        if not (is_loopback(host) or self.settings.is_trusted(url)):
            raise AttemptFailed(
                shown,
                "refusing plain HTTP: anyone on the way could change what gets installed. Use "
                f"https, or mark the host as trusted (--trusted-host {host})",
                transient=False,
            )

    def _open_session(self) -> Session:
        with self._lock:
            if self._closed:
                raise RuntimeError("the network client is closed")
            if self._session is None:
                from ._http import Session

                self._session = Session(self.settings, self._transport, _user_agent())
            return self._session

    def _page_cache(self) -> PageCache:
        if self._pages is None:
            from ._httpcache import PageCache

            self._pages = PageCache(self.cache.http(), MAX_PAGE_BYTES)
        return self._pages

    def _read_local(self, url: str, path: str, limit: int) -> bytes:
        try:
            return read_regular(path, limit)
        except NotRegularFileError as exc:
            raise _local_error(url, exc) from None
        except ValueError:
            raise NetworkError(redact_url(url), f"larger than {limit} bytes") from None
        except OSError as exc:
            raise _local_error(url, exc) from None


# -- helpers ------------------------------------------------------------------------------------


def _network_error(failure: AttemptFailed, attempts: int, why_not: str = "") -> NetworkError:
    problem = f"{failure.problem}; {why_not}" if why_not else failure.problem
    return NetworkError(failure.url, problem, status=failure.status, attempts=attempts)


def _local_error(url: str, exc: OSError) -> NetworkError:
    reason = "not a regular file" if isinstance(exc, NotRegularFileError) else exc.strerror
    return NetworkError(redact_url(url), f"cannot read the local file: {reason or exc}")


def _auth_problem(status: int, reason: str, tried: Credentials | None) -> str:
    head = f"HTTP {status} {reason}".rstrip()
    if tried is None:
        return (
            f"{head}: the server wants credentials. Give them in the index URL "
            "(https://user:password@host/...), in ~/.netrc (NETRC), or in keyring"
        )
    return f"{head}: the credentials from {tried.source} were refused"


def _read_body(reply: Reply, limit: int, what: str) -> bytes:
    _refuse_oversized(reply, limit, what)
    received = bytearray()
    for chunk in reply.chunks():
        received += chunk
        if len(received) > limit:  # counted after decompression: no gzip bomb gets through
            raise AttemptFailed(
                redact_url(reply.url), f"the {what} is larger than {limit} bytes", transient=False
            )
    return bytes(received)


def _refuse_oversized(reply: Reply, limit: int, what: str) -> None:
    length = reply.header("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise AttemptFailed(
            redact_url(reply.url),
            f"the {what} is larger than {limit} bytes (Content-Length: {int(length)})",
            transient=False,
        )


def _stream_to(
    near: str,
    chunks: Iterable[bytes],
    algorithms: frozenset[str],
    limit: int,
    size: int | None,
    progress: Callable[[int], None] | None,
    url: str,
) -> tuple[str, dict[str, str]]:
    """Write *chunks* into a new temporary file beside *near*, hashing as they pass; the file
    is removed if anything goes wrong (:class:`stalwart.fs.FileWriter`). Returns its path and
    the hex digests."""
    import hashlib

    hashers = {name: hashlib.new(name) for name in algorithms}
    received = 0
    while True:
        temp = fs.temp_name(near)
        try:
            writer = fs.open_for_write(temp, exclusive=True)
        except FileExistsError:  # left by a crashed process that had our pid: take the next
            continue
        break
    with writer as out:
        for chunk in chunks:
            received += len(chunk)
            if received > limit:
                what = "the size the index gives" if size is not None else "the download limit"
                raise AttemptFailed(
                    redact_url(url),
                    f"the body is larger than {what} ({limit} bytes)",
                    transient=False,
                )
            out.write(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            if progress is not None:
                progress(received)
        if size is not None and received < size:
            raise AttemptFailed(
                redact_url(url),
                f"the body ended after {received} of {size} bytes",
                transient=True,
            )
        out.sync()  # the name will promise these bytes: make them durable first
    return temp, {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _checkable(hashes: Mapping[str, str] | None) -> dict[str, str]:
    """The hashes that can be checked: known algorithms, names and digests lower-cased."""
    found: dict[str, str] = {}
    for name, digest in (hashes or {}).items():
        key = name.lower().replace("-", "_")
        if key in CHECKABLE:
            found[key] = digest.strip().lower()
    return found


def _digests(data: bytes, wanted: Mapping[str, str]) -> dict[str, str]:
    import hashlib

    return {name: hashlib.new(name, data).hexdigest() for name in wanted}


def _verify(filename: str, wanted: Mapping[str, str], actual: Mapping[str, str]) -> None:
    # Every expected hash must match, strongest first, so the message names the one that counts.
    for name in sorted(wanted, key=lambda n: (n not in STRONG_HASHES, n)):
        if actual[name] != wanted[name]:
            raise HashMismatchError(filename, name, wanted[name], actual[name])


def _check_filename(filename: str) -> None:
    if (
        not filename
        or filename in (".", "..")
        or any(c in filename for c in "/\\\0")
        or not filename.isprintable()
    ):
        raise UsageError(f"unsafe file name for the cache: {filename!r}")


def _name_of(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    try:
        path = urlsplit(url).path
    except ValueError:
        path = url
    return unquote(path.rpartition("/")[2]) or redact_url(url)


def _resolve(base: str, location: str) -> str:
    from urllib.parse import urldefrag, urljoin

    return urldefrag(urljoin(base, location.strip()))[0]


def _size_of(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _age(value: str | None) -> float:
    """RFC 9111 section 5.1: ``Age`` is a non-negative integer of seconds."""
    return float(int(value)) if value is not None and value.strip().isdigit() else 0.0


def _page_of(entry: CachedPage) -> Page:
    return Page(entry.final_url, entry.content_type, entry.body, from_cache=True)


def _local_path(url: str) -> str | None:
    """The path a ``file://`` URL or a plain path names; ``None`` for other URLs."""
    if "://" not in url:
        return url
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    if os.name == "nt":
        import nturl2path

        unc = f"//{parts.netloc}" if parts.netloc not in ("", "localhost") else ""
        return nturl2path.url2pathname(unc + parts.path)
    if parts.netloc not in ("", "localhost"):
        raise UsageError(f"{redact_url(url)}: a file:// URL must name a local file")
    return unquote(parts.path)


def _file_url(path: str) -> str:
    from pathlib import Path

    return Path(os.path.abspath(path)).as_uri()


def _user_agent() -> str:
    implementation = sys.implementation.name
    version = ".".join(map(str, sys.version_info[:3]))
    return f"stalwart/{__version__} {implementation}/{version}"
