"""API keys in real Chromium: create in the dialog, reveal once, manage, rotate and delete."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from accounts.access import Actor
from apikeys.models import ApiKey, KeyKind
from apikeys.permissions import READ_ONLY, ordered
from apikeys.services import api_key_create
from tests.e2e.conftest import assert_no_unexpected_console_errors, log_in, save_screenshot

pytestmark = pytest.mark.django_db(transaction=True)

USER_TOKEN = re.compile(r"^sk-user-[0-9A-Za-z]{38}$")


def open_personal_keys(page) -> None:
    page.locator(".sidebar").get_by_role("link", name="Personal API keys").click()
    expect(page.get_by_role("heading", name="Personal API keys", exact=True)).to_be_visible()


def open_create_dialog(page):
    page.locator(".page-header").get_by_role("link", name="Create an API key").click()
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Create an API key")).to_be_visible()
    return dialog


def owner_key(org, name: str = "deploy bot") -> ApiKey:
    api_key, _token = api_key_create(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.USER,
        owner=org.owner,
        name=name,
        permissions=ordered(READ_ONLY),
        expires_at=timezone.now() + timedelta(days=20),
    )
    return api_key


def test_member_creates_personal_key_and_sees_it_once(page, tmp_path, org):
    """A member creates a read-only personal key in the dialog; the token is shown once only."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, org.member)
    open_personal_keys(page)
    dialog = open_create_dialog(page)

    dialog.get_by_label("Name", exact=True).fill("laptop cli")
    dialog.get_by_role("radio", name="Read-only", exact=True).check()
    # The preset ticks its permissions in the form before anything is sent.
    expect(dialog.locator("input[name=permissions][value='projects:read']")).to_be_checked()
    dialog.get_by_label("Expiration").select_option(label="30 days")
    save_screenshot(page, tmp_path, "api-key-create-form")
    dialog.get_by_role("button", name="Create API key").click()

    expect(dialog).to_contain_text("Important: copy this key now, it will not be shown again.")
    token = dialog.locator("#new-key").inner_text().strip()
    assert USER_TOKEN.match(token), token
    expect(dialog.locator("#new-key-export")).to_have_text(f"export KEYPORTAL_API_KEY={token}")

    api_key = ApiKey.objects.get(name="laptop cli")
    assert api_key.owner_user == org.member
    assert set(api_key.permissions) == READ_ONLY
    assert api_key.expires_at is not None
    assert timedelta(days=29) < api_key.expires_at - timezone.now() <= timedelta(days=30)
    assert api_key.preview == f"sk-user-...{token[-4:]}"

    copy = dialog.locator("[data-copy-target=new-key]")
    copy.click()
    expect(copy).to_have_text("Copied")
    try:
        clipboard = page.evaluate("navigator.clipboard.readText()")
    except PlaywrightError:  # headless Chromium without a clipboard: the label is the proof
        clipboard = None
    if clipboard is not None:
        assert clipboard == token
    save_screenshot(page, tmp_path, "api-key-reveal", docs=True)

    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    table = page.locator("#key-table")
    expect(table.get_by_text("laptop cli", exact=True)).to_be_visible()
    expect(table).to_contain_text(f"sk-user-...{token[-4:]}")
    assert token not in page.content()

    page.reload()
    expect(page.locator("#key-table")).to_contain_text("laptop cli")
    assert token not in page.content()
    page.go_back()
    page.wait_for_load_state()
    assert token not in page.content()
    page.go_forward()
    expect(page.locator("#key-table")).to_contain_text("laptop cli")
    assert token not in page.content()
    save_screenshot(page, tmp_path, "api-keys-list", docs=True)
    assert_no_unexpected_console_errors(page)


def test_owner_disables_enables_rotates_and_deletes_key(page, tmp_path, org):
    """An owner disables, re-enables, rotates (24 h grace) and finally deletes a key."""
    api_key = owner_key(org)
    old_preview = api_key.preview
    log_in(page, org.owner)
    open_personal_keys(page)
    page.get_by_role("link", name="deploy bot", exact=True).click()
    header = page.locator(".page-header")
    expect(page.get_by_role("heading", name="deploy bot")).to_be_visible()
    expect(header.locator(".badge")).to_have_text("Active")

    edit = page.locator("#key-edit")
    edit.get_by_role("radio", name="Disabled").check()
    edit.get_by_role("button", name="Save").click()
    expect(page.locator(".toast")).to_contain_text("The API key has been updated.")
    expect(header.locator(".badge")).to_have_text("Disabled")
    api_key.refresh_from_db()
    assert api_key.status == "disabled"

    edit.get_by_role("radio", name="Active").check()
    edit.get_by_role("button", name="Save").click()
    expect(header.locator(".badge")).to_have_text("Active")
    api_key.refresh_from_db()
    assert api_key.status == "active"

    header.get_by_role("link", name="Rotate…").click()
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("radio", name="In 24 hours").check()
    dialog.get_by_role("button", name="Rotate key").click()
    expect(dialog).to_contain_text("Important: copy this key now, it will not be shown again.")
    expect(dialog).to_contain_text("The old secret keeps working until")
    token = dialog.locator("#new-key").inner_text().strip()
    assert USER_TOKEN.match(token), token
    api_key.refresh_from_db()
    assert api_key.preview == f"sk-user-...{token[-4:]}"
    assert api_key.preview != old_preview
    assert api_key.previous_valid_until is not None

    dialog.get_by_role("button", name="Copy").first.click()
    with page.expect_navigation():
        dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Rotated")
    expect(facts).to_contain_text("the old secret works until")
    expect(header).to_contain_text(api_key.preview)
    expect(page.locator(".key-history")).to_contain_text("Rotated (old secret works 24 hours)")
    assert token not in page.content()
    save_screenshot(page, tmp_path, "api-key-detail", docs=True)

    page.locator(".danger-zone").get_by_role("link", name="Revoke API key…").click()
    confirm = page.locator("#key-dialog")
    expect(confirm.get_by_role("heading", name="Revoke API key “deploy bot”?")).to_be_visible()
    # A destructive confirmation opens on its safe choice.
    expect(confirm.get_by_role("link", name="Cancel")).to_be_focused()
    confirm.get_by_role("button", name="Revoke API key").click()
    expect(page.get_by_role("heading", name="Personal API keys", exact=True)).to_be_visible()
    expect(page.locator(".toast")).to_contain_text("The API key “deploy bot” has been revoked.")
    expect(page.locator("#key-table")).not_to_contain_text("deploy bot")
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert_no_unexpected_console_errors(page)


