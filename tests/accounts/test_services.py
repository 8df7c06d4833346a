"""The accounts services: each write checks its rules and records one history row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tasks_db import DatabaseBackend

from accounts.access import Actor
from accounts.models import (
    SERVICE_ACCOUNT_DOMAIN,
    AuditEvent,
    AuditEventType,
    Invitation,
    Membership,
    Organization,
    Origin,
    Role,
    ServiceAccount,
    Team,
)
from accounts.services import (
    audit_record,
    invitation_accept,
    invitation_create,
    invitation_find,
    invitation_problem,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    organization_create,
    service_account_create,
    service_account_set_active,
    service_account_update,
    user_signup,
)
from keyportal import mail
from keyportal.mail import deliver_mail
from tests.accounts.helpers import row_counts
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def accept_url(token: str) -> str:
    return f"https://keyportal.test/invitations/{token}/"


def invite(org, email="new@example.test", role=Role.MEMBER, **kwargs):
    return invitation_create(
        actor=Actor(user=org.owner, ip="192.0.2.1"),
        organization=org.organization,
        email=email,
        role=role,
        accept_url=accept_url,
        **kwargs,
    )


# Audit ---------------------------------------------------------------------------------------


def test_audit_record_snapshots_actor_target_origin_and_ip(org):
    """A history row keeps who, what, which object, from where, even after renames."""
    actor = Actor(user=org.owner, ip="192.0.2.1", origin=Origin.CLI)
    team = Team.objects.create(organization=org.organization, name="Platform")
    event = audit_record(
        actor=actor, organization=org.organization, action=AuditEventType.TEAM_RENAMED, target=team
    )
    team.name = "Renamed"
    team.save()
    event.refresh_from_db()
    assert event.actor_user == org.owner
    assert event.actor_label == org.owner.email
    assert event.origin == Origin.CLI
    assert event.ip_address == "192.0.2.1"
    assert (event.target_type, event.target_id, event.target_label) == (
        "team",
        str(team.pk),
        "Platform",
    )


def test_audit_record_refuses_an_action_the_enum_does_not_know(org):
    """An action outside AuditEventType fails at once instead of writing an unfilterable row."""
    team = Team.objects.create(organization=org.organization, name="Platform")
    with pytest.raises(ValueError, match=r"team\.touched"):
        audit_record(
            actor=Actor(user=org.owner), organization=org.organization, action="team.touched",
            target=team,
        )  # fmt: skip
    assert not AuditEvent.objects.exists()


def test_actor_without_user_is_the_system():
    """An actor without a person reads as "system" unless labelled."""
    assert Actor(user=None).display == "system"
    assert Actor(user=None, label="deploy-bot").display == "deploy-bot"


# Sign up and organizations -------------------------------------------------------------------


def test_user_signup_creates_owner_and_first_team(db):
    """Signing up creates the person, their organization (owner) and a first team."""
    user, organization = user_signup(
        email="ada@example.test",
        display_name="Ada",
        password="analytical-engine-1843",
        organization_name="Engines",
        ip="192.0.2.1",
    )
    assert Membership.objects.get(user=user, organization=organization).role == Role.OWNER
    assert organization.teams.get().name == "General"
    assert AuditEvent.objects.get().ip_address == "192.0.2.1"


def test_user_signup_without_organization_name_creates_none(db):
    """Joining by invitation signs up without creating an organization."""
    user, organization = user_signup(
        email="ada@example.test", display_name="Ada", password="x", organization_name=None
    )
    assert organization is None
    assert not Organization.objects.exists()
    assert not user.memberships.exists()


def test_user_signup_refuses_an_email_in_other_case(db):
    """An email already taken in another letter case is refused, nothing saved."""
    UserFactory(email="ada@example.test")
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        user_signup(
            email="ADA@example.test", display_name="Ada", password="x", organization_name="E"
        )
    assert "email" in error.value.message_dict
    assert row_counts() == before


def test_organization_create_slug_falls_back_and_numbers(org):
    """Organization slugs come from the name, are unique, and never empty."""
    actor = Actor(user=org.owner)
    assert organization_create(actor=actor, name="Acme").slug == "acme-2"
    assert organization_create(actor=actor, name="Acme").slug == "acme-3"
    assert organization_create(actor=actor, name="!!!").slug == "org"


# Invitations ---------------------------------------------------------------------------------


def test_invitation_create_stores_only_a_digest(org):
    """The invitation link's token is returned once and only its digest is stored."""
    invitation, link = invite(org, email="  New@Example.test ", role=Role.ADMIN)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert invitation.email == "new@example.test"
    assert invitation.role == Role.ADMIN
    assert token not in invitation.token_digest
    assert invitation_find(token=token) == invitation
    assert invitation.expires_at - timezone.now() > timedelta(days=6, hours=23)
    event = AuditEvent.objects.get(action="invitation.created")
    assert event.detail == {"email": "new@example.test", "role": "admin"}


