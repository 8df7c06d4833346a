"""The rulebook's pieces: power and containment down the hierarchy, the lists against the
single-key checks, and a property: no sequence of calls yields more power than the actor's.

The table of every actor x key x action through every door is tests/security/
test_key_authority.py; this module checks what that table cannot enumerate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.access import Actor, Refused
from accounts.models import Role
from apikeys import authority
from apikeys.authority import Act
from apikeys.models import ApiKey, KeyKind
from apikeys.permissions import ROLE_PERMISSIONS
from apikeys.power import ORGANIZATION, Power, Scope, contains
from apikeys.services import api_key_create, api_key_rotate, api_key_update
from apikeys.verification import verify_token
from tests.apikeys.conftest import new_key
from tests.factories import (
    EnvironmentFactory,
    ProjectFactory,
    ServiceAccountFactory,
    TargetFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

OPERATOR = Actor.operator("operator (tests)")


@dataclass
class Tree:
    """Two teams; the first holds two projects, the first project a target with two
    environments. `above` says, from the fixture itself, what lies above each scope."""

    team: object
    other_team: object
    project: object
    sibling: object
    target: object
    environment: object
    other_environment: object

    @property
    def above(self) -> dict[tuple, set[tuple]]:
        team = ("team", self.team.pk)
        project = ("project", self.project.pk)
        target = ("target", self.target.pk)
        return {
            team: set(),
            ("team", self.other_team.pk): set(),
            project: {team},
            ("project", self.sibling.pk): {team},
            target: {project, team},
            ("environment", self.environment.pk): {target, project, team},
            ("environment", self.other_environment.pk): {target, project, team},
        }


@pytest.fixture
def tree(org) -> Tree:
    team = TeamFactory(organization=org.organization, name="Platform")
    project = ProjectFactory(team=team, name="Payments")
    target = TargetFactory(project=project, name="web")
    return Tree(
        team=team,
        other_team=TeamFactory(organization=org.organization, name="Data"),
        project=project,
        sibling=ProjectFactory(team=team, name="Ledger"),
        target=target,
        environment=EnvironmentFactory(target=target, name="production"),
        other_environment=EnvironmentFactory(target=target, name="staging"),
    )


# --- containment, checked against the fixture's own hierarchy ----------------------------------


def test_a_scope_is_contained_by_everything_above_it(tree):
    """secrets:read on one environment is contained by the same permission on its target, its
    project, its team and the organization, and by nothing narrower or beside it."""
    wanted = Power({"secrets:read": [Scope("environment", tree.environment.pk)]})
    holders = {
        "organization": ORGANIZATION,
        "team": Scope("team", tree.team.pk),
        "project": Scope("project", tree.project.pk),
        "target": Scope("target", tree.target.pk),
        "environment": Scope("environment", tree.environment.pk),
    }
    for level, scope in holders.items():
        assert contains(Power({"secrets:read": [scope]}), wanted) is None, level
    beside = [
        Scope("environment", tree.other_environment.pk),
        Scope("project", tree.sibling.pk),
        Scope("team", tree.other_team.pk),
    ]
    for scope in beside:
        missing = contains(Power({"secrets:read": [scope]}), wanted)
        assert missing is not None and missing.permission == "secrets:read"


def test_a_wider_scope_is_never_contained_by_a_narrower_one(tree):
    """An environment's grant does not contain its project's, nor the organization's."""
    holder = Power({"secrets:read": [Scope("environment", tree.environment.pk)]})
    for scope in (ORGANIZATION, Scope("project", tree.project.pk)):
        assert contains(holder, Power({"secrets:read": [scope]})) is not None


def test_another_permission_never_contains(tree):
    """Holding secrets:write everywhere says nothing of secrets:read."""
    holder = Power.over_organization({"secrets:write"})
    assert contains(holder, Power.over_organization({"secrets:read"})).permission == "secrets:read"


def test_a_project_keys_grants_are_its_projects(org, tree):
    """A project key holds its permissions on its project (or narrower), never more."""
    api_key, _ = new_key(
        org, KeyKind.PROJECT, owner=tree.project, permissions=["secrets:read", "projects:read"]
    )
    power = authority.key_power(api_key)
    assert power.scopes("secrets:read") == {Scope("project", tree.project.pk)}
    assert power.scopes("projects:read") == {Scope("project", tree.project.pk)}


def test_a_personal_keys_power_follows_its_owners_role(org):
    """Stored grants beyond the owner's current role are not power (cut at every request)."""
    api_key, _ = new_key(org, owner=org.admin, permissions=["projects:read", "projects:create"])
    assert authority.key_power(api_key).permissions == {"projects:read", "projects:create"}
    org.membership(org.admin).__class__.objects.filter(user=org.admin).update(role=Role.MEMBER)
    assert authority.key_power(api_key).permissions == {"projects:read"}


