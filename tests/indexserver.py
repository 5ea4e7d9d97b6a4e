"""A real package index on 127.0.0.1 for tests: PEP 503 HTML, PEP 691 JSON, PEP 658 metadata.

``serve_index(wheels)`` starts a :class:`http.server.ThreadingHTTPServer` on a random loopback
port in a thread and serves:

- ``/simple/``                 the project list (HTML, or JSON when the client prefers it);
- ``/simple/<name>/``          a project page, content-negotiated (PEP 691): JSON when ``json``
                               and the ``Accept`` header ranks JSON at least as high as HTML,
                               else HTML (404 if ``html=False`` and JSON is not acceptable ->
                               406). A name that is not normalized is redirected (301), as PyPI
                               does;
- ``/files/<filename>``        the files, linked with ``#sha256=`` (HTML) or ``hashes`` (JSON),
                               relative to the page (``../../files/...``);
- ``/files/<filename>.metadata``  a wheel's METADATA (PEP 658/714), announced with
                               ``data-core-metadata`` and ``data-dist-info-metadata`` (HTML) or
                               ``core-metadata`` and ``dist-info-metadata`` (JSON) when
                               ``metadata``.

Every answer carries ``ETag`` and ``Last-Modified`` and honours ``If-None-Match`` /
``If-Modified-Since`` with 304; ``cache_control`` (settable) adds a ``Cache-Control`` header.
With ``auth``, every request needs that basic-auth user and password (401 otherwise).
``requests`` logs every request as ``(method, path, headers)`` (header names lower-case), so a
test can assert what was fetched. ``inject(path, Fault(...))`` makes the next requests to a path
fail (a status, or a connection dropped mid-body); ``redirect(path, location)`` adds a redirect.

Also usable over TLS: pass an ``ssl.SSLContext`` (e.g. from ``trustme``) as ``tls``.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import html
import json
import ssl
import threading
import urllib.parse
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

__all__ = ["serve_index", "IndexServer", "LoggedRequest", "Fault", "IndexedFile"]

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
LAST_MODIFIED = "Wed, 01 Jan 2020 00:00:00 GMT"


class LoggedRequest(NamedTuple):
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Fault:
    """How the next request to a path goes wrong.

    With *status*, the server answers it (with *headers* and *body*) instead of the real
    answer. With *drop_after*, it sends the real headers (full ``Content-Length``), then only
    that many body bytes, then closes the connection.
    """

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop_after: int | None = None


@dataclass(frozen=True)
class IndexedFile:
    """A file the index serves."""

    filename: str
    project: str
    version: str
    data: bytes
    sha256: str
    metadata: bytes | None
    yanked: str | None
    requires_python: str | None

    @property
    def metadata_sha256(self) -> str | None:
        return hashlib.sha256(self.metadata).hexdigest() if self.metadata is not None else None


def _wheel_metadata(data: bytes, filename: str) -> bytes:
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            top, _, rest = name.partition("/")
            if top.endswith(".dist-info") and rest == "METADATA":
                return archive.read(name)
    raise ValueError(f"{filename} has no .dist-info/METADATA")


class IndexServer:
    """A running test index; see the module docstring. Use as a context manager."""

    def __init__(
        self,
        files: Iterable[IndexedFile],
        *,
        html: bool,
        json: bool,
        metadata: bool,
        auth: tuple[str, str] | None,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.files: dict[str, IndexedFile] = {f.filename: f for f in files}
        self.projects: dict[str, list[IndexedFile]] = {}
        for f in self.files.values():
            self.projects.setdefault(f.project, []).append(f)
        self.html = html
        self.json = json
        self.metadata = metadata
        self.auth = auth
        self.cache_control: str | None = None
        self.requests: list[LoggedRequest] = []
        self._faults: dict[str, list[Fault]] = {}
        self._redirects: dict[str, str] = {}
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.index = self
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        host, port = self._httpd.server_address[:2]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://{host}:{port}"
        self.index_url = f"{self.url}/simple/"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # -- for tests ---------------------------------------------------------------------------

    def project_url(self, name: str) -> str:
        return f"{self.index_url}{canonicalize_name(name)}/"

    def file_url(self, filename: str) -> str:
        return f"{self.url}/files/{urllib.parse.quote(filename)}"

    def with_credentials(self, url: str, user: str, password: str) -> str:
        """*url* with ``user:password@`` written into it (percent-encoded)."""
        scheme, _, rest = url.partition("://")
        quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
        return f"{scheme}://{quoted}@{rest}"

    def inject(self, path: str, *faults: Fault) -> None:
        """The next requests to *path* (one per fault) go wrong as the faults say."""
        with self._lock:
            self._faults.setdefault(path, []).extend(faults)

    def redirect(self, path: str, location: str) -> None:
        """Answer requests to *path* with ``302 Location: location``."""
        with self._lock:
            self._redirects[path] = location

    def paths(self, prefix: str = "/") -> list[str]:
        """Paths of the requests so far that start with *prefix*, in order."""
        return [r.path for r in self.requests if r.path.startswith(prefix)]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- used by the handler -----------------------------------------------------------------

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            return queue.pop(0) if queue else None

    def _redirect_for(self, path: str) -> str | None:
        with self._lock:
            return self._redirects.get(path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    index: IndexServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (on purpose, in tests) are not errors worth printing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body then waits for
    # the client's delayed ACK (40 ms on Linux) on every response of a kept-alive connection,
    # which no real index server does (nginx, gunicorn and the CDNs set TCP_NODELAY).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        index = self.server.index
        path = urllib.parse.urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        index.requests.append(LoggedRequest("GET", path, headers))
        if index.auth is not None and not self._authorized(index.auth):
            self._send(
                401, b"login required", "text/plain", {"WWW-Authenticate": 'Basic realm="x"'}
            )
            return
        fault = index._next_fault(path)
        if fault is not None and fault.status is not None:
            self._send(fault.status, fault.body, "text/plain", dict(fault.headers))
            return
        location = index._redirect_for(path)
        if location is not None:
            self._send(302, b"", "text/plain", {"Location": location})
            return
        self._route(index, path, fault)

    def _authorized(self, auth: tuple[str, str]) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except ValueError:
            return False
        return decoded == f"{auth[0]}:{auth[1]}"

    def _route(self, index: IndexServer, path: str, fault: Fault | None) -> None:
        parts = [urllib.parse.unquote(p) for p in path.split("/")]
        if path == "/simple/":
            self._negotiated(index, self._root_html(index), self._root_json(index), fault)
        elif len(parts) == 3 and parts[1] == "simple" and parts[2]:
            self._send(301, b"", "text/plain", {"Location": f"{path}/"})
        elif len(parts) == 4 and parts[1] == "simple" and parts[3] == "":
            name = parts[2]
            normalized = canonicalize_name(name)
            if name != normalized:
                self._send(301, b"", "text/plain", {"Location": f"/simple/{normalized}/"})
            elif normalized not in index.projects:
                self._send(404, b"no such project", "text/plain")
            else:
                files = index.projects[normalized]
                html_page = self._project_html(index, normalized, files)
                json_page = self._project_json(index, normalized, files)
                self._negotiated(index, html_page, json_page, fault)
        elif len(parts) == 3 and parts[1] == "files":
            self._file(index, parts[2], fault)
        else:
            self._send(404, b"not found", "text/plain")

    def _file(self, index: IndexServer, name: str, fault: Fault | None) -> None:
        if name.endswith(".metadata") and index.metadata:
            target = index.files.get(name.removesuffix(".metadata"))
            if target is not None and target.metadata is not None:
                self._cacheable(target.metadata, "application/octet-stream", fault)
                return
        found = index.files.get(name)
        if found is None:
            self._send(404, b"no such file", "text/plain")
            return
        self._cacheable(found.data, "application/octet-stream", fault)

    # -- negotiation and pages -----------------------------------------------------------------

    def _negotiated(
        self, index: IndexServer, html_page: bytes, json_page: bytes, fault: Fault | None
    ) -> None:
        json_q, html_q = _preferences(self.headers.get("Accept"))
        if index.json and json_q > 0 and (json_q >= html_q or not index.html):
            self._cacheable(json_page, JSON_V1, fault, vary=True)
        elif index.html and html_q > 0:
            versioned = HTML_V1 in (self.headers.get("Accept") or "")
            content_type = HTML_V1 if versioned else "text/html; charset=utf-8"
            self._cacheable(html_page, content_type, fault, vary=True)
        else:
            self._send(406, b"not acceptable", "text/plain")

    @staticmethod
    def _root_html(index: IndexServer) -> bytes:
        links = "".join(f'<a href="{name}/">{name}</a><br/>\n' for name in sorted(index.projects))
        return _html_doc("Simple index", links)

    @staticmethod
    def _root_json(index: IndexServer) -> bytes:
        projects = [{"name": name} for name in sorted(index.projects)]
        return json.dumps({"meta": {"api-version": "1.1"}, "projects": projects}).encode()

    @staticmethod
    def _project_html(index: IndexServer, name: str, files: list[IndexedFile]) -> bytes:
        links = []
        for f in files:
            href = f"../../files/{urllib.parse.quote(f.filename)}#sha256={f.sha256}"
            attrs = [f'href="{html.escape(href)}"']
            if f.requires_python is not None:
                attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
            if f.yanked is not None:
                attrs.append(f'data-yanked="{html.escape(f.yanked)}"')
            if index.metadata and f.metadata_sha256 is not None:
                value = f"sha256={f.metadata_sha256}"
                attrs.append(f'data-core-metadata="{value}"')
                attrs.append(f'data-dist-info-metadata="{value}"')
            links.append(f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br/>\n")
        return _html_doc(f"Links for {name}", "".join(links))

    @staticmethod
    def _project_json(index: IndexServer, name: str, files: list[IndexedFile]) -> bytes:
        entries: list[dict[str, Any]] = []
        for f in files:
            entry: dict[str, Any] = {
                "filename": f.filename,
                "url": f"../../files/{urllib.parse.quote(f.filename)}",
                "hashes": {"sha256": f.sha256},
                "size": len(f.data),
                "upload-time": "2020-01-01T00:00:00.000000Z",
            }
            if f.requires_python is not None:
                entry["requires-python"] = f.requires_python
            if f.yanked is not None:
                entry["yanked"] = f.yanked or True
            if index.metadata and f.metadata_sha256 is not None:
                entry["core-metadata"] = {"sha256": f.metadata_sha256}
                entry["dist-info-metadata"] = {"sha256": f.metadata_sha256}
            entries.append(entry)
        versions = sorted({f.version for f in files})
        page = {
            "meta": {"api-version": "1.1"},
            "name": name,
            "versions": versions,
            "files": entries,
        }
        return json.dumps(page).encode()

    # -- sending -------------------------------------------------------------------------------

    def _cacheable(
        self, body: bytes, content_type: str, fault: Fault | None, *, vary: bool = False
    ) -> None:
        """Answer with validators, or 304 when the client's copy is current (RFC 9110 13.1)."""
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        extra = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        if vary:
            extra["Vary"] = "Accept"
        cache_control = self.server.index.cache_control
        if cache_control is not None:
            extra["Cache-Control"] = cache_control
        if self._not_modified(etag):
            self._send(304, b"", None, extra)
            return
        drop = fault.drop_after if fault is not None else None
        self._send(200, body, content_type, extra, drop_after=drop)

    def _not_modified(self, etag: str) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
            return "*" in tags or etag in tags
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return when >= email.utils.parsedate_to_datetime(LAST_MODIFIED)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: Mapping[str, str] | None = None,
        *,
        drop_after: int | None = None,
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if status == 304:
            return
        if drop_after is not None:
            self.wfile.write(body[:drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


def _html_doc(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html><head>"
        '<meta name="pypi:repository-version" content="1.1">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"{body}</body></html>\n"
    ).encode()


def _preferences(accept: str | None) -> tuple[float, float]:
    """The q-values (RFC 9110 section 12.5.1) the client gives JSON and HTML pages."""
    if not accept:
        return 0.0, 1.0  # no Accept header: a legacy client, which reads HTML
    json_q = html_q = 0.0
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in (JSON_V1, "application/vnd.pypi.simple.latest+json"):
            json_q = max(json_q, q)
        elif media in (HTML_V1, "text/html", "application/vnd.pypi.simple.latest+html", "*/*"):
            html_q = max(html_q, q)
    return json_q, html_q


def serve_index(
    wheels: Iterable[Path],
    *,
    html: bool = True,
    json: bool = True,
    metadata: bool = True,
    yanked: Mapping[str, str] | None = None,
    requires_python: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    sdists: Iterable[Path] = (),
    tls: ssl.SSLContext | None = None,
) -> IndexServer:
    """Start an index serving *wheels* and *sdists* (paths to real files).

    *yanked* maps a file name to its yank reason (``""`` for none given, PEP 592);
    *requires_python* maps a file name to its ``Requires-Python``.
    """
    yanked = yanked or {}
    requires_python = requires_python or {}
    files: list[IndexedFile] = []
    for path in wheels:
        data = path.read_bytes()
        name, version, _build, _tags = parse_wheel_filename(path.name)
        files.append(
            IndexedFile(
                filename=path.name,
                project=name,
                version=str(version),
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
                metadata=_wheel_metadata(data, path.name),
                yanked=yanked.get(path.name),
                requires_python=requires_python.get(path.name),
            )
        )
    for path in sdists:
        data = path.read_bytes()
        name, version = parse_sdist_filename(path.name)
        files.append(
            IndexedFile(
                filename=path.name,
                project=name,
                version=str(version),
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
                metadata=None,
                yanked=yanked.get(path.name),
                requires_python=requires_python.get(path.name),
            )
        )
    return IndexServer(files, html=html, json=json, metadata=metadata, auth=auth, tls=tls)
