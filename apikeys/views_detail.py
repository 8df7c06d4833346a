"""One key's page: its facts, permissions, scopes, protections and history; edit, edit its
protections, and delete (revoke)."""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.contrib import messages
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import actor_from_request, org_view
from apikeys import authority, limits
from apikeys.authority import Act, Refused
from apikeys.charts import usage_bars
from apikeys.forms import add_refusal
from apikeys.forms_protections import ProtectionsForm
from apikeys.freshness import expiry_urgency, unused_flag
from apikeys.models import ApiKey, KeyKind, KeyPreset, KeyStatus
from apikeys.permissions import CATALOGUE, GROUP_OF
from apikeys.places import key_place
from apikeys.policy import exceeds_policy, policy_for
from apikeys.protections import allowed_ips, budget, rate_limits
from apikeys.scopes import describe_scopes
from apikeys.selectors import api_key_get, api_key_history
from apikeys.services import api_key_revoke, api_key_update, final_message
from apikeys.usage import daily_counts
from apikeys.views_create import key_form
from keyportal import once
from keyportal.forms import add_service_errors
from keyportal.http import back_to
from keyportal.rendering import render_page

logger = logging.getLogger(__name__)
# The hidden field that says the key page's POST is the "Edit protections" form.
PROTECTIONS_FORM = "protections"


def _permission_rows(api_key: ApiKey) -> list[dict]:
    """Return the key's permissions by group, with scopes and what the owner's role still allows."""
    scopes = describe_scopes(api_key.scopes, api_key.organization)
    role_allows = authority.key_power(api_key).permissions if api_key.kind == KeyKind.USER else None
    rows = []
    for group in CATALOGUE:
        held = [p for p in group.permissions if p.id in api_key.permissions]
        if held:
            rows.append(
                {
                    "group": group,
                    "permissions": [
                        {
                            "permission": p,
                            "scopes": scopes.get(p.id, []),
                            "narrowed": role_allows is not None and p.id not in role_allows,
                        }
                        for p in held
                    ],
                }
            )
    return rows


def _initial(api_key: ApiKey) -> dict:
    initial = {
        "name": api_key.name,
        "status": api_key.status,
        "preset": api_key.preset,
        "permissions": api_key.permissions,
    }
    for pid, refs in api_key.scopes.items():
        initial[f"scope_{GROUP_OF[pid]}"] = f"{refs[0]['type']}:{refs[0]['id']}"
    return initial


def _changes(form) -> dict:
    """Return what the edit form changes: permissions and scopes only when touched, so that
    saving a new name never rewrites grants the form cannot show (several scopes of one
    permission, made through the API)."""
    data = form.cleaned_data
    changes = {"name": data["name"], "status": data["status"]}
    grant_fields = {"preset", "permissions"} | {f for f in form.fields if f.startswith("scope_")}
    if grant_fields & set(form.changed_data):
        changes["preset"] = data["preset"]
        if data["preset"] == KeyPreset.CUSTOM:
            changes.update(permissions=data["permissions"], scopes=data["scopes"])
    if "expires_at" in data:
        changes["expires_at"] = data["expires_at"]
    return changes


def _abilities(actor, api_key: ApiKey) -> dict[str, bool]:
    """Return which acts the page offers: what the rules allow, nothing once revoked."""
    if api_key.is_revoked:
        return {}
    return {
        act.value: authority.allowed(actor, act, api_key)
        for act in (Act.RENAME, Act.ROTATE, Act.REVOKE, Act.DISABLE, Act.ENABLE, Act.EXPLORE)
    }


@org_view
@require_http_methods(["GET", "POST"])
def api_key_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a key; those the rules let manage it edit its name, status, grants and expiry, and
    (a form of their own) its protections."""
    actor = actor_from_request(request)
    act = Act.EDIT if request.method == "POST" else Act.SEE
    api_key = api_key_get(actor=actor, organization=request.organization, pk=pk, act=act)
    place = _place_for(request, api_key)
    saving_protections = request.POST.get("form") == PROTECTIONS_FORM
    form = key_form(
        request,
        place,
        data=None if saving_protections else request.POST or None,
        initial=_initial(api_key),
        editing=True,
        held=frozenset(api_key.permissions),
    )
    protections = ProtectionsForm(
        request.POST if saving_protections else None, auto_id="protections_%s", api_key=api_key
    )
    if request.method == "POST":
        if saving_protections and _save_protections(request, actor, api_key, protections):
            # Back to the card, to read the protections as saved.
            return redirect(f"{request.path}#protections-heading")
        if not saving_protections and _save(request, actor, api_key, form):
            return redirect("api_key_detail", org=request.organization.slug, pk=api_key.pk)
    can = _abilities(actor, api_key)
    policy = policy_for(organization=api_key.organization, kind=api_key.kind)
    context = {
        "api_key": api_key,
        "form": form,
        "protections": protections,
        "protection_card": _protection_card(api_key),
        "place": place,
        "can": can,
        "can_manage": can.get("rename", False),
        "can_revoke": can.get("revoke", False),
        "permission_rows": _permission_rows(api_key),
        "history": api_key_history(api_key=api_key)[:50],
        "usage": usage_bars(daily_counts(api_key)),
        "usage_lag": settings.KEYPORTAL_USAGE_FLUSH_SECONDS,
        "exceeds_policy": exceeds_policy(api_key, policy),
        "expiry_urgency": expiry_urgency(api_key),
        "unused_flag": unused_flag(api_key, policy),
    }
    return render_page(request, "apikeys/key_detail.html", context, partial="key-edit")


def _save(request: HttpRequest, actor, api_key: ApiKey, form) -> bool:
    """Save the edit form's name, status, grants and expiry; return False to show its errors."""
    if api_key.is_revoked:
        form.is_valid()
        form.add_error(None, final_message(api_key))
        return False
    if not form.is_valid():
        return False
    try:
        api_key_update(actor=actor, api_key=api_key, **_changes(form))
    except Refused as refused:
        add_refusal(form, refused)
    except ValidationError as error:
        add_service_errors(form, error)
    else:
        messages.success(request, "The API key has been updated.")
        return True
    return False


