"""A key revoked, disabled, rotated or reported leaked is refused on the very next request, by
every worker.

Against a real gunicorn with two sync workers (see conftest.py): each key is first accepted by
both workers, then changed through the API (revoke, PATCH status, rotate, a leak report),
and from the next request on every answer, from either worker, is a 401 with the right code.
Nothing about a key's state may be kept in a worker (DESIGN.md, "Verification: the hot path").
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import Answer, Server

pytestmark = pytest.mark.integration

WHOAMI = "/api/v1/whoami"
CHALLENGE = 'Bearer error="invalid_token"'
BURST = 4  # concurrent requests: while one worker is busy, the other must answer
MAX_REQUESTS = 120
DEADLINE_SECONDS = 8


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    return server.create_keys(
        {
            # It rotates and disables keys holding projects:read, so it holds it too.
            "it-admin": "api-keys:manage,projects:read",
            "it-revoke": "projects:read",
            "it-disable": "projects:read",
            "it-rotate": "projects:read",
            "it-leak": "projects:read",
        }
    )


def key_id(server: Server, token: str) -> int:
    answer = server.request("GET", WHOAMI, token)
    assert answer.status == 200, answer.body
    return answer.body["id"]


def sweep(server: Server, token: str, *, status: int, code: str | None = None) -> Counter:
    """Send whoami with `token` until every worker has answered, and check each answer.

    The first request goes alone (the very next request after a change); then bursts of
    concurrent ones, so both sync workers are kept busy. Bounded in count and time.
    """

    def check(answer: Answer, number: int) -> None:
        assert answer.status == status, f"request {number}: {answer.status} {answer.body}"
        if code is not None:
            assert answer.code == code, f"request {number}: {answer.body}"
            assert answer.headers.get("WWW-Authenticate") == CHALLENGE

    seen: Counter = Counter()
    first = server.request("GET", WHOAMI, token)
    check(first, 1)
    seen[first.worker] += 1
    sent = 1
    deadline = time.monotonic() + DEADLINE_SECONDS
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        while (len(seen) < server.workers or min(seen.values()) < 2) and sent < MAX_REQUESTS:
            assert time.monotonic() < deadline, f"only workers {dict(seen)} answered in time"
            answers = list(pool.map(lambda _: server.request("GET", WHOAMI, token), range(BURST)))
            for answer in answers:
                sent += 1
                check(answer, sent)
                seen[answer.worker] += 1
    assert len(seen) == server.workers, f"only workers {dict(seen)} answered {sent} requests"
    return seen


def test_revoked_key_is_refused_at_once_by_every_worker(server, keys):
    token = keys["it-revoke"]
    sweep(server, token, status=200)

    revoked = server.request(
        "POST", f"/api/v1/keys/{key_id(server, token)}/revoke", keys["it-admin"]
    )
    assert revoked.status == 200, revoked.body
    assert revoked.body["state"] == "revoked"

    sweep(server, token, status=401, code="key_revoked")


def test_disabled_key_is_refused_at_once_by_every_worker(server, keys):
    token = keys["it-disable"]
    pk = key_id(server, token)
    sweep(server, token, status=200)

    disabled = server.request(
        "PATCH", f"/api/v1/keys/{pk}", keys["it-admin"], {"status": "disabled"}
    )
    assert disabled.status == 200, disabled.body

    sweep(server, token, status=401, code="key_disabled")


def test_rotated_key_is_refused_at_once_by_every_worker(server, keys):
    old = keys["it-rotate"]
    sweep(server, old, status=200)

    rotated = server.request(
        "POST", f"/api/v1/keys/{key_id(server, old)}/rotate", keys["it-admin"], {"grace": "now"}
    )
    assert rotated.status == 200, rotated.body
    new = rotated.body["token"]
    assert new != old

    sweep(server, old, status=401, code="invalid_key")
    sweep(server, new, status=200)


def test_leaked_key_is_refused_at_once_by_every_worker(server, keys):
    """Reported through the public endpoint, without any key: the next request is refused."""
    token = keys["it-leak"]
    sweep(server, token, status=200)

    reported = server.request("POST", "/api/v1/keys/leaked", body={"token": token})
    assert reported.status == 202, reported.body

    sweep(server, token, status=401, code="key_compromised")
