"""Schemathesis against the API's own OpenAPI document, in process and bounded.

Two properties over generated requests for every operation: with a valid key nothing answers
5xx, a status the document does not declare for the operation, or a body of another media type
than it declares (errors are JSON); without a key nothing but the public routes is accepted.
Generation is derandomized, so CI sends the same requests on every run.

Every case runs in a savepoint rolled back after it: each one starts from the same organization
and the same valid key, however the case before it ended (the key revoked by DELETE /keys/{id},
POST /keys/{id}/revoke or POST /whoami/revoke, disabled by PATCH, rotated; a team deleted, a
member removed). Half of the generated valid ids in paths are aimed at real objects, so the
operations run to the end and not only to a 404."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from django.urls import resolve
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from accounts.access import Actor
from apikeys.api import not_found
from apikeys.models import KeyKind
from apikeys.permissions import ALL
from apikeys.services import api_key_create
from keyportal.wsgi import application
from projects import secrets
from projects.models import ApiKeyAccess
from tests.factories import AppFactory, EnvironmentFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
# No key needed: health, `keyportal login` (its device code is the proof), and leak reports
# (the leaked key is the proof). GitHub's reports need its signature: without one, 401.
PUBLIC = {
    "/api/v1/health",
    "/api/v1/ready",
    "/api/v1/device/code",
    "/api/v1/device/token",
    "/api/v1/keys/leaked",
}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
GENERATION = settings(
    deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)


def _takes_a_body(context) -> bool:
    return "requestBody" in context.operation.definition.raw


# Generated cases per operation, besides the coverage phase's own (about 1,200 with a key and
# 1,100 without, in all). With a key, the operations taking a body, where most of the input is,
# get the most: about 3,800 cases in all. Without one, a few each, as the key is refused before
# anything else is read: about 1,500. The module takes under a minute on SQLite.
WITH_A_BODY = schema.include(func=_takes_a_body)
WITHOUT_A_BODY = schema.exclude(func=_takes_a_body)
MANY = settings(GENERATION, max_examples=80)
SOME = settings(GENERATION, max_examples=30)
FEW = settings(GENERATION, max_examples=8)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Keep the database connection across in-process requests, as Django's test client does.

    Calling the WSGI application directly fires request_finished, whose close_old_connections
    would close the connection (and pytest-django's transaction) on PostgreSQL.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _no_failure_limit(settings):
    """Keep refused keys answered 401: the failures limiter (429) has its own tests."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 1_000_000


def _key(org, **kwargs):
    return api_key_create(
        actor=Actor.operator("operator (tests)"), organization=org.organization, **kwargs
    )


@pytest.fixture
def world(org) -> dict:
    """Return a key holding everything, and the ids of an organization with a little of
    everything, by path parameter: another key to act on, a member, a team, a project, a
    target, an environment with a secret, an app keys may edit."""
    environment = EnvironmentFactory(target__project__team__organization=org.organization)
    target = environment.target
    project = target.project
    app = AppFactory(project=project, api_key_access=ApiKeyAccess.CAN_EDIT)
    secrets.secret_set(
        actor=Actor.operator("operator (tests)"),
        environment=environment,
        name="DATABASE_URL",
        value="postgres://example",
    )
    other = _key(org, kind=KeyKind.ORGANIZATION, permissions=["projects:read", "secrets:read"])
    token = _key(org, kind=KeyKind.ORGANIZATION, permissions=sorted(ALL))[1]
    return {
        "token": token,
        "key_id": other[0].pk,
        "user_id": org.member.pk,
        "app_id": app.pk,
        "environment_id": environment.pk,
        "name": "DATABASE_URL",
        "version": 1,
        ("item_id", "teams"): project.team_id,
        ("item_id", "projects"): project.pk,
        ("item_id", "targets"): target.pk,
        ("item_id", "environments"): environment.pk,
    }


def _aim(case, world: dict) -> None:
    """Point half of the valid ids in the path (by the generated value's parity, so a case is
    always aimed the same way) at the world's objects; the rest keep what was generated: ids
    out of range, or naming nothing."""
    path = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
    if path is None or path.mode != GenerationMode.POSITIVE:
        return
    area = case.path.split("/")[3]
    for name, value in case.path_parameters.items():
        real = world.get(name, world.get((name, area)))
        if real is not None and len(str(value)) % 2 == 0:
            case.path_parameters[name] = real


def _call_with_a_valid_key(case, world: dict) -> None:
    """Send the case with the world's key: no 5xx, no status its operation does not declare."""
    _aim(case, world)
    with transaction.atomic():
        response = case.call(headers={"Authorization": f"Bearer {world['token']}"})
        transaction.set_rollback(True)
    case.validate_response(response, checks=CHECKS)


@pytest.mark.django_db
@WITH_A_BODY.parametrize()
@MANY
def test_no_server_error_nor_undeclared_status_with_a_valid_key(case, world):
    """Whatever the generated input, a request with a valid key never answers 5xx, nor a status
    its operation does not declare."""
    _call_with_a_valid_key(case, world)


@pytest.mark.django_db
@WITHOUT_A_BODY.parametrize()
@SOME
def test_no_server_error_nor_undeclared_status_with_a_valid_key_and_no_body(case, world):
    """The same for the operations that take no body."""
    _call_with_a_valid_key(case, world)


@pytest.mark.django_db
@schema.parametrize()
@FEW
def test_nothing_is_accepted_without_a_valid_key(case, org):
    """Without a key, or with a forged one, every non-public operation is refused."""
    for headers in ({}, {"Authorization": "Bearer sk-org-" + "A" * 38}):
        case.headers = {**(case.headers or {}), **headers} if headers else {}
        with transaction.atomic():
            response = case.call()
            transaction.set_rollback(True)
        case.validate_response(response, checks=CHECKS)
        if case.path in PUBLIC:
            continue
        if response.status_code == 404:
            # A generated id that is not one (negative, beyond a bigint) names no operation.
            assert resolve(urlsplit(response.request.url).path).func.__wrapped__ is not_found
        else:
            # Refused: 401; never accepted. (A method the route does not have, sent by the
            # coverage phase, is a 405.)
            assert response.status_code in (401, 405), (
                case.method,
                case.path,
                response.status_code,
            )
