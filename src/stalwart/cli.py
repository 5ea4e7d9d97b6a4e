"""The ``stalwart`` command: parse arguments, call the library, render the outcome.

Exit codes (also in the README and in ``stalwart --help``):
  0 success · 1 the request failed (bad or incompatible wheel, conflict, unsafe RECORD, no
  versions that work together, a download that failed or did not match its hash)
  2 usage error · 3 a file stayed locked past --lock-timeout · 4 the environment cannot be
  used (locked by another stalwart, externally managed, interpreter broken, a journal to
  recover) · 5 ``verify`` found differences · 70 a bug in stalwart · 130 interrupted
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from stalwart import __version__

TYPE_CHECKING = False  # typing costs ~3 ms of start-up; mypy reads this name as typing's
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence
    from typing import NoReturn

    from stalwart.environment import Environment
    from stalwart.installed import Installed
    from stalwart.results import CommandResult
    from stalwart.wheel.headers import Headers

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_LOCKED", "EXIT_ENVIRONMENT"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_ENVIRONMENT = 4
EXIT_DIFFERENCES = 5
EXIT_INTERRUPTED = 130


class _Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _parser_class() -> type[argparse.ArgumentParser]:
    """argparse's parser, failing with :class:`_Fail` (exit 2) instead of exiting; argparse
    is imported here, not at start-up, so that ``stalwart --version`` stays fast."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            self.print_usage(sys.stderr)
            raise _Fail(EXIT_USAGE, message)

    return _Parser


def _timeout(value: str) -> float:
    import argparse

    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError("must be >= 0 seconds")
    return seconds


_EXIT_CODES_HELP = """exit codes:
  0    success
  1    the request failed: bad or incompatible wheel, conflict, no versions that work
       together, a download that failed or did not match its hash; nothing was changed
  2    usage error
  3    a file stayed locked past --lock-timeout; nothing was changed
  4    the environment cannot be used: another stalwart holds it, PEP 668, a broken
       interpreter, an interrupted command to recover
  5    verify found changed, missing or extra files
  70   a bug in stalwart (please report it; -vv shows the traceback)
  130  interrupted"""


