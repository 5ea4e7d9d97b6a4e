"""The local-wheel digest memo: reused while the file is the same file, never trusted beyond."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from stalwart.cache import CacheLayout
from stalwart.filedigests import FileDigests


@pytest.fixture
def digests(tmp_path: Path) -> FileDigests:
    return FileDigests(CacheLayout(str(tmp_path / "cache")))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _memos(digests: FileDigests) -> list[Path]:
    return sorted(Path(digests.root).glob("*.json"))


def test_a_digest_is_remembered_and_reused(
    digests: FileDigests, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / "a.whl"
    wheel.write_bytes(b"one")
    assert digests.sha256(str(wheel)) == _sha(b"one")
    assert len(_memos(digests)) == 1
    hashed: list[str] = []
    import stalwart.filedigests as module

    real_hash = module.hash_file
    monkeypatch.setattr(module, "hash_file", lambda p: (hashed.append(p), real_hash(p))[1])
    assert digests.sha256(str(wheel)) == _sha(b"one")
    assert hashed == []  # from the memo
    # Another spelling of the same file (a symlink) finds the same memo.
    link = tmp_path / "link.whl"
    link.symlink_to(wheel)
    assert digests.sha256(str(link)) == _sha(b"one") and hashed == []


def test_a_rewrite_with_the_old_size_and_mtime_is_hashed_again(
    digests: FileDigests, tmp_path: Path
) -> None:
    wheel = tmp_path / "a.whl"
    wheel.write_bytes(b"one")
    before = wheel.stat()
    digests.sha256(str(wheel))
    wheel.write_bytes(b"two")  # same size
    os.utime(wheel, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime set back; ctime moves
    assert digests.sha256(str(wheel)) == _sha(b"two")


def test_a_replaced_file_is_hashed_again(digests: FileDigests, tmp_path: Path) -> None:
    wheel = tmp_path / "a.whl"
    wheel.write_bytes(b"one")
    digests.sha256(str(wheel))
    other = tmp_path / "b.whl"
    other.write_bytes(b"uno")
    os.replace(other, wheel)  # a new inode under the old name
    assert digests.sha256(str(wheel)) == _sha(b"uno")


@pytest.mark.parametrize(
    "memo",
    [
        b"",
        b"not json",
        b"[]",
        b'{"format": 1}',
        b'{"format": 1, "path": "P", "identity": "I", "sha256": "' + b"0" * 63 + b'g"}',
        b'{"format": 2, "path": "P", "identity": "I", "sha256": "' + b"0" * 64 + b'"}',
        b"x" * 10_000,
    ],
    ids=["empty", "junk", "list", "partial", "bad-digest", "other-format", "huge"],
)
def test_a_damaged_or_forged_memo_means_hash_again(
    digests: FileDigests, tmp_path: Path, memo: bytes
) -> None:
    wheel = tmp_path / "a.whl"
    wheel.write_bytes(b"one")
    digests.sha256(str(wheel))
    (path,) = _memos(digests)
    real = json.loads(path.read_text())
    text = memo.replace(b'"P"', json.dumps(real["path"]).encode()).replace(
        b'"I"', json.dumps(real["identity"]).encode()
    )
    path.write_bytes(text)
    assert digests.sha256(str(wheel)) == _sha(b"one")


def test_an_unwritable_cache_only_costs_the_hashing(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_bytes(b"a file where the cache directory should be")
    digests = FileDigests(CacheLayout(str(blocker)))
    wheel = tmp_path / "a.whl"
    wheel.write_bytes(b"one")
    assert digests.sha256(str(wheel)) == _sha(b"one")
    assert digests.sha256(str(wheel)) == _sha(b"one")


def test_prune_drops_memos_of_changed_or_vanished_files(
    digests: FileDigests, tmp_path: Path
) -> None:
    kept, changed, gone = (tmp_path / f"{n}.whl" for n in ("kept", "changed", "gone"))
    for path in (kept, changed, gone):
        path.write_bytes(path.name.encode())
        digests.sha256(str(path))
    changed.write_bytes(b"new content")
    gone.unlink()
    (Path(digests.root) / "stray.json").write_bytes(b"{}")
    assert digests.prune() == 3
    (left,) = _memos(digests)
    assert json.loads(left.read_text())["path"] == str(kept.resolve())
