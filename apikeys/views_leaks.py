"""The public page to report a leaked key: no login needed, the same answer whatever the key."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.access import Actor
from accounts.models import Origin
from apikeys.api.leaks import RECEIVED_MESSAGE
from apikeys.forms_leaks import LeakReportForm
from apikeys.leaks import ANONYMOUS_REPORTER, key_report_leaked, reports_limited
from apikeys.models import LeakSource
from keyportal.http import client_ip

TEMPLATE = "apikeys/report_leak.html"


@login_not_required
@sensitive_post_parameters("token")
@require_http_methods(["GET", "POST"])
def report_leak(request: HttpRequest) -> HttpResponse:
    """Take a leaked key and stop it if it is keyportal's; answer the same either way, on a page
    of its own (POST, redirect, GET), so that reloading it sends nothing again."""
    if request.method == "GET":
        sent = request.GET.get("sent") == "1"
        context = {"form": LeakReportForm(), "sent": sent, "message": RECEIVED_MESSAGE}
        return render(request, TEMPLATE, context)
    form = LeakReportForm(request.POST)
    if not form.is_valid():
        return render(request, TEMPLATE, {"form": form}, status=422)
    wait = reports_limited(request)
    if wait is not None:
        minutes = -(-wait // 60)
        form.add_error(
            None,
            f"Too many reports from your address. Try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}.",
        )
        response = render(request, TEMPLATE, {"form": form}, status=429)
        response["Retry-After"] = str(wait)
        return response
    key_report_leaked(
        token=form.cleaned_data["token"],
        source=LeakSource.HOLDER,
        report={"location": location} if (location := form.cleaned_data["location"]) else {},
        actor=_reporter(request),
    )
    return redirect(f"{reverse('report_leak')}?sent=1")


def _reporter(request: HttpRequest) -> Actor:
    """Return the signed-in person as the reporter, or an anonymous one, with the address."""
    if request.user.is_authenticated:
        return Actor(user=request.user, ip=client_ip(request), origin=Origin.WEB)
    return Actor(user=None, label=ANONYMOUS_REPORTER, ip=client_ip(request), origin=Origin.WEB)
