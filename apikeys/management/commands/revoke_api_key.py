"""Revoke one API key from the command line, as the operator, with a reason for the history."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.access import Actor
from accounts.models import Organization
from apikeys.api.auth import key_in_query
from apikeys.management.commands.verify_api_key import (
    guard_parser,
    key_for_token,
    read_token,
    token_problem,
)
from apikeys.models import ApiKey
from apikeys.services import api_key_revoke

OPERATOR = Actor.operator("operator (manage.py revoke_api_key)")
MAX_REASON = 500


def _label(api_key: ApiKey) -> str:
    kind = api_key.get_kind_display().lower()
    return f"{kind} key “{api_key.name}” ({api_key.preview}, id {api_key.pk})"


class Command(BaseCommand):
    help = (
        "Revoke an API key, for good, as the operator: by its token read on standard input "
        "(--token-stdin; never as an argument), by its preview in an organization (--preview "
        "sk-org-...abcd --organization SLUG) or by its id (--id N). --reason is recorded in "
        "the key's history. Revoking a key already revoked changes nothing and succeeds."
    )
    # call_command("revoke_api_key", "--token-stdin", stdin=io.StringIO(token)) in tests.
    stealth_options = ("stdin",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        return guard_parser(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--token-stdin",
            action="store_true",
            help="read the key's token on standard input (a leaked key, say)",
        )
        which.add_argument("--preview", help="the key's preview, e.g. sk-org-...abcd")
        which.add_argument("--id", type=int, help="the key's id")
        parser.add_argument(
            "--organization",
            help="organization slug: required with --preview, checked with --id",
        )
        parser.add_argument(
            "--reason", required=True, help="why, for the key's history (the audit log)"
        )

    def handle(self, *args, **options) -> None:
        reason = " ".join(options["reason"].split())
        if not reason:
            raise CommandError("--reason must say why the key is revoked.")
        if len(reason) > MAX_REASON:
            raise CommandError(f"--reason holds at most {MAX_REASON} characters.")
        if key_in_query(reason):
            # The history is read by every owner and admin: no secret goes there.
            raise CommandError(
                "--reason seems to hold an API key; describe the key instead (its preview)."
            )
        api_key = self._key(options)
        organization = api_key.organization
        if api_key.is_revoked:
            when = api_key.revoked_at.strftime("%Y-%m-%d %H:%M UTC")
            compromised = " (reported leaked)" if api_key.is_compromised else ""
            self.stdout.write(
                f"The {_label(api_key)} in {organization.name} was already revoked{compromised} "
                f"on {when}; nothing changed."
            )
            return
        api_key_revoke(actor=OPERATOR, api_key=api_key, reason=reason)
        self.stdout.write(
            f"Revoked the {_label(api_key)} in {organization.name}. It stopped working at once; "
            f"the history records: {reason}"
        )

    def _key(self, options: dict) -> ApiKey:
        slug = options["organization"]
        organization = None
        if slug:
            organization = Organization.objects.filter(slug=slug).first()
            if organization is None:
                raise CommandError(f"No organization with the slug “{slug}”.")
        if options["token_stdin"]:
            token = read_token(options.get("stdin"))
            problem = token_problem(token)
            if problem:
                raise CommandError(problem)
            api_key = key_for_token(token)
            if api_key is None or (organization and api_key.organization_id != organization.pk):
                raise CommandError("No key of this installation has this token.")
            return api_key
        keys = ApiKey.objects.select_related("organization")
        if options["id"] is not None:
            api_key = keys.filter(pk=options["id"]).first()
            if api_key is None or (organization and api_key.organization_id != organization.pk):
                where = f" in {organization.name}" if organization else ""
                raise CommandError(f"No API key with the id {options['id']}{where}.")
            return api_key
        if organization is None:
            raise CommandError("--preview needs --organization: previews repeat across them.")
        preview = options["preview"].strip()
        found = list(keys.filter(organization=organization, preview=preview).order_by("pk")[:11])
        if not found:
            raise CommandError(f"No API key of {organization.name} has the preview {preview}.")
        if len(found) > 1:
            count = "More than 10" if len(found) > 10 else str(len(found))
            listed = "\n".join(f"  --id {key.pk}: “{key.name}”, {key.state}" for key in found[:10])
            raise CommandError(
                f"{count} API keys of {organization.name} have the preview {preview}; "
                f"name one by its id:\n{listed}"
            )
        return found[0]
