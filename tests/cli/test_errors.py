"""Each failure is one line on stderr with its own exit code: never a traceback, never the key."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from accounts.access import Actor
from apikeys.services import api_key_revoke
from keyportal_cli import client as client_module
from tests.cli.conftest import assert_never_shown, key_of, org_token
from tests.projects.secret_helpers import environment_in

pytestmark = pytest.mark.django_db(transaction=True)


def one_line(result) -> str:
    """Return the command's only line on stderr, checking there is no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def revoked_token(org) -> str:
    token = org_token(org, ["projects:read"])
    api_key_revoke(actor=Actor(user=org.owner), api_key=key_of(token))
    return token


def test_no_key_at_all_is_exit_3(keyportal):
    """Without any key the command says how to get one."""
    result = keyportal("whoami")
    assert result.exit_code == 3
    assert one_line(result) == (
        "Error: No API key: run `keyportal login`, set KEYPORTAL_API_KEY or pass --api-key."
    )


def test_a_refused_key_is_exit_3_with_the_servers_reason(keyportal, org):
    """401: which key, from where, the server's message and what to do."""
    token = revoked_token(org)
    result = keyportal("whoami", env={"KEYPORTAL_API_KEY": token})
    assert result.exit_code == 3
    assert one_line(result) == (
        f"Error: The key from KEYPORTAL_API_KEY (sk-org-...{token[-4:]}) was refused: "
        "The API key has been revoked. Run `keyportal login` or pass another key."
    )
    assert_never_shown(result, token)


def test_a_key_with_characters_keys_never_have_is_refused_before_sending(keyportal):
    """A key that could not even be sent in a header gets a clear line, not the HTTP error."""
    result = keyportal("--api-key", "sk-user-abc\x01defghijklmnopqrstuvwxyz", "whoami")
    assert result.exit_code == 3
    assert "is not a keyportal key" in one_line(result)
    assert "abc" not in result.stderr


def test_a_missing_permission_is_exit_4_naming_it(keyportal, org):
    """403: the permission the key lacks is named."""
    environment = environment_in(org)
    token = org_token(org, ["secrets:read"])
    result = keyportal(
        "secrets", "get", "API_TOKEN", "-e", str(environment.pk), env={"KEYPORTAL_API_KEY": token}
    )
    assert result.exit_code == 4
    line = one_line(result)
    assert "lacks the permission secrets:decrypt" in line
    assert f"The key from KEYPORTAL_API_KEY (sk-org-...{token[-4:]})" in line
    assert_never_shown(result, token)


def test_not_found_is_exit_5(keyportal, org, other_org):
    """404: an unknown environment and another tenant's environment read the same."""
    foreign = environment_in(other_org)
    token = org_token(org, ["secrets:read"])
    for environment_id in (foreign.pk, 987654):
        result = keyportal(
            "secrets", "list", "-e", str(environment_id), env={"KEYPORTAL_API_KEY": token}
        )
        assert result.exit_code == 5
        assert one_line(result) == (
            f"Error: Environment {environment_id} was not found, or is outside the reach of "
            f"the key from KEYPORTAL_API_KEY (sk-org-...{token[-4:]})."
        )


