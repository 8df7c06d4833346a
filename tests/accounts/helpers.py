"""Small helpers shared by the accounts and projects tests."""

from __future__ import annotations

import html
import json

from django.db import models
from django.http import HttpResponse

from accounts.models import (
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    ServiceAccount,
    Team,
    User,
)
from projects.models import App, Environment, Project, Target

TRACKED_MODELS: tuple[type[models.Model], ...] = (
    User,
    Organization,
    Membership,
    Team,
    Invitation,
    ServiceAccount,
    AuditEvent,
    Project,
    Target,
    Environment,
    App,
)


def page_text(response: HttpResponse) -> str:
    """Return the response body with HTML entities decoded, for plain-text assertions."""
    return html.unescape(response.content.decode())


def row_counts() -> dict[str, int]:
    """Return how many rows every model a form could write holds, to prove nothing was saved."""
    return {model.__name__: model.objects.count() for model in TRACKED_MODELS}


def is_fragment(response: HttpResponse) -> bool:
    """Return True when the response is a fragment rather than a whole page."""
    body = response.content.decode().lower()
    return "<html" not in body and "<!doctype" not in body


def toasts(response: HttpResponse) -> list[str]:
    """Return the texts of the messages an htmx response carries in its HX-Trigger header."""
    triggers = json.loads(response.get("HX-Trigger", "{}") or "{}")
    return [item["text"] for item in triggers.get("messages", [])]
