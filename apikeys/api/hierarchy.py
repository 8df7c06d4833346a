"""Teams, projects, targets and environments: list, create, read, update, delete.

The four resources differ only in their model, parent and permission area, so one table drives
them; each route still has its own operation id, schemas and permission in the OpenAPI document.
"""

# No `from __future__ import annotations` here: ninja reads each route's payload type from its
# annotation, and these are closure variables that string annotations could not resolve.
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Model
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Schema, Status

from accounts.models import Team
from apikeys.api.auth import api_actor
from apikeys.api.routing import Router, in_reach, paginate
from apikeys.api.schemas import (
    EnvironmentCreate,
    EnvironmentOut,
    Error,
    Named,
    Page,
    PageParams,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
    TargetCreate,
    TargetOut,
    TeamOut,
)
from apikeys.reach import PATHS
from projects import services
from projects.models import Environment, Project, Target

router = Router()


@dataclass(frozen=True)
class Resource:
    area: str  # the permission area and the URL segment: "projects"
    kind: str  # the reach kind: "project"
    model: type[Model]
    out: type[Schema]
    create_in: type[Schema]
    # (parent model, its reach kind, payload field naming it), or None for children of the org
    parent: tuple[type[Model], str, str] | None
    create: Callable


RESOURCES = [
    Resource(
        "teams",
        "team",
        Team,
        TeamOut,
        Named,
        None,
        lambda actor, org, parent, name: services.team_create(
            actor=actor, organization=org, name=name
        ),
    ),
    Resource(
        "projects",
        "project",
        Project,
        ProjectOut,
        ProjectCreate,
        (Team, "team", "team_id"),
        lambda actor, org, parent, name: services.project_create(
            actor=actor, team=parent, name=name
        ),
    ),
    Resource(
        "targets",
        "target",
        Target,
        TargetOut,
        TargetCreate,
        (Project, "project", "project_id"),
        lambda actor, org, parent, name: services.target_create(
            actor=actor, project=parent, name=name
        ),
    ),
    Resource(
        "environments",
        "environment",
        Environment,
        EnvironmentOut,
        EnvironmentCreate,
        (Target, "target", "target_id"),
        lambda actor, org, parent, name: services.environment_create(
            actor=actor, target=parent, name=name
        ),
    ),
]


def _register(res: Resource) -> None:
    area, kind, model = res.area, res.kind, res.model
    # Operation ids as a client reads them: listTeams, createTeam, getTeam...
    one, many = kind.capitalize(), area.capitalize()

    def objects(request: HttpRequest):
        return in_reach(request, model.objects.all(), kind)

    @router.get(
        f"/{area}",
        permission=f"{area}:read",
        response={200: Page[res.out]},
        operation_id=f"list{many}",
        tags=[area],
        summary=f"List {area}, by name",
    )
    def list_(request: HttpRequest, page: Query[PageParams]):
        return paginate(objects(request), page)

    @router.post(
        f"/{area}",
        permission=f"{area}:create",
        response={201: res.out, **({404: Error} if res.parent else {})},
        operation_id=f"create{one}",
        tags=[area],
        summary=f"Create one of the {area}",
    )
    def create(request: HttpRequest, payload: res.create_in):
        verified = request.auth
        parent = None
        if res.parent is not None:
            parent_model, parent_kind, field = res.parent
            # Create permissions are organization-wide; another tenant's parent id is a 404.
            parent = get_object_or_404(
                parent_model.objects.filter(
                    **{PATHS[parent_kind]["organization"]: verified.api_key.organization_id}
                ),
                pk=getattr(payload, field),
            )
        obj = res.create(api_actor(request), verified.api_key.organization, parent, payload.name)
        return Status(201, obj)

    @router.get(
        f"/{area}/{{id:item_id}}",
        permission=f"{area}:read",
        response={200: res.out},
        operation_id=f"get{one}",
        tags=[area],
        summary=f"Read one of the {area}",
    )
    def read(request: HttpRequest, item_id: int):
        return get_object_or_404(objects(request), pk=item_id)

    @router.patch(
        f"/{area}/{{id:item_id}}",
        permission=f"{area}:update",
        response={200: res.out},
        operation_id=f"update{one}",
        tags=[area],
        summary=f"Rename one of the {area}",
    )
    def update(request: HttpRequest, item_id: int, payload: ProjectUpdate):
        obj = get_object_or_404(objects(request), pk=item_id)
        if payload.name is not None:
            services.hierarchy_rename(actor=api_actor(request), obj=obj, name=payload.name)
        return obj

    @router.delete(
        f"/{area}/{{id:item_id}}",
        permission=f"{area}:delete",
        response={204: None},
        operation_id=f"delete{one}",
        tags=[area],
        summary=f"Delete one of the {area}",
    )
    def delete(request: HttpRequest, item_id: int):
        obj = get_object_or_404(objects(request), pk=item_id)
        services.hierarchy_delete(actor=api_actor(request), obj=obj)
        return Status(204, None)


for _resource in RESOURCES:
    _register(_resource)
