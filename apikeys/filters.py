"""Search and filters of the keys tables: name, owner's email, status, kind, last use and
protections.

The filters come from the query string, so a reloaded page, the back button and a shared link
show the same keys. Bad values never reach a query: the form says what is wrong, next to the
field, and the table shows nothing until it is fixed.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from apikeys.models import ApiKey, KeyKind, KeyStatus
from keyportal.forms import FilterForm

STATUS_CHOICES = [
    ("", "Any status but revoked"),
    ("active", "Active"),
    ("disabled", "Disabled"),
    ("expired", "Expired"),
    ("revoked", "Revoked"),
    ("compromised", "Compromised"),
]
# "Not used for N days": last used more than N days ago, or never used and made more than N
# days ago (a key made yesterday is not stale for never having been used yet).
UNUSED_DAYS = {"30": 30, "90": 90, "365": 365}
UNUSED_CHOICES = [
    ("", "Any time"),
    ("30", "Not used for 30 days"),
    ("90", "Not used for 90 days"),
    ("365", "Not used for 365 days"),
    ("never", "Never used"),
]
# Keys narrowed beyond their grants (apikeys/protections.py).
PROTECTION_CHOICES = [
    ("", "Any protection"),
    ("ip_allowlist", "Has an IP allowlist"),
    ("rate_limited", "Rate limited"),
    ("budget", "Has a usage budget"),
]
_PROTECTION_FIELDS = {
    "ip_allowlist": "allowed_ips",
    "rate_limited": "rate_limits",
    "budget": "budget",
}
KIND_CHOICES = [
    ("", "Every kind"),
    (KeyKind.USER, "Personal"),
    (KeyKind.SERVICE_ACCOUNT, "Service account"),
    (KeyKind.PROJECT, "Project"),
    (KeyKind.ORGANIZATION, "Organization"),
]


class KeyFilterForm(FilterForm):
    """The filters above a keys table. Owner and kind are offered only where they apply."""

    q = forms.CharField(
        label="Search by name",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Key name"}),
        error_messages={"max_length": "Search for at most 100 characters."},
    )
    owner = forms.EmailField(
        label="Owner's email",
        required=False,
        max_length=254,
        widget=forms.EmailInput(
            attrs={"placeholder": "person@example.com or a service account", "list": "owners"}
        ),
        error_messages={"invalid": "Enter an email address, such as ada@example.com."},
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=STATUS_CHOICES,
        error_messages={"invalid_choice": "Choose a status from the list."},
    )
    kind = forms.ChoiceField(
        label="Kind",
        required=False,
        choices=KIND_CHOICES,
        error_messages={"invalid_choice": "Choose a kind of key from the list."},
    )
    unused = forms.ChoiceField(
        label="Last used",
        required=False,
        choices=UNUSED_CHOICES,
        error_messages={"invalid_choice": "Choose a time of last use from the list."},
    )

    protection = forms.ChoiceField(
        label="Protection",
        required=False,
        choices=PROTECTION_CHOICES,
        error_messages={"invalid_choice": "Choose a protection from the list."},
    )

    def __init__(self, data, *, with_owner: bool, with_kind: bool):
        super().__init__(data)
        if not with_owner:
            del self.fields["owner"]
        if not with_kind:
            del self.fields["kind"]


def with_status(keys: QuerySet[ApiKey], status: str) -> QuerySet[ApiKey]:
    """Narrow keys to a state as people read it: revoked, then expired, then the status.

    No status means every key that is not revoked, as the lists have always shown. Compromised
    keys are revoked too: "revoked" lists them as well, "compromised" lists them alone.
    """
    if status == "compromised":
        return keys.filter(compromised_at__isnull=False)
    if status == "revoked":
        return keys.filter(revoked_at__isnull=False)
    keys = keys.filter(revoked_at__isnull=True)
    now = timezone.now()
    if status == "expired":
        return keys.filter(expires_at__lte=now)
    if status in (KeyStatus.ACTIVE, KeyStatus.DISABLED):
        return keys.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), status=status)
    return keys


def with_unused(keys: QuerySet[ApiKey], unused: str) -> QuerySet[ApiKey]:
    """Narrow keys to those not used for 30, 90 or 365 days (`unused` "30", "90", "365"), or
    never used ("never"); "" narrows nothing."""
    if unused == "never":
        return keys.filter(last_used_at__isnull=True)
    if unused in UNUSED_DAYS:
        cutoff = timezone.now() - timedelta(days=UNUSED_DAYS[unused])
        return keys.filter(
            Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
        )
    return keys


def apply_filters(keys: QuerySet[ApiKey], data: dict) -> QuerySet[ApiKey]:
    """Apply a valid form's cleaned data to the keys the viewer may see."""
    keys = with_status(keys, data.get("status") or "")
    keys = with_unused(keys, data.get("unused") or "")
    if data.get("protection") in _PROTECTION_FIELDS:
        keys = keys.filter(protections__has_key=_PROTECTION_FIELDS[data["protection"]])
    if data.get("q"):
        keys = keys.filter(name__icontains=data["q"])
    if data.get("kind"):
        keys = keys.filter(kind=data["kind"])
    if data.get("owner"):
        email = data["owner"]
        keys = keys.filter(
            Q(owner_user__email__iexact=email) | Q(owner_service_account__identifier__iexact=email)
        )
    return keys
