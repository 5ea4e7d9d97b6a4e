"""Installing what the user asked for: resolve, download, verify, then one transaction.

The orchestration of ``stalwart install httpx``: under the environment lock, the requirements
are resolved against the indexes for the *target* interpreter (or a ``pylock.toml`` is taken
exactly as locked), every wheel is downloaded and hash-checked into the cache, and only then is
the whole set installed or upgraded by :func:`stalwart.install.install_locked`, as one
transaction. Nothing in the environment changes before every wheel is on disk and verified.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from stalwart import safety
from stalwart.fetch import fetch
from stalwart.install import InstallOptions, Progress, install_locked
from stalwart.installed import find_installed
from stalwart.resolve.finder import Finder, NotOnIndex, PageLike
from stalwart.resolve.model import AlreadyInstalled, Base, FromIndex, LocalFile
from stalwart.resolve.request import Wanted
from stalwart.resolve.resolver import (
    Client,
    Downloaded,
    MetadataSource,
    Request,
    Resolution,
    resolve,
)
from stalwart.results import Action, CommandResult, DistResult
from stalwart.session import locked_environment

if TYPE_CHECKING:
    from stalwart.environment import Environment
    from stalwart.net.settings import NetworkSettings

__all__ = ["Choices", "satisfy", "plan_only"]


@dataclass(frozen=True)
class Choices:
    """How to resolve (pip's and uv's options of the same names)."""

    upgrade: bool = False
    no_deps: bool = False
    pre: bool = False
    dry_run: bool = False


def satisfy(
    wanted: Wanted,
    env: Environment,
    options: InstallOptions,
    settings: NetworkSettings,
    choices: Choices = Choices(),
    *,
    client_factory: Callable[[NetworkSettings], Client] | None = None,
    progress: Progress | None = None,
    notify: Callable[[str], None] | None = None,
) -> CommandResult:
    """Install everything *wanted* asks for into *env* as one transaction."""
    start = time.perf_counter()
    result = CommandResult(notes=list(wanted.notes))
    safety.check_externally_managed(env, override=options.break_system_packages)
    client = _LazyClient(settings, client_factory)
    try:
        with locked_environment(
            env, wait=options.lock_wait, notify=notify, create=True
        ) as recovered:
            result.recovered = recovered
            installed = find_installed(env.lib_dirs)
            metadata = MetadataSource(client if client.usable else None)
            t0 = time.perf_counter()
            if progress is not None:
                progress("resolving", 0, 0)  # 0 of 0: a count nobody knows yet
            if wanted.lock_files:
                resolution, user_hashes = _from_locks(wanted, env, installed, options)
            else:
                finder = _finder(client, settings, env)
                request = Request(
                    roots=wanted.roots,
                    constraints=wanted.constraints,
                    upgrade=choices.upgrade,
                    reinstall=options.reinstall,
                    pre=choices.pre or wanted.options.pre,
                    no_deps=choices.no_deps,
                    require_hashes=wanted.require_hashes,
                    ignore_requires_python=options.ignore_requires_python,
                )
                resolution = resolve(
                    request,
                    finder=finder,
                    metadata=metadata,
                    installed=installed,
                    python_version=env.version,
                    markers=env.interpreter.markers,
                )
                user_hashes = {str(r.spec.name): r.hashes for r in wanted.roots if r.hashes}
            result.notes.extend(resolution.notes)
            result.resolved = len(resolution.chosen) + len(resolution.kept)
            t1 = time.perf_counter()
            result.phases["resolve"] = t1 - t0
            if choices.dry_run:
                result.dists = plan_only(resolution, installed)
                result.dry_run = True
            else:
                sources = fetch(
                    resolution,
                    metadata,
                    user_hashes=user_hashes,
                    require_hashes=wanted.require_hashes or bool(wanted.lock_files),
                    tick=None if progress is None else partial(progress, "downloading"),
                )
                result.downloaded = sum(
                    1 for c in resolution.chosen if not isinstance(c, LocalFile | AlreadyInstalled)
                )
                result.phases["download"] = time.perf_counter() - t1
                result.dists.extend(_kept(resolution))
                install_locked(sources, env, options, result, progress)
    finally:
        client.close()
    result.elapsed = time.perf_counter() - start
    return result


def plan_only(resolution: Resolution, installed: Mapping[str, object]) -> list[DistResult]:
    """What an install would do (``--dry-run``): the changes, and what is kept."""
    from stalwart.installed import Installed

    planned: list[DistResult] = []
    for cand in resolution.chosen:
        old = installed.get(cand.name)
        if isinstance(old, Installed):
            action = Action.REINSTALLED if old.version == str(cand.version) else Action.UPGRADED
            planned.append(DistResult(cand.name, str(cand.version), action, old.version))
        else:
            planned.append(DistResult(cand.name, str(cand.version), Action.INSTALLED))
    planned.extend(_kept(resolution))
    return planned


def _kept(resolution: Resolution) -> list[DistResult]:
    """Requested projects left as installed: said so, as uv says ``already installed``."""
    return [
        DistResult(k.dist.display_name, k.dist.version, Action.UNCHANGED)
        for k in resolution.kept
        if k.name in resolution.requested
    ]


def _finder(client: _LazyClient, settings: NetworkSettings, env: Environment) -> Finder:
    from stalwart.net.findlinks import find_links

    return Finder(
        client,
        index_urls=settings.index_urls,
        find_links=settings.find_links,
        list_find_links=lambda location: list(find_links(location, client.get()).files),  # type: ignore[arg-type]
        strategy=settings.index_strategy,
        tags=env.tags,
        python_version=env.version,
    )


def _from_locks(
    wanted: Wanted,
    env: Environment,
    installed: Mapping[str, object],
    options: InstallOptions,
) -> tuple[Resolution, dict[str, Mapping[str, tuple[str, ...]]]]:
    """The locked set exactly (PEP 751): no resolution; every file's hash is enforced."""
    from stalwart.index.simple import IndexFile
    from stalwart.installed import Installed
    from stalwart.requirements.pylock import load_lock, select_from_lock

    chosen: list[Base] = []
    kept: list[AlreadyInstalled] = []
    hashes: dict[str, Mapping[str, tuple[str, ...]]] = {}
    for path in wanted.lock_files:
        lock = load_lock(path)
        for locked in select_from_lock(
            lock,
            marker_env=env.interpreter.markers,
            tags=env.tags,
            python_version=env.version,
            path=path,
        ):
            old = installed.get(locked.name)
            same = isinstance(old, Installed) and old.version == str(locked.version)
            if same and not options.reinstall and isinstance(old, Installed):
                kept.append(AlreadyInstalled(locked.name, locked.version, old))
                continue
            hashes[locked.name] = {k: (v,) for k, v in locked.hashes.items()}
            if locked.path is not None:
                chosen.append(LocalFile(locked.name, locked.version, locked.path))
            else:
                url = locked.url or ""
                file = IndexFile(locked.filename, url, dict(locked.hashes), size=locked.size)
                chosen.append(FromIndex(locked.name, locked.version, file, url))
    requested = frozenset(c.name for c in chosen) | frozenset(k.name for k in kept)
    return Resolution(chosen, kept, requested), hashes


