"""Check a token from standard input as the API would: valid, or why not, and which key it is."""

from __future__ import annotations

import getpass
import re
import sys
from typing import IO

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from apikeys.models import ApiKey
from apikeys.permissions import ordered
from apikeys.verification import KeyRefused, KeyRejected, VerifiedKey, verify_token
from keyportal_cli.tokens import PREFIXES, has_token_format, token_digest

# Longer than any token: a whole file piped in by mistake is not read into memory.
MAX_TOKEN_INPUT = 1024
_KEY_TEXT = re.compile("(" + "|".join(map(re.escape, PREFIXES.values())) + ")[0-9A-Za-z]+")
ARGUMENT_REFUSED = (
    " A token is read on standard input, never given as an argument (the shell's history and "
    "the process list would keep it); treat this one as exposed."
)


def guard_parser(parser):
    """Make the parser's errors never repeat a token given as an argument by mistake."""
    error = parser.error

    def refuse(message: str):
        if _KEY_TEXT.search(message):
            message = _KEY_TEXT.sub(r"\1…", message) + ARGUMENT_REFUSED
        error(message)

    parser.error = refuse
    return parser


def read_token(stdin: IO[str] | None) -> str:
    """Return the token given on standard input (its first line), never echoed.

    A terminal gets a prompt on standard error and input without echo (getpass); a pipe or a
    file is read as it is: `printf %s "$TOKEN" | manage.py verify_api_key`.
    """
    stream = stdin if stdin is not None else sys.stdin
    if stream is sys.stdin and stream.isatty():
        return getpass.getpass("API key (input hidden): ", stream=sys.stderr).strip()
    return stream.readline(MAX_TOKEN_INPUT).strip()


def token_problem(token: str) -> str | None:
    """Return why `token` cannot be a keyportal key, without saying anything of it."""
    if not token:
        return "Nothing was read on standard input: pipe the token in."
    if not has_token_format(token):
        return (
            "This is not a keyportal API key: its prefix, length or checksum is wrong "
            "(a typo, a truncated copy, or another service's token)."
        )
    return None


def key_for_token(token: str) -> ApiKey | None:
    """Return the key whose current or previous secret is `token` (revoked keys included)."""
    digest = token_digest(token)
    return (
        ApiKey.objects.select_related(
            "organization", "owner_user", "owner_service_account", "owner_project"
        )
        .filter(Q(digest=digest) | Q(previous_digest=digest))
        .first()
    )


def describe_key(api_key: ApiKey, permissions: list[str] | None = None) -> list[tuple[str, str]]:
    """Return what the commands print of a key: never its token nor its digest."""
    organization = api_key.organization
    expires = api_key.expires_at.strftime("%Y-%m-%d %H:%M UTC") if api_key.expires_at else "never"
    rows = [
        ("id", str(api_key.pk)),
        ("name", api_key.name),
        ("kind", api_key.get_kind_display().lower()),
        ("organization", f"{organization.name} ({organization.slug})"),
        ("owner", str(api_key.owner)),
        ("preview", api_key.preview),
        ("state", api_key.state),
        ("expires", expires),
        ("permissions", ", ".join(ordered(api_key.permissions)) or "none"),
    ]
    if permissions is not None:
        rows.append(("effective permissions", ", ".join(ordered(permissions)) or "none"))
    return rows


class Command(BaseCommand):
    help = (
        "Read an API key's token on standard input and say whether it is valid, or why not, "
        "with the same checks as the API (state, owner, allowlist, rate limits, budget), and "
        "which key it is (name, kind, organization, preview, state, permissions). Counts "
        "nothing against the key. Exit status 0 when valid, 1 when not. The token is never "
        'printed: `printf %s "$TOKEN" | manage.py verify_api_key`.'
    )
    # call_command("verify_api_key", stdin=io.StringIO(token)) in tests.
    stealth_options = ("stdin",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        return guard_parser(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--ip",
            help="the address the key would be used from (for a key with an IP allowlist)",
        )

    def handle(self, *args, **options) -> None:
        token = read_token(options.get("stdin"))
        problem = token_problem(token)
        if problem:
            self.stdout.write(f"Not valid (invalid_key): {problem}")
            raise CommandError("The key is not valid.", returncode=1)
        try:
            verified = verify_token(token, ip=options["ip"] or None, consume=False)
        except KeyRefused as refused:
            message = refused.message
            if refused.code == "ip_not_allowed" and not options["ip"]:
                message = (
                    "This API key works only from the addresses on its allowlist "
                    f"({', '.join(refused.api_key.protections.get('allowed_ips', []))}): "
                    "give the address it is used from with --ip."
                )
            self._not_valid(refused.code, message, refused.api_key)
        except KeyRejected as rejected:
            self._not_valid(rejected.code, rejected.message, key_for_token(token))
        else:
            self._valid(verified)

    def _valid(self, verified: VerifiedKey) -> None:
        note = ""
        if verified.previous_secret:
            until = verified.api_key.previous_valid_until.strftime("%Y-%m-%d %H:%M UTC")
            note = f" (its previous secret, which works until {until}: use the new one)"
        self.stdout.write(f"Valid{note}.")
        self._write(describe_key(verified.api_key, sorted(verified.permissions)))

    def _not_valid(self, code: str, message: str, api_key: ApiKey | None) -> None:
        self.stdout.write(f"Not valid ({code}): {message}")
        if api_key is None:
            self.stdout.write("No key of this installation has this token.")
        else:
            self._write(describe_key(api_key))
        raise CommandError("The key is not valid.", returncode=1)

    def _write(self, rows: list[tuple[str, str]]) -> None:
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"  {label + ':':<{width + 1}} {value}")
