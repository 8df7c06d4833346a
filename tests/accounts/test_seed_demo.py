"""The demo data command: complete, a living month of keys, and safe to run again."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from accounts.access import Actor
from accounts.models import (
    AuditEvent,
    Membership,
    Organization,
    Origin,
    Role,
    ServiceAccount,
    User,
)
from apikeys.models import ApiKey, DeviceAuthorization, KeyKind, KeyPolicy, KeyUsage
from apikeys.policy import exceeds_policy, policy_for
from apikeys.selectors import cli_login_list
from keyportal_cli import tokens
from projects.models import (
    ApiKeyAccess,
    App,
    AppVersion,
    Environment,
    Project,
    Secret,
    SecretVersion,
    Target,
)
from projects.secrets import secret_decrypt
from tests.accounts.helpers import row_counts
from tests.apikeys.conftest import secret_part
from tests.apikeys.test_no_plaintext import assert_nowhere, cached_values, every_stored_value

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, stderr=out, **options)
    return out.getvalue()


def every_row_count() -> dict[str, int]:
    """Return how many rows every model of the project and its libraries holds."""
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def key(name: str, organization: str = "acme") -> ApiKey:
    return ApiKey.objects.get(organization__slug=organization, name=name)


@pytest.fixture
def seeded() -> Organization:
    """Seed once and return Acme."""
    seed()
    return Organization.objects.get(slug="acme")


def test_seed_demo_is_idempotent():
    """Running the command twice leaves the same rows as running it once."""
    seed()
    first = row_counts()
    seed()
    assert row_counts() == first
    assert first["Organization"] == 2


def test_seed_demo_twice_changes_no_row_of_any_model():
    """Keys, usage, versions, secrets and history are added once: a second run adds nothing."""
    seed()
    first = every_row_count()
    output = seed()
    assert every_row_count() == first
    assert first["apikeys.ApiKey"] >= 19
    assert first["apikeys.KeyUsage"] > 300
    assert "Added" not in output


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
    for email, password in [
        ("owner@acme.test", "demo-owner-1234"),
        ("admin@acme.test", "demo-admin-1234"),
        ("member@acme.test", "demo-member-1234"),
        ("owner@globex.test", "demo-globex-1234"),
    ]:
        assert f"{email:<20} {password:<18}" in output


def test_seed_demo_creates_globex_beside_acme():
    """Globex exists with its own owner and nothing shared with Acme."""
    seed()
    globex = Organization.objects.get(slug="globex")
    assert globex.name == "Globex"
    assert Membership.objects.get(organization=globex).user.email == "owner@globex.test"
    assert not Project.objects.filter(organization=globex, name="Payments").exists()


def test_seed_demo_creates_service_accounts():
    """Acme has the deploy-bot and ci service accounts, made through the service."""
    seed()
    bot = ServiceAccount.objects.get(name="deploy-bot")
    assert bot.organization.slug == "acme"
    assert bot.identifier == "deploy-bot@acme.serviceaccounts.keyportal"
    assert bot.is_active
    assert ServiceAccount.objects.get(name="ci").identifier == "ci@acme.serviceaccounts.keyportal"
    created = AuditEvent.objects.filter(action="service_account.created")
    assert sorted(created.values_list("target_label", flat=True)) == [
        "ci@acme.serviceaccounts.keyportal",
        "deploy-bot@acme.serviceaccounts.keyportal",
    ]


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
    changes = AuditEvent.objects.filter(action="app.sharing_changed")
    assert sorted(changes.values_list("target_label", flat=True)) == ["Payments API", "Storefront"]


def test_seed_demo_publishes_app_versions(seeded):
    """Apps have published versions, stored as bundles; the deploy key published through the API."""
    versions = dict(
        (slug, list(App.objects.get(slug=slug).versions.values_list("version", flat=True)))
        for slug in ("storefront", "payments-api", "reports", "admin-panel", "hammock-app")
    )
    assert versions == {
        "storefront": [3, 2, 1],
        "payments-api": [3, 2, 1],
        "reports": [1],
        "admin-panel": [],
        "hammock-app": [1],
    }
    for version in AppVersion.objects.all():
        assert version.size > 0 and version.files == 3
        assert version.bundle.storage.exists(version.bundle.name)
    by_api = AppVersion.objects.filter(app__slug="payments-api", version__gt=1)
    assert all(v.actor_label.startswith("GitHub Actions deploy (sk-svc-") for v in by_api)
    published = AuditEvent.objects.filter(action="app.published", target_label="Payments API")
    assert sorted(published.values_list("origin", flat=True)) == ["api", "api", "web"]


def test_seed_demo_sets_a_few_secrets_once():
    """Payments' web environments hold demo secrets, encrypted, set once however often it runs."""
    seed()
    seed()
    operator = Secret.objects.filter(environment__target__project__name="Payments").exclude(
        name="RELEASE_SHA"
    )
    assert sorted(
        operator.values_list("environment__name", "name").order_by("environment__name", "name")
    ) == [
        ("development", "DATABASE_URL"),
        ("development", "LOG_LEVEL"),
        ("production", "DATABASE_URL"),
        ("production", "LOG_LEVEL"),
    ]
    assert SecretVersion.objects.filter(secret__in=operator).count() == 4
    version = SecretVersion.objects.get(
        secret__name="LOG_LEVEL", secret__environment__name="production"
    )
    assert secret_decrypt(version=version) == "info"
    assert version.origin == Origin.CLI
    event = AuditEvent.objects.filter(action="secret.set", target_label="LOG_LEVEL").latest("pk")
    assert (event.actor_user, event.actor_label, event.origin) == (
        None,
        "operator (manage.py seed_demo)",
        Origin.CLI,
    )
    assert not Secret.objects.filter(environment__target__project__organization__slug="globex")


