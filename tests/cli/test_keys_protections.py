"""`keyportal keys create --allow-ip/--rate-limit/--budget` and `keyportal keys protect`: the
CLI's door to a key's protections (issue 13), end to end against the live server."""

from __future__ import annotations

import json

import pytest

from apikeys.models import ApiKey
from apikeys.permissions import READ_ONLY
from tests.cli.conftest import assert_never_shown, key_of, org_token

pytestmark = pytest.mark.django_db(transaction=True)

MANAGE = ["api-keys:manage", *sorted(READ_ONLY)]


def test_create_pins_a_key_to_addresses_and_caps_it(keyportal, org):
    """An owner pins a CI key to its addresses and caps it per minute and per month, in one
    command; the token alone on stdout, the protections said on stderr."""
    token = org_token(org, MANAGE)
    result = keyportal(
        "keys", "create", "--name", "ci", "--preset", "read-only",
        "--allow-ip", "203.0.113.0/24", "--allow-ip", "2001:db8::1",
        "--rate-limit", "100/minute", "--rate-limit", "10000/d",
        "--budget", "50000", "--refill", "monthly", "--refill-amount", "50000",
        env={"KEYPORTAL_API_KEY": token},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = key_of(result.stdout.strip())
    assert created.protections["allowed_ips"] == ["203.0.113.0/24", "2001:db8::1"]
    assert created.protections["rate_limits"] == [
        {"limit": 100, "window": "minute"},
        {"limit": 10000, "window": "day"},
    ]
    assert created.protections["budget"]["refill"] == "monthly"
    assert created.budget_remaining == 50000
    assert "works only from 203.0.113.0/24, 2001:db8::1" in result.stderr
    assert "at most 100 per minute and 10,000 per day" in result.stderr
    assert "refilled monthly to 50,000" in result.stderr
    assert_never_shown(result, token)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--rate-limit", "0/minute"), "not a rate limit like 100/minute"),
        (("--rate-limit", "100/week"), "not a rate limit like 100/minute"),
        (("--rate-limit", "many/minute"), "not a rate limit like 100/minute"),
        (("--budget", "-1"), "--budget"),
        (("--refill", "daily"), "--refill and --refill-amount go with --budget N"),
        (("--budget", "10", "--refill", "daily"), "Give --refill and --refill-amount together"),
    ],
)
def test_bad_protections_are_refused_before_sending(keyportal, org, args, said):
    """Malformed limits and budgets are usage errors (exit 2), and no key is made."""
    token = org_token(org, MANAGE)
    before = ApiKey.objects.count()
    result = keyportal(
        "keys", "create", "--name", "x", "--preset", "read-only", *args,
        env={"KEYPORTAL_API_KEY": token},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert ApiKey.objects.count() == before


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("not-an-address", "is not an IPv4 or IPv6 address or CIDR range"),
        ("0.0.0.0/0", "allows every address"),
        ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
    ],
)
def test_the_servers_refusal_of_an_address_is_said_and_nothing_is_made(
    keyportal, org, address, said
):
    """Addresses are checked by the server, which names the bad one (422, exit 1)."""
    token = org_token(org, MANAGE)
    before = ApiKey.objects.count()
    result = keyportal(
        "keys", "create", "--name", "x", "--preset", "read-only", "--allow-ip", address,
        env={"KEYPORTAL_API_KEY": token},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert said in result.output
    assert ApiKey.objects.count() == before


def test_protect_changes_only_what_is_given(keyportal, org):
    """`keys protect` replaces the protections it is given and keeps the others; the flags
    --any-ip, --no-rate-limit and --no-budget remove them."""
    token = org_token(org, MANAGE)
    target = key_of(
        keyportal(
            "keys", "create", "--name", "ci", "--preset", "read-only",
            "--allow-ip", "203.0.113.7", "--rate-limit", "5/second", "--budget", "9",
            env={"KEYPORTAL_API_KEY": token},
        ).stdout.strip()
    )  # fmt: skip
    env = {"KEYPORTAL_API_KEY": token}
    result = keyportal("keys", "protect", str(target.pk), "--rate-limit", "60/minute", env=env)
    assert result.exit_code == 0, result.output
    target.refresh_from_db()
    assert target.protections["allowed_ips"] == ["203.0.113.7"]
    assert target.protections["rate_limits"] == [{"limit": 60, "window": "minute"}]
    assert target.protections["budget"]["amount"] == 9
    assert "now works only from 203.0.113.7; at most 60 per minute" in result.stdout

    result = keyportal(
        "--json", "keys", "protect", str(target.pk), "--any-ip", "--no-rate-limit",
        "--no-budget", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["allowed_ips"], shown["rate_limits"], shown["budget"]) == ([], [], None)
    target.refresh_from_db()
    assert target.protections == {}


def test_protect_needs_something_to_change_and_a_key_in_reach(keyportal, org, other_org):
    """Nothing to change is a usage error; another organization's key is not found (exit 5)."""
    token = org_token(org, MANAGE)
    foreign = key_of(org_token(other_org, MANAGE))
    env = {"KEYPORTAL_API_KEY": token}
    assert keyportal("keys", "protect", str(foreign.pk), env=env).exit_code == 2
    both = keyportal("keys", "protect", "1", "--any-ip", "--allow-ip", "203.0.113.1", env=env)
    assert both.exit_code == 2
    assert "not both" in both.output
    result = keyportal("keys", "protect", str(foreign.pk), "--any-ip", env=env)
    assert result.exit_code == 5, result.output


def test_a_key_past_its_own_rate_limit_is_told_so(keyportal, org):
    """The key's own rate limit (429 with RateLimit fields) is said as such, exit 6, not as
    failed attempts from the address."""
    token = org_token(org, MANAGE)
    limited = keyportal(
        "keys", "create", "--name", "slow", "--preset", "read-only", "--rate-limit", "1/hour",
        env={"KEYPORTAL_API_KEY": token},
    ).stdout.strip()  # fmt: skip
    env = {"KEYPORTAL_API_KEY": limited}
    assert keyportal("whoami", env=env).exit_code == 0
    result = keyportal("whoami", env=env)
    assert result.exit_code == 6, result.output
    assert "is limited to 1 per hour" in result.output
    assert "failed attempts" not in result.output
    assert_never_shown(result, limited)
