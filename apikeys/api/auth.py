"""Authentication for the API: a key in `Authorization: Bearer`, or the Explorer acting as one.

Each operation's authentication also checks the permission the operation declares
(apikeys.api.routing), before its body is read.
"""

from __future__ import annotations

import dataclasses
import re
from time import perf_counter
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django_ratelimit.core import get_usage
from ninja.security.http import HttpBearer

from accounts.access import Actor, Refused
from accounts.models import Membership, Origin
from apikeys import authority
from apikeys.authority import Act
from apikeys.models import ApiKey
from apikeys.reach import Denied, require
from apikeys.usage import record_limits, record_refused_ip, record_use
from apikeys.verification import (
    KeyRefused,
    KeyRejected,
    VerifiedKey,
    verify_stored,
    verify_token,
)
from keyportal import metrics
from keyportal.http import client_ip
from keyportal_cli.tokens import CHECKSUM_LENGTH, PREFIXES, SECRET_LENGTH, has_token_format

# The header the console's Explorer sends instead of a secret: the id of the key to act as.
EXPLORE_HEADER = "HTTP_X_KEYPORTAL_EXPLORE"
_PREFIX = "(?:" + "|".join(map(re.escape, PREFIXES.values())) + ")"
# A key's prefix and the start of its secret, not glued to a word ("task-sk-org" is no key)...
KEY_START = re.compile(rf"(?<![0-9A-Za-z]){_PREFIX}[0-9A-Za-z]")
# ... or a whole key with a valid checksum, glued to anything.
WHOLE_KEY = re.compile(rf"{_PREFIX}[0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}")
URL_KEY_MESSAGE = (
    "API keys are accepted only in the Authorization header, never in a URL. "
    "Treat this key as exposed and rotate it."
)


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


def failed_attempt(request: HttpRequest, code: str, message: str) -> Exception:
    """Return what to raise for a refused key: the refusal, or 429 past the limit.

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


def key_in_query(query_string: str) -> bool:
    """Return True when the query string holds a key, or what starts like one: in a value or a
    name, bare, after "Bearer ", glued to other text, percent-encoded (once or twice)."""
    text = query_string
    for _ in range(3):
        if _holds_key(text):
            return True
        decoded = unquote_plus(text)
        if decoded == text:
            return False
        text = decoded
    return _holds_key(text)


def _holds_key(text: str) -> bool:
    if KEY_START.search(text):
        return True
    return any(has_token_format(match.group()) for match in WHOLE_KEY.finditer(text))


class KeyAuth(HttpBearer):
    """Accept `Authorization: Bearer <key>` (or the Explorer acting as a key), and check the
    operation's declared permission (None: any valid key)."""

    def __init__(self, permission: str | None = None):
        super().__init__()
        self.permission = permission

    def __call__(self, request: HttpRequest) -> VerifiedKey:
        # A key in the URL never gets here: apikeys.middleware.KeyInURLMiddleware refuses it.
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header and EXPLORE_HEADER in request.META:
            verified = explore_as(request, request.META[EXPLORE_HEADER])
        else:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise failed_attempt(
                    request, "invalid_key", "Send the API key as `Authorization: Bearer <key>`."
                )
            verified = self.authenticate(request, token.strip())
        verified = dataclasses.replace(verified, route_permission=self.permission)
        if self.permission is not None:
            try:
                require(verified, self.permission)
            except Denied:
                _record_denied_key_attempt(request, verified, self.permission)
                raise
        return verified

    def authenticate(self, request: HttpRequest, token: str) -> VerifiedKey:
        # /metrics (keyportal/metrics.py): off, one check of a module flag; on, one counter
        # and one histogram per key presented.
        started = perf_counter() if metrics.ENABLED else 0.0
        try:
            # The client's address is worked out only for a key with an allowlist.
            verified = verify_token(token, ip=lambda: client_ip(request))
        except KeyRefused as refused:
            if metrics.ENABLED:
                metrics.observe_verification(refused.code, started)
            # The key's own protections: not a failed attempt (the key is known and works).
            note_refusal(refused)
            raise
        except KeyRejected as rejected:
            if metrics.ENABLED:
                metrics.observe_verification(rejected.code, started)
            raise failed_attempt(request, rejected.code, rejected.message) from None
        if metrics.ENABLED:
            metrics.observe_verification("ok", started)
        record_use(verified.api_key.pk)
        if verified.limits is not None:
            record_limits(verified.api_key.pk, verified.limits)
        return verified


