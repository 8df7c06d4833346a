"""Search and filters of the keys tables, their pagination, and what a table page costs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.access import Actor
from apikeys.demo import seed_keys
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.services import api_key_revoke
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import ORGANIZATION_KEYS_URL, PERSONAL_KEYS_URL, new_key

pytestmark = pytest.mark.django_db
SUGGESTIONS_URL = reverse("api_key_owner_suggestions", kwargs={"org": "acme"})


def listed(response, *keys) -> list[bool]:
    text = page_text(response)
    return [key.preview in text for key in keys]


@pytest.fixture
def keys(org, bot):
    """One key in each state and of each kind."""
    now = timezone.now()
    active, _ = new_key(org, KeyKind.ORGANIZATION, name="Deploy production")
    disabled, _ = new_key(org, KeyKind.ORGANIZATION, name="deploy staging")
    ApiKey.objects.filter(pk=disabled.pk).update(status=KeyStatus.DISABLED)
    expired, _ = new_key(org, KeyKind.ORGANIZATION, name="old importer")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=now - timedelta(minutes=1))
    gone, _ = new_key(org, KeyKind.ORGANIZATION, name="deploy gone")
    api_key_revoke(actor=Actor(user=org.owner), api_key=gone)
    personal, _ = new_key(org, name="laptop")
    robot, _ = new_key(org, KeyKind.SERVICE_ACCOUNT, owner=bot, name="ci deploy")
    return {
        "active": active,
        "disabled": disabled,
        "expired": expired,
        "revoked": gone,
        "personal": personal,
        "robot": robot,
    }


def test_search_by_name_is_case_insensitive(client_for, org, keys):
    response = client_for(org.owner).get(ORGANIZATION_KEYS_URL, {"q": "DEPLOY"})
    assert listed(response, keys["active"], keys["disabled"], keys["robot"]) == [True] * 3
    assert listed(response, keys["expired"], keys["personal"], keys["revoked"]) == [False] * 3


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("", {"active", "disabled", "expired", "personal", "robot"}),
        ("active", {"active", "personal", "robot"}),
        ("disabled", {"disabled"}),
        ("expired", {"expired"}),
        ("revoked", {"revoked"}),
    ],
)
def test_status_filter_follows_the_state_people_read(client_for, org, keys, status, expected):
    response = client_for(org.owner).get(ORGANIZATION_KEYS_URL, {"status": status})
    shown = {name for name, key in keys.items() if key.preview in page_text(response)}
    assert shown == expected


def test_kind_filter(client_for, org, keys):
    response = client_for(org.admin).get(ORGANIZATION_KEYS_URL, {"kind": "svc"})
    assert listed(response, keys["robot"], keys["active"], keys["personal"]) == [
        True,
        False,
        False,
    ]


def test_owners_filter_by_a_members_or_a_service_accounts_email(client_for, org, bot, keys):
    client = client_for(org.owner)
    by_member = client.get(ORGANIZATION_KEYS_URL, {"owner": org.member.email.upper()})
    assert listed(by_member, keys["personal"], keys["robot"], keys["active"]) == [
        True,
        False,
        False,
    ]
    by_bot = client.get(ORGANIZATION_KEYS_URL, {"owner": bot.identifier})
    assert listed(by_bot, keys["personal"], keys["robot"]) == [False, True]


def test_an_owner_email_nobody_has_says_so(client_for, org, keys):
    response = client_for(org.owner).get(ORGANIZATION_KEYS_URL, {"owner": "nobody@example.com"})
    assert response.status_code == 200
    text = page_text(response)
    assert "No member or service account of Acme has the email nobody@example.com." in text
    assert "No key matches these filters." in text


def test_admins_get_no_owner_filter(client_for, org, keys):
    """The owner filter is the owners'; for admins the parameter is not a filter at all."""
    response = client_for(org.admin).get(ORGANIZATION_KEYS_URL, {"owner": org.member.email})
    assert 'name="owner"' not in page_text(response)
    assert listed(response, keys["personal"], keys["active"]) == [True, True]
    assert client_for(org.admin).get(SUGGESTIONS_URL, {"owner": "a"}).status_code == 404


def test_bad_filters_are_explained_next_to_the_field_and_show_no_keys(client_for, org, keys):
    client = client_for(org.owner)
    for params, message in (
        ({"status": "lost"}, "Choose a status from the list."),
        ({"kind": "root"}, "Choose a kind of key from the list."),
        ({"owner": "not-an-email"}, "Enter an email address, such as ada@example.com."),
        ({"q": "x" * 101}, "Search for at most 100 characters."),
    ):
        response = client.get(ORGANIZATION_KEYS_URL, params)
        assert response.status_code == 422, params
        text = page_text(response)
        assert message in text
        assert "Fix the filters above to see keys." in text
        assert listed(response, keys["active"]) == [False]


