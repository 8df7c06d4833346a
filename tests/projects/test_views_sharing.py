"""An app's sharing page: "Keys this affects" lists the keys that can actually reach the app."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from apikeys.models import ApiKey, KeyKind, KeyPreset, KeyStatus
from projects import views_sharing
from projects.models import App
from projects.selectors import app_reaching_keys
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import build_tree, operator_key
from tests.factories import AppFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db


def sharing_url(app: App) -> str:
    return reverse("app_sharing", kwargs={"org": "acme", "pk": app.pk})


def scoped(permission: str, level: str, pk: int) -> dict:
    return {permission: [{"type": level, "id": pk}]}


@pytest.fixture
def world(org, other_org):
    """Return Acme's app (in project Payments of one team), a project of another team, and a
    key of every kind inside and outside the app's reach, by name."""
    here = build_tree(org, name="Payments")
    there = build_tree(org, name="Billing")
    app = AppFactory(project=here.project, name="Storefront", slug="storefront")
    bot = ServiceAccountFactory(organization=org.organization, created_by=org.owner)
    idle_bot = ServiceAccountFactory(organization=org.organization, created_by=org.owner)
    project, team = here.project, here.project.team
    inside = {
        "org apps:read": dict(permissions=["apps:read"]),
        "org apps:publish on the project": dict(
            permissions=["apps:publish"], scopes=scoped("apps:publish", "project", project.pk)
        ),
        "svc apps:update on the team": dict(
            kind=KeyKind.SERVICE_ACCOUNT,
            owner=bot,
            permissions=["apps:update"],
            scopes=scoped("apps:update", "team", team.pk),
        ),
        "project key of the app's project": dict(
            kind=KeyKind.PROJECT, owner=project, permissions=["apps:read"]
        ),
        "member's apps:read": dict(
            kind=KeyKind.USER, owner=org.member, permissions=["apps:read", "projects:read"]
        ),
        "admin's apps:update": dict(
            kind=KeyKind.USER, owner=org.admin, permissions=["apps:update"]
        ),
        # Scoped elsewhere for one apps permission, over the app for another: it reaches it.
        "read elsewhere, publish here": dict(
            permissions=["apps:publish", "apps:read"],
            scopes={
                **scoped("apps:read", "project", there.project.pk),
                **scoped("apps:publish", "team", team.pk),
            },
        ),
    }
    outside = {
        "apps:read on another project": dict(
            permissions=["apps:read"], scopes=scoped("apps:read", "project", there.project.pk)
        ),
        "apps:read on another team": dict(
            permissions=["apps:read"],
            scopes=scoped("apps:read", "team", there.project.team_id),
        ),
        "project key of another project": dict(
            kind=KeyKind.PROJECT, owner=there.project, permissions=["apps:read"]
        ),
        "no apps permission": dict(permissions=["projects:read", "secrets:read"]),
        # A member's role holds no apps:update: the key is cut to apps nothing.
        "member's apps:update, cut by the role": dict(
            kind=KeyKind.USER, owner=org.member, permissions=["apps:update", "projects:read"]
        ),
        "revoked": dict(permissions=["apps:read"]),
        "expired": dict(permissions=["apps:read"]),
        "disabled": dict(permissions=["apps:read"]),
        "of a deactivated service account": dict(
            kind=KeyKind.SERVICE_ACCOUNT, owner=idle_bot, permissions=["apps:read"]
        ),
        "of a person who left": dict(kind=KeyKind.USER, owner=org.owner, permissions=["apps:read"]),
    }
    for name, spec in {**inside, **outside}.items():
        operator_key(org, name=name, **{"kind": KeyKind.ORGANIZATION, **spec})
    foreign, _ = operator_key(
        other_org, name="another tenant's apps:read", permissions=["apps:read"]
    )
    keys = ApiKey.objects.filter(organization=org.organization)
    keys.filter(name="revoked").update(revoked_at=timezone.now())
    keys.filter(name="expired").update(expires_at=timezone.now() - timedelta(minutes=1))
    keys.filter(name="disabled").update(status=KeyStatus.DISABLED)
    type(idle_bot).objects.filter(pk=idle_bot.pk).update(is_active=False)
    # A key whose owner is no longer a member holds nothing, even before it is revoked.
    second_owner = Membership.objects.get(organization=org.organization, user=org.owner)
    Membership.objects.filter(pk=second_owner.pk).delete()
    return app, set(inside), set(outside) | {foreign.name}