def test_duplicate_name_error_stays_in_dialog(page, tmp_path, org):
    """A taken name keeps the dialog open with the message next to Name and the name kept."""
    log_in(page, org.member)
    open_personal_keys(page)
    dialog = open_create_dialog(page)
    dialog.get_by_label("Name", exact=True).fill("dup")
    dialog.get_by_role("radio", name="Read-only", exact=True).check()
    dialog.get_by_role("button", name="Create API key").click()
    expect(dialog.locator("#new-key")).to_have_text(USER_TOKEN)
    dialog.get_by_role("button", name="Copy").first.click()
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#key-table").get_by_text("dup", exact=True)).to_be_visible()

    dialog = open_create_dialog(page)
    name = dialog.get_by_label("Name", exact=True)
    name.fill("dup")
    dialog.get_by_role("radio", name="Read-only", exact=True).check()
    dialog.get_by_role("button", name="Create API key").click()

    error = dialog.locator("#key_name_error")
    expect(error).to_have_text("A live key of this owner is already named “dup”.")
    expect(dialog).to_be_visible()
    expect(name).to_have_value("dup")
    # The message sits with the Name field, not at the top of the form or elsewhere.
    field = dialog.locator(".field", has=page.locator("#key_name"))
    expect(field.locator(".error")).to_have_text(error.inner_text())
    expect(dialog.locator("#new-key")).to_have_count(0)
    assert ApiKey.objects.filter(name="dup").count() == 1
    save_screenshot(page, tmp_path, "api-key-duplicate-name")
    assert_no_unexpected_console_errors(page)


def test_create_dialog_is_usable_at_390px(page, tmp_path, org):
    """At 390 px the create dialog fits the width and its submit button can be clicked."""
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, org.member)
    page.goto(f"/o/{org.organization.slug}/settings/api-keys/")
    dialog = open_create_dialog(page)
    save_screenshot(page, tmp_path, "api-key-dialog-390px-top")

    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = dialog.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    dialog.get_by_label("Name", exact=True).fill("phone")
    dialog.get_by_role("radio", name="Read-only", exact=True).check()
    submit = dialog.get_by_role("button", name="Create API key")
    submit.scroll_into_view_if_needed()
    submit_box = submit.bounding_box()
    assert submit_box is not None
    assert submit_box["x"] >= 0
    assert submit_box["x"] + submit_box["width"] <= 390
    save_screenshot(page, tmp_path, "api-key-dialog-390px")
    submit.click()

    expect(dialog.locator("#new-key")).to_have_text(USER_TOKEN)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    dialog.get_by_role("button", name="Done").click()
    # Not copied: the dialog asks first, and closing anyway is one more press.
    dialog.get_by_role("button", name="Close without copying").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#key-table").get_by_text("phone", exact=True)).to_be_visible()
    assert_no_unexpected_console_errors(page)


def test_owner_disables_a_members_key_and_only_the_member_enables_it(
    page, tmp_path, org, browser, live_server
):
    """On a member's key the owner gets Disable and Delete, not Edit or Rotate (DESIGN rule 2);
    the key is refused from the next request; the member alone enables it again."""
    member_key, token = api_key_create(
        actor=Actor(user=org.member),
        organization=org.organization,
        kind=KeyKind.USER,
        owner=org.member,
        name="laptop",
        permissions=ordered(READ_ONLY),
        expires_at=timezone.now() + timedelta(days=7),
    )
    log_in(page, org.owner)
    page.goto(f"/o/acme/api-keys/{member_key.pk}/")
    header = page.locator(".page-header")
    expect(header.get_by_role("button", name="Disable")).to_be_visible()
    expect(header.get_by_role("link", name="Rotate…")).to_have_count(0)
    expect(page.locator("#key-edit")).to_have_count(0)
    save_screenshot(page, tmp_path, "owner-on-members-key")

    header.get_by_role("button", name="Disable").click()

    expect(page.get_by_text("“laptop” has been disabled")).to_be_visible()
    member_key.refresh_from_db()
    assert member_key.status == "disabled"
    expect(page.locator(".page-header").get_by_role("button", name="Enable")).to_have_count(0)

    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    member = context.new_page()
    log_in(member, org.member)
    member.goto(f"/o/acme/api-keys/{member_key.pk}/")
    save_screenshot(member, tmp_path, "member-enables-390", full_page=False)
    member.locator(".page-header").get_by_role("button", name="Enable").click()
    expect(member.get_by_text("“laptop” has been enabled")).to_be_visible()
    member_key.refresh_from_db()
    assert member_key.status == "active"
    context.close()
    assert token not in page.content()
