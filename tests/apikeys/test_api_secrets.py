"""The secrets API: each endpoint allowed, refused without its permission, blind outside its reach."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.access import Actor
from accounts.models import AuditEvent, Membership, Origin, Role
from apikeys.models import ApiKey, KeyKind
from apikeys.permissions import ALL
from apikeys.services import api_key_create
from projects.models import SECRET_NAME_RE, EnvironmentKey, Secret, SecretVersion
from projects.secrets import secret_decrypt, secret_set, secret_version_get
from tests.projects.secret_helpers import environment_in

pytestmark = pytest.mark.django_db

# (method, path under /api/v1/environments/<id>/, permission, body, status when allowed)
# The environment holds API_TOKEN at version 1.
# fmt: off
ENDPOINTS = [
    ("get",    "secrets",                              "secrets:read",           None,               200),
    ("get",    "secrets/API_TOKEN",                    "secrets:decrypt",        None,               200),
    ("put",    "secrets/API_TOKEN",                    "secrets:write",          {"value": "new"},   200),
    ("put",    "secrets/NEW_ONE",                      "secrets:write",          {"value": "new"},   201),
    ("get",    "secrets/API_TOKEN/versions",           "secrets:history",        None,               200),
    ("post",   "secrets/API_TOKEN/versions/1/restore", "secrets:restore",        None,               200),
    ("delete", "secrets/API_TOKEN",                    "secrets:purge",          None,               204),
    ("get",    "encryption-key",                       "encryption-keys:read",   None,               200),
    ("post",   "encryption-key/rotate",                "encryption-keys:rotate", None,               200),
]
# fmt: on
ENDPOINT_IDS = [f"{method}-{path}" for method, path, *_ in ENDPOINTS]
WRITES = [e for e in ENDPOINTS if e[0] != "get"]


@pytest.fixture
def environment(org):
    """Return Payments / web / production of Acme, holding API_TOKEN at version 1."""
    environment = environment_in(org)
    secret_set(actor=Actor(user=org.owner), environment=environment, name="API_TOKEN", value="v1")
    return environment


@pytest.fixture
def sibling(org):
    """Return another environment of Acme, in another project, holding API_TOKEN too."""
    environment = environment_in(org, project="Other", name="staging")
    secret_set(actor=Actor(user=org.owner), environment=environment, name="API_TOKEN", value="s1")
    return environment


@pytest.fixture
def foreign(other_org):
    """Return an environment of Globex holding API_TOKEN."""
    environment = environment_in(other_org, project="Globex Project")
    secret_set(
        actor=Actor(user=other_org.owner), environment=environment, name="API_TOKEN", value="g1"
    )
    return environment


def org_key(org, permissions, scopes=None, name: str = "") -> str:
    """Return the token of an organization key of Acme."""
    return api_key_create(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=sorted(permissions),
        scopes=scopes,
        name=name,
    )[1]


def project_key(org, project, permissions) -> str:
    return api_key_create(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.PROJECT,
        owner=project,
        permissions=sorted(permissions),
    )[1]


def call(method, environment_id, path, token, body=None, raw: str | None = None):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/environments/{environment_id}/{path}"
    if raw is not None:
        return getattr(client, method)(url, data=raw, content_type="application/json")
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


def secrets_state() -> dict:
    """Return every row of the secrets tables and the history, to prove nothing changed."""
    return {
        model.__name__: list(model.objects.order_by("pk").values_list())
        for model in (Secret, SecretVersion, EnvironmentKey, AuditEvent)
    }


def value_of(environment, name: str) -> str:
    return secret_decrypt(version=secret_version_get(environment=environment, name=name))


# Each endpoint: allowed, missing permission, out of reach ------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "permission", "body", "status"), ENDPOINTS, ids=ENDPOINT_IDS
)
def test_allowed_with_the_permission(org, environment, method, path, permission, body, status):
    """A key holding only the endpoint's permission gets its answer."""
    response = call(method, environment.pk, path, org_key(org, {permission}), body)
    assert response.status_code == status, response.content


@pytest.mark.parametrize(
    ("method", "path", "permission", "body", "status"), ENDPOINTS, ids=ENDPOINT_IDS
)
def test_missing_permission_is_403_naming_it(
    org, environment, method, path, permission, body, status
):
    """A key with every permission but the endpoint's gets 403 naming it; nothing changes."""
    token = org_key(org, ALL - {permission})
    before = secrets_state()

    response = call(method, environment.pk, path, token, body)

    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "insufficient_scope",
        "message": f"The API key lacks the permission {permission}.",
        "permission": permission,
    }
    assert secrets_state() == before


