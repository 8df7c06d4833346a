"""Request helpers shared by the console and the API."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


@lru_cache(maxsize=4096)
def _valid_ip(value: str) -> str:
    # Parsed once per distinct text: the same few clients call again and again.
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return ""


def client_ip(request: HttpRequest) -> str:
    """Return the client's address, trusting only the configured number of proxies, or ""."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        forwarded = [part for part in forwarded if part]
        # Each trusted proxy appends the address it saw; anything further left is client-supplied.
        if len(forwarded) >= hops:
            return _valid_ip(forwarded[-hops])
    # A unix-socket deployment, or the test client's force_login, has no address at all.
    return _valid_ip(request.META.get("REMOTE_ADDR", ""))


def login_username_for_axes(request: HttpRequest, credentials: dict | None) -> str:
    """Return the email a login attempt names, lower-cased so its case cannot dodge the lockout."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    return username.strip().lower()


def client_ip_for_axes(request: HttpRequest) -> str | None:
    """Return the client's address for django-axes' lockout counters (None when unknown)."""
    return client_ip(request) or None


def back_to(request: HttpRequest, *, default: str) -> str:
    """Return the page of this organization the form says it came from (a list with its
    filters, say), or `default`: never another site nor another organization."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    prefix = f"/o/{request.organization.slug}/"
    if target.startswith(prefix) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ):
        return target
    return default
