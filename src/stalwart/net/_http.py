"""Everything that touches httpx and truststore; imported only when the network is really used.

httpx exceptions are turned into :class:`~stalwart.net._retry.AttemptFailed` in exactly one
place, :func:`translating`; nothing else in stalwart sees them.

httpx's own reading of the environment (``trust_env``) is switched off: proxies, CA bundles and
trusted hosts come from :class:`~stalwart.net.settings.NetworkSettings` alone, so what a
command does is decided in one place and tests never depend on the machine's variables.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

from stalwart.errors import UsageError
from stalwart.index.simple import redact_url

from ._retry import AttemptFailed

if TYPE_CHECKING:
    from .settings import NetworkSettings

__all__ = ["Session", "Reply", "translating", "ssl_context"]

# Plenty for parallel downloads from one host; httpx's default keeps 20 idle connections.
_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=16)


def ssl_context(settings: NetworkSettings, *, verify: bool) -> ssl.SSLContext:
    """The TLS context for verified hosts (the system trust store, plus ``cert``) or for
    trusted hosts (no verification), with the client certificate loaded into either."""
    if verify:
        import truststore

        # The operating system's trust store, as pip (24.2+) and uv (--system-certs) offer:
        # corporate CAs installed on the machine just work.
        context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if settings.cert:
            _load(settings, "cert", context.load_verify_locations, settings.cert)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.client_cert:
        _load(settings, "client_cert", context.load_cert_chain, settings.client_cert)
    return context


def _load(settings: NetworkSettings, name: str, loader: object, path: str) -> None:
    what = "CA bundle" if name == "cert" else "client certificate"
    try:
        if name == "cert" and os.path.isdir(path):
            loader(capath=path)  # type: ignore[operator]
        elif name == "cert":
            loader(cafile=path)  # type: ignore[operator]
        else:
            loader(path)  # type: ignore[operator]
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UsageError(
            f"the {what} {path} (from {settings.origin(name)}) cannot be loaded: {reason}"
        ) from None


class _Router(httpx.BaseTransport):
    """Sends each request through the transport its URL needs: direct or through the proxy
    the settings name for it, verifying TLS or not (trusted hosts). Transports are made on
    first use and kept, each with its own connection pool."""

    def __init__(self, settings: NetworkSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self._transports: dict[tuple[str | None, bool], httpx.HTTPTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        proxy = self._settings.proxy_for(url)
        verify = not self._settings.is_trusted(url)
        return self._transport(proxy, verify).handle_request(request)

    def _transport(self, proxy: str | None, verify: bool) -> httpx.HTTPTransport:
        key = (proxy, verify)
        with self._lock:
            found = self._transports.get(key)
            if found is not None:
                return found
            context = self._contexts.get(verify)
            if context is None:
                context = self._contexts[verify] = ssl_context(self._settings, verify=verify)
            try:
                made = httpx.HTTPTransport(verify=context, proxy=proxy, limits=_LIMITS, retries=0)
            except ImportError:  # socks5:// without the socksio package
                raise UsageError(
                    f"the proxy {redact_url(proxy or '')} needs the 'socksio' package "
                    "(pip install 'httpx[socks]')"
                ) from None
            self._transports[key] = made
            return made

    def close(self) -> None:
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()


class Reply:
    """The status, headers and body of one HTTP answer; reading it translates errors too."""

    __slots__ = ("_response", "url")

    def __init__(self, response: httpx.Response, url: str) -> None:
        self._response = response
        self.url = url

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def reason(self) -> str:
        return self._response.reason_phrase

    def header(self, name: str) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value

    def chunks(self, *, raw: bool = False) -> Iterator[bytes]:
        """The body as it arrives; *raw* skips ``Content-Encoding`` decoding (downloads hash
        the bytes the index published, as pip does)."""
        with translating(self.url):
            yield from self._response.iter_raw() if raw else self._response.iter_bytes()


class Session:
    """The one ``httpx.Client`` (pooled connections, thread-safe) of a network client."""

    def __init__(
        self,
        settings: NetworkSettings,
        transport: httpx.BaseTransport | None,
        user_agent: str,
    ) -> None:
        self._client = httpx.Client(
            transport=transport if transport is not None else _Router(settings),
            timeout=httpx.Timeout(settings.timeout or None),
            follow_redirects=False,  # followed by the client, with credentials per origin
            trust_env=False,
            headers={"User-Agent": user_agent},
        )

    @contextmanager
    def get(self, url: str, headers: Mapping[str, str]) -> Iterator[Reply]:
        """Send ``GET url`` (which carries no credentials; they are in *headers*)."""
        with translating(url):
            request = self._client.build_request("GET", url, headers=headers)
            response = self._client.send(request, stream=True)
        try:
            yield Reply(response, url)
        finally:
            try:
                response.close()
            except httpx.HTTPError:
                pass  # the answer was read or abandoned; a broken close changes nothing

    def close(self) -> None:
        self._client.close()


@contextmanager
def translating(url: str) -> Iterator[None]:
    """The one place httpx errors become stalwart's: :class:`AttemptFailed`, transient or not."""
    shown = redact_url(url)
    try:
        yield
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__.replace("Timeout", "").lower() or "request"
        raise AttemptFailed(shown, f"timed out ({kind})", transient=True) from exc
    except httpx.ProxyError as exc:
        text = redact_url(str(exc))
        # 407: the proxy wants credentials; asking again will not change its mind.
        raise AttemptFailed(shown, f"proxy error: {text}", transient="407" not in text) from exc
    except httpx.ConnectError as exc:
        if _certificate_problem(exc):
            raise AttemptFailed(
                shown,
                f"the server's TLS certificate is not trusted ({_ssl_reason(exc)}). If the index "
                "uses a private CA, pass its bundle with --cert or SSL_CERT_FILE, or install it "
                "in the system trust store",
                transient=False,
            ) from exc
        raise AttemptFailed(shown, f"cannot connect: {_reason(exc)}", transient=True) from exc
    except httpx.RemoteProtocolError as exc:
        # h11 reports a body cut short (fewer bytes than Content-Length, a chunked body that
        # never ended) or a server that closed the connection without answering.
        raise AttemptFailed(
            shown, f"the connection broke off: {_reason(exc)}", transient=True
        ) from exc
    except (httpx.ReadError, httpx.WriteError, httpx.CloseError) as exc:
        raise AttemptFailed(
            shown, f"the connection failed: {_reason(exc)}", transient=True
        ) from exc
    except httpx.DecodingError as exc:
        raise AttemptFailed(shown, f"a damaged body: {_reason(exc)}", transient=True) from exc
    except httpx.UnsupportedProtocol as exc:
        raise AttemptFailed(shown, f"unsupported URL: {_reason(exc)}", transient=False) from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise AttemptFailed(shown, _reason(exc), transient=False) from exc


def _reason(exc: BaseException) -> str:
    return redact_url(str(exc)) or type(exc).__name__


def _certificate_problem(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # the cause chain is short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _ssl_reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError) and seen.verify_message:
            return str(seen.verify_message)
        seen = seen.__cause__ or seen.__context__
    return "certificate verify failed"
