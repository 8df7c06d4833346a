"""Device login through the API: ask for a code, then poll for the key (RFC 8628).

Two dialects on the same two routes, told apart by the request's Content-Type (`_form`):

- JSON, `keyportal login`'s: `{"client", "host"}` for a code, `{"device_code"}` to poll; the key
  comes back as `{"token", "key", "organization"}`, errors in the API's own shape.
- A form (`application/x-www-form-urlencoded`), RFC 8628 as written, for any OAuth device-flow
  client: `client_id` (and an optional `scope`) for a code; `grant_type=urn:ietf:params:oauth:
  grant-type:device_code`, `device_code` and `client_id` to poll. The key comes back as an
  RFC 6749 token response (`access_token`, `token_type`, `expires_in`), errors as `{"error",
  "error_description"}` with RFC 8628's and RFC 6749's codes.

keyportal registers no OAuth clients: a `client_id` is any name the program gives itself (at most
100 characters, no control characters), shown to the person approving as the program's own
unchecked claim, and the poll must name the same one. It may come in the body or as the user name
of HTTP Basic authentication; a client secret is ignored. `scope` is accepted and ignored: the key
holds the person's role ("Same as my role"), which the token response's `scope` lists.

Neither call takes a key: the device code is the proof. Both dialects share the services
(apikeys/device.py), the limit on codes per client address, the pacing of polls and the
single use of a code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Literal
from urllib.parse import unquote_plus

import pydantic
from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone
from django_ratelimit.core import is_ratelimited
from ninja import Field, Schema
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from apikeys.api.keys import key_out
from apikeys.api.routing import PUBLIC, Router
from apikeys.api.schemas import Error, Key, Name, Strict
from apikeys.device import DeviceError, IssuedKey, device_code_create, device_poll
from keyportal.http import client_ip
from keyportal_cli.names import name_problem

router = Router(tags=["login"])

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
CLIENT_ID_MAX_LENGTH = 100
DEVICE_CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")  # what device_code_create makes, and more


class CodeRequest(Strict):
    # Both are shown to the person approving, and the host names the key: safe names only.
    client: Name = Field(max_length=100, description="the program asking, e.g. keyportal-cli/0.1.0")
    host: Name = Field(max_length=255, description="the machine it runs on")


class CodeForm(Schema):
    """RFC 8628 §3.1, form-encoded."""

    client_id: str = Field(
        max_length=CLIENT_ID_MAX_LENGTH,
        description="Any name the program gives itself (keyportal registers no clients); shown "
        "to the person approving. Or send it as the user name of HTTP Basic authentication.",
    )
    scope: str | None = Field(
        None, description="Accepted and ignored: the key holds the person's role."
    )


class CodeOut(Schema):
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


class TokenRequest(Strict):
    device_code: str = Field(max_length=100, pattern=r"^[A-Za-z0-9_-]+$")


class TokenForm(Schema):
    """RFC 8628 §3.4, form-encoded."""

    grant_type: Literal["urn:ietf:params:oauth:grant-type:device_code"]
    device_code: str
    client_id: str = Field(
        max_length=CLIENT_ID_MAX_LENGTH,
        description="The client_id the code was asked for with (or HTTP Basic's user name)",
    )


class LoginOrganization(Schema):
    id: int
    name: str
    slug: str


class Issued(Schema):
    """The JSON dialect's answer."""

    token: str = Field(description="The plaintext key. Shown in this response only.")
    key: Key
    organization: LoginOrganization


class AccessToken(Schema):
    """The form dialect's answer: an RFC 6749 §5.1 token response."""

    access_token: str = Field(description="The plaintext key. Shown in this response only.")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the key expires")
    scope: str = Field(description="The key's permissions, space-separated")
    key: Key
    organization: LoginOrganization


class OAuthError(Schema):
    """The form dialect's errors: RFC 6749 §5.2 and RFC 8628 §3.5."""

    error: Literal[
        "authorization_pending",
        "slow_down",
        "access_denied",
        "expired_token",
        "invalid_grant",
        "invalid_request",
        "invalid_client",
        "unsupported_grant_type",
        "rate_limited",
    ]
    error_description: str
    interval: int | None = Field(None, description="With slow_down: the seconds to wait now")


class CodesLimited(Exception):
    """Too many login codes asked for from one address."""


class OAuthProblem(Exception):
    """A form-dialect request refused before it reaches the services."""

    def __init__(self, error: str, description: str, *, basic: bool = False):
        super().__init__(description)
        self.error = error
        self.description = description
        # invalid_client after HTTP Basic authentication is a 401 asking for it (RFC 6749 §5.2).
        self.basic = basic


