"""Reporting leaked keys: anyone holding one (no key, no login), and GitHub secret scanning.

Neither takes an API key. Holding the leaked key is the reporter's proof; GitHub's signature is
GitHub's. A holder is answered the same whether or not the key was keyportal's, so the endpoint
cannot be used to test strings for being live keys; GitHub, whose reports are signed, is told.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Annotated, Literal

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import Field, Schema, Status
from ninja.decorators import decorate_view
from pydantic import AfterValidator, SecretStr
from pydantic_core import PydanticCustomError

from accounts.access import Actor
from accounts.models import Origin
from apikeys import github_scanning
from apikeys.api import error
from apikeys.api.routing import PUBLIC, Router
from apikeys.api.schemas import Error, Strict
from apikeys.leaks import ANONYMOUS_REPORTER, key_report_leaked, reports_limited
from apikeys.models import LeakSource
from keyportal.http import client_ip
from keyportal_cli.names import unsafe_character

router = Router(tags=["leaks"])

REPORT_MAX_BYTES = 16 * 1024
LOCATION_MAX_LENGTH = 500
RECEIVED_MESSAGE = (
    "If this is a live keyportal key, it no longer works and its owner has been told."
)


def _safe_text(value: str) -> str:
    character = unsafe_character(value)
    if character is not None:
        raise PydanticCustomError(
            "unsafe_text",
            "Text cannot contain control characters or text-direction overrides (U+{code}).",
            {"code": f"{ord(character):04X}"},
        )
    return value


class LeakReport(Strict):
    # A SecretStr: the token shows as "**********" in any repr, a traceback's included.
    token: SecretStr = Field(
        min_length=1, max_length=1000, description="The leaked key, whole (in the body only)"
    )
    location: Annotated[str, AfterValidator(_safe_text)] = Field(
        "",
        max_length=LOCATION_MAX_LENGTH,
        description="Where it was found: a URL, or path:line",
    )


class LeakReceived(Schema):
    received: Literal[True]
    message: str


class GitHubMatch(Schema):
    token: str
    type: str
    url: str
    source: str


class GitHubFeedback(Schema):
    token_hash: str = Field(description="SHA-256 of the token, hex")
    token_type: str
    label: Literal["true_positive", "false_positive"]


def body_at_most(limit: int) -> Callable:
    """Answer 413 to a body over `limit` bytes, before django-ninja reads or parses it."""

    def decorate(run: Callable) -> Callable:
        @wraps(run)
        def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
                size = declared if declared > limit else len(request.body)
            except (ValueError, RequestDataTooBig):
                size = limit + 1
            if size > limit:
                return error(
                    request, 413, "too_large", f"The body may be at most {limit // 1024} KiB."
                )
            return run(request, *args, **kwargs)

        return checked

    return decorate


@router.post(
    "/keys/leaked",
    permission=PUBLIC,
    response={202: LeakReceived, 429: Error},
    summary="Report a leaked key: it stops working at once (no key needed)",
    description=(
        "Holding the key is the proof. Send the key in the body, never in the URL. The answer "
        "is the same whether or not the key was a live keyportal key. Limited per client "
        "address (KEYPORTAL_LEAK_REPORTS_RATE): 429 with Retry-After beyond it."
    ),
)
@decorate_view(body_at_most(REPORT_MAX_BYTES))
def report_leaked_key(request: HttpRequest, payload: LeakReport):
    wait = reports_limited(request)
    if wait is not None:
        response = error(request, 429, "rate_limited", f"Too many leak reports; retry in {wait} s.")
        response["Retry-After"] = str(wait)
        return response
    report = {"location": payload.location} if payload.location else {}
    key_report_leaked(
        token=payload.token.get_secret_value(),
        source=LeakSource.HOLDER,
        report=report,
        actor=Actor(user=None, label=ANONYMOUS_REPORTER, origin=Origin.API, ip=client_ip(request)),
    )
    # What the report did stays here: the same answer for every token.
    return Status(202, {"received": True, "message": RECEIVED_MESSAGE})


_SIGNATURE_HEADERS = [
    {
        "name": "Github-Public-Key-Identifier",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The key, of those GitHub publishes, that signed the body",
    },
    {
        "name": "Github-Public-Key-Signature",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "Base64 DER ECDSA (P-256, SHA-256) signature of the raw body",
    },
]


@router.post(
    "/secret-scanning/github",
    permission=PUBLIC,
    response={
        200: list[GitHubFeedback],
        400: Error,
        401: Error,
        409: Error,
        413: Error,
        422: Error,
        503: Error,
    },
    summary="GitHub secret scanning: keys GitHub found in public code (signed by GitHub)",
    description=(
        "For GitHub's secret scanning partner program: the request must carry GitHub's "
        "signature of its body (401 otherwise). Each keyportal key listed is "
        "compromised and revoked; the answer labels each token, by its SHA-256, "
        "true_positive or false_positive. A batch received before is 409 `replayed`."
    ),
    openapi_extra={
        "responses": {
            401: {"description": "`invalid_signature`: no signature, or not GitHub's"},
            409: {"description": "`replayed`: this batch was received before"},
            503: {
                "description": "`unavailable`: GitHub's public keys cannot be fetched now; "
                "retry after `Retry-After` seconds"
            },
        },
        "parameters": _SIGNATURE_HEADERS,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "maxItems": github_scanning.MAX_TOKENS,
                        "items": GitHubMatch.model_json_schema(),
                    }
                }
            },
        },
    },
)
@decorate_view(body_at_most(github_scanning.MAX_BODY_BYTES))
def receive_github_secret_scanning(request: HttpRequest):
    try:
        feedback = github_scanning.batch_receive(
            body=request.body,
            identifier=request.headers.get("Github-Public-Key-Identifier", ""),
            signature=request.headers.get("Github-Public-Key-Signature", ""),
            ip=client_ip(request),
        )
    except github_scanning.Refused as refused:
        response = error(request, refused.status, refused.code, refused.message)
        if refused.status == 503:
            response["Retry-After"] = str(github_scanning.REFETCH_EVERY_SECONDS)
        return response
    return Status(200, feedback)
