"""What every console view must do: hide other tenants, answer htmx with fragments, need CSRF."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import PASSWORD
from tests.security.conftest import database_state, logged_in, row_counts

KINDS = ("teams", "projects", "targets", "environments", "apps")
KIND_OBJECT = {
    "teams": "team",
    "projects": "project",
    "targets": "target",
    "environments": "environment",
    "apps": "app",
}

# (path under /o/acme/ naming an object of the other organization, method, form data)
FOREIGN_OBJECT_CASES = [
    ("projects/{project}/", "get", {}),
    ("projects/{project}/", "post", {"target-name": "stolen"}),
    ("targets/{target}/environments/", "post", {"environment-name": "stolen"}),
    ("apps/{app}/", "get", {}),
    *[(f"{kind}/{{{KIND_OBJECT[kind]}}}/rename/", "get", {}) for kind in KINDS],
    *[(f"{kind}/{{{KIND_OBJECT[kind]}}}/rename/", "post", {"name": "Stolen"}) for kind in KINDS],
    *[(f"{kind}/{{{KIND_OBJECT[kind]}}}/delete/", "get", {}) for kind in KINDS],
    *[(f"{kind}/{{{KIND_OBJECT[kind]}}}/delete/", "post", {}) for kind in KINDS],
    ("members/{membership}/role/", "post", {"role": "owner"}),
    ("members/{membership}/remove/", "get", {}),
    ("members/{membership}/remove/", "post", {}),
    ("invitations/{invitation}/revoke/", "post", {}),
    ("service-accounts/{account}/", "get", {}),
    ("service-accounts/{account}/", "post", {"name": "stolen", "description": ""}),
    ("service-accounts/{account}/active/", "get", {}),
    ("service-accounts/{account}/active/", "post", {}),
]


@pytest.mark.parametrize(
    ("path", "method", "data"),
    [pytest.param(*case, id=f"{case[1]}-{case[0]}") for case in FOREIGN_OBJECT_CASES],
)
def test_another_organizations_object_is_404(path, method, data, objects, foreign_objects):
    """An owner gets 404 for another organization's object, and a POST changes nothing."""
    client = logged_in(objects.org.owner)
    url = "/o/acme/" + foreign_objects.fill(path)
    before = database_state()

    response = getattr(client, method)(url, foreign_objects.fill_data(data))

    assert response.status_code == 404
    assert database_state() == before
    assert foreign_objects.org.organization.name.encode() not in response.content


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("", {"name": "Stolen", "team": "{team}"}),
        ("apps/", {"name": "Stolen", "slug": "", "project": "{project}"}),
    ],
    ids=["project-in-foreign-team", "app-in-foreign-project"],
)
def test_create_form_naming_another_organizations_object_is_refused(
    path, data, objects, foreign_objects
):
    """A create form naming another organization's team or project is refused, creating nothing."""
    client = logged_in(objects.org.owner)
    before = database_state()

    response = client.post("/o/acme/" + path, foreign_objects.fill_data(data))

    assert response.status_code == 422
    assert database_state() == before


# (path, the partial's DOM id) for every page rendered through render_page.
FRAGMENT_CASES = [
    ("/o/acme/", "project-list"),
    ("/o/acme/projects/{project}/", "targets"),
    ("/o/acme/teams/", "team-list"),
    ("/o/acme/apps/", "app-list"),
    ("/o/acme/members/", "members"),
    ("/o/acme/service-accounts/", "service-accounts"),
    ("/o/acme/service-accounts/{account}/", "account-form"),
    ("/o/acme/audit/", "audit-table"),
    ("/o/acme/api-keys/", "key-table"),
    ("/o/acme/settings/api-keys/", "key-table"),
]


@pytest.mark.parametrize(("path", "partial"), FRAGMENT_CASES)
def test_htmx_request_gets_only_the_fragment(path, partial, objects, htmx_headers):
    """An htmx request (not boosted) gets the page's fragment without the console shell."""
    client = logged_in(objects.org.owner)

    response = client.get(objects.fill(path), headers=htmx_headers)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="{partial}"' in html
    assert "<html" not in html
    assert 'class="sidebar"' not in html


