"""Demo keys: the history `seed_demo` tells through the services and the API, and many keys at
once for scale tests (bulk inserts, plaintexts thrown away).

Every plaintext a service or the API returns here lives only in this process while the story
is told, to make the API calls the story needs; none is printed or stored.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.access import Actor, Refused
from accounts.models import AuditEvent, Organization, Origin, ServiceAccount, User
from apikeys import usage
from apikeys.demo_keys import (
    ADDRESSES,
    CI_RUNNER,
    CLI_CLIENT,
    GITHUB_ACTIONS,
    GITHUB_HOOKS,
    LOGIN_MOMENT,
    STORY,
    TERRAFORM_RUNNER,
    Call,
    Change,
    CliLogin,
    DemoKey,
    PolicyChange,
)
from apikeys.demo_story import (
    DemoApi,
    DemoError,
    backdated,
    bundle_upload,
    quiet,
    usage_history,
    usage_write,
)
from apikeys.device import device_approve, device_code_create, device_poll
from apikeys.github_scanning import ACTOR_LABEL as GITHUB_SCANNING
from apikeys.github_scanning import github_location
from apikeys.leaks import key_report_leaked
from apikeys.models import ApiKey, KeyKind, KeyPolicy, KeyStatus, LeakSource
from apikeys.permissions import READ_ONLY, ordered
from apikeys.protections import budget
from apikeys.services import (
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    api_key_update,
    key_policy_update,
)
from keyportal_cli.tokens import generate_token, token_digest, token_preview
from projects.models import App, Environment, Project, Secret

BATCH = 5000

# Telling it ---------------------------------------------------------------------------------


class Story:
    """Tell STORY where it is missing: a key already there (in any state) is left alone."""

    def __init__(self, organizations: dict[str, Organization]) -> None:
        self.organizations = organizations
        self.now = timezone.now()
        self.api = DemoApi()
        self.histories: list = []
        self._people: dict[str, User] = {}

    def tell(self) -> Told:
        """Add what is missing; return what was made and what the data refused."""
        told = Told()
        for step in sorted(STORY, key=lambda s: s.ago, reverse=True):
            try:
                with transaction.atomic():
                    told.made += self._step(step)
            except (ValidationError, Refused, ObjectDoesNotExist, DemoError) as error:
                # The data was changed since the last run (a stricter policy, a new role, a
                # renamed account...): the services refuse this part, the rest goes on.
                told.left_out.append(f"{step.label}: {_reason(error)}")
        usage_write(self.histories)
        # The story's API calls are counted in its usage history, on the days it says they
        # happened; the counts this process buffered for today would count them twice.
        usage.discard()
        return told

    def _step(self, step: DemoKey | CliLogin | PolicyChange) -> int:
        match step:
            case DemoKey():
                return self._key(step)
            case CliLogin():
                return self._cli_login(step)
        self._policy(step)
        return 0

    # who and what ---------------------------------------------------------------------------

    def person(self, email: str) -> User:
        if email not in self._people:
            self._people[email] = User.objects.get(email=email)
        return self._people[email]

    def actor(self, email: str, origin: str = Origin.WEB) -> Actor:
        return Actor(user=self.person(email), ip=ADDRESSES[email], origin=origin)

    def _owner(self, spec: DemoKey):
        organization = self.organizations[spec.organization]
        match spec.kind:
            case KeyKind.USER:
                return self.person(spec.owner)
            case KeyKind.SERVICE_ACCOUNT:
                return ServiceAccount.objects.get(organization=organization, name=spec.owner)
            case KeyKind.PROJECT:
                return Project.objects.get(organization=organization, name=spec.owner)
        return organization

    def _scope(self, organization: Organization, ref: str) -> list[dict]:
        level, _, path = ref.partition(":")
        if level == "project":
            obj = Project.objects.get(organization=organization, name=path)
        else:
            project, target, environment = path.split("/")
            obj = Environment.objects.get(
                target__project__organization=organization,
                target__project__name=project,
                target__name=target,
                name=environment,
            )
        return [{"type": level, "id": obj.pk}]

    # steps ----------------------------------------------------------------------------------

    def _key(self, spec: DemoKey) -> int:
        organization = self.organizations[spec.organization]
        owner = self._owner(spec)
        owned = {
            KeyKind.USER: Q(owner_user=owner),
            KeyKind.SERVICE_ACCOUNT: Q(owner_service_account=owner),
            KeyKind.PROJECT: Q(owner_project=owner),
        }.get(spec.kind, Q())
        mine = ApiKey.objects.filter(owned, organization=organization, kind=spec.kind)
        if mine.filter(name=spec.name).exists():
            return 0
        with backdated(self.now - spec.ago):
            api_key, token = api_key_create(
                actor=self.actor(spec.by),
                organization=organization,
                kind=spec.kind,
                owner=owner,
                name=spec.name,
                permissions=ordered(spec.permissions),
                scopes={p: self._scope(organization, ref) for p, ref in spec.scopes.items()},
                expires_at=self.now + spec.expires_in if spec.expires_in else None,
                **spec.protections,
            )
        stopped = None
        for event in sorted(spec.events, key=lambda e: e.ago, reverse=True):
            with backdated(self.now - event.ago) as clock:
                if isinstance(event, Change):
                    token = self._change(api_key, event, token) or token
                    if event.act in ("disable", "leak"):  # no use after that
                        stopped = clock.when
                else:
                    self._call(api_key, token, event)
        self._use(api_key, spec.daily, stopped)
        return 1

    def _change(self, api_key: ApiKey, change: Change, token: str) -> str | None:
        if change.act == "leak":
            # As GitHub secret scanning reports a key pushed to a public repository.
            commit = secrets.token_hex(20)
            url = f"https://github.com/{change.by}/blob/{commit}/deploy/.env"
            report = {"url": url, "source": "commit", "type": "keyportal_api_key"}
            key_report_leaked(
                token=token,
                source=LeakSource.GITHUB,
                report=report | github_location(url),
                actor=Actor(user=None, label=GITHUB_SCANNING, origin=Origin.API, ip=GITHUB_HOOKS),
            )
            return None
        actor = self.actor(change.by)
        match change.act:
            case "rotate":
                return api_key_rotate(actor=actor, api_key=api_key, grace="24h")[1]
            case "disable":
                api_key_update(actor=actor, api_key=api_key, status=KeyStatus.DISABLED)
            case "revoke":
                api_key_revoke(actor=actor, api_key=api_key)
        return None

    def _call(self, api_key: ApiKey, token: str, call: Call) -> None:
        organization = api_key.organization
        match call.what:
            case "deploy payments-api":
                app = App.objects.get(organization=organization, slug="payments-api")
                version = app.versions.count() + 1
                [scope] = self._scope(organization, "environment:Payments/web/production")
                known = Secret.objects.filter(environment_id=scope["id"], name="RELEASE_SHA")
                self.api.call(
                    token,
                    "PUT",
                    f"/environments/{scope['id']}/secrets/RELEASE_SHA",
                    ip=GITHUB_ACTIONS,
                    body={"value": secrets.token_hex(20)},  # a commit id, made up
                    expect=200 if known.exists() else 201,
                )
                self.api.call(
                    token,
                    "POST",
                    f"/apps/{app.pk}/versions",
                    ip=GITHUB_ACTIONS,
                    upload=bundle_upload(app.slug, version),
                    expect=201,
                )
            case "create the Mobile team":
                team = {"name": "Mobile"}
                self.api.call(token, "POST", "/teams", ip=TERRAFORM_RUNNER, body=team, expect=201)
            case "try to create a key":
                # Refused, for lack of api-keys:manage: the audit log records the attempt (and
                # Django would log the 403 as a warning, noise in `make run`).
                with quiet("django.request"):
                    self.api.call(
                        token,
                        "POST",
                        "/keys",
                        ip=CI_RUNNER,
                        body={"kind": "org", "name": "ci-admin", "permissions": ["teams:create"]},
                        expect=403,
                    )

    def _cli_login(self, login: CliLogin) -> int:
        organization = self.organizations[login.organization]
        user = self.person(login.email)
        if ApiKey.objects.filter(
            organization=organization,
            owner_user=user,
            origin=Origin.CLI,
            name__startswith=f"CLI on {login.host} ",
        ).exists():
            return 0
        ip = ADDRESSES[login.email]
        with backdated(self.now - login.ago) as clock:
            request, device_code = device_code_create(client=CLI_CLIENT, host=login.host, ip=ip)
            device_approve(user=user, organization=organization, user_code=request.user_code, ip=ip)
            issued = device_poll(device_code=device_code, ip=ip)
        # Its 7 days run from the login, and its name says when that was: the key is as old
        # as the story says, expired perhaps.
        api_key = issued.api_key
        api_key.refresh_from_db(fields=["created_at"])
        ApiKey.objects.filter(pk=api_key.pk).update(expires_at=F("expires_at") - clock.shift)
        _rename(api_key, LOGIN_MOMENT.sub(f"{api_key.created_at:%Y-%m-%d %H:%M}", api_key.name))
        self._use(api_key, login.daily, None)
        return 1

    def _policy(self, change: PolicyChange) -> None:
        organization = self.organizations[change.organization]
        if KeyPolicy.objects.filter(organization=organization, kind=change.kind).exists():
            return
        with backdated(self.now - change.ago):
            key_policy_update(
                actor=self.actor(change.by),
                organization=organization,
                kind=change.kind,
                require_expiry=True,
                max_lifetime_days=change.max_days,
            )

    def _use(self, api_key: ApiKey, daily: int, stopped: datetime | None) -> None:
        """Give the key a usage history until it stopped working (revoked, disabled,
        expired) or now."""
        if not daily:
            return
        api_key.refresh_from_db(fields=["created_at", "revoked_at", "expires_at"])
        ends = [self.now, stopped, api_key.revoked_at, api_key.expires_at]
        until = min(moment for moment in ends if moment is not None)
        rows, last_used = usage_history(api_key, daily=daily, until=until, now=self.now)
        self.histories.append((api_key, rows, last_used))
        found = budget(api_key.protections)
        if found is not None:
            # The budget has paid for this period's requests, as it would have.
            period = found.period(self.now)
            spent = sum(row.count for row in rows if found.period(row.day) == period)
            ApiKey.objects.filter(pk=api_key.pk).update(
                budget_remaining=max(found.amount - spent, 0), budget_period=period
            )


def _rename(api_key: ApiKey, name: str) -> None:
    """Give the key, and its history rows, the name it was made with."""
    ApiKey.objects.filter(pk=api_key.pk).update(name=name)
    api_key.name = name
    for event in AuditEvent.objects.filter(target_type="apikey", target_id=str(api_key.pk)):
        event.target_label = str(api_key)[:200]
        event.detail = {**event.detail, "name": name}
        event.save(update_fields=["target_label", "detail"])


@dataclass
class Told:
    made: int = 0
    left_out: list[str] = field(default_factory=list)


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error)


def seed_demo_keys(*, organizations: dict[str, Organization]) -> Told:
    """Make the demo's keys and their history where they are missing."""
    return Story(organizations).tell()


