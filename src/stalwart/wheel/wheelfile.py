"""Opening a wheel and checking it against the binary distribution format spec.

Pure: reads the archive, writes nothing. Every rule broken is collected and reported at once
(:class:`~stalwart.errors.InvalidWheelError`). Hashes of file contents are checked later, while
the files are extracted, so that each byte is read exactly once.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stalwart.errors import IncompatibleWheelError, InvalidWheelError

from .archive import DEFAULT_LIMITS, Entry, Limits, WheelArchive
from .headers import parse_headers
from .record import ACCEPTED_HASHES, RecordEntry, parse_record

if TYPE_CHECKING:
    from packaging.tags import Tag
    from packaging.utils import NormalizedName
    from packaging.version import Version

__all__ = ["Wheel", "WheelWarning", "open_wheel", "check_compatible"]

SUPPORTED_WHEEL_MAJOR = 1
SUPPORTED_WHEEL_MINOR = 0
# Signatures of RECORD cannot list their own hash (wheel spec, "Signed wheel files").
_UNRECORDED = ("RECORD", "RECORD.jws", "RECORD.p7s")


class WheelWarning(UserWarning):
    """Something a wheel does that is allowed but worth telling the user."""


@dataclass(frozen=True)
class Wheel:
    """A wheel whose structure, metadata and RECORD passed validation; holds the open archive."""

    path: str
    filename: str
    name: NormalizedName
    display_name: str
    version: Version
    tags: frozenset[Tag]
    dist_info: str  # "name-version.dist-info", as spelled inside the archive
    data_dir: str  # "name-version.data"
    root_is_purelib: bool
    wheel_version: tuple[int, int]
    record: dict[str, RecordEntry]
    archive: WheelArchive
    notes: tuple[str, ...] = ()

    @property
    def files(self) -> list[Entry]:
        return [e for e in self.archive.entries if not e.is_dir]

    def read_text(self, member: str) -> str | None:
        """A ``.dist-info`` member as text, or None when absent."""
        name = f"{self.dist_info}/{member}"
        if self.archive.get(name) is None:
            return None
        return self.archive.read(name).decode("utf-8")

    def close(self) -> None:
        self.archive.close()


def open_wheel(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS, verify_record: bool = True
) -> Wheel:
    """Open and validate the wheel at *path*; raises a WheelError subclass listing every problem.

    With ``verify_record=False`` RECORD may be stale (missing or wrong entries); the installer
    then writes correct hashes of its own.
    """
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion

    path = os.fspath(path)
    filename = os.path.basename(path)
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise InvalidWheelError(path, f"invalid wheel filename: {exc}") from None
    archive = WheelArchive(path, limits)
    try:
        return _validate(archive, path, filename, name, version, tags, verify_record)
    except BaseException:
        archive.close()
        raise


def _validate(
    archive: WheelArchive,
    path: str,
    filename: str,
    name: NormalizedName,
    version: Version,
    tags: frozenset[Tag],
    verify_record: bool,
) -> Wheel:
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    problems: list[str] = []
    notes: list[str] = []
    top_dirs = {e.name.split("/", 1)[0] for e in archive.entries if "/" in e.name}
    dist_infos = sorted(d for d in top_dirs if d.endswith(".dist-info"))
    if len(dist_infos) != 1:
        found = ", ".join(dist_infos) or "none"
        raise InvalidWheelError(
            path, f"expected exactly one top-level .dist-info directory, found {found}"
        )
    dist_info = dist_infos[0]
    stem = dist_info[: -len(".dist-info")]
    info_name, _, info_version = stem.rpartition("-")
    if canonicalize_name(info_name) != name:
        problems.append(
            f"{dist_info} does not match the distribution name {name!r} of the filename"
        )
    try:
        if Version(info_version) != version:
            problems.append(f"{dist_info} does not match the version {version} of the filename")
    except InvalidVersion:
        problems.append(f"{dist_info} has an invalid version {info_version!r}")
    data_dir = f"{stem}.data"
    for top in sorted(top_dirs):
        if top.endswith(".data") and top != data_dir:
            problems.append(f"unexpected data directory {top} (expected {data_dir})")

    def member(name_: str) -> str | None:
        full = f"{dist_info}/{name_}"
        if archive.get(full) is None:
            return None
        try:
            return archive.read(full).decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{full} is not UTF-8")
            return None

    display_name = str(name)
    metadata_text = member("METADATA")
    if metadata_text is None:
        problems.append(f"{dist_info}/METADATA is missing")
    else:
        meta = parse_headers(metadata_text)
        meta_name, meta_version = meta.get("Name"), meta.get("Version")
        if not meta_name or canonicalize_name(meta_name) != name:
            problems.append(f"METADATA Name {meta_name!r} does not match the filename's {name!r}")
        else:
            display_name = meta_name
        try:
            if meta_version is None or Version(meta_version) != version:
                problems.append(
                    f"METADATA Version {meta_version!r} does not match the filename's {version}"
                )
        except InvalidVersion:
            problems.append(f"METADATA Version {meta_version!r} is not a valid version")

    root_is_purelib = True
    wheel_version = (1, 0)
    wheel_text = member("WHEEL")
    if wheel_text is None:
        problems.append(f"{dist_info}/WHEEL is missing")
    else:
        wheel_meta = parse_headers(wheel_text)
        raw_version = (wheel_meta.get("Wheel-Version") or "").strip()
        try:
            major, minor = (int(p) for p in raw_version.split(".", 1))
            wheel_version = (major, minor)
        except ValueError:
            problems.append(f"WHEEL has an invalid Wheel-Version {raw_version!r}")
        else:
            if major > SUPPORTED_WHEEL_MAJOR:
                problems.append(
                    f"Wheel-Version {raw_version} is not supported (this installer reads 1.x)"
                )
            elif minor > SUPPORTED_WHEEL_MINOR:
                note = f"Wheel-Version {raw_version} is newer than 1.0; installing anyway"
                notes.append(note)
                warnings.warn(f"{filename}: {note}", WheelWarning, stacklevel=3)
        purelib = (wheel_meta.get("Root-Is-Purelib") or "").strip().lower()
        if purelib not in ("true", "false"):
            problems.append(f"WHEEL Root-Is-Purelib must be true or false, not {purelib!r}")
        root_is_purelib = purelib != "false"

    record: dict[str, RecordEntry] = {}
    record_text = member("RECORD")
    if record_text is None:
        problems.append(f"{dist_info}/RECORD is missing")
    else:
        entries, record_problems = parse_record(record_text, source=f"{dist_info}/RECORD")
        if verify_record:
            problems.extend(record_problems)
        for entry in entries:
            if entry.path in record:
                if verify_record:
                    problems.append(f"RECORD lists {entry.path} twice")
                continue
            record[entry.path] = entry
        if verify_record:
            problems.extend(_check_record(archive, dist_info, record))

    if problems:
        raise InvalidWheelError(path, problems)
    return Wheel(
        path=path,
        filename=filename,
        name=name,
        display_name=display_name,
        version=version,
        tags=tags,
        dist_info=dist_info,
        data_dir=data_dir,
        root_is_purelib=root_is_purelib,
        wheel_version=wheel_version,
        record=record,
        archive=archive,
        notes=tuple(notes),
    )


def _check_record(
    archive: WheelArchive, dist_info: str, record: dict[str, RecordEntry]
) -> list[str]:
    """RECORD and the archive must list the same files, each with a strong enough hash."""
    problems: list[str] = []
    unrecorded = {f"{dist_info}/{n}" for n in _UNRECORDED}
    files = {e.name for e in archive.entries if not e.is_dir}
    for name in sorted(files - unrecorded):
        entry = record.get(name)
        if entry is None:
            problems.append(f"{name} is in the archive but not in RECORD")
        elif entry.hash_name is None:
            problems.append(f"RECORD has no hash for {name}")
        elif entry.hash_name not in ACCEPTED_HASHES:
            problems.append(
                f"RECORD hashes {name} with {entry.hash_name}; sha256 or stronger is required"
            )
    for name in sorted(set(record) - files):
        if name.endswith("/"):
            continue
        problems.append(f"RECORD lists {name}, which is not in the archive")
    return problems


def check_compatible(wheel: Wheel, supported: list[Tag]) -> None:
    """Refuse a wheel none of whose tags the target interpreter accepts."""
    if wheel.tags.isdisjoint(supported):
        wanted = ", ".join(sorted(str(t) for t in wheel.tags))
        best = ", ".join(str(t) for t in supported[:3])
        raise IncompatibleWheelError(
            wheel.path,
            f"its tags ({wanted}) do not fit the target interpreter (best tags: {best}, ...)",
        )
