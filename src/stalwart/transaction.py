"""All-or-nothing application of file moves, with a journal for crash recovery.

A transaction lives in ``<state>/txn-<id>/``: ``stage/`` holds the new files, ``backup/`` the
files moved aside, ``journal.json`` the full list of steps (written and fsynced once, before the
first visible change, signed with this user's key from :mod:`stalwart.journalkey`), and
``COMMITTED`` marks that every step happened. Each step is a rename
whose effect is visible on disk, so recovery needs no per-step log: it looks at which side of
each rename a file is on.

- Crash before ``journal.json``: nothing visible changed; delete the transaction directory.
- Crash after it, before ``COMMITTED``: undo the steps in reverse (roll back).
- Crash after ``COMMITTED``: finish the cleanup (roll forward).

Every step goes through :mod:`stalwart.fs`, so rollback retries lock episodes too. Once
``COMMITTED`` is in place the command has succeeded: cleanup that fails afterwards (a backup
still locked, say) is reported as a warning and finished by the next command.

A directory the environment does not have yet is staged as a whole tree (``stage/NNNNNN-<name>``,
mirroring it) and committed by one rename of its root, not one rename per file: a fresh install
of numpy is a handful of steps, not thousands. Not on Windows (:data:`TREES`).
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from stalwart import fs, journalkey
from stalwart.errors import JournalError, RollbackIncompleteError
from stalwart.paths import is_within, read_regular

__all__ = [
    "Transaction",
    "JournalSteps",
    "read_journal",
    "RecoveryReport",
    "RollbackIncompleteError",
    "JournalError",
    "recover",
    "pending_transactions",
    "JOURNAL",
    "COMMITTED",
]

JOURNAL = "journal.json"
COMMITTED = "COMMITTED"
_PREFIX = "txn-"
_FORMAT = 2
_MAX_JOURNAL = 1 << 30  # bytes; a journal lists paths, this is far beyond any real one

TREES = os.name != "nt"
"""Whether new directories are staged and committed as whole trees. Not on Windows: there a
directory cannot be renamed while any file below it is open, so a scanner holding one fresh
``.pyd`` would hold up the whole tree (and every retry would wait on all of its files); moved
one by one, each file waits only for its own lock episode."""


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What recovery did to one unfinished transaction."""

    txn_dir: str
    action: str  # "rolled back", "rolled forward", "discarded staging"
    steps: int


@dataclass
class JournalSteps:
    mkdirs: list[str] = field(default_factory=list)  # created, shallowest first
    backups: list[tuple[str, str]] = field(default_factory=list)  # (dest, backup path)
    installs: list[tuple[str, str]] = field(default_factory=list)  # (staged, dest)
    prune: list[str] = field(default_factory=list)  # dirs to remove if empty after commit

    def to_json(self) -> dict[str, object]:
        return {
            "mkdirs": self.mkdirs,
            "backups": self.backups,
            "installs": self.installs,
            "prune": self.prune,
        }

    def signed(self, txn_dir: str, key: bytes) -> bytes:
        """The journal file: the steps and their HMAC, which also covers the directory name."""
        steps = self.to_json()
        mac = journalkey.sign(key, _payload(txn_dir, steps))
        return json.dumps({"format": _FORMAT, "steps": steps, "mac": mac}).encode("utf-8")

    @classmethod
    def from_journal(
        cls, raw: bytes, txn_dir: str, roots: list[str], key: bytes | None, *, trust: bool
    ) -> JournalSteps:
        """Read a journal back, refusing any journal stalwart did not write for this user, and
        any path a genuine journal of *txn_dir* cannot hold.

        A journal is replayed with the user's rights, so one whose signature does not match
        (unless *trust*), that names files outside the environment, or staging/backup paths
        outside its own transaction, is refused whole.
        """
        try:
            envelope = json.loads(raw.decode("utf-8"))
            if not isinstance(envelope, dict) or envelope.get("format") != _FORMAT:
                raise ValueError("unknown journal format")
            data = envelope["steps"]
            if not isinstance(data, dict):
                raise TypeError("no steps")
            if not trust and not journalkey.signature_matches(
                key, _payload(txn_dir, data), envelope.get("mac")
            ):
                raise ValueError(
                    "its signature does not match: stalwart did not write it for this user "
                    f"(the key is {journalkey.key_path()})"
                )

            def paths(key: str) -> list[str]:
                return [_text(p) for p in data[key]]

            def pairs(key: str) -> list[tuple[str, str]]:
                return [(_text(a), _text(b)) for a, b in data[key]]

            steps = cls(paths("mkdirs"), pairs("backups"), pairs("installs"), paths("prune"))
        except KeyError as exc:
            raise ValueError(f"malformed journal: no {exc} list") from None
        except (TypeError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"malformed journal: {exc}") from None
        stage, backup = os.path.join(txn_dir, "stage"), os.path.join(txn_dir, "backup")
        inside_env = [*steps.mkdirs, *steps.prune]
        inside_env += [dest for dest, _ in steps.backups] + [dest for _, dest in steps.installs]
        problems = [p for p in inside_env if not any(_contained(r, p) for r in roots)]
        problems += [b for _, b in steps.backups if not _contained(backup, b)]
        problems += [s for s, _ in steps.installs if not _contained(stage, s)]
        if problems:
            raise ValueError(f"it names paths outside its environment: {problems[0]}")
        return steps


