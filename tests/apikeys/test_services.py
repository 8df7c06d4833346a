"""Key services: create, update, rotate and revoke, each atomic and each with one history row."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.utils import timezone

from accounts.access import Actor, Refused
from accounts.models import AuditEvent, Origin, Role
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.services import (
    REVOKED_MESSAGE,
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    api_key_update,
    key_policy_update,
)
from keyportal_cli.tokens import PREFIXES, has_token_format, token_digest, token_kind, token_preview
from tests.apikeys.conftest import in_days, key_state, new_key
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def refusal(call, *args, **kwargs) -> dict[str, list[str]]:
    """Return the messages of the ValidationError `call` raises, by field."""
    with pytest.raises(ValidationError) as raised:
        call(*args, **kwargs)
    error = raised.value
    return error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}


def refused(call, *args, **kwargs) -> Refused:
    """Return the refusal the rules of DESIGN's "Authority over keys" raise for `call`."""
    with pytest.raises(Refused) as raised:
        call(*args, **kwargs)
    return raised.value


def update(api_key: ApiKey, actor, **changes) -> ApiKey:
    """Call api_key_update with the key's current values, overridden by `changes`."""
    values = {
        "name": api_key.name,
        "status": api_key.status,
        "permissions": list(api_key.permissions),
        "scopes": dict(api_key.scopes),
    }
    values.update(changes)
    return api_key_update(actor=Actor(user=actor), api_key=api_key, **values)


def set_policy(org, kind, *, require_expiry=True, days=None) -> None:
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=kind,
        require_expiry=require_expiry,
        max_lifetime_days=days,
    )


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "org", "project", "svc"])
def test_create_returns_the_key_and_its_plaintext_once(org, tree, bot, kind):
    """Create returns the key and a token of its kind; only the digest and preview are stored."""
    owner = {"user": None, "org": None, "project": tree.project, "svc": bot}[kind]

    api_key, token = new_key(org, kind, owner=owner, name="ci")

    assert has_token_format(token)
    assert token_kind(token) == kind
    api_key.refresh_from_db()
    assert api_key.digest == token_digest(token)
    assert api_key.preview == token_preview(token)
    assert api_key.preview.startswith(PREFIXES[kind])
    assert token not in [str(value) for value in key_state(api_key)]
    assert api_key.kind == kind
    assert api_key.organization == org.organization
    assert api_key.state == "active"
    assert (
        api_key.owner
        == {
            "user": org.member,
            "org": org.organization,
            "project": tree.project,
            "svc": bot,
        }[kind]
    )


def test_create_records_who_and_how(org):
    """The key keeps who made it and from where; permissions are stored in catalogue order."""
    actor = Actor(user=org.admin, ip="198.51.100.7", origin=Origin.CLI)

    api_key, _token = api_key_create(
        actor=actor,
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        name="ci",
        permissions=["api-keys:manage", "secrets:read", "secrets:read"],
    )

    assert api_key.created_by == org.admin
    assert api_key.origin == Origin.CLI
    assert api_key.permissions == ["secrets:read", "api-keys:manage"]
    assert api_key.expires_at is None
    event = AuditEvent.objects.get()
    assert event.action == "api_key.created"
    assert (event.target_type, event.target_id) == ("apikey", str(api_key.pk))
    assert (event.actor_user, event.origin, event.ip_address) == (org.admin, "cli", "198.51.100.7")
    assert event.organization == org.organization
    assert event.detail == {"name": "ci", "preview": api_key.preview, "kind": "org"}


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_name_generates_one(org, name):
    """A blank name becomes a generated one, unique enough to create several in a row."""
    first, _ = new_key(org, name=name)
    second, _ = new_key(org, name=name)

    for api_key in (first, second):
        assert re.fullmatch(r"key-\d{8}-[0-9a-f]{6}", api_key.name)
    assert first.name != second.name


def test_name_is_trimmed(org):
    """Spaces around a name are dropped."""
    api_key, _ = new_key(org, name="  deploy  ")
    assert api_key.name == "deploy"


