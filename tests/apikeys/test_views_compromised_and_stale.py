"""How the console shows compromised keys, expiries coming soon and keys nobody uses: the
badges in every keys table, the report on the key's page, and the API's view of the report."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apikeys.models import ApiKey, KeyKind, LeakSource
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import (
    ORGANIZATION_KEYS_URL,
    PERSONAL_KEYS_URL,
    detail_url,
    disable_unused_after,
    new_key,
    operator_key,
)

pytestmark = pytest.mark.django_db

GITHUB_URL = "https://github.com/acme/shop/blob/0123456789abcdef0123/config/.env"
COMPROMISED_BADGE = '<span class="badge badge-compromised"'


def words(response) -> str:
    """Return the page's text without tags, its whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", page_text(response)).split())


def compromise(api_key: ApiKey, by: str = LeakSource.GITHUB, **report) -> ApiKey:
    """Mark a key reported leaked as apikeys.leaks does: revoked and compromised at once."""
    now = timezone.now() - timedelta(hours=3)
    ApiKey.objects.filter(pk=api_key.pk).update(
        revoked_at=now, compromised_at=now, compromised_source=by, compromise_report=report
    )
    api_key.refresh_from_db()
    return api_key


def github_report(**overrides) -> dict:
    report = {
        "url": GITHUB_URL,
        "source": "content",
        "type": "keyportal_org_key",
        "repository": "acme/shop",
        "file": "config/.env",
        "commit": "0123456789abcdef0123456789abcdef01234567",
    }
    return {**report, **overrides}


# --- the Compromised badge, in every table and on the key's page ------------------------------


def test_compromised_keys_are_hidden_until_filtered_for(client_for, org):
    """Like revoked keys, compromised ones leave the table; Status: Compromised shows them
    with a red Compromised badge."""
    api_key = compromise(new_key(org, KeyKind.ORGANIZATION, name="leaky")[0], **github_report())
    client = client_for(org.owner)

    assert api_key.preview not in page_text(client.get(ORGANIZATION_KEYS_URL))
    text = page_text(client.get(ORGANIZATION_KEYS_URL, {"status": "compromised"}))
    assert api_key.preview in text
    assert f'{COMPROMISED_BADGE} title="Reported leaked; revoked for good">Compromised' in text


def test_the_personal_table_shows_a_members_compromised_key(client_for, org):
    """A member filters their own keys for Compromised."""
    api_key = compromise(new_key(org, name="laptop")[0], LeakSource.HOLDER)

    text = page_text(client_for(org.member).get(PERSONAL_KEYS_URL, {"status": "compromised"}))

    assert api_key.preview in text
    assert COMPROMISED_BADGE in text


def test_project_and_service_account_pages_badge_compromised_keys(client_for, org, tree, bot):
    """The keys of a project's and of a service account's page, revoked ones shown, say
    Compromised for a compromised key."""
    project_key = compromise(new_key(org, KeyKind.PROJECT, owner=tree.project)[0])
    bot_key = compromise(new_key(org, KeyKind.SERVICE_ACCOUNT, owner=bot)[0])
    client = client_for(org.admin)

    for api_key, page in (
        (project_key, reverse("project_detail", kwargs={"org": "acme", "pk": tree.project.pk})),
        (bot_key, reverse("service_account_detail", kwargs={"org": "acme", "pk": bot.pk})),
    ):
        text = page_text(client.get(page, {"status": "revoked"}))
        assert api_key.preview in text
        assert COMPROMISED_BADGE in text


def test_the_key_page_shows_a_github_report_with_its_link(client_for, org):
    """The header says Compromised; the report names GitHub, when, the repository, the file,
    the commit (short, whole in its title), and links to where GitHub found it."""
    api_key = compromise(new_key(org, KeyKind.ORGANIZATION, name="leaky")[0], **github_report())

    response = client_for(org.owner).get(detail_url(api_key))

    assert response.status_code == 200
    text = page_text(response)
    assert COMPROMISED_BADGE in text
    said = words(response)
    assert "Reported leaked by GitHub secret scanning 3 hours ago" in said
    assert "create a new key" in said
    for shown in ("acme/shop", "config/.env", "0123456789ab"):
        assert shown in said
    assert f'<a href="{GITHUB_URL}" rel="noopener noreferrer">' in text
    # Compromised is final: no rotate, enable, edit or explore.
    for offered in ("Rotate…", "Explore", ">Enable<", "<h2>Edit</h2>"):
        assert offered not in text


def test_the_key_page_shows_a_holders_report_as_text(client_for, org):
    """A holder's report says who and when, and where they found it, never as a link."""
    location = "https://pastebin.example/raw/abc <b>in a gist</b>"
    api_key = compromise(
        new_key(org, KeyKind.ORGANIZATION)[0], LeakSource.HOLDER, location=location
    )

    response = client_for(org.owner).get(detail_url(api_key))

    said = words(response)
    assert "Reported leaked by its holder 3 hours ago" in said
    text = response.content.decode()
    assert "https://pastebin.example/raw/abc &lt;b&gt;in a gist&lt;/b&gt;" in text
    assert 'href="https://pastebin.example' not in text


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_a_report_url_that_is_not_http_is_never_a_link(client_for, org, url):
    """Only an http(s) address becomes a link: anything else reads as text."""
    api_key = compromise(new_key(org, KeyKind.ORGANIZATION)[0], **github_report(url=url))

    text = client_for(org.owner).get(detail_url(api_key)).content.decode()

    assert 'href="javascript' not in text.lower()
    assert 'href=" javascript' not in text.lower()
    assert 'href="data:' not in text
    assert "<script>alert(1)</script>" not in text