def test_seed_demo_deploy_key_sets_a_secret_through_the_api(seeded):
    """The deploy key set RELEASE_SHA in Payments' production twice, each recorded as the API."""
    secret = Secret.objects.get(name="RELEASE_SHA")
    assert (secret.environment.target.name, secret.environment.name) == ("web", "production")
    versions = secret.versions.order_by("version")
    assert [(v.version, v.origin) for v in versions] == [(1, Origin.API), (2, Origin.API)]
    assert len(secret_decrypt(version=versions.last())) == 40
    deploy = key("GitHub Actions deploy")
    # The second deploy came after the rotation: made with the new secret, same key.
    assert versions.last().actor_label == f"GitHub Actions deploy ({deploy.preview})"
    assert versions.first().actor_label != versions.last().actor_label


def test_seed_demo_creates_keys_of_every_kind(seeded):
    """Acme's people, service accounts, projects and the organization itself own keys."""
    keys = ApiKey.objects.filter(organization=seeded)
    assert set(keys.values_list("kind", flat=True)) == set(KeyKind.values)
    people = set(keys.filter(kind=KeyKind.USER).values_list("owner_user__email", flat=True))
    assert people == {"owner@acme.test", "admin@acme.test", "member@acme.test"}
    accounts = keys.filter(kind=KeyKind.SERVICE_ACCOUNT)
    assert set(accounts.values_list("owner_service_account__name", flat=True)) == {
        "deploy-bot",
        "ci",
    }
    projects = keys.filter(kind=KeyKind.PROJECT).values_list("owner_project__name", flat=True)
    assert set(projects) == {"Payments", "Storefront", "Analytics"}
    assert {"grafana read-only", "terraform", "billing export"} <= set(
        keys.filter(kind=KeyKind.ORGANIZATION).values_list("name", flat=True)
    )
    # Every key was made through the service, which recorded it.
    created = AuditEvent.objects.filter(action="api_key.created", organization=seeded)
    assert set(created.values_list("target_id", flat=True)) == {str(k.pk) for k in keys}


def test_seed_demo_key_expiring_in_three_days_is_scoped_to_one_environment(seeded):
    """One live key expires in about three days; it reads secrets of Payments' staging only."""
    now = timezone.now()
    soon = [
        k
        for k in ApiKey.objects.filter(organization=seeded, revoked_at__isnull=True)
        if k.state == "active" and k.expires_at and k.expires_at - now < timedelta(days=4)
    ]
    assert [k.name for k in soon] == ["staging debugging"]
    assert timedelta(days=3) <= soon[0].expires_at - now < timedelta(days=3, hours=12)
    refs = {ref["id"] for scope in soon[0].scopes.values() for ref in scope}
    assert set(soon[0].scopes) == set(soon[0].permissions)
    staging = Environment.objects.get(pk=refs.pop())
    assert not refs
    assert (staging.target.project.name, staging.target.name, staging.name) == (
        "Payments",
        "web",
        "staging",
    )


def test_seed_demo_has_a_disabled_a_revoked_and_an_expired_key(seeded):
    """The states a key can be in are all there, each reached through the services."""
    states = {k.name: k.state for k in ApiKey.objects.filter(organization=seeded)}
    assert states["GitLab runner (old)"] == "disabled"
    assert states["old MacBook"] == "revoked"
    assert [n for n, s in states.items() if s == "expired"] == [
        key_.name for key_ in ApiKey.objects.filter(name__startswith="CLI on adam-thinkpad")
    ]
    revoked = key("old MacBook")
    assert revoked.revoked_by.email == "admin@acme.test"
    history = AuditEvent.objects.filter(target_type="apikey", target_id=str(revoked.pk))
    assert list(history.order_by("created_at").values_list("action", flat=True)) == [
        "api_key.created",
        "api_key.revoked",
    ]
    disabled = AuditEvent.objects.get(
        action="api_key.updated", target_id=str(key("GitLab runner (old)").pk)
    )
    assert disabled.detail["changed"] == ["status"]
    rotated = key("GitHub Actions deploy")
    assert rotated.rotated_at < timezone.now() - timedelta(days=5)
    assert rotated.previous_valid_until < timezone.now()


