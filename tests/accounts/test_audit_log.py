"""The audit log: filters, pages of 50 and the CSV export; owners and admins only."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.access import Actor
from accounts.forms_audit import EVENT_CHOICES
from accounts.models import (
    AUDIT_EVENT_GROUPS,
    AuditEvent,
    AuditEventType,
    Membership,
    Organization,
    Origin,
    User,
)
from tests.accounts.helpers import is_fragment, page_text
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    ServiceAccountFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

AUDIT_URL = reverse("audit_log", kwargs={"org": "acme"})
CSV_URL = reverse("audit_log_csv", kwargs={"org": "acme"})
FIX_FILTERS = "Fix the filters above to see events."
ROOT = Path(__file__).resolve().parents[2]


def make_event(
    organization: Organization,
    *,
    action: str = "api_key.created",
    actor_label: str = "someone@example.test",
    actor_user: User | None = None,
    at: datetime | None = None,
    **fields,
) -> AuditEvent:
    """Write one history row directly, at a chosen time."""
    fields.setdefault("target_type", "apikey")
    fields.setdefault("target_label", "deploy script")
    return AuditEvent.objects.create(
        organization=organization,
        action=action,
        actor_label=actor_label,
        actor_user=actor_user,
        created_at=at or timezone.now(),
        **fields,
    )


def make_events(organization: Organization, count: int, **fields) -> None:
    """Write `count` history rows a minute apart, the newest now."""
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            organization=organization,
            action=fields.get("action", "api_key.created"),
            actor_label=fields.get("actor_label", "bulk@example.test"),
            target_type="apikey",
            target_label=f"key {n}",
            created_at=now - timedelta(minutes=n),
        )
        for n in range(count)
    )


def shown_cells(response, column: str) -> list[str]:
    """Return one column of the audit table ("target", "label", ...), top to bottom, as text."""
    cells = re.findall(
        rf'<td class="audit-{column}[^"]*"[^>]*>(.*?)</td>', response.content.decode(), re.S
    )
    return [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]


def shown_targets(response) -> list[str]:
    """Return the target column of the audit table, top to bottom."""
    return shown_cells(response, "target")


def csv_rows(response) -> list[list[str]]:
    """Return the rows of a streamed CSV response, header first."""
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body, newline="")))


@pytest.fixture
def owner(client_for, org) -> Client:
    return client_for(org.owner)


# Who may see it ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [AUDIT_URL, CSV_URL])
def test_anonymous_is_sent_to_login(org, url):
    """Anonymous people are sent to log in, for the page and the export alike."""
    response = Client().get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("url", [AUDIT_URL, CSV_URL])
def test_members_and_outsiders_get_404(client_for, org, other_org, url):
    """A plain member and a person of another organization get 404 for the page and the CSV."""
    make_event(org.organization, actor_label="secret-actor")
    for person in (org.member, other_org.owner, UserFactory()):
        response = client_for(person).get(url)
        assert response.status_code == 404
        assert b"secret-actor" not in response.content


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_see_the_log_with_its_filters(client_for, org, role):
    """Owners and admins get the page: a GET form with a visible label for every field."""
    make_event(org.organization, target_label="deploy script")
    response = client_for(getattr(org, role)).get(AUDIT_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert shown_targets(response) == ["deploy script"]
    assert re.search(r'<form id="audit-filters"[^>]*method="get"', html)
    for name, label in [
        ("actor", "Actor"),
        ("event", "Event"),
        ("date_from", "From date"),
        ("date_to", "To date"),
    ]:
        assert f'<label for="id_{name}">{label}</label>' in html
    assert '<button type="submit" class="button-secondary">Filter</button>' in html
    assert f'href="{AUDIT_URL}">Clear' in html
    assert 'hx-target="#audit-table"' in html
    assert 'hx-push-url="true"' in html
    assert 'hx-trigger="change delay:300ms, submit"' in html


def test_event_select_offers_readable_groups(owner, org):
    """The event select starts with "Any event" and groups the actions under readable labels."""
    html = owner.get(AUDIT_URL).content.decode()
    select = re.search(r'<select name="event".*?</select>', html, re.S).group(0)
    assert '<option value="" selected>Any event</option>' in select
    assert '<optgroup label="API keys">' in select
    assert '<option value="api_key.revoked">API key revoked</option>' in select
    assert '<option value="member.removed">Member removed</option>' in select


# Filters -------------------------------------------------------------------------------------


def test_actor_filter_matches_the_label_ignoring_case(owner, org):
    """The actor filter finds a part of the actor's label, whatever its case."""
    make_event(org.organization, actor_label="deploy key (sk-org-...abcd)", target_label="one")
    make_event(org.organization, actor_label="ada@example.test", target_label="two")

    response = owner.get(AUDIT_URL, {"actor": "DEPLOY KEY"})

    assert response.status_code == 200
    assert shown_targets(response) == ["one"]


