"""Console pages for members and invitations of an organization."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import actor_from_request, has_role, org_view
from accounts.forms import InvitationForm, RoleForm
from accounts.models import Role
from accounts.selectors import invitation_pending_list, member_list
from accounts.services import (
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
)
from keyportal import once
from keyportal.rendering import render_page


def _members_context(request: HttpRequest, **extra) -> dict:
    organization = request.organization
    is_owner = has_role(request.membership, Role.OWNER)
    context = {
        "members": member_list(organization=organization),
        "invitations": invitation_pending_list(organization=organization) if is_owner else [],
        "can_manage": is_owner,
        "role_choices": Role.choices,
    }
    context.update(extra)
    return context


@org_view
@require_http_methods(["GET", "POST"])
def member_list_view(request: HttpRequest) -> HttpResponse:
    """List members; owners invite people by email and get the link to copy once."""
    form = InvitationForm(request.POST or None)
    link = None
    if request.method == "POST":
        if not has_role(request.membership, Role.OWNER):
            raise PermissionDenied("Only owners of this organization can invite people.")
        if form.is_valid():
            try:
                invitation, link = invitation_create(
                    actor=actor_from_request(request),
                    organization=request.organization,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    accept_url=lambda token: request.build_absolute_uri(
                        reverse("invitation", args=[token])
                    ),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
                form = InvitationForm()
    context = _members_context(request, form=form, invitation_link=link)
    response = render_page(request, "accounts/members.html", context, partial="members")
    if link:
        # The page shows the invitation link once; it must not be kept by any cache.
        response["Cache-Control"] = "no-store"
    return response


@org_view(role=Role.OWNER)
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a member's role."""
    membership = get_object_or_404(member_list(organization=request.organization), pk=pk)
    form = RoleForm(request.POST)
    error = None
    if form.is_valid():
        try:
            membership = membership_change_role(
                actor=actor_from_request(request),
                membership=membership,
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            messages.success(
                request, f"{membership.user} is now {membership.get_role_display().lower()}."
            )
    else:
        error = form.errors["role"][0]
    if error:
        messages.error(request, error)
    if request.htmx:
        return render_page(
            request,
            "accounts/members.html",
            _members_context(request),
            partial="members",
            status=422 if error else 200,
        )
    return redirect("member_list", org=request.organization.slug)


@org_view(role=Role.OWNER)
@require_http_methods(["GET", "POST"])
@once.replays
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then remove a member from the organization."""
    membership = get_object_or_404(member_list(organization=request.organization), pk=pk)
    error = None
    if request.method == "POST":
        try:
            membership_remove(actor=actor_from_request(request), membership=membership)
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            messages.success(
                request, f"{membership.user} was removed from {request.organization.name}."
            )
            return redirect("member_list", org=request.organization.slug)
    # Not "membership": that is the viewer's own, which the navigation's role badge shows.
    context = {"member": membership, "error": error}
    return render(request, "accounts/member_remove.html", context, status=422 if error else 200)


@org_view(role=Role.OWNER)
@require_POST
@once.replays
def invitation_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke a pending invitation."""
    invitation = get_object_or_404(
        invitation_pending_list(organization=request.organization), pk=pk
    )
    invitation_revoke(actor=actor_from_request(request), invitation=invitation)
    messages.success(request, f"The invitation of {invitation.email} was revoked.")
    return redirect("member_list", org=request.organization.slug)
