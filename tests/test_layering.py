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
# Modules allowed to import each stalwart module (by top-level name below stalwart).
_LOWER_LAYERS = {
    "fs": {"errors"},
    "wheel": {"errors"},
    "scripts": {"errors"},
    "errors": set(),
    "index": {"errors"},
    "requirements": {"errors", "index", "wheel"},
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
    """``os.open(path, flags)`` whose flags name no writing mode."""
    if len(call.args) < 2:
        return False
    flags = ast.dump(call.args[1])
    return "O_RDONLY" in flags and not any(
        f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
    )


def _stalwart_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "stalwart":
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            continue  # relative imports stay inside a package
    return found


@pytest.mark.parametrize("layer", sorted(_LOWER_LAYERS))
def test_lower_layers_import_nothing_above(layer: str) -> None:
    files = (
        [SRC / f"{layer}.py"]
        if (SRC / f"{layer}.py").exists()
        else sorted((SRC / layer).rglob("*.py"))
    )
    assert files
    for path in files:
        extra = _stalwart_imports(path) - _LOWER_LAYERS[layer] - {layer}
        assert not extra, f"{path.relative_to(SRC)} imports upward: {sorted(extra)}"


def test_nothing_imports_the_cli() -> None:
    for path in SRC.rglob("*.py"):
        if path.name in {"cli.py", "__main__.py"}:
            continue
        assert "cli" not in _stalwart_imports(path), path


def test_public_fs_names() -> None:
    expected = {
        "replace",
        "rename",
        "persist",
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
