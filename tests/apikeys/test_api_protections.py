"""A key's own protections as programs meet them through the API: the IP allowlist (403
ip_not_allowed), rate limits (429 rate_limited and the RateLimit fields), the usage budget (403
usage_exhausted), setting them on create and PATCH, POST /keys/verify, and who may loosen them.

Counting is tested on the local-memory cache and on Redis (the `limits_cache` fixture). The
units below the API (cleaning, loosens(), windows in time) are tests/apikeys/test_protections.py.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client

from accounts.access import Actor
from apikeys import limits, usage
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_revoke, key_policy_update
from tests.apikeys.conftest import key_state, operator_key, refusals

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami"
MANAGE = ["api-keys:manage", "projects:read", "secrets:read", "targets:read"]
LISTED = "203.0.113.0/24"
INSIDE, OUTSIDE = "203.0.113.9", "198.51.100.7"


def client(token: str, **extra) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def whoami(token: str, ip: str = "192.0.2.1", **extra):
    return client(token).get(WHOAMI, REMOTE_ADDR=ip, **extra)


def error_of(response) -> dict:
    return response.json()["error"]


def send(api: Client, method: str, path: str, body):
    return getattr(api, method)(path, data=json.dumps(body), content_type="application/json")


def patch(api: Client, api_key: ApiKey, body):
    return send(api, "patch", f"/api/v1/keys/{api_key.pk}", body)


def verify(api: Client, body: dict) -> dict:
    response = send(api, "post", "/api/v1/keys/verify", body)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def manager_token(org) -> str:
    return operator_key(org, permissions=MANAGE, name="manager")[1]


@pytest.fixture
def api(manager_token) -> Client:
    """A client authenticated by an organization key that manages keys and holds MANAGE."""
    return client(manager_token)


def minute_limit(n: int) -> list[dict]:
    return [{"limit": n, "window": "minute"}]


# --- the allowlist ----------------------------------------------------------------------------


def test_an_address_off_the_allowlist_is_refused_naming_it(org):
    """403 ip_not_allowed, naming the address the request came from; not a 401 (the key is
    valid) and not counted as a failed attempt."""
    _key, token = operator_key(org, allowed_ips=[LISTED])

    response = whoami(token, OUTSIDE)

    assert response.status_code == 403
    assert error_of(response)["code"] == "ip_not_allowed"
    assert OUTSIDE in error_of(response)["message"]
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize(
    ("address", "status"),
    [
        ("203.0.113.1", 200),
        ("203.0.113.254", 200),
        ("::ffff:203.0.113.9", 200),  # an IPv4 client on a dual-stack socket
        ("203.0.114.1", 403),
        ("2001:db8:abcd:12::1", 200),
        ("2001:db8:abce::1", 403),
        ("2001:db8::7", 200),
        ("2001:db8::8", 403),
    ],
)
def test_addresses_in_a_listed_range_are_let_in(org, address, status):
    """An address inside a listed IPv4 or IPv6 range, or listed itself, works; its neighbours
    outside do not."""
    _key, token = operator_key(org, allowed_ips=[LISTED, "2001:db8:abcd::/48", "2001:db8::7"])
    assert whoami(token, address).status_code == status


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(org, settings):
    """Without KEYPORTAL_TRUSTED_PROXY_COUNT a client's X-Forwarded-For is not believed; with
    one trusted proxy the address it appends counts, and what the client wrote before it not."""
    _key, token = operator_key(org, allowed_ips=[LISTED])
    settings.TRUSTED_PROXY_COUNT = 0

    spoofed = whoami(token, OUTSIDE, HTTP_X_FORWARDED_FOR=INSIDE)
    assert spoofed.status_code == 403
    assert OUTSIDE in error_of(spoofed)["message"]

    settings.TRUSTED_PROXY_COUNT = 1
    assert whoami(token, "10.0.0.2", HTTP_X_FORWARDED_FOR=INSIDE).status_code == 200
    forged = whoami(token, "10.0.0.2", HTTP_X_FORWARDED_FOR=f"{INSIDE}, {OUTSIDE}")
    assert forged.status_code == 403
    assert OUTSIDE in error_of(forged)["message"]


def test_the_last_refused_address_is_written_by_the_flush_and_shown(api, org):
    """A refused address is buffered with the usage and written by usage.flush(); GET
    /keys/{id} then shows it."""
    api_key, token = operator_key(org, allowed_ips=[LISTED])
    whoami(token, "198.51.100.1")
    whoami(token, OUTSIDE)
    assert api.get(f"/api/v1/keys/{api_key.pk}").json()["last_refused_ip"] is None

    usage.flush()

    api_key.refresh_from_db()
    assert api_key.last_refused_ip == OUTSIDE
    assert api_key.last_refused_at is not None
    assert api.get(f"/api/v1/keys/{api_key.pk}").json()["last_refused_ip"] == OUTSIDE


# --- rate limits ------------------------------------------------------------------------------

REMAINING = re.compile(r'^"minute";r=(\d+);t=(\d+)$')


def remaining_and_reset(response) -> tuple[int, int]:
    match = REMAINING.match(response["RateLimit"])
    assert match, response["RateLimit"]
    return int(match[1]), int(match[2])


def test_exactly_the_limit_passes_then_429_with_retry_after(org, limits_cache):
    """A limit of 3 a minute: three requests pass, each saying what is left; the fourth and
    every further one is 429 rate_limited with Retry-After and the RateLimit fields."""
    _key, token = operator_key(org, rate_limits=minute_limit(3))

    passed = [whoami(token) for _ in range(3)]
    refused = [whoami(token) for _ in range(2)]

    assert [r.status_code for r in passed] == [200, 200, 200]
    for response, left in zip(passed, (2, 1, 0), strict=True):
        assert response["RateLimit-Policy"] == '"minute";q=3;w=60'
        remaining, reset = remaining_and_reset(response)
        assert remaining == left
        assert 1 <= reset <= 60
    for response in refused:
        assert response.status_code == 429
        assert error_of(response)["code"] == "rate_limited"
        assert "3 per minute" in error_of(response)["message"]
        assert 1 <= int(response["Retry-After"]) <= 60
        assert response["RateLimit-Policy"] == '"minute";q=3;w=60'
        remaining, reset = remaining_and_reset(response)
        assert remaining == 0
        assert reset == int(response["Retry-After"])


def test_every_window_is_in_the_fields(org, limits_cache):
    """A key with several windows gets one policy per window, shortest first, on every
    response; the one that refuses sets Retry-After."""
    _key, token = operator_key(
        org, rate_limits=[{"limit": 50, "window": "hour"}, {"limit": 2, "window": "second"}]
    )

    first = whoami(token)
    whoami(token)
    refused = whoami(token)

    assert first["RateLimit-Policy"] == '"second";q=2;w=1, "hour";q=50;w=3600'
    assert re.fullmatch(r'"second";r=1;t=1, "hour";r=49;t=\d+', first["RateLimit"])
    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    assert re.fullmatch(r'"second";r=0;t=1, "hour";r=48;t=\d+', refused["RateLimit"])


def test_a_key_without_limits_gets_no_ratelimit_fields(org, limits_cache):
    """A plain key's responses carry no RateLimit fields; nor does a key with only a budget or
    only an allowlist."""
    plain = operator_key(org, name="plain")[1]
    budget_only = operator_key(org, name="budget", budget={"amount": 5})[1]
    allowlist_only = operator_key(org, name="allowlist", allowed_ips=[LISTED])[1]

    for response in (whoami(plain), whoami(budget_only), whoami(allowlist_only, INSIDE)):
        assert response.status_code == 200
        assert "RateLimit" not in response
        assert "RateLimit-Policy" not in response
        assert "Retry-After" not in response


def test_limits_are_per_key(org, limits_cache):
    """One key reaching its limit leaves another key with the same limit untouched."""
    first = operator_key(org, name="first", rate_limits=minute_limit(1))[1]
    second = operator_key(org, name="second", rate_limits=minute_limit(1))[1]

    assert whoami(first).status_code == 200
    assert whoami(first).status_code == 429
    assert whoami(second).status_code == 200


def test_a_limited_key_does_not_count_as_failed_attempts(org, limits_cache, settings):
    """429 rate_limited is the key's own limit, not a failed attempt: a client past it is not
    locked out of its address for other keys."""
    settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE = 2
    limited = operator_key(org, name="limited", rate_limits=minute_limit(1))[1]
    other = operator_key(org, name="other")[1]

    codes = [whoami(limited).status_code for _ in range(6)]

    assert codes == [200] + [429] * 5
    assert whoami(other).status_code == 200


# --- the budget -------------------------------------------------------------------------------


def test_a_spent_budget_is_403_usage_exhausted(org, limits_cache):
    """A budget of 2: two requests pass, then 403 usage_exhausted, on every further one."""
    _key, token = operator_key(org, budget={"amount": 2})

    codes = [whoami(token).status_code for _ in range(4)]

    assert codes == [200, 200, 403, 403]
    refused = whoami(token)
    assert error_of(refused)["code"] == "usage_exhausted"
    assert "Retry-After" not in refused


def test_a_budget_of_zero_refuses_the_first_request(org, limits_cache):
    """A budget of 0 is a key that may make no request."""
    _key, token = operator_key(org, budget={"amount": 0})
    assert error_of(whoami(token))["code"] == "usage_exhausted"


def test_a_daily_budget_is_refilled_the_next_day(org, limits_cache, monkeypatch):
    """Spent today, a daily budget works again tomorrow (UTC) with its refill amount; the
    message says when it is refilled."""
    _key, token = operator_key(org, budget={"amount": 1, "refill": "daily", "refill_amount": 2})
    assert whoami(token).status_code == 200
    refused = whoami(token)
    assert error_of(refused)["code"] == "usage_exhausted"
    assert "refilled daily" in error_of(refused)["message"]

    today = limits._utc
    monkeypatch.setattr(limits, "_utc", lambda moment: today(moment) + timedelta(days=1))

    assert [whoami(token).status_code for _ in range(3)] == [200, 200, 403]


def test_the_budget_left_is_written_by_the_flush_and_shown(api, org, limits_cache):
    """GET /keys/{id} shows the budget and what was left at the last flush."""
    api_key, token = operator_key(
        org, budget={"amount": 5, "refill": "monthly", "refill_amount": 9}
    )
    whoami(token)
    whoami(token)

    usage.flush()

    assert api.get(f"/api/v1/keys/{api_key.pk}").json()["budget"] == {
        "amount": 5,
        "refill": "monthly",
        "refill_amount": 9,
        "remaining": 3,
    }


def test_a_budget_reaches_zero_in_the_row_when_refused(api, org, limits_cache):
    """The refusal of a spent budget also writes its count (0) with the next flush."""
    api_key, token = operator_key(org, budget={"amount": 1})
    whoami(token)
    usage.discard()  # the worker that served the request died before flushing
    whoami(token)

    usage.flush()

    api_key.refresh_from_db()
    assert api_key.budget_remaining == 0


# --- create, read, PATCH ----------------------------------------------------------------------


def test_create_and_read_protections(api, org):
    """POST /keys takes the allowlist (stored canonically), rate limits (shortest first) and a
    budget; GET shows them as stored."""
    response = send(
        api,
        "post",
        "/api/v1/keys",
        {
            "name": "guarded",
            "permissions": ["projects:read"],
            "allowed_ips": ["203.0.113.0/24", "2001:DB8::1", "198.51.100.7/32"],
            "rate_limits": [{"limit": 1000, "window": "day"}, {"limit": 10, "window": "second"}],
            "budget": {"amount": 500, "refill": "daily", "refill_amount": 100},
        },
    )
    assert response.status_code == 201, response.content
    created = response.json()

    read = api.get(f"/api/v1/keys/{created['id']}").json()

    for body in (created, read):
        assert body["allowed_ips"] == ["203.0.113.0/24", "2001:db8::1", "198.51.100.7"]
        assert body["rate_limits"] == [
            {"limit": 10, "window": "second"},
            {"limit": 1000, "window": "day"},
        ]
        assert body["budget"] == {
            "amount": 500,
            "refill": "daily",
            "refill_amount": 100,
            "remaining": 500,
        }


def test_the_policys_default_rate_limit_applies_when_none_is_given(api, org):
    """With a policy default for the kind, a key created without `rate_limits` gets it; one
    created with `rate_limits: []` gets none; other kinds are not touched."""
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        require_expiry=False,
        max_lifetime_days=None,
        default_rate_limit={"limit": 100, "window": "minute"},
    )

    def create(**body):
        body = {"name": f"key {len(body)}", "permissions": ["projects:read"], **body}
        response = send(api, "post", "/api/v1/keys", body)
        assert response.status_code == 201, response.content
        return response.json()["rate_limits"]

    assert create() == [{"limit": 100, "window": "minute"}]
    assert create(rate_limits=[]) == []
    assert create(rate_limits=[{"limit": 5, "window": "second"}], name="own") == [
        {"limit": 5, "window": "second"}
    ]


BAD_PROTECTIONS = [
    ({"allowed_ips": ["203.0.113.300"]}, "203.0.113.300"),
    ({"allowed_ips": ["not-an-address"]}, "not an IPv4 or IPv6 address"),
    ({"allowed_ips": ["10.0.0.0/33"]}, "not an IPv4 or IPv6 address"),
    ({"allowed_ips": ["0.0.0.0/0"]}, "allows every address"),
    ({"allowed_ips": ["::/0"]}, "allows every address"),
    ({"allowed_ips": ["203.0.113.5/24"]}, "did you mean 203.0.113.0/24?"),
    ({"allowed_ips": [f"10.0.{i}.1" for i in range(101)]}, "At most 100"),
    ({"allowed_ips": "203.0.113.0/24"}, "allowed_ips"),
    ({"allowed_ips": [5]}, "allowed_ips"),
    ({"rate_limits": [{"limit": 0, "window": "minute"}]}, "rate_limits.0.limit"),
    ({"rate_limits": [{"limit": -1, "window": "minute"}]}, "rate_limits.0.limit"),
    ({"rate_limits": [{"limit": 2.5, "window": "minute"}]}, "rate_limits.0.limit"),
    ({"rate_limits": [{"limit": "10", "window": "minute"}]}, "rate_limits.0.limit"),
    ({"rate_limits": [{"limit": True, "window": "minute"}]}, "rate_limits.0.limit"),
    ({"rate_limits": [{"limit": 10**13, "window": "minute"}]}, "rate_limits.0.limit"),
    ({"rate_limits": [{"limit": 10, "window": "week"}]}, "rate_limits.0.window"),
    ({"rate_limits": [{"limit": 10}]}, "rate_limits.0.window"),
    ({"rate_limits": [{"limit": 10, "window": "minute", "burst": 5}]}, "burst"),
    (
        {"rate_limits": [{"limit": 10, "window": "minute"}, {"limit": 5, "window": "minute"}]},
        "one limit per minute",
    ),
    ({"budget": {"amount": 10, "refill": "daily"}}, "refill sets the budget back to"),
    ({"budget": {"amount": 10, "refill_amount": 5}}, "A refill amount needs a refill"),
    ({"budget": {"refill": "daily", "refill_amount": 5}}, "budget.amount"),
    ({"budget": {"amount": -1}}, "budget.amount"),
    ({"budget": {"amount": True}}, "budget.amount"),
    ({"budget": {"amount": 10, "refill": "weekly", "refill_amount": 5}}, "budget.refill"),
    ({"budget": {"amount": 10, "refill": "daily", "refill_amount": 0}}, "refill_amount"),
    ({"budget": 100}, "budget"),
]


@pytest.mark.parametrize(("body", "says"), BAD_PROTECTIONS)
def test_create_with_bad_protections_is_422_and_creates_nothing(api, org, body, says):
    """Every bad allowlist, rate limit or budget is a 422 naming the problem; no key is made."""
    before = ApiKey.objects.count()

    response = send(
        api, "post", "/api/v1/keys", {"name": "bad", "permissions": ["projects:read"], **body}
    )

    assert response.status_code == 422, response.content
    assert error_of(response)["code"] == "invalid_request"
    assert says in error_of(response)["message"]
    assert ApiKey.objects.count() == before


@pytest.mark.parametrize(("body", "says"), BAD_PROTECTIONS)
def test_patch_with_bad_protections_is_422_and_changes_nothing(api, org, body, says):
    """Every bad allowlist, rate limit or budget is a 422 naming the problem; the key's row is
    exactly as it was, protections and all."""
    api_key, _ = operator_key(
        org, allowed_ips=[LISTED], rate_limits=minute_limit(10), budget={"amount": 5}
    )
    before = key_state(api_key)

    response = patch(api, api_key, body)

    assert response.status_code == 422, response.content
    assert says in error_of(response)["message"]
    assert key_state(api_key) == before


def test_patch_sets_and_removes_each_protection_alone(api, org):
    """PATCH replaces what it is given and keeps the rest; [] or null removes one."""
    api_key, _ = operator_key(
        org, allowed_ips=[LISTED], rate_limits=minute_limit(10), budget={"amount": 5}
    )

    body = patch(api, api_key, {"rate_limits": minute_limit(5)}).json()
    assert (body["allowed_ips"], body["rate_limits"]) == ([LISTED], minute_limit(5))
    assert body["budget"]["amount"] == 5

    body = patch(api, api_key, {"allowed_ips": []}).json()
    assert (body["allowed_ips"], body["rate_limits"]) == ([], minute_limit(5))

    body = patch(api, api_key, {"budget": None}).json()
    assert (body["budget"], body["rate_limits"]) == (None, minute_limit(5))

    body = patch(api, api_key, {"rate_limits": []}).json()
    assert (body["allowed_ips"], body["rate_limits"], body["budget"]) == ([], [], None)
    api_key.refresh_from_db()
    assert api_key.protections == {}


# --- changes count from the very next request -------------------------------------------------


def test_removing_the_allowlist_lets_the_next_request_in(api, org):
    """The allowlist is read from the row on every request: removed, the very next request
    from an unlisted address works; set again, the next one is refused."""
    api_key, token = operator_key(org, allowed_ips=[LISTED])
    assert whoami(token, OUTSIDE).status_code == 403

    assert patch(api, api_key, {"allowed_ips": []}).status_code == 200
    assert whoami(token, OUTSIDE).status_code == 200

    assert patch(api, api_key, {"allowed_ips": ["192.0.2.0/24"]}).status_code == 200
    assert whoami(token, OUTSIDE).status_code == 403


def test_lowering_a_limit_holds_from_the_next_request(api, org, limits_cache):
    """A limit lowered below what the window has counted refuses the very next request."""
    api_key, token = operator_key(org, rate_limits=minute_limit(10))
    assert [whoami(token).status_code for _ in range(3)] == [200] * 3

    assert patch(api, api_key, {"rate_limits": minute_limit(3)}).status_code == 200

    refused = whoami(token)
    assert refused.status_code == 429
    assert refused["RateLimit-Policy"] == '"minute";q=3;w=60'


def test_removing_the_budget_lets_the_next_request_in(api, org, limits_cache):
    """A spent budget removed: the very next request works, with no count kept."""
    api_key, token = operator_key(org, budget={"amount": 1})
    whoami(token)
    assert whoami(token).status_code == 403

    assert patch(api, api_key, {"budget": None}).status_code == 200

    assert whoami(token).status_code == 200


def test_a_budget_set_anew_counts_from_its_amount(api, org, limits_cache):
    """A budget set again counts from its new amount at once, whatever the old one had left."""
    api_key, token = operator_key(org, budget={"amount": 1})
    whoami(token)
    assert whoami(token).status_code == 403

    assert patch(api, api_key, {"budget": {"amount": 2}}).status_code == 200

    assert [whoami(token).status_code for _ in range(3)] == [200, 200, 403]


# --- POST /keys/verify ------------------------------------------------------------------------


def test_verify_reports_limits_and_budget_without_counting(api, org, limits_cache):
    """Without `consume`, verify says where the key stands and counts nothing: asked many
    times, the key still has its whole limit and budget for its own requests."""
    _key, token = operator_key(
        org,
        rate_limits=minute_limit(3),
        budget={"amount": 10, "refill": "daily", "refill_amount": 7},
    )

    for _ in range(5):
        answer = verify(api, {"key": token})
        assert answer["valid"] is True
        assert answer["effective_permissions"] == ["projects:read"]
        assert answer["rate_limits"] == [
            {"window": "minute", "limit": 3, "remaining": 3, "reset": 60}
        ]
        assert answer["budget"] == {"remaining": 10, "refill": "daily", "refill_amount": 7}

    assert [whoami(token).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_verify_with_consume_counts_as_one_request_of_the_key(api, org, limits_cache):
    """`consume: true` counts the check in the key's windows and budget, which its own
    requests share: spent through verify, the key's next request is refused."""
    api_key, token = operator_key(org, rate_limits=minute_limit(5), budget={"amount": 2})

    first = verify(api, {"key": token, "consume": True})
    assert first["valid"] is True
    assert first["rate_limits"][0]["remaining"] == 4
    assert first["budget"]["remaining"] == 1
    assert whoami(token).status_code == 200  # the last request of the budget

    refused = whoami(token)
    assert error_of(refused)["code"] == "usage_exhausted"
    answer = verify(api, {"key": token, "consume": True})
    assert (answer["valid"], answer["code"]) == (False, "usage_exhausted")
    assert answer["key"]["id"] == api_key.pk
    assert answer["budget"]["remaining"] == 0
    assert answer["rate_limits"][0]["remaining"] == 3  # refused requests counted in no window

    usage.flush()
    api_key.refresh_from_db()
    assert api_key.budget_remaining == 0
    assert api_key.last_used_at is not None