def read_journal(
    raw: bytes, txn_dir: str, roots: list[str], key: bytes | None, *, trust: bool = False
) -> JournalSteps:
    """The steps of the journal *raw* of *txn_dir*; ``ValueError`` when it is not one stalwart
    wrote for this user (unless *trust*) or names a path outside *roots* and its own
    transaction directory. What :func:`recover` acts on, and what ``fuzz/`` attacks."""
    return JournalSteps.from_journal(raw, txn_dir, roots, key, trust=trust)


def _payload(txn_dir: str, steps: object) -> bytes:
    return json.dumps([os.path.basename(txn_dir), steps], sort_keys=True).encode("utf-8")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a path, found {value!r}")
    return value


def _contained(root: str, path: str) -> bool:
    """*path* is below *root* once symlinks in both are resolved (the file itself may be one).

    Resolved paths only: the same environment may be reached through different spellings
    (a symlinked home, macOS /var and /private/var), and what must not happen is a path that
    really lies elsewhere.
    """
    if not os.path.isabs(path):
        return False
    normal = os.path.normpath(path)
    real = os.path.join(os.path.realpath(os.path.dirname(normal)), os.path.basename(normal))
    return is_within(os.path.realpath(root), real)


class Transaction:
    """Collects staged files and removals, then applies them all or none.

    Usage: write new files under :meth:`stage_path`, declare them with :meth:`install`, declare
    removals with :meth:`remove`, then :meth:`commit`. :meth:`abort` discards everything.
    """

    def __init__(
        self, state_dir: str, *, key: bytes | None = None, trees: bool | None = None
    ) -> None:
        self.state_dir = state_dir
        self._key = key
        #: Cleanup after COMMITTED that could not finish (left to the next command).
        self.warnings: list[str] = []
        name = f"{_PREFIX}{time.strftime('%Y%m%d%H%M%S')}-{os.urandom(4).hex()}"
        self.dir = os.path.join(state_dir, name)
        self.stage_dir = os.path.join(self.dir, "stage")
        self.backup_dir = os.path.join(self.dir, "backup")
        fs.makedirs(self.stage_dir)
        self._installs: dict[str, str] = {}  # dest -> staged
        self._install_keys: set[str] = set()
        self._removes: dict[str, None] = {}
        self._prune: dict[str, None] = {}
        self._counter = itertools.count(1)
        self.committed = False
        self._keep = False
        self._trees = TREES if trees is None else trees
        self._lock = threading.Lock()
        self._places: dict[str, str | None] = {}  # env dir -> its copy in the stage, if a tree
        self._roots: dict[str, str] = {}  # env dir in a tree -> the tree's root
        self._root_names: dict[str, dict[str, str]] = {}  # parent -> folded root name -> name
        self._claimed: set[str] = set()  # tree paths handed out

    def stage_path(self, hint: str = "") -> str:
        """A fresh path inside the staging area for the file *hint* (its destination).

        Below a directory the environment does not have, the path mirrors the destination in
        that directory's tree; elsewhere it is flat (no mkdir per file). Every call gets a
        path no other call got. Thread-safe: staging threads ask at once (and ``next`` on a
        counter is atomic in CPython where ``+= 1`` is not: two files once got one name).
        """
        if self._trees and hint.startswith(os.sep):  # POSIX only (TREES): absolute
            parent, _, name = hint.rpartition(os.sep)
            parent = parent or os.sep
            with self._lock:
                place = self._place(parent)
                if place is not None:
                    path = os.path.join(place, name)
                    if path not in self._claimed:
                        self._claimed.add(path)
                        return path
        suffix = os.path.basename(hint)[-40:]
        return f"{self.stage_dir}{os.sep}{next(self._counter):06d}-{suffix}"

    def _place(self, directory: str) -> str | None:
        """Where *directory* is mirrored in the stage, making it (and any new tree root) on
        the way; None when it exists (or cannot be a tree). Remembered: a directory asked
        again costs one lookup. Called with the lock held."""
        pending: list[str] = []
        current = directory
        while current not in self._places:
            parent = os.path.dirname(current)
            if parent == current or os.path.lexists(current):
                self._places[current] = None
                break
            pending.append(current)
            current = parent
        place = self._places[current]
        for path in reversed(pending):
            parent, name = os.path.split(path)
            if place is not None:
                place = os.path.join(place, name)
                self._roots[path] = self._roots[parent]
            elif os.path.isdir(parent) and self._new_root(parent, name):
                place = f"{self.stage_dir}{os.sep}{next(self._counter):06d}-{name[-40:]}"
                self._roots[path] = path
            # else: below a file of the old version, moved aside at commit; flat, as before
            if place is not None:
                fs.makedirs(place)
            self._places[path] = place
        return place

    def _new_root(self, parent: str, name: str) -> bool:
        """Whether *name* may be a tree root in *parent*: two roots whose names differ only
        in case are one directory on a case-insensitive file system, so neither is."""
        names = self._root_names.setdefault(parent, {})
        other = names.setdefault(name.casefold(), name)
        return other == name

    def install(self, staged: str, dest: str) -> None:
        parent = os.path.dirname(dest)
        root = self._roots.get(parent)
        if root is not None:
            # In a new tree: its root is renamed in at commit, before anything staged flat
            # for a file in it (the same file shipped twice: the last one declared wins).
            self._installs.setdefault(root, self._places[root] or "")
            place = self._places[parent]
            if place is not None and staged == f"{place}{os.sep}{dest[len(parent) + 1 :]}":
                self._install_keys.add(os.path.normcase(dest))
                return
        self._installs[dest] = staged
        self._install_keys.add(os.path.normcase(dest))
        self._removes.pop(dest, None)

    def remove(self, dest: str) -> None:
        """Delete *dest* at commit, unless this transaction installs a new file there."""
        if os.path.normcase(dest) not in self._install_keys:
            self._removes[dest] = None

    def prune_if_empty(self, directory: str) -> None:
        self._prune[directory] = None

    @property
    def journal_path(self) -> str:
        return os.path.join(self.dir, JOURNAL)

    def _steps(self) -> JournalSteps:
        steps = JournalSteps()
        missing: set[str] = set()
        present: dict[str, os.stat_result] = {}  # each directory looked at once, not per file
        for dest in self._installs:
            parent = os.path.dirname(dest)
            if parent in self._roots:
                continue  # comes with its tree
            # Missing, or a file (of the old version, moved aside first): created at commit.
            while parent not in missing and parent not in present:
                try:
                    st = os.stat(parent)
                except (OSError, ValueError):
                    st = None
                if st is not None and stat.S_ISDIR(st.st_mode):
                    present[parent] = st
                    break
                missing.add(parent)
                parent = os.path.dirname(parent)
        steps.mkdirs = sorted(missing, key=lambda p: (p.count(os.sep), p))
        counter = 0
        seen: set[tuple[int, int, int, str]] = set()
        for dest in [*self._removes, *self._installs]:
            parent = os.path.dirname(dest)
            if parent in missing:
                continue  # nothing can be there yet
            try:
                st = os.lstat(dest)
                parent_st = present.get(parent) or os.stat(parent)
            except (FileNotFoundError, NotADirectoryError):
                continue  # absent, or below a file of the old version that is moved aside
            # One directory entry may have two spellings: 'Foo.py' (old) and 'foo.py' (new) on a
            # case-insensitive filesystem, lib/ and lib64/ in some venvs. Back it up once, or
            # the second rename finds nothing to move.
            key = (st.st_dev, st.st_ino, parent_st.st_ino, os.path.basename(dest).casefold())
            if key in seen:
                continue
            seen.add(key)
            counter += 1
            steps.backups.append((dest, os.path.join(self.backup_dir, f"{counter:06d}")))
        steps.installs = [(staged, dest) for dest, staged in self._installs.items()]
        steps.prune = sorted(self._prune, key=lambda p: (-p.count(os.sep), p))
        return steps

    def commit(self) -> int:
        """Apply every step; on failure undo them all and re-raise. Returns the step count.

        Once ``COMMITTED`` is in place the commit has succeeded, whatever happens to the
        cleanup after it: a failure there becomes a line in :attr:`warnings`, and the next
        command's recovery finishes the job.
        """
        steps = self._steps()
        key = self._key or journalkey.journal_key(create=True)
        if key is None:
            raise JournalError(
                journalkey.key_path(), "the key that signs journals cannot be read or made"
            )
        fs.write_atomic(self.journal_path, steps.signed(self.dir, key))
        fs.sync_directory(self.dir)  # the journal must survive a power cut before any step
        try:
            _apply(steps, self.backup_dir)
            fs.write_atomic(os.path.join(self.dir, COMMITTED), b"")
            fs.sync_directory(self.dir)
        except BaseException as exc:
            try:
                _undo(steps)
            except BaseException as undo_error:
                # The journal, backups and staging are what `stalwart recover` needs: keep them.
                self._keep = True
                raise RollbackIncompleteError(self.journal_path, undo_error) from exc
            self._discard()
            raise
        self.committed = True
        try:
            _finish(steps, self.dir, self.state_dir)
        except OSError as exc:
            self.warnings.append(
                f"installed, but cleaning up {self.dir} failed ({exc}); the next stalwart "
                "command finishes it"
            )
        return len(steps.backups) + len(steps.installs)

    def abort(self) -> None:
        """Throw away everything staged; nothing visible has changed.

        A transaction whose rollback could not finish is kept for ``stalwart recover``.
        """
        if not self.committed and not self._keep:
            self._discard()

    def _discard(self) -> None:
        _remove_txn_dir(self.dir, self.state_dir)
        _tidy_state_dir(self.state_dir)


