"""`keyportal app list` and `keyportal app publish`."""

from __future__ import annotations

from typing import Any

import click

from keyportal_cli.bundle import pack
from keyportal_cli.client import ApiClient, segment
from keyportal_cli.commands import every
from keyportal_cli.errors import NOT_FOUND, USAGE, CliError
from keyportal_cli.output import day, emit_json, plural, size, table
from keyportal_cli.session import Session, json_option

SHARING_HINT = (
    'Apps whose sharing gives API keys "No access" are not listed: an owner or admin must set '
    'the app\'s sharing to "Can edit".'
)


@click.group("app")
def app() -> None:
    """List apps and publish their versions."""


@app.command("list")
@json_option
@click.pass_obj
def app_list(session: Session) -> None:
    """List the apps API keys may touch (sharing "Can edit")."""
    with session.client() as client:
        apps = every(client, "apps")
    if session.as_json:
        emit_json(apps)
        return
    table(
        apps,
        [
            ("id", lambda a: a["id"]),
            ("name", lambda a: a["name"]),
            ("slug", lambda a: a["slug"]),
            ("project", _project),
            ("created", lambda a: day(a["created_at"])),
        ],
        empty=f"No app. {SHARING_HINT}",
    )


def _project(app: dict[str, Any]) -> str:
    """Return the app's project by name (by id from a server that does not send the name)."""
    return str(app.get("project_name") or app["project_id"])


def _find(client: ApiClient, name: str) -> dict[str, Any]:
    """Return the app called `name` (exactly, ignoring case; else by slug) among those listed."""
    apps = every(client, "apps")
    wanted = name.strip().casefold()
    found = [a for a in apps if a["name"].casefold() == wanted] or [
        a for a in apps if a["slug"].casefold() == wanted
    ]
    if not found:
        raise CliError(
            f"No app named “{name}” is reachable with this key. {SHARING_HINT}", NOT_FOUND
        )
    if len(found) > 1:
        ids = ", ".join(f"{a['id']} (project {_project(a)})" for a in found)
        raise CliError(f"Several apps are named “{name}”: {ids}; pass one with --id.", USAGE)
    return found[0]


@app.command("publish")
@click.option("--name", help="The app's name (or slug), as `keyportal app list` shows it.")
@click.option("--id", "app_id", type=int, help="The app's id, instead of its name.")
@click.option(
    "--path",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(exists=True, file_okay=False, dir_okay=True),
    help="The folder to pack and publish (.git is left out).",
)
@json_option
@click.pass_obj
def app_publish(session: Session, name: str | None, app_id: int | None, directory: str) -> None:
    """Pack a folder as a .tar.gz (10 MB at most) and publish it as the app's next version."""
    if (name is None) == (app_id is None):
        raise click.UsageError("Name the app with --name NAME or --id ID.")
    with session.client() as client:
        if app_id is None:
            found = _find(client, name or "")
        else:
            found = client.get(f"apps/{segment(app_id)}", what=f"App {app_id}")
        bundle = pack(directory)
        version = client.post(
            f"apps/{segment(found['id'])}/versions",
            files={"bundle": (f"{found['slug']}.tar.gz", bundle.data, "application/gzip")},
            what=f"App {found['id']}",
        )
    if session.as_json:
        emit_json(version)
        return
    files = plural(version["files"], "file")
    click.echo(
        f"Published {found['name']} version {version['version']}: {files}, "
        f"{size(version['size'])} (sha256 {version['sha256'][:12]}...)."
    )
