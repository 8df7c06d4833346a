"""The CLI names itself on every request it makes: `User-Agent: keyportal-cli/<version>`."""

from __future__ import annotations

import json

import httpx

from keyportal_cli import __version__
from keyportal_cli import device_flow as login
from keyportal_cli.client import ApiClient
from keyportal_cli.credentials import ResolvedKey


def recording_client(seen: list[httpx.Request], key: ResolvedKey | None = None) -> ApiClient:
    """Return a client whose requests are answered in memory and kept in `seen`."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"device_code": "d", "user_code": "BCDF-GHJK"})

    return ApiClient("http://127.0.0.1:8000", key, transport=httpx.MockTransport(answer))


def test_every_request_names_the_cli_and_its_version():
    """Reads, writes, raw sends and the login's first request all carry the CLI's User-Agent."""
    seen: list[httpx.Request] = []
    with recording_client(seen) as client:
        client.get("whoami")
        client.post("keys", json={"name": "x"})
        client.put("environments/1/secrets/A", json={"value": "v"})
        client.send("POST", "whoami/revoke")
        login.request_code(client)
    assert [request.method for request in seen] == ["GET", "POST", "PUT", "POST", "POST"]
    assert {request.headers["User-Agent"] for request in seen} == {f"keyportal-cli/{__version__}"}


def test_the_login_sends_a_host_name_the_server_accepts(monkeypatch):
    """A machine name holding a control or direction character is sent without it."""
    monkeypatch.setattr(login.socket, "gethostname", lambda: "lap\u202etop\n.local")
    seen: list[httpx.Request] = []
    with recording_client(seen) as client:
        login.request_code(client)
    assert json.loads(seen[0].read()) == {
        "client": f"keyportal-cli/{__version__}",
        "host": "laptop.local",
    }
