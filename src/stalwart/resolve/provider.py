"""The resolvelib provider: which candidates a requirement may take, and what they depend on.

Kept thin, as pip keeps its own: candidates come from the :class:`~.finder.Finder`, metadata
from a callable the caller supplies (index ``.metadata`` files, wheels, installed dist-infos),
and the policy (upgrade, reinstall, pre-releases, constraints, hashes) from :class:`Policy`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resolvelib import AbstractProvider

from stalwart.errors import RequestError
from stalwart.resolve.model import (
    PYTHON,
    AlreadyInstalled,
    Base,
    Cand,
    FromIndex,
    FromURL,
    NamedReq,
    PinnedReq,
    PythonReq,
    Req,
    TargetPython,
    WithExtras,
)

if TYPE_CHECKING:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import NormalizedName
    from packaging.version import Version

    from stalwart.installed import Installed
    from stalwart.resolve.finder import Finder
    from stalwart.resolve.metadata import CoreMetadata

__all__ = ["Policy", "Provider"]


@dataclass(frozen=True)
class Policy:
    """How to choose among candidates.

    *upgrade*: names whose installed version is not preferred (``-U`` upgrades what the user
    named, like pip's default ``only-if-needed``); *upgrade_all* prefers the newest of every
    project. *reinstall*: installed versions are never reused. *pre*: pre-releases allowed
    everywhere (otherwise only where a specifier names one, or nothing else fits).
    *allowed_hashes*: per project, the only sha256 digests a file may have (``--hash``).
    """

    upgrade: frozenset[str] = frozenset()
    upgrade_all: bool = False
    reinstall: bool = False
    pre: bool = False
    no_deps: bool = False
    ignore_requires_python: bool = False
    constraints: Mapping[str, tuple[Req, ...]] = field(default_factory=dict)
    allowed_hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)


class Provider(AbstractProvider[Req, Cand, str]):
    """resolvelib's questions, answered for one target environment."""

    def __init__(
        self,
        finder: Finder,
        installed: Mapping[str, Installed],
        *,
        python_version: tuple[int, int, int],
        markers: Mapping[str, str],
        metadata: Callable[[Base], CoreMetadata],
        policy: Policy,
    ) -> None:
        from packaging.version import Version

        self.finder = finder
        self.installed = installed
        self.python = TargetPython(Version(".".join(map(str, python_version))))
        self.markers = dict(markers)
        self.metadata = metadata
        self.policy = policy
        self.notes: list[str] = []

    # -- resolvelib's interface -----------------------------------------------------------

    def identify(self, requirement_or_candidate: Req | Cand) -> str:
        item = requirement_or_candidate
        if isinstance(item, PythonReq | TargetPython):
            return PYTHON
        if isinstance(item, NamedReq | PinnedReq):
            return item.id
        if isinstance(item, WithExtras):
            return f"{item.name}[{','.join(sorted(item.extras))}]"
        return item.name

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Cand],
        candidates: Mapping[str, Iterator[Cand]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> tuple[bool, bool, bool, bool, str]:
        """Decide the most constrained projects first: the interpreter, pinned and exactly
        pinned ones, then those behind a recent conflict (pip's order)."""
        infos = list(information[identifier])
        pinned = any(isinstance(i.requirement, PinnedReq) for i in infos)
        exact = any(
            isinstance(i.requirement, NamedReq) and _pins_exactly(i.requirement.specifier)
            for i in infos
        )
        causes = {self.identify(c.requirement) for c in backtrack_causes}
        return (identifier != PYTHON, not pinned, not exact, identifier not in causes, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Cand]],
    ) -> Callable[[], Iterator[Cand]]:
        """A factory of candidates, preferred first, made lazily: while the installed version
        satisfies everything, no index is asked at all (resolvelib looks further only when
        it has to backtrack)."""
        reqs = list(requirements[identifier])
        bad = set(incompatibilities[identifier])
        if identifier == PYTHON:
            ok = all(self.is_satisfied_by(r, self.python) for r in reqs)
            fixed: list[Cand] = [self.python] if ok and self.python not in bad else []
            return lambda: iter(fixed)
        name, _, rest = identifier.partition("[")
        extras = frozenset(rest.rstrip("]").split(",")) if rest else frozenset()

        def candidates() -> Iterator[Cand]:
            for base in self._bases(name, reqs):
                cand: Cand = WithExtras(base, extras) if extras else base  # type: ignore[arg-type]
                if cand not in bad:
                    yield cand

        return candidates

    def is_satisfied_by(self, requirement: Req, candidate: Cand) -> bool:
        if isinstance(requirement, PythonReq):
            return isinstance(candidate, TargetPython) and requirement.specifier.contains(
                candidate.version, prereleases=True
            )
        if isinstance(candidate, TargetPython):
            return False
        base = candidate.base if isinstance(candidate, WithExtras) else candidate
        if isinstance(requirement, PinnedReq):
            return base == requirement.candidate
        return requirement.specifier.contains(base.version, prereleases=True)

    def get_dependencies(self, candidate: Cand) -> list[Req]:
        if isinstance(candidate, TargetPython):
            return []
        if isinstance(candidate, WithExtras):
            deps: list[Req] = [PinnedReq(candidate.base, origin=_origin(candidate.base))]
            meta = self.metadata(candidate.base)
            unknown = sorted(candidate.extras - meta.provides_extra)
            if unknown and meta.provides_extra is not None:
                self.notes.append(
                    f"{candidate.name} {candidate.version} does not provide the extra(s) "
                    + ", ".join(unknown)
                )
            if not self.policy.no_deps:
                deps.extend(self._requires(candidate.base, meta, candidate.extras))
            return deps
        meta = self.metadata(candidate)
        deps = []
        if meta.requires_python and not self.policy.ignore_requires_python:
            specifier = _specifier(meta.requires_python)
            if specifier is not None:
                deps.append(PythonReq(specifier, origin=_origin(candidate)))
        if not self.policy.no_deps:
            deps.extend(self._requires(candidate, meta, frozenset()))
        return deps

    # -- helpers ----------------------------------------------------------------------------

    def _requires(
        self, candidate: Base, meta: CoreMetadata, extras: frozenset[str]
    ) -> Iterable[Req]:
        from packaging.utils import canonicalize_name

        origin = _origin(candidate)
        for requirement in meta.requires_dist:
            if not self._applies(requirement, extras):
                continue
            name = canonicalize_name(requirement.name)
            wanted = frozenset(canonicalize_name(e) for e in requirement.extras)
            if requirement.url:
                yield self._url_requirement(requirement, name, wanted, origin)
                continue
            yield NamedReq(name, requirement.specifier, wanted, origin)
            if wanted:
                # name[extra] depends on name itself; asking for the base as well lets a
                # constraint or an installed version of the base take part at once.
                yield NamedReq(name, requirement.specifier, frozenset(), origin)

    def _applies(self, requirement: Requirement, extras: frozenset[str]) -> bool:
        marker = requirement.marker
        if marker is None:
            return not extras  # extras add only what their markers name
        # With extras, only requirements whose marker names one of them belong to the extras
        # candidate; the rest belong to the base.
        if extras and "extra" not in str(marker):
            return False
        return any(marker.evaluate({**self.markers, "extra": e}) for e in extras or {""})

    def _url_requirement(
        self,
        requirement: Requirement,
        name: NormalizedName,
        extras: frozenset[NormalizedName],
        origin: str,
    ) -> Req:
        from stalwart.index.candidates import parse_wheel_name

        url = requirement.url or ""
        filename = url.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        try:
            _, version, _, _ = parse_wheel_name(filename)
        except ValueError:
            raise RequestError(
                f"{origin} requires {name} from {url}, which is not a wheel; building from "
                "source is not supported yet"
            ) from None
        return PinnedReq(FromURL(name, version, url, filename), extras, origin)

    def _bases(self, name: str, reqs: list[Req]) -> Iterator[Base]:
        """Candidates for project *name* satisfying *reqs* and its constraints, preferred
        first: the installed version unless upgrading, then newest first."""
        constraints = list(self.policy.constraints.get(name, ()))
        everything = [*reqs, *constraints]
        pins = {r.candidate for r in everything if isinstance(r, PinnedReq)}
        if pins:
            if len({(p.name, p.location) for p in pins}) > 1:
                return  # two different files asked for: a conflict resolvelib reports
            pin = next(iter(pins))
            if all(self.is_satisfied_by(r, pin) for r in everything):
                yield pin
            return
        specifiers = [r.specifier for r in everything if isinstance(r, NamedReq)]
        current = self._installed_candidate(name)
        if current is not None and not all(s.contains(current.version, True) for s in specifiers):
            current = None
        upgrading = name in self.policy.upgrade or self.policy.upgrade_all
        if current is not None and not upgrading:
            yield current  # the index is asked only if this one does not work out
        offered = self._offered(name, specifiers)
        for cand in offered:
            if current is not None and cand.version == current.version:
                if upgrading:
                    yield current  # the newest is what is installed: keep it
                continue
            yield cand
        if (
            current is not None
            and upgrading
            and current.version not in {c.version for c in offered}
        ):
            yield current  # not on the index (any more): still a way to satisfy

    def _offered(self, name: str, specifiers: list[SpecifierSet]) -> list[FromIndex]:
        allow_yanked = any(_pins_exactly(s) for s in specifiers)
        allowed = self.policy.allowed_hashes.get(name)
        found = self.finder.find(name)  # type: ignore[arg-type]
        offered: dict[Version, FromIndex] = {}
        for c in found.candidates:
            if c.version in offered or (c.yanked and not allow_yanked):
                continue
            if allowed is not None and not _hash_allowed(c.file.hashes, allowed):
                continue
            offered[c.version] = FromIndex(c.name, c.version, c.file, c.file.url)
        return [offered[v] for v in self._allowed_versions(list(offered), specifiers)]

    def _allowed_versions(
        self, versions: list[Version], specifiers: list[SpecifierSet]
    ) -> list[Version]:
        """Versions every specifier admits, newest first; pre-releases only with --pre, when a
        specifier names one, or when nothing else fits (PEP 440, as pip does)."""
        explicit = self.policy.pre or any(s.prereleases for s in specifiers)

        def fits(v: Version, pre: bool) -> bool:
            if v.is_prerelease and not pre:
                return False
            return all(s.contains(v, prereleases=True) for s in specifiers)

        ordered = sorted(versions, reverse=True)
        result = [v for v in ordered if fits(v, explicit)]
        if not result and not explicit:
            result = [v for v in ordered if fits(v, True)]
        return result

    def _installed_candidate(self, name: str) -> AlreadyInstalled | None:
        from packaging.version import InvalidVersion, Version

        dist = self.installed.get(name)
        if dist is None or self.policy.reinstall:
            return None
        try:
            return AlreadyInstalled(dist.name, Version(dist.version), dist)  # type: ignore[arg-type]
        except InvalidVersion:
            return None


def _pins_exactly(specifier: SpecifierSet) -> bool:
    return any(s.operator in ("==", "===") and not s.version.endswith(".*") for s in specifier)


def _hash_allowed(hashes: Mapping[str, str], allowed: frozenset[str]) -> bool:
    digest = hashes.get("sha256")
    return digest is None or digest.lower() in allowed  # unknown now: checked after download


def _origin(candidate: Base) -> str:
    return f"{candidate.name} {candidate.version}"


def _specifier(text: str) -> SpecifierSet | None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None
