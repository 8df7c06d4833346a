"""Console pages that list and create teams, projects, targets, environments and apps."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, Team
from projects.models import ApiKeyAccess, App, Environment, Project, Target
from tests.accounts.helpers import is_fragment, page_text, row_counts, toasts
from tests.factories import AppFactory, ProjectFactory, TargetFactory, TeamFactory

pytestmark = pytest.mark.django_db

TEAMS_URL = reverse("team_list", kwargs={"org": "acme"})
PROJECTS_URL = reverse("project_list", kwargs={"org": "acme"})
APPS_URL = reverse("app_list", kwargs={"org": "acme"})
LONG_NAME = "n" * 101


def project_url(project: Project, org: str = "acme") -> str:
    return reverse("project_detail", kwargs={"org": org, "pk": project.pk})


def environment_url(target: Target) -> str:
    return reverse("environment_create", kwargs={"org": "acme", "pk": target.pk})


@pytest.fixture
def team(org) -> Team:
    return TeamFactory(organization=org.organization, name="Platform")


@pytest.fixture
def project(team) -> Project:
    return ProjectFactory(team=team, name="Payments")


@pytest.fixture
def target(project) -> Target:
    return TargetFactory(project=project, name="web")


# Who sees what -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [TEAMS_URL, PROJECTS_URL, APPS_URL])
def test_anonymous_is_sent_to_login(db, url):
    """Anonymous people are sent to log in."""
    response = Client().get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("url", [TEAMS_URL, PROJECTS_URL, APPS_URL])
def test_outsiders_get_404(client_for, org, outsider, other_org, url):
    """People outside Acme, in another organization or none, get 404."""
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(other_org.owner).get(url).status_code == 404


def test_member_sees_lists_without_create_forms(client_for, org, target):
    """Members see teams, projects, targets and apps but no create or edit controls."""
    AppFactory(project=target.project, name="Payments API", slug="payments-api")
    client = client_for(org.member)
    pages = {
        TEAMS_URL: ("Platform", "New team"),
        PROJECTS_URL: ("Payments", "New project"),
        APPS_URL: ("Payments API", "New app"),
        project_url(target.project): ("web", "New target"),
    }
    for url, (shown, form_title) in pages.items():
        response = client.get(url)
        assert response.status_code == 200
        text = page_text(response)
        assert shown in text
        assert form_title not in text
        assert "/rename/" not in text
        assert "/delete/" not in text
    assert "Add environment" not in page_text(client.get(project_url(target.project)))


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_see_create_forms(client_for, org, target, role):
    """Owners and admins get the create forms."""
    client = client_for(getattr(org, role))
    assert "New team" in page_text(client.get(TEAMS_URL))
    assert "New project" in page_text(client.get(PROJECTS_URL))
    assert "New app" in page_text(client.get(APPS_URL))
    detail = page_text(client.get(project_url(target.project)))
    assert "New target" in detail
    assert "Add environment" in detail


def test_project_of_another_organization_is_404(client_for, org, other_org):
    """A project of Globex is 404 through Acme's URL."""
    theirs = ProjectFactory(team__organization=other_org.organization)
    response = client_for(org.owner).get(project_url(theirs))
    assert response.status_code == 404


