"""A newcomer's first minutes, in real Chromium: sign up, create a project, invite a member."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Invitation, Membership, Role
from projects.models import Project
from tests.e2e.conftest import save_screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_up_create_project_invite_member(page, tmp_path):
    """Sign up by email, create a project and invite a member, all with the keyboard-usable console."""
    page.goto("/signup/")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.test")
    page.get_by_label("Organization name").fill("Engines Ltd")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Check your inbox at ada@example.test.")

    # The emailed link opens the page to choose the password; Enter submits it.
    [message] = mail.outbox
    page.goto(re.search(r"http://\S+/signup/confirm/\?token=\S+", message.body).group())
    expect(page.get_by_role("heading", name="Choose a password")).to_be_visible()
    page.get_by_label("Password").fill("analytical-engine-1843")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.locator(".toast")).to_contain_text("Engines Ltd is ready")

    page.get_by_label("Name").fill("Difference Engine")
    page.get_by_role("button", name="Create project").click()
    # htmx swaps the list in place: the new project appears without a reload.
    expect(page.get_by_role("link", name="Difference Engine")).to_be_visible()
    assert Project.objects.filter(
        name="Difference Engine", organization__slug="engines-ltd"
    ).exists()
    save_screenshot(page, tmp_path, "projects", docs=True)

    page.get_by_role("link", name="Members").first.click()
    page.get_by_label("Email").fill("charles@example.test")
    page.get_by_label("Role").select_option(Role.ADMIN)
    page.get_by_role("button", name="Send invitation").click()

    link = page.locator("#invitation-link")
    expect(link).to_contain_text("/invitations/")
    expect(page.get_by_role("cell", name="charles@example.test")).to_be_visible()
    invitation = Invitation.objects.get(email="charles@example.test")
    assert invitation.role == Role.ADMIN
    assert link.inner_text() in mail.outbox[-1].body
    save_screenshot(page, tmp_path, "members-invite", docs=True)
    assert (tmp_path / "members-invite.png").stat().st_size > 10_000

    assert Membership.objects.get(user__email="ada@example.test").role == Role.OWNER
    assert page.console_errors == []


def test_console_is_usable_at_390px(page, tmp_path, org):
    """At 390 px the sidebar becomes a menu that opens and navigates."""
    page.context.add_cookies([])
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/login/")
    page.get_by_label("Email").fill(org.owner.email)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.locator(".sidebar")).to_be_hidden()
    page.get_by_text("Menu").click()
    page.locator(".topbar").get_by_role("link", name="Members").click()
    expect(page).to_have_url(re.compile(r"/o/acme/members/$"))
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    save_screenshot(page, tmp_path, "members-390px", docs=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390
