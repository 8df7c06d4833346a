"""Secrets in an environment: set, restore, purge, rotate the key (writes); list and read.

Every write runs in one transaction, writes its history row there, and first locks the row of
the environment's data key. So a rotation and a write in one environment never interleave: no
version is ever encrypted with a key that a concurrent rotation has just replaced. (On SQLite,
whose transactions here begin IMMEDIATE, writers are serialized anyway.)

Values are validated here, whatever the caller: names are environment variable names, values
are at most 64 KB of UTF-8 text.
"""

from __future__ import annotations

from itertools import batched

from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.access import Actor
from accounts.models import AuditEventType
from accounts.services import audit_record
from projects import crypto
from projects.models import (
    SECRET_NAME_MAX_LENGTH,
    SECRET_NAME_RE,
    SECRET_VALUE_MAX_BYTES,
    Environment,
    EnvironmentKey,
    Secret,
    SecretVersion,
    new_key_id,
)
from projects.services import organization_of

NAME_RULE = (
    "A secret name is an environment variable name: letters, digits and underscores, "
    "not starting with a digit, such as DATABASE_URL."
)
ROTATE_BATCH = 500


def validate_secret_name(name: str) -> None:
    """Raise ValidationError unless `name` is a valid environment variable name."""
    if len(name) > SECRET_NAME_MAX_LENGTH:
        raise ValidationError(
            f"A secret name must be at most {SECRET_NAME_MAX_LENGTH} characters.", code="max_length"
        )
    if not SECRET_NAME_RE.fullmatch(name):
        raise ValidationError(NAME_RULE, code="invalid")


@sensitive_variables("value")
def validate_secret_value(value: str) -> None:
    """Raise ValidationError unless `value` is text an environment variable can hold."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise ValidationError("The value must be valid Unicode text.", code="invalid") from None
    if size > SECRET_VALUE_MAX_BYTES:
        raise ValidationError(
            f"The value must be at most 64 KB ({SECRET_VALUE_MAX_BYTES:,} bytes as UTF-8).",
            code="max_length",
        )
    if "\x00" in value:
        raise ValidationError("An environment variable cannot hold a NUL character.", code="nul")


@sensitive_variables()
def _validate(*, name: str, value: str) -> None:
    errors = {}
    for field, validate, given in (
        ("name", validate_secret_name, name),
        ("value", validate_secret_value, value),
    ):
        try:
            validate(given)
        except ValidationError as error:
            errors[field] = error.error_list
    if errors:
        raise ValidationError(errors)


def environment_label(environment: Environment) -> str:
    """Return "Project / target / environment", for history rows."""
    target = environment.target
    return f"{target.project.name} / {target.name} / {environment.name}"


def _locked_key(environment: Environment) -> tuple[EnvironmentKey, Fernet]:
    """Return the environment's key row, locked until the transaction ends, and its data key.

    The data key is made on first use. Call inside transaction.atomic().
    """
    key = EnvironmentKey.objects.select_for_update().filter(environment=environment).first()
    if key is not None:
        return key, crypto.open_data_key(key.encrypted_key)
    data_key, encrypted_key = crypto.new_data_key()
    try:
        with transaction.atomic():
            key = EnvironmentKey.objects.create(
                environment=environment, encrypted_key=encrypted_key
            )
    except IntegrityError:
        # A concurrent first use made it (the insert waited for that commit): use that key.
        key = EnvironmentKey.objects.select_for_update().get(environment=environment)
        return key, crypto.open_data_key(key.encrypted_key)
    return key, data_key


def _add_version(
    *, actor: Actor, secret: Secret, ciphertext: str, restored_from: int | None = None
) -> SecretVersion:
    now = timezone.now()
    latest = secret.versions.aggregate(latest=Max("version"))["latest"] or 0
    version = SecretVersion.objects.create(
        secret=secret,
        version=latest + 1,
        ciphertext=ciphertext,
        restored_from=restored_from,
        created_at=now,
        created_by=actor.user,
        origin=actor.origin,
        actor_label=actor.display[:200],
    )
    Secret.objects.filter(pk=secret.pk).update(updated_at=now)
    secret.updated_at = now
    return version


# Writes -------------------------------------------------------------------------------------


@sensitive_variables("value", "data_key")
def secret_set(*, actor: Actor, environment: Environment, name: str, value: str) -> SecretVersion:
    """Set a secret's value: a new version each time, the secret made on its first value."""
    _validate(name=name, value=value)
    with transaction.atomic():
        _key, data_key = _locked_key(environment)
        # The key's lock serializes writers in this environment, so no concurrent insert races.
        secret, _created = Secret.objects.get_or_create(environment=environment, name=name)
        version = _add_version(
            actor=actor, secret=secret, ciphertext=crypto.encrypt(data_key, value)
        )
        audit_record(
            actor=actor,
            organization=organization_of(environment),
            action=AuditEventType.SECRET_SET,
            target=secret,
            detail={"environment": environment_label(environment), "version": version.version},
        )
    return version


