"""The HTTP cache of index pages: ``<CacheLayout.http()>/<key>.json`` + ``<key>.body``.

A private cache in the sense of RFC 9111: an entry keeps the body, its validators (``ETag``,
``Last-Modified``) and freshness (``Cache-Control: max-age`` and ``Age``). ``no-store`` answers
are never written; ``no-cache`` ones are stored but always revalidated.

Each of the two files is replaced atomically (:func:`stalwart.fs.write_atomic`), the body first,
and the JSON names the body's sha256: a reader that meets the JSON of one writer and the body
of another, or anything damaged, sees a mismatch and treats the entry as missing. So
concurrent stalwart processes never use half an entry, without any lock.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

from stalwart import fs
from stalwart.paths import read_regular

__all__ = ["CachedPage", "PageCache", "CachePolicy", "cache_policy"]

log = logging.getLogger("stalwart.net")

_FORMAT = 1
_MAX_META_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """What ``Cache-Control`` allows (RFC 9111 section 5.2.2)."""

    no_store: bool = False
    no_cache: bool = False
    max_age: float | None = None


def cache_policy(header: str | None) -> CachePolicy:
    """Read a ``Cache-Control`` header; unknown directives are ignored, as the RFC asks."""
    no_store = no_cache = False
    max_age: float | None = None
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        name = name.strip().lower()
        if name == "no-store":
            no_store = True
        elif name == "no-cache":
            no_cache = True
        elif name == "max-age":
            text = value.strip().strip('"')
            if text.isdigit():
                max_age = float(int(text))
    return CachePolicy(no_store, no_cache, max_age)


@dataclass(frozen=True, slots=True)
class CachedPage:
    """One stored answer. ``url`` is the request URL (no credentials), ``final_url`` where the
    redirects ended; ``stored_at`` is wall-clock time, ``age`` the ``Age`` it arrived with."""

    url: str
    final_url: str
    content_type: str
    body: bytes
    stored_at: float
    etag: str | None = None
    last_modified: str | None = None
    max_age: float | None = None
    age: float = 0.0
    no_cache: bool = False

    def fresh(self, now: float) -> bool:
        """Usable without asking the server (RFC 9111 section 4.2: current age < lifetime)."""
        if self.max_age is None or self.no_cache:
            return False
        current_age = self.age + max(0.0, now - self.stored_at)
        return current_age < self.max_age

    def revalidated(
        self,
        etag: str | None,
        last_modified: str | None,
        cache_control: str | None,
        age: float,
        now: float,
    ) -> CachedPage:
        """The entry after a 304: its headers updated from the 304 (RFC 9111 section 4.3.4)."""
        policy = cache_policy(cache_control)
        return replace(
            self,
            stored_at=now,
            etag=etag or self.etag,
            last_modified=last_modified or self.last_modified,
            max_age=policy.max_age if cache_control is not None else self.max_age,
            no_cache=policy.no_cache if cache_control is not None else self.no_cache,
            age=age,
        )


class PageCache:
    """Reads and writes entries below one directory; every write goes through :mod:`stalwart.fs`."""

    def __init__(self, directory: str, max_body: int) -> None:
        self._directory = directory
        self._max_body = max_body

    def _paths(self, url: str) -> tuple[str, str]:
        import hashlib

        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        base = os.path.join(self._directory, key)
        return f"{base}.json", f"{base}.body"

    def load(self, url: str) -> CachedPage | None:
        """The entry for *url*, or ``None`` when there is none or it is damaged."""
        import hashlib
        import json

        meta_path, body_path = self._paths(url)
        try:
            meta = json.loads(read_regular(meta_path, _MAX_META_BYTES))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError("unknown format")
            if meta.get("url") != url:
                raise ValueError("entry of another URL")
            body = read_regular(body_path, self._max_body)
            if hashlib.sha256(body).hexdigest() != meta.get("sha256"):
                raise ValueError("the body does not match its entry")
            return CachedPage(
                url=url,
                final_url=_text(meta["final_url"]),
                content_type=_text(meta["content_type"]),
                body=body,
                stored_at=_number(meta["stored_at"]),
                etag=_optional_text(meta.get("etag")),
                last_modified=_optional_text(meta.get("last_modified")),
                max_age=None if meta.get("max_age") is None else _number(meta["max_age"]),
                age=_number(meta.get("age", 0.0)),
                no_cache=meta.get("no_cache") is True,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            log.debug("ignoring a damaged HTTP cache entry for %s: %s", _shown(url), exc)
            return None

    def store(self, entry: CachedPage) -> None:
        """Write *entry*; a cache that cannot be written is a note, never a failed install."""
        import hashlib
        import json

        meta_path, body_path = self._paths(entry.url)
        meta = {
            "format": _FORMAT,
            "url": entry.url,
            "final_url": entry.final_url,
            "content_type": entry.content_type,
            "sha256": hashlib.sha256(entry.body).hexdigest(),
            "stored_at": entry.stored_at,
            "etag": entry.etag,
            "last_modified": entry.last_modified,
            "max_age": entry.max_age,
            "age": entry.age,
            "no_cache": entry.no_cache,
        }
        try:
            fs.makedirs(self._directory)
            # Not fsynced: a damaged entry is detected and ignored, so durability buys nothing.
            fs.write_atomic(body_path, entry.body, durable=False)
            fs.write_atomic(meta_path, json.dumps(meta).encode("utf-8"), durable=False)
        except OSError as exc:
            log.warning("could not cache the index page %s: %s", _shown(entry.url), exc)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def _shown(url: str) -> str:
    from stalwart.index.simple import redact_url

    return redact_url(url)
