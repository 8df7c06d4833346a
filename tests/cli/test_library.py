"""keyportal_cli as a library: Client and login() against the live server, as the CLI is tested.

The client must find the server and the key exactly as the `keyportal` command does, never
show the key (its repr gives the preview), and raise KeyportalError with fields on a refusal.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from accounts.access import Actor
from apikeys.device import device_deny
from apikeys.models import DeviceAuthorization
from apikeys.permissions import READ_ONLY
from apikeys.services import api_key_revoke
from keyportal_cli import Client, KeyportalError, credentials, library, pages
from keyportal_cli.session import Session
from keyportal_cli.tokens import has_token_format
from tests.cli.conftest import (
    approve_on,
    key_of,
    org_token,
    personal_key,
    secret_part,
    store,
    stored_login,
    user_code,
)

pytestmark = pytest.mark.django_db(transaction=True)

MANAGE = ["api-keys:manage", *sorted(READ_ONLY)]


def assert_hidden(text: str, *tokens: str) -> None:
    for token in tokens:
        assert token not in text
        assert secret_part(token) not in text


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def server(live_server, cli_home, monkeypatch) -> str:
    """The live server's address in KEYPORTAL_URL, as the CLI's tests run it."""
    monkeypatch.setenv("KEYPORTAL_URL", live_server.url)
    return live_server.url


# Which server, which key: the CLI's order, through the CLI's own functions.


def test_the_key_comes_from_the_argument_then_the_environment_then_the_file(
    server, org, monkeypatch
):
    """api_key= beats KEYPORTAL_API_KEY, which beats the credentials file."""
    _k, from_file = personal_key(org, name="from-file")
    _k, from_env = personal_key(org, name="from-env")
    _k, given = personal_key(org, name="given")
    store(server, from_file)
    monkeypatch.setenv("KEYPORTAL_API_KEY", from_env)

    with Client(api_key=given) as client:
        assert client.whoami()["name"] == "given"
        assert client.key_source == "argument"
    with Client() as client:
        assert client.whoami()["name"] == "from-env"
        assert client.key_source == "environment"
    monkeypatch.delenv("KEYPORTAL_API_KEY")
    with Client() as client:
        assert client.whoami()["name"] == "from-file"
        assert client.key_source == "file"


def test_an_empty_argument_or_variable_counts_as_unset(server, org, monkeypatch):
    """As in the CLI: a blank key is no key, and the next source is used."""
    _k, from_file = personal_key(org, name="from-file")
    store(server, from_file)
    monkeypatch.setenv("KEYPORTAL_API_KEY", "  ")
    with Client(api_key="") as client:
        assert client.whoami()["name"] == "from-file"


@pytest.mark.parametrize(
    ("argument", "environment", "in_file", "expected"),
    [
        ("https://given:1/", "https://env:2", "https://file:3", "https://given:1"),
        (None, "https://env:2/", "https://file:3", "https://env:2"),
        (None, None, "https://file:3/", "https://file:3"),
        (None, "  ", None, "http://127.0.0.1:8000"),
    ],
)
def test_the_url_is_found_as_the_cli_finds_it(
    cli_home, monkeypatch, argument, environment, in_file, expected
):
    """The argument, KEYPORTAL_URL, the file, then the default: the same as `--url` in the CLI."""
    if environment is not None:
        monkeypatch.setenv("KEYPORTAL_URL", environment)
    if in_file:
        store(in_file, "sk-user-x")
    client = Client(url=argument, api_key="sk-user-whatever")
    assert client.url == expected
    assert Session(url_option=argument).url() == expected


def test_without_any_key_the_client_says_how_to_get_one(cli_home):
    with pytest.raises(KeyportalError) as raised:
        Client()
    assert raised.value.code == "no_key"
    assert raised.value.status is None
    assert "keyportal_cli.login()" in raised.value.message


def test_a_broken_credentials_file_is_an_error_with_a_code(cli_home):
    cli_home.mkdir()
    (cli_home / "credentials.json").write_text("{broken")
    with pytest.raises(KeyportalError) as raised:
        Client()
    assert raised.value.code == "invalid_credentials"


def test_a_key_with_spaces_is_refused_before_it_is_sent(cli_home):
    with pytest.raises(KeyportalError) as raised:
        Client(api_key="sk-user-abc def")
    assert raised.value.code == "invalid_key"
    assert raised.value.message.startswith("The key passed as api_key is not a keyportal key")


# What the client shows of itself.


def test_repr_shows_the_preview_never_the_key(server, org):
    _k, token = personal_key(org, name="laptop")
    client = Client(api_key=token)
    shown = repr(client)
    assert shown == (
        f"keyportal_cli.Client(url={server!r}, key='sk-user-...{token[-4:]}', source='argument')"
    )
    assert client.key_preview == f"sk-user-...{token[-4:]}"
    assert_hidden(shown + str(client) + repr(vars(client)) + repr(client._api.key), token)


def test_the_context_manager_closes_the_connections(server, org):
    _k, token = personal_key(org)
    with Client(api_key=token) as client:
        client.whoami()
    assert client._api._http.is_closed


# Calls.


def test_whoami(server, org):
    _k, token = personal_key(org, name="laptop", permissions=["projects:read"])
    with Client(api_key=token) as client:
        me = client.whoami()
    assert me["name"] == "laptop"
    assert me["organization"]["slug"] == "acme"
    assert "projects:read" in me["effective_permissions"]
    assert "token" not in me


def test_create_list_and_revoke_keys(server, org):
    """create returns the token once; list never shows one; revoke ends the key."""
    token = org_token(org, MANAGE, name="ci")
    with Client(api_key=token) as client:
        created = client.keys.create(
            name="deploy",
            permissions=["projects:read", "secrets:read"],
            expires_at=date(2099, 1, 31),
            rate_limits=["100/minute"],
        )
        assert has_token_format(created["token"])
        assert created["kind"] == "org"  # an organization key makes organization keys
        assert created["rate_limits"] == [{"limit": 100, "window": "minute"}]
        key = key_of(created["token"])
        assert key.expires_at.isoformat().startswith("2099-01-31T23:59:59")
        assert sorted(key.permissions) == ["projects:read", "secrets:read"]

        listed = client.keys.list()
        assert {k["name"] for k in listed} == {"ci", "deploy"}
        assert all("token" not in k for k in listed)
        assert [k["name"] for k in client.keys.list(name="dep")] == ["deploy"]
        assert client.keys.get(created["id"])["preview"] == created["preview"]

        revoked = client.keys.revoke(created["id"])
        assert revoked["state"] == "revoked"
        assert {k["name"] for k in client.keys.list()} == {"ci"}
        assert [k["name"] for k in client.keys.list(status="revoked")] == ["deploy"]
    with pytest.raises(KeyportalError) as raised, Client(api_key=created["token"]) as gone:
        gone.whoami()
    assert raised.value.status == 401


def test_a_personal_key_makes_personal_keys_with_a_preset(server, org):
    """As `keyportal keys create`: kind left out follows the key in use; presets pass through."""
    _k, token = personal_key(org, permissions=["api-keys:manage", *sorted(READ_ONLY)])
    with Client(api_key=token) as client:
        created = client.keys.create(
            name="notebook", preset="read-only", expires_at=date.today() + timedelta(days=7)
        )
    assert created["kind"] == "user"
    assert set(created["permissions"]) == READ_ONLY


def test_list_reads_every_page(server, org, monkeypatch):
    """With pages of 2, five keys take three requests and all come back, in order."""
    token = org_token(org, MANAGE, name="ci")
    for number in range(4):
        org_token(org, ["projects:read"], name=f"k{number}")
    monkeypatch.setattr(library, "PAGE", 2)
    asked: list[dict] = []
    with Client(api_key=token) as client:
        original = client.get

        def counting_get(path, **kwargs):
            asked.append(dict(kwargs.get("params") or {}))
            return original(path, **kwargs)

        monkeypatch.setattr(client, "get", counting_get)
        listed = client.keys.list()
    assert len(listed) == 5
    assert len({k["id"] for k in listed}) == 5
    assert [query.get("offset") for query in asked] == [None, 2, 4]
    with pytest.raises(TypeError):
        client.keys.list(limit=3)


def test_the_generic_calls_return_parsed_json(server, org):
    token = org_token(org, MANAGE, name="ci")
    with Client(api_key=token) as client:
        assert client.get("/health") == {"status": "ok"}
        assert client.get("/api/v1/whoami")["name"] == "ci"
        created = client.post("keys", json={"name": "raw", "permissions": ["projects:read"]})
        changed = client.patch(f"keys/{created['id']}", json={"name": "renamed"})
        assert changed["name"] == "renamed"
        with pytest.raises(ValueError, match="not a URL"):
            client.get("https://elsewhere.example.com/api/v1/whoami")


# Errors: KeyportalError, with fields, never the key.


def test_a_missing_permission_is_403_insufficient_scope(server, org):
    token = org_token(org, ["projects:read"], name="narrow")
    with Client(api_key=token) as client, pytest.raises(KeyportalError) as raised:
        client.keys.list()
    error = raised.value
    assert (error.status, error.code, error.permission) == (
        403,
        "insufficient_scope",
        "api-keys:manage",
    )
    assert error.message == "The API key lacks the permission api-keys:manage."
    assert str(error) == f"{error.message} (403 insufficient_scope)"


def test_a_key_out_of_reach_is_404(server, org):
    token = org_token(org, MANAGE, name="ci")
    with Client(api_key=token) as client, pytest.raises(KeyportalError) as raised:
        client.keys.revoke(999_999)
    error = raised.value
    assert (error.status, error.code) == (404, "not_found")
    assert error.message == (
        "Key 999999 was not found, or is outside the reach of the key passed as api_key "
        f"(sk-org-...{token[-4:]})."
    )
    assert_hidden(str(error) + repr(error), token)


def test_a_revoked_key_is_401_naming_its_source_and_preview(server, org, monkeypatch):
    key, token = personal_key(org, name="old")
    api_key_revoke(actor=Actor(user=org.member), api_key=key)
    monkeypatch.setenv("KEYPORTAL_API_KEY", token)
    with Client() as client, pytest.raises(KeyportalError) as raised:
        client.whoami()
    error = raised.value
    assert error.status == 401
    assert error.code
    assert error.message.startswith(
        f"The key from KEYPORTAL_API_KEY (sk-user-...{token[-4:]}) was refused: "
    )
    assert_hidden(str(error) + repr(error) + repr(error.body), token)


def test_no_server_is_a_connection_error(cli_home):
    client = Client(url=closed_port_url(), api_key="sk-user-whatever")
    with client, pytest.raises(KeyportalError) as raised:
        client.whoami()
    assert (raised.value.status, raised.value.code) == (None, "connection_error")


def test_rotating_the_stored_key_updates_the_file_and_the_client(server, org):
    """The key in use, rotated: the client switches to the new secret; so does the file."""
    key, token = personal_key(org, permissions=MANAGE, name="laptop")
    store(server, token, key_id=key.pk)
    with Client() as client:
        rotated = client.keys.rotate(key.pk)
        assert has_token_format(rotated["token"])
        assert credentials.load()["api_key"] == rotated["token"]
        assert client.whoami()["id"] == key.pk  # the old secret stopped; the new one works
        assert_hidden(repr(client), rotated["token"])


# The page helper, before and after the lists become envelopes.


def paged(answers: list) -> tuple[Callable[[dict], object], list[dict]]:
    asked: list[dict] = []

    def fetch(params: dict) -> object:
        asked.append(params)
        return answers[len(asked) - 1]

    return fetch, asked


def test_pages_of_a_bare_list_follow_the_offset():
    fetch, asked = paged([[1, 2], [3, 4], [5]])
    assert list(pages.iterate(fetch, {"kind": "org"}, page_size=2)) == [1, 2, 3, 4, 5]
    assert asked == [
        {"kind": "org", "limit": 2},
        {"kind": "org", "limit": 2, "offset": 2},
        {"kind": "org", "limit": 2, "offset": 4},
    ]


def test_pages_of_an_envelope_follow_the_cursor_the_offset_or_the_total():
    fetch, asked = paged(
        [{"items": [1, 2], "next_cursor": "b"}, {"items": [3], "next_cursor": None}]
    )
    assert list(pages.iterate(fetch, None, page_size=2)) == [1, 2, 3]
    assert asked[1] == {"limit": 2, "cursor": "b"}

    fetch, asked = paged([{"items": [1, 2], "next_offset": 2}, {"items": [3], "next_offset": None}])
    assert list(pages.iterate(fetch, None, page_size=2)) == [1, 2, 3]
    assert asked[1] == {"limit": 2, "offset": 2}

    fetch, asked = paged([{"items": [1, 2], "total": 3}, {"items": [3], "total": 3}])
    assert list(pages.iterate(fetch, None, page_size=2)) == [1, 2, 3]
    assert len(asked) == 2


def test_a_repeated_cursor_or_an_odd_page_ends_the_reading():
    fetch, _asked = paged([{"items": [1], "next_cursor": "a"}, {"items": [2], "next_cursor": "a"}])
    assert list(pages.iterate(fetch, None, page_size=1)) == [1, 2]
    with pytest.raises(pages.UnexpectedPage):
        list(pages.iterate(paged([{"keys": []}])[0], None, page_size=1))


# login(): the CLI's device flow, from Python.


def test_login_stores_the_key_like_the_cli_and_returns_a_client(
    live_server, cli_home, clock, org, capsys
):
    """The code and link on stderr; the key stored as `keyportal login` stores it; a client
    using it; and a later Client() (or the CLI) finds it in the file."""
    approve_on(clock, 2, org)
    client = keyportal_cli_login(url=live_server.url, open_browser=False)
    printed = capsys.readouterr()
    code = DeviceAuthorization.objects.get().user_code
    assert f"Code: {code}" in printed.err
    assert f"{live_server.url}/device/?code={code}" in printed.err
    assert printed.out == ""

    stored, key = stored_login(live_server.url, org)
    assert key.owner_user == org.member
    assert_hidden(printed.err + printed.out + repr(client), stored["api_key"])

    with client:
        assert client.whoami()["id"] == key.pk
        assert client.key_source == "file"
    with Client() as later:  # no KEYPORTAL_URL: the stored server, the stored key
        assert later.url == live_server.url
        assert later.whoami()["id"] == key.pk
    assert Session().key().token == stored["api_key"]


def test_login_again_revokes_the_previous_login_not_the_environments_key(
    live_server, cli_home, clock, org, monkeypatch
):
    """One live login key per server; a key in KEYPORTAL_API_KEY is left alone."""
    _k, from_env = personal_key(org, name="env")
    approve_on(clock, 1, org)
    keyportal_cli_login(url=live_server.url, open_browser=False).close()
    first = credentials.load()["api_key"]
    monkeypatch.setenv("KEYPORTAL_API_KEY", from_env)
    clock.waits.clear()
    keyportal_cli_login(url=live_server.url, open_browser=False).close()
    assert key_of(first).revoked_at is not None
    assert key_of(from_env).revoked_at is None
    assert credentials.load()["api_key"] != first


def test_login_with_a_callback_prints_nothing(live_server, cli_home, clock, org, capsys):
    approve_on(clock, 1, org)
    shown: list[dict] = []
    client = keyportal_cli_login(url=live_server.url, open_browser=False, on_code=shown.append)
    assert capsys.readouterr().err == ""
    assert shown[0]["user_code"] == DeviceAuthorization.objects.get().user_code
    assert shown[0]["verification_uri_complete"].endswith(f"?code={shown[0]['user_code']}")
    assert set(shown[0]) == {"user_code", "verification_uri", "verification_uri_complete",
                             "expires_in"}  # fmt: skip
    client.close()


def test_a_denied_login_raises_access_denied(live_server, cli_home, clock, org):
    def deny(n: int) -> None:
        device_deny(user=org.member, user_code=user_code())

    clock.on_wait = deny
    with pytest.raises(KeyportalError) as raised:
        keyportal_cli_login(url=live_server.url, open_browser=False, on_code=lambda code: None)
    assert raised.value.code == "access_denied"
    assert not (cli_home / "credentials.json").exists()


def keyportal_cli_login(**kwargs):
    """keyportal_cli.login, as a notebook calls it."""
    import keyportal_cli

    return keyportal_cli.login(**kwargs)