def note_refusal(refused: KeyRefused) -> None:
    """Buffer what a refusal by the key's protections leaves for its page: the address the
    allowlist refused, or the budget found empty."""
    if refused.code == "ip_not_allowed" and refused.ip:
        record_refused_ip(refused.api_key.pk, refused.ip)
    elif refused.outcome is not None:
        record_limits(refused.api_key.pk, refused.outcome)


# What a call on one key attempts, by method and the path's last segment.
KEY_ROUTE_ACTS = {
    ("GET", None): Act.SEE,
    ("PATCH", None): Act.EDIT,
    ("DELETE", None): Act.REVOKE,
    ("POST", "rotate"): Act.ROTATE,
    ("POST", "revoke"): Act.REVOKE,
}


def _record_denied_key_attempt(request: HttpRequest, verified: VerifiedKey, permission: str):
    """Record in the audit log a call on keys refused for lack of the route's permission
    (api-keys:manage): refusals are recorded whichever check makes them."""
    if permission != authority.MANAGE:
        return
    match = request.resolver_match
    key_id = match.kwargs.get("key_id") if match else None
    organization = verified.api_key.organization
    if key_id is None:
        act, api_key = (Act.CREATE, None) if request.method == "POST" else (None, None)
    else:
        tail = request.path.rstrip("/").rsplit("/", 1)[-1]
        act = KEY_ROUTE_ACTS.get((request.method, None if tail.isdigit() else tail))
        api_key = ApiKey.objects.filter(organization=organization, pk=key_id).first()
        if api_key is None:
            return
    if act is None:
        return
    refused = Refused(
        f"The API key lacks the permission {permission}.",
        act=act,
        api_key=api_key,
        permission=permission,
    )
    authority.record_refusal(key_actor(request, verified), refused, organization)


def _label(verified: VerifiedKey) -> str:
    key = verified.api_key
    label = f"{key.name} ({key.preview})"
    if verified.explorer is not None:
        label = f"{label} in the Explorer, by {verified.explorer.email}"
    return label[:200]


def explore_as(request: HttpRequest, key_id: str) -> VerifiedKey:
    """Verify the key the console's Explorer acts as (DESIGN rule 6): the signed-in person must
    pass the CSRF check and be allowed to rotate that key, on every request; the key itself is
    then checked as if its secret had been sent. Its use is not counted as the key's own."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise KeyRejected("invalid_key", "Sign in to the console to use the Explorer.")
    if CsrfViewMiddleware(lambda _request: None).process_view(request, None, (), {}) is not None:
        raise KeyRejected("invalid_key", "The Explorer's request failed the CSRF check.")
    api_key = None
    if key_id.isascii() and key_id.isdigit() and len(key_id) <= 18:
        api_key = ApiKey.objects.select_related("organization").filter(pk=int(key_id)).first()
    membership = (
        Membership.objects.filter(user=user, organization_id=api_key.organization_id).first()
        if api_key is not None
        else None
    )
    if membership is None:
        raise Refused("No such API key.", act=Act.EXPLORE, hidden=True)
    person = Actor(user=user, ip=client_ip(request), origin=Origin.EXPLORER, membership=membership)
    try:
        authority.check(person, Act.EXPLORE, api_key)
    except Refused as refused:
        authority.record_refusal(person, refused, api_key.organization)
        raise
    # The Explorer's call is the key's call: its allowlist (the person's address), its rate
    # limits and budget hold as for any request.
    try:
        verified = verify_stored(api_key.pk, ip=person.ip)
    except KeyRefused as refused:
        note_refusal(refused)
        raise
    if verified.limits is not None:
        record_limits(api_key.pk, verified.limits)
    return dataclasses.replace(verified, explorer=user)


def api_actor(request: HttpRequest) -> Actor:
    """Return the actor of a call made with the request's key."""
    return key_actor(request, request.auth)


def key_actor(request: HttpRequest, verified: VerifiedKey) -> Actor:
    """Return the key as the actor: its power, and the person beside it when the Explorer acts
    as the key."""
    key = verified.api_key
    return Actor(
        user=verified.explorer or (key.owner_user if key.kind == "user" else None),
        ip=client_ip(request),
        # The CLI names itself in its User-Agent (cli/src/keyportal_cli/client.py). A label for the
        # history only, which a client may claim freely: it grants nothing.
        origin=(
            Origin.EXPLORER
            if verified.explorer is not None
            else Origin.CLI
            if request.headers.get("User-Agent", "").startswith("keyportal-cli/")
            else Origin.API
        ),
        label=_label(verified),
        key=key,
        key_power=verified.power(),
        key_previous_secret=verified.previous_secret,
    )
