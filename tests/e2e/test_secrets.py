"""Secrets in real Chromium: set with htmx, the value masked and never shown back, restore, delete."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from projects.secrets import secret_decrypt, secret_version_get
from tests.e2e.conftest import assert_no_unexpected_console_errors, log_in, save_screenshot
from tests.projects.secret_helpers import environment_in

pytestmark = pytest.mark.django_db(transaction=True)

VALUE = "postgres://app:correct-horse@db.internal/app"


def test_admin_sets_restores_and_deletes_a_secret(page, tmp_path, org):
    """From the project page to the secrets: set twice, restore v1, delete; no value ever shown."""
    environment = environment_in(org)
    log_in(page, org.admin)
    page.get_by_role("link", name="Payments").click()
    page.get_by_role("link", name="production", exact=True).click()
    expect(page.get_by_role("heading", name="Secrets of production")).to_be_visible()
    expect(page.get_by_text("Values are never shown in the console.")).to_be_visible()

    value_field = page.get_by_label("Value")
    assert value_field.evaluate("e => getComputedStyle(e).webkitTextSecurity") == "disc"
    for value in (VALUE, "second-value"):
        page.get_by_label("Name").fill("DATABASE_URL")
        value_field.fill(value)
        page.get_by_role("button", name="Save secret").click()
        expect(page.locator(".toast").last).to_contain_text("saved as version")
        expect(page.get_by_label("Value")).to_have_value("")
    row = page.get_by_role("row", name="DATABASE_URL")
    expect(row).to_contain_text("v2")
    expect(row).to_contain_text(org.admin.email)
    assert VALUE not in page.content()
    expect(page.get_by_text("Encrypted with this environment's own key ek_")).to_be_visible()
    save_screenshot(page, tmp_path, "secrets", docs=True)

    row.get_by_role("link", name="Versions").click()
    page.get_by_role("link", name="Restore… version 1").click()
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.get_by_text("restored from v1")).to_be_visible()
    current = secret_version_get(environment=environment, name="DATABASE_URL")
    assert (current.version, secret_decrypt(version=current)) == (3, VALUE)

    page.get_by_role("link", name="production").click()
    page.get_by_role("link", name="Delete… DATABASE_URL").click()
    page.get_by_role("button", name="Delete secret").click()
    expect(page.get_by_text("No secret yet")).to_be_visible()
    assert_no_unexpected_console_errors(page)
