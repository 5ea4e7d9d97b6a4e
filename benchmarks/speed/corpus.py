"""The wheels every tool installs: a pinned corpus of real wheels, or a directory of them.

Each pin carries the sha256 of the one file it stands for, so every run, on every machine,
installs the same bytes. They are fetched once with the repo venv's pip into
``.cache/bench-wheels/`` (gitignored), for CPython 3.11 on manylinux x86_64 whatever the machine
(explicit ``--platform``/``--abi`` flags rather than the running interpreter's tags), binary
only, with the machine's pip configuration ignored. Also here: the tiny generated wheels of the
"one more wheel into a venv of 500 distributions" scenario.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import parse_wheel_filename

from .env import REPO, clean_env

WHEEL_CACHE = REPO / ".cache" / "bench-wheels"

# pip ranks --platform values in the order given, and does not widen one manylinux tag to the
# older ones (a 2_28 platform alone misses manylinux2014 wheels), so every tag is spelled out.
PLATFORMS = [
    *(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
TARGET = ["--python-version", "3.11", "--implementation", "cp"]
TARGET += ["--abi", "cp311", "--abi", "abi3", "--abi", "none"]
TARGET += [arg for platform in PLATFORMS for arg in ("--platform", platform)]


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


# Chosen 2026-12-02: the newest release of each with a cp311 manylinux x86_64 wheel (or a pure
# one). The big ones (numpy, pandas, scipy: large binaries; django, botocore: thousands of small
# files) dominate the totals; the rest are the usual dependencies of web and data projects.
_PINNED = """
aiohappyeyeballs==2.7.1 9243213661e29250eb41368e5daa826fc017156c3b8a11440826b2e3ed376472
aiohttp==3.14.5 50a195903119008fe9cc68710535eb37f556ffffd6a7759afe70a2c145587045
aiosignal==1.4.0 053243f8b92b990551949e63930a839ff0cf0b0ebbe0597b0f3fb19e1a0fe82e
annotated-types==0.8.0 f072f4d804ea359e4eaf198b1af7a8b0943881a87f31bb764f8bf219bb9419e0
anyio==4.16.0 c66ae634e0b8228396b801741beb3294326d4b6102f7bba4041c0dfb58c29026
asgiref==3.13.0 f9596a2434512686473d50f96ff6207fbba49ae1a785dfac614df4aeb085674d
attrs==26.1.0 c647aa4a12dfbad9333ca4e71fe62ddc36f4e63b2d260a37a8b83d2f043ac309
boto3==1.44.8 099caf21553bbbfef118904aa02fadb8776a534704cf00bede0ed9f29a4da88e
botocore==1.44.8 76342a76c338701db80dcb8afe1c9bd079283d6fffbb9d881442abb02a215043
cattrs==26.2.1 a12aaa3453dc8f633a815293179f08b7421ed18d2575c459c3c736f840beac24
certifi==2026.10.19.post1 1324c476b4811eff41a8bc2122cd0bbd4d9c7234c725446d99ab1612b3a7fdd2
cffi==2.1.1 34e261f78cb6ceaaa36f42f2613f4380d94d9c759a9c73c769ee6e0247364632
charset-normalizer==3.5.3 2a6f937e0b70133d1f826d0a253331b6fe1a4c874808cc12e16f2fb8177042f4
click==8.5.1 8bb5376d2006950386f8c6427613334a2acadc5f559cb80e638d00b4df957e37
coverage==7.17.5 4b47222f9727cd1476518ce6daaec7cf7c13f72eaeef8b1f8bb68f98b2372094
cryptography==50.0.2 4061c0079120205fb760c58acab6443e217307dcf05e3702cf970e0689972856
django==5.2.19 5965d974a5218a2b68a11dd1276434707f23886525c23f0598eccedaf4f4ca00
fastapi==0.165.0 896f48462042bb4f162147eb8fac7e858753dc1f486765709baf105d70e4fc5b
frozenlist==1.8.0 2552f44204b744fba866e573be4c1f9048d6a324dfe14475103fd51613eb1d1f
greenlet==3.5.6 1c20ea32a73d17b9b60e3371240e17b0068120c98a5ec01a224a7dd8c89733ba
h11==0.16.0 63cf8bbe7522de3bf65932fda1d9c2772064ffb3dae62d55932da54b31cb6c86
httpcore==1.0.9 2d400746a40668fc9dec9810239072b40b4484b640a8c38fd654a024c7a1bf55
httpx==0.29.0 6734dcf742ced6e8018e45d3f9f7728975b6b3e1085a24f3e2c056069d858bd1
idna==3.20 ab7ae7122974553370f0bdb919e1a960b2cd1bc1ef0276416d896db81c14582c
iniconfig==2.3.1 9121e2c1fdb355232495be3194c8dfe87ccc2d5dee45947b78e68f499790d7a7
jinja2==3.1.6 85ece4451f492d0c13c5dd7c13a64681a86afae63a5f347908daf103ce6d2f67
jmespath==1.1.0 a5663118de4908c91729bea0acadca56526eb2698e83de10cd116ae0f4e97c64
lxml==6.1.3 527195c188d7d0af748cd48d220ab8cdc5cb99be3d49ac4d9be7324d8abf9bc0
markdown-it-py==4.3.0 7aa1511a46c39138de78d9eba92ce47e63124d8003fc98b3a351909e04239efa
markupsafe==3.0.4 6da83a088f8ef93b2d483a8232a4dbf4d69d3d8496b568a03c56becac43e1808
mdurl==0.1.2 84008a41e51615a49fc9966191ff91509e3c40b939176e643fd50a5c2196b8f8
multidict==7.2.1 3b7542fad2706595c1b1853b46f2c3c4ae5cc5a6252b7225f294d607a29e1bdf
numpy==2.4.6 89cd468399cfd2504718f0ba50e410dca55a170b61a02ad92bb18c8a65186e93
packaging==26.4 81383611a09c1bc0b08b76e0fd5829d7c6824c65b27a6aee339da133f4233ea2
pandas==3.1.1 4f1602f614bb83f443381dbcbb94c4ac764b2e50c8d6c965614c5cd83e328c47
pillow==13.0.0 a625df9a2a5597fa5e5266e01aefc82604bb85d291e3547981e863560d75da6c
pluggy==1.7.0 7dd7b0d8832ba3cb632c306926ded123429211b83641b35dc5c41ad2d34f9bec
propcache==0.5.4 6e9368e87a3efc285e559131092c5db643eb8e56de4ee42064d5baec22ef2bb5
psutil==7.2.2 076a2d2f923fd4821644f5ba89f059523da90dc9014e85f8e45a5774ca5bc6f9
pycparser==3.12 a076f3f489b39b43ed13563a1dafe42447445bec2e294154ec5c57fcdda4c85e
pydantic==2.14.4 653a2ad9f6d8858529c77c72717d0ea991d6c6837fe683246b2f4b2bbfc3fadc
pydantic-core==2.50.5 488319076ec92908b91fc6265ce761f1d78748f69f85518564fd16bf333e1b70
pygments==2.21.0 2363c69b61c4a97c838da3b130dcd6468f4848992b21a82f2a63ec34377137d9
pytest==9.2.0 07acdcf88ec174f907dc01af70bf52d49b014bbab03faeeade31c96b18c2e588
python-dateutil==4.0.0 a5e246f79eb80475e691bf93862cead98decd8a498cf53ba0516fcdc0f50dc1c
pytz==2026.6 7fed3fee8fd6bd4a2b7b75a8d56021d0624127bf69bd5691f115db929ac570b3
pyyaml==6.0.4 622aa875fa6533f25fedcffe23079357d65a690d462200afed5d8e9d0e01ebee
requests==2.34.2 2a0d60c172f83ac6ab31e4554906c0f3b3588d37b5cb939b1c061f4907e278e0
rich==15.0.0 33bd4ef74232fb73fe9279a257718407f169c09b78a87ad3d296f548e27de0bb
s3transfer==0.19.3 24eb7535804306355e31c952a90022bf5b2f9d760f9a11062c7493a217c08553
setuptools==84.2.1 ca140b45d5325a9478f880e351484f62fef15f336462e449ca0c03c873d589c2
six==1.17.0 4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274
sniffio==1.3.1 2f6da418d1f1e0fddd844478f41680e794e6051915791a034ff65e5f100525a2
sqlalchemy==2.1.9 3a24b459e52b3ac138f6a05e99a4bd0589443a1ae18041a59c1cfdee12134a2b
starlette==1.10.0 478c0ab3b4ced6e82719849c118fa406f0278a3499c1a898cd15cd31bdc38ce4
typing-extensions==4.16.0 481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8
typing-inspection==0.4.5 bc210535442b39e1bf2805e0c7a17dfd6a4ace760c84c7f7d16245d23a6b1c39
tzdata==2026.6 0a10eec6e13ef16b627fabed9a5f2ba61a62b1c67f327305f4e7e412a70b4aec
urllib3==2.8.0 0cf3cae568d36aa9576b28dfb35f11328f1cb974ca7647d9475ebb86c75ac6e3
wrapt==2.5.2 0743950d3dda9940e56f81f5334ba051c4fe2e1421e4e4a4ef8eb8fb86a90894
yarl==1.25.1 d5add7b4ca7afeea91d52e4d4e4db3b1fe9885b71f07054560d8c4296b7441a2
"""
PINS = [Pin(*line.replace("==", " ").split()) for line in _PINNED.splitlines() if line]
# 114 MB unpacked on its own, more than a third of the rest together: only with --scipy.
SCIPY = Pin("scipy", "1.17.1", "43af8d1f3bea642559019edfe64e9b11192a8978efbd1539d7bc2aaa23d92de4")
# --quick: a dozen everyday pure and binary wheels (the first harness's small corpus).
SMALL = {"six", "idna", "certifi", "urllib3", "requests", "markupsafe", "pyyaml", "jinja2",
         "packaging", "click", "rich", "pygments"}  # fmt: skip


@dataclass(frozen=True)
class Corpus:
    """The wheels of a run and what they hold, for the report."""

    label: str
    wheels: tuple[Path, ...]
    files: int  # regular files in the archives (directories not counted)
    packed: int  # bytes of the .whl files
    unpacked: int  # bytes of the files once extracted

    def describe(self) -> str:
        return (
            f"{len(self.wheels)} wheels, {self.files:,} files, {self.packed / 1e6:.1f} MB "
            f"packed, {self.unpacked / 1e6:.1f} MB unpacked"
        )


def measure(label: str, wheels: list[Path]) -> Corpus:
    files = unpacked = 0
    for path in wheels:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    files += 1
                    unpacked += info.file_size
    packed = sum(p.stat().st_size for p in wheels)
    return Corpus(label, tuple(wheels), files, packed, unpacked)


def from_directory(directory: Path) -> Corpus:
    """Every ``*.whl`` of *directory*, as they are (``--wheels``; no pins, no network)."""
    wheels = sorted(directory.resolve().glob("*.whl"))
    if not wheels:
        raise SystemExit(f"no .whl files in {directory}")
    return measure(f"wheels from {directory}", wheels)


def pinned(small: bool, scipy: bool) -> Corpus:
    """The pinned corpus (a dozen of it with *small*), downloaded on first use and checked."""
    pins = [p for p in PINS if p.name in SMALL] if small else list(PINS)
    if scipy:
        pins.append(SCIPY)
    wheels = _fetch(pins)
    tags = {str(t) for t in sys_tags()}
    foreign = [w.name for w in wheels if not any(str(t) in tags for t in _tags(w))]
    if foreign:
        raise SystemExit(
            f"{len(foreign)} wheels of the pinned corpus do not install on this interpreter "
            f"(it is for CPython 3.11 on manylinux x86_64), e.g. {foreign[0]}; run the harness "
            "with a CPython 3.11 venv, or give your own wheels with --wheels DIR"
        )
    label = "small" if small else "full"
    return measure(label + (" + scipy" if scipy else ""), wheels)


def _tags(wheel: Path) -> frozenset[Tag]:
    return parse_wheel_filename(wheel.name)[3]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(pins: list[Pin]) -> list[Path]:
    """The file of each pin, found by its hash; pip downloads the missing ones, all at once."""
    by_hash = {_sha256(p): p for p in WHEEL_CACHE.glob("*.whl")} if WHEEL_CACHE.is_dir() else {}
    missing = [pin for pin in pins if pin.sha256 not in by_hash]
    if missing:
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        print(f"downloading {len(missing)} wheels into {WHEEL_CACHE} ...", flush=True)
        requirements = WHEEL_CACHE / "requirements.txt"
        requirements.write_text("".join(pin.requirement + "\n" for pin in missing))
        argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes"]
        argv += ["--only-binary=:all:", *TARGET, "-d", str(WHEEL_CACHE), "-r", str(requirements)]
        subprocess.run(argv, env=clean_env(), check=True)
        by_hash = {_sha256(p): p for p in WHEEL_CACHE.glob("*.whl")}
    lost = [pin.name for pin in pins if pin.sha256 not in by_hash]
    if lost:
        raise SystemExit(f"pip downloaded no file with the pinned hash for {', '.join(lost)}")
    return [by_hash[pin.sha256] for pin in pins]


# --------------------------------------------------------------------------------------------
# tiny generated wheels


def tiny_wheel(directory: Path, name: str) -> Path:
    """A valid one-module wheel: a distribution that costs a tool nearly nothing to install,
    so what is left is the tool's fixed cost and how it scales with the environment."""
    dist_info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": f"NAME = {name!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    rows = []
    for member, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{member},sha256={digest},{len(data)}\n")
    files[f"{dist_info}/RECORD"] = ("".join(rows) + f"{dist_info}/RECORD,,\n").encode()
    path = directory / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return path


def tiny_wheels(directory: Path, count: int) -> list[Path]:
    os.makedirs(directory, exist_ok=True)
    return [tiny_wheel(directory, f"bench_tiny_{i:04d}") for i in range(count)]
