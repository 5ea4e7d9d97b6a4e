"""stalwart.net.settings: where each network setting comes from, and what is refused.

Every test passes its own environment mapping: nothing here reads the machine's variables
(which export pip settings on purpose).
"""

from __future__ import annotations

import dataclasses

import pytest

from stalwart.errors import UsageError
from stalwart.net import DEFAULT_INDEX_URL, NetworkSettings

PRIVATE = "https://private.example/simple/"
MIRROR = "https://mirror.example/simple/"


def settings(environ: dict[str, str] | None = None, **explicit: object) -> NetworkSettings:
    return NetworkSettings.from_environ(environ or {}, **explicit)


# -- defaults -------------------------------------------------------------------------------------


def test_defaults_read_nothing() -> None:
    bare = NetworkSettings()
    assert bare.index_url == DEFAULT_INDEX_URL == "https://pypi.org/simple/"
    assert bare.index_strategy == "first-index"
    assert (bare.timeout, bare.retries, bare.offline, bare.no_index) == (30.0, 3, False, False)
    assert bare.netrc is None and bare.proxy_for("https://pypi.org/simple/") is None
    assert bare.index_urls == (DEFAULT_INDEX_URL,)


def test_from_an_empty_environment_only_adds_the_default_netrc() -> None:
    found = settings({"HOME": "/home/someone"})
    assert found == NetworkSettings(netrc="/home/someone/.netrc")


def test_settings_are_frozen_and_hashable() -> None:
    value = NetworkSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.offline = True  # type: ignore[misc]
    assert hash(value) == hash(NetworkSettings())


# -- precedence -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "explicit", "expected"),
    [
        ({"PIP_INDEX_URL": MIRROR}, None, MIRROR),
        ({"UV_INDEX_URL": MIRROR}, None, MIRROR),
        ({"UV_DEFAULT_INDEX": MIRROR, "UV_INDEX_URL": PRIVATE}, None, MIRROR),
        ({"UV_DEFAULT_INDEX": MIRROR, "PIP_INDEX_URL": PRIVATE}, None, MIRROR),
        ({"STALWART_INDEX_URL": PRIVATE, "UV_DEFAULT_INDEX": MIRROR}, None, PRIVATE),
        ({"STALWART_INDEX_URL": PRIVATE}, MIRROR, MIRROR),
        ({"UV_DEFAULT_INDEX": f"corp={MIRROR}"}, None, MIRROR),  # uv's name=url form
        ({"PIP_INDEX_URL": ""}, None, DEFAULT_INDEX_URL),  # empty counts as unset
    ],
)
def test_index_url_precedence(environ: dict[str, str], explicit: str | None, expected: str) -> None:
    assert settings(environ, index_url=explicit).index_url == expected


def test_extra_indexes_come_from_one_source_only() -> None:
    pip = settings({"PIP_EXTRA_INDEX_URL": f"{PRIVATE}  {MIRROR}"})
    assert pip.extra_index_urls == (PRIVATE, MIRROR)
    uv = settings(
        {
            "UV_INDEX": f"internal={PRIVATE}",
            "UV_EXTRA_INDEX_URL": MIRROR,
            "PIP_EXTRA_INDEX_URL": "https://ignored.example/",
        }
    )
    assert uv.extra_index_urls == (PRIVATE, MIRROR)
    ours = settings({"STALWART_EXTRA_INDEX_URL": MIRROR, "UV_INDEX": PRIVATE})
    assert ours.extra_index_urls == (MIRROR,)
    assert settings({"UV_INDEX": PRIVATE}, extra_index_urls=[]).extra_index_urls == ()


