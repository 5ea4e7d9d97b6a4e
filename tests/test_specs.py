"""stalwart.requirements.specs: what a user types, parsed into one of three kinds."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.version import Version

from stalwart.errors import InvalidRequirementError, UsageError
from stalwart.requirements.specs import (
    MAX_SPEC_CHARS,
    DirectReference,
    LocalWheel,
    NamedRequirement,
    parse_spec,
)

BASE = os.path.abspath("/work/base")
WHEEL = "demo-1.0-py3-none-any.whl"


def parse(text: str) -> object:
    return parse_spec(text, base_dir=BASE)


# -- named requirements ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "httpx",
        "httpx[http2]>=0.27; python_version>='3.9'",
        "  Some_Project [A, b] ~= 1.2 ",
        "demo (>=1,<2)",
        "demo==1.0.*",
        "demo\t>=1",
        "demo; sys_platform == 'linux' and (python_version < '3.12' or extra == 'x')",
    ],
)
def test_named_requirements(text: str) -> None:
    spec = parse(text)
    assert isinstance(spec, NamedRequirement)
    assert spec.requirement == Requirement(text.strip())
    assert str(spec) == text.strip()


def test_named_requirement_accessors() -> None:
    spec = parse('Some_Project[Fancy.Extra]>=1; python_version >= "3.9"')
    assert isinstance(spec, NamedRequirement)
    assert spec.name == "some-project"
    assert spec.extras == {"fancy-extra"}  # PEP 685
    assert spec.marker == Marker('python_version >= "3.9"')


# -- direct references ----------------------------------------------------------------------------


def test_pep508_direct_reference() -> None:
    url = f"https://files.example/p/{WHEEL}"
    spec = parse(f'Demo[cli] @ {url} ; python_version >= "3.9"')
    assert spec == DirectReference(
        name="demo",
        url=url,
        filename=WHEEL,
        version=Version("1.0"),
        extras=frozenset({"cli"}),
        marker=Marker('python_version >= "3.9"'),
    )


def test_file_url_direct_reference() -> None:
    spec = parse(f"demo @ file:///srv/wheels/{WHEEL}")
    assert isinstance(spec, DirectReference)
    assert spec.url == f"file:///srv/wheels/{WHEEL}"


def test_bare_wheel_url_takes_the_name_from_the_filename() -> None:
    spec = parse(f'https://files.example/{WHEEL}; os_name == "posix"')
    assert isinstance(spec, DirectReference)
    assert (spec.name, spec.version) == ("demo", Version("1.0"))
    assert spec.marker == Marker('os_name == "posix"')


def test_percent_encoded_filename() -> None:
    spec = parse("https://files.example/demo-1.0%2Blocal-py3-none-any.whl")
    assert isinstance(spec, DirectReference)
    assert spec.version == Version("1.0+local")


def test_credentials_stay_in_the_url_but_out_of_messages() -> None:
    url = f"https://alice:s3cr3t@files.example/{WHEEL}"
    spec = parse(f"demo @ {url}")
    assert isinstance(spec, DirectReference)
    assert spec.url == url
    assert "s3cr3t" not in str(spec)
    assert "s3cr3t" not in repr(spec)
    with pytest.raises(InvalidRequirementError) as info:
        parse("demo @ https://alice:s3cr3t@files.example/demo-1.0.tar.gz")
    assert "s3cr3t" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"other @ https://files.example/{WHEEL}", "a wheel of demo, not of other"),
        ("demo @ https://files.example/demo-1.0.tar.gz", "building from source"),
        ("demo @ git+https://github.com/x/demo", "version control URL"),
        ("git+https://github.com/x/demo#egg=demo", "version control URL"),
        (f"demo @ ftp://files.example/{WHEEL}", "scheme 'ftp'"),
        (f"demo @ ./{WHEEL}", "absolute URL"),
        (f"demo @ https:///{WHEEL}", "no host"),
        ("demo @ https://[::1/demo.whl", "not a valid URL"),
        ("https://files.example/not-a-wheel-name.whl", "invalid wheel filename"),
        ("https://files.example/simple/demo/", "does not end with a wheel filename"),
    ],
)
def test_bad_direct_references(text: str, message: str) -> None:
    with pytest.raises(InvalidRequirementError, match=message):
        parse(text)


# -- local wheels ---------------------------------------------------------------------------------


def test_local_wheel_with_extras() -> None:
    spec = parse(f"./dist/{WHEEL}[cli, Fancy_Extra]")
    assert spec == LocalWheel(
        path=os.path.join(BASE, "dist", WHEEL),
        name="demo",
        version=Version("1.0"),
        extras=frozenset({"cli", "fancy-extra"}),
    )


def test_local_wheel_with_marker() -> None:
    spec = parse(f'../{WHEEL}; python_version >= "3.9"')
    assert isinstance(spec, LocalWheel)
    assert spec.path == os.path.join(os.path.dirname(BASE), WHEEL)
    assert spec.marker == Marker('python_version >= "3.9"')


def test_bare_wheel_filename_is_a_path() -> None:
    # "demo-1.0-py3-none-any.whl" is also a valid project name; like pip, a .whl is a file.
    spec = parse(WHEEL)
    assert isinstance(spec, LocalWheel)
    assert spec.path == os.path.join(BASE, WHEEL)


def test_absolute_path_ignores_base_dir() -> None:
    absolute = os.path.abspath(os.path.join(os.sep, "srv", WHEEL))
    spec = parse(absolute)
    assert isinstance(spec, LocalWheel)
    assert spec.path == absolute


def test_path_with_at_sign_is_still_a_path() -> None:
    spec = parse(f"./builds@2/{WHEEL}")
    assert isinstance(spec, LocalWheel)
    assert spec.path == os.path.join(BASE, "builds@2", WHEEL)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("./pkg/", "building from source"),
        ("./demo-1.0.tar.gz", "building from source"),
        ("demo-1.0.zip", "building from source"),
        ("./setup.py", "not to a wheel"),
        ("./dist/not-a-valid-wheel.whl", "invalid wheel filename"),
        (f"./{WHEEL}[bad extra!]", "invalid extras"),
        (f"./{WHEEL}; python_version >>> '3'", "not a valid environment marker"),
    ],
)
def test_bad_paths(text: str, message: str) -> None:
    with pytest.raises(InvalidRequirementError, match=message):
        parse(text)


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("demo>=", "PEP 508"),
        ("demo[", "PEP 508"),
        ("demo; os_name ==", "PEP 508"),
        ("demo\x00", "control characters"),
        ("demo\n>=1", "control characters"),
        ("x" * (MAX_SPEC_CHARS + 1), "longer than"),
        ("demo; " + "(" * 5000 + "os_name == 'x'" + ")" * 5000, "(?i)nested"),
    ],
)
def test_invalid_text(text: str, message: str) -> None:
    with pytest.raises(InvalidRequirementError, match=message) as info:
        parse(text)
    assert isinstance(info.value, UsageError)


def test_error_names_the_text() -> None:
    with pytest.raises(InvalidRequirementError) as info:
        parse("demo>=")
    assert info.value.subject == "'demo>='"
    assert str(info.value).startswith("'demo>=': not a valid requirement")


def test_specs_are_hashable_values() -> None:
    texts = ["demo>=1", f"./{WHEEL}", f"https://files.example/{WHEEL}"]
    assert len({parse(t) for t in texts}) == 3
    assert parse("demo>=1") == parse("demo>=1")


# -- hostile input --------------------------------------------------------------------------------

SPEC_ALPHABET = st.sampled_from(
    [*"abcXYZ019._-[],;@/\\:#~*!=<>() '\"\t", "https://", "file://", ".whl", "python_version"]
)


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(max_size=80) | st.lists(SPEC_ALPHABET, max_size=30).map("".join))
def test_random_text_raises_only_invalid_requirement(text: str) -> None:
    try:
        spec = parse(text)
    except InvalidRequirementError:
        return
    assert isinstance(spec, NamedRequirement | DirectReference | LocalWheel)
