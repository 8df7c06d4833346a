"""Service account pages: create, edit, deactivate and reactivate; owners and admins only."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, ServiceAccount
from tests.accounts.helpers import is_fragment, page_text, row_counts
from tests.accounts.test_audit_log import shown_cells
from tests.factories import ServiceAccountFactory

pytestmark = pytest.mark.django_db

LIST_URL = reverse("service_account_list", kwargs={"org": "acme"})


def detail_url(account: ServiceAccount, org: str = "acme") -> str:
    return reverse("service_account_detail", kwargs={"org": org, "pk": account.pk})


def toggle_url(account: ServiceAccount, org: str = "acme") -> str:
    return reverse("service_account_toggle", kwargs={"org": org, "pk": account.pk})


@pytest.fixture
def bot(org) -> ServiceAccount:
    return ServiceAccountFactory(organization=org.organization, name="deploy-bot")


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_create_a_service_account(client_for, org, role):
    """Creating a service account gives it an email-like identifier and records it."""
    actor = getattr(org, role)
    response = client_for(actor).post(
        LIST_URL, {"name": "Deploy Bot", "description": "Deploys from CI."}
    )

    account = ServiceAccount.objects.get()
    assert account.identifier == "deploy-bot@acme.serviceaccounts.keyportal"
    assert (account.name, account.description, account.created_by) == (
        "Deploy Bot",
        "Deploys from CI.",
        actor,
    )
    assert account.organization == org.organization
    assert response.status_code == 302
    assert response.url == detail_url(account)
    event = AuditEvent.objects.get(action="service_account.created")
    assert (event.actor_user, event.origin, event.target_id) == (actor, "web", str(account.pk))
    assert event.ip_address == "127.0.0.1"


def test_identifier_gets_a_suffix_when_taken(client_for, org, bot):
    """A name that slugifies to a taken identifier gets "-2"."""
    client_for(org.owner).post(LIST_URL, {"name": "Deploy Bot"})
    assert ServiceAccount.objects.get(name="Deploy Bot").identifier == (
        "deploy-bot-2@acme.serviceaccounts.keyportal"
    )


def test_list_shows_service_accounts(client_for, org, bot):
    """The list shows each service account's name and identifier."""
    response = client_for(org.admin).get(LIST_URL)
    assert response.status_code == 200
    text = page_text(response)
    assert "deploy-bot@acme.serviceaccounts.keyportal" in text


def test_htmx_list_returns_the_fragment(client_for, org, bot, htmx_headers):
    """An htmx request for the list gets the fragment alone."""
    response = client_for(org.owner).get(LIST_URL, headers=htmx_headers)
    assert is_fragment(response)
    assert 'id="service-accounts"' in response.content.decode()


@pytest.mark.parametrize("name", ["deploy-bot", "DEPLOY-BOT", "  Deploy-Bot  "])
def test_duplicate_name_is_a_field_error(client_for, org, bot, name):
    """A name already used, in any letter case, is refused next to the name field."""
    before = row_counts()
    response = client_for(org.owner).post(LIST_URL, {"name": name, "description": "typed"})

    assert response.status_code == 422
    text = page_text(response)
    assert 'id="id_name_error">A service account named' in text
    assert "already exists in this organization." in text
    assert f'value="{name}"' in text
    assert "typed</textarea>" in text
    assert row_counts() == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Name is required."),
        ("   ", "Name is required."),
        ("b" * 101, "Name must be at most 100 characters."),
    ],
)
def test_bad_name_is_a_field_error(client_for, org, name, message):
    """An empty or 101-character name is refused next to the field; nothing saved."""
    before = row_counts()
    response = client_for(org.owner).post(LIST_URL, {"name": name})
    assert response.status_code == 422
    text = page_text(response)
    assert f'id="id_name_error">{message}' in text
    if name.strip():
        assert f'value="{name}"' in text
    assert row_counts() == before


def test_detail_edit_keeps_identifier(client_for, org, bot):
    """Editing renames and describes the account; its identifier stays."""
    response = client_for(org.owner).post(
        detail_url(bot), {"name": "release-bot", "description": "Ships releases."}
    )
    assert response.status_code == 302
    bot.refresh_from_db()
    assert (bot.name, bot.description) == ("release-bot", "Ships releases.")
    assert bot.identifier == "deploy-bot@acme.serviceaccounts.keyportal"
    assert AuditEvent.objects.filter(action="service_account.updated").count() == 1


