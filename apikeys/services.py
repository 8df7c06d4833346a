"""Writes for API keys. Each runs in one transaction and records its history row; the plaintext
is returned once by create and rotate and kept nowhere."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.access import Actor
from accounts.models import (
    NAME_MAX_LENGTH,
    AuditEvent,
    Membership,
    Organization,
    ServiceAccount,
    User,
)
from accounts.services import audit_event, audit_record
from apikeys.models import ApiKey, KeyKind, KeyPolicy, KeyStatus
from apikeys.permissions import ALL, PERMISSIONS, ROLE_PERMISSIONS, ordered
from apikeys.policy import Policy, expiry_problem, policy_for
from apikeys.scopes import clean_scopes
from apikeys.selectors import api_key_revocable_list
from apikeys.tokens import generate_token, token_digest, token_preview
from projects.models import Project

ROTATION_GRACE = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
UNCHANGED = object()
REVOKED_MESSAGE = "This API key has been revoked; it can no longer be changed."

Owner = User | ServiceAccount | Project | Organization


def permission_ceiling(*, actor: Actor, organization: Organization) -> frozenset[str]:
    """Return what the acting person holds in the organization; an operator holds everything."""
    if actor.ceiling is not None:
        return actor.ceiling
    if actor.user is None:
        return ALL
    role = (
        Membership.objects.filter(organization=organization, user=actor.user)
        .values_list("role", flat=True)
        .first()
    )
    return ROLE_PERMISSIONS.get(role, frozenset())


def _clean_permissions(
    permissions: list[str],
    *,
    ceiling: frozenset[str],
    kind: str,
    held: frozenset[str] = frozenset(),
) -> list[str]:
    """Return the permissions checked; `held` are the key's own, which an edit may keep."""
    unknown = sorted(p for p in permissions if p not in PERMISSIONS)
    if unknown:
        raise ValidationError({"permissions": f"Unknown permission: {', '.join(unknown)}."})
    if not permissions:
        raise ValidationError({"permissions": "Choose at least one permission."})
    beyond = [p for p in ordered(set(permissions)) if p not in ceiling and p not in held]
    if beyond:
        raise ValidationError(
            {"permissions": f"You cannot give a key what you do not hold: {', '.join(beyond)}."}
        )
    if kind == KeyKind.PROJECT:
        wide = [p for p in ordered(set(permissions)) if not PERMISSIONS[p].scope_levels]
        if wide:
            listed = ", ".join(wide)
            message = f"A project key cannot hold organization-wide permissions: {listed}."
            raise ValidationError({"permissions": message})
    return ordered(set(permissions))


def _owner_filter(kind: str, owner: Owner) -> Q:
    match kind:
        case KeyKind.USER:
            return Q(owner_user=owner)
        case KeyKind.SERVICE_ACCOUNT:
            return Q(owner_service_account=owner)
        case KeyKind.PROJECT:
            return Q(owner_project=owner)
        case _:
            return Q(kind=KeyKind.ORGANIZATION)


