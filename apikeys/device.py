"""`keyportal login`: the device authorization flow of RFC 8628.

1. A program asks for a code (`device_code_create`): it gets a long device code, kept secret and
   stored here only as a digest, and a short user code such as `BCDF-GHJK` for the person. The
   CLI names itself and its host; a standard RFC 8628 client names only its `client_id`
   (apikeys/api/device.py), and its host is left empty.
2. The person opens the verification page, logs in if needed, sees the code, the address that
   asked beside their own (warned when they differ), the client and host the program reports
   about itself (unchecked), picks an organization and approves (`device_approve`) or denies.
3. The program polls (`device_poll`) every `interval` seconds; polling faster earns `slow_down`
   and five more seconds. After approval, the next poll creates a personal `sk-user-` key with
   origin CLI, named after the host (or the client and its address) and the date, valid 7 days
   (less if the key policy says so), and returns its plaintext that once. The code is then spent.

Codes live KEYPORTAL_DEVICE_CODE_SECONDS (600) and are single-use.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEventType, Membership, Organization, Origin, User
from accounts.services import audit_record
from apikeys.models import ApiKey, DeviceAuthorization, DeviceState, KeyKind, KeyPreset
from apikeys.policy import latest_expiry, policy_for
from apikeys.services import api_key_create
from keyportal_cli.tokens import token_digest

# RFC 8628, 6.1: no vowels (no words), no look-alikes; 20 letters, 8 of them: 2.6e10 codes.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
CLI_KEY_DAYS = 7
SLOW_DOWN_SECONDS = 5


class DeviceError(Exception):
    """A poll that gives no key: `code` is the API's error code (RFC 8628's names)."""

    def __init__(self, code: str, message: str, *, interval: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.interval = interval


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    token: str
    organization: Organization


def normalize_user_code(text: str) -> str:
    """Return `text` as a user code looks (`BCDF-GHJK`), ignoring case, spaces and the dash."""
    letters = "".join(c for c in text.upper() if c.isalnum())
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else letters


def _new_user_code() -> str:
    while True:
        letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
        code = f"{letters[:4]}-{letters[4:]}"
        if not device_pending_list().filter(user_code=code).exists():
            return code


def device_pending_list():
    """Return the requests still waiting for a person, not expired."""
    return DeviceAuthorization.objects.filter(
        state=DeviceState.PENDING, expires_at__gt=timezone.now()
    )


def device_code_create(*, client: str, host: str, ip: str) -> tuple[DeviceAuthorization, str]:
    """Start a login: return the request and its device code (the secret only the CLI holds)."""
    device_code = secrets.token_urlsafe(32)
    now = timezone.now()
    request = DeviceAuthorization.objects.create(
        device_code_digest=token_digest(device_code),
        user_code=_new_user_code(),
        client=client[:100],
        host=host[:255],
        ip_address=ip or None,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.KEYPORTAL_DEVICE_CODE_SECONDS),
        interval=settings.KEYPORTAL_DEVICE_POLL_SECONDS,
    )
    return request, device_code


def device_find(*, user_code: str) -> DeviceAuthorization | None:
    """Return the pending, unexpired request with this user code, or None."""
    return device_pending_list().filter(user_code=normalize_user_code(user_code)).first()


def device_requested_elsewhere(*, request: DeviceAuthorization, ip: str) -> bool:
    """Return whether the login was asked for from an address other than `ip` (both known)."""
    if not request.ip_address or not ip:
        return False
    return ipaddress.ip_address(request.ip_address) != ipaddress.ip_address(ip)


def device_approve(*, user: User, organization: Organization, user_code: str, ip: str = "") -> None:
    """Approve a pending request for `organization`, where `user` must be a member; `ip` is
    the approving browser's address, for the history."""
    if not Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationError({"organization": "Choose one of your organizations."})
    with transaction.atomic():
        request = _locked_pending(user_code)
        request.state = DeviceState.APPROVED
        request.user = user
        request.organization = organization
        request.save(update_fields=["state", "user", "organization"])
        audit_record(
            actor=Actor(user=user, ip=ip),
            organization=organization,
            action=AuditEventType.CLI_LOGIN_APPROVED,
            target=request,
            detail={"client": request.client, "host": request.host, "ip": request.ip_address},
        )


def device_deny(*, user: User, user_code: str) -> None:
    """Deny a pending request: the CLI's next poll ends with access_denied."""
    with transaction.atomic():
        request = _locked_pending(user_code)
        request.state = DeviceState.DENIED
        request.user = user
        request.save(update_fields=["state", "user"])


