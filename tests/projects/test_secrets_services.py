"""Secret services: versions, restore, purge, key rotation, validation and their history rows."""

from __future__ import annotations

import threading

import pytest
from cryptography.fernet import InvalidToken
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.access import Actor
from accounts.models import AuditEvent, Origin
from projects import crypto
from projects.models import EnvironmentKey, Secret, SecretVersion
from projects.secrets import (
    encryption_key_get,
    encryption_key_rotate,
    secret_decrypt,
    secret_list,
    secret_purge,
    secret_restore,
    secret_set,
    secret_version_get,
    secret_versions,
)
from projects.services import hierarchy_delete
from tests.projects.secret_helpers import environment_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def environment(org):
    return environment_in(org)


@pytest.fixture
def actor(org) -> Actor:
    return Actor(user=org.admin, ip="203.0.113.9")


def value_of(environment, name: str, version: int | None = None) -> str:
    return secret_decrypt(
        version=secret_version_get(environment=environment, name=name, version=version)
    )


def counts() -> tuple[int, int, int, int]:
    return (
        Secret.objects.count(),
        SecretVersion.objects.count(),
        EnvironmentKey.objects.count(),
        AuditEvent.objects.count(),
    )


# Setting values ------------------------------------------------------------------------------


def test_each_set_adds_a_version(environment, actor):
    """Setting a value makes version 1, and every later set the next version, same value or not."""
    versions = [
        secret_set(actor=actor, environment=environment, name="API_TOKEN", value=value).version
        for value in ("one", "two", "two")
    ]

    assert versions == [1, 2, 3]
    assert value_of(environment, "API_TOKEN") == "two"
    assert value_of(environment, "API_TOKEN", 1) == "one"
    assert Secret.objects.get().versions.count() == 3


def test_a_version_records_who_set_it_and_from_where(environment, actor, org):
    """Each version keeps the person, the origin and a label of who set it."""
    version = secret_set(actor=actor, environment=environment, name="A", value="x")

    assert version.created_by == org.admin
    assert version.origin == Origin.WEB
    assert version.actor_label == org.admin.email


def test_the_list_shows_each_secrets_current_version_and_last_change(environment, actor):
    """The list gives names in order with the current version, its origin and who set it."""
    secret_set(actor=actor, environment=environment, name="B", value="x")
    api = Actor(user=None, origin=Origin.API, label="ci (sk-org-...abcd)")
    secret_set(actor=api, environment=environment, name="A", value="x")
    secret_set(actor=api, environment=environment, name="A", value="y")

    rows = [
        (s.name, s.current_version, s.changed_origin, s.changed_by)
        for s in secret_list(environment=environment)
    ]

    assert rows == [
        ("A", 2, "api", "ci (sk-org-...abcd)"),
        ("B", 1, "web", actor.user.email),
    ]


def test_set_writes_a_history_row_without_the_value(environment, actor, org):
    """Setting a value writes one history row naming the secret and version, never the value."""
    secret_set(actor=actor, environment=environment, name="API_TOKEN", value="hunter2-value")

    event = AuditEvent.objects.get(action="secret.set")
    assert event.organization == org.organization
    assert event.actor_user == org.admin
    assert event.target_type == "secret"
    assert event.target_label == "API_TOKEN"
    assert event.detail == {"environment": "Payments / web / production", "version": 1}
    assert event.ip_address == "203.0.113.9"
    assert "hunter2-value" not in str(AuditEvent.objects.values_list())


def test_names_are_unique_per_environment_and_case_sensitive(org, environment, actor):
    """The same name in two environments is two secrets; names differing in case are two too."""
    other = environment_in(org, project="Other")
    secret_set(actor=actor, environment=environment, name="TOKEN", value="a")
    secret_set(actor=actor, environment=other, name="TOKEN", value="b")
    secret_set(actor=actor, environment=environment, name="token", value="c")

    assert Secret.objects.count() == 3
    assert value_of(environment, "TOKEN") == "a"
    assert value_of(other, "TOKEN") == "b"


@pytest.mark.parametrize("name", ["A", "_", "a_b", "DATABASE_URL", "_1", "x" * 100])
def test_valid_names_are_accepted(environment, actor, name):
    """Environment variable names up to 100 characters are accepted."""
    secret_set(actor=actor, environment=environment, name=name, value="x")
    assert Secret.objects.get().name == name


