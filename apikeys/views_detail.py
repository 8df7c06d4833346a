"""One key's page: its facts, permissions, scopes and history; edit, and delete (revoke)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.access import actor_from_request, org_view
from apikeys.charts import usage_bars
from apikeys.models import ApiKey, KeyKind
from apikeys.permissions import CATALOGUE, GROUP_OF, ROLE_PERMISSIONS
from apikeys.places import key_place
from apikeys.policy import exceeds_policy, policy_for
from apikeys.scopes import describe_scopes
from apikeys.selectors import (
    api_key_can_manage,
    api_key_can_revoke,
    api_key_history,
    api_key_list,
)
from apikeys.services import REVOKED_MESSAGE, UNCHANGED, api_key_revoke, api_key_update
from apikeys.usage import daily_counts
from apikeys.views_create import key_form
from keyportal.forms import add_service_errors
from keyportal.rendering import render_page


def _permission_rows(api_key: ApiKey) -> list[dict]:
    """Return the key's permissions by group, with scopes and what the owner's role still allows."""
    scopes = describe_scopes(api_key.scopes, api_key.organization)
    role_allows = None
    if api_key.kind == KeyKind.USER:
        membership = api_key.owner_user.memberships.filter(
            organization=api_key.organization
        ).first()
        role_allows = ROLE_PERMISSIONS.get(membership.role if membership else None, frozenset())
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
    initial = {"name": api_key.name, "status": api_key.status, "permissions": api_key.permissions}
    for pid, refs in api_key.scopes.items():
        initial[f"scope_{GROUP_OF[pid]}"] = f"{refs[0]['type']}:{refs[0]['id']}"
    return initial


@org_view
@require_http_methods(["GET", "POST"])
def api_key_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a key; people who manage it edit its name, status, permissions and scopes."""
    api_key = get_object_or_404(api_key_list(viewer=request.membership), pk=pk)
    can_manage = api_key_can_manage(viewer=request.membership, api_key=api_key)
    place = _place_for(request, api_key)
    form = key_form(
        request, place, data=request.POST or None, initial=_initial(api_key), editing=True
    )
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("You may see this key but not change it.")
        if api_key.is_revoked:
            form.is_valid()
            form.add_error(None, REVOKED_MESSAGE)
        elif form.is_valid():
            try:
                api_key_update(
                    actor=actor_from_request(request),
                    api_key=api_key,
                    name=form.cleaned_data["name"],
                    status=form.cleaned_data["status"],
                    permissions=form.cleaned_data["permissions"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=form.cleaned_data.get("expires_at", UNCHANGED),
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, "The API key has been updated.")
                return redirect("api_key_detail", org=request.organization.slug, pk=api_key.pk)
    context = {
        "api_key": api_key,
        "form": form,
        "place": place,
        "can_manage": can_manage and not api_key.is_revoked,
        "can_revoke": not api_key.is_revoked
        and api_key_can_revoke(viewer=request.membership, api_key=api_key),
        "permission_rows": _permission_rows(api_key),
        "history": api_key_history(api_key=api_key)[:50],
        "usage": usage_bars(daily_counts(api_key)),
        "usage_lag": settings.KEYPORTAL_USAGE_FLUSH_SECONDS,
        "exceeds_policy": exceeds_policy(
            api_key, policy_for(organization=api_key.organization, kind=api_key.kind)
        ),
    }
    return render_page(request, "apikeys/key_detail.html", context, partial="key-edit")


def _place_for(request: HttpRequest, api_key: ApiKey):
    if api_key.kind == KeyKind.USER:
        # Scopes and the page to return to are the same for anyone's personal key.
        return key_place(request, KeyKind.USER)
    owner_pk = api_key.owner_project_id or api_key.owner_service_account_id
    return key_place(request, api_key.kind, owner_pk)


@org_view
@require_http_methods(["GET", "POST"])
def api_key_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then revoke a key; it disappears from lists and stops working at once."""
    api_key = get_object_or_404(api_key_list(viewer=request.membership), pk=pk)
    if not api_key_can_revoke(viewer=request.membership, api_key=api_key):
        raise PermissionDenied("You may see this key but not delete it.")
    place = _place_for(request, api_key)
    error = REVOKED_MESSAGE if api_key.is_revoked else None
    if request.method == "POST" and error is None:
        api_key_revoke(actor=actor_from_request(request), api_key=api_key)
        messages.success(request, f"The API key “{api_key.name}” has been revoked.")
        return redirect(place.page_url)
    context = {"api_key": api_key, "place": place, "error": error}
    return render(request, "apikeys/key_delete.html", context, status=422 if error else 200)
