"""Test settings: the real ones, with a fast password hasher."""

import os
import tempfile
import uuid
from pathlib import Path

from keyportal.settings import *  # noqa: F403

# Tests write key usage by calling apikeys.usage.flush(), never from a background thread.
KEYPORTAL_USAGE_FLUSH_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tasks run as they are enqueued; tests/integration drives the real worker.
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

# Uploaded bundles go to a throwaway folder, never the repository's data/.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="keyportal-test-media-"))

# No test reaches GitHub: secret scanning's signing keys come from a file, empty unless a test
# points the setting at keys of its own (tests/apikeys/test_github_scanning.py).
_GITHUB_KEYS = Path(tempfile.mkdtemp(prefix="keyportal-test-github-")) / "keys.json"
_GITHUB_KEYS.write_text('{"public_keys": []}')
KEYPORTAL_GITHUB_SCANNING_KEYS_FILE = str(_GITHUB_KEYS)

# Rate limits and budgets (apikeys/limits.py) are tested on the local-memory cache and, where
# Redis answers, on Redis: the `limits_cache` fixture (tests/conftest.py) switches
# KEYPORTAL_LIMITS_CACHE to this alias. A prefix of its own per run keeps concurrent runs
# (a CI clone beside a working copy) out of each other's counters.
KEYPORTAL_TEST_REDIS_URL = os.environ.get("KEYPORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
CACHES = {
    **CACHES,  # noqa: F405
    "limits-redis": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": KEYPORTAL_TEST_REDIS_URL,
        "KEY_PREFIX": f"keyportal-test-{uuid.uuid4().hex[:8]}",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 2},
    },
}
