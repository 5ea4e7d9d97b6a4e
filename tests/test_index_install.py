"""Installing from a package index, end to end: the real CLI against real loopback indexes.

The index is ``tests/indexserver.py`` (a real HTTP server on 127.0.0.1, PEP 691 JSON or PEP 503
HTML, with or without PEP 658 metadata) serving real wheels from PyPI, downloaded once into
``.cache/wheels/``; one test runs the real ``pypiserver``. pip, run against the same index, is
the reference for what should be chosen. No test reaches a public index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from indexserver import IndexServer
from realwheels import clean_env, index_wheels, pip
from treesnap import snapshot
from venvs import Venv, cli_environ, copy_venv, without_banner
from wheelfactory import build_wheel

pytestmark = [
    pytest.mark.network,  # the real wheels are fetched once from PyPI into .cache/
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX venv layout"),
]

STALWART = Path(sys.executable).with_name("stalwart")
Start = Callable[..., IndexServer]
Run = Callable[..., subprocess.CompletedProcess[str]]
WANT = ["httpx[http2,cli]", "attrs"]


@pytest.fixture(scope="module")
def wheels() -> list[Path]:
    return index_wheels()


@pytest.fixture
def venv(pristine_venv: Venv, tmp_path: Path) -> Venv:
    return copy_venv(pristine_venv, tmp_path / "venv")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_environ(tmp_path / "cache")


@pytest.fixture
def run(env: dict[str, str]) -> Run:
    def go(
        *args: str | Path, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(STALWART), *map(str, args)],
            capture_output=True,
            text=True,
            env={**env, **(extra or {})},
            timeout=300,
            check=False,
        )

    return go


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def installed(run: Run, venv: Venv) -> dict[str, str]:
    rows = json.loads(ok(run("list", "--python", venv.python, "--format", "json")).stdout)
    return {r["name"].lower().replace("_", "-"): r["version"] for r in rows}


def pips_choice(index: str, tmp_path: Path, venv: Venv, *specs: str) -> dict[str, str]:
    """What pip would install for *specs* from *index* into *venv* (its dry-run report)."""
    report = tmp_path / "pip-report.json"
    pip(venv.root, "install", "--dry-run", "--report", str(report), "--index-url", index, *specs)
    data = json.loads(report.read_text())
    return {
        i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
        for i in data["install"]
    }


@pytest.mark.parametrize(
    ("form", "metadata"), [("json", True), ("html", False)], ids=["json+pep658", "html"]
)
def test_the_same_set_as_pip(
    wheels: list[Path],
    index_server: Start,
    run: Run,
    venv: Venv,
    tmp_path: Path,
    form: str,
    metadata: bool,
) -> None:
    server = index_server(wheels, html=form == "html", json=form == "json", metadata=metadata)
    reference = copy_venv(venv.root, tmp_path / "reference")  # the same base, before install
    want = pips_choice(server.index_url, tmp_path, reference, *WANT)
    pip_requests = len(server.requests)
    proc = ok(run("install", "--index-url", server.index_url, "--python", venv.python, *WANT))
    got = installed(run, venv)
    assert got == want
    assert got["httpx"] == "0.29.0" and got["h11"] == "0.16.0" and got["attrs"] == "26.1.0"
    # What users see: the resolve and download lines, and one line per package added.
    assert f"Resolved {len(want)} packages in " in proc.stdout
    assert f"Downloaded {len(want)} packages in " in proc.stdout
    assert " + httpx 0.29.0" in proc.stdout
    assert without_banner(proc.stderr).strip() == "", proc.stderr
    # Each wheel came over the network at most once; with PEP 658, only the chosen ones.
    fetched = [r.path for r in server.requests[pip_requests:] if r.path.endswith(".whl")]
    assert len(fetched) == len(set(fetched))
    if metadata:
        assert sorted(p.rsplit("/", 1)[-1] for p in fetched) == sorted(
            f.name for f in wheels if _name_version(f.name) in want.items()
        )
        assert any(r.path.endswith(".whl.metadata") for r in server.requests[pip_requests:])
    # direct_url.json is written only for what the user named by URL or path (pip: the same).
    site = venv.site
    assert not list(site.glob("*.dist-info/direct_url.json"))
    requested = {p.parent.name.split("-")[0].lower() for p in site.glob("*.dist-info/REQUESTED")}
    assert requested == {"httpx", "attrs"}


def _name_version(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return name.lower().replace("_", "-"), version


def test_a_warm_cache_downloads_nothing(
    wheels: list[Path], index_server: Start, run: Run, venv: Venv, tmp_path: Path
) -> None:
    server = index_server(wheels)
    ok(run("install", "-i", server.index_url, "--python", venv.python, *WANT))
    before = len(server.requests)
    second = empty_venv(tmp_path / "second")
    ok(run("install", "-i", server.index_url, "--python", second.python, *WANT))
    later = server.requests[before:]
    assert not [r for r in later if "/files/" in r.path], later  # wheels: from the cache
    pages = [r for r in later if r.path.startswith("/simple/")]
    assert pages and all("if-none-match" in r.headers for r in pages)  # revalidated, 304
    # --offline: the cache alone.
    third = empty_venv(tmp_path / "third")
    server.close()
    ok(run("install", "--offline", "-i", server.index_url, "--python", third.python, *WANT))
    assert installed(run, third) == installed(run, second)


def empty_venv(root: Path) -> Venv:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    return Venv(root)


def test_upgrade_says_what_changed(
    wheels: list[Path], index_server: Start, run: Run, venv: Venv
) -> None:
    server = index_server(wheels)
    ok(run("install", "-i", server.index_url, "--python", venv.python, "attrs==23.2.0", "idna"))
    kept = ok(run("install", "-i", server.index_url, "--python", venv.python, "attrs", "idna"))
    assert " = attrs 23.2.0 already installed" in kept.stdout
    up = ok(run("install", "-U", "-i", server.index_url, "--python", venv.python, "attrs"))
    assert " ~ attrs 23.2.0 -> 26.1.0" in up.stdout
    assert installed(run, venv)["attrs"] == "26.1.0"
    dry = ok(run("install", "--dry-run", "-i", server.index_url, "--python", venv.python, "httpx"))
    assert "dry run: nothing was changed" in dry.stdout
    assert " + httpx 0.29.0" in dry.stdout
    assert "httpx" not in installed(run, venv)


def test_a_lock_file_from_pip_lock_installs_exactly_the_locked_set(
    wheels: list[Path], index_server: Start, run: Run, venv: Venv, tmp_path: Path
) -> None:
    server = index_server(wheels)
    lock = tmp_path / "pylock.toml"
    pip(venv.root, "lock", "--index-url", server.index_url, "-o", str(lock), *WANT)
    locked = {
        p["name"].lower().replace("_", "-"): p["version"]
        for p in tomllib.loads(lock.read_text())["packages"]
    }
    before = len(server.requests)
    ok(run("install", "-r", lock, "--python", venv.python))
    assert installed(run, venv) == locked
    # No resolution: the lock's URLs are fetched, no project page is read.
    assert not [r for r in server.requests[before:] if r.path.startswith("/simple/")]


def test_a_wheel_whose_bytes_do_not_match_the_index_is_refused(
    index_server: Start, run: Run, venv: Venv, tmp_path: Path
) -> None:
    good = build_wheel(tmp_path / "w", "honest", "1.0", {"honest.py": b"X = 1\n"})
    server = index_server([good], metadata=False)
    served = server.files[good.name]
    # The same length (the index's size matches), other bytes: only the hash can tell.
    data = bytearray(served.data)
    data[len(data) // 2] ^= 0xFF
    server.files[good.name] = dataclasses.replace(served, data=bytes(data))
    before = snapshot(venv.root)
    proc = run("install", "-i", server.index_url, "--python", venv.python, "honest")
    assert proc.returncode == 1, proc.stderr
    err = without_banner(proc.stderr)
    assert err.startswith("error: ") and "Traceback" not in err
    assert good.name in err and "hash mismatch" in err
    assert served.sha256 in err  # the expected hash, and the actual one beside it
    assert snapshot(venv.root) == before
    cached = tmp_path / "cache"  # the `env` fixture's cache: nothing of the bad download kept
    assert not [p for p in cached.rglob("*") if p.is_file() and "honest" in p.name]


def test_an_sdist_only_project_is_a_clear_error(
    index_server: Start, run: Run, venv: Venv, tmp_path: Path
) -> None:
    sdist = tmp_path / "sourceonly-2.0.tar.gz"
    sdist.write_bytes(b"not really a tarball")
    wanting = build_wheel(
        tmp_path / "w", "wanting", "1.0", {"wanting.py": b""}, requires=["sourceonly"]
    )
    server = index_server([wanting], sdists=[sdist])
    proc = run("install", "-i", server.index_url, "--python", venv.python, "wanting")
    assert proc.returncode == 1, proc.stderr
    err = without_banner(proc.stderr)
    assert "Traceback" not in err
    assert "sourceonly publishes only source distributions" in err
    assert "sourceonly-2.0.tar.gz" in err
    assert "building from source is not supported yet" in err
    assert "wanting 1.0 requires sourceonly" in err


def test_a_conflict_says_who_asked_for_what(
    index_server: Start, run: Run, venv: Venv, tmp_path: Path
) -> None:
    w = tmp_path / "w"
    server = index_server(
        [
            build_wheel(w, "left", "1.0", {"left.py": b""}, requires=["shared<2"]),
            build_wheel(w, "right", "1.0", {"right.py": b""}, requires=["shared>=2"]),
            build_wheel(w, "shared", "1.0", {"shared.py": b""}),
            build_wheel(w, "shared", "2.0", {"shared.py": b""}),
        ]
    )
    proc = run("install", "-i", server.index_url, "--python", venv.python, "left", "right")
    assert proc.returncode == 1
    err = without_banner(proc.stderr)
    assert "left 1.0 requires shared<2" in err and "right 1.0 requires shared>=2" in err


def test_require_hashes_from_a_requirements_file(
    index_server: Start, run: Run, venv: Venv, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path / "w", "hashed", "1.0", {"hashed.py": b""})
    server = index_server([wheel])
    good = hashlib.sha256(wheel.read_bytes()).hexdigest()
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(
        f"--index-url {server.index_url}\nhashed==1.0 \\\n    --hash=sha256:{'0' * 64}\n"
    )
    proc = run("install", "-r", reqs, "--python", venv.python)
    assert proc.returncode == 1, proc.stderr
    assert f"--hash allows only {'0' * 64}" in proc.stderr
    assert f"the index gives sha256 {good}" in proc.stderr
    reqs.write_text(f"--index-url {server.index_url}\nhashed==1.0 --hash=sha256:{good}\n")
    ok(run("install", "-r", reqs, "--python", venv.python))
    # In hash-checking mode every package needs a hash: a dependency without one is refused.
    needy = build_wheel(tmp_path / "w", "needy", "1.0", {"needy.py": b""}, requires=["hashed"])
    server2 = index_server([needy, wheel])
    ngood = hashlib.sha256(needy.read_bytes()).hexdigest()
    reqs.write_text(f"needy==1.0 --hash=sha256:{ngood}\n")
    other = empty_venv(tmp_path / "other")
    proc = run("install", "-i", server2.index_url, "-r", reqs, "--python", other.python)
    assert proc.returncode == 1
    assert "hashed==1.0" in proc.stderr


@pytest.fixture
def pypiserver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The real pypiserver on a loopback port, serving a directory the test fills."""
    packages = tmp_path / "packages"
    packages.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pypiserver",
            "run",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-a",
            ".",
            "-P",
            ".",
            str(packages),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("pypiserver did not start")
        yield f"http://127.0.0.1:{port}/simple/", packages
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_pypiserver_end_to_end(pypiserver: tuple[str, Path], run: Run, venv: Venv) -> None:
    url, packages = pypiserver
    build_wheel(packages, "served", "1.0", {"served.py": b"V = 1\n"}, requires=["helper>=2"])
    build_wheel(packages, "helper", "1.0", {"helper.py": b""})
    build_wheel(packages, "helper", "2.0", {"helper.py": b""})
    proc = ok(run("install", "-i", url, "--python", venv.python, "served"))
    assert installed(run, venv) == {"served": "1.0", "helper": "2.0"}
    assert " + served 1.0" in proc.stdout


