"""The API Explorer and an app's sharing page, in real Chromium."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from accounts.access import Actor
from accounts.models import AuditEvent, Team
from apikeys.models import KeyKind
from apikeys.permissions import ALL
from apikeys.services import api_key_create
from projects.models import ApiKeyAccess
from tests.e2e.conftest import choose, log_in, save_screenshot
from tests.factories import AppFactory, ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_explorer_acts_as_the_key_without_its_secret(page, tmp_path, org):
    """Nothing is pasted: whoami answers as the key; a change is recorded as the key with the
    person beside it; snippets never hold a key; a refusal comes back as the API says it."""
    api_key, token = api_key_create(
        actor=Actor.operator("operator (tests)"),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        name="explorer",
        permissions=sorted(ALL - {"teams:delete"}),
    )
    log_in(page, org.owner)
    page.goto(f"/o/acme/api-keys/{api_key.pk}/")
    page.get_by_role("link", name="Explore").click()
    page.wait_for_selector("#explorer-endpoint option[value='0']", state="attached")
    expect(page.get_by_label("Endpoint")).to_have_value(re.compile(r"\d+"))
    expect(page.locator("input[type=password]")).to_have_count(0)

    page.get_by_role("button", name="Send request").click()

    expect(page.locator("#explorer-status")).to_have_text("200")
    body = json.loads(page.locator("#explorer-response-body").inner_text())
    assert body["id"] == api_key.pk
    assert body["organization"]["slug"] == "acme"
    expect(page.locator("#explorer-headers")).to_contain_text("cache-control: no-store")
    snippets = page.locator("#explorer-snippets").inner_text()
    assert "$KEYPORTAL_API_KEY" in snippets
    assert token not in snippets and api_key.preview not in snippets
    assert "curl -X GET" in snippets and "http GET" in snippets and "httpx.request" in snippets
    save_screenshot(page, tmp_path, "api-explorer", docs=True)

    choose(page, r"^POST /api/v1/teams ")
    page.locator("#explorer-body").fill('{"name": "Made in the Explorer"}')
    page.get_by_role("button", name="Send request").click()
    # A call that changes something says so first, and waits.
    expect(page.get_by_role("alertdialog")).to_contain_text("changes data for real")
    page.get_by_role("button", name="Send it").click()
    expect(page.locator("#explorer-status")).to_have_text("201")
    event = AuditEvent.objects.get(action="team.created")
    assert (event.origin, event.actor_key_id, event.actor_user) == (
        "explorer",
        api_key.pk,
        org.owner,
    )
    assert (
        event.actor_label == f"explorer ({api_key.preview}) in the Explorer, by {org.owner.email}"
    )

    # What the key does not hold comes back as the API says it, though the person holds it.
    team = Team.objects.get(name="Made in the Explorer")
    choose(page, r"^DELETE /api/v1/teams/\{item_id\} ")
    page.get_by_label("item_id (path, required)").fill(str(team.pk))
    page.get_by_role("button", name="Send request").click()
    page.get_by_role("button", name="Send it").click()
    expect(page.locator("#explorer-status")).to_have_text("403")
    expect(page.locator("#explorer-response-body")).to_contain_text("teams:delete")
    assert Team.objects.filter(pk=team.pk).exists()
    # The browser logs the 403 it was asked to make; no script failed.
    assert [e for e in page.console_errors if not e.startswith("Failed to load resource")] == []


def test_explorer_says_why_it_is_unavailable(page, org):
    """An admin cannot act as a key holding members:update, which an admin does not hold."""
    api_key, _token = api_key_create(
        actor=Actor.operator("operator (tests)"),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        name="owners only",
        permissions=["members:update"],
    )
    log_in(page, org.admin)
    page.goto(f"/o/acme/api-keys/{api_key.pk}/explore/")

    expect(page.locator("#explorer-unavailable")).to_contain_text(
        "You cannot explore the API as this key: it holds members:update"
    )
    expect(page.get_by_role("button", name="Send request")).to_have_count(0)


def test_sharing_page_saves_with_htmx_and_takes_effect_on_the_next_request(
    page, tmp_path, org, client
):
    """Switching an app to Can edit saves in place; the API then lets a key read it."""
    project = ProjectFactory(team__organization=org.organization)
    app = AppFactory(project=project, name="Storefront", slug="storefront")
    _key, token = api_key_create(
        actor=Actor.operator("operator (tests)"),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        permissions=["apps:read"],
    )
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get(f"/api/v1/apps/{app.pk}", **headers).status_code == 403

    log_in(page, org.admin)
    page.goto("/o/acme/apps/")
    page.get_by_role("link", name="Sharing of Storefront").click()
    expect(page.get_by_label(re.compile("No access"))).to_be_checked()
    page.get_by_label(re.compile("Can edit")).check()
    page.get_by_role("button", name="Save sharing").click()

    expect(page.locator(".toast")).to_contain_text("Sharing of Storefront saved")
    expect(page.locator("#sharing-form")).to_contain_text("Now: Can edit")
    app.refresh_from_db()
    assert app.api_key_access == ApiKeyAccess.CAN_EDIT
    assert client.get(f"/api/v1/apps/{app.pk}", **headers).status_code == 200
    save_screenshot(page, tmp_path, "app-sharing", docs=True)
    assert page.console_errors == []
