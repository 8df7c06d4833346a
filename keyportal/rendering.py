"""Render a console page, or only its fragment for an htmx request."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def render_page(
    request: HttpRequest,
    template: str,
    context: dict,
    *,
    partial: str,
    status: int | None = None,
    targets: tuple[str, ...] = (),
) -> HttpResponse:
    """Render `template`, or its `partial` alone when htmx (not boosted) asked for it.

    An htmx request whose target is one of `targets` (other partials of the page, such as a
    key table refreshed after a dialog closes) gets that partial instead. Pages with form
    errors answer 422, which the htmx configuration in base.html swaps in.

    Back or forward to a URL htmx pushed, when its history cache misses, asks again with
    `HX-History-Restore-Request`: that gets the whole page, as a 200, since htmx restores only
    a whole page and only a successful one.
    """
    restoring = bool(request.htmx) and request.htmx.history_restore_request
    if request.htmx and not (request.htmx.boosted or restoring):
        if request.htmx.target in targets:
            partial = request.htmx.target
        template = f"{template}#{partial}"
    if status is None:
        status = 422 if any(getattr(f, "errors", None) for f in context.values()) else 200
    response = render(request, template, context, status=200 if restoring else status)
    # The same URL answers a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response