def _check_name(
    *, organization: Organization, kind: str, owner: Owner, name: str, exclude: int | None = None
) -> None:
    # Names are unique per owner among live keys: a revoked or expired key's name can be reused.
    live = ApiKey.objects.filter(
        _owner_filter(kind, owner),
        organization=organization,
        name__iexact=name,
        revoked_at__isnull=True,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    if live.exclude(pk=exclude).exists():
        raise ValidationError({"name": f"A live key of this owner is already named “{name}”."})


def _check_name_length(name: str) -> None:
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": f"Name must be at most {NAME_MAX_LENGTH} characters."})


def _lock_active_service_account(account: ServiceAccount) -> None:
    """Lock the account's row, or refuse when it is deactivated.

    A deactivation running at the same time then either sees the new key and revokes it, or
    commits first and the new key is refused: no key outlives its account's deactivation.
    """
    if (
        not ServiceAccount.objects.select_for_update()
        .filter(pk=account.pk, is_active=True)
        .exists()
    ):
        raise ValidationError("This service account is deactivated; reactivate it to create keys.")


def _check_owner(organization: Organization, kind: str, owner: Owner | None) -> None:
    """Refuse an owner from another organization (deactivated accounts: see api_key_create)."""
    match kind:
        case KeyKind.USER:
            ok = Membership.objects.filter(organization=organization, user=owner).exists()
        case KeyKind.SERVICE_ACCOUNT:
            ok = owner.organization_id == organization.pk
        case KeyKind.PROJECT:
            ok = owner.organization_id == organization.pk
        case KeyKind.ORGANIZATION:
            ok = True
        case _:
            raise ValidationError({"kind": "Unknown kind of key."})
    if not ok:
        raise ValidationError("The key's owner is not part of this organization.")


def _check_expiry(
    policy: Policy, expires_at: datetime | None, start: datetime | None = None
) -> None:
    problem = expiry_problem(policy, expires_at, start=start)
    if problem:
        raise ValidationError({"expiration": problem})


def _record(actor: Actor, api_key: ApiKey, action: str, **detail) -> None:
    audit_record(
        actor=actor,
        organization=api_key.organization,
        action=f"api_key.{action}",
        target=api_key,
        detail={"name": api_key.name, "preview": api_key.preview, "kind": api_key.kind, **detail},
    )


def api_key_create(
    *,
    actor: Actor,
    organization: Organization,
    kind: str,
    owner: Owner | None = None,
    name: str = "",
    permissions: list[str],
    scopes: dict | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext token, which is never stored or shown again."""
    owner = organization if kind == KeyKind.ORGANIZATION else owner
    _check_owner(organization, kind, owner)
    name = name.strip() or f"key-{timezone.now():%Y%m%d}-{secrets.token_hex(3)}"
    _check_name_length(name)
    permissions = _clean_permissions(
        permissions, ceiling=permission_ceiling(actor=actor, organization=organization), kind=kind
    )
    project = owner if kind == KeyKind.PROJECT else None
    scopes = clean_scopes(
        scopes or {}, permissions=permissions, organization=organization, project=project
    )
    _check_expiry(policy_for(organization=organization, kind=kind), expires_at)
    token = generate_token(kind)
    with transaction.atomic():
        if kind == KeyKind.SERVICE_ACCOUNT:
            _lock_active_service_account(owner)
        _check_name(organization=organization, kind=kind, owner=owner, name=name)
        api_key = ApiKey.objects.create(
            organization=organization,
            kind=kind,
            owner_user=owner if kind == KeyKind.USER else None,
            owner_service_account=owner if kind == KeyKind.SERVICE_ACCOUNT else None,
            owner_project=project,
            created_by=actor.user,
            name=name,
            digest=token_digest(token),
            preview=token_preview(token),
            permissions=permissions,
            scopes=scopes,
            expires_at=expires_at,
            origin=actor.origin,
        )
        _record(actor, api_key, "created")
    return api_key, token


def _locked(api_key: ApiKey) -> ApiKey:
    locked = ApiKey.objects.select_for_update().select_related("organization").get(pk=api_key.pk)
    if locked.is_revoked:
        raise ValidationError(REVOKED_MESSAGE)
    return locked


def api_key_update(
    *,
    actor: Actor,
    api_key: ApiKey,
    name: str,
    status: str,
    permissions: list[str],
    scopes: dict | None = None,
    expires_at: datetime | object | None = UNCHANGED,
) -> ApiKey:
    """Change a key's name, status, permissions, scopes and, when given, expiry; not if revoked."""
    if status not in KeyStatus.values:
        raise ValidationError({"status": "Choose Active or Disabled."})
    with transaction.atomic():
        api_key = _locked(api_key)
        organization = api_key.organization
        name = name.strip() or api_key.name
        _check_name_length(name)
        ceiling = permission_ceiling(actor=actor, organization=organization)
        held = frozenset(api_key.permissions)
        # What the editor does not hold stays exactly as it was: they can neither add nor drop it.
        kept = held - ceiling
        permissions = _clean_permissions(
            sorted(set(permissions) | kept), ceiling=ceiling, kind=api_key.kind, held=held
        )
        scopes = {
            **{pid: refs for pid, refs in api_key.scopes.items() if pid in kept},
            **(scopes or {}),
        }
        scopes = clean_scopes(
            scopes,
            permissions=permissions,
            organization=organization,
            project=api_key.owner_project,
        )
        if expires_at is UNCHANGED:
            expires_at = api_key.expires_at
        elif expires_at != api_key.expires_at:
            _check_expiry(policy_for(organization=organization, kind=api_key.kind), expires_at)
        _check_name(
            organization=organization,
            kind=api_key.kind,
            owner=api_key.owner,
            name=name,
            exclude=api_key.pk,
        )
        values = {
            "name": name,
            "status": status,
            "permissions": permissions,
            "scopes": scopes,
            "expires_at": expires_at,
        }
        changed = [field for field, value in values.items() if getattr(api_key, field) != value]
        for field, value in values.items():
            setattr(api_key, field, value)
        api_key.save(update_fields=list(values))
        _record(actor, api_key, "updated", changed=changed)
    return api_key


def api_key_rotate(*, actor: Actor, api_key: ApiKey, grace: str = "now") -> tuple[ApiKey, str]:
    """Give the key a new secret; the old one stops now or at the end of the grace period."""
    if grace not in ROTATION_GRACE:
        raise ValidationError(
            {"grace": "Choose when the old secret stops: now, 1 hour, 24 hours or 7 days."}
        )
    token = generate_token(api_key.kind)
    with transaction.atomic():
        api_key = _locked(api_key)
        now = timezone.now()
        period = ROTATION_GRACE[grace]
        policy = policy_for(organization=api_key.organization, kind=api_key.kind)
        problem = expiry_problem(policy, api_key.expires_at, start=now)
        if problem:
            raise ValidationError(f"{problem} Set an expiration it allows (Edit), then rotate.")
        api_key.previous_digest = api_key.digest if period else None
        api_key.previous_valid_until = now + period if period else None
        api_key.digest = token_digest(token)
        api_key.preview = token_preview(token)
        api_key.rotated_at = now
        api_key.save(
            update_fields=[
                "previous_digest",
                "previous_valid_until",
                "digest",
                "preview",
                "rotated_at",
            ]
        )
        _record(actor, api_key, "rotated", grace=grace)
    return api_key, token


def api_key_revoke(*, actor: Actor, api_key: ApiKey) -> ApiKey:
    """Revoke a key for good, and hide it from lists; its row stays for the history."""
    with transaction.atomic():
        api_key = _locked(api_key)
        api_key.revoked_at = timezone.now()
        api_key.revoked_by = actor.user
        api_key.previous_digest = None
        api_key.previous_valid_until = None
        api_key.save(
            update_fields=["revoked_at", "revoked_by", "previous_digest", "previous_valid_until"]
        )
        _record(actor, api_key, "revoked")
    return api_key


def api_key_bulk_revoke(*, actor: Actor, viewer: Membership, ids: list[int]) -> int:
    """Revoke the keys among `ids` the viewer may revoke, in one transaction; return how many.

    Ids of keys the viewer may not see or revoke (another organization's, another member's
    personal key) and keys already revoked are left alone and not counted. The rows are locked
    first, so of two overlapping revokes at once each key is revoked, and recorded, once.
    Four statements whatever the count: lock, update, history, and the transaction's own.
    """
    with transaction.atomic():
        keys = list(
            api_key_revocable_list(viewer=viewer)
            .filter(pk__in=ids)
            .select_for_update()
            .only("id", "name", "preview", "kind", "organization_id")
            .order_by("pk")
        )
        if not keys:
            return 0
        ApiKey.objects.filter(pk__in=[key.pk for key in keys]).revoke(by=actor.user)
        AuditEvent.objects.bulk_create(
            audit_event(
                actor=actor,
                organization=viewer.organization,
                action="api_key.revoked",
                target=key,
                detail={"name": key.name, "preview": key.preview, "kind": key.kind, "bulk": True},
            )
            for key in keys
        )
    return len(keys)


def key_policy_update(
    *,
    actor: Actor,
    organization: Organization,
    kind: str,
    require_expiry: bool,
    max_lifetime_days: int | None,
) -> KeyPolicy:
    """Set the organization's policy for one kind of key; existing keys are flagged, not changed."""
    if kind not in KeyKind.values:
        raise ValidationError({"kind": "Unknown kind of key."})
    if max_lifetime_days is not None and not 1 <= max_lifetime_days <= 3650:
        raise ValidationError({"max_lifetime_days": "Enter a number of days from 1 to 3650."})
    with transaction.atomic():
        policy, _ = KeyPolicy.objects.update_or_create(
            organization=organization,
            kind=kind,
            defaults={"require_expiry": require_expiry, "max_lifetime_days": max_lifetime_days},
        )
        audit_record(
            actor=actor,
            organization=organization,
            action="key_policy.updated",
            target=policy,
            detail={
                "kind": kind,
                "require_expiry": require_expiry,
                "max_lifetime_days": max_lifetime_days,
            },
        )
    return policy
