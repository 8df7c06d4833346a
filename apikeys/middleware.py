"""The API's edge: refuse a request whose URL holds a key, whichever route it is for; tell a
key with rate limits where it stands."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from apikeys.api import api
from apikeys.api.auth import URL_KEY_MESSAGE, failed_attempt, key_in_query


class KeyInURLMiddleware:
    """Answer 401 (counted as a failed attempt) to any API request with a key in its query
    string, public routes and unknown paths included: a key in a URL is exposed, in proxy and
    browser histories, and must not appear to work."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING")
        if query and request.path_info.startswith("/api/") and key_in_query(query):
            # The API's own handlers render the refusal: 401, or 429 past the limit.
            return api.on_exception(
                request, failed_attempt(request, "invalid_key", URL_KEY_MESSAGE)
            )
        response = self.get_response(request)
        # A key with rate limits learns on every response how much of each window is left
        # (the RateLimit fields of the IETF httpapi draft); refusals carry them already.
        limits = getattr(getattr(request, "auth", None), "limits", None)
        if limits is not None:
            for name, value in limits.headers().items():
                response.headers.setdefault(name, value)
        return response
