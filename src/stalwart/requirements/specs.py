"""What a user types to name something to install, parsed into one of three kinds. Pure.

- :class:`NamedRequirement`: a PEP 508 requirement resolved against an index
  (``httpx[http2]>=0.27; python_version >= "3.9"``);
- :class:`DirectReference`: a wheel at a URL, ``name @ https://.../x.whl`` (PEP 508 / PEP 440
  direct references) or the bare URL, with the name taken from the wheel's filename;
- :class:`LocalWheel`: a path to a ``.whl`` file, optionally followed by ``[extras]`` and
  ``; marker`` as pip accepts them.

Nothing here touches the disk: whether a path exists is the caller's question. Anything that
would need building (sdists, directories, VCS URLs) is refused now, with a message saying so,
rather than later with a confusing one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from stalwart.errors import InvalidRequirementError
from stalwart.index.simple import redact_url, redacted_repr

if TYPE_CHECKING:
    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.utils import NormalizedName
    from packaging.version import Version

__all__ = [
    "NamedRequirement",
    "DirectReference",
    "LocalWheel",
    "Spec",
    "parse_spec",
    "MAX_SPEC_CHARS",
]

MAX_SPEC_CHARS = 65536
"""Longest requirement text accepted; PEP 508 parsing of megabytes would only waste time."""

# "scheme:/" as a URL starts; a scheme has two letters or more, so a Windows drive ("C:/x")
# is not one.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")
_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_SOURCE_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar")
# pip splits "path[extra1,extra2]" at a trailing bracket group.
_EXTRAS_SUFFIX = re.compile(r"(.+)(\[[^\[\]]*\])")
_NO_BUILD = "building from source is not supported yet; give a wheel (.whl)"


@dataclass(frozen=True, slots=True)
class NamedRequirement:
    """A requirement by name and version specifier, to be found on an index."""

    requirement: Requirement
    text: str = field(compare=False)

    @property
    def name(self) -> NormalizedName:
        from packaging.utils import canonicalize_name

        return canonicalize_name(self.requirement.name)

    @property
    def extras(self) -> frozenset[NormalizedName]:
        return _normalized_extras(self.requirement.extras)

    @property
    def marker(self) -> Marker | None:
        return self.requirement.marker

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class DirectReference:
    """A wheel at a URL (``https``, ``http`` or ``file``); ``version`` is the filename's.

    ``url`` keeps any credentials (the download needs them); ``str()`` and ``repr()`` hide them.
    """

    name: NormalizedName
    url: str
    filename: str
    version: Version
    extras: frozenset[NormalizedName] = frozenset()
    marker: Marker | None = None
    text: str = field(default="", compare=False, repr=False)

    def __str__(self) -> str:
        return redact_url(self.text or self.url)

    def __repr__(self) -> str:
        return redacted_repr(self)


@dataclass(frozen=True, slots=True)
class LocalWheel:
    """A wheel file on this machine; ``path`` is absolute and normalized, not checked."""

    path: str
    name: NormalizedName
    version: Version
    extras: frozenset[NormalizedName] = frozenset()
    marker: Marker | None = None
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text or self.path


Spec: TypeAlias = NamedRequirement | DirectReference | LocalWheel


def parse_spec(text: str, *, base_dir: str) -> Spec:
    """Parse what the user typed; relative wheel paths are taken against *base_dir*.

    Raises :class:`~stalwart.errors.InvalidRequirementError` naming the text and the rule it
    breaks.
    """
    stripped = text.strip()
    subject = _subject(stripped)
    if not stripped:
        raise InvalidRequirementError("an empty requirement", subject=None)
    if len(stripped) > MAX_SPEC_CHARS:
        raise InvalidRequirementError(
            f"longer than {MAX_SPEC_CHARS} characters ({len(stripped)})", subject=subject
        )
    if not stripped.replace("\t", " ").isprintable():
        raise InvalidRequirementError("contains control characters", subject=subject)
    if _URL.match(stripped):
        return _bare_url(stripped, subject)
    if _looks_like_path(stripped):
        return _local_path(stripped, subject, base_dir)
    return _pep508(stripped, subject)


def _subject(text: str) -> str:
    return repr(redact_url(text))


def _looks_like_path(text: str) -> bool:
    """As pip decides: a separator, a leading dot, or an archive's extension makes a path.

    Project names cannot contain "/" or start with ".", but ``foo-1.0.tar.gz`` is a valid
    name too, so the extension decides for filenames without a directory part.
    """
    head = _strip_extras(text.partition(";")[0].strip())[0]
    before_at, at, _url = head.partition("@")
    if at and not _path_like(before_at.strip()):
        return False  # "name @ url" (PEP 508), as pip decides too
    return _path_like(head) or head.lower().endswith((".whl", *_SOURCE_SUFFIXES))


def _path_like(text: str) -> bool:
    seps = "/" + os.sep + (os.altsep or "")
    return text.startswith(".") or any(sep in text for sep in seps)


def _strip_extras(text: str) -> tuple[str, str | None]:
    match = _EXTRAS_SUFFIX.fullmatch(text)
    return (match[1], match[2]) if match else (text, None)


def _local_path(text: str, subject: str, base_dir: str) -> LocalWheel:
    # pip splits a path from its marker at the first ";" (URLs need "; ", see _bare_url).
    path_part, sep, marker_text = text.partition(";")
    marker = _marker(marker_text, subject) if sep else None
    path_text, extras_text = _strip_extras(path_part.strip())
    extras = _extras(extras_text, subject) if extras_text else frozenset()
    filename = os.path.basename(path_text)
    if not filename.endswith(".whl"):
        if filename.lower().endswith(_SOURCE_SUFFIXES) or path_text.endswith(("/", os.sep)):
            raise InvalidRequirementError(
                f"a source distribution or directory: {_NO_BUILD}",
                subject=subject,
            )
        raise InvalidRequirementError(
            "a path, but not to a wheel (.whl); a project name cannot contain '/' or start "
            "with '.'",
            subject=subject,
        )
    name, version = _wheel_name(filename, subject)
    path = os.path.abspath(os.path.join(base_dir, path_text))
    return LocalWheel(path, name, version, extras, marker, text)


def _bare_url(text: str, subject: str) -> DirectReference:
    # pip: a URL may itself contain ";", so only "; " (with whitespace) starts its marker.
    match = re.search(r";\s", text)
    url, marker = (text[: match.start()].strip(), text[match.end() :]) if match else (text, None)
    parsed_marker = _marker(marker, subject) if marker is not None else None
    filename = _check_url(url, subject)
    name, version = _wheel_name(filename, subject)
    return DirectReference(name, url, filename, version, frozenset(), parsed_marker, text)


def _pep508(text: str, subject: str) -> NamedRequirement | DirectReference:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise InvalidRequirementError(
            f"not a valid requirement (PEP 508): {redact_url(str(exc))}", subject=subject
        ) from None
    except RecursionError:  # deeply parenthesised markers
        raise InvalidRequirementError("the marker is nested too deeply", subject=subject) from None
    if requirement.url is None:
        return NamedRequirement(requirement, text)
    filename = _check_url(requirement.url, subject)
    name, version = _wheel_name(filename, subject)
    if name != canonicalize_name(requirement.name):
        # pip refuses this too: the name promised and the wheel delivered must agree.
        raise InvalidRequirementError(
            f"the URL is a wheel of {name}, not of {requirement.name}", subject=subject
        )
    return DirectReference(
        name,
        requirement.url,
        filename,
        version,
        _normalized_extras(requirement.extras),
        requirement.marker,
        text,
    )


def _check_url(url: str, subject: str) -> str:
    """The wheel filename a direct URL ends with; anything that would need building is refused."""
    from urllib.parse import unquote, urlsplit

    if url.lower().startswith(_VCS_PREFIXES):
        raise InvalidRequirementError(f"a version control URL: {_NO_BUILD}", subject=subject)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidRequirementError(f"not a valid URL: {exc}", subject=subject) from None
    if not parts.scheme:
        raise InvalidRequirementError(
            "a direct reference needs an absolute URL (PEP 508); for a wheel on this machine "
            "give its path alone",
            subject=subject,
        )
    if parts.scheme.lower() not in ("https", "http", "file"):
        raise InvalidRequirementError(
            f"URL scheme {parts.scheme!r} is not supported (https, http or file)", subject=subject
        )
    if parts.scheme.lower() != "file" and not parts.hostname:
        raise InvalidRequirementError("the URL names no host", subject=subject)
    filename = unquote(parts.path.rpartition("/")[2])
    if not filename.endswith(".whl"):
        raise InvalidRequirementError(
            f"the URL does not end with a wheel filename (.whl): {_NO_BUILD}", subject=subject
        )
    return filename


def _wheel_name(filename: str, subject: str) -> tuple[NormalizedName, Version]:
    from packaging.utils import InvalidWheelFilename
    from packaging.version import InvalidVersion

    from stalwart.index.candidates import parse_wheel_name

    try:
        name, version, _build, _tags = parse_wheel_name(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise InvalidRequirementError(
            f"invalid wheel filename {filename!r}: {exc}", subject=subject
        ) from None
    return name, version


def _marker(text: str, subject: str) -> Marker:
    from packaging.markers import InvalidMarker, Marker

    try:
        return Marker(text.strip())
    except InvalidMarker as exc:
        raise InvalidRequirementError(
            f"not a valid environment marker (PEP 508): {exc}", subject=subject
        ) from None
    except RecursionError:
        raise InvalidRequirementError("the marker is nested too deeply", subject=subject) from None


def _extras(text: str, subject: str) -> frozenset[NormalizedName]:
    """``[a, b]`` after a path, checked by the PEP 508 grammar on a placeholder name."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return _normalized_extras(Requirement(f"placeholder{text}").extras)
    except InvalidRequirement as exc:
        raise InvalidRequirementError(f"invalid extras {text}: {exc}", subject=subject) from None


def _normalized_extras(extras: set[str]) -> frozenset[NormalizedName]:
    # PEP 685: extras compare by their normalized names.
    from packaging.utils import canonicalize_name

    return frozenset(canonicalize_name(e) for e in extras)
