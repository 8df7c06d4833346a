"""The key policy's "Disable keys unused for", per kind of key: offered, saved, audited, refused
beside its field when it is not one of the choices."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEvent
from apikeys.models import ApiKey, KeyKind, KeyPolicy, KeyStatus
from apikeys.policy import Policy, policy_for
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import POLICY_URL, disable_unused_after, key_counts, new_key
from tests.apikeys.test_views_policy import policy_data

pytestmark = pytest.mark.django_db

HELP = (
    "The worker disables keys of this kind that have not been used for this long. "
    "Their owners are emailed. Disabled keys can be re-enabled."
)


def test_every_kind_offers_never_and_five_periods(client_for, org):
    """Each kind has the select, Never chosen by default, its help read with it."""
    body = page_text(client_for(org.owner).get(POLICY_URL))

    for kind in KeyKind.values:
        select = re.search(
            rf'<select name="{kind}-disable_unused_after_days"[^>]*>(.*?)</select>', body, re.S
        )
        assert select is not None, kind
        options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select[1])
        assert [(value, label) for value, _selected, label in options] == [
            ("", "Never"),
            ("30", "30 days"),
            ("60", "60 days"),
            ("90", "90 days"),
            ("180", "180 days"),
            ("365", "365 days"),
        ]
        assert options[0][1] == " selected"
        assert f'aria-describedby="id_{kind}-disable_unused_after_days_helptext"' in select[0]
        assert f'id="id_{kind}-disable_unused_after_days_helptext">{HELP}<' in body
    assert "Disable keys unused for" in body


def test_saving_stores_and_records_the_period(client_for, org):
    """Choosing 90 days for service-account keys saves it with the policy, records it in the
    history row, and shows it chosen on the page."""
    client = client_for(org.owner)
    data = {**policy_data(), "svc-disable_unused_after_days": "90"}

    response = client.post(POLICY_URL, data)

    assert response.status_code == 302
    assert policy_for(organization=org.organization, kind=KeyKind.SERVICE_ACCOUNT) == Policy(
        disable_unused_after_days=90
    )
    event = AuditEvent.objects.get(action="key_policy.updated")
    assert event.detail == {
        "kind": "svc",
        "require_expiry": False,
        "max_lifetime_days": None,
        "disable_unused_after_days": 90,
        "default_rate_limit": None,
    }
    body = page_text(client.get(POLICY_URL))
    assert re.search(
        r'<select name="svc-disable_unused_after_days"[^>]*>.*?<option value="90" selected>',
        body,
        re.S,
    )


def test_back_to_never(client_for, org):
    """Never keeps unused keys again; the change is recorded."""
    client = client_for(org.owner)
    client.post(POLICY_URL, {**policy_data(), "org-disable_unused_after_days": "30"})

    client.post(POLICY_URL, {**policy_data(), "org-disable_unused_after_days": ""})

    assert policy_for(organization=org.organization, kind="org").disable_unused_after_days is None
    assert AuditEvent.objects.filter(action="key_policy.updated").count() == 2


@pytest.mark.parametrize("value", ["45", "0", "-30", "ninety", "3650"])
def test_a_value_not_offered_is_refused_beside_its_field(client_for, org, value):
    """Anything but the choices is refused (422) next to the field, marked invalid; nothing
    is saved, not even the other kinds' changes."""
    data = {
        **policy_data(org=(True, 60)),
        "project-disable_unused_after_days": value,
    }
    before = key_counts()

    response = client_for(org.owner).post(POLICY_URL, data)

    assert response.status_code == 422
    body = response.content.decode()
    select = re.search(r'<select name="project-disable_unused_after_days"[^>]*>', body)[0]
    assert 'aria-invalid="true"' in select
    assert "id_project-disable_unused_after_days_error" in select
    assert (
        '<p class="error" id="id_project-disable_unused_after_days_error">'
        "Choose Never or 30, 60, 90, 180 or 365 days.</p>"
    ) in body
    assert key_counts() == before
    assert not KeyPolicy.objects.exists()


@pytest.mark.parametrize("days", [0, 7, 45, 3650])
def test_the_service_refuses_other_periods(org, days):
    """Only the offered periods reach the database, whatever door calls the service."""
    with pytest.raises(ValidationError) as raised:
        disable_unused_after(org, KeyKind.ORGANIZATION, days)
    assert "disable_unused_after_days" in raised.value.message_dict
    assert not KeyPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action="key_policy.updated").exists()


def test_saving_says_what_the_next_run_will_disable(client_for, org, bot, other_org):
    """The owner learns, on saving, how many keys the new rule catches at the worker's next
    run, per kind, and that nothing was disabled yet; keys in use and other organizations'
    keys are not counted."""
    long_ago = timezone.now() - timedelta(days=120)
    for name in ("idle one", "idle two"):
        api_key, _ = new_key(org, KeyKind.SERVICE_ACCOUNT, owner=bot, name=name)
        ApiKey.objects.filter(pk=api_key.pk).update(created_at=long_ago)
    used, _ = new_key(org, KeyKind.SERVICE_ACCOUNT, owner=bot, name="in use")
    elsewhere, _ = new_key(other_org, KeyKind.ORGANIZATION, name="idle elsewhere")
    ApiKey.objects.filter(pk=elsewhere.pk).update(created_at=long_ago)
    disable_unused_after(other_org, KeyKind.ORGANIZATION, 30)
    ApiKey.objects.filter(pk=used.pk).update(created_at=long_ago, last_used_at=timezone.now())
    client = client_for(org.owner)

    response = client.post(
        POLICY_URL, {**policy_data(), "svc-disable_unused_after_days": "90"}, follow=True
    )

    [message] = [str(m) for m in response.context["messages"]]
    assert message == (
        "The key policy has been saved. Unused for longer than it allows: 2 service account "
        "keys. The worker disables them at its next daily run (03:17 UTC) unless they are used "
        "before; their owners are emailed."
    )
    assert ApiKey.objects.filter(status=KeyStatus.DISABLED).count() == 0
