"""Every API route, with the permission that guards it: one table that fails when a route is new.

For each row: no key is 401 (unless public); a key holding every permission but the row's is 403
naming it; a key holding it is neither 401 nor 403.
"""

from __future__ import annotations

import io
import json
import re
import tarfile

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from accounts.access import Actor
from apikeys.models import KeyKind
from apikeys.permissions import ALL
from apikeys.services import api_key_create
from projects.models import ApiKeyAccess
from projects.secrets import secret_set
from tests.factories import AppFactory, EnvironmentFactory

BUNDLE = "bundle"  # a multipart upload of a small, valid .tar.gz
PUBLIC = "public"
# `keyportal login`'s poll: no key, the device code is the proof; an unknown one is 400.
LOGIN = "login"
ANY_KEY = None
# A leak report: no key, holding the leaked one is the proof; always 202, whatever it names.
REPORT = "report"
# GitHub secret scanning: no key, GitHub's signature of the body; none is 401.
SIGNED = "signed"
# ninja's root route exists only so the API's URLs can be reversed; it answers 404.
ROOT = "root"

# fmt: off
API_ROUTES = [
    # method    path                                  permission              body
    ("get",    "/api/v1/",                           ROOT,                   None),
    # Any other path answers the API's 404: here an id beyond a bigint.
    ("get",    "/api/v1/keys/99999999999999999999",  ROOT,                   None),
    ("get",    "/api/v1/health",                     PUBLIC,                 None),
    ("get",    "/api/v1/ready",                      PUBLIC,                 None),
    ("get",    "/api/v1/openapi.json",               PUBLIC,                 None),
    ("get",    "/api/v1/docs",                       PUBLIC,                 None),
    ("get",    "/api/v1/whoami",                     ANY_KEY,                None),
    ("post",   "/api/v1/keys/verify",                ANY_KEY,                {"key": "sk-org-nope"}),
    ("post",   "/api/v1/whoami/revoke",              ANY_KEY,                None),
    ("post",   "/api/v1/device/code",                PUBLIC,                 {"client": "cli", "host": "h"}),
    ("post",   "/api/v1/device/token",               LOGIN,                  {"device_code": "nope"}),
    ("post",   "/api/v1/keys/leaked",                REPORT,                 {"token": "sk-org-nope"}),
    ("post",   "/api/v1/secret-scanning/github",     SIGNED,                 [{"token": "x", "type": "t", "url": "u", "source": "s"}]),
    ("get",    "/api/v1/keys",                       "api-keys:manage",      None),
    ("post",   "/api/v1/keys",                       "api-keys:manage",      {"permissions": ["projects:read"]}),
    ("get",    "/api/v1/keys/{key}",                 "api-keys:manage",      None),
    ("patch",  "/api/v1/keys/{key}",                 "api-keys:manage",      {"name": "renamed"}),
    ("delete", "/api/v1/keys/{key}",                 "api-keys:manage",      None),
    ("post",   "/api/v1/keys/{key}/rotate",          "api-keys:manage",      {}),
    ("post",   "/api/v1/keys/{key}/revoke",          "api-keys:manage",      None),
    ("get",    "/api/v1/organization",               "organization:read",    None),
    ("patch",  "/api/v1/organization",               "organization:update",  {"name": "Acme Corp"}),
    ("get",    "/api/v1/members",                    "members:read",         None),
    ("patch",  "/api/v1/members/{member}",           "members:update",       {"role": "admin"}),
    ("delete", "/api/v1/members/{member}",           "members:delete",       None),
    ("get",    "/api/v1/teams",                      "teams:read",           None),
    ("post",   "/api/v1/teams",                      "teams:create",         {"name": "New team"}),
    ("get",    "/api/v1/teams/{team}",               "teams:read",           None),
    ("patch",  "/api/v1/teams/{team}",               "teams:update",         {"name": "Renamed"}),
    ("delete", "/api/v1/teams/{team}",               "teams:delete",         None),
    ("get",    "/api/v1/projects",                   "projects:read",        None),
    ("post",   "/api/v1/projects",                   "projects:create",      {"name": "New", "team_id": "{team}"}),
    ("get",    "/api/v1/projects/{project}",         "projects:read",        None),
    ("patch",  "/api/v1/projects/{project}",         "projects:update",      {"name": "Renamed"}),
    ("delete", "/api/v1/projects/{project}",         "projects:delete",      None),
    ("get",    "/api/v1/targets",                    "targets:read",         None),
    ("post",   "/api/v1/targets",                    "targets:create",       {"name": "cron", "project_id": "{project}"}),
    ("get",    "/api/v1/targets/{target}",           "targets:read",         None),
    ("patch",  "/api/v1/targets/{target}",           "targets:update",       {"name": "renamed"}),
    ("delete", "/api/v1/targets/{target}",           "targets:delete",       None),
    ("get",    "/api/v1/environments",               "environments:read",    None),
    ("post",   "/api/v1/environments",               "environments:create",  {"name": "qa", "target_id": "{target}"}),
    ("get",    "/api/v1/environments/{environment}", "environments:read",    None),
    ("patch",  "/api/v1/environments/{environment}", "environments:update",  {"name": "renamed"}),
    ("delete", "/api/v1/environments/{environment}", "environments:delete",  None),
    ("get",    "/api/v1/apps",                       "apps:read",            None),
    ("post",   "/api/v1/apps",                       "apps:update",          {"name": "Docs", "slug": "docs", "project_id": "{project}"}),
    ("get",    "/api/v1/apps/{app}",                 "apps:read",            None),
    ("patch",  "/api/v1/apps/{app}",                 "apps:update",          {"name": "Renamed"}),
    ("get",    "/api/v1/apps/{app}/versions",        "apps:read",            None),
    ("post",   "/api/v1/apps/{app}/versions",        "apps:publish",         BUNDLE),
    # {environment} holds the secret API_TOKEN, at version 1.
    ("get",    "/api/v1/environments/{environment}/secrets",                                 "secrets:read",           None),
    ("get",    "/api/v1/environments/{environment}/secrets/API_TOKEN",                       "secrets:decrypt",        None),
    ("put",    "/api/v1/environments/{environment}/secrets/API_TOKEN",                       "secrets:write",          {"value": "new-value"}),
    ("delete", "/api/v1/environments/{environment}/secrets/API_TOKEN",                       "secrets:purge",          None),
    ("get",    "/api/v1/environments/{environment}/secrets/API_TOKEN/versions",              "secrets:history",        None),
    ("post",   "/api/v1/environments/{environment}/secrets/API_TOKEN/versions/1/restore",    "secrets:restore",        None),
    ("get",    "/api/v1/environments/{environment}/encryption-key",                          "encryption-keys:read",   None),
    ("post",   "/api/v1/environments/{environment}/encryption-key/rotate",                   "encryption-keys:rotate", None),
]
# fmt: on


