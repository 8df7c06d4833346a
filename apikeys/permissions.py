"""The permission catalogue, role ceilings, presets, and how far each permission can be scoped."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Role

# Scope levels, from the widest to the narrowest resource.
LEVELS = ("team", "project", "target", "environment")


@dataclass(frozen=True)
class Permission:
    id: str
    label: str
    # The narrowest level this permission can be scoped to; None: organization-wide only.
    depth: str | None

    @property
    def scope_levels(self) -> tuple[str, ...]:
        """Return the levels a scope of this permission may name, widest first."""
        if self.depth is None:
            return ()
        return LEVELS[: LEVELS.index(self.depth) + 1]


@dataclass(frozen=True)
class Group:
    id: str
    label: str
    permissions: tuple[Permission, ...]


def _crud(area: str, label: str, depth: str) -> tuple[Permission, ...]:
    # Create permissions are never scopeable: what they make does not exist yet.
    return (
        Permission(f"{area}:create", f"Create {label}", None),
        Permission(f"{area}:read", f"Read {label}", depth),
        Permission(f"{area}:update", f"Update {label}", depth),
        Permission(f"{area}:delete", f"Delete {label}", depth),
    )


CATALOGUE: tuple[Group, ...] = (
    Group(
        "secrets",
        "Secrets",
        (
            Permission("secrets:read", "List secret names", "environment"),
            Permission("secrets:write", "Set secret values", "environment"),
            Permission("secrets:decrypt", "Read secret values", "environment"),
            Permission("secrets:history", "Read secret versions", "environment"),
            Permission("secrets:restore", "Restore a secret version", "environment"),
            Permission("secrets:purge", "Purge secrets", "environment"),
            Permission("encryption-keys:read", "Read encryption key metadata", "environment"),
            Permission("encryption-keys:rotate", "Rotate encryption keys", "environment"),
        ),
    ),
    Group("projects", "Projects", _crud("projects", "projects", "project")),
    Group("targets", "Targets", _crud("targets", "targets", "target")),
    Group("environments", "Environments", _crud("environments", "environments", "environment")),
    Group("teams", "Teams", _crud("teams", "teams", "team")),
    Group(
        "organization",
        "Organization",
        (
            Permission("organization:read", "Read the organization", None),
            Permission("organization:update", "Update the organization", None),
        ),
    ),
    Group(
        "members",
        "Members",
        (
            Permission("members:read", "Read members", None),
            Permission("members:update", "Change members' roles", None),
            Permission("members:delete", "Remove members", None),
        ),
    ),
    Group(
        "apps",
        "Apps",
        (
            Permission("apps:read", "Read apps", "project"),
            Permission("apps:publish", "Publish app versions", "project"),
            Permission("apps:update", "Update app settings", "project"),
        ),
    ),
    Group("api-keys", "API keys", (Permission("api-keys:manage", "Manage API keys", None),)),
)

PERMISSIONS: dict[str, Permission] = {p.id: p for g in CATALOGUE for p in g.permissions}
GROUP_OF: dict[str, str] = {p.id: g.id for g in CATALOGUE for p in g.permissions}
ALL = frozenset(PERMISSIONS)
READ_ONLY = frozenset(
    {"secrets:read", "projects:read", "targets:read", "environments:read", "organization:read"}
)
# What a project key may hold: every permission that can be narrowed to a project.
PROJECT_SCOPED = frozenset(pid for pid, p in PERMISSIONS.items() if "project" in p.scope_levels)

# What each role holds: a key never exceeds the role of the person who makes or owns it.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: ALL,
    Role.ADMIN: ALL - {"organization:update", "members:update", "members:delete"},
    # Members hold api-keys:manage for their own personal keys (DESIGN rule 5), so that
    # `keyportal keys create` works for everyone; the rules decide which keys it reaches.
    Role.MEMBER: READ_ONLY
    | {"teams:read", "members:read", "apps:read", "secrets:history", "api-keys:manage"},
}


def ordered(permissions: set[str] | frozenset[str]) -> list[str]:
    """Return permission ids in catalogue order."""
    return [pid for pid in PERMISSIONS if pid in permissions]
