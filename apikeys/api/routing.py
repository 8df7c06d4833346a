"""Each API operation declares, once, the catalogue permission it needs (Sentry's `scope_map`).

`router.get("/teams", permission="teams:read", ...)`: the key's authentication checks it before
the operation runs, the OpenAPI document states it (in the description and as `x-permission`),
`in_reach` narrows querysets with it, and tests/apikeys/test_api_routes.py holds it against the
table written from DESIGN.md. An operation without a declaration cannot be registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ninja
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import register_converter
from ninja.constants import NOT_SET
from ninja.signature import ViewSignature

from apikeys.api.auth import KeyAuth
from apikeys.api.schemas import Error
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


def _common_answers(path: str, view_func: Callable, *, keyed: bool) -> dict[int, Any]:
    """Return the errors an operation may answer whatever it does: 401 and 429 from the key's
    authentication, 422 from validating its input, 400 (unparseable) and 413 (too large) from
    reading a request body."""
    answers: dict[int, Any] = {401: Error, 429: Error} if keyed else {}
    sources = {model.__ninja_param_source__ for model in ViewSignature(path, view_func).models}
    if sources:
        answers[422] = Error
    if sources & {"body", "form", "file"}:
        answers |= {400: Error, 413: Error}
    return answers


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
        **kwargs: Any,
    ) -> None:
        if isinstance(response, dict):
            common = _common_answers(path, view_func, keyed=auth is not None)
            response = {**common, **response}
        super().add_api_operation(path, methods, view_func, auth=auth, response=response, **kwargs)

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
