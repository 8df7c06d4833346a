"""The `keyportal` command: global options, login and logout, and the command groups."""

from __future__ import annotations

import os
from typing import Any

import click
import httpx

from keyportal_cli import __version__, credentials, device_flow
from keyportal_cli.client import ApiClient
from keyportal_cli.commands import apps, environments, keys, scan, secrets
from keyportal_cli.errors import (
    EXIT_CODES,
    FAILURE,
    NETWORK,
    CliError,
    error_body,
    network_error,
    scrub,
)
from keyportal_cli.output import day, emit_json, fields, when
from keyportal_cli.session import DEFAULT_URL, KIND_NAMES, Session, json_option


class Group(click.Group):
    """A click group that turns any unexpected failure into one line, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click reports these itself; a closed pipe (`| head`) ends quietly
        except httpx.HTTPError as exc:
            raise network_error(exc, url="the server") from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise CliError(f"{exc.strerror or exc}{where}.", FAILURE) from None
        except Exception as exc:
            if os.environ.get("KEYPORTAL_DEBUG"):
                raise
            raise CliError(
                f"Unexpected failure: {type(exc).__name__}: {scrub(str(exc))} "
                "(set KEYPORTAL_DEBUG=1 to see where).",
                FAILURE,
            ) from None


EPILOG = "\b\nExit codes:\n" + "\n".join(
    f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items()
)


@click.group(cls=Group, epilog=EPILOG)
@click.option(
    "--api-key",
    "api_key",
    metavar="KEY",
    help="The API key to use. Prefer KEYPORTAL_API_KEY: a command line is seen by other "
    "processes and kept in shell history. [default: KEYPORTAL_API_KEY, then the key stored "
    "by `keyportal login`]",
)
@click.option(
    "--url",
    metavar="URL",
    help=f"keyportal's address. [default: KEYPORTAL_URL, then the address `keyportal login` "
    f"stored, then {DEFAULT_URL}]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")
@click.version_option(__version__, prog_name="keyportal")
@click.pass_context
def cli(ctx: click.Context, api_key: str | None, url: str | None, as_json: bool) -> None:
    """Work with keyportal from the terminal: log in, publish apps, read secrets, manage keys."""
    session = ctx.ensure_object(Session)
    session.key_option = api_key
    session.url_option = url
    session.as_json = session.as_json or as_json


@cli.command("login")
@click.option("--no-browser", is_flag=True, help="Only print the page to open; open no browser.")
@click.option("--poll-interval", type=float, envvar="KEYPORTAL_POLL_INTERVAL", hidden=True)
@json_option
@click.pass_obj
def login_command(session: Session, no_browser: bool, poll_interval: float | None) -> None:
    """Log in through the browser and store a 7-day personal key."""
    previous = session.stored(strict=False)  # a broken file is simply replaced
    url = session.url()
    with ApiClient(url) as client:
        code = device_flow.request_code(client)
        device_flow.show_code(code, open_browser=not no_browser)
        answer = device_flow.wait_for_token(client, code, poll_interval=poll_interval)
    key, organization = answer["key"], answer["organization"]
    device_flow.save_login(url, answer)
    # Only the key the file held: never one from --api-key or KEYPORTAL_API_KEY.
    old = device_flow.revoke_previous(previous, url=url, new_key_id=key["id"])
    if old is not None:
        click.echo(f"Revoked the key of the previous login ({old.preview}).", err=True)
    if session.as_json:
        emit_json({"url": url, "key": key, "organization": organization})
    else:
        click.echo(
            f"Logged in to {organization['name']} as {key['name']}; "
            f"the key expires {when(key.get('expires_at'), empty='never')}."
        )
    for overriding in (
        "--api-key" if session.key_option else None,
        "KEYPORTAL_API_KEY" if os.environ.get("KEYPORTAL_API_KEY", "").strip() else None,
    ):
        if overriding:
            click.echo(f"Note: {overriding} is set and is used before the stored key.", err=True)


@cli.command("logout")
@json_option
@click.pass_obj
def logout_command(session: Session) -> None:
    """Revoke the stored key on the server and delete the credentials file."""
    shown = credentials.shown_path()
    try:
        stored = session.stored()
    except CliError:
        credentials.delete()
        _said(session, f"Deleted the unreadable {shown}.", revoked=False)
        return
    # The stored key, never one from KEYPORTAL_API_KEY: logout ends the login that wrote the file.
    key = credentials.file_key(stored) if stored is not None else None
    if stored is None or key is None:
        credentials.delete()
        _said(session, "Not logged in.", revoked=False)
        return
    url = str(stored.get("url") or DEFAULT_URL)
    try:
        with ApiClient(url, key) as client:
            response = client.send("POST", "whoami/revoke")
    except CliError as exc:
        if exc.exit_code == NETWORK:
            raise CliError(
                f"{exc.message} The key was not revoked and {shown} is kept: "
                "run `keyportal logout` again.",
                NETWORK,
            ) from exc
        raise
    if response.is_success:
        credentials.delete()
        _said(session, f"Logged out: revoked {key.preview} and deleted {shown}.", revoked=True)
    elif response.status_code == 401:
        credentials.delete()
        reason = str(error_body(response).get("message") or "refused").rstrip(".")
        _said(
            session,
            f"Logged out: the server already refuses {key.preview} ({reason}); deleted {shown}.",
            revoked=False,
        )
    else:
        raise client.fail(response)


def _said(session: Session, message: str, *, revoked: bool) -> None:
    if session.as_json:
        emit_json({"logged_out": True, "revoked": revoked, "message": message})
    else:
        click.echo(message)


@cli.command("whoami")
@json_option
@click.pass_obj
def whoami_command(session: Session) -> None:
    """Show the key in use: its organization, owner, permissions and expiry."""
    with session.client() as client:
        me = client.get("whoami")
    if session.as_json:
        emit_json(me)
        return
    organization = me.get("organization") or {}
    owner = me.get("owner") or {}
    fields(
        [
            ("Key", f"{me['name']} (id {me['id']}, {KIND_NAMES.get(me['kind'], me['kind'])})"),
            ("Preview", me["preview"]),
            ("Organization", f"{organization.get('name')} ({organization.get('slug')})"),
            ("Owner", owner.get("name")),
            ("State", me.get("state")),
            ("Expires", day(me.get("expires_at"))),
            ("Permissions", ", ".join(me.get("effective_permissions") or []) or "none"),
            ("Server", client.url),
            ("Using", client.key.origin if client.key else "-"),
        ]
    )


cli.add_command(apps.app)
cli.add_command(environments.environments)
cli.add_command(keys.keys)
cli.add_command(scan.scan)
cli.add_command(secrets.secrets)
