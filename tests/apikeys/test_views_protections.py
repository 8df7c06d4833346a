"""A key's protections in the console: set in the create dialog, shown and edited on the key's
page, filtered in the keys tables, and started from the key policy's default rate limit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.access import Actor
from apikeys import limits
from apikeys.models import ApiKey, KeyKind, KeyPolicy
from apikeys.policy import policy_for
from apikeys.protections import Window
from apikeys.services import api_key_revoke, api_key_update, key_policy_update
from tests.accounts.helpers import is_fragment, page_text
from tests.apikeys.conftest import (
    ORGANIZATION_KEYS_URL,
    PERSONAL_KEYS_URL,
    POLICY_URL,
    create_data,
    create_url,
    detail_url,
    key_counts,
    key_state,
    new_key,
    operator_key,
    plain_text,
    refusals,
)
from tests.apikeys.test_views_policy import policy_data

pytestmark = pytest.mark.django_db

SAVED = "Protections saved."
PER_PROCESS = "Counted per server process: set REDIS_URL so every worker shares the count."


def protections_data(**overrides) -> dict:
    """Return the key page's "Edit protections" form, empty (no protection), with changes."""
    data = {
        "form": "protections",
        "allowed_ips": "",
        "rate_second": "",
        "rate_minute": "",
        "rate_hour": "",
        "rate_day": "",
        "budget_amount": "",
        "budget_refill": "",
        "budget_refill_amount": "",
    }
    data.update(overrides)
    return data


def field_error(body: str, field_id: str) -> str:
    """Return the error shown under the input `field_id`, which must point at it."""
    found = re.search(rf'<p class="error" id="{field_id}_error">([^<]*)</p>', body)
    assert found, f"no error under {field_id}"
    tag = re.search(rf'<(?:input|textarea|select)[^>]*id="{field_id}"[^>]*>', body).group(0)
    assert 'aria-invalid="true"' in tag, tag
    assert f"{field_id}_error" in re.search(r'aria-describedby="([^"]*)"', tag).group(1)
    return found.group(1)


@pytest.fixture
def org_key(org) -> ApiKey:
    """Return an organization key the owner made, without protections."""
    return new_key(org, KeyKind.ORGANIZATION, name="ci", permissions=["secrets:read"])[0]


# --- the create dialog ------------------------------------------------------------------------


def test_create_form_offers_every_protection_folded(client_for, org):
    """The dialog folds "Protections": an allowlist with an example, a number per window,
    a usage budget with its refill; each labelled."""
    body = client_for(org.admin).get(create_url("org")).content.decode()

    assert '<details class="fold protections">' in body
    for label, field_id in [
        ("Allowed IP addresses", "key_allowed_ips"),
        ("Requests per second", "key_rate_second"),
        ("Requests per minute", "key_rate_minute"),
        ("Requests per hour", "key_rate_hour"),
        ("Requests per day", "key_rate_day"),
        ("Usage budget", "key_budget_amount"),
        ("Refill", "key_budget_refill"),
        ("Refill amount", "key_budget_refill_amount"),
    ]:
        assert f'<label for="{field_id}">{label}</label>' in body, label
    assert "Empty: the key works from any address." in page_text(
        client_for(org.admin).get(create_url("org"))
    )
    assert '<option value="" selected>No refill</option>' in body


def test_create_with_protections(client_for, org):
    """The key is made with its allowlist, one rate limit per window given and its budget."""
    response = client_for(org.admin).post(
        create_url("org"),
        create_data(
            allowed_ips="203.0.113.7, 198.51.100.0/24\n2001:db8::/32",
            rate_minute="100",
            rate_day="10000",
            budget_amount="5000",
            budget_refill="monthly",
            budget_refill_amount="4000",
        ),
    )

    assert response.status_code == 201
    api_key = ApiKey.objects.get()
    protections = api_key.protections
    assert protections["allowed_ips"] == ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32"]
    assert protections["rate_limits"] == [
        {"limit": 100, "window": "minute"},
        {"limit": 10000, "window": "day"},
    ]
    budget = protections["budget"]
    assert (budget["amount"], budget["refill"], budget["refill_amount"]) == (5000, "monthly", 4000)
    assert api_key.budget_remaining == 5000


