"""A key from a name alone: each kind's preset, "Same as my role" following the role, and the
expiration a new key starts with (issue 11, item 1)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Membership, Role
from apikeys.models import ApiKey, KeyKind, KeyPolicy, KeyPreset
from apikeys.permissions import PERMISSIONS, READ_ONLY, ROLE_PERMISSIONS
from apikeys.services import api_key_create, api_key_update
from tests.apikeys.conftest import create_url, detail_url, operator_key, revealed_token

pytestmark = pytest.mark.django_db

PROJECT_PERMISSIONS = {pid for pid, p in PERMISSIONS.items() if "project" in p.scope_levels}


def role_key(person) -> tuple[ApiKey, str]:
    """Return a 7-day "Same as my role" personal key of `person`, made by them."""
    membership = person.memberships.get()
    return api_key_create(
        actor=Actor(user=person),
        organization=membership.organization,
        kind=KeyKind.USER,
        owner=person,
        preset=KeyPreset.ROLE,
        expires_at=timezone.now() + timedelta(days=7),
    )


def whoami(token: str) -> dict:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/whoami").json()


@pytest.mark.parametrize(
    ("kind", "who", "preset", "permissions"),
    [
        ("user", "member", KeyPreset.ROLE, ROLE_PERMISSIONS[Role.MEMBER]),
        ("user", "admin", KeyPreset.ROLE, ROLE_PERMISSIONS[Role.ADMIN]),
        ("org", "admin", KeyPreset.READ_ONLY, READ_ONLY),
        ("svc", "owner", KeyPreset.READ_ONLY, READ_ONLY),
        ("project", "admin", KeyPreset.PROJECT, PROJECT_PERMISSIONS),
    ],
)
def test_a_name_alone_makes_a_working_key(
    client_for, org, tree, bot, kind, who, preset, permissions
):
    """Posting only a name creates a key of that kind's preset, which works at once."""
    owner = {"project": tree.project.pk, "svc": bot.pk}.get(kind)
    response = client_for(getattr(org, who)).post(create_url(kind, owner), {"name": "just a name"})

    assert response.status_code == 201
    api_key = ApiKey.objects.get(name="just a name")
    assert (api_key.kind, api_key.preset, set(api_key.permissions)) == (kind, preset, permissions)
    assert set(whoami(revealed_token(response))["effective_permissions"]) == permissions


def test_nothing_at_all_makes_a_working_key_too(client_for, org):
    """Not even a name: one is made up, and the key works."""
    response = client_for(org.member).post(create_url("user"), {})
    assert response.status_code == 201
    assert whoami(revealed_token(response))["name"].startswith("key-")


def test_the_form_starts_with_the_kinds_preset_and_the_grid_folded(client_for, org, tree):
    """Each kind's preset is chosen already; "Customize permissions" is folded."""
    pages = {
        "user": (client_for(org.member).get(create_url("user")), "role"),
        "org": (client_for(org.admin).get(create_url("org")), "read-only"),
        "project": (client_for(org.admin).get(create_url("project", tree.project.pk)), "project"),
    }
    for kind, (page, preset) in pages.items():
        body = page.content.decode()
        assert re.search(rf'value="{preset}"[^>]*checked', body), kind
        assert '<details class="customize" data-customize>' in body, kind


def test_same_as_my_role_follows_the_role(org):
    """A "Same as my role" key holds the role as it is at each request: promoted, it gains;
    demoted, it loses; the grants it was made with do not matter."""
    _key, token = role_key(org.member)
    assert set(whoami(token)["effective_permissions"]) == ROLE_PERMISSIONS[Role.MEMBER]
    Membership.objects.filter(user=org.member).update(role=Role.ADMIN)
    assert set(whoami(token)["effective_permissions"]) == ROLE_PERMISSIONS[Role.ADMIN]
    Membership.objects.filter(user=org.member).update(role=Role.MEMBER)
    assert set(whoami(token)["effective_permissions"]) == ROLE_PERMISSIONS[Role.MEMBER]