def test_detail_edit_to_a_taken_name_is_a_field_error(client_for, org, bot):
    """Renaming to a name taken by another account is refused; the page keeps the identifier."""
    other = ServiceAccountFactory(organization=org.organization, name="release-bot")
    before = row_counts()
    response = client_for(org.owner).post(detail_url(other), {"name": "Deploy-Bot"})

    assert response.status_code == 422
    text = page_text(response)
    assert 'id="id_name_error">A service account named' in text
    assert 'value="Deploy-Bot"' in text
    assert other.identifier in text
    other.refresh_from_db()
    assert other.name == "release-bot"
    assert row_counts() == before


def test_deactivate_asks_for_confirmation(client_for, org, bot):
    """A GET on the deactivate page shows a confirmation and changes nothing."""
    response = client_for(org.owner).get(toggle_url(bot))
    assert response.status_code == 200
    assert "Deactivate deploy-bot?" in page_text(response)
    bot.refresh_from_db()
    assert bot.is_active


def test_deactivate_then_reactivate(client_for, org, bot):
    """Confirming deactivates; confirming again reactivates; each is recorded."""
    client = client_for(org.admin)
    response = client.post(toggle_url(bot), {"active": "0"})
    assert response.status_code == 302
    bot.refresh_from_db()
    assert not bot.is_active

    page = client.get(toggle_url(bot))
    assert "Reactivate deploy-bot?" in page_text(page)
    client.post(toggle_url(bot), {"active": "1"})
    bot.refresh_from_db()
    assert bot.is_active
    assert list(
        AuditEvent.objects.filter(target_type="serviceaccount")
        .order_by("id")
        .values_list("action", "actor_user")
    ) == [
        ("service_account.deactivated", org.admin.pk),
        ("service_account.activated", org.admin.pk),
    ]


def test_confirming_deactivation_twice_keeps_it_deactivated(client_for, org, bot):
    """A deactivation confirmed from a stale page does not reactivate the account."""
    owner, admin = client_for(org.owner), client_for(org.admin)
    confirmation = admin.get(toggle_url(bot))
    assert 'name="active" value="0"' in confirmation.text
    owner.post(toggle_url(bot), {"active": "0"})

    admin.post(toggle_url(bot), {"active": "0"})

    bot.refresh_from_db()
    assert not bot.is_active


def test_member_gets_404_on_every_service_account_page(client_for, org, bot):
    """Members get 404 on the list, the detail and the toggle pages, and change nothing."""
    client = client_for(org.member)
    before = row_counts()
    for url in (LIST_URL, detail_url(bot), toggle_url(bot)):
        assert client.get(url).status_code == 404
        assert client.post(url, {"name": "x"}).status_code == 404
    bot.refresh_from_db()
    assert (bot.name, bot.is_active) == ("deploy-bot", True)
    assert row_counts() == before


def test_another_organizations_service_account_is_404(client_for, org, other_org):
    """An admin of Acme gets 404 for Globex's service account, by either URL."""
    theirs = ServiceAccountFactory(organization=other_org.organization, name="their-bot")
    client = client_for(org.admin)
    for url in (detail_url(theirs), toggle_url(theirs), detail_url(theirs, org="globex")):
        assert client.get(url).status_code == 404
    assert client.post(toggle_url(theirs)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active


def test_anonymous_is_sent_to_login(org, bot):
    """Anonymous people are sent to log in."""
    response = Client().get(LIST_URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_create_without_csrf_is_refused(org):
    """A create without the CSRF token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.owner)
    assert client.post(LIST_URL, {"name": "x"}).status_code == 403
    assert not ServiceAccount.objects.exists()


# Audit log -----------------------------------------------------------------------------------


def test_audit_log_lists_the_history(client_for, org, bot):
    """Owners and admins see the history; members get 404."""
    client_for(org.owner).post(toggle_url(bot), {"active": "0"})
    url = reverse("audit_log", kwargs={"org": "acme"})
    response = client_for(org.admin).get(url)
    assert response.status_code == 200
    assert "Service account deactivated" in shown_cells(response, "label")
    assert client_for(org.member).get(url).status_code == 404


def test_toggle_without_a_confirmed_state_changes_nothing(client_for, org, bot):
    """A confirmation POST that names no state is refused with a message."""
    response = client_for(org.admin).post(toggle_url(bot))
    assert response.status_code == 400
    assert "Choose whether to activate or deactivate" in page_text(response)
    bot.refresh_from_db()
    assert bot.is_active
