"""List an organization's API keys from the command line, with the console's filters."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from ninja.responses import NinjaJSONEncoder

from accounts.access import Actor
from accounts.models import Organization
from apikeys.api.keys import key_out
from apikeys.filters import (
    KIND_CHOICES,
    PROTECTION_CHOICES,
    STATUS_CHOICES,
    UNUSED_CHOICES,
    KeyFilterForm,
    apply_filters,
)
from apikeys.models import ApiKey
from apikeys.selectors import api_key_list, key_owner_exists

OPERATOR = Actor.operator("operator (manage.py list_api_keys)")
COLUMNS = ("ID", "NAME", "KIND", "OWNER", "PREVIEW", "STATE", "EXPIRES", "LAST USED")
NAME_WIDTH = 40


def _choices(choices: list[tuple[str, str]]) -> str:
    return ", ".join(value for value, _label in choices if value)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


class Command(BaseCommand):
    help = (
        "List an organization's API keys, filtered as in the console's keys table: a table, "
        "or JSON with --json. Revoked keys are left out unless --status revoked. Never prints "
        "a token."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--organization", required=True, help="organization slug")
        parser.add_argument(
            "--status",
            default="",
            help=f"{_choices(STATUS_CHOICES)} (default: any but revoked)",
        )
        parser.add_argument("--kind", default="", help=_choices(KIND_CHOICES))
        parser.add_argument("--owner", default="", help="a member's or a service account's email")
        parser.add_argument("--name", default="", help="part of the key's name")
        parser.add_argument(
            "--unused",
            default="",
            help=f"not used for N days, or never: {_choices(UNUSED_CHOICES)}",
        )
        parser.add_argument("--protection", default="", help=_choices(PROTECTION_CHOICES))
        parser.add_argument("--limit", type=int, help="at most this many keys, newest first")
        parser.add_argument("--json", action="store_true", help="print a JSON array")

    def handle(self, *args, **options) -> None:
        slug = options["organization"]
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organization with the slug “{slug}”.")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be 1 or more.")
        # The console's own form: the same choices, the same messages for a bad value.
        form = KeyFilterForm(
            {
                "q": options["name"],
                "status": options["status"],
                "kind": options["kind"],
                "owner": options["owner"],
                "unused": options["unused"],
                "protection": options["protection"],
            },
            with_owner=True,
            with_kind=True,
        )
        if not form.is_valid():
            flags = {"q": "--name"}
            problems = [
                f"{flags.get(field, '--' + field)}: {' '.join(messages)}"
                for field, messages in form.errors.items()
            ]
            raise CommandError("\n".join(problems))
        owner = form.cleaned_data.get("owner")
        if owner and not key_owner_exists(organization=organization, email=owner):
            self.stderr.write(
                f"No member or service account of {organization.name} has the email {owner}."
            )
        keys = apply_filters(
            api_key_list(actor=OPERATOR, organization=organization), form.cleaned_data
        )
        if options["limit"]:
            keys = keys[: options["limit"]]
        keys = list(keys)
        if options["json"]:
            self.stdout.write(
                json.dumps([key_out(k) for k in keys], cls=NinjaJSONEncoder, indent=2)
            )
            return
        self._table(keys)
        self.stderr.write(f"{len(keys)} key{'' if len(keys) == 1 else 's'} in {organization.name}.")

    def _table(self, keys: list[ApiKey]) -> None:
        if not keys:
            return
        rows = [
            (
                str(key.pk),
                key.name if len(key.name) <= NAME_WIDTH else key.name[: NAME_WIDTH - 1] + "…",
                key.get_kind_display().lower(),
                str(key.owner),
                key.preview,
                key.state,
                _when(key.expires_at),
                _when(key.last_used_at),
            )
            for key in keys
        ]
        widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        for row in [COLUMNS, *rows]:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
