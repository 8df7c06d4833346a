"""The API Explorer and an app's sharing page, in real Chromium."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from accounts.access import Actor
from apikeys.models import KeyKind
from apikeys.permissions import ALL
from apikeys.services import api_key_create
from projects.models import ApiKeyAccess
from tests.e2e.conftest import save_screenshot
from tests.factories import PASSWORD, AppFactory, ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page, user) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def test_explorer_sends_a_real_request_and_offers_snippets(page, tmp_path, org):
    """Paste a key, call whoami, see status, headers and body, and snippets without the key."""
    api_key, token = api_key_create(
        actor=Actor(user=None),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        name="explorer",
        permissions=sorted(ALL),
    )
    log_in(page, org.owner)
    page.goto(f"/o/acme/api-keys/{api_key.pk}/")
    page.get_by_role("link", name="Explore").click()
    page.wait_for_selector("#explorer-endpoint option[value='0']", state="attached")
    expect(page.get_by_label("Endpoint")).to_have_value(re.compile(r"\d+"))

    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Send request").click()

    expect(page.locator("#explorer-status")).to_have_text("200")
    body = json.loads(page.locator("#explorer-response-body").inner_text())
    assert body["id"] == api_key.pk
    assert body["organization"]["slug"] == "acme"
    expect(page.locator("#explorer-headers")).to_contain_text("cache-control: no-store")
    snippets = page.locator("#explorer-snippets").inner_text()
    assert "$KEYPORTAL_API_KEY" in snippets
    assert token not in snippets
    assert "curl -X GET" in snippets and "http GET" in snippets and "httpx.request" in snippets
    save_screenshot(page, tmp_path, "api-explorer", docs=True)

    # A missing permission comes back as the API says it.
    option = page.locator("#explorer-endpoint option", has_text=re.compile(r"^POST /api/v1/teams "))
    page.get_by_label("Endpoint").select_option(option.get_attribute("value"))
    page.locator("#explorer-body").fill('{"name": 5}')
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#explorer-status")).to_have_text("422")
    expect(page.locator("#explorer-response-body")).to_contain_text("invalid_request")


def test_sharing_page_saves_with_htmx_and_takes_effect_on_the_next_request(
    page, tmp_path, org, client
):
    """Switching an app to Can edit saves in place; the API then lets a key read it."""
    project = ProjectFactory(team__organization=org.organization)
    app = AppFactory(project=project, name="Storefront", slug="storefront")
    _key, token = api_key_create(
        actor=Actor(user=None),
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