# --- the expiry warning ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "css", "shown"),
    [
        (timedelta(days=3), "expiry-soon", "in 3 days"),
        (timedelta(hours=12), "expiry-urgent", "in 12 hours"),
        (timedelta(days=20), None, "in 20 days"),
        (-timedelta(days=2), None, "2 days ago"),
    ],
)
def test_an_expiry_within_a_week_is_a_warning(client_for, org, left, css, shown):
    """Within 7 days the Expires cell warns, within a day more strongly; the exact time is in
    the tooltip; an expired key reads as before."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, name="soon")
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() + left)
    status = {"status": "expired"} if left < timedelta(0) else {}

    for response in (
        client_for(org.owner).get(ORGANIZATION_KEYS_URL, status),
        client_for(org.owner).get(detail_url(api_key)),
    ):
        text = page_text(response)
        cell = re.search(
            r'(<span class="expiry-[a-z]+">)?<time datetime="[^"]+" title="[^"]+">'
            + re.escape(shown),
            text,
        )
        assert cell is not None, shown
        if css:
            assert cell.group(1) == f'<span class="{css}">'
        else:
            assert cell.group(1) is None


# --- stale keys -----------------------------------------------------------------------------


def test_a_key_unused_for_90_days_is_stale(client_for, org):
    """A live key last used 94 days ago is Stale, its tooltip (and screen reader text) says
    for how long; a key used last week is not."""
    stale, _ = new_key(org, KeyKind.ORGANIZATION, name="old")
    used, _ = new_key(org, KeyKind.ORGANIZATION, name="busy")
    now = timezone.now()
    ApiKey.objects.filter(pk=stale.pk).update(
        created_at=now - timedelta(days=200), last_used_at=now - timedelta(days=94, hours=1)
    )
    ApiKey.objects.filter(pk=used.pk).update(last_used_at=now - timedelta(days=7))

    text = page_text(client_for(org.owner).get(ORGANIZATION_KEYS_URL))

    badge = (
        '<span class="badge badge-muted" title="Not used for 94 days">Stale'
        '<span class="sr-only">: Not used for 94 days</span></span>'
    )
    assert text.count(badge) == 1
    row = re.search(
        rf"<tr>(?:(?!</tr>).)*{re.escape(stale.preview)}(?:(?!</tr>).)*</tr>", text, re.S
    )
    assert badge in row.group()


def test_a_never_used_old_key_is_stale_too(client_for, org):
    """Made 120 days ago and never used: Stale, "Never used"."""
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, name="forgotten")
    ApiKey.objects.filter(pk=api_key.pk).update(created_at=timezone.now() - timedelta(days=120))

    text = page_text(client_for(org.owner).get(detail_url(api_key)))

    assert 'title="Never used; created 120 days ago">Stale' in text


def test_the_policy_says_when_an_unused_key_will_be_disabled(client_for, org):
    """With "disable keys unused for 30 days", a key unused for 20 days says it is disabled in
    10 days unless used."""
    disable_unused_after(org, KeyKind.ORGANIZATION, 30)
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, name="idle")
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now() - timedelta(days=20))

    for page in (ORGANIZATION_KEYS_URL, detail_url(api_key)):
        text = page_text(client_for(org.owner).get(page))
        assert (
            '<span class="badge badge-warning badge-wraps" title="Not used for 20 days. The key policy '
            in (text)
        )
        assert "Disabled in 10 days unless used" in text


# --- the API --------------------------------------------------------------------------------


def test_the_api_shows_the_report_and_nothing_secret(org):
    """GET /keys/{id} says compromised, when, who reported it and where; fields the report
    holds beyond those (anything secret among them) stay out."""
    _manager, token = operator_key(org, permissions=["api-keys:manage"], name="manager")
    api_key, leaked = operator_key(org, name="leaky")
    compromise(api_key, **github_report(token=leaked, secret="hunter2"))

    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get(f"/api/v1/keys/{api_key.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "compromised"
    assert body["compromised_at"] is not None
    assert body["compromise"] == {
        "reported_by": "github",
        "url": GITHUB_URL,
        "repository": "acme/shop",
        "file": "config/.env",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "location": None,
    }
    content = response.content.decode()
    assert leaked not in content
    assert "hunter2" not in content
    assert api_key.digest not in content


def test_the_api_says_nothing_of_a_report_for_other_keys(org):
    """A key never reported leaked has no compromise."""
    _manager, token = operator_key(org, permissions=["api-keys:manage"], name="manager")
    body = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/whoami").json()
    assert (body["compromised_at"], body["compromise"]) == (None, None)
