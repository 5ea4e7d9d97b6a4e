"""pip's requirements-file format, as users rely on it. Pure: reads files, writes nothing.

What is read, in pip's order (``pip/_internal/req/req_file.py`` does the same steps):

1. lines ending in ``\\`` are joined with the next one (a whole-line comment ends the join);
2. comments are removed: ``#`` at the start of a line or after whitespace, to the line's end;
3. ``${UPPER_CASE}`` names are replaced by environment variables (pip expands no other form);
4. the line is split where the first word starting with ``-`` begins: before it a requirement
   (:func:`~stalwart.requirements.specs.parse_spec`), from it options, split like a shell would.

Options: ``-r/--requirement`` and ``-c/--constraint`` (nested files, relative to the including
file), ``-i/--index-url``, ``--extra-index-url``, ``--no-index``, ``-f/--find-links``,
``--pre``, ``--prefer-binary``, ``--require-hashes``, ``--only-binary``, ``--no-binary``,
``--trusted-host``, and ``--hash`` on a requirement line. Where pip would silently ignore
something (an index option on a requirement line, ``--hash`` on a line of its own, a stray
word after an option, a comment that swallows the next line), this module refuses it instead,
and it refuses what stalwart cannot do (``-e``, build options) with a message saying so.

Every problem of every file is collected and reported at once, each at its ``file:line``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from stalwart.errors import InvalidRequirementError
from stalwart.hashnames import hex_length
from stalwart.index.simple import redact_url, redacted_repr

from .specs import LocalWheel, Spec, parse_spec

__all__ = [
    "RequirementLine",
    "IndexOptions",
    "RequirementsFile",
    "parse_requirements_file",
    "parse_requirements_files",
    "read_text_file",
    "decode_requirements",
    "HASH_ALGORITHMS",
    "MAX_FILE_BYTES",
    "MAX_FILES",
    "MAX_TOTAL_CHARS",
]

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest requirements file :func:`read_text_file` reads."""
MAX_FILES = 1000
"""Most files one parse opens, counting repeats: a diamond of ``-r`` lines can otherwise make
an exponential number of them from a few small files."""
MAX_TOTAL_CHARS = 64 * 1024 * 1024
"""Most text one parse reads across all its files."""
HASH_ALGORITHMS = {name: hex_length(name) for name in ("sha256", "sha384", "sha512")}
"""``--hash`` algorithms and their hex digest lengths: the ones pip accepts (its STRONG_HASHES)."""

_WHOLE_LINE_COMMENT = re.compile(r"\s*#")
_COMMENT = re.compile(r"(^|\s+)#.*$")
# pip: "${NAME}" with POSIX variable-name characters, upper case only (pip PR #3514).
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
_OPTION_START = re.compile(r"(?:^|\s)(?=-)")
_PEP263 = re.compile(rb"coding[:=]\s*([-\w.]+)")
_BOMS = (  # UTF-32 first: the UTF-16 LE BOM is a prefix of the UTF-32 LE one
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)

_NO_BUILD = "building from source is not supported yet"
# Options that take a value, by every spelling, mapped to one name.
_VALUE_OPTIONS = {
    "-r": "--requirement",
    "--requirement": "--requirement",
    "-c": "--constraint",
    "--constraint": "--constraint",
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--no-binary": "--no-binary",
    "--only-binary": "--only-binary",
    "--trusted-host": "--trusted-host",
    "--hash": "--hash",
    "-e": "--editable",
    "--editable": "--editable",
    "--config-settings": "--config-settings",
    "-C": "--config-settings",
    "--global-option": "--global-option",
    "--install-option": "--install-option",
    "--build-option": "--build-option",
    "--use-feature": "--use-feature",
}
_FLAG_OPTIONS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}
_REFUSED = {
    "--editable": "editable installs are not supported: stalwart installs wheels",
    "--config-settings": f"build options have no effect: {_NO_BUILD}",
    "--global-option": f"build options have no effect: {_NO_BUILD}",
    "--install-option": f"build options have no effect: {_NO_BUILD}",
    "--build-option": f"build options have no effect: {_NO_BUILD}",
}
_SUPPORTED = (
    "-r, -c, -i/--index-url, --extra-index-url, --no-index, -f/--find-links, --pre, "
    "--prefer-binary, --require-hashes, --only-binary, --no-binary, --trusted-host, --hash"
)