def test_member_posts_are_refused_and_change_nothing(client_for, org, target):
    """Members get 403 on every create POST and nothing is saved."""
    client = client_for(org.member)
    before = row_counts()
    posts = [
        (TEAMS_URL, {"name": "New"}),
        (PROJECTS_URL, {"name": "New", "team": target.project.team_id}),
        (APPS_URL, {"name": "New", "project": target.project_id}),
        (project_url(target.project), {"target-name": "new"}),
        (environment_url(target), {"environment-name": "new"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert row_counts() == before


@pytest.mark.parametrize("url", [TEAMS_URL, PROJECTS_URL, APPS_URL])
def test_htmx_get_returns_only_the_fragment(client_for, org, team, htmx_headers, url):
    """An htmx request for a list page gets only its fragment."""
    response = client_for(org.member).get(url, headers=htmx_headers)
    assert response.status_code == 200
    assert is_fragment(response)


def test_create_without_csrf_is_refused(org):
    """A create POST without the CSRF token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.owner)
    before = row_counts()
    assert client.post(TEAMS_URL, {"name": "Platform"}).status_code == 403
    assert row_counts() == before


# Teams ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_create_team(client_for, org, role):
    """Owners and admins create a team; it is recorded with actor, origin and address."""
    response = client_for(getattr(org, role)).post(
        TEAMS_URL, {"name": "  Platform  "}, REMOTE_ADDR="192.0.2.4"
    )
    assert response.status_code == 302
    assert response.url == TEAMS_URL
    team = Team.objects.get(organization=org.organization, name="Platform")
    event = AuditEvent.objects.get(action="team.created")
    assert (event.actor_user, event.target_id) == (getattr(org, role), str(team.pk))
    assert (event.origin, event.ip_address) == ("web", "192.0.2.4")


def test_create_team_with_htmx_returns_the_fragment(client_for, org, htmx_headers):
    """An htmx create returns the list fragment with the new team and an empty form."""
    response = client_for(org.owner).post(TEAMS_URL, {"name": "Platform"}, headers=htmx_headers)
    assert response.status_code == 200
    assert is_fragment(response)
    text = page_text(response)
    assert text.lstrip().startswith('<div id="team-list">')
    assert "<strong>Platform</strong>" in text
    assert 'value="Platform"' not in text
    assert any("Team “Platform” created." in t for t in toasts(response))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Name is required."),
        ("   ", "Name is required."),
        (LONG_NAME, "Name must be at most 100 characters."),
        ("platform", "A team with the name “platform” already exists in this organization."),
        ("PLATFORM", "A team with the name “PLATFORM” already exists in this organization."),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_team_name_saves_nothing(client_for, org, team, htmx_headers, name, message, htmx):
    """Bad team names get a message next to the field, keep what was typed, and save nothing."""
    before = row_counts()
    response = client_for(org.admin).post(
        TEAMS_URL, {"name": name}, headers=htmx_headers if htmx else {}
    )
    assert response.status_code == 422
    assert is_fragment(response) == htmx
    text = page_text(response)
    assert f'id="id_name_error">{message}' in text
    if name.strip():
        assert f'value="{name}"' in text
    assert row_counts() == before


def test_team_names_are_unique_per_organization_only(client_for, org, other_org):
    """Another organization's team name may be reused."""
    TeamFactory(organization=other_org.organization, name="Platform")
    client_for(org.owner).post(TEAMS_URL, {"name": "Platform"})
    assert Team.objects.filter(name="Platform").count() == 2


def test_team_names_are_unique_ignoring_case_beyond_ascii(client_for, org):
    """A team name that differs only in the case of an accented letter is refused."""
    client = client_for(org.owner)
    client.post(TEAMS_URL, {"name": "Équipe"})
    response = client.post(TEAMS_URL, {"name": "équipe"})
    assert response.status_code == 422
    assert Team.objects.filter(organization=org.organization).count() == 1


# Projects ------------------------------------------------------------------------------------


def test_create_project(client_for, org, team):
    """Creating a project puts it in the chosen team and opens its page."""
    response = client_for(org.admin).post(PROJECTS_URL, {"name": "Payments", "team": team.pk})
    project = Project.objects.get()
    assert (project.name, project.team, project.organization) == (
        "Payments",
        team,
        org.organization,
    )
    assert response.status_code == 302
    assert response.url == project_url(project)
    assert AuditEvent.objects.filter(action="project.created").count() == 1


def test_create_project_with_htmx_returns_the_fragment(client_for, org, team, htmx_headers):
    """An htmx project create returns the list fragment with the new project."""
    response = client_for(org.owner).post(
        PROJECTS_URL, {"name": "Payments", "team": team.pk}, headers=htmx_headers
    )
    assert response.status_code == 200
    assert is_fragment(response)
    project = Project.objects.get()
    assert project_url(project) in page_text(response)


@pytest.mark.parametrize("team_value", ["other", "999999", "abc", ""])
def test_project_in_a_team_not_of_this_organization_is_a_field_error(
    client_for, org, other_org, team, team_value
):
    """Another organization's team, a made-up id or none is refused next to the team field."""
    theirs = TeamFactory(organization=other_org.organization)
    value = str(theirs.pk) if team_value == "other" else team_value
    before = row_counts()
    response = client_for(org.owner).post(PROJECTS_URL, {"name": "Payments", "team": value})

    assert response.status_code == 422
    text = page_text(response)
    assert 'id="id_team_error">' in text
    assert 'value="Payments"' in text
    assert row_counts() == before
    assert not Project.objects.filter(team=theirs).exists()


def test_other_organizations_teams_are_not_offered(client_for, org, other_org, team):
    """The team select lists only this organization's teams."""
    theirs = TeamFactory(organization=other_org.organization, name="Their Secret Team")
    text = page_text(client_for(org.owner).get(PROJECTS_URL))
    assert f'value="{team.pk}"' in text
    assert theirs.name not in text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Name is required."),
        (LONG_NAME, "Name must be at most 100 characters."),
        ("PAYMENTS", "A project with the name “PAYMENTS” already exists in this organization."),
    ],
)
def test_bad_project_name_saves_nothing(client_for, org, project, name, message):
    """Bad project names get a message next to the field and save nothing."""
    before = row_counts()
    response = client_for(org.owner).post(PROJECTS_URL, {"name": name, "team": project.team_id})
    assert response.status_code == 422
    text = page_text(response)
    assert f'id="id_name_error">{message}' in text
    if name:
        assert f'value="{name}"' in text
    assert row_counts() == before


def test_project_page_says_to_create_a_team_first(client_for, org):
    """With no team, the projects page asks for a team instead of showing the form."""
    response = client_for(org.owner).get(PROJECTS_URL)
    assert "Create a team</a> first." in page_text(response)


# Targets and environments --------------------------------------------------------------------


def test_create_target(client_for, org, project):
    """Owners and admins add a target to a project."""
    response = client_for(org.admin).post(project_url(project), {"target-name": "web"})
    assert response.status_code == 302
    assert response.url == project_url(project)
    assert list(project.targets.values_list("name", flat=True)) == ["web"]
    assert AuditEvent.objects.filter(action="target.created").count() == 1


def test_create_target_with_htmx_returns_the_fragment(client_for, org, project, htmx_headers):
    """An htmx target create returns the targets fragment with the new target."""
    response = client_for(org.owner).post(
        project_url(project), {"target-name": "worker"}, headers=htmx_headers
    )
    assert response.status_code == 200
    assert is_fragment(response)
    text = page_text(response)
    assert text.lstrip().startswith('<div id="targets">')
    assert "<h3>worker</h3>" in text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Name is required."),
        (LONG_NAME, "Name must be at most 100 characters."),
        ("WEB", "A target with the name “WEB” already exists in this project."),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_target_name_saves_nothing(client_for, org, target, htmx_headers, name, message, htmx):
    """Bad target names get a message next to the field, keep what was typed, save nothing."""
    before = row_counts()
    response = client_for(org.owner).post(
        project_url(target.project), {"target-name": name}, headers=htmx_headers if htmx else {}
    )
    assert response.status_code == 422
    text = page_text(response)
    assert f'id="id_target-name_error">{message}' in text
    if name:
        assert f'value="{name}"' in text
    assert row_counts() == before


def test_target_names_are_unique_per_project_only(client_for, org, target):
    """Another project may have its own "web" target."""
    other = ProjectFactory(team=target.project.team, name="Storefront")
    response = client_for(org.owner).post(project_url(other), {"target-name": "WEB"})
    assert response.status_code == 302
    assert Target.objects.filter(name__iexact="web").count() == 2


def test_create_environment(client_for, org, target):
    """Adding an environment to a target returns to the project page."""
    response = client_for(org.admin).post(
        environment_url(target), {"environment-name": "production"}
    )
    assert response.status_code == 302
    assert response.url == project_url(target.project)
    assert list(target.environments.values_list("name", flat=True)) == ["production"]
    assert AuditEvent.objects.filter(action="environment.created").count() == 1


def test_create_environment_with_htmx_returns_the_fragment(client_for, org, target, htmx_headers):
    """An htmx environment create returns the targets fragment listing the new environment."""
    response = client_for(org.owner).post(
        environment_url(target), {"environment-name": "staging"}, headers=htmx_headers
    )
    assert response.status_code == 200
    assert is_fragment(response)
    assert "staging" in page_text(response)
    assert Environment.objects.get().target == target


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Name is required."),
        ("PRODUCTION", "already exists in this target."),
    ],
)
def test_bad_environment_name_saves_nothing(client_for, org, target, htmx_headers, name, message):
    """Bad environment names get a message beside the field, keep the text; nothing is saved."""
    Environment.objects.create(target=target, name="production")
    client = client_for(org.owner)
    before = row_counts()

    for headers in ({}, htmx_headers):
        response = client.post(environment_url(target), {"environment-name": name}, headers=headers)
        assert response.status_code == 422
        text = page_text(response)
        assert message in text
        assert f'id="env-{target.pk}-error"' in text
        assert f'value="{name}"' in text
        assert is_fragment(response) == bool(headers)
    assert row_counts() == before


