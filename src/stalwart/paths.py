"""What a path *is*, not how it is spelled; and reading files that might not be files. Reads only.

Safety decisions (the state directory, the interpreter, ownership, duplicates, conflicts,
uninstall keep-sets, recovery) compare path identities: a symlinked directory (a venv's
``lib64``), ``..``, ``/proc/self/cwd/...`` or a case-insensitive file system must never make two
spellings of one file look different. An identity (:func:`PathKeys.key`) is the device and
inode of the deepest directory on the path that exists, followed by the case-folded names
below it. Case folding is deliberately conservative: on a case-sensitive file system
``Foo.py`` and ``foo.py`` count as one, which can only make stalwart refuse or keep more.

Files stalwart reads from an environment (installed metadata, files to hash) may be FIFOs,
devices or huge: :func:`read_regular` and :func:`open_regular` open them without blocking and
refuse anything but a regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

__all__ = [
    "PathKey",
    "PathKeys",
    "is_within",
    "real_path",
    "file_id",
    "walk",
    "NotRegularFileError",
    "open_regular",
    "read_regular",
]

PathKey = tuple[object, ...]
"""``(st_dev, st_ino, name, name, ...)``: a path's identity (see the module docstring)."""


def is_within(root: str, path: str) -> bool:
    """True when *path* is *root* or lies below it, compared lexically (no symlinks followed).

    For spellings already made canonical (``realpath`` s, or a plan's normalized paths, whose
    archive names the reader already refused '..', links and absolute names for). Paths on
    different drives are never within each other.
    """
    if root == path:
        return True
    # A prefix test on whole components: the same answer as os.path.commonpath for the
    # normalized paths callers pass, at a tenth of the cost (it runs once per planned file).
    prefix = root if root.endswith(os.sep) else root + os.sep
    if os.altsep and os.altsep in path + root:
        try:
            return os.path.commonpath([root, path]) == root
        except ValueError:
            return False
    return path.startswith(prefix)


def real_path(path: str) -> str:
    """*path* with every symlink in its directories resolved; the last part stays as it is
    (it may be a symlink stalwart is allowed to remove, not follow)."""
    head, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(head), name)


