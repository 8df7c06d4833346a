"""Response headers that protect the console: CSP with nonces, framing, caching of secrets."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.factories import PASSWORD
from tests.security.conftest import logged_in


class ScriptCollector(HTMLParser):
    """Collect every <script> tag's attributes and body."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._current = {"attrs": dict(attrs), "body": ""}
            self.scripts.append(self._current)

    def handle_data(self, data):
        if self._current is not None:
            self._current["body"] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._current = None


def scripts_in(html: str) -> list[dict]:
    """Return the <script> tags of a page."""
    parser = ScriptCollector()
    parser.feed(html)
    return parser.scripts


def csp_directives(response) -> dict[str, list[str]]:
    """Return the Content-Security-Policy header as {directive: [sources]}."""
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def nonce_of(response) -> str:
    """Return the nonce the CSP header allows scripts with."""
    nonces = [s for s in csp_directives(response)["script-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1
    return nonces[0].removeprefix("'nonce-").removesuffix("'")


@pytest.fixture
def member_client(org) -> Client:
    """Return a client logged in as the organization's plain member."""
    return logged_in(org.member)


def test_console_page_has_a_strict_csp_with_a_nonce(member_client):
    """A console page sends a CSP whose script-src holds a nonce and no 'unsafe-inline'."""
    response = member_client.get("/o/acme/")

    assert response.status_code == 200
    directives = csp_directives(response)
    assert nonce_of(response)
    assert "'self'" in directives["script-src"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_every_response_gets_a_fresh_nonce(member_client):
    """Two requests for the same page get different nonces."""
    first = nonce_of(member_client.get("/o/acme/"))
    second = nonce_of(member_client.get("/o/acme/"))

    assert first != second


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("member", "/o/acme/", 200),
        ("member", "/o/acme/members/", 200),
        ("owner", "/o/acme/audit/", 200),
        ("member", "/o/acme/service-accounts/", 404),
        ("anonymous", "/login/", 200),
        ("anonymous", "/signup/", 200),
        ("anonymous", "/invitations/unknown-token/", 410),
    ],
)
def test_scripts_are_files_from_our_own_origin(who, path, status, org):
    """Every <script> loads a file from our own origin; none has an inline body."""
    client = logged_in(None if who == "anonymous" else getattr(org, who))

    response = client.get(path)

    assert response.status_code == status
    scripts = scripts_in(response.content.decode())
    assert scripts, "The base template loads htmx and the console's script."
    nonce = nonce_of(response)
    for script in scripts:
        src = script["attrs"].get("src") or ""
        assert src.startswith("/"), script
        assert not src.startswith("//"), script
        assert "http:" not in src and "https:" not in src, script
        assert script["body"].strip() == "", script
        if "nonce" in script["attrs"]:
            assert script["attrs"]["nonce"] == nonce


@pytest.mark.parametrize("path", ["/o/acme/", "/login/"])
def test_pages_may_not_be_framed(path, member_client):
    """Console and public pages answer X-Frame-Options: DENY."""
    client = member_client if path.startswith("/o/") else Client()

    response = client.get(path)

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_invitation_link_response_is_not_stored(htmx, org, htmx_headers):
    """The response that shows a new invitation link once says Cache-Control: no-store."""
    client = logged_in(org.owner)

    response = client.post(
        "/o/acme/members/",
        {"email": "newcomer@example.test", "role": "member"},
        headers=htmx_headers if htmx else {},
    )

    assert response.status_code == 200
    assert 'id="invitation-link"' in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_member_list_without_a_link_carries_no_link(org):
    """The member list opened later shows no invitation link."""
    client = logged_in(org.owner)
    client.post("/o/acme/members/", {"email": "newcomer@example.test", "role": "member"})

    response = client.get("/o/acme/members/")

    assert response.status_code == 200
    assert 'id="invitation-link"' not in response.content.decode()


def test_login_without_client_address_works_on_every_database(org):
    """A login from a request with no address (unix socket) is throttled by email, not a 500."""
    client = Client(REMOTE_ADDR="")
    response = client.post("/login/", {"username": org.member.email, "password": PASSWORD})
    assert response.status_code == 302
