"""`keyportal login` and `logout` against the live server's device flow (RFC 8628).

The CLI's waits go through a fake clock: each wait moves the server's record of the last poll
back by as long, so the server sees a well-paced client and no test waits 5 seconds. Approval
and denial happen during a wait, through the server's own services, as the browser page does.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat

import pytest
from django.db.models import F

from accounts.access import Actor
from apikeys.device import device_deny
from apikeys.models import ApiKey, DeviceAuthorization
from apikeys.services import api_key_revoke
from keyportal_cli import credentials
from tests.cli.conftest import (
    approve_on,
    assert_never_shown,
    key_of,
    personal_key,
    store,
    stored_login,
    user_code,
)

pytestmark = pytest.mark.django_db(transaction=True)


def stored_token() -> str:
    return credentials.load()["api_key"]


def test_approval_stores_a_personal_key_that_then_works(
    keyportal, clock, org, cli_home, live_server
):
    """Approved on the second poll: the key is stored 0600, never printed, and used by whoami."""
    approve_on(clock, 2, org)
    result = keyportal("login", "--no-browser")
    assert result.exit_code == 0, result.output
    code = DeviceAuthorization.objects.get().user_code
    assert f"Code: {code}" in result.stderr
    assert f"{live_server.url}/device/?code={code}" in result.stderr
    assert clock.waits == [5, 5]

    stored, key = stored_login(live_server.url, org)
    assert stored["api_key"].startswith("sk-user-")
    assert key.owner_user == org.member
    assert key.name.startswith(f"CLI on {socket.gethostname()[:60]} ")
    assert re.fullmatch(
        rf"Logged in to Acme as {re.escape(key.name)}; the key expires "
        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC\.\n",
        result.stdout,
    )
    assert stat.S_IMODE(os.stat(cli_home / "credentials.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cli_home).st_mode) == 0o700
    assert_never_shown(result, stored["api_key"])

    whoami = keyportal("whoami", env={"KEYPORTAL_URL": None})
    assert whoami.exit_code == 0
    assert key.name in whoami.stdout
    assert_never_shown(whoami, stored["api_key"])


def test_logout_revokes_the_key_and_deletes_the_file(keyportal, clock, org, cli_home):
    """logout revokes the stored key on the server, then deletes the file; again: not logged in."""
    approve_on(clock, 1, org)
    keyportal("login", "--no-browser")
    token = stored_token()
    result = keyportal("logout", env={"KEYPORTAL_URL": None})
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Logged out: revoked sk-user-...{token[-4:]} and deleted ")
    assert key_of(token).revoked_at is not None
    assert not (cli_home / "credentials.json").exists()
    assert_never_shown(result, token)

    again = keyportal("logout")
    assert again.exit_code == 0
    assert again.stdout == "Not logged in.\n"


def test_denial_ends_with_a_clear_message(keyportal, clock, org, cli_home):
    """Denied in the browser: one line, a non-zero exit, no credentials file."""

    def deny(n: int) -> None:
        if n == 2:
            device_deny(user=org.member, user_code=user_code())

    clock.on_wait = deny
    result = keyportal("login", "--no-browser")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: The login was denied in the browser."
    assert not (cli_home / "credentials.json").exists()
    assert not ApiKey.objects.filter(owner_user=org.member).exists()


def test_an_expired_code_ends_with_a_clear_message(keyportal, settings, cli_home):
    """A code nobody approves in time (1 s here, real time) ends the CLI, non-zero."""
    settings.KEYPORTAL_DEVICE_CODE_SECONDS = 1
    settings.KEYPORTAL_DEVICE_POLL_SECONDS = 0
    result = keyportal("login", "--no-browser", env={"KEYPORTAL_POLL_INTERVAL": "0.4"})
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: The code expired before it was approved; run `keyportal login` again."
    )
    assert not (cli_home / "credentials.json").exists()


def test_slow_down_slows_the_polling(keyportal, clock, org):
    """A poll that comes too soon gets slow_down: the CLI then waits the interval it carries."""
    clock.frozen = {2}
    approve_on(clock, 3, org)
    result = keyportal("login", "--no-browser")
    assert result.exit_code == 0, result.output
    assert clock.waits == [5, 5, 10]


def test_the_browser_opens_the_page_unless_told_not_to(keyportal, clock, org, monkeypatch):
    """Without --no-browser the verification page (with the code) is opened."""
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    approve_on(clock, 1, org)
    assert keyportal("login").exit_code == 0
    assert len(opened) == 1
    assert opened[0].endswith(f"/device/?code={DeviceAuthorization.objects.get().user_code}")


def test_login_as_json_prints_no_token(keyportal, clock, org):
    """--json prints the key and organization the server sent, without the token."""
    approve_on(clock, 1, org)
    result = keyportal("--json", "login", "--no-browser")
    body = json.loads(result.stdout)
    assert body["organization"]["slug"] == "acme"
    assert "token" not in body
    assert_never_shown(result, stored_token())


def test_logging_in_again_revokes_the_previous_cli_key(keyportal, clock, org):
    """A second login on the same server revokes the key the first one stored."""
    approve_on(clock, 1, org)
    keyportal("login", "--no-browser")
    first = stored_token()
    clock.waits.clear()
    result = keyportal("login", "--no-browser")
    assert result.exit_code == 0, result.output
    assert stored_token() != first
    assert key_of(first).revoked_at is not None
    assert f"Revoked the key of the previous login (sk-user-...{first[-4:]})" in result.stderr


def test_a_key_in_the_environment_is_pointed_out_after_login(keyportal, clock, org):
    """KEYPORTAL_API_KEY still wins after a login: the CLI says so."""
    _key, token = personal_key(org, name="env")
    approve_on(clock, 1, org)
    result = keyportal("login", "--no-browser", env={"KEYPORTAL_API_KEY": token})
    assert "Note: KEYPORTAL_API_KEY is set and is used before the stored key." in result.stderr
    assert_never_shown(result, token)


def test_login_replaces_a_broken_credentials_file(keyportal, clock, org, cli_home):
    """A credentials file that is not JSON does not stop a login, which replaces it."""
    cli_home.mkdir()
    (cli_home / "credentials.json").write_text("{broken")
    approve_on(clock, 1, org)
    result = keyportal("login", "--no-browser")
    assert result.exit_code == 0, result.output
    assert stored_token().startswith("sk-user-")


def test_logout_with_a_key_the_server_already_refuses(keyportal, org, live_server, cli_home):
    """A revoked or expired stored key: the file is deleted all the same, and the CLI says why."""
    key, token = personal_key(org, name="old")
    api_key_revoke(actor=Actor(user=org.member), api_key=key)
    store(live_server.url, token, key_id=key.pk)
    result = keyportal("logout")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        f"Logged out: the server already refuses sk-user-...{token[-4:]} "
        "(The API key has been revoked); deleted "
    )
    assert not (cli_home / "credentials.json").exists()
    assert_never_shown(result, token)


def test_logout_when_the_server_is_unreachable_keeps_the_file(keyportal, org, cli_home):
    """No answer: nothing was revoked, so the file stays and the line says so (exit 7)."""
    key, token = personal_key(org, name="offline")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    store(url, token, key_id=key.pk)
    result = keyportal("logout")
    assert result.exit_code == 7
    assert "The key was not revoked" in result.stderr
    assert (cli_home / "credentials.json").exists()
    assert key_of(token).revoked_at is None


def test_too_many_login_codes_is_exit_6(keyportal, clock, settings):
    """Asking for codes past the server's limit: exit 6, saying when to retry."""
    settings.KEYPORTAL_DEVICE_CODES_RATE = "1/m"
    clock.on_wait = lambda n: DeviceAuthorization.objects.update(expires_at=F("created_at"))
    assert keyportal("login", "--no-browser").exit_code == 1  # expired, but a code was given
    result = keyportal("login", "--no-browser")
    assert result.exit_code == 6
    assert result.stderr == (
        "Error: Too many requests from this address: retry in 60 seconds (Too many login codes "
        "from your address; retry in a minute).\n"
    )


def test_logout_revokes_the_stored_key_not_the_one_in_the_environment(
    keyportal, org, live_server, cli_home
):
    """With KEYPORTAL_API_KEY set (a CI key, say), logout still ends the login that wrote the
    file: the stored key is revoked, the environment's is left alone."""
    stored_key, stored = personal_key(org, name="laptop")
    _env_key, from_env = personal_key(org, name="ci")
    store(live_server.url, stored, key_id=stored_key.pk)
    result = keyportal("logout", env={"KEYPORTAL_API_KEY": from_env})
    assert result.exit_code == 0, result.output
    assert f"revoked sk-user-...{stored[-4:]}" in result.stdout
    assert key_of(stored).revoked_at is not None
    assert key_of(from_env).revoked_at is None
    assert_never_shown(result, stored, from_env)