@pytest.mark.parametrize(
    ("changes", "field_id", "message"),
    [
        (
            {"allowed_ips": "203.0.113.7\nnot-an-address"},
            "key_allowed_ips",
            "is not an IPv4 or IPv6 address or CIDR range",
        ),
        ({"allowed_ips": "10.0.0.1/8"}, "key_allowed_ips", "did you mean 10.0.0.0/8?"),
        ({"allowed_ips": "0.0.0.0/0"}, "key_allowed_ips", "leave the list empty instead"),
        ({"rate_minute": "0"}, "key_rate_minute", "Enter a whole number, at least 1."),
        ({"rate_hour": "1.5"}, "key_rate_hour", "Enter a whole number."),
        ({"budget_amount": "-1"}, "key_budget_amount", "Enter a whole number, 0 or more."),
        (
            {"budget_refill": "daily", "budget_refill_amount": "10"},
            "key_budget_amount",
            "Give the number of requests the budget starts with.",
        ),
        (
            {"budget_amount": "10", "budget_refill": "daily"},
            "key_budget_refill_amount",
            "Give the amount a daily refill sets the budget to.",
        ),
        (
            {"budget_amount": "10", "budget_refill_amount": "10"},
            "key_budget_refill",
            "Choose daily or monthly for the refill amount.",
        ),
        ({"budget_refill": "weekly"}, "key_budget_refill", "Choose daily, monthly or no refill."),
    ],
)
def test_bad_protections_show_next_to_their_field_and_create_nothing(
    client_for, org, htmx_headers, changes, field_id, message
):
    """Each bad protection is named under its own field, the section opens, nothing is made."""
    before = key_counts()

    response = client_for(org.admin).post(
        create_url("org"), create_data(**changes), headers=htmx_headers
    )

    assert response.status_code == 422
    assert is_fragment(response)
    body = response.content.decode()
    assert message in plain_text(response)
    assert message.split("“")[0][:20] in field_error(body, field_id).replace("&quot;", '"')
    assert '<details class="fold protections" open>' in body
    assert key_counts() == before


def test_every_problem_shows_at_once(client_for, org):
    """A bad name and bad protections are all shown together."""
    response = client_for(org.admin).post(
        create_url("org"),
        create_data(name="x" * 101, allowed_ips="nope", rate_second="0"),
    )

    assert response.status_code == 422
    body = response.content.decode()
    for field_id in ("key_name", "key_allowed_ips", "key_rate_second"):
        field_error(body, field_id)
    assert not ApiKey.objects.exists()


# --- the key policy's default rate limit -----------------------------------------------------


def set_default_rate_limit(org, kind: str, limit: int | None, window: str = "minute") -> None:
    policy = policy_for(organization=org.organization, kind=kind)
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=kind,
        require_expiry=policy.require_expiry,
        max_lifetime_days=policy.max_lifetime_days,
        disable_unused_after_days=policy.disable_unused_after_days,
        default_rate_limit={"limit": limit, "window": window} if limit else None,
    )


def test_policy_default_prefills_the_create_form_and_is_applied(client_for, org):
    """With a default of 100 per minute for organization keys the form starts at it, says so,
    and a key made from it has that rate limit; personal keys start without one."""
    set_default_rate_limit(org, KeyKind.ORGANIZATION, 100)
    client = client_for(org.admin)

    response = client.get(create_url("org"))
    body = response.content.decode()
    assert 'name="rate_minute" value="100"' in body
    assert "100 per minute, the key policy's default" in plain_text(response)
    assert 'name="rate_minute" value' not in client.get(create_url("user")).content.decode()

    assert client.post(create_url("org"), create_data(rate_minute="100")).status_code == 201
    assert ApiKey.objects.get().protections["rate_limits"] == [{"limit": 100, "window": "minute"}]


def test_a_cleared_default_makes_a_key_without_rate_limit(client_for, org):
    """Emptying the pre-filled number makes a key without a rate limit."""
    set_default_rate_limit(org, KeyKind.ORGANIZATION, 100)

    client_for(org.admin).post(create_url("org"), create_data(rate_minute=""))

    assert "rate_limits" not in ApiKey.objects.get().protections


