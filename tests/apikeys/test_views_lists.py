"""Where keys are listed: personal keys, organization keys, a project's and a service account's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Role
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_revoke, api_key_update, key_policy_update
from keyportal_cli.tokens import generate_token, token_digest, token_preview
from tests.accounts.helpers import is_fragment, page_text
from tests.apikeys.conftest import (
    ORGANIZATION_KEYS_URL,
    PERSONAL_KEYS_URL,
    POLICY_URL,
    create_url,
    detail_url,
    new_key,
)
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

COLUMNS = ("API key", "Status", "Created", "Expires", "Last used")


def project_url(project) -> str:
    return reverse("project_detail", kwargs={"org": "acme", "pk": project.pk})


def account_url(account) -> str:
    return reverse("service_account_detail", kwargs={"org": "acme", "pk": account.pk})


# --- personal keys --------------------------------------------------------------------------


def test_personal_list_shows_the_viewers_own_keys(client_for, org):
    """A member's list shows their live personal keys with every column, and nobody else's."""
    mine, _ = new_key(org, name="laptop")
    other_member = MembershipFactory(organization=org.organization, role=Role.MEMBER).user
    theirs, _ = new_key(org, owner=other_member, name="their laptop")
    owners, _ = new_key(org, owner=org.owner, name="owner laptop")
    org_key, _ = new_key(org, KeyKind.ORGANIZATION, name="org wide")

    response = client_for(org.member).get(PERSONAL_KEYS_URL)

    assert response.status_code == 200
    text = page_text(response)
    for column in COLUMNS:
        assert column in text, column
    assert "laptop" in text
    assert mine.preview in text
    assert detail_url(mine) in text
    for hidden in (theirs, owners, org_key):
        assert hidden.name not in text
        assert hidden.preview not in text
        assert detail_url(hidden) not in text
    assert create_url("user") in text


def test_personal_list_hides_revoked_keys(client_for, org):
    """Deleted (revoked) keys leave the list."""
    api_key, _ = new_key(org, name="old laptop")
    api_key_revoke(actor=Actor(user=org.member), api_key=api_key)

    text = page_text(client_for(org.member).get(PERSONAL_KEYS_URL))

    assert "old laptop" not in text
    # Not "yet": there was a key; the empty state says it is hidden and offers to show it.
    assert "yet" not in text
    assert "No active API key." in text
    assert "1 revoked key is hidden." in text
    assert "Show revoked keys" in text


def test_list_shows_each_state(client_for, org):
    """Active, disabled and expired keys read as such."""
    new_key(org, name="a")
    disabled, _ = new_key(org, name="d")
    api_key_update(
        actor=Actor(user=org.member),
        api_key=disabled,
        name="d",
        status="disabled",
        permissions=disabled.permissions,
    )
    expired, _ = new_key(org, name="e")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(hours=1))

    text = page_text(client_for(org.member).get(PERSONAL_KEYS_URL))

    for state in ("Active", "Disabled", "Expired"):
        assert f">{state}</span>" in text


def test_htmx_list_request_returns_the_key_table(client_for, org, htmx_headers):
    """An htmx refresh of the list (when the dialog closes) gets the table fragment alone."""
    new_key(org, name="laptop")

    response = client_for(org.member).get(PERSONAL_KEYS_URL, headers=htmx_headers)

    assert response.status_code == 200
    assert is_fragment(response)
    body = response.content.decode()
    assert 'id="key-table"' in body
    assert "laptop" in body


def test_list_pages_by_fifty(client_for, org):
    """More than 50 keys are split into pages."""
    now = timezone.now()
    keys = []
    for n in range(51):
        token = generate_token("org")
        keys.append(
            ApiKey(
                organization=org.organization,
                kind=KeyKind.ORGANIZATION,
                name=f"bulk {n:02}",
                digest=token_digest(token),
                preview=token_preview(token),
                permissions=["projects:read"],
                created_at=now - timedelta(seconds=n),
            )
        )
    ApiKey.objects.bulk_create(keys)
    client = client_for(org.admin)

    first = page_text(client.get(ORGANIZATION_KEYS_URL))
    second = page_text(client.get(ORGANIZATION_KEYS_URL, {"page": 2}))

    assert "bulk 00" in first
    assert "bulk 50" not in first
    assert "Page 1 of 2" in first
    assert "bulk 50" in second


# --- organization keys ----------------------------------------------------------------------


def test_organization_list_shows_every_key_with_its_owner_and_creator(client_for, org):
    """Owners and admins see every key of the organization, with its owner and its creator;
    the kind filter narrows it to organization keys."""
    org_key, _ = new_key(org, KeyKind.ORGANIZATION, actor=org.admin, name="ci")
    personal, _ = new_key(org, name="laptop")

    for viewer in (org.owner, org.admin):
        response = client_for(viewer).get(ORGANIZATION_KEYS_URL)
        assert response.status_code == 200
        text = page_text(response)
        assert "Owner" in text
        assert org_key.preview in text
        assert str(org.admin) in text
        assert personal.preview in text
        assert org.member.email in text
        only_org = page_text(client_for(viewer).get(ORGANIZATION_KEYS_URL, {"kind": "org"}))
        assert org_key.preview in only_org
        assert personal.preview not in only_org


def test_organization_list_is_hidden_from_members(client_for, org):
    """Members get 404 on the organization key list."""
    new_key(org, KeyKind.ORGANIZATION, name="ci")
    assert client_for(org.member).get(ORGANIZATION_KEYS_URL).status_code == 404


def test_key_policy_link_is_for_owners(client_for, org):
    """Only owners see the key policy link on the organization key list."""
    assert POLICY_URL in page_text(client_for(org.owner).get(ORGANIZATION_KEYS_URL))
    assert POLICY_URL not in page_text(client_for(org.admin).get(ORGANIZATION_KEYS_URL))


def test_keys_made_before_a_stricter_policy_are_flagged(client_for, org):
    """A key breaking a newer policy is flagged "Exceeds policy" in the list and on its page."""
    old, _ = new_key(org, KeyKind.ORGANIZATION, name="old", expires_at=None)
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        require_expiry=True,
        max_lifetime_days=90,
    )
    fine, _ = new_key(
        org, KeyKind.ORGANIZATION, name="fine", expires_at=timezone.now() + timedelta(days=30)
    )
    client = client_for(org.owner)

    text = page_text(client.get(ORGANIZATION_KEYS_URL))

    assert text.count("Exceeds policy") == 1
    assert "Exceeds policy" in page_text(client.get(detail_url(old)))
    assert "Exceeds policy" not in page_text(client.get(detail_url(fine)))
    old.refresh_from_db()
    assert old.expires_at is None


def test_nobody_lists_another_organizations_keys(client_for, org, other_org):
    """Lists of another organization answer 404, and show none of its keys."""
    foreign, _ = new_key(other_org, KeyKind.ORGANIZATION, name="globex ci")
    client = client_for(org.owner)

    for path in ("/o/globex/api-keys/", "/o/globex/settings/api-keys/"):
        response = client.get(path)
        assert response.status_code == 404
        assert foreign.preview not in response.content.decode()
    assert foreign.preview not in client.get(ORGANIZATION_KEYS_URL).content.decode()


# --- a project's keys -----------------------------------------------------------------------


def test_project_without_keys_shows_the_empty_state(client_for, org, tree):
    """An admin sees "No API key has been created on this project." and a create button."""
    for viewer in (org.owner, org.admin):
        response = client_for(viewer).get(project_url(tree.project))
        assert response.status_code == 200
        text = page_text(response)
        assert "No API key has been created on this project." in text
        assert "Create an API key" in text
        assert create_url("project", tree.project.pk) in text


def test_members_see_no_project_keys(client_for, org, tree):
    """A member opening a project sees no key section at all."""
    new_key(org, KeyKind.PROJECT, owner=tree.project, name="payments ci")

    text = page_text(client_for(org.member).get(project_url(tree.project)))

    assert "payments ci" not in text
    assert "No API key has been created on this project." not in text
    assert create_url("project", tree.project.pk) not in text


def test_project_lists_only_its_own_keys(client_for, org, tree):
    """A project's page lists its keys, not another project's or the organization's."""
    from tests.apikeys.conftest import build_tree

    other = build_tree(org, name="Billing")
    mine, _ = new_key(org, KeyKind.PROJECT, owner=tree.project, name="payments ci")
    theirs, _ = new_key(org, KeyKind.PROJECT, owner=other.project, name="billing ci")
    org_key, _ = new_key(org, KeyKind.ORGANIZATION, name="org ci")

    text = page_text(client_for(org.admin).get(project_url(tree.project)))

    assert mine.preview in text
    assert "No API key has been created on this project." not in text
    assert theirs.preview not in text
    assert org_key.preview not in text


def test_project_key_table_refreshes_alone(client_for, org, tree, htmx_headers):
    """An htmx refresh aimed at the key table gets only that table."""
    new_key(org, KeyKind.PROJECT, owner=tree.project, name="payments ci")

    response = client_for(org.admin).get(
        project_url(tree.project), headers={**htmx_headers, "HX-Target": "key-table"}
    )

    assert is_fragment(response)
    body = response.content.decode()
    assert 'id="key-table"' in body
    assert 'id="targets"' not in body
    assert "payments ci" in body


# --- a service account's keys ---------------------------------------------------------------


def test_service_account_page_lists_its_keys(client_for, org, bot):
    """A service account's page lists its keys, with an empty state before the first."""
    client = client_for(org.admin)
    assert "This service account has no API key yet." in page_text(client.get(account_url(bot)))

    api_key, _ = new_key(org, KeyKind.SERVICE_ACCOUNT, owner=bot, name="deploy")
    other, _ = new_key(org, KeyKind.ORGANIZATION, name="other")

    text = page_text(client.get(account_url(bot)))
    assert api_key.preview in text
    assert other.preview not in text
    assert create_url("svc", bot.pk) in text