def api_routes(patterns=None, prefix: str = ""):
    """Yield every route under /api/v1/."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        # As resolve() spells it: a regular expression's route has no leading "^".
        route = prefix + str(pattern.pattern).removeprefix("^")
        if isinstance(pattern, URLResolver):
            yield from api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
            yield route


@pytest.fixture
def world(org):
    """Return the objects the table's paths name, in the `org` fixture's organization."""
    environment = EnvironmentFactory(target__project__team__organization=org.organization)
    app = AppFactory(project=environment.target.project, api_key_access=ApiKeyAccess.CAN_EDIT)
    secret_set(
        actor=Actor.operator("operator (tests)"),
        environment=environment,
        name="API_TOKEN",
        value="v1",
    )
    target = environment.target
    spare, _ = api_key_create(
        actor=Actor.operator("operator (tests)"),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=["projects:read"],
    )
    return {
        "team": target.project.team.pk,
        "project": target.project.pk,
        "target": target.pk,
        "environment": environment.pk,
        "key": spare.pk,
        "member": org.member.pk,
        "app": app.pk,
    }


def key_with(org, permissions) -> str:
    """Return the token of an organization key holding `permissions`."""
    return api_key_create(
        actor=Actor.operator("operator (tests)"),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=sorted(permissions),
    )[1]


def tar_gz(files: dict[str, bytes]) -> io.BytesIO:
    """Return an in-memory .tar.gz holding `files`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    buffer.name = "bundle.tar.gz"
    return buffer