def _no_hashes() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RequirementLine:
    """One requirement (or constraint) and where it was written.

    ``hashes`` maps an algorithm to the hex digests allowed for it (``--hash``; any may match).
    """

    spec: Spec
    source: str
    line: int
    hashes: Mapping[str, tuple[str, ...]] = field(default_factory=_no_hashes, hash=False)

    @property
    def location(self) -> str:
        """``file:line``, for messages."""
        return f"{self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """Where to look for distributions, collected from option lines of every file read.

    ``index_url`` is the last ``--index-url`` seen (as in pip, a later one replaces an earlier
    one); ``find_links`` paths are absolute. ``only_binary``/``no_binary`` hold normalized names
    or ``:all:``, with pip's rule that naming a project in one removes it from the other.
    """

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    no_index: bool = False
    find_links: tuple[str, ...] = ()
    pre: bool = False
    prefer_binary: bool = False
    require_hashes: bool = False
    only_binary: frozenset[str] = frozenset()
    no_binary: frozenset[str] = frozenset()
    trusted_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return redacted_repr(self)


@dataclass(frozen=True, slots=True)
class RequirementsFile:
    """Everything read from requirements files and the files they include.

    ``files`` lists each file read, in order; ``notes`` says what was read but ignored.
    """

    requirements: tuple[RequirementLine, ...] = ()
    constraints: tuple[RequirementLine, ...] = ()
    options: IndexOptions = IndexOptions()
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def read_text_file(path: str) -> str:
    """Read a requirements file from disk, as pip decodes it (see :func:`decode_requirements`)."""
    from ._files import read_limited

    try:
        data = read_limited(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise InvalidRequirementError(
            f"cannot read the requirements file: {exc.strerror or exc}", subject=path
        ) from None
    except ValueError as exc:
        raise InvalidRequirementError(
            f"cannot read the requirements file: {exc}", subject=path
        ) from None
    return decode_requirements(data, path)


def decode_requirements(data: bytes, path: str) -> str:
    """Decode as pip does: a BOM, else a PEP 263 ``coding`` comment on line 1 or 2, else UTF-8.

    pip then falls back to the locale's encoding; this refuses instead, since the same file
    would mean different things on different machines.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            data, declared = data[len(bom) :], encoding
            break
    else:
        declared = "utf-8"
        for line in data.split(b"\n", 2)[:2]:
            match = _PEP263.search(line) if line.startswith(b"#") else None
            if match:
                declared = match[1].decode("ascii")
                break
    try:
        return data.decode(declared)
    except LookupError:
        problem = f"unknown encoding {declared!r} in its coding comment"
    except (UnicodeError, ValueError) as exc:
        problem = (
            f"not valid {declared}: {exc}; save it as UTF-8 or declare its encoding with a "
            "'# -*- coding: NAME -*-' first line"
        )
    raise InvalidRequirementError(problem, subject=path)


