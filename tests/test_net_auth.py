"""stalwart.net.auth: credentials from URLs, netrc and keyring, against a real index that
demands basic auth; and proof that no password reaches a message, a repr or the log."""

from __future__ import annotations

import base64
import logging
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from indexserver import IndexServer
from stalwart.cache import CacheLayout
from stalwart.errors import NetworkError
from stalwart.index.simple import parse_project_page
from stalwart.net import Authenticator, Client, Credentials, NetworkSettings
from tinywheels import build_wheel

if TYPE_CHECKING:
    from conftest import FakeTime

USER, PASSWORD = "alice", "s3cr3t-p@ss/word"
StartIndex = Callable[..., IndexServer]
MakeClient = Callable[..., Client]


@pytest.fixture
def wheels(tmp_path: Path) -> list[Path]:
    out = tmp_path / "dist"
    out.mkdir()
    return [build_wheel(out, "demo", "1.0")]


@pytest.fixture
def private(index_server: StartIndex, wheels: list[Path]) -> IndexServer:
    return index_server(wheels, auth=(USER, PASSWORD))


@pytest.fixture
def make_client(tmp_path: Path, fake_time: FakeTime) -> Iterator[MakeClient]:
    made: list[Client] = []

    def make(settings: NetworkSettings | None = None, **options: Any) -> Client:
        options.setdefault("clock", fake_time.clock)
        options.setdefault("sleep", fake_time.sleep)
        client = Client(
            settings or NetworkSettings(keyring=False), CacheLayout(str(tmp_path / "c")), **options
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_netrc(path: Path, host: str, user: str, password: str) -> Path:
    path.write_text(f"machine {host}\nlogin {user}\npassword {password}\n")
    path.chmod(0o600)
    return path


# -- sources --------------------------------------------------------------------------------------


def test_index_url_credentials_apply_to_files_on_the_same_host(
    private: IndexServer, make_client: MakeClient
) -> None:
    index = private.with_credentials(private.index_url, USER, PASSWORD)
    client = make_client(NetworkSettings(index_url=index, keyring=False))
    (url,) = client.settings.project_urls("demo")
    page = client.get_page(url)
    assert "@" not in page.url  # credentials are kept by the client, not in URLs
    wheel = parse_project_page(page.body, page.content_type, page.url).files[0]
    assert "@" not in wheel.url
    client.download(wheel.url, filename=wheel.filename, hashes=wheel.hashes)
    client.fetch_bytes(wheel.url + ".metadata")
    assert [r.headers.get("authorization") for r in private.requests] == [basic(USER, PASSWORD)] * 3


def test_credentials_in_a_requested_url_are_remembered_for_its_host(
    private: IndexServer, make_client: MakeClient
) -> None:
    client = make_client()
    client.get_page(private.with_credentials(private.project_url("demo"), USER, PASSWORD))
    client.download(
        private.file_url("demo-1.0-py3-none-any.whl"),
        filename="demo-1.0-py3-none-any.whl",
        hashes={},
    )
    assert all(r.headers.get("authorization") for r in private.requests)


def test_credentials_never_follow_a_redirect_to_another_host(
    private: IndexServer, index_server: StartIndex, wheels: list[Path], make_client: MakeClient
) -> None:
    elsewhere = index_server(wheels)  # another origin (another port)
    name = wheels[0].name
    private.redirect(f"/files/{name}", elsewhere.file_url(name))
    index = private.with_credentials(private.index_url, USER, PASSWORD)
    client = make_client(NetworkSettings(index_url=index, keyring=False))
    client.download(private.file_url(name), filename=name, hashes={})
    assert private.requests[-1].headers["authorization"] == basic(USER, PASSWORD)
    assert elsewhere.paths() == [f"/files/{name}"]
    assert "authorization" not in elsewhere.requests[0].headers


def test_netrc_from_the_netrc_variable(
    private: IndexServer, make_client: MakeClient, tmp_path: Path
) -> None:
    netrc = write_netrc(tmp_path / "netrc", "127.0.0.1", USER, PASSWORD)
    settings = NetworkSettings.from_environ({"NETRC": str(netrc)}, keyring=False)
    make_client(settings).get_page(private.project_url("demo"))
    # Sent with the first request, as requests and curl --netrc do: no 401 round trip.
    assert [r.headers.get("authorization") for r in private.requests] == [basic(USER, PASSWORD)]


def test_keyring_is_asked_once_after_a_challenge(
    private: IndexServer, make_client: MakeClient
) -> None:
    asked: list[tuple[str, str | None]] = []

    def keyring(service: str, username: str | None) -> tuple[str, str] | None:
        asked.append((service, username))
        return (USER, PASSWORD) if service == private.index_url else None

    settings = NetworkSettings(index_url=private.index_url, keyring=True)
    client = make_client(settings, keyring=keyring)
    client.get_page(private.project_url("demo"))
    client.download(
        private.file_url("demo-1.0-py3-none-any.whl"),
        filename="demo-1.0-py3-none-any.whl",
        hashes={},
    )
    assert asked == [(private.index_url, None)]  # the index URL first (pip's order), once
    statuses = [r.headers.get("authorization") is not None for r in private.requests]
    assert statuses == [False, True, True]  # one 401, then the keyring's answer for the host


def test_keyring_credentials_that_worked_win_over_stale_ones_in_the_url(
    private: IndexServer, make_client: MakeClient
) -> None:
    asked: list[str] = []

    def keyring(service: str, username: str | None) -> tuple[str, str] | None:
        asked.append(service)
        return (USER, PASSWORD)

    stale = private.with_credentials(private.index_url, USER, "expired")
    client = make_client(NetworkSettings(index_url=stale, keyring=True), keyring=keyring)
    client.get_page(f"{private.index_url}demo/")
    client.download(
        private.file_url("demo-1.0-py3-none-any.whl"),
        filename="demo-1.0-py3-none-any.whl",
        hashes={},
    )
    assert asked == [private.index_url]
    assert [r.headers["authorization"] for r in private.requests] == [
        basic(USER, "expired"),
        basic(USER, PASSWORD),
        basic(USER, PASSWORD),
    ]


def test_a_failing_keyring_backend_is_a_note(
    private: IndexServer,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = types.ModuleType("keyring")

    def get_credential(service: str, username: str | None) -> object:
        raise RuntimeError("no D-Bus session")

    broken.get_credential = get_credential  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", broken)
    client = make_client(NetworkSettings(keyring=True))
    with caplog.at_level(logging.WARNING, logger="stalwart.net"), pytest.raises(NetworkError):
        client.get_page(private.project_url("demo"))
    assert "no D-Bus session" in caplog.text


def test_without_credentials_a_401_says_how_to_give_them(
    private: IndexServer, make_client: MakeClient, fake_time: FakeTime
) -> None:
    with pytest.raises(NetworkError) as caught:
        make_client().get_page(private.project_url("demo"))
    error = caught.value
    assert (error.status, error.attempts) == (401, 1) and fake_time.sleeps == []
    assert "netrc" in str(error) and "keyring" in str(error)


# -- never shown ----------------------------------------------------------------------------------


def test_refused_credentials_never_appear_in_messages_or_logs(
    private: IndexServer,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    wrong = "wr0ng-t0ken"
    index = private.with_credentials(private.index_url, "bob", wrong)
    client = make_client(NetworkSettings(index_url=index, keyring=False))
    with caplog.at_level(logging.DEBUG), pytest.raises(NetworkError) as caught:
        client.get_page(f"{index}demo/")
    shown = [str(caught.value), repr(caught.value), caplog.text, repr(client)]
    shown += [repr(client.settings), repr(Credentials("bob", wrong, "url"))]
    for text in shown:
        assert wrong not in text and "bob" not in text
    assert "credentials from url were refused" in str(caught.value)

    # A damaged netrc is reported without quoting its lines (they hold passwords).
    bad = tmp_path / "netrc"
    bad.write_text(f"machine 127.0.0.1 login bob password {wrong} unknowntoken\n")
    settings = NetworkSettings(netrc=str(bad), keyring=False)
    with caplog.at_level(logging.DEBUG), pytest.raises(NetworkError):
        make_client(settings).get_page(private.project_url("demo"))
    assert "netrc" in caplog.text and wrong not in caplog.text


def test_settings_repr_and_errors_hide_index_passwords() -> None:
    settings = NetworkSettings(index_url=f"https://{USER}:hunter22@index.example/simple/")
    assert "hunter22" in settings.index_url  # kept, the client needs it...
    client = Client(settings, CacheLayout("/nonexistent"))
    assert "hunter22" not in repr(client)  # ...but never shown
    client.close()


# -- the authenticator alone ----------------------------------------------------------------------


def test_authenticator_picks_the_most_specific_index_and_decodes_userinfo() -> None:
    auth = Authenticator(
        [
            "https://a:one@index.example/",
            "https://b:two%2Fslash@index.example/private/",
            "https://token123@other.example/simple/",
        ]
    )
    bare, creds = auth.credentials_for("https://index.example/private/simple/x/")
    assert bare == "https://index.example/private/simple/x/"
    assert creds is not None and (creds.username, creds.password) == ("b", "two/slash")
    _, creds = auth.credentials_for("https://index.example/files/x.whl")
    assert creds is not None and creds.username == "a" and creds.source == "index"
    _, token = auth.credentials_for("https://other.example/files/y.whl")
    assert token is not None and (token.username, token.password) == ("token123", "")
    # Another scheme or port is another origin: nothing is sent there.
    assert auth.credentials_for("http://index.example/simple/x/")[1] is None
    assert auth.credentials_for("https://index.example:8443/simple/x/")[1] is None
    assert auth.credentials_for("file:///tmp/x.whl")[1] is None
    assert "one" not in repr(auth) and "two" not in repr(auth)