def fill(body: dict, world: dict) -> dict:
    """Replace "{name}" values in a body with the world's ids."""
    return {
        key: world[value[1:-1]] if isinstance(value, str) and value.startswith("{") else value
        for key, value in body.items()
    }


def call(method: str, path: str, body, world, token: str | None):
    client = Client()
    path = path.format(**world)
    kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if body is None:
        return getattr(client, method)(path, **kwargs)
    if body == BUNDLE:
        return client.post(path, {"bundle": tar_gz({"index.html": b"<h1>hi</h1>"})}, **kwargs)
    data = json.dumps(fill(body, world) if isinstance(body, dict) else body)
    return getattr(client, method)(path, data=data, content_type="application/json", **kwargs)


def test_every_api_route_is_in_the_table(world):
    """Each API route is reached by a row of the table, and each row by a route."""
    reached = {resolve(path.format(**world)).route for _m, path, _p, _b in API_ROUTES}
    assert set(api_routes()) == reached


def test_each_operation_declares_the_permission_of_the_table(world):
    """The permission each operation declares (its check, and the OpenAPI document's
    description and x-permission) is the one the table gives."""
    document = Client().get("/api/v1/openapi.json").json()
    declared = {
        (method, path): operation["x-permission"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    expected = {}
    for method, path, permission, _body in API_ROUTES:
        if permission == ROOT or path.endswith(("/openapi.json", "/docs")):
            continue
        template = resolve(path.format(**world)).route
        template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", "/" + template)
        declared_as = {
            PUBLIC: "public",
            LOGIN: "public",
            REPORT: "public",
            SIGNED: "public",
            ANY_KEY: "any key",
        }.get(permission)
        expected[(method, template)] = declared_as or permission
    assert declared == expected
    for (method, path), permission in declared.items():
        description = document["paths"][path][method]["description"]
        if permission not in ("public", "any key"):
            assert description.startswith(f"Needs the permission `{permission}`.")


@pytest.mark.parametrize(("method", "path", "permission", "body"), API_ROUTES)
def test_without_a_key(method, path, permission, body, world):
    """Without a key every route but the public ones is 401 with WWW-Authenticate."""
    response = call(method, path, body, world, None)
    if permission == ROOT:
        assert response.status_code == 404
    elif permission == PUBLIC:
        assert response.status_code == 200
    elif permission == LOGIN:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_grant"
    elif permission == REPORT:
        assert response.status_code == 202
    elif permission == SIGNED:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    else:
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["error"]["code"] == "invalid_key"


@pytest.mark.parametrize(
    ("method", "path", "permission", "body"),
    [r for r in API_ROUTES if r[2] not in (ROOT, PUBLIC, LOGIN, REPORT, SIGNED, ANY_KEY)],
)
def test_missing_permission_is_403_naming_it(method, path, permission, body, world, org):
    """A key holding everything except the route's permission gets 403 naming it."""
    response = call(method, path, body, world, key_with(org, ALL - {permission}))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "insufficient_scope",
        "message": f"The API key lacks the permission {permission}.",
        "permission": permission,
    }


@pytest.mark.parametrize(
    ("method", "path", "permission", "body"),
    [r for r in API_ROUTES if r[2] not in (ROOT, PUBLIC, LOGIN, REPORT, SIGNED)],
)
def test_with_the_permission(method, path, permission, body, world, org):
    """A key holding the route's permission gets through (2xx, or a 4xx other than 401/403).

    It also holds projects:read, which the keys it creates or rotates hold (DESIGN rule 1).
    """
    needed = {permission, "projects:read"} if permission else {"projects:read"}
    response = call(method, path, body, world, key_with(org, needed))
    assert response.status_code not in (401, 403), response.content
    assert response.status_code < 500
