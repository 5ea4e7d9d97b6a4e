"""Build examples/stalwart_sample-1.0.0-py3-none-any.whl, byte for byte reproducibly.

The wheel is tiny and committed so the README's first command needs no network; this script
documents exactly what is in it and rebuilds it (`python examples/make_sample_wheel.py`).
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

NAME, VERSION = "stalwart_sample", "1.0.0"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
FILES: dict[str, bytes] = {
    f"{NAME}/__init__.py": (
        b'"""A sample distribution installed by stalwart\'s README command."""\n\n\n'
        b"def main() -> int:\n"
        b'    print("stalwart sample: installed and running")\n'
        b"    return 0\n"
    ),
    f"{NAME}-{VERSION}.data/data/share/stalwart-sample/README.txt": (
        b"Installed through the .data/data scheme key.\n"
    ),
    f"{DIST_INFO}/METADATA": (
        b"Metadata-Version: 2.1\nName: stalwart-sample\nVersion: 1.0.0\n"
        b"Summary: Sample wheel bundled with stalwart\n"
    ),
    f"{DIST_INFO}/WHEEL": (
        b"Wheel-Version: 1.0\nGenerator: make_sample_wheel\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    ),
    f"{DIST_INFO}/entry_points.txt": (
        b"[console_scripts]\nstalwart-sample = stalwart_sample:main\n"
    ),
}


def build(out_dir: Path) -> Path:
    path = out_dir / f"{NAME}-{VERSION}-py3-none-any.whl"
    rows = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in FILES.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.append(f"{name},sha256={digest.decode()},{len(data)}")
        rows.append(f"{DIST_INFO}/RECORD,,")
        info = zipfile.ZipInfo(f"{DIST_INFO}/RECORD", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, ("\n".join(rows) + "\n").encode())
    return path


if __name__ == "__main__":
    print(build(Path(__file__).parent))