def _request_body(json_model: type[Schema], form_model: type[Schema]) -> dict[str, Any]:
    """Describe, in the OpenAPI document, a body taken as JSON or as a form."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_model.model_json_schema()},
                FORM_TYPES[0]: {"schema": form_model.model_json_schema()},
            },
        }
    }


BAD_BODY = (
    "JSON: `bad_request` (the body is not JSON), in the API's error shape. Form: an RFC 6749 "
    "error, `{error, error_description}`: "
)
BASIC_401 = (
    "Form only: `invalid_client` when the client_id sent as HTTP Basic authentication is not "
    'acceptable (with `WWW-Authenticate: Basic realm="keyportal"`).'
)
CODES_429 = (
    "Too many codes asked for from the client's address (KEYPORTAL_DEVICE_CODES_RATE); wait "
    "`Retry-After` seconds. JSON: `rate_limited` in the API's shape; form: "
    '`{"error": "rate_limited"}`.'
)


def _form(request: HttpRequest) -> QueryDict | None:
    """Return the request's form when it is to be answered as RFC 8628, else None (JSON).

    A form Content-Type says so; a JSON one says not. Without either (authlib, for one, sends
    its client_id in a body without a Content-Type when there is nothing else to send) a body
    that opens a JSON object or array is read as JSON, as it always was; any other body, or none
    at all (a client sending only HTTP Basic credentials), as a form.
    """
    if request.content_type in FORM_TYPES:
        return request.POST
    if request.content_type == "application/json" or request.content_type.endswith("+json"):
        return None
    if request.body.lstrip().startswith((b"{", b"[")):
        return None
    return QueryDict(request.body)


def _json_payload(request: HttpRequest, model: type[Strict]) -> Any:
    """Read and validate a JSON body as django-ninja does for a `payload: model` parameter."""
    if not request.body:
        missing = {"loc": ("body", "payload"), "msg": "Field required", "type": "missing"}
        raise NinjaValidationError([missing])
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise HttpError(400, "Cannot parse request body") from exc
    try:
        return model.model_validate(data, context={"request": request})
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise NinjaValidationError(
            [{**error, "loc": ("body", "payload", *error["loc"])} for error in errors]
        ) from None


def _oauth_response(
    request: HttpRequest,
    body: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """Answer in the form dialect: never stored by a cache (RFC 6749 §5.1)."""
    from apikeys.api import api  # here: apikeys.api imports this module

    response = api.create_response(request, body, status=status)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _oauth_error(
    request: HttpRequest, error: str, description: str, *, interval: int | None = None
) -> HttpResponse:
    body: dict[str, Any] = {"error": error, "error_description": description}
    if interval:
        body["interval"] = interval
    return _oauth_response(request, body, status=400)


def _refused(request: HttpRequest, problem: OAuthProblem) -> HttpResponse:
    if problem.basic:
        body = {"error": problem.error, "error_description": problem.description}
        challenge = {"WWW-Authenticate": 'Basic realm="keyportal"'}
        return _oauth_response(request, body, status=401, headers=challenge)
    return _oauth_error(request, problem.error, problem.description)


def _single(form: QueryDict, name: str) -> str:
    """Return the form's `name`, "" when absent or empty (RFC 6749 §3.1: the same thing)."""
    values = form.getlist(name)
    if len(values) > 1:
        raise OAuthProblem("invalid_request", f"{name} is given more than once.")
    return values[0] if values else ""


