"""What a ``--find-links`` location offers: a local directory of files, or an HTML page of links.

Unlike an index, a find-links location is not per project: it lists every file it has, and
the caller picks those of the project it wants by file name (as pip and uv do).
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import TYPE_CHECKING

from stalwart.errors import NetworkError
from stalwart.index.candidates import SDIST_SUFFIXES
from stalwart.index.simple import (
    IndexFile,
    ProjectPage,
    parse_html_page,
    parse_project_page,
    redact_url,
)

if TYPE_CHECKING:
    from .client import Client

__all__ = ["find_links", "list_directory"]

_SUFFIXES = (".whl", *SDIST_SUFFIXES)


def find_links(location: str, client: Client) -> ProjectPage:
    """The files *location* offers, as a page without a project name.

    A local directory (a path or a ``file://`` URL) is listed; anything else is fetched with
    *client* and read as an HTML page of links (PEP 503 syntax; a server answering with PEP 691
    JSON is read as such).
    """
    directory = _local_directory(location)
    if directory is not None:
        return list_directory(directory)
    page = client.get_page(location)
    media_type = page.content_type.partition(";")[0].strip().lower()
    if media_type.startswith("application/vnd.pypi.simple.") and media_type.endswith("+json"):
        parsed = parse_project_page(page.body, page.content_type, page.url)
    else:
        # Plain HTML, whatever the server calls it (static servers say text/plain, or nothing).
        charset = _charset(page.content_type)
        parsed = parse_html_page(page.body, page.url, charset=charset)
    return ProjectPage(
        name=None,
        url=parsed.url,
        files=parsed.files,
        api_version=parsed.api_version,
        notes=parsed.notes,
    )


def list_directory(directory: str) -> ProjectPage:
    """The wheels and sdists directly in *directory*, with ``file://`` URLs.

    Their hashes are unknown until read (the download computes them); subdirectories,
    symlinks to directories and other files are left out, as pip does.
    """
    from pathlib import Path

    files: list[IndexFile] = []
    notes: list[str] = []
    root = os.path.abspath(directory)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise NetworkError(
            redact_url(root), f"cannot list the --find-links directory: {exc.strerror or exc}"
        ) from None
    for entry in entries:
        if not entry.name.lower().endswith(_SUFFIXES):
            continue
        try:
            regular = entry.is_file(follow_symlinks=True)
        except OSError:
            regular = False
        if not regular:
            notes.append(f"{entry.name} skipped: not a regular file")
            continue
        if not entry.name.isprintable():
            notes.append(f"{entry.name!r} skipped: unprintable file name")
            continue
        files.append(
            IndexFile(
                filename=entry.name,
                url=Path(entry.path).as_uri(),
                hashes=MappingProxyType({}),
            )
        )
    return ProjectPage(
        name=None, url=Path(root).as_uri() + "/", files=tuple(files), notes=tuple(notes)
    )


def _local_directory(location: str) -> str | None:
    if "://" in location:
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(location)
        if parts.scheme.lower() != "file":
            return None
        if os.name == "nt":
            import nturl2path

            path = nturl2path.url2pathname(parts.path)
        else:
            path = unquote(parts.path)
    else:
        path = location
    return path if os.path.isdir(path) else None


def _charset(content_type: str) -> str:
    for item in content_type.split(";")[1:]:
        key, _, value = item.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"