def test_name_of_100_characters_is_accepted(org):
    """A name may be exactly 100 characters."""
    api_key, _ = new_key(org, name="n" * 100)
    assert ApiKey.objects.get(pk=api_key.pk).name == "n" * 100


def test_name_over_100_characters_is_refused(org):
    """A name of 101 characters is refused with a message, and no key is made."""
    try:
        messages = refusal(new_key, org, name="n" * 101)
    except DatabaseError:
        pytest.fail("the database, not the service, refused the name")
    assert "name" in messages
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("name", ["deploy", "DEPLOY", "  Deploy "])
def test_name_used_by_a_live_key_of_the_same_owner_is_refused(org, name):
    """A live key of the same owner already named so, in any letter case, refuses the name."""
    new_key(org, name="Deploy")

    messages = refusal(new_key, org, name=name)

    assert messages == {"name": [f"A live key of this owner is already named “{name.strip()}”."]}
    assert ApiKey.objects.count() == 1
    assert AuditEvent.objects.count() == 1


def test_name_is_free_again_after_revoke(org):
    """Revoking a key frees its name for the same owner."""
    api_key, _ = new_key(org, name="deploy")
    api_key_revoke(actor=Actor(user=org.member), api_key=api_key)

    again, _ = new_key(org, name="deploy")

    assert again.pk != api_key.pk


def test_name_is_free_again_after_expiry(org):
    """An expired key's name can be reused by the same owner."""
    api_key, _ = new_key(org, name="deploy")
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    again, _ = new_key(org, name="deploy")

    assert again.pk != api_key.pk


def test_same_name_is_fine_for_another_owner(org, tree, bot):
    """Names are unique per owner: another member, project or service account may reuse one."""
    other_member = MembershipFactory(organization=org.organization, role=Role.MEMBER).user
    new_key(org, name="deploy")
    new_key(org, owner=other_member, name="deploy")
    new_key(org, owner=org.owner, name="deploy")
    new_key(org, KeyKind.ORGANIZATION, name="deploy")
    new_key(org, KeyKind.PROJECT, owner=tree.project, name="deploy")
    new_key(org, KeyKind.SERVICE_ACCOUNT, owner=bot, name="deploy")

    assert ApiKey.objects.filter(name="deploy").count() == 6


def test_same_name_in_another_organization_is_fine(org, other_org):
    """Organization keys of two organizations may share a name."""
    new_key(org, KeyKind.ORGANIZATION, name="deploy")
    new_key(other_org, KeyKind.ORGANIZATION, name="deploy")

    assert ApiKey.objects.filter(name="deploy").count() == 2


@pytest.mark.parametrize(
    "permissions", [["nonsense"], ["projects:read", "secrets:steal"], ["PROJECTS:READ"]]
)
def test_unknown_permission_ids_are_refused(org, permissions):
    """A permission id outside the catalogue is refused, by name."""
    messages = refusal(new_key, org, KeyKind.ORGANIZATION, permissions=permissions)

    assert messages["permissions"][0].startswith("Unknown permission: ")
    assert not ApiKey.objects.exists()


def test_a_key_needs_a_permission(org):
    """A key without any permission is refused."""
    messages = refusal(new_key, org, KeyKind.ORGANIZATION, permissions=[])
    assert messages == {"permissions": ["Choose at least one permission."]}


@pytest.mark.parametrize("permission_id", ["apps:publish", "secrets:write", "secrets:decrypt"])
def test_member_cannot_give_more_than_their_role(org, permission_id):
    """A member's personal key cannot hold a permission the member's role lacks."""
    refusal = refused(new_key, org, permissions=["secrets:read", permission_id])

    assert refusal.message == (
        f"You cannot give a key what you do not hold: {permission_id} on the whole organization."
    )
    assert refusal.permission == permission_id
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    "permission_id", ["members:delete", "members:update", "organization:update"]
)
def test_admin_cannot_give_owner_only_permissions(org, permission_id):
    """An admin cannot give any key a permission only owners hold."""
    for kind in (KeyKind.ORGANIZATION, KeyKind.USER):
        owner = org.admin if kind == KeyKind.USER else None
        refusal = refused(
            new_key, org, kind, actor=org.admin, owner=owner, permissions=[permission_id]
        )
        assert refusal.permission == permission_id
    assert not ApiKey.objects.exists()


