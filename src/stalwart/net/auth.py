"""Credentials for index and file URLs, and keeping them out of every message.

For a request, :meth:`Authenticator.credentials_for` looks, in order, at:

1. the ``user:password@`` in the URL itself (percent-decoded; ``token@`` alone is a token with
   an empty password, as pip reads it);
2. credentials that worked for the URL's origin (scheme, host, port) after a challenge, then
   those written into the most specific index or ``--find-links`` URL the request falls under,
   then any given for its origin: they apply to every file served from the same origin, since
   indexes hand out file URLs without them (pip does the same);
3. the netrc file's entry for the host (``NETRC`` or ``~/.netrc``, stdlib :mod:`netrc`). It is
   read before the first request, as requests and ``curl --netrc`` do: some private indexes
   answer 404 rather than 401 to an anonymous client.

After a 401 or 403, :meth:`Authenticator.after_challenge` asks ``keyring`` once (if it is
importable and enabled; never required): first for the index URL the request falls under,
then for the host, as pip does. A failing keyring backend is a logged note, not an error.

Credentials never go into a message, log line or ``repr``: URLs are shown through
:func:`stalwart.index.simple.redact_url`, and :class:`Credentials` hides its fields.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from stalwart.index.simple import redact_url

__all__ = [
    "Credentials",
    "KeyringLookup",
    "Authenticator",
    "keyring_lookup",
    "split_userinfo",
    "origin_of",
]

log = logging.getLogger("stalwart.net")

Origin = tuple[str, str, int]
"""``(scheme, host, port)``, the port made explicit: what credentials are scoped to."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password for HTTP basic authentication (RFC 7617), and where they came
    from (``url``, ``index``, ``netrc``, ``keyring``). Its ``repr`` shows neither."""

    username: str
    password: str
    source: str

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r}, username='***', password='***')"

    def authorization(self) -> str:
        """The ``Authorization`` header value. RFC 7617 section 2.1: UTF-8, as browsers send."""
        import base64

        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


class KeyringLookup(Protocol):
    """Credentials a keyring holds for *service* (a URL or a host), or ``None``.

    The default, :func:`keyring_lookup`, uses the ``keyring`` package; tests pass a fake.
    """

    def __call__(self, service: str, username: str | None, /) -> tuple[str, str] | None: ...


def keyring_lookup(service: str, username: str | None, /) -> tuple[str, str] | None:
    """Ask the ``keyring`` package, imported on first use and only if installed. Only called
    after a 401/403, so trying the import again each time costs nothing that matters."""
    import importlib

    try:
        keyring = importlib.import_module("keyring")
    except ImportError:
        return None
    except Exception as exc:  # a broken keyring install must not break installs
        log.warning("keyring could not be imported, so it is not used: %s", redact_url(str(exc)))
        return None
    try:
        found = keyring.get_credential(service, username)
    except Exception as exc:  # backends raise anything: locked, no D-Bus, user cancelled...
        log.warning(
            "keyring could not be asked for %s: %s", redact_url(service), redact_url(str(exc))
        )
        return None
    if found is None or not getattr(found, "password", None):
        return None
    return (str(found.username or username or ""), str(found.password))


def split_userinfo(url: str) -> tuple[str, Credentials | None]:
    """*url* without its ``user:password@``, and those credentials (``None`` if it had none)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    bare = urlunsplit(parts._replace(netloc=hostport))
    return bare, Credentials(unquote(user), unquote(password) if sep else "", "url")


def origin_of(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL, the default port filled in; else ``None``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            return None
        return (scheme, parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80))
    except ValueError:
        return None


