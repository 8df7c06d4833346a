"""The API key form: name, permissions by group with presets, scopes, and expiration."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from accounts.access import Refused
from accounts.forms import name_field
from apikeys.authority import Act
from apikeys.models import KeyStatus
from apikeys.permissions import CATALOGUE, PERMISSIONS, PRESETS, ordered
from apikeys.policy import EXPIRY_DAYS, Policy, expiry_choices
from apikeys.scopes import scopes_from_groups

PRESET_CHOICES = [("custom", "Choose below"), ("read-only", "Read-only"), ("all", "Allow all")]


class ApiKeyForm(forms.Form):
    """Create (with expiration) or edit (with status) a key; offers only what the person holds."""

    name = name_field(required=False, help_text="Left blank, a name is generated.")
    preset = forms.ChoiceField(
        label="Permissions",
        choices=PRESET_CHOICES,
        initial="custom",
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose a preset: Choose below, Read-only or Allow all.",
            "invalid_choice": "Choose a preset: Choose below, Read-only or Allow all.",
        },
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
        ceiling: frozenset[str],
        scope_choices: dict[str, list[tuple[str, str]]],
        whole_label: str = "Whole organization",
        project_key: bool = False,
        policy: Policy | None = None,
        editing: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.ceiling = ceiling
        self.project_key = project_key
        # A project key holds only what can be narrowed to its project.
        self.offered = [pid for pid, p in PERMISSIONS.items() if not project_key or p.scope_levels]
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
            keep = [("keep", "Keep the current expiration")] if editing else []
            self.fields["expiration"] = forms.ChoiceField(
                label="Expiration",
                choices=keep + expiry_choices(policy),
                error_messages={"invalid_choice": "Choose an expiration the policy allows."},
            )
            self.fields["expires_on"] = forms.DateField(
                label="Custom date",
                required=False,
                widget=forms.DateInput(attrs={"type": "date"}),
                error_messages={"invalid": "Enter a date like 2027-01-31."},
            )
            self.fields["expiration"].initial = self.fields["expiration"].choices[0][0]

    def permission_groups(self) -> list[dict]:
        """Return the catalogue as the template draws it: groups of checkboxes with their scope."""
        checked = set(self["permissions"].value() or [])
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
        offered = set(self.offered) & self.ceiling
        return {key: ordered(perms & offered) for key, (_label, perms) in PRESETS.items()}

    @property
    def preset_json(self) -> str:
        return json.dumps(self.preset_permissions())

    def clean(self):
        cleaned = super().clean()
        preset = cleaned.get("preset") or "custom"
        if preset != "custom":
            cleaned["permissions"] = self.preset_permissions()[preset]
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
        help_text="Leave blank for no maximum.",
        error_messages={
            "min_value": "Enter a number of days from 1 to 3650.",
            "max_value": "Enter a number of days from 1 to 3650.",
            "invalid": "Enter a whole number of days.",
        },
    )


def add_refusal(form: forms.Form, refused: Refused) -> None:
    """Show a refusal of what the form asks (grants or an expiry beyond the person's power)
    next to its field; a key the person may not act on at all is a 403, a hidden one a 404."""
    if refused.hidden:
        raise Http404(refused.message)
    if refused.permission is None:
        raise PermissionDenied(refused.message)
    field = {Act.WIDEN: "permissions", Act.CREATE: "permissions", Act.EXTEND: "expiration"}.get(
        refused.act
    )
    form.add_error(field if field in form.fields else None, refused.message)