def test_owner_may_give_everything(org):
    """An owner can make an organization key holding every permission."""
    from apikeys.permissions import ALL

    api_key, _ = new_key(org, KeyKind.ORGANIZATION, permissions=sorted(ALL))
    assert set(api_key.permissions) == ALL


def test_someone_outside_the_organization_can_give_nothing(org, outsider):
    """A person with no membership holds nothing: they create no key of the organization."""
    refusal = refused(new_key, org, KeyKind.ORGANIZATION, actor=outsider)
    assert refusal.message.startswith("Only owners and admins can create")
    assert not ApiKey.objects.exists()


def test_an_operator_holds_everything(org):
    """A command-line operator (no person) may give any permission."""
    api_key, _ = api_key_create(
        actor=Actor.operator("operator"),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=["members:delete"],
    )
    assert api_key.created_by is None
    assert AuditEvent.objects.get().actor_label == "operator"


@pytest.mark.parametrize(
    "permission_id", ["organization:read", "members:read", "api-keys:manage", "projects:create"]
)
def test_project_keys_cannot_hold_organization_wide_permissions(org, tree, permission_id):
    """A project key holds only what can be narrowed to its project."""
    messages = refusal(
        new_key,
        org,
        KeyKind.PROJECT,
        owner=tree.project,
        permissions=["secrets:read", permission_id],
    )

    assert messages == {
        "permissions": [
            f"A project key cannot hold organization-wide permissions: {permission_id}."
        ]
    }


def test_scope_to_another_organizations_project_is_refused(org, foreign_tree):
    """A key of one organization cannot be scoped to another's project."""
    scopes = {"secrets:read": [{"type": "project", "id": foreign_tree.project.pk}]}

    messages = refusal(
        new_key, org, KeyKind.ORGANIZATION, permissions=["secrets:read"], scopes=scopes
    )

    assert messages == {"scopes": ["There is no such project in this organization."]}
    assert not ApiKey.objects.exists()


def test_project_permission_scoped_to_an_environment_is_refused(org, tree):
    """projects:read cannot be narrowed below a project."""
    scopes = {"projects:read": [{"type": "environment", "id": tree.environment.pk}]}

    messages = refusal(new_key, org, KeyKind.ORGANIZATION, scopes=scopes)

    assert messages == {"scopes": ["projects:read can be scoped to: team, project."]}


def test_create_permission_cannot_be_scoped(org, tree):
    """projects:create cannot be scoped to anything."""
    scopes = {"projects:create": [{"type": "team", "id": tree.project.team.pk}]}

    messages = refusal(
        new_key, org, KeyKind.ORGANIZATION, permissions=["projects:create"], scopes=scopes
    )

    assert "projects:create cannot be scoped" in messages["scopes"][0]


def test_scopes_are_stored(org, tree):
    """Valid scopes are kept as given, per permission."""
    scopes = {
        "secrets:read": [{"type": "environment", "id": tree.environment.pk}],
        "projects:read": [{"type": "project", "id": tree.project.pk}],
    }
    api_key, _ = new_key(
        org, KeyKind.ORGANIZATION, permissions=["secrets:read", "projects:read"], scopes=scopes
    )
    assert ApiKey.objects.get(pk=api_key.pk).scopes == scopes


# --- expiry on create -----------------------------------------------------------------------


def test_past_expiry_is_refused(org):
    """An expiry in the past is refused."""
    messages = refusal(new_key, org, KeyKind.ORGANIZATION, expires_at=in_days(-1))
    assert messages == {"expiration": ["The expiration must be in the future."]}
    assert not ApiKey.objects.exists()


def test_personal_keys_must_expire_by_default(org):
    """By default a personal key may not be "never", nor live beyond 30 days."""
    assert refusal(new_key, org, expires_at=None) == {
        "expiration": ["This organization's policy requires these keys to expire."]
    }
    assert refusal(new_key, org, expires_at=in_days(31)) == {
        "expiration": ["This organization's policy allows these keys at most 30 days."]
    }
    api_key, _ = new_key(org, expires_at=in_days(30))
    assert api_key.expires_at is not None


