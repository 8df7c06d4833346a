"""Issue 10's smaller holes on the API side: keys in URLs, guessing through /keys/verify, the
keys of a person who is deactivated or no longer a member, and a secret in its grace period."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from django.test import Client

from accounts.access import Actor
from accounts.models import Membership
from apikeys.api.auth import key_in_query
from apikeys.models import KeyKind
from apikeys.services import api_key_rotate
from keyportal_cli.tokens import generate_token
from tests.apikeys.conftest import operator_key

pytestmark = pytest.mark.django_db


def whoami(token: str | None, query: str = "", **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return Client().get(f"/api/v1/whoami{query}", **headers, **extra)


def code(response) -> str:
    return response.json()["error"]["code"]


# --- a key anywhere in the query string -----------------------------------------------------


def query_strings(token: str) -> dict[str, str]:
    """Every way a key was seen to slip past a check of one value per parameter name."""
    return {
        "a value": f"?api_key={token}",
        "repeated, the key first": f"?x={token}&x=1",
        "repeated, the key last": f"?x=1&x={token}",
        "bare": f"?{token}",
        "a parameter's name": f"?{token}=1",
        "after Bearer": f"?authorization=Bearer%20{token}",
        "after Bearer and a plus": f"?authorization=Bearer+{token}",
        "percent-encoded": f"?k={quote(token, safe='')}".replace("-", "%2D"),
        "encoded twice": f"?k={quote(quote(token, safe='').replace('-', '%2D'), safe='')}",
        "inside a longer value": f"?redirect=https://example.com/cb?key={quote_plus(token)}",
        "glued to a letter": f"?x=A{token}",
        "glued to a digit": f"?x=0{token}",
        "glued to an encoded letter": f"?x=%41{token}",
    }


@pytest.mark.parametrize("where", list(query_strings("sk-org-x")))
def test_a_key_anywhere_in_the_query_string_is_refused(org, where):
    """The whole decoded query string is searched: the request is refused even with a valid
    key in its header, and says why."""
    _key, token = operator_key(org)
    response = whoami(token, query_strings(token)[where])

    assert response.status_code == 401
    assert code(response) == "invalid_key"
    assert "never in a URL" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/health"),
        ("get", "/api/v1/openapi.json"),
        ("post", "/api/v1/device/code"),
        ("get", "/api/v1/no/such/path"),
    ],
)
def test_routes_without_a_key_refuse_one_in_the_url_too(org, method, path):
    """Public routes and unknown paths refuse a key in the URL just the same: it must never
    look as if it worked."""
    _key, token = operator_key(org)
    response = getattr(Client(), method)(f"{path}?api_key={token}")
    assert response.status_code == 401
    assert code(response) == "invalid_key"


def test_a_key_prefix_alone_is_enough_to_refuse(org):
    """Part of a key is as exposed as a whole one: its prefix and a first character suffice."""
    _key, token = operator_key(org)
    assert whoami(token, "?note=sk-user-a").status_code == 401


@pytest.mark.parametrize(
    "query", ["?q=task-sk-org", "?name=desk-org-1", "?sk-org-=1", "?q=ask-user-x", "?q=%25"]
)
def test_look_alikes_are_not_keys(org, query):
    """Text that only looks like a key's prefix passes: "task-sk-org", a prefix with no secret."""
    _key, token = operator_key(org)
    assert whoami(token, query).status_code == 200


def test_key_in_query_checks_every_prefix():
    """Every kind of key is recognised."""
    for kind in ("user", "svc", "org", "project"):
        assert key_in_query(f"a=1&b={generate_token(kind)}")


# --- /keys/verify counts failures like any refused key --------------------------------------


