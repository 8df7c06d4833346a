"""Who acts in keyportal: people, organizations, their roles, teams and service accounts."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

NAME_MAX_LENGTH = 100


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str) -> User:
        # Emails are stored in lower case; people type them however they like.
        return self.get(email__iexact=username)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address."""

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=NAME_MAX_LENGTH)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    def __str__(self) -> str:
        return self.display_name or self.email

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.display_name


class Organization(models.Model):
    """A tenant: everything else belongs to exactly one organization."""

    name = models.CharField(max_length=NAME_MAX_LENGTH)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A person's role in one organization."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def is_admin(self) -> bool:
        """Return True for owners and admins, who manage the organization's resources."""
        return self.role in (Role.OWNER, Role.ADMIN)


class Team(models.Model):
    """A group of projects inside an organization."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(Lower("name"), "organization", name="team_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


SERVICE_ACCOUNT_DOMAIN = "serviceaccounts.keyportal"


class ServiceAccount(models.Model):
    """A non-human identity whose keys CI and production use."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="service_accounts"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    identifier = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, max_length=500)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(
                Lower("name"), "organization", name="service_account_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return self.identifier


INVITATION_LIFETIME_DAYS = 7


class Invitation(models.Model):
    """A single-use invitation to join an organization; the link's token is stored as a digest."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_digest = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organization}"

    @property
    def is_pending(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class Origin(models.TextChoices):
    """The door an action came through."""

    WEB = "web", "Web"
    API = "api", "API"
    CLI = "cli", "CLI"
    # The console's API Explorer, acting as a key for the person beside it.
    EXPLORER = "explorer", "Explorer"
    # Scheduled work on the worker (the stale-key policy, housekeeping).
    WORKER = "worker", "Worker"


class AuditEventType(models.TextChoices):
    """Every event the audit log records, as Zulip's AuditLogEventType: services name their
    events from it, and the audit page's filters and labels come from it.

    A value is "<subject>.<verb>"; its subject puts it in one of AUDIT_EVENT_GROUPS.
    """

    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_UPDATED = "api_key.updated", "API key edited"
    API_KEY_ROTATED = "api_key.rotated", "API key rotated"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    API_KEY_REFUSED = "api_key.refused", "Refused attempt on an API key"
    API_KEY_COMPROMISED = "api_key.compromised", "API key reported leaked"
    CLI_LOGIN_APPROVED = "cli_login.approved", "CLI login approved"
    KEY_POLICY_UPDATED = "key_policy.updated", "Key policy changed"

    INVITATION_CREATED = "invitation.created", "Invitation sent"
    INVITATION_REVOKED = "invitation.revoked", "Invitation revoked"
    MEMBER_JOINED = "member.joined", "Member joined"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Member's role changed"
    MEMBER_REMOVED = "member.removed", "Member removed"

    SERVICE_ACCOUNT_CREATED = "service_account.created", "Service account created"
    SERVICE_ACCOUNT_UPDATED = "service_account.updated", "Service account edited"
    SERVICE_ACCOUNT_ACTIVATED = "service_account.activated", "Service account reactivated"
    SERVICE_ACCOUNT_DEACTIVATED = "service_account.deactivated", "Service account deactivated"
    SERVICE_ACCOUNT_KEYS_REVOKED = "service_account.keys_revoked", "Service account's keys revoked"
    SERVICE_ACCOUNT_DELETED = "service_account.deleted", "Service account deleted"

    ORGANIZATION_CREATED = "organization.created", "Organization created"
    ORGANIZATION_RENAMED = "organization.renamed", "Organization renamed"

    TEAM_CREATED = "team.created", "Team created"
    TEAM_RENAMED = "team.renamed", "Team renamed"
    TEAM_DELETED = "team.deleted", "Team deleted"
    PROJECT_CREATED = "project.created", "Project created"
    PROJECT_RENAMED = "project.renamed", "Project renamed"
    PROJECT_DELETED = "project.deleted", "Project deleted"
    TARGET_CREATED = "target.created", "Target created"
    TARGET_RENAMED = "target.renamed", "Target renamed"
    TARGET_DELETED = "target.deleted", "Target deleted"
    ENVIRONMENT_CREATED = "environment.created", "Environment created"
    ENVIRONMENT_RENAMED = "environment.renamed", "Environment renamed"
    ENVIRONMENT_DELETED = "environment.deleted", "Environment deleted"

    SECRET_SET = "secret.set", "Secret set"
    SECRET_RESTORED = "secret.restored", "Secret restored"
    SECRET_PURGED = "secret.purged", "Secret deleted for good"
    ENCRYPTION_KEY_ROTATED = "encryption_key.rotated", "Encryption key rotated"

    APP_CREATED = "app.created", "App created"
    APP_RENAMED = "app.renamed", "App renamed"
    APP_DELETED = "app.deleted", "App deleted"
    APP_SHARING_CHANGED = "app.sharing_changed", "App sharing changed"
    APP_PUBLISHED = "app.published", "App version published"

    @property
    def subject(self) -> str:
        """Return what the event happens to: "api_key" for "api_key.created"."""
        return self.value.partition(".")[0]

    @property
    def group(self) -> str:
        """Return the heading the audit page files the event under."""
        return AUDIT_EVENT_GROUPS[self.subject]

    @classmethod
    def grouped_choices(cls) -> list[tuple[str, list[tuple[str, str]]]]:
        """Return (group, [(value, label), ...]) pairs, groups in AUDIT_EVENT_GROUPS' order."""
        groups: dict[str, list[tuple[str, str]]] = {
            group: [] for group in AUDIT_EVENT_GROUPS.values()
        }
        for event_type in cls:
            groups[event_type.group].append((event_type.value, event_type.label))
        return [(group, choices) for group, choices in groups.items() if choices]