def test_invitation_email_is_sent_after_commit(org, django_capture_on_commit_callbacks, mailoutbox):
    """The email with the link leaves only once the invitation is saved."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _, link = invite(org)
        assert mailoutbox == []
    assert len(callbacks) == 1
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new@example.test"]
    assert link in mailoutbox[0].body
    assert "Acme" in mailoutbox[0].subject


@pytest.mark.parametrize(
    ("email", "role", "field"),
    [
        ("new@example.test", "superuser", "role"),
        ("new@example.test", "", "role"),
    ],
)
def test_invitation_create_refuses_unknown_role(org, email, role, field):
    """A role that does not exist is refused and nothing is saved."""
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        invite(org, email=email, role=role)
    assert field in error.value.message_dict
    assert row_counts() == before


def test_invitation_create_refuses_a_member(org):
    """Inviting someone who is already a member (any case) is refused."""
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        invite(org, email=org.member.email.upper())
    assert "already a member of Acme" in error.value.message_dict["email"][0]
    assert row_counts() == before


def test_invitation_create_refuses_a_second_pending_invitation(org):
    """A second invitation while one is pending is refused."""
    invite(org)
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        invite(org, email="NEW@example.test")
    assert "pending invitation" in error.value.message_dict["email"][0]
    assert row_counts() == before


def test_invitation_create_allowed_again_after_expiry_or_revocation(org):
    """Once the pending invitation expired or was revoked, a new one can be sent."""
    first, _ = invite(org)
    Invitation.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    second, _ = invite(org)
    invitation_revoke(actor=Actor(user=org.owner), invitation=second)
    third, _ = invite(org)
    assert third.is_pending


def test_invitation_accept_makes_a_member_once(org):
    """Accepting makes the invited person a member with the invited role; the link then stops."""
    invitation, _ = invite(org, role=Role.ADMIN)
    person = UserFactory(email="new@example.test")
    membership = invitation_accept(invitation=invitation, actor=Actor(user=person))
    assert (membership.organization, membership.role) == (org.organization, Role.ADMIN)
    invitation.refresh_from_db()
    assert invitation.accepted_by == person
    assert AuditEvent.objects.filter(action="member.joined", target_id=str(person.pk)).exists()
    with pytest.raises(ValidationError, match="already been used"):
        invitation_accept(invitation=invitation, actor=Actor(user=person))


def test_invitation_accept_refuses_another_email(org):
    """A person logged in with another email cannot accept the invitation."""
    invitation, _ = invite(org)
    stranger = UserFactory(email="stranger@example.test")
    with pytest.raises(ValidationError, match=r"was sent to new@example\.test"):
        invitation_accept(invitation=invitation, actor=Actor(user=stranger))
    assert not stranger.memberships.exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "has expired"),
        ({"accepted_at": timezone.now()}, "already been used"),
        ({"revoked_at": timezone.now()}, "was revoked"),
    ],
)
def test_invitation_problem_names_the_reason(org, change, message):
    """An expired, used or revoked invitation cannot be accepted, and says why."""
    invitation, _ = invite(org)
    Invitation.objects.filter(pk=invitation.pk).update(**change)
    invitation.refresh_from_db()
    assert message in invitation_problem(invitation=invitation)
    person = UserFactory(email="new@example.test")
    with pytest.raises(ValidationError, match=message):
        invitation_accept(invitation=invitation, actor=Actor(user=person))
    assert not person.memberships.exists()


def test_invitation_problem_for_an_unknown_link(db):
    """A link that names no invitation is reported as not valid."""
    assert invitation_find(token="nope") is None
    assert "not valid" in invitation_problem(invitation=None)


# Members -------------------------------------------------------------------------------------


def test_change_role_records_from_and_to(org):
    """Changing a role saves it and records the previous and new roles."""
    actor = Actor(user=org.owner, ip="192.0.2.1")
    membership_change_role(actor=actor, membership=org.membership(org.member), role=Role.ADMIN)
    assert org.membership(org.member).role == Role.ADMIN
    event = AuditEvent.objects.get(action="member.role_changed")
    assert event.detail == {"from": "member", "to": "admin"}
    assert event.target_id == str(org.member.pk)


def test_change_role_refuses_an_unknown_role(org):
    """A role that does not exist is refused."""
    with pytest.raises(ValidationError):
        membership_change_role(
            actor=Actor(user=org.owner), membership=org.membership(org.member), role="superuser"
        )
    assert org.membership(org.member).role == Role.MEMBER


def test_change_role_refuses_your_own(org):
    """Nobody changes their own role."""
    with pytest.raises(ValidationError, match="your own role"):
        membership_change_role(
            actor=Actor(user=org.owner), membership=org.membership(org.owner), role=Role.MEMBER
        )
    assert org.membership(org.owner).role == Role.OWNER


def test_change_role_refuses_demoting_the_last_owner(org):
    """The last owner cannot be demoted, whoever asks."""
    before = row_counts()
    with pytest.raises(ValidationError, match="at least one owner"):
        membership_change_role(
            actor=Actor(user=org.admin), membership=org.membership(org.owner), role=Role.ADMIN
        )
    assert org.membership(org.owner).role == Role.OWNER
    assert row_counts() == before


def test_change_role_demotes_an_owner_when_another_remains(org):
    """With two owners, one can be demoted."""
    second = MembershipFactory(organization=org.organization, role=Role.OWNER)
    membership_change_role(actor=Actor(user=org.owner), membership=second, role=Role.MEMBER)
    second.refresh_from_db()
    assert second.role == Role.MEMBER


def test_remove_member_records_and_deletes(org):
    """Removing a member deletes the membership and records the role they had."""
    membership_remove(actor=Actor(user=org.owner), membership=org.membership(org.admin))
    assert not Membership.objects.filter(user=org.admin).exists()
    assert AuditEvent.objects.get(action="member.removed").detail == {
        "role": "admin",
        "keys_revoked": 0,
    }


def test_remove_refuses_yourself(org):
    """Nobody removes themself."""
    with pytest.raises(ValidationError, match="remove yourself"):
        membership_remove(actor=Actor(user=org.owner), membership=org.membership(org.owner))
    assert Membership.objects.filter(user=org.owner).exists()


def test_remove_refuses_the_last_owner(org):
    """The last owner cannot be removed, whoever asks."""
    before = row_counts()
    with pytest.raises(ValidationError, match="last owner"):
        membership_remove(actor=Actor(user=org.admin), membership=org.membership(org.owner))
    assert row_counts() == before


# Service accounts ----------------------------------------------------------------------------


def test_service_account_identifier_reads_like_an_email(org):
    """A service account's identifier is <slug>@<org>.serviceaccounts.keyportal."""
    account = service_account_create(
        actor=Actor(user=org.admin), organization=org.organization, name="Deploy Bot"
    )
    assert account.identifier == f"deploy-bot@acme.{SERVICE_ACCOUNT_DOMAIN}"
    assert account.created_by == org.admin


