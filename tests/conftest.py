"""Shared fixtures: an organization with one person of each role, and an outsider."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from accounts.models import Membership, Organization, Role, User
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


@dataclass
class Org:
    organization: Organization
    owner: User
    admin: User
    member: User

    def membership(self, user: User) -> Membership:
        return Membership.objects.get(organization=self.organization, user=user)


def _organization_with_people(name: str, slug: str) -> Org:
    organization = OrganizationFactory(name=name, slug=slug)
    people = {
        role: MembershipFactory(organization=organization, role=role).user
        for role in (Role.OWNER, Role.ADMIN, Role.MEMBER)
    }
    return Org(organization, people[Role.OWNER], people[Role.ADMIN], people[Role.MEMBER])


@pytest.fixture
def org(db) -> Org:
    """Return an organization with an owner, an admin and a member."""
    return _organization_with_people("Acme", "acme")


@pytest.fixture
def other_org(db) -> Org:
    """Return a second, unrelated organization with its own people."""
    return _organization_with_people("Globex", "globex")


@pytest.fixture
def outsider(db) -> User:
    """Return a person who belongs to no organization of the tests."""
    return UserFactory()


@pytest.fixture
def client_for():
    """Return a function giving a logged-in test client for a person."""

    def make(user: User | None, **kwargs) -> Client:
        client = Client(**kwargs)
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def htmx_headers() -> dict:
    """Return the headers htmx sends with a (not boosted) request."""
    return {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Start every test with an empty cache: rate-limit counters must not leak between tests."""
    from django.core.cache import cache

    from apikeys import usage

    cache.clear()
    usage.discard()
    yield
    cache.clear()
    usage.discard()


def redis_answers() -> bool:
    """Return True when the tests' Redis (KEYPORTAL_TEST_REDIS_URL) answers a PING."""
    from django.core.cache import caches

    try:
        return bool(caches["limits-redis"]._cache.get_client().ping())
    except Exception:
        return False


@pytest.fixture(params=["locmem", "redis"])
def limits_cache(request, settings):
    """Count rate limits and budgets in each cache in turn: the local-memory cache of the
    embedded default, then Redis. Without Redis the Redis run is skipped, with its reason,
    unless KEYPORTAL_REQUIRE_REDIS is set (CI sets it when it started Redis): then it fails."""
    import os

    from django.core.cache import caches

    if request.param == "redis":
        if not redis_answers():
            reason = "Redis does not answer at KEYPORTAL_TEST_REDIS_URL"
            if os.environ.get("KEYPORTAL_REQUIRE_REDIS"):
                pytest.fail(f"{reason}, and KEYPORTAL_REQUIRE_REDIS is set")
            pytest.skip(reason)
        settings.KEYPORTAL_LIMITS_CACHE = "limits-redis"
        _clear_own_keys(caches["limits-redis"])
    else:
        settings.KEYPORTAL_LIMITS_CACHE = "default"
    yield request.param
    if request.param == "redis":
        _clear_own_keys(caches["limits-redis"])


def _clear_own_keys(cache) -> None:
    # Not cache.clear(): that is FLUSHDB, and other runs may share the database.
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
