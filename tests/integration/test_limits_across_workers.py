"""A key's rate limit and usage budget hold across workers: counted once, in Redis.

Against a real gunicorn with two sync workers and REDIS_URL set (the `redis_server` fixture,
conftest.py): a key limited to N requests a minute, sent 3N requests over several connections
at once, gets exactly N answered 200 and the rest 429 rate_limited; a key with a budget of M
gets exactly M. Both workers answer, so a count kept per worker would have let more through
(DESIGN.md, "Verification: the hot path", step 4; apikeys/limits.py). Skipped when Redis does
not answer, unless KEYPORTAL_REQUIRE_REDIS is set (CI): then it fails.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import Answer, Server

pytestmark = pytest.mark.integration

WHOAMI = "/api/v1/whoami"
LIMIT = 20  # requests per minute
BUDGET = 15  # requests, no refill
CONNECTIONS = 6  # requests in flight at once: both sync workers are kept busy
WARM_DEADLINE_SECONDS = 8


@pytest.fixture(scope="module")
def admin(redis_server: Server) -> str:
    # It holds projects:read so that it may give it to the keys it makes.
    return redis_server.create_keys({"it-limits-admin": "api-keys:manage,projects:read"})[
        "it-limits-admin"
    ]


def create_protected_key(server: Server, admin: str, name: str, **protections) -> str:
    """Make an organization key with `protections` through POST /api/v1/keys (create_api_key
    has no options for them); return its token."""
    expires_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    created = server.request(
        "POST",
        "/api/v1/keys",
        admin,
        {"name": name, "permissions": ["projects:read"], "expires_at": expires_at, **protections},
    )
    assert created.status == 201, created.body
    for field, value in protections.items():
        if field != "budget":
            assert created.body[field] == value, created.body
    return created.body["token"]


def warm_both_workers(server: Server) -> None:
    """Send health checks (no key, nothing counted) until each worker has answered twice, so
    neither is still loading when the counted requests start."""
    seen: Counter = Counter()
    deadline = time.monotonic() + WARM_DEADLINE_SECONDS
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        while len(seen) < server.workers or min(seen.values()) < 2:
            assert time.monotonic() < deadline, f"only workers {dict(seen)} answered in time"
            for answer in pool.map(
                lambda _: server.request("GET", "/api/v1/health"), range(CONNECTIONS)
            ):
                assert answer.status == 200, answer.body
                seen[answer.worker] += 1


def burst(server: Server, token: str, count: int) -> list[Answer]:
    """Send `count` whoami requests with `token`, CONNECTIONS at a time; return the answers."""
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        return list(pool.map(lambda _: server.request("GET", WHOAMI, token), range(count)))


def tally(answers: list[Answer]) -> Counter:
    return Counter((a.status, a.code) for a in answers)


def check_both_workers(answers: list[Answer], server: Server) -> None:
    """Each worker answered some of the key's requests. Then a count kept per worker would have
    let more than the limit through: with `a` and `b` requests answered by each (both at least
    one, a + b = 3N), min(a, N) + min(b, N) > N."""
    workers = Counter(a.worker for a in answers)
    passed = Counter(a.worker for a in answers if a.status == 200)
    assert len(workers) == server.workers, (
        f"only workers {dict(workers)} answered (200s per worker: {dict(passed)})"
    )


def test_rate_limit_holds_across_workers(redis_server, admin):
    rate_limits = [{"limit": LIMIT, "window": "minute"}]
    token = create_protected_key(redis_server, admin, "it-limited", rate_limits=rate_limits)
    warm_both_workers(redis_server)

    answers = burst(redis_server, token, 3 * LIMIT)

    assert tally(answers) == {(200, None): LIMIT, (429, "rate_limited"): 2 * LIMIT}, tally(answers)
    for answer in answers:
        if answer.status == 429:
            retry_after = answer.headers["Retry-After"]
            assert 1 <= int(retry_after) <= 60, answer.headers
            assert answer.headers["RateLimit"] == f'"minute";r=0;t={retry_after}', answer.headers
    check_both_workers(answers, redis_server)
    # Still limited, from either worker, for the rest of the minute.
    assert tally(burst(redis_server, token, 2 * CONNECTIONS)) == {
        (429, "rate_limited"): 2 * CONNECTIONS
    }


def test_budget_holds_across_workers(redis_server, admin):
    token = create_protected_key(redis_server, admin, "it-budget", budget={"amount": BUDGET})
    warm_both_workers(redis_server)

    answers = burst(redis_server, token, 3 * BUDGET)

    expected = {(200, None): BUDGET, (403, "usage_exhausted"): 2 * BUDGET}
    assert tally(answers) == expected, tally(answers)
    check_both_workers(answers, redis_server)
    checked = redis_server.request("POST", "/api/v1/keys/verify", admin, {"key": token})
    assert checked.status == 200, checked.body
    assert checked.body["budget"]["remaining"] == 0, checked.body
