"""The API Explorer: try the API from a key's page, as that key, without its secret (DESIGN
rule 6). The page only builds requests; the API checks who may act as the key, every time."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.access import actor_from_request, org_view
from apikeys import authority
from apikeys.authority import Act
from apikeys.selectors import api_key_get


@org_view
def api_key_explore(request: HttpRequest, pk: int) -> HttpResponse:
    """Show the Explorer for a key the person sees, or why it is not available to them."""
    actor = actor_from_request(request)
    api_key = api_key_get(actor=actor, organization=request.organization, pk=pk, act=Act.EXPLORE)
    refused = authority.refusal(actor, Act.EXPLORE, api_key)
    if refused is None and api_key.state != "active":
        unavailable = f"The key is {api_key.state}: every request made with it is refused."
    else:
        unavailable = refused.message if refused else ""
    return render(request, "apikeys/explore.html", {"api_key": api_key, "unavailable": unavailable})
