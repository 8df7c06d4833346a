"""Scopes: narrowing a permission to a team, project, target or environment of the organization."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Model

from accounts.models import Organization, Team
from apikeys.permissions import CATALOGUE, LEVELS, PERMISSIONS, Group
from projects.models import Environment, Project, Target


def _resources(organization: Organization, project: Project | None) -> dict[str, list[Model]]:
    """Return every resource a scope may name, by level, within the organization (or project)."""
    if project is not None:
        return {
            "team": [],
            "project": [project],
            "target": list(Target.objects.filter(project=project)),
            "environment": list(
                Environment.objects.filter(target__project=project).select_related("target")
            ),
        }
    return {
        "team": list(Team.objects.filter(organization=organization)),
        "project": list(Project.objects.filter(organization=organization)),
        "target": list(
            Target.objects.filter(project__organization=organization).select_related("project")
        ),
        "environment": list(
            Environment.objects.filter(target__project__organization=organization).select_related(
                "target__project"
            )
        ),
    }


def resource_label(level: str, obj: Model) -> str:
    """Return how a scope reads: "Project Payments", "Environment Payments / web / production"."""
    match level:
        case "target":
            path = f"{obj.project.name} / {obj.name}"
        case "environment":
            path = f"{obj.target.project.name} / {obj.target.name} / {obj.name}"
        case _:
            path = obj.name
    return f"{level.title()} {path}"


def group_depth(group: Group) -> str | None:
    """Return the narrowest level any permission of the group can be scoped to."""
    depths = [p.depth for p in group.permissions if p.depth]
    return max(depths, key=LEVELS.index) if depths else None


def scope_choices(
    organization: Organization, project: Project | None = None
) -> dict[str, list[tuple[str, str]]]:
    """Return, per scopeable group, the (value, label) choices of resources it may be scoped to."""
    resources = _resources(organization, project)
    choices = {}
    for group in CATALOGUE:
        depth = group_depth(group)
        if depth is None:
            continue
        levels = LEVELS[: LEVELS.index(depth) + 1]
        choices[group.id] = [
            (f"{level}:{obj.pk}", resource_label(level, obj))
            for level in levels
            for obj in resources[level]
        ]
    return choices


def clean_scopes(
    scopes: dict[str, list[dict]],
    *,
    permissions: list[str],
    organization: Organization,
    project: Project | None = None,
) -> dict[str, list[dict]]:
    """Return scopes checked against the catalogue and the organization; raise ValidationError."""
    if not isinstance(scopes, dict):
        raise ValidationError({"scopes": "Scopes must map permissions to resources."})
    resources = _resources(organization, project)
    known = {level: {obj.pk for obj in objs} for level, objs in resources.items()}
    cleaned: dict[str, list[dict]] = {}
    for permission_id, refs in scopes.items():
        permission = PERMISSIONS.get(permission_id)
        if permission is None or permission_id not in permissions:
            raise ValidationError(
                {"scopes": f"“{permission_id}” is not one of this key's permissions."}
            )
        if not permission.scope_levels:
            message = f"{permission_id} cannot be scoped: it applies to the whole organization."
            raise ValidationError({"scopes": message})
        if not isinstance(refs, list) or not refs:
            raise ValidationError({"scopes": f"Name at least one resource for {permission_id}."})
        for ref in refs:
            level, pk = (ref.get("type"), ref.get("id")) if isinstance(ref, dict) else (None, None)
            if level not in permission.scope_levels:
                allowed = ", ".join(permission.scope_levels)
                raise ValidationError({"scopes": f"{permission_id} can be scoped to: {allowed}."})
            if pk not in known[level]:
                raise ValidationError({"scopes": f"There is no such {level} in this organization."})
        cleaned[permission_id] = [{"type": r["type"], "id": r["id"]} for r in refs]
    return cleaned


def scopes_from_groups(selected: dict[str, str], permissions: list[str]) -> dict[str, list[dict]]:
    """Turn the console's one scope per group ("project:3") into per-permission scopes."""
    scopes: dict[str, list[dict]] = {}
    for group in CATALOGUE:
        value = selected.get(group.id) or ""
        if ":" not in value:
            continue
        level, _, pk = value.partition(":")
        ref = {"type": level, "id": int(pk) if pk.isdigit() else pk}
        for permission in group.permissions:
            if permission.id in permissions and level in permission.scope_levels:
                scopes[permission.id] = [ref]
    return scopes


def describe_scopes(
    scopes: dict[str, list[dict]], organization: Organization
) -> dict[str, list[str]]:
    """Return readable scopes per permission, for the detail page."""
    labels = {
        f"{level}:{obj.pk}": resource_label(level, obj)
        for level, objs in _resources(organization, None).items()
        for obj in objs
    }
    return {
        pid: [labels.get(f"{r['type']}:{r['id']}", f"{r['type']} (deleted)") for r in refs]
        for pid, refs in scopes.items()
    }
