"""Who may see and change which keys, per DESIGN.md's role table; other tenants always 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Role
from apikeys.models import ApiKey
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import (
    create_data,
    create_url,
    delete_url,
    detail_url,
    edit_data,
    key_counts,
    key_state,
    new_key,
    refusals,
    rotate_url,
)
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

KEY_URLS = {"detail": detail_url, "rotate": rotate_url, "delete": delete_url}


def post_data(api_key: ApiKey, page: str) -> dict:
    """Return a valid POST for a key page: an edit, a rotation, or a delete."""
    return {
        "detail": edit_data(api_key, name="changed", status="disabled", expiration="keep"),
        "rotate": {"grace": "now"},
        "delete": {},
    }[page]


@pytest.fixture
def member_key(org) -> ApiKey:
    """Return the plain member's personal key."""
    return new_key(org, name="member laptop")[0]


@pytest.fixture
def second_member(org):
    """Return another plain member of the organization."""
    return MembershipFactory(organization=org.organization, role=Role.MEMBER).user


# --- members --------------------------------------------------------------------------------


@pytest.mark.parametrize("page", KEY_URLS)
def test_member_cannot_reach_another_members_key(client_for, org, member_key, second_member, page):
    """Another member's personal key is 404 to a member, for GET and POST, and stays as it was."""
    before, counts = key_state(member_key), key_counts()
    client = client_for(second_member)
    url = KEY_URLS[page](member_key)

    assert client.get(url).status_code == 404
    response = client.post(url, post_data(member_key, page))

    assert response.status_code == 404
    assert member_key.name not in page_text(response)
    assert key_state(member_key) == before
    assert key_counts() == counts
    attempted = {"detail": "edit", "rotate": "rotate", "delete": "revoke"}[page]
    assert refusals(member_key) == [("see", "web"), (attempted, "web")]


@pytest.mark.parametrize("kind", ["org", "project", "svc"])
@pytest.mark.parametrize("page", KEY_URLS)
def test_member_cannot_reach_shared_keys(client_for, org, tree, bot, kind, page):
    """Organization, project and service-account keys are 404 to members."""
    owner = {"org": None, "project": tree.project, "svc": bot}[kind]
    api_key, _ = new_key(org, kind, owner=owner)
    before = key_state(api_key)
    client = client_for(org.member)
    url = KEY_URLS[page](api_key)

    assert client.get(url).status_code == 404
    assert client.post(url, post_data(api_key, page)).status_code == 404
    assert key_state(api_key) == before


@pytest.mark.parametrize("kind", ["org", "project", "svc"])
def test_member_cannot_create_shared_keys(client_for, org, tree, bot, kind):
    """Members get 404 on organization, project and service-account key creation."""
    owner = {"org": None, "project": tree.project.pk, "svc": bot.pk}[kind]
    url = create_url(kind, owner)
    before = key_counts()
    client = client_for(org.member)

    assert client.get(url).status_code == 404
    assert client.post(url, create_data()).status_code == 404
    assert key_counts() == before
    event = AuditEvent.objects.get(action="api_key.refused")
    assert (event.actor_user, event.detail["action"], event.detail["door"]) == (
        org.member,
        "create",
        "web",
    )


def test_member_manages_their_own_key(client_for, org, member_key):
    """A member edits, rotates and revokes their own personal key."""
    client = client_for(org.member)

    assert client.post(detail_url(member_key), post_data(member_key, "detail")).status_code == 302
    assert client.post(rotate_url(member_key), {"grace": "now"}).status_code == 201
    assert client.post(delete_url(member_key)).status_code == 302
    member_key.refresh_from_db()
    assert (member_key.name, member_key.state) == ("changed", "revoked")


# --- admins ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["member", "owner"])
def test_admin_sees_but_cannot_change_someone_elses_personal_key(client_for, org, target):
    """An admin opens another person's personal key (200) but edit, rotate and delete are 403."""
    api_key, _ = new_key(org, owner=getattr(org, target), name="someone's laptop")
    before, counts = key_state(api_key), key_counts()
    client = client_for(org.admin)

    detail = client.get(detail_url(api_key))
    assert detail.status_code == 200
    body = detail.content.decode()
    assert 'id="key-edit"' not in body
    assert rotate_url(api_key) not in body
    assert delete_url(api_key) not in body
    for page in ("rotate", "delete"):
        assert client.get(KEY_URLS[page](api_key)).status_code == 403
    for page in KEY_URLS:
        response = client.post(KEY_URLS[page](api_key), post_data(api_key, page))
        assert response.status_code == 403, page

    assert key_state(api_key) == before
    assert key_counts() == counts
    assert refusals(api_key) == [("rename", "web"), ("rotate", "web"), ("revoke", "web")]


