"""How stalwart reaches package indexes: one frozen :class:`NetworkSettings`. Pure (reads no file).

Where each setting comes from
-----------------------------
:meth:`NetworkSettings.from_environ` takes the first source that sets a value, in this order:

1. an explicit value (a command-line option, passed as a keyword; ``None`` means "not given");
2. a ``STALWART_*`` variable;
3. the variable a user already exports for uv, then the one for pip (a machine set up for either
   keeps working; when both are set they normally agree, and uv's is read first because
   stalwart follows uv's index semantics, below);
4. a generic variable (``SSL_CERT_FILE``, ``NETRC``, the ``*_PROXY`` family);
5. the default.

Sources are never merged: ``STALWART_EXTRA_INDEX_URL`` replaces ``PIP_EXTRA_INDEX_URL`` rather
than adding to it, so what is used is always what one place says. An empty variable counts as
unset. A value that cannot be used raises :class:`~stalwart.errors.UsageError` naming the
variable (or option), never a traceback.

==================  ===========================  ==================================================
setting             STALWART_*                   then (in order)
==================  ===========================  ==================================================
index_url           STALWART_INDEX_URL           UV_DEFAULT_INDEX, UV_INDEX_URL, PIP_INDEX_URL
extra_index_urls    STALWART_EXTRA_INDEX_URL     UV_INDEX + UV_EXTRA_INDEX_URL, PIP_EXTRA_INDEX_URL
find_links          STALWART_FIND_LINKS          UV_FIND_LINKS (comma-separated), PIP_FIND_LINKS
no_index            STALWART_NO_INDEX            PIP_NO_INDEX
index_strategy      STALWART_INDEX_STRATEGY      UV_INDEX_STRATEGY
offline             STALWART_OFFLINE             UV_OFFLINE
cert                STALWART_CERT                PIP_CERT, SSL_CERT_FILE
client_cert         STALWART_CLIENT_CERT         PIP_CLIENT_CERT
trusted_hosts       STALWART_TRUSTED_HOST        UV_INSECURE_HOST, PIP_TRUSTED_HOST
timeout             STALWART_TIMEOUT             UV_HTTP_TIMEOUT, PIP_TIMEOUT, PIP_DEFAULT_TIMEOUT
retries             STALWART_RETRIES             UV_HTTP_RETRIES, PIP_RETRIES
retry_budget        STALWART_RETRY_BUDGET
proxy               STALWART_PROXY               PIP_PROXY
keyring             STALWART_KEYRING             UV_KEYRING_PROVIDER, PIP_KEYRING_PROVIDER
netrc               (NETRC)                      ~/.netrc
==================  ===========================  ==================================================

Lists are whitespace-separated (as pip and uv read them), except ``UV_FIND_LINKS``, which uv
reads comma-separated. ``UV_INDEX`` and ``UV_DEFAULT_INDEX`` entries may be ``name=url``; the
name is dropped. Environment proxies (``http_proxy``, ``https_proxy``, ``all_proxy``,
``no_proxy``, lower case winning over upper case) are read as curl and httpx read them; an
explicit ``proxy`` is used for every scheme, and ``no_proxy`` still exempts its hosts.

Index strategy (dependency confusion)
-------------------------------------
``first-index`` (the default, as in uv): a project's files come from the *first* index, in
:attr:`NetworkSettings.index_urls` order, that knows the project at all. Extra indexes are
searched *before* the default one, so an internal name served by a private
``--extra-index-url`` can never be shadowed by somebody registering the same name, with a
higher version, on PyPI: the attack pip's merging of all indexes allows. ``unsafe-best-match``
merges every index's files and picks the best version, as pip does; use it only when every
index is trusted for every name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from stalwart.errors import UsageError

__all__ = [
    "DEFAULT_INDEX_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_RETRIES",
    "DEFAULT_RETRY_BUDGET",
    "IndexStrategy",
    "NetworkSettings",
    "is_loopback",
]

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a connection, or for the next bytes of an answer (uv's default)."""
DEFAULT_RETRIES = 3
"""Retries after the first attempt of one request (so four attempts in all)."""
DEFAULT_RETRY_BUDGET = 60.0
"""Seconds a client may spend waiting between retries, over all its requests together: with an
index down, a resolution of 200 projects fails after one budget, not after 200 back-offs."""

