"""Renaming and deleting teams, projects, targets, environments and apps."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import models
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, Team
from projects.models import App, Environment, Project, Target
from tests.accounts.helpers import page_text, row_counts
from tests.factories import (
    AppFactory,
    EnvironmentFactory,
    ProjectFactory,
    TargetFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

KINDS = ["teams", "projects", "targets", "environments", "apps"]
MODEL_OF = {
    "teams": Team,
    "projects": Project,
    "targets": Target,
    "environments": Environment,
    "apps": App,
}


@dataclass
class Tree:
    team: Team
    project: Project
    target: Target
    environment: Environment
    app: App

    def of(self, kind: str) -> models.Model:
        return {
            "teams": self.team,
            "projects": self.project,
            "targets": self.target,
            "environments": self.environment,
            "apps": self.app,
        }[kind]


def make_tree(organization) -> Tree:
    team = TeamFactory(organization=organization, name="Platform")
    project = ProjectFactory(team=team, name="Payments")
    target = TargetFactory(project=project, name="web")
    environment = EnvironmentFactory(target=target, name="production")
    app = AppFactory(project=project, name="Payments API", slug="payments-api")
    return Tree(team, project, target, environment, app)


@pytest.fixture
def tree(org) -> Tree:
    """Return one of each kind of object in Acme."""
    return make_tree(org.organization)


def rename_url(kind: str, obj: models.Model, org: str = "acme") -> str:
    return reverse("rename", kwargs={"org": org, "kind": kind, "pk": obj.pk})


def delete_url(kind: str, obj: models.Model, org: str = "acme") -> str:
    return reverse("delete", kwargs={"org": org, "kind": kind, "pk": obj.pk})


# Rename --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_rename_page_shows_the_current_name(client_for, org, tree, kind):
    """The rename page holds the current name."""
    response = client_for(org.admin).get(rename_url(kind, tree.of(kind)))
    assert response.status_code == 200
    assert f'value="{tree.of(kind).name}"' in page_text(response)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ["owner", "admin"])
def test_rename(client_for, org, tree, kind, role):
    """Owners and admins rename each kind; the change is recorded with the old name."""
    obj = tree.of(kind)
    old_name = obj.name
    response = client_for(getattr(org, role)).post(
        rename_url(kind, obj), {"name": "Renamed"}, REMOTE_ADDR="192.0.2.8"
    )
    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.name == "Renamed"
    event = AuditEvent.objects.get(action__endswith=".renamed")
    assert event.detail == {"from": old_name}
    assert (event.actor_user, event.origin, event.ip_address) == (
        getattr(org, role),
        "web",
        "192.0.2.8",
    )
    assert event.target_id == str(obj.pk)
    assert event.organization == org.organization


def test_rename_keeps_the_app_slug_and_sharing(client_for, org, tree):
    """Renaming an app changes only its name."""
    client_for(org.owner).post(rename_url("apps", tree.app), {"name": "Billing API"})
    tree.app.refresh_from_db()
    assert (tree.app.name, tree.app.slug, tree.app.api_key_access) == (
        "Billing API",
        "payments-api",
        "no_access",
    )


@pytest.mark.parametrize(
    ("kind", "sibling", "where"),
    [
        (
            "teams",
            lambda t: TeamFactory(organization=t.team.organization, name="Data"),
            "organization",
        ),
        ("projects", lambda t: ProjectFactory(team=t.team, name="Data"), "organization"),
        ("targets", lambda t: TargetFactory(project=t.project, name="Data"), "project"),
        (
            "environments",
            lambda t: EnvironmentFactory(target=t.target, name="Data"),
            "target",
        ),
    ],
)
def test_rename_to_a_siblings_name_is_a_field_error(client_for, org, tree, kind, sibling, where):
    """A rename to a sibling's name in any case is refused next to the field; nothing changes."""
    sibling(tree)
    obj = tree.of(kind)
    old_name = obj.name
    before = row_counts()
    response = client_for(org.owner).post(rename_url(kind, obj), {"name": "DATA"})

    assert response.status_code == 422
    text = page_text(response)
    assert 'id="id_name_error">' in text
    assert f"with the name “DATA” already exists in this {where}." in text
    assert 'value="DATA"' in text
    obj.refresh_from_db()
    assert obj.name == old_name
    assert row_counts() == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Name is required."),
        ("r" * 101, "Name must be at most 100 characters."),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_rename_to_a_bad_name_is_a_field_error(client_for, org, tree, kind, name, message):
    """Empty and 101-character names are refused next to the field; nothing changes."""
    obj = tree.of(kind)
    old_name = obj.name
    before = row_counts()
    response = client_for(org.owner).post(rename_url(kind, obj), {"name": name})
    assert response.status_code == 422
    text = page_text(response)
    assert f'id="id_name_error">{message}' in text
    if name:
        assert f'value="{name}"' in text
    obj.refresh_from_db()
    assert obj.name == old_name
    assert row_counts() == before