class Authenticator:
    """Finds credentials for URLs; thread-safe (one per client, shared by its threads).

    *index_urls* are the index and find-links URLs, some with credentials in them; *netrc*
    is the file to read (``None``: none); *keyring* is asked after a challenge (``None``: never).
    """

    def __init__(
        self,
        index_urls: Iterable[str] = (),
        *,
        netrc: str | None = None,
        keyring: KeyringLookup | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._netrc_path = netrc
        self._netrc: object | None = None
        self._netrc_read = netrc is None
        self._keyring = keyring
        # Index URLs (without credentials), longest first so the most specific prefix wins.
        self._indexes: list[tuple[str, Credentials | None]] = []
        self._by_origin: dict[Origin, Credentials] = {}
        for url in index_urls:
            bare, creds = split_userinfo(url)
            self._indexes.append((bare, creds))
        self._indexes.sort(key=lambda item: len(item[0]), reverse=True)
        for bare, creds in reversed(self._indexes):  # shortest last: the broadest index wins
            where = origin_of(bare)
            if creds is not None and where is not None:
                self._by_origin.setdefault(where, _as(creds, "index"))
        self._learned: dict[Origin, Credentials] = {}
        self._challenged: set[Origin] = set()

    def __repr__(self) -> str:
        shown = ", ".join(redact_url(url) for url, _ in self._indexes)
        return f"Authenticator(indexes=[{shown}])"

    def credentials_for(self, url: str) -> tuple[str, Credentials | None]:
        """*url* without credentials, and the credentials to send with it (or ``None``)."""
        bare, creds = split_userinfo(url)
        where = origin_of(bare)
        if where is None:
            return bare, None
        if creds is not None:
            with self._lock:  # files the page links to (same origin, no userinfo) need them too
                self._by_origin.setdefault(where, creds)
            return bare, creds
        with self._lock:
            learned = self._learned.get(where)
        if learned is not None:
            return bare, learned
        index_creds = self._index_credentials(bare, where)
        if index_creds is not None:
            return bare, index_creds
        with self._lock:
            known = self._by_origin.get(where)
        if known is not None:
            return bare, known
        return bare, self._from_netrc(where[1])

    def after_challenge(self, url: str, tried: Credentials | None) -> Credentials | None:
        """New credentials to try once after a 401/403 on *url*, or ``None`` to give up.

        Asks the keyring (once per origin): for the index URL *url* falls under, then for the
        host. Credentials that are the ones just tried are not offered again.
        """
        bare, _ = split_userinfo(url)
        where = origin_of(bare)
        if where is None or self._keyring is None:
            return None
        with self._lock:
            if where in self._challenged:
                return None
            self._challenged.add(where)
        username = tried.username if tried is not None and tried.username else None
        services = [index for index, _ in self._indexes if bare.startswith(index)][:1]
        host = where[1] if where[2] in (80, 443) else f"{where[1]}:{where[2]}"
        services.append(host)
        for service in services:
            found = self._keyring(service, username)
            if found is None:
                continue
            creds = Credentials(found[0], found[1], "keyring")
            if tried is not None and (creds.username, creds.password) == (
                tried.username,
                tried.password,
            ):
                return None
            log.debug("using keyring credentials for %s", redact_url(service))
            return creds
        return None

    def remember(self, url: str, credentials: Credentials) -> None:
        """*credentials* worked for *url* after a challenge: send them first to its origin from
        now on, so the keyring is asked once per origin, not once per request."""
        where = origin_of(split_userinfo(url)[0])
        if where is not None:
            with self._lock:
                self._learned[where] = credentials

    # -- sources -------------------------------------------------------------------------------

    def _index_credentials(self, bare: str, where: Origin) -> Credentials | None:
        """Credentials of the most specific index URL that *bare* lies below."""
        for index, creds in self._indexes:
            if creds is not None and bare.startswith(index) and origin_of(index) == where:
                return _as(creds, "index")
        return None

    def _from_netrc(self, host: str) -> Credentials | None:
        with self._lock:
            if not self._netrc_read:
                self._netrc_read = True
                self._netrc = _read_netrc(self._netrc_path)
            parsed = self._netrc
        if parsed is None:
            return None
        entry = parsed.authenticators(host)  # type: ignore[attr-defined]
        if not entry:
            return None
        login, _account, password = entry
        if not login and not password:
            return None
        return Credentials(login or "", password or "", "netrc")


def _as(creds: Credentials, source: str) -> Credentials:
    return Credentials(creds.username, creds.password, source)


def _read_netrc(path: str | None) -> object | None:
    """The parsed netrc file, or ``None`` when there is none or it cannot be read (a note)."""
    if not path:
        return None
    import netrc

    try:
        return netrc.netrc(path)
    except FileNotFoundError:
        return None
    except (OSError, netrc.NetrcParseError) as exc:
        # The parser's message quotes the offending line, which may hold a password.
        where = getattr(exc, "lineno", None)
        detail = f"line {where}" if where else type(exc).__name__
        log.warning("the netrc file %s is not used: it cannot be read (%s)", path, detail)
        return None
