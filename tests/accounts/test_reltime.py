"""Relative times: rounded to the nearest unit, in plain grammar, the exact time on hover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from accounts.templatetags.console import relative_text, reltime

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def ahead(**kwargs) -> str:
    return relative_text(NOW + timedelta(**kwargs), NOW)


def behind(**kwargs) -> str:
    return relative_text(NOW - timedelta(**kwargs), NOW)


@pytest.mark.parametrize(
    ("delta", "future", "past"),
    [
        (timedelta(0), "just now", "just now"),
        (timedelta(seconds=29), "in a few seconds", "just now"),
        (timedelta(seconds=30), "in 1 minute", "1 minute ago"),
        (timedelta(seconds=89), "in 1 minute", "1 minute ago"),
        (timedelta(seconds=90), "in 2 minutes", "2 minutes ago"),
        (timedelta(minutes=59, seconds=29), "in 59 minutes", "59 minutes ago"),
        (timedelta(minutes=59, seconds=30), "in 1 hour", "1 hour ago"),
        (timedelta(hours=1), "in 1 hour", "1 hour ago"),
        (timedelta(hours=1, minutes=29), "in 1 hour", "1 hour ago"),
        (timedelta(hours=1, minutes=30), "in 2 hours", "2 hours ago"),
        (timedelta(hours=23), "in 23 hours", "23 hours ago"),
        (timedelta(hours=23, minutes=29), "in 23 hours", "23 hours ago"),
        (timedelta(hours=23, minutes=30), "in 1 day", "1 day ago"),
        (timedelta(days=1), "in 1 day", "1 day ago"),
        (timedelta(days=1, hours=11), "in 1 day", "1 day ago"),
        (timedelta(days=1, hours=12), "in 2 days", "2 days ago"),
        # A key made now with a 7-day expiry is a moment short of 7 days when the page renders.
        (timedelta(days=7) - MS, "in 7 days", "7 days ago"),
        (timedelta(days=7) - timedelta(hours=11), "in 7 days", "7 days ago"),
        (timedelta(days=7) - timedelta(hours=12, seconds=1), "in 6 days", "6 days ago"),
        (timedelta(days=30) - MS, "in 30 days", "30 days ago"),
        (timedelta(days=31, hours=11), "in 31 days", "31 days ago"),
        (timedelta(days=31, hours=12), "in 1 month", "1 month ago"),
        (timedelta(days=90) - MS, "in 3 months", "3 months ago"),
        (timedelta(days=350), "in 11 months", "11 months ago"),
        (timedelta(days=352), "in 1 year", "1 year ago"),
        (timedelta(days=365) - MS, "in 1 year", "1 year ago"),
        (timedelta(days=913), "in 2 years", "2 years ago"),
        (timedelta(days=914), "in 3 years", "3 years ago"),
    ],
)
def test_boundaries(delta, future, past):
    """Each duration rounds to the nearest of its largest unit, half up, both ways in time."""
    assert relative_text(NOW + delta, NOW) == future
    assert relative_text(NOW - delta, NOW) == past


def test_never_says_a_or_an():
    """One of a unit reads "1 hour", as the others do ("in 1 hour", not "in an hour")."""
    assert ahead(hours=1) == "in 1 hour"
    assert behind(minutes=1) == "1 minute ago"
    assert "\xa0" not in ahead(hours=23)


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def test_the_tag_renders_a_time_element_with_the_exact_time_in_its_title(frozen_now, settings):
    """The text is relative; the <time> holds the ISO time and the title the local exact time."""
    settings.TIME_ZONE = "Europe/Paris"
    value = NOW + timedelta(days=7) - MS
    with timezone.override(ZoneInfo("Europe/Paris")):
        html = reltime(value)
    assert html == (
        f'<time datetime="{value.isoformat()}" title="2025-06-08 13:59:59 CEST">in 7 days</time>'
    )


def test_nothing_reads_never_or_what_the_page_says(frozen_now):
    """No time at all reads "Never" (or the text given), muted, without a <time>."""
    assert reltime(None) == '<span class="muted">Never</span>'
    rendered = Template('{% reltime value "No expiry" %}').render(Context({"value": None}))
    assert rendered == '<span class="muted">No expiry</span>'


def test_the_tag_escapes_nothing_it_should_not(frozen_now):
    """The tag's output is safe HTML in a template, not escaped twice."""
    rendered = Template("{% reltime value %}").render(Context({"value": NOW - timedelta(hours=3)}))
    assert rendered.endswith(">3 hours ago</time>")
    assert "&lt;" not in rendered
