"""Console pages for service accounts (owners and admins) and the audit log."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.access import actor_from_request, org_view
from accounts.forms import ServiceAccountForm
from accounts.models import Role
from accounts.selectors import audit_event_list, service_account_list
from accounts.services import (
    service_account_create,
    service_account_set_active,
    service_account_update,
)
from apikeys.models import KeyKind
from apikeys.places import key_place, key_table_context
from keyportal.rendering import render_page

PAGE_SIZE = 50


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
    return render_page(
        request,
        "accounts/service_account_detail.html",
        context,
        partial="account-form",
        targets=("key-table",),
    )


@org_view(role=Role.ADMIN, hidden=True)
@require_http_methods(["GET", "POST"])
def service_account_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then deactivate (or reactivate) a service account."""
    account = get_object_or_404(service_account_list(organization=request.organization), pk=pk)
    error = None
    if request.method == "POST":
        # The form names the state it confirms, so a stale page or a double submit cannot flip
        # a deactivated account back on.
        wanted = request.POST.get("active")
        if wanted not in ("0", "1"):
            error = "Choose whether to activate or deactivate the service account."
        else:
            service_account_set_active(
                actor=actor_from_request(request), service_account=account, active=wanted == "1"
            )
            state = "active" if account.is_active else "deactivated"
            messages.success(request, f"{account.identifier} is {state}.")
            return redirect("service_account_detail", org=request.organization.slug, pk=account.pk)
    context = {"account": account, "error": error}
    return render(
        request, "accounts/service_account_toggle.html", context, status=400 if error else 200
    )


@org_view(role=Role.ADMIN, hidden=True)
def audit_log(request: HttpRequest) -> HttpResponse:
    """List the organization's history, 50 events a page, newest first."""
    paginator = Paginator(audit_event_list(organization=request.organization), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render_page(request, "accounts/audit_log.html", {"page": page}, partial="audit-table")
