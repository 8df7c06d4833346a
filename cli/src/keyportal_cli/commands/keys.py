"""`keyportal keys list|create|protect|rotate|revoke`: keys of the organization
(api-keys:manage).

Only `create` and `rotate` ever print a key's token: alone on stdout, so that
`TOKEN=$(keyportal keys create ...)` catches it, with what to know about it on stderr.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import click

from keyportal_cli import credentials
from keyportal_cli.client import segment
from keyportal_cli.commands import every
from keyportal_cli.names import name_problem
from keyportal_cli.output import day, emit_json, table, when
from keyportal_cli.session import KIND_NAMES, Session, json_option

# The console's "Read-only" preset (apikeys/permissions.py READ_ONLY; a test keeps them equal).
READ_ONLY = (
    "secrets:read",
    "projects:read",
    "targets:read",
    "environments:read",
    "organization:read",
)
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
    with session.client() as client:
        found = every(client, "keys")
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


class RateLimitType(click.ParamType):
    """A rate limit as `COUNT/WINDOW`: 100/minute, 10000/day (s, m, h, d for short)."""

    name = "COUNT/WINDOW"
    UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        count, _, unit = str(value).strip().partition("/")
        unit = self.UNITS.get(unit, unit)
        if unit not in self.UNITS.values() or not count.isdigit() or int(count) < 1:
            self.fail(
                f"{value!r} is not a rate limit like 100/minute: a count of at least 1, then "
                "second, minute, hour or day."
            )
        return {"limit": int(count), "window": unit}


def protection_options(command: Any) -> Any:
    """Add the options that narrow a key beyond its permissions (`keys create`, `protect`)."""
    options = [
        click.option(
            "--allow-ip",
            "allow_ips",
            multiple=True,
            metavar="ADDRESS",
            help="An address or CIDR range the key works from (IPv4 or IPv6); repeat it for "
            "several. Requests from anywhere else get 403 ip_not_allowed.",
        ),
        click.option(
            "--rate-limit",
            "rate_limits",
            multiple=True,
            type=RateLimitType(),
            help="At most COUNT requests per WINDOW (second, minute, hour, day), such as "
            "100/minute; repeat it for several windows.",
        ),
        click.option(
            "--budget",
            type=click.IntRange(min=0),
            help="The number of requests the key may make (then 403 usage_exhausted).",
        ),
        click.option(
            "--refill",
            type=click.Choice(["daily", "monthly"]),
            help="Refill the budget every day or month (UTC), to --refill-amount.",
        ),
        click.option(
            "--refill-amount", type=click.IntRange(min=1), help="What each refill sets it to."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _budget(budget: int | None, refill: str | None, refill_amount: int | None) -> dict | None:
    """Return the budget to send, or None; refuse a refill without its parts (exit 2)."""
    if budget is None:
        if refill or refill_amount:
            raise click.UsageError("--refill and --refill-amount go with --budget N.")
        return None
    if bool(refill) != bool(refill_amount):
        raise click.UsageError("Give --refill and --refill-amount together.")
    return {"amount": budget, "refill": refill, "refill_amount": refill_amount}


def _protections_said(key: dict[str, Any]) -> str:
    """Return the key's protections in words, or "" when it has none."""
    parts = []
    if key.get("allowed_ips"):
        parts.append("works only from " + ", ".join(key["allowed_ips"]))
    if key.get("rate_limits"):
        parts.append(
            "at most "
            + " and ".join(f"{w['limit']:,} per {w['window']}" for w in key["rate_limits"])
        )
    if key.get("budget"):
        found = key["budget"]
        text = f"a budget of {found['amount']:,} requests"
        if found.get("refill"):
            text += f", refilled {found['refill']} to {found['refill_amount']:,}"
        parts.append(text)
    return "; ".join(parts)


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
@protection_options
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
    allow_ips: tuple[str, ...],
    rate_limits: tuple[dict[str, Any], ...],
    budget: int | None,
    refill: str | None,
    refill_amount: int | None,
) -> None:
    """Create a key and print its token, once.

    Without --rate-limit, the key starts with the organization policy's default rate limit
    for its kind, if there is one."""
    if bool(permissions) == bool(preset):
        raise click.UsageError("Give the permissions with --permission P (repeatable) or --preset.")
    chosen_budget = _budget(budget, refill, refill_amount)
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
        if allow_ips:
            body["allowed_ips"] = list(allow_ips)
        if rate_limits:
            body["rate_limits"] = list(rate_limits)
        if chosen_budget is not None:
            body["budget"] = chosen_budget
        key = client.post("keys", json=body)
    kind_name = KIND_NAMES.get(key["kind"], key["kind"])
    protections = _protections_said(key)
    _reveal(
        session,
        key,
        f"Created {kind_name} {key['id']} “{key['name']}” ({key['preview']}), "
        f"expires {when(key['expires_at'], empty='never')}."
        + (f" It {protections}." if protections else ""),
    )


@keys.command("protect")
@click.argument("key_id", type=int)
@protection_options
@click.option("--any-ip", is_flag=True, help="Remove the IP allowlist: work from anywhere.")
@click.option("--no-rate-limit", is_flag=True, help="Remove every rate limit.")
@click.option("--no-budget", is_flag=True, help="Remove the usage budget.")
@json_option
@click.pass_obj
def keys_protect(
    session: Session,
    key_id: int,
    allow_ips: tuple[str, ...],
    rate_limits: tuple[dict[str, Any], ...],
    budget: int | None,
    refill: str | None,
    refill_amount: int | None,
    any_ip: bool,
    no_rate_limit: bool,
    no_budget: bool,
) -> None:
    """Set a key's IP allowlist, rate limits or usage budget; what is not given stays.

    Each option given replaces that protection: --allow-ip (repeatable) the whole allowlist,
    --rate-limit every window, --budget the budget, whose count starts again from N."""
    chosen_budget = _budget(budget, refill, refill_amount)
    for given, removed, what in (
        (allow_ips, any_ip, "--allow-ip and --any-ip"),
        (rate_limits, no_rate_limit, "--rate-limit and --no-rate-limit"),
        (chosen_budget, no_budget, "--budget and --no-budget"),
    ):
        if given and removed:
            raise click.UsageError(f"Give one of {what}, not both.")
    body: dict[str, Any] = {}
    if allow_ips or any_ip:
        body["allowed_ips"] = list(allow_ips)
    if rate_limits or no_rate_limit:
        body["rate_limits"] = list(rate_limits)
    if chosen_budget is not None or no_budget:
        body["budget"] = chosen_budget
    if not body:
        raise click.UsageError(
            "Say what to change: --allow-ip, --rate-limit, --budget, --any-ip, --no-rate-limit "
            "or --no-budget."
        )
    with session.client() as client:
        key = client.request("PATCH", f"keys/{segment(key_id)}", json=body, what=f"Key {key_id}")
    if session.as_json:
        emit_json(key)
        return
    protections = _protections_said(key) or "works from anywhere, without limits"
    click.echo(f"Key {key['id']} “{key['name']}” ({key['preview']}) now {protections}.")


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