def test_verify_reports_a_rate_limited_key(api, org, limits_cache):
    """A key at its limit is reported as not valid, rate_limited, with its windows."""
    _key, token = operator_key(org, rate_limits=minute_limit(1))
    whoami(token)

    answer = verify(api, {"key": token})

    assert (answer["valid"], answer["code"]) == (False, "rate_limited")
    assert answer["rate_limits"][0]["remaining"] == 0
    assert 1 <= answer["rate_limits"][0]["reset"] <= 60


def test_verify_checks_the_address_it_is_given(api, org):
    """With `ip`, verify applies the allowlist to that address; without it a key with an
    allowlist is not valid, and the message says to send `ip`."""
    api_key, token = operator_key(org, allowed_ips=[LISTED])

    assert verify(api, {"key": token, "ip": INSIDE})["valid"] is True
    outside = verify(api, {"key": token, "ip": OUTSIDE})
    assert (outside["valid"], outside["code"]) == (False, "ip_not_allowed")
    assert OUTSIDE in outside["message"]
    assert outside["key"]["id"] == api_key.pk
    missing = verify(api, {"key": token})
    assert (missing["valid"], missing["code"]) == (False, "ip_not_allowed")
    assert "`ip`" in missing["message"]

    bad = send(api, "post", "/api/v1/keys/verify", {"key": token, "ip": "not-an-ip"})
    assert bad.status_code == 422


