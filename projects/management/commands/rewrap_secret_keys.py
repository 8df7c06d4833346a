"""Encrypt every environment's data key again under the first key of KEYPORTAL_SECRETS_KEY."""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError

from projects.secrets import environment_keys_rewrap


class Command(BaseCommand):
    help = (
        "Change the master key of secrets: set KEYPORTAL_SECRETS_KEY to the new key, a comma, "
        "then the old key; run this once; then set it to the new key alone."
    )

    def handle(self, *args, **options) -> None:
        try:
            count = environment_keys_rewrap()
        except InvalidToken:
            raise CommandError(
                "An environment's data key opens with none of the keys in KEYPORTAL_SECRETS_KEY; "
                "nothing was changed. List the new key first and the old one after it."
            ) from None
        plural = "" if count == 1 else "s"
        self.stdout.write(f"Re-encrypted {count} environment data key{plural} under the first key.")
