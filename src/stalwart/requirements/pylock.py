"""PEP 751 lock files (``pylock.toml``): reading one, and choosing its wheels for a target. Pure.

:func:`parse_lock` checks the whole file against the spec (every problem at once) and returns
a :class:`Lock`. :func:`select_from_lock` follows the spec's "Installation" steps for one
target: the lock's ``requires-python`` and ``environments`` must fit, each package's
``marker`` decides whether it is installed (with the ``extras`` and ``dependency_groups``
marker variables PEP 751 adds), a package that is installed must leave exactly one entry, and
of its wheels the one whose tags fit the target best is taken. The choice is offline, as the
spec requires: nothing is downloaded or compared with an index.

Only wheels are installed: a package locked as an sdist, a source tree (``vcs``,
``directory``) or a non-wheel ``archive`` is reported as needing a build. Every file must
carry a hash stalwart can verify; a wheel without one is refused when the file is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from stalwart.errors import LockFileError
from stalwart.hashnames import STRONG, hex_length
from stalwart.index.simple import redact_url, redacted_repr

if TYPE_CHECKING:
    from datetime import datetime

    from packaging.markers import Marker
    from packaging.specifiers import SpecifierSet
    from packaging.tags import Tag
    from packaging.utils import BuildTag, NormalizedName
    from packaging.version import Version

__all__ = [
    "LockedFile",
    "LockedPackage",
    "Lock",
    "LockedWheel",
    "load_lock",
    "parse_lock",
    "select_from_lock",
    "SUPPORTED_MAJOR",
    "MAX_LOCK_BYTES",
]

SUPPORTED_MAJOR = 1
"""The ``lock-version`` major this reader understands (PEP 751: another major MUST fail)."""
KNOWN_MINOR = 0
MAX_LOCK_BYTES = 64 * 1024 * 1024
"""Largest lock file :func:`load_lock` reads."""
_HEX_LENGTHS = {name: hex_length(name) for name in STRONG}
_NO_BUILD = "building from source is not supported yet"


def _no_hashes() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LockedFile:
    """One ``wheels``, ``sdist`` or ``archive`` entry; ``path`` is absolute when given."""

    filename: str
    url: str | None
    path: str | None
    hashes: Mapping[str, str] = field(default_factory=_no_hashes, hash=False)
    size: int | None = None
    upload_time: datetime | None = None

    def __repr__(self) -> str:
        return redacted_repr(self)


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """One ``[[packages]]`` entry. ``source_tree`` is ``"vcs"`` or ``"directory"`` if set."""

    name: NormalizedName
    version: Version | None
    marker: Marker | None
    requires_python: SpecifierSet | None
    index: str | None
    wheels: tuple[LockedFile, ...] = ()
    sdist: LockedFile | None = None
    archive: LockedFile | None = None
    source_tree: str | None = None

    def __repr__(self) -> str:
        return redacted_repr(self)


@dataclass(frozen=True, slots=True)
class Lock:
    """A lock file that follows PEP 751. ``notes`` says what was read but not understood."""

    path: str
    lock_version: tuple[int, int]
    created_by: str
    requires_python: SpecifierSet | None
    environments: tuple[Marker, ...]
    extras: frozenset[NormalizedName]
    dependency_groups: frozenset[NormalizedName]
    default_groups: frozenset[NormalizedName]
    packages: tuple[LockedPackage, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LockedWheel:
    """The wheel chosen for one package. ``direct`` when it came from ``[packages.archive]``
    (PEP 751: installed as a direct URL reference, PEP 610), not from ``wheels``."""

    name: NormalizedName
    version: Version
    filename: str
    url: str | None
    path: str | None
    hashes: Mapping[str, str] = field(hash=False)
    size: int | None
    upload_time: datetime | None
    index: str | None
    direct: bool
    tag_rank: int

    def __repr__(self) -> str:
        return redacted_repr(self)


def load_lock(path: str) -> Lock:
    """Read and check the lock file at *path* (UTF-8 TOML, at most :data:`MAX_LOCK_BYTES`)."""
    from ._files import read_limited

    try:
        data = read_limited(path, MAX_LOCK_BYTES)
    except OSError as exc:
        raise LockFileError(f"cannot read it: {exc.strerror or exc}", subject=path) from None
    except ValueError as exc:
        raise LockFileError(f"cannot read it: {exc}", subject=path) from None
    return parse_lock(data, path=path)


def parse_lock(source: str | bytes | Mapping[str, Any], *, path: str = "pylock.toml") -> Lock:
    """Check *source* (TOML text, or the table ``tomllib`` made of it) against PEP 751.

    *path* names the file in messages, and relative ``path`` keys are taken against its
    directory. Raises :class:`~stalwart.errors.LockFileError` listing every problem.
    """
    data = _load_toml(source, path) if isinstance(source, str | bytes) else source
    reader = _Reader(os.path.dirname(os.path.abspath(path)))
    lock = reader.lock(data, path)
    if reader.problems or lock is None:
        raise LockFileError(reader.problems or ["not a lock file"], subject=path)
    return lock


def _load_toml(source: str | bytes, path: str) -> Mapping[str, Any]:
    import tomllib

    try:
        text = source.decode("utf-8") if isinstance(source, bytes) else source
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise LockFileError(f"not UTF-8 (TOML files are): {exc}", subject=path) from None
    except (ValueError, OverflowError) as exc:  # TOMLDecodeError is a ValueError
        raise LockFileError(f"not valid TOML: {exc}", subject=path) from None
    except RecursionError:
        raise LockFileError("not valid TOML: nested too deeply", subject=path) from None


# -- checking the file ----------------------------------------------------------------------------


class _Reader:
    """Typed access to TOML tables that records a problem for each missing or mistyped key."""

    def __init__(self, lock_dir: str) -> None:
        self.lock_dir = lock_dir
        self.problems: list[str] = []

    def get(self, table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
        value = table.get(key)
        # bool is an int in Python; TOML keeps them apart, so must we.
        if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
            return value
        self.problems.append(f"{where}{key} must be {_KIND_NAMES.get(kind, kind.__name__)}")
        return None

    def required(self, table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
        if key not in table:
            self.problems.append(f"{where}{key} is required")
            return None
        return self.get(table, key, kind, where)

    def strings(self, table: Mapping[str, Any], key: str, where: str) -> list[str]:
        values = self.get(table, key, list, where) or []
        if not all(isinstance(v, str) for v in values):
            self.problems.append(f"{where}{key} must be an array of strings")
            return []
        return values

    def lock(self, data: Mapping[str, Any], path: str) -> Lock | None:
        from packaging.utils import canonicalize_name

        if not isinstance(data, Mapping):
            self.problems.append("the top level must be a table")
            return None
        raw_version = self.required(data, "lock-version", str, "")
        if raw_version is None:
            return None
        lock_version = self.lock_version(raw_version)
        if lock_version is None:
            return None  # another major: nothing else in it can be trusted to mean the same
        notes: list[str] = []
        if lock_version[1] > KNOWN_MINOR:
            notes.append(
                f"lock-version {raw_version} is newer than {SUPPORTED_MAJOR}.{KNOWN_MINOR}; "
                "keys this reader does not know are ignored"
            )
        created_by = self.required(data, "created-by", str, "")
        requires_python = self.specifier(data, "")
        environments = tuple(
            m
            for i, text in enumerate(self.strings(data, "environments", ""))
            if (m := self.marker(text, f"environments[{i}]")) is not None
        )
        names = {
            key: frozenset(canonicalize_name(n) for n in self.strings(data, key, ""))
            for key in ("extras", "dependency-groups", "default-groups")
        }
        packages_data = self.required(data, "packages", list, "")
        packages: list[LockedPackage] = []
        for index, entry in enumerate(packages_data or ()):
            package = self.package(entry, f"packages[{index}]")
            if package is not None:
                packages.append(package)
        return Lock(
            path=path,
            lock_version=lock_version,
            created_by=created_by or "",
            requires_python=requires_python,
            environments=environments,
            extras=names["extras"],
            dependency_groups=names["dependency-groups"],
            default_groups=names["default-groups"],
            packages=tuple(packages),
            notes=tuple(notes),
        )

    def lock_version(self, raw: str) -> tuple[int, int] | None:
        major_text, dot, minor_text = raw.strip().partition(".")
        if not (dot and major_text.isdigit() and minor_text.isdigit()) or len(raw) > 20:
            self.problems.append(f"lock-version {raw!r} is not MAJOR.MINOR")
            return None
        major, minor = int(major_text), int(minor_text)
        if major != SUPPORTED_MAJOR:
            self.problems.append(
                f"lock-version {raw} is not supported: stalwart reads {SUPPORTED_MAJOR}.x"
            )
            return None
        return major, minor

    def specifier(self, table: Mapping[str, Any], where: str) -> SpecifierSet | None:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        text = self.get(table, "requires-python", str, where)
        if text is None:
            return None
        try:
            return SpecifierSet(text)
        except InvalidSpecifier as exc:
            self.problems.append(f"{where}requires-python: {exc}")
            return None

    def marker(self, text: str, where: str) -> Marker | None:
        from packaging.markers import InvalidMarker, Marker

        try:
            return Marker(text)
        except InvalidMarker as exc:
            self.problems.append(f"{where}: not a valid marker: {exc}")
        except RecursionError:
            self.problems.append(f"{where}: the marker is nested too deeply")
        return None

    def package(self, entry: object, at: str) -> LockedPackage | None:
        from packaging.utils import InvalidName, canonicalize_name
        from packaging.version import InvalidVersion, Version

        if not isinstance(entry, Mapping):
            self.problems.append(f"{at} must be a table")
            return None
        where = f"{at}."
        raw_name = self.required(entry, "name", str, where)
        try:
            name = canonicalize_name(raw_name, validate=True) if raw_name is not None else None
        except InvalidName:
            self.problems.append(f"{where}name {raw_name!r} is not a valid project name")
            name = None
        label = f"{at} ({name})" if name else at
        where = f"{label}: "
        version = None
        raw_version = self.get(entry, "version", str, where)
        if raw_version is not None:
            try:
                version = Version(raw_version)
            except InvalidVersion:
                self.problems.append(f"{where}version {raw_version!r} is not a valid version")
        raw_marker = self.get(entry, "marker", str, where)
        marker = self.marker(raw_marker, f"{label} marker") if raw_marker is not None else None
        requires_python = self.specifier(entry, where)
        index = self.get(entry, "index", str, where)
        self.get(entry, "dependencies", list, where)  # informational only (PEP 751)

        sources = [k for k in ("vcs", "directory", "archive", "sdist", "wheels") if k in entry]
        exclusive = [k for k in sources if k in ("vcs", "directory", "archive")]
        if not sources:
            self.problems.append(
                f"{where}no source: one of vcs, directory, archive, sdist or wheels is required"
            )
        elif exclusive and len(sources) > 1:
            # PEP 751: vcs, directory and archive exclude every other source; sdist and wheels
            # may appear together.
            self.problems.append(f"{where}conflicting sources {', '.join(sources)}")
        source_tree = None
        for kind in ("vcs", "directory"):
            if kind in entry:
                self.get(entry, kind, dict, where)
                source_tree = kind
        wheels: list[LockedFile] = []
        for i, wheel in enumerate(self.get(entry, "wheels", list, where) or ()):
            locked = self.file(wheel, f"{label}.wheels[{i}]", name, version, is_wheel=True)
            if locked is not None:
                wheels.append(locked)
        sdist = archive = None
        if "sdist" in entry:
            sdist = self.file(entry["sdist"], f"{label}.sdist", name, version, is_wheel=False)
        if "archive" in entry:
            archive = self.file(entry["archive"], f"{label}.archive", name, version, None)
        if name is None:
            return None
        return LockedPackage(
            name,
            version,
            marker,
            requires_python,
            index,
            tuple(wheels),
            sdist,
            archive,
            source_tree,
        )

    def file(
        self,
        entry: object,
        at: str,
        package: NormalizedName | None,
        version: Version | None,
        is_wheel: bool | None,
    ) -> LockedFile | None:
        """A file table; *is_wheel* None for an archive, which may be a wheel or not."""
        from urllib.parse import unquote, urlsplit

        if not isinstance(entry, Mapping):
            self.problems.append(f"{at} must be a table")
            return None
        where = f"{at}: "
        url = self.get(entry, "url", str, where)
        raw_path = self.get(entry, "path", str, where)
        name = self.get(entry, "name", str, where)
        size = self.get(entry, "size", int, where)
        if size is not None and size < 0:
            self.problems.append(f"{where}size must not be negative")
        from datetime import datetime

        upload_time = self.get(entry, "upload-time", datetime, where)
        hashes = self.hashes(entry, where)
        if url is None and raw_path is None:
            self.problems.append(f"{where}url or path is required")
            return None
        if url is not None:
            try:
                parts = urlsplit(url)
                if parts.scheme.lower() not in ("https", "http", "file"):
                    self.problems.append(f"{where}url {redact_url(url)!r} is not http(s) or file")
                url_name = unquote(parts.path.rpartition("/")[2])
            except ValueError as exc:
                self.problems.append(f"{where}url {redact_url(url)!r}: {exc}")
                url_name = ""
        path = None
        if raw_path is not None:
            # PEP 751: relative to the lock file, and MAY use POSIX separators anywhere.
            path = os.path.normpath(os.path.join(self.lock_dir, raw_path))
        filename = name or (
            raw_path.replace("\\", "/").rpartition("/")[2] if raw_path is not None else url_name
        )
        if not filename or filename in (".", "..") or "/" in filename or "\\" in filename:
            self.problems.append(f"{where}no usable file name ({filename!r})")
            return None
        if not filename.isprintable():
            self.problems.append(f"{where}the file name {filename!r} has control characters")
            return None
        if is_wheel or (is_wheel is None and filename.endswith(".whl")):
            self.check_wheel_name(filename, where, package, version)
            self.check_verifiable(hashes, where)
        return LockedFile(
            filename,
            url,
            path,
            MappingProxyType(hashes),
            size if size is None or size >= 0 else None,
            upload_time,
        )

    def check_wheel_name(
        self, filename: str, where: str, package: NormalizedName | None, version: Version | None
    ) -> None:
        from packaging.utils import InvalidWheelFilename
        from packaging.version import InvalidVersion

        from stalwart.index.candidates import parse_wheel_name

        try:
            name, wheel_version, _build, _tags = parse_wheel_name(filename)
        except (InvalidWheelFilename, InvalidVersion) as exc:
            self.problems.append(f"{where}invalid wheel filename: {exc}")
            return
        if package is not None and name != package:
            self.problems.append(f"{where}{filename} is a wheel of {name}, not {package}")
        if version is not None and wheel_version != version:
            self.problems.append(f"{where}{filename} is version {wheel_version}, not {version}")

    def hashes(self, entry: Mapping[str, Any], where: str) -> dict[str, str]:
        table = self.get(entry, "hashes", dict, where)
        if not table:
            # PEP 751: hashes are required and hold at least one entry.
            self.problems.append(f"{where}hashes are required (PEP 751); found none")
            return {}
        hashes: dict[str, str] = {}
        for algorithm, digest in table.items():
            if not isinstance(algorithm, str) or not isinstance(digest, str):
                self.problems.append(f"{where}the {algorithm!r} hash must be a string")
                continue
            key, value = algorithm.lower(), digest.lower()
            length = _HEX_LENGTHS.get(key)
            if length is not None and (
                len(value) != length or not all(c in "0123456789abcdef" for c in value)
            ):
                self.problems.append(f"{where}the {key} hash is not {length} hex digits")
                continue
            hashes[key] = value
        return hashes

    def check_verifiable(self, hashes: Mapping[str, str], where: str) -> None:
        """A wheel is installed only after its hash is checked: one must be of a kind we check."""
        from stalwart.wheel.record import ACCEPTED_HASHES

        if hashes and not set(hashes) & set(ACCEPTED_HASHES):
            self.problems.append(
                f"{where}no hash stalwart can verify (has {', '.join(sorted(hashes))}; "
                f"needs one of {', '.join(ACCEPTED_HASHES)})"
            )


_KIND_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    list: "an array",
    dict: "a table",
    bool: "a boolean",
}


# -- choosing wheels ------------------------------------------------------------------------------


def select_from_lock(
    lock: Lock | str | bytes | Mapping[str, Any],
    *,
    marker_env: Mapping[str, str],
    tags: Sequence[Tag],
    python_version: tuple[int, int, int],
    extras: Iterable[str] = (),
    groups: Iterable[str] | None = None,
    path: str = "pylock.toml",
) -> list[LockedWheel]:
    """The wheels to install from *lock* for one target, in the lock's package order.

    *marker_env* is the target's marker environment (PEP 508; keys it lacks are taken from the
    running interpreter by ``packaging``), *tags* its wheel tags best first. *extras* and
    *groups* select what PEP 751 calls extras and dependency groups; ``groups=None`` means the
    lock's ``default-groups``, as the spec says a default install uses. Raises
    :class:`~stalwart.errors.LockFileError` with every problem found.
    """
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    if not isinstance(lock, Lock):
        lock = parse_lock(lock, path=path)
    problems: list[str] = []
    wanted_extras = frozenset(canonicalize_name(e) for e in extras)
    wanted_groups = (
        lock.default_groups if groups is None else frozenset(canonicalize_name(g) for g in groups)
    )
    for kind, wanted, offered in (
        ("extra", wanted_extras, lock.extras),
        ("dependency group", wanted_groups, lock.dependency_groups | lock.default_groups),
    ):
        for missing in sorted(wanted - offered):
            listed = ", ".join(sorted(offered)) or "none"
            problems.append(f"the lock file offers no {kind} {missing!r} (it has: {listed})")
    if problems:
        raise LockFileError(problems, subject=lock.path)

    python = Version(".".join(map(str, python_version)))
    shown_python = ".".join(map(str, python_version))
    if lock.requires_python is not None and not lock.requires_python.contains(
        python, prereleases=True
    ):
        raise LockFileError(
            f"the lock file requires Python {lock.requires_python}; the target is {shown_python}",
            subject=lock.path,
        )
    env: dict[str, str | frozenset[str]] = {
        **marker_env,
        "extras": wanted_extras,
        "dependency_groups": wanted_groups,
    }
    if lock.environments and not any(
        _evaluate(m, env, lock.path, "environments") for m in lock.environments
    ):
        shown = "; ".join(str(m) for m in lock.environments)
        raise LockFileError(
            f"this environment matches none of the lock file's environments ({shown})",
            subject=lock.path,
        )

    from stalwart.index.candidates import rank_tags

    ranks = rank_tags(tags)
    chosen: list[LockedWheel] = []
    seen: set[str] = set()
    for package in lock.packages:
        try:
            if package.marker is not None and not _evaluate(
                package.marker, env, lock.path, package.name
            ):
                continue
        except LockFileError as exc:
            problems.extend(exc.problems)
            continue
        if package.requires_python is not None and not package.requires_python.contains(
            python, prereleases=True
        ):
            problems.append(
                f"{package.name} requires Python {package.requires_python}; the target is "
                f"{shown_python}"
            )
            continue
        if package.name in seen:
            # PEP 751: what is installed MUST narrow down to one entry per package.
            problems.append(f"{package.name} is locked more than once for this environment")
            continue
        seen.add(package.name)
        wheel = _best_wheel(package, ranks)
        if isinstance(wheel, str):
            problems.append(wheel)
        else:
            chosen.append(wheel)
    if problems:
        raise LockFileError(problems, subject=lock.path)
    return chosen


def _evaluate(
    marker: Marker, env: Mapping[str, str | frozenset[str]], path: str, what: str
) -> bool:
    from packaging.markers import UndefinedComparison, UndefinedEnvironmentName

    try:
        # "lock_file" context: the extras and dependency_groups variables of PEP 751.
        return marker.evaluate(env, context="lock_file")
    except (UndefinedComparison, UndefinedEnvironmentName, ValueError, TypeError) as exc:
        raise LockFileError(
            f"{what}: cannot evaluate the marker {str(marker)!r}: {exc}", subject=path
        ) from None


def _best_wheel(package: LockedPackage, ranks: Mapping[Tag, int]) -> LockedWheel | str:
    """The best-fitting wheel of *package*, or a message saying why there is none."""
    from stalwart.index.candidates import parse_wheel_name

    fitting: list[tuple[int, BuildTag, int, Version, LockedFile, bool]] = []
    entries = [(f, False) for f in package.wheels]
    if package.archive is not None and package.archive.filename.endswith(".whl"):
        entries.append((package.archive, True))
    for position, (locked, direct) in enumerate(entries):
        try:
            _name, version, build, file_tags = parse_wheel_name(locked.filename)
        except ValueError:  # parse_lock refuses these; a Lock built by hand might not
            continue
        rank = min((ranks[t] for t in file_tags if t in ranks), default=None)
        if rank is not None:
            fitting.append((rank, build, -position, version, locked, direct))
    if not fitting:
        builds = (
            package.sdist is not None
            or package.source_tree is not None
            or (package.archive is not None and not package.archive.filename.endswith(".whl"))
        )
        if builds:
            return f"{package.name} publishes no wheel for this environment; {_NO_BUILD}"
        names = ", ".join(f.filename for f, _ in entries) or "none"
        return f"{package.name} has no wheel for this environment (locked wheels: {names})"
    # Best tag first; among equals the higher build number (wheel spec), then lock order.
    best_rank = min(f[0] for f in fitting)
    rank, _build, _position, version, locked, direct = max(
        (f for f in fitting if f[0] == best_rank), key=lambda f: (f[1], f[2])
    )
    return LockedWheel(
        name=package.name,
        version=package.version or version,
        filename=locked.filename,
        url=locked.url,
        path=locked.path,
        hashes=locked.hashes,
        size=locked.size,
        upload_time=locked.upload_time,
        index=package.index,
        direct=direct,
        tag_rank=rank,
    )
