"""The OpenAPI document as a generated client reads it (issue 14, item 5).

One table names every operation: its id (lowerCamelCase, verb then noun, what a client's
function is called: listKeys is `list_keys`) and its tag (the client's module: `api.keys`). A
new operation fails here until it has a row. The document also holds that every list answers
the same page of `?limit=&offset=`, and that every error an operation declares is the Error
schema with a description of its codes; every operation that takes a key declares 401.
scripts/ci-openapi-client generates a client from the document and runs it against a server.
"""

from __future__ import annotations

import pytest
from django.test import Client

from apikeys.api import api
from apikeys.api.routing import ERROR_DESCRIPTIONS, OPERATION_ID

# fmt: off
OPERATIONS = [
    # method    path                                                              operation id                  tag
    ("GET",    "/health",                                                         "getHealth",                  "health"),
    ("GET",    "/ready",                                                          "getReadiness",               "health"),
    ("GET",    "/whoami",                                                         "whoami",                     "keys"),
    ("POST",   "/whoami/revoke",                                                  "revokeCurrentKey",           "keys"),
    ("POST",   "/keys/verify",                                                    "verifyKey",                  "keys"),
    ("GET",    "/keys",                                                           "listKeys",                   "keys"),
    ("POST",   "/keys",                                                           "createKey",                  "keys"),
    ("GET",    "/keys/{key_id}",                                                  "getKey",                     "keys"),
    ("PATCH",  "/keys/{key_id}",                                                  "updateKey",                  "keys"),
    ("DELETE", "/keys/{key_id}",                                                  "deleteKey",                  "keys"),
    ("POST",   "/keys/{key_id}/rotate",                                           "rotateKey",                  "keys"),
    ("POST",   "/keys/{key_id}/revoke",                                           "revokeKey",                  "keys"),
    ("GET",    "/organization",                                                   "getOrganization",            "organization"),
    ("PATCH",  "/organization",                                                   "updateOrganization",         "organization"),
    ("GET",    "/members",                                                        "listMembers",                "members"),
    ("PATCH",  "/members/{user_id}",                                              "updateMember",               "members"),
    ("DELETE", "/members/{user_id}",                                              "removeMember",               "members"),
    ("GET",    "/teams",                                                          "listTeams",                  "teams"),
    ("POST",   "/teams",                                                          "createTeam",                 "teams"),
    ("GET",    "/teams/{item_id}",                                                "getTeam",                    "teams"),
    ("PATCH",  "/teams/{item_id}",                                                "updateTeam",                 "teams"),
    ("DELETE", "/teams/{item_id}",                                                "deleteTeam",                 "teams"),
    ("GET",    "/projects",                                                       "listProjects",               "projects"),
    ("POST",   "/projects",                                                       "createProject",              "projects"),
    ("GET",    "/projects/{item_id}",                                             "getProject",                 "projects"),
    ("PATCH",  "/projects/{item_id}",                                             "updateProject",              "projects"),
    ("DELETE", "/projects/{item_id}",                                             "deleteProject",              "projects"),
    ("GET",    "/targets",                                                        "listTargets",                "targets"),
    ("POST",   "/targets",                                                        "createTarget",               "targets"),
    ("GET",    "/targets/{item_id}",                                              "getTarget",                  "targets"),
    ("PATCH",  "/targets/{item_id}",                                              "updateTarget",               "targets"),
    ("DELETE", "/targets/{item_id}",                                              "deleteTarget",               "targets"),
    ("GET",    "/environments",                                                   "listEnvironments",           "environments"),
    ("POST",   "/environments",                                                   "createEnvironment",          "environments"),
    ("GET",    "/environments/{item_id}",                                         "getEnvironment",             "environments"),
    ("PATCH",  "/environments/{item_id}",                                         "updateEnvironment",          "environments"),
    ("DELETE", "/environments/{item_id}",                                         "deleteEnvironment",          "environments"),
    ("GET",    "/apps",                                                           "listApps",                   "apps"),
    ("POST",   "/apps",                                                           "createApp",                  "apps"),
    ("GET",    "/apps/{app_id}",                                                  "getApp",                     "apps"),
    ("PATCH",  "/apps/{app_id}",                                                  "updateApp",                  "apps"),
    ("GET",    "/apps/{app_id}/versions",                                         "listAppVersions",            "apps"),
    ("POST",   "/apps/{app_id}/versions",                                         "publishAppVersion",          "apps"),
    ("GET",    "/environments/{environment_id}/secrets",                          "listSecrets",                "secrets"),
    ("GET",    "/environments/{environment_id}/secrets/{name}",                   "getSecret",                  "secrets"),
    ("PUT",    "/environments/{environment_id}/secrets/{name}",                   "setSecret",                  "secrets"),
    ("DELETE", "/environments/{environment_id}/secrets/{name}",                   "purgeSecret",                "secrets"),
    ("GET",    "/environments/{environment_id}/secrets/{name}/versions",          "listSecretVersions",         "secrets"),
    ("POST",   "/environments/{environment_id}/secrets/{name}/versions/{version}/restore",
                                                                                  "restoreSecretVersion",       "secrets"),
    ("GET",    "/environments/{environment_id}/encryption-key",                   "getEncryptionKey",           "secrets"),
    ("POST",   "/environments/{environment_id}/encryption-key/rotate",            "rotateEncryptionKey",        "secrets"),
    ("POST",   "/device/code",                                                    "createDeviceCode",           "device login"),
    ("POST",   "/device/token",                                                   "pollDeviceToken",            "device login"),
    ("POST",   "/keys/leaked",                                                    "reportLeakedKey",            "leaks"),
    ("POST",   "/secret-scanning/github",                                         "receiveGithubSecretScanning", "leaks"),
]
# fmt: on
PAGE_FIELDS = {"items", "total", "limit", "offset", "next_offset"}
ERROR = {"$ref": "#/components/schemas/Error"}
OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthError"}


