"""Which files of a project page could be installed on a target, and which of them is best. Pure.

:func:`evaluate` looks at one :class:`~stalwart.index.simple.IndexFile` and answers with a
:class:`Candidate` or a :class:`Rejection` saying why not, so that a caller can explain an empty
result ("only an sdist is published", "every wheel needs Python >=3.12"). Choosing a version
among candidates is the resolver's job; :func:`preference` only orders files, for that choice and
for picking one file of the chosen version.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet
    from packaging.tags import Tag
    from packaging.utils import BuildTag, NormalizedName
    from packaging.version import Version

    from .simple import IndexFile

__all__ = [
    "TagRanks",
    "rank_tags",
    "RejectionKind",
    "Rejection",
    "Candidate",
    "evaluate",
    "preference",
    "best_first",
    "SDIST_SUFFIXES",
    "MAX_WHEEL_TAGS",
    "parse_wheel_name",
]

# The sdist format is .tar.gz (PEP 625); older sdists are .zip, and the oldest other tarballs.
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar")

MAX_WHEEL_TAGS = 1024
"""Most tags a wheel filename may expand to; real ones have a handful (PEP 425 compressed sets)."""

TagRanks: TypeAlias = Mapping["Tag", int]
"""A tag's position in the target's list, best (0) first: built once, used for every file."""


def rank_tags(tags: Sequence[Tag]) -> TagRanks:
    """Positions of *tags* (given best first); a repeated tag keeps its best position."""
    ranks: dict[Tag, int] = {}
    for position, tag in enumerate(tags):
        ranks.setdefault(tag, position)
    return MappingProxyType(ranks)


def parse_wheel_name(filename: str) -> tuple[NormalizedName, Version, BuildTag, frozenset[Tag]]:
    """``packaging.utils.parse_wheel_filename``, refusing names whose tags would explode.

    A compressed tag set (PEP 425) expands to the product of its parts, so a hostile
    ``x-1-a.b.c...-d.e.f...-g.h.i....whl`` could make billions of tags. Raises
    ``InvalidWheelFilename`` (a ``ValueError``) or ``InvalidVersion``.
    """
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    parts = filename.split("-")
    if len(parts) >= 5:
        count = 1
        for part in parts[-3:]:
            count *= part.count(".") + 1
        if count > MAX_WHEEL_TAGS:
            raise InvalidWheelFilename(
                f"{filename!r} expands to {count} tags (more than {MAX_WHEEL_TAGS})"
            )
    return parse_wheel_filename(filename)


class RejectionKind(enum.Enum):
    """Why a file is not a candidate, in the order :func:`evaluate` checks."""

    SDIST = "sdist"
    """A source distribution: building is not supported, but worth reporting."""
    NOT_A_WHEEL = "not a wheel"
    INVALID_FILENAME = "invalid filename"
    NAME_MISMATCH = "name mismatch"
    REQUIRES_PYTHON = "requires-python"
    INCOMPATIBLE_TAGS = "incompatible tags"
    YANKED = "yanked"


@dataclass(frozen=True, slots=True)
class Rejection:
    """*file* cannot be installed; ``version`` is known when the filename told it."""

    kind: RejectionKind
    reason: str
    file: IndexFile
    version: Version | None = None

    def __str__(self) -> str:
        return f"{self.file.filename}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A wheel that fits the target. Lower ``tag_rank`` is a better fit."""

    name: NormalizedName
    version: Version
    file: IndexFile
    tag_rank: int
    build: BuildTag
    notes: tuple[str, ...] = ()

    @property
    def yanked(self) -> bool:
        return self.file.yanked is not None