@pytest.mark.parametrize("kind", ["org", "project", "svc"])
def test_admin_manages_shared_keys(client_for, org, tree, bot, kind):
    """An admin edits, rotates and revokes organization, project and service-account keys."""
    owner = {"org": None, "project": tree.project, "svc": bot}[kind]
    api_key, _ = new_key(org, kind, owner=owner, name="shared")
    client = client_for(org.admin)

    assert client.get(detail_url(api_key)).status_code == 200
    assert client.post(detail_url(api_key), post_data(api_key, "detail")).status_code == 302
    assert client.post(rotate_url(api_key), {"grace": "1h"}).status_code == 201
    assert client.post(delete_url(api_key)).status_code == 302
    api_key.refresh_from_db()
    assert (api_key.name, api_key.state, api_key.revoked_by) == ("changed", "revoked", org.admin)


# --- owners ---------------------------------------------------------------------------------


def test_owner_revokes_a_members_personal_key(client_for, org, member_key):
    """An owner may revoke a member's personal key; the member sees it revoked."""
    client = client_for(org.owner)

    assert client.get(delete_url(member_key)).status_code == 200
    response = client.post(delete_url(member_key))

    assert response.status_code == 302
    member_key.refresh_from_db()
    assert member_key.is_revoked
    assert member_key.revoked_by == org.owner
    text = page_text(client_for(org.member).get(detail_url(member_key)))
    assert "This key was revoked" in text
    assert str(org.owner) in text


def test_owner_cannot_rotate_a_members_personal_key(client_for, org, member_key):
    """Rotating would hand the owner a working secret of the member's key: refused, unchanged."""
    before = key_state(member_key)

    response = client_for(org.owner).post(rotate_url(member_key), {"grace": "now"})

    assert response.status_code in (403, 404)
    assert key_state(member_key) == before


def test_owner_cannot_edit_a_members_personal_key(client_for, org, member_key):
    """An owner cannot rename, disable or re-permission a member's personal key."""
    before = key_state(member_key)

    response = client_for(org.owner).post(
        detail_url(member_key),
        edit_data(member_key, permissions=["members:delete"], expiration="keep"),
    )

    assert response.status_code in (403, 404)
    assert key_state(member_key) == before


# --- other organizations --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "org", "project", "svc"])
@pytest.mark.parametrize("page", KEY_URLS)
def test_nobody_reaches_another_organizations_keys(client_for, org, other_org, kind, page):
    """Another organization's key is 404 through either organization's URLs, and unchanged."""
    from tests.apikeys.conftest import build_tree
    from tests.factories import ServiceAccountFactory

    owner = {
        "user": None,
        "org": None,
        "project": build_tree(other_org).project,
        "svc": ServiceAccountFactory(organization=other_org.organization),
    }[kind]
    foreign, _ = new_key(other_org, kind, owner=owner, name="globex key")
    before = key_state(foreign)

    for person in (org.owner, org.admin, org.member):
        client = client_for(person)
        for org_slug in ("acme", "globex"):
            url = KEY_URLS[page](foreign, org=org_slug)
            assert client.get(url).status_code == 404, (person, url)
            response = client.post(url, post_data(foreign, page))
            assert response.status_code == 404, (person, url)
            assert "globex key" not in page_text(response)
    assert key_state(foreign) == before


@pytest.mark.parametrize("page", KEY_URLS)
def test_outsider_and_anonymous_cannot_reach_a_key(client_for, org, outsider, member_key, page):
    """Someone of no organization gets 404; an anonymous visitor is sent to log in."""
    url = KEY_URLS[page](member_key)
    before = key_state(member_key)

    assert client_for(outsider).get(url).status_code == 404
    assert client_for(outsider).post(url, post_data(member_key, page)).status_code == 404
    assert client_for(None).post(url, post_data(member_key, page)).status_code == 302
    assert key_state(member_key) == before


@pytest.mark.parametrize("kind", ["project", "svc"])
def test_create_for_another_organizations_owner_is_404_for_its_own_people_too(
    client_for, org, other_org, tree, bot, kind
):
    """Globex's owner cannot create keys for Acme's project or service account via Globex URLs."""
    owner = tree.project.pk if kind == "project" else bot.pk
    before = key_counts()

    response = client_for(other_org.owner).post(
        create_url(kind, owner, org="globex"), create_data()
    )

    assert response.status_code == 404
    assert key_counts() == before


def test_an_edit_that_changes_nothing_is_still_judged(client_for, org):
    """Saving another member's key unchanged, or "enabling" it while active, is refused to an
    admin as any edit would be; an owner disabling it twice is answered alike and recorded once."""
    api_key, _ = new_key(org, name="laptop")
    admin, owner = client_for(org.admin), client_for(org.owner)
    status_url = reverse("api_key_status", kwargs={"org": "acme", "pk": api_key.pk})

    unchanged = admin.post(detail_url(api_key), edit_data(api_key, expiration="keep"))
    enable = admin.post(status_url, {"status": "active"})
    first = owner.post(status_url, {"status": "disabled"})
    second = owner.post(status_url, {"status": "disabled"})

    assert (unchanged.status_code, enable.status_code) == (403, 403)
    assert (first.status_code, second.status_code) == (302, 302)
    api_key.refresh_from_db()
    assert api_key.status == "disabled"
    updates = AuditEvent.objects.filter(action="api_key.updated")
    assert [(e.actor_user, e.detail["changed"]) for e in updates] == [(org.owner, ["status"])]
    assert refusals(api_key) == [("rename", "web"), ("enable", "web")]