def test_service_account_identifier_gets_a_suffix_when_taken(org):
    """Names that slugify alike get -2, -3 identifiers."""
    actor = Actor(user=org.owner)
    names = ["deploy-bot", "Deploy Bot", "DEPLOY  bot!"]
    identifiers = [
        service_account_create(actor=actor, organization=org.organization, name=n).identifier
        for n in names
    ]
    assert identifiers == [
        "deploy-bot@acme.serviceaccounts.keyportal",
        "deploy-bot-2@acme.serviceaccounts.keyportal",
        "deploy-bot-3@acme.serviceaccounts.keyportal",
    ]


def test_service_account_identifier_of_unsluggable_name(org):
    """A name with no letters or digits still gets an identifier."""
    account = service_account_create(
        actor=Actor(user=org.owner), organization=org.organization, name="???"
    )
    assert account.identifier == "service-account@acme.serviceaccounts.keyportal"


def test_service_account_same_name_in_two_organizations(org, other_org):
    """Two organizations may each have a "deploy-bot" with distinct identifiers."""
    a = service_account_create(
        actor=Actor(user=org.owner), organization=org.organization, name="deploy-bot"
    )
    b = service_account_create(
        actor=Actor(user=other_org.owner), organization=other_org.organization, name="deploy-bot"
    )
    assert a.identifier != b.identifier


