"""What the keys tables flag about time: expiries coming soon and keys nobody uses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys.freshness import Flag, expiry_urgency, unused_flag
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.policy import Policy

NOW = timezone.now()


def key(**fields) -> ApiKey:
    """Return an unsaved organization key made 400 days ago, with `fields`."""
    fields.setdefault("created_at", NOW - timedelta(days=400))
    return ApiKey(kind=KeyKind.ORGANIZATION, name="k", **fields)


@pytest.mark.parametrize(
    ("left", "urgency"),
    [
        (None, ""),
        (timedelta(days=30), ""),
        (timedelta(days=7, minutes=1), ""),
        (timedelta(days=7), "soon"),
        (timedelta(days=3), "soon"),
        (timedelta(days=1, minutes=1), "soon"),
        (timedelta(days=1), "urgent"),
        (timedelta(minutes=5), "urgent"),
        (-timedelta(minutes=5), ""),  # expired: its Expired badge says so
    ],
)
def test_expiry_urgency(left, urgency):
    """Within 7 days an expiry is "soon", within a day "urgent"; an expired key is neither."""
    api_key = key(expires_at=None if left is None else NOW + left)
    assert expiry_urgency(api_key, NOW) == urgency


def test_a_revoked_key_has_no_expiry_warning():
    """A revoked key will never be used again: its expiry warns nobody."""
    assert expiry_urgency(key(expires_at=NOW + timedelta(days=2), revoked_at=NOW), NOW) == ""


@pytest.mark.parametrize(
    ("fields", "flag"),
    [
        ({"last_used_at": NOW - timedelta(days=89)}, None),
        (
            {"last_used_at": NOW - timedelta(days=94)},
            Flag("Stale", "Not used for 94 days", "muted"),
        ),
        (
            {"last_used_at": None, "created_at": NOW - timedelta(days=120)},
            Flag("Stale", "Never used; created 120 days ago", "muted"),
        ),
        ({"last_used_at": None, "created_at": NOW - timedelta(days=10)}, None),
        # Disabled keys may be stale too; expired and revoked ones are not flagged at all.
        (
            {"last_used_at": NOW - timedelta(days=100), "status": KeyStatus.DISABLED},
            Flag("Stale", "Not used for 100 days", "muted"),
        ),
        ({"last_used_at": None, "expires_at": NOW - timedelta(days=1)}, None),
        ({"last_used_at": None, "revoked_at": NOW}, None),
    ],
)
def test_stale_after_90_days(fields, flag):
    """A live key not used for 90 days, or never used and made 90 days ago, is "Stale"."""
    assert unused_flag(key(**fields), Policy(), NOW) == flag


def test_the_policy_warns_two_weeks_before_it_disables():
    """With a 30-day policy a key unused for 20 days says when it will be disabled; one unused
    for 10 days says nothing yet."""
    policy = Policy(disable_unused_after_days=30)

    soon = unused_flag(key(last_used_at=NOW - timedelta(days=20)), policy, NOW)
    assert soon.label == "Disabled in 10 days unless used"
    assert soon.tone == "warning"
    assert soon.title == (
        "Not used for 20 days. The key policy disables organization keys not used for 30 days."
    )
    assert unused_flag(key(last_used_at=NOW - timedelta(days=10)), policy, NOW) is None


def test_a_key_past_the_policy_is_disabled_soon():
    """A key the worker has not reached yet reads "Disabled soon unless used", not "Stale"."""
    flag = unused_flag(key(last_used_at=None), Policy(disable_unused_after_days=90), NOW)
    assert flag.label == "Disabled soon unless used"


def test_a_disabled_key_is_not_warned_about_being_disabled():
    """The worker only disables active keys: a disabled one is just "Stale"."""
    flag = unused_flag(
        key(last_used_at=None, status=KeyStatus.DISABLED), Policy(disable_unused_after_days=30), NOW
    )
    assert flag.label == "Stale"
