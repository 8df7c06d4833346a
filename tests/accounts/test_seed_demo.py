"""The demo data command: complete, and safe to run again."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import (
    AuditEvent,
    Membership,
    Organization,
    Origin,
    Role,
    ServiceAccount,
    User,
)
from projects.models import ApiKeyAccess, App, Environment, Project, Secret, SecretVersion, Target
from projects.secrets import secret_decrypt
from tests.accounts.helpers import row_counts

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_is_idempotent():
    """Running the command twice leaves the same rows as running it once."""
    seed()
    first = row_counts()
    seed()
    assert row_counts() == first
    assert first["Organization"] == 2


def test_seed_demo_creates_acme_with_three_roles():
    """Acme has an owner, an admin and a member who can log in with the printed passwords."""
    output = seed()
    acme = Organization.objects.get(slug="acme")
    roles = dict(Membership.objects.filter(organization=acme).values_list("user__email", "role"))
    assert roles == {
        "owner@acme.test": Role.OWNER,
        "admin@acme.test": Role.ADMIN,
        "member@acme.test": Role.MEMBER,
    }
    assert User.objects.get(email="owner@acme.test").check_password("demo-owner-1234")
    assert "owner@acme.test" in output


def test_seed_demo_creates_globex_beside_acme():
    """Globex exists with its own owner and nothing shared with Acme."""
    seed()
    globex = Organization.objects.get(slug="globex")
    assert globex.name == "Globex"
    assert Membership.objects.get(organization=globex).user.email == "owner@globex.test"
    assert not Project.objects.filter(organization=globex, name="Payments").exists()


def test_seed_demo_creates_deploy_bot():
    """Acme has the deploy-bot service account with its email-like identifier."""
    seed()
    bot = ServiceAccount.objects.get(name="deploy-bot")
    assert bot.organization.slug == "acme"
    assert bot.identifier == "deploy-bot@acme.serviceaccounts.keyportal"
    assert bot.is_active


def test_seed_demo_gives_every_project_targets_and_environments():
    """Every project has targets web and worker, each with development, staging and production."""
    seed()
    assert Project.objects.count() == 4
    for project in Project.objects.all():
        assert sorted(project.targets.values_list("name", flat=True)) == ["web", "worker"]
    for target in Target.objects.all():
        assert sorted(target.environments.values_list("name", flat=True)) == [
            "development",
            "production",
            "staging",
        ]
    assert Environment.objects.count() == 4 * 2 * 3


def test_seed_demo_apps_and_sharing():
    """Demo apps are shared with keys only where intended; the rest keep "No access"."""
    seed()
    access = dict(App.objects.values_list("slug", "api_key_access"))
    assert access["storefront"] == ApiKeyAccess.CAN_EDIT
    assert access["payments-api"] == ApiKeyAccess.CAN_EDIT
    assert access["admin-panel"] == ApiKeyAccess.NO_ACCESS
    assert access["reports"] == ApiKeyAccess.NO_ACCESS
    assert App.objects.get(slug="payments-api").name == "Payments API"


def test_seed_demo_sets_a_few_secrets_once():
    """Payments' web environments hold demo secrets, encrypted, set once however often it runs."""
    seed()
    seed()
    secrets = Secret.objects.filter(environment__target__project__name="Payments")
    assert sorted(
        secrets.values_list("environment__name", "name").order_by("environment__name", "name")
    ) == [
        ("development", "DATABASE_URL"),
        ("development", "LOG_LEVEL"),
        ("production", "DATABASE_URL"),
        ("production", "LOG_LEVEL"),
    ]
    assert SecretVersion.objects.count() == 4
    version = SecretVersion.objects.get(
        secret__name="LOG_LEVEL", secret__environment__name="production"
    )
    assert secret_decrypt(version=version) == "info"
    assert version.origin == Origin.CLI
    event = AuditEvent.objects.filter(action="secret.set").latest("pk")
    assert (event.actor_user, event.actor_label, event.origin) == (
        None,
        "operator (manage.py seed_demo)",
        Origin.CLI,
    )
    assert not Secret.objects.filter(environment__target__project__organization__slug="globex")


def test_seed_demo_completes_partial_data():
    """Run after part of the data was removed, the command puts it back without duplicates."""
    seed()
    full = row_counts()
    Target.objects.filter(name="worker", project__name="Payments").delete()
    User.objects.filter(email="member@acme.test").delete()
    seed()
    assert row_counts() == full
