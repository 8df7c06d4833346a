"""Reads for API keys: every query starts from what the viewer may see."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Cast

from accounts.access import Actor
from accounts.models import (
    AuditEvent,
    AuditEventType,
    Membership,
    Organization,
    Role,
    ServiceAccount,
    User,
)
from apikeys import authority
from apikeys.authority import Act
from apikeys.models import ApiKey, DeviceAuthorization, KeyKind, KeyPolicy, KeyStatus


def api_key_list(*, actor: Actor, organization: Organization) -> QuerySet[ApiKey]:
    """Return the keys that exist for the actor, revoked ones included (for their pages).

    As apikeys.authority says: owners and admins see every key of the organization, members
    their own personal keys, and a key what its owner sees cut to what it may act on.
    """
    # The owner's current role comes with each key: what a personal key holds is cut to it.
    role = Membership.objects.filter(
        organization=OuterRef("organization_id"), user=OuterRef("owner_user_id")
    ).values("role")[:1]
    return (
        authority.visible_keys(actor, organization)
        .select_related(
            "organization", "created_by", "owner_user", "owner_service_account", "owner_project"
        )
        .annotate(owner_role=Subquery(role))
    )


def api_key_live_list(*, actor: Actor, organization: Organization) -> QuerySet[ApiKey]:
    """Return the keys the actor sees that are not revoked (deleting hides a key)."""
    return api_key_list(actor=actor, organization=organization).filter(revoked_at__isnull=True)


def api_key_get(*, actor: Actor, organization: Organization, pk: int, act: Act = Act.SEE) -> ApiKey:
    """Return the key `pk` of the organization if it exists for the actor; else raise Refused
    (hidden: the doors answer 404).

    A key of the organization that the actor may not see is an attempt the rules refuse, and
    the audit log records it; an id of another tenant or of no key records nothing.
    """
    api_key = api_key_list(actor=actor, organization=organization).filter(pk=pk).first()
    if api_key is not None:
        return api_key
    hidden = ApiKey.objects.filter(organization=organization, pk=pk).first()
    refused = authority.Refused("No such API key.", act=act, api_key=hidden, hidden=True)
    if hidden is not None:
        authority.record_refusal(actor, refused, organization)
    raise refused


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


def cli_login_list(*, actor: Actor, organization: Organization) -> QuerySet[ApiKey]:
    """Return the person's live personal keys made by `keyportal login`, newest first."""
    # The login's own request links the key it issued; origin alone would also match keys
    # made with `keyportal keys create`.
    issued_by_login = DeviceAuthorization.objects.filter(api_key=OuterRef("pk"))
    return api_key_live_list(actor=actor, organization=organization).filter(
        Exists(issued_by_login), kind=KeyKind.USER, owner_user=actor.user
    )


def api_key_history(*, api_key: ApiKey) -> QuerySet[AuditEvent]:
    """Return the key's history rows, newest first."""
    return AuditEvent.objects.filter(
        Q(target_type="apikey", target_id=str(api_key.pk)) | Q(actor_key_id=api_key.pk),
        organization=api_key.organization,
    ).select_related("actor_user")


def key_recipients(api_key: ApiKey) -> list[str]:
    """Return who is emailed about the key (reminders, leaks, the stale-key policy): its owner
    for a personal key, while active and a member; otherwise the organization's active owners
    and admins."""
    if api_key.kind == KeyKind.USER:
        owner = api_key.owner_user
        member = Membership.objects.filter(user=owner, organization_id=api_key.organization_id)
        return [owner.email] if owner is not None and owner.is_active and member.exists() else []
    return list(
        User.objects.filter(
            is_active=True,
            memberships__organization_id=api_key.organization_id,
            memberships__role__in=[Role.OWNER, Role.ADMIN],
        )
        .order_by("email")
        .values_list("email", flat=True)
    )


def stale_keys(policy: KeyPolicy, moment: datetime) -> QuerySet[ApiKey]:
    """Return the policy's keys, live and enabled, unused for its number of days at `moment`.

    The days count from the last use, or for a key never used from when it was made; a
    rotation or re-enabling since then starts them again (someone still wants the key), so a
    key re-enabled after the policy disabled it gets the policy's days to be used.
    Last use lags by the usage flush interval (KEYPORTAL_USAGE_FLUSH_SECONDS, seconds): nothing
    against a policy counted in days. A policy that disables no unused keys has none.
    """
    if policy.disable_unused_after_days is None:
        return ApiKey.objects.none()
    cutoff = moment - timedelta(days=policy.disable_unused_after_days)
    re_enabled = AuditEvent.objects.filter(
        target_type="apikey",
        target_id=Cast(OuterRef("pk"), CharField()),
        action=AuditEventType.API_KEY_UPDATED,
        detail__status=KeyStatus.ACTIVE,
        created_at__gte=cutoff,
    )
    return (
        ApiKey.objects.filter(
            organization_id=policy.organization_id,
            kind=policy.kind,
            status=KeyStatus.ACTIVE,
            revoked_at__isnull=True,
            compromised_at__isnull=True,
            created_at__lt=cutoff,
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=moment))
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff))
        .filter(Q(rotated_at__isnull=True) | Q(rotated_at__lt=cutoff))
        .exclude(Exists(re_enabled))
    )


def stale_key_counts(organization: Organization, moment: datetime) -> dict[str, int]:
    """Return, per kind of key, how many keys the organization's policy would disable for being
    unused if the stale-key job ran at `moment` (kinds with no such policy, or none due, left
    out)."""
    policies = KeyPolicy.objects.filter(organization=organization, disable_unused_after_days__gte=1)
    counts = {policy.kind: stale_keys(policy, moment).count() for policy in policies}
    return {kind: count for kind, count in counts.items() if count}
