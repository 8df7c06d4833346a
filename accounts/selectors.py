"""Reads for accounts: every query starts from what the viewer may see."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import (
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    ServiceAccount,
    User,
)


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    """Return the person's memberships with their organizations, by organization name."""
    return (
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )


def user_exists(*, email: str) -> bool:
    """Return whether an account has this email, in any letter case."""
    return User.objects.filter(email__iexact=email).exists()


def member_list(*, organization: Organization) -> QuerySet[Membership]:
    """Return the organization's members with their users."""
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__display_name", "user__email")
    )


def owner_count(*, organization: Organization) -> int:
    """Return how many owners the organization has."""
    return Membership.objects.filter(organization=organization, role="owner").count()


def invitation_pending_list(*, organization: Organization) -> QuerySet[Invitation]:
    """Return the organization's invitations that can still be accepted."""
    return Invitation.objects.filter(
        organization=organization,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).select_related("created_by")


def service_account_list(*, organization: Organization) -> QuerySet[ServiceAccount]:
    """Return the organization's service accounts."""
    return ServiceAccount.objects.filter(organization=organization).select_related("created_by")


def audit_event_list(
    *,
    organization: Organization,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Return the organization's history, newest first, narrowed by the filters given.

    `actor` matches the actor's label or the acting person's email, ignoring case. `since` is
    inclusive and `until` exclusive, so consecutive ranges neither overlap nor leave gaps.
    """
    events = AuditEvent.objects.filter(organization=organization).select_related("actor_user")
    if actor:
        events = events.filter(
            Q(actor_label__icontains=actor) | Q(actor_user__email__icontains=actor)
        )
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events.order_by("-created_at", "-id")
