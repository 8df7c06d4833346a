"""Create an API key from the command line; print its token once, for bootstrapping automation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Organization, ServiceAccount, User
from apikeys.models import KeyKind, KeyPreset
from apikeys.services import api_key_create
from projects.models import Project

OPERATOR = Actor.operator("operator (manage.py create_api_key)")


class Command(BaseCommand):
    help = (
        "Create an API key and print its token on standard output, once. Everything else goes to "
        "standard error, so `TOKEN=$(manage.py create_api_key ...)` captures only the token."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--organization", required=True, help="organization slug")
        owner = parser.add_mutually_exclusive_group()
        owner.add_argument("--user", help="email of a member: a personal sk-user- key")
        owner.add_argument("--service-account", help="identifier or name: an sk-svc- key")
        owner.add_argument("--project", help="project name or id: an sk-project- key")
        parser.add_argument("--name", default="", help="key name (generated when left out)")
        perms = parser.add_mutually_exclusive_group(required=True)
        perms.add_argument("--permissions", help="comma-separated permission ids")
        perms.add_argument(
            "--preset",
            choices=[p for p in KeyPreset.values if p != KeyPreset.CUSTOM],
            help="read-only, all, role (personal keys: the member's role, followed), "
            "or project (project keys: every permission that scopes to the project)",
        )
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument("--expires-in-days", type=int, help="lifetime in days")
        expiry.add_argument("--expires-on", help="last day the key works, YYYY-MM-DD")
        parser.add_argument(
            "--allow-ip",
            action="append",
            default=[],
            help="an address or CIDR range the key works from (repeatable)",
        )
        parser.add_argument(
            "--rate-limit",
            action="append",
            default=None,
            metavar="COUNT/WINDOW",
            help="at most COUNT requests per second, minute, hour or day (repeatable); "
            "left out: the organization policy's default for the kind",
        )
        parser.add_argument("--budget", type=int, help="requests the key may make")
        parser.add_argument("--refill", choices=["daily", "monthly"], help="refill the budget")
        parser.add_argument("--refill-amount", type=int, help="what each refill sets it to")

    def handle(self, *args, **options) -> None:
        organization = Organization.objects.filter(slug=options["organization"]).first()
        if organization is None:
            raise CommandError(f"No organization with the slug “{options['organization']}”.")
        kind, owner = self._owner(organization, options)
        permissions = [p.strip() for p in (options["permissions"] or "").split(",") if p.strip()]
        try:
            api_key, token = api_key_create(
                actor=OPERATOR,
                organization=organization,
                kind=kind,
                owner=owner,
                name=options["name"],
                permissions=permissions,
                preset=options["preset"] or KeyPreset.CUSTOM,
                expires_at=self._expires_at(options),
                allowed_ips=options["allow_ip"],
                rate_limits=self._rate_limits(options["rate_limit"]),
                budget=None
                if options["budget"] is None
                and not options["refill"]
                and not options["refill_amount"]
                else {
                    "amount": options["budget"],
                    "refill": options["refill"] or "",
                    "refill_amount": options["refill_amount"],
                },
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        kind_label = api_key.get_kind_display().lower()
        self.stderr.write(
            f"Created {kind_label} key “{api_key.name}” ({api_key.preview}) in {organization}. "
            "The token is printed once, on standard output; store it now."
        )
        self.stdout.write(token)

    def _rate_limits(self, given: list[str] | None) -> list[dict] | None:
        if given is None:
            return None
        limits = []
        for text in given:
            count, _, window = text.partition("/")
            if not count.strip().lstrip("-").isdigit():
                raise CommandError(f"--rate-limit {text}: give COUNT/WINDOW, like 100/minute.")
            limits.append({"limit": int(count), "window": window.strip()})
        return limits

    def _owner(self, organization: Organization, options: dict) -> tuple[str, object | None]:
        if options["user"]:
            user = User.objects.filter(
                email__iexact=options["user"], memberships__organization=organization
            ).first()
            if user is None:
                raise CommandError(f"{options['user']} is not a member of {organization.name}.")
            return KeyKind.USER, user
        if options["service_account"]:
            value = options["service_account"]
            account = (
                ServiceAccount.objects.filter(organization=organization, identifier=value).first()
                or ServiceAccount.objects.filter(
                    organization=organization, name__iexact=value
                ).first()
            )
            if account is None or not account.is_active:
                raise CommandError(f"No active service account “{value}” in {organization.name}.")
            return KeyKind.SERVICE_ACCOUNT, account
        if options["project"]:
            value = options["project"]
            projects = Project.objects.filter(organization=organization)
            project = (projects.filter(pk=value) if value.isdigit() else projects.none()).first()
            project = project or projects.filter(name__iexact=value).first()
            if project is None:
                raise CommandError(f"No project “{value}” in {organization.name}.")
            return KeyKind.PROJECT, project
        return KeyKind.ORGANIZATION, None

    def _expires_at(self, options: dict) -> datetime | None:
        if options["expires_in_days"] is not None:
            if options["expires_in_days"] < 1:
                raise CommandError("--expires-in-days must be 1 or more.")
            return timezone.now() + timedelta(days=options["expires_in_days"])
        if options["expires_on"]:
            try:
                day = datetime.strptime(options["expires_on"], "%Y-%m-%d").date()
            except ValueError:
                raise CommandError("--expires-on must be a date like 2027-01-31.") from None
            return datetime.combine(day, time.max, tzinfo=UTC)
        return None
