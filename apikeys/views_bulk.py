"""Revoking many keys at once from a keys table, and the owner suggestions of its filters."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.access import actor_from_request, org_view
from accounts.models import Role
from apikeys.authority import revocable_keys
from apikeys.places import key_count
from apikeys.selectors import key_owner_suggestions
from apikeys.services import api_key_bulk_revoke
from keyportal.rendering import render_page

# A page shows 50 keys; anything far beyond that is not a selection made in the console.
MAX_SELECTION = 500


def _selected_ids(request: HttpRequest) -> list[int]:
    """Return the distinct key ids posted; anything that is not an id is dropped (other digits
    than 0-9, numbers too big for an id)."""
    ids = {
        int(value)
        for value in request.POST.getlist("ids")
        if value.isascii() and value.isdigit() and len(value) <= 18
    }
    return sorted(ids)[:MAX_SELECTION]


def _back(request: HttpRequest) -> str:
    """Return the list the request came from (with its filters), or the organization's keys."""
    target = request.POST.get("next", "")
    prefix = f"/o/{request.organization.slug}/"
    if target.startswith(prefix) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ):
        return target
    return f"{prefix}settings/api-keys/"


def _refuse(request: HttpRequest, message: str, back: str) -> HttpResponse:
    """Say why nothing can be revoked: in the dialog for htmx, else as a message on the list."""
    if request.htmx:
        context = {"message": message, "back": back}
        return render(request, "apikeys/_bulk_refused.html", context, status=422)
    messages.error(request, message)
    return redirect(back)


@org_view
@require_POST
def api_key_bulk_revoke_view(request: HttpRequest) -> HttpResponse:
    """Confirm, then revoke the selected keys the viewer may revoke, in one transaction."""
    back = _back(request)
    ids = _selected_ids(request)
    if not ids:
        return _refuse(request, "Select at least one key to revoke.", back)
    if request.POST.get("confirm") != "yes":
        keys = list(
            revocable_keys(actor_from_request(request), request.organization)
            .filter(pk__in=ids)
            .only("id", "name", "preview")
            .order_by("name", "pk")
        )
        if not keys:
            return _refuse(request, "None of the selected keys is one you may revoke.", back)
        context = {"keys": keys, "count": key_count(len(keys)), "back": back}
        return render_page(request, "apikeys/key_bulk_revoke.html", context, partial="confirm")
    revoked = api_key_bulk_revoke(
        actor=actor_from_request(request), organization=request.organization, ids=ids
    )
    if revoked:
        messages.success(request, f"{key_count(revoked)} revoked.")
    else:
        messages.error(request, "No key was revoked: they were already revoked or not yours.")
    return redirect(back)


@org_view(role=Role.OWNER, hidden=True)
@require_GET
def api_key_owner_suggestions(request: HttpRequest) -> HttpResponse:
    """Return `<option>`s of members' and service accounts' emails containing what was typed."""
    text = request.GET.get("owner", "").strip()[:254]
    emails = key_owner_suggestions(organization=request.organization, text=text) if text else []
    return render(request, "apikeys/_owner_options.html", {"emails": emails})