def test_a_name_alone_takes_the_policy_default(client_for, org):
    """A POST with no protection field at all (a script) gets the policy's default."""
    set_default_rate_limit(org, KeyKind.ORGANIZATION, 5, "second")

    response = client_for(org.admin).post(create_url("org"), {"name": "script"})

    assert response.status_code == 201
    assert ApiKey.objects.get().protections == {"rate_limits": [{"limit": 5, "window": "second"}]}


def test_policy_page_saves_a_default_rate_limit(client_for, org):
    """The owner sets "Default rate limit for new keys" per kind; a blank one clears it."""
    client = client_for(org.owner)
    body = client.get(POLICY_URL).content.decode()
    assert "Default rate limit for new keys" in body
    assert 'id="id_org-default_rate_limit"' in body

    data = policy_data() | {"org-default_rate_limit": "600", "org-default_rate_window": "hour"}
    response = client.post(POLICY_URL, data)

    assert response.status_code == 302
    org_policy = policy_for(organization=org.organization, kind=KeyKind.ORGANIZATION)
    assert org_policy.default_rate_limit == Window(600, "hour")
    assert policy_for(organization=org.organization, kind=KeyKind.USER).default_rate_limit is None
    body = client.get(POLICY_URL).content.decode()
    assert 'name="org-default_rate_limit" value="600"' in body
    assert '<option value="hour" selected>hour</option>' in body

    client.post(POLICY_URL, policy_data() | {"org-default_rate_window": "hour"})
    org_policy = policy_for(organization=org.organization, kind=KeyKind.ORGANIZATION)
    assert org_policy.default_rate_limit is None


def test_policy_page_keeps_the_default_when_another_rule_changes(client_for, org):
    """Saving the expiry rule of a kind keeps its default rate limit as the form shows it."""
    set_default_rate_limit(org, KeyKind.ORGANIZATION, 50)
    client = client_for(org.owner)

    data = policy_data(org=(True, 90)) | {
        "org-default_rate_limit": "50",
        "org-default_rate_window": "minute",
    }
    assert client.post(POLICY_URL, data).status_code == 302

    policy = policy_for(organization=org.organization, kind=KeyKind.ORGANIZATION)
    assert (policy.max_lifetime_days, policy.default_rate_limit) == (90, Window(50, "minute"))


@pytest.mark.parametrize(
    ("value", "window", "field", "message"),
    [
        ("0", "minute", "default_rate_limit", "Enter a number of requests, at least 1."),
        ("ten", "minute", "default_rate_limit", "Enter a whole number of requests."),
        ("10", "week", "default_rate_window", "Choose second, minute, hour or day."),
    ],
)
def test_policy_page_shows_a_bad_default_next_to_it(client_for, org, value, window, field, message):
    """A bad default rate limit is named under its field and nothing is saved."""
    before = key_counts()
    data = policy_data() | {"svc-default_rate_limit": value, "svc-default_rate_window": window}

    response = client_for(org.owner).post(POLICY_URL, data)

    assert response.status_code == 422
    assert field_error(response.content.decode(), f"id_svc-{field}") == message
    assert key_counts() == before
    assert not KeyPolicy.objects.exists()


# --- the key's page: the Protections card ----------------------------------------------------


def test_card_of_a_key_without_protections(client_for, org, org_key):
    """A plain key "Works from any address", has no rate limit nor budget, and no note."""
    text = plain_text(client_for(org.admin).get(detail_url(org_key)))

    assert "IP allowlist" in text
    assert "Works from any address" in text
    assert PER_PROCESS not in text


def test_card_shows_how_close_the_key_is_to_each_limit(client_for, org, settings):
    """The allowlist, each window's use now with a meter and its reset, the budget left and
    its refill; and, on the local-memory cache, that counts are per process."""
    settings.KEYPORTAL_LIMITS_CACHE = "default"
    api_key, _ = new_key(
        org,
        KeyKind.ORGANIZATION,
        allowed_ips=["203.0.113.0/24"],
        rate_limits=[{"limit": 10, "window": "minute"}, {"limit": 1000, "window": "day"}],
        budget={"amount": 500, "refill": "daily", "refill_amount": 500},
    )
    for _ in range(3):
        assert limits.check(api_key).result == limits.OK

    response = client_for(org.admin).get(detail_url(api_key))

    text = plain_text(response)
    body = response.content.decode()
    assert "203.0.113.0/24" in text
    assert "Works from any address" not in text
    assert "10 per minute" in text
    assert "3 / 10 used · resets in" in text
    assert "3 / 1,000 used" in text
    assert 'max="10" value="3"' in body
    assert "497 / 500 left" in text
    assert "Refilled daily to 500 (UTC)" in text
    assert PER_PROCESS in text


