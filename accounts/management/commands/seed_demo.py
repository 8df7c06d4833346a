"""Load the demo data: Acme with three people, Globex beside it, teams, projects, apps and a
few secrets."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.access import Actor
from accounts.models import Membership, Organization, Role, ServiceAccount, Team, User
from apikeys.demo import seed_keys
from projects.models import ApiKeyAccess, App, Environment, Project, Secret, Target
from projects.secrets import secret_set

# Demo logins: printed on purpose, for a local demo only.
DEMO_PEOPLE = [
    ("acme", "owner@acme.test", "Olivia Owner", Role.OWNER, "demo-owner-1234"),
    ("acme", "admin@acme.test", "Adam Admin", Role.ADMIN, "demo-admin-1234"),
    ("acme", "member@acme.test", "Mia Member", Role.MEMBER, "demo-member-1234"),
    ("globex", "owner@globex.test", "Gary Globex", Role.OWNER, "demo-globex-1234"),
]
DEMO_TREE = {
    "acme": {
        "Platform": {"Payments": ["payments-api"], "Storefront": ["storefront", "admin-panel"]},
        "Data": {"Analytics": ["reports"]},
    },
    "globex": {"Research": {"Hammock": ["hammock-app"]}},
}
APP_NAMES = {
    "payments-api": "Payments API",
    "storefront": "Storefront",
    "admin-panel": "Admin panel",
    "reports": "Reports",
    "hammock-app": "Hammock",
}
TARGETS = ["web", "worker"]
ENVIRONMENTS = ["development", "staging", "production"]
SHARED_APPS = {"storefront", "payments-api"}
# Made-up values, so the secrets pages and `keyportal secrets` have something to show.
# (project, target, environment) of Acme -> {name: value}
DEMO_SECRETS = {
    ("Payments", "web", "development"): {
        "DATABASE_URL": "postgres://payments@localhost:5432/payments_dev",
        "LOG_LEVEL": "debug",
    },
    ("Payments", "web", "production"): {
        "DATABASE_URL": "postgres://payments@db.internal:5432/payments",
        "LOG_LEVEL": "info",
    },
}
# The history says who set the demo secrets: this command, as create_api_key names itself.
SEEDER = Actor.operator("operator (manage.py seed_demo)")


class Command(BaseCommand):
    help = "Create (or complete) the demo organizations, people and projects. Safe to run again."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--keys",
            type=int,
            default=0,
            help="also add this many API keys to Acme (bulk inserts, for scale tests)",
        )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            orgs = {
                "acme": Organization.objects.get_or_create(slug="acme", defaults={"name": "Acme"})[
                    0
                ],
                "globex": Organization.objects.get_or_create(
                    slug="globex", defaults={"name": "Globex"}
                )[0],
            }
            for slug, email, name, role, password in DEMO_PEOPLE:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User.objects.create_user(
                        email=email, password=password, display_name=name
                    )
                Membership.objects.get_or_create(
                    user=user, organization=orgs[slug], defaults={"role": role}
                )
            owner = User.objects.get(email="owner@acme.test")
            ServiceAccount.objects.get_or_create(
                organization=orgs["acme"],
                name="deploy-bot",
                defaults={
                    "identifier": "deploy-bot@acme.serviceaccounts.keyportal",
                    "description": "Deploys from CI.",
                    "created_by": owner,
                },
            )
            for slug, teams in DEMO_TREE.items():
                self._seed_tree(orgs[slug], teams)
            self._seed_secrets(orgs["acme"], SEEDER)
        if options["keys"] > 0:
            added = seed_keys(organization=orgs["acme"], count=options["keys"], created_by=owner)
            self.stdout.write(f"Added {added} API keys to Acme.")
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Log in with:"))
        for slug, email, _name, role, password in DEMO_PEOPLE:
            self.stdout.write(f"  {email:<20} {password:<18} {role} of {orgs[slug].name}")

    def _seed_tree(self, organization: Organization, teams: dict) -> None:
        for team_name, projects in teams.items():
            team = Team.objects.get_or_create(organization=organization, name=team_name)[0]
            for project_name, apps in projects.items():
                project = Project.objects.get_or_create(
                    organization=organization, name=project_name, defaults={"team": team}
                )[0]
                for target_name in TARGETS:
                    target = Target.objects.get_or_create(project=project, name=target_name)[0]
                    for env_name in ENVIRONMENTS:
                        Environment.objects.get_or_create(target=target, name=env_name)
                for app_slug in apps:
                    access = (
                        ApiKeyAccess.CAN_EDIT if app_slug in SHARED_APPS else ApiKeyAccess.NO_ACCESS
                    )
                    App.objects.get_or_create(
                        organization=organization,
                        slug=app_slug,
                        defaults={
                            "project": project,
                            "name": APP_NAMES[app_slug],
                            "api_key_access": access,
                        },
                    )

    def _seed_secrets(self, organization: Organization, actor: Actor) -> None:
        """Set each demo secret that does not exist yet (a new version each time otherwise)."""
        for (project, target, environment), values in DEMO_SECRETS.items():
            env = Environment.objects.get(
                target__project__organization=organization,
                target__project__name=project,
                target__name=target,
                name=environment,
            )
            for name, value in values.items():
                if not Secret.objects.filter(environment=env, name=name).exists():
                    secret_set(actor=actor, environment=env, name=name, value=value)