def secret_restore(*, actor: Actor, version: SecretVersion) -> SecretVersion:
    """Make an old version's value current again, as a new version."""
    secret = version.secret
    environment = secret.environment
    with transaction.atomic():
        _locked_key(environment)
        # Read under the lock: a rotation may have re-encrypted it since the caller fetched it.
        ciphertext = SecretVersion.objects.values_list("ciphertext", flat=True).get(pk=version.pk)
        restored = _add_version(
            actor=actor, secret=secret, ciphertext=ciphertext, restored_from=version.version
        )
        audit_record(
            actor=actor,
            organization=organization_of(environment),
            action=AuditEventType.SECRET_RESTORED,
            target=secret,
            detail={
                "environment": environment_label(environment),
                "version": restored.version,
                "restored_from": version.version,
            },
        )
    return restored


def secret_purge(*, actor: Actor, secret: Secret) -> None:
    """Delete a secret and every version of it, for good."""
    environment = secret.environment
    with transaction.atomic():
        audit_record(
            actor=actor,
            organization=organization_of(environment),
            action=AuditEventType.SECRET_PURGED,
            target=secret,
            detail={
                "environment": environment_label(environment),
                "versions": secret.versions.count(),
            },
        )
        secret.delete()


@sensitive_variables("old_key", "new_key", "data")
def encryption_key_rotate(*, actor: Actor, environment: Environment) -> tuple[EnvironmentKey, int]:
    """Give the environment a new data key and re-encrypt every version of every secret in it.

    Return the key's new record and how many versions were re-encrypted.
    """
    with transaction.atomic():
        key, old_key = _locked_key(environment)
        new_key, encrypted_key = crypto.new_data_key()
        previous_id = key.key_id
        # Ids first, then batches: SQLite does not isolate a cursor from writes on its connection.
        ids = SecretVersion.objects.filter(secret__environment=environment).values_list(
            "pk", flat=True
        )
        count = 0
        for chunk in batched(list(ids.order_by("pk")), ROTATE_BATCH):
            rows = list(SecretVersion.objects.filter(pk__in=chunk).only("pk", "ciphertext"))
            for row in rows:
                data = crypto.decrypt(old_key, row.ciphertext)
                row.ciphertext = crypto.encrypt(new_key, data)
            SecretVersion.objects.bulk_update(rows, ["ciphertext"])
            count += len(rows)
        key.encrypted_key = encrypted_key
        key.key_id = new_key_id()
        key.rotated_at = timezone.now()
        key.save(update_fields=["encrypted_key", "key_id", "rotated_at"])
        audit_record(
            actor=actor,
            organization=organization_of(environment),
            action=AuditEventType.ENCRYPTION_KEY_ROTATED,
            target=environment,
            detail={
                "environment": environment_label(environment),
                "key_id": key.key_id,
                "previous_key_id": previous_id,
                "versions": count,
            },
        )
    return key, count


def encryption_key_get(*, environment: Environment) -> EnvironmentKey:
    """Return the environment's key record, making the key on first use."""
    key = EnvironmentKey.objects.filter(environment=environment).first()
    if key is not None:
        return key
    with transaction.atomic():
        return _locked_key(environment)[0]


def environment_keys_rewrap() -> int:
    """Encrypt every environment's data key again under the first master key; return how many.

    For changing KEYPORTAL_SECRETS_KEY: list the new key first and the old one after it, run
    this, then drop the old key. The data keys and the values stay the same. All or nothing:
    InvalidToken when a data key opens with none of the listed master keys.
    """
    with transaction.atomic():
        keys = list(EnvironmentKey.objects.select_for_update().order_by("pk"))
        for key in keys:
            key.encrypted_key = crypto.rewrap(key.encrypted_key)
        EnvironmentKey.objects.bulk_update(keys, ["encrypted_key"], batch_size=500)
    return len(keys)


# Reads --------------------------------------------------------------------------------------


def secret_list(*, environment: Environment) -> QuerySet[Secret]:
    """Return the environment's secrets with their current version and who set it, from where."""
    latest = SecretVersion.objects.filter(secret=OuterRef("pk")).order_by("-version")
    return Secret.objects.filter(environment=environment).annotate(
        current_version=Subquery(latest.values("version")[:1]),
        changed_origin=Subquery(latest.values("origin")[:1]),
        changed_by=Subquery(latest.values("actor_label")[:1]),
    )


def secret_versions(*, secret: Secret) -> QuerySet[SecretVersion]:
    """Return a secret's versions, newest first, without their ciphertexts."""
    return secret.versions.defer("ciphertext")


def secret_version_get(
    *, environment: Environment, name: str, version: int | None = None
) -> SecretVersion | None:
    """Return one version of a secret (the current one unless `version`), or None.

    The ciphertext and the environment's key come in one query, so a rotation committing
    meanwhile is seen entirely or not at all.
    """
    versions = SecretVersion.objects.filter(
        secret__environment=environment, secret__name=name
    ).select_related("secret__environment__encryption_key")
    if version is not None:
        return versions.filter(version=version).first()
    return versions.order_by("-version").first()


@sensitive_variables("data_key")
def secret_decrypt(*, version: SecretVersion) -> str:
    """Return the plaintext value of a version fetched by secret_version_get."""
    data_key = crypto.open_data_key(version.secret.environment.encryption_key.encrypted_key)
    return crypto.decrypt(data_key, version.ciphertext)


def encryption_key_find(*, environment: Environment) -> EnvironmentKey | None:
    """Return the environment's key record, or None before its first secret."""
    return EnvironmentKey.objects.filter(environment=environment).first()