@pytest.mark.parametrize(
    ("method", "path", "permission", "body", "status"), ENDPOINTS, ids=ENDPOINT_IDS
)
def test_scoped_to_this_environment_is_allowed(
    org, environment, method, path, permission, body, status
):
    """A key whose permission is scoped to this environment gets through."""
    token = org_key(
        org, {permission}, {permission: [{"type": "environment", "id": environment.pk}]}
    )
    assert call(method, environment.pk, path, token, body).status_code == status


@pytest.mark.parametrize(
    ("method", "path", "permission", "body", "status"), ENDPOINTS, ids=ENDPOINT_IDS
)
@pytest.mark.parametrize("level", ["environment", "target", "project"])
def test_scoped_elsewhere_is_404(
    org, environment, sibling, method, path, permission, body, status, level
):
    """A key scoped to another environment, target or project gets 404; nothing changes."""
    ref = {
        "environment": sibling.pk,
        "target": sibling.target_id,
        "project": sibling.target.project_id,
    }[level]
    token = org_key(org, {permission}, {permission: [{"type": level, "id": ref}]})
    before = secrets_state()

    response = call(method, environment.pk, path, token, body)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert secrets_state() == before


@pytest.mark.parametrize(
    ("method", "path", "permission", "body", "status"), ENDPOINTS, ids=ENDPOINT_IDS
)
def test_another_organizations_environment_is_404(
    org, foreign, method, path, permission, body, status
):
    """Globex's environment is 404 to a key of Acme holding every permission; nothing changes."""
    token = org_key(org, ALL)
    before = secrets_state()

    response = call(method, foreign.pk, path, token, body)

    assert response.status_code == 404
    assert b"g1" not in response.content
    assert secrets_state() == before


@pytest.mark.parametrize(
    ("method", "path", "permission", "body", "status"), ENDPOINTS, ids=ENDPOINT_IDS
)
def test_a_project_key_reaches_only_its_project(
    org, environment, sibling, method, path, permission, body, status
):
    """A project key reaches its own project's environments and gets 404 for the others'."""
    token = project_key(org, environment.target.project, {permission})
    before = secrets_state()

    assert call(method, sibling.pk, path, token, body).status_code == 404
    assert secrets_state() == before
    assert call(method, environment.pk, path, token, body).status_code == status


def test_an_unknown_environment_is_404(org):
    """An environment id that does not exist is 404."""
    assert call("get", 999999, "secrets", org_key(org, ALL)).status_code == 404


# What each endpoint answers ------------------------------------------------------------------


def test_list_gives_names_versions_and_dates_never_values(org, environment):
    """The list names each secret with its current version and last change, and no value."""
    secret_set(actor=Actor(user=org.owner), environment=environment, name="API_TOKEN", value="v2")
    secret_set(actor=Actor(user=org.owner), environment=environment, name="DB_URL", value="db")

    response = call("get", environment.pk, "secrets", org_key(org, {"secrets:read"}))

    page = response.json()
    body = page["items"]
    assert (page["total"], page["next_offset"]) == (2, None)
    assert [(s["name"], s["version"]) for s in body] == [("API_TOKEN", 2), ("DB_URL", 1)]
    assert set(body[0]) == {"name", "version", "updated_at"}
    assert b"v2" not in response.content
    assert response["Cache-Control"] == "no-store"


def test_read_gives_the_current_value_or_an_older_version(org, environment):
    """Reading gives the current value; ?version= gives an older one; a missing one is 404."""
    secret_set(actor=Actor(user=org.owner), environment=environment, name="API_TOKEN", value="v2")
    token = org_key(org, {"secrets:decrypt"})

    current = call("get", environment.pk, "secrets/API_TOKEN", token)
    older = call("get", environment.pk, "secrets/API_TOKEN?version=1", token)

    assert current.json() == {"name": "API_TOKEN", "version": 2, "value": "v2"}
    assert older.json() == {"name": "API_TOKEN", "version": 1, "value": "v1"}
    assert current["Cache-Control"] == "no-store"
    assert call("get", environment.pk, "secrets/API_TOKEN?version=3", token).status_code == 404
    assert call("get", environment.pk, "secrets/NOPE", token).status_code == 404