def test_bad_environment_name_keeps_what_was_typed(client_for, org, target, htmx_headers):
    """A refused environment name stays in its field with the message beside it."""
    response = client_for(org.owner).post(
        environment_url(target), {"environment-name": LONG_NAME}, headers=htmx_headers
    )
    assert response.status_code == 422
    assert f'value="{LONG_NAME}"' in page_text(response)


def test_environment_of_another_organizations_target_is_404(client_for, org, other_org):
    """An admin cannot add an environment to Globex's target through Acme."""
    theirs = TargetFactory(project__team__organization=other_org.organization)
    response = client_for(org.owner).post(
        environment_url(theirs), {"environment-name": "production"}
    )
    assert response.status_code == 404
    assert not Environment.objects.exists()


def test_environment_create_needs_post(client_for, org, target):
    """GET on the environment create URL is not allowed."""
    assert client_for(org.owner).get(environment_url(target)).status_code == 405


# Apps ----------------------------------------------------------------------------------------


def test_create_app_defaults_to_no_access(client_for, org, project):
    """A new app gets a slug from its name and "No access" for API keys."""
    response = client_for(org.admin).post(
        APPS_URL, {"name": "Payments API", "slug": "", "project": project.pk}
    )
    assert response.status_code == 302
    app = App.objects.get()
    assert (app.slug, app.project, app.organization) == (
        "payments-api",
        project,
        org.organization,
    )
    assert app.api_key_access == ApiKeyAccess.NO_ACCESS
    assert AuditEvent.objects.filter(action="app.created").count() == 1


