"""Helpers for the security tests: objects in an organization, logged-in clients, DB snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import models
from django.test import Client
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Role, User
from accounts.services import invitation_create
from accounts.signup import SignupRequest, signup_token_make
from apikeys.models import KeyKind
from apikeys.services import api_key_create
from projects.secrets import secret_set
from tests.conftest import Org
from tests.factories import (
    AppFactory,
    EnvironmentFactory,
    ProjectFactory,
    ServiceAccountFactory,
    TargetFactory,
    TeamFactory,
)


@dataclass
class Objects:
    """One object of every kind a console URL names, all in one organization."""

    org: Org
    token: str
    items: dict[str, models.Model] = field(default_factory=dict)

    def fill(self, template: str) -> str:
        """Return `template` with {project}, {team}, ... {token} (an invitation's),
        {signup_token} (a new address's signup link) and {member_email} filled in."""
        return template.format(
            token=self.token,
            signup_token=signup_token_make(
                SignupRequest("newcomer@example.test", "Newcomer", "Newco")
            ),
            member_email=self.org.member.email,
            **{name: obj.pk for name, obj in self.items.items()},
        )

    def fill_data(self, data: dict[str, str]) -> dict[str, str]:
        """Return form data with the same placeholders replaced."""
        return {key: self.fill(value) for key, value in data.items()}


def build_objects(org: Org) -> Objects:
    """Create a team, project, target, environment, secret, app, service account, invitation."""
    organization = org.organization
    team = TeamFactory(organization=organization)
    project = ProjectFactory(team=team)
    target = TargetFactory(project=project)
    environment = EnvironmentFactory(target=target)
    app = AppFactory(project=project)
    service_account = ServiceAccountFactory(organization=organization, created_by=org.owner)
    secret = secret_set(
        actor=Actor(user=org.owner), environment=environment, name="DATABASE_URL", value="x"
    ).secret
    invitation, token = invitation_create(
        actor=Actor(user=org.owner),
        organization=organization,
        email=f"invitee@{organization.slug}.test",
        role=Role.MEMBER,
        accept_url=lambda token: token,
    )
    items = {
        "team": team,
        "project": project,
        "target": target,
        "environment": environment,
        "app": app,
        "secret": secret,
        # "account" keeps the URL table's paths short.
        "account": service_account,
        "invitation": invitation,
        # The plain member's membership: the one owners change or remove.
        "membership": org.membership(org.member),
        "member_key": api_key_create(
            actor=Actor(user=org.member),
            organization=organization,
            kind=KeyKind.USER,
            owner=org.member,
            permissions=["projects:read"],
            expires_at=timezone.now() + timedelta(days=7),
        )[0],
        "org_key": api_key_create(
            actor=Actor(user=org.owner),
            organization=organization,
            kind=KeyKind.ORGANIZATION,
            permissions=["projects:read"],
        )[0],
    }
    return Objects(org=org, token=token, items=items)


@pytest.fixture
def objects(org) -> Objects:
    """Return one object of every kind in the `org` fixture's organization."""
    return build_objects(org)


@pytest.fixture
def foreign_objects(other_org) -> Objects:
    """Return one object of every kind in the other organization."""
    return build_objects(other_org)


def logged_in(user: User | None, **kwargs) -> Client:
    """Return a test client logged in as `user`, or an anonymous one for None."""
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def database_state() -> dict[str, list[tuple]]:
    """Return every row of the product's own tables, to compare before and after a request."""
    state = {}
    for label in ("accounts", "projects", "apikeys"):
        for model in apps.get_app_config(label).get_models():
            state[model._meta.label] = list(model.objects.order_by("pk").values_list())
    return state


def row_counts(state: dict[str, list[tuple]]) -> dict[str, int]:
    """Return how many rows each table holds in a `database_state()`."""
    return {label: len(rows) for label, rows in state.items()}