@pytest.mark.parametrize("kind", ["org", "project", "svc"])
def test_other_kinds_may_never_expire_by_default(org, tree, bot, kind):
    """Organization, project and service-account keys may be made without an expiry."""
    owner = {"org": None, "project": tree.project, "svc": bot}[kind]
    api_key, _ = new_key(org, kind, owner=owner, expires_at=None)
    assert api_key.expires_at is None


def test_relaxed_policy_lets_personal_keys_never_expire(org):
    """An organization may drop the default rule for personal keys."""
    set_policy(org, KeyKind.USER, require_expiry=False, days=None)

    api_key, _ = new_key(org, expires_at=None)

    assert api_key.expires_at is None


# --- update ---------------------------------------------------------------------------------


def test_update_changes_name_status_permissions_and_scopes(org, tree):
    """An update saves the new values and records which fields changed."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci", ip="10.0.0.1")
    scopes = {"secrets:read": [{"type": "project", "id": tree.project.pk}]}

    api_key_update(
        actor=Actor(user=org.admin, ip="10.0.0.2"),
        api_key=api_key,
        name="ci-2",
        status=KeyStatus.DISABLED,
        permissions=["secrets:read", "projects:read"],
        scopes=scopes,
    )

    api_key.refresh_from_db()
    assert api_key.name == "ci-2"
    assert api_key.status == "disabled"
    assert api_key.state == "disabled"
    assert api_key.permissions == ["secrets:read", "projects:read"]
    assert api_key.scopes == scopes
    event = AuditEvent.objects.get(action="api_key.updated")
    assert event.detail["changed"] == ["name", "status", "permissions", "scopes"]
    assert (event.actor_user, event.ip_address, event.target_type) == (
        org.admin,
        "10.0.0.2",
        "apikey",
    )


def test_update_back_to_active(org):
    """A disabled key can be made active again."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    update(api_key, org.owner, status=KeyStatus.DISABLED)
    update(api_key, org.owner, status=KeyStatus.ACTIVE)
    api_key.refresh_from_db()
    assert api_key.state == "active"


def test_update_with_a_blank_name_keeps_the_name(org):
    """A blank name on edit keeps the key's current name."""
    api_key, _ = new_key(org, name="deploy")
    update(api_key, org.member, name="  ")
    api_key.refresh_from_db()
    assert api_key.name == "deploy"


def test_update_refuses_a_revoked_key(org):
    """A revoked key cannot be changed: a clear message, nothing changed, no history row."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    api_key_revoke(actor=Actor(user=org.owner), api_key=api_key)
    before, events = key_state(api_key), AuditEvent.objects.count()

    messages = refusal(update, api_key, org.owner, name="renamed", status=KeyStatus.DISABLED)

    assert messages == {"__all__": [REVOKED_MESSAGE]}
    assert key_state(api_key) == before
    assert AuditEvent.objects.count() == events


def test_update_refuses_a_stale_object_of_a_revoked_key(org):
    """A key revoked since it was loaded is refused too: the service reads it again, locked."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    stale = ApiKey.objects.get(pk=api_key.pk)
    api_key_revoke(actor=Actor(user=org.owner), api_key=api_key)

    assert refusal(update, stale, org.owner, name="renamed") == {"__all__": [REVOKED_MESSAGE]}
    assert ApiKey.objects.get(pk=api_key.pk).name == api_key.name


