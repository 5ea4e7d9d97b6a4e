"""One project's page of a package index, as JSON (PEP 691) or HTML (PEP 503). Pure.

The page is untrusted: whatever its bytes, :func:`parse_project_page` returns a
:class:`ProjectPage` or raises :class:`~stalwart.errors.IndexPageError`. A page that is readable
but has a few malformed entries keeps the good ones and says in ``notes`` what it skipped and
why, as pip skips links it cannot use. URLs are kept as the index wrote them (credentials
included, the downloader needs them) but every message goes through :func:`redact_url`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from stalwart.errors import IndexPageError
from stalwart.hashnames import CHECKABLE

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from packaging.utils import NormalizedName

__all__ = [
    "ACCEPT",
    "JSON_V1",
    "HTML_V1",
    "IndexFile",
    "ProjectPage",
    "parse_project_page",
    "parse_json_page",
    "parse_html_page",
    "redact_url",
    "redacted_repr",
]

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
# PEP 691 content negotiation: JSON preferred, the versioned HTML next, legacy text/html last.
ACCEPT = f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01"
SUPPORTED_MAJOR = 1
"""The API major version this reader understands (PEP 629 for HTML, PEP 691 for JSON)."""

# Everything between "://" and the last "@" of the same whitespace-free run is userinfo, or
# could be: a password with an unescaped "/" or "@" must not leak either, so this errs on the
# side of hiding a path segment that merely contains "@".
_USERINFO = re.compile(r"(?<=://)\S*@")
_API_VERSION = re.compile(r"(\d{1,9})\.(\d{1,9})")
_ALLOWED_SCHEMES = frozenset(("http", "https", "file"))


def _no_hashes() -> Mapping[str, str]:
    return MappingProxyType({})


def redact_url(url: str) -> str:
    """*url* with any ``user:password@`` replaced by ``***@``, so no message can leak a token.

    Also works on text that merely contains URLs; never raises.
    """
    return _USERINFO.sub("***@", url)


def redacted_repr(value: Any) -> str:
    """The dataclass ``repr()`` of *value* with credentials in its URLs hidden (for logs)."""
    from dataclasses import fields

    shown = ", ".join(f"{f.name}={getattr(value, f.name)!r}" for f in fields(value) if f.repr)
    return redact_url(f"{type(value).__name__}({shown})")


@dataclass(frozen=True, slots=True)
class IndexFile:
    """One file listed on a project page (PEP 503 anchor or PEP 691 ``files`` entry).

    ``yanked`` is ``None`` for a file that is not yanked, else the reason (maybe ``""``);
    ``core_metadata`` is ``None`` when the index says nothing, a bool, or the metadata file's
    hashes (PEP 658 / PEP 714).
    """

    filename: str
    url: str
    hashes: Mapping[str, str] = field(default_factory=_no_hashes, hash=False)
    requires_python: str | None = None
    yanked: str | None = None
    core_metadata: Mapping[str, str] | bool | None = field(default=None, hash=False)
    size: int | None = None
    upload_time: datetime | None = None

    @property
    def is_yanked(self) -> bool:
        return self.yanked is not None

    def __repr__(self) -> str:
        return f"IndexFile({self.filename!r}, {redact_url(self.url)!r})"


@dataclass(frozen=True, slots=True)
class ProjectPage:
    """A parsed project page. ``versions`` is set by JSON pages of API 1.1+ (PEP 700)."""

    name: NormalizedName | None
    url: str
    files: tuple[IndexFile, ...]
    versions: tuple[str, ...] | None = None
    api_version: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return redacted_repr(self)


def parse_project_page(body: bytes, content_type: str, url: str) -> ProjectPage:
    """Parse *body*, fetched from *url*, according to its ``Content-Type`` header.

    The answer to :data:`ACCEPT`: the versioned JSON or HTML types of PEP 691, or the legacy
    ``text/html`` of PEP 503. Any other type is refused rather than guessed at.
    """
    media_type, params = _split_content_type(content_type)
    if media_type in (JSON_V1, "application/vnd.pypi.simple.latest+json"):
        return parse_json_page(body, url)
    if media_type in (HTML_V1, "text/html", "application/vnd.pypi.simple.latest+html"):
        return parse_html_page(body, url, charset=params.get("charset", "utf-8"))
    shown = media_type or "none"
    if media_type.startswith("application/vnd.pypi.simple."):
        problem = f"the index answered with API format {shown}; stalwart reads version 1"
    else:
        problem = f"the index answered with Content-Type {shown}, not a simple-API page"
    raise IndexPageError(problem, subject=redact_url(url))


def _split_content_type(value: str) -> tuple[str, dict[str, str]]:
    media_type, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, sep, val = item.partition("=")
        if sep:
            params[key.strip().lower()] = val.strip().strip('"').strip()
    return media_type.strip().lower(), params


# -- JSON (PEP 691) -------------------------------------------------------------------------------


def parse_json_page(body: bytes, url: str) -> ProjectPage:
    """Parse a PEP 691 JSON project page fetched from *url*."""
    import json

    subject = redact_url(url)
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # JSON text exchanged between systems is UTF-8 (RFC 8259 section 8.1). A hostile page
        # nested deeply enough overflows the parser's recursion, which is no crash of ours.
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise IndexPageError(f"not a valid JSON page: {reason}", subject=subject) from None
    if not isinstance(data, dict):
        raise IndexPageError("a JSON project page must be an object", subject=subject)
    meta = data.get("meta")
    raw_version = meta.get("api-version") if isinstance(meta, dict) else None
    if not isinstance(raw_version, str):
        raise IndexPageError("the JSON page has no meta.api-version (PEP 691)", subject=subject)
    api_version = _check_api_version(raw_version, subject)
    files_data = data.get("files")
    if not isinstance(files_data, list):
        raise IndexPageError("the JSON page has no 'files' list (PEP 691)", subject=subject)
    base = _Base(url, subject)
    files: list[IndexFile] = []
    notes: list[str] = []
    for index, entry in enumerate(files_data):
        try:
            files.append(_json_file(entry, base))
        except _Skip as skip:
            notes.append(f"files[{index}] skipped: {skip}")
    versions = _json_versions(data.get("versions"), notes)
    name = data.get("name")
    return ProjectPage(
        name=_canonical(name) if isinstance(name, str) else _name_from_url(url),
        url=url,
        files=tuple(files),
        versions=versions,
        api_version=api_version,
        notes=tuple(notes),
    )


def _check_api_version(raw: str, subject: str) -> tuple[int, int]:
    match = _API_VERSION.fullmatch(raw.strip())
    if match is None:
        raise IndexPageError(f"the API version {raw!r} is not MAJOR.MINOR", subject=subject)
    major, minor = int(match[1]), int(match[2])
    # PEP 629: a major version the client does not know MUST fail; a newer minor is fine.
    if major != SUPPORTED_MAJOR:
        raise IndexPageError(
            f"the index speaks simple API version {major}.{minor}; stalwart reads "
            f"{SUPPORTED_MAJOR}.x",
            subject=subject,
        )
    return major, minor


def _json_versions(value: object, notes: list[str]) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    notes.append("'versions' ignored: not a list of strings (PEP 700)")
    return None


class _Skip(Exception):
    """One entry of a page cannot be used; the page as a whole still can."""


def _json_file(entry: object, base: _Base) -> IndexFile:
    if not isinstance(entry, dict):
        raise _Skip("not an object")
    filename = entry.get("filename")
    if not isinstance(filename, str):
        raise _Skip("no 'filename' string")
    _check_filename(filename)
    raw_url = entry.get("url")
    if not isinstance(raw_url, str):
        raise _Skip(f"{filename}: no 'url' string")
    url, fragment_hashes = base.resolve(raw_url)
    hashes = _json_hashes(entry.get("hashes", {}), filename)
    requires_python = entry.get("requires-python")
    if requires_python is not None and not isinstance(requires_python, str):
        raise _Skip(f"{filename}: 'requires-python' is not a string")
    yanked = entry.get("yanked", False)
    if not isinstance(yanked, bool | str):
        raise _Skip(f"{filename}: 'yanked' is neither a boolean nor a string")
    # PEP 714 renamed dist-info-metadata to core-metadata; the old key is read only when the
    # new one is absent, as the PEP asks of clients.
    raw_meta = entry.get("core-metadata", entry.get("dist-info-metadata"))
    size = entry.get("size")
    return IndexFile(
        filename=filename,
        url=url,
        hashes=MappingProxyType(hashes or fragment_hashes),
        requires_python=requires_python,
        # PEP 592 via PEP 691: true, or a string holding the reason.
        yanked=(yanked if isinstance(yanked, str) else "") if yanked is not False else None,
        core_metadata=_json_core_metadata(raw_meta, filename),
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=_parse_time(entry.get("upload-time")),
    )


def _json_hashes(value: object, filename: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _Skip(f"{filename}: 'hashes' is not an object")
    hashes: dict[str, str] = {}
    for algorithm, digest in value.items():
        if not isinstance(digest, str):
            raise _Skip(f"{filename}: the {algorithm} hash is not a string")
        # Kept even when malformed: a bad digest must fail verification later, loudly, rather
        # than silently turn into "no hash".
        hashes[algorithm.lower()] = digest.lower()
    return hashes


def _json_core_metadata(value: object, filename: str) -> Mapping[str, str] | bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict):
        return MappingProxyType(_json_hashes(value, filename)) if value else True
    raise _Skip(f"{filename}: 'core-metadata' is neither a boolean nor an object")


def _parse_time(value: object) -> datetime | None:
    """PEP 700 ``upload-time``: ISO 8601 in UTC; anything unreadable is ignored (informative)."""
    if not isinstance(value, str):
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# -- HTML (PEP 503) -------------------------------------------------------------------------------


def parse_html_page(body: bytes, url: str, *, charset: str = "utf-8") -> ProjectPage:
    """Parse a PEP 503 HTML project page fetched from *url*, decoded with *charset*."""
    subject = redact_url(url)
    try:
        # Undecodable bytes only spoil the link they sit in, as in pip (which decodes leniently).
        text = body.decode(charset, errors="replace")
    except LookupError:
        raise IndexPageError(f"unknown charset {charset!r}", subject=subject) from None
    except ValueError as exc:  # UnicodeError: a codec (idna) that cannot replace
        raise IndexPageError(f"cannot decode as {charset}: {exc}", subject=subject) from None
    try:
        collector = _collect(text)
    except (AssertionError, ValueError, IndexError, TypeError) as exc:
        # html.parser is lenient but not total: some malformed declarations ("<![x[") make
        # _markupbase raise AssertionError on Python 3.10+.
        raise IndexPageError(f"not a readable HTML page: {exc}", subject=subject) from None
    api_version = None
    if collector.repository_version is not None:
        api_version = _check_api_version(collector.repository_version, subject)
    notes: list[str] = []
    base = _Base(url, subject)
    if collector.base_href is not None:
        try:
            base.set_base_href(collector.base_href)
        except _Skip as skip:
            notes.append(f"<base> ignored: {skip}")
    files: list[IndexFile] = []
    for line, attrs in collector.anchors:
        try:
            files.append(_html_file(attrs, base))
        except _Skip as skip:
            notes.append(f"link on line {line} skipped: {skip}")
    return ProjectPage(
        name=_name_from_url(url),
        url=url,
        files=tuple(files),
        api_version=api_version,
        notes=tuple(notes),
    )


class _Tags:
    """What a page's tags say: ``<a>`` attributes, the first ``<base href>``, the PEP 629 meta."""

    __slots__ = ("anchors", "base_href", "repository_version")

    def __init__(self) -> None:
        self.anchors: list[tuple[int, dict[str, str | None]]] = []
        self.base_href: str | None = None
        self.repository_version: str | None = None

    def start(self, tag: str, attrs: list[tuple[str, str | None]], line: int) -> None:
        if tag not in ("a", "base", "meta"):
            return
        found: dict[str, str | None] = {}
        for key, value in attrs:
            found.setdefault(key, value)  # HTML: the first of repeated attributes wins
        if tag == "a":
            self.anchors.append((line, found))
        elif tag == "base":
            # HTML: only the first <base> with an href sets the document base URL.
            if self.base_href is None and found.get("href") is not None:
                self.base_href = found["href"]
        elif found.get("name") == "pypi:repository-version" and self.repository_version is None:
            self.repository_version = found.get("content") or ""


