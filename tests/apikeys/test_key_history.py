"""A key's history on its page: what happened, in words, with the key's own acts named."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from accounts.access import Actor
from accounts.models import AuditEvent, AuditEventType, Origin
from apikeys.models import ApiKey, KeyKind
from apikeys.services import api_key_rotate, api_key_update
from projects.services import team_create
from tests.apikeys.conftest import detail_url, edit_data, new_key, rotate_url

pytestmark = pytest.mark.django_db


def history_labels(response) -> list[str]:
    """Return the "What" column of a key's history, newest first, as text."""
    section = response.content.decode().split('<h2 id="history">History</h2>', 1)[1]
    cells = re.findall(r'<td class="audit-label[^"]*"[^>]*>(.*?)</td>', section, re.S)
    return [unescape(re.sub(r"<[^>]+>", " ", cell)).split("  ")[0].strip() for cell in cells]


@pytest.fixture
def personal(org) -> ApiKey:
    return new_key(org, KeyKind.USER, name="laptop")[0]


def test_history_reads_as_words_not_action_codes(client_for, org, personal):
    """Disable, enable, permissions, expiry and rotation read as people say them."""
    client = client_for(org.member)
    page = detail_url(personal)
    for changes in (
        {"status": "disabled", "expiration": "keep"},
        {"status": "active", "expiration": "keep"},
        {"permissions": ["projects:read", "teams:read"], "expiration": "keep"},
        {"expiration": "30"},
    ):
        client.post(page, edit_data(personal, **changes))
        personal.refresh_from_db()
    client.post(rotate_url(personal), {"grace": "24h"})

    response = client.get(page)

    assert history_labels(response) == [
        "Rotated (old secret works 24 hours)",
        "Expiry changed",
        "Permissions changed",
        "Enabled",
        "Disabled",
        "Created",
    ]
    html = response.content.decode()
    assert "api_key.updated" not in html
    assert "api_key.rotated" not in html


def test_a_status_change_records_the_new_status(org, personal):
    """Disabling writes the new status with the change, so the history can say "Disabled"."""
    api_key_update(actor=Actor(user=org.member), api_key=personal, status="disabled")
    api_key_update(actor=Actor(user=org.member), api_key=personal, name="renamed")

    status_edit, rename = AuditEvent.objects.filter(action="api_key.updated").order_by("id")

    assert status_edit.detail["changed"] == ["status"]
    assert status_edit.detail["status"] == "disabled"
    assert "status" not in rename.detail


def test_a_refusal_names_the_act_and_the_reason(client_for, org):
    """An admin's refused rotation reads "Refused: rotate — <why>" in the key's history."""
    api_key, _ = new_key(org, "org", name="owners only", permissions=["members:update"])
    client_for(org.admin).post(rotate_url(api_key), {"grace": "now"})

    labels = history_labels(client_for(org.owner).get(detail_url(api_key)))

    assert labels[0].startswith("Refused: rotate — You cannot rotate this key")
    assert labels[1] == "Created"


def test_what_the_key_did_names_what_it_did_it_to(client_for, org):
    """An event the key caused as an actor reads with its subject and its target's name."""
    api_key, _ = new_key(org, "org", name="ci", permissions=["teams:create"])
    team_create(
        actor=Actor(user=None, key=api_key, origin=Origin.API, label=str(api_key)),
        organization=org.organization,
        name="Platform",
    )

    response = client_for(org.owner).get(detail_url(api_key))

    assert history_labels(response) == ["Team created", "Created"]
    assert '<span class="cell-line muted breakable">Platform</span>' in response.content.decode()


def test_history_times_are_relative_with_the_exact_time_on_hover(client_for, org, personal):
    """Each event's time reads "just now" in a <time> whose title holds the exact time."""
    html = client_for(org.member).get(detail_url(personal)).content.decode()
    section = html.split('<h2 id="history">History</h2>', 1)[1]
    match = re.search(r'<time datetime="([^"]+)" title="([^"]+)">just now</time>', section)
    assert match
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+", match.group(2))


def test_a_seven_day_key_expires_in_7_days_on_its_page(client_for, org):
    """A key made now with a 7-day expiry reads "in 7 days", not "6 days"."""
    api_key, _ = new_key(org, KeyKind.USER, expires_at=timezone.now() + timedelta(days=7))
    text = client_for(org.member).get(detail_url(api_key)).content.decode()
    assert ">in 7 days</time>" in text
    assert "6 days" not in text


def test_old_rows_without_a_status_still_read(org, personal):
    """A status edit recorded before the status was kept reads "Status changed"."""
    event = AuditEvent(action=AuditEventType.API_KEY_UPDATED, detail={"changed": ["status"]})
    assert event.history_label == "Status changed"


def test_rotation_service_records_the_grace(org, personal):
    """The rotation's grace is in the detail the label reads."""
    api_key_rotate(actor=Actor(user=org.member), api_key=personal, grace="7d")
    event = AuditEvent.objects.get(action="api_key.rotated")
    assert event.history_label == "Rotated (old secret works 7 days)"
    assert event.label == "API key rotated (old secret works 7 days)"
