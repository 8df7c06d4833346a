"""axe-core on every console page, for owners and members, at 1280 and 390 px: no serious or
critical violation. The pages are the URL table's (tests/security/test_url_table.py) that answer
200 for the role, opened on a console full of awkward rows, plus the create-key dialog and the
confirmation of a bulk revocation."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.e2e.console_data import build_console
from tests.security.conftest import build_objects
from tests.security.test_url_table import ROLES, URL_TABLE

pytestmark = pytest.mark.django_db(transaction=True)

FAILING_IMPACTS = {"serious", "critical"}
# Answers that are not console pages: a CSV download and the owner filter's <option> fragment.
NOT_PAGES = {"audit_log_csv", "api_key_owner_suggestions"}
AXE = Axe()


def pages_for(role: str) -> list[str]:
    """Return the paths of the URL table that answer 200 for `role`, each once."""
    column = ROLES.index(role)
    paths = []
    for name, path, *statuses in URL_TABLE:
        if statuses[column] == 200 and name not in NOT_PAGES and path not in paths:
            paths.append(path)
    return paths


def describe(violation: dict, where: str) -> str:
    targets = ", ".join(" ".join(map(str, node["target"])) for node in violation["nodes"][:5])
    more = len(violation["nodes"]) - 5
    return (
        f"{where}: {violation['id']} ({violation['impact']}) {violation['help']} "
        f"[{targets}{f' and {more} more' if more > 0 else ''}]"
    )


def audit(page, where: str, failures: list[str]) -> None:
    """Run axe on what the page shows now; keep serious and critical violations, print the rest."""
    for violation in AXE.run(page).response["violations"]:
        line = describe(violation, where)
        if violation["impact"] in FAILING_IMPACTS:
            failures.append(line)
        else:
            print(line)


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("role", ["owner", "member"])
def test_console_pages_have_no_serious_violations(browser, live_server, org, role, width):
    """Every page the role may open, and the create-key and bulk-revoke dialogs, have no serious
    or critical axe-core violation at this width."""
    objects = build_objects(org)
    build_console(org)
    user = {"owner": org.owner, "member": org.member}[role]
    context = browser.new_context(
        viewport={"width": width, "height": 900 if width > 800 else 844},
        base_url=live_server.url,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    failures: list[str] = []
    try:
        log_in(page, user)
        for path in pages_for(role):
            response = page.goto(objects.fill(path))
            assert response.status == 200, path
            audit(page, f"{role} {width}px {path}", failures)

        page.goto("/o/acme/settings/api-keys/")
        dialog = page.locator("#key-dialog")
        page.locator(".page-header").get_by_role("link", name="Create an API key").click()
        expect(dialog).to_be_visible()
        audit(page, f"{role} {width}px create-key dialog", failures)

        # The confirmation of a bulk revocation, with its list of names.
        page.goto("/o/acme/api-keys/" if role == "owner" else "/o/acme/settings/api-keys/")
        page.get_by_label("Select every key on this page").check()
        page.get_by_role("button", name="Revoke selected…").click()
        expect(dialog.locator(".confirm-revoke")).to_be_visible()
        audit(page, f"{role} {width}px bulk-revoke dialog", failures)
    finally:
        context.close()
    assert failures == [], "\n".join(failures)
