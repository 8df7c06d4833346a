"""`keyportal login`'s approval page in real Chromium, at 1280 px and at 390 px."""

from __future__ import annotations

import pytest
from django.test import Client
from playwright.sync_api import expect

from apikeys.models import ApiKey
from tests.e2e.conftest import assert_no_unexpected_console_errors, log_in, save_screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def start_login(settings) -> dict:
    settings.KEYPORTAL_DEVICE_POLL_SECONDS = 0
    response = Client().post(
        "/api/v1/device/code",
        {"client": "keyportal-cli/0.1.0", "host": "ada-laptop"},
        content_type="application/json",
    )
    return response.json()


def poll(device_code: str):
    return Client().post(
        "/api/v1/device/token", {"device_code": device_code}, content_type="application/json"
    )


def test_a_person_approves_a_cli_login_in_the_browser(page, tmp_path, org, settings):
    started = start_login(settings)
    log_in(page, org.member)
    link = started["verification_uri_complete"].replace("http://testserver", "")
    page.goto(link)
    expect(page.get_by_role("heading", name="Log in the CLI")).to_be_visible()
    expect(page.get_by_text(started["user_code"])).to_be_visible()
    expect(page.get_by_text("ada-laptop")).to_be_visible()
    expect(page.get_by_label("Organization")).to_have_value(str(org.organization.pk))
    save_screenshot(page, tmp_path, "cli-login-approve", docs=True)
    assert poll(started["device_code"]).json()["error"]["code"] == "authorization_pending"

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Approved")).to_be_visible()
    issued = poll(started["device_code"]).json()
    assert issued["token"].startswith("sk-user-")

    # The person's settings list the CLI login with a revoke button.
    page.goto("/o/acme/settings/api-keys/")
    section = page.locator(".cli-logins")
    expect(section).to_contain_text(issued["key"]["name"])
    section.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke API key").click()
    assert ApiKey.objects.get(pk=issued["key"]["id"]).revoked_at is not None
    assert_no_unexpected_console_errors(page)


def test_denying_at_390_px(browser, live_server, org, settings, tmp_path):
    started = start_login(settings)
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    page = context.new_page()
    try:
        log_in(page, org.member)
        page.goto("/device/")
        page.get_by_label("Code").fill(started["user_code"].lower().replace("-", " "))
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_text("ada-laptop")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        save_screenshot(page, tmp_path, "cli-login-390px")
        page.get_by_role("button", name="Deny").click()
        expect(page.get_by_role("heading", name="Denied")).to_be_visible()
        assert poll(started["device_code"]).json()["error"]["code"] == "access_denied"
    finally:
        context.close()