def test_card_says_nothing_of_processes_on_a_shared_cache(client_for, org, settings, tmp_path):
    """On a cache every worker shares, the per-process note is not shown."""
    settings.CACHES = {
        **settings.CACHES,
        "shared-limits": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "limits"),
        },
    }
    settings.KEYPORTAL_LIMITS_CACHE = "shared-limits"
    api_key, _ = new_key(org, KeyKind.ORGANIZATION, rate_limits=[{"limit": 5, "window": "hour"}])
    limits.check(api_key)

    text = plain_text(client_for(org.admin).get(detail_url(api_key)))

    assert "1 / 5 used" in text
    assert PER_PROCESS not in text


def test_card_shows_the_last_refused_address(client_for, org, org_key):
    """The last address the allowlist refused, when, with the exact time on hover."""
    ApiKey.objects.filter(pk=org_key.pk).update(
        protections={"allowed_ips": ["203.0.113.7"]},
        last_refused_ip="198.51.100.23",
        last_refused_at=timezone.now() - timedelta(hours=3),
    )

    response = client_for(org.admin).get(detail_url(org_key))

    assert "Last refused" in plain_text(response)
    assert re.search(
        r"<code>198\.51\.100\.23</code>, <time datetime=\"[^\"]+\" title=\"\d{4}-\d\d-\d\d "
        r"\d\d:\d\d:\d\d [^\"]+\">3 hours ago</time>",
        response.content.decode(),
    )


# --- the key's page: "Edit protections" -------------------------------------------------------


def test_edit_form_is_offered_to_those_who_may_edit(client_for, org):
    """The member edits their own key's protections; an owner sees the card of that key, but
    no form, since only its owner edits a personal key."""
    api_key, _ = new_key(org, name="laptop")

    assert (
        'id="key-protections"' in client_for(org.member).get(detail_url(api_key)).content.decode()
    )
    body = client_for(org.owner).get(detail_url(api_key)).content.decode()
    assert "Works from any address" in body
    assert 'id="key-protections"' not in body


def test_edit_protections(client_for, org, org_key):
    """Saving sets the allowlist, the rate limits and the budget, and says so."""
    client = client_for(org.admin)

    response = client.post(
        detail_url(org_key),
        protections_data(
            allowed_ips="203.0.113.0/24\n198.51.100.9",
            rate_second="5",
            budget_amount="100",
        ),
        follow=True,
    )

    assert response.redirect_chain == [(f"{detail_url(org_key)}#protections-heading", 302)]
    assert SAVED in plain_text(response)
    org_key.refresh_from_db()
    assert org_key.protections["allowed_ips"] == ["203.0.113.0/24", "198.51.100.9"]
    assert org_key.protections["rate_limits"] == [{"limit": 5, "window": "second"}]
    assert org_key.protections["budget"]["amount"] == 100
    assert org_key.budget_remaining == 100
    assert org_key.name == "ci"  # the other form's fields are untouched


def test_edit_form_shows_what_the_key_has(client_for, org, org_key):
    """The form is filled in with the key's protections, and offers to restart its budget."""
    api_key_update(
        actor=Actor(user=org.owner),
        api_key=org_key,
        allowed_ips=["203.0.113.7"],
        rate_limits=[{"limit": 60, "window": "hour"}],
        budget={"amount": 10, "refill": "monthly", "refill_amount": 20},
    )

    body = client_for(org.admin).get(detail_url(org_key)).content.decode()

    assert re.search(r'id="protections_allowed_ips"[^>]*>\s*203\.0\.113\.7</textarea>', body)
    assert 'name="rate_hour" value="60"' in body
    assert 'name="budget_amount" value="10"' in body
    assert '<option value="monthly" selected>Monthly</option>' in body
    assert 'name="budget_refill_amount" value="20"' in body
    assert "Start counting again" in body


