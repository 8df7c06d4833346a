"""Server-side pagination that stays cheap on big tables and says so when a page does not exist."""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Page, Paginator

# Counting every row of a big table costs as much as the rest of the page together; past this
# many rows a list says "more than 1,000" and counts exactly only when a deeper page is asked for.
COUNT_CAP = 1000
# Every console list shows this many rows a page.
PAGE_SIZE = 50


class CappedPaginator(Paginator):
    """A Paginator whose count stops at `cap` + 1 rows until a page beyond the cap is asked."""

    def __init__(self, object_list, per_page: int, *, cap: int = COUNT_CAP):
        super().__init__(object_list, per_page)
        self.cap = cap
        self.capped = False

    @cached_property
    def count(self) -> int:
        seen = self.object_list[: self.cap + 1].count()
        self.capped = seen > self.cap
        return seen

    def count_exactly(self) -> None:
        """Replace the capped count by the real one (for a page beyond the cap)."""
        self.__dict__["count"] = self.object_list.count()
        self.__dict__.pop("num_pages", None)
        self.capped = False


def paginate(object_list, page_number: str | None, per_page: int = PAGE_SIZE) -> tuple[Page, str]:
    """Return the page asked for and a note for the person when it had to show another one.

    A page number that is not a number shows the first page, one past the end the last page;
    either way the note says what happened instead of answering 404.
    """
    paginator = CappedPaginator(object_list, per_page)
    if page_number in (None, ""):
        return paginator.page(1), ""
    try:
        number = int(page_number)
    except (TypeError, ValueError):
        return paginator.page(1), f"“{page_number[:20]}” is not a page number; showing page 1."
    if number > paginator.num_pages and paginator.capped:
        paginator.count_exactly()
    if 1 <= number <= paginator.num_pages:
        return paginator.page(number), ""
    last = paginator.num_pages
    shown = 1 if number < 1 else last
    return (
        paginator.page(shown),
        f"Page {number} does not exist; showing page {shown} of {last}.",
    )