def test_actor_filter_matches_the_acting_persons_email(owner, org):
    """The actor filter also finds the acting person's email when the label is a key's name."""
    grace = UserFactory(email="grace.hopper@example.test")
    make_event(org.organization, actor_label="laptop (sk-user-...wxyz)", actor_user=grace,
               target_label="by grace")  # fmt: skip
    make_event(org.organization, actor_label="ada@example.test", target_label="by ada")

    response = owner.get(AUDIT_URL, {"actor": "Grace.Hopper@"})

    assert shown_targets(response) == ["by grace"]
    assert "grace.hopper@example.test" in page_text(response)


def test_event_filter_narrows_to_one_action(owner, org):
    """The event filter shows only that action."""
    make_event(org.organization, action="api_key.revoked", target_label="revoked")
    make_event(org.organization, action="api_key.created", target_label="created")
    make_event(org.organization, action="member.removed", target_label="removed")

    response = owner.get(AUDIT_URL, {"event": "api_key.revoked"})

    assert shown_targets(response) == ["revoked"]


def test_refused_attempts_on_keys_are_listed_with_what_was_tried(client_for, org):
    """An admin's refused rotation of a key holding members:update is in the log, found by
    its event, saying what was tried, from where and why."""
    from tests.apikeys.conftest import new_key, rotate_url

    api_key, _ = new_key(org, "org", name="owners only", permissions=["members:update"])
    client_for(org.admin).post(rotate_url(api_key), {"grace": "now"})

    response = client_for(org.owner).get(AUDIT_URL, {"event": "api_key.refused"})

    assert shown_targets(response) == [str(api_key)]
    text = page_text(response)
    assert "Refused attempt on an API key" in text  # the event select's label
    assert shown_cells(response, "label") == [
        "Refused: rotate — You cannot rotate this key: it holds members:update on the whole"
        " organization, which you do not hold."
    ]
    assert f'<a href="/o/acme/api-keys/{api_key.pk}/">{api_key}</a>' in response.content.decode()
    event = AuditEvent.objects.get(action="api_key.refused")
    assert (event.actor_user, event.origin, event.detail["door"]) == (org.admin, "web", "web")


def test_dates_are_whole_days_in_the_site_time_zone(owner, org, settings):
    """From and to are inclusive whole days in the configured time zone, to the microsecond."""
    settings.TIME_ZONE = "America/New_York"
    new_york = ZoneInfo("America/New_York")
    for label, at in [
        ("before", datetime(2025, 3, 9, 23, 59, 59, 999999, tzinfo=new_york)),
        ("first", datetime(2025, 3, 10, 0, 0, tzinfo=new_york)),
        ("last", datetime(2025, 3, 12, 23, 59, 59, 999999, tzinfo=new_york)),
        ("after", datetime(2025, 3, 13, 0, 0, tzinfo=new_york)),
    ]:
        make_event(org.organization, target_label=label, at=at)

    both = owner.get(AUDIT_URL, {"date_from": "2025-03-10", "date_to": "2025-03-12"})
    since = owner.get(AUDIT_URL, {"date_from": "2025-03-10"})
    until = owner.get(AUDIT_URL, {"date_to": "2025-03-12"})
    one_day = owner.get(AUDIT_URL, {"date_from": "2025-03-13", "date_to": "2025-03-13"})

    assert shown_targets(both) == ["last", "first"]
    assert shown_targets(since) == ["after", "last", "first"]
    assert shown_targets(until) == ["last", "first", "before"]
    assert shown_targets(one_day) == ["after"]
    assert "Dates are whole days in America/New_York" in page_text(both)


