"""Bad input to the API: a clear 4xx, nothing changed, never a 500 (PostgreSQL included)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.access import Actor
from accounts.models import Team
from apikeys.permissions import ALL
from apikeys.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(org) -> Client:
    """Return a client sending a key that holds every permission."""
    token = api_key_create(
        actor=Actor(user=None), organization=org.organization, kind="org", permissions=sorted(ALL)
    )[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ("{not json", 400, "bad_request", "Cannot parse request body"),
        (json.dumps({"name": 5}), 422, "invalid_request", "name: Input should be a valid string"),
        (
            json.dumps({"name": "x", "extra": 1}),
            422,
            "invalid_request",
            "Extra inputs are not permitted",
        ),
        (json.dumps({"name": "a\x00b"}), 422, "invalid_request", "NUL"),
        (json.dumps({"name": "x" * 101}), 422, "invalid_request", "at most 100 characters"),
        (json.dumps({}), 422, "invalid_request", "name: Field required"),
    ],
)
def test_bad_bodies_are_refused_and_change_nothing(client, body, status, code, message):
    """Malformed JSON, wrong types, unknown fields, NUL and overlong names: a clear 4xx."""
    response = client.post("/api/v1/teams", data=body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert message in response.json()["error"]["message"]
    assert not Team.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/99999999999999999999",
        "/api/v1/keys/9223372036854775808/revoke",
        "/api/v1/keys?limit=99999999999999999999",
        "/api/v1/keys?offset=-1",
    ],
)
def test_out_of_range_numbers_are_4xx(client, path):
    """Numbers past what the database stores answer 404 or 422, not 500."""
    response = client.post(path) if path.endswith("revoke") else client.get(path)
    assert response.status_code in (404, 422)
    assert "error" in response.json()
