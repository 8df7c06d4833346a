"""A key's own protections, below the API: cleaning what is sent (apikeys/protections.py),
whether a change loosens a key, the allowlist, and counting rate limits and budgets in the cache
(apikeys/limits.py) on the local-memory cache and on Redis. The API's side is
tests/apikeys/test_api_protections.py.

Time: `limits.check(now=...)` moves the clock of the local-memory cache's windows and of the
budget's refill period. Redis keeps the windows' time itself (their counters' time to live), so
on Redis the `clock` fixture moves time by shortening those lives by as much.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError

from apikeys import limits, usage
from apikeys.models import ApiKey
from apikeys.protections import (
    MAX_COUNT,
    Budget,
    Window,
    clean_allowed_ips,
    clean_budget,
    clean_rate_limits,
    ip_allowed,
    loosens,
)
from tests.apikeys.conftest import operator_key
from tests.conftest import _clear_own_keys

pytestmark = pytest.mark.django_db


def problem(error: ValidationError, field: str) -> str:
    """Return the messages a ValidationError gives for `field`, as one text."""
    return " ".join(error.message_dict[field])


# --- the allowlist: what is accepted ----------------------------------------------------------


def test_addresses_and_ranges_are_kept_canonical_in_order_without_repeats():
    """IPv4 and IPv6 addresses and ranges are stored canonically: IPv6 compressed and lower
    case, a one-address range as its address, an IPv4-mapped address as IPv4; repeats once."""
    cleaned = clean_allowed_ips(
        [
            " 203.0.113.0/24 ",
            "2001:DB8:0:0:0:0:0:1",
            "2001:db8:abcd::/48",
            "198.51.100.7/32",
            "::ffff:192.0.2.9",
            "2001:db8::1",
            "",
        ]
    )
    assert cleaned == [
        "203.0.113.0/24",
        "2001:db8::1",
        "2001:db8:abcd::/48",
        "198.51.100.7",
        "192.0.2.9",
    ]


def test_the_consoles_text_is_split_on_commas_spaces_and_lines():
    """The console's field is one text: entries split on commas, spaces and new lines."""
    assert clean_allowed_ips("10.0.0.1, 10.0.0.2\n2001:db8::/32  10.1.0.0/16") == [
        "10.0.0.1",
        "10.0.0.2",
        "2001:db8::/32",
        "10.1.0.0/16",
    ]


def test_an_ipv4_mapped_range_is_stored_as_the_ipv4_range_it_means():
    """::ffff:203.0.113.0/120 is 203.0.113.0/24 as a dual-stack socket reports it: stored as
    that, so that the addresses it names are let in (client addresses are compared as IPv4)."""
    assert clean_allowed_ips(["::ffff:203.0.113.0/120"]) == ["203.0.113.0/24"]
    assert ip_allowed(clean_allowed_ips(["::ffff:203.0.113.0/120"]), "::ffff:203.0.113.77")


def test_one_hundred_entries_are_allowed_and_repeats_count_once():
    """At most 100 addresses or ranges: 100 pass, and repeats of them are not counted twice."""
    hundred = [f"10.0.{i}.0/24" for i in range(100)]
    assert len(clean_allowed_ips(hundred + hundred[:10])) == 100