@pytest.mark.parametrize("status", ["revoked", "expired", "", "ACTIVE"])
def test_update_refuses_an_unknown_status(org, status):
    """Status is Active or Disabled; revoking and expiry have their own ways."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    before = key_state(api_key)

    assert refusal(update, api_key, org.owner, status=status) == {
        "status": ["Choose Active or Disabled."]
    }
    assert key_state(api_key) == before


def test_update_refuses_a_name_taken_by_another_live_key(org):
    """Renaming to another live key's name is refused; keeping one's own name in new case is not."""
    first, _ = new_key(org, name="alpha")
    second, _ = new_key(org, name="beta")

    assert "name" in refusal(update, second, org.member, name="ALPHA")
    update(second, org.member, name="Beta")
    second.refresh_from_db()
    assert second.name == "Beta"
    assert first.name == "alpha"


def test_update_refuses_more_than_the_role(org):
    """A member cannot add secrets:write to their own key by editing it."""
    api_key, _ = new_key(org)
    before = key_state(api_key)

    refusal = refused(update, api_key, org.member, permissions=["projects:read", "secrets:write"])

    assert refusal.permission == "secrets:write"
    assert key_state(api_key) == before


def test_update_refuses_bad_scopes(org, foreign_tree):
    """A scope to another organization's project is refused on edit as on create."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, permissions=["secrets:read"])
    before = key_state(api_key)
    scopes = {"secrets:read": [{"type": "project", "id": foreign_tree.project.pk}]}

    assert refusal(update, api_key, org.owner, scopes=scopes) == {
        "scopes": ["There is no such project in this organization."]
    }
    assert key_state(api_key) == before


def test_update_applies_the_policy_to_a_new_expiry(org):
    """Setting an expiry on edit follows the current policy."""
    api_key, _ = new_key(org)
    before = key_state(api_key)

    assert "expiration" in refusal(update, api_key, org.member, expires_at=in_days(45))
    assert "expiration" in refusal(update, api_key, org.member, expires_at=None)
    assert "expiration" in refusal(update, api_key, org.member, expires_at=in_days(-1))
    assert key_state(api_key) == before
    update(api_key, org.member, expires_at=in_days(20))
    api_key.refresh_from_db()
    assert api_key.expires_at > in_days(19)


def test_update_follows_a_policy_changed_after_creation(org):
    """Once organization keys are capped at 90 days, an edit cannot set a longer expiry."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, expires_at=in_days(365))
    set_policy(org, KeyKind.ORGANIZATION, days=90)

    assert refusal(update, api_key, org.owner, expires_at=in_days(300)) == {
        "expiration": ["This organization's policy allows these keys at most 90 days."]
    }
    update(api_key, org.owner, expires_at=in_days(60))


def test_update_without_expiry_leaves_older_keys_untouched(org):
    """Renaming a key that exceeds a newer policy works and keeps its expiry as it was."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, expires_at=None)
    set_policy(org, KeyKind.ORGANIZATION, days=30)

    update(api_key, org.owner, name="renamed")

    api_key.refresh_from_db()
    assert (api_key.name, api_key.expires_at) == ("renamed", None)


def test_update_history_names_an_expiry_change(org):
    """Changing only the expiry is recorded as a change of the expiry."""
    api_key, _ = new_key(org)

    update(api_key, org.member, expires_at=in_days(3))

    event = AuditEvent.objects.get(action="api_key.updated")
    assert event.detail["changed"] == ["expires_at"]


# --- rotate ---------------------------------------------------------------------------------


def test_rotate_gives_a_new_secret_to_the_same_key(org, tree):
    """Rotation changes digest and preview only: same id, name, permissions, scopes, owner."""
    scopes = {"secrets:read": [{"type": "project", "id": tree.project.pk}]}
    api_key, old_token = new_key(
        org, KeyKind.PROJECT, owner=tree.project, permissions=["secrets:read"], scopes=scopes
    )
    old = key_state(api_key)

    rotated, token = api_key_rotate(actor=Actor(user=org.admin), api_key=api_key)

    assert token != old_token
    assert has_token_format(token)
    assert token_kind(token) == "project"
    rotated.refresh_from_db()
    assert rotated.pk == api_key.pk
    assert rotated.digest == token_digest(token)
    assert rotated.preview == token_preview(token)
    assert rotated.digest != token_digest(old_token)
    assert (rotated.name, rotated.permissions, rotated.scopes, rotated.owner_project) == (
        api_key.name,
        ["secrets:read"],
        scopes,
        tree.project,
    )
    assert rotated.rotated_at is not None
    assert rotated.created_at == api_key.created_at
    assert key_state(rotated) != old
    assert ApiKey.objects.count() == 1


