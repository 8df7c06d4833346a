"""An app's sharing settings (owners and admins): may API keys touch this app?"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods

from accounts.access import actor_from_request, org_view
from accounts.models import Role
from keyportal.rendering import render_page
from projects import selectors, services
from projects.models import ApiKeyAccess


@org_view(role=Role.ADMIN, hidden=True)
@require_http_methods(["GET", "POST"])
def app_sharing(request: HttpRequest, pk: int) -> HttpResponse:
    """Show and change whether API keys may touch the app; htmx saves it in place."""
    app = get_object_or_404(selectors.app_list(organization=request.organization), pk=pk)
    error = None
    if request.method == "POST":
        try:
            services.app_set_sharing(
                actor=actor_from_request(request),
                app=app,
                access=request.POST.get("api_key_access", ""),
            )
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            access = app.get_api_key_access_display().lower()
            messages.success(request, f"Sharing of {app.name} saved: API keys {access}.")
            if not request.htmx:
                return redirect("app_sharing", org=request.organization.slug, pk=app.pk)
    keys, more = selectors.app_reaching_keys(app=app)
    context = {
        "app": app,
        "error": error,
        "choices": ApiKeyAccess.choices,
        "affected_count": len(keys),
        "affected_more": more,
        "affected": keys[:10],
    }
    return render_page(
        request,
        "projects/app_sharing.html",
        context,
        partial="sharing-form",
        status=422 if error else 200,
    )
