"""A key's protections in Chromium: set them in the create dialog, read how close the key is to
its limits on its page and edit them there; the keys tables' Protection filter and the key
policy's default rate limit. axe-core finds no serious violation, and nothing scrolls sideways,
at 1280 and 390 px. Screenshots go to KEYPORTAL_SHOTS (/tmp/shots) to be looked at."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apikeys import limits
from apikeys.models import ApiKey, KeyKind
from tests.apikeys.conftest import new_key
from tests.e2e import test_accessibility as accessibility
from tests.e2e.conftest import (
    assert_no_unexpected_console_errors,
    log_in,
    opened_page,
    save_screenshot,
)
from tests.e2e.console_data import build_console

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path(os.environ.get("KEYPORTAL_SHOTS", "/tmp/shots"))
TOKEN = re.compile(r"^sk-org-[0-9A-Za-z]{38}$")


def shot(page, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def fits(page) -> None:
    """Nothing scrolls sideways: the page, nor any table's box."""
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    for wrap in page.locator(".table-wrap").all():
        scroll, client = wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert scroll <= client, f"a table scrolls sideways: {scroll} > {client}"


def protected_key(org) -> ApiKey:
    """Return an organization key with every protection, part-way into its limits, and an
    address its allowlist refused."""
    api_key, _ = new_key(
        org,
        KeyKind.ORGANIZATION,
        name="edge proxy",
        allowed_ips=["203.0.113.0/24", "198.51.100.7", "2001:db8::/32"],
        rate_limits=[{"limit": 10, "window": "second"}, {"limit": 120, "window": "minute"}],
        budget={"amount": 50000, "refill": "monthly", "refill_amount": 50000},
    )
    # The live server runs in this process: its local-memory cache counts these.
    for _ in range(7):
        limits.check(api_key)
    ApiKey.objects.filter(pk=api_key.pk).update(
        last_refused_ip="192.0.2.44", last_refused_at=timezone.now() - timedelta(minutes=42)
    )
    api_key.refresh_from_db()
    return api_key


def test_create_a_key_with_protections(page, org):
    """Fill the dialog's Protections, create: the key has its allowlist, rate limit and budget."""
    log_in(page, org.admin)
    page.goto("/o/acme/api-keys/")
    page.locator(".page-header").get_by_role("link", name="Create an organization key").click()
    dialog = page.locator("#key-dialog")
    dialog.get_by_label("Name", exact=True).fill("edge proxy")
    protections = dialog.locator("details.protections")
    expect(protections).not_to_have_attribute("open", "")
    protections.locator("summary").click()
    dialog.get_by_label("Allowed IP addresses").fill("203.0.113.0/24\n198.51.100.7")
    dialog.get_by_label("Requests per minute").fill("120")
    dialog.get_by_label("Usage budget", exact=True).fill("50000")
    dialog.get_by_label("Refill", exact=True).select_option("monthly")
    dialog.get_by_label("Refill amount").fill("50000")
    shot(page, "create-protections-1280", full_page=False)

    dialog.get_by_role("button", name="Create API key").click()

    expect(dialog.locator("#new-key")).to_have_text(TOKEN)
    api_key = ApiKey.objects.get(name="edge proxy")
    assert api_key.protections["allowed_ips"] == ["203.0.113.0/24", "198.51.100.7"]
    assert api_key.protections["rate_limits"] == [{"limit": 120, "window": "minute"}]
    assert api_key.protections["budget"]["refill"] == "monthly"
    assert_no_unexpected_console_errors(page)


def test_bad_protections_in_the_dialog_are_shown_and_focused(page, org):
    """A bad address: the section stays open, the error sits under the field, which is
    focused and invalid; nothing is made."""
    log_in(page, org.admin)
    page.goto("/o/acme/api-keys/")
    page.locator(".page-header").get_by_role("link", name="Create an organization key").click()
    dialog = page.locator("#key-dialog")
    dialog.get_by_label("Name", exact=True).fill("typo")
    dialog.locator("details.protections summary").click()
    dialog.get_by_label("Allowed IP addresses").fill("203.0.113.300")
    dialog.get_by_label("Requests per second").fill("0")
    dialog.get_by_role("button", name="Create API key").click()

    field = dialog.get_by_label("Allowed IP addresses")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator("#key_allowed_ips_error")).to_contain_text("is not an IPv4 or IPv6")
    expect(dialog.locator("#key_rate_second_error")).to_have_text(
        "Enter a whole number, at least 1."
    )
    expect(dialog.locator("details.protections")).to_have_attribute("open", "")
    shot(page, "create-protections-errors-1280", full_page=False)
    assert not ApiKey.objects.filter(name="typo").exists()
    assert_no_unexpected_console_errors(page)