@pytest.mark.parametrize(
    "name",
    ["", "1ABC", "A-B", "A B", "A.B", "ÉTÉ", "A\n", "\nA", "A\x00", "x" * 101, "$A", "A=B"],
)
def test_invalid_names_are_refused_and_nothing_is_written(environment, actor, name):
    """A name that is not an environment variable name is refused; nothing is written."""
    before = counts()
    with pytest.raises(ValidationError) as refused:
        secret_set(actor=actor, environment=environment, name=name, value="x")
    assert "name" in refused.value.message_dict
    assert counts() == before


@pytest.mark.parametrize(
    "value",
    ["", "x", "x" * 65536, "é" * 32768, "line one\nline two\n", "  spaced  "],
    ids=["empty", "one", "64KB-ascii", "64KB-utf8", "multiline", "spaces"],
)
def test_values_up_to_64_kb_are_kept_exactly(environment, actor, value):
    """Values up to 64 KB of UTF-8, empty and multi-line ones included, read back exactly."""
    secret_set(actor=actor, environment=environment, name="A", value=value)
    assert value_of(environment, "A") == value


@pytest.mark.parametrize(
    "value",
    ["x" * 65537, "é" * 32769, "a\x00b", "\ud800"],
    ids=["over-64KB", "over-64KB-utf8", "nul", "lone-surrogate"],
)
def test_invalid_values_are_refused_and_nothing_is_written(environment, actor, value):
    """Values over 64 KB, with a NUL or that are not valid Unicode are refused; nothing written."""
    before = counts()
    with pytest.raises(ValidationError) as refused:
        secret_set(actor=actor, environment=environment, name="A", value=value)
    assert list(refused.value.message_dict) == ["value"]
    assert counts() == before


# Data keys -----------------------------------------------------------------------------------


def test_each_environment_gets_its_own_data_key_on_first_use(org, environment, actor):
    """The first secret makes the environment's data key; another environment gets another."""
    other = environment_in(org, project="Other")
    assert EnvironmentKey.objects.count() == 0

    secret_set(actor=actor, environment=environment, name="A", value="x")
    secret_set(actor=actor, environment=environment, name="B", value="x")
    secret_set(actor=actor, environment=other, name="A", value="x")

    mine, theirs = environment.encryption_key, other.encryption_key
    assert EnvironmentKey.objects.count() == 2
    assert mine.key_id != theirs.key_id
    ciphertext = SecretVersion.objects.get(secret__environment=environment, secret__name="A")
    with pytest.raises(InvalidToken):
        crypto.decrypt(crypto.open_data_key(theirs.encrypted_key), ciphertext.ciphertext)


def test_reading_the_key_makes_it_once(environment):
    """Reading an environment's key record makes the key on first use, then returns the same."""
    first = encryption_key_get(environment=environment)
    again = encryption_key_get(environment=environment)

    assert first.pk == again.pk
    assert first.key_id.startswith("ek_")
    assert first.rotated_at is None


# Restore and purge ---------------------------------------------------------------------------


def test_restore_copies_an_old_value_into_a_new_version(environment, actor):
    """Restoring version 1 makes version 3 with version 1's value; nothing is lost."""
    secret_set(actor=actor, environment=environment, name="A", value="first")
    secret_set(actor=actor, environment=environment, name="A", value="second")
    old = Secret.objects.get().versions.get(version=1)

    restored = secret_restore(actor=actor, version=old)

    assert restored.version == 3
    assert restored.restored_from == 1
    assert value_of(environment, "A") == "first"
    assert [v.version for v in secret_versions(secret=Secret.objects.get())] == [3, 2, 1]
    event = AuditEvent.objects.get(action="secret.restored")
    assert event.detail["version"] == 3
    assert event.detail["restored_from"] == 1


def test_purge_deletes_the_secret_and_every_version(environment, actor):
    """Purging deletes the secret with all its versions, leaves the others, and is recorded."""
    for value in ("a", "b", "c"):
        secret_set(actor=actor, environment=environment, name="GONE", value=value)
    secret_set(actor=actor, environment=environment, name="KEPT", value="k")

    secret_purge(actor=actor, secret=Secret.objects.get(name="GONE"))

    assert list(Secret.objects.values_list("name", flat=True)) == ["KEPT"]
    assert SecretVersion.objects.count() == 1
    assert secret_version_get(environment=environment, name="GONE") is None
    event = AuditEvent.objects.get(action="secret.purged")
    assert (event.target_label, event.detail["versions"]) == ("GONE", 3)


def test_a_purged_name_starts_again_at_version_1(environment, actor):
    """After a purge, setting the same name makes a new secret at version 1."""
    secret_set(actor=actor, environment=environment, name="A", value="a")
    secret_set(actor=actor, environment=environment, name="A", value="b")
    secret_purge(actor=actor, secret=Secret.objects.get())

    assert secret_set(actor=actor, environment=environment, name="A", value="c").version == 1