def test_first_index_searches_extra_indexes_before_the_default() -> None:
    # The order that defeats dependency confusion: a private name is found on the private
    # index before anyone's upload of the same name to PyPI is looked at.
    found = settings({"PIP_EXTRA_INDEX_URL": PRIVATE})
    assert found.index_urls == (PRIVATE, DEFAULT_INDEX_URL)
    assert found.project_urls("My_Package") == (
        f"{PRIVATE}my-package/",
        f"{DEFAULT_INDEX_URL}my-package/",
    )
    assert settings({"PIP_NO_INDEX": "yes"}).index_urls == ()


def test_find_links_lists_are_split_as_pip_and_uv_split_them() -> None:
    assert settings({"PIP_FIND_LINKS": "/a /b\n/c"}).find_links == ("/a", "/b", "/c")
    assert settings({"UV_FIND_LINKS": "/a,/b"}).find_links == ("/a", "/b")
    assert settings({"STALWART_FIND_LINKS": "/x", "PIP_FIND_LINKS": "/a"}).find_links == ("/x",)


def test_cert_precedence_and_origin() -> None:
    found = settings({"PIP_CERT": "/pip.pem", "SSL_CERT_FILE": "/ssl.pem"})
    assert found.cert == "/pip.pem"
    assert found.origin("cert") == "PIP_CERT"
    assert settings({"SSL_CERT_FILE": "/ssl.pem"}).cert == "/ssl.pem"
    assert settings({"STALWART_CERT": "/ours.pem", "PIP_CERT": "/pip.pem"}).cert == "/ours.pem"
    explicit = settings({"PIP_CERT": "/pip.pem"}, cert="/cli.pem")
    assert explicit.cert == "/cli.pem"
    assert explicit.origin("cert") == "--cert"


def test_numbers_and_booleans() -> None:
    found = settings(
        {
            "PIP_DEFAULT_TIMEOUT": "60",
            "UV_HTTP_RETRIES": "5",
            "UV_OFFLINE": "true",
            "STALWART_RETRY_BUDGET": "2.5",
            "UV_INDEX_STRATEGY": "unsafe-best-match",
        }
    )
    assert (found.timeout, found.retries, found.offline) == (60.0, 5, True)
    assert found.retry_budget == 2.5
    assert found.index_strategy == "unsafe-best-match"
    assert settings({"UV_HTTP_TIMEOUT": "5", "PIP_TIMEOUT": "9"}).timeout == 5.0


def test_keyring_switches() -> None:
    assert settings({}).keyring is True
    assert settings({"PIP_KEYRING_PROVIDER": "disabled"}).keyring is False
    assert settings({"UV_KEYRING_PROVIDER": "subprocess"}).keyring is True
    assert settings({"STALWART_KEYRING": "0", "PIP_KEYRING_PROVIDER": "auto"}).keyring is False


def test_netrc_from_the_environment() -> None:
    assert settings({"NETRC": "/etc/my-netrc"}).netrc == "/etc/my-netrc"


def test_explicit_none_means_not_given_and_unknown_keys_are_bugs() -> None:
    assert settings({"PIP_INDEX_URL": MIRROR}, index_url=None).index_url == MIRROR
    with pytest.raises(TypeError):
        settings({}, index_uri=MIRROR)


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PIP_NO_INDEX", "maybe"),
        ("UV_OFFLINE", "2"),
        ("UV_INDEX_STRATEGY", "unsafe-first-match"),
        ("STALWART_TIMEOUT", "soon"),
        ("PIP_DEFAULT_TIMEOUT", "-1"),
        ("UV_HTTP_TIMEOUT", "nan"),
        ("PIP_RETRIES", "3.5"),
        ("STALWART_RETRIES", "-2"),
        ("PIP_INDEX_URL", "ftp://files.example/simple/"),
        ("UV_INDEX", "not-a-url"),
        ("PIP_TRUSTED_HOST", "host:notaport"),
        ("PIP_KEYRING_PROVIDER", "magic"),
        ("STALWART_PROXY", "ftp://proxy.example:21"),
    ],
)
def test_an_unusable_variable_is_a_usage_error_naming_it(variable: str, value: str) -> None:
    with pytest.raises(UsageError) as caught:
        settings({variable: value})
    assert variable in str(caught.value)


