"""When the cache that counts limits does not answer, a key with limits is refused (503 with
Retry-After), never let through uncounted; a plain key does not notice."""

from __future__ import annotations

import pytest
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from apikeys import limits
from tests.apikeys.conftest import operator_key
from tests.conftest import redis_answers

pytestmark = pytest.mark.django_db


def whoami(token: str):
    return Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_limited_key_is_refused_while_redis_is_down(org, settings, monkeypatch):
    """Err on refusing: 503 limits_unavailable with Retry-After; the plain key keeps working."""
    if not redis_answers():
        pytest.skip("Redis does not answer at KEYPORTAL_TEST_REDIS_URL")
    settings.KEYPORTAL_LIMITS_CACHE = "limits-redis"

    def down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(limits, "_check_redis", down)
    _key, limited = operator_key(org, rate_limits=[{"limit": 100, "window": "minute"}])
    _plain, plain = operator_key(org)
    response = whoami(limited)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "limits_unavailable"
    assert response["Retry-After"] == "5"
    assert whoami(plain).status_code == 200
