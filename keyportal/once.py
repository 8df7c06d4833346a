"""A form sent twice is answered once: a double click, a double Enter, a retried POST or a
reloaded result page get the first answer again, never a second change nor a false failure.

Each form that changes something carries a one-time token (`{% once_field %}`). The person's
session remembers, for the last few tokens, what the first request answered: where it
redirected and the messages it gave, or (for the one-time reveal of a key, whose plaintext must
not be kept anywhere) only which key it made.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

FIELD = "once"
SESSION_KEY = "once"
KEPT = 30  # the tokens remembered per session, newest first
CACHE_PREFIX = "once:"
CLAIM_SECONDS = 24 * 3600


def new_token() -> str:
    """Return a fresh one-time token for a form."""
    return secrets.token_urlsafe(16)


def _token(request: HttpRequest) -> str:
    token = request.POST.get(FIELD, "") if request.method == "POST" else ""
    return token if 8 <= len(token) <= 64 else ""


def claim(request: HttpRequest) -> bool:
    """Return True for the first request with this form's token, False for any sent while or
    after it runs: two clicks arriving at once must not both change something. The claim is
    taken in the shared cache, which every worker and host sees (cache.add is atomic)."""
    token = _token(request)
    return not token or cache.add(f"{CACHE_PREFIX}{token}", 1, timeout=CLAIM_SECONDS)


def release(request: HttpRequest) -> None:
    """Give the token back when the first request changed nothing (refused, bad input)."""
    token = _token(request)
    if token:
        cache.delete(f"{CACHE_PREFIX}{token}")


def answered(request: HttpRequest) -> dict | None:
    """Return what the first request with this form's token answered, or None."""
    token = _token(request)
    if not token:
        return None
    return request.session.get(SESSION_KEY, {}).get(token)


def remember(request: HttpRequest, answer: dict) -> None:
    """Remember the answer to this form's token (never a secret: ids, a URL, messages)."""
    token = _token(request)
    if not token:
        return
    kept = {token: answer, **request.session.get(SESSION_KEY, {})}
    request.session[SESSION_KEY] = dict(list(kept.items())[:KEPT])


def replays(view: Callable) -> Callable:
    """Answer a form sent again as the first sending was: same redirect, same messages."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        first = answered(request)
        if first is not None and "location" in first:
            for level, text in first.get("messages", []):
                messages.add_message(request, level, text)
            return redirect(first["location"])
        response = view(request, *args, **kwargs)
        if request.method == "POST" and response.status_code in (301, 302, 303):
            # The messages this request queued (django.contrib.messages keeps them there until
            # the response is sent).
            queued = getattr(getattr(request, "_messages", None), "_queued_messages", [])
            remember(
                request,
                {
                    "location": response["Location"],
                    "messages": [(m.level, m.message) for m in queued],
                },
            )
        return response

    return wrapper
