"""From what the user asked for to the exact set of wheels to install, or a reason why not.

:func:`resolve` runs resolvelib (pip's resolver) with :class:`~.provider.Provider`; when no set
of versions works, :func:`explain` says which requirement of which package stands in the way,
what the indexes offered, and why the rest did not fit (sdist only, Requires-Python, tags).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stalwart.errors import RequestError, ResolutionError
from stalwart.resolve.finder import Finder, PageSource
from stalwart.resolve.metadata import (
    MAX_METADATA_BYTES,
    CoreMetadata,
    parse_metadata,
    read_wheel_metadata,
)
from stalwart.resolve.model import (
    PYTHON,
    AlreadyInstalled,
    Base,
    FromIndex,
    FromURL,
    LocalFile,
    NamedReq,
    PinnedReq,
    Req,
    WithExtras,
)
from stalwart.resolve.provider import Policy, Provider
from stalwart.resolve.request import Root

if TYPE_CHECKING:
    from stalwart.index.candidates import RejectionKind
    from stalwart.installed import Installed

__all__ = ["Root", "Request", "Resolution", "Client", "resolve", "explain", "MetadataSource"]

MAX_ROUNDS = 20_000


class Downloaded(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def sha256(self) -> str: ...


class Client(PageSource, Protocol):
    """What resolution needs of the network client (:class:`stalwart.net.client.Client`)."""

    def fetch_bytes(self, url: str, *, expected: Mapping[str, str] | None, limit: int) -> bytes: ...

    def download(
        self, url: str, *, filename: str, hashes: Mapping[str, str], size: int | None = None
    ) -> Downloaded: ...


@dataclass(frozen=True)
class Request:
    roots: tuple[Root, ...]
    constraints: tuple[Root, ...] = ()
    upgrade: bool = False
    reinstall: bool = False
    pre: bool = False
    no_deps: bool = False
    require_hashes: bool = False
    ignore_requires_python: bool = False


@dataclass
class Resolution:
    """The wheels to install (``chosen``), what stays as installed (``kept``), and notes."""

    chosen: list[Base]
    kept: list[AlreadyInstalled]
    requested: frozenset[str]
    notes: list[str] = field(default_factory=list)
    #: The wheel files already fetched while reading metadata, by candidate.
    fetched: dict[Base, Downloaded] = field(default_factory=dict)


class MetadataSource:
    """Core metadata of candidates: PEP 658 files first, then the wheel (kept for install)."""

    def __init__(self, client: Client | None) -> None:
        self.client = client
        self.fetched: dict[Base, Downloaded] = {}
        self._cache: dict[Base, CoreMetadata] = {}

    def __call__(self, candidate: Base) -> CoreMetadata:
        meta = self._cache.get(candidate)
        if meta is None:
            meta = self._cache[candidate] = self._read(candidate)
            self._check(candidate, meta)
        return meta

    def _read(self, candidate: Base) -> CoreMetadata:
        if isinstance(candidate, AlreadyInstalled):
            text = candidate.dist.read_text("METADATA") or ""
            return parse_metadata(text, candidate.dist.dist_info)
        if isinstance(candidate, LocalFile):
            return read_wheel_metadata(candidate.path)
        client = self._client()
        if isinstance(candidate, FromIndex) and candidate.file.core_metadata:
            offered = candidate.file.core_metadata
            expected = offered if isinstance(offered, Mapping) else None
            url = candidate.url.split("#", 1)[0] + ".metadata"
            data = client.fetch_bytes(url, expected=expected, limit=MAX_METADATA_BYTES)
            try:
                return parse_metadata(data.decode("utf-8"), candidate.location + ".metadata")
            except UnicodeDecodeError:
                raise RequestError(f"{candidate.location}.metadata is not UTF-8") from None
        return read_wheel_metadata(self.download(candidate).path)

    def download(self, candidate: Base) -> Downloaded:
        """The wheel of *candidate* in the cache (downloaded once)."""
        got = self.fetched.get(candidate)
        if got is None:
            client = self._client()
            if isinstance(candidate, FromIndex):
                file = candidate.file
                got = client.download(
                    file.url, filename=file.filename, hashes=file.hashes, size=file.size
                )
            elif isinstance(candidate, FromURL):
                got = client.download(candidate.url, filename=candidate.filename, hashes={})
            else:
                raise TypeError(candidate)
            self.fetched[candidate] = got
        return got

    def _client(self) -> Client:
        if self.client is None:
            raise RequestError("this needs a package index, and none is available (--no-index)")
        return self.client

    @staticmethod
    def _check(candidate: Base, meta: CoreMetadata) -> None:
        """Metadata must describe the candidate it came with (pip: "inconsistent")."""
        from packaging.utils import canonicalize_name
        from packaging.version import InvalidVersion, Version

        try:
            same = canonicalize_name(meta.name) == candidate.name and (
                Version(meta.version) == candidate.version
            )
        except InvalidVersion:
            same = False
        if not same:
            raise RequestError(
                f"{candidate.location}: its metadata says {meta.name!r} {meta.version!r}, "
                f"not {candidate.name} {candidate.version}"
            )


def root_requirement(root: Root) -> Req:
    """The resolver's requirement for one thing the user asked for."""
    from stalwart.requirements.specs import DirectReference, LocalWheel

    spec = root.spec
    if isinstance(spec, LocalWheel):
        return PinnedReq(LocalFile(spec.name, spec.version, spec.path), spec.extras, root.origin)
    if isinstance(spec, DirectReference):
        base = FromURL(spec.name, spec.version, spec.url, spec.filename)
        return PinnedReq(base, spec.extras, root.origin)
    return NamedReq(spec.name, spec.requirement.specifier, spec.extras, root.origin)