def test_seed_demo_has_keys_made_by_keyportal_login(seeded):
    """Mia's CLI login is listed under her CLI logins, made by the device flow with origin CLI."""
    mia = User.objects.get(email="member@acme.test")
    [login] = cli_login_list(actor=Actor(user=mia), organization=seeded)
    assert login.origin == Origin.CLI
    assert login.name.startswith("CLI on mia-macbook.local ")
    # Named for the moment of the login, 7 days of life from then.
    assert login.name.endswith(f"{login.created_at:%Y-%m-%d %H:%M}")
    assert abs(login.expires_at - login.created_at - timedelta(days=7)) < timedelta(minutes=1)
    assert DeviceAuthorization.objects.get(api_key=login).state == "completed"
    created = AuditEvent.objects.get(action="api_key.created", target_id=str(login.pk))
    assert (created.origin, created.actor_user) == (Origin.CLI, mia)
    assert created.detail["name"] == login.name


def test_seed_demo_has_a_key_exceeding_the_policy(seeded):
    """A never-expiring organization key made before the 90-day policy exceeds it."""
    policy = KeyPolicy.objects.get(organization=seeded, kind=KeyKind.ORGANIZATION)
    assert (policy.require_expiry, policy.max_lifetime_days) == (True, 90)
    org_policy = policy_for(organization=seeded, kind=KeyKind.ORGANIZATION)
    exceeding = [
        k.name
        for k in ApiKey.objects.filter(organization=seeded, revoked_at__isnull=True)
        if exceeds_policy(k, policy_for(organization=seeded, kind=k.kind))
    ]
    assert exceeding == ["grafana read-only"]
    assert key("grafana read-only").expires_at is None
    assert not exceeds_policy(key("terraform"), org_policy)


def test_seed_demo_gives_live_keys_thirty_days_of_usage(seeded):
    """Most live keys have daily counts (a month for the older ones) and a last use."""
    today = timezone.now().date()
    live = [
        k
        for k in ApiKey.objects.filter(organization__slug__in=["acme", "globex"])
        if k.state == "active"
    ]
    used = [k for k in live if k.usage.exists()]
    assert len(used) >= 0.8 * len(live)
    for api_key in used:
        assert api_key.last_used_at is not None
        assert api_key.created_at <= api_key.last_used_at <= timezone.now()
    grafana = key("grafana read-only")
    days = sorted(grafana.usage.values_list("day", flat=True))
    assert days == [today - timedelta(days=n) for n in range(29, -1, -1)]
    assert all(row.count > 0 for row in grafana.usage.all())
    # A key stops counting the day it was disabled or revoked.
    for name in ("GitLab runner (old)", "old MacBook"):
        stopped = key(name)
        assert stopped.usage.latest("day").day < today - timedelta(days=5)


def test_seed_demo_audit_log_has_web_api_and_cli(seeded):
    """Acme's history holds changes from the console, from keys through the API, and the CLI."""
    events = AuditEvent.objects.filter(organization=seeded)
    assert {Origin.WEB, Origin.API, Origin.CLI} <= set(events.values_list("origin", flat=True))
    by_api = set(events.filter(origin=Origin.API).values_list("action", "target_label"))
    assert {
        ("team.created", "Mobile"),
        ("secret.set", "RELEASE_SHA"),
        ("app.published", "Payments API"),
        ("api_key.refused", "Acme"),
    } <= by_api
    for event in events.filter(origin=Origin.API).exclude(action="api_key.compromised"):
        assert event.actor_user is None and event.actor_key_id is not None
    # A leak report comes through the API from no key and no person: GitHub secret scanning.
    [leak] = events.filter(action="api_key.compromised")
    assert (leak.origin, leak.actor_label, leak.actor_key_id) == (
        Origin.API,
        "GitHub secret scanning",
        None,
    )
    assert leak.target_label.startswith("Heroku deploy (old)")
    by_cli = set(events.filter(origin=Origin.CLI).values_list("action", "actor_label"))
    assert ("api_key.created", "member@acme.test") in by_cli
    assert ("secret.set", "operator (manage.py seed_demo)") in by_cli