def parse_requirements_file(
    path: str,
    *,
    constraint: bool = False,
    read: Callable[[str], str] = read_text_file,
    exists: Callable[[str], bool] = os.path.exists,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> RequirementsFile:
    """Parse the requirements file *path* (constraints with ``constraint=True``; pip's ``-c``).

    *read* returns a file's text; *exists* says whether a path exists (relative wheel paths and
    ``--find-links`` directories are taken relative to the requirements file when they exist
    there, else to *cwd*); *environ* supplies ``${VAR}`` values (default: ``os.environ``).
    Raises :class:`~stalwart.errors.InvalidRequirementError` listing every problem found.
    """
    requirements, constraints = ((), (path,)) if constraint else ((path,), ())
    return parse_requirements_files(
        requirements, constraints, read=read, exists=exists, environ=environ, cwd=cwd
    )


def parse_requirements_files(
    requirements: Sequence[str] = (),
    constraints: Sequence[str] = (),
    *,
    read: Callable[[str], str] = read_text_file,
    exists: Callable[[str], bool] = os.path.exists,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> RequirementsFile:
    """Parse several files given on the command line (``-r A -r B -c C``) into one result.

    Requirements files are read first, then constraints files, each in the order given; the
    options of all of them are merged, as pip does.
    """
    parser = _Parser(read, exists, os.environ if environ is None else environ, cwd or os.getcwd())
    try:
        for path in requirements:
            parser.parse_file(path, constraint=False, chain=(), included_at=None)
        for path in constraints:
            parser.parse_file(path, constraint=True, chain=(), included_at=None)
    except _Fatal as fatal:
        parser.problem(fatal.location, str(fatal))
    if parser.problems:
        first = (requirements or constraints or ("requirements",))[0]
        if len(parser.problems) == 1:
            location, message = parser.problems[0]
            raise InvalidRequirementError(message, subject=location or first)
        raise InvalidRequirementError(
            [f"{loc}: {msg}" if loc else msg for loc, msg in parser.problems], subject=first
        )
    return parser.result()


class _Fatal(Exception):
    """A problem after which reading on would only add noise (a limit was reached)."""

    def __init__(self, location: str | None, message: str) -> None:
        super().__init__(message)
        self.location = location


class _Parser:
    """The state of one parse: what was found so far, and every problem."""

    def __init__(
        self,
        read: Callable[[str], str],
        exists: Callable[[str], bool],
        environ: Mapping[str, str],
        cwd: str,
    ) -> None:
        self.read = read
        self.exists = exists
        self.environ = environ
        self.cwd = cwd
        self.problems: list[tuple[str | None, str]] = []
        self.notes: list[str] = []
        self.requirements: list[RequirementLine] = []
        self.constraints: list[RequirementLine] = []
        self.files: list[str] = []
        self.total_chars = 0
        # options
        self.index_url: str | None = None
        self.extra_index_urls: list[str] = []
        self.no_index = False
        self.find_links: list[str] = []
        self.flags: set[str] = set()
        self.only_binary: set[str] = set()
        self.no_binary: set[str] = set()
        self.trusted_hosts: list[str] = []

    def problem(self, location: str | None, message: str) -> None:
        self.problems.append((location, redact_url(message)))

    def result(self) -> RequirementsFile:
        options = IndexOptions(
            index_url=self.index_url,
            extra_index_urls=tuple(self.extra_index_urls),
            no_index=self.no_index,
            find_links=tuple(self.find_links),
            pre="--pre" in self.flags,
            prefer_binary="--prefer-binary" in self.flags,
            require_hashes="--require-hashes" in self.flags,
            only_binary=frozenset(self.only_binary),
            no_binary=frozenset(self.no_binary),
            trusted_hosts=tuple(self.trusted_hosts),
        )
        return RequirementsFile(
            tuple(self.requirements),
            tuple(self.constraints),
            options,
            tuple(self.files),
            tuple(self.notes),
        )

    # -- files ------------------------------------------------------------------------------

    def parse_file(
        self, path: str, *, constraint: bool, chain: tuple[str, ...], included_at: str | None
    ) -> None:
        # *path* is kept as spelled, for messages; it is read through its absolute form, so a
        # cwd given as a parameter means the same for every relative path.
        absolute = os.path.normpath(os.path.join(self.cwd, path))
        # A cycle is the same file, however it is spelled: compare resolved paths.
        key = os.path.normcase(os.path.realpath(absolute))
        if key in chain:
            cycle = " -> ".join((*chain[chain.index(key) :], key))
            self.problem(included_at or path, f"{path} includes itself ({cycle})")
            return
        if len(self.files) >= MAX_FILES:
            raise _Fatal(included_at, f"more than {MAX_FILES} requirements files included")
        self.files.append(path)
        try:
            text = self.read(absolute)
        except InvalidRequirementError as exc:
            reason = "; ".join(exc.problems)
            if included_at:
                self.problem(included_at, f"{path}: {reason}")
            else:
                self.problem(exc.subject or path, reason)
            return
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.problem(included_at or path, f"cannot read {path}: {reason}")
            return
        self.total_chars += len(text)
        if self.total_chars > MAX_TOTAL_CHARS:
            raise _Fatal(path, f"requirements files larger than {MAX_TOTAL_CHARS} characters")
        here = os.path.dirname(absolute)
        for number, line in self._logical_lines(text, path):
            self._line(line, path, here, number, constraint, (*chain, key))

    def _logical_lines(self, text: str, path: str) -> Iterator[tuple[int, str]]:
        """Joined, comment-free, expanded lines, each with the number of its first line."""
        for number, joined in self._joined(text, path):
            line = _COMMENT.sub("", joined).strip()
            expanded = self._expand(line, f"{path}:{number}") if line else None
            if expanded:
                yield number, expanded

    def _joined(self, text: str, path: str) -> Iterator[tuple[int, str]]:
        # str.splitlines, as pip, so line numbers agree with pip's messages.
        pending: list[str] = []
        first = 0
        comment_open = False  # a joined part so far ends in an inline comment
        for number, raw in enumerate(text.splitlines(), start=1):
            if _WHOLE_LINE_COMMENT.match(raw):
                if pending:  # pip: a comment line ends the continuation, adding nothing
                    yield first, "".join(pending)
                    pending, comment_open = [], False
                continue
            if comment_open and raw.strip():
                # pip joins first and strips comments after, so this line would silently
                # become part of the comment above: almost never what the author meant.
                self.problem(
                    f"{path}:{number}",
                    f"line {number - 1} ends with a comment and a '\\', which would make this "
                    "line part of the comment (pip ignores it); remove the comment or the '\\'",
                )
            continued = raw.endswith("\\")
            part = raw[:-1] if continued else raw
            if not pending:
                first = number
            pending.append(part)
            comment_open = comment_open or bool(_COMMENT.search(part))
            if not continued:
                yield first, "".join(pending)
                pending, comment_open = [], False
        if pending:
            yield first, "".join(pending)

    def _expand(self, line: str, location: str) -> str | None:
        """*line* with ``${VAR}`` replaced; None (after a problem) when a variable is unset.

        pip leaves an unset variable as written, which then fails later as a strange URL or
        requirement; naming the variable is clearer.
        """
        missing = sorted({m for m in _ENV_VAR.findall(line) if m not in self.environ})
        if missing:
            self.problem(location, f"environment variable not set: {', '.join(missing)}")
            return None
        return _ENV_VAR.sub(lambda m: self.environ[m[1]], line)

    # -- lines ------------------------------------------------------------------------------

    def _line(
        self,
        line: str,
        path: str,
        here: str,
        number: int,
        constraint: bool,
        chain: tuple[str, ...],
    ) -> None:
        location = f"{path}:{number}"
        split = _OPTION_START.search(line)
        args, options_text = (line[: split.start()], line[split.end() :]) if split else (line, "")
        options = self._options(options_text, location)
        if options is None:
            return
        if args.strip():
            self._requirement(args.strip(), options, path, here, number, constraint)
            return
        for name, value in options:
            self._option(name, value, here, location, constraint, chain)

    def _options(self, text: str, location: str) -> list[tuple[str, str | None]] | None:
        """``(canonical name, value)`` pairs, or None after recording a problem."""
        import shlex

        try:
            words = shlex.split(text)
        except ValueError as exc:
            self.problem(location, f"cannot split the options ({exc}): {text}")
            return None
        found: list[tuple[str, str | None]] = []
        index = 0
        while index < len(words):
            word = words[index]
            index += 1
            name, sep, value = word.partition("=") if word.startswith("--") else (word, "", "")
            if not word.startswith("-"):
                # pip's option parser would drop it without a word.
                self.problem(location, f"unexpected {word!r} among options (options come last)")
                return None
            if name in _FLAG_OPTIONS:
                if sep:
                    self.problem(location, f"{name} takes no value")
                    return None
                found.append((name, None))
                continue
            if not word.startswith("--") and len(word) > 2:
                name, value, sep = word[:2], word[2:], "="  # "-rfile.txt", as optparse reads it
            canonical = _VALUE_OPTIONS.get(name)
            if canonical is None:
                self.problem(
                    location, f"unknown or unsupported option {name!r} (supported: {_SUPPORTED})"
                )
                return None
            if not sep:
                if index >= len(words):
                    self.problem(location, f"{name} needs a value")
                    return None
                value = words[index]
                index += 1
            found.append((canonical, value))
        return found

    def _requirement(
        self,
        text: str,
        options: list[tuple[str, str | None]],
        path: str,
        here: str,
        number: int,
        constraint: bool,
    ) -> None:
        location = f"{path}:{number}"
        hashes: dict[str, list[str]] = {}
        ok = True
        for name, value in options:
            if name == "--hash":
                ok = self._hash(value or "", hashes, location) and ok
            elif name in _REFUSED:
                self.problem(location, f"{name}: {_REFUSED[name]}")
                ok = False
            else:
                # pip ignores these on a requirement line without a word; refuse instead.
                self.problem(
                    location,
                    f"{name} does not apply to one requirement (pip would ignore it); "
                    "put it on a line of its own",
                )
                ok = False
        spec = self._spec(text, here, location)
        if spec is None or not ok:
            return
        if constraint:
            # pip: "Unnamed requirements are not allowed as constraints"; "Constraints cannot
            # have extras".
            if isinstance(spec, LocalWheel):
                self.problem(location, f"a constraint must name a project, not a file: {text}")
                return
            if spec.extras:
                self.problem(location, f"constraints cannot have extras: {text}")
                return
        entry = RequirementLine(
            spec,
            path,
            number,
            MappingProxyType({k: tuple(v) for k, v in hashes.items()}),
        )
        (self.constraints if constraint else self.requirements).append(entry)

    def _spec(self, text: str, here: str, location: str) -> Spec | None:
        try:
            spec = parse_spec(text, base_dir=here)
            if isinstance(spec, LocalWheel) and not self.exists(spec.path):
                # Relative to the requirements file when it is there, else to the cwd.
                spec = parse_spec(text, base_dir=self.cwd)
        except InvalidRequirementError as exc:
            self.problem(location, str(exc))
            return None
        return spec

    def _hash(self, value: str, hashes: dict[str, list[str]], location: str) -> bool:
        algorithm, sep, digest = value.partition(":")
        algorithm, digest = algorithm.lower(), digest.lower()
        if not sep or algorithm not in HASH_ALGORITHMS:
            self.problem(
                location,
                f"--hash={value}: give ALGORITHM:HEXDIGEST with one of "
                f"{', '.join(HASH_ALGORITHMS)}",
            )
            return False
        length = HASH_ALGORITHMS[algorithm]
        if len(digest) != length or not all(c in "0123456789abcdef" for c in digest):
            self.problem(location, f"--hash={value}: a {algorithm} digest is {length} hex digits")
            return False
        digests = hashes.setdefault(algorithm, [])
        if digest not in digests:
            digests.append(digest)
        return True

    # -- options ----------------------------------------------------------------------------

    def _option(
        self,
        name: str,
        value: str | None,
        here: str,
        location: str,
        constraint: bool,
        chain: tuple[str, ...],
    ) -> None:
        text = value or ""
        if name in ("--requirement", "--constraint"):
            nested = self._nested_path(text, here, location)
            if nested is not None:
                # Everything reached through -c stays a constraint; pip would turn the lines of
                # a -r inside a constraints file into requirements, which nobody means.
                self.parse_file(
                    nested,
                    constraint=constraint or name == "--constraint",
                    chain=chain,
                    included_at=location,
                )
        elif name == "--index-url":
            if self._check_url(name, text, location):
                self.index_url = text
        elif name == "--extra-index-url":
            if self._check_url(name, text, location) and text not in self.extra_index_urls:
                self.extra_index_urls.append(text)
        elif name == "--find-links":
            self._find_links(text, here, location)
        elif name in _FLAG_OPTIONS:
            if name == "--no-index":
                self.no_index = True
            self.flags.add(name)
        elif name in ("--only-binary", "--no-binary"):
            target, other = (
                (self.only_binary, self.no_binary)
                if name == "--only-binary"
                else (self.no_binary, self.only_binary)
            )
            self._format_control(name, text, target, other, location)
        elif name == "--trusted-host":
            if not text or any(c.isspace() for c in text):
                self.problem(location, f"--trusted-host needs a host name, not {text!r}")
            elif text not in self.trusted_hosts:
                self.trusted_hosts.append(text)
        elif name == "--hash":
            self.problem(location, "--hash on a line without a requirement (pip would ignore it)")
        elif name == "--use-feature":
            self.notes.append(
                redact_url(f"{location}: ignored --use-feature={text} (a pip feature flag)")
            )
        else:
            self.problem(location, f"{name}: {_REFUSED[name]}")

    def _nested_path(self, text: str, here: str, location: str) -> str | None:
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        if not text:
            self.problem(location, "-r/-c needs a file name")
            return None
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = None
        scheme = parts.scheme.lower() if parts else ""
        if parts and scheme == "file":
            return url2pathname(parts.path)
        if scheme in ("http", "https"):
            self.problem(location, f"requirements files from URLs are not supported yet: {text}")
            return None
        # Kept relative to the including file's directory, as pip joins it; read through cwd.
        return os.path.normpath(os.path.join(here, text))

    def _check_url(self, name: str, text: str, location: str) -> bool:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(text)
            ok = parts.scheme.lower() in ("http", "https", "file") and bool(
                parts.netloc or parts.scheme.lower() == "file"
            )
        except ValueError:
            ok = False
        if not ok:
            self.problem(location, f"{name} needs an http(s) or file URL, not {text!r}")
        return ok

    def _find_links(self, text: str, here: str, location: str) -> None:
        from urllib.parse import urlsplit

        if not text:
            self.problem(location, "--find-links needs a URL or a directory")
            return
        try:
            is_url = urlsplit(text).scheme.lower() in ("http", "https", "file")
        except ValueError:
            is_url = False
        if is_url:
            value = text
        else:
            # pip: relative to the requirements file when it exists there, else as given
            # (that is, relative to the current directory).
            beside = os.path.normpath(os.path.join(here, text))
            value = (
                beside if self.exists(beside) else os.path.normpath(os.path.join(self.cwd, text))
            )
        if value not in self.find_links:
            self.find_links.append(value)

    def _format_control(
        self, name: str, text: str, target: set[str], other: set[str], location: str
    ) -> None:
        """pip's ``--only-binary``/``--no-binary`` rules, which act on each other's sets."""
        from packaging.utils import canonicalize_name

        if not text or text.startswith("-"):
            self.problem(location, f"{name} needs :all:, :none: or project names")
            return
        for item in text.split(","):
            entry = item.strip()
            if not entry:
                continue  # "a,b," - pip keeps an empty name, which matches nothing
            if entry == ":all:":
                # Everything is now in this set and nothing in the other.
                other.clear()
                target.clear()
                target.add(":all:")
            elif entry == ":none:":
                target.clear()
            else:
                try:
                    normalized = canonicalize_name(entry, validate=True)
                except ValueError:
                    self.problem(location, f"{name}: {entry!r} is not a project name")
                    continue
                other.discard(normalized)
                if ":all:" not in target:
                    target.add(normalized)
