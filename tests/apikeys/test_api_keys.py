"""Managing keys through the API as in the console: read, change (PATCH), revoke (DELETE),
and the list's filters and pages. Who may do what is tests/security/test_key_authority.py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_revoke
from tests.apikeys.conftest import build_tree, key_state, operator_key

pytestmark = pytest.mark.django_db

OPERATOR = Actor.operator("operator (tests)")

MANAGE = ["api-keys:manage", "projects:read", "secrets:read", "targets:read"]


@pytest.fixture
def api(org) -> Client:
    """A client authenticated by an organization key that manages keys."""
    _key, token = operator_key(org, permissions=MANAGE, name="manager")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def patch(api: Client, api_key: ApiKey, body):
    return api.patch(
        f"/api/v1/keys/{api_key.pk}", data=json.dumps(body), content_type="application/json"
    )


def test_read_a_key_revoked_or_not(api, org):
    """GET /keys/{id} shows a key as the list does, revoked keys included, never its digest."""
    api_key, token = operator_key(org, name="deploy")
    api_key_revoke(actor=OPERATOR, api_key=api_key)

    response = api.get(f"/api/v1/keys/{api_key.pk}")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["state"]) == (api_key.pk, "deploy", "revoked")
    assert api_key.digest not in response.content.decode()
    assert token[-30:] not in response.content.decode()


def test_patch_changes_only_what_it_is_given(api, org):
    """A rename leaves status, grants, scopes and expiry exactly as they were."""
    tree = build_tree(org)
    scopes = {"secrets:read": [{"type": "environment", "id": tree.environment.pk}]}
    api_key, _ = operator_key(org, permissions=("secrets:read",), scopes=scopes, name="old")
    before = ApiKey.objects.values("status", "permissions", "scopes", "expires_at").get(
        pk=api_key.pk
    )

    response = patch(api, api_key, {"name": "new"})

    assert response.status_code == 200
    assert response.json()["name"] == "new"
    after = ApiKey.objects.values("status", "permissions", "scopes", "expires_at").get(
        pk=api_key.pk
    )
    assert after == before
    event = AuditEvent.objects.get(action="api_key.updated")
    assert event.detail["changed"] == ["name"]


def test_patch_permissions_keep_the_scopes_of_those_that_stay(api, org):
    """New permissions without scopes keep the scopes the remaining permissions had."""
    tree = build_tree(org)
    scoped = [{"type": "environment", "id": tree.environment.pk}]
    api_key, _ = operator_key(
        org, permissions=("secrets:read", "projects:read"), scopes={"secrets:read": scoped}
    )

    response = patch(api, api_key, {"permissions": ["secrets:read"]})

    assert response.status_code == 200
    api_key.refresh_from_db()
    assert (api_key.permissions, api_key.scopes) == (["secrets:read"], {"secrets:read": scoped})


def test_patch_status_expiry_and_never(api, org):
    """Disable, enable, set an expiry, then `expires_at: null` means never (policy allowing)."""
    api_key, token = operator_key(org)
    whoami = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert patch(api, api_key, {"status": "disabled"}).json()["state"] == "disabled"
    assert whoami.get("/api/v1/whoami").json()["error"]["code"] == "key_disabled"
    assert patch(api, api_key, {"status": "active"}).json()["state"] == "active"
    soon = (timezone.now() + timedelta(days=3)).isoformat()
    assert patch(api, api_key, {"expires_at": soon}).json()["expires_at"] is not None
    assert patch(api, api_key, {"expires_at": None}).json()["expires_at"] is None
    assert whoami.get("/api/v1/whoami").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": "   "}, "blank"),
        ({"status": "revoked"}, "status"),
        ({"permissions": []}, "permissions"),
        ({"permissions": ["nope:read"]}, "Unknown permission"),
        ({"scopes": {"projects:read": [{"type": "project", "id": 999999}]}}, "no such project"),
        ({"colour": "blue"}, "colour"),
        ({"expires_at": "yesterday"}, "expires_at"),
    ],
)
def test_bad_patches_say_what_is_wrong_and_change_nothing(api, org, body, field):
    """A 422 naming the field, and the key as it was."""
    api_key, _ = operator_key(org)
    before = key_state(api_key)

    response = patch(api, api_key, body)

    assert response.status_code == 422
    assert field.lower() in response.json()["error"]["message"].lower()
    assert key_state(api_key) == before


def test_a_revoked_key_cannot_be_changed(api, org):
    """PATCH of a revoked key is 422 and changes nothing."""
    api_key, _ = operator_key(org)
    api_key_revoke(actor=OPERATOR, api_key=api_key)
    before = key_state(api_key)

    response = patch(api, api_key, {"name": "again"})

    assert response.status_code == 422
    assert "revoked" in response.json()["error"]["message"]
    assert key_state(api_key) == before


def test_delete_revokes_and_a_retry_is_answered_the_same(api, org):
    """DELETE is 204 and revokes at once; a second DELETE is 204 again and records nothing."""
    api_key, token = operator_key(org)

    first = api.delete(f"/api/v1/keys/{api_key.pk}")
    second = api.delete(f"/api/v1/keys/{api_key.pk}")

    assert (first.status_code, second.status_code) == (204, 204)
    api_key.refresh_from_db()
    assert api_key.is_revoked
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/whoami")
    assert response.json()["error"]["code"] == "key_revoked"


# --- the list ---------------------------------------------------------------------------------


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(key["name"] for key in response.json()["items"])


def test_list_filters_like_the_consoles_table(api, org, bot):
    """name (part of), status, kind and owner narrow the list; revoked keys only on asking."""
    tree = build_tree(org)
    operator_key(org, name="deploy web")
    disabled, _ = operator_key(org, name="deploy api")
    api.patch(
        f"/api/v1/keys/{disabled.pk}",
        data=json.dumps({"status": "disabled"}),
        content_type="application/json",
    )
    gone, _ = operator_key(org, name="deploy old")
    api_key_revoke(actor=OPERATOR, api_key=gone)
    operator_key(org, kind=KeyKind.SERVICE_ACCOUNT, owner=bot, name="bot key")
    operator_key(org, kind=KeyKind.PROJECT, owner=tree.project, name="payments")

    assert names(api.get("/api/v1/keys", {"name": "DEPLOY"})) == ["deploy api", "deploy web"]
    assert names(api.get("/api/v1/keys", {"status": "disabled"})) == ["deploy api"]
    assert names(api.get("/api/v1/keys", {"status": "revoked"})) == ["deploy old"]
    assert names(api.get("/api/v1/keys", {"kind": "project"})) == ["payments"]
    assert names(api.get("/api/v1/keys", {"owner": bot.identifier})) == ["bot key"]
    assert names(api.get("/api/v1/keys", {"name": "deploy", "status": "active"})) == ["deploy web"]


def test_list_pages(api, org):
    """limit and offset walk the list newest first, without gaps or repeats; each page says
    the total and where the next one starts."""
    for number in range(5):
        operator_key(org, name=f"key {number}")
    pages = [api.get("/api/v1/keys", {"limit": 2, "offset": o}).json() for o in (0, 2, 4, 6)]
    seen = [key["name"] for page in pages for key in page["items"]]
    assert len(seen) == len(set(seen)) == 6  # five keys and the manager itself
    assert seen[:5] == [f"key {number}" for number in (4, 3, 2, 1, 0)]
    assert [(p["total"], p["limit"], p["offset"], p["next_offset"]) for p in pages] == [
        (6, 2, 0, 2),
        (6, 2, 2, 4),
        (6, 2, 4, None),
        (6, 2, 6, None),
    ]
    assert pages[-1]["items"] == []


def test_list_defaults_to_50_a_page(api, org):
    """Without limit or offset: the first 50, and the offset of the next page."""
    for number in range(50):
        operator_key(org, name=f"key {number}")
    page = api.get("/api/v1/keys").json()
    assert (len(page["items"]), page["total"], page["limit"], page["offset"]) == (50, 51, 50, 0)
    assert page["next_offset"] == 50
    last = api.get("/api/v1/keys", {"offset": 50}).json()
    assert (len(last["items"]), last["total"], last["next_offset"]) == (1, 51, None)


def test_empty_filters_filter_nothing(api, org):
    """`?status=&kind=&name=&owner=` is the whole list, as an empty console form is."""
    operator_key(org, name="deploy")
    everything = names(api.get("/api/v1/keys"))
    assert names(api.get("/api/v1/keys", {"status": "", "kind": "", "name": "", "owner": ""})) == (
        everything
    )


@pytest.mark.parametrize(
    "query",
    [{"status": "lost"}, {"kind": "robot"}, {"limit": 0}, {"limit": 201}, {"offset": -1}],
)
def test_bad_filters_are_422(api, query):
    """A filter value that is not offered is refused, naming the parameter."""
    response = api.get("/api/v1/keys", query)
    assert response.status_code == 422
    assert next(iter(query)) in response.json()["error"]["message"]
