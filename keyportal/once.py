"""A form sent twice is answered once: a double click, a double Enter, a retried POST or a
reloaded result page get the first answer again, never a second change nor a false failure.

Each form that changes something carries a one-time token (`{% once_field %}`). The first
request with a token claims it in the shared cache (cache.add is atomic, on every worker and
host); what it answered (where it redirected and the messages it gave, or for the one-time
reveal of a key, whose plaintext must not be kept anywhere, only which key it made) is kept in
the cache and in the person's session. A request sent again gets that answer; one that arrives
while the first still runs waits for it. Tokens are bound to the person and the form's URL.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

FIELD = "once"
SESSION_KEY = "once"
KEPT = 30  # the answers remembered per session, newest first
SECONDS = 24 * 3600  # how long a claim and an answer are kept in the cache
WAIT_SECONDS = 10.0  # how long a second sending waits for the first one's answer


def new_token() -> str:
    """Return a fresh one-time token for a form."""
    return secrets.token_urlsafe(16)


def _token(request: HttpRequest) -> str:
    token = request.POST.get(FIELD, "") if request.method == "POST" else ""
    return token if 8 <= len(token) <= 64 else ""


def _name(request: HttpRequest) -> str:
    """Return this form sending's name: the token, for this person, on this URL."""
    token = _token(request)
    if not token:
        return ""
    person = getattr(getattr(request, "user", None), "pk", None)
    return hashlib.sha256(f"{person}|{request.path}|{token}".encode()).hexdigest()


def claim(request: HttpRequest) -> bool:
    """Return True for the first request with this form's token, False for any sent while or
    after it runs: two clicks arriving at once must not both change something."""
    name = _name(request)
    return not name or cache.add(f"once:claim:{name}", 1, timeout=SECONDS)


def release(request: HttpRequest) -> None:
    """Give the token back when the first request changed nothing (refused, bad input, error)."""
    name = _name(request)
    if name:
        cache.delete(f"once:claim:{name}")


def answered(request: HttpRequest) -> dict | None:
    """Return what the first request with this form's token answered, or None."""
    name = _name(request)
    if not name:
        return None
    return cache.get(f"once:answer:{name}") or request.session.get(SESSION_KEY, {}).get(name)


def answer_awaited(request: HttpRequest) -> dict | None:
    """Return the first request's answer, waiting a little for it while it still runs."""
    deadline = time.monotonic() + WAIT_SECONDS
    while (first := answered(request)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return first


def remember(request: HttpRequest, answer: dict) -> None:
    """Remember the answer to this form's token (never a secret: ids, a URL, messages)."""
    name = _name(request)
    if not name:
        return
    cache.set(f"once:answer:{name}", answer, timeout=SECONDS)
    kept = {name: answer, **request.session.get(SESSION_KEY, {})}
    request.session[SESSION_KEY] = dict(list(kept.items())[:KEPT])


def _replay(request: HttpRequest, answer: dict) -> HttpResponse:
    for level, text in answer.get("messages", []):
        messages.add_message(request, level, text)
    return redirect(answer["location"])


def replays(view: Callable) -> Callable:
    """Answer a form sent again as the first sending was: same redirect, same messages."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        first = answered(request)
        if first is not None and "location" in first:
            return _replay(request, first)
        if not claim(request):
            first = answer_awaited(request)
            if first is not None and "location" in first:
                return _replay(request, first)
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            release(request)
            raise
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
        else:
            release(request)
        return response

    return wrapper
