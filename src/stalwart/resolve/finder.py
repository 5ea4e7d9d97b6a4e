"""Finding the wheels a project offers the target: index pages and find-links, evaluated.

For each project name the finder asks the indexes in order. By default (``first-index``, as uv
does) the first index that knows the project is the only one used: a name registered on a public
index cannot take over a package of a private one (dependency confusion). ``unsafe-best-match``
merges every index, as pip does. Find-links locations are always merged in. Every file is
judged by :func:`stalwart.index.candidates.evaluate` for the *target* interpreter's tags and
version; what was refused is kept, so that "nothing fits" can say why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from stalwart.index.candidates import (
    Candidate,
    Rejection,
    RejectionKind,
    best_first,
    evaluate,
    rank_tags,
)
from stalwart.index.simple import IndexFile, parse_project_page, redact_url

if TYPE_CHECKING:
    from packaging.tags import Tag
    from packaging.utils import NormalizedName

__all__ = ["PageSource", "PageLike", "Found", "Finder", "IndexStrategy", "NotOnIndex"]

IndexStrategy = Literal["first-index", "unsafe-best-match"]


class PageLike(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def body(self) -> bytes: ...


class PageSource(Protocol):
    """What the finder needs of the network client."""

    def get_page(self, url: str) -> PageLike: ...


class NotOnIndex(Exception):
    """The index has no page for the project (HTTP 404): look at the next index."""


@dataclass(frozen=True, slots=True)
class Found:
    """What the target can install of one project, best first, and what it cannot."""

    name: NormalizedName
    candidates: tuple[Candidate, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    indexes: tuple[str, ...] = ()  # where the files came from (redacted)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def sdists(self) -> tuple[str, ...]:
        return tuple(r.file.filename for r in self.rejected if r.kind is RejectionKind.SDIST)


class Finder:
    """Candidates of each project for one target, each project looked up once."""

    def __init__(
        self,
        source: PageSource,
        *,
        index_urls: Sequence[str],
        find_links: Sequence[str] = (),
        list_find_links: Callable[[str], list[IndexFile]] | None = None,
        strategy: IndexStrategy = "first-index",
        tags: Sequence[Tag],
        python_version: tuple[int, int, int],
    ) -> None:
        self._source = source
        self._index_urls = list(index_urls)
        self._find_links = list(find_links)
        self._list_find_links = list_find_links
        self._strategy = strategy
        self._ranks = rank_tags(tags)
        self._python = python_version
        self._found: dict[str, Found] = {}
        self._links: list[IndexFile] | None = None

    def find(self, name: NormalizedName) -> Found:
        found = self._found.get(name)
        if found is None:
            found = self._found[name] = self._find(name)
        return found

    def _find(self, name: NormalizedName) -> Found:
        files: list[IndexFile] = []
        used: list[str] = []
        notes: list[str] = []
        for index in self._index_urls:
            url = f"{index.rstrip('/')}/{name}/"
            try:
                page = self._source.get_page(url)
            except NotOnIndex:
                continue
            project = parse_project_page(page.body, page.content_type, page.url)
            notes.extend(project.notes)
            files.extend(project.files)
            used.append(redact_url(index))
            if self._strategy == "first-index":
                break
        for file in self._find_link_files():
            files.append(file)
        candidates: list[Candidate] = []
        rejected: list[Rejection] = []
        for file in files:
            verdict = evaluate(
                file, project=name, tags=self._ranks, python_version=self._python, allow_yanked=True
            )
            if isinstance(verdict, Candidate):
                candidates.append(verdict)
            elif verdict.kind is not RejectionKind.NAME_MISMATCH:
                rejected.append(verdict)
        return Found(
            name, tuple(best_first(candidates)), tuple(rejected), tuple(used), tuple(notes)
        )

    def _find_link_files(self) -> list[IndexFile]:
        if self._links is None:
            self._links = []
            if self._list_find_links is not None:
                for location in self._find_links:
                    self._links.extend(self._list_find_links(location))
        return self._links
