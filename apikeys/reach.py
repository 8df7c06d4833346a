"""What a verified key may reach: permission checks and scope filters for API querysets.

Every API read and write goes through `reachable(...)`: the organization's objects, narrowed to
the key's scopes for that permission and, for a project key, to its project. An object outside
that queryset answers 404, exactly like an object that does not exist.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apikeys.models import KeyKind
from apikeys.verification import VerifiedKey

# For each model, the lookup from it to each level of the hierarchy (None: not below that level).
PATHS: dict[str, dict[str, str | None]] = {
    "team": {
        "organization": "organization",
        "team": "id",
        "project": None,
        "target": None,
        "environment": None,
    },
    "project": {
        "organization": "organization",
        "team": "team_id",
        "project": "id",
        "target": None,
        "environment": None,
    },
    "target": {
        "organization": "project__organization",
        "team": "project__team_id",
        "project": "project_id",
        "target": "id",
        "environment": None,
    },
    "environment": {
        "organization": "target__project__organization",
        "team": "target__project__team_id",
        "project": "target__project_id",
        "target": "target_id",
        "environment": "id",
    },
    "secret": {
        "organization": "environment__target__project__organization",
        "team": "environment__target__project__team_id",
        "project": "environment__target__project_id",
        "target": "environment__target_id",
        "environment": "environment_id",
    },
    "app": {
        "organization": "organization",
        "team": "project__team_id",
        "project": "project_id",
        "target": None,
        "environment": None,
    },
}


class Denied(Exception):
    """The key lacks a permission: 403 insufficient_scope."""

    def __init__(self, permission: str):
        super().__init__(permission)
        self.permission = permission


def require(verified: VerifiedKey, permission: str) -> None:
    """Raise Denied unless the key (cut to its owner's role) holds `permission`."""
    if permission not in verified.permissions:
        raise Denied(permission)


def reachable(verified: VerifiedKey, permission: str, queryset: QuerySet, kind: str) -> QuerySet:
    """Return `queryset` narrowed to what the key may reach with `permission` (checked first)."""
    require(verified, permission)
    key = verified.api_key
    paths = PATHS[kind]
    queryset = queryset.filter(**{paths["organization"]: key.organization_id})
    if key.kind == KeyKind.PROJECT:
        if paths["project"] is None:
            return queryset.none()
        queryset = queryset.filter(**{paths["project"]: key.owner_project_id})
    refs = key.scopes.get(permission)
    if refs:
        allowed = Q(pk__in=[])
        for ref in refs:
            path = paths.get(ref["type"])
            if path is not None:
                allowed |= Q(**{path: ref["id"]})
        queryset = queryset.filter(allowed)
    return queryset
