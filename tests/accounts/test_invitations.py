"""Inviting people from the members page, and accepting through the link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent, Invitation, Membership, Role, User
from accounts.services import invitation_create
from tests.accounts.helpers import is_fragment, page_text, row_counts, toasts
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MEMBERS_URL = reverse("member_list", kwargs={"org": "acme"})
GOOD_PASSWORD = "analytical-engine-1843"
LINK = re.compile(r"http://testserver/invitations/[\w-]+/")


def invite(org, email="new@example.test", role=Role.MEMBER) -> tuple[Invitation, str]:
    """Invite `email` to Acme as its owner; return the invitation and the link's path."""
    invitation, link = invitation_create(
        actor=Actor(user=org.owner),
        organization=org.organization,
        email=email,
        role=role,
        accept_url=lambda token: reverse("invitation", args=[token]),
    )
    return invitation, link


# Inviting ------------------------------------------------------------------------------------


def test_owner_invites_by_email(client_for, org, django_capture_on_commit_callbacks, mailoutbox):
    """An owner's invitation is saved, emailed with its link, and the link is shown once."""
    client = client_for(org.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(MEMBERS_URL, {"email": "New@Example.test", "role": Role.ADMIN})

    assert response.status_code == 200
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.created_by) == (
        "new@example.test",
        Role.ADMIN,
        org.owner,
    )
    link = LINK.search(page_text(response)).group(0)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new@example.test"]
    assert link in mailoutbox[0].body
    assert response["Cache-Control"] == "no-store"
    assert "Invitation sent to new@example.test." in [str(m) for m in response.context["messages"]]
    # The link is not shown again, and no longer kept out of caches.
    again = client.get(MEMBERS_URL)
    assert link not in page_text(again)
    assert "no-store" not in again.get("Cache-Control", "")
    assert "new@example.test" in page_text(again)


def test_invitation_writes_an_audit_row(client_for, org):
    """Inviting records who invited whom, from the web and which address."""
    client_for(org.owner).post(
        MEMBERS_URL, {"email": "new@example.test", "role": Role.MEMBER}, REMOTE_ADDR="192.0.2.7"
    )
    event = AuditEvent.objects.get(action="invitation.created")
    assert (event.actor_user, event.origin, event.ip_address) == (org.owner, "web", "192.0.2.7")
    assert event.target_type == "invitation"


def test_htmx_invitation_returns_the_fragment(client_for, org, htmx_headers):
    """An htmx invitation returns only the members fragment, with the link."""
    response = client_for(org.owner).post(
        MEMBERS_URL, {"email": "new@example.test", "role": Role.MEMBER}, headers=htmx_headers
    )
    assert response.status_code == 200
    assert is_fragment(response)
    text = page_text(response)
    assert text.lstrip().startswith('<div id="members">')
    assert LINK.search(text)
    assert response["Cache-Control"] == "no-store"
    assert any("Invitation sent to new@example.test." in t for t in toasts(response))


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"email": "not-an-email", "role": "member"},
            "email",
            "Enter a valid email address, like ada@example.com.",
        ),
        ({"email": "", "role": "member"}, "email", "Email is required."),
        (
            {"email": "new@example.test", "role": "superuser"},
            "role",
            "Choose a role: owner, admin or member.",
        ),
    ],
)
def test_invitation_bad_input_saves_nothing(client_for, org, mailoutbox, data, field, message):
    """A bad email or a role that does not exist is refused next to the field, nothing saved."""
    before = row_counts()
    response = client_for(org.owner).post(MEMBERS_URL, data)

    assert response.status_code == 422
    text = page_text(response)
    assert f'id="id_{field}_error">{message}' in text
    if data["email"]:
        assert f'value="{data["email"]}"' in text
    assert not LINK.search(text)
    assert row_counts() == before
    assert mailoutbox == []


def test_invitation_of_a_member_is_refused(client_for, org, mailoutbox):
    """Inviting someone already a member is refused next to the email field."""
    before = row_counts()
    email = org.admin.email.upper()
    response = client_for(org.owner).post(MEMBERS_URL, {"email": email, "role": "member"})

    assert response.status_code == 422
    text = page_text(response)
    assert f'id="id_email_error">{org.admin.email} is already a member of Acme.' in text
    assert f'value="{email}"' in text
    assert row_counts() == before
    assert mailoutbox == []


