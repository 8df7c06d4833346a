"""Console pages for signing up and in, organizations and invitations."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from accounts.access import Actor, actor_from_request
from accounts.forms import (
    InvitationSignupForm,
    OrganizationForm,
    SignupForm,
    SignupPasswordForm,
)
from accounts.selectors import membership_list_for_user, user_exists
from accounts.services import (
    invitation_accept,
    invitation_find,
    invitation_problem,
    organization_create,
    user_signup,
    user_signup_request,
)
from accounts.signup import SignupLinkInvalid, signup_token_read
from keyportal.http import client_ip

AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"
SIGNUPS_PER_CLIENT = "20/h"
SIGNUPS_PER_EMAIL = "5/h"
SIGNUP_LIMITED = (
    "Too many sign-up requests for this email or from your address. Wait an hour, then try again."
)


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
    """Ask who is signing up and email them; answer "check your inbox" whatever the email."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if _signup_limited(request, data["email"]):
            form.add_error(None, SIGNUP_LIMITED)
            return render(request, "accounts/signup.html", {"form": form}, status=429)
        user_signup_request(
            email=data["email"],
            display_name=data["display_name"],
            organization_name=data["organization_name"],
            confirm_url=lambda token: request.build_absolute_uri(
                f"{reverse('signup_confirm')}?{urlencode({'token': token})}"
            ),
            login_url=request.build_absolute_uri(reverse("login")),
        )
        return render(request, "accounts/signup_sent.html", {"email": data["email"]})
    return render(
        request, "accounts/signup.html", {"form": form}, status=422 if form.errors else 200
    )


def _signup_limited(request: HttpRequest, email: str) -> bool:
    # Each request sends an email: cap what one client, or one inbox, can be sent.
    by_client = is_ratelimited(
        request,
        group="signup-client",
        key=lambda _group, r: client_ip(r),
        rate=SIGNUPS_PER_CLIENT,
        increment=True,
    )
    by_email = is_ratelimited(
        request,
        group="signup-email",
        key=lambda _group, _request: email,
        rate=SIGNUPS_PER_EMAIL,
        increment=True,
    )
    return by_client or by_email


@login_not_required
@require_http_methods(["GET", "POST"])
def signup_confirm(request: HttpRequest) -> HttpResponse:
    """From the emailed link, choose a password: create the account and organization, log in."""
    if request.user.is_authenticated:
        return redirect("home")
    try:
        pending = signup_token_read(request.GET.get("token", ""))
    except SignupLinkInvalid as problem:
        return render(request, "accounts/signup_confirm.html", {"problem": problem}, status=410)
    if user_exists(email=pending.email):
        return _to_login(request, pending.email)
    form = SignupPasswordForm(
        request.POST or None, email=pending.email, display_name=pending.display_name
    )
    if request.method == "POST" and form.is_valid():
        try:
            user, organization = user_signup(
                email=pending.email,
                display_name=pending.display_name,
                password=form.cleaned_data["password"],
                organization_name=pending.organization_name,
                ip=client_ip(request),
            )
        except (ValidationError, IntegrityError):  # the same link, followed twice at once
            return _to_login(request, pending.email)
        login(request, user, backend=AUTH_BACKEND)
        messages.success(request, f"Welcome to keyportal. {organization.name} is ready.")
        return redirect("project_list", org=organization.slug)
    context = {"form": form, "signup": pending}
    status = 422 if form.errors else 200
    return render(request, "accounts/signup_confirm.html", context, status=status)


def _to_login(request: HttpRequest, email: str) -> HttpResponse:
    messages.info(request, f"An account for {email} already exists. Log in.")
    return redirect("login")


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
        form = InvitationSignupForm(request.POST or None, invitation=invitation)
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
