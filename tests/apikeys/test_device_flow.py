"""`keyportal login`'s server side: codes, the approval page, polling, and the key it issues."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from accounts.access import Actor
from accounts.models import AuditEvent, Origin
from apikeys.models import ApiKey, DeviceAuthorization, DeviceState, KeyKind
from apikeys.permissions import ROLE_PERMISSIONS, ordered
from apikeys.services import key_policy_update
from keyportal_cli.tokens import token_digest
from tests.accounts.helpers import page_text
from tests.apikeys.conftest import PERSONAL_KEYS_URL, new_key

pytestmark = pytest.mark.django_db
DEVICE_URL = reverse("device")
USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


@pytest.fixture(autouse=True)
def no_pacing(settings):
    """Tests poll back to back; the pacing rule has its own test."""
    settings.KEYPORTAL_DEVICE_POLL_SECONDS = 0


def ask(http: Client | None = None, *, address: str = "10.1.2.3", **body):
    body = {"client": "keyportal-cli/0.1.0", "host": "laptop.local", **body}
    return (http or Client()).post(
        "/api/v1/device/code", body, content_type="application/json", REMOTE_ADDR=address
    )


def poll(device_code: str):
    return Client().post(
        "/api/v1/device/token", {"device_code": device_code}, content_type="application/json"
    )


def error_code(response) -> str:
    return response.json()["error"]["code"]


def started() -> dict:
    response = ask()
    assert response.status_code == 200
    return response.json()


def approve(client_for, user, code: str, organization) -> object:
    return client_for(user).post(
        DEVICE_URL, {"code": code, "org": organization.pk, "decision": "approve"}
    )


def test_a_code_is_given_and_only_its_digest_is_stored(org):
    body = started()
    assert USER_CODE.match(body["user_code"])
    assert body["expires_in"] == 600
    assert body["verification_uri"] == "http://testserver/device/"
    assert body["verification_uri_complete"].endswith(f"/device/?code={body['user_code']}")
    row = DeviceAuthorization.objects.get()
    assert row.device_code_digest == token_digest(body["device_code"])
    assert body["device_code"] not in str(DeviceAuthorization.objects.values().get())
    assert (row.client, row.host, row.ip_address) == (
        "keyportal-cli/0.1.0",
        "laptop.local",
        "10.1.2.3",
    )


def test_poll_waits_then_gets_a_personal_cli_key_once(client_for, org):
    body = started()
    assert error_code(poll(body["device_code"])) == "authorization_pending"

    page = client_for(org.member).get(DEVICE_URL, {"code": body["user_code"].lower()})
    text = page_text(page)
    assert page.status_code == 200
    assert "keyportal-cli/0.1.0" in text and "laptop.local" in text and "10.1.2.3" in text
    assert "Approved" in page_text(
        approve(client_for, org.member, body["user_code"], org.organization)
    )

    response = poll(body["device_code"])
    assert response.status_code == 200
    issued = response.json()
    assert issued["token"].startswith("sk-user-")
    assert issued["organization"]["slug"] == "acme"
    key = ApiKey.objects.get(pk=issued["key"]["id"])
    assert key.digest == token_digest(issued["token"])
    assert (key.kind, key.owner_user, key.origin) == (KeyKind.USER, org.member, Origin.CLI)
    assert key.name.startswith("CLI on laptop.local ")
    assert key.permissions == ordered(ROLE_PERMISSIONS["member"])
    assert timedelta(days=6, hours=23) < key.expires_at - timezone.now() <= timedelta(days=7)
    # Single use: the code is spent, and the token was never stored.
    assert error_code(poll(body["device_code"])) == "expired_token"
    assert issued["token"] not in str(DeviceAuthorization.objects.values().get())
    approved = AuditEvent.objects.get(action="cli_login.approved", actor_user=org.member)
    assert approved.ip_address == "127.0.0.1"  # the approving browser's address
    created = AuditEvent.objects.get(action="api_key.created", target_id=str(key.pk))
    assert created.origin == Origin.CLI

    whoami = Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {issued['token']}")
    assert whoami.status_code == 200


def test_denial_ends_the_login_without_a_key(client_for, org):
    body = started()
    response = client_for(org.member).post(
        DEVICE_URL, {"code": body["user_code"], "decision": "deny"}
    )
    assert "Denied" in page_text(response)
    assert error_code(poll(body["device_code"])) == "access_denied"
    assert not ApiKey.objects.exists()


def test_an_expired_code_can_be_neither_approved_nor_polled(client_for, org):
    body = started()
    DeviceAuthorization.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = approve(client_for, org.member, body["user_code"], org.organization)
    assert page.status_code == 404
    assert "This code is not valid" in page_text(page)
    assert error_code(poll(body["device_code"])) == "expired_token"
    assert DeviceAuthorization.objects.get().state == DeviceState.PENDING


def test_the_code_lifetime_follows_the_setting(settings, org):
    settings.KEYPORTAL_DEVICE_CODE_SECONDS = 30
    body = started()
    assert body["expires_in"] == 30
    row = DeviceAuthorization.objects.get()
    assert row.expires_at - row.created_at == timedelta(seconds=30)


def test_polling_too_fast_slows_the_client_down(settings, org):
    settings.KEYPORTAL_DEVICE_POLL_SECONDS = 5
    body = started()
    assert error_code(poll(body["device_code"])) == "authorization_pending"
    fast = poll(body["device_code"])
    assert error_code(fast) == "slow_down"
    assert fast.json()["error"]["interval"] == 10
    assert DeviceAuthorization.objects.get().interval == 10


def test_unknown_device_codes_and_bad_bodies_are_refused(org):
    assert error_code(poll("not-a-code")) == "invalid_grant"
    assert ask(host="x" * 256).status_code == 422
    assert ask(extra="field").status_code == 422
    bad = Client().post("/api/v1/device/token", "{", content_type="application/json")
    assert bad.status_code in (400, 422)
    assert not DeviceAuthorization.objects.filter(host="x" * 256).exists()


def test_only_an_organization_of_the_person_can_be_chosen(client_for, org, other_org):
    body = started()
    response = approve(client_for, org.member, body["user_code"], other_org.organization)
    assert response.status_code == 422
    assert "Choose an organization" in page_text(response)
    assert DeviceAuthorization.objects.get().state == DeviceState.PENDING


WARNING = (
    "This login was requested from 203.0.113.7, not from your address 198.51.100.2. "
    "Approve only if you started it yourself."
)


def test_the_page_labels_what_the_program_reported_about_itself(client_for, org):
    """The client and host are shown as the program's own claim, which keyportal cannot check."""
    body = ask(client="evil-tool/6.6", host="ada-laptop").json()
    text = page_text(client_for(org.member).get(DEVICE_URL, {"code": body["user_code"]}))
    assert "The program says it is evil-tool/6.6 on ada-laptop. keyportal cannot check this." in (
        " ".join(strip_tags(text).split())
    )


