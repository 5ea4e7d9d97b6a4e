"""Requirements and candidates as the resolver sees them. Values; no I/O.

Identifiers follow pip's resolver: a project is ``name``; the same project asked for with extras
is ``name[a,b]``, a candidate that depends on ``name`` at the very same version plus the extras'
requirements; the target interpreter is ``<python>``, the one candidate every ``Requires-Python``
is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet
    from packaging.utils import NormalizedName
    from packaging.version import Version

    from stalwart.index.simple import IndexFile
    from stalwart.installed import Installed

__all__ = [
    "PYTHON",
    "identifier",
    "NamedReq",
    "PinnedReq",
    "PythonReq",
    "Req",
    "FromIndex",
    "LocalFile",
    "FromURL",
    "AlreadyInstalled",
    "Base",
    "WithExtras",
    "TargetPython",
    "Cand",
]

PYTHON = "<python>"


def identifier(name: str, extras: frozenset[str] = frozenset()) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


# -- requirements -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NamedReq:
    """``name[extras] <specifier>``, asked for by *origin* (a ``file:line``, "the command
    line", or ``"<parent> <version>"``)."""

    name: NormalizedName
    specifier: SpecifierSet
    extras: frozenset[NormalizedName] = frozenset()
    origin: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return identifier(self.name, self.extras)

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


@dataclass(frozen=True)
class PinnedReq:
    """Exactly this candidate (a direct URL, a local wheel, or a base for its extras)."""

    candidate: Base
    extras: frozenset[NormalizedName] = frozenset()
    origin: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return identifier(self.candidate.name, self.extras)

    def __str__(self) -> str:
        return f"{self.candidate.name} @ {self.candidate.location}"


@dataclass(frozen=True)
class PythonReq:
    """``Requires-Python`` of *origin*."""

    specifier: SpecifierSet
    origin: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return PYTHON

    def __str__(self) -> str:
        return f"Python {self.specifier}"


Req: TypeAlias = NamedReq | PinnedReq | PythonReq


# -- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FromIndex:
    """A wheel an index or find-links location offers."""

    name: NormalizedName
    version: Version
    file: IndexFile = field(compare=False)
    url: str  # the identity of this candidate: where its bytes come from

    @property
    def location(self) -> str:
        from stalwart.index.simple import redact_url

        return redact_url(self.url)


@dataclass(frozen=True)
class LocalFile:
    """A wheel file the user named."""

    name: NormalizedName
    version: Version
    path: str

    @property
    def location(self) -> str:
        return self.path


@dataclass(frozen=True)
class FromURL:
    """A wheel at a URL the user named (``name @ https://.../x.whl``)."""

    name: NormalizedName
    version: Version
    url: str
    filename: str

    @property
    def location(self) -> str:
        from stalwart.index.simple import redact_url

        return redact_url(self.url)


@dataclass(frozen=True)
class AlreadyInstalled:
    """The version already in the environment: keeping it costs nothing."""

    name: NormalizedName
    version: Version
    dist: Installed = field(compare=False)

    @property
    def location(self) -> str:
        return self.dist.dist_info


Base: TypeAlias = FromIndex | LocalFile | FromURL | AlreadyInstalled


@dataclass(frozen=True)
class WithExtras:
    """*base* with extras: depends on *base* itself plus what the extras add."""

    base: Base
    extras: frozenset[NormalizedName]

    @property
    def name(self) -> NormalizedName:
        return self.base.name

    @property
    def version(self) -> Version:
        return self.base.version


@dataclass(frozen=True)
class TargetPython:
    version: Version


Cand: TypeAlias = Base | WithExtras | TargetPython