def test_a_key_cannot_make_a_role_key_beyond_itself(org, tree):
    """A personal key scoped to one environment cannot make its owner a "Same as my role" key:
    that key would hold the whole role, everywhere."""
    _scoped, token = operator_key(
        org,
        permissions=("api-keys:manage", "secrets:read"),
        kind=KeyKind.USER,
        owner=org.member,
        scopes={"secrets:read": [{"type": "environment", "id": tree.environment.pk}]},
    )
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        "/api/v1/keys",
        data=json.dumps({"kind": "user", "preset": "role", "name": "everything"}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert not ApiKey.objects.filter(name="everything").exists()


def test_the_api_takes_a_preset_or_permissions(org):
    """POST /keys with a preset needs no permissions; with neither it is 422."""
    _key, token = operator_key(org, permissions=("api-keys:manage", *sorted(READ_ONLY)))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    made = client.post("/api/v1/keys", json.dumps({"preset": "read-only"}), "application/json")
    neither = client.post("/api/v1/keys", json.dumps({"name": "x"}), "application/json")

    assert made.status_code == 201
    assert (set(made.json()["permissions"]), made.json()["preset"]) == (READ_ONLY, "read-only")
    assert neither.status_code == 422
    assert "permission" in neither.json()["error"]["message"]


def test_an_edit_remembers_the_preset(client_for, org):
    """A key made "Same as my role" opens its edit form on that choice; ticking permissions
    makes it custom, and it stops following the role."""
    api_key, _ = role_key(org.member)
    body = client_for(org.member).get(detail_url(api_key)).content.decode()
    assert re.search(r'value="role"[^>]*checked', body)

    api_key_update(actor=Actor(user=org.member), api_key=api_key, permissions=["projects:read"])
    api_key.refresh_from_db()
    assert (api_key.preset, api_key.permissions) == (KeyPreset.CUSTOM, ["projects:read"])


# --- the expiration a new key starts with --------------------------------------------------


def selected_expiration(page) -> str:
    body = page.content.decode()
    select = re.search(r'<select name="expiration".*?</select>', body, re.S).group()
    return re.search(r'<option value="([^"]+)" selected>', select).group(1)


def test_expiration_starts_at_30_days_for_personal_keys_and_90_for_others(client_for, org):
    """Within the default policy (personal keys within 30 days), 30 and 90 days are chosen."""
    assert selected_expiration(client_for(org.member).get(create_url("user"))) == "30"
    assert selected_expiration(client_for(org.admin).get(create_url("org"))) == "90"


def test_expiration_starts_within_a_stricter_policy(client_for, org):
    """A 60-day maximum for organization keys starts them at 60 days; "Never" is not offered."""
    KeyPolicy.objects.create(
        organization=org.organization, kind="org", require_expiry=True, max_lifetime_days=60
    )
    page = client_for(org.admin).get(create_url("org"))
    assert selected_expiration(page) == "60"
    assert 'value="never"' not in page.content.decode()


def test_the_custom_date_carries_the_policys_bounds(client_for, org):
    """The date input's min is tomorrow and its max the last day the policy allows."""
    body = client_for(org.member).get(create_url("user")).content.decode()
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    last = (timezone.now() + timedelta(days=30)).date().isoformat()
    date_input = re.search(r'<input type="date"[^>]*>', body).group()
    assert f'min="{tomorrow}"' in date_input
    assert f'max="{last}"' in date_input


# --- a preset never hides what was chosen by hand (review of issue 11) ----------------------


def test_scopes_given_to_a_role_key_make_it_custom_and_hold(org, tree):
    """PATCH with scopes on a "Same as my role" key makes it custom, and the scopes bind."""
    api_key, token = role_key(org.admin)
    scopes = {"projects:read": [{"type": "project", "id": tree.project.pk}]}
    api_key_update(actor=Actor(user=org.admin), api_key=api_key, scopes=scopes)

    api_key.refresh_from_db()
    assert api_key.preset == KeyPreset.CUSTOM
    from apikeys.power import Scope
    from apikeys.verification import verify_token

    power = verify_token(token).power()
    assert power.scopes("projects:read") == {Scope("project", tree.project.pk)}


def test_boxes_ticked_by_hand_win_over_the_radio(client_for, org):
    """Without JavaScript the radio stays on the preset: ticked boxes that differ from it are
    a custom choice, and the key holds them, not the whole role."""
    response = client_for(org.member).post(
        create_url("user"),
        {"name": "narrow", "preset": "role", "permissions": ["projects:read"], "expiration": "30"},
    )
    assert response.status_code == 201
    api_key = ApiKey.objects.get(name="narrow")
    assert (api_key.preset, api_key.permissions) == (KeyPreset.CUSTOM, ["projects:read"])


def test_a_scope_chosen_by_hand_wins_over_the_radio(client_for, org, tree):
    """A scope set while the radio says Read-only makes the key custom, and scoped."""
    response = client_for(org.admin).post(
        create_url("org"),
        {
            "name": "one env",
            "preset": "read-only",
            "permissions": sorted(READ_ONLY),
            "scope_secrets": f"environment:{tree.environment.pk}",
            "expiration": "30",
        },
    )
    assert response.status_code == 201
    api_key = ApiKey.objects.get(name="one env")
    assert api_key.preset == KeyPreset.CUSTOM
    assert api_key.scopes["secrets:read"] == [{"type": "environment", "id": tree.environment.pk}]


def test_a_name_alone_works_under_a_policy_shorter_than_30_days(client_for, org):
    """With a 7-day maximum, the custom date starts filled in with the last day allowed."""
    KeyPolicy.objects.create(
        organization=org.organization, kind="user", require_expiry=True, max_lifetime_days=7
    )
    client = client_for(org.member)
    page = client.get(create_url("user")).content.decode()
    last = (timezone.now() + timedelta(days=7)).date().isoformat()
    assert re.search(rf'<input type="date"[^>]*value="{last}"', page)

    response = client.post(create_url("user"), {"name": "short"})

    assert response.status_code == 201
    api_key = ApiKey.objects.get(name="short")
    assert api_key.expires_at.date().isoformat() == last
