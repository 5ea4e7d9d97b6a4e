"""What a candidate depends on: its core metadata, read without installing it.

From the index's PEP 658/714 ``.metadata`` file when it offers one (no wheel download just to
read METADATA), else from the wheel itself (downloaded into the cache, where the install finds
it again), or from an installed distribution's ``.dist-info``. Third-party metadata is read
leniently: an unparsable ``Requires-Dist`` is skipped with a note, as pip does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from stalwart.wheel.headers import parse_headers

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = ["CoreMetadata", "parse_metadata", "read_wheel_metadata", "MetadataFetcher"]

MAX_METADATA_BYTES = 16 << 20


@dataclass(frozen=True)
class CoreMetadata:
    """The fields resolution needs (core metadata spec)."""

    name: str
    version: str
    requires_dist: tuple[Requirement, ...] = ()
    requires_python: str | None = None
    provides_extra: frozenset[str] = frozenset()
    notes: tuple[str, ...] = field(default=(), compare=False)
    # For ``show``: the rest is read from the installed .dist-info when asked.


def parse_metadata(text: str, source: str) -> CoreMetadata:
    """Core metadata from METADATA text; bad ``Requires-Dist`` lines become notes."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    headers = parse_headers(text)
    requires: list[Requirement] = []
    notes: list[str] = []
    for line in headers.get_all("Requires-Dist"):
        try:
            requires.append(Requirement(line))
        except InvalidRequirement as exc:
            notes.append(f"{source}: ignored invalid Requires-Dist {line!r} ({exc})")
    extras = frozenset(canonicalize_name(e) for e in headers.get_all("Provides-Extra"))
    return CoreMetadata(
        name=headers.get("Name") or "",
        version=headers.get("Version") or "",
        requires_dist=tuple(requires),
        requires_python=headers.get("Requires-Python"),
        provides_extra=extras,
        notes=tuple(notes),
    )


def read_wheel_metadata(path: str) -> CoreMetadata:
    """METADATA of the wheel at *path*, through the same validation an install makes (the
    same messages for the same faults); RECORD hashes are left to the install itself."""
    from stalwart.errors import RequestError
    from stalwart.paths import NotRegularFileError, open_regular
    from stalwart.wheel.wheelfile import open_wheel

    try:
        open_regular(path).close()  # a FIFO given as a wheel must not hang the resolver
    except NotRegularFileError:
        raise RequestError(f"{path} is not a regular file") from None
    except FileNotFoundError:
        raise RequestError(f"no such file: {path}") from None
    except OSError as exc:
        raise RequestError(f"cannot read {path}: {exc.strerror or exc}") from None
    wheel = open_wheel(path, verify_record=False)
    try:
        text = wheel.read_text("METADATA") or ""
    finally:
        wheel.close()
    return parse_metadata(text, path)


class MetadataFetcher(Protocol):
    """Fetches a small file (a PEP 658 ``.metadata``), verified against *expected* hashes."""

    def fetch_bytes(self, url: str, *, expected: Mapping[str, str] | None, limit: int) -> bytes: ...
