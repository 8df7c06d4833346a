"""keyportal's REST API, v1: django-ninja, bearer keys, errors as {"error": {"code", "message"}}."""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from accounts.access import Refused
from apikeys.api.apps import AppNoAccess
from apikeys.api.auth import KeyAuth, RateLimited
from apikeys.reach import Denied
from apikeys.verification import KeyRefused, KeyRejected

log = logging.getLogger(__name__)

api = NinjaAPI(
    title="keyportal API",
    version="1",
    description=(
        "Authenticate with `Authorization: Bearer <key>`. Every endpoint names the catalogue "
        "permission it needs; a key reaches only its organization, within its scopes."
    ),
    auth=KeyAuth(),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def error(request: HttpRequest, status: int, code: str, message: str, **extra) -> HttpResponse:
    """Return the API's error body with `status`."""
    return api.create_response(
        request, {"error": {"code": code, "message": message, **extra}}, status=status
    )


def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Answer a URL under the API that names no operation (an id that is not one included)."""
    return error(request, 404, "not_found", "Not found, or outside this key's reach.")


@api.exception_handler(KeyRejected)
def on_rejected(request, exc: KeyRejected):
    if isinstance(exc, KeyRefused):
        # A valid key its protections refuse: 403 or 429, with the rate-limit fields.
        response = error(request, exc.status, exc.code, exc.message)
        for name, value in exc.headers().items():
            response[name] = value
        return response
    response = error(request, 401, exc.code, exc.message)
    response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc):
    response = error(
        request, 401, "invalid_key", "Send the API key as `Authorization: Bearer <key>`."
    )
    response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


@api.exception_handler(RateLimited)
def on_rate_limited(request, exc: RateLimited):
    response = error(
        request, 429, "rate_limited", f"Too many failed attempts; retry in {exc.retry_after} s."
    )
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(Denied)
def on_denied(request, exc: Denied):
    return error(
        request,
        403,
        "insufficient_scope",
        f"The API key lacks the permission {exc.permission}.",
        permission=exc.permission,
    )


@api.exception_handler(Refused)
def on_refused_by_rules(request, exc: Refused):
    """The rules of DESIGN's "Authority over keys": a hidden key is a 404, anything else 403."""
    if exc.hidden:
        return error(request, 404, "not_found", "Not found, or outside this key's reach.")
    extra = {"permission": exc.permission} if exc.permission else {}
    return error(request, 403, exc.code, exc.message, **extra)


@api.exception_handler(AppNoAccess)
def on_app_no_access(request, exc):
    return error(
        request,
        403,
        "app_no_access",
        "This app's sharing settings give API keys no access; an owner or admin can change them.",
    )


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return error(request, 404, "not_found", "Not found, or outside this key's reach.")


@api.exception_handler(NinjaValidationError)
def on_invalid(request, exc: NinjaValidationError):
    problems = []
    for item in exc.errors:
        where = ".".join(
            str(part) for part in item.get("loc", ()) if part not in ("body", "payload")
        )
        problems.append(
            f"{where}: {item.get('msg', 'invalid')}" if where else item.get("msg", "invalid")
        )
    return error(
        request, 422, "invalid_request", "; ".join(problems) or "The request is not valid."
    )


@api.exception_handler(DjangoValidationError)
def on_refused(request, exc: DjangoValidationError):
    return error(request, 422, "invalid_request", " ".join(exc.messages))


@api.exception_handler(DataError)
def on_unstorable(request, exc):
    # A last guard: input the database cannot store (out of range, bad bytes) is the client's
    # error, never a 500. Validation in the schemas should catch it first.
    log.warning("Unstorable API input on %s: %s", request.path, exc)
    return error(request, 422, "invalid_request", "A value is out of range or cannot be stored.")


@api.exception_handler(MultiPartParserError)
@api.exception_handler(BadRequest)
def on_unreadable(request, exc):
    # Django's parsers refuse the body (a multipart without a boundary, a form that is not
    # UTF-8). Without a handler django-ninja re-raises: Django answers its own HTML 400, or,
    # with DEBUG on, django-ninja answers 500.
    return error(request, 400, "bad_request", f"Cannot parse request body: {exc}")


def _log_suspicious(request: HttpRequest, exc: SuspiciousOperation, status: int) -> None:
    # Where and how Django itself logs what it would have answered.
    logging.getLogger(f"django.security.{type(exc).__name__}").error(
        str(exc), extra={"status_code": status, "request": request}
    )


@api.exception_handler(SuspiciousOperation)
def on_suspicious(request, exc):
    # Too many fields or files in a form, among others. Their text can name server settings
    # or paths, so it goes to the log only.
    _log_suspicious(request, exc, 400)
    return error(request, 400, "bad_request", "The request cannot be read.")


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    _log_suspicious(request, exc, 413)
    return error(request, 413, "too_large", "The request body is too large.")


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    codes = {
        400: "bad_request",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        413: "too_large",
    }
    return error(request, exc.status_code, codes.get(exc.status_code, "error"), str(exc))


from apikeys.api import apps, device, hierarchy, keys, leaks, organization  # noqa: E402  (need `api`)
from apikeys.api import secrets as secrets_api  # noqa: E402
from apikeys.device import DeviceError  # noqa: E402


@api.exception_handler(DeviceError)
def on_device_error(request, exc: DeviceError):
    extra = {"interval": exc.interval} if exc.interval else {}
    return error(request, 400, exc.code, exc.message, **extra)


@api.exception_handler(device.CodesLimited)
def on_codes_limited(request, exc):
    response = error(
        request, 429, "rate_limited", "Too many login codes from your address; retry in a minute."
    )
    response["Retry-After"] = "60"
    return response


api.add_router("/", keys.router)
api.add_router("/", organization.router)
api.add_router("/", hierarchy.router)
api.add_router("/", apps.router)
api.add_router("/", secrets_api.router)
# The device login's router is tagged by area here, as the document's other areas are.
api.add_router("/", device.router, tags=["device login"])
api.add_router("/", leaks.router)