IndexStrategy = Literal["first-index", "unsafe-best-match"]
_STRATEGIES: tuple[str, ...] = get_args(IndexStrategy)

_TRUE = frozenset(("1", "true", "yes", "on", "y", "t"))
_FALSE = frozenset(("0", "false", "no", "off", "n", "f"))


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """Everything the network client needs to know; built once per command.

    The defaults read no environment: ``NetworkSettings()`` is PyPI, direct, no netrc. The CLI
    builds its settings with :meth:`from_environ`.
    """

    index_url: str = DEFAULT_INDEX_URL
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    index_strategy: IndexStrategy = "first-index"
    offline: bool = False
    cert: str | None = None
    """A CA bundle (PEM file, or a directory of hashed certificates) trusted *in addition to*
    the operating system's store."""
    client_cert: str | None = None
    """A PEM file holding a client certificate and its private key (mutual TLS)."""
    trusted_hosts: tuple[str, ...] = ()
    """``host`` or ``host:port`` entries reached over plain HTTP, or HTTPS without verification."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds to wait for a connection or for the next bytes of an answer; 0: no limit."""
    retries: int = DEFAULT_RETRIES
    retry_budget: float = DEFAULT_RETRY_BUDGET
    proxy: str | None = None
    """An explicit proxy URL for every scheme (``--proxy``); hosts in ``no_proxy`` bypass it."""
    http_proxy: str | None = None
    https_proxy: str | None = None
    all_proxy: str | None = None
    no_proxy: tuple[str, ...] = ()
    keyring: bool = True
    """Ask the ``keyring`` package for credentials after a 401/403, if it is importable."""
    netrc: str | None = None
    """The netrc file to read credentials from; ``None`` for none."""
    origins: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
    """``(setting, variable)`` for each value :meth:`from_environ` took from the environment."""

    def __repr__(self) -> str:
        from stalwart.index.simple import redacted_repr

        return redacted_repr(self)  # index URLs may carry passwords

    def __post_init__(self) -> None:
        problems = _check(self)
        if problems:
            raise UsageError(problems)

    # -- derived -------------------------------------------------------------------------------

    @property
    def index_urls(self) -> tuple[str, ...]:
        """The indexes in the order ``first-index`` searches them: extra indexes first, then the
        default one (see the module docstring); empty with ``no_index``."""
        if self.no_index:
            return ()
        ordered: list[str] = []
        for url in (*self.extra_index_urls, self.index_url):
            if url not in ordered:
                ordered.append(url)
        return tuple(ordered)

    def project_urls(self, name: str) -> tuple[str, ...]:
        """The project page of *name* on each index, in search order (PEP 503: the normalized
        name below the index URL, with a trailing slash)."""
        from packaging.utils import canonicalize_name

        normalized = canonicalize_name(name)
        return tuple(f"{url.rstrip('/')}/{normalized}/" for url in self.index_urls)

    def proxy_for(self, url: str) -> str | None:
        """The proxy a request to *url* goes through, or ``None`` for a direct connection."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return None
        host = (parts.hostname or "").lower()
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            port = None
        if any(_no_proxy_matches(entry, scheme, host, port) for entry in self.no_proxy):
            return None
        if self.proxy:
            return self.proxy
        return (self.https_proxy if scheme == "https" else self.http_proxy) or self.all_proxy

    def is_trusted(self, url: str) -> bool:
        """Whether *url*'s host is a trusted host (plain HTTP allowed, TLS not verified)."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port
        except ValueError:
            return False
        default = 443 if parts.scheme.lower() == "https" else 80
        for entry in self.trusted_hosts:
            entry_host, entry_port = _split_host_port(entry)
            if entry_host == host and (entry_port is None or entry_port == (port or default)):
                return True
        return False

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **explicit: Any) -> NetworkSettings:
        """Settings from *explicit* values, then *environ* (see the module docstring).

        *explicit* keys are field names; ``None`` values are ignored (an option not given).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(explicit) - known)
        if unknown:
            raise TypeError(f"unknown network settings: {', '.join(unknown)}")
        env = _Env(environ)
        values: dict[str, Any] = {}
        origins: list[tuple[str, str]] = []

        def pick(name: str, *variables: str, parse: Any = None, option: str = "") -> None:
            if explicit.get(name) is not None:
                values[name] = _explicit(name, explicit[name], option or f"--{name}")
                return
            for variable in variables:
                raw = env.get(variable)
                if raw is not None:
                    values[name] = parse(variable, raw) if parse else raw.strip()
                    origins.append((name, variable))
                    return

        pick(
            "index_url",
            "STALWART_INDEX_URL",
            "UV_DEFAULT_INDEX",
            "UV_INDEX_URL",
            "PIP_INDEX_URL",
            parse=_index_url,
        )
        uv_index, uv_extra = env.get("UV_INDEX"), env.get("UV_EXTRA_INDEX_URL")
        if explicit.get("extra_index_urls") is not None:
            values["extra_index_urls"] = _explicit(
                "extra_index_urls", explicit["extra_index_urls"], "--extra-index-url"
            )
        elif (ours := env.get("STALWART_EXTRA_INDEX_URL")) is not None:
            values["extra_index_urls"] = _index_list("STALWART_EXTRA_INDEX_URL", ours)
            origins.append(("extra_index_urls", "STALWART_EXTRA_INDEX_URL"))
        elif uv_index is not None or uv_extra is not None:
            # uv reads both; --index entries come first (they rank above --extra-index-url).
            values["extra_index_urls"] = _index_list("UV_INDEX", uv_index or "") + _index_list(
                "UV_EXTRA_INDEX_URL", uv_extra or ""
            )
            origins.append(("extra_index_urls", "UV_INDEX" if uv_index else "UV_EXTRA_INDEX_URL"))
        elif (pip := env.get("PIP_EXTRA_INDEX_URL")) is not None:
            values["extra_index_urls"] = _index_list("PIP_EXTRA_INDEX_URL", pip)
            origins.append(("extra_index_urls", "PIP_EXTRA_INDEX_URL"))
        pick(
            "find_links",
            "STALWART_FIND_LINKS",
            "UV_FIND_LINKS",
            "PIP_FIND_LINKS",
            parse=_find_links,
        )
        pick("no_index", "STALWART_NO_INDEX", "PIP_NO_INDEX", parse=_bool)
        pick("index_strategy", "STALWART_INDEX_STRATEGY", "UV_INDEX_STRATEGY", parse=_strategy)
        pick("offline", "STALWART_OFFLINE", "UV_OFFLINE", parse=_bool)
        pick("cert", "STALWART_CERT", "PIP_CERT", "SSL_CERT_FILE")
        pick("client_cert", "STALWART_CLIENT_CERT", "PIP_CLIENT_CERT")
        pick(
            "trusted_hosts",
            "STALWART_TRUSTED_HOST",
            "UV_INSECURE_HOST",
            "PIP_TRUSTED_HOST",
            parse=_hosts,
            option="--trusted-host",
        )
        pick(
            "timeout",
            "STALWART_TIMEOUT",
            "UV_HTTP_TIMEOUT",
            "PIP_TIMEOUT",
            "PIP_DEFAULT_TIMEOUT",
            parse=_seconds,
        )
        pick("retries", "STALWART_RETRIES", "UV_HTTP_RETRIES", "PIP_RETRIES", parse=_count)
        pick("retry_budget", "STALWART_RETRY_BUDGET", parse=_seconds)
        pick("proxy", "STALWART_PROXY", "PIP_PROXY", parse=_proxy_url)
        pick(
            "keyring",
            "STALWART_KEYRING",
            "UV_KEYRING_PROVIDER",
            "PIP_KEYRING_PROVIDER",
            parse=_keyring,
        )
        pick("netrc", "NETRC")
        if "netrc" not in values:
            home = env.get("HOME") or env.get("USERPROFILE")
            values["netrc"] = (
                os.path.join(home, ".netrc") if home else os.path.expanduser("~/.netrc")
            )
        for name in ("http_proxy", "https_proxy", "all_proxy"):
            if explicit.get(name) is not None:
                values[name] = explicit[name]
            else:
                values[name] = env.proxy(name)
        if explicit.get("no_proxy") is not None:
            values["no_proxy"] = tuple(explicit["no_proxy"])
        else:
            raw = env.proxy("no_proxy")
            values["no_proxy"] = tuple(e.strip() for e in (raw or "").split(",") if e.strip())
        return cls(**values, origins=tuple(origins))

    def origin(self, name: str) -> str:
        """Where the value of setting *name* came from (``--cert``, ``PIP_CERT``...), for
        messages about a value that turns out unusable later (a CA bundle that will not load)."""
        return dict(self.origins).get(name, f"--{name.replace('_', '-')}")


# -- environment reading ------------------------------------------------------------------------


class _Env:
    """*environ* with empty values counting as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value if value is not None and value.strip() else None

    def proxy(self, name: str) -> str | None:
        """``name`` (lower case) wins over ``NAME``, as in curl and urllib. Under CGI
        (``REQUEST_METHOD`` set) ``HTTP_PROXY`` may come from a request header (httpoxy,
        CVE-2016-5385), so only the lower-case spelling counts for it."""
        lower = self.get(name)
        if lower is not None:
            return lower.strip()
        if name == "http_proxy" and self.get("REQUEST_METHOD") is not None:
            return None
        upper = self.get(name.upper())
        return upper.strip() if upper is not None else None