def _collect(text: str) -> _Tags:
    # html.parser and html.entities cost milliseconds to import; only HTML pages pay for them.
    from html.parser import HTMLParser

    tags = _Tags()

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.start(tag, attrs, self.getpos()[0])

    # convert_charrefs: attribute values and text arrive with entities already decoded.
    parser = Parser(convert_charrefs=True)
    parser.feed(text)
    parser.close()
    return tags


def _html_file(attrs: Mapping[str, str | None], base: _Base) -> IndexFile:
    href = attrs.get("href")
    if not href or not href.strip():
        raise _Skip("no href")
    url, hashes = base.resolve(href.strip())
    from urllib.parse import unquote, urlsplit

    # pip names the file after the URL's last path segment; PEP 503 says the anchor text
    # MUST match it, so the two only differ on a broken page, where the URL is what we fetch.
    filename = unquote(urlsplit(url).path.rpartition("/")[2])
    _check_filename(filename)
    # PEP 714: data-core-metadata first, the PEP 658 name only as a fallback.
    meta_key = "data-core-metadata" if "data-core-metadata" in attrs else "data-dist-info-metadata"
    # PEP 592: the attribute's presence means yanked; its value, if any, is the reason.
    yanked = (attrs["data-yanked"] or "") if "data-yanked" in attrs else None
    return IndexFile(
        filename=filename,
        url=url,
        hashes=MappingProxyType(hashes),
        # PEP 503: the value is HTML-encoded (">=3.8" arrives as "&gt;=3.8"); the parser has
        # decoded it already.
        requires_python=attrs.get("data-requires-python"),
        yanked=yanked,
        core_metadata=_html_core_metadata(attrs[meta_key]) if meta_key in attrs else None,
    )


