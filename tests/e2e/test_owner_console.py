"""The owner console in real Chromium: search, select a page of keys, revoke them, read the log."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apikeys.demo import seed_keys
from apikeys.models import ApiKey
from tests.e2e.conftest import assert_no_unexpected_console_errors, log_in, save_screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_owner_searches_selects_a_page_and_revokes_it(page, tmp_path, org):
    seed_keys(organization=org.organization, count=130, created_by=org.owner)
    ApiKey.objects.filter(pk__in=ApiKey.objects.order_by("pk").values("pk")[:3]).update(
        name="legacy importer"
    )
    log_in(page, org.owner)
    page.locator(".sidebar").get_by_role("link", name="API keys", exact=True).click()
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    expect(page.get_by_text("Page 1 of 3 · 130 in all")).to_be_visible()

    # Search: htmx swaps the table and pushes the URL.
    page.get_by_label("Search by name").fill("LEGACY")
    expect(page.locator("#key-table tbody tr")).to_have_count(3)
    expect(page).to_have_url(re.compile(r"q=LEGACY"))
    page.get_by_label("Search by name").fill("")
    page.get_by_label("Status").select_option("active")
    expect(page).to_have_url(re.compile(r"status=active"))
    expect(page.get_by_text("Page 1 of 3 · 130 in all")).to_be_visible()

    # Select every key on the page, with a live count.
    count = page.locator("[data-selection-count]")
    expect(count).to_have_text("No key selected")
    expect(page.get_by_role("button", name="Revoke selected…")).to_be_disabled()
    page.get_by_label("Select every key on this page").check()
    expect(count).to_have_text("50 keys selected")
    first_row = page.locator("#key-table tbody tr").first
    first_row.get_by_role("checkbox").uncheck()
    expect(count).to_have_text("49 keys selected")
    first_row.get_by_role("checkbox").check()
    expect(count).to_have_text("50 keys selected")
    save_screenshot(page, tmp_path, "keys-table-selection", docs=True, full_page=False)

    # Revoke: a confirmation dialog naming how many, then the table and the count update.
    page.get_by_role("button", name="Revoke selected…").click()
    dialog = page.locator("#key-dialog")
    expect(dialog.get_by_role("heading", name="Revoke 50 keys?")).to_be_visible()
    # Swapped into the dialog's body, not in place of it: the dialog opens again after this.
    expect(dialog.locator("#key-dialog-body > .confirm-revoke")).to_have_count(1)
    save_screenshot(page, tmp_path, "keys-bulk-revoke-confirm", docs=True, full_page=False)
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0  # not before confirming
    dialog.get_by_role("button", name="Revoke 50 keys").click()
    expect(page.locator("#toasts")).to_contain_text("50 keys revoked.")
    expect(page).to_have_url(re.compile(r"status=active"))  # the same filtered list
    expect(page.get_by_text("Page 1 of 2 · 80 in all")).to_be_visible()
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 50

    # Back to the unfiltered list, and forward again: the URL holds the filters.
    page.get_by_label("Status").select_option("revoked")
    expect(page).to_have_url(re.compile(r"status=revoked"))
    expect(page.locator("#key-table tbody tr")).to_have_count(50)
    expect(page.locator("#key-table input[name=ids]")).to_have_count(0)  # nothing to revoke
    page.go_back()
    expect(page.get_by_label("Status")).to_have_value("active")

    # The audit log shows the revocations.
    page.locator(".sidebar").get_by_role("link", name="Audit log").click()
    expect(page.locator("#audit-table")).to_contain_text("API key revoked")
    assert_no_unexpected_console_errors(page)


def test_the_keys_table_works_at_390_px_and_without_javascript(browser, live_server, org):
    seed_keys(organization=org.organization, count=60, created_by=org.owner)
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        base_url=live_server.url,
        java_script_enabled=False,
    )
    page = context.new_page()
    try:
        log_in(page, org.owner)
        page.goto("/o/acme/api-keys/?q=bulk")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.get_by_role("link", name="Next").click()
        assert "q=bulk" in page.url and "page=2" in page.url
        boxes = page.locator("input[name=ids]")
        boxes.nth(0).check()
        boxes.nth(1).check()
        page.get_by_role("button", name="Revoke selected…").click()
        expect(page.get_by_role("heading", name="Revoke 2 keys?")).to_be_visible()
        page.get_by_role("button", name="Revoke 2 keys").click()
        expect(page.locator("#toasts")).to_contain_text("2 keys revoked.")
        assert "q=bulk" in page.url and "page=2" in page.url
        assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 2
    finally:
        context.close()
