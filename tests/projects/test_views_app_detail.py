"""An app's page: its project, its sharing and its published versions."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Origin
from projects.models import ApiKeyAccess, App, AppVersion
from projects.services import app_publish
from tests.accounts.helpers import is_fragment, page_text
from tests.factories import AppFactory, ProjectFactory, TeamFactory

pytestmark = pytest.mark.django_db


def app_url(app: App, org: str = "acme") -> str:
    return reverse("app_detail", kwargs={"org": org, "pk": app.pk})


def bundle(files: int = 1) -> io.BytesIO:
    """Return a small .tar.gz holding `files` files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for n in range(files):
            data = f"file {n}".encode()
            info = tarfile.TarInfo(f"page-{n}.html")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return io.BytesIO(gzip.compress(raw.getvalue()))


def add_version(
    app: App,
    number: int,
    *,
    origin: str = Origin.API,
    label: str = "ci (sk-...)",
    hours_ago: int | None = None,
) -> AppVersion:
    """Store a version row directly, as publishing would, with the given facts."""
    hours_ago = 100 - number if hours_ago is None else hours_ago
    return AppVersion.objects.create(
        app=app,
        version=number,
        bundle=f"app-bundles/{app.slug}-v{number}.tar.gz",
        size=1536 * number,
        sha256="0" * 64,
        files=number,
        actor_label=label,
        origin=origin,
        created_at=timezone.now() - timedelta(hours=hours_ago, minutes=5),
    )


@pytest.fixture
def app(org) -> App:
    project = ProjectFactory(team=TeamFactory(organization=org.organization), name="Payments")
    return AppFactory(project=project, name="Storefront", slug="storefront")


def rows(response) -> list[str]:
    """Return the text of each version row, tags stripped."""
    body = page_text(response)
    table = body[body.index("<tbody>") : body.index("</tbody>")]
    return [
        " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    ]


def test_members_see_the_app_its_project_sharing_and_versions(client_for, org, app):
    """Name, project, sharing and every version: number, who, when, size, files, origin."""
    add_version(app, 1, origin=Origin.WEB, label="owner@acme.test", hours_ago=9)
    add_version(app, 2, origin=Origin.API, label="deploy (sk-org-...a1B2)", hours_ago=8)
    add_version(app, 3, origin=Origin.CLI, label="CLI on laptop (sk-user-...c3D4)", hours_ago=7)
    response = client_for(org.member).get(app_url(app))
    assert response.status_code == 200
    text = page_text(response)
    assert "<h1>Storefront</h1>" in text
    assert reverse("project_detail", kwargs={"org": "acme", "pk": app.project_id}) in text
    assert "API keys: No access" in text
    assert rows(response) == [
        "v3 Latest 7 hours ago CLI on laptop (sk-user-...c3D4) 4.5 KB 3 CLI",
        "v2 8 hours ago deploy (sk-org-...a1B2) 3.0 KB 2 API",
        "v1 9 hours ago owner@acme.test 1.5 KB 1 Web",
    ]


def test_times_carry_the_exact_moment_on_hover(client_for, org, app):
    """Each version's time is relative, with the exact time in its tooltip."""
    version = add_version(app, 1)
    text = page_text(client_for(org.member).get(app_url(app)))
    assert f'<time datetime="{version.created_at.isoformat()}"' in text


def test_only_owners_and_admins_get_the_link_to_change_sharing(client_for, org, app):
    """The sharing page is linked for those who may change it, and only them."""
    sharing = reverse("app_sharing", kwargs={"org": "acme", "pk": app.pk})
    assert sharing not in page_text(client_for(org.member).get(app_url(app)))
    for person in (org.admin, org.owner):
        text = page_text(client_for(person).get(app_url(app)))
        assert f'href="{sharing}"' in text
        assert "/rename/" in text


def test_shared_app_says_can_edit(client_for, org, app):
    App.objects.filter(pk=app.pk).update(api_key_access=ApiKeyAccess.CAN_EDIT)
    assert "API keys: Can edit" in page_text(client_for(org.member).get(app_url(app)))


def test_without_versions_it_says_how_to_publish(client_for, org, app):
    """An app never published says how to publish one."""
    text = page_text(client_for(org.member).get(app_url(app)))
    assert "No version published" in text
    assert "keyportal app publish --name storefront" in text


def test_a_version_published_through_a_door_keeps_its_origin(org, app):
    """Publishing records who and through which door, for the page."""
    version = app_publish(
        actor=Actor(user=org.owner, origin=Origin.CLI), app=app, bundle=bundle(files=2)
    )
    version.refresh_from_db()
    assert (version.origin, version.actor_label, version.files) == (
        Origin.CLI,
        org.owner.email,
        2,
    )


def test_versions_page_50_at_a_time(client_for, org, app):
    """Past 50 versions the list pages, newest first."""
    for number in range(1, 56):
        add_version(app, number)
    client = client_for(org.member)
    first = rows(client.get(app_url(app)))
    assert len(first) == 50
    assert first[0].startswith("v55 Latest")
    second = rows(client.get(app_url(app), {"page": 2}))
    assert [row.split()[0] for row in second] == ["v5", "v4", "v3", "v2", "v1"]


def test_the_apps_list_links_to_each_apps_page(client_for, org, app):
    """The apps list names each app with a link to its page."""
    text = page_text(client_for(org.member).get(reverse("app_list", kwargs={"org": "acme"})))
    assert re.search(rf'<a href="{app_url(app)}">(<[^>]+>)*Storefront<', text)


def test_an_htmx_request_gets_only_the_versions(client_for, org, app, htmx_headers):
    add_version(app, 1)
    response = client_for(org.member).get(app_url(app), headers=htmx_headers)
    assert response.status_code == 200
    assert is_fragment(response)
    assert page_text(response).lstrip().startswith('<div id="version-list">')


def test_anonymous_is_sent_to_login(db, app):
    response = Client().get(app_url(app))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_another_tenants_app_is_404(client_for, org, other_org, outsider):
    """Globex's app is not found from Acme's address; Acme's not by outsiders or Globex."""
    theirs = AppFactory(
        project=ProjectFactory(team=TeamFactory(organization=other_org.organization))
    )
    assert client_for(org.owner).get(app_url(theirs)).status_code == 404
    assert client_for(other_org.owner).get(app_url(theirs, org="acme")).status_code == 404
    assert client_for(outsider).get(app_url(theirs, org="globex")).status_code == 404


def test_the_page_only_answers_reads(client_for, org, app):
    """A POST is refused (405), with or without a CSRF token."""
    assert client_for(org.owner).post(app_url(app)).status_code == 405
    strict = client_for(org.owner, enforce_csrf_checks=True)
    assert strict.post(app_url(app)).status_code in (403, 405)


def test_the_page_costs_a_fixed_number_of_queries(
    client_for, org, app, django_assert_max_num_queries
):
    """Many versions cost no more queries than one."""
    for number in range(1, 31):
        add_version(app, number)
    client = client_for(org.member)
    client.get(app_url(app))  # the session's first request writes the chosen organization
    with django_assert_max_num_queries(8):
        assert client.get(app_url(app)).status_code == 200