def test_create_app_ignores_a_posted_sharing_setting(client_for, org, project):
    """The create form cannot open an app to API keys."""
    client_for(org.owner).post(
        APPS_URL,
        {"name": "Payments API", "project": project.pk, "api_key_access": "can_edit"},
    )
    assert App.objects.get().api_key_access == ApiKeyAccess.NO_ACCESS


def test_create_app_with_htmx_returns_the_fragment(client_for, org, project, htmx_headers):
    """An htmx app create returns the list fragment showing the app with "No access"."""
    response = client_for(org.owner).post(
        APPS_URL,
        {"name": "Storefront", "slug": "shop", "project": project.pk},
        headers=htmx_headers,
    )
    assert response.status_code == 200
    assert is_fragment(response)
    text = page_text(response)
    assert "<strong>Storefront</strong>" in text
    assert ">shop</span>" in text
    assert "No access" in text


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "slug": "x"}, "name", "Name is required."),
        ({"name": LONG_NAME, "slug": "x"}, "name", "Name must be at most 100 characters."),
        (
            {"name": "Payments again", "slug": "payments-api"},
            "slug",
            "An app with the slug “payments-api” already exists in this organization.",
        ),
        (
            {"name": "Payments API", "slug": ""},
            "slug",
            "An app with the slug “payments-api” already exists in this organization.",
        ),
        ({"name": "Bad", "slug": "no spaces"}, "slug", "Use only lowercase letters"),
        ({"name": "!!!", "slug": ""}, "slug", "Enter a slug: the name has no letters"),
    ],
)
def test_bad_app_input_saves_nothing(client_for, org, project, data, field, message):
    """Bad app names and slugs get a message next to the field and save nothing."""
    AppFactory(project=project, name="Payments API", slug="payments-api")
    before = row_counts()
    response = client_for(org.owner).post(APPS_URL, {**data, "project": project.pk})
    assert response.status_code == 422
    text = page_text(response)
    assert f'id="id_{field}_error">{message}' in text
    for typed in data.values():
        if typed:
            assert f'value="{typed}"' in text
    assert row_counts() == before


def test_app_in_a_project_of_another_organization_is_a_field_error(
    client_for, org, other_org, project
):
    """Another organization's project id is refused next to the project field, not a 500."""
    theirs = ProjectFactory(team__organization=other_org.organization)
    before = row_counts()
    response = client_for(org.owner).post(
        APPS_URL, {"name": "Sneaky", "slug": "sneaky", "project": theirs.pk}
    )
    assert response.status_code == 422
    text = page_text(response)
    assert 'id="id_project_error">Choose one of this organization\'s projects.' in text
    assert 'value="Sneaky"' in text
    assert row_counts() == before


def test_app_slug_is_unique_per_organization_only(client_for, org, other_org, project):
    """Another organization may already use the slug."""
    AppFactory(project__team__organization=other_org.organization, slug="payments-api")
    response = client_for(org.owner).post(APPS_URL, {"name": "Payments API", "project": project.pk})
    assert response.status_code == 302
    assert App.objects.filter(slug="payments-api").count() == 2


def test_app_slug_with_capitals_is_refused(client_for, org, project):
    """A slug with capital letters is refused next to the slug field."""
    response = client_for(org.owner).post(
        APPS_URL, {"name": "Payments API", "slug": "Payments-API", "project": project.pk}
    )
    assert response.status_code == 422
    assert not App.objects.exists()
