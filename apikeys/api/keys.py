"""API endpoints about keys: health, whoami, verify, and managing keys (api-keys:manage)."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status
from ninja.responses import NinjaJSONEncoder

from accounts.models import ServiceAccount, User
from apikeys.api.auth import api_actor
from apikeys.api.schemas import (
    Error,
    Health,
    Key,
    KeyCreate,
    KeyCreated,
    KeyRotate,
    VerifyRequest,
    VerifyResult,
    WhoAmI,
)
from apikeys.models import ApiKey, KeyKind
from apikeys.permissions import ordered
from apikeys.reach import require
from apikeys.services import api_key_create, api_key_revoke, api_key_rotate
from apikeys.verification import KeyRejected, VerifiedKey, verify_token
from projects.models import Project

router = Router(tags=["keys"])
MANAGE = "api-keys:manage"


def key_out(api_key: ApiKey) -> dict:
    """Return a key as the API shows it: never its digest, never its plaintext."""
    owner = api_key.owner
    owner_type = {
        KeyKind.USER: "user",
        KeyKind.SERVICE_ACCOUNT: "service_account",
        KeyKind.PROJECT: "project",
    }.get(api_key.kind, "organization")
    return {
        "id": api_key.pk,
        "name": api_key.name,
        "kind": api_key.kind,
        "preview": api_key.preview,
        "status": api_key.status,
        "state": api_key.state,
        "permissions": api_key.permissions,
        "scopes": api_key.scopes,
        "expires_at": api_key.expires_at,
        "created_at": api_key.created_at,
        "last_used_at": api_key.last_used_at,
        "owner": {"type": owner_type, "id": owner.pk, "name": str(owner)},
    }


@router.get("/health", auth=None, response=Health, summary="Health check (no key needed)")
def health(request: HttpRequest):
    return {"status": "ok"}


@router.get("/whoami", response={200: WhoAmI, 401: Error}, summary="The key making this request")
def whoami(request: HttpRequest):
    verified: VerifiedKey = request.auth
    # The most frequent authenticated call (clients use it to check their key) renders its
    # body directly instead of letting django-ninja validate what `whoami_out` built: that
    # second pass cost as much as verifying the key. The OpenAPI document still describes it
    # as WhoAmI, and tests check the body against that schema.
    return HttpResponse(
        json.dumps(whoami_out(verified), cls=NinjaJSONEncoder),
        content_type="application/json; charset=utf-8",
    )


def whoami_out(verified: VerifiedKey) -> dict:
    """Return what /whoami says of the key making the request."""
    organization = verified.api_key.organization
    return {
        **key_out(verified.api_key),
        "effective_permissions": ordered(verified.permissions),
        "organization": {
            "id": organization.pk,
            "name": organization.name,
            "slug": organization.slug,
        },
    }


@router.post(
    "/whoami/revoke",
    response={200: Key, 401: Error},
    summary="Revoke the key making this request (no permission needed; used by CLI logout)",
)
def whoami_revoke(request: HttpRequest):
    verified: VerifiedKey = request.auth
    return key_out(api_key_revoke(actor=api_actor(request), api_key=verified.api_key))


@router.post(
    "/keys/verify",
    response={200: VerifyResult, 401: Error},
    summary="Check a key another program was given (same organization only)",
)
def verify(request: HttpRequest, payload: VerifyRequest):
    caller: VerifiedKey = request.auth
    try:
        checked = verify_token(payload.key)
    except KeyRejected as rejected:
        return {"valid": False, "code": rejected.code, "message": rejected.message}
    if checked.api_key.organization_id != caller.api_key.organization_id:
        # Another tenant's key is indistinguishable from a key that does not exist.
        return {"valid": False, "code": "invalid_key", "message": "The API key is not valid."}
    return {
        "valid": True,
        "key": key_out(checked.api_key),
        "effective_permissions": ordered(checked.permissions),
    }


def _managed_keys(request: HttpRequest):
    verified: VerifiedKey = request.auth
    require(verified, MANAGE)
    return ApiKey.objects.filter(organization_id=verified.api_key.organization_id).select_related(
        "organization", "owner_user", "owner_service_account", "owner_project"
    )


@router.get(
    "/keys",
    response={200: list[Key], 401: Error, 403: Error},
    summary="List keys (api-keys:manage)",
)
def list_keys(
    request: HttpRequest,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000_000),
):
    keys = _managed_keys(request).filter(revoked_at__isnull=True)
    return [key_out(k) for k in keys[offset : offset + limit]]


def _owner(request: HttpRequest, payload: KeyCreate):
    verified: VerifiedKey = request.auth
    org_id = verified.api_key.organization_id
    match payload.kind:
        case KeyKind.ORGANIZATION:
            return None
        case KeyKind.PROJECT:
            return get_object_or_404(Project, organization_id=org_id, pk=payload.owner_id)
        case KeyKind.SERVICE_ACCOUNT:
            account = get_object_or_404(ServiceAccount, organization_id=org_id, pk=payload.owner_id)
            if not account.is_active:
                raise ValidationError("The service account is deactivated.")
            return account
    # Personal keys: a personal key may make more personal keys for its own owner only.
    key = verified.api_key
    if key.kind != KeyKind.USER or payload.owner_id not in (None, key.owner_user_id):
        raise ValidationError("Personal keys can be created only by their owner.")
    return get_object_or_404(User, pk=key.owner_user_id)


@router.post(
    "/keys",
    response={201: KeyCreated, 401: Error, 403: Error, 404: Error, 422: Error},
    summary="Create a key (api-keys:manage); its plaintext is in this response only",
)
def create_key(request: HttpRequest, payload: KeyCreate):
    _managed_keys(request)
    api_key, token = api_key_create(
        actor=api_actor(request),
        organization=request.auth.api_key.organization,
        kind=payload.kind,
        owner=_owner(request, payload),
        name=payload.name,
        permissions=payload.permissions,
        scopes={pid: [ref.model_dump() for ref in refs] for pid, refs in payload.scopes.items()},
        expires_at=payload.expires_at,
    )
    return Status(201, {**key_out(api_key), "token": token})


@router.post(
    "/keys/{key_id}/rotate",
    response={200: KeyCreated, 401: Error, 403: Error, 404: Error, 422: Error},
    summary="Rotate a key (api-keys:manage); the new plaintext is in this response only",
)
def rotate_key(request: HttpRequest, key_id: int, payload: KeyRotate):
    api_key = get_object_or_404(_managed_keys(request), pk=key_id)
    api_key, token = api_key_rotate(actor=api_actor(request), api_key=api_key, grace=payload.grace)
    return Status(200, {**key_out(api_key), "token": token})


@router.post(
    "/keys/{key_id}/revoke",
    response={200: Key, 401: Error, 403: Error, 404: Error, 422: Error},
    summary="Revoke a key (api-keys:manage)",
)
def revoke_key(request: HttpRequest, key_id: int):
    api_key = get_object_or_404(_managed_keys(request), pk=key_id)
    return key_out(api_key_revoke(actor=api_actor(request), api_key=api_key))