# --- the allowlist: what is refused -----------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("not-an-address", "“not-an-address” is not an IPv4 or IPv6 address"),
        ("203.0.113.256", "is not an IPv4 or IPv6 address"),
        ("203.0.113", "is not an IPv4 or IPv6 address"),
        ("10.0.0.0/33", "is not an IPv4 or IPv6 address"),
        ("10.0.0.0/-1", "is not an IPv4 or IPv6 address"),
        ("10.0.0.0/8/8", "is not an IPv4 or IPv6 address"),
        ("2001:db8::g", "is not an IPv4 or IPv6 address"),
        ("2001:db8::/129", "is not an IPv4 or IPv6 address"),
        ("2001:db8:::1", "is not an IPv4 or IPv6 address"),
        ("*", "is not an IPv4 or IPv6 address"),
        ("10.0.0.1-10.0.0.9", "is not an IPv4 or IPv6 address"),
        ("0.0.0.0/0", "allows every address: leave the list empty instead"),
        ("::/0", "allows every address: leave the list empty instead"),
        ("203.0.113.5/24", "did you mean 203.0.113.0/24?"),
        ("2001:db8::1/32", "did you mean 2001:db8::/32?"),
    ],
)
def test_a_bad_entry_is_refused_by_name(entry, says):
    """A malformed address or range, a range of every address (IPv4 or IPv6), or a range with
    bits set after its prefix: refused on `allowed_ips`, naming the entry (and the range meant)."""
    with pytest.raises(ValidationError) as raised:
        clean_allowed_ips(["192.0.2.1", entry])
    assert says in problem(raised.value, "allowed_ips")


def test_more_than_one_hundred_entries_are_refused():
    """101 distinct entries: refused, saying how many were given and the limit."""
    entries = [f"10.0.{i}.1" for i in range(101)]
    with pytest.raises(ValidationError) as raised:
        clean_allowed_ips(entries)
    assert "At most 100 addresses or ranges (101 given)" in problem(raised.value, "allowed_ips")


# --- the allowlist: who gets in ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("203.0.113.1", True),
        ("203.0.113.255", True),
        ("203.0.114.1", False),
        ("198.51.100.7", True),
        ("198.51.100.8", False),
        ("::ffff:203.0.113.9", True),  # a dual-stack socket's IPv4 client
        ("::ffff:198.51.100.7", True),
        ("::ffff:198.51.100.8", False),
        ("2001:db8:abcd:1::5", True),
        ("2001:DB8:ABCD::1", True),
        ("2001:db8:abce::1", False),
        ("2001:db8::1", True),
        ("2001:db8::2", False),
        ("::1", False),
        ("127.0.0.1", False),
        ("", False),  # no address at all (a unix socket)
        ("not an address", False),
    ],
)
def test_ip_allowed_matches_addresses_ranges_and_ipv4_mapped_clients(address, allowed):
    """An address is let in when it falls in an entry; IPv4-mapped IPv6 clients (::ffff:a.b.c.d)
    are compared as the IPv4 address they are; no address is never on the list."""
    entries = clean_allowed_ips(
        ["203.0.113.0/24", "198.51.100.7", "2001:db8:abcd::/48", "2001:db8::1"]
    )
    assert ip_allowed(entries, address) is allowed


# --- rate limits ------------------------------------------------------------------------------


def test_rate_limits_are_kept_shortest_window_first():
    """One limit per window unit, sorted second, minute, hour, day."""
    windows = clean_rate_limits(
        [
            {"limit": 10000, "window": "day"},
            {"limit": 5, "window": "second"},
            {"limit": 100, "window": "minute"},
            {"limit": 1000, "window": "hour"},
        ]
    )
    assert windows == [
        Window(5, "second"),
        Window(100, "minute"),
        Window(1000, "hour"),
        Window(10000, "day"),
    ]
    assert clean_rate_limits([]) == []


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"limit": 0, "window": "minute"}, "The limit per minute must be at least 1."),
        ({"limit": -5, "window": "minute"}, "The limit per minute must be at least 1."),
        ({"limit": 2.5, "window": "minute"}, "The limit per minute must be a whole number."),
        ({"limit": 5.0, "window": "minute"}, "must be a whole number."),
        ({"limit": "5", "window": "minute"}, "must be a whole number."),
        ({"limit": True, "window": "minute"}, "must be a whole number."),
        ({"limit": None, "window": "minute"}, "must be a whole number."),
        ({"window": "minute"}, "must be a whole number."),
        ({"limit": MAX_COUNT + 1, "window": "minute"}, "must be at most"),
        ({"limit": 5, "window": "week"}, "“week” is not a window: choose one of second"),
        ({"limit": 5, "window": "Minute"}, "is not a window"),
        ({"limit": 5, "window": "minutes"}, "is not a window"),
        ({"limit": 5}, "is not a window"),
    ],
)
def test_a_bad_rate_limit_is_refused(value, says):
    """A limit that is zero, negative, not a whole number or too large, or a window unit not
    offered: refused on `rate_limits`."""
    with pytest.raises(ValidationError) as raised:
        clean_rate_limits([{"limit": 10, "window": "hour"}, value])
    assert says in problem(raised.value, "rate_limits")