class _LazyClient:
    """The network client, made (and httpx imported) only when something needs the network:
    installing local wheels whose dependencies are all installed never touches it."""

    def __init__(
        self, settings: NetworkSettings, factory: Callable[[NetworkSettings], Client] | None
    ) -> None:
        self.settings = settings
        self._factory = factory
        self._client: Client | None = None

    @property
    def usable(self) -> bool:
        return True

    def get(self) -> Client:
        if self._client is None:
            if self._factory is not None:
                self._client = self._factory(self.settings)
            else:
                from stalwart.cache import CacheLayout
                from stalwart.net.client import Client as NetClient

                self._client = NetClient(self.settings, CacheLayout())
        return self._client

    def get_page(self, url: str) -> PageLike:
        from stalwart.errors import NetworkError

        try:
            return self.get().get_page(url)
        except NetworkError as exc:
            if getattr(exc, "status", None) == 404:
                raise NotOnIndex(url) from None
            raise

    def fetch_bytes(self, url: str, *, expected: Mapping[str, str] | None, limit: int) -> bytes:
        return self.get().fetch_bytes(url, expected=expected, limit=limit)

    def download(
        self, url: str, *, filename: str, hashes: Mapping[str, str], size: int | None = None
    ) -> Downloaded:
        return self.get().download(url, filename=filename, hashes=hashes, size=size)

    def close(self) -> None:
        client, self._client = self._client, None
        closer = getattr(client, "close", None)
        if closer is not None:
            closer()