def test_only_keys_that_reach_the_app_are_listed(world):
    """Keys inside the app's reach are listed, newest first; keys outside it are not."""
    app, inside, _outside = world
    reaching, more = app_reaching_keys(app=app)
    assert not more
    assert {key.name for key in reaching} == inside
    assert [key.created_at for key in reaching] == sorted(
        (key.created_at for key in reaching), reverse=True
    )


def test_the_page_lists_the_reaching_keys_and_their_count(client_for, org, world):
    """The page says how many keys reach the app and names them; none from outside."""
    app, inside, outside = world
    response = client_for(org.admin).get(sharing_url(app))
    assert response.status_code == 200
    text = page_text(response)
    affects = text[text.index("Keys this affects") :]
    assert f"{len(inside)} live keys can reach this app" in affects
    for name in inside:
        assert f">{name}</a>" in affects
    for name in outside:
        assert f">{name}</a>" not in affects


def test_with_more_than_ten_only_the_ten_newest_are_named(client_for, org):
    """Past ten keys, the count is whole and the ten newest are named."""
    tree = build_tree(org)
    app = AppFactory(project=tree.project)
    for n in range(12):
        operator_key(org, name=f"reader {n:02}", permissions=["apps:read"])
    text = page_text(client_for(org.owner).get(sharing_url(app)))
    assert "12 live keys can reach this app" in text
    assert "The 10 newest" in text
    assert ">reader 11</a>" in text
    assert ">reader 01</a>" not in text


def test_no_key_reaching_the_app_says_so(client_for, org):
    """With keys holding apps permissions only elsewhere, nothing is listed."""
    here, there = build_tree(org, name="Payments"), build_tree(org, name="Billing")
    app = AppFactory(project=here.project)
    operator_key(
        org,
        name="elsewhere",
        permissions=["apps:read"],
        scopes=scoped("apps:read", "project", there.project.pk),
    )
    text = page_text(client_for(org.owner).get(sharing_url(app)))
    assert "No live key holds an apps permission that reaches project Payments" in text
    assert ">elsewhere</a>" not in text


def test_the_list_costs_a_fixed_number_of_queries(org, django_assert_max_num_queries):
    """Reading the reaching keys takes the same few queries however many keys there are."""
    tree = build_tree(org)
    app = AppFactory(project=tree.project)
    for n in range(15):
        operator_key(
            org,
            name=f"scoped {n}",
            permissions=["apps:read"],
            scopes=scoped("apps:read", "project", tree.project.pk),
        )
        operator_key(org, kind=KeyKind.USER, owner=org.member, permissions=["apps:read"])
    with django_assert_max_num_queries(2):
        assert len(app_reaching_keys(app=app)[0]) == 30


def test_anonymous_members_and_other_tenants_cannot_open_it(client_for, org, other_org):
    """Anonymous people log in first; members and other tenants get 404."""
    app = AppFactory(project=build_tree(org).project)
    assert Client().get(sharing_url(app)).status_code == 302
    assert client_for(org.member).get(sharing_url(app)).status_code == 404
    assert client_for(other_org.owner).get(sharing_url(app)).status_code == 404


def test_past_the_cap_the_count_says_more_than(client_for, org):
    """Past 1,000 reaching keys the reading stops: the page says "more than" the cap."""
    app = AppFactory(project=build_tree(org).project)
    for n in range(4):
        operator_key(org, name=f"reader {n}", permissions=["apps:read"])
    keys, more = app_reaching_keys(app=app, cap=3)
    assert more
    assert [key.name for key in keys] == ["reader 3", "reader 2", "reader 1"]
    assert app_reaching_keys(app=app, cap=4)[1] is False


def test_the_page_says_more_than_past_the_cap(client_for, org, monkeypatch):
    app = AppFactory(project=build_tree(org).project)
    for n in range(4):
        operator_key(org, name=f"reader {n}", permissions=["apps:read"])
    monkeypatch.setattr(
        views_sharing.selectors, "app_reaching_keys", partial(app_reaching_keys, cap=3)
    )
    text = page_text(client_for(org.owner).get(sharing_url(app)))
    assert "More than 3 live keys can reach this app" in text


def test_a_same_as_my_role_key_reaches_the_app_by_its_owners_role(org):
    """A personal key "Same as my role" holds its owner's role, whatever its stored list says:
    every role reads apps."""
    app = AppFactory(project=build_tree(org).project)
    key, _ = operator_key(org, kind=KeyKind.USER, owner=org.member, permissions=["projects:read"])
    ApiKey.objects.filter(pk=key.pk).update(preset=KeyPreset.ROLE, permissions=[])
    assert [found.pk for found in app_reaching_keys(app=app)[0]] == [key.pk]
