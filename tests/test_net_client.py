"""stalwart.net.client against real loopback servers: the test index, a forward proxy, a TLS
server with a trustme CA, and pypiserver. No internet; no test sleeps for real (fake clock).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trustme

from indexserver import Fault, IndexServer
from stalwart.cache import CacheLayout
from stalwart.errors import (
    HashMismatchError,
    HashRequiredError,
    NetworkError,
    OfflineError,
    RequestError,
    UsageError,
)
from stalwart.index.simple import ACCEPT, ProjectPage, parse_project_page
from stalwart.net import Client, NetworkSettings, find_links
from tinywheels import build_wheel, sha256_of

if TYPE_CHECKING:
    from conftest import FakeTime

StartIndex = Callable[..., IndexServer]
MakeClient = Callable[..., Client]


@pytest.fixture
def wheels(tmp_path: Path) -> list[Path]:
    out = tmp_path / "dist"
    out.mkdir()
    return [build_wheel(out, "demo", "1.0"), build_wheel(out, "demo", "2.0", requires=["dep"])]


@pytest.fixture
def cache(tmp_path: Path) -> CacheLayout:
    return CacheLayout(str(tmp_path / "cache"))


@pytest.fixture
def make_client(cache: CacheLayout, fake_time: FakeTime) -> Iterator[MakeClient]:
    """Clients on the fake clock (retries never sleep), keyring off, closed after the test."""
    made: list[Client] = []

    def make(settings: NetworkSettings | None = None, **options: Any) -> Client:
        options.setdefault("clock", fake_time.clock)
        options.setdefault("sleep", fake_time.sleep)
        options.setdefault("seed", 7)
        client = Client(settings or NetworkSettings(keyring=False), cache, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def page_of(client: Client, url: str) -> ProjectPage:
    page = client.get_page(url)
    return parse_project_page(page.body, page.content_type, page.url)


def cache_files(cache: CacheLayout) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(cache.root):
        found += [os.path.relpath(os.path.join(root, f), cache.root) for f in files]
    return sorted(found)


def temporaries(cache: CacheLayout) -> list[str]:
    return [f for f in cache_files(cache) if f.endswith(".stalwart-tmp")]


# -- pages ---------------------------------------------------------------------------------------


def test_project_page_is_negotiated_as_json_and_parses(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient
) -> None:
    server = index_server(wheels)
    client = make_client()
    page = client.get_page(server.project_url("demo"))
    assert page.content_type == "application/vnd.pypi.simple.v1+json"
    assert page.url == server.project_url("demo") and not page.from_cache
    assert server.requests[-1].headers["accept"] == ACCEPT
    parsed = parse_project_page(page.body, page.content_type, page.url)
    assert [f.filename for f in parsed.files] == [w.name for w in wheels]
    assert parsed.files[0].hashes["sha256"] == sha256_of(wheels[0])
    assert parsed.files[0].url == server.file_url(wheels[0].name)


def test_html_only_index_and_redirect_to_the_normalized_name(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient
) -> None:
    server = index_server(wheels, json=False)
    page = make_client().get_page(f"{server.index_url}Demo/")
    assert page.url == server.project_url("demo")  # where the 301 led
    assert page.content_type.startswith("application/vnd.pypi.simple.v1+html")
    parsed = parse_project_page(page.body, page.content_type, page.url)
    assert parsed.files[1].core_metadata is not None
    assert server.paths() == ["/simple/Demo/", "/simple/demo/"]


def test_etag_revalidation_returns_the_cached_body(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient
) -> None:
    server = index_server(wheels)
    client = make_client()
    first = client.get_page(server.project_url("demo"))
    second = client.get_page(server.project_url("demo"))
    assert second.from_cache and second.body == first.body
    assert second.content_type == first.content_type
    revalidation = server.requests[-1].headers
    assert revalidation["if-none-match"].startswith('"')
    assert "if-modified-since" in revalidation
    # ...and a new client (another process) revalidates from the files on disk just the same.
    third = make_client().get_page(server.project_url("demo"))
    assert third.from_cache and len(server.requests) == 3


def test_fresh_max_age_is_a_hit_without_a_request(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient
) -> None:
    server = index_server(wheels)
    server.cache_control = "max-age=600, public"
    wall = [1_000_000.0]
    client = make_client(now=lambda: wall[0])
    client.get_page(server.project_url("demo"))
    wall[0] += 599
    assert client.get_page(server.project_url("demo")).from_cache
    assert len(server.requests) == 1
    wall[0] += 2  # stale now: revalidated (304), then fresh again
    assert client.get_page(server.project_url("demo")).from_cache
    assert len(server.requests) == 2 and "if-none-match" in server.requests[-1].headers


def test_no_store_is_never_written(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    server.cache_control = "no-store"
    client = make_client()
    client.get_page(server.project_url("demo"))
    assert not client.get_page(server.project_url("demo")).from_cache
    assert "if-none-match" not in server.requests[-1].headers
    assert not os.path.exists(cache.http())


def test_a_damaged_cache_entry_is_ignored(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    client = make_client()
    good = client.get_page(server.project_url("demo"))
    for name in os.listdir(cache.http()):
        if name.endswith(".body"):
            Path(cache.http(), name).write_bytes(b"half an entr")
    again = client.get_page(server.project_url("demo"))
    assert not again.from_cache and again.body == good.body
    assert "if-none-match" not in server.requests[-1].headers


def test_offline_uses_only_the_cache(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient
) -> None:
    server = index_server(wheels)
    online = make_client()
    page = page_of(online, server.project_url("demo"))
    wheel = page.files[0]
    online.download(wheel.url, filename=wheel.filename, hashes=wheel.hashes)
    before = len(server.requests)

    offline = make_client(NetworkSettings(offline=True, keyring=False))
    assert offline.get_page(server.project_url("demo")).from_cache
    hit = offline.download(wheel.url, filename=wheel.filename, hashes=wheel.hashes)
    assert hit.from_cache
    assert len(server.requests) == before  # not one request
    missing = f"{server.index_url}other/"
    with pytest.raises(OfflineError) as caught:
        offline.get_page(missing)
    assert missing in str(caught.value)
    with pytest.raises(OfflineError):
        other = page.files[1]
        offline.download(other.url, filename=other.filename, hashes=other.hashes)


# -- small files ---------------------------------------------------------------------------------


def test_metadata_is_verified_cached_and_read_without_the_wheel(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    client = make_client()
    newest = page_of(client, server.project_url("demo")).files[1]
    assert newest.core_metadata is not None and not isinstance(newest.core_metadata, bool)
    expected = dict(newest.core_metadata)
    data = client.fetch_bytes(newest.url + ".metadata", expected=expected)
    assert b"Requires-Dist: dep" in data
    assert os.path.exists(cache.metadata(expected["sha256"]))
    assert client.fetch_bytes(newest.url + ".metadata", expected=expected) == data
    assert server.paths("/files/") == [f"/files/{newest.filename}.metadata"]  # no wheel fetched

    with pytest.raises(HashMismatchError):
        client.fetch_bytes(
            server.file_url(wheels[0].name) + ".metadata", expected={"sha256": "0" * 64}
        )
    assert not os.path.exists(cache.metadata("0" * 64))
    with pytest.raises(NetworkError, match="larger than 10 bytes"):
        client.fetch_bytes(server.file_url(wheels[0].name) + ".metadata", limit=10)


# -- downloads -----------------------------------------------------------------------------------


def test_download_is_verified_and_content_addressed(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    client = make_client()
    wheel = page_of(client, server.project_url("demo")).files[0]
    seen: list[int] = []
    got = client.download(
        wheel.url,
        filename=wheel.filename,
        hashes=wheel.hashes,
        size=wheels[0].stat().st_size,
        progress=seen.append,
    )
    assert got.path == cache.wheel(sha256_of(wheels[0]), wheel.filename)
    assert Path(got.path).read_bytes() == wheels[0].read_bytes()
    assert seen[-1] == wheels[0].stat().st_size and not got.from_cache
    assert server.requests[-1].headers["accept-encoding"] == "identity"
    again = client.download(wheel.url, filename=wheel.filename, hashes=wheel.hashes)
    assert again.from_cache and again.path == got.path
    assert server.paths("/files/") == [f"/files/{wheel.filename}"]


def test_hash_mismatch_is_refused_and_nothing_is_kept(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    client = make_client()
    wrong = "0" * 64
    with pytest.raises(HashMismatchError) as caught:
        client.download(
            server.file_url(wheels[0].name), filename=wheels[0].name, hashes={"SHA256": wrong}
        )
    error = caught.value
    assert (error.file, error.algorithm, error.expected) == (wheels[0].name, "sha256", wrong)
    assert error.actual == sha256_of(wheels[0])
    assert wheels[0].name in str(error) and wrong in str(error) and error.actual in str(error)
    assert isinstance(error, RequestError)
    assert cache_files(cache) == []  # no temporary, no entry


def test_every_expected_hash_is_checked(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient
) -> None:
    server = index_server(wheels)
    data = wheels[0].read_bytes()
    hashes = {"sha256": hashlib.sha256(data).hexdigest(), "sha512": "f" * 128}
    with pytest.raises(HashMismatchError) as caught:
        make_client().download(
            server.file_url(wheels[0].name), filename=wheels[0].name, hashes=hashes
        )
    assert caught.value.algorithm == "sha512"


def test_without_an_expected_hash_the_file_is_stored_under_its_own(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    client = make_client()
    url = server.file_url(wheels[0].name)
    got = client.download(url, filename=wheels[0].name, hashes={})
    assert got.sha256 == sha256_of(wheels[0])
    assert got.path == cache.wheel(got.sha256, wheels[0].name)
    with pytest.raises(HashRequiredError, match="require-hashes"):
        client.download(url, filename=wheels[0].name, hashes={}, require_hash=True)
    with pytest.raises(HashRequiredError):  # md5 is no proof
        client.download(url, filename=wheels[0].name, hashes={"md5": "0" * 32}, require_hash=True)


def test_limits_hold_after_decompression_and_without_content_length(
    make_client: MakeClient,
) -> None:
    import gzip

    bomb = gzip.compress(b"\0" * (1 << 20))  # 1 MiB of zeros in about 1 kB

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/bomb":
            return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=bomb)
        return httpx.Response(200, content=iter([b"x" * 4096] * 64))  # chunked, no length

    client = make_client(transport=httpx.MockTransport(answer))
    with pytest.raises(NetworkError, match="larger than 65536 bytes"):
        client.fetch_bytes("https://index.example/bomb", limit=1 << 16)
    with pytest.raises(NetworkError, match="larger than 65536 bytes"):
        client.fetch_bytes("https://index.example/stream", limit=1 << 16)
    assert len(client.fetch_bytes("https://index.example/stream")) == 1 << 18


def test_a_body_larger_than_its_size_is_refused(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    with pytest.raises(NetworkError, match="larger") as caught:
        make_client().download(
            server.file_url(wheels[0].name), filename=wheels[0].name, hashes={}, size=100
        )
    assert caught.value.attempts == 1
    assert temporaries(cache) == [] and not os.listdir(cache.wheels())


def test_local_files_get_the_same_verification_and_placement(
    wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    client = make_client()
    sha = sha256_of(wheels[0])
    by_url = client.download(wheels[0].as_uri(), filename=wheels[0].name, hashes={"sha256": sha})
    assert by_url.path == cache.wheel(sha, wheels[0].name) and not by_url.from_cache
    other = client.download(str(wheels[1]), filename=wheels[1].name, hashes={})
    assert other.sha256 == sha256_of(wheels[1])
    with pytest.raises(HashMismatchError):
        client.download(str(wheels[1]), filename=wheels[1].name, hashes={"sha256": sha})
    with pytest.raises(NetworkError, match="cannot read"):
        client.download(str(wheels[0]) + ".missing", filename="x.whl", hashes={})
    assert temporaries(cache) == []


def test_a_damaged_cache_entry_is_replaced(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    name, sha, size = wheels[0].name, sha256_of(wheels[0]), wheels[0].stat().st_size
    damaged = Path(cache.wheel(sha, name))
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"truncated")
    got = make_client().download(
        server.file_url(name), filename=name, hashes={"sha256": sha}, size=size
    )
    assert not got.from_cache and damaged.read_bytes() == wheels[0].read_bytes()
    assert temporaries(cache) == []


def test_concurrent_downloads_of_one_file_leave_one_entry(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    client = make_client()
    url, name, sha = server.file_url(wheels[0].name), wheels[0].name, sha256_of(wheels[0])

    def run(hashes: dict[str, str]) -> list[str]:
        results: list[str] = []
        barrier = threading.Barrier(8)

        def worker() -> None:
            barrier.wait()
            results.append(client.download(url, filename=name, hashes=hashes).path)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    known = run({"sha256": sha})
    assert known == [cache.wheel(sha, name)] * 8
    assert server.paths("/files/") == [f"/files/{name}"]  # the others waited for the first
    Path(known[0]).unlink()
    unknown = run({})  # nothing to wait on: each thread downloads, one entry results
    assert unknown == [cache.wheel(sha, name)] * 8
    assert cache_files(cache) == [os.path.relpath(cache.wheel(sha, name), cache.root)]


# -- retries -------------------------------------------------------------------------------------


def test_503_then_success_without_sleeping(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, fake_time: FakeTime
) -> None:
    server = index_server(wheels)
    path = "/simple/demo/"
    server.inject(path, Fault(503), Fault(502, headers={"Retry-After": "2"}))
    started = time.monotonic()
    page = make_client().get_page(server.project_url("demo"))
    assert page.body and server.paths() == [path] * 3
    assert len(fake_time.sleeps) == 2 and fake_time.sleeps[1] == 2.0  # Retry-After honoured
    assert 0.25 <= fake_time.sleeps[0] <= 0.75  # first back-off: 0.5 s with jitter
    assert time.monotonic() - started < 2  # nothing really slept


def test_giving_up_after_the_retries(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, fake_time: FakeTime
) -> None:
    server = index_server(wheels)
    server.inject("/simple/demo/", *[Fault(503)] * 10)
    with pytest.raises(NetworkError) as caught:
        make_client().get_page(server.project_url("demo"))
    error = caught.value
    assert (error.status, error.attempts) == (503, 4)
    assert "503" in str(error) and "after 4 attempts" in str(error)
    assert len(fake_time.sleeps) == 3 and fake_time.sleeps == sorted(fake_time.sleeps)


def test_client_errors_are_not_retried(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, fake_time: FakeTime
) -> None:
    server = index_server(wheels)
    with pytest.raises(NetworkError) as caught:
        make_client().get_page(f"{server.index_url}nothing/")
    assert (caught.value.status, caught.value.attempts) == (404, 1)
    assert fake_time.sleeps == []


def test_429_with_a_long_retry_after_or_no_budget_is_not_retried(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, fake_time: FakeTime
) -> None:
    server = index_server(wheels)
    server.inject("/simple/demo/", Fault(429, headers={"Retry-After": "3600"}))
    with pytest.raises(NetworkError, match="3600 s") as caught:
        make_client().get_page(server.project_url("demo"))
    assert caught.value.status == 429
    server.inject("/simple/demo/", Fault(503))
    broke = make_client(NetworkSettings(keyring=False, retry_budget=0))
    with pytest.raises(NetworkError, match="retry budget"):
        broke.get_page(server.project_url("demo"))
    assert fake_time.sleeps == []


def test_a_connection_dropped_mid_body_is_retried(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    name = wheels[0].name
    server.inject(f"/files/{name}", Fault(drop_after=100))
    seen: list[int] = []
    got = make_client().download(
        server.file_url(name),
        filename=name,
        hashes={"sha256": sha256_of(wheels[0])},
        progress=seen.append,
    )
    assert Path(got.path).read_bytes() == wheels[0].read_bytes()
    assert server.paths("/files/") == [f"/files/{name}"] * 2
    assert 100 in seen and seen[-1] == wheels[0].stat().st_size  # started over
    assert temporaries(cache) == []


def test_a_connection_that_keeps_dropping_fails_cleanly(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, cache: CacheLayout
) -> None:
    server = index_server(wheels)
    name = wheels[0].name
    server.inject(f"/files/{name}", *[Fault(drop_after=10)] * 4)
    with pytest.raises(NetworkError, match="broke off") as caught:
        make_client().download(server.file_url(name), filename=name, hashes={})
    assert caught.value.attempts == 4 and caught.value.status is None
    assert temporaries(cache) == [] and not os.listdir(cache.wheels())


def test_a_refused_connection_is_a_network_error(make_client: MakeClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens once it is closed
    with pytest.raises(NetworkError, match="cannot connect") as caught:
        make_client().get_page(f"http://127.0.0.1:{port}/simple/demo/")
    assert caught.value.attempts == 4


def test_redirect_loops_end(index_server: StartIndex, make_client: MakeClient) -> None:
    server = index_server([])
    server.redirect("/loop", "/loop")
    with pytest.raises(NetworkError, match="more than 10 redirects"):
        make_client().get_page(f"{server.url}/loop")
    assert len(server.requests) == 11


# -- transport security --------------------------------------------------------------------------


def test_plain_http_only_to_loopback_or_trusted_hosts(make_client: MakeClient) -> None:
    with pytest.raises(NetworkError, match=r"trusted-host index\.example"):
        make_client().get_page("http://index.example/simple/demo/")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html/>")

    trusted = make_client(
        NetworkSettings(keyring=False, trusted_hosts=("index.example",)),
        transport=httpx.MockTransport(answer),
    )
    assert trusted.get_page("http://index.example/simple/demo/").body == b"<html/>"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server_context(ca: trustme.CA, *, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(context)
    return context


def test_https_with_a_private_ca(
    index_server: StartIndex,
    wheels: list[Path],
    make_client: MakeClient,
    ca: trustme.CA,
    tmp_path: Path,
    fake_time: FakeTime,
) -> None:
    server = index_server(wheels, tls=tls_server_context(ca))
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))

    with pytest.raises(NetworkError, match="certificate is not trusted") as caught:
        make_client().get_page(server.project_url("demo"))
    assert caught.value.attempts == 1 and "--cert" in str(caught.value)  # not retried

    by_option = make_client(NetworkSettings(keyring=False, cert=str(bundle)))
    assert by_option.get_page(server.project_url("demo")).body
    by_variable = make_client(
        NetworkSettings.from_environ({"SSL_CERT_FILE": str(bundle)}, keyring=False)
    )
    wheel = page_of(by_variable, server.project_url("demo")).files[0]
    by_variable.download(wheel.url, filename=wheel.filename, hashes=wheel.hashes)
    trusted = make_client(NetworkSettings(keyring=False, trusted_hosts=("127.0.0.1",)))
    assert trusted.get_page(server.project_url("demo")).body


def test_a_missing_ca_bundle_names_where_it_came_from(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, ca: trustme.CA
) -> None:
    server = index_server(wheels, tls=tls_server_context(ca))
    settings = NetworkSettings.from_environ({"PIP_CERT": "/nonexistent/ca.pem"}, keyring=False)
    with pytest.raises(UsageError, match="PIP_CERT"):
        make_client(settings).get_page(server.project_url("demo"))


def test_client_certificates(
    index_server: StartIndex,
    wheels: list[Path],
    make_client: MakeClient,
    ca: trustme.CA,
    tmp_path: Path,
) -> None:
    server = index_server(wheels, tls=tls_server_context(ca, client_ca=ca))
    bundle, identity = tmp_path / "ca.pem", tmp_path / "me.pem"
    ca.cert_pem.write_to_path(str(bundle))
    ca.issue_cert("me@example.test").private_key_and_cert_chain_pem.write_to_path(str(identity))
    settings = NetworkSettings(
        keyring=False, cert=str(bundle), client_cert=str(identity), retries=0
    )
    assert make_client(settings).get_page(server.project_url("demo")).body
    with pytest.raises(NetworkError):
        make_client(NetworkSettings(keyring=False, cert=str(bundle), retries=0)).get_page(
            server.project_url("demo")
        )


# -- proxies -------------------------------------------------------------------------------------


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.seen: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _ProxyHandler(BaseHTTPRequestHandler):
    """A forward HTTP proxy (absolute-form requests, RFC 9112 section 3.2.2), just enough."""

    protocol_version = "HTTP/1.1"
    server: _Proxy
    hop_by_hop = frozenset(("connection", "keep-alive", "proxy-connection", "transfer-encoding"))

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        target = urllib.parse.urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in self.hop_by_hop}
        upstream.request("GET", target.path or "/", headers=headers)
        answer = upstream.getresponse()
        body = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in self.hop_by_hop and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        upstream.close()


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_requests_go_through_the_environment_proxy_unless_no_proxy(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, proxy: _Proxy
) -> None:
    server = index_server(wheels)
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    through = make_client(NetworkSettings.from_environ({"HTTP_PROXY": proxy_url}, keyring=False))
    wheel = page_of(through, server.project_url("demo")).files[0]
    through.download(wheel.url, filename=wheel.filename, hashes=wheel.hashes)
    assert proxy.seen == [server.project_url("demo"), server.file_url(wheel.filename)]

    proxy.seen.clear()
    env = {"HTTP_PROXY": proxy_url, "NO_PROXY": "localhost,127.0.0.1"}
    direct = make_client(NetworkSettings.from_environ(env, keyring=False))
    direct.get_page(f"{server.index_url}")
    assert proxy.seen == [] and server.paths()[-1] == "/simple/"


# -- find-links ----------------------------------------------------------------------------------


def test_find_links_directory_and_page(
    index_server: StartIndex, wheels: list[Path], make_client: MakeClient, tmp_path: Path
) -> None:
    directory = wheels[0].parent
    (directory / "notes.txt").write_text("not a distribution")
    (directory / "demo-0.5.tar.gz").write_bytes(b"sdist")
    (directory / "sub.whl").mkdir()
    client = make_client()
    listed = find_links(str(directory), client)
    names = [f.filename for f in listed.files]
    assert names == ["demo-0.5.tar.gz", *[w.name for w in wheels]]
    assert listed.files[1].url == wheels[0].as_uri() and not listed.files[1].hashes
    assert any("sub.whl" in note for note in listed.notes)
    assert [f.filename for f in find_links(directory.as_uri(), client).files] == names
    got = client.download(listed.files[1].url, filename=names[1], hashes={})
    assert got.sha256 == sha256_of(wheels[0])

    server = index_server(wheels, json=False)
    remote = find_links(server.project_url("demo"), client)
    assert remote.name is None
    assert [f.hashes["sha256"] for f in remote.files] == [sha256_of(w) for w in wheels]


# -- start-up cost -------------------------------------------------------------------------------


def test_importing_the_network_layer_stays_light() -> None:
    code = (
        "import sys, stalwart.net; print(','.join(m for m in ('httpx', 'truststore', 'ssl',"
        " 'hashlib', 'http.client', 'netrc') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- the real pypiserver -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pypiserver exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/health")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.1)  # waiting for a real subprocess to start, not for retry logic
    raise AssertionError("pypiserver did not start")


def test_end_to_end_with_pypiserver(
    wheels: list[Path], make_client: MakeClient, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    command = [
        sys.executable,
        "-m",
        "pypiserver",
        "run",
        "-p",
        str(port),
        "-i",
        "127.0.0.1",
        "-a",
        ".",
        "-P",
        ".",
        "--disable-fallback",
        "--log-stream",
        "none",
        str(wheels[0].parent),
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(port, process)
        index = f"http://127.0.0.1:{port}/simple/"
        client = make_client(NetworkSettings(index_url=index, keyring=False))
        (url,) = client.settings.project_urls("Demo")
        page = page_of(client, url)
        by_name = {f.filename: f for f in page.files}
        wheel = by_name[wheels[1].name]
        assert wheel.hashes["sha256"] == sha256_of(wheels[1])
        got = client.download(wheel.url, filename=wheel.filename, hashes=wheel.hashes)
        assert Path(got.path).read_bytes() == wheels[1].read_bytes()
    finally:
        process.terminate()
        process.wait(timeout=10)
