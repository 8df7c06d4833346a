"""Envelope encryption of secret values with Fernet (AES-128-CBC and HMAC-SHA256).

Each environment has its own data key; the data key is stored encrypted by the master key,
`settings.KEYPORTAL_SECRETS_KEY`, which lives only in the environment of the processes. Values
are encrypted with the data key. A copied database therefore reveals nothing without the master
key, and rotating one environment's data key touches only that environment's rows.

Plaintext values and keys pass through these functions and are never stored or logged;
`sensitive_variables` keeps them out of Django's error reports too.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.views.decorators.debug import sensitive_variables


@lru_cache(maxsize=4)
def _master(keys: str) -> MultiFernet:
    # Cached per setting value, so tests that override the setting get their own.
    return MultiFernet([Fernet(key.strip().encode()) for key in keys.split(",")])


def master() -> MultiFernet:
    """Return the master key(s): the first encrypts, every one decrypts."""
    return _master(settings.KEYPORTAL_SECRETS_KEY)


@sensitive_variables()
def new_data_key() -> tuple[Fernet, str]:
    """Return a new data key, and the same key encrypted by the master key for storing."""
    key = Fernet.generate_key()
    return Fernet(key), master().encrypt(key).decode()


@sensitive_variables()
def open_data_key(encrypted_key: str) -> Fernet:
    """Return the data key stored as `encrypted_key`; InvalidToken when the master key is wrong."""
    return Fernet(master().decrypt(encrypted_key.encode()))


def rewrap(encrypted_key: str) -> str:
    """Return `encrypted_key` encrypted again under the first master key."""
    return master().rotate(encrypted_key.encode()).decode()


@sensitive_variables()
def encrypt(data_key: Fernet, value: str) -> str:
    """Return the ciphertext of `value` under `data_key`."""
    return data_key.encrypt(value.encode()).decode()


@sensitive_variables()
def decrypt(data_key: Fernet, ciphertext: str) -> str:
    """Return the value `ciphertext` holds under `data_key`."""
    return data_key.decrypt(ciphertext.encode()).decode()
