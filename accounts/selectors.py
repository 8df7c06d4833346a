"""Reads for accounts: every query starts from what the viewer may see."""

from __future__ import annotations

from django.db.models import QuerySet
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


def audit_event_list(*, organization: Organization) -> QuerySet[AuditEvent]:
    """Return the organization's history, newest first."""
    return AuditEvent.objects.filter(organization=organization)