def _explicit(name: str, value: Any, option: str) -> Any:
    """An explicit value, checked with the parser its variable would use."""
    if name in ("extra_index_urls", "find_links", "trusted_hosts", "no_proxy"):
        if isinstance(value, str):
            raise TypeError(f"{name} takes a sequence of strings, not a string")
        return tuple(value)
    if name == "index_url":
        return _index_url(option, str(value))
    if name in ("timeout", "retry_budget") and isinstance(value, str):
        return _seconds(option, value)
    if name == "retries" and isinstance(value, str):
        return _count(option, value)
    return value


def _bool(variable: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"{variable}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _seconds(variable: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise UsageError(f"{variable}={raw!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):  # also refuses NaN
        raise UsageError(f"{variable}={raw!r} must be a finite number of seconds, 0 or more")
    return value


def _count(variable: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise UsageError(f"{variable}={raw!r} is not a whole number") from None
    if value < 0:
        raise UsageError(f"{variable}={raw!r} must be 0 or more")
    return value


def _strategy(variable: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in _STRATEGIES:
        raise UsageError(
            f"{variable}={raw!r} is not an index strategy stalwart knows ({', '.join(_STRATEGIES)})"
        )
    return value


def _keyring(variable: str, raw: str) -> bool:
    """``STALWART_KEYRING`` is a boolean; uv's and pip's ``*_KEYRING_PROVIDER`` name a provider,
    and only ``disabled`` turns it off (stalwart uses the importable ``keyring`` package)."""
    if variable == "STALWART_KEYRING":
        return _bool(variable, raw)
    value = raw.strip().lower()
    if value not in ("disabled", "auto", "import", "subprocess"):
        raise UsageError(f"{variable}={raw!r} is not a keyring provider")
    return value != "disabled"


def _strip_index_name(item: str) -> str:
    """uv's ``name=url`` (``UV_INDEX="internal=https://..."``): the name goes, the URL stays."""
    name, sep, rest = item.partition("=")
    if sep and "://" not in name and "/" not in name and rest:
        return rest
    return item


def _index_url(variable: str, raw: str) -> str:
    url = _strip_index_name(raw.strip())
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UsageError(f"{variable}: {_shown(url)} is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "file") or (scheme != "file" and not parts.hostname):
        raise UsageError(f"{variable}: {_shown(url)} is not an http(s):// or file:// URL")
    return url


def _index_list(variable: str, raw: str) -> tuple[str, ...]:
    return tuple(_index_url(variable, item) for item in raw.split())


def _find_links(variable: str, raw: str) -> tuple[str, ...]:
    # uv documents UV_FIND_LINKS as comma-separated; pip splits every list on whitespace.
    items = raw.split(",") if variable == "UV_FIND_LINKS" else raw.split()
    return tuple(item.strip() for item in items if item.strip())


def _hosts(variable: str, raw: str) -> tuple[str, ...]:
    hosts = []
    for item in raw.split():
        host, port = _split_host_port(item)
        if not host or (port is None and item.rstrip().endswith(":")):
            raise UsageError(f"{variable}: {item!r} is not a host or host:port")
        hosts.append(item.strip().lower())
    return tuple(hosts)


def _proxy_url(variable: str, raw: str) -> str:
    from urllib.parse import urlsplit

    url = raw.strip()
    if "://" not in url:
        url = f"http://{url}"  # as curl and pip: a bare host:port is an HTTP proxy
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"{variable}: {_shown(raw)} is not a proxy URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        raise UsageError(f"{variable}: {_shown(raw)} is not an http://, https:// or socks5:// URL")
    return url


def _shown(url: str) -> str:
    from stalwart.index.simple import redact_url

    return repr(redact_url(url))


# -- validation and matching --------------------------------------------------------------------


def _check(settings: NetworkSettings) -> list[str]:
    """Every problem with *settings* (explicit values skip the variable parsers)."""
    problems = []
    if settings.index_strategy not in _STRATEGIES:
        problems.append(
            f"--index-strategy {settings.index_strategy!r}: use one of {', '.join(_STRATEGIES)}"
        )
    for name in ("timeout", "retry_budget"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
            problems.append(f"--{name.replace('_', '-')} {value!r}: a number of seconds, 0 or more")
    retries = settings.retries
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        problems.append(f"--retries {retries!r}: a whole number from 0 to 100")
    labelled = [("--index-url", settings.index_url)]
    labelled += [("--extra-index-url", url) for url in settings.extra_index_urls]
    for label, url in labelled:
        try:
            _index_url(label, url)
        except UsageError as exc:
            problems.extend(exc.problems)
    for host in settings.trusted_hosts:
        if not _split_host_port(host)[0]:
            problems.append(f"--trusted-host {host!r}: not a host or host:port")
    return problems


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` -> (lower-case host, port or None)."""
    text = entry.strip().lower()
    if "://" in text:  # pip also accepts a URL here; only its host and port matter
        from urllib.parse import urlsplit

        parts = urlsplit(text)
        try:
            return (parts.hostname or "", parts.port)
        except ValueError:
            return ("", None)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return ("", None)
        return (host, int(port_text))
    return (host, None)


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``: no one else can listen there, so plain HTTP is
    as safe as TLS (pip counts these among its secure origins too)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _no_proxy_matches(  # noqa: PLR0911 - one rule per entry form, each ends its search
    entry: str, scheme: str, host: str, port: int | None
) -> bool:
    """One ``no_proxy`` entry against a request, as curl and httpx read them.

    ``*`` matches everything; ``example.com`` and ``.example.com`` match the host and its
    subdomains; ``host:port`` only that port; ``10.0.0.0/8`` any address inside (curl 7.86+);
    ``http://host`` only that scheme (httpx).
    """
    text = entry.strip().lower()
    if text == "*":
        return True
    if "://" in text:
        entry_scheme, _, text = text.partition("://")
        if entry_scheme not in ("all", scheme):
            return False
    if "/" in text:
        import ipaddress

        try:
            return ipaddress.ip_address(host.strip("[]")) in ipaddress.ip_network(
                text, strict=False
            )
        except ValueError:
            return False
    entry_host, entry_port = _split_host_port(text)
    if entry_port is not None and entry_port != port:
        return False
    entry_host = entry_host.lstrip("*").lstrip(".")
    if not entry_host:
        return False
    return host == entry_host or host.endswith(f".{entry_host}")
