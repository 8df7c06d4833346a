"""The project hierarchy services: names unique per parent, history rows, cascading deletes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.access import Actor
from accounts.models import AuditEvent, Team
from projects.models import ApiKeyAccess, App, Environment, Project, Target
from projects.services import (
    app_create,
    environment_create,
    hierarchy_delete,
    hierarchy_rename,
    organization_of,
    project_create,
    target_create,
    team_create,
)
from tests.accounts.helpers import row_counts
from tests.factories import (
    AppFactory,
    EnvironmentFactory,
    ProjectFactory,
    TargetFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(org) -> Actor:
    return Actor(user=org.admin, ip="192.0.2.3")


@pytest.fixture
def project(org) -> Project:
    return ProjectFactory(team__organization=org.organization, name="Payments")


def test_team_create_records_history(org, actor):
    """Creating a team saves it and writes a "team.created" row."""
    team = team_create(actor=actor, organization=org.organization, name="Platform")
    event = AuditEvent.objects.get()
    assert (event.action, event.target_id, event.actor_user) == (
        "team.created",
        str(team.pk),
        org.admin,
    )
    assert (event.organization, event.ip_address, event.origin) == (
        org.organization,
        "192.0.2.3",
        "web",
    )


def test_each_create_writes_its_history_row(org, actor, project):
    """Projects, targets, environments and apps each record "<kind>.created"."""
    target = target_create(actor=actor, project=project, name="web")
    environment_create(actor=actor, target=target, name="production")
    project_create(actor=actor, team=project.team, name="Storefront")
    app_create(actor=actor, project=project, name="Payments API", slug="payments-api")
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {
        "target.created",
        "environment.created",
        "project.created",
        "app.created",
    }
    assert set(AuditEvent.objects.values_list("organization", flat=True)) == {org.organization.pk}


def test_project_takes_its_teams_organization(org, actor):
    """A project belongs to the organization of its team."""
    team = TeamFactory(organization=org.organization)
    assert project_create(actor=actor, team=team, name="P").organization == org.organization


def test_app_starts_with_no_api_key_access(org, actor, project):
    """A new app's sharing is "No access" until someone changes it."""
    app = app_create(actor=actor, project=project, name="Payments API", slug="payments-api")
    assert app.api_key_access == ApiKeyAccess.NO_ACCESS
    assert App.objects.get().api_key_access == "no_access"


@pytest.mark.parametrize(
    ("make", "create"),
    [
        (
            lambda o, p: TeamFactory(organization=o, name="Platform"),
            lambda a, o, p: team_create(actor=a, organization=o, name="PLATFORM"),
        ),
        (
            lambda o, p: p,
            lambda a, o, p: project_create(actor=a, team=p.team, name="payments"),
        ),
        (
            lambda o, p: TargetFactory(project=p, name="Web"),
            lambda a, o, p: target_create(actor=a, project=p, name="web"),
        ),
        (
            lambda o, p: EnvironmentFactory(target__project=p, target__name="web", name="Prod"),
            lambda a, o, p: environment_create(actor=a, target=p.targets.get(), name="PROD"),
        ),
    ],
    ids=["team", "project", "target", "environment"],
)
def test_duplicate_name_in_any_case_is_a_name_error(org, actor, project, make, create):
    """A name taken by a sibling, in any letter case, is a "name" error; nothing is saved."""
    make(org.organization, project)
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        create(actor, org.organization, project)
    assert "already exists" in error.value.message_dict["name"][0]
    assert row_counts() == before


def test_same_name_under_another_parent_is_fine(org, other_org, actor, project):
    """Names are unique per parent only: another project or organization may reuse them."""
    target_create(actor=actor, project=project, name="web")
    other = ProjectFactory(team__organization=org.organization, name="Storefront")
    target_create(actor=actor, project=other, name="web")
    web = other.targets.get()
    environment_create(actor=actor, target=web, name="production")
    environment_create(actor=actor, target=project.targets.get(), name="production")
    team_create(actor=actor, organization=other_org.organization, name=project.team.name)
    assert Target.objects.filter(name="web").count() == 2
    assert Environment.objects.filter(name="production").count() == 2