def test_verify_hides_another_tenants_protected_key(api, other_org, limits_cache):
    """Another organization's key is invalid_key with nothing about it, whether its
    protections or its state would refuse it or not, and checking it counts nothing against
    it."""
    invalid = {
        "valid": False,
        "code": "invalid_key",
        "message": "The API key is not valid.",
        "key": None,
        "effective_permissions": [],
        "rate_limits": [],
        "budget": None,
    }
    _plain, plain = operator_key(other_org, name="plain")
    _listed, listed = operator_key(other_org, name="listed", allowed_ips=[LISTED])
    _limited, limited_token = operator_key(
        other_org, name="limited", rate_limits=minute_limit(1), budget={"amount": 1}
    )

    assert verify(api, {"key": plain}) == invalid
    assert verify(api, {"key": listed, "ip": INSIDE}) == invalid
    assert verify(api, {"key": listed}) == invalid
    assert verify(api, {"key": limited_token, "consume": True}) == invalid
    assert verify(api, {"key": limited_token, "consume": True}) == invalid
    revoked, revoked_token = operator_key(other_org, name="revoked", budget={"amount": 1})
    api_key_revoke(actor=Actor.operator("operator (tests)"), api_key=revoked)
    assert verify(api, {"key": revoked_token, "consume": True}) == invalid

    assert whoami(limited_token).status_code == 200
    assert whoami(limited_token).status_code == 429


