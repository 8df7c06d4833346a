"""The page where a person approves or denies a `keyportal login` (apikeys/device.py)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from accounts.selectors import membership_list_for_user
from apikeys.device import (
    device_approve,
    device_deny,
    device_find,
    device_requested_elsewhere,
    normalize_user_code,
)
from keyportal.http import client_ip

# Codes are 8 letters of 20: guessing one is hopeless, and this keeps anyone from trying.
LOOKUPS_PER_MINUTE = "30/m"


@require_http_methods(["GET", "POST"])
def device(request: HttpRequest) -> HttpResponse:
    """Enter (or follow a link with) a login code, check where it came from, pick, decide."""
    data = request.POST if request.method == "POST" else request.GET
    code = normalize_user_code(data.get("code", ""))[:20]
    memberships = list(membership_list_for_user(user=request.user))
    context = {"code": code, "memberships": memberships}
    if not code:
        return render(request, "apikeys/device.html", context)
    if is_ratelimited(
        request, group="device-page", key="user", rate=LOOKUPS_PER_MINUTE, increment=True
    ):
        context["problem"] = "Too many codes tried; wait a minute and try again."
        return render(request, "apikeys/device.html", context, status=429)
    login = device_find(user_code=code)
    if login is None:
        context["problem"] = (
            "This code is not valid: it may have expired or been used. "
            "Start the login again (`keyportal login`, or your program's) for a new one."
        )
        return render(request, "apikeys/device.html", context, status=404)
    context["login"] = login
    context["your_ip"] = client_ip(request)
    context["requested_elsewhere"] = device_requested_elsewhere(
        request=login, ip=context["your_ip"]
    )
    if request.method == "GET":
        return render(request, "apikeys/device.html", context)
    return _decide(request, login.user_code, memberships, context)


def _decide(request, code: str, memberships, context) -> HttpResponse:
    decision = request.POST.get("decision")
    if decision == "deny":
        device_deny(user=request.user, user_code=code)
        return render(request, "apikeys/device_done.html", {"approved": False})
    chosen = next(
        (m.organization for m in memberships if str(m.organization_id) == request.POST.get("org")),
        None,
    )
    if decision != "approve" or chosen is None:
        context["error"] = "Choose an organization, then Approve or Deny."
        return render(request, "apikeys/device.html", context, status=422)
    try:
        device_approve(
            user=request.user, organization=chosen, user_code=code, ip=client_ip(request)
        )
    except ValidationError as error:
        context["error"] = " ".join(error.messages)
        return render(request, "apikeys/device.html", context, status=422)
    return render(request, "apikeys/device_done.html", {"approved": True, "organization": chosen})