def test_service_account_duplicate_name_is_a_name_error(org):
    """A name taken in any letter case is a "name" error and saves nothing."""
    actor = Actor(user=org.owner)
    service_account_create(actor=actor, organization=org.organization, name="deploy-bot")
    before = row_counts()
    with pytest.raises(ValidationError) as error:
        service_account_create(actor=actor, organization=org.organization, name="DEPLOY-BOT")
    assert "already exists" in error.value.message_dict["name"][0]
    assert row_counts() == before


def test_service_account_update_keeps_identifier(org):
    """Renaming a service account never changes its identifier."""
    actor = Actor(user=org.owner)
    account = service_account_create(actor=actor, organization=org.organization, name="bot")
    service_account_update(actor=actor, service_account=account, name="robot", description="CI")
    account.refresh_from_db()
    assert (account.name, account.description) == ("robot", "CI")
    assert account.identifier == "bot@acme.serviceaccounts.keyportal"


def test_service_account_set_active_records_each_change(org):
    """Deactivating and reactivating are both recorded."""
    actor = Actor(user=org.owner)
    account = service_account_create(actor=actor, organization=org.organization, name="bot")
    service_account_set_active(actor=actor, service_account=account, active=False)
    assert not ServiceAccount.objects.get(pk=account.pk).is_active
    service_account_set_active(actor=actor, service_account=account, active=True)
    assert ServiceAccount.objects.get(pk=account.pk).is_active
    actions = list(
        AuditEvent.objects.filter(target_type="serviceaccount")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "service_account.created",
        "service_account.deactivated",
        "service_account.activated",
    ]


def test_organizations_are_independent(org, other_org):
    """Invitations in one organization do not block the same email in another."""
    invite(org)
    invitation, _ = invitation_create(
        actor=Actor(user=other_org.owner),
        organization=other_org.organization,
        email="new@example.test",
        role=Role.MEMBER,
        accept_url=accept_url,
    )
    assert invitation.organization == other_org.organization
    assert Invitation.objects.filter(email="new@example.test").count() == 2


def test_the_queue_holds_the_invitation_mail_sealed(org, monkeypatch, mailoutbox):
    """The link works once and the queue is a table kept for days: what is queued is sealed
    with the master key, and the worker opens it to send the mail."""
    queued = []

    class Queue:  # the database backend's queue, read back instead of run
        def get_backend(self):
            return DatabaseBackend("default", {})

        def enqueue(self, **kwargs):
            queued.append(kwargs)

    monkeypatch.setattr(mail, "deliver_mail", Queue())
    _, link = invite(org)

    [kwargs] = queued  # enqueued with the invitation, in its transaction
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert len(token) >= 40 and token not in str(kwargs)
    assert "invited you" not in str(kwargs)
    deliver_mail.call(**kwargs)
    [message] = mailoutbox
    assert link in message.body and "invited you" in message.body
