"""Failures as one clear line and a distinct exit code: never a traceback, never a key."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import click
import httpx

if TYPE_CHECKING:
    from keyportal_cli.credentials import ResolvedKey

# Exit codes. 2 is click's own, for usage errors.
FAILURE = 1
USAGE = 2
UNAUTHORIZED = 3
FORBIDDEN = 4
NOT_FOUND = 5
RATE_LIMITED = 6
NETWORK = 7
# Not a failure: `keyportal scan` found a key, which a hook or a CI job must tell from one.
FOUND = 8

EXIT_CODES = {
    0: "success",
    FAILURE: "any other failure (the server's status and message)",
    USAGE: "wrong usage: an unknown option, a missing argument",
    UNAUTHORIZED: "no key, or the key was refused (401)",
    FORBIDDEN: "the key lacks a permission, or the app gives API keys no access (403)",
    NOT_FOUND: "not found, or outside the key's reach (404)",
    RATE_LIMITED: "too many failed attempts from this address, or the key's own rate limit (429)",
    NETWORK: "the server cannot be reached, or did not answer in time",
    FOUND: "`keyportal scan` found a key",
}

# What any keyportal token looks like, to blank one out of text that should never hold it.
_TOKEN_RE = re.compile(r"sk-[a-z]+-[0-9A-Za-z]{8,}")


class CliError(click.ClickException):
    """A failure shown as `Error: <message>` on stderr, ending the command with `exit_code`."""

    def __init__(self, message: str, exit_code: int = FAILURE) -> None:
        super().__init__(message)
        # click types exit_code a ClassVar, yet reads it from the exception it caught
        # (Command.main): one per error here.
        self.exit_code = exit_code  # type: ignore[misc]


def scrub(text: str) -> str:
    """Return `text` with anything shaped like a key replaced by its preview."""
    return _TOKEN_RE.sub(lambda match: preview(match.group()), text)


def preview(token: str) -> str:
    """Return a key's preview: its prefix up to the last dash, "...", and its last 4 characters.

    A string too short to be a key shows no tail at all: 4 characters of 10 would say too much.
    """
    prefix, dash, rest = token.rpartition("-")
    if len(rest) < 16:
        return f"{prefix}{dash}..."
    return f"{prefix}{dash}...{rest[-4:]}"


def error_body(response: httpx.Response) -> dict[str, Any]:
    """Return the `error` object of an API error response, or {} when there is none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _server_message(response: httpx.Response) -> str:
    message = str(error_body(response).get("message") or "").strip()
    return message or response.reason_phrase or f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response) -> str:
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        seconds = int(value)
        return f"retry in {seconds} second{'s' if seconds != 1 else ''}"
    if value:
        try:
            return f"retry after {parsedate_to_datetime(value):%H:%M:%S %Z}".strip()
        except (TypeError, ValueError):
            pass
    return "retry in a minute"


def http_error(
    response: httpx.Response, *, key: ResolvedKey | None, url: str, what: str | None = None
) -> CliError:
    """Return the CliError for an API answer that is not a success.

    `what` names the object the request was about ("environment 4"), for a 404.
    """
    status = response.status_code
    message = scrub(_server_message(response))
    body = error_body(response)
    used = key.described if key else "the request"
    # "The key from KEYPORTAL_API_KEY (sk-user-...abcd)", to start a sentence.
    key_said = used[:1].upper() + used[1:]
    if status == 401:
        return CliError(
            f"{key_said} was refused: {message} Run `keyportal login` or pass another key.",
            UNAUTHORIZED,
        )
    if status == 403:
        if body.get("code") == "app_no_access":
            return CliError(
                "This app's sharing settings give API keys no access: an owner or admin must set "
                'the app\'s sharing to "Can edit" in the console.',
                FORBIDDEN,
            )
        permission = body.get("permission")
        if permission:
            return CliError(
                f"{key_said} lacks the permission {permission}: use a key that "
                "holds it, or ask an owner or admin to add it.",
                FORBIDDEN,
            )
        return CliError(f"Refused (403): {message}", FORBIDDEN)
    if status == 404 and not body:
        # Not the API's own 404 (which is JSON): the address is not a keyportal server.
        return CliError(
            f"{url} has no keyportal API ({response.request.url.path} is not found); "
            "check --url or KEYPORTAL_URL.",
            NOT_FOUND,
        )
    if status == 404:
        subject = what or "What you asked for"
        reach = f"the reach of {used}" if key else "reach"
        return CliError(f"{subject} was not found, or is outside {reach}.", NOT_FOUND)
    if status == 429:
        if "RateLimit" in response.headers:
            # The key's own rate limit (its RateLimit fields say where it stands).
            return CliError(f"{key_said} was refused: {message}", RATE_LIMITED)
        if key is None:
            return CliError(
                f"Too many requests from this address: {_retry_after(response)} "
                f"({message.rstrip('.')}).",
                RATE_LIMITED,
            )
        return CliError(
            f"{key_said} was refused, and this address has made too many "
            f"failed attempts: {_retry_after(response)}.",
            RATE_LIMITED,
        )
    if 300 <= status < 400:
        location = response.headers.get("Location", "another address")
        return CliError(
            f"{url} answered with a redirect to {location}; pass that address with --url "
            "(or KEYPORTAL_URL).",
            FAILURE,
        )
    if status >= 500:
        return CliError(f"The server failed ({status} {response.reason_phrase}).", FAILURE)
    return CliError(f"The server refused the request ({status}): {message}", FAILURE)


def network_error(exc: httpx.HTTPError | httpx.InvalidURL, *, url: str) -> CliError:
    """Return the CliError for a request that got no HTTP answer at all."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return CliError(
            f"{url} is not a URL keyportal can use; pass one like "
            "https://keys.example.com with --url.",
            USAGE,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return CliError(f"Cannot connect to {url}: it did not answer within 10 s.", NETWORK)
    if isinstance(exc, httpx.TimeoutException):
        return CliError(f"{url} did not answer in time ({type(exc).__name__}).", NETWORK)
    if isinstance(exc, httpx.ConnectError):
        return CliError(f"Cannot connect to {url}: is keyportal running?", NETWORK)
    return CliError(
        f"The connection to {url} failed ({type(exc).__name__}: {scrub(str(exc)) or 'no detail'}).",
        NETWORK,
    )
