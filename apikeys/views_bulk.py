"""Revoking many keys at once from a keys table, and the owner suggestions of its filters."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.access import actor_from_request, org_view
from accounts.models import Role
from apikeys.authority import revocable_keys
from apikeys.places import key_count
from apikeys.selectors import api_key_list, key_owner_suggestions
from apikeys.services import api_key_bulk_revoke
from keyportal import once
from keyportal.http import back_to
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
    """Return the list the request came from (with its filters), or the personal keys."""
    return back_to(request, default=f"/o/{request.organization.slug}/settings/api-keys/")


def _refuse(request: HttpRequest, message: str, back: str) -> HttpResponse:
    """Say why nothing can be revoked: in the dialog for htmx, else as a message on the list."""
    if request.htmx:
        context = {"message": message, "back": back}
        return render(request, "apikeys/_bulk_refused.html", context, status=422)
    messages.error(request, message)
    return redirect(back)


@org_view
@require_POST
@once.replays
def api_key_bulk_revoke_view(request: HttpRequest) -> HttpResponse:
    """Confirm, then revoke the selected keys the viewer may revoke, in one transaction.

    The confirmation sent twice (a double click, a retry) is answered as the first one was.
    """
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
    actor = actor_from_request(request)
    revoked = api_key_bulk_revoke(actor=actor, organization=request.organization, ids=ids)
    # Two confirmations at once: the second finds the keys just revoked by the first (this
    # person, this minute), which is done; keys revoked otherwise are no success of this one.
    just_now = timezone.now() - timedelta(minutes=1)
    gone = (
        revoked
        or api_key_list(actor=actor, organization=request.organization)
        .filter(pk__in=ids, revoked_by=request.user, revoked_at__gte=just_now)
        .count()
    )
    if gone:
        messages.success(request, f"{key_count(gone)} revoked.")
    else:
        messages.error(request, "No key was revoked: none of them is one you may revoke.")
    return redirect(back)


@org_view(role=Role.OWNER, hidden=True)
@require_GET
def api_key_owner_suggestions(request: HttpRequest) -> HttpResponse:
    """Return `<option>`s of members' and service accounts' emails containing what was typed."""
    text = request.GET.get("owner", "").strip()[:254]
    emails = key_owner_suggestions(organization=request.organization, text=text) if text else []
    return render(request, "apikeys/_owner_options.html", {"emails": emails})