def _trash(state_dir: str) -> str:
    return os.path.join(state_dir, "trash")


def _apply(steps: JournalSteps, backup_dir: str) -> None:
    # Backups first: a file of the old version may stand where the new one needs a directory.
    if steps.backups:
        fs.makedirs(backup_dir)
    for dest, backup in steps.backups:
        fs.rename(dest, backup)
    for directory in steps.mkdirs:
        fs.makedirs(directory)
    for staged, dest in steps.installs:
        fs.replace(staged, dest)


def _undo(steps: JournalSteps) -> int:
    """Reverse whatever part of *steps* happened, judging each step by what is on disk."""
    undone = 0
    for staged, dest in reversed(steps.installs):
        if os.path.lexists(dest) and not os.path.lexists(staged):
            fs.replace(dest, staged)
            undone += 1
    for directory in reversed(steps.mkdirs):
        # Never created, or something else lives there now: then it stays.
        if os.path.isdir(directory) and fs.rmdir_if_empty(directory):
            undone += 1
    for dest, backup in reversed(steps.backups):
        if os.path.lexists(backup):
            fs.replace(backup, dest)
            undone += 1
    return undone


def _prune(directories: Iterable[str]) -> None:
    for directory in directories:
        fs.rmdir_if_empty(directory)  # missing or not empty: both fine