def test_explicit_values_are_checked_too() -> None:
    with pytest.raises(UsageError, match="--retries"):
        NetworkSettings(retries=-1)
    with pytest.raises(UsageError, match="--index-strategy"):
        NetworkSettings(index_strategy="pip")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--extra-index-url"):
        NetworkSettings(extra_index_urls=("gopher://x/",))


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(UsageError) as caught:
        settings({"PIP_INDEX_URL": "ftp://alice:hunter2@files.example/simple/"})
    assert "hunter2" not in str(caught.value)
    assert "alice" not in str(caught.value)


# -- proxies and trusted hosts --------------------------------------------------------------------


def test_environment_proxies_lower_case_wins() -> None:
    found = settings(
        {
            "http_proxy": "http://lower:3128",
            "HTTP_PROXY": "http://upper:3128",
            "HTTPS_PROXY": "http://secure:3128",
        }
    )
    assert found.proxy_for("http://index.example/") == "http://lower:3128"
    assert found.proxy_for("https://index.example/") == "http://secure:3128"
    assert found.proxy_for("file:///tmp/x") is None


def test_all_proxy_is_the_fallback_and_cgi_ignores_http_proxy() -> None:
    found = settings({"ALL_PROXY": "socks5://p:1080"})
    assert found.proxy_for("https://index.example/") == "socks5://p:1080"
    # httpoxy: under CGI, HTTP_PROXY may have come from a request's "Proxy:" header.
    cgi = settings({"HTTP_PROXY": "http://evil:80", "REQUEST_METHOD": "GET"})
    assert cgi.proxy_for("http://index.example/") is None


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("index.example", "https://index.example/", True),
        ("index.example", "https://files.index.example/", True),
        ("index.example", "https://notindex.example/", False),
        (".index.example", "https://index.example/", True),
        ("*", "https://anything.example/", True),
        ("index.example:8443", "https://index.example:8443/", True),
        ("index.example:8443", "https://index.example/", False),
        ("10.0.0.0/8", "http://10.1.2.3/simple/", True),
        ("10.0.0.0/8", "http://11.1.2.3/simple/", False),
        ("localhost, 127.0.0.1", "http://127.0.0.1:9/", True),
    ],
)
def test_no_proxy_forms(no_proxy: str, url: str, bypassed: bool) -> None:
    found = settings(
        {"HTTPS_PROXY": "http://p:3128", "HTTP_PROXY": "http://p:3128", "NO_PROXY": no_proxy}
    )
    assert (found.proxy_for(url) is None) is bypassed


def test_an_explicit_proxy_covers_every_scheme_but_not_no_proxy_hosts() -> None:
    found = settings({"NO_PROXY": "internal.example"}, proxy="http://cli-proxy:8080")
    assert found.proxy_for("https://pypi.org/simple/") == "http://cli-proxy:8080"
    assert found.proxy_for("http://pypi.org/simple/") == "http://cli-proxy:8080"
    assert found.proxy_for("https://internal.example/simple/") is None
    assert settings({"PIP_PROXY": "proxy.example:3128"}).proxy == "http://proxy.example:3128"


def test_trusted_hosts_match_host_and_optional_port() -> None:
    found = settings({"PIP_TRUSTED_HOST": "Mirror.Example internal.example:8080"})
    assert found.trusted_hosts == ("mirror.example", "internal.example:8080")
    assert found.is_trusted("http://mirror.example/simple/")
    assert found.is_trusted("https://mirror.example:8443/simple/")
    assert found.is_trusted("http://internal.example:8080/simple/")
    assert not found.is_trusted("http://internal.example/simple/")
    assert not found.is_trusted("http://evil.example/simple/")
    assert settings({"UV_INSECURE_HOST": "a.example"}).trusted_hosts == ("a.example",)
