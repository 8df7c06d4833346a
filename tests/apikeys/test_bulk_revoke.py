"""Revoking many keys at once from a keys table: selection, confirmation, reach, query counts."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.access import Actor
from accounts.models import AuditEvent, Role
from apikeys.demo import seed_keys
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_bulk_revoke, api_key_revoke
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import ORGANIZATION_KEYS_URL, PERSONAL_KEYS_URL, new_key
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db
REVOKE_URL = reverse("api_key_bulk_revoke", kwargs={"org": "acme"})


def post(client: Client, ids, *, confirm: bool, next_url: str = ORGANIZATION_KEYS_URL, **extra):
    data = {"ids": [str(i) for i in ids], "next": next_url}
    if confirm:
        data["confirm"] = "yes"
    return client.post(REVOKE_URL, data, **extra)


def revoked(*keys) -> list[bool]:
    return [ApiKey.objects.get(pk=key.pk).revoked_at is not None for key in keys]


def bulk_events():
    return AuditEvent.objects.filter(action="api_key.revoked", detail__bulk=True)


# --- confirmation ---------------------------------------------------------------------------


def test_posting_a_selection_asks_for_confirmation_and_changes_nothing(client_for, org):
    """Without the confirmation step nothing is revoked; the step names how many keys."""
    keys = [new_key(org, KeyKind.ORGANIZATION, name=f"ci {i}")[0] for i in range(3)]
    client = client_for(org.owner)

    response = post(client, [k.pk for k in keys], confirm=False)

    assert response.status_code == 200
    text = page_text(response)
    assert "Revoke 3 keys?" in text
    for key in keys:
        assert key.name in text and key.preview in text
    assert revoked(*keys) == [False, False, False]
    assert not bulk_events().exists()


def test_the_confirmation_comes_as_a_dialog_fragment_for_htmx(client_for, org):
    key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci")
    response = post(client_for(org.owner), [key.pk], confirm=False, HTTP_HX_REQUEST="true")
    text = page_text(response)
    assert "Revoke 1 key?" in text
    assert "<html" not in text
    assert 'name="confirm" value="yes"' in text


def test_confirming_revokes_in_one_go_and_says_how_many(client_for, org):
    keys = [new_key(org, KeyKind.ORGANIZATION, name=f"ci {i}")[0] for i in range(3)]
    keep, _ = new_key(org, KeyKind.ORGANIZATION, name="keep")
    client = client_for(org.owner)
    back = ORGANIZATION_KEYS_URL + "?q=ci&status="

    response = post(client, [k.pk for k in keys], confirm=True, next_url=back)

    assert response.status_code == 302
    assert response["Location"] == back  # back to the same filtered page
    assert revoked(*keys) == [True, True, True]
    assert revoked(keep) == [False]
    assert "3 keys revoked." in page_text(client.get(back))
    events = bulk_events()
    assert events.count() == 3
    assert {e.target_id for e in events} == {str(k.pk) for k in keys}
    assert {e.actor_user_id for e in events} == {org.owner.pk}
    for key in keys:
        key.refresh_from_db()
        assert key.revoked_by == org.owner


def test_an_empty_selection_is_refused_with_a_message(client_for, org):
    key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci")
    client = client_for(org.owner)
    for ids in ([], ["", "abc", "-3"]):
        response = client.post(REVOKE_URL, {"ids": ids, "confirm": "yes"}, follow=True)
        assert "Select at least one key to revoke." in page_text(response)
    assert revoked(key) == [False]


def test_get_is_not_allowed(client_for, org):
    assert client_for(org.owner).get(REVOKE_URL).status_code == 405


def test_a_foreign_next_url_is_not_followed(client_for, org):
    key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci")
    for target in ("https://evil.example/", "//evil.example/o/acme/", "/o/globex/api-keys/"):
        response = post(client_for(org.owner), [key.pk], confirm=True, next_url=target)
        assert response["Location"] == PERSONAL_KEYS_URL


# --- reach: what the viewer may not see or revoke is ignored ---------------------------------


def test_ids_out_of_reach_are_ignored_and_not_counted(client_for, org, other_org):
    """Another organization's key and another member's personal key are never changed."""
    mine, _ = new_key(org, name="laptop")
    theirs, _ = new_key(org, owner=org.admin, name="admin laptop")
    org_key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci")
    foreign, _ = new_key(other_org, KeyKind.ORGANIZATION, name="globex ci")
    client = client_for(org.member)

    response = post(
        client,
        [mine.pk, theirs.pk, org_key.pk, foreign.pk, 999999],
        confirm=True,
        next_url=PERSONAL_KEYS_URL,
    )

    assert revoked(mine, theirs, org_key, foreign) == [True, False, False, False]
    assert "1 key revoked." in page_text(client.get(response["Location"]))
    assert bulk_events().count() == 1


def test_only_foreign_ids_revoke_nothing(client_for, org, other_org):
    foreign, _ = new_key(other_org, KeyKind.ORGANIZATION, name="globex ci")
    client = client_for(org.owner)
    asked = page_text(post(client, [foreign.pk], confirm=False, follow=True))
    assert "None of the selected keys is one you may revoke." in asked
    confirmed = page_text(post(client, [foreign.pk], confirm=True, follow=True))
    assert "No key was revoked: none of them is one you may revoke." in confirmed
    assert revoked(foreign) == [False]
    assert not bulk_events().exists()


def test_htmx_refusals_stay_in_the_dialog(client_for, org, other_org):
    """An empty or foreign selection answers in the dialog (422), never with the list in it."""
    foreign, _ = new_key(other_org, KeyKind.ORGANIZATION, name="globex ci")
    client = client_for(org.owner)
    for ids, message in (
        ([], "Select at least one key to revoke."),
        ([foreign.pk], "None of the selected keys is one you may revoke."),
    ):
        response = post(client, ids, confirm=False, HTTP_HX_REQUEST="true")
        assert response.status_code == 422
        text = page_text(response)
        assert message in text
        assert 'id="key-table"' not in text


def test_ids_that_are_not_plain_numbers_are_dropped(client_for, org):
    key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci")
    ids = ["²", "٣", "9" * 40, str(key.pk)]
    response = post(client_for(org.owner), ids, confirm=True)
    assert response.status_code == 302
    assert revoked(key) == [True]


def test_admins_revoke_organization_keys_but_not_members_personal_keys(org):
    member_key, _ = new_key(org, name="laptop")
    own_key, _ = new_key(org, owner=org.admin, name="admin laptop")
    org_key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci")

    count = api_key_bulk_revoke(
        actor=Actor(user=org.admin),
        organization=org.organization,
        ids=[member_key.pk, own_key.pk, org_key.pk],
    )

    assert count == 2
    assert revoked(member_key, own_key, org_key) == [False, True, True]


def test_owners_revoke_members_personal_keys(org):
    member_key, _ = new_key(org, name="laptop")
    count = api_key_bulk_revoke(
        actor=Actor(user=org.owner), organization=org.organization, ids=[member_key.pk]
    )
    assert count == 1
    assert revoked(member_key) == [True]


def test_already_revoked_keys_keep_their_first_revocation(org):
    key, _ = new_key(org, KeyKind.ORGANIZATION, name="ci")
    api_key_revoke(actor=Actor(user=org.admin), api_key=key)
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    count = api_key_bulk_revoke(
        actor=Actor(user=org.owner), organization=org.organization, ids=[key.pk]
    )
    assert count == 0
    key.refresh_from_db()
    assert key.revoked_at == first
    assert key.revoked_by == org.admin


def test_revoked_keys_are_refused_by_the_api_at_once(client_for, org):
    key, token = new_key(org, KeyKind.ORGANIZATION, name="ci", permissions=["projects:read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert Client().get("/api/v1/whoami", **auth).status_code == 200
    post(client_for(org.owner), [key.pk], confirm=True)
    response = Client().get("/api/v1/whoami", **auth)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "key_revoked"


# --- cost -----------------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [100, 10_000])
def test_revoking_fifty_keys_takes_a_fixed_number_of_queries(
    org, existing, django_assert_max_num_queries
):
    """Lock, update and history: the same few statements for 50 keys among 100 or 10,000."""
    seed_keys(organization=org.organization, count=existing, created_by=org.owner)
    ids = list(ApiKey.objects.values_list("pk", flat=True)[:50])
    assert len(ids) == 50
    owner = Actor(user=org.owner, membership=org.membership(org.owner))
    # 3 statements, the savepoint pair of atomic() inside the test's transaction, and the
    # look for refused ids (none here).
    with django_assert_max_num_queries(6):
        count = api_key_bulk_revoke(actor=owner, organization=org.organization, ids=ids)
    assert count == 50
    assert bulk_events().count() == 50


@pytest.mark.parametrize("existing", [100, 10_000])
def test_the_whole_revoke_request_takes_a_fixed_number_of_queries(
    client_for, org, existing, django_assert_max_num_queries
):
    seed_keys(organization=org.organization, count=existing, created_by=org.owner)
    ids = list(ApiKey.objects.values_list("pk", flat=True)[:50])
    client = client_for(org.owner)
    client.get(ORGANIZATION_KEYS_URL)  # the session exists, as in a browser
    with django_assert_max_num_queries(12):
        response = post(client, ids, confirm=True)
    assert response.status_code == 302
    assert ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=False).count() == 50


# --- concurrency (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks need PostgreSQL (SQLite serialises)"
)
def test_overlapping_revokes_at_once_revoke_and_record_each_key_once(org):
    keys = [new_key(org, KeyKind.ORGANIZATION, name=f"ci {i}")[0] for i in range(30)]
    ids = [k.pk for k in keys]
    sets = [ids[:20], ids[10:], ids[5:25], ids]
    counts, errors = [], []
    barrier = threading.Barrier(len(sets))

    def revoke(selection):
        try:
            barrier.wait()
            counts.append(
                api_key_bulk_revoke(
                    actor=Actor(user=org.owner), organization=org.organization, ids=selection
                )
            )
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=revoke, args=(s,)) for s in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sum(counts) == 30
    assert ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=False).count() == 30
    per_key = [bulk_events().filter(target_id=str(pk)).count() for pk in ids]
    assert per_key == [1] * 30


def test_members_may_bulk_revoke_only_from_their_own_list(client_for, org):
    other = MembershipFactory(organization=org.organization, role=Role.MEMBER).user
    theirs, _ = new_key(org, owner=other, name="theirs")
    response = post(client_for(org.member), [theirs.pk], confirm=False, follow=True)
    assert "None of the selected keys is one you may revoke." in page_text(response)
    assert revoked(theirs) == [False]