def test_budget_restarts_only_when_changed_or_asked(client_for, org, org_key):
    """Saving other protections keeps the budget's count; "Start counting again" restarts it."""
    api_key_update(actor=Actor(user=org.owner), api_key=org_key, budget={"amount": 10})
    ApiKey.objects.filter(pk=org_key.pk).update(budget_remaining=4)
    org_key.refresh_from_db()
    version = org_key.protections["budget"]["version"]
    client = client_for(org.owner)

    client.post(detail_url(org_key), protections_data(rate_day="1000", budget_amount="10"))
    org_key.refresh_from_db()
    assert org_key.protections["budget"]["version"] == version
    assert org_key.budget_remaining == 4
    assert org_key.protections["rate_limits"] == [{"limit": 1000, "window": "day"}]

    client.post(
        detail_url(org_key),
        protections_data(rate_day="1000", budget_amount="10", restart_budget="on"),
    )
    org_key.refresh_from_db()
    assert org_key.protections["budget"]["version"] != version
    assert org_key.budget_remaining == 10


def test_saving_nothing_new_changes_nothing(client_for, org, org_key):
    """The form sent back as it was writes nothing and says so."""
    before, counts = key_state(org_key), key_counts()

    response = client_for(org.admin).post(detail_url(org_key), protections_data(), follow=True)

    assert "The protections are unchanged." in plain_text(response)
    assert key_state(org_key) == before
    assert key_counts() == counts


@pytest.mark.parametrize(
    ("changes", "field_id"),
    [
        ({"allowed_ips": "300.1.2.3"}, "protections_allowed_ips"),
        ({"rate_day": "0"}, "protections_rate_day"),
        ({"budget_refill": "monthly", "budget_amount": "5"}, "protections_budget_refill_amount"),
    ],
)
def test_bad_edit_shows_next_to_its_field_and_changes_nothing(
    client_for, org, org_key, changes, field_id
):
    """A bad protection is named under its field, the form is open, the key is unchanged."""
    before = key_state(org_key)

    response = client_for(org.admin).post(detail_url(org_key), protections_data(**changes))

    assert response.status_code == 422
    body = response.content.decode()
    field_error(body, field_id)
    assert '<details class="fold" id="edit-protections" open>' in body
    # The other form on the page is shown as it was, without errors.
    assert 'id="key_name_error"' not in body
    assert key_state(org_key) == before


def test_loosening_is_refused_for_an_admin_on_a_key_beyond_their_role(client_for, org):
    """An admin may tighten the protections of an operator's key holding members:update, but
    not loosen them: the refusal shows above the form, the key is unchanged, the attempt is
    in the audit log."""
    api_key, _ = operator_key(
        org, permissions=("members:update",), rate_limits=[{"limit": 10, "window": "minute"}]
    )
    client = client_for(org.admin)
    before = key_state(api_key)

    response = client.post(detail_url(api_key), protections_data(rate_minute="1000"))

    assert response.status_code == 422
    text = plain_text(response)
    assert "You cannot loosen the protections of this key" in text
    assert "members:update" in text
    assert re.search(
        r'<div class="form-errors" role="alert" id="protections_protections_error"',
        response.content.decode(),
    )
    assert key_state(api_key) == before
    assert refusals(api_key) == [("loosen", "web")]

    response = client.post(detail_url(api_key), protections_data(rate_minute="5"))
    assert response.status_code == 302
    assert response.url == f"{detail_url(api_key)}#protections-heading"
    api_key.refresh_from_db()
    assert api_key.protections["rate_limits"] == [{"limit": 5, "window": "minute"}]


def test_a_member_cannot_reach_another_members_key(client_for, org):
    """Another member's key is 404 for its page and for "Edit protections"."""
    api_key, _ = new_key(org, owner=org.admin, name="admin laptop")
    before = key_state(api_key)
    client = client_for(org.member)

    assert client.get(detail_url(api_key)).status_code == 404
    response = client.post(detail_url(api_key), protections_data(allowed_ips="203.0.113.7"))
    assert response.status_code == 404
    assert key_state(api_key) == before