def test_rotate_now_stops_the_old_secret_at_once(org):
    """With no grace, no previous digest is kept."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)

    rotated, _ = api_key_rotate(actor=Actor(user=org.owner), api_key=api_key, grace="now")

    rotated.refresh_from_db()
    assert rotated.previous_digest is None
    assert rotated.previous_valid_until is None


@pytest.mark.parametrize(
    ("grace", "period"),
    [("1h", timedelta(hours=1)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7))],
)
def test_rotate_with_grace_keeps_the_old_digest_until_then(org, grace, period):
    """With a grace period the old digest keeps working until the end of it."""
    api_key, old_token = new_key(org, KeyKind.ORGANIZATION)

    before = timezone.now()
    rotated, _ = api_key_rotate(actor=Actor(user=org.owner), api_key=api_key, grace=grace)
    after = timezone.now()

    rotated.refresh_from_db()
    assert rotated.previous_digest == token_digest(old_token)
    assert before + period <= rotated.previous_valid_until <= after + period
    assert rotated.previous_valid_until == rotated.rotated_at + period


def test_rotating_again_replaces_the_previous_secret(org):
    """A second rotation keeps only the secret just replaced, never the first one."""
    api_key, first = new_key(org, KeyKind.ORGANIZATION)
    api_key, second = api_key_rotate(actor=Actor(user=org.owner), api_key=api_key, grace="7d")
    api_key, _third = api_key_rotate(actor=Actor(user=org.owner), api_key=api_key, grace="1h")

    api_key.refresh_from_db()
    assert api_key.previous_digest == token_digest(second)
    assert token_digest(first) not in (api_key.digest, api_key.previous_digest)


@pytest.mark.parametrize("grace", ["2h", "", "forever", "7D"])
def test_rotate_refuses_an_unknown_grace(org, grace):
    """Only now, 1h, 24h and 7d are accepted."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    before = key_state(api_key)

    messages = refusal(api_key_rotate, actor=Actor(user=org.owner), api_key=api_key, grace=grace)

    assert "grace" in messages
    assert key_state(api_key) == before


def test_rotate_refuses_a_revoked_key(org):
    """A revoked key gets no new secret."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    api_key_revoke(actor=Actor(user=org.owner), api_key=api_key)
    before = key_state(api_key)

    assert refusal(api_key_rotate, actor=Actor(user=org.owner), api_key=api_key) == {
        "__all__": [REVOKED_MESSAGE]
    }
    assert key_state(api_key) == before


def test_rotate_follows_a_policy_changed_after_creation(org):
    """A never-expiring key cannot be rotated once its kind must expire; it is left as it was."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, expires_at=None)
    set_policy(org, KeyKind.ORGANIZATION, require_expiry=True)
    before = key_state(api_key)

    messages = refusal(api_key_rotate, actor=Actor(user=org.owner), api_key=api_key)

    assert "This organization's policy requires these keys to expire." in str(messages)
    assert key_state(api_key) == before


def test_rotate_counts_the_lifetime_from_now(org):
    """A personal key made 20 days ago and expiring in 5 days rotates under the 30-day rule."""
    api_key, _ = new_key(org, expires_at=in_days(5))
    ApiKey.objects.filter(pk=api_key.pk).update(created_at=timezone.now() - timedelta(days=20))

    rotated, _ = api_key_rotate(actor=Actor(user=org.member), api_key=api_key)

    assert rotated.expires_at == api_key.expires_at


def test_rotate_refuses_an_expired_key(org):
    """An expired key cannot be rotated back to life."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    before = key_state(api_key)

    messages = refusal(api_key_rotate, actor=Actor(user=org.owner), api_key=api_key)

    assert "The expiration must be in the future." in str(messages)
    assert key_state(api_key) == before


# --- revoke ---------------------------------------------------------------------------------


def test_revoke_sets_who_and_when_and_clears_the_previous_secret(org):
    """Revoking records who and when, and the old secret of a rotation in grace stops too."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    api_key, _ = api_key_rotate(actor=Actor(user=org.owner), api_key=api_key, grace="7d")

    before = timezone.now()
    api_key_revoke(actor=Actor(user=org.admin), api_key=api_key)

    api_key.refresh_from_db()
    assert api_key.revoked_at >= before
    assert api_key.revoked_by == org.admin
    assert api_key.previous_digest is None
    assert api_key.previous_valid_until is None
    assert api_key.state == "revoked"
    assert api_key.is_revoked


