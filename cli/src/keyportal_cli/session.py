"""What every command shares: the global options, the stored credentials, the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from keyportal_cli import credentials
from keyportal_cli.client import ApiClient
from keyportal_cli.credentials import DEFAULT_URL, ResolvedKey, find_key, resolve_url
from keyportal_cli.errors import UNAUTHORIZED, CliError

__all__ = ["DEFAULT_URL", "KIND_NAMES", "NO_KEY", "Session", "json_option", "set_json"]
KIND_NAMES = {
    "user": "personal key",
    "svc": "service-account key",
    "org": "organization key",
    "project": "project key",
}
NO_KEY = "No API key: run `keyportal login`, set KEYPORTAL_API_KEY or pass --api-key."


@dataclass
class Session:
    """What every command shares: the global options and the stored credentials."""

    url_option: str | None = None
    key_option: str | None = field(default=None, repr=False)
    as_json: bool = False
    _stored: dict[str, Any] | None = field(default=None, repr=False)
    _loaded: bool = False

    def stored(self, *, strict: bool = True) -> dict[str, Any] | None:
        """Return the credentials file's contents (read once), or None.

        A broken file is an error, unless `strict` is False: then it counts as no file.
        """
        if not self._loaded:
            try:
                self._stored = credentials.load()
            except CliError:
                if strict:
                    raise
                self._stored = None
            self._loaded = True
        return self._stored

    def url(self) -> str:
        """Return the server: --url, then KEYPORTAL_URL, then the credentials file, then local."""
        return resolve_url(self.url_option, self.stored)

    def key(self) -> ResolvedKey:
        """Return the key to use, or stop with exit 3 when there is none."""
        # The file is read only when neither --api-key nor KEYPORTAL_API_KEY gives a key.
        found = find_key(self.key_option, self.stored)
        if found is None:
            raise CliError(NO_KEY, UNAUTHORIZED)
        return found

    def client(self) -> ApiClient:
        """Return a client for the server, with the key."""
        return ApiClient(self.url(), self.key())


def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Session).as_json = True


def json_option(command: Any) -> Any:
    """Accept --json after a command too: `keyportal keys list --json`."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=set_json,
        help="Print the server's JSON.",
    )(command)
