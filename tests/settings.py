"""Test settings: the real ones, with a fast password hasher."""

import tempfile
from pathlib import Path

from keyportal.settings import *  # noqa: F403

# Tests write key usage by calling apikeys.usage.flush(), never from a background thread.
KEYPORTAL_USAGE_FLUSH_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

# Uploaded bundles go to a throwaway folder, never the repository's data/.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="keyportal-test-media-"))
