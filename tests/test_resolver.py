"""Resolution against an in-memory index: choices, extras, markers, conflicts explained.

The index here is a dict of PEP 691 JSON pages and the wheels are real files built by
``wheelfactory``, so the finder, the candidate evaluation, the metadata readers and resolvelib
all run for real; only the network is replaced (the loopback-server tests cover that).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.tags import Tag

from stalwart.errors import ResolutionError
from stalwart.resolve.finder import Finder, NotOnIndex
from stalwart.resolve.metadata import parse_metadata
from stalwart.resolve.model import AlreadyInstalled, FromIndex
from stalwart.resolve.request import gather
from stalwart.resolve.resolver import MetadataSource, Request, resolve
from wheelfactory import build_wheel, wheel_files

TAGS = [Tag("py3", "none", "any")]
PY = (3, 11, 7)
MARKERS = {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_version": "",
    "implementation_version": "3.11.7",
}


@dataclass
class Page:
    url: str
    content_type: str
    body: bytes


@dataclass
class Got:
    path: str
    sha256: str


@dataclass
class FakeIndex:
    """Index pages and wheel files in memory; records what was asked for."""

    root: Path
    base: str = "https://index.test/simple"
    projects: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    metadata: dict[str, bytes] = field(default_factory=dict)
    pages_asked: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)

    def add(
        self,
        name: str,
        version: str,
        requires: Iterable[str] = (),
        *,
        requires_python: str | None = None,
        yanked: bool = False,
        pep658: bool = True,
        extras: Iterable[str] = (),
    ) -> None:
        module = name.replace("-", "_")
        extra_lines = list(requires)
        path = build_wheel(
            self.root,
            module,
            version,
            {f"{module}.py": b""},
            requires=extra_lines,
            requires_python=requires_python,
        )
        meta = wheel_files(
            module, version, {}, requires=extra_lines, requires_python=requires_python
        )[f"{module}-{version}.dist-info/METADATA"]
        for extra in extras:
            meta += f"Provides-Extra: {extra}\n".encode()
        url = f"https://files.test/{path.name}"
        self.files[url] = path
        self.metadata[url + ".metadata"] = meta
        entry: dict[str, object] = {
            "filename": path.name,
            "url": url,
            "hashes": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
        }
        if requires_python:
            entry["requires-python"] = requires_python
        if yanked:
            entry["yanked"] = "broken"
        if pep658:
            entry["core-metadata"] = {"sha256": hashlib.sha256(meta).hexdigest()}
        self.projects.setdefault(name, []).append(entry)

    def add_sdist(self, name: str, version: str) -> None:
        url = f"https://files.test/{name}-{version}.tar.gz"
        self.projects.setdefault(name, []).append(
            {"filename": f"{name}-{version}.tar.gz", "url": url, "hashes": {}}
        )

    # -- the client protocol ----------------------------------------------------------------

    def get_page(self, url: str) -> Page:
        self.pages_asked.append(url)
        name = url.rstrip("/").rsplit("/", 1)[-1]
        if not url.startswith(self.base) or name not in self.projects:
            raise NotOnIndex(url)
        body = {"meta": {"api-version": "1.1"}, "name": name, "files": self.projects[name]}
        return Page(url, "application/vnd.pypi.simple.v1+json", json.dumps(body).encode())

    def fetch_bytes(self, url: str, *, expected: Mapping[str, str] | None, limit: int) -> bytes:
        data = self.metadata[url]
        if expected:
            assert hashlib.sha256(data).hexdigest() == expected["sha256"]
        return data

    def download(
        self, url: str, *, filename: str, hashes: Mapping[str, str], size: int | None = None
    ) -> Got:
        self.downloads.append(url)
        path = self.files[url]
        return Got(str(path), hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.fixture
def index(tmp_path: Path) -> FakeIndex:
    return FakeIndex(tmp_path / "files")


def run(
    index: FakeIndex,
    *specs: str,
    installed: Mapping[str, object] | None = None,
    indexes: list[str] | None = None,
    strategy: str = "first-index",
    **request: object,
):
    wanted = gather(list(specs), cwd=str(index.root))
    finder = Finder(
        index,
        index_urls=indexes or [index.base],
        strategy=strategy,  # type: ignore[arg-type]
        tags=TAGS,
        python_version=PY,
    )
    req = Request(roots=wanted.roots, constraints=wanted.constraints, **request)  # type: ignore[arg-type]
    return resolve(
        req,
        finder=finder,
        metadata=MetadataSource(index),
        installed=installed or {},  # type: ignore[arg-type]
        python_version=PY,
        markers=MARKERS,
    )


def chosen(resolution) -> dict[str, str]:
    return {c.name: str(c.version) for c in resolution.chosen}


def test_newest_versions_and_their_dependencies(index: FakeIndex) -> None:
    index.add("app", "1.0", ["lib>=1"])
    index.add("app", "2.0", ["lib>=2", "util"])
    index.add("lib", "1.5")
    index.add("lib", "2.1")
    index.add("util", "0.3")
    result = run(index, "app")
    assert chosen(result) == {"app": "2.0", "lib": "2.1", "util": "0.3"}
    assert result.requested == {"app"}
    assert not index.downloads  # PEP 658 metadata: no wheel fetched just to read METADATA


def test_without_pep658_the_wheel_is_read_and_kept(index: FakeIndex) -> None:
    index.add("solo", "1.0", pep658=False)
    result = run(index, "solo")
    assert index.downloads == ["https://files.test/solo-1.0-py3-none-any.whl"]
    ((cand, got),) = result.fetched.items()
    assert cand.name == "solo" and Path(got.path).is_file()


def test_extras_and_markers(index: FakeIndex) -> None:
    index.add(
        "web",
        "1.0",
        [
            "core",
            "h2; extra == 'http2'",
            "winonly; sys_platform == 'win32'",
            "old; python_version < '3.8'",
        ],
        extras=["http2"],
    )
    index.add("core", "1.0")
    index.add("h2", "4.0")
    assert chosen(run(index, "web")) == {"web": "1.0", "core": "1.0"}
    assert chosen(run(index, "web[http2]")) == {"web": "1.0", "core": "1.0", "h2": "4.0"}


def test_a_conflict_names_who_asked_for_what(index: FakeIndex) -> None:
    index.add("left", "1.0", ["shared<2"])
    index.add("right", "1.0", ["shared>=2"])
    index.add("shared", "1.0")
    index.add("shared", "2.0")
    with pytest.raises(ResolutionError) as caught:
        run(index, "left", "right")
    text = str(caught.value)
    assert "left 1.0 requires shared<2" in text
    assert "right 1.0 requires shared>=2" in text
    assert "versions that fit the target: 2.0, 1.0" in text


def test_an_sdist_only_project_says_so(index: FakeIndex) -> None:
    index.add("wants", "1.0", ["sourceonly"])
    index.add_sdist("sourceonly", "3.1")
    with pytest.raises(ResolutionError) as caught:
        run(index, "wants")
    text = str(caught.value)
    assert "sourceonly publishes only source distributions" in text
    assert "sourceonly-3.1.tar.gz" in text
    assert "building from source is not supported yet" in text


def test_unknown_project(index: FakeIndex) -> None:
    with pytest.raises(ResolutionError, match="no index or find-links location has a project"):
        run(index, "nowhere")


def test_requires_python_in_metadata_backtracks(index: FakeIndex) -> None:
    """The index does not say it (no data-requires-python); the metadata does."""
    index.add("modern", "2.0", requires_python=">=3.12")
    index.projects["modern"][-1].pop("requires-python")
    index.add("modern", "1.0")
    assert chosen(run(index, "modern")) == {"modern": "1.0"}


def test_yanked_only_when_pinned(index: FakeIndex) -> None:
    index.add("flaky", "1.0")
    index.add("flaky", "1.1", yanked=True)
    assert chosen(run(index, "flaky")) == {"flaky": "1.0"}
    result = run(index, "flaky==1.1")
    assert chosen(result) == {"flaky": "1.1"}
    assert any("yanked" in n for n in result.notes)


def test_prereleases_only_when_asked_or_nothing_else(index: FakeIndex) -> None:
    index.add("beta", "1.0")
    index.add("beta", "2.0b1")
    index.add("onlypre", "0.1a1")
    assert chosen(run(index, "beta")) == {"beta": "1.0"}
    assert chosen(run(index, "beta", pre=True)) == {"beta": "2.0b1"}
    assert chosen(run(index, "beta>=2.0b1")) == {"beta": "2.0b1"}
    assert chosen(run(index, "onlypre")) == {"onlypre": "0.1a1"}


@dataclass
class FakeInstalled:
    name: str
    version: str
    display_name: str
    dist_info: str
    metadata_text: str

    def read_text(self, member: str) -> str | None:
        return self.metadata_text if member == "METADATA" else None


def installed(name: str, version: str, requires: Iterable[str] = ()) -> FakeInstalled:
    text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    text += "".join(f"Requires-Dist: {r}\n" for r in requires)
    assert parse_metadata(text, "x").version == version
    return FakeInstalled(name, version, name, f"/site/{name}-{version}.dist-info", text)


def test_what_is_installed_is_kept_without_asking_the_index(index: FakeIndex) -> None:
    index.add("app", "1.0", ["lib"])
    index.add("lib", "2.0")
    have = {"lib": installed("lib", "1.0")}
    result = run(index, "app", installed=have)
    assert chosen(result) == {"app": "1.0"}
    assert [k.name for k in result.kept] == ["lib"]
    assert not any(url.endswith("/lib/") for url in index.pages_asked)


def test_upgrade_upgrades_what_is_named(index: FakeIndex) -> None:
    index.add("app", "1.0", ["lib"])
    index.add("app", "2.0", ["lib"])
    index.add("lib", "2.0")
    have = {"app": installed("app", "1.0", ["lib"]), "lib": installed("lib", "1.0")}
    result = run(index, "app", installed=have, upgrade=True)
    assert chosen(result) == {"app": "2.0"}  # lib stays: only-if-needed, as pip
    result = run(index, "app", installed=have)
    assert chosen(result) == {} and {k.name for k in result.kept} == {"app", "lib"}


def test_an_installed_version_that_does_not_fit_is_replaced(index: FakeIndex) -> None:
    index.add("lib", "2.0")
    have = {"lib": installed("lib", "1.0")}
    result = run(index, "lib>=2", installed=have)
    assert chosen(result) == {"lib": "2.0"}
    assert isinstance(result.chosen[0], FromIndex)


def test_first_index_wins_unless_told_otherwise(index: FakeIndex) -> None:
    """Dependency confusion: a name on the second index does not take over the first's."""
    index.add("internal", "1.0")
    second = "https://second.test/simple"
    index.projects["internal"].append(
        {**index.projects["internal"][0], "filename": "internal-9.0-py3-none-any.whl"}
    )
    first_only = dict(index.projects)
    index.projects = first_only

    class TwoIndexes(FakeIndex):
        pass

    two = TwoIndexes(index.root, projects={})
    two.files, two.metadata = index.files, index.metadata
    two.projects = {"internal": index.projects["internal"][:1]}
    evil_entry = dict(index.projects["internal"][1])
    seen: list[str] = []

    def get_page(url: str) -> Page:
        seen.append(url)
        if url.startswith(second):
            body = {"meta": {"api-version": "1.1"}, "name": "internal", "files": [evil_entry]}
            return Page(url, "application/vnd.pypi.simple.v1+json", json.dumps(body).encode())
        return FakeIndex.get_page(two, url)

    two.get_page = get_page  # type: ignore[method-assign]
    finder = Finder(two, index_urls=[two.base, second], tags=TAGS, python_version=PY)
    found = finder.find("internal")  # type: ignore[arg-type]
    assert [str(c.version) for c in found.candidates] == ["1.0"]
    assert seen == [f"{two.base}/internal/"]
    merged = Finder(
        two,
        index_urls=[two.base, second],
        strategy="unsafe-best-match",
        tags=TAGS,
        python_version=PY,
    )
    assert [str(c.version) for c in merged.find("internal").candidates] == ["9.0", "1.0"]  # type: ignore[arg-type]


