"""Scopes: which resources a permission may be narrowed to, checked against the organization."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apikeys.scopes import (
    clean_scopes,
    describe_scopes,
    resource_label,
    scope_choices,
    scopes_from_groups,
)
from tests.apikeys.conftest import build_tree
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


def refused(scopes, *, permissions, organization, project=None) -> str:
    with pytest.raises(ValidationError) as raised:
        clean_scopes(scopes, permissions=permissions, organization=organization, project=project)
    return " ".join(raised.value.message_dict["scopes"])


def test_scope_to_each_level_of_the_organization(org, tree):
    """A secret permission may be scoped to a team, project, target or environment of the org."""
    organization = org.organization
    for level, obj in (
        ("team", tree.project.team),
        ("project", tree.project),
        ("target", tree.target),
        ("environment", tree.environment),
    ):
        scopes = {"secrets:read": [{"type": level, "id": obj.pk}]}
        assert (
            clean_scopes(scopes, permissions=["secrets:read"], organization=organization) == scopes
        )


def test_no_scopes_means_the_whole_organization(org):
    """Empty scopes are valid and stay empty."""
    assert clean_scopes({}, permissions=["secrets:read"], organization=org.organization) == {}


def test_scope_to_another_organizations_project_is_refused(org, foreign_tree):
    """A scope naming another organization's project, target or environment is refused."""
    for level, obj in (
        ("project", foreign_tree.project),
        ("target", foreign_tree.target),
        ("environment", foreign_tree.environment),
        ("team", foreign_tree.project.team),
    ):
        message = refused(
            {"secrets:read": [{"type": level, "id": obj.pk}]},
            permissions=["secrets:read"],
            organization=org.organization,
        )
        assert message == f"There is no such {level} in this organization."


def test_project_permission_cannot_be_scoped_to_an_environment(org, tree):
    """A project permission goes down to a project, not to a target or environment."""
    message = refused(
        {"projects:read": [{"type": "environment", "id": tree.environment.pk}]},
        permissions=["projects:read"],
        organization=org.organization,
    )
    assert message == "projects:read can be scoped to: team, project."


@pytest.mark.parametrize(
    "permission_id", ["projects:create", "organization:read", "members:delete", "api-keys:manage"]
)
def test_unscopeable_permissions_are_refused(org, tree, permission_id):
    """Create and organization-wide permissions cannot be scoped at all."""
    message = refused(
        {permission_id: [{"type": "project", "id": tree.project.pk}]},
        permissions=[permission_id],
        organization=org.organization,
    )
    assert message == (f"{permission_id} cannot be scoped: it applies to the whole organization.")


def test_scope_for_a_permission_the_key_does_not_hold_is_refused(org, tree):
    """A scope must narrow one of the key's own permissions."""
    message = refused(
        {"secrets:write": [{"type": "project", "id": tree.project.pk}]},
        permissions=["secrets:read"],
        organization=org.organization,
    )
    assert "is not one of this key's permissions" in message


@pytest.mark.parametrize(
    "scopes",
    [
        [],
        {"secrets:read": []},
        {"secrets:read": "project:1"},
        {"secrets:read": ["project:1"]},
        {"secrets:read": [{"type": "galaxy", "id": 1}]},
        {"secrets:read": [{"type": "project", "id": "1"}]},
        {"secrets:read": [{"type": "project", "id": 999999}]},
        {"nonsense:read": [{"type": "project", "id": 1}]},
    ],
)
def test_malformed_scopes_are_refused(org, tree, scopes):
    """Anything but a map of held permissions to known resource references is refused."""
    with pytest.raises(ValidationError):
        clean_scopes(scopes, permissions=["secrets:read"], organization=org.organization)


def test_project_key_scopes_stay_inside_its_project(org, tree):
    """A project key's scope may name its own project, targets and environments, nothing else."""
    other = build_tree(org, name="Billing")
    project = tree.project
    inside = {"secrets:read": [{"type": "environment", "id": tree.environment.pk}]}

    assert (
        clean_scopes(
            inside, permissions=["secrets:read"], organization=org.organization, project=project
        )
        == inside
    )
    for level, obj in (
        ("project", other.project),
        ("environment", other.environment),
        ("team", project.team),
    ):
        message = refused(
            {"secrets:read": [{"type": level, "id": obj.pk}]},
            permissions=["secrets:read"],
            organization=org.organization,
            project=project,
        )
        assert message == f"There is no such {level} in this organization."


def test_scopes_from_groups_applies_one_scope_to_the_group(tree):
    """The console's scope per group narrows every held permission of the group it fits."""
    project = f"project:{tree.project.pk}"
    selected = {"secrets": project, "projects": project, "teams": ""}
    permissions = ["secrets:read", "secrets:write", "projects:create", "projects:read"]

    scopes = scopes_from_groups(selected, permissions)

    ref = [{"type": "project", "id": tree.project.pk}]
    assert scopes == {"secrets:read": ref, "secrets:write": ref, "projects:read": ref}


def test_scopes_from_groups_skips_levels_a_permission_cannot_reach(tree):
    """An environment scope on the projects group narrows nothing it cannot reach."""
    selected = {"projects": f"environment:{tree.environment.pk}"}

    assert scopes_from_groups(selected, ["projects:read"]) == {}


def test_scope_choices_list_the_organizations_resources(org, tree, foreign_tree):
    """Choices per group name only the organization's resources, as deep as the group goes."""
    choices = scope_choices(org.organization)

    assert "organization" not in choices
    assert "members" not in choices
    assert "api-keys" not in choices
    secrets = dict(choices["secrets"])
    assert (
        secrets[f"environment:{tree.environment.pk}"] == "Environment Payments / web / production"
    )
    assert secrets[f"target:{tree.target.pk}"] == "Target Payments / web"
    assert secrets[f"project:{tree.project.pk}"] == "Project Payments"
    assert f"team:{tree.project.team.pk}" in secrets
    assert not any(level.startswith(("target", "environment")) for level in dict(choices["apps"]))
    everything = " ".join(label for group in choices.values() for _value, label in group)
    assert foreign_tree.project.name not in everything


def test_project_scope_choices_hold_only_the_project(org, tree):
    """For a project key, choices are the project, its targets and environments; no team."""
    build_tree(org, name="Billing")
    TeamFactory(organization=org.organization, name="Ops")

    values = [value for value, _label in scope_choices(org.organization, tree.project)["secrets"]]

    assert values == [
        f"project:{tree.project.pk}",
        f"target:{tree.target.pk}",
        f"environment:{tree.environment.pk}",
    ]


def test_describe_scopes_reads_names_and_survives_deletion(org, tree):
    """Scopes read as resource labels; a deleted resource reads "(deleted)"."""
    scopes = {
        "secrets:read": [{"type": "environment", "id": tree.environment.pk}],
        "projects:read": [{"type": "project", "id": 987654}],
    }

    assert describe_scopes(scopes, org.organization) == {
        "secrets:read": ["Environment Payments / web / production"],
        "projects:read": ["project (deleted)"],
    }
    assert resource_label("project", tree.project) == "Project Payments"
