"""One key's page: facts and history, edit, rotate (with grace) and delete (revoke)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent
from apikeys.models import ApiKey, KeyKind
from apikeys.services import REVOKED_MESSAGE, api_key_revoke, key_policy_update
from keyportal_cli.tokens import token_digest
from tests.accounts.helpers import is_fragment, page_text
from tests.apikeys.conftest import (
    ORGANIZATION_KEYS_URL,
    PERSONAL_KEYS_URL,
    delete_url,
    detail_url,
    edit_data,
    key_counts,
    key_state,
    new_key,
    plain_text,
    revealed_token,
    rotate_url,
    secret_part,
)
from tests.apikeys.test_key_history import history_labels

pytestmark = pytest.mark.django_db

UPDATED = "The API key has been updated."


@pytest.fixture
def personal(org) -> tuple[ApiKey, str]:
    """Return the plain member's personal key and its token."""
    return new_key(org, name="laptop", permissions=["secrets:read", "projects:read"])


@pytest.fixture
def org_key(org) -> tuple[ApiKey, str]:
    """Return an organization key made by the owner, and its token."""
    return new_key(org, KeyKind.ORGANIZATION, name="ci", permissions=["secrets:read"])


# --- the page -------------------------------------------------------------------------------


def test_detail_shows_the_key(client_for, org, personal, tree):
    """The page shows name, preview, status, owner, creator, expiry, permissions and history."""
    api_key, token = personal

    response = client_for(org.member).get(detail_url(api_key))

    assert response.status_code == 200
    text = page_text(response)
    for expected in (
        "laptop",
        api_key.preview,
        "Active",
        org.member.email,
        "List secret names",
        "secrets:read",
        "Whole organization",
    ):
        assert expected in text, expected
    assert history_labels(response) == ["Created"]
    assert secret_part(token) not in text


def test_detail_shows_scopes_by_name(client_for, org, tree):
    """A scoped permission reads the resource it is narrowed to."""
    api_key, _ = new_key(
        org,
        KeyKind.ORGANIZATION,
        permissions=["secrets:read"],
        scopes={"secrets:read": [{"type": "environment", "id": tree.environment.pk}]},
    )

    text = page_text(client_for(org.admin).get(detail_url(api_key)))

    assert "Environment Payments / web / production" in text


def test_htmx_detail_returns_the_edit_fragment(client_for, org, personal, htmx_headers):
    """An htmx request for the page gets the edit form alone."""
    response = client_for(org.member).get(detail_url(personal[0]), headers=htmx_headers)

    assert response.status_code == 200
    assert is_fragment(response)
    assert 'id="key-edit"' in response.content.decode()


# --- edit -----------------------------------------------------------------------------------


def test_edit_name_status_permissions_and_scopes(client_for, org, org_key, tree):
    """Saving the edit form changes the key and shows "The API key has been updated."."""
    api_key, _ = org_key
    client = client_for(org.admin)

    response = client.post(
        detail_url(api_key),
        edit_data(
            api_key,
            name="ci renamed",
            status="disabled",
            permissions=["secrets:read", "projects:read"],
            scope_secrets=f"project:{tree.project.pk}",
            expiration="keep",
        ),
    )

    assert response.status_code == 302
    assert response.url == detail_url(api_key)
    api_key.refresh_from_db()
    assert api_key.name == "ci renamed"
    assert api_key.state == "disabled"
    assert api_key.permissions == ["secrets:read", "projects:read"]
    assert api_key.scopes == {"secrets:read": [{"type": "project", "id": tree.project.pk}]}
    text = page_text(client.get(response.url))
    assert UPDATED in text
    assert "Disabled" in text
    assert "Project Payments" in text


def test_disable_then_enable(client_for, org, personal):
    """A member disables their own key, then makes it active again."""
    api_key, _ = personal
    client = client_for(org.member)

    client.post(detail_url(api_key), edit_data(api_key, status="disabled", expiration="keep"))
    api_key.refresh_from_db()
    assert api_key.status == "disabled"
    client.post(detail_url(api_key), edit_data(api_key, status="active", expiration="keep"))
    api_key.refresh_from_db()
    assert api_key.status == "active"


