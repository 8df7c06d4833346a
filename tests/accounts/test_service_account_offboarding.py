"""Offboarding service accounts: revoke all their keys, deactivate, delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent, ServiceAccount
from accounts.services import (
    service_account_delete,
    service_account_revoke_keys,
    service_account_set_active,
)
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_create
from keyportal_cli.tokens import generate_token, token_digest, token_preview
from tests.accounts.helpers import page_text, row_counts
from tests.factories import ServiceAccountFactory

pytestmark = pytest.mark.django_db

IDENTIFIER = "deploy-bot@acme.serviceaccounts.keyportal"
WHOAMI = "/api/v1/whoami"


def url(name: str, account: ServiceAccount, org: str = "acme") -> str:
    return reverse(name, kwargs={"org": org, "pk": account.pk})


def revoke_url(account: ServiceAccount, org: str = "acme") -> str:
    return url("service_account_revoke_keys", account, org)


def delete_url(account: ServiceAccount, org: str = "acme") -> str:
    return url("service_account_delete", account, org)


def toggle_url(account: ServiceAccount, org: str = "acme") -> str:
    return url("service_account_toggle", account, org)


def detail_url(account: ServiceAccount, org: str = "acme") -> str:
    return url("service_account_detail", account, org)


def make_key(org, kind: str = KeyKind.SERVICE_ACCOUNT, owner=None) -> tuple[ApiKey, str]:
    """Return (key, token): a personal key made by its owner, any other by the owner of `org`."""
    personal = kind == KeyKind.USER
    return api_key_create(
        actor=Actor(user=owner if personal else org.owner),
        organization=org.organization,
        kind=kind,
        owner=owner,
        permissions=["projects:read"],
        # The default policy wants personal keys to expire.
        expires_at=timezone.now() + timedelta(days=7) if personal else None,
    )


def whoami(token: str):
    return Client().get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_revoked_by_api(token: str) -> None:
    response = whoami(token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "key_revoked"


def key_state() -> list[tuple]:
    """Return every key's revocation columns, to prove nothing changed."""
    return list(ApiKey.objects.order_by("pk").values_list("pk", "revoked_at", "revoked_by"))


def flashed(response) -> list[str]:
    return [message.message for message in get_messages(response.wsgi_request)]


@pytest.fixture
def bot(org) -> ServiceAccount:
    return ServiceAccountFactory(organization=org.organization, name="deploy-bot")


@pytest.fixture
def bot_keys(org, bot) -> list[tuple[ApiKey, str]]:
    """Return three live keys of the bot, with their tokens."""
    return [make_key(org, owner=bot) for _ in range(3)]


@pytest.fixture
def bystanders(org, other_org, bot) -> dict[str, tuple[ApiKey, str]]:
    """Return live keys that offboarding the bot must not touch, and one already revoked."""
    other_account = ServiceAccountFactory(organization=org.organization, name="release-bot")
    foreign_account = ServiceAccountFactory(organization=other_org.organization, name="deploy-bot")
    keys = {
        "other_account": make_key(org, owner=other_account),
        "organization": make_key(org, kind=KeyKind.ORGANIZATION),
        "personal": make_key(org, kind=KeyKind.USER, owner=org.admin),
        "other_org": make_key(other_org, owner=foreign_account),
        "already_revoked": make_key(org, owner=bot),
    }
    long_ago = timezone.now() - timedelta(days=40)
    ApiKey.objects.filter(pk=keys["already_revoked"][0].pk).update(
        revoked_at=long_ago, revoked_by=org.admin
    )
    return keys


def bulk_keys(org, account: ServiceAccount, count: int) -> None:
    """Insert `count` live keys of `account` in bulk."""
    ApiKey.objects.bulk_create(
        [
            ApiKey(
                organization=org.organization,
                kind=KeyKind.SERVICE_ACCOUNT,
                owner_service_account=account,
                created_by=org.owner,
                name=f"bulk-{i}",
                digest=token_digest(token := generate_token(KeyKind.SERVICE_ACCOUNT)),
                preview=token_preview(token),
                permissions=["projects:read"],
            )
            for i in range(count)
        ],
        batch_size=2000,
    )


def updates_of_keys(captured) -> list[str]:
    return [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].lstrip().upper().startswith("UPDATE") and "apikeys_apikey" in query["sql"]
    ]


# --- revoke all keys ------------------------------------------------------------------------


