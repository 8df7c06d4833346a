"""`keyportal login`: the device authorization flow, in the manner of RFC 8628.

The CLI asks for a code, shows where to approve it, and polls until the person approves or
denies it in the browser, or the code expires. Only the key the approval issues is stored.

`keyportal login` and, from Python, `keyportal_cli.login()` (keyportal_cli.library) both run it.
"""

from __future__ import annotations

import contextlib
import socket
import webbrowser
from time import monotonic, sleep
from typing import Any

import click

from keyportal_cli import credentials
from keyportal_cli.client import USER_AGENT, ApiClient
from keyportal_cli.credentials import ResolvedKey, file_key
from keyportal_cli.errors import FAILURE, NETWORK, NOT_FOUND, CliError, error_body
from keyportal_cli.names import unsafe_character

DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
# Polls that get no answer at all before giving up: a server restart should not end a login.
NETWORK_TRIES = 3
DENIED = "The login was denied in the browser."
EXPIRED = "The code expired before it was approved; run `keyportal login` again."


def host_name() -> str:
    """Return this machine's name as the server shows it, without the characters names refuse."""
    name = socket.gethostname()
    while (character := unsafe_character(name)) is not None:
        name = name.replace(character, "")
    return name[:255]


def request_code(client: ApiClient) -> dict[str, Any]:
    """Ask the server for a device code and return its answer."""
    response = client.send("POST", "device/code", json={"client": USER_AGENT, "host": host_name()})
    if response.status_code in (404, 405):
        raise CliError(
            f"{client.url} does not offer `keyportal login`; create a personal key in the "
            "console and set KEYPORTAL_API_KEY instead.",
            NOT_FOUND,
        )
    if not response.is_success:
        raise client.fail(response)
    code: dict[str, Any] = response.json()
    return code


def show_code(code: dict[str, Any], *, open_browser: bool) -> None:
    """Print where to approve the code (on stderr: it is a prompt, not a result)."""
    complete = code.get("verification_uri_complete") or code["verification_uri"]
    click.echo("To log in, open this page and check that it shows the same code:", err=True)
    click.echo(f"\n    {complete}\n", err=True)
    click.echo(f"    Code: {code['user_code']}\n", err=True)
    if code.get("verification_uri") and code["verification_uri"] != complete:
        click.echo(f"(Or open {code['verification_uri']} and type the code.)", err=True)
    if open_browser:
        open_page(code)
    click.echo("Waiting for the approval in the browser (Ctrl-C to stop)...", err=True)


def open_page(code: dict[str, Any]) -> None:
    """Open the page approving the code in a browser, if there is one."""
    # Without a usable browser the printed address is enough.
    with contextlib.suppress(Exception):
        webbrowser.open(code.get("verification_uri_complete") or code["verification_uri"])


def wait_for_token(
    client: ApiClient, code: dict[str, Any], *, poll_interval: float | None = None
) -> dict[str, Any]:
    """Poll until the code is approved and return the token answer; raise on denial or expiry.

    `poll_interval`, when given, replaces the server's first interval (tests); a `slow_down`
    still sets the pace the server asks for.
    """
    interval = float(code.get("interval") or DEFAULT_INTERVAL)
    if poll_interval is not None:
        interval = poll_interval
    deadline = monotonic() + float(code.get("expires_in") or 600)
    unanswered = 0
    while True:
        sleep(interval)
        try:
            response = client.send(
                "POST", "device/token", json={"device_code": code["device_code"]}
            )
        except CliError as exc:
            unanswered += 1
            if exc.exit_code != NETWORK or unanswered >= NETWORK_TRIES:
                raise
            continue
        unanswered = 0
        if response.is_success:
            answer: dict[str, Any] = response.json()
            return answer
        error = error_body(response)
        match error.get("code") if response.status_code == 400 else None:
            case "authorization_pending":
                pass
            case "slow_down":
                interval = float(error.get("interval") or interval + SLOW_DOWN_STEP)
            case "access_denied":
                raise CliError(DENIED, FAILURE)
            case "expired_token":
                raise CliError(EXPIRED, FAILURE)
            case _:
                raise client.fail(response)
        if monotonic() > deadline:
            raise CliError(EXPIRED, FAILURE)


def save_login(url: str, answer: dict[str, Any]) -> dict[str, Any]:
    """Store the key an approved login received in the credentials file; return what was stored."""
    key = answer["key"]
    stored = {
        "url": url,
        "api_key": answer["token"],
        "key_id": key["id"],
        "key_name": key["name"],
        "organization": answer["organization"],
        "expires_at": key.get("expires_at"),
    }
    credentials.save(stored)
    return stored


def revoke_previous(
    previous: dict[str, Any] | None, *, url: str, new_key_id: int
) -> ResolvedKey | None:
    """Revoke the key an earlier login stored on the same server: one live CLI key at a time.

    Only the key the file held is revoked, never one from KEYPORTAL_API_KEY. Return it when it
    was revoked; a failure to revoke it is no failure of the login.
    """
    if not previous or previous.get("url") != url or previous.get("key_id") == new_key_id:
        return None
    try:
        old = file_key(previous)
        if old is None:
            return None
        with ApiClient(url, old) as client:
            response = client.send("POST", "whoami/revoke")
    except CliError:
        return None
    return old if response.is_success else None