def test_edit_keeps_the_expiry_unless_asked(client_for, org, personal):
    """ "Keep the current expiration" keeps it; a new choice replaces it within the policy."""
    api_key, _ = personal
    expires_at = api_key.expires_at
    client = client_for(org.member)

    client.post(detail_url(api_key), edit_data(api_key, name="kept", expiration="keep"))
    api_key.refresh_from_db()
    assert (api_key.name, api_key.expires_at) == ("kept", expires_at)

    client.post(detail_url(api_key), edit_data(api_key, expiration="30"))
    api_key.refresh_from_db()
    assert api_key.expires_at > expires_at + timedelta(days=20)


def test_edit_records_the_change(client_for, org, personal):
    """An edit writes one history row naming the changed fields, shown on the page."""
    api_key, _ = personal
    client = client_for(org.member)

    client.post(detail_url(api_key), edit_data(api_key, name="renamed", expiration="keep"))

    event = AuditEvent.objects.get(action="api_key.updated")
    assert event.detail["changed"] == ["name"]
    assert (event.actor_user, event.origin, event.ip_address) == (org.member, "web", "127.0.0.1")
    assert history_labels(client.get(detail_url(api_key)))[0] == "Renamed"


EDIT_BAD_INPUT = [
    ("name-too-long", {"name": "n" * 101}, "Name must be at most 100 characters."),
    ("unknown-status", {"status": "revoked"}, "Select a valid choice."),
    ("unknown-permission", {"permissions": ["nope:read"]}, "Unknown permission: nope:read."),
    (
        "beyond-the-role",
        {"permissions": ["secrets:read", "apps:publish"]},
        "You cannot give a key what you do not hold: apps:publish on the whole organization.",
    ),
    (
        "past-date",
        {"expiration": "custom", "expires_on": "2000-01-01"},
        "The expiration date must be in the future.",
    ),
    ("bad-date", {"expiration": "custom", "expires_on": "2027-13-45"}, "Enter a date like"),
    ("never-for-personal", {"expiration": "never"}, "Choose an expiration the policy allows."),
    ("scope-of-nothing", {"scope_secrets": "project:0"}, "Choose a scope from the list."),
]


@pytest.mark.parametrize(
    ("changes", "message"), [pytest.param(*case[1:], id=case[0]) for case in EDIT_BAD_INPUT]
)
def test_bad_edit_is_refused_and_kept(client_for, org, personal, htmx_headers, changes, message):
    """Bad input on the edit form answers 422 with the message and the typed name; no change."""
    api_key, _ = personal
    before, counts = key_state(api_key), key_counts()
    data = edit_data(api_key, name="typed name", expiration="keep")
    data.update(changes)

    response = client_for(org.member).post(detail_url(api_key), data, headers=htmx_headers)

    assert response.status_code == 422
    text = page_text(response)
    assert message in text
    assert f'value="{data["name"]}"' in text
    assert key_state(api_key) == before
    assert key_counts() == counts


def test_edit_to_a_taken_name_is_refused(client_for, org, personal):
    """Renaming to the name of another live key of the member is refused."""
    api_key, _ = personal
    new_key(org, name="desktop")
    before = key_state(api_key)

    response = client_for(org.member).post(
        detail_url(api_key), edit_data(api_key, name="Desktop", expiration="keep")
    )

    assert response.status_code == 422
    assert "A live key of this owner is already named “Desktop”." in page_text(response)
    assert key_state(api_key) == before


def test_edit_to_another_organizations_scope_is_refused(client_for, org, org_key, foreign_tree):
    """A scope value naming another organization's project is refused on edit."""
    api_key, _ = org_key
    before = key_state(api_key)

    response = client_for(org.owner).post(
        detail_url(api_key),
        edit_data(api_key, scope_secrets=f"project:{foreign_tree.project.pk}", expiration="keep"),
    )

    assert response.status_code == 422
    assert "Choose a scope from the list." in page_text(response)
    assert key_state(api_key) == before


