"""The credentials file's modes and writes, and which of the three key sources a command uses."""

from __future__ import annotations

import json
import os
import stat

import pytest

from accounts.access import Actor
from apikeys.services import api_key_revoke
from keyportal_cli import credentials
from keyportal_cli.credentials import resolve_key
from tests.cli.conftest import assert_never_shown, key_of, org_token, personal_key, store

pytestmark = pytest.mark.django_db(transaction=True)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """Run with umask 000, so that only the CLI's own modes can keep the file private."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_folder_is_0700_and_file_0600_whatever_the_umask(cli_home, open_umask):
    """The folder is created 0700 and the file 0600, even with umask 000."""
    written = store("http://keys.example.com", "sk-user-x")
    assert written == cli_home / "credentials.json"
    assert mode(cli_home) == 0o700
    assert mode(written) == 0o600
    assert json.loads(written.read_text())["api_key"] == "sk-user-x"


def test_an_existing_wide_folder_is_narrowed_and_the_file_replaced_atomically(cli_home):
    """A folder made 0755 by hand becomes 0700; rewriting leaves no temporary file behind."""
    cli_home.mkdir(mode=0o755)
    os.chmod(cli_home, 0o755)  # noqa: S103  (the loose folder under test)
    store("http://a.example", "sk-user-first")
    store("http://b.example", "sk-user-second")
    assert mode(cli_home) == 0o700
    assert mode(cli_home / "credentials.json") == 0o600
    assert [p.name for p in cli_home.iterdir()] == ["credentials.json"]
    assert credentials.load()["url"] == "http://b.example"


def test_a_file_others_can_read_is_reported(keyportal, cli_home, live_server, org):
    """A credentials file loosened to 0644 still works, with a warning saying how to fix it."""
    _key, token = personal_key(org, name="laptop")
    path = store(live_server.url, token)
    os.chmod(path, 0o644)
    result = keyportal("whoami")
    assert result.exit_code == 0
    assert "can be read by other users (mode 0644)" in result.stderr
    assert_never_shown(result, token)


def test_a_broken_file_is_a_clear_error(keyportal, cli_home):
    """A credentials file that is not JSON ends the command with one line, exit 1."""
    cli_home.mkdir()
    (cli_home / "credentials.json").write_text("{not json")
    result = keyportal("whoami")
    assert result.exit_code == 1
    assert "is not a valid credentials file" in result.stderr


def test_the_option_wins_over_the_variable_and_the_file(keyportal, live_server, org):
    """--api-key is used before KEYPORTAL_API_KEY, which is used before the credentials file."""
    _k, from_file = personal_key(org, name="key-in-file")
    _k, from_variable = personal_key(org, name="key-in-variable")
    _k, from_option = personal_key(org, name="key-in-option")
    store(live_server.url, from_file)

    result = keyportal("--api-key", from_option, "whoami", env={"KEYPORTAL_API_KEY": from_variable})
    assert result.exit_code == 0
    assert "key-in-option" in result.stdout
    assert "the key from --api-key" in result.stdout

    result = keyportal("whoami", env={"KEYPORTAL_API_KEY": from_variable})
    assert "key-in-variable" in result.stdout
    assert "the key from KEYPORTAL_API_KEY" in result.stdout

    result = keyportal("whoami")
    assert "key-in-file" in result.stdout
    assert "the key in " in result.stdout
    assert_never_shown(result, from_file, from_variable, from_option)


def test_an_empty_variable_counts_as_unset(cli_home, monkeypatch):
    """KEYPORTAL_API_KEY set to blanks falls through to the file."""
    monkeypatch.setenv("KEYPORTAL_API_KEY", "  ")
    assert resolve_key(None, {"api_key": "sk-user-abc"}).source == "file"
    assert resolve_key("", None) is None


def test_the_stored_url_is_used_when_no_other_is_given(keyportal, live_server, org):
    """Without --url or KEYPORTAL_URL, the command goes to the server `login` stored."""
    _key, token = personal_key(org, name="stored-url")
    store(live_server.url, token)
    result = keyportal("whoami", env={"KEYPORTAL_URL": None})
    assert result.exit_code == 0
    assert f"Server        {live_server.url}" in result.stdout


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("option", "The key from --api-key (sk-org-..."),
        ("environment", "The key from KEYPORTAL_API_KEY (sk-org-..."),
        ("file", "The key in "),
    ],
)
def test_a_refused_key_is_named_by_its_source_and_preview(
    keyportal, live_server, org, source, said
):
    """Each source is named in the refusal, with the key's preview and never the key."""
    token = org_token(org, ["projects:read"])
    api_key_revoke(actor=Actor(user=org.owner), api_key=key_of(token))
    args, env = ["whoami"], {}
    if source == "option":
        args = ["--api-key", token, "whoami"]
    elif source == "environment":
        env = {"KEYPORTAL_API_KEY": token}
    else:
        store(live_server.url, token)
    result = keyportal(*args, env=env)
    assert result.exit_code == 3
    assert result.stderr.startswith(f"Error: {said}")
    assert f"...{token[-4:]})" in result.stderr
    assert "was refused: The API key has been revoked." in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_never_shown(result, token)
