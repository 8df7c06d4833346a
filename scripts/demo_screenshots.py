#!/usr/bin/env python3
"""Take the README's and docs' screenshots from the demo data, as a new user first sees it.

Migrates a throwaway SQLite database, runs `manage.py seed_demo`, serves it with Django's
development server on a free port of 127.0.0.1, logs in as the demo owner in Debian's Chromium
(Playwright) and saves docs/screenshots/demo-*.png at 1280 px, and one at 390 px. Everything it
starts it stops; the database is removed. `make screenshots` runs it.

    .venv/bin/python scripts/demo_screenshots.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("KEYPORTAL_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OWNER = ("owner@acme.test", "demo-owner-1234")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 (this interpreter, this project's manage.py)
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True
    )


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2):  # noqa: S310 (127.0.0.1)
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"The development server did not answer at {url}.")


def shoot(url: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        wide = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=url)
        page = wide.new_page()
        log_in(page)

        def save(name: str, *, full_page: bool = False) -> None:
            page.wait_for_load_state("networkidle")
            path = OUT / f"demo-{name}.png"
            page.screenshot(path=str(path), full_page=full_page)
            saved.append(path)

        page.goto("/o/acme/api-keys/")
        save("api-keys")
        page.get_by_role("link", name="GitHub Actions deploy", exact=True).click()
        save("key-page", full_page=True)
        page.goto("/o/acme/api-keys/?status=compromised")
        page.get_by_role("link", name="Heroku deploy (old)", exact=True).click()
        save("compromised-key")
        page.goto("/o/acme/api-keys/")
        page.locator(".page-header").get_by_role("link", name="Create an organization key").click()
        page.locator("#key-dialog").get_by_label("Name", exact=True).fill("grafana dashboards")
        save("create-key")
        page.goto("/o/acme/audit/")
        save("audit-log")
        page.goto("/o/acme/settings/api-keys/")
        save("personal-keys")
        narrow = browser.new_context(viewport={"width": 390, "height": 844}, base_url=url)
        page = narrow.new_page()
        log_in(page)
        page.goto("/o/acme/api-keys/")
        save("api-keys-390", full_page=True)
        browser.close()
    return saved


def log_in(page) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(OWNER[0])
    page.get_by_label("Password").fill(OWNER[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/o/acme/**")


def main() -> int:
    if not Path(CHROMIUM).exists():
        sys.exit(f"Chromium is needed at {CHROMIUM} (apt-get install chromium).")
    with tempfile.TemporaryDirectory(prefix="keyportal-demo-") as folder:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{folder}/demo.sqlite3",
            "KEYPORTAL_ENV": "development",
            "REDIS_URL": "",
        }
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        manage(env, "seed_demo")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # noqa: S603 (this interpreter, this project's manage.py)
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(url)
            for path in shoot(url):
                print(f"saved {path.relative_to(ROOT)}")
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