# --- who may change protections ---------------------------------------------------------------


@pytest.fixture
def guarded(org) -> ApiKey:
    """An organization key holding more than the limited manager below, with protections."""
    return operator_key(
        org,
        permissions=("projects:read", "secrets:read"),
        name="guarded",
        allowed_ips=["10.0.0.0/8"],
        rate_limits=minute_limit(10),
        budget={"amount": 100},
    )[0]


@pytest.fixture
def weak_manager(org) -> Client:
    """A key that manages keys but holds fewer grants than `guarded` (no secrets:read)."""
    return client(operator_key(org, permissions=["api-keys:manage", "projects:read"])[1])


@pytest.mark.parametrize(
    "body",
    [
        {"allowed_ips": []},
        {"allowed_ips": ["10.0.0.0/8", "192.0.2.1"]},
        {"allowed_ips": ["0.0.0.0/1", "128.0.0.0/1"]},
        {"rate_limits": []},
        {"rate_limits": minute_limit(11)},
        {"rate_limits": [{"limit": 10, "window": "hour"}]},
        {"budget": None},
        {"budget": {"amount": 101}},
        {"budget": {"amount": 100}},
        {"budget": {"amount": 50, "refill": "monthly", "refill_amount": 1}},
        {"rate_limits": minute_limit(1), "budget": {"amount": 1000}},
    ],
)
def test_a_manager_lacking_the_keys_grants_cannot_loosen_it(weak_manager, guarded, body):
    """Loosening (more addresses, higher or fewer limits, a budget larger than what is left,
    or refilled)
    hands on power: refused with 403 to a key that does not hold every grant of the key, the
    refusal recorded, and the key exactly as it was."""
    ApiKey.objects.filter(pk=guarded.pk).update(budget_remaining=60)  # 40 spent
    before = key_state(guarded)

    response = patch(weak_manager, guarded, body)

    assert response.status_code == 403, response.content
    assert "secrets:read" in error_of(response)["message"]
    assert key_state(guarded) == before
    assert refusals(guarded) == [("loosen", "api")]


