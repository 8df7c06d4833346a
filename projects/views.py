"""Console pages for teams, projects, targets, environments and apps."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods, require_safe

from accounts.access import ROLE_NEEDED_MESSAGE, actor_from_request, has_role, org_view
from accounts.models import Role
from apikeys.models import KeyKind
from apikeys.places import key_place, key_table_context
from keyportal.pagination import paginate
from keyportal.rendering import render_page
from projects import selectors, services
from projects.forms import AppForm, NameForm, ProjectForm


def _require_admin(request: HttpRequest) -> None:
    if not has_role(request.membership, Role.ADMIN):
        raise PermissionDenied(ROLE_NEEDED_MESSAGE[Role.ADMIN])


def _create(request: HttpRequest, form, create, done: str) -> tuple[object | None, object]:
    """Validate a create form on POST and call the service; return (object or None, form)."""
    if request.method != "POST":
        return None, form
    _require_admin(request)
    if not form.is_valid():
        return None, form
    try:
        obj = create(**form.cleaned_data)
    except ValidationError as error:
        form.add_error(None, error)
        return None, form
    messages.success(request, done.format(obj=obj))
    return obj, form


@org_view
@require_http_methods(["GET", "POST"])
def team_list(request: HttpRequest) -> HttpResponse:
    """List teams; owners and admins create them."""
    org, actor = request.organization, actor_from_request(request)
    form = NameForm(request.POST or None)
    created, form = _create(
        request,
        form,
        lambda name: services.team_create(actor=actor, organization=org, name=name),
        "Team “{obj}” created.",
    )
    if created and not request.htmx:
        return redirect("team_list", org=org.slug)
    context = {
        "teams": selectors.team_list(organization=org),
        "form": NameForm() if created else form,
    }
    return render_page(request, "projects/teams.html", context, partial="team-list")


@org_view
@require_http_methods(["GET", "POST"])
def project_list(request: HttpRequest) -> HttpResponse:
    """List projects; owners and admins create them in a team."""
    org, actor = request.organization, actor_from_request(request)
    teams = selectors.team_list(organization=org)
    form = ProjectForm(request.POST or None, teams=teams)
    created, form = _create(
        request,
        form,
        lambda name, team: services.project_create(actor=actor, team=team, name=name),
        "Project “{obj}” created.",
    )
    if created and not request.htmx:
        return redirect("project_detail", org=org.slug, pk=created.pk)
    context = {
        "projects": selectors.project_list(organization=org),
        "form": ProjectForm(teams=teams) if created else form,
        "has_teams": teams.exists(),
    }
    return render_page(request, "projects/projects.html", context, partial="project-list")


@org_view
@require_http_methods(["GET", "POST"])
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a project's targets and environments; owners and admins add targets."""
    org, actor = request.organization, actor_from_request(request)
    project = get_object_or_404(selectors.project_detail(organization=org), pk=pk)
    form = NameForm(request.POST or None, prefix="target")
    created, form = _create(
        request,
        form,
        lambda name: services.target_create(actor=actor, project=project, name=name),
        "Target “{obj}” created.",
    )
    if created:
        if not request.htmx:
            return redirect("project_detail", org=org.slug, pk=project.pk)
        project = get_object_or_404(selectors.project_detail(organization=org), pk=pk)
        form = NameForm(prefix="target")
    context = {"project": project, "form": form, "env_form": NameForm(prefix="environment")}
    if has_role(request.membership, Role.ADMIN):
        context.update(key_table_context(request, key_place(request, KeyKind.PROJECT, project.pk)))
    return render_page(
        request, "projects/project_detail.html", context, partial="targets", targets=("key-table",)
    )


@org_view(role=Role.ADMIN)
@require_http_methods(["POST"])
def environment_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Add an environment to a target; a refused name stays in its field with the message."""
    org, actor = request.organization, actor_from_request(request)
    target = get_object_or_404(selectors.target_list(organization=org), pk=pk)
    form = NameForm(request.POST, prefix="environment")
    created, form = _create(
        request,
        form,
        lambda name: services.environment_create(actor=actor, target=target, name=name),
        "Environment “{obj}” created.",
    )
    if created and not request.htmx:
        return redirect("project_detail", org=org.slug, pk=target.project_id)
    project = get_object_or_404(selectors.project_detail(organization=org), pk=target.project_id)
    context = {
        "project": project,
        "form": NameForm(prefix="target"),
        "env_form": NameForm(prefix="environment") if created else form,
        "env_target_id": None if created else target.pk,
    }
    return render_page(request, "projects/project_detail.html", context, partial="targets")


@org_view
@require_http_methods(["GET", "POST"])
def app_list(request: HttpRequest) -> HttpResponse:
    """List apps and their sharing; owners and admins create them in a project."""
    org, actor = request.organization, actor_from_request(request)
    projects = selectors.project_list(organization=org)
    form = AppForm(request.POST or None, projects=projects)
    created, form = _create(
        request,
        form,
        lambda name, slug, project: services.app_create(
            actor=actor, project=project, name=name, slug=slug
        ),
        "App “{obj}” created. API keys have no access to it until its sharing allows.",
    )
    if created and not request.htmx:
        return redirect("app_list", org=org.slug)
    context = {
        "apps": selectors.app_list(organization=org),
        "form": AppForm(projects=projects) if created else form,
        "has_projects": projects.exists(),
    }
    return render_page(request, "projects/apps.html", context, partial="app-list")


@org_view
@require_safe
def app_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show an app: its project, its sharing and its published versions, newest first."""
    app = get_object_or_404(selectors.app_list(organization=request.organization), pk=pk)
    page, page_note = paginate(selectors.app_version_list(app=app), request.GET.get("page"))
    context = {"app": app, "page": page, "page_note": page_note}
    return render_page(request, "projects/app_detail.html", context, partial="version-list")
