"""The members page: changing roles and removing people, with their history rows."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, Membership, Role
from tests.accounts.helpers import is_fragment, page_text, row_counts, toasts
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

MEMBERS_URL = reverse("member_list", kwargs={"org": "acme"})


def role_url(membership: Membership) -> str:
    return reverse("member_role", kwargs={"org": "acme", "pk": membership.pk})


def remove_url(membership: Membership) -> str:
    return reverse("member_remove", kwargs={"org": "acme", "pk": membership.pk})


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_members_page_needs_login(org):
    """Anonymous people are sent to log in."""
    response = Client().get(MEMBERS_URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_members_page_of_another_organization_is_404(client_for, org, other_org):
    """People outside the organization get 404."""
    response = client_for(other_org.owner).get(MEMBERS_URL)
    assert response.status_code == 404


def test_owner_sees_members_and_controls(client_for, org):
    """An owner sees every member with role selects and remove links, except for themself."""
    response = client_for(org.owner).get(MEMBERS_URL)
    assert response.status_code == 200
    text = page_text(response)
    for person in (org.owner, org.admin, org.member):
        assert person.email in text
    assert remove_url(org.membership(org.admin)) in text
    assert remove_url(org.membership(org.owner)) not in text
    assert role_url(org.membership(org.owner)) not in text


def test_htmx_get_returns_only_the_fragment(client_for, org, htmx_headers):
    """An htmx request for the members page gets the members fragment alone."""
    response = client_for(org.owner).get(MEMBERS_URL, headers=htmx_headers)
    assert response.status_code == 200
    assert is_fragment(response)
    assert 'id="members"' in response.content.decode()


# Roles ---------------------------------------------------------------------------------------


def test_owner_changes_a_role(client_for, org):
    """An owner changes a member's role and is sent back to the members page."""
    membership = org.membership(org.member)
    response = client_for(org.owner).post(
        role_url(membership), {"role": Role.ADMIN}, REMOTE_ADDR="192.0.2.5"
    )

    assert response.status_code == 302
    assert response.url == MEMBERS_URL
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    event = AuditEvent.objects.get(action="member.role_changed")
    assert event.organization == org.organization
    assert (event.actor_user, event.actor_label) == (org.owner, org.owner.email)
    assert (event.target_type, event.target_id) == ("user", str(org.member.pk))
    assert (event.origin, event.ip_address) == ("web", "192.0.2.5")
    assert event.detail == {"from": "member", "to": "admin"}


def test_owner_changes_a_role_with_htmx(client_for, org, htmx_headers):
    """With htmx the members fragment comes back showing the new role, and a toast."""
    membership = org.membership(org.admin)
    response = client_for(org.owner).post(
        role_url(membership), {"role": Role.MEMBER}, headers=htmx_headers
    )

    assert response.status_code == 200
    assert is_fragment(response)
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
    select = re.search(
        rf'<select id="role-{membership.pk}" name="role">(.*?)</select>', response.content.decode()
    )
    assert '<option value="member" selected>' in select.group(1)
    assert any(" is now " in t for t in toasts(response))
    assert AuditEvent.objects.filter(action="member.role_changed").count() == 1


def test_role_change_message_names_the_new_role(client_for, org):
    """The confirmation names the role the member now has."""
    membership = org.membership(org.member)
    response = client_for(org.owner).post(role_url(membership), {"role": Role.ADMIN}, follow=True)
    assert f"{org.member} is now admin." in messages_of(response)


def test_owner_cannot_change_their_own_role(client_for, org, htmx_headers):
    """Changing your own role is refused with a message, nothing changed."""
    client = client_for(org.owner)
    before = row_counts()

    response = client.post(role_url(org.membership(org.owner)), {"role": Role.MEMBER}, follow=True)
    assert "You cannot change your own role. Ask another owner." in messages_of(response)

    response = client.post(
        role_url(org.membership(org.owner)), {"role": Role.MEMBER}, headers=htmx_headers
    )
    assert response.status_code == 422
    assert any("You cannot change your own role." in t for t in toasts(response))

    assert org.membership(org.owner).role == Role.OWNER
    assert row_counts() == before


def test_unknown_role_is_refused(client_for, org, htmx_headers):
    """A role that does not exist is refused with a message, nothing changed."""
    before = row_counts()
    response = client_for(org.owner).post(
        role_url(org.membership(org.member)), {"role": "superuser"}, headers=htmx_headers
    )
    assert response.status_code == 422
    assert any("Choose a role: owner, admin or member." in t for t in toasts(response))
    assert org.membership(org.member).role == Role.MEMBER
    assert row_counts() == before


