"""The command groups of `keyportal`: app, environments, keys and secrets."""

from __future__ import annotations

from typing import Any

from keyportal_cli import pages
from keyportal_cli.client import ApiClient
from keyportal_cli.errors import CliError

# Items asked for per request when reading a whole list: the API's largest page.
PAGE = 200


def every(client: ApiClient, path: str, *, what: str | None = None) -> list[dict[str, Any]]:
    """Return every item of the list at `path`, reading it page after page.

    Every list of the API answers a page of `?limit=&offset=`: `{"items", "total", "limit",
    "offset", "next_offset"}`, `next_offset` null on the last one (keyportal_cli.pages also
    reads the bare lists of servers from before).
    """
    try:
        return list(
            pages.iterate(lambda params: client.get(path, params=params, what=what), page_size=PAGE)
        )
    except pages.UnexpectedPage as exc:
        raise CliError(
            f"{client.url} answered a list in a shape this CLI does not read: {exc}"
        ) from None