def _save_protections(request: HttpRequest, actor, api_key: ApiKey, form) -> bool:
    """Save the key's IP allowlist, rate limits and usage budget as the form changes them;
    return False to show its errors. Loosening them is refused next to the form."""
    if api_key.is_revoked:
        form.is_valid()
        form.add_error(None, final_message(api_key))
        return False
    if not form.is_valid():
        return False
    changes = form.changes()
    if not changes:
        messages.info(request, "The protections are unchanged.")
        return True
    try:
        api_key_update(actor=actor, api_key=api_key, **changes)
    except Refused as refused:
        add_refusal(form, refused)
    except ValidationError as error:
        if (rest := form.add_service_errors(error)) is not None:
            add_service_errors(form, rest)
    else:
        messages.success(request, "Protections saved.")
        return True
    return False


def _protection_card(api_key: ApiKey) -> dict:
    """Return what the Protections card shows: the allowlist, and how far the key is into each
    rate-limit window and its budget now (one round trip to the cache, only for keys that
    have limits)."""
    protections = api_key.protections
    found = budget(protections)
    card = {
        "allowed_ips": allowed_ips(protections),
        "windows": [{"window": w, "used": None, "reset": ""} for w in rate_limits(protections)],
        "budget": found,
        "budget_remaining": api_key.budget_remaining,
        "budget_max": _budget_max(found, api_key.budget_remaining),
        "per_process": isinstance(caches[settings.KEYPORTAL_LIMITS_CACHE], LocMemCache),
        "has_limits": limits.has_limits(protections),
        "unavailable": False,
    }
    if not card["has_limits"]:
        return card
    try:
        now = limits.peek(api_key)
    except Exception:
        # The page still shows the key and its limits when the cache does not answer.
        logger.exception("Could not read the limits of key %s from the cache", api_key.pk)
        card["unavailable"] = True
        return card
    card["windows"] = [
        {"window": state.window, "used": state.used, "reset": _seconds_text(state.reset)}
        for state in now.windows
    ]
    if found is not None:
        card["budget_remaining"] = now.budget_remaining
        card["budget_max"] = _budget_max(found, now.budget_remaining)
    return card


def _budget_max(found, remaining: int | None) -> int:
    # A refill may set the budget above its first amount: the meter's top is the larger.
    if found is None:
        return 0
    return max(found.amount, found.refill_amount or 0, remaining or 0, 1)


def _seconds_text(seconds: int) -> str:
    """Return "42 s", "12 min" or "3 h 5 min": how long until a window ends."""
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(math.ceil(seconds / 60), 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _place_for(request: HttpRequest, api_key: ApiKey):
    if api_key.kind == KeyKind.USER:
        # Scopes and the page to return to are the same for anyone's personal key.
        return key_place(request, KeyKind.USER)
    owner_pk = api_key.owner_project_id or api_key.owner_service_account_id
    return key_place(request, api_key.kind, owner_pk)


@org_view
@require_POST
@once.replays
def api_key_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Disable or enable a key from its page's header, as the rules allow."""
    actor = actor_from_request(request)
    status = request.POST.get("status", "")
    if status not in KeyStatus.values:
        raise BadRequest("Choose Active or Disabled.")
    act = Act.DISABLE if status == KeyStatus.DISABLED else Act.ENABLE
    api_key = api_key_get(actor=actor, organization=request.organization, pk=pk, act=act)
    try:
        api_key_update(actor=actor, api_key=api_key, status=status)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        done = "enabled"
        if status == KeyStatus.DISABLED:
            done = "disabled: it is refused from the next request"
        messages.success(request, f"The API key “{api_key.name}” has been {done}.")
    return redirect("api_key_detail", org=request.organization.slug, pk=api_key.pk)


@org_view
@require_http_methods(["GET", "POST"])
@once.replays
def api_key_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm (in the dialog, or as a page), then revoke a key; it stops working at once and
    leaves the lists. The same confirmation sent again is answered as the first one was."""
    actor = actor_from_request(request)
    act = Act.REVOKE if request.method == "POST" else Act.SEE
    api_key = api_key_get(actor=actor, organization=request.organization, pk=pk, act=act)
    place = _place_for(request, api_key)
    back = back_to(request, default=place.page_url)
    if request.method == "POST":
        api_key_revoke(actor=actor, api_key=api_key)
        messages.success(request, f"The API key “{api_key.name}” has been revoked.")
        return redirect(back)
    authority.check(actor, Act.REVOKE, api_key)
    error = final_message(api_key) if api_key.is_revoked else None
    context = {"api_key": api_key, "place": place, "error": error, "next": back}
    return render_page(
        request, "apikeys/key_delete.html", context, partial="confirm", status=422 if error else 200
    )
