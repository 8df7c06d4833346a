"""`manage.py create_api_key` sets protections through the same service as every other door."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.access import Actor
from apikeys.models import ApiKey
from apikeys.services import key_policy_update

pytestmark = pytest.mark.django_db


def create(*args: str) -> ApiKey:
    out = StringIO()
    call_command(
        "create_api_key", "--organization", "acme", "--preset", "read-only", *args,
        stdout=out, stderr=StringIO(),
    )  # fmt: skip
    return ApiKey.objects.get(preview__endswith=out.getvalue().strip()[-4:])


def test_protections_from_the_command_line(org):
    """--allow-ip, --rate-limit, --budget, --refill and --refill-amount reach the key."""
    key = create(
        "--allow-ip", "198.51.100.0/24", "--rate-limit", "10/second", "--budget", "100",
        "--refill", "daily", "--refill-amount", "100",
    )  # fmt: skip
    assert key.protections["allowed_ips"] == ["198.51.100.0/24"]
    assert key.protections["rate_limits"] == [{"limit": 10, "window": "second"}]
    assert key.protections["budget"]["refill"] == "daily"


def test_the_policy_default_applies_unless_a_limit_is_given(org):
    """Without --rate-limit the policy's default for the kind applies."""
    key_policy_update(
        actor=Actor.operator("tests"), organization=org.organization, kind="org",
        require_expiry=False, max_lifetime_days=None,
        default_rate_limit={"limit": 50, "window": "minute"},
    )  # fmt: skip
    assert create().protections["rate_limits"] == [{"limit": 50, "window": "minute"}]
    assert create("--rate-limit", "5/hour").protections["rate_limits"] == [
        {"limit": 5, "window": "hour"}
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--rate-limit", "0/minute"), "must be at least 1"),
        (("--rate-limit", "5/week"), "is not a window"),
        (("--rate-limit", "lots"), "give COUNT/WINDOW"),
        (("--allow-ip", "0.0.0.0/0"), "allows every address"),
        (("--refill", "daily"), "Give the number of requests the budget starts with"),
        (("--budget", "5", "--refill", "monthly"), "Give the amount a monthly refill"),
    ],
)
def test_bad_protections_are_refused_and_nothing_is_made(org, args, said):
    """The service's message, and no key."""
    with pytest.raises(CommandError, match=said):
        create(*args)
    assert not ApiKey.objects.exists()
