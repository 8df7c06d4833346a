"""Template helpers for the console: relative times with the exact time on hover."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil

register = template.Library()


@register.simple_tag
def reltime(value: datetime | None, empty: str = "Never") -> str:
    """Render `value` as "3 hours ago" or "in 4 weeks" (its largest unit only, so tables stay
    narrow) with the exact time in the tooltip."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    now = timezone.now()
    if abs(now - value) < timedelta(minutes=1):
        text = naturaltime(value)
    elif value <= now:
        text = f"{timesince(value, now, depth=1)} ago"
    else:
        text = f"in {timeuntil(value, now, depth=1)}"
    exact = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, text)