def file_id(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of what *path* leads to, or None when nothing is there."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


class PathKeys:
    """Identities of paths, with the directories' ``stat`` s cached for one decision.

    Make one per command phase: the cache assumes directories do not move meanwhile, which
    the environment lock ensures for everything but stalwart's own staging.
    """

    def __init__(self) -> None:
        self._dirs: dict[str, PathKey] = {}
        self._ids: dict[str, tuple[int, int] | None] = {}
        self._below: dict[tuple[str, str], str | None] = {}
        self._chains: dict[str, dict[tuple[int, int], str]] = {}
        self._resolved: dict[str, dict[tuple[int, int], str]] = {}  # by resolved path
        self._real: dict[str, str] = {}

    def key(self, path: str) -> PathKey:
        """The identity of the directory entry *path* names (a symlink itself, not its target)."""
        head, name = os.path.split(path if os.path.isabs(path) else os.path.abspath(path))
        return (*self.dir_key(head), name.casefold())

    def dir_key(self, directory: str) -> PathKey:
        """The identity of *directory*, following symlinks (it is a place to put things in)."""
        cached = self._dirs.get(directory)
        if cached is not None:
            return cached
        missing: list[str] = []
        current = directory
        while True:
            known = self._dirs.get(current)
            if known is not None:
                base = known
                break
            try:
                st = os.stat(current)
            except (FileNotFoundError, NotADirectoryError):
                parent, name = os.path.split(current)
                if parent == current:  # the root does not exist: only lexical identity is left
                    base = (current.casefold(),)
                    break
                missing.append(name.casefold())
                current = parent
                continue
            except OSError:
                base = (os.path.normcase(os.path.abspath(current)),)
                break
            base = (st.st_dev, st.st_ino)
            self._dirs[current] = base
            break
        result = (*base, *reversed(missing))
        self._dirs[directory] = result
        return result

    def within(self, root: str, path: str) -> bool:
        """Whether *path* is the directory *root* or lies below it, by identity.

        Walks up from *path* (its directories' symlinks resolved) comparing each existing
        ancestor's device and inode with *root*'s: no spelling, link, bind mount or case
        difference can hide that a path lies in *root*. When *root* does not exist yet, its
        resolved spelling is compared, case-folded.
        """
        return self.entry_below(root, path) is not None

    def dir_within(self, root: str, directory: str) -> bool:
        """Whether what *directory* leads to (symlinks followed: a place files are written
        into) is *root* or lies below it, by identity."""
        return self._dir_below(root, os.path.abspath(directory)) is not None

    def entry_below(self, root: str, path: str) -> str | None:
        """If *path* lies in *root* (by identity), the name of the entry directly in *root* on
        the way to it (``""`` for *root* itself); else None."""
        whole = path if os.path.isabs(path) else os.path.abspath(path)
        parent, name = os.path.split(whole)
        below = self._dir_below(root, parent)
        if below is not None:
            return name if below == "" else below
        # *path* itself may be *root*, or a link to it: only worth a stat when the names agree
        # (a file of another name replaced in place is the file, never what a link points to).
        if (
            parent != whole
            and name.casefold() == os.path.basename(os.path.abspath(root)).casefold()
        ):
            root_id = self._id(root, follow=True)
            if root_id is not None and self._id(whole, follow=False) == root_id:
                return ""
        return None

    def _dir_below(self, root: str, directory: str) -> str | None:
        cache_key = (root, directory)
        if cache_key in self._below:
            return self._below[cache_key]
        found: str | None = None
        root_id = self._id(root, follow=True)
        if root_id is None:
            real = self.real(directory)
            folded_root = self.real(root).casefold()
            if is_within(folded_root, real.casefold()):
                rel = os.path.relpath(real.casefold(), folded_root)
                found = "" if rel == "." else real[len(real) - len(rel) :].split(os.sep)[0]
        else:
            found = self._ancestors(directory).get(root_id)
        self._below[cache_key] = found
        return found

    def _ancestors(self, directory: str) -> dict[tuple[int, int], str]:
        """Each existing ancestor of what *directory* resolves to (itself included), by
        identity, with the name of the entry below it on the way (``""`` for itself)."""
        chain = self._chains.get(directory)
        if chain is None:
            chain = self._chains[directory] = self._resolved_chain(self.real(directory))
        return chain

    def _resolved_chain(self, real: str) -> dict[tuple[int, int], str]:
        # Built from the parent's chain: a tree of thousands of directories costs one stat
        # and one small dict per directory, not a walk to the root for each.
        pending: list[str] = []
        current = real
        while current not in self._resolved:
            pending.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        above = self._resolved.get(current, {})
        for path in reversed(pending):
            name = os.path.basename(path)
            # The parent itself ("") is now reached through *name*; the rest keep their entry.
            chain = {ident: entry or name for ident, entry in above.items()}
            ident = self._id(path, follow=True)
            if ident is not None:
                chain[ident] = ""  # the closest occurrence of an identity wins
            self._resolved[path] = above = chain
        return above

    def real(self, path: str) -> str:
        """``os.path.realpath(path)`` for a normalized absolute *path*, remembering every
        prefix resolved: thousands of files below a few directories cost a few lstat calls,
        not one per directory level per file (the stdlib resolves from scratch each time)."""
        path = os.path.abspath(path)
        known = self._real.get(path)
        if known is not None:
            return known
        head, name = os.path.split(path)
        if head == path:
            return path
        # Iterative over the unresolved ancestors (a wheel's tree may be deeper than the
        # recursion limit): find the deepest one already known, then resolve downwards.
        pending = [name]
        while head not in self._real:
            up, part = os.path.split(head)
            if up == head:
                self._real[head] = head
                break
            pending.append(part)
            head = up
        resolved = self._real[head]
        prefix = head
        for part in reversed(pending):
            prefix = os.path.join(prefix, part)
            candidate = os.path.join(resolved, part)
            try:
                is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            except (OSError, ValueError):  # ValueError: an embedded NUL
                is_link = False  # missing: the rest of the path is only words
            resolved = os.path.realpath(candidate) if is_link else candidate
            self._real[prefix] = resolved
        return resolved

    def _id(self, path: str, *, follow: bool) -> tuple[int, int] | None:
        cache_key = f"{int(follow)}{path}"
        if cache_key in self._ids:
            return self._ids[cache_key]
        try:
            st = os.stat(path) if follow else os.lstat(path)
            found: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except (OSError, ValueError):  # ValueError: an embedded NUL names nothing
            found = None
        self._ids[cache_key] = found
        return found


def walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top)`` top-down, never following symlinks, iterative at any depth.

    (``os.walk`` recurses before Python 3.12: a wheel can ship more nested directories than
    the recursion limit allows.) Symlinks, to directories too, are listed with the files.
    """
    stack = [top]
    while stack:
        directory = stack.pop()
        dirs: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    try:
                        is_dir = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        is_dir = False
                    (dirs if is_dir else files).append(entry.name)
        except OSError:
            continue
        yield directory, dirs, files
        stack.extend(os.path.join(directory, d) for d in reversed(dirs))


class NotRegularFileError(OSError):
    """A path stalwart must read is a FIFO, device, directory or socket, not a regular file.

    An ``OSError`` on purpose: to callers it is one more way a file cannot be read.
    """


_READ_FLAGS = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS |= getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)


def open_regular(path: str) -> BinaryIO:
    """Open *path* for reading only if it is a regular file; raises NotRegularFileError.

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a writer (and
    with the environment lock held, for ever); ``fstat`` of the open descriptor then decides,
    so nothing can be swapped in between a check and the open.
    """
    fd = os.open(path, os.O_RDONLY | _READ_FLAGS)  # noqa: TID251 - read-only
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(0, "not a regular file", path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file *path*; at most *limit* bytes (ValueError if larger)."""
    with open_regular(path) as f:
        if limit is None:
            return f.read()
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data
