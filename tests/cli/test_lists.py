"""Every list the CLI shows is read page after page: the API answers `?limit=&offset=` with
`{"items", "total", "limit", "offset", "next_offset"}` (docs/api.md, Lists)."""

from __future__ import annotations

import json

import httpx
import pytest

from keyportal_cli import commands
from keyportal_cli.client import ApiClient
from keyportal_cli.errors import CliError
from tests.cli.conftest import org_token


def client_answering(answer) -> ApiClient:
    return ApiClient("http://127.0.0.1:8000", transport=httpx.MockTransport(answer))


def test_every_follows_next_offset_to_the_last_page():
    asked = []

    def answer(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        limit = int(request.url.params["limit"])
        asked.append((offset, limit))
        items = [{"id": n} for n in range(offset, min(offset + limit, 450))]
        following = offset + limit if offset + limit < 450 else None
        body = {"items": items, "total": 450, "limit": limit, "offset": offset}
        return httpx.Response(200, json={**body, "next_offset": following})

    with client_answering(answer) as client:
        found = commands.every(client, "keys")
    assert [item["id"] for item in found] == list(range(450))
    assert asked == [(0, 200), (200, 200), (400, 200)]


def test_every_reads_the_bare_list_of_an_older_server():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": 1}, {"id": 2}])

    with client_answering(answer) as client:
        assert commands.every(client, "apps") == [{"id": 1}, {"id": 2}]


def test_an_answer_of_another_shape_is_an_error():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": []})

    with client_answering(answer) as client, pytest.raises(CliError, match="shape"):
        commands.every(client, "keys")


@pytest.mark.django_db(transaction=True)
def test_keys_list_reads_every_page(keyportal, org, monkeypatch):
    """With two keys a page, `keys list` still lists them all, once each."""
    monkeypatch.setattr(commands, "PAGE", 2)
    token = org_token(org, ["api-keys:manage", "projects:read"], name="manager")
    for number in range(4):
        org_token(org, ["projects:read"], name=f"key {number}")
    result = keyportal("--json", "keys", "list", env={"KEYPORTAL_API_KEY": token})
    assert result.exit_code == 0, result.output
    names = [key["name"] for key in json.loads(result.stdout)]
    assert sorted(names) == ["key 0", "key 1", "key 2", "key 3", "manager"]