def _basic_user(request: HttpRequest) -> str | None:
    """Return the user name of HTTP Basic authentication (RFC 6749 §2.3.1), or None."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthProblem(
            "invalid_client", "The Basic credentials cannot be read.", basic=True
        ) from None
    # The secret, if any, is ignored: keyportal registers no clients, the device code is the proof.
    return unquote_plus(decoded.partition(":")[0])


def _client_id(request: HttpRequest, form: QueryDict) -> str:
    """Return the client_id of a form-dialect request, from the body or HTTP Basic."""
    given = _single(form, "client_id")
    basic = _basic_user(request)
    if given and basic and given != basic:
        raise OAuthProblem(
            "invalid_client", "client_id differs from the Basic user name.", basic=True
        )
    client_id = given or basic or ""
    if not client_id:
        raise OAuthProblem(
            "invalid_client",
            "Send client_id: any name for your program, shown to the person approving.",
            basic=basic is not None,
        )
    if len(client_id) > CLIENT_ID_MAX_LENGTH or name_problem(client_id):
        raise OAuthProblem(
            "invalid_client",
            f"client_id must be at most {CLIENT_ID_MAX_LENGTH} characters, none of them "
            "control characters or text-direction overrides.",
            basic=basic is not None,
        )
    return client_id


def _codes_limited(request: HttpRequest) -> bool:
    return is_ratelimited(
        request,
        group="device-codes",
        key=lambda _group, req: client_ip(req) or "unknown",
        rate=settings.KEYPORTAL_DEVICE_CODES_RATE,
        increment=True,
    )


def _new_code(request: HttpRequest, *, client: str, host: str) -> dict[str, Any]:
    login, code = device_code_create(client=client, host=host, ip=client_ip(request))
    page = request.build_absolute_uri(reverse("device"))
    return {
        "device_code": code,
        "user_code": login.user_code,
        "verification_uri": page,
        "verification_uri_complete": f"{page}?code={login.user_code}",
        "expires_in": settings.KEYPORTAL_DEVICE_CODE_SECONDS,
        "interval": login.interval,
    }


def _organization(issued: IssuedKey) -> dict[str, Any]:
    return {
        "id": issued.organization.pk,
        "name": issued.organization.name,
        "slug": issued.organization.slug,
    }


@router.post(
    "/device/code",
    permission=PUBLIC,
    response={
        200: CodeOut,
        400: Error | OAuthError,
        401: OAuthError,
        413: Error,
        422: Error,
        429: Error | OAuthError,
    },
    summary="Start a device login: a code for the person, a device code for the program",
    description="JSON `{client, host}` (keyportal login), or RFC 8628's form: `client_id` and "
    "an optional `scope`. See docs/api.md, Device login.",
    openapi_extra={
        **_request_body(CodeRequest, CodeForm),
        "responses": {
            400: {
                "description": BAD_BODY + "`invalid_client` (no client_id, or not an "
                "acceptable one), `invalid_request` (a parameter given twice)."
            },
            401: {"description": BASIC_401},
            422: {
                "description": "JSON only: `invalid_request`, the body is not valid (unknown "
                "fields, a bad name); the message names the field."
            },
            429: {"description": CODES_429},
        },
    },
)
def create_device_code(request: HttpRequest):
    form = _form(request)
    if form is not None:
        try:
            client_id = _client_id(request, form)
            _single(form, "scope")  # accepted and ignored; once at most
        except OAuthProblem as problem:
            return _refused(request, problem)
        if _codes_limited(request):
            body = {
                "error": "rate_limited",
                "error_description": "Too many login codes from your address; retry in a minute.",
            }
            return _oauth_response(request, body, status=429, headers={"Retry-After": "60"})
        return _new_code(request, client=client_id, host="")
    payload = _json_payload(request, CodeRequest)
    if _codes_limited(request):
        raise CodesLimited
    return _new_code(request, client=payload.client, host=payload.host)


@router.post(
    "/device/token",
    permission=PUBLIC,
    response={
        200: Issued | AccessToken,
        400: Error | OAuthError,
        401: OAuthError,
        413: Error,
        422: Error,
    },
    summary="Poll for the key: authorization_pending, slow_down, access_denied, expired_token",
    description="JSON `{device_code}` (keyportal login), or RFC 8628's form: `grant_type="
    f"{DEVICE_GRANT}`, `device_code`, `client_id`. See docs/api.md, Device login.",
    openapi_extra={
        **_request_body(TokenRequest, TokenForm),
        "responses": {
            200: {
                "description": "JSON: `{token, key, organization}`. Form: an RFC 6749 token "
                "response, `{access_token, token_type: Bearer, expires_in, scope, key, "
                "organization}`, with `Cache-Control: no-store` and `Pragma: no-cache`."
            },
            400: {
                "description": "Not yet, or never: `authorization_pending`, `slow_down` (with "
                "`interval`), `access_denied`, `expired_token`, `invalid_grant` (an unknown "
                "device code, or one of another client_id). JSON: in the API's error shape, or "
                "`bad_request` (not JSON). Form: `{error, error_description}`, or "
                "`invalid_request` (a parameter missing or given twice), "
                "`unsupported_grant_type`, `invalid_client`."
            },
            401: {"description": BASIC_401},
            422: {
                "description": "JSON only: `invalid_request`, the body is not valid; the "
                "message names the field."
            },
        },
    },
)
def poll_device_token(request: HttpRequest):
    form = _form(request)
    if form is not None:
        return _poll_by_form(request, form)
    payload = _json_payload(request, TokenRequest)
    issued = device_poll(device_code=payload.device_code, ip=client_ip(request))
    return {
        "token": issued.token,
        "key": key_out(issued.api_key),
        "organization": _organization(issued),
    }


def _poll_by_form(request: HttpRequest, form: QueryDict) -> HttpResponse:
    """Answer an RFC 8628 §3.4 poll, form-encoded, as RFC 6749 §5 does."""
    try:
        grant_type = _single(form, "grant_type")
        if not grant_type:
            raise OAuthProblem("invalid_request", f"Send grant_type={DEVICE_GRANT}.")
        if grant_type != DEVICE_GRANT:
            raise OAuthProblem(
                "unsupported_grant_type", f"This endpoint takes grant_type={DEVICE_GRANT} only."
            )
        client_id = _client_id(request, form)
        device_code = _single(form, "device_code")
        if not device_code:
            raise OAuthProblem("invalid_request", "Send the device_code to poll for.")
        if not DEVICE_CODE.fullmatch(device_code):
            raise OAuthProblem("invalid_grant", "Unknown device code; log in again.")
        issued = device_poll(device_code=device_code, ip=client_ip(request), client=client_id)
    except OAuthProblem as problem:
        return _refused(request, problem)
    except DeviceError as refusal:
        return _oauth_error(request, refusal.code, refusal.message, interval=refusal.interval)
    key = issued.api_key
    seconds = (key.expires_at - timezone.now()).total_seconds() if key.expires_at else 0
    token = AccessToken.model_validate(
        {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": max(0, int(seconds)),
            "scope": " ".join(key.permissions),
            "key": key_out(key),
            "organization": _organization(issued),
        }
    )
    return _oauth_response(request, token.model_dump())
