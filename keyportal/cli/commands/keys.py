"""`keyportal keys list|create|rotate|revoke`: keys of the organization (api-keys:manage).

Only `create` and `rotate` ever print a key's token: alone on stdout, so that
`TOKEN=$(keyportal keys create ...)` catches it, with what to know about it on stderr.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import click

from keyportal.cli import credentials
from keyportal.cli.client import segment
from keyportal.cli.output import day, emit_json, table, when
from keyportal.cli.session import KIND_NAMES, Session, json_option
from keyportal.names import name_problem

# The console's "Read-only" preset (apikeys/permissions.py READ_ONLY; a test keeps them equal).
READ_ONLY = (
    "secrets:read",
    "projects:read",
    "targets:read",
    "environments:read",
    "organization:read",
)
PAGE = 200
GRACE = {
    "now": "The old secret stopped working at once.",
    "1h": "The old secret keeps working for 1 hour.",
    "24h": "The old secret keeps working for 24 hours.",
    "7d": "The old secret keeps working for 7 days.",
}


@click.group("keys")
def keys() -> None:
    """List, create, rotate and revoke the organization's keys (needs api-keys:manage)."""


@keys.command("list")
@json_option
@click.pass_obj
def keys_list(session: Session) -> None:
    """List the organization's keys that are not revoked."""
    found: list[dict[str, Any]] = []
    with session.client() as client:
        while True:
            page = client.get("keys", params={"limit": PAGE, "offset": len(found)})
            found.extend(page)
            if len(page) < PAGE:
                break
    if session.as_json:
        emit_json(found)
        return
    table(
        found,
        [
            ("id", lambda k: k["id"]),
            ("name", lambda k: k["name"]),
            ("kind", lambda k: KIND_NAMES.get(k["kind"], k["kind"]).removesuffix(" key")),
            ("owner", lambda k: k["owner"]["name"]),
            ("preview", lambda k: k["preview"]),
            ("state", lambda k: k["state"]),
            ("expires", lambda k: day(k["expires_at"])),
            ("last used", lambda k: day(k["last_used_at"], empty="never")),
        ],
        empty="No key.",
    )


class ExpiryType(click.ParamType):
    """A date (the end of that day, UTC, as in the console) or an ISO 8601 date and time."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        try:
            if len(text) == 10:
                moment = datetime.combine(date.fromisoformat(text), time.max, tzinfo=UTC)
            else:
                moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is not a date like 2027-01-31 (or 2027-01-31T12:00:00Z).")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.isoformat()


def _safe_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """Refuse, before anything is sent, a name the server would refuse (exit 2)."""
    problem = name_problem(value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value


def _reveal(session: Session, key: dict[str, Any], headline: str) -> None:
    """Print a new token once: the token alone on stdout, the rest on stderr."""
    if session.as_json:
        emit_json(key)
    else:
        click.echo(key["token"])
    click.echo(headline, err=True)
    click.echo(
        "This is the only time the key is shown: store it now, it will not be shown again.",
        err=True,
    )


@keys.command("create")
@click.option(
    "--name",
    required=True,
    callback=_safe_name,
    help="A name, unique among the owner's live keys.",
)
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    metavar="PERMISSION",
    help="A permission such as secrets:read; repeat it for several.",
)
@click.option(
    "--preset",
    type=click.Choice(["read-only", "all"]),
    help="read-only: the console's Read-only preset; all: every permission the key in use holds.",
)
@click.option(
    "--kind",
    type=click.Choice(["org", "project", "svc", "user"]),
    help="Organization, project, service-account or personal key. "
    "[default: personal with a personal key (as `keyportal login` gives), else organization]",
)
@click.option(
    "--owner-id",
    type=int,
    help="The project's or service account's id (project and svc keys).",
)
@click.option("--expires-at", type=ExpiryType(), help="When it expires. [default: never]")
@json_option
@click.pass_obj
def keys_create(
    session: Session,
    name: str,
    permissions: tuple[str, ...],
    preset: str | None,
    kind: str | None,
    owner_id: int | None,
    expires_at: str | None,
) -> None:
    """Create a key and print its token, once."""
    if bool(permissions) == bool(preset):
        raise click.UsageError("Give the permissions with --permission P (repeatable) or --preset.")
    with session.client() as client:
        me = client.get("whoami") if preset == "all" or kind is None else None
        if kind is None:
            kind = "user" if me["kind"] == "user" else "org"
        if preset == "all":
            # Nobody can give a key more than they hold: "all" is all the key in use holds.
            chosen = me["effective_permissions"]
        else:
            chosen = list(READ_ONLY) if preset == "read-only" else list(dict.fromkeys(permissions))
        body: dict[str, Any] = {"name": name, "kind": kind, "permissions": chosen}
        if owner_id is not None:
            body["owner_id"] = owner_id
        if expires_at is not None:
            body["expires_at"] = expires_at
        key = client.post("keys", json=body)
    kind_name = KIND_NAMES.get(key["kind"], key["kind"])
    _reveal(
        session,
        key,
        f"Created {kind_name} {key['id']} “{key['name']}” ({key['preview']}), "
        f"expires {when(key['expires_at'], empty='never')}.",
    )


@keys.command("rotate")
@click.argument("key_id", type=int)
@click.option(
    "--grace",
    type=click.Choice(list(GRACE)),
    default="now",
    show_default=True,
    help="How long the old secret keeps working.",
)
@json_option
@click.pass_obj
def keys_rotate(session: Session, key_id: int, grace: str) -> None:
    """Give a key a new secret and print it, once; the old one stops now or after --grace."""
    with session.client() as client:
        key = client.post(
            f"keys/{segment(key_id)}/rotate", json={"grace": grace}, what=f"Key {key_id}"
        )
        in_use = client.key
    _reveal(
        session,
        key,
        f"Rotated key {key['id']} “{key['name']}”: now {key['preview']}. {GRACE[grace]}",
    )
    stored = session.stored()
    if in_use is not None and in_use.source == "file" and stored and stored.get("key_id") == key_id:
        credentials.save({**stored, "api_key": key["token"]})
        click.echo(f"{credentials.shown_path()} now holds the new secret.", err=True)


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_obj
def keys_revoke(session: Session, key_id: int, yes: bool) -> None:
    """Revoke a key: it stops working at once, for good."""
    if not yes:
        click.confirm(
            f"Revoke key {key_id}? It stops working at once and cannot be restored.",
            abort=True,
            err=True,
        )
    with session.client() as client:
        key = client.post(f"keys/{segment(key_id)}/revoke", what=f"Key {key_id}")
    if session.as_json:
        emit_json(key)
        return
    click.echo(f"Revoked key {key['id']} “{key['name']}” ({key['preview']}).")
