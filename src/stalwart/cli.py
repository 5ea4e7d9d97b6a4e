"""The ``stalwart`` command: parse arguments, call the library, render the outcome.

Exit codes (also in the README):
  0 success · 1 the request failed (bad or incompatible wheel, conflict, unsafe RECORD,
  a named distribution is not installed)
  2 usage error · 3 a file stayed locked past --lock-timeout · 4 the environment cannot be
  used (locked by another stalwart, externally managed, interpreter broken)
  5 ``verify`` found differences · 130 interrupted
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

from stalwart import __version__

if TYPE_CHECKING:
    from stalwart.environment import Environment
    from stalwart.results import CommandResult

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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise _Fail(EXIT_USAGE, message)


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError("must be >= 0 seconds")
    return seconds


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: debug)")
    common.add_argument("-q", "--quiet", action="store_true", help="only errors")
    common.add_argument(
        "--lock-timeout",
        type=_timeout,
        metavar="SECONDS",
        help="how long to wait out a locked file per operation "
        "(default 10, env STALWART_LOCK_TIMEOUT; 0 = no retry)",
    )
    target = _Parser(add_help=False)
    target.add_argument("--python", metavar="PATH", help="target interpreter or venv directory")
    where = target.add_mutually_exclusive_group()
    where.add_argument("--prefix", metavar="DIR", help="install under this prefix")
    where.add_argument("--target", metavar="DIR", help="install everything into DIR")
    target.add_argument(
        "--lock-wait",
        type=_timeout,
        default=None,
        metavar="SECONDS",
        help="how long to wait for another stalwart process on the same environment",
    )

    parser = _Parser(prog="stalwart", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"stalwart {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("install", parents=[common, target], help="install wheel files")
    p.add_argument("wheels", nargs="*", metavar="WHEEL")
    p.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE")
    p.add_argument("--reinstall", "--force-reinstall", action="store_true", dest="reinstall")
    p.add_argument("--no-compile", action="store_true", help="do not write bytecode")
    p.add_argument("--no-verify-record", action="store_true", help="accept stale RECORDs")
    p.add_argument("--allow-overwrite", action="store_true")
    p.add_argument("--break-system-packages", action="store_true")
    p.add_argument(
        "--ignore-requires-python",
        action="store_true",
        help="install wheels whose Requires-Python excludes the target interpreter",
    )

    p = sub.add_parser("uninstall", parents=[common, target], help="remove distributions")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("-y", "--yes", action="store_true", help="accepted for pip compatibility")

    p = sub.add_parser("list", parents=[common, target], help="list installed distributions")
    p.add_argument("--format", choices=("columns", "json"), default="columns")

    p = sub.add_parser("show", parents=[common, target], help="details of a distribution")
    p.add_argument("names", nargs="+", metavar="NAME")

    p = sub.add_parser("verify", parents=[common, target], help="check files against RECORD")
    p.add_argument("names", nargs="*", metavar="NAME")

    p = sub.add_parser("recover", parents=[common, target], help="finish or undo a crashed command")
    p.add_argument(
        "--trust-journal",
        action="store_true",
        help="replay a journal whose signature cannot be checked (its key was lost); "
        "inspect it first: its paths are still checked",
    )
    sub.add_parser("self-check", parents=[common], help="check the filesystem layer here")
    return parser


class _Output:
    def __init__(self, verbose: int, quiet: bool) -> None:
        self.verbose = 0 if quiet else verbose
        self.quiet = quiet

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message)

    def detail(self, message: str) -> None:
        if self.verbose:
            print(message)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    out = _Output(0, False)
    try:
        args = _parser().parse_args(argv)
        out = _Output(getattr(args, "verbose", 0), getattr(args, "quiet", False))
        if args.command is None:
            _parser().print_help()
            return EXIT_USAGE
        if out.verbose >= 2:
            logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        with _errors(out.verbose):
            _configure_fs(args)
            return int(_COMMANDS[args.command](args, out))
    except _Fail as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


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


def _environment(args: argparse.Namespace) -> Environment:
    from stalwart.environment import query_environment

    return query_environment(args.python, prefix=args.prefix, target=args.target)


def _lock_wait(args: argparse.Namespace) -> float:
    from stalwart.envlock import DEFAULT_LOCK_WAIT

    wait: float | None = args.lock_wait
    return DEFAULT_LOCK_WAIT if wait is None else wait


def _requirements(files: list[str]) -> list[str]:
    wheels: list[str] = []
    for name in files:
        base = os.path.dirname(os.path.abspath(name))
        try:
            with open(name, encoding="utf-8") as f:
                lines = f.readlines()
        except UnicodeDecodeError:
            raise _Fail(EXIT_USAGE, f"{name}: not UTF-8 text") from None
        for raw in lines:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if not line.endswith(".whl"):
                raise _Fail(
                    EXIT_USAGE,
                    f"{name}: {line!r} is not a wheel file (only local wheels are supported)",
                )
            wheels.append(line if os.path.isabs(line) else os.path.join(base, line))
    return wheels


def _summary(out: _Output, verb: str, result: CommandResult) -> None:
    from stalwart import fs
    from stalwart.results import Action

    for report in result.recovered:
        out.warn(f"recovered an interrupted transaction: {report.action} ({report.txn_dir})")
    for note in result.notes:
        out.warn(note)
    lines = {
        Action.INSTALLED: " + {name} {version}",
        Action.UPGRADED: " ~ {name} {previous} -> {version}",
        Action.REINSTALLED: " ~ {name} {version} (reinstalled)",
        Action.UNCHANGED: " = {name} {version} (already installed)",
        Action.UNINSTALLED: " - {name} {version}",
    }
    for dist in result.dists:
        out.detail(
            lines[dist.action].format(name=dist.name, version=dist.version, previous=dist.previous)
        )
    for error in result.compile_errors:
        out.detail(f"not byte-compiled: {error}")
    n = len(result.changed)
    line = f"{verb} {n} package{'s' if n != 1 else ''} in {result.elapsed * 1000:.0f} ms"
    if out.verbose:
        line += f"; {fs.runtime().stats.summary()}"
        if result.phases:
            out.detail(
                "phases: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.phases.items())
            )
        for episode in fs.runtime().stats.episodes():
            state = "ok" if episode.resolved else "gave up"
            out.detail(
                f"   lock: {episode.op} {' -> '.join(episode.paths)}: {episode.attempts} "
                f"attempts, {episode.waited * 1000:.0f} ms ({state})"
            )
    out.info(line)


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
        TextColumn("{task.completed}/{task.total}"),
        console=Console(stderr=True),  # the TTY checked above; stdout stays clean
        transient=True,
    ) as bar:
        task = bar.add_task("staging", total=None)

        def update(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)

        yield update


def _cmd_install(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.install import InstallOptions, install

    wheels = [*args.wheels, *_requirements(args.requirement)]
    if not wheels:
        raise _Fail(EXIT_USAGE, "nothing to install: name wheel files or use -r FILE")
    env = _environment(args)
    options = InstallOptions(
        compile=not args.no_compile,
        verify_record=not args.no_verify_record,
        reinstall=args.reinstall,
        allow_overwrite=args.allow_overwrite,
        break_system_packages=args.break_system_packages,
        ignore_requires_python=args.ignore_requires_python,
        lock_wait=_lock_wait(args),
    )
    with _progress(out) as update:
        result = install(wheels, env, options, progress=update, notify=out.warn)  # type: ignore[arg-type]
    _summary(out, "Installed", result)
    return EXIT_OK


def _cmd_uninstall(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.uninstall import uninstall

    result = uninstall(args.names, _environment(args), lock_wait=_lock_wait(args), notify=out.warn)
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
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max([len(d.display_name) for d in dists] + [7])
    out.info(f"{'Package':<{width}}  Version")
    out.info(f"{'-' * width}  -------")
    for d in dists:
        out.info(f"{d.display_name:<{width}}  {d.version}")
    return EXIT_OK


def _cmd_show(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.installed import find_installed, require

    env = _environment(args)
    for i, d in enumerate(require(find_installed(env.lib_dirs), args.names)):
        if i:
            out.info("---")
        meta = d.metadata
        out.info(f"Name: {d.display_name}")
        out.info(f"Version: {d.version}")
        out.info(f"Summary: {meta.get('Summary', '')}")
        out.info(f"Location: {d.lib_dir}")
        out.info(f"Installer: {d.installer}")
        out.info(f"Requested: {'yes' if d.requested else 'no'}")
        out.info(f"Requires: {', '.join(meta.get_all('Requires-Dist') or [])}")
        out.info(f"Files: {len(d.record)}")
    return EXIT_OK


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

    env = _environment(args)
    with locked_environment(
        env, wait=_lock_wait(args), notify=out.warn, trust_journal=args.trust_journal
    ) as reports:
        pass
    for report in reports:
        out.info(f"{report.action}: {report.txn_dir} ({report.steps} steps)")
    if not reports:
        out.info("nothing to recover")
    return EXIT_OK


def _cmd_self_check(args: argparse.Namespace, out: _Output) -> int:
    from stalwart.selfcheck import run_self_check

    for line in run_self_check():
        out.info(line)
    return EXIT_OK


_COMMANDS = {
    "install": _cmd_install,
    "uninstall": _cmd_uninstall,
    "list": _cmd_list,
    "show": _cmd_show,
    "verify": _cmd_verify,
    "recover": _cmd_recover,
    "self-check": _cmd_self_check,
}