def test_invitation_already_pending_is_refused(client_for, org, mailoutbox):
    """A second invitation for a pending email is refused next to the email field."""
    invite(org)
    before = row_counts()
    response = client_for(org.owner).post(
        MEMBERS_URL, {"email": "new@example.test", "role": "admin"}
    )

    assert response.status_code == 422
    text = page_text(response)
    assert "new@example.test already has a pending invitation." in text
    assert 'id="id_email_error"' in text
    assert row_counts() == before
    assert mailoutbox == []


@pytest.mark.parametrize("role", ["admin", "member"])
def test_only_owners_invite(client_for, org, role):
    """Admins and members who POST an invitation get 403 and nothing is saved."""
    before = row_counts()
    response = client_for(getattr(org, role)).post(
        MEMBERS_URL, {"email": "new@example.test", "role": "member"}
    )
    assert response.status_code == 403
    assert row_counts() == before


@pytest.mark.parametrize("role", ["admin", "member"])
def test_non_owners_see_members_but_no_invite_form(client_for, org, role):
    """Admins and members see the member list without the invite form or invitations."""
    invite(org)
    response = client_for(getattr(org, role)).get(MEMBERS_URL)
    assert response.status_code == 200
    text = page_text(response)
    assert org.owner.email in text
    assert "Invite someone" not in text
    assert "new@example.test" not in text


def test_owner_revokes_an_invitation(client_for, org):
    """Revoking a pending invitation stops its link and records the change."""
    invitation, path = invite(org)
    client = client_for(org.owner)
    response = client.post(
        reverse("invitation_revoke", kwargs={"org": "acme", "pk": invitation.pk})
    )
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert AuditEvent.objects.filter(action="invitation.revoked").exists()
    assert Client().get(path).status_code == 410


def test_revoke_of_another_organizations_invitation_is_404(client_for, org, other_org):
    """An owner cannot revoke another organization's invitation."""
    invitation, _ = invitation_create(
        actor=Actor(user=other_org.owner),
        organization=other_org.organization,
        email="new@example.test",
        role=Role.MEMBER,
        accept_url=lambda token: token,
    )
    response = client_for(org.owner).post(
        reverse("invitation_revoke", kwargs={"org": "acme", "pk": invitation.pk})
    )
    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


# Accepting -----------------------------------------------------------------------------------


def test_invitation_page_shows_the_signup_form(org):
    """An anonymous visitor sees who invited them, and a signup form with the email filled."""
    _, path = invite(org, role=Role.ADMIN)
    response = Client().get(path)
    assert response.status_code == 200
    text = page_text(response)
    assert "Join Acme" in text
    assert 'value="new@example.test"' in text
    assert "as <strong>admin</strong>" in text


