"""Reporting a leaked key in real Chromium: from the login page, at 1280 and 390 px, by keyboard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core import mail
from playwright.sync_api import expect

from apikeys.models import ApiKey, KeyKind
from tests.apikeys.conftest import new_key
from tests.e2e.conftest import assert_no_unexpected_console_errors, opened_page, save_screenshot

pytestmark = pytest.mark.django_db(transaction=True)

NEUTRAL = "If this is a live keyportal key, it no longer works and its owner has been told."
AXE = Axe()


def serious_violations(page) -> list[str]:
    return [
        f"{v['id']}: {v['help']}"
        for v in AXE.run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_report_a_leaked_key_from_the_login_page(browser, live_server, org, width, tmp_path):
    """From the login page's link, a mistyped key is refused next to its field and the field
    comes back empty; the whole key is then reported with the keyboard alone, the neutral
    answer shows, and the key no longer works."""
    # KEYPORTAL_SHOTS names a folder to keep the screenshots in, to look at them.
    shots = Path(os.environ.get("KEYPORTAL_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    api_key, token = new_key(org, KeyKind.ORGANIZATION, name="deploy bot")
    with opened_page(browser, live_server.url, width=width) as page:
        page.goto("/login/")
        page.get_by_role("link", name="Report a leaked key").click()
        expect(page.get_by_role("heading", name="Report a leaked key")).to_be_visible()
        assert serious_violations(page) == []
        save_screenshot(page, shots, f"report-leak-{width}")

        key_field = page.get_by_label("The leaked key")
        key_field.fill(token[:-2])
        page.get_by_label("Where did you find it? (optional)").fill(
            "https://github.com/acme/shop/blob/main/config/.env"
        )
        page.get_by_role("button", name="Report the key").click()
        expect(page.locator("#id_token_error")).to_contain_text("not a whole keyportal key")
        expect(key_field).to_have_attribute("aria-invalid", "true")
        expect(key_field).to_have_value("")
        assert token[:-2] not in page.content()
        assert serious_violations(page) == []
        save_screenshot(page, shots, f"report-leak-error-{width}")

        key_field.focus()
        page.keyboard.type(token)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Report received")).to_be_visible()
        expect(page.get_by_role("status").first).to_contain_text(NEUTRAL)
        assert token not in page.content()
        assert serious_violations(page) == []
        save_screenshot(page, shots, f"report-leak-sent-{width}")
        # Nothing runs sideways at 390 px.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert_no_unexpected_console_errors(page)

    api_key.refresh_from_db()
    assert api_key.is_compromised
    assert api_key.compromise_report == {
        "location": "https://github.com/acme/shop/blob/main/config/.env"
    }
    assert sorted(m.to[0] for m in mail.outbox) == sorted([org.owner.email, org.admin.email])
    assert ApiKey.objects.filter(compromised_at__isnull=False).count() == 1
