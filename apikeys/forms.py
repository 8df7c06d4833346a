"""The API key form: name, permissions by group with presets, scopes, and expiration; the key
policy form. A key's protections have their own form (apikeys.forms_protections)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from accounts.access import Refused
from accounts.forms import name_field
from apikeys import presets
from apikeys.authority import Act
from apikeys.models import KeyPreset, KeyStatus
from apikeys.permissions import CATALOGUE, PERMISSIONS, ordered
from apikeys.policy import (
    DEFAULT_EXPIRY_DAYS,
    DISABLE_UNUSED_DAYS,
    DISABLE_UNUSED_PROBLEM,
    EXPIRY_DAYS,
    OTHER_EXPIRY_DAYS,
    Policy,
    expiry_choices,
    latest_expiry,
)
from apikeys.protections import MAX_COUNT, WINDOWS
from apikeys.scopes import scopes_from_groups


class ApiKeyForm(forms.Form):
    """Create (with expiration) or edit (with status) a key; offers only what the person holds.

    A name alone makes a working key: the kind's preset is chosen already (apikeys.presets),
    the permission grid stays folded under "Customize permissions", and the expiration starts
    at what the policy allows.
    """

    name = name_field(required=False, help_text="Left blank, a name is generated.")
    # Not required: a request without it (a name alone, from a script) takes the kind's preset.
    preset = forms.ChoiceField(
        label="Permissions",
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose one of the permission choices offered."},
    )
    permissions = forms.MultipleChoiceField(
        required=False,
        choices=[(pid, p.label) for pid, p in PERMISSIONS.items()],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Unknown permission: %(value)s."},
    )

    def __init__(
        self,
        *args,
        kind: str,
        ceiling: frozenset[str],
        scope_choices: dict[str, list[tuple[str, str]]],
        whole_label: str = "Whole organization",
        policy: Policy | None = None,
        editing: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.ceiling = ceiling
        self.offered = [pid for pid in PERMISSIONS if pid in presets.offered(kind)]
        self.fields["preset"].choices = [(p, KeyPreset(p).label) for p in presets.CHOICES[kind]]
        self.fields["preset"].initial = presets.DEFAULT[kind]
        for group_id, choices in scope_choices.items():
            self.fields[f"scope_{group_id}"] = forms.ChoiceField(
                label="Scope",
                required=False,
                choices=[("", whole_label), *choices],
                error_messages={"invalid_choice": "Choose a scope from the list."},
            )
        if editing:
            self.fields["status"] = forms.ChoiceField(
                label="Status", choices=KeyStatus.choices, widget=forms.RadioSelect
            )
        if policy is not None:
            self._add_expiration(policy, editing)

    def _add_expiration(self, policy: Policy, editing: bool) -> None:
        keep = [("keep", "Keep the current expiration")] if editing else []
        choices = keep + expiry_choices(policy)
        self.fields["expiration"] = forms.ChoiceField(
            label="Expiration",
            required=False,
            choices=choices,
            error_messages={"invalid_choice": "Choose an expiration the policy allows."},
        )
        today = timezone.now().astimezone(UTC).date()
        latest = latest_expiry(policy, timezone.now())
        limits = {"min": (today + timedelta(days=1)).isoformat()}
        if latest is not None:
            limits["max"] = latest.date().isoformat()
        self.fields["expires_on"] = forms.DateField(
            label="Custom date",
            required=False,
            widget=forms.DateInput(attrs={"type": "date", **limits}),
            error_messages={"invalid": "Enter a date like 2027-01-31."},
        )
        self.fields["expiration"].initial = (
            keep[0][0] if keep else default_expiry(self.kind, choices)
        )
        if self.fields["expiration"].initial == "custom" and latest is not None:
            # A policy shorter than every fixed choice: the last day it allows, filled in, so
            # that a name alone still makes a key.
            self.fields["expires_on"].initial = latest.date()

    @property
    def customizing(self) -> bool:
        """Return True when the permission grid should be open: a custom choice, or its errors."""
        chosen = self["preset"].value() or self.fields["preset"].initial
        scope_errors = any(self[f].errors for f in self.fields if f.startswith("scope_"))
        return chosen == KeyPreset.CUSTOM or bool(self["permissions"].errors) or scope_errors

    def permission_groups(self) -> list[dict]:
        """Return the catalogue as the template draws it: groups of checkboxes with their scope."""
        checked = set(self["permissions"].value() or [])
        if not self.is_bound and self["preset"].value() != KeyPreset.CUSTOM:
            checked = set(self.preset_permissions().get(self["preset"].value(), []))
        groups = []
        for group in CATALOGUE:
            perms = [
                {"permission": p, "checked": p.id in checked, "allowed": p.id in self.ceiling}
                for p in group.permissions
                if p.id in self.offered
            ]
            if perms:
                scope = self[f"scope_{group.id}"] if f"scope_{group.id}" in self.fields else None
                groups.append({"group": group, "permissions": perms, "scope": scope})
        return groups

    def preset_permissions(self) -> dict[str, list[str]]:
        """Return each preset's permissions as offered to this person, for the page's script."""
        return {
            # Never more than the person holds, whatever the preset names.
            preset: ordered(
                presets.preset_permissions(preset, self.kind, self.ceiling) & self.ceiling
            )
            for preset in presets.CHOICES[self.kind]
            if preset != KeyPreset.CUSTOM
        }

    @property
    def preset_json(self) -> str:
        return json.dumps(self.preset_permissions())

    def clean(self):
        cleaned = super().clean()
        for field in ("preset", "expiration", "expires_on"):
            if not cleaned.get(field) and field in self.fields and not self.has_error(field):
                cleaned[field] = self.initial.get(field, self.fields[field].initial)
        preset = cleaned.get("preset") or KeyPreset.CUSTOM
        if preset != KeyPreset.CUSTOM and self._chosen_by_hand(cleaned, preset):
            # Ticked boxes or a scope that the preset would not give (the radio left on the
            # preset, without JavaScript): what was chosen by hand wins.
            preset = cleaned["preset"] = KeyPreset.CUSTOM
        if preset != KeyPreset.CUSTOM:
            cleaned["permissions"] = self.preset_permissions().get(preset, [])
            cleaned["scopes"] = {}
        else:
            permissions = cleaned.get("permissions") or []
            selected = {
                g: cleaned.get(f"scope_{g}")
                for g in (f[6:] for f in self.fields if f.startswith("scope_"))
            }
            cleaned["scopes"] = scopes_from_groups(selected, permissions)
        if cleaned.get("expiration") not in (None, "", "keep"):
            cleaned["expires_at"] = self._expires_at(
                cleaned["expiration"], cleaned.get("expires_on")
            )
        return cleaned

    def _chosen_by_hand(self, cleaned: dict, preset: str) -> bool:
        """Return True when the form's permissions or scopes differ from the preset's (none
        ticked is no choice: a name alone takes the preset)."""
        ticked = set(cleaned.get("permissions") or [])
        scoped = any(cleaned.get(f) for f in self.fields if f.startswith("scope_"))
        return scoped or bool(ticked and ticked != set(self.preset_permissions().get(preset, [])))

    def _expires_at(self, choice: str, day) -> datetime | None:
        now = timezone.now()
        if choice == "never":
            return None
        if choice in EXPIRY_DAYS:
            return now + timedelta(days=EXPIRY_DAYS[choice])
        if day is None:
            if not self.has_error("expires_on"):
                self.add_error("expires_on", "Enter the date the key expires.")
            return None
        # A custom date means the end of that day, in UTC.
        expires_at = datetime.combine(day, time.max, tzinfo=UTC)
        if expires_at <= now:
            self.add_error("expires_on", "The expiration date must be in the future.")
        return expires_at


def default_expiry(kind: str, choices: list[tuple[str, str]]) -> str:
    """Return the expiration a new key starts with: 30 days for personal keys, 90 for others,
    or the longest the policy allows below that (else a custom date)."""
    wanted = DEFAULT_EXPIRY_DAYS.get(kind, OTHER_EXPIRY_DAYS)
    offered = [(EXPIRY_DAYS[value], value) for value, _ in choices if value in EXPIRY_DAYS]
    within = [pair for pair in offered if pair[0] <= wanted]
    if within:
        return max(within)[1]
    return choices[0][0]


class RotateForm(forms.Form):
    grace = forms.ChoiceField(
        label="The old secret stops",
        choices=[
            ("now", "At once"),
            ("1h", "In 1 hour"),
            ("24h", "In 24 hours"),
            ("7d", "In 7 days"),
        ],
        initial="now",
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose when the old secret stops."},
    )


class PolicyForm(forms.Form):
    require_expiry = forms.BooleanField(label="Require an expiration", required=False)
    max_lifetime_days = forms.IntegerField(
        label="Maximum lifetime (days)",
        required=False,
        min_value=1,
        max_value=3650,
        error_messages={
            "min_value": "Enter a number of days from 1 to 3650.",
            "max_value": "Enter a number of days from 1 to 3650.",
            "invalid": "Enter a whole number of days.",
        },
    )
    disable_unused_after_days = forms.TypedChoiceField(
        label="Disable keys unused for",
        required=False,
        choices=[("", "Never"), *((str(days), f"{days} days") for days in DISABLE_UNUSED_DAYS)],
        coerce=int,
        empty_value=None,
        help_text=(
            "The worker disables keys of this kind that have not been used for this long. "
            "Their owners are emailed. Disabled keys can be re-enabled."
        ),
        error_messages={"invalid_choice": DISABLE_UNUSED_PROBLEM},
    )
    default_rate_limit = forms.IntegerField(
        label="Default rate limit for new keys",
        required=False,
        min_value=1,
        max_value=MAX_COUNT,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": 1}),
        error_messages={
            "min_value": "Enter a number of requests, at least 1.",
            "max_value": f"Enter at most {MAX_COUNT:,} requests.",
            "invalid": "Enter a whole number of requests.",
        },
    )
    default_rate_window = forms.ChoiceField(
        label="Per",
        required=False,
        choices=[(unit, unit) for unit in WINDOWS],
        error_messages={"invalid_choice": "Choose second, minute, hour or day."},
    )

    def has_changed(self) -> bool:
        """Return True when a rule changed; the window alone, without a limit, is no rule."""
        changed = set(self.changed_data)
        if not self["default_rate_limit"].value() and not self.initial.get("default_rate_limit"):
            changed.discard("default_rate_window")
        return bool(changed)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("default_rate_limit") and not cleaned.get("default_rate_window"):
            self.add_error("default_rate_window", "Choose second, minute, hour or day.")
        return cleaned

    def policy_arguments(self) -> dict:
        """Return key_policy_update's arguments for this kind."""
        data = self.cleaned_data
        limit = data.get("default_rate_limit")
        return {
            "require_expiry": data["require_expiry"],
            "max_lifetime_days": data["max_lifetime_days"],
            "disable_unused_after_days": data["disable_unused_after_days"],
            "default_rate_limit": {"limit": limit, "window": data["default_rate_window"]}
            if limit
            else None,
        }


def add_refusal(form: forms.Form, refused: Refused) -> None:
    """Show a refusal of what the form asks (grants or an expiry beyond the person's power)
    next to its field; a key the person may not act on at all is a 403, a hidden one a 404."""
    if refused.hidden:
        raise Http404(refused.message)
    if refused.permission is None:
        raise PermissionDenied(refused.message)
    # Loosening is about the protections as a whole: the protections form's own error, above
    # its fields (apikeys.forms_protections).
    field = {Act.WIDEN: "permissions", Act.CREATE: "permissions", Act.EXTEND: "expiration"}.get(
        refused.act
    )
    form.add_error(field if field in form.fields else None, refused.message)
