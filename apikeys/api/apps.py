"""Apps through the API. Every call obeys the app's sharing: with "No access", a key gets 403
whatever its permissions; keys can never change sharing themselves."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import File, Query, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile
from pydantic import Field

from apikeys.api.auth import api_actor
from apikeys.api.routing import Router, in_reach, paginate
from apikeys.api.schemas import Error, Name, Page, PageParams, Strict
from projects import services
from projects.bundles import MAX_BUNDLE_BYTES
from projects.models import ApiKeyAccess, App, Project

router = Router(tags=["apps"])


class AppNoAccess(Exception):
    """The app's sharing settings give API keys no access."""


class AppOut(Schema):
    id: int
    name: str
    slug: str
    project_id: int
    project_name: str = Field(validation_alias="project.name")
    api_key_access: str
    created_at: datetime


class AppCreate(Strict):
    name: Name = Field(min_length=1, max_length=100)
    slug: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    project_id: int


class AppUpdate(Strict):
    name: Name = Field(min_length=1, max_length=100)


class AppVersionOut(Schema):
    version: int
    size: int
    sha256: str
    files: int
    published_by: str = Field(validation_alias="actor_label")
    created_at: datetime


def _apps():
    # AppOut names each app's project: read with the app, one query however many apps.
    return App.objects.select_related("project")


def _app(request: HttpRequest, app_id: int) -> App:
    app = get_object_or_404(in_reach(request, _apps(), "app"), pk=app_id)
    if app.api_key_access != ApiKeyAccess.CAN_EDIT:
        raise AppNoAccess()
    return app


@router.get(
    "/apps",
    permission="apps:read",
    response={200: Page[AppOut]},
    summary="List the apps keys may touch, by name",
)
def list_apps(request: HttpRequest, page: Query[PageParams]):
    apps = in_reach(request, _apps(), "app")
    return paginate(apps.filter(api_key_access=ApiKeyAccess.CAN_EDIT), page)


@router.get(
    "/apps/{id:app_id}",
    permission="apps:read",
    response={200: AppOut},
    summary="Read an app",
)
def get_app(request: HttpRequest, app_id: int):
    return _app(request, app_id)


@router.post(
    "/apps",
    permission="apps:update",
    response={201: AppOut, 404: Error},
    summary="Create an app; it starts with No access until an admin shares it",
)
def create_app(request: HttpRequest, payload: AppCreate):
    projects = in_reach(request, Project.objects.all(), "project")
    project = get_object_or_404(projects, pk=payload.project_id)
    app = services.app_create(
        actor=api_actor(request), project=project, name=payload.name, slug=payload.slug
    )
    return Status(201, app)


@router.patch(
    "/apps/{id:app_id}",
    permission="apps:update",
    response={200: AppOut},
    summary="Update an app's settings",
)
def update_app(request: HttpRequest, app_id: int, payload: AppUpdate):
    app = _app(request, app_id)
    return services.app_update(actor=api_actor(request), app=app, name=payload.name)


@router.get(
    "/apps/{id:app_id}/versions",
    permission="apps:read",
    response={200: Page[AppVersionOut]},
    summary="List an app's versions, newest first",
)
def list_app_versions(request: HttpRequest, app_id: int, page: Query[PageParams]):
    return paginate(_app(request, app_id).versions.all(), page)


@router.post(
    "/apps/{id:app_id}/versions",
    permission="apps:publish",
    response={201: AppVersionOut},
    summary="Publish a version: a .tar.gz bundle of at most 10 MB",
)
def publish_app_version(request: HttpRequest, app_id: int, bundle: File[UploadedFile]):
    app = _app(request, app_id)
    if bundle.size > MAX_BUNDLE_BYTES:
        raise HttpError(413, "The bundle is larger than 10 MB.")
    version = services.app_publish(actor=api_actor(request), app=app, bundle=bundle)
    return Status(201, version)
