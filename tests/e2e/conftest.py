"""Real Chromium driven by Playwright against pytest-django's live server."""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

CHROMIUM = os.environ.get("KEYPORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# around it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    """Launch Debian's Chromium once per session; skip (or fail in CI) when it is missing."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("KEYPORTAL_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium is required for browser tests but {CHROMIUM} is missing.")
        pytest.skip("Chromium is not installed (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@contextmanager
def opened_page(browser, base_url: str, *, width: int = 1280):
    """Yield a fresh page `width` px wide whose relative URLs go to `base_url`; the script
    errors its console shows are kept in `page.console_errors`."""
    context = browser.new_context(
        viewport={"width": width, "height": 900 if width > 800 else 844}, base_url=base_url
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser, live_server):
    """Return a fresh page at 1280 px whose relative URLs go to the live server."""
    with opened_page(browser, live_server.url) as page:
        yield page


def log_in(page, user) -> None:
    """Log in as `user` (the factories' password) and land on the projects page."""
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


# Failed resources tests ask for on purpose: a refused form (422), an API refusal (403).
EXPECTED_ERROR = re.compile(r"^Failed to load resource: .*\b(403|422)\b")


def assert_no_unexpected_console_errors(page) -> None:
    unexpected = [e for e in page.console_errors if not EXPECTED_ERROR.search(e)]
    assert unexpected == []


def choose(page, pattern: str) -> None:
    """Pick the API Explorer's operation whose option text matches `pattern`."""
    option = page.locator("#explorer-endpoint option", has_text=re.compile(pattern))
    page.get_by_label("Endpoint").select_option(option.get_attribute("value"))


def save_screenshot(
    page, tmp_path: Path, name: str, *, docs: bool = False, full_page: bool = True
) -> Path:
    """Save a screenshot (the whole page, or what the window shows) under the test's folder;
    with KEYPORTAL_DOCS_SCREENSHOTS=1 (`make screenshots`), screenshots marked `docs` also
    refresh docs/screenshots/."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if docs and os.environ.get("KEYPORTAL_DOCS_SCREENSHOTS"):
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOT_DIR / f"{name}.png")
    return path
