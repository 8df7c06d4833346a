"""`/api/v1/apps`: each app names its project, in one query however many apps."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from projects.models import ApiKeyAccess
from tests.apikeys.conftest import build_tree, operator_key
from tests.factories import AppFactory

pytestmark = pytest.mark.django_db


def call(method: str, path: str, token: str, body: dict | None = None):
    extra = {"data": json.dumps(body), "content_type": "application/json"} if body else {}
    return getattr(Client(), method)(path, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def shared(project, **kwargs):
    return AppFactory(project=project, api_key_access=ApiKeyAccess.CAN_EDIT, **kwargs)


def test_every_app_answer_names_its_project(org):
    """Listing, reading, creating and renaming an app all answer with its project's name."""
    tree = build_tree(org, name="Payments")
    app = shared(tree.project, name="Storefront", slug="storefront")
    _key, token = operator_key(org, permissions=["apps:read", "apps:update"])

    listed = call("get", "/api/v1/apps", token).json()["items"]
    assert [(a["name"], a["project_id"], a["project_name"]) for a in listed] == [
        ("Storefront", tree.project.pk, "Payments")
    ]
    assert call("get", f"/api/v1/apps/{app.pk}", token).json()["project_name"] == "Payments"
    renamed = call("patch", f"/api/v1/apps/{app.pk}", token, {"name": "Shop"})
    assert renamed.json()["project_name"] == "Payments"
    created = call(
        "post",
        "/api/v1/apps",
        token,
        {"name": "Docs", "slug": "docs", "project_id": tree.project.pk},
    )
    assert created.status_code == 201
    assert created.json()["project_name"] == "Payments"


def test_listing_costs_the_same_queries_for_one_app_or_many(org):
    """The project names come with the apps: no query per app."""
    _key, token = operator_key(org, permissions=["apps:read"])
    shared(build_tree(org, name="First").project)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert call("get", "/api/v1/apps", token).status_code == 200
        return len(captured)

    one = queries()
    for n in range(6):
        shared(build_tree(org, name=f"Project {n}").project)
    assert queries() == one
    assert call("get", "/api/v1/apps", token).json()["total"] == 7