def test_demoting_another_owner_is_allowed(client_for, org):
    """An owner may demote another owner while one owner remains."""
    second = MembershipFactory(organization=org.organization, role=Role.OWNER)
    client_for(org.owner).post(role_url(second), {"role": Role.ADMIN})
    second.refresh_from_db()
    assert second.role == Role.ADMIN


def test_owner_demoted_meanwhile_cannot_demote_the_last_owner(client_for, org):
    """An owner demoted in the meantime gets 403 when demoting the remaining owner."""
    second = MembershipFactory(organization=org.organization, role=Role.OWNER)
    stale = client_for(second.user)
    client_for(org.owner).post(role_url(second), {"role": Role.ADMIN})
    before = row_counts()

    response = stale.post(role_url(org.membership(org.owner)), {"role": Role.ADMIN})
    assert response.status_code == 403
    assert org.membership(org.owner).role == Role.OWNER
    assert row_counts() == before


@pytest.mark.parametrize("role", ["admin", "member"])
def test_only_owners_change_roles(client_for, org, role):
    """Admins and members get 403 when changing a role; nothing changes."""
    before = row_counts()
    response = client_for(getattr(org, role)).post(
        role_url(org.membership(org.member)), {"role": Role.OWNER}
    )
    assert response.status_code == 403
    assert org.membership(org.member).role == Role.MEMBER
    assert row_counts() == before


def test_role_change_needs_post(client_for, org):
    """A GET cannot change a role."""
    response = client_for(org.owner).get(role_url(org.membership(org.member)))
    assert response.status_code == 405


def test_role_of_another_organizations_member_is_404(client_for, org, other_org):
    """An owner cannot touch a membership of another organization through their own."""
    membership = other_org.membership(other_org.member)
    response = client_for(org.owner).post(
        reverse("member_role", kwargs={"org": "acme", "pk": membership.pk}), {"role": "owner"}
    )
    assert response.status_code == 404
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER


def test_role_change_without_csrf_is_refused(org):
    """A role change without the CSRF token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.owner)
    response = client.post(role_url(org.membership(org.member)), {"role": Role.OWNER})
    assert response.status_code == 403
    assert org.membership(org.member).role == Role.MEMBER


# Removing ------------------------------------------------------------------------------------


def test_remove_asks_for_confirmation_first(client_for, org):
    """A GET shows a confirmation page and removes nobody."""
    before = row_counts()
    response = client_for(org.owner).get(remove_url(org.membership(org.member)))
    assert response.status_code == 200
    text = page_text(response)
    assert f"Remove {org.member.display_name}?" in text
    assert org.member.email in text
    assert row_counts() == before


def test_owner_removes_a_member(client_for, org):
    """Confirming removes the member and records who did it, from where."""
    membership = org.membership(org.member)
    response = client_for(org.owner).post(remove_url(membership), REMOTE_ADDR="192.0.2.9")

    assert response.status_code == 302
    assert response.url == MEMBERS_URL
    assert not Membership.objects.filter(pk=membership.pk).exists()
    event = AuditEvent.objects.get(action="member.removed")
    assert (event.actor_user, event.target_type, event.target_id) == (
        org.owner,
        "user",
        str(org.member.pk),
    )
    assert (event.origin, event.ip_address) == ("web", "192.0.2.9")
    assert event.target_label == str(org.member)


def test_removed_member_loses_access(client_for, org):
    """A removed member gets 404 on the organization's pages at once."""
    member_client = client_for(org.member)
    client_for(org.owner).post(remove_url(org.membership(org.member)))
    assert member_client.get(MEMBERS_URL).status_code == 404


def test_owner_cannot_remove_themself(client_for, org):
    """Removing yourself is refused with a message on the page; nothing changes."""
    before = row_counts()
    response = client_for(org.owner).post(remove_url(org.membership(org.owner)))
    assert response.status_code == 422
    assert "You cannot remove yourself from the organization." in page_text(response)
    assert row_counts() == before


@pytest.mark.parametrize("role", ["admin", "member"])
def test_only_owners_remove(client_for, org, role):
    """Admins and members get 403 on the remove page and remove nobody."""
    before = row_counts()
    client = client_for(getattr(org, role))
    assert client.get(remove_url(org.membership(org.owner))).status_code == 403
    assert client.post(remove_url(org.membership(org.owner))).status_code == 403
    assert row_counts() == before


def test_remove_of_another_organizations_member_is_404(client_for, org, other_org):
    """An owner cannot remove someone of another organization."""
    membership = other_org.membership(other_org.member)
    response = client_for(org.owner).post(
        reverse("member_remove", kwargs={"org": "acme", "pk": membership.pk})
    )
    assert response.status_code == 404
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_remove_without_csrf_is_refused(org):
    """A removal without the CSRF token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.owner)
    response = client.post(remove_url(org.membership(org.member)))
    assert response.status_code == 403
    assert Membership.objects.filter(user=org.member).exists()
