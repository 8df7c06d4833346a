"""API endpoints about keys: health, whoami, verify, and managing keys (api-keys:manage)."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Status
from ninja.responses import NinjaJSONEncoder

from accounts.models import ServiceAccount, User
from apikeys.api.auth import RateLimited, api_actor, failed_attempt, note_refusal
from apikeys.api.health import Ready, readiness
from apikeys.api.routing import ANY_KEY, PUBLIC, Router, paginate
from apikeys.api.schemas import (
    Error,
    Health,
    Key,
    KeyCreate,
    KeyCreated,
    KeyFilters,
    KeyRotate,
    KeyUpdate,
    Page,
    VerifyRequest,
    VerifyResult,
    WhoAmI,
)
from apikeys.authority import MANAGE, Act
from apikeys.compromise import compromise_out
from apikeys.filters import apply_filters
from apikeys.limits import Outcome
from apikeys.models import ApiKey, KeyKind
from apikeys.permissions import ordered
from apikeys.protections import allowed_ips, budget
from apikeys.selectors import api_key_get, api_key_list
from apikeys.services import api_key_create, api_key_revoke, api_key_rotate, api_key_update
from apikeys.usage import record_limits, record_use
from apikeys.verification import KeyRefused, KeyRejected, VerifiedKey, verify_token
from projects.models import Project

router = Router(tags=["keys"])


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
        "preset": api_key.preset,
        "scopes": api_key.scopes,
        "expires_at": api_key.expires_at,
        "created_at": api_key.created_at,
        "last_used_at": api_key.last_used_at,
        "owner": {"type": owner_type, "id": owner.pk, "name": str(owner)},
        "compromised_at": api_key.compromised_at,
        "compromise": compromise_out(api_key),
        **protections_out(api_key),
    }


def protections_out(api_key: ApiKey) -> dict:
    """Return the key's protections as the API shows them."""
    found = budget(api_key.protections)
    return {
        "allowed_ips": allowed_ips(api_key.protections),
        "rate_limits": api_key.protections.get("rate_limits", []),
        "budget": None
        if found is None
        else {
            "amount": found.amount,
            "refill": found.refill or None,
            "refill_amount": found.refill_amount,
            "remaining": api_key.budget_remaining,
        },
        # Not read by verification (whoami's key): left out there rather than read again.
        "last_refused_ip": api_key.__dict__.get("last_refused_ip"),
    }


def limits_out(outcome: Outcome | None) -> dict:
    """Return where a key stands in its rate limits and budget, as POST /keys/verify says."""
    if outcome is None:
        return {"rate_limits": [], "budget": None}
    found = outcome.budget
    return {
        "rate_limits": [
            {
                "window": state.window.window,
                "limit": state.window.limit,
                "remaining": state.remaining,
                "reset": state.reset,
            }
            for state in outcome.windows
        ],
        "budget": None
        if found is None
        else {
            "remaining": max(outcome.budget_remaining or 0, 0),
            "refill": found.refill or None,
            "refill_amount": found.refill_amount,
        },
    }


@router.get(
    "/health",
    permission=PUBLIC,
    response=Health,
    tags=["health"],
    summary="Health check (no key needed)",
)
def get_health(request: HttpRequest):
    return {"status": "ok"}


@router.get(
    "/ready",
    permission=PUBLIC,
    response={200: Ready, 503: Ready},
    tags=["health"],
    summary="Readiness check: the database and the caches answer (no key needed)",
)
def get_readiness(request: HttpRequest):
    ready, checks = readiness()
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return Status(200 if ready else 503, body)


@router.get(
    "/whoami",
    permission=ANY_KEY,
    response={200: WhoAmI},
    summary="The key making this request",
)
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
    permission=ANY_KEY,
    response={200: Key},
    summary="Revoke the key making this request (used by CLI logout)",
)
def revoke_current_key(request: HttpRequest):
    verified: VerifiedKey = request.auth
    return key_out(api_key_revoke(actor=api_actor(request), api_key=verified.api_key))


@router.post(
    "/keys/verify",
    permission=ANY_KEY,
    response={200: VerifyResult},
    summary="Check a key another program was given (same organization only)",
)
def verify_key(request: HttpRequest, payload: VerifyRequest):
    """Verify a key for another service (the key it was sent, and the address it came from):
    valid or why not, its owner and grants, and where it stands in its rate limits and budget.
    With `consume`, the check counts as one request of the key."""
    caller: VerifiedKey = request.auth
    try:
        checked = verify_token(
            payload.key,
            ip=payload.ip,
            consume=payload.consume,
            # Another tenant's key is indistinguishable from a key that does not exist.
            organization_id=caller.api_key.organization_id,
        )
    except KeyRefused as refused:
        if payload.consume:
            note_refusal(refused)
        message = refused.message
        if refused.code == "ip_not_allowed" and payload.ip is None:
            message = (
                "This API key works only from the addresses on its allowlist: send the address "
                "its request came from as `ip`."
            )
        return {
            "valid": False,
            "code": refused.code,
            "message": message,
            "key": key_out(refused.api_key),
            **limits_out(refused.outcome),
        }
    except KeyRejected as rejected:
        return _invalid(request, rejected)
    if payload.consume:
        # Counted as one request of the key: its use, as its own calls are.
        record_use(checked.api_key.pk)
        if checked.limits is not None:
            record_limits(checked.api_key.pk, checked.limits)
    return {
        "valid": True,
        "key": key_out(checked.api_key),
        "effective_permissions": ordered(checked.permissions),
        **limits_out(checked.limits),
    }


