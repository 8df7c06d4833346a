"""Helpers for the secrets tests: an environment in an organization, and a dump of every table."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.db import connection

from projects.models import Environment
from tests.conftest import Org
from tests.factories import EnvironmentFactory, ProjectFactory, TargetFactory, TeamFactory


def environment_in(org: Org, project: str = "Payments", name: str = "production") -> Environment:
    """Return a new environment `name` of target "web" of a new project in `org`."""
    team = TeamFactory(organization=org.organization)
    target = TargetFactory(project=ProjectFactory(team=team, name=project), name="web")
    return EnvironmentFactory(target=target, name=name)


def every_stored_value() -> list[str]:
    """Return every value of every row of every table in the database, as text."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                values.extend(
                    value.decode(errors="replace")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                    for value in row
                )
    # Sessions are signed and encoded: read them decoded too.
    values.extend(str(session.get_decoded()) for session in Session.objects.all())
    return values