# --- the lists say what the single-key checks say ---------------------------------------------


def key_actor(token: str) -> Actor:
    verified = verify_token(token)
    return Actor(user=None, key=verified.api_key, key_power=verified.power())


def test_lists_agree_with_the_checks(org, tree):
    """For every actor and every key, `visible_keys` holds the key exactly when `check(SEE)`
    passes, and `revocable_keys` exactly when `check(REVOKE)` does."""
    account = ServiceAccountFactory(organization=org.organization)
    for api_key, _token in [
        new_key(org, owner=org.member),
        new_key(org, owner=org.admin, actor=org.admin),
        new_key(org, owner=org.owner, actor=org.owner),
        new_key(org, KeyKind.ORGANIZATION),
        new_key(org, KeyKind.SERVICE_ACCOUNT, owner=account),
        new_key(org, KeyKind.PROJECT, owner=tree.project),
    ]:
        assert api_key.pk
    manage = ["api-keys:manage", "projects:read"]
    actors = [Actor(user=org.owner), Actor(user=org.admin), Actor(user=org.member), OPERATOR]
    for owner in (org.owner, org.admin, org.member):
        actors.append(key_actor(new_key(org, owner=owner, actor=owner, permissions=manage)[1]))
    actors.append(key_actor(new_key(org, KeyKind.ORGANIZATION, permissions=manage)[1]))
    actors.append(key_actor(new_key(org, KeyKind.ORGANIZATION, permissions=["projects:read"])[1]))
    for actor in actors:
        visible = set(authority.visible_keys(actor, org.organization))
        revocable = set(authority.revocable_keys(actor, org.organization))
        for api_key in ApiKey.objects.filter(organization=org.organization):
            assert (api_key in visible) == authority.allowed(actor, Act.SEE, api_key), actor
            assert (api_key in revocable) == authority.allowed(actor, Act.REVOKE, api_key), actor


# --- the property: nothing yields more than the actor holds --------------------------------------

PERMISSIONS = ("secrets:read", "secrets:write", "projects:read", "environments:read")
ORG_ONLY = ("api-keys:manage", "members:update")


def grant_pool(tree: Tree) -> list[tuple[str, tuple]]:
    """Every (permission, scope) the generated calls may ask for."""
    scopes = [("organization", None), *tree.above]
    depth = {"projects:read": ("team", "project")}
    pool = [(p, ("organization", None)) for p in ORG_ONLY]
    for permission in PERMISSIONS:
        allowed = depth.get(permission, ("team", "project", "target", "environment"))
        pool += [(permission, s) for s in scopes if s[0] == "organization" or s[0] in allowed]
    return pool


def grants_of(api_key: ApiKey, tree: Tree) -> set[tuple[str, tuple]]:
    """Return the key's power as the test reads it from the row: scopes, its project, its
    owner's role."""
    default = (
        ("project", api_key.owner_project_id)
        if api_key.kind == KeyKind.PROJECT
        else (
            "organization",
            None,
        )
    )
    grants = set()
    for permission in api_key.permissions:
        refs = api_key.scopes.get(permission) or []
        grants |= {(permission, (r["type"], r["id"])) for r in refs} or {(permission, default)}
    if api_key.kind == KeyKind.USER:
        role = api_key.owner_user.memberships.get(organization=api_key.organization).role
        grants = {g for g in grants if g[0] in ROLE_PERMISSIONS[role]}
    return grants


def holds(holder: set, grant: tuple, tree: Tree) -> bool:
    permission, scope = grant
    places = {scope, ("organization", None)} | tree.above.get(scope, set())
    return any((permission, place) in holder for place in places)


def within(grants: set, holder: set, tree: Tree) -> bool:
    return all(holds(holder, grant, tree) for grant in grants)


def as_scopes(grants: list[tuple[str, tuple]]) -> tuple[list[str], dict]:
    permissions = sorted({p for p, _ in grants})
    scopes: dict[str, list[dict]] = {}
    for permission, (level, pk) in grants:
        if level != "organization":
            scopes.setdefault(permission, []).append({"type": level, "id": pk})
    # A permission held on the whole organization and on a scope is held on the organization.
    for permission, scope in grants:
        if scope[0] == "organization":
            scopes.pop(permission, None)
    return permissions, scopes


