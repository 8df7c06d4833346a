"""Bearer-key authentication for the API: the only way a key is accepted."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from ninja.security.http import HttpBearer

from accounts.access import Actor
from accounts.models import Origin
from apikeys.usage import record_use
from apikeys.verification import KeyRejected, VerifiedKey, verify_token
from keyportal.http import client_ip


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__("Too many failed attempts.")
        self.retry_after = max(retry_after, 1)


def _failures(request: HttpRequest) -> dict | None:
    """Count one failed attempt against the client's address and return the usage so far."""
    return get_usage(
        request,
        group="api-auth-failures",
        key=lambda _group, req: client_ip(req) or "unknown",
        rate=f"{settings.KEYPORTAL_API_AUTH_FAILURES_PER_MINUTE}/m",
        increment=True,
    )


def _reject(request: HttpRequest, code: str, message: str) -> Exception:
    """Return what to raise for a refused attempt: the refusal, or 429 past the limit.

    Only failures touch the limiter, so a request whose key verifies never waits on the shared
    cache (a round trip to Redis in production). A client past the limit of failures gets 429
    for every further failure until the window ends; a valid key still works from its address,
    so one broken script behind a shared address (an office, a CI runner's NAT) cannot lock out
    everyone else there. Keys carry about 190 random bits: guessing one is not the threat the
    limit answers, noise and misconfiguration are.
    """
    usage = _failures(request)
    if usage and usage["should_limit"]:
        return RateLimited(usage["time_left"])
    return KeyRejected(code, message)


class KeyAuth(HttpBearer):
    """Accept `Authorization: Bearer <key>`; refuse a key anywhere else."""

    def __call__(self, request: HttpRequest) -> VerifiedKey:
        if request.META.get("QUERY_STRING") and any(
            value.startswith("sk-") for value in request.GET.values()
        ):
            raise _reject(
                request,
                "invalid_key",
                "API keys are accepted only in the Authorization header, never in a URL. "
                "Treat this key as exposed and rotate it.",
            )
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _reject(
                request, "invalid_key", "Send the API key as `Authorization: Bearer <key>`."
            )
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> VerifiedKey:
        try:
            verified = verify_token(token)
        except KeyRejected as rejected:
            raise _reject(request, rejected.code, rejected.message) from None
        record_use(verified.api_key.pk)
        return verified


def api_actor(request: HttpRequest) -> Actor:
    """Return the actor for a write made with the request's key: origin API, named by the key."""
    verified: VerifiedKey = request.auth
    key = verified.api_key
    return Actor(
        user=key.owner_user if key.kind == "user" else None,
        ip=client_ip(request),
        origin=Origin.API,
        label=f"{key.name} ({key.preview})",
        key_id=key.pk,
        ceiling=verified.permissions,
    )
