"""The unpacked-wheel cache: filling an entry checks every file, in batches, in one pass."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from stalwart.cache import CacheLayout
from stalwart.cpus import usable_cpus
from stalwart.errors import InvalidWheelError
from stalwart.wheel.archive import Entry
from stalwart.wheel.wheelfile import open_wheel
from stalwart.wheelcache import WheelCache, size_batches
from wheelfactory import make_wheel, with_record

DIST_INFO = "many-1.0.dist-info"
META = {
    f"{DIST_INFO}/METADATA": b"Metadata-Version: 2.1\nName: many\nVersion: 1.0\n",
    f"{DIST_INFO}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
# Enough files for the thread pool (32), of uneven sizes so batches differ in length.
FILES = {f"many/m{i:03d}.py": (f"N = {i}\n" * (1 + i * 37)).encode() for i in range(100)}


def _wheel(tmp_path: Path, files: dict[str, bytes], hash_name: str) -> str:
    content = with_record({**files, **META}, DIST_INFO, hash_name)
    return str(make_wheel(tmp_path / "many-1.0-py3-none-any.whl", content))


def _fill(tmp_path: Path, path: str) -> tuple[WheelCache, object]:
    cache = WheelCache(CacheLayout(str(tmp_path / "cache")))
    wheel = open_wheel(path)
    try:
        return cache, cache.fill(wheel, "a" * 64)
    finally:
        wheel.close()


@pytest.mark.parametrize("hash_name", ["sha256", "sha512"])
def test_an_entry_holds_every_file_with_its_sha256_whatever_record_used(
    tmp_path: Path, hash_name: str
) -> None:
    cache, _ = _fill(tmp_path, _wheel(tmp_path, FILES, hash_name))
    found = cache.lookup("a" * 64)
    assert found is not None and found.verified
    for name, data in {**FILES, **META}.items():
        assert Path(found.path(name)).read_bytes() == data
        assert found.files[name].sha256 == hashlib.sha256(data).digest()
        assert found.files[name].size == len(data)
    assert found.intact()


@pytest.mark.parametrize("hash_name", ["sha256", "sha512"])
def test_a_file_not_matching_its_record_leaves_no_entry(tmp_path: Path, hash_name: str) -> None:
    content = with_record({**FILES, **META}, DIST_INFO, hash_name)
    content["many/m050.py"] = b"tampered = True\n"  # after RECORD was written
    path = str(make_wheel(tmp_path / "many-1.0-py3-none-any.whl", content))
    with pytest.raises(InvalidWheelError) as caught:
        _fill(tmp_path, path)
    assert "many/m050.py: content does not match its RECORD hash" in str(caught.value)
    unpacked = tmp_path / "cache" / "unpacked"
    assert not unpacked.exists() or os.listdir(unpacked) == []


def _entry(name: str, compressed: int) -> Entry:
    return Entry(name, compressed, compressed, 0, 0o644, False)


def testsize_batches_keep_the_order_and_share_the_bytes() -> None:
    sizes = [1, 500, 3, 3, 3, 900, 2, 2, 2, 2, 250, 7]
    entries = [_entry(f"f{i}", s) for i, s in enumerate(sizes)]
    batches = size_batches(entries, 4)
    assert [e for b in batches for e in b] == entries
    assert all(batches)
    assert len(batches) <= 5
    share = sum(sizes) // 4
    # a batch closes once it holds its share: never more than one entry past it
    for batch in batches:
        assert sum(e.compressed_size for e in batch[:-1]) < share


def test_one_thread_per_usable_cpu() -> None:
    assert 1 <= usable_cpus() <= 8
    if hasattr(os, "sched_getaffinity"):
        assert usable_cpus() == min(8, len(os.sched_getaffinity(0)))
