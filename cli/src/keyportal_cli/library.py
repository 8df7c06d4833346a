"""keyportal from Python: `keyportal_cli.login()` and `keyportal_cli.Client`.

    import keyportal_cli

    client = keyportal_cli.login(url="https://keys.example.com")  # the browser login, once
    client = keyportal_cli.Client()  # later: the key `keyportal login` or login() stored
    client.whoami()["organization"]["name"]
    created = client.keys.create(name="deploy", preset="read-only")  # created["token"]

The client finds the server and the key exactly as the `keyportal` command does (the same
functions): the argument, then KEYPORTAL_URL / KEYPORTAL_API_KEY, then the credentials file,
then (for the server) http://127.0.0.1:8000. It never prints nor logs the key: its repr shows the
key's preview only. A refusal raises KeyportalError, whose fields say what happened.
"""

from __future__ import annotations

import builtins
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

import click
import httpx

from keyportal_cli import credentials, pages
from keyportal_cli import device_flow as device
from keyportal_cli.client import ApiClient, Verbs, segment
from keyportal_cli.credentials import ENV_KEY, ResolvedKey, find_key, resolve_url
from keyportal_cli.errors import (
    NETWORK,
    UNAUTHORIZED,
    USAGE,
    CliError,
    error_body,
    preview,
    scrub,
)
from keyportal_cli.output import when

__all__ = ["Client", "KeyportalError", "Keys", "login"]

PAGE = 200  # the most the API gives per page
NO_KEY = (
    "No API key: call keyportal_cli.login(), run `keyportal login`, set KEYPORTAL_API_KEY or "
    "pass api_key=."
)


class KeyportalError(Exception):
    """A request keyportal refused or could not answer.

    `status` is the HTTP status (None when there was no answer), `code` the API's error code
    (`insufficient_scope`, `not_found`, `invalid_key`, `rate_limited`...; see docs/api.md) or
    one of the client's own (`no_key`, `connection_error`, `invalid_url`, `no_api`, `redirect`,
    `access_denied`, `expired_token`, `invalid_credentials`), `message` what went wrong (never
    the key), `permission` the permission a 403 names, `retry_after` the seconds a 429 asks to
    wait, `body` the API's `error` object.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        permission: str | None = None,
        retry_after: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.permission = permission
        self.retry_after = retry_after
        self.body = body or {}

    def __str__(self) -> str:
        said = " ".join(str(part) for part in (self.status, self.code) if part is not None)
        return f"{self.message} ({said})" if said else self.message

    def __repr__(self) -> str:
        return f"KeyportalError({self.message!r}, status={self.status!r}, code={self.code!r})"


class _Refused(CliError):
    """Carries a KeyportalError through the CLI's code (ApiClient.request, login's polling)."""

    def __init__(self, error: KeyportalError) -> None:
        super().__init__(error.message)
        self.error = error


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None


def error_from(
    response: httpx.Response, *, key: ResolvedKey | None, url: str, what: str | None = None
) -> KeyportalError:
    """Return the KeyportalError for an API answer that is not a success."""
    status = response.status_code
    body = error_body(response)
    code = body.get("code")
    message = scrub(str(body.get("message") or "").strip()) or (
        response.reason_phrase or f"HTTP {status}"
    )
    if status == 401 and key is not None:
        message = f"{key.described[:1].upper()}{key.described[1:]} was refused: {message}"
    elif status == 404 and not body:
        code = "no_api"
        message = (
            f"{url} has no keyportal API ({response.request.url.path} is not found); "
            "check url= or KEYPORTAL_URL."
        )
    elif status == 404:
        reach = f"the reach of {key.described}" if key else "reach"
        message = f"{what or 'What you asked for'} was not found, or is outside {reach}."
    elif 300 <= status < 400:
        code = "redirect"
        location = response.headers.get("Location", "another address")
        message = f"{url} answered with a redirect to {location}; pass that address as url=."
    elif status >= 500 and not code:
        code = "server_error"
        message = f"The server failed ({status} {response.reason_phrase})."
    return KeyportalError(
        message,
        status=status,
        code=code,
        permission=body.get("permission"),
        retry_after=_retry_after(response) if status == 429 else None,
        body=body,
    )


@contextmanager
def _translated() -> Iterator[None]:
    """Turn the CLI's errors (made for a terminal and an exit code) into KeyportalError."""
    try:
        yield
    except _Refused as exc:
        raise exc.error from None
    except CliError as exc:
        message = exc.message
        if exc.exit_code == NETWORK:
            code = "connection_error"
        elif exc.exit_code == USAGE:
            code = "invalid_url"
            message = message.replace(" with --url", " as url=")
        elif exc.exit_code == UNAUTHORIZED:
            code = "invalid_key"
        elif message == device.DENIED:
            code = "access_denied"
        elif message == device.EXPIRED:
            code = "expired_token"
            message = "The code expired before it was approved; call keyportal_cli.login() again."
        else:
            code = None
        raise KeyportalError(message, code=code) from None