def test_filters_combine(owner, org):
    """Actor, event and dates together narrow to the rows that match all of them."""
    day = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    make_event(org.organization, actor_label="ada@example.test", action="api_key.revoked",
               at=day, target_label="match")  # fmt: skip
    make_event(org.organization, actor_label="bob@example.test", action="api_key.revoked",
               at=day, target_label="other actor")  # fmt: skip
    make_event(org.organization, actor_label="ada@example.test", action="api_key.created",
               at=day, target_label="other event")  # fmt: skip
    make_event(org.organization, actor_label="ada@example.test", action="api_key.revoked",
               at=day - timedelta(days=2), target_label="other day")  # fmt: skip

    response = owner.get(
        AUDIT_URL,
        {"actor": "ada", "event": "api_key.revoked", "date_from": "2025-05-01",
         "date_to": "2025-05-01"},
    )  # fmt: skip

    assert shown_targets(response) == ["match"]
    assert "1 event matches these filters" in page_text(response)


def test_another_organizations_events_never_appear(owner, org, other_org):
    """Another organization's events are never shown, however the filters are set."""
    make_event(org.organization, actor_label="ada@example.test", target_label="ours")
    make_event(other_org.organization, actor_label="ada@example.test", target_label="theirs",
               actor_user=other_org.owner)  # fmt: skip

    for query in ({}, {"actor": "ada"}, {"actor": other_org.owner.email},
                  {"event": "api_key.created"}):  # fmt: skip
        page = owner.get(AUDIT_URL, query)
        assert "theirs" not in page_text(page)
        export = csv_rows(owner.get(CSV_URL, query))
        assert "theirs" not in [row[7] for row in export]

    assert shown_targets(owner.get(AUDIT_URL)) == ["ours"]


def test_no_match_says_so_and_offers_to_clear(owner, org):
    """Filters that match nothing say so, with a link that clears them."""
    make_event(org.organization)
    response = owner.get(AUDIT_URL, {"actor": "nobody"})
    assert response.status_code == 200
    assert "No events match these filters" in page_text(response)
    assert "No events yet" not in page_text(response)


