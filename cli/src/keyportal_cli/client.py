"""A small HTTP client for keyportal's API: base URL, bearer key, JSON, timeouts, user agent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import click
import httpx

from keyportal_cli import __version__
from keyportal_cli.credentials import ResolvedKey
from keyportal_cli.errors import CliError, http_error, network_error

USER_AGENT = f"keyportal-cli/{__version__}"
# Connecting should be quick; an upload of a 10 MB bundle or a busy server may take longer.
TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_WARNED: set[str] = set()


def segment(value: object) -> str:
    """Return `value` quoted for use as one segment of a URL path."""
    return quote(str(value), safe="")


def _on_stderr(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _warn_if_cleartext(url: str, warn: Callable[[str], None] = _on_stderr) -> None:
    """Warn once per address when keys would cross the network unencrypted."""
    parts = urlsplit(url)
    if parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK and url not in _WARNED:
        _WARNED.add(url)
        warn(f"{url} is not HTTPS; keys cross the network unencrypted.")


class Verbs:
    """`get`, `post`, `put`, `patch` and `delete` of `<url>/api/v1/<path>`, each returning the
    parsed JSON of the answer, through the class's own `request`."""

    def request(self, method: str, path: str, *, what: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


class ApiClient(Verbs):
    """Calls `<url>/api/v1/...`, sending the key (when there is one) as a bearer token.

    Redirects are never followed: one would carry the key to wherever the server points.
    """

    def __init__(
        self,
        url: str,
        key: ResolvedKey | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        warn: Callable[[str], None] = _on_stderr,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key.token}"
        _warn_if_cleartext(self.url, warn)
        try:
            self._http = httpx.Client(
                base_url=f"{self.url}/api/v1/",
                headers=headers,
                timeout=TIMEOUT,
                follow_redirects=False,
                transport=transport,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError, ValueError) as exc:
            raise network_error(httpx.InvalidURL(str(exc)), url=self.url) from None

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Return the raw response; a request that gets no answer raises a CliError (exit 7)."""
        try:
            return self._http.request(method, path.lstrip("/"), **kwargs)
        except httpx.HTTPError as exc:
            raise network_error(exc, url=self.url) from None

    def fail(self, response: httpx.Response, what: str | None = None) -> CliError:
        """Return the CliError for an error answer."""
        return http_error(response, key=self.key, url=self.url, what=what)

    def request(self, method: str, path: str, *, what: str | None = None, **kwargs: Any) -> Any:
        """Return the parsed JSON of a successful answer (None for 204); raise a CliError else."""
        response = self.send(method, path, **kwargs)
        if not response.is_success:
            raise self.fail(response, what)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CliError(
                f"{self.url} answered with something other than JSON; is it a keyportal server?"
            ) from None

    def use_key(self, key: ResolvedKey) -> None:
        """Send `key` from now on (the key in use was rotated)."""
        self.key = key
        self._http.headers["Authorization"] = f"Bearer {key.token}"
