"""Test settings: the real ones, with a fast password hasher."""

import tempfile
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
