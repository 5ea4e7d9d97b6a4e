"""Opening a wheel and checking it against the binary distribution format spec.

Pure: reads the archive, writes nothing. Every rule broken is collected and reported at once
(:class:`~stalwart.errors.InvalidWheelError`). Hashes of file contents are checked later, while
the files are extracted, so that each byte is read exactly once.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stalwart.errors import IncompatibleWheelError, InvalidWheelError, capped

from .archive import DEFAULT_LIMITS, ArchiveReader, Entry, Limits, WheelArchive
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
# "Wheel-Version: 1.0": ASCII digits only; int() also takes '\u0661' (Arabic-Indic 1), ' 1', '+1'
# and '1_0'.
_WHEEL_VERSION = re.compile(r"([0-9]{1,6})\.([0-9]{1,6})")


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
    record: dict[str, RecordEntry]
    archive: ArchiveReader
    notes: tuple[str, ...] = ()

    @property
    def files(self) -> list[Entry]:
        return [e for e in self.archive.entries if not e.is_dir]

    def read_text(self, member: str) -> str | None:
        """A ``.dist-info`` member as text, or None when absent.

        Raises :class:`InvalidWheelError` when the member is over the metadata size limit, not
        UTF-8, or holds a BOM or a NUL (``open_wheel`` has already refused a wheel whose
        ``entry_points.txt`` does).
        """
        text, problem = _read_member(self.archive, f"{self.dist_info}/{member}")
        if problem is not None:
            raise InvalidWheelError(self.path, problem)
        return text

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
    except ValueError as exc:  # int() of a 5,000-digit version part (CVE-2020-10735 limit)
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
    shown_dir = _shown(dist_info, quote=False)  # a name of up to 64 KiB, from the archive
    stem = dist_info[: -len(".dist-info")]
    info_name, _, info_version = stem.rpartition("-")
    if canonicalize_name(info_name) != name:
        problems.append(
            f"{shown_dir} does not match the distribution name {name!r} of the filename"
        )
    parsed = _version(info_version)
    if parsed is None:
        problems.append(f"{shown_dir} has an invalid version {_shown(info_version)}")
    elif parsed != version:
        problems.append(f"{shown_dir} does not match the version {version} of the filename")
    data_dir = f"{stem}.data"
    for top in sorted(top_dirs):
        if top.endswith(".data") and top != data_dir:
            problems.append(
                f"unexpected data directory {_shown(top, quote=False)} "
                f"(expected {_shown(data_dir, quote=False)})"
            )

    def member(name_: str, *, required: bool = True) -> str | None:
        """The member's text; None after naming the problem (absent, or unreadable: one
        problem either way, not "not UTF-8" and then "missing")."""
        text, problem = _read_member(archive, f"{dist_info}/{name_}")
        if problem is not None:
            problems.append(problem)
        elif text is None and required:
            problems.append(f"{dist_info}/{name_} is missing")
        return text

    display_name = str(name)
    metadata_text = member("METADATA")
    if metadata_text is not None:
        meta = parse_headers(metadata_text)
        meta_name, meta_version = meta.get("Name"), meta.get("Version")
        if not meta_name or canonicalize_name(meta_name) != name:
            problems.append(
                f"METADATA Name {_shown(meta_name)} does not match the filename's {name!r}"
            )
        else:
            display_name = meta_name
        parsed = None if meta_version is None else _version(meta_version)
        if meta_version is not None and parsed is None:
            problems.append(f"METADATA Version {_shown(meta_version)} is not a valid version")
        elif parsed != version:
            problems.append(
                f"METADATA Version {_shown(meta_version)} does not match the filename's {version}"
            )

    root_is_purelib = True
    wheel_text = member("WHEEL")
    if wheel_text is not None:
        wheel_meta = parse_headers(wheel_text)
        raw_version = (wheel_meta.get("Wheel-Version") or "").strip()
        matched = _WHEEL_VERSION.fullmatch(raw_version)
        if matched is None:
            problems.append(f"WHEEL has an invalid Wheel-Version {_shown(raw_version)}")
        else:
            major, minor = int(matched[1]), int(matched[2])
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
            problems.append(f"WHEEL Root-Is-Purelib must be true or false, not {_shown(purelib)}")
        root_is_purelib = purelib != "false"

    record: dict[str, RecordEntry] = {}
    record_text = member("RECORD")
    if record_text is not None:
        entries, record_problems = parse_record(record_text, source=f"{dist_info}/RECORD")
        if verify_record:
            problems.extend(record_problems)
        twice = []
        for entry in entries:
            if entry.path in record:
                if verify_record:
                    twice.append(f"RECORD lists {_shown(entry.path)} twice")
                continue
            record[entry.path] = entry
        if verify_record:
            problems.extend(capped(twice))
            problems.extend(_check_record(archive, dist_info, record))

    # Read here so that a broken entry_points.txt is refused with everything else, before any
    # file is staged; scripts.script_specs checks its content when the install is planned.
    member("entry_points.txt", required=False)

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
        problems.append(f"RECORD lists {_shown(name, quote=False)}, which is not in the archive")
    return capped(problems)


def _read_member(archive: ArchiveReader, name: str) -> tuple[str | None, str | None]:
    """(text, problem) of a metadata member: (None, None) when absent.

    Metadata files are UTF-8 (core metadata spec; RECORD per the recording-installed-projects
    spec). A byte order mark would become part of the first field name or path, and a NUL
    belongs in none of them: both are refused by name rather than met later as a confusing
    mismatch. Size is capped before reading: these files are read whole.
    """
    entry = archive.get(name)
    if entry is None:
        return None, None
    limit = archive.limits.max_metadata_size
    if entry.size > limit:
        return None, f"{name} is {entry.size} bytes, over the metadata size limit of {limit}"
    data = archive.read(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"{name} is not UTF-8 (byte {exc.start}: {exc.reason})"
    if text.startswith("\ufeff"):
        return None, f"{name} starts with a byte order mark (U+FEFF); UTF-8 without one is required"
    nul = text.find("\x00")
    if nul >= 0:
        return None, f"{name} contains a NUL character (at character {nul})"
    return text, None


def _version(text: str) -> Version | None:
    """*text* as a version, or None. packaging raises InvalidVersion, and a bare ValueError for
    a release number of over 4,300 digits (int()'s limit, CVE-2020-10735)."""
    from packaging.version import Version

    try:
        return Version(text)
    except ValueError:  # InvalidVersion is a ValueError too
        return None


def _shown(value: str | None, *, quote: bool = True, keep: int = 200) -> str:
    """A value from the wheel for a message: shortened, and repr()'d when asked or when it holds
    characters a terminal would interpret (a RECORD path can carry escape sequences)."""
    if value is None:
        return "None"
    short = value if len(value) <= keep else value[:keep]
    shown = repr(short) if quote or not short.isprintable() else short
    return shown if short is value else f"{shown}... ({len(value)} characters)"


def check_compatible(wheel: Wheel, supported: list[Tag]) -> None:
    """Refuse a wheel none of whose tags the target interpreter accepts."""
    if wheel.tags.isdisjoint(supported):
        wanted = ", ".join(sorted(str(t) for t in wheel.tags))
        best = ", ".join(str(t) for t in supported[:3])
        raise IncompatibleWheelError(
            wheel.path,
            f"its tags ({wanted}) do not fit the target interpreter (best tags: {best}, ...)",
        )
