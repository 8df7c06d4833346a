"""API keys: stored as a SHA-256 digest and a preview, never as plaintext."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import NAME_MAX_LENGTH, Organization, Origin, ServiceAccount
from projects.models import Project


class KeyKind(models.TextChoices):
    USER = "user", "Personal"
    SERVICE_ACCOUNT = "svc", "Service account"
    ORGANIZATION = "org", "Organization"
    PROJECT = "project", "Project"


class KeyPreset(models.TextChoices):
    """How a key's permissions were chosen, so that an edit offers the same choice again."""

    # A personal key holding all its owner's role holds, followed as the role changes.
    ROLE = "role", "Same as my role"
    READ_ONLY = "read-only", "Read-only"
    # A project key holding every permission that scopes to a project, on its project.
    PROJECT = "project", "This project"
    # All the maker holds over the whole organization, when the key was made.
    ALL = "all", "Allow all"
    CUSTOM = "custom", "Customize"


class KeyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class LeakSource(models.TextChoices):
    """Who reported a key leaked (apikeys/leaks.py)."""

    GITHUB = "github", "GitHub secret scanning"
    HOLDER = "holder", "its holder"


class ApiKeyQuerySet(models.QuerySet):
    def revoke(self, *, by) -> int:
        """Revoke the live keys among these in one UPDATE, however many; return how many.

        An in-grace previous secret goes with them. Keys already revoked keep their first
        revocation.
        """
        return self.filter(revoked_at__isnull=True).update(
            revoked_at=timezone.now(),
            revoked_by=by,
            previous_digest=None,
            previous_valid_until=None,
        )


class ApiKey(models.Model):
    """A key a program uses to act in one organization, within its permissions and scopes."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    kind = models.CharField(max_length=10, choices=KeyKind.choices)
    # Exactly one owner column is set for personal, service-account and project keys; none for
    # organization keys (their owner is the organization itself).
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
    )
    owner_service_account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    owner_project = models.ForeignKey(
        Project, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    digest = models.CharField(max_length=64, unique=True)
    preview = models.CharField(max_length=24)
    # After a rotation with a grace period, the previous secret keeps working until then.
    previous_digest = models.CharField(max_length=64, unique=True, null=True, blank=True)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    permissions = models.JSONField(default=list)
    preset = models.CharField(max_length=12, choices=KeyPreset.choices, default=KeyPreset.CUSTOM)
    # {permission id: [{"type": "project", "id": 3}, ...]}; a permission absent here is unscoped.
    scopes = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=KeyStatus.choices, default=KeyStatus.ACTIVE)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rotated_at = models.DateTimeField(null=True, blank=True)
    # Reported leaked (final, like revoked, which it implies): when, by whom, and the report
    # (for GitHub: repository URL, file, commit; for a holder: where they say it was found).
    compromised_at = models.DateTimeField(null=True, blank=True)
    compromised_source = models.CharField(max_length=10, choices=LeakSource.choices, blank=True)
    compromise_report = models.JSONField(default=dict, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The addresses it works from, its rate limits and its usage budget
    # (apikeys/protections.py); {} for none, so a plain key's check reads no more than that.
    protections = models.JSONField(default=dict, blank=True)
    # The budget's remaining count as apikeys.usage last wrote it, and the refill period that
    # count belongs to; the live counter is in the shared cache (apikeys/limits.py).
    budget_remaining = models.BigIntegerField(null=True, blank=True)
    budget_period = models.CharField(max_length=10, blank=True)
    # The last address the allowlist refused, and when (written in batches with usage).
    last_refused_ip = models.GenericIPAddressField(null=True, blank=True)
    last_refused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEB)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(
                        kind="user",
                        owner_user__isnull=False,
                        owner_service_account__isnull=True,
                        owner_project__isnull=True,
                    )
                    | Q(
                        kind="svc",
                        owner_user__isnull=True,
                        owner_service_account__isnull=False,
                        owner_project__isnull=True,
                    )
                    | Q(
                        kind="org",
                        owner_user__isnull=True,
                        owner_service_account__isnull=True,
                        owner_project__isnull=True,
                    )
                    | Q(
                        kind="project",
                        owner_user__isnull=True,
                        owner_service_account__isnull=True,
                        owner_project__isnull=False,
                    )
                ),
                name="api_key_owner_matches_kind",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "kind", "-created_at"], name="api_key_org_kind_created"
            ),
            # The keys tables read live keys newest first, 50 at a time: these let the database
            # walk the first rows in order instead of sorting every key (SQLite and PostgreSQL
            # both have partial indexes).
            models.Index(
                fields=["organization", "-created_at", "-id"],
                condition=Q(revoked_at__isnull=True),
                name="api_key_org_live_recent",
            ),
            models.Index(
                fields=["owner_user", "-created_at", "-id"],
                condition=Q(revoked_at__isnull=True),
                name="api_key_user_live_recent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.preview})"

    @property
    def follows_role(self) -> bool:
        """Return True for a personal key "Same as my role": it holds its owner's role as it is
        at each request, whatever its stored permissions and scopes."""
        return self.kind == KeyKind.USER and self.preset == KeyPreset.ROLE

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_compromised(self) -> bool:
        return self.compromised_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        """Return the state a person reads: compromised, revoked, expired, disabled or active."""
        if self.is_compromised:
            return "compromised"
        if self.is_revoked:
            return "revoked"
        if self.is_expired:
            return "expired"
        return self.status

    @property
    def owner(self):
        """Return the owner: a person, a service account, a project, or the organization."""
        return (
            self.owner_user or self.owner_service_account or self.owner_project or self.organization
        )


class KeyPolicy(models.Model):
    """An organization's rule for one kind of key: whether it must expire, and how soon at most."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="key_policies"
    )
    kind = models.CharField(max_length=10, choices=KeyKind.choices)
    require_expiry = models.BooleanField(default=False)
    max_lifetime_days = models.PositiveIntegerField(null=True, blank=True)
    # The worker disables keys of this kind not used for this many days (never used: since
    # they were made); None keeps unused keys.
    disable_unused_after_days = models.PositiveIntegerField(null=True, blank=True)
    # The rate limit a new key of this kind starts with (apikeys/protections.py WINDOWS); its
    # maker may change it. None: new keys start without one.
    default_rate_limit = models.PositiveIntegerField(null=True, blank=True)
    default_rate_window = models.CharField(max_length=10, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind"], name="key_policy_unique_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.kind} policy"


