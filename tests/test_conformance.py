"""Conformance: stalwart builds the same environment as pip from the same real wheels.

The corpus (``realwheels.CORPUS``) is installed with the real pip into venv A and with the real
``stalwart`` command into venv B; then the two trees are compared file by file: path, kind,
permission bits and bytes, after replacing A's root with B's in A's contents (both roots have the
same length and basename, so even the ``co_filename`` inside a ``.pyc`` can be compared). The only
differences allowed are the ones installers are free to make:

- ``INSTALLER`` says who installed (``pip`` / ``stalwart``); its RECORD row hash follows;
- RECORD's row order (compared as a set of rows);
- generated console/GUI scripts: same path, mode and shebang line; the launcher body below the
  shebang is each installer's own template (so their RECORD hash and size differ too);
- a ``.pyc``'s source mtime field: each must match the source file *it* sits next to, so that
  Python actually uses it; the rest of the header and the marshalled code must be equal.

Then the environments are cross-uninstalled (pip removes what stalwart installed and the other
way round) and must be back to their fresh state. Upgrades are compared the same way.

Every observation is made while a module fixture sets up, before anything destructive runs, so
the tests pass or fail the same way in any order and under pytest-xdist.
"""

from __future__ import annotations

import configparser
import csv
import io
import json
import marshal
import os
import posixpath
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from realwheels import (
    ALL,
    CORPUS,
    EXTRA,
    OLDER,
    clean_env,
    fresh_venv,
    pip,
    pip_install,
    stalwart,
    venv_python,
    wheel_path,
    wheel_paths,
)
from treesnap import Node, Snapshot, snapshot
from wheelfactory import record_hash

pytestmark = [
    pytest.mark.network,
    # Modes, shebangs and bin/ are POSIX; Windows launchers are compared in test_scripts.
    pytest.mark.posix_only,
    pytest.mark.skipif(os.name == "nt", reason="compares POSIX venv layouts"),
]

# What the corpus lets one import (module names, not distribution names).
IMPORTS = (
    "markupsafe",
    "markupsafe._speedups",
    "yaml",
    "_yaml",
    "pyflakes.api",
    "jsonpointer",
    "notebook_shim",
    "jaraco.functools",
    "jaraco.context",
    "more_itertools",
    "backports.tarfile",
    "backports.functools_lru_cache",
)


# --------------------------------------------------------------------------- trees


Tree = Snapshot  # '/'-separated path relative to the venv root -> node


def relocate(tree: Tree, old: Path, new: Path) -> Tree:
    """*tree* with every occurrence of root *old* in contents and link targets made *new*."""
    a, b = str(old).encode(), str(new).encode()
    assert len(a) == len(b), "roots must have the same length (marshalled strings in .pyc)"
    return {
        rel: Node(n.kind, n.mode, n.data.replace(a, b), n.mtime, n.size) for rel, n in tree.items()
    }


def generated_scripts(tree: Tree) -> set[str]:
    """Paths of the console/GUI scripts the installed distributions' entry points ask for."""
    found: set[str] = set()
    for rel, node in tree.items():
        if rel.endswith(".dist-info/entry_points.txt"):
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str  # type: ignore[assignment, method-assign]
            parser.read_string(node.data.decode("utf-8"))
            for group in ("console_scripts", "gui_scripts"):
                if parser.has_section(group):
                    found.update(f"bin/{name}" for name in parser.options(group))
    return found


def record_rows(rel: str, data: bytes) -> dict[str, tuple[str, str]]:
    """RECORD rows of the file at *rel*: root-relative path -> (hash, size)."""
    lib = rel.rsplit("/", 2)[0]  # the directory holding the .dist-info
    rows: dict[str, tuple[str, str]] = {}
    for row in csv.reader(io.StringIO(data.decode("utf-8"))):
        if not row:
            continue
        path, digest, size = row
        rows[os.path.normpath(os.path.join(lib, path)).replace(os.sep, "/")] = (digest, size)
    return rows


def _pyc_source(rel: str) -> str:
    """``pkg/__pycache__/mod.cpython-311.pyc`` -> ``pkg/mod.py``."""
    cache_dir, name = posixpath.split(rel)
    return posixpath.join(posixpath.dirname(cache_dir), name.split(".", 1)[0] + ".py")


