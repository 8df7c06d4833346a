"""The API Explorer: try the API from a key's page, in the browser, with a key pasted there."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.access import org_view
from apikeys.selectors import api_key_list


@org_view
def api_key_explore(request: HttpRequest, pk: int) -> HttpResponse:
    """Show the Explorer for a key the viewer may see; the key itself stays in the browser."""
    api_key = get_object_or_404(api_key_list(viewer=request.membership), pk=pk)
    return render(request, "apikeys/explore.html", {"api_key": api_key})