class KeyUsage(models.Model):
    """Requests one key made on one day (UTC), written in batches by apikeys.usage."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "day"], name="key_usage_unique_day"),
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.day}: {self.count}"


class NoticeKind(models.TextChoices):
    EXPIRES_IN_7_DAYS = "expiry-7d", "Expires in 7 days"
    EXPIRES_IN_1_DAY = "expiry-1d", "Expires in 1 day"


class KeyNotice(models.Model):
    """An email sent about a key, claimed before it is sent so that it is never sent twice.

    `expires_at` is the expiry the notice was about: a key whose expiry is extended gets its
    reminders again for the new date.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=12, choices=NoticeKind.choices)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "kind", "expires_at"], name="key_notice_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.kind}"


class SecretScanningDelivery(models.Model):
    """A signed batch GitHub secret scanning delivered, kept to refuse the same one again."""

    signature_digest = models.CharField(max_length=64, unique=True)
    key_identifier = models.CharField(max_length=200)
    tokens = models.PositiveIntegerField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.received_at:%Y-%m-%d %H:%M} ({self.tokens} tokens)"


class DeviceState(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    COMPLETED = "completed", "Key issued"


class DeviceAuthorization(models.Model):
    """A `keyportal login` waiting for a person to approve it in the browser (RFC 8628).

    The CLI holds the device code (stored here only as a SHA-256 digest); the person types or
    follows the short user code. On approval the next poll creates a personal key with origin
    CLI and hands its plaintext to the CLI, once: the key is never stored here.
    """

    device_code_digest = models.CharField(max_length=64, unique=True)
    user_code = models.CharField(max_length=9, db_index=True)
    client = models.CharField(max_length=100)
    host = models.CharField(max_length=255)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=DeviceState, default=DeviceState.PENDING)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    interval = models.PositiveSmallIntegerField(default=5)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_code} ({self.client} on {self.host})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