def _finish(steps: JournalSteps, txn_dir: str, state_dir: str) -> None:
    """After COMMITTED: drop backups and staging, prune emptied directories."""
    _prune(steps.prune)
    _remove_txn_dir(txn_dir, state_dir)
    _tidy_state_dir(state_dir)


def _remove_txn_dir(txn_dir: str, state_dir: str) -> None:
    """Delete a finished or undone transaction directory, its journal first.

    ``rmtree`` deletes in directory listing order, which varies by filesystem. Were COMMITTED,
    backups or staged files to go before the journal, a crash in between would leave a journal
    that recovery replays against missing files: undoing a committed transaction, or moving
    restored files back into staging. Without its journal the rest is only discarded.
    """
    fs.unlink(os.path.join(txn_dir, JOURNAL), missing_ok=True, trash=_trash(state_dir))
    fs.rmtree(txn_dir, trash=_trash(state_dir))


def _tidy_state_dir(state_dir: str) -> None:
    """Empty the trash of earlier runs and remove the state directory if nothing is left."""
    fs.empty_trash(_trash(state_dir))
    fs.rmdir_if_empty(state_dir)


def pending_transactions(state_dir: str) -> list[str]:
    """Transaction directories an earlier process left behind."""
    try:
        names = os.listdir(state_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(os.path.join(state_dir, n) for n in names if n.startswith(_PREFIX))


def recover(
    state_dir: str, roots: list[str], *, key: bytes | None = None, trust: bool = False
) -> list[RecoveryReport]:
    """Finish or undo every unfinished transaction in *state_dir*. Caller holds the env lock.

    Every journal must carry this user's signature (*key*, default: the user's journal key;
    *trust* skips that check, for a journal the user has inspected), and every path it names
    must lie below one of *roots* (the environment's directories).
    """
    reports: list[RecoveryReport] = []
    pending = pending_transactions(state_dir)
    if pending and key is None and not trust:
        key = journalkey.journal_key(create=False)
    for txn_dir in pending:
        journal = os.path.join(txn_dir, JOURNAL)
        try:
            raw = read_regular(journal, limit=_MAX_JOURNAL)
            steps = read_journal(raw, txn_dir, roots, key, trust=trust)
        except FileNotFoundError:
            steps = None
        except (OSError, ValueError) as exc:
            # A torn journal is impossible with write_atomic; an unreadable one is foreign.
            raise JournalError(journal, str(exc)) from None
        if steps is None:
            fs.rmtree(txn_dir, trash=_trash(state_dir))
            reports.append(RecoveryReport(txn_dir, "discarded staging", 0))
        elif os.path.exists(os.path.join(txn_dir, COMMITTED)):
            _finish(steps, txn_dir, state_dir)
            reports.append(RecoveryReport(txn_dir, "rolled forward", len(steps.prune)))
        else:
            undone = _undo(steps)
            _remove_txn_dir(txn_dir, state_dir)
            reports.append(RecoveryReport(txn_dir, "rolled back", undone))
    if os.path.isdir(state_dir):
        # Also when nothing was pending: a crash just after creating the state directory, or
        # just before removing it, leaves it empty.
        _tidy_state_dir(state_dir)
    return reports
