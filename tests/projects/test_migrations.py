"""Data migrations of projects, run against a real schema at the state before them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("projects", "0004_origin_explorer"), ("accounts", "0004_origin_explorer")]
AFTER = [("projects", "0005_appversion_origin")]


def test_versions_published_earlier_take_their_origin_from_the_history():
    """Each earlier version gets the door its "app.published" row names; without one, API."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Organization = apps.get_model("accounts", "Organization")
    Team = apps.get_model("accounts", "Team")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    Project = apps.get_model("projects", "Project")
    App = apps.get_model("projects", "App")
    AppVersion = apps.get_model("projects", "AppVersion")
    org = Organization.objects.create(name="Acme", slug="acme-migration")
    project = Project.objects.create(
        organization=org, team=Team.objects.create(organization=org, name="T"), name="P"
    )
    app = App.objects.create(organization=org, project=project, name="Shop", slug="shop")
    other = App.objects.create(organization=org, project=project, name="Docs", slug="docs")

    def version(of, number):
        return AppVersion.objects.create(
            app=of, version=number, bundle="b.tar.gz", size=1, sha256="0" * 64, files=1
        )

    def published(of, number, origin):
        AuditEvent.objects.create(
            organization=org,
            actor_label="ci",
            origin=origin,
            action="app.published",
            target_type="app",
            target_id=str(of.pk),
            detail={"version": number},
        )

    by_cli, by_explorer, by_api, unrecorded = (
        version(app, 1),
        version(app, 2),
        version(app, 3),
        version(other, 1),
    )
    published(app, 1, "cli")
    published(app, 2, "explorer")
    published(app, 3, "api")
    published(other, 7, "cli")  # another version's row says nothing of this one

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    AppVersion = apps.get_model("projects", "AppVersion")

    origins = dict(AppVersion.objects.values_list("pk", "origin"))
    assert origins == {
        by_cli.pk: "cli",
        by_explorer.pk: "explorer",
        by_api.pk: "api",
        unrecorded.pk: "api",
    }
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
