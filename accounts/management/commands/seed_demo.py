"""Load the demo data: Acme with three people, Globex beside it, teams, projects, apps with their
versions, secrets, and a month of history of API keys of every kind (apikeys.demo)."""

from __future__ import annotations

import io
import time
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Membership, Organization, Role, ServiceAccount, Team, User
from accounts.services import membership_change_role, service_account_create
from apikeys.demo import seed_demo_keys, seed_keys
from apikeys.demo_keys import ADDRESSES
from apikeys.demo_story import backdated, bundle
from projects.models import ApiKeyAccess, App, Environment, Project, Secret, Target
from projects.secrets import secret_set
from projects.services import app_publish, app_set_sharing

# Demo logins: printed on purpose, for a local demo only.
DEMO_PEOPLE = [
    ("acme", "owner@acme.test", "Olivia Owner", Role.OWNER, "demo-owner-1234"),
    ("acme", "admin@acme.test", "Adam Admin", Role.ADMIN, "demo-admin-1234"),
    ("acme", "member@acme.test", "Mia Member", Role.MEMBER, "demo-member-1234"),
    ("globex", "owner@globex.test", "Gary Globex", Role.OWNER, "demo-globex-1234"),
]
OWNERS = {"acme": "owner@acme.test", "globex": "owner@globex.test"}
# Days since each person joined; Adam joined as a member and was made an admin later.
JOINED = {"owner@acme.test": 90, "admin@acme.test": 75, "member@acme.test": 40}
PROMOTED = {"admin@acme.test": 58}
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
# The teams, projects, targets, environments and apps were set up this many days ago.
TREE_DAYS_AGO = 85
TARGETS = ["web", "worker"]
ENVIRONMENTS = ["development", "staging", "production"]
SHARED_APPS = {"storefront", "payments-api"}
# (organization, name, description, made by, days ago)
SERVICE_ACCOUNTS = [
    ("acme", "deploy-bot", "Deploys from CI.", "owner@acme.test", 60),
    ("acme", "ci", "Runs the test suites on every pull request.", "admin@acme.test", 55),
]
# Versions published in the console: app -> [(by, days ago)]. The deploy key publishes
# payments-api's later versions through the API (apikeys.demo).
APP_VERSIONS = {
    "storefront": [("owner@acme.test", 40), ("admin@acme.test", 12), ("admin@acme.test", 3)],
    "payments-api": [("admin@acme.test", 30)],
    "reports": [("owner@acme.test", 20)],
    "hammock-app": [("owner@globex.test", 15)],
}
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
SECRETS_SET_DAYS_AGO = 56
# The history says who set the demo secrets: this command, as create_api_key names itself.
SEEDER = Actor.operator("operator (manage.py seed_demo)")


def person(email: str) -> Actor:
    """Return the demo person acting in the console."""
    return Actor(user=User.objects.get(email=email), ip=ADDRESSES[email])


class Command(BaseCommand):
    help = (
        "Create (or complete) the demo organizations, people, projects, apps and API keys. "
        "Safe to run again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--keys",
            type=int,
            default=0,
            help="also add this many API keys to Acme (bulk inserts, for scale tests)",
        )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        self.now = timezone.now()
        with transaction.atomic():
            orgs = {
                slug: Organization.objects.get_or_create(
                    slug=slug, defaults={"name": name, "created_at": self.now - timedelta(90)}
                )[0]
                for slug, name in (("acme", "Acme"), ("globex", "Globex"))
            }
            self._seed_people(orgs)
            for slug, teams in DEMO_TREE.items():
                self._seed_tree(orgs[slug], teams)
            self._seed_service_accounts(orgs)
            self._seed_secrets(orgs["acme"], SEEDER)
            self._seed_app_versions(orgs)
            told = seed_demo_keys(organizations=orgs)
        if told.made:
            seconds = time.monotonic() - started
            self.stdout.write(
                f"Added {told.made} demo API key{pluralize(told.made)} with their history "
                f"({seconds:.1f} s)."
            )
        for part in told.left_out:
            self.stderr.write(f"Left out {part}")
        if options["keys"] > 0:
            owner = User.objects.get(email=OWNERS["acme"])
            added = seed_keys(organization=orgs["acme"], count=options["keys"], created_by=owner)
            self.stdout.write(f"Added {added} API keys to Acme.")
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Log in with:"))
        for slug, email, _name, role, password in DEMO_PEOPLE:
            self.stdout.write(f"  {email:<20} {password:<18} {role} of {orgs[slug].name}")

    def _seed_people(self, orgs: dict[str, Organization]) -> None:
        for slug, email, name, role, password in DEMO_PEOPLE:
            joined = self.now - timedelta(JOINED.get(email, 60))
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email=email, password=password, display_name=name, date_joined=joined
                )
            membership, created = Membership.objects.get_or_create(
                user=user,
                organization=orgs[slug],
                defaults={"role": Role.MEMBER if email in PROMOTED else role, "created_at": joined},
            )
            if created and email in PROMOTED:
                with backdated(self.now - timedelta(PROMOTED[email])):
                    membership_change_role(
                        actor=person(OWNERS[slug]), membership=membership, role=role
                    )

    def _seed_tree(self, organization: Organization, teams: dict) -> None:
        made = {"created_at": self.now - timedelta(TREE_DAYS_AGO)}
        for team_name, projects in teams.items():
            team = Team.objects.get_or_create(
                organization=organization, name=team_name, defaults=made
            )[0]
            for project_name, apps in projects.items():
                project = Project.objects.get_or_create(
                    organization=organization, name=project_name, defaults={"team": team, **made}
                )[0]
                for target_name in TARGETS:
                    target = Target.objects.get_or_create(
                        project=project, name=target_name, defaults=made
                    )[0]
                    for env_name in ENVIRONMENTS:
                        Environment.objects.get_or_create(
                            target=target, name=env_name, defaults=made
                        )
                for app_slug in apps:
                    app, created = App.objects.get_or_create(
                        organization=organization,
                        slug=app_slug,
                        defaults={"project": project, "name": APP_NAMES[app_slug], **made},
                    )
                    if created and app_slug in SHARED_APPS:
                        with backdated(self.now - timedelta(45)):
                            app_set_sharing(
                                actor=person(OWNERS[organization.slug]),
                                app=app,
                                access=ApiKeyAccess.CAN_EDIT,
                            )

    def _seed_service_accounts(self, orgs: dict[str, Organization]) -> None:
        for slug, name, description, by, days_ago in SERVICE_ACCOUNTS:
            if ServiceAccount.objects.filter(organization=orgs[slug], name=name).exists():
                continue
            with backdated(self.now - timedelta(days_ago)):
                service_account_create(
                    actor=person(by), organization=orgs[slug], name=name, description=description
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
                    with backdated(self.now - timedelta(SECRETS_SET_DAYS_AGO)):
                        secret_set(actor=actor, environment=env, name=name, value=value)

    def _seed_app_versions(self, orgs: dict[str, Organization]) -> None:
        """Publish the console's versions of each app that has none yet."""
        for organization in orgs.values():
            for app in App.objects.filter(organization=organization, slug__in=APP_VERSIONS):
                if app.versions.exists():
                    continue
                for number, (by, days_ago) in enumerate(APP_VERSIONS[app.slug], start=1):
                    with backdated(self.now - timedelta(days_ago)):
                        app_publish(
                            actor=person(by), app=app, bundle=io.BytesIO(bundle(app.slug, number))
                        )
