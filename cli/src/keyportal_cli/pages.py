"""Reading every page of a list endpoint, whichever shape its answer has.

A list endpoint answers either a bare JSON list (paged with `limit` and `offset`), or an
envelope `{"items": [...], ...}` that says where the next page is: `next_cursor` (sent back as
`cursor`), `next_offset` (sent back as `offset`), or only `total` (the next offset is the number
of items read so far). `iterate` reads both, so callers work before and after a change of shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Fetch = Callable[[dict[str, Any]], Any]


class UnexpectedPage(ValueError):
    """A page that is neither a list nor an envelope with a list of `items`."""


def iterate(fetch: Fetch, params: dict[str, Any] | None = None, *, page_size: int) -> Iterator[Any]:
    """Yield every item of every page; `fetch(params)` returns one page's parsed JSON.

    `params` are the filters; `limit` (the page size) and the position are added here.
    """
    query = {**(params or {}), "limit": page_size}
    position: dict[str, Any] = {}  # the first page: no offset nor cursor, whichever is used
    read = 0
    seen_cursors: set[str] = set()
    while True:
        page = fetch({**query, **position})
        if isinstance(page, list):
            items, envelope = page, None
        elif isinstance(page, dict) and isinstance(page.get("items"), list):
            items, envelope = page["items"], page
        else:
            raise UnexpectedPage(
                "A page of a list is neither a list nor an object with items: "
                f"{type(page).__name__}."
            )
        yield from items
        read += len(items)
        following = _next(envelope, items, read=read, page_size=page_size)
        if following is None:
            return
        cursor = following.get("cursor")
        if cursor is not None:
            if cursor in seen_cursors:  # a server repeating itself must not loop forever
                return
            seen_cursors.add(cursor)
        position = following


def _next(
    envelope: dict[str, Any] | None, items: list[Any], *, read: int, page_size: int
) -> dict[str, Any] | None:
    """Return the position of the next page, or None when this page was the last."""
    if not items:
        return None
    if envelope is None:
        return {"offset": read} if len(items) >= page_size else None
    if "next_cursor" in envelope:
        cursor = envelope["next_cursor"]
        return {"cursor": str(cursor)} if cursor not in (None, "") else None
    if "next_offset" in envelope:
        offset = envelope["next_offset"]
        return {"offset": int(offset)} if offset is not None and int(offset) >= read else None
    total = envelope.get("total")
    if isinstance(total, int):
        return {"offset": read} if read < total else None
    return {"offset": read} if len(items) >= page_size else None
