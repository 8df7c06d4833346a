"""Fixtures and helpers for the API key tests: a project tree, a service account, keys."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent, ServiceAccount, User
from apikeys.models import ApiKey, KeyKind, KeyPolicy
from apikeys.services import api_key_create, key_policy_update
from projects.models import Environment, Project, Target
from tests.accounts.helpers import row_counts
from tests.conftest import Org
from tests.factories import (
    EnvironmentFactory,
    ProjectFactory,
    ServiceAccountFactory,
    TargetFactory,
    TeamFactory,
)


@dataclass
class Tree:
    """A team, one of its projects, a target of it and an environment of that target."""

    project: Project
    target: Target
    environment: Environment


def build_tree(org: Org, name: str = "Payments") -> Tree:
    team = TeamFactory(organization=org.organization)
    project = ProjectFactory(team=team, name=name)
    target = TargetFactory(project=project, name="web")
    environment = EnvironmentFactory(target=target, name="production")
    return Tree(project, target, environment)


@pytest.fixture
def tree(org) -> Tree:
    """Return a project with a target and an environment in the `org` organization."""
    return build_tree(org)


@pytest.fixture
def foreign_tree(other_org) -> Tree:
    """Return a project with a target and an environment in the other organization."""
    return build_tree(other_org, name="Globex Secret Project")


@pytest.fixture
def bot(org) -> ServiceAccount:
    """Return an active service account of the `org` organization."""
    return ServiceAccountFactory(
        organization=org.organization, name="deploy-bot", created_by=org.owner
    )


def in_days(days: float) -> timezone.datetime:
    return timezone.now() + timedelta(days=days)


def new_key(
    org: Org,
    kind: str = KeyKind.USER,
    *,
    actor: User | None = None,
    owner=None,
    ip: str = "",
    **kwargs,
) -> tuple[ApiKey, str]:
    """Create a key through the service, with defaults that pass every default policy.

    Personal keys belong to (and are made by) the plain member unless `owner` says otherwise;
    other kinds are made by the owner of the organization.
    """
    if kind == KeyKind.USER:
        owner = owner or org.member
        actor = actor or owner
        kwargs.setdefault("expires_at", in_days(7))
    actor = actor or org.owner
    kwargs.setdefault("permissions", ["projects:read"])
    return api_key_create(
        actor=Actor(user=actor, ip=ip),
        organization=org.organization,
        kind=kind,
        owner=owner,
        **kwargs,
    )


def operator_key(
    org: Org,
    permissions=("projects:read",),
    kind: str = KeyKind.ORGANIZATION,
    owner=None,
    **kwargs,
) -> tuple[ApiKey, str]:
    """Create a key as an operator would (manage.py): bound by no one's power. Personal keys
    get a 7-day expiry unless told otherwise, as the default policy wants."""
    if kind == KeyKind.USER:
        kwargs.setdefault("expires_at", in_days(7))
    return api_key_create(
        actor=Actor.operator("operator (tests)"),
        organization=org.organization,
        kind=kind,
        owner=owner,
        permissions=sorted(permissions),
        **kwargs,
    )


def key_counts() -> dict[str, int]:
    """Return row counts of every model a key form could write, keys and policies included.

    The audit log's records of refused attempts are left out: a refusal changes nothing but
    adds one (`refusals` counts them).
    """
    return {
        **row_counts(),
        "ApiKey": ApiKey.objects.count(),
        "KeyPolicy": KeyPolicy.objects.count(),
        "AuditEvent": AuditEvent.objects.exclude(action="api_key.refused").count(),
    }


def refusals(api_key: ApiKey | None = None) -> list[tuple[str, str]]:
    """Return the (act, door) of every refused attempt recorded, oldest first (on `api_key`)."""
    events = AuditEvent.objects.filter(action="api_key.refused").order_by("created_at", "id")
    if api_key is not None:
        events = events.filter(target_type="apikey", target_id=str(api_key.pk))
    return [(e.detail["action"], e.detail["door"]) for e in events]


def key_state(api_key: ApiKey) -> tuple:
    """Return every stored column of a key, to prove a refused request changed nothing."""
    return ApiKey.objects.filter(pk=api_key.pk).values_list().get()


def create_url(kind: str, owner: int | None = None, org: str = "acme") -> str:
    if owner is None:
        return reverse("api_key_create", kwargs={"org": org, "kind": kind})
    return reverse("api_key_create_for", kwargs={"org": org, "kind": kind, "owner": owner})


def detail_url(api_key: ApiKey | int, org: str = "acme") -> str:
    return reverse("api_key_detail", kwargs={"org": org, "pk": getattr(api_key, "pk", api_key)})


def rotate_url(api_key: ApiKey | int, org: str = "acme") -> str:
    return reverse("api_key_rotate", kwargs={"org": org, "pk": getattr(api_key, "pk", api_key)})


def delete_url(api_key: ApiKey | int, org: str = "acme") -> str:
    return reverse("api_key_delete", kwargs={"org": org, "pk": getattr(api_key, "pk", api_key)})


PERSONAL_KEYS_URL = reverse("personal_keys", kwargs={"org": "acme"})
ORGANIZATION_KEYS_URL = reverse("organization_keys", kwargs={"org": "acme"})
POLICY_URL = reverse("key_policy", kwargs={"org": "acme"})
AUDIT_URL = reverse("audit_log", kwargs={"org": "acme"})


def create_data(**overrides) -> dict:
    """Return a valid create form: a name, one permission, a 30-day expiry."""
    data = {
        "name": "deploy script",
        "preset": "custom",
        "permissions": ["projects:read"],
        "expiration": "30",
        "expires_on": "",
    }
    data.update(overrides)
    return data


def edit_data(api_key: ApiKey, **overrides) -> dict:
    """Return the edit form as the detail page fills it in for `api_key`."""
    data = {
        "name": api_key.name,
        "status": api_key.status,
        "preset": "custom",
        "permissions": list(api_key.permissions),
    }
    data.update(overrides)
    return data


TOKEN_RE = re.compile(r"sk-(?:user|svc|org|project)-[0-9A-Za-z]{38}")


def revealed_token(response) -> str:
    """Return the one plaintext token a reveal response shows (in the key and export lines)."""
    tokens = set(TOKEN_RE.findall(response.content.decode()))
    assert len(tokens) == 1, tokens
    return tokens.pop()


def secret_part(token: str) -> str:
    """Return what a token holds beyond its preview: no stored or shown text may contain it."""
    return token[token.index("-", 3) + 1 : -4]


def plain_text(response) -> str:
    """Return the response as text without tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


def disable_unused_after(org: Org, kind: str, days: int | None) -> None:
    """Set, as the organization's owner, the key policy that disables keys of `kind` unused for
    `days` (None: never); no expiry rule."""
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=kind,
        require_expiry=False,
        max_lifetime_days=None,
        disable_unused_after_days=days,
    )