def _html_core_metadata(value: str | None) -> Mapping[str, str] | bool:
    """PEP 658: ``true``, or ``<hashname>=<hex>``; an attribute without a value means present."""
    if value is None:
        return True
    text = value.strip()
    if text.lower() == "false":
        return False
    algorithm, sep, digest = text.partition("=")
    if sep and algorithm.lower() in CHECKABLE and digest:
        return MappingProxyType({algorithm.lower(): digest.lower()})
    return True


# -- shared ---------------------------------------------------------------------------------------


class _Base:
    """Resolves links against the page URL (and its ``<base href>``), checking their scheme."""

    __slots__ = ("_base", "_local_page")

    def __init__(self, page_url: str, subject: str) -> None:
        from urllib.parse import urlsplit

        try:
            scheme = urlsplit(page_url).scheme.lower()
        except ValueError as exc:
            raise IndexPageError(f"the page URL is not valid: {exc}", subject=subject) from None
        if not scheme:
            raise IndexPageError("the page URL is not absolute", subject=subject)
        self._local_page = scheme == "file"
        self._base = page_url

    def set_base_href(self, href: str) -> None:
        """Resolve links against ``<base href>`` from now on (itself relative to the page)."""
        from urllib.parse import urljoin

        try:
            self._base = urljoin(self._base, href.strip())
        except ValueError as exc:
            raise _Skip(f"{redact_url(href)!r}: {exc}") from None

    def resolve(self, link: str) -> tuple[str, dict[str, str]]:
        """The absolute URL without its fragment, and the hash the fragment names, if any."""
        from urllib.parse import urldefrag, urljoin, urlsplit

        try:
            absolute, fragment = urldefrag(urljoin(self._base, link))
            scheme = urlsplit(absolute).scheme.lower()
        except ValueError as exc:
            raise _Skip(f"{redact_url(link)!r}: {exc}") from None
        if scheme not in _ALLOWED_SCHEMES:
            raise _Skip(f"{redact_url(link)!r}: scheme {scheme or 'none'!r} is not http(s)")
        if scheme == "file" and not self._local_page:
            # A remote index must not send us to read files on this machine.
            raise _Skip(f"{redact_url(link)!r}: a remote page cannot link to a local file")
        hashes: dict[str, str] = {}
        algorithm, sep, digest = fragment.partition("=")
        if sep and algorithm.lower() in CHECKABLE and digest:
            # PEP 503: "#<hashname>=<hashvalue>" on the URL is the file's hash.
            hashes[algorithm.lower()] = digest.partition("&")[0].lower()
        return absolute, hashes


def _check_filename(filename: str) -> None:
    # The filename will name a file in a cache or download directory: nothing that could
    # walk out of it, or hide a control character in a message.
    if not filename or filename in (".", ".."):
        raise _Skip(f"empty file name {filename!r}")
    if any(c in filename for c in "/\\") or not filename.isprintable():
        raise _Skip(f"unsafe file name {filename!r}")


def _canonical(name: str) -> NormalizedName:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _name_from_url(url: str) -> NormalizedName | None:
    """PEP 503 pages live at ``<index>/<normalized name>/``: the last non-empty path segment."""
    from urllib.parse import unquote, urlsplit

    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    segment = unquote(path.rstrip("/").rpartition("/")[2])
    return _canonical(segment) if segment else None