def test_editing_protections_of_a_revoked_key_is_refused(client_for, org, org_key):
    """A revoked key's protections cannot change."""
    api_key_revoke(actor=Actor(user=org.owner), api_key=org_key)
    org_key.refresh_from_db()
    before = key_state(org_key)

    response = client_for(org.owner).post(detail_url(org_key), protections_data(rate_day="5"))

    assert response.status_code == 422
    assert key_state(org_key) == before


def test_protections_post_without_csrf_token_is_refused(client_for, org, org_key):
    """Saving protections without the CSRF token is refused and changes nothing."""
    before = key_state(org_key)

    client = client_for(org.admin, enforce_csrf_checks=True)
    response = client.post(detail_url(org_key), protections_data(rate_day="5"))

    assert response.status_code == 403
    assert key_state(org_key) == before


def test_anonymous_is_sent_to_log_in(client, org, org_key):
    """Without a session the key's page, and its protections form, send to the login page."""
    response = client.post(detail_url(org_key), protections_data(rate_day="5"))

    assert response.status_code == 302
    assert response.url.startswith("/login/")


# --- the keys tables --------------------------------------------------------------------------


def test_tables_filter_by_protection_and_mark_protected_keys(client_for, org):
    """The Protection filter narrows the table to keys with an allowlist, a rate limit or a
    budget; each row says which protections its key has."""
    plain, _ = new_key(org, KeyKind.ORGANIZATION, name="plain")
    fenced, _ = new_key(org, KeyKind.ORGANIZATION, name="fenced", allowed_ips="203.0.113.7")
    limited, _ = new_key(
        org, KeyKind.ORGANIZATION, name="limited", rate_limits=[{"limit": 1, "window": "second"}]
    )
    budgeted, _ = new_key(org, KeyKind.ORGANIZATION, name="budgeted", budget={"amount": 3})
    client = client_for(org.owner)

    body = client.get(ORGANIZATION_KEYS_URL).content.decode()
    assert '<label for="id_protection">Protection</label>' in body
    for choice in ("Has an IP allowlist", "Rate limited", "Has a usage budget"):
        assert choice in body
    for tag in ("IP allowlist</span>", "Rate limit</span>", "Budget</span>"):
        assert body.count(tag) == 1, tag

    for value, key in [("ip_allowlist", fenced), ("rate_limited", limited), ("budget", budgeted)]:
        text = page_text(client.get(ORGANIZATION_KEYS_URL, {"protection": value}))
        shown = [k.preview in text for k in (plain, fenced, limited, budgeted)]
        assert shown == [k == key for k in (plain, fenced, limited, budgeted)], value

    bad = client.get(ORGANIZATION_KEYS_URL, {"protection": "moat"})
    assert "Choose a protection from the list." in page_text(bad)


def test_personal_keys_table_filters_by_protection(client_for, org):
    """The personal keys table has the filter too."""
    limited, _ = new_key(org, name="limited", rate_limits=[{"limit": 9, "window": "day"}])
    plain, _ = new_key(org, name="plain")

    text = page_text(client_for(org.member).get(PERSONAL_KEYS_URL, {"protection": "rate_limited"}))

    assert (limited.preview in text, plain.preview in text) == (True, False)


def test_pages_keep_the_protection_filter(client_for, org):
    """A filtered table pages with its filter: the next page's link keeps it."""
    for i in range(55):
        new_key(
            org,
            KeyKind.ORGANIZATION,
            name=f"limited {i}",
            rate_limits=[{"limit": 5, "window": "hour"}],
        )
    new_key(org, KeyKind.ORGANIZATION, name="plain")
    client = client_for(org.owner)

    first = page_text(client.get(ORGANIZATION_KEYS_URL, {"protection": "rate_limited"}))
    assert "Page 1 of 2" in first
    assert "?protection=rate_limited&page=2" in first

    second = page_text(
        client.get(ORGANIZATION_KEYS_URL, {"protection": "rate_limited", "page": "2"})
    )
    assert "Page 2 of 2" in second
    assert "plain" not in re.findall(r'class="key-name"[^>]*>([^<]*)<', second)
    assert '<option value="rate_limited" selected>Rate limited</option>' in second
