"""GET /api/v1/ready: the database and the caches answer, or 503 naming what does not."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.db import OperationalError
from django.test import Client

from apikeys.api import health

pytestmark = pytest.mark.django_db
# What a failure's text may hold, which the answer must never repeat.
SECRET_DETAIL = "postgres://keyportal:hunter2@db.internal:5432/keyportal"


def ready():
    return Client().get("/api/v1/ready")


def test_ready_when_everything_answers():
    """No key needed; each part is named with "ok"."""
    response = ready()
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "ok", "limits_cache": "ok"},
    }
    assert response["Cache-Control"] == "no-store"


def test_ready_leaves_no_probe_behind():
    """The probe key is read back and deleted."""
    cache = caches["default"]
    assert ready().status_code == 200
    assert not [key for key in cache._cache if "kp:ready:" in key]


def test_health_stays_cheap(django_assert_num_queries):
    """Liveness touches neither the database nor the cache."""
    with django_assert_num_queries(0):
        response = Client().get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


class BrokenConnection:
    def cursor(self):
        raise OperationalError(f"could not connect to {SECRET_DETAIL}")


class BrokenConnections:
    def __getitem__(self, alias):
        return BrokenConnection()


def test_database_down_is_503_naming_it(monkeypatch, caplog):
    monkeypatch.setattr(health, "connections", BrokenConnections())
    response = ready()
    assert response.status_code == 503
    assert response.json() == {
        "status": "not_ready",
        "checks": {"database": "failing", "cache": "ok", "limits_cache": "ok"},
    }
    assert b"hunter2" not in response.content
    assert b"db.internal" not in response.content
    # The operator finds the cause in the log.
    assert "database" in caplog.text


def test_cache_down_is_503_naming_it(monkeypatch):
    """The default cache failing (Redis gone): the limits counted there fail with it."""

    def broken(*args, **kwargs):
        raise ConnectionError(f"Error 111 connecting to {SECRET_DETAIL}")

    monkeypatch.setattr(caches["default"], "set", broken)
    response = ready()
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "failing",
        "limits_cache": "failing",
    }
    assert b"hunter2" not in response.content


def test_limits_cache_is_checked_on_its_own(settings):
    """KEYPORTAL_LIMITS_CACHE naming another cache gets a probe of its own; one that forgets
    what it is given (a dummy cache) is not ready."""
    settings.CACHES = {
        **settings.CACHES,
        "limits-probe": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "forgetful": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    settings.KEYPORTAL_LIMITS_CACHE = "limits-probe"
    assert ready().json()["checks"]["limits_cache"] == "ok"
    settings.KEYPORTAL_LIMITS_CACHE = "forgetful"
    response = ready()
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "ok",
        "limits_cache": "failing",
    }


def test_limits_cache_down_alone(settings, monkeypatch):
    settings.CACHES = {
        **settings.CACHES,
        "limits-probe": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.KEYPORTAL_LIMITS_CACHE = "limits-probe"

    def broken(*args, **kwargs):
        raise TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(caches["limits-probe"], "get", broken)
    response = ready()
    assert response.status_code == 503
    assert response.json()["checks"]["limits_cache"] == "failing"
    assert response.json()["checks"]["cache"] == "ok"


def test_everything_down(monkeypatch):
    monkeypatch.setattr(health, "connections", BrokenConnections())
    monkeypatch.setattr(health, "check_cache", lambda alias: health.FAILING)
    response = ready()
    assert response.status_code == 503
    assert set(response.json()["checks"].values()) == {"failing"}


def test_ready_is_described_in_the_openapi_document():
    """Public, with both answers declared."""
    operation = Client().get("/api/v1/openapi.json").json()["paths"]["/api/v1/ready"]["get"]
    assert operation["x-permission"] == "public"
    assert {"200", "503"} <= set(operation["responses"])
    assert "security" not in operation or operation["security"] in ([], [{}])