def evaluate(  # noqa: PLR0911 - one return per reason, in checking order
    file: IndexFile,
    *,
    project: NormalizedName,
    tags: Sequence[Tag] | TagRanks,
    python_version: tuple[int, int, int],
    allow_yanked: bool = False,
) -> Candidate | Rejection:
    """Decide whether *file* is an installable wheel of *project* for the target.

    *tags* are the target's tags best first, or :func:`rank_tags` of them (faster when many
    files are evaluated). Set *allow_yanked* when the requirement pins one version with ``==``
    or ``===``: PEP 592 lets an installer use a yanked file only then.
    """
    from packaging.utils import InvalidWheelFilename, canonicalize_name
    from packaging.version import InvalidVersion

    project = canonicalize_name(project)
    if not file.filename.endswith(".whl"):
        return _not_a_wheel(file, project)
    try:
        name, version, build, file_tags = parse_wheel_name(file.filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        return Rejection(RejectionKind.INVALID_FILENAME, f"invalid wheel filename: {exc}", file)
    if name != project:
        return Rejection(RejectionKind.NAME_MISMATCH, f"a wheel of {name}, not {project}", file)
    notes: list[str] = []
    if file.requires_python is not None and file.requires_python.strip():
        specifier = _specifier(file.requires_python)
        if specifier is None:
            # pip ignores an invalid Requires-Python (the file may still work); say so.
            notes.append(f"ignored invalid Requires-Python {file.requires_python!r}")
        elif not specifier.contains(_python(python_version), prereleases=True):
            return Rejection(
                RejectionKind.REQUIRES_PYTHON,
                f"requires Python {specifier}, the target is {'.'.join(map(str, python_version))}",
                file,
                version,
            )
    ranks = tags if isinstance(tags, Mapping) else rank_tags(tags)
    rank = min((ranks[t] for t in file_tags if t in ranks), default=None)
    if rank is None:
        shown = ", ".join(sorted(map(str, file_tags)))
        return Rejection(
            RejectionKind.INCOMPATIBLE_TAGS,
            f"no tag fits the target (the wheel has {shown})",
            file,
            version,
        )
    if file.yanked is not None:
        reason = f"yanked ({file.yanked})" if file.yanked else "yanked"
        if not allow_yanked:
            return Rejection(RejectionKind.YANKED, reason, file, version)
        notes.append(f"{version} is {reason}")  # PEP 592: installers SHOULD warn
    return Candidate(name, version, file, rank, build, tuple(notes))


def _not_a_wheel(file: IndexFile, project: NormalizedName) -> Rejection:
    """An sdist is worth telling apart (with its version): "only an sdist is published"."""
    from packaging.utils import InvalidSdistFilename, parse_sdist_filename
    from packaging.version import InvalidVersion

    if not file.filename.lower().endswith(SDIST_SUFFIXES):
        return Rejection(RejectionKind.NOT_A_WHEEL, "not a wheel or an sdist", file)
    unsupported = "an sdist (building from source is not supported yet)"
    try:
        name, version = parse_sdist_filename(file.filename)
    except (InvalidSdistFilename, InvalidVersion):
        return Rejection(RejectionKind.SDIST, unsupported, file)
    if name != project:
        return Rejection(RejectionKind.NAME_MISMATCH, f"an sdist of {name}, not {project}", file)
    return Rejection(RejectionKind.SDIST, unsupported, file, version)


@lru_cache(maxsize=256)
def _specifier(text: str) -> SpecifierSet | None:
    """Parsed once per distinct string: pages repeat one Requires-Python on every file."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


@lru_cache(maxsize=16)
def _python(version: tuple[int, int, int]) -> Version:
    from packaging.version import Version

    return Version(".".join(map(str, version)))


def preference(candidate: Candidate) -> tuple[bool, Version, int, BuildTag]:
    """Sort key, larger is better: not yanked, then newer, then better tag, then higher build.

    Yanked comes first because PEP 592 allows a yanked file only when nothing else matches;
    the build tag breaks ties last, as the wheel spec says.
    """
    return (not candidate.yanked, candidate.version, -candidate.tag_rank, candidate.build)


def best_first(candidates: Iterable[Candidate]) -> list[Candidate]:
    """*candidates* ordered by :func:`preference`, best first (stable among equals)."""
    return sorted(candidates, key=preference, reverse=True)
