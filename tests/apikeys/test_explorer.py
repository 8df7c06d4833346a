"""The Explorer acts as a key without its secret (DESIGN rule 6), through the API's own door."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.access import Actor
from accounts.models import AuditEvent, Team
from apikeys import usage
from apikeys.models import ApiKey, KeyKind, KeyUsage
from apikeys.services import api_key_revoke, api_key_update
from tests.apikeys.conftest import key_state, new_key, refusals

pytestmark = pytest.mark.django_db

EXPLORE = "HTTP_X_KEYPORTAL_EXPLORE"


def explorer(client_for, user, *, csrf: bool = True) -> Client:
    """Return a signed-in client that sends the CSRF token, as the Explorer's page does."""
    client = client_for(user, enforce_csrf_checks=True)
    if csrf:
        client.get("/o/acme/settings/api-keys/")  # sets the CSRF cookie, as any page does
    return client


def send(client: Client, method: str, path: str, api_key: ApiKey | int, body=None, **extra):
    headers = {EXPLORE: str(getattr(api_key, "pk", api_key)), **extra}
    if "csrftoken" in client.cookies:
        headers.setdefault("HTTP_X_CSRFTOKEN", client.cookies["csrftoken"].value)
    if body is None:
        return getattr(client, method)(path, **headers)
    return getattr(client, method)(
        path, data=json.dumps(body), content_type="application/json", **headers
    )


@pytest.fixture
def org_key(org) -> ApiKey:
    return new_key(
        org, KeyKind.ORGANIZATION, name="ci", permissions=["teams:create", "teams:read"]
    )[0]


def test_runs_with_the_keys_power_and_records_the_person_beside_it(client_for, org, org_key):
    """whoami answers as the key; a change is recorded as the key, with the person and the
    Explorer as its door."""
    client = explorer(client_for, org.admin)

    me = send(client, "get", "/api/v1/whoami", org_key)
    created = send(client, "post", "/api/v1/teams", org_key, {"name": "From the Explorer"})

    assert me.status_code == 200
    assert me.json()["id"] == org_key.pk
    assert me.json()["effective_permissions"] == ["teams:create", "teams:read"]
    assert created.status_code == 201
    event = AuditEvent.objects.get(action="team.created")
    assert (event.actor_key_id, event.actor_user, event.origin) == (
        org_key.pk,
        org.admin,
        "explorer",
    )
    assert event.actor_label == f"ci ({org_key.preview}) in the Explorer, by {org.admin.email}"


def test_the_key_not_the_person_decides_what_is_allowed(client_for, org, org_key):
    """The owner holds teams:delete; the key does not: the Explorer answers as the key would."""
    team = Team.objects.create(organization=org.organization, name="Keep")
    response = send(explorer(client_for, org.owner), "delete", f"/api/v1/teams/{team.pk}", org_key)

    assert response.status_code == 403
    assert response.json()["error"]["permission"] == "teams:delete"
    assert Team.objects.filter(pk=team.pk).exists()


def test_only_those_who_could_rotate_the_key_may_explore_it(client_for, org):
    """An admin cannot act as a key holding members:update (403, recorded); a member cannot
    even see an organization key (404, recorded); nothing runs."""
    strong, _ = new_key(org, KeyKind.ORGANIZATION, name="strong", permissions=["members:update"])

    admin = send(explorer(client_for, org.admin), "get", "/api/v1/whoami", strong)
    member = send(explorer(client_for, org.member), "get", "/api/v1/whoami", strong)

    assert admin.status_code == 403
    assert admin.json()["error"]["permission"] == "members:update"
    assert member.status_code == 404
    assert refusals(strong) == [("explore", "explorer"), ("explore", "explorer")]


def test_personal_keys_are_explored_by_their_owner_only(client_for, org):
    """Even the organization's owner cannot act as a member's personal key (rule 2)."""
    personal, _ = new_key(org, name="laptop")

    assert (
        send(explorer(client_for, org.member), "get", "/api/v1/whoami", personal).status_code == 200
    )
    refused = send(explorer(client_for, org.owner), "get", "/api/v1/whoami", personal)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"


def test_a_disabled_or_revoked_key_is_refused_as_it_would_be(client_for, org, org_key):
    """The key's own state applies: 401 with its code, from the very next request."""
    client = explorer(client_for, org.admin)
    api_key_update(actor=Actor(user=org.admin), api_key=org_key, status="disabled")
    assert send(client, "get", "/api/v1/whoami", org_key).json()["error"]["code"] == "key_disabled"
    api_key_revoke(actor=Actor(user=org.admin), api_key=org_key)
    assert send(client, "get", "/api/v1/whoami", org_key).json()["error"]["code"] == "key_revoked"


def test_without_the_csrf_token_nothing_runs(client_for, org, org_key):
    """A request riding on the session cookie alone is refused (401), and changes nothing."""
    client = explorer(client_for, org.admin, csrf=False)
    response = send(client, "post", "/api/v1/teams", org_key, {"name": "Forged"})

    assert response.status_code == 401
    assert not Team.objects.filter(name="Forged").exists()


def test_without_a_signed_in_person_nothing_runs(org, org_key):
    """The header alone is nothing: it names a key, it does not prove anything."""
    response = Client().get("/api/v1/whoami", **{EXPLORE: str(org_key.pk)})
    assert response.status_code == 401


@pytest.mark.parametrize("value", ["", "abc", "-1", "9" * 40, "0"])
def test_an_id_that_names_no_key_is_404(client_for, org, value):
    """Nonsense and unknown ids are simply not found."""
    assert send(explorer(client_for, org.admin), "get", "/api/v1/whoami", value).status_code == 404


def test_another_tenants_key_is_404(client_for, org, other_org):
    """A key of another organization does not exist for this person."""
    theirs, _ = new_key(other_org, KeyKind.ORGANIZATION)
    before = key_state(theirs)
    assert send(explorer(client_for, org.owner), "get", "/api/v1/whoami", theirs).status_code == 404
    assert key_state(theirs) == before


def test_explorer_calls_are_not_the_keys_own_use(client_for, org, org_key):
    """Last used and the usage counts stay the program's: a person exploring is not a use."""
    send(explorer(client_for, org.admin), "get", "/api/v1/whoami", org_key)
    usage.flush()
    org_key.refresh_from_db()
    assert org_key.last_used_at is None
    assert not KeyUsage.objects.exists()


def test_the_page_explains_why_it_is_unavailable(client_for, org):
    """The Explorer's page says why a person may not act as the key, and offers no Send."""
    strong, _ = new_key(org, KeyKind.ORGANIZATION, name="strong", permissions=["members:update"])
    page = client_for(org.admin).get(f"/o/acme/api-keys/{strong.pk}/explore/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "The Explorer is not available for this key." in text
    assert "it holds members:update on the whole organization" in text
    assert "Send request" not in text