def _warn(message: str) -> None:
    # Pointed at the caller's line, past this package's frames.
    warnings.warn(message, skip_file_prefixes=(os.path.dirname(__file__),))


class _Api(ApiClient):
    """The CLI's HTTP client, whose refusals carry a KeyportalError instead of a CLI message."""

    def fail(self, response: httpx.Response, what: str | None = None) -> CliError:
        return _Refused(error_from(response, key=self.key, url=self.url, what=what))


def _load_stored(*, strict: bool = True) -> dict[str, Any] | None:
    """Return the credentials file's contents; a broken file raises, unless not `strict`."""
    try:
        return credentials.load()
    except CliError as exc:
        if not strict:
            return None
        raise KeyportalError(exc.message, code="invalid_credentials") from None


class Client(Verbs):
    """A keyportal client with one key, for scripts and notebooks.

    `url` and `api_key` are found as the `keyportal` command finds them: the argument, then
    KEYPORTAL_URL / KEYPORTAL_API_KEY, then the credentials file `keyportal login` (or
    `keyportal_cli.login()`) wrote, then (for the url) http://127.0.0.1:8000. Use it in a
    `with` block, or call close(), to close its connections.
    """

    def __init__(self, url: str | None = None, api_key: str | None = None) -> None:
        stored: list[dict[str, Any] | None] = []

        def read_once() -> dict[str, Any] | None:
            # The file is read only when an argument or the environment leaves something open.
            if not stored:
                stored.append(_load_stored())
            return stored[0]

        with _translated():
            found = find_key(api_key, read_once, given_as="argument")
        if found is None:
            raise KeyportalError(NO_KEY, code="no_key")
        self._setup(resolve_url(url, read_once), found)

    @classmethod
    def _with_key(cls, url: str, key: ResolvedKey) -> Client:
        client = cls.__new__(cls)
        client._setup(url, key)
        return client

    def _setup(self, url: str, key: ResolvedKey) -> None:
        with _translated():
            self._api = _Api(url, key, warn=_warn)
        self.keys = Keys(self)

    # What the client is: never the key itself.

    @property
    def url(self) -> str:
        """The server's address."""
        return self._api.url

    @property
    def key_preview(self) -> str:
        """The key's preview, `sk-user-...abcd`."""
        return self._key.preview

    @property
    def key_source(self) -> str:
        """Where the key came from: "argument", "environment" or "file"."""
        return self._key.source

    @property
    def _key(self) -> ResolvedKey:
        key = self._api.key
        assert key is not None  # a Client always has one
        return key

    def __repr__(self) -> str:
        return (
            f"keyportal_cli.Client(url={self.url!r}, key={self.key_preview!r}, "
            f"source={self.key_source!r})"
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections."""
        self._api.close()

    # Any endpoint of the API.

    def request(self, method: str, path: str, *, what: str | None = None, **kwargs: Any) -> Any:
        """Call `<url>/api/v1/<path>` and return the parsed JSON (None for an empty answer).

        `kwargs` go to httpx: `params=`, `json=`, `files=`... A refusal raises KeyportalError.
        """
        if "://" in path:
            # httpx would send the key to any absolute URL: only paths of this server.
            raise ValueError(f"Give a path of the API such as 'keys', not a URL: {path!r}.")
        path = path.lstrip("/").removeprefix("api/v1/")
        with _translated():
            return self._api.request(method, path, what=what, **kwargs)

    def pages(self, path: str, **params: Any) -> Iterator[Any]:
        """Yield every item of a list endpoint, page after page: `client.pages("apps")`."""
        try:
            yield from pages.iterate(
                lambda query: self.get(path, params=_query(query)), params, page_size=PAGE
            )
        except pages.UnexpectedPage as exc:
            raise KeyportalError(str(exc), code="unexpected_answer") from None

    # Shortcuts.

    def whoami(self) -> dict[str, Any]:
        """The key in use: name, preview, organization, owner, effective permissions, expiry."""
        me: dict[str, Any] = self.get("whoami")
        return me

    def _rotated(self, key: dict[str, Any], *, own_id: int | None) -> None:
        """Use the new secret when the key rotated is the key in use; update the file too."""
        if own_id != key["id"]:
            return
        old = self._key
        if old.source == "file":
            stored = _load_stored(strict=False)
            if stored and stored.get("api_key") == old.token:
                credentials.save({**stored, "api_key": key["token"]})
        self._api.use_key(ResolvedKey(key["token"], old.source))


def _query(params: dict[str, Any]) -> dict[str, Any]:
    """Drop the filters left out (None) and write booleans as the API reads them."""
    return {
        name: (str(value).lower() if isinstance(value, bool) else value)
        for name, value in params.items()
        if value is not None
    }


def _expiry(value: datetime | date | str) -> str:
    """A date is the end of that day, UTC (as in the console and the CLI); naive times are UTC."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return datetime.combine(value, time.max, tzinfo=UTC).isoformat()
    from keyportal_cli.commands.keys import ExpiryType  # the CLI's own reading of --expires-at

    try:
        return ExpiryType().convert(value, None, None)
    except click.BadParameter as exc:
        raise ValueError(exc.format_message()) from None


def _rate_limits(limits: list[Any]) -> list[dict[str, Any]]:
    """Accept "100/minute" (as `--rate-limit` does) or {"limit": 100, "window": "minute"}."""
    from keyportal_cli.commands.keys import RateLimitType

    try:
        return [RateLimitType().convert(limit, None, None) for limit in limits]
    except click.BadParameter as exc:
        raise ValueError(exc.format_message()) from None


def _budget(budget: int | dict[str, Any] | None) -> dict[str, Any] | None:
    return {"amount": budget} if isinstance(budget, int) else budget


class Keys:
    """The organization's keys that the client's key may act on (it needs api-keys:manage)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def iter(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Yield the keys, reading page after page; the filters are `list`'s."""
        for reserved in ("limit", "offset", "cursor"):
            if reserved in filters:
                raise TypeError(f"keys.list() reads every page itself; {reserved}= is not a filter")
        return self._client.pages("keys", **filters)

    def list(self, **filters: Any) -> list[dict[str, Any]]:
        """Return every key, as the API shows it (never a token).

        Filters: `name` (part of it), `status` (active, disabled, expired, revoked,
        compromised; any but revoked when left out), `kind` (org, project, svc, user), `owner`
        (an email or a service account), `unused` ("30", "90", "365", "never"), `protection`
        (ip_allowlist, rate_limited, budget).
        """
        return list(self.iter(**filters))

    def get(self, key_id: int) -> dict[str, Any]:
        """Return one key."""
        key: dict[str, Any] = self._client.get(f"keys/{segment(key_id)}", what=f"Key {key_id}")
        return key

    def create(
        self,
        name: str,
        # builtins.list: in this class, `list` is the method above.
        permissions: builtins.list[str] | None = None,
        *,
        preset: str | None = None,
        kind: str | None = None,
        owner_id: int | None = None,
        expires_at: datetime | date | str | None = None,
        scopes: dict[str, Any] | None = None,
        allowed_ips: builtins.list[str] | None = None,
        rate_limits: builtins.list[Any] | None = None,
        budget: int | dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a key and return it with its `token`: the only time the token is given.

        Give `permissions` or a `preset` (read-only, all, role, project). `kind` is org,
        project, svc or user; left out, as in the CLI, a personal key makes personal keys and
        any other key organization keys. `expires_at`: a date (its end, UTC), a datetime or an
        ISO 8601 string. `rate_limits`: ["100/minute", ...]; left out, the organization policy's
        default. `budget`: a number of requests, or {"amount", "refill", "refill_amount"}.
        """
        if kind is None:
            kind = "user" if self._client.whoami()["kind"] == "user" else "org"
        body: dict[str, Any] = {"name": name, "kind": kind}
        optional = {
            "permissions": list(permissions) if permissions is not None else None,
            "preset": preset,
            "owner_id": owner_id,
            "expires_at": _expiry(expires_at) if expires_at is not None else None,
            "scopes": scopes,
            "allowed_ips": list(allowed_ips) if allowed_ips is not None else None,
            "rate_limits": _rate_limits(rate_limits) if rate_limits is not None else None,
            "budget": _budget(budget),
        }
        body.update({field: value for field, value in optional.items() if value is not None})
        created: dict[str, Any] = self._client.post("keys", json=body)
        return created

    def update(self, key_id: int, **changes: Any) -> dict[str, Any]:
        """Change a key: name, status (active, disabled), permissions, preset, scopes,
        expires_at (None: never), allowed_ips, rate_limits, budget ([] or None removes them)."""
        if "expires_at" in changes and changes["expires_at"] is not None:
            changes["expires_at"] = _expiry(changes["expires_at"])
        if changes.get("rate_limits"):
            changes["rate_limits"] = _rate_limits(changes["rate_limits"])
        if "budget" in changes:
            changes["budget"] = _budget(changes["budget"])
        key: dict[str, Any] = self._client.patch(
            f"keys/{segment(key_id)}", json=changes, what=f"Key {key_id}"
        )
        return key

    def rotate(self, key_id: int, *, grace: str = "now") -> dict[str, Any]:
        """Give a key a new secret and return it with its `token`; the old secret stops now
        (`grace="now"`) or after "1h", "24h" or "7d". Rotating the client's own key switches
        the client to the new secret, and the credentials file too when the key came from it."""
        own_id = self._client.whoami()["id"]
        key: dict[str, Any] = self._client.post(
            f"keys/{segment(key_id)}/rotate", json={"grace": grace}, what=f"Key {key_id}"
        )
        self._client._rotated(key, own_id=own_id)
        return key

    def revoke(self, key_id: int) -> dict[str, Any]:
        """Revoke a key: it stops working at once, for good. Returns the key."""
        key: dict[str, Any] = self._client.post(
            f"keys/{segment(key_id)}/revoke", what=f"Key {key_id}"
        )
        return key


def login(
    url: str | None = None,
    *,
    open_browser: bool = True,
    poll_interval: float | None = None,
    on_code: Callable[[dict[str, Any]], None] | None = None,
) -> Client:
    """Log in through the browser, as `keyportal login` does, and return a Client.

    The server is `url`, else KEYPORTAL_URL, else the one stored, else http://127.0.0.1:8000.
    The link and the code are printed on stderr, or given to `on_code` (a dict with
    `user_code`, `verification_uri`, `verification_uri_complete`, `expires_in`), which then
    replaces every message. The person approves the code in the browser; the 7-day personal key
    that gives is stored in the credentials file like the CLI's (an earlier login's key on the
    same server is revoked), so later `Client()` calls and `keyportal` commands use it too.
    Raises KeyportalError with code `access_denied` or `expired_token` when the login fails.
    """
    say: Callable[[str], None] = (
        (lambda _message: None) if on_code else (lambda message: click.echo(message, err=True))
    )
    previous = _load_stored(strict=False)  # a broken file is simply replaced
    server = resolve_url(url, lambda: previous)
    with _translated(), _Api(server, warn=_warn) as api:
        code = device.request_code(api)
        if on_code is None:
            device.show_code(code, open_browser=open_browser)
        else:
            on_code(
                {
                    field: code.get(field)
                    for field in (
                        "user_code",
                        "verification_uri",
                        "verification_uri_complete",
                        "expires_in",
                    )
                }
            )
            if open_browser:
                device.open_page(code)
        answer = device.wait_for_token(api, code, poll_interval=poll_interval)
    key, organization = answer["key"], answer["organization"]
    device.save_login(server, answer)
    revoked = device.revoke_previous(previous, url=server, new_key_id=key["id"])
    if revoked is not None:
        say(f"Revoked the key of the previous login ({revoked.preview}).")
    say(
        f"Logged in to {organization['name']} as {key['name']} ({preview(answer['token'])}); "
        f"the key expires {when(key.get('expires_at'), empty='never')}."
    )
    if os.environ.get(ENV_KEY, "").strip():
        say(
            f"Note: {ENV_KEY} is set: Client() and `keyportal` use it before the stored key "
            "(the client returned here uses the new key)."
        )
    return Client._with_key(server, ResolvedKey(answer["token"], "file"))
