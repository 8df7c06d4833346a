"""Each API operation declares, once, the catalogue permission it needs (Sentry's `scope_map`).

`router.get("/teams", permission="teams:read", ...)`: the key's authentication checks it before
the operation runs, the OpenAPI document states it (in the description and as `x-permission`),
`in_reach` narrows querysets with it, and tests/apikeys/test_api_routes.py holds it against the
table written from DESIGN.md. An operation without a declaration cannot be registered.

The Router also gives each operation what a generated client reads (tests/apikeys/
test_openapi_names.py holds the document to it): an operation id in lowerCamelCase, verb then
noun, from the view function's name (`list_keys` is listKeys); every error status the operation
can answer, with the Error schema and the codes it may carry; and `paginate` answers every list
the same way, a Page of `?limit=&offset=`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, get_args

import ninja
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import register_converter
from ninja.constants import NOT_SET
from ninja.signature import ViewSignature

from apikeys.api.auth import KeyAuth
from apikeys.api.schemas import Error, PageParams
from apikeys.permissions import PERMISSIONS
from apikeys.reach import reachable


class IdConverter:
    """An object id in an API path: `{id:key_id}`. Anything else, a number too big for the
    database's bigint included, matches no route and is a 404 like an id that exists nowhere."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

PUBLIC = "public"  # no key: health, the OpenAPI document, the CLI's login
ANY_KEY = "any key"  # any valid key, whatever it holds (whoami, logout, verify)
EXTENSION = "x-permission"


def _needs(permission: str) -> str:
    if permission == PUBLIC:
        return "No API key needed."
    if permission == ANY_KEY:
        return "Any valid API key."
    return f"Needs the permission `{permission}`."


# What each error status means, with the `error.code`s it carries: the description of every
# error response in the OpenAPI document (docs/api.md has the same table).
ERROR_DESCRIPTIONS = {
    400: "`bad_request`: the body cannot be read (not JSON, a broken multipart form).",
    401: "No valid key: `invalid_key` (none, malformed, unknown, a rotated-out secret), "
    "`key_disabled`, `key_expired`, `key_revoked` or `key_compromised`. Carries "
    '`WWW-Authenticate: Bearer error="invalid_token"`.',
    403: "`insufficient_scope` (the key lacks the permission named in `error.permission`), "
    "`forbidden` (the rules on managing keys refuse the act), `app_no_access` (the app's sharing "
    "gives keys no access), `ip_not_allowed` (outside the key's IP allowlist) or "
    "`usage_exhausted` (the key's usage budget is spent).",
    404: "`not_found`: the object does not exist, belongs to another organization, or is "
    "outside the key's scopes.",
    409: "`conflict`: the request conflicts with the current state.",
    413: "`too_large`: the request body is too large.",
    422: "`invalid_request`: the input is not valid (wrong types, unknown fields, bad names, "
    "values out of range); the message names the field.",
    429: "`rate_limited`: the key's rate limit is reached (with `RateLimit-Policy` and "
    "`RateLimit`), or too many failed attempts from the client's address. Wait `Retry-After` "
    "seconds.",
    503: "`limits_unavailable`: the cache that counts the key's rate limits and budget does not "
    "answer (the key is refused rather than let through uncounted); retry after `Retry-After` "
    "seconds. `/ready` answers `not_ready` when a part it checks is failing.",
}

OPERATION_ID = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*")


def operation_id_of(view_func: Callable) -> str:
    """Return the operation id of a view: list_keys is listKeys (an operation may give its own
    with `operation_id=`)."""
    first, *rest = view_func.__name__.strip("_").split("_")
    return first + "".join(word.capitalize() for word in rest)


def _common_answers(path: str, view_func: Callable, *, keyed: bool) -> dict[int, Any]:
    """Return the errors an operation may answer whatever it does: 401, 403 and 429 from the
    key's authentication and protections, 404 from an object named in its path, 422 from
    validating its input, 400 (unparseable) and 413 (too large) from reading a request body."""
    answers: dict[int, Any] = {401: Error, 403: Error, 429: Error} if keyed else {}
    if "{" in path:
        answers[404] = Error
    sources = {model.__ninja_param_source__ for model in ViewSignature(path, view_func).models}
    if sources:
        answers[422] = Error
    if sources & {"body", "form", "file"}:
        answers |= {400: Error, 413: Error}
    return answers


def _is_error(model: Any) -> bool:
    """Whether an answer is the Error body (alone, or as one of a union's members)."""
    return model is Error or Error in get_args(model)