# Each subject's group on the audit page, groups in the order the event filter lists them.
_HIERARCHY = "Teams, projects, targets and environments"
AUDIT_EVENT_GROUPS: dict[str, str] = {
    "api_key": "API keys",
    "cli_login": "API keys",
    "key_policy": "API keys",
    "invitation": "People",
    "member": "People",
    "service_account": "Service accounts",
    "organization": "Organization",
    "team": _HIERARCHY,
    "project": _HIERARCHY,
    "target": _HIERARCHY,
    "environment": _HIERARCHY,
    "secret": "Secrets",
    "encryption_key": "Secrets",
    "app": "Apps",
}


# What an edit of a key changed, as its history says it, in the order a label names them.
# The status is None: "Disabled" or "Enabled", from the status recorded with the edit.
KEY_CHANGE_PHRASES: dict[str, str | None] = {
    "status": None,
    "name": "Renamed",
    "permissions": "Permissions changed",
    "scopes": "Permissions changed",
    "preset": "Permissions changed",
    "expires_at": "Expiry changed",
}
# Events whose detail names the version they made.
VERSIONED_EVENTS = frozenset(
    {AuditEventType.SECRET_SET, AuditEventType.SECRET_RESTORED, AuditEventType.APP_PUBLISHED}
)
KEY_STATUS_PHRASES = {"active": "Enabled", "disabled": "Disabled"}
# How long a rotated key's old secret kept working (apikeys.services.ROTATION_GRACE).
ROTATION_GRACE_PHRASES = {
    "now": "old secret stopped at once",
    "1h": "old secret works 1 hour",
    "24h": "old secret works 24 hours",
    "7d": "old secret works 7 days",
}


def join_phrases(phrases: list[str]) -> str:
    """Return ["Renamed", "Expiry changed"] as "Renamed and expiry changed"."""
    parts = [phrases[0], *(p[:1].lower() + p[1:] for p in phrases[1:])]
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