def pyc_problems(rel: str, tree: Tree) -> list[str]:
    """Why the .pyc at *rel* would not be used for its source in *tree* (timestamp-based)."""
    data = tree[rel].data
    source = tree.get(_pyc_source(rel))
    if source is None:
        return [f"{rel}: no source file {_pyc_source(rel)}"]
    _magic, flags, mtime, size = struct.unpack("<4sIII", data[:16])
    problems = []
    if flags != 0:
        problems.append(f"{rel}: not a timestamp-based pyc (flags {flags})")
    if mtime != source.mtime & 0xFFFFFFFF:
        problems.append(f"{rel}: records mtime {mtime}, source has {source.mtime}")
    if size != source.size & 0xFFFFFFFF:
        problems.append(f"{rel}: records size {size}, source has {source.size}")
    return problems


def compare(raw_ref: Tree, ref_root: Path, got: Tree, got_root: Path) -> list[str]:
    """Differences that matter between pip's tree *raw_ref* and stalwart's *got*.

    *raw_ref* is compared relocated to *got_root*; RECORD hashes of files that embed the root
    (shebangs) are checked against each venv's own bytes.
    """
    problems: list[str] = []
    ref = relocate(raw_ref, ref_root, got_root)
    scripts = generated_scripts(ref)
    for rel in sorted(ref.keys() - got.keys()):
        problems.append(f"only in pip's venv: {rel} ({ref[rel].kind})")
    for rel in sorted(got.keys() - ref.keys()):
        problems.append(f"only in stalwart's venv: {rel} ({got[rel].kind})")
    for rel in sorted(ref.keys() & got.keys()):
        a, b = ref[rel], got[rel]
        if a.kind != b.kind:
            problems.append(f"{rel}: {a.kind} in pip's venv, {b.kind} in stalwart's")
            continue
        if a.mode != b.mode:
            problems.append(f"{rel}: mode {a.mode:o} (pip) != {b.mode:o} (stalwart)")
        if a.data == b.data and not rel.endswith(".pyc"):
            continue
        if rel.endswith(".dist-info/INSTALLER"):
            # Allowed: who installed. Nothing else may differ.
            if (a.data, b.data) != (b"pip\n", b"stalwart\n"):
                problems.append(f"{rel}: {a.data!r} (pip), {b.data!r} (stalwart)")
        elif rel.endswith(".dist-info/RECORD"):
            problems.extend(_record_problems(rel, raw_ref, got, scripts))
        elif rel.endswith(".pyc"):
            # Allowed: the source mtime in the header (each venv's files were written at their
            # own time); it must match the source next to it. Magic, flags and size equal, and
            # the code objects equal. Not the marshal bytes: marshal marks objects referenced
            # more than once, and which strings are shared (interned) depends on what else the
            # compiling process compiled before (pip: everything in one process, in its order).
            problems.extend(pyc_problems(rel, ref))
            problems.extend(pyc_problems(rel, got))
            if a.data[:4] != b.data[:4] or marshal.loads(a.data[16:]) != marshal.loads(b.data[16:]):
                problems.append(f"{rel}: compiled code differs")
        elif rel in scripts:
            # Allowed: the body below the shebang is each installer's launcher template.
            first_a, first_b = a.data.split(b"\n", 1)[0], b.data.split(b"\n", 1)[0]
            if first_a != first_b:
                problems.append(f"{rel}: shebang {first_a!r} (pip) != {first_b!r} (stalwart)")
        else:
            problems.append(f"{rel}: content differs: {_first_difference(a.data, b.data)}")
    return problems


