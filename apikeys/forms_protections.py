"""The protections form: the addresses a key works from, its rate limits and its usage budget.

The same fields under "Protections" in the create dialog and in "Edit protections" on a key's
page. The form checks what it can next to each field (apikeys.protections' own cleaning, so
the words are the service's); the services decide, and what they refuse comes back next to
the field it concerns (`add_service_errors`).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from apikeys.models import ApiKey
from apikeys.policy import Policy
from apikeys.protections import (
    MAX_COUNT,
    REFILLS,
    WINDOWS,
    Window,
    allowed_ips,
    budget,
    clean_allowed_ips,
    rate_limits,
)

# One number field per window: "rate_second", "rate_minute", ...
RATE_FIELDS = {f"rate_{unit}": unit for unit in WINDOWS}
BUDGET_FIELDS = ("budget_amount", "budget_refill", "budget_refill_amount")
# The services' error keys, and the field each is shown next to when it names no other.
SERVICE_FIELDS = {"allowed_ips": "allowed_ips", "budget": "budget_amount"}


def _count(label: str, *, least: int = 1, help_text: str = "") -> forms.IntegerField:
    words = "0 or more" if least == 0 else "at least 1"
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=least,
        max_value=MAX_COUNT,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": 1}),
        error_messages={
            "invalid": "Enter a whole number.",
            "min_value": f"Enter a whole number, {words}.",
            "max_value": f"Enter at most {MAX_COUNT:,}.",
        },
    )


class ProtectionsForm(forms.Form):
    """A key's IP allowlist, rate limits (one number per window) and usage budget."""

    allowed_ips = forms.CharField(
        label="Allowed IP addresses",
        required=False,
        strip=True,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text=(
            "One address or CIDR range per line, or separated by commas, such as "
            "<code>203.0.113.7</code> or <code>2001:db8::/32</code>. "
            "Empty: the key works from any address."
        ),
    )
    rate_second = _count("Requests per second")
    rate_minute = _count("Requests per minute")
    rate_hour = _count("Requests per hour")
    rate_day = _count("Requests per day")
    budget_amount = _count("Usage budget", least=0, help_text="Requests in all. Empty: no budget.")
    budget_refill = forms.ChoiceField(
        label="Refill",
        required=False,
        choices=[("", "No refill"), *REFILLS.items()],
        error_messages={"invalid_choice": "Choose daily, monthly or no refill."},
    )
    budget_refill_amount = _count("Refill amount", help_text="The budget after each refill.")

    def __init__(
        self,
        *args,
        api_key: ApiKey | None = None,
        policy: Policy | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.api_key = api_key
        self.default_rate_limit = policy.default_rate_limit if policy is not None else None
        if api_key is not None:
            self.initial = {**_initial(api_key.protections), **self.initial}
            if budget(api_key.protections) is not None:
                self.fields["restart_budget"] = forms.BooleanField(
                    label="Start counting again",
                    required=False,
                    help_text="Sets the remaining budget back to its amount.",
                )
        elif self.default_rate_limit is not None:
            window = self.default_rate_limit
            self.initial = {f"rate_{window.window}": window.limit, **self.initial}

    # --- what the template draws --------------------------------------------------------------

    @property
    def id_prefix(self) -> str:
        """Return what this form's ids start with ("key_"), for the ids of its help texts."""
        return self.auto_id.replace("%s", "") if isinstance(self.auto_id, str) else ""

    @property
    def default_text(self) -> str:
        """Return the rate limit new keys of this kind start with, in words ("" for none)."""
        return self.default_rate_limit.describe() if self.default_rate_limit else ""

    def rate_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in RATE_FIELDS]

    def budget_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in BUDGET_FIELDS]

    @property
    def restart_field(self) -> forms.BoundField | None:
        return self["restart_budget"] if "restart_budget" in self.fields else None

    @property
    def opened(self) -> bool:
        """Return True when the folded section should open: it has errors to show."""
        return bool(self.errors)

    # --- cleaning --------------------------------------------------------------------------

    def clean_allowed_ips(self) -> list[str]:
        try:
            return clean_allowed_ips(self.cleaned_data["allowed_ips"])
        except ValidationError as error:
            raise ValidationError(error.messages) from None

    def clean(self):
        cleaned = super().clean()
        amount = cleaned.get("budget_amount")
        refill = cleaned.get("budget_refill") or ""
        refill_amount = cleaned.get("budget_refill_amount")
        if self.has_error("budget_amount") or self.has_error("budget_refill_amount"):
            return cleaned
        if amount is None:
            if refill or refill_amount is not None:
                self.add_error(
                    "budget_amount", "Give the number of requests the budget starts with."
                )
        elif refill and refill_amount is None:
            self.add_error(
                "budget_refill_amount", f"Give the amount a {refill} refill sets the budget to."
            )
        elif refill_amount is not None and not refill:
            self.add_error("budget_refill", "Choose daily or monthly for the refill amount.")
        return cleaned

    def windows(self) -> list[Window]:
        return [
            Window(self.cleaned_data[name], unit)
            for name, unit in RATE_FIELDS.items()
            if self.cleaned_data.get(name) is not None
        ]

    def budget_value(self) -> dict | None:
        data = self.cleaned_data
        if data.get("budget_amount") is None:
            return None
        refill = data.get("budget_refill") or ""
        return {
            "amount": data["budget_amount"],
            "refill": refill,
            "refill_amount": data.get("budget_refill_amount") if refill else None,
        }

    # --- what the services get -------------------------------------------------------------

    def create_arguments(self) -> dict:
        """Return api_key_create's protection arguments. A request without any rate field
        (a script sending a name alone) leaves the rate limits to the policy's default."""
        sent_rates = any(name in self.data for name in RATE_FIELDS)
        return {
            "allowed_ips": self.cleaned_data["allowed_ips"],
            "rate_limits": [_as_dict(w) for w in self.windows()] if sent_rates else None,
            "budget": self.budget_value(),
        }

    def changes(self) -> dict:
        """Return api_key_update's protection arguments for what differs from the key's: a
        budget only when its fields changed or "Start counting again" is ticked, since a
        budget given restarts its count."""
        current = self.api_key.protections
        changes: dict = {}
        if self.cleaned_data["allowed_ips"] != allowed_ips(current):
            changes["allowed_ips"] = self.cleaned_data["allowed_ips"]
        if self.windows() != rate_limits(current):
            changes["rate_limits"] = [_as_dict(w) for w in self.windows()]
        if self.budget_value() != _budget_value(current) or self.cleaned_data.get("restart_budget"):
            changes["budget"] = self.budget_value()
        return changes

    def add_service_errors(self, error: ValidationError) -> ValidationError | None:
        """Show the service's errors on protections next to their fields; return the others
        (for the form beside this one), or None."""
        if not hasattr(error, "error_dict"):
            return error
        rest = {}
        for key, messages in error.message_dict.items():
            if key == "rate_limits":
                for message in messages:
                    self.add_error(_rate_field(message), message)
            elif key in SERVICE_FIELDS:
                self.add_error(SERVICE_FIELDS[key], messages)
            else:
                rest[key] = messages
        return ValidationError(rest) if rest else None


def _as_dict(window: Window) -> dict:
    return {"limit": window.limit, "window": window.window}


def _budget_value(protections: dict) -> dict | None:
    found = budget(protections)
    if found is None:
        return None
    return {"amount": found.amount, "refill": found.refill, "refill_amount": found.refill_amount}


def _initial(protections: dict) -> dict:
    """Return the form's fields as a key's stored protections fill them in."""
    initial: dict = {"allowed_ips": "\n".join(allowed_ips(protections))}
    for window in rate_limits(protections):
        initial[f"rate_{window.window}"] = window.limit
    if (value := _budget_value(protections)) is not None:
        initial |= {
            "budget_amount": value["amount"],
            "budget_refill": value["refill"],
            "budget_refill_amount": value["refill_amount"],
        }
    return initial


def _rate_field(message: str) -> str:
    """Return the rate field a service's message is about (it names the window), else the
    first."""
    for name, unit in RATE_FIELDS.items():
        if f"per {unit}" in message:
            return name
    return next(iter(RATE_FIELDS))
