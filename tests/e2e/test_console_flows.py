"""Issue 11's everyday flows in real Chromium: a key from a name alone, errors you can see,
dialogs that keep focus, safe destructive actions, and an Explorer that never surprises."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.access import Actor
from accounts.models import AuditEvent
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_create
from tests.e2e.conftest import (
    assert_no_unexpected_console_errors,
    choose,
    log_in,
    opened_page,
    save_screenshot,
)
from tests.factories import ProjectFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = re.compile(r"^sk-(user|org|project|svc)-[0-9A-Za-z]{38}$")


def org_key(org, maker, name: str, permissions: list[str]) -> tuple[ApiKey, str]:
    """Return a new organization key of `org` made by `maker`."""
    return api_key_create(
        actor=Actor(user=maker),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        name=name,
        permissions=permissions,
    )


def focused(page) -> str:
    """Return a short description of the focused element."""
    return page.evaluate(
        "() => { const e = document.activeElement; return e.tagName + '#' + e.id + '.' + "
        "(e.getAttribute('name') || '') + ':' + (e.textContent || '').trim().slice(0, 30); }"
    )


def inside_dialog(page) -> bool:
    return page.evaluate(
        "() => document.getElementById('key-dialog').contains(document.activeElement)"
    )


@pytest.mark.parametrize("kind", ["user", "org", "project", "svc"])
def test_a_name_alone_makes_a_working_key(page, org, kind, tmp_path):
    """Type a name, press Create: a working key of that kind, its preset chosen already."""
    project = ProjectFactory(team__organization=org.organization, name="Payments")
    account = ServiceAccountFactory(organization=org.organization, name="deploy-bot")
    start = {
        "user": ("/o/acme/settings/api-keys/", org.member),
        "org": ("/o/acme/api-keys/", org.admin),
        "project": (f"/o/acme/projects/{project.pk}/", org.admin),
        "svc": (f"/o/acme/service-accounts/{account.pk}/", org.admin),
    }
    path, user = start[kind]
    log_in(page, user)
    page.goto(path)
    page.get_by_role("link", name="Create an API key").first.click()
    dialog = page.locator("#key-dialog")
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    expect(dialog.locator("details.customize")).not_to_have_attribute("open", "")
    if kind == "user":
        save_screenshot(page, tmp_path, "create-name-only", full_page=False)

    dialog.get_by_label("Name", exact=True).fill(f"name only {kind}")
    dialog.get_by_role("button", name="Create API key").click()

    code = dialog.locator("#new-key")
    expect(code).to_have_text(TOKEN)
    api_key = ApiKey.objects.get(name=f"name only {kind}")
    assert api_key.kind == kind
    assert api_key.permissions
    assert_no_unexpected_console_errors(page)


def test_an_error_is_focused_and_visible(page, org):
    """A custom date in the past: the error sits by the date, red, announced, focused and in
    view; nothing is made."""
    log_in(page, org.admin)
    page.goto("/o/acme/api-keys/")
    page.get_by_role("link", name="Create an API key").first.click()
    dialog = page.locator("#key-dialog")
    dialog.get_by_label("Name", exact=True).fill("too late")
    dialog.get_by_label("Expiration").select_option("custom")
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    dialog.get_by_label("Custom date").fill(yesterday)
    dialog.get_by_role("button", name="Create API key").click()

    date = dialog.get_by_label("Custom date")
    expect(date).to_be_focused()
    expect(date).to_have_attribute("aria-invalid", "true")
    error = dialog.locator("#key_expires_on_error")
    expect(error).to_have_text("The expiration date must be in the future.")
    expect(error).to_be_in_viewport()
    assert "key_expires_on_error" in date.get_attribute("aria-describedby")
    color = error.evaluate("e => getComputedStyle(e).color")
    assert color.startswith("rgb(") and int(color[4:].split(",")[0]) > 150  # red
    assert not ApiKey.objects.filter(name="too late").exists()
    assert_no_unexpected_console_errors(page)


def test_focus_stays_in_the_dialog_and_returns_to_its_button(page, org):
    """Tab goes round inside the open dialog; closing it puts focus back on what opened it."""
    log_in(page, org.member)
    page.goto("/o/acme/settings/api-keys/")
    opener = page.locator(".page-header").get_by_role("link", name="Create an API key")
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#key-dialog")
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()

    for _ in range(60):
        page.keyboard.press("Tab")
        assert inside_dialog(page), focused(page)
    for _ in range(10):
        page.keyboard.press("Shift+Tab")
        assert inside_dialog(page), focused(page)
    page.keyboard.press("Escape")

    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()


def test_revoke_opens_on_cancel_and_a_double_enter_revokes_once(page, org, tmp_path):
    """The confirmation focuses Cancel; Enter twice on Revoke revokes once and says so."""
    api_key, _ = org_key(org, org.admin, "grafana", ["projects:read"])
    log_in(page, org.admin)
    page.goto(f"/o/acme/api-keys/{api_key.pk}/")
    page.locator(".page-header").get_by_role("link", name="Revoke…").click()
    dialog = page.locator("#key-dialog")
    expect(dialog.get_by_role("link", name="Cancel")).to_be_focused()
    save_screenshot(page, tmp_path, "revoke-confirm", full_page=False)

    dialog.get_by_role("button", name="Revoke API key").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")

    expect(page.locator(".toast")).to_contain_text("The API key “grafana” has been revoked.")
    expect(page.locator(".toast-error")).to_have_count(0)
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1
    assert_no_unexpected_console_errors(page)


def test_closing_the_reveal_without_copying_asks_first(page, org):
    """Done without Copy asks "Did you copy the key?"; going back keeps the key on screen."""
    log_in(page, org.member)
    page.goto("/o/acme/settings/api-keys/")
    page.locator(".page-header").get_by_role("link", name="Create an API key").click()
    dialog = page.locator("#key-dialog")
    dialog.get_by_label("Name", exact=True).fill("laptop")
    dialog.get_by_role("button", name="Create API key").click()
    expect(dialog.locator("#new-key")).to_have_text(TOKEN)

    dialog.get_by_role("button", name="Done").click()
    ask = dialog.get_by_role("alertdialog")
    expect(ask).to_contain_text("Did you copy the key?")
    expect(dialog.get_by_role("button", name="Go back and copy it")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Go back and copy it").click()
    expect(ask).to_be_hidden()

    dialog.get_by_role("button", name="Copy").first.click()
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#new-key")).to_have_count(0)


def test_the_explorer_confirms_what_changes_and_wants_its_parameters(page, org):
    """Sending a DELETE says what it does ("This revokes the key you are exploring") and waits
    for Send it; a required path parameter left empty is named beside its field."""
    api_key, _ = org_key(org, org.owner, "explored", ["api-keys:manage", "teams:read"])
    log_in(page, org.owner)
    page.goto(f"/o/acme/api-keys/{api_key.pk}/explore/")
    page.wait_for_selector("#explorer-endpoint option[value='0']", state="attached")

    choose(page, r"^GET /api/v1/teams/\{item_id\} ")
    page.get_by_role("button", name="Send request").click()
    item = page.get_by_label("item_id (path, required)")
    expect(item).to_be_focused()
    expect(page.locator("#param-item_id-error")).to_have_text("Fill in item_id before sending.")
    expect(page.locator("#explorer-response")).to_be_hidden()

    choose(page, r"^DELETE /api/v1/keys/\{key_id\} ")
    expect(page.get_by_label("key_id (path, required)")).to_have_value(str(api_key.pk))
    page.get_by_role("button", name="Send request").click()
    confirm = page.get_by_role("alertdialog")
    expect(confirm).to_contain_text("This revokes the key you are exploring")
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.get_by_role("button", name="Cancel").click()
    api_key.refresh_from_db()
    assert not api_key.is_revoked

    page.get_by_role("button", name="Send request").click()
    page.get_by_role("button", name="Send it").click()
    expect(page.locator("#explorer-status")).to_have_text("204")
    api_key.refresh_from_db()
    assert api_key.is_revoked


def test_a_rows_menu_revokes_in_a_dialog_without_leaving_the_list(page, org, tmp_path):
    """ "…" on a key's row offers Revoke; the confirmation opens over the filtered list, on
    Cancel; confirming revokes it and returns to the same filtered list."""
    for name in ("deploy web", "deploy api", "grafana"):
        org_key(org, org.admin, name, ["projects:read"])
    log_in(page, org.admin)
    page.goto("/o/acme/api-keys/?q=deploy")
    row = page.locator("#key-table tr", has=page.get_by_role("link", name="deploy api", exact=True))
    row.get_by_label("Actions for deploy api").click()
    save_screenshot(page, tmp_path, "row-menu", full_page=False)
    row.get_by_role("link", name="Revoke…").click()
    dialog = page.locator("#key-dialog")
    expect(dialog.get_by_role("heading", name="Revoke API key “deploy api”?")).to_be_visible()
    expect(dialog.get_by_role("link", name="Cancel")).to_be_focused()
    assert page.url.endswith("/o/acme/api-keys/?q=deploy")

    dialog.get_by_role("button", name="Revoke API key").click()

    expect(page.locator(".toast")).to_contain_text("The API key “deploy api” has been revoked.")
    assert page.url.endswith("/o/acme/api-keys/?q=deploy")
    table = page.locator("#key-table")
    expect(table).not_to_contain_text("deploy api")
    expect(table).to_contain_text("deploy web")
    assert ApiKey.objects.get(name="deploy api").is_revoked
    assert_no_unexpected_console_errors(page)


def test_a_rows_menu_stays_on_screen_at_390_px(browser, live_server, org):
    """On a phone the "…" of a key's card opens inside the screen, both items visible."""
    org_key(org, org.admin, "grafana", ["projects:read"])
    with opened_page(browser, live_server.url, width=390) as page:
        log_in(page, org.admin)
        page.goto("/o/acme/api-keys/")
        page.get_by_label("Actions for grafana").click()
        for name in ("Open", "Revoke…"):
            box = page.get_by_role("link", name=name, exact=True).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, name