def test_too_many_refusals_are_exit_6_saying_when_to_retry(keyportal, org, settings):
    """429: past the limit of failed attempts, the line says when to retry (Retry-After)."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 2
    token = revoked_token(org)
    codes = [keyportal("whoami", env={"KEYPORTAL_API_KEY": token}) for _ in range(4)]
    assert [r.exit_code for r in codes] == [3, 3, 6, 6]
    line = one_line(codes[-1])
    assert "this address has made too many failed attempts: retry in " in line
    assert "second" in line
    assert_never_shown(codes[-1], token)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_server_that_is_not_running_is_exit_7(keyportal, org):
    """Nothing listening: the line names the address and asks whether keyportal runs."""
    token = org_token(org, ["projects:read"])
    url = f"http://127.0.0.1:{closed_port()}"
    result = keyportal("whoami", env={"KEYPORTAL_API_KEY": token, "KEYPORTAL_URL": url})
    assert result.exit_code == 7
    assert one_line(result) == f"Error: Cannot connect to {url}: is keyportal running?"


def test_a_server_that_never_answers_is_exit_7(keyportal, org, monkeypatch):
    """A connection that is accepted but never answered times out, with one line."""
    monkeypatch.setattr(client_module, "TIMEOUT", httpx.Timeout(0.3))
    token = org_token(org, ["projects:read"])
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = keyportal("whoami", env={"KEYPORTAL_API_KEY": token, "KEYPORTAL_URL": url})
    assert result.exit_code == 7
    assert one_line(result) == f"Error: {url} did not answer in time (ReadTimeout)."
    assert_never_shown(result, token)


def test_a_url_that_is_not_one_is_a_usage_error(keyportal, org):
    """A --url without a scheme is exit 2 with an example of a good one."""
    token = org_token(org, ["projects:read"])
    result = keyportal("--url", "keys.example.com", "whoami", env={"KEYPORTAL_API_KEY": token})
    assert result.exit_code == 2
    assert "is not a URL keyportal can use" in one_line(result)


def test_another_refusal_is_exit_1_with_status_and_message(keyportal, org):
    """422 and the like: the status and the server's message."""
    token = org_token(org, ["api-keys:manage", "projects:read"])
    result = keyportal(
        "keys", "create", "--name", "x", "--permission", "nope:nothing",
        env={"KEYPORTAL_API_KEY": token},
    )  # fmt: skip
    assert result.exit_code == 1
    line = one_line(result)
    assert line.startswith("Error: The server refused the request (422): ")
    assert_never_shown(result, token)


def test_usage_errors_are_clicks_exit_2(keyportal):
    """A missing required option is click's usage error."""
    result = keyportal("secrets", "list")
    assert result.exit_code == 2
    assert "Missing option '--environment'" in result.stderr


def test_an_address_without_the_api_is_exit_5_saying_so(keyportal, org, live_server):
    """A 404 that is not the API's own says the address has no keyportal API."""
    token = org_token(org, ["projects:read"])
    url = f"{live_server.url}/o"
    result = keyportal("whoami", env={"KEYPORTAL_API_KEY": token, "KEYPORTAL_URL": url})
    assert result.exit_code == 5
    assert one_line(result) == (
        f"Error: {url} has no keyportal API (/o/api/v1/whoami is not found); "
        "check --url or KEYPORTAL_URL."
    )


class Redirecting(BaseHTTPRequestHandler):
    """Answer every request with a redirect, as an HTTP front sending to HTTPS does."""

    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.path)
        self.send_response(301)
        self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_redirect_is_reported_and_never_followed_with_the_key(keyportal, org):
    """A redirect ends the command (exit 1) naming where it points; the key is not sent there."""
    token = org_token(org, ["projects:read"])
    Redirecting.seen = []
    server = HTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = keyportal("whoami", env={"KEYPORTAL_API_KEY": token, "KEYPORTAL_URL": url})
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    assert one_line(result) == (
        f"Error: {url} answered with a redirect to {url}/elsewhere; pass that address with "
        "--url (or KEYPORTAL_URL)."
    )
    assert Redirecting.seen == ["/api/v1/whoami"]


def test_an_unexpected_failure_is_one_line_without_the_key(keyportal, org, monkeypatch):
    """A bug in the CLI still ends with one line (exit 1), any key in it replaced by its preview."""
    token = org_token(org, ["projects:read"])

    def broken(*args, **kwargs):
        raise ValueError(f"cannot print {token}")

    monkeypatch.setattr("keyportal_cli.main.fields", broken)
    result = keyportal("whoami", env={"KEYPORTAL_API_KEY": token})
    assert result.exit_code == 1
    assert one_line(result) == (
        f"Error: Unexpected failure: ValueError: cannot print sk-org-...{token[-4:]} "
        "(set KEYPORTAL_DEBUG=1 to see where)."
    )
    assert_never_shown(result, token)


def test_a_plain_http_address_off_this_machine_is_warned_about(keyportal, org):
    """Keys sent over plain HTTP to another host get a warning first."""
    token = org_token(org, ["projects:read"])
    url = "http://192.0.2.1:9"  # TEST-NET-1: never answers
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client_module, "TIMEOUT", httpx.Timeout(0.2))
        result = keyportal("whoami", env={"KEYPORTAL_API_KEY": token, "KEYPORTAL_URL": url})
    assert result.stderr.startswith(
        f"Warning: {url} is not HTTPS; keys cross the network unencrypted.\n"
    )
    assert result.exit_code == 7
