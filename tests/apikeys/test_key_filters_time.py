"""The keys tables' and the API's filters for compromised keys and keys nobody uses: every
value, in the console and through GET /keys, at a fixed cost per page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apikeys.demo import seed_keys
from apikeys.models import ApiKey, KeyKind, LeakSource
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import ORGANIZATION_KEYS_URL, PERSONAL_KEYS_URL, new_key, operator_key

pytestmark = pytest.mark.django_db

LIVE = {"fresh", "used_40", "used_100", "used_400", "never_new", "never_old"}


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def compromise(api_key: ApiKey, **report) -> None:
    """Mark a key reported leaked as apikeys.leaks does: revoked and compromised at once."""
    now = timezone.now()
    ApiKey.objects.filter(pk=api_key.pk).update(
        revoked_at=now,
        compromised_at=now,
        compromised_source=LeakSource.GITHUB,
        compromise_report=report,
    )


@pytest.fixture
def keys(org):
    """Organization keys named k-*, made and last used at chosen times."""
    made = {
        # name: (created days ago, last used days ago or None)
        "fresh": (200, 1),
        "used_40": (200, 40),
        "used_100": (200, 100),
        "used_400": (500, 400),
        "never_new": (2, None),
        "never_old": (120, None),
        "compromised": (300, 100),
        "revoked": (300, None),
    }
    keys = {}
    for name, (created, used) in made.items():
        api_key, _ = new_key(org, KeyKind.ORGANIZATION, name=f"k-{name}")
        ApiKey.objects.filter(pk=api_key.pk).update(
            created_at=days_ago(created), last_used_at=None if used is None else days_ago(used)
        )
        keys[name] = api_key
    compromise(keys["compromised"], url="https://github.com/acme/shop/blob/abc/.env")
    ApiKey.objects.filter(pk=keys["revoked"].pk).update(revoked_at=timezone.now())
    return keys


FILTERS = [
    ({}, LIVE),
    ({"unused": "30"}, {"used_40", "used_100", "used_400", "never_old"}),
    ({"unused": "90"}, {"used_100", "used_400", "never_old"}),
    ({"unused": "365"}, {"used_400"}),
    ({"unused": "never"}, {"never_new", "never_old"}),
    ({"status": "compromised"}, {"compromised"}),
    # Compromised keys are revoked too: "Revoked" lists them with the others.
    ({"status": "revoked"}, {"compromised", "revoked"}),
    ({"status": "compromised", "unused": "90"}, {"compromised"}),
    ({"status": "revoked", "unused": "never"}, {"revoked"}),
    ({"status": "active", "unused": "365"}, {"used_400"}),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS)
def test_console_filters_by_last_use_and_compromise(client_for, org, keys, params, expected):
    """The keys table shows exactly the keys each Status and Last used value names."""
    text = page_text(client_for(org.owner).get(ORGANIZATION_KEYS_URL, params))
    assert {name for name, key in keys.items() if key.preview in text} == expected


@pytest.mark.parametrize(("params", "expected"), FILTERS)
def test_api_filters_by_last_use_and_compromise(org, keys, params, expected):
    """GET /keys takes the same values: `status=compromised` and `unused=30|90|365|never`."""
    _manager, token = operator_key(org, permissions=["api-keys:manage"], name="manager")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api.get("/api/v1/keys", {"name": "k-", **params})

    assert response.status_code == 200, response.content
    assert {key["name"].removeprefix("k-") for key in response.json()["items"]} == expected


def test_the_filters_offer_every_value(client_for, org, keys):
    """Status offers Compromised, and Last used its five choices, on both tables."""
    for url in (ORGANIZATION_KEYS_URL, PERSONAL_KEYS_URL):
        text = page_text(client_for(org.owner).get(url))
        assert '<option value="compromised">Compromised</option>' in text
        for value, label in (
            ("", "Any time"),
            ("30", "Not used for 30 days"),
            ("90", "Not used for 90 days"),
            ("365", "Not used for 365 days"),
            ("never", "Never used"),
        ):
            assert f'<option value="{value}"' in text and label in text


def test_a_chosen_value_stays_selected(client_for, org, keys):
    """A reloaded or shared filtered table shows the filter it was given."""
    text = page_text(
        client_for(org.owner).get(ORGANIZATION_KEYS_URL, {"unused": "90", "status": "compromised"})
    )
    assert '<option value="90" selected>' in text
    assert '<option value="compromised" selected>' in text


def test_a_bad_last_used_value_is_explained_and_shows_no_keys(client_for, org, keys):
    """An unknown value is refused beside the field (422), and the table shows nothing."""
    response = client_for(org.owner).get(ORGANIZATION_KEYS_URL, {"unused": "7"})
    assert response.status_code == 422
    text = page_text(response)
    assert "Choose a time of last use from the list." in text
    assert keys["fresh"].preview not in text


@pytest.mark.parametrize("query", [{"unused": "7"}, {"unused": "all"}, {"status": "leaked"}])
def test_api_bad_values_are_422(org, query):
    """A value not offered is refused, naming the parameter."""
    _manager, token = operator_key(org, permissions=["api-keys:manage"], name="manager")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/keys", query)
    assert response.status_code == 422
    assert next(iter(query)) in response.json()["error"]["message"]


def test_an_empty_last_used_filters_nothing(org, keys):
    """`?unused=` is no filter, as an empty console field is."""
    _manager, token = operator_key(org, permissions=["api-keys:manage"], name="manager")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/keys", {"name": "k-", "unused": ""}).json()["total"] == len(LIVE)


def test_pages_keep_the_last_used_filter(client_for, org):
    """Page links keep `unused` and `status` with the other filters."""
    seed_keys(organization=org.organization, count=160, created_by=org.owner)
    ApiKey.objects.update(last_used_at=None, created_at=days_ago(400))

    text = page_text(
        client_for(org.owner).get(ORGANIZATION_KEYS_URL, {"unused": "never", "status": "active"})
    )

    assert "?unused=never&status=active&page=2" in text


@pytest.mark.parametrize(
    "params",
    [
        {"unused": "90"},
        {"unused": "never", "q": "bulk", "page": "2"},
        {"status": "compromised"},
        {"status": "revoked", "unused": "365"},
    ],
)
def test_a_filtered_page_takes_at_most_twelve_queries(
    client_for, org, params, django_assert_max_num_queries
):
    """The new filters and badges cost no query per key."""
    seed_keys(organization=org.organization, count=300, created_by=org.owner)
    ApiKey.objects.filter(pk__in=ApiKey.objects.values("pk")[:100]).update(
        last_used_at=None, created_at=days_ago(400)
    )
    client = client_for(org.owner)
    with django_assert_max_num_queries(12):
        response = client.get(ORGANIZATION_KEYS_URL, params)
    assert response.status_code == 200