def _described(statuses: Iterable[int], extra: dict[str, Any] | None) -> dict[str, Any]:
    """Return `extra` (an operation's openapi_extra) with a description for each error status
    it does not describe itself."""
    extra = dict(extra or {})
    responses = {status: dict(answer) for status, answer in extra.get("responses", {}).items()}
    for status in statuses:
        if status in ERROR_DESCRIPTIONS:
            responses.setdefault(status, {}).setdefault("description", ERROR_DESCRIPTIONS[status])
    if responses:
        extra["responses"] = responses
    return extra


class Router(ninja.Router):
    """A ninja Router whose every operation names the permission it needs, and whose OpenAPI
    document lists every status the operation can answer."""

    def api_operation(  # type: ignore[override]
        self,
        methods: list[str],
        path: str,
        *,
        permission: str,
        description: str | None = None,
        openapi_extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        if permission not in (PUBLIC, ANY_KEY) and permission not in PERMISSIONS:
            raise ImproperlyConfigured(f"{path}: unknown permission {permission!r}.")
        if "auth" in kwargs:
            raise ImproperlyConfigured(f"{path}: the permission decides the authentication.")
        needs = _needs(permission)
        checked = None if permission == ANY_KEY else permission
        return super().api_operation(
            methods,
            path,
            auth=None if permission == PUBLIC else KeyAuth(checked),
            description=f"{needs}\n\n{description}" if description else needs,
            openapi_extra={**(openapi_extra or {}), EXTENSION: permission},
            **kwargs,
        )

    def add_api_operation(  # type: ignore[override]
        self,
        path: str,
        methods: list[str],
        view_func: Callable,
        *,
        auth: Any = NOT_SET,
        response: Any = NOT_SET,
        operation_id: str | None = None,
        openapi_extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if response is not NOT_SET and not isinstance(response, dict):
            response = {200: response}
        if isinstance(response, dict):
            common = _common_answers(path, view_func, keyed=auth is not None)
            response = dict(sorted({**common, **response}.items()))
            errors = [status for status, model in response.items() if _is_error(model)]
            openapi_extra = _described(errors, openapi_extra)
        operation_id = operation_id or operation_id_of(view_func)
        if not OPERATION_ID.fullmatch(operation_id):
            raise ImproperlyConfigured(
                f"{path}: the operation id {operation_id!r} is not in lowerCamelCase."
            )
        super().add_api_operation(
            path,
            methods,
            view_func,
            auth=auth,
            response=response,
            operation_id=operation_id,
            openapi_extra=openapi_extra,
            **kwargs,
        )

    def get(self, path: str, **kwargs: Any):  # type: ignore[override]
        return self.api_operation(["GET"], path, **kwargs)

    def post(self, path: str, **kwargs: Any):  # type: ignore[override]
        return self.api_operation(["POST"], path, **kwargs)

    def put(self, path: str, **kwargs: Any):  # type: ignore[override]
        return self.api_operation(["PUT"], path, **kwargs)

    def patch(self, path: str, **kwargs: Any):  # type: ignore[override]
        return self.api_operation(["PATCH"], path, **kwargs)

    def delete(self, path: str, **kwargs: Any):  # type: ignore[override]
        return self.api_operation(["DELETE"], path, **kwargs)


def in_reach(request: HttpRequest, queryset: QuerySet, kind: str) -> QuerySet:
    """Return `queryset` narrowed to what the key reaches with the operation's permission."""
    return reachable(request.auth, request.auth.route_permission, queryset, kind)


def paginate(
    items: QuerySet | list, page: PageParams, render: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """Return the page of `items` that `page` asks for, as every list answers it (Page[T]):
    `{"items", "total", "limit", "offset", "next_offset"}`, each item through `render`.

    A queryset is ordered as it was (or as its model is), then by primary key, so that pages
    neither skip nor repeat rows with equal names. `total` is counted only when the page does
    not tell it: a short page (most lists, most of the time) ends the list, and costs no COUNT.
    """
    if isinstance(items, QuerySet):
        ordering = items.query.order_by or items.model._meta.ordering
        items = items.order_by(*ordering, "pk")
    chunk = list(items[page.offset : page.offset + page.limit])
    end = page.offset + len(chunk)
    if 0 < len(chunk) < page.limit or (page.offset == 0 and not chunk):
        total = end
    else:
        total = items.count() if isinstance(items, QuerySet) else len(items)
    return {
        "items": [render(item) for item in chunk] if render else chunk,
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
        "next_offset": end if end < total else None,
    }