def test_revoke_is_final(org):
    """Revoking a revoked key again changes nothing and is no failure; the first one stands."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    api_key_revoke(actor=Actor(user=org.admin), api_key=api_key)
    before = key_state(api_key)

    again = api_key_revoke(actor=Actor(user=org.owner), api_key=api_key)

    assert again.revoked_by == org.admin
    assert key_state(api_key) == before
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_revoked_state_wins_over_expired_and_disabled(org):
    """A revoked key reads revoked even when it is also disabled and expired."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION)
    update(api_key, org.owner, status=KeyStatus.DISABLED)
    api_key_revoke(actor=Actor(user=org.owner), api_key=api_key)
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(days=1))

    assert ApiKey.objects.get(pk=api_key.pk).state == "revoked"


# --- history --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "call"),
    [
        (
            "created",
            lambda org, actor, api_key: api_key_create(
                actor=actor,
                organization=org.organization,
                kind=KeyKind.ORGANIZATION,
                name="second",
                permissions=["projects:read"],
            )[0],
        ),
        (
            "updated",
            lambda org, actor, api_key: api_key_update(
                actor=actor,
                api_key=api_key,
                name="renamed",
                status="disabled",
                permissions=["projects:read"],
            ),
        ),
        (
            "rotated",
            lambda org, actor, api_key: api_key_rotate(actor=actor, api_key=api_key, grace="1h")[0],
        ),
        ("revoked", lambda org, actor, api_key: api_key_revoke(actor=actor, api_key=api_key)),
    ],
)
def test_every_service_writes_one_history_row(org, action, call):
    """Create, update, rotate and revoke each write one row: actor, origin, address, target."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, name="history")
    actor = Actor(user=org.admin, ip="2001:db8::1", origin=Origin.API)
    before = AuditEvent.objects.count()

    target = call(org, actor, api_key)

    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.latest("id")
    assert event.action == f"api_key.{action}"
    assert (event.target_type, event.target_id) == ("apikey", str(target.pk))
    assert (event.actor_user, event.actor_label) == (org.admin, org.admin.email)
    assert (event.origin, event.ip_address) == ("api", "2001:db8::1")
    assert event.organization == org.organization
    assert event.detail["preview"] == target.preview
    assert event.detail["kind"] == "org"


def test_refused_calls_write_no_history(org):
    """A refused create, update or rotate leaves the history as it was."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, name="taken")
    events = AuditEvent.objects.count()

    for call in (
        lambda: new_key(org, KeyKind.ORGANIZATION, name="taken"),
        lambda: update(api_key, org.owner, status="nonsense"),
        lambda: api_key_rotate(actor=Actor(user=org.owner), api_key=api_key, grace="1y"),
    ):
        with pytest.raises(ValidationError):
            call()

    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("name", ["evil\u202etxt.exe", "two\nlines", "tab\there", "nul\x00"])
def test_key_names_must_show_as_written(org, name):
    """A name with control characters or text-direction overrides is refused, by create and by
    rename, with a message naming the problem."""
    messages = refusal(new_key, org, name=name)
    assert "control characters or text-direction overrides" in messages["name"][0]
    api_key, _ = new_key(org, name="fine")
    messages = refusal(update, api_key, org.member, name=name)
    assert "control characters or text-direction overrides" in messages["name"][0]
    api_key.refresh_from_db()
    assert api_key.name == "fine"


def test_a_key_with_an_old_unsafe_name_can_still_be_disabled(org):
    """Names made before the rule are not a reason to keep a key alive."""
    api_key, _ = new_key(org, name="old")
    ApiKey.objects.filter(pk=api_key.pk).update(name="old\u202e")
    api_key.refresh_from_db()

    api_key_update(actor=Actor(user=org.member), api_key=api_key, status="disabled")

    api_key.refresh_from_db()
    assert api_key.status == "disabled"