@pytest.mark.parametrize(("path", "partial"), FRAGMENT_CASES)
def test_boosted_htmx_request_gets_the_whole_page(path, partial, objects, htmx_headers):
    """A boosted htmx request gets the whole page, shell included, like a normal request."""
    client = logged_in(objects.org.owner)

    response = client.get(objects.fill(path), headers={**htmx_headers, "HX-Boosted": "true"})

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="{partial}"' in html
    assert "<html" in html
    assert 'class="sidebar"' in html


# (who posts, path, form data): each would change the database with a valid CSRF token.
CSRF_CASES = [
    ("anonymous", "/signup/confirm/?token={signup_token}", {
        "password": "a-long-unusual-passphrase-42",
    }),
    ("anonymous", "/login/", {"username": "{member_email}", "password": PASSWORD}),
    ("anonymous", "/invitations/{token}/", {
        "display_name": "Invitee", "password": "a-long-unusual-passphrase-42",
    }),
    ("owner", "/organizations/new/", {"name": "Initech"}),
    ("owner", "/o/acme/", {"name": "New project", "team": "{team}"}),
    ("owner", "/o/acme/projects/{project}/", {"target-name": "new-target"}),
    ("owner", "/o/acme/targets/{target}/environments/", {"environment-name": "new-env"}),
    ("owner", "/o/acme/teams/", {"name": "New team"}),
    ("owner", "/o/acme/apps/", {"name": "New app", "slug": "", "project": "{project}"}),
    *[
        ("owner", f"/o/acme/{kind}/{{{KIND_OBJECT[kind]}}}/rename/", {"name": "Renamed"})
        for kind in KINDS
    ],
    *[("owner", f"/o/acme/{kind}/{{{KIND_OBJECT[kind]}}}/delete/", {}) for kind in KINDS],
    ("owner", "/o/acme/members/", {"email": "new@example.test", "role": "member"}),
    ("owner", "/o/acme/members/{membership}/role/", {"role": "admin"}),
    ("owner", "/o/acme/members/{membership}/remove/", {}),
    ("owner", "/o/acme/invitations/{invitation}/revoke/", {}),
    ("owner", "/o/acme/service-accounts/", {"name": "deploy-bot", "description": ""}),
    ("owner", "/o/acme/service-accounts/{account}/", {
        "name": "renamed-bot", "description": "Deploys.",
    }),
    ("owner", "/o/acme/service-accounts/{account}/active/", {"active": "0"}),
]  # fmt: skip

# Any 32 alphanumeric characters make a valid CSRF secret, sent as cookie and header alike.
CSRF_SECRET = "A" * 32


def client_and_headers(objects, who: str, *, with_token: bool) -> tuple[Client, dict]:
    """Return a client that enforces CSRF checks, logged in as `who`, and its POST headers."""
    client = logged_in(objects.org.owner if who == "owner" else None, enforce_csrf_checks=True)
    if not with_token:
        return client, {}
    client.cookies["csrftoken"] = CSRF_SECRET
    return client, {"X-CSRFToken": CSRF_SECRET}


def csrf_case_params() -> list:
    """Return one test case per CSRF case."""
    return [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in CSRF_CASES]


@pytest.mark.parametrize(("who", "path", "data"), csrf_case_params())
def test_post_without_csrf_token_is_refused(who, path, data, objects):
    """A POST without a CSRF token is refused with 403 and changes nothing."""
    client, headers = client_and_headers(objects, who, with_token=False)
    before = database_state()

    response = client.post(objects.fill(path), objects.fill_data(data), headers=headers)

    assert response.status_code == 403
    after = database_state()
    assert row_counts(after) == row_counts(before)
    assert after == before


@pytest.mark.parametrize(("who", "path", "data"), csrf_case_params())
def test_post_with_csrf_token_is_accepted(who, path, data, objects):
    """The same POST with a CSRF token does change the database, so the refusal is the token's."""
    client, headers = client_and_headers(objects, who, with_token=True)
    before = database_state()

    response = client.post(objects.fill(path), objects.fill_data(data), headers=headers)

    assert response.status_code in (200, 302)
    assert database_state() != before


def test_logout_without_csrf_token_is_refused(objects):
    """A logout POST without a CSRF token is refused and the person stays logged in."""
    client = logged_in(objects.org.member, enforce_csrf_checks=True)

    response = client.post("/logout/")

    assert response.status_code == 403
    assert client.get("/o/acme/").status_code == 200
