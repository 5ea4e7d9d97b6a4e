"""stalwart.index.simple: project pages as PEP 691 JSON and PEP 503 HTML, including hostile ones."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stalwart.errors import IndexPageError, RequestError
from stalwart.index.simple import (
    ACCEPT,
    HTML_V1,
    JSON_V1,
    IndexFile,
    ProjectPage,
    parse_html_page,
    parse_json_page,
    parse_project_page,
    redact_url,
)

PAGE = "https://index.example/simple/demo/"
SECRET_PAGE = "https://alice:s3cr3t@index.example/simple/demo/"
SHA = "a" * 64
SHA2 = "b" * 64


def json_page(files: list[Any], **extra: Any) -> bytes:
    data = {"meta": {"api-version": "1.0"}, "name": "demo", "files": files, **extra}
    return json.dumps(data).encode()


def html_page(body: str, head: str = "") -> bytes:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>".encode()


def one(page: ProjectPage) -> IndexFile:
    assert len(page.files) == 1, page
    return page.files[0]


# -- redact_url -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://index.example/simple/", "https://index.example/simple/"),
        ("https://alice:s3cr3t@host/simple/", "https://***@host/simple/"),
        ("https://token@host/", "https://***@host/"),
        ("https://u:p@ss@host/x", "https://***@host/x"),  # unescaped "@" in a password
        ("https://u:pa/ss@host/x", "https://***@host/x"),  # unescaped "/" in a password
        ("see https://a:b@h/x and https://c:d@k/y", "see https://***@h/x and https://***@k/y"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@given(st.text())
def test_redact_url_never_raises(text: str) -> None:
    assert isinstance(redact_url(text), str)


def test_accept_prefers_json_then_html() -> None:
    kinds = [part.split(";")[0].strip() for part in ACCEPT.split(",")]
    assert kinds == [JSON_V1, HTML_V1, "text/html"]


# -- JSON (PEP 691) -------------------------------------------------------------------------------


def test_json_page_fields() -> None:
    page = parse_json_page(
        json_page(
            [
                {
                    "filename": "demo-1.0-py3-none-any.whl",
                    "url": "../../files/demo-1.0-py3-none-any.whl",
                    "hashes": {"SHA256": SHA.upper()},
                    "requires-python": ">=3.9",
                    "core-metadata": {"sha256": SHA2},
                    "size": 1234,
                    "upload-time": "2024-05-01T12:30:00.123456Z",
                },
                {
                    "filename": "demo-0.9.tar.gz",
                    "url": "https://files.example/demo-0.9.tar.gz",
                    "hashes": {},
                    "yanked": "broken build",
                    "dist-info-metadata": True,
                },
            ],
            versions=["0.9", "1.0"],
        ),
        PAGE,
    )
    assert page.name == "demo"
    assert page.api_version == (1, 0)
    assert page.versions == ("0.9", "1.0")
    assert page.notes == ()
    wheel, sdist = page.files
    assert wheel.url == "https://index.example/files/demo-1.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": SHA}
    assert wheel.requires_python == ">=3.9"
    assert wheel.core_metadata == {"sha256": SHA2}
    assert wheel.size == 1234
    assert wheel.upload_time == datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
    assert not wheel.is_yanked
    assert sdist.yanked == "broken build"
    assert sdist.core_metadata is True  # legacy key, PEP 714 fallback
    assert sdist.hashes == {}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"yanked": True}, ""),
        ({"yanked": False}, None),
        ({"yanked": "reason"}, "reason"),
        ({}, None),
    ],
)
def test_json_yanked(fields: dict[str, Any], expected: str | None) -> None:
    entry = {"filename": "demo-1.0-py3-none-any.whl", "url": "x.whl", "hashes": {}, **fields}
    assert one(parse_json_page(json_page([entry]), PAGE)).yanked == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"core-metadata": True}, True),
        ({"core-metadata": False}, False),
        ({"core-metadata": {"sha256": SHA}}, {"sha256": SHA}),
        ({"dist-info-metadata": {"sha256": SHA}}, {"sha256": SHA}),
        # PEP 714: the new key wins over the old one.
        ({"core-metadata": False, "dist-info-metadata": True}, False),
        ({}, None),
    ],
)
def test_json_core_metadata(fields: dict[str, Any], expected: object) -> None:
    entry = {"filename": "demo-1.0-py3-none-any.whl", "url": "x.whl", "hashes": {}, **fields}
    assert one(parse_json_page(json_page([entry]), PAGE)).core_metadata == expected


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.4", "1.99"])
def test_json_api_minor_versions_are_accepted(version: str) -> None:
    body = json.dumps({"meta": {"api-version": version}, "name": "demo", "files": []}).encode()
    assert parse_json_page(body, PAGE).api_version == (1, int(version.split(".")[1]))


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"api-version": "2.0"}, "version 2.0"),
        ({"api-version": "0.9"}, "version 0.9"),
        ({"api-version": "one"}, "MAJOR.MINOR"),
        ({"api-version": "9" * 5000 + ".0"}, "MAJOR.MINOR"),
        ({}, "api-version"),
        (None, "api-version"),
    ],
)
def test_json_api_version_refused(meta: object, message: str) -> None:
    body = json.dumps({"meta": meta, "name": "demo", "files": []}).encode()
    with pytest.raises(IndexPageError, match=message):
        parse_json_page(body, PAGE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not a valid JSON page"),
        (b"<html>", "not a valid JSON page"),
        (b"\xff\xfe", "not a valid JSON page"),
        (b"[" * 100_000, "not a valid JSON page"),
        (b"[]", "must be an object"),
        (b'{"meta": {"api-version": "1.0"}}', "'files' list"),
        (b'{"meta": {"api-version": "1.0"}, "files": {}}', "'files' list"),
    ],
)
def test_json_unreadable_pages(body: bytes, message: str) -> None:
    with pytest.raises(IndexPageError, match=message) as info:
        parse_json_page(body, SECRET_PAGE)
    assert info.value.subject == "https://***@index.example/simple/demo/"
    assert "s3cr3t" not in str(info.value)
    assert isinstance(info.value, RequestError)


def test_credentials_stay_out_of_reprs() -> None:
    page = parse_json_page(
        json_page([{"filename": "d-1.0-py3-none-any.whl", "url": "d.whl"}]), SECRET_PAGE
    )
    assert page.files[0].url.startswith("https://alice:s3cr3t@")  # the download needs them
    assert "s3cr3t" not in repr(page)


def test_json_bad_entries_are_skipped_with_notes() -> None:
    good = {"filename": "demo-1.0-py3-none-any.whl", "url": "demo-1.0-py3-none-any.whl"}
    page = parse_json_page(
        json_page(
            [
                "not an object",
                {"url": "x.whl"},
                {"filename": "demo-2.0-py3-none-any.whl"},
                {**good, "hashes": ["sha256", SHA]},
                {**good, "requires-python": 3},
                {**good, "yanked": 1},
                {**good, "core-metadata": "yes"},
                {**good, "filename": "../../etc/demo-1.0-py3-none-any.whl"},
                {**good, "filename": "demo\x00.whl"},
                {**good, "url": "javascript:alert(1)"},
                {**good, "url": "file:///etc/passwd"},
                {**good, "url": "https://[::1/x.whl"},
                {**good, "url": "https://bob:hunter2@[::1/x.whl"},
                good,
            ],
            versions="not a list",
        ),
        PAGE,
    )
    assert [f.filename for f in page.files] == ["demo-1.0-py3-none-any.whl"]
    assert len(page.notes) == 14
    assert page.versions is None
    assert not any("hunter2" in note for note in page.notes)
    assert any("local file" in note for note in page.notes)


def test_json_sizes_and_times_that_cannot_be_read_are_dropped() -> None:
    entry = {
        "filename": "demo-1.0-py3-none-any.whl",
        "url": "x.whl",
        "size": True,
        "upload-time": "yesterday",
    }
    file = one(parse_json_page(json_page([entry]), PAGE))
    assert file.size is None
    assert file.upload_time is None
    negative = one(parse_json_page(json_page([{**entry, "size": -1}]), PAGE))
    assert negative.size is None


def test_json_name_falls_back_to_the_url() -> None:
    body = json.dumps({"meta": {"api-version": "1.0"}, "files": []}).encode()
    assert parse_json_page(body, "https://index.example/simple/Some_Project/").name == (
        "some-project"
    )


def test_file_page_may_link_local_files() -> None:
    page = parse_json_page(
        json_page([{"filename": "demo-1.0-py3-none-any.whl", "url": "demo-1.0-py3-none-any.whl"}]),
        "file:///srv/index/demo/",
    )
    assert one(page).url == "file:///srv/index/demo/demo-1.0-py3-none-any.whl"


# -- HTML (PEP 503) -------------------------------------------------------------------------------


def test_html_relative_links_fragments_and_attributes() -> None:
    body = html_page(
        f'<a href="../../files/demo-1.0-py3-none-any.whl#sha256={SHA}" '
        'data-requires-python="&gt;=3.8,&lt;4">demo-1.0-py3-none-any.whl</a><br/>\n'
        '<a href="/abs/demo-0.9.tar.gz#egg=demo" data-yanked="bad &amp; broken">x</a>\n'
        '<a href="https://other.example/demo-0.8.zip" data-yanked>demo-0.8.zip</a>\n'
        '<a name="anchor-without-href">nothing</a>'
    )
    page = parse_html_page(body, PAGE)
    wheel, sdist, old = page.files
    assert wheel.filename == "demo-1.0-py3-none-any.whl"
    assert wheel.url == "https://index.example/files/demo-1.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": SHA}
    assert wheel.requires_python == ">=3.8,<4"  # html-unescaped
    assert wheel.yanked is None
    assert sdist.url == "https://index.example/abs/demo-0.9.tar.gz"
    assert sdist.hashes == {}  # "#egg=" is no hash
    assert sdist.yanked == "bad & broken"
    assert old.yanked == ""  # present without a reason
    assert page.name == "demo"
    assert page.versions is None


def test_html_base_href() -> None:
    body = html_page(
        '<a href="demo-1.0-py3-none-any.whl">demo-1.0-py3-none-any.whl</a>',
        head='<base href="https://cdn.example/pkgs/"><base href="https://ignored.example/">',
    )
    assert one(parse_html_page(body, PAGE)).url == (
        "https://cdn.example/pkgs/demo-1.0-py3-none-any.whl"
    )


def test_html_relative_base_href_is_resolved_against_the_page() -> None:
    body = html_page('<a href="d-1.0-py3-none-any.whl">x</a>', head='<base href="../mirror/">')
    assert one(parse_html_page(body, PAGE)).url == (
        "https://index.example/simple/mirror/d-1.0-py3-none-any.whl"
    )


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ('data-core-metadata="true"', True),
        (f'data-core-metadata="sha256={SHA}"', {"sha256": SHA}),
        (f'data-dist-info-metadata="sha256={SHA}"', {"sha256": SHA}),
        ('data-dist-info-metadata="true"', True),
        # PEP 714: data-core-metadata is read first.
        (
            f'data-core-metadata="sha256={SHA2}" data-dist-info-metadata="sha256={SHA}"',
            {"sha256": SHA2},
        ),
        ("data-core-metadata", True),
        ('data-core-metadata="false"', False),
        ('data-core-metadata="whatever"', True),
        ("", None),
    ],
)
def test_html_core_metadata(attributes: str, expected: object) -> None:
    body = html_page(f'<a href="demo-1.0-py3-none-any.whl" {attributes}>x</a>')
    assert one(parse_html_page(body, PAGE)).core_metadata == expected


def test_html_file_name_comes_from_the_url() -> None:
    body = html_page('<a href="demo%2B1-1.0-py3-none-any.whl">shown text</a>')
    assert one(parse_html_page(body, PAGE)).filename == "demo+1-1.0-py3-none-any.whl"


def test_html_unusable_links_are_skipped_with_notes() -> None:
    body = html_page(
        '<a href="">empty</a>'
        '<a href="../x/">directory</a>'
        '<a href="..%2F..%2Fevil-1.0-py3-none-any.whl">encoded slash</a>'
        '<a href="javascript:alert(1)">js</a>'
        '<a href="data:text/plain,x.whl">data</a>'
        '<a href="file:///etc/passwd">local</a>'
        '<a href="https://[::1/x.whl">bad host</a>'
        '<a href="good-1.0-py3-none-any.whl">good</a>'
    )
    page = parse_html_page(body, PAGE)
    assert [f.filename for f in page.files] == ["good-1.0-py3-none-any.whl"]
    assert len(page.notes) == 7


@pytest.mark.parametrize(("version", "ok"), [("1.0", True), ("1.3", True), ("2.0", False)])
def test_html_repository_version(version: str, ok: bool) -> None:
    body = html_page("", head=f'<meta name="pypi:repository-version" content="{version}">')
    if ok:
        assert parse_html_page(body, PAGE).api_version == (1, int(version[-1]))
    else:
        with pytest.raises(IndexPageError, match=r"version 2\.0"):
            parse_html_page(body, PAGE)


def test_html_charset_and_replacement() -> None:
    body = html_page('<a href="d\xe9mo-1.0-py3-none-any.whl">x</a>').replace(
        b"d\xc3\xa9mo", "démo".encode("latin-1")
    )
    page = parse_project_page(body, "text/html; charset=ISO-8859-1", PAGE)
    assert one(page).filename == "démo-1.0-py3-none-any.whl"
    # Undecodable bytes spoil only what they are in.
    assert one(parse_html_page(body, PAGE)).filename == "d\ufffdmo-1.0-py3-none-any.whl"
    with pytest.raises(IndexPageError, match="unknown charset"):
        parse_project_page(body, "text/html; charset=no-such-codec", PAGE)


@pytest.mark.parametrize("charset", ["idna", "base64", "utf-7"])
def test_odd_charsets(charset: str) -> None:
    try:
        parse_project_page(b"\xff<a href='x.whl'>\x00", f"text/html; charset={charset}", PAGE)
    except IndexPageError:
        pass


@pytest.mark.parametrize("url", ["simple/demo/", "https://[::1/simple/demo/", ""])
def test_page_urls_must_be_absolute(url: str) -> None:
    with pytest.raises(IndexPageError, match="page URL"):
        parse_json_page(json_page([]), url)
    with pytest.raises(IndexPageError, match="page URL"):
        parse_html_page(html_page(""), url)


@pytest.mark.parametrize("body", ["<![foo[ bar ]]>", "<![ x", "<a href='x.whl'><![z["])
def test_html_parser_failures_become_index_errors(body: str) -> None:
    # html.parser is not total: on Python 3.10-3.12 _markupbase raises AssertionError on some
    # marked sections. Whatever this Python's parser does, only IndexPageError may come out.
    from html.parser import HTMLParser

    try:
        probe = HTMLParser()
        probe.feed(body)
        probe.close()
    except AssertionError:
        with pytest.raises(IndexPageError, match="not a readable HTML page") as info:
            parse_html_page(body.encode(), SECRET_PAGE)
        assert "s3cr3t" not in str(info.value)
    else:
        parse_html_page(body.encode(), SECRET_PAGE)


def test_ten_thousand_links_stay_fast() -> None:
    links = "\n".join(
        f'<a href="../../files/{i:05d}/demo-{i}.0-py3-none-any.whl#sha256={SHA}" '
        f'data-requires-python="&gt;=3.8">demo-{i}.0-py3-none-any.whl</a><br/>'
        for i in range(10_000)
    )
    body = html_page(links)
    started = time.perf_counter()
    page = parse_html_page(body, PAGE)
    elapsed = time.perf_counter() - started
    assert len(page.files) == 10_000
    assert page.files[-1].url.endswith("/files/09999/demo-9999.0-py3-none-any.whl")
    # About 0.4 s on a shared core; the bound catches quadratic behaviour, not jitter.
    assert elapsed < 3.0, elapsed


# -- dispatch -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [JSON_V1, f"{JSON_V1}; charset=utf-8", "Application/Vnd.Pypi.Simple.V1+JSON"],
)
def test_dispatch_json(content_type: str) -> None:
    body = json_page([{"filename": "demo-1.0-py3-none-any.whl", "url": "x.whl"}])
    assert parse_project_page(body, content_type, PAGE).api_version == (1, 0)


@pytest.mark.parametrize("content_type", [HTML_V1, "text/html", "text/html; charset=utf-8"])
def test_dispatch_html(content_type: str) -> None:
    body = html_page('<a href="demo-1.0-py3-none-any.whl">x</a>')
    assert len(parse_project_page(body, content_type, PAGE).files) == 1


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/vnd.pypi.simple.v2+json", "API format"),
        ("application/json", "not a simple-API page"),
        ("text/plain", "not a simple-API page"),
        ("", "Content-Type none"),
    ],
)
def test_dispatch_refuses_other_types(content_type: str, message: str) -> None:
    with pytest.raises(IndexPageError, match=message) as info:
        parse_project_page(b"{}", content_type, SECRET_PAGE)
    assert "s3cr3t" not in str(info.value)


# -- hostile input --------------------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(
    [JSON_V1, HTML_V1, "text/html", "text/html; charset=utf-16", "text/plain", ""]
)
HTML_ALPHABET = st.sampled_from(
    [*"<>!/[]-=\"' &#;:?x", "<a href=", "<base href=", "data-yanked", "<!--", "<![", "]]>"]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["filename", "url", "hashes", "yanked", "core-metadata", "size", "upload-time", "x"]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(body=st.binary(max_size=2000), content_type=CONTENT_TYPES)
def test_random_bytes_raise_only_index_errors(body: bytes, content_type: str) -> None:
    try:
        parse_project_page(body, content_type, PAGE)
    except IndexPageError:
        pass


@settings(max_examples=300, deadline=None, database=None)
@given(parts=st.lists(HTML_ALPHABET | st.text(max_size=5), max_size=60))
def test_random_html_raises_only_index_errors(parts: list[str]) -> None:
    try:
        page = parse_html_page("".join(parts).encode(), SECRET_PAGE)
    except IndexPageError as exc:
        assert "s3cr3t" not in str(exc)
    else:
        assert all("s3cr3t" not in note for note in page.notes)


@settings(max_examples=300, deadline=None, database=None)
@given(files=st.lists(json_values, max_size=5), versions=json_values)
def test_random_json_structures_raise_only_index_errors(files: list[Any], versions: Any) -> None:
    body = json_page(files, versions=versions)
    try:
        parse_json_page(body, PAGE)
    except IndexPageError:
        pass
