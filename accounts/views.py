"""Console pages for signing up and in, organizations and invitations."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.access import Actor, actor_from_request
from accounts.forms import OrganizationForm, SignupForm
from accounts.selectors import membership_list_for_user
from accounts.services import (
    invitation_accept,
    invitation_find,
    invitation_problem,
    organization_create,
    user_signup,
)
from keyportal.http import client_ip

AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def home(request: HttpRequest) -> HttpResponse:
    """Send the person to their last organization, or to create their first."""
    memberships = list(membership_list_for_user(user=request.user))
    if not memberships:
        return redirect("organization_new")
    slugs = [m.organization.slug for m in memberships]
    slug = request.session.get("organization")
    return redirect("project_list", org=slug if slug in slugs else slugs[0])


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and its first organization, with the new person as owner."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user, organization = user_signup(
                email=data["email"],
                display_name=data["display_name"],
                password=data["password"],
                organization_name=data["organization_name"],
                ip=client_ip(request),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            login(request, user, backend=AUTH_BACKEND)
            messages.success(request, f"Welcome to keyportal. {organization.name} is ready.")
            return redirect("project_list", org=organization.slug)
    return render(
        request, "accounts/signup.html", {"form": form}, status=422 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
def organization_new(request: HttpRequest) -> HttpResponse:
    """Create another organization, owned by the person creating it."""
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = organization_create(
            actor=actor_from_request(request), name=form.cleaned_data["name"]
        )
        messages.success(request, f"{organization.name} is ready. You are its owner.")
        return redirect("project_list", org=organization.slug)
    return render(
        request,
        "accounts/organization_new.html",
        {"form": form},
        status=422 if form.errors else 200,
    )


@login_not_required
@require_http_methods(["GET", "POST"])
def invitation_detail(request: HttpRequest, token: str) -> HttpResponse:
    """Show an invitation and let the invited person join, signing up first if needed."""
    invitation = invitation_find(token=token)
    user = request.user if request.user.is_authenticated else None
    problem = invitation_problem(invitation=invitation, user=user)
    form = None
    if problem is None and user is None:
        form = SignupForm(request.POST or None, invitation=invitation)
    if problem is None and request.method == "POST":
        if user is None and form.is_valid():
            try:
                user, _ = user_signup(
                    email=invitation.email,
                    display_name=form.cleaned_data["display_name"],
                    password=form.cleaned_data["password"],
                    organization_name=None,
                    ip=client_ip(request),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                login(request, user, backend=AUTH_BACKEND)
        if user is not None:
            try:
                invitation_accept(
                    invitation=invitation, actor=Actor(user=user, ip=client_ip(request))
                )
            except ValidationError as error:
                problem = error.messages[0]
            else:
                messages.success(request, f"You joined {invitation.organization.name}.")
                return redirect("project_list", org=invitation.organization.slug)
    context = {
        "invitation": invitation,
        "problem": problem,
        "form": form,
        "login_url": f"{reverse('login')}?next={request.path}",
    }
    status = 410 if problem else (422 if form is not None and form.errors else 200)
    return render(request, "accounts/invitation.html", context, status=status)
