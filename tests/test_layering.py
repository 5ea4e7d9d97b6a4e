"""Architecture rules, checked: only stalwart.fs mutates the disk; imports point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stalwart.fs

SRC = Path(stalwart.fs.__file__).resolve().parent.parent
MODULES = sorted(p for p in SRC.rglob("*.py") if "fs" not in p.relative_to(SRC).parts[:1])
# Called on anything: only pathlib has methods with these names.
_PATH_MUTATORS = {
    "write_text",
    "write_bytes",
    "mkdir",
    "rmdir",
    "unlink",
    "touch",
    "symlink_to",
    "hardlink_to",
}
# Called on the os / shutil modules.
_MODULE_MUTATORS = {
    "replace",
    "rename",
    "renames",
    "remove",
    "removedirs",
    "unlink",
    "rmdir",
    "mkdir",
    "makedirs",
    "link",
    "symlink",
    "chmod",
    "truncate",
    "utime",
    "open",
    "rmtree",
    "copy",
    "copy2",
    "copyfile",
    "copytree",
    "move",
}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_disk_mutation_outside_fs(path: Path) -> None:
    tree = ast.parse(path.read_text("utf-8"))
    offences = []
    for call in _calls(tree):
        func = call.func
        if isinstance(func, ast.Name) and func.id == "open":
            mode = call.args[1] if len(call.args) > 1 else None
            for kw in call.keywords:
                if kw.arg == "mode":
                    mode = kw.value
            if isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax+"):
                offences.append(f"line {call.lineno}: open(..., {mode.value!r})")
        if not isinstance(func, ast.Attribute):
            continue
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id == "fs":
            continue  # the resilient layer itself
        module_call = isinstance(owner, ast.Name) and owner.id in {"os", "shutil"}
        if module_call and func.attr == "open" and _read_only(call):
            continue
        if func.attr in _PATH_MUTATORS or (module_call and func.attr in _MODULE_MUTATORS):
            offences.append(f"line {call.lineno}: .{func.attr}(...)")
    assert not offences, f"{path.name} mutates the disk outside stalwart.fs: {offences}"


def _read_only(call: ast.Call) -> bool:
    """``os.open(path, flags)`` whose flags name no writing mode, or of ``os.devnull``."""
    if call.args and ast.dump(call.args[0]) == ast.dump(ast.parse("os.devnull").body[0].value):  # type: ignore[attr-defined]
        return True  # the null device is not the disk
    if len(call.args) < 2:
        return False
    flags = ast.dump(call.args[1])
    return "O_RDONLY" in flags and not any(
        f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
    )


#: The architecture, lowest layer first. A module may import only from layers below its own;
#: a package (``fs``, ``wheel``) counts as one module. Every module must be listed.
LAYERS: list[set[str]] = [
    {"errors", "hashnames", "cpus", "paths", "cache", "_query_interpreter", "_compile_pyc"},
    {"fs", "wheel", "scripts", "index"},
    {
        "interpreter",
        "journalkey",
        "envlock",
        "installed",
        "requirements",
        "net",
        "wheelcache",
        "filedigests",
    },
    {"environment", "transaction", "bytecode"},
    {"plan", "session", "results"},
    {"staging", "verify", "resolve"},
    {"safety", "uninstall"},
    {"install", "selfcheck"},
    {"fetch"},
    {"satisfy"},
    {"cli"},
    {"__main__", "__init__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_of(path: Path) -> str:
    """The top-level name below ``stalwart`` that *path* belongs to."""
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _stalwart_imports(path: Path) -> set[str]:
    """Top-level stalwart modules *path* imports, in any form (``import stalwart.x``,
    ``from stalwart import x``, ``from stalwart.x import y``), TYPE_CHECKING ones included."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "stalwart":
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found.update(a.name for a in node.names if a.name != "__version__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "stalwart" and len(parts) > 1:
                    found.add(parts[1])
    return found


ALL_FILES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    modules = {_module_of(p) for p in ALL_FILES}
    assert modules <= set(RANK), f"add to LAYERS: {sorted(modules - set(RANK))}"


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    own = _module_of(path)
    upward = sorted(
        name
        for name in _stalwart_imports(path) - {own}
        if name != "__init__" and RANK.get(name, 99) >= RANK[own]
    )
    assert not upward, f"{path.relative_to(SRC)} (layer {RANK[own]}) imports {upward}"


def test_import_detection_sees_every_form(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import stalwart.install\nfrom stalwart import cli\nfrom stalwart.plan import x\n"
        "if TYPE_CHECKING:\n    from stalwart.safety import y\n"
    )
    assert _stalwart_imports(probe) == {"install", "cli", "plan", "safety"}


def test_nothing_imports_the_cli() -> None:
    for path in SRC.rglob("*.py"):
        if path.name in {"cli.py", "__main__.py"}:
            continue
        assert "cli" not in _stalwart_imports(path), path


def test_public_fs_names() -> None:
    expected = {
        "replace",
        "rename",
        "write_atomic",
        "copy",
        "link",
        "unlink",
        "rmdir",
        "rmtree",
        "makedirs",
        "chmod",
        "open_for_write",
        "RetryPolicy",
        "configure",
        "LockTimeoutError",
    }
    assert expected <= set(stalwart.fs.__all__)
    for name in stalwart.fs.__all__:
        assert hasattr(stalwart.fs, name), name


def test_import_of_cli_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, stalwart.cli; heavy = [m for m in ('rich', 'packaging.tags', 'distlib',"
        " 'concurrent.futures', 'hashlib') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported at CLI start-up: {out.stdout}"


REPO = SRC.parent.parent
OUTSIDE = sorted(
    p
    for folder in ("tests", "fuzz", "scripts", "benchmarks")
    for p in (REPO / folder).rglob("*.py")
    if "corpus" not in p.parts
)


def _private_imports(path: Path) -> list[str]:
    """Names starting with ``_`` that *path* imports from stalwart, in any import form."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "stalwart":
                continue
            names = [*node.module.split(".")[1:], *(a.name for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [
                part
                for alias in node.names
                if alias.name.split(".")[0] == "stalwart"
                for part in alias.name.split(".")[1:]
            ]
        else:
            continue
        found += [n for n in names if n.startswith("_") and not n.startswith("__")]
    return found


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: str(p.relative_to(REPO)))
def test_code_outside_the_package_uses_only_public_names(path: Path) -> None:
    """Tests, fuzzers, scripts and benchmarks use stalwart as a user would: a private name they
    import would pin an implementation detail (and hide a missing public API)."""
    assert not _private_imports(path), f"{path.relative_to(REPO)}: {_private_imports(path)}"


def test_private_import_detection_sees_every_form(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import stalwart.fs._ops\nfrom stalwart.transaction import _payload, recover\n"
        "from stalwart._query_interpreter import x\nfrom stalwart import __version__\n"
    )
    assert _private_imports(probe) == ["_ops", "_payload", "_query_interpreter"]
