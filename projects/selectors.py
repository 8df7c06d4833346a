"""Reads for the project hierarchy, always within one organization."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import Membership, Organization, Team
from apikeys.authority import key_power
from apikeys.models import ApiKey, KeyKind, KeyPreset, KeyStatus
from apikeys.permissions import PERMISSIONS
from apikeys.power import Power, Scope, ancestry_of
from keyportal.pagination import COUNT_CAP
from projects.models import App, AppVersion, Environment, Project, Target

APP_PERMISSIONS = tuple(permission for permission in PERMISSIONS if permission.startswith("apps:"))


def team_list(*, organization: Organization) -> QuerySet[Team]:
    """Return the organization's teams with how many projects each holds."""
    return Team.objects.filter(organization=organization).annotate(project_count=Count("projects"))


def project_list(*, organization: Organization) -> QuerySet[Project]:
    """Return the organization's projects with their teams."""
    return (
        Project.objects.filter(organization=organization)
        .select_related("team")
        .annotate(
            target_count=Count("targets", distinct=True), app_count=Count("apps", distinct=True)
        )
    )


def project_detail(*, organization: Organization) -> QuerySet[Project]:
    """Return projects with their targets and environments prefetched, for one project's page."""
    return (
        Project.objects.filter(organization=organization)
        .select_related("team")
        .prefetch_related(
            Prefetch("targets", queryset=Target.objects.prefetch_related("environments")),
            "apps",
        )
    )


def target_list(*, organization: Organization) -> QuerySet[Target]:
    """Return the organization's targets."""
    return Target.objects.filter(project__organization=organization).select_related("project")


def environment_list(*, organization: Organization) -> QuerySet[Environment]:
    """Return the organization's environments."""
    return Environment.objects.filter(target__project__organization=organization).select_related(
        "target__project"
    )


def app_list(*, organization: Organization) -> QuerySet[App]:
    """Return the organization's apps with their projects."""
    return App.objects.filter(organization=organization).select_related("project")


def app_version_list(*, app: App) -> QuerySet[AppVersion]:
    """Return the app's published versions, newest first."""
    return AppVersion.objects.filter(app=app).order_by("-version")


def app_reaching_keys(*, app: App, cap: int = COUNT_CAP) -> tuple[list[ApiKey], bool]:
    """Return the keys that can reach the app through the API, newest first, and whether there
    are more than `cap` of them (then only the first `cap` + 1 are read).

    Live keys (not revoked, expired or disabled, their owner active) of the app's organization
    whose power, cut to a personal key's owner's current role, holds an apps permission over
    the app's project, its team or the whole organization; a project key only on its project.
    The app's sharing is not asked: this is who it lets in or keeps out.
    """
    role = Membership.objects.filter(
        organization=OuterRef("organization_id"), user=OuterRef("owner_user_id")
    ).values("role")[:1]
    candidates = (
        ApiKey.objects.filter(
            organization_id=app.organization_id,
            revoked_at__isnull=True,
            status=KeyStatus.ACTIVE,
        )
        .exclude(expires_at__lte=timezone.now())
        .exclude(owner_user__is_active=False)
        .exclude(owner_service_account__is_active=False)
        .filter(~Q(kind=KeyKind.PROJECT) | Q(owner_project_id=app.project_id))
        # Narrowed in the database to the keys that may hold an apps permission: those naming
        # one, and personal keys "Same as my role", whose power is their owner's role.
        .annotate(permission_text=Cast("permissions", TextField()))
        .filter(Q(permission_text__contains='"apps:') | Q(kind=KeyKind.USER, preset=KeyPreset.ROLE))
        .annotate(owner_role=Subquery(role))
        .order_by("-created_at", "-id")
    )
    where = Scope("project", app.project_id)
    ancestry = ancestry_of([where])  # the project's team: read once for every key
    wanted = [Power({permission: [where]}) for permission in APP_PERMISSIONS]
    reaching = []
    for api_key in candidates.iterator(chunk_size=500):
        power = key_power(api_key)
        if any(power.missing(grant, ancestry) is None for grant in wanted):
            reaching.append(api_key)
            if len(reaching) > cap:
                return reaching[:cap], True
    return reaching, False