def test_seed_demo_history_spans_weeks_in_order(seeded):
    """The history is dated over the past weeks, never in the future."""
    now = timezone.now()
    moments = list(AuditEvent.objects.values_list("created_at", flat=True))
    assert min(moments) < now - timedelta(days=50)
    assert max(moments) <= now
    assert min(ApiKey.objects.values_list("created_at", flat=True)) < now - timedelta(days=50)
    promoted = AuditEvent.objects.get(action="member.role_changed")
    assert promoted.detail == {"from": "member", "to": "admin"}


def test_seed_demo_globex_keys_are_globex_own(seeded):
    """Globex's keys belong to Globex's owner, project and organization; no key crosses over."""
    globex = Organization.objects.get(slug="globex")
    keys = ApiKey.objects.filter(organization=globex)
    assert set(keys.values_list("kind", flat=True)) == {"user", "org", "project"}
    for api_key in ApiKey.objects.select_related("organization"):
        owner = api_key.owner
        match api_key.kind:
            case KeyKind.USER:
                assert Membership.objects.filter(user=owner, organization=api_key.organization)
            case KeyKind.ORGANIZATION:
                assert owner == api_key.organization
            case _:
                assert owner.organization_id == api_key.organization_id
        for refs in api_key.scopes.values():
            for ref in refs:
                model = {"environment": Environment, "project": Project}[ref["type"]]
                scoped = model.objects.get(pk=ref["id"])
                organization = (
                    scoped.target.project.organization
                    if isinstance(scoped, Environment)
                    else scoped.organization
                )
                assert organization == api_key.organization
    events = AuditEvent.objects.filter(
        target_type="apikey", target_id__in=[str(k.pk) for k in keys]
    )
    assert set(events.values_list("organization", flat=True)) == {globex.pk}


def test_seed_demo_never_prints_or_stores_a_plaintext(monkeypatch, caplog):
    """No token the seed makes (story, rotation, CLI login, bulk keys) is printed, stored,
    logged or cached."""
    made = []

    def remember(kind: str) -> str:
        token = tokens.generate_token(kind)
        made.append(token)
        return token

    monkeypatch.setattr("apikeys.services.generate_token", remember)
    monkeypatch.setattr("apikeys.demo.generate_token", remember)
    caplog.set_level(logging.DEBUG)
    output = seed(keys=3)
    assert (
        len(made)
        == ApiKey.objects.count() + ApiKey.objects.filter(rotated_at__isnull=False).count()
    )
    stored = every_stored_value()
    logged = [record.getMessage() for record in caplog.records]
    cached = [value.decode("latin-1") for value in cached_values()]
    for token in made:
        assert_nowhere(token, [output], "the command's output")
        assert_nowhere(token, stored, "the database")
        assert_nowhere(token, logged, "the logs")
        assert_nowhere(token, cached, "the cache")
        assert secret_part(token) not in output


def test_seed_demo_keys_option_adds_bulk_keys():
    """`--keys N` still adds N bulk keys to Acme, on top of the demo's."""
    seed()
    before = ApiKey.objects.count()
    output = seed(keys=25)
    assert ApiKey.objects.count() == before + 25
    assert ApiKey.objects.filter(name__startswith="bulk-", organization__slug="acme").count() == 25
    assert "Added 25 API keys to Acme." in output
    assert KeyUsage.objects.filter(api_key__name__startswith="bulk-").count() == 0


def test_seed_demo_completes_partial_data():
    """Run after part of the data was removed, the command puts it back without duplicates.

    The member's keys come back through the services, so the history records them again.
    """
    seed()
    full = every_row_count()
    Target.objects.filter(name="worker", project__name="Payments").delete()
    User.objects.filter(email="member@acme.test").delete()
    seed()
    again = every_row_count()
    assert again.pop("accounts.AuditEvent") > full.pop("accounts.AuditEvent")
    assert again == full
    mia = User.objects.get(email="member@acme.test")
    assert set(ApiKey.objects.filter(owner_user=mia).values_list("origin", flat=True)) == {
        "web",
        "cli",
    }


def test_seed_demo_leaves_out_what_changed_data_refuses():
    """A part the services now refuse (a key the policy forbids) is left out and said so; the
    rest of the demo is completed."""
    seed()
    ApiKey.objects.filter(name__in=["grafana read-only", "billing export"]).delete()
    out, err = StringIO(), StringIO()
    call_command("seed_demo", stdout=out, stderr=err)
    assert "Added 1 demo API key with their history" in out.getvalue()
    assert err.getvalue().strip() == (
        "Left out acme's key “grafana read-only”: "
        "This organization's policy requires these keys to expire."
    )
    assert key("billing export").expires_at is not None
    assert not ApiKey.objects.filter(name="grafana read-only").exists()
    assert "owner@acme.test" in out.getvalue()