def test_two_limits_for_one_window_unit_are_refused():
    """Two limits per minute, even equal ones: refused, one per unit."""
    with pytest.raises(ValidationError) as raised:
        clean_rate_limits([{"limit": 10, "window": "minute"}, {"limit": 10, "window": "minute"}])
    assert "Give one limit per minute, not two." in problem(raised.value, "rate_limits")


# --- budgets ----------------------------------------------------------------------------------


def test_a_budget_with_or_without_a_refill():
    """A budget is its amount (0 allowed: a key that may make no more requests), with a daily
    or monthly refill to a refill amount, or none; each new budget has a new version."""
    plain = clean_budget(0)
    daily = clean_budget(100, "daily", 50)
    monthly = clean_budget(100, "monthly", 1000)
    assert (plain.amount, plain.refill, plain.refill_amount) == (0, "", None)
    assert (daily.amount, daily.refill, daily.refill_amount) == (100, "daily", 50)
    assert (monthly.refill, monthly.refill_amount) == ("monthly", 1000)
    assert len({plain.version, daily.version, monthly.version, clean_budget(0).version}) == 4
    assert clean_budget(None) is None
    assert clean_budget("", "", "") is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((100, "daily", None), "Give the amount a daily refill sets the budget back to."),
        ((100, "monthly", ""), "Give the amount a monthly refill sets the budget back to."),
        ((100, "", 50), "A refill amount needs a refill: daily or monthly."),
        ((100, None, 50), "A refill amount needs a refill"),
        ((None, "daily", 50), "Give the number of requests the budget starts with."),
        ((None, "", 50), "Give the number of requests the budget starts with."),
        ((100, "weekly", 50), "The refill is daily, monthly, or none."),
        ((-1, "", None), "The budget must be 0 or more."),
        ((1.5, "", None), "The budget must be a whole number."),
        (("100", "", None), "The budget must be a whole number."),
        ((True, "", None), "The budget must be a whole number."),
        ((MAX_COUNT + 1, "", None), "The budget must be at most"),
        ((100, "daily", 0), "The refill amount must be at least 1."),
        ((100, "daily", -3), "The refill amount must be at least 1."),
        ((100, "daily", 2.5), "The refill amount must be a whole number."),
    ],
)
def test_a_bad_budget_is_refused(args, says):
    """A refill without its amount, a refill amount without a refill, a refill without a
    budget, an unknown refill, a negative or fractional amount: refused on `budget`."""
    with pytest.raises(ValidationError) as raised:
        clean_budget(*args)
    assert says in problem(raised.value, "budget")


def test_a_budget_period_is_the_utc_day_or_month_of_its_refill():
    """The refill period is the UTC day (daily), the UTC month (monthly) or none."""
    moment = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert Budget(10, "daily", 5).period(moment) == "2026-01-31"
    assert Budget(10, "monthly", 5).period(moment) == "2026-01"
    assert Budget(10).period(moment) == ""


# --- loosens(): written from the rules --------------------------------------------------------

IPS = "allowed_ips"
NONE: dict = {}


def ips(*entries: str) -> dict:
    return {IPS: list(entries)}


def limited(**windows: int) -> dict:
    return {"rate_limits": [{"limit": n, "window": unit} for unit, n in windows.items()]}


def budgeted(amount: int, refill: str = "", refill_amount: int | None = None) -> dict:
    return {"budget": clean_budget(amount, refill, refill_amount).as_json()}