def test_the_page_shows_the_requesters_address_beside_the_approvers(client_for, org):
    """Both addresses are shown, each labelled; the same address raises no warning."""
    body = ask(address="198.51.100.2").json()
    client = client_for(org.member, REMOTE_ADDR="198.51.100.2")
    text = page_text(client.get(DEVICE_URL, {"code": body["user_code"]}))
    assert '<dt>Requested from</dt><dd class="mono">198.51.100.2</dd>' in text
    assert '<dt>Your address</dt><dd class="mono">198.51.100.2</dd>' in text
    assert "not from your address" not in text


@pytest.mark.parametrize(
    ("requester", "approver", "warned"),
    [
        ("203.0.113.7", "198.51.100.2", True),
        ("203.0.113.7", "203.0.113.7", False),
        ("2001:db8::7", "2001:0db8:0:0::7", False),
        ("", "198.51.100.2", False),
    ],
)
def test_a_warning_shows_exactly_when_the_addresses_differ(
    client_for, org, requester, approver, warned
):
    """The page warns when the login was asked for from another address than the approver's."""
    body = ask(address=requester).json()
    client = client_for(org.member, REMOTE_ADDR=approver)
    for response in (
        client.get(DEVICE_URL, {"code": body["user_code"]}),
        client.post(DEVICE_URL, {"code": body["user_code"], "decision": "approve"}),
    ):
        text = " ".join(strip_tags(page_text(response)).split())
        assert (WARNING in text) is warned
        assert ('class="callout callout-danger"' in page_text(response)) is warned


def test_the_page_needs_a_login_and_keeps_the_code(org):
    body = started()
    response = Client().get(DEVICE_URL, {"code": body["user_code"]})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert body["user_code"] in response["Location"]


def test_wrong_codes_are_limited_per_person(client_for, org):
    client = client_for(org.member)
    statuses = [client.get(DEVICE_URL, {"code": "BCDF-GHJK"}).status_code for _ in range(31)]
    assert statuses[:30] == [404] * 30
    assert statuses[30] == 429


def test_asking_for_codes_is_limited_per_address(org):
    client = Client()
    statuses = [ask(client).status_code for _ in range(11)]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429
    assert DeviceAuthorization.objects.count() == 10


def test_the_key_policy_can_shorten_the_cli_key(client_for, org):
    key_policy_update(
        actor=Actor(user=org.owner),
        organization=org.organization,
        kind=KeyKind.USER,
        require_expiry=True,
        max_lifetime_days=3,
    )
    body = started()
    approve(client_for, org.member, body["user_code"], org.organization)
    key = ApiKey.objects.get(pk=poll(body["device_code"]).json()["key"]["id"])
    assert key.expires_at - timezone.now() <= timedelta(days=4)


def test_a_key_revokes_itself_for_logout(org):
    key, token = new_key(org, name="cli")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = Client().post("/api/v1/whoami/revoke", **auth)
    assert response.status_code == 200
    assert response.json()["id"] == key.pk
    key.refresh_from_db()
    assert key.revoked_at is not None
    again = Client().get("/api/v1/whoami", **auth)
    assert again.status_code == 401
    assert error_code(again) == "key_revoked"


def test_settings_list_cli_logins_with_revoke_buttons(client_for, org, settings):
    body = started()
    approve(client_for, org.member, body["user_code"], org.organization)
    key = ApiKey.objects.get(pk=poll(body["device_code"]).json()["key"]["id"])
    web_key, _ = new_key(org, name="typed in the console")
    theirs, _ = new_key(org, owner=org.admin, name="admin laptop")
    ApiKey.objects.filter(pk=theirs.pk).update(origin=Origin.CLI)

    text = page_text(client_for(org.member).get(PERSONAL_KEYS_URL))
    section = text[text.index("CLI logins") : text.index('id="key-table"')]
    assert key.name in section
    assert reverse("api_key_delete", kwargs={"org": "acme", "pk": key.pk}) in section
    assert web_key.name not in section
    assert theirs.name not in section