def test_editing_a_revoked_key_is_refused(client_for, org, personal, htmx_headers):
    """A revoked key's edit answers 422 with the reason, and nothing changes."""
    api_key, _ = personal
    api_key_revoke(actor=Actor(user=org.member), api_key=api_key)
    before, counts = key_state(api_key), key_counts()
    data = edit_data(api_key, name="zombie", status="active", expiration="keep")
    client = client_for(org.member)

    fragment = client.post(detail_url(api_key), data, headers=htmx_headers)
    page = client.post(detail_url(api_key), data)

    assert fragment.status_code == page.status_code == 422
    assert REVOKED_MESSAGE in page_text(fragment)
    assert "It no longer works and cannot be changed." in page_text(page)
    assert key_state(api_key) == before
    assert key_counts() == counts


def test_revoked_key_page_offers_no_edit(client_for, org, personal):
    """A revoked key's page has no edit form, rotate or delete button."""
    api_key, _ = personal
    api_key_revoke(actor=Actor(user=org.member), api_key=api_key)

    body = client_for(org.member).get(detail_url(api_key)).content.decode()

    assert 'id="key-edit"' not in body
    assert rotate_url(api_key) not in body
    assert delete_url(api_key) not in body


def test_admin_edit_keeps_permissions_beyond_their_role(client_for, org):
    """An admin renaming a key that holds members:delete keeps it; unchecking it takes it
    away (DESIGN rule 3), and it cannot be given back by an admin."""
    api_key, _ = new_key(
        org, KeyKind.ORGANIZATION, name="ops", permissions=["members:read", "members:delete"]
    )
    admin = client_for(org.admin)
    page = admin.get(detail_url(api_key)).content.decode()
    assert 'value="members:delete" data-group="members" checked>' in page

    admin.post(detail_url(api_key), edit_data(api_key, name="ops renamed", expiration="keep"))
    api_key.refresh_from_db()
    assert (api_key.name, api_key.permissions) == (
        "ops renamed",
        ["members:read", "members:delete"],
    )

    data = edit_data(api_key, permissions=["members:read"], expiration="keep")
    assert admin.post(detail_url(api_key), data).status_code == 302
    api_key.refresh_from_db()
    assert api_key.permissions == ["members:read"]

    data = edit_data(api_key, permissions=["members:read", "members:delete"], expiration="keep")
    response = admin.post(detail_url(api_key), data)
    assert response.status_code == 422
    assert "members:delete on the whole organization" in page_text(response)
    api_key.refresh_from_db()
    assert api_key.permissions == ["members:read"]


# --- rotate ---------------------------------------------------------------------------------


def test_rotate_page(client_for, org, personal, htmx_headers):
    """The rotate page offers the grace periods; htmx gets the form fragment alone."""
    api_key, _ = personal
    client = client_for(org.member)

    page = client.get(rotate_url(api_key))
    fragment = client.get(rotate_url(api_key), headers=htmx_headers)

    assert page.status_code == fragment.status_code == 200
    text = page_text(page)
    for label in ("At once", "In 1 hour", "In 24 hours", "In 7 days"):
        assert label in text
    assert is_fragment(fragment)
    assert 'id="key-rotate"' in fragment.content.decode()


@pytest.mark.parametrize("grace", ["1h", "24h", "7d"])
def test_rotate_with_grace_reveals_the_new_secret(client_for, org, personal, grace):
    """Rotating reveals the new secret once, says how long the old one works, and is no-store."""
    api_key, old_token = personal
    client = client_for(org.member)

    response = client.post(rotate_url(api_key), {"grace": grace})

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    token = revealed_token(response)
    assert token != old_token
    text = page_text(response)
    assert "Important: copy this key now, it will not be shown again." in text
    assert f"export KEYPORTAL_API_KEY={token}" in text
    assert "The old secret keeps working until" in text
    api_key.refresh_from_db()
    assert api_key.digest == token_digest(token)
    assert api_key.previous_digest == token_digest(old_token)
    assert api_key.previous_valid_until > timezone.now()
    detail = client.get(detail_url(api_key))
    assert secret_part(token) not in detail.content.decode()
    works = {"1h": "1 hour", "24h": "24 hours", "7d": "7 days"}[grace]
    assert history_labels(detail)[0] == f"Rotated (old secret works {works})"


