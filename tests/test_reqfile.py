"""stalwart.requirements.reqfile: pip's requirements-file syntax, and what it refuses."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from stalwart.errors import InvalidRequirementError
from stalwart.requirements.reqfile import (
    MAX_FILE_BYTES,
    MAX_FILES,
    IndexOptions,
    RequirementsFile,
    decode_requirements,
    parse_requirements_file,
    parse_requirements_files,
    read_text_file,
)
from stalwart.requirements.specs import DirectReference, LocalWheel, NamedRequirement
from tinywheels import build_wheel, sha256_of

ROOT = os.path.abspath(os.sep + "proj")
SHA_A = "a" * 64
SHA_B = "b" * 64
WHEEL = "demo-1.0-py3-none-any.whl"


class FakeDisk:
    """Files by absolute path, for the injected ``read`` and ``exists``."""

    def __init__(self, files: Mapping[str, str], others: tuple[str, ...] = ()) -> None:
        self.files = {os.path.join(ROOT, k): v for k, v in files.items()}
        self.others = {os.path.join(ROOT, k) for k in others}
        self.reads: list[str] = []

    def read(self, path: str) -> str:
        self.reads.append(path)
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", path) from None

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.others


def parse(
    text: str,
    *,
    files: Mapping[str, str] | None = None,
    others: tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
    constraint: bool = False,
    cwd: str = ROOT,
) -> RequirementsFile:
    disk = FakeDisk({"requirements.txt": text, **(files or {})}, others)
    return parse_requirements_file(
        "requirements.txt",
        constraint=constraint,
        read=disk.read,
        exists=disk.exists,
        environ=environ or {},
        cwd=cwd,
    )


def names(result: RequirementsFile) -> list[str]:
    return [str(line.spec) for line in result.requirements]


def error(text: str, **kwargs: object) -> InvalidRequirementError:
    with pytest.raises(InvalidRequirementError) as info:
        parse(text, **kwargs)  # type: ignore[arg-type]
    return info.value


# -- lines, comments, continuations ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n   # indented\n", "  \t \n"])
def test_empty_files_are_valid(text: str) -> None:
    assert parse(text) == RequirementsFile(files=("requirements.txt",))


def test_requirements_keep_file_and_line() -> None:
    result = parse("# header\n\ndemo>=1\nother[x]==2; python_version>'3'\n")
    assert names(result) == ["demo>=1", "other[x]==2; python_version>'3'"]
    assert [(r.source, r.line, r.location) for r in result.requirements] == [
        ("requirements.txt", 3, "requirements.txt:3"),
        ("requirements.txt", 4, "requirements.txt:4"),
    ]
    spec = result.requirements[1].spec
    assert isinstance(spec, NamedRequirement)
    assert spec.requirement == Requirement("other[x]==2; python_version>'3'")


def test_comments() -> None:
    result = parse(
        "demo>=1 # pinned for reasons\n"
        "other  #comment\n"
        f"https://files.example/{WHEEL}#sha256={SHA_A}\n"  # no whitespace before '#': kept
        "#demo2\n"
    )
    assert names(result) == ["demo>=1", "other", f"https://files.example/{WHEEL}#sha256={SHA_A}"]


def test_continuations_join_and_keep_the_first_line_number() -> None:
    result = parse("first\ndemo \\\n  >=1.0 \\\n  ; python_version >= '3.9'\nlast\\\n")
    assert names(result) == ["first", "demo   >=1.0   ; python_version >= '3.9'", "last"]
    assert [r.line for r in result.requirements] == [1, 2, 5]


def test_hashes_across_continuation_lines() -> None:
    result = parse(
        f"demo==1.0 \\\n    --hash=sha256:{SHA_A} \\\n    --hash sha256:{SHA_B.upper()} \\\n"
        f"    --hash=sha256:{SHA_A}\nother\n"
    )
    demo, other = result.requirements
    assert demo.hashes == {"sha256": (SHA_A, SHA_B)}
    assert demo.line == 1
    assert other.hashes == {}
    assert other.line == 5


def test_several_hash_algorithms() -> None:
    sha384, sha512 = "c" * 96, "d" * 128
    result = parse(f"demo --hash=sha384:{sha384} --hash=sha512:{sha512}")
    assert result.requirements[0].hashes == {"sha384": (sha384,), "sha512": (sha512,)}


def test_a_comment_line_ends_a_continuation() -> None:
    # As in pip: the comment line is not joined in; it ends the logical line.
    result = parse("demo \\\n# a comment\nother\n")
    assert names(result) == ["demo", "other"]


def test_a_comment_that_would_swallow_the_next_line_is_refused() -> None:
    exc = error("demo>=1  # pinned \\\nother==2\n")
    assert exc.subject == "requirements.txt:2"
    assert "part of the comment" in str(exc)


def test_a_comment_before_a_blank_continuation_is_harmless() -> None:
    assert names(parse("demo>=1  # pinned \\\n\nother\n")) == ["demo>=1", "other"]


def test_crlf_and_form_feed_line_ends() -> None:
    # str.splitlines, as pip: the line numbers agree with pip's messages.
    result = parse("one\r\ntwo\x0cthree\r\n")
    assert names(result) == ["one", "two", "three"]
    assert [r.line for r in result.requirements] == [1, 2, 3]


# -- environment variables ------------------------------------------------------------------------


def test_environment_variables() -> None:
    result = parse(
        "demo==${DEMO_VERSION}\n-i https://${USER_1}:${TOKEN}@index.example/simple\n",
        environ={"DEMO_VERSION": "1.2", "USER_1": "bob", "TOKEN": "t0k"},
    )
    assert names(result) == ["demo==1.2"]
    assert result.options.index_url == "https://bob:t0k@index.example/simple"


@pytest.mark.parametrize("text", ["demo$VERSION", "demo${version}", "demo$(VERSION)"])
def test_only_upper_case_braced_variables_are_expanded(text: str) -> None:
    # pip expands only ${UPPER_CASE}; the rest stays and must then be a valid requirement.
    assert "PEP 508" in str(error(text, environ={"VERSION": "1", "version": "1"}))


def test_unset_variables_are_named() -> None:
    exc = error("demo\n-i https://${USER}:${TOKEN}@index.example/simple\n")
    assert exc.subject == "requirements.txt:2"
    assert "environment variable not set: TOKEN, USER" in str(exc)


def test_empty_variables_expand_to_nothing() -> None:
    assert names(parse("demo${SUFFIX}>=1", environ={"SUFFIX": ""})) == ["demo>=1"]


def test_expanded_text_is_not_a_comment() -> None:
    # Comments are removed before expansion, as in pip: a "#" from a variable stays.
    assert "'demo  #1': not a valid requirement" in str(
        error("${REQ}", environ={"REQ": "demo  #1"})
    )


# -- options --------------------------------------------------------------------------------------


def test_index_options_are_collected() -> None:
    result = parse(
        "--index-url https://first.example/simple\n"
        "-i https://index.example/simple\n"
        "--extra-index-url=https://extra.example/simple\n"
        "--extra-index-url https://extra.example/simple\n"
        "--no-index\n--pre\n--prefer-binary\n--require-hashes\n"
        "--trusted-host extra.example\n--trusted-host=extra.example\n",
    )
    assert result.options == IndexOptions(
        index_url="https://index.example/simple",  # the last one wins, as in pip
        extra_index_urls=("https://extra.example/simple",),
        no_index=True,
        pre=True,
        prefer_binary=True,
        require_hashes=True,
        trusted_hosts=("extra.example",),
    )
    assert result.requirements == ()


def test_several_options_on_one_line() -> None:
    result = parse("--pre --index-url https://i.example/simple -f https://links.example/\n")
    assert result.options.pre
    assert result.options.index_url == "https://i.example/simple"
    assert result.options.find_links == ("https://links.example/",)


def test_find_links_relative_to_the_requirements_file_when_it_exists_there() -> None:
    result = parse(
        "-f wheels\n-f ../shared\n--find-links=file:///srv/wheels\n",
        files={"sub/requirements.txt": "-f local\n-f elsewhere\n"},
        others=("wheels", "sub/local"),
    )
    assert result.options.find_links == (
        os.path.join(ROOT, "wheels"),
        os.path.normpath(os.path.join(ROOT, "..", "shared")),
        "file:///srv/wheels",
    )
    disk = FakeDisk({"sub/requirements.txt": "-f local\n-f elsewhere\n"}, ("sub/local",))
    nested = parse_requirements_file(
        os.path.join(ROOT, "sub", "requirements.txt"),
        read=disk.read,
        exists=disk.exists,
        cwd=os.path.join(ROOT, "cwd"),
    )
    assert nested.options.find_links == (
        os.path.join(ROOT, "sub", "local"),  # beside the requirements file
        os.path.join(ROOT, "cwd", "elsewhere"),  # not there: relative to the cwd
    )


@pytest.mark.parametrize(
    ("lines", "only", "no"),
    [
        (["--only-binary :all:"], {":all:"}, set()),
        (["--no-binary :all:", "--only-binary Foo_Bar"], {"foo-bar"}, {":all:"}),
        (["--only-binary :all:", "--no-binary demo"], {":all:"}, {"demo"}),
        (["--no-binary demo,other,", "--only-binary demo"], {"demo"}, {"other"}),
        (["--only-binary demo", "--only-binary :none:"], set(), set()),
        (["--only-binary :all:,:none:,demo"], {"demo"}, set()),
        (["--no-binary a", "--only-binary :all:"], {":all:"}, set()),
    ],
)
def test_binary_format_control(lines: list[str], only: set[str], no: set[str]) -> None:
    options = parse("\n".join(lines)).options
    assert options.only_binary == only
    assert options.no_binary == no


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-e .", "editable installs are not supported"),
        ("--editable=git+https://x/y#egg=y", "editable installs are not supported"),
        ("demo --config-settings key=value", "building from source"),
        ("--global-option=--x", "building from source"),
        ("--no-deps", "unknown or unsupported option '--no-deps'"),
        ("--pre=yes", "--pre takes no value"),
        ("--index-url", "--index-url needs a value"),
        ("--pre demo", "unexpected 'demo' among options"),
        (f"demo --hash=sha256:{SHA_A} other", "unexpected 'other' among options"),
        ("-i not-a-url", "needs an http(s) or file URL"),
        ("-i ftp://host/simple", "needs an http(s) or file URL"),
        ("demo --index-url https://x.example/", "does not apply to one requirement"),
        (f"--hash=sha256:{SHA_A}", "without a requirement"),
        ("demo --hash=md5:" + "a" * 32, "one of sha256, sha384, sha512"),
        ("demo --hash=sha256", "ALGORITHM:HEXDIGEST"),
        ("demo --hash=sha256:abc", "64 hex digits"),
        ("demo --hash=sha256:" + "g" * 64, "64 hex digits"),
        ("--only-binary", "needs a value"),
        ("--only-binary 'a,bad name!'", "is not a project name"),
        ("--trusted-host ''", "needs a host name"),
        ("demo --hash='unclosed", "cannot split the options"),
        ("-r https://example.com/requirements.txt", "from URLs are not supported yet"),
        ("./demo-1.0.tar.gz", "building from source"),
    ],
)
def test_refused_lines(text: str, message: str) -> None:
    exc = error(text)
    assert exc.subject == "requirements.txt:1"
    assert message in str(exc)


def test_use_feature_is_ignored_with_a_note() -> None:
    result = parse("--use-feature=truststore\ndemo\n")
    assert names(result) == ["demo"]
    assert result.notes == (
        "requirements.txt:1: ignored --use-feature=truststore (a pip feature flag)",
    )


# -- nested files ---------------------------------------------------------------------------------


def test_nested_files_relative_to_the_including_file() -> None:
    result = parse(
        "top\n-r sub/base.txt\n-c constraints.txt\nbottom\n",
        files={
            "sub/base.txt": "base\n--requirement=deeper/more.txt\n",
            "sub/deeper/more.txt": "more\n-r../../shared.txt\n",
            "shared.txt": "shared\n",
            "constraints.txt": "demo<2\n-r sub/pins.txt\n",
            "sub/pins.txt": "other==1.0\n",
        },
    )
    assert names(result) == ["top", "base", "more", "shared", "bottom"]
    assert [str(c.spec) for c in result.constraints] == ["demo<2", "other==1.0"]
    assert [c.source for c in result.constraints] == [
        os.path.join(ROOT, "constraints.txt"),
        os.path.join(ROOT, "sub", "pins.txt"),
    ]
    assert result.requirements[2].location == os.path.join(ROOT, "sub", "deeper", "more.txt:1")
    assert result.files[0] == "requirements.txt"
    assert len(result.files) == 6


def test_nested_file_urls() -> None:
    target = os.path.join(ROOT, "other.txt")
    from pathlib import PurePath

    url = PurePath(target).as_uri() if os.name == "nt" else f"file://{target}"
    result = parse(f"-r {url}\n", files={"other.txt": "demo\n"})
    assert names(result) == ["demo"]


def test_top_level_constraints_file() -> None:
    result = parse("demo<2\n", constraint=True)
    assert result.requirements == ()
    assert [str(c.spec) for c in result.constraints] == ["demo<2"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"./{WHEEL}", "must name a project"),
        ("demo[extra]<2", "cannot have extras"),
    ],
)
def test_constraints_must_be_named_and_plain(line: str, message: str) -> None:
    assert message in str(error(line, constraint=True))


def test_direct_references_may_be_constraints() -> None:
    result = parse(f"demo @ https://files.example/{WHEEL}\n", constraint=True)
    assert isinstance(result.constraints[0].spec, DirectReference)


def test_cycles_are_refused() -> None:
    exc = error(
        "demo\n-r a.txt\n",
        files={"a.txt": "-r sub/../b.txt\n", "b.txt": "-r ./a.txt\n"},
    )
    assert exc.subject == os.path.join(ROOT, "b.txt:1")
    assert "includes itself" in str(exc)
    assert str(exc).count("a.txt") >= 2


def test_a_file_including_itself() -> None:
    exc = error("-r requirements.txt\n")
    assert exc.subject == "requirements.txt:1"
    assert "includes itself" in str(exc)


def test_diamonds_are_not_cycles() -> None:
    result = parse(
        "-r a.txt\n-r b.txt\n",
        files={"a.txt": "-r c.txt\n", "b.txt": "-r c.txt\n", "c.txt": "demo\n"},
    )
    assert names(result) == ["demo", "demo"]


def test_exponential_inclusion_is_stopped() -> None:
    # Each file includes the next one twice: 2**30 inclusions without a limit.
    files = {f"f{i}.txt": f"-r f{i + 1}.txt\n-r f{i + 1}.txt\n" for i in range(30)}
    files["f30.txt"] = "demo\n"
    disk = FakeDisk({"requirements.txt": "-r f0.txt\n", **files})
    with pytest.raises(InvalidRequirementError, match=f"more than {MAX_FILES}"):
        parse_requirements_file(
            "requirements.txt", read=disk.read, exists=disk.exists, environ={}, cwd=ROOT
        )
    assert len(disk.reads) == MAX_FILES


def test_missing_nested_file_names_the_including_line() -> None:
    exc = error("demo\n-r missing.txt\n")
    assert exc.subject == "requirements.txt:2"
    assert "missing.txt" in str(exc)
    assert "No such file" in str(exc)


def test_several_top_level_files_merge() -> None:
    disk = FakeDisk(
        {"a.txt": "-i https://a.example/simple\ndemo\n", "b.txt": "other\n", "c.txt": "demo<2\n"}
    )
    result = parse_requirements_files(
        ["a.txt", "b.txt"], ["c.txt"], read=disk.read, exists=disk.exists, environ={}, cwd=ROOT
    )
    assert names(result) == ["demo", "other"]
    assert [str(c.spec) for c in result.constraints] == ["demo<2"]
    assert result.options.index_url == "https://a.example/simple"


# -- local wheels ---------------------------------------------------------------------------------


def test_local_wheels_beside_the_requirements_file_or_in_the_cwd() -> None:
    disk = FakeDisk({"sub/req.txt": f"./dist/{WHEEL}[cli]\n../{WHEEL}\n"}, (f"sub/dist/{WHEEL}",))
    result = parse_requirements_file(
        os.path.join(ROOT, "sub", "req.txt"),
        read=disk.read,
        exists=disk.exists,
        cwd=os.path.join(ROOT, "cwd"),
    )
    beside, fallback = (line.spec for line in result.requirements)
    assert isinstance(beside, LocalWheel)
    assert beside.path == os.path.join(ROOT, "sub", "dist", WHEEL)
    assert beside.extras == {"cli"}
    assert isinstance(fallback, LocalWheel)
    assert fallback.path == os.path.join(ROOT, WHEEL)  # cwd/.. : not beside sub/req.txt


# -- errors ---------------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    exc = error("demo>=\n-e .\nfine\n-r missing.txt\n--bogus\n")
    assert exc.subject == "requirements.txt"
    assert exc.problems[0].startswith(
        "requirements.txt:1: 'demo>=': not a valid requirement (PEP 508): "
    )
    assert exc.problems[1:] == [
        "requirements.txt:2: --editable: editable installs are not supported: stalwart "
        "installs wheels",
        f"requirements.txt:4: cannot read {os.path.join(ROOT, 'missing.txt')}: No such file or "
        "directory",
        "requirements.txt:5: unknown or unsupported option '--bogus' (supported: -r, -c, "
        "-i/--index-url, --extra-index-url, --no-index, -f/--find-links, --pre, "
        "--prefer-binary, --require-hashes, --only-binary, --no-binary, --trusted-host, --hash)",
    ]


def test_credentials_never_reach_messages() -> None:
    exc = error(
        "-i https://alice:s3cr3t@index.example/simple --bogus\n"
        "demo @ https://alice:s3cr3t@files.example/demo-1.0.tar.gz\n"
        "demo --index-url https://alice:s3cr3t@index.example/simple\n"
    )
    assert len(exc.problems) == 3
    assert "s3cr3t" not in str(exc)
    result = parse("-i https://alice:s3cr3t@index.example/simple\n")
    assert result.options.index_url == "https://alice:s3cr3t@index.example/simple"
    assert "s3cr3t" not in repr(result)


# -- reading files from disk ----------------------------------------------------------------------


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    "data",
    [
        b"demo>=1\r\n",
        b"\xef\xbb\xbfdemo>=1\n",
        "demo>=1\n".encode("utf-16"),
        "demo>=1\n".encode("utf-32"),
        b"\xfe\xff" + "demo>=1\n".encode("utf-16-be"),
    ],
)
def test_encodings_pip_reads(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path / "requirements.txt", data)
    assert names(parse_requirements_file(path)) == ["demo>=1"]


def test_pep263_coding_comment(tmp_path: Path) -> None:
    data = "# -*- coding: latin-1 -*-\ndemo>=1 # caf\xe9\n".encode("latin-1")
    path = write(tmp_path / "requirements.txt", data)
    assert names(parse_requirements_file(path)) == ["demo>=1"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"demo # caf\xe9\n", "not valid utf-8"),
        (b"# coding: no-such-codec\ndemo\n", "unknown encoding"),
        (b"# coding: rot13\ndemo\n", "unknown encoding"),  # not a text encoding
    ],
)
def test_undecodable_files(tmp_path: Path, data: bytes, message: str) -> None:
    path = write(tmp_path / "requirements.txt", data)
    with pytest.raises(InvalidRequirementError, match=message) as info:
        parse_requirements_file(path)
    assert info.value.subject == path


def test_decode_requirements_is_public_and_pure() -> None:
    assert decode_requirements("x\n".encode("utf-16"), "r.txt") == "x\n"


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequirementError, match="not a regular file"):
        read_text_file(str(tmp_path))
    with pytest.raises(InvalidRequirementError, match="cannot read"):
        read_text_file(str(tmp_path / "missing.txt"))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_files_are_not_read_forever() -> None:
    with pytest.raises(InvalidRequirementError, match="not a regular file"):
        read_text_file("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifos_are_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    with pytest.raises(InvalidRequirementError, match="not a regular file"):
        read_text_file(str(fifo))


def test_oversized_files(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is really written
    with pytest.raises(InvalidRequirementError, match="larger than"):
        read_text_file(str(path))


def test_real_files_with_nesting(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.txt").write_text("base\n-r ../requirements.txt\n")
    path = write(tmp_path / "requirements.txt", b"-r sub/base.txt\n")
    with pytest.raises(InvalidRequirementError, match="includes itself"):
        parse_requirements_file(path)
    link = tmp_path / "alias.txt"
    if sys.platform != "win32":
        # The same file through a symlink is still the same file.
        link.symlink_to(tmp_path / "sub" / "base.txt")
        # Read through the alias, "alias.txt" is beside it: the same file again.
        (tmp_path / "sub" / "base.txt").write_text("base\n-r alias.txt\n")
        with pytest.raises(InvalidRequirementError, match="includes itself"):
            parse_requirements_file(str(link))


# -- the real pip reads the same file the same way ------------------------------------------------


def pip_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.update(extra)
    return env


def test_pip_installs_what_we_parse(tmp_path: Path) -> None:
    import json
    import subprocess

    from packaging.markers import default_environment

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    built = {
        (name, version): build_wheel(wheels, name, version)
        for name, version in [
            ("alpha", "1.0"),
            ("alpha", "2.0"),
            ("beta", "1.0"),
            ("beta", "1.5"),
            ("gamma", "1.0"),
            ("delta", "1.0"),
        ]
    }
    digest = {key: sha256_of(path) for key, path in built.items()}
    reqs = tmp_path / "reqs"
    (reqs / "nested").mkdir(parents=True)
    (reqs / "requirements.txt").write_text(
        "# every feature pip users lean on, in one file\n"
        "--no-index\n"
        "-f ../wheels\n"
        "-c constraints.txt\n"
        "Alpha==1.0 \\\n"
        f"    --hash=sha256:{digest['alpha', '2.0']} \\\n"
        f"    --hash=sha256:{digest['alpha', '1.0']}\n"
        "-r nested/more.txt\n"
        f"gamma==1.0 ; python_version < '3' --hash=sha256:{digest['gamma', '1.0']}\n"
        f"${{DELTA_NAME}}==1.0 --hash=sha256:{digest['delta', '1.0']}  # via the environment\n"
    )
    (reqs / "constraints.txt").write_text("alpha<2\n")
    (reqs / "nested" / "more.txt").write_text(f"beta==1.5 --hash=sha256:{digest['beta', '1.5']}\n")
    report = tmp_path / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "-r",
            str(reqs / "requirements.txt"),
        ],
        cwd=tmp_path,
        env=pip_env(DELTA_NAME="delta"),
        check=True,
        capture_output=True,
    )
    pip_chose = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
        if item["requested"]
    }

    ours = parse_requirements_file(str(reqs / "requirements.txt"), environ={"DELTA_NAME": "delta"})
    environment = default_environment()
    wanted = {}
    for line in ours.requirements:
        spec = line.spec
        assert isinstance(spec, NamedRequirement)
        if spec.marker is None or spec.marker.evaluate(environment):
            (pin,) = spec.requirement.specifier
            wanted[spec.name] = pin.version
            assert digest[spec.name, pin.version] in line.hashes["sha256"]
    assert wanted == pip_chose == {"alpha": "1.0", "beta": "1.5", "delta": "1.0"}
    assert ours.options.no_index
    assert ours.options.find_links == (str(wheels),)
    assert [str(c.spec) for c in ours.constraints] == ["alpha<2"]


# -- hostile input --------------------------------------------------------------------------------

LINE_ALPHABET = st.sampled_from(
    [
        *"abc01.=<>[];@#\\ \t\n'\"$",
        "${X}",
        "-r ",
        "-c ",
        "--hash=sha256:",
        "-i ",
        "-f ",
        "--pre",
        "-e",
        "--only-binary ",
        ":all:",
        "https://",
        "file://",
        ".whl",
        "\r",
        "\x0c",
    ]
)


@settings(max_examples=400, deadline=None, database=None)
@given(
    text=st.text(max_size=200) | st.lists(LINE_ALPHABET, max_size=40).map("".join),
    nested=st.text(max_size=60) | st.lists(LINE_ALPHABET, max_size=20).map("".join),
)
def test_random_files_raise_only_invalid_requirement(text: str, nested: str) -> None:
    files = {"c": nested, "a": "-r requirements.txt\n", "x.txt": nested}
    try:
        parse(text, files=files, environ={"X": "demo"})
    except InvalidRequirementError:
        pass


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_invalid_requirement(data: bytes) -> None:
    try:
        decode_requirements(data, "r.txt")
    except InvalidRequirementError:
        pass
