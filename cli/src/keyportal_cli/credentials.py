"""The credentials file `~/.keyportal/credentials.json`, and which key a command uses.

The folder is 0700 and the file 0600 from the moment it exists: it is created with
`os.open(..., 0o600)` under a temporary name and renamed into place, so no reader ever sees a
half-written file or one with wider permissions. `KEYPORTAL_HOME` moves the folder (tests).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from keyportal_cli.errors import FAILURE, UNAUTHORIZED, CliError, preview

FILE_NAME = "credentials.json"
ENV_KEY = "KEYPORTAL_API_KEY"
ENV_URL = "KEYPORTAL_URL"
DEFAULT_URL = "http://127.0.0.1:8000"


def home() -> Path:
    """Return the folder holding the credentials file."""
    configured = os.environ.get("KEYPORTAL_HOME", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".keyportal"


def path() -> Path:
    """Return the credentials file's path."""
    return home() / FILE_NAME


def shown_path() -> str:
    """Return the file's path as messages show it: `~/...` under the home folder."""
    full = path()
    try:
        return f"~/{full.relative_to(Path.home()).as_posix()}"
    except ValueError:
        return str(full)


def load() -> dict[str, Any] | None:
    """Return the stored credentials, or None when there is no file."""
    try:
        text = path().read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"Cannot read {shown_path()}: {exc.strerror}.", FAILURE) from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise CliError(
            f"{shown_path()} is not a valid credentials file; run `keyportal login` again "
            "(or delete it).",
            FAILURE,
        )
    mode = stat.S_IMODE(path().stat().st_mode)
    if mode & 0o077:
        click.echo(
            f"Warning: {shown_path()} can be read by other users (mode {mode:04o}); "
            f"run `chmod 600 {shown_path()}`.",
            err=True,
        )
    return data


def save(data: dict[str, Any]) -> Path:
    """Write the credentials atomically: folder 0700, file 0600, never briefly wider."""
    folder = home()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # an existing folder may have been made wider by hand
    target = folder / FILE_NAME
    temporary = folder / f".{FILE_NAME}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def delete() -> bool:
    """Delete the credentials file; return whether there was one."""
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class ResolvedKey:
    """A key and where it came from. Its repr never shows the token."""

    token: str = field(repr=False)
    source: str  # "option" (--api-key), "argument" (the library's api_key=), "environment", "file"

    @property
    def preview(self) -> str:
        return preview(self.token)

    @property
    def origin(self) -> str:
        """Return where the key came from, as messages say it."""
        if self.source == "option":
            return "the key from --api-key"
        if self.source == "argument":
            return "the key passed as api_key"
        if self.source == "environment":
            return f"the key from {ENV_KEY}"
        return f"the key in {shown_path()}"

    @property
    def described(self) -> str:
        """Return "the key from KEYPORTAL_API_KEY (sk-user-...abcd)": source and preview only."""
        return f"{self.origin} ({self.preview})"


def _checked(key: ResolvedKey) -> ResolvedKey:
    # A key travels in an HTTP header: anything but visible ASCII would be refused by the HTTP
    # library with an error quoting the header, key included. Say it here instead.
    if not key.token.isascii() or not key.token.isprintable() or " " in key.token:
        raise CliError(
            f"{key.origin[0].upper()}{key.origin[1:]} is not a keyportal key: it holds spaces or "
            "characters keys never have.",
            UNAUTHORIZED,
        )
    return key


def resolve_key(
    option: str | None, stored: dict[str, Any] | None, *, given_as: str = "option"
) -> ResolvedKey | None:
    """Return the key to use: --api-key, then KEYPORTAL_API_KEY, then the credentials file.

    `given_as` is the source an explicit key is reported as ("argument" for the library).
    """
    if option is not None and option.strip():
        return _checked(ResolvedKey(option.strip(), given_as))
    from_environment = os.environ.get(ENV_KEY, "").strip()
    if from_environment:
        return _checked(ResolvedKey(from_environment, "environment"))
    return file_key(stored)


def file_key(stored: dict[str, Any] | None) -> ResolvedKey | None:
    """Return the key the credentials file holds, whatever the environment says, or None."""
    token = (stored or {}).get("api_key")
    if isinstance(token, str) and token.strip():
        return _checked(ResolvedKey(token.strip(), "file"))
    return None


Stored = Callable[[], dict[str, Any] | None]


def find_key(option: str | None, stored: Stored, *, given_as: str = "option") -> ResolvedKey | None:
    """Return the key the CLI and the library use, or None: the explicit key, then
    KEYPORTAL_API_KEY, then the credentials file. `stored` returns the file's contents; it is
    called only when neither of the others gives a key."""
    return resolve_key(option, None, given_as=given_as) or resolve_key(None, stored())


def resolve_url(option: str | None, stored: Stored) -> str:
    """Return the server the CLI and the library use: the explicit address, then KEYPORTAL_URL,
    then the one in the credentials file, then DEFAULT_URL. `stored` is called only when
    neither of the first two gives an address."""
    for candidate in (option, os.environ.get(ENV_URL)):
        if candidate and candidate.strip():
            return candidate.strip().rstrip("/")
    stored_url = (stored() or {}).get("url")
    if isinstance(stored_url, str) and stored_url.strip():
        return stored_url.strip().rstrip("/")
    return DEFAULT_URL