def test_read_and_edit_protections_on_the_key_page(page, org, tmp_path):
    """The card shows the allowlist, the last refused address (exact time on hover), each
    window's use now and the budget left; "Edit protections" saves, and shows its errors."""
    api_key = protected_key(org)
    log_in(page, org.admin)
    page.goto(f"/o/acme/api-keys/{api_key.pk}/")

    card = page.locator(".protections-card")
    expect(card).to_contain_text("203.0.113.0/24")
    expect(card).to_contain_text("192.0.2.44")
    when = card.locator("time").first
    expect(when).to_have_text("42 minutes ago")
    expect(when).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"))
    expect(card).to_contain_text("7 / 120 used")
    expect(card).to_contain_text("49,993 / 50,000 left")
    expect(card.locator("meter")).to_have_count(3)
    expect(card).to_contain_text("Counted per server process")
    SHOTS.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=str(SHOTS / "key-protections-card-1280.png"))

    card.locator("summary", has_text="Edit protections").click()
    form = page.locator("#key-protections")
    page.locator("#protections-heading").evaluate(
        "el => { el.scrollIntoView({block: 'start'}); window.scrollBy(0, -24); }"
    )
    save_screenshot(page, tmp_path, "key-protections", docs=True, full_page=False)
    form.get_by_label("Requests per minute").fill("60")
    form.get_by_label("Requests per day").fill("10000")
    form.get_by_role("button", name="Save protections").click()

    expect(page.locator(".toast")).to_contain_text("Protections saved.")
    expect(card).to_contain_text("60 per minute")
    expect(card).to_contain_text("10,000 per day")
    api_key.refresh_from_db()
    assert api_key.protections["rate_limits"][1:] == [
        {"limit": 60, "window": "minute"},
        {"limit": 10000, "window": "day"},
    ]

    card.locator("summary", has_text="Edit protections").click()
    form.get_by_label("Allowed IP addresses").fill("10.0.0.1/8")
    form.get_by_role("button", name="Save protections").click()
    field = form.get_by_label("Allowed IP addresses")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(form.locator("#protections_allowed_ips_error")).to_have_text(
        "10.0.0.1/8 has bits set after its prefix: did you mean 10.0.0.0/8?"
    )
    shot(page, "key-protections-error-1280", full_page=False)
    assert_no_unexpected_console_errors(page)


@pytest.mark.parametrize("width", [1280, 390])
def test_protections_pages_are_accessible_and_fit(browser, live_server, org, width):
    """The key page with "Edit protections" open, the create dialog with Protections open,
    the keys table with its Protection filter and the key policy: no serious axe violation,
    nothing scrolls sideways."""
    build_console(org)
    api_key = protected_key(org)
    failures: list[str] = []
    with opened_page(browser, live_server.url, width=width) as page:
        log_in(page, org.owner)

        page.goto(f"/o/acme/api-keys/{api_key.pk}/")
        page.locator("#edit-protections summary").click()
        fits(page)
        accessibility.audit(page, f"{width}px key page", failures)
        shot(page, f"key-page-{width}")
        page.locator(".protections-card").screenshot(
            path=str(SHOTS / f"key-protections-card-open-{width}.png")
        )

        page.goto("/o/acme/api-keys/")
        page.locator(".page-header").get_by_role("link", name="Create an organization key").click()
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        dialog.locator("details.protections summary").click()
        dialog.get_by_label("Requests per hour").scroll_into_view_if_needed()
        accessibility.audit(page, f"{width}px create dialog", failures)
        shot(page, f"create-dialog-{width}", full_page=False)
        page.keyboard.press("Escape")

        page.goto("/o/acme/api-keys/?protection=rate_limited")
        expect(page.get_by_label("Protection")).to_have_value("rate_limited")
        expect(page.locator("#key-table")).to_contain_text("edge proxy")
        fits(page)
        accessibility.audit(page, f"{width}px filtered keys", failures)
        shot(page, f"keys-filtered-{width}")
        page.goto("/o/acme/api-keys/")
        fits(page)
        shot(page, f"keys-{width}")

        page.goto("/o/acme/api-keys/policy/")
        fits(page)
        accessibility.audit(page, f"{width}px key policy", failures)
        shot(page, f"policy-{width}")
        assert_no_unexpected_console_errors(page)
    assert failures == [], "\n".join(failures)


def test_policy_default_rate_limit_fills_the_create_dialog(page, org):
    """The owner sets 600 per hour for organization keys; the create dialog starts at it."""
    log_in(page, org.owner)
    page.goto("/o/acme/api-keys/policy/")
    page.get_by_label("Default rate limit of new organization keys, in requests").fill("600")
    page.get_by_label("Window of the default rate limit of new organization keys").select_option(
        "hour"
    )
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator(".toast")).to_contain_text("The key policy has been saved.")

    page.goto("/o/acme/api-keys/")
    page.locator(".page-header").get_by_role("link", name="Create an organization key").click()
    dialog = page.locator("#key-dialog")
    summary = dialog.locator("details.protections summary")
    expect(summary).to_contain_text("600 per hour, the key policy's default")
    summary.click()
    expect(dialog.get_by_label("Requests per hour")).to_have_value("600")
    assert_no_unexpected_console_errors(page)
