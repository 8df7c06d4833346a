"""Console pages listing API keys: personal keys and organization keys."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.access import actor_from_request, org_view
from accounts.models import Role
from apikeys.models import KeyKind
from apikeys.places import key_place, key_table_context
from apikeys.selectors import cli_login_list
from keyportal.rendering import render_page


@org_view(role=Role.ADMIN, hidden=True)
def organization_keys(request: HttpRequest) -> HttpResponse:
    """List every key of the organization the viewer may see, with search and filters; new
    keys made here are `sk-org-` keys (owners and admins)."""
    context = key_table_context(request, key_place(request, KeyKind.ORGANIZATION))
    context["title"] = "API keys"
    return render_page(request, "apikeys/key_list.html", context, partial="key-table")


@org_view
def personal_keys(request: HttpRequest) -> HttpResponse:
    """List the viewer's personal `sk-user-` keys."""
    context = key_table_context(request, key_place(request, KeyKind.USER))
    context["title"] = "Personal API keys"
    context["cli_logins"] = cli_login_list(
        actor=actor_from_request(request), organization=request.organization
    )
    return render_page(request, "apikeys/key_list.html", context, partial="key-table")