def test_a_local_wheel_and_its_dependencies(index: FakeIndex, tmp_path: Path) -> None:
    index.add("dep", "1.0")
    local = build_wheel(tmp_path / "local", "mine", "0.1", {"mine.py": b""}, requires=["dep"])
    result = run(index, str(local))
    assert chosen(result) == {"mine": "0.1", "dep": "1.0"}
    assert result.requested == {"mine"}


def test_no_deps(index: FakeIndex) -> None:
    index.add("app", "1.0", ["lib"])
    assert chosen(run(index, "app", no_deps=True)) == {"app": "1.0"}


def test_constraints_limit_versions(index: FakeIndex, tmp_path: Path) -> None:
    index.add("lib", "1.0")
    index.add("lib", "2.0")
    constraints = tmp_path / "c.txt"
    constraints.write_text("lib<2\n")
    wanted = gather(["lib"], constraint_files=[str(constraints)], cwd=str(tmp_path))
    finder = Finder(index, index_urls=[index.base], tags=TAGS, python_version=PY)
    result = resolve(
        Request(roots=wanted.roots, constraints=wanted.constraints),
        finder=finder,
        metadata=MetadataSource(index),
        installed={},
        python_version=PY,
        markers=MARKERS,
    )
    assert chosen(result) == {"lib": "1.0"}


def test_kept_candidates_are_installed_ones(index: FakeIndex) -> None:
    have = {"lib": installed("lib", "1.0")}
    result = run(index, "lib", installed=have)
    assert result.chosen == []
    assert isinstance(result.kept[0], AlreadyInstalled)
