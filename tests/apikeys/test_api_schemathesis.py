"""Schemathesis against the API's own OpenAPI document, in process and bounded.

Two properties over generated requests for every operation: with a valid key nothing answers
5xx; without one nothing but the public routes is accepted.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from accounts.access import Actor
from apikeys.models import KeyKind
from apikeys.permissions import ALL
from apikeys.services import api_key_create
from keyportal.wsgi import application
from projects.models import ApiKeyAccess
from tests.factories import AppFactory, EnvironmentFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
# No key needed: health, and `keyportal login` (its device code is the proof).
PUBLIC = {"/api/v1/health", "/api/v1/device/code", "/api/v1/device/token"}
BOUNDED = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


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


@pytest.fixture
def token(org) -> str:
    """Return a key holding everything, in an organization with a little of everything."""
    environment = EnvironmentFactory(target__project__team__organization=org.organization)
    AppFactory(project=environment.target.project, api_key_access=ApiKeyAccess.CAN_EDIT)
    return api_key_create(
        actor=Actor(user=None),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=sorted(ALL),
    )[1]


@pytest.mark.django_db
@schema.parametrize()
@BOUNDED
def test_no_server_error_with_a_valid_key(case, token):
    """Whatever the generated input, a request with a valid key never answers 5xx."""
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
    )


@pytest.mark.django_db
@schema.parametrize()
@BOUNDED
def test_nothing_is_accepted_without_a_valid_key(case, org):
    """Without a key, or with a forged one, every non-public operation is refused."""
    for headers in ({}, {"Authorization": "Bearer sk-org-" + "A" * 38}):
        case.headers = {**(case.headers or {}), **headers} if headers else {}
        response = case.call()
        if case.path in PUBLIC:
            assert response.status_code < 500
        elif case.path.endswith(("/openapi.json", "/docs")):
            continue
        else:
            # Refused: 401 (or 429 once too many failures came from this address, or 405 for
            # a method the route does not have); never accepted, never a server error.
            assert response.status_code in (401, 405, 429), (
                case.method,
                case.path,
                response.status_code,
            )
