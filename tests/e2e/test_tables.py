"""Tables that fit: every column at 1280 px without scrolling sideways, cards at 390 px, and
empty keys tables that say what they hide."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apikeys.models import ApiKey, KeyKind
from tests.e2e.conftest import (
    assert_no_unexpected_console_errors,
    log_in,
    opened_page,
    save_screenshot,
)
from tests.e2e.console_data import LONG_SPACED_NAME, LONG_WORD_NAME, build_console, make_key

pytestmark = pytest.mark.django_db(transaction=True)

WIDE, NARROW = 1280, 390


@contextmanager
def console_page(browser, live_server, user, width: int):
    """Yield a page logged in as `user` in a window `width` px wide."""
    with opened_page(browser, live_server.url, width=width) as page:
        log_in(page, user)
        yield page


def scroll_to(locator) -> None:
    """Scroll the window so that `locator` starts just below the 390 px top bar."""
    locator.evaluate(
        "el => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 72)"
    )


def assert_fits(page) -> None:
    """Neither the page nor any table's box scrolls sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    for wrap in page.locator(".table-wrap").all():
        scroll, client = wrap.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert scroll == client, f"a table scrolls sideways: {scroll} > {client}"


def assert_cards(page, table, *, titles: list[str]) -> None:
    """The table's column headers are hidden and each row is a card, its title visible."""
    header_cells = table.locator("thead th:not(.select)")
    assert header_cells.count() > 0
    for cell in header_cells.all():
        expect(cell).to_be_hidden()
    wrap_width = table.evaluate("el => el.closest('.table-wrap').clientWidth")
    rows = table.locator("tbody tr")
    for row in rows.all():
        assert row.evaluate("el => getComputedStyle(el).display") == "block"
        box = row.bounding_box()
        assert abs(box["width"] - wrap_width) <= 1, "a card takes the table's whole width"
    for title in titles:
        card = rows.filter(has=page.locator(".cell-main", has_text=title)).first
        expect(card.locator(".cell-main")).to_be_visible()
        # Every other cell says what it is, as its column's header did.
        for cell in card.locator("td[data-label]").all():
            if cell.is_visible():
                label = cell.evaluate("el => getComputedStyle(el, '::before').content")
                assert label.strip('"') == cell.get_attribute("data-label")


def test_organization_keys_fit_at_1280_px(browser, live_server, tmp_path, org):
    """Every column of the organization's keys shows at 1280 px without scrolling sideways;
    names link to their keys, wrap only between words and are whole in their title; the
    status filter's text is not cut."""
    console = build_console(org)
    with console_page(browser, live_server, org.owner, WIDE) as page:
        page.goto("/o/acme/api-keys/")
        table = page.locator("#key-table table")
        expect(table).to_be_visible()
        assert_fits(page)
        headers = table.locator("thead th")
        for header in ("API key", "Owner", "Status", "Created", "Expires", "Last used"):
            expect(headers.filter(has_text=header).first).to_be_visible()

        live = [key for key in console.keys if key.revoked_at is None]
        expect(table.locator("tbody tr")).to_have_count(len(live))
        for key in live[:6]:
            link = table.locator(f"a.key-name[href='/o/acme/api-keys/{key.pk}/']")
            expect(link).to_be_visible()
            expect(link).to_have_attribute("title", key.name)
        for name in (LONG_WORD_NAME, LONG_SPACED_NAME):
            link = table.locator("a.key-name", has_text=name).first
            expect(link).to_have_attribute("title", name)
            assert link.evaluate(
                "el => [getComputedStyle(el).overflowWrap, getComputedStyle(el).wordBreak]"
            ) == ["normal", "normal"]
            # At most two lines, the rest cut with an ellipsis inside the cell.
            height, line = link.evaluate(
                "el => [el.clientHeight, parseFloat(getComputedStyle(el).lineHeight)]"
            )
            assert height <= 2 * line + 1

        status = page.get_by_label("Status")
        shown, needed = status.evaluate(
            """el => {
                const shown = el.getBoundingClientRect().width;
                el.style.width = 'max-content';
                const needed = el.getBoundingClientRect().width;
                el.style.width = '';
                return [shown, needed];
            }"""
        )
        assert shown >= needed, "the status filter's text is cut"
        save_screenshot(page, tmp_path, "tables-keys-1280")

        # Keyboard users reach the table's box, and it says what it is.
        wrap = page.locator("#key-table .table-wrap")
        expect(wrap).to_have_attribute("tabindex", "0")
        expect(wrap).to_have_attribute("aria-label", "API keys table")
        assert_no_unexpected_console_errors(page)