def test_anonymous_person_signs_up_and_joins(org):
    """Signing up through the link creates the account and the membership with the invited role."""
    invitation, path = invite(org, role=Role.ADMIN)
    client = Client()
    response = client.post(path, {"display_name": "Newcomer", "password": GOOD_PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("project_list", kwargs={"org": "acme"})
    user = User.objects.get(email="new@example.test")
    assert user.display_name == "Newcomer"
    assert Membership.objects.get(user=user).role == Role.ADMIN
    assert Membership.objects.get(user=user).organization == org.organization
    assert client.session["_auth_user_id"] == str(user.pk)
    invitation.refresh_from_db()
    assert invitation.accepted_by == user
    # No organization of their own is created.
    assert user.memberships.count() == 1


def test_signup_through_link_ignores_a_posted_email(org):
    """The invited email is used even when the form posts another one."""
    _, path = invite(org)
    Client().post(
        path,
        {"display_name": "N", "email": "attacker@example.test", "password": GOOD_PASSWORD},
    )
    assert not User.objects.filter(email="attacker@example.test").exists()
    assert Membership.objects.filter(user__email="new@example.test").exists()


def test_signup_through_link_with_bad_input_saves_nothing(org):
    """A weak password or missing name is refused next to the field; the link still works."""
    invitation, path = invite(org)
    before = row_counts()
    response = Client().post(path, {"display_name": "Newcomer", "password": "password"})

    assert response.status_code == 422
    text = page_text(response)
    assert 'id="id_password_error">This password is too common.' in text
    assert 'value="Newcomer"' in text
    assert row_counts() == before
    invitation.refresh_from_db()
    assert invitation.is_pending


def test_logged_in_person_with_matching_email_joins(client_for, org):
    """A logged-in person whose email was invited joins with one click."""
    person = UserFactory(email="new@example.test")
    _, path = invite(org, email="NEW@example.test", role=Role.MEMBER)
    client = client_for(person)

    page = client.get(path)
    assert page.status_code == 200
    assert "Join Acme" in page_text(page)
    assert "Create account and join" not in page_text(page)

    response = client.post(path)
    assert response.status_code == 302
    assert Membership.objects.get(user=person).role == Role.MEMBER
    event = AuditEvent.objects.get(action="member.joined")
    assert (event.actor_user, event.target_id) == (person, str(person.pk))


def test_logged_in_person_with_another_email_is_refused(client_for, org):
    """A person logged in with a different email cannot accept, and is told why."""
    _, path = invite(org)
    stranger = UserFactory(email="stranger@example.test")
    client = client_for(stranger)
    before = row_counts()

    for response in (client.get(path), client.post(path)):
        assert response.status_code == 410
        text = page_text(response)
        assert "This invitation was sent to new@example.test" in text
        assert "logged in as stranger@example.test" in text
    assert row_counts() == before
    assert not stranger.memberships.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"expires_at": timezone.now() - timedelta(seconds=1)},
            "This invitation has expired. Ask for a new invitation.",
        ),
        (
            {"accepted_at": timezone.now()},
            "This invitation has already been used. Log in, or ask for a new invitation.",
        ),
        (
            {"revoked_at": timezone.now()},
            "This invitation was revoked. Ask for a new invitation.",
        ),
    ],
)
@pytest.mark.parametrize("signed_in", [False, True])
def test_unusable_invitation_answers_410(client_for, org, change, message, signed_in):
    """An expired, used or revoked invitation shows why with 410 and creates no membership."""
    invitation, path = invite(org)
    Invitation.objects.filter(pk=invitation.pk).update(**change)
    person = UserFactory(email="new@example.test") if signed_in else None
    client = client_for(person)
    before = row_counts()

    page = client.get(path)
    response = client.post(path, {"display_name": "N", "password": GOOD_PASSWORD})

    for r in (page, response):
        assert r.status_code == 410
        assert message in page_text(r)
    assert row_counts() == before
    assert not Membership.objects.filter(user__email="new@example.test").exists()


def test_unknown_invitation_link_answers_410(db):
    """A made-up link is not valid and creates nothing."""
    response = Client().post(
        reverse("invitation", args=["made-up-token"]),
        {"display_name": "N", "password": GOOD_PASSWORD},
    )
    assert response.status_code == 410
    assert "This invitation link is not valid." in page_text(response)
    assert not User.objects.exists()


def test_link_works_only_once(org):
    """After one person joined, the same link answers 410 to the next visitor."""
    _, path = invite(org)
    Client().post(path, {"display_name": "N", "password": GOOD_PASSWORD})
    response = Client().post(path, {"display_name": "M", "password": GOOD_PASSWORD})
    assert response.status_code == 410
    assert User.objects.filter(email="new@example.test").count() == 1


def test_signup_through_link_for_an_existing_account_shows_a_message(org):
    """Signing up through a link for an email that has an account says to log in, saving nothing."""
    UserFactory(email="new@example.test")
    _, path = invite(org)
    before = row_counts()
    client = Client(raise_request_exception=False)
    response = client.post(path, {"display_name": "N", "password": GOOD_PASSWORD})

    assert response.status_code == 422
    assert "An account with this email already exists. Log in instead." in page_text(response)
    assert row_counts() == before
