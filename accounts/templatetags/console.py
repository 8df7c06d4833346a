"""Template helpers for the console: relative times with the exact time on hover."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext

register = template.Library()

MINUTE, HOUR, DAY = 60, 3600, 86400
MONTH = 30.44 * DAY  # a mean month: 365.25 / 12 days
YEAR = 365.25 * DAY
# Each unit is used while the rounded count stays below the limit; past it the next unit reads
# better ("in 24 hours" is "in 1 day"). Days run to 31 so that a 30-day key reads "in 30 days".
UNITS: list[tuple[float, float, str, str]] = [
    (MINUTE, 60, "%(count)d minute", "%(count)d minutes"),
    (HOUR, 24, "%(count)d hour", "%(count)d hours"),
    (DAY, 32, "%(count)d day", "%(count)d days"),
    (MONTH, 12, "%(count)d month", "%(count)d months"),
    (YEAR, math.inf, "%(count)d year", "%(count)d years"),
]


def _nearest(amount: float) -> int:
    # Half up, not Python's round() to even: 2.5 hours is "3 hours", as people round.
    return math.floor(amount + 0.5)


def duration_text(delta: timedelta) -> str:
    """Return a duration rounded to the nearest of its largest unit: "7 days", "1 hour".

    Rounded, not floored: a key made now that expires in 7 days is a few milliseconds short
    of 7 days when the page renders, and must not read "6 days".
    """
    seconds = abs(delta.total_seconds())
    for size, limit, singular, plural in UNITS:
        count = max(_nearest(seconds / size), 1)
        if count < limit:
            return ngettext(singular, plural, count) % {"count": count}
    raise AssertionError("the last unit has no limit")  # pragma: no cover


def relative_text(value: datetime, now: datetime) -> str:
    """Return "in 23 hours" or "1 minute ago"; within 30 seconds, "just now" or "in a few
    seconds" (a page that does not update itself has no use for seconds)."""
    delta = value - now
    if abs(delta) < timedelta(seconds=30):
        return "in a few seconds" if delta > timedelta(0) else "just now"
    text = duration_text(delta)
    return f"in {text}" if delta > timedelta(0) else f"{text} ago"


@register.simple_tag
def reltime(value: datetime | None, empty: str = "Never") -> str:
    """Render `value` as "3 hours ago" or "in 7 days" (its largest unit only, so tables stay
    narrow) in a <time> element, with the exact time in the tooltip."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    text = relative_text(value, timezone.now())
    exact = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, text)
