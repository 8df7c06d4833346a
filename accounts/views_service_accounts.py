"""Console pages for service accounts (owners and admins)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.access import actor_from_request, org_view
from accounts.forms import ServiceAccountForm
from accounts.models import Role, ServiceAccount
from accounts.selectors import service_account_list
from accounts.services import (
    service_account_create,
    service_account_delete,
    service_account_revoke_keys,
    service_account_set_active,
    service_account_update,
)
from apikeys.models import KeyKind
from apikeys.places import key_count, key_place, key_table_context
from apikeys.selectors import api_key_live_list
from keyportal import once
from keyportal.rendering import render_page

NOT_CONFIRMED = "Nothing was changed: confirm with the button below."


def _live_key_count(request: HttpRequest, account: ServiceAccount) -> int:
    """Return how many of the account's keys are not revoked."""
    keys = api_key_live_list(actor=actor_from_request(request), organization=request.organization)
    return keys.filter(kind=KeyKind.SERVICE_ACCOUNT, owner_service_account=account).count()


@org_view(role=Role.ADMIN, hidden=True)
@require_http_methods(["GET", "POST"])
def service_account_list_view(request: HttpRequest) -> HttpResponse:
    """List the organization's service accounts and create new ones."""
    form = ServiceAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account = service_account_create(
                actor=actor_from_request(request),
                organization=request.organization,
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Service account {account.identifier} created.")
            return redirect("service_account_detail", org=request.organization.slug, pk=account.pk)
    context = {
        "service_accounts": service_account_list(organization=request.organization),
        "form": form,
    }
    return render_page(
        request, "accounts/service_accounts.html", context, partial="service-accounts"
    )


@org_view(role=Role.ADMIN, hidden=True)
@require_http_methods(["GET", "POST"])
def service_account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a service account and edit its name and description."""
    account = get_object_or_404(service_account_list(organization=request.organization), pk=pk)
    initial = {"name": account.name, "description": account.description}
    form = ServiceAccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            service_account_update(
                actor=actor_from_request(request), service_account=account, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
            account.refresh_from_db()
        else:
            messages.success(request, "The service account has been updated.")
            return redirect("service_account_detail", org=request.organization.slug, pk=account.pk)
    context = {"account": account, "form": form}
    context.update(
        key_table_context(request, key_place(request, KeyKind.SERVICE_ACCOUNT, account.pk))
    )
    # Counted on its own: the table's count follows its page and filters, this one never does.
    context["live_key_count"] = _live_key_count(request, account)
    return render_page(
        request,
        "accounts/service_account_detail.html",
        context,
        partial="account-form",
        targets=("key-table",),
    )


@org_view(role=Role.ADMIN, hidden=True)
@require_http_methods(["GET", "POST"])
@once.replays
def service_account_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then deactivate (revoking its keys) or reactivate a service account."""
    account = get_object_or_404(service_account_list(organization=request.organization), pk=pk)
    error = None
    if request.method == "POST":
        # The form names the state it confirms, so a stale page or a double submit cannot flip
        # a deactivated account back on.
        wanted = request.POST.get("active")
        if wanted not in ("0", "1"):
            error = "Choose whether to activate or deactivate the service account."
        else:
            revoked = service_account_set_active(
                actor=actor_from_request(request), service_account=account, active=wanted == "1"
            )
            if account.is_active:
                message = f"{account.identifier} is active. Its revoked keys stay revoked."
            else:
                message = f"{account.identifier} is deactivated; {key_count(revoked)} revoked."
            messages.success(request, message)
            return redirect("service_account_detail", org=request.organization.slug, pk=account.pk)
    context = {
        "account": account,
        "error": error,
        "live_key_count": _live_key_count(request, account),
    }
    return render(
        request, "accounts/service_account_toggle.html", context, status=400 if error else 200
    )


@org_view(role=Role.ADMIN, hidden=True)
@require_http_methods(["GET", "POST"])
@once.replays
def service_account_revoke_keys_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then revoke every live key of a service account at once."""
    account = get_object_or_404(service_account_list(organization=request.organization), pk=pk)
    live = _live_key_count(request, account)
    error, status = None, 200
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            error, status = NOT_CONFIRMED, 400
        elif live == 0:
            error, status = f"{account.identifier} has no live key to revoke.", 422
        else:
            revoked = service_account_revoke_keys(
                actor=actor_from_request(request), service_account=account
            )
            messages.success(request, f"{key_count(revoked)} of {account.identifier} revoked.")
            return redirect("service_account_detail", org=request.organization.slug, pk=account.pk)
    context = {"account": account, "live_key_count": live, "error": error}
    return render(request, "accounts/service_account_revoke_keys.html", context, status=status)


@org_view(role=Role.ADMIN, hidden=True)
@require_http_methods(["GET", "POST"])
@once.replays
def service_account_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then revoke a service account's keys and delete it."""
    account = get_object_or_404(service_account_list(organization=request.organization), pk=pk)
    error = None
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            error = NOT_CONFIRMED
        else:
            revoked = service_account_delete(
                actor=actor_from_request(request), service_account=account
            )
            messages.success(
                request, f"{account.identifier} deleted; {key_count(revoked)} revoked."
            )
            return redirect("service_account_list", org=request.organization.slug)
    context = {
        "account": account,
        "live_key_count": _live_key_count(request, account),
        "error": error,
    }
    return render(
        request, "accounts/service_account_delete.html", context, status=400 if error else 200
    )
