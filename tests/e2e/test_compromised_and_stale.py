"""Compromised, expiring and stale keys in Chromium, at 1280 and 390 px: an owner reads the
warnings in the keys table, filters it for compromised keys and reads a report on the key's
page; axe-core finds no serious violation on any of those pages, nor on the key policy's."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apikeys.models import KeyKind
from tests.apikeys.conftest import disable_unused_after
from tests.e2e import test_accessibility as accessibility
from tests.e2e.conftest import assert_no_unexpected_console_errors, log_in, opened_page
from tests.e2e.console_data import build_console, make_key

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path(os.environ.get("KEYPORTAL_SHOTS", "/tmp/shots-h4"))
EXACT_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+$")
LEAKED = "github-actions-release"  # console_data's compromised key
STALE = "forgotten importer"  # console_data's key never used in 130 days
RED, AMBER = "rgb(180, 35, 24)", "rgb(138, 90, 0)"


def shot(target, name: str, width: int) -> None:
    """Save a screenshot of a whole page, or of one element, to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SHOTS / f"{name}-{width}.png")
    if hasattr(target, "goto"):
        target.screenshot(path=path, full_page=True)
    else:
        target.screenshot(path=path)


def fits(page) -> None:
    """Nothing scrolls sideways: the page, nor any table's box."""
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    for wrap in page.locator(".table-wrap").all():
        scroll, client = wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert scroll <= client, f"a table scrolls sideways: {scroll} > {client}"


def row(page, name: str):
    return page.locator("#key-table tbody tr").filter(
        has=page.locator("a.key-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_an_owner_reads_compromised_expiring_and_stale_keys(browser, live_server, org, width):
    """The table warns of a key expiring in 3 days (amber, exact time on hover) and one in
    10 hours (red), marks the unused key Stale and the one the policy disables in 10 days, hides the compromised key until Status says
    Compromised, and the compromised key's page tells who reported it, when and where."""
    console = build_console(org)
    now = timezone.now()
    # Project keys unused for 30 days are disabled: one unused for 20 days is warned.
    disable_unused_after(org, KeyKind.PROJECT, 30)
    make_key(
        org,
        KeyKind.PROJECT,
        "idle-exporter",
        owner=console.project,
        created_at=now - timedelta(days=50),
        last_used_at=now - timedelta(days=20),
    )
    make_key(
        org,
        KeyKind.ORGANIZATION,
        "nightly-backup",
        expires_at=now + timedelta(days=3, hours=1),
        last_used_at=now - timedelta(hours=1),
    )
    make_key(org, KeyKind.ORGANIZATION, "rotation-canary", expires_at=now + timedelta(hours=10))
    failures: list[str] = []

    with opened_page(browser, live_server.url, width=width) as page:
        log_in(page, org.owner)
        page.goto("/o/acme/api-keys/")
        expect(page.locator("#key-table table")).to_be_visible()

        soon = row(page, "nightly-backup").locator(".expiry-soon time")
        expect(soon).to_have_text("in 3 days")
        expect(soon).to_have_attribute("title", EXACT_TIME)
        assert soon.evaluate("el => getComputedStyle(el).color") == AMBER
        urgent = row(page, "rotation-canary").locator(".expiry-urgent time")
        expect(urgent).to_have_text("in 10 hours")
        assert urgent.evaluate("el => getComputedStyle(el).color") == RED

        stale = row(page, STALE).locator(".badge", has_text="Stale")
        expect(stale).to_be_visible()
        expect(stale).to_have_attribute("title", "Never used; created 130 days ago")
        idle = row(page, "idle-exporter").locator(".badge-warning")
        expect(idle).to_contain_text("Disabled in 10 days unless used")
        expect(idle).to_have_attribute("title", re.compile(r"^Not used for 20 days\. The key"))
        expect(row(page, LEAKED)).to_have_count(0)
        shot(page, "keys", width)
        for name in ("nightly-backup", "rotation-canary", STALE, "idle-exporter"):
            shot(row(page, name), f"row-{name.replace(' ', '-')}", width)
        shot(page.locator("#key-table .filters"), "filters", width)
        fits(page)
        accessibility.audit(page, f"{width}px keys table", failures)

        # Last used: never used keys only.
        page.get_by_label("Last used").select_option("never")
        expect(page).to_have_url(re.compile(r"unused=never"))
        expect(row(page, STALE)).to_have_count(1)
        expect(row(page, "nightly-backup")).to_have_count(0)
        page.get_by_label("Last used").select_option("")
        # The filters are swapped with the table: wait for it before the next one.
        expect(page).to_have_url(re.compile(r"unused=(&|$)"))
        expect(row(page, "nightly-backup")).to_have_count(1)

        page.get_by_label("Status").select_option("compromised")
        expect(page).to_have_url(re.compile(r"status=compromised"))
        expect(page.locator("#key-table tbody tr")).to_have_count(1)
        badge = row(page, LEAKED).locator(".badge", has_text="Compromised")
        expect(badge).to_be_visible()
        assert badge.evaluate("el => getComputedStyle(el).backgroundColor") == RED
        shot(page, "keys-compromised", width)
        shot(row(page, LEAKED), "row-compromised", width)
        fits(page)
        accessibility.audit(page, f"{width}px keys table, compromised", failures)

        row(page, LEAKED).locator("a.key-name").click()
        expect(page.get_by_role("heading", name=LEAKED, exact=True)).to_be_visible()
        expect(page.locator(".page-header .badge", has_text="Compromised")).to_be_visible()
        report = page.locator(".key-compromised")
        expect(report).to_contain_text("Reported leaked by GitHub secret scanning 2 hours ago")
        expect(report).to_contain_text("acme/storefront")
        expect(report).to_contain_text(".github/workflows/release.env")
        expect(report).to_contain_text("9f9f9f9f9f9f")
        expect(report).to_contain_text("create a new key")
        link = report.locator("a", has_text="https://github.com/acme/storefront/blob/")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(page.get_by_role("link", name="Rotate…")).to_have_count(0)
        shot(page, "key-compromised", width)
        shot(page.locator(".page-header"), "key-compromised-header", width)
        # The page (the report included) fits; the permissions table may scroll in its box.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        accessibility.audit(page, f"{width}px compromised key's page", failures)

        page.goto("/o/acme/api-keys/policy/")
        select = page.get_by_label("Disable service account keys unused for")
        expect(select).to_have_value("")
        select.select_option("90")
        page.get_by_role("button", name="Save policy").click()
        expect(page.get_by_text("The key policy has been saved.")).to_be_visible()
        expect(select).to_have_value("90")
        shot(page, "key-policy", width)
        accessibility.audit(page, f"{width}px key policy", failures)
        assert_no_unexpected_console_errors(page)
    assert failures == [], "\n".join(failures)