def _record_problems(rel: str, raw_ref: Tree, got: Tree, scripts: set[str]) -> list[str]:
    a, b = record_rows(rel, raw_ref[rel].data), record_rows(rel, got[rel].data)
    problems = [f"{rel}: row only in pip's: {p} {a[p]}" for p in sorted(a.keys() - b.keys())]
    problems += [f"{rel}: row only in stalwart's: {p} {b[p]}" for p in sorted(b.keys() - a.keys())]
    for path in sorted(a.keys() & b.keys()):
        if a[path] == b[path]:
            continue
        # The hash and size of INSTALLER and of generated scripts follow their (allowed)
        # differences above; the files themselves are compared there.
        if path.endswith(".dist-info/INSTALLER") or path in scripts:
            continue
        # A file that embeds the venv's root (a rewritten #!python line) hashes differently in
        # each venv: fine if each row is right about its own venv (the bytes are compared
        # relocated above).
        if _row_matches(raw_ref, path, a[path]) and _row_matches(got, path, b[path]):
            continue
        problems.append(f"{rel}: row {path}: {a[path]} (pip) != {b[path]} (stalwart)")
    return problems


def _row_matches(tree: Tree, path: str, row: tuple[str, str]) -> bool:
    node = tree.get(path)
    digest, size = row
    if node is None or not digest.startswith("sha256=") or size != str(len(node.data)):
        return False
    return digest == record_hash(node.data)


def _first_difference(a: bytes, b: bytes) -> str:
    same = (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    at = next(same, min(len(a), len(b)))
    lo, hi = max(0, at - 40), at + 40
    return f"at byte {at}: {a[lo:hi]!r} (pip) vs {b[lo:hi]!r} (stalwart)"


def leftovers(before: Tree, after: Tree) -> tuple[list[str], list[str]]:
    """(files/links that are new, directories that are new) in *after* compared to *before*."""
    new = sorted(after.keys() - before.keys())
    return [p for p in new if after[p].kind != "dir"], [p for p in new if after[p].kind == "dir"]


# --------------------------------------------------------------------------- running things


def run(argv: Iterable[str | os.PathLike[str]], **env: str) -> subprocess.CompletedProcess[str]:
    """Run a program from a venv without writing bytecode (it would pollute later snapshots)."""
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        env=clean_env({"PYTHONDONTWRITEBYTECODE": "1", **env}),
        timeout=120,
        check=False,
    )


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


@dataclass
class Installed:
    """Two venvs with the corpus (A by pip, B by stalwart) and what was observed in them."""

    pip_root: Path
    stw_root: Path
    fresh_pip: Tree
    fresh_stw: Tree
    pip_tree: Tree  # as found (paths inside still name pip_root)
    stw_tree: Tree
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)


def _two_venvs(base: Path) -> tuple[Path, Path]:
    # Same basename (the activate scripts embed it) and same root length (see relocate()).
    a, b = base / "pip" / "venv", base / "stw" / "venv"
    a.parent.mkdir()
    b.parent.mkdir()
    return fresh_venv(a), fresh_venv(b)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    wheels = wheel_paths(ALL)
    a, b = _two_venvs(tmp_path_factory.mktemp("conformance"))
    fresh_a, fresh_b = snapshot(a), snapshot(b)
    pip_install(a, wheels)
    result = stalwart("install", "--no-deps", "--python", str(venv_python(b)), *map(str, wheels))
    state = Installed(a, b, fresh_a, fresh_b, snapshot(a), snapshot(b))
    state.runs["install"] = result
    # Observations that run code in the venvs: after the snapshots, before any uninstall.
    state.runs["verify"] = stalwart("verify", "--python", str(venv_python(b)), check=False)
    state.runs["verify-pip"] = stalwart("verify", "--python", str(venv_python(a)), check=False)
    for name, root in (("list", b), ("list-pip", a)):
        state.runs[name] = stalwart("list", "--python", str(venv_python(root)), "--format", "json")
    state.runs["import"] = run([venv_python(b), "-c", f"import {', '.join(IMPORTS)}"])
    for venv, tag in ((a, "pip"), (b, "stw")):
        state.runs[f"pyflakes-{tag}"] = run([venv / "bin" / "pyflakes", "--version"])
        state.runs[f"jsonpointer-{tag}"] = run([venv / "bin" / "jsonpointer", "--help"])
        home = tmp_path_factory.mktemp(f"home-{tag}")
        state.runs[f"pyzo-{tag}"] = run(
            [venv / "bin" / "pyzo"],
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local" / "share"),
        )
    return state