def test_rename_heading_keeps_the_saved_name_after_an_error(client_for, org, tree):
    """After a refused rename the page still names the object by its saved name."""
    TeamFactory(organization=org.organization, name="Data")
    response = client_for(org.owner).post(rename_url("teams", tree.team), {"name": "Data"})
    assert "Rename team “Platform”" in page_text(response)


# Delete --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_delete_asks_for_confirmation(client_for, org, tree, kind):
    """A GET on the delete page shows a confirmation and deletes nothing."""
    before = row_counts()
    response = client_for(org.admin).get(delete_url(kind, tree.of(kind)))
    assert response.status_code == 200
    assert f"“{tree.of(kind).name}”?" in page_text(response)
    assert row_counts() == before


@pytest.mark.parametrize(
    ("kind", "gone"),
    [
        ("teams", {"Team": 1, "Project": 1, "Target": 1, "Environment": 1, "App": 1}),
        ("projects", {"Project": 1, "Target": 1, "Environment": 1, "App": 1}),
        ("targets", {"Target": 1, "Environment": 1}),
        ("environments", {"Environment": 1}),
        ("apps", {"App": 1}),
    ],
)
@pytest.mark.parametrize("role", ["owner", "admin"])
def test_delete_cascades_and_records(client_for, org, tree, kind, gone, role):
    """Deleting removes the object and everything under it, with one history row."""
    obj = tree.of(kind)
    pk = obj.pk
    before = row_counts()
    response = client_for(getattr(org, role)).post(delete_url(kind, obj))

    assert response.status_code == 302
    after = row_counts()
    expected = {name: count - gone.get(name, 0) for name, count in before.items()}
    expected["AuditEvent"] += 1
    assert after == expected
    event = AuditEvent.objects.get()
    assert event.action == f"{MODEL_OF[kind]._meta.verbose_name}.deleted"
    assert (event.target_id, event.actor_user, event.origin) == (
        str(pk),
        getattr(org, role),
        "web",
    )


def test_delete_redirects_to_the_parent(client_for, org, tree):
    """After deleting a target the person is back on its project's page."""
    response = client_for(org.owner).post(delete_url("targets", tree.target))
    assert response.url == reverse("project_detail", kwargs={"org": "acme", "pk": tree.project.pk})


# Who may -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_member_cannot_rename_or_delete(client_for, org, tree, kind):
    """Members get 403 on rename and delete, GET or POST, and nothing changes."""
    client = client_for(org.member)
    obj = tree.of(kind)
    before = row_counts()
    for url in (rename_url(kind, obj), delete_url(kind, obj)):
        assert client.get(url).status_code == 403
        assert client.post(url, {"name": "Renamed"}).status_code == 403
    obj.refresh_from_db()
    assert obj.name != "Renamed"
    assert row_counts() == before


@pytest.mark.parametrize("kind", KINDS)
def test_another_organizations_objects_are_404(client_for, org, other_org, tree, kind):
    """Acme's owner gets 404 for Globex's objects and changes nothing."""
    theirs = make_tree(other_org.organization).of(kind)
    client = client_for(org.owner)
    before = row_counts()
    for url in (rename_url(kind, theirs), delete_url(kind, theirs)):
        assert client.get(url).status_code == 404
        assert client.post(url, {"name": "Renamed"}).status_code == 404
    assert row_counts() == before


def test_unknown_kind_is_404(client_for, org, tree):
    """A kind that is not part of the hierarchy is 404."""
    url = f"/o/acme/members/{tree.team.pk}/delete/"
    assert client_for(org.owner).post(url).status_code == 404
    assert Team.objects.filter(pk=tree.team.pk).exists()


def test_anonymous_is_sent_to_login(tree):
    """Anonymous people are sent to log in."""
    response = Client().post(delete_url("teams", tree.team))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert Team.objects.filter(pk=tree.team.pk).exists()


def test_delete_without_csrf_is_refused(org, tree):
    """A delete POST without the CSRF token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.owner)
    assert client.post(delete_url("teams", tree.team)).status_code == 403
    assert Team.objects.filter(pk=tree.team.pk).exists()
