"""stalwart.index.candidates: which index files a target can install, and their order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from stalwart.index.candidates import (
    MAX_WHEEL_TAGS,
    Candidate,
    Rejection,
    RejectionKind,
    best_first,
    evaluate,
    parse_wheel_name,
    preference,
    rank_tags,
)
from stalwart.index.simple import IndexFile

PROJECT = canonicalize_name("Demo")
PY = (3, 11, 4)
# A small target, best tag first: CPython 3.11 on manylinux x86_64.
TAGS = [
    Tag("cp311", "cp311", "manylinux_2_17_x86_64"),
    Tag("cp311", "abi3", "manylinux_2_17_x86_64"),
    Tag("cp311", "none", "manylinux_2_17_x86_64"),
    Tag("py3", "none", "manylinux_2_17_x86_64"),
    Tag("cp311", "none", "any"),
    Tag("py311", "none", "any"),
    Tag("py3", "none", "any"),
]


def file(filename: str, **fields: object) -> IndexFile:
    return IndexFile(filename=filename, url=f"https://files.example/{filename}", **fields)


def judge(
    filename: str,
    *,
    project: NormalizedName = PROJECT,
    allow_yanked: bool = False,
    **fields: object,
) -> Candidate | Rejection:
    return evaluate(
        file(filename, **fields),
        project=project,
        tags=TAGS,
        python_version=PY,
        allow_yanked=allow_yanked,
    )


def rejected(result: Candidate | Rejection, kind: RejectionKind) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.kind is kind, result
    return result


def test_pure_wheel_is_a_candidate() -> None:
    result = judge("demo-1.0-py3-none-any.whl")
    assert isinstance(result, Candidate)
    assert (result.name, result.version, result.tag_rank) == ("demo", Version("1.0"), 6)
    assert result.build == ()
    assert result.notes == ()


def test_best_of_a_compressed_tag_set_counts() -> None:
    result = judge("Demo-2.0-cp311-abi3.none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert isinstance(result, Candidate)
    assert result.tag_rank == 1


def test_precomputed_ranks_give_the_same_answer() -> None:
    ranks = rank_tags(TAGS)
    name = "demo-1.0-cp311-none-any.whl"
    by_list = judge(name)
    by_ranks = evaluate(file(name), project=PROJECT, tags=ranks, python_version=PY)
    assert by_list == by_ranks


def test_repeated_tags_keep_their_best_rank() -> None:
    ranks = rank_tags([Tag("py3", "none", "any"), Tag("cp311", "none", "any"), *TAGS])
    assert ranks[Tag("py3", "none", "any")] == 0


@pytest.mark.parametrize(
    "filename", ["demo-1.0.tar.gz", "demo-1.0.zip", "Demo-1.0.TAR.GZ", "demo-1.0.tar.bz2"]
)
def test_sdists_are_remembered(filename: str) -> None:
    result = rejected(judge(filename), RejectionKind.SDIST)
    assert "building from source is not supported" in result.reason
    if filename.endswith((".tar.gz", ".zip")):  # packaging reads only these spellings
        assert result.version == Version("1.0")


def test_sdist_of_another_project() -> None:
    rejected(judge("other-1.0.tar.gz"), RejectionKind.NAME_MISMATCH)


@pytest.mark.parametrize("filename", ["demo-1.0.exe", "demo-1.0-py2.7.egg", "demo-1.0.WHL", ""])
def test_other_files_are_not_wheels(filename: str) -> None:
    rejected(judge(filename), RejectionKind.NOT_A_WHEEL)


@pytest.mark.parametrize(
    "filename",
    [
        "demo-1.0.whl",
        "demo-1.0-py3-none.whl",
        "demo-not~a~version-py3-none-any.whl",
        "de mo-1.0-py3-none-any.whl",
        "demo-1.0-x-py3-none-any.whl",  # a build tag must start with a digit
    ],
)
def test_invalid_wheel_filenames(filename: str) -> None:
    rejected(judge(filename), RejectionKind.INVALID_FILENAME)


def test_tag_explosion_is_refused_quickly() -> None:
    parts = ".".join(f"x{i}" for i in range(200))
    filename = f"demo-1.0-{parts}-{parts}-{parts}.whl"  # 8 million tags if expanded
    result = rejected(judge(filename), RejectionKind.INVALID_FILENAME)
    assert str(MAX_WHEEL_TAGS) in result.reason
    with pytest.raises(ValueError, match="tags"):
        parse_wheel_name(filename)


def test_name_mismatch() -> None:
    result = rejected(judge("other-1.0-py3-none-any.whl"), RejectionKind.NAME_MISMATCH)
    assert "other" in result.reason


def test_names_compare_normalized() -> None:
    assert isinstance(judge("My_Project-1.0-py3-none-any.whl", project="my-project"), Candidate)


def test_incompatible_tags() -> None:
    result = rejected(judge("demo-1.0-cp312-cp312-win_amd64.whl"), RejectionKind.INCOMPATIBLE_TAGS)
    assert "cp312-cp312-win_amd64" in result.reason
    assert result.version == Version("1.0")


@pytest.mark.parametrize(
    ("requires_python", "ok"),
    [
        (">=3.8", True),
        (">=3.11.4", True),
        (">=3.12", False),
        ("<3.11.4", False),
        ("~=3.11", True),
        ("==3.11.*", True),
        ("", True),
        ("  ", True),
    ],
)
def test_requires_python(requires_python: str, ok: bool) -> None:
    result = judge("demo-1.0-py3-none-any.whl", requires_python=requires_python)
    if ok:
        assert isinstance(result, Candidate)
    else:
        assert "3.11.4" in rejected(result, RejectionKind.REQUIRES_PYTHON).reason


def test_invalid_requires_python_is_ignored_with_a_note() -> None:
    result = judge("demo-1.0-py3-none-any.whl", requires_python=">=3.x; nonsense")
    assert isinstance(result, Candidate)
    assert "invalid Requires-Python" in result.notes[0]


def test_yanked_files_need_allow_yanked() -> None:
    result = rejected(
        judge("demo-1.0-py3-none-any.whl", yanked="security issue"), RejectionKind.YANKED
    )
    assert "security issue" in result.reason
    allowed = judge("demo-1.0-py3-none-any.whl", yanked="", allow_yanked=True)
    assert isinstance(allowed, Candidate)
    assert allowed.yanked
    assert "yanked" in allowed.notes[0]


def test_checking_order_reports_the_most_basic_problem() -> None:
    # Yanked *and* for another Python: the Python mismatch is what the user needs to hear.
    result = judge("demo-1.0-py3-none-any.whl", yanked="x", requires_python=">=4")
    rejected(result, RejectionKind.REQUIRES_PYTHON)


def test_preference_order() -> None:
    names = [
        "demo-1.0-py3-none-any.whl",
        "demo-2.0-py3-none-any.whl",
        "demo-2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "demo-2.0-1-py3-none-any.whl",
        "demo-2.0-2-py3-none-any.whl",
        "demo-2.0rc1-cp311-cp311-manylinux_2_17_x86_64.whl",
    ]
    candidates = [judge(n) for n in names]
    assert all(isinstance(c, Candidate) for c in candidates)
    ordered = best_first(c for c in candidates if isinstance(c, Candidate))
    assert [c.file.filename for c in ordered] == [
        "demo-2.0-cp311-cp311-manylinux_2_17_x86_64.whl",  # newest, best tag
        "demo-2.0-2-py3-none-any.whl",  # same tag: the higher build wins
        "demo-2.0-1-py3-none-any.whl",
        "demo-2.0-py3-none-any.whl",
        "demo-2.0rc1-cp311-cp311-manylinux_2_17_x86_64.whl",
        "demo-1.0-py3-none-any.whl",
    ]


def test_yanked_candidates_come_last() -> None:
    yanked = judge("demo-2.0-cp311-cp311-manylinux_2_17_x86_64.whl", yanked="", allow_yanked=True)
    plain = judge("demo-2.0-py3-none-any.whl", allow_yanked=True)
    assert isinstance(yanked, Candidate)
    assert isinstance(plain, Candidate)
    assert best_first([yanked, plain]) == [plain, yanked]
    assert preference(plain) > preference(yanked)


@settings(max_examples=400, deadline=None, database=None)
@given(
    filename=st.text(max_size=80)
    | st.builds(
        "-".join,
        st.lists(st.text(alphabet="abc.1_-!+ ", max_size=12), min_size=1, max_size=7),
    ).map(lambda s: s + ".whl"),
    requires_python=st.none() | st.text(max_size=20),
    yanked=st.none() | st.text(max_size=5),
)
def test_any_file_gets_an_answer(
    filename: str, requires_python: str | None, yanked: str | None
) -> None:
    result = judge(filename, requires_python=requires_python, yanked=yanked)
    assert isinstance(result, Candidate | Rejection)