def test_rotate_now(client_for, org, personal, htmx_headers):
    """Rotating at once says the old secret has stopped; the reveal is a fragment for htmx."""
    api_key, old_token = personal

    response = client_for(org.member).post(
        rotate_url(api_key), {"grace": "now"}, headers=htmx_headers
    )

    assert response.status_code == 201
    assert is_fragment(response)
    assert "The old secret has stopped working." in page_text(response)
    api_key.refresh_from_db()
    assert api_key.previous_digest is None
    assert api_key.digest != token_digest(old_token)


@pytest.mark.parametrize("grace", ["", "2h", "forever"])
def test_rotate_refuses_an_unknown_grace(client_for, org, personal, grace):
    """An unknown grace answers 422 with the message and leaves the key alone."""
    api_key, _ = personal
    before, counts = key_state(api_key), key_counts()

    response = client_for(org.member).post(rotate_url(api_key), {"grace": grace})

    assert response.status_code == 422
    assert "Choose when the old secret stops." in page_text(response) or (
        "This field is required." in page_text(response)
    )
    assert key_state(api_key) == before
    assert key_counts() == counts


def test_rotate_refuses_a_revoked_key(client_for, org, personal):
    """A revoked key cannot be rotated; the page says why."""
    api_key, _ = personal
    api_key_revoke(actor=Actor(user=org.member), api_key=api_key)
    before = key_state(api_key)

    response = client_for(org.member).post(rotate_url(api_key), {"grace": "now"})

    assert response.status_code == 422
    assert REVOKED_MESSAGE in page_text(response)
    assert key_state(api_key) == before


def test_rotate_refuses_a_key_outside_a_newer_policy(client_for, org, org_key):
    """A never-expiring key cannot be rotated once its kind must expire; the page says why."""
    api_key, _ = org_key
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        require_expiry=True,
        max_lifetime_days=None,
    )
    before = key_state(api_key)

    response = client_for(org.admin).post(rotate_url(api_key), {"grace": "1h"})

    assert response.status_code == 422
    assert "This organization's policy requires these keys to expire." in page_text(response)
    assert key_state(api_key) == before


# --- delete ---------------------------------------------------------------------------------


def test_delete_asks_for_confirmation(client_for, org, personal):
    """GET on delete shows a confirmation naming the key; nothing is revoked yet."""
    api_key, _ = personal

    response = client_for(org.member).get(delete_url(api_key))

    assert response.status_code == 200
    text = page_text(response)
    assert "Revoke API key “laptop”?" in text
    assert api_key.preview in text
    api_key.refresh_from_db()
    assert not api_key.is_revoked


def test_delete_revokes_hides_and_keeps_history(client_for, org, personal):
    """Deleting revokes: gone from the list, its page still shows it revoked, with history."""
    api_key, token = personal
    client = client_for(org.member)

    response = client.post(delete_url(api_key))

    assert response.status_code == 302
    assert response.url == PERSONAL_KEYS_URL
    api_key.refresh_from_db()
    assert api_key.is_revoked
    assert api_key.revoked_by == org.member
    listing = client.get(PERSONAL_KEYS_URL)
    assert "The API key “laptop” has been revoked." in page_text(listing)
    assert detail_url(api_key) not in listing.content.decode()
    assert api_key.preview not in page_text(listing)
    detail = client.get(detail_url(api_key))
    assert detail.status_code == 200
    text = page_text(detail)
    assert "Revoked" in text
    assert "This key was revoked" in text
    assert history_labels(detail) == ["Revoked", "Created"]
    assert secret_part(token) not in detail.content.decode()


def test_delete_of_an_organization_key_returns_to_its_list(client_for, org, org_key):
    """After deleting an organization key the admin lands on the organization key list."""
    response = client_for(org.admin).post(delete_url(org_key[0]))
    assert response.url == ORGANIZATION_KEYS_URL