@pytest.fixture(scope="module")
def uninstalled(installed: Installed) -> tuple[Tree, Tree]:
    """Cross-uninstall everything; returns the trees (pip's venv, stalwart's venv) afterwards."""
    names = [CORPUS[n].name for n in ALL]
    pip(installed.stw_root, "uninstall", "-y", *names)
    stalwart("uninstall", "--python", str(venv_python(installed.pip_root)), *names)
    return snapshot(installed.pip_root), snapshot(installed.stw_root)


# --------------------------------------------------------------------------- the tests


def test_same_tree_as_pip(installed: Installed) -> None:
    problems = compare(
        installed.pip_tree, installed.pip_root, installed.stw_tree, installed.stw_root
    )
    assert not problems, "stalwart's venv differs from pip's:\n" + "\n".join(problems)


def test_every_corpus_file_is_installed(installed: Installed) -> None:
    """Guards the comparison: both venvs really hold the corpus (not two empty trees)."""
    for name in ALL:
        dist = canonicalize_name(name)
        infos = [
            rel
            for rel, node in installed.stw_tree.items()
            if node.kind == "dir"
            and rel.endswith(".dist-info")
            and canonicalize_name(rel.rsplit("/", 1)[-1].split("-")[0]) == dist
        ]
        assert len(infos) == 1, (name, infos)
        record = installed.stw_tree[f"{infos[0]}/RECORD"]
        for path in record_rows(f"{infos[0]}/RECORD", record.data):
            assert path in installed.stw_tree, f"{name}: RECORD lists {path}, not installed"


def test_pyc_for_every_module_pip_compiled(installed: Installed) -> None:
    pip_pyc = {r for r in installed.pip_tree if r.endswith(".pyc")}
    stw_pyc = {r for r in installed.stw_tree if r.endswith(".pyc")}
    assert pip_pyc, "pip compiled nothing: the comparison would prove nothing"
    assert pip_pyc == stw_pyc
    problems = [p for r in sorted(stw_pyc) for p in pyc_problems(r, installed.stw_tree)]
    assert not problems, "\n".join(problems)


def test_special_files_land_where_pip_puts_them(installed: Installed) -> None:
    tree = installed.stw_tree
    site = next(r for r in tree if r.endswith("/site-packages") and r.startswith("lib/"))
    # .data/data -> the venv root; .data/scripts -> bin with the shebang rewritten.
    assert "etc/jupyter/jupyter_server_config.d/notebook_shim.json" in tree
    assert tree["bin/jsonpointer"].data.startswith(
        b"#!" + str(venv_python(installed.stw_root)).encode() + b"\n"
    )
    assert tree["bin/jsonpointer"].mode & 0o111 == 0o111
    # Root-Is-Purelib: false -> platlib (the same directory as purelib in a venv).
    assert any(r.startswith(f"{site}/markupsafe/_speedups.") and r.endswith(".so") for r in tree)
    # The two pkgutil-namespace members share backports/__init__.py: both RECORDs list it.
    owners = [
        rel
        for rel, node in tree.items()
        if rel.endswith("/RECORD")
        and f"{site}/backports/__init__.py" in record_rows(rel, node.data)
    ]
    assert len(owners) == 2, owners
    # No stalwart state left behind in the environment.
    assert not [r for r in tree if "/.stalwart" in r]


def test_stalwart_install_output(installed: Installed) -> None:
    out = installed.runs["install"].stdout
    assert f"Installed {len(ALL)} packages" in out, out


def test_imports_work(installed: Installed) -> None:
    proc = installed.runs["import"]
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", ["pyflakes", "jsonpointer"])
def test_console_scripts_run(installed: Installed, script: str) -> None:
    ref, got = installed.runs[f"{script}-pip"], installed.runs[f"{script}-stw"]
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip(), "no output"
    assert (got.returncode, got.stdout, got.stderr) == (ref.returncode, ref.stdout, ref.stderr)


def test_gui_script_behaves_like_pips(installed: Installed) -> None:
    """pyzo needs Qt and cannot open a window here: it must fail exactly the way pip's does."""
    ref, got = installed.runs["pyzo-pip"], installed.runs["pyzo-stw"]
    a, b = str(installed.pip_root), str(installed.stw_root)
    assert got.returncode == ref.returncode, (ref.stderr, got.stderr)
    assert last_line(got.stderr) == last_line(ref.stderr.replace(a, b)), (ref.stderr, got.stderr)
    assert last_line(got.stderr), "pyzo said nothing: was it run at all?"


