"""Reads for the project hierarchy, always within one organization."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from accounts.models import Organization, Team
from projects.models import App, Environment, Project, Target


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