def test_deleting_a_revoked_key_again_is_answered_like_the_first_time(client_for, org, personal):
    """A revoked key's delete page says so; a second POST (a double click, a retry) is answered
    as the first was and changes nothing."""
    api_key, _ = personal
    client = client_for(org.member)
    first = client.post(delete_url(api_key))
    before, counts = key_state(api_key), key_counts()

    page = client.get(delete_url(api_key))
    again = client.post(delete_url(api_key), follow=True)

    assert page.status_code == 422
    assert REVOKED_MESSAGE in page_text(page)
    assert (again.redirect_chain[0][0], again.status_code) == (first.url, 200)
    assert f"The API key “{api_key.name}” has been revoked." in page_text(again)
    assert key_state(api_key) == before
    assert key_counts() == counts


# --- what every view must do ----------------------------------------------------------------


@pytest.mark.parametrize("url", [detail_url, rotate_url, delete_url])
def test_anonymous_is_sent_to_login(client_for, org, personal, url):
    """An anonymous visitor is sent to log in."""
    path = url(personal[0])
    response = client_for(None).get(path)
    assert response.status_code == 302
    assert response.url == f"/login/?next={path}"


@pytest.mark.parametrize(
    ("url", "data"),
    [
        (detail_url, {"name": "x", "status": "disabled", "preset": "custom"}),
        (rotate_url, {"grace": "now"}),
        (delete_url, {}),
    ],
)
def test_post_without_csrf_token_is_refused(client_for, org, personal, url, data):
    """Edit, rotate and delete refuse a POST without the CSRF token and change nothing."""
    api_key, _ = personal
    before, counts = key_state(api_key), key_counts()

    response = client_for(org.member, enforce_csrf_checks=True).post(url(api_key), data)

    assert response.status_code == 403
    assert key_state(api_key) == before
    assert key_counts() == counts


@pytest.mark.parametrize("url", [detail_url, rotate_url, delete_url])
def test_unknown_key_id_is_404(client_for, org, personal, url):
    """A key id that does not exist is 404, for GET and POST."""
    client = client_for(org.owner)
    assert client.get(url(999_999)).status_code == 404
    assert client.post(url(999_999), {"grace": "now"}).status_code == 404


def test_edit_follows_a_policy_changed_after_creation(client_for, org, org_key):
    """Once organization keys are capped at 90 days, an edit cannot set a year or Never."""
    api_key, _ = org_key
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        require_expiry=True,
        max_lifetime_days=90,
    )
    before = key_state(api_key)
    client = client_for(org.admin)

    for choice in ("365", "never"):
        response = client.post(detail_url(api_key), edit_data(api_key, expiration=choice))
        assert response.status_code == 422
        assert "Choose an expiration the policy allows." in page_text(response)
    assert key_state(api_key) == before
    assert client.post(detail_url(api_key), edit_data(api_key, expiration="90")).status_code == 302
    api_key.refresh_from_db()
    assert api_key.expires_at is not None


def test_edit_keeps_an_older_key_that_exceeds_the_policy(client_for, org, org_key):
    """Renaming a key flagged "Exceeds policy" keeps its expiry: it is never silently changed."""
    api_key, _ = org_key
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        require_expiry=True,
        max_lifetime_days=30,
    )

    response = client_for(org.admin).post(
        detail_url(api_key), edit_data(api_key, name="renamed", expiration="keep")
    )

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert (api_key.name, api_key.expires_at) == ("renamed", None)


def test_permissions_beyond_the_owners_current_role_are_marked(client_for, org):
    """A personal key made as an admin, whose owner is now a member, marks what it cannot use."""
    api_key, _ = new_key(org, owner=org.admin, permissions=["secrets:read", "secrets:write"])
    membership = org.membership(org.admin)
    membership.role = "member"
    membership.save(update_fields=["role"])

    text = plain_text(client_for(org.admin).get(detail_url(api_key)))

    assert "Set secret values secrets:write Not in owner's role" in text
    assert "List secret names secrets:read Not in owner's role" not in text
