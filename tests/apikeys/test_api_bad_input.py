"""Bad input to the API: a clear 4xx, nothing changed, never a 500 (PostgreSQL included)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.test import Client

from accounts.access import Actor
from accounts.models import Team
from apikeys.models import ApiKey
from apikeys.permissions import ALL
from apikeys.services import api_key_create
from projects.models import ApiKeyAccess, App
from tests.factories import AppFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(org) -> Client:
    """Return a client sending a key that holds every permission."""
    token = api_key_create(
        actor=Actor.operator("operator (tests)"),
        organization=org.organization,
        kind="org",
        permissions=sorted(ALL),
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


@pytest.mark.parametrize("method", ["patch", "delete"])
@pytest.mark.parametrize(
    "user_id",
    [
        "2147483648",  # past a 32-bit integer
        "999999999999999999",  # the largest id the path accepts: a bigint, naming no one
        "9223372036854775807",  # the largest bigint: 19 digits, no id at all
        "9223372036854775808",
        "99999999999999999999",
        "-1",
    ],
)
def test_member_ids_out_of_range_are_404(client, org, method, user_id):
    """PATCH and DELETE /members/{id} with no member's id, a bigint's or larger: 404, never 500."""
    # SQLite raised OverflowError on the user_id lookup for ids past a bigint: the path's
    # converter now takes 1 to 18 digits only.
    response = getattr(client, method)(
        f"/api/v1/members/{user_id}",
        data=json.dumps({"role": "admin"}),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert org.membership(org.member).role == "member"


@pytest.fixture
def app(tree) -> App:
    """Return an app that API keys may edit."""
    return AppFactory(project=tree.project, api_key_access=ApiKeyAccess.CAN_EDIT)


PART = b'--zz\r\nContent-Disposition: form-data; name="%s"; filename="a.tgz"\r\n\r\nx\r\n'
UNREADABLE_BODIES = {
    "multipart without a boundary": ("multipart/form-data", b"--zz\r\n" + PART[6:], {}),
    "multipart with an empty boundary": ("multipart/form-data; boundary=", PART, {}),
    "a part that is not base64": (
        "multipart/form-data; boundary=zz",
        PART.replace(b"\r\n\r\n", b"\r\nContent-Transfer-Encoding: base64\r\n\r\n") + b"--zz--",
        {},
    ),
    "too many files": (
        "multipart/form-data; boundary=zz",
        PART % b"bundle" + PART % b"more" + b"--zz--",
        {"DATA_UPLOAD_MAX_NUMBER_FILES": 1},
    ),
    "too many fields": (
        "application/x-www-form-urlencoded",
        b"a=1&b=2&c=3",
        {"DATA_UPLOAD_MAX_NUMBER_FIELDS": 2},
    ),
    "a form that is not UTF-8": (
        "application/x-www-form-urlencoded; charset=latin-1",
        b"bundle=\xe9",
        {},
    ),
}


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("case", UNREADABLE_BODIES, ids=list(UNREADABLE_BODIES))
def test_unreadable_bundle_uploads_are_a_json_400(client, app, settings, case, debug):
    """A body Django's parsers cannot read is the API's JSON 400, with DEBUG on or off."""
    # Before: with DEBUG on, django-ninja answered the parser's error with a 500; off, Django
    # answered its HTML 400.
    content_type, body, overrides = UNREADABLE_BODIES[case]
    settings.DEBUG = debug
    for name, value in overrides.items():
        setattr(settings, name, value)
    response = client.generic(
        "POST", f"/api/v1/apps/{app.pk}/versions", body, content_type=content_type
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert not app.versions.exists()


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_a_body_past_the_upload_limit_is_a_json_413(client, settings, debug):
    """A JSON body larger than DATA_UPLOAD_MAX_MEMORY_SIZE: 413 with the API's error."""
    settings.DEBUG = debug
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"name": "x" * 2000})
    response = client.post("/api/v1/teams", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not Team.objects.exists()


@pytest.fixture
def victim(org) -> ApiKey:
    """Return an organization key for the requests to change."""
    return api_key_create(
        actor=Actor.operator("operator (tests)"),
        organization=org.organization,
        kind="org",
        name="victim",
        permissions=["projects:read", "secrets:read"],
    )[0]


@pytest.mark.parametrize(
    "expires_at",
    [
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC: PostgreSQL stored it, then every
        "0001-01-01T00:00:00+14:00",  # read of the keys failed; SQLite could not convert it
    ],
)
def test_expiry_past_what_utc_holds_is_422(client, victim, expires_at):
    """An expiry whose UTC time is past year 9999 or before year 1 is a 422, keys still read."""
    created = client.post(
        "/api/v1/keys",
        data=json.dumps({"permissions": ["projects:read"], "expires_at": expires_at}),
        content_type="application/json",
    )
    edited = client.patch(
        f"/api/v1/keys/{victim.pk}",
        data=json.dumps({"expires_at": expires_at}),
        content_type="application/json",
    )
    for response in (created, edited):
        assert response.status_code == 422
        assert "expires_at" in response.json()["error"]["message"]
    victim.refresh_from_db()
    assert victim.expires_at is None
    assert ApiKey.objects.count() == 2
    assert client.get("/api/v1/keys").status_code == 200
    assert client.get(f"/api/v1/keys/{victim.pk}").status_code == 200


def test_expiry_without_a_timezone_is_utc(client, victim):
    """An expiry without an offset is UTC, as in the console and the CLI (it was a 500)."""
    moment = datetime(2099, 1, 31, 23, 59, 59, tzinfo=UTC)
    created = client.post(
        "/api/v1/keys",
        data=json.dumps({"permissions": ["projects:read"], "expires_at": "2099-01-31T23:59:59"}),
        content_type="application/json",
    )
    assert created.status_code == 201
    assert ApiKey.objects.get(pk=created.json()["id"]).expires_at == moment
    edited = client.patch(
        f"/api/v1/keys/{victim.pk}",
        data=json.dumps({"expires_at": "2099-01-31T23:59:59"}),
        content_type="application/json",
    )
    assert edited.status_code == 200
    victim.refresh_from_db()
    assert victim.expires_at == moment
    past = client.patch(
        f"/api/v1/keys/{victim.pk}",
        data=json.dumps({"expires_at": "2000-01-01T00:00:00"}),
        content_type="application/json",
    )
    assert past.status_code == 422
    victim.refresh_from_db()
    assert victim.expires_at == moment


@pytest.mark.parametrize("parameter", ["name", "owner"])
def test_nul_in_a_key_filter_is_422(client, parameter):
    """NUL in the name or owner filter is refused before any query, as in request bodies."""
    # PostgreSQL cannot compare text holding NUL: the query failed, caught only by the
    # DataError guard's vague "cannot be stored".
    response = client.get(f"/api/v1/keys?{parameter}=a%00b")
    assert response.status_code == 422
    assert "NUL" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("name=99999999999999999999", 200),
        ("owner=99999999999999999999", 200),
        ("owner=%ff%fe", 200),
        ("name=%25_%5C", 200),
        ("status=99999999999999999999", 422),
        ("kind=99999999999999999999", 422),
        ("name=" + "x" * 101, 422),
        ("owner=" + "x" * 255, 422),
        ("limit=1e3", 422),
        ("offset=10000001", 422),
    ],
)
def test_odd_key_filters_are_200_or_422(client, query, status):
    """The keys list's filters: odd values find nothing or are refused, never a 500."""
    response = client.get(f"/api/v1/keys?{query}")
    assert response.status_code == status
    if status == 200:
        assert response.json()["items"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": None}, "name cannot be null"),
        ({"status": None}, "status cannot be null"),
        ({"permissions": None}, "permissions cannot be null"),
        ({"permissions": []}, "at least 1 item"),
        ({"permissions": ["nope:nope"]}, "Unknown permission"),
        ({"scopes": {"nope:nope": [{"type": "team", "id": 1}]}}, "is not one of this key"),
        ({"scopes": {"members:read": [{"type": "team", "id": 1}]}}, "is not one of this key"),
        ({"scopes": {"projects:read": [{"type": "environment", "id": 1}]}}, "can be scoped to"),
        ({"scopes": {"projects:read": [{"type": "team", "id": 10**30}]}}, "no such team"),
        ({"scopes": {"projects:read": [{"type": "team", "id": None}]}}, "id:"),
        ({"scopes": {"projects:read": None}}, "scopes.projects:read"),
        ({"scopes": []}, "scopes:"),
        ({"status": "revoked"}, "status:"),
        ({"expires_at": "tomorrow"}, "expires_at:"),
    ],
)
def test_odd_key_edits_are_422_and_change_nothing(client, victim, body, message):
    """PATCH /keys/{id} with nulls, unknown permissions, impossible scopes: 422, key as it was."""
    before = ApiKey.objects.filter(pk=victim.pk).values_list().get()
    response = client.patch(
        f"/api/v1/keys/{victim.pk}", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 422, response.content
    assert message in response.json()["error"]["message"]
    assert ApiKey.objects.filter(pk=victim.pk).values_list().get() == before


def test_scopes_on_another_organizations_resources_are_422(client, victim, foreign_tree):
    """A scope on another tenant's team, project, target or environment: 422, no such one."""
    before = ApiKey.objects.filter(pk=victim.pk).values_list().get()
    for kind, resource in [
        ("team", foreign_tree.project.team),
        ("project", foreign_tree.project),
        ("target", foreign_tree.target),
        ("environment", foreign_tree.environment),
    ]:
        body = {"scopes": {"secrets:read": [{"type": kind, "id": resource.pk}]}}
        response = client.patch(
            f"/api/v1/keys/{victim.pk}", data=json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 422, (kind, response.content)
        assert f"no such {kind}" in response.json()["error"]["message"]
    assert ApiKey.objects.filter(pk=victim.pk).values_list().get() == before


@pytest.mark.parametrize("depth", [500, 5000])
def test_deeply_nested_bodies_are_422(client, depth):
    """A body nested thousands of levels deep is a 422 (the NUL check's recursion was a 500)."""
    body = '{"name": ' + "[" * depth + "]" * depth + "}"
    response = client.post("/api/v1/teams", data=body, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert not Team.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/teams/%0A",  # the catch-all's "." did not match a newline: Django's HTML 404
        "/api/v1/keys/1%0A/revoke",
        "/api/v1/%0A",
        "/api/v1/keys/%E2%80%A8",
        "/api/v1/keys/%C2%9E%C2%80",
    ],
)
def test_paths_naming_no_operation_are_the_apis_json_404(client, path):
    """Any path under the API that names no operation, newlines included, is its JSON 404."""
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
