"""What keys guard: projects, their targets and environments, the secrets in them, and apps."""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import NAME_MAX_LENGTH, Organization, Origin, Team


class Project(models.Model):
    """A project of a team; its keys are `sk-project-` keys."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(Lower("name"), "organization", name="project_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Target(models.Model):
    """A deployable part of a project, such as web or worker."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="targets")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(Lower("name"), "project", name="target_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Environment(models.Model):
    """Where a target runs, such as development, staging or production; holds secrets."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="environments")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(Lower("name"), "target", name="environment_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ApiKeyAccess(models.TextChoices):
    NO_ACCESS = "no_access", "No access"
    CAN_EDIT = "can_edit", "Can edit"


class App(models.Model):
    """An app of a project; its sharing settings say whether API keys may touch it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="apps")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    slug = models.SlugField(max_length=60)
    api_key_access = models.CharField(
        max_length=20, choices=ApiKeyAccess.choices, default=ApiKeyAccess.NO_ACCESS
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="app_unique_slug"),
        ]

    def __str__(self) -> str:
        return self.name


class AppVersion(models.Model):
    """A published bundle of an app: a gzip tar checked on upload and stored as a file."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    bundle = models.FileField(upload_to="app-bundles/%Y/%m/")
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    files = models.PositiveIntegerField()
    # A snapshot of who published it (a person's email, or a key's name and preview)...
    actor_label = models.CharField(max_length=200)
    # ... and the door it came through.
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEB)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["app", "version"], name="app_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.app} v{self.version}"


# Secrets ------------------------------------------------------------------------------------

SECRET_NAME_MAX_LENGTH = 100
SECRET_VALUE_MAX_BYTES = 64 * 1024
# A valid environment variable name. fullmatch: "$" alone would admit a trailing newline.
SECRET_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def new_key_id() -> str:
    """Return a short random public id for an environment's data key."""
    return f"ek_{secrets.token_hex(8)}"


class EnvironmentKey(models.Model):
    """An environment's data key, encrypted by the master key; it encrypts the secret values."""

    environment = models.OneToOneField(
        Environment, on_delete=models.CASCADE, related_name="encryption_key"
    )
    # Public and safe to show; a new one with every rotation.
    key_id = models.CharField(max_length=32, unique=True, default=new_key_id)
    # A Fernet token: the data key encrypted by KEYPORTAL_SECRETS_KEY. Never the key itself.
    encrypted_key = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key_id


class Secret(models.Model):
    """A named secret in an environment; its values are its versions, newest last."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="secrets")
    # Case matters, as it does for environment variables.
    name = models.CharField(max_length=SECRET_NAME_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="secret_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class SecretVersion(models.Model):
    """One value a secret has held, encrypted with its environment's data key."""

    secret = models.ForeignKey(Secret, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    # A Fernet token of the UTF-8 value. The plaintext is never stored.
    ciphertext = models.TextField()
    # Set when this version was made by restoring an older one.
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEB)
    # A snapshot of who set it (a person's email, or a key's name and preview).
    actor_label = models.CharField(max_length=200)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["secret", "version"], name="secret_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.secret_id} v{self.version}"
