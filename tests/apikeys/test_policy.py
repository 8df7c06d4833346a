"""Organization key policy: defaults, expiration choices, checks, flags and the policy service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent
from apikeys.models import ApiKey, KeyKind, KeyPolicy
from apikeys.policy import (
    Policy,
    exceeds_policy,
    expiry_choices,
    expiry_problem,
    policies_for,
    policy_for,
)
from apikeys.services import key_policy_update
from tests.apikeys.conftest import in_days, new_key


def test_personal_keys_default_to_expiry_within_30_days(org):
    """Without a stored policy, personal keys must expire within 30 days; others may not."""
    policies = policies_for(organization=org.organization)

    assert policies[KeyKind.USER] == Policy(require_expiry=True, max_lifetime_days=30)
    for kind in (KeyKind.ORGANIZATION, KeyKind.PROJECT, KeyKind.SERVICE_ACCOUNT):
        assert policies[kind] == Policy()


def test_stored_policy_replaces_the_default(org, other_org):
    """A stored row is the organization's policy for that kind, and only that organization's."""
    KeyPolicy.objects.create(organization=org.organization, kind=KeyKind.USER, require_expiry=False)
    KeyPolicy.objects.create(
        organization=org.organization, kind=KeyKind.ORGANIZATION, max_lifetime_days=90
    )

    assert policy_for(organization=org.organization, kind=KeyKind.USER) == Policy()
    assert policy_for(organization=org.organization, kind=KeyKind.ORGANIZATION) == Policy(
        max_lifetime_days=90
    )
    assert policy_for(organization=other_org.organization, kind=KeyKind.USER) == Policy(True, 30)


@pytest.mark.parametrize(
    ("policy", "values"),
    [
        (Policy(), ["never", "30", "60", "90", "365", "custom"]),
        (Policy(require_expiry=True), ["30", "60", "90", "365", "custom"]),
        (Policy(require_expiry=True, max_lifetime_days=30), ["30", "custom"]),
        (Policy(max_lifetime_days=90), ["30", "60", "90", "custom"]),
        (Policy(max_lifetime_days=10), ["custom"]),
        (Policy(max_lifetime_days=365), ["30", "60", "90", "365", "custom"]),
    ],
)
def test_expiry_choices_follow_the_policy(policy, values):
    """Never is offered only when expiry is optional; preset lifetimes only within the maximum."""
    assert [value for value, _label in expiry_choices(policy)] == values


def test_expiry_choice_labels():
    """Choices read Never, 30 days, 60 days, 90 days, 1 year, Custom date."""
    assert [label for _value, label in expiry_choices(Policy())] == [
        "Never",
        "30 days",
        "60 days",
        "90 days",
        "1 year",
        "Custom date",
    ]


def test_expiry_problem_never():
    """Never is fine without a rule, refused when expiry is required or a maximum is set."""
    assert expiry_problem(Policy(), None) is None
    assert "requires" in expiry_problem(Policy(require_expiry=True), None)
    assert "requires" in expiry_problem(Policy(max_lifetime_days=30), None)


def test_expiry_problem_past_date():
    """A past or present expiry is refused under any policy."""
    for policy in (Policy(), Policy(True, 30)):
        assert expiry_problem(policy, timezone.now() - timedelta(seconds=1)) == (
            "The expiration must be in the future."
        )


def test_expiry_problem_beyond_the_maximum():
    """An expiry beyond the maximum lifetime is refused, naming the maximum."""
    policy = Policy(max_lifetime_days=30)

    assert expiry_problem(policy, in_days(29)) is None
    assert expiry_problem(policy, in_days(30)) is None
    assert expiry_problem(policy, in_days(31)) == (
        "This organization's policy allows these keys at most 30 days."
    )


def test_expiry_problem_counts_from_the_start_given():
    """On rotation the lifetime counts from now, not from when the key was made."""
    policy = Policy(max_lifetime_days=30)
    expires_at = in_days(20)

    assert expiry_problem(policy, expires_at, start=timezone.now() - timedelta(days=15)) is not None
    assert expiry_problem(policy, expires_at, start=timezone.now()) is None


def test_describe():
    """A policy says in words what it requires."""
    assert Policy().describe() == "may never expire"
    assert Policy(require_expiry=True).describe() == "must expire"
    assert Policy(True, 30).describe() == "must expire within 30 days"


@pytest.mark.parametrize(
    ("expires_in", "policy", "flagged"),
    [
        (None, Policy(), False),
        (None, Policy(require_expiry=True), True),
        (None, Policy(max_lifetime_days=90), True),
        (365, Policy(require_expiry=True), False),
        (365, Policy(max_lifetime_days=90), True),
        (90, Policy(max_lifetime_days=90), False),
        (30, Policy(max_lifetime_days=90), False),
    ],
)
def test_exceeds_policy(expires_in, policy, flagged):
    """A key is flagged when its lifetime breaks a policy stricter than when it was made."""
    now = timezone.now()
    api_key = ApiKey(
        created_at=now,
        expires_at=None if expires_in is None else now + timedelta(days=expires_in),
    )
    assert exceeds_policy(api_key, policy) is flagged


def test_stricter_policy_flags_older_keys_and_changes_nothing(org):
    """After a stricter policy, a key that never expires is flagged and left exactly as it was."""
    api_key, _token = new_key(org, KeyKind.ORGANIZATION)
    before = ApiKey.objects.filter(pk=api_key.pk).values_list().get()

    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        require_expiry=True,
        max_lifetime_days=90,
    )

    api_key.refresh_from_db()
    assert exceeds_policy(api_key, policy_for(organization=org.organization, kind="org"))
    assert ApiKey.objects.filter(pk=api_key.pk).values_list().get() == before


def test_key_policy_update_stores_and_records(org):
    """Saving a policy stores one row per kind and writes a history row with actor and address."""
    actor = Actor(user=org.owner, ip="203.0.113.9")

    policy = key_policy_update(
        actor=actor,
        organization=org.organization,
        kind=KeyKind.SERVICE_ACCOUNT,
        require_expiry=True,
        max_lifetime_days=60,
    )
    key_policy_update(
        actor=actor,
        organization=org.organization,
        kind=KeyKind.SERVICE_ACCOUNT,
        require_expiry=False,
        max_lifetime_days=None,
    )

    assert KeyPolicy.objects.get() == policy
    policy.refresh_from_db()
    assert (policy.require_expiry, policy.max_lifetime_days) == (False, None)
    events = AuditEvent.objects.filter(action="key_policy.updated").order_by("id")
    assert events.count() == 2
    first = events.first()
    assert (first.actor_user, first.ip_address, first.origin) == (org.owner, "203.0.113.9", "web")
    assert first.detail == {
        "kind": "svc",
        "require_expiry": True,
        "max_lifetime_days": 60,
        "disable_unused_after_days": None,
        "default_rate_limit": None,
    }
    assert first.organization == org.organization


@pytest.mark.parametrize(
    ("kind", "days", "field"),
    [
        ("admin", None, "kind"),
        ("", None, "kind"),
        (KeyKind.USER, 0, "max_lifetime_days"),
        (KeyKind.USER, -5, "max_lifetime_days"),
        (KeyKind.USER, 3651, "max_lifetime_days"),
    ],
)
def test_key_policy_update_refuses_bad_values(org, kind, days, field):
    """An unknown kind, or a lifetime outside 1 to 3650 days, is refused and nothing is stored."""
    with pytest.raises(ValidationError) as raised:
        key_policy_update(
            actor=Actor(user=org.owner),
            organization=org.organization,
            kind=kind,
            require_expiry=True,
            max_lifetime_days=days,
        )

    assert field in raised.value.message_dict
    assert not KeyPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action="key_policy.updated").exists()


def test_key_policy_update_accepts_the_bounds(org):
    """1 and 3650 days are both accepted."""
    for days in (1, 3650):
        key_policy_update(
            actor=Actor(user=org.owner),
            organization=org.organization,
            kind=KeyKind.PROJECT,
            require_expiry=False,
            max_lifetime_days=days,
        )
        assert policy_for(organization=org.organization, kind="project").max_lifetime_days == days


def test_policy_change_applies_to_new_keys(org):
    """Once organization keys are capped at 30 days, a 60-day or never-expiring key is refused."""
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.ORGANIZATION,
        require_expiry=True,
        max_lifetime_days=30,
    )

    with pytest.raises(ValidationError) as raised:
        new_key(org, KeyKind.ORGANIZATION, expires_at=in_days(60))
    assert raised.value.message_dict == {
        "expiration": ["This organization's policy allows these keys at most 30 days."]
    }
    with pytest.raises(ValidationError):
        new_key(org, KeyKind.ORGANIZATION, expires_at=None)
    api_key, _token = new_key(org, KeyKind.ORGANIZATION, expires_at=in_days(30))
    assert api_key.pk
