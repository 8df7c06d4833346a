"""`keyportal secrets list|get|set` in one environment."""

from __future__ import annotations

import sys

import click

from keyportal_cli.client import segment
from keyportal_cli.commands import every
from keyportal_cli.output import emit_json, table, when
from keyportal_cli.session import Session, json_option

environment_option = click.option(
    "--environment",
    "-e",
    "environment_id",
    type=click.IntRange(min=1),
    required=True,
    metavar="ID",
    help="The environment's id.",
)


def _base(environment_id: int) -> str:
    return f"environments/{segment(environment_id)}/secrets"


@click.group("secrets")
def secrets() -> None:
    """List, read and set the secrets of an environment."""


@secrets.command("list")
@environment_option
@json_option
@click.pass_obj
def secrets_list(session: Session, environment_id: int) -> None:
    """List the secrets' names and versions (never their values)."""
    with session.client() as client:
        found = every(client, _base(environment_id), what=f"Environment {environment_id}")
    if session.as_json:
        emit_json(found)
        return
    table(
        found,
        [
            ("name", lambda s: s["name"]),
            ("version", lambda s: s["version"]),
            ("updated", lambda s: when(s["updated_at"])),
        ],
        empty=f"No secret in environment {environment_id}.",
    )


@secrets.command("get")
@click.argument("name")
@environment_option
@click.option("--version", type=click.IntRange(min=1), help="An older version. [default: current]")
@json_option
@click.pass_obj
def secrets_get(session: Session, name: str, environment_id: int, version: int | None) -> None:
    """Print a secret's value alone, for `$(keyportal secrets get NAME -e ID)`.

    The value ends with a newline only on a terminal, so `> file` writes it exactly.
    """
    params = {"version": version} if version else None
    with session.client() as client:
        found = client.get(
            f"{_base(environment_id)}/{segment(name)}",
            params=params,
            what=f"Secret {name}{f' version {version}' if version else ''} "
            f"in environment {environment_id}",
        )
    if session.as_json:
        emit_json(found)
        return
    click.echo(found["value"], nl=sys.stdout.isatty())


@secrets.command("set")
@click.argument("name")
@environment_option
@click.option("--value", help="The value. Visible to other processes: prefer --from-stdin.")
@click.option(
    "--from-stdin",
    is_flag=True,
    help="Read the value from stdin (one trailing newline, as `echo` adds, is dropped).",
)
@json_option
@click.pass_obj
def secrets_set(
    session: Session, name: str, environment_id: int, value: str | None, from_stdin: bool
) -> None:
    """Set a secret's value: a new version each time. Asks for it when neither option is given."""
    if value is not None and from_stdin:
        raise click.UsageError("Give the value with --value or --from-stdin, not both.")
    if from_stdin:
        value = sys.stdin.read()
        value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    elif value is None:
        if not sys.stdin.isatty():
            raise click.UsageError("Give the value with --value or --from-stdin.")
        value = click.prompt(f"Value of {name}", hide_input=True, err=True)
    with session.client() as client:
        saved = client.put(
            f"{_base(environment_id)}/{segment(name)}",
            json={"value": value},
            what=f"Environment {environment_id}",
        )
    if session.as_json:
        emit_json(saved)
        return
    created = "Created" if saved["version"] == 1 else "Set"
    click.echo(
        f"{created} {saved['name']} in environment {environment_id}: version {saved['version']}."
    )
