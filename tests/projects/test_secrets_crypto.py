"""Envelope encryption: the master key, per-environment data keys, and changing the master key."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.access import Actor
from keyportal.settings import DEVELOPMENT_SECRET_KEY, secrets_keys
from projects import crypto
from projects.models import EnvironmentKey
from projects.secrets import secret_decrypt, secret_set, secret_version_get
from tests.projects.secret_helpers import environment_in

BASE_DIR = Path(__file__).resolve().parents[2]
OLD_MASTER = Fernet.generate_key().decode()
NEW_MASTER = Fernet.generate_key().decode()


def test_a_value_round_trips_through_a_data_key():
    """A value encrypted with a data key decrypts to itself, multi-line and non-ASCII included."""
    data_key, _stored = crypto.new_data_key()
    value = "postgres://app:pä$$wörd@db/app\n-----BEGIN KEY-----\n🔑"

    ciphertext = crypto.encrypt(data_key, value)

    assert value not in ciphertext
    assert crypto.decrypt(data_key, ciphertext) == value


def test_the_stored_data_key_is_encrypted_by_the_master_key():
    """What is stored is the data key under the master key, and it opens to the same key."""
    data_key, stored = crypto.new_data_key()
    ciphertext = crypto.encrypt(data_key, "value")

    assert crypto.decrypt(crypto.open_data_key(stored), ciphertext) == "value"
    raw = Fernet(settings.KEYPORTAL_SECRETS_KEY).decrypt(stored.encode())
    assert raw.decode() not in stored


def test_two_encryptions_of_one_value_differ():
    """Fernet tokens carry a random IV: equal values do not give equal ciphertexts."""
    data_key, _stored = crypto.new_data_key()
    assert crypto.encrypt(data_key, "same") != crypto.encrypt(data_key, "same")


def test_another_master_key_cannot_open_a_data_key():
    """Without the master key the stored data key, and so every value, is unreadable."""
    _data_key, stored = crypto.new_data_key()
    with override_settings(KEYPORTAL_SECRETS_KEY=NEW_MASTER), pytest.raises(InvalidToken):
        crypto.open_data_key(stored)


def test_another_data_key_cannot_decrypt_a_value():
    """Each environment's data key opens only its own values."""
    mine, _ = crypto.new_data_key()
    theirs, _ = crypto.new_data_key()
    with pytest.raises(InvalidToken):
        crypto.decrypt(theirs, crypto.encrypt(mine, "value"))


def test_development_master_key_is_derived_from_secret_key():
    """Unset in development, the master key is a stable derivation of SECRET_KEY."""
    digest = hashlib.sha256((DEVELOPMENT_SECRET_KEY + "keyportal-secrets").encode()).digest()
    expected = base64.urlsafe_b64encode(digest).decode()

    assert secrets_keys("", secret_key=DEVELOPMENT_SECRET_KEY) == expected
    assert expected == settings.KEYPORTAL_SECRETS_KEY
    Fernet(expected)  # a valid Fernet key


@pytest.mark.parametrize("value", ["not-a-key", "c2hvcnQ=", f"{NEW_MASTER},", f"{NEW_MASTER},nope"])
def test_a_malformed_master_key_is_refused(value):
    """A KEYPORTAL_SECRETS_KEY that is not Fernet keys stops the settings from loading."""
    with pytest.raises(ImproperlyConfigured, match="KEYPORTAL_SECRETS_KEY"):
        secrets_keys(value, secret_key=DEVELOPMENT_SECRET_KEY)


def test_several_master_keys_are_accepted():
    """Comma-separated Fernet keys are accepted as they are."""
    assert (
        secrets_keys(f"{NEW_MASTER},{OLD_MASTER}", secret_key="x") == f"{NEW_MASTER},{OLD_MASTER}"
    )


def load_settings(**env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "KEYPORTAL_SECRETS_KEY"}
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-c", "import keyportal.settings"],
        cwd=BASE_DIR,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_the_master_key():
    """KEYPORTAL_ENV=production without KEYPORTAL_SECRETS_KEY does not start."""
    result = load_settings(KEYPORTAL_ENV="production", SECRET_KEY="s" * 60)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "KEYPORTAL_SECRETS_KEY" in result.stderr


def test_production_starts_with_the_master_key():
    """The same settings load once KEYPORTAL_SECRETS_KEY is set."""
    result = load_settings(
        KEYPORTAL_ENV="production", SECRET_KEY="s" * 60, KEYPORTAL_SECRETS_KEY=NEW_MASTER
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_changing_the_master_key_with_rewrap_keeps_every_value(org):
    """New key first, old key after it, rewrap, then the new key alone: values still read."""
    environment = environment_in(org)
    with override_settings(KEYPORTAL_SECRETS_KEY=OLD_MASTER):
        secret_set(actor=Actor(user=org.owner), environment=environment, name="A", value="one")
    stored = EnvironmentKey.objects.get().encrypted_key

    with override_settings(KEYPORTAL_SECRETS_KEY=f"{NEW_MASTER},{OLD_MASTER}"):
        out = StringIO()
        call_command("rewrap_secret_keys", stdout=out)

    assert "Re-encrypted 1 environment data key under the first key." in out.getvalue()
    rewrapped = EnvironmentKey.objects.get().encrypted_key
    assert rewrapped != stored
    with override_settings(KEYPORTAL_SECRETS_KEY=NEW_MASTER):
        found = secret_version_get(environment=environment, name="A")
        assert secret_decrypt(version=found) == "one"
    with override_settings(KEYPORTAL_SECRETS_KEY=OLD_MASTER), pytest.raises(InvalidToken):
        crypto.open_data_key(rewrapped)


@pytest.mark.django_db
def test_rewrap_without_the_old_key_changes_nothing(org):
    """Rewrapping with a master key that opens no data key fails and changes no row."""
    environment = environment_in(org)
    secret_set(actor=Actor(user=org.owner), environment=environment, name="A", value="one")
    stored = EnvironmentKey.objects.get().encrypted_key

    with (
        override_settings(KEYPORTAL_SECRETS_KEY=NEW_MASTER),
        pytest.raises(CommandError, match="nothing was changed"),
    ):
        call_command("rewrap_secret_keys")

    assert EnvironmentKey.objects.get().encrypted_key == stored
