"""Valid inputs for every parser of untrusted bytes, built with :mod:`wheelfactory`.

Fuzzers start from these (``tests/test_fuzz.py`` mutates them with hypothesis, ``fuzz/*.py``
writes them out as libFuzzer seed corpora): random bytes rarely get past a zip's end record,
while a mutated real wheel reaches the deep checks.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from wheelfactory import Member, make_wheel, zip_bytes

NAME, VERSION = "demo", "1.0"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
DATA_DIR = f"{NAME}-{VERSION}.data"
FILENAME = f"{NAME}-{VERSION}-py3-none-any.whl"

METADATA = (
    f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nSummary: a demo\n"
    "Requires-Dist: one\nLicense: first line\n        second line\n\nThe description.\n"
)
WHEEL = "Wheel-Version: 1.0\nGenerator: seeds\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
ENTRY_POINTS = (
    "[console_scripts]\ndemo = demo.cli:main\ndemo-x = demo.cli:run [extra]\n"
    "[gui_scripts]\ndemo-gui = demo.gui:main\n[other.group]\nplugin = demo.plugin\n"
)
SHEBANGS = (
    b"#!python\nprint('hi')\n",
    b"#!pythonw\r\nprint('hi')\r\n",
    b"#!python3.11 -E -s\nimport sys\n",
    b"#!python",
    b"#!/usr/bin/env python\nprint(1)\n",
)
PYTHONS = (
    "/usr/bin/python3",
    "/opt/my python/bin/python3",
    "/" + "x" * 130 + "/python3",
    "C:\\Program Files\\Python312\\python.exe",
    "C:\\Python312\\python.exe",
)


def b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def record_text(files: Mapping[str, bytes], dist_info: str = DIST_INFO) -> str:
    """The RECORD an honest builder writes for *files* (which must not hold RECORD)."""
    rows = [
        f"{name},sha256={b64(hashlib.sha256(data).digest())},{len(data)}"
        for name, data in files.items()
    ]
    return "\n".join([*rows, f"{dist_info}/RECORD,,", ""])


def wheel_files(*, extra: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """The members of an honest wheel, RECORD included (written last, like real builders)."""
    files = {
        f"{NAME}/__init__.py": b"def main():\n    return 0\n",
        f"{NAME}/cli.py": b"def main():\n    return 0\n\ndef run():\n    return 1\n",
        f"{NAME}/data/table.csv": b"a,b\n1,2\n" * 50,
        f"{DATA_DIR}/scripts/demo-tool": SHEBANGS[0],
        f"{DIST_INFO}/METADATA": METADATA.encode(),
        f"{DIST_INFO}/WHEEL": WHEEL.encode(),
        f"{DIST_INFO}/entry_points.txt": ENTRY_POINTS.encode(),
        **(extra or {}),
    }
    files[f"{DIST_INFO}/RECORD"] = record_text(files).encode()
    return files


def make_wheel_bytes(files: Mapping[str, bytes], **options: object) -> bytes:
    """:func:`wheelfactory.make_wheel` (zipfile, like real tools), returned as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = make_wheel(Path(tmp) / FILENAME, files, **options)  # type: ignore[arg-type]
        return path.read_bytes()


def wheel_variants() -> dict[str, bytes]:
    """Honest wheels written every way stalwart must read: both methods, data descriptors,
    zip64 records, hand-built structures; all of them open and validate."""
    files = wheel_files()
    hand = [Member(name, data) for name, data in files.items()]
    return {
        "deflated": make_wheel_bytes(files),
        "stored": make_wheel_bytes(files, compression=zipfile.ZIP_STORED),
        "streamed": make_wheel_bytes(files, streamed=True),
        "zip64": make_wheel_bytes(files, force_zip64=True),
        "directories": make_wheel_bytes({f"{NAME}/": b"", f"{NAME}/data/": b"", **files}),
        "hand-built": zip_bytes(hand),
        "hand-descriptors": zip_bytes(
            [
                Member(m.name, m.data, descriptor=True, descriptor_signature=i % 2 == 0)
                for i, m in enumerate(hand)
            ]
        ),
        "hand-zip64": zip_bytes([Member(m.name, m.data, zip64=True) for m in hand], zip64_end=True),
    }


def record_texts() -> list[str]:
    files = wheel_files()
    return [
        files[f"{DIST_INFO}/RECORD"].decode(),
        'demo/a.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"demo/b,c.py",,\n',
        "demo/a.py,md5=1B2M2Y8AsgTpgAmY7PhCfg,0\r\ndemo/b.py,sha512=,\r\n",
    ]


def metadata_texts() -> list[str]:
    return [METADATA, WHEEL, "Name: x\rVersion: 1\r\rBody\r", "Name: x\r\n continued\r\n\r\n"]


def entry_points_texts() -> list[str]:
    return [ENTRY_POINTS, "[console_scripts]\na:b = m:f\n# comment\n; other\n", ""]


#: Where the journal seeds and targets pretend the environment and its transaction are.
JOURNAL_ENV = "/nonexistent-fuzz-env"
JOURNAL_TXN = f"{JOURNAL_ENV}/lib/site-packages/.stalwart/txn-seed"


def journal_steps() -> list[str]:
    """The ``steps`` objects of honest journals, as JSON (the fuzz targets sign them)."""
    site = f"{JOURNAL_ENV}/lib/site-packages"
    return [
        '{"mkdirs": [], "backups": [], "installs": [], "prune": []}',
        (
            f'{{"mkdirs": ["{site}/demo"], '
            f'"backups": [["{site}/demo/a.py", "{JOURNAL_TXN}/backup/0"]], '
            f'"installs": [["{JOURNAL_TXN}/stage/1", "{site}/demo/a.py"]], '
            f'"prune": ["{site}/old"]}}'
        ),
    ]