# Bad filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"date_from": "31/03/2025"}, "date_from", "Enter a date as YYYY-MM-DD"),
        ({"date_to": "2025-02-30"}, "date_to", "Enter a date as YYYY-MM-DD"),
        ({"date_from": "2025-03-10", "date_to": "2025-03-09"}, "date_to",
         "The to date must be on or after the from date."),
        ({"event": "api_key.stolen"}, "event", "Choose an event from the list."),
        ({"actor": "x" * 255}, "actor", "Search for at most 254 characters."),
        ({"actor": "a\x00b"}, "actor", "Null characters are not allowed."),
    ],
)  # fmt: skip
def test_bad_filters_show_the_error_next_to_the_field_and_no_rows(
    owner, org, query, field, message
):
    """A bad filter gets its error next to the field, no rows, and a note to fix it."""
    make_event(org.organization, target_label="hidden")

    response = owner.get(AUDIT_URL, query)

    assert response.status_code == 422
    html = response.content.decode()
    slot = re.search(rf'<div id="id_{field}_error" class="field-errors">(.*?)</div>', html, re.S)
    assert message in unescape(slot.group(1))
    widget = re.search(rf'<(?:input|select)[^>]*id="id_{field}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in widget
    assert f'aria-describedby="id_{field}_error"' in widget
    assert FIX_FILTERS in page_text(response)
    assert shown_targets(response) == []
    assert "Export CSV" not in html


@pytest.mark.parametrize(
    "date",
    [
        "0001-01-01",
        "9999-12-31",
        "2025-13-01",
        "\u0661\u0662\u0663\u0664-\u0660\u0661-\u0660\u0661",
        "2025-03-10T00:00",
    ],
)
def test_extreme_or_strange_dates_never_fail(owner, org, settings, date):
    """Dates at the ends of the calendar, or not dates at all, answer 200 or 422, never 500."""
    settings.TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: the first day would underflow UTC
    make_event(org.organization)
    for query in ({"date_from": date}, {"date_to": date}, {"date_from": date, "date_to": date}):
        assert owner.get(AUDIT_URL, query).status_code in (200, 422)
        assert owner.get(CSV_URL, query).status_code in (200, 400)


def test_calendar_ends_clamp_instead_of_overflowing(owner, org, settings):
    """A from date of year 1 means since ever; a from date of year 9999 matches nothing."""
    settings.TIME_ZONE = "America/Los_Angeles"
    make_event(org.organization, target_label="now")
    assert shown_targets(owner.get(AUDIT_URL, {"date_from": "0001-01-01"})) == ["now"]
    assert shown_targets(owner.get(AUDIT_URL, {"date_to": "9999-12-31"})) == ["now"]
    assert shown_targets(owner.get(AUDIT_URL, {"date_from": "9999-12-31"})) == []


# Pages ---------------------------------------------------------------------------------------


def test_fifty_events_a_page_and_the_links_keep_the_filters(owner, org):
    """Pages hold 50 events; the next and previous links keep the filters."""
    make_events(org.organization, 60, actor_label="ada@example.test")
    make_event(org.organization, actor_label="bob@example.test", target_label="bob's")

    first = owner.get(AUDIT_URL, {"actor": "ada", "event": "api_key.created"})
    assert len(shown_targets(first)) == 50
    assert "Page 1 of 2 · 60 in all" in page_text(first)
    next_link = page_text(first).split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert parse_qs(urlsplit(next_link).query) == {
        "actor": ["ada"],
        "event": ["api_key.created"],
        "page": ["2"],
    }

    second = owner.get(AUDIT_URL + next_link)
    assert len(shown_targets(second)) == 10
    assert "bob's" not in page_text(second)
    prev_link = page_text(second).split('rel="prev"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert parse_qs(urlsplit(prev_link).query) == {
        "actor": ["ada"],
        "event": ["api_key.created"],
        "page": ["1"],
    }


def test_a_page_past_the_end_shows_the_last_with_a_note(owner, org):
    """A page number past the end shows the last page and says so, instead of a 404."""
    make_events(org.organization, 120)

    response = owner.get(AUDIT_URL, {"page": "9"})

    assert response.status_code == 200
    assert "Page 9 does not exist; showing page 3 of 3." in page_text(response)
    assert len(shown_targets(response)) == 20


def test_a_page_that_is_not_a_number_shows_the_first_with_a_note(owner, org):
    """A page "number" that is not a number shows the first page and says so."""
    make_events(org.organization, 60)

    response = owner.get(AUDIT_URL, {"page": "last"})

    assert response.status_code == 200
    assert "“last” is not a page number; showing page 1." in page_text(response)
    assert len(shown_targets(response)) == 50


# htmx ----------------------------------------------------------------------------------------


def test_htmx_request_returns_only_the_table(owner, org, htmx_headers):
    """An htmx request gets the table fragment alone, with empty error slots refilled."""
    make_event(org.organization, target_label="shown")

    response = owner.get(AUDIT_URL, {"actor": "someone"}, headers=htmx_headers)

    assert response.status_code == 200
    assert is_fragment(response)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="audit-table">')
    assert 'id="audit-filters"' not in html
    assert shown_targets(response) == ["shown"]
    assert '<div id="id_actor_error" hx-swap-oob="innerHTML"></div>' in html
    assert "HX-Request" in response["Vary"]


def test_htmx_request_with_bad_filters_sends_the_errors_out_of_band(owner, org, htmx_headers):
    """With bad filters the fragment answers 422 and carries the error for its field."""
    response = owner.get(AUDIT_URL, {"date_from": "soon"}, headers=htmx_headers)

    assert response.status_code == 422
    assert is_fragment(response)
    html = response.content.decode()
    slot = re.search(r'<div id="id_date_from_error" hx-swap-oob="innerHTML">(.*?)</div>', html)
    assert "Enter a date as YYYY-MM-DD" in slot.group(1)
    assert FIX_FILTERS in html


def test_history_restore_gets_the_whole_page(owner, org, htmx_headers):
    """Back to a pushed URL, htmx asks for the whole page, and gets it with a 2xx status."""
    response = owner.get(
        AUDIT_URL,
        {"date_from": "soon"},
        headers={**htmx_headers, "HX-History-Restore-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert "hx-swap-oob" not in html
    assert FIX_FILTERS in html


# CSV export ----------------------------------------------------------------------------------


def test_export_link_carries_the_filters_but_not_the_page(owner, org):
    """The Export CSV link keeps the filters given and drops the page number."""
    make_events(org.organization, 60)
    response = owner.get(AUDIT_URL, {"actor": "bulk", "event": "", "page": "2"})
    assert f'href="{CSV_URL}?actor=bulk">Export CSV</a>' in response.content.decode()

    response = owner.get(AUDIT_URL)
    assert f'href="{CSV_URL}">Export CSV</a>' in response.content.decode()


def test_csv_export_streams_every_filtered_row(owner, org, settings):
    """The export is a streamed CSV attachment of every matching row, not only one page."""
    settings.TIME_ZONE = "Europe/Paris"
    make_events(org.organization, 70, actor_label="ada@example.test")
    make_event(org.organization, actor_label="bob@example.test")

    response = owner.get(CSV_URL, {"actor": "ada", "page": "2"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate().strftime("%Y%m%d")
    assert response["Content-Disposition"] == (
        f'attachment; filename="keyportal-audit-acme-{today}.csv"'
    )
    assert "no-store" in response["Cache-Control"]
    rows = csv_rows(response)
    assert rows[0] == [
        "time", "actor", "actor_key_id", "origin", "event",
        "target_type", "target_id", "target", "address", "detail",
    ]  # fmt: skip
    assert len(rows) == 1 + 70
    assert {row[1] for row in rows[1:]} == {"ada@example.test"}
    assert [row[7] for row in rows[1:3]] == ["key 0", "key 1"]


def test_csv_row_holds_every_column(owner, org):
    """Each row: UTC ISO 8601 time, actor, key id, origin, event, target, address, JSON detail."""
    make_event(
        org.organization,
        actor_label="laptop (sk-user-...wxyz)",
        actor_key_id=42,
        origin=Origin.API,
        action="member.role_changed",
        target_type="user",
        target_id="7",
        target_label="Zoë",
        ip_address="192.0.2.5",
        detail={"from": "member", "to": "admin"},
        at=datetime(2025, 3, 10, 14, 5, 6, 789000, tzinfo=ZoneInfo("Europe/Paris")),
    )

    rows = csv_rows(owner.get(CSV_URL))

    assert rows[1] == [
        "2025-03-10T13:05:06.789Z",
        "laptop (sk-user-...wxyz)",
        "42",
        "api",
        "member.role_changed",
        "user",
        "7",
        "Zoë",
        "192.0.2.5",
        '{"from": "member", "to": "admin"}',
    ]
    assert json.loads(rows[1][9]) == {"from": "member", "to": "admin"}


def test_csv_neutralises_spreadsheet_formulas(owner, org):
    """A cell that starts like a formula gets a leading apostrophe; other cells are untouched."""
    make_event(
        org.organization,
        actor_label='=HYPERLINK("https://evil.example","click")',
        target_label="+1",
        target_type="-2",
        target_id="@SUM(A1)",
        ip_address="\t192.0.2.1",
        action="\rapi_key.created",
    )
    make_event(org.organization, actor_label="plain label", target_label="a=b")

    rows = csv_rows(owner.get(CSV_URL))

    formula, plain = rows[2], rows[1]
    assert formula[1] == '\'=HYPERLINK("https://evil.example","click")'
    assert formula[7] == "'+1"
    assert formula[5] == "'-2"
    assert formula[6] == "'@SUM(A1)"
    assert formula[8] == "'\t192.0.2.1"
    assert formula[4] == "'\rapi_key.created"
    assert (plain[1], plain[7]) == ("plain label", "a=b")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"date_from": "yesterday"}, "- From date: Enter a date as YYYY-MM-DD"),
        ({"date_from": "2025-03-10", "date_to": "2025-03-01"},
         "- To date: The to date must be on or after the from date."),
        ({"event": "nonsense"}, "- Event: Choose an event from the list."),
    ],
)  # fmt: skip
def test_csv_with_bad_filters_is_a_plain_400(owner, org, query, message):
    """Bad filters on the export are a 400 in plain text saying what is wrong."""
    response = owner.get(CSV_URL, query)

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    body = response.content.decode()
    assert body.startswith("The filters are not valid:")
    assert message in body


# Labels and linked targets ------------------------------------------------------------------


def link_of(response, text: str) -> str | None:
    """Return the href of the target cell that reads `text`, or None when it is plain text."""
    html = response.content.decode()
    for cell in re.findall(r'<td class="audit-target[^"]*"[^>]*>(.*?)</td>', html, re.S):
        if unescape(re.sub(r"<[^>]+>", "", cell)).strip() == text:
            link = re.match(r'<a href="([^"]+)">', cell)
            return link.group(1) if link else None
    raise AssertionError(f"no target reads {text!r}")


def test_events_read_as_words_not_action_codes(client_for, org):
    """A key made, disabled, enabled and rotated reads as those words, not api_key.updated."""
    from apikeys.services import api_key_rotate, api_key_update
    from tests.apikeys.conftest import new_key

    api_key, _ = new_key(org, "org", name="deploy", permissions=["projects:read"])
    owner = Actor(user=org.owner)
    api_key_update(actor=owner, api_key=api_key, status="disabled")
    api_key_update(actor=owner, api_key=api_key, status="active")
    api_key_update(actor=owner, api_key=api_key, permissions=["projects:read", "teams:read"])
    api_key_rotate(actor=owner, api_key=api_key, grace="24h")

    response = client_for(org.owner).get(AUDIT_URL)

    assert shown_cells(response, "label") == [
        "API key rotated (old secret works 24 hours)",
        "API key permissions changed",
        "API key enabled",
        "API key disabled",
        "API key created",
    ]
    assert "api_key." not in response.content.decode().split('id="audit-table"', 1)[1]


def test_targets_link_to_their_pages_while_they_exist(client_for, org):
    """A key, a service account, a project and a member link to their pages; a deleted
    service account or project and a removed member are plain text."""
    from tests.apikeys.conftest import new_key

    api_key, _ = new_key(org, "org", name="deploy", permissions=["projects:read"])
    account = ServiceAccountFactory(organization=org.organization, name="ci-bot")
    gone_account = ServiceAccountFactory(organization=org.organization, name="old-bot")
    project = ProjectFactory(team=TeamFactory(organization=org.organization), name="Payments")
    gone_project = ProjectFactory(team=project.team, name="Legacy")
    leaver = MembershipFactory(organization=org.organization).user
    for target_type, obj, label in [
        ("serviceaccount", account, "ci-bot"),
        ("serviceaccount", gone_account, "old-bot"),
        ("project", project, "Payments"),
        ("project", gone_project, "Legacy"),
        ("user", org.admin, "the admin"),
        ("user", leaver, "the leaver"),
    ]:
        make_event(org.organization, target_type=target_type, target_id=str(obj.pk),
                   target_label=label)  # fmt: skip
    gone_account.delete()
    gone_project.delete()
    Membership.objects.filter(user=leaver).delete()

    response = client_for(org.owner).get(AUDIT_URL)

    assert link_of(response, str(api_key)) == f"/o/acme/api-keys/{api_key.pk}/"
    assert link_of(response, "ci-bot") == f"/o/acme/service-accounts/{account.pk}/"
    assert link_of(response, "Payments") == f"/o/acme/projects/{project.pk}/"
    assert link_of(response, "the admin") == "/o/acme/members/"
    for gone in ("old-bot", "Legacy", "the leaver"):
        assert link_of(response, gone) is None


def test_a_revoked_key_still_links_to_its_page(client_for, org):
    """A revoked key's page still exists (its history stays), so its events link to it."""
    from apikeys.services import api_key_revoke
    from tests.apikeys.conftest import new_key

    api_key, _ = new_key(org, "org", name="old", permissions=["projects:read"])
    api_key_revoke(actor=Actor(user=org.owner), api_key=api_key)

    response = client_for(org.admin).get(AUDIT_URL)

    assert shown_cells(response, "label") == ["API key revoked", "API key created"]
    assert link_of(response, str(api_key)) == f"/o/acme/api-keys/{api_key.pk}/"


def test_another_organizations_object_is_never_linked(client_for, org, other_org):
    """A row naming an id of another organization's key or project links nowhere."""
    from tests.apikeys.conftest import new_key

    foreign_key, _ = new_key(other_org, "org", name="theirs", permissions=["projects:read"])
    foreign_project = ProjectFactory(team=TeamFactory(organization=other_org.organization))
    make_event(org.organization, target_type="apikey", target_id=str(foreign_key.pk),
               target_label="forged key")  # fmt: skip
    make_event(org.organization, target_type="project", target_id=str(foreign_project.pk),
               target_label="forged project")  # fmt: skip

    response = client_for(org.owner).get(AUDIT_URL)

    assert link_of(response, "forged key") is None
    assert link_of(response, "forged project") is None


def test_links_cost_one_query_per_kind_of_target(client_for, org, django_assert_max_num_queries):
    """Fifty events of many targets add one query per kind of target, not one per row."""
    from tests.apikeys.conftest import new_key

    for n in range(12):
        new_key(org, "org", name=f"key {n}", permissions=["projects:read"])
        account = ServiceAccountFactory(organization=org.organization, name=f"bot {n}")
        make_event(org.organization, target_type="serviceaccount", target_id=str(account.pk),
                   target_label=f"bot {n}")  # fmt: skip
    client = client_for(org.owner)
    client.get(AUDIT_URL)  # sessions and caches warm

    # Session, user, membership, count, page; then one for the keys, one for the accounts.
    with django_assert_max_num_queries(8):
        response = client.get(AUDIT_URL)

    assert response.status_code == 200
    assert link_of(response, "bot 11").startswith("/o/acme/service-accounts/")


def test_the_log_at_390_px_is_cards_of_labelled_cells(owner, org):
    """Each event's cells say which column they are, for the cards a narrow screen shows."""
    make_event(org.organization, origin=Origin.CLI)
    html = owner.get(AUDIT_URL).content.decode()
    assert '<table class="cards audit-events">' in html
    for label in ("When", "Actor", "Target", "Origin", "Address"):
        assert f'data-label="{label}"' in html
    assert (
        '<td class="audit-label cell-main"><span class="cell-title">API key created</span>' in html
    )
    assert '<td class="audit-origin" data-label="Origin">CLI</td>' in html


# The event catalogue -------------------------------------------------------------------------

SERVICE_SOURCES = ("accounts", "apikeys", "projects")


def service_sources() -> dict[Path, str]:
    """Return the source of every module that may record events (models and migrations aside)."""
    paths = [path for app in SERVICE_SOURCES for path in (ROOT / app).glob("**/*.py")]
    return {
        path: path.read_text()
        for path in paths
        if "migrations" not in path.parts and path != ROOT / "accounts" / "models.py"
    }


def test_the_event_select_offers_every_event_type_in_its_group():
    """The event select is AuditEventType: every type once, under the groups people think in."""
    groups = EVENT_CHOICES[1:]
    assert [group for group, _ in groups] == [
        "API keys",
        "People",
        "Service accounts",
        "Organization",
        "Teams, projects, targets and environments",
        "Secrets",
        "Apps",
    ]
    offered = [value for _, choices in groups for value, _ in choices]
    assert sorted(offered) == sorted(AuditEventType.values)
    for group, choices in groups:
        for value, label in choices:
            assert AuditEventType(value).group == group
            assert label == AuditEventType(value).label
    assert dict(groups[4][1])["project.renamed"] == "Project renamed"


def test_every_event_subject_has_a_group():
    """A new subject ("webhook.created") needs its group in AUDIT_EVENT_GROUPS."""
    subjects = {event_type.subject for event_type in AuditEventType}
    assert subjects == set(AUDIT_EVENT_GROUPS)


def test_services_name_their_events_from_the_enum():
    """No service writes an action as a string: each names an AuditEventType member."""
    # argparse's action="store_true" or "append" in a management command is no audit event.
    literal = re.compile(r'action=f?"(?!store_|append")|_record\(\w+, \w+, f?"')
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path, source in service_sources().items()
        for number, line in enumerate(source.splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []


def test_every_event_type_is_recorded_somewhere():
    """Each member of AuditEventType is named by some service: none is dead, none missing."""
    sources = "\n".join(service_sources().values())
    unused = [t.name for t in AuditEventType if f"AuditEventType.{t.name}" not in sources]
    assert unused == []


def test_every_recorded_action_can_be_filtered(owner, org):
    """Every event type filters the log to its own events, and its option reads as its label."""
    for event_type in AuditEventType:
        make_event(org.organization, action=event_type, target_label=event_type.value)
    html = owner.get(AUDIT_URL).content.decode()
    for event_type in AuditEventType:
        response = owner.get(AUDIT_URL, {"event": event_type.value})
        assert response.status_code == 200
        assert shown_targets(response) == [event_type.value]
        assert f'<option value="{event_type.value}">{escape(event_type.label)}</option>' in html


def test_past_a_thousand_events_the_count_says_more_than_1000(owner, org):
    """The count stops at 1,001 rows (see keyportal/pagination.py); the page must not claim 1001."""
    make_events(org.organization, 1005)
    text = page_text(owner.get(AUDIT_URL))
    assert "More than 1,000 events" in text
    assert "1001" not in text and "1,001" not in text
