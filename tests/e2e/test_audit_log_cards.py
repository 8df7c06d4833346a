"""The audit log in real Chromium: readable events, a table at 1280 px and cards at 390 px."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from accounts.access import Actor
from accounts.models import Origin
from accounts.services import membership_change_role
from apikeys.authority import Refused
from apikeys.models import KeyKind
from apikeys.services import api_key_create, api_key_rotate, api_key_update
from projects.services import team_create
from tests.e2e.conftest import (
    assert_no_unexpected_console_errors,
    log_in,
    opened_page,
    save_screenshot,
)

pytestmark = pytest.mark.django_db(transaction=True)

LONG_NAME = "payments-reconciliation-nightly-export-to-the-data-warehouse"


def record_history(org) -> None:
    """Write the events a week of work leaves: keys made, disabled, rotated, a refusal."""
    owner = Actor(user=org.owner, ip="192.0.2.10")
    deploy, _ = api_key_create(
        actor=owner,
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        name="deploy",
        permissions=["projects:read", "members:update"],
    )
    api_key_create(
        actor=Actor(user=org.owner, ip="198.51.100.7", origin=Origin.CLI),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        name=LONG_NAME,
        permissions=["projects:read"],
    )
    api_key_update(actor=owner, api_key=deploy, status="disabled")
    api_key_update(actor=owner, api_key=deploy, status="active")
    api_key_rotate(actor=owner, api_key=deploy, grace="24h")
    with pytest.raises(Refused):
        api_key_rotate(actor=Actor(user=org.admin, ip="192.0.2.11"), api_key=deploy)
    membership_change_role(actor=owner, membership=org.membership(org.member), role="admin")
    team_create(actor=owner, organization=org.organization, name="Platform")


@contextmanager
def audit_page(browser, live_server, user, width: int):
    """Yield a page logged in as `user`, `width` px wide, showing the audit log."""
    with opened_page(browser, live_server.url, width=width) as page:
        log_in(page, user)
        page.goto("/o/acme/audit/")
        expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
        yield page


def assert_fits(page) -> None:
    """Neither the page nor the events' box scrolls sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    scroll, client = page.locator("#audit-table .table-wrap").evaluate(
        "el => [el.scrollWidth, el.clientWidth]"
    )
    assert scroll == client, f"the events scroll sideways: {scroll} > {client}"


EXPECTED_LABELS = [
    "Team created",
    "Member's role changed from member to admin",
    "Refused: rotate — You cannot rotate this key",
    "API key rotated (old secret works 24 hours)",
    "API key enabled",
    "API key disabled",
    "API key created",
    "API key created",
]


def test_the_audit_log_is_cards_at_390_px(browser, live_server, tmp_path, org):
    """At 390 px each event is a card: its label first, then when, actor, target (a link to
    the key), origin and address, each named; nothing scrolls sideways."""
    record_history(org)
    with audit_page(browser, live_server, org.owner, 390) as page:
        table = page.locator("table.audit-events")
        rows = table.locator("tbody tr")
        expect(rows).to_have_count(len(EXPECTED_LABELS))
        labels = [label.strip() for label in table.locator("td.audit-label").all_inner_texts()]
        for label, expected in zip(labels, EXPECTED_LABELS, strict=True):
            assert label.startswith(expected), (label, expected)
        assert_fits(page)

        for cell in table.locator("thead th").all():
            expect(cell).to_be_hidden()
        wrap_width = table.evaluate("el => el.closest('.table-wrap').clientWidth")
        for row in rows.all():
            assert row.evaluate("el => getComputedStyle(el).display") == "flex"
            assert abs(row.bounding_box()["width"] - wrap_width) <= 1
            title, when = row.locator("td.audit-label"), row.locator("td.audit-when")
            assert title.bounding_box()["y"] < when.bounding_box()["y"], "the label comes first"
            weight = title.locator(".cell-title").evaluate("el => getComputedStyle(el).fontWeight")
            assert weight == "600"
            for cell in row.locator("td[data-label]").all():
                before = cell.evaluate("el => getComputedStyle(el, '::before').content")
                assert before.strip('"') == cell.get_attribute("data-label")

        card = rows.filter(has_text="API key rotated (old secret works 24 hours)")
        expect(card.locator("td.audit-origin")).to_have_text("Web")
        expect(card.locator("td.audit-address")).to_have_text("192.0.2.10")
        # The exact time stays on hover, in the <time>'s title.
        assert card.locator("time").get_attribute("title")
        expect(rows.filter(has_text=LONG_NAME).locator("td.audit-origin")).to_have_text("CLI")
        page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar stays at the top
        save_screenshot(page, tmp_path, "audit-log-390")
        # What a phone shows of the cards: the window, scrolled to them below the top bar.
        table.evaluate("el => window.scrollTo(0, el.getBoundingClientRect().top + scrollY - 72)")
        save_screenshot(page, tmp_path, "audit-log-390-cards", full_page=False)

        card.get_by_role("link", name="deploy").click()
        expect(page.get_by_role("heading", name="deploy")).to_be_visible()
        history = page.locator("table.key-history td.audit-label")
        expect(history.nth(0)).to_contain_text("Refused: rotate — You cannot rotate this key")
        expect(history.nth(1)).to_have_text("Rotated (old secret works 24 hours)")
        assert_no_unexpected_console_errors(page)


def test_the_audit_log_is_a_table_at_1280_px(browser, live_server, tmp_path, org):
    """At 1280 px the events are a table with every column, none scrolling sideways."""
    record_history(org)
    with audit_page(browser, live_server, org.owner, 1280) as page:
        table = page.locator("table.audit-events")
        for header in ("When", "Actor", "Event", "Target", "Origin", "Address"):
            expect(table.get_by_role("columnheader", name=header)).to_be_visible()
        assert (
            table.locator("tbody tr").first.evaluate("el => getComputedStyle(el).display")
            == "table-row"
        )
        assert_fits(page)
        save_screenshot(page, tmp_path, "audit-log-1280")
        assert_no_unexpected_console_errors(page)