def verify(caller: str, key: str, **extra):
    return Client().post(
        "/api/v1/keys/verify",
        data=json.dumps({"key": key}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {caller}",
        **extra,
    )


def test_verify_counts_refused_keys_against_the_callers_address(org, settings):
    """Guessing through /keys/verify meets the same limit: past it, 429 with Retry-After, and
    the caller's own valid key still works from that address."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 3
    _key, caller = operator_key(org)
    for _ in range(3):
        response = verify(caller, generate_token("org"))
        assert (response.status_code, response.json()["valid"]) == (200, False)

    limited = verify(caller, generate_token("org"))

    assert limited.status_code == 429
    assert code(limited) == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert whoami(caller).status_code == 200
    # Another address has its own count.
    assert verify(caller, generate_token("org"), REMOTE_ADDR="10.1.2.3").status_code == 200


def test_verify_counts_another_tenants_key_as_a_failure(org, other_org, settings):
    """Another organization's valid key is "not valid" to the caller, and counted as such."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 1
    _key, caller = operator_key(org)
    _theirs, foreign = operator_key(other_org)

    assert verify(caller, foreign).json()["code"] == "invalid_key"
    assert verify(caller, foreign).status_code == 429


def test_verify_of_a_valid_key_is_not_a_failure(org, settings):
    """Checking good keys never runs into the limit."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 1
    _key, caller = operator_key(org)
    _other, good = operator_key(org)
    for _ in range(5):
        assert verify(caller, good).json()["valid"] is True


# --- the owner of a personal key -------------------------------------------------------------


def test_a_deactivated_persons_keys_are_refused_from_the_next_request(org):
    """Deactivating a person refuses their personal keys at once (key_disabled), in every
    organization; reactivating them brings the keys back, as a disable would."""
    _key, token = operator_key(org, kind=KeyKind.USER, owner=org.member)
    assert whoami(token).status_code == 200

    org.member.is_active = False
    org.member.save(update_fields=["is_active"])
    refused = whoami(token)

    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert refused.json()["error"] == {
        "code": "key_disabled",
        "message": "The API key's owner is deactivated.",
    }
    org.member.is_active = True
    org.member.save(update_fields=["is_active"])
    assert whoami(token).status_code == 200


def test_a_deactivated_persons_key_cannot_act_on_keys(org):
    """Refused before anything: it can list, rotate or create nothing."""
    _key, token = operator_key(
        org, kind=KeyKind.USER, owner=org.owner, permissions=("api-keys:manage", "projects:read")
    )
    target, _ = operator_key(org)
    org.owner.is_active = False
    org.owner.save(update_fields=["is_active"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert client.get("/api/v1/keys").status_code == 401
    rotate = client.post(f"/api/v1/keys/{target.pk}/rotate", "{}", content_type="application/json")
    assert rotate.status_code == 401
    target.refresh_from_db()
    assert target.rotated_at is None


def test_a_former_members_keys_are_invalid(org):
    """A personal key whose owner is no longer a member is refused (invalid_key), even if the
    removal did not revoke it."""
    _key, token = operator_key(org, kind=KeyKind.USER, owner=org.member)
    Membership.objects.filter(user=org.member).delete()

    response = whoami(token)

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_key",
        "message": "The API key's owner is no longer a member.",
    }


def test_owner_checks_still_cost_one_query(org, django_assert_num_queries):
    """The owner's active flag and role come from the row verification already reads."""
    _key, token = operator_key(org, kind=KeyKind.USER, owner=org.member)
    with django_assert_num_queries(1):
        assert whoami(token).status_code == 200


# --- a secret in its grace period -----------------------------------------------------------


def test_a_previous_secret_cannot_take_its_key_back(org):
    """After a rotation with a grace period, the old secret (perhaps the leaked one) still
    reads, and may give its key up, but may not rotate it away from the new secret's holder,
    nor mint or prolong any key."""
    api_key, old = operator_key(org, permissions=("api-keys:manage", "projects:read"))
    rotated, new = api_key_rotate(actor=Actor.operator("test"), api_key=api_key, grace="7d")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {old}")

    assert client.get("/api/v1/keys").status_code == 200
    rotate = client.post(f"/api/v1/keys/{api_key.pk}/rotate", "{}", "application/json")
    create = client.post(
        "/api/v1/keys", json.dumps({"permissions": ["projects:read"]}), "application/json"
    )

    for response in (rotate, create):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert "previous secret" in response.json()["error"]["message"]
    assert whoami(new).status_code == 200
    api_key.refresh_from_db()
    assert api_key.rotated_at == rotated.rotated_at
    assert (
        Client(HTTP_AUTHORIZATION=f"Bearer {old}").post("/api/v1/whoami/revoke").status_code == 200
    )
    assert whoami(new).json()["error"]["code"] == "key_revoked"