def _parser() -> argparse.ArgumentParser:
    import argparse

    _Parser = _parser_class()
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: debug)")
    common.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    common.add_argument(
        "--lock-timeout",
        type=_timeout,
        metavar="SECONDS",
        help="how long to wait out a locked file per operation "
        "(default 10, env STALWART_LOCK_TIMEOUT; 0 = no retry)",
    )
    target = _Parser(add_help=False)
    target.add_argument(
        "--python",
        metavar="PATH",
        help="the target interpreter or virtual environment (default: $VIRTUAL_ENV, else a "
        ".venv in this directory or a parent)",
    )
    target.add_argument(
        "--system",
        action="store_true",
        help="without a virtual environment, use the python3 on PATH",
    )
    where = target.add_mutually_exclusive_group()
    where.add_argument("--prefix", metavar="DIR", help="install under this prefix (pip --prefix)")
    where.add_argument("--target", metavar="DIR", help="install everything into DIR (pip --target)")
    target.add_argument(
        "--lock-wait",
        type=_timeout,
        default=None,
        metavar="SECONDS",
        help="how long to wait for another stalwart process on the same environment (default 300)",
    )

    parser = _Parser(
        prog="stalwart",
        description="A wheel installer that survives file locks and installs all-or-nothing.",
        epilog=_EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stalwart {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.set_defaults(subparsers=sub.choices)  # for _parse's errors

    def command(
        name: str, text: str, parents: list[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        made: argparse.ArgumentParser = sub.add_parser(
            name,
            parents=parents,
            help=text,
            description=text,
            epilog=_EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return made

    p = command(
        "install",
        "install packages from an index, wheel files, URLs, requirements or lock files",
        [common, target],
    )
    p.add_argument(
        "specs",
        nargs="*",
        metavar="SPEC",
        help="a requirement (httpx[http2]>=0.27), a wheel file, or name @ URL",
    )
    p.add_argument(
        "-r",
        "--requirement",
        action="append",
        default=[],
        metavar="FILE",
        help="install from a requirements file, or exactly what a pylock.toml locks",
    )
    p.add_argument(
        "-c",
        "--constraint",
        action="append",
        default=[],
        metavar="FILE",
        help="constrain versions with this file's requirements",
    )
    p.add_argument("-U", "--upgrade", action="store_true", help="upgrade what is named")
    p.add_argument("--no-deps", action="store_true", help="install no dependencies")
    p.add_argument("--pre", action="store_true", help="allow pre-release versions")
    p.add_argument("--dry-run", action="store_true", help="say what would change; change nothing")
    p.add_argument(
        "--require-hashes",
        action="store_true",
        help="every package needs a --hash in the requirements (implied by any --hash)",
    )
    p.add_argument(
        "--reinstall",
        "--force-reinstall",
        action="store_true",
        dest="reinstall",
        help="reinstall everything, even what is installed at the right version",
    )
    p.add_argument("--no-compile", action="store_true", help="do not write bytecode")
    p.add_argument(
        "--no-verify-record", action="store_true", help="accept wheels whose RECORD is stale"
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the cache of unpacked wheels and bytecode (env STALWART_NO_CACHE)",
    )
    p.add_argument(
        "--cache-dir", metavar="DIR", help="the cache directory (env STALWART_CACHE_DIR)"
    )
    p.add_argument(
        "--link-mode",
        choices=("auto", "clone", "hardlink", "copy"),
        default=None,
        help="how files come from the cache: auto (clone, else hard link, else copy; the "
        "default), clone, hardlink or copy (env STALWART_LINK_MODE). A hard-linked file is the "
        "cache's file: edit it in place and you edit the cache (`stalwart cache verify` finds it)",
    )
    p.add_argument(
        "--allow-overwrite",
        action="store_true",
        help="overwrite files other installed distributions own",
    )
    p.add_argument(
        "--break-system-packages",
        action="store_true",
        help="install into an externally managed interpreter (PEP 668)",
    )
    p.add_argument(
        "--ignore-requires-python",
        action="store_true",
        help="install wheels whose Requires-Python excludes the target interpreter",
    )
    net = p.add_argument_group("indexes and network")
    net.add_argument(
        "-i",
        "--index-url",
        metavar="URL",
        help="the package index (default https://pypi.org/simple/; env STALWART_INDEX_URL, "
        "PIP_INDEX_URL, UV_INDEX_URL)",
    )
    net.add_argument(
        "--extra-index-url",
        action="append",
        default=[],
        metavar="URL",
        help="another index, after the first",
    )
    net.add_argument(
        "-f",
        "--find-links",
        action="append",
        default=[],
        metavar="DIR|URL",
        help="also take wheels from this directory or page",
    )
    net.add_argument("--no-index", action="store_true", help="use no index, only --find-links")
    net.add_argument(
        "--index-strategy",
        choices=("first-index", "unsafe-best-match"),
        help="first-index (default): a name comes from the first index that has it; "
        "unsafe-best-match: the best version of any index, as pip does",
    )
    net.add_argument(
        "--offline", action="store_true", help="use only what is in the cache; no network"
    )
    net.add_argument("--cert", metavar="FILE", help="a CA bundle to trust (env SSL_CERT_FILE)")
    net.add_argument("--client-cert", metavar="FILE", help="a client certificate (PEM)")
    net.add_argument(
        "--trusted-host",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain HTTP or an unverified certificate for this host",
    )
    net.add_argument(
        "--timeout", type=_timeout, metavar="SECONDS", help="network timeout (default 30)"
    )
    net.add_argument(
        "--retries", type=_count, metavar="N", help="retries of a failed download (default 3)"
    )

    p = command("uninstall", "remove installed distributions", [common, target])
    p.add_argument("names", nargs="+", metavar="NAME", help="distributions to remove")
    p.add_argument("-y", "--yes", action="store_true", help="accepted for pip compatibility")

    p = command("list", "list installed distributions", [common, target])
    p.add_argument(
        "--format",
        choices=("columns", "json", "freeze"),
        default="columns",
        help="columns (default), json, or freeze (name==version lines)",
    )

    command("freeze", "installed distributions as name==version lines", [common, target])

    p = command("show", "details of installed distributions", [common, target])
    p.add_argument("names", nargs="+", metavar="NAME", help="distributions to show")

    p = command("verify", "check installed files against their RECORD", [common, target])
    p.add_argument("names", nargs="*", metavar="NAME", help="distributions (default: all)")

    p = command("recover", "finish or undo a command that was interrupted", [common, target])
    p.add_argument(
        "--trust-journal",
        action="store_true",
        help="replay a journal whose signature cannot be checked (its key was lost); "
        "inspect it first: its paths are still checked",
    )
    command("self-check", "check the filesystem layer in a scratch directory", [common])
    p = command("cache", "the cache of downloads, unpacked wheels and bytecode", [common])
    p.add_argument(
        "action",
        choices=("dir", "clean", "prune", "verify"),
        help="dir: print where it is; clean: remove all of it; prune: remove what is damaged "
        "or half-made; verify: re-hash every unpacked file (--fix drops damaged entries)",
    )
    p.add_argument("--cache-dir", metavar="DIR", help="the cache directory")
    p.add_argument("--fix", action="store_true", help="with verify: drop damaged entries")
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse *argv*; an unknown option is reported with the usage of its subcommand (argparse
    reports it with the top-level usage, which does not list the option the user wanted)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        message = f"unrecognized arguments: {' '.join(extra)}"
        if args.command is not None:
            args.subparsers[args.command].error(message)
        parser.error(message)
    return args


def _count(value: str) -> int:
    import argparse

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


_UNSAFE = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in [
        *range(0x09),
        *range(0x0B, 0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),  # bidi embeddings and overrides
        *range(0x2066, 0x206A),  # bidi isolates
    ]
}


def _safe(text: str) -> str:
    """*text* with terminal control characters shown as escapes: a wheel's or index's words
    (a METADATA Summary, a RECORD path) must not move the cursor or recolour the terminal."""
    return text.translate(_UNSAFE)


class _Output:
    def __init__(self, verbose: int, quiet: bool) -> None:
        self.verbose = 0 if quiet else verbose
        self.quiet = quiet

    def info(self, message: str) -> None:
        if not self.quiet:
            print(_safe(message))

    def detail(self, message: str) -> None:
        if self.verbose:
            print(_safe(message))

    def warn(self, message: str) -> None:
        print(f"warning: {_safe(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args_given = sys.argv[1:] if argv is None else list(argv)
    if args_given == ["--version"]:  # the fast path: nothing but this module imported
        print(f"stalwart {__version__}")
        return EXIT_OK
    out = _Output(0, False)
    try:
        parser = _parser()
        args = _parse(parser, argv)
        out = _Output(getattr(args, "verbose", 0), getattr(args, "quiet", False))
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if out.verbose >= 2:
            import logging

            logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        with _errors(out.verbose):
            _configure_fs(args)
            return int(_COMMANDS[args.command](args, out))
    except _Fail as exc:
        print(f"error: {_safe(str(exc))}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `stalwart list | head`: the reader left; say nothing, as other tools do. stdout is
        # pointed at devnull so that flushing it at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)  # noqa: TID251 - not a file of ours
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug in stalwart, never the user's input


def _exit_codes() -> tuple[tuple[type[BaseException], int], ...]:
    """Exception class -> exit code, most specific first: the one place that decides."""
    from stalwart import errors as e

    return (
        (e.LockTimeoutError, EXIT_LOCKED),
        (e.RollbackIncompleteError, EXIT_ENVIRONMENT),
        (e.JournalError, EXIT_ENVIRONMENT),
        (e.UsageError, EXIT_USAGE),
        (e.TargetEnvironmentError, EXIT_ENVIRONMENT),
        (e.RequestError, EXIT_FAILED),
        (e.FilesystemError, EXIT_FAILED),
    )


@contextmanager
def _errors(verbose: int) -> Iterator[None]:
    """Map the library's exception families to one paragraph and an exit code.

    stalwart's own errors carry their message; an ``OSError`` from below (a full disk, a
    permission denied) names its file; anything else is a bug in stalwart and says so, with
    the traceback only at ``-vv``, since no input is supposed to reach that branch.
    """
    from stalwart.errors import StalwartError

    try:
        yield
    except StalwartError as exc:
        for cls, code in _exit_codes():
            if isinstance(exc, cls):
                raise _Fail(code, str(exc)) from None
        raise _Fail(EXIT_FAILED, str(exc)) from None
    except FileNotFoundError as exc:
        raise _Fail(EXIT_FAILED, f"no such file: {exc.filename}") from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise _Fail(EXIT_FAILED, f"{exc.strerror or exc}{where}") from None
    except (KeyboardInterrupt, SystemExit, _Fail):
        raise
    except Exception as exc:
        if verbose >= 2:
            import traceback

            traceback.print_exc()
        raise _Fail(
            EXIT_INTERNAL,
            f"internal error, a bug in stalwart ({type(exc).__name__}: {exc}); please report it"
            + ("" if verbose >= 2 else " (-vv shows the traceback)"),
        ) from None


def _configure_fs(args: argparse.Namespace) -> None:
    from stalwart import fs
    from stalwart.errors import UsageError

    try:
        fs.configure(policy=fs.policy_from_env())
    except ValueError as exc:  # a bad STALWART_LOCK_TIMEOUT: the user's setting
        raise UsageError(str(exc)) from None
    if getattr(args, "lock_timeout", None) is not None:
        fs.configure(timeout=args.lock_timeout)


def _environment(
    args: argparse.Namespace, out: _Output | None = None, *, changing: bool = False
) -> Environment:
    """The environment a command works on (found as uv finds it); a changing command says
    which, on stderr, so that nobody changes the wrong one unknowingly."""
    from stalwart.environment import query_environment
    from stalwart.interpreter import discover_python

    system = bool(args.system or args.target or args.prefix)
    python = discover_python(args.python, system=system)
    env = query_environment(python, prefix=args.prefix, target=args.target)
    if changing and out is not None and not out.quiet:
        version = ".".join(map(str, env.version))
        where = _shorten(env.target or env.prefix or env.interpreter.prefix)
        kind = "environment" if env.in_venv else "interpreter"
        print(f"Using Python {version} {kind} at {where}", file=sys.stderr)
    return env


def _shorten(path: str) -> str:
    """*path* relative to the current directory when that is shorter, as uv prints it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if len(rel) < len(path) else path


def _lock_wait(args: argparse.Namespace) -> float:
    from stalwart.envlock import DEFAULT_LOCK_WAIT

    wait: float | None = args.lock_wait
    return DEFAULT_LOCK_WAIT if wait is None else wait


def _summary(out: _Output, verb: str, result: CommandResult) -> None:
    """What a changing command did: the resolve and download counts, one line of totals,
    then one line per distribution (``+`` added, ``~`` changed, ``-`` removed, ``=`` kept)."""
    from stalwart import fs
    from stalwart.results import Action

    for report in result.recovered:
        out.warn(f"recovered an interrupted transaction: {report.action} ({report.txn_dir})")
    for note in result.notes:
        out.warn(note)
    if result.resolved:
        took = result.phases.get("resolve", 0.0)
        out.info(f"Resolved {_packages(result.resolved)} in {_ms(took)}")
    if result.downloaded:
        took = result.phases.get("download", 0.0)
        out.info(f"Downloaded {_packages(result.downloaded)} in {_ms(took)}")
    n = len(result.changed)
    if result.dry_run:
        line = f"Would change {_packages(n)} (dry run: nothing was changed)"
    else:
        line = f"{verb} {_packages(n)} in {_ms(result.elapsed)}"
    if out.verbose:
        line += f"; {fs.runtime().stats.summary()}"
        if result.placed:
            line += f"; from the cache: {result.placed}"
    out.info(line)
    lines = {
        Action.INSTALLED: " + {name} {version}",
        Action.UPGRADED: " ~ {name} {previous} -> {version}",
        Action.REINSTALLED: " ~ {name} {version} (reinstalled)",
        Action.UNCHANGED: " = {name} {version} already installed",
        Action.UNINSTALLED: " - {name} {version}",
    }
    for dist in result.dists:
        out.info(
            lines[dist.action].format(name=dist.name, version=dist.version, previous=dist.previous)
        )
    for error in result.compile_errors:
        out.detail(f"not byte-compiled: {error}")
    if out.verbose:
        if result.phases:
            out.detail("phases: " + ", ".join(f"{k} {_ms(v)}" for k, v in result.phases.items()))
        for episode in fs.runtime().stats.episodes():
            state = "ok" if episode.resolved else "gave up"
            out.detail(
                f"   lock: {episode.op} {' -> '.join(episode.paths)}: {episode.attempts} "
                f"attempts, {episode.waited * 1000:.0f} ms ({state})"
            )


def _packages(n: int) -> str:
    return f"{n} package{'s' if n != 1 else ''}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@contextmanager
def _progress(out: _Output) -> Iterator[object]:
    """A rich progress bar on an interactive terminal; nothing in CI, pipes or with -q."""
    if out.quiet or not sys.stderr.isatty() or os.environ.get("CI"):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        console=Console(stderr=True),  # the TTY checked above; stdout stays clean
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None, counts="")

        def update(phase: str, done: int, total: int) -> None:
            # total 0: not known yet (resolving), so the bar pulses and shows no count.
            counts = f"{done}/{total}" if total else ""
            bar.update(task, description=phase, completed=done, total=total or None, counts=counts)

        yield update


def _cmd_install(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.install import InstallOptions, install
    from stalwart.resolve.request import gather

    wanted = gather(
        args.specs,
        requirement_files=args.requirement,
        constraint_files=args.constraint,
        require_hashes=args.require_hashes,
    )
    if wanted.empty:
        if args.requirement and not args.specs:
            out.warn(f"nothing to install: {', '.join(args.requirement)} name no requirements")
            return EXIT_OK
        raise _Fail(EXIT_USAGE, "nothing to install: name packages or wheels, or use -r FILE")
    env = _environment(args, out, changing=True)
    link_mode = args.link_mode or os.environ.get("STALWART_LINK_MODE") or "auto"
    if link_mode not in ("auto", "clone", "hardlink", "copy"):
        raise _Fail(EXIT_USAGE, f"STALWART_LINK_MODE={link_mode!r}: not a link mode")
    if args.cache_dir:
        os.environ["STALWART_CACHE_DIR"] = os.path.abspath(args.cache_dir)
    options = InstallOptions(
        compile=not args.no_compile,
        verify_record=not args.no_verify_record,
        reinstall=args.reinstall,
        allow_overwrite=args.allow_overwrite,
        break_system_packages=args.break_system_packages,
        ignore_requires_python=args.ignore_requires_python,
        lock_wait=_lock_wait(args),
        cache=not (args.no_cache or _env_flag("STALWART_NO_CACHE")),
        link_mode=link_mode,  # type: ignore[arg-type]  # checked just above
    )
    with _progress(out) as update:
        if _only_local_wheels(args, wanted):
            # Nothing to resolve: the wheels given, no dependencies, no index.
            paths = [r.spec.path for r in wanted.roots]  # type: ignore[union-attr]
            result = install(paths, env, options, progress=update, notify=out.warn)  # type: ignore[arg-type]
        else:
            result = _satisfy(args, wanted, env, options, update, out)
    _summary(out, "Installed", result)
    return EXIT_OK


def _only_local_wheels(args: argparse.Namespace, wanted: object) -> bool:
    from stalwart.requirements.specs import LocalWheel
    from stalwart.resolve.request import Wanted

    assert isinstance(wanted, Wanted)
    return (
        args.no_deps
        and not args.dry_run
        and not wanted.lock_files
        and not wanted.constraints
        and not wanted.require_hashes
        and all(isinstance(r.spec, LocalWheel) and not r.spec.extras for r in wanted.roots)
    )


def _satisfy(
    args: argparse.Namespace,
    wanted: object,
    env: Environment,
    options: object,
    update: object,
    out: _Output,
) -> CommandResult:
    from stalwart.install import InstallOptions
    from stalwart.net.settings import NetworkSettings
    from stalwart.resolve.request import Wanted
    from stalwart.satisfy import Choices, satisfy

    assert isinstance(wanted, Wanted) and isinstance(options, InstallOptions)
    files = wanted.options
    explicit: dict[str, object] = {}
    index_url = args.index_url or files.index_url
    if index_url:
        explicit["index_url"] = index_url
    extra = [*args.extra_index_url, *files.extra_index_urls]
    if extra:
        explicit["extra_index_urls"] = tuple(extra)
    links = [os.path.abspath(f) if os.path.exists(f) else f for f in args.find_links]
    links += list(files.find_links)
    if links:
        explicit["find_links"] = tuple(links)
    if args.no_index or files.no_index:
        explicit["no_index"] = True
    hosts = [*args.trusted_host, *files.trusted_hosts]
    if hosts:
        explicit["trusted_hosts"] = tuple(hosts)
    for name in ("index_strategy", "cert", "client_cert", "timeout", "retries"):
        value = getattr(args, name)
        if value is not None:
            explicit[name] = value
    if args.offline:
        explicit["offline"] = True
    settings = NetworkSettings.from_environ(os.environ, **explicit)
    choices = Choices(
        upgrade=args.upgrade, no_deps=args.no_deps, pre=args.pre, dry_run=args.dry_run
    )
    return satisfy(
        wanted,
        env,
        options,
        settings,
        choices,
        progress=update,  # type: ignore[arg-type]
        notify=out.warn,
    )


def _cmd_uninstall(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.uninstall import uninstall

    env = _environment(args, out, changing=True)
    result = uninstall(
        args.names, env, lock_wait=_lock_wait(args), notify=out.warn, missing_ok=True
    )
    _summary(out, "Uninstalled", result)
    return EXIT_OK


def _warn_pending(env: Environment, out: _Output) -> None:
    from stalwart.transaction import pending_transactions

    if pending_transactions(env.state_dir):
        out.warn("an interrupted stalwart command left work behind; run `stalwart recover`")


def _cmd_list(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.installed import find_installed

    env = _environment(args)
    _warn_pending(env, out)
    dists = sorted(find_installed(env.lib_dirs).values(), key=lambda d: d.name)
    if args.format == "freeze":
        for d in dists:
            print(_safe(f"{d.display_name}=={d.version}"))
        return EXIT_OK
    if args.format == "json":
        rows = [
            {
                "name": d.display_name,
                "version": d.version,
                "installer": d.installer,
                "requested": d.requested,
            }
            for d in dists
        ]
        import json

        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max([len(d.display_name) for d in dists] + [7])
    out.info(f"{'Package':<{width}}  Version")
    out.info(f"{'-' * width}  -------")
    for d in dists:
        out.info(f"{d.display_name:<{width}}  {d.version}")
    return EXIT_OK


def _cmd_freeze(args: argparse.Namespace, out: _Output) -> int:
    args.format = "freeze"
    return _cmd_list(args, out)


def _cmd_show(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.installed import find_installed, require

    env = _environment(args)
    _warn_pending(env, out)
    installed = find_installed(env.lib_dirs)
    for i, d in enumerate(require(installed, args.names)):
        if i:
            out.info("---")
        meta = d.metadata
        out.info(f"Name: {d.display_name}")
        out.info(f"Version: {d.version}")
        out.info(f"Summary: {meta.get('Summary', '')}")
        out.info(f"Home-page: {_home_page(meta)}")
        out.info(f"Author: {meta.get('Author') or meta.get('Author-email') or ''}")
        out.info(f"License: {_license(meta)}")
        out.info(f"Location: {d.lib_dir}")
        out.info(f"Installer: {d.installer}")
        out.info(f"Requested: {'yes' if d.requested else 'no'}")
        out.info(f"Requires: {', '.join(_requires(d))}")
        out.info(f"Required-by: {', '.join(_required_by(d, installed))}")
        out.info(f"Files: {len(d.record)}")
    return EXIT_OK


def _home_page(meta: Headers) -> str:
    """``Home-page``, or the ``Project-URL`` labelled homepage that newer metadata uses."""
    page = meta.get("Home-page")
    if page:
        return page
    for entry in meta.get_all("Project-URL"):
        label, _, url = entry.partition(",")
        if label.strip().lower().replace("-", "").replace("_", "") == "homepage":
            return url.strip()
    return ""


def _license(meta: Headers) -> str:
    """``License-Expression`` (PEP 639), else the first line of ``License``, as pip shows."""
    text = meta.get("License-Expression") or meta.get("License") or ""
    return text.splitlines()[0] if text else ""


def _requires(dist: Installed) -> list[str]:
    """The names of the requirements that apply without extras (pip's ``Requires``)."""
    from packaging.requirements import InvalidRequirement, Requirement

    names: dict[str, None] = {}
    for line in dist.metadata.get_all("Requires-Dist"):
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is None or "extra" not in str(req.marker):
            names[req.name] = None
    return sorted(names, key=str.lower)


def _required_by(dist: Installed, installed: dict[str, Installed]) -> list[str]:
    from packaging.utils import canonicalize_name

    return sorted(
        (
            d.display_name
            for d in installed.values()
            if dist.name in {canonicalize_name(n) for n in _requires(d)}
        ),
        key=str.lower,
    )


def _cmd_verify(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.verify import verify_recovered

    env = _environment(args)
    recovered, reports = verify_recovered(env, args.names, wait=_lock_wait(args), notify=out.warn)
    for done in recovered:
        out.warn(f"recovered an interrupted transaction first: {done.action} ({done.txn_dir})")
    names = [r.name for r in reports]
    bad = 0
    for report in reports:
        for path in report.unchecked:
            out.warn(f"{report.name} {report.version}: cannot check {path}")
        if report.ok:
            out.detail(f"{report.name} {report.version}: ok")
            continue
        bad += 1
        out.info(f"{report.name} {report.version}:")
        for kind, paths in (
            ("changed", report.changed),
            ("missing", report.missing),
            ("extra", report.extra),
        ):
            for path in paths:
                out.info(f"  {kind}: {path}")
    plural = "s" if len(names) != 1 else ""
    out.info(f"Verified {len(names)} package{plural}: {bad} with differences")
    return EXIT_DIFFERENCES if bad else EXIT_OK


def _cmd_recover(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.session import locked_environment

    env = _environment(args, out, changing=True)
    with locked_environment(
        env, wait=_lock_wait(args), notify=out.warn, trust_journal=args.trust_journal
    ) as reports:
        pass
    for report in reports:
        out.info(f"{report.action}: {report.txn_dir} ({report.steps} steps)")
    if not reports:
        out.info("nothing to recover")
    return EXIT_OK


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _cmd_cache(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.cache import CacheLayout, cache_dir
    from stalwart.wheelcache import WheelCache

    root = os.path.abspath(args.cache_dir) if args.cache_dir else cache_dir()
    if args.action == "dir":
        print(root)
        return EXIT_OK
    cache = WheelCache(CacheLayout(root))
    if args.action == "clean":
        removed = cache.clean()
        out.info(f"Removed {root} ({_size(removed)})")
        return EXIT_OK
    if args.action == "prune":
        from stalwart.filedigests import FileDigests

        dropped = cache.prune()
        stale = FileDigests(CacheLayout(root)).prune()
        out.info(
            f"Pruned {len(dropped)} damaged or unfinished entr{'y' if len(dropped) == 1 else 'ies'}"
            f" and {stale} stale wheel digest{'' if stale == 1 else 's'}"
        )
        for path in dropped:
            out.detail(f"  {path}")
        return EXIT_OK
    damaged = cache.verify(fix=args.fix)
    for problem in damaged:
        out.info(problem)
    verb = "dropped" if args.fix else "found"
    noun = "entry" if len(damaged) == 1 else "entries"
    out.info(f"Verified the cache: {len(damaged)} damaged {noun} {verb}")
    return EXIT_DIFFERENCES if damaged and not args.fix else EXIT_OK


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _cmd_self_check(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.selfcheck import run_self_check

    for line in run_self_check():
        out.info(line)
    return EXIT_OK


_COMMANDS = {
    "install": _cmd_install,
    "uninstall": _cmd_uninstall,
    "list": _cmd_list,
    "freeze": _cmd_freeze,
    "show": _cmd_show,
    "verify": _cmd_verify,
    "recover": _cmd_recover,
    "self-check": _cmd_self_check,
    "cache": _cmd_cache,
}