def test_put_makes_a_new_version_each_time(org, environment):
    """Each PUT makes the next version and answers it; a new name answers 201 at version 1."""
    token = org_key(org, {"secrets:write"})

    updated = call("put", environment.pk, "secrets/API_TOKEN", token, {"value": "v2"})
    again = call("put", environment.pk, "secrets/API_TOKEN", token, {"value": "v2"})
    created = call("put", environment.pk, "secrets/NEW_ONE", token, {"value": ""})

    assert (updated.status_code, updated.json()["version"]) == (200, 2)
    assert (again.status_code, again.json()["version"]) == (200, 3)
    assert (created.status_code, created.json()["name"], created.json()["version"]) == (
        201,
        "NEW_ONE",
        1,
    )
    assert set(updated.json()) == {"name", "version", "updated_at"}
    assert value_of(environment, "API_TOKEN") == "v2"
    assert value_of(environment, "NEW_ONE") == ""


def test_writes_are_recorded_as_from_the_api_with_the_keys_name(org, environment):
    """A write through the API records origin API, the key's name and preview, on the version
    and on the history row."""
    token = org_key(org, {"secrets:write"}, name="deploy")
    key = ApiKey.objects.get(name="deploy")

    call("put", environment.pk, "secrets/API_TOKEN", token, {"value": "v2"})

    version = SecretVersion.objects.get(version=2)
    assert version.origin == Origin.API
    assert version.actor_label == f"deploy ({key.preview})"
    event = AuditEvent.objects.get(action="secret.set", origin=Origin.API)
    assert (event.actor_label, event.actor_key_id) == (f"deploy ({key.preview})", key.pk)


def test_a_personal_key_records_its_owner_and_follows_their_role(org, environment):
    """A personal key's writes name its owner; once the owner is a member, they are refused."""
    token = api_key_create(
        actor=Actor(user=org.admin),
        organization=org.organization,
        kind=KeyKind.USER,
        owner=org.admin,
        permissions=["secrets:write"],
        expires_at=timezone.now() + timedelta(days=7),
    )[1]

    assert call("put", environment.pk, "secrets/A", token, {"value": "x"}).status_code == 201
    assert SecretVersion.objects.get(secret__name="A").created_by == org.admin

    Membership.objects.filter(user=org.admin).update(role=Role.MEMBER)
    refused = call("put", environment.pk, "secrets/A", token, {"value": "y"})
    assert refused.status_code == 403
    assert refused.json()["error"]["permission"] == "secrets:write"


def test_versions_list_history_without_values(org, environment):
    """Versions come newest first with when, from where and by whom; never a value."""
    call(
        "put",
        environment.pk,
        "secrets/API_TOKEN",
        org_key(org, {"secrets:write"}, name="ci"),
        {"value": "v2"},
    )

    response = call(
        "get", environment.pk, "secrets/API_TOKEN/versions", org_key(org, {"secrets:history"})
    )

    body = response.json()["items"]
    assert [(v["version"], v["origin"]) for v in body] == [(2, "api"), (1, "web")]
    assert body[0]["actor"].startswith("ci (sk-org-...")
    assert body[1]["actor"] == org.owner.email
    assert set(body[0]) == {"version", "created_at", "origin", "actor", "restored_from"}
    # Quoted: the values as JSON strings (a key preview like "sk-org-...kv1R" may hold v1).
    assert b'"v1"' not in response.content and b'"v2"' not in response.content


def test_restore_makes_an_old_value_current(org, environment):
    """Restoring version 1 answers version 3, whose value is version 1's."""
    call(
        "put", environment.pk, "secrets/API_TOKEN", org_key(org, {"secrets:write"}), {"value": "v2"}
    )

    response = call(
        "post",
        environment.pk,
        "secrets/API_TOKEN/versions/1/restore",
        org_key(org, {"secrets:restore"}),
    )

    assert response.status_code == 200
    assert response.json()["version"] == 3
    assert value_of(environment, "API_TOKEN") == "v1"
    versions = call(
        "get", environment.pk, "secrets/API_TOKEN/versions", org_key(org, {"secrets:history"})
    )
    assert versions.json()["items"][0]["restored_from"] == 1


def test_restoring_a_missing_version_is_404(org, environment):
    """A version that does not exist cannot be restored, and nothing changes."""
    token = org_key(org, {"secrets:restore"})
    before = secrets_state()
    response = call("post", environment.pk, "secrets/API_TOKEN/versions/5/restore", token)
    assert response.status_code == 404
    assert secrets_state() == before