def test_revoke_keys_revokes_only_the_accounts_live_keys(org, bot, bot_keys, bystanders):
    """Only the bot's live keys are revoked; a key revoked earlier keeps its date and revoker."""
    before = {name: ApiKey.objects.get(pk=key.pk) for name, (key, _token) in bystanders.items()}

    revoked = service_account_revoke_keys(actor=Actor(user=org.owner), service_account=bot)

    assert revoked == 3
    for key, _token in bot_keys:
        key.refresh_from_db()
        assert key.revoked_at is not None
        assert key.revoked_by == org.owner
    for name, old in before.items():
        now = ApiKey.objects.get(pk=old.pk)
        assert (now.revoked_at, now.revoked_by_id) == (old.revoked_at, old.revoked_by_id), name
    for name in ("other_account", "organization", "personal", "other_org"):
        assert whoami(bystanders[name][1]).status_code == 200, name
    event = AuditEvent.objects.get(action="service_account.keys_revoked")
    assert (event.actor_user, event.target_id, event.detail) == (
        org.owner,
        str(bot.pk),
        {"keys_revoked": 3},
    )


def test_revoking_10000_keys_is_one_update(org, bot, django_assert_num_queries):
    """Revoking 10,000 keys is one UPDATE of the keys table, and reads no key."""
    bulk_keys(org, bot, 10_000)

    # SAVEPOINT, UPDATE of the keys, INSERT of the history row, RELEASE SAVEPOINT.
    with django_assert_num_queries(4) as captured:
        revoked = service_account_revoke_keys(actor=Actor(user=org.owner), service_account=bot)

    assert revoked == 10_000
    assert len(updates_of_keys(captured)) == 1
    assert not [q for q in captured.captured_queries if q["sql"].upper().startswith("SELECT")]
    assert not ApiKey.objects.filter(owner_service_account=bot, revoked_at__isnull=True).exists()


def test_revoke_page_shows_the_exact_count(client_for, org, bot, bot_keys, bystanders):
    """The confirmation names the account and the number of live keys, not the revoked one."""
    response = client_for(org.admin).get(revoke_url(bot))

    assert response.status_code == 200
    text = page_text(response)
    assert IDENTIFIER in text
    assert "3 live API keys" in text
    assert "Revoke 3 keys</button>" in text
    assert 'name="confirm" value="yes"' in text
    assert ApiKey.objects.filter(owner_service_account=bot, revoked_at__isnull=True).count() == 3


def test_detail_page_offers_revoke_with_the_count(client_for, org, bot, bot_keys):
    """The service account's page has a danger zone whose revoke button says how many keys."""
    text = page_text(client_for(org.owner).get(detail_url(bot)))

    assert 'id="danger-heading">Danger zone' in text
    assert f'href="{revoke_url(bot)}">Revoke all 3 keys…</a>' in text
    assert f'href="{delete_url(bot)}">Delete service account…</a>' in text


def test_detail_page_hides_revoke_without_live_keys(client_for, org, bot):
    """A service account without live keys offers no revoke button."""
    text = page_text(client_for(org.owner).get(detail_url(bot)))

    assert revoke_url(bot) not in text
    assert delete_url(bot) in text


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_confirming_revokes_the_keys_and_the_api_refuses_them(client_for, org, bot, bot_keys, role):
    """Confirming revokes every live key; the API refuses each on the very next request."""
    for _key, token in bot_keys:
        assert whoami(token).status_code == 200
    actor = getattr(org, role)

    response = client_for(actor).post(revoke_url(bot), {"confirm": "yes"})

    assert response.status_code == 302
    assert response.url == detail_url(bot)
    assert flashed(response) == [f"3 keys of {IDENTIFIER} revoked."]
    for _key, token in bot_keys:
        assert_revoked_by_api(token)
    bot.refresh_from_db()
    assert bot.is_active
    event = AuditEvent.objects.get(action="service_account.keys_revoked")
    assert (event.actor_user, event.origin, event.ip_address, event.detail) == (
        actor,
        "web",
        "127.0.0.1",
        {"keys_revoked": 3},
    )


def test_revoke_one_key_says_key(client_for, org, bot):
    """A single key reads in the singular, on the button and in the message."""
    make_key(org, owner=bot)
    client = client_for(org.owner)
    assert "Revoke 1 key…" in page_text(client.get(detail_url(bot)))

    response = client.post(revoke_url(bot), {"confirm": "yes"})

    assert flashed(response) == [f"1 key of {IDENTIFIER} revoked."]


