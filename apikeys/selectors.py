"""Reads for API keys: every query starts from what the viewer may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.access import has_role
from accounts.models import AuditEvent, Membership, Organization, Origin, Role, ServiceAccount
from apikeys.models import ApiKey, KeyKind


def api_key_list(*, viewer: Membership) -> QuerySet[ApiKey]:
    """Return the keys the viewer may see, revoked ones included (for their detail pages).

    Owners and admins see every key of the organization; members only their personal keys.
    """
    keys = ApiKey.objects.filter(organization=viewer.organization).select_related(
        "created_by", "owner_user", "owner_service_account", "owner_project"
    )
    if not has_role(viewer, Role.ADMIN):
        keys = keys.filter(kind=KeyKind.USER, owner_user=viewer.user)
    return keys


def api_key_live_list(*, viewer: Membership) -> QuerySet[ApiKey]:
    """Return the keys the viewer may see that are not revoked (deleting hides a key)."""
    return api_key_list(viewer=viewer).filter(revoked_at__isnull=True)


def api_key_can_manage(*, viewer: Membership, api_key: ApiKey) -> bool:
    """Return True when the viewer may edit and rotate the key (and so also revoke it).

    People manage their own personal keys; owners and admins manage organization, project and
    service-account keys. Nobody edits or rotates another member's personal key: a rotation
    would show them a secret that acts as that member.
    """
    if api_key.kind == KeyKind.USER:
        return api_key.owner_user_id == viewer.user_id
    return has_role(viewer, Role.ADMIN)


def api_key_can_revoke(*, viewer: Membership, api_key: ApiKey) -> bool:
    """Return True when the viewer may revoke the key: its managers, and owners for any key."""
    return api_key_can_manage(viewer=viewer, api_key=api_key) or has_role(viewer, Role.OWNER)


def api_key_revocable_list(*, viewer: Membership) -> QuerySet[ApiKey]:
    """Return the live keys the viewer may revoke: as `api_key_can_revoke` says, in one query.

    Owners revoke any key of the organization; admins any key but another member's personal
    key; members their own personal keys.
    """
    keys = ApiKey.objects.filter(organization_id=viewer.organization_id, revoked_at__isnull=True)
    if has_role(viewer, Role.OWNER):
        return keys
    own = Q(kind=KeyKind.USER, owner_user=viewer.user)
    if has_role(viewer, Role.ADMIN):
        return keys.filter(~Q(kind=KeyKind.USER) | own)
    return keys.filter(own)


def key_owner_exists(*, organization: Organization, email: str) -> bool:
    """Return True when a member or a service account of the organization has this email."""
    return (
        Membership.objects.filter(organization=organization, user__email__iexact=email).exists()
        or ServiceAccount.objects.filter(
            organization=organization, identifier__iexact=email
        ).exists()
    )


def key_owner_suggestions(*, organization: Organization, text: str, limit: int = 10) -> list[str]:
    """Return up to `limit` emails of members and service accounts containing `text`."""
    people = Membership.objects.filter(
        organization=organization, user__email__icontains=text
    ).values_list("user__email", flat=True)
    accounts = ServiceAccount.objects.filter(
        organization=organization, identifier__icontains=text
    ).values_list("identifier", flat=True)
    return sorted(
        [*people.order_by("user__email")[:limit], *accounts.order_by("identifier")[:limit]]
    )[:limit]


def cli_login_list(*, viewer: Membership) -> QuerySet[ApiKey]:
    """Return the viewer's live personal keys made by `keyportal login`, newest first."""
    return api_key_live_list(viewer=viewer).filter(
        kind=KeyKind.USER, owner_user_id=viewer.user_id, origin=Origin.CLI
    )


def api_key_history(*, api_key: ApiKey) -> QuerySet[AuditEvent]:
    """Return the key's history rows, newest first."""
    return AuditEvent.objects.filter(
        Q(target_type="apikey", target_id=str(api_key.pk)) | Q(actor_key_id=api_key.pk),
        organization=api_key.organization,
    ).select_related("actor_user")
