"""`keyportal login` through the API: ask for a code, then poll for the key (RFC 8628).

Neither call takes a key: the device code is the CLI's proof. Asking for codes is limited per
client address; polling is paced by `slow_down`.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django_ratelimit.core import is_ratelimited
from ninja import Field, Schema

from apikeys.api.keys import key_out
from apikeys.api.routing import PUBLIC, Router
from apikeys.api.schemas import Error, Key, Name, Strict
from apikeys.device import device_code_create, device_poll
from keyportal.http import client_ip

router = Router(tags=["login"])


class CodeRequest(Strict):
    # Both are shown to the person approving, and the host names the key: safe names only.
    client: Name = Field(max_length=100, description="the program asking, e.g. keyportal-cli/0.1.0")
    host: Name = Field(max_length=255, description="the machine it runs on")


class CodeOut(Schema):
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


class TokenRequest(Strict):
    device_code: str = Field(max_length=100, pattern=r"^[A-Za-z0-9_-]+$")


class Issued(Schema):
    token: str = Field(description="The plaintext key. Shown in this response only.")
    key: Key
    organization: dict


class CodesLimited(Exception):
    """Too many login codes asked for from one address."""


@router.post(
    "/device/code",
    permission=PUBLIC,
    response={200: CodeOut, 422: Error, 429: Error},
    summary="Start a browser login: a code for the person, a device code for the CLI",
)
def device_code(request: HttpRequest, payload: CodeRequest):
    if is_ratelimited(
        request,
        group="device-codes",
        key=lambda _group, req: client_ip(req) or "unknown",
        rate=settings.KEYPORTAL_DEVICE_CODES_RATE,
        increment=True,
    ):
        raise CodesLimited
    login, code = device_code_create(
        client=payload.client, host=payload.host, ip=client_ip(request)
    )
    page = request.build_absolute_uri(reverse("device"))
    return {
        "device_code": code,
        "user_code": login.user_code,
        "verification_uri": page,
        "verification_uri_complete": f"{page}?code={login.user_code}",
        "expires_in": settings.KEYPORTAL_DEVICE_CODE_SECONDS,
        "interval": login.interval,
    }


@router.post(
    "/device/token",
    permission=PUBLIC,
    response={200: Issued, 400: Error, 422: Error},
    summary="Poll for the key: authorization_pending, slow_down, access_denied, expired_token",
)
def device_token(request: HttpRequest, payload: TokenRequest):
    issued = device_poll(device_code=payload.device_code, ip=client_ip(request))
    return {
        "token": issued.token,
        "key": key_out(issued.api_key),
        "organization": {
            "id": issued.organization.pk,
            "name": issued.organization.name,
            "slug": issued.organization.slug,
        },
    }
