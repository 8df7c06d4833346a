"""`keyportal environments`: the ids `secrets ... --environment ID` needs, with their places."""

from __future__ import annotations

from typing import Any

import click

from keyportal_cli.client import ApiClient
from keyportal_cli.commands import every
from keyportal_cli.errors import FORBIDDEN, CliError
from keyportal_cli.output import emit_json, table
from keyportal_cli.session import Session, json_option


def _names(client: ApiClient, area: str) -> dict[int, dict[str, Any]]:
    """Return the key's readable `area` by id; empty when the key may not read them."""
    try:
        return {item["id"]: item for item in every(client, area)}
    except CliError as exc:
        if exc.exit_code != FORBIDDEN:
            raise
        return {}


@click.command("environments")
@json_option
@click.pass_obj
def environments(session: Session) -> None:
    """List the environments the key can see, with their target and project."""
    with session.client() as client:
        found = every(client, "environments")
        if session.as_json:
            emit_json(found)
            return
        targets = _names(client, "targets")
        projects = _names(client, "projects")

    def target(env: dict[str, Any]) -> str:
        return targets.get(env["target_id"], {}).get("name", f"target {env['target_id']}")

    def project(env: dict[str, Any]) -> str:
        project_id = targets.get(env["target_id"], {}).get("project_id")
        return projects.get(project_id, {}).get("name", "-")

    table(
        sorted(found, key=lambda e: (project(e), target(e), e["name"], e["id"])),
        [
            ("id", lambda e: e["id"]),
            ("project", project),
            ("target", target),
            ("environment", lambda e: e["name"]),
        ],
        empty="No environment.",
    )