def test_owner_suggestions_list_members_and_service_accounts(client_for, org, other_org, bot):
    response = client_for(org.owner).get(SUGGESTIONS_URL, {"owner": "deploy"})
    text = page_text(response)
    assert f'<option value="{bot.identifier}">' in text
    assert other_org.owner.email not in text
    everyone = page_text(client_for(org.owner).get(SUGGESTIONS_URL, {"owner": "@"}))
    assert org.member.email in everyone
    assert other_org.owner.email not in everyone


def test_the_personal_list_filters_too_but_shows_only_the_viewers_keys(client_for, org, keys):
    response = client_for(org.member).get(PERSONAL_KEYS_URL, {"q": "lap", "kind": "org"})
    assert listed(response, keys["personal"], keys["active"]) == [True, False]
    assert 'name="kind"' not in page_text(response)


def test_pages_keep_the_filters_and_say_when_a_page_does_not_exist(client_for, org):
    seed_keys(organization=org.organization, count=160, created_by=org.owner)
    client = client_for(org.owner)

    first = page_text(client.get(ORGANIZATION_KEYS_URL, {"kind": "user", "q": "bulk"}))
    assert "Page 1 of 3" in first  # 120 personal keys of the three people
    assert "?kind=user&q=bulk&page=2" in first

    past = page_text(client.get(ORGANIZATION_KEYS_URL, {"page": 99}))
    assert "Page 99 does not exist; showing page 4 of 4." in past
    junk = page_text(client.get(ORGANIZATION_KEYS_URL, {"page": "two"}))
    assert "is not a page number; showing page 1." in junk


def test_htmx_gets_the_table_alone(client_for, org, keys):
    response = client_for(org.owner).get(
        ORGANIZATION_KEYS_URL, {"q": "deploy"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="key-table"
    )
    text = page_text(response)
    assert text.lstrip().startswith('<div id="key-table"')
    assert "<html" not in text
    assert listed(response, keys["active"], keys["expired"]) == [True, False]


def test_only_keys_the_viewer_may_revoke_get_a_checkbox(client_for, org, keys):
    text = page_text(client_for(org.admin).get(ORGANIZATION_KEYS_URL))
    assert f'name="ids" value="{keys["active"].pk}"' in text
    assert f'name="ids" value="{keys["personal"].pk}"' not in text  # a member's personal key
    owner_text = page_text(client_for(org.owner).get(ORGANIZATION_KEYS_URL))
    assert f'name="ids" value="{keys["personal"].pk}"' in owner_text


# --- cost: a fixed number of queries whatever the number of keys -----------------------------


@pytest.mark.parametrize("existing", [100, 10_000])
@pytest.mark.parametrize(
    ("viewer", "url", "params"),
    [
        ("owner", ORGANIZATION_KEYS_URL, {}),
        ("owner", ORGANIZATION_KEYS_URL, {"q": "bulk", "status": "active", "page": "2"}),
        ("owner", ORGANIZATION_KEYS_URL, {"owner": "person@example.test", "kind": "user"}),
        ("admin", ORGANIZATION_KEYS_URL, {"status": "revoked"}),
        ("member", PERSONAL_KEYS_URL, {"q": "bulk"}),
    ],
)
def test_a_table_page_takes_at_most_twelve_queries(
    client_for, org, existing, viewer, url, params, django_assert_max_num_queries
):
    seed_keys(organization=org.organization, count=existing, created_by=org.owner)
    client = client_for(getattr(org, viewer))
    with django_assert_max_num_queries(12):
        response = client.get(url, params)
    assert response.status_code == 200


def test_past_a_thousand_keys_the_count_stops_until_a_deeper_page_is_asked(client_for, org):
    """Counting 100,000 keys would cost more than the page: past 1,000 the table says "more
    than 1,000", and a page beyond that still works and counts exactly."""
    seed_keys(organization=org.organization, count=1060, created_by=org.owner)
    client = client_for(org.owner)

    first = page_text(client.get(ORGANIZATION_KEYS_URL))
    assert "Page 1 · more than 1,000 in all" in first
    assert "?page=2" in first

    twenty_first = page_text(client.get(ORGANIZATION_KEYS_URL, {"page": 21}))
    assert "?page=22" in twenty_first  # the capped count does not hide the rows beyond it

    last = page_text(client.get(ORGANIZATION_KEYS_URL, {"page": 22}))
    assert "Page 22 of 22 · 1,060 in all" in last
    beyond = page_text(client.get(ORGANIZATION_KEYS_URL, {"page": 30}))
    assert "Page 30 does not exist; showing page 22 of 22." in beyond


def test_back_and_forward_get_the_whole_page(client_for, org, keys):
    """htmx asks again on a history-cache miss and can restore only a whole, successful page."""
    response = client_for(org.owner).get(
        ORGANIZATION_KEYS_URL,
        {"status": "lost"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="key-table",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert response.status_code == 200
    assert "<html" in page_text(response)
    assert "HX-Request" in response["Vary"]
