"""``stalwart self-check``: exercise every filesystem operation in a scratch directory."""

from __future__ import annotations

import os
import tempfile  # noqa: TID251 - only for the scratch directory's name

from stalwart import fs

__all__ = ["run_self_check"]


def run_self_check(where: str | None = None) -> list[str]:
    """Run each mutation of the layer once; returns lines describing the policy and outcome."""
    base = where or tempfile.gettempdir()
    scratch = os.path.join(base, f"stalwart-self-check-{os.getpid()}")
    fs.makedirs(os.path.join(scratch, "a", "b"))
    try:
        target = os.path.join(scratch, "a", "b", "file.txt")
        fs.write_atomic(target, b"hello\n", mode=0o644)
        linked = fs.link(target, os.path.join(scratch, "linked.txt"))
        fs.copy(target, os.path.join(scratch, "copied.txt"))
        fs.replace(os.path.join(scratch, "copied.txt"), os.path.join(scratch, "moved.txt"))
        fs.rename(os.path.join(scratch, "moved.txt"), os.path.join(scratch, "renamed.txt"))
        fs.chmod(os.path.join(scratch, "renamed.txt"), 0o755)
        with fs.open_for_write(os.path.join(scratch, "written.bin"), exclusive=True) as w:
            w.write(b"\0" * 4096)
        fs.unlink(os.path.join(scratch, "written.bin"))
        with open(os.path.join(scratch, "renamed.txt"), "rb") as f:
            if f.read() != b"hello\n":
                raise RuntimeError("self-check: copied content differs")
    finally:
        fs.rmtree(scratch)
    if os.path.exists(scratch):
        raise RuntimeError(f"self-check: {scratch} was not removed")
    policy = fs.runtime().policy
    return [
        f"filesystem layer ok in {base} (hard links: {'yes' if linked else 'no, copies'})",
        f"lock policy: retry up to {policy.timeout:g} s per operation "
        f"(access denied / too many files: {policy.budget(brief=True):g} s), "
        f"sleeps {policy.first_delay * 1000:g} ms doubling to {policy.max_delay * 1000:g} ms",
    ]