def test_purge_deletes_for_good(org, environment):
    """DELETE answers 204; afterwards the secret and its versions are gone (404)."""
    token = org_key(org, {"secrets:purge", "secrets:decrypt", "secrets:history"})

    assert call("delete", environment.pk, "secrets/API_TOKEN", token).status_code == 204

    assert not Secret.objects.filter(environment=environment).exists()
    assert call("get", environment.pk, "secrets/API_TOKEN", token).status_code == 404
    assert call("get", environment.pk, "secrets/API_TOKEN/versions", token).status_code == 404
    assert call("delete", environment.pk, "secrets/API_TOKEN", token).status_code == 404


def test_encryption_key_gives_its_id_and_dates_never_key_material(org, environment):
    """The key endpoint answers key_id, created_at and rotated_at, and nothing else."""
    key = EnvironmentKey.objects.get(environment=environment)

    response = call("get", environment.pk, "encryption-key", org_key(org, {"encryption-keys:read"}))

    body = response.json()
    assert set(body) == {"key_id", "created_at", "rotated_at"}
    assert body["key_id"] == key.key_id
    assert body["rotated_at"] is None
    assert key.encrypted_key not in response.content.decode()


def test_rotate_re_encrypts_and_values_read_the_same(org, environment):
    """Rotating answers a new key id and the count re-encrypted; values read back unchanged."""
    call(
        "put", environment.pk, "secrets/API_TOKEN", org_key(org, {"secrets:write"}), {"value": "v2"}
    )
    before = EnvironmentKey.objects.get(environment=environment)
    ciphertexts = set(SecretVersion.objects.values_list("ciphertext", flat=True))

    response = call(
        "post", environment.pk, "encryption-key/rotate", org_key(org, {"encryption-keys:rotate"})
    )

    body = response.json()
    assert body["key_id"] != before.key_id
    assert body["reencrypted_versions"] == 2
    assert body["rotated_at"] is not None
    assert set(body) == {"key_id", "created_at", "rotated_at", "reencrypted_versions"}
    assert not ciphertexts & set(SecretVersion.objects.values_list("ciphertext", flat=True))
    token = org_key(org, {"secrets:decrypt", "encryption-keys:read"})
    assert call("get", environment.pk, "secrets/API_TOKEN?version=1", token).json()["value"] == "v1"
    assert call("get", environment.pk, "secrets/API_TOKEN", token).json()["value"] == "v2"
    assert call("get", environment.pk, "encryption-key", token).json()["key_id"] == body["key_id"]
    assert AuditEvent.objects.filter(action="encryption_key.rotated", origin=Origin.API).exists()


# Bad input -----------------------------------------------------------------------------------

BAD_NAMES = ["1BAD", "BAD-NAME", "BAD.NAME", "BAD%20NAME", "BAD%0A", "%C3%89T%C3%89", "A" * 101]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    ("method", "suffix", "permission", "body"),
    [
        ("put", "", "secrets:write", {"value": "x"}),
        ("get", "", "secrets:decrypt", None),
        ("get", "/versions", "secrets:history", None),
        ("post", "/versions/1/restore", "secrets:restore", None),
        ("delete", "", "secrets:purge", None),
    ],
    ids=["put", "read", "versions", "restore", "purge"],
)
def test_a_name_that_is_not_an_environment_variable_is_422(
    org, environment, name, method, suffix, permission, body
):
    """A secret name that is not an environment variable name answers 422 and changes nothing."""
    token = org_key(org, {permission})
    before = secrets_state()

    response = call(method, environment.pk, f"secrets/{name}{suffix}", token, body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "environment variable name" in error["message"] or "100 characters" in error["message"]
    assert secrets_state() == before


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (json.dumps({"value": "x" * 65537}), "at most 64 KB"),
        (json.dumps({"value": "é" * 32769}), "at most 64 KB"),
        (json.dumps({"value": "x" * 1_000_000}), "at most 64 KB"),
        (json.dumps({"value": "a\u0000b"}), "NUL"),
        ('{"value": "\\ud800"}', "valid Unicode"),
        (json.dumps({"value": "x", "extra": 1}), "extra"),
        (json.dumps({"value": "x", "version": 3}), "version"),
        (json.dumps({"value": 123}), "valid string"),
        (json.dumps({"value": None}), "valid string"),
        (json.dumps({"value": ["x"]}), "valid string"),
        (json.dumps({"value": {"x": 1}}), "valid string"),
        (json.dumps({}), "value: Field required"),
        (json.dumps([]), "valid dictionary"),
        (json.dumps("x"), "valid dictionary"),
        ("", "Field required"),
    ],
    ids=[
        "over-64KB",
        "over-64KB-utf8",
        "1MB",
        "nul",
        "lone-surrogate",
        "unknown-field",
        "unknown-version-field",
        "number",
        "null",
        "list",
        "object",
        "missing",
        "array",
        "string",
        "empty-body",
    ],
)
def test_a_bad_body_is_422_and_changes_nothing(org, environment, raw, message):
    """Oversize values, unknown fields and wrong types answer 422 with a message; nothing changes."""
    token = org_key(org, {"secrets:write"})
    before = secrets_state()

    response = call("put", environment.pk, "secrets/API_TOKEN", token, raw=raw)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert message in response.json()["error"]["message"]
    assert secrets_state() == before


