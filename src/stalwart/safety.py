"""What an install must not do, decided before anything visible changes. Reads only.

- PEP 668: an externally managed interpreter is refused unless the user overrides it.
- Protected places: the interpreter's own files, stalwart itself, and anything reached through
  a symlink that leads out of the environment.
- Conflicts: files other distributions own (unless identical), one path shipped differently by
  two wheels of the command, and directories that would lose what they hold.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from stalwart.environment import Environment
from stalwart.errors import ConflictError, ExternallyManagedError, TargetEnvironmentError
from stalwart.installed import Installed, file_owners
from stalwart.paths import PathKey, PathKeys, file_id, walk
from stalwart.plan import WheelPlan
from stalwart.staging import StagedFile, StagedWheel
from stalwart.wheel.record import ACCEPTED_HASHES, RecordEntry, hash_file

__all__ = ["check_externally_managed", "check_destinations", "check_conflicts"]


def check_externally_managed(env: Environment, *, override: bool = False) -> None:
    """Refuse an interpreter carrying PEP 668's ``EXTERNALLY-MANAGED`` marker.

    Like pip: a virtual environment is never managed, and ``--target``/``--prefix`` skip the
    check because the marker cannot be located for them. *override* is
    ``--break-system-packages``.
    """
    if env.in_venv or env.target is not None or env.prefix is not None or override:
        return
    marker = os.path.join(env.stdlib, "EXTERNALLY-MANAGED")
    if os.path.exists(marker):
        raise ExternallyManagedError(
            f"{env.executable} is externally managed ({marker}, PEP 668): install into a "
            "virtual environment, or pass --break-system-packages to override"
        )


def check_destinations(plans: list[WheelPlan], env: Environment) -> None:
    """Refuse wheels that would overwrite stalwart itself or the interpreter's own files, or
    write through a symlink that leads out of the environment (uninstall would then refuse
    to remove what install put there). Places are compared by identity
    (:class:`~stalwart.paths.PathKeys`), each directory once."""
    keys = PathKeys()
    stdlib = (env.stdlib, env.platstdlib)
    own = os.path.dirname(os.path.abspath(__file__))
    exe_ids = {i for i in (file_id(sys.executable), file_id(env.executable)) if i is not None}
    exe_names = {os.path.basename(p) for p in (sys.executable, env.executable)}
    exe_names |= {os.path.basename(os.path.realpath(p)) for p in (sys.executable, env.executable)}
    roots, lib_dirs = env.roots, env.lib_dirs

    def judge(directory: str) -> str | None:
        if not any(keys.dir_within(root, directory) for root in roots):
            return "outside"
        # In a virtual environment platstdlib contains site-packages: those are allowed.
        in_stdlib = any(keys.dir_within(p, directory) for p in stdlib) and not any(
            keys.dir_within(lib, directory) for lib in lib_dirs
        )
        if keys.dir_within(own, directory) or in_stdlib:
            return "protected"
        return None

    # A directory that does not exist has its parent's verdict (no identity of its own to
    # compare): a new package's thousand directories cost one lstat each, not a walk each.
    # A place compared with that does not exist is compared by spelling: a directory named
    # like one of those may be it, and is judged itself.
    compared = (*roots, *lib_dirs, *stdlib, own)
    unborn = {os.path.basename(p).casefold() for p in compared if not os.path.isdir(p)}
    verdicts: dict[str, str | None] = {}

    def verdict(directory: str) -> str | None:
        pending: list[str] = []
        current = directory
        while current not in verdicts:
            parent = os.path.dirname(current)
            if (
                parent == current
                or os.path.basename(current).casefold() in unborn
                or os.path.lexists(current)
            ):
                verdicts[current] = judge(current)
                break
            pending.append(current)
            current = parent
        found = verdicts[current]
        for path in pending:
            verdicts[path] = found
        return found

    problems: list[str] = []
    for plan in plans:
        for parent in sorted({os.path.dirname(a.dest) for a in plan.files}):
            found = verdict(parent)
            if found == "outside":
                problems.append(
                    f"{plan.wheel.filename} writes into {parent}, which leads outside the "
                    f"environment (to {os.path.realpath(parent)})"
                )
                break
            if found == "protected":
                problems.append(f"{plan.wheel.filename} writes into {parent}, which is protected")
                break
        problems.extend(
            f"{plan.wheel.filename} would overwrite the interpreter {action.dest}"
            for action in plan.files
            # stat only files named like an interpreter: one syscall each
            if _interpreter_like(os.path.basename(action.dest), exe_names)
            and file_id(action.dest) in exe_ids
        )
    if problems:
        raise TargetEnvironmentError(problems)


def _interpreter_like(name: str, exe_names: set[str]) -> bool:
    return name in exe_names or name.lower().startswith(("python", "pypy"))


def check_conflicts(
    staged: list[StagedWheel],
    installed: dict[str, Installed],
    *,
    replacing: Iterable[str],
    removing: set[PathKey],
    allow_overwrite: bool,
) -> None:
    """Refuse what the new files would clobber; raises :class:`ConflictError` listing all.

    - a file another installed distribution owns, unless the new content equals what its
      RECORD says it installed (a pkgutil namespace ``__init__.py`` shipped by every member);
    - one path shipped by two wheels of this command with different content;
    - a directory that holds anything this command does not remove: a file cannot replace it
      (refused even with ``--allow-overwrite``: its contents would be deleted, not overwritten).

    *replacing* names the distributions this command replaces (their files are not foreign);
    *removing* holds the identities of the paths their removal takes away. Paths are compared
    by identity (:mod:`stalwart.paths`), digests computed while staging are compared, and no
    file of the environment is opened.
    """
    keys = PathKeys()
    problems: list[str] = []
    claimed: dict[PathKey, tuple[StagedWheel, StagedFile]] = {}
    for wheel in staged:
        for item in wheel.files:
            first = claimed.setdefault(keys.key(item.dest), (wheel, item))
            if first[1] is item or allow_overwrite or _same_record(first[1].record, item):
                continue
            problems.append(
                f"{item.dest} is shipped by both {first[0].plan.wheel.filename} and "
                f"{wheel.plan.wheel.filename}, with different content"
            )
    existing = _existing([f for wheel in staged for f in wheel.files])
    for item in existing:
        if os.path.isdir(item.dest) and not os.path.islink(item.dest):
            kept = _first_kept_entry(item.dest, removing, keys)
            if kept is not None:
                problems.append(
                    f"{item.dest} is a directory that holds {kept}; a file cannot replace it"
                )
    if existing and not allow_overwrite:
        skip = set(replacing)
        owners = file_owners((d for d in installed.values() if d.name not in skip), keys)
        for item in existing:
            differing = sorted(
                f"{owner.display_name} {owner.version}"
                for owner, entry in owners.get(keys.key(item.dest), ())
                if not _same_record(entry, item)
            )
            if differing:
                problems.append(f"{item.dest} belongs to {' and '.join(differing)}")
    if problems:
        raise ConflictError(
            problems,
            subject="installing would overwrite files of other distributions (pass "
            "--allow-overwrite to do it anyway)",
        )


def _existing(files: list[StagedFile]) -> list[StagedFile]:
    """The files whose destination exists already. A file in a directory that does not exist
    does not exist either: one ``lstat`` per directory, not per file, when a new package's
    thousands of files land in a new tree."""
    present: dict[str, bool] = {}
    found = []
    for item in files:
        parent = os.path.dirname(item.dest)
        there = present.get(parent)
        if there is None:
            there = present[parent] = os.path.isdir(parent)
        if there and os.path.lexists(item.dest):
            found.append(item)
    return found


def _same_record(entry: RecordEntry, item: StagedFile) -> bool:
    """Whether *entry* (a RECORD row) describes the bytes staged as *item*."""
    if entry.digest is None or entry.hash_name is None:
        return False  # nothing to compare with: treat as different, the safe answer
    if entry.size is not None and item.record.size is not None and entry.size != item.record.size:
        return False
    if entry.hash_name == item.record.hash_name:
        return entry.digest == item.record.digest
    if entry.hash_name not in ACCEPTED_HASHES:
        return False  # md5, sha1, or a name hashlib may not even know: not proof of sameness
    try:
        return hash_file(item.staged, entry.hash_name)[0] == entry.digest
    except (OSError, ValueError, TypeError):
        return False


def _first_kept_entry(directory: str, removing: set[PathKey], keys: PathKeys) -> str | None:
    """Something below *directory* this command does not remove, if there is anything: a file
    it does not remove, a symlink (of the user's: pip and uv refuse too), or an empty
    directory. Only a directory holding nothing but files being removed may become a file."""
    for dirpath, dirnames, filenames in walk(directory):
        if not dirnames and not filenames and dirpath != directory:
            return dirpath + os.sep
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or keys.key(path) not in removing:
                return path
    return None
