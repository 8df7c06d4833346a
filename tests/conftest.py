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