def resolve(
    request: Request,
    *,
    finder: Finder,
    metadata: MetadataSource,
    installed: Mapping[str, Installed],
    python_version: tuple[int, int, int],
    markers: Mapping[str, str],
) -> Resolution:
    """The set of wheels that satisfies *request* for the target, as one consistent set."""
    from resolvelib import BaseReporter, Resolver
    from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

    roots = [r for r in request.roots if _applies(r, markers)]
    requirements: list[Req] = []
    for root in roots:
        req = root_requirement(root)
        requirements.append(req)
        if isinstance(req, NamedReq) and req.extras:
            requirements.append(NamedReq(req.name, req.specifier, frozenset(), root.origin))
        if isinstance(req, PinnedReq) and req.extras:
            requirements.append(PinnedReq(req.candidate, frozenset(), root.origin))
    constraints: dict[str, list[Req]] = {}
    for root in request.constraints:
        if _applies(root, markers):
            req = root_requirement(root)
            name = req.candidate.name if isinstance(req, PinnedReq) else req.name  # type: ignore[union-attr]
            constraints.setdefault(name, []).append(req)
    allowed = _allowed_hashes(request) if request.require_hashes else {}
    policy = Policy(
        upgrade=frozenset(_root_name(r) for r in roots) if request.upgrade else frozenset(),
        reinstall=request.reinstall,
        pre=request.pre,
        no_deps=request.no_deps,
        ignore_requires_python=request.ignore_requires_python,
        constraints={k: tuple(v) for k, v in constraints.items()},
        allowed_hashes=allowed,
    )
    provider = Provider(
        finder,
        installed,
        python_version=python_version,
        markers=markers,
        metadata=metadata,
        policy=policy,
    )
    resolver: Resolver[Req, Any, str] = Resolver(provider, BaseReporter())
    try:
        result = resolver.resolve(requirements, max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as exc:
        raise ResolutionError(explain(exc.causes, finder, python_version, allowed)) from None
    except ResolutionTooDeep:
        raise ResolutionError(
            f"gave up after {MAX_ROUNDS} rounds of backtracking; pin some versions to help"
        ) from None
    chosen: list[Base] = []
    kept: list[AlreadyInstalled] = []
    for ident, cand in result.mapping.items():
        if ident == PYTHON or isinstance(cand, WithExtras):
            continue
        if isinstance(cand, AlreadyInstalled):
            kept.append(cand)
        else:
            chosen.append(cand)
    requested = frozenset(_root_name(r) for r in roots)
    notes = [*provider.notes, *_yank_notes(chosen, finder)]
    return Resolution(chosen, kept, requested, notes, dict(metadata.fetched))


def _applies(root: Root, markers: Mapping[str, str]) -> bool:
    marker = getattr(root.spec, "marker", None)
    return marker is None or bool(marker.evaluate({**markers, "extra": ""}))


def _root_name(root: Root) -> str:
    return str(root.spec.name)


def _allowed_hashes(request: Request) -> dict[str, frozenset[str]]:
    allowed: dict[str, set[str]] = {}
    for root in request.roots:
        for digest in root.hashes.get("sha256", ()):
            allowed.setdefault(_root_name(root), set()).add(digest.lower())
    return {k: frozenset(v) for k, v in allowed.items()}


def _yank_notes(chosen: Sequence[Base], finder: Finder) -> list[str]:
    notes = []
    for cand in chosen:
        if isinstance(cand, FromIndex) and cand.file.yanked is not None:
            reason = f": {cand.file.yanked}" if cand.file.yanked else ""
            notes.append(f"{cand.name} {cand.version} is yanked{reason} (PEP 592)")
    return notes


def explain(
    causes: Iterable[Any],
    finder: Finder,
    python_version: tuple[int, int, int],
    allowed_hashes: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """Why no set of versions works: each clashing requirement with who asked for it, then
    what each project offers and why the rest of its files do not fit (including files whose
    index hash is not one of the ``--hash`` values, so a stale hash is named as such)."""
    lines: list[str] = []
    names: dict[str, None] = {}
    for info in causes:
        req, parent = info.requirement, info.parent
        who = (
            f"{parent.name} {parent.version}"
            if parent is not None and not hasattr(parent, "base")
            else (f"{parent.base.name} {parent.base.version}" if parent is not None else None)
        )
        if req.id == PYTHON:
            target = ".".join(map(str, python_version))
            lines.append(f"{who or req.origin} requires {req}, but the target is Python {target}")
            continue
        asked = f"{who} requires" if who else f"{req.origin or 'you'} asked for"
        lines.append(f"{asked} {req}")
        if isinstance(req, NamedReq):  # a pinned file needs no look at an index
            names[str(req.name)] = None
    for name in names:
        lines.extend(_offer(name, finder))
        allowed = (allowed_hashes or {}).get(name)
        if allowed is not None:
            lines.extend(_hash_misses(name, finder, allowed))
    return list(dict.fromkeys(lines))


def _hash_misses(name: str, finder: Finder, allowed: frozenset[str]) -> list[str]:
    """One line per file the index lists with a sha256 outside *allowed*."""
    wanted = ", ".join(sorted(allowed))
    lines = []
    for cand in finder.find(name).candidates:  # type: ignore[arg-type]
        digest = cand.file.hashes.get("sha256")
        if digest is not None and digest.lower() not in allowed:
            lines.append(
                f"{cand.file.filename}: the index gives sha256 {digest.lower()}, "
                f"but --hash allows only {wanted}"
            )
    if len(lines) > 5:
        lines[5:] = [f"{name}: {len(lines) - 5} more files have other hashes"]
    return lines


def _offer(name: str, finder: Finder) -> list[str]:
    """What *name*'s indexes offer the target, in one or two lines."""
    from collections import Counter

    found = finder.find(name)  # type: ignore[arg-type]
    versions = sorted({c.version for c in found.candidates}, reverse=True)
    lines = []
    if versions:
        shown = ", ".join(str(v) for v in versions[:8]) + (" ..." if len(versions) > 8 else "")
        lines.append(f"{name}: versions that fit the target: {shown}")
    elif found.sdists:
        lines.append(
            f"{name} publishes only source distributions for this target ({found.sdists[0]}"
            f"{' ...' if len(found.sdists) > 1 else ''}): building from source is not "
            "supported yet"
        )
    elif not found.indexes and not found.rejected:
        lines.append(f"{name}: no index or find-links location has a project of that name")
    else:
        lines.append(f"{name}: no wheel fits the target")
    kinds: Counter[RejectionKind] = Counter(r.kind for r in found.rejected)
    if kinds:
        parts = [f"{n} {kind.value}" for kind, n in kinds.most_common()]
        example = found.rejected[0]
        lines.append(f"{name}: files refused: {', '.join(parts)} (e.g. {example})")
    return lines
