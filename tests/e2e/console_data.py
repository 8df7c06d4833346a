"""A console full of awkward, realistic rows for the layout and accessibility browser tests:
keys of every kind and state, long names with and without spaces, long emails."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from accounts.access import Actor
from accounts.models import Role, ServiceAccount
from apikeys.models import ApiKey, KeyKind, KeyStatus, LeakSource
from apikeys.permissions import READ_ONLY, ordered
from keyportal_cli.tokens import generate_token, token_digest, token_preview
from projects.models import ApiKeyAccess, App, Project
from projects.secrets import secret_set
from tests.conftest import Org
from tests.factories import (
    AppFactory,
    EnvironmentFactory,
    MembershipFactory,
    ProjectFactory,
    ServiceAccountFactory,
    TargetFactory,
    TeamFactory,
    UserFactory,
)

# One unbreakable run of 100 characters (the longest name allowed) and a long name with spaces.
LONG_WORD_NAME = "production_deploy_pipeline_storefront_checkout_billing_" + "x" * 45
LONG_SPACED_NAME = "Nightly export of the customer database to cold storage in eu-west-1"


@dataclass
class Console:
    """What `build_console` made, for tests to open and look for."""

    org: Org
    project: Project
    account: ServiceAccount
    apps: list[App]
    keys: list[ApiKey] = field(default_factory=list)


def make_key(org: Org, kind: str, name: str, *, owner=None, **fields) -> ApiKey:
    """Insert one key directly (its plaintext thrown away), as `apikeys.demo` does."""
    token = generate_token(kind)
    return ApiKey.objects.create(
        organization=org.organization,
        kind=kind,
        owner_user=owner if kind == KeyKind.USER else None,
        owner_service_account=owner if kind == KeyKind.SERVICE_ACCOUNT else None,
        owner_project=owner if kind == KeyKind.PROJECT else None,
        created_by=org.owner,
        name=name,
        digest=token_digest(token),
        preview=token_preview(token),
        permissions=ordered(READ_ONLY),
        **fields,
    )


def build_console(org: Org) -> Console:
    """Fill the `org` fixture's organization with people, projects, apps, accounts and keys."""
    now = timezone.now()
    organization = org.organization
    org.owner.display_name = "Ada Lovelace-Montgomery"
    org.owner.email = "ada.lovelace-montgomery@engineering.acme-corporation.example"
    org.owner.save()
    for i, name in enumerate(["Grace Hopper", "Margaret Hamilton", "Katherine Johnson"]):
        user = UserFactory(
            display_name=name, email=f"{name.lower().replace(' ', '.')}.{i}@acme.example"
        )
        MembershipFactory(organization=organization, user=user, role=Role.MEMBER)

    team = TeamFactory(organization=organization, name="Platform engineering")
    project = ProjectFactory(team=team, name="Payments")
    ProjectFactory(team=team, name="Customer data platform and analytics warehouse")
    target = TargetFactory(project=project, name="web")
    environment = EnvironmentFactory(target=target, name="production")
    secret_set(actor=Actor(user=org.owner), environment=environment, name="DATABASE_URL", value="x")
    apps = [
        AppFactory(
            project=project,
            name="Storefront",
            slug="storefront",
            api_key_access=ApiKeyAccess.CAN_EDIT,
        ),
        AppFactory(
            project=project,
            name="Internal administration dashboard for support agents",
            slug="internal-administration-dashboard-for-support-agents",
        ),
    ]
    account = ServiceAccountFactory(
        organization=organization, name="deploy-bot", created_by=org.owner
    )
    long_account = ServiceAccountFactory(
        organization=organization,
        name="nightly-warehouse-export-and-reconciliation",
        created_by=org.owner,
    )
    ServiceAccountFactory(
        organization=organization, name="retired-bot", is_active=False, created_by=org.owner
    )

    console = Console(org=org, project=project, account=account, apps=apps)
    owners = [
        (KeyKind.USER, org.owner),
        (KeyKind.USER, org.member),
        (KeyKind.SERVICE_ACCOUNT, account),
        (KeyKind.SERVICE_ACCOUNT, long_account),
        (KeyKind.PROJECT, project),
        (KeyKind.ORGANIZATION, None),
    ]
    states = [
        {"expires_at": now + timedelta(days=20), "last_used_at": now - timedelta(minutes=5)},
        {"expires_at": now + timedelta(days=3), "status": KeyStatus.DISABLED},
        {"expires_at": now - timedelta(days=2), "last_used_at": now - timedelta(days=40)},
        # Outlives the personal-key policy (30 days) for personal keys: "Exceeds policy".
        {"expires_at": now + timedelta(days=365), "last_used_at": now - timedelta(hours=3)},
        {"revoked_at": now - timedelta(days=1), "revoked_by": org.owner},
    ]
    names = [LONG_WORD_NAME, LONG_SPACED_NAME, "ci", "terraform-cloud-runner", "laptop cli"]
    for i, (kind, owner) in enumerate(owners):
        # Each owner gets each name once, in another state than the owner before.
        for j, state in enumerate(states):
            key = make_key(
                org,
                kind,
                names[(i + j) % len(names)],
                owner=owner,
                created_at=now - timedelta(days=i * 5 + j),
                **state,
            )
            console.keys.append(key)
    # An organization key reported leaked (listed when the table is filtered for it) and one
    # nobody has used since it was made, 130 days ago: "Stale".
    console.keys.append(
        make_key(
            org,
            KeyKind.ORGANIZATION,
            "github-actions-release",
            created_at=now - timedelta(days=60),
            revoked_at=now - timedelta(hours=2),
            compromised_at=now - timedelta(hours=2),
            compromised_source=LeakSource.GITHUB,
            compromise_report={
                "url": f"https://github.com/acme/storefront/blob/{'9f' * 20}/.github/workflows/release.env",
                "source": "content",
                "repository": "acme/storefront",
                "file": ".github/workflows/release.env",
                "commit": "9f" * 20,
            },
        )
    )
    console.keys.append(
        make_key(
            org, KeyKind.ORGANIZATION, "forgotten importer", created_at=now - timedelta(days=130)
        )
    )
    return console
