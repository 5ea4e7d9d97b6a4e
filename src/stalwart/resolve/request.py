"""What the user asked to install, gathered from the command line and the files it names.

Arguments (requirement strings, wheel paths, URLs), ``-r`` requirements files, ``-c``
constraints files and ``-r pylock.toml`` lock files become one :class:`Wanted`: the roots and
constraints for the resolver, the index options the files carried, the lock files to install
exactly, and whether hash checking is on (``--require-hashes``, or any ``--hash``, as in pip).
Reads the files it is told to; writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stalwart.requirements.reqfile import IndexOptions, parse_requirements_files
from stalwart.requirements.specs import Spec, parse_spec

__all__ = ["Root", "Wanted", "gather", "is_lock_file"]


@dataclass(frozen=True)
class Root:
    """One thing the user asked for, and where they asked (``the command line``, a file:line).

    *hashes* are the ``--hash`` values given with it, by algorithm (any may match).
    """

    spec: Spec
    origin: str = "the command line"
    hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Wanted:
    roots: tuple[Root, ...] = ()
    constraints: tuple[Root, ...] = ()
    lock_files: tuple[str, ...] = ()
    options: IndexOptions = field(default_factory=IndexOptions)
    require_hashes: bool = False
    files: tuple[str, ...] = ()  # requirements files read
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.roots and not self.lock_files


def is_lock_file(path: str) -> bool:
    """PEP 751 names lock files ``pylock.toml`` or ``pylock.<name>.toml``."""
    name = os.path.basename(path)
    return name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml"))


def gather(
    specs: Sequence[str],
    *,
    requirement_files: Sequence[str] = (),
    constraint_files: Sequence[str] = (),
    require_hashes: bool = False,
    cwd: str | None = None,
) -> Wanted:
    """Everything the command line asks for; raises InvalidRequirementError/LockFileError."""
    base = cwd or os.getcwd()
    roots = [Root(_spec(text, base)) for text in specs]
    locks = tuple(
        os.path.abspath(os.path.join(base, p)) for p in requirement_files if is_lock_file(p)
    )
    plain = [p for p in requirement_files if not is_lock_file(p)]
    options = IndexOptions()
    constraints: list[Root] = []
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    hashed = False
    if plain or constraint_files:
        parsed = parse_requirements_files(plain, constraint_files, cwd=base)
        options, files, notes = parsed.options, parsed.files, parsed.notes
        for line in parsed.requirements:
            roots.append(Root(line.spec, line.location, dict(line.hashes)))
            hashed = hashed or bool(line.hashes)
        constraints = [Root(c.spec, c.location, dict(c.hashes)) for c in parsed.constraints]
    unique = _dedupe(roots)
    _one_file_per_project(unique)
    return Wanted(
        roots=tuple(unique),
        constraints=tuple(constraints),
        lock_files=locks,
        options=options,
        require_hashes=require_hashes or options.require_hashes or hashed,
        files=files,
        notes=notes,
    )


def _spec(text: str, base: str) -> Spec:
    """A spec; a ``.whl`` file that exists but is misnamed is a bad wheel (exit 1, as any
    other fault of a wheel), not a mistyped requirement."""
    from stalwart.errors import InvalidRequirementError, InvalidWheelError

    try:
        return parse_spec(text, base_dir=base)
    except InvalidRequirementError as exc:
        path = os.path.join(base, text)
        if text.endswith(".whl") and os.path.isfile(path):
            raise InvalidWheelError(path, exc.problems) from None
        raise


def _one_file_per_project(roots: list[Root]) -> None:
    """Two different wheel files (or URLs) of one project cannot both be installed."""
    from stalwart.errors import UsageError
    from stalwart.requirements.specs import DirectReference, LocalWheel

    seen: dict[str, str] = {}
    for root in roots:
        spec = root.spec
        if not isinstance(spec, LocalWheel | DirectReference):
            continue
        where = spec.path if isinstance(spec, LocalWheel) else str(spec)
        first = seen.setdefault(spec.name, where)
        if first != where:
            raise UsageError(
                f"{os.path.basename(where)} and {os.path.basename(first)} are both {spec.name}"
            )


def _dedupe(roots: list[Root]) -> list[Root]:
    """The same thing asked for twice (one wheel path given twice) is asked for once."""
    seen: set[object] = set()
    unique = []
    for root in roots:
        key = (type(root.spec), str(root.spec), tuple(sorted(root.hashes.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(root)
    return unique
