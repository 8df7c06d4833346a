"""Template helpers for the console: relative times with the exact time on hover."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def reltime(value: datetime | None, empty: str = "Never") -> str:
    """Render `value` as "3 hours ago" with the exact UTC time in the tooltip."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    exact = timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, naturaltime(value)
    )