@pytest.fixture(scope="module")
def document() -> dict:
    return api.get_openapi_schema()


def operations(document: dict):
    """Yield (method, path without /api/v1, operation) for every operation of the document."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path.removeprefix("/api/v1"), operation


def resolved(document: dict, schema: dict) -> dict:
    """Return `schema`, following its $ref into the document's components."""
    reference = schema.get("$ref", "")
    if reference:
        return document["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    return schema


def success(operation: dict) -> dict | None:
    """Return the JSON schema of the operation's first 2xx answer with a body, if any."""
    for status, answer in sorted(operation["responses"].items()):
        if str(status).startswith("2") and "content" in answer:
            return answer["content"]["application/json"]["schema"]
    return None


def test_the_operation_ids_are_the_table(document):
    """Every operation has the id and the tag of its row, and every row is an operation."""
    found = sorted(
        (method, path, op["operationId"], tuple(op.get("tags", ())))
        for method, path, op in operations(document)
    )
    expected = sorted((method, path, name, (tag,)) for method, path, name, tag in OPERATIONS)
    assert found == expected


def test_operation_ids_are_unique_and_read_as_verb_and_noun(document):
    names = [op["operationId"] for _method, _path, op in operations(document)]
    assert len(names) == len(set(names))
    for name in names:
        assert OPERATION_ID.fullmatch(name), name


def test_the_document_served_is_the_one_tested(document):
    """What /api/v1/openapi.json serves names the operations the same way."""
    served = Client().get("/api/v1/openapi.json").json()
    assert {op["operationId"] for *_, op in operations(served)} == {
        op["operationId"] for *_, op in operations(document)
    }


def test_every_list_answers_the_same_page(document):
    """Each GET answering many things answers a Page: its items, the total, limit, offset and
    next_offset, and takes `limit` and `offset`; no operation answers a bare list but GitHub's
    secret scanning (whose format is GitHub's)."""
    lists = []
    for method, path, op in operations(document):
        body = success(op)
        if body is None:
            continue
        schema = resolved(document, body)
        if schema.get("type") == "array":
            assert op["operationId"] == "receiveGithubSecretScanning", path
            continue
        if op["operationId"].startswith("list"):
            lists.append(op["operationId"])
            assert method == "GET", path
            assert schema["title"].endswith("Page"), path
            assert set(schema["properties"]) == PAGE_FIELDS, path
            assert set(schema["required"]) == PAGE_FIELDS, path
            assert schema["properties"]["items"]["type"] == "array", path
            parameters = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
            assert parameters["limit"]["schema"]["default"] == 50, path
            assert parameters["limit"]["schema"]["maximum"] == 200, path
            assert parameters["offset"]["schema"]["minimum"] == 0, path
        else:
            assert not set(schema.get("properties", {})) >= PAGE_FIELDS, path
    assert sorted(lists) == sorted(
        name for _m, _p, name, _t in OPERATIONS if name.startswith("list")
    )
    assert len(lists) == 10


def test_every_operation_taking_a_key_declares_401(document):
    """Each operation but the public ones declares 401, 403 and 429: the key's own checks."""
    for _method, path, op in operations(document):
        if op["x-permission"] == "public":
            assert "security" not in op, path
            continue
        assert {"401", "403", "429"} <= {str(status) for status in op["responses"]}, path


def test_errors_are_declared_with_the_error_schema_and_their_codes(document):
    """Every 4xx and 5xx an operation declares is the Error body, described by its codes; a
    path naming an object declares 404, an operation taking input 422."""
    for _method, path, op in operations(document):
        statuses = {int(status): answer for status, answer in op["responses"].items()}
        for status, answer in statuses.items():
            if status < 400 or op["operationId"] == "getReadiness":  # 503: the Ready body
                continue
            schema = answer["content"]["application/json"]["schema"]
            bodies = schema.get("anyOf", [schema])
            if op["tags"] == ["device login"]:
                # RFC 8628's form dialect answers RFC 6749's errors, the JSON one the API's.
                assert set(map(str, bodies)) <= {str(ERROR), str(OAUTH_ERROR)}, (path, status)
            else:
                assert bodies == [ERROR], (path, status)
            assert "`" in answer["description"], (path, status)  # names its error.code
        if op["x-permission"] != "public" and "{" in path:
            assert 404 in statuses, path
        if op.get("parameters") or "requestBody" in op:
            assert 422 in statuses, path


def test_every_error_status_has_a_description():
    for status in (400, 401, 403, 404, 409, 413, 422, 429, 503):
        assert ERROR_DESCRIPTIONS[status]


def test_every_area_is_a_tag(document):
    tags = {tag for *_, op in operations(document) for tag in op["tags"]}
    assert tags == {
        "keys",
        "organization",
        "members",
        "teams",
        "projects",
        "targets",
        "environments",
        "apps",
        "secrets",
        "device login",
        "leaks",
        "health",
    }
