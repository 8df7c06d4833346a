"""What the keys tables flag about time: an expiry coming soon, and keys nobody uses.

Computed from the row alone (and the organization's policies, read once per page), so a table
of 50 keys costs no query more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from accounts.templatetags.console import relative_text
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.policy import Policy

# An expiry within a week reads as a warning, within a day as an urgent one.
EXPIRY_SOON = timedelta(days=7)
EXPIRY_URGENT = timedelta(days=1)
# A live key not used for this long (or never used, and made this long ago) is "Stale".
STALE_AFTER_DAYS = 90
# Keys the policy's worker will disable within this long say so.
DISABLE_WARNING = timedelta(days=14)


@dataclass(frozen=True)
class Flag:
    """A badge beside a key's state: its text, its tooltip (also read to screen readers)."""

    label: str
    title: str
    tone: str  # a badge modifier of app.css: "muted" or "warning"


def expiry_urgency(api_key: ApiKey, now: datetime | None = None) -> str:
    """Return "urgent" for a live key expiring within a day, "soon" within a week, else ""."""
    if api_key.expires_at is None or api_key.is_revoked:
        return ""
    left = api_key.expires_at - (now or timezone.now())
    if left <= timedelta(0):
        return ""  # expired: the Expired badge says it
    if left <= EXPIRY_URGENT:
        return "urgent"
    return "soon" if left <= EXPIRY_SOON else ""


def unused_since(api_key: ApiKey) -> datetime:
    """Return when the key was last used or, never used, when it was made."""
    return api_key.last_used_at or api_key.created_at


def _unused_text(api_key: ApiKey, now: datetime) -> str:
    if api_key.last_used_at is None:
        days = (now - api_key.created_at).days
        return f"Never used; created {days} day{'' if days == 1 else 's'} ago"
    days = (now - api_key.last_used_at).days
    return f"Not used for {days} day{'' if days == 1 else 's'}"


def unused_flag(api_key: ApiKey, policy: Policy, now: datetime | None = None) -> Flag | None:
    """Return the badge of a live key nobody uses: "Disabled in 5 days unless used" when the
    policy's worker will disable it within 14 days, "Stale" after 90 days unused; else None.

    Only live keys (active or disabled) are flagged: an expired or revoked key no longer works,
    and the worker disables only active keys.
    """
    if api_key.is_revoked or api_key.is_expired:
        return None
    now = now or timezone.now()
    idle = now - unused_since(api_key)
    days = policy.disable_unused_after_days
    if days and api_key.status == KeyStatus.ACTIVE:
        disable_at = unused_since(api_key) + timedelta(days=days)
        if disable_at - now <= DISABLE_WARNING:
            when = relative_text(disable_at, now) if disable_at > now else "soon"
            kind = KeyKind(api_key.kind).label.lower()
            return Flag(
                f"Disabled {when} unless used",
                f"{_unused_text(api_key, now)}. The key policy disables {kind} keys "
                f"not used for {days} days.",
                "warning",
            )
    if idle >= timedelta(days=STALE_AFTER_DAYS):
        return Flag("Stale", _unused_text(api_key, now), "muted")
    return None