@pytest.mark.parametrize(
    "body",
    [
        {"allowed_ips": ["10.1.0.0/16"]},
        {"rate_limits": minute_limit(5)},
        {"rate_limits": [*minute_limit(10), {"limit": 100, "window": "hour"}]},
        {"budget": {"amount": 50}},
        {"allowed_ips": ["10.0.0.1"], "rate_limits": minute_limit(1), "budget": {"amount": 0}},
    ],
)
def test_a_manager_lacking_the_keys_grants_can_tighten_it(weak_manager, guarded, body):
    """Tightening takes power away: allowed to any manager of the key, whatever it holds."""
    response = patch(weak_manager, guarded, body)

    assert response.status_code == 200, response.content
    guarded.refresh_from_db()
    for field, value in body.items():
        shown = response.json()[field]
        if field == "budget":
            assert shown["amount"] == value["amount"] == guarded.budget_remaining
        else:
            assert shown == value
    assert refusals(guarded) == []


def test_a_tightened_key_is_not_loosened_back_by_the_weak_manager(weak_manager, guarded):
    """After tightening a limit, raising it again to where it was is loosening: refused."""
    assert patch(weak_manager, guarded, {"rate_limits": minute_limit(5)}).status_code == 200
    assert patch(weak_manager, guarded, {"rate_limits": minute_limit(10)}).status_code == 403