# (before, after, remaining as last written, loosens?, the rule)
LOOSENS = [
    # The allowlist: an address the old list did not let in loosens; fewer addresses do not.
    (NONE, ips("10.0.0.0/8"), None, False, "an allowlist where there was none"),
    (ips("10.0.0.0/8"), NONE, None, True, "the allowlist removed"),
    (ips("10.0.0.0/8"), ips("10.1.0.0/16"), None, False, "a narrower range"),
    (ips("10.0.0.0/8"), ips("10.0.0.1", "10.255.0.0/16"), None, False, "addresses within"),
    (ips("10.0.0.0/8"), ips("10.0.0.0/8"), None, False, "the same list"),
    (ips("10.1.0.0/16"), ips("10.0.0.0/8"), None, True, "a wider range"),
    (ips("10.0.0.0/8"), ips("10.0.0.0/8", "192.0.2.1"), None, True, "one more address"),
    (ips("10.0.0.0/8", "192.0.2.1"), ips("192.0.2.1"), None, False, "one address fewer"),
    (ips("192.0.2.1"), ips("192.0.2.2"), None, True, "another address"),
    (ips("10.0.0.0/9", "10.128.0.0/9"), ips("10.0.0.0/8"), None, False, "the same addresses"),
    (ips("2001:db8::/32"), ips("2001:db8:1::/48"), None, False, "a narrower IPv6 range"),
    (ips("2001:db8:1::/48"), ips("2001:db8::/32"), None, True, "a wider IPv6 range"),
    (ips("2001:db8::/32"), ips("2001:db8::/32", "10.0.0.1"), None, True, "IPv4 added to IPv6"),
    (ips("10.0.0.0/8", "2001:db8::/32"), ips("2001:db8::1"), None, False, "IPv4 dropped"),
    # Rate limits: each window counts on its own; a window raised or dropped loosens.
    (NONE, limited(minute=100), None, False, "a limit where there was none"),
    (limited(minute=100), NONE, None, True, "the limits removed"),
    (limited(minute=100), limited(minute=50), None, False, "a lower limit"),
    (limited(minute=100), limited(minute=100), None, False, "the same limit"),
    (limited(minute=100), limited(minute=101), None, True, "a higher limit"),
    (limited(minute=100), limited(minute=100, day=1000), None, False, "a window added"),
    (limited(minute=100, day=1000), limited(minute=100), None, True, "a window dropped"),
    (limited(minute=100), limited(hour=100), None, True, "the minute's window dropped"),
    (limited(minute=100, day=9), limited(minute=10, day=10), None, True, "one lower, one higher"),
    # The budget: removed, more than is left, or refilled more often or to more loosens.
    (NONE, budgeted(100), None, False, "a budget where there was none"),
    (budgeted(100), NONE, None, True, "the budget removed"),
    (budgeted(100), budgeted(100), None, False, "the same amount, nothing spent"),
    (budgeted(100), budgeted(50), None, False, "a smaller amount"),
    (budgeted(100), budgeted(101), None, True, "a larger amount"),
    (budgeted(100), budgeted(40), 40, False, "what is left"),
    (budgeted(100), budgeted(41), 40, True, "more than is left"),
    (budgeted(100), budgeted(100), 40, True, "the budget set back to full"),
    (budgeted(100), budgeted(10, "daily", 10), None, True, "a refill where there was none"),
    (budgeted(10, "daily", 10), budgeted(10), None, False, "the refill removed"),
    (budgeted(10, "daily", 10), budgeted(10, "daily", 5), None, False, "a smaller refill"),
    (budgeted(10, "daily", 10), budgeted(10, "daily", 10), None, False, "the same refill"),
    (budgeted(10, "daily", 10), budgeted(10, "daily", 11), None, True, "a larger refill"),
    (budgeted(10, "monthly", 10), budgeted(10, "daily", 10), None, True, "refilled more often"),
    (budgeted(10, "daily", 10), budgeted(10, "monthly", 10), None, False, "less often"),
    (budgeted(10, "daily", 10), budgeted(10, "monthly", 11), None, True, "less often, more"),
    # Together: one loosening part is enough.
    (
        {**ips("10.0.0.0/8"), **limited(minute=10), **budgeted(100)},
        {**ips("10.1.0.0/16"), **limited(minute=11), **budgeted(50)},
        None,
        True,
        "tighter everywhere but one",
    ),
    (
        {**ips("10.0.0.0/8"), **limited(minute=10), **budgeted(100)},
        {**ips("10.1.0.0/16"), **limited(second=1, minute=5), **budgeted(50, "monthly", 5)},
        None,
        True,
        "a refill where there was none, the rest tighter",
    ),
    (
        {**ips("10.0.0.0/8"), **limited(minute=10), **budgeted(100, "daily", 100)},
        {**ips("10.1.0.0/16"), **limited(second=1, minute=5), **budgeted(50, "monthly", 5)},
        None,
        False,
        "tighter everywhere",
    ),
]