def test_duplicate_app_slug_is_a_slug_error(org, actor, project):
    """An app slug already used in the organization is a "slug" error; nothing is saved."""
    AppFactory(project=project, slug="payments-api")
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        app_create(actor=actor, project=project, name="Another", slug="payments-api")
    assert error.value.message_dict["slug"] == [
        "An app with the slug “payments-api” already exists in this organization."
    ]
    assert row_counts() == before


def test_app_slug_may_repeat_across_organizations(org, other_org, actor, project):
    """Another organization may use the same app slug."""
    AppFactory(project__team__organization=other_org.organization, slug="payments-api")
    app = app_create(actor=actor, project=project, name="Payments API", slug="payments-api")
    assert app.organization == org.organization


def test_rename_records_the_previous_name(org, actor, project):
    """Renaming saves the new name and records the old one."""
    hierarchy_rename(actor=actor, obj=project, name="Billing")
    project.refresh_from_db()
    assert project.name == "Billing"
    event = AuditEvent.objects.get(action="project.renamed")
    assert event.detail == {"from": "Payments"}
    assert event.target_label == "Billing"


def test_rename_to_a_taken_name_keeps_the_old_one(org, actor, project):
    """A rename to a sibling's name is refused; the old name stays in memory and in the database."""
    ProjectFactory(team=project.team, name="Storefront")
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        hierarchy_rename(actor=actor, obj=project, name="storefront")
    assert "name" in error.value.message_dict
    assert project.name == "Payments"
    project.refresh_from_db()
    assert project.name == "Payments"
    assert row_counts() == before


def test_renaming_to_another_case_of_the_same_name_works(org, actor, project):
    """An object can be renamed to a different letter case of its own name."""
    hierarchy_rename(actor=actor, obj=project, name="PAYMENTS")
    project.refresh_from_db()
    assert project.name == "PAYMENTS"


def test_delete_team_cascades_and_records(org, actor):
    """Deleting a team deletes its projects, targets, environments and apps, with one row."""
    team = TeamFactory(organization=org.organization, name="Platform")
    environment = EnvironmentFactory(target__project__team=team)
    AppFactory(project=environment.target.project)
    team_id = team.pk
    hierarchy_delete(actor=actor, obj=team)

    assert not Team.objects.filter(pk=team_id).exists()
    assert (
        Project.objects.count(),
        Target.objects.count(),
        Environment.objects.count(),
        App.objects.count(),
    ) == (0, 0, 0, 0)
    event = AuditEvent.objects.get(action="team.deleted")
    assert (event.target_id, event.target_label) == (str(team_id), "Platform")


@pytest.mark.parametrize("kind", ["target", "environment", "app"])
def test_delete_records_in_the_right_organization(org, actor, kind):
    """Deleting a nested object records the row in the object's organization."""
    environment = EnvironmentFactory(target__project__team__organization=org.organization)
    obj = {
        "target": environment.target,
        "environment": environment,
        "app": AppFactory(project=environment.target.project),
    }[kind]
    assert organization_of(obj) == org.organization
    pk = obj.pk
    hierarchy_delete(actor=actor, obj=obj)
    event = AuditEvent.objects.get(action=f"{kind}.deleted")
    assert (event.organization, event.target_id) == (org.organization, str(pk))
    assert not type(obj).objects.filter(pk=pk).exists()


def test_rename_does_not_overwrite_other_fields(org, actor, project):
    """A rename writes only the name: a sharing change made meanwhile is kept."""
    app = AppFactory(project=project, api_key_access=ApiKeyAccess.CAN_EDIT)
    stale = App.objects.get(pk=app.pk)
    App.objects.filter(pk=app.pk).update(api_key_access=ApiKeyAccess.NO_ACCESS)

    hierarchy_rename(actor=actor, obj=stale, name="Renamed")

    app.refresh_from_db()
    assert app.name == "Renamed"
    assert app.api_key_access == ApiKeyAccess.NO_ACCESS


def test_duplicate_messages_are_grammatical(org, actor, project):
    """Duplicate messages read "An environment" and "An app"."""
    AppFactory(project=project, slug="payments-api")
    with pytest.raises(ValidationError) as error:
        app_create(actor=actor, project=project, name="Another", slug="payments-api")
    assert error.value.message_dict["slug"][0].startswith("An app ")