def test_deleting_the_environment_deletes_its_secrets_and_key(environment, actor):
    """Deleting an environment deletes its secrets, their versions and its data key."""
    secret_set(actor=actor, environment=environment, name="A", value="a")

    hierarchy_delete(actor=actor, obj=environment)

    assert (Secret.objects.count(), SecretVersion.objects.count()) == (0, 0)
    assert EnvironmentKey.objects.count() == 0


# Rotation ------------------------------------------------------------------------------------


def test_rotation_re_encrypts_every_version_and_values_read_the_same(org, environment, actor):
    """Rotating gives a new data key; every version's ciphertext changes, every value stays."""
    values = {("A", 1): "a1", ("A", 2): "a2", ("B", 1): "b1", ("C", 1): "c1", ("C", 2): "c2"}
    for (name, _version), value in values.items():
        secret_set(actor=actor, environment=environment, name=name, value=value)
    other = environment_in(org, project="Other")
    secret_set(actor=actor, environment=other, name="A", value="elsewhere")
    key = EnvironmentKey.objects.get(environment=environment)
    old_data_key = crypto.open_data_key(key.encrypted_key)
    before = dict(SecretVersion.objects.values_list("pk", "ciphertext"))

    rotated, count = encryption_key_rotate(actor=actor, environment=environment)

    assert count == 5
    assert rotated.pk == key.pk
    assert rotated.key_id != key.key_id
    assert rotated.encrypted_key != key.encrypted_key
    assert rotated.rotated_at is not None
    assert rotated.created_at == key.created_at
    after = dict(SecretVersion.objects.values_list("pk", "ciphertext"))
    mine = SecretVersion.objects.filter(secret__environment=environment)
    for version in mine:
        assert after[version.pk] != before[version.pk]
        with pytest.raises(InvalidToken):
            crypto.decrypt(old_data_key, after[version.pk])
    theirs = SecretVersion.objects.get(secret__environment=other)
    assert after[theirs.pk] == before[theirs.pk]
    for (name, version), value in values.items():
        assert value_of(environment, name, version) == value
    assert value_of(other, "A") == "elsewhere"
    event = AuditEvent.objects.get(action="encryption_key.rotated")
    assert event.detail == {
        "environment": "Payments / web / production",
        "key_id": rotated.key_id,
        "previous_key_id": key.key_id,
        "versions": 5,
    }


def test_rotation_handles_more_versions_than_one_batch(environment, actor, monkeypatch):
    """Versions are re-encrypted in batches; every batch is done."""
    monkeypatch.setattr("projects.secrets.ROTATE_BATCH", 2)
    for index in range(5):
        secret_set(actor=actor, environment=environment, name=f"S{index}", value=f"v{index}")

    _key, count = encryption_key_rotate(actor=actor, environment=environment)

    assert count == 5
    assert [value_of(environment, f"S{index}") for index in range(5)] == [
        f"v{index}" for index in range(5)
    ]


def test_rotation_of_an_environment_without_secrets_makes_its_key(environment, actor):
    """Rotating before any secret makes the key and re-encrypts nothing."""
    key, count = encryption_key_rotate(actor=actor, environment=environment)

    assert count == 0
    assert EnvironmentKey.objects.get() == key


def test_values_written_after_a_rotation_use_the_new_key(environment, actor):
    """A value set after rotation is encrypted with the new key, and restore still works."""
    secret_set(actor=actor, environment=environment, name="A", value="before")
    encryption_key_rotate(actor=actor, environment=environment)
    secret_set(actor=actor, environment=environment, name="A", value="after")

    secret_restore(actor=actor, version=Secret.objects.get().versions.get(version=1))

    assert value_of(environment, "A", 2) == "after"
    assert value_of(environment, "A") == "before"


# Concurrency (PostgreSQL: SQLite serializes every writer anyway) -----------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_sets_and_rotations_leave_every_version_readable(org):
    """Writers and rotations racing in one environment number versions uniquely, all readable."""
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers: PostgreSQL")
    environment = environment_in(org)
    actor = Actor(user=None, label="thread")
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def work(index: int) -> None:
        try:
            start.wait()
            if index % 4 == 0:
                encryption_key_rotate(actor=actor, environment=environment)
            else:
                secret_set(actor=actor, environment=environment, name="RACE", value=f"v{index}")
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    versions = sorted(SecretVersion.objects.values_list("version", flat=True))
    assert versions == list(range(1, 10))
    assert EnvironmentKey.objects.count() == 1
    readable = {value_of(environment, "RACE", version) for version in versions}
    assert readable == {f"v{index}" for index in range(12) if index % 4}
