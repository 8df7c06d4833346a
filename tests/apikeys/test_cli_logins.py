"""Settings > Personal API keys, "CLI logins": only the keys `keyportal login` made."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.access import Actor
from accounts.models import Origin
from apikeys.device import device_approve, device_code_create, device_poll
from apikeys.models import ApiKey
from apikeys.selectors import cli_login_list
from apikeys.services import api_key_revoke
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import PERSONAL_KEYS_URL, in_days, new_key
from tests.conftest import Org

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_pacing(settings):
    settings.KEYPORTAL_DEVICE_POLL_SECONDS = 0


def log_in(org: Org, user, host: str = "laptop.local"):
    """Run `keyportal login`'s server side to the end: return the key it issued and its token."""
    request, device_code = device_code_create(client="keyportal-cli/0.1.0", host=host, ip="")
    device_approve(user=user, organization=org.organization, user_code=request.user_code)
    issued = device_poll(device_code=device_code, ip="")
    return issued.api_key, issued.token


def keys_create_with_the_cli(token: str, name: str) -> ApiKey:
    """Create a personal key as `keyportal keys create` does: its User-Agent, a CLI key."""
    response = Client().post(
        "/api/v1/keys",
        data=json.dumps(
            {
                "name": name,
                "kind": "user",
                "permissions": ["projects:read"],
                "expires_at": in_days(7).isoformat(),
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_USER_AGENT="keyportal-cli/0.1.0",
    )
    assert response.status_code == 201, response.content
    return ApiKey.objects.get(pk=response.json()["id"])


def section(response) -> str:
    text = page_text(response)
    return text[text.index("CLI logins") : text.index('id="key-table"')]


def test_only_keys_made_by_the_login_are_listed(client_for, org):
    """A key made with `keyportal keys create` has origin CLI too, but is no login: it is
    listed among the keys, not among the CLI logins."""
    login_key, token = log_in(org, org.member)
    made = keys_create_with_the_cli(token, "made with keys create")
    typed, _ = new_key(org, name="typed in the console")
    assert made.origin == Origin.CLI

    listed = cli_login_list(actor=Actor(user=org.member), organization=org.organization)
    assert list(listed) == [login_key]
    shown = section(client_for(org.member).get(PERSONAL_KEYS_URL))
    assert login_key.name in shown
    assert made.name not in shown
    assert typed.name not in shown


def test_another_persons_login_is_not_listed(client_for, org):
    """The admin's own login is theirs alone: it is not among the member's CLI logins."""
    admins, _ = log_in(org, org.admin, host="admin-laptop")
    mine, _ = log_in(org, org.member)
    listed = cli_login_list(actor=Actor(user=org.member), organization=org.organization)
    assert list(listed) == [mine]
    assert admins.name not in section(client_for(org.member).get(PERSONAL_KEYS_URL))


def test_a_revoked_login_is_no_longer_listed(org):
    """Logging out (revoking the key) takes the login off the list."""
    login_key, _ = log_in(org, org.member)
    api_key_revoke(api_key=login_key, actor=Actor(user=org.member))
    assert not cli_login_list(actor=Actor(user=org.member), organization=org.organization)


def test_logins_are_listed_newest_first(org):
    """Several terminals logged in: the newest first."""
    first, _ = log_in(org, org.member, host="desk")
    ApiKey.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=1))
    second, _ = log_in(org, org.member, host="laptop")
    listed = cli_login_list(actor=Actor(user=org.member), organization=org.organization)
    assert list(listed) == [second, first]