def test_verify_after_install(installed: Installed) -> None:
    proc = installed.runs["verify"]
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_verify_accepts_pips_install(installed: Installed) -> None:
    proc = installed.runs["verify-pip"]
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("run_name", "installer"), [("list", "stalwart"), ("list-pip", "pip")])
def test_list_json(installed: Installed, run_name: str, installer: str) -> None:
    rows = json.loads(installed.runs[run_name].stdout)
    got = {
        canonicalize_name(r["name"]): (r["version"], r["installer"], r["requested"]) for r in rows
    }
    want = {canonicalize_name(w.name): (w.version, installer, True) for w in CORPUS.values()}
    assert got == want


def test_pip_uninstalls_what_stalwart_installed(
    installed: Installed, uninstalled: tuple[Tree, Tree]
) -> None:
    after = uninstalled[1]
    files, dirs = leftovers(installed.fresh_stw, after)
    assert not files, f"left behind after pip uninstall: {files}"
    # Tolerated, as pip's own behaviour: pip leaves empty directories it did not create
    # itself, here etc/ and etc/jupyter/ above notebook_shim's .data/data file. Only empty
    # directories: any file left would be in `files` above.
    assert set(dirs) <= {"etc", "etc/jupyter"}, f"pip left empty directories: {dirs}"
    assert installed.fresh_stw.keys() <= after.keys()


def test_stalwart_uninstalls_what_pip_installed(
    installed: Installed, uninstalled: tuple[Tree, Tree]
) -> None:
    after = uninstalled[0]
    files, dirs = leftovers(installed.fresh_pip, after)
    assert not files, f"left behind after stalwart uninstall: {files}"
    assert not dirs, f"stalwart left empty directories: {dirs}"
    assert installed.fresh_pip.keys() <= after.keys(), "removed files of the fresh venv"


# --------------------------------------------------------------------------- upgrades


@dataclass
class Upgraded:
    pip_root: Path
    stw_root: Path
    fresh_stw: Tree
    pip_tree: Tree
    stw_tree: Tree
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)


UPGRADED = "jaraco.functools"


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> Upgraded:
    old, new = wheel_path(UPGRADED, OLDER[UPGRADED].version), wheel_path(UPGRADED)
    a, b = _two_venvs(tmp_path_factory.mktemp("upgrade"))
    fresh_b = snapshot(b)
    runs = {}
    pip_install(a, [old])
    runs["install-old"] = stalwart(
        "install", "--no-deps", "--python", str(venv_python(b)), str(old)
    )
    runs["old-tree"] = subprocess.CompletedProcess([], 0, json.dumps(sorted(snapshot(b))))
    pip_install(a, [new])
    runs["install-new"] = stalwart(
        "install", "--no-deps", "--python", str(venv_python(b)), str(new)
    )
    state = Upgraded(a, b, fresh_b, snapshot(a), snapshot(b), runs)
    runs["verify"] = stalwart("verify", "--python", str(venv_python(b)), check=False)
    runs["list"] = stalwart("list", "--python", str(venv_python(b)), "--format", "json")
    return state


def test_upgrade_same_tree_as_pip(upgraded: Upgraded) -> None:
    problems = compare(upgraded.pip_tree, upgraded.pip_root, upgraded.stw_tree, upgraded.stw_root)
    assert not problems, "after the upgrade stalwart's venv differs from pip's:\n" + "\n".join(
        problems
    )