@pytest.mark.parametrize(
    ("before", "after", "remaining", "expected"),
    [case[:4] for case in LOOSENS],
    ids=[case[4] for case in LOOSENS],
)
def test_loosens(before, after, remaining, expected):
    """A change loosens a key (an act needing every grant the key holds) when it lets the key
    do anything it could not: an address outside the old allowlist, a window raised or dropped,
    a budget removed, larger than what is left, or refilled more often or to more."""
    assert loosens(before, after, remaining) is expected


# --- counting: windows ------------------------------------------------------------------------


class Clock:
    """The time `limits.check` is told, and on Redis the windows' counters aged by as much."""

    def __init__(self, backend: str):
        self.backend = backend
        self.now = time.time()

    def check(self, api_key: ApiKey, *, consume: bool = True) -> limits.Outcome:
        return limits.check(api_key, consume=consume, now=self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.backend != "redis":
            return
        cache = caches["limits-redis"]
        client = cache._cache.get_client(write=True)
        for name in client.scan_iter(match=f"{cache.key_prefix}:*kp:rl:*"):
            left = client.pttl(name) - int(seconds * 1000)
            if left <= 0:
                client.delete(name)
            else:
                client.pexpire(name, left)


@pytest.fixture
def clock(limits_cache) -> Clock:
    return Clock(limits_cache)


def lose_the_cache(backend: str) -> None:
    """Empty the limits cache, as a Redis restarted without persistence would be."""
    if backend == "redis":
        _clear_own_keys(caches["limits-redis"])
    else:
        caches[settings.KEYPORTAL_LIMITS_CACHE].clear()


def limited_key(org, *windows: tuple[int, str], **kwargs) -> ApiKey:
    rate_limits = [{"limit": n, "window": unit} for n, unit in windows]
    return operator_key(org, rate_limits=rate_limits, **kwargs)[0]


def used(outcome: limits.Outcome) -> list[int]:
    return [state.used for state in outcome.windows]


def test_a_window_lets_its_limit_through_then_refuses_until_it_ends(org, clock):
    """`limit` requests pass in a window that starts at the key's first request and lasts its
    length; the next is refused with the seconds left; after it ends, a new window starts."""
    api_key = limited_key(org, (3, "minute"))

    outcomes = [clock.check(api_key)]
    clock.advance(20)
    outcomes += [clock.check(api_key), clock.check(api_key)]
    assert [o.result for o in outcomes] == [limits.OK] * 3
    assert [o.windows[0].remaining for o in outcomes] == [2, 1, 0]
    assert outcomes[0].windows[0].reset == 60  # it starts with the first request
    assert outcomes[1].windows[0].reset == 40  # and does not move with later ones

    clock.advance(39)
    refused = clock.check(api_key)
    assert refused.result == limits.LIMITED
    assert refused.limited_by == 0
    assert refused.retry_after == 1
    assert not refused.counted

    clock.advance(1)
    again = clock.check(api_key)
    assert again.result == limits.OK
    assert (again.windows[0].used, again.windows[0].reset) == (1, 60)


def test_a_window_starts_at_the_first_request_not_on_the_clock(org, clock):
    """The window is the key's own: it starts when its first request comes, whatever the
    minute on the clock, and a quiet key has no window running."""
    api_key = limited_key(org, (1, "minute"))
    clock.advance(37)  # some time in a minute

    assert clock.check(api_key, consume=False).windows[0].reset == 60
    assert clock.check(api_key).result == limits.OK
    clock.advance(59)
    assert clock.check(api_key).result == limits.LIMITED
    clock.advance(1)
    assert clock.check(api_key).result == limits.OK


def test_a_refused_request_counts_in_no_window(org, clock):
    """A request one window refuses counts in none of them: the other windows keep their count,
    and a client retrying while limited is not kept out longer."""
    api_key = limited_key(org, (2, "second"), (3, "minute"))

    assert [clock.check(api_key).result for _ in range(3)] == [
        limits.OK,
        limits.OK,
        limits.LIMITED,
    ]
    for _ in range(5):
        refused = clock.check(api_key)
        assert refused.result == limits.LIMITED
        assert used(refused) == [2, 2]
    assert refused.windows[refused.limited_by].window.window == "second"

    clock.advance(1)
    assert clock.check(api_key).result == limits.OK
    refused = clock.check(api_key)
    assert refused.result == limits.LIMITED
    assert refused.windows[refused.limited_by].window.window == "minute"
    assert used(refused) == [1, 3]
    assert refused.retry_after == 59


def test_a_refused_request_spends_no_budget(org, clock):
    """A request its rate limit refuses leaves the budget as it was."""
    api_key = limited_key(org, (1, "minute"), budget={"amount": 10})

    assert clock.check(api_key).budget_remaining == 9
    for _ in range(3):
        refused = clock.check(api_key)
        assert (refused.result, refused.budget_remaining) == (limits.LIMITED, 9)


def test_a_budget_found_empty_counts_in_no_window(org, clock):
    """A request refused for an empty budget counts in no window."""
    api_key = limited_key(org, (5, "minute"), budget={"amount": 1})

    assert clock.check(api_key).result == limits.OK
    for _ in range(3):
        exhausted = clock.check(api_key)
        assert exhausted.result == limits.EXHAUSTED
        assert (used(exhausted), exhausted.budget_remaining) == ([1], 0)


def test_windows_are_counted_per_key(org, clock):
    """One key's requests count in its own windows only."""
    first = limited_key(org, (1, "minute"), name="first")
    second = limited_key(org, (1, "minute"), name="second")

    assert clock.check(first).result == limits.OK
    assert clock.check(first).result == limits.LIMITED
    assert clock.check(second).result == limits.OK


def test_peek_counts_nothing(org, clock):
    """`peek` (and check without consume) says where the key stands and counts nothing: not in
    a window, not from the budget, not even when the key is limited."""
    api_key = limited_key(org, (2, "minute"), budget={"amount": 5})

    for _ in range(3):
        seen = limits.peek(api_key)
        assert (seen.result, used(seen), seen.budget_remaining) == (limits.OK, [0], 5)
        assert not seen.counted
    clock.check(api_key)
    clock.check(api_key)
    for _ in range(3):
        seen = limits.peek(api_key)
        assert (seen.result, used(seen), seen.budget_remaining) == (limits.LIMITED, [2], 3)


def test_the_ratelimit_fields_name_each_window(org, clock):
    """RateLimit-Policy gives each window's quota and length, RateLimit what is left and when
    it resets (draft-ietf-httpapi-ratelimit-headers), shortest window first."""
    api_key = limited_key(org, (100, "hour"), (3, "minute"))

    outcome = clock.check(api_key)

    assert outcome.headers() == {
        "RateLimit-Policy": '"minute";q=3;w=60, "hour";q=100;w=3600',
        "RateLimit": '"minute";r=2;t=60, "hour";r=99;t=3600',
    }
    budget_only = limited_key(org, budget={"amount": 3}, name="budget only")
    assert clock.check(budget_only).headers() == {}


# --- counting: budgets ------------------------------------------------------------------------


def budget_key(org, **budget) -> ApiKey:
    return operator_key(org, budget=budget)[0]


def test_a_budget_counts_down_to_zero_then_refuses(org, clock):
    """A budget lets `amount` requests through, then every request is refused as exhausted."""
    api_key = budget_key(org, amount=2)

    results = [clock.check(api_key) for _ in range(4)]

    assert [o.result for o in results] == [limits.OK, limits.OK, limits.EXHAUSTED, limits.EXHAUSTED]
    assert [o.budget_remaining for o in results] == [1, 0, 0, 0]


def test_a_budget_of_zero_refuses_at_once(org, clock):
    """A budget of 0 refuses the first request."""
    api_key = budget_key(org, amount=0)
    assert clock.check(api_key).result == limits.EXHAUSTED


def test_a_daily_budget_is_refilled_the_next_utc_day(org, clock):
    """A daily budget starts from its amount and, on the next UTC day, from its refill amount."""
    api_key = budget_key(org, amount=1, refill="daily", refill_amount=3)

    assert clock.check(api_key).result == limits.OK
    assert clock.check(api_key).result == limits.EXHAUSTED

    tomorrow = datetime.fromtimestamp(clock.now, UTC).date() + timedelta(days=1)
    clock.advance(datetime(*tomorrow.timetuple()[:3], tzinfo=UTC).timestamp() - clock.now)
    results = [clock.check(api_key) for _ in range(4)]
    assert [o.budget_remaining for o in results] == [2, 1, 0, 0]
    assert results[-1].result == limits.EXHAUSTED
    assert results[0].budget_period == tomorrow.isoformat()


def test_a_monthly_budget_lasts_the_month_and_is_refilled_the_next(org, clock):
    """A monthly budget is not refilled on a new day of the same month, but on the first of the
    next month (UTC)."""
    api_key = budget_key(org, amount=1, refill="monthly", refill_amount=2)
    today = datetime.fromtimestamp(clock.now, UTC)

    assert clock.check(api_key).result == limits.OK
    first_of_next = (today.replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    last_moment = first_of_next.timestamp() - 1
    clock.advance(last_moment - clock.now)
    assert clock.check(api_key).result == limits.EXHAUSTED

    clock.advance(1)
    assert [clock.check(api_key).result for _ in range(3)] == [
        limits.OK,
        limits.OK,
        limits.EXHAUSTED,
    ]


def test_a_budget_without_refill_is_never_refilled(org, clock):
    """A budget without a refill stays spent, months later."""
    api_key = budget_key(org, amount=1)
    assert clock.check(api_key).result == limits.OK
    clock.advance(86400 * 40)
    assert clock.check(api_key).result == limits.EXHAUSTED


def test_a_lost_counter_is_seeded_from_the_row_at_most_one_flush_behind(org, clock, limits_cache):
    """When the cache loses the budget's counter it starts again from what apikeys.usage last
    wrote: the key regains at most the requests made since the last flush, never more."""
    api_key = budget_key(org, amount=10)

    for _ in range(3):
        usage.record_limits(api_key.pk, clock.check(api_key))
    usage.flush()
    api_key.refresh_from_db()
    assert api_key.budget_remaining == 7
    for _ in range(2):  # not flushed yet
        usage.record_limits(api_key.pk, clock.check(api_key))

    lose_the_cache(limits_cache)

    after = clock.check(api_key)
    assert after.budget_remaining == 6  # 7 as written, less this request: 2 regained
    assert [clock.check(api_key).result for _ in range(7)] == [limits.OK] * 6 + [limits.EXHAUSTED]


def test_a_lost_counter_of_an_earlier_period_is_seeded_with_the_refill(org, clock, limits_cache):
    """A count written for an earlier refill period is not carried into a new one: a counter
    lost on a new day starts from the refill amount."""
    api_key = budget_key(org, amount=5, refill="daily", refill_amount=2)
    usage.record_limits(api_key.pk, clock.check(api_key))
    usage.flush()
    api_key.refresh_from_db()
    assert api_key.budget_remaining == 4

    clock.advance(86400)
    lose_the_cache(limits_cache)

    assert [clock.check(api_key).budget_remaining for _ in range(3)] == [1, 0, 0]


def test_a_budget_set_anew_counts_from_its_new_amount(org, clock):
    """Setting a budget again (a new version) starts a new counter from its amount: the old
    counter does not carry over."""
    from accounts.access import Actor
    from apikeys.services import api_key_update

    api_key = budget_key(org, amount=1)
    assert clock.check(api_key).result == limits.OK
    assert clock.check(api_key).result == limits.EXHAUSTED

    api_key = api_key_update(
        actor=Actor.operator("operator (tests)"), api_key=api_key, budget={"amount": 2}
    )

    assert [clock.check(api_key).result for _ in range(3)] == [
        limits.OK,
        limits.OK,
        limits.EXHAUSTED,
    ]


# --- writing the budget back: never raised ----------------------------------------------------


def row(api_key: ApiKey) -> tuple:
    return ApiKey.objects.values_list("budget_remaining", "budget_period").get(pk=api_key.pk)


def test_flush_writes_the_budget_and_never_raises_it(org):
    """Two workers' observations of one budget, flushed in any order, leave the lowest count:
    a worker flushing late never raises what another wrote."""
    api_key = budget_key(org, amount=100)
    version = api_key.protections["budget"]["version"]

    usage.record_budget(api_key.pk, version, "", 40)  # worker A, the later count
    usage.flush()
    usage.record_budget(api_key.pk, version, "", 70)  # worker B, flushing late
    usage.flush()
    assert row(api_key) == (40, "")

    usage.record_budget(api_key.pk, version, "", 30)
    usage.record_budget(api_key.pk, version, "", 35)  # within one buffer, out of order
    usage.flush()
    assert row(api_key) == (30, "")


def test_flush_starts_a_new_period_but_never_goes_back_to_an_old_one(org):
    """A count of a later refill period replaces the row's, even when higher (the budget was
    refilled); a late count of an earlier period changes nothing."""
    api_key = budget_key(org, amount=5, refill="daily", refill_amount=100)
    version = api_key.protections["budget"]["version"]
    ApiKey.objects.filter(pk=api_key.pk).update(budget_remaining=0, budget_period="2026-03-01")

    usage.record_budget(api_key.pk, version, "2026-03-02", 99)
    usage.flush()
    assert row(api_key) == (99, "2026-03-02")

    usage.record_budget(api_key.pk, version, "2026-03-01", 0)  # a late worker, yesterday
    usage.flush()
    assert row(api_key) == (99, "2026-03-02")


def test_flush_ignores_counts_of_a_budget_since_replaced(org):
    """A count of a budget that has since been set anew (another version) is not written over
    the new budget's."""
    api_key = budget_key(org, amount=100)
    old_version = api_key.protections["budget"]["version"]
    ApiKey.objects.filter(pk=api_key.pk).update(
        protections={"budget": clean_budget(500).as_json()}, budget_remaining=500
    )

    usage.record_budget(api_key.pk, old_version, "", 3)
    usage.flush()

    assert row(api_key) == (500, "")


def test_flush_never_writes_a_negative_count(org):
    """A count below zero (never sent by the cache, but a row must not hold one) is written as
    zero."""
    api_key = budget_key(org, amount=5)
    usage.record_budget(api_key.pk, api_key.protections["budget"]["version"], "", -2)
    usage.flush()
    assert row(api_key) == (0, "")