def test_organization_keys_are_cards_at_390_px(browser, live_server, tmp_path, org):
    """At 390 px each key is a card: its name links to its page, then owner, status, expiry and
    last use under their names, and the box to select it."""
    console = build_console(org)
    with console_page(browser, live_server, org.owner, NARROW) as page:
        page.goto("/o/acme/api-keys/")
        table = page.locator("#key-table table")
        assert_fits(page)
        assert_cards(page, table, titles=["terraform-cloud-runner", "ci"])
        expect(page.get_by_label("Select every key on this page")).to_be_visible()

        key = next(
            k for k in console.keys if k.revoked_at is None and k.kind == KeyKind.SERVICE_ACCOUNT
        )
        name_link = f"a.key-name[href='/o/acme/api-keys/{key.pk}/']"
        link = table.locator(name_link)
        card = table.locator("tbody tr", has=page.locator(name_link))
        expect(link).to_be_visible()
        expect(card.get_by_role("checkbox", name=f"Select {key.name}")).to_be_visible()
        for label in ("Owner", "Status", "Expires", "Last used"):
            expect(card.locator(f"td[data-label='{label}']")).to_be_visible()
        expect(card.locator("td[data-label='Owner']")).to_contain_text("Service account")
        # A card is as wide as the table and its name stays inside it.
        name_box, card_box = link.bounding_box(), card.bounding_box()
        assert name_box["x"] + name_box["width"] <= card_box["x"] + card_box["width"]

        scroll_to(table)
        save_screenshot(page, tmp_path, "tables-keys-390", full_page=False)
        link.click()
        expect(page.get_by_role("heading", name=key.name, exact=True)).to_be_visible()
        assert_no_unexpected_console_errors(page)


@pytest.mark.parametrize(
    ("name", "path", "titles"),
    [
        ("members", "/o/acme/members/", ["Ada Lovelace-Montgomery", "Grace Hopper"]),
        ("apps", "/o/acme/apps/", ["Storefront", "Internal administration dashboard"]),
        ("service-accounts", "/o/acme/service-accounts/", ["deploy-bot", "retired-bot"]),
    ],
)
def test_lists_fit_at_1280_px_and_are_cards_at_390_px(
    browser, live_server, tmp_path, org, name, path, titles
):
    """Members, apps and service accounts show every column at 1280 px and a card per row
    at 390 px."""
    build_console(org)
    with console_page(browser, live_server, org.owner, WIDE) as page:
        page.goto(path)
        table = page.locator(".table-wrap table").first
        expect(table.locator("thead")).to_be_visible()
        assert_fits(page)
        save_screenshot(page, tmp_path, f"tables-{name}-1280")
    with console_page(browser, live_server, org.owner, NARROW) as page:
        page.goto(path)
        table = page.locator(".table-wrap table").first
        assert_fits(page)
        assert_cards(page, table, titles=titles)
        scroll_to(table)
        save_screenshot(page, tmp_path, f"tables-{name}-390", full_page=False)
        assert_no_unexpected_console_errors(page)


def test_service_account_names_link_to_their_pages(browser, live_server, org):
    """A service account's name in the list opens its page."""
    console = build_console(org)
    with console_page(browser, live_server, org.owner, WIDE) as page:
        page.goto("/o/acme/service-accounts/")
        page.get_by_role("link", name="deploy-bot", exact=True).click()
        expect(page.get_by_role("heading", name="deploy-bot")).to_be_visible()
        assert page.url.endswith(f"/service-accounts/{console.account.pk}/")


def test_empty_keys_tables_say_how_many_revoked_keys_they_hide(browser, live_server, org):
    """A table whose keys are all revoked does not say "yet": it counts them and links to them,
    on a project's page (no filters) and on the personal keys page (filters)."""
    console = build_console(org)
    ApiKey.objects.filter(owner_project=console.project).update(revoked_at=timezone.now())
    make_key(org, KeyKind.USER, "old laptop", owner=org.member, revoked_at=timezone.now())
    with console_page(browser, live_server, org.owner, WIDE) as page:
        page.goto(f"/o/acme/projects/{console.project.pk}/")
        table = page.locator("#key-table")
        expect(table.get_by_role("heading", name="No active API key.")).to_be_visible()
        expect(table).to_contain_text("5 revoked keys are hidden.")
        expect(table).not_to_contain_text("yet")
        table.get_by_role("link", name="Show revoked keys").click()
        expect(page).to_have_url(
            f"{live_server.url}/o/acme/projects/{console.project.pk}/?status=revoked"
        )
        expect(table.locator("tbody tr")).to_have_count(5)
        expect(table.locator("tbody")).to_contain_text("Revoked")
        table.get_by_role("link", name="Hide revoked keys").click()
        expect(table.get_by_role("heading", name="No active API key.")).to_be_visible()

    ApiKey.objects.filter(owner_user=org.member).update(revoked_at=timezone.now())
    with console_page(browser, live_server, org.member, WIDE) as page:
        page.goto("/o/acme/settings/api-keys/")
        table = page.locator("#key-table")
        expect(table).to_contain_text("6 revoked keys are hidden.")
        expect(table).not_to_contain_text("yet")
        # A search that matches only revoked keys offers them too.
        page.get_by_label("Search by name").fill("laptop")
        expect(table).to_contain_text("2 revoked keys match them.")
        table.get_by_role("link", name="Show revoked keys").click()
        expect(page.get_by_label("Status")).to_have_value("revoked")
        expect(page.get_by_label("Search by name")).to_have_value("laptop")
        expect(table.locator("tbody tr")).to_have_count(2)