def test_a_members_personal_key_cannot_touch_other_keys(org, client_for):
    """A member's personal key (which holds api-keys:manage for its own keys) gets 404 for
    another person's personal key and for organization keys: they do not exist for it."""
    member_token = operator_key(
        org,
        permissions=["api-keys:manage", "projects:read"],
        kind=KeyKind.USER,
        owner=org.member,
        name="mine",
    )[1]
    admins, _ = operator_key(
        org, kind=KeyKind.USER, owner=org.admin, name="admin's", rate_limits=minute_limit(10)
    )
    organization_key, _ = operator_key(org, name="org", rate_limits=minute_limit(10))

    for target in (admins, organization_key):
        before = key_state(target)
        for body in ({"rate_limits": []}, {"rate_limits": minute_limit(1)}):
            assert patch(client(member_token), target, body).status_code == 404
        assert key_state(target) == before


def test_an_owners_key_cannot_change_a_members_personal_key(org):
    """Personal keys are personal: an owner's key may revoke or disable a member's personal
    key but neither loosen nor tighten its protections (403)."""
    owner_token = operator_key(
        org, permissions=MANAGE, kind=KeyKind.USER, owner=org.owner, name="owner's"
    )[1]
    members, _ = operator_key(
        org, kind=KeyKind.USER, owner=org.member, name="member's", rate_limits=minute_limit(10)
    )
    before = key_state(members)

    for body in ({"rate_limits": []}, {"rate_limits": minute_limit(1)}):
        assert patch(client(owner_token), members, body).status_code == 403
    assert key_state(members) == before


