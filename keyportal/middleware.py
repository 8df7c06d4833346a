"""Send pending messages to htmx requests as an event the page turns into toasts."""

from __future__ import annotations

import json

from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse


class ApiNoStoreMiddleware:
    """Mark every API response no-store: they carry keys, secrets and key state."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            response["Cache-Control"] = "no-store"
        return response


class HtmxMessagesMiddleware:
    """Add the request's messages to `HX-Trigger` on htmx responses that are not redirects."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not getattr(request, "htmx", False) or 300 <= response.status_code < 400:
            return response
        if "HX-Redirect" in response or "HX-Refresh" in response:
            return response
        items = [{"level": m.level_tag, "text": str(m)} for m in get_messages(request)]
        if items:
            triggers = json.loads(response.get("HX-Trigger", "{}") or "{}")
            triggers["messages"] = items
            response["HX-Trigger"] = json.dumps(triggers)
        return response