def calls(pool_size: int):
    grants = st.lists(st.integers(0, pool_size - 1), min_size=1, max_size=4, unique=True)
    create = st.tuples(
        st.just("create"), st.sampled_from(["org", "svc", "user", "project"]), grants
    )
    edit = st.tuples(
        st.just("edit"),
        st.integers(0, 20),
        grants,
        st.sampled_from(["active", "disabled"]),
        st.sampled_from([None, 5, 20, 400]),
    )
    rotate = st.tuples(st.just("rotate"), st.integers(0, 20))
    return st.lists(st.one_of(create, edit, rotate), min_size=1, max_size=6)


def actors(org, tree) -> dict[str, tuple[Actor, set]]:
    """The actors of the property, each with its power as the test writes it down."""
    env = ("environment", tree.environment.pk)
    team = ("team", tree.team.pk)
    scoped = [
        ("api-keys:manage", ("organization", None)),
        ("secrets:read", env),
        ("secrets:write", env),
        ("projects:read", ("project", tree.project.pk)),
    ]
    wide = [
        ("api-keys:manage", ("organization", None)),
        ("secrets:read", team),
        ("environments:read", ("target", tree.target.pk)),
        ("projects:read", ("organization", None)),
    ]
    found = {}
    for name, grants, kind, owner in (
        ("environment key", scoped, KeyKind.ORGANIZATION, None),
        (
            "team key",
            wide,
            KeyKind.SERVICE_ACCOUNT,
            ServiceAccountFactory(organization=org.organization),
        ),
        ("admin's key", wide, KeyKind.USER, org.admin),
    ):
        permissions, scopes = as_scopes(grants)
        extra = {"expires_at": timezone.now() + timedelta(days=7)} if owner == org.admin else {}
        api_key, token = api_key_create(
            actor=OPERATOR,
            organization=org.organization,
            kind=kind,
            owner=owner,
            permissions=permissions,
            scopes=scopes,
            **extra,
        )
        found[name] = (key_actor(token), grants_of(api_key, tree))
    for person, role in ((org.admin, Role.ADMIN), (org.member, Role.MEMBER)):
        found[role.label] = (
            Actor(user=person),
            {(p, ("organization", None)) for p in ROLE_PERMISSIONS[role]},
        )
    return found


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_sequence_of_calls_yields_more_than_the_actor_holds(org, tree, data):
    """Whatever an actor creates, edits or rotates, every key it makes, widens, extends,
    enables or receives the secret of holds only what the actor holds; every other edit only
    takes power away."""
    pool = grant_pool(tree)
    with transaction.atomic():
        cast = actors(org, tree)
        name = data.draw(st.sampled_from(sorted(cast)))
        actor, power = cast[name]
        strangers = [
            new_key(org, KeyKind.ORGANIZATION, permissions=["members:update"])[0],
            new_key(org, KeyKind.ORGANIZATION, permissions=["secrets:read"])[0],
        ]
        for call in data.draw(calls(len(pool))):
            run(call, actor, power, pool, org, tree, strangers)
        transaction.set_rollback(True)


def run(call, actor, power, pool, org, tree, known) -> None:
    person = actor.user or (actor.key.owner_user if actor.key and actor.key.owner_user else None)
    try:
        if call[0] == "create":
            _, kind, picks = call
            permissions, scopes = as_scopes([pool[i] for i in picks])
            owner = {"user": person, "project": tree.project, "svc": None}.get(kind)
            if kind == "svc":
                owner = ServiceAccountFactory(organization=org.organization)
            extra = {"expires_at": timezone.now() + timedelta(days=7)} if kind == "user" else {}
            api_key, _token = api_key_create(
                actor=actor,
                organization=org.organization,
                kind=kind,
                owner=owner,
                permissions=permissions,
                scopes=scopes,
                **extra,
            )
            assert within(grants_of(api_key, tree), power, tree), (permissions, scopes)
            known.append(api_key)
        elif call[0] == "edit":
            _, index, picks, status, days = call
            api_key = known[index % len(known)]
            api_key.refresh_from_db()
            before = grants_of(api_key, tree)
            was_live = api_key.status == "active"
            old_expiry = api_key.expires_at
            permissions, scopes = as_scopes([pool[i] for i in picks])
            expires_at = timezone.now() + timedelta(days=days) if days else None
            api_key_update(
                actor=actor,
                api_key=api_key,
                permissions=permissions,
                scopes=scopes,
                status=status,
                expires_at=expires_at,
            )
            api_key.refresh_from_db()
            after = grants_of(api_key, tree)
            gave = (
                not within(after, before, tree)
                or (status == "active" and not was_live)
                or (old_expiry is not None and (expires_at is None or expires_at > old_expiry))
            )
            if gave:
                assert within(after, power, tree), (before, after)
        else:
            api_key = known[call[1] % len(known)]
            rotated, _token = api_key_rotate(actor=actor, api_key=api_key)
            assert within(grants_of(rotated, tree), power, tree)
    except (Refused, ValidationError):
        pass