def test_malformed_json_is_refused_as_bad_request(org, environment):
    """A body that is not JSON is a 400, like everywhere in the API; nothing changes."""
    token = org_key(org, {"secrets:write"})
    before = secrets_state()
    response = call("put", environment.pk, "secrets/API_TOKEN", token, raw="{bad")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert secrets_state() == before


@pytest.mark.parametrize(
    "path",
    ["/api/v1/environments/0/secrets", "/api/v1/environments/99999999999999999999999/secrets"],
)
def test_ids_out_of_range_are_404(org, environment, path):
    """An id that cannot exist, beyond a bigint included, is a 404 like any id that does not."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {org_key(org, ALL)}")
    response = client.get(path.format(env=environment.pk))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/environments/{env}/secrets/API_TOKEN?version=0",
        "/api/v1/environments/{env}/secrets/API_TOKEN?version=99999999999999999999999",
        "/api/v1/environments/{env}/secrets/API_TOKEN?version=abc",
    ],
)
def test_versions_out_of_range_are_422(org, environment, path):
    """A version query that cannot name a version is refused with 422, never a database error."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {org_key(org, ALL)}")
    response = client.get(path.format(env=environment.pk))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_restoring_version_zero_or_beyond_a_bigint_is_404(org, environment):
    """A restore of version 0 or of a number beyond a bigint names no version: 404."""
    token = org_key(org, {"secrets:restore"})
    for version in ("0", "99999999999999999999999"):
        response = call(
            "post", environment.pk, f"secrets/API_TOKEN/versions/{version}/restore", token
        )
        assert response.status_code == 404


def test_every_route_is_in_the_openapi_document_with_its_permission():
    """The OpenAPI document lists every secrets route, each declaring its permission."""
    document = Client().get("/api/v1/openapi.json").json()
    operations = {
        (method.upper(), path.removeprefix("/api/v1/environments/{environment_id}/")): op
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/environments/{environment_id}/")
        for method, op in item.items()
    }
    expected = {
        ("GET", "secrets"): "secrets:read",
        ("GET", "secrets/{name}"): "secrets:decrypt",
        ("PUT", "secrets/{name}"): "secrets:write",
        ("DELETE", "secrets/{name}"): "secrets:purge",
        ("GET", "secrets/{name}/versions"): "secrets:history",
        ("POST", "secrets/{name}/versions/{version}/restore"): "secrets:restore",
        ("GET", "encryption-key"): "encryption-keys:read",
        ("POST", "encryption-key/rotate"): "encryption-keys:rotate",
    }
    assert set(operations) == set(expected)
    for operation, permission in expected.items():
        assert operations[operation]["x-permission"] == permission
        assert f"Needs the permission `{permission}`." in operations[operation]["description"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(min_size=1, max_size=120).filter(lambda n: "/" not in n and "?" not in n),
    value=st.text(max_size=300),
)
def test_any_name_and_value_is_stored_exactly_or_refused_never_a_5xx(org, environment, name, value):
    """Whatever the name and value, a PUT is stored and reads back exactly, or is a 422."""
    token = org_key(org, {"secrets:write", "secrets:decrypt"})
    quoted = quote(name, safe="")

    response = call("put", environment.pk, f"secrets/{quoted}", token, {"value": value})

    valid = bool(SECRET_NAME_RE.fullmatch(name)) and len(name) <= 100 and "\x00" not in value
    if not valid:
        assert response.status_code == 422, response.content
        return
    assert response.status_code in (200, 201), response.content
    assert call("get", environment.pk, f"secrets/{quoted}", token).json()["value"] == value