def test_another_organizations_key_is_404(api, other_org):
    """Another tenant's key id: 404, and nothing changed."""
    foreign, _ = operator_key(other_org, rate_limits=minute_limit(10))
    before = key_state(foreign)

    assert api.get(f"/api/v1/keys/{foreign.pk}").status_code == 404
    assert patch(api, foreign, {"rate_limits": []}).status_code == 404
    assert key_state(foreign) == before


def test_a_manager_key_may_raise_its_own_limit_and_is_counted_meanwhile(org, limits_cache):
    """A manager key holds every grant it has, so it may raise its own limit (rule 1); the
    PATCH itself is one of its requests, and the new limit holds from the next one."""
    api_key, token = operator_key(
        org, permissions=["api-keys:manage", "projects:read"], rate_limits=minute_limit(2)
    )
    own = client(token)

    assert patch(own, api_key, {"rate_limits": minute_limit(3)}).status_code == 200
    codes = [own.get(WHOAMI).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# --- plain keys stay off the cache ------------------------------------------------------------


def test_a_plain_key_makes_no_cache_call(org, monkeypatch, limits_cache):
    """A key without protections is verified without a call to the limits cache: no limit
    check, no round trip, no RateLimit fields."""

    def no_call(*args, **kwargs):
        raise AssertionError("the limits cache was used for a plain key")

    monkeypatch.setattr(limits, "check", no_call)
    monkeypatch.setattr(limits, "_cache", no_call)
    _key, token = operator_key(org)

    response = whoami(token)

    assert response.status_code == 200
    assert "RateLimit" not in response


def test_an_allowlist_only_key_makes_no_cache_call(org, monkeypatch):
    """The allowlist is read from the row: a key with only an allowlist never asks the cache."""

    def no_call(*args, **kwargs):
        raise AssertionError("the limits cache was used for an allowlist")

    monkeypatch.setattr(limits, "check", no_call)
    _key, token = operator_key(org, allowed_ips=[LISTED])

    assert whoami(token, INSIDE).status_code == 200
    assert whoami(token, OUTSIDE).status_code == 403
