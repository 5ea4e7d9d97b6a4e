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
from stalwart.paths import is_within
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
    to remove what install put there)."""
    stdlib = {os.path.realpath(env.stdlib), os.path.realpath(env.platstdlib)}
    # In a virtual environment platstdlib contains site-packages: those are not protected.
    allowed = {os.path.realpath(d) for d in env.lib_dirs}
    own = os.path.realpath(os.path.dirname(__file__))
    exe = {os.path.realpath(sys.executable), os.path.realpath(env.executable)}
    exe_names = {os.path.basename(p) for p in (*exe, sys.executable, env.executable)}
    inside = {os.path.realpath(d) for d in env.roots}
    problems: list[str] = []
    for plan in plans:
        for parent in sorted({os.path.dirname(a.dest) for a in plan.files}):
            real = os.path.realpath(parent)
            if not any(is_within(root, real) for root in inside):
                problems.append(
                    f"{plan.wheel.filename} writes into {parent}, which leads outside the "
                    f"environment (to {real})"
                )
                break
            if is_within(own, real) or (
                any(is_within(p, real) for p in stdlib)
                and not any(is_within(a, real) for a in allowed)
            ):
                problems.append(f"{plan.wheel.filename} writes into {parent}, which is protected")
                break
        problems.extend(
            f"{plan.wheel.filename} would overwrite the interpreter {action.dest}"
            for action in plan.files
            # realpath only for files named like an interpreter: it costs a syscall per part
            if _interpreter_like(os.path.basename(action.dest), exe_names)
            and os.path.realpath(action.dest) in exe
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
    removing: set[str],
    allow_overwrite: bool,
) -> None:
    """Refuse what the new files would clobber; raises :class:`ConflictError` listing all.

    - a file another installed distribution owns, unless the new content equals what its
      RECORD says it installed (a pkgutil namespace ``__init__.py`` shipped by every member);
    - one path shipped by two wheels of this command with different content;
    - a directory that holds anything this command does not remove: a file cannot replace it
      (refused even with ``--allow-overwrite``: its contents would be deleted, not overwritten).

    *replacing* names the distributions this command replaces (their files are not foreign);
    *removing* holds the ``normcase``d paths their removal takes away. Digests computed while
    staging are compared, never files read again.
    """
    problems: list[str] = []
    claimed: dict[str, tuple[StagedWheel, StagedFile]] = {}
    for wheel in staged:
        for item in wheel.files:
            first = claimed.setdefault(os.path.normcase(item.dest), (wheel, item))
            if first[1] is item or allow_overwrite or _same_record(first[1].record, item):
                continue
            problems.append(
                f"{item.dest} is shipped by both {first[0].plan.wheel.filename} and "
                f"{wheel.plan.wheel.filename}, with different content"
            )
    existing = [f for wheel in staged for f in wheel.files if os.path.lexists(f.dest)]
    for item in existing:
        if os.path.isdir(item.dest) and not os.path.islink(item.dest):
            kept = _first_kept_file(item.dest, removing)
            if kept is not None:
                problems.append(
                    f"{item.dest} is a directory that holds {kept}; a file cannot replace it"
                )
    if existing and not allow_overwrite:
        skip = set(replacing)
        owners = file_owners(d for d in installed.values() if d.name not in skip)
        for item in existing:
            differing = sorted(
                f"{owner.display_name} {owner.version}"
                for owner, entry in owners.get(os.path.normcase(item.dest), ())
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


def _first_kept_file(directory: str, removing: set[str]) -> str | None:
    """A file below *directory* that this command does not remove, if there is one."""
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.normcase(path) not in removing:
                return path
    return None
