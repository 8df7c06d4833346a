"""Secrets in an environment, and its encryption key: each route guarded by its permission.

The environment is always fetched through `reachable(...)` with the route's own permission, so a
key's scopes and a project key's project apply; an environment outside them is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Path, Query, Schema, Status
from pydantic import Field

from apikeys.api.auth import api_actor
from apikeys.api.routing import Router, in_reach, paginate
from apikeys.api.schemas import Page, PageParams, Strict
from projects import secrets
from projects.models import SECRET_VALUE_MAX_BYTES, Environment, Secret, SecretVersion

router = Router(tags=["secrets"])
BASE = "/environments/{id:environment_id}"
# Version numbers beyond a bigint are not versions at all: refused (422) before the database.
MAX_ID = 2**63 - 1


class SecretOut(Schema):
    name: str
    version: int
    updated_at: datetime


class SecretValue(Schema):
    name: str
    version: int
    value: str


class SecretSet(Strict):
    value: str = Field(
        description=f"The value: text of at most {SECRET_VALUE_MAX_BYTES} bytes as UTF-8."
    )


class SecretVersionOut(Schema):
    version: int
    created_at: datetime
    origin: str = Field(description="web, api or cli")
    actor: str = Field(description="Who set it: a person's email, or a key's name and preview")
    restored_from: int | None = Field(description="The version this one restored, if any")


class EncryptionKeyOut(Schema):
    key_id: str = Field(description="A public id of the environment's current data key")
    created_at: datetime
    rotated_at: datetime | None


class EncryptionKeyRotated(EncryptionKeyOut):
    reencrypted_versions: int


EnvironmentId = int
VersionNumber = int
SecretName = Annotated[
    str,
    Path(
        description="An environment variable name (letters, digits and underscores, not "
        "starting with a digit), at most 100 characters"
    ),
]


def _environment(request: HttpRequest, environment_id: int) -> Environment:
    environments = in_reach(request, Environment.objects.all(), "environment")
    return get_object_or_404(environments.select_related("target__project"), pk=environment_id)


def _secret(environment: Environment, name: str) -> Secret:
    secrets.validate_secret_name(name)
    return get_object_or_404(Secret, environment=environment, name=name)


def _secret_out(version: SecretVersion) -> dict:
    return {
        "name": version.secret.name,
        "version": version.version,
        "updated_at": version.created_at,
    }


@router.get(
    f"{BASE}/secrets",
    permission="secrets:read",
    response={200: Page[SecretOut]},
    summary="List secret names and versions, never values, by name",
)
def list_secrets(request: HttpRequest, environment_id: EnvironmentId, page: Query[PageParams]):
    environment = _environment(request, environment_id)
    return paginate(
        secrets.secret_list(environment=environment),
        page,
        lambda s: {"name": s.name, "version": s.current_version, "updated_at": s.updated_at},
    )


@router.get(
    f"{BASE}/secrets/{{name}}",
    permission="secrets:decrypt",
    response={200: SecretValue},
    summary="Read a secret's value, the current one or `version`",
)
def get_secret(
    request: HttpRequest,
    name: SecretName,
    environment_id: EnvironmentId,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
):
    environment = _environment(request, environment_id)
    secrets.validate_secret_name(name)
    found = secrets.secret_version_get(environment=environment, name=name, version=version)
    if found is None:
        raise Http404("No such secret or version.")
    return {
        "name": found.secret.name,
        "version": found.version,
        "value": secrets.secret_decrypt(version=found),
    }


@router.put(
    f"{BASE}/secrets/{{name}}",
    permission="secrets:write",
    response={200: SecretOut, 201: SecretOut},
    summary="Set a secret's value: a new version each time; 201 when the secret is new",
)
def set_secret(
    request: HttpRequest, name: SecretName, payload: SecretSet, environment_id: EnvironmentId
):
    environment = _environment(request, environment_id)
    version = secrets.secret_set(
        actor=api_actor(request), environment=environment, name=name, value=payload.value
    )
    return Status(201 if version.version == 1 else 200, _secret_out(version))


@router.get(
    f"{BASE}/secrets/{{name}}/versions",
    permission="secrets:history",
    response={200: Page[SecretVersionOut]},
    summary="List a secret's versions, newest first, without values",
)
def list_secret_versions(
    request: HttpRequest,
    name: SecretName,
    environment_id: EnvironmentId,
    page: Query[PageParams],
):
    secret = _secret(_environment(request, environment_id), name)
    return paginate(
        secrets.secret_versions(secret=secret),
        page,
        lambda v: {
            "version": v.version,
            "created_at": v.created_at,
            "origin": v.origin,
            "actor": v.actor_label,
            "restored_from": v.restored_from,
        },
    )


@router.post(
    f"{BASE}/secrets/{{name}}/versions/{{id:version}}/restore",
    permission="secrets:restore",
    response={200: SecretOut},
    summary="Make an old version's value current again, as a new version",
)
def restore_secret_version(
    request: HttpRequest,
    name: SecretName,
    environment_id: EnvironmentId,
    version: VersionNumber,
):
    secret = _secret(_environment(request, environment_id), name)
    old = get_object_or_404(secret.versions.defer("ciphertext"), version=version)
    restored = secrets.secret_restore(actor=api_actor(request), version=old)
    return _secret_out(restored)


@router.delete(
    f"{BASE}/secrets/{{name}}",
    permission="secrets:purge",
    response={204: None},
    summary="Delete a secret and every version of it, for good",
)
def purge_secret(request: HttpRequest, name: SecretName, environment_id: EnvironmentId):
    secret = _secret(_environment(request, environment_id), name)
    secrets.secret_purge(actor=api_actor(request), secret=secret)
    return Status(204, None)


@router.get(
    f"{BASE}/encryption-key",
    permission="encryption-keys:read",
    response={200: EncryptionKeyOut},
    summary="The environment's data key: its id and dates, never key material",
)
def get_encryption_key(request: HttpRequest, environment_id: EnvironmentId):
    environment = _environment(request, environment_id)
    return secrets.encryption_key_get(environment=environment)


@router.post(
    f"{BASE}/encryption-key/rotate",
    permission="encryption-keys:rotate",
    response={200: EncryptionKeyRotated},
    summary="Give the environment a new data key and re-encrypt every version",
)
def rotate_encryption_key(request: HttpRequest, environment_id: EnvironmentId):
    environment = _environment(request, environment_id)
    key, count = secrets.encryption_key_rotate(actor=api_actor(request), environment=environment)
    return {
        "key_id": key.key_id,
        "created_at": key.created_at,
        "rotated_at": key.rotated_at,
        "reencrypted_versions": count,
    }