def test_revoke_without_live_keys_changes_nothing(client_for, org, bot):
    """With no live key there is nothing to revoke and nothing is recorded."""
    client = client_for(org.owner)
    assert "there is nothing to revoke" in page_text(client.get(revoke_url(bot)))

    response = client.post(revoke_url(bot), {"confirm": "yes"})

    assert response.status_code == 422
    assert f"{IDENTIFIER} has no live key to revoke." in page_text(response)
    assert not AuditEvent.objects.filter(action="service_account.keys_revoked").exists()


# --- confirmation ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", [{}, {"confirm": "no"}, {"confirm": ""}])
@pytest.mark.parametrize("page", ["revoke", "delete"])
def test_post_without_confirmation_changes_nothing(client_for, org, bot, bot_keys, page, data):
    """A POST without confirm=yes is refused with 400 and a message; nothing changes."""
    target = revoke_url(bot) if page == "revoke" else delete_url(bot)
    keys, rows = key_state(), row_counts()

    response = client_for(org.owner).post(target, data)

    assert response.status_code == 400
    text = page_text(response)
    assert 'role="alert"' in text
    assert "Nothing was changed: confirm with the button below." in text
    assert "3 live API keys" in text
    assert (key_state(), row_counts()) == (keys, rows)
    for _key, token in bot_keys:
        assert whoami(token).status_code == 200


# --- deactivate and reactivate --------------------------------------------------------------


def test_deactivate_confirmation_names_the_keys_to_revoke(client_for, org, bot, bot_keys):
    """The deactivation page says how many keys it revokes."""
    text = page_text(client_for(org.owner).get(toggle_url(bot)))

    assert "3 live API keys</strong> will be revoked" in text
    assert "Deactivate and revoke 3 keys</button>" in text


def test_deactivating_revokes_and_reactivating_does_not_restore(
    client_for, org, bot, bot_keys, bystanders
):
    """Deactivation revokes the live keys; reactivation brings none back."""
    client = client_for(org.admin)
    others = {
        name: ApiKey.objects.get(pk=key.pk).revoked_at for name, (key, _) in bystanders.items()
    }

    response = client.post(toggle_url(bot), {"active": "0"})

    assert flashed(response) == [f"{IDENTIFIER} is deactivated; 3 keys revoked."]
    for _key, token in bot_keys:
        assert_revoked_by_api(token)
    event = AuditEvent.objects.get(action="service_account.deactivated")
    assert (event.actor_user, event.ip_address, event.detail) == (
        org.admin,
        "127.0.0.1",
        {"keys_revoked": 3},
    )

    reactivation = client_for(org.owner).post(toggle_url(bot), {"active": "1"})

    assert flashed(reactivation) == [f"{IDENTIFIER} is active. Its revoked keys stay revoked."]
    bot.refresh_from_db()
    assert bot.is_active
    assert not ApiKey.objects.filter(owner_service_account=bot, revoked_at__isnull=True).exists()
    for _key, token in bot_keys:
        assert_revoked_by_api(token)
    assert AuditEvent.objects.get(action="service_account.activated").detail == {}
    assert {
        name: ApiKey.objects.get(pk=key.pk).revoked_at for name, (key, _) in bystanders.items()
    } == others


def test_deactivation_is_one_update_of_the_keys(org, bot, django_assert_num_queries):
    """Deactivating revokes its keys in a single UPDATE."""
    bulk_keys(org, bot, 50)

    # SAVEPOINT, UPDATE of the account, UPDATE of the keys, INSERT of the history row, RELEASE.
    with django_assert_num_queries(5) as captured:
        revoked = service_account_set_active(
            actor=Actor(user=org.owner), service_account=bot, active=False
        )

    assert revoked == 50
    assert len(updates_of_keys(captured)) == 1


def test_new_keys_after_reactivation_work(org, bot, bot_keys):
    """After reactivating, a new key works while the old ones stay revoked."""
    actor = Actor(user=org.owner)
    service_account_set_active(actor=actor, service_account=bot, active=False)
    service_account_set_active(actor=actor, service_account=bot, active=True)

    _key, token = make_key(org, owner=bot)

    assert whoami(token).status_code == 200
    assert_revoked_by_api(bot_keys[0][1])


# --- delete ---------------------------------------------------------------------------------


def test_delete_page_shows_the_exact_count(client_for, org, bot, bot_keys, bystanders):
    """The delete confirmation names the account and the number of keys it revokes."""
    response = client_for(org.owner).get(delete_url(bot))

    assert response.status_code == 200
    text = page_text(response)
    assert IDENTIFIER in text
    assert "3 live API keys</strong> will be revoked" in text
    assert "Delete service account and revoke 3 keys</button>" in text
    assert ServiceAccount.objects.filter(pk=bot.pk).exists()