def _invalid(request: HttpRequest, rejected: KeyRejected) -> dict:
    # A refused key counts against the caller's address like any refused key: the endpoint is
    # no way around the limit on guessing.
    refusal = failed_attempt(request, rejected.code, rejected.message)
    if isinstance(refusal, RateLimited):
        raise refusal from None
    return {"valid": False, "code": rejected.code, "message": rejected.message}


def _key(request: HttpRequest, key_id: int, act: Act) -> ApiKey:
    """Return the key if it exists for the request's key (DESIGN rule 4), else 404."""
    return api_key_get(
        actor=api_actor(request),
        organization=request.auth.api_key.organization,
        pk=key_id,
        act=act,
    )


@router.get(
    "/keys",
    permission=MANAGE,
    response={200: Page[Key]},
    summary="List the keys this key may act on, filtered like the console's table",
)
def list_keys(request: HttpRequest, filters: Query[KeyFilters]):
    keys = api_key_list(actor=api_actor(request), organization=request.auth.api_key.organization)
    keys = apply_filters(
        keys,
        {
            "q": filters.name,
            "status": filters.status,
            "kind": filters.kind,
            "owner": filters.owner,
            "unused": filters.unused,
            "protection": filters.protection,
        },
    )
    return paginate(keys, filters, key_out)


@router.get(
    "/keys/{id:key_id}",
    permission=MANAGE,
    response={200: Key},
    summary="Read a key",
)
def get_key(request: HttpRequest, key_id: int):
    return key_out(_key(request, key_id, Act.SEE))


def _owner(request: HttpRequest, payload: KeyCreate):
    """Return the owner the payload names, in the key's organization (404 elsewhere)."""
    organization = request.auth.api_key.organization
    match payload.kind:
        case KeyKind.ORGANIZATION:
            return None
        case KeyKind.PROJECT:
            return get_object_or_404(Project, organization=organization, pk=payload.owner_id)
        case KeyKind.SERVICE_ACCOUNT:
            return get_object_or_404(ServiceAccount, organization=organization, pk=payload.owner_id)
    # A personal key: its owner, by default the person behind the key making the request.
    owner_id = payload.owner_id or request.auth.api_key.owner_user_id
    return get_object_or_404(User, memberships__organization=organization, pk=owner_id)


@router.post(
    "/keys",
    permission=MANAGE,
    response={201: KeyCreated, 404: Error},
    summary="Create a key; its plaintext is in this response only",
)
def create_key(request: HttpRequest, payload: KeyCreate):
    api_key, token = api_key_create(
        actor=api_actor(request),
        organization=request.auth.api_key.organization,
        kind=payload.kind,
        owner=_owner(request, payload),
        name=payload.name,
        permissions=payload.permissions,
        scopes=_scopes(payload.scopes),
        preset=payload.preset,
        expires_at=payload.expires_at,
        allowed_ips=payload.allowed_ips,
        rate_limits=_limits(payload.rate_limits),
        budget=payload.budget.model_dump() if payload.budget else None,
    )
    return Status(201, {**key_out(api_key), "token": token})


def _limits(rate_limits: list | None) -> list | None:
    return None if rate_limits is None else [window.model_dump() for window in rate_limits]


def _scopes(scopes: dict) -> dict:
    return {pid: [ref.model_dump() for ref in refs] for pid, refs in scopes.items()}


@router.patch(
    "/keys/{id:key_id}",
    permission=MANAGE,
    response={200: Key},
    summary="Change a key's name, status, permissions, scopes, expiry or protections",
)
def update_key(request: HttpRequest, key_id: int, payload: KeyUpdate):
    given = payload.model_fields_set
    changes = {
        field: getattr(payload, field)
        for field in ("name", "status", "permissions", "preset", "expires_at")
        if field in given
    }
    if "scopes" in given:
        changes["scopes"] = _scopes(payload.scopes or {})
    if "allowed_ips" in given:
        changes["allowed_ips"] = payload.allowed_ips or []
    if "rate_limits" in given:
        changes["rate_limits"] = _limits(payload.rate_limits) or []
    if "budget" in given:
        changes["budget"] = payload.budget.model_dump() if payload.budget else None
    for field in ("name", "status", "permissions", "preset"):
        if field in changes and changes[field] is None:
            raise ValidationError({field: f"{field} cannot be null."})
    api_key = api_key_update(
        actor=api_actor(request), api_key=_key(request, key_id, Act.EDIT), **changes
    )
    return key_out(api_key)


@router.delete(
    "/keys/{id:key_id}",
    permission=MANAGE,
    response={204: None},
    summary="Revoke a key (the same as POST /keys/{key_id}/revoke)",
)
def delete_key(request: HttpRequest, key_id: int):
    api_key_revoke(actor=api_actor(request), api_key=_key(request, key_id, Act.REVOKE))
    return Status(204, None)


@router.post(
    "/keys/{id:key_id}/rotate",
    permission=MANAGE,
    response={200: KeyCreated},
    summary="Rotate a key; the new plaintext is in this response only",
)
def rotate_key(request: HttpRequest, key_id: int, payload: KeyRotate):
    api_key, token = api_key_rotate(
        actor=api_actor(request), api_key=_key(request, key_id, Act.ROTATE), grace=payload.grace
    )
    return Status(200, {**key_out(api_key), "token": token})


@router.post(
    "/keys/{id:key_id}/revoke",
    permission=MANAGE,
    response={200: Key},
    summary="Revoke a key",
)
def revoke_key(request: HttpRequest, key_id: int):
    api_key = _key(request, key_id, Act.REVOKE)
    return key_out(api_key_revoke(actor=api_actor(request), api_key=api_key))
