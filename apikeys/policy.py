"""Organization key policy: whether a kind of key must expire, its longest lifetime, and how
long an unused key is kept before the worker disables it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone

from accounts.models import Organization
from apikeys.models import ApiKey, KeyKind, KeyPolicy
from apikeys.protections import Window


@dataclass(frozen=True)
class Policy:
    require_expiry: bool = False
    max_lifetime_days: int | None = None
    # The worker disables keys of this kind not used for this many days; None keeps them.
    disable_unused_after_days: int | None = None
    # The rate limit a new key of this kind starts with (its maker may change it).
    default_rate_limit: Window | None = None

    def describe(self) -> str:
        if self.max_lifetime_days:
            return f"must expire within {self.max_lifetime_days} days"
        return "must expire" if self.require_expiry else "may never expire"


# Personal keys belong to people who may leave: by default they must expire within 30 days.
DEFAULT_POLICIES = {KeyKind.USER: Policy(require_expiry=True, max_lifetime_days=30)}

EXPIRY_DAYS = {"30": 30, "60": 60, "90": 90, "365": 365}
# The expiry a new key starts with, as far as the policy allows (GitHub and OpenAI do alike).
DEFAULT_EXPIRY_DAYS: dict[str, int] = {KeyKind.USER: 30}
OTHER_EXPIRY_DAYS = 90
# How long an unused key may stay before the worker disables it (the policy page's choices).
DISABLE_UNUSED_DAYS = (30, 60, 90, 180, 365)
DISABLE_UNUSED_PROBLEM = "Choose Never or 30, 60, 90, 180 or 365 days."
EXPIRY_LABELS = {
    "never": "Never",
    "30": "30 days",
    "60": "60 days",
    "90": "90 days",
    "365": "1 year",
}


def policies_for(*, organization: Organization) -> dict[str, Policy]:
    """Return the organization's policy for every kind of key, defaults filled in."""
    stored = {
        row.kind: Policy(
            row.require_expiry,
            row.max_lifetime_days,
            row.disable_unused_after_days,
            Window(row.default_rate_limit, row.default_rate_window)
            if row.default_rate_limit
            else None,
        )
        for row in KeyPolicy.objects.filter(organization=organization)
    }
    return {kind: stored.get(kind, DEFAULT_POLICIES.get(kind, Policy())) for kind in KeyKind.values}


def policy_for(*, organization: Organization, kind: str) -> Policy:
    """Return the organization's policy for one kind of key."""
    return policies_for(organization=organization)[kind]


def expiry_choices(policy: Policy) -> list[tuple[str, str]]:
    """Return the expiration choices the policy allows, with "Custom date" last."""
    choices = [] if policy.require_expiry or policy.max_lifetime_days else [("never", "Never")]
    for value, days in EXPIRY_DAYS.items():
        if policy.max_lifetime_days is None or days <= policy.max_lifetime_days:
            choices.append((value, EXPIRY_LABELS[value]))
    return [*choices, ("custom", "Custom date")]


def latest_expiry(policy: Policy, start: datetime) -> datetime | None:
    """Return the latest expiry the policy allows for a key made (or rotated) at `start`.

    The policy counts whole days: a key may live to the end (UTC) of its last allowed day, so a
    custom date exactly N days ahead is always accepted under an N-day policy.
    """
    if not policy.max_lifetime_days:
        return None
    last_day = (start + timedelta(days=policy.max_lifetime_days)).date()
    return datetime.combine(last_day, time.max, tzinfo=UTC)


def expiry_problem(
    policy: Policy, expires_at: datetime | None, *, start: datetime | None = None
) -> str | None:
    """Return why `expires_at` breaks the policy (lifetime counted from `start`), or None."""
    start = start or timezone.now()
    if expires_at is None:
        if policy.require_expiry or policy.max_lifetime_days:
            return "This organization's policy requires these keys to expire."
        return None
    if expires_at <= timezone.now():
        return "The expiration must be in the future."
    latest = latest_expiry(policy, start)
    if latest is not None and expires_at > latest:
        return (
            f"This organization's policy allows these keys at most {policy.max_lifetime_days} days."
        )
    return None


def exceeds_policy(api_key: ApiKey, policy: Policy) -> bool:
    """Return True for a key made before a stricter policy; such keys are flagged, never changed."""
    if api_key.expires_at is None:
        return policy.require_expiry or bool(policy.max_lifetime_days)
    latest = latest_expiry(policy, api_key.created_at)
    return latest is not None and api_key.expires_at > latest