def test_a_confirmation_holds_for_the_one_call_it_named(page, org):
    """A confirmation cut short (a parameter emptied, another operation chosen) does not carry
    over: the next destructive call asks again."""
    api_key, _ = org_key(org, org.owner, "explored", ["api-keys:manage"])
    log_in(page, org.owner)
    page.goto(f"/o/acme/api-keys/{api_key.pk}/explore/")
    page.wait_for_selector("#explorer-endpoint option[value='0']", state="attached")
    choose(page, r"^POST /api/v1/keys/\{key_id\}/revoke ")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("alertdialog")).to_be_visible()
    page.get_by_label("key_id (path, required)").fill("")
    expect(page.get_by_role("alertdialog")).to_be_hidden()

    choose(page, r"^DELETE /api/v1/keys/\{key_id\} ")
    page.get_by_role("button", name="Send request").click()

    expect(page.get_by_role("alertdialog")).to_contain_text(
        "This revokes the key you are exploring"
    )
    api_key.refresh_from_db()
    assert not api_key.is_revoked


def test_focus_follows_a_key_made_from_the_tables_own_button(page, org):
    """Created from the empty table's button: once the reveal closes and the table refreshes,
    focus is on the new key's link, not lost on the page."""
    log_in(page, org.member)
    page.goto("/o/acme/settings/api-keys/")
    page.locator("#key-table").get_by_role("link", name="Create an API key").click()
    dialog = page.locator("#key-dialog")
    dialog.get_by_label("Name", exact=True).fill("laptop")
    dialog.get_by_role("button", name="Create API key").click()
    dialog.get_by_role("button", name="Copy").first.click()
    dialog.get_by_role("button", name="Done").click()

    expect(
        page.locator("#key-table").get_by_role("link", name="laptop", exact=True)
    ).to_be_focused()