class AuditEvent(models.Model):
    """One row of an organization's history: who did what to which object, from where."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The API key that acted, when a program did (no foreign key: apikeys depends on accounts).
    actor_key_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # A snapshot, so the row still reads correctly after the actor is deleted or renamed.
    actor_label = models.CharField(max_length=200)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEB)
    action = models.CharField(max_length=60, choices=AuditEventType.choices)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=40, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="audit_org_created"),
            # One object's history, e.g. an API key's detail page.
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_label}"

    @property
    def event_type(self) -> AuditEventType | None:
        """Return the event's type, or None for an action the enum no longer knows."""
        try:
            return AuditEventType(self.action)
        except ValueError:
            return None

    @property
    def label(self) -> str:
        """Return what happened in words that name the target's kind: "API key disabled"."""
        event_type = self.event_type
        if event_type is None:
            return self.action
        if event_type.subject == "api_key" and event_type != AuditEventType.API_KEY_REFUSED:
            short = self.history_label
            # "API key's old secret reported leaked...", not "API key old secret...".
            whose = "API key's" if self._of_previous_secret else "API key"
            return f"{whose} {short[:1].lower()}{short[1:]}"
        return self.history_label

    @property
    def history_label(self) -> str:
        """Return what happened, for the target's own history where its kind goes without
        saying: "Disabled", "Rotated (old secret works 24 hours)", "Refused: rotate — why"."""
        detail = self.detail if isinstance(self.detail, dict) else {}
        match self.event_type:
            case None:
                return self.action
            case AuditEventType.API_KEY_CREATED:
                return "Created"
            case AuditEventType.API_KEY_UPDATED:
                # Scheduled work says why it acted: "Disabled — Not used for 94 days (…)".
                reason = detail.get("reason")
                label = self._key_edit_label(detail)
                return f"{label} — {reason}" if reason else label
            case AuditEventType.API_KEY_ROTATED:
                grace = ROTATION_GRACE_PHRASES.get(str(detail.get("grace")))
                return f"Rotated ({grace})" if grace else "Rotated"
            case AuditEventType.API_KEY_REVOKED:
                return "Revoked"
            case AuditEventType.API_KEY_COMPROMISED:
                return self._compromised_label(detail)
            case AuditEventType.API_KEY_REFUSED:
                act, reason = detail.get("action"), detail.get("reason")
                label = f"Refused: {act}" if act else "Refused"
                return f"{label} — {reason}" if reason else label
            case AuditEventType.MEMBER_ROLE_CHANGED if {"from", "to"} <= detail.keys():
                return f"Member's role changed from {detail['from']} to {detail['to']}"
            case event_type if event_type in VERSIONED_EVENTS and "version" in detail:
                return f"{event_type.label} (version {detail['version']})"
            case event_type:
                return event_type.label

    @property
    def _of_previous_secret(self) -> bool:
        detail = self.detail if isinstance(self.detail, dict) else {}
        return self.action == AuditEventType.API_KEY_COMPROMISED and detail.get("secret") == (
            "previous"
        )

    @staticmethod
    def _compromised_label(detail: dict) -> str:
        """Return what a leak report did (apikeys.leaks): who reported which secret."""
        from apikeys.models import LeakSource  # apikeys depends on accounts, not the reverse

        source = str(detail.get("source"))
        by = f" by {LeakSource(source).label}" if source in LeakSource.values else ""
        if detail.get("secret") == "previous":
            return f"Old secret reported leaked{by}; it stopped at once"
        if detail.get("revoked") is False:
            return f"Reported leaked{by} (already revoked)"
        return f"Reported leaked{by}; revoked"

    @staticmethod
    def _key_edit_label(detail: dict) -> str:
        """Return what an edit of a key changed, from the fields its detail lists."""
        phrases: list[str] = []
        changed = detail.get("changed")
        fields = [f for f in changed if isinstance(f, str)] if isinstance(changed, list) else []
        for field in sorted(fields, key=_change_order):
            phrase = KEY_CHANGE_PHRASES.get(
                field, f"{field.replace('_', ' ').capitalize()} changed"
            )
            if field == "status":
                phrase = KEY_STATUS_PHRASES.get(str(detail.get("status")), "Status changed")
            if phrase not in phrases:
                phrases.append(phrase)
        return join_phrases(phrases) if phrases else "Edited"


def _change_order(field: str) -> int:
    order = list(KEY_CHANGE_PHRASES)
    return order.index(field) if field in order else len(order)
