"""Rename and delete, shared by teams, projects, targets, environments and apps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.access import actor_from_request, org_view
from accounts.models import Role
from keyportal import once
from projects import selectors, services
from projects.forms import NameForm


@dataclass(frozen=True)
class Kind:
    label: str
    queryset: Callable
    # Where to go after a rename; after a delete, `parent_url` (the object no longer exists).
    url: Callable[[str, models.Model], str]
    parent_url: Callable[[str, models.Model], str]
    contents: str = ""


def _project_url(org: str, project_id: int) -> str:
    return reverse("project_detail", kwargs={"org": org, "pk": project_id})


KINDS = {
    "teams": Kind(
        "team",
        selectors.team_list,
        url=lambda org, obj: reverse("team_list", kwargs={"org": org}),
        parent_url=lambda org, obj: reverse("team_list", kwargs={"org": org}),
        contents="its projects, with their targets, environments, secrets and apps",
    ),
    "projects": Kind(
        "project",
        selectors.project_list,
        url=lambda org, obj: _project_url(org, obj.pk),
        parent_url=lambda org, obj: reverse("project_list", kwargs={"org": org}),
        contents="its targets, environments, secrets and apps",
    ),
    "targets": Kind(
        "target",
        selectors.target_list,
        url=lambda org, obj: _project_url(org, obj.project_id),
        parent_url=lambda org, obj: _project_url(org, obj.project_id),
        contents="its environments and their secrets",
    ),
    "environments": Kind(
        "environment",
        selectors.environment_list,
        url=lambda org, obj: _project_url(org, obj.target.project_id),
        parent_url=lambda org, obj: _project_url(org, obj.target.project_id),
        contents="its secrets with all their versions",
    ),
    "apps": Kind(
        "app",
        selectors.app_list,
        url=lambda org, obj: reverse("app_list", kwargs={"org": org}),
        parent_url=lambda org, obj: reverse("app_list", kwargs={"org": org}),
        contents="its published versions",
    ),
}


def _lookup(request: HttpRequest, kind: str, pk: int) -> tuple[Kind, models.Model]:
    spec = KINDS[kind]  # the URL converter admits only these kinds
    return spec, get_object_or_404(spec.queryset(organization=request.organization), pk=pk)


@org_view(role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def rename(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Rename a team, project, target, environment or app."""
    spec, obj = _lookup(request, kind, pk)
    form = NameForm(request.POST or None, initial={"name": obj.name})
    if request.method == "POST" and form.is_valid():
        try:
            services.hierarchy_rename(
                actor=actor_from_request(request), obj=obj, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"The {spec.label} is now called “{obj.name}”.")
            return redirect(spec.url(request.organization.slug, obj))
    context = {
        "obj": obj,
        "spec": spec,
        "form": form,
        "back": spec.url(request.organization.slug, obj),
    }
    return render(request, "projects/rename.html", context, status=422 if form.errors else 200)


@org_view(role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
@once.replays
def delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Confirm, then delete a team, project, target, environment or app."""
    spec, obj = _lookup(request, kind, pk)
    back = spec.parent_url(request.organization.slug, obj)
    if request.method == "POST":
        services.hierarchy_delete(actor=actor_from_request(request), obj=obj)
        messages.success(request, f"The {spec.label} “{obj.name}” was deleted.")
        return redirect(back)
    context = {"obj": obj, "spec": spec, "back": spec.url(request.organization.slug, obj)}
    return render(request, "projects/delete.html", context)