def test_delete_revokes_deletes_and_records(client_for, org, bot, bot_keys, bystanders):
    """Deleting revokes the keys, deletes the account and its keys, and records who did it."""
    tokens = [token for _key, token in bot_keys]
    history = AuditEvent.objects.filter(action="api_key.created").count()
    others = {
        name: ApiKey.objects.get(pk=key.pk).revoked_at for name, (key, _) in bystanders.items()
    }
    del others["already_revoked"]  # the bot's own: deleted with it

    response = client_for(org.admin).post(delete_url(bot), {"confirm": "yes"})

    assert response.status_code == 302
    assert response.url == reverse("service_account_list", kwargs={"org": "acme"})
    assert flashed(response) == [f"{IDENTIFIER} deleted; 3 keys revoked."]
    assert not ServiceAccount.objects.filter(pk=bot.pk).exists()
    assert not ApiKey.objects.filter(owner_service_account_id=bot.pk).exists()
    for token in tokens:
        assert whoami(token).status_code == 401
    assert {
        name: ApiKey.objects.get(pk=bystanders[name][0].pk).revoked_at for name in others
    } == others
    event = AuditEvent.objects.get(action="service_account.deleted")
    assert (
        event.organization,
        event.actor_user,
        event.origin,
        event.ip_address,
        event.target_type,
        event.target_id,
        event.target_label,
    ) == (
        org.organization,
        org.admin,
        "web",
        "127.0.0.1",
        "serviceaccount",
        str(bot.pk),
        IDENTIFIER,
    )
    assert event.detail == {"identifier": IDENTIFIER, "name": "deploy-bot", "keys_revoked": 3}
    # The keys' own history stays.
    assert AuditEvent.objects.filter(action="api_key.created").count() == history


def test_delete_revokes_in_one_update(org, bot):
    """Deleting revokes the live keys in one UPDATE before the rows go."""
    bulk_keys(org, bot, 100)

    with CaptureQueriesContext(connection) as captured:
        revoked = service_account_delete(actor=Actor(user=org.owner), service_account=bot)

    assert revoked == 100
    assert len(updates_of_keys(captured)) == 1
    assert not ApiKey.objects.filter(owner_service_account_id__isnull=False).exists()


def test_delete_without_keys_says_none_revoked(client_for, org, bot):
    """Deleting an account without keys works and says no key was revoked."""
    response = client_for(org.owner).post(delete_url(bot), {"confirm": "yes"})

    assert flashed(response) == [f"{IDENTIFIER} deleted; 0 keys revoked."]
    assert not ServiceAccount.objects.exists()


# --- who may ---------------------------------------------------------------------------------


def test_member_and_outsider_get_404(client_for, org, bot, bot_keys, outsider):
    """Members and outsiders get 404 on both pages, by GET and POST, and change nothing."""
    keys, rows = key_state(), row_counts()
    for person in (org.member, outsider):
        client = client_for(person)
        for target in (revoke_url(bot), delete_url(bot)):
            assert client.get(target).status_code == 404
            assert client.post(target, {"confirm": "yes"}).status_code == 404
    assert (key_state(), row_counts()) == (keys, rows)


def test_another_organizations_account_is_404(client_for, org, other_org):
    """An admin of Acme gets 404 for Globex's service account, by either URL; nothing changes."""
    theirs = ServiceAccountFactory(organization=other_org.organization, name="their-bot")
    _key, token = make_key(other_org, owner=theirs)
    keys, rows = key_state(), row_counts()
    client = client_for(org.owner)
    for target in (
        revoke_url(theirs),
        delete_url(theirs),
        revoke_url(theirs, org="globex"),
        delete_url(theirs, org="globex"),
    ):
        assert client.get(target).status_code == 404
        assert client.post(target, {"confirm": "yes"}).status_code == 404
    assert (key_state(), row_counts()) == (keys, rows)
    assert whoami(token).status_code == 200


def test_anonymous_is_sent_to_login(org, bot):
    """Anonymous people are sent to log in."""
    for target in (revoke_url(bot), delete_url(bot)):
        response = Client().post(target, {"confirm": "yes"})
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
    assert ServiceAccount.objects.filter(pk=bot.pk).exists()


def test_post_without_csrf_is_refused(org, bot, bot_keys):
    """A confirmed POST without the CSRF token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.owner)
    keys = key_state()
    for target in (revoke_url(bot), delete_url(bot)):
        assert client.post(target, {"confirm": "yes"}).status_code == 403
    assert key_state() == keys
    assert ServiceAccount.objects.filter(pk=bot.pk).exists()