# Many keys, for scale tests -----------------------------------------------------------------


def seed_keys(*, organization: Organization, count: int, created_by: User) -> int:
    """Insert `count` keys spread over the organization's people, service accounts and itself."""
    members = list(User.objects.filter(memberships__organization=organization))
    accounts = list(ServiceAccount.objects.filter(organization=organization))
    owners = itertools.cycle(
        [(KeyKind.USER, m) for m in members]
        + [(KeyKind.SERVICE_ACCOUNT, a) for a in accounts]
        + [(KeyKind.ORGANIZATION, None)]
    )
    run = secrets.token_hex(3)
    now = timezone.now()
    permissions = ordered(READ_ONLY)
    created = 0
    while created < count:
        batch = []
        for i in range(created, min(created + BATCH, count)):
            kind, owner = next(owners)
            token = generate_token(kind)
            batch.append(
                ApiKey(
                    organization=organization,
                    kind=kind,
                    owner_user=owner if kind == KeyKind.USER else None,
                    owner_service_account=owner if kind == KeyKind.SERVICE_ACCOUNT else None,
                    created_by=created_by,
                    name=f"bulk-{run}-{i}",
                    digest=token_digest(token),
                    preview=token_preview(token),
                    permissions=permissions,
                    # Personal keys follow the default policy: they expire within 30 days.
                    expires_at=now + timedelta(days=30) if kind == KeyKind.USER else None,
                    created_at=now - timedelta(seconds=i),
                )
            )
        ApiKey.objects.bulk_create(batch, batch_size=BATCH)
        created += len(batch)
    return created
