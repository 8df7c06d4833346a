"""The permission catalogue, presets, role ceilings and how deep each permission scopes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Role
from apikeys.models import KeyKind, KeyPreset
from apikeys.permissions import (
    ALL,
    CATALOGUE,
    GROUP_OF,
    LEVELS,
    PERMISSIONS,
    PROJECT_SCOPED,
    READ_ONLY,
    ROLE_PERMISSIONS,
    ordered,
)
from apikeys.presets import preset_permissions

EXPECTED_CATALOGUE = {
    "secrets": [
        "secrets:read",
        "secrets:write",
        "secrets:decrypt",
        "secrets:history",
        "secrets:restore",
        "secrets:purge",
        "encryption-keys:read",
        "encryption-keys:rotate",
    ],
    "projects": ["projects:create", "projects:read", "projects:update", "projects:delete"],
    "targets": ["targets:create", "targets:read", "targets:update", "targets:delete"],
    "environments": [
        "environments:create",
        "environments:read",
        "environments:update",
        "environments:delete",
    ],
    "teams": ["teams:create", "teams:read", "teams:update", "teams:delete"],
    "organization": ["organization:read", "organization:update"],
    "members": ["members:read", "members:update", "members:delete"],
    "apps": ["apps:read", "apps:publish", "apps:update"],
    "api-keys": ["api-keys:manage"],
}


def test_catalogue_is_exactly_the_designed_one():
    """The groups and their permissions are the ones DESIGN.md lists, in that order."""
    assert {group.id: [p.id for p in group.permissions] for group in CATALOGUE} == (
        EXPECTED_CATALOGUE
    )
    assert [group.id for group in CATALOGUE] == list(EXPECTED_CATALOGUE)


def test_permission_ids_are_unique_and_grouped():
    """Every permission id appears once, and GROUP_OF names its group."""
    ids = [p.id for group in CATALOGUE for p in group.permissions]
    assert len(ids) == len(set(ids)) == len(PERMISSIONS) == len(ALL)
    for group in CATALOGUE:
        for permission in group.permissions:
            assert GROUP_OF[permission.id] == group.id


def test_create_permissions_are_not_scopeable():
    """No create permission can be narrowed: what it makes does not exist yet."""
    creates = [pid for pid in PERMISSIONS if pid.endswith(":create")]
    assert creates == [
        "projects:create",
        "targets:create",
        "environments:create",
        "teams:create",
    ]
    assert all(PERMISSIONS[pid].scope_levels == () for pid in creates)


@pytest.mark.parametrize(
    ("permission_id", "levels"),
    [
        ("secrets:read", ("team", "project", "target", "environment")),
        ("encryption-keys:rotate", ("team", "project", "target", "environment")),
        ("environments:update", ("team", "project", "target", "environment")),
        ("targets:read", ("team", "project", "target")),
        ("projects:delete", ("team", "project")),
        ("apps:publish", ("team", "project")),
        ("teams:read", ("team",)),
        ("organization:read", ()),
        ("members:delete", ()),
        ("api-keys:manage", ()),
    ],
)
def test_scope_depth_follows_the_resource(permission_id, levels):
    """A permission scopes down the hierarchy as far as its resource goes, and no further."""
    assert PERMISSIONS[permission_id].scope_levels == levels


def test_levels_run_from_widest_to_narrowest():
    """Scope levels are ordered team, project, target, environment."""
    assert LEVELS == ("team", "project", "target", "environment")


def test_read_only_preset():
    """Read-only reads secrets, projects, targets, environments and the organization."""
    assert KeyPreset.READ_ONLY.label == "Read-only"
    permissions = preset_permissions(KeyPreset.READ_ONLY, KeyKind.ORGANIZATION, frozenset())
    assert (
        permissions
        == READ_ONLY
        == {
            "secrets:read",
            "projects:read",
            "targets:read",
            "environments:read",
            "organization:read",
        }
    )
    assert not any(pid.endswith((":write", ":update", ":delete", ":create")) for pid in READ_ONLY)


def test_allow_all_preset():
    """Allow all is everything the maker holds; for an owner, every permission."""
    assert KeyPreset.ALL.label == "Allow all"
    held = ROLE_PERMISSIONS[Role.OWNER]
    assert preset_permissions(KeyPreset.ALL, KeyKind.ORGANIZATION, held) == ALL == set(PERMISSIONS)


def test_this_project_preset():
    """This project is every permission that scopes to a project, and a project key's only
    presets are This project, Read-only (what of it scopes to a project) and Customize."""
    held = ROLE_PERMISSIONS[Role.ADMIN]
    assert preset_permissions(KeyPreset.PROJECT, KeyKind.PROJECT, held) == PROJECT_SCOPED
    assert "projects:create" not in PROJECT_SCOPED and "secrets:read" in PROJECT_SCOPED
    read_only = preset_permissions(KeyPreset.READ_ONLY, KeyKind.PROJECT, held)
    assert read_only == READ_ONLY - {"organization:read"}
    with pytest.raises(ValidationError):
        preset_permissions(KeyPreset.ROLE, KeyKind.PROJECT, held)


def test_owner_holds_everything():
    """An owner may give a key any permission."""
    assert ROLE_PERMISSIONS[Role.OWNER] == ALL


def test_admin_holds_all_but_owner_only_permissions():
    """An admin holds everything except changing the organization and its members."""
    assert ALL - ROLE_PERMISSIONS[Role.ADMIN] == {
        "organization:update",
        "members:update",
        "members:delete",
    }


def test_member_holds_reading_only():
    """A member holds read permissions and api-keys:manage (for their own personal keys,
    DESIGN rule 5), never a write, publish or purge."""
    member = ROLE_PERMISSIONS[Role.MEMBER]
    assert member >= READ_ONLY | {"api-keys:manage"}
    for pid in (
        "secrets:write",
        "secrets:decrypt",
        "secrets:purge",
        "apps:publish",
        "projects:create",
        "members:delete",
    ):
        assert pid not in member


def test_roles_nest():
    """Each role holds everything the role below it holds."""
    assert ROLE_PERMISSIONS[Role.MEMBER] <= ROLE_PERMISSIONS[Role.ADMIN]
    assert ROLE_PERMISSIONS[Role.ADMIN] <= ROLE_PERMISSIONS[Role.OWNER]


def test_ordered_follows_the_catalogue():
    """ordered() returns ids in catalogue order and drops nothing."""
    assert ordered({"api-keys:manage", "secrets:read", "projects:read"}) == [
        "secrets:read",
        "projects:read",
        "api-keys:manage",
    ]
    assert ordered(frozenset()) == []
