"""The organization's key policy (owners): expiry rules, unused keys and the default rate limit
of new keys, per kind of key."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.access import actor_from_request, org_view
from accounts.models import Role
from apikeys.forms import PolicyForm
from apikeys.models import KeyKind
from apikeys.policy import Policy, policies_for
from apikeys.selectors import stale_key_counts
from apikeys.services import key_policy_update
from apikeys.tasks import STALE_KEYS_AT
from keyportal.forms import add_service_errors
from keyportal.rendering import render_page


@org_view(role=Role.OWNER, hidden=True)
@require_http_methods(["GET", "POST"])
def key_policy(request: HttpRequest) -> HttpResponse:
    """Show and change, per kind of key, whether keys must expire, how soon at most, after how
    long unused the worker disables them, and the rate limit new keys start with."""
    policies = policies_for(organization=request.organization)
    forms = {
        kind: PolicyForm(
            request.POST or None,
            prefix=kind,
            initial=_initial(policies[kind]),
        )
        for kind in KeyKind.values
    }
    if request.method == "POST" and all(form.is_valid() for form in forms.values()):
        saving = next(iter(forms.values()))
        try:
            with transaction.atomic():
                for kind, saving in forms.items():
                    if saving.has_changed():
                        key_policy_update(
                            actor=actor_from_request(request),
                            organization=request.organization,
                            kind=kind,
                            **saving.policy_arguments(),
                        )
        except ValidationError as error:
            # Next to the fields of the kind the service refused.
            add_service_errors(saving, error)
        else:
            messages.success(request, _saved_message(request.organization))
            return redirect("key_policy", org=request.organization.slug)
    rows = [(KeyKind(kind).label, forms[kind]) for kind in KeyKind.values]
    status = 422 if any(form.errors for form in forms.values()) else 200
    return render_page(
        request, "apikeys/policy.html", {"rows": rows}, partial="policy-form", status=status
    )


def _initial(policy: Policy) -> dict:
    window = policy.default_rate_limit
    return {
        "require_expiry": policy.require_expiry,
        "max_lifetime_days": policy.max_lifetime_days,
        "disable_unused_after_days": policy.disable_unused_after_days,
        "default_rate_limit": window.limit if window else None,
        "default_rate_window": window.window if window else "minute",
    }


def _saved_message(organization) -> str:
    """Say the policy is saved, and what the worker's next nightly run will disable."""
    saved = "The key policy has been saved."
    due = stale_key_counts(organization, timezone.now())
    if not due:
        return f"{saved} Existing keys are flagged, not changed."
    said = ", ".join(
        f"{count} {KeyKind(kind).label.lower()} key{'s' if count != 1 else ''}"
        for kind, count in due.items()
    )
    return (
        f"{saved} Unused for longer than it allows: {said}. The worker disables them at its "
        f"next daily run ({STALE_KEYS_AT:%H:%M} UTC) unless they are used before; their owners "
        "are emailed."
    )