def test_the_environment_is_found_as_uv_finds_it(
    index_server: Start, env: dict[str, str], venv: Venv, tmp_path: Path
) -> None:
    """No --python: VIRTUAL_ENV, else a .venv here or above; never the interpreter running
    stalwart unless --system."""
    wheel = build_wheel(tmp_path / "w", "placed", "1.0", {"placed.py": b""})
    server = index_server([wheel])
    work = tmp_path / "project" / "sub"
    work.mkdir(parents=True)
    base = [str(STALWART), "install", "-i", server.index_url, "placed"]
    bare = {k: v for k, v in env.items() if k != "VIRTUAL_ENV"}
    proc = run_in(work, bare, *base[1:])
    assert proc.returncode == 4, proc.stderr
    assert "no virtual environment found" in proc.stderr
    proc = run_in(work, {**bare, "VIRTUAL_ENV": str(venv.root)}, *base[1:])
    assert proc.returncode == 0, proc.stderr
    shown = {str(venv.root), os.path.relpath(venv.root, work)}
    assert proc.stderr.splitlines()[0].rsplit(" at ", 1)[1] in shown, proc.stderr
    assert (venv.site / "placed.py").is_file()
    dotvenv = copy_venv(venv.root, tmp_path / "project" / ".venv")
    (dotvenv.site / "placed.py").unlink(missing_ok=True)
    ok(run_in(work, bare, "uninstall", "placed"))
    assert not (dotvenv.site / "placed.py").exists()


def run_in(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STALWART), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_list_into_a_closed_pipe_is_quiet(run: Run, venv: Venv, env: dict[str, str]) -> None:
    shell = f"'{STALWART}' list --python '{venv.python}' | head -c 1 >/dev/null"
    proc = subprocess.run(["sh", "-c", shell], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stderr == ""