def test_upgrade_leaves_nothing_of_the_old_version(upgraded: Upgraded) -> None:
    tree = upgraded.stw_tree
    old_tree = set(json.loads(upgraded.runs["old-tree"].stdout))
    (info,) = [r for r in tree if r.endswith(".dist-info") and "jaraco.functools" in r]
    assert info.endswith(f"jaraco.functools-{CORPUS[UPGRADED].version}.dist-info")
    recorded = set(record_rows(f"{info}/RECORD", tree[f"{info}/RECORD"].data))
    files, dirs = leftovers(upgraded.fresh_stw, tree)
    # Every new file is the new version's (RECORD lists its files and their bytecode) ...
    assert set(files) == recorded
    # ... and every new directory holds some of them: nothing empty is left behind.
    assert all(any(f.startswith(d + "/") for f in recorded) for d in dirs), dirs
    # The old version really had files the new one has not (a module that became a package).
    gone = {r for r in old_tree if r not in tree}
    assert any(r.endswith("jaraco/functools.py") for r in gone), sorted(gone)


def test_upgrade_verify_and_list(upgraded: Upgraded) -> None:
    assert "Installed 1 package" in upgraded.runs["install-new"].stdout
    proc = upgraded.runs["verify"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(upgraded.runs["list"].stdout)
    assert [(r["name"], r["version"], r["installer"]) for r in rows] == [
        ("jaraco.functools", CORPUS[UPGRADED].version, "stalwart")
    ]


# --------------------------------------------------------------------------- shared files


@dataclass
class Namespace:
    pip_root: Path
    stw_root: Path
    pip_tree: Tree
    stw_tree: Tree  # after the refused install too
    before_refused: Tree
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)


NS_FIRST, NS_SECOND, NS_OTHER = (
    "backports.tarfile",
    "backports.functools_lru_cache",
    "backports.weakref",
)


@pytest.fixture(scope="module")
def namespace(tmp_path_factory: pytest.TempPathFactory) -> Namespace:
    """The pkgutil-namespace pair installed one command at a time, then a third member whose
    ``backports/__init__.py`` is different."""
    first, second = wheel_path(NS_FIRST), wheel_path(NS_SECOND)
    other = wheel_path(NS_OTHER, EXTRA[NS_OTHER].version)
    a, b = _two_venvs(tmp_path_factory.mktemp("namespace"))
    py = str(venv_python(b))
    runs = {}
    for wheel in (first, second):
        pip_install(a, [wheel])
        runs[wheel.name] = stalwart("install", "--no-deps", "--python", py, str(wheel))
    before = snapshot(b)
    runs["other"] = stalwart("install", "--no-deps", "--python", py, str(other), check=False)
    runs["verify"] = stalwart("verify", "--python", py, check=False)
    return Namespace(a, b, snapshot(a), snapshot(b), before, runs)


def test_identical_shared_file_is_accepted_like_pip(namespace: Namespace) -> None:
    """The second member ships the same backports/__init__.py the first installed: no conflict,
    and the result is what pip makes (both RECORDs list the file)."""
    problems = compare(
        namespace.pip_tree, namespace.pip_root, namespace.before_refused, namespace.stw_root
    )
    assert not problems, "\n".join(problems)
    assert namespace.runs["verify"].returncode == 0, namespace.runs["verify"].stdout


def test_different_shared_file_is_refused(namespace: Namespace) -> None:
    """Deliberate difference from pip, which silently overwrites another distribution's file:
    stalwart refuses (exit 1, naming the owner) and changes nothing."""
    proc = namespace.runs["other"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "backports/__init__.py belongs to " in proc.stderr
    assert "backports.tarfile 1.2.0" in proc.stderr  # each owner is named
    assert "backports.functools-lru-cache" in proc.stderr
    assert namespace.stw_tree == namespace.before_refused


def test_uninstalling_one_member_keeps_the_shared_file(namespace: Namespace) -> None:
    """Deliberate difference from pip, which deletes a file another distribution's RECORD still
    lists: stalwart keeps it, so the remaining member stays intact and verifiable."""
    py = str(venv_python(namespace.stw_root))
    shared = next(
        p for p in namespace.stw_tree if p.endswith("site-packages/backports/__init__.py")
    )
    stalwart("uninstall", "--python", py, NS_FIRST)
    assert (namespace.stw_root / shared).is_file()
    after = snapshot(namespace.stw_root)
    assert not any("backports.tarfile" in p or "backports/tarfile" in p for p in after)
    assert stalwart("verify", "--python", py, check=False).returncode == 0
    stalwart("uninstall", "--python", py, NS_SECOND)
    assert not (namespace.stw_root / shared).exists()