def _locked_pending(user_code: str) -> DeviceAuthorization:
    request = (
        device_pending_list()
        .select_for_update()
        .filter(user_code=normalize_user_code(user_code))
        .first()
    )
    if request is None:
        raise ValidationError(
            {
                "code": "This code is not valid: it may have expired or been used. "
                "Start the login again (`keyportal login`, or your program's) for a new one."
            }
        )
    return request


def device_poll(*, device_code: str, ip: str, client: str | None = None) -> IssuedKey:
    """Answer a poll: the issued key once approved, else raise DeviceError saying why.

    `client`, when given (an RFC 8628 poll's `client_id`), must be the client the code was
    issued to; a code of another client is `invalid_grant`, as an unknown one is, and counts
    as no poll. The poll's own bookkeeping (when it polled, a slower interval) is committed
    before the refusal is raised, so that pacing holds across polls.
    """
    with transaction.atomic():
        request = (
            DeviceAuthorization.objects.select_for_update(of=("self",))
            .select_related("user", "organization")
            .filter(device_code_digest=token_digest(device_code))
            .first()
        )
        refusal = _refusal(request, client)
        if refusal is None:
            api_key, token = _issue_key(request, ip=ip)
            request.state = DeviceState.COMPLETED
            request.api_key = api_key
            request.save(update_fields=["state", "api_key"])
    if refusal is not None:
        raise refusal
    return IssuedKey(api_key=api_key, token=token, organization=request.organization)


def _refusal(request: DeviceAuthorization | None, client: str | None) -> DeviceError | None:
    """Return why this poll gets no key (recording the poll), or None when the key is due."""
    if request is None:
        return DeviceError("invalid_grant", "Unknown device code; log in again.")
    if client is not None and client != request.client:
        return DeviceError("invalid_grant", "This device code was issued to another client_id.")
    if request.state == DeviceState.COMPLETED:
        return DeviceError("expired_token", "This login was already completed; log in again.")
    if request.is_expired:
        return DeviceError("expired_token", "The code expired before it was approved.")
    now = timezone.now()
    too_soon = (
        request.last_polled_at is not None
        and (now - request.last_polled_at).total_seconds() < request.interval
    )
    request.last_polled_at = now
    if too_soon:
        request.interval += SLOW_DOWN_SECONDS
        request.save(update_fields=["last_polled_at", "interval"])
        return DeviceError(
            "slow_down",
            f"Polling too fast; wait {request.interval} seconds between polls.",
            interval=request.interval,
        )
    request.save(update_fields=["last_polled_at"])
    if request.state == DeviceState.DENIED:
        return DeviceError("access_denied", "The login was denied in the browser.")
    if request.state == DeviceState.PENDING:
        return DeviceError("authorization_pending", "Waiting for approval in the browser.")
    return None


def _issue_key(request: DeviceAuthorization, *, ip: str) -> tuple[ApiKey, str]:
    """Create the CLI's personal key: "Same as my role", 7 days or the policy's maximum."""
    membership = Membership.objects.filter(
        user=request.user, organization=request.organization
    ).first()
    if membership is None:
        raise DeviceError("access_denied", "You are no longer a member of that organization.")
    now = timezone.now()
    expires_at = now + timedelta(days=CLI_KEY_DAYS)
    latest = latest_expiry(policy_for(organization=request.organization, kind=KeyKind.USER), now)
    if latest is not None and latest < expires_at:
        expires_at = latest
    actor = Actor(user=request.user, ip=ip, origin=Origin.CLI)
    # At most 87 characters, 94 with the suffix below: names hold 100.
    name = f"{_label(request)[:70]} {now:%Y-%m-%d %H:%M}"
    try:
        return _create(actor, request, name, expires_at)
    except ValidationError:
        # The same host logged in twice within the minute: the name must stay unique.
        return _create(actor, request, f"{name} ({secrets.token_hex(2)})", expires_at)


def _label(request: DeviceAuthorization) -> str:
    """Name what logged in: the CLI's host, or (a standard client names none) the client and
    the address it asked from."""
    if request.host:
        return f"CLI on {request.host[:60]}"
    return f"{request.client} from {request.ip_address or 'an unknown address'}"


def _create(actor, request, name, expires_at) -> tuple[ApiKey, str]:
    return api_key_create(
        actor=actor,
        organization=request.organization,
        kind=KeyKind.USER,
        owner=request.user,
        name=name,
        # "Same as my role", as a personal key made in the console starts.
        preset=KeyPreset.ROLE,
        expires_at=expires_at,
    )
